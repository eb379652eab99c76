#!/usr/bin/env bash
# sql_servers.sh — one PostgreSQL 15 and one MariaDB for a whole test session
# (scripts/test.sh), in a directory of their own on free 127.0.0.1 ports,
# started as the fixtures of tests/c/test_sql_servers.h and
# tests/python/sql_servers.py start their own; each test makes its own
# database on them.
#   sql_servers.sh start DIR   start both; prints `export PT_TEST_PG_URL=...`
#                              and `export PT_TEST_MYSQL_URL=...` for eval,
#                              leaving out a server that did not start (its
#                              tests then start their own, as when run alone)
#   sql_servers.sh stop DIR    stop both by their pids, wait, remove DIR
set -uo pipefail
cmd=${1:?usage: sql_servers.sh start|stop DIR}
dir=${2:?usage: sql_servers.sh start|stop DIR}
pg_bin=/usr/lib/postgresql/15/bin

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# initdb refuses root: as root the server runs as the postgres user.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_pg() {
  [ -x "$pg_bin/initdb" ] || { echo "sql_servers.sh: no PostgreSQL 15 in $pg_bin" >&2; return 1; }
  mkdir -p "$dir/pg"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir/pg"
  as_postgres "$pg_bin/initdb" -D "$dir/pg/data" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 > "$dir/pg/initdb.log" 2>&1 ||
    { tail -n 5 "$dir/pg/initdb.log" >&2; return 1; }
  local port
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    # setsid: its own session, so that Ctrl-C on the test run reaches the
    # trap of scripts/test.sh, which stops it, and not the server itself.
    if as_postgres setsid -w "$pg_bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w \
      -o "-k $dir/pg -h 127.0.0.1 -p $port" start > /dev/null 2>&1; then
      echo "export PT_TEST_PG_URL=postgresql://postgres@127.0.0.1:$port/postgres"
      return 0
    fi
  done
  echo "sql_servers.sh: PostgreSQL did not start; its log:" >&2
  tail -n 10 "$dir/pg/log" >&2
  return 1
}

start_my() {
  [ -x /usr/sbin/mariadbd ] || { echo "sql_servers.sh: no /usr/sbin/mariadbd" >&2; return 1; }
  mkdir -p "$dir/my"
  mariadb-install-db --datadir="$dir/my/db" --auth-root-authentication-method=normal \
    --skip-test-db > "$dir/my/install.log" 2>&1 ||
    { tail -n 5 "$dir/my/install.log" >&2; return 1; }
  local port
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    setsid mariadbd --datadir="$dir/my/db" --socket="$dir/my/sock" --port="$port" \
      --bind-address=127.0.0.1 --user=root --pid-file="$dir/my/pid" \
      --log-error="$dir/my/err.log" < /dev/null > /dev/null 2>&1 &
    echo $! > "$dir/my/pid.start"
    for _ in $(seq 1 300); do
      kill -0 "$(cat "$dir/my/pid.start")" 2>/dev/null || break
      if mariadb -h 127.0.0.1 -P "$port" -uroot -e 'CREATE DATABASE IF NOT EXISTS pt' \
        > /dev/null 2>&1; then
        echo "export PT_TEST_MYSQL_URL=mysql://root@127.0.0.1:$port/pt"
        return 0
      fi
      sleep 0.1
    done
    stop_my
  done
  echo "sql_servers.sh: MariaDB did not start; its log:" >&2
  tail -n 10 "$dir/my/err.log" >&2
  return 1
}

# Waits up to 30 s for pid to exit after signal sig, then kills it.
stop_pid() {
  local pid=$1 sig=$2
  kill -0 "$pid" 2>/dev/null || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# The postmaster's pid is the first line of postmaster.pid; SIGINT is its
# fast shutdown.
stop_pg() {
  [ -f "$dir/pg/data/postmaster.pid" ] || return 0
  stop_pid "$(head -n 1 "$dir/pg/data/postmaster.pid")" INT
}

# SIGTERM: MariaDB's clean shutdown. The pid of the start, for a server
# killed before it wrote its pid file.
stop_my() {
  local f
  for f in "$dir/my/pid" "$dir/my/pid.start"; do
    [ -f "$f" ] && stop_pid "$(cat "$f")" TERM
    rm -f "$f"
  done
  return 0
}

case $cmd in
  start)
    mkdir -p "$dir"
    chmod 755 "$dir" # the postgres user reaches its data directory through it
    start_pg
    start_my
    exit 0 ;;
  stop)
    stop_pg & # both shut down at once
    stop_my
    wait
    rm -rf "$dir" ;;
  *) echo "usage: sql_servers.sh start|stop DIR" >&2; exit 2 ;;
esac
