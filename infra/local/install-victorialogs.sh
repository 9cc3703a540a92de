#!/usr/bin/env bash
# Build VictoriaLogs VERSION (the log store: Elasticsearch bulk API in, LogsQL out) from its Go module into
# BIN_DIR as victoria-logs-VERSION (idempotent: an existing binary is kept). The module comes from the Go module
# proxy (github.com/VictoriaMetrics/VictoriaLogs); a pure-Go build, about a minute the first time.
# Usage: install-victorialogs.sh VERSION BIN_DIR
set -euo pipefail

version=$1
bin_dir=$2
binary="$bin_dir/victoria-logs-$version"
[ -x "$binary" ] && exit 0

command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
echo "building VictoriaLogs $version with Go into $bin_dir (first time only)"
mkdir -p "$bin_dir"
gobin=$(mktemp -d "$bin_dir/victorialogs-build.XXXXXX")
trap 'rm -rf "$gobin"' EXIT
GOBIN="$gobin" CGO_ENABLED=0 go install "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$version"
mv "$gobin/victoria-logs" "$binary"
