//! End-to-end tests of the collector against real PostgreSQL 15 and real Kafka, with a
//! real stream-worker writing files and `verify` comparing them with the database.

mod chain;
mod chaos;
mod common;
mod config;
mod monitoring;
mod oracle;
mod pgoutput;
