#!/usr/bin/env bash
# Captures the records the real Debezium PostgreSQL connector emits for a fixed workload, as
# test data for stream-worker. Regenerates, in the folder of this script:
#
#   records_schema.jsonl    topics dbz_schema.public.{accounts,items_full}   (JsonConverter, schemas.enable=true)
#   records_noschema.jsonl  topics dbz_noschema.public.{accounts,items_full} (JsonConverter, schemas.enable=false)
#   final_tables.json       the source tables after the workload (json_agg(row_to_json(t) ORDER BY id))
#
# Run from anywhere (e.g. the repo root): crates/stream-worker/tests/data/debezium_pg/capture.sh
#
# What it does: fetches Kafka Connect 3.9.1 and the Debezium PostgreSQL connector from Maven
# Central into .tools/debezium-pg (git-ignored; the Maven cache is .tools/m2), starts a Kafka
# broker with shell/local-kafka.sh, a throwaway PostgreSQL 15 (wal_level=logical, trust auth),
# Kafka Connect standalone with two Debezium connectors (with and without JSON schemas),
# waits until both stream, runs the workload, waits for every expected record, dumps the
# topics with Kafka's console consumer and stops everything again (also on failure).
#
# Environment:
#   DBZ_VERSION      Debezium version; default 3.2.7.Final (falls back to 3.6.1.Final)
#   CONNECT_VERSION  Kafka Connect version; default 3.9.1
#   PGBIN            PostgreSQL 15 server binaries; default /usr/lib/postgresql/15/bin
#   KEEP_TMP=1       keep the temp dir (logs, configs) instead of removing it
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../../../.." && pwd)"
TOOLS="$ROOT/.tools"
M2="$TOOLS/m2"
DBZ_TOOLS="$TOOLS/debezium-pg"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
CONNECT_VERSION="${CONNECT_VERSION:-3.9.1}"
DBZ_VERSIONS="${DBZ_VERSION:-3.2.7.Final} 3.6.1.Final"
START=$SECONDS

# Nothing in the caller's environment may redirect our psql.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGOPTIONS PGSSLMODE

log() { echo "capture: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v java >/dev/null || die "java not found (apt-get install openjdk-17-jre-headless)"
command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
command -v python3 >/dev/null || die "python3 not found"
[[ -x "$PGBIN/initdb" ]] || die "no PostgreSQL 15 server in $PGBIN (apt-get install postgresql-15)"

# --- jars ----------------------------------------------------------------------------------

# mvn_copy DIR DEPENDENCY-XML...: resolves the dependencies (runtime scope) into DIR.
mvn_copy() {
    local dir="$1" work rc=0
    shift
    work="$(mktemp -d)"
    {
        echo '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        echo '<groupId>rtdp.local</groupId><artifactId>dbz-fetch</artifactId><version>1</version><packaging>pom</packaging>'
        echo '<dependencies>'
        printf '%s\n' "$@"
        echo '</dependencies></project>'
    } >"$work/pom.xml"
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp"
    if mvn -q -B -f "$work/pom.xml" -Dmaven.repo.local="$M2" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$dir.tmp" >"$work/mvn.log" 2>&1; then
        rm -rf "$dir"
        mv "$dir.tmp" "$dir"
        touch "$dir/.fetched"
    else
        rc=1
        tail -n 20 "$work/mvn.log" >&2
        rm -rf "$dir.tmp"
    fi
    rm -rf "$work"
    return "$rc"
}

dep() { echo "<dependency><groupId>$1</groupId><artifactId>$2</artifactId><version>$3</version></dependency>"; }

CONNECT_LIBS="$DBZ_TOOLS/connect-$CONNECT_VERSION/libs"
if [[ ! -f "$CONNECT_LIBS/.fetched" ]]; then
    log "fetching Kafka Connect $CONNECT_VERSION into ${CONNECT_LIBS#"$ROOT"/}"
    mvn_copy "$CONNECT_LIBS" \
        "$(dep org.apache.kafka connect-runtime "$CONNECT_VERSION")" \
        "$(dep org.apache.kafka connect-json "$CONNECT_VERSION")" \
        "$(dep org.apache.kafka connect-api "$CONNECT_VERSION")" \
        "$(dep org.slf4j slf4j-reload4j 1.7.36)" \
        "$(dep ch.qos.reload4j reload4j 1.2.25)" ||
        die "could not fetch Kafka Connect $CONNECT_VERSION"
fi

# Connect's plugin.path holds one folder per plugin; the connector's jars (slf4j excepted:
# Connect always loads org.slf4j from its own classpath) go into one such folder.
DBZ=""
for v in $DBZ_VERSIONS; do
    plugins="$DBZ_TOOLS/connector-$v/plugins"
    if [[ -f "$plugins/debezium-connector-postgres/.fetched" ]]; then DBZ="$v"; break; fi
    log "fetching Debezium PostgreSQL connector $v into ${plugins#"$ROOT"/}"
    if mvn_copy "$plugins/debezium-connector-postgres" "$(dep io.debezium debezium-connector-postgres "$v")"; then
        rm -f "$plugins"/debezium-connector-postgres/slf4j-*.jar
        DBZ="$v"
        break
    fi
    log "fetching Debezium $v failed"
done
[[ -n "$DBZ" ]] || die "could not fetch the Debezium PostgreSQL connector ($DBZ_VERSIONS)"
PLUGIN_PATH="$DBZ_TOOLS/connector-$DBZ/plugins"

KAFKA_HOME="$("$ROOT/shell/local-kafka.sh" fetch)"
KAFKA_CP="$KAFKA_HOME/libs/*"

# --- temp dir, cleanup ---------------------------------------------------------------------

TMP="$(mktemp -d /tmp/dbzpg.XXXXXX)"
chmod 755 "$TMP"
PGDIR="$TMP/pg"
LOGS="$TMP/logs"
mkdir -p "$LOGS" "$TMP/out"
CONNECT_PID=""
PG_STARTED=0
KAFKA_STARTED=0
AS_PG=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if ((rc != 0)); then
        log "FAILED (exit $rc); tail of the Connect log:"
        tail -n 60 "$LOGS/connect.log" >&2 2>/dev/null
        tail -n 20 "$LOGS/connect.out" >&2 2>/dev/null
    fi
    if [[ -n "$CONNECT_PID" ]] && kill -0 "$CONNECT_PID" 2>/dev/null; then
        kill -TERM "$CONNECT_PID" 2>/dev/null
        local deadline=$((SECONDS + 30))
        while kill -0 "$CONNECT_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        kill -KILL "$CONNECT_PID" 2>/dev/null
        wait "$CONNECT_PID" 2>/dev/null
    fi
    if ((KAFKA_STARTED)); then
        RTDP_KAFKA_DIR="$TMP/kafka" "$ROOT/shell/local-kafka.sh" stop >>"$LOGS/kafka-ctl.log" 2>&1
    fi
    if ((PG_STARTED)); then
        "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >>"$LOGS/pg-ctl.log" 2>&1
    fi
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# --- Kafka ---------------------------------------------------------------------------------

KAFKA_PORT="$(free_port)"
KAFKA_STARTED=1
BOOTSTRAP="$(RTDP_KAFKA_DIR="$TMP/kafka" KAFKA_PORT="$KAFKA_PORT" "$ROOT/shell/local-kafka.sh" start 2>"$LOGS/kafka-ctl.log" | tail -n 1)" ||
    { cat "$LOGS/kafka-ctl.log" >&2; die "starting Kafka failed"; }
BOOTSTRAP="${BOOTSTRAP#bootstrap=}"
log "Kafka at $BOOTSTRAP"

# --- PostgreSQL ----------------------------------------------------------------------------

mkdir -p "$PGDIR"
if [[ "$(id -u)" == 0 ]]; then
    # initdb and postgres refuse to run as root.
    id -u postgres >/dev/null 2>&1 ||
        useradd --system --user-group --no-create-home --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
    chown postgres:postgres "$PGDIR"
    AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi
(cd "$PGDIR" && "${AS_PG[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 \
    --locale=C --no-sync --no-instructions) >"$LOGS/initdb.log" 2>&1 ||
    { cat "$LOGS/initdb.log" >&2; die "initdb failed"; }
PG_PORT="$(free_port)"
PG_STARTED=1
(cd "$PGDIR" && "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w -t 60 \
    -o "-p $PG_PORT -k $PGDIR -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 -c fsync=off" \
    start) >"$LOGS/pg-ctl.log" 2>&1 ||
    { tail -n 30 "$LOGS/pg-ctl.log" "$PGDIR/postgres.log" >&2; die "starting PostgreSQL failed"; }

psql_db() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }
psql_db -d postgres -c "CREATE DATABASE dbz"
psql_db -d dbz <<'SQL'
CREATE TABLE public.accounts (
  id integer PRIMARY KEY, name text, n numeric, amount numeric(12,2),
  day date, at timestamp(6), flag boolean, score double precision);
CREATE TABLE public.items_full (id bigint PRIMARY KEY, note text, big numeric);
ALTER TABLE public.items_full REPLICA IDENTITY FULL;
SQL
PG_VERSION_TEXT="$(psql_db -d dbz -At -c 'SELECT version()')"
log "PostgreSQL at 127.0.0.1:$PG_PORT: $PG_VERSION_TEXT"

# --- Kafka Connect with two Debezium connectors ----------------------------------------------

REST_PORT="$(free_port)"
cat >"$TMP/worker.properties" <<PROPS
bootstrap.servers=$BOOTSTRAP
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
offset.storage.file.filename=$TMP/connect.offsets
offset.flush.interval.ms=1000
plugin.path=$PLUGIN_PATH
listeners=http://127.0.0.1:$REST_PORT
PROPS

# connector_props NAME SCHEMAS(true|false)
connector_props() {
    cat <<PROPS
name=$1
connector.class=io.debezium.connector.postgresql.PostgresConnector
tasks.max=1
database.hostname=127.0.0.1
database.port=$PG_PORT
database.user=postgres
database.dbname=dbz
topic.prefix=dbz_$1
plugin.name=pgoutput
slot.name=dbz_$1
publication.name=dbz_pub_$1
publication.autocreate.mode=all_tables
snapshot.mode=no_data
table.include.list=public.accounts,public.items_full
key.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=$2
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=$2
# The broker of shell/local-kafka.sh does not auto-create topics: Connect creates them.
topic.creation.default.replication.factor=1
topic.creation.default.partitions=1
PROPS
}
connector_props schema true >"$TMP/schema.properties"
connector_props noschema false >"$TMP/noschema.properties"

cat >"$TMP/connect-log4j.properties" <<L4J
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$LOGS/connect.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.reflections=ERROR
L4J

java -Xms128m -Xmx512m -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$TMP/connect-log4j.properties" -cp "$CONNECT_LIBS/*" \
    org.apache.kafka.connect.cli.ConnectStandalone "$TMP/worker.properties" \
    "$TMP/schema.properties" "$TMP/noschema.properties" >"$LOGS/connect.out" 2>&1 </dev/null &
CONNECT_PID=$!
log "Kafka Connect pid $CONNECT_PID (Debezium $DBZ), waiting for both connectors to stream"

deadline=$((SECONDS + 180))
until [[ "$(psql_db -d dbz -At -c "SELECT count(*) FROM pg_replication_slots
        WHERE slot_name IN ('dbz_schema', 'dbz_noschema') AND active")" == 2 ]] &&
    [[ "$(grep -c 'Processing messages' "$LOGS/connect.log" 2>/dev/null)" -ge 2 ]]; do
    kill -0 "$CONNECT_PID" 2>/dev/null || die "Kafka Connect exited"
    grep -q 'Task threw an uncaught and unrecoverable exception\|Failed to start connector' "$LOGS/connect.log" 2>/dev/null &&
        die "a connector failed"
    ((SECONDS < deadline)) || die "the connectors did not start streaming within 180 s"
    sleep 0.5
done
log "both connectors stream"

# --- workload ------------------------------------------------------------------------------

# Each statement is its own transaction, except the explicit BEGIN … COMMIT.
psql_db -d dbz <<'SQL'
INSERT INTO accounts VALUES
  (1,'alpha','3.14159265358979323846264338327950288419716939937510',1234.50,'2026-03-23','2026-03-23 10:11:12.123456',true,1.5),
  (2,'beta', 1e41, -0.01,'1969-12-31','1969-12-31 23:59:59.999999',false,-2.25),
  (3,'gamma','-12345678901234567890123456789012345678901234.5678',0,'2000-02-29','2000-02-29 00:00:00',NULL,NULL),
  (4,'delta',0,99.99,NULL,NULL,true,0),
  (5,'eps',NULL,NULL,'2026-01-01','2026-01-01 00:00:00.000001',false,1e300);
UPDATE accounts SET name='alpha2', n = n * 3 WHERE id=1;
UPDATE accounts SET id=102 WHERE id=2;
DELETE FROM accounts WHERE id=3;
BEGIN; UPDATE accounts SET id=104, n='12345678901234567890123456789012345678901234567890' WHERE id=4; INSERT INTO accounts VALUES (6,'zeta','0.000000000000000000000000000000000000000001',1.00,'2026-12-04','2026-12-04 12:00:00',true,3.25); COMMIT;
UPDATE accounts SET id=2 WHERE id=102;
INSERT INTO items_full VALUES (10,'ten','98765432109876543210987654321098765432109876543210.123'),(11,'eleven',NULL),(12,'twelve','7');
UPDATE items_full SET id=110, note='ten moved' WHERE id=10;
UPDATE items_full SET big = big + 1 WHERE id=12;
DELETE FROM items_full WHERE id=11;
SQL
log "workload done"

# Records per topic: insert 1, update 1, key-changing update 3 (delete, tombstone, create),
# delete 2 (delete, tombstone).
#   accounts:   5 inserts + 1 update + 3 (2→102) + 2 (delete 3) + 3 (4→104) + 1 insert + 3 (102→2) = 18
#   items_full: 3 inserts + 3 (10→110) + 1 update + 2 (delete 11) = 9
declare -A EXPECTED=(
    [dbz_schema.public.accounts]=18 [dbz_schema.public.items_full]=9
    [dbz_noschema.public.accounts]=18 [dbz_noschema.public.items_full]=9
)

# Prints "topic count" for every topic of both prefixes (sum over partitions, sorted).
topic_counts() {
    java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dlog4j.configuration="file:$TMP/connect-log4j.properties" \
        -cp "$KAFKA_CP" org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$BOOTSTRAP" \
        --topic 'dbz_(no)?schema\..*' --time -1 2>>"$LOGS/tools.log" |
        awk -F: '{ n[$1] += $3 } END { for (t in n) print t, n[t] }' | sort || true
}
want="$(for t in "${!EXPECTED[@]}"; do echo "$t ${EXPECTED[$t]}"; done | sort)"
deadline=$((SECONDS + 180))
prev="" stable=0
while :; do
    counts="$(topic_counts)"
    if [[ "$counts" == "$prev" ]]; then stable=$((stable + 1)); else stable=0; fi
    prev="$counts"
    if [[ "$counts" == "$want" ]] && ((stable >= 1)); then break; fi
    kill -0 "$CONNECT_PID" 2>/dev/null || die "Kafka Connect exited"
    if ((SECONDS >= deadline)) || { ((stable >= 5)) && [[ -n "$counts" ]]; }; then
        log "records per topic (stopped growing):"; echo "$counts" >&2
        log "expected:"; echo "$want" >&2
        die "the topics do not hold the expected records"
    fi
    sleep 2
done
log "all records are in Kafka:"
printf "    %s\n" "${counts//$'\n'/$'\n    '}" >&2

# --- dump ----------------------------------------------------------------------------------

NULL_LITERAL='<<KAFKA-NULL>>'
dump_topic() {
    local topic="$1"
    java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dlog4j.configuration="file:$TMP/connect-log4j.properties" \
        -cp "$KAFKA_CP" org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BOOTSTRAP" \
        --topic "$topic" --from-beginning --timeout-ms 10000 --max-messages "${EXPECTED[$topic]}" \
        --property print.key=true --property print.partition=true --property print.offset=true \
        --property print.value=true --property key.separator=$'\t' --property "null.literal=$NULL_LITERAL" \
        >"$TMP/out/$topic.tsv" 2>>"$LOGS/tools.log"
}
for t in "${!EXPECTED[@]}"; do dump_topic "$t"; done

# Lines are "Partition:P<TAB>Offset:O<TAB>KEY<TAB>VALUE"; JSON text never holds a raw tab.
to_jsonl() {
    local out="$1"
    shift
    NULL_LITERAL="$NULL_LITERAL" python3 - "$out" "$@" <<'PY'
import json, os, sys

null = os.environ["NULL_LITERAL"]
out, files = sys.argv[1], sys.argv[2:]
records = []
for path in files:
    topic = os.path.basename(path)[: -len(".tsv")]
    with open(path, encoding="utf-8", newline="\n") as f:
        for line in f.read().split("\n"):
            if not line:
                continue
            part, off, key, value = line.split("\t")
            assert part.startswith("Partition:") and off.startswith("Offset:"), line
            rec = {
                "topic": topic,
                "partition": int(part[len("Partition:"):]),
                "offset": int(off[len("Offset:"):]),
                "key": None if key == null else key,
                "value": None if value == null else value,
            }
            for field in ("key", "value"):
                if rec[field] is not None:
                    json.loads(rec[field])  # must be JSON text
            records.append(rec)
records.sort(key=lambda r: (r["topic"], r["partition"], r["offset"]))
with open(out, "w", encoding="utf-8") as f:
    for r in records:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
PY
}
to_jsonl "$TMP/out/records_schema.jsonl" "$TMP/out/dbz_schema.public.accounts.tsv" "$TMP/out/dbz_schema.public.items_full.tsv"
to_jsonl "$TMP/out/records_noschema.jsonl" "$TMP/out/dbz_noschema.public.accounts.tsv" "$TMP/out/dbz_noschema.public.items_full.tsv"

# row_to_json keeps every digit of a numeric (no float on the way); one row per line.
table_json() {
    psql_db -d dbz -At -c "SELECT '[' || string_agg(row_to_json(t)::text, E',\n  ' ORDER BY id) || ']' FROM $1 t"
}
printf '{"accounts": %s,\n "items_full": %s}\n' "$(table_json accounts)" "$(table_json items_full)" \
    >"$TMP/out/final_tables.json"

# --- checks --------------------------------------------------------------------------------

python3 - "$TMP/out" <<'PY'
import collections, decimal, json, sys

out = sys.argv[1]
expected = {"accounts": 18, "items_full": 9}
for kind in ("schema", "noschema"):
    recs = [json.loads(l) for l in open(f"{out}/records_{kind}.jsonl", encoding="utf-8")]
    counts = collections.Counter(r["topic"] for r in recs)
    for table, n in expected.items():
        topic = f"dbz_{kind}.public.{table}"
        assert counts[topic] == n, (topic, counts[topic], n)
        offsets = [r["offset"] for r in recs if r["topic"] == topic]
        assert offsets == list(range(n)), (topic, offsets)
    tombstones = sum(r["value"] is None for r in recs)
    assert tombstones == 4 + 2, (kind, tombstones)  # accounts: 2→102, 3, 4→104, 102→2; items_full: 10→110, 11

final = json.load(open(f"{out}/final_tables.json", encoding="utf-8"), parse_float=decimal.Decimal)
by_id = {r["id"]: r for r in final["accounts"]}
assert [r["id"] for r in final["accounts"]] == [1, 2, 5, 6, 104], by_id.keys()
assert by_id[2]["n"] == 10**41, by_id[2]["n"]
assert by_id[104]["n"] == 12345678901234567890123456789012345678901234567890, by_id[104]["n"]
assert str(by_id[1]["n"]) == "9.42477796076937971538793014983850865259150819812530", by_id[1]["n"]
assert str(by_id[6]["n"]) == "1E-42", by_id[6]["n"]
assert [r["id"] for r in final["items_full"]] == [12, 110]
assert final["items_full"][1]["big"] == decimal.Decimal("98765432109876543210987654321098765432109876543210.123")
PY

for f in records_schema.jsonl records_noschema.jsonl final_tables.json; do
    mv "$TMP/out/$f" "$HERE/$f"
done

echo "wrote (in ${HERE#"$ROOT"/}):"
for f in records_schema.jsonl records_noschema.jsonl final_tables.json; do
    printf '  %-24s %4d lines\n' "$f" "$(wc -l <"$HERE/$f")"
done
echo "Debezium PostgreSQL connector $DBZ, Kafka Connect $CONNECT_VERSION, broker $(basename "$KAFKA_HOME")"
echo "$PG_VERSION_TEXT"
echo "took $((SECONDS - START)) s"
