//! Independent read-back of every sink format × every allowed compression.
//!
//! Files are written with `stream_worker::sink` and read by other people's code —
//! pyarrow for Parquet, duckdb for CSV, Python's json/gzip (and pyarrow's zstd stream)
//! for JSON lines — through `tests/py/read_output.py`. The reader's types and values are
//! compared with the input, value by value. No Kafka.
//!
//! `sink_throughput` (ignored) measures rows/s per format:
//! `cargo test --release -p stream-worker --test sink_readback -- --ignored --nocapture`.

#[path = "support/readback_common.rs"]
mod readback_common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, NaiveDateTime};
use readback_common::{
    csv_text, csv_type, instant_micros, json_types, parquet_type, read_with_python, value_matches,
};
use rtdp_core::model::{Op, ProcessedEvent, TableSchema};
use rtdp_core::types::{date_to_days, Column, ColumnType, Value};
use serde_json::Value as J;
use stream_worker::sink::{self, Compression, Format, SinkOptions, META_COLUMNS};

fn schema() -> Arc<TableSchema> {
    TableSchema::new(vec![
        Column::new("b", ColumnType::Boolean),
        Column::new("i8", ColumnType::Int8),
        Column::new("i16", ColumnType::Int16),
        Column::new("i32", ColumnType::Int32),
        Column::new("i64", ColumnType::Int64),
        Column::new("f32", ColumnType::Float32),
        Column::new("f64", ColumnType::Float64),
        Column::decimal("dec", 10, 2),
        Column::decimal("dec_max", 38, 10),
        Column::decimal("dec_int", 18, 0),
        Column::new("s", ColumnType::String),
        Column::new("j", ColumnType::Json),
        Column::new("bin", ColumnType::Binary),
        Column::new("d", ColumnType::Date),
        Column::new("t", ColumnType::Time),
        Column::new("ts", ColumnType::Timestamp),
        Column::new("tstz", ColumnType::Timestamptz),
    ])
}

fn date(y: i32, m: u32, d: u32) -> i32 {
    date_to_days(NaiveDate::from_ymd_opt(y, m, d).unwrap())
}

fn micros(s: &str) -> i64 {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .unwrap()
        .and_utc()
        .timestamp_micros()
}

/// The fixed table: nulls, min/max ints, negative decimals, unicode and CSV/JSON
/// specials in strings, pre-1970 dates, timestamps with microseconds.
fn rows() -> Vec<Vec<Value>> {
    let s = |x: &str| Value::String(x.to_string());
    let mut rows = vec![
        vec![
            Value::Bool(true),
            Value::Int(i8::MIN as i64),
            Value::Int(i16::MIN as i64),
            Value::Int(i32::MIN as i64),
            Value::Int(i64::MIN),
            Value::Float(-1.5),
            Value::Float(-0.1),
            Value::Decimal(-1_234_567_890),
            Value::Decimal(-(10i128.pow(38) - 1)),
            Value::Decimal(-999_999_999_999_999_999),
            s("a \"quoted\", comma\nnew line\r\n\ttab ü 名前 😀 \\ back"),
            s(r#"{"k":[1,2,"x\"y"],"u":"é"}"#),
            Value::Binary(vec![0, 1, 2, 0xff, 0xfe, b',', b'"', b'\n']),
            Value::Date(date(1969, 7, 20)),
            Value::Time(0),
            Value::Timestamp(micros("1969-12-31T23:59:59.999999")),
            Value::Timestamp(micros("1900-01-01T00:00:00.000001")),
        ],
        vec![
            Value::Bool(false),
            Value::Int(i8::MAX as i64),
            Value::Int(i16::MAX as i64),
            Value::Int(i32::MAX as i64),
            Value::Int(i64::MAX),
            Value::Float(3.4028234663852886e38),
            Value::Float(f64::MAX),
            Value::Decimal(9_999_999_999),
            Value::Decimal(10i128.pow(38) - 1),
            Value::Decimal(999_999_999_999_999_999),
            s(" padded , \"\" "),
            s("[]"),
            Value::Binary(vec![0x80; 33]),
            Value::Date(date(1, 1, 1)),
            Value::Time(86_399_999_999),
            Value::Timestamp(micros("9999-12-31T23:59:59.999999")),
            Value::Timestamp(micros("2026-11-24T08:00:00.123456")),
        ],
        vec![Value::Null; 17],
        vec![
            Value::Bool(true),
            Value::Int(0),
            Value::Int(-1),
            Value::Int(1),
            Value::Int(-1),
            Value::Float(0.0),
            Value::Float(1e-300),
            Value::Decimal(-5),
            Value::Decimal(1),
            Value::Decimal(0),
            s("NULL"),
            s("null"),
            Value::Binary(b"plain".to_vec()),
            Value::Date(date(1970, 1, 1)),
            Value::Time(12 * 3_600_000_000 + 30 * 60_000_000 + 1),
            Value::Timestamp(0),
            Value::Timestamp(-1),
        ],
    ];
    // Ordinary rows, so a reader that samples for types sees typical data too.
    for n in 0..40i64 {
        rows.push(vec![
            Value::Bool(n % 2 == 0),
            Value::Int(n - 20),
            Value::Int(n * 100),
            Value::Int(n * 100_000),
            Value::Int(n * 10_000_000_000),
            Value::Float(n as f64 / 4.0),
            Value::Float(n as f64 * 1.1),
            Value::Decimal(n as i128 * 1234 - 20_000),
            Value::Decimal(n as i128 * 10i128.pow(20) + 1),
            Value::Decimal(n as i128 - 7),
            s(&format!("row {n}, \"ok\"")),
            s(&format!("{{\"n\":{n}}}")),
            Value::Binary(vec![n as u8; (n % 5) as usize + 1]),
            Value::Date(date(
                1950 + n as i32,
                1 + (n % 12) as u32,
                1 + (n % 28) as u32,
            )),
            Value::Time(n * 1_000_000 * 3_600 / 2 + n),
            Value::Timestamp(micros("2026-01-01T00:00:00") + n * 86_400_000_000 + n * 7),
            Value::Timestamp(micros("1960-06-15T12:00:00") - n * 3_600_000_000 + n),
        ]);
    }
    // Empty string and empty binary: null-like in CSV (documented), kept in JSON/Parquet.
    let mut empties = rows[3].clone();
    empties[10] = s("");
    empties[11] = s("");
    empties[12] = Value::Binary(vec![]);
    rows.push(empties);
    rows
}

fn event(schema: &Arc<TableSchema>, n: usize, values: Vec<Value>) -> ProcessedEvent {
    ProcessedEvent {
        event_id: format!("evt-{n}-\"q\",x"),
        op: [Op::Create, Op::Update, Op::Delete, Op::Read][n % 4],
        schema_name: Some("APP".into()),
        table: "ALL_TYPES".into(),
        schema: schema.clone(),
        values,
        source_position: format!("{}:0a.1b:{n}", 1000 + n),
        // One source time before 1970 to exercise negative epochs in metadata too.
        source_ts_ms: if n == 1 {
            -1_234
        } else {
            1_764_000_000_000 + n as i64 * 1001
        },
        processed_at_ms: 1_764_000_000_999 + n as i64,
    }
}

fn combos() -> Vec<(Format, Compression)> {
    let mut v = Vec::new();
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        v.push((Format::Json, c));
        v.push((Format::Csv, c));
    }
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Zstd,
    ] {
        v.push((Format::Parquet, c));
    }
    v
}

fn write_file(dir: &Path, format: Format, compression: Compression) -> PathBuf {
    let opts = SinkOptions {
        format,
        compression,
        parquet_row_group_bytes: 1 << 20,
    };
    let path = dir.join(format!(
        "{format:?}-{compression:?}.{}",
        sink::extension(&opts)
    ));
    let schema = schema();
    let mut s = sink::open(&path, schema.clone(), &opts).unwrap();
    for (n, values) in rows().into_iter().enumerate() {
        s.write(&event(&schema, n, values)).unwrap();
    }
    let size = s.finish().unwrap();
    assert_eq!(size, std::fs::metadata(&path).unwrap().len());
    path
}

fn check_file(doc: &J, format: Format) {
    let file = doc["file"].as_str().unwrap();
    let schema = schema();
    let rows = rows();
    let columns = doc["columns"].as_array().unwrap();
    let names: Vec<&str> = columns.iter().map(|c| c[0].as_str().unwrap()).collect();
    let mut expected_names: Vec<&str> = META_COLUMNS.to_vec();
    expected_names.extend(schema.columns.iter().map(|c| c.name.as_str()));
    assert_eq!(names, expected_names, "{file}");
    let types: Vec<&str> = columns.iter().map(|c| c[1].as_str().unwrap()).collect();

    // Types: metadata columns, then the data columns.
    let meta_types: [&str; 5] = match format {
        Format::Parquet => [
            "string",
            "string",
            "string",
            "timestamp[us, tz=UTC]",
            "timestamp[us, tz=UTC]",
        ],
        Format::Csv => [
            "VARCHAR",
            "VARCHAR",
            "VARCHAR",
            "TIMESTAMP WITH TIME ZONE",
            "TIMESTAMP WITH TIME ZONE",
        ],
        Format::Json => ["str"; 5],
    };
    assert_eq!(types[..5], meta_types, "{file}");
    let wrong_types: Vec<String> = schema
        .columns
        .iter()
        .enumerate()
        .filter_map(|(i, col)| {
            let expected = match format {
                Format::Parquet => parquet_type(col),
                Format::Csv => csv_type(col).to_string(),
                Format::Json => json_types(col, &rows.iter().map(|r| &r[i]).collect::<Vec<_>>()),
            };
            (types[5 + i] != expected).then(|| {
                format!(
                    "{}: reader {:?}, expected {expected:?}",
                    col.name,
                    types[5 + i]
                )
            })
        })
        .collect();
    assert!(
        wrong_types.is_empty(),
        "{file}: column types differ:\n{}",
        wrong_types.join("\n")
    );
    if format == Format::Parquet {
        let md = &doc["field_metadata"];
        for col in &schema.columns {
            assert_eq!(
                md[&col.name]["rtdp.type"],
                col.ty.as_str(),
                "{file}: {}",
                col.name
            );
        }
        assert_eq!(md["_source_ts"]["rtdp.type"], "timestamptz");
    }

    // Values.
    let got_rows = doc["rows"].as_array().unwrap();
    assert_eq!(got_rows.len(), rows.len(), "{file}: row count");
    for (n, (got, values)) in got_rows.iter().zip(&rows).enumerate() {
        let got = got.as_array().unwrap();
        assert_eq!(got.len(), 5 + values.len(), "{file}: row {n} width");
        let ev = event(&schema, n, values.clone());
        assert_eq!(got[0], ev.event_id.as_str(), "{file}: row {n} _event_id");
        assert_eq!(got[1], ev.op.code(), "{file}: row {n} _op");
        assert_eq!(
            got[2],
            ev.source_position.as_str(),
            "{file}: row {n} _source_position"
        );
        assert_eq!(
            instant_micros(got[3].as_str().unwrap()),
            ev.source_ts_ms * 1000,
            "{file}: row {n}"
        );
        assert_eq!(
            instant_micros(got[4].as_str().unwrap()),
            ev.processed_at_ms * 1000,
            "{file}: row {n}"
        );
        for (i, (col, v)) in schema.columns.iter().zip(values).enumerate() {
            assert!(
                value_matches(format, col, types[5 + i], v, &got[5 + i]),
                "{file}: row {n} column {}: wrote {:?}, reader has {} ({})",
                col.name,
                v,
                got[5 + i],
                types[5 + i]
            );
        }
    }

    // CSV: the exact field text too (duckdb's typed read may be lossy, e.g. DOUBLE).
    if format == Format::Csv {
        let text_rows = doc["text_rows"].as_array().unwrap();
        assert_eq!(text_rows.len(), rows.len());
        for (n, (got, values)) in text_rows.iter().zip(&rows).enumerate() {
            for (i, (col, v)) in schema.columns.iter().zip(values).enumerate() {
                assert_eq!(
                    got[5 + i],
                    csv_text(col, v),
                    "{file}: row {n} column {} text",
                    col.name
                );
            }
        }
    }
}

#[test]
fn every_format_and_compression_reads_back_with_independent_readers() {
    // RTDP_SINK_READBACK_DIR=<empty dir> keeps the files for a look.
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("RTDP_SINK_READBACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let combos = combos();
    let files: Vec<PathBuf> = combos
        .iter()
        .map(|&(f, c)| write_file(&dir, f, c))
        .collect();
    let docs = read_with_python(&files);
    assert_eq!(docs.len(), files.len());
    for ((format, compression), doc) in combos.iter().zip(&docs) {
        eprintln!("checking {format:?} / {compression:?}: {}", doc["file"]);
        check_file(doc, *format);
    }
}

/// A wide, typical table for throughput: 15 columns of mixed types.
fn bench_schema() -> Arc<TableSchema> {
    TableSchema::new(vec![
        Column::new("id", ColumnType::Int64),
        Column::new("account", ColumnType::Int32),
        Column::new("flag", ColumnType::Boolean),
        Column::decimal("amount", 12, 2),
        Column::decimal("rate", 9, 6),
        Column::new("score", ColumnType::Float64),
        Column::new("name", ColumnType::String),
        Column::new("city", ColumnType::String),
        Column::new("note", ColumnType::String),
        Column::new("payload", ColumnType::Json),
        Column::new("born", ColumnType::Date),
        Column::new("at", ColumnType::Time),
        Column::new("created", ColumnType::Timestamp),
        Column::new("updated", ColumnType::Timestamptz),
        Column::new("blob", ColumnType::Binary),
    ])
}

fn bench_events(n: usize) -> Vec<ProcessedEvent> {
    let schema = bench_schema();
    let cities = ["Hangzhou", "Beijing", "Zürich", "São Paulo", "New \"York\""];
    (0..n)
        .map(|i| {
            let i64_ = i as i64;
            event(
                &schema,
                i,
                vec![
                    Value::Int(i64_),
                    Value::Int((i64_ * 7919) % 100_000),
                    Value::Bool(i % 3 == 0),
                    Value::Decimal(i as i128 * 1013 - 500_000),
                    Value::Decimal((i as i128 * 37) % 1_000_000),
                    Value::Float(i as f64 * 0.37),
                    Value::String(format!("customer-{i:08}")),
                    Value::String(cities[i % cities.len()].to_string()),
                    Value::String(format!("order {i}, priority {}", i % 5)),
                    Value::String(format!("{{\"k\":{i},\"tags\":[\"a\",\"b\"]}}")),
                    Value::Date(-3650 + (i % 30_000) as i32),
                    Value::Time((i64_ * 1_000_003) % 86_400_000_000),
                    Value::Timestamp(1_700_000_000_000_000 + i64_ * 1_000_001),
                    Value::Timestamp(1_700_000_000_000_000 + i64_ * 999_999),
                    Value::Binary((i as u64).to_le_bytes().to_vec()),
                ],
            )
        })
        .collect()
}

#[test]
#[ignore = "throughput measurement; run in release with --ignored --nocapture"]
fn sink_throughput() {
    let n = 200_000;
    let events = bench_events(n);
    let dir = tempfile::tempdir().unwrap();
    let mut combos = combos();
    combos.sort_by_key(|&(f, c)| (f as u8, c as u8));
    for (format, compression) in combos {
        let opts = SinkOptions {
            format,
            compression,
            parquet_row_group_bytes: SinkOptions::DEFAULT_PARQUET_ROW_GROUP_BYTES,
        };
        let path = dir.path().join(format!(
            "bench-{format:?}-{compression:?}.{}",
            sink::extension(&opts)
        ));
        let start = Instant::now();
        let mut s = sink::open(&path, bench_schema(), &opts).unwrap();
        let mut estimate = 0;
        for ev in &events {
            s.write(ev).unwrap();
            estimate = s.size_estimate();
        }
        let size = s.finish().unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:<8} {:<7} {:>9.0} rows/s  {:>6.1} MB/s out  file {:>6.1} MB  (estimate before finish {:>6.1} MB)",
            format!("{format:?}"),
            format!("{compression:?}"),
            n as f64 / secs,
            size as f64 / secs / 1e6,
            size as f64 / 1e6,
            estimate as f64 / 1e6,
        );
        std::fs::remove_file(&path).unwrap();
    }
}
