#!/usr/bin/env bash
# Start the machine's RabbitMQ, PostgreSQL and MariaDB when they are not answering, and wait
# until they do. Used by CI on a fresh machine; harmless where they already run.
set -euo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local name=$1 port=$2
  for _ in $(seq 1 60); do
    if answers "$port"; then echo "$name is up on port $port"; return 0; fi
    sleep 1
  done
  echo "$name did not come up on port $port" >&2
  return 1
}

if ! answers 5672; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached
fi
if ! answers 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
if ! answers 3306 && command -v mariadbd >/dev/null; then
  echo "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
wait_for RabbitMQ 5672
wait_for PostgreSQL 5432
# RabbitMQ accepts TCP before it accepts AMQP logins; rabbitmqctl knows when it is ready.
rabbitmqctl -q await_startup >/dev/null 2>&1 || true
