#!/usr/bin/env bash
# Fails when the committed gate/tap/pb/*.pb.go differ from what
# hack/generate-proto.sh produces from proto/. The "protoc vX" version comment
# is ignored so a different protoc patch release on a CI runner is not noise.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

"$ROOT/hack/generate-proto.sh" "$TMP"

if ! diff -r -u -I '^//[[:space:]]*protoc[[:space:]]' \
	"$ROOT/gate/tap/pb" "$TMP/gate/tap/pb" --exclude='*_test.go' --exclude='*.md' >"$TMP/diff"; then
	cat "$TMP/diff" >&2
	echo "generated code is stale: run make generate" >&2
	exit 1
fi
echo "generated code is up to date"
