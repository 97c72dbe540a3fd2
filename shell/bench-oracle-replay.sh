#!/usr/bin/env bash
# bench-oracle-replay.sh — how fast the Oracle source's pure part (CSF joining, the
# transaction buffer, SQL_REDO parsing, typing, event building) turns recorded LogMiner
# rows into change events, against a plain JSON-lines reader of the same file.
# Prints numbers; it is not a test. No Oracle is needed: the rows are generated.
#
#   ./shell/bench-oracle-replay.sh [N]     N row changes (default 1000000), in
#                                          transactions of 10 changes, 4 interleaved
#   ./shell/bench-oracle-replay.sh --help
#
# 1. builds cdc-collector (cargo build --release -p cdc-collector);
# 2. writes N changes as V$LOGMNR_CONTENTS rows (JSON lines, as docs/ORACLE.md's dump
#    query makes them) into a temp folder: per transaction a START, 6 inserts, 3 updates
#    with ALL-column WHERE clauses, 1 delete, a COMMIT; a table of 6 typed columns
#    (NUMBER(10), NUMBER(12,2), VARCHAR2, DATE, TIMESTAMP WITH TIME ZONE, RAW);
# 3. times, one after the other on the same file:
#    a. baseline: python3 reading every line with json.loads (no LogMiner logic at all);
#    b. cdc-collector oracle replay --schema … > /dev/null;
# 4. prints seconds, changes/s and the ratio replay/baseline (>1: replay is faster).
#
# The live source adds the LogMiner query and the Kafka publish around this part; this
# measures what the collector itself costs per change.
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
N="${1:-1000000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

cargo build --release -q -p cdc-collector
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/cdc-collector"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

python3 - "$N" "$WORK" <<'PY'
import json, sys
n, work = int(sys.argv[1]), sys.argv[2]
schema = {"BENCH.ACCOUNTS": {"columns": [
    {"name": "ID", "data_type": "NUMBER", "precision": 10, "scale": 0, "nullable": False},
    {"name": "BALANCE", "data_type": "NUMBER", "precision": 12, "scale": 2},
    {"name": "NOTE", "data_type": "VARCHAR2"},
    {"name": "OPENED", "data_type": "DATE"},
    {"name": "TS", "data_type": "TIMESTAMP(6) WITH TIME ZONE"},
    {"name": "R", "data_type": "RAW"}], "key": ["ID"]}}
json.dump(schema, open(f"{work}/schema.json", "w"))
T = '"BENCH"."ACCOUNTS"'
def vals(i, bal):
    return (f"'{i}','{bal}','note for account {i}',TO_DATE('2026-11-24 10:00:00', 'YYYY-MM-DD HH24:MI:SS'),"
            f"TO_TIMESTAMP_TZ('2026-11-24 10:00:00.123456 +08:00'),HEXTORAW('0a0b0c0d')")
def where(i, bal):
    return (f"\"ID\" = '{i}' and \"BALANCE\" = '{bal}' and \"NOTE\" = 'note for account {i}' and "
            f"\"OPENED\" = TO_DATE('2026-11-24 10:00:00', 'YYYY-MM-DD HH24:MI:SS') and "
            f"\"TS\" = TO_TIMESTAMP_TZ('2026-11-24 10:00:00.123456 +08:00') and \"R\" = HEXTORAW('0a0b0c0d')")
cols = '("ID","BALANCE","NOTE","OPENED","TS","R")'
out = open(f"{work}/rows.jsonl", "w")
scn = 1000
def row(xid, code, sql=None):
    global scn
    scn += 1
    r = {"scn": scn, "timestamp": "2026-11-24 10:00:00", "xid": xid, "operation_code": code,
         "seg_owner": "BENCH" if sql else None, "table_name": "ACCOUNTS" if sql else None,
         "row_id": "AAAR3sAAEAAAACXAAA", "rollback": 0, "csf": 0, "sql_redo": sql, "thread#": 1}
    out.write(json.dumps(r) + "\n")
txs = n // 10
acct = 0
for base in range(0, txs, 4):
    group = range(base, min(base + 4, txs))
    xids = {t: f"{t:016X}" for t in group}
    for t in group:
        row(xids[t], 6)
    for step in range(10):           # interleave the 4 transactions change by change
        for t in group:
            i = t * 10 + step
            if step < 6:
                row(xids[t], 1, f"insert into {T}{cols} values ({vals(i, '1.50')});")
            elif step < 9:
                j = t * 10 + step - 6
                row(xids[t], 3, f"update {T} set \"BALANCE\" = '2.75' where {where(j, '1.50')} and ROWID = 'AAAR3sAAEAAAACXAAA';")
            else:
                j = t * 10 + 5
                row(xids[t], 2, f"delete from {T} where {where(j, '1.50')} and ROWID = 'AAAR3sAAEAAAACXAAA';")
    for t in group:
        row(xids[t], 7)
PY
rows=$(wc -l <"$WORK/rows.jsonl")
mb=$(( $(stat -c %s "$WORK/rows.jsonl") / 1000000 ))

now() { date +%s.%N; }
t0=$(now)
python3 -c 'import json,sys
for l in sys.stdin: json.loads(l)' <"$WORK/rows.jsonl"
t1=$(now)
"$BIN" oracle replay "$WORK/rows.jsonl" --schema "$WORK/schema.json" >/dev/null 2>"$WORK/replay.err"
t2=$(now)

python3 - "$N" "$rows" "$mb" "$t0" "$t1" "$t2" "$(cat "$WORK/replay.err")" <<'PY'
import sys
n, rows, mb = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
t0, t1, t2 = map(float, sys.argv[4:7])
base, rep = t1 - t0, t2 - t1
print(f"{n:,} changes in {rows:,} LogMiner rows ({mb} MB of JSON lines)")
print(f"{'run':<38} {'seconds':>8} {'changes/s':>12} {'ratio':>7}")
print(f"{'baseline: python json.loads per line':<38} {base:>8.2f} {n/base:>12,.0f} {1.0:>7.2f}")
print(f"{'cdc-collector oracle replay':<38} {rep:>8.2f} {n/rep:>12,.0f} {base/rep:>7.2f}")
print(f"replay said: {sys.argv[7]}")
PY
