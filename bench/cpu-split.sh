#!/usr/bin/env bash
# Where a compositor's CPU goes with one animating client: kernel, pixman, and its own code.
#
# Starts COMPOSITOR (lockstep --backend headless, or weston 10 headless with pixman) on one
# 1280x720@60 output with CLIENTS weston-simple-shm, lets it settle, then records SECONDS of
# `perf record -g` at 999 Hz and prints the compositor's CPU per second (schedstat, which
# includes perf's own overhead) and the share of samples in each shared object. Run it for
# both and multiply: the kernel's and pixman's shares are the part of the frame that the
# compositor's own code cannot remove (BENCHMARKS.md, "Where the floor is").
#
# Usage: bench/cpu-split.sh lockstep|weston [SECONDS [CLIENTS]]
#        (defaults 20 s and 1 client; needs perf, as root)
# Env:   LOCKSTEP=path/to/lockstep   (default: the release build in CARGO_TARGET_DIR or target/)
# Timing is never asserted; this only measures.
set -euo pipefail

WHO=${1:?usage: bench/cpu-split.sh lockstep|weston [SECONDS]}
DURATION=${2:-20}
CLIENTS=${3:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v perf >/dev/null || {
	echo "cpu-split.sh: perf not found (apt-get install linux-perf)" >&2
	exit 1
}
command -v weston-simple-shm >/dev/null || {
	echo "cpu-split.sh: weston-simple-shm not found (apt-get install weston)" >&2
	exit 1
}
WORK=$(mktemp -d /tmp/lockstep-split.XXXXXX)
chmod 700 "$WORK"
PIDS=()
cleanup() {
	kill "${PIDS[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

case $WHO in
lockstep)
	bin=${LOCKSTEP:-${CARGO_TARGET_DIR:-$ROOT/target}/release/lockstep}
	[[ -x $bin ]] || {
		echo "cpu-split.sh: no lockstep at $bin (cargo build --release -p lockstep)" >&2
		exit 1
	}
	mkdir -p "$WORK/config/lockstep"
	# Floating at the client's own size, as under weston (see bench/compositors.sh).
	printf '[layout]\nnew_windows = "floating"\nborder_width = 0\n' \
		>"$WORK/config/lockstep/config.toml"
	XDG_RUNTIME_DIR=$WORK XDG_CONFIG_HOME=$WORK/config "$bin" --backend headless \
		--socket split --output 1280x720@60 >"$WORK/out" 2>"$WORK/log" &
	;;
weston)
	XDG_RUNTIME_DIR=$WORK weston --backend=headless-backend.so --use-pixman --socket=split \
		--width=1280 --height=720 --no-config >"$WORK/log" 2>&1 &
	;;
*)
	echo "cpu-split.sh: compositor must be lockstep or weston, not $WHO" >&2
	exit 1
	;;
esac
comp=$!
PIDS+=("$comp")
for _ in $(seq 100); do
	[[ -S $WORK/split ]] && break
	sleep 0.1
done
[[ -S $WORK/split ]] || {
	echo "cpu-split.sh: $WHO did not start: $(tail -3 "$WORK/log")" >&2
	exit 1
}
sleep 1
for ((i = 0; i < CLIENTS; i++)); do
	XDG_RUNTIME_DIR=$WORK WAYLAND_DISPLAY=split weston-simple-shm >/dev/null 2>&1 &
	PIDS+=($!)
done
sleep 2
echo "recording $WHO with $CLIENTS client(s) for $DURATION s..." >&2
before=$(cut -d' ' -f1 "/proc/$comp/schedstat")
perf record -F 999 -g -p "$comp" -o "$WORK/perf.data" -- sleep "$DURATION" >/dev/null 2>&1
after=$(cut -d' ' -f1 "/proc/$comp/schedstat")
echo "$WHO: $(((after - before) / DURATION / 1000)) µs of CPU per second (under perf)," \
	"load $(cut -d' ' -f1 /proc/loadavg)"
perf report -i "$WORK/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
	grep '%' | head -10
