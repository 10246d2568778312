//! Client memory accounting and `[limits]` (`client_memory.rs`): the figures `msg clients`
//! shows follow what a real client creates and destroys, and the request that would go over
//! a limit gets the documented protocol error while lockstep and other clients carry on.

use std::{os::fd::AsFd, time::Duration};

use lockstep::client_memory::{ClientInfo, Figures};
use wayland_client::protocol::{wl_buffer::WlBuffer, wl_shm, wl_shm_pool::WlShmPool};
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_buffer_params_v1;

use crate::{
    fixture::{ClientId, Fixture, DEFAULT_OUTPUT},
    robustness::{
        assert_good_client_unharmed, bind_dmabuf, good_client, heap_dmabuf, memfd, Created,
        ParamsAnswer, ARGB8888,
    },
};

fn with_limits(edit: impl FnOnce(&mut lockstep_config::LimitsConfig)) -> Fixture {
    let mut config = crate::fixture::floating_config();
    edit(&mut config.limits);
    Fixture::with_config(config, &[DEFAULT_OUTPUT])
}

fn report(f: &mut Fixture) -> lockstep::client_memory::ClientsReport {
    lockstep::client_memory::report(&mut f.server.state)
}

/// Adds a client and finds its connection number in `msg clients`.
fn add_client(f: &mut Fixture) -> (ClientId, u64) {
    let before: Vec<u64> = report(f).clients.iter().map(|c| c.connection).collect();
    let id = f.add_client();
    f.roundtrip(id);
    let connection = report(f)
        .clients
        .iter()
        .map(|c| c.connection)
        .find(|c| !before.contains(c))
        .expect("the new client is listed");
    (id, connection)
}

fn info(f: &mut Fixture, connection: u64) -> Option<ClientInfo> {
    report(f)
        .clients
        .into_iter()
        .find(|c| c.connection == connection)
}

fn figures(f: &mut Fixture, connection: u64) -> Figures {
    info(f, connection).expect("client listed").figures
}

/// Waits for the `wl_display.error.no_memory` that disconnects `c`: it reaches a client as
/// ENOMEM on its connection (libwayland and wayland-rs turn that one error into an I/O
/// error, so its message is not readable here; the log and the `client_limit` event have it).
fn expect_no_memory(f: &mut Fixture, c: ClientId) {
    let enomem = |f: &mut Fixture| match f.client(c).conn.flush() {
        Err(wayland_client::backend::WaylandError::Io(e)) => {
            e.raw_os_error() == Some(rustix::io::Errno::NOMEM.raw_os_error())
        }
        _ => false,
    };
    assert!(
        f.wait_until(Duration::from_secs(5), enomem),
        "no wl_display.error.no_memory"
    );
}

/// Waits for the protocol error `c` gets: (code, interface, message).
fn expect_error(f: &mut Fixture, c: ClientId) -> (u32, String, String) {
    f.expect_protocol_error(c);
    f.client(c).protocol_error().unwrap()
}

fn pool(f: &mut Fixture, c: ClientId, size: i32) -> WlShmPool {
    let fd = memfd(size as u64);
    let cl = f.client(c);
    cl.shm.create_pool(fd.as_fd(), size, &cl.qh, ())
}

fn buffer(f: &mut Fixture, c: ClientId, pool: &WlShmPool, offset: i32) -> WlBuffer {
    let cl = f.client(c);
    pool.create_buffer(offset, 16, 16, 64, wl_shm::Format::Argb8888, &cl.qh, ())
}

#[test]
fn msg_clients_counts_shm_pools_until_their_last_buffer_goes_and_zero_after_disconnect() {
    let mut f = Fixture::new();
    let (c, connection) = add_client(&mut f);
    assert_eq!(figures(&mut f, connection), Figures::default());

    let small = pool(&mut f, c, 4096);
    let big = pool(&mut f, c, 1 << 20);
    let buffers: Vec<WlBuffer> = (0..3).map(|i| buffer(&mut f, c, &big, i * 1024)).collect();
    let surface = {
        let cl = f.client(c);
        cl.compositor.create_surface(&cl.qh, ())
    };
    f.roundtrip(c);
    let got = figures(&mut f, connection);
    assert_eq!(
        got,
        Figures {
            shm_pools: 2,
            shm_bytes: 4096 + (1 << 20),
            buffers: 3,
            surfaces: 1,
            ..Figures::default()
        }
    );

    // A grown pool counts at its new size.
    small.resize(8192);
    f.roundtrip(c);
    assert_eq!(figures(&mut f, connection).shm_bytes, 8192 + (1 << 20));

    // Destroying a pool does not unmap it while its buffers live (smithay keeps the mapping).
    small.destroy();
    big.destroy();
    f.roundtrip(c);
    let got = figures(&mut f, connection);
    assert_eq!((got.shm_pools, got.shm_bytes), (1, 1 << 20));
    for b in &buffers {
        b.destroy();
    }
    surface.destroy();
    f.roundtrip(c);
    assert_eq!(figures(&mut f, connection), Figures::default());

    // Everything a disconnected client held is let go.
    let _again = pool(&mut f, c, 65536);
    f.roundtrip(c);
    assert_eq!(figures(&mut f, connection).shm_bytes, 65536);
    f.clients[c.0].conn.flush().ok();
    drop(f.clients.remove(c.0));
    let gone = f.wait_until(Duration::from_secs(2), |f| info(f, connection).is_none());
    assert!(gone, "the client is still listed after it hung up");
    f.settle();
    assert_eq!(report(&mut f).disconnected, Figures::default());
}

#[test]
fn a_thousand_create_destroy_cycles_leave_the_figures_at_zero() {
    let mut f = Fixture::new();
    let (c, connection) = add_client(&mut f);
    for i in 0..1000 {
        let p = pool(&mut f, c, 4096);
        let b = buffer(&mut f, c, &p, 0);
        p.destroy();
        b.destroy();
        if i % 100 == 99 {
            f.roundtrip(c);
        }
    }
    f.roundtrip(c);
    assert_eq!(figures(&mut f, connection), Figures::default());
    assert_eq!(f.client(c).protocol_error(), None);
}

#[test]
fn a_pool_past_the_shm_limit_is_refused_with_invalid_fd_on_wl_shm() {
    let mut f = with_limits(|l| l.shm_bytes_per_client = lockstep_config::ByteSize(1 << 20));
    let good = good_client(&mut f);
    let (c, connection) = add_client(&mut f);
    let _half = pool(&mut f, c, 1 << 19);
    let _other_half = pool(&mut f, c, 1 << 19);
    f.roundtrip(c);
    assert_eq!(
        f.client(c).protocol_error(),
        None,
        "exactly the limit is allowed"
    );
    assert_eq!(figures(&mut f, connection).shm_bytes, 1 << 20);
    let _one_more = pool(&mut f, c, 4096);
    let (code, interface, message) = expect_error(&mut f, c);
    assert_eq!(interface, "wl_shm", "{message}");
    assert_eq!(code, wl_shm::Error::InvalidFd as u32, "{message}");
    assert_good_client_unharmed(&mut f, good);
}

#[test]
fn growing_a_pool_past_the_shm_limit_is_refused_on_the_pool() {
    let mut f = with_limits(|l| l.shm_bytes_per_client = lockstep_config::ByteSize(1 << 20));
    let good = good_client(&mut f);
    let (c, _) = add_client(&mut f);
    let p = pool(&mut f, c, 4096);
    p.resize(1 << 20);
    f.roundtrip(c);
    assert_eq!(f.client(c).protocol_error(), None, "growing to the limit");
    p.resize((1 << 20) + 4096);
    let (code, interface, message) = expect_error(&mut f, c);
    assert_eq!(
        (code, interface.as_str()),
        (wl_shm::Error::InvalidFd as u32, "wl_shm_pool"),
        "{message}"
    );
    assert_good_client_unharmed(&mut f, good);
}

#[test]
fn buffers_past_the_limit_are_refused_with_no_memory() {
    let mut f = with_limits(|l| l.buffers_per_client = 5);
    let good = good_client(&mut f);
    let (c, connection) = add_client(&mut f);
    let p = pool(&mut f, c, 1 << 16);
    let first: Vec<WlBuffer> = (0..5).map(|i| buffer(&mut f, c, &p, i * 1024)).collect();
    f.roundtrip(c);
    assert_eq!(figures(&mut f, connection).buffers, 5);
    // Destroyed buffers no longer count.
    first[0].destroy();
    let _again = buffer(&mut f, c, &p, 0);
    f.roundtrip(c);
    assert_eq!(f.client(c).protocol_error(), None);
    let _sixth = buffer(&mut f, c, &p, 0);
    expect_no_memory(&mut f, c);
    assert_good_client_unharmed(&mut f, good);
}

#[test]
fn surfaces_past_the_limit_are_refused_with_no_memory() {
    let mut f = with_limits(|l| l.surfaces_per_client = 3);
    let good = good_client(&mut f);
    let (c, connection) = add_client(&mut f);
    let cl = f.client(c);
    let surfaces: Vec<_> = (0..3)
        .map(|_| cl.compositor.create_surface(&cl.qh, ()))
        .collect();
    f.roundtrip(c);
    assert_eq!(figures(&mut f, connection).surfaces, 3);
    surfaces[0].destroy();
    let cl = f.client(c);
    let _replacement = cl.compositor.create_surface(&cl.qh, ());
    f.roundtrip(c);
    assert_eq!(f.client(c).protocol_error(), None);
    let cl = f.client(c);
    let _fourth = cl.compositor.create_surface(&cl.qh, ());
    expect_no_memory(&mut f, c);
    assert_good_client_unharmed(&mut f, good);
}

#[test]
fn a_limit_hit_is_an_event_on_the_ipc_stream() {
    let mut f = with_limits(|l| l.surfaces_per_client = 1);
    let (listener, ours) = std::os::unix::net::UnixStream::pair().unwrap();
    lockstep::events::listen(&mut f.server.state.core, listener);
    let (c, _) = add_client(&mut f);
    let cl = f.client(c);
    let _one = cl.compositor.create_surface(&cl.qh, ());
    let _two = cl.compositor.create_surface(&cl.qh, ());
    expect_no_memory(&mut f, c);
    ours.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&ours), &mut line).unwrap();
    let event: lockstep::events::Event = serde_json::from_str(&line).expect(&line);
    let hits: Vec<_> = [event]
        .into_iter()
        .filter_map(|e| match e {
            lockstep::events::Event::ClientLimit {
                request,
                limit,
                held,
                requested,
                max,
                ..
            } => Some((request, limit, held, requested, max)),
            _ => None,
        })
        .collect();
    assert_eq!(
        hits,
        vec![(
            "wl_compositor.create_surface".to_owned(),
            "surfaces_per_client".to_owned(),
            1,
            1,
            1
        )]
    );
}

/// The size the kernel gives for the dmabuf `fd`.
fn dmabuf_size(fd: std::os::fd::BorrowedFd<'_>) -> u64 {
    rustix::fs::seek(fd, rustix::fs::SeekFrom::End(0)).unwrap()
}

#[test]
fn dmabuf_accounting_counts_each_real_buffer_once_and_refuses_past_the_limit() {
    let test = "dmabuf_accounting_counts_each_real_buffer_once_and_refuses_past_the_limit";
    let buffers: Vec<_> = (0..3).filter_map(|_| heap_dmabuf(test)).collect();
    if buffers.len() < 3 {
        return;
    }
    let sizes: Vec<u64> = buffers
        .iter()
        .map(|b| dmabuf_size(b.try_clone_fd().unwrap().as_fd()))
        .collect();
    let limit = sizes[0] + sizes[1];
    let mut f = with_limits(|l| l.dmabuf_bytes_per_client = lockstep_config::ByteSize(limit));
    let good = good_client(&mut f);
    let (c, connection) = add_client(&mut f);
    let dmabuf = bind_dmabuf(&mut f, c);
    let immed = |f: &mut Fixture, index: usize| -> WlBuffer {
        let heap = &buffers[index];
        let fd = heap.try_clone_fd().unwrap();
        let cl = f.client(c);
        let params = dmabuf.create_params(&cl.qh, ParamsAnswer::default());
        params.add(fd.as_fd(), 0, 0, heap.layout().stride, 0, 0);
        let buffer = params.create_immed(
            64,
            16,
            ARGB8888,
            zwp_linux_buffer_params_v1::Flags::empty(),
            &cl.qh,
            (),
        );
        f.roundtrip(c);
        buffer
    };

    let first = immed(&mut f, 0);
    let got = figures(&mut f, connection);
    assert_eq!(
        (got.dmabufs, got.dmabuf_bytes, got.buffers),
        (1, sizes[0], 1)
    );
    // The same dmabuf in a second wl_buffer is the same memory.
    let again = immed(&mut f, 0);
    let got = figures(&mut f, connection);
    assert_eq!(
        (got.dmabufs, got.dmabuf_bytes, got.buffers),
        (2, sizes[0], 2)
    );
    let second = immed(&mut f, 1);
    assert_eq!(figures(&mut f, connection).dmabuf_bytes, limit);
    assert_eq!(f.client(c).protocol_error(), None);

    // Past the limit: `create` answers `failed`, and the client carries on.
    let heap = &buffers[2];
    let fd = heap.try_clone_fd().unwrap();
    let answer = ParamsAnswer::default();
    let cl = f.client(c);
    let params = dmabuf.create_params(&cl.qh, answer.clone());
    params.add(fd.as_fd(), 0, 0, heap.layout().stride, 0, 0);
    params.create(64, 16, ARGB8888, zwp_linux_buffer_params_v1::Flags::empty());
    let answered = f.wait_until(Duration::from_secs(2), |_| {
        answer.0.lock().unwrap().is_some()
    });
    assert!(answered, "no created/failed event");
    assert_eq!(
        *answer.0.lock().unwrap(),
        Some(Created::Failed),
        "created past the limit"
    );
    assert_eq!(f.client(c).protocol_error(), None);
    assert_eq!(figures(&mut f, connection).dmabuf_bytes, limit);

    for buffer in [first, again, second] {
        buffer.destroy();
    }
    f.roundtrip(c);
    f.settle();
    assert_eq!(figures(&mut f, connection), Figures::default());
    assert_good_client_unharmed(&mut f, good);
}
