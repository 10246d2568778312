# shellcheck shell=bash
# Shared by vm/test, vm/boot, vm/run-session and vm/build-kernel (sourced, not run).
#
# - where the kernel comes from (vm_kernel_dir): $LOCKSTEP_VM_KERNEL, else the prebuilt one in
#   ../shared/vm/prebuilt next to the repo (CI has it), else a cached build of our own;
# - qemu (vm_ensure_qemu): installed with apt when missing and we are root;
# - the per-run initramfs layer (layer_*): files, programs with their shared libraries, the
#   guest command; appended to the kernel dir's base.cpio (busybox) at boot;
# - the boot itself (vm_boot): qemu TCG, serial console streamed, exit status from the guest.
#
# A kernel dir holds bzImage, base.cpio (at least /bin/busybox and /dev/console),
# gen_init_cpio (the kernel's usr/gen_init_cpio) and, optionally, kernel.config.

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VM_REPO=$(cd "$VM_DIR/.." && pwd)
VM_FRAGMENT=$VM_DIR/kernel/lockstep.config
VM_HOME=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
VM_CACHE_ROOT=${LOCKSTEP_VM_CACHE:-${XDG_CACHE_HOME:-$VM_HOME/.cache}/lockstep/vm}

vm_log() { printf 'lockstep-vm: %s\n' "$*" >&2; }
vm_die() {
	vm_log "error: $*"
	exit 125
}

# Seconds since $1 (an $EPOCHREALTIME), with two decimals.
vm_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

# ------------------------------------------------------------------------------------- qemu

vm_ensure_qemu() {
	command -v qemu-system-x86_64 >/dev/null && return 0
	if [ "$(id -u)" != 0 ]; then
		vm_log "qemu-system-x86_64 is missing; install it with:"
		vm_log "  sudo apt-get install -y qemu-system-x86"
		exit 125
	fi
	vm_log "installing qemu-system-x86 (apt)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2 || vm_die "apt-get update failed"
	apt-get install -y -qq --no-install-recommends qemu-system-x86 >&2 ||
		vm_die "apt-get install qemu-system-x86 failed"
	command -v qemu-system-x86_64 >/dev/null || vm_die "qemu-system-x86_64 still missing"
}

# ----------------------------------------------------------------------------------- kernel

# The options of our fragment that a kernel.config lacks (empty: all there).
vm_missing_options() { # CONFIG_FILE
	local opt
	# shellcheck disable=SC2013 # one option per line, no spaces
	for opt in $(sed -n 's/^\(CONFIG_[A-Z0-9_]*\)=y$/\1/p' "$VM_FRAGMENT"); do
		grep -qx "$opt=y" "$1" || printf '%s ' "$opt"
	done
}

vm_kernel_dir_ok() { # DIR
	local f
	for f in bzImage base.cpio gen_init_cpio; do [ -f "$1/$f" ] || return 1; done
}

# Cache key: everything that goes into a kernel we build ourselves.
vm_cache_key() {
	cat "$VM_FRAGMENT" "$VM_DIR"/kernel/patches/*.patch "$VM_DIR/kernel/versions" |
		sha256sum | cut -c1-12
}

# Sets VM_KERNEL_DIR, building the kernel into the cache when nothing else fits.
vm_kernel_dir() {
	local prebuilt missing
	if [ -n "${LOCKSTEP_VM_KERNEL:-}" ]; then
		VM_KERNEL_DIR=$LOCKSTEP_VM_KERNEL
		vm_kernel_dir_ok "$VM_KERNEL_DIR" ||
			vm_die "LOCKSTEP_VM_KERNEL=$VM_KERNEL_DIR lacks bzImage, base.cpio or gen_init_cpio"
		if [ -f "$VM_KERNEL_DIR/kernel.config" ]; then
			missing=$(vm_missing_options "$VM_KERNEL_DIR/kernel.config")
			[ -z "$missing" ] || vm_log "warning: LOCKSTEP_VM_KERNEL lacks $missing"
		fi
		return 0
	fi
	prebuilt=$VM_REPO/../shared/vm/prebuilt
	if vm_kernel_dir_ok "$prebuilt"; then
		missing=""
		[ -f "$prebuilt/kernel.config" ] && missing=$(vm_missing_options "$prebuilt/kernel.config")
		if [ -z "$missing" ]; then
			VM_KERNEL_DIR=$(cd "$prebuilt" && pwd)
			return 0
		fi
		vm_log "the prebuilt kernel in $prebuilt lacks $missing; using our own build"
	fi
	VM_KERNEL_DIR=$VM_CACHE_ROOT/$(vm_cache_key)
	if ! vm_kernel_dir_ok "$VM_KERNEL_DIR"; then
		vm_log "no cached kernel in $VM_KERNEL_DIR: building it once (~7 min on 2 cores)"
		"$VM_DIR/build-kernel" "$VM_KERNEL_DIR" >&2 || vm_die "kernel build failed"
	fi
}

# --------------------------------------------------------------------------- initramfs layer
#
# gen_init_cpio lines collected in $VM_WORK/layer.list; parents of every path are added once.

declare -A VM_LAYER_DIRS=()
VM_WORK=""

# Makes the scratch dir (removed on exit) and starts an empty layer.
layer_init() {
	VM_WORK=$(mktemp -d "${TMPDIR:-/tmp}/lockstep-vm.XXXXXX")
	# shellcheck disable=SC2064 # expand now: the path is fixed
	trap "rm -rf '$VM_WORK'" EXIT
	: >"$VM_WORK/layer.list"
	VM_LAYER_DIRS=([/]=1)
	layer_file "$VM_DIR/guest/init" /init 0755
}

layer_dir() { # GUEST_DIR
	local d=$1 parents=()
	while [ -z "${VM_LAYER_DIRS[$d]:-}" ]; do
		parents=("$d" "${parents[@]+"${parents[@]}"}")
		VM_LAYER_DIRS[$d]=1
		d=$(dirname "$d")
	done
	for d in "${parents[@]+"${parents[@]}"}"; do
		echo "dir $d 0755 0 0" >>"$VM_WORK/layer.list"
	done
}

layer_file() { # HOST GUEST [MODE]
	local host=$1 guest=$2 mode=${3:-}
	[ -e "$host" ] || vm_die "missing file $host"
	[ -n "$mode" ] || mode=$(stat -L -c %a "$host")
	layer_dir "$(dirname "$guest")"
	echo "file $guest $(realpath "$host") $mode 0 0" >>"$VM_WORK/layer.list"
}

# Writes CONTENT (stdin) to GUEST.
layer_text() { # GUEST [MODE]
	local tmp
	tmp=$(mktemp "$VM_WORK/text.XXXXXX")
	cat >"$tmp"
	layer_file "$tmp" "$1" "${2:-0644}"
}

# A directory tree: files, symlinks (kept as links) and directories.
layer_tree() { # HOST_DIR GUEST_DIR
	local host=$1 guest=$2 rel type
	[ -d "$host" ] || vm_die "missing directory $host"
	layer_dir "$guest"
	while IFS= read -r -d '' rel; do
		rel=${rel#./}
		[ "$rel" = . ] && continue
		type=$(stat -c %F "$host/$rel")
		case $type in
		directory) layer_dir "$guest/$rel" ;;
		"symbolic link")
			layer_dir "$(dirname "$guest/$rel")"
			echo "slink $guest/$rel $(readlink "$host/$rel") 0777 0 0" >>"$VM_WORK/layer.list"
			;;
		*) layer_file "$host/$rel" "$guest/$rel" ;;
		esac
	done < <(cd "$host" && find . -print0)
}

# A program or shared object plus every shared library `ldd` names, each at the path ldd
# prints (so the guest's ld.so finds them where the host's did).
layer_binary() { # HOST GUEST
	local host=$1 guest=$2 out line lib
	[ -f "$host" ] || vm_die "missing program $host"
	layer_file "$host" "$guest" 0755
	out=$(ldd "$host" 2>&1) || return 0 # "not a dynamic executable": static, nothing to add
	while IFS= read -r line; do
		case $line in
		*"=> not found"*) vm_die "$host needs ${line%% *}, which ldd cannot find" ;;
		*statically\ linked*) return 0 ;;
		*" => "/*) lib=${line#*=> } ;;
		*/*) lib=${line#"${line%%[! 	]*}"} ;; # the loader: "/lib64/ld-linux-x86-64.so.2 (0x...)"
		*) continue ;;                             # linux-vdso.so.1
		esac
		lib=${lib%% (*}
		[ -n "${VM_LAYER_LIBS[$lib]:-}" ] && continue
		VM_LAYER_LIBS[$lib]=1
		layer_file "$lib" "$lib" 0755
	done <<<"$out"
}
declare -A VM_LAYER_LIBS=()

# Programs as HOST[:GUEST] specs (HOST may be a name on PATH): each with its libraries. GUEST
# defaults to /lockstep/bin/NAME (on the guest's PATH), or HOST's own path for a shared object
# (e.g. a plugin the program dlopens from a fixed directory).
add_bins() { # SPEC...
	local spec host guest
	for spec in "$@"; do
		host=${spec%%:*}
		guest=${spec#*:}
		if [ ! -f "$host" ]; then
			host=$(command -v "$host") || vm_die "no program $spec (not a file, not on PATH)"
		fi
		if [ "$spec" = "${spec%%:*}" ]; then
			case $(basename "$host") in
			*.so | *.so.*) guest=$(realpath -s "$host") ;;
			*) guest=/lockstep/bin/$(basename "$host") ;;
			esac
		fi
		layer_binary "$host" "$guest"
	done
}

# Files or directory trees as HOST[:GUEST] specs; GUEST defaults to /lockstep/NAME.
add_files() { # SPEC...
	local spec host guest
	for spec in "$@"; do
		host=${spec%%:*}
		guest=/lockstep/$(basename "$host")
		[ "$spec" = "$host" ] || guest=${spec#*:}
		if [ -d "$host" ]; then
			layer_tree "$host" "$guest"
		else
			layer_file "$host" "$guest"
		fi
	done
}

# Mesa's GBM + EGL + GLES stack with its software KMS driver (kms_swrast: llvmpipe on a
# display-only device such as vkms), for GLES composition in the guest. Everything is
# dlopen()ed (libglvnd's libEGL picks the vendor from its JSON file, libgbm and libEGL_mesa
# load the DRI driver), so ldd of the program cannot see it: each piece is packed with its
# own ldd libraries (LLVM alone is about 100 MB of initramfs). Without 50_mesa.json
# eglInitialize fails with EGL_BAD_DISPLAY. mesa_env prints the environment the guest
# command needs: MESA_LOADER_DRIVER_OVERRIDE names the driver (vkms has no DRI driver of its
# own, and the loader would log that on every start), LP_NATIVE_VECTOR_WIDTH=128 makes
# llvmpipe about 5x faster under qemu's emulation of wide vectors.
add_mesa() {
	local lib=/usr/lib/x86_64-linux-gnu so
	for so in "$lib/dri/kms_swrast_dri.so" "$lib/libEGL.so.1" "$lib/libEGL_mesa.so.0" \
		"$lib/libgbm.so.1" "$lib/libGLESv2.so.2" "$lib/libglapi.so.0" "$lib/libGLdispatch.so.0"; do
		[ -e "$so" ] || vm_die "missing $so: install libgl1-mesa-dri libegl1 libegl-mesa0 libgbm1 libgles2 (scripts/deps does)"
		layer_binary "$(readlink -f "$so")" "$so"
	done
	layer_file /usr/share/glvnd/egl_vendor.d/50_mesa.json /usr/share/glvnd/egl_vendor.d/50_mesa.json
}
mesa_env() {
	echo "export MESA_LOADER_DRIVER_OVERRIDE=kms_swrast LP_NATIVE_VECTOR_WIDTH=128"
}

# The guest command: a busybox sh script run by /init as /lockstep/cmd.
layer_cmd() { layer_text /lockstep/cmd 0644; }

# -------------------------------------------------------------------------------------- boot

# Boots the kernel with base.cpio + the layer, streams the guest's console and returns the
# guest command's exit status; 124 on timeout; 125 when the VM died without one (a kernel
# panic, e.g. a WARN under panic_on_warn=1).
#
# Env: LOCKSTEP_VM_MEM (default 2G), LOCKSTEP_VM_APPEND (extra kernel arguments),
# VM_VERBOSE=1 (show the boot log), VM_PANIC_ON_WARN (default 1), VM_INTERACTIVE=1 (the
# terminal becomes the guest console, no timeout, no exit status).
vm_boot() { # TIMEOUT_SECONDS
	local timeout=$1 cmdline t0 line started="" rc="" panicked="" status
	local -a boot_log=()
	"$VM_KERNEL_DIR/gen_init_cpio" "$VM_WORK/layer.list" >"$VM_WORK/layer.cpio" ||
		vm_die "gen_init_cpio failed on $VM_WORK/layer.list"
	# The kernel unpacks concatenated newc archives in order: later files replace earlier ones.
	cat "$VM_KERNEL_DIR/base.cpio" "$VM_WORK/layer.cpio" >"$VM_WORK/initrd"

	# vkms.*: cursor, overlay and writeback (built-in module parameters). panic=-1 with qemu's
	# -no-reboot: a panic ends qemu at once. loglevel=5 shows kernel warnings (a WARN's
	# "cut here" block) but not the boot chatter. tsc=reliable: under TCG the TSC drifts
	# against jiffies and the clocksource watchdog would print warnings mid-test.
	cmdline="console=ttyS0 loglevel=5 panic=-1 reboot=t tsc=reliable"
	cmdline+=" vkms.enable_cursor=1 vkms.enable_overlay=1 vkms.enable_writeback=1"
	[ "${VM_PANIC_ON_WARN:-1}" = 1 ] && cmdline+=" panic_on_warn=1"
	cmdline+=" ${LOCKSTEP_VM_APPEND:-}"

	if [ "${VM_INTERACTIVE:-0}" = 1 ]; then
		# The terminal is the guest's console; Ctrl-A X quits qemu.
		qemu-system-x86_64 -machine pc -accel tcg -cpu max -smp 1 -m "${LOCKSTEP_VM_MEM:-2G}" \
			-nodefaults -no-user-config -display none -no-reboot -serial mon:stdio \
			-kernel "$VM_KERNEL_DIR/bzImage" -initrd "$VM_WORK/initrd" -append "$cmdline"
		return
	fi

	t0=$EPOCHREALTIME
	set +e
	timeout -k 5 "$timeout" qemu-system-x86_64 \
		-machine pc -accel tcg -cpu max -smp 1 -m "${LOCKSTEP_VM_MEM:-2G}" \
		-nodefaults -no-user-config -display none -no-reboot -serial stdio \
		-kernel "$VM_KERNEL_DIR/bzImage" -initrd "$VM_WORK/initrd" -append "$cmdline" \
		</dev/null 2>&1 | {
		while IFS= read -r line; do
			line=${line%$'\r'} # the serial console sends CRLF
			case $line in
			*@@LOCKSTEP_VM_START@@*)
				started=1
				vm_log "guest up after $(vm_since "$t0")s"
				;;
			*@@LOCKSTEP_VM_EXIT=*@@*)
				# Output without a final newline ends up in front of the marker.
				[ -n "${line%%@@LOCKSTEP_VM_EXIT=*}" ] && printf '%s\n' "${line%%@@LOCKSTEP_VM_EXIT=*}"
				rc=${line##*@@LOCKSTEP_VM_EXIT=}
				rc=${rc%%@@*}
				;;
			*)
				[ -n "$rc" ] && [ "${VM_VERBOSE:-0}" != 1 ] && continue # shutdown noise
				case $line in *"Kernel panic"*) panicked=1 ;; esac
				if [ -n "$started" ] || [ "${VM_VERBOSE:-0}" = 1 ]; then
					printf '%s\n' "$line"
				else
					boot_log+=("$line") # shown only if the guest never starts
				fi
				;;
			esac
		done
		# A guest that never reached its command: show how the boot went.
		[ -z "$started" ] && printf '%s\n' "${boot_log[@]+"${boot_log[@]}"}"
		printf '%s %s %s\n' "${rc:--}" "${panicked:-0}" "${started:-0}" >"$VM_WORK/result"
	}
	status=("${PIPESTATUS[@]}")
	set -e
	read -r rc panicked started <"$VM_WORK/result"
	vm_log "VM finished after $(vm_since "$t0")s"
	if [ "$rc" != - ]; then
		return "$rc"
	elif [ "${status[0]}" = 124 ] || [ "${status[0]}" = 137 ]; then
		vm_log "error: timeout: the VM ran longer than ${timeout}s (raise it with -t)"
		return 124
	elif [ "$panicked" = 1 ]; then
		vm_log "error: the guest kernel panicked (see above); with panic_on_warn=1 a kernel WARN does that"
		return 125
	else
		vm_log "error: the VM exited (qemu status ${status[0]}) without the guest's exit status"
		return 125
	fi
}
