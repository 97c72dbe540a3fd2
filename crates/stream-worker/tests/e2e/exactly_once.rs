//! Exactly-once under `kill -9`: at random instants, at every step of the commit
//! protocol, with duplicates re-sent by an at-least-once producer, and with three
//! workers sharing a topic when one of them dies.

use crate::common::*;
use rand::Rng;
use rtdp_testkit::{kafka, wait_until};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(240);

fn chaos_env(topic: &str, group: &str, out: &std::path::Path) -> Vec<(String, String)> {
    let mut e = env(topic, group, out);
    // Small files and frequent checkpoints, so kills land inside every phase.
    set(&mut e, "OUTPUT_ROLLING_SIZE", "262144");
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "300");
    set(&mut e, "CHECKPOINT_INTERVAL", "1000");
    e
}

/// No in-progress file ever stands under a final name: every committed file reads
/// completely (json_lines panics on a partial one).
fn assert_no_partial_files(out: &std::path::Path) {
    for f in data_files(out) {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            stream_worker::layout::parse_final_name(&name).is_some(),
            "unexpected file name under a final folder: {}",
            f.display()
        );
        json_lines(&f);
    }
}

#[test]
fn sigkill_at_random_instants_loses_nothing_and_doubles_nothing() {
    let k = kafka();
    let topic = k.unique_topic("eo-kill");
    k.create_topic(&topic, 4);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let log = dir.path().join("worker.log");
    let mut env = chaos_env(&topic, "eo-kill", &out);
    // Static membership: a restarted worker gets its partitions back at once instead of
    // waiting for the killed member's session to time out.
    set(
        &mut env,
        "PIPELINE_KAFKA_PROPERTIES_GROUP_INSTANCE_ID",
        "chaos-worker-1",
    );
    const N: u64 = 100_000;

    let mut rng = rand::rng();
    let kills: u64 = 12;
    for round in 0..kills {
        let mut w = Worker::start(&env, &log);
        // Load arrives while the worker is being killed and restarted.
        match round {
            0 | 2 | 4 | 6 | 8 => {
                produce_orders(&topic, round / 2 * 20_000..(round / 2 + 1) * 20_000)
            }
            // An at-least-once producer re-sends a batch: same events, same positions.
            5 => produce_orders(&topic, 10_000..12_000),
            _ => {}
        }
        w.wait_ready(LONG);
        // Chaos schedule: kill at a random instant while it works, not to wait for anything.
        let after = rng.random_range(0..1_500);
        std::thread::sleep(Duration::from_millis(after));
        w.child.sigkill();
        assert_no_partial_files(&out);
        eprintln!(
            "round {round}: killed after {after} ms; {} events committed",
            committed_event_ids(&out).len()
        );
    }

    let w = Worker::start(&env, &log);
    wait_until(LONG, "all events committed", || {
        committed_event_ids(&out).len() as u64 >= N
    });
    assert_eq!(
        w.stop(Duration::from_secs(30)),
        Some(0),
        "clean exit after SIGTERM"
    );
    assert_no_partial_files(&out);
    assert_exactly_once(&out, N);
    // A clean shutdown leaves nothing in progress.
    let mut tmp = Vec::new();
    walk(&out.join("_tmp"), &mut tmp);
    assert!(tmp.is_empty(), "leftover in-progress files: {tmp:?}");
}

/// A crash at each step of a checkpoint (before/after the manifest, between renames,
/// after renames, before the Kafka commit) is recovered with nothing lost or doubled.
#[test]
fn crash_at_every_step_of_the_commit_protocol() {
    let k = kafka();
    for point in [
        "before_manifest",
        "after_manifest",
        "mid_renames",
        "after_renames",
        "before_kafka_commit",
    ] {
        let topic = k.unique_topic("eo-step");
        k.create_topic(&topic, 2);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let log = dir.path().join("worker.log");
        let mut env = env(&topic, "eo-step", &out);
        // Two tables per partition, so a checkpoint renames several files.
        set(&mut env, "OUTPUT_ROLLING_INACTIVITY", "200");
        let n = 4_000;
        kafka()
            .produce(
                &topic,
                (0..n).map(|i| {
                    let table = if i % 2 == 0 { "orders" } else { "orders_b" };
                    let ev = rtdp_testkit::gen::order_event_at(
                        "gen",
                        table,
                        i,
                        1_795_478_400_000 + i as i64,
                    );
                    let (k, v) = rtdp_testkit::gen::to_record(&ev);
                    (Some(k), v, None)
                }),
            )
            .unwrap();
        let mut crashing = env.clone();
        set(&mut crashing, "RTDP_CRASH_AT", &format!("{point}:2"));
        let mut w = Worker::start(&crashing, &log);
        let status = w
            .child
            .wait_timeout(LONG)
            .expect("worker crashes at the crash point");
        assert!(
            !status.success(),
            "{point}: expected a crash, got {status:?}"
        );
        assert!(
            w.log_text().contains(&format!("aborting at {point}")),
            "{point}: crash point not reached"
        );

        let w = Worker::start(&env, &log);
        let expected: std::collections::HashSet<String> = (0..n)
            .map(|i| {
                let table = if i % 2 == 0 { "orders" } else { "orders_b" };
                rtdp_testkit::gen::order_event_at("gen", table, i, 1_795_478_400_000 + i as i64)
                    .event_id
            })
            .collect();
        wait_until(LONG, "all events committed after the crash", || {
            committed_event_ids(&out).len() >= n as usize
        });
        assert_eq!(w.stop(Duration::from_secs(30)), Some(0));
        let ids = committed_event_ids(&out);
        assert!(ids.values().all(|c| *c == 1), "{point}: doubled events");
        assert_eq!(
            ids.keys()
                .cloned()
                .collect::<std::collections::HashSet<_>>(),
            expected,
            "{point}"
        );
    }
}

#[test]
fn three_workers_share_partitions_and_survive_one_killed() {
    let k = kafka();
    let topic = k.unique_topic("eo-group");
    k.create_topic(&topic, 6);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let env = chaos_env(&topic, "eo-group", &out);
    produce_orders(&topic, 0..30_000);
    let workers: Vec<Worker> = (0..3)
        .map(|i| Worker::start(&env, &dir.path().join(format!("w{i}.log"))))
        .collect();
    wait_until(LONG, "6 partitions spread over 3 workers", || {
        let counts: Vec<usize> = workers.iter().map(|w| w.partitions().len()).collect();
        counts.iter().sum::<usize>() == 6 && counts.iter().all(|c| *c >= 1)
    });
    let mut workers = workers;
    let mut victim = workers.remove(1);
    victim.child.sigkill();
    produce_orders(&topic, 30_000..60_000);
    wait_until(LONG, "the survivors take over all 6 partitions", || {
        workers.iter().map(|w| w.partitions().len()).sum::<usize>() == 6
    });
    wait_until(LONG, "all events committed", || {
        committed_event_ids(&out).len() >= 60_000
    });
    for w in workers {
        assert_eq!(w.stop(Duration::from_secs(30)), Some(0));
    }
    assert_exactly_once(&out, 60_000);
}

/// SIGTERM commits what is open (no roll was due) and exits 0.
#[test]
fn sigterm_commits_open_files_and_exits_zero() {
    let k = kafka();
    let topic = k.unique_topic("eo-term");
    k.create_topic(&topic, 2);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut env = env(&topic, "eo-term", &out);
    set(&mut env, "OUTPUT_ROLLING_INACTIVITY", "3600000");
    set(&mut env, "CHECKPOINT_INTERVAL", "3600000");
    produce_orders(&topic, 0..5_000);
    let w = Worker::start(&env, &dir.path().join("w.log"));
    w.wait_ready(LONG);
    wait_until(LONG, "all records received", || {
        w.metric("rtdp_records_in_total") >= Some(5_000.0)
    });
    assert!(
        data_files(&out).is_empty(),
        "nothing may be committed before the roll"
    );
    // The gauge follows within a tick (100 ms).
    wait_until(LONG, "two open files reported", || {
        w.metric("rtdp_open_files") == Some(2.0)
    });
    assert_eq!(w.stop(Duration::from_secs(30)), Some(0));
    assert_exactly_once(&out, 5_000);
    // Kafka's committed offsets follow the files (for lag monitoring).
    assert_eq!(
        k.committed_offsets("eo-term", &topic).iter().sum::<i64>(),
        5_000
    );
}

/// SIGTERM at random instants while records stream in: every stop is clean (exit 0,
/// nothing left in progress) and the restarts together commit each event exactly once.
#[test]
fn sigterm_under_load_stops_cleanly_every_time() {
    let k = kafka();
    let topic = k.unique_topic("eo-term-load");
    k.create_topic(&topic, 3);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let log = dir.path().join("worker.log");
    let mut env = chaos_env(&topic, "eo-term-load", &out);
    set(
        &mut env,
        "PIPELINE_KAFKA_PROPERTIES_GROUP_INSTANCE_ID",
        "term-worker-1",
    );
    let n = 40_000u64;
    let mut rng = rand::rng();
    for round in 0..4u64 {
        produce_orders(&topic, round * n / 4..(round + 1) * n / 4);
        let w = Worker::start(&env, &log);
        w.wait_ready(LONG);
        // Stop at a random instant of the work, not to wait for anything.
        std::thread::sleep(Duration::from_millis(rng.random_range(0..800)));
        assert_eq!(
            w.stop(Duration::from_secs(40)),
            Some(0),
            "round {round}: clean exit"
        );
        let mut tmp = Vec::new();
        walk(&out.join("_tmp"), &mut tmp);
        assert!(
            tmp.is_empty(),
            "round {round}: in-progress files left: {tmp:?}"
        );
        assert_no_partial_files(&out);
    }
    let w = Worker::start(&env, &log);
    wait_until(LONG, "all events committed", || {
        committed_event_ids(&out).len() as u64 >= n
    });
    assert_eq!(w.stop(Duration::from_secs(40)), Some(0));
    assert_exactly_once(&out, n);
}
