//! A fixed-capacity double-ended FIFO of mbufs, allocated once: the storage
//! behind qdisc bands and the requeue list (no heap allocation per packet).

use crate::mbuf::Mbuf;

/// A bounded deque of mbufs (capacity rounded up to a power of two).
pub struct MbufFifo {
    slots: Box<[Option<Mbuf>]>,
    mask: usize,
    /// Index of the front element (wrapping).
    head: usize,
    len: usize,
    /// Bytes (packet lengths) held.
    bytes: u64,
}

impl std::fmt::Debug for MbufFifo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MbufFifo")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl MbufFifo {
    /// A FIFO holding at least `cap` packets.
    pub fn with_capacity(cap: usize) -> MbufFifo {
        let cap = cap.max(1).next_power_of_two();
        MbufFifo {
            slots: (0..cap).map(|_| None).collect(),
            mask: cap - 1,
            head: 0,
            len: 0,
            bytes: 0,
        }
    }

    #[inline(always)]
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held (sum of packet lengths).
    #[inline(always)]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends at the back; gives the packet back when full.
    #[inline(always)]
    pub fn push_back(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len > self.mask {
            return Err(m);
        }
        self.bytes += m.pkt_len() as u64;
        let i = (self.head + self.len) & self.mask;
        self.put(i, m);
        self.len += 1;
        Ok(())
    }

    /// Inserts at the front; gives the packet back when full.
    #[inline]
    pub fn push_front(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len > self.mask {
            return Err(m);
        }
        self.bytes += m.pkt_len() as u64;
        self.head = self.head.wrapping_sub(1) & self.mask;
        self.put(self.head, m);
        self.len += 1;
        Ok(())
    }

    /// Stores into a free slot. Slots outside the live window are always
    /// `None` (every pop takes its slot), so there is nothing to drop; this
    /// avoids the out-of-line drop-glue call a plain assignment emits.
    #[inline(always)]
    fn put(&mut self, i: usize, m: Mbuf) {
        let old = self.slots[i].replace(m);
        debug_assert!(old.is_none(), "slot {i} was live");
        std::mem::forget(old);
    }

    /// Takes the front packet.
    #[inline(always)]
    pub fn pop_front(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        let m = self.slots[self.head].take();
        self.head = (self.head + 1) & self.mask;
        self.len -= 1;
        if let Some(m) = &m {
            self.bytes -= m.pkt_len() as u64;
        }
        m
    }

    /// Length of the front packet.
    #[inline]
    pub fn front_len(&self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        self.slots[self.head].as_ref().map(|m| m.pkt_len())
    }
}
