-- demo-schema.sql — the small shop database shell/demo.sh captures.
--
--   psql "dbname=rtdp_demo user=postgres" -v ON_ERROR_STOP=1 -f sql/postgres/demo-schema.sql
--
-- Creates schema `shop` with three tables and a few thousand rows, so the collector's
-- initial snapshot has something to read:
--   shop.customers    1,000 rows   (text with non-ASCII characters, jsonb, timestamptz)
--   shop.orders       3,000 rows   (numeric(12,2), timestamptz, jsonb, text)
--   shop.order_items  ~6,000 rows  (composite primary key)
-- Foreign keys cascade on UPDATE and DELETE, so one statement of the workload
-- (sql/postgres/demo-workload.sql) changes rows of several tables: a primary-key change of
-- an order rewrites its items' keys too, a deleted customer takes its orders with it.
--
-- Drops and re-creates the schema: run it only against a throwaway database. Random data
-- is seeded (setseed) so two runs load the same rows.

\set ON_ERROR_STOP on

DROP SCHEMA IF EXISTS shop CASCADE;
CREATE SCHEMA shop;

CREATE TABLE shop.customers (
    customer_id bigint PRIMARY KEY,
    name        text        NOT NULL,
    email       text,
    country     char(2)     NOT NULL,
    profile     jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shop.orders (
    order_id    bigint PRIMARY KEY,
    customer_id bigint        NOT NULL
        REFERENCES shop.customers (customer_id) ON UPDATE CASCADE ON DELETE CASCADE,
    status      text          NOT NULL,
    total       numeric(12,2) NOT NULL,
    currency    char(3)       NOT NULL DEFAULT 'EUR',
    note        text,
    attributes  jsonb         NOT NULL DEFAULT '{}',
    ordered_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at  timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX ON shop.orders (customer_id);

CREATE TABLE shop.order_items (
    order_id    bigint        NOT NULL
        REFERENCES shop.orders (order_id) ON UPDATE CASCADE ON DELETE CASCADE,
    line_no     integer       NOT NULL,
    sku         text          NOT NULL,
    description text,
    quantity    integer       NOT NULL CHECK (quantity > 0),
    unit_price  numeric(12,2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

-- REPLICA IDENTITY FULL: with the default identity an UPDATE or DELETE writes only the
-- primary key of the old row to the WAL, so the change event's `before` image would lack
-- every other column (and unchanged TOASTed values would be missing from `after`). The
-- collector writes deletes from the `before` image and warns about tables without FULL;
-- sql/setup-postgres-cdc.sql does the same for a real schema.
ALTER TABLE shop.customers   REPLICA IDENTITY FULL;
ALTER TABLE shop.orders      REPLICA IDENTITY FULL;
ALTER TABLE shop.order_items REPLICA IDENTITY FULL;

-- Keys of new rows (the workload takes them from here too).
CREATE SEQUENCE shop.customer_ids START 1001;
CREATE SEQUENCE shop.order_ids START 3001;

-- Initial rows.
SELECT setseed(0.42);

INSERT INTO shop.customers (customer_id, name, email, country, profile, created_at, updated_at)
SELECT i,
       (ARRAY['Zoë', 'Åsa', 'José', 'Łukasz', 'Søren', 'Ana', 'Chloé', '太郎', 'Мария', 'Ömer'])[1 + i % 10]
         || ' ' ||
       (ARRAY['Müller', 'Nuñez', 'Øster', 'Dvořák', 'O''Brien', 'Smith', 'Kovačević', '山田', 'Иванова', 'Yılmaz'])[1 + (i / 10) % 10],
       CASE WHEN i % 17 = 0 THEN NULL ELSE 'customer' || i || '@example.com' END,
       (ARRAY['DE', 'FR', 'ES', 'PL', 'DK', 'JP', 'TR', 'SE', 'IE', 'US'])[1 + (i * 7) % 10],
       jsonb_build_object('tier', (ARRAY['bronze', 'silver', 'gold'])[1 + i % 3],
                          'newsletter', i % 2 = 0,
                          'tags', to_jsonb(ARRAY['demo', 'snapshot'])),
       timestamptz '2024-01-01 00:00:00+00' + i * interval '37 minutes',
       timestamptz '2024-06-01 00:00:00+00' + i * interval '11 minutes'
  FROM generate_series(1, 1000) AS i;

INSERT INTO shop.orders (order_id, customer_id, status, total, currency, note, attributes, ordered_at, updated_at)
SELECT i,
       1 + (i * 7919) % 1000,
       (ARRAY['new', 'paid', 'shipped', 'delivered'])[1 + i % 4],
       0,  -- set from the items below
       (ARRAY['EUR', 'USD', 'JPY'])[1 + i % 3],
       CASE i % 5 WHEN 0 THEN NULL
                  WHEN 1 THEN 'bitte vor 12 Uhr liefern — danke'
                  WHEN 2 THEN 'gift wrap 🎁'
                  WHEN 3 THEN '置き配OK'
                  ELSE 'call before delivery: +33 1 23 45 67 89' END,
       jsonb_build_object('channel', (ARRAY['web', 'app', 'store'])[1 + i % 3],
                          'priority', i % 10 = 0,
                          'coupon', CASE WHEN i % 7 = 0 THEN 'SPRING' || (i % 100) END),
       timestamptz '2024-03-01 00:00:00+00' + i * interval '13 minutes 7 seconds',
       timestamptz '2024-03-01 00:00:00+00' + i * interval '13 minutes 7 seconds' + interval '2 hours'
  FROM generate_series(1, 3000) AS i;

INSERT INTO shop.order_items (order_id, line_no, sku, description, quantity, unit_price)
SELECT o, l,
       'SKU-' || lpad(((o * 31 + l * 17) % 500)::text, 4, '0'),
       (ARRAY['Kaffeebecher', 'crème brûlée set', 'Tee 緑茶 100 g', 'socks (2 pairs)', 'łyżka'])[1 + (o + l) % 5],
       1 + (o + l) % 4,
       round((1 + random() * 199)::numeric, 2)
  FROM generate_series(1, 3000) AS o,
       generate_series(1, 3) AS l
 WHERE l <= 1 + o % 3;

UPDATE shop.orders o
   SET total = s.total
  FROM (SELECT order_id, sum(quantity * unit_price) AS total FROM shop.order_items GROUP BY order_id) s
 WHERE s.order_id = o.order_id;

ANALYZE shop.customers, shop.orders, shop.order_items;

SELECT 'shop.customers' AS "table", count(*) AS rows FROM shop.customers
UNION ALL SELECT 'shop.orders', count(*) FROM shop.orders
UNION ALL SELECT 'shop.order_items', count(*) FROM shop.order_items;
