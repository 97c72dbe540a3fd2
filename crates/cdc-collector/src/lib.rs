//! cdc-collector: reads committed changes from a source database and publishes them as
//! rtdp change events to Kafka, exactly once (docs/OPERATIONS.md, docs/POSTGRESQL.md, docs/ORACLE.md).
//!
//! - [`source`]: the [`source::ChangeSource`] abstraction and one implementation per
//!   database (PostgreSQL here; Oracle and MySQL follow).
//! - [`event`]: the envelope, Kafka key and event id every source builds with.
//! - [`publish`]: the Kafka producer (transactional or idempotent) and the position
//!   store (compacted offsets topic or file).
//! - [`run`]: the loop that joins them, with reconnects and metrics.
//! - [`verify`]: compares source tables with the state rebuilt from the output files.

pub mod event;
pub mod metrics;
pub mod publish;
pub mod run;
pub mod source;
pub mod verify;
