use super::*;
use rtdp_core::types::ColumnType as T;
use serde_json::json;

const AT: RecordRef<'static> = RecordRef {
    topic: "t",
    partition: 0,
    offset: 42,
};

fn event(d: &mut Decoder, bytes: &[u8]) -> DecodedEvent {
    match d.decode(Some(bytes), AT, 1_000).unwrap() {
        Decoded::Event(e) => *e,
        Decoded::Skip(why) => panic!("skipped: {why}"),
    }
}

fn col<'a>(e: &'a DecodedEvent, name: &str) -> (&'a Column, &'a Value) {
    let i = e
        .event
        .schema
        .columns
        .iter()
        .position(|c| c.name == name)
        .unwrap();
    (&e.event.schema.columns[i], &e.event.values[i])
}

#[test]
fn debezium_postgres_with_schema_gives_logical_types() {
    let bytes = include_bytes!("../../tests/data/debezium_pg_schema.json");
    let e = event(&mut Decoder::new(1 << 20), bytes);
    assert_eq!(e.event.table, "items");
    assert_eq!(e.event.schema_name.as_deref(), Some("public"));
    assert_eq!(e.event.source_ts_ms, 1732406400999);
    let (c, v) = col(&e, "price");
    assert_eq!(
        (c.ty, c.precision, c.scale),
        (T::Decimal, Some(10), Some(2))
    );
    assert_eq!(v, &Value::Decimal(123456));
    assert_eq!(
        col(&e, "id"),
        (
            &Column {
                optional: false,
                ..Column::new("id", T::Int32)
            },
            &Value::Int(7)
        )
    );
    assert_eq!(col(&e, "born").1, &Value::Date(-365));
    assert_eq!(col(&e, "alarm").1, &Value::Time(45296789012));
    assert_eq!(col(&e, "ts_milli").1, &Value::Timestamp(1732406400123000));
    assert_eq!(col(&e, "ts_micro").1, &Value::Timestamp(1732406400123456));
    assert_eq!(col(&e, "ts_nano").1, &Value::Timestamp(1732406400123456));
    let (c, v) = col(&e, "ts_zoned");
    assert_eq!(c.ty, T::Timestamptz);
    assert_eq!(v, &Value::Timestamp(1732406400123456));
    assert_eq!(col(&e, "blob").1, &Value::Binary(vec![1, 2, 3, 255]));
    assert_eq!(col(&e, "big").1, &Value::Int(9007199254740993));
    assert_eq!(col(&e, "score").0.ty, T::Float64);
    let d = e.dedup.unwrap();
    assert_eq!(d.source, "debezium-postgresql/pg/shop");
    assert_eq!(
        d.position,
        Position {
            commit: 24023128,
            tx: String::new(),
            index: 24023184
        }
    );
}

#[test]
fn debezium_postgres_without_schema_infers_types() {
    let bytes = include_bytes!("../../tests/data/debezium_pg_noschema.json");
    let e = event(&mut Decoder::new(1 << 20), bytes);
    assert_eq!(col(&e, "id").0.ty, T::Int64);
    assert_eq!(
        col(&e, "price"),
        (
            &Column::new("price", T::String),
            &Value::String("AeJA".into())
        )
    );
    assert_eq!(col(&e, "big").1, &Value::Int(9007199254740993));
    assert_eq!(col(&e, "score").1, &Value::Float(1.5));
    assert!(e.dedup.is_some());
}

#[test]
fn debezium_oracle_has_no_dedup_position() {
    let j = json!({
        "schema": {"type": "struct", "fields": [
            {"type": "struct", "field": "after", "optional": true, "fields": [
                {"type": "bytes", "optional": false, "name": "org.apache.kafka.connect.data.Decimal",
                 "parameters": {"scale": "0", "connect.decimal.precision": "10"}, "field": "ID"},
                {"type": "int64", "optional": true, "name": "io.debezium.time.Timestamp", "field": "CREATED"},
                {"type": "string", "optional": true, "name": "io.debezium.time.ZonedTimestamp", "field": "UPDATED_TZ"}
            ]},
            {"type": "struct", "field": "before", "optional": true, "fields": []}
        ]},
        "payload": {"before": null, "after": {"ID": "Ag==", "CREATED": 1700000000000i64, "UPDATED_TZ": "2023-11-14T22:13:20Z"},
            "source": {"version": "2.7.0.Final", "connector": "oracle", "name": "server1", "ts_ms": 1700000000000i64,
                "snapshot": "false", "db": "ORCLPDB1", "schema": "INVENTORY", "table": "CUSTOMERS",
                "txId": "0a001b00c4d10000", "scn": "2125544", "commit_scn": "2125554", "lcr_position": null},
            "op": "c", "ts_ms": 1700000000100i64}
    });
    let e = event(&mut Decoder::new(1 << 20), j.to_string().as_bytes());
    assert_eq!(col(&e, "ID").1, &Value::Decimal(2));
    assert_eq!(
        col(&e, "CREATED").1,
        &Value::Timestamp(1_700_000_000_000_000)
    );
    assert_eq!(e.event.schema_name.as_deref(), Some("INVENTORY"));
    assert!(
        e.dedup.is_none(),
        "Debezium Oracle commit_scn is shared: never drop by it"
    );
    assert!(e.event.source_position.contains("commit_scn=2125554"));
}

#[test]
fn debezium_mysql_delete_uses_before_and_db_as_schema() {
    let j = json!({"before": {"id": 5, "d": 19000}, "after": null,
        "source": {"connector": "mysql", "name": "my", "db": "inventory", "table": "orders", "ts_ms": 5,
                   "file": "mysql-bin.000003", "pos": 154, "row": 0, "snapshot": "false"},
        "op": "d", "ts_ms": 6});
    let e = event(&mut Decoder::new(1 << 20), j.to_string().as_bytes());
    assert_eq!(e.event.op, Op::Delete);
    assert_eq!(e.event.qualified_table(), "inventory.orders");
    assert_eq!(e.event.values, vec![Value::Int(5), Value::Int(19000)]);
    assert!(e.dedup.is_none());
    // event ids of foreign events without a position come from the Kafka coordinates
    assert_eq!(e.event.event_id, ids::record_id("t", 0, 42));
}

#[test]
fn snapshot_reads_of_debezium_are_never_deduplicated() {
    let j = json!({"before": null, "after": {"id": 1},
        "source": {"connector": "postgresql", "name": "pg", "db": "d", "schema": "s", "table": "t", "ts_ms": 5,
                   "snapshot": "true", "sequence": "[null,\"100\"]"},
        "op": "r", "ts_ms": 6});
    let e = event(&mut Decoder::new(1 << 20), j.to_string().as_bytes());
    assert!(e.dedup.is_none());
}

fn ours(after: serde_json::Value, columns: serde_json::Value) -> Vec<u8> {
    json!({"op": "c", "before": null, "after": after,
        "source": {"connector": "postgresql", "name": "c1", "db": "app", "schema": "public", "table": "t",
                   "ts_ms": 1_700_000_000_000i64, "lsn": 10, "commit_lsn": 20, "index": 3},
        "ts_ms": 1_700_000_000_500i64, "eventId": "ev-1", "columns": columns})
    .to_string()
    .into_bytes()
}

#[test]
fn our_envelope_is_typed_by_its_columns() {
    let b = ours(
        json!({"id": 1, "amount": "12.50", "day": "2026-11-24", "raw": "AAE="}),
        json!([{"name": "id", "type": "int64", "key": true, "optional": false},
               {"name": "amount", "type": "decimal", "precision": 8, "scale": 2},
               {"name": "day", "type": "date"}, {"name": "raw", "type": "binary"}]),
    );
    let e = event(&mut Decoder::new(1 << 20), &b);
    assert_eq!(e.event.event_id, "ev-1");
    assert_eq!(
        e.event.values,
        vec![
            Value::Int(1),
            Value::Decimal(1250),
            Value::Date(20781),
            Value::Binary(vec![0, 1])
        ]
    );
    let d = e.dedup.unwrap();
    assert_eq!(d.source, "postgresql/c1/app");
    assert_eq!(
        d.position,
        Position {
            commit: 20,
            tx: String::new(),
            index: 3
        }
    );
    assert_eq!(e.event.source_position, "20::3");
}

#[test]
fn bad_input_is_refused_with_stage_and_no_row_values() {
    let mut d = Decoder::new(200);
    let err = |d: &mut Decoder, b: &[u8]| d.decode(Some(b), AT, 0).unwrap_err();
    assert!(matches!(err(&mut d, b"not json"), DecodeError::NotJson(_)));
    assert!(matches!(err(&mut d, b"[1,2]"), DecodeError::Envelope(_)));
    assert!(matches!(
        err(&mut d, br#"{"op":"x","source":{"table":"t"},"after":{}}"#),
        DecodeError::UnknownOp(_)
    ));
    assert!(matches!(
        err(&mut d, br#"{"op":"c","after":{}}"#),
        DecodeError::Envelope(_)
    ));
    assert!(matches!(
        err(&mut d, &[b' '; 201]),
        DecodeError::TooLarge {
            size: 201,
            limit: 200
        }
    ));
    let mut d = Decoder::new(1 << 20);
    let e = err(
        &mut d,
        &ours(
            json!({"id": "SECRET-VALUE"}),
            json!([{"name": "id", "type": "int64"}]),
        ),
    );
    assert_eq!(e.stage(), Stage::Convert);
    assert!(
        e.to_string().contains("\"id\"") && !e.to_string().contains("SECRET"),
        "{e}"
    );
    let e = err(
        &mut d,
        &ours(
            json!({"id": 1, "extra": 2}),
            json!([{"name": "id", "type": "int64"}]),
        ),
    );
    assert!(matches!(e, DecodeError::Envelope(_)), "{e}");
}

#[test]
fn tombstones_and_truncates_are_skipped() {
    let mut d = Decoder::new(1 << 20);
    assert!(matches!(
        d.decode(None, AT, 0),
        Ok(Decoded::Skip("tombstone"))
    ));
    let t = br#"{"op":"t","source":{"table":"x"},"before":null,"after":null}"#;
    assert!(matches!(
        d.decode(Some(t), AT, 0),
        Ok(Decoded::Skip("truncate"))
    ));
}

#[test]
fn schemaless_nulls_keep_the_type_a_column_had() {
    let mut d = Decoder::new(1 << 20);
    let mk = |v: serde_json::Value| {
        json!({"op": "c", "after": {"a": v}, "source": {"connector": "mysql", "table": "t", "ts_ms": 1}}).to_string()
    };
    let a = event(&mut d, mk(json!(5)).as_bytes());
    let b = event(&mut d, mk(serde_json::Value::Null).as_bytes());
    assert!(
        Arc::ptr_eq(&a.event.schema, &b.event.schema),
        "same schema, same file"
    );
}

#[test]
fn connect_decimal_bytes_are_twos_complement() {
    assert_eq!(be_bytes_to_i128(&[0xff]), Some(-1));
    assert_eq!(be_bytes_to_i128(&[0x00, 0x80]), Some(128));
    assert_eq!(be_bytes_to_i128(&[0xff; 17]), Some(-1));
    assert_eq!(be_bytes_to_i128(&[1; 17]), None);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Arbitrary bytes never panic the decoder.
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Decoder::new(1 << 20).decode(Some(&b), AT, 0);
        }

        // Our envelope round-trips typed values: encode with to_json, decode, compare.
        #[test]
        fn our_envelope_round_trips(i in any::<i64>(), s in ".*", unscaled in -(10i128.pow(17))..10i128.pow(17),
                                    days in -100_000i32..100_000, us in -1i64<<50..1i64<<50, bin in proptest::collection::vec(any::<u8>(), 0..20)) {
            let cols = vec![Column::new("i", T::Int64), Column::new("s", T::String), Column::decimal("d", 18, 4),
                            Column::new("day", T::Date), Column::new("ts", T::Timestamptz), Column::new("b", T::Binary)];
            let vals = vec![Value::Int(i), Value::String(s), Value::Decimal(unscaled), Value::Date(days), Value::Timestamp(us), Value::Binary(bin)];
            let mut after = serde_json::Map::new();
            for (c, v) in cols.iter().zip(&vals) { after.insert(c.name.clone(), v.to_json(c)); }
            let b = ours(serde_json::Value::Object(after), serde_json::to_value(&cols).unwrap());
            let e = event(&mut Decoder::new(1 << 20), &b);
            prop_assert_eq!(e.event.values, vals);
        }

        // Mutating a valid envelope (dropping a key) gives an error or an event, never a panic.
        #[test]
        fn dropping_any_key_is_handled(k in prop::sample::select(vec!["op", "source", "after", "eventId", "columns"])) {
            let b = ours(json!({"id": 1}), json!([{"name": "id", "type": "int64"}]));
            let mut v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            v.as_object_mut().unwrap().remove(k);
            let _ = Decoder::new(1 << 20).decode(Some(v.to_string().as_bytes()), AT, 0);
        }
    }
}

/// A Debezium PostgreSQL (schemas.enable=true) record of `public.acc(id int, n numeric)`
/// with the given op, row and `source.sequence`.
fn debezium_pg_record(op: &str, id: i64, n: J, lsn: u64) -> Vec<u8> {
    let row_schema = |field: &str| {
        json!({"type": "struct", "optional": true, "field": field, "fields": [
            {"type": "int32", "optional": false, "field": "id"},
            {"type": "struct", "optional": true, "name": "io.debezium.data.VariableScaleDecimal",
             "version": 1, "field": "n", "fields": [
                {"type": "int32", "optional": false, "field": "scale"},
                {"type": "bytes", "optional": false, "field": "value"}]}]})
    };
    let row = json!({"id": id, "n": n});
    let (before, after) = if op == "d" {
        (row, J::Null)
    } else {
        (J::Null, row)
    };
    json!({
        "schema": {"type": "struct", "fields": [row_schema("before"), row_schema("after"),
            {"type": "struct", "field": "source", "fields": []},
            {"type": "string", "field": "op"}]},
        "payload": {"before": before, "after": after, "op": op, "ts_ms": 1,
            "source": {"connector": "postgresql", "name": "dbz", "db": "shop", "schema": "public",
                "table": "acc", "snapshot": "false", "ts_ms": 1_700_000_000_000i64,
                "sequence": format!("[\"{}\",\"{lsn}\"]", lsn - 100), "lsn": lsn}}
    })
    .to_string()
    .into_bytes()
}

#[test]
fn variable_scale_decimals_wider_than_16_bytes_are_exact_text_not_dead_letters() {
    // 3.14159… with 51 digits (scale 50) and 1e41 (scale 0): both wider than an i128.
    let pi = "314159265358979323846264338327950288419716939937510";
    let cases = [
        (
            pi,
            50,
            "3.14159265358979323846264338327950288419716939937510",
        ),
        (
            "100000000000000000000000000000000000000000",
            0,
            "100000000000000000000000000000000000000000",
        ),
        (
            "-123456789012345678901234567890123456789012345678",
            4,
            "-12345678901234567890123456789012345678901234.5678",
        ),
        ("-1", 45, "-0.000000000000000000000000000000000000000000001"),
        ("12", -3, "12000"),
    ];
    for (unscaled, scale, text) in cases {
        let b64 = base64::engine::general_purpose::STANDARD.encode(be_bytes_of(unscaled));
        let rec = debezium_pg_record("c", 1, json!({"scale": scale, "value": b64}), 5000);
        let e = event(&mut Decoder::new(1 << 20), &rec);
        assert_eq!(col(&e, "n").0.ty, T::String, "{text}");
        assert_eq!(col(&e, "n").1, &Value::String(text.into()));
    }
}

/// Big-endian two's-complement bytes of an integer written in decimal (the encoding of
/// Connect decimals), minimal length.
fn be_bytes_of(digits: &str) -> Vec<u8> {
    let (neg, digits) = match digits.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, digits),
    };
    // Magnitude, little-endian bytes.
    let mut mag: Vec<u8> = vec![0];
    for d in digits.bytes() {
        let mut carry = u32::from(d - b'0');
        for b in mag.iter_mut() {
            let x = u32::from(*b) * 10 + carry;
            *b = x as u8;
            carry = x >> 8;
        }
        while carry > 0 {
            mag.push(carry as u8);
            carry >>= 8;
        }
    }
    mag.push(0); // room for the sign bit
    if neg {
        let mut carry = 1u16;
        for b in mag.iter_mut() {
            let x = u16::from(!*b) + carry;
            *b = x as u8;
            carry = x >> 8;
        }
    }
    let fill = if neg { 0xff } else { 0 };
    while mag.len() > 1
        && mag[mag.len() - 1] == fill
        && (mag[mag.len() - 2] & 0x80) == (fill & 0x80)
    {
        mag.pop();
    }
    mag.reverse();
    mag
}

#[test]
fn the_test_encoder_matches_known_connect_bytes() {
    assert_eq!(be_bytes_of("123456"), vec![0x01, 0xe2, 0x40]);
    assert_eq!(be_bytes_of("-1"), vec![0xff]);
    assert_eq!(be_bytes_of("128"), vec![0x00, 0x80]);
    assert_eq!(be_bytes_of("-129"), vec![0xff, 0x7f]);
    assert_eq!(be_bytes_of("0"), vec![0x00]);
}

#[test]
fn both_halves_of_a_debezium_key_change_get_their_own_event_id() {
    let n = json!({"scale": 0, "value": "AQ=="});
    let mut d = Decoder::new(1 << 20);
    let delete = event(&mut d, &debezium_pg_record("d", 2, n.clone(), 26386688));
    let create = event(&mut d, &debezium_pg_record("c", 102, n.clone(), 26386688));
    assert_eq!(
        delete.event.source_position, create.event.source_position,
        "one position for both halves, as Debezium sends them"
    );
    assert_ne!(delete.event.event_id, create.event.event_id);
    // Deterministic: the same record decoded again (after a restart) keeps its id.
    let again = event(
        &mut Decoder::new(1 << 20),
        &debezium_pg_record("c", 102, n, 26386688),
    );
    assert_eq!(again.event.event_id, create.event.event_id);
}
