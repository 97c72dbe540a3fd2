//! stream-worker: consumes rtdp (or Debezium) change events from a Kafka topic in a
//! consumer group and writes them, exactly once, as rolling JSON / CSV / Parquet files.
//!
//! ```text
//!  Kafka partition ──poll──▶ decode ──▶ partition state ──▶ sink (in-progress file under _tmp/)
//!                              │             │  roll?               │ checkpoint
//!                              └─▶ dead letters (_dlq/)             ▼
//!                                  manifest (commit point) ─▶ rename to final name ─▶ Kafka commit
//! ```
//!
//! Pure parts (decode, roll decisions, file naming) are tested without any server;
//! `manifest` and `partition` only touch the file system; `consumer` wires them to
//! librdkafka; `main.rs` only loads config, starts telemetry and waits for signals.

pub mod consumer;
pub mod decode;
pub mod dedup;
pub mod layout;
pub mod manifest;
pub mod metrics;
pub mod partition;
pub mod roll;
pub mod sink;
