//! The Oracle (LogMiner) source.
//!
//! - [`redo`]: the pure parser of LogMiner's `SQL_REDO` statements (also behind the
//!   operators' `parse-redo` tool);
//! - [`lob`]: LogMiner's LOB locator/write/trim/erase rows (with `oracle.lobEnabled`);
//! - [`types`]: Oracle column types and value texts → the envelope's types;
//! - [`logminer`]: the pure heart of the source — LogMiner rows joined across `CSF`,
//!   buffered per transaction, emitted at commit in commit order, positions and resume
//!   (also behind the operators' `replay` tool);
//! - [`session`]: the source itself — start-up checks, the snapshot `AS OF SCN`,
//!   LogMiner windows and log files — over an [`session::OracleDb`];
//! - [`live`]: that database over the `oracle` crate.

pub mod live;
pub mod lob;
pub mod logminer;
pub mod redo;
pub mod replay;
pub mod session;
pub mod types;
