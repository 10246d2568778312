//! wp_security_context_v1: clients that come through a sandbox's security context do not see
//! the privileged globals (the rule in `handlers/security_context.rs`), and others do.

use std::{
    os::{fd::AsFd, unix::net::UnixListener},
    time::Duration,
};

use wayland_protocols::wp::security_context::v1::client::{
    wp_security_context_manager_v1::WpSecurityContextManagerV1,
    wp_security_context_v1::WpSecurityContextV1,
};

use crate::{client::ClientData, fixture::Fixture};

wayland_client::delegate_noop!(ClientData: ignore WpSecurityContextManagerV1);
wayland_client::delegate_noop!(ClientData: ignore WpSecurityContextV1);

/// The globals only clients outside a security context may see.
const PRIVILEGED: &[&str] = &[
    "zwlr_screencopy_manager_v1",
    "zwlr_data_control_manager_v1",
    "ext_data_control_manager_v1",
    "zwp_virtual_keyboard_manager_v1",
    "zwp_input_method_manager_v2",
    "wp_security_context_manager_v1",
    "zwlr_layer_shell_v1",
    "ext_session_lock_manager_v1",
];

#[test]
fn sandboxed_clients_do_not_see_privileged_globals() {
    let mut f = Fixture::new();
    let host = f.add_client();
    let globals = f.client(host).data.globals.clone();
    for name in PRIVILEGED {
        assert!(globals.contains_key(*name), "{name} is not offered at all");
    }
    // The sandbox engine's part: a listening socket and a close fd, handed to lockstep.
    let dir = std::env::temp_dir().join(format!("lockstep-sc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sandbox.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind the sandbox socket");
    let (close_read, _close_write) = rustix::pipe::pipe().expect("pipe");
    let (global, _) = globals["wp_security_context_manager_v1"];
    let cl = f.client(host);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager: WpSecurityContextManagerV1 = registry.bind(global, 1, &cl.qh, ());
    let context = manager.create_listener(listener.as_fd(), close_read.as_fd(), &cl.qh, ());
    context.set_sandbox_engine("org.example.sandbox".into());
    context.set_app_id("org.example.App".into());
    context.commit();
    f.roundtrip(host);
    // The sandboxed app connects through the sandbox's socket.
    let stream = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    let sandboxed = f.connect_client(stream);
    let seen = f.client(sandboxed).data.globals.clone();
    assert!(seen.contains_key("wl_compositor"), "{seen:?}");
    assert!(seen.contains_key("xdg_wm_base"), "{seen:?}");
    for name in PRIVILEGED {
        assert!(!seen.contains_key(*name), "a sandboxed client sees {name}");
    }
    // It can still put a window on screen.
    f.map_window(sandboxed, 40, 30, crate::GREEN);
    f.run_for(Duration::from_millis(50));
    assert_eq!(f.client(sandboxed).protocol_error(), None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_security_context_whose_listen_fd_is_no_socket_ends_only_that_context() {
    // smithay 0.7's listener returned accept's EINVAL/ENOTSOCK, which stopped lockstep's
    // whole event loop (found by lockstep-fuzz).
    let mut f = Fixture::new();
    let host = f.add_client();
    f.map_window(host, 40, 30, crate::GREEN);
    let (global, _) = f.client(host).data.globals["wp_security_context_manager_v1"];
    let (not_a_socket, _keep) = rustix::pipe::pipe().expect("pipe");
    let (close_read, _close_write) = rustix::pipe::pipe().expect("pipe");
    let cl = f.client(host);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager: WpSecurityContextManagerV1 = registry.bind(global, 1, &cl.qh, ());
    let context = manager.create_listener(not_a_socket.as_fd(), close_read.as_fd(), &cl.qh, ());
    context.commit();
    f.roundtrip(host);
    // Make the "listening socket" readable, so the loop tries to accept on it.
    rustix::io::write(&_keep, b"x").expect("write");
    f.run_for(Duration::from_millis(100));
    f.roundtrip(host);
    f.map_window(host, 20, 20, crate::GREEN);
}
