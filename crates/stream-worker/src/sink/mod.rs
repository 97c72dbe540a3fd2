//! File sinks: one open output file of one table, in JSON lines, CSV or Parquet.
//!
//! ## What this module owns
//! Encoding [`ProcessedEvent`]s into one file at a path the caller chose (the hidden
//! in-progress name of the commit protocol), the stream or Parquet compression, and the
//! final `fsync` of that file. Naming, renaming, directory `fsync`, rolling and offsets
//! belong to the caller.
//!
//! ```text
//!  ProcessedEvent ─▶ FileSink::write ─▶ json.rs    ─▶ OutStream (plain | gzip | zstd) ─▶ file
//!                                     ├▶ csv.rs     ─▶ OutStream                      ─▶ file
//!                                     └▶ parquet.rs ─▶ arrow builders ─▶ ArrowWriter   ─▶ file
//!  dead letters ─▶ LineSink::write_line ─▶ OutStream ─▶ file
//! ```
//!
//! ## What it promises
//! - [`open`] creates the file with `create_new` (never overwrites) and writes nothing
//!   outside that one path. If `open` fails after creating the file, it removes it.
//! - After [`FileSink::finish`] returns `Ok(size)`, the file is complete (Parquet footer,
//!   gzip trailer, zstd frame end written), flushed and `fsync`ed (`File::sync_all`),
//!   and `size` is its length. Only then may the caller rename it, `fsync` the directory
//!   and report the rows' positions as done. A sink dropped without `finish` (abort)
//!   leaves an incomplete file that the caller deletes.
//! - Every row is the five [`META_COLUMNS`] then the table's columns in schema order,
//!   in every format.
//! - A value that does not fit its column's type ([`SinkError::ValueMismatch`], see
//!   [`SinkError::is_row_error`]) is refused whole: nothing of that row is written and
//!   the sink stays usable, so the caller can dead-letter the record and go on. Any
//!   other error leaves the file in an unknown state: abort it.
//! - Errors never carry row values: they name the column and its type.
//!
//! ## Values per format
//! | column type | JSON lines (= `Value::to_json`) | CSV text | Parquet (arrow type) |
//! |---|---|---|---|
//! | boolean | `true`/`false` | `true`/`false` | Boolean |
//! | int8..int64 | number | digits | Int8/16/32/64 |
//! | float32/64 | number; `"NaN"`, `"Infinity"`, `"-Infinity"` | shortest round-trip; `NaN`, `Infinity`, `-Infinity` | Float32/64 (float32 rounds the f64 held to f32) |
//! | decimal(p,s) | string with exact digits | exact digits | Decimal128(p,s) (p defaults to 38, s to 0); Utf8 text when p > 38, s < 0 or s > p |
//! | string, json | string | text | Utf8 |
//! | binary | base64 string | base64 | Binary |
//! | date | `"YYYY-MM-DD"` | same | Date32 |
//! | time (00:00:00..=24:00:00) | `"HH:MM:SS[.ffffff]"` | same | Time64(µs) |
//! | timestamp | `"YYYY-MM-DDTHH:MM:SS[.ffffff]"` | same | Timestamp(µs) |
//! | timestamptz | same with `Z` (UTC) | same | Timestamp(µs, "UTC") |
//!
//! Metadata: `_event_id`, `_op` (`c`/`u`/`d`/`r`), `_source_position` as strings;
//! `_source_ts` (commit time) and `_processed_at` as instants: RFC 3339 UTC with
//! milliseconds and `Z` in JSON/CSV, Timestamp(µs, "UTC") in Parquet. In Parquet the
//! metadata columns are non-null and the data columns nullable; each field carries its
//! rtdp type in the arrow field metadata key `rtdp.type`.
//!
//! CSV cannot tell null from the empty string: both are an empty field.

mod compress;
mod csv;
mod json;
mod parquet;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use rtdp_core::model::{ProcessedEvent, TableSchema};
use rtdp_core::types::{
    days_to_date, format_time_micros, format_timestamp_micros, Column, ColumnType, Value,
    MAX_DECIMAL_PRECISION,
};

pub use self::json::LineSink;
pub use self::parquet::RTDP_TYPE_KEY;

/// Output file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Parquet,
}

/// Compression: a stream around the whole file for JSON lines and CSV (gzip, zstd),
/// the page codec inside the file for Parquet (all four).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Zstd,
}

/// How to write files.
#[derive(Clone, Debug)]
pub struct SinkOptions {
    pub format: Format,
    pub compression: Compression,
    /// Parquet only: a row group is closed once its encoded size reaches this many bytes.
    pub parquet_row_group_bytes: usize,
}

impl SinkOptions {
    /// Default Parquet row-group size: 64 MiB.
    /// Same as the `output.parquet.rowGroupBytes` default (docs/CONFIGURATION.md).
    pub const DEFAULT_PARQUET_ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            format: Format::Parquet,
            compression: Compression::Snappy,
            parquet_row_group_bytes: Self::DEFAULT_PARQUET_ROW_GROUP_BYTES,
        }
    }
}

/// Why a sink failed. Only [`SinkError::ValueMismatch`] leaves the file usable (see
/// [`SinkError::is_row_error`]).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Reading or writing the file failed (transient or not: disk full, I/O error).
    #[error("file i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("parquet: {0}")]
    Parquet(String),
    #[error("arrow: {0}")]
    Arrow(String),
    /// A combination this sink does not offer (e.g. snappy for JSON lines). Definite.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A table schema no file can hold (a column named like a metadata column, or a name
    /// used twice): the records of that schema belong in the dead letters.
    #[error("unsupported schema: {0}")]
    Schema(String),
    /// A row's value does not fit its column's type (or the row does not fit the file's
    /// schema). Names the column and the expected type, never the value.
    #[error("column {column:?}: value does not fit type {expected}")]
    ValueMismatch { column: String, expected: String },
}

impl SinkError {
    /// True when only the offending row was refused and the sink is still usable (the
    /// record belongs in the dead letters); false when the file must be aborted.
    pub fn is_row_error(&self) -> bool {
        matches!(self, SinkError::ValueMismatch { .. } | SinkError::Schema(_))
    }
}

impl From<::parquet::errors::ParquetError> for SinkError {
    fn from(e: ::parquet::errors::ParquetError) -> Self {
        SinkError::Parquet(e.to_string())
    }
}

impl From<arrow::error::ArrowError> for SinkError {
    fn from(e: arrow::error::ArrowError) -> Self {
        SinkError::Arrow(e.to_string())
    }
}

impl From<::csv::Error> for SinkError {
    fn from(e: ::csv::Error) -> Self {
        match e.into_kind() {
            ::csv::ErrorKind::Io(io) => SinkError::Io(io),
            other => SinkError::Io(std::io::Error::other(format!("csv: {other:?}"))),
        }
    }
}

/// One open output file.
pub trait FileSink: Send {
    /// Appends one row. `ev.schema` must equal the schema the sink was opened with.
    fn write(&mut self, ev: &ProcessedEvent) -> Result<(), SinkError>;
    /// Rows written so far.
    fn rows(&self) -> u64;
    /// About how many bytes the file would hold if finished now: bytes written plus what
    /// is buffered or encoded in memory (compressed streams: compressed bytes so far).
    /// Cheap; meant to be called after every record.
    fn size_estimate(&self) -> u64;
    /// Writes footer/trailer, flushes, `fsync`s; returns the final file size.
    fn finish(self: Box<Self>) -> Result<u64, SinkError>;
}

/// The metadata columns that start every row, in order.
pub const META_COLUMNS: [&str; 5] = [
    "_event_id",
    "_op",
    "_source_position",
    "_source_ts",
    "_processed_at",
];

/// Creates the file at `path` (which must not exist; its directory must) and returns a
/// sink writing rows of `schema` in `opts.format`.
pub fn open(
    path: &Path,
    schema: Arc<TableSchema>,
    opts: &SinkOptions,
) -> Result<Box<dyn FileSink>, SinkError> {
    validate(opts)?;
    check_names(&schema)?;
    Ok(match opts.format {
        Format::Json => Box::new(json::JsonSink::create(path, schema, opts.compression)?),
        Format::Csv => Box::new(csv::CsvSink::create(path, schema, opts.compression)?),
        Format::Parquet => Box::new(parquet::ParquetSink::create(path, schema, opts)?),
    })
}

/// Checks that the options describe files this module can write (snappy is Parquet
/// only). [`open`] calls it too; configuration validation can call it at start.
pub fn validate(opts: &SinkOptions) -> Result<(), SinkError> {
    match opts.format {
        Format::Json | Format::Csv => compress::check_stream_compression(opts.compression),
        Format::Parquet => Ok(()),
    }
}

/// The file name extension for `opts` (without the dot). Parquet compression is inside
/// the file, so Parquet is always `parquet`. (JSON/CSV with snappy are refused by
/// [`open`]; they get the uncompressed extension here.)
pub fn extension(opts: &SinkOptions) -> &'static str {
    match (opts.format, opts.compression) {
        (Format::Json, Compression::Gzip) => "jsonl.gz",
        (Format::Json, Compression::Zstd) => "jsonl.zst",
        (Format::Json, _) => "jsonl",
        (Format::Csv, Compression::Gzip) => "csv.gz",
        (Format::Csv, Compression::Zstd) => "csv.zst",
        (Format::Csv, _) => "csv",
        (Format::Parquet, _) => "parquet",
    }
}

/// Column names must be unique and must not shadow a metadata column: every format
/// addresses columns by name.
fn check_names(schema: &TableSchema) -> Result<(), SinkError> {
    let mut seen: HashSet<&str> = META_COLUMNS.iter().copied().collect();
    for c in &schema.columns {
        if !seen.insert(c.name.as_str()) {
            let what = if META_COLUMNS.contains(&c.name.as_str()) {
                "is a metadata column name"
            } else {
                "appears twice"
            };
            return Err(SinkError::Schema(format!(
                "column name {:?} {what}",
                c.name
            )));
        }
    }
    Ok(())
}

/// The row must have the file's schema (the caller rolls on a schema change).
pub(crate) fn check_row(schema: &Arc<TableSchema>, ev: &ProcessedEvent) -> Result<(), SinkError> {
    if ev.values.len() != schema.columns.len() {
        return Err(SinkError::ValueMismatch {
            column: "(row)".into(),
            expected: format!("a row of {} values", schema.columns.len()),
        });
    }
    if !Arc::ptr_eq(schema, &ev.schema) && **schema != *ev.schema {
        let differing = schema
            .columns
            .iter()
            .zip(&ev.schema.columns)
            .find(|(a, b)| a != b);
        return Err(match differing {
            Some((col, _)) => SinkError::ValueMismatch {
                column: col.name.clone(),
                expected: format!("the file's schema ({})", type_label(col)),
            },
            None => SinkError::ValueMismatch {
                column: "(schema)".into(),
                expected: "the file's schema".into(),
            },
        });
    }
    Ok(())
}

/// The column's type as written in errors: `int32`, `decimal(10,2)`.
pub(crate) fn type_label(col: &Column) -> String {
    match col.ty {
        ColumnType::Decimal => format!(
            "decimal({},{})",
            col.precision.unwrap_or(MAX_DECIMAL_PRECISION),
            col.scale.unwrap_or(0)
        ),
        t => t.as_str().to_string(),
    }
}

pub(crate) fn mismatch(col: &Column) -> SinkError {
    SinkError::ValueMismatch {
        column: col.name.clone(),
        expected: type_label(col),
    }
}

/// Microseconds in a day: the largest valid `time` (24:00:00, which PostgreSQL allows).
const DAY_MICROS: i64 = 86_400_000_000;

/// A column's type reduced to what encoding needs, computed once per file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    Float,
    /// `bound`: the unscaled value's magnitude must be below it (10^precision), when the
    /// precision is one an i128 holds.
    Decimal {
        scale: i8,
        bound: Option<u128>,
    },
    /// string and json
    Str,
    Binary,
    Date,
    Time,
    Timestamp {
        tz: bool,
    },
}

impl Kind {
    pub(crate) fn of(col: &Column) -> Kind {
        match col.ty {
            ColumnType::Boolean => Kind::Bool,
            ColumnType::Int8 => Kind::Int {
                min: i8::MIN as i64,
                max: i8::MAX as i64,
            },
            ColumnType::Int16 => Kind::Int {
                min: i16::MIN as i64,
                max: i16::MAX as i64,
            },
            ColumnType::Int32 => Kind::Int {
                min: i32::MIN as i64,
                max: i32::MAX as i64,
            },
            ColumnType::Int64 => Kind::Int {
                min: i64::MIN,
                max: i64::MAX,
            },
            ColumnType::Float32 | ColumnType::Float64 => Kind::Float,
            ColumnType::Decimal => {
                let p = col.precision.unwrap_or(MAX_DECIMAL_PRECISION);
                Kind::Decimal {
                    scale: col.scale.unwrap_or(0),
                    bound: (1..=MAX_DECIMAL_PRECISION)
                        .contains(&p)
                        .then(|| 10u128.pow(p as u32)),
                }
            }
            ColumnType::String | ColumnType::Json => Kind::Str,
            ColumnType::Binary => Kind::Binary,
            ColumnType::Date => Kind::Date,
            ColumnType::Time => Kind::Time,
            ColumnType::Timestamp => Kind::Timestamp { tz: false },
            ColumnType::Timestamptz => Kind::Timestamp { tz: true },
        }
    }

    /// Whether `v` is a valid value of this type (null always is).
    #[inline]
    pub(crate) fn fits(self, v: &Value) -> bool {
        match (self, v) {
            (_, Value::Null) => true,
            (Kind::Bool, Value::Bool(_)) => true,
            (Kind::Int { min, max }, Value::Int(i)) => (min..=max).contains(i),
            (Kind::Float, Value::Float(_)) => true,
            (Kind::Decimal { bound, .. }, Value::Decimal(u)) => {
                bound.is_none_or(|b| u.unsigned_abs() < b)
            }
            (Kind::Str, Value::String(_)) => true,
            (Kind::Binary, Value::Binary(_)) => true,
            (Kind::Date, Value::Date(_)) => true,
            (Kind::Time, Value::Time(us)) => (0..=DAY_MICROS).contains(us),
            (Kind::Timestamp { .. }, Value::Timestamp(_)) => true,
            _ => false,
        }
    }
}

/// The value does not fit the column (the caller names the column).
#[derive(Debug)]
pub(crate) struct Misfit;

/// Appends the value's plain text (the CSV field; JSON wraps and escapes it as needed)
/// and returns `Ok(false)` for null (nothing appended). Strings are appended raw.
/// The text equals what `Value::to_json` gives for the column, without JSON quoting.
#[inline]
pub(crate) fn push_text(kind: Kind, v: &Value, out: &mut Vec<u8>) -> Result<bool, Misfit> {
    if !kind.fits(v) {
        return Err(Misfit);
    }
    match v {
        Value::Null => return Ok(false),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => push_i64(*i, out),
        Value::Float(f) => push_float(*f, out),
        Value::Decimal(u) => {
            let Kind::Decimal { scale, .. } = kind else {
                return Err(Misfit);
            };
            push_decimal(*u, scale, out)
        }
        Value::String(s) => out.extend_from_slice(s.as_bytes()),
        Value::Binary(b) => push_base64(b, out),
        Value::Date(d) => push_date(*d, out),
        Value::Time(us) => push_time(*us, out),
        Value::Timestamp(us) => {
            push_timestamp(*us, out);
            if kind == (Kind::Timestamp { tz: true }) {
                out.push(b'Z');
            }
        }
    }
    Ok(true)
}

#[inline]
pub(crate) fn push_u128(mut n: u128, out: &mut Vec<u8>) {
    let mut buf = [0u8; 40];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[inline]
pub(crate) fn push_u64(mut n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[inline]
pub(crate) fn push_i64(i: i64, out: &mut Vec<u8>) {
    if i < 0 {
        out.push(b'-');
    }
    push_u64(i.unsigned_abs(), out);
}

/// Shortest text that reads back as the same f64 (ryu, as serde_json prints numbers);
/// `NaN`, `Infinity`, `-Infinity` for the others.
#[inline]
pub(crate) fn push_float(f: f64, out: &mut Vec<u8>) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        // Writing a finite f64 to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &f);
    }
}

/// Exact decimal text, as `rtdp_core::types::format_decimal` writes it.
#[inline]
pub(crate) fn push_decimal(unscaled: i128, scale: i8, out: &mut Vec<u8>) {
    if scale <= 0 {
        if unscaled < 0 {
            out.push(b'-');
        }
        push_u128(unscaled.unsigned_abs(), out);
        if unscaled != 0 {
            for _ in 0..(-(scale as i32)) {
                out.push(b'0');
            }
        }
        return;
    }
    let mut digits = [0u8; 40];
    let mut i = digits.len();
    let mut n = unscaled.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = &digits[i..];
    let scale = scale as usize;
    if unscaled < 0 {
        out.push(b'-');
    }
    if digits.len() > scale {
        let (int_part, frac) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(int_part);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (scale - digits.len()), b'0');
        out.extend_from_slice(digits);
    }
}

#[inline]
pub(crate) fn push_base64(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let len = base64::encoded_len(bytes.len(), true).unwrap_or(0);
    out.resize(start + len, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
}

/// (year, month, day) of a day number since 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`).
#[inline]
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe as i64 + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[inline]
fn push_2(n: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]);
}

/// Appends `n` as exactly `width` digits (n < 10^width).
#[inline]
fn push_fixed(mut n: u64, width: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + width, b'0');
    for i in (start..start + width).rev() {
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `YYYY-MM-DD` when the year has four digits; `false` (nothing appended) otherwise.
#[inline]
fn push_ymd(days: i64, out: &mut Vec<u8>) -> bool {
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return false;
    }
    push_fixed(y as u64, 4, out);
    out.push(b'-');
    push_2(m, out);
    out.push(b'-');
    push_2(d, out);
    true
}

#[inline]
fn push_hms(secs_of_day: u32, out: &mut Vec<u8>) {
    push_2(secs_of_day / 3600, out);
    out.push(b':');
    push_2(secs_of_day / 60 % 60, out);
    out.push(b':');
    push_2(secs_of_day % 60, out);
}

/// `YYYY-MM-DD`, as `Value::to_json` writes a date.
pub(crate) fn push_date(days: i32, out: &mut Vec<u8>) {
    if !push_ymd(days as i64, out) {
        let text = days_to_date(days)
            .map_or_else(|| days.to_string(), |d| d.format("%Y-%m-%d").to_string());
        out.extend_from_slice(text.as_bytes());
    }
}

/// `HH:MM:SS[.ffffff]`, as `Value::to_json` writes a time.
pub(crate) fn push_time(us: i64, out: &mut Vec<u8>) {
    if (0..DAY_MICROS).contains(&us) {
        push_hms((us / 1_000_000) as u32, out);
        let frac = us % 1_000_000;
        if frac != 0 {
            out.push(b'.');
            push_fixed(frac as u64, 6, out);
        }
    } else {
        out.extend_from_slice(format_time_micros(us).as_bytes());
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]`, as `Value::to_json` writes a timestamp (no zone).
pub(crate) fn push_timestamp(us: i64, out: &mut Vec<u8>) {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let start = out.len();
    if push_ymd(secs.div_euclid(86_400), out) {
        out.push(b'T');
        push_hms(secs.rem_euclid(86_400) as u32, out);
        if frac != 0 {
            out.push(b'.');
            push_fixed(frac as u64, 6, out);
        }
    } else {
        out.truncate(start);
        out.extend_from_slice(format_timestamp_micros(us).as_bytes());
    }
}

/// RFC 3339 UTC with milliseconds: `YYYY-MM-DDTHH:MM:SS.mmmZ` (metadata instants).
/// Fails for an instant outside chrono's range (about ±262,000 years).
pub(crate) fn push_instant_ms(ms: i64, out: &mut Vec<u8>) -> Result<(), Misfit> {
    let secs = ms.div_euclid(1000);
    let start = out.len();
    if push_ymd(secs.div_euclid(86_400), out) {
        out.push(b'T');
        push_hms(secs.rem_euclid(86_400) as u32, out);
        out.push(b'.');
        push_fixed(ms.rem_euclid(1000) as u64, 3, out);
        out.push(b'Z');
        return Ok(());
    }
    out.truncate(start);
    let dt = chrono::DateTime::from_timestamp_millis(ms).ok_or(Misfit)?;
    out.extend_from_slice(dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string().as_bytes());
    Ok(())
}

/// Error for a metadata instant that cannot be written.
pub(crate) fn meta_mismatch(name: &str) -> SinkError {
    SinkError::ValueMismatch {
        column: name.to_string(),
        expected: "an instant within chrono's range".into(),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A schema with every column type and rows that exercise the edges, shared by the
    //! format tests.
    use super::*;
    use rtdp_core::model::Op;

    pub(crate) fn all_types_schema() -> Arc<TableSchema> {
        TableSchema::new(vec![
            Column::new("b", ColumnType::Boolean),
            Column::new("i8", ColumnType::Int8),
            Column::new("i16", ColumnType::Int16),
            Column::new("i32", ColumnType::Int32),
            Column::new("i64", ColumnType::Int64),
            Column::new("f32", ColumnType::Float32),
            Column::new("f64", ColumnType::Float64),
            Column::decimal("dec", 10, 2),
            Column::decimal("dec_big", 38, 10),
            Column::new("s", ColumnType::String),
            Column::new("j", ColumnType::Json),
            Column::new("bin", ColumnType::Binary),
            Column::new("d", ColumnType::Date),
            Column::new("t", ColumnType::Time),
            Column::new("ts", ColumnType::Timestamp),
            Column::new("tstz", ColumnType::Timestamptz),
        ])
    }

    pub(crate) fn event(schema: &Arc<TableSchema>, n: i64, values: Vec<Value>) -> ProcessedEvent {
        ProcessedEvent {
            event_id: format!("ev-{n}"),
            op: [Op::Create, Op::Update, Op::Delete, Op::Read][(n % 4) as usize],
            schema_name: Some("APP".into()),
            table: "T".into(),
            schema: schema.clone(),
            values,
            source_position: format!("{n}:tx:{n}"),
            source_ts_ms: 1_764_000_000_000 + n,
            processed_at_ms: 1_764_000_000_500 + n,
        }
    }

    /// Rows covering nulls, extremes, escaping, pre-1970 dates and microseconds.
    pub(crate) fn edge_rows() -> Vec<Vec<Value>> {
        vec![
            vec![
                Value::Bool(true),
                Value::Int(i8::MIN as i64),
                Value::Int(i16::MIN as i64),
                Value::Int(i32::MIN as i64),
                Value::Int(i64::MIN),
                Value::Float(-1.5),
                Value::Float(0.1),
                Value::Decimal(-1_234_567_890),
                Value::Decimal(-(10i128.pow(38) - 1)),
                Value::String("a \"quoted\", comma\nnew line\r\n\ttab ü 名前 😀".into()),
                Value::String(r#"{"k":[1,2,"x\"y"]}"#.into()),
                Value::Binary(vec![0, 1, 2, 0xff, 0xfe]),
                Value::Date(-1),
                Value::Time(0),
                Value::Timestamp(-1),
                Value::Timestamp(-86_400_000_000 * 365 + 123_456),
            ],
            vec![
                Value::Bool(false),
                Value::Int(i8::MAX as i64),
                Value::Int(i16::MAX as i64),
                Value::Int(i32::MAX as i64),
                Value::Int(i64::MAX),
                Value::Float(f64::INFINITY),
                Value::Float(f64::NAN),
                Value::Decimal(5),
                Value::Decimal(10i128.pow(38) - 1),
                Value::String(String::new()),
                Value::String("null".into()),
                Value::Binary(vec![]),
                Value::Date(20_416),
                Value::Time(DAY_MICROS - 1),
                Value::Timestamp(1_764_000_000_123_456),
                Value::Timestamp(1_764_000_000_000_000),
            ],
            vec![Value::Null; 16],
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rtdp_core::types::{date_to_days, format_decimal};

    #[test]
    fn extensions_follow_format_and_stream_compression() {
        let ext = |format, compression| {
            extension(&SinkOptions {
                format,
                compression,
                parquet_row_group_bytes: 1,
            })
        };
        assert_eq!(ext(Format::Json, Compression::None), "jsonl");
        assert_eq!(ext(Format::Json, Compression::Gzip), "jsonl.gz");
        assert_eq!(ext(Format::Json, Compression::Zstd), "jsonl.zst");
        assert_eq!(ext(Format::Csv, Compression::None), "csv");
        assert_eq!(ext(Format::Csv, Compression::Gzip), "csv.gz");
        assert_eq!(ext(Format::Csv, Compression::Zstd), "csv.zst");
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Zstd,
        ] {
            assert_eq!(ext(Format::Parquet, c), "parquet");
        }
    }

    #[test]
    fn snappy_is_refused_for_stream_formats_without_creating_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let schema = test_support::all_types_schema();
        for format in [Format::Json, Format::Csv] {
            let opts = SinkOptions {
                format,
                compression: Compression::Snappy,
                parquet_row_group_bytes: 1,
            };
            assert!(matches!(validate(&opts), Err(SinkError::Unsupported(_))));
            let path = dir.path().join(format!("{format:?}"));
            let e = open(&path, schema.clone(), &opts).err().expect("refused");
            assert!(
                e.to_string()
                    .contains("snappy is only available for parquet"),
                "{e}"
            );
            assert!(!path.exists());
        }
    }

    #[test]
    fn column_names_that_shadow_metadata_or_repeat_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SinkOptions {
            format: Format::Json,
            compression: Compression::None,
            parquet_row_group_bytes: 1,
        };
        for cols in [
            vec![Column::new("_op", ColumnType::String)],
            vec![
                Column::new("a", ColumnType::String),
                Column::new("a", ColumnType::Int32),
            ],
        ] {
            let path = dir.path().join("x.jsonl");
            let e = open(&path, TableSchema::new(cols), &opts)
                .err()
                .expect("refused");
            assert!(matches!(e, SinkError::Schema(_)) && e.is_row_error(), "{e}");
            assert!(!path.exists());
        }
    }

    #[test]
    fn kinds_refuse_values_of_other_types_and_out_of_range() {
        let k = |c: Column| Kind::of(&c);
        assert!(!k(Column::new("x", ColumnType::Int8)).fits(&Value::Int(128)));
        assert!(k(Column::new("x", ColumnType::Int8)).fits(&Value::Int(-128)));
        assert!(!k(Column::new("x", ColumnType::Int64)).fits(&Value::String("1".into())));
        assert!(!k(Column::decimal("x", 3, 1)).fits(&Value::Decimal(1000)));
        assert!(k(Column::decimal("x", 3, 1)).fits(&Value::Decimal(-999)));
        assert!(!k(Column::new("x", ColumnType::Time)).fits(&Value::Time(-1)));
        assert!(k(Column::new("x", ColumnType::Time)).fits(&Value::Time(DAY_MICROS)));
        assert!(!k(Column::new("x", ColumnType::Date)).fits(&Value::Timestamp(0)));
        assert!(k(Column::new("x", ColumnType::Binary)).fits(&Value::Null));
    }

    #[test]
    fn metadata_instants_are_rfc3339_millis_utc() {
        let mut out = Vec::new();
        push_instant_ms(1_764_000_000_123, &mut out).unwrap();
        assert_eq!(out, b"2025-11-24T16:00:00.123Z");
        out.clear();
        push_instant_ms(-1, &mut out).unwrap();
        assert_eq!(out, b"1969-12-31T23:59:59.999Z");
        out.clear();
        push_instant_ms(-62_167_219_200_000 - 86_400_000, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "-0001-12-31T00:00:00.000Z"
        );
        out.clear();
        assert!(push_instant_ms(i64::MAX, &mut out).is_err());
    }

    #[test]
    fn dates_match_chrono_across_eras() {
        for (y, m, d) in [
            (1, 1, 1),
            (1582, 10, 15),
            (1900, 2, 28),
            (1969, 12, 31),
            (2000, 2, 29),
            (9999, 12, 31),
        ] {
            let date = chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
            let mut out = Vec::new();
            push_date(date_to_days(date), &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                date.format("%Y-%m-%d").to_string()
            );
        }
    }

    fn expected_text(col: &Column, v: &Value) -> String {
        match v.to_json(col) {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }
    }

    proptest! {
        #[test]
        fn text_equals_to_json_for_dates(days in any::<i32>()) {
            let col = Column::new("d", ColumnType::Date);
            let mut out = Vec::new();
            push_text(Kind::of(&col), &Value::Date(days), &mut out).unwrap();
            prop_assert_eq!(String::from_utf8(out).unwrap(), expected_text(&col, &Value::Date(days)));
        }

        #[test]
        fn text_equals_to_json_for_timestamps(us in any::<i64>(), tz in any::<bool>()) {
            let col = Column::new("t", if tz { ColumnType::Timestamptz } else { ColumnType::Timestamp });
            let v = Value::Timestamp(us);
            let mut out = Vec::new();
            push_text(Kind::of(&col), &v, &mut out).unwrap();
            prop_assert_eq!(String::from_utf8(out).unwrap(), expected_text(&col, &v));
        }

        #[test]
        fn text_equals_to_json_for_times(us in 0..=DAY_MICROS) {
            let col = Column::new("t", ColumnType::Time);
            let mut out = Vec::new();
            push_text(Kind::of(&col), &Value::Time(us), &mut out).unwrap();
            prop_assert_eq!(String::from_utf8(out).unwrap(), expected_text(&col, &Value::Time(us)));
        }

        #[test]
        fn text_equals_to_json_for_decimals(u in any::<i128>(), scale in -5i8..40) {
            let mut col = Column::decimal("x", 38, scale);
            col.precision = Some(40); // beyond i128: no bound, every value fits
            let v = Value::Decimal(u);
            let mut out = Vec::new();
            push_text(Kind::of(&col), &v, &mut out).unwrap();
            prop_assert_eq!(String::from_utf8(out).unwrap(), format_decimal(u, scale));
        }

        #[test]
        fn text_equals_to_json_for_numbers(i in any::<i64>(), f in any::<f64>(), bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            for (col, v) in [
                (Column::new("i", ColumnType::Int64), Value::Int(i)),
                (Column::new("f", ColumnType::Float64), Value::Float(f)),
                (Column::new("b", ColumnType::Binary), Value::Binary(bytes.clone())),
            ] {
                let mut out = Vec::new();
                push_text(Kind::of(&col), &v, &mut out).unwrap();
                prop_assert_eq!(String::from_utf8(out).unwrap(), expected_text(&col, &v));
            }
        }

        #[test]
        fn instants_match_chrono(ms in -8_000_000_000_000_000i64..8_000_000_000_000_000i64) {
            let mut out = Vec::new();
            push_instant_ms(ms, &mut out).unwrap();
            let expected = chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }
}
