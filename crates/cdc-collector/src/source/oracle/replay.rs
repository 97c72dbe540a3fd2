//! `cdc-collector oracle replay FILE`: recorded `V$LOGMNR_CONTENTS` rows (JSON lines) run
//! through the same [`Miner`] as the live source; the change events come out in publish
//! order as JSON lines. For support people with a captured dump, and for the tests of
//! the transaction buffer.
//!
//! Input lines: one row object each (keys: the view's column names in lower case), blank
//! lines ignored, and optionally `{"window_end": SCN}` where the live source would have
//! ended a LogMiner window (and stored a checkpoint). Output: one event per line; with
//! `checkpoints`, also `{"checkpoint": {…}}` at each window end and at the end of input;
//! a change that cannot be read prints `{"error": "…"}` and the replay goes on (exit 1 at
//! the end). `from` resumes after a checkpoint the way the live source does: rows below
//! its restart SCN are not read (they would not be mined), events at or before its
//! position are skipped.

use std::io::{BufRead, Write};

use serde_json::{json, Value};

use super::logminer::{Catalog, Checkpoint, LmRow, Miner, MinerSettings};

/// Input a replay cannot read at all, or output it cannot write. The texts of I/O and
/// JSON errors are kept as text (`reason`) so the error stays comparable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("line {line}: cannot read: {reason}")]
    Read { line: usize, reason: String },
    #[error("line {line}: not a JSON object: {reason}")]
    NotJson { line: usize, reason: String },
    #[error("line {line}: window_end must be an SCN")]
    BadWindowEnd { line: usize },
    #[error("line {line}: not a V$LOGMNR_CONTENTS row: {reason}")]
    NotARow { line: usize, reason: String },
    #[error(
        "line {line}: SCN {scn} after SCN {last_scn}: rows must be in SCN order (ORDER BY SCN)"
    )]
    OutOfOrder {
        line: usize,
        scn: u64,
        last_scn: u64,
    },
    /// The miner refused a row (e.g. a full buffer): its message.
    #[error("line {line}: {message}")]
    Miner { line: usize, message: String },
    /// The miner refused a window end (a `window_end` line or the end of input): its
    /// message.
    #[error("{message}")]
    Window { message: String },
    #[error("cannot write the output: {reason}")]
    Write { reason: String },
}

/// Options of a replay.
pub struct ReplayOptions {
    pub collector: String,
    pub checkpoints: bool,
    pub from: Option<Checkpoint>,
    pub max_buffered: usize,
    pub lob_enabled: bool,
}

/// What a replay did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub rows: u64,
    pub events: u64,
    pub transactions: u64,
    pub problems: u64,
}

/// Runs a replay; `Err` for input it cannot read at all (names the line) or output it
/// cannot write.
pub fn replay(
    input: impl BufRead,
    mut out: impl Write,
    catalog: &mut dyn Catalog,
    opts: &ReplayOptions,
) -> Result<ReplaySummary, ReplayError> {
    let mut miner = Miner::new(
        MinerSettings {
            collector: opts.collector.clone(),
            db: None,
            max_buffered: opts.max_buffered,
            lob_enabled: opts.lob_enabled,
            tz_offset_secs: 0,
        },
        opts.from.clone(),
    );
    let restart = opts.from.as_ref().map_or(0, |c| c.restart_scn);
    let mut summary = ReplaySummary::default();
    let mut last_scn = 0u64;
    let mut window_end = 0u64;
    let io = |e: std::io::Error| ReplayError::Write {
        reason: e.to_string(),
    };
    for (n, line) in input.lines().enumerate() {
        let lineno = n + 1;
        let line = line.map_err(|e| ReplayError::Read {
            line: lineno,
            reason: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line).map_err(|e| ReplayError::NotJson {
            line: lineno,
            reason: e.to_string(),
        })?;
        if let Some(end) = v.get("window_end") {
            let end = end
                .as_u64()
                .ok_or(ReplayError::BadWindowEnd { line: lineno })?;
            window_end = window_end.max(end);
            let cp = miner
                .end_window(end, catalog)
                .map_err(|e| ReplayError::Window { message: e.message })?;
            write_ready(&mut miner, &mut out, &mut summary).map_err(io)?;
            if opts.checkpoints {
                writeln!(out, "{}", json!({ "checkpoint": cp })).map_err(io)?;
            }
        } else {
            let row: LmRow = serde_json::from_value(v).map_err(|e| ReplayError::NotARow {
                line: lineno,
                reason: e.to_string(),
            })?;
            if row.scn < last_scn {
                return Err(ReplayError::OutOfOrder {
                    line: lineno,
                    scn: row.scn,
                    last_scn,
                });
            }
            last_scn = row.scn;
            summary.rows += 1;
            if row.scn < restart {
                continue;
            }
            miner.push(row, catalog).map_err(|e| ReplayError::Miner {
                line: lineno,
                message: e.message,
            })?;
        }
        write_ready(&mut miner, &mut out, &mut summary).map_err(io)?;
    }
    let cp = miner
        .end_window(last_scn.max(window_end), catalog)
        .map_err(|e| ReplayError::Window { message: e.message })?;
    write_ready(&mut miner, &mut out, &mut summary).map_err(io)?;
    if opts.checkpoints {
        writeln!(out, "{}", json!({ "checkpoint": cp })).map_err(io)?;
    }
    for r in &miner.ddl_reports {
        eprintln!("{r}");
    }
    summary.transactions = miner.stats.transactions;
    Ok(summary)
}

fn write_ready(
    miner: &mut Miner,
    out: &mut impl Write,
    summary: &mut ReplaySummary,
) -> std::io::Result<()> {
    for p in miner.problems.drain(..) {
        summary.problems += 1;
        writeln!(out, "{}", json!({ "error": p }))?;
    }
    let (events, _, _) = miner.take_ready();
    for e in events {
        summary.events += 1;
        serde_json::to_writer(&mut *out, &e.event)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::oracle::logminer::StaticCatalog;

    fn run(input: &str) -> Result<ReplaySummary, ReplayError> {
        let mut catalog = StaticCatalog {
            infer_unknown: true,
            ..Default::default()
        };
        let opts = ReplayOptions {
            collector: "c".into(),
            checkpoints: false,
            from: None,
            max_buffered: 10,
            lob_enabled: false,
        };
        replay(input.as_bytes(), Vec::new(), &mut catalog, &opts)
    }

    #[test]
    fn unreadable_input_is_a_typed_error_naming_the_line() {
        let e = run("{\"scn\": 5, \"xid\": \"A\", \"operation_code\": 6}\n\n{\"scn\": 4, \"xid\": \"A\", \"operation_code\": 7}\n").unwrap_err();
        assert_eq!(
            e,
            ReplayError::OutOfOrder {
                line: 3,
                scn: 4,
                last_scn: 5
            }
        );
        assert_eq!(
            e.to_string(),
            "line 3: SCN 4 after SCN 5: rows must be in SCN order (ORDER BY SCN)"
        );
        let e = run("not json\n").unwrap_err();
        assert!(matches!(e, ReplayError::NotJson { line: 1, .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("line 1: not a JSON object: "),
            "{e}"
        );
        let e = run("{\"window_end\": \"x\"}\n").unwrap_err();
        assert_eq!(e, ReplayError::BadWindowEnd { line: 1 });
        assert_eq!(e.to_string(), "line 1: window_end must be an SCN");
        let e = run("{\"scn\": \"x\"}\n").unwrap_err();
        assert!(matches!(e, ReplayError::NotARow { line: 1, .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("line 1: not a V$LOGMNR_CONTENTS row: "),
            "{e}"
        );
    }
}
