//! The whole chain over every type, primary-key changes, a keyless table, a 100,000-row
//! transaction, and a snapshot taken while writes run.

use std::time::{Duration, Instant};

use crate::common::{mixed_step, Chain, Load, MIX_TABLE};

const TYPES_TABLE: &str = r#"
CREATE TABLE t_types (
  id bigint PRIMARY KEY, i2 smallint, i4 integer, i8 bigint,
  n38 numeric(38,10), n38_0 numeric(38,0), n_free numeric, money2 numeric(10,2),
  f4 real, f8 double precision, b boolean, txt text, vc varchar(50), ch char(5),
  bin bytea, d date, t time, ts timestamp, tstz timestamptz,
  j json, jb jsonb, u uuid, arr int[], tarr text[], farr float8[]
);
ALTER TABLE t_types REPLICA IDENTITY FULL;
CREATE TABLE t_nokey (a int, b text);
ALTER TABLE t_nokey REPLICA IDENTITY FULL;
CREATE TABLE "Mixed Case" (id int PRIMARY KEY, "Some Col" text);
"#;

fn types_row(id: i64) -> String {
    let sign = if id % 2 == 0 { "" } else { "-" };
    format!(
        "({id}, {i2}, {i4}, {i8}, {sign}9999999999999999999999999999.9999999999, \
         {sign}99999999999999999999999999999999999999, {sign}123456789012345678901234567890123456789012345.000100, \
         {sign}0.01, 3.4028235e38, 1.7976931348623157e308, {b}, \
         E'unicode 雪 ☃ 😀 \\'q\\' \"dq\" back\\\\slash\\nnew line\\ttab {id}', 'vc{id}', 'ab', \
         '\\x00ff10{id:04x}'::bytea, '1931-02-{day:02}', '23:59:59.999999', \
         '1969-12-31 23:59:59.123456', '2026-03-29 01:30:00.5+05:45', \
         '{{\"k\": [1, 2, {{\"x\": null}}], \"s\": \"é\"}}', '{{\"b\": 1, \"a\": \"z\"}}', \
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a{id2:02x}', '{{1,NULL,3}}', \
         '{{\"a b\",\"q\\\"uote\",NULL,\"\"}}', '{{1.5,-2.25e-10}}')",
        i2 = if id % 3 == 0 { "32767".to_string() } else { "-32768".to_string() },
        i4 = if id % 3 == 0 { "2147483647".to_string() } else { "NULL".to_string() },
        i8 = if id % 2 == 0 { "9223372036854775807" } else { "-9223372036854775808" },
        b = if id % 2 == 0 { "true" } else { "NULL" },
        day = 1 + id % 28,
        id2 = id % 256,
    )
}

#[test]
fn every_type_key_changes_keyless_rows_and_a_100k_transaction_arrive_exactly_once() {
    let mut c = Chain::new("chain");
    c.sql(TYPES_TABLE);
    c.sql("CREATE TABLE big (id int PRIMARY KEY, v text);");
    // Rows before the collector starts: they come through the snapshot.
    let rows: Vec<String> = (1..=20).map(types_row).collect();
    c.sql(&format!("INSERT INTO t_types VALUES {};", rows.join(",")));
    c.sql("INSERT INTO t_nokey VALUES (1, 'one'), (1, 'one'), (2, NULL);");
    c.sql(r#"INSERT INTO "Mixed Case" VALUES (1, 'x');"#);
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));

    // Streamed: inserts, updates, primary-key changes, deletes, NULLs.
    let rows: Vec<String> = (21..=60).map(types_row).collect();
    c.sql(&format!("INSERT INTO t_types VALUES {};", rows.join(",")));
    c.sql(
        "BEGIN; UPDATE t_types SET txt = txt || ' upd', n38 = 0.0000000001, tstz = '2000-01-01 00:00:00-08' WHERE id % 4 = 0; \
         UPDATE t_types SET id = id + 1000 WHERE id % 5 = 0; \
         UPDATE t_types SET bin = NULL, jb = NULL, arr = '{}' WHERE id % 7 = 0; \
         DELETE FROM t_types WHERE id % 6 = 1; COMMIT;",
    );
    c.sql("UPDATE t_types SET id = 5 WHERE id = 1005;"); // a key back to a freed value
    c.sql(
        "BEGIN; INSERT INTO t_nokey VALUES (3, 'three'), (3, 'three'); \
         UPDATE t_nokey SET b = 'uno' WHERE a = 1; DELETE FROM t_nokey WHERE a = 2; \
         INSERT INTO t_nokey VALUES (NULL, NULL); COMMIT;",
    );
    c.sql(r#"UPDATE "Mixed Case" SET "Some Col" = 'y', id = 2 WHERE id = 1;"#);
    // One source transaction of 100,000 rows, then 50,000 updates and 10,000 deletes.
    let t0 = Instant::now();
    c.sql("INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 100000) g;");
    c.sql("UPDATE big SET v = v || 'x' WHERE id % 2 = 0;");
    c.sql("DELETE FROM big WHERE id % 10 = 0;");

    let report = c.wait_verified(Duration::from_secs(300));
    eprintln!(
        "verified after {:?}:\n{}",
        t0.elapsed(),
        report.render(false)
    );
    let events = c.assert_topic_exactly_once();
    let applied: u64 = report.tables.iter().map(|t| t.changes_applied).sum();
    assert_eq!(
        applied, events as u64,
        "every event in the topic is one applied row in the files"
    );
    assert!(events > 160_000, "{events} events");
    for t in &report.tables {
        assert_eq!(t.duplicate_events, 0, "{}", t.name);
        assert!(t.problems.is_empty(), "{}: {:?}", t.name, t.problems);
    }
    let big = report
        .tables
        .iter()
        .find(|t| t.name == "public.big")
        .expect("big");
    assert_eq!(big.source_rows, 90_000);
    c.stop_collector_ok();
    c.stop_all();
}

#[test]
fn a_snapshot_taken_while_writes_run_has_nothing_missing_and_nothing_twice() {
    let mut c = Chain::new("snap");
    c.sql(MIX_TABLE);
    c.sql("INSERT INTO mix SELECT -g, 'pre' || g, g FROM generate_series(1, 40000) g;");
    c.set_collector("PIPELINE_COLLECTOR_SNAPSHOT_CHUNK_ROWS", "500");
    let load = Load::start(c.pg, &c.db, false, mixed_step);
    // Let the writer get going, then start the collector under it.
    crate::common::wait_rows(&c, "mix", 40_050);
    c.start_collector();
    c.start_worker();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !c
        .collector()
        .log_tail(400)
        .contains("initial snapshot finished")
    {
        assert!(
            Instant::now() < deadline,
            "snapshot did not finish:\n{}",
            c.collector().log_tail(40)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let during = c
        .collector()
        .metric("rtdp_collector_snapshot_rows_total")
        .unwrap_or(0.0);
    // Stream a while past the snapshot, then stop writing.
    crate::common::wait_rows(&c, "mix", 40_050 + 2_000);
    let txs = load.stop();
    assert!(during >= 40_000.0, "snapshot rows {during}");
    assert!(txs > 50, "only {txs} write transactions ran");
    let report = c.wait_verified(Duration::from_secs(180));
    eprintln!("{}", report.render(false));
    c.assert_topic_exactly_once();
    c.stop_all();
}

#[test]
fn columns_added_and_dropped_mid_stream_travel_with_the_events() {
    let mut c = Chain::new("ddl");
    c.sql(
        "CREATE TABLE d (id int PRIMARY KEY, a text, b int); ALTER TABLE d REPLICA IDENTITY FULL;",
    );
    c.sql("INSERT INTO d SELECT g, 'a' || g, g FROM generate_series(1, 100) g;");
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    c.sql("INSERT INTO d SELECT g, 'a' || g, g FROM generate_series(101, 200) g;");
    c.sql("ALTER TABLE d ADD COLUMN c numeric(10,2);");
    c.sql("INSERT INTO d SELECT g, 'a' || g, g, g / 4.0 FROM generate_series(201, 300) g;");
    c.sql("UPDATE d SET c = 1.5 WHERE id % 3 = 0;");
    c.sql("ALTER TABLE d DROP COLUMN b;");
    c.sql("INSERT INTO d SELECT g, 'z', 2.25 FROM generate_series(301, 400) g;");
    c.sql("DELETE FROM d WHERE id % 7 = 0;");
    let report = c.wait_verified(Duration::from_secs(120));
    eprintln!("{}", report.render(false));
    assert!(c
        .collector()
        .log_tail(200)
        .contains("table columns changed"));
    c.assert_topic_exactly_once();
    c.stop_all();
}

#[test]
fn a_transactional_collector_with_a_position_file_resumes_from_the_file() {
    let mut c = Chain::new("txfile");
    c.sql(MIX_TABLE);
    c.sql("INSERT INTO mix SELECT -g, 'pre', g FROM generate_series(1, 1000) g;");
    let pos = c.dir.path().join("state/pos.json");
    c.set_collector("COLLECTOR_OFFSET_STORE", "file");
    c.set_collector("COLLECTOR_OFFSET_FILE", &pos.display().to_string());
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    for i in 0..20 {
        c.sql(&mixed_step(i));
    }
    c.wait_verified(Duration::from_secs(120));
    c.stop_collector_ok();
    assert!(pos.exists(), "no position file");
    for i in 20..40 {
        c.sql(&mixed_step(i));
    }
    c.start_collector();
    c.wait_collector_ready(Duration::from_secs(60));
    let report = c.wait_verified(Duration::from_secs(120));
    eprintln!("{}", report.render(false));
    let log = c.collector().log_tail(200);
    assert!(
        log.contains("resuming strictly after the stored position"),
        "{log}"
    );
    assert!(
        !log.contains("initial snapshot starting"),
        "snapshot taken again:\n{log}"
    );
    c.assert_topic_exactly_once();
    c.stop_all();
}
