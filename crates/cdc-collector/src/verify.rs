//! `verify`: compares a source table with the state rebuilt from the stream-worker's
//! committed output files (docs/OUTPUT.md), and renders the report.
//!
//! ## What this module owns
//! Everything after the source rows are in memory: finding and reading the output files
//! of one table (JSON lines, CSV, Parquet; plain, gzip or zstd streams), applying their
//! changes in order to rebuild the table, comparing row by row with the source, the
//! checksums, and the human-readable [`Report`]. Reading the source database and the CLI
//! belong to the caller, which hands over a [`SourceTable`] per table.
//!
//! ```text
//!  SourceTable ─────────────────────────────────────────────┐
//!  <root>/<schema>.<table>/dt=*/<topic>+<p>+<first>+<last>.<ext>                  ▼
//!     ─▶ list, group by (topic, partition), sort by first offset ─▶ read ─▶ apply ─▶ compare ─▶ TableReport
//! ```
//!
//! ## What it promises
//! - **Which files**: only committed files, `dt=*/<topic>+<partition>+<first>+<last>.<ext>`
//!   directly under the table folder, with `ext` one of `jsonl`, `jsonl.gz`, `jsonl.zst`,
//!   `csv`, `csv.gz`, `csv.zst`, `parquet` (the format is taken from the extension).
//!   Anything else is ignored (counted in a note); `_tmp`, `_state` and `_dlq` are never
//!   looked at. The table folder is named as the worker names it (`<schema>.<table>`, or
//!   `<table>` when the schema is empty; `/`, `\`, NUL → `_`, a leading `.`/`_` gets a
//!   `t`, long names shortened with a hash); a missing folder means no changes.
//! - **Order**: files are grouped by (topic, partition) and applied in order of their
//!   first offset, rows in file order. Files of one partition whose offset ranges
//!   overlap are a problem (a record in two files).
//! - **Rows**: columns are matched by name; a column missing from a file is null, extra
//!   file columns are ignored. Each value is read as the *source* column's type and then
//!   compared in canonical form, `Value::to_json(col).to_string()`, with two
//!   normalisations applied to both sides: `float32` values are rounded to `f32` (Parquet
//!   stores them as Float32), and when any file of the table is CSV, an empty string in
//!   a `string`/`json` column counts as null (CSV cannot tell them apart; a note says so).
//! - **Apply**: keyed tables (any `col.key`) are a map key → row: `c`/`u`/`r` upsert, `d`
//!   removes (removing a key that is not there is a problem, and so are a `c` of a key
//!   that is there and a `u` of one that is not: a change captured twice, or one
//!   missing). Keyless tables are a
//!   multiset of whole rows: `c`/`u`/`r` add one, `d` removes one equal row (none → a
//!   problem).
//! - **Duplicates**: a row whose `_event_id` was already seen in this table (any file)
//!   is counted in `duplicate_events` and *not applied again*, so the comparison shows
//!   what the de-duplicated stream would give. Rows without an event id are not checked.
//! - **Counts**: keyed tables compare by key (`matching`, `different`, `missing`,
//!   `extra`); keyless ones by multiset (`matching` = rows present on both sides,
//!   `missing`/`extra` the surplus of each side, `different` always 0).
//! - **Checksums**: the wrapping sum of a 128-bit FNV-1a hash of each row's canonical
//!   text, folded to 64 bits, printed as 16 hex digits. Order-independent and computed
//!   identically for the source rows and the rebuilt state, so equal states give equal
//!   checksums.
//! - **Errors and problems**: a file that cannot be opened, decompressed or parsed (not
//!   JSON, ragged CSV, not Parquet) is an `Err` naming the file. A value that cannot be
//!   read as its column's type, an unknown `_op`, or a delete of an absent row is a
//!   *problem* naming the file, row number (1-based, data rows) and column; that row is
//!   not applied. Problems and errors never carry row values; only
//!   [`TableReport::sample_keys`] does, and [`Report::render`] prints it only when asked.
//!   At most [`MAX_PROBLEMS`] problems are listed, then a count of the rest.
//! - Nothing here panics on bad input, and the work is linear (hash maps; the rebuilt
//!   state keeps the key text and a 128-bit row hash per row, not the values).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int16Type,
    Int32Type, Int64Type, Int8Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rtdp_core::types::{format_decimal, Column, ColumnType, Value, MAX_DECIMAL_PRECISION};

/// At most this many problems are listed per table; the rest are counted.
pub const MAX_PROBLEMS: usize = 20;

/// At most this many keys of mismatching rows are kept in [`TableReport::sample_keys`].
pub const MAX_SAMPLE_KEYS: usize = 5;

/// Microseconds in a day: `24:00:00`, the largest `time` (PostgreSQL allows it).
const DAY_MICROS: i64 = 86_400_000_000;

/// One source table as read from the database: its columns (with `key` set on the
/// primary-key columns) and every row, values in column order.
#[derive(Debug, Clone)]
pub struct SourceTable {
    pub schema: String,
    pub table: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

/// The outcome for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    /// `schema.table` (just `table` when the schema is empty).
    pub name: String,
    pub source_rows: u64,
    /// Rows in the rebuilt state.
    pub output_rows: u64,
    /// Changes applied to the rebuilt state (rows read minus duplicates and rows that
    /// could not be applied).
    pub changes_applied: u64,
    /// Data rows read from the files.
    pub rows_read: u64,
    /// Committed files read.
    pub files: u64,
    pub matching: u64,
    /// In the source, not in the output.
    pub missing: u64,
    /// In the output, not in the source.
    pub extra: u64,
    /// Same key, other values (keyed tables only).
    pub different: u64,
    /// Rows whose `_event_id` had been seen before (not applied again).
    pub duplicate_events: u64,
    pub source_checksum: String,
    pub output_checksum: String,
    /// What went wrong while rebuilding (never row values). Any problem fails the table.
    pub problems: Vec<String>,
    /// Information that does not fail the table (ignored files, CSV null handling, …).
    pub notes: Vec<String>,
    /// Up to [`MAX_SAMPLE_KEYS`] keys of mismatching rows (the smallest ones, so the
    /// list is stable), as `col=value,…` with JSON values; for keyless tables the row's
    /// hash. Holds row values: print only when asked.
    pub sample_keys: Vec<String>,
}

impl TableReport {
    /// Everything matches: same rows and checksums, no duplicates, no problems.
    pub fn ok(&self) -> bool {
        self.missing == 0
            && self.extra == 0
            && self.different == 0
            && self.duplicate_events == 0
            && self.problems.is_empty()
            && self.source_rows == self.output_rows
            && self.matching == self.source_rows
            && self.source_checksum == self.output_checksum
    }
}

/// The outcome for all verified tables.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub tables: Vec<TableReport>,
}

impl Report {
    /// Every table matches (true for an empty report: the caller decides whether no
    /// tables is an error).
    pub fn ok(&self) -> bool {
        self.tables.iter().all(TableReport::ok)
    }

    /// A table of counts and checksums with MATCH/MISMATCH per table, each table's
    /// problems and notes below it (and its sample keys when `show_keys`), and a last
    /// line `verify: OK` or `verify: MISMATCH in N table(s)`.
    pub fn render(&self, show_keys: bool) -> String {
        const HEAD: [&str; 13] = [
            "TABLE",
            "SOURCE",
            "OUTPUT",
            "CHANGES",
            "FILES",
            "MATCHING",
            "MISSING",
            "EXTRA",
            "DIFFERENT",
            "DUP-EVENTS",
            "SOURCE-CHECKSUM",
            "OUTPUT-CHECKSUM",
            "RESULT",
        ];
        let rows: Vec<[String; 13]> = self
            .tables
            .iter()
            .map(|t| {
                [
                    t.name.clone(),
                    t.source_rows.to_string(),
                    t.output_rows.to_string(),
                    t.changes_applied.to_string(),
                    t.files.to_string(),
                    t.matching.to_string(),
                    t.missing.to_string(),
                    t.extra.to_string(),
                    t.different.to_string(),
                    t.duplicate_events.to_string(),
                    t.source_checksum.clone(),
                    t.output_checksum.clone(),
                    if t.ok() { "MATCH" } else { "MISMATCH" }.to_string(),
                ]
            })
            .collect();
        let mut widths = HEAD.map(str::len);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[&str]| {
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                let pad = w.saturating_sub(cell.chars().count());
                // Name left-aligned, numbers right-aligned, checksums and result left.
                if (1..=9).contains(&i) {
                    s.extend(std::iter::repeat_n(' ', pad));
                    s.push_str(cell);
                } else {
                    s.push_str(cell);
                    if i + 1 < cells.len() {
                        s.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            s.push('\n');
            s
        };
        let mut out = line(&HEAD);
        for (t, r) in self.tables.iter().zip(&rows) {
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            out.push_str(&line(&cells));
            for p in &t.problems {
                let _ = writeln!(out, "  problem: {p}");
            }
            for n in &t.notes {
                let _ = writeln!(out, "  note: {n}");
            }
            if show_keys && !t.sample_keys.is_empty() {
                let _ = writeln!(out, "  mismatching keys: {}", t.sample_keys.join(" | "));
            }
        }
        let bad = self.tables.iter().filter(|t| !t.ok()).count();
        if bad == 0 {
            out.push_str("verify: OK\n");
        } else {
            let _ = writeln!(out, "verify: MISMATCH in {bad} table(s)");
        }
        out
    }
}

/// Reads every committed output file of `<output_root>/<schema>.<table>/` (all `dt=*`
/// folders; JSON lines, CSV or Parquet by extension), applies the changes in order and
/// compares the rebuilt state with `source` (see the module docs for the rules).
pub fn verify_table(output_root: &Path, source: &SourceTable) -> anyhow::Result<TableReport> {
    let name = qualified_name(&source.schema, &source.table);
    let cols = &source.columns;
    for (i, row) in source.rows.iter().enumerate() {
        if row.len() != cols.len() {
            bail!(
                "{name}: source row {} has {} values for {} columns",
                i + 1,
                row.len(),
                cols.len()
            );
        }
    }
    let dir = output_root.join(table_folder(&source.schema, &source.table));
    let listing = list_files(&dir)?;
    let csv_mode = listing.files.iter().any(|f| f.format == Format::Csv);
    let canon = Canon::new(cols, csv_mode);
    let mut rb = Rebuild::new(&canon);
    let mut notes = Vec::new();
    if !listing.dir_exists {
        notes.push(format!("no output folder {}", dir.display()));
    }
    if listing.ignored > 0 {
        notes.push(format!(
            "{} entries in {} ignored (not dt=*/<topic>+<partition>+<first>+<last>.<ext>)",
            listing.ignored,
            dir.display()
        ));
    }
    if csv_mode {
        notes.push(
            "CSV cannot tell null from the empty string: empty strings in string/json columns \
             were compared as null"
                .to_string(),
        );
    }

    // Offset ranges of one partition must not overlap.
    for pair in listing.files.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.topic == b.topic && a.partition == b.partition && b.first <= a.last {
            rb.problems
                .add(|| format!("files {} and {} overlap in offsets", a.name, b.name));
        }
    }
    for f in &listing.files {
        match f.format {
            Format::Json => read_jsonl(f, cols, &mut rb)?,
            Format::Csv => read_csv(f, cols, &mut rb)?,
            Format::Parquet => read_parquet(f, cols, &mut rb)?,
        }
    }

    let mut report = TableReport {
        name,
        source_rows: source.rows.len() as u64,
        output_rows: 0,
        changes_applied: rb.changes_applied,
        rows_read: rb.rows_read,
        files: listing.files.len() as u64,
        matching: 0,
        missing: 0,
        extra: 0,
        different: 0,
        duplicate_events: rb.duplicate_events,
        source_checksum: String::new(),
        output_checksum: String::new(),
        problems: Vec::new(),
        notes,
        sample_keys: Vec::new(),
    };
    let mut samples = Samples::default();
    let mut problems = std::mem::take(&mut rb.problems);
    let (mut src_sum, mut out_sum) = (0u128, 0u128);
    if canon.keyed() {
        let mut src: HashMap<String, u128> = HashMap::with_capacity(source.rows.len());
        let mut buf = String::new();
        for (i, row) in source.rows.iter().enumerate() {
            let h = canon.row_hash(row, &mut buf);
            src_sum = src_sum.wrapping_add(h);
            if src.insert(canon.key_text(row), h).is_some() {
                problems.add(|| format!("source row {} repeats the key of an earlier row", i + 1));
            }
        }
        for (key, h) in &src {
            match rb.keyed.get(key) {
                None => {
                    report.missing += 1;
                    samples.add(key);
                }
                Some(o) if o == h => report.matching += 1,
                Some(_) => {
                    report.different += 1;
                    samples.add(key);
                }
            }
        }
        for (key, h) in &rb.keyed {
            out_sum = out_sum.wrapping_add(*h);
            if !src.contains_key(key) {
                report.extra += 1;
                samples.add(key);
            }
        }
        report.output_rows = rb.keyed.len() as u64;
    } else {
        let mut src: HashMap<u128, u64> = HashMap::with_capacity(source.rows.len());
        let mut buf = String::new();
        for row in &source.rows {
            let h = canon.row_hash(row, &mut buf);
            src_sum = src_sum.wrapping_add(h);
            *src.entry(h).or_default() += 1;
        }
        for (h, &n) in &src {
            let o = rb.multiset.get(h).copied().unwrap_or(0);
            report.matching += n.min(o);
            if n > o {
                report.missing += n - o;
                samples.add(&row_label(*h));
            }
        }
        for (h, &o) in &rb.multiset {
            out_sum = out_sum.wrapping_add(h.wrapping_mul(o as u128));
            report.output_rows += o;
            let n = src.get(h).copied().unwrap_or(0);
            if o > n {
                report.extra += o - n;
                samples.add(&row_label(*h));
            }
        }
    }
    report.source_checksum = fold(src_sum);
    report.output_checksum = fold(out_sum);
    report.problems = problems.finish();
    report.sample_keys = samples.keys;
    Ok(report)
}

/// `schema.table`, or `table` when the schema is empty.
fn qualified_name(schema: &str, table: &str) -> String {
    if schema.is_empty() {
        table.to_string()
    } else {
        format!("{schema}.{table}")
    }
}

/// The table's folder name as the worker makes it (stream-worker `layout::safe_component`).
pub fn table_folder(schema: &str, table: &str) -> String {
    const MAX_NAME_BYTES: usize = 255;
    let mut s: String = qualified_name(schema, table)
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | '\0') {
                '_'
            } else {
                c
            }
        })
        .collect();
    if s.starts_with('.') || s.starts_with('_') || s.is_empty() {
        s.insert(0, 't');
    }
    if s.len() <= MAX_NAME_BYTES {
        return s;
    }
    let h = fnv64(s.as_bytes());
    let mut cut = MAX_NAME_BYTES - 17;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{h:016x}", &s[..cut])
}

// ---------------------------------------------------------------------------------------
// Files

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Parquet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Plain,
    Gzip,
    Zstd,
}

const EXTENSIONS: [(&str, Format, Stream); 7] = [
    ("jsonl", Format::Json, Stream::Plain),
    ("jsonl.gz", Format::Json, Stream::Gzip),
    ("jsonl.zst", Format::Json, Stream::Zstd),
    ("csv", Format::Csv, Stream::Plain),
    ("csv.gz", Format::Csv, Stream::Gzip),
    ("csv.zst", Format::Csv, Stream::Zstd),
    ("parquet", Format::Parquet, Stream::Plain),
];

/// One committed data file.
#[derive(Debug, Clone)]
struct DataFile {
    path: PathBuf,
    /// `dt=…/<file name>`, for problems.
    name: String,
    topic: String,
    partition: i32,
    first: i64,
    last: i64,
    format: Format,
    stream: Stream,
}

struct Listing {
    dir_exists: bool,
    /// Sorted by (topic, partition, first offset).
    files: Vec<DataFile>,
    ignored: u64,
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `<topic>+<partition>+<first>+<last>.<ext>` → (topic, partition, first, last, format,
/// stream). The topic may contain dots; the extension is matched from the end.
fn parse_name(name: &str) -> Option<(String, i32, i64, i64, Format, Stream)> {
    let (stem, format, stream) = EXTENSIONS.iter().find_map(|(ext, f, s)| {
        let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
        Some((stem, *f, *s))
    })?;
    let mut it = stem.rsplitn(4, '+');
    let last = digits(it.next()?)?;
    let first = digits(it.next()?)?;
    let partition = digits(it.next()?)?;
    let topic = it.next()?;
    if topic.is_empty() || first > last {
        return None;
    }
    Some((topic.to_string(), partition, first, last, format, stream))
}

fn list_files(dir: &Path) -> anyhow::Result<Listing> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Listing {
                dir_exists: false,
                files: Vec::new(),
                ignored: 0,
            })
        }
        Err(e) => return Err(e).with_context(|| format!("{}: cannot list", dir.display())),
    };
    let mut files = Vec::new();
    let mut ignored = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot list", dir.display()))?;
        let day = entry.file_name().to_string_lossy().into_owned();
        let day_path = entry.path();
        if !day.starts_with("dt=") || !day_path.is_dir() {
            ignored += 1;
            continue;
        }
        let inner = std::fs::read_dir(&day_path)
            .with_context(|| format!("{}: cannot list", day_path.display()))?;
        for entry in inner {
            let entry = entry.with_context(|| format!("{}: cannot list", day_path.display()))?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            match parse_name(&file_name).filter(|_| path.is_file()) {
                Some((topic, partition, first, last, format, stream)) => files.push(DataFile {
                    name: format!("{day}/{file_name}"),
                    path,
                    topic,
                    partition,
                    first,
                    last,
                    format,
                    stream,
                }),
                None => ignored += 1,
            }
        }
    }
    files.sort_by(|a, b| {
        (&a.topic, a.partition, a.first, a.last, &a.name).cmp(&(
            &b.topic,
            b.partition,
            b.first,
            b.last,
            &b.name,
        ))
    });
    Ok(Listing {
        dir_exists: true,
        files,
        ignored,
    })
}

fn open_stream(f: &DataFile) -> anyhow::Result<Box<dyn Read>> {
    let file = File::open(&f.path).with_context(|| format!("{}: cannot open", f.path.display()))?;
    Ok(match f.stream {
        Stream::Plain => Box::new(file),
        Stream::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
        Stream::Zstd => Box::new(
            zstd::stream::read::Decoder::new(file)
                .with_context(|| format!("{}: cannot start zstd decoder", f.path.display()))?,
        ),
    })
}

// ---------------------------------------------------------------------------------------
// Values

/// The column's type as written in problems: `int32`, `decimal(10,2)`.
fn type_label(col: &Column) -> String {
    match col.ty {
        ColumnType::Decimal => format!(
            "decimal({},{})",
            col.precision.unwrap_or(MAX_DECIMAL_PRECISION),
            col.scale.unwrap_or(0)
        ),
        t => t.as_str().to_string(),
    }
}

fn cannot_read(col: &Column, what: &str) -> String {
    format!(
        "column {:?}: cannot read {what} as {}",
        col.name,
        type_label(col)
    )
}

/// `24:00:00[.000…]`, which `Value::from_str_for` does not take but the worker writes.
fn end_of_day(col: &Column, s: &str) -> Option<Value> {
    if col.ty != ColumnType::Time {
        return None;
    }
    let rest = s.strip_prefix("24:00:00")?;
    let ok = rest.is_empty()
        || rest
            .strip_prefix('.')
            .is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b == b'0'));
    ok.then_some(Value::Time(DAY_MICROS))
}

fn from_text(col: &Column, s: &str) -> Result<Value, String> {
    Value::from_str_for(col, s).or_else(|e| end_of_day(col, s).ok_or_else(|| e.to_string()))
}

/// A JSON-lines value: exactly `Value::from_json`.
fn json_value(col: &Column, j: &serde_json::Value) -> Result<Value, String> {
    match j {
        serde_json::Value::String(s) => from_text(col, s),
        _ => Value::from_json(col, j).map_err(|e| e.to_string()),
    }
}

/// A CSV field: the JSON-lines text without quoting; empty is null.
fn csv_value(col: &Column, s: &str) -> Result<Value, String> {
    if s.is_empty() {
        return Ok(Value::Null);
    }
    match col.ty {
        ColumnType::Boolean => match s {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(cannot_read(col, "text")),
        },
        ColumnType::Int8 | ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 => {
            let i: i64 = s.parse().map_err(|_| cannot_read(col, "text"))?;
            Value::from_i64_for(col, i).map_err(|e| e.to_string())
        }
        ColumnType::Float32 | ColumnType::Float64 => match s {
            "NaN" => Ok(Value::Float(f64::NAN)),
            "Infinity" => Ok(Value::Float(f64::INFINITY)),
            "-Infinity" => Ok(Value::Float(f64::NEG_INFINITY)),
            _ => s
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Value::Float)
                .ok_or_else(|| cannot_read(col, "text")),
        },
        _ => from_text(col, s),
    }
}

fn str_at(a: &dyn Array, i: usize) -> Option<&str> {
    if a.is_null(i) {
        return None;
    }
    match a.data_type() {
        DataType::Utf8 => Some(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Some(a.as_string::<i64>().value(i)),
        DataType::Utf8View => Some(a.as_string_view().value(i)),
        _ => None,
    }
}

fn unit_to_micros(v: i64, unit: TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Second => v.checked_mul(1_000_000),
        TimeUnit::Millisecond => v.checked_mul(1_000),
        TimeUnit::Microsecond => Some(v),
        TimeUnit::Nanosecond => Some(v.div_euclid(1_000)),
    }
}

/// A Parquet (arrow) value read as `col`'s type. The worker's types (docs/OUTPUT.md) map
/// directly; other integer, float and text types go through the JSON-lines rules.
fn arrow_value(col: &Column, a: &dyn Array, i: usize) -> Result<Value, String> {
    if a.is_null(i) {
        return Ok(Value::Null);
    }
    let dt = a.data_type();
    let int = |v: i64| Value::from_i64_for(col, v).map_err(|e| e.to_string());
    let float = |f: f64| match col.ty {
        ColumnType::Float32 | ColumnType::Float64 => Ok(Value::Float(f)),
        _ => Value::from_f64_for(col, f).map_err(|e| e.to_string()),
    };
    let temporal = |want: &[ColumnType], v: Option<Value>| match v {
        Some(v) if want.contains(&col.ty) => Ok(v),
        _ => Err(cannot_read(col, &format!("Parquet type {dt}"))),
    };
    match dt {
        DataType::Boolean => {
            Value::from_bool_for(col, a.as_boolean().value(i)).map_err(|e| e.to_string())
        }
        DataType::Int8 => int(a.as_primitive::<Int8Type>().value(i) as i64),
        DataType::Int16 => int(a.as_primitive::<Int16Type>().value(i) as i64),
        DataType::Int32 => int(a.as_primitive::<Int32Type>().value(i) as i64),
        DataType::Int64 => int(a.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => int(a.as_primitive::<UInt8Type>().value(i) as i64),
        DataType::UInt16 => int(a.as_primitive::<UInt16Type>().value(i) as i64),
        DataType::UInt32 => int(a.as_primitive::<UInt32Type>().value(i) as i64),
        DataType::UInt64 => Value::from_u64_for(col, a.as_primitive::<UInt64Type>().value(i))
            .map_err(|e| e.to_string()),
        DataType::Float32 => float(a.as_primitive::<Float32Type>().value(i) as f64),
        DataType::Float64 => float(a.as_primitive::<Float64Type>().value(i)),
        DataType::Decimal128(_, s) => {
            let v = a.as_primitive::<Decimal128Type>().value(i);
            if col.ty == ColumnType::Decimal && col.scale.unwrap_or(0) == *s {
                Ok(Value::Decimal(v))
            } else {
                from_text(col, &format_decimal(v, *s))
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => match str_at(a, i) {
            Some(s) => from_text(col, s),
            None => Ok(Value::Null),
        },
        DataType::Binary => temporal(
            &[ColumnType::Binary],
            Some(Value::Binary(a.as_binary::<i32>().value(i).to_vec())),
        ),
        DataType::LargeBinary => temporal(
            &[ColumnType::Binary],
            Some(Value::Binary(a.as_binary::<i64>().value(i).to_vec())),
        ),
        DataType::BinaryView => temporal(
            &[ColumnType::Binary],
            Some(Value::Binary(a.as_binary_view().value(i).to_vec())),
        ),
        DataType::Date32 => temporal(
            &[ColumnType::Date],
            Some(Value::Date(a.as_primitive::<Date32Type>().value(i))),
        ),
        DataType::Date64 => temporal(
            &[ColumnType::Date],
            i32::try_from(
                a.as_primitive::<Date64Type>()
                    .value(i)
                    .div_euclid(86_400_000),
            )
            .ok()
            .map(Value::Date),
        ),
        DataType::Time32(unit) => {
            let v = match unit {
                TimeUnit::Second => Some(a.as_primitive::<Time32SecondType>().value(i) as i64),
                TimeUnit::Millisecond => {
                    Some(a.as_primitive::<Time32MillisecondType>().value(i) as i64)
                }
                _ => None,
            };
            let us = v.and_then(|v| unit_to_micros(v, *unit));
            temporal(&[ColumnType::Time], us.map(Value::Time))
        }
        DataType::Time64(unit) => {
            let v = match unit {
                TimeUnit::Microsecond => Some(a.as_primitive::<Time64MicrosecondType>().value(i)),
                TimeUnit::Nanosecond => Some(a.as_primitive::<Time64NanosecondType>().value(i)),
                _ => None,
            };
            let us = v.and_then(|v| unit_to_micros(v, *unit));
            temporal(&[ColumnType::Time], us.map(Value::Time))
        }
        DataType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(i),
                TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().value(i),
                TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(i),
                TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().value(i),
            };
            temporal(
                &[ColumnType::Timestamp, ColumnType::Timestamptz],
                unit_to_micros(v, *unit).map(Value::Timestamp),
            )
        }
        _ => Err(cannot_read(col, &format!("Parquet type {dt}"))),
    }
}

// ---------------------------------------------------------------------------------------
// Canonical form, hashes

fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn fnv128(bytes: &[u8]) -> u128 {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in bytes {
        h ^= *b as u128;
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    h
}

/// A 128-bit sum folded to 64 bits, as 16 hex digits.
fn fold(sum: u128) -> String {
    format!("{:016x}", (sum as u64) ^ ((sum >> 64) as u64))
}

fn row_label(h: u128) -> String {
    format!("(no key) row hash {:016x}", (h >> 64) as u64)
}

/// Canonical text of rows and keys of one table.
struct Canon<'a> {
    cols: &'a [Column],
    key_idx: Vec<usize>,
    csv_mode: bool,
}

impl<'a> Canon<'a> {
    fn new(cols: &'a [Column], csv_mode: bool) -> Self {
        Canon {
            cols,
            key_idx: (0..cols.len()).filter(|&i| cols[i].key).collect(),
            csv_mode,
        }
    }

    fn keyed(&self) -> bool {
        !self.key_idx.is_empty()
    }

    fn push_value(&self, out: &mut String, col: &Column, v: &Value) {
        let normalised;
        let v = match (col.ty, v) {
            (ColumnType::Float32, Value::Float(f)) => {
                normalised = Value::Float(*f as f32 as f64);
                &normalised
            }
            (ColumnType::String | ColumnType::Json, Value::String(s))
                if self.csv_mode && s.is_empty() =>
            {
                normalised = Value::Null;
                &normalised
            }
            _ => v,
        };
        let _ = write!(out, "{}", v.to_json(col));
    }

    /// `[v1,v2,…]` with every value's canonical JSON.
    fn row_text(&self, values: &[Value], out: &mut String) {
        out.clear();
        out.push('[');
        for (i, (col, v)) in self.cols.iter().zip(values).enumerate() {
            if i > 0 {
                out.push(',');
            }
            self.push_value(out, col, v);
        }
        out.push(']');
    }

    fn row_hash(&self, values: &[Value], buf: &mut String) -> u128 {
        self.row_text(values, buf);
        fnv128(buf.as_bytes())
    }

    /// `name=value,…` over the key columns (values as canonical JSON).
    fn key_text(&self, values: &[Value]) -> String {
        let mut out = String::new();
        for (n, &i) in self.key_idx.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(&self.cols[i].name);
            out.push('=');
            self.push_value(&mut out, &self.cols[i], &values[i]);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Rebuilding the state

#[derive(Default)]
struct Problems {
    list: Vec<String>,
    more: u64,
}

impl Problems {
    fn add(&mut self, f: impl FnOnce() -> String) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(f());
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.list
                .push(format!("… and {} more problems not listed", self.more));
        }
        self.list
    }
}

/// The smallest [`MAX_SAMPLE_KEYS`] keys seen, sorted.
#[derive(Default)]
struct Samples {
    keys: Vec<String>,
}

impl Samples {
    fn add(&mut self, key: &str) {
        if self.keys.len() >= MAX_SAMPLE_KEYS {
            match self.keys.last() {
                Some(last) if key < last.as_str() => {
                    self.keys.pop();
                }
                _ => return,
            }
        }
        let at = self.keys.partition_point(|k| k.as_str() < key);
        self.keys.insert(at, key.to_string());
    }
}

struct Rebuild<'a> {
    canon: &'a Canon<'a>,
    /// Keyed tables: key text → row hash.
    keyed: HashMap<String, u128>,
    /// Keyless tables: row hash → count.
    multiset: HashMap<u128, u64>,
    event_ids: HashSet<u128>,
    rows_read: u64,
    changes_applied: u64,
    duplicate_events: u64,
    problems: Problems,
    buf: String,
}

/// One row read from a file, values in source column order.
struct FileRow<'r> {
    file: &'r str,
    /// 1-based data row number in the file.
    n: u64,
    event_id: Option<&'r str>,
    op: Option<&'r str>,
    values: &'r [Value],
    /// A value could not be read (the problem is already recorded): do not apply.
    unreadable: bool,
}

impl<'a> Rebuild<'a> {
    fn new(canon: &'a Canon<'a>) -> Self {
        Rebuild {
            canon,
            keyed: HashMap::new(),
            multiset: HashMap::new(),
            event_ids: HashSet::new(),
            rows_read: 0,
            changes_applied: 0,
            duplicate_events: 0,
            problems: Problems::default(),
            buf: String::new(),
        }
    }

    fn apply(&mut self, r: FileRow<'_>) {
        self.rows_read += 1;
        if let Some(id) = r.event_id.filter(|id| !id.is_empty()) {
            if !self.event_ids.insert(fnv128(id.as_bytes())) {
                self.duplicate_events += 1;
                return;
            }
        }
        if r.unreadable {
            return;
        }
        let delete = match r.op {
            Some("c" | "u" | "r") => false,
            Some("d") => true,
            Some(_) => {
                self.problems
                    .add(|| format!("unknown _op (file {} row {}); row not applied", r.file, r.n));
                return;
            }
            None => {
                self.problems
                    .add(|| format!("no _op (file {} row {}); row not applied", r.file, r.n));
                return;
            }
        };
        let h = self.canon.row_hash(r.values, &mut self.buf);
        let applied = if self.canon.keyed() {
            let key = self.canon.key_text(r.values);
            if delete {
                self.keyed.remove(&key).is_some()
            } else {
                // An insert of a key that is there, or an update of one that is not,
                // means a change was captured twice (snapshot and stream overlapping)
                // or one went missing. Applied anyway, so the comparison still runs.
                let was = self.keyed.insert(key, h).is_some();
                match r.op {
                    Some("c") if was => self.problems.add(|| {
                        format!(
                            "insert of a key that is already there (file {} row {}): a change captured twice?",
                            r.file, r.n
                        )
                    }),
                    Some("u") if !was => self.problems.add(|| {
                        format!(
                            "update of a key that is not there (file {} row {}): an insert missing?",
                            r.file, r.n
                        )
                    }),
                    _ => {}
                }
                true
            }
        } else if delete {
            match self.multiset.get_mut(&h) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    true
                }
                Some(_) => {
                    self.multiset.remove(&h);
                    true
                }
                None => false,
            }
        } else {
            *self.multiset.entry(h).or_default() += 1;
            true
        };
        if applied {
            self.changes_applied += 1;
        } else {
            self.problems.add(|| {
                format!(
                    "delete of a row that is not there (file {} row {})",
                    r.file, r.n
                )
            });
        }
    }

    fn unreadable(&mut self, file: &str, n: u64, why: String) {
        self.problems
            .add(|| format!("file {file} row {n}: {why}; row not applied"));
    }
}

// ---------------------------------------------------------------------------------------
// Readers

fn read_jsonl(f: &DataFile, cols: &[Column], rb: &mut Rebuild) -> anyhow::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, open_stream(f)?);
    let mut line = Vec::new();
    let mut values = Vec::with_capacity(cols.len());
    let mut n = 0u64;
    loop {
        line.clear();
        let got = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("{}: cannot read after line {n}", f.path.display()))?;
        if got == 0 {
            return Ok(());
        }
        n += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&line)
            .map_err(|_| anyhow!("{}: line {n} is not a JSON object", f.path.display()))?;
        values.clear();
        let mut unreadable = false;
        for col in cols {
            let v = match obj.get(&col.name) {
                None => Value::Null,
                Some(j) => json_value(col, j).unwrap_or_else(|why| {
                    unreadable = true;
                    rb.unreadable(&f.name, n, why);
                    Value::Null
                }),
            };
            values.push(v);
        }
        rb.apply(FileRow {
            file: &f.name,
            n,
            event_id: obj.get("_event_id").and_then(serde_json::Value::as_str),
            op: obj.get("_op").and_then(serde_json::Value::as_str),
            values: &values,
            unreadable,
        });
    }
}

fn read_csv(f: &DataFile, cols: &[Column], rb: &mut Rebuild) -> anyhow::Result<()> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(open_stream(f)?);
    let header = reader
        .headers()
        .with_context(|| format!("{}: cannot read the CSV header", f.path.display()))?
        .clone();
    let find = |name: &str| header.iter().position(|h| h == name);
    let (id_at, op_at) = (find("_event_id"), find("_op"));
    let at: Vec<Option<usize>> = cols.iter().map(|c| find(&c.name)).collect();
    let mut rec = ::csv::StringRecord::new();
    let mut values = Vec::with_capacity(cols.len());
    let mut n = 0u64;
    while reader
        .read_record(&mut rec)
        .with_context(|| format!("{}: not readable as CSV after row {n}", f.path.display()))?
    {
        n += 1;
        values.clear();
        let mut unreadable = false;
        for (col, i) in cols.iter().zip(&at) {
            let v = match i.and_then(|i| rec.get(i)) {
                None => Value::Null,
                Some(s) => csv_value(col, s).unwrap_or_else(|why| {
                    unreadable = true;
                    rb.unreadable(&f.name, n, why);
                    Value::Null
                }),
            };
            values.push(v);
        }
        rb.apply(FileRow {
            file: &f.name,
            n,
            event_id: id_at.and_then(|i| rec.get(i)),
            op: op_at.and_then(|i| rec.get(i)),
            values: &values,
            unreadable,
        });
    }
    Ok(())
}

fn read_parquet(f: &DataFile, cols: &[Column], rb: &mut Rebuild) -> anyhow::Result<()> {
    let file = File::open(&f.path).with_context(|| format!("{}: cannot open", f.path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a readable Parquet file", f.path.display()))?;
    let schema = builder.schema().clone();
    let find = |name: &str| schema.index_of(name).ok();
    let (id_at, op_at) = (find("_event_id"), find("_op"));
    let at: Vec<Option<usize>> = cols.iter().map(|c| find(&c.name)).collect();
    let reader = builder
        .with_batch_size(8192)
        .build()
        .with_context(|| format!("{}: not a readable Parquet file", f.path.display()))?;
    let mut values = Vec::with_capacity(cols.len());
    let mut n = 0u64;
    for batch in reader {
        let batch =
            batch.with_context(|| format!("{}: cannot read after row {n}", f.path.display()))?;
        let ids = id_at.map(|i| batch.column(i));
        let ops = op_at.map(|i| batch.column(i));
        let arrays: Vec<_> = at.iter().map(|i| i.map(|i| batch.column(i))).collect();
        for row in 0..batch.num_rows() {
            n += 1;
            values.clear();
            let mut unreadable = false;
            for (col, a) in cols.iter().zip(&arrays) {
                let v = match a {
                    None => Value::Null,
                    Some(a) => arrow_value(col, a.as_ref(), row).unwrap_or_else(|why| {
                        unreadable = true;
                        rb.unreadable(&f.name, n, why);
                        Value::Null
                    }),
                };
                values.push(v);
            }
            rb.apply(FileRow {
                file: &f.name,
                n,
                event_id: ids.and_then(|a| str_at(a.as_ref(), row)),
                op: ops.and_then(|a| str_at(a.as_ref(), row)),
                values: &values,
                unreadable,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
        Float64Array, Int32Array, Int64Array, StringArray, Time64MicrosecondArray,
        TimestampMicrosecondArray,
    };
    use arrow::datatypes::{Field, Schema};
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::ArrowWriter;
    use serde_json::json;
    use std::io::Write;
    use std::sync::Arc;

    const TOPIC: &str = "cdc-events";

    fn key(name: &str, ty: ColumnType) -> Column {
        Column {
            key: true,
            ..Column::new(name, ty)
        }
    }

    fn orders() -> Vec<Column> {
        vec![
            key("id", ColumnType::Int64),
            Column::new("name", ColumnType::String),
            Column::decimal("amount", 10, 2),
        ]
    }

    fn src(columns: Vec<Column>, rows: Vec<Vec<Value>>) -> SourceTable {
        SourceTable {
            schema: "public".into(),
            table: "orders".into(),
            columns,
            rows,
        }
    }

    fn order(id: i64, name: &str, cents: i128) -> Vec<Value> {
        vec![
            Value::Int(id),
            Value::String(name.into()),
            Value::Decimal(cents),
        ]
    }

    fn file_name(partition: i32, first: i64, last: i64, ext: &str) -> String {
        format!("{TOPIC}+{partition}+{first:019}+{last:019}.{ext}")
    }

    /// Writes `bytes` as `<root>/public.orders/<dt>/<name>`.
    fn put(root: &Path, dt: &str, name: &str, bytes: &[u8]) -> PathBuf {
        let dir = root.join("public.orders").join(dt);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// One JSON line: metadata first, then the columns.
    fn line(id: &str, op: &str, cols: serde_json::Value) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("_event_id".into(), json!(id));
        m.insert("_op".into(), json!(op));
        m.insert("_source_position".into(), json!("1:0:0"));
        m.insert("_source_ts".into(), json!("2026-11-24T08:00:00.123Z"));
        m.insert("_processed_at".into(), json!("2026-11-24T08:00:01.000Z"));
        if let serde_json::Value::Object(c) = cols {
            m.extend(c);
        }
        serde_json::Value::Object(m)
    }

    fn jsonl(lines: &[serde_json::Value]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in lines {
            out.extend_from_slice(l.to_string().as_bytes());
            out.push(b'\n');
        }
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// CSV with the metadata header, CRLF ends, quoting as the csv crate does.
    fn csv_bytes(columns: &[&str], rows: &[Vec<&str>]) -> Vec<u8> {
        let mut w = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .from_writer(Vec::new());
        let mut header = vec![
            "_event_id",
            "_op",
            "_source_position",
            "_source_ts",
            "_processed_at",
        ];
        header.extend(columns);
        w.write_record(&header).unwrap();
        for r in rows {
            w.write_record(r).unwrap();
        }
        w.into_inner().unwrap()
    }

    /// A Parquet file with the metadata columns (non-null) and the given data columns.
    fn parquet_bytes(ids: &[&str], ops: &[&str], data: Vec<(Field, ArrayRef)>) -> Vec<u8> {
        let n = ids.len();
        let instant = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let mut fields = vec![
            Field::new("_event_id", DataType::Utf8, false),
            Field::new("_op", DataType::Utf8, false),
            Field::new("_source_position", DataType::Utf8, false),
            Field::new("_source_ts", instant.clone(), false),
            Field::new("_processed_at", instant, false),
        ];
        let ts = || {
            Arc::new(TimestampMicrosecondArray::from(vec![0i64; n]).with_timezone("UTC"))
                as ArrayRef
        };
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(ids.to_vec())),
            Arc::new(StringArray::from(ops.to_vec())),
            Arc::new(StringArray::from(vec!["1:0:0"; n])),
            ts(),
            ts(),
        ];
        for (f, a) in data {
            fields.push(f);
            arrays.push(a);
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        out
    }

    fn o(id: i64, name: &str, amount: &str) -> serde_json::Value {
        json!({"id": id, "name": name, "amount": amount})
    }

    /// Inserts, updates and deletes over two partitions, two files in partition 0 (one
    /// gzip), one in partition 1.
    fn standard_output(root: &Path) {
        put(
            root,
            "dt=2026-11-24",
            &file_name(0, 0, 2, "jsonl"),
            &jsonl(&[
                line("e1", "c", o(1, "a", "1.00")),
                line("e2", "c", o(2, "b", "2.00")),
                line("e3", "u", o(1, "a2", "1.50")),
            ]),
        );
        put(
            root,
            "dt=2026-11-24",
            &file_name(0, 3, 4, "jsonl.gz"),
            &gzip(&jsonl(&[
                line("e4", "d", o(2, "b", "2.00")),
                line("e5", "u", o(1, "a3", "1.75")),
            ])),
        );
        put(
            root,
            "dt=2026-11-24",
            &file_name(1, 0, 1, "jsonl"),
            &jsonl(&[
                line("e6", "r", o(3, "c", "3.00")),
                line("e7", "c", o(4, "d", "-4.10")),
            ]),
        );
    }

    fn standard_source() -> SourceTable {
        src(
            orders(),
            vec![order(1, "a3", 175), order(3, "c", 300), order(4, "d", -410)],
        )
    }

    #[test]
    fn an_insert_of_a_present_key_or_an_update_of_a_missing_one_is_a_problem() {
        // Same final state as the source, but reached through a doubled insert (a
        // snapshot row streamed again) and an update of a key never inserted (a gap).
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(0, 0, 3, "jsonl"),
            &jsonl(&[
                line("e1", "r", o(1, "a3", "1.75")),
                line("e2", "c", o(1, "a3", "1.75")),
                line("e3", "u", o(3, "c", "3.00")),
                line("e4", "c", o(4, "d", "-4.10")),
            ]),
        );
        let r = verify_table(dir.path(), &standard_source()).unwrap();
        assert!(!r.ok());
        assert_eq!((r.matching, r.missing, r.extra, r.different), (3, 0, 0, 0));
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(r.problems[0].contains("insert of a key that is already there"));
        assert!(r.problems[1].contains("update of a key that is not there"));
        // An `r` of a present key (a table re-read after a crash in the snapshot) is not.
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(0, 0, 3, "jsonl"),
            &jsonl(&[
                line("e1", "r", o(1, "a3", "1.75")),
                line("e2", "r", o(1, "a3", "1.75")),
                line("e3", "r", o(3, "c", "3.00")),
                line("e4", "c", o(4, "d", "-4.10")),
            ]),
        );
        assert!(verify_table(dir.path(), &standard_source()).unwrap().ok());
    }

    #[test]
    fn inserts_updates_deletes_over_files_and_partitions_match() {
        let dir = tempfile::tempdir().unwrap();
        standard_output(dir.path());
        let r = verify_table(dir.path(), &standard_source()).unwrap();
        assert!(r.ok(), "{r:#?}");
        assert_eq!(r.name, "public.orders");
        assert_eq!(
            (r.source_rows, r.output_rows, r.changes_applied, r.rows_read),
            (3, 3, 7, 7)
        );
        assert_eq!(
            (r.files, r.matching, r.missing, r.extra, r.different),
            (3, 3, 0, 0, 0)
        );
        assert_eq!(r.source_checksum, r.output_checksum);
        assert_eq!(r.source_checksum.len(), 16);
        assert!(r.sample_keys.is_empty());
        let text = Report { tables: vec![r] }.render(false);
        assert!(text.contains("MATCH"), "{text}");
        assert!(text.ends_with("verify: OK\n"), "{text}");
    }

    #[test]
    fn missing_extra_changed_rows_give_the_right_counts() {
        let dir = tempfile::tempdir().unwrap();
        standard_output(dir.path());
        // Source: row 3 changed, row 4 gone (extra in output), row 5 new (missing).
        let source = src(
            orders(),
            vec![order(1, "a3", 175), order(3, "c", 301), order(5, "e", 500)],
        );
        let r = verify_table(dir.path(), &source).unwrap();
        assert!(!r.ok());
        assert_eq!(
            (
                r.matching,
                r.missing,
                r.extra,
                r.different,
                r.duplicate_events
            ),
            (1, 1, 1, 1, 0)
        );
        assert_ne!(r.source_checksum, r.output_checksum);
        assert_eq!(r.sample_keys, vec!["id=3", "id=4", "id=5"]);
        let report = Report { tables: vec![r] };
        let hidden = report.render(false);
        assert!(hidden.contains("MISMATCH"));
        assert!(!hidden.contains("id=3"), "{hidden}");
        assert!(
            hidden.ends_with("verify: MISMATCH in 1 table(s)\n"),
            "{hidden}"
        );
        assert!(report.render(true).contains("id=3 | id=4 | id=5"));
        assert!(!report.ok());
    }

    #[test]
    fn a_duplicated_event_id_is_counted_and_not_applied_twice() {
        let dir = tempfile::tempdir().unwrap();
        standard_output(dir.path());
        // The insert of row 4 again in a later file of partition 1.
        put(
            dir.path(),
            "dt=2026-11-25",
            &file_name(1, 2, 2, "jsonl"),
            &jsonl(&[line("e7", "c", o(4, "d", "-4.10"))]),
        );
        let r = verify_table(dir.path(), &standard_source()).unwrap();
        assert_eq!(r.duplicate_events, 1);
        assert_eq!((r.matching, r.missing, r.extra, r.different), (3, 0, 0, 0));
        assert_eq!((r.rows_read, r.changes_applied, r.files), (8, 7, 4));
        assert!(!r.ok());
    }

    #[test]
    fn files_apply_by_offset_across_day_folders_and_tmp_and_strays_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // The later day folder holds the lower offsets (commit times need not follow
        // offsets); the update at offset 9 must win.
        put(
            root,
            "dt=2026-11-25",
            &file_name(0, 5, 5, "jsonl"),
            &jsonl(&[line("e1", "c", o(1, "old", "1.00"))]),
        );
        put(
            root,
            "dt=2026-11-24",
            &file_name(0, 9, 9, "jsonl"),
            &jsonl(&[line("e2", "u", o(1, "new", "2.00"))]),
        );
        // Not committed or not data: all ignored.
        let tmp = root.join("_tmp").join(format!("{TOPIC}+0"));
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("1-1-10.jsonl.inprogress"), "garbage").unwrap();
        let tmp_in_table = root.join("public.orders/_tmp");
        std::fs::create_dir_all(&tmp_in_table).unwrap();
        std::fs::write(tmp_in_table.join(file_name(0, 10, 10, "jsonl")), "garbage").unwrap();
        put(root, "dt=2026-11-24", "notes.txt", b"x");
        put(
            root,
            "dt=2026-11-24",
            &file_name(0, 11, 11, "parquet.tmp"),
            b"x",
        );
        std::fs::write(
            root.join("public.orders")
                .join(file_name(0, 12, 12, "jsonl")),
            "x",
        )
        .unwrap();
        let r = verify_table(root, &src(orders(), vec![order(1, "new", 200)])).unwrap();
        assert!(r.ok(), "{r:#?}");
        assert_eq!(r.files, 2);
        assert!(
            r.notes.iter().any(|n| n.starts_with("4 entries")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn keyless_tables_compare_as_multisets() {
        let cols = vec![
            Column::new("k", ColumnType::String),
            Column::new("n", ColumnType::Int32),
        ];
        let row = |k: &str, n: i64| vec![Value::String(k.into()), Value::Int(n)];
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(0, 0, 5, "jsonl"),
            &jsonl(&[
                line("e1", "c", json!({"k": "x", "n": 1})),
                line("e2", "c", json!({"k": "x", "n": 1})),
                line("e3", "c", json!({"k": "x", "n": 1})),
                line("e4", "c", json!({"k": "y", "n": 2})),
                // An update of a keyless table is d + c.
                line("e5", "d", json!({"k": "x", "n": 1})),
                line("e6", "c", json!({"k": "x", "n": 3})),
            ]),
        );
        let good = src(
            cols.clone(),
            vec![row("x", 1), row("y", 2), row("x", 1), row("x", 3)],
        );
        let r = verify_table(dir.path(), &good).unwrap();
        assert!(r.ok(), "{r:#?}");
        assert_eq!((r.output_rows, r.matching), (4, 4));

        // One duplicate fewer in the source, another row more.
        let bad = src(
            cols,
            vec![row("x", 1), row("y", 2), row("x", 3), row("z", 9)],
        );
        let r = verify_table(dir.path(), &bad).unwrap();
        assert!(!r.ok());
        assert_eq!((r.matching, r.missing, r.extra, r.different), (3, 1, 1, 0));
        assert_eq!(r.sample_keys.len(), 2);
        assert!(r.sample_keys[0].starts_with("(no key) row hash "));
    }

    #[test]
    fn a_primary_key_change_is_a_delete_and_an_insert() {
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(0, 0, 1, "jsonl"),
            &jsonl(&[
                line("e1", "c", o(1, "a", "1.00")),
                line("e2", "d", o(1, "a", "1.00")),
            ]),
        );
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(1, 0, 0, "jsonl"),
            &jsonl(&[line("e3", "c", o(7, "a", "1.00"))]),
        );
        let r = verify_table(dir.path(), &src(orders(), vec![order(7, "a", 100)])).unwrap();
        assert!(r.ok(), "{r:#?}");
        assert_eq!(r.changes_applied, 3);
    }

    #[test]
    fn deletes_of_absent_rows_unknown_ops_and_overlaps_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(0, 0, 2, "jsonl"),
            &jsonl(&[
                line("e1", "d", o(1, "secret-name", "1.00")),
                line("e2", "x", o(2, "secret-name", "1.00")),
                line("e3", "c", o(3, "c", "3.00")),
            ]),
        );
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(0, 2, 2, "jsonl"),
            &jsonl(&[line("e4", "r", o(3, "c", "3.00"))]),
        );
        let r = verify_table(dir.path(), &src(orders(), vec![order(3, "c", 300)])).unwrap();
        assert!(!r.ok());
        assert_eq!((r.matching, r.missing, r.extra), (1, 0, 0));
        let all = r.problems.join("\n");
        assert!(all.contains("overlap in offsets"), "{all}");
        assert!(
            all.contains(&format!(
                "delete of a row that is not there (file dt=2026-11-24/{} row 1)",
                file_name(0, 0, 2, "jsonl")
            )),
            "{all}"
        );
        assert!(all.contains("unknown _op"), "{all}");
        assert!(all.contains("row 2"), "{all}");
        assert!(!all.contains("secret"), "{all}");
    }

    #[test]
    fn unreadable_values_are_problems_naming_file_row_and_column_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(0, 0, 1, "jsonl"),
            &jsonl(&[
                line("e1", "c", o(1, "a", "1.00")),
                line(
                    "e2",
                    "u",
                    json!({"id": 1, "name": "a", "amount": "secret-12x"}),
                ),
            ]),
        );
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(1, 0, 0, "csv"),
            &csv_bytes(
                &["id", "name", "amount"],
                &[vec!["e3", "c", "", "", "", "2", "b", "secret-99y"]],
            ),
        );
        let source = src(orders(), vec![order(1, "a", 100), order(2, "b", 100)]);
        let r = verify_table(dir.path(), &source).unwrap();
        assert!(!r.ok());
        assert_eq!((r.matching, r.missing), (1, 1));
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        let all = r.problems.join("\n");
        assert!(all.contains(&file_name(0, 0, 1, "jsonl")), "{all}");
        assert!(all.contains("row 2"), "{all}");
        assert!(all.contains("\"amount\""), "{all}");
        assert!(all.contains(&file_name(1, 0, 0, "csv")), "{all}");
        assert!(!all.contains("secret"), "{all}");
    }

    #[test]
    fn problems_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<_> = (0..50)
            .map(|i| line(&format!("e{i}"), "d", o(i, "a", "1.00")))
            .collect();
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(0, 0, 49, "jsonl"),
            &jsonl(&lines),
        );
        let r = verify_table(dir.path(), &src(orders(), vec![])).unwrap();
        assert_eq!(r.problems.len(), MAX_PROBLEMS + 1);
        assert_eq!(
            r.problems.last().unwrap(),
            "… and 30 more problems not listed"
        );
    }

    /// Every type, with the source values the collector would read.
    fn typed_columns() -> Vec<Column> {
        vec![
            key("id", ColumnType::Int32),
            Column::new("flag", ColumnType::Boolean),
            Column::new("f4", ColumnType::Float32),
            Column::new("f8", ColumnType::Float64),
            Column::decimal("price", 12, 3),
            Column::decimal("huge", 50, 2),
            Column::new("s", ColumnType::String),
            Column::new("doc", ColumnType::Json),
            Column::new("bin", ColumnType::Binary),
            Column::new("day", ColumnType::Date),
            Column::new("at", ColumnType::Time),
            Column::new("ts", ColumnType::Timestamp),
            Column::new("tstz", ColumnType::Timestamptz),
        ]
    }

    const TS: i64 = 1_795_507_200_123_456; // 2026-11-24T08:00:00.123456

    fn typed_rows() -> Vec<Vec<Value>> {
        vec![
            vec![
                Value::Int(1),
                Value::Bool(true),
                Value::Float(0.1),
                Value::Float(f64::NAN),
                Value::Decimal(-1_234_500),
                Value::Decimal(12_345_678_901_234_567_890_123_456_789_012),
                Value::String("héllo, \"world\"\nline".into()),
                Value::String(r#"{"a": [1, 2]}"#.into()),
                Value::Binary(vec![0, 1, 2, 255]),
                Value::Date(20_781),
                Value::Time(DAY_MICROS),
                Value::Timestamp(TS),
                Value::Timestamp(TS),
            ],
            {
                let mut nulls = vec![Value::Null; 13];
                nulls[0] = Value::Int(2);
                nulls
            },
        ]
    }

    fn typed_json_line(id: &str) -> serde_json::Value {
        line(
            id,
            "r",
            json!({
                "id": 1, "flag": true, "f4": 0.10000000149011612, "f8": "NaN",
                "price": "-1234.500", "huge": "123456789012345678901234567890.12",
                "s": "héllo, \"world\"\nline", "doc": r#"{"a": [1, 2]}"#, "bin": "AAEC/w==",
                "day": "2026-11-24", "at": "24:00:00", "ts": "2026-11-24T08:00:00.123456",
                "tstz": "2026-11-24T08:00:00.123456Z",
            }),
        )
    }

    fn typed_null_line(id: &str) -> serde_json::Value {
        line(
            id,
            "r",
            json!({"id": 2, "flag": null, "f4": null, "f8": null, "price": null, "huge": null,
                   "s": null, "doc": null, "bin": null, "day": null, "at": null, "ts": null,
                   "tstz": null}),
        )
    }

    #[test]
    fn every_type_compares_equal_in_json_lines_zstd() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = jsonl(&[typed_json_line("e1"), typed_null_line("e2")]);
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(0, 0, 1, "jsonl.zst"),
            &zstd::encode_all(&bytes[..], 3).unwrap(),
        );
        let r = verify_table(dir.path(), &src(typed_columns(), typed_rows())).unwrap();
        assert!(r.ok(), "{r:#?}");
        assert!(r.notes.is_empty(), "{:?}", r.notes);
    }

    #[test]
    fn every_type_compares_equal_in_csv_gzip_with_empty_strings_as_null() {
        let dir = tempfile::tempdir().unwrap();
        let cols = typed_columns();
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        let meta = |id: &'static str| vec![id, "r", "1:0:0", "2026-11-24T08:00:00.123Z", ""];
        let mut full = meta("e1");
        full.extend([
            "1",
            "true",
            "0.10000000149011612",
            "NaN",
            "-1234.500",
            "123456789012345678901234567890.12",
            "héllo, \"world\"\nline",
            r#"{"a": [1, 2]}"#,
            "AAEC/w==",
            "2026-11-24",
            "24:00:00",
            "2026-11-24T08:00:00.123456",
            "2026-11-24T08:00:00.123456Z",
        ]);
        let mut empty = meta("e2");
        empty.extend(["2", "", "", "", "", "", "", "", "", "", "", "", ""]);
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(0, 0, 1, "csv.gz"),
            &gzip(&csv_bytes(&names, &[full, empty])),
        );
        // The source holds "" in the string and json columns of row 2: CSV wrote them
        // as empty fields, read back as null.
        let mut rows = typed_rows();
        rows[1][6] = Value::String(String::new());
        rows[1][7] = Value::String(String::new());
        let r = verify_table(dir.path(), &src(typed_columns(), rows)).unwrap();
        assert!(r.ok(), "{r:#?}");
        assert!(r.notes.iter().any(|n| n.contains("CSV")), "{:?}", r.notes);
    }

    fn typed_parquet(ids: &[&str]) -> Vec<u8> {
        let cols = typed_columns();
        let md = |c: &Column| HashMap::from([("rtdp.type".to_string(), c.ty.as_str().to_string())]);
        let field = |i: usize, ty: DataType| {
            Field::new(&cols[i].name, ty, true).with_metadata(md(&cols[i]))
        };
        let data: Vec<(Field, ArrayRef)> = vec![
            (
                field(0, DataType::Int32),
                Arc::new(Int32Array::from(vec![1, 2])),
            ),
            (
                field(1, DataType::Boolean),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
            ),
            (
                field(2, DataType::Float32),
                Arc::new(Float32Array::from(vec![Some(0.1f32), None])),
            ),
            (
                field(3, DataType::Float64),
                Arc::new(Float64Array::from(vec![Some(f64::NAN), None])),
            ),
            (
                field(4, DataType::Decimal128(12, 3)),
                Arc::new(
                    Decimal128Array::from(vec![Some(-1_234_500i128), None])
                        .with_precision_and_scale(12, 3)
                        .unwrap(),
                ),
            ),
            (
                field(5, DataType::Utf8),
                Arc::new(StringArray::from(vec![
                    Some("123456789012345678901234567890.12"),
                    None,
                ])),
            ),
            (
                field(6, DataType::Utf8),
                Arc::new(StringArray::from(vec![
                    Some("héllo, \"world\"\nline"),
                    None,
                ])),
            ),
            (
                field(7, DataType::Utf8),
                Arc::new(StringArray::from(vec![Some(r#"{"a": [1, 2]}"#), None])),
            ),
            (
                field(8, DataType::Binary),
                Arc::new(BinaryArray::from(vec![Some(&[0u8, 1, 2, 255][..]), None])),
            ),
            (
                field(9, DataType::Date32),
                Arc::new(Date32Array::from(vec![Some(20_781), None])),
            ),
            (
                field(10, DataType::Time64(TimeUnit::Microsecond)),
                Arc::new(Time64MicrosecondArray::from(vec![Some(DAY_MICROS), None])),
            ),
            (
                field(11, DataType::Timestamp(TimeUnit::Microsecond, None)),
                Arc::new(TimestampMicrosecondArray::from(vec![Some(TS), None])),
            ),
            (
                field(
                    12,
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                ),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(TS), None]).with_timezone("UTC"),
                ),
            ),
        ];
        parquet_bytes(ids, &["r", "r"], data)
    }

    #[test]
    fn every_type_compares_equal_in_parquet() {
        let dir = tempfile::tempdir().unwrap();
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(0, 0, 1, "parquet"),
            &typed_parquet(&["e1", "e2"]),
        );
        let r = verify_table(dir.path(), &src(typed_columns(), typed_rows())).unwrap();
        assert!(r.ok(), "{r:#?}");

        // A changed value in the source is seen.
        let mut rows = typed_rows();
        rows[0][8] = Value::Binary(vec![0, 1, 2, 254]);
        let r = verify_table(dir.path(), &src(typed_columns(), rows)).unwrap();
        assert_eq!((r.matching, r.different), (1, 1));
        assert_eq!(r.sample_keys, vec!["id=1"]);
    }

    #[test]
    fn parquet_with_other_columns_reads_missing_ones_as_null_and_ignores_extras() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<(Field, ArrayRef)> = vec![
            (
                Field::new("id", DataType::Int64, true),
                Arc::new(Int64Array::from(vec![1])),
            ),
            (
                Field::new("dropped_col", DataType::Utf8, true),
                Arc::new(StringArray::from(vec!["x"])),
            ),
            (
                Field::new("amount", DataType::Decimal128(10, 2), true),
                Arc::new(
                    Decimal128Array::from(vec![150i128])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
            ),
        ];
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(0, 0, 0, "parquet"),
            &parquet_bytes(&["e1"], &["c"], data),
        );
        let source = src(
            orders(),
            vec![vec![Value::Int(1), Value::Null, Value::Decimal(150)]],
        );
        let r = verify_table(dir.path(), &source).unwrap();
        assert!(r.ok(), "{r:#?}");
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = typed_parquet(&["e1", "e2"]);
        bytes.truncate(bytes.len() / 2);
        let path = put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(0, 0, 1, "parquet"),
            &bytes,
        );
        let e = verify_table(dir.path(), &src(typed_columns(), typed_rows())).unwrap_err();
        assert!(
            format!("{e:#}").contains(&path.display().to_string()),
            "{e:#}"
        );

        for (ext, bytes) in [
            ("jsonl", b"{\"_op\":\"c\"}\nnot json\n".to_vec()),
            ("jsonl.gz", gzip(b"{\"_op\":\"c\"}\n")[..10].to_vec()),
            ("csv", b"_event_id,_op,id\r\ne1,c\r\ne2,c,1,2\r\n".to_vec()),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = put(
                dir.path(),
                "dt=2026-11-24",
                &file_name(0, 0, 1, ext),
                &bytes,
            );
            let e = verify_table(dir.path(), &src(orders(), vec![])).unwrap_err();
            let msg = format!("{e:#}");
            assert!(msg.contains(&path.display().to_string()), "{ext}: {msg}");
        }
    }

    #[test]
    fn a_table_without_output_matches_only_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let r = verify_table(dir.path(), &src(orders(), vec![])).unwrap();
        assert!(r.ok(), "{r:#?}");
        assert!(r.notes[0].starts_with("no output folder"));
        let r = verify_table(dir.path(), &src(orders(), vec![order(1, "a", 1)])).unwrap();
        assert!(!r.ok());
        assert_eq!(r.missing, 1);
        let bad = src(orders(), vec![vec![Value::Int(1)]]);
        assert!(verify_table(dir.path(), &bad).is_err());
    }

    #[test]
    fn names_and_folders() {
        assert_eq!(
            parse_name("a.b+3+0000000000000000009+0000000000000000010.csv.zst"),
            Some(("a.b".into(), 3, 9, 10, Format::Csv, Stream::Zstd))
        );
        assert_eq!(
            parse_name("t+1+2+3.jsonl"),
            Some(("t".into(), 1, 2, 3, Format::Json, Stream::Plain))
        );
        assert_eq!(parse_name("t+1+2+3.jsonl.inprogress"), None);
        assert_eq!(parse_name("t+1+x+3.jsonl"), None);
        assert_eq!(parse_name("+1+2+3.jsonl"), None);
        assert_eq!(parse_name("1+2+3.jsonl"), None);
        assert_eq!(table_folder("public", "users"), "public.users");
        assert_eq!(table_folder("", "users"), "users");
        assert_eq!(table_folder("", "_x/y"), "t_x_y");
        let long = table_folder("public", &"t".repeat(300));
        assert_eq!(long.len(), 255);
        assert!(long.starts_with("public.ttt") && long.contains('~'));
    }

    #[test]
    fn checksums_do_not_depend_on_order() {
        let dir = tempfile::tempdir().unwrap();
        standard_output(dir.path());
        let mut s = standard_source();
        let a = verify_table(dir.path(), &s).unwrap();
        s.rows.reverse();
        let b = verify_table(dir.path(), &s).unwrap();
        assert_eq!(a.source_checksum, b.source_checksum);
        assert_eq!(a.output_checksum, b.output_checksum);
    }

    /// Not run by default: `cargo test -p cdc-collector --lib verify -- --ignored`.
    #[test]
    #[ignore]
    fn a_million_rows() {
        let dir = tempfile::tempdir().unwrap();
        let n = 1_000_000i64;
        let mut bytes = Vec::new();
        for i in 0..n {
            bytes.extend_from_slice(
                line(&format!("e{i}"), "c", o(i, "name", "12.34"))
                    .to_string()
                    .as_bytes(),
            );
            bytes.push(b'\n');
        }
        put(
            dir.path(),
            "dt=2026-11-24",
            &file_name(0, 0, n - 1, "jsonl"),
            &bytes,
        );
        let rows = (0..n).map(|i| order(i, "name", 1234)).collect();
        let started = std::time::Instant::now();
        let r = verify_table(dir.path(), &src(orders(), rows)).unwrap();
        eprintln!("1M rows verified in {:?}", started.elapsed());
        assert!(r.ok());
    }
}
