#!/usr/bin/env bash
# Services for the integration tests: a throwaway PostgreSQL cluster on 127.0.0.1 with Chinook loaded.
#
#   bash scripts/ci_services.sh start > var/ci_services.env && source var/ci_services.env
#   ... run the tests ...
#   bash scripts/ci_services.sh stop        # stops and deletes the cluster named by SQLSAGE_TEST_PG_DATA
#
# `start` installs Debian's postgresql when no initdb is found (as root, with apt-get), creates a cluster
# in a fresh temporary folder owned by the postgres user, listening on 127.0.0.1 only (a free port, or
# SQLSAGE_PG_PORT), and creates:
#   - role sqlsage_app (owns the databases), role sqlsage_reader (CONNECT + SELECT, read-only by default);
#   - database chinook (Chinook with lower-case names, see tests/fixtures/load_chinook_pg.py);
#   - database sqlsage_state (where app workers keep conversations: LangGraph's Postgres checkpointer).
# Passwords are random per cluster and appear only in the printed lines. stdout carries only
# `export NAME='value'` lines (source them); progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

log() { echo "ci_services: $*" >&2; }

pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v initdb)")"; return 0; fi
  return 1
}

install_postgres() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "PostgreSQL's initdb is missing and cannot be installed here (needs root and apt-get)"
    exit 1
  fi
  log "installing Debian's postgresql"
  # Only the binaries: no cluster of its own on port 5432.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/sqlsage.conf
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

# Run a command as the cluster's owner: postgres when we are root (initdb refuses root), else ourselves.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local bin dir port app_pw reader_pw
  bin=$(pg_bindir) || { install_postgres; bin=$(pg_bindir); }
  dir=$(mktemp -d "${TMPDIR:-/tmp}/sqlsage-pg.XXXXXX")
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  chmod 700 "$dir"
  port=${SQLSAGE_PG_PORT:-$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
  app_pw=$("$PY" -c 'import secrets; print(secrets.token_hex(16))')
  reader_pw=$("$PY" -c 'import secrets; print(secrets.token_hex(16))')

  log "initdb in $dir ($bin)"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  log "starting PostgreSQL on 127.0.0.1:$port"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c unix_socket_permissions=0700" start >&2 \
    || { cat "$dir/postgres.log" >&2; exit 1; }

  as_owner psql -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres >&2 <<SQL
CREATE ROLE sqlsage_app LOGIN PASSWORD '$app_pw';
CREATE ROLE sqlsage_reader LOGIN PASSWORD '$reader_pw';
ALTER ROLE sqlsage_reader SET default_transaction_read_only = on;
CREATE DATABASE chinook OWNER sqlsage_app;
CREATE DATABASE sqlsage_state OWNER sqlsage_app;
REVOKE ALL ON DATABASE chinook FROM PUBLIC;
REVOKE ALL ON DATABASE sqlsage_state FROM PUBLIC;
GRANT CONNECT ON DATABASE sqlsage_state TO sqlsage_app;
SQL
  log "loading Chinook"
  "$PY" tests/fixtures/load_chinook_pg.py "postgresql://sqlsage_app:$app_pw@127.0.0.1:$port/chinook" \
    --reader sqlsage_reader

  echo "export SQLSAGE_TEST_PG_URL='postgresql+psycopg://sqlsage_reader:$reader_pw@127.0.0.1:$port/chinook'"
  echo "export SQLSAGE_TEST_PG_OWNER_URL='postgresql+psycopg://sqlsage_app:$app_pw@127.0.0.1:$port/chinook'"
  echo "export SQLSAGE_TEST_PG_STATE_URL='postgresql://sqlsage_app:$app_pw@127.0.0.1:$port/sqlsage_state'"
  echo "export SQLSAGE_TEST_PG_DATA='$dir'"
  log "ready; stop with: bash scripts/ci_services.sh stop"
}

stop() {
  local dir=${SQLSAGE_TEST_PG_DATA:-}
  if [ -z "$dir" ] || [ ! -d "$dir/data" ]; then log "no cluster to stop (SQLSAGE_TEST_PG_DATA is unset)"; return 0; fi
  local bin
  bin=$(pg_bindir)
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  rm -rf "$dir"
  log "stopped and removed $dir"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
