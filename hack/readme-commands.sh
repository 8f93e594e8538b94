#!/usr/bin/env bash
# Runs the README's quick-start commands exactly as written, so CI proves
# what a newcomer types works. Usage: readme-commands.sh first|second, or
# readme-commands.sh is-second CMD to fail when the README's test command is
# no longer CMD (so .ci/run, which calls it literally, stays in step).
set -euo pipefail
cd "$(dirname "$0")/.."
# The first ```sh block of README.md holds the two commands, one per line.
mapfile -t cmds < <(awk '/^```sh$/{f=1;next} /^```$/{if(f)exit} f && !/^#/ && NF' README.md)
if ((${#cmds[@]} != 2)); then
	echo "README.md must open with a \`\`\`sh block of exactly two commands, found ${#cmds[@]}" >&2
	exit 1
fi
case "${1:-}" in
first)
	echo "+ ${cmds[0]}"
	set +e
	out="$(bash -c "${cmds[0]}" 2>&1)"
	rc=$?
	set -e
	printf '%s\n' "$out"
	# The quick start gates a healthy deployment and a broken canary: it
	# must show both verdicts, and must not end in a usage or infra error.
	if ((rc != 0 && rc != 1)); then
		echo "first README command exited $rc" >&2
		exit 1
	fi
	if ! grep -q "PASS" <<<"$out" || ! grep -q "FAIL" <<<"$out"; then
		echo "first README command did not show both a PASS and a FAIL" >&2
		exit 1
	fi
	;;
second)
	echo "+ ${cmds[1]}"
	bash -c "${cmds[1]}"
	;;
is-second)
	if [[ "${cmds[1]}" != "${2:-}" ]]; then
		echo "README's test command is '${cmds[1]}', .ci/run runs '${2:-}': update .ci/run" >&2
		exit 1
	fi
	;;
*)
	echo "usage: $0 first|second|is-second CMD" >&2
	exit 2
	;;
esac
