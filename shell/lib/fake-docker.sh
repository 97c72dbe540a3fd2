#!/usr/bin/env bash
# fake-docker.sh — a test double of the docker and docker-compose commands, for
# shell/checks/ops-scripts.sh only. There is no Docker engine on the test machines; with this
# on PATH (as `docker` and `docker-compose`) the compose mode of the ops scripts runs against
# the local stack of shell/start.sh --local instead (RTDP_LOCAL_STACK_DIR):
#
#   docker-compose ps -q SERVICE      fake ids of the running local processes: fake-kafka,
#                                     fake-postgres, fake-collector, fake-worker-N
#   docker-compose config --profiles  demo, monitoring, ui
#   docker-compose exec -T postgres psql …   psql against the local PostgreSQL (database
#                                     rtdp_demo whatever -d says)
#   docker-compose up|down|restart|logs …    only recorded
#   docker compose …                  the same as docker-compose
#   docker inspect -f FORMAT ID       what the ops scripts ask (running, name, status line)
#   docker exec [-i] ID bash -c S N A…  runs S locally; an argument 8080 becomes the
#                                     service's real port, /data/output… the stack's output
#   docker cp ID:/data/output/X DEST  cp -r from the stack's output folder
#
# Every call is appended to $FAKE_DOCKER_LOG (one line, arguments joined by spaces).
set -euo pipefail

STACK="${RTDP_LOCAL_STACK_DIR:?fake-docker needs RTDP_LOCAL_STACK_DIR}"
# shellcheck source=/dev/null
. "$STACK/stack.env"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
me="$(basename "$0")"
printf '%s %s\n' "$me" "$*" >>"${FAKE_DOCKER_LOG:-/dev/null}"

alive() { # pid file $1
    local pid
    pid="$(cat "$1" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

ids_of() {
    local f n
    case "$1" in
        kafka) if alive "$STACK/kafka/kafka.pid"; then echo fake-kafka; fi ;;
        postgres) if alive "$STACK/run/postgres.pid"; then echo fake-postgres; fi ;;
        cdc-collector) if alive "$STACK/run/collector.pid"; then echo fake-collector; fi ;;
        stream-worker)
            for f in "$STACK"/run/worker-*.pid; do
                if [[ ! -e "$f" ]] || ! alive "$f"; then continue; fi
                n="${f##*/worker-}"
                echo "fake-worker-${n%.pid}"
            done
            ;;
    esac
}

name_of() {
    case "$1" in
        fake-worker-*) echo "/rtdp-stream-worker-${1#fake-worker-}" ;;
        fake-collector) echo /rtdp-cdc-collector-1 ;;
        fake-kafka) echo /rtdp-kafka-1 ;;
        fake-postgres) echo /rtdp-postgres-1 ;;
        *) return 1 ;;
    esac
}

port_of() {
    case "$1" in
        fake-worker-*) cat "$STACK/run/worker-${1#fake-worker-}.port" ;;
        fake-collector) cat "$STACK/run/collector.port" ;;
        *) echo 1 ;;
    esac
}

compose_cmd() {
    while [[ "${1:-}" == --profile || "${1:-}" == -f || "${1:-}" == -p ]]; do shift 2; done
    local sub="${1:-}"
    shift || true
    case "$sub" in
        version) echo "fake compose" ;;
        ps)
            if [[ "${1:-}" == -q ]]; then ids_of "${2:-}"; fi
            ;;
        config) if [[ "${1:-}" == --profiles ]]; then printf 'demo\nmonitoring\nui\n'; fi ;;
        exec)
            [[ "${1:-}" == -T ]] && shift
            local svc="$1"
            shift
            [[ "$svc" == postgres && "${1:-}" == psql ]] || { echo "fake-docker: cannot exec in $svc: $*" >&2; exit 1; }
            shift
            local args=() a
            while (($#)); do
                a="$1"
                shift
                case "$a" in
                    -U | -d) shift ;; # the local server: superuser over the socket, database rtdp_demo
                    *) args+=("$a") ;;
                esac
            done
            exec "$PGBIN/psql" -h "$PG_DIR" -p "$PG_PORT" -U postgres -d "$DB_NAME" "${args[@]}"
            ;;
        up | down | restart | logs | stop | start) ;;
        *) echo "fake-docker: compose $sub not faked" >&2; exit 1 ;;
    esac
}

if [[ "$me" == docker-compose ]]; then
    compose_cmd "$@"
    exit 0
fi

case "${1:-}" in
    compose)
        shift
        compose_cmd "$@"
        ;;
    inspect)
        [[ "${2:-}" == -f ]] || { echo "fake-docker: inspect needs -f" >&2; exit 1; }
        fmt="$3" id="$4"
        name="$(name_of "$id")" || { echo "Error: No such object: $id" >&2; exit 1; }
        case "$fmt" in
            *State.Status*) echo "running - $name 0 0" ;;
            *State.Running*) echo true ;;
            *.Name*) echo "$name" ;;
            *) echo "fake-docker: inspect format not faked: $fmt" >&2; exit 1 ;;
        esac
        ;;
    exec)
        shift
        [[ "${1:-}" == -i ]] && shift
        id="$1"
        shift
        [[ "${1:-}" == bash && "${2:-}" == -c ]] || { echo "fake-docker: exec only runs bash -c" >&2; exit 1; }
        script="$3" name0="$4"
        shift 4
        args=()
        for a in "$@"; do
            case "$a" in
                8080) args+=("$(port_of "$id")") ;;
                /data/output*) args+=("$OUTPUT_DIR${a#/data/output}") ;;
                *) args+=("$a") ;;
            esac
        done
        exec bash -c "$script" "$name0" "${args[@]}"
        ;;
    cp)
        src="${2#*:}"
        [[ "$src" == /data/output* ]] || { echo "fake-docker: cp only from /data/output" >&2; exit 1; }
        cp -r "$OUTPUT_DIR${src#/data/output}" "$3"
        ;;
    *)
        echo "fake-docker: docker ${1:-} not faked" >&2
        exit 1
        ;;
esac
