//! zwp_virtual_keyboard_v1 (`wtype`, remote input), on smithay's implementation with the
//! keymap guarded.
//!
//! smithay 0.7 hands the client's keymap fd and announced size straight to xkbcommon, which
//! maps and reads that many bytes: a memfd smaller than announced (or one the client shrinks
//! afterwards) makes the read fault with SIGBUS and the compositor dies (found by
//! lockstep-fuzz). So lockstep dispatches `zwp_virtual_keyboard_v1` itself: the keymap is
//! copied with `pread` into a sealed memfd of lockstep's own (a short read is the client's
//! error: `no_keymap` with a message), at most [`MAX_KEYMAP`] bytes, and smithay gets that
//! copy; every other request goes to smithay unchanged. The manager global is privileged
//! (`security_context.rs`).

use std::os::fd::{AsFd, OwnedFd};

use smithay::{
    reexports::{
        wayland_protocols_misc::zwp_virtual_keyboard_v1::server::{
            zwp_virtual_keyboard_manager_v1::ZwpVirtualKeyboardManagerV1,
            zwp_virtual_keyboard_v1::{self, ZwpVirtualKeyboardV1},
        },
        wayland_server::{
            delegate_dispatch, delegate_global_dispatch, Client, DataInit, Dispatch, DisplayHandle,
            Resource,
        },
    },
    wayland::virtual_keyboard::{
        VirtualKeyboardManagerGlobalData, VirtualKeyboardManagerState, VirtualKeyboardUserData,
    },
};
use tracing::debug;

use crate::state::State;

/// Largest keymap accepted (real xkb keymaps are tens of KiB).
pub const MAX_KEYMAP: u32 = 4 << 20;

impl Dispatch<ZwpVirtualKeyboardV1, VirtualKeyboardUserData<State>> for State {
    fn request(
        state: &mut Self,
        client: &Client,
        keyboard: &ZwpVirtualKeyboardV1,
        request: zwp_virtual_keyboard_v1::Request,
        data: &VirtualKeyboardUserData<State>,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        let request = match request {
            zwp_virtual_keyboard_v1::Request::Keymap { format, fd, size } => {
                match copy_keymap(&fd, size) {
                    Ok(copy) => zwp_virtual_keyboard_v1::Request::Keymap {
                        format,
                        fd: copy,
                        size,
                    },
                    Err(why) => {
                        debug!(keyboard = ?keyboard.id(), %why, "virtual keyboard keymap refused");
                        keyboard.post_error(zwp_virtual_keyboard_v1::Error::NoKeymap, why);
                        return;
                    }
                }
            }
            other => other,
        };
        <VirtualKeyboardManagerState as Dispatch<
            ZwpVirtualKeyboardV1,
            VirtualKeyboardUserData<State>,
            State,
        >>::request(state, client, keyboard, request, data, dh, data_init);
    }
}

/// Copies `size` bytes of the client's keymap into a sealed memfd of our own.
fn copy_keymap(fd: &OwnedFd, size: u32) -> Result<OwnedFd, String> {
    if size == 0 || size > MAX_KEYMAP {
        return Err(format!(
            "keymap size {size} is out of range (1 to {MAX_KEYMAP} bytes)"
        ));
    }
    let mut bytes = vec![0u8; size as usize];
    let mut done = 0;
    while done < bytes.len() {
        match rustix::io::pread(fd, &mut bytes[done..], done as u64) {
            Ok(0) => {
                return Err(format!(
                    "the keymap fd holds {done} bytes, fewer than the announced {size}"
                ))
            }
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(format!("the keymap fd cannot be read: {err}")),
        }
    }
    let copy = rustix::fs::memfd_create(
        "lockstep-virtual-keymap",
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
    )
    .map_err(|err| format!("no memory for the keymap: {err}"))?;
    let mut written = 0;
    while written < bytes.len() {
        match rustix::io::write(copy.as_fd(), &bytes[written..]) {
            Ok(n) => written += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(format!("no memory for the keymap: {err}")),
        }
    }
    // Nobody can shrink our copy under xkbcommon's mapping.
    let _ = rustix::fs::fcntl_add_seals(
        &copy,
        rustix::fs::SealFlags::SHRINK | rustix::fs::SealFlags::GROW | rustix::fs::SealFlags::WRITE,
    );
    Ok(copy)
}

delegate_global_dispatch!(State: [ZwpVirtualKeyboardManagerV1: VirtualKeyboardManagerGlobalData] => VirtualKeyboardManagerState);
delegate_dispatch!(State: [ZwpVirtualKeyboardManagerV1: ()] => VirtualKeyboardManagerState);
