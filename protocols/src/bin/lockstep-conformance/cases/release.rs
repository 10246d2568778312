//! Release points follow their buffer, whatever replaces it. The spec: the release point is
//! signalled when the compositor no longer uses the buffer of that commit. These cases
//! replace a buffer in the ways a real client does without thinking about it: after its
//! syncobj surface was destroyed (allowed: committed points stay valid), by mixing explicit
//! and implicit sync on one surface, in a synchronized subsurface's cache, after destroying
//! the wl_buffer, with a buffer-less commit behind a held one, with one wl_buffer on two
//! surfaces; and a client that disconnects with commits queued behind a held one.
//!
//! "Implicit" commits attach a dmabuf without points, after the syncobj surface was
//! destroyed (with a live syncobj surface that would be `no_acquire_point`).

use std::rc::Rc;

use wayland_client::protocol::wl_surface::WlSurface;

use super::timing::{compositor_alive, how, Family, Scene};
use super::{next_color, AcquireMode, Case, Commit, IMPLEMENTATION_DEFINED};
use crate::client::{Buffer, Client, FrameTag, SIZE};
use crate::env::Env;
use crate::outcome::{check, fail, CaseError, CaseResult};

pub(super) fn cases() -> Vec<Case> {
    macro_rules! case {
        ($name:ident, $about:literal) => {
            Case {
                name: stringify!($name),
                about: $about,
                run: $name,
            }
        };
    }
    vec![
        case!(implicit_after_explicit_releases, "syncobj surface destroyed, then a dmabuf without points replaces the explicit buffer: its release point is signalled"),
        case!(explicit_implicit_explicit, "one surface: explicit, implicit, explicit again on a re-created syncobj surface: each replaced buffer released, the current one not"),
        case!(syncobj_destroyed_with_held_commit, "commit held on its acquire point, syncobj surface destroyed, implicit commit queued: applied in order after the point signals, the held buffer released"),
        case!(syncobj_recreated_around_held_commit, "held commit, syncobj surface destroyed and re-created, explicit and implicit commits queued: all in order, every replaced buffer released"),
        case!(syncobj_destroyed_with_cached_subsurface_commit, "synchronized subsurface: explicit commit cached, syncobj surface destroyed, implicit commit cached: the never-used buffer released with the parent's commit"),
        case!(held_cached_subsurface_commit_then_implicit, "synchronized subsurface: cached commit with a pending acquire point, then an implicit one: shown after the point signals, the held buffer released"),
        case!(desync_subsurface_implicit_after_explicit, "desynchronized subsurface: explicit then implicit buffer: the explicit buffer released"),
        case!(buffer_destroyed_while_acquire_pending, "wl_buffer destroyed while its commit waits for the acquire point: no error, and its release point signalled once replaced"),
        case!(buffer_destroyed_while_current, "wl_buffer destroyed while current: no error, and its release point signalled at the latest once replaced"),
        case!(bufferless_commit_after_held_commit, "a commit without a buffer behind a held one does not show the held buffer before its acquire point signals"),
        case!(bufferless_commit_after_late_acquire, "the same after waiting --timeout-ms: an acquire point that is late is still never skipped over"),
        case!(same_buffer_two_surfaces, "one wl_buffer on two surfaces with different release points: each released when its own surface stops using it"),
        case!(client_gone_with_queued_commits, "client disconnects with commits queued behind a held one: every release point signalled, the compositor's fd count back to its baseline"),
        case!(surface_destroyed_with_implicit_queued, "wl_surface destroyed with an implicit commit queued behind a held explicit one: both explicit buffers released"),
    ]
}

/// A dmabuf committed without points.
struct Plain {
    color: u32,
    frame: FrameTag,
    _buffer: Buffer,
}

/// Attaches a fresh dmabuf to `surface` without points and commits.
fn implicit(c: &mut Client, surface: &WlSurface) -> Result<Plain, CaseError> {
    let color = next_color();
    let buffer = c.dmabuf_buffer(color)?;
    surface.attach(Some(&buffer.wl), 0, 0);
    surface.damage_buffer(0, 0, SIZE as i32, SIZE as i32);
    let frame = c.frame(surface);
    surface.commit();
    Ok(Plain {
        color,
        frame,
        _buffer: buffer,
    })
}

/// Waits until `plain` is shown.
fn shown(c: &mut Client, plain: &Plain, what: &str) -> Result<(), CaseError> {
    if !c.wait_shown(plain.color, plain.frame)? {
        fail!("{what}: not shown within {:?}", c.env.timeout);
    }
    Ok(())
}

/// Waits until the release point of `commit` is signalled.
fn released(c: &mut Client, commit: &Commit, what: &str) -> Result<(), CaseError> {
    if !c.wait_point(&commit.release, 1, c.env.timeout)? {
        fail!(
            "the release point of {what} was not signalled within {:?}",
            c.env.timeout
        );
    }
    Ok(())
}

fn implicit_after_explicit_releases(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "explicit then implicit")?;
    let first = s.show("explicit commit")?;
    s.sync.destroy();
    let plain = implicit(&mut s.c, &s.w.surface)?;
    s.c.expect_ok("a dmabuf without points after destroying the syncobj surface")?;
    shown(&mut s.c, &plain, "the implicitly synced buffer")?;
    released(
        &mut s.c,
        &first,
        "the explicit buffer an implicit one replaced",
    )?;
    Ok(Some(how(&s.c)))
}

fn explicit_implicit_explicit(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "explicit implicit explicit")?;
    let first = s.show("explicit commit")?;
    s.sync.destroy();
    let plain = implicit(&mut s.c, &s.w.surface)?;
    shown(&mut s.c, &plain, "the implicit commit")?;
    released(&mut s.c, &first, "the first explicit buffer")?;
    s.sync = s.c.syncobj_surface(&s.w.surface)?;
    s.c.expect_ok("get_surface again on the same wl_surface")?;
    let third = s.show("explicit commit on the re-created syncobj surface")?;
    s.sync.destroy();
    let last = implicit(&mut s.c, &s.w.surface)?;
    shown(&mut s.c, &last, "the second implicit commit")?;
    released(&mut s.c, &third, "the second explicit buffer")?;
    Ok(Some(how(&s.c)))
}

fn syncobj_destroyed_with_held_commit(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "held then destroyed")?;
    let first = s.show("first commit")?;
    let mut held = s.commit(AcquireMode::Pending)?;
    s.sync.destroy();
    let plain = implicit(&mut s.c, &s.w.surface)?;
    s.c.expect_ok("a held commit, the syncobj surface destroyed, an implicit commit")?;
    check!(
        s.c.stays_hidden(plain.color, plain.frame)?,
        "a commit queued behind one that waits for its acquire point was shown first"
    );
    s.still_showing(&first, "while a commit waited for its acquire point")?;
    check!(
        !first.released()?,
        "the current buffer was released while the next commits were held"
    );
    held.acquire.signal()?;
    shown(
        &mut s.c,
        &plain,
        "the queued implicit commit after the acquire point signalled",
    )?;
    released(
        &mut s.c,
        &held,
        "the held buffer, replaced by the implicit one",
    )?;
    released(&mut s.c, &first, "the first buffer")?;
    Ok(Some(how(&s.c)))
}

fn syncobj_recreated_around_held_commit(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "held, re-created")?;
    let first = s.show("first commit")?;
    let mut held = s.commit(AcquireMode::Pending)?;
    s.sync.destroy();
    s.sync = s.c.syncobj_surface(&s.w.surface)?;
    let second = s.commit(AcquireMode::Signalled)?;
    s.sync.destroy();
    let plain = implicit(&mut s.c, &s.w.surface)?;
    s.c.expect_ok("held, destroyed, re-created, explicit, destroyed, implicit")?;
    check!(
        s.c.stays_hidden(plain.color, plain.frame)?,
        "a commit queued behind one that waits for its acquire point was shown first"
    );
    check!(
        s.c.stays_hidden(second.color, second.frame)?,
        "a commit queued behind one that waits for its acquire point was shown first"
    );
    held.acquire.signal()?;
    shown(
        &mut s.c,
        &plain,
        "the last commit after the acquire point signalled",
    )?;
    released(&mut s.c, &first, "the first buffer")?;
    released(&mut s.c, &held, "the held buffer")?;
    released(
        &mut s.c,
        &second,
        "the explicit buffer an implicit one replaced",
    )?;
    Ok(Some(how(&s.c)))
}

fn syncobj_destroyed_with_cached_subsurface_commit(env: &Env) -> CaseResult {
    let (mut f, _parent) = Family::new(env, "cached, destroyed")?;
    let shown_first = f.child_commit(AcquireMode::Signalled)?;
    f.parent_commit()?;
    check!(
        f.s.c.wait_shown(shown_first.color, shown_first.frame)?,
        "the subsurface's first buffer was not shown after the parent committed"
    );
    let cached = f.child_commit(AcquireMode::Signalled)?;
    f.child_sync.destroy();
    let plain = implicit(&mut f.s.c, &f.child)?;
    f.s.c
        .expect_ok("explicit commit cached, syncobj surface destroyed, implicit commit cached")?;
    check!(
        f.s.c.stays_hidden(plain.color, plain.frame)?,
        "a synchronized subsurface's buffer was shown before the parent committed"
    );
    f.parent_commit()?;
    shown(
        &mut f.s.c,
        &plain,
        "the implicit buffer after the parent committed",
    )?;
    released(
        &mut f.s.c,
        &cached,
        "the cached buffer replaced before it was used",
    )?;
    released(&mut f.s.c, &shown_first, "the subsurface's first buffer")?;
    Ok(Some(how(&f.s.c)))
}

fn held_cached_subsurface_commit_then_implicit(env: &Env) -> CaseResult {
    let (mut f, _parent) = Family::new(env, "cached held")?;
    let mut held = f.child_commit(AcquireMode::Pending)?;
    f.child_sync.destroy();
    let plain = implicit(&mut f.s.c, &f.child)?;
    f.parent_commit()?;
    check!(
        f.s.c.stays_hidden(held.color, held.frame)?,
        "the subsurface's buffer was shown before its acquire point signalled"
    );
    held.acquire.signal()?;
    shown(
        &mut f.s.c,
        &plain,
        "the implicit buffer after the held one's acquire point signalled",
    )?;
    released(
        &mut f.s.c,
        &held,
        "the held cached buffer, replaced by an implicit one",
    )?;
    Ok(Some(how(&f.s.c)))
}

fn desync_subsurface_implicit_after_explicit(env: &Env) -> CaseResult {
    let (mut f, _parent) = Family::new(env, "desync")?;
    f.sub.set_desync();
    let first = f.child_commit(AcquireMode::Signalled)?;
    check!(
        f.s.c.wait_shown(first.color, first.frame)?,
        "a desynchronized subsurface's buffer was not shown within {:?}",
        env.timeout
    );
    f.child_sync.destroy();
    let plain = implicit(&mut f.s.c, &f.child)?;
    shown(
        &mut f.s.c,
        &plain,
        "the desynchronized subsurface's implicit buffer",
    )?;
    released(
        &mut f.s.c,
        &first,
        "the subsurface's explicit buffer an implicit one replaced",
    )?;
    Ok(Some(how(&f.s.c)))
}

fn buffer_destroyed_while_acquire_pending(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "destroyed while held")?;
    let first = s.show("first commit")?;
    let mut held = s.commit(AcquireMode::Pending)?;
    held.buffer.wl.destroy();
    s.c.expect_ok("destroying a wl_buffer whose commit is held")?;
    s.sync.destroy();
    let plain = implicit(&mut s.c, &s.w.surface)?;
    held.acquire.signal()?;
    s.c.expect_ok("the held commit of a destroyed wl_buffer, after its acquire point")?;
    compositor_alive(env)?;
    shown(&mut s.c, &plain, "the implicit commit behind the held one")?;
    released(&mut s.c, &held, "the destroyed wl_buffer's commit")?;
    released(&mut s.c, &first, "the first buffer")?;
    Ok(Some(how(&s.c)))
}

fn buffer_destroyed_while_current(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "destroyed while current")?;
    let first = s.show("first commit")?;
    first.buffer.wl.destroy();
    s.c.expect_ok("destroying the current wl_buffer")?;
    s.c.dispatch_for(env.settle)?;
    let early = first.released()?;
    s.sync.destroy();
    let plain = implicit(&mut s.c, &s.w.surface)?;
    shown(
        &mut s.c,
        &plain,
        "a new buffer after the current one was destroyed",
    )?;
    released(&mut s.c, &first, "the destroyed wl_buffer, once replaced")?;
    let chose = if early {
        "the release point was signalled when the wl_buffer was destroyed"
    } else {
        "the release point was kept until the surface stopped using the buffer"
    };
    Ok(Some(format!("{IMPLEMENTATION_DEFINED} {chose}")))
}

fn bufferless_commit_after_held_commit(env: &Env) -> CaseResult {
    bufferless_after_held(env, false)
}

fn bufferless_commit_after_late_acquire(env: &Env) -> CaseResult {
    bufferless_after_held(env, true)
}

/// A held commit, then a commit without a buffer (after `--timeout-ms` when `late`).
fn bufferless_after_held(env: &Env, late: bool) -> CaseResult {
    let mut s = Scene::new(env, "buffer-less after held")?;
    let first = s.show("first commit")?;
    let mut held = s.commit(AcquireMode::Pending)?;
    s.c.expect_ok("a commit with a pending acquire point")?;
    if late {
        s.c.dispatch_for(env.timeout)?;
    }
    s.w.surface.damage_buffer(0, 0, 1, 1);
    let frame = s.c.frame(&s.w.surface);
    s.w.surface.commit();
    s.c.expect_ok("a commit without a buffer behind the held one")?;
    check!(
        s.c.stays_hidden(held.color, held.frame)?,
        "a buffer whose acquire point had not signalled was shown after a later commit that \
         attached no buffer"
    );
    s.still_showing(&first, "after a buffer-less commit behind a held one")?;
    held.acquire.signal()?;
    check!(
        s.c.wait_shown(held.color, frame)?,
        "the held buffer was not shown within {:?} after its acquire point signalled",
        env.timeout
    );
    released(&mut s.c, &first, "the first buffer")?;
    // And it is released when replaced, even without points.
    s.sync.destroy();
    let plain = implicit(&mut s.c, &s.w.surface)?;
    shown(&mut s.c, &plain, "an implicit buffer after the held one")?;
    released(&mut s.c, &held, "the held buffer, once replaced")?;
    Ok(Some(how(&s.c)))
}

fn same_buffer_two_surfaces(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "shared buffer A")?;
    let w2 = s.c.window("shared buffer B")?;
    let sync2 = s.c.syncobj_surface(&w2.surface)?;
    let color = next_color();
    let buffer = Rc::new(s.c.dmabuf_buffer(color)?);
    let a = Commit::with_buffer(
        &mut s.c,
        &s.w.surface,
        &s.sync,
        Rc::clone(&buffer),
        color,
        AcquireMode::Signalled,
    )?;
    let b = Commit::with_buffer(
        &mut s.c,
        &w2.surface,
        &sync2,
        Rc::clone(&buffer),
        color,
        AcquireMode::Signalled,
    )?;
    s.c.expect_ok("one wl_buffer committed on two surfaces with different points")?;
    for (what, commit) in [("first", &a), ("second", &b)] {
        check!(
            s.c.wait_shown(color, commit.frame)?,
            "the shared buffer was not shown on the {what} surface within {:?}",
            env.timeout
        );
    }
    check!(
        !a.released()? && !b.released()?,
        "a release point was signalled while both surfaces use the buffer"
    );
    s.sync.destroy();
    let plain = implicit(&mut s.c, &s.w.surface)?;
    shown(&mut s.c, &plain, "the first surface's implicit buffer")?;
    released(
        &mut s.c,
        &a,
        "the first surface's commit of the shared buffer, once that surface replaced it",
    )?;
    s.c.dispatch_for(env.settle)?;
    check!(
        !b.released()?,
        "the second surface's release point was signalled while it still shows the buffer"
    );
    let last = Commit::new(&mut s.c, &w2.surface, &sync2, AcquireMode::Signalled)?;
    check!(
        s.c.wait_shown(last.color, last.frame)?,
        "the second surface's new buffer was not shown within {:?}",
        env.timeout
    );
    released(
        &mut s.c,
        &b,
        "the second surface's commit of the shared buffer",
    )?;
    Ok(Some(how(&s.c)))
}

/// The compositor's pid (SO_PEERCRED of our connection) and how many fds it has open, when
/// `/proc/PID/fd` is readable.
fn compositor_fds(c: &Client) -> Option<usize> {
    let backend = c.conn.backend();
    let cred = rustix::net::sockopt::socket_peercred(backend.poll_fd()).ok()?;
    let pid = cred.pid.as_raw_nonzero().get();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count())
}

fn client_gone_with_queued_commits(env: &Env) -> CaseResult {
    let mut watcher = Client::connect(env)?;
    watcher.manager()?;
    // Warm up: one client's life, so that what the compositor opens once is in the baseline.
    {
        let mut s = Scene::new(env, "warm-up")?;
        s.show("warm-up commit")?;
    }
    watcher.dispatch_for(env.settle)?;
    let baseline = compositor_fds(&watcher);
    let mut s = Scene::new(env, "gone with a queue")?;
    let first = s.show("first commit")?;
    let held = s.commit(AcquireMode::Pending)?;
    let queued = [
        s.commit(AcquireMode::Signalled)?,
        s.commit(AcquireMode::Signalled)?,
        s.commit(AcquireMode::Pending)?,
    ];
    s.c.expect_ok("a held commit and three behind it")?;
    let Scene { c, w, sync } = s;
    drop((w, sync));
    drop(c); // closes the connection
    compositor_alive(env)?;
    for (what, commit) in [
        ("the shown buffer", &first),
        ("the held buffer", &held),
        ("queued buffer 1", &queued[0]),
        ("queued buffer 2", &queued[1]),
        ("queued buffer 3", &queued[2]),
    ] {
        released(&mut watcher, commit, &format!("{what} of the gone client"))?;
    }
    let Some(baseline) = baseline else {
        return Ok(Some(
            "release points checked; the compositor's fds not counted (/proc/PID/fd is not \
             readable here); its syncobj handles are not visible to a client"
                .into(),
        ));
    };
    let deadline = std::time::Instant::now() + env.timeout;
    let mut now = compositor_fds(&watcher).unwrap_or(usize::MAX);
    while now > baseline && std::time::Instant::now() < deadline {
        watcher.dispatch_for(std::time::Duration::from_millis(50))?;
        now = compositor_fds(&watcher).unwrap_or(usize::MAX);
    }
    check!(
        now <= baseline,
        "the compositor has {now} fds open, {baseline} before the client connected: \
         {} not closed after it disconnected",
        now.saturating_sub(baseline)
    );
    Ok(Some(format!(
        "fds back to {baseline}; the compositor's syncobj handles are not visible to a client"
    )))
}

fn surface_destroyed_with_implicit_queued(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "destroyed with a queue")?;
    let first = s.show("first commit")?;
    let held = s.commit(AcquireMode::Pending)?;
    s.sync.destroy();
    let _plain = implicit(&mut s.c, &s.w.surface)?;
    s.c.expect_ok("a held commit and an implicit one behind it")?;
    s.w.toplevel.destroy();
    s.w.xdg_surface.destroy();
    s.w.surface.destroy();
    s.c.expect_ok("destroying the surface")?;
    compositor_alive(env)?;
    released(&mut s.c, &held, "the held buffer of the destroyed surface")?;
    released(
        &mut s.c,
        &first,
        "the shown buffer of the destroyed surface",
    )?;
    Ok(None)
}
