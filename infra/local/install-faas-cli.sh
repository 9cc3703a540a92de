#!/usr/bin/env bash
# Installs faas-cli (OpenFaaS's CLI) from the Go module proxy into the cache's bin folder, once per version.
# Usage: infra/local/install-faas-cli.sh   (FAAS_CLI_VERSION and SMARTCITY_CACHE_DIR may be set)
# Prints the path of the faas-cli binary on success.
set -euo pipefail

VERSION="${FAAS_CLI_VERSION:-0.17.8}"
CACHE_DIR="${SMARTCITY_CACHE_DIR:-$HOME/.cache/smartcity}"
BIN_DIR="$CACHE_DIR/bin"
MARKER="$BIN_DIR/.faas-cli-$VERSION"

if [[ -x "$BIN_DIR/faas-cli" && -f "$MARKER" ]]; then
    echo "$BIN_DIR/faas-cli"
    exit 0
fi

command -v go >/dev/null || { echo "install-faas-cli: needs Go (apt-get install golang)" >&2; exit 1; }
mkdir -p "$BIN_DIR"
echo "install-faas-cli: building github.com/openfaas/faas-cli@v$VERSION" >&2
GOBIN="$BIN_DIR" GOFLAGS="-mod=mod" go install "github.com/openfaas/faas-cli@v$VERSION" >&2
rm -f "$BIN_DIR"/.faas-cli-*
touch "$MARKER"
echo "$BIN_DIR/faas-cli"
