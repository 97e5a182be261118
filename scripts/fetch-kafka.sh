#!/usr/bin/env bash
# Fetches the Apache Kafka broker jars (deploy/kafka/pom.xml) from Maven Central into
# .cache/kafka-libs, once. The integration tests start the broker from that classpath.
set -euo pipefail
cd "$(dirname "$0")/.."

out=".cache/kafka-libs"
stamp="$out/.complete-$(sha256sum deploy/kafka/pom.xml | cut -c1-16)"
if [[ -f "$stamp" ]]; then
  exit 0
fi
command -v mvn >/dev/null || { echo "fetch-kafka: mvn is not installed" >&2; exit 1; }
command -v java >/dev/null || { echo "fetch-kafka: java (17+) is not installed" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"
mvn -q -B -f deploy/kafka/pom.xml dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$(pwd)/$out"
ls "$out"/kafka_2.13-*.jar >/dev/null
touch "$stamp"
echo "fetch-kafka: $(ls "$out"/*.jar | wc -l) jars in $out"
