//! Realistic change events for tests, the demo and the benchmark.
//!
//! [`order_event`] makes event `i` of a synthetic `public.orders` table (15 columns of
//! every common type) as our own envelope, exactly as a PostgreSQL collector would: one
//! change per transaction, commit LSN growing with `i`, a deterministic `eventId`. Same
//! `i`, same bytes — so re-sending an event is a true duplicate (same position) that the
//! worker's positional de-duplication must drop.

use rtdp_core::ids;
use rtdp_core::model::{ChangeEvent, Op, Source};
use rtdp_core::types::{Column, ColumnType as T, Value};
use serde_json::Map;

/// Columns of the synthetic orders table.
pub fn order_columns() -> Vec<Column> {
    let mut id = Column::new("order_id", T::Int64);
    id.key = true;
    id.optional = false;
    vec![
        id,
        Column::new("customer_id", T::Int32),
        Column::new("quantity", T::Int16),
        Column::new("priority", T::Int8),
        Column::decimal("amount", 12, 2),
        Column::new("unit_price", T::Float64),
        Column::new("discount", T::Float32),
        Column::new("status", T::String),
        Column::new("note", T::String),
        Column::new("is_gift", T::Boolean),
        Column::new("order_date", T::Date),
        Column::new("created_at", T::Timestamp),
        Column::new("updated_at", T::Timestamptz),
        Column::new("attributes", T::Json),
        Column::new("checksum", T::Binary),
    ]
}

/// Cheap deterministic mixing (splitmix64) so values look varied without a RNG.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

const STATUSES: [&str; 5] = ["NEW", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"];
const NOTES: [&str; 5] = [
    "leave at the door",
    "call before delivery, gate code 1234",
    "fragile: \"glass\", handle with care",
    "收货人: 张三; 电话后送达",
    "",
];

/// Typed values of row `i`.
pub fn order_values(i: u64) -> Vec<Value> {
    let h = mix(i);
    let base_us: i64 = 1_764_000_000_000_000; // 2025-11-24T15:…Z
    vec![
        Value::Int(i as i64),
        Value::Int((h % 100_000) as i64),
        Value::Int((h >> 20) as i64 % 500),
        Value::Int((h >> 7) as i64 % 5),
        Value::Decimal(((h >> 11) % 10_000_000) as i128 - 1_000_000),
        Value::Float(((h >> 13) % 100_000) as f64 / 100.0),
        if h.is_multiple_of(7) {
            Value::Null
        } else {
            Value::Float(((h >> 17) % 100) as f64 / 4.0)
        },
        Value::String(STATUSES[(h % 5) as usize].to_string()),
        if h.is_multiple_of(3) {
            Value::Null
        } else {
            Value::String(NOTES[((h >> 3) % 5) as usize].to_string())
        },
        Value::Bool(h.is_multiple_of(2)),
        Value::Date(20_000 + (h % 1000) as i32),
        Value::Timestamp(base_us + (i as i64) * 1_000_001),
        Value::Timestamp(base_us + (i as i64) * 999_983),
        Value::String(format!("{{\"channel\":\"web\",\"items\":{}}}", h % 9)),
        Value::Binary((h.to_be_bytes()[..4]).to_vec()),
    ]
}

/// Event `i` of `public.<table>` from collector `collector`, source commit time `ts_ms`.
pub fn order_event_at(collector: &str, table: &str, i: u64, ts_ms: i64) -> ChangeEvent {
    let cols = order_columns();
    let mut after = Map::new();
    for (c, v) in cols.iter().zip(order_values(i)) {
        after.insert(c.name.clone(), v.to_json(c));
    }
    let commit_lsn = 1_000_000 + i * 64;
    let source = Source {
        connector: "postgresql".into(),
        name: collector.into(),
        db: Some("shop".into()),
        schema: Some("public".into()),
        table: table.into(),
        ts_ms,
        lsn: Some(commit_lsn - 8),
        commit_lsn: Some(commit_lsn),
        tx_id: Some((5000 + i).to_string()),
        index: Some(0),
        ..Default::default()
    };
    let position = source.position().map(|p| p.to_string()).unwrap_or_default();
    ChangeEvent {
        op: if i % 10 == 9 { Op::Update } else { Op::Create },
        before: None,
        after: Some(after),
        event_id: ids::event_id(collector, &position, 0),
        source,
        ts_ms: ts_ms + 5,
        columns: cols,
    }
}

/// Event `i` with a commit time derived from `i` (1 ms apart, from 2026-11-24 00:00 UTC).
pub fn order_event(i: u64) -> ChangeEvent {
    order_event_at("gen", "orders", i, 1_795_478_400_000 + i as i64)
}

/// Kafka key (table + primary key) and value bytes of an event.
pub fn to_record(ev: &ChangeEvent) -> (Vec<u8>, Vec<u8>) {
    let id = ev
        .after
        .as_ref()
        .or(ev.before.as_ref())
        .and_then(|r| r.get("order_id"))
        .map(|v| v.to_string())
        .unwrap_or_default();
    let key = format!(
        "{}.{}:{}",
        ev.source.schema.as_deref().unwrap_or(""),
        ev.source.table,
        id
    );
    (
        key.into_bytes(),
        serde_json::to_vec(ev).expect("events serialize"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_deterministic_and_about_600_bytes() {
        let (k1, v1) = to_record(&order_event(42));
        let (k2, v2) = to_record(&order_event(42));
        assert_eq!((k1, &v1), (k2, &v2));
        assert!((400..1600).contains(&v1.len()), "{}", v1.len());
        assert_ne!(order_event(1).event_id, order_event(2).event_id);
    }
}
