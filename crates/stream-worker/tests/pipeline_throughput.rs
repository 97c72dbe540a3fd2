//! Throughput probe of the in-process hot path (decode → partition writer → sink), no
//! Kafka. Prints numbers; asserts nothing about speed. Run:
//! `cargo test --release -p stream-worker --test pipeline_throughput -- --ignored --nocapture`

use std::time::Instant;
use stream_worker::decode::{Decoded, Decoder, RecordRef};
use stream_worker::manifest::{Recovered, Store};
use stream_worker::partition::PartitionWriter;
use stream_worker::roll::RollPolicy;
use stream_worker::sink::{Compression, Format, SinkOptions};

#[test]
#[ignore = "throughput probe; prints numbers"]
fn decode_and_write_throughput() {
    let n = 200_000u64;
    let records: Vec<Vec<u8>> = (0..n)
        .map(|i| rtdp_testkit::gen::to_record(&rtdp_testkit::gen::order_event(i)).1)
        .collect();
    let bytes: usize = records.iter().map(Vec::len).sum();
    let mut d = Decoder::new(1 << 20);
    let t = Instant::now();
    let mut events = Vec::with_capacity(n as usize);
    for (i, r) in records.iter().enumerate() {
        let at = RecordRef {
            topic: "t",
            partition: 0,
            offset: i as i64,
        };
        match d.decode(Some(r), at, 0).unwrap() {
            Decoded::Event(e) => events.push(*e),
            Decoded::Skip(_) => unreachable!(),
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "decode: {:.0} events/s, {:.0} MB/s",
        n as f64 / s,
        bytes as f64 / 1e6 / s
    );
    for (format, compression) in [
        (Format::Parquet, Compression::Snappy),
        (Format::Json, Compression::None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = SinkOptions {
            format,
            compression,
            parquet_row_group_bytes: 64 << 20,
        };
        let policy = RollPolicy {
            size_bytes: 1 << 40,
            interval_ms: 1 << 40,
            inactivity_ms: 1 << 40,
            checkpoint_interval_ms: 1 << 40,
        };
        let mut w = PartitionWriter::new(
            "t",
            0,
            Store::new(dir.path()),
            opts,
            policy,
            Recovered::default(),
        );
        let mut d = Decoder::new(1 << 20);
        let t = Instant::now();
        for (i, r) in records.iter().enumerate() {
            let at = RecordRef {
                topic: "t",
                partition: 0,
                offset: i as i64,
            };
            if let Decoded::Event(e) = d.decode(Some(r), at, 0).unwrap() {
                w.write(i as i64, *e, 0).unwrap();
            }
        }
        w.checkpoint(0).unwrap();
        let s = t.elapsed().as_secs_f64();
        println!(
            "decode+write+commit {format:?}/{compression:?}: {:.0} events/s",
            n as f64 / s
        );
    }
}
