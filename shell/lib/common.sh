# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here (STOP_RC, PG_PID, …) are read by the scripts that source this file
# shell/lib/common.sh — helpers shared by the scripts in shell/ (sourced, not run).
#
#   ROOT                 the repository root (set here unless the caller set it)
#   PROG                 the calling script's name, used in messages (set it before sourcing)
#   say / note / warn / die      messages on stderr (die exits 1)
#   usage_from_header    prints the caller's leading comment block (its --help)
#   port_in_use PORT     true when something listens on 127.0.0.1:PORT
#   free_port            prints a free TCP port (never one it printed before in this shell)
#   http_get PORT PATH   GET http://127.0.0.1:PORT/PATH, body on stdout, fails unless 2xx
#   metric_sum PORT NAME sum of every sample of a Prometheus metric (0 when absent)
#   stop_pid PID SECS [SIG]   stop a child process, STOP_RC = its exit code
#   alive_or_die PID NAME LOG / wait_http PORT PATH PID NAME LOG SECS
#   python_json          a Python 3 interpreter (stdlib) for the JSON work of the scripts
#
# Every function waits on a condition with a deadline; none sleeps a fixed time to let
# something happen.

[[ -n "${ROOT:-}" ]] || ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROG="${PROG:-$(basename "$0" .sh)}"

say() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() { printf '\n%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }

# The leading comment block of the calling script (after the shebang), without the '# '.
usage_from_header() {
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

# A usage error: the message, then the usage; exit 2.
bad_usage() { printf '%s: %s\n\n' "$PROG" "$1" >&2; usage_from_header >&2; exit 2; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

USED_PORTS=" "
free_port() {
    local p
    while :; do
        p="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
            echo $((20000 + RANDOM % 40000)))"
        if [[ "$USED_PORTS" != *" $p "* ]] && ! port_in_use "$p"; then
            USED_PORTS+="$p "
            echo "$p"
            return
        fi
    done
}

http_get() {
    curl -sf --max-time 5 "http://127.0.0.1:$1$2"
}

metric_sum() {
    { http_get "$1" /metrics 2>/dev/null || true; } |
        awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $NF } END { printf "%d\n", s }'
}

# Sends SIGTERM (or $3) to the child process $1 and waits up to $2 s, then SIGKILL. Sets
# STOP_RC to its exit code (137 if it had to be killed, 0 when it was gone already).
STOP_RC=0
stop_pid() {
    local pid="$1" secs="$2" sig="${3:-TERM}" deadline
    STOP_RC=0
    [[ -n "$pid" ]] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || STOP_RC=$?; return 0; }
    kill "-$sig" "$pid" 2>/dev/null || true
    deadline=$((SECONDS + secs))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        note "pid $pid still running ${secs}s after SIG$sig; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || STOP_RC=$?
}

# Dies when the child process $1 (named $2, logging to $3) is no longer running.
alive_or_die() {
    local pid="$1" name="$2" log="$3" rc=0
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || rc=$?
        die "$name exited early with code $rc (log: ${log#"$ROOT"/})"
    fi
}

# Waits up to $6 s until GET $2 on port $1 answers 2xx; pid $3 ($4, log $5) must stay alive.
wait_http() {
    local port="$1" path="$2" pid="$3" name="$4" log="$5" secs="$6" deadline
    deadline=$((SECONDS + secs))
    until http_get "$port" "$path" >/dev/null 2>&1; do
        alive_or_die "$pid" "$name" "$log"
        ((SECONDS < deadline)) || die "$name: $path on port $port not ready within ${secs}s"
        sleep 0.3
    done
}

# A Python 3 for the scripts' JSON and report work (standard library only).
python_json() {
    local py
    for py in python3 /usr/bin/python3 "$ROOT/.tools/venv/bin/python"; do
        if command -v "$py" >/dev/null 2>&1; then
            echo "$py"
            return 0
        fi
    done
    die "python3 not found (apt-get install python3)"
}

# Checks that $2 is a positive integer (else dies naming option $1).
need_uint() {
    [[ "$2" =~ ^[0-9]+$ ]] || die "$1 needs a whole number of seconds or a count (got '$2')"
}
