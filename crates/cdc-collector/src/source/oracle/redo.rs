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
//! A statement it cannot read is an error naming what was wrong and where (byte offset),
//! never a panic.

use serde_json::{Map, Value};

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

fn tokenize(s: &str) -> Result<Vec<(usize, Tok)>, String> {
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
                .ok_or_else(|| format!("unterminated quoted name at byte {start}"))?;
            out.push((start, Tok::Ident(s[i + 1..i + 1 + end].to_owned())));
            i += end + 2;
        } else if c == b'\'' {
            let start = i;
            let mut text = String::new();
            i += 1;
            loop {
                let rest = &s[i..];
                let Some(q) = rest.find('\'') else {
                    return Err(format!("unterminated literal at byte {start}"));
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

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.at()))
    }

    fn word(&mut self, w: &str) -> Result<(), String> {
        match self.next() {
            Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w) => Ok(()),
            _ => {
                self.i -= 1;
                self.err(&format!("expected {w}"))
            }
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn punct(&mut self, c: char) -> Result<(), String> {
        match self.next() {
            Some(Tok::Punct(x)) if x == c => Ok(()),
            _ => {
                self.i -= 1;
                self.err(&format!("expected '{c}'"))
            }
        }
    }

    fn is_punct(&self, c: char) -> bool {
        matches!(self.peek(), Some(Tok::Punct(x)) if *x == c)
    }

    fn name(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Ident(s)) => Ok(s),
            Some(Tok::Word(s)) => Ok(s),
            _ => {
                self.i -= 1;
                self.err("expected a name")
            }
        }
    }

    /// `"S"."T"` (optionally followed by an alias word).
    fn table(&mut self) -> Result<(String, String), String> {
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
    fn column(&mut self) -> Result<String, String> {
        let first = self.name()?;
        if self.is_punct('.') {
            self.i += 1;
            return self.name();
        }
        Ok(first)
    }

    fn value(&mut self) -> Result<Value, String> {
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
                _ => Err(format!("expected a number after '-' at byte {at}")),
            },
            _ => Err(format!("expected a value at byte {at}")),
        }
    }

    fn function(&mut self, f: &str, at: usize) -> Result<Value, String> {
        self.punct('(')?;
        let mut args = Vec::new();
        while !self.is_punct(')') {
            match self.next() {
                Some(Tok::Str(s)) => args.push(s),
                Some(Tok::Word(w)) => args.push(w),
                Some(Tok::Punct(',')) => {}
                _ => return Err(format!("bad argument of {f} at byte {}", self.at())),
            }
        }
        self.punct(')')?;
        let first = args.first().cloned().unwrap_or_default();
        Ok(match f {
            "EMPTY_CLOB" | "EMPTY_BLOB" => Value::String(String::new()),
            "HEXTORAW" => Value::String(first.to_ascii_lowercase()),
            "UNISTR" => Value::String(
                unistr(&first).ok_or_else(|| format!("bad UNISTR text at byte {at}"))?,
            ),
            "TO_DATE" | "TO_TIMESTAMP" | "TO_TIMESTAMP_TZ" => Value::String(iso(&first)),
            "TO_YMINTERVAL" | "TO_DSINTERVAL" => Value::String(
                super::types::interval_iso(&first)
                    .ok_or_else(|| format!("bad interval text in {f} at byte {at}"))?,
            ),
            _ => return Err(format!("unknown function {f} at byte {at}")),
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
pub fn parse(sql: &str) -> Result<Redo, String> {
    let toks = tokenize(sql)?;
    let mut p = P {
        toks,
        i: 0,
        len: sql.len(),
    };
    let verb = match p.next() {
        Some(Tok::Word(w)) => w.to_ascii_lowercase(),
        _ => return Err("expected insert, update or delete at byte 0".into()),
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
        other => return Err(format!("unsupported statement {other:?} at byte 0")),
    };
    if p.is_punct(';') {
        p.i += 1;
    }
    if p.i < p.toks.len() {
        return p.err("unexpected text after the statement");
    }
    Ok(r)
}

/// `where "A" = '1' and "B" IS NULL and ROWID = '…'` → the row (no ROWID); a missing
/// WHERE gives an empty row.
fn where_clause(p: &mut P) -> Result<Map<String, Value>, String> {
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
            .unwrap_or_else(|e| json!({"error": e}))
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
            let e = parse(bad).unwrap_err();
            assert!(
                e.contains("byte") || e.contains("unsupported"),
                "{bad:?}: {e}"
            );
        }
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
