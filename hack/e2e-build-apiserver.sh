#!/usr/bin/env bash
# Builds the real kube-apiserver used by tapgate's end-to-end tests (test/e2e)
# from the pinned tools module tools/kube-apiserver, and caches the binary so
# later runs cost nothing. Prints the binary's path on stdout (the only stdout
# line), so callers can do:
#
#   export TAPGATE_KUBE_APISERVER="$(bash hack/e2e-build-apiserver.sh)"
#
# Environment:
#   TAPGATE_CACHE  cache directory (default: $HOME/.cache/tapgate)
#   FORCE=1        rebuild even when the cached binary exists
set -euo pipefail

version=v1.37.2
minor=37

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${TAPGATE_CACHE:-${HOME}/.cache/tapgate}"
out="${cache}/bin/kube-apiserver-${version}"

if [[ -x "${out}" && "${FORCE:-0}" != 1 ]]; then
  echo "kube-apiserver ${version}: cached" >&2
  echo "${out}"
  exit 0
fi

mkdir -p "${cache}/bin"
# Build to a temporary name and rename, so an interrupted build never leaves a
# half-written binary that a later run would take for a cached one.
tmp="$(mktemp "${cache}/bin/.kube-apiserver-${version}.XXXXXX")"
trap 'rm -f "${tmp}"' EXIT

echo "kube-apiserver ${version}: building (several minutes when cold)..." >&2
start=${SECONDS}
(
  cd "${root}/tools/kube-apiserver"
  # go.sum is committed: -mod=readonly makes a stale go.sum fail loudly
  # instead of silently resolving something else.
  CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly" go build -trimpath -o "${tmp}" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}" \
    .
)
mv -f "${tmp}" "${out}"
trap - EXIT
echo "kube-apiserver ${version}: built in $((SECONDS - start))s -> ${out}" >&2
"${out}" --version >&2
echo "${out}"
