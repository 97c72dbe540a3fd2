//! The PostgreSQL side of `cdc-collector verify`: reads the captured tables (the same
//! selection and type conversion as the collector) in one REPEATABLE READ snapshot, and
//! hands them to [`crate::verify`] with the output folder.

use std::path::Path;

use rtdp_core::types::Value;

use super::types::{array_to_json, text_to_value, PgKind};
use super::{pg_err, q_ident, rows, PgSettings, PostgresSource};
use crate::verify::{verify_table, Report, SourceTable};

/// Reads every captured table and compares it with the files under `output_root`.
pub fn run(s: &PgSettings, output_root: &Path) -> anyhow::Result<Report> {
    let mut src = PostgresSource::new(s.clone());
    let client = src.connect().map_err(|e| anyhow::anyhow!("{e}"))?;
    src.client = Some(client);
    src.load_tables().map_err(|e| anyhow::anyhow!("{e}"))?;
    let tables = src.captured.clone();
    let client = src
        .client
        .as_mut()
        .ok_or_else(|| anyhow::anyhow!("not connected"))?;
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .map_err(|e| anyhow::anyhow!("{}", pg_err("starting a snapshot", &e)))?;
    let mut report = Report { tables: Vec::new() };
    for t in &tables {
        let name = t.to_string();
        let meta = &src.tables[&name];
        let fetched = rows(
            client
                .simple_query(&format!(
                    "SELECT * FROM ONLY {}.{}",
                    q_ident(&t.schema),
                    q_ident(&t.table)
                ))
                .map_err(|e| anyhow::anyhow!("{}", pg_err(&format!("reading {name}"), &e)))?,
        );
        let mut data = Vec::with_capacity(fetched.len());
        for r in &fetched {
            let mut vals = Vec::with_capacity(meta.shape.columns.len());
            for (i, c) in meta.shape.columns.iter().enumerate() {
                let text = r.get(i);
                vals.push(match text {
                    None => Value::Null,
                    Some(text) => match meta.kinds[i] {
                        PgKind::Plain => text_to_value(c, text)
                            .unwrap_or_else(|_| Value::String(text.to_owned())),
                        k => Value::String(
                            array_to_json(text, k)
                                .map(|j| j.to_string())
                                .unwrap_or_else(|| text.to_owned()),
                        ),
                    },
                });
            }
            data.push(vals);
        }
        let st = SourceTable {
            schema: t.schema.clone(),
            table: t.table.clone(),
            columns: meta.shape.columns.as_ref().clone(),
            rows: data,
        };
        report.tables.push(verify_table(output_root, &st)?);
    }
    let _ = client.batch_execute("COMMIT");
    Ok(report)
}
