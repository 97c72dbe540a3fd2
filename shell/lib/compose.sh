# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here (HTTP_CODE, COMPOSE_CMD, …) are read by the scripts that source this file
# shell/lib/compose.sh — Docker Compose mode of the scripts in shell/ (sourced after
# common.sh). The compose file is the repository's docker-compose.yml (or COMPOSE_FILE, which
# compose itself reads); the project name and profiles come from it, .env and COMPOSE_*.
#
# Environment:
#   COMPOSE                  the compose command ("docker compose" or "docker-compose");
#                            default: "docker compose" when it works, else docker-compose
#   RTDP_WORKER_SERVICE      stream-worker service name (stream-worker)
#   RTDP_COLLECTOR_SERVICE   cdc-collector service name (cdc-collector)
#   RTDP_KAFKA_SERVICE       Kafka service name (kafka)
#   RTDP_SOURCE_DB_SERVICE   the demo source database service (postgres)
#   RTDP_CONTAINER_PORT      health/metrics port inside the containers (8080)
#   RTDP_CONTAINER_OUTPUT    output.path inside the worker containers (/data/output)
#
# Containers are reached with `docker exec`; HTTP inside a container goes through bash's
# /dev/tcp, so the images need bash (Debian slim has it) but no curl.

WORKER_SERVICE="${RTDP_WORKER_SERVICE:-stream-worker}"
COLLECTOR_SERVICE="${RTDP_COLLECTOR_SERVICE:-cdc-collector}"
KAFKA_SERVICE="${RTDP_KAFKA_SERVICE:-kafka}"
SOURCE_DB_SERVICE="${RTDP_SOURCE_DB_SERVICE:-postgres}"
CONTAINER_PORT="${RTDP_CONTAINER_PORT:-8080}"
CONTAINER_OUTPUT="${RTDP_CONTAINER_OUTPUT:-/data/output}"
COMPOSE_CMD=()

# Chooses the compose command (COMPOSE_CMD).
compose_init() {
    if [[ -n "${COMPOSE:-}" ]]; then
        read -r -a COMPOSE_CMD <<<"$COMPOSE"
    elif docker compose version >/dev/null 2>&1; then
        COMPOSE_CMD=(docker compose)
    elif command -v docker-compose >/dev/null 2>&1; then
        COMPOSE_CMD=(docker-compose)
    else
        die "neither 'docker compose' nor 'docker-compose' found (install Docker Compose, or use --local for the no-Docker stack)"
    fi
}

# Runs the compose command from the repository root.
compose() { (cd "$ROOT" && "${COMPOSE_CMD[@]}" "$@"); }

# Prints "--profile P" for every profile the compose file declares (one word per line).
compose_all_profile_args() {
    local p
    compose config --profiles 2>/dev/null | while read -r p; do
        [[ -n "$p" ]] && printf -- '--profile\n%s\n' "$p"
    done
}

# Dies with a hint when the compose command cannot talk to the Docker engine.
compose_require_engine() {
    local err
    if ! err="$(compose ps -q 2>&1 >/dev/null)"; then
        # The last line says why (docker-compose v1 prints a whole Python traceback).
        err="$(printf '%s\n' "$err" | grep . | tail -n 1)"
        die "'${COMPOSE_CMD[*]} ps' failed: is the Docker engine running? (or use --local for the no-Docker stack)${err:+
    $err}"
    fi
}

# Ids of the running containers of service $1, ordered by container name.
compose_ids() {
    local id
    { compose ps -q "$1" 2>/dev/null || true; } | while read -r id; do
        [[ -n "$id" ]] || continue
        [[ "$(docker inspect -f '{{.State.Running}}' "$id" 2>/dev/null)" == true ]] || continue
        printf '%s %s\n' "$(docker inspect -f '{{.Name}}' "$id")" "$id"
    done | sort | awk '{ print $2 }'
}

# Ids of every container of service $1, running or not.
compose_all_ids() { compose ps -q "$1" 2>/dev/null | grep . || true; }

# "<status> <health or -> <name> <restarts> <exit code>" of container $1.
container_info() {
    docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.Name}} {{.RestartCount}} {{.State.ExitCode}}' "$1" 2>/dev/null |
        sed 's# /# #'
}

# GET $2 on the service port inside container $1; body into file $3, HTTP_CODE set
# (000 when nothing answered).
HTTP_CODE=000
container_http() {
    local id="$1" path="$2" out="$3" raw
    raw="$(mktemp)"
    HTTP_CODE=000
    : >"$out"
    # shellcheck disable=SC2016 # expanded inside the container
    if docker exec "$id" bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 7
            printf "GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n" "$2" >&3
            timeout 10 cat <&3' rtdp-http "$CONTAINER_PORT" "$path" >"$raw" 2>/dev/null; then
        HTTP_CODE="$(head -n 1 "$raw" | awk '{ print $2 }')"
        [[ "$HTTP_CODE" =~ ^[0-9]{3}$ ]] || HTTP_CODE=000
        sed '1,/^\r\{0,1\}$/d' "$raw" >"$out"
    fi
    rm -f "$raw"
}

# Runs bash script $2 inside container $1 with the remaining arguments as $1, $2, ….
container_sh() {
    local id="$1" script="$2"
    shift 2
    docker exec -i "$id" bash -c "$script" rtdp-sh "$@"
}

# Value of KEY $1 in the repository's .env (empty when absent), as compose would read it
# (KEY=VALUE lines; surrounding quotes removed).
dotenv_get() {
    [[ -f "$ROOT/.env" ]] || return 0
    sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$ROOT/.env" | tail -n 1 |
        sed -e 's/[[:space:]]*$//' -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/"
}
