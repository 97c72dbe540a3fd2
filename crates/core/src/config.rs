//! Pipeline configuration: one YAML file plus environment overrides, validated at once.
//!
//! Owns [`PipelineConfig`] (every key, its type, default and rule) and the loader. It
//! promises:
//!
//! - **Precedence**: defaults < YAML file < short environment name (`OUTPUT_PATH`) <
//!   `PIPELINE_` name (`PIPELINE_OUTPUT_PATH`). Every key has a `PIPELINE_` name: the path's
//!   camelCase segments as UPPER_SNAKE joined by `_` (`output.rolling.sizeBytes` ->
//!   `PIPELINE_OUTPUT_ROLLING_SIZE_BYTES`); the short names are the ones users of the
//!   Flink-based predecessor already know. An environment variable set to the empty string
//!   counts as not set. Entries of the free-form map `kafka.properties` come from
//!   `PIPELINE_KAFKA_PROPERTIES_<NAME>`, `<NAME>` lower-cased with `_` -> `.`.
//! - **Every problem at once**: a missing or unreadable file, YAML syntax errors (with line
//!   and column), unknown keys (with a "did you mean"), wrong types per key, unparseable
//!   environment values and, through [`load_and_validate`], the semantic rules of
//!   [`PipelineConfig::validate`] are all collected into one [`ConfigErrors`], each with
//!   the key (and the environment variable, when the value came from there) and the rule.
//! - **Secrets stay secret**: values of secret keys (`database.password`,
//!   `kafka.saslPassword`, `datahub.accessKey`, all `kafka.properties` values) are
//!   [`Secret`]s and never appear in `Debug`, in an error message, or in the redacted
//!   `Serialize` output of [`PipelineConfig`].
//! - Environment values are strings and are coerced by the type of their key; a string
//!   key keeps `"123456"` as a string. In the YAML file a string key must hold a string
//!   (`password: 0123` is refused rather than silently read as `123`), while numbers and
//!   booleans may also be written as quoted strings. A YAML null (`key:` with no value)
//!   means "use the default". Choices (`format: PARQUET`) are case-insensitive.
//!
//! [`load`] checks structure and types only; service-specific rules live in
//! [`PipelineConfig::validate`]. Binaries call [`load_and_validate_from_env`] and refuse
//! to start on error, printing the [`ConfigErrors`] as they are.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value as Json};
use serde_yaml_ng::Value as Yaml;

use crate::secret::{serialize_redacted, Secret};

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {rule}")]
pub struct ConfigError {
    /// The key's YAML path (`output.rolling.sizeBytes`), with the environment variable
    /// when the value came from there (`output.rolling.sizeBytes (from OUTPUT_ROLLING_SIZE)`),
    /// or the file name for problems with the file as a whole.
    pub key: String,
    /// What is wrong, in words. Never contains the value of a secret.
    pub rule: String,
}

/// Every problem found, in the order found (file, environment, rules).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_errors(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

fn render_errors(errors: &[ConfigError]) -> String {
    let mut out = String::from("Configuration is invalid:");
    for e in errors {
        out.push_str("\n  - ");
        out.push_str(&e.key);
        out.push_str(": ");
        out.push_str(&e.rule);
    }
    out
}

impl ConfigErrors {
    /// The problems reported for `key` (exact YAML path, with or without an env suffix).
    pub fn for_key<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a ConfigError> + 'a {
        self.0.iter().filter(move |e| {
            e.key == key
                || e.key
                    .strip_prefix(key)
                    .is_some_and(|r| r.starts_with(" (from "))
        })
    }
}

/// Which service is about to start: rules that only one of them needs depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The stream-worker (Kafka -> files).
    Worker,
    /// The cdc-collector (database -> Kafka).
    Collector,
}

// ---------------------------------------------------------------------------------------
// Choices
// ---------------------------------------------------------------------------------------

macro_rules! choice {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            /// The accepted spellings (matched case-insensitively).
            pub const VARIANTS: &'static [&'static str] = &[$($text),+];

            /// The canonical (lower-case) name.
            pub fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $text ),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let lower = s.trim().to_ascii_lowercase();
                match lower.as_str() {
                    $( $text => Ok(Self::$variant), )+
                    _ => Err(format!("expected one of {}, got {:?}", Self::VARIANTS.join("|"), s)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

choice! {
    /// The source database product.
    pub enum DatabaseType {
        /// Oracle, read through LogMiner.
        Oracle = "oracle",
        /// OceanBase (Oracle or MySQL mode).
        OceanBase = "oceanbase",
        /// PostgreSQL, read through logical replication.
        #[default]
        PostgreSql = "postgresql",
        /// MySQL or MariaDB, read from the row-based binlog.
        MySql = "mysql",
    }
}

choice! {
    /// Kafka `security.protocol`.
    pub enum SecurityProtocol {
        /// No TLS, no authentication.
        #[default]
        Plaintext = "plaintext",
        /// TLS without SASL.
        Ssl = "ssl",
        /// SASL without TLS.
        SaslPlaintext = "sasl_plaintext",
        /// SASL over TLS.
        SaslSsl = "sasl_ssl",
    }
}

impl SecurityProtocol {
    /// True for the two SASL protocols.
    pub fn is_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

choice! {
    /// How the collector publishes: Kafka transactions, or an idempotent producer where
    /// transactions are missing (DataHub).
    pub enum ProducerMode {
        /// Each Kafka transaction holds whole source transactions plus the new position.
        #[default]
        Transactional = "transactional",
        /// Idempotent producer, position stored after each acknowledged batch; the
        /// worker's positional de-duplication keeps files exactly-once.
        Idempotent = "idempotent",
    }
}

choice! {
    /// Where the collector keeps its position.
    pub enum OffsetStore {
        /// A compacted Kafka topic, written in the same transaction as the events.
        #[default]
        Kafka = "kafka",
        /// A JSON file on a persistent volume, replaced atomically after each batch.
        File = "file",
    }
}

choice! {
    /// Whether the collector reads the captured tables first.
    pub enum SnapshotMode {
        /// On first start (no stored position): read every captured table as `op: r`,
        /// then stream from the snapshot's point.
        #[default]
        Initial = "initial",
        /// Stream changes only, from the replication slot's position.
        Never = "never",
    }
}

choice! {
    /// Output file format.
    pub enum OutputFormat {
        /// JSON lines.
        #[default]
        Json = "json",
        /// CSV with a header row.
        Csv = "csv",
        /// Apache Parquet.
        Parquet = "parquet",
    }
}

choice! {
    /// Output compression.
    pub enum Compression {
        /// Uncompressed.
        #[default]
        None = "none",
        /// gzip (whole file for JSON/CSV, per page for Parquet).
        Gzip = "gzip",
        /// Snappy (Parquet only).
        Snappy = "snappy",
        /// Zstandard.
        Zstd = "zstd",
    }
}

choice! {
    /// Log verbosity.
    pub enum LogLevel {
        /// Everything.
        Trace = "trace",
        /// Diagnostic detail.
        Debug = "debug",
        /// Normal operation.
        #[default]
        Info = "info",
        /// Something unexpected that the service survived.
        Warn = "warn",
        /// Something failed.
        Error = "error",
    }
}

choice! {
    /// Log line format.
    pub enum LogFormat {
        /// Human-readable text.
        #[default]
        Text = "text",
        /// One JSON object per line.
        Json = "json",
    }
}

// ---------------------------------------------------------------------------------------
// The configuration
// ---------------------------------------------------------------------------------------

/// The whole configuration of a collector or worker.
///
/// `Serialize` gives a **redacted** view (secrets as `***`, `kafka.properties` values as
/// `***`) for `check-config` style output; it is not a dump to load back.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// The source database (collector only).
    pub database: DatabaseConfig,
    /// The collector's own settings (name, position store, snapshot, batching).
    pub collector: CollectorConfig,
    /// The Oracle (LogMiner) source's settings.
    pub oracle: OracleConfig,
    /// The Kafka cluster and topic between collector and worker.
    pub kafka: KafkaConfig,
    /// Alibaba Cloud DataHub over its Kafka protocol, replacing `kafka` when enabled.
    pub datahub: DataHubConfig,
    /// How often in-flight output is committed.
    pub checkpoint: CheckpointConfig,
    /// Output files.
    pub output: OutputConfig,
    /// Health, metrics and alert thresholds.
    pub monitoring: MonitoringConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Logging.
    pub logging: LoggingConfig,
    /// Which keys were set by which environment variable (filled by the loader; used to
    /// name the variable in error messages). Not part of the configuration's value: it is
    /// ignored by `==` and not serialized.
    #[serde(skip)]
    pub sources: ValueSources,
}

/// For each key set from the environment, the name of the variable that set it.
#[derive(Debug, Clone, Default)]
pub struct ValueSources(pub BTreeMap<String, String>);

impl PartialEq for ValueSources {
    fn eq(&self, _: &Self) -> bool {
        true // provenance is not part of a configuration's value
    }
}

impl ValueSources {
    /// The environment variable that set `key`, if any.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// `key`, or `key (from VAR)` when an environment variable set it.
    pub fn label(&self, key: &str) -> String {
        match self.env_var(key) {
            Some(var) => format!("{key} (from {var})"),
            None => key.to_owned(),
        }
    }
}

/// `database.*`: the source database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `database.type`: oracle | oceanbase | postgresql | mysql.
    #[serde(rename = "type")]
    pub kind: DatabaseType,
    /// Host name or IP address.
    pub host: String,
    /// TCP port, 1..=65535.
    pub port: u16,
    /// Login user.
    pub username: String,
    /// Login password (secret).
    #[serde(serialize_with = "serialize_redacted")]
    pub password: Secret,
    /// Database name (PostgreSQL, MySQL) or service name (Oracle).
    pub name: String,
    /// Schema to capture; empty = all schemas the tables select.
    pub schema: String,
    /// Tables to capture: comma-separated list, or `*` for all.
    pub tables: String,
    /// Tables to leave out: comma-separated list; empty = none.
    pub exclude_tables: String,
    /// Oracle multitenant: the PDB whose tables are captured (`name` is then the CDB
    /// root's service, where LogMiner runs); empty for a non-CDB.
    pub pdb: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            kind: DatabaseType::PostgreSql,
            host: "localhost".into(),
            port: 5432,
            username: String::new(),
            password: Secret::default(),
            name: String::new(),
            schema: String::new(),
            tables: "*".into(),
            exclude_tables: String::new(),
            pdb: String::new(),
        }
    }
}

impl DatabaseConfig {
    /// The entries of `tables`, trimmed; empty when all tables are meant (`*`).
    pub fn table_list(&self) -> Vec<&str> {
        split_list(&self.tables).filter(|t| *t != "*").collect()
    }

    /// The entries of `excludeTables`, trimmed.
    pub fn exclude_table_list(&self) -> Vec<&str> {
        split_list(&self.exclude_tables).collect()
    }
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|t| !t.is_empty())
}

/// `oracle.*`: how the Oracle source mines its redo (docs/ORACLE.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OracleConfig {
    /// SCNs mined per LogMiner window (doubled up to 10× while the collector is behind).
    pub window_scns: u64,
    /// Rows of V$LOGMNR_CONTENTS (and of a snapshot) fetched per round trip.
    pub fetch_size: u32,
    /// Changes held in memory for open transactions; beyond it the collector stops with
    /// an error naming the largest transaction (never drops them).
    pub max_buffered_changes: u64,
    /// Capture CLOB/NCLOB/BLOB columns (else they are left out of the events).
    pub lob_enabled: bool,
}

impl Default for OracleConfig {
    fn default() -> Self {
        Self {
            window_scns: 20_000,
            fetch_size: 10_000,
            max_buffered_changes: 500_000,
            lob_enabled: false,
        }
    }
}

/// `collector.*`: the collector's identity, position store, snapshot and batching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// Unique name of this collector: keys its position, names its Kafka transactional
    /// id (a second collector with the same name fences the first) and its slot.
    pub name: String,
    /// PostgreSQL replication slot; empty = `rtdp_<name>` (non-alphanumerics as `_`).
    pub slot_name: String,
    /// PostgreSQL publication the slot streams (created for the captured tables when
    /// missing); empty = the slot name.
    pub publication_name: String,
    /// Compacted topic holding the positions (key = collector name).
    pub offsets_topic: String,
    /// kafka | file.
    pub offset_store: OffsetStore,
    /// The position file when `offsetStore` is `file`.
    pub offset_file: PathBuf,
    /// transactional | idempotent.
    pub producer_mode: ProducerMode,
    /// Partitions of the change topic when the collector creates it.
    pub topic_partitions: u32,
    /// Replication factor of the topics the collector creates.
    pub topic_replication_factor: u32,
    /// initial | never.
    pub snapshot_mode: SnapshotMode,
    /// Rows per snapshot chunk (one Kafka transaction each).
    pub snapshot_chunk_rows: u64,
    /// Pause when the change log had nothing new (PostgreSQL streams: this only bounds
    /// the idle latency; Oracle: between LogMiner windows).
    pub poll_interval_ms: u64,
    /// Changes per Kafka transaction, about (PostgreSQL splits a bigger source
    /// transaction across Kafka transactions and records how far into it each goes).
    pub max_batch_changes: u64,
    /// Kafka `transaction.timeout.ms`.
    pub transaction_timeout_ms: u64,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            name: "rtdp-collector".into(),
            slot_name: String::new(),
            publication_name: String::new(),
            offsets_topic: "rtdp-collector-offsets".into(),
            offset_store: OffsetStore::Kafka,
            offset_file: PathBuf::from("./state/collector-offsets.json"),
            producer_mode: ProducerMode::Transactional,
            topic_partitions: 3,
            topic_replication_factor: 1,
            snapshot_mode: SnapshotMode::Initial,
            snapshot_chunk_rows: 10_000,
            poll_interval_ms: 200,
            max_batch_changes: 100_000,
            transaction_timeout_ms: 60_000,
        }
    }
}

impl CollectorConfig {
    /// The publication name: `publicationName`, or the slot name.
    pub fn effective_publication_name(&self) -> String {
        if !self.publication_name.trim().is_empty() {
            return self.publication_name.trim().to_owned();
        }
        self.effective_slot_name()
    }

    /// The replication slot name: `slotName`, or `rtdp_<name>` folded to what
    /// PostgreSQL accepts (lower-case letters, digits, `_`; at most 63 bytes).
    pub fn effective_slot_name(&self) -> String {
        if !self.slot_name.trim().is_empty() {
            return self.slot_name.trim().to_owned();
        }
        let mut s: String = format!("rtdp_{}", self.name.trim())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        s.truncate(63);
        s
    }
}

/// `kafka.*`: the Kafka cluster and topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// Topic of the change events.
    pub topic: String,
    /// Consumer group of the stream-workers.
    pub group_id: String,
    /// plaintext | ssl | sasl_plaintext | sasl_ssl.
    pub security_protocol: SecurityProtocol,
    /// SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, …).
    pub sasl_mechanism: String,
    /// SASL user.
    pub sasl_username: String,
    /// SASL password (secret).
    #[serde(serialize_with = "serialize_redacted")]
    pub sasl_password: Secret,
    /// Consumer session timeout in milliseconds, 6000..=300000.
    pub session_timeout_ms: u64,
    /// Extra librdkafka properties (`linger.ms: "5"`); values are treated as secrets.
    #[serde(serialize_with = "serialize_redacted_map")]
    pub properties: BTreeMap<String, Secret>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "localhost:9092".into(),
            topic: "cdc-events".into(),
            group_id: "rtdp-stream-worker".into(),
            security_protocol: SecurityProtocol::Plaintext,
            sasl_mechanism: "PLAIN".into(),
            sasl_username: String::new(),
            sasl_password: Secret::default(),
            session_timeout_ms: 30_000,
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// `session_timeout_ms` as a duration.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.session_timeout_ms)
    }
}

fn serialize_redacted_map<S: Serializer>(
    map: &BTreeMap<String, Secret>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(map.len()))?;
    for k in map.keys() {
        m.serialize_entry(k, crate::secret::REDACTED)?;
    }
    m.end()
}

/// `datahub.*`: Alibaba Cloud DataHub through its Kafka-compatible endpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DataHubConfig {
    /// Use DataHub instead of `kafka.bootstrapServers`/`kafka.topic`.
    pub enabled: bool,
    /// `host:port` of DataHub's Kafka endpoint.
    pub endpoint: String,
    /// AccessKey id (the SASL user).
    pub access_id: String,
    /// AccessKey secret (the SASL password; secret).
    #[serde(serialize_with = "serialize_redacted")]
    pub access_key: Secret,
    /// DataHub project.
    pub project: String,
    /// DataHub topic in the project (Kafka topic `<project>.<topic>`).
    pub topic: String,
    /// DataHub subscription/consumer group in the project (Kafka group `<project>.<group>`).
    pub consumer_group: String,
}

/// `checkpoint.*`: when in-flight output is made durable and offsets are committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Milliseconds between checkpoints, 1000..=86400000.
    pub interval_ms: u64,
    /// Milliseconds a checkpoint may take before it counts as failed, >= 1000.
    pub timeout_ms: u64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            interval_ms: 60_000,
            timeout_ms: 600_000,
        }
    }
}

impl CheckpointConfig {
    /// `interval_ms` as a duration.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }
    /// `timeout_ms` as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// `output.*`: the files the worker writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Root directory of the output.
    pub path: PathBuf,
    /// json | csv | parquet.
    pub format: OutputFormat,
    /// none | gzip | snappy (parquet only) | zstd.
    pub compression: Compression,
    /// When a file is finished.
    pub rolling: RollingConfig,
    /// Parquet settings.
    pub parquet: ParquetConfig,
    /// Largest accepted record in bytes; larger ones go to the dead-letter output, >= 1024.
    pub max_record_bytes: u64,
    /// Retries of a failed file operation before the worker gives up, 0..=100.
    pub max_retries: u32,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./output"),
            format: OutputFormat::Json,
            compression: Compression::None,
            rolling: RollingConfig::default(),
            parquet: ParquetConfig::default(),
            max_record_bytes: 10 * 1024 * 1024,
            max_retries: 3,
        }
    }
}

/// `output.rolling.*`: a file is finished at whichever limit comes first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RollingConfig {
    /// Size in bytes at which a file rolls, >= 1024.
    pub size_bytes: u64,
    /// Age in milliseconds at which a file rolls, >= 1000.
    pub interval_ms: u64,
    /// Milliseconds without new records after which a file rolls, >= 100.
    pub inactivity_ms: u64,
}

impl Default for RollingConfig {
    fn default() -> Self {
        Self {
            size_bytes: 128 * 1024 * 1024,
            interval_ms: 3_600_000,
            inactivity_ms: 60_000,
        }
    }
}

impl RollingConfig {
    /// `interval_ms` as a duration.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }
    /// `inactivity_ms` as a duration.
    pub fn inactivity(&self) -> Duration {
        Duration::from_millis(self.inactivity_ms)
    }
}

/// `output.parquet.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ParquetConfig {
    /// Target row-group size in bytes (buffered in memory per open file), >= 65536.
    pub row_group_bytes: u64,
}

impl Default for ParquetConfig {
    fn default() -> Self {
        Self {
            row_group_bytes: 64 * 1024 * 1024,
        }
    }
}

/// `monitoring.*`: the health/metrics server and alert thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MonitoringConfig {
    /// Port of the health/metrics HTTP server; 0 = any free port (tests).
    pub port: u16,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// Alert thresholds.
    pub alerts: AlertsConfig,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            port: 8080,
            metrics: MetricsConfig::default(),
            alerts: AlertsConfig::default(),
        }
    }
}

/// `monitoring.metrics.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics`.
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// `monitoring.alerts.*`: the alerts each service evaluates on its own numbers (see
/// [`crate::alerts`]): thresholds, timing, and the webhook they are POSTed to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Evaluate the alert rules at all (false: none fires, nothing is sent).
    pub enabled: bool,
    /// URL the alerts are POSTed to as JSON (`http://` or `https://`); empty = none. A
    /// secret: the URL may carry a token.
    #[serde(serialize_with = "serialize_redacted")]
    pub webhook: Secret,
    /// End-to-end latency in milliseconds above which to alert.
    pub latency_threshold_ms: u64,
    /// Fraction (0..=1) of failed checkpoints above which to alert.
    pub checkpoint_failure_rate: f64,
    /// Fraction (0..=1) of capacity in use above which to alert (CPU, backpressure).
    pub load_threshold: f64,
    /// How often the rules are evaluated, ms.
    pub evaluation_interval_ms: u64,
    /// Rates and growth are measured over this much time, ms.
    pub window_ms: u64,
    /// A firing alert is sent again this often while it holds, ms.
    pub repeat_interval_ms: u64,
    /// A rule must stay clear this long before its alert resolves, ms.
    pub keep_firing_for_ms: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            webhook: Secret::default(),
            latency_threshold_ms: 60_000,
            checkpoint_failure_rate: 0.1,
            load_threshold: 0.8,
            evaluation_interval_ms: 15_000,
            window_ms: 300_000,
            repeat_interval_ms: 3_600_000,
            keep_firing_for_ms: 60_000,
        }
    }
}

/// `shutdown.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Milliseconds to drain and commit after SIGTERM before exiting anyway, >= 1000.
    pub timeout_ms: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { timeout_ms: 30_000 }
    }
}

impl ShutdownConfig {
    /// `timeout_ms` as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// `logging.*`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// trace | debug | info | warn | error (case-insensitive). `RUST_LOG` wins when set.
    pub level: LogLevel,
    /// text | json.
    pub format: LogFormat,
}

// ---------------------------------------------------------------------------------------
// Derived settings
// ---------------------------------------------------------------------------------------

impl PipelineConfig {
    /// Client properties for librdkafka: `bootstrap.servers`, `security.protocol`, `sasl.*`
    /// from `kafka.*` (or, with DataHub enabled, its endpoint over SASL_SSL/PLAIN with the
    /// access id and key), then `kafka.properties`, which replace same-named entries.
    ///
    /// The result holds secrets in clear text: hand it to the client, never to a log.
    pub fn kafka_client_properties(&self) -> Vec<(String, String)> {
        let mut props: Vec<(String, String)> = Vec::new();
        if self.datahub.enabled {
            let d = &self.datahub;
            props.push(("bootstrap.servers".into(), d.endpoint.trim().to_owned()));
            props.push((
                "security.protocol".into(),
                SecurityProtocol::SaslSsl.as_str().into(),
            ));
            props.push(("sasl.mechanism".into(), "PLAIN".into()));
            props.push(("sasl.username".into(), d.access_id.clone()));
            props.push(("sasl.password".into(), d.access_key.expose().to_owned()));
        } else {
            let k = &self.kafka;
            let servers = split_list(&k.bootstrap_servers)
                .collect::<Vec<_>>()
                .join(",");
            props.push(("bootstrap.servers".into(), servers));
            props.push((
                "security.protocol".into(),
                k.security_protocol.as_str().into(),
            ));
            if k.security_protocol.is_sasl() {
                props.push(("sasl.mechanism".into(), k.sasl_mechanism.trim().to_owned()));
                if !k.sasl_username.is_empty() {
                    props.push(("sasl.username".into(), k.sasl_username.clone()));
                }
                if !k.sasl_password.is_empty() {
                    props.push(("sasl.password".into(), k.sasl_password.expose().to_owned()));
                }
            }
        }
        for (name, value) in &self.kafka.properties {
            let value = value.expose().to_owned();
            match props.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = value,
                None => props.push((name.clone(), value)),
            }
        }
        props
    }

    /// The Kafka topic of the change events: `kafka.topic`, or with DataHub
    /// `<project>.<topic>` (unless `datahub.topic` already starts with `<project>.`).
    pub fn effective_topic(&self) -> String {
        if self.datahub.enabled {
            prefixed(&self.datahub.project, &self.datahub.topic)
        } else {
            self.kafka.topic.clone()
        }
    }

    /// The workers' consumer group: `kafka.groupId`, or with DataHub
    /// `<project>.<consumerGroup>`, falling back to `<project>.<kafka.groupId>` when no
    /// consumer group is set (DataHub groups always live in a project).
    pub fn effective_group_id(&self) -> String {
        if self.datahub.enabled {
            let group = if self.datahub.consumer_group.trim().is_empty() {
                &self.kafka.group_id
            } else {
                &self.datahub.consumer_group
            };
            prefixed(&self.datahub.project, group)
        } else {
            self.kafka.group_id.clone()
        }
    }
}

fn prefixed(project: &str, name: &str) -> String {
    let project = project.trim();
    let name = name.trim();
    if name.starts_with(&format!("{project}.")) {
        name.to_owned()
    } else {
        format!("{project}.{name}")
    }
}

// ---------------------------------------------------------------------------------------
// The key table: type and environment names of every key
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Secret,
    Bool,
    /// A non-negative integer up to `max` (the Rust type's range).
    Int {
        max: u64,
    },
    Float,
    Choice(&'static [&'static str]),
    /// `kafka.properties`: free-form string -> string (secret values).
    Map,
}

const U16: Kind = Kind::Int {
    max: u16::MAX as u64,
};
const U32: Kind = Kind::Int {
    max: u32::MAX as u64,
};
const U64: Kind = Kind::Int { max: u64::MAX };

struct KeySpec {
    path: &'static str,
    short_env: Option<&'static str>,
    kind: Kind,
}

const fn key(path: &'static str, short_env: Option<&'static str>, kind: Kind) -> KeySpec {
    KeySpec {
        path,
        short_env,
        kind,
    }
}

/// Every leaf key. A unit test checks this table against the serialized default config,
/// so a field added to a struct without a row here fails the build's tests.
const KEYS: &[KeySpec] = &[
    key(
        "database.type",
        Some("DATABASE_TYPE"),
        Kind::Choice(DatabaseType::VARIANTS),
    ),
    key("database.host", Some("DATABASE_HOST"), Kind::Str),
    key("database.port", Some("DATABASE_PORT"), U16),
    key("database.username", Some("DATABASE_USERNAME"), Kind::Str),
    key("database.password", Some("DATABASE_PASSWORD"), Kind::Secret),
    key("database.name", Some("DATABASE_NAME"), Kind::Str),
    key("database.schema", Some("DATABASE_SCHEMA"), Kind::Str),
    key("database.tables", Some("DATABASE_TABLES"), Kind::Str),
    key(
        "database.excludeTables",
        Some("DATABASE_EXCLUDE_TABLES"),
        Kind::Str,
    ),
    key("database.pdb", Some("DATABASE_PDB"), Kind::Str),
    key("collector.name", Some("COLLECTOR_NAME"), Kind::Str),
    key("collector.slotName", Some("COLLECTOR_SLOT_NAME"), Kind::Str),
    key(
        "collector.publicationName",
        Some("COLLECTOR_PUBLICATION_NAME"),
        Kind::Str,
    ),
    key(
        "collector.offsetsTopic",
        Some("COLLECTOR_OFFSETS_TOPIC"),
        Kind::Str,
    ),
    key(
        "collector.offsetStore",
        Some("COLLECTOR_OFFSET_STORE"),
        Kind::Choice(OffsetStore::VARIANTS),
    ),
    key(
        "collector.offsetFile",
        Some("COLLECTOR_OFFSET_FILE"),
        Kind::Str,
    ),
    key(
        "collector.producerMode",
        Some("COLLECTOR_PRODUCER_MODE"),
        Kind::Choice(ProducerMode::VARIANTS),
    ),
    key(
        "collector.topicPartitions",
        Some("KAFKA_TOPIC_PARTITIONS"),
        U32,
    ),
    key("collector.topicReplicationFactor", None, U32),
    key(
        "collector.snapshotMode",
        Some("SNAPSHOT_MODE"),
        Kind::Choice(SnapshotMode::VARIANTS),
    ),
    key("collector.snapshotChunkRows", None, U64),
    key(
        "collector.pollIntervalMs",
        Some("COLLECTOR_POLL_INTERVAL"),
        U64,
    ),
    key("collector.maxBatchChanges", None, U64),
    key("collector.transactionTimeoutMs", None, U64),
    key("oracle.windowScns", None, U64),
    key("oracle.fetchSize", None, U32),
    key("oracle.maxBufferedChanges", None, U64),
    key("oracle.lobEnabled", None, Kind::Bool),
    key(
        "kafka.bootstrapServers",
        Some("KAFKA_BOOTSTRAP_SERVERS"),
        Kind::Str,
    ),
    key("kafka.topic", Some("KAFKA_TOPIC"), Kind::Str),
    key("kafka.groupId", Some("KAFKA_GROUP_ID"), Kind::Str),
    key(
        "kafka.securityProtocol",
        Some("KAFKA_SECURITY_PROTOCOL"),
        Kind::Choice(SecurityProtocol::VARIANTS),
    ),
    key(
        "kafka.saslMechanism",
        Some("KAFKA_SASL_MECHANISM"),
        Kind::Str,
    ),
    key("kafka.saslUsername", Some("KAFKA_SASL_USERNAME"), Kind::Str),
    key(
        "kafka.saslPassword",
        Some("KAFKA_SASL_PASSWORD"),
        Kind::Secret,
    ),
    key("kafka.sessionTimeoutMs", None, U64),
    key("kafka.properties", None, Kind::Map),
    key("datahub.enabled", Some("DATAHUB_ENABLED"), Kind::Bool),
    key("datahub.endpoint", Some("DATAHUB_ENDPOINT"), Kind::Str),
    key("datahub.accessId", Some("DATAHUB_ACCESS_ID"), Kind::Str),
    key(
        "datahub.accessKey",
        Some("DATAHUB_ACCESS_KEY"),
        Kind::Secret,
    ),
    key("datahub.project", Some("DATAHUB_PROJECT"), Kind::Str),
    key("datahub.topic", Some("DATAHUB_TOPIC"), Kind::Str),
    key(
        "datahub.consumerGroup",
        Some("DATAHUB_CONSUMER_GROUP"),
        Kind::Str,
    ),
    key("checkpoint.intervalMs", Some("CHECKPOINT_INTERVAL"), U64),
    key("checkpoint.timeoutMs", Some("CHECKPOINT_TIMEOUT"), U64),
    key("output.path", Some("OUTPUT_PATH"), Kind::Str),
    key(
        "output.format",
        Some("OUTPUT_FORMAT"),
        Kind::Choice(OutputFormat::VARIANTS),
    ),
    key(
        "output.compression",
        Some("OUTPUT_COMPRESSION"),
        Kind::Choice(Compression::VARIANTS),
    ),
    key("output.rolling.sizeBytes", Some("OUTPUT_ROLLING_SIZE"), U64),
    key(
        "output.rolling.intervalMs",
        Some("OUTPUT_ROLLING_INTERVAL"),
        U64,
    ),
    key(
        "output.rolling.inactivityMs",
        Some("OUTPUT_ROLLING_INACTIVITY"),
        U64,
    ),
    key("output.parquet.rowGroupBytes", None, U64),
    key(
        "output.maxRecordBytes",
        Some("OUTPUT_MAX_RECORD_BYTES"),
        U64,
    ),
    key("output.maxRetries", Some("OUTPUT_MAX_RETRIES"), U32),
    key("monitoring.port", Some("MONITORING_PORT"), U16),
    key(
        "monitoring.metrics.enabled",
        Some("MONITORING_METRICS_ENABLED"),
        Kind::Bool,
    ),
    key("monitoring.alerts.enabled", None, Kind::Bool),
    key("monitoring.alerts.webhook", None, Kind::Secret),
    key("monitoring.alerts.latencyThresholdMs", None, U64),
    key("monitoring.alerts.checkpointFailureRate", None, Kind::Float),
    key("monitoring.alerts.loadThreshold", None, Kind::Float),
    key("monitoring.alerts.evaluationIntervalMs", None, U64),
    key("monitoring.alerts.windowMs", None, U64),
    key("monitoring.alerts.repeatIntervalMs", None, U64),
    key("monitoring.alerts.keepFiringForMs", None, U64),
    key("shutdown.timeoutMs", Some("SHUTDOWN_TIMEOUT"), U64),
    key(
        "logging.level",
        Some("LOG_LEVEL"),
        Kind::Choice(LogLevel::VARIANTS),
    ),
    key(
        "logging.format",
        Some("LOG_FORMAT"),
        Kind::Choice(LogFormat::VARIANTS),
    ),
];

/// Prefix of the environment variables that fill `kafka.properties`.
pub const KAFKA_PROPERTIES_ENV_PREFIX: &str = "PIPELINE_KAFKA_PROPERTIES_";

/// A configuration key and its environment names, for docs and `check-config` listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// YAML path, e.g. `output.rolling.sizeBytes`.
    pub path: &'static str,
    /// The `PIPELINE_` variable (for `kafka.properties`: the prefix of its entries).
    pub env: String,
    /// The short variable, if the key has one.
    pub short_env: Option<&'static str>,
    /// Whether the value is a secret.
    pub secret: bool,
}

/// Every configuration key, in file order.
pub fn known_keys() -> Vec<KeyInfo> {
    KEYS.iter()
        .map(|k| KeyInfo {
            path: k.path,
            env: if k.kind == Kind::Map {
                KAFKA_PROPERTIES_ENV_PREFIX.to_owned()
            } else {
                env_name(k.path)
            },
            short_env: k.short_env,
            secret: matches!(k.kind, Kind::Secret | Kind::Map),
        })
        .collect()
}

/// The `PIPELINE_` environment name of a YAML path: `output.rolling.sizeBytes` ->
/// `PIPELINE_OUTPUT_ROLLING_SIZE_BYTES`.
pub fn env_name(path: &str) -> String {
    let mut out = String::from("PIPELINE");
    for segment in path.split('.') {
        out.push('_');
        let mut prev_lower = false;
        for c in segment.chars() {
            if c.is_ascii_uppercase() && prev_lower {
                out.push('_');
            }
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c.to_ascii_uppercase());
        }
    }
    out
}

fn spec(path: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.path == path)
}

/// The key tree of the default configuration (sections are objects, keys are leaves).
fn schema_tree() -> Json {
    serde_json::to_value(PipelineConfig::default()).unwrap_or(Json::Null)
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

/// Loads the file at `path` (if any) and applies overrides from `env`. Checks structure
/// and types; service rules are checked by [`PipelineConfig::validate`].
pub fn load(
    path: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<PipelineConfig, ConfigErrors> {
    let loaded = assemble(path, env);
    if loaded.errors.is_empty() {
        Ok(loaded.config)
    } else {
        Err(ConfigErrors(loaded.errors))
    }
}

/// [`load`] with the process environment.
pub fn load_from_env_and_file(path: Option<&Path>) -> Result<PipelineConfig, ConfigErrors> {
    load(path, &process_env())
}

/// [`load`] and [`PipelineConfig::validate`] in one go, reporting the problems of both.
/// Where a value was rejected, the rules are checked against its default instead, and no
/// second problem is reported for that key.
pub fn load_and_validate(
    path: Option<&Path>,
    env: &HashMap<String, String>,
    service: Service,
) -> Result<PipelineConfig, ConfigErrors> {
    let Loaded {
        config,
        mut errors,
        bad_paths,
    } = assemble(path, env);
    for (p, e) in config.rule_errors(service) {
        if !bad_paths.contains(&p) {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// [`load_and_validate`] with the process environment: what a binary calls at start.
pub fn load_and_validate_from_env(
    path: Option<&Path>,
    service: Service,
) -> Result<PipelineConfig, ConfigErrors> {
    load_and_validate(path, &process_env(), service)
}

fn process_env() -> HashMap<String, String> {
    // vars() would panic on a variable that is not UTF-8; such variables are not ours.
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

struct Loaded {
    config: PipelineConfig,
    errors: Vec<ConfigError>,
    /// YAML paths whose value was rejected.
    bad_paths: BTreeSet<String>,
}

#[derive(Default)]
struct Assembly {
    overlay: Map<String, Json>,
    sources: BTreeMap<String, String>,
    errors: Vec<ConfigError>,
    bad_paths: BTreeSet<String>,
}

impl Assembly {
    fn fail(&mut self, path: &str, label: impl Into<String>, rule: impl Into<String>) {
        self.bad_paths.insert(path.to_owned());
        self.errors.push(ConfigError {
            key: label.into(),
            rule: rule.into(),
        });
    }

    fn set(&mut self, path: &str, value: Json) {
        let mut node = &mut self.overlay;
        let mut segments = path.split('.').peekable();
        while let Some(segment) = segments.next() {
            if segments.peek().is_none() {
                node.insert(segment.to_owned(), value);
                return;
            }
            let child = node
                .entry(segment.to_owned())
                .or_insert_with(|| Json::Object(Map::new()));
            if !child.is_object() {
                *child = Json::Object(Map::new());
            }
            match child {
                Json::Object(m) => node = m,
                _ => return,
            }
        }
    }

    /// One entry of `kafka.properties` (its name may contain dots: not a path).
    fn set_property(&mut self, name: &str, value: String) {
        let kafka = self
            .overlay
            .entry("kafka".to_owned())
            .or_insert_with(|| Json::Object(Map::new()));
        if let Json::Object(kafka) = kafka {
            let props = kafka
                .entry("properties".to_owned())
                .or_insert_with(|| Json::Object(Map::new()));
            if let Json::Object(props) = props {
                props.insert(name.to_owned(), Json::String(value));
            }
        }
    }
}

fn assemble(path: Option<&Path>, env: &HashMap<String, String>) -> Loaded {
    let mut asm = Assembly::default();
    if let Some(path) = path {
        read_file(path, &mut asm);
    }
    apply_env(env, &mut asm);

    let config = match serde_json::from_value::<PipelineConfig>(Json::Object(std::mem::take(
        &mut asm.overlay,
    ))) {
        Ok(c) => c,
        Err(e) => {
            // Cannot happen when the checks above are right; say so rather than panic.
            // serde messages name types and fields; values here are already checked.
            asm.errors.push(ConfigError {
                key: "configuration".into(),
                rule: format!("internal error: checked values did not assemble ({e})"),
            });
            PipelineConfig::default()
        }
    };
    let config = PipelineConfig {
        sources: ValueSources(asm.sources),
        ..config
    };
    Loaded {
        config,
        errors: asm.errors,
        bad_paths: asm.bad_paths,
    }
}

fn read_file(path: &Path, asm: &mut Assembly) {
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            asm.fail(&file, &file, "file not found");
            return;
        }
        Err(e) => {
            asm.fail(&file, &file, format!("cannot read the file: {e}"));
            return;
        }
    };
    let mut doc: Yaml = match serde_yaml_ng::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            asm.fail(&file, &file, yaml_error(&e));
            return;
        }
    };
    if let Err(e) = doc.apply_merge() {
        asm.fail(&file, &file, yaml_error(&e));
        return;
    }
    match &doc {
        Yaml::Null => {}
        Yaml::Mapping(m) => walk_section(m, "", &schema_tree(), asm),
        other => asm.fail(
            &file,
            &file,
            format!(
                "expected a mapping of sections at the top level, got {}",
                describe_type(other)
            ),
        ),
    }
}

fn yaml_error(e: &serde_yaml_ng::Error) -> String {
    // Syntax errors from libyaml carry "at line L column C" in their message; errors raised
    // while building the value (duplicate keys) only know the document start, so no
    // location is better than a wrong one.
    format!("YAML syntax error: {e}")
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn walk_section(map: &serde_yaml_ng::Mapping, prefix: &str, schema: &Json, asm: &mut Assembly) {
    let known: Vec<&str> = schema
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for (k, v) in map {
        let Some(name) = k.as_str() else {
            let shown = join(prefix, &scalar_text(k));
            asm.fail(&shown, &shown, "unknown key (keys must be strings)");
            continue;
        };
        let path = join(prefix, name);
        let Some(child_schema) = schema.get(name) else {
            asm.fail(&path, &path, unknown_key_rule(prefix, name, &known));
            continue;
        };
        if let Some(spec) = spec(&path) {
            match spec.kind {
                Kind::Map => walk_properties(v, &path, asm),
                kind => match coerce_yaml(kind, v) {
                    Ok(Some(json)) => asm.set(&path, json),
                    Ok(None) => {}
                    Err(rule) => asm.fail(&path, &path, rule),
                },
            }
            continue;
        }
        match v {
            Yaml::Null => {}
            Yaml::Mapping(m) => walk_section(m, &path, child_schema, asm),
            other => {
                let children: Vec<&str> = child_schema
                    .as_object()
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                asm.fail(
                    &path,
                    &path,
                    format!(
                        "expected a section with keys ({}), got {}",
                        children.join(", "),
                        describe_type(other)
                    ),
                );
            }
        }
    }
}

fn walk_properties(v: &Yaml, path: &str, asm: &mut Assembly) {
    let map = match v {
        Yaml::Null => return,
        Yaml::Mapping(m) => m,
        other => {
            asm.fail(
                path,
                path,
                format!(
                    "expected a mapping of property names to values, got {}",
                    describe_type(other)
                ),
            );
            return;
        }
    };
    for (k, v) in map {
        let name = match k {
            Yaml::String(s) if !s.trim().is_empty() => s.trim().to_owned(),
            other => {
                let shown = join(path, &scalar_text(other));
                asm.fail(&shown, &shown, "property names must be non-empty strings");
                continue;
            }
        };
        let entry = join(path, &name);
        // Values are secret-ish: report only their type.
        let value = match v {
            Yaml::String(s) => s.clone(),
            Yaml::Bool(b) => b.to_string(),
            Yaml::Number(n) => n.to_string(),
            other => {
                asm.fail(
                    &entry,
                    &entry,
                    format!(
                        "expected a string, number or boolean, got {}",
                        describe_type(other)
                    ),
                );
                continue;
            }
        };
        asm.set_property(&name, value);
    }
}

fn unknown_key_rule(prefix: &str, name: &str, known: &[&str]) -> String {
    if prefix.is_empty() && name.eq_ignore_ascii_case("flink") {
        return "rtdp has no Flink; checkpoint settings live under checkpoint: (intervalMs, timeoutMs)".into();
    }
    match suggest(name, known.iter().copied()) {
        Some(s) => format!("unknown key; did you mean {}?", join(prefix, s)),
        None if known.is_empty() => "unknown key".into(),
        None => format!("unknown key (known here: {})", known.join(", ")),
    }
}

/// The closest candidate: same letters ignoring case, `_` and `-`; a candidate that
/// extends the name (`interval` -> `intervalMs`); or an edit distance of at most 2.
fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str> + Clone) -> Option<&'a str> {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let n = norm(name);
    if n.is_empty() {
        return None;
    }
    if let Some(c) = candidates.clone().find(|c| norm(c) == n) {
        return Some(c);
    }
    if let Some(c) = candidates
        .clone()
        .find(|c| n.len() >= 3 && norm(c).starts_with(&n))
    {
        return Some(c);
    }
    candidates
        .map(|c| (edit_distance(&n, &norm(c)), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn apply_env(env: &HashMap<String, String>, asm: &mut Assembly) {
    let mut pipeline_names: BTreeSet<String> = BTreeSet::new();
    for spec in KEYS.iter().filter(|k| k.kind != Kind::Map) {
        let long = env_name(spec.path);
        let chosen = [Some(long.as_str()), spec.short_env]
            .into_iter()
            .flatten()
            .find_map(|var| env.get(var).filter(|v| !v.is_empty()).map(|v| (var, v)));
        pipeline_names.insert(long.clone());
        let Some((var, raw)) = chosen else { continue };
        match coerce_str(spec.kind, raw) {
            Ok(json) => {
                asm.set(spec.path, json);
                asm.sources.insert(spec.path.to_owned(), var.to_owned());
                // The environment wins: a rejected file value it replaces is no problem.
                if asm.bad_paths.remove(spec.path) {
                    asm.errors.retain(|e| e.key != spec.path);
                }
            }
            Err(rule) => asm.fail(spec.path, format!("{} (from {var})", spec.path), rule),
        }
    }

    let mut vars: Vec<(&String, &String)> = env.iter().collect();
    vars.sort();
    let sections: BTreeSet<String> = KEYS
        .iter()
        .filter_map(|k| k.path.split('.').next())
        .map(|s| format!("PIPELINE_{}_", s.to_ascii_uppercase()))
        .collect();
    for (var, value) in vars {
        if let Some(rest) = var.strip_prefix(KAFKA_PROPERTIES_ENV_PREFIX) {
            if !rest.is_empty() && !value.is_empty() {
                let name = rest.to_ascii_lowercase().replace('_', ".");
                asm.sources
                    .insert(format!("kafka.properties.{name}"), var.clone());
                asm.set_property(&name, value.clone());
            }
            continue;
        }
        // A PIPELINE_<SECTION>_ variable that matches no key is a typo; other PIPELINE_
        // variables (CI systems set some) are none of our business.
        if sections.iter().any(|s| var.starts_with(s.as_str()))
            && !pipeline_names.contains(var.as_str())
        {
            let rule = match suggest(var, pipeline_names.iter().map(String::as_str)) {
                Some(s) => {
                    format!("no configuration key has this environment name; did you mean {s}?")
                }
                None => "no configuration key has this environment name".into(),
            };
            asm.fail(var, format!("{var} (environment)"), rule);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Coercion
// ---------------------------------------------------------------------------------------

fn describe_type(v: &Yaml) -> &'static str {
    match v {
        Yaml::Null => "null",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(n) if n.is_f64() => "a float",
        Yaml::Number(_) => "an integer",
        Yaml::String(_) => "a string",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
}

/// A non-secret value for an error message.
fn describe(v: &Yaml) -> String {
    match v {
        Yaml::Bool(b) => format!("boolean {b}"),
        Yaml::Number(n) if n.is_f64() => format!("float {n}"),
        Yaml::Number(n) => format!("integer {n}"),
        Yaml::String(s) => format!("string {s:?}"),
        other => describe_type(other).to_owned(),
    }
}

fn scalar_text(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        other => format!("<{}>", describe_type(other)),
    }
}

/// A YAML value for a key of `kind`; `Ok(None)` for null (keep the default).
fn coerce_yaml(kind: Kind, v: &Yaml) -> Result<Option<Json>, String> {
    if v.is_null() {
        return Ok(None);
    }
    if let Yaml::String(s) = v {
        return coerce_str(kind, s).map(Some);
    }
    let json = match (kind, v) {
        (Kind::Bool, Yaml::Bool(b)) => Json::Bool(*b),
        (Kind::Int { max }, Yaml::Number(n)) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) if u <= max => Json::from(u),
            (Some(_), _) | (None, Some(_)) => {
                return Err(format!("{}, got {n}", int_expectation(max)))
            }
            (None, None) => return Err(format!("expected an integer, got float {n}")),
        },
        (Kind::Float, Yaml::Number(n)) => match n.as_f64() {
            Some(f) if f.is_finite() => float_json(f)?,
            _ => return Err(format!("expected a finite number, got {n}")),
        },
        (Kind::Secret, other) => {
            return Err(format!(
                "expected a string, got {}; quote the value in YAML",
                describe_type(other)
            ))
        }
        (Kind::Str, other @ (Yaml::Bool(_) | Yaml::Number(_))) => {
            return Err(format!(
                "expected a string, got {}; quote the value in YAML",
                describe(other)
            ))
        }
        (kind, other) => return Err(format!("{}, got {}", expectation(kind), describe(other))),
    };
    Ok(Some(json))
}

fn expectation(kind: Kind) -> String {
    match kind {
        Kind::Str | Kind::Secret => "expected a string".into(),
        Kind::Bool => "expected true or false".into(),
        Kind::Int { .. } => "expected an integer".into(),
        Kind::Float => "expected a number".into(),
        Kind::Choice(options) => format!("expected one of {}", options.join("|")),
        Kind::Map => "expected a mapping".into(),
    }
}

fn int_expectation(max: u64) -> String {
    if max == u64::MAX {
        "expected a non-negative integer".into()
    } else {
        format!("expected an integer between 0 and {max}")
    }
}

fn float_json(f: f64) -> Result<Json, String> {
    serde_json::Number::from_f64(f)
        .map(Json::Number)
        .ok_or_else(|| "expected a finite number".to_owned())
}

/// A string (from the environment, or quoted in YAML) for a key of `kind`.
fn coerce_str(kind: Kind, raw: &str) -> Result<Json, String> {
    let s = raw.trim();
    match kind {
        Kind::Str | Kind::Secret => Ok(Json::String(raw.to_owned())),
        Kind::Bool => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Json::Bool(true)),
            "false" | "no" | "off" | "0" => Ok(Json::Bool(false)),
            _ => Err(format!("expected true or false, got string {raw:?}")),
        },
        Kind::Int { max } => match s.parse::<u64>() {
            Ok(u) if u <= max => Ok(Json::from(u)),
            Ok(_) => Err(format!("{}, got {s}", int_expectation(max))),
            Err(_) if s.parse::<i128>().is_ok() => {
                Err(format!("{}, got {s}", int_expectation(max)))
            }
            Err(_) => Err(format!("expected an integer, got string {raw:?}")),
        },
        Kind::Float => match s.parse::<f64>() {
            Ok(f) if f.is_finite() => float_json(f),
            _ => Err(format!("expected a number, got string {raw:?}")),
        },
        Kind::Choice(options) => {
            let lower = s.to_ascii_lowercase();
            if options.contains(&lower.as_str()) {
                Ok(Json::String(lower))
            } else {
                Err(format!(
                    "expected one of {}, got {raw:?}",
                    options.join("|")
                ))
            }
        }
        Kind::Map => Err("expected a mapping".into()),
    }
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

struct Rules<'a> {
    sources: &'a ValueSources,
    found: Vec<(String, ConfigError)>,
}

impl Rules<'_> {
    fn fail(&mut self, path: &str, rule: impl Into<String>) {
        self.found.push((
            path.to_owned(),
            ConfigError {
                key: self.sources.label(path),
                rule: rule.into(),
            },
        ));
    }

    fn range(&mut self, path: &str, value: u64, min: u64, max: u64) {
        if value < min || value > max {
            self.fail(
                path,
                format!("must be between {min} and {max} (got {value})"),
            );
        }
    }

    fn at_least(&mut self, path: &str, value: u64, min: u64) {
        if value < min {
            self.fail(path, format!("must be at least {min} (got {value})"));
        }
    }

    fn fraction(&mut self, path: &str, value: f64) {
        if !(0.0..=1.0).contains(&value) {
            self.fail(path, format!("must be between 0 and 1 (got {value})"));
        }
    }

    fn non_empty(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.fail(path, "must not be empty");
        }
    }

    fn required_secret(&mut self, path: &str, value: &Secret, because: &str) {
        if value.expose().trim().is_empty() {
            self.fail(path, format!("is required when {because}"));
        }
    }

    fn required(&mut self, path: &str, value: &str, because: &str) {
        if value.trim().is_empty() {
            self.fail(path, format!("is required when {because}"));
        }
    }
}

/// Checks a `host:port` entry; the message quotes the entry.
fn check_host_port(entry: &str) -> Result<(), String> {
    let Some((host, port)) = entry.rsplit_once(':') else {
        return Err(format!("{entry:?} is not host:port"));
    };
    if host.trim().is_empty() {
        return Err(format!("{entry:?} has no host"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!(
            "{entry:?}: write IPv6 addresses in brackets, e.g. [::1]:9092"
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if p >= 1 => Ok(()),
        _ => Err(format!(
            "{entry:?} has a port that is not a number between 1 and 65535"
        )),
    }
}

/// Kafka's topic rules: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("must not be empty".into());
    }
    if topic.len() > 249 {
        return Err(format!(
            "must be at most 249 characters (got {})",
            topic.len()
        ));
    }
    if topic == "." || topic == ".." {
        return Err("must not be \".\" or \"..\"".into());
    }
    if let Some(c) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "may contain only letters, digits, '.', '_' and '-' (found {c:?} in {topic:?})"
        ));
    }
    Ok(())
}

/// A collector name: 1..=200 characters of letters, digits, `.`, `_` and `-` (it becomes
/// a Kafka transactional id and part of a slot name).
fn check_collector_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 200 {
        return Err(format!(
            "must be at most 200 characters (got {})",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "may contain only letters, digits, '.', '_' and '-' (found {c:?})"
        ));
    }
    Ok(())
}

impl PipelineConfig {
    /// Checks the semantic rules (ranges, required combinations, service-specific
    /// requirements) and reports every violation.
    pub fn validate(&self, service: Service) -> Result<(), ConfigErrors> {
        let errors: Vec<ConfigError> = self
            .rule_errors(service)
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    fn rule_errors(&self, service: Service) -> Vec<(String, ConfigError)> {
        let mut r = Rules {
            sources: &self.sources,
            found: Vec::new(),
        };

        let db = &self.database;
        if db.port == 0 {
            r.fail("database.port", "must be between 1 and 65535 (got 0)");
        }
        if service == Service::Collector {
            r.non_empty("database.host", &db.host);
            r.non_empty("database.username", &db.username);
            if db.tables.trim().is_empty() {
                r.fail(
                    "database.tables",
                    "must not be empty (use * for all tables)",
                );
            } else if db.tables.split(',').any(|t| t.trim().is_empty()) {
                r.fail(
                    "database.tables",
                    "contains an empty entry (check the commas)",
                );
            }
            if db.password.expose().trim().is_empty() && db.kind != DatabaseType::OceanBase {
                r.fail(
                    "database.password",
                    "must be set for the collector (env DATABASE_PASSWORD; a secret store \
                     or the environment, not the file, is the place for it)",
                );
            }
            let c = &self.collector;
            match check_collector_name(&c.name) {
                Ok(()) => {}
                Err(e) => r.fail("collector.name", e),
            }
            if let Err(e) = check_topic(&c.offsets_topic) {
                r.fail("collector.offsetsTopic", e);
            }
            if c.offset_store == OffsetStore::File && c.offset_file.as_os_str().is_empty() {
                r.fail(
                    "collector.offsetFile",
                    "must not be empty when offsetStore is file",
                );
            }
            if self.datahub.enabled && c.producer_mode == ProducerMode::Transactional {
                r.fail(
                    "collector.producerMode",
                    "DataHub has no Kafka transactions: set idempotent (and offsetStore: file)",
                );
            }
            if self.datahub.enabled && c.offset_store == OffsetStore::Kafka {
                r.fail(
                    "collector.offsetStore",
                    "DataHub has no compacted topics: set file (on a persistent volume)",
                );
            }
            r.range(
                "collector.topicPartitions",
                u64::from(c.topic_partitions),
                1,
                10_000,
            );
            r.range(
                "collector.topicReplicationFactor",
                u64::from(c.topic_replication_factor),
                1,
                32,
            );
            r.range(
                "collector.snapshotChunkRows",
                c.snapshot_chunk_rows,
                1,
                10_000_000,
            );
            r.range("collector.pollIntervalMs", c.poll_interval_ms, 1, 60_000);
            if db.kind == DatabaseType::Oracle {
                let o = &self.oracle;
                r.range("oracle.windowScns", o.window_scns, 100, 100_000_000);
                r.range("oracle.fetchSize", u64::from(o.fetch_size), 1, 100_000);
                r.range(
                    "oracle.maxBufferedChanges",
                    o.max_buffered_changes,
                    1_000,
                    1_000_000_000,
                );
            } else if !db.pdb.trim().is_empty() {
                r.fail("database.pdb", "is for database.type oracle only");
            }
            r.range(
                "collector.maxBatchChanges",
                c.max_batch_changes,
                1,
                10_000_000,
            );
            r.range(
                "collector.transactionTimeoutMs",
                c.transaction_timeout_ms,
                1_000,
                900_000,
            );
            if !c.slot_name.trim().is_empty()
                && !c
                    .slot_name
                    .trim()
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
            {
                r.fail(
                    "collector.slotName",
                    "may contain only lower-case letters, digits and '_'",
                );
            }
            if db.exclude_tables.split(',').count() > 1
                && db.exclude_tables.split(',').any(|t| t.trim().is_empty())
            {
                r.fail(
                    "database.excludeTables",
                    "contains an empty entry (check the commas)",
                );
            }
        }

        let k = &self.kafka;
        if !self.datahub.enabled {
            if k.bootstrap_servers.trim().is_empty() {
                r.fail("kafka.bootstrapServers", "must not be empty");
            } else {
                for entry in k.bootstrap_servers.split(',').map(str::trim) {
                    if let Err(e) = check_host_port(entry) {
                        r.fail(
                            "kafka.bootstrapServers",
                            if entry.is_empty() {
                                "contains an empty entry".into()
                            } else {
                                e
                            },
                        );
                    }
                }
            }
            if let Err(e) = check_topic(&k.topic) {
                r.fail("kafka.topic", e);
            }
            if k.security_protocol.is_sasl() {
                let because = format!("kafka.securityProtocol is {}", k.security_protocol);
                r.required("kafka.saslMechanism", &k.sasl_mechanism, &because);
                let mechanism = k.sasl_mechanism.trim().to_ascii_uppercase();
                // GSSAPI (Kerberos) and OAUTHBEARER authenticate without a password.
                if mechanism != "GSSAPI" && mechanism != "OAUTHBEARER" {
                    r.required("kafka.saslUsername", &k.sasl_username, &because);
                    r.required_secret("kafka.saslPassword", &k.sasl_password, &because);
                }
            }
        }
        // Also the DataHub group name when datahub.consumerGroup is empty.
        r.non_empty("kafka.groupId", &k.group_id);
        r.range(
            "kafka.sessionTimeoutMs",
            k.session_timeout_ms,
            6_000,
            300_000,
        );
        for name in k.properties.keys() {
            if name.trim().is_empty() {
                r.fail("kafka.properties", "property names must not be empty");
            }
        }

        let d = &self.datahub;
        if d.enabled {
            let because = "datahub.enabled is true";
            if d.endpoint.trim().is_empty() {
                r.required("datahub.endpoint", &d.endpoint, because);
            } else if let Err(e) = check_host_port(d.endpoint.trim()) {
                r.fail("datahub.endpoint", e);
            }
            r.required("datahub.accessId", &d.access_id, because);
            r.required_secret("datahub.accessKey", &d.access_key, because);
            r.required("datahub.project", &d.project, because);
            r.required("datahub.topic", &d.topic, because);
            if !d.project.trim().is_empty() && !d.topic.trim().is_empty() {
                if let Err(e) = check_topic(&self.effective_topic()) {
                    r.fail(
                        "datahub.topic",
                        format!("the Kafka topic {:?} {e}", self.effective_topic()),
                    );
                }
            }
        }

        let c = &self.checkpoint;
        r.range("checkpoint.intervalMs", c.interval_ms, 1_000, 86_400_000);
        r.at_least("checkpoint.timeoutMs", c.timeout_ms, 1_000);

        let o = &self.output;
        if o.path.as_os_str().is_empty() {
            r.fail("output.path", "must not be empty");
        }
        if o.compression == Compression::Snappy && o.format != OutputFormat::Parquet {
            r.fail(
                "output.compression",
                "snappy is only available for parquet; use gzip or zstd for json/csv",
            );
        }
        r.at_least("output.rolling.sizeBytes", o.rolling.size_bytes, 1024);
        r.at_least("output.rolling.intervalMs", o.rolling.interval_ms, 1_000);
        r.at_least("output.rolling.inactivityMs", o.rolling.inactivity_ms, 100);
        r.at_least(
            "output.parquet.rowGroupBytes",
            o.parquet.row_group_bytes,
            65_536,
        );
        r.at_least("output.maxRecordBytes", o.max_record_bytes, 1024);
        r.range("output.maxRetries", u64::from(o.max_retries), 0, 100);

        let a = &self.monitoring.alerts;
        r.fraction(
            "monitoring.alerts.checkpointFailureRate",
            a.checkpoint_failure_rate,
        );
        r.fraction("monitoring.alerts.loadThreshold", a.load_threshold);
        r.range(
            "monitoring.alerts.evaluationIntervalMs",
            a.evaluation_interval_ms,
            100,
            3_600_000,
        );
        if a.window_ms < a.evaluation_interval_ms || a.window_ms > 86_400_000 {
            r.fail(
                "monitoring.alerts.windowMs",
                format!(
                    "must be between monitoring.alerts.evaluationIntervalMs ({} ms) and 86400000 (got {})",
                    a.evaluation_interval_ms, a.window_ms
                ),
            );
        }
        if a.repeat_interval_ms < a.evaluation_interval_ms {
            r.fail(
                "monitoring.alerts.repeatIntervalMs",
                format!(
                    "must be at least monitoring.alerts.evaluationIntervalMs ({} ms) (got {})",
                    a.evaluation_interval_ms, a.repeat_interval_ms
                ),
            );
        }
        r.range(
            "monitoring.alerts.keepFiringForMs",
            a.keep_firing_for_ms,
            0,
            86_400_000,
        );
        if let Err(e) = crate::alerts::notify::Webhook::parse(a.webhook.expose()) {
            r.fail("monitoring.alerts.webhook", e);
        }

        r.at_least("shutdown.timeoutMs", self.shutdown.timeout_ms, 1_000);

        r.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(prefix: &str, v: &Json, out: &mut Vec<String>) {
        match v {
            Json::Object(m) if spec(prefix).is_none() => {
                for (k, child) in m {
                    leaves(&join(prefix, k), child, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }

    #[test]
    fn key_table_matches_the_structs() {
        let mut from_tree = Vec::new();
        leaves("", &schema_tree(), &mut from_tree);
        let from_table: Vec<String> = KEYS.iter().map(|k| k.path.to_owned()).collect();
        assert_eq!(
            from_tree, from_table,
            "KEYS must list every field of PipelineConfig, in order"
        );
    }

    #[test]
    fn env_names_are_unique() {
        let mut seen = BTreeSet::new();
        for k in known_keys() {
            assert!(seen.insert(k.env.clone()), "duplicate {}", k.env);
            if let Some(s) = k.short_env {
                assert!(seen.insert(s.to_owned()), "duplicate {s}");
            }
        }
    }

    #[test]
    fn env_name_examples() {
        assert_eq!(
            env_name("output.rolling.sizeBytes"),
            "PIPELINE_OUTPUT_ROLLING_SIZE_BYTES"
        );
        assert_eq!(
            env_name("kafka.bootstrapServers"),
            "PIPELINE_KAFKA_BOOTSTRAP_SERVERS"
        );
        assert_eq!(env_name("datahub.accessId"), "PIPELINE_DATAHUB_ACCESS_ID");
        assert_eq!(env_name("database.type"), "PIPELINE_DATABASE_TYPE");
    }

    #[test]
    fn coercion_by_kind() {
        assert_eq!(
            coerce_str(Kind::Str, "123456"),
            Ok(Json::String("123456".into()))
        );
        assert_eq!(coerce_str(U16, " 8080 "), Ok(Json::from(8080u64)));
        assert_eq!(
            coerce_str(U16, "70000"),
            Err("expected an integer between 0 and 65535, got 70000".into())
        );
        assert_eq!(
            coerce_str(U64, "-1"),
            Err("expected a non-negative integer, got -1".into())
        );
        assert_eq!(
            coerce_str(U16, "abc"),
            Err("expected an integer, got string \"abc\"".into())
        );
        assert_eq!(coerce_str(Kind::Bool, "TRUE"), Ok(Json::Bool(true)));
        assert_eq!(coerce_str(Kind::Bool, "0"), Ok(Json::Bool(false)));
        assert!(coerce_str(Kind::Bool, "maybe").is_err());
        assert_eq!(coerce_str(Kind::Float, "0.5"), float_json(0.5));
        assert!(coerce_str(Kind::Float, "NaN").is_err());
        assert_eq!(
            coerce_str(Kind::Choice(LogLevel::VARIANTS), "DEBUG"),
            Ok(Json::String("debug".into()))
        );
    }

    #[test]
    fn suggestions() {
        let known = ["intervalMs", "timeoutMs"];
        assert_eq!(
            suggest("interval", known.iter().copied()),
            Some("intervalMs")
        );
        assert_eq!(
            suggest("interval_ms", known.iter().copied()),
            Some("intervalMs")
        );
        assert_eq!(
            suggest("timeoutMz", known.iter().copied()),
            Some("timeoutMs")
        );
        assert_eq!(suggest("zzz", known.iter().copied()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn host_port_rules() {
        assert!(check_host_port("kafka-1:9092").is_ok());
        assert!(check_host_port("[::1]:9092").is_ok());
        assert!(check_host_port("kafka-1").is_err());
        assert!(check_host_port(":9092").is_err());
        assert!(check_host_port("h:0").is_err());
        assert!(check_host_port("h:x").is_err());
        assert!(check_host_port("::1:9092").is_err());
    }

    #[test]
    fn topic_rules() {
        assert!(check_topic("cdc-events.v1_x").is_ok());
        assert!(check_topic("").is_err());
        assert!(check_topic("..").is_err());
        assert!(check_topic("a b").is_err());
        assert!(check_topic(&"a".repeat(249)).is_ok());
        assert!(check_topic(&"a".repeat(250)).is_err());
    }

    #[test]
    fn choice_parsing_is_case_insensitive() {
        assert_eq!(
            "SASL_SSL".parse::<SecurityProtocol>(),
            Ok(SecurityProtocol::SaslSsl)
        );
        assert_eq!("WARN".parse::<LogLevel>(), Ok(LogLevel::Warn));
        let lvl: LogLevel = serde_json::from_str("\"ERROR\"").expect("choice");
        assert_eq!(lvl, LogLevel::Error);
        assert!("xml".parse::<OutputFormat>().is_err());
    }
}
