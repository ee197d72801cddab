#!/bin/sh
# Read the secrets compose mounts into the environment AAMI and libpq read, then start.
set -eu
if [ -n "${AAMI_ADMIN_TOKEN_FILE:-}" ]; then
    AAMI_ADMIN_TOKEN=$(cat "$AAMI_ADMIN_TOKEN_FILE")
    export AAMI_ADMIN_TOKEN
fi
if [ -n "${AAMI_DB_PASSWORD_FILE:-}" ]; then
    PGPASSWORD=$(cat "$AAMI_DB_PASSWORD_FILE")  # read by libpq (psycopg)
    export PGPASSWORD
fi
# Alertmanager starts from the config AAMI manages; the first time, that is the shipped one.
if [ -n "${AAMI_ALERTMANAGER_CONFIG_PATH:-}" ] && [ ! -f "$AAMI_ALERTMANAGER_CONFIG_PATH" ]; then
    cp "$AAMI_ALERTMANAGER_BASE_CONFIG" "$AAMI_ALERTMANAGER_CONFIG_PATH"
fi
exec "$@"
