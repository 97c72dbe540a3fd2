//! Table selection: `database.tables` / `database.excludeTables` entries matched against
//! the tables the database has. Pure functions.
//!
//! An entry is `table` (in `database.schema`, or `public` when that is empty) or
//! `schema.table`; a bare `*` means every table of `database.schema` (every schema when
//! that is empty); `*` matches any run of characters and `?` one character,
//! in either part (`sales.*`, `*.orders_202?`, `*`). Names compare exactly (PostgreSQL
//! folds unquoted names to lower case, so write them as the catalog has them).
//! Exclusion wins over inclusion. An entry without a wildcard that matches no table
//! is an error: a typo should stop the collector, not silently capture less.

/// A qualified table name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    pub schema: String,
    pub table: String,
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// One parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub schema: String,
    pub table: String,
    /// The entry as written, for messages.
    pub text: String,
}

impl Pattern {
    /// Parses an entry. An unqualified name is in `default_schema` (`database.schema`),
    /// or in `public` when that is empty; a bare `*` is every table of `default_schema`,
    /// or of every schema when that is empty.
    pub fn parse(entry: &str, default_schema: &str) -> Pattern {
        let entry = entry.trim();
        let default_schema = default_schema.trim();
        let (schema, table) = match entry.split_once('.') {
            Some((s, t)) => (s.to_owned(), t.to_owned()),
            None if entry == "*" && default_schema.is_empty() => ("*".to_owned(), "*".to_owned()),
            None if default_schema.is_empty() => ("public".to_owned(), entry.to_owned()),
            None => (default_schema.to_owned(), entry.to_owned()),
        };
        Pattern {
            schema,
            table,
            text: entry.to_owned(),
        }
    }

    pub fn has_wildcard(&self) -> bool {
        self.schema.contains(['*', '?']) || self.table.contains(['*', '?'])
    }

    pub fn matches(&self, t: &TableName) -> bool {
        glob(&self.schema, &t.schema) && glob(&self.table, &t.table)
    }
}

/// `*` / `?` matching, iterative with backtracking on the last `*`.
pub fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The captured tables among `available`, sorted; or the problems (unknown names, nothing
/// selected) as one message per problem.
pub fn select(
    include: &[&str],
    exclude: &[&str],
    default_schema: &str,
    available: &[TableName],
) -> Result<Vec<TableName>, Vec<String>> {
    let include: Vec<Pattern> = if include.is_empty() {
        vec![Pattern::parse("*", default_schema)]
    } else {
        include
            .iter()
            .map(|e| Pattern::parse(e, default_schema))
            .collect()
    };
    let exclude: Vec<Pattern> = exclude
        .iter()
        .map(|e| Pattern::parse(e, default_schema))
        .collect();
    let mut problems = Vec::new();
    for p in &include {
        if !p.has_wildcard() && !available.iter().any(|t| p.matches(t)) {
            let close: Vec<String> = available
                .iter()
                .filter(|t| {
                    t.table.eq_ignore_ascii_case(&p.table)
                        || (t.schema == p.schema && available.len() <= 20)
                })
                .take(10)
                .map(|t| t.to_string())
                .collect();
            problems.push(format!(
                "database.tables: table \"{}.{}\" (from entry {:?}) does not exist{}",
                p.schema,
                p.table,
                p.text,
                if close.is_empty() {
                    String::new()
                } else {
                    format!("; tables with a similar name: {}", close.join(", "))
                }
            ));
        }
    }
    let mut out: Vec<TableName> = available
        .iter()
        .filter(|t| include.iter().any(|p| p.matches(t)) && !exclude.iter().any(|p| p.matches(t)))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    if out.is_empty() && problems.is_empty() {
        problems.push("database.tables / database.excludeTables select no table at all".to_owned());
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str, n: &str) -> TableName {
        TableName {
            schema: s.into(),
            table: n.into(),
        }
    }

    fn avail() -> Vec<TableName> {
        vec![
            t("public", "orders"),
            t("public", "orders_2024"),
            t("public", "customers"),
            t("sales", "orders"),
            t("sales", "items"),
        ]
    }

    #[test]
    fn glob_matches() {
        assert!(glob("*", ""));
        assert!(glob("orders_202?", "orders_2024"));
        assert!(!glob("orders_202?", "orders_20245"));
        assert!(glob("*s", "orders"));
        assert!(glob("o*r*s", "orders"));
        assert!(!glob("o*x", "orders"));
        assert!(glob("a*b*c", "aXbYbZc"));
    }

    #[test]
    fn selection_by_names_wildcards_and_exclusions() {
        let a = avail();
        assert_eq!(select(&[], &[], "", &a).unwrap().len(), 5);
        assert_eq!(select(&["*"], &[], "", &a).unwrap().len(), 5);
        assert_eq!(
            select(&["*"], &[], "sales", &a).unwrap(),
            vec![t("sales", "items"), t("sales", "orders")],
            "a bare * stays in database.schema"
        );
        assert_eq!(
            select(&["orders"], &[], "", &a).unwrap(),
            vec![t("public", "orders")],
            "unqualified names are in public when no schema is set"
        );
        assert_eq!(
            select(&["orders"], &[], "public", &a).unwrap(),
            vec![t("public", "orders")]
        );
        assert_eq!(
            select(&["*.orders"], &[], "public", &a).unwrap(),
            vec![t("public", "orders"), t("sales", "orders")]
        );
        assert_eq!(
            select(&["sales.*"], &["sales.items"], "public", &a).unwrap(),
            vec![t("sales", "orders")]
        );
        assert_eq!(
            select(&["orders*"], &["orders_????"], "public", &a).unwrap(),
            vec![t("public", "orders")]
        );
        assert_eq!(
            select(&["*"], &["public.*"], "", &a).unwrap(),
            vec![t("sales", "items"), t("sales", "orders")]
        );
    }

    #[test]
    fn unknown_names_and_empty_selections_are_errors() {
        let a = avail();
        let e = select(&["orders", "Customers", "nope.x"], &[], "public", &a).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("\"public.Customers\""), "{e:?}");
        assert!(e[0].contains("public.customers"), "{e:?}");
        assert!(e[1].contains("\"nope.x\""), "{e:?}");
        let e = select(&["zzz*"], &[], "public", &a).unwrap_err();
        assert!(e[0].contains("select no table"), "{e:?}");
    }
}
