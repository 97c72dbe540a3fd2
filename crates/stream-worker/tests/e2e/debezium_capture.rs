//! Records the real Debezium PostgreSQL connector emitted (`tests/data/debezium_pg/`, made
//! by its `capture.sh`: Debezium 3.2.7 on Kafka Connect 3.9.1, pgoutput, JsonConverter
//! with schemas on and off) through the real worker into Parquet, rebuilt by an
//! independent reader (`tests/py/rebuild_debezium_capture.py`) and compared value by
//! value with the database's final tables.
//!
//! The capture holds primary-key changes (a delete and a create at one `source.sequence`),
//! a table with REPLICA IDENTITY FULL and one with the default identity, unconstrained
//! numerics of 40+ digits, and tombstones. All records go to one partition, as in
//! Debezium's default one-partition topics, where both halves of a key change meet.

use crate::common::*;
use rtdp_testkit::{kafka, python, repo_root};
use serde_json::Value as J;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

fn capture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/debezium_pg")
}

/// One captured Kafka record.
struct Captured {
    topic: String,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

/// The records of `records_<mode>.jsonl`, in (topic, partition, offset) order.
fn captured(mode: &str) -> Vec<Captured> {
    let path = capture_dir().join(format!("records_{mode}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let j: J = serde_json::from_str(l).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            let bytes = |k: &str| j[k].as_str().map(|s| s.as_bytes().to_vec());
            Captured {
                topic: j["topic"].as_str().expect("topic").to_string(),
                key: bytes("key"),
                value: bytes("value"),
            }
        })
        .collect()
}

/// Accounts' records first, then items_full's: the order the workload ran them in.
fn in_workload_order(mut records: Vec<Captured>) -> Vec<Captured> {
    records.sort_by_key(|r| !r.topic.ends_with(".accounts"));
    records
}

fn produce(p: &Producer, records: &[Captured]) {
    for r in records {
        p.send(r.key.as_deref(), r.value.as_deref(), Some(0));
    }
    p.flush();
}

fn worker_env(topic: &str, group: &str, out: &Path) -> Vec<(String, String)> {
    let mut e = env(topic, group, out);
    set(&mut e, "OUTPUT_FORMAT", "parquet");
    set(&mut e, "CHECKPOINT_INTERVAL", "1000");
    e
}

/// Waits until the group committed `offset`; on a time-out, fails with the worker's log.
fn wait_committed(w: &mut Worker, group: &str, topic: &str, offset: i64) {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let committed = kafka().committed_offsets(group, topic);
        if committed == vec![offset] {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline && w.child.is_running(),
            "{group} committed {committed:?} of {topic}, not [{offset}]; worker log:\n{}",
            w.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The independent rebuild of the committed files against `final_tables.json`.
fn rebuild(mode: &str, out: &Path) -> J {
    let files = data_files(out);
    let o = Command::new(python())
        .arg(repo_root().join("crates/stream-worker/tests/py/rebuild_debezium_capture.py"))
        .arg(mode)
        .arg(capture_dir().join("final_tables.json"))
        .arg(out)
        .args(&files)
        .output()
        .expect("run rebuild_debezium_capture.py");
    assert!(
        o.status.success(),
        "rebuild_debezium_capture.py failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("one JSON report")
}

/// Both tables equal the database's, no event id twice, `rows` rows in the files.
fn assert_final_tables(report: &J, rows: u64) {
    for table in ["accounts", "items_full"] {
        let t = &report["tables"][table];
        assert_eq!(t["problems"], J::Array(vec![]), "{table}: {report}");
        assert_eq!(t["rows"], t["expected"], "{table}: {report}");
    }
    assert_eq!(report["duplicate_event_ids"], J::Array(vec![]), "{report}");
    assert_eq!(report["rows_read"], rows, "{report}");
}

/// Rows a capture writes: every record but the tombstones.
fn row_records(records: &[Captured]) -> u64 {
    records.iter().filter(|r| r.value.is_some()).count() as u64
}

fn the_capture_rebuilds_the_final_tables(mode: &str) {
    let k = kafka();
    let topic = k.unique_topic(&format!("dbz-capture-{mode}"));
    k.create_topic(&topic, 1);
    let records = in_workload_order(captured(mode));
    assert_eq!(records.len(), 27, "18 accounts + 9 items_full records");
    produce(&Producer::new(&topic), &records);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let group = format!("capture-{mode}");
    let mut w = Worker::start(&worker_env(&topic, &group, &out), &dir.path().join("w.log"));
    wait_committed(&mut w, &group, &topic, records.len() as i64);
    assert_eq!(w.metric("rtdp_duplicates_dropped_total"), Some(0.0));
    assert_eq!(w.metric("rtdp_dlq_records_count_total"), Some(0.0));
    w.stop_ok();
    assert!(dlq_files(&out).is_empty(), "nothing dead-lettered");
    assert_final_tables(&rebuild(mode, &out), row_records(&records));
}

#[test]
fn genuine_debezium_pg_records_with_schemas_rebuild_the_final_tables() {
    the_capture_rebuilds_the_final_tables("schema");
}

#[test]
fn genuine_debezium_pg_records_without_schemas_rebuild_the_final_tables() {
    the_capture_rebuilds_the_final_tables("noschema");
}

/// The worker is SIGKILLed after it committed the delete of a key change (accounts
/// 2 → 102) and before the create arrives; then the connector sends everything again, as
/// after a Connect restart. Nothing is lost, nothing is written twice.
#[test]
fn a_sigkill_between_the_halves_of_a_key_change_loses_nothing_and_doubles_nothing() {
    let k = kafka();
    let topic = k.unique_topic("dbz-capture-kill");
    k.create_topic(&topic, 1);
    let records = in_workload_order(captured("schema"));
    // The first half: the delete of id 2 (its value names op "d" and id 2), then its
    // tombstone; the create of 102 comes right after.
    let delete_at = records
        .iter()
        .position(|r| {
            r.value.as_deref().is_some_and(|v| {
                let j: J = serde_json::from_slice(v).unwrap();
                j["payload"]["op"] == "d" && j["payload"]["before"]["id"] == 2
            })
        })
        .expect("the delete half of 2 -> 102");
    assert!(records[delete_at + 1].value.is_none(), "its tombstone");
    let create: J =
        serde_json::from_slice(records[delete_at + 2].value.as_deref().unwrap()).unwrap();
    assert_eq!(create["payload"]["op"], "c");
    assert_eq!(create["payload"]["after"]["id"], 102);
    let first = delete_at + 2;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let group = "capture-kill";
    let e = worker_env(&topic, group, &out);
    let p = Producer::new(&topic);
    produce(&p, &records[..first]);
    let mut w = Worker::start(&e, &dir.path().join("w1.log"));
    wait_committed(&mut w, group, &topic, first as i64);
    w.child.sigkill();

    produce(&p, &records[first..]);
    produce(&p, &records); // the connector sends it all again
    let mut w = Worker::start(&e, &dir.path().join("w2.log"));
    let total = 2 * records.len() as i64;
    wait_committed(&mut w, group, &topic, total);
    let rows = row_records(&records);
    assert_eq!(
        w.metric("rtdp_duplicates_dropped_total"),
        Some(rows as f64),
        "every re-sent change dropped, nothing else"
    );
    w.stop_ok();
    assert!(dlq_files(&out).is_empty(), "nothing dead-lettered");
    assert_final_tables(&rebuild("schema", &out), rows);
}
