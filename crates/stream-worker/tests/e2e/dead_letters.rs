//! Dead letters through the real worker: 3,000 good generator events interleaved with
//! 7 records of each kind of bad input, over two partitions. Every good event is
//! committed exactly once; the `_dlq/` files hold exactly the bad records, each with its
//! stage, an error that names no row value, its Kafka coordinates and its original bytes;
//! the metrics count them by stage.

use crate::common::*;
use base64::Engine;
use rtdp_testkit::gen::{order_event, to_record};
use rtdp_testkit::kafka;
use serde_json::Value as J;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);
const GOOD: u64 = 3_000;
const PER_CLASS: usize = 7;
const MAX_RECORD_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    NotJson,
    JsonArray,
    MissingSource,
    MissingAfter,
    UnknownOp,
    WrongType,
    Oversized,
}

const CLASSES: [Class; 7] = [
    Class::NotJson,
    Class::JsonArray,
    Class::MissingSource,
    Class::MissingAfter,
    Class::UnknownOp,
    Class::WrongType,
    Class::Oversized,
];

impl Class {
    /// The stage decode.rs assigns to this kind of failure.
    fn stage(self) -> &'static str {
        match self {
            Class::WrongType => "convert",
            _ => "decode",
        }
    }

    /// A fragment the error message must hold (it says what is wrong).
    fn error_has(self) -> &'static str {
        match self {
            Class::NotJson => "not JSON",
            Class::JsonArray => "not a JSON object",
            Class::MissingSource => "source",
            Class::MissingAfter => "after",
            Class::UnknownOp => "unknown op",
            Class::WrongType => "order_id",
            Class::Oversized => "maxRecordBytes",
        }
    }

    /// The bad record number `n` of this class. Every one carries a `SECRET-` marker in
    /// a row value (or the raw text), which no error message may repeat.
    fn record(self, n: usize) -> Vec<u8> {
        let secret = format!("SECRET-{self:?}-{n}");
        // Events of the generator far beyond the good ones: own ids, own positions.
        let i = 1_000_000 + (self as u64) * 100 + n as u64;
        let mut ev = serde_json::to_value(order_event(i)).unwrap();
        ev["after"]["note"] = J::String(secret.clone());
        match self {
            Class::NotJson => format!("not json {secret} {{").into_bytes(),
            Class::JsonArray => serde_json::to_vec(&serde_json::json!([secret, 1, 2])).unwrap(),
            Class::MissingSource => {
                ev.as_object_mut().unwrap().remove("source");
                serde_json::to_vec(&ev).unwrap()
            }
            Class::MissingAfter => {
                ev.as_object_mut().unwrap().remove("after");
                serde_json::to_vec(&ev).unwrap()
            }
            Class::UnknownOp => {
                ev["op"] = J::String("x".into());
                serde_json::to_vec(&ev).unwrap()
            }
            Class::WrongType => {
                ev["after"]["order_id"] = J::String("abc".into());
                serde_json::to_vec(&ev).unwrap()
            }
            Class::Oversized => {
                // A valid event of about 10 KB.
                ev["after"]["note"] = J::String(format!("{secret} {}", "x".repeat(10_000)));
                let v = serde_json::to_vec(&ev).unwrap();
                assert!(v.len() > MAX_RECORD_BYTES * 2);
                v
            }
        }
    }
}

/// Key, value and partition, as `KafkaBroker::produce` takes them.
type KafkaRecord = (Option<Vec<u8>>, Vec<u8>, Option<i32>);

#[derive(Debug)]
struct Bad {
    class: Class,
    key: Vec<u8>,
    value: Vec<u8>,
}

#[test]
fn bad_records_of_every_kind_go_to_dead_letters_with_their_bytes() {
    let k = kafka();
    let topic = k.unique_topic("dlq");
    k.create_topic(&topic, 2);

    // The sequence: good events in order, a bad record after every 60th; records go to
    // partitions 0, 1, 0, 1, … so each one's offset is known.
    let mut bad_queue: Vec<(Class, usize)> = Vec::new();
    for n in 0..PER_CLASS {
        for c in CLASSES {
            bad_queue.push((c, n));
        }
    }
    let mut records: Vec<KafkaRecord> = Vec::new();
    let mut expected: BTreeMap<(i32, i64), Bad> = BTreeMap::new();
    let mut next_offset = [0i64; 2];
    let mut push = |key: Vec<u8>, value: Vec<u8>, bad: Option<Class>| {
        let p = (records.len() % 2) as i32;
        let offset = next_offset[p as usize];
        next_offset[p as usize] += 1;
        if let Some(class) = bad {
            expected.insert(
                (p, offset),
                Bad {
                    class,
                    key: key.clone(),
                    value: value.clone(),
                },
            );
        }
        records.push((Some(key), value, Some(p)));
    };
    let mut bad_iter = bad_queue.into_iter();
    for i in 0..GOOD {
        let (key, value) = to_record(&order_event(i));
        assert!(value.len() < MAX_RECORD_BYTES, "good events fit the limit");
        push(key, value, None);
        if i % 60 == 59 {
            if let Some((c, n)) = bad_iter.next() {
                push(format!("bad-{c:?}-{n}").into_bytes(), c.record(n), Some(c));
            }
        }
    }
    for (c, n) in bad_iter {
        push(format!("bad-{c:?}-{n}").into_bytes(), c.record(n), Some(c));
    }
    let n_bad = expected.len();
    assert_eq!(n_bad, CLASSES.len() * PER_CLASS);
    k.produce(&topic, records).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut e = env(&topic, "dlq", &out);
    set(
        &mut e,
        "OUTPUT_MAX_RECORD_BYTES",
        &MAX_RECORD_BYTES.to_string(),
    );
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "300");
    let t0 = now_ms();
    let w = Worker::start(&e, &dir.path().join("w.log"));
    w.wait_metric("rtdp_records_out_total", GOOD as f64, LONG);
    w.wait_metric("rtdp_dlq_records_count_total", n_bad as f64, LONG);
    assert_eq!(w.metric("rtdp_records_out_total"), Some(GOOD as f64));
    assert_eq!(w.metric("rtdp_dlq_records_count_total"), Some(n_bad as f64));
    let by_stage = |stage: &str| {
        w.metric_sample(
            "rtdp_failed_records_count_total",
            &format!("stage=\"{stage}\""),
        )
    };
    let expected_stage = |stage: &str| {
        expected
            .values()
            .filter(|b| b.class.stage() == stage)
            .count() as f64
    };
    assert_eq!(by_stage("decode"), Some(expected_stage("decode")));
    assert_eq!(by_stage("convert"), Some(expected_stage("convert")));
    w.stop_ok();
    let t1 = now_ms();

    // Good events: each exactly once, nothing else in the data files.
    assert_exactly_once(&out, GOOD);

    // Dead letters: exactly the bad records.
    // The day of the failure (the run may straddle midnight).
    let days = [
        stream_worker::layout::day_folder(t0),
        stream_worker::layout::day_folder(t1),
    ];
    let mut found: HashMap<(i32, i64), usize> = HashMap::new();
    let mut per_class: BTreeMap<Class, usize> = BTreeMap::new();
    let files = dlq_files(&out);
    assert!(!files.is_empty(), "no dead-letter files");
    for f in &files {
        let r = rel(&out, f);
        assert!(
            days.iter().any(|d| r.starts_with(&format!("_dlq/{d}/"))),
            "{r}: folder"
        );
        assert!(r.ends_with(".jsonl"), "{r}: extension");
        let (t, p, first, last) = file_offsets(f);
        assert_eq!(t, topic, "{r}");
        let lines = json_lines(f);
        assert!(!lines.is_empty(), "{r}: empty");
        let offsets: Vec<i64> = lines
            .iter()
            .map(|l| l["offset"].as_i64().unwrap())
            .collect();
        assert_eq!(
            (offsets.iter().min().copied(), offsets.iter().max().copied()),
            (Some(first), Some(last)),
            "{r}: name's offsets vs lines"
        );
        for line in &lines {
            let partition = line["partition"].as_i64().expect("partition") as i32;
            let offset = line["offset"].as_i64().expect("offset");
            assert_eq!(partition, p, "{r}: line of another partition");
            assert_eq!(line["topic"], topic.as_str(), "{r}");
            let bad = expected.get(&(partition, offset)).unwrap_or_else(|| {
                panic!("{r}: dead letter for a good record at {partition}/{offset}: {line}")
            });
            *found.entry((partition, offset)).or_insert(0) += 1;
            *per_class.entry(bad.class).or_insert(0) += 1;
            let what = format!("{:?} at {partition}/{offset}", bad.class);
            assert_eq!(line["stage"], bad.class.stage(), "{what}: stage");
            let error = line["error"].as_str().expect("error");
            assert!(!error.is_empty(), "{what}: empty error");
            assert!(
                error.contains(bad.class.error_has()),
                "{what}: error {error:?} does not say {:?}",
                bad.class.error_has()
            );
            assert!(
                !error.contains("SECRET") && !error.contains("abc"),
                "{what}: error {error:?} repeats a row value"
            );
            let b64 = base64::engine::general_purpose::STANDARD;
            let value = b64
                .decode(line["value"].as_str().expect("value"))
                .expect("value is base64");
            assert!(
                value == bad.value,
                "{what}: value bytes differ from what was produced"
            );
            let key = b64
                .decode(line["key"].as_str().expect("key"))
                .expect("key is base64");
            assert_eq!(key, bad.key, "{what}: key");
            let failed_at = line["failedAtMs"].as_i64().expect("failedAtMs");
            assert!((t0..=t1).contains(&failed_at), "{what}: failedAtMs");
            assert!(
                line["kafkaTimestampMs"].as_i64().is_some(),
                "{what}: kafkaTimestampMs"
            );
        }
    }
    let doubled: Vec<_> = found.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        doubled.is_empty(),
        "dead letters written twice: {doubled:?}"
    );
    let missing: Vec<_> = expected
        .iter()
        .filter(|(at, _)| !found.contains_key(at))
        .map(|(at, b)| (at, b.class))
        .collect();
    assert!(
        missing.is_empty(),
        "bad records missing from _dlq: {missing:?}"
    );
    for c in CLASSES {
        assert_eq!(per_class.get(&c), Some(&PER_CLASS), "{c:?}");
    }
}

/// A record whose table name cannot become a folder name (Oracle allows 128-byte schema
/// and table names: `<schema>.<table>` can exceed the 255-byte file-name limit) must not
/// stop the pipeline: the design sends what cannot be converted to the dead letters.
#[test]
fn a_table_name_too_long_for_a_folder_does_not_stop_the_partition() {
    let k = kafka();
    let topic = k.unique_topic("dlq-long-table");
    k.create_topic(&topic, 1);
    let mut records = Vec::new();
    for i in 0..200u64 {
        let mut ev = order_event(i);
        if i == 100 {
            ev.source.table = "t".repeat(300);
        }
        let (key, value) = to_record(&ev);
        records.push((Some(key), value, Some(0)));
    }
    k.produce(&topic, records).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut e = env(&topic, "dlq-long-table", &out);
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "300");
    let log = dir.path().join("w.log");
    for attempt in 0..2 {
        // A restart must not help or hurt: the second run finds the state the first left
        // (everything committed), recovers it and runs on.
        let mut w = Worker::start(&e, &log);
        if attempt == 0 {
            rtdp_testkit::wait_until(
                LONG,
                "the good records committed, or the worker gone",
                || !w.child.is_running() || w.metric("rtdp_records_out_total") >= Some(199.0),
            );
        } else {
            rtdp_testkit::wait_until(LONG, "the restarted worker ready, or gone", || {
                !w.child.is_running() || matches!(w.get("/health/ready"), Some((200, _)))
            });
        }
        assert!(
            w.child.is_running(),
            "attempt {attempt}: the worker exited; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        w.stop_ok();
    }
    let ids = committed_event_ids(&out);
    for i in (0..200u64).filter(|i| *i != 100) {
        assert_eq!(ids.get(&order_event(i).event_id), Some(&1), "event {i}");
    }
    // The long-named one: dead-lettered (or written somewhere readable), not lost.
    let in_dlq = dlq_files(&out)
        .iter()
        .flat_map(|f| json_lines(f))
        .any(|l| l["offset"] == 100);
    assert!(in_dlq || ids.contains_key(&order_event(100).event_id));
}

/// Dead letters are JSON lines compressed like the data where a stream codec applies
/// (gzip, zstd), plain otherwise (snappy is Parquet-internal).
#[test]
fn dead_letters_follow_the_stream_compression() {
    let k = kafka();
    let topic = k.unique_topic("dlq-codec");
    k.create_topic(&topic, 1);
    let bad: Vec<Vec<u8>> = CLASSES
        .iter()
        .filter(|c| **c != Class::Oversized)
        .map(|c| c.record(0))
        .collect();
    let mut records = Vec::new();
    for i in 0..20u64 {
        let (key, value) = to_record(&order_event(i));
        records.push((Some(key), value, Some(0)));
        if let Some(b) = bad.get(i as usize) {
            records.push((None, b.clone(), Some(0)));
        }
    }
    k.produce(&topic, records).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (format, compression, ext) in [
        ("json", "gzip", ".jsonl.gz"),
        ("csv", "zstd", ".jsonl.zst"),
        ("parquet", "zstd", ".jsonl.zst"),
        ("parquet", "snappy", ".jsonl"),
    ] {
        let name = format!("{format}-{compression}");
        let out = dir.path().join(&name);
        let mut e = env(&topic, &format!("dlq-codec-{name}"), &out);
        set(&mut e, "OUTPUT_FORMAT", format);
        set(&mut e, "OUTPUT_COMPRESSION", compression);
        set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "300");
        let w = Worker::start(&e, &dir.path().join(format!("{name}.log")));
        w.wait_metric("rtdp_records_out_total", 20.0, LONG);
        w.wait_metric("rtdp_dlq_records_count_total", bad.len() as f64, LONG);
        w.stop_ok();
        let files = dlq_files(&out);
        assert!(!files.is_empty(), "{name}: no dead letters");
        let mut values = Vec::new();
        for f in &files {
            assert!(
                f.to_string_lossy().ends_with(ext),
                "{name}: {}",
                f.display()
            );
            for line in json_lines(f) {
                let v = base64::engine::general_purpose::STANDARD
                    .decode(line["value"].as_str().unwrap())
                    .unwrap();
                values.push(v);
            }
        }
        assert_eq!(values, bad, "{name}: dead-letter values in offset order");
    }
}

/// Regression: a source column named like one of our metadata columns (`_op`) made the
/// sink refuse to open the file, which was taken for an I/O failure: the worker exited
/// and failed the same way on every restart. It is a bad record: dead letters, go on.
#[test]
fn a_column_named_like_a_metadata_column_is_a_dead_letter() {
    let k = kafka();
    let topic = k.unique_topic("dlq-meta-col");
    k.create_topic(&topic, 1);
    let mut records = Vec::new();
    for i in 0..100u64 {
        let mut ev = order_event(i);
        if i == 50 {
            ev.source.table = "clashing".into();
            ev.columns[7].name = "_op".into();
            let after = ev.after.as_mut().unwrap();
            let v = after.shift_remove("status").unwrap();
            after.insert("_op".into(), v);
        }
        let (key, value) = to_record(&ev);
        records.push((Some(key), value, Some(0)));
    }
    k.produce(&topic, records).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut e = env(&topic, "dlq-meta-col", &out);
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "300");
    let mut w = Worker::start(&e, &dir.path().join("w.log"));
    rtdp_testkit::wait_until(
        LONG,
        "99 rows and 1 dead letter committed, or the worker gone",
        || {
            !w.child.is_running()
                || (w.metric("rtdp_records_out_total") >= Some(99.0)
                    && w.metric("rtdp_dlq_records_count_total") >= Some(1.0))
        },
    );
    assert!(
        w.child.is_running(),
        "the worker exited; log:\n{}",
        w.log_text()
    );
    w.stop_ok();
    let ids = committed_event_ids(&out);
    assert_eq!(ids.len(), 99);
    let dead: Vec<J> = dlq_files(&out).iter().flat_map(|f| json_lines(f)).collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["offset"], 50);
    assert!(
        dead[0]["error"].as_str().unwrap().contains("_op"),
        "{}",
        dead[0]
    );
}
