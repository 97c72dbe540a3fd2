//! The Oracle source's events through the real worker into Parquet, read back by pyarrow:
//! recorded LogMiner rows (`tests/data/oracle/types.jsonl`, `interleaved.jsonl`) run
//! through the source's own replay (the code the live source runs), published with their
//! Kafka keys, written by `stream-worker`. Proves the envelope the Oracle source builds —
//! 38-digit and negative-scale NUMBERs, floats, NaN, dates before 1970, time zones, RAW,
//! intervals, a key change as delete + insert — lands typed in the files.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cdc_collector::source::oracle::logminer::{SchemaEntry, StaticCatalog};
use cdc_collector::source::oracle::replay::{replay, ReplayOptions};
use rtdp_testkit::kafka;
use serde_json::Value;

use crate::common::Chain;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/oracle")
        .join(name)
}

/// Replays a fixture as collector `collector` (each fixture is its own stream: the
/// worker drops an event whose position is not newer than the last of its source);
/// returns (Kafka key, event JSON) per event.
fn replay_fixture(name: &str, collector: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let schema: BTreeMap<String, SchemaEntry> =
        serde_json::from_str(&std::fs::read_to_string(data("schema.json")).unwrap()).unwrap();
    let mut catalog = StaticCatalog::from_schema(&schema, false).unwrap();
    let input = std::fs::read_to_string(data(name)).unwrap();
    let mut out = Vec::new();
    let opts = ReplayOptions {
        collector: collector.into(),
        checkpoints: false,
        from: None,
        max_buffered: 10_000,
        lob_enabled: false,
    };
    replay(Cursor::new(input), &mut out, &mut catalog, &opts).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let s = &v["source"];
            let img = if v["op"] == "d" {
                &v["before"]
            } else {
                &v["after"]
            };
            let key = format!(
                "{}.{}|{}",
                s["schema"].as_str().unwrap(),
                s["table"].as_str().unwrap(),
                serde_json::json!([img["ID"]])
            );
            (key.into_bytes(), l.as_bytes().to_vec())
        })
        .collect()
}

/// A table as pyarrow read it: column types by name, and its rows.
type TableRead = (BTreeMap<String, String>, Vec<BTreeMap<String, Value>>);

fn data_files(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            if !name.starts_with('_') {
                data_files(&p, out);
            }
        } else if name.ends_with(".parquet") {
            out.push(p);
        }
    }
}

#[test]
fn oracle_events_land_typed_in_parquet() {
    let mut c = Chain::new("oraparquet");
    c.set_worker("OUTPUT_FORMAT", "parquet");
    let mut records = replay_fixture("types.jsonl", "ora-types");
    records.extend(replay_fixture("interleaved.jsonl", "ora-orders"));
    let n = records.len();
    assert_eq!(n, 11);
    kafka().create_topic(&c.topic, 1);
    kafka()
        .produce(
            &c.topic,
            records.into_iter().map(|(k, v)| (Some(k), v, None)),
        )
        .unwrap();
    c.start_worker();
    let w = c.worker.as_ref().expect("worker");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while w.metric("rtdp_records_out_total").unwrap_or(0.0) < n as f64 {
        assert!(
            std::time::Instant::now() < deadline,
            "not every event reached a committed file; dead letters: {:?}\n{}",
            w.metric("rtdp_dead_letters_total"),
            w.log_tail(40)
        );
        std::thread::park_timeout(Duration::from_millis(200));
    }
    let mut files = Vec::new();
    data_files(&c.out(), &mut files);
    files.sort();
    let docs = rtdp_testkit::read_output_with_python(&files);
    // Columns and rows per table, as pyarrow reads them.
    let mut by_table: BTreeMap<String, TableRead> = BTreeMap::new();
    for (f, d) in files.iter().zip(&docs) {
        let table = f
            .strip_prefix(c.out())
            .unwrap()
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .to_string();
        let cols: Vec<(String, String)> = d["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c[0].as_str().unwrap().to_owned(),
                    c[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let e = by_table.entry(table).or_default();
        for (name, ty) in &cols {
            e.0.insert(name.clone(), ty.clone());
        }
        for r in d["rows"].as_array().unwrap() {
            e.1.push(
                cols.iter()
                    .map(|(n, _)| n.clone())
                    .zip(r.as_array().unwrap().iter().cloned())
                    .collect(),
            );
        }
    }
    let (types, rows) = &by_table["SHOP.TYPES"];
    assert_eq!(types["ID"], "decimal128(38, 0)");
    assert_eq!(types["N38"], "decimal128(38, 10)");
    assert_eq!(types["NNEG"], "int32");
    assert_eq!(types["BF"], "float");
    assert_eq!(types["BD"], "double");
    assert_eq!(types["D"], "timestamp[us]");
    assert!(
        types["TSTZ"].starts_with("timestamp[us, tz="),
        "{}",
        types["TSTZ"]
    );
    assert_eq!(types["R"], "binary");
    assert_eq!(types["NFREE"], "string");
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let ins = &rows[0];
    assert_eq!(ins["_op"], "c");
    assert_eq!(ins["ID"], "12345678901234567890123456789012345678");
    assert_eq!(ins["N38"], "-1234567890123456789012345678.0123456789");
    assert_eq!(ins["NNEG"], "123000");
    assert_eq!(ins["BD"], "nan");
    assert_eq!(ins["D"], "1900-02-28T23:59:59");
    assert_eq!(ins["TS"], "1960-01-01T00:00:00.123456");
    assert_eq!(ins["TSTZ"], "2026-11-24T00:00:00.500000+00:00");
    assert_eq!(ins["R"], "3q2+7w==");
    assert_eq!(ins["DS"], "P3DT4H5M6.5S");
    assert_eq!(ins["NV"], "été 😀");
    assert_eq!(rows[1]["_op"], "d");
    assert_eq!(rows[2]["_op"], "c");
    assert_eq!(rows[2]["ID"], "2");
    let (otypes, orows) = &by_table["SHOP.ORDERS"];
    assert_eq!(otypes["AMOUNT"], "decimal128(12, 2)");
    assert_eq!(otypes["ID"], "int64");
    assert_eq!(orows.len(), 8);
    let created_1969 = orows.iter().any(|r| r["CREATED"] == "1969-07-20T20:17:40");
    assert!(created_1969, "{orows:#?}");
    c.stop_all();
}
