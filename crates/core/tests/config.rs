//! Loading, overriding and validating the pipeline configuration, through the public API.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rtdp_core::config::{
    env_name, known_keys, load, load_and_validate, Compression, ConfigErrors, DatabaseType,
    LogFormat, LogLevel, OutputFormat, PipelineConfig, SecurityProtocol, Service,
};
use serde_json::{json, Value};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn yaml_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".yml")
        .tempfile()
        .expect("temp file");
    f.write_all(text.as_bytes()).expect("write yaml");
    f
}

fn errors_of(r: Result<PipelineConfig, ConfigErrors>) -> ConfigErrors {
    match r {
        Ok(c) => panic!("expected errors, got a config: {c:?}"),
        Err(e) => e,
    }
}

fn has(errors: &ConfigErrors, key: &str, rule_part: &str) -> bool {
    errors
        .0
        .iter()
        .any(|e| e.key == key && e.rule.contains(rule_part))
}

fn assert_has(errors: &ConfigErrors, key: &str, rule_part: &str) {
    assert!(
        has(errors, key, rule_part),
        "no error for {key:?} containing {rule_part:?} in:\n{errors}"
    );
}

/// The (redacted) serialized value at a YAML path.
fn at(config: &PipelineConfig, path: &str) -> Value {
    let tree = serde_json::to_value(config).expect("serialize config");
    let pointer = format!("/{}", path.replace('.', "/"));
    tree.pointer(&pointer).cloned().unwrap_or(Value::Null)
}

#[test]
fn defaults_load_without_a_file() {
    let c = load(None, &HashMap::new()).expect("defaults are valid");
    assert_eq!(c, PipelineConfig::default());
    assert_eq!(c.database.kind, DatabaseType::PostgreSql);
    assert_eq!(c.database.host, "localhost");
    assert_eq!(c.database.port, 5432);
    assert_eq!(c.database.tables, "*");
    assert_eq!(c.kafka.bootstrap_servers, "localhost:9092");
    assert_eq!(c.kafka.topic, "cdc-events");
    assert_eq!(c.kafka.group_id, "rtdp-stream-worker");
    assert_eq!(c.kafka.security_protocol, SecurityProtocol::Plaintext);
    assert_eq!(c.kafka.sasl_mechanism, "PLAIN");
    assert_eq!(c.kafka.session_timeout_ms, 30_000);
    assert!(!c.datahub.enabled);
    assert_eq!(c.checkpoint.interval_ms, 60_000);
    assert_eq!(c.checkpoint.timeout_ms, 600_000);
    assert_eq!(c.output.path, PathBuf::from("./output"));
    assert_eq!(c.output.format, OutputFormat::Json);
    assert_eq!(c.output.compression, Compression::None);
    assert_eq!(c.output.rolling.size_bytes, 134_217_728);
    assert_eq!(c.output.rolling.interval_ms, 3_600_000);
    assert_eq!(c.output.rolling.inactivity_ms, 60_000);
    assert_eq!(c.output.parquet.row_group_bytes, 67_108_864);
    assert_eq!(c.output.max_record_bytes, 10_485_760);
    assert_eq!(c.output.max_retries, 3);
    assert_eq!(c.monitoring.port, 8080);
    assert!(c.monitoring.metrics.enabled);
    assert_eq!(c.monitoring.alerts.latency_threshold_ms, 60_000);
    assert_eq!(c.monitoring.alerts.checkpoint_failure_rate, 0.1);
    assert_eq!(c.monitoring.alerts.load_threshold, 0.8);
    assert_eq!(c.shutdown.timeout_ms, 30_000);
    assert_eq!(c.logging.level, LogLevel::Info);
    assert_eq!(c.logging.format, LogFormat::Text);

    c.validate(Service::Worker)
        .expect("defaults are valid for the worker");
    let e = c
        .validate(Service::Collector)
        .expect_err("the collector needs a database user and password");
    assert_eq!(e.0.len(), 2, "{e}");
    assert_has(&e, "database.username", "must not be empty");
    assert_has(&e, "database.password", "DATABASE_PASSWORD");
}

#[test]
fn empty_file_and_empty_sections_mean_defaults() {
    let f = yaml_file("# nothing here\n");
    assert_eq!(
        load(Some(f.path()), &HashMap::new()).expect("empty file"),
        PipelineConfig::default()
    );
    let f = yaml_file("database:\nkafka:\n  topic:\n");
    assert_eq!(
        load(Some(f.path()), &HashMap::new()).expect("empty sections"),
        PipelineConfig::default()
    );
}

const FULL_FILE: &str = r#"
database:
  type: oracle
  host: db.file
  port: 1521
  username: file_user
  password: file-password
  name: ORCLPDB1
  schema: HR
  tables: "HR.EMPLOYEES,HR.DEPARTMENTS"
  excludeTables: HR.TMP
kafka:
  bootstrapServers: "k1:9092,k2:9092"
  topic: file-topic
  groupId: file-group
  securityProtocol: sasl_ssl
  saslMechanism: SCRAM-SHA-512
  saslUsername: file-sasl-user
  saslPassword: file-sasl-password
  sessionTimeoutMs: 45000
  properties:
    linger.ms: 5
    enable.idempotence: true
datahub:
  enabled: false
  endpoint: dh.file:9092
  accessId: file-id
  accessKey: file-key
  project: fileproj
  topic: filetopic
  consumerGroup: filegroup
checkpoint:
  intervalMs: 30000
  timeoutMs: 120000
output:
  path: /data/file
  format: parquet
  compression: snappy
  rolling:
    sizeBytes: 1048576
    intervalMs: 600000
    inactivityMs: 5000
  parquet:
    rowGroupBytes: 1048576
  maxRecordBytes: 2048
  maxRetries: 7
monitoring:
  port: 9090
  metrics:
    enabled: false
  alerts:
    latencyThresholdMs: 1000
    checkpointFailureRate: 0.25
    loadThreshold: 0.5
shutdown:
  timeoutMs: 5000
logging:
  level: WARN
  format: json
"#;

#[test]
fn a_full_file_sets_every_key() {
    let f = yaml_file(FULL_FILE);
    let c = load(Some(f.path()), &HashMap::new()).expect("valid file");
    assert_eq!(c.database.kind, DatabaseType::Oracle);
    assert_eq!(c.database.port, 1521);
    assert_eq!(c.database.password.expose(), "file-password");
    assert_eq!(
        c.database.table_list(),
        vec!["HR.EMPLOYEES", "HR.DEPARTMENTS"]
    );
    assert_eq!(c.database.exclude_table_list(), vec!["HR.TMP"]);
    assert_eq!(c.kafka.security_protocol, SecurityProtocol::SaslSsl);
    assert_eq!(c.kafka.sasl_password.expose(), "file-sasl-password");
    assert_eq!(
        c.kafka.properties.get("linger.ms").map(|s| s.expose()),
        Some("5")
    );
    assert_eq!(
        c.kafka
            .properties
            .get("enable.idempotence")
            .map(|s| s.expose()),
        Some("true")
    );
    assert_eq!(c.output.compression, Compression::Snappy);
    assert_eq!(c.output.rolling.inactivity_ms, 5000);
    assert_eq!(c.output.max_retries, 7);
    assert!(!c.monitoring.metrics.enabled);
    assert_eq!(c.monitoring.alerts.checkpoint_failure_rate, 0.25);
    assert_eq!(
        c.logging.level,
        LogLevel::Warn,
        "levels are case-insensitive"
    );
    assert_eq!(c.logging.format, LogFormat::Json);
    c.validate(Service::Worker).expect("valid for the worker");
    c.validate(Service::Collector)
        .expect("valid for the collector");
}

/// A valid environment value for every key, different from `FULL_FILE`, and the value the
/// (redacted) serialized config must then show.
fn override_values() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("database.type", "MySQL", json!("mysql")),
        ("database.host", "db.env", json!("db.env")),
        ("database.port", "3306", json!(3306)),
        ("database.username", "env_user", json!("env_user")),
        ("database.password", "env-password", json!("***")),
        ("database.name", "envdb", json!("envdb")),
        ("database.schema", "ENVSCHEMA", json!("ENVSCHEMA")),
        ("database.tables", "*", json!("*")),
        ("database.excludeTables", "A.B", json!("A.B")),
        ("kafka.bootstrapServers", "e1:19092", json!("e1:19092")),
        ("kafka.topic", "env-topic", json!("env-topic")),
        ("kafka.groupId", "env-group", json!("env-group")),
        (
            "kafka.securityProtocol",
            "SASL_PLAINTEXT",
            json!("sasl_plaintext"),
        ),
        ("kafka.saslMechanism", "PLAIN", json!("PLAIN")),
        (
            "kafka.saslUsername",
            "env-sasl-user",
            json!("env-sasl-user"),
        ),
        ("kafka.saslPassword", "env-sasl-password", json!("***")),
        ("kafka.sessionTimeoutMs", "60000", json!(60000)),
        ("datahub.enabled", "true", json!(true)),
        ("datahub.endpoint", "dh.env:9093", json!("dh.env:9093")),
        ("datahub.accessId", "env-id", json!("env-id")),
        ("datahub.accessKey", "env-key", json!("***")),
        ("datahub.project", "envproj", json!("envproj")),
        ("datahub.topic", "envtopic", json!("envtopic")),
        ("datahub.consumerGroup", "envgroup", json!("envgroup")),
        ("checkpoint.intervalMs", "10000", json!(10000)),
        ("checkpoint.timeoutMs", "20000", json!(20000)),
        ("output.path", "/data/env", json!("/data/env")),
        ("output.format", "csv", json!("csv")),
        ("output.compression", "gzip", json!("gzip")),
        ("output.rolling.sizeBytes", "2048", json!(2048)),
        ("output.rolling.intervalMs", "2000", json!(2000)),
        ("output.rolling.inactivityMs", "200", json!(200)),
        ("output.parquet.rowGroupBytes", "131072", json!(131072)),
        ("output.maxRecordBytes", "4096", json!(4096)),
        ("output.maxRetries", "0", json!(0)),
        ("monitoring.port", "0", json!(0)),
        ("monitoring.metrics.enabled", "yes", json!(true)),
        ("monitoring.alerts.latencyThresholdMs", "5", json!(5)),
        ("monitoring.alerts.checkpointFailureRate", "1", json!(1.0)),
        ("monitoring.alerts.loadThreshold", "0", json!(0.0)),
        ("shutdown.timeoutMs", "1000", json!(1000)),
        ("logging.level", "DEBUG", json!("debug")),
        ("logging.format", "text", json!("text")),
        ("collector.name", "pg-main", json!("pg-main")),
        ("collector.slotName", "slot_a", json!("slot_a")),
        ("collector.publicationName", "pub_a", json!("pub_a")),
        ("collector.offsetsTopic", "offs", json!("offs")),
        ("collector.offsetStore", "file", json!("file")),
        (
            "collector.offsetFile",
            "/var/lib/rtdp/pos.json",
            json!("/var/lib/rtdp/pos.json"),
        ),
        ("collector.producerMode", "idempotent", json!("idempotent")),
        ("collector.topicPartitions", "6", json!(6)),
        ("collector.snapshotMode", "never", json!("never")),
        ("collector.pollIntervalMs", "50", json!(50)),
        ("database.pdb", "ORCLPDB1", json!("ORCLPDB1")),
    ]
}

#[test]
fn every_short_env_name_wins_over_the_file() {
    let f = yaml_file(FULL_FILE);
    let values = override_values();
    let mut tested = 0;
    for key in known_keys() {
        let Some(short) = key.short_env else { continue };
        let (_, raw, expected) = values
            .iter()
            .find(|(p, _, _)| *p == key.path)
            .unwrap_or_else(|| panic!("add a test value for {}", key.path));
        let c = load(Some(f.path()), &env(&[(short, raw)]))
            .unwrap_or_else(|e| panic!("{short}={raw}: {e}"));
        assert_eq!(
            &at(&c, key.path),
            expected,
            "{short} must override {}",
            key.path
        );
        assert_eq!(c.sources.env_var(key.path), Some(short));
        tested += 1;
    }
    assert!(tested >= 35, "only {tested} short names tested");
}

#[test]
fn every_pipeline_env_name_wins_over_the_file_and_the_short_name() {
    let f = yaml_file(FULL_FILE);
    for (path, raw, expected) in override_values() {
        let key = known_keys()
            .into_iter()
            .find(|k| k.path == path)
            .expect("known key");
        assert_eq!(key.env, env_name(path));
        let mut vars = env(&[(key.env.as_str(), raw)]);
        if let Some(short) = key.short_env {
            // The short name carries the file's value; the PIPELINE_ name must win.
            let file_value = at(&load(Some(f.path()), &HashMap::new()).expect("file"), path);
            let file_raw = match file_value {
                Value::String(s) if s != "***" => s,
                Value::String(_) => "from-short-name".to_owned(),
                other => other.to_string(),
            };
            vars.insert(short.to_owned(), file_raw);
        }
        let c = load(Some(f.path()), &vars).unwrap_or_else(|e| panic!("{}={raw}: {e}", key.env));
        assert_eq!(at(&c, path), expected, "{} must override {path}", key.env);
        assert_eq!(c.sources.env_var(path), Some(key.env.as_str()));
    }
}

#[test]
fn secrets_from_env_are_exposed_only_through_expose() {
    let c = load(
        None,
        &env(&[
            ("DATABASE_PASSWORD", "pw-db-1"),
            ("KAFKA_SASL_PASSWORD", "pw-sasl-2"),
            ("PIPELINE_DATAHUB_ACCESS_KEY", "pw-dh-3"),
        ]),
    )
    .expect("valid");
    assert_eq!(c.database.password.expose(), "pw-db-1");
    assert_eq!(c.kafka.sasl_password.expose(), "pw-sasl-2");
    assert_eq!(c.datahub.access_key.expose(), "pw-dh-3");
    let debug = format!("{c:?}");
    let json = serde_json::to_string(&c).expect("redacted json");
    for secret in ["pw-db-1", "pw-sasl-2", "pw-dh-3"] {
        assert!(!debug.contains(secret), "{secret} in Debug");
        assert!(!json.contains(secret), "{secret} in JSON");
    }
}

#[test]
fn env_strings_are_coerced_by_the_key_type() {
    let c = load(
        None,
        &env(&[
            ("DATABASE_PASSWORD", "123456"),
            ("DATABASE_NAME", "007"),
            ("DATABASE_USERNAME", "true"),
            ("DATAHUB_ENABLED", "TRUE"),
            ("DATAHUB_ENDPOINT", "dh:9092"),
            ("MONITORING_PORT", " 9100 "),
            ("PIPELINE_MONITORING_ALERTS_LOAD_THRESHOLD", "0.75"),
            ("OUTPUT_FORMAT", "Parquet"),
            ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("LOG_LEVEL", "ERROR"),
        ]),
    )
    .expect("valid");
    assert_eq!(
        c.database.password.expose(),
        "123456",
        "a string key keeps digits as text"
    );
    assert_eq!(c.database.name, "007");
    assert_eq!(c.database.username, "true");
    assert!(c.datahub.enabled);
    assert_eq!(c.monitoring.port, 9100);
    assert_eq!(c.monitoring.alerts.load_threshold, 0.75);
    assert_eq!(c.output.format, OutputFormat::Parquet);
    assert_eq!(c.kafka.security_protocol, SecurityProtocol::SaslSsl);
    assert_eq!(c.logging.level, LogLevel::Error);
}

#[test]
fn empty_env_values_count_as_unset() {
    let f = yaml_file("database:\n  host: from-file\nmonitoring:\n  port: 9000\n");
    let c = load(
        Some(f.path()),
        &env(&[("DATABASE_HOST", ""), ("MONITORING_PORT", "")]),
    )
    .expect("valid");
    assert_eq!(c.database.host, "from-file");
    assert_eq!(c.monitoring.port, 9000);
}

#[test]
fn unparseable_env_values_name_the_variable() {
    let e = errors_of(load(
        None,
        &env(&[
            ("MONITORING_PORT", "eighty"),
            ("OUTPUT_ROLLING_SIZE", "12MB"),
            ("PIPELINE_DATAHUB_ENABLED", "maybe"),
            ("OUTPUT_FORMAT", "xml"),
            ("DATABASE_PORT", "70000"),
        ]),
    ));
    assert_eq!(e.0.len(), 5, "{e}");
    assert_has(
        &e,
        "monitoring.port (from MONITORING_PORT)",
        "expected an integer, got string \"eighty\"",
    );
    assert_has(
        &e,
        "output.rolling.sizeBytes (from OUTPUT_ROLLING_SIZE)",
        "expected an integer, got string \"12MB\"",
    );
    assert_has(
        &e,
        "datahub.enabled (from PIPELINE_DATAHUB_ENABLED)",
        "expected true or false",
    );
    assert_has(
        &e,
        "output.format (from OUTPUT_FORMAT)",
        "expected one of json|csv|parquet, got \"xml\"",
    );
    assert_has(
        &e,
        "database.port (from DATABASE_PORT)",
        "between 0 and 65535, got 70000",
    );
}

#[test]
fn misspelt_pipeline_variables_are_reported_and_foreign_ones_ignored() {
    let e = errors_of(load(
        None,
        &env(&[
            ("PIPELINE_OUTPUT_ROLLING_SIZEBYTES", "2048"),
            ("PIPELINE_WORKSPACE", "/ci"),
        ]),
    ));
    assert_eq!(e.0.len(), 1, "{e}");
    assert_has(
        &e,
        "PIPELINE_OUTPUT_ROLLING_SIZEBYTES (environment)",
        "did you mean PIPELINE_OUTPUT_ROLLING_SIZE_BYTES?",
    );
}

#[test]
fn kafka_properties_from_env() {
    let f = yaml_file("kafka:\n  properties:\n    linger.ms: \"10\"\n    acks: all\n");
    let c = load(
        Some(f.path()),
        &env(&[
            ("PIPELINE_KAFKA_PROPERTIES_LINGER_MS", "50"),
            ("PIPELINE_KAFKA_PROPERTIES_SSL_CA_LOCATION", "/ca.pem"),
        ]),
    )
    .expect("valid");
    let props: Vec<(String, String)> = c.kafka_client_properties();
    let get = |k: &str| props.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("linger.ms"), Some("50"));
    assert_eq!(get("acks"), Some("all"));
    assert_eq!(get("ssl.ca.location"), Some("/ca.pem"));
    assert_eq!(
        c.sources.env_var("kafka.properties.linger.ms"),
        Some("PIPELINE_KAFKA_PROPERTIES_LINGER_MS")
    );
}

#[test]
fn an_invalid_file_reports_every_problem_with_its_key() {
    let f = yaml_file(
        r#"
database:
  port: abc
  hots: db1
kafka:
  topic: "bad topic!"
  sessionTimeoutMs: 1000
  securityProtocol: sasl_ssl
checkpoint:
  intervalMs: 500
output:
  format: csv
  compression: snappy
  rolling:
    sizeBytes: 10
  maxRetries: 1.5
monitoring:
  alerts:
    loadThreshold: 2
logging:
  level: verbose
flink:
  checkpoint:
    interval: 60000
"#,
    );
    let e = errors_of(load_and_validate(
        Some(f.path()),
        &HashMap::new(),
        Service::Worker,
    ));
    let text = e.to_string();
    assert!(
        text.starts_with("Configuration is invalid:\n  - "),
        "{text}"
    );
    assert_has(
        &e,
        "database.port",
        "expected an integer, got string \"abc\"",
    );
    assert_has(&e, "database.hots", "did you mean database.host?");
    assert_has(&e, "kafka.topic", "may contain only letters, digits");
    assert_has(
        &e,
        "kafka.sessionTimeoutMs",
        "must be between 6000 and 300000 (got 1000)",
    );
    assert_has(
        &e,
        "kafka.saslPassword",
        "is required when kafka.securityProtocol is sasl_ssl",
    );
    assert_has(
        &e,
        "kafka.saslUsername",
        "is required when kafka.securityProtocol is sasl_ssl",
    );
    assert_has(
        &e,
        "checkpoint.intervalMs",
        "must be between 1000 and 86400000 (got 500)",
    );
    assert_has(
        &e,
        "output.compression",
        "snappy is only available for parquet; use gzip or zstd for json/csv",
    );
    assert_has(
        &e,
        "output.rolling.sizeBytes",
        "must be at least 1024 (got 10)",
    );
    assert_has(
        &e,
        "output.maxRetries",
        "expected an integer, got float 1.5",
    );
    assert_has(
        &e,
        "monitoring.alerts.loadThreshold",
        "must be between 0 and 1 (got 2)",
    );
    assert_has(
        &e,
        "logging.level",
        "expected one of trace|debug|info|warn|error, got \"verbose\"",
    );
    assert_has(
        &e,
        "flink",
        "rtdp has no Flink; checkpoint settings live under checkpoint: (intervalMs, timeoutMs)",
    );
    assert_eq!(e.0.len(), 13, "one error per problem, no duplicates:\n{e}");
    // The structural problems alone, without the rules:
    let structural = errors_of(load(Some(f.path()), &HashMap::new()));
    assert_eq!(structural.0.len(), 5, "{structural}");
}

#[test]
fn display_format() {
    let f = yaml_file("monitoring:\n  port: abc\n");
    let e = errors_of(load(Some(f.path()), &HashMap::new()));
    assert_eq!(
        e.to_string(),
        "Configuration is invalid:\n  - monitoring.port: expected an integer, got string \"abc\""
    );
}

#[test]
fn unknown_keys_and_sections() {
    let f = yaml_file(
        "checkpoint:\n  interval: 1000\nkafka:\n  bootstrap_servers: x:1\nmystery: 1\noutput:\n  rolling: big\n",
    );
    let e = errors_of(load(Some(f.path()), &HashMap::new()));
    assert_has(
        &e,
        "checkpoint.interval",
        "unknown key; did you mean checkpoint.intervalMs?",
    );
    assert_has(
        &e,
        "kafka.bootstrap_servers",
        "did you mean kafka.bootstrapServers?",
    );
    assert_has(
        &e,
        "mystery",
        "unknown key (known here: database, collector, oracle, kafka, datahub",
    );
    assert_has(
        &e,
        "output.rolling",
        "expected a section with keys (sizeBytes, intervalMs, inactivityMs), got a string",
    );
    assert_eq!(e.0.len(), 4, "{e}");
}

#[test]
fn yaml_syntax_errors_carry_line_and_column() {
    let f = yaml_file("database:\n  host: a\n port: 1\n");
    let e = errors_of(load(Some(f.path()), &HashMap::new()));
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!(e.0[0].key, f.path().display().to_string());
    assert!(
        e.0[0].rule.contains("YAML syntax error") && e.0[0].rule.contains("line 3 column 2"),
        "{e}"
    );
}

#[test]
fn a_missing_file_is_reported_together_with_env_problems() {
    let missing = Path::new("/nonexistent/rtdp/application.yml");
    let e = errors_of(load(Some(missing), &env(&[("MONITORING_PORT", "x")])));
    assert_has(&e, "/nonexistent/rtdp/application.yml", "file not found");
    assert_has(
        &e,
        "monitoring.port (from MONITORING_PORT)",
        "expected an integer",
    );
    assert_eq!(e.0.len(), 2, "{e}");
}

#[test]
fn the_top_level_must_be_a_mapping() {
    let f = yaml_file("- a\n- b\n");
    let e = errors_of(load(Some(f.path()), &HashMap::new()));
    assert!(
        e.0[0]
            .rule
            .contains("expected a mapping of sections at the top level, got a list"),
        "{e}"
    );
}

#[test]
fn secrets_never_reach_error_messages() {
    let f = yaml_file(
        r#"
database:
  password: 918273645
kafka:
  saslPassword: [s3cr3t-list-item]
  properties:
    ssl.key.password: {nested: s3cr3t-nested}
datahub:
  accessKey: 5551212.5
"#,
    );
    let e = errors_of(load(
        Some(f.path()),
        &env(&[("DATABASE_PASSWORD", "env-s3cr3t")]),
    ));
    let text = e.to_string();
    for leaked in [
        "918273645",
        "s3cr3t-list-item",
        "s3cr3t-nested",
        "5551212",
        "env-s3cr3t",
    ] {
        assert!(!text.contains(leaked), "{leaked} leaked into:\n{text}");
    }
    // DATABASE_PASSWORD replaces the rejected file value: the environment wins, so the
    // file's problem with that key is no problem any more.
    assert_eq!(e.for_key("database.password").count(), 0, "{text}");
    assert_has(&e, "kafka.saslPassword", "expected a string, got a list");
    assert_has(&e, "kafka.properties.ssl.key.password", "got a mapping");
    assert_has(&e, "datahub.accessKey", "expected a string, got a float");

    // Rule errors about secrets do not show them either.
    let c = load(
        None,
        &env(&[
            ("DATAHUB_ENABLED", "true"),
            ("DATAHUB_ACCESS_KEY", "dh-s3cr3t"),
        ]),
    )
    .expect("loads");
    let e = c.validate(Service::Worker).expect_err("datahub needs more");
    assert!(!e.to_string().contains("dh-s3cr3t"));
    assert!(!format!("{e:?}").contains("dh-s3cr3t"));
}

#[test]
fn yaml_string_keys_refuse_unquoted_numbers() {
    let f = yaml_file("database:\n  name: 12345\n  port: \"3306\"\n");
    let e = errors_of(load(Some(f.path()), &HashMap::new()));
    assert_has(
        &e,
        "database.name",
        "expected a string, got integer 12345; quote the value in YAML",
    );
    assert_eq!(
        e.0.len(),
        1,
        "a quoted number is fine for an integer key:\n{e}"
    );
}

#[test]
fn rule_errors_name_the_env_variable_that_set_the_value() {
    let c = load(
        None,
        &env(&[
            ("CHECKPOINT_INTERVAL", "10"),
            ("PIPELINE_OUTPUT_ROLLING_SIZE_BYTES", "1"),
        ]),
    )
    .expect("types ok");
    let e = c.validate(Service::Worker).expect_err("out of range");
    assert_has(
        &e,
        "checkpoint.intervalMs (from CHECKPOINT_INTERVAL)",
        "must be between 1000 and 86400000 (got 10)",
    );
    assert_has(
        &e,
        "output.rolling.sizeBytes (from PIPELINE_OUTPUT_ROLLING_SIZE_BYTES)",
        "must be at least 1024",
    );
    assert_eq!(e.for_key("checkpoint.intervalMs").count(), 1);
}

#[test]
fn collector_rules() {
    let c = load(
        None,
        &env(&[
            ("DATABASE_HOST", " "),
            ("DATABASE_TABLES", "A,,B"),
            ("DATABASE_PORT", "0"),
        ]),
    )
    .expect("types ok");
    let e = c.validate(Service::Collector).expect_err("collector rules");
    assert_has(
        &e,
        "database.host (from DATABASE_HOST)",
        "must not be empty",
    );
    assert_has(&e, "database.username", "must not be empty");
    assert_has(&e, "database.tables (from DATABASE_TABLES)", "empty entry");
    assert_has(
        &e,
        "database.port (from DATABASE_PORT)",
        "must be between 1 and 65535 (got 0)",
    );
    let worker = c
        .validate(Service::Worker)
        .expect_err("port 0 is wrong for everyone");
    assert_eq!(worker.0.len(), 1, "{worker}");
}

#[test]
fn bootstrap_servers_rules() {
    let c = load(
        None,
        &env(&[("KAFKA_BOOTSTRAP_SERVERS", "k1:9092, k2 ,k3:x,,[::1]:9092")]),
    )
    .expect("types ok");
    let e = c.validate(Service::Worker).expect_err("bad entries");
    let bad: Vec<_> = e.for_key("kafka.bootstrapServers").collect();
    assert_eq!(bad.len(), 3, "{e}");
    assert!(
        bad.iter()
            .any(|x| x.rule.contains("\"k2\" is not host:port")),
        "{e}"
    );
    assert!(
        bad.iter()
            .any(|x| x.rule.contains("\"k3:x\" has a port that is not a number")),
        "{e}"
    );
    assert!(bad.iter().any(|x| x.rule.contains("empty entry")), "{e}");
}

#[test]
fn sasl_without_password_mechanisms() {
    let c = load(
        None,
        &env(&[
            ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("KAFKA_SASL_MECHANISM", "GSSAPI"),
        ]),
    )
    .expect("ok");
    c.validate(Service::Worker)
        .expect("kerberos needs no password");
    let c = load(
        None,
        &env(&[
            ("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
            ("KAFKA_SASL_USERNAME", "u"),
            ("KAFKA_SASL_PASSWORD", "p"),
        ]),
    )
    .expect("ok");
    c.validate(Service::Worker)
        .expect("complete PLAIN settings");
    let props = c.kafka_client_properties();
    assert!(props.contains(&("security.protocol".into(), "sasl_plaintext".into())));
    assert!(props.contains(&("sasl.mechanism".into(), "PLAIN".into())));
    assert!(props.contains(&("sasl.username".into(), "u".into())));
    assert!(props.contains(&("sasl.password".into(), "p".into())));
}

#[test]
fn datahub_requires_its_settings_each_on_its_own() {
    let c = load(None, &env(&[("DATAHUB_ENABLED", "true")])).expect("types ok");
    let e = c.validate(Service::Worker).expect_err("incomplete");
    for key in [
        "datahub.endpoint",
        "datahub.accessId",
        "datahub.accessKey",
        "datahub.project",
        "datahub.topic",
    ] {
        assert_has(&e, key, "is required when datahub.enabled is true");
    }
    assert_eq!(e.0.len(), 5, "{e}");
}

#[test]
fn datahub_settings_drive_the_kafka_client() {
    let c = load(
        None,
        &env(&[
            ("DATAHUB_ENABLED", "true"),
            ("DATAHUB_ENDPOINT", "dh-cn-hangzhou.aliyuncs.com:9092"),
            ("DATAHUB_ACCESS_ID", "LTAIid"),
            ("DATAHUB_ACCESS_KEY", "akey"),
            ("DATAHUB_PROJECT", "proj"),
            ("DATAHUB_TOPIC", "orders"),
            ("KAFKA_BOOTSTRAP_SERVERS", "ignored:9092"),
            ("PIPELINE_KAFKA_PROPERTIES_LINGER_MS", "5"),
        ]),
    )
    .expect("valid");
    c.validate(Service::Worker).expect("complete");
    assert_eq!(
        c.kafka_client_properties(),
        vec![
            (
                "bootstrap.servers".to_owned(),
                "dh-cn-hangzhou.aliyuncs.com:9092".to_owned()
            ),
            ("security.protocol".to_owned(), "sasl_ssl".to_owned()),
            ("sasl.mechanism".to_owned(), "PLAIN".to_owned()),
            ("sasl.username".to_owned(), "LTAIid".to_owned()),
            ("sasl.password".to_owned(), "akey".to_owned()),
            ("linger.ms".to_owned(), "5".to_owned()),
        ]
    );
    assert_eq!(c.effective_topic(), "proj.orders");
    assert_eq!(
        c.effective_group_id(),
        "proj.rtdp-stream-worker",
        "falls back to kafka.groupId"
    );
    let c = PipelineConfig {
        datahub: rtdp_core::config::DataHubConfig {
            consumer_group: "cg".into(),
            ..c.datahub
        },
        ..c
    };
    assert_eq!(c.effective_group_id(), "proj.cg");
}

#[test]
fn plain_kafka_client_properties() {
    let c = PipelineConfig::default();
    assert_eq!(
        c.kafka_client_properties(),
        vec![
            ("bootstrap.servers".to_owned(), "localhost:9092".to_owned()),
            ("security.protocol".to_owned(), "plaintext".to_owned())
        ]
    );
    assert_eq!(c.effective_topic(), "cdc-events");
    assert_eq!(c.effective_group_id(), "rtdp-stream-worker");
}

#[test]
fn kafka_properties_values_are_never_printed() {
    let f = yaml_file("kafka:\n  properties:\n    ssl.key.password: pr0p-s3cr3t\n");
    let c = load(Some(f.path()), &HashMap::new()).expect("valid");
    assert!(!format!("{c:?}").contains("pr0p-s3cr3t"));
    assert!(!serde_json::to_string(&c)
        .expect("json")
        .contains("pr0p-s3cr3t"));
    assert_eq!(
        at(&c, "kafka.properties"),
        json!({"ssl.key.password": "***"})
    );
}

#[test]
fn yaml_anchors_and_merges_work() {
    let f = yaml_file("x-common: &ms\n  intervalMs: 5000\ncheckpoint:\n  <<: *ms\n");
    let e = errors_of(load(Some(f.path()), &HashMap::new()));
    // The anchor holder itself is an unknown key; the merge applied.
    assert_has(&e, "x-common", "unknown key");
    let f = yaml_file("checkpoint: &c\n  intervalMs: 5000\n");
    let c = load(Some(f.path()), &HashMap::new()).expect("valid");
    assert_eq!(c.checkpoint.interval_ms, 5000);
}

proptest! {
    #[test]
    fn any_port_round_trips_through_env(port in any::<u16>()) {
        let text = port.to_string();
        let c = load(None, &env(&[("MONITORING_PORT", &text), ("PIPELINE_DATABASE_PORT", &text)]))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(c.monitoring.port, port);
        prop_assert_eq!(c.database.port, port);
    }

    #[test]
    fn any_string_survives_a_string_key(s in "[^\\x00]{1,40}") {
        let c = load(None, &env(&[("DATABASE_SCHEMA", &s), ("KAFKA_SASL_PASSWORD", &s)]))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&c.database.schema, &s);
        prop_assert_eq!(c.kafka.sasl_password.expose(), s.as_str());
    }

    #[test]
    fn garbage_env_never_panics(value in ".{0,20}") {
        let vars = env(&[
            ("MONITORING_PORT", &value), ("OUTPUT_FORMAT", &value), ("DATAHUB_ENABLED", &value),
            ("PIPELINE_MONITORING_ALERTS_LOAD_THRESHOLD", &value), ("CHECKPOINT_INTERVAL", &value),
        ]);
        let _ = load_and_validate(None, &vars, Service::Collector);
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_shipped_application_yml_is_valid_for_both_services() {
    let path = repo_root().join("config/application.yml");
    if !path.exists() {
        eprintln!("note: {} does not exist yet; skipping", path.display());
        return;
    }
    let c =
        load(Some(&path), &HashMap::new()).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
    c.validate(Service::Worker)
        .unwrap_or_else(|e| panic!("worker:\n{e}"));
    // The collector needs a database user; the shipped file may leave it to the env.
    let c = load(
        Some(&path),
        &env(&[("DATABASE_USERNAME", "rtdp"), ("DATABASE_PASSWORD", "pw")]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    c.validate(Service::Collector)
        .unwrap_or_else(|e| panic!("collector:\n{e}"));
}

#[test]
fn the_configuration_reference_lists_every_key_and_env_name() {
    let path = repo_root().join("docs/CONFIGURATION.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for key in known_keys() {
        assert!(
            doc.contains(&format!("`{}`", key.path)),
            "{} missing from CONFIGURATION.md",
            key.path
        );
        assert!(
            doc.contains(&key.env),
            "{} missing from CONFIGURATION.md",
            key.env
        );
        if let Some(short) = key.short_env {
            assert!(
                doc.contains(&format!("`{short}`")),
                "{short} missing from CONFIGURATION.md"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_yaml_never_panics(text in "(?s).{0,200}") {
        let f = yaml_file(&text);
        let _ = load_and_validate(Some(f.path()), &HashMap::new(), Service::Worker);
    }

    #[test]
    fn yaml_shaped_garbage_never_panics(
        section in "(database|kafka|output|monitoring|flink|x)",
        key in "(port|host|properties|rolling|sizeBytes|alerts|enabled|[a-z]{1,6})",
        value in "(-?[0-9]{1,25}|[a-z]{0,5}|\\[1, 2\\]|\\{a: 1\\}|~|true|1\\.5e400|\"[^\"]{0,8}\")",
    ) {
        let f = yaml_file(&format!("{section}:\n  {key}: {value}\n"));
        let _ = load_and_validate(Some(f.path()), &HashMap::new(), Service::Collector);
    }
}
