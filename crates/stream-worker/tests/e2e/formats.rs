//! Every output format × compression through the real worker: 2,000 generator events
//! (15 column types, nulls, unicode, quotes and commas, negative decimals) in a
//! one-partition topic, one run per combination (own group, own output folder), every
//! committed file read back by the independent reader (pyarrow / duckdb / python json)
//! and compared value by value and type by type, plus the metadata columns, the folder
//! and the file name's offset range.

use crate::common::*;
use crate::readback_common::{
    csv_text, csv_type, instant_micros, json_types, parquet_type, value_matches,
};
use rtdp_core::types::{Column, ColumnType, Value};
use rtdp_testkit::gen::{order_columns, order_event, order_values};
use rtdp_testkit::kafka;
use serde_json::Value as J;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use stream_worker::sink::{Format, META_COLUMNS};

const N: u64 = 2_000;
const LONG: Duration = Duration::from_secs(120);
const DAY_DIR: &str = "public.orders/dt=2026-11-24";

struct Combo {
    format: &'static str,
    compression: &'static str,
    ext: &'static str,
}

const COMBOS: &[Combo] = &[
    Combo {
        format: "json",
        compression: "none",
        ext: "jsonl",
    },
    Combo {
        format: "json",
        compression: "gzip",
        ext: "jsonl.gz",
    },
    Combo {
        format: "json",
        compression: "zstd",
        ext: "jsonl.zst",
    },
    Combo {
        format: "csv",
        compression: "none",
        ext: "csv",
    },
    Combo {
        format: "csv",
        compression: "gzip",
        ext: "csv.gz",
    },
    Combo {
        format: "parquet",
        compression: "none",
        ext: "parquet",
    },
    Combo {
        format: "parquet",
        compression: "snappy",
        ext: "parquet",
    },
    Combo {
        format: "parquet",
        compression: "gzip",
        ext: "parquet",
    },
    Combo {
        format: "parquet",
        compression: "zstd",
        ext: "parquet",
    },
];

impl Combo {
    fn name(&self) -> String {
        format!("{}-{}", self.format, self.compression)
    }

    fn sink_format(&self) -> Format {
        match self.format {
            "json" => Format::Json,
            "csv" => Format::Csv,
            _ => Format::Parquet,
        }
    }
}

/// Types duckdb's CSV sniffer may settle on for a column, given the values in one file:
/// its usual type, BIGINT for numbers that happen to be integral in this file, VARCHAR
/// for a column that is empty in this file.
fn csv_types_allowed(col: &Column, values: &[&Value]) -> Vec<&'static str> {
    let mut allowed = vec![csv_type(col)];
    let present: Vec<&&Value> = values.iter().filter(|v| !v.is_null()).collect();
    let empty = present.iter().all(|v| match v {
        Value::String(s) => s.is_empty(),
        Value::Binary(b) => b.is_empty(),
        _ => false,
    });
    if empty {
        allowed.push("VARCHAR");
    }
    if matches!(
        col.ty,
        ColumnType::Float32 | ColumnType::Float64 | ColumnType::Decimal
    ) {
        allowed.push("BIGINT");
    }
    allowed
}

/// Runs the worker over the whole topic with `combo`; returns its output folder.
fn run(topic: &str, combo: &Combo, dir: &Path) -> PathBuf {
    let out = dir.join(combo.name());
    let mut e = env(topic, &format!("fmt-{}", combo.name()), &out);
    set(&mut e, "OUTPUT_FORMAT", combo.format);
    set(&mut e, "OUTPUT_COMPRESSION", combo.compression);
    // Several files per run (so file names carry several offset ranges), and the last
    // one committed soon after the last record.
    set(&mut e, "OUTPUT_ROLLING_SIZE", "200000");
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "300");
    let w = Worker::start(&e, &dir.join(format!("{}.log", combo.name())));
    w.wait_metric("rtdp_records_out_total", N as f64, LONG);
    assert_eq!(
        w.metric("rtdp_records_out_total"),
        Some(N as f64),
        "{}: rows out",
        combo.name()
    );
    w.stop_ok();
    out
}

#[test]
fn every_format_and_compression_reads_back_value_by_value() {
    let k = kafka();
    let topic = k.unique_topic("formats");
    k.create_topic(&topic, 1);
    // One partition: event i sits at offset i.
    produce_orders(&topic, 0..N);
    let by_id: HashMap<String, u64> = (0..N).map(|i| (order_event(i).event_id, i)).collect();
    let dir = tempfile::tempdir().unwrap();
    let t0 = now_ms();
    let started = Instant::now();

    // Three workers at a time: each run mostly waits for its group to form.
    let outs: Vec<PathBuf> = std::thread::scope(|s| {
        COMBOS
            .chunks(3)
            .flat_map(|chunk| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|c| s.spawn(|| run(&topic, c, dir.path())))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("run"))
                    .collect::<Vec<_>>()
            })
            .collect()
    });
    let t1 = now_ms();
    eprintln!("9 worker runs took {:?}", started.elapsed());

    let mut files: Vec<(usize, PathBuf)> = Vec::new();
    for (n, out) in outs.iter().enumerate() {
        let found = data_files(out);
        assert!(!found.is_empty(), "{}: no files", COMBOS[n].name());
        files.extend(found.into_iter().map(|f| (n, f)));
    }
    let paths: Vec<PathBuf> = files.iter().map(|(_, f)| f.clone()).collect();
    let docs = read_output(&paths);

    let mut seen: Vec<Vec<u32>> = vec![vec![0; N as usize]; COMBOS.len()];
    for ((n, path), doc) in files.iter().zip(&docs) {
        let combo = &COMBOS[*n];
        let indexes = check_file(combo, &outs[*n], path, doc, &by_id, &topic, (t0, t1));
        for i in indexes {
            seen[*n][i as usize] += 1;
        }
    }
    // Parquet compression is inside the file: ask pyarrow which codec each column chunk has.
    for (n, path) in &files {
        let combo = &COMBOS[*n];
        if combo.format != "parquet" {
            continue;
        }
        let expected = match combo.compression {
            "none" => "UNCOMPRESSED",
            other => &other.to_ascii_uppercase(),
        };
        let codecs = parquet_codecs(path);
        assert!(
            !codecs.is_empty() && codecs.iter().all(|c| c == expected),
            "{}: column chunk codecs {codecs:?}, expected {expected}",
            combo.name()
        );
    }
    for (n, counts) in seen.iter().enumerate() {
        let missing = counts.iter().filter(|c| **c == 0).count();
        let doubled = counts.iter().filter(|c| **c > 1).count();
        assert_eq!(
            (missing, doubled),
            (0, 0),
            "{}: events missing / doubled",
            COMBOS[n].name()
        );
    }
    eprintln!(
        "checked {} files of {} runs in {:?}",
        files.len(),
        COMBOS.len(),
        started.elapsed()
    );
}

/// The compression codec of every column chunk of a Parquet file, per pyarrow.
fn parquet_codecs(path: &Path) -> Vec<String> {
    const SCRIPT: &str = r#"
import sys, pyarrow.parquet as pq
md = pq.ParquetFile(sys.argv[1]).metadata
for g in range(md.num_row_groups):
    for c in range(md.num_columns):
        print(md.row_group(g).column(c).compression)
"#;
    let out = std::process::Command::new(rtdp_testkit::python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "pyarrow metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Checks one committed file; returns the generator indexes of its rows.
fn check_file(
    combo: &Combo,
    out: &Path,
    path: &Path,
    doc: &J,
    by_id: &HashMap<String, u64>,
    topic: &str,
    (t0, t1): (i64, i64),
) -> Vec<u64> {
    let what = format!("{} {}", combo.name(), rel(out, path));
    let format = combo.sink_format();

    // Folder and name.
    let r = rel(out, path);
    assert!(r.starts_with(&format!("{DAY_DIR}/")), "{what}: folder");
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.ends_with(&format!(".{}", combo.ext)),
        "{what}: extension"
    );
    let (t, p, first, last) = file_offsets(path);
    assert_eq!((t.as_str(), p), (topic, 0), "{what}: topic and partition");
    assert!(first <= last, "{what}: first <= last");

    // Columns.
    let cols = order_columns();
    let mut columns = doc["columns"].as_array().unwrap().clone();
    // duckdb's read_csv detects Hive partitioning from the path and adds the folder's
    // `dt` as a last column: it must hold the folder's day.
    if format == Format::Csv && columns.last().is_some_and(|c| c[0] == "dt") {
        columns.pop();
        for row in doc["rows"].as_array().unwrap() {
            let dt = row.as_array().unwrap().last().unwrap();
            assert_eq!(dt, "2026-11-24", "{what}: Hive dt column");
        }
    }
    let names: Vec<&str> = columns.iter().map(|c| c[0].as_str().unwrap()).collect();
    let mut expected_names: Vec<&str> = META_COLUMNS.to_vec();
    expected_names.extend(cols.iter().map(|c| c.name.as_str()));
    assert_eq!(names, expected_names, "{what}: column names");
    let types: Vec<&str> = columns.iter().map(|c| c[1].as_str().unwrap()).collect();

    // Rows → generator index, through _event_id.
    let rows = doc["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{what}: empty file");
    let indexes: Vec<u64> = rows
        .iter()
        .map(|row| {
            let id = row[0].as_str().expect("_event_id is a string");
            *by_id
                .get(id)
                .unwrap_or_else(|| panic!("{what}: unknown _event_id {id}"))
        })
        .collect();
    // One partition, only good events: the file holds exactly offsets first..=last,
    // and event i is at offset i.
    let mut sorted = indexes.clone();
    sorted.sort_unstable();
    let expected: Vec<u64> = (first as u64..=last as u64).collect();
    assert_eq!(
        sorted, expected,
        "{what}: rows are not exactly the offsets of the file name"
    );
    assert_eq!(indexes, sorted, "{what}: rows are not in offset order");
    let values: Vec<Vec<Value>> = indexes.iter().map(|i| order_values(*i)).collect();

    // Types.
    let meta_types: Vec<&str> = match format {
        Format::Parquet => vec![
            "string",
            "string",
            "string",
            "timestamp[us, tz=UTC]",
            "timestamp[us, tz=UTC]",
        ],
        Format::Csv => vec![
            "VARCHAR",
            "VARCHAR",
            "VARCHAR",
            "TIMESTAMP WITH TIME ZONE",
            "TIMESTAMP WITH TIME ZONE",
        ],
        Format::Json => vec!["str"; 5],
    };
    assert_eq!(types[..5], meta_types[..], "{what}: metadata column types");
    let mut wrong = Vec::new();
    for (c, col) in cols.iter().enumerate() {
        let column_values: Vec<&Value> = values.iter().map(|v| &v[c]).collect();
        let got = types[5 + c];
        let ok = match format {
            Format::Parquet => got == parquet_type(col),
            Format::Json => got == json_types(col, &column_values),
            Format::Csv => csv_types_allowed(col, &column_values).contains(&got),
        };
        if !ok {
            wrong.push(format!("{}: reader type {got:?}", col.name));
        }
    }
    assert!(
        wrong.is_empty(),
        "{what}: column types:\n{}",
        wrong.join("\n")
    );
    if format == Format::Parquet {
        let md = &doc["field_metadata"];
        for col in &cols {
            assert_eq!(
                md[&col.name]["rtdp.type"],
                col.ty.as_str(),
                "{what}: {}",
                col.name
            );
        }
    }

    // Values, metadata first.
    for (row, (i, vals)) in rows.iter().zip(indexes.iter().zip(&values)) {
        let row = row.as_array().unwrap();
        let ev = order_event(*i);
        assert_eq!(row[1], ev.op.code(), "{what}: event {i} _op");
        let position = ev.source.position().unwrap().to_string();
        assert_eq!(
            row[2],
            position.as_str(),
            "{what}: event {i} _source_position"
        );
        assert_eq!(
            instant_micros(row[3].as_str().unwrap()),
            ev.source.ts_ms * 1000,
            "{what}: event {i} _source_ts"
        );
        let processed = instant_micros(row[4].as_str().unwrap()) / 1000;
        assert!(
            (t0 - 1000..=t1 + 1000).contains(&processed),
            "{what}: event {i} _processed_at {processed} outside the run [{t0}, {t1}]"
        );
        for (c, (col, v)) in cols.iter().zip(vals).enumerate() {
            assert!(
                value_matches(format, col, types[5 + c], v, &row[5 + c]),
                "{what}: event {i} column {}: wrote {v:?}, reader has {} ({})",
                col.name,
                row[5 + c],
                types[5 + c]
            );
        }
    }
    // CSV: the exact text of every field, whatever duckdb sniffed.
    if format == Format::Csv {
        let text_rows = doc["text_rows"].as_array().unwrap();
        assert_eq!(text_rows.len(), rows.len(), "{what}: text rows");
        for (row, (i, vals)) in text_rows.iter().zip(indexes.iter().zip(&values)) {
            assert_eq!(
                row[0],
                order_event(*i).event_id.as_str(),
                "{what}: text _event_id"
            );
            for (c, (col, v)) in cols.iter().zip(vals).enumerate() {
                assert_eq!(
                    row[5 + c],
                    csv_text(col, v),
                    "{what}: event {i} column {} text",
                    col.name
                );
            }
        }
    }
    indexes
}

/// Kafka allows topic names of up to 249 characters, and the configuration accepts them;
/// the final file name is `<topic>+<p>+<19 digits>+<19 digits>.<ext>`, about 45 bytes
/// more, over the usual 255-byte file-name limit.
#[test]
fn a_long_topic_name_still_commits() {
    let k = kafka();
    let base = k.unique_topic("long");
    let topic = format!("{base}-{}", "x".repeat(240 - base.len()));
    assert_eq!(topic.len(), 241);
    k.create_topic(&topic, 1);
    produce_orders(&topic, 0..50);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut e = env(&topic, "long-topic", &out);
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "300");
    let log = dir.path().join("w.log");
    let mut w = Worker::start(&e, &log);
    rtdp_testkit::wait_until(LONG, "50 records committed, or the worker gone", || {
        !w.child.is_running() || w.metric("rtdp_records_out_total") >= Some(50.0)
    });
    assert!(
        w.child.is_running(),
        "the worker exited; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    w.stop_ok();
    assert_exactly_once(&out, 50);
}
