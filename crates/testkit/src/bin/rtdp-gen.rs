//! rtdp-gen: loads synthetic change events (see `rtdp_testkit::gen`) into a Kafka topic,
//! for the demo and the benchmark. Creates the topic if it is missing.

use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Load synthetic rtdp change events into a Kafka topic")]
struct Args {
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap: String,
    #[arg(long, env = "KAFKA_TOPIC", default_value = "cdc-events")]
    topic: String,
    /// Number of events.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Index of the first event (re-using indexes re-sends the same events).
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Partitions of the topic when it is created.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Spread events over this many tables (orders, orders_1, …).
    #[arg(long, default_value_t = 1)]
    tables: u64,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &a.bootstrap);
    let admin: AdminClient<DefaultClientContext> = cfg.create()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let topic = NewTopic::new(&a.topic, a.partitions, TopicReplication::Fixed(1));
    let res = rt.block_on(admin.create_topics([&topic], &AdminOptions::new()))?;
    for r in res {
        match r {
            Ok(t) => eprintln!("created topic {t} with {} partitions", a.partitions),
            Err((t, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                eprintln!("topic {t} exists")
            }
            Err((t, e)) => anyhow::bail!("cannot create topic {t}: {e}"),
        }
    }
    let producer: BaseProducer = cfg
        .clone()
        .set("linger.ms", "20")
        .set("batch.size", "1048576")
        .set("compression.type", "lz4")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()?;
    let started = Instant::now();
    let mut bytes = 0u64;
    for i in a.start..a.start + a.count {
        let table = if a.tables <= 1 {
            "orders".to_string()
        } else {
            format!("orders_{}", i % a.tables)
        };
        let ev = rtdp_testkit::gen::order_event_at("gen", &table, i, chrono_now_ms());
        let (k, v) = rtdp_testkit::gen::to_record(&ev);
        bytes += v.len() as u64;
        let mut rec = BaseRecord::to(&a.topic).key(&k).payload(&v);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((e, r))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    producer.poll(Duration::from_millis(10));
                    rec = r;
                }
                Err((e, _)) => anyhow::bail!("produce failed: {e}"),
            }
        }
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let s = started.elapsed().as_secs_f64();
    eprintln!(
        "produced {} events ({:.1} MB) in {:.2} s: {:.0} events/s",
        a.count,
        bytes as f64 / 1e6,
        s,
        a.count as f64 / s
    );
    Ok(())
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
