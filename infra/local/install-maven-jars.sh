#!/usr/bin/env bash
# Resolve the run-time jars of infra/local/<NAME>/pom.xml from Maven Central into DEST (idempotent: DEST is
# keyed by the pom's checksum, so a second run, or a run with an unchanged pom, does nothing). Maven's own cache
# (~/.m2) keeps the downloads between machines' runs.
# Usage: install-maven-jars.sh NAME DEST
set -euo pipefail

name=$1
dest=$2
pom="$(cd "$(dirname "$0")" && pwd)/$name/pom.xml"
[ -f "$pom" ] || { echo "no pom for $name at $pom" >&2; exit 1; }
checksum=$(sha256sum "$pom" | cut -c1-16)
[ -f "$dest/.complete-$checksum" ] && exit 0

echo "resolving the jars of $name with Maven into $dest"
rm -rf "$dest"
mkdir -p "$dest"
mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dest.partial"
rm -rf "$dest"
mv "$dest.partial" "$dest"
touch "$dest/.complete-$checksum"
