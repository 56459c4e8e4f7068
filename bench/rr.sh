#!/usr/bin/env bash
# rr.sh - run bench_rr against a private RabbitMQ node (make bench-rr).
#
# Starts Debian's rabbitmq-server on 127.0.0.1 with its own node name,
# ports, epmd port, mnesia and log directories under a temporary
# directory, runs bench_rr (gridgate first, then the same workload through
# the broker), and stops the node and its epmd whatever happens.
# Usage: bench/rr.sh BENCH_RR_BINARY [bench_rr args...]
set -euo pipefail
bin=$1; shift
tmp=$(mktemp -d /tmp/ggrr-rabbit-XXXXXX)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
amqp=$(free_port); dist=$(free_port); epmd=$(free_port)
export HOME=$tmp RABBITMQ_NODENAME=ggbench$$@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$amqp RABBITMQ_DIST_PORT=$dist ERL_EPMD_PORT=$epmd
export RABBITMQ_MNESIA_BASE=$tmp/mnesia RABBITMQ_LOG_BASE=$tmp/log RABBITMQ_PID_FILE=$tmp/rabbit.pid
export RABBITMQ_ENABLED_PLUGINS_FILE=$tmp/enabled_plugins RABBITMQ_CONFIG_FILE=$tmp/rabbitmq
export RABBITMQ_CONF_ENV_FILE=$tmp/rabbitmq-env.conf RABBITMQ_ADVANCED_CONFIG_FILE=$tmp/advanced.config
echo '[].' > "$tmp/enabled_plugins"
: > "$tmp/rabbitmq-env.conf"
printf 'loopback_users = none\nlog.console = false\nlog.file.level = warning\n' > "$tmp/rabbitmq.conf"
server=/usr/lib/rabbitmq/bin/rabbitmq-server
[ -x "$server" ] || server=$(command -v rabbitmq-server)
"$server" > "$tmp/server.out" 2>&1 &
rpid=$!
cleanup() {
  /usr/lib/rabbitmq/bin/rabbitmqctl -n "$RABBITMQ_NODENAME" stop >/dev/null 2>&1 || kill "$rpid" 2>/dev/null || true
  wait "$rpid" 2>/dev/null || true
  epmd -kill >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
up=0
for _ in $(seq 1 120); do
  if python3 -c "import socket,sys;s=socket.create_connection(('127.0.0.1',$amqp),1);s.sendall(b'AMQP\x00\x00\x09\x01');sys.exit(0 if s.recv(8) else 1)" 2>/dev/null; then up=1; break; fi
  kill -0 "$rpid" 2>/dev/null || break
  sleep 0.5
done
if [ $up -ne 1 ]; then
  echo "rr.sh: rabbitmq-server did not start; its output:" >&2
  tail -30 "$tmp/server.out" >&2 || true
  "$bin" "$@"
  exit 0
fi
echo "rr rabbitmq=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo ?) amqp_port=$amqp"
"$bin" --amqp-port "$amqp" "$@"
