//! Bad configurations stop the collector at start with a message that says what to fix.

use std::time::Duration;

use rtdp_testkit::postgres::PgServer;

use crate::common::{Chain, MIX_TABLE};

#[test]
fn an_unknown_table_stops_the_collector_naming_it() {
    let mut c = Chain::new("badtable");
    c.sql(MIX_TABLE);
    c.set_collector("DATABASE_TABLES", "mix, public.nope");
    let (code, log) = c.run_to_exit();
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains(r#"table "public.nope""#) && log.contains("does not exist"),
        "{log}"
    );
}

#[test]
fn a_missing_password_stops_the_collector_naming_the_variable() {
    let mut c = Chain::new("nopw");
    c.collector_env.retain(|(k, _)| k != "DATABASE_PASSWORD");
    let (code, log) = c.run_to_exit();
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("database.password") && log.contains("DATABASE_PASSWORD"),
        "{log}"
    );
}

#[test]
fn wal_level_replica_stops_the_collector_with_the_fix() {
    let pg: &'static PgServer = Box::leak(Box::new(
        PgServer::start_with(&["wal_level=replica"]).expect("PostgreSQL"),
    ));
    let mut c = Chain::on(pg, "walrep");
    c.sql(MIX_TABLE);
    let (code, log) = c.run_to_exit();
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("wal_level = replica"), "{log}");
    assert!(
        log.contains("ALTER SYSTEM SET wal_level = logical"),
        "{log}"
    );
}

#[test]
fn check_config_names_every_problem_at_once() {
    let out = std::process::Command::new(crate::common::COLLECTOR)
        .arg("check-config")
        .env_clear()
        .env("DATABASE_TABLES", "a,,b")
        .env("COLLECTOR_NAME", "bad name")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for key in [
        "database.username",
        "database.password",
        "database.tables",
        "collector.name",
    ] {
        assert!(err.contains(key), "{key} missing in:\n{err}");
    }
}

#[test]
fn a_keyless_table_without_replica_identity_full_stops_the_collector_with_the_fix() {
    let mut c = Chain::new("keyless");
    c.sql("CREATE TABLE logs (at timestamptz, line text);");
    let (code, log) = c.run_to_exit();
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains(r#"ALTER TABLE "public"."logs" REPLICA IDENTITY FULL;"#),
        "{log}"
    );
    assert!(log.contains("DATABASE_EXCLUDE_TABLES"), "{log}");
}

#[test]
fn oracle_parse_redo_reads_stdin_line_by_line_and_goes_on_after_a_bad_one() {
    use std::io::Write;
    let mut child = std::process::Command::new(crate::common::COLLECTOR)
        .args(["oracle", "parse-redo"])
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            concat!(
                r#"insert into "APP"."T"("ID","V") values ('1','a''b');"#,
                "\n",
                "not sql at all\n",
                r#"update "APP"."T" set "V" = NULL where "ID" = '1' and "V" = 'a''b' and ROWID = 'AAA';"#,
                "\n"
            )
            .as_bytes(),
        )
        .expect("write");
    let out = child.wait_with_output().expect("run");
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0]["after"],
        serde_json::json!({"ID": "1", "V": "a'b"})
    );
    assert!(lines[1]["error"]
        .as_str()
        .is_some_and(|e| e.contains("byte 0")));
    assert_eq!(lines[2]["op"], "u");
    assert_eq!(lines[2]["after"], serde_json::json!({"ID": "1", "V": null}));
}

/// Kafka unreachable at start: SIGTERM stops the collector promptly and cleanly (it used
/// to sit in the Kafka client's 30 s calls until the hard shutdown deadline, exit 1).
#[test]
fn sigterm_while_kafka_is_unreachable_stops_promptly_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("collector.log");
    let dead = rtdp_testkit::free_port();
    let env: Vec<(String, String)> = [
        ("DATABASE_HOST", "127.0.0.1"),
        ("DATABASE_USERNAME", "nobody"),
        ("DATABASE_PASSWORD", "pw"),
        ("DATABASE_NAME", "nowhere"),
        ("KAFKA_BOOTSTRAP_SERVERS", &format!("127.0.0.1:{dead}")),
        ("SHUTDOWN_TIMEOUT", "30000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (mut p, port) = rtdp_testkit::spawn_service(
        std::path::Path::new(env!("CARGO_BIN_EXE_cdc-collector")),
        &["run"],
        &env,
        &log,
    );
    rtdp_testkit::wait_until(Duration::from_secs(30), "health server", || {
        rtdp_testkit::http_get(port, "/health/live").is_some()
    });
    // Let it get into the Kafka connection.
    rtdp_testkit::wait_until(Duration::from_secs(30), "the collector to start", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("cdc-collector starting"))
    });
    p.sigterm();
    // Well under SHUTDOWN_TIMEOUT: the bug made it 35 s.
    let st = p.wait_timeout(Duration::from_secs(10)).unwrap_or_else(|| {
        panic!(
            "still running 10 s after SIGTERM:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    assert_eq!(
        st.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
