#!/usr/bin/env bash
# Real PostgreSQL and Redis on loopback for the datastores external-mode test (Debian packages postgresql, redis-server).
#   servers.sh start   start both (idempotent); writes $DATASTORES_TEST_DIR/env with ports, users and passwords
#   servers.sh stop    stop both and remove the directory
# Non-default ports so nothing collides with a system service. PostgreSQL refuses to run as root, so as root the
# server runs as the postgres user (runuser).
set -euo pipefail
dir=${DATASTORES_TEST_DIR:-/tmp/tensafe-datastores-test}
pg_port=${DATASTORES_TEST_PG_PORT:-55432}
redis_port=${DATASTORES_TEST_REDIS_PORT:-56379}
pg_bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

random_password() { python3 -c 'import secrets, string; print("".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24)))'; }

start() {
  [ -x "$pg_bin/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
  command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server)" >&2; exit 1; }
  mkdir -p "$dir"
  chmod 700 "$dir"
  if [ ! -f "$dir/env" ]; then
    umask 077
    cat >"$dir/env" <<ENV
DATASTORES_TEST_PG_HOST=127.0.0.1
DATASTORES_TEST_PG_PORT=$pg_port
DATASTORES_TEST_PG_USER=tensafe
DATASTORES_TEST_PG_DATABASE=tensafe
DATASTORES_TEST_PG_PASSWORD=$(random_password)
DATASTORES_TEST_REDIS_HOST=127.0.0.1
DATASTORES_TEST_REDIS_PORT=$redis_port
DATASTORES_TEST_REDIS_PASSWORD=$(random_password)
DATASTORES_TEST_REDIS_USER=tensafe
DATASTORES_TEST_REDIS_USER_PASSWORD=$(random_password)
ENV
  fi
  # shellcheck disable=SC1091
  . "$dir/env"

  # PostgreSQL: its own cluster in $dir/pg, password auth over TCP, trust only on its private socket directory.
  mkdir -p "$dir/pg" "$dir/pg-socket"
  [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$dir/pg" "$dir/pg-socket"
  [ "$(id -u)" -ne 0 ] || chmod 711 "$dir"
  if [ ! -f "$dir/pg/PG_VERSION" ]; then
    as_pg "$pg_bin/initdb" -D "$dir/pg" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  fi
  if ! as_pg "$pg_bin/pg_ctl" -D "$dir/pg" status >/dev/null 2>&1; then
    as_pg "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pg-socket/server.log" -w -t 60 \
      -o "-p $pg_port -k $dir/pg-socket -c listen_addresses=127.0.0.1" start >/dev/null
  fi
  # Role and database through the socket; the password goes in on stdin, never on a command line.
  as_pg "$pg_bin/../bin/psql" -h "$dir/pg-socket" -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
    -v user="$DATASTORES_TEST_PG_USER" -v pass="$DATASTORES_TEST_PG_PASSWORD" -v db="$DATASTORES_TEST_PG_DATABASE" <<'SQL' >/dev/null
SELECT format('CREATE ROLE %I LOGIN', :'user') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
ALTER ROLE :"user" PASSWORD :'pass';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL

  # Redis: config file (mode 600) so the passwords never show in the process list; no persistence.
  mkdir -p "$dir/redis"
  cat >"$dir/redis/redis.conf" <<CONF
bind 127.0.0.1
port $DATASTORES_TEST_REDIS_PORT
daemonize yes
dir $dir/redis
pidfile $dir/redis/redis.pid
logfile $dir/redis/redis.log
save ""
appendonly no
requirepass $DATASTORES_TEST_REDIS_PASSWORD
user $DATASTORES_TEST_REDIS_USER on >$DATASTORES_TEST_REDIS_USER_PASSWORD ~* &* +@all
CONF
  chmod 600 "$dir/redis/redis.conf"
  if ! { [ -f "$dir/redis/redis.pid" ] && kill -0 "$(cat "$dir/redis/redis.pid")" 2>/dev/null; }; then
    redis-server "$dir/redis/redis.conf"
  fi
  for _ in $(seq 50); do
    [ -f "$dir/redis/redis.pid" ] && redis-cli -h 127.0.0.1 -p "$DATASTORES_TEST_REDIS_PORT" --no-auth-warning ping 2>/dev/null | grep -q NOAUTH && break
    sleep 0.2
  done
  echo "PostgreSQL 127.0.0.1:$DATASTORES_TEST_PG_PORT and Redis 127.0.0.1:$DATASTORES_TEST_REDIS_PORT up; credentials in $dir/env"
}

stop() {
  if [ -f "$dir/redis/redis.pid" ]; then
    kill "$(cat "$dir/redis/redis.pid")" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$(cat "$dir/redis/redis.pid" 2>/dev/null)" 2>/dev/null || break; sleep 0.1; done
  fi
  if [ -f "$dir/pg/PG_VERSION" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  echo "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
