//! The Oracle source against a live database — runs only when `ORACLE_TEST_URL` is set
//! (easy connect `host:port/service`, with `ORACLE_TEST_USER` / `ORACLE_TEST_PASSWORD`,
//! and `ORACLE_TEST_PDB` for a CDB). docs/ORACLE.md ("Running the live test") shows how
//! to start a free Oracle container for it. Without the variables the test says so and
//! passes: no Oracle server can be reached from CI.
//!
//! It creates a table with ALL-column supplemental logging, snapshots it, then inserts,
//! updates (also the key), deletes and rolls back, and checks the events the source
//! hands out: ops, typed values, commit order, nothing from the rolled-back transaction.

use std::time::{Duration, Instant};

use cdc_collector::source::oracle::session::{OracleSettings, OracleSource};
use cdc_collector::source::ChangeSource;
use rtdp_core::secret::Secret;
use serde_json::Value;

struct Live {
    host: String,
    port: u16,
    service: String,
    user: String,
    password: String,
    pdb: Option<String>,
}

fn live() -> Option<Live> {
    let url = std::env::var("ORACLE_TEST_URL").ok()?;
    let url = url.trim_start_matches("//");
    let (hostport, service) = url
        .split_once('/')
        .expect("ORACLE_TEST_URL is host:port/service");
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "1521"));
    Some(Live {
        host: host.to_owned(),
        port: port.parse().expect("ORACLE_TEST_URL port"),
        service: service.to_owned(),
        user: std::env::var("ORACLE_TEST_USER").expect("ORACLE_TEST_USER"),
        password: std::env::var("ORACLE_TEST_PASSWORD").expect("ORACLE_TEST_PASSWORD"),
        pdb: std::env::var("ORACLE_TEST_PDB")
            .ok()
            .filter(|p| !p.is_empty()),
    })
}

fn drain(src: &mut OracleSource, want: usize, deadline: Duration) -> Vec<Value> {
    let until = Instant::now() + deadline;
    let mut got = Vec::new();
    while got.len() < want {
        assert!(
            Instant::now() < until,
            "only {} of {want} events: {got:#?}",
            got.len()
        );
        let b = src.next_batch().expect("next_batch");
        for e in b.events {
            got.push(serde_json::to_value(&e.event).unwrap());
        }
        if let Some(cp) = b.checkpoint {
            src.confirm(&cp).unwrap();
        }
        if got.len() < want {
            std::thread::park_timeout(Duration::from_millis(500));
        }
    }
    got
}

#[test]
fn oracle_live_capture() {
    let Some(l) = live() else {
        eprintln!("oracle_live_capture: ORACLE_TEST_URL is not set; skipped (docs/ORACLE.md)");
        return;
    };
    let conn = oracle::Connection::connect(
        &l.user,
        &l.password,
        format!("//{}:{}/{}", l.host, l.port, l.service),
    )
    .expect("connect to ORACLE_TEST_URL");
    if let Some(pdb) = &l.pdb {
        conn.execute(&format!("ALTER SESSION SET CONTAINER = {pdb}"), &[])
            .unwrap();
    }
    let table = format!("RTDP_LIVE_{}", std::process::id());
    let owner: String = conn.query_row_as("SELECT USER FROM DUAL", &[]).unwrap();
    let _ = conn.execute(&format!("DROP TABLE {table} PURGE"), &[]);
    conn.execute(
        &format!(
            "CREATE TABLE {table} (ID NUMBER(10) PRIMARY KEY, AMOUNT NUMBER(12,2), NOTE VARCHAR2(100), \
             CREATED DATE, TS TIMESTAMP(6) WITH TIME ZONE, R RAW(8), BIG NUMBER(38))"
        ),
        &[],
    )
    .unwrap();
    conn.execute(
        &format!("ALTER TABLE {table} ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS"),
        &[],
    )
    .unwrap();
    conn.execute(
        &format!(
            "INSERT INTO {table} VALUES (1, 10.5, 'it''s', DATE '1969-07-20', \
             TIMESTAMP '2026-11-24 08:00:00.5 +08:00', HEXTORAW('DEADBEEF'), 12345678901234567890123456789012345678)"
        ),
        &[],
    )
    .unwrap();
    conn.commit().unwrap();

    let mut src = OracleSource::new(OracleSettings {
        host: l.host.clone(),
        port: l.port,
        service: l.service.clone(),
        user: l.user.clone(),
        password: Secret::new(l.password.clone()),
        pdb: l.pdb.clone(),
        default_schema: owner.clone(),
        include: vec![format!("{owner}.{table}")],
        exclude: vec![],
        collector: "live".into(),
        snapshot: true,
        chunk_rows: 1000,
        window_scns: 20_000,
        fetch_size: 1000,
        max_buffered: 100_000,
        lob_enabled: false,
    });
    src.start(None)
        .expect("start (prerequisites: docs/ORACLE.md)");
    let snap = drain(&mut src, 1, Duration::from_secs(60));
    assert_eq!(snap[0]["op"], "r");
    assert_eq!(snap[0]["after"]["NOTE"], "it's");
    assert_eq!(snap[0]["after"]["AMOUNT"], "10.50");
    assert_eq!(snap[0]["after"]["CREATED"], "1969-07-20T00:00:00");
    assert_eq!(
        snap[0]["after"]["BIG"],
        "12345678901234567890123456789012345678"
    );
    assert_eq!(snap[0]["after"]["R"], "3q2+7w==");

    for sql in [
        format!("INSERT INTO {table} (ID, AMOUNT, NOTE) VALUES (2, 20, 'two')"),
        format!("UPDATE {table} SET AMOUNT = 11 WHERE ID = 1"),
    ] {
        conn.execute(&sql, &[]).unwrap();
    }
    conn.commit().unwrap();
    conn.execute(&format!("INSERT INTO {table} (ID) VALUES (3)"), &[])
        .unwrap();
    conn.rollback().unwrap();
    conn.execute(&format!("UPDATE {table} SET ID = 4 WHERE ID = 2"), &[])
        .unwrap();
    conn.execute(&format!("DELETE FROM {table} WHERE ID = 1"), &[])
        .unwrap();
    conn.commit().unwrap();

    let ev = drain(&mut src, 5, Duration::from_secs(120));
    let ops: Vec<(String, Value)> = ev
        .iter()
        .map(|e| {
            let img = if e["op"] == "d" {
                &e["before"]
            } else {
                &e["after"]
            };
            (e["op"].as_str().unwrap().to_owned(), img["ID"].clone())
        })
        .collect();
    assert_eq!(
        ops,
        vec![
            ("c".to_owned(), Value::from(2)),
            ("u".to_owned(), Value::from(1)),
            ("d".to_owned(), Value::from(2)),
            ("c".to_owned(), Value::from(4)),
            ("d".to_owned(), Value::from(1)),
        ]
    );
    assert_eq!(ev[1]["before"]["AMOUNT"], "10.50");
    assert_eq!(ev[1]["after"]["AMOUNT"], "11.00");
    assert_eq!(ev[1]["after"]["TS"], "2026-11-24T08:00:00.5+08:00");
    let _ = conn.execute(&format!("DROP TABLE {table} PURGE"), &[]);
}
