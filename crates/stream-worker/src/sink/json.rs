//! JSON lines: one object per row, the metadata keys first, then the columns in schema
//! order, each column exactly as `Value::to_json` encodes it. Also [`LineSink`], the raw
//! JSON-lines writer of the dead letters.
//!
//! This is the hot path of the default format, so a line is written by hand into one
//! reused buffer — no `serde_json::Map` per row; serde_json is used only to escape
//! strings. Keys are escaped once when the file is opened. A row is rendered whole
//! before any of it reaches the stream, so a refused value leaves nothing behind.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rtdp_core::model::{ProcessedEvent, TableSchema};
use rtdp_core::types::Value;

use super::compress::OutStream;
use super::{
    check_row, meta_mismatch, mismatch, push_instant_ms, push_text, Compression, FileSink, Kind,
    Misfit, SinkError,
};

/// Appends `s` as a JSON string (quoted, escaped).
#[inline]
pub(crate) fn push_json_str(s: &str, out: &mut Vec<u8>) {
    // Serializing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends the value as `Value::to_json` encodes it for a column of this kind.
#[inline]
fn push_json_value(kind: Kind, v: &Value, out: &mut Vec<u8>) -> Result<(), Misfit> {
    if !kind.fits(v) {
        return Err(Misfit);
    }
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::String(s) => push_json_str(s, out),
        Value::Bool(_) | Value::Int(_) => {
            push_text(kind, v, out)?;
        }
        Value::Float(f) if f.is_finite() => {
            push_text(kind, v, out)?;
        }
        // NaN/Infinity, decimals, base64, dates, times, timestamps: text that needs no
        // escaping, in quotes.
        _ => {
            out.push(b'"');
            push_text(kind, v, out)?;
            out.push(b'"');
        }
    }
    Ok(())
}

/// A JSON-lines file of one table's rows.
#[derive(Debug)]
pub(crate) struct JsonSink {
    schema: Arc<TableSchema>,
    kinds: Vec<Kind>,
    /// `,"<name>":` per column, escaped once.
    keys: Vec<Vec<u8>>,
    out: OutStream,
    line: Vec<u8>,
    rows: u64,
}

impl JsonSink {
    pub(crate) fn create(
        path: &Path,
        schema: Arc<TableSchema>,
        compression: Compression,
    ) -> Result<JsonSink, SinkError> {
        let out = OutStream::create(path, compression)?;
        let kinds = schema.columns.iter().map(Kind::of).collect();
        let keys = schema
            .columns
            .iter()
            .map(|c| {
                let mut k = vec![b','];
                push_json_str(&c.name, &mut k);
                k.push(b':');
                k
            })
            .collect();
        Ok(JsonSink {
            schema,
            kinds,
            keys,
            out,
            line: Vec::with_capacity(1024),
            rows: 0,
        })
    }

    /// Renders `ev` into `self.line` (cleared first).
    fn render(&mut self, ev: &ProcessedEvent) -> Result<(), SinkError> {
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"_event_id\":");
        push_json_str(&ev.event_id, line);
        line.extend_from_slice(b",\"_op\":\"");
        line.extend_from_slice(ev.op.code().as_bytes());
        line.extend_from_slice(b"\",\"_source_position\":");
        push_json_str(&ev.source_position, line);
        line.extend_from_slice(b",\"_source_ts\":\"");
        push_instant_ms(ev.source_ts_ms, line).map_err(|_| meta_mismatch("_source_ts"))?;
        line.extend_from_slice(b"\",\"_processed_at\":\"");
        push_instant_ms(ev.processed_at_ms, line).map_err(|_| meta_mismatch("_processed_at"))?;
        line.push(b'"');
        for (i, v) in ev.values.iter().enumerate() {
            line.extend_from_slice(&self.keys[i]);
            push_json_value(self.kinds[i], v, line)
                .map_err(|_| mismatch(&self.schema.columns[i]))?;
        }
        line.extend_from_slice(b"}\n");
        Ok(())
    }
}

impl FileSink for JsonSink {
    fn write(&mut self, ev: &ProcessedEvent) -> Result<(), SinkError> {
        check_row(&self.schema, ev)?;
        self.render(ev)?;
        self.out.write_all(&self.line)?;
        self.rows += 1;
        Ok(())
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    fn size_estimate(&self) -> u64 {
        self.out.bytes()
    }

    fn finish(self: Box<Self>) -> Result<u64, SinkError> {
        Ok(self.out.finish()?)
    }
}

/// A JSON-lines file of raw lines (the dead letters), with the same stream compression
/// and the same promises as the table sinks: `create_new`, and after `finish` the file
/// is complete and `fsync`ed.
#[derive(Debug)]
pub struct LineSink {
    out: OutStream,
    lines: u64,
}

impl LineSink {
    /// Creates `path` (must not exist). Snappy is refused as for JSON lines.
    pub fn create(path: &Path, compression: Compression) -> Result<LineSink, SinkError> {
        Ok(LineSink {
            out: OutStream::create(path, compression)?,
            lines: 0,
        })
    }

    /// Appends `line` and a newline. A line holding a newline is refused (nothing is
    /// written; the sink stays usable): one record must stay one line.
    pub fn write_line(&mut self, line: &[u8]) -> Result<(), SinkError> {
        if line.contains(&b'\n') {
            return Err(SinkError::ValueMismatch {
                column: "(line)".into(),
                expected: "one line without a newline".into(),
            });
        }
        self.out.write_all(line)?;
        self.out.write_all(b"\n")?;
        self.lines += 1;
        Ok(())
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Bytes that reached the file so far (compressed bytes for gzip/zstd).
    pub fn size_estimate(&self) -> u64 {
        self.out.bytes()
    }

    /// Ends the stream, flushes, `fsync`s; returns the final file size.
    pub fn finish(self) -> Result<u64, SinkError> {
        Ok(self.out.finish()?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{all_types_schema, edge_rows, event};
    use super::super::{open, Format, SinkOptions, META_COLUMNS};
    use super::*;
    use proptest::prelude::*;
    use rtdp_core::types::{Column, ColumnType};
    use std::io::Read;

    fn opts(compression: Compression) -> SinkOptions {
        SinkOptions {
            format: Format::Json,
            compression,
            parquet_row_group_bytes: 1 << 20,
        }
    }

    fn read_lines(path: &Path, compression: Compression) -> Vec<serde_json::Value> {
        let raw = std::fs::read(path).unwrap();
        let mut text = String::new();
        match compression {
            Compression::Gzip => {
                flate2::read::GzDecoder::new(&raw[..])
                    .read_to_string(&mut text)
                    .unwrap();
            }
            Compression::Zstd => {
                text = String::from_utf8(zstd::decode_all(&raw[..]).unwrap()).unwrap()
            }
            _ => text = String::from_utf8(raw).unwrap(),
        }
        assert!(text.is_empty() || text.ends_with('\n'));
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn rows_read_back_as_to_json_with_metadata_first() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f.jsonl");
            let schema = all_types_schema();
            let mut sink = open(&path, schema.clone(), &opts(compression)).unwrap();
            let rows = edge_rows();
            for (n, values) in rows.iter().enumerate() {
                sink.write(&event(&schema, n as i64, values.clone()))
                    .unwrap();
            }
            assert_eq!(sink.rows(), rows.len() as u64);
            let estimate = sink.size_estimate();
            let size = sink.finish().unwrap();
            assert_eq!(size, std::fs::metadata(&path).unwrap().len());
            if compression == Compression::None {
                assert_eq!(estimate, size);
            }
            let lines = read_lines(&path, compression);
            assert_eq!(lines.len(), rows.len());
            for (n, (line, values)) in lines.iter().zip(&rows).enumerate() {
                let obj = line.as_object().unwrap();
                let keys: Vec<&str> = obj.keys().map(|k| k.as_str()).collect();
                let mut expected_keys: Vec<&str> = META_COLUMNS.to_vec();
                expected_keys.extend(schema.columns.iter().map(|c| c.name.as_str()));
                assert_eq!(keys, expected_keys);
                let ev = event(&schema, n as i64, values.clone());
                assert_eq!(obj["_event_id"], ev.event_id.as_str());
                assert_eq!(obj["_op"], ev.op.code());
                assert_eq!(obj["_source_position"], ev.source_position.as_str());
                assert_eq!(obj["_source_ts"], format!("2025-11-24T16:00:00.00{n}Z"));
                assert_eq!(obj["_processed_at"], format!("2025-11-24T16:00:00.50{n}Z"));
                for (col, v) in schema.columns.iter().zip(values) {
                    assert_eq!(obj[&col.name], v.to_json(col), "column {}", col.name);
                }
            }
        }
    }

    #[test]
    fn a_refused_value_writes_nothing_and_the_sink_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        let schema = TableSchema::new(vec![
            Column::new("s", ColumnType::String),
            Column::new("n", ColumnType::Int8),
        ]);
        let mut sink = open(&path, schema.clone(), &opts(Compression::None)).unwrap();
        let bad = event(
            &schema,
            0,
            vec![Value::String("secret".into()), Value::Int(1000)],
        );
        let e = sink.write(&bad).unwrap_err();
        assert!(e.is_row_error());
        assert_eq!(e.to_string(), "column \"n\": value does not fit type int8");
        let wrong_variant = event(&schema, 0, vec![Value::Int(1), Value::Int(1)]);
        assert!(sink.write(&wrong_variant).unwrap_err().is_row_error());
        let short = event(&schema, 0, vec![Value::Null]);
        assert!(sink.write(&short).unwrap_err().is_row_error());
        sink.write(&event(&schema, 1, vec![Value::Null, Value::Int(-3)]))
            .unwrap();
        assert_eq!(sink.rows(), 1);
        sink.finish().unwrap();
        let lines = read_lines(&path, Compression::None);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["n"], -3);
        assert!(lines[0]["s"].is_null());
    }

    #[test]
    fn line_sink_writes_lines_and_refuses_newlines() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("dlq.jsonl");
            let mut sink = LineSink::create(&path, compression).unwrap();
            sink.write_line(br#"{"a":1}"#).unwrap();
            assert!(sink.write_line(b"x\ny").unwrap_err().is_row_error());
            sink.write_line(br#"{"b":"\n"}"#).unwrap();
            assert_eq!(sink.lines(), 2);
            let size = sink.finish().unwrap();
            assert_eq!(size, std::fs::metadata(&path).unwrap().len());
            let lines = read_lines(&path, compression);
            assert_eq!(
                lines,
                vec![serde_json::json!({"a":1}), serde_json::json!({"b":"\n"})]
            );
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(LineSink::create(&dir.path().join("x"), Compression::Snappy).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_strings_and_names_survive_a_round_trip(
            name in "\\PC{1,12}",
            values in proptest::collection::vec(any::<Option<String>>(), 1..20),
        ) {
            prop_assume!(!name.starts_with('_'));
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.jsonl");
            let schema = TableSchema::new(vec![
                Column::new(name.clone(), ColumnType::String),
                Column::new(format!("{name}2"), ColumnType::Json),
            ]);
            let mut sink = open(&path, schema.clone(), &opts(Compression::None)).unwrap();
            for (n, v) in values.iter().enumerate() {
                let v = v.clone().map_or(Value::Null, Value::String);
                sink.write(&event(&schema, n as i64, vec![v.clone(), v])).unwrap();
            }
            sink.finish().unwrap();
            let lines = read_lines(&path, Compression::None);
            prop_assert_eq!(lines.len(), values.len());
            for (line, v) in lines.iter().zip(&values) {
                let expected = v.clone().map_or(serde_json::Value::Null, serde_json::Value::String);
                prop_assert_eq!(&line[&name], &expected);
                prop_assert_eq!(&line[&format!("{name}2")], &expected);
            }
        }
    }
}
