#!/usr/bin/env bash
# A private PostgreSQL for tests: Debian's server binaries, one cluster in a state directory, listening only
# on 127.0.0.1, run as the `postgres` OS user by pg_ctl (no systemd, no packaged service).
#
#   scripts/postgres.sh start    # install the server if missing, initdb once, start (reuses a running one)
#   scripts/postgres.sh stop     # fast shutdown; nothing to do when already stopped
#   scripts/postgres.sh status   # exit 0 when it answers, 3 when stopped
#   scripts/postgres.sh url      # prints postgres://USER:PASSWORD@127.0.0.1:PORT/DB
#
# PG_STATE (default /var/lib/openshell-test/postgres), PG_PORT (55432), PG_USER, PG_PASSWORD and PG_DB override
# the defaults. The cluster trades durability for speed (fsync off): it holds test data only.
set -euo pipefail

state="${PG_STATE:-/var/lib/openshell-test/postgres}"
port="${PG_PORT:-55432}"
user="${PG_USER:-openshell}"
password="${PG_PASSWORD:-openshell-test-pw-5b1e}"
db="${PG_DB:-openshell}"
data="$state/data"
sockets="$state/run"
log="$state/postgres.log"
# What bootstrap last set up; a running server without the current one gets bootstrapped again.
ready="$state/bootstrapped"
fingerprint="$port $user $db $password"

die() {
  echo "postgres.sh: $*" >&2
  exit 1
}

# Newest installed server version's bin directory (Debian keeps them off PATH).
pg_bin() {
  local dir found=""
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x "$dir/postgres" ]] && found="$dir"
  done
  [[ -n "$found" ]] && echo "$found"
}

install_server() {
  pg_bin >/dev/null && return 0
  [[ "$(id -u)" == 0 ]] || die "the PostgreSQL server is not installed and installing it needs root: run as root or apt-get install postgresql"
  echo "postgres.sh: installing the PostgreSQL server (apt-get install postgresql)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Try with the package lists already on the machine; refresh them only when that fails.
  if ! apt-get install -y -q --no-install-recommends postgresql >/dev/null; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends postgresql >/dev/null
  fi
  pg_bin >/dev/null || die "apt-get installed postgresql but no server binary is in /usr/lib/postgresql/*/bin"
}

# Runs a server binary as the postgres OS user when we are root (initdb and postgres refuse to run as root).
as_pg() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() {
  local bin
  bin="$(pg_bin)" || return 1
  [[ -f "$data/PG_VERSION" ]] || return 1
  as_pg "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1
}

init_cluster() {
  local bin="$1"
  mkdir -p "$state"
  if [[ "$(id -u)" == 0 ]]; then
    chown postgres: "$state"
    chmod 700 "$state"
    as_pg test -w "$state" || die "the postgres user cannot write $state (check the parent directories' permissions, or set PG_STATE)"
  fi
  as_pg mkdir -p "$sockets"
  [[ -f "$data/PG_VERSION" ]] && return 0
  rm -rf "$data"
  as_pg "$bin/initdb" -D "$data" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$state/initdb.log" 2>&1 ||
    die "initdb into $data failed: $(tail -n 5 "$state/initdb.log" | tr '\n' ' ')"
  as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF
# scripts/postgres.sh: private test cluster
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockets'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

# Creates the test role (allowed to create databases, so tests can make their own) and database.
bootstrap() {
  local bin="$1" psql
  psql=(as_pg "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sockets" -p "$port" -U postgres -d postgres)
  "${psql[@]}" -v user="$user" -v password="$password" <<'EOF'
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'user')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'user', :'password') \gexec
EOF
  "${psql[@]}" -v user="$user" -v db="$db" <<'EOF'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
EOF
  echo "$fingerprint" >"$ready"
}

warm() {
  running && [[ "$(cat "$ready" 2>/dev/null)" == "$fingerprint" ]]
}

start() {
  # Warm path: one pg_ctl status, no lock, no apt.
  warm && return 0
  mkdir -p "$(dirname "$state")"
  exec 9>"$state.lock"
  flock 9
  warm && return 0
  install_server
  local bin
  bin="$(pg_bin)"
  init_cluster "$bin"
  if ! running && ! as_pg "$bin/pg_ctl" start -D "$data" -l "$log" -w -t 60 -o "-p $port" >/dev/null; then
    die "PostgreSQL did not start on 127.0.0.1:$port: $(tail -n 5 "$log" 2>/dev/null | tr '\n' ' ')"
  fi
  bootstrap "$bin"
}

# Percent-encodes everything but RFC 3986 unreserved characters.
urlencode() {
  local s="$1" out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c="${s:i:1}"
    if [[ "$c" == [A-Za-z0-9._~-] ]]; then out+="$c"; else out+="$(printf '%%%02X' "'$c")"; fi
  done
  echo "$out"
}

stop() {
  running || return 0
  as_pg "$(pg_bin)/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if running; then
      echo "running on 127.0.0.1:$port (state $state)"
    else
      echo "stopped (state $state)"
      exit 3
    fi
    ;;
  url) echo "postgres://$(urlencode "$user"):$(urlencode "$password")@127.0.0.1:$port/$(urlencode "$db")" ;;
  *) die "usage: $0 start|stop|status|url" ;;
esac
