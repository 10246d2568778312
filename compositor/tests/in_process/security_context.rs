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
    "zwlr_output_manager_v1",
    "zwlr_output_power_manager_v1",
    "zwlr_foreign_toplevel_manager_v1",
    "ext_foreign_toplevel_list_v1",
    "zwlr_virtual_pointer_manager_v1",
    "zwlr_gamma_control_manager_v1",
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
fn a_listen_fd_that_is_not_a_listening_unix_socket_is_invalid_listen_fd() {
    // smithay 0.7 took any fd: a pipe made accept fail and stopped lockstep's whole event
    // loop (found by lockstep-fuzz), an eventfd was never readable and kept its listener and
    // both fds for good. The spec's answer is invalid_listen_fd.
    let connected = std::os::unix::net::UnixStream::pair().expect("socketpair");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp listener");
    let fds: Vec<(&str, std::os::fd::OwnedFd)> = vec![
        ("pipe", rustix::pipe::pipe().expect("pipe").0),
        (
            "eventfd",
            rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap(),
        ),
        ("connected socket", connected.0.into()),
        ("TCP listener", tcp.into()),
    ];
    for (what, fd) in fds {
        let mut f = Fixture::new();
        let good = f.add_client();
        f.map_window(good, 40, 30, crate::GREEN);
        let host = f.add_client();
        let (global, _) = f.client(host).data.globals["wp_security_context_manager_v1"];
        let (close_read, _close_write) = rustix::pipe::pipe().expect("pipe");
        let cl = f.client(host);
        let registry = cl.conn.display().get_registry(&cl.qh, ());
        let manager: WpSecurityContextManagerV1 = registry.bind(global, 1, &cl.qh, ());
        let context = manager.create_listener(fd.as_fd(), close_read.as_fd(), &cl.qh, ());
        context.commit();
        let got_error = f.wait_until(Duration::from_secs(2), |f| {
            f.client(host).protocol_error().is_some()
        });
        assert!(got_error, "no protocol error for a {what} as listen_fd");
        let (code, interface, _) = f.client(host).protocol_error().unwrap();
        assert_eq!(
            (code, interface.as_str()),
            (1, "wp_security_context_manager_v1"),
            "invalid_listen_fd for a {what}"
        );
        assert_eq!(
            f.server
                .state
                .core
                .protocols
                .security_context_listeners
                .get(),
            0
        );
        f.map_window(good, 20, 20, crate::GREEN);
        assert_eq!(f.client(good).protocol_error(), None);
    }
}

#[test]
fn security_context_listeners_are_capped_and_a_closed_one_makes_room() {
    // A listener lives until its close fd hangs up, which its creator decides: one that
    // passes fds that never hang up could make lockstep hold two fds per context forever.
    let max = lockstep::handlers::security_context::MAX_LISTENERS;
    let mut f = Fixture::new();
    let host = f.add_client();
    let (global, _) = f.client(host).data.globals["wp_security_context_manager_v1"];
    let cl = f.client(host);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager: WpSecurityContextManagerV1 = registry.bind(global, 1, &cl.qh, ());
    let dir = std::env::temp_dir().join(format!("lockstep-sc-cap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listeners = |f: &Fixture| {
        f.server
            .state
            .core
            .protocols
            .security_context_listeners
            .get()
    };
    // Make a context whose socket is `dir/n.sock`; lockstep gets the only copy of the
    // listening fd, so the socket refuses connections once lockstep closes it.
    let create = |f: &mut Fixture, n: usize| {
        let path = dir.join(format!("{n}.sock"));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let (close_read, close_write) = rustix::pipe::pipe().expect("pipe");
        let cl = f.client(host);
        let context = manager.create_listener(listener.as_fd(), close_read.as_fd(), &cl.qh, ());
        context.commit();
        context.destroy();
        f.roundtrip(host);
        (path, close_write)
    };
    let mut open = Vec::new();
    for n in 0..max {
        open.push(create(&mut f, n));
    }
    assert_eq!(listeners(&f), max);
    let (over_path, _over_close) = create(&mut f, max);
    assert_eq!(
        listeners(&f),
        max,
        "the context over the limit is not listened on"
    );
    assert!(
        std::os::unix::net::UnixStream::connect(&over_path).is_err(),
        "the socket of the context over the limit still accepts connections"
    );
    // The creator closes one context (its close fd hangs up): room for a new one.
    let (first_path, first_close) = open.remove(0);
    drop(first_close);
    let closed = f.wait_until(Duration::from_secs(2), |f| listeners(f) == max - 1);
    assert!(closed, "hanging up a close fd did not close its listener");
    assert!(std::os::unix::net::UnixStream::connect(&first_path).is_err());
    let (path, _close) = create(&mut f, max + 1);
    assert_eq!(listeners(&f), max);
    let stream = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    let sandboxed = f.connect_client(stream);
    assert!(f
        .client(sandboxed)
        .data
        .globals
        .contains_key("wl_compositor"));
    assert_eq!(f.client(host).protocol_error(), None);
    let _ = std::fs::remove_dir_all(&dir);
}
