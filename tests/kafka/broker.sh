#!/usr/bin/env bash
# broker.sh — one Apache Kafka broker (KRaft: broker and controller in one
# JVM) for the tests, from the jars scripts/fetch-kafka caches, in a
# directory of its own on free 127.0.0.1 ports. The C and Python fixtures
# both use it:
#   broker.sh start DIR     format DIR/data, start, wait until it serves;
#                           prints host:port (also in DIR/bootstrap)
#   broker.sh stop DIR      stop it by its pid (DIR/pid), wait for the exit
#   broker.sh restart DIR   stop, then start again on the same ports and data
# Exit 77 when Java or the jars are missing (the tests skip).
set -euo pipefail
cmd=${1:?usage: broker.sh start|stop|restart DIR}
dir=${2:?usage: broker.sh start|stop|restart DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
libs=${PT_KAFKA_LIBS:-$root/.cache/kafka/libs}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop() {
  [ -f "$dir/pid" ] || return 0
  local pid
  pid=$(cat "$dir/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/pid"
}

start() {
  command -v java >/dev/null || { echo "broker.sh: java is missing" >&2; exit 77; }
  [ -d "$libs" ] || { echo "broker.sh: no Kafka jars in $libs: run scripts/setup.sh" >&2; exit 77; }
  mkdir -p "$dir"
  if [ ! -f "$dir/server.properties" ]; then
    local port cport
    port=$(free_port)
    cport=$(free_port)
    while [ "$cport" = "$port" ]; do cport=$(free_port); done
    cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
    echo "127.0.0.1:$port" > "$dir/bootstrap"
    # A cluster id is 16 random bytes in URL-safe base64; one that starts
    # with '-' would be taken for an option (1 in 64), so draw again.
    local cid
    cid=$(python3 -c 'import base64,os
while True:
    c = base64.urlsafe_b64encode(os.urandom(16)).decode()[:22]
    if not c.startswith("-"): print(c); break')
    java -cp "$libs/*" kafka.tools.StorageTool format -t "$cid" \
      -c "$dir/server.properties" > "$dir/format.log" 2>&1 ||
      { tail -n 5 "$dir/format.log" >&2; rm -f "$dir/server.properties"; exit 1; }
  fi
  local bootstrap host port
  bootstrap=$(cat "$dir/bootstrap")
  host=${bootstrap%:*}
  port=${bootstrap##*:}
  # Its own session, so that a test's signals to its process group miss it.
  setsid java -Xmx512m -Xms128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.level=WARN -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$libs/*" kafka.Kafka "$dir/server.properties" >> "$dir/broker.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  for _ in $(seq 1 600); do
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      echo "broker.sh: the broker exited; its log:" >&2
      tail -n 30 "$dir/broker.log" >&2
      exit 1
    fi
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
      echo "$bootstrap"
      return 0
    fi
    sleep 0.1
  done
  echo "broker.sh: the broker did not start within 60 s; its log:" >&2
  tail -n 30 "$dir/broker.log" >&2
  stop
  exit 1
}

case $cmd in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  *) echo "usage: broker.sh start|stop|restart DIR" >&2; exit 2 ;;
esac
