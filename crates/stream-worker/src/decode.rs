//! Envelope decoding: Kafka value bytes → a typed, transformed [`ProcessedEvent`].
//!
//! Accepts three shapes, told apart by their keys:
//! - our own [`ChangeEvent`](rtdp_core::model::ChangeEvent) (has `eventId`; column types
//!   in `columns`);
//! - Debezium's JsonConverter with `schemas.enable=true` (`{"schema":…,"payload":…}`): the
//!   Connect schema of `after`/`before` gives the column types, including the logical
//!   types `io.debezium.time.*`, `org.apache.kafka.connect.data.{Decimal,Date,Time,Timestamp}`;
//! - Debezium with `schemas.enable=false` (the bare payload): no types travel, so they are
//!   inferred from the JSON (integers → int64, fractions → float64, text → string,
//!   objects/arrays → json); a column that is null keeps the type it last had.
//!
//! Also decides the *dedup position*: a position that grows in emission order (ours:
//! commit, tx, index; Debezium PostgreSQL: `source.sequence`, shared by the two halves of a
//! key change), or none (Debezium Oracle/MySQL, and every snapshot read of a foreign
//! connector), with the change's digest — the rule is [`crate::dedup`]'s, the table of
//! sources docs/OUTPUT.md's.
//!
//! Decimals are exact at any width: a `VariableScaleDecimal` (also recognised without a
//! schema by its `{scale, value}` shape) and a Connect `Decimal` wider than 38 digits are
//! exact text; a `Decimal` of at most 38 digits is a typed decimal.
//!
//! Everything here is pure: no I/O, no clock (the caller passes `now_ms`). Errors name the
//! stage, the field and the rule, never a row value.

use crate::dedup::{change_digest, Dedup};
use base64::Engine;
use rtdp_core::ids;
use rtdp_core::model::{Op, Position, ProcessedEvent, Source, TableSchema};
use rtdp_core::types::{
    be_bytes_to_i128, format_decimal_be_bytes, parse_instant_micros, Column, ColumnType, JsonKind,
    Value, ValueError, MAX_DECIMAL_PRECISION,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value as J};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Where in the pipeline a record failed (the `stage` of a dead letter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Bytes are not a JSON object of a known envelope.
    Decode,
    /// The envelope is fine but a value does not fit its column type.
    Convert,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Convert => "convert",
        }
    }
}

/// Why a record could not become an event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("record of {size} bytes exceeds output.maxRecordBytes ({limit})")]
    TooLarge { size: usize, limit: usize },
    #[error("wrong envelope: {0}")]
    Envelope(String),
    #[error("unknown op {0:?} (expected c, u, d or r)")]
    UnknownOp(String),
    #[error(transparent)]
    Value(#[from] ValueError),
}

impl DecodeError {
    pub fn stage(&self) -> Stage {
        match self {
            DecodeError::Value(_) => Stage::Convert,
            _ => Stage::Decode,
        }
    }
}

/// What a record decoded to.
#[derive(Debug)]
pub enum Decoded {
    Event(Box<DecodedEvent>),
    /// A record that carries no row and is skipped on purpose: a Kafka tombstone (null
    /// value), a Debezium truncate (`t`) or message (`m`) event.
    Skip(&'static str),
}

/// One event plus what the commit protocol needs to de-duplicate it.
#[derive(Debug)]
pub struct DecodedEvent {
    pub event: ProcessedEvent,
    /// Source key, position and change digest, when the source has a position that grows
    /// in emission order (the rule: [`crate::dedup`]).
    pub dedup: Option<Dedup>,
}

/// Where the record sits in Kafka (for ids of foreign events and error reports).
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Entries of the raw-text schema caches (tables seen recently).
const COLUMNS_CACHE: usize = 64;

/// The top level of any envelope, each part kept as raw JSON text until needed.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    op: Option<&'a RawValue>,
    #[serde(borrow, default)]
    before: Option<&'a RawValue>,
    #[serde(borrow, default)]
    after: Option<&'a RawValue>,
    #[serde(borrow, default)]
    source: Option<&'a RawValue>,
    #[serde(rename = "eventId", borrow, default)]
    event_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    columns: Option<&'a RawValue>,
    #[serde(borrow, default)]
    schema: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

/// A Debezium row struct's fields with how to read each, and the interned schema.
#[derive(Debug)]
struct ConnectRow {
    fields: Vec<(Column, Conv)>,
    table: Arc<TableSchema>,
}

/// Converts a row object's JSON text straight into typed values in column order.
/// A missing column is null; a column not in `cols` is an envelope error.
fn typed_row(cols: &[Column], text: &str, row_key: &str) -> Result<Vec<Value>, DecodeError> {
    let failed = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = RowSeed {
        cols,
        failed: &failed,
        row_key,
    };
    let values = match serde::de::DeserializeSeed::deserialize(seed, &mut de) {
        Ok(v) => v,
        Err(e) => {
            return Err(match failed.into_inner() {
                Some(f) => f,
                None => DecodeError::Envelope(format!("{row_key}: {}", e.classify_str())),
            })
        }
    };
    for (c, v) in cols.iter().zip(&values) {
        if !c.optional && v.is_null() {
            return Err(DecodeError::Value(ValueError {
                column: c.name.clone(),
                expected: format!("non-null {}", c.ty),
                found: "null".into(),
            }));
        }
    }
    Ok(values)
}

struct RowSeed<'c> {
    cols: &'c [Column],
    failed: &'c std::cell::RefCell<Option<DecodeError>>,
    row_key: &'c str,
}

impl<'de> serde::de::DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Vec<Value>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RowSeed<'_> {
    type Value = Vec<Value>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of column values")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error;
        let mut values = vec![Value::Null; self.cols.len()];
        let mut next = 0;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let idx = if self.cols.get(next).is_some_and(|c| c.name == key) {
                next
            } else {
                match self.cols.iter().position(|c| c.name == key) {
                    Some(i) => i,
                    None => {
                        *self.failed.borrow_mut() = Some(DecodeError::Envelope(format!(
                            "{} has column {key:?} that is not in columns",
                            self.row_key
                        )));
                        return Err(A::Error::custom("unknown column"));
                    }
                }
            };
            next = idx + 1;
            values[idx] = map.next_value_seed(ValueSeed {
                col: &self.cols[idx],
                failed: self.failed,
            })?;
        }
        Ok(values)
    }
}

struct ValueSeed<'c> {
    col: &'c Column,
    failed: &'c std::cell::RefCell<Option<DecodeError>>,
}

impl ValueSeed<'_> {
    fn done<E: serde::de::Error>(&self, r: Result<Value, ValueError>) -> Result<Value, E> {
        r.map_err(|e| {
            *self.failed.borrow_mut() = Some(DecodeError::Value(e));
            E::custom("value does not fit its column")
        })
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.col.ty == ColumnType::Json {
            // Keep JSON columns as their text: a string's content, anything else verbatim.
            let raw: &'de RawValue = Deserialize::deserialize(d)?;
            let t = raw.get();
            return Ok(match t.as_bytes().first() {
                Some(b'n') if t == "null" => Value::Null,
                Some(b'"') => Value::String(
                    serde_json::from_str::<String>(t).map_err(serde::de::Error::custom)?,
                ),
                _ => Value::String(t.to_string()),
            });
        }
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ValueSeed<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a column value")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.done(Value::from_bool_for(self.col, v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.done(Value::from_i64_for(self.col, v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.done(Value::from_u64_for(self.col, v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.done(Value::from_f64_for(self.col, v))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.done(Value::from_str_for(self.col, v))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        self.done(Value::from_structured_for(self.col, JsonKind::Array, ""))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        self.done(Value::from_structured_for(self.col, JsonKind::Object, ""))
    }
}

/// How a Debezium (Connect-schema) value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conv {
    Plain,
    DaysInt,
    MillisToMicros,
    Micros,
    NanosToMicros,
    IsoInstant,
    DecimalBytes,
    /// A Connect `Decimal` wider than a decimal128 can hold (its declared precision is
    /// over 38): exact text at this scale.
    WideDecimal(i32),
    VariableDecimal,
    Base64,
    JsonText,
    Text,
}

/// Decodes records; keeps small caches (interned schemas, inferred column types) between
/// calls. One per partition or per worker; not shared between threads.
#[derive(Debug, Default)]
pub struct Decoder {
    max_record_bytes: usize,
    columns_cache: Vec<(Box<str>, Arc<TableSchema>)>,
    connect_cache: Vec<(Box<str>, String, Arc<ConnectRow>)>,
    schemas: HashMap<Vec<Column>, Arc<TableSchema>>,
    inferred: HashMap<String, HashMap<String, ColumnType>>,
}

impl Decoder {
    pub fn new(max_record_bytes: usize) -> Self {
        Decoder {
            max_record_bytes,
            ..Default::default()
        }
    }

    fn intern(&mut self, columns: Vec<Column>) -> Arc<TableSchema> {
        if let Some(s) = self.schemas.get(&columns) {
            return s.clone();
        }
        if self.schemas.len() > 10_000 {
            self.schemas.clear();
        }
        let s = TableSchema::new(columns.clone());
        self.schemas.insert(columns, s.clone());
        s
    }

    /// Decodes one Kafka record value. `None` is a tombstone.
    pub fn decode(
        &mut self,
        bytes: Option<&[u8]>,
        at: RecordRef<'_>,
        now_ms: i64,
    ) -> Result<Decoded, DecodeError> {
        let bytes = match bytes {
            None => return Ok(Decoded::Skip("tombstone")),
            Some(b) => b,
        };
        if bytes.len() > self.max_record_bytes && self.max_record_bytes > 0 {
            return Err(DecodeError::TooLarge {
                size: bytes.len(),
                limit: self.max_record_bytes,
            });
        }
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
        if first == Some(b'n') && bytes.trim_ascii() == b"null" {
            return Ok(Decoded::Skip("tombstone"));
        }
        let env: Envelope<'_> = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
            serde_json::error::Category::Data if first != Some(b'{') => {
                DecodeError::Envelope("top level is not a JSON object".into())
            }
            serde_json::error::Category::Data => DecodeError::Envelope(e.to_string()),
            _ => DecodeError::NotJson(format!(
                "{} at line {} column {}",
                e.classify_str(),
                e.line(),
                e.column()
            )),
        })?;
        // Debezium with schemas.enable=true: {"schema": {...}, "payload": {...}}
        if let (Some(schema), Some(payload)) = (env.schema, env.payload) {
            let payload: J = serde_json::from_str(payload.get())
                .map_err(|e| DecodeError::Envelope(format!("payload: {}", e.classify_str())))?;
            return match payload {
                J::Object(p) => self.decode_payload(p, Some(schema.get()), at, now_ms),
                J::Null => Ok(Decoded::Skip("tombstone")),
                _ => Err(DecodeError::Envelope("payload is not an object".into())),
            };
        }
        if env.event_id.is_some() {
            return self.decode_ours(env, now_ms);
        }
        let root: J = serde_json::from_slice(bytes)
            .map_err(|e| DecodeError::NotJson(e.classify_str().to_string()))?;
        match root {
            J::Object(root) => self.decode_payload(root, None, at, now_ms),
            _ => Err(DecodeError::Envelope(
                "top level is not a JSON object".into(),
            )),
        }
    }

    /// Our own envelope, the hot path: column types from a small cache keyed by the raw
    /// `columns` text, row values converted straight from the JSON tokens to typed values.
    fn decode_ours(&mut self, env: Envelope<'_>, now_ms: i64) -> Result<Decoded, DecodeError> {
        let op_code: Cow<'_, str> = match env.op {
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|_| DecodeError::Envelope("op is not a string".into()))?,
            None => return Err(DecodeError::Envelope("missing op".into())),
        };
        let op = match Op::from_code(&op_code) {
            Some(op) => op,
            None => return Err(DecodeError::UnknownOp(op_code.into_owned())),
        };
        let event_id: Cow<'_, str> = env
            .event_id
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .filter(|s: &Cow<'_, str>| !s.is_empty())
            .ok_or_else(|| DecodeError::Envelope("eventId is not a non-empty string".into()))?;
        let source_raw = env
            .source
            .filter(|r| r.get().starts_with('{'))
            .ok_or_else(|| DecodeError::Envelope("missing source object".into()))?;
        let src: Source = serde_json::from_str(source_raw.get())
            .map_err(|e| DecodeError::Envelope(format!("source: {e}")))?;
        if src.table.is_empty() {
            return Err(DecodeError::Envelope("source.table is empty".into()));
        }
        let row_key = if op == Op::Delete { "before" } else { "after" };
        let row_raw = if op == Op::Delete {
            env.before
        } else {
            env.after
        };
        let row_raw = match row_raw.filter(|r| r.get() != "null") {
            Some(r) if r.get().starts_with('{') => r,
            None => {
                return Err(DecodeError::Envelope(format!(
                    "{row_key} is missing or null for op {}",
                    op.code()
                )))
            }
            Some(_) => return Err(DecodeError::Envelope(format!("{row_key} is not an object"))),
        };
        let columns = env.columns.filter(|c| c.get() != "null");
        let (schema, values) = match columns {
            Some(raw) => {
                let schema = self.columns_schema(raw.get())?;
                let values = typed_row(&schema.columns, row_raw.get(), row_key)?;
                (schema, values)
            }
            None => {
                let row: Map<String, J> = serde_json::from_str(row_raw.get()).map_err(|e| {
                    DecodeError::Envelope(format!("{row_key}: {}", e.classify_str()))
                })?;
                let qualified = qualified(src.schema.as_deref().or(src.db.as_deref()), &src.table);
                self.infer(&qualified, row)?
            }
        };
        let pos = src.position();
        let position_text = pos.as_ref().map(|p| p.to_string()).unwrap_or_default();
        let source_ts_ms = src.ts_ms;
        let source_key = pos.as_ref().map(|_| src.source_key());
        let schema_name = src.schema.or(src.db);
        let dedup = pos.zip(source_key).map(|(position, source)| Dedup {
            source,
            position,
            change: change_digest(
                op,
                schema_name.as_deref(),
                &src.table,
                row_raw.get().as_bytes(),
            ),
        });
        Ok(Decoded::Event(Box::new(DecodedEvent {
            event: ProcessedEvent {
                event_id: event_id.into_owned(),
                op,
                schema_name,
                table: src.table,
                schema,
                values,
                source_position: position_text,
                source_ts_ms,
                processed_at_ms: now_ms,
            },
            dedup,
        })))
    }

    /// The table schema of a raw `columns` array, from a small most-recently-used cache
    /// compared by exact text (no hashing of the ~1 KB text per event).
    fn columns_schema(&mut self, raw: &str) -> Result<Arc<TableSchema>, DecodeError> {
        if let Some(i) = self
            .columns_cache
            .iter()
            .position(|(text, _)| &**text == raw)
        {
            if i != 0 {
                self.columns_cache.swap(0, i);
            }
            return Ok(self.columns_cache[0].1.clone());
        }
        let cols: Vec<Column> = serde_json::from_str(raw)
            .map_err(|e| DecodeError::Envelope(format!("columns: {e}")))?;
        let schema = self.intern(cols);
        if self.columns_cache.len() >= COLUMNS_CACHE {
            self.columns_cache.pop();
        }
        self.columns_cache.insert(0, (raw.into(), schema.clone()));
        Ok(schema)
    }

    /// Connect schema of `before`/`after` in a Debezium envelope schema, cached by text.
    fn connect_fields(
        &mut self,
        schema_raw: &str,
        row_key: &str,
    ) -> Result<Arc<ConnectRow>, DecodeError> {
        if let Some((_, _, c)) = self
            .connect_cache
            .iter()
            .find(|(text, key, _)| key == row_key && &**text == schema_raw)
        {
            return Ok(c.clone());
        }
        let schema: J = serde_json::from_str(schema_raw)
            .map_err(|e| DecodeError::Envelope(format!("schema: {}", e.classify_str())))?;
        let fields = connect_row_fields(&schema, row_key)?;
        let table = self.intern(fields.iter().map(|(c, _)| c.clone()).collect());
        let row = Arc::new(ConnectRow { fields, table });
        if self.connect_cache.len() >= COLUMNS_CACHE {
            self.connect_cache.remove(0);
        }
        self.connect_cache
            .push((schema_raw.into(), row_key.to_string(), row.clone()));
        Ok(row)
    }

    fn decode_payload(
        &mut self,
        mut p: Map<String, J>,
        connect_schema: Option<&str>,
        at: RecordRef<'_>,
        now_ms: i64,
    ) -> Result<Decoded, DecodeError> {
        let op_code = match p.get("op") {
            Some(J::String(s)) => s.clone(),
            Some(_) => return Err(DecodeError::Envelope("op is not a string".into())),
            None => return Err(DecodeError::Envelope("missing op".into())),
        };
        let op = match Op::from_code(&op_code) {
            Some(op) => op,
            None if op_code == "t" => return Ok(Decoded::Skip("truncate")),
            None if op_code == "m" => return Ok(Decoded::Skip("message")),
            None => return Err(DecodeError::UnknownOp(op_code)),
        };
        let source = match p.remove("source") {
            Some(J::Object(s)) => s,
            _ => return Err(DecodeError::Envelope("missing source object".into())),
        };
        let source = &source;
        let row_key = if op == Op::Delete { "before" } else { "after" };
        let row = match p.remove(row_key) {
            Some(J::Object(r)) => r,
            Some(J::Null) | None => {
                return Err(DecodeError::Envelope(format!(
                    "{row_key} is missing or null for op {}",
                    op.code()
                )))
            }
            Some(_) => return Err(DecodeError::Envelope(format!("{row_key} is not an object"))),
        };

        let schema_name = str_field(source, "schema").or_else(|| str_field(source, "db"));
        let table = str_field(source, "table")
            .ok_or_else(|| DecodeError::Envelope("source.table is missing".into()))?;
        let (position_text, position) = foreign_position(source);
        let dedup = position.map(|(key, position)| {
            // The row image as the converter wrote it (key order kept), for the digest.
            let row_json = serde_json::to_vec(&row).unwrap_or_default();
            Dedup {
                source: key,
                position,
                change: change_digest(op, schema_name.as_deref(), &table, &row_json),
            }
        });
        let (schema, values) = match connect_schema {
            Some(cs) => convert_connect(&*self.connect_fields(cs, row_key)?, &row)?,
            None => self.infer(&qualified(schema_name.as_deref(), &table), row)?,
        };
        let event_id = match &dedup {
            // The two halves of a key change share one position: the delete takes index 1.
            Some(d) => ids::event_id(
                &d.source,
                &d.position.to_string(),
                u64::from(op == Op::Delete),
            ),
            None => ids::record_id(at.topic, at.partition, at.offset),
        };
        let source_ts_ms = source.get("ts_ms").and_then(J::as_i64).unwrap_or(0);
        Ok(Decoded::Event(Box::new(DecodedEvent {
            event: ProcessedEvent {
                event_id,
                op,
                schema_name,
                table,
                schema,
                values,
                source_position: position_text,
                source_ts_ms,
                processed_at_ms: now_ms,
            },
            dedup,
        })))
    }

    /// Types inferred from the JSON itself (schemaless payloads).
    fn infer(
        &mut self,
        table: &str,
        row: Map<String, J>,
    ) -> Result<(Arc<TableSchema>, Vec<Value>), DecodeError> {
        let memory = self.inferred.entry(table.to_string()).or_default();
        let mut cols = Vec::with_capacity(row.len());
        let mut vals = Vec::with_capacity(row.len());
        for (name, v) in row {
            // Debezium's VariableScaleDecimal keeps its shape without a schema: exact text.
            if let Some(text) = v.as_object().and_then(variable_scale_decimal) {
                memory.insert(name.clone(), ColumnType::String);
                cols.push(Column::new(name, ColumnType::String));
                vals.push(Value::String(text));
                continue;
            }
            let seen = memory.get(&name).copied();
            let ty = match (&v, seen) {
                (J::Null, Some(t)) => t,
                (J::Null, None) => ColumnType::String,
                (J::Bool(_), _) => ColumnType::Boolean,
                (J::Number(n), Some(ColumnType::Float64))
                    if n.is_f64() || n.is_i64() || n.is_u64() =>
                {
                    ColumnType::Float64
                }
                (J::Number(n), _) if n.is_i64() => ColumnType::Int64,
                (J::Number(_), _) => ColumnType::Float64,
                (J::String(_), _) => ColumnType::String,
                (J::Array(_) | J::Object(_), _) => ColumnType::Json,
            };
            memory.insert(name.clone(), ty);
            let col = Column::new(name, ty);
            let val = match (&v, ty) {
                (J::Number(n), ColumnType::Float64) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
                (J::Null, _) => Value::Null,
                _ => Value::from_json(&col, &v)?,
            };
            cols.push(col);
            vals.push(val);
        }
        Ok((self.intern(cols), vals))
    }
}

fn convert_connect(
    connect: &ConnectRow,
    row: &Map<String, J>,
) -> Result<(Arc<TableSchema>, Vec<Value>), DecodeError> {
    let fields = &connect.fields;
    let mut vals = Vec::with_capacity(fields.len());
    for (col, conv) in fields {
        let v = row.get(&col.name).unwrap_or(&J::Null);
        vals.push(connect_value(col, *conv, v)?);
    }
    for k in row.keys() {
        if !fields.iter().any(|(c, _)| &c.name == k) {
            return Err(DecodeError::Envelope(format!(
                "row has field {k:?} that the schema lacks"
            )));
        }
    }
    Ok((connect.table.clone(), vals))
}

fn qualified(schema: Option<&str>, table: &str) -> String {
    match schema {
        Some(s) if !s.is_empty() => format!("{s}.{table}"),
        _ => table.to_string(),
    }
}

fn str_field(o: &Map<String, J>, k: &str) -> Option<String> {
    match o.get(k) {
        Some(J::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn is_snapshot(source: &Map<String, J>) -> bool {
    match source.get("snapshot") {
        Some(J::Bool(b)) => *b,
        Some(J::String(s)) => s != "false",
        _ => false,
    }
}

/// The position text of a foreign (Debezium) event and, where it strictly grows in
/// emission order, its dedup position.
fn foreign_position(source: &Map<String, J>) -> (String, Option<(String, Position)>) {
    let connector = source.get("connector").and_then(J::as_str).unwrap_or("");
    let name = source.get("name").and_then(J::as_str).unwrap_or("");
    let db = source.get("db").and_then(J::as_str).unwrap_or("");
    let text_of = |k: &str| match source.get(k) {
        Some(J::String(s)) => Some(s.clone()),
        Some(J::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let mut parts = Vec::new();
    for k in [
        "sequence",
        "lsn",
        "commit_scn",
        "scn",
        "txId",
        "file",
        "pos",
        "row",
        "gtid",
    ] {
        if let Some(v) = text_of(k) {
            parts.push(format!("{k}={v}"));
        }
    }
    let text = parts.join(",");
    if connector != "postgresql" || is_snapshot(source) {
        return (text, None);
    }
    // Debezium PostgreSQL: sequence = "[\"<last commit lsn>\",\"<lsn>\"]"
    let seq = source
        .get("sequence")
        .and_then(J::as_str)
        .and_then(|s| serde_json::from_str::<Vec<Option<String>>>(s).ok());
    let pos = match seq.as_deref() {
        Some([commit, Some(lsn)]) => {
            let commit = commit
                .as_deref()
                .map_or(Some(0), |c| c.parse::<u128>().ok());
            match (commit, lsn.parse::<u128>().ok()) {
                (Some(c), Some(l)) => Some(Position {
                    commit: c,
                    tx: String::new(),
                    index: l,
                }),
                _ => None,
            }
        }
        _ => None,
    };
    let key = format!("debezium-{connector}/{name}/{db}");
    (text, pos.map(|p| (key, p)))
}

/// The fields of the `before`/`after` struct in a Debezium envelope schema.
fn connect_row_fields(schema: &J, row_key: &str) -> Result<Vec<(Column, Conv)>, DecodeError> {
    let fields = schema
        .get("fields")
        .and_then(J::as_array)
        .ok_or_else(|| DecodeError::Envelope("schema has no fields".into()))?;
    let row = fields
        .iter()
        .find(|f| f.get("field").and_then(J::as_str) == Some(row_key))
        .ok_or_else(|| DecodeError::Envelope(format!("schema has no {row_key} field")))?;
    let cols = row
        .get("fields")
        .and_then(J::as_array)
        .ok_or_else(|| DecodeError::Envelope(format!("schema of {row_key} has no fields")))?;
    cols.iter().map(connect_column).collect()
}

/// Connect/Debezium temporal logical types: (schema name, our type, how to read it).
const TEMPORAL_LOGICAL_TYPES: &[(&str, ColumnType, Conv)] = &[
    ("io.debezium.time.Date", ColumnType::Date, Conv::DaysInt),
    (
        "org.apache.kafka.connect.data.Date",
        ColumnType::Date,
        Conv::DaysInt,
    ),
    (
        "io.debezium.time.Time",
        ColumnType::Time,
        Conv::MillisToMicros,
    ),
    (
        "org.apache.kafka.connect.data.Time",
        ColumnType::Time,
        Conv::MillisToMicros,
    ),
    ("io.debezium.time.MicroTime", ColumnType::Time, Conv::Micros),
    (
        "io.debezium.time.NanoTime",
        ColumnType::Time,
        Conv::NanosToMicros,
    ),
    (
        "io.debezium.time.Timestamp",
        ColumnType::Timestamp,
        Conv::MillisToMicros,
    ),
    (
        "org.apache.kafka.connect.data.Timestamp",
        ColumnType::Timestamp,
        Conv::MillisToMicros,
    ),
    (
        "io.debezium.time.MicroTimestamp",
        ColumnType::Timestamp,
        Conv::Micros,
    ),
    (
        "io.debezium.time.NanoTimestamp",
        ColumnType::Timestamp,
        Conv::NanosToMicros,
    ),
    (
        "io.debezium.time.ZonedTimestamp",
        ColumnType::Timestamptz,
        Conv::IsoInstant,
    ),
];

fn connect_column(f: &J) -> Result<(Column, Conv), DecodeError> {
    let name = f
        .get("field")
        .and_then(J::as_str)
        .ok_or_else(|| DecodeError::Envelope("schema field without a name".into()))?;
    let ty = f.get("type").and_then(J::as_str).unwrap_or("");
    let logical = f.get("name").and_then(J::as_str).unwrap_or("");
    let optional = f.get("optional").and_then(J::as_bool).unwrap_or(true);
    let params = f.get("parameters");
    let param = |k: &str| params.and_then(|p| p.get(k)).and_then(J::as_str);
    let mut col = Column::new(name, ColumnType::String);
    col.optional = optional;
    if let Some((_, ty, conv)) = TEMPORAL_LOGICAL_TYPES
        .iter()
        .find(|(n, _, _)| *n == logical)
    {
        col.ty = *ty;
        return Ok((col, *conv));
    }
    let conv = match logical {
        "org.apache.kafka.connect.data.Decimal" => {
            let scale: i32 = param("scale").and_then(|s| s.parse().ok()).unwrap_or(0);
            let precision: u32 = param("connect.decimal.precision")
                .and_then(|s| s.parse().ok())
                .unwrap_or(MAX_DECIMAL_PRECISION.into());
            let (Ok(precision), Ok(scale)) = (u8::try_from(precision), i8::try_from(scale)) else {
                col.ty = ColumnType::String;
                return Ok((col, Conv::WideDecimal(scale)));
            };
            if precision > MAX_DECIMAL_PRECISION {
                col.ty = ColumnType::String;
                return Ok((col, Conv::WideDecimal(scale.into())));
            }
            col = Column {
                optional,
                ..Column::decimal(name, precision, scale)
            };
            Conv::DecimalBytes
        }
        "io.debezium.data.VariableScaleDecimal" => Conv::VariableDecimal,
        "io.debezium.data.Json" => {
            col.ty = ColumnType::Json;
            Conv::Text
        }
        _ => match ty {
            "boolean" => {
                col.ty = ColumnType::Boolean;
                Conv::Plain
            }
            "int8" | "int16" | "int32" | "int64" => {
                col.ty = match ty {
                    "int8" => ColumnType::Int8,
                    "int16" => ColumnType::Int16,
                    "int32" => ColumnType::Int32,
                    _ => ColumnType::Int64,
                };
                Conv::Plain
            }
            "float32" | "float" => {
                col.ty = ColumnType::Float32;
                Conv::Plain
            }
            "float64" | "double" => {
                col.ty = ColumnType::Float64;
                Conv::Plain
            }
            "bytes" => {
                col.ty = ColumnType::Binary;
                Conv::Base64
            }
            "string" => Conv::Text,
            "array" | "map" | "struct" => {
                col.ty = ColumnType::Json;
                Conv::JsonText
            }
            other => {
                return Err(DecodeError::Envelope(format!(
                    "field {name:?} has unsupported Connect type {other:?}"
                )))
            }
        },
    };
    Ok((col, conv))
}

fn connect_value(col: &Column, conv: Conv, v: &J) -> Result<Value, DecodeError> {
    if v.is_null() {
        if !col.optional {
            return Err(DecodeError::Value(ValueError {
                column: col.name.clone(),
                expected: format!("non-null {}", col.ty),
                found: "null".into(),
            }));
        }
        return Ok(Value::Null);
    }
    let bad = |what: &str| {
        DecodeError::Value(ValueError {
            column: col.name.clone(),
            expected: format!("{} ({what})", col.ty),
            found: kind(v).into(),
        })
    };
    let int = || v.as_i64().ok_or_else(|| bad("integer"));
    Ok(match conv {
        Conv::Plain | Conv::Text => match (col.ty, v) {
            (ColumnType::Float32 | ColumnType::Float64, J::Number(n)) => {
                Value::Float(n.as_f64().ok_or_else(|| bad("number"))?)
            }
            (ColumnType::Json, J::String(s)) => Value::String(s.clone()),
            _ => Value::from_json(col, v)?,
        },
        Conv::DaysInt => Value::Date(i32::try_from(int()?).map_err(|_| bad("days since epoch"))?),
        Conv::MillisToMicros => micros_value(
            col.ty,
            int()?
                .checked_mul(1000)
                .ok_or_else(|| bad("milliseconds"))?,
        ),
        Conv::Micros => micros_value(col.ty, int()?),
        Conv::NanosToMicros => micros_value(col.ty, int()?.div_euclid(1000)),
        Conv::IsoInstant => Value::Timestamp(
            v.as_str()
                .and_then(parse_instant_micros)
                .ok_or_else(|| bad("ISO-8601 instant with offset"))?,
        ),
        Conv::DecimalBytes => {
            let b = v
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .ok_or_else(|| bad("base64 two's-complement bytes"))?;
            let unscaled = be_bytes_to_i128(&b).ok_or_else(|| bad("at most 16 bytes"))?;
            let precision = col.precision.unwrap_or(MAX_DECIMAL_PRECISION) as u32;
            if rtdp_core::types::decimal_digits(unscaled) > precision {
                return Err(bad("more digits than the precision allows"));
            }
            Value::Decimal(unscaled)
        }
        Conv::WideDecimal(scale) => {
            let b = v
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .ok_or_else(|| bad("base64 two's-complement bytes"))?;
            Value::String(format_decimal_be_bytes(&b, scale))
        }
        Conv::VariableDecimal => match v {
            // io.debezium.data.VariableScaleDecimal: {"scale": s, "value": base64}, any width.
            J::Object(o) => Value::String(
                variable_scale_decimal(o).ok_or_else(|| bad("{scale, value} of a decimal"))?,
            ),
            J::String(s) => Value::String(s.clone()),
            J::Number(n) => Value::String(n.to_string()),
            _ => return Err(bad("decimal")),
        },
        Conv::Base64 => {
            let s = v.as_str().ok_or_else(|| bad("base64 string"))?;
            Value::Binary(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|_| bad("base64 string"))?,
            )
        }
        Conv::JsonText => Value::String(v.to_string()),
    })
}

/// The exact text of Debezium's `io.debezium.data.VariableScaleDecimal` struct,
/// `{"scale": <int>, "value": <base64 two's-complement bytes>}`, of any width; None when
/// the object is not of that shape.
fn variable_scale_decimal(o: &Map<String, J>) -> Option<String> {
    if o.len() != 2 {
        return None;
    }
    let scale = i32::try_from(o.get("scale")?.as_i64()?).ok()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(o.get("value")?.as_str()?)
        .ok()?;
    Some(format_decimal_be_bytes(&bytes, scale))
}

/// A time of day or a timestamp (by the column's type) from microseconds.
fn micros_value(ty: ColumnType, us: i64) -> Value {
    match ty {
        ColumnType::Time => Value::Time(us),
        _ => Value::Timestamp(us),
    }
}

fn kind(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "boolean",
        J::Number(_) => "number",
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    }
}

trait ClassifyStr {
    fn classify_str(&self) -> &'static str;
}

impl ClassifyStr for serde_json::Error {
    fn classify_str(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "data error",
            serde_json::error::Category::Eof => "unexpected end of input",
        }
    }
}

#[cfg(test)]
mod tests;
