-- demo-workload.sql — a steady stream of changes to the demo schema (demo-schema.sql).
--
--   psql "dbname=rtdp_demo user=postgres" -v seconds=30 -v pause=0.1 \
--        -f sql/postgres/demo-workload.sql
--
-- Variables: seconds (default 30) how long to run; pause (default 0.1) seconds to sleep
-- between transactions. With the default pause that is about 10 transactions and 300 row
-- changes a second.
--
-- Each iteration is one transaction, committed inside the loop (transaction control works
-- in a procedure called outside a transaction block; a procedure rather than a DO block
-- because it takes the two variables as parameters):
--   - inserts 4 orders with 1–3 items each, then sets each order's total (an update);
--   - moves 6 random orders one status on, edits notes (sometimes to NULL) and jsonb;
--   - raises the quantity of 3 random order items, updates one customer;
--   - deletes 2 random orders (their items go by ON DELETE CASCADE) and one item;
--   - every 5th: a new customer; every 7th: an item's key changes (line_no);
--   - every 10th: an order's primary key changes (its items follow by ON UPDATE CASCADE);
--   - every 25th: a customer's primary key changes (its orders follow);
--   - every 30th: a customer is deleted with all its orders and items.
-- Random ids that hit a deleted row just change nothing. The procedure prints a progress
-- NOTICE every 5 s and a summary line ("workload done: ...") at the end; the number of
-- rows changed, cascades included, is in pg_stat_user_tables once the session has ended
-- (shell/demo.sh prints the difference).

\set ON_ERROR_STOP on
\if :{?seconds}
\else
  \set seconds 30
\endif
\if :{?pause}
\else
  \set pause 0.1
\endif

CREATE OR REPLACE PROCEDURE public.rtdp_demo_workload(seconds integer, pause double precision)
LANGUAGE plpgsql AS $proc$
DECLARE
    started   timestamptz := clock_timestamp();
    deadline  timestamptz := clock_timestamp() + make_interval(secs => seconds);
    next_note timestamptz := clock_timestamp() + interval '5 seconds';
    tx        bigint := 0;
    n_keys    bigint := 0;
    a         bigint;
    max_order bigint;
    max_cust  bigint;
    oid_new   bigint;
    cust      bigint;
    k         integer;
BEGIN
    WHILE clock_timestamp() < deadline LOOP
        tx := tx + 1;
        SELECT last_value INTO max_order FROM shop.order_ids;
        SELECT last_value INTO max_cust FROM shop.customer_ids;

        IF tx % 5 = 0 THEN
            INSERT INTO shop.customers (customer_id, name, email, country, profile)
            VALUES (nextval('shop.customer_ids'),
                    (ARRAY['Renée', 'Björn', 'Jürgen', 'Ayşe', 'Ñandú', '花子'])[1 + floor(random() * 6)::int]
                      || ' ' || tx,
                    'new' || tx || '@example.com',
                    (ARRAY['DE', 'FR', 'JP', 'TR'])[1 + floor(random() * 4)::int],
                    jsonb_build_object('tier', 'bronze', 'newsletter', random() < 0.5, 'source', 'workload'));
        END IF;

        FOR k IN 1..4 LOOP
            oid_new := nextval('shop.order_ids');
            cust := coalesce((SELECT customer_id FROM shop.customers
                               WHERE customer_id >= 1 + floor(random() * max_cust)::bigint
                               ORDER BY customer_id LIMIT 1),
                             (SELECT min(customer_id) FROM shop.customers));
            INSERT INTO shop.orders (order_id, customer_id, status, total, currency, note, attributes)
            VALUES (oid_new, cust, 'new', 0, (ARRAY['EUR', 'USD', 'JPY'])[1 + floor(random() * 3)::int],
                    CASE WHEN random() < 0.3 THEN NULL ELSE 'Bestellung Nr. ' || oid_new || ' — “eilig” ⚡' END,
                    jsonb_build_object('channel', (ARRAY['web', 'app', 'store'])[1 + floor(random() * 3)::int],
                                       'tx', tx, 'lines', jsonb_build_array(k, k * 2)));
            INSERT INTO shop.order_items (order_id, line_no, sku, description, quantity, unit_price)
            SELECT oid_new, l,
                   'SKU-' || lpad(floor(random() * 500)::text, 4, '0'),
                   (ARRAY['tasse à café', 'Teekanne', '箸 (chopsticks)', 'ręcznik'])[1 + floor(random() * 4)::int],
                   1 + floor(random() * 5)::int,
                   round((0.5 + random() * 250)::numeric, 2)
              FROM generate_series(1, 1 + floor(random() * 3)::int) AS l;
            UPDATE shop.orders
               SET total = (SELECT sum(quantity * unit_price) FROM shop.order_items WHERE order_id = oid_new)
             WHERE order_id = oid_new;
        END LOOP;

        UPDATE shop.orders
           SET status = CASE status WHEN 'new' THEN 'paid' WHEN 'paid' THEN 'shipped'
                                    WHEN 'shipped' THEN 'delivered' ELSE 'returned' END,
               note = CASE WHEN random() < 0.2 THEN NULL ELSE 'geändert in tx ' || tx || ' ✓' END,
               attributes = attributes || jsonb_build_object('touched', tx, 'by', 'démo'),
               updated_at = now()
         WHERE order_id = ANY (ARRAY(SELECT 1 + floor(random() * max_order)::bigint FROM generate_series(1, 6)));

        UPDATE shop.order_items
           SET quantity = quantity + 1, unit_price = round(unit_price * 0.95, 2)
         WHERE (order_id, line_no) IN (SELECT 1 + floor(random() * max_order)::bigint, 1 FROM generate_series(1, 3));

        UPDATE shop.customers
           SET email = 'changed' || tx || '@example.org',
               profile = coalesce(profile, '{}') || jsonb_build_object('last_tx', tx),
               updated_at = now()
         WHERE customer_id = 1 + floor(random() * max_cust)::bigint;

        DELETE FROM shop.orders
         WHERE order_id = ANY (ARRAY(SELECT 1 + floor(random() * max_order)::bigint FROM generate_series(1, 2)));
        DELETE FROM shop.order_items
         WHERE order_id = 1 + floor(random() * max_order)::bigint AND line_no = 2;

        IF tx % 7 = 0 THEN    -- a composite-key change
            UPDATE shop.order_items SET line_no = line_no + 100
             WHERE (order_id, line_no) = (SELECT order_id, line_no FROM shop.order_items
                                           WHERE order_id >= 1 + floor(random() * max_order)::bigint
                                           ORDER BY order_id, line_no LIMIT 1);
            GET DIAGNOSTICS a = ROW_COUNT;
            n_keys := n_keys + a;
        END IF;
        IF tx % 10 = 0 THEN   -- an order's key changes; ON UPDATE CASCADE rewrites its items' keys
            UPDATE shop.orders SET order_id = nextval('shop.order_ids'), updated_at = now()
             WHERE order_id = (SELECT order_id FROM shop.orders
                                WHERE order_id >= 1 + floor(random() * max_order)::bigint
                                ORDER BY order_id LIMIT 1);
            GET DIAGNOSTICS a = ROW_COUNT;
            n_keys := n_keys + a;
        END IF;
        IF tx % 25 = 0 THEN   -- a customer's key changes; its orders follow
            UPDATE shop.customers SET customer_id = nextval('shop.customer_ids'), updated_at = now()
             WHERE customer_id = (SELECT customer_id FROM shop.customers
                                   WHERE customer_id >= 1 + floor(random() * max_cust)::bigint
                                   ORDER BY customer_id LIMIT 1);
            GET DIAGNOSTICS a = ROW_COUNT;
            n_keys := n_keys + a;
        END IF;
        IF tx % 30 = 0 THEN   -- a customer goes, with all its orders and their items
            DELETE FROM shop.customers
             WHERE customer_id = (SELECT customer_id FROM shop.customers
                                   WHERE customer_id >= 1 + floor(random() * max_cust)::bigint
                                   ORDER BY customer_id LIMIT 1);
        END IF;

        COMMIT;

        IF clock_timestamp() >= next_note THEN
            RAISE NOTICE 'workload: % transactions so far', tx;
            next_note := clock_timestamp() + interval '5 seconds';
        END IF;
        PERFORM pg_sleep(pause);
    END LOOP;
    RAISE NOTICE 'workload done: % transactions in % s, % primary-key UPDATE statements (cascades not counted)',
        tx, round(extract(epoch FROM clock_timestamp() - started)::numeric, 1), n_keys;
END
$proc$;

CALL public.rtdp_demo_workload(:seconds, :pause);
