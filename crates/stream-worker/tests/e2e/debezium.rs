//! Genuine Debezium JsonConverter records through the real worker into Parquet, read back
//! with pyarrow: PostgreSQL (with and without schemas), MySQL and Oracle (with schemas;
//! insert, update, delete, then the Kafka tombstone Debezium sends after a delete).
//!
//! Samples in `tests/data/` (Debezium 2.7 shapes):
//! - `debezium_pg_schema.json`, `debezium_pg_noschema.json`: one insert into
//!   `public.items`, every PostgreSQL temporal mode, a Connect Decimal, bytes;
//! - `debezium_mysql_schema.jsonl`: `inventory.orders` — INT, BIGINT, DECIMAL(10,2),
//!   DATE, TIME(6), DATETIME(6), TIMESTAMP(6), DOUBLE, BIT(1), VARCHAR, VARBINARY;
//! - `debezium_oracle_schema.jsonl`: `INVENTORY.CUSTOMERS` — NUMBER(10,0) (INT64, as
//!   Debezium maps NUMBER(p,0) with p < 19 under decimal.handling.mode=precise),
//!   NUMBER(12,2) and NUMBER(20,0) (Connect Decimal), VARCHAR2, DATE (Timestamp, ms),
//!   TIMESTAMP(6) (MicroTimestamp), TIMESTAMP(6) WITH TIME ZONE (ZonedTimestamp),
//!   BINARY_DOUBLE, RAW.

use crate::common::*;
use rtdp_core::ids;
use rtdp_testkit::kafka;
use serde_json::Value as J;
use std::path::{Path, PathBuf};
use std::time::Duration;
use stream_worker::sink::META_COLUMNS;

const LONG: Duration = Duration::from_secs(120);

fn data(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The records of a sample: one per line (a `.json` sample is one record).
fn sample_records(name: &str) -> Vec<Vec<u8>> {
    data(name)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            // Every sample line must be a JSON document as the converter writes it.
            serde_json::from_str::<J>(l).unwrap_or_else(|e| panic!("{name}: {e}"));
            l.trim().as_bytes().to_vec()
        })
        .collect()
}

/// A Debezium (schemas.enable=true) key of one int column.
fn key(server: &str, table: &str, field: &str, ty: &str, id: i64) -> Vec<u8> {
    serde_json::json!({
        "schema": {"type": "struct", "fields": [{"type": ty, "optional": false, "field": field}],
                   "optional": false, "name": format!("{server}.{table}.Key")},
        "payload": {field: id}
    })
    .to_string()
    .into_bytes()
}

/// One expected column: name, pyarrow type, and the reader's value per row.
type Col = (&'static str, &'static str, Vec<Option<&'static str>>);

struct Expected {
    folder: &'static str,
    partition: i32,
    columns: Vec<Col>,
    ops: Vec<&'static str>,
    event_ids: Vec<String>,
    /// Fragments the `_source_position` text of every row holds.
    position_has: Vec<&'static str>,
    source_ts_ms: Vec<i64>,
}

fn check_table(out: &Path, topic: &str, files: &[PathBuf], docs: &[J], e: &Expected) {
    let mine: Vec<(&PathBuf, &J)> = files
        .iter()
        .zip(docs)
        .filter(|(f, _)| {
            rel(out, f).starts_with(&format!("{}/", e.folder)) && file_offsets(f).1 == e.partition
        })
        .collect();
    assert_eq!(
        mine.len(),
        1,
        "{} (partition {}): expected one file, got {:?}",
        e.folder,
        e.partition,
        files
    );
    let (path, doc) = mine[0];
    let what = rel(out, path);
    assert!(
        what.starts_with(&format!("{}/dt=2024-11-24/", e.folder)),
        "{what}: day folder from the source commit time"
    );
    let (t, _, _, _) = file_offsets(path);
    assert_eq!(t, topic);

    let columns = doc["columns"].as_array().unwrap();
    let names: Vec<&str> = columns.iter().map(|c| c[0].as_str().unwrap()).collect();
    let types: Vec<&str> = columns.iter().map(|c| c[1].as_str().unwrap()).collect();
    let mut expected_names: Vec<&str> = META_COLUMNS.to_vec();
    expected_names.extend(e.columns.iter().map(|c| c.0));
    assert_eq!(names, expected_names, "{what}: columns");
    let expected_types: Vec<&str> = [
        "string",
        "string",
        "string",
        "timestamp[us, tz=UTC]",
        "timestamp[us, tz=UTC]",
    ]
    .into_iter()
    .chain(e.columns.iter().map(|c| c.1))
    .collect();
    for (n, (got, want)) in types.iter().zip(&expected_types).enumerate() {
        assert_eq!(got, want, "{what}: type of {}", names[n]);
    }

    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), e.ops.len(), "{what}: rows");
    for (r, row) in rows.iter().enumerate() {
        let row = row.as_array().unwrap();
        assert_eq!(row[0], e.event_ids[r].as_str(), "{what}: row {r} _event_id");
        assert_eq!(row[1], e.ops[r], "{what}: row {r} _op");
        let pos = row[2].as_str().unwrap();
        for frag in &e.position_has {
            assert!(
                pos.contains(frag),
                "{what}: row {r} _source_position {pos:?} lacks {frag:?}"
            );
        }
        assert_eq!(
            crate::readback_common::instant_micros(row[3].as_str().unwrap()),
            e.source_ts_ms[r] * 1000,
            "{what}: row {r} _source_ts"
        );
        for (c, (name, _, values)) in e.columns.iter().enumerate() {
            let want = values[r].map_or(J::Null, |v| J::String(v.into()));
            assert_eq!(row[5 + c], want, "{what}: row {r} column {name}");
        }
    }
}

/// All rows the same value.
fn same(n: usize, v: &'static str) -> Vec<Option<&'static str>> {
    vec![Some(v); n]
}

#[test]
fn debezium_postgres_mysql_oracle_to_typed_parquet() {
    let k = kafka();
    let topic = k.unique_topic("debezium");
    k.create_topic(&topic, 2);
    let pg = sample_records("debezium_pg_schema.json");
    let pg_noschema = sample_records("debezium_pg_noschema.json");
    let mysql = sample_records("debezium_mysql_schema.jsonl");
    let oracle = sample_records("debezium_oracle_schema.jsonl");
    assert_eq!(
        (pg.len(), pg_noschema.len(), mysql.len(), oracle.len()),
        (1, 1, 3, 3)
    );

    // Partition 0: PostgreSQL, MySQL c/u/d + tombstone, Oracle c/u/d + tombstone.
    // Partition 1: the schemaless PostgreSQL record (the same change as the one with a
    // schema: in one partition the positional de-duplication would drop it).
    let p = Producer::new(&topic);
    let pg_key = key("pg", "public.items", "id", "int32", 7);
    let my_key = key("mysql1", "inventory.orders", "id", "int32", 1001);
    let ora_key = key("oracle1", "INVENTORY.CUSTOMERS", "ID", "int64", 101);
    p.send(Some(&pg_key), Some(&pg[0]), Some(0)); // offset 0
    for v in &mysql {
        p.send(Some(&my_key), Some(v), Some(0)); // 1, 2, 3
    }
    p.send(Some(&my_key), None, Some(0)); // 4: tombstone
    for v in &oracle {
        p.send(Some(&ora_key), Some(v), Some(0)); // 5, 6, 7
    }
    p.send(Some(&ora_key), None, Some(0)); // 8: tombstone
    p.send(Some(&pg_key), Some(&pg_noschema[0]), Some(1)); // partition 1, offset 0
    p.flush();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut e = env(&topic, "debezium", &out);
    set(&mut e, "OUTPUT_FORMAT", "parquet");
    set(&mut e, "OUTPUT_COMPRESSION", "snappy");
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "300");
    let w = Worker::start(&e, &dir.path().join("w.log"));
    w.wait_metric("rtdp_records_out_total", 8.0, LONG);
    assert_eq!(w.metric("rtdp_records_out_total"), Some(8.0));
    assert_eq!(
        w.metric_sample("rtdp_records_skipped_total", "reason=\"tombstone\""),
        Some(2.0),
        "both tombstones skipped"
    );
    assert_eq!(w.metric("rtdp_dlq_records_count_total"), Some(0.0));
    assert_eq!(
        w.metric("rtdp_failed_records_count_total"),
        None,
        "no failures"
    );
    w.stop_ok();
    assert!(dlq_files(&out).is_empty(), "nothing dead-lettered");
    // Kafka offsets committed past the tombstones.
    assert_eq!(k.committed_offsets("debezium", &topic), vec![9, 1]);

    let files = data_files(&out);
    assert_eq!(files.len(), 4, "{files:?}");
    let docs = read_output(&files);

    let pg_id = ids::event_id("debezium-postgresql/pg/shop", "24023128::24023184", 0);
    let pg_cols = |typed: bool| -> Vec<Col> {
        let t = |a: &'static str, b: &'static str| if typed { a } else { b };
        vec![
            ("id", t("int32", "int64"), same(1, "7")),
            ("name", "string", same(1, "Zoë, \"quoted\"")),
            (
                "price",
                t("decimal128(10, 2)", "string"),
                same(1, t("1234.56", "AeJA")),
            ),
            (
                "born",
                t("date32[day]", "int64"),
                same(1, t("1969-01-01", "-365")),
            ),
            (
                "alarm",
                t("time64[us]", "int64"),
                same(1, t("12:34:56.789012", "45296789012")),
            ),
            (
                "ts_milli",
                t("timestamp[us]", "int64"),
                same(1, t("2024-11-24T00:00:00.123000", "1732406400123")),
            ),
            (
                "ts_micro",
                t("timestamp[us]", "int64"),
                same(1, t("2024-11-24T00:00:00.123456", "1732406400123456")),
            ),
            (
                "ts_nano",
                t("timestamp[us]", "int64"),
                // Nanoseconds truncated to the microsecond.
                same(1, t("2024-11-24T00:00:00.123456", "1732406400123456789")),
            ),
            (
                "ts_zoned",
                t("timestamp[us, tz=UTC]", "string"),
                same(
                    1,
                    t(
                        "2024-11-24T00:00:00.123456+00:00",
                        "2024-11-24T08:00:00.123456+08:00",
                    ),
                ),
            ),
            ("active", "bool", same(1, "true")),
            ("blob", t("binary", "string"), same(1, "AQID/w==")),
            ("score", "double", same(1, "1.5")),
            // 2^53 + 1: exact, never through a float.
            ("big", "int64", same(1, "9007199254740993")),
        ]
    };
    for (partition, typed) in [(0, true), (1, false)] {
        check_table(
            &out,
            &topic,
            &files,
            &docs,
            &Expected {
                folder: "public.items",
                partition,
                columns: pg_cols(typed),
                ops: vec!["c"],
                event_ids: vec![pg_id.clone()],
                position_has: vec!["lsn=24023184", "24023128"],
                source_ts_ms: vec![1_732_406_400_999],
            },
        );
    }

    let my_ids = (1..=3).map(|o| ids::record_id(&topic, 0, o)).collect();
    check_table(
        &out,
        &topic,
        &files,
        &docs,
        &Expected {
            folder: "inventory.orders",
            partition: 0,
            columns: vec![
                ("id", "int32", same(3, "1001")),
                ("customer_id", "int64", same(3, "9007199254740993")),
                (
                    "price",
                    "decimal128(10, 2)",
                    vec![Some("1234.56"), Some("-1234.56"), Some("-1234.56")],
                ),
                (
                    "born",
                    "date32[day]",
                    vec![Some("1969-01-01"), Some("1970-01-01"), Some("1970-01-01")],
                ),
                (
                    "alarm",
                    "time64[us]",
                    vec![Some("12:34:56.789012"), Some("00:00:00"), Some("00:00:00")],
                ),
                (
                    "placed",
                    "timestamp[us]",
                    same(3, "2024-11-24T08:00:00.123456"),
                ),
                (
                    "updated",
                    "timestamp[us, tz=UTC]",
                    vec![
                        Some("2024-11-24T00:00:00.123456+00:00"),
                        Some("2024-11-24T00:00:01+00:00"),
                        Some("2024-11-24T00:00:01+00:00"),
                    ],
                ),
                ("weight", "double", same(3, "2.5")),
                (
                    "paid",
                    "bool",
                    vec![Some("true"), Some("false"), Some("false")],
                ),
                (
                    "note",
                    "string",
                    vec![Some("naïve, \"quoted\" 名前"), None, None],
                ),
                ("payload", "binary", same(3, "AAH+/ywK")),
            ],
            ops: vec!["c", "u", "d"],
            event_ids: my_ids,
            position_has: vec!["file=mysql-bin.000003", "pos="],
            source_ts_ms: vec![1_732_435_200_000, 1_732_435_201_000, 1_732_435_202_000],
        },
    );

    let ora_ids = (5..=7).map(|o| ids::record_id(&topic, 0, o)).collect();
    check_table(
        &out,
        &topic,
        &files,
        &docs,
        &Expected {
            folder: "INVENTORY.CUSTOMERS",
            partition: 0,
            columns: vec![
                ("ID", "int64", same(3, "101")),
                (
                    "BALANCE",
                    "decimal128(12, 2)",
                    vec![Some("1234.56"), Some("-0.01"), Some("-0.01")],
                ),
                (
                    "BIG_ID",
                    "decimal128(20, 0)",
                    vec![
                        Some("12345678901234567890"),
                        Some("-12345678901234567890"),
                        Some("-12345678901234567890"),
                    ],
                ),
                (
                    "NAME",
                    "string",
                    vec![Some("Zoë"), Some("Zoë Ångström"), Some("Zoë Ångström")],
                ),
                ("BIRTH", "timestamp[us]", same(3, "1969-01-01T00:00:00")),
                (
                    "CREATED",
                    "timestamp[us]",
                    same(3, "2024-11-24T00:00:00.123456"),
                ),
                (
                    "UPDATED",
                    "timestamp[us, tz=UTC]",
                    same(3, "2024-11-24T00:00:00.123456+00:00"),
                ),
                ("RATING", "double", vec![Some("4.25"), None, None]),
                ("PHOTO", "binary", same(3, "AAH+/w==")),
            ],
            ops: vec!["c", "u", "d"],
            event_ids: ora_ids,
            position_has: vec!["commit_scn=", "scn=", "txId="],
            source_ts_ms: vec![1_732_406_400_000, 1_732_406_401_000, 1_732_406_402_000],
        },
    );
}
