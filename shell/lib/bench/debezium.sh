#!/usr/bin/env bash
# Helper of shell/bench-collector.sh (--with-debezium): fetches Debezium's PostgreSQL
# connector and writes the Kafka Connect standalone configuration for it.
#
#   shell/lib/bench/debezium.sh fetch
#       prints "VERSION PLUGIN_PATH" (Connect's plugin.path) on one line; DBZ_VERSION picks
#       the version (default 3.2.7.Final, then 3.6.1.Final as a fallback)
#   shell/lib/bench/debezium.sh config DIR BOOTSTRAP PLUGIN_PATH REST_PORT NAME PG_PORT USER
#       PASSWORD DB SLOT PUBLICATION TABLE TOPIC_PREFIX PARTITIONS
#       writes DIR/worker.properties, DIR/connector.properties, DIR/log4j.properties (the
#       Connect log goes to DIR/connect.log) and DIR/log4j-tools.properties (WARN and up to
#       stderr, for shell/lib/bench/EndOffsets.java)
#
# The connector and its runtime dependencies come from Maven Central, resolved by mvn into
# $ROOT/.tools/debezium-pg/connector-<version>/plugins/debezium-connector-postgres (the Maven
# cache is $ROOT/.tools/m2; both git-ignored) — the same folders as
# crates/stream-worker/tests/data/debezium_pg/capture.sh, so either fills the cache for the
# other. Kafka Connect itself (connect-runtime, connect-json, Jetty, Jersey) is already in
# the Kafka jars of `shell/local-kafka.sh fetch` (kafka-tools depends on connect-runtime).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"

do_fetch() {
    local root="$ROOT" tools m2 v plugins dir work ok
    tools="$root/.tools/debezium-pg"
    m2="$root/.tools/m2"
    for v in ${DBZ_VERSION:-3.2.7.Final} 3.6.1.Final; do
        plugins="$tools/connector-$v/plugins"
        dir="$plugins/debezium-connector-postgres"
        if [[ ! -f "$dir/.fetched" ]]; then
            command -v mvn >/dev/null || { echo "mvn not found (apt-get install maven)" >&2; return 1; }
            echo "bench-collector: fetching Debezium PostgreSQL connector $v into ${plugins#"$root"/}" >&2
            work="$(mktemp -d)"
            cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>rtdp.local</groupId><artifactId>dbz-fetch</artifactId><version>1</version><packaging>pom</packaging>
<dependencies><dependency><groupId>io.debezium</groupId><artifactId>debezium-connector-postgres</artifactId><version>$v</version></dependency></dependencies>
</project>
POM
            rm -rf "$dir.tmp"
            mkdir -p "$dir.tmp"
            ok=0
            if mvn -q -B -f "$work/pom.xml" -Dmaven.repo.local="$m2" dependency:copy-dependencies \
                -DincludeScope=runtime -DoutputDirectory="$dir.tmp" >"$work/mvn.log" 2>&1; then
                # Connect always loads org.slf4j from its own classpath.
                rm -f "$dir.tmp"/slf4j-*.jar
                rm -rf "$dir"
                mv "$dir.tmp" "$dir"
                touch "$dir/.fetched"
                ok=1
            else
                tail -n 20 "$work/mvn.log" >&2
                rm -rf "$dir.tmp"
                echo "bench-collector: fetching Debezium $v failed" >&2
            fi
            rm -rf "$work"
            ((ok)) || continue
        fi
        echo "$v $plugins"
        return 0
    done
    echo "bench-collector: could not fetch the Debezium PostgreSQL connector" >&2
    return 1
}

do_config() {
    (($# == 14)) || { echo "debezium.sh config: 14 arguments expected, got $#" >&2; exit 2; }
    local dir="$1"
    cat >"$dir/worker.properties" <<PROPS
bootstrap.servers=$2
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
offset.storage.file.filename=$dir/connect.offsets
offset.flush.interval.ms=10000
plugin.path=$3
listeners=http://127.0.0.1:$4
PROPS
    cat >"$dir/connector.properties" <<PROPS
name=$5
connector.class=io.debezium.connector.postgresql.PostgresConnector
tasks.max=1
database.hostname=127.0.0.1
database.port=$6
database.user=$7
database.password=$8
database.dbname=$9
topic.prefix=${13}
plugin.name=pgoutput
slot.name=${10}
publication.name=${11}
publication.autocreate.mode=disabled
snapshot.mode=no_data
table.include.list=${12}
key.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=false
# The broker of shell/local-kafka.sh does not auto-create topics: Connect creates them.
topic.creation.default.replication.factor=1
topic.creation.default.partitions=${14}
PROPS
    cat >"$dir/log4j.properties" <<L4J
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/connect.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.reflections=ERROR
L4J
    cat >"$dir/log4j-tools.properties" <<L4J
log4j.rootLogger=WARN, err
log4j.appender.err=org.apache.log4j.ConsoleAppender
log4j.appender.err.Target=System.err
log4j.appender.err.layout=org.apache.log4j.PatternLayout
log4j.appender.err.layout.ConversionPattern=[%d] %p %m (%c)%n
L4J
}

case "${1:-}" in
    fetch) do_fetch ;;
    config) shift; do_config "$@" ;;
    *) echo "usage: $0 fetch | config DIR BOOTSTRAP PLUGIN_PATH REST_PORT NAME PG_PORT USER PASSWORD DB SLOT PUBLICATION TABLE TOPIC_PREFIX PARTITIONS" >&2; exit 2 ;;
esac
