//! PostgreSQL types → rtdp column types, and PostgreSQL text values → our envelope's JSON
//! values. Pure functions: the same code serves the stream (pgoutput's text values), the
//! snapshot (`col::text`) and `verify` (the source side of the comparison).
//!
//! | PostgreSQL (`format_type`)                        | rtdp type      |
//! |---------------------------------------------------|----------------|
//! | `smallint`, `integer`, `bigint`, `oid`            | int16/32/64    |
//! | `real`, `double precision`                        | float32/64     |
//! | `numeric(p,s)` with p ≤ 38                        | decimal(p,s)   |
//! | `numeric` without typmod, or p > 38, `money`      | string (exact text) |
//! | `boolean`                                         | boolean        |
//! | `bytea`                                           | binary         |
//! | `date`, `time`, `timestamp`, `timestamptz`        | date, time, timestamp, timestamptz |
//! | `json`, `jsonb`                                   | json           |
//! | any array (`…[]`)                                 | json (a JSON array; numbers stay numbers) |
//! | everything else (text, varchar, char, uuid, interval, timetz, inet, enums, …) | string |
//!
//! A value that does not fit its type (`NaN` in a `numeric(p,s)`, `infinity` in a
//! timestamp, a BC date) is kept as its text: the event still carries it, and the worker
//! sends that record to its dead letters rather than writing a wrong value.

use crate::source::decode_hex;
use base64::Engine;
use rtdp_core::types::{Column, ColumnType, Value};
use serde_json::Value as Json;

/// How a column's text is read, beyond its rtdp type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgKind {
    /// Read by the rtdp type.
    Plain,
    /// An array of numbers (elements become JSON numbers).
    NumberArray,
    /// An array of booleans.
    BoolArray,
    /// Any other array (elements become JSON strings).
    TextArray,
}

/// The rtdp column for a PostgreSQL type as `format_type(atttypid, atttypmod)` (and
/// the catalog query of the stream's Relation messages) print it.
pub fn column_for(name: &str, pg_type: &str, not_null: bool, key: bool) -> (Column, PgKind) {
    let t = pg_type.trim();
    let (ty, kind, precision, scale) = if let Some(elem) = t.strip_suffix("[]") {
        let elem = elem.trim_end_matches("[]");
        let kind = match base_type(elem).0 {
            ColumnType::Int8
            | ColumnType::Int16
            | ColumnType::Int32
            | ColumnType::Int64
            | ColumnType::Float32
            | ColumnType::Float64
            | ColumnType::Decimal => PgKind::NumberArray,
            ColumnType::Boolean => PgKind::BoolArray,
            _ => PgKind::TextArray,
        };
        (ColumnType::Json, kind, None, None)
    } else {
        let (ty, p, s) = base_type(t);
        (ty, PgKind::Plain, p, s)
    };
    let mut col = Column::new(name, ty);
    col.precision = precision;
    col.scale = scale;
    col.optional = !not_null;
    col.key = key;
    (col, kind)
}

fn base_type(t: &str) -> (ColumnType, Option<u8>, Option<i8>) {
    let plain = |ty| (ty, None, None);
    match t {
        "smallint" | "int2" => return plain(ColumnType::Int16),
        "integer" | "int" | "int4" => return plain(ColumnType::Int32),
        "bigint" | "int8" | "oid" => return plain(ColumnType::Int64),
        "real" | "float4" => return plain(ColumnType::Float32),
        "double precision" | "float8" => return plain(ColumnType::Float64),
        "boolean" | "bool" => return plain(ColumnType::Boolean),
        "bytea" => return plain(ColumnType::Binary),
        "date" => return plain(ColumnType::Date),
        "json" | "jsonb" => return plain(ColumnType::Json),
        _ => {}
    }
    if let Some(rest) = t.strip_prefix("numeric(") {
        if let Some((p, s)) = rest.trim_end_matches(')').split_once(',') {
            if let (Ok(p), Ok(s)) = (p.trim().parse::<u8>(), s.trim().parse::<i8>()) {
                if p <= 38 && s >= 0 && (s as u8) <= p {
                    return (ColumnType::Decimal, Some(p), Some(s));
                }
            }
        } else if let Ok(p) = rest.trim_end_matches(')').trim().parse::<u8>() {
            if p <= 38 {
                return (ColumnType::Decimal, Some(p), Some(0));
            }
        }
        return plain(ColumnType::String);
    }
    // time(3) without time zone, timestamp(6) with time zone, …
    let unprecise = strip_precision(t);
    match unprecise.as_str() {
        "time without time zone" | "time" => plain(ColumnType::Time),
        "timestamp without time zone" | "timestamp" => plain(ColumnType::Timestamp),
        "timestamp with time zone" | "timestamptz" => plain(ColumnType::Timestamptz),
        _ => plain(ColumnType::String),
    }
}

fn strip_precision(t: &str) -> String {
    match (t.find('('), t.find(')')) {
        (Some(a), Some(b)) if b > a => format!("{}{}", &t[..a], &t[b + 1..]),
        _ => t.to_owned(),
    }
}

/// Why a text did not fit its column's type (no value in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfit;

/// Converts PostgreSQL's text output of a value to our envelope's JSON encoding for
/// `col`. `Err(Unfit)` when it does not fit the type; the caller keeps the text then.
pub fn text_to_json(col: &Column, kind: PgKind, text: &str) -> Result<Json, Unfit> {
    Ok(match kind {
        PgKind::Plain => text_to_value(col, text)?.to_json(col),
        PgKind::NumberArray | PgKind::BoolArray | PgKind::TextArray => {
            Json::String(array_to_json(text, kind).ok_or(Unfit)?.to_string())
        }
    })
}

/// Converts PostgreSQL's text output of a scalar to a typed [`Value`].
pub fn text_to_value(col: &Column, text: &str) -> Result<Value, Unfit> {
    Ok(match col.ty {
        ColumnType::Boolean => match text {
            "t" | "true" => Value::Bool(true),
            "f" | "false" => Value::Bool(false),
            _ => return Err(Unfit),
        },
        ColumnType::Int8 | ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 => {
            Value::Int(text.trim().parse().map_err(|_| Unfit)?)
        }
        ColumnType::Float32 | ColumnType::Float64 => Value::Float(match text {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ => text.trim().parse().map_err(|_| Unfit)?,
        }),
        ColumnType::Binary => {
            let hex = text.strip_prefix("\\x").unwrap_or(text);
            Value::Binary(decode_hex(hex).ok_or(Unfit)?)
        }
        ColumnType::Timestamptz => {
            Value::from_str_for(col, &normalize_offset(text)).map_err(|_| Unfit)?
        }
        ColumnType::String | ColumnType::Json => Value::String(text.to_owned()),
        _ => Value::from_str_for(col, text).map_err(|_| Unfit)?,
    })
}

/// `2026-11-24 04:14:17.8+00` → `2026-11-24 04:14:17.8+00:00` (chrono wants `hh:mm`).
fn normalize_offset(text: &str) -> String {
    let b = text.as_bytes();
    if b.len() >= 3 {
        let sign = b[b.len() - 3];
        if (sign == b'+' || sign == b'-') && b[b.len() - 2..].iter().all(u8::is_ascii_digit) {
            return format!("{text}:00");
        }
    }
    text.to_owned()
}

/// Base64 of bytes (the envelope's binary encoding), for tests and verify.
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Parses PostgreSQL's array text (`{1,NULL,"a b",{2,3}}`) into a JSON array. Elements
/// of number arrays become numbers, of boolean arrays booleans, others strings; `NULL`
/// becomes null. Dimension decorations (`[0:1]={…}`) are dropped.
pub fn array_to_json(text: &str, kind: PgKind) -> Option<Json> {
    let s = match text.find('=') {
        Some(i) if text.starts_with('[') => &text[i + 1..],
        _ => text,
    };
    let mut p = ArrayParser {
        b: s.as_bytes(),
        i: 0,
        kind,
    };
    let v = p.array()?;
    (p.i == p.b.len()).then_some(v)
}

struct ArrayParser<'a> {
    b: &'a [u8],
    i: usize,
    kind: PgKind,
}

impl ArrayParser<'_> {
    fn array(&mut self) -> Option<Json> {
        if self.b.get(self.i) != Some(&b'{') {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Some(Json::Array(out));
        }
        loop {
            let c = *self.b.get(self.i)?;
            let elem = if c == b'{' {
                self.array()?
            } else if c == b'"' {
                self.i += 1;
                let mut bytes = Vec::new();
                loop {
                    let c = *self.b.get(self.i)?;
                    self.i += 1;
                    match c {
                        b'\\' => {
                            bytes.push(*self.b.get(self.i)?);
                            self.i += 1;
                        }
                        b'"' => break,
                        _ => bytes.push(c),
                    }
                }
                self.scalar(String::from_utf8(bytes).ok()?, true)?
            } else {
                let start = self.i;
                while let Some(&c) = self.b.get(self.i) {
                    if c == b',' || c == b'}' {
                        break;
                    }
                    self.i += 1;
                }
                let raw = std::str::from_utf8(&self.b[start..self.i]).ok()?.trim();
                if raw == "NULL" {
                    Json::Null
                } else {
                    self.scalar(raw.to_owned(), false)?
                }
            };
            out.push(elem);
            match *self.b.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(Json::Array(out));
                }
                _ => return None,
            }
        }
    }

    fn scalar(&self, s: String, _quoted: bool) -> Option<Json> {
        Some(match self.kind {
            PgKind::NumberArray => match s.parse::<serde_json::Number>() {
                Ok(n) => Json::Number(n),
                // NaN / Infinity have no JSON number: keep the text.
                Err(_) => Json::String(s),
            },
            PgKind::BoolArray => match s.as_str() {
                "t" | "true" => Json::Bool(true),
                "f" | "false" => Json::Bool(false),
                _ => Json::String(s),
            },
            _ => Json::String(s),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn col(t: &str) -> (Column, PgKind) {
        column_for("c", t, false, false)
    }

    #[test]
    fn types_map_as_the_table_says() {
        assert_eq!(col("integer").0.ty, ColumnType::Int32);
        assert_eq!(col("bigint").0.ty, ColumnType::Int64);
        let (d, _) = col("numeric(38,10)");
        assert_eq!(
            (d.ty, d.precision, d.scale),
            (ColumnType::Decimal, Some(38), Some(10))
        );
        assert_eq!(col("numeric(5)").0.scale, Some(0));
        assert_eq!(col("numeric").0.ty, ColumnType::String);
        assert_eq!(col("numeric(50,2)").0.ty, ColumnType::String);
        assert_eq!(
            col("timestamp(3) with time zone").0.ty,
            ColumnType::Timestamptz
        );
        assert_eq!(
            col("timestamp without time zone").0.ty,
            ColumnType::Timestamp
        );
        assert_eq!(col("time(6) without time zone").0.ty, ColumnType::Time);
        assert_eq!(col("time with time zone").0.ty, ColumnType::String);
        assert_eq!(col("character varying(20)").0.ty, ColumnType::String);
        assert_eq!(col("jsonb").0.ty, ColumnType::Json);
        assert_eq!(col("uuid").0.ty, ColumnType::String);
        assert_eq!(col("integer[]"), {
            let c = Column::new("c", ColumnType::Json);

            (c, PgKind::NumberArray)
        });
        assert_eq!(col("text[]").1, PgKind::TextArray);
        assert_eq!(col("boolean[][]").1, PgKind::BoolArray);
    }

    #[test]
    fn values_convert_to_the_envelope_encoding() {
        let j = |t: &str, v: &str| {
            let (c, k) = col(t);
            text_to_json(&c, k, v)
        };
        assert_eq!(j("integer", "-7"), Ok(json!(-7)));
        assert_eq!(j("boolean", "t"), Ok(json!(true)));
        assert_eq!(j("boolean", "false"), Ok(json!(false)));
        assert_eq!(j("double precision", "Infinity"), Ok(json!("Infinity")));
        assert_eq!(j("real", "1.5"), Ok(json!(1.5)));
        assert_eq!(
            j("numeric(38,0)", "99999999999999999999999999999999999999"),
            Ok(json!("99999999999999999999999999999999999999"))
        );
        assert_eq!(j("numeric(10,2)", "-0.50"), Ok(json!("-0.50")));
        assert_eq!(j("numeric(10,2)", "NaN"), Err(Unfit));
        assert_eq!(j("bytea", "\\xdeadbeef"), Ok(json!("3q2+7w==")));
        assert_eq!(j("bytea", "deadbeef"), Ok(json!("3q2+7w==")));
        assert_eq!(j("bytea", "\\xzz"), Err(Unfit));
        assert_eq!(j("date", "1960-01-01"), Ok(json!("1960-01-01")));
        assert_eq!(
            j("timestamp without time zone", "2026-11-24 04:14:17.827446"),
            Ok(json!("2026-11-24T04:14:17.827446"))
        );
        assert_eq!(
            j("timestamp with time zone", "2026-11-24 04:14:17.5+00"),
            Ok(json!("2026-11-24T04:14:17.500000Z"))
        );
        assert_eq!(
            j("timestamp with time zone", "2026-11-24 12:14:17+08"),
            j("timestamp with time zone", "2026-11-24 04:14:17+00")
        );
        assert_eq!(
            j("timestamp with time zone", "2026-11-24 09:44:17+05:30"),
            j("timestamp with time zone", "2026-11-24 04:14:17+00")
        );
        assert_eq!(j("timestamp with time zone", "infinity"), Err(Unfit));
        assert_eq!(j("jsonb", "{\"a\": [1, 2]}"), Ok(json!("{\"a\": [1, 2]}")));
        assert_eq!(j("integer[]", "{1,NULL,3}"), Ok(json!("[1,null,3]")));
        assert_eq!(
            j("text[]", r#"{"a b","x\"y",NULL,plain,"NULL"}"#),
            Ok(json!(r#"["a b","x\"y",null,"plain","NULL"]"#))
        );
        assert_eq!(j("integer[]", "{{1,2},{3,4}}"), Ok(json!("[[1,2],[3,4]]")));
        assert_eq!(j("integer[]", "[0:1]={5,6}"), Ok(json!("[5,6]")));
        assert_eq!(j("integer[]", "{}"), Ok(json!("[]")));
        assert_eq!(j("boolean[]", "{t,f}"), Ok(json!("[true,false]")));
        assert_eq!(j("integer[]", "{1,2"), Err(Unfit));
    }

    #[test]
    fn timestamptz_with_a_non_utc_offset_is_the_same_instant() {
        let (c, _) = col("timestamp with time zone");
        assert_eq!(
            text_to_value(&c, "2026-01-01 08:00:00+08"),
            text_to_value(&c, "2026-01-01 00:00:00+00")
        );
        assert_eq!(
            text_to_value(&c, "1969-12-31 23:59:59.999999+00"),
            Ok(Value::Timestamp(-1))
        );
    }
}
