//! End-to-end tests of stream-worker: the real binary, a real Kafka broker (started by
//! `rtdp_testkit`), real files, independent readers.

mod alerts;
mod common;
mod config_cli;
mod dead_letters;
mod debezium;
mod debezium_capture;
mod exactly_once;
mod formats;
mod health;
#[path = "../support/readback_common.rs"]
mod readback_common;
mod rolling;
