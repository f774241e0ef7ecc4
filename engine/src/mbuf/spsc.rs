//! A bounded single-producer/single-consumer ring of mbufs (what DPDK's
//! `rte_ring` in SP/SC mode is for): the `ring:NAME` port's cable, and a
//! hand-off between two lcores. Each side writes only its own index, with a
//! plain store (no read-modify-write).

use super::{Burst, Mbuf, MbufHdr};
use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A bounded SPSC queue of mbufs. Indices only grow; each side writes its own
/// index with a plain store (no read-modify-write).
pub struct SpscRing {
    slots: Box<[UnsafeCell<Option<NonNull<MbufHdr>>>]>,
    mask: usize,
    /// Next slot the producer fills.
    tail: AtomicUsize,
    /// Next slot the consumer takes.
    head: AtomicUsize,
}

// SAFETY: a slot is written only by the producer while it is outside
// head..tail and read only by the consumer while inside; the Release/Acquire
// pairs on head and tail order those accesses. The mbufs it carries are Send.
unsafe impl Sync for SpscRing {}
// SAFETY: see above.
unsafe impl Send for SpscRing {}

impl SpscRing {
    /// A ring of at least `cap` slots (rounded up to a power of two).
    pub fn new(cap: usize) -> SpscRing {
        let cap = cap.max(2).next_power_of_two();
        SpscRing {
            slots: (0..cap).map(|_| UnsafeCell::new(None)).collect(),
            mask: cap - 1,
            tail: AtomicUsize::new(0),
            head: AtomicUsize::new(0),
        }
    }

    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Packets in the ring now.
    pub fn len(&self) -> usize {
        self.tail
            .load(Ordering::Acquire)
            .wrapping_sub(self.head.load(Ordering::Acquire))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Producer: how many packets the consumer has taken in total.
    pub fn consumed(&self) -> usize {
        self.head.load(Ordering::Acquire)
    }

    /// Producer side: moves packets from the front of `pkts` while room lasts.
    /// `on_push` sees each packet before it leaves.
    pub fn enqueue(&self, pkts: &mut Burst, mut on_push: impl FnMut(usize, &Mbuf)) -> usize {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        let room = self.capacity() - tail.wrapping_sub(head);
        let n = room.min(pkts.len());
        for i in 0..n {
            let m = pkts.pop_front().expect("n <= len");
            on_push(tail.wrapping_add(i), &m);
            // SAFETY: slot tail+i is outside head..tail, so the consumer does not touch it.
            unsafe { *self.slots[(tail.wrapping_add(i)) & self.mask].get() = Some(m.into_raw()) };
        }
        self.tail.store(tail.wrapping_add(n), Ordering::Release);
        n
    }

    /// Consumer side: moves up to `max` packets to the back of `out`.
    pub fn dequeue(&self, out: &mut Burst, max: usize) -> usize {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        let n = tail.wrapping_sub(head).min(max).min(out.room());
        for i in 0..n {
            // SAFETY: slot head+i is inside head..tail: published by the producer.
            let p = unsafe { (*self.slots[(head.wrapping_add(i)) & self.mask].get()).take() };
            // SAFETY: the pointer came from `Mbuf::into_raw` in `enqueue`.
            let m = unsafe { Mbuf::from_raw(p.expect("published slot holds a packet")) };
            let _ = out.push(m);
        }
        self.head.store(head.wrapping_add(n), Ordering::Release);
        n
    }
}

impl Drop for SpscRing {
    fn drop(&mut self) {
        for s in self.slots.iter() {
            // SAFETY: no other side exists any more (we are being dropped).
            if let Some(p) = unsafe { (*s.get()).take() } {
                // SAFETY: came from `into_raw`.
                drop(unsafe { Mbuf::from_raw(p) });
            }
        }
    }
}
