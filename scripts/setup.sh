#!/usr/bin/env bash
# One-step set-up on a fresh machine: a virtualenv with hub and its test tools,
# and the PostgreSQL 15 server binaries the test suite starts (Debian package).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'

find_initdb() {
    command -v initdb 2>/dev/null && return 0
    ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1
}
if [ "${HUB_SKIP_POSTGRES_INSTALL:-}" != "1" ] && [ -z "$(find_initdb)" ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        echo "setup: installing the PostgreSQL 15 server (Debian package postgresql-15)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
    else
        echo "setup: PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql-15" >&2
        exit 1
    fi
fi
