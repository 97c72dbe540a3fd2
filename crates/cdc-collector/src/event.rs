//! Building the envelope every rtdp collector publishes (docs/OUTPUT.md): the Kafka key, the deterministic event id, and the split of a primary-key
//! change (or an update of a keyless table) into a delete and an insert.
//!
//! Promises: the key is `<schema>.<table>` plus, for tables with a primary key, `|` and
//! the JSON array of the key values (the row after the change; before it for a delete),
//! so all changes of one row land in one partition in commit order. A row of a keyless
//! table is keyed by its table alone. The event id depends only on (collector, commit
//! position, index), so a change re-read after a crash gets the same id.

use std::sync::Arc;

use rtdp_core::ids::event_id;
use rtdp_core::model::{ChangeEvent, Op, Row, Source};
use rtdp_core::types::Column;

use crate::source::OutEvent;

/// A table's columns and where its key is, shared by all its events.
#[derive(Debug, Clone)]
pub struct TableShape {
    pub schema: String,
    pub table: String,
    pub columns: Arc<Vec<Column>>,
    /// Indexes of the primary-key columns, in key order.
    pub key: Vec<usize>,
    /// The key is not known (Oracle `replay` without a schema): an update stays an update
    /// instead of the delete + insert of a keyless table.
    pub key_unknown: bool,
}

impl TableShape {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    /// The Kafka key of a row image.
    pub fn kafka_key(&self, row: Option<&Row>) -> Vec<u8> {
        let mut k = self.qualified().into_bytes();
        if self.key.is_empty() {
            return k;
        }
        let values: Vec<&serde_json::Value> = self
            .key
            .iter()
            .map(|&i| {
                row.and_then(|r| r.get(&self.columns[i].name))
                    .unwrap_or(&serde_json::Value::Null)
            })
            .collect();
        k.push(b'|');
        // Serializing JSON values into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut k, &values);
        k
    }

    /// Whether the key values of two images differ (a primary-key change).
    pub fn key_changed(&self, before: &Row, after: &Row) -> bool {
        self.key.iter().any(|&i| {
            let n = &self.columns[i].name;
            before.get(n) != after.get(n)
        })
    }
}

/// What a source knows about the change besides its images.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub collector: &'a str,
    /// Source fields without `table`, `schema` and `index` (filled here).
    pub source: &'a Source,
    /// The commit position as text (part of the event id).
    pub commit: &'a str,
}

/// Builds the events of one row change; `next_index` is the change's index in its
/// transaction and is advanced by the number of events made (two for a split update).
pub fn build(
    shape: &TableShape,
    origin: &Origin<'_>,
    op: Op,
    before: Option<Row>,
    after: Option<Row>,
    next_index: &mut u64,
    now_ms: i64,
) -> Vec<OutEvent> {
    let split = op == Op::Update
        && match (&before, &after) {
            (Some(b), Some(a)) => {
                (shape.key.is_empty() && !shape.key_unknown) || shape.key_changed(b, a)
            }
            _ => false,
        };
    if split {
        vec![
            one(shape, origin, Op::Delete, before, None, next_index, now_ms),
            one(shape, origin, Op::Create, None, after, next_index, now_ms),
        ]
    } else {
        vec![one(shape, origin, op, before, after, next_index, now_ms)]
    }
}

fn one(
    shape: &TableShape,
    origin: &Origin<'_>,
    op: Op,
    before: Option<Row>,
    after: Option<Row>,
    next_index: &mut u64,
    now_ms: i64,
) -> OutEvent {
    let index = *next_index;
    *next_index += 1;
    let key = shape.kafka_key(if op == Op::Delete {
        before.as_ref()
    } else {
        after.as_ref()
    });
    let mut source = origin.source.clone();
    source.schema = Some(shape.schema.clone());
    source.table = shape.table.clone();
    source.index = Some(index);
    OutEvent {
        key,
        event: ChangeEvent {
            op,
            before,
            after,
            source,
            ts_ms: now_ms,
            event_id: event_id(origin.collector, origin.commit, index),
            columns: shape.columns.as_ref().clone(),
        },
        payload: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtdp_core::types::ColumnType;
    use serde_json::json;

    fn shape(keyed: bool) -> TableShape {
        let mut id = Column::new("id", ColumnType::Int32);
        id.key = keyed;
        TableShape {
            schema: "public".into(),
            table: "t".into(),
            columns: Arc::new(vec![id, Column::new("v", ColumnType::String)]),
            key: if keyed { vec![0] } else { vec![] },
            key_unknown: false,
        }
    }

    fn row(id: i64, v: &str) -> Row {
        json!({"id": id, "v": v}).as_object().unwrap().clone()
    }

    fn source() -> Source {
        Source {
            connector: "postgresql".into(),
            name: "c1".into(),
            commit_lsn: Some(500),
            ..Default::default()
        }
    }

    #[test]
    fn keys_name_the_table_and_the_key_values() {
        let s = shape(true);
        assert_eq!(s.kafka_key(Some(&row(7, "x"))), b"public.t|[7]".to_vec());
        assert_eq!(
            shape(false).kafka_key(Some(&row(7, "x"))),
            b"public.t".to_vec()
        );
    }

    #[test]
    fn a_key_change_becomes_delete_then_insert_with_consecutive_indexes() {
        let src = source();
        let o = Origin {
            collector: "c1",
            source: &src,
            commit: "500",
        };
        let mut i = 3;
        let ev = build(
            &shape(true),
            &o,
            Op::Update,
            Some(row(1, "a")),
            Some(row(2, "a")),
            &mut i,
            0,
        );
        assert_eq!(i, 5);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].event.op, Op::Delete);
        assert_eq!(ev[0].key, b"public.t|[1]".to_vec());
        assert_eq!(ev[0].event.source.index, Some(3));
        assert_eq!(ev[1].event.op, Op::Create);
        assert_eq!(ev[1].key, b"public.t|[2]".to_vec());
        assert_ne!(ev[0].event.event_id, ev[1].event.event_id);
        // Same key: one update; the same inputs give the same id.
        let mut j = 3;
        let u = build(
            &shape(true),
            &o,
            Op::Update,
            Some(row(1, "a")),
            Some(row(1, "b")),
            &mut j,
            0,
        );
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].event.event_id, ev[0].event.event_id);
        // Keyless with a before image: split too.
        let mut k = 0;
        let kl = build(
            &shape(false),
            &o,
            Op::Update,
            Some(row(1, "a")),
            Some(row(1, "b")),
            &mut k,
            0,
        );
        assert_eq!(kl.len(), 2);
    }
}
