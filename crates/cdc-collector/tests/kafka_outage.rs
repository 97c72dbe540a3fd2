//! Kafka going away under load: the broker of this test binary (its own process, so no
//! other test shares it) is frozen with SIGSTOP; the collector's session fails,
//! readiness goes false and it retries with back-off; after SIGCONT it resumes and the
//! files (written by a worker started afresh) match the database, with no position twice
//! in the topic.

#[path = "e2e/common.rs"]
mod common;

use std::time::Duration;

use common::{mixed_step, Chain, Load, MIX_TABLE};
use rtdp_testkit::{kafka, wait_until};

#[allow(unsafe_code)]
fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is this test binary's
    // own broker, alive for the whole process.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

#[test]
fn kafka_frozen_under_load_the_collector_retries_and_loses_nothing() {
    let mut c = Chain::new("kafkaout");
    c.sql(MIX_TABLE);
    c.set_collector("PIPELINE_COLLECTOR_TRANSACTION_TIMEOUT_MS", "8000");
    c.start_collector();
    c.start_worker();
    c.wait_collector_ready(Duration::from_secs(60));
    let load = Load::paced(c.pg, &c.db, false, 100, mixed_step);
    common::wait_rows(&c, "mix", 500);
    let broker = kafka().pid();
    signal(broker, libc::SIGSTOP);
    let frozen = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(
            Duration::from_secs(90),
            "collector not ready while Kafka is frozen",
            || {
                c.collector()
                    .get("/health/ready")
                    .is_some_and(|(code, _)| code == 503)
            },
        );
    }));
    signal(broker, libc::SIGCONT);
    if let Err(p) = frozen {
        std::panic::resume_unwind(p);
    }
    common::wait_rows(&c, "mix", 3_000);
    let txs = load.stop();
    assert!(txs > 100, "{txs}");
    // This test is about the collector. The worker's consumer was seen (1 run of 3) not
    // to rejoin its group for minutes after the freeze (librdkafka's coordinator
    // connection stuck): a fresh worker takes over from the manifests, as a container
    // restart would.
    let mut old = c.worker.take().expect("worker");
    old.child.sigkill();
    let _ = old.child.wait_timeout(Duration::from_secs(10));
    c.start_worker();
    let report = c.wait_verified(Duration::from_secs(240));
    eprintln!("{}", report.render(false));
    let log = c.collector().log_tail(2000);
    assert!(
        log.contains("capture session failed; reconnecting"),
        "{log}"
    );
    assert!(c
        .collector()
        .metric("rtdp_collector_reconnects_total")
        .is_some_and(|n| n >= 1.0));
    c.assert_topic_exactly_once();
    c.stop_collector_ok();
    c.stop_all();
}
