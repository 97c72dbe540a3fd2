//! Where files live under `output.path`. Pure path arithmetic, no I/O.
//!
//! ```text
//! <output.path>/
//!   <schema>.<table>/dt=YYYY-MM-DD/<topic>+<partition>+<first offset>+<last offset>.<ext>   committed data
//!   _dlq/dt=YYYY-MM-DD/<topic>+<partition>+<first>+<last>.jsonl[.gz|.zst]                 committed dead letters
//!   _tmp/<topic>+<partition>/<pid>-<seq>-<offset>.<ext>.inprogress                       in-progress (hidden)
//!   _state/<topic>/<partition>.json                                                       per-partition manifest
//! ```
//! Offsets are zero-padded to 19 digits so names sort in offset order. Folders starting
//! with `_` are skipped by Spark, Hive, Trino and pyarrow dataset readers.

use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

pub const DLQ_DIR: &str = "_dlq";
pub const TMP_DIR: &str = "_tmp";
pub const STATE_DIR: &str = "_state";

/// `dt=YYYY-MM-DD` of a millisecond timestamp (UTC).
pub fn day_folder(ts_ms: i64) -> String {
    let d = DateTime::<Utc>::from_timestamp_millis(ts_ms).unwrap_or_default();
    format!("dt={}", d.format("%Y-%m-%d"))
}

/// Longest file or folder name most file systems take (ext4, xfs, btrfs: 255 bytes).
pub const MAX_NAME_BYTES: usize = 255;

/// `name` itself when it fits in `max` bytes; otherwise its longest prefix that leaves
/// room for `~` and a 16-hex-digit hash of the whole name, so distinct long names stay
/// distinct and the result is the same on every run (recovery depends on that).
pub fn shorten(name: String, max: usize) -> String {
    if name.len() <= max {
        return name;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut cut = max.saturating_sub(17);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{h:016x}", &name[..cut])
}

/// Replaces path separators and leading dots so a table name can never escape its
/// folder, and shortens it to a valid folder name (see [`shorten`]).
pub fn safe_component(name: &str) -> String {
    shorten(safe_chars(name), MAX_NAME_BYTES)
}

fn safe_chars(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c == '\0' {
                '_'
            } else {
                c
            }
        })
        .collect();
    if s.starts_with('.') || s.starts_with('_') || s.is_empty() {
        s.insert(0, 't');
    }
    s
}

/// Final name of a committed file (the topic part shortened when the whole name would
/// not fit in [`MAX_NAME_BYTES`]).
pub fn final_name(topic: &str, partition: i32, first: i64, last: i64, ext: &str) -> String {
    let rest = format!("+{partition}+{first:019}+{last:019}.{ext}");
    let topic = shorten(safe_chars(topic), MAX_NAME_BYTES - rest.len());
    format!("{topic}{rest}")
}

/// Folder of a table's day, relative to the output root.
pub fn table_day_dir(qualified_table: &str, ts_ms: i64) -> PathBuf {
    Path::new(&safe_component(qualified_table)).join(day_folder(ts_ms))
}

/// Folder of dead letters of a day, relative to the output root.
pub fn dlq_day_dir(ts_ms: i64) -> PathBuf {
    Path::new(DLQ_DIR).join(day_folder(ts_ms))
}

/// In-progress folder of one partition, relative to the output root.
pub fn tmp_dir(topic: &str, partition: i32) -> PathBuf {
    Path::new(TMP_DIR).join(shorten(
        format!("{}+{partition}", safe_chars(topic)),
        MAX_NAME_BYTES,
    ))
}

/// Manifest of one partition, relative to the output root.
pub fn manifest_path(topic: &str, partition: i32) -> PathBuf {
    Path::new(STATE_DIR)
        .join(safe_component(topic))
        .join(format!("{partition}.json"))
}

/// Parses a final name back into (topic, partition, first, last).
pub fn parse_final_name(name: &str) -> Option<(String, i32, i64, i64)> {
    // The topic may contain dots (DataHub's `<project>.<topic>`); the offsets never do,
    // so the extension starts at the first dot after the last '+'.
    let plus = name.rfind('+')?;
    let stem = match name[plus..].find('.') {
        Some(dot) => &name[..plus + dot],
        None => name,
    };
    let mut it = stem.rsplitn(4, '+');
    let last = it.next()?.parse().ok()?;
    let first = it.next()?.parse().ok()?;
    let partition = it.next()?.parse().ok()?;
    let topic = it.next()?.to_string();
    Some((topic, partition, first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_offset() {
        let a = final_name("cdc-events", 3, 9, 10, "parquet");
        let b = final_name("cdc-events", 3, 11, 200, "parquet");
        assert_eq!(
            a,
            "cdc-events+3+0000000000000000009+0000000000000000010.parquet"
        );
        assert!(a < b);
        assert_eq!(
            parse_final_name(&b),
            Some(("cdc-events".into(), 3, 11, 200))
        );
        assert_eq!(
            parse_final_name("x+1+2+3.jsonl.gz"),
            Some(("x".into(), 1, 2, 3))
        );
        // DataHub topics are <project>.<topic>: a dot before the offsets.
        assert_eq!(
            parse_final_name("proj.cdc-events+1+2+3.csv.zst"),
            Some(("proj.cdc-events".into(), 1, 2, 3))
        );
    }

    #[test]
    fn long_names_are_shortened_deterministically_and_stay_distinct() {
        let long_table = format!("public.{}", "t".repeat(300));
        let other = format!("public.{}u", "t".repeat(299));
        let a = safe_component(&long_table);
        assert!(a.len() <= MAX_NAME_BYTES && a.starts_with("public.ttt"));
        assert_eq!(a, safe_component(&long_table));
        assert_ne!(a, safe_component(&other));
        let topic = "x".repeat(249);
        let f = final_name(&topic, 11, 1, 2, "jsonl.zst");
        assert!(f.len() <= MAX_NAME_BYTES, "{}", f.len());
        assert!(f.ends_with("+11+0000000000000000001+0000000000000000002.jsonl.zst"));
        let t = tmp_dir(&topic, 1);
        assert!(t.file_name().unwrap().len() <= MAX_NAME_BYTES);
        // Multi-byte characters are never cut in half.
        let cjk = "表".repeat(200);
        assert!(safe_component(&cjk).len() <= MAX_NAME_BYTES);
        // Short names are untouched.
        assert_eq!(
            final_name("cdc", 0, 1, 2, "csv"),
            "cdc+0+0000000000000000001+0000000000000000002.csv"
        );
    }

    #[test]
    fn table_names_cannot_escape() {
        assert_eq!(safe_component("../etc"), "t.._etc");
        assert_eq!(safe_component("public.users"), "public.users");
        assert_eq!(
            table_day_dir("app.t", 0),
            PathBuf::from("app.t/dt=1970-01-01")
        );
    }
}
