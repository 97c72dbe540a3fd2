//! Oracle column types → our envelope's types, and Oracle's text of a value (as
//! `SQL_REDO` writes it, or as the snapshot query selects it) → the envelope's JSON.
//! Pure: no database.
//!
//! | Oracle (`ALL_TAB_COLUMNS.DATA_TYPE`)            | envelope type                           |
//! |--------------------------------------------------|-----------------------------------------|
//! | `NUMBER(p,0)` p<3 / <5 / <10 / <19               | int8 / int16 / int32 / int64            |
//! | `NUMBER(p,0)` 19..=38, `INTEGER` (`NUMBER(*,0)`) | decimal(p,0)                            |
//! | `NUMBER(p,s)` s>0                                | decimal(max(p,s), s)                    |
//! | `NUMBER(p,s)` s<0 (rounded to 10^-s)             | as `NUMBER(p-s,0)` (Parquet has no negative scale) |
//! | `NUMBER` (no precision), `FLOAT(b)` as text      | string with the exact digits (`FLOAT`: float64) |
//! | `BINARY_FLOAT` / `BINARY_DOUBLE`                 | float32 / float64 (`NaN`, `Infinity` as strings) |
//! | `CHAR`, `VARCHAR2`, `NCHAR`, `NVARCHAR2`, `LONG`, `CLOB`, `NCLOB`, `ROWID` | string |
//! | `DATE`, `TIMESTAMP(n)`                           | timestamp (microseconds; digits beyond are cut) |
//! | `TIMESTAMP(n) WITH TIME ZONE`                    | timestamptz (the offset kept)           |
//! | `TIMESTAMP(n) WITH LOCAL TIME ZONE`              | timestamptz (the session runs in UTC)   |
//! | `RAW`, `LONG RAW`, `BLOB`                        | binary                                  |
//! | `INTERVAL YEAR TO MONTH`, `INTERVAL DAY TO SECOND` | string, ISO-8601 duration (`P1Y2M`, `P3DT4H5M6.5S`) |
//! | anything else (`XMLTYPE`, object types, …)       | string                                  |
//!
//! LOB columns (`CLOB`, `NCLOB`, `BLOB`) are captured only with `oracle.lobEnabled`;
//! without it they are left out of the events (LogMiner writes their values in separate
//! LOB operations, so a statement alone would show a wrong value).
//!
//! A value that does not fit its column's type is kept as its text by the caller (the
//! worker then dead-letters the event with its bytes) and reported without the value.

use crate::source::decode_hex;
use rtdp_core::types::{Column, ColumnType, Value, MAX_DECIMAL_PRECISION};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// One column as `ALL_TAB_COLUMNS` describes it (also the `--schema` file of `replay`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OraColumn {
    pub name: String,
    /// `DATA_TYPE`, e.g. `NUMBER`, `VARCHAR2`, `TIMESTAMP(6) WITH TIME ZONE`.
    pub data_type: String,
    #[serde(default)]
    pub precision: Option<i64>,
    #[serde(default)]
    pub scale: Option<i64>,
    #[serde(default = "yes")]
    pub nullable: bool,
}

fn yes() -> bool {
    true
}

/// How a column's values are read besides its envelope type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OraKind {
    Plain,
    /// `NUMBER` without precision, kept as exact text.
    NumberText,
    /// A timestamp with local time zone: text without offset is UTC.
    LocalTz,
    Interval,
    Lob,
}

/// Whether a `DATA_TYPE` is a LOB.
pub fn is_lob(data_type: &str) -> bool {
    matches!(data_type.trim(), "CLOB" | "NCLOB" | "BLOB")
}

/// The envelope column of an Oracle column.
pub fn column_for(c: &OraColumn, key: bool) -> (Column, OraKind) {
    let t = c.data_type.trim().to_ascii_uppercase();
    let mut kind = OraKind::Plain;
    let (ty, precision, scale) = if t == "NUMBER" {
        number(c.precision, c.scale, &mut kind)
    } else if t == "FLOAT" || t == "BINARY_DOUBLE" {
        (ColumnType::Float64, None, None)
    } else if t == "BINARY_FLOAT" {
        (ColumnType::Float32, None, None)
    } else if t == "DATE" || (t.starts_with("TIMESTAMP") && !t.contains("TIME ZONE")) {
        (ColumnType::Timestamp, None, None)
    } else if t.starts_with("TIMESTAMP") && t.contains("LOCAL TIME ZONE") {
        kind = OraKind::LocalTz;
        (ColumnType::Timestamptz, None, None)
    } else if t.starts_with("TIMESTAMP") {
        (ColumnType::Timestamptz, None, None)
    } else if t == "RAW" || t == "LONG RAW" {
        (ColumnType::Binary, None, None)
    } else if t == "BLOB" {
        kind = OraKind::Lob;
        (ColumnType::Binary, None, None)
    } else if t == "CLOB" || t == "NCLOB" {
        kind = OraKind::Lob;
        (ColumnType::String, None, None)
    } else if t.starts_with("INTERVAL") {
        kind = OraKind::Interval;
        (ColumnType::String, None, None)
    } else {
        (ColumnType::String, None, None)
    };
    let mut col = Column::new(c.name.clone(), ty);
    col.precision = precision;
    col.scale = scale;
    col.optional = c.nullable;
    col.key = key;
    (col, kind)
}

fn number(
    p: Option<i64>,
    s: Option<i64>,
    kind: &mut OraKind,
) -> (ColumnType, Option<u8>, Option<i8>) {
    let max = MAX_DECIMAL_PRECISION as i64;
    match (p, s.unwrap_or(0)) {
        // NUMBER(*,0) / INTEGER: up to 38 digits, no fraction.
        (None, 0) if s.is_some() => (ColumnType::Decimal, Some(MAX_DECIMAL_PRECISION), Some(0)),
        (None, _) => {
            *kind = OraKind::NumberText;
            (ColumnType::String, None, None)
        }
        (Some(p), s) if s <= 0 => {
            let digits = p - s;
            match digits {
                ..=2 => (ColumnType::Int8, None, None),
                3..=4 => (ColumnType::Int16, None, None),
                5..=9 => (ColumnType::Int32, None, None),
                10..=18 => (ColumnType::Int64, None, None),
                d if d <= max => (ColumnType::Decimal, Some(d as u8), Some(0)),
                _ => {
                    *kind = OraKind::NumberText;
                    (ColumnType::String, None, None)
                }
            }
        }
        (Some(p), s) => {
            let prec = p.max(s);
            if prec <= max {
                (ColumnType::Decimal, Some(prec as u8), Some(s as i8))
            } else {
                *kind = OraKind::NumberText;
                (ColumnType::String, None, None)
            }
        }
    }
}

/// Why a value did not fit its column (no value in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfit(pub &'static str);

/// Converts Oracle's text of a value (a `SQL_REDO` literal after [`super::redo`] read
/// it, or the snapshot query's text) to the envelope's JSON for `col`.
pub fn text_to_json(col: &Column, kind: OraKind, text: &str) -> Result<Json, Unfit> {
    let v = match (col.ty, kind) {
        (_, OraKind::NumberText) => {
            return normalize_number(text)
                .map(Json::String)
                .ok_or(Unfit("not a number"))
        }
        (_, OraKind::Interval) => {
            return Ok(Json::String(
                interval_iso(text).unwrap_or_else(|| text.to_owned()),
            ))
        }
        (ColumnType::Int8 | ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64, _) => {
            let n = normalize_number(text).ok_or(Unfit("not a number"))?;
            let i: i64 = n.parse().map_err(|_| Unfit("not an integer"))?;
            Value::from_i64_for(col, i).map_err(|_| Unfit("integer out of range"))?
        }
        (ColumnType::Decimal, _) => {
            let n = normalize_number(text).ok_or(Unfit("not a number"))?;
            Value::from_str_for(col, &n).map_err(|_| Unfit("does not fit the precision/scale"))?
        }
        (ColumnType::Float32 | ColumnType::Float64, _) => Value::Float(float(text)?),
        (ColumnType::Binary, _) => Value::Binary(decode_hex(text.trim()).ok_or(Unfit("not hex"))?),
        (ColumnType::Timestamp, _) => {
            let t = cut_fraction(&date_t(text.trim()));
            Value::from_str_for(col, &t).map_err(|_| Unfit("not a timestamp"))?
        }
        (ColumnType::Timestamptz, _) => {
            let t = instant_text(text, kind == OraKind::LocalTz)
                .ok_or(Unfit("not a timestamp with time zone"))?;
            return Ok(Json::String(t));
        }
        _ => Value::String(text.to_owned()),
    };
    Ok(v.to_json(col))
}

/// `1.5E+003` → `1500`, `.5` → `0.5`, `-0` → `0`, `+12.30` → `12.30`: plain decimal text
/// with every digit kept. `None` when it is not a number.
pub fn normalize_number(text: &str) -> Option<String> {
    let t = text.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
    if (ip.is_empty() && fp.is_empty())
        || !ip.bytes().all(|b| b.is_ascii_digit())
        || !fp.bytes().all(|b| b.is_ascii_digit())
        || exp.abs() > 200
    {
        return None;
    }
    // digits with the point after `point` of them.
    let digits = format!("{ip}{fp}");
    let point = ip.len() as i32 + exp;
    let (int_part, frac_part) = if point <= 0 {
        (
            String::new(),
            format!("{}{}", "0".repeat((-point) as usize), digits),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        (
            digits[..point as usize].to_owned(),
            digits[point as usize..].to_owned(),
        )
    };
    let int_part = int_part.trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    // An exponent form's trailing zeros after the point carry no scale.
    let frac_part = if exp != 0 {
        frac_part.trim_end_matches('0')
    } else {
        &frac_part
    };
    let zero = int_part == "0" && frac_part.bytes().all(|b| b == b'0');
    let mut out = String::new();
    if neg && !zero {
        out.push('-');
    }
    out.push_str(int_part);
    if !frac_part.is_empty() {
        out.push('.');
        out.push_str(frac_part);
    }
    Some(out)
}

fn float(text: &str) -> Result<f64, Unfit> {
    let t = text.trim();
    Ok(match t.to_ascii_lowercase().as_str() {
        "nan" => f64::NAN,
        "inf" | "+inf" | "infinity" | "binary_double_infinity" | "binary_float_infinity" => {
            f64::INFINITY
        }
        "-inf" | "-infinity" | "-binary_double_infinity" | "-binary_float_infinity" => {
            f64::NEG_INFINITY
        }
        "binary_double_nan" | "binary_float_nan" => f64::NAN,
        _ => t.parse().map_err(|_| Unfit("not a float"))?,
    })
}

/// `2020-01-02 03:04:05` → `2020-01-02T03:04:05` (only the space after the date).
fn date_t(t: &str) -> String {
    let date_len = t
        .find(|c: char| c != '-' && !c.is_ascii_digit())
        .unwrap_or(t.len());
    if t[date_len..].starts_with(' ') && date_len >= 8 {
        format!("{}T{}", &t[..date_len], &t[date_len + 1..])
    } else {
        t.to_owned()
    }
}

/// Keeps at most 6 fractional digits (microseconds; Oracle has up to 9).
fn cut_fraction(t: &str) -> String {
    let Some(dot) = t.rfind('.') else {
        return t.to_owned();
    };
    let frac_end = t[dot + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(t.len(), |i| dot + 1 + i);
    let frac = &t[dot + 1..frac_end];
    let kept = &frac[..frac.len().min(6)];
    let kept = kept.trim_end_matches('0');
    let mut out = t[..dot].to_owned();
    if !kept.is_empty() {
        out.push('.');
        out.push_str(kept);
    }
    out.push_str(&t[frac_end..]);
    out
}

/// An Oracle timestamp with an offset (`2020-01-02T03:04:05.123 +08:00`, `… -5:00`,
/// `…Z`) as RFC 3339; text without an offset is UTC when `assume_utc` (local time zone
/// columns: the session runs in UTC).
fn instant_text(text: &str, assume_utc: bool) -> Option<String> {
    let t = cut_fraction(&date_t(text.trim()));
    // Split the offset: the last '+'/'-' after the time part, or a trailing Z.
    let time_at = t.find('T')?;
    let (dt, off) = if let Some(stripped) = t.strip_suffix('Z') {
        (stripped.trim().to_owned(), "+00:00".to_owned())
    } else if let Some(i) = t[time_at..].rfind(['+', '-']).map(|i| time_at + i) {
        let off = t[i..].replace(' ', "");
        let sign = &off[..1];
        let (h, m) = off[1..].split_once(':').unwrap_or((&off[1..], "0"));
        let h: u32 = h.parse().ok()?;
        let m: u32 = m.parse().ok()?;
        if h > 18 || m > 59 {
            return None;
        }
        (t[..i].trim().to_owned(), format!("{sign}{h:02}:{m:02}"))
    } else if assume_utc {
        (t.clone(), "+00:00".to_owned())
    } else {
        return None;
    };
    let s = format!("{dt}{off}");
    rtdp_core::types::parse_instant_micros(&s)?;
    Some(s)
}

/// `+02-03` (year to month) or `+01 02:03:04.500000` (day to second), as Oracle prints
/// them, to an ISO-8601 duration: `P2Y3M`, `P1DT2H3M4.5S`; negative as `-P…`.
pub fn interval_iso(text: &str) -> Option<String> {
    let t = text.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let mut out = String::from(if neg { "-P" } else { "P" });
    if let Some((days, time)) = body.split_once(' ') {
        let d: u64 = days.parse().ok()?;
        let mut parts = time.split(':');
        let h: u64 = parts.next()?.parse().ok()?;
        let m: u64 = parts.next()?.parse().ok()?;
        let s = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
        let sec: u64 = sec.parse().ok()?;
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let frac = frac.trim_end_matches('0');
        if d > 0 {
            out.push_str(&format!("{d}D"));
        }
        if h + m + sec > 0 || !frac.is_empty() || d == 0 {
            out.push('T');
            if h > 0 {
                out.push_str(&format!("{h}H"));
            }
            if m > 0 {
                out.push_str(&format!("{m}M"));
            }
            if sec > 0 || !frac.is_empty() || (h == 0 && m == 0) {
                out.push_str(&sec.to_string());
                if !frac.is_empty() {
                    out.push('.');
                    out.push_str(frac);
                }
                out.push('S');
            }
        }
    } else {
        let (y, m) = body.split_once('-')?;
        let y: u64 = y.parse().ok()?;
        let m: u64 = m.parse().ok()?;
        if m > 11 {
            return None;
        }
        if y > 0 {
            out.push_str(&format!("{y}Y"));
        }
        if m > 0 || y == 0 {
            out.push_str(&format!("{m}M"));
        }
    }
    Some(out)
}

/// The select-list expression the snapshot uses for a column, so that its text is what
/// [`text_to_json`] reads (the session sets no NLS formats it relies on).
pub fn snapshot_expr(c: &OraColumn) -> String {
    let q = quote_ident(&c.name);
    let t = c.data_type.trim().to_ascii_uppercase();
    if t == "DATE" {
        format!("TO_CHAR({q}, 'SYYYY-MM-DD\"T\"HH24:MI:SS')")
    } else if t.starts_with("TIMESTAMP") && t.contains("LOCAL TIME ZONE") {
        format!("TO_CHAR(SYS_EXTRACT_UTC(CAST({q} AS TIMESTAMP WITH TIME ZONE)), 'SYYYY-MM-DD\"T\"HH24:MI:SS.FF9')")
    } else if t.starts_with("TIMESTAMP") && t.contains("TIME ZONE") {
        format!("TO_CHAR({q}, 'SYYYY-MM-DD\"T\"HH24:MI:SS.FF9TZH:TZM')")
    } else if t.starts_with("TIMESTAMP") {
        format!("TO_CHAR({q}, 'SYYYY-MM-DD\"T\"HH24:MI:SS.FF9')")
    } else if t == "RAW" {
        format!("RAWTOHEX({q})")
    } else if t == "NUMBER" || t == "FLOAT" {
        format!("TO_CHAR({q}, 'TM9', 'NLS_NUMERIC_CHARACTERS=''.,''')")
    } else if t == "BINARY_FLOAT" || t == "BINARY_DOUBLE" {
        format!("TO_CHAR({q}, 'TME', 'NLS_NUMERIC_CHARACTERS=''.,''')")
    } else {
        q
    }
}

/// Oracle's `SYYYY` prints a sign or a space before the year: ` 2020-…` / `-0044-…`.
pub fn strip_year_sign(text: &str) -> String {
    match text.strip_prefix(' ') {
        Some(rest) => rest.to_owned(),
        None => text.to_owned(),
    }
}

/// `"NAME"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The envelope's binary encoding (base64) of hex text, for tests.
#[cfg(test)]
fn b64(hex: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(decode_hex(hex).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn oc(t: &str, p: Option<i64>, s: Option<i64>) -> OraColumn {
        OraColumn {
            name: "C".into(),
            data_type: t.into(),
            precision: p,
            scale: s,
            nullable: true,
        }
    }

    fn conv(t: &str, p: Option<i64>, s: Option<i64>, text: &str) -> Result<Json, Unfit> {
        let (c, k) = column_for(&oc(t, p, s), false);
        text_to_json(&c, k, text)
    }

    #[test]
    fn numbers_map_by_precision_and_scale() {
        let ty = |p, s| column_for(&oc("NUMBER", p, s), false).0;
        assert_eq!(ty(Some(2), Some(0)).ty, ColumnType::Int8);
        assert_eq!(ty(Some(4), Some(0)).ty, ColumnType::Int16);
        assert_eq!(ty(Some(9), Some(0)).ty, ColumnType::Int32);
        assert_eq!(ty(Some(18), Some(0)).ty, ColumnType::Int64);
        let d = ty(Some(38), Some(0));
        assert_eq!(
            (d.ty, d.precision, d.scale),
            (ColumnType::Decimal, Some(38), Some(0))
        );
        let d = ty(Some(10), Some(2));
        assert_eq!(
            (d.ty, d.precision, d.scale),
            (ColumnType::Decimal, Some(10), Some(2))
        );
        // NUMBER(3,5): 0.00xyz.
        let d = ty(Some(3), Some(5));
        assert_eq!((d.precision, d.scale), (Some(5), Some(5)));
        // Negative scale: integers rounded to hundreds; 7 + 2 digits.
        assert_eq!(ty(Some(7), Some(-2)).ty, ColumnType::Int32);
        let d = ty(Some(37), Some(-3));
        assert_eq!(d.ty, ColumnType::String);
        assert_eq!(ty(None, None).ty, ColumnType::String);
        let d = ty(None, Some(0));
        assert_eq!((d.ty, d.precision), (ColumnType::Decimal, Some(38)));
    }

    #[test]
    fn number_values() {
        let n38 = "12345678901234567890123456789012345678";
        assert_eq!(conv("NUMBER", Some(38), Some(0), n38), Ok(json!(n38)));
        assert_eq!(
            conv("NUMBER", Some(38), Some(0), &format!("-{n38}")),
            Ok(json!(format!("-{n38}")))
        );
        assert!(conv("NUMBER", Some(38), Some(0), &format!("{n38}9")).is_err());
        assert_eq!(
            conv("NUMBER", Some(10), Some(2), "-1234.5"),
            Ok(json!("-1234.50"))
        );
        assert_eq!(conv("NUMBER", Some(10), Some(2), ".5"), Ok(json!("0.50")));
        assert!(conv("NUMBER", Some(10), Some(2), "1.234").is_err());
        assert_eq!(
            conv("NUMBER", Some(9), Some(0), "-12345678901"),
            Err(Unfit("integer out of range"))
        );
        assert_eq!(
            conv("NUMBER", Some(9), Some(0), "123456789"),
            Ok(json!(123456789))
        );
        assert_eq!(
            conv("NUMBER", Some(7), Some(-2), "123400"),
            Ok(json!(123400))
        );
        assert_eq!(
            conv("NUMBER", Some(7), Some(-2), "1.234E+5"),
            Ok(json!(123400))
        );
        assert_eq!(conv("NUMBER", Some(2), Some(0), "99"), Ok(json!(99)));
        assert_eq!(
            conv("NUMBER", None, None, "1.5E-130"),
            Ok(json!(format!("0.{}15", "0".repeat(129))))
        );
        assert_eq!(conv("NUMBER", None, None, "-0"), Ok(json!("0")));
        assert_eq!(
            conv("NUMBER", None, None, "abc"),
            Err(Unfit("not a number"))
        );
        assert_eq!(
            conv("NUMBER", Some(5), Some(5), ".00123"),
            Ok(json!("0.00123"))
        );
        assert_eq!(normalize_number("+12.30").as_deref(), Some("12.30"));
        assert_eq!(normalize_number("1E+3").as_deref(), Some("1000"));
        assert_eq!(normalize_number("1.50E+1").as_deref(), Some("15"));
    }

    #[test]
    fn floats() {
        assert_eq!(
            conv("BINARY_DOUBLE", None, None, "2.5000000000000001E+000"),
            Ok(json!(2.5))
        );
        assert_eq!(conv("BINARY_FLOAT", None, None, "1.5E+000"), Ok(json!(1.5)));
        assert_eq!(conv("BINARY_DOUBLE", None, None, "Nan"), Ok(json!("NaN")));
        assert_eq!(
            conv("BINARY_DOUBLE", None, None, "Inf"),
            Ok(json!("Infinity"))
        );
        assert_eq!(
            conv("BINARY_FLOAT", None, None, "-Inf"),
            Ok(json!("-Infinity"))
        );
        assert_eq!(conv("FLOAT", Some(126), None, "0.1"), Ok(json!(0.1)));
        assert!(conv("BINARY_DOUBLE", None, None, "x").is_err());
    }

    #[test]
    fn text_and_raw_and_lobs() {
        assert_eq!(
            conv("NVARCHAR2", None, None, "Grüße ✓"),
            Ok(json!("Grüße ✓"))
        );
        assert_eq!(conv("CHAR", None, None, "a  "), Ok(json!("a  ")));
        assert_eq!(conv("RAW", None, None, "0aff"), Ok(json!(b64("0aff"))));
        assert_eq!(conv("RAW", None, None, "0AFF"), Ok(json!(b64("0aff"))));
        assert_eq!(conv("BLOB", None, None, ""), Ok(json!("")));
        assert_eq!(conv("CLOB", None, None, ""), Ok(json!("")));
        assert!(conv("RAW", None, None, "0af").is_err());
        assert_eq!(column_for(&oc("CLOB", None, None), false).1, OraKind::Lob);
        assert!(is_lob("NCLOB") && !is_lob("VARCHAR2"));
    }

    #[test]
    fn dates_and_timestamps() {
        assert_eq!(
            conv("DATE", None, None, "2020-01-02T03:04:05"),
            Ok(json!("2020-01-02T03:04:05"))
        );
        assert_eq!(
            conv("DATE", None, None, "1969-07-20 20:17:40"),
            Ok(json!("1969-07-20T20:17:40"))
        );
        assert_eq!(
            conv("DATE", None, None, "1900-02-28T00:00:00"),
            Ok(json!("1900-02-28T00:00:00"))
        );
        assert_eq!(
            conv("TIMESTAMP(9)", None, None, "1960-01-01T00:00:00.123456789"),
            Ok(json!("1960-01-01T00:00:00.123456"))
        );
        assert_eq!(
            conv("TIMESTAMP(6)", None, None, "2020-01-01T00:00:00.500000"),
            Ok(json!("2020-01-01T00:00:00.500000"))
        );
        assert!(conv("TIMESTAMP(6)", None, None, "2020-13-01T00:00:00").is_err());
        assert_eq!(
            conv(
                "TIMESTAMP(6) WITH TIME ZONE",
                None,
                None,
                "2020-01-02T03:04:05.5 +08:00"
            ),
            Ok(json!("2020-01-02T03:04:05.5+08:00"))
        );
        assert_eq!(
            conv(
                "TIMESTAMP(6) WITH TIME ZONE",
                None,
                None,
                "1950-06-01T12:00:00-5:30"
            ),
            Ok(json!("1950-06-01T12:00:00-05:30"))
        );
        assert_eq!(
            conv(
                "TIMESTAMP(6) WITH LOCAL TIME ZONE",
                None,
                None,
                "2020-01-02T03:04:05"
            ),
            Ok(json!("2020-01-02T03:04:05+00:00"))
        );
        // A region name instead of an offset is not guessed.
        assert!(conv(
            "TIMESTAMP(6) WITH TIME ZONE",
            None,
            None,
            "2020-01-02T03:04:05 Europe/Berlin"
        )
        .is_err());
        assert!(conv(
            "TIMESTAMP(6) WITH TIME ZONE",
            None,
            None,
            "2020-01-02T03:04:05"
        )
        .is_err());
    }

    #[test]
    fn intervals() {
        assert_eq!(interval_iso("+02-03").as_deref(), Some("P2Y3M"));
        assert_eq!(interval_iso("-000000001-00").as_deref(), Some("-P1Y"));
        assert_eq!(interval_iso("+00-00").as_deref(), Some("P0M"));
        assert_eq!(
            interval_iso("+01 02:03:04.500000").as_deref(),
            Some("P1DT2H3M4.5S")
        );
        assert_eq!(
            interval_iso("+000000000 00:00:00.000000000").as_deref(),
            Some("PT0S")
        );
        assert_eq!(interval_iso("-3 00:00:00").as_deref(), Some("-P3D"));
        assert_eq!(interval_iso("+00 00:00:07").as_deref(), Some("PT7S"));
        assert_eq!(interval_iso("x"), None);
        assert_eq!(
            conv("INTERVAL DAY(2) TO SECOND(6)", None, None, "+01 00:00:00"),
            Ok(json!("P1D"))
        );
    }

    #[test]
    fn snapshot_expressions_select_text_the_converter_reads() {
        assert_eq!(snapshot_expr(&oc("VARCHAR2", None, None)), "\"C\"");
        assert!(snapshot_expr(&oc("DATE", None, None)).starts_with("TO_CHAR(\"C\", 'SYYYY"));
        assert!(
            snapshot_expr(&oc("TIMESTAMP(6) WITH LOCAL TIME ZONE", None, None))
                .contains("SYS_EXTRACT_UTC")
        );
        assert_eq!(snapshot_expr(&oc("RAW", None, None)), "RAWTOHEX(\"C\")");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(strip_year_sign(" 2020-01-01"), "2020-01-01");
    }
}
