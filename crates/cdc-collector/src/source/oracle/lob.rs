//! LogMiner's LOB operations (with `oracle.lobEnabled`): a LOB value is not in the
//! insert or update statement (that holds `EMPTY_CLOB()` or nothing) but in the rows that
//! follow it in the same transaction:
//!
//! - `SELECT_LOB_LOCATOR` (9): `DECLARE … BEGIN select "DOC" into loc_c from "S"."T" where
//!   "ID" = '1' and ROWID = '…' for update;` — which column of which row;
//! - `LOB_WRITE` (10): `buf_c := 'text'; dbms_lob.write(loc_c, 4, 1, buf_c);` (BLOB:
//!   `buf_b := HEXTORAW('0a0b');`) — `amount` characters/bytes at `offset` (1-based);
//! - `LOB_TRIM` (11): `dbms_lob.trim(loc_c, 10);`;
//! - `LOB_ERASE` (29): `dbms_lob.erase(loc_c, 5, 3);` (spaces / zero bytes).
//!
//! [`LobValue`] applies them in order, starting from an empty value (LogMiner writes a
//! new or replaced value whole, chunk after chunk). Pure: no database. A row it cannot
//! read or apply is a [`LobError`] (never carrying the LOB's text).

use serde_json::{Map, Value};

use super::redo::{self, RedoError};

/// Why a LOB row could not be read or applied. The messages name the part of the
/// statement only, never its data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LobError {
    #[error("no select in the LOB locator statement")]
    NoSelect,
    #[error("no 'into' in the LOB locator statement")]
    NoInto,
    #[error("no 'from' in the LOB locator statement")]
    NoFrom,
    /// The locator's `FROM … WHERE …` part, read as a delete (offsets are of that).
    #[error("LOB locator statement: {0}")]
    Locator(RedoError),
    /// An argument of `dbms_lob.*` (`what`: e.g. `the write offset`) is not a number.
    #[error("LOB operation: {what} is not a number")]
    NotANumber { what: &'static str },
    #[error("LOB write without its buffer")]
    NoBuffer,
    /// The buffer's expression, read as an insert's value (offsets are of that).
    #[error("LOB write buffer: {0}")]
    Buffer(RedoError),
    #[error("not a LOB write, trim or erase")]
    NotAnOperation,
    #[error("LOB write: the BLOB buffer is not hex")]
    BlobNotHex,
    /// A write, trim or erase with no locator before it in the transaction.
    #[error("a LOB operation without its locator")]
    NoLocator,
}

/// Which column of which row a locator points at.
#[derive(Debug, Clone, PartialEq)]
pub struct Locator {
    pub schema: String,
    pub table: String,
    pub column: String,
    pub binary: bool,
    /// The row as the locator's WHERE clause names it.
    pub row: Map<String, Value>,
}

/// Reads a `SELECT_LOB_LOCATOR` statement.
pub fn parse_locator(sql: &str) -> Result<Locator, LobError> {
    let lower = sql.to_ascii_lowercase();
    let sel = lower.find("select ").ok_or(LobError::NoSelect)?;
    let into = lower[sel..]
        .find(" into ")
        .map(|i| sel + i)
        .ok_or(LobError::NoInto)?;
    let column = sql[sel + 7..into]
        .trim()
        .trim_matches('"')
        .replace("\"\"", "\"");
    let from = lower[into..]
        .find(" from ")
        .map(|i| into + i)
        .ok_or(LobError::NoFrom)?;
    let var = lower[into + 6..from].trim().to_owned();
    let end = lower
        .rfind(" for update")
        .filter(|e| *e > from)
        .unwrap_or(sql.trim_end().trim_end_matches(';').len());
    // The FROM … WHERE … part reads like a delete's.
    let r = redo::parse(&format!("delete {};", &sql[from + 1..end])).map_err(LobError::Locator)?;
    Ok(Locator {
        schema: r.schema,
        table: r.table,
        column,
        binary: var.ends_with("_b"),
        row: r.before.unwrap_or_default(),
    })
}

/// One LOB write operation.
#[derive(Debug, Clone, PartialEq)]
pub enum LobOp {
    /// Text (CLOB) or hex (BLOB) written at a 1-based offset.
    Write {
        offset: usize,
        data: String,
    },
    Trim {
        len: usize,
    },
    Erase {
        amount: usize,
        offset: usize,
    },
}

fn call_args<'a>(sql: &'a str, name: &str) -> Option<Vec<&'a str>> {
    let lower = sql.to_ascii_lowercase();
    let at = lower.find(name)?;
    let open = at + sql[at..].find('(')?;
    let close = open + sql[open..].find(')')?;
    Some(sql[open + 1..close].split(',').map(str::trim).collect())
}

fn num(s: Option<&&str>, what: &'static str) -> Result<usize, LobError> {
    s.and_then(|s| s.parse().ok())
        .ok_or(LobError::NotANumber { what })
}

/// Reads a `LOB_WRITE`, `LOB_TRIM` or `LOB_ERASE` statement.
pub fn parse_op(sql: &str) -> Result<LobOp, LobError> {
    let lower = sql.to_ascii_lowercase();
    if let Some(args) = call_args(sql, "dbms_lob.write") {
        let offset = num(args.get(2), "the write offset")?;
        // The buffer's assignment: `buf_x := '…';` or `buf_x := HEXTORAW('…');`.
        let assign = lower.find(":=").ok_or(LobError::NoBuffer)?;
        let write_at = lower.find("dbms_lob.write").unwrap_or(sql.len());
        let expr = sql[assign + 2..write_at]
            .trim()
            .trim_end_matches(';')
            .trim();
        // Read the literal with the statement parser.
        let r = redo::parse(&format!("insert into \"X\".\"X\"(\"V\") values ({expr});"))
            .map_err(LobError::Buffer)?;
        let data = r
            .after
            .and_then(|m| m.get("V").cloned())
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        return Ok(LobOp::Write { offset, data });
    }
    if let Some(args) = call_args(sql, "dbms_lob.trim") {
        return Ok(LobOp::Trim {
            len: num(args.get(1), "the trim length")?,
        });
    }
    if let Some(args) = call_args(sql, "dbms_lob.erase") {
        return Ok(LobOp::Erase {
            amount: num(args.get(1), "the erase amount")?,
            offset: num(args.get(2), "the erase offset")?,
        });
    }
    Err(LobError::NotAnOperation)
}

/// A LOB value being put together: characters (CLOB) or bytes (BLOB).
#[derive(Debug, Clone, PartialEq)]
pub enum LobValue {
    Text(Vec<char>),
    Bytes(Vec<u8>),
}

impl LobValue {
    pub fn new(binary: bool) -> Self {
        if binary {
            LobValue::Bytes(Vec::new())
        } else {
            LobValue::Text(Vec::new())
        }
    }

    /// Applies one operation.
    pub fn apply(&mut self, op: &LobOp) -> Result<(), LobError> {
        match (self, op) {
            (LobValue::Text(v), LobOp::Write { offset, data }) => {
                splice(v, offset.saturating_sub(1), data.chars().collect(), ' ')
            }
            (LobValue::Bytes(v), LobOp::Write { offset, data }) => {
                let bytes = crate::source::decode_hex(data).ok_or(LobError::BlobNotHex)?;
                splice(v, offset.saturating_sub(1), bytes, 0)
            }
            (LobValue::Text(v), LobOp::Trim { len }) => v.truncate(*len),
            (LobValue::Bytes(v), LobOp::Trim { len }) => v.truncate(*len),
            (LobValue::Text(v), LobOp::Erase { amount, offset }) => {
                splice(v, offset.saturating_sub(1), vec![' '; *amount], ' ')
            }
            (LobValue::Bytes(v), LobOp::Erase { amount, offset }) => {
                splice(v, offset.saturating_sub(1), vec![0; *amount], 0)
            }
        }
        Ok(())
    }

    /// The value as the statement parser gives values: text, or hex for bytes.
    pub fn to_redo_value(&self) -> Value {
        match self {
            LobValue::Text(v) => Value::String(v.iter().collect()),
            LobValue::Bytes(v) => Value::String(v.iter().map(|b| format!("{b:02x}")).collect()),
        }
    }
}

fn splice<T: Clone>(v: &mut Vec<T>, at: usize, data: Vec<T>, fill: T) {
    if v.len() < at {
        v.resize(at, fill);
    }
    let end = (at + data.len()).min(v.len());
    v.splice(at..end, data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn locators_name_the_column_and_the_row() {
        let l = parse_locator(
            "DECLARE \n loc_c CLOB; \n buf_c VARCHAR2(6156); \n loc_b BLOB; \n buf_b RAW(6156);\nBEGIN\n select \"DOC\" into loc_c from \"SHOP\".\"DOCS\" where \"ID\" = '1' and ROWID = 'AAAR5' for update;",
        )
        .unwrap();
        assert_eq!(
            (
                l.schema.as_str(),
                l.table.as_str(),
                l.column.as_str(),
                l.binary
            ),
            ("SHOP", "DOCS", "DOC", false)
        );
        assert_eq!(Value::Object(l.row), json!({"ID": "1"}));
        let b = parse_locator(
            "BEGIN select \"IMG\" into loc_b from \"S\".\"T\" where \"ID\" = '2' for update;",
        )
        .unwrap();
        assert!(b.binary);
        assert_eq!(
            parse_locator("BEGIN nothing; END;"),
            Err(LobError::NoSelect)
        );
        let e = parse_locator("BEGIN select \"DOC\" loc_c from \"S\".\"T\";").unwrap_err();
        assert_eq!(e.to_string(), "no 'into' in the LOB locator statement");
        let e = parse_locator(
            "BEGIN select \"DOC\" into loc_c from \"S\".\"T\" where \"ID\" = 1 2 for update;",
        )
        .unwrap_err();
        assert!(
            matches!(e, LobError::Locator(RedoError::TrailingText { .. })),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("LOB locator statement: unexpected text after the statement at byte "),
            "{e}"
        );
    }

    #[test]
    fn writes_trims_and_erases_build_the_value() {
        let w =
            parse_op(" buf_c := 'Hello, it''s'; \n  dbms_lob.write(loc_c, 11, 1, buf_c);\nEND;")
                .unwrap();
        assert_eq!(
            w,
            LobOp::Write {
                offset: 1,
                data: "Hello, it's".into()
            }
        );
        let mut v = LobValue::new(false);
        v.apply(&w).unwrap();
        v.apply(
            &parse_op(" buf_c := ' world'; dbms_lob.write(loc_c, 6, 12, buf_c); END;").unwrap(),
        )
        .unwrap();
        assert_eq!(v.to_redo_value(), json!("Hello, it's world"));
        v.apply(&parse_op("dbms_lob.trim(loc_c, 5);").unwrap())
            .unwrap();
        assert_eq!(v.to_redo_value(), json!("Hello"));
        v.apply(&parse_op("dbms_lob.erase(loc_c, 2, 2);").unwrap())
            .unwrap();
        assert_eq!(v.to_redo_value(), json!("H  lo"));
        let mut b = LobValue::new(true);
        b.apply(
            &parse_op(" buf_b := HEXTORAW('0A0B'); dbms_lob.write(loc_b, 2, 1, buf_b); END;")
                .unwrap(),
        )
        .unwrap();
        b.apply(
            &parse_op(" buf_b := HEXTORAW('ff'); dbms_lob.write(loc_b, 1, 4, buf_b); END;")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(b.to_redo_value(), json!("0a0b00ff"));
        let e = parse_op("dbms_lob.write(loc_c, x, y, buf_c);").unwrap_err();
        assert_eq!(
            e,
            LobError::NotANumber {
                what: "the write offset"
            }
        );
        assert_eq!(
            e.to_string(),
            "LOB operation: the write offset is not a number"
        );
        assert_eq!(
            parse_op("dbms_lob.write(loc_c, 1, 1, buf_c);")
                .unwrap_err()
                .to_string(),
            "LOB write without its buffer"
        );
        let e = parse_op(" buf_c := FOO('x'); dbms_lob.write(loc_c, 1, 1, buf_c);").unwrap_err();
        assert!(
            matches!(e, LobError::Buffer(RedoError::UnknownFunction { .. })),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("LOB write buffer: unknown function FOO at byte "),
            "{e}"
        );
        assert_eq!(
            parse_op("something else").unwrap_err().to_string(),
            "not a LOB write, trim or erase"
        );
        let bad_hex = LobOp::Write {
            offset: 1,
            data: "zz".into(),
        };
        assert_eq!(
            LobValue::new(true).apply(&bad_hex),
            Err(LobError::BlobNotHex)
        );
        assert_eq!(
            LobError::BlobNotHex.to_string(),
            "LOB write: the BLOB buffer is not hex"
        );
    }
}
