#!/usr/bin/env bash
# rtdp-http — GET one of the service's own endpoints from inside its container, with bash
# alone (the images have no curl):
#   docker-compose exec stream-worker rtdp-http /status
#   docker-compose exec --index 2 stream-worker rtdp-http /metrics | grep ^rtdp_records
#   rtdp-http /health/ready [PORT]
# PORT defaults to MONITORING_PORT (8080). Prints the body; exit 0 on a 2xx answer, 1 on
# another status (printed to stderr), 2 when nothing answers within 10 s.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,9s/^# \{0,1\}//p' "$0" >&2
    exit 2
fi
path="$1"
[[ "$path" == /* ]] || path="/$path"
port="${2:-${MONITORING_PORT:-8080}}"

# (bash's own "Connection refused" lines silenced; the exec's fd 3 outlives the group)
if ! { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
    echo "rtdp-http: nothing listens on 127.0.0.1:$port" >&2
    exit 2
fi
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
if ! IFS= read -r -t 10 status <&3; then
    echo "rtdp-http: no answer from 127.0.0.1:$port within 10 s" >&2
    exit 2
fi
status="${status%$'\r'}"
# Headers end at the first empty line.
while IFS= read -r -t 10 line <&3 && [[ -n "${line%$'\r'}" ]]; do :; done
timeout 10 cat <&3 || true
exec 3<&-
code="$(awk '{ print $2 }' <<<"$status")"
if [[ "$code" != 2?? ]]; then
    echo "rtdp-http: $status" >&2
    exit 1
fi
