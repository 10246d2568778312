#!/bin/sh
# The kms-session stage's check (scripts/test) of output management on KMS, run in the VM
# guest as a client of lockstep with a real wlr-randr: `--off` must switch the vkms CRTC off
# for good, `--on` must light it again with new frames reaching the display.
#
# What the kernel says is read from DRM's debugfs: `state` (the atomic state: the CRTC's
# enable/active, which CRTC the connector and the primary plane use) and vkms's per-frame CRC
# of what it scans out (crtc-0/crc/data: one line per vblank while the CRTC is active). With
# weston-simple-shm animating, frames shown after `--on` give CRCs that change.
set -u
out=Virtual-1
dri=
for name in /sys/kernel/debug/dri/*/name; do
	grep -q vkms "$name" && dri=${name%/name}
done
[ -n "$dri" ] || { echo "toggle: no vkms in /sys/kernel/debug/dri"; exit 1; }

# One object's block of the atomic state: "crtc-0", "Virtual-1", "plane-0".
block() { awk -v n="$1" '/^[a-z]/ { show = ($2 == n) } show' "$dri/state"; }
crtc_is() { block crtc-0 | grep -q "enable=$1" && block crtc-0 | grep -q "active=$1"; }
# Waits up to $1 seconds for the command after it to succeed.
within() {
	t=$(($1 * 5))
	shift
	while [ "$t" -gt 0 ]; do
		"$@" && return 0
		sleep 0.2
		t=$((t - 1))
	done
	return 1
}
fail() { echo "toggle: FAIL $*"; cat "$dri/state"; exit 1; }

crtc_is 1 || fail "the CRTC is not lit before --off"
wlr-randr --output "$out" --off || fail "wlr-randr --off exited with $?"
off() {
	crtc_is 0 && block "$out" | grep -q 'crtc=(null)' &&
		block plane-0 | grep -q 'crtc=(null)' && block plane-0 | grep -q 'fb=0'
}
within 5 off || fail "after --off the CRTC, connector or primary plane is still in use"
wlr-randr | grep -q "Enabled: no" || fail "wlr-randr does not list $out as off"
lockstep msg outputs | grep -q "^$out:" && fail "lockstep msg outputs still lists $out"
echo "toggle: --off: crtc-0 enable=0 active=0, $out and the primary plane unbound"
sleep 1
off || fail "something lit the CRTC again while the output was off"

wlr-randr --output "$out" --on || fail "wlr-randr --on exited with $?"
on() {
	crtc_is 1 && block "$out" | grep -q 'crtc=crtc-0' && block plane-0 | grep -q 'crtc=crtc-0'
}
within 10 on || fail "after --on the CRTC is not lit"
wlr-randr | grep -q "Enabled: yes" || fail "wlr-randr does not list $out as on"
# llvmpipe under qemu is slow to draw the first frames: up to 60 s for one to be presented.
rendered() { lockstep msg outputs --planes | grep -q "(primary): composited frame"; }
within 60 rendered || fail "no composited frame on the primary plane after --on"
# 240 vblanks (4 s) of CRCs: present (the CRTC scans out) and changing (new frames arrive).
timeout 20 head -n 240 "$dri/crtc-0/crc/data" >/tmp/toggle-crc || fail "no CRCs from vkms"
crcs=$(awk '{ print $2 }' /tmp/toggle-crc | sort -u | wc -l)
lines=$(wc -l </tmp/toggle-crc)
[ "$lines" -ge 240 ] || fail "only $lines CRC lines"
[ "$crcs" -ge 2 ] || fail "the screen did not change over $lines frames (CRC $(head -n 1 /tmp/toggle-crc))"
echo "toggle: --on: crtc-0 lit, $lines vblanks scanned out with $crcs different CRCs"
