#!/usr/bin/env bash
# make bench: measures tapgate against its performance targets in one run and
# writes BENCHMARKS.md. Needs Go and jq (.ci/run installs jq); taskset
# (util-linux) pins tapgate to CPU 0 and the driver to CPU 1 when present.
# Recordings go to a temporary directory that is removed at the end.
#
#   BENCH_OUT=file     where to write (default BENCHMARKS.md)
#   BENCH_QUICK=1      smaller sizes, for trying the script (not for the record)
set -euo pipefail
cd "$(dirname "$0")/.."

out=${BENCH_OUT:-BENCHMARKS.md}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tapgate-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS

requests=1000000 memory=1000000,10000000 window=10s runs=3 latency_runs=10 accuracy_n=1000000
if [[ ${BENCH_QUICK:-} == 1 ]]; then
	requests=100000 memory=100000,300000 window=3s runs=1 latency_runs=3 accuracy_n=100000
fi

command -v jq >/dev/null || { echo "bench: jq is required (apt-get install jq)" >&2; exit 1; }

echo "bench: building tapgate and the driver" >&2
CGO_ENABLED=0 go build -trimpath -o "$tmp/tapgate" ./cmd/tapgate
go build -o "$tmp/bench" ./hack/bench

# The driver (simulator, generator, jq's timing) runs on CPU 1 and pins
# what it measures to CPU 0.
drv=("$tmp/bench")
if command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]]; then
	drv=(taskset -c 1 "$tmp/bench")
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
dirty=""
if git status --porcelain -- cmd gate go.mod go.sum 2>/dev/null | grep -q .; then
	dirty=" (with uncommitted changes)"
fi
load=$(cut -d' ' -f1-3 /proc/loadavg)

sections=("$tmp/s1.md" "$tmp/s2.md" "$tmp/s3.md" "$tmp/s4.md" "$tmp/s5.md")
"${drv[@]}" replay -tapgate "$tmp/tapgate" -dir "$tmp" -requests "$requests" -runs "$runs" >"${sections[0]}"
"${drv[@]}" live -tapgate "$tmp/tapgate" -window "$window" -runs 2 >"${sections[1]}"
"${drv[@]}" memory -tapgate "$tmp/tapgate" -requests "$memory" >"${sections[2]}"
"${drv[@]}" accuracy -n "$accuracy_n" >"${sections[3]}"
"${drv[@]}" latency -tapgate "$tmp/tapgate" -runs "$latency_runs" >"${sections[4]}"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# make honesty owns the section between its markers: keep it as it is.
honesty="$tmp/honesty.md"
if [[ -f $out ]]; then
	awk '/<!-- honesty:begin -->/{f=1} f{print} /<!-- honesty:end -->/{f=0}' "$out" >"$honesty"
else
	: >"$honesty"
fi

{
	echo "# tapgate benchmarks"
	echo
	echo "Written by \`make bench\` (hack/bench.sh, driver in hack/bench/); every number below comes from one run of it."
	echo "Targets are for a 2-core machine. Re-run it to refresh this file."
	echo
	echo "| machine | |"
	echo "| --- | --- |"
	echo "| CPU | $cpu |"
	echo "| cores | $(nproc) |"
	echo "| memory | $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) |"
	echo "| Go | $(go env GOVERSION) $(go env GOOS)/$(go env GOARCH) |"
	echo "| date | $(date -u +%Y-%m-%dT%H:%M:%SZ) |"
	echo "| tapgate commit | $commit$dirty |"
	echo "| load average (1, 5, 15 min) at start / end | $load / $load_end |"
	echo "| duration of this run | $((SECONDS - start)) s |"
	echo
	if [[ ${BENCH_QUICK:-} == 1 ]]; then
		echo "**BENCH_QUICK=1: reduced sizes; these numbers are not the record.**"
		echo
	fi
	cat "${sections[@]}"
	if [[ -s $honesty ]]; then
		echo
		cat "$honesty"
	fi
} >"$out"
echo "bench: wrote $out in $((SECONDS - start)) s" >&2
