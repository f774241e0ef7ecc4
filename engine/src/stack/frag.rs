//! IPv4 reassembly: plays `ip_defrag` → `ip_frag_queue` → `ip_frag_reasm`,
//! with `ip_expire` on the stack's timer and the `ipfrag_high_thresh` /
//! `ipfrag_time` limits (Linux net/ipv4/ip_fragment.c, net/ipv4/inet_fragment.c).
//!
//! Fragments of one datagram — same (source, destination, ID, protocol) —
//! wait in a queue, sorted by offset, as the mbufs they arrived in; when the
//! last byte is in and there is no hole, the payloads are chained behind the
//! first fragment (no copy) and the datagram goes on to the protocol. As
//! Linux does since RFC 5722 (`inet_frag_queue_insert` → `IPFRAG_OVERLAP`),
//! a fragment that overlaps another kills the whole datagram; an exact
//! duplicate is dropped alone (`IPFRAG_DUP`).

use super::wire::{Ipv4Header, IP_DF};
use crate::mbuf::Mbuf;
use std::net::Ipv4Addr;

/// `net.ipv4.ipfrag_time`: seconds a datagram may take to arrive whole.
pub const IPFRAG_TIME_NS: u64 = 30_000_000_000;
/// `net.ipv4.ipfrag_high_thresh`: buffer bytes all queues may hold (4 MiB).
pub const IPFRAG_HIGH_THRESH: usize = 4 << 20;
/// Most datagrams under reassembly at once (bounds the lookup).
const MAX_QUEUES: usize = 256;

/// What a fragment did.
#[derive(Debug)]
pub(crate) enum Defrag {
    /// Held: the datagram is not whole yet.
    Queued,
    /// Dropped alone (a duplicate, or after its datagram failed).
    Dropped,
    /// Its datagram failed (overlap, bad length, no room): counted once.
    Failed,
    /// The datagram is whole: the first fragment's header (lengths of the
    /// whole datagram, no MF/offset) and the payload as one chain.
    Done(Box<Ipv4Header>, Mbuf),
}

struct Frag {
    /// Payload byte range in the datagram.
    start: usize,
    end: usize,
    /// The fragment, positioned at its payload.
    m: Mbuf,
}

struct Queue {
    key: (Ipv4Addr, Ipv4Addr, u16, u8),
    frags: Vec<Frag>,
    /// Payload length once the last fragment (MF clear) is in.
    total: Option<usize>,
    /// The header of the fragment at offset 0, once in.
    first: Option<Ipv4Header>,
    born_ns: u64,
    mem: usize,
}

/// The reassembly queues of one stack.
pub(crate) struct Reassembly {
    queues: Vec<Queue>,
    mem: usize,
    pub(crate) high_thresh: usize,
    pub(crate) time_ns: u64,
}

/// Counter updates a call produced (the caller owns the SNMP counters).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReasmEvents {
    pub fails: u64,
    pub timeouts: u64,
}

impl Default for Reassembly {
    fn default() -> Self {
        Reassembly {
            queues: Vec::new(),
            mem: 0,
            high_thresh: IPFRAG_HIGH_THRESH,
            time_ns: IPFRAG_TIME_NS,
        }
    }
}

impl Reassembly {
    /// Datagrams under reassembly.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.queues.len()
    }

    /// Plays `ip_defrag` for one fragment `m` (positioned at its IP header,
    /// trimmed to the IP total length) with header `h`, at stack time `now`.
    pub(crate) fn defrag(&mut self, h: &Ipv4Header, mut m: Mbuf, now: u64) -> Defrag {
        let key = (h.src, h.dst, h.id, h.protocol);
        let hl = h.header_len();
        let start = h.frag_offset();
        let len = (h.total_len as usize).saturating_sub(hl);
        let end = start + len;
        let qi = self.queues.iter().position(|q| q.key == key);
        // A non-last fragment must carry a multiple of 8 bytes; nothing may
        // end past 65535 - 20 (`ip_frag_queue`'s checks).
        let bad = (h.mf() && (!len.is_multiple_of(8) || len == 0)) || end > 65535 - 20;
        if bad || m.adj(hl).is_err() {
            if let Some(i) = qi {
                self.kill(i);
            }
            return Defrag::Failed;
        }
        let i = match qi {
            Some(i) => i,
            None => {
                if self.queues.len() >= MAX_QUEUES {
                    // Evict the oldest, as inet_frag's eviction under pressure does.
                    self.kill(0);
                }
                self.queues.push(Queue {
                    key,
                    frags: Vec::new(),
                    total: None,
                    first: None,
                    born_ns: now,
                    mem: 0,
                });
                self.queues.len() - 1
            }
        };
        let q = &mut self.queues[i];
        if !h.mf() {
            // The last fragment fixes the length; a second, different "last" fails it.
            if q.total.is_some_and(|t| t != end) || q.frags.iter().any(|f| f.end > end) {
                self.kill(i);
                return Defrag::Failed;
            }
            q.total = Some(end);
        } else if q.total.is_some_and(|t| end > t) {
            self.kill(i);
            return Defrag::Failed;
        }
        // Insert sorted by start; an exact duplicate is dropped, any other
        // overlap kills the datagram (RFC 5722).
        let pos = q.frags.partition_point(|f| f.start < start);
        if let Some(f) = q.frags.get(pos) {
            if f.start == start && f.end == end {
                return Defrag::Dropped;
            }
            if f.start < end {
                self.kill(i);
                return Defrag::Failed;
            }
        }
        if pos > 0 && q.frags[pos - 1].end > start {
            if q.frags[pos - 1].start == start && q.frags[pos - 1].end == end {
                return Defrag::Dropped;
            }
            self.kill(i);
            return Defrag::Failed;
        }
        let truesize = m.buf_len() * m.nb_segs();
        if self.mem + truesize > self.high_thresh {
            // Over ipfrag_high_thresh: this datagram cannot be held.
            self.kill(i);
            return Defrag::Failed;
        }
        self.mem += truesize;
        let q = &mut self.queues[i];
        q.mem += truesize;
        if start == 0 {
            q.first = Some(*h);
        }
        q.frags.insert(pos, Frag { start, end, m });
        // Whole? Last fragment in, first in, no hole.
        let Some(total) = q.total else {
            return Defrag::Queued;
        };
        if q.first.is_none() {
            return Defrag::Queued;
        }
        let mut at = 0;
        for f in &q.frags {
            if f.start != at {
                return Defrag::Queued;
            }
            at = f.end;
        }
        if at != total {
            return Defrag::Queued;
        }
        // ip_frag_reasm: chain the payloads behind the first fragment.
        let q = self.queues.remove(i);
        self.mem -= q.mem;
        let mut first = q.first.expect("checked above");
        let mut it = q.frags.into_iter();
        let mut head = it.next().expect("at least one fragment").m;
        for f in it {
            head.chain(f.m);
        }
        first.total_len = (first.header_len() + total) as u16;
        first.frag &= IP_DF; // keep DF, clear MF and the offset
        Defrag::Done(Box::new(first), head)
    }

    /// Plays `ip_expire` for every queue older than `ipfrag_time`. For a
    /// queue whose first fragment came in (`INET_FRAG_FIRST_IN`),
    /// `first_in` sees that fragment's header and payload before it is
    /// freed: the caller sends the ICMP time exceeded `ip_expire` sends.
    pub(crate) fn expire(
        &mut self,
        now: u64,
        mut first_in: impl FnMut(&Ipv4Header, &Mbuf),
    ) -> ReasmEvents {
        let mut ev = ReasmEvents::default();
        while let Some(i) = self
            .queues
            .iter()
            .position(|q| now.saturating_sub(q.born_ns) >= self.time_ns)
        {
            let q = &self.queues[i];
            if let (Some(h), Some(f)) = (q.first.as_ref(), q.frags.first()) {
                if f.start == 0 {
                    first_in(h, &f.m);
                }
            }
            self.kill(i);
            ev.timeouts += 1;
            ev.fails += 1;
        }
        ev
    }

    /// Drops queue `i` and every fragment it holds (`inet_frag_kill`).
    fn kill(&mut self, i: usize) {
        let q = self.queues.remove(i);
        self.mem -= q.mem;
    }
}
