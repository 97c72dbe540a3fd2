#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) without Docker.
#
#   shell/local-kafka.sh fetch    download Kafka jars once into $ROOT/.tools/kafka-<version>/libs
#   shell/local-kafka.sh start    start a broker (state in $RTDP_KAFKA_DIR), print bootstrap=HOST:PORT last
#   shell/local-kafka.sh stop     stop the broker of that state dir (exit 0 if none runs)
#   shell/local-kafka.sh status   print running/stopped
#
# Environment:
#   RTDP_KAFKA_DIR   state dir (logs, data, pid file); default $ROOT/.tools/kafka-local
#   KAFKA_PORT       client port; default 9092, or a free port if 9092 is taken
#   KAFKA_VERSION    Kafka release; default 3.9.1 (falls back to the newest 3.9.x)
#   KAFKA_START_TIMEOUT  seconds to wait for the broker; default 60
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
M2="$TOOLS/m2"
STATE="${RTDP_KAFKA_DIR:-$TOOLS/kafka-local}"
PIDFILE="$STATE/kafka.pid"
PORTFILE="$STATE/port"
LOG="$STATE/kafka.out"
FALLBACK_VERSIONS="3.9.1 3.9.0"

log() { echo "local-kafka: $*" >&2; }

# Prints the version whose jars are already fetched, if any.
installed_version() {
    local v
    for v in ${KAFKA_VERSION:-} $FALLBACK_VERSIONS; do
        if [[ -f "$TOOLS/kafka-$v/.fetched" ]]; then echo "$v"; return 0; fi
    done
    return 1
}

fetch_version() {
    local v="$1"
    local dir="$TOOLS/kafka-$v" work
    work="$(mktemp -d)"
    cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>rtdp.local</groupId>
  <artifactId>kafka-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$v</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$v</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-storage</artifactId><version>$v</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>1.2.25</version></dependency>
  </dependencies>
</project>
POM
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp/libs"
    if mvn -q -B -f "$work/pom.xml" -Dmaven.repo.local="$M2" \
        dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$dir.tmp/libs" >"$work/mvn.log" 2>&1; then
        rm -rf "$dir"
        mv "$dir.tmp" "$dir"
        touch "$dir/.fetched"
        rm -rf "$work"
        return 0
    fi
    log "fetching Kafka $v failed:"; tail -n 20 "$work/mvn.log" >&2
    rm -rf "$work" "$dir.tmp"
    return 1
}

# Ensures jars are present; prints the Kafka home dir.
do_fetch() {
    local v
    if v="$(installed_version)"; then echo "$TOOLS/kafka-$v"; return 0; fi
    command -v mvn >/dev/null || { log "mvn not found (apt-get install maven)"; exit 1; }
    command -v java >/dev/null || { log "java not found (apt-get install openjdk-17-jre-headless)"; exit 1; }
    mkdir -p "$TOOLS"
    for v in ${KAFKA_VERSION:-} $FALLBACK_VERSIONS; do
        log "fetching Apache Kafka $v from Maven Central into $TOOLS/kafka-$v"
        if fetch_version "$v"; then echo "$TOOLS/kafka-$v"; return 0; fi
    done
    log "could not fetch any Kafka version"; exit 1
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    python3 - <<'PY' 2>/dev/null || { local p; while :; do p=$((20000 + RANDOM % 40000)); port_in_use "$p" || { echo "$p"; return; }; done; }
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

running_pid() {
    [[ -f "$PIDFILE" ]] || return 1
    local pid; pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    # Guard against pid reuse: the process must be our broker.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka.Kafka' || return 1
    echo "$pid"
}

# True when the broker accepts TCP and has logged that it started.
broker_ready() {
    local port="$1"
    port_in_use "$port" || return 1
    grep -q 'Kafka Server started\|\[KafkaRaftServer nodeId=1\] Kafka Server started' "$STATE/logs/server.log" "$LOG" 2>/dev/null
}

do_start() {
    local home port pid cluster_id deadline
    if pid="$(running_pid)"; then
        echo "bootstrap=127.0.0.1:$(cat "$PORTFILE")"; return 0
    fi
    home="$(do_fetch)"
    mkdir -p "$STATE/logs"
    if [[ -n "${KAFKA_PORT:-}" ]]; then
        port="$KAFKA_PORT"
        if port_in_use "$port"; then log "KAFKA_PORT=$port is already in use"; exit 1; fi
    else
        port=9092
        if port_in_use "$port"; then port="$(free_port)"; fi
    fi
    local cport; cport="$(free_port)"
    while [[ "$cport" == "$port" ]]; do cport="$(free_port)"; done

    rm -rf "$STATE/data"
    cat >"$STATE/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$STATE/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.flush.interval.messages=9223372036854775807
log.retention.hours=-1
log.segment.bytes=104857600
num.network.threads=2
num.io.threads=4
PROPS
    cat >"$STATE/log4j.properties" <<L4J
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$STATE/logs/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
L4J
    local jvm=(java -Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto
               -Djava.awt.headless=true -Dlog4j.configuration="file:$STATE/log4j.properties"
               -Dkafka.logs.dir="$STATE/logs" -cp "$home/libs/*")
    cluster_id="$("${jvm[@]}" kafka.tools.StorageTool random-uuid 2>>"$LOG" | tail -n 1)"
    if ! "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$STATE/server.properties" \
            >>"$LOG" 2>&1; then
        log "storage format failed:"; tail -n 30 "$LOG" >&2; exit 1
    fi
    echo "$port" >"$PORTFILE"
    : >"$STATE/logs/server.log"
    nohup "${jvm[@]}" kafka.Kafka "$STATE/server.properties" >>"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
    deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-60}))
    until broker_ready "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "broker exited during startup; log tail:"
            tail -n 40 "$STATE/logs/server.log" "$LOG" >&2 || true
            rm -f "$PIDFILE"; exit 1
        fi
        if (( SECONDS >= deadline )); then
            log "broker did not start within ${KAFKA_START_TIMEOUT:-60}s; log tail:"
            tail -n 40 "$STATE/logs/server.log" "$LOG" >&2 || true
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$PIDFILE"; exit 1
        fi
        sleep 0.2
    done
    log "broker pid $pid, logs in $STATE/logs"
    echo "pid=$pid"
    echo "bootstrap=127.0.0.1:$port"
}

do_stop() {
    local pid deadline
    pid="$(running_pid)" || { rm -f "$PIDFILE"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + ${KAFKA_STOP_TIMEOUT:-20}))
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "broker $pid ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$PIDFILE"
    log "stopped broker $pid"
}

do_status() {
    local pid
    if pid="$(running_pid)"; then
        echo "running pid=$pid bootstrap=127.0.0.1:$(cat "$PORTFILE")"
    else
        echo "stopped"
    fi
}

case "${1:-}" in
    fetch) do_fetch ;;
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
    *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
