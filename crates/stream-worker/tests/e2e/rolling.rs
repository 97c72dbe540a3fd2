//! Roll boundaries through the real worker, each limit alone: size (a file closes with
//! the first record that takes it past `output.rolling.sizeBytes`), inactivity, interval,
//! and a table whose columns change mid-stream (a new file with the new schema, in the
//! same checkpoint).

use crate::common::*;
use rtdp_core::types::{Column, ColumnType};
use rtdp_testkit::gen::{order_columns, order_event, to_record};
use rtdp_testkit::kafka;
use std::path::{Path, PathBuf};
use std::time::Duration;
use stream_worker::sink::META_COLUMNS;

const LONG: Duration = Duration::from_secs(120);
const NEVER: &str = "3600000";

/// A JSON worker environment where no limit fires unless a test sets it.
fn quiet_env(topic: &str, group: &str, out: &Path) -> Vec<(String, String)> {
    let mut e = env(topic, group, out);
    set(&mut e, "OUTPUT_ROLLING_INTERVAL", NEVER);
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", NEVER);
    set(&mut e, "CHECKPOINT_INTERVAL", NEVER);
    e
}

/// Committed data files in offset order (one partition).
fn files_by_offset(out: &Path) -> Vec<PathBuf> {
    let mut files = data_files(out);
    files.sort_by_key(|f| file_offsets(f).2);
    files
}

/// Asserts the files' offset ranges follow each other without gap or overlap from 0 to
/// `n - 1`, and each holds exactly as many rows as its range.
fn assert_contiguous(files: &[PathBuf], n: i64) {
    let mut next = 0;
    for f in files {
        let (_, p, first, last) = file_offsets(f);
        assert_eq!(p, 0);
        assert_eq!(
            first,
            next,
            "{}: range does not follow the previous",
            f.display()
        );
        assert!(last >= first);
        assert_eq!(
            json_lines(f).len() as i64,
            last - first + 1,
            "{}: rows vs offset range",
            f.display()
        );
        next = last + 1;
    }
    assert_eq!(next, n, "the files cover offsets 0..{n}");
}

#[test]
fn size_limit_closes_a_file_with_the_record_that_crosses_it() {
    const LIMIT: u64 = 65_536;
    const N: u64 = 1_000;
    let k = kafka();
    let topic = k.unique_topic("roll-size");
    k.create_topic(&topic, 1);
    produce_orders(&topic, 0..N);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut e = quiet_env(&topic, "roll-size", &out);
    set(&mut e, "OUTPUT_ROLLING_SIZE", &LIMIT.to_string());
    let w = Worker::start(&e, &dir.path().join("w.log"));
    w.wait_metric("rtdp_records_in_total", N as f64, LONG);
    // Only size rolls ran; SIGTERM commits the last, smaller file.
    w.stop_ok();

    let files = files_by_offset(&out);
    assert!(
        files.len() >= 5,
        "expected several files, got {}",
        files.len()
    );
    assert_contiguous(&files, N as i64);
    assert_exactly_once(&out, N);
    let lines: Vec<Vec<Vec<u8>>> = files
        .iter()
        .map(|f| {
            std::fs::read(f)
                .unwrap()
                .split_inclusive(|b| *b == b'\n')
                .map(<[u8]>::to_vec)
                .collect()
        })
        .collect();
    let largest = lines.iter().flatten().map(Vec::len).max().unwrap() as u64;
    for (f, file_lines) in files.iter().zip(&lines).take(files.len() - 1) {
        let size = std::fs::metadata(f).unwrap().len();
        let last_line = file_lines.last().unwrap().len() as u64;
        assert!(
            size >= LIMIT && size < LIMIT + largest,
            "{}: size {size} not in [{LIMIT}, {LIMIT} + {largest})",
            f.display()
        );
        assert!(
            size - last_line < LIMIT,
            "{}: size {size} was already past the limit before its last line ({last_line} bytes)",
            f.display()
        );
    }
    let last = files.last().unwrap();
    assert!(std::fs::metadata(last).unwrap().len() < LIMIT + largest);
}

#[test]
fn inactivity_commits_each_batch_in_its_own_file() {
    let k = kafka();
    let topic = k.unique_topic("roll-idle");
    k.create_topic(&topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut e = quiet_env(&topic, "roll-idle", &out);
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "500");
    produce_orders(&topic, 0..300);
    let w = Worker::start(&e, &dir.path().join("w.log"));
    w.wait_metric("rtdp_records_out_total", 300.0, LONG);
    assert_eq!(data_files(&out).len(), 1, "batch A in one file");
    produce_orders(&topic, 300..500);
    w.wait_metric("rtdp_records_out_total", 500.0, LONG);
    assert_eq!(
        w.metric_sample("rtdp_checkpoint_duration_ms_count", "reason=\"inactivity\""),
        Some(2.0),
        "two inactivity checkpoints"
    );
    w.stop_ok();
    let files = files_by_offset(&out);
    let rows: Vec<usize> = files.iter().map(|f| json_lines(f).len()).collect();
    assert_eq!(rows, vec![300, 200], "{files:?}");
    assert_contiguous(&files, 500);
    assert_exactly_once(&out, 500);
}

#[test]
fn interval_bounds_the_time_span_of_each_file() {
    const N: u64 = 80;
    let k = kafka();
    let topic = k.unique_topic("roll-interval");
    k.create_topic(&topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut e = quiet_env(&topic, "roll-interval", &out);
    set(&mut e, "OUTPUT_ROLLING_INTERVAL", "1000");
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "60000");
    let w = Worker::start(&e, &dir.path().join("w.log"));
    w.wait_ready(LONG);
    // The load: one event every 50 ms for about 4 s.
    let p = Producer::new(&topic);
    for i in 0..N {
        let (key, value) = to_record(&order_event(i));
        p.send(Some(&key), Some(&value), Some(0));
        std::thread::sleep(Duration::from_millis(50));
    }
    p.flush();
    w.wait_metric("rtdp_records_out_total", N as f64, LONG);
    let interval_rolls = w
        .metric_sample("rtdp_checkpoint_duration_ms_count", "reason=\"interval\"")
        .unwrap_or(0.0);
    w.stop_ok();

    let files = files_by_offset(&out);
    assert!(
        files.len() >= 3,
        "expected >= 3 files over ~4 s, got {}",
        files.len()
    );
    assert_eq!(
        interval_rolls as usize,
        files.len(),
        "every file closed by the interval"
    );
    assert_contiguous(&files, N as i64);
    assert_exactly_once(&out, N);
    for f in &files {
        let times: Vec<i64> = json_lines(f)
            .iter()
            .map(|r| {
                crate::readback_common::instant_micros(r["_processed_at"].as_str().unwrap()) / 1000
            })
            .collect();
        let span = times.iter().max().unwrap() - times.iter().min().unwrap();
        assert!(
            span < 1000 + 300,
            "{}: rows span {span} ms of processing time",
            f.display()
        );
    }
}

#[test]
fn a_column_change_mid_stream_rolls_to_a_file_with_the_new_schema() {
    let k = kafka();
    let topic = k.unique_topic("roll-schema");
    k.create_topic(&topic, 1);
    // Events 0..100 with the 15 columns, 100..200 with an added `coupon` column.
    kafka()
        .produce(
            &topic,
            (0..200u64).map(|i| {
                let mut ev = order_event(i);
                if i >= 100 {
                    ev.columns.push(Column::new("coupon", ColumnType::String));
                    ev.after
                        .as_mut()
                        .unwrap()
                        .insert("coupon".into(), format!("SAVE-{i}").into());
                }
                let (key, value) = to_record(&ev);
                (Some(key), value, Some(0))
            }),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut e = quiet_env(&topic, "roll-schema", &out);
    set(&mut e, "OUTPUT_FORMAT", "parquet");
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "500");
    let w = Worker::start(&e, &dir.path().join("w.log"));
    w.wait_metric("rtdp_records_out_total", 200.0, LONG);
    assert_eq!(
        w.metric("rtdp_checkpoint_count_total"),
        Some(1.0),
        "one checkpoint"
    );
    assert_eq!(w.metric("rtdp_files_committed_total"), Some(2.0));
    w.stop_ok();

    let files = files_by_offset(&out);
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        assert!(rel(&out, f).starts_with("public.orders/dt=2026-11-24/"));
    }
    let docs = read_output(&files);
    let base: Vec<String> = META_COLUMNS
        .iter()
        .map(|s| s.to_string())
        .chain(order_columns().into_iter().map(|c| c.name))
        .collect();
    for (n, (f, doc)) in files.iter().zip(&docs).enumerate() {
        let names: Vec<&str> = doc["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c[0].as_str().unwrap())
            .collect();
        let rows = doc["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 100, "{}", f.display());
        let (_, _, first, last) = file_offsets(f);
        assert_eq!((first, last), (n as i64 * 100, n as i64 * 100 + 99));
        if n == 0 {
            assert_eq!(names, base, "first file: the old columns");
        } else {
            let mut expected = base.clone();
            expected.push("coupon".into());
            assert_eq!(names, expected, "second file: the new columns");
            let coupon = &doc["columns"][expected.len() - 1];
            assert_eq!(coupon[1], "string");
            for (r, row) in rows.iter().enumerate() {
                assert_eq!(
                    row[expected.len() - 1],
                    format!("SAVE-{}", 100 + r).as_str()
                );
                assert_eq!(row[0], order_event(100 + r as u64).event_id.as_str());
            }
        }
    }
}

/// One open file per table (and day, and schema) per partition: a partition carrying
/// more tables than the process may open files must still make progress (e.g. by
/// checkpointing early), not fail on every start.
#[test]
fn more_tables_than_file_descriptors_still_commit() {
    let k = kafka();
    let topic = k.unique_topic("many-tables");
    k.create_topic(&topic, 1);
    let n = 600u64;
    let event = |i: u64| {
        rtdp_testkit::gen::order_event_at(
            "gen",
            &format!("t{}", i % 300),
            i,
            1_795_478_400_000 + i as i64,
        )
    };
    k.produce(
        &topic,
        (0..n).map(|i| {
            let (key, value) = to_record(&event(i));
            (Some(key), value, Some(0))
        }),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut e = quiet_env(&topic, "many-tables", &out);
    set(&mut e, "OUTPUT_ROLLING_INACTIVITY", "500");
    let log = dir.path().join("w.log");
    let logf = std::fs::File::create(&log).unwrap();
    let port = rtdp_testkit::free_port();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n 256 && exec '{WORKER}'"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MONITORING_PORT", port.to_string())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(logf.try_clone().unwrap())
        .stderr(logf);
    for (k, v) in &e {
        cmd.env(k, v);
    }
    let mut child = rtdp_testkit::ChildGuard::new(cmd.spawn().expect("spawn"));
    let records_out = || {
        http_get(port, "/metrics").and_then(|(_, body)| {
            body.lines()
                .find(|l| l.starts_with("rtdp_records_out_total "))
                .and_then(|l| l.rsplit_once(' '))
                .and_then(|(_, v)| v.parse::<f64>().ok())
        })
    };
    rtdp_testkit::wait_until(LONG, "all rows committed, or the worker gone", || {
        !child.is_running() || records_out() >= Some(n as f64)
    });
    assert!(
        child.is_running(),
        "the worker exited; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    child.sigterm();
    assert_eq!(child.wait_timeout(LONG).and_then(|s| s.code()), Some(0));
    let ids = committed_event_ids(&out);
    assert_eq!(ids.len() as u64, n);
    assert!((0..n).all(|i| ids.get(&event(i).event_id) == Some(&1)));
}
