//! The signalling contract: code on the path to signalling a fence never waits.
//!
//! # Why
//!
//! If the code that will eventually signal fence A blocks waiting for fence B, and B's
//! signaller in turn waits for A, both wait forever. The kernel's dma-fence rules forbid any
//! wait (and any unbounded allocation) on a signalling path for exactly this reason, and
//! annotate those paths (`dma_fence_begin_signalling()`) so lockdep can catch a wait inside
//! one. lockstep follows the same rule: release signalling, page-flip handling and every fence
//! callback run inside a *signalling section*; a blocking wait there is a bug.
//!
//! # How
//!
//! [`signalling_section`] returns a guard; while it lives, the current thread is inside a
//! section. Every blocking wait in this crate ([`Fence::wait`](crate::Fence::wait),
//! [`SyncFile::wait`](crate::SyncFile::wait), [`DrmTimeline::wait`](crate::DrmTimeline::wait))
//! calls [`assert_may_block`] first. In debug builds that panics with both locations: where the
//! section began and where the wait is. Release builds compile the check away. Callbacks run
//! by [`Fence::signal`](crate::Fence::signal) are always inside a section.
//!
//! Non-blocking checks (`is_signalled`, queries, registering an eventfd) are always allowed.
//!
//! ```
//! use lockstep_sync::signalling::{signalling_section, in_signalling_section};
//!
//! assert!(!in_signalling_section());
//! {
//!     let _section = signalling_section();
//!     assert!(in_signalling_section());
//!     // ... signal release points here; never wait ...
//! }
//! assert!(!in_signalling_section());
//! ```

use std::cell::RefCell;
use std::marker::PhantomData;
use std::panic::Location;

thread_local! {
    /// Where each open section began, innermost last.
    static SECTIONS: RefCell<Vec<&'static Location<'static>>> = const { RefCell::new(Vec::new()) };
}

/// Guard of a signalling section; the section ends when it is dropped.
///
/// Not `Send`: a section belongs to the thread that opened it.
#[derive(Debug)]
#[must_use = "the signalling section ends when the guard is dropped"]
pub struct SignallingSection {
    _not_send: PhantomData<*const ()>,
}

/// Opens a signalling section on the current thread (sections nest).
#[track_caller]
pub fn signalling_section() -> SignallingSection {
    let at = Location::caller();
    SECTIONS.with(|s| s.borrow_mut().push(at));
    SignallingSection {
        _not_send: PhantomData,
    }
}

impl Drop for SignallingSection {
    fn drop(&mut self) {
        SECTIONS.with(|s| {
            s.borrow_mut().pop();
        });
    }
}

/// Whether the current thread is inside a signalling section.
pub fn in_signalling_section() -> bool {
    SECTIONS.with(|s| !s.borrow().is_empty())
}

/// Where the outermost open section of this thread began, if any.
pub fn section_origin() -> Option<&'static Location<'static>> {
    SECTIONS.with(|s| s.borrow().first().copied())
}

/// Called by every blocking wait: panics in debug builds inside a signalling section.
///
/// The panic is deliberate and only reachable through a programming error in lockstep itself
/// (a wait placed on a signalling path), never through client input.
#[track_caller]
#[inline]
pub fn assert_may_block() {
    if cfg!(debug_assertions) {
        let wait = Location::caller();
        if let Some(begin) = section_origin() {
            panic!(
                "blocking wait at {wait} inside a signalling section that began at {begin}: \
                 code on the path to signalling a fence must never wait on a fence"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_nest_and_end() {
        assert!(!in_signalling_section());
        let outer = signalling_section();
        let inner = signalling_section();
        assert!(in_signalling_section());
        drop(inner);
        assert!(in_signalling_section());
        drop(outer);
        assert!(!in_signalling_section());
        assert_may_block();
    }

    #[test]
    #[cfg(debug_assertions)]
    fn wait_inside_section_names_both_places() {
        let result = std::panic::catch_unwind(|| {
            let _s = signalling_section();
            assert_may_block();
        });
        let err = result.expect_err("must panic");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("blocking wait at"), "{msg}");
        assert!(msg.contains("signalling.rs"), "{msg}");
        assert!(msg.contains("began at"), "{msg}");
        // The guard was dropped during unwinding.
        assert!(!in_signalling_section());
    }
}
