#!/usr/bin/env bash
# bench-worker.sh — throughput of stream-worker against a plain Kafka consumer.
# Prints numbers; it is not a test (it fails only when a run cannot finish).
#
#   ./shell/bench-worker.sh [N]        N events, default 1000000
#
# 1. builds the workspace (cargo build --release);
# 2. uses the local broker of shell/local-kafka.sh (starts one if none runs; stops it at
#    the end only if it started it, unless KEEP_KAFKA=1);
# 3. loads N synthetic 15-column order events (rtdp-gen, one table) into a fresh topic
#    with 3 partitions;
# 4. runs, one after the other, each in a fresh consumer group:
#    a. plain     rtdp-plain-consumer --count N (reads and drops the records);
#    b. parquet   stream-worker, OUTPUT_FORMAT=parquet, OUTPUT_COMPRESSION=snappy;
#    c. json      stream-worker, OUTPUT_FORMAT=json,    OUTPUT_COMPRESSION=none;
#    the workers with OUTPUT_ROLLING_SIZE=134217728 and OUTPUT_ROLLING_INACTIVITY=1000,
#    a fresh output folder each, /metrics on a free port polled every 200 ms;
# 5. prints a table.
#
# Columns: "in s" = seconds from process start until rtdp_records_in_total >= N (the
# plain consumer: until it has read N); "seconds" = until rtdp_records_out_total >= N,
# i.e. every event is in a committed file; events/s and MB/s (Kafka value bytes) use
# "seconds"; "vs plain" = plain seconds / run seconds; peak RSS = VmHWM of the process
# (workers: read from /proc before SIGTERM; plain consumer: getrusage of the child).
#
# Environment: KEEP_KAFKA=1 (leave a broker this script started running),
# KEEP_OUTPUT=1 (keep output/bench/<stamp>), BENCH_TIMEOUT (seconds per run, default 900).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

N="${1:-1000000}"
if ! [[ "$N" =~ ^[0-9]+$ ]] || ((N == 0)); then echo "usage: $0 [N>0]" >&2; exit 2; fi
TIMEOUT="${BENCH_TIMEOUT:-900}"
STAMP="$(date +%Y%m%d-%H%M%S)"
TOPIC="rtdp-bench-$STAMP"
BENCH_DIR="$ROOT/output/bench/$STAMP"
REL="$ROOT/target/release"

STARTED_KAFKA=0
WORKER_PID=""

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$WORKER_PID" ]] && kill -0 "$WORKER_PID" 2>/dev/null; then
        kill -TERM "$WORKER_PID" 2>/dev/null || true
        local deadline=$((SECONDS + 40))
        while kill -0 "$WORKER_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        kill -KILL "$WORKER_PID" 2>/dev/null || true
        wait "$WORKER_PID" 2>/dev/null || true
    fi
    if ((STARTED_KAFKA)) && [[ "${KEEP_KAFKA:-0}" != 1 ]]; then
        "$ROOT/shell/local-kafka.sh" stop >/dev/null 2>&1 || true
    fi
    if [[ "${KEEP_OUTPUT:-0}" != 1 ]]; then rm -rf "$BENCH_DIR"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

metric() {
    { curl -sf --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null || true; } |
        awk -v m="$2" '$1 == m { printf "%d", $2; exit }'
}

# --- build and broker ----------------------------------------------------------------------
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
log "building (cargo build --release)"
cargo build --release >&2

if "$ROOT/shell/local-kafka.sh" status | grep -q '^running'; then
    log "using the running local broker"
else
    STARTED_KAFKA=1
    log "starting a local broker"
fi
BOOTSTRAP="$("$ROOT/shell/local-kafka.sh" start | tail -n 1 | sed -n 's/^bootstrap=//p')"
[[ -n "$BOOTSTRAP" ]] || die "shell/local-kafka.sh start printed no bootstrap=HOST:PORT"

log "loading $N events into $TOPIC (3 partitions) at $BOOTSTRAP"
t0="$(now)"
"$REL/rtdp-gen" --bootstrap "$BOOTSTRAP" --topic "$TOPIC" --count "$N" --partitions 3 --tables 1
log "loaded in $(elapsed "$t0" "$(now)") s"

mkdir -p "$BENCH_DIR"
declare -a ROWS=()

# --- a. plain consumer ------------------------------------------------------------------------
log "run plain: rtdp-plain-consumer --count $N"
t0="$(now)"
plain_out="$(python3 - "$REL/rtdp-plain-consumer" --bootstrap "$BOOTSTRAP" --topic "$TOPIC" --count "$N" <<'PY'
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True)
sys.stdout.write(r.stdout)
print(f"maxrss_kb={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
sys.exit(r.returncode)
PY
)"
t1="$(now)"
printf '%s\n' "$plain_out" | sed 's/^/    /' >&2
BYTES="$(printf '%s\n' "$plain_out" | sed -n 's/.* bytes=\([0-9]*\).*/\1/p')"
plain_rss_kb="$(printf '%s\n' "$plain_out" | sed -n 's/^maxrss_kb=//p')"
plain_own_s="$(printf '%s\n' "$plain_out" | sed -n 's/.* seconds=\([0-9.]*\).*/\1/p')"
PLAIN_S="$(elapsed "$t0" "$t1")"
[[ -n "$BYTES" ]] || die "rtdp-plain-consumer printed no bytes="
ROWS+=("plain|$PLAIN_S|$PLAIN_S|$((plain_rss_kb / 1024))|-")

# --- b, c. the worker ---------------------------------------------------------------------------
run_worker() {
    local name="$1" format="$2" compression="$3"
    local out="$BENCH_DIR/$name" port wlog t_start t_in="" t_out="" n_in=0 n_out=0 deadline hwm_kb rc
    port="$(free_port)"
    wlog="$BENCH_DIR/$name.log"
    mkdir -p "$out"
    log "run $name: stream-worker $format/$compression -> $out (metrics :$port)"
    t_start="$(now)"
    env KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP" KAFKA_TOPIC="$TOPIC" \
        KAFKA_GROUP_ID="rtdp-bench-$name-$STAMP" OUTPUT_PATH="$out" \
        OUTPUT_FORMAT="$format" OUTPUT_COMPRESSION="$compression" \
        OUTPUT_ROLLING_SIZE=134217728 OUTPUT_ROLLING_INACTIVITY=1000 \
        MONITORING_PORT="$port" LOG_LEVEL=warn NO_COLOR=1 \
        "$REL/stream-worker" >"$wlog" 2>&1 &
    WORKER_PID=$!
    deadline=$((SECONDS + TIMEOUT))
    while :; do
        kill -0 "$WORKER_PID" 2>/dev/null || { tail -n 20 "$wlog" >&2; die "$name: worker exited early"; }
        if [[ -z "$t_in" ]]; then
            n_in="$(metric "$port" rtdp_records_in_total)"
            if ((${n_in:-0} >= N)); then t_in="$(now)"; fi
        fi
        if [[ -n "$t_in" ]]; then
            n_out="$(metric "$port" rtdp_records_out_total)"
            if ((${n_out:-0} >= N)); then t_out="$(now)"; break; fi
        fi
        ((SECONDS < deadline)) || { tail -n 20 "$wlog" >&2; die "$name: not done after ${TIMEOUT}s (in=${n_in:-0} out=${n_out:-0})"; }
        sleep 0.2
    done
    hwm_kb="$(awk '/^VmHWM:/ { print $2 }' "/proc/$WORKER_PID/status")"
    kill -TERM "$WORKER_PID"
    wait "$WORKER_PID" && rc=0 || rc=$?
    WORKER_PID=""
    ((rc == 0)) || { tail -n 20 "$wlog" >&2; die "$name: worker exited with $rc after SIGTERM"; }
    local files_mb
    files_mb="$(find "$out" -type f \( -name '*.parquet' -o -name '*.jsonl*' -o -name '*.csv*' \) \
        -not -path '*/_*' -printf '%s\n' | awk '{ s += $1 } END { printf "%.1f", s / 1e6 }')"
    ROWS+=("$name|$(elapsed "$t_start" "$t_in")|$(elapsed "$t_start" "$t_out")|$((hwm_kb / 1024))|$files_mb")
    rm -rf "$out"
}

run_worker parquet parquet snappy
run_worker json json none

# --- table ---------------------------------------------------------------------------------------
mb="$(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')"
echo
echo "stream-worker benchmark: $N events, $mb MB of Kafka values, topic with 3 partitions"
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo
printf '| %-8s | %9s | %7s | %8s | %10s | %7s | %8s | %11s | %8s |\n' \
    run events "in s" seconds events/s MB/s "vs plain" "peak RSS MB" "files MB"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' ---------- ----------: --------: ---------: \
    -----------: --------: ---------: ------------: ---------:
for row in "${ROWS[@]}"; do
    IFS='|' read -r name s_in s_out rss_mb files_mb <<<"$row"
    awk -v name="$name" -v n="$N" -v tin="$s_in" -v s="$s_out" -v b="$BYTES" -v p="$PLAIN_S" \
        -v rss="$rss_mb" -v f="$files_mb" 'BEGIN {
        printf "| %-8s | %9d | %7.2f | %8.2f | %10.0f | %7.1f | %8.2f | %11d | %8s |\n",
            name, n, tin, s, n / s, b / 1e6 / s, p / s, rss, f }'
done
echo
echo "plain consumer, timed by itself from its first record: ${plain_own_s:-?} s"
