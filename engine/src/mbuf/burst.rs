//! A fixed-capacity, allocation-free FIFO of mbufs: what moves through
//! `tx_burst`/`rx_burst` (DPDK passes `struct rte_mbuf **`; here ownership is
//! explicit: a driver takes what it accepts from the front).

use super::Mbuf;
use std::mem::MaybeUninit;

/// Most mbufs one [`Burst`] holds.
pub const BURST_MAX: usize = 256;

/// A FIFO of up to [`BURST_MAX`] mbufs, stored inline (no heap).
pub struct Burst {
    items: [MaybeUninit<Mbuf>; BURST_MAX],
    head: usize,
    tail: usize,
}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Burst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Burst").field("len", &self.len()).finish()
    }
}

impl Burst {
    pub const fn new() -> Burst {
        Burst {
            items: [const { MaybeUninit::uninit() }; BURST_MAX],
            head: 0,
            tail: 0,
        }
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.tail - self.head
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.tail == self.head
    }

    /// How many more mbufs fit.
    #[inline(always)]
    pub fn room(&self) -> usize {
        BURST_MAX - self.len()
    }

    /// Appends at the back; gives the mbuf back when full.
    #[inline(always)]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.tail == BURST_MAX {
            if self.head == 0 {
                return Err(m);
            }
            self.compact();
        }
        self.items[self.tail].write(m);
        self.tail += 1;
        Ok(())
    }

    #[cold]
    fn compact(&mut self) {
        let n = self.len();
        // SAFETY: moves initialised slots head..tail down to 0..n (overlap-safe copy);
        // the old positions are treated as uninitialised afterwards.
        unsafe {
            let base = self.items.as_mut_ptr();
            std::ptr::copy(base.add(self.head), base, n);
        }
        self.head = 0;
        self.tail = n;
    }

    /// Inserts at the front (a requeue); gives the mbuf back when full.
    #[inline]
    pub fn push_front(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.head == 0 {
            if self.tail == BURST_MAX {
                return Err(m);
            }
            let n = self.len();
            // SAFETY: moves initialised slots 0..n up by one (overlap-safe copy); tail < MAX.
            unsafe {
                let base = self.items.as_mut_ptr();
                std::ptr::copy(base, base.add(1), n);
            }
            self.head = 1;
            self.tail = n + 1;
        }
        self.head -= 1;
        self.items[self.head].write(m);
        Ok(())
    }

    /// Takes the front mbuf.
    #[inline(always)]
    pub fn pop_front(&mut self) -> Option<Mbuf> {
        if self.head == self.tail {
            return None;
        }
        // SAFETY: slots head..tail are initialised; we advance head past it.
        let m = unsafe { self.items[self.head].assume_init_read() };
        self.head += 1;
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
        Some(m)
    }

    /// Takes the back mbuf.
    #[inline]
    pub fn pop_back(&mut self) -> Option<Mbuf> {
        if self.head == self.tail {
            return None;
        }
        self.tail -= 1;
        // SAFETY: slot `tail` was initialised and is now outside head..tail.
        let m = unsafe { self.items[self.tail].assume_init_read() };
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
        Some(m)
    }

    /// The mbufs, front first.
    #[inline(always)]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: head..tail are initialised Mbufs; MaybeUninit<T> has T's layout.
        unsafe {
            std::slice::from_raw_parts(
                self.items.as_ptr().add(self.head) as *const Mbuf,
                self.len(),
            )
        }
    }

    /// The mbufs, front first, writable.
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        let n = self.len();
        // SAFETY: as `as_slice`, with unique access.
        unsafe {
            std::slice::from_raw_parts_mut(self.items.as_mut_ptr().add(self.head) as *mut Mbuf, n)
        }
    }

    pub fn front(&self) -> Option<&Mbuf> {
        self.as_slice().first()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Mbuf> {
        self.as_slice().iter()
    }

    /// Drops every mbuf (back to their pools), in bulk.
    #[inline]
    pub fn clear(&mut self) {
        let (head, tail) = (self.head, self.tail);
        if head == tail {
            return;
        }
        self.head = 0;
        self.tail = 0;
        // SAFETY: slots head..tail hold initialised mbufs, which the burst no
        // longer counts (head = tail = 0 above): their handles pass to
        // `free_bulk` exactly once. An `Mbuf` is a `NonNull<MbufHdr>` plus a
        // zero-sized marker (`repr(transparent)`), so the slots read as
        // header pointers.
        unsafe {
            let p = self.items.as_ptr().add(head) as *const std::ptr::NonNull<super::MbufHdr>;
            super::pool::free_bulk(std::slice::from_raw_parts(p, tail - head));
        }
    }

    /// Appends `n` mbufs made by `f(0..n)` (the caller checked the room).
    #[inline(always)]
    pub(crate) fn extend_from_fn(&mut self, n: usize, mut f: impl FnMut(usize) -> Mbuf) {
        if self.tail + n > BURST_MAX {
            self.compact();
        }
        assert!(
            self.tail + n <= BURST_MAX,
            "extend_from_fn past the burst's room"
        );
        for (i, slot) in self.items[self.tail..self.tail + n].iter_mut().enumerate() {
            slot.write(f(i));
        }
        self.tail += n;
    }

    /// Drops the first `n` mbufs.
    pub fn drop_front(&mut self, n: usize) {
        for _ in 0..n.min(self.len()) {
            drop(self.pop_front());
        }
    }

    /// Total bytes (packet lengths) held.
    pub fn bytes(&self) -> usize {
        self.iter().map(|m| m.pkt_len()).sum()
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eal::dma::{set_page_mode, PageMode};
    use crate::mbuf::{Mempool, PoolConfig};

    #[test]
    fn fifo_order_front_insert_and_drop_frees() {
        set_page_mode(PageMode::Small);
        let mut p = Mempool::new(&PoolConfig {
            size: 300,
            ..Default::default()
        })
        .unwrap();
        let mut b = Burst::new();
        for _ in 0..BURST_MAX {
            b.push(p.alloc().unwrap()).unwrap();
        }
        let extra = p.alloc().unwrap();
        let extra = b.push(extra).unwrap_err();
        let first = b.pop_front().unwrap();
        let idx0 = first.index();
        b.push(extra).unwrap();
        let f = b.pop_front().unwrap();
        assert_eq!(f.index(), idx0 + 1);
        b.push_front(f).unwrap();
        assert_eq!(b.front().unwrap().index(), idx0 + 1);
        assert_eq!(b.len(), BURST_MAX);
        drop(first);
        drop(b);
        assert_eq!(p.stats().in_use, 0);
    }
}
