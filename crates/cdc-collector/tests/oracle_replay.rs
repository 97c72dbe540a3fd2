//! The Oracle source's transaction buffer and event building, driven by recorded
//! LogMiner rows (`tests/data/oracle/*.jsonl`) through `replay` — the same code the live
//! source runs — and through the `cdc-collector oracle replay` CLI.
//!
//! `interleaved.jsonl` holds: two interleaved transactions (the later-started one
//! commits first), two commits at the same SCN, a full rollback, a partial rollback, a
//! statement split over three rows (CSF) that straddles a window end, an empty
//! transaction, a DDL adding a column followed by a change using it, and window ends
//! where the live source would store checkpoints.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::process::Command;

use cdc_collector::source::oracle::logminer::{
    Checkpoint, LmRow, Miner, MinerSettings, SchemaEntry, StaticCatalog,
};
use cdc_collector::source::oracle::replay::{replay, ReplayOptions, ReplaySummary};
use serde_json::{json, Value};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/oracle")
        .join(name)
}

fn catalog(lob: bool) -> StaticCatalog {
    let text = std::fs::read_to_string(data("schema.json")).unwrap();
    let schema: BTreeMap<String, SchemaEntry> = serde_json::from_str(&text).unwrap();
    StaticCatalog::from_schema(&schema, lob).unwrap()
}

fn opts(checkpoints: bool, from: Option<Checkpoint>) -> ReplayOptions {
    ReplayOptions {
        collector: "ora1".into(),
        checkpoints,
        from,
        max_buffered: 1000,
        lob_enabled: false,
    }
}

/// Runs a replay; returns the output lines as JSON and the summary.
fn run(input: &str, o: &ReplayOptions, lob: bool) -> (Vec<Value>, ReplaySummary) {
    let mut out = Vec::new();
    let s = replay(Cursor::new(input), &mut out, &mut catalog(lob), o).unwrap();
    let lines = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, s)
}

fn events(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l.get("op").is_some()).collect()
}

fn summary_of(e: &Value) -> (String, Value, String) {
    let img = if e["op"] == "d" {
        &e["before"]
    } else {
        &e["after"]
    };
    (
        e["op"].as_str().unwrap().to_owned(),
        img["ID"].clone(),
        e["source"]["txId"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn interleaved_transactions_come_out_in_commit_order_with_rollbacks_applied() {
    let input = std::fs::read_to_string(data("interleaved.jsonl")).unwrap();
    let (lines, s) = run(&input, &opts(false, None), false);
    let ev = events(&lines);
    let got: Vec<_> = ev.iter().map(|e| summary_of(e)).collect();
    let want = vec![
        ("c", json!(2), "0A000200BBBB0002"), // B commits first (SCN 104)
        ("c", json!(1), "0A000100AAAA0001"), // A (SCN 106): its insert from SCN 101 …
        ("u", json!(1), "0A000100AAAA0001"), // … and its update
        ("d", json!(2), "0B000100DDDD0004"), // D and C commit at SCN 110: D's id is lower
        ("c", json!(3), "0B000300CCCC0003"),
        ("c", json!(5), "0C000200FFFF0006"), // F: 6 was rolled back to a savepoint; E gone
        ("c", json!(8), "0E000100CCCC0009"), // K after the DDL, with the new column
        ("c", json!(7), "0D000100AAAA0007"), // G: the CSF-joined statement, committed last
    ];
    let want: Vec<_> = want
        .into_iter()
        .map(|(o, id, x)| (o.to_owned(), id, x.to_owned()))
        .collect();
    assert_eq!(got, want);
    // B, A, D, C, F, the empty H, K, G committed; E rolled back.
    assert_eq!(
        s,
        ReplaySummary {
            rows: 33,
            events: 8,
            transactions: 8,
            problems: 0
        }
    );
    // Values: typed by the schema, quotes and `||` inside literals kept.
    assert_eq!(ev[0]["after"]["NOTE"], "it's || two");
    assert_eq!(ev[0]["after"]["AMOUNT"], "20.00");
    assert_eq!(ev[1]["after"]["CREATED"], "2026-11-24T10:00:00");
    assert_eq!(ev[2]["before"]["NOTE"], "first");
    assert_eq!(ev[2]["after"]["NOTE"], Value::Null);
    assert_eq!(ev[2]["after"]["AMOUNT"], "11.00");
    assert_eq!(ev[6]["after"]["CHANNEL"], "web");
    assert_eq!(ev[6]["after"]["CREATED"], "1969-07-20T20:17:40");
    let note = ev[7]["after"]["NOTE"].as_str().unwrap();
    assert_eq!(note.len(), 7000);
    assert!(note.starts_with("xxx") && note.ends_with("zzz"));
    // Positions strictly grow in emission order; indexes restart per transaction.
    let pos: Vec<(u64, String, u64)> = ev
        .iter()
        .map(|e| {
            (
                e["source"]["commit_scn"].as_str().unwrap().parse().unwrap(),
                e["source"]["txId"].as_str().unwrap().to_owned(),
                e["source"]["index"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
    assert_eq!(ev[2]["source"]["index"], 1);
    assert_eq!(ev[2]["source"]["scn"], "105");
    assert_eq!(ev[0]["source"]["connector"], "oracle");
    assert_eq!(ev[0]["source"]["table"], "ORDERS");
    assert_eq!(ev[0]["source"]["schema"], "SHOP");
    // Event ids are unique.
    let ids: std::collections::HashSet<_> = ev.iter().map(|e| e["eventId"].clone()).collect();
    assert_eq!(ids.len(), ev.len());
}

#[test]
fn checkpoints_hold_the_oldest_open_transaction_and_a_restart_loses_and_repeats_nothing() {
    let input = std::fs::read_to_string(data("interleaved.jsonl")).unwrap();
    let (lines, _) = run(&input, &opts(true, None), false);
    let full: Vec<Value> = events(&lines).into_iter().cloned().collect();
    let cps: Vec<(usize, Checkpoint)> = {
        let mut seen = 0;
        let mut v = Vec::new();
        for l in &lines {
            if l.get("op").is_some() {
                seen += 1;
            } else if let Some(c) = l.get("checkpoint") {
                v.push((seen, serde_json::from_value(c.clone()).unwrap()));
            }
        }
        v
    };
    // Window 104: A (from SCN 100) is open. Window 121: G (from 120) is open, its
    // statement half read. Window 130 and the end: nothing open.
    let restarts: Vec<u64> = cps.iter().map(|(_, c)| c.restart_scn).collect();
    assert_eq!(restarts, vec![100, 120, 131, 131]);
    assert_eq!(
        cps[0].1,
        Checkpoint {
            restart_scn: 100,
            commit_scn: 104,
            tx_id: "0A000200BBBB0002".into(),
            index: 1,
            mined_scn: 104
        }
    );
    assert_eq!(cps[1].1.commit_scn, 119);
    // Restart from each checkpoint: what was handed out before it plus what the resumed
    // replay hands out is exactly the full run, same ids.
    for (handed_out, cp) in &cps {
        let (resumed, _) = run(&input, &opts(false, Some(cp.clone())), false);
        let mut joined: Vec<Value> = full[..*handed_out].to_vec();
        joined.extend(events(&resumed).into_iter().cloned());
        let ids = |v: &[Value]| v.iter().map(|e| e["eventId"].clone()).collect::<Vec<_>>();
        assert_eq!(ids(&joined), ids(&full), "resumed from {cp:?}");
    }
}

#[test]
fn every_type_converts_and_a_primary_key_change_is_delete_plus_insert() {
    let input = std::fs::read_to_string(data("types.jsonl")).unwrap();
    let (lines, s) = run(&input, &opts(false, None), false);
    assert_eq!(s.problems, 0, "{lines:?}");
    let ev = events(&lines);
    assert_eq!(ev.len(), 3);
    let a = &ev[0]["after"];
    assert_eq!(a["ID"], "12345678901234567890123456789012345678");
    assert_eq!(a["N38"], "-1234567890123456789012345678.0123456789");
    assert_eq!(a["NNEG"], 123000);
    assert_eq!(a["NFREE"], "0.00000015");
    assert_eq!(a["BF"], 1.5);
    assert_eq!(a["BD"], "NaN");
    assert_eq!(a["C"], "ab  ");
    assert_eq!(a["NV"], "été 😀");
    assert_eq!(a["D"], "1900-02-28T23:59:59");
    assert_eq!(a["TS"], "1960-01-01T00:00:00.123456");
    assert_eq!(a["TSTZ"], "2026-11-24T08:00:00.5+08:00");
    assert_eq!(a["TSLTZ"], "2026-11-24T00:00:00+00:00");
    assert_eq!(a["R"], "3q2+7w==");
    assert_eq!(a["YM"], "P1Y2M");
    assert_eq!(a["DS"], "P3DT4H5M6.5S");
    // LOB columns are left out without lobEnabled …
    assert!(a.get("CL").is_none() && a.get("BL").is_none());
    let types: BTreeMap<String, Value> = ev[0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c.clone()))
        .collect();
    assert_eq!(types["ID"]["type"], "decimal");
    assert_eq!(types["ID"]["precision"], 38);
    assert_eq!(types["N38"]["scale"], 10);
    assert_eq!(types["NNEG"]["type"], "int32");
    assert_eq!(types["BF"]["type"], "float32");
    assert_eq!(types["D"]["type"], "timestamp");
    assert_eq!(types["TSLTZ"]["type"], "timestamptz");
    assert_eq!(types["R"]["type"], "binary");
    assert_eq!(types["NFREE"]["type"], "string");
    assert_eq!(types["ID"]["key"], true);
    // The key change: delete of the old key, insert of the new.
    assert_eq!(ev[1]["op"], "d");
    assert_eq!(
        ev[1]["before"]["ID"],
        "12345678901234567890123456789012345678"
    );
    assert_eq!(ev[2]["op"], "c");
    assert_eq!(ev[2]["after"]["ID"], "2");
    // … and present with it: EMPTY_CLOB() as "", EMPTY_BLOB() as empty binary.
    let (lob_lines, _) = run(&input, &opts(false, None), true);
    let a = &events(&lob_lines)[0]["after"];
    assert_eq!(a["CL"], "");
    assert_eq!(a["BL"], "");
}

fn row(scn: u64, xid: &str, code: u64, sql: Option<&str>) -> LmRow {
    LmRow {
        scn,
        xid: xid.into(),
        operation_code: code,
        seg_owner: Some("SHOP".into()),
        table_name: Some("ORDERS".into()),
        row_id: Some(format!("R{scn}")),
        sql_redo: sql.map(str::to_owned),
        ..Default::default()
    }
}

#[test]
fn a_buffer_beyond_its_limit_stops_with_the_transaction_named() {
    let mut m = Miner::new(
        MinerSettings {
            collector: "c".into(),
            db: None,
            max_buffered: 3,
            lob_enabled: false,
            tz_offset_secs: 0,
        },
        None,
    );
    let mut cat = catalog(false);
    let ins = r#"insert into "SHOP"."ORDERS"("ID") values ('1');"#;
    m.push(row(1, "AA", 6, None), &mut cat).unwrap();
    for scn in 2..5 {
        m.push(row(scn, "AA", 1, Some(ins)), &mut cat).unwrap();
    }
    let err = m.push(row(5, "AA", 1, Some(ins)), &mut cat).unwrap_err();
    assert_eq!(err.severity, cdc_collector::source::Severity::Fatal);
    let err = err.message;
    assert!(err.contains("oracle.maxBufferedChanges (3)"), "{err}");
    assert!(
        err.contains("transaction AA (started at SCN 1, 4 changes)"),
        "{err}"
    );
}

#[test]
fn an_unreadable_statement_is_reported_without_values_and_the_rest_goes_on() {
    let rows = [
        row(1, "AA", 6, None),
        row(
            2,
            "AA",
            1,
            Some(r#"insert into "SHOP"."ORDERS"("ID") values ('secret'"#),
        ),
        row(
            3,
            "AA",
            1,
            Some(r#"insert into "SHOP"."ORDERS"("ID") values ('9');"#),
        ),
        row(4, "AA", 7, None),
    ];
    let input: String = rows
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    let (lines, s) = run(&input, &opts(false, None), false);
    assert_eq!(s.problems, 1);
    let err = lines[0]["error"].as_str().unwrap();
    assert!(
        err.contains("SHOP.ORDERS at SCN 2 (transaction AA)"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
    assert_eq!(events(&lines).len(), 1);
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cdc-collector"))
}

#[test]
fn the_replay_cli_prints_events_and_names_bad_lines() {
    let out = bin()
        .args(["oracle", "replay"])
        .arg(data("interleaved.jsonl"))
        .arg("--schema")
        .arg(data("schema.json"))
        .args(["--collector", "ora1"])
        .env_remove("RTDP_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let ev: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ev.len(), 8);
    // Same events as the library run (ids depend only on collector and position).
    let input = std::fs::read_to_string(data("interleaved.jsonl")).unwrap();
    let (lines, _) = run(&input, &opts(false, None), false);
    let lib_ids: Vec<_> = events(&lines)
        .iter()
        .map(|e| e["eventId"].clone())
        .collect();
    let cli_ids: Vec<_> = ev.iter().map(|e| e["eventId"].clone()).collect();
    assert_eq!(cli_ids, lib_ids);
    assert!(String::from_utf8_lossy(&out.stderr).contains("8 events"));

    // A line that is not a row: exit 2 naming the line.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"scn\": 1, \"xid\": \"A\", \"operation_code\": 6}\nnot json\n",
    )
    .unwrap();
    let out = bin().args(["oracle", "replay"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2: not a JSON object"), "{err}");
    // Out of SCN order: refused.
    std::fs::write(
        &bad,
        "{\"scn\": 5, \"xid\": \"A\", \"operation_code\": 6}\n{\"scn\": 4, \"xid\": \"A\", \"operation_code\": 7}\n",
    )
    .unwrap();
    let out = bin().args(["oracle", "replay"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SCN order"));
    // Without a schema: text columns, an update stays an update.
    let out = bin()
        .args(["oracle", "replay"])
        .arg(data("interleaved.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let ev: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ev.len(), 8);
    assert_eq!(ev[2]["op"], "u");
    assert_eq!(ev[2]["after"]["AMOUNT"], "11");
}

#[test]
fn oceanbase_is_refused_with_the_reason_and_oracle_settings_are_validated() {
    let out = bin()
        .arg("run")
        .env_remove("RTDP_CONFIG")
        .env("DATABASE_TYPE", "oceanbase")
        .env("DATABASE_USERNAME", "u")
        .env("MONITORING_PORT", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no open-source change-log interface"), "{err}");
    assert!(err.contains("MySQL source"), "{err}");

    let out = bin()
        .arg("check-config")
        .env_remove("RTDP_CONFIG")
        .env("DATABASE_TYPE", "oracle")
        .env("DATABASE_USERNAME", "rtdp")
        .env("DATABASE_PASSWORD", "pw")
        .env("DATABASE_PDB", "ORCLPDB1")
        .env("PIPELINE_ORACLE_FETCH_SIZE", "0")
        .env("PIPELINE_ORACLE_MAX_BUFFERED_CHANGES", "10")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("oracle.fetchSize"), "{err}");
    assert!(err.contains("oracle.maxBufferedChanges"), "{err}");
    assert!(!err.contains("database.pdb"), "{err}");
}

fn lob_row(scn: u64, xid: &str, code: u64, sql: &str) -> LmRow {
    LmRow {
        table_name: Some("TYPES".into()),
        row_id: Some("AAAR4AAAEAAAAC1AAA".into()),
        ..row(scn, xid, code, Some(sql))
    }
}

#[test]
fn lob_writes_land_in_their_row_when_lobs_are_enabled() {
    let locator = |col: &str, var: &str| {
        format!(
            "DECLARE \n loc_c CLOB; \n buf_c VARCHAR2(6156); \n loc_b BLOB; \n buf_b RAW(6156);\nBEGIN\n select \"{col}\" into {var} from \"SHOP\".\"TYPES\" where \"ID\" = '1' and ROWID = 'AAAR4AAAEAAAAC1AAA' for update;"
        )
    };
    let rows = [
        row(1, "AA", 6, None),
        lob_row(
            2,
            "AA",
            1,
            r#"insert into "SHOP"."TYPES"("ID","CL","BL") values ('1',EMPTY_CLOB(),EMPTY_BLOB());"#,
        ),
        lob_row(3, "AA", 9, &locator("CL", "loc_c")),
        lob_row(
            4,
            "AA",
            10,
            " buf_c := 'first half, '; \n  dbms_lob.write(loc_c, 12, 1, buf_c);\nEND;",
        ),
        lob_row(
            5,
            "AA",
            10,
            " buf_c := 'second half'; \n  dbms_lob.write(loc_c, 11, 13, buf_c);\nEND;",
        ),
        lob_row(6, "AA", 9, &locator("BL", "loc_b")),
        lob_row(
            7,
            "AA",
            10,
            " buf_b := HEXTORAW('deadbeef'); \n  dbms_lob.write(loc_b, 4, 1, buf_b);\nEND;",
        ),
        row(8, "AA", 7, None),
        // A LOB-only update: no UPDATE row, just the locator and the write.
        row(9, "BB", 6, None),
        lob_row(10, "BB", 9, &locator("CL", "loc_c")),
        lob_row(
            11,
            "BB",
            10,
            " buf_c := 'new'; dbms_lob.write(loc_c, 3, 1, buf_c); END;",
        ),
        lob_row(12, "BB", 11, "dbms_lob.trim(loc_c, 3);"),
        row(13, "BB", 7, None),
    ];
    let input: String = rows
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    let mut o = opts(false, None);
    o.lob_enabled = true;
    let (lines, s) = run(&input, &o, true);
    assert_eq!(s.problems, 0, "{lines:?}");
    let ev = events(&lines);
    assert_eq!(ev.len(), 2, "{ev:#?}");
    assert_eq!(ev[0]["op"], "c");
    assert_eq!(ev[0]["after"]["CL"], "first half, second half");
    assert_eq!(ev[0]["after"]["BL"], "3q2+7w==");
    assert_eq!(ev[1]["op"], "u");
    assert_eq!(ev[1]["after"]["CL"], "new");
    assert_eq!(ev[1]["after"]["ID"], "1");
    // Without lobEnabled the LOB rows are not read and the columns are left out.
    let (lines, _) = run(&input, &opts(false, None), false);
    let ev = events(&lines);
    assert_eq!(ev.len(), 1);
    assert!(ev[0]["after"].get("CL").is_none());
}

/// The two halves of a primary-key change share the commit SCN and the transaction; their
/// indexes tell them apart, so a checkpoint that falls between them resumes with the
/// second half, and only it (the worker's de-duplication relies on the same positions).
#[test]
fn a_restart_between_the_halves_of_a_key_change_at_one_commit_scn_hands_out_the_second_half() {
    let input = std::fs::read_to_string(data("types.jsonl")).unwrap();
    let (lines, _) = run(&input, &opts(false, None), false);
    let ev = events(&lines);
    let (delete, create) = (ev[1], ev[2]);
    assert_eq!((&delete["op"], &create["op"]), (&json!("d"), &json!("c")));
    let (ds, cs) = (&delete["source"], &create["source"]);
    assert_eq!(ds["commit_scn"], cs["commit_scn"], "one commit SCN");
    assert_eq!(ds["txId"], cs["txId"], "one transaction");
    let index = ds["index"].as_u64().unwrap();
    assert_eq!(cs["index"].as_u64(), Some(index + 1));
    assert_ne!(delete["eventId"], create["eventId"]);
    let cp = Checkpoint {
        restart_scn: 0,
        commit_scn: ds["commit_scn"].as_str().unwrap().parse().unwrap(),
        tx_id: ds["txId"].as_str().unwrap().to_string(),
        index: index + 1,
        mined_scn: 0,
    };
    let (resumed, _) = run(&input, &opts(false, Some(cp)), false);
    let resumed = events(&resumed);
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!(resumed[0]["eventId"], create["eventId"]);
}
