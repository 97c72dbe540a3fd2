//! The pgoutput stream against a real PostgreSQL (the current Debian 15): unchanged
//! TOASTed values, TRUNCATE, an idle source whose slot still advances, the walsender
//! terminated under load, a transaction of a million rows within the memory bound, and
//! publications the collector cannot create or that vanished under the slot.

use std::time::{Duration, Instant};

use rtdp_testkit::wait_until;

use crate::common::{mixed_step, Chain, Load, MIX_TABLE};

/// `pg_replication_slots.confirmed_flush_lsn` of the chain's slot, as a number.
fn confirmed_flush(c: &Chain) -> u64 {
    let slot = c.slot();
    let text = c.sql(&format!(
        "SELECT coalesce(confirmed_flush_lsn - '0/0', 0)::bigint FROM pg_replication_slots \
         WHERE slot_name = '{slot}'"
    ));
    text.trim().parse().unwrap_or(0)
}

fn published(c: &Chain) -> u64 {
    c.collector()
        .metric("rtdp_collector_events_published_total")
        .unwrap_or(0.0) as u64
}

fn wait_published(c: &Chain, n: u64, timeout: Duration) {
    wait_until(timeout, &format!("{n} events published"), || {
        published(c) >= n
    });
}

/// VmHWM of a process, in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[test]
fn an_unchanged_toasted_value_stays_in_the_output_under_replica_identity_full() {
    let mut c = Chain::new("toast");
    c.sql(
        "CREATE TABLE docs (id int PRIMARY KEY, n int, body text); \
         ALTER TABLE docs REPLICA IDENTITY FULL; \
         ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL; \
         CREATE TABLE docs_default (id int PRIMARY KEY, n int, body text); \
         ALTER TABLE docs_default ALTER COLUMN body SET STORAGE EXTERNAL;",
    );
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    // 20 kB values, stored out of line (EXTERNAL: no compression, always TOASTed).
    c.sql("INSERT INTO docs SELECT g, 0, repeat(md5(g::text), 640) FROM generate_series(1, 50) g;");
    // Updates that leave the TOASTed column alone: pgoutput sends it as 'unchanged'.
    c.sql("UPDATE docs SET n = n + 1 WHERE id % 2 = 0;");
    c.sql("UPDATE docs SET n = n + 1 WHERE id % 3 = 0;");
    let report = c.wait_verified(Duration::from_secs(120));
    eprintln!("{}", report.render(false));
    // Without REPLICA IDENTITY FULL the collector says at start what the user gets.
    let log = c.collector().log_tail(400);
    assert!(
        log.contains("captured table lacks REPLICA IDENTITY FULL")
            && log.contains("docs_default")
            && log.contains("missing from the update's `after`"),
        "{log}"
    );
    c.assert_topic_exactly_once();
    c.stop_all();

    // What docs/POSTGRESQL.md says a DEFAULT identity gives: the update's row has null in
    // the unchanged TOASTed column (PostgreSQL does not send it), the rest is exact.
    let mut d = Chain::new("toastdef");
    d.sql(
        "CREATE TABLE docs_default (id int PRIMARY KEY, n int, body text); \
         ALTER TABLE docs_default ALTER COLUMN body SET STORAGE EXTERNAL;",
    );
    d.start_collector();
    d.start_worker();
    d.wait_collector_ready(Duration::from_secs(60));
    d.sql(
        "INSERT INTO docs_default SELECT g, 0, repeat(md5(g::text), 640) \
         FROM generate_series(1, 50) g;",
    );
    d.sql("UPDATE docs_default SET n = n + 1 WHERE id % 2 = 0;");
    wait_until(
        Duration::from_secs(120),
        "the 25 updated rows differ (null body) and the 25 others match",
        || {
            let r = d.verify();
            r.tables
                .iter()
                .any(|t| t.different == 25 && t.matching == 25 && t.missing == 0 && t.extra == 0)
        },
    );
    d.stop_all();
}

#[test]
fn truncate_is_logged_and_counted_and_the_stream_goes_on() {
    let mut c = Chain::new("trunc");
    c.sql(MIX_TABLE);
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    c.sql("INSERT INTO mix SELECT g, 'a', g FROM generate_series(1, 100) g;");
    wait_published(&c, 100, Duration::from_secs(60));
    c.sql("TRUNCATE mix;");
    c.sql("INSERT INTO mix SELECT g, 'b', g FROM generate_series(1, 50) g;");
    wait_published(&c, 150, Duration::from_secs(60));
    wait_until(Duration::from_secs(30), "truncate counted", || {
        c.collector()
            .metric("rtdp_collector_truncates_total")
            .is_some_and(|n| n >= 1.0)
    });
    let log = c.collector().log_tail(200);
    assert!(
        log.contains("TRUNCATE is not carried as events") && log.contains("public.mix"),
        "{log}"
    );
    assert_eq!(c.assert_topic_exactly_once(), 150);
    c.stop_all();
}

#[test]
fn an_idle_source_lets_the_slot_advance_while_other_tables_are_busy() {
    let mut c = Chain::new("idle");
    c.sql(MIX_TABLE);
    c.sql("CREATE TABLE other (id bigserial PRIMARY KEY, v text);");
    c.set_collector("DATABASE_TABLES", "public.mix");
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    c.sql("INSERT INTO mix SELECT g, 'a', g FROM generate_series(1, 10) g;");
    wait_published(&c, 10, Duration::from_secs(60));
    let start = confirmed_flush(&c);
    let wal_at_start: u64 = c
        .sql("SELECT (pg_current_wal_lsn() - '0/0')::bigint")
        .trim()
        .parse()
        .unwrap();
    // Only the uncaptured table is written from here on.
    let load = Load::start(c.pg, &c.db, false, |i| {
        format!("INSERT INTO other (v) SELECT 'x' || g FROM generate_series(1, 50) g; -- {i}")
    });
    wait_until(
        Duration::from_secs(60),
        "the slot's confirmed position passes the WAL written while idle",
        || confirmed_flush(&c) > wal_at_start,
    );
    load.stop();
    let end = confirmed_flush(&c);
    eprintln!("confirmed_flush_lsn moved {} bytes while idle", end - start);
    assert_eq!(
        published(&c),
        10,
        "nothing of the other table was published"
    );
    assert_eq!(c.assert_topic_exactly_once(), 10);
    c.stop_all();
}

#[test]
fn terminating_the_walsender_under_load_the_collector_reconnects_and_loses_nothing() {
    let mut c = Chain::new("term");
    c.sql(MIX_TABLE);
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    let load = Load::start(c.pg, &c.db, false, mixed_step);
    let app = format!("rtdp-collector:{}", c.name);
    for round in 0..3 {
        wait_until(Duration::from_secs(60), "a walsender streams", || {
            c.sql(&format!(
                "SELECT count(*) FROM pg_stat_replication WHERE application_name = '{app}'"
            ))
            .trim()
                == "1"
        });
        let before = published(&c);
        wait_until(Duration::from_secs(60), "the stream moves", || {
            published(&c) > before
        });
        let killed = c.sql(&format!(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_replication \
             WHERE application_name = '{app}') t"
        ));
        assert_eq!(killed.trim(), "1", "round {round}");
    }
    let txs = load.stop();
    assert!(txs > 50, "only {txs} write transactions ran");
    let report = c.wait_verified(Duration::from_secs(180));
    eprintln!("{}", report.render(false));
    let reconnects = c
        .collector()
        .metric("rtdp_collector_reconnects_total")
        .unwrap_or(0.0);
    assert!(reconnects >= 3.0, "reconnects: {reconnects}");
    let p = c.collector.as_mut().expect("collector");
    assert!(
        p.child.wait_timeout(Duration::ZERO).is_none(),
        "the collector stopped:\n{}",
        p.log_tail(40)
    );
    c.assert_topic_exactly_once();
    c.stop_all();
}

#[test]
fn a_million_row_transaction_streams_within_the_memory_bound() {
    let mut c = Chain::new("big");
    c.sql("CREATE TABLE wide (id int PRIMARY KEY, a text, b bigint, ts timestamptz);");
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    let pid = c.collector().child.pid();
    let base = peak_rss_mb(pid);
    let t0 = Instant::now();
    c.sql(
        "INSERT INTO wide SELECT g, 'row ' || g, g * 7, '2026-01-01'::timestamptz + g * interval '1 s' \
         FROM generate_series(1, 1000000) g;",
    );
    wait_published(&c, 1_000_000, Duration::from_secs(600));
    let secs = t0.elapsed().as_secs_f64();
    let peak = peak_rss_mb(pid);
    let batches = c
        .collector()
        .metric("rtdp_collector_batch_events_count")
        .unwrap_or(0.0);
    eprintln!(
        "1,000,000-row transaction: published in {secs:.1} s in {batches} Kafka transactions; \
         collector peak RSS {peak:.0} MB (before: {base:.0} MB)"
    );
    // The transaction is split into Kafka transactions of collector.maxBatchChanges
    // (100,000 by default) and decoding waits for the publisher: the whole transaction
    // (about 1 GB as events) is never held at once.
    assert!(batches >= 10.0, "{batches} batches");
    assert!(peak < 700.0, "peak RSS {peak:.0} MB");
    let report = c.wait_verified(Duration::from_secs(600));
    eprintln!("{}", report.render(false));
    c.stop_all();
}

#[test]
fn a_publication_the_user_may_not_create_stops_the_collector_with_the_fix() {
    let mut c = Chain::new("nopub");
    c.sql(MIX_TABLE);
    let role = format!("lim_{}", c.db);
    c.sql(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN \
         CREATE ROLE {role} LOGIN REPLICATION; END IF; END $$; \
         GRANT SELECT ON mix TO {role};"
    ));
    c.set_collector("DATABASE_USERNAME", &role);
    let (code, log) = c.run_to_exit();
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("may not create it")
            && log.contains("CREATE PUBLICATION")
            && log.contains("mix"),
        "{log}"
    );
    // The owner creates it as the error says: the same user now streams.
    let name = c.slot();
    c.sql(&format!("CREATE PUBLICATION {name} FOR TABLE mix;"));
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    c.sql("INSERT INTO mix SELECT g, 'a', g FROM generate_series(1, 20) g;");
    wait_published(&c, 20, Duration::from_secs(60));
    c.stop_all();
}

#[test]
fn a_publication_dropped_under_the_slot_stops_the_collector_naming_the_fix() {
    let mut c = Chain::new("droppub");
    c.sql(MIX_TABLE);
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    c.sql("INSERT INTO mix SELECT g, 'a', g FROM generate_series(1, 10) g;");
    wait_published(&c, 10, Duration::from_secs(60));
    c.stop_collector_ok();
    let name = c.slot();
    c.sql(&format!("DROP PUBLICATION {name};"));
    // Changes written while no publication exists cannot be decoded by the slot.
    c.sql("INSERT INTO mix SELECT g, 'b', g FROM generate_series(11, 20) g;");
    let (code, log) = c.run_to_exit();
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("does not exist") && log.contains("new collector.name"),
        "{log}"
    );
    c.stop_all();
}

#[test]
fn numeric_nan_and_infinities_and_arrays_arrive_through_pgoutput() {
    let mut c = Chain::new("nan");
    c.sql(
        "CREATE TABLE v (id int PRIMARY KEY, n numeric, f8 float8, f4 real, na numeric[], \
         fa float8[]); ALTER TABLE v REPLICA IDENTITY FULL;",
    );
    c.sql("INSERT INTO v VALUES (1, 'NaN', 'NaN', 'NaN', '{1.5,NaN}', '{Infinity,-0}');");
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    // Streamed, so they pass pgoutput's text form (the row above came by the snapshot).
    c.sql(
        "INSERT INTO v VALUES (2, 'Infinity', 'Infinity', '-Infinity', '{-Infinity}', '{NaN}'), \
         (3, '-Infinity', '-Infinity', 'Infinity', NULL, '{}'), \
         (4, '123456789012345678901234567890.000000001', 1e308, 3.4e38, '{0}', '{1e-300}');",
    );
    c.sql("UPDATE v SET n = 'NaN' WHERE id = 4;");
    let report = c.wait_verified(Duration::from_secs(120));
    eprintln!("{}", report.render(false));
    assert_eq!(c.assert_topic_exactly_once(), 5);
    c.stop_all();
}

#[test]
fn password_roles_without_superuser_stream_over_scram_and_md5_and_a_wrong_password_stops_with_the_fix(
) {
    let pg: &'static rtdp_testkit::postgres::PgServer = Box::leak(Box::new(
        rtdp_testkit::postgres::PgServer::start().expect("PostgreSQL"),
    ));
    // Password authentication for two roles, before the server's trust lines.
    let hba = pg.dir().join("data/pg_hba.conf");
    let old = std::fs::read_to_string(&hba).expect("pg_hba.conf");
    std::fs::write(
        &hba,
        format!(
            "host all rtdp_scram 127.0.0.1/32 scram-sha-256\nhost all rtdp_md5 127.0.0.1/32 md5\n{old}"
        ),
    )
    .expect("write pg_hba.conf");
    pg.psql("postgres", "SELECT pg_reload_conf();")
        .expect("reload");
    for (role, encryption) in [("rtdp_scram", "scram-sha-256"), ("rtdp_md5", "md5")] {
        let mut c = Chain::on(pg, role);
        // The role owns its tables and may create the publication; no superuser.
        c.sql(&format!(
            "SET password_encryption = '{encryption}'; \
             CREATE ROLE {role} LOGIN REPLICATION PASSWORD 'Secret-{role}'; \
             GRANT CREATE ON DATABASE \"{db}\" TO {role}; {MIX_TABLE} \
             ALTER TABLE mix OWNER TO {role};",
            db = c.db
        ));
        c.set_collector("DATABASE_USERNAME", role);
        c.set_collector("DATABASE_PASSWORD", "wrong");
        let (code, log) = c.run_to_exit();
        assert_eq!(code, Some(2), "{log}");
        assert!(
            log.contains("password authentication failed") && log.contains("DATABASE_PASSWORD"),
            "{log}"
        );
        assert!(
            !log.contains("wrong"),
            "the password reached the log:\n{log}"
        );
        c.set_collector("DATABASE_PASSWORD", &format!("Secret-{role}"));
        c.sql("INSERT INTO mix SELECT g, 'a', g FROM generate_series(1, 30) g;");
        c.start_collector();
        c.start_worker();
        c.wait_collector_ready(Duration::from_secs(60));
        c.sql("INSERT INTO mix SELECT g, 'b', g FROM generate_series(31, 50) g;");
        wait_published(&c, 50, Duration::from_secs(60));
        let log = c.collector().log_tail(200);
        assert!(log.contains("publication created"), "{log}");
        assert!(
            !log.contains(&format!("Secret-{role}")),
            "the password reached the log"
        );
        assert_eq!(c.assert_topic_exactly_once(), 50);
        c.stop_all();
    }
}
