#!/usr/bin/env bash
# End-to-end benchmark: compositor CPU and memory, lockstep vs weston and sway.
#
# For each compositor (lockstep --backend headless, weston 10 headless with pixman, sway 1.7
# headless with pixman), all on one 1280x720@60 output, and each scenario on a fresh
# compositor:
#   idle   no client
#   N=1    one animating client (CLIENT, default weston-simple-shm; it animates at the
#          frame-callback rate)
#   N=10   ten of them
# Windows float at the size their client picks, without decorations, under all three
# (weston's desktop shell cannot tile; lockstep and sway are told to float), so each draws the
# same pixels: weston-simple-egl, for one, resizes to whatever a tiling layout gives it.
# it records the compositor's CPU time over the window (default 30 s after a 1 s settle): the
# nanoseconds on CPU of every thread of the compositor and of any helper process it spawned
# (e.g. weston-desktop-shell), from /proc/PID/task/TID/schedstat (the scheduler's own
# accounting, not the 10 ms ticks of utime/stime), its peak RSS (VmHWM) at the end, and how
# many clients were still running (a client that aborted is reported with its error). Then it
# prints a table and lockstep's ratios to the best peer.
#
# Usage: bench/compositors.sh [SECONDS]        (default 30; run as root for sway, see below)
# Env:   LOCKSTEP=path/to/lockstep             (default: release build, built if needed)
#        CLIENT="weston-simple-damage"         (the animating client; default weston-simple-shm,
#                                              which aborts under sway 1.7)
#        BENCH_USER=lsbench                    (unprivileged user for sway; created if root)
#        COMPOSITORS="lockstep weston sway"    (subset to run)
#
# sway refuses to run as root, so as root the script runs it as BENCH_USER (created with
# `useradd -m` when missing) with its own XDG_RUNTIME_DIR. Timing is never asserted; this
# only measures. Results go to BENCHMARKS.md by hand, with the machine and its load.
set -euo pipefail

DURATION=${1:-30}
CLIENT=${CLIENT:-weston-simple-shm}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_USER=${BENCH_USER:-lsbench}
COMPOSITORS=${COMPOSITORS:-"lockstep weston sway"}
WORK=$(mktemp -d /tmp/lockstep-bench.XXXXXX)
chmod 755 "$WORK"
PIDS_TO_KILL=()

cleanup() {
	local pid
	for pid in "${PIDS_TO_KILL[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	sleep 0.5
	for pid in "${PIDS_TO_KILL[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

die() {
	echo "compositors.sh: $*" >&2
	exit 1
}

command -v "$CLIENT" >/dev/null || die "$CLIENT not found (weston-simple-shm and -damage: apt-get install weston)"

if [[ -z ${LOCKSTEP:-} ]]; then
	target=${CARGO_TARGET_DIR:-$ROOT/target}
	echo "building lockstep (release)..." >&2
	(cd "$ROOT" && cargo build --release -p lockstep --quiet) || die "cargo build failed"
	LOCKSTEP=$target/release/lockstep
fi
[[ -x $LOCKSTEP ]] || die "no lockstep binary at $LOCKSTEP"

# Nanoseconds on CPU of every thread of PID and of all its descendants (schedstat's first
# field: time spent running, from the scheduler's clock).
tree_cpu_ns() {
	local root=$1 total=0 pid stat rest ppid fields task ns
	declare -A parent=()
	for stat in /proc/[0-9]*/stat; do
		pid=${stat#/proc/}
		pid=${pid%/stat}
		rest=$(cat "$stat" 2>/dev/null) || continue
		rest=${rest##*) }
		read -r -a fields <<<"$rest"
		parent[$pid]=${fields[1]}
	done
	local -a queue=("$root")
	local -A seen=()
	while ((${#queue[@]})); do
		pid=${queue[0]}
		queue=("${queue[@]:1}")
		[[ -n ${seen[$pid]:-} ]] && continue
		seen[$pid]=1
		for task in /proc/"$pid"/task/[0-9]*; do
			read -r ns _ <"$task/schedstat" 2>/dev/null || continue
			total=$((total + ns))
		done
		for ppid in "${!parent[@]}"; do
			[[ ${parent[$ppid]} == "$pid" ]] && queue+=("$ppid")
		done
	done
	echo "$total"
}

hwm_kb() {
	awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

wait_for() { # wait_for SECONDS CMD...: poll CMD until it succeeds
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.05
	done
}

# --- starting the compositors. Each sets COMP_PID, COMP_RUNTIME, COMP_SOCKET, COMP_LOG. ---

start_lockstep() {
	local tag=$1
	COMP_RUNTIME=$WORK/lockstep-$tag
	mkdir -m 700 "$COMP_RUNTIME"
	COMP_SOCKET=bench-$tag
	COMP_LOG=$COMP_RUNTIME/log
	mkdir -p "$COMP_RUNTIME/config/lockstep"
	# Windows float at the client's own size, without borders, as under weston (see the top).
	printf '[layout]\nnew_windows = "floating"\nborder_width = 0\n' \
		>"$COMP_RUNTIME/config/lockstep/config.toml"
	XDG_RUNTIME_DIR=$COMP_RUNTIME XDG_CONFIG_HOME=$COMP_RUNTIME/config \
		"$LOCKSTEP" --backend headless --socket "$COMP_SOCKET" --output 1280x720@60 \
		>"$COMP_RUNTIME/out" 2>"$COMP_LOG" &
	COMP_PID=$!
	PIDS_TO_KILL+=("$COMP_PID")
	wait_for 20 grep -qs "lockstep is ready" "$COMP_RUNTIME/out" || return 1
}

start_weston() {
	local tag=$1
	COMP_RUNTIME=$WORK/weston-$tag
	mkdir -m 700 "$COMP_RUNTIME"
	COMP_SOCKET=bench-$tag
	COMP_LOG=$COMP_RUNTIME/log
	XDG_RUNTIME_DIR=$COMP_RUNTIME weston --backend=headless-backend.so --use-pixman \
		--socket="$COMP_SOCKET" --width=1280 --height=720 --no-config \
		>"$COMP_LOG" 2>&1 &
	COMP_PID=$!
	PIDS_TO_KILL+=("$COMP_PID")
	wait_for 20 test -S "$COMP_RUNTIME/$COMP_SOCKET" || return 1
	sleep 1 # let weston-desktop-shell draw its panel and background
}

SWAY_AS=()
prepare_sway_user() {
	if ((EUID != 0)); then
		return 0
	fi
	if ! id "$BENCH_USER" >/dev/null 2>&1; then
		useradd -m "$BENCH_USER" || die "cannot create user $BENCH_USER for sway"
	fi
	SWAY_AS=(setpriv --reuid="$BENCH_USER" --regid="$BENCH_USER" --init-groups
		env HOME="$(getent passwd "$BENCH_USER" | cut -d: -f6)" USER="$BENCH_USER")
}

start_sway() {
	local tag=$1 socket
	COMP_RUNTIME=$WORK/sway-$tag
	mkdir -m 700 "$COMP_RUNTIME"
	((EUID == 0)) && chown "$BENCH_USER:" "$COMP_RUNTIME"
	COMP_LOG=$COMP_RUNTIME/log
	cat >"$COMP_RUNTIME/config" <<-EOF
		output HEADLESS-1 mode 1280x720@60Hz
		xwayland disable
		for_window [app_id=".*"] floating enable
		default_floating_border none
	EOF
	chmod 644 "$COMP_RUNTIME/config"
	"${SWAY_AS[@]}" env -u WAYLAND_DISPLAY -u DISPLAY XDG_RUNTIME_DIR="$COMP_RUNTIME" \
		WLR_BACKENDS=headless WLR_HEADLESS_OUTPUTS=1 WLR_RENDERER=pixman \
		WLR_LIBINPUT_NO_DEVICES=1 sway -c "$COMP_RUNTIME/config" >"$COMP_LOG" 2>&1 &
	COMP_PID=$!
	PIDS_TO_KILL+=("$COMP_PID")
	wait_for 20 compgen -G "$COMP_RUNTIME/wayland-*[0-9]" >/dev/null || return 1
	socket=$(compgen -G "$COMP_RUNTIME/wayland-*[0-9]" | head -1)
	COMP_SOCKET=$(basename "$socket")
	sleep 0.5
}

# --- one scenario ------------------------------------------------------------------------

# run_case COMPOSITOR N: prints "cpu_ms peak_rss_mb alive/N note"
run_case() {
	local comp=$1 n=$2 i t0 t1 alive=0 note="" err
	local -a clients=()
	if ! "start_$comp" "$n"; then
		echo "- - - failed to start: $(tail -3 "$COMP_LOG" | tr '\n' ' ')"
		kill -TERM "$COMP_PID" 2>/dev/null || true
		return
	fi
	for ((i = 0; i < n; i++)); do
		XDG_RUNTIME_DIR=$COMP_RUNTIME WAYLAND_DISPLAY=$COMP_SOCKET \
			"$CLIENT" >"$COMP_RUNTIME/client-$i.log" 2>&1 &
		clients+=($!)
		PIDS_TO_KILL+=($!)
	done
	sleep 1 # clients connect and map; measure the steady state
	t0=$(tree_cpu_ns "$COMP_PID")
	sleep "$DURATION"
	t1=$(tree_cpu_ns "$COMP_PID")
	for ((i = 0; i < n; i++)); do
		if kill -0 "${clients[$i]}" 2>/dev/null; then
			alive=$((alive + 1))
		else
			err=$(grep -v '^$' "$COMP_RUNTIME/client-$i.log" | tail -1)
			[[ -z $note ]] && note="client: ${err:-exited}"
		fi
	done
	local rss
	rss=$(hwm_kb "$COMP_PID")
	if ! kill -0 "$COMP_PID" 2>/dev/null; then
		note="compositor died: $(tail -2 "$COMP_LOG" | tr '\n' ' ')"
	fi
	for i in "${clients[@]}"; do kill -TERM "$i" 2>/dev/null || true; done
	kill -TERM "$COMP_PID" 2>/dev/null || true
	wait "$COMP_PID" 2>/dev/null || true
	for i in "${clients[@]}"; do wait "$i" 2>/dev/null || true; done
	awk -v t=$((t1 - t0)) -v rss="$rss" -v a="$alive" -v n="$n" -v note="$note" \
		'BEGIN { printf "%.1f %.1f %d/%d %s\n", t / 1e6, rss / 1024, a, n, note }'
}

# --- main --------------------------------------------------------------------------------

for comp in $COMPOSITORS; do
	case $comp in
	lockstep) ;;
	weston) command -v weston >/dev/null || die "weston not found (apt-get install weston)" ;;
	sway)
		command -v sway >/dev/null || die "sway not found (apt-get install sway)"
		prepare_sway_user
		;;
	*) die "unknown compositor $comp" ;;
	esac
done

# shellcheck source=/dev/null
echo "machine: $(nproc) cores, $(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "lockstep: $LOCKSTEP ($("$LOCKSTEP" --version 2>/dev/null || echo '?'))"
echo "window: ${DURATION} s per case, 1280x720@60, $CLIENT clients; CPU in ms (schedstat ns)"
echo
declare -A CPU RSS OK
printf '%-10s %-6s %10s %10s %8s %6s  %s\n' compositor case "CPU ms" "peak MB" clients load1 note
for comp in $COMPOSITORS; do
	for n in 0 1 10; do
		read -r cpu rss alive note < <(run_case "$comp" "$n")
		label=$([[ $n == 0 ]] && echo idle || echo "N=$n")
		CPU[$comp,$n]=$cpu
		RSS[$comp,$n]=$rss
		OK[$comp,$n]=0
		[[ $cpu != - && ${alive%/*} == "${alive#*/}" && -z $note ]] && OK[$comp,$n]=1
		printf '%-10s %-6s %10s %10s %8s %6s  %s\n' "$comp" "$label" "$cpu" "$rss" \
			"$([[ $n == 0 ]] && echo - || echo "$alive")" "$(cut -d' ' -f1 /proc/loadavg)" "$note"
	done
done

echo
echo "lockstep / best peer (lower is better; a peer that lost clients or failed is left out):"
for n in 0 1 10; do
	label=$([[ $n == 0 ]] && echo idle || echo "N=$n")
	best_cpu="" best_cpu_who="" best_rss=""
	for comp in $COMPOSITORS; do
		[[ $comp == lockstep ]] && continue
		[[ ${OK[$comp,$n]} == 1 ]] || continue
		if [[ -z $best_cpu ]] || awk -v a="${CPU[$comp,$n]}" -v b="$best_cpu" 'BEGIN { exit !(a < b) }'; then
			best_cpu=${CPU[$comp,$n]} best_cpu_who=$comp
		fi
		if [[ -z $best_rss ]] || awk -v a="${RSS[$comp,$n]}" -v b="$best_rss" 'BEGIN { exit !(a < b) }'; then
			best_rss=${RSS[$comp,$n]}
		fi
	done
	if [[ -z $best_cpu || ${OK[lockstep,$n]:-0} != 1 ]]; then
		printf '  %-5s n/a\n' "$label"
		continue
	fi
	awk -v label="$label" -v l="${CPU[lockstep,$n]}" -v lr="${RSS[lockstep,$n]}" \
		-v b="$best_cpu" -v who="$best_cpu_who" -v br="$best_rss" 'BEGIN {
			if (b + 0 > 0) cpu = sprintf("%.2fx", l / b)
			else cpu = (l + 0 == 0) ? "both 0" : "peer 0"
			printf "  %-5s CPU %s (lockstep %.1f ms, best peer %s %.1f ms); peak RSS %.2fx\n",
				label, cpu, l, who, b, lr / br
		}'
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
