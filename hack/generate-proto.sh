#!/usr/bin/env bash
# Regenerates the Go code for tapgate's copy of Linkerd's tap protos
# (proto/ -> gate/tap/pb/). Usage: hack/generate-proto.sh [OUTPUT_ROOT]
# OUTPUT_ROOT defaults to the repository root; hack/check-generated.sh passes
# a temporary directory to compare against what is committed.
#
# protoc comes from the system (Debian: apt-get install protobuf-compiler);
# protoc-gen-go is pinned to the google.golang.org/protobuf version in go.mod
# and installed into ./bin so a newer one on PATH cannot change the output.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT}"
PROTOC_GEN_GO_VERSION="v1.36.12"
BIN="${TAPGATE_TOOLS_BIN:-$ROOT/bin}"
MODULE="github.com/tapgate/tapgate"

if ! command -v protoc >/dev/null 2>&1; then
	echo "protoc not found: install it (Debian/Ubuntu: apt-get install -y protobuf-compiler)" >&2
	exit 1
fi

# google/protobuf/duration.proto ships with protoc; find its include dir.
PROTOC_INCLUDE="${PROTOC_INCLUDE:-}"
if [[ -z "$PROTOC_INCLUDE" ]]; then
	for d in /usr/include /usr/local/include "$(dirname "$(command -v protoc)")/../include"; do
		if [[ -f "$d/google/protobuf/duration.proto" ]]; then
			PROTOC_INCLUDE="$d"
			break
		fi
	done
fi
if [[ -z "$PROTOC_INCLUDE" ]]; then
	echo "google/protobuf/duration.proto not found: set PROTOC_INCLUDE to protoc's include directory" >&2
	exit 1
fi

PLUGIN="$BIN/protoc-gen-go"
if [[ ! -x "$PLUGIN" ]] || [[ "$("$PLUGIN" --version 2>/dev/null)" != "protoc-gen-go $PROTOC_GEN_GO_VERSION" ]]; then
	mkdir -p "$BIN"
	GOBIN="$BIN" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
fi

mkdir -p "$OUT/gate/tap/pb"
rm -f "$OUT"/gate/tap/pb/*.pb.go

cd "$ROOT/proto"
protoc \
	-I . -I "$PROTOC_INCLUDE" \
	--plugin=protoc-gen-go="$PLUGIN" \
	--go_out="$OUT" --go_opt=module="$MODULE" \
	common/net.proto \
	viz/metrics-api/proto/viz.proto \
	viz/tap/proto/viz_tap.proto
