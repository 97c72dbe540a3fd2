//! The Oracle (LogMiner) source — its own issue. Present so far: [`redo`], the pure
//! parser of LogMiner's `SQL_REDO` statements that the source and the operators'
//! `parse-redo` tool will share.

pub mod redo;
