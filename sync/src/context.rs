//! Fence contexts: who issued a fence, and how its sequence numbers compare.
//!
//! # Why
//!
//! Two fences can only be ordered against each other when they come from the same
//! producer (a GPU ring, a client timeline, a KMS CRTC). The kernel calls that producer a
//! *context* and gives every fence a `(context, seqno)` pair. Most producers count with 64 bits
//! and never wrap, so "later" is plain `>`. Some hardware counters are 32 bits wide and wrap;
//! for those the kernel's rule (`__dma_fence_is_later` with `use_64bit_seqno == false`) is
//! `(i32)(lower32(a) - lower32(b)) > 0`, which makes 0 later than `0xffff_ffff`. A context here
//! says which of the two rules its fences use, so callers never pick the wrong one.
//!
//! # How
//!
//! ```
//! use lockstep_sync::{FenceContext, SeqnoOrder, Seqno};
//!
//! let ring = FenceContext::new(SeqnoOrder::Wrapping32);
//! assert!(ring.is_later(Seqno(0), Seqno(0xffff_ffff)));
//! let a = ring.next_fence();
//! let b = ring.next_fence();
//! assert_eq!(b.is_later(&a), Some(true));
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use crate::fence::Fence;

/// A sequence number of a fence within its context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Seqno(pub u64);

/// How the sequence numbers of a context compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqnoOrder {
    /// 64-bit counters that never wrap: `a` is later than `b` when `a > b`.
    Linear64,
    /// 32-bit counters that wrap: `a` is later than `b` when
    /// `(lower32(a) - lower32(b)) as i32 > 0`.
    Wrapping32,
}

impl SeqnoOrder {
    /// Whether `a` is later than `b` under this order.
    pub fn is_later(self, a: Seqno, b: Seqno) -> bool {
        match self {
            SeqnoOrder::Linear64 => a.0 > b.0,
            // Truncation to the lower 32 bits is the rule, see the module docs.
            #[allow(clippy::cast_possible_truncation)]
            SeqnoOrder::Wrapping32 => ((a.0 as u32).wrapping_sub(b.0 as u32) as i32) > 0,
        }
    }
}

/// The identity of a fence context, unique within the process.
///
/// The top bit records the context's [`SeqnoOrder`], so a fence carries its comparison rule in
/// the same 8 bytes as its context id (the fence's shared state has a 96-byte budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContextId(u64);

const WRAP32_BIT: u64 = 1 << 63;

impl ContextId {
    /// The context of fences that were made already signalled ([`Fence::signalled`]).
    pub const STUB: ContextId = ContextId(0);

    /// The number of this context, without the order bit.
    pub fn get(self) -> u64 {
        self.0 & !WRAP32_BIT
    }

    /// How fences of this context compare.
    pub fn order(self) -> SeqnoOrder {
        if self.0 & WRAP32_BIT != 0 {
            SeqnoOrder::Wrapping32
        } else {
            SeqnoOrder::Linear64
        }
    }

    fn allocate(order: SeqnoOrder) -> ContextId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed) & !WRAP32_BIT;
        match order {
            SeqnoOrder::Linear64 => ContextId(id),
            SeqnoOrder::Wrapping32 => ContextId(id | WRAP32_BIT),
        }
    }
}

/// A producer of fences: a unique context id, an order and a sequence counter.
///
/// Fences made by a context do not keep the context alive: dropping the context while its
/// fences are still held is fine (see "Fences are self-contained" in DESIGN.md).
#[derive(Debug)]
pub struct FenceContext {
    id: ContextId,
    next: AtomicU64,
}

impl FenceContext {
    /// A new context with a fresh id; its first fence gets seqno 1.
    pub fn new(order: SeqnoOrder) -> FenceContext {
        FenceContext {
            id: ContextId::allocate(order),
            next: AtomicU64::new(1),
        }
    }

    /// The id of this context.
    pub fn id(&self) -> ContextId {
        self.id
    }

    /// How fences of this context compare.
    pub fn order(&self) -> SeqnoOrder {
        self.id.order()
    }

    /// Whether `a` is later than `b` under this context's order.
    pub fn is_later(&self, a: Seqno, b: Seqno) -> bool {
        self.order().is_later(a, b)
    }

    /// A pending fence with the next sequence number of this context.
    ///
    /// For [`SeqnoOrder::Wrapping32`] contexts the counter wraps at 32 bits, like the hardware
    /// counters such contexts stand for.
    pub fn next_fence(&self) -> Fence {
        let raw = self.next.fetch_add(1, Ordering::Relaxed);
        let seqno = match self.order() {
            SeqnoOrder::Linear64 => raw,
            SeqnoOrder::Wrapping32 => raw & 0xffff_ffff,
        };
        Fence::new(self.id, Seqno(seqno))
    }

    /// A pending fence with an explicit sequence number.
    pub fn fence_at(&self, seqno: Seqno) -> Fence {
        Fence::new(self.id, seqno)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_order() {
        let o = SeqnoOrder::Linear64;
        assert!(o.is_later(Seqno(2), Seqno(1)));
        assert!(!o.is_later(Seqno(1), Seqno(2)));
        assert!(!o.is_later(Seqno(1), Seqno(1)));
        assert!(o.is_later(Seqno(0x1_0000_0000), Seqno(0xffff_ffff)));
        assert!(!o.is_later(Seqno(0), Seqno(0xffff_ffff)));
    }

    #[test]
    fn wrapping_order_at_the_wrap() {
        let o = SeqnoOrder::Wrapping32;
        assert!(o.is_later(Seqno(0), Seqno(0xffff_ffff)));
        assert!(!o.is_later(Seqno(0xffff_ffff), Seqno(0)));
        assert!(o.is_later(Seqno(5), Seqno(0xffff_fff0)));
        assert!(!o.is_later(Seqno(7), Seqno(7)));
        // Only the lower 32 bits count.
        assert!(!o.is_later(Seqno(0x1_0000_0001), Seqno(2)));
    }

    #[test]
    fn contexts_are_unique_and_carry_their_order() {
        let a = FenceContext::new(SeqnoOrder::Linear64);
        let b = FenceContext::new(SeqnoOrder::Wrapping32);
        assert_ne!(a.id().get(), b.id().get());
        assert_eq!(a.order(), SeqnoOrder::Linear64);
        assert_eq!(b.order(), SeqnoOrder::Wrapping32);
        assert_ne!(a.id(), ContextId::STUB);
    }

    #[test]
    fn wrapping_context_counter_wraps() {
        let c = FenceContext::new(SeqnoOrder::Wrapping32);
        c.next.store(0xffff_ffff, Ordering::Relaxed);
        let last = c.next_fence();
        let first = c.next_fence();
        assert_eq!(last.seqno(), Seqno(0xffff_ffff));
        assert_eq!(first.seqno(), Seqno(0));
        assert_eq!(first.is_later(&last), Some(true));
        assert_eq!(last.is_later(&first), Some(false));
    }
}
