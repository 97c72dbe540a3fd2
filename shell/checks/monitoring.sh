#!/usr/bin/env bash
# Checks the monitoring files with the real tools (run by shell/test.sh after cargo test):
#   - promtool check config deploy/prometheus/prometheus.yml (also loads alerts.yml)
#   - promtool check rules  deploy/prometheus/alerts.yml
#   - promtool test rules   deploy/prometheus/alerts.test.yml, and every alert rule has a
#     test where it fires and one where it does not
#   - the Grafana dashboard deploy/grafana/dashboards/rtdp.json parses, has the expected
#     structure and panels, refers to the provisioned datasource, and every query in it is
#     valid PromQL (promtool checks them as recording rules)
#   - the provisioning files point where docker-compose.yml mounts the dashboards.
# That every metric the rules and the dashboard query exists in the binaries' /metrics is
# checked by `cargo test -p cdc-collector --test e2e monitoring` (a real Prometheus).
# Needs promtool (Debian package `prometheus`, installed by shell/ensure-tools.sh) and python3.
# Exits non-zero on the first failure.
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROM="$ROOT/deploy/prometheus"
GRAFANA="$ROOT/deploy/grafana"
DASHBOARD="$GRAFANA/dashboards/rtdp.json"
DATASOURCE="$GRAFANA/provisioning/datasources/datasource.yml"
PROVIDER="$GRAFANA/provisioning/dashboards/dashboards.yml"

fail() { echo "monitoring check FAILED: $*" >&2; exit 1; }
step() { echo "monitoring: $*" >&2; }

PROMTOOL="$(command -v promtool || true)"
[[ -n "$PROMTOOL" ]] || fail "promtool not found (Debian package 'prometheus'; run shell/ensure-tools.sh)"
command -v python3 >/dev/null || fail "python3 not found"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

run() {
    # Runs a promtool command quietly; prints its output only when it fails.
    local out
    if ! out="$("$@" 2>&1)"; then
        echo "$out" >&2
        fail "$*"
    fi
}

step "promtool check config prometheus.yml"
run "$PROMTOOL" check config "$PROM/prometheus.yml"

step "promtool check rules alerts.yml"
run "$PROMTOOL" check rules "$PROM/alerts.yml"

step "promtool test rules alerts.test.yml"
# promtool resolves rule_files relative to the test file's folder.
run "$PROMTOOL" test rules "$PROM/alerts.test.yml"

step "every alert rule is tested firing and not firing"
# alerts.test.yml writes each case as `alertname: X` followed by `exp_alerts: []` (must
# not fire) or `exp_alerts:` and a list (must fire); promtool has already checked that the
# expectations hold, this checks that none is missing.
mapfile -t rules < <(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' "$PROM/alerts.yml")
((${#rules[@]} > 0)) || fail "no alert rule found in alerts.yml"
awk '
    /^ *alertname:/ { name = $2; next }
    name != "" && /^ *exp_alerts: *\[\] *$/ { print name, "quiet"; name = ""; next }
    name != "" && /^ *exp_alerts: *$/ { print name, "fires"; name = ""; next }
' "$PROM/alerts.test.yml" | sort -u >"$TMP/cases"
missing=()
for r in "${rules[@]}"; do
    grep -qx "$r fires" "$TMP/cases" || missing+=("$r (no case where it fires)")
    grep -qx "$r quiet" "$TMP/cases" || missing+=("$r (no case where it does not fire)")
done
while read -r name _; do
    printf '%s\n' "${rules[@]}" | grep -qx "$name" || missing+=("$name is tested but is not a rule in alerts.yml")
done <"$TMP/cases"
if ((${#missing[@]})); then
    printf '  %s\n' "${missing[@]}" >&2
    fail "alerts.test.yml does not cover every rule"
fi

step "Grafana dashboard structure and datasource"
uid="$(sed -n 's/^ *uid: *\([A-Za-z0-9_.-]*\) *$/\1/p' "$DATASOURCE" | head -n1)"
[[ -n "$uid" ]] || fail "$DATASOURCE names no datasource uid"
python3 - "$DASHBOARD" "$uid" "$TMP/dashboard-rules.json" <<'PY'
import json
import sys

path, ds_uid, rules_out = sys.argv[1], sys.argv[2], sys.argv[3]
problems = []
try:
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
except (OSError, ValueError) as e:
    sys.exit(f"{path}: not readable JSON: {e}")

for key, kind in [("uid", str), ("title", str), ("schemaVersion", int), ("panels", list),
                  ("time", dict), ("templating", dict)]:
    if not isinstance(d.get(key), kind):
        problems.append(f"top-level '{key}' missing or not a {kind.__name__}")
if d.get("id") not in (None,):
    problems.append("top-level 'id' must be null or absent for a provisioned dashboard")

panels = d.get("panels") or []
ids = set()
exprs = []
occupied = {}
for i, p in enumerate(panels):
    where = f"panel #{i} ({p.get('title')!r})"
    if not isinstance(p.get("id"), int) or p["id"] in ids:
        problems.append(f"{where}: id missing or not unique")
    ids.add(p.get("id"))
    if not p.get("title") or not p.get("type"):
        problems.append(f"{where}: title and type are required")
    g = p.get("gridPos") or {}
    if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")):
        problems.append(f"{where}: gridPos needs integer x, y, w, h")
        continue
    if g["x"] < 0 or g["w"] < 1 or g["x"] + g["w"] > 24 or g["h"] < 1:
        problems.append(f"{where}: gridPos outside the 24-column grid: {g}")
    for x in range(g["x"], g["x"] + g["w"]):
        for y in range(g["y"], g["y"] + g["h"]):
            if (x, y) in occupied:
                problems.append(f"{where}: overlaps panel {occupied[(x, y)]!r}")
                break
            occupied[(x, y)] = p.get("title")
        else:
            continue
        break
    if p.get("type") == "row":
        continue
    if (p.get("datasource") or {}).get("uid") != ds_uid:
        problems.append(f"{where}: datasource uid is not the provisioned {ds_uid!r}")
    targets = p.get("targets") or []
    if not targets:
        problems.append(f"{where}: no query")
    for t in targets:
        if (t.get("datasource") or {}).get("uid") != ds_uid:
            problems.append(f"{where} query {t.get('refId')}: datasource uid is not {ds_uid!r}")
        if not (t.get("expr") or "").strip():
            problems.append(f"{where} query {t.get('refId')}: empty expr")
        else:
            exprs.append((p.get("title"), t["expr"]))

# What the dashboard must show (issue 5): throughput, lag (consumer and source), latency
# percentiles, checkpoints, files, dead letters, alerts.
everything = "\n".join(e for _, e in exprs)
required = {
    "throughput (records in)": "rtdp_records_in_total",
    "throughput (records out)": "rtdp_records_out_total",
    "throughput (collector)": "rtdp_collector_events_published_total",
    "consumer lag": "rtdp_consumer_lag",
    "source lag": "rtdp_collector_source_lag_seconds",
    "latency histogram": "rtdp_latency_ms_bucket",
    "latency p50": "histogram_quantile(0.50, sum by (le) (rate(rtdp_latency_ms_bucket",
    "latency p95": "histogram_quantile(0.95, sum by (le) (rate(rtdp_latency_ms_bucket",
    "latency p99": "histogram_quantile(0.99, sum by (le) (rate(rtdp_latency_ms_bucket",
    "checkpoints committed": "rtdp_checkpoint_count_total",
    "checkpoints failed": "rtdp_checkpoint_failed_count_total",
    "files committed": "rtdp_files_committed_total",
    "open files": "rtdp_open_files",
    "dead letters": "rtdp_dlq_records_count_total",
    "alerts (Prometheus)": "ALERTS",
    "alerts (built into the services)": "rtdp_alerts_firing",
    "backpressure": "rtdp_backpressure_level",
}
for what, needle in required.items():
    if needle not in everything:
        problems.append(f"no panel shows {what} (no query contains {needle!r})")

if problems:
    print("\n".join(f"  {p}" for p in problems), file=sys.stderr)
    sys.exit(f"{path}: {len(problems)} problem(s)")

# Every query as a recording rule, for promtool to parse (YAML is a superset of JSON).
rules = [{"record": f"rtdp_dashboard_query_{i}", "expr": e} for i, (_, e) in enumerate(exprs)]
with open(rules_out, "w", encoding="utf-8") as f:
    json.dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f)
with open(rules_out + ".panels", "w", encoding="utf-8") as f:
    for i, (title, e) in enumerate(exprs):
        f.write(f"rtdp_dashboard_query_{i}: panel {title!r}: {e}\n")
print(f"{len(panels)} panels, {len(exprs)} queries", file=sys.stderr)
PY

step "every dashboard query is valid PromQL"
if ! out="$("$PROMTOOL" check rules "$TMP/dashboard-rules.json" 2>&1)"; then
    echo "$out" >&2
    echo "the queries, by rule name:" >&2
    cat "$TMP/dashboard-rules.json.panels" >&2
    fail "a query in $DASHBOARD is not valid PromQL"
fi

step "provisioning paths match docker-compose.yml"
dash_dir="$(sed -n 's/^ *path: *\([^ ]*\) *$/\1/p' "$PROVIDER" | head -n1)"
[[ -n "$dash_dir" ]] || fail "$PROVIDER names no dashboards path"
compose="$ROOT/docker-compose.yml"
[[ -f "$compose" ]] || fail "docker-compose.yml not found"
# The mounts the provisioning files rely on (short volume syntax `source:target[:ro]`).
expect_mount() {
    local source="$1" target="$2"
    grep -Eq -- "^[[:space:]]*-[[:space:]]*\"?\./${source}/?:${target}/?(:ro)?\"?[[:space:]]*$" "$compose" ||
        fail "docker-compose.yml does not mount ./${source} at ${target} (needed by ${3})"
}
expect_mount deploy/grafana/dashboards "$dash_dir" "deploy/grafana/provisioning/dashboards/dashboards.yml"
expect_mount deploy/grafana/provisioning /etc/grafana/provisioning "Grafana's provisioning"
expect_mount deploy/prometheus /etc/prometheus "deploy/prometheus/prometheus.yml (rule_files: alerts.yml)"

step "OK"
