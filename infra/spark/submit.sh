#!/usr/bin/env bash
# Run the streaming jobs on a Spark cluster with spark-submit: the same code as `smartcity streaming run`.
#
#   SPARK_MASTER=spark://host:7077 infra/spark/submit.sh [--once] [traffic|mobility|anomalies ...]
#
# The project's packages travel as a zip (--py-files); the executors need pyspark's Python (3.11) and the
# project's dependencies (pip install . on each node, or the image of infra/spark/Dockerfile). Settings are the
# SMARTCITY_* environment variables of the driver (bus, database, cache, checkpoint folder: a path every driver
# restart sees again, e.g. a shared volume). The Kafka connector is resolved from Maven Central by --packages, at
# the version of the pinned pyspark.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
master="${SPARK_MASTER:-local[2]}"
spark_version="$(python3 -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null || echo 4.2.0)"
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT

(cd "$root" && zip -qr "$build/smartcity.zip" smartcity streaming -x '*__pycache__*')

exec spark-submit \
  --master "$master" \
  --name smartcity-streaming \
  --packages "org.apache.spark:spark-sql-kafka-0-10_2.13:${spark_version}" \
  --conf spark.sql.session.timeZone=UTC \
  --conf spark.sql.shuffle.partitions="${SPARK_SHUFFLE_PARTITIONS:-8}" \
  --conf spark.executorEnv.PYTHONHASHSEED=0 \
  --py-files "$build/smartcity.zip" \
  "$root/infra/spark/main.py" "$@"
