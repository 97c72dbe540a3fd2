#!/usr/bin/env bash
# shell/checks/deploy-lint.sh — checks of the deployment files that need no Docker engine
# (run by shell/test.sh after cargo test; tools from shell/ensure-tools.sh):
#   1. compose: `docker-compose config -q` (Debian's docker-compose 1.29) with no profile and
#      with each profile (demo, monitoring, ui, and all together), once with no .env (the
#      defaults, as on a fresh clone) and once with .env.example as the .env; every host path
#      the file bind-mounts (deploy/…) exists.
#   2. settings: every environment variable of docs/CONFIGURATION.md is in .env.example and
#      passed to both services by docker-compose.yml.
#   3. both binaries accept the environment compose gives them (`check-config`, with the
#      defaults and with .env.example).
#   4. hadolint on every Dockerfile; the files their COPY lines take from the build context
#      exist and are not excluded by .dockerignore.
#   5. each image's HEALTHCHECK command, run against its binary: healthy while the binary
#      serves, unhealthy when nothing listens; docker/rtdp-http.sh against the worker.
#   6. yamllint --strict (.yamllint.yml) on every YAML file git tracks or would track.
#   7. shellcheck on every shell script (shell/, shell/checks/, shell/lib/, docker/).
# Every step runs; each problem is printed; exit 1 if any step failed.
#
# Uses target/debug/{stream-worker,cdc-collector} (or under CARGO_TARGET_DIR; built by cargo
# test, built here when missing). No .env of yours is read: compose runs with a clean environment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.tools/venv"
PY="$VENV/bin/python"
HADOLINT="$VENV/bin/hadolint"
YAMLLINT="$VENV/bin/yamllint"
PROFILES=(demo monitoring ui)

failures=0
step_failures=0
say() { echo "deploy-lint: $*" >&2; }
fail() { echo "deploy-lint: FAIL: $*" >&2; failures=$((failures + 1)); }
# step: marks the start of a check; ok: prints its success line if it added no failure.
step() { step_failures=$failures; }
ok() { if ((failures == step_failures)); then say "ok: $*"; fi; }

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

missing=()
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v shellcheck >/dev/null || missing+=(shellcheck)
[[ -x "$HADOLINT" ]] || missing+=("$HADOLINT")
[[ -x "$YAMLLINT" ]] || missing+=("$YAMLLINT")
[[ -x "$PY" ]] && "$PY" -c 'import yaml' 2>/dev/null || missing+=("PyYAML in $VENV")
if ((${#missing[@]})); then
    fail "missing tools: ${missing[*]} (run shell/ensure-tools.sh)"
    exit 1
fi

# docker-compose with nothing from the caller's environment and the given file as .env.
compose() {
    local envfile="$1"
    shift
    env -i PATH="$PATH" HOME="${HOME:-/tmp}" LANG=C.UTF-8 \
        docker-compose --env-file "$envfile" --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" "$@"
}

# --- 1. compose config ------------------------------------------------------------------------
step
: >"$WORK/empty.env"
declare -A ENVFILES=([defaults]="$WORK/empty.env" [.env.example]="$ROOT/.env.example")
for name in defaults .env.example; do
    envfile="${ENVFILES[$name]}"
    profile_sets=("" "${PROFILES[@]}" "${PROFILES[*]}")
    for set in "${profile_sets[@]}"; do
        args=()
        for p in $set; do args+=(--profile "$p"); done
        if ! compose "$envfile" "${args[@]}" config -q >"$WORK/config.log" 2>&1; then
            fail "docker-compose config (${name}, profiles: ${set:-none}):"
            sed 's/^/    /' "$WORK/config.log" >&2
        elif grep -qi 'warn' "$WORK/config.log"; then
            fail "docker-compose config (${name}, profiles: ${set:-none}) warned:"
            sed 's/^/    /' "$WORK/config.log" >&2
        fi
    done
    args=()
    for p in "${PROFILES[@]}"; do args+=(--profile "$p"); done
    if compose "$envfile" "${args[@]}" config >"$WORK/config-$name.yml" 2>"$WORK/config.log"; then
        :
    else
        fail "docker-compose config (${name}) for the checks below:"
        sed 's/^/    /' "$WORK/config.log" >&2
    fi
done
ok "compose: config -q with no profile, ${PROFILES[*]} and all; without .env and with .env.example"

# Python helpers over the resolved compose file (one call per question).
compose_py() {
    "$PY" - "$@" <<'PYTHON'
import json, os, re, sys, yaml

cmd, path = sys.argv[1], sys.argv[2]
with open(path) as f:
    cfg = yaml.safe_load(f) or {}
services = cfg.get("services") or {}

if cmd == "bind-sources":
    # Host paths of bind mounts (short "SRC:DST[:MODE]" or long syntax), one per line.
    for name, svc in sorted(services.items()):
        for vol in svc.get("volumes") or []:
            if isinstance(vol, dict):
                if vol.get("type") == "bind":
                    print(f"{name}\t{vol['source']}")
            else:
                src = vol.split(":")[0]
                if src.startswith(("/", ".", "~")):
                    print(f"{name}\t{src}")
elif cmd == "env":
    # The environment of one service as NAME=VALUE lines (NUL-separated).
    env = services[sys.argv[3]].get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    for k, v in env.items():
        sys.stdout.write(f"{k}={'' if v is None else v}\0")
elif cmd == "settings":
    # Every setting of docs/CONFIGURATION.md (short env name, else the PIPELINE_ one)
    # missing from .env.example or from a service's environment in the compose file.
    doc, example = sys.argv[3], sys.argv[4]
    names = []
    for line in open(doc, encoding="utf-8"):
        if not line.startswith("| `"):
            continue
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cols) < 3:
            continue
        short, pipeline = cols[2].strip("`"), cols[1].strip("`")
        name = short if re.fullmatch(r"[A-Z][A-Z0-9_]*", short) else pipeline
        if re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            names.append(name)
    if not names:
        print(f"no settings found in {doc}")
    text = open(example, encoding="utf-8").read()
    for name in names:
        if not re.search(rf"^#?\s*{name}=", text, re.M):
            print(f"{name}: not in .env.example")
        for svc in ("cdc-collector", "stream-worker"):
            env = services.get(svc, {}).get("environment") or {}
            if name not in env:
                print(f"{name}: not passed to {svc} by docker-compose.yml")
PYTHON
}

step
if [[ -s "$WORK/config-defaults.yml" ]]; then
    while IFS=$'\t' read -r svc src; do
        [[ -e "$src" ]] || fail "compose: service $svc bind-mounts ${src#"$ROOT"/}, which does not exist"
    done < <(compose_py bind-sources "$WORK/config-defaults.yml")
    ok "compose: every bind-mounted host path exists"

    # --- 2. every setting in .env.example and docker-compose.yml --------------------------------
    step
    if problems="$(compose_py settings "$WORK/config-defaults.yml" docs/CONFIGURATION.md .env.example)" &&
        [[ -z "$problems" ]]; then
        ok "settings: every variable of docs/CONFIGURATION.md is in .env.example and docker-compose.yml"
    else
        fail "settings out of step with docs/CONFIGURATION.md:"
        printf '    %s\n' "$problems" >&2
    fi
fi

# --- 3. the binaries accept the compose environment -----------------------------------------
step
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
if [[ ! -x "$BIN/stream-worker" || ! -x "$BIN/cdc-collector" ]]; then
    say "building target/debug/stream-worker and cdc-collector"
    cargo build -q -p stream-worker -p cdc-collector --bins
fi
for name in defaults .env.example; do
    [[ -s "$WORK/config-$name.yml" ]] || continue
    for pair in cdc-collector:cdc-collector stream-worker:stream-worker; do
        svc="${pair%%:*}" bin="${pair#*:}"
        envargs=()
        while IFS= read -r -d '' kv; do envargs+=("$kv"); done < <(compose_py env "$WORK/config-$name.yml" "$svc")
        if ! env -i PATH="$PATH" RTDP_CONFIG="$ROOT/config/application.yml" "${envargs[@]}" \
            "$BIN/$bin" check-config >"$WORK/check.log" 2>&1; then
            fail "$bin check-config rejects the environment docker-compose.yml gives $svc ($name):"
            sed 's/^/    /' "$WORK/check.log" >&2
        fi
    done
done
ok "check-config: both services accept the compose environment (defaults and .env.example)"

# --- 4. Dockerfiles -------------------------------------------------------------------------------
step
mapfile -t dockerfiles < <(find docker -type f \( -name Dockerfile -o -name '*.Dockerfile' \) | sort)
((${#dockerfiles[@]})) || fail "no Dockerfile under docker/"
for df in "${dockerfiles[@]}"; do
    if ! "$HADOLINT" --no-color "$df" >"$WORK/hadolint.log" 2>&1; then
        fail "hadolint $df:"
        sed 's/^/    /' "$WORK/hadolint.log" >&2
    fi
done
# COPY/ADD sources from the context (the repository root): present, and not dockerignored.
if problems="$("$PY" - "${dockerfiles[@]}" <<'PYTHON'
import fnmatch, glob, os, shlex, sys
ignore = []
if os.path.exists(".dockerignore"):
    for line in open(".dockerignore"):
        line = line.strip()
        if line and not line.startswith("#"):
            ignore.append(line.rstrip("/"))
def ignored(path):
    parts = path.strip("/").split("/")
    for pat in ignore:
        if pat.startswith("!"):
            continue
        for i in range(1, len(parts) + 1):
            if fnmatch.fnmatch("/".join(parts[:i]), pat.lstrip("/")):
                return pat
    return None
for df in sys.argv[1:]:
    logical = ""
    for raw in open(df):
        line = raw.rstrip("\n")
        if line.lstrip().startswith("#") and not logical:
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        words = shlex.split(logical, comments=False) if logical.strip() else []
        logical = ""
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]) or len(args) < 2:
            continue
        for src in args[:-1]:
            if not glob.glob(src):
                print(f"{df}: COPY source {src} does not exist")
            elif ignored(src):
                print(f"{df}: COPY source {src} is excluded by .dockerignore ({ignored(src)})")
PYTHON
)" && [[ -z "$problems" ]]; then
    ok "Dockerfiles: hadolint clean, COPY sources present: ${dockerfiles[*]}"
else
    fail "Dockerfile COPY sources:"
    printf '    %s\n' "$problems" >&2
fi

# --- 5. HEALTHCHECK commands against the real binaries ---------------------------------------------
# The JSON array after "CMD" on the HEALTHCHECK line (or its continuation) of a Dockerfile.
healthcheck_cmd() {
    "$PY" - "$1" <<'PYTHON'
import json, re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
m = re.search(r"^HEALTHCHECK\b.*?\bCMD\s+(\[.*\])\s*$", text, re.M)
if not m:
    sys.exit(f"{sys.argv[1]}: no exec-form HEALTHCHECK CMD")
for arg in json.loads(m.group(1)):
    sys.stdout.write(arg + "\0")
PYTHON
}
# Starts binary $1 (extra env in the remaining args) on a free port; sets PORT and PID.
start_on_free_port() {
    local bin="$1" log="$WORK/$1.log" deadline
    shift
    (cd "$WORK" && exec env MONITORING_PORT=0 RTDP_CONFIG="$ROOT/config/application.yml" \
        KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1 "$@" "$BIN/$bin" >"$log" 2>&1) &
    PID=$!
    PIDS+=("$PID")
    PORT=""
    deadline=$((SECONDS + 30))
    while [[ -z "$PORT" ]] && ((SECONDS < deadline)) && kill -0 "$PID" 2>/dev/null; do
        PORT="$(sed -n 's/.*server listening addr=[^ ]*:\([0-9][0-9]*\).*/\1/p' "$log" 2>/dev/null | head -n 1 || true)"
        [[ -n "$PORT" ]] || sleep 0.1
    done
}
# SIGKILL: only the health server matters here (and the collector, still connecting to the
# unreachable broker, would take SHUTDOWN_TIMEOUT + 5 s to stop on SIGTERM).
stop_pid() {
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
step
for pair in worker:stream-worker collector:cdc-collector; do
    image="${pair%%:*}" bin="${pair#*:}"
    hc=()
    if ! { while IFS= read -r -d '' a; do hc+=("$a"); done < <(healthcheck_cmd "docker/$image/Dockerfile") && ((${#hc[@]})); }; then
        fail "docker/$image/Dockerfile: no exec-form HEALTHCHECK CMD [...] found"
        continue
    fi
    start_on_free_port "$bin" OUTPUT_PATH="$WORK/out" DATABASE_HOST=127.0.0.1 DATABASE_PORT=1 \
        DATABASE_USERNAME=lint DATABASE_PASSWORD=lint DATABASE_NAME=lint
    if [[ -z "$PORT" ]]; then
        fail "$bin did not start its health server within 30 s:"
        tail -n 20 "$WORK/$bin.log" | sed 's/^/    /' >&2
        stop_pid "$PID"
        continue
    fi
    if ! env -i PATH="$PATH" MONITORING_PORT="$PORT" "${hc[@]}" >/dev/null 2>&1; then
        fail "docker/$image/Dockerfile HEALTHCHECK reports unhealthy while $bin serves /health/live on $PORT"
    fi
    # docker/rtdp-http.sh (rtdp-http in the images): the body and exit 0 on a 2xx, 1 on a 404.
    if [[ "$image" == worker ]]; then
        if ! body="$(MONITORING_PORT="$PORT" docker/rtdp-http.sh /health/live 2>&1)" || [[ "$body" != *UP* ]]; then
            fail "docker/rtdp-http.sh /health/live: expected the UP body and exit 0, got: $body"
        fi
        if MONITORING_PORT="$PORT" docker/rtdp-http.sh /no-such-endpoint >/dev/null 2>&1; then
            fail "docker/rtdp-http.sh /no-such-endpoint exited 0"
        fi
    fi
    stop_pid "$PID"
    # Nothing listens on that port now: the check must fail.
    if env -i PATH="$PATH" MONITORING_PORT="$PORT" "${hc[@]}" >/dev/null 2>&1; then
        fail "docker/$image/Dockerfile HEALTHCHECK reports healthy with nothing listening on $PORT"
    fi
done
ok "HEALTHCHECK: both images' commands tell a serving binary from a closed port; rtdp-http answers"

# --- 6. yamllint ---------------------------------------------------------------------------------
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t yamls < <(git ls-files -co --exclude-standard -- '*.yml' '*.yaml' | sort -u)
else
    mapfile -t yamls < <(find . \( -path ./target -o -path ./.tools -o -path ./output -o -path ./.git \) -prune \
        -o -type f \( -name '*.yml' -o -name '*.yaml' \) -print | sed 's#^\./##' | sort)
fi
existing=()
for y in "${yamls[@]}"; do [[ -f "$y" ]] && existing+=("$y"); done
if ((${#existing[@]})); then
    if "$YAMLLINT" --strict -c "$ROOT/.yamllint.yml" -f parsable "${existing[@]}" >"$WORK/yamllint.log" 2>&1; then
        ok "yamllint: ${#existing[@]} files clean"
    else
        fail "yamllint:"
        sed 's/^/    /' "$WORK/yamllint.log" >&2
    fi
fi

# --- 7. shellcheck -------------------------------------------------------------------------------
shopt -s nullglob globstar
scripts=(shell/*.sh shell/checks/*.sh shell/lib/*.sh docker/**/*.sh)
shopt -u globstar
if shellcheck -x -P SCRIPTDIR "${scripts[@]}" >"$WORK/shellcheck.log" 2>&1; then
    ok "shellcheck: ${#scripts[@]} scripts clean"
else
    fail "shellcheck:"
    sed 's/^/    /' "$WORK/shellcheck.log" >&2
fi

if ((failures)); then
    say "$failures check(s) failed"
    exit 1
fi
say "all checks passed"
