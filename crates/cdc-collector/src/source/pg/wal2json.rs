//! wal2json (format version 2) rows, as `pg_logical_slot_peek_changes` returns them, and
//! LSN text. Pure parsing; no database.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// One row of wal2json format-version 2 output.
#[derive(Debug, Deserialize)]
pub struct Row<'a> {
    /// B(egin), C(ommit), I(nsert), U(pdate), D(elete), T(runcate), M(essage).
    pub action: Cow<'a, str>,
    #[serde(default)]
    pub xid: Option<u64>,
    #[serde(borrow, default)]
    pub timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub schema: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub table: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub columns: Vec<Col<'a>>,
    #[serde(borrow, default)]
    pub identity: Vec<Col<'a>>,
}

/// One column value; `value` is kept raw and read by the column's type.
#[derive(Debug, Deserialize)]
pub struct Col<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    pub ty: Cow<'a, str>,
    #[serde(borrow)]
    pub value: &'a RawValue,
}

impl Col<'_> {
    /// The value as PostgreSQL's text output, `None` for SQL NULL. wal2json prints
    /// numbers (with `numeric-data-types-as-string` they are strings too) and booleans
    /// bare, everything else as a JSON string.
    pub fn text(&self) -> Result<Option<Cow<'_, str>>, String> {
        let raw = self.value.get();
        match raw.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<Cow<'_, str>>(raw)
                .map(Some)
                .map_err(|e| format!("column {:?}: bad JSON string: {e}", self.name)),
            _ if raw == "null" => Ok(None),
            _ => Ok(Some(Cow::Borrowed(raw))),
        }
    }
}

/// Parses `X/Y` (hex) into a 64-bit LSN.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    (hi <= u32::MAX as u64 && lo <= u32::MAX as u64).then_some(hi << 32 | lo)
}

/// Formats an LSN as PostgreSQL does (`16/B374D848`).
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// wal2json's commit timestamp (`2026-11-24 04:14:17.82894+00`) in ms since the epoch.
pub fn timestamp_ms(s: &str) -> Option<i64> {
    let col = rtdp_core::types::Column::new("ts", rtdp_core::types::ColumnType::Timestamptz);
    match super::types::text_to_value(&col, s) {
        Ok(rtdp_core::types::Value::Timestamp(us)) => Some(us.div_euclid(1000)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_round_trip() {
        assert_eq!(parse_lsn("0/15302D8"), Some(0x15302D8));
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("nope"), None);
        assert_eq!(parse_lsn("1/"), None);
    }

    #[test]
    fn rows_parse_with_raw_values() {
        let data = r#"{"action":"U","xid":727,"timestamp":"2026-11-24 04:14:17.82894+00","lsn":"0/152FAB8","schema":"public","table":"t","columns":[{"name":"id","type":"integer","value":"1"},{"name":"s","type":"text","value":"it's\nnew \"q\""},{"name":"b","type":"boolean","value":true},{"name":"n","type":"numeric","value":null}],"identity":[{"name":"id","type":"integer","value":"1"}],"pk":[{"name":"id","type":"integer"}]}"#;
        let r: Row<'_> = serde_json::from_str(data).unwrap();
        assert_eq!(r.action, "U");
        assert_eq!(r.xid, Some(727));
        assert_eq!(r.columns[0].text().unwrap().as_deref(), Some("1"));
        assert_eq!(
            r.columns[1].text().unwrap().as_deref(),
            Some("it's\nnew \"q\"")
        );
        assert_eq!(r.columns[2].text().unwrap().as_deref(), Some("true"));
        assert_eq!(r.columns[3].text().unwrap(), None);
        assert_eq!(r.identity.len(), 1);
        assert_eq!(
            timestamp_ms(r.timestamp.as_deref().unwrap()),
            Some(1_795_493_657_828)
        );
        let b: Row<'_> = serde_json::from_str(
            r#"{"action":"B","xid":1,"timestamp":"2026-01-01 00:00:00+00","lsn":"0/1","nextlsn":"0/2"}"#,
        )
        .unwrap();
        assert!(b.columns.is_empty());
    }
}
