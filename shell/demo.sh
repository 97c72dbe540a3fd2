#!/usr/bin/env bash
# demo.sh — the main job on local defaults, end to end, on this machine (no Docker).
#
#   ./shell/demo.sh
#
# 1. installs what is missing (shell/ensure-tools.sh: Debian packages, Kafka jars, a
#    Python venv with pyarrow), builds the release binaries;
# 2. starts a local single-node Kafka (shell/local-kafka.sh), unless one already runs;
# 3. loads DEMO_COUNT (50,000) synthetic 15-column change events into a fresh topic
#    (3 partitions, 3 tables) with rtdp-gen;
# 4. runs stream-worker on them until every event is in a committed file, prints its
#    /status, stops it with SIGTERM (it must exit 0);
# 5. stops Kafka (if this script started it and KEEP_KAFKA is not 1), lists the files
#    under output/demo and counts the rows per table with pyarrow.
#
# Environment:
#   OUTPUT_FORMAT      parquet (default) | json | csv
#   OUTPUT_COMPRESSION passed through when set (parquet: none|gzip|snappy|zstd; json/csv: none|gzip|zstd)
#   MONITORING_PORT    the worker's health/metrics port; default 8080 (a free port if 8080 is taken)
#   DEMO_COUNT         events to load; default 50000
#   DEMO_TIMEOUT       seconds to wait for the worker to commit them all; default 180
#   KEEP_KAFKA=1       leave the broker running at the end
#
# Re-runnable: output/demo is deleted first, and each run uses its own topic and consumer
# group (rtdp-demo-<timestamp>), so counts are exact even when the broker keeps topics of
# earlier runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OUT_REL="output/demo"
OUT="$ROOT/$OUT_REL"
WORKER_LOG="$ROOT/output/demo-worker.log"
COUNT="${DEMO_COUNT:-50000}"
TIMEOUT="${DEMO_TIMEOUT:-180}"
FORMAT="${OUTPUT_FORMAT:-parquet}"
PY="$ROOT/.tools/venv/bin/python"
STAMP="$(date +%Y%m%d-%H%M%S)"
TOPIC="rtdp-demo-$STAMP"
GROUP="rtdp-demo-$STAMP"

WORKER_PID=""
STARTED_KAFKA=0

say() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() { printf '\ndemo: ERROR: %s\n' "$*" >&2; exit 1; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$WORKER_PID" ]] && kill -0 "$WORKER_PID" 2>/dev/null; then
        note "stopping stream-worker (pid $WORKER_PID)"
        kill -TERM "$WORKER_PID" 2>/dev/null || true
        local deadline=$((SECONDS + 40))
        while kill -0 "$WORKER_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        kill -KILL "$WORKER_PID" 2>/dev/null || true
        wait "$WORKER_PID" 2>/dev/null || true
    fi
    if ((STARTED_KAFKA)) && [[ "${KEEP_KAFKA:-0}" != 1 ]]; then
        note "stopping the local Kafka broker"
        "$ROOT/shell/local-kafka.sh" stop >/dev/null 2>&1 || true
    fi
    if ((rc != 0)); then
        printf '\ndemo: failed (exit %d).' "$rc" >&2
        [[ -s "$WORKER_LOG" ]] && printf ' Worker log: %s' "$WORKER_LOG" >&2
        printf '\n' >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# GET http://127.0.0.1:$port$path; curl when present, else bash's /dev/tcp.
http_get() {
    local port="$1" path="$2"
    if command -v curl >/dev/null; then
        curl -sf --max-time 5 "http://127.0.0.1:$port$path"
    else
        exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
        printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
        sed '1,/^\r$/d' <&3
        exec 3<&-
    fi
}

# Value of an unlabelled Prometheus sample ("" when absent).
metric() {
    { http_get "$PORT" /metrics 2>/dev/null || true; } | awk -v m="$1" '$1 == m { print $2; exit }'
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- 0. prerequisites ---------------------------------------------------------------------
case "$FORMAT" in parquet | json | csv) ;; *) die "OUTPUT_FORMAT must be parquet, json or csv (got '$FORMAT')" ;; esac
if ! command -v cargo >/dev/null; then
    die "cargo not found. Install Rust first:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . \"\$HOME/.cargo/env\""
fi

if [[ -n "${MONITORING_PORT:-}" ]]; then
    PORT="$MONITORING_PORT"
    port_in_use "$PORT" && die "MONITORING_PORT=$PORT is already in use; choose another port"
else
    PORT=8080
    if port_in_use "$PORT"; then
        PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
        note "port 8080 is in use; the worker's health/metrics server uses port $PORT instead"
    fi
fi

say "Checking tools (shell/ensure-tools.sh installs what is missing)"
"$ROOT/shell/ensure-tools.sh" >/dev/null

say "Building release binaries (cargo build --release -p stream-worker -p rtdp-testkit --bins)"
cargo build --release -p stream-worker -p rtdp-testkit --bins

# --- 1. Kafka -----------------------------------------------------------------------------
say "Starting a local Kafka broker (shell/local-kafka.sh start)"
if "$ROOT/shell/local-kafka.sh" status | grep -q '^running'; then
    note "a local broker is already running; using it and leaving it running"
else
    STARTED_KAFKA=1
fi
kafka_out="$("$ROOT/shell/local-kafka.sh" start)"
BOOTSTRAP="$(printf '%s\n' "$kafka_out" | tail -n 1 | sed -n 's/^bootstrap=//p')"
[[ -n "$BOOTSTRAP" ]] || die "shell/local-kafka.sh start did not print bootstrap=HOST:PORT (got: $kafka_out)"
note "bootstrap servers: $BOOTSTRAP"

# --- 2. events ----------------------------------------------------------------------------
say "Loading $COUNT change events into topic $TOPIC (3 partitions, 3 tables)"
"$ROOT/target/release/rtdp-gen" --bootstrap "$BOOTSTRAP" --topic "$TOPIC" \
    --count "$COUNT" --partitions 3 --tables 3

# --- 3. the worker ------------------------------------------------------------------------
say "Running stream-worker: $TOPIC -> $OUT_REL ($FORMAT), health and metrics on :$PORT"
rm -rf "$OUT"
mkdir -p "$ROOT/output"
: >"$WORKER_LOG"
worker_env=(
    KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP"
    KAFKA_TOPIC="$TOPIC"
    KAFKA_GROUP_ID="$GROUP"
    OUTPUT_PATH="./$OUT_REL"
    OUTPUT_FORMAT="$FORMAT"
    OUTPUT_ROLLING_INACTIVITY=2000
    MONITORING_PORT="$PORT"
    NO_COLOR=1
)
[[ -n "${OUTPUT_COMPRESSION:-}" ]] && worker_env+=(OUTPUT_COMPRESSION="$OUTPUT_COMPRESSION")
env "${worker_env[@]}" "$ROOT/target/release/stream-worker" >>"$WORKER_LOG" 2>&1 &
WORKER_PID=$!
note "pid $WORKER_PID, log $WORKER_LOG"

deadline=$((SECONDS + TIMEOUT))
last_report=$SECONDS
out=0
while :; do
    if ! kill -0 "$WORKER_PID" 2>/dev/null; then
        wait "$WORKER_PID" && rc=0 || rc=$?
        WORKER_PID=""
        tail -n 30 "$WORKER_LOG" >&2 || true
        die "stream-worker exited early with code $rc"
    fi
    out="$(metric rtdp_records_out_total)"
    out="${out%%.*}"
    out="${out:-0}"
    ((out >= COUNT)) && break
    if ((SECONDS >= deadline)); then
        tail -n 30 "$WORKER_LOG" >&2 || true
        die "only $out of $COUNT records committed after ${TIMEOUT}s"
    fi
    if ((SECONDS - last_report >= 5)); then
        last_report=$SECONDS
        note "records in: $(metric rtdp_records_in_total || true), committed to files: $out"
    fi
    sleep 0.5
done
note "all $COUNT records are in committed files"

say "Worker status (curl localhost:$PORT/status)"
status_json="$(http_get "$PORT" /status)"
if command -v python3 >/dev/null; then
    printf '%s' "$status_json" | python3 -m json.tool
else
    printf '%s\n' "$status_json"
fi

say "Stopping stream-worker with SIGTERM"
kill -TERM "$WORKER_PID"
stop_deadline=$((SECONDS + 45))
while kill -0 "$WORKER_PID" 2>/dev/null; do
    if ((SECONDS >= stop_deadline)); then die "stream-worker did not exit within 45s of SIGTERM"; fi
    sleep 0.2
done
wait "$WORKER_PID" && rc=0 || rc=$?
WORKER_PID=""
((rc == 0)) || die "stream-worker exited with code $rc after SIGTERM (expected 0)"
note "stream-worker exited with code 0"

# --- 4. Kafka off -------------------------------------------------------------------------
if ((STARTED_KAFKA)) && [[ "${KEEP_KAFKA:-0}" != 1 ]]; then
    say "Stopping the local Kafka broker"
    "$ROOT/shell/local-kafka.sh" stop
    STARTED_KAFKA=0
elif ((STARTED_KAFKA)); then
    say "Leaving the local Kafka broker running (KEEP_KAFKA=1); stop it with: shell/local-kafka.sh stop"
    STARTED_KAFKA=0
fi

# --- 5. what was written --------------------------------------------------------------------
say "Files written under $OUT_REL"
(cd "$ROOT" && find "$OUT_REL" -type f -printf '%10s  %p\n' | sort -k2)
note "(_state/ holds the per-partition manifests; _tmp/ in-progress files; _dlq/ dead letters)"

say "Rows per table, read back with pyarrow ($PY)"
"$PY" - "$OUT" "$COUNT" <<'PY'
import json
import os
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

root, expected = sys.argv[1], int(sys.argv[2])


def rows(path):
    name = os.path.basename(path)
    if name.endswith(".parquet"):
        return pq.ParquetFile(path).metadata.num_rows
    if ".csv" in name:
        # Read every column as text: this counts rows, it does not check types.
        head = b""
        with pa.input_stream(path, compression="detect") as f:
            while b"\n" not in head:
                chunk = f.read(65536)
                if not chunk:
                    break
                head += chunk
        header = head.split(b"\n", 1)[0].decode("utf-8").rstrip("\r").split(",")
        types = {c: pa.string() for c in header}
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=types),
        )
        return table.num_rows
    if ".jsonl" in name:
        n = 0
        with pa.input_stream(path, compression="detect") as f:
            for line in f.read().decode("utf-8").splitlines():
                if line.strip():
                    json.loads(line)
                    n += 1
        return n
    return None


per_table = {}
for dirpath, dirnames, filenames in os.walk(root):
    rel = os.path.relpath(dirpath, root)
    if rel.split(os.sep)[0].startswith("_"):
        continue  # _state, _tmp, _dlq
    for fn in filenames:
        n = rows(os.path.join(dirpath, fn))
        if n is None:
            continue
        table = rel.split(os.sep)[0]
        files, total = per_table.get(table, (0, 0))
        per_table[table] = (files + 1, total + n)

total = 0
print(f"    {'table':<24} {'files':>5} {'rows':>10}")
for table, (files, n) in sorted(per_table.items()):
    print(f"    {table:<24} {files:>5} {n:>10}")
    total += n
print(f"    {'total':<24} {'':>5} {total:>10}")
if total != expected:
    print(f"demo: expected {expected} rows, found {total}", file=sys.stderr)
    sys.exit(1)
PY

say "Done: $COUNT events -> $OUT_REL ($FORMAT), exactly once."
