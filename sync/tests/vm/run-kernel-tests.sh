#!/usr/bin/env bash
# run-kernel-tests.sh - build every lockstep-sync test binary statically and run them all in
# the qemu VM (vgem, vkms, timeline syncobjs, SYNCOBJ_EVENTFD, sw_sync).
#
# Usage: sync/tests/vm/run-kernel-tests.sh [extra args for the test binaries]
#
# The VM runner is $LOCKSTEP_VM_RUN if set, else the project's vm/run.sh, else the reference
# recipe ../shared/vm/run.sh beside the repository. Inside the guest LOCKSTEP_REQUIRE_KERNEL=1
# turns every "skip: no device" into a failure. Exit status: the guest's (0 = all passed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
run=${LOCKSTEP_VM_RUN:-}
if [ -z "$run" ]; then
	for candidate in "$repo/vm/run.sh" "$repo/../shared/vm/run.sh"; do
		if [ -x "$candidate" ]; then run=$candidate; break; fi
	done
fi
[ -n "$run" ] || { echo "run-kernel-tests: no VM runner found (set LOCKSTEP_VM_RUN)" >&2; exit 2; }

target=${LOCKSTEP_STATIC_TARGET_DIR:-${CARGO_TARGET_DIR:-$repo/target}-static}
echo "run-kernel-tests: building static test binaries into $target" >&2
mapfile -t bins < <(
	cd "$repo" &&
	CARGO_TARGET_DIR=$target RUSTFLAGS="-C target-feature=+crt-static" \
		cargo test -p lockstep-sync --all-features --no-run --target x86_64-unknown-linux-gnu \
		--message-format=json 2>/dev/null |
	grep -o '"executable":"[^"]*"' | sed -e 's/^"executable":"//' -e 's/"$//'
)
[ "${#bins[@]}" -gt 0 ] || { echo "run-kernel-tests: build produced no test binaries" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/lockstep-sync-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
files=()
{
	echo '#!/bin/sh'
	echo 'export LOCKSTEP_REQUIRE_KERNEL=1 RUST_BACKTRACE=1'
	echo 'rc=0'
	for b in "${bins[@]}"; do
		name=$(basename "$b")
		files+=(-f "$b:/vmlab/tests/$name")
		printf 'echo "== %s"; /vmlab/tests/%s --test-threads=1 %s || rc=1\n' "$name" "$name" "$*"
	done
	echo 'exit $rc'
} >"$work/guest.sh"
chmod +x "$work/guest.sh"
VMLAB_MEM=${VMLAB_MEM:-2G} "$run" -t "${LOCKSTEP_VM_TIMEOUT:-900}" "${files[@]}" "$work/guest.sh"
