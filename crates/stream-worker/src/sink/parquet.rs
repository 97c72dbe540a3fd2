//! Parquet: typed columns through arrow builders and `parquet::arrow::ArrowWriter`.
//!
//! Rows go into one arrow builder per column; every [`BATCH_ROWS`] rows (and at
//! `finish`) the builders become a `RecordBatch` handed to the writer. Row groups are
//! bounded in bytes, not rows: the writer closes a row group once its estimated encoded
//! size reaches `parquet_row_group_bytes` (parquet's own `max_row_group_bytes`, which
//! checks after every batch and also splits a batch that would overshoot, using the
//! average row size of the open row group; the row-count limit is switched off). The
//! first batch of a row group goes in whole, so a limit below one batch's encoded size
//! gives one row group per batch. Compression is the page codec (uncompressed, gzip level 6,
//! snappy, zstd level 1 — parquet's defaults).
//!
//! Types are in the table of the parent module. A decimal whose precision/scale Parquet
//! cannot hold as a decimal (precision > 38, or scale < 0 or > precision) is written as
//! Utf8 text with the exact digits; its field metadata still says `rtdp.type=decimal`
//! with `rtdp.precision`/`rtdp.scale`.
//!
//! A row is validated whole before any builder is touched, so a refused value leaves
//! the builders consistent and the sink usable.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as Codec, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rtdp_core::model::{ProcessedEvent, TableSchema};
use rtdp_core::types::{format_decimal, Column, ColumnType, Value, MAX_DECIMAL_PRECISION};

use super::compress::create_new;
use super::{
    check_row, meta_mismatch, mismatch, Compression, FileSink, Kind, SinkError, SinkOptions,
    META_COLUMNS,
};

/// Rows per record batch.
pub(crate) const BATCH_ROWS: usize = 8192;

/// Field metadata key holding the rtdp column type.
pub const RTDP_TYPE_KEY: &str = "rtdp.type";

const UTC: &str = "UTC";

/// How a decimal column is stored: `Some((p, s))` as Decimal128(p, s), `None` as text.
fn decimal_storage(col: &Column) -> Option<(u8, i8)> {
    let p = col.precision.unwrap_or(MAX_DECIMAL_PRECISION);
    let s = col.scale.unwrap_or(0);
    ((1..=MAX_DECIMAL_PRECISION).contains(&p) && s >= 0 && s as u8 <= p).then_some((p, s))
}

/// The arrow type of a data column.
pub(crate) fn arrow_type(col: &Column) -> DataType {
    match col.ty {
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Int8 => DataType::Int8,
        ColumnType::Int16 => DataType::Int16,
        ColumnType::Int32 => DataType::Int32,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float32 => DataType::Float32,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Decimal => match decimal_storage(col) {
            Some((p, s)) => DataType::Decimal128(p, s),
            None => DataType::Utf8,
        },
        ColumnType::String | ColumnType::Json => DataType::Utf8,
        ColumnType::Binary => DataType::Binary,
        ColumnType::Date => DataType::Date32,
        ColumnType::Time => DataType::Time64(TimeUnit::Microsecond),
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
    }
}

/// The arrow schema of a file: metadata columns (non-null) then the data columns
/// (nullable), each with its rtdp type in the field metadata.
pub(crate) fn arrow_schema(schema: &TableSchema) -> Schema {
    let meta = |name: &str, ty: DataType, rtdp: &str| {
        Field::new(name, ty, false).with_metadata(HashMap::from([(
            RTDP_TYPE_KEY.to_string(),
            rtdp.to_string(),
        )]))
    };
    let instant = DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()));
    let mut fields = vec![
        meta(META_COLUMNS[0], DataType::Utf8, "string"),
        meta(META_COLUMNS[1], DataType::Utf8, "string"),
        meta(META_COLUMNS[2], DataType::Utf8, "string"),
        meta(META_COLUMNS[3], instant.clone(), "timestamptz"),
        meta(META_COLUMNS[4], instant, "timestamptz"),
    ];
    for col in &schema.columns {
        let mut md = HashMap::from([(RTDP_TYPE_KEY.to_string(), col.ty.as_str().to_string())]);
        if let Some(p) = col.precision {
            md.insert("rtdp.precision".into(), p.to_string());
        }
        if let Some(s) = col.scale {
            md.insert("rtdp.scale".into(), s.to_string());
        }
        fields.push(Field::new(&col.name, arrow_type(col), true).with_metadata(md));
    }
    Schema::new(fields)
}

fn codec(c: Compression) -> Codec {
    match c {
        Compression::None => Codec::UNCOMPRESSED,
        Compression::Gzip => Codec::GZIP(GzipLevel::default()),
        Compression::Snappy => Codec::SNAPPY,
        Compression::Zstd => Codec::ZSTD(ZstdLevel::default()),
    }
}

/// The builder of one data column.
enum ColBuilder {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Dec(Decimal128Builder),
    DecText(StringBuilder, i8),
    Str(StringBuilder),
    Bin(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Ts(TimestampMicrosecondBuilder),
}

fn strings() -> StringBuilder {
    StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16)
}

fn instants() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS).with_timezone(UTC)
}

impl ColBuilder {
    fn new(col: &Column) -> Result<ColBuilder, SinkError> {
        let n = BATCH_ROWS;
        Ok(match col.ty {
            ColumnType::Boolean => ColBuilder::Bool(BooleanBuilder::with_capacity(n)),
            ColumnType::Int8 => ColBuilder::I8(Int8Builder::with_capacity(n)),
            ColumnType::Int16 => ColBuilder::I16(Int16Builder::with_capacity(n)),
            ColumnType::Int32 => ColBuilder::I32(Int32Builder::with_capacity(n)),
            ColumnType::Int64 => ColBuilder::I64(Int64Builder::with_capacity(n)),
            ColumnType::Float32 => ColBuilder::F32(Float32Builder::with_capacity(n)),
            ColumnType::Float64 => ColBuilder::F64(Float64Builder::with_capacity(n)),
            ColumnType::Decimal => match decimal_storage(col) {
                Some((p, s)) => ColBuilder::Dec(
                    Decimal128Builder::with_capacity(n).with_precision_and_scale(p, s)?,
                ),
                None => ColBuilder::DecText(strings(), col.scale.unwrap_or(0)),
            },
            ColumnType::String | ColumnType::Json => ColBuilder::Str(strings()),
            ColumnType::Binary => ColBuilder::Bin(BinaryBuilder::with_capacity(n, n * 16)),
            ColumnType::Date => ColBuilder::Date(Date32Builder::with_capacity(n)),
            ColumnType::Time => ColBuilder::Time(Time64MicrosecondBuilder::with_capacity(n)),
            ColumnType::Timestamp => ColBuilder::Ts(TimestampMicrosecondBuilder::with_capacity(n)),
            ColumnType::Timestamptz => ColBuilder::Ts(instants()),
        })
    }

    /// Appends a value already checked with [`Kind::fits`] (so any other variant than
    /// the column's is `Null`). Returns about how many bytes it adds, unencoded.
    #[inline]
    fn append(&mut self, v: &Value) -> usize {
        let int = || match v {
            Value::Int(i) => Some(*i),
            _ => None,
        };
        let float = || match v {
            Value::Float(f) => Some(*f),
            _ => None,
        };
        match self {
            ColBuilder::Bool(b) => b.append_option(match v {
                Value::Bool(x) => Some(*x),
                _ => None,
            }),
            ColBuilder::I8(b) => b.append_option(int().map(|i| i as i8)),
            ColBuilder::I16(b) => b.append_option(int().map(|i| i as i16)),
            ColBuilder::I32(b) => b.append_option(int().map(|i| i as i32)),
            ColBuilder::I64(b) => b.append_option(int()),
            ColBuilder::F32(b) => b.append_option(float().map(|f| f as f32)),
            ColBuilder::F64(b) => b.append_option(float()),
            ColBuilder::Dec(b) => b.append_option(match v {
                Value::Decimal(u) => Some(*u),
                _ => None,
            }),
            ColBuilder::DecText(b, scale) => match v {
                Value::Decimal(u) => {
                    let text = format_decimal(*u, *scale);
                    b.append_value(&text);
                    return text.len() + 4;
                }
                _ => b.append_null(),
            },
            ColBuilder::Str(b) => match v {
                Value::String(s) => {
                    b.append_value(s);
                    return s.len() + 4;
                }
                _ => b.append_null(),
            },
            ColBuilder::Bin(b) => match v {
                Value::Binary(x) => {
                    b.append_value(x);
                    return x.len() + 4;
                }
                _ => b.append_null(),
            },
            ColBuilder::Date(b) => b.append_option(match v {
                Value::Date(d) => Some(*d),
                _ => None,
            }),
            ColBuilder::Time(b) => b.append_option(match v {
                Value::Time(t) => Some(*t),
                _ => None,
            }),
            ColBuilder::Ts(b) => b.append_option(match v {
                Value::Timestamp(t) => Some(*t),
                _ => None,
            }),
        }
        8
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColBuilder::Bool(b) => Arc::new(b.finish()),
            ColBuilder::I8(b) => Arc::new(b.finish()),
            ColBuilder::I16(b) => Arc::new(b.finish()),
            ColBuilder::I32(b) => Arc::new(b.finish()),
            ColBuilder::I64(b) => Arc::new(b.finish()),
            ColBuilder::F32(b) => Arc::new(b.finish()),
            ColBuilder::F64(b) => Arc::new(b.finish()),
            ColBuilder::Dec(b) => Arc::new(b.finish()),
            ColBuilder::DecText(b, _) | ColBuilder::Str(b) => Arc::new(b.finish()),
            ColBuilder::Bin(b) => Arc::new(b.finish()),
            ColBuilder::Date(b) => Arc::new(b.finish()),
            ColBuilder::Time(b) => Arc::new(b.finish()),
            ColBuilder::Ts(b) => Arc::new(b.finish()),
        }
    }

    fn len(&self) -> usize {
        match self {
            ColBuilder::Bool(b) => b.len(),
            ColBuilder::I8(b) => b.len(),
            ColBuilder::I16(b) => b.len(),
            ColBuilder::I32(b) => b.len(),
            ColBuilder::I64(b) => b.len(),
            ColBuilder::F32(b) => b.len(),
            ColBuilder::F64(b) => b.len(),
            ColBuilder::Dec(b) => b.len(),
            ColBuilder::DecText(b, _) | ColBuilder::Str(b) => b.len(),
            ColBuilder::Bin(b) => b.len(),
            ColBuilder::Date(b) => b.len(),
            ColBuilder::Time(b) => b.len(),
            ColBuilder::Ts(b) => b.len(),
        }
    }
}

/// A Parquet file of one table's rows.
pub(crate) struct ParquetSink {
    schema: Arc<TableSchema>,
    arrow_schema: SchemaRef,
    kinds: Vec<Kind>,
    event_id: StringBuilder,
    op: StringBuilder,
    position: StringBuilder,
    source_ts: TimestampMicrosecondBuilder,
    processed_at: TimestampMicrosecondBuilder,
    cols: Vec<ColBuilder>,
    writer: ArrowWriter<File>,
    rows: u64,
    /// Rows in the builders, not yet handed to the writer.
    pending_rows: usize,
    /// About how many unencoded bytes the builders hold.
    pending_raw: u64,
    /// Unencoded bytes handed to the writer so far.
    written_raw: u64,
    /// Bytes in the file plus the writer's estimate of its open row group, as of the
    /// last batch (so `size_estimate` stays O(1)).
    written_encoded: u64,
}

impl std::fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSink")
            .field("rows", &self.rows)
            .field("pending_rows", &self.pending_rows)
            .field("written_encoded", &self.written_encoded)
            .finish_non_exhaustive()
    }
}

impl ParquetSink {
    pub(crate) fn create(
        path: &Path,
        schema: Arc<TableSchema>,
        opts: &SinkOptions,
    ) -> Result<ParquetSink, SinkError> {
        // Build everything that can fail on the schema before creating the file.
        let arrow_schema = Arc::new(arrow_schema(&schema));
        let cols = schema
            .columns
            .iter()
            .map(ColBuilder::new)
            .collect::<Result<Vec<_>, _>>()?;
        let props = WriterProperties::builder()
            .set_compression(codec(opts.compression))
            .set_max_row_group_row_count(None)
            .set_max_row_group_bytes(Some(opts.parquet_row_group_bytes.max(1)))
            .build();
        let file = create_new(path)?;
        let writer = match ArrowWriter::try_new(file, arrow_schema.clone(), Some(props)) {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(path);
                return Err(e.into());
            }
        };
        Ok(ParquetSink {
            kinds: schema.columns.iter().map(Kind::of).collect(),
            schema,
            arrow_schema,
            event_id: strings(),
            op: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS),
            position: strings(),
            source_ts: instants(),
            processed_at: instants(),
            cols,
            writer,
            rows: 0,
            pending_rows: 0,
            pending_raw: 0,
            written_raw: 0,
            written_encoded: 0,
        })
    }

    /// Hands the builders' rows to the writer as one record batch.
    fn write_batch(&mut self) -> Result<(), SinkError> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.arrow_schema.fields().len());
        arrays.push(Arc::new(self.event_id.finish()));
        arrays.push(Arc::new(self.op.finish()));
        arrays.push(Arc::new(self.position.finish()));
        arrays.push(Arc::new(self.source_ts.finish()));
        arrays.push(Arc::new(self.processed_at.finish()));
        arrays.extend(self.cols.iter_mut().map(ColBuilder::finish));
        let batch = RecordBatch::try_new(self.arrow_schema.clone(), arrays)?;
        self.writer.write(&batch)?;
        self.written_raw += self.pending_raw;
        self.pending_raw = 0;
        self.pending_rows = 0;
        self.written_encoded =
            (self.writer.bytes_written() + self.writer.in_progress_size()) as u64;
        Ok(())
    }
}

impl FileSink for ParquetSink {
    fn write(&mut self, ev: &ProcessedEvent) -> Result<(), SinkError> {
        check_row(&self.schema, ev)?;
        // Validate the whole row first: the builders must never hold part of a row.
        let source_us = ev
            .source_ts_ms
            .checked_mul(1000)
            .ok_or_else(|| meta_mismatch("_source_ts"))?;
        let processed_us = ev
            .processed_at_ms
            .checked_mul(1000)
            .ok_or_else(|| meta_mismatch("_processed_at"))?;
        if let Some(i) = ev
            .values
            .iter()
            .zip(&self.kinds)
            .position(|(v, k)| !k.fits(v))
        {
            return Err(mismatch(&self.schema.columns[i]));
        }

        self.event_id.append_value(&ev.event_id);
        self.op.append_value(ev.op.code());
        self.position.append_value(&ev.source_position);
        self.source_ts.append_value(source_us);
        self.processed_at.append_value(processed_us);
        let mut raw = ev.event_id.len() + ev.source_position.len() + 29;
        for (b, v) in self.cols.iter_mut().zip(&ev.values) {
            raw += b.append(v);
        }
        self.pending_raw += raw as u64;
        self.pending_rows += 1;
        self.rows += 1;
        debug_assert!(self.cols.iter().all(|c| c.len() == self.pending_rows));
        if self.pending_rows >= BATCH_ROWS {
            self.write_batch()?;
        }
        Ok(())
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    /// Encoded bytes as of the last batch, plus the builders' unencoded bytes scaled by
    /// the encoded/unencoded ratio seen so far (1 before the first batch).
    fn size_estimate(&self) -> u64 {
        let ratio = if self.written_raw > 0 {
            self.written_encoded as f64 / self.written_raw as f64
        } else {
            1.0
        };
        self.written_encoded + (self.pending_raw as f64 * ratio) as u64
    }

    fn finish(mut self: Box<Self>) -> Result<u64, SinkError> {
        self.write_batch()?;
        self.writer.finish()?;
        let file = self.writer.inner();
        file.sync_all()?;
        Ok(file.metadata()?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{all_types_schema, edge_rows, event};
    use super::super::{open, Format};
    use super::*;
    use arrow::array::{Array, AsArray, Decimal128Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Date32Type, Float32Type, Float64Type, Int64Type, Int8Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    fn opts(compression: Compression, row_group_bytes: usize) -> SinkOptions {
        SinkOptions {
            format: Format::Parquet,
            compression,
            parquet_row_group_bytes: row_group_bytes,
        }
    }

    fn read(path: &Path) -> (SchemaRef, Vec<RecordBatch>) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
        let schema = builder.schema().clone();
        let batches = builder.build().unwrap().map(|b| b.unwrap()).collect();
        (schema, batches)
    }

    #[test]
    fn every_type_reads_back_typed_in_every_codec() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Zstd,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f.parquet");
            let schema = all_types_schema();
            let mut sink = open(&path, schema.clone(), &opts(compression, 1 << 20)).unwrap();
            let rows = edge_rows();
            for (n, values) in rows.iter().enumerate() {
                sink.write(&event(&schema, n as i64, values.clone()))
                    .unwrap();
            }
            let size = sink.finish().unwrap();
            assert_eq!(size, std::fs::metadata(&path).unwrap().len());

            let (read_schema, batches) = read(&path);
            assert_eq!(
                read_schema.as_ref(),
                &arrow_schema(&schema),
                "{compression:?}"
            );
            assert_eq!(batches.len(), 1);
            let b = &batches[0];
            assert_eq!(b.num_rows(), 3);
            let col = |name: &str| b.column_by_name(name).unwrap().clone();
            assert_eq!(col("_op").as_string::<i32>().value(1), "u");
            let ts = col("_source_ts");
            let ts = ts
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .unwrap();
            assert_eq!(ts.value(2), (1_764_000_000_000 + 2) * 1000);
            assert_eq!(col("i8").as_primitive::<Int8Type>().value(0), i8::MIN);
            assert_eq!(col("i64").as_primitive::<Int64Type>().value(1), i64::MAX);
            assert_eq!(col("f32").as_primitive::<Float32Type>().value(0), -1.5);
            assert!(col("f64").as_primitive::<Float64Type>().value(1).is_nan());
            let dec = col("dec_big");
            let dec = dec.as_any().downcast_ref::<Decimal128Array>().unwrap();
            assert_eq!(dec.value(0), -(10i128.pow(38) - 1));
            assert_eq!(
                dec.value_as_string(0),
                format!("-{}.{}", "9".repeat(28), "9".repeat(10))
            );
            assert_eq!(col("d").as_primitive::<Date32Type>().value(0), -1);
            assert_eq!(
                col("bin").as_binary::<i32>().value(0),
                &[0, 1, 2, 0xff, 0xfe]
            );
            let s = col("s");
            let s = s.as_any().downcast_ref::<StringArray>().unwrap();
            assert_eq!(s.value(1), "");
            assert!(s.is_null(2));
            for c in b.columns() {
                if c.null_count() > 0 {
                    assert_eq!(c.null_count(), 1);
                }
            }
            assert_eq!(b.columns()[5..].iter().filter(|c| c.is_null(2)).count(), 16);
        }
    }

    #[test]
    fn decimals_parquet_cannot_hold_are_exact_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        let schema = TableSchema::new(vec![
            Column::decimal("wide", 40, 2),
            Column::decimal("neg_scale", 5, -2),
        ]);
        let mut sink = open(&path, schema.clone(), &opts(Compression::Snappy, 1 << 20)).unwrap();
        sink.write(&event(
            &schema,
            0,
            vec![Value::Decimal(-123_456), Value::Decimal(12)],
        ))
        .unwrap();
        sink.finish().unwrap();
        let (read_schema, batches) = read(&path);
        assert_eq!(
            read_schema.field_with_name("wide").unwrap().data_type(),
            &DataType::Utf8
        );
        assert_eq!(
            read_schema.field_with_name("wide").unwrap().metadata()[RTDP_TYPE_KEY],
            "decimal"
        );
        let b = &batches[0];
        assert_eq!(b.column(5).as_string::<i32>().value(0), "-1234.56");
        assert_eq!(b.column(6).as_string::<i32>().value(0), "1200");
    }

    #[test]
    fn a_refused_value_leaves_builders_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        let schema = TableSchema::new(vec![
            Column::new("a", ColumnType::Int64),
            Column::new("b", ColumnType::Int16),
        ]);
        let mut sink = open(&path, schema.clone(), &opts(Compression::None, 1 << 20)).unwrap();
        let e = sink
            .write(&event(&schema, 0, vec![Value::Int(1), Value::Int(1 << 20)]))
            .unwrap_err();
        assert_eq!(e.to_string(), "column \"b\": value does not fit type int16");
        let e = sink
            .write(&event(
                &schema,
                0,
                vec![Value::Int(1), Value::String("x".into())],
            ))
            .unwrap_err();
        assert!(e.is_row_error());
        let mut bad_ts = event(&schema, 0, vec![Value::Int(1), Value::Int(1)]);
        bad_ts.processed_at_ms = i64::MAX;
        assert!(sink.write(&bad_ts).unwrap_err().is_row_error());
        sink.write(&event(&schema, 1, vec![Value::Int(7), Value::Null]))
            .unwrap();
        assert_eq!(sink.rows(), 1);
        sink.finish().unwrap();
        let (_, batches) = read(&path);
        assert_eq!(batches[0].num_rows(), 1);
        assert_eq!(batches[0].column(5).as_primitive::<Int64Type>().value(0), 7);
    }

    #[test]
    fn row_groups_are_bounded_in_bytes_and_the_estimate_tracks_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        let schema = TableSchema::new(vec![
            Column::new("id", ColumnType::Int64),
            Column::new("s", ColumnType::String),
        ]);
        // A row group starts with one whole batch (~470 KB here), so the limit is a few
        // batches.
        let limit = 1_500_000;
        let mut sink = open(&path, schema.clone(), &opts(Compression::Snappy, limit)).unwrap();
        let rows = 100_000;
        let mut mid_estimate = 0;
        for n in 0..rows {
            // Incompressible-ish text so the file is a few MB.
            let s = format!(
                "{:x}{:x}",
                (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                n * 31
            );
            sink.write(&event(&schema, n, vec![Value::Int(n), Value::String(s)]))
                .unwrap();
            if n == rows / 2 + 100 {
                mid_estimate = sink.size_estimate();
            }
        }
        let estimate = sink.size_estimate();
        let size = sink.finish().unwrap();
        assert!(
            estimate as f64 > size as f64 * 0.7 && (estimate as f64) < size as f64 * 1.3,
            "estimate {estimate} vs size {size}"
        );
        assert!(
            mid_estimate > size / 3 && mid_estimate < size * 2 / 3,
            "mid {mid_estimate} of {size}"
        );
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let md = reader.metadata();
        assert!(
            md.num_row_groups() > 3,
            "{} row groups",
            md.num_row_groups()
        );
        let total: i64 = (0..md.num_row_groups())
            .map(|i| md.row_group(i).num_rows())
            .sum();
        assert_eq!(total, rows);
        for i in 0..md.num_row_groups() {
            let bytes = md.row_group(i).compressed_size() as usize;
            assert!(bytes <= limit * 11 / 10, "row group {i}: {bytes} bytes");
            if i + 1 < md.num_row_groups() {
                assert!(bytes >= limit / 2, "row group {i}: {bytes} bytes");
            }
        }
    }

    #[test]
    fn an_empty_file_is_a_valid_parquet_file_with_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        let schema = all_types_schema();
        let sink = open(&path, schema.clone(), &opts(Compression::Zstd, 1 << 20)).unwrap();
        sink.finish().unwrap();
        let (read_schema, batches) = read(&path);
        assert_eq!(read_schema.as_ref(), &arrow_schema(&schema));
        assert!(batches.is_empty());
    }
}
