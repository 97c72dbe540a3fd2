//! Column types and typed values: what travels with every change event so that files
//! are typed (integers as integers, NUMBER(p,s) as decimals, DATE/TIMESTAMP as
//! timestamps, RAW/BLOB as binary — never "everything is a string").
//!
//! ## Wire encoding of values in our envelope (`ChangeEvent.before/after`)
//!
//! | type          | JSON value                                              |
//! |---------------|---------------------------------------------------------|
//! | `boolean`     | `true` / `false`                                        |
//! | `int8..int64` | integer number                                          |
//! | `float32/64`  | number, or the strings `"NaN"`, `"Infinity"`, `"-Infinity"` |
//! | `decimal`     | string with the exact digits, e.g. `"-1234.50"` (an integer number is accepted) |
//! | `string`      | string                                                  |
//! | `json`        | string holding JSON text (any other JSON value is accepted and kept as its text) |
//! | `binary`      | base64 string (standard alphabet, padded)               |
//! | `date`        | `"YYYY-MM-DD"`                                          |
//! | `time`        | `"HH:MM:SS[.ffffff]"`                                   |
//! | `timestamp`   | `"YYYY-MM-DDTHH:MM:SS[.ffffff]"`, no zone (wall clock of the source) |
//! | `timestamptz` | RFC 3339 with an offset, e.g. `"2026-11-24T08:00:00.5+08:00"` |
//!
//! `null` is null for every type. [`Value`] is the decoded, typed form; its
//! [`Value::to_json`] gives back exactly the encoding above, so a decode/encode round
//! trip is lossless.

use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Largest decimal precision stored as a typed decimal (fits an `i128`).
pub const MAX_DECIMAL_PRECISION: u8 = 38;

/// The logical type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    /// Exact decimal; `precision` and `scale` are on the [`Column`].
    Decimal,
    String,
    Json,
    Binary,
    /// Calendar date (days since 1970-01-01).
    Date,
    /// Time of day in microseconds.
    Time,
    /// Timestamp without time zone, microseconds.
    Timestamp,
    /// Instant (timestamp with time zone), microseconds since the epoch in UTC.
    Timestamptz,
}

impl ColumnType {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Boolean => "boolean",
            ColumnType::Int8 => "int8",
            ColumnType::Int16 => "int16",
            ColumnType::Int32 => "int32",
            ColumnType::Int64 => "int64",
            ColumnType::Float32 => "float32",
            ColumnType::Float64 => "float64",
            ColumnType::Decimal => "decimal",
            ColumnType::String => "string",
            ColumnType::Json => "json",
            ColumnType::Binary => "binary",
            ColumnType::Date => "date",
            ColumnType::Time => "time",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Timestamptz => "timestamptz",
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One column of a table as it travels with the event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Decimal precision (total digits). Required for `decimal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u8>,
    /// Decimal scale (digits after the point). Required for `decimal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<i8>,
    /// Whether the column may be null.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub optional: bool,
    /// Part of the primary key.
    #[serde(default, skip_serializing_if = "is_false")]
    pub key: bool,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        Column {
            name: name.into(),
            ty,
            precision: None,
            scale: None,
            optional: true,
            key: false,
        }
    }

    pub fn decimal(name: impl Into<String>, precision: u8, scale: i8) -> Self {
        Column {
            precision: Some(precision),
            scale: Some(scale),
            ..Column::new(name, ColumnType::Decimal)
        }
    }
}

/// A typed value. Which variant is valid for a column follows from [`ColumnType`]:
/// `Int` for int8..int64, `Decimal` holds the unscaled value (scale on the column),
/// `Date` days since the epoch, `Time`/`Timestamp` microseconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Decimal(i128),
    String(String),
    Binary(Vec<u8>),
    Date(i32),
    Time(i64),
    Timestamp(i64),
}

/// Why a JSON value could not be read as the column's type. Carries no row value:
/// it names the column, the type and what kind of JSON was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column:?}: expected {expected}, got {found}")]
pub struct ValueError {
    pub column: String,
    pub expected: String,
    pub found: String,
}

const UNIX_EPOCH_DAY_CE: i32 = 719_163;

/// Days since 1970-01-01 of a date.
pub fn date_to_days(d: NaiveDate) -> i32 {
    use chrono::Datelike;
    d.num_days_from_ce() - UNIX_EPOCH_DAY_CE
}

/// The date of a day number (None when out of chrono's range).
pub fn days_to_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(UNIX_EPOCH_DAY_CE)?)
}

/// Formats microseconds since the epoch as `YYYY-MM-DDTHH:MM:SS[.ffffff]`.
pub fn format_timestamp_micros(us: i64) -> String {
    match DateTime::from_timestamp_micros(us) {
        Some(dt) => {
            let n = dt.naive_utc();
            if n.nanosecond() == 0 {
                n.format("%Y-%m-%dT%H:%M:%S").to_string()
            } else {
                n.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
            }
        }
        None => us.to_string(),
    }
}

/// Formats microseconds since midnight as `HH:MM:SS[.ffffff]`.
pub fn format_time_micros(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if frac == 0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}.{frac:06}")
    }
}

/// Formats an unscaled decimal with its scale: `(12345, 2)` → `"123.45"`.
pub fn format_decimal(unscaled: i128, scale: i8) -> String {
    if scale <= 0 {
        let mut s = unscaled.to_string();
        if unscaled != 0 {
            for _ in 0..(-(scale as i32)) {
                s.push('0');
            }
        }
        return s;
    }
    let neg = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale as usize;
    let (int_part, frac_part) = if digits.len() > scale {
        let (a, b) = digits.split_at(digits.len() - scale);
        (a.to_string(), b.to_string())
    } else {
        ("0".to_string(), format!("{digits:0>scale$}"))
    };
    format!("{}{}.{}", if neg { "-" } else { "" }, int_part, frac_part)
}

/// Formats a decimal of any width: `unscaled` as big-endian two's-complement bytes (the
/// encoding of Kafka Connect's `Decimal` and Debezium's `VariableScaleDecimal`), then
/// `scale` (negative: trailing zeros). Exact: no digit is dropped, whatever the size.
pub fn format_decimal_be_bytes(unscaled: &[u8], scale: i32) -> String {
    let neg = unscaled.first().is_some_and(|b| b & 0x80 != 0);
    // Magnitude as big-endian base-2^32 limbs.
    let mut bytes = unscaled.to_vec();
    if neg {
        // Two's complement: invert, add one.
        let mut carry = 1u16;
        for b in bytes.iter_mut().rev() {
            let x = u16::from(!*b) + carry;
            *b = x as u8;
            carry = x >> 8;
        }
    }
    let mut limbs: Vec<u32> = Vec::with_capacity(bytes.len() / 4 + 1);
    let pad = (4 - bytes.len() % 4) % 4;
    let mut word = 0u32;
    for (i, b) in std::iter::repeat_n(0u8, pad).chain(bytes).enumerate() {
        word = (word << 8) | u32::from(b);
        if i % 4 == 3 {
            limbs.push(word);
            word = 0;
        }
    }
    // Repeated division by 10^9 gives the decimal digits, nine at a time.
    let mut chunks: Vec<u32> = Vec::new();
    let mut start = limbs.iter().position(|&l| l != 0).unwrap_or(limbs.len());
    while start < limbs.len() {
        let mut rem = 0u64;
        for l in &mut limbs[start..] {
            let cur = (rem << 32) | u64::from(*l);
            *l = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
        while start < limbs.len() && limbs[start] == 0 {
            start += 1;
        }
    }
    let mut digits = match chunks.pop() {
        Some(top) => top.to_string(),
        None => "0".to_string(),
    };
    for c in chunks.iter().rev() {
        digits.push_str(&format!("{c:09}"));
    }
    let zero = digits == "0";
    let mut out = String::with_capacity(digits.len() + 3);
    if neg && !zero {
        out.push('-');
    }
    if scale <= 0 {
        out.push_str(&digits);
        if !zero {
            out.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
        }
        return out;
    }
    let scale = scale as usize;
    if digits.len() > scale {
        let (a, b) = digits.split_at(digits.len() - scale);
        out.push_str(a);
        out.push('.');
        out.push_str(b);
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(&digits);
    }
    out
}

/// Big-endian two's-complement bytes (Connect `Decimal`) as an `i128`, when they fit
/// (redundant sign-extension bytes are allowed).
pub fn be_bytes_to_i128(b: &[u8]) -> Option<i128> {
    if b.is_empty() {
        return Some(0);
    }
    if b.len() > 16 {
        let (head, tail) = b.split_at(b.len() - 16);
        let fill = if tail[0] & 0x80 != 0 { 0xff } else { 0 };
        if !head.iter().all(|x| *x == fill) {
            return None;
        }
        return be_bytes_to_i128(tail);
    }
    let fill = if b[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut buf = [fill; 16];
    buf[16 - b.len()..].copy_from_slice(b);
    Some(i128::from_be_bytes(buf))
}

/// Parses decimal text into an unscaled value at `scale`. Fails (None) when the text
/// has more fractional digits than the scale allows (that would lose digits), or
/// overflows, or is not a plain decimal (`-12.5`, `3`, `1e3` is refused).
pub fn parse_decimal(text: &str, scale: i8) -> Option<i128> {
    let t = text.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((a, b)) => (a, b),
        None => (body, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let scale_i = scale as i32;
    let frac_trimmed = frac_part.trim_end_matches('0');
    if frac_trimmed.len() as i32 > scale_i.max(0) {
        return None;
    }
    let mut v: i128 = 0;
    for b in int_part.bytes() {
        v = v.checked_mul(10)?.checked_add((b - b'0') as i128)?;
    }
    if scale_i >= 0 {
        for i in 0..scale_i as usize {
            let d = frac_trimmed
                .as_bytes()
                .get(i)
                .map(|b| b - b'0')
                .unwrap_or(0);
            v = v.checked_mul(10)?.checked_add(d as i128)?;
        }
    } else {
        // Negative scale: the value must be a multiple of 10^-scale.
        let div = 10i128.checked_pow((-scale_i) as u32)?;
        if v % div != 0 {
            return None;
        }
        v /= div;
    }
    Some(if neg { -v } else { v })
}

/// Number of decimal digits of an unscaled value (for precision checks).
pub fn decimal_digits(unscaled: i128) -> u32 {
    let mut n = unscaled.unsigned_abs();
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// The kind of JSON scalar handed to a conversion, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl JsonKind {
    fn as_str(self) -> &'static str {
        match self {
            JsonKind::Boolean => "boolean",
            JsonKind::Integer => "integer",
            JsonKind::Number => "number",
            JsonKind::String => "string",
            JsonKind::Array => "array",
            JsonKind::Object => "object",
        }
    }
}

fn two(b: &[u8], i: usize) -> Option<u32> {
    let (x, y) = (*b.get(i)?, *b.get(i + 1)?);
    (x.is_ascii_digit() && y.is_ascii_digit()).then(|| ((x - b'0') * 10 + (y - b'0')) as u32)
}

/// Fast path for `YYYY-MM-DD`.
fn fast_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = two(b, 0)? * 100 + two(b, 2)?;
    NaiveDate::from_ymd_opt(y as i32, two(b, 5)?, two(b, 8)?)
}

/// Fast path for `HH:MM:SS[.f{1,9}]` → microseconds (fraction truncated to micros).
fn fast_time(b: &[u8]) -> Option<i64> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, sec) = (two(b, 0)?, two(b, 3)?, two(b, 6)?);
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let mut us = 0i64;
    if b.len() > 8 {
        if b[8] != b'.' || b.len() == 9 || b.len() > 18 {
            return None;
        }
        let frac = &b[9..];
        let mut scale = 100_000i64;
        for d in frac {
            if !d.is_ascii_digit() {
                return None;
            }
            us += (d - b'0') as i64 * scale;
            scale /= 10;
        }
    }
    Some((h as i64 * 3600 + m as i64 * 60 + sec as i64) * 1_000_000 + us)
}

fn parse_time_micros(s: &str) -> Option<i64> {
    if let Some(us) = fast_time(s.as_bytes()) {
        return Some(us);
    }
    let t = NaiveTime::parse_from_str(s, "%H:%M:%S%.f").ok()?;
    Some(t.num_seconds_from_midnight() as i64 * 1_000_000 + (t.nanosecond() / 1000) as i64)
}

fn parse_naive_timestamp_micros(s: &str) -> Option<i64> {
    if s.len() >= 19 && (s.as_bytes()[10] == b'T' || s.as_bytes()[10] == b' ') {
        if let (Some(d), Some(t)) = (fast_date(&s[..10]), fast_time(&s.as_bytes()[11..])) {
            return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros() + t);
        }
    }
    let n = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()?;
    Some(n.and_utc().timestamp_micros())
}

/// Parses an RFC 3339 / ISO-8601 instant with an offset (`Z` or `+hh:mm`) to UTC micros.
pub fn parse_instant_micros(s: &str) -> Option<i64> {
    if let Some(naive) = s.strip_suffix('Z') {
        if let Some(us) = parse_naive_timestamp_micros(naive) {
            return Some(us);
        }
    }
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .ok()
        .map(|d| d.timestamp_micros())
}

impl Value {
    fn type_error(col: &Column, found: &str) -> ValueError {
        ValueError {
            column: col.name.clone(),
            expected: match col.ty {
                ColumnType::Decimal => format!(
                    "decimal({},{})",
                    col.precision.unwrap_or(MAX_DECIMAL_PRECISION),
                    col.scale.unwrap_or(0)
                ),
                t => t.to_string(),
            },
            found: found.to_string(),
        }
    }

    fn checked_decimal(
        col: &Column,
        unscaled: Option<i128>,
        kind: &str,
    ) -> Result<Value, ValueError> {
        let unscaled = unscaled.ok_or_else(|| Value::type_error(col, kind))?;
        let precision = col.precision.unwrap_or(MAX_DECIMAL_PRECISION) as u32;
        if decimal_digits(unscaled) > precision {
            return Err(Value::type_error(
                col,
                "more digits than the precision allows",
            ));
        }
        Ok(Value::Decimal(unscaled))
    }

    /// Converts a JSON integer for `col` (our envelope's encoding).
    pub fn from_i64_for(col: &Column, i: i64) -> Result<Value, ValueError> {
        Ok(match col.ty {
            ColumnType::Int8 | ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 => {
                let ok = match col.ty {
                    ColumnType::Int8 => i8::try_from(i).is_ok(),
                    ColumnType::Int16 => i16::try_from(i).is_ok(),
                    ColumnType::Int32 => i32::try_from(i).is_ok(),
                    _ => true,
                };
                if !ok {
                    return Err(Value::type_error(col, "integer out of range"));
                }
                Value::Int(i)
            }
            ColumnType::Float32 | ColumnType::Float64 => Value::Float(i as f64),
            ColumnType::Decimal => {
                let scale = col.scale.unwrap_or(0);
                let unscaled = if scale >= 0 {
                    10i128
                        .checked_pow(scale as u32)
                        .and_then(|m| (i as i128).checked_mul(m))
                } else {
                    parse_decimal(&i.to_string(), scale)
                };
                return Value::checked_decimal(col, unscaled, "integer");
            }
            ColumnType::Json => Value::String(i.to_string()),
            _ => return Err(Value::type_error(col, "integer")),
        })
    }

    /// Converts a JSON non-negative integer beyond i64 for `col`.
    pub fn from_u64_for(col: &Column, u: u64) -> Result<Value, ValueError> {
        match i64::try_from(u) {
            Ok(i) => Value::from_i64_for(col, i),
            Err(_) => match col.ty {
                ColumnType::Float32 | ColumnType::Float64 => Ok(Value::Float(u as f64)),
                ColumnType::Decimal => Value::checked_decimal(
                    col,
                    parse_decimal(&u.to_string(), col.scale.unwrap_or(0)),
                    "integer",
                ),
                ColumnType::Json => Ok(Value::String(u.to_string())),
                _ => Err(Value::type_error(col, "integer out of range")),
            },
        }
    }

    /// Converts a JSON fractional number for `col`.
    pub fn from_f64_for(col: &Column, f: f64) -> Result<Value, ValueError> {
        match col.ty {
            ColumnType::Float32 | ColumnType::Float64 => Ok(Value::Float(f)),
            ColumnType::Json => Ok(Value::String(
                serde_json::Number::from_f64(f).map_or_else(|| "null".into(), |n| n.to_string()),
            )),
            _ => Err(Value::type_error(col, "number")),
        }
    }

    /// Converts a JSON boolean for `col`.
    pub fn from_bool_for(col: &Column, b: bool) -> Result<Value, ValueError> {
        match col.ty {
            ColumnType::Boolean => Ok(Value::Bool(b)),
            ColumnType::Json => Ok(Value::String(b.to_string())),
            _ => Err(Value::type_error(col, "boolean")),
        }
    }

    /// Converts a JSON string for `col` (decimals, dates, times, base64, …).
    pub fn from_str_for(col: &Column, s: &str) -> Result<Value, ValueError> {
        let err = |found: &str| Value::type_error(col, found);
        Ok(match col.ty {
            ColumnType::String | ColumnType::Json => Value::String(s.to_string()),
            ColumnType::Float32 | ColumnType::Float64 => match s {
                "NaN" => Value::Float(f64::NAN),
                "Infinity" => Value::Float(f64::INFINITY),
                "-Infinity" => Value::Float(f64::NEG_INFINITY),
                _ => return Err(err("string")),
            },
            ColumnType::Decimal => {
                return Value::checked_decimal(
                    col,
                    parse_decimal(s, col.scale.unwrap_or(0)),
                    "string",
                )
            }
            ColumnType::Binary => Value::Binary(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|_| err("string that is not base64"))?,
            ),
            ColumnType::Date => {
                let d = fast_date(s)
                    .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                    .ok_or_else(|| err("string that is not YYYY-MM-DD"))?;
                Value::Date(date_to_days(d))
            }
            ColumnType::Time => Value::Time(parse_time_micros(s).ok_or_else(|| err("string"))?),
            ColumnType::Timestamp => {
                Value::Timestamp(parse_naive_timestamp_micros(s).ok_or_else(|| err("string"))?)
            }
            ColumnType::Timestamptz => {
                Value::Timestamp(parse_instant_micros(s).ok_or_else(|| err("string"))?)
            }
            _ => return Err(err("string")),
        })
    }

    /// Converts a JSON array or object for `col` (only `json` columns take them; `raw`
    /// is the value's JSON text).
    pub fn from_structured_for(
        col: &Column,
        kind: JsonKind,
        raw: &str,
    ) -> Result<Value, ValueError> {
        match col.ty {
            ColumnType::Json => Ok(Value::String(raw.to_string())),
            _ => Err(Value::type_error(col, kind.as_str())),
        }
    }

    /// Reads a JSON value (our envelope's encoding, see the module docs) as `col`'s type.
    pub fn from_json(col: &Column, v: &serde_json::Value) -> Result<Value, ValueError> {
        use serde_json::Value as J;
        match v {
            J::Null => Ok(Value::Null),
            J::Bool(b) => Value::from_bool_for(col, *b),
            J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => Value::from_i64_for(col, i),
                (None, Some(u), _) => Value::from_u64_for(col, u),
                (_, _, Some(f)) => Value::from_f64_for(col, f),
                _ => Err(Value::type_error(col, "number")),
            },
            J::String(s) => Value::from_str_for(col, s),
            J::Array(_) => Value::from_structured_for(col, JsonKind::Array, &v.to_string()),
            J::Object(_) => Value::from_structured_for(col, JsonKind::Object, &v.to_string()),
        }
    }

    /// Encodes the value as JSON, in our envelope's encoding for `col`'s type.
    pub fn to_json(&self, col: &Column) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => {
                if f.is_nan() {
                    J::from("NaN")
                } else if f.is_infinite() {
                    J::from(if *f > 0.0 { "Infinity" } else { "-Infinity" })
                } else {
                    serde_json::Number::from_f64(*f).map_or(J::Null, J::Number)
                }
            }
            Value::Decimal(u) => J::String(format_decimal(*u, col.scale.unwrap_or(0))),
            Value::String(s) => J::String(s.clone()),
            Value::Binary(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
            Value::Date(d) => J::String(
                days_to_date(*d)
                    .map_or_else(|| d.to_string(), |d| d.format("%Y-%m-%d").to_string()),
            ),
            Value::Time(us) => J::String(format_time_micros(*us)),
            Value::Timestamp(us) => {
                let mut s = format_timestamp_micros(*us);
                if col.ty == ColumnType::Timestamptz {
                    s.push('Z');
                }
                J::String(s)
            }
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn decimals_parse_exactly_and_refuse_lost_digits() {
        assert_eq!(parse_decimal("123.45", 2), Some(12345));
        assert_eq!(parse_decimal("-0.5", 2), Some(-50));
        assert_eq!(parse_decimal("7", 3), Some(7000));
        assert_eq!(parse_decimal("1.230", 2), Some(123));
        assert_eq!(parse_decimal("1.234", 2), None);
        assert_eq!(parse_decimal("1e3", 0), None);
        assert_eq!(parse_decimal("", 0), None);
        assert_eq!(parse_decimal("1200", -2), Some(12));
        assert_eq!(format_decimal(12345, 2), "123.45");
        assert_eq!(format_decimal(-5, 3), "-0.005");
        assert_eq!(format_decimal(12, -2), "1200");
    }

    #[test]
    fn wrong_types_name_the_column_not_the_value() {
        let col = Column::new("AMOUNT", ColumnType::Int32);
        let e = Value::from_json(&col, &json!("secret-value")).unwrap_err();
        assert_eq!(e.column, "AMOUNT");
        assert!(!e.to_string().contains("secret-value"));
        let e = Value::from_json(&col, &json!(1i64 << 40)).unwrap_err();
        assert!(e.to_string().contains("out of range"));
    }

    #[test]
    fn temporal_values_round_trip() {
        let cases = [
            (ColumnType::Date, json!("2026-11-24")),
            (ColumnType::Time, json!("23:59:58.123456")),
            (ColumnType::Timestamp, json!("2026-11-24T08:00:00.000001")),
            (ColumnType::Timestamptz, json!("2026-11-24T00:00:00Z")),
        ];
        for (ty, v) in cases {
            let col = Column::new("c", ty);
            let parsed = Value::from_json(&col, &v).unwrap();
            assert_eq!(parsed.to_json(&col), v, "{ty}");
        }
        let col = Column::new("c", ColumnType::Timestamptz);
        let v = Value::from_json(&col, &json!("2026-11-24T08:00:00+08:00")).unwrap();
        assert_eq!(v.to_json(&col), json!("2026-11-24T00:00:00Z"));
    }

    proptest! {
        #[test]
        fn decimal_text_round_trips(unscaled in -(10i128.pow(30))..10i128.pow(30), scale in 0i8..12) {
            let text = format_decimal(unscaled, scale);
            prop_assert_eq!(parse_decimal(&text, scale), Some(unscaled));
        }

        #[test]
        fn timestamps_round_trip(us in -2_000_000_000_000_000i64..4_000_000_000_000_000i64) {
            let col = Column::new("t", ColumnType::Timestamp);
            let j = Value::Timestamp(us).to_json(&col);
            prop_assert_eq!(Value::from_json(&col, &j).unwrap(), Value::Timestamp(us));
        }
    }

    #[test]
    fn wide_decimals_format_exactly_and_agree_with_i128() {
        // 10^41 = 0x0125dfa371a19e6f7cb54395ca0000000000 (18 bytes).
        let e41: Vec<u8> = vec![
            0x01, 0x25, 0xdf, 0xa3, 0x71, 0xa1, 0x9e, 0x6f, 0x7c, 0xb5, 0x43, 0x95, 0xca, 0, 0, 0,
            0, 0,
        ];
        assert_eq!(
            format_decimal_be_bytes(&e41, 0),
            "100000000000000000000000000000000000000000"
        );
        assert_eq!(
            format_decimal_be_bytes(&e41, 41),
            "1.00000000000000000000000000000000000000000"
        );
        assert_eq!(format_decimal_be_bytes(&[], 3), "0.000");
        assert_eq!(format_decimal_be_bytes(&[0xff], 45).len(), 48);
        assert_eq!(format_decimal_be_bytes(&[0x0c], -3), "12000");
        assert_eq!(format_decimal_be_bytes(&[0], -3), "0");
        // Every i128 (and so every 16-byte value) formats as format_decimal does.
        for v in [
            0i128,
            1,
            -1,
            127,
            -128,
            255,
            i128::MAX,
            i128::MIN,
            -1234567890123456789,
        ] {
            for scale in [-2i8, 0, 2, 38] {
                assert_eq!(
                    format_decimal_be_bytes(&v.to_be_bytes(), scale.into()),
                    format_decimal(v, scale),
                    "{v} scale {scale}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn wide_decimals_agree_with_i128_for_any_value(v in proptest::prelude::any::<i128>(), scale in -5i8..40) {
            let bytes = v.to_be_bytes();
            // Any sign-extended prefix of the same value formats the same.
            let mut wide = vec![if v < 0 { 0xff } else { 0 }; 5];
            wide.extend_from_slice(&bytes);
            proptest::prop_assert_eq!(format_decimal_be_bytes(&wide, scale.into()), format_decimal(v, scale));
            proptest::prop_assert_eq!(be_bytes_to_i128(&wide), Some(v));
        }
    }
}
