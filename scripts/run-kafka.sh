#!/usr/bin/env bash
# Runs a single-node Apache Kafka broker (KRaft: broker and controller in one JVM) on loopback, in
# the foreground, from the jars scripts/fetch-kafka.sh fetches: the usage bus for running the
# distributed services on one machine without containers. Not a production broker (one node, no
# replication, no authentication): see docs/deploy.md.
#
#   bash scripts/run-kafka.sh [port [controller-port]]   # default 9092, and port + 1 for the controller
#
# Its data and log stay in $OPENROUTER_DATA_DIR/kafka (default .data/kafka) across restarts.
set -euo pipefail
cd "$(dirname "$0")/.."

port="${1:-9092}"
valid_port() { [[ "$1" =~ ^[0-9]+$ ]] && (($1 > 0 && $1 < 65536)); }
valid_port "$port" || { echo "run-kafka: the port must be a number from 1 to 65535, not '$port'" >&2; exit 2; }
controller="${2:-$((port + 1))}"
valid_port "$controller" && ((controller != port)) || { echo "run-kafka: the controller port must be a number from 1 to 65535 other than $port, not '$controller'" >&2; exit 2; }
data="${OPENROUTER_DATA_DIR:-.data}"
[[ "$data" = /* ]] || data="$(pwd)/$data"
dir="$data/kafka"
libs="$(pwd)/.cache/kafka-libs"

bash scripts/fetch-kafka.sh
command -v java >/dev/null || { echo "run-kafka: java (17+) is not installed" >&2; exit 1; }
mkdir -p "$dir/log"

cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/log
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/broker.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF

java_args=(-Xms128m -Xmx512m -Djava.awt.headless=true "-Dlog4j.configuration=file:$dir/log4j.properties" -cp "$libs/*")
# The storage is formatted once, with a cluster id of its own; a restart keeps the topics and offsets.
if [[ ! -f "$dir/log/meta.properties" ]]; then
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  java "${java_args[@]}" kafka.tools.StorageTool format "--cluster-id=$cluster_id" "--config=$dir/server.properties" >/dev/null
fi
echo "run-kafka: broker on 127.0.0.1:$port (KAFKA_BROKERS=127.0.0.1:$port), data in $dir, log in $dir/broker.log"
exec java "${java_args[@]}" kafka.Kafka "$dir/server.properties"
