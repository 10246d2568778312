//! What the compositor does with the points: acquire points hold commits (however late the
//! fence comes, without holding anyone else), commits stay in order, release points are
//! signalled when, and only when, the compositor is done with the buffer; synchronized
//! subsurfaces carry their points in the cached state.
//!
//! "Shown" is checked on screen through wlr-screencopy when the compositor offers it (each
//! buffer has a colour no other window of the run uses); without screencopy, through the
//! frame callback requested with the commit, which a compositor can only fire once that
//! commit's state is applied.

use std::rc::Rc;

use wayland_protocols::wp::linux_drm_syncobj::v1::client::wp_linux_drm_syncobj_surface_v1::WpLinuxDrmSyncobjSurfaceV1;

use super::{AcquireMode, Case, Commit};
use crate::client::{Client, Window};
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
        case!(shown_after_signalled_acquire, "a dmabuf with a signalled acquire point is shown; its release point stays pending"),
        case!(not_shown_before_acquire, "a buffer is not shown before its acquire point signals, the old content stays; shown after"),
        case!(acquire_submitted_after_commit, "acquire fence submitted only after the commit (wait-before-signal): shown after it signals, no error"),
        case!(acquire_never_signals_others_continue, "an acquire point that never signals keeps the old content while another client keeps updating"),
        case!(release_not_signalled_while_current, "the release point is not signalled while the buffer is current"),
        case!(release_signalled_after_replaced, "the release point is signalled after a newer buffer is applied"),
        case!(recommitted_buffer_release, "the same wl_buffer committed again: the newest release point stays pending while current"),
        case!(blocked_commit_keeps_order, "commit A blocked on acquire, commit B queued: B not shown before A's acquire; then B shown, A released"),
        case!(subsurface_points_apply_with_parent, "a synchronized subsurface's buffer and points apply with the parent's commit"),
        case!(subsurface_cached_buffer_replaced, "a synchronized subsurface's cached buffer replaced before use is released"),
        case!(subsurface_uncommitted_buffer_not_shown, "a synchronized subsurface's buffer and points set but not committed: the parent's commit does not show it while its acquire point is pending"),
        case!(surface_destroyed_during_acquire_wait, "wl_surface destroyed while its acquire wait is pending: no crash, release points signalled"),
        case!(client_gone_during_acquire_wait, "client disconnects while its acquire wait is pending: no crash, release points signalled"),
        case!(acquire_fence_error, "an acquire fence that signals with an error does not crash the compositor or stall others"),
    ]
}

/// A client with a mapped toplevel and its syncobj surface.
pub(super) struct Scene {
    pub(super) c: Client,
    pub(super) w: Window,
    pub(super) sync: WpLinuxDrmSyncobjSurfaceV1,
}

impl Scene {
    pub(super) fn new(env: &Env, title: &str) -> Result<Scene, CaseError> {
        let mut c = Client::connect(env)?;
        c.manager()?;
        env.device()?;
        let w = c.window(title)?;
        let sync = c.syncobj_surface(&w.surface)?;
        Ok(Scene { c, w, sync })
    }

    pub(super) fn commit(&mut self, mode: AcquireMode) -> Result<Commit, CaseError> {
        Commit::new(&mut self.c, &self.w.surface, &self.sync, mode)
    }

    /// Commits a new buffer with a signalled acquire point and waits until it is shown.
    pub(super) fn show(&mut self, what: &str) -> Result<Commit, CaseError> {
        let commit = self.commit(AcquireMode::Signalled)?;
        self.c.expect_ok(what)?;
        if !self.c.wait_shown(commit.color, commit.frame)? {
            fail!(
                "{what}: a dmabuf with a signalled acquire point was not shown within {:?}",
                self.c.env.timeout
            );
        }
        Ok(commit)
    }

    /// Fails when `old` is no longer on screen (only checkable with screencopy).
    pub(super) fn still_showing(&mut self, old: &Commit, why: &str) -> Result<(), CaseError> {
        if self.c.on_screen(old.color)? == Some(false) {
            fail!("the previous content disappeared {why}");
        }
        Ok(())
    }
}

pub(super) fn how(c: &Client) -> String {
    let seen = if c.can_capture() {
        "pixels via screencopy"
    } else {
        "frame callbacks (no screencopy)"
    };
    format!("{}; checked with {seen}", c.env.fence_mode())
}

fn shown_after_signalled_acquire(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "shown")?;
    let first = s.show("first commit")?;
    s.c.dispatch_for(env.settle)?;
    check!(
        !first.released()?,
        "the release point of the current buffer was signalled"
    );
    Ok(Some(how(&s.c)))
}

fn not_shown_before_acquire(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "held")?;
    let first = s.show("first commit")?;
    let mut second = s.commit(AcquireMode::Pending)?;
    s.c.expect_ok("commit with a pending acquire point")?;
    check!(
        s.c.stays_hidden(second.color, second.frame)?,
        "the buffer was shown before its acquire point signalled"
    );
    s.still_showing(&first, "while the next commit waited for its acquire point")?;
    second.acquire.signal()?;
    check!(
        s.c.wait_shown(second.color, second.frame)?,
        "the buffer was not shown within {:?} after its acquire point signalled",
        env.timeout
    );
    Ok(Some(how(&s.c)))
}

fn acquire_submitted_after_commit(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "late fence")?;
    let first = s.show("first commit")?;
    let mut second = s.commit(AcquireMode::Unsubmitted)?;
    s.c.expect_ok("commit whose acquire point has no fence yet")?;
    check!(
        s.c.stays_hidden(second.color, second.frame)?,
        "the buffer was shown before its acquire point was even submitted"
    );
    if second.acquire.submit(env)? {
        s.c.expect_ok("after submitting the fence")?;
        check!(
            s.c.stays_hidden(second.color, second.frame)?,
            "the buffer was shown when its acquire fence was submitted, before it signalled"
        );
    }
    s.still_showing(&first, "while the next commit waited for its acquire fence")?;
    second.acquire.signal()?;
    check!(
        s.c.wait_shown(second.color, second.frame)?,
        "the buffer was not shown within {:?} after the late acquire fence signalled",
        env.timeout
    );
    s.c.expect_ok("after the late fence signalled")?;
    Ok(Some(how(&s.c)))
}

fn acquire_never_signals_others_continue(env: &Env) -> CaseResult {
    let mut a = Scene::new(env, "stuck")?;
    let first = a.show("first commit of the stuck client")?;
    let stuck = a.commit(AcquireMode::Pending)?;
    a.c.expect_ok("commit with an acquire point that never signals")?;
    let mut b = Scene::new(env, "busy")?;
    for i in 0..3 {
        b.show(&format!(
            "commit {i} of another client while the first is stuck"
        ))?;
    }
    check!(
        a.c.stays_hidden(stuck.color, stuck.frame)?,
        "the buffer whose acquire point never signalled was shown"
    );
    a.still_showing(
        &first,
        "while its successor's acquire point never signalled",
    )?;
    a.c.expect_ok("the stuck client's connection")?;
    Ok(Some(how(&a.c)))
}

fn release_not_signalled_while_current(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "current")?;
    let first = s.show("first commit")?;
    // Give the compositor every chance to (wrongly) release: more frames, a roundtrip.
    s.w.surface.damage_buffer(0, 0, 1, 1);
    s.w.surface.commit();
    s.c.dispatch_for(env.settle)?;
    s.c.expect_ok("damage-only commit")?;
    check!(
        !first.released()?,
        "the release point was signalled while the buffer is current"
    );
    Ok(None)
}

fn release_signalled_after_replaced(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "replaced")?;
    let first = s.show("first commit")?;
    let second = s.show("second commit")?;
    check!(
        s.c.wait_point(&first.release, 1, env.timeout)?,
        "the first buffer's release point was not signalled within {:?} after a newer buffer was shown",
        env.timeout
    );
    check!(
        !second.released()?,
        "the current buffer's release point was signalled"
    );
    Ok(None)
}

fn recommitted_buffer_release(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "recommit")?;
    let first = s.show("first commit")?;
    let again = Commit::with_buffer(
        &mut s.c,
        &s.w.surface,
        &s.sync,
        Rc::clone(&first.buffer),
        first.color,
        AcquireMode::Signalled,
    )?;
    s.c.expect_ok("committing the same wl_buffer again")?;
    s.c.dispatch_for(env.settle)?;
    check!(
        !again.released()?,
        "the newest release point of a re-committed buffer was signalled while the buffer is current"
    );
    let third = s.show("a different buffer")?;
    check!(
        s.c.wait_point(&again.release, 1, env.timeout)?,
        "the re-committed buffer's release point was not signalled within {:?} after it was replaced",
        env.timeout
    );
    check!(
        !third.released()?,
        "the current buffer's release point was signalled"
    );
    let note = if first.released()? {
        "the superseded first release point was signalled"
    } else {
        "the superseded first release point is still pending (allowed)"
    };
    Ok(Some(note.into()))
}

fn blocked_commit_keeps_order(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "order")?;
    let first = s.show("first commit")?;
    let mut blocked = s.commit(AcquireMode::Pending)?;
    let queued = s.commit(AcquireMode::Signalled)?;
    s.c.expect_ok("a blocked commit and a ready commit behind it")?;
    check!(
        s.c.stays_hidden(queued.color, queued.frame)?,
        "a later commit overtook an earlier commit still waiting for its acquire point"
    );
    check!(
        s.c.stays_hidden(blocked.color, blocked.frame)?,
        "the blocked buffer was shown before its acquire point signalled"
    );
    s.still_showing(&first, "while commits were queued behind an acquire point")?;
    check!(
        !first.released()?,
        "the current buffer was released while the next commits waited"
    );
    blocked.acquire.signal()?;
    check!(
        s.c.wait_shown(queued.color, queued.frame)?,
        "the queued commit was not shown within {:?} after the blocking acquire point signalled",
        env.timeout
    );
    check!(
        s.c.wait_point(&blocked.release, 1, env.timeout)?,
        "the blocked commit's release point was not signalled after the queued commit replaced it"
    );
    check!(
        s.c.wait_point(&first.release, 1, env.timeout)?,
        "the first buffer's release point was not signalled after it was replaced"
    );
    check!(
        !queued.released()?,
        "the current buffer's release point was signalled"
    );
    Ok(Some(how(&s.c)))
}

/// A parent window showing a buffer and a synchronized child with its own syncobj surface.
pub(super) struct Family {
    pub(super) s: Scene,
    pub(super) child: wayland_client::protocol::wl_surface::WlSurface,
    pub(super) child_sync: WpLinuxDrmSyncobjSurfaceV1,
    pub(super) sub: wayland_client::protocol::wl_subsurface::WlSubsurface,
}

impl Family {
    pub(super) fn new(env: &Env, title: &str) -> Result<(Family, Commit), CaseError> {
        let mut s = Scene::new(env, title)?;
        let (child, sub) = s.c.subsurface(&s.w.surface, 8, 8)?;
        let child_sync = s.c.syncobj_surface(&child)?;
        let parent = s.show("parent's first commit")?;
        Ok((
            Family {
                s,
                child,
                child_sync,
                sub,
            },
            parent,
        ))
    }

    pub(super) fn child_commit(&mut self, mode: AcquireMode) -> Result<Commit, CaseError> {
        Commit::new(&mut self.s.c, &self.child, &self.child_sync, mode)
    }

    /// Commits the parent (no new buffer): applies the child's cached state.
    pub(super) fn parent_commit(&mut self) -> Result<crate::client::FrameTag, CaseError> {
        let tag = self.s.c.frame(&self.s.w.surface);
        self.s.w.surface.commit();
        self.s.c.expect_ok("parent commit")?;
        Ok(tag)
    }
}

fn subsurface_points_apply_with_parent(env: &Env) -> CaseResult {
    let (mut f, _parent) = Family::new(env, "subsurface")?;
    let k1 = f.child_commit(AcquireMode::Signalled)?;
    f.s.c.expect_ok("child commit (cached)")?;
    check!(
        f.s.c.stays_hidden(k1.color, k1.frame)?,
        "a synchronized subsurface's buffer was shown before the parent committed"
    );
    f.parent_commit()?;
    check!(
        f.s.c.wait_shown(k1.color, k1.frame)?,
        "the subsurface's buffer was not shown after the parent committed"
    );
    let k2 = f.child_commit(AcquireMode::Signalled)?;
    f.s.c.expect_ok("second child commit (cached)")?;
    check!(
        f.s.c.stays_hidden(k2.color, k2.frame)?,
        "the subsurface's cached buffer was shown before the parent committed"
    );
    check!(
        !k1.released()?,
        "the subsurface's current buffer was released while its successor was only cached"
    );
    f.parent_commit()?;
    check!(
        f.s.c.wait_shown(k2.color, k2.frame)?,
        "the subsurface's second buffer was not shown after the parent committed"
    );
    check!(
        f.s.c.wait_point(&k1.release, 1, env.timeout)?,
        "the subsurface's replaced buffer was not released"
    );
    // A cached commit whose acquire point is pending: applied with the parent, shown only
    // once the point signals.
    let mut k3 = f.child_commit(AcquireMode::Pending)?;
    f.s.c
        .expect_ok("third child commit, acquire pending (cached)")?;
    f.parent_commit()?;
    check!(
        f.s.c.stays_hidden(k3.color, k3.frame)?,
        "the subsurface's buffer was shown with the parent's commit before its acquire point signalled"
    );
    k3.acquire.signal()?;
    check!(
        f.s.c.wait_shown(k3.color, k3.frame)?,
        "the subsurface's buffer was not shown after its acquire point signalled"
    );
    check!(
        !k3.released()?,
        "the subsurface's current buffer was released"
    );
    Ok(Some(how(&f.s.c)))
}

fn subsurface_cached_buffer_replaced(env: &Env) -> CaseResult {
    let (mut f, _parent) = Family::new(env, "subsurface replace")?;
    let k1 = f.child_commit(AcquireMode::Signalled)?;
    let k2 = f.child_commit(AcquireMode::Signalled)?;
    f.s.c.expect_ok("two cached child commits")?;
    f.parent_commit()?;
    check!(
        f.s.c.wait_shown(k2.color, k2.frame)?,
        "the subsurface's latest cached buffer was not shown after the parent committed"
    );
    check!(
        f.s.c.wait_point(&k1.release, 1, env.timeout)?,
        "the cached buffer replaced before it was ever used was not released within {:?}",
        env.timeout
    );
    check!(
        !k2.released()?,
        "the subsurface's current buffer was released"
    );
    Ok(None)
}

fn subsurface_uncommitted_buffer_not_shown(env: &Env) -> CaseResult {
    let (mut f, _parent) = Family::new(env, "subsurface uncommitted")?;
    let shown = f.child_commit(AcquireMode::Signalled)?;
    f.parent_commit()?;
    check!(
        f.s.c.wait_shown(shown.color, shown.frame)?,
        "the subsurface's first buffer was not shown after the parent committed"
    );
    // Points and a buffer set on the child, which does not commit; then the parent commits.
    let color = super::next_color();
    let buffer = f.s.c.dmabuf_buffer(color)?;
    let (acquire_tl, acquire_obj) = f.s.c.timeline()?;
    let (_release, release_obj) = f.s.c.timeline()?;
    let mut acquire = crate::env::Acquire::pending(env, &acquire_tl, 1)?;
    super::set_acquire(&f.child_sync, &acquire_obj, 1);
    super::set_release(&f.child_sync, &release_obj, 1);
    f.child.attach(Some(&buffer.wl), 0, 0);
    f.child
        .damage_buffer(0, 0, crate::client::SIZE as i32, crate::client::SIZE as i32);
    let tag = f.parent_commit()?;
    check!(
        f.s.c.stays_hidden(color, tag)?,
        "a buffer the subsurface never committed was shown with the parent's commit, before \
         its acquire point signalled"
    );
    acquire.signal()?;
    f.s.c.dispatch_for(env.settle)?;
    let note = match f.s.c.on_screen(color)? {
        Some(true) => {
            "once the point signalled, the uncommitted buffer was shown (wl_subsurface \
                       says a parent's commit applies only the child's cached state)"
        }
        Some(false) => "the uncommitted buffer was not shown",
        None => "not checked after the point signalled (no screencopy)",
    };
    Ok(Some(note.into()))
}

/// Checks that the compositor still serves a new client.
pub(super) fn compositor_alive(env: &Env) -> Result<(), CaseError> {
    let mut probe = Client::connect(env)
        .map_err(|e| CaseError::Fail(format!("the compositor no longer accepts clients: {e}")))?;
    probe.expect_ok("a new client's roundtrip")
}

fn surface_destroyed_during_acquire_wait(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "destroyed")?;
    let first = s.show("first commit")?;
    let pending = s.commit(AcquireMode::Pending)?;
    s.c.expect_ok("commit with a pending acquire point")?;
    s.sync.destroy();
    s.w.toplevel.destroy();
    s.w.xdg_surface.destroy();
    s.w.surface.destroy();
    s.c.expect_ok("destroying the surface while its acquire wait is pending")?;
    compositor_alive(env)?;
    check!(
        s.c.wait_point(&pending.release, 1, env.timeout)?,
        "the pending buffer's release point was not signalled within {:?} after its surface was destroyed",
        env.timeout
    );
    check!(
        s.c.wait_point(&first.release, 1, env.timeout)?,
        "the shown buffer's release point was not signalled within {:?} after its surface was destroyed",
        env.timeout
    );
    Ok(None)
}

fn client_gone_during_acquire_wait(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "disconnects")?;
    let first = s.show("first commit")?;
    let pending = s.commit(AcquireMode::Pending)?;
    s.c.expect_ok("commit with a pending acquire point")?;
    let Scene { c, w, sync } = s;
    drop((w, sync));
    let env2 = c.env.clone();
    drop(c); // closes the connection
    compositor_alive(&env2)?;
    let mut watcher = Client::connect(env)?;
    check!(
        watcher.wait_point(&pending.release, 1, env.timeout)?,
        "the pending buffer's release point was not signalled within {:?} after its client disconnected",
        env.timeout
    );
    check!(
        watcher.wait_point(&first.release, 1, env.timeout)?,
        "the shown buffer's release point was not signalled within {:?} after its client disconnected",
        env.timeout
    );
    Ok(None)
}

fn acquire_fence_error(env: &Env) -> CaseResult {
    let mut s = Scene::new(env, "fence error")?;
    if !env.sw_sync {
        return Err(CaseError::Skip(
            "needs sw_sync to make a fence that signals with an error".into(),
        ));
    }
    let _first = s.show("first commit")?;
    let mut bad = s.commit(AcquireMode::Pending)?;
    s.c.expect_ok("commit with a pending sw_sync acquire fence")?;
    bad.acquire.fail_fence(); // the fence signals with -ENOENT
    let mut other = Scene::new(env, "after fence error")?;
    other.show("another client's commit after the fence error")?;
    s.c.dispatch_for(env.settle)?;
    let outcome = match s.c.queue.roundtrip(&mut s.c.state) {
        Ok(_) => match s.c.on_screen(bad.color)? {
            Some(true) => "the buffer was shown anyway",
            Some(false) => "the buffer was not shown",
            None => "connection kept",
        },
        Err(_) => "the client was disconnected",
    };
    compositor_alive(env)?;
    Ok(Some(format!("after the failed acquire fence: {outcome}")))
}
