//! RFS-like steering between the lcores whose stacks share one
//! [`ControlPlane`]: a UDP or TCP segment received on one lcore's queue for
//! a socket another lcore's replica holds is handed to that lcore through
//! an SPSC ring.
//!
//! Linux's RFS (`get_rps_cpu` → `enqueue_to_backlog` on the socket's CPU)
//! and aRFS (the NIC told to deliver the flow to that CPU's queue) move a
//! flow to where its socket is read; here the owner table the control plane
//! keeps for binds names the replica, with one Relaxed load per frame
//! ([`steer_target`]), and the frame crosses in a ring (no lock, no
//! allocation). A full ring drops the frame, counted in
//! [`SteerStats::steer_drops`]. Fragments are not steered (only the first
//! carries the ports): they are reassembled on the lcore that got them.
//!
//! Used by [`Runtime::run_stacked`](super::Runtime::run_stacked) and by
//! anything else that runs several replicas (the generator's socket
//! streams on every lcore).

use crate::mbuf::{Burst, Mbuf, SpscRing};
use crate::stack::shared::{ControlPlane, PortSpace};

/// The rings between every pair of replicas of one control plane:
/// `rings[from * n + to]`.
pub struct SteerRings {
    rings: Vec<SpscRing>,
    n: usize,
}

impl SteerRings {
    /// Rings for `n` replicas, each of `slots` frames.
    pub fn new(n: usize, slots: usize) -> SteerRings {
        SteerRings {
            rings: (0..n * n).map(|_| SpscRing::new(slots)).collect(),
            n,
        }
    }

    /// How many replicas the rings connect.
    pub fn replicas(&self) -> usize {
        self.n
    }

    fn ring(&self, from: usize, to: usize) -> &SpscRing {
        &self.rings[from * self.n + to]
    }
}

impl std::fmt::Debug for SteerRings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SteerRings").field("n", &self.n).finish()
    }
}

/// What one replica's steering did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SteerStats {
    /// Frames received here for another replica's socket and handed over.
    pub steered_out: u64,
    /// Frames other replicas handed to this one.
    pub steered_in: u64,
    /// Frames dropped because the ring to their replica was full.
    pub steer_drops: u64,
}

/// One replica's side of the steering: the frames it collects for the
/// others during an RX burst, flushed to their rings at the burst's end.
pub struct Steerer {
    me: usize,
    out: Vec<Burst>,
    pub stats: SteerStats,
}

impl Steerer {
    /// Replica `me` of `n`.
    pub fn new(me: usize, n: usize) -> Steerer {
        Steerer {
            me,
            out: (0..n).map(|_| Burst::new()).collect(),
            stats: SteerStats::default(),
        }
    }

    /// This replica's index in the control plane.
    pub fn replica(&self) -> usize {
        self.me
    }

    /// A received frame: kept for another replica (`tag` goes into the
    /// mbuf's user word for the receiver, e.g. the stack port), or given
    /// back when it is this replica's or nobody's.
    #[inline]
    pub fn offer(&mut self, cp: &ControlPlane, mut m: Mbuf, tag: u64) -> Option<Mbuf> {
        let Some(to) = steer_target(cp, &m).filter(|&o| o != self.me && o < self.out.len()) else {
            return Some(m);
        };
        m.set_user(tag);
        if let Err(m) = self.out[to].push(m) {
            drop(m);
            self.stats.steer_drops += 1;
        }
        None
    }

    /// Hands what [`Steerer::offer`] kept to the other replicas' rings;
    /// what does not fit is dropped here and counted once.
    pub fn flush(&mut self, rings: &SteerRings) {
        for (to, b) in self.out.iter_mut().enumerate() {
            if b.is_empty() {
                continue;
            }
            self.stats.steered_out += rings.ring(self.me, to).enqueue(b, |_, _| {}) as u64;
            self.stats.steer_drops += b.len() as u64;
            b.clear();
        }
    }

    /// The frames other replicas handed to this one, each given to `f`
    /// with the tag its sender set.
    pub fn take(&mut self, rings: &SteerRings, mut f: impl FnMut(u64, Mbuf)) {
        let mut b = Burst::new();
        for from in (0..rings.n).filter(|&x| x != self.me) {
            let ring = rings.ring(from, self.me);
            while ring.dequeue(&mut b, 32) > 0 {
                while let Some(m) = b.pop_front() {
                    self.stats.steered_in += 1;
                    f(m.user(), m);
                }
            }
        }
    }
}

/// The replica whose socket holds the destination port of this UDP or TCP
/// segment (unfragmented IPv4, optionally 802.1Q-tagged), if any.
pub fn steer_target(cp: &ControlPlane, m: &Mbuf) -> Option<usize> {
    let d = m.data();
    let be16 = |o: usize| -> Option<u16> { Some(u16::from_be_bytes([*d.get(o)?, *d.get(o + 1)?])) };
    let (mut et, mut l3) = (be16(12)?, 14);
    if et == 0x8100 {
        (et, l3) = (be16(16)?, 18);
    }
    if et != 0x0800 {
        return None;
    }
    let ihl = ((*d.get(l3)? & 0x0f) as usize) * 4;
    if ihl < 20 || be16(l3 + 6)? & 0x3fff != 0 {
        return None;
    }
    let space = match *d.get(l3 + 9)? {
        17 => PortSpace::Udp,
        6 => PortSpace::Tcp,
        _ => return None,
    };
    cp.owner(space, be16(l3 + ihl + 2)?)
}
