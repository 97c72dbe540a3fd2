//! The worker's command line and configuration as an operator meets them: a bad file is
//! refused with exit code 2 and every problem named by its key, `check-config` accepts a
//! good one, the environment wins over the file, and secrets never reach stderr.

use crate::common::*;
use rtdp_testkit::kafka;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

/// Runs the worker binary to completion with exactly this environment (plus PATH).
fn run_cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(WORKER);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Exits at once on a config error; a test that gets here with a valid config only
    // runs check-config, which exits too.
    cmd.output().expect("run stream-worker")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The `  - <key>: <rule>` lines of a "Configuration is invalid:" report.
fn problems(stderr: &str) -> Vec<(String, String)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  - "))
        .map(|l| {
            let (k, r) = l.split_once(": ").unwrap_or((l, ""));
            (k.to_string(), r.to_string())
        })
        .collect()
}

fn write(dir: &Path, name: &str, yaml: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, yaml).unwrap();
    p.display().to_string()
}

const SECRETS: [&str; 7] = [
    "kp-file-SECRET-1",
    "dh-file-SECRET-2",
    "prop-file-SECRET-3",
    "kp-env-SECRET-4",
    "dh-env-SECRET-5",
    "typo-env-SECRET-6",
    "98765432",
];

#[test]
fn an_invalid_file_exits_2_naming_every_problem_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "bad.yml",
        &format!(
            r#"
kafka:
  bootstrapServers: "127.0.0.1:9"
  topic: cdc-events
  securityProtocol: sasl_ssl
  saslPassword: "kp-file-SECRET-1"
  properties:
    ssl.key.password: "prop-file-SECRET-3"
datahub:
  accessKey: "dh-file-SECRET-2"
database:
  password: 98765432
output:
  path: "{}"
  format: xml
  compresion: gzip
  rolling:
    sizeBytes: 10
monitoring:
  port: 70000
"#,
            out.display()
        ),
    );
    let env = [
        ("KAFKA_SASL_PASSWORD", "kp-env-SECRET-4"),
        ("DATAHUB_ACCESS_KEY", "dh-env-SECRET-5"),
        // A misspelt variable holding a secret: named, never shown.
        ("PIPELINE_KAFKA_SASL_PASWORD", "typo-env-SECRET-6"),
    ];
    for args in [
        vec!["--config", file.as_str()],
        vec!["--config", file.as_str(), "check-config"],
    ] {
        let o = run_cli(&args, &env);
        let stderr = text(&o.stderr);
        let stdout = text(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: exit code; stderr:\n{stderr}"
        );
        let found = problems(&stderr);
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        for (key, rule_has) in [
            ("output.compresion", "unknown key"),
            ("monitoring.port", "65535"),
            ("output.format", "json"),
            ("output.rolling.sizeBytes", "1024"),
            // A secret key with a number: refused, the number not repeated.
            ("database.password", "string"),
            (
                "PIPELINE_KAFKA_SASL_PASWORD (environment)",
                "environment name",
            ),
            ("kafka.saslUsername", "required"),
        ] {
            let rule = found
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, r)| r.as_str())
                .unwrap_or_else(|| {
                    panic!("{args:?}: no problem reported for {key}; got {keys:?}\n{stderr}")
                });
            assert!(
                rule.contains(rule_has),
                "{args:?}: {key}: {rule:?} lacks {rule_has:?}"
            );
        }
        assert_eq!(
            found.len(),
            7,
            "{args:?}: exactly these problems:\n{stderr}"
        );
        for s in SECRETS {
            assert!(
                !stderr.contains(s),
                "{args:?}: secret {s} in stderr:\n{stderr}"
            );
            assert!(!stdout.contains(s), "{args:?}: secret {s} in stdout");
        }
    }
    assert!(
        !out.exists(),
        "a refused configuration must not start anything"
    );
}

#[test]
fn yaml_syntax_errors_give_the_position_not_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    for (n, yaml) in [
        "kafka:\n  saslPassword: \"syn-SECRET-1\n",
        "kafka:\n  saslPassword: syn-SECRET-2: x\n",
        "kafka:\n  saslPassword: syn-SECRET-3\n  saslPassword: syn-SECRET-4\n",
        "kafka:\n  saslPassword: [syn-SECRET-5\n",
    ]
    .iter()
    .enumerate()
    {
        let file = write(dir.path(), &format!("syn{n}.yml"), yaml);
        let o = run_cli(&["--config", &file, "check-config"], &[]);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{yaml:?}: {stderr}");
        assert!(stderr.contains("YAML syntax error"), "{yaml:?}: {stderr}");
        assert!(stderr.contains("line "), "{yaml:?}: no position: {stderr}");
        assert!(
            !stderr.contains("SECRET"),
            "{yaml:?}: secret in stderr: {stderr}"
        );
    }
}

fn valid_yaml(out: &Path, topic: &str, format: &str, port: &str) -> String {
    format!(
        r#"
kafka:
  bootstrapServers: "{}"
  topic: {topic}
  groupId: cfg-{topic}
  saslPassword: "unused-SECRET"
output:
  path: "{}"
  format: {format}
  rolling:
    inactivityMs: 300
monitoring:
  port: {port}
logging:
  level: info
"#,
        kafka().bootstrap(),
        out.display()
    )
}

#[test]
fn check_config_accepts_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "good.yml",
        &valid_yaml(&out, "cdc-events", "json", "0"),
    );
    let o = run_cli(&["--config", &file, "check-config"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("Configuration is valid."));
    // The file can also come from RTDP_CONFIG.
    let o = run_cli(&["check-config"], &[("RTDP_CONFIG", &file)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // The repository's own reference file is valid.
    let reference = rtdp_testkit::repo_root().join("config/application.yml");
    let o = run_cli(
        &["--config", &reference.display().to_string(), "check-config"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(!out.exists(), "check-config writes nothing");
}

/// `config/application.yml` documents `stream-worker check-config --config FILE`.
#[test]
fn check_config_takes_the_config_option_after_the_subcommand_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "good.yml",
        &valid_yaml(&dir.path().join("out"), "cdc-events", "json", "0"),
    );
    let o = run_cli(&["check-config", "--config", &file], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn environment_overrides_the_file_in_check_config_and_in_a_real_run() {
    let k = kafka();
    let topic = k.unique_topic("cfg-env");
    k.create_topic(&topic, 1);
    produce_orders(&topic, 0..200);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // The file says csv; the environment says parquet and wins.
    let file = write(
        dir.path(),
        "csv.yml",
        &valid_yaml(&out, &topic, "csv", "8080"),
    );
    let o = run_cli(
        &["--config", &file, "check-config"],
        &[("OUTPUT_FORMAT", "parquet"), ("MONITORING_PORT", "8081")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    // A real run (the harness sets MONITORING_PORT to a free port, over the file's 8080).
    let env = vec![
        ("OUTPUT_FORMAT".to_string(), "parquet".to_string()),
        ("NO_COLOR".to_string(), "1".to_string()),
    ];
    let w = Worker::start_with_args(&["--config", &file], &env, &dir.path().join("w.log"));
    w.wait_metric("rtdp_records_out_total", 200.0, LONG);
    w.stop_ok();
    let files = data_files(&out);
    assert!(!files.is_empty());
    for f in &files {
        assert!(
            f.to_string_lossy().ends_with(".parquet"),
            "{}: not parquet",
            f.display()
        );
    }
    let rows: usize = read_output(&files)
        .iter()
        .map(|d| d["rows"].as_array().unwrap().len())
        .sum();
    assert_eq!(rows, 200);
    assert!(
        !w_log_contains(&dir.path().join("w.log"), "unused-SECRET"),
        "a secret reached the log"
    );
}

fn w_log_contains(log: &Path, s: &str) -> bool {
    std::fs::read_to_string(log).unwrap_or_default().contains(s)
}

/// The environment wins over the file — also over a file value that is invalid.
#[test]
fn environment_override_of_an_invalid_file_value_passes() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "port.yml",
        &valid_yaml(&dir.path().join("out"), "cdc-events", "csv", "70000"),
    );
    let o = run_cli(
        &["--config", &file, "check-config"],
        &[("OUTPUT_FORMAT", "parquet"), ("MONITORING_PORT", "8081")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}
