#!/usr/bin/env bash
# Build step of docker/collector/Dockerfile (stage oracle-client): unpacks Oracle Instant
# Client into /opt/oracle/instantclient when one was given, else leaves that folder empty
# (the image then captures PostgreSQL only).
#   ORACLE_INSTANT_CLIENT_URL     zip to download (build argument), optional
#   ORACLE_INSTANT_CLIENT_SHA256  its SHA-256, checked when set
#   /tmp/oracle/*.zip             zips copied from docker/collector/oracle/ in the context
# The cdc-collector binary loads libclntsh at run time (the oracle crate's ODPI-C uses
# dlopen), so nothing here is needed to build it.
set -euo pipefail

DEST="${ORACLE_CLIENT_DEST:-/opt/oracle/instantclient}"
SRC="${ORACLE_CLIENT_SRC:-/tmp/oracle}"
mkdir -p "$DEST"

if [[ -n "${ORACLE_INSTANT_CLIENT_URL:-}" ]]; then
    echo "oracle-client: downloading ${ORACLE_INSTANT_CLIENT_URL}"
    curl -fsSL --retry 3 -o "$SRC/downloaded-instantclient.zip" "$ORACLE_INSTANT_CLIENT_URL"
    if [[ -n "${ORACLE_INSTANT_CLIENT_SHA256:-}" ]]; then
        echo "${ORACLE_INSTANT_CLIENT_SHA256}  $SRC/downloaded-instantclient.zip" | sha256sum -c -
    fi
fi

shopt -s nullglob
zips=("$SRC"/*.zip)
if ((${#zips[@]} == 0)); then
    echo "oracle-client: none given; the image captures PostgreSQL only"
    exit 0
fi

work="$(mktemp -d)"
for zip in "${zips[@]}"; do
    echo "oracle-client: unpacking ${zip##*/}"
    unzip -q -o "$zip" -d "$work"
done
# The zips unpack into instantclient_<major>_<minor>/; several zips of one release merge.
dirs=("$work"/instantclient_*/)
if ((${#dirs[@]} != 1)); then
    echo "oracle-client: expected one instantclient_* folder in the zips, found ${#dirs[@]}" >&2
    exit 1
fi
cp -a "${dirs[0]}". "$DEST"/
# Not needed by the collector: the SDK headers, JDBC and the Java parts.
rm -rf "$DEST"/sdk "$DEST"/*.jar "$DEST"/*jdbc* "$work"
if ! compgen -G "$DEST/libclntsh.so*" >/dev/null; then
    echo "oracle-client: no libclntsh.so in the zips: give the Basic or Basic Light package" >&2
    exit 1
fi
# ODPI-C dlopens "libclntsh.so"; older zips only have libclntsh.so.<version>.
if [[ ! -e "$DEST/libclntsh.so" ]]; then
    newest="$(find "$DEST" -maxdepth 1 -name 'libclntsh.so.*' -printf '%f\n' | sort -V | tail -n 1)"
    ln -s "$newest" "$DEST/libclntsh.so"
fi
echo "oracle-client: installed in $DEST ($(du -sh "$DEST" | cut -f1))"
