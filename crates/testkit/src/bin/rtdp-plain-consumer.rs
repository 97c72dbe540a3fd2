//! rtdp-plain-consumer: the benchmark's baseline. Reads a topic from the beginning in a
//! fresh consumer group (read_committed, like the worker) and does nothing with the
//! records; prints events/s and MB/s once it has read `--count` records.

use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap: String,
    #[arg(long, env = "KAFKA_TOPIC", default_value = "cdc-events")]
    topic: String,
    #[arg(long)]
    count: u64,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let group = format!("rtdp-plain-{}", std::process::id());
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &a.bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("fetch.max.bytes", "52428800")
        .set("queued.max.messages.kbytes", "262144")
        .set("fetch.queue.backoff.ms", "10")
        .create()?;
    consumer.subscribe(&[&a.topic])?;
    let mut n = 0u64;
    let mut bytes = 0u64;
    let mut started: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while n < a.count {
        anyhow::ensure!(
            Instant::now() < deadline,
            "read only {n} of {} records in 600 s",
            a.count
        );
        if let Some(r) = consumer.poll(Duration::from_millis(100)) {
            let m = r?;
            started.get_or_insert_with(Instant::now);
            n += 1;
            bytes += m.payload_len() as u64;
        }
    }
    let s = started
        .map(|t| t.elapsed().as_secs_f64())
        .unwrap_or(f64::NAN);
    println!(
        "records={n} bytes={bytes} seconds={s:.3} events_per_s={:.0} mb_per_s={:.1}",
        n as f64 / s,
        bytes as f64 / 1e6 / s
    );
    Ok(())
}
