#!/usr/bin/env bash
# Benchmark: frames on screen at the first vblank they could make, lockstep on KMS (vkms in
# lockstep's VM). Runs the ignored test `kms_on_time` (compositor/tests/in_process/
# kms_on_time.rs, which says what it measures) in the VM, release build, and prints its
# `BENCH on-time` lines. Timing is never asserted; results go to BENCHMARKS.md by hand.
#
# Usage: bench/kms-on-time.sh [FILTER...]
#   FILTER  test name filters (default: the four timing cases with pixman composition,
#           kms_on_time_fullscreen_1, _fullscreen_10, _window_1, _window_10;
#           kms_on_time_gles runs the two composited ones with GLES composition on Mesa's
#           kms_swrast, which is packed into the VM); kms_on_time_crc runs one client of each
#           kind with vkms's CRCs read and checked (vkms then composes every vblank on the
#           CPU, which delays everything else in the one-vCPU guest, so the timing cases
#           leave CRCs off)
# Env:    CARGO_TARGET_DIR, LOCKSTEP_VM_* as for vm/test
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
wl=/usr/lib/x86_64-linux-gnu
gl=/lib/x86_64-linux-gnu
[ $# -gt 0 ] || set -- kms_on_time_fullscreen kms_on_time_window
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
cd "$ROOT"
vm/test --release --dynamic --mesa -p lockstep --test in_process \
	-f "$(readlink -f $wl/libwayland-client.so.0):$gl/libwayland-client.so.0" \
	-f "$(readlink -f $wl/libffi.so.8):$gl/libffi.so.8" \
	-f "$(readlink -f $gl/libpthread.so.0):$gl/libpthread.so.0" \
	-t 900 --test-timeout 850 \
	-- --ignored --nocapture "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
