#!/usr/bin/env bash
# Build FerretDB VERSION (MongoDB wire protocol on SQLite or PostgreSQL) from its Go module into BIN_DIR
# (idempotent: an existing binary is kept). The module comes from the Go module proxy; it is built in a copy
# because its version file is generated at release time and is not part of the module (without it the binary
# refuses to start).
# Usage: install-ferretdb.sh VERSION BIN_DIR
set -euo pipefail

version=$1
bin_dir=$2
binary="$bin_dir/ferretdb-$version"
[ -x "$binary" ] && exit 0

echo "building FerretDB $version with Go into $bin_dir (first time only)"
source_dir=$(go mod download -json "github.com/FerretDB/FerretDB@$version" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
build_dir=$(mktemp -d)
trap 'chmod -R u+w "$build_dir"; rm -rf "$build_dir"' EXIT
cp -r "$source_dir/." "$build_dir"
chmod -R u+w "$build_dir"
echo "$version" >"$build_dir/build/version/version.txt"
mkdir -p "$bin_dir"
(cd "$build_dir" && go build -buildvcs=false -o "$binary.partial" ./cmd/ferretdb)
mv "$binary.partial" "$binary"
