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

/// Runs a replay; `Err` for input it cannot read at all (names the line).
pub fn replay(
    input: impl BufRead,
    mut out: impl Write,
    catalog: &mut dyn Catalog,
    opts: &ReplayOptions,
) -> Result<ReplaySummary, String> {
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
    let io = |e: std::io::Error| format!("cannot write the output: {e}");
    for (n, line) in input.lines().enumerate() {
        let lineno = n + 1;
        let line = line.map_err(|e| format!("line {lineno}: cannot read: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line)
            .map_err(|e| format!("line {lineno}: not a JSON object: {e}"))?;
        let step = if let Some(end) = v.get("window_end") {
            let end = end
                .as_u64()
                .ok_or_else(|| format!("line {lineno}: window_end must be an SCN"))?;
            window_end = window_end.max(end);
            let cp = miner.end_window(end, catalog).map_err(|e| e.message)?;
            write_ready(&mut miner, &mut out, &mut summary).map_err(io)?;
            if opts.checkpoints {
                writeln!(out, "{}", json!({ "checkpoint": cp })).map_err(io)?;
            }
            Ok(())
        } else {
            let row: LmRow = serde_json::from_value(v)
                .map_err(|e| format!("line {lineno}: not a V$LOGMNR_CONTENTS row: {e}"))?;
            if row.scn < last_scn {
                return Err(format!(
                    "line {lineno}: SCN {} after SCN {last_scn}: rows must be in SCN order (ORDER BY SCN)",
                    row.scn
                ));
            }
            last_scn = row.scn;
            summary.rows += 1;
            if row.scn < restart {
                continue;
            }
            miner.push(row, catalog).map_err(|e| e.message)
        };
        step.map_err(|e| format!("line {lineno}: {e}"))?;
        write_ready(&mut miner, &mut out, &mut summary).map_err(io)?;
    }
    let cp = miner
        .end_window(last_scn.max(window_end), catalog)
        .map_err(|e| e.message)?;
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
