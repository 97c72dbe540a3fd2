//! Failures: the collector SIGKILLed again and again under load, PostgreSQL restarted
//! under load, a second collector with the same name, and the idempotent (DataHub-style)
//! mode with a position file, SIGKILLed too.

use std::time::{Duration, Instant};

use rand::Rng;
use rtdp_testkit::postgres::PgServer;

use crate::common::{mixed_step, Chain, Load, MIX_TABLE};

fn kill_and_restart_under_load(c: &mut Chain, kills: usize) {
    let mut rng = rand::rng();
    for k in 0..kills {
        // A random instant: anywhere in reading, publishing, committing or confirming.
        let ms = rng.random_range(200..1500);
        std::thread::sleep(Duration::from_millis(ms));
        let p = c.collector.as_mut().expect("collector");
        if let Some(st) = p.child.wait_timeout(Duration::ZERO) {
            panic!(
                "collector exited by itself ({st}) before kill {k}:\n{}",
                p.log_tail(40)
            );
        }
        p.child.sigkill();
        let _ = p.child.wait_timeout(Duration::from_secs(10));
        c.start_collector();
    }
}

#[test]
fn sigkill_of_the_collector_ten_times_under_load_loses_and_doubles_nothing() {
    let mut c = Chain::new("kill");
    c.sql(MIX_TABLE);
    c.sql("INSERT INTO mix SELECT -g, 'pre', g FROM generate_series(1, 5000) g;");
    c.set_collector("PIPELINE_COLLECTOR_MAX_BATCH_CHANGES", "300");
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    let load = Load::start(c.pg, &c.db, false, mixed_step);
    kill_and_restart_under_load(&mut c, 12);
    let txs = load.stop();
    assert!(txs > 100, "only {txs} write transactions ran");
    let report = c.wait_verified(Duration::from_secs(180));
    eprintln!("{}", report.render(false));
    let events = c.assert_topic_exactly_once();
    let applied: u64 = report.tables.iter().map(|t| t.changes_applied).sum();
    assert_eq!(applied, events as u64);
    c.stop_all();
}

#[test]
fn idempotent_mode_with_a_position_file_stays_exactly_once_in_files_across_sigkills() {
    let mut c = Chain::new("idem");
    c.sql(MIX_TABLE);
    let pos = c.dir.path().join("state/pos.json");
    c.set_collector("COLLECTOR_PRODUCER_MODE", "idempotent");
    c.set_collector("COLLECTOR_OFFSET_STORE", "file");
    c.set_collector("COLLECTOR_OFFSET_FILE", &pos.display().to_string());
    c.set_collector("PIPELINE_COLLECTOR_MAX_BATCH_CHANGES", "300");
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    let load = Load::start(c.pg, &c.db, false, mixed_step);
    kill_and_restart_under_load(&mut c, 10);
    load.stop();
    // The topic may hold re-sent events (at-least-once); the files may not.
    let report = c.wait_verified(Duration::from_secs(180));
    eprintln!("{}", report.render(false));
    assert!(pos.exists());
    c.stop_all();
}

#[test]
fn postgres_restarted_under_load_the_collector_reconnects_and_loses_nothing() {
    let pg: &'static PgServer =
        Box::leak(Box::new(PgServer::start().expect("dedicated PostgreSQL")));
    let mut c = Chain::on(pg, "pgrestart");
    c.sql(MIX_TABLE);
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    let load = Load::start(pg, &c.db, true, mixed_step);
    crate::common::wait_rows(&c, "mix", 500);
    pg.restart().expect("restart PostgreSQL");
    let after = Instant::now();
    crate::common::wait_rows(&c, "mix", 3_000);
    let txs = load.stop();
    assert!(txs > 100, "{txs}");
    let report = c.wait_verified(Duration::from_secs(180));
    eprintln!(
        "verified {:?} after the restart:\n{}",
        after.elapsed(),
        report.render(false)
    );
    let reconnects = c
        .collector()
        .metric("rtdp_collector_reconnects_total")
        .unwrap_or(0.0);
    assert!(
        reconnects >= 1.0,
        "no reconnect counted:\n{}",
        c.collector().log_tail(30)
    );
    assert!(c
        .collector()
        .log_tail(400)
        .contains("capture session failed; reconnecting"));
    c.assert_topic_exactly_once();
    c.stop_all();
}

#[test]
fn a_second_collector_with_the_same_name_fences_the_first() {
    let mut c = Chain::new("fence");
    c.sql(MIX_TABLE);
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    let load = Load::start(c.pg, &c.db, false, mixed_step);
    crate::common::wait_rows(&c, "mix", 300);
    let mut first = c.collector.take().expect("first");
    c.start_collector();
    let status = first
        .child
        .wait_timeout(Duration::from_secs(60))
        .unwrap_or_else(|| {
            panic!(
                "the first collector still runs:\n{}\n--- the second:\n{}",
                first.log_tail(30),
                c.collector().log_tail(30)
            )
        });
    assert_eq!(status.code(), Some(3), "{}", first.log_tail(30));
    assert!(
        first.log_tail(50).contains("fenced"),
        "{}",
        first.log_tail(30)
    );
    crate::common::wait_rows(&c, "mix", 1_500);
    load.stop();
    c.wait_verified(Duration::from_secs(180));
    c.assert_topic_exactly_once();
    c.stop_all();
}

#[test]
fn sigkill_during_the_initial_snapshot_resumes_it_and_the_files_match() {
    let mut c = Chain::new("snapkill");
    c.sql(MIX_TABLE);
    c.sql("CREATE TABLE other (id int PRIMARY KEY, v text);");
    c.sql("INSERT INTO other SELECT g, 'o' || g FROM generate_series(1, 3000) g;");
    c.sql("INSERT INTO mix SELECT g, 'pre' || g, g FROM generate_series(1, 60000) g;");
    c.set_collector("PIPELINE_COLLECTOR_SNAPSHOT_CHUNK_ROWS", "500");
    c.start_collector();
    c.start_worker();
    rtdp_testkit::wait_until(Duration::from_secs(120), "snapshot under way", || {
        c.collector()
            .metric("rtdp_collector_snapshot_rows_total")
            .is_some_and(|n| n >= 8_000.0)
    });
    let p = c.collector.as_mut().expect("collector");
    p.child.sigkill();
    let _ = p.child.wait_timeout(Duration::from_secs(10));
    c.start_collector();
    let report = c.wait_verified(Duration::from_secs(180));
    eprintln!("{}", report.render(false));
    assert!(c
        .collector()
        .log_tail(400)
        .contains("resuming the initial snapshot"));
    c.assert_topic_exactly_once();
    c.stop_all();
}
