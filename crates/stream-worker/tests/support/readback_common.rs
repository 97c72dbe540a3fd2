//! Comparison helpers shared by `sink_readback.rs` and the end-to-end tests: run the
//! independent reader (`tests/py/read_output.py`: pyarrow, duckdb, python json) and
//! compare what it reports with the values and types we wrote.
//!
//! Included with `#[path = "..."] mod readback_common;`, so not every includer uses
//! every helper.

#![allow(dead_code)]

use std::path::PathBuf;

use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use rtdp_core::types::{date_to_days, format_decimal, parse_decimal, Column, ColumnType, Value};
use serde_json::Value as J;
use stream_worker::sink::Format;

pub fn read_with_python(files: &[PathBuf]) -> Vec<J> {
    rtdp_testkit::read_output_with_python(files)
}

/// The type pyarrow reports for a column written to Parquet.
pub fn parquet_type(col: &Column) -> String {
    match col.ty {
        ColumnType::Boolean => "bool".into(),
        ColumnType::Int8 => "int8".into(),
        ColumnType::Int16 => "int16".into(),
        ColumnType::Int32 => "int32".into(),
        ColumnType::Int64 => "int64".into(),
        ColumnType::Float32 => "float".into(),
        ColumnType::Float64 => "double".into(),
        ColumnType::Decimal => format!(
            "decimal128({}, {})",
            col.precision.unwrap(),
            col.scale.unwrap()
        ),
        ColumnType::String | ColumnType::Json => "string".into(),
        ColumnType::Binary => "binary".into(),
        ColumnType::Date => "date32[day]".into(),
        ColumnType::Time => "time64[us]".into(),
        ColumnType::Timestamp => "timestamp[us]".into(),
        ColumnType::Timestamptz => "timestamp[us, tz=UTC]".into(),
    }
}

/// The type duckdb's CSV sniffer settles on for our text of each column type.
pub fn csv_type(col: &Column) -> &'static str {
    match col.ty {
        ColumnType::Boolean => "BOOLEAN",
        ColumnType::Int8 | ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 => "BIGINT",
        ColumnType::Float32 | ColumnType::Float64 => "DOUBLE",
        // duckdb has no decimal sniffing: fractions become DOUBLE (the exact digits are
        // checked through the all-varchar read), integers that fit become BIGINT.
        ColumnType::Decimal if col.scale.unwrap_or(0) == 0 => "BIGINT",
        ColumnType::Decimal => "DOUBLE",
        ColumnType::String | ColumnType::Json | ColumnType::Binary => "VARCHAR",
        ColumnType::Date => "DATE",
        ColumnType::Time => "TIME",
        ColumnType::Timestamp => "TIMESTAMP",
        ColumnType::Timestamptz => "TIMESTAMP WITH TIME ZONE",
    }
}

/// The Python types the JSON reader sees for a column: derived from `Value::to_json`.
pub fn json_types(col: &Column, values: &[&Value]) -> String {
    let mut kinds: Vec<&str> = values
        .iter()
        .filter_map(|v| match v.to_json(col) {
            J::Null => None,
            J::Bool(_) => Some("bool"),
            J::Number(n) if n.is_f64() => Some("float"),
            J::Number(_) => Some("int"),
            J::String(_) => Some("str"),
            _ => Some("other"),
        })
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    if kinds.is_empty() {
        "null".into()
    } else {
        kinds.join("|")
    }
}

pub fn instant_micros(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("not an instant: {text:?}: {e}"))
        .timestamp_micros()
}

pub fn floats_equal(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Whether the reader's rendering `got` of a value of `col` equals `v`. `reader_type`
/// is the reader's type for the column (duckdb may read decimals as DOUBLE).
pub fn value_matches(format: Format, col: &Column, reader_type: &str, v: &Value, got: &J) -> bool {
    let text = match got {
        J::Null => {
            let csv_empty = format == Format::Csv
                && match v {
                    Value::String(s) => s.is_empty(),
                    Value::Binary(b) => b.is_empty(),
                    _ => false,
                };
            return v.is_null() || csv_empty;
        }
        J::String(s) => s.as_str(),
        other => panic!("reader value is not a string: {other}"),
    };
    match (col.ty, v) {
        (_, Value::Null) => false,
        (ColumnType::Boolean, Value::Bool(b)) => text == if *b { "true" } else { "false" },
        (_, Value::Int(i)) => text.parse::<i64>().ok() == Some(*i),
        (ty, Value::Float(f)) => {
            let Ok(r) = text.parse::<f64>() else {
                return false;
            };
            floats_equal(r, *f)
                || (format == Format::Parquet
                    && ty == ColumnType::Float32
                    && floats_equal(r, *f as f32 as f64))
        }
        (_, Value::Decimal(u)) => {
            let scale = col.scale.unwrap_or(0);
            if reader_type == "DOUBLE" {
                let expected: f64 = format_decimal(*u, scale).parse().unwrap();
                text.parse::<f64>().ok() == Some(expected)
            } else {
                parse_decimal(text, scale) == Some(*u)
            }
        }
        (_, Value::String(s)) => text == s,
        (_, Value::Binary(b)) => {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()
                .as_ref()
                == Some(b)
        }
        (_, Value::Date(d)) => {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(date_to_days)
                .ok()
                == Some(*d)
        }
        (_, Value::Time(us)) => {
            NaiveTime::parse_from_str(text, "%H:%M:%S%.f")
                .map(|t| {
                    t.num_seconds_from_midnight() as i64 * 1_000_000
                        + (t.nanosecond() / 1000) as i64
                })
                .ok()
                == Some(*us)
        }
        (ColumnType::Timestamptz, Value::Timestamp(us)) => instant_micros(text) == *us,
        (_, Value::Timestamp(us)) => {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
                .map(|n| n.and_utc().timestamp_micros())
                .ok()
                == Some(*us)
        }
        _ => false,
    }
}

/// The exact text a CSV field holds for `v`: the JSON text without quotes.
pub fn csv_text(col: &Column, v: &Value) -> J {
    match v.to_json(col) {
        J::Null => J::Null,
        J::String(s) if s.is_empty() => J::Null,
        J::String(s) => J::String(s),
        other => J::String(other.to_string()),
    }
}
