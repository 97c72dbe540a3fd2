//! CSV (RFC 4180, via the `csv` crate): a header row with the metadata names and the
//! column names in schema order, then one record per row, CRLF line ends, fields quoted
//! only when they hold a quote, comma, CR or LF.
//!
//! Values are the JSON-lines text without JSON quoting: exact decimal digits, ISO dates,
//! times and timestamps (`Z` for timestamptz), base64 binary, `true`/`false`, floats
//! in shortest round-trip form (`NaN`, `Infinity`, `-Infinity`). Null is an empty field —
//! so **CSV cannot tell null from the empty string**; use JSON lines or Parquet where
//! that matters.
//!
//! A row is rendered whole into a reused buffer before the csv writer sees it, so a
//! refused value leaves nothing behind.

use std::path::Path;
use std::sync::Arc;

use rtdp_core::model::{ProcessedEvent, TableSchema};

use super::compress::OutStream;
use super::{
    check_row, meta_mismatch, mismatch, push_instant_ms, push_text, Compression, FileSink, Kind,
    SinkError, META_COLUMNS,
};

/// A CSV file of one table's rows.
#[derive(Debug)]
pub(crate) struct CsvSink {
    schema: Arc<TableSchema>,
    kinds: Vec<Kind>,
    writer: ::csv::Writer<OutStream>,
    /// The fields of the row being written, back to back.
    buf: Vec<u8>,
    /// End offset of each field in `buf`.
    ends: Vec<usize>,
    rows: u64,
}

impl CsvSink {
    pub(crate) fn create(
        path: &Path,
        schema: Arc<TableSchema>,
        compression: Compression,
    ) -> Result<CsvSink, SinkError> {
        let out = OutStream::create(path, compression)?;
        let mut writer = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .from_writer(out);
        let header = META_COLUMNS
            .iter()
            .copied()
            .chain(schema.columns.iter().map(|c| c.name.as_str()));
        if let Err(e) = writer.write_record(header) {
            let _ = std::fs::remove_file(path);
            return Err(e.into());
        }
        let n = META_COLUMNS.len() + schema.columns.len();
        Ok(CsvSink {
            kinds: schema.columns.iter().map(Kind::of).collect(),
            schema,
            writer,
            buf: Vec::with_capacity(1024),
            ends: Vec::with_capacity(n),
            rows: 0,
        })
    }

    /// Renders `ev`'s fields into `buf`/`ends`.
    fn render(&mut self, ev: &ProcessedEvent) -> Result<(), SinkError> {
        let (buf, ends) = (&mut self.buf, &mut self.ends);
        buf.clear();
        ends.clear();
        buf.extend_from_slice(ev.event_id.as_bytes());
        ends.push(buf.len());
        buf.extend_from_slice(ev.op.code().as_bytes());
        ends.push(buf.len());
        buf.extend_from_slice(ev.source_position.as_bytes());
        ends.push(buf.len());
        push_instant_ms(ev.source_ts_ms, buf).map_err(|_| meta_mismatch("_source_ts"))?;
        ends.push(buf.len());
        push_instant_ms(ev.processed_at_ms, buf).map_err(|_| meta_mismatch("_processed_at"))?;
        ends.push(buf.len());
        for (i, v) in ev.values.iter().enumerate() {
            push_text(self.kinds[i], v, buf).map_err(|_| mismatch(&self.schema.columns[i]))?;
            ends.push(buf.len());
        }
        Ok(())
    }
}

impl FileSink for CsvSink {
    fn write(&mut self, ev: &ProcessedEvent) -> Result<(), SinkError> {
        check_row(&self.schema, ev)?;
        self.render(ev)?;
        let buf = &self.buf;
        let mut start = 0;
        let fields = self.ends.iter().map(|&end| {
            let field = &buf[start..end];
            start = end;
            field
        });
        self.writer.write_record(fields)?;
        self.rows += 1;
        Ok(())
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes in the stream plus nothing for the csv writer's own buffer (8 KiB at most).
    fn size_estimate(&self) -> u64 {
        self.writer.get_ref().bytes()
    }

    fn finish(self: Box<Self>) -> Result<u64, SinkError> {
        let out = self.writer.into_inner().map_err(|e| e.into_error())?;
        Ok(out.finish()?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{all_types_schema, edge_rows, event};
    use super::super::{open, Format, SinkOptions};
    use super::*;
    use proptest::prelude::*;
    use rtdp_core::types::{Column, ColumnType, Value};
    use std::io::Read;

    fn opts(compression: Compression) -> SinkOptions {
        SinkOptions {
            format: Format::Csv,
            compression,
            parquet_row_group_bytes: 1 << 20,
        }
    }

    fn read_records(path: &Path, compression: Compression) -> Vec<Vec<String>> {
        let raw = std::fs::read(path).unwrap();
        let mut data = Vec::new();
        match compression {
            Compression::Gzip => {
                flate2::read::GzDecoder::new(&raw[..])
                    .read_to_end(&mut data)
                    .unwrap();
            }
            Compression::Zstd => data = zstd::decode_all(&raw[..]).unwrap(),
            _ => data = raw,
        }
        ::csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&data[..])
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    }

    /// What a CSV field holds for `v`: the JSON text without quotes, empty for null.
    fn expected_field(col: &Column, v: &Value) -> String {
        match v.to_json(col) {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }
    }

    #[test]
    fn header_then_rows_as_plain_text_in_every_compression() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f.csv");
            let schema = all_types_schema();
            let mut sink = open(&path, schema.clone(), &opts(compression)).unwrap();
            let rows = edge_rows();
            for (n, values) in rows.iter().enumerate() {
                sink.write(&event(&schema, n as i64, values.clone()))
                    .unwrap();
            }
            let size = sink.finish().unwrap();
            assert_eq!(size, std::fs::metadata(&path).unwrap().len());
            let records = read_records(&path, compression);
            let mut header = vec![
                "_event_id",
                "_op",
                "_source_position",
                "_source_ts",
                "_processed_at",
            ];
            header.extend(schema.columns.iter().map(|c| c.name.as_str()));
            assert_eq!(records[0], header);
            assert_eq!(records.len(), rows.len() + 1);
            for (n, (rec, values)) in records[1..].iter().zip(&rows).enumerate() {
                let ev = event(&schema, n as i64, values.clone());
                assert_eq!(rec[0], ev.event_id);
                assert_eq!(rec[1], ev.op.code());
                assert_eq!(rec[2], ev.source_position);
                assert_eq!(rec[3], format!("2025-11-24T16:00:00.00{n}Z"));
                assert_eq!(rec[4], format!("2025-11-24T16:00:00.50{n}Z"));
                for (i, (col, v)) in schema.columns.iter().zip(values).enumerate() {
                    assert_eq!(rec[5 + i], expected_field(col, v), "column {}", col.name);
                }
            }
        }
    }

    #[test]
    fn empty_file_has_the_header_and_lines_end_with_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        let schema = TableSchema::new(vec![Column::new("a,b", ColumnType::String)]);
        let sink = open(&path, schema, &opts(Compression::None)).unwrap();
        sink.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "_event_id,_op,_source_position,_source_ts,_processed_at,\"a,b\"\r\n"
        );
    }

    #[test]
    fn a_refused_value_writes_no_partial_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        let schema = TableSchema::new(vec![
            Column::new("s", ColumnType::String),
            Column::decimal("d", 3, 1),
        ]);
        let mut sink = open(&path, schema.clone(), &opts(Compression::None)).unwrap();
        let e = sink
            .write(&event(
                &schema,
                0,
                vec![Value::String("x".into()), Value::Decimal(10_000)],
            ))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "column \"d\": value does not fit type decimal(3,1)"
        );
        sink.write(&event(
            &schema,
            1,
            vec![Value::String("y".into()), Value::Decimal(-5)],
        ))
        .unwrap();
        sink.finish().unwrap();
        let records = read_records(&path, Compression::None);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1][5..], ["y".to_string(), "-0.5".to_string()]);
    }

    proptest! {
        #[test]
        fn arbitrary_strings_survive_a_round_trip(
            values in proptest::collection::vec(any::<Option<String>>(), 1..20),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.csv");
            let schema = TableSchema::new(vec![
                Column::new("s", ColumnType::String),
                Column::new("j", ColumnType::Json),
            ]);
            let mut sink = open(&path, schema.clone(), &opts(Compression::None)).unwrap();
            for (n, v) in values.iter().enumerate() {
                let v = v.clone().map_or(Value::Null, Value::String);
                sink.write(&event(&schema, n as i64, vec![v.clone(), v])).unwrap();
            }
            sink.finish().unwrap();
            let records = read_records(&path, Compression::None);
            prop_assert_eq!(records.len(), values.len() + 1);
            for (rec, v) in records[1..].iter().zip(&values) {
                // null and "" are both the empty field (documented).
                let expected = v.clone().unwrap_or_default();
                prop_assert_eq!(&rec[5], &expected);
                prop_assert_eq!(&rec[6], &expected);
            }
        }
    }
}
