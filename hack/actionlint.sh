#!/usr/bin/env bash
# Lints the GitHub Action metadata (action.yml) and every example workflow in
# examples/github/ with actionlint, pinned and installed with go install.
#
# actionlint checks workflows, and checks a local action's action.yml (it
# must parse, and every `with:` must name a declared input, every required
# input must be given) only when a workflow of a project uses it as
# `uses: ./`. A project, for actionlint, is a Git repository with a
# .github/workflows directory. So the workflows are linted twice:
#   1. as written, passed explicitly as files;
#   2. in a throwaway project holding action.yml, where `tapgate/tapgate@vN`
#      is rewritten to `./`, so their inputs are checked against action.yml.
# Then the structural tests of action.yml and the Dockerfile run (outputs,
# inputs read by `tapgate action`, docker runtime, build flags).
#
# When shellcheck is installed (apt-get install shellcheck), actionlint uses
# it for the run: scripts.
set -euo pipefail

ACTIONLINT_VERSION=v1.7.12
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

GOBIN="${GOBIN:-$(go env GOPATH)/bin}"
ACTIONLINT="$GOBIN/actionlint"
if ! { [ -x "$ACTIONLINT" ] && "$ACTIONLINT" -version | head -n1 | grep -qx "$ACTIONLINT_VERSION"; }; then
	echo "installing actionlint $ACTIONLINT_VERSION into $GOBIN"
	GOBIN="$GOBIN" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
fi

mapfile -t workflows < <(find examples/github -maxdepth 1 -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
if ((${#workflows[@]} == 0)); then
	echo "no workflows in examples/github" >&2
	exit 1
fi

status=0
echo "actionlint: ${workflows[*]}"
"$ACTIONLINT" "${workflows[@]}" || status=1

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/.git" "$TMP/.github/workflows"
cp action.yml Dockerfile "$TMP/"
for w in "${workflows[@]}"; do
	sed -E 's#uses:[[:space:]]*tapgate/tapgate@[^[:space:]]+#uses: ./#' "$w" >"$TMP/.github/workflows/$(basename "$w")"
done
echo "actionlint: the same workflows against action.yml (uses: ./)"
if ! out="$(cd "$TMP" && "$ACTIONLINT" .github/workflows/* 2>&1)"; then
	status=1
fi
# Name the example files, not the throwaway copies.
[ -z "$out" ] || printf '%s\n' "$out" | sed 's#\.github/workflows/#examples/github/ (as uses: ./) #'

echo "structural checks of action.yml, Dockerfile and .dockerignore"
go test -count=1 -run 'TestActionMetadata|TestDockerfile|TestDockerignore' ./gate/ghactions || status=1

if ((status == 0)); then
	echo "actionlint: clean"
fi
exit "$status"
