//! Parsing LogMiner's `SQL_REDO` text into row images — groundwork of the Oracle source
//! (its own issue). Pure: no database.
//!
//! What it reads (the statements LogMiner writes with an online-catalog dictionary):
//! - `insert into "S"."T"("A","B") values ('1',NULL);`
//! - `update "S"."T" set "A" = '2', "B" = NULL where "A" = '1' and "B" IS NULL and ROWID = '…';`
//!   — `after` is the WHERE row with the SET clause applied;
//! - `delete from "S"."T" where "A" = '1' and ROWID = '…';`
//!
//! Values: quoted literals as text (`''` unescaped, `||` inside quotes is text), `NULL`
//! and `IS NULL` as null, `TO_DATE` / `TO_TIMESTAMP` / `TO_TIMESTAMP_TZ` as ISO-8601 text,
//! `TO_YMINTERVAL` / `TO_DSINTERVAL` as ISO-8601 durations (`P1Y2M`, `P3DT4H`),
//! `HEXTORAW('..')` as hex text, `UNISTR('..')` decoded, `EMPTY_CLOB()` as `""`,
//! `EMPTY_BLOB()` as `""` (empty), `Unsupported Type` as null; bare numbers as their text.
//! `ROWID` is not a column. Table aliases (`"S"."T" a`) and names with spaces are read.
//! A statement it cannot read is a [`RedoError`] naming what was wrong and where (byte
//! offset), never a panic; it never carries the statement's values.

use serde_json::{Map, Value};

/// Why a statement could not be read. `at` is the byte offset in the statement where
/// reading stopped. The message names keywords, function names and offsets only —
/// never a value of the statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedoError {
    #[error("unterminated quoted name at byte {at}")]
    UnterminatedName { at: usize },
    #[error("unterminated literal at byte {at}")]
    UnterminatedLiteral { at: usize },
    /// A keyword (`into`, `values`, `set`, `from`, `NULL`, `Type`) was expected.
    #[error("expected {word} at byte {at}")]
    ExpectedWord { word: &'static str, at: usize },
    #[error("expected '{punct}' at byte {at}")]
    ExpectedPunct { punct: char, at: usize },
    /// Something else was expected: `a name`, `a value`, `a number after '-'`,
    /// `insert, update or delete`.
    #[error("expected {what} at byte {at}")]
    Expected { what: &'static str, at: usize },
    #[error("bad argument of {function} at byte {at}")]
    BadArgument { function: String, at: usize },
    #[error("bad UNISTR text at byte {at}")]
    BadUnistr { at: usize },
    #[error("bad interval text in {function} at byte {at}")]
    BadInterval { function: String, at: usize },
    #[error("unknown function {name} at byte {at}")]
    UnknownFunction { name: String, at: usize },
    /// The statement's first word is not `insert`, `update` or `delete` (lower-cased).
    #[error("unsupported statement {verb:?} at byte 0")]
    UnsupportedStatement { verb: String },
    #[error("unexpected text after the statement at byte {at}")]
    TrailingText { at: usize },
}

/// As its message (the `parse-redo` tool prints `{"error": "…"}`).
impl serde::Serialize for RedoError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Redo {
    /// `c`, `u` or `d`.
    pub op: &'static str,
    pub schema: String,
    pub table: String,
    pub before: Option<Map<String, Value>>,
    pub after: Option<Map<String, Value>>,
}

impl Redo {
    /// The JSON line `cdc-collector oracle parse-redo` prints.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "op": self.op,
            "schema": self.schema,
            "table": self.table,
            "before": self.before.clone().map(Value::Object),
            "after": self.after.clone().map(Value::Object),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// `"name"` (quotes removed).
    Ident(String),
    /// An unquoted word: keyword, function name, number.
    Word(String),
    /// `'text'` with `''` unescaped.
    Str(String),
    Punct(char),
}

fn tokenize(s: &str) -> Result<Vec<(usize, Tok)>, RedoError> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'"' {
            let start = i;
            let end = s[i + 1..]
                .find('"')
                .ok_or(RedoError::UnterminatedName { at: start })?;
            out.push((start, Tok::Ident(s[i + 1..i + 1 + end].to_owned())));
            i += end + 2;
        } else if c == b'\'' {
            let start = i;
            let mut text = String::new();
            i += 1;
            loop {
                let rest = &s[i..];
                let Some(q) = rest.find('\'') else {
                    return Err(RedoError::UnterminatedLiteral { at: start });
                };
                text.push_str(&rest[..q]);
                i += q + 1;
                if b.get(i) == Some(&b'\'') {
                    text.push('\'');
                    i += 1;
                } else {
                    break;
                }
            }
            out.push((start, Tok::Str(text)));
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            let start = i;
            // A word; `.` joins only digits (numbers) — names are quoted.
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || matches!(b[i], b'_' | b'#' | b'$')
                    || ((b[i] == b'.' || b[i] == b'-' || b[i] == b'+')
                        && s[start..i]
                            .bytes()
                            .all(|x| x.is_ascii_digit() || matches!(x, b'.' | b'e' | b'E'))))
            {
                i += 1;
            }
            out.push((start, Tok::Word(s[start..i].to_owned())));
        } else {
            out.push((i, Tok::Punct(c as char)));
            i += 1;
            // Skip the rest of a multi-byte character outside quotes.
            while i < b.len() && !s.is_char_boundary(i) {
                i += 1;
            }
        }
    }
    Ok(out)
}

struct P {
    toks: Vec<(usize, Tok)>,
    i: usize,
    len: usize,
}

impl P {
    fn at(&self) -> usize {
        self.toks.get(self.i).map_or(self.len, |t| t.0)
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.1)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).map(|t| t.1.clone());
        self.i += 1;
        t
    }

    /// An error of what was expected at the current token.
    fn expected<T>(&self, what: &'static str) -> Result<T, RedoError> {
        Err(RedoError::Expected {
            what,
            at: self.at(),
        })
    }

    fn word(&mut self, w: &'static str) -> Result<(), RedoError> {
        match self.next() {
            Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w) => Ok(()),
            _ => {
                self.i -= 1;
                Err(RedoError::ExpectedWord {
                    word: w,
                    at: self.at(),
                })
            }
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn punct(&mut self, c: char) -> Result<(), RedoError> {
        match self.next() {
            Some(Tok::Punct(x)) if x == c => Ok(()),
            _ => {
                self.i -= 1;
                Err(RedoError::ExpectedPunct {
                    punct: c,
                    at: self.at(),
                })
            }
        }
    }

    fn is_punct(&self, c: char) -> bool {
        matches!(self.peek(), Some(Tok::Punct(x)) if *x == c)
    }

    fn name(&mut self) -> Result<String, RedoError> {
        match self.next() {
            Some(Tok::Ident(s)) => Ok(s),
            Some(Tok::Word(s)) => Ok(s),
            _ => {
                self.i -= 1;
                self.expected("a name")
            }
        }
    }

    /// `"S"."T"` (optionally followed by an alias word).
    fn table(&mut self) -> Result<(String, String), RedoError> {
        let first = self.name()?;
        let (schema, table) = if self.is_punct('.') {
            self.i += 1;
            (first, self.name()?)
        } else {
            (String::new(), first)
        };
        // An alias: a bare word that is not a keyword of what follows.
        if let Some(Tok::Word(w)) = self.peek() {
            if !["set", "where", "values"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k))
            {
                self.i += 1;
            }
        }
        Ok((schema, table))
    }

    /// A column reference, possibly alias-qualified (`a."COL"`).
    fn column(&mut self) -> Result<String, RedoError> {
        let first = self.name()?;
        if self.is_punct('.') {
            self.i += 1;
            return self.name();
        }
        Ok(first)
    }

    fn value(&mut self) -> Result<Value, RedoError> {
        let at = self.at();
        match self.next() {
            Some(Tok::Str(s)) => Ok(Value::String(s)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("NULL") => Ok(Value::Null),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("Unsupported") => {
                self.word("Type")?;
                Ok(Value::Null)
            }
            Some(Tok::Word(w)) if self.is_punct('(') => self.function(&w.to_ascii_uppercase(), at),
            Some(Tok::Word(w))
                if w.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') =>
            {
                Ok(Value::String(w))
            }
            Some(Tok::Punct('-')) => match self.next() {
                Some(Tok::Word(w)) => Ok(Value::String(format!("-{w}"))),
                _ => Err(RedoError::Expected {
                    what: "a number after '-'",
                    at,
                }),
            },
            _ => Err(RedoError::Expected {
                what: "a value",
                at,
            }),
        }
    }

    fn function(&mut self, f: &str, at: usize) -> Result<Value, RedoError> {
        self.punct('(')?;
        let mut args = Vec::new();
        while !self.is_punct(')') {
            match self.next() {
                Some(Tok::Str(s)) => args.push(s),
                Some(Tok::Word(w)) => args.push(w),
                Some(Tok::Punct(',')) => {}
                _ => {
                    return Err(RedoError::BadArgument {
                        function: f.to_owned(),
                        at: self.at(),
                    })
                }
            }
        }
        self.punct(')')?;
        let first = args.first().cloned().unwrap_or_default();
        Ok(match f {
            "EMPTY_CLOB" | "EMPTY_BLOB" => Value::String(String::new()),
            "HEXTORAW" => Value::String(first.to_ascii_lowercase()),
            "UNISTR" => Value::String(unistr(&first).ok_or(RedoError::BadUnistr { at })?),
            "TO_DATE" | "TO_TIMESTAMP" | "TO_TIMESTAMP_TZ" => Value::String(iso(&first)),
            "TO_YMINTERVAL" | "TO_DSINTERVAL" => {
                Value::String(super::types::interval_iso(&first).ok_or_else(|| {
                    RedoError::BadInterval {
                        function: f.to_owned(),
                        at,
                    }
                })?)
            }
            _ => {
                return Err(RedoError::UnknownFunction {
                    name: f.to_owned(),
                    at,
                })
            }
        })
    }
}

/// `2020-01-02 03:04:05.5 +08:00` → `2020-01-02T03:04:05.5+08:00` (LogMiner writes the
/// NLS format it was given; the collector sets ISO formats in its session).
fn iso(s: &str) -> String {
    let s = s.trim();
    let (date_time, tz) = match s.rfind([' ']) {
        Some(i)
            if s[i + 1..].starts_with(['+', '-'])
                || s[i + 1..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic()) =>
        {
            (&s[..i], Some(&s[i + 1..]))
        }
        _ => (s, None),
    };
    let mut out = date_time.replacen(' ', "T", 1);
    if let Some(tz) = tz {
        out.push_str(tz);
    }
    out
}

/// Decodes Oracle's `UNISTR` escapes: `\XXXX` (UTF-16 code units, surrogate pairs
/// joined) and `\\`.
fn unistr(s: &str) -> Option<String> {
    let mut units: Vec<u16> = Vec::new();
    let mut it = s.chars().peekable();
    let mut out = String::new();
    let flush = |units: &mut Vec<u16>, out: &mut String| -> Option<()> {
        if !units.is_empty() {
            out.push_str(&String::from_utf16(units).ok()?);
            units.clear();
        }
        Some(())
    };
    while let Some(c) = it.next() {
        if c == '\\' {
            if it.peek() == Some(&'\\') {
                it.next();
                flush(&mut units, &mut out)?;
                out.push('\\');
                continue;
            }
            let hex: String = (0..4).filter_map(|_| it.next()).collect();
            units.push(u16::from_str_radix(&hex, 16).ok()?);
        } else {
            flush(&mut units, &mut out)?;
            out.push(c);
        }
    }
    flush(&mut units, &mut out)?;
    Some(out)
}

/// Parses one `SQL_REDO` statement.
pub fn parse(sql: &str) -> Result<Redo, RedoError> {
    let toks = tokenize(sql)?;
    let mut p = P {
        toks,
        i: 0,
        len: sql.len(),
    };
    let verb = match p.next() {
        Some(Tok::Word(w)) => w.to_ascii_lowercase(),
        _ => {
            return Err(RedoError::Expected {
                what: "insert, update or delete",
                at: 0,
            })
        }
    };
    let r = match verb.as_str() {
        "insert" => {
            p.word("into")?;
            let (schema, table) = p.table()?;
            p.punct('(')?;
            let mut cols = Vec::new();
            loop {
                cols.push(p.column()?);
                if p.is_punct(',') {
                    p.i += 1;
                } else {
                    break;
                }
            }
            p.punct(')')?;
            p.word("values")?;
            p.punct('(')?;
            let mut after = Map::new();
            for (k, col) in cols.iter().enumerate() {
                if k > 0 {
                    p.punct(',')?;
                }
                after.insert(col.clone(), p.value()?);
            }
            p.punct(')')?;
            Redo {
                op: "c",
                schema,
                table,
                before: None,
                after: Some(after),
            }
        }
        "update" => {
            let (schema, table) = p.table()?;
            p.word("set")?;
            let mut set = Vec::new();
            loop {
                let col = p.column()?;
                p.punct('=')?;
                set.push((col, p.value()?));
                if p.is_punct(',') {
                    p.i += 1;
                } else {
                    break;
                }
            }
            let before = where_clause(&mut p)?;
            let mut after = before.clone();
            for (c, v) in set {
                after.insert(c, v);
            }
            Redo {
                op: "u",
                schema,
                table,
                before: Some(before),
                after: Some(after),
            }
        }
        "delete" => {
            p.word("from")?;
            let (schema, table) = p.table()?;
            let before = where_clause(&mut p)?;
            Redo {
                op: "d",
                schema,
                table,
                before: Some(before),
                after: None,
            }
        }
        other => {
            return Err(RedoError::UnsupportedStatement {
                verb: other.to_owned(),
            })
        }
    };
    if p.is_punct(';') {
        p.i += 1;
    }
    if p.i < p.toks.len() {
        return Err(RedoError::TrailingText { at: p.at() });
    }
    Ok(r)
}

/// `where "A" = '1' and "B" IS NULL and ROWID = '…'` → the row (no ROWID); a missing
/// WHERE gives an empty row.
fn where_clause(p: &mut P) -> Result<Map<String, Value>, RedoError> {
    let mut row = Map::new();
    if !p.is_word("where") {
        return Ok(row);
    }
    p.i += 1;
    loop {
        let col = p.column()?;
        let v = if p.is_word("IS") {
            p.i += 1;
            p.word("NULL")?;
            Value::Null
        } else {
            p.punct('=')?;
            p.value()?
        };
        if !col.eq_ignore_ascii_case("ROWID") {
            row.insert(col, v);
        }
        if p.is_word("and") {
            p.i += 1;
        } else {
            break;
        }
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn j(sql: &str) -> Value {
        parse(sql)
            .map(|r| r.to_json())
            .unwrap_or_else(|e| json!({"error": e.to_string()}))
    }

    #[test]
    fn inserts_updates_deletes() {
        assert_eq!(
            j(r#"insert into "APP"."ORDERS"("ID","NAME","NOTE") values ('1','it''s','a||b');"#),
            json!({"op":"c","schema":"APP","table":"ORDERS","before":null,
                   "after":{"ID":"1","NAME":"it's","NOTE":"a||b"}})
        );
        assert_eq!(
            j(
                r#"update "APP"."ORDERS" set "NAME" = 'b', "NOTE" = NULL where "ID" = '1' and "NAME" = 'a' and "NOTE" IS NULL and ROWID = 'AAAS5bAAEAAAAFbAAA';"#
            ),
            json!({"op":"u","schema":"APP","table":"ORDERS",
                   "before":{"ID":"1","NAME":"a","NOTE":null},
                   "after":{"ID":"1","NAME":"b","NOTE":null}})
        );
        assert_eq!(
            j(r#"update "APP"."T" set "A" = '2';"#),
            json!({"op":"u","schema":"APP","table":"T","before":{},"after":{"A":"2"}})
        );
        assert_eq!(
            j(r#"delete from "APP"."ORDERS" where "ID" = '1' and ROWID = 'AAAS5b';"#),
            json!({"op":"d","schema":"APP","table":"ORDERS","before":{"ID":"1"},"after":null})
        );
        assert_eq!(
            j(r#"delete from "APP"."T";"#),
            json!({"op":"d","schema":"APP","table":"T","before":{},"after":null})
        );
    }

    #[test]
    fn functions_aliases_odd_names_and_numbers() {
        let r = j(
            r#"insert into "APP"."T A"("COL ONE","D","TS","TZ","R","U","C","B","X","N","M") values (UNISTR('\00e9t\00e9 \d83d\de00'),TO_DATE('2020-01-02 03:04:05', 'YYYY-MM-DD HH24:MI:SS'),TO_TIMESTAMP('2020-01-02 03:04:05.123'),TO_TIMESTAMP_TZ('2020-01-02 03:04:05.1 +08:00'),HEXTORAW('DEADBEEF'),Unsupported Type,EMPTY_CLOB(),EMPTY_BLOB(),NULL,12.5,-3);"#,
        );
        assert_eq!(r["table"], "T A");
        let a = &r["after"];
        assert_eq!(a["COL ONE"], "été 😀");
        assert_eq!(a["D"], "2020-01-02T03:04:05");
        assert_eq!(a["TS"], "2020-01-02T03:04:05.123");
        assert_eq!(a["TZ"], "2020-01-02T03:04:05.1+08:00");
        assert_eq!(a["R"], "deadbeef");
        assert_eq!(a["U"], Value::Null);
        assert_eq!(a["C"], "");
        assert_eq!(a["B"], "");
        assert_eq!(a["X"], Value::Null);
        assert_eq!(a["N"], "12.5");
        assert_eq!(a["M"], "-3");
        let r = j(r#"update "APP"."T" a set a."V" = '1' where a."ID" = '7' and ROWID = 'x';"#);
        assert_eq!(r["before"], json!({"ID":"7"}));
        assert_eq!(r["after"], json!({"ID":"7","V":"1"}));
        let r = j(
            r#"insert into "UNKNOWN"."OBJ# 74858"("COL 1","COL 2") values (HEXTORAW('41'),HEXTORAW('42'));"#,
        );
        assert_eq!(r["table"], "OBJ# 74858");
        assert_eq!(r["after"]["COL 1"], "41");
        let r = j(
            r#"insert into "S"."T"("YM","DS") values (TO_YMINTERVAL('+02-03'),TO_DSINTERVAL('-01 02:03:04.500000'));"#,
        );
        assert_eq!(r["after"], json!({"YM": "P2Y3M", "DS": "-P1DT2H3M4.5S"}));
        assert!(parse(r#"insert into "S"."T"("YM") values (TO_YMINTERVAL('x'));"#).is_err());
    }

    #[test]
    fn bad_statements_are_errors_naming_the_place() {
        for bad in [
            "",
            "select 1 from dual",
            r#"insert into "A"."B"("X") values ('1'"#,
            r#"insert into "A"."B"("X") values ('1','2');"#,
            r#"update "A"."B" set "X" = 'unterminated"#,
            r#"delete from "A"."B" where "X" = FOO('1');"#,
            r#"insert into "A"."B"("X") values ('1'); trailing"#,
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("byte") || e.contains("unsupported"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn errors_are_typed_and_their_messages_name_the_place() {
        let cases: [(&str, RedoError, &str); 12] = [
            (
                "",
                RedoError::Expected {
                    what: "insert, update or delete",
                    at: 0,
                },
                "expected insert, update or delete at byte 0",
            ),
            (
                "select 1 from dual",
                RedoError::UnsupportedStatement {
                    verb: "select".into(),
                },
                "unsupported statement \"select\" at byte 0",
            ),
            (
                r#"insert into "A"."B"("X") values ('1'"#,
                RedoError::ExpectedPunct { punct: ')', at: 36 },
                "expected ')' at byte 36",
            ),
            (
                r#"insert "A"."B"("X") values ('1');"#,
                RedoError::ExpectedWord {
                    word: "into",
                    at: 7,
                },
                "expected into at byte 7",
            ),
            (
                r#"update "A"."B" set "X" = 'unterminated"#,
                RedoError::UnterminatedLiteral { at: 25 },
                "unterminated literal at byte 25",
            ),
            (
                r#"delete from "A"."B;"#,
                RedoError::UnterminatedName { at: 16 },
                "unterminated quoted name at byte 16",
            ),
            (
                r#"delete from "A"."B" where "X" = FOO('1');"#,
                RedoError::UnknownFunction {
                    name: "FOO".into(),
                    at: 32,
                },
                "unknown function FOO at byte 32",
            ),
            (
                r#"insert into "A"."B"("X") values (HEXTORAW(;));"#,
                RedoError::BadArgument {
                    function: "HEXTORAW".into(),
                    at: 43,
                },
                "bad argument of HEXTORAW at byte 43",
            ),
            (
                r#"insert into "A"."B"("X") values (TO_YMINTERVAL('x'));"#,
                RedoError::BadInterval {
                    function: "TO_YMINTERVAL".into(),
                    at: 33,
                },
                "bad interval text in TO_YMINTERVAL at byte 33",
            ),
            (
                r#"insert into "A"."B"("X") values (UNISTR('\zzzz'));"#,
                RedoError::BadUnistr { at: 33 },
                "bad UNISTR text at byte 33",
            ),
            (
                r#"insert into "A"."B"("X") values (-);"#,
                RedoError::Expected {
                    what: "a number after '-'",
                    at: 33,
                },
                "expected a number after '-' at byte 33",
            ),
            (
                r#"insert into "A"."B"("X") values ('1'); trailing"#,
                RedoError::TrailingText { at: 39 },
                "unexpected text after the statement at byte 39",
            ),
        ];
        for (sql, want, msg) in cases {
            let e = parse(sql).unwrap_err();
            assert_eq!(e, want, "{sql:?}");
            assert_eq!(e.to_string(), msg, "{sql:?}");
        }
        // The `parse-redo` tool prints the message.
        assert_eq!(
            serde_json::to_value(RedoError::TrailingText { at: 3 }).unwrap(),
            json!("unexpected text after the statement at byte 3")
        );
    }

    fn lit(v: &Option<String>) -> String {
        match v {
            None => "NULL".into(),
            Some(s) => format!("'{}'", s.replace('\'', "''")),
        }
    }

    proptest! {
        #[test]
        fn generated_statements_parse_back_to_their_values(
            vals in proptest::collection::vec(proptest::option::of("[ -~é😀\n]{0,12}"), 1..6),
            newv in proptest::option::of("[ -~]{0,8}"),
        ) {
            let cols: Vec<String> = (0..vals.len()).map(|i| format!("C {i}")).collect();
            let ins = format!(
                r#"insert into "S"."T"({}) values ({});"#,
                cols.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(","),
                vals.iter().map(lit).collect::<Vec<_>>().join(",")
            );
            let r = parse(&ins).unwrap();
            let after = r.after.unwrap();
            for (c, v) in cols.iter().zip(&vals) {
                prop_assert_eq!(&after[c], &v.clone().map_or(Value::Null, Value::String));
            }
            let wh = cols.iter().zip(&vals).map(|(c, v)| match v {
                None => format!("\"{c}\" IS NULL"),
                Some(_) => format!("\"{c}\" = {}", lit(v)),
            }).collect::<Vec<_>>().join(" and ");
            let upd = format!(r#"update "S"."T" set "{}" = {} where {wh} and ROWID = 'AAA';"#, cols[0], lit(&newv));
            let r = parse(&upd).unwrap();
            let before = r.before.unwrap();
            let after = r.after.unwrap();
            for (c, v) in cols.iter().zip(&vals) {
                prop_assert_eq!(&before[c], &v.clone().map_or(Value::Null, Value::String));
            }
            prop_assert_eq!(&after[&cols[0]], &newv.map_or(Value::Null, Value::String));
        }
    }
}
