//! rtdp-core: what every rtdp service shares.
//!
//! No Kafka client and no database driver live here (docs/DEVELOPMENT.md): only the models,
//! configuration, ids, retry, the health/metrics HTTP server and the alert rules with
//! their webhook.

pub mod alerts;
pub mod config;
pub mod health;
pub mod ids;
pub mod model;
pub mod retry;
pub mod secret;
pub mod signals;
pub mod status;
pub mod telemetry;
pub mod types;
