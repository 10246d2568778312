//! A small reference model of a timeline syncobj, stated the way the `timeline` module docs
//! state the rules (groups of ordered points), independent of SoftTimeline's chain walk.
#![allow(dead_code)]

/// One submitted point.
#[derive(Debug, Clone)]
pub struct Entry {
    pub seqno: u64,
    /// Starts a new group: the first point, or an unordered one.
    pub group_start: bool,
    pub fence: usize,
}

/// The model: fences are indices into `signalled`.
#[derive(Debug, Default, Clone)]
pub struct Model {
    pub base: Option<usize>,
    pub entries: Vec<Entry>,
    pub signalled: Vec<bool>,
}

/// What a check of a point answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    NotSubmitted,
    Pending,
    Signalled,
}

impl Model {
    pub fn new_fence(&mut self, signalled: bool) -> usize {
        self.signalled.push(signalled);
        self.signalled.len() - 1
    }

    /// TRANSFER to point 0: the content becomes just `fence`.
    pub fn replace(&mut self, fence: usize) {
        self.entries.clear();
        self.base = Some(fence);
    }

    /// A new point (0 included: never later than the head, so unordered).
    pub fn add(&mut self, point: u64, fence: usize) {
        let entry = match self.entries.last() {
            Some(head) if point > head.seqno => Entry {
                seqno: point,
                group_start: false,
                fence,
            },
            Some(head) => Entry {
                seqno: head.seqno.max(point),
                group_start: true,
                fence,
            },
            None => Entry {
                seqno: point,
                group_start: true,
                fence,
            },
        };
        self.entries.push(entry);
    }

    fn sig(&self, fence: usize) -> bool {
        self.signalled.get(fence).copied().unwrap_or(false)
    }

    /// Entry `i` and everything older (base included) have signalled.
    fn all_up_to(&self, i: usize) -> bool {
        self.base.is_none_or(|b| self.sig(b))
            && self.entries.iter().take(i + 1).all(|e| self.sig(e.fence))
    }

    fn head_group_start(&self) -> usize {
        self.entries
            .iter()
            .rposition(|e| e.group_start)
            .unwrap_or(0)
    }

    pub fn last_submitted(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.seqno)
    }

    pub fn check(&self, point: u64) -> Answer {
        let to_answer = |b: bool| {
            if b {
                Answer::Signalled
            } else {
                Answer::Pending
            }
        };
        let Some(head) = self.entries.len().checked_sub(1) else {
            return match (self.base, point) {
                (Some(b), 0) => to_answer(self.sig(b)),
                _ => Answer::NotSubmitted,
            };
        };
        if point == 0 {
            return to_answer(self.all_up_to(head));
        }
        if self.last_submitted() < point {
            return Answer::NotSubmitted;
        }
        // The first node of the head's group with seqno >= point covers it.
        let start = self.head_group_start();
        let target = (start..=head)
            .find(|&i| self.entries.get(i).is_some_and(|e| e.seqno >= point))
            .unwrap_or(head);
        to_answer(self.all_up_to(target))
    }

    pub fn available(&self, point: u64) -> bool {
        if self.entries.is_empty() {
            return point == 0 && self.base.is_some();
        }
        point <= self.last_submitted()
    }

    pub fn query(&self) -> u64 {
        let Some(head) = self.entries.len().checked_sub(1) else {
            return 0;
        };
        let start = self.head_group_start();
        let prev_seqno = |i: usize| {
            if i == start {
                0
            } else {
                self.entries.get(i.wrapping_sub(1)).map_or(0, |e| e.seqno)
            }
        };
        let oldest_pending =
            (start..=head).find(|&i| self.entries.get(i).is_some_and(|e| !self.sig(e.fence)));
        match oldest_pending {
            Some(i) => prev_seqno(i),
            None if self.all_up_to(head) => self.entries.get(head).map_or(0, |e| e.seqno),
            None => prev_seqno(head),
        }
    }
}

/// A tiny deterministic PRNG (xorshift64*), so kernel sequences are reproducible by seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
