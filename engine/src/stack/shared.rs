//! The control plane every lcore's [`Stack`](super::Stack) shares: the part
//! Linux's single `arp_tbl`, its `fib_table`s and rules, and the UDP/TCP
//! port hashes play for every CPU at once.
//!
//! Linux keeps one neighbour table and one FIB, written under a lock and
//! read under RCU: an ARP reply that any CPU's softirq processes resolves the
//! neighbour for every CPU, and `ip route add` takes effect everywhere. Here
//! each lcore's stack keeps its own replica (its data path reads it with no
//! synchronisation at all), and the replicas converge through this
//! [`ControlPlane`]:
//!
//! - **Writes are rare and logged.** A neighbour learned from ARP on one
//!   lcore, a route or rule added through any stack or through the
//!   [`ControlPlane`] handle itself, a static neighbour: each is appended to
//!   a log under a mutex and the generation is bumped (a Release store).
//! - **Readers check a generation, not a lock.** [`Stack::sync`](super::Stack::sync)
//!   — once per poll loop, never per packet — loads the generation (a plain
//!   Acquire load); only when it moved does it take the mutex and replay
//!   the entries it has not seen (RCU's grace period becomes "the reader's
//!   next poll"). The log is trimmed once every replica has read an entry.
//! - **Ports are claimed once, for everyone.** `udp_lib_get_port` and
//!   `inet_csk_get_port` are global in Linux; here a bind claims the port in
//!   a table of owners (one compare-and-swap per bind, none per packet), so
//!   two lcores never hand out the same port, and the RX side can tell which
//!   lcore's socket a datagram is for with one Relaxed load
//!   ([`ControlPlane::owner`]) — the runtime's steering
//!   ([`crate::runtime::stacked`]) hands it to that lcore.

use super::fib_rules::RuleConf;
use super::neigh::{NeighNews, NudState};
use super::RouteConf;
use crate::ethdev::MacAddr;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Most replicas (lcores) one control plane serves: owners are stored in a
/// byte, 0 meaning "nobody".
pub const MAX_REPLICAS: usize = 254;

/// Which port space a claim is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSpace {
    Udp,
    Tcp,
}

/// One logged change.
#[derive(Debug, Clone)]
pub(crate) enum CtlOp {
    /// `neigh_update` with a link-layer address (ARP learned it, or `ip
    /// neigh add … nud permanent` when `state` is PERMANENT).
    Neigh(NeighNews),
    RouteAdd(RouteConf),
    RouteDel {
        table: u32,
        prefix: Ipv4Addr,
        len: u8,
        metric: Option<u32>,
    },
    RuleAdd(RuleConf),
    RuleDel(u32),
}

struct Entry {
    /// The replica that made the change (it applied it already), or `None`
    /// for a change made through the [`ControlPlane`] handle.
    origin: Option<usize>,
    op: CtlOp,
}

#[derive(Default)]
struct Log {
    /// Sequence number of `entries[0]`.
    base: u64,
    entries: VecDeque<Entry>,
    /// Per replica: the next sequence number it has not read (`None`: the
    /// slot is free).
    cursors: Vec<Option<u64>>,
    /// Every administrative change ever made (routes, rules, static
    /// neighbours), in order: what a replica joining late replays. Learned
    /// neighbours are not kept (they age anyway, and are learned again).
    durable: Vec<CtlOp>,
}

impl Log {
    fn end(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    fn trim(&mut self) {
        let min = self
            .cursors
            .iter()
            .flatten()
            .copied()
            .min()
            .unwrap_or(self.end());
        while self.base < min && self.entries.pop_front().is_some() {
            self.base += 1;
        }
    }
}

/// What a replica's sync found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncStats {
    /// Log entries applied.
    pub applied: u64,
    /// Entries this replica could not apply (a route whose port or gateway
    /// does not fit its ports, …): counted, the replica keeps going.
    pub refused: u64,
}

/// The shared control plane (see the module documentation).
pub struct ControlPlane {
    generation: AtomicU64,
    log: Mutex<Log>,
    udp_owner: Box<[AtomicU8]>,
    tcp_owner: Box<[AtomicU8]>,
}

impl Default for ControlPlane {
    fn default() -> Self {
        ControlPlane::new()
    }
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    pub fn new() -> ControlPlane {
        let owners = || (0..65536).map(|_| AtomicU8::new(0)).collect();
        ControlPlane {
            generation: AtomicU64::new(0),
            log: Mutex::new(Log::default()),
            udp_owner: owners(),
            tcp_owner: owners(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        // A replica that panicked mid-append leaves a consistent log (the
        // append is one push): keep going.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bumped by every logged change.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A new replica, and the administrative changes made before it joined
    /// (to apply first); it reads the log from here on.
    pub(crate) fn subscribe(&self) -> Option<(usize, Vec<CtlOp>)> {
        let mut g = self.lock();
        let end = g.end();
        let slot = match g.cursors.iter().position(Option::is_none) {
            Some(i) => i,
            None if g.cursors.len() < MAX_REPLICAS => {
                g.cursors.push(None);
                g.cursors.len() - 1
            }
            None => return None,
        };
        g.cursors[slot] = Some(end);
        Some((slot, g.durable.clone()))
    }

    /// A replica leaves (its stack is dropped): its ports are released.
    pub(crate) fn unsubscribe(&self, id: usize) {
        let mut g = self.lock();
        if let Some(c) = g.cursors.get_mut(id) {
            *c = None;
        }
        g.trim();
        drop(g);
        let me = id as u8 + 1;
        for t in [&self.udp_owner, &self.tcp_owner] {
            for o in t.iter() {
                let _ = o.compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn publish(&self, origin: Option<usize>, op: CtlOp) {
        let mut g = self.lock();
        let durable = match &op {
            CtlOp::Neigh(n) => n.state == NudState::Permanent,
            _ => true,
        };
        if durable {
            g.durable.push(op.clone());
        }
        if g.cursors.iter().any(Option::is_some) {
            g.entries.push_back(Entry { origin, op });
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Replays what replica `id` has not seen through `apply`, skipping its
    /// own changes; returns the generation it is now at.
    pub(crate) fn replay(&self, id: usize, mut apply: impl FnMut(&CtlOp)) -> u64 {
        let mut g = self.lock();
        let gen = self.generation.load(Ordering::Acquire);
        let Some(Some(from)) = g.cursors.get(id).copied() else {
            return gen;
        };
        let end = g.end();
        for seq in from..end {
            let e = &g.entries[(seq - g.base) as usize];
            if e.origin != Some(id) {
                apply(&e.op);
            }
        }
        g.cursors[id] = Some(end);
        g.trim();
        gen
    }

    /// `ip route add` for every replica (applied at each one's next sync).
    pub fn ip_route_add(&self, r: &RouteConf) {
        self.publish(None, CtlOp::RouteAdd(r.clone()));
    }

    /// `ip route del PREFIX table T [metric M]` for every replica.
    pub fn ip_route_del(&self, table: u32, prefix: Ipv4Addr, len: u8, metric: Option<u32>) {
        self.publish(
            None,
            CtlOp::RouteDel {
                table,
                prefix,
                len,
                metric,
            },
        );
    }

    /// `ip rule add` for every replica.
    pub fn ip_rule_add(&self, r: &RuleConf) {
        self.publish(None, CtlOp::RuleAdd(*r));
    }

    /// `ip rule del pref N` for every replica.
    pub fn ip_rule_del(&self, pref: u32) {
        self.publish(None, CtlOp::RuleDel(pref));
    }

    /// `ip neigh replace IP lladdr MAC dev PORT nud permanent` for every replica.
    pub fn neigh_add_permanent(&self, port: u16, ip: Ipv4Addr, mac: MacAddr) {
        self.publish(
            None,
            CtlOp::Neigh(NeighNews {
                port,
                ip,
                mac,
                state: NudState::Permanent,
                create: true,
            }),
        );
    }

    fn owners(&self, space: PortSpace) -> &[AtomicU8] {
        match space {
            PortSpace::Udp => &self.udp_owner,
            PortSpace::Tcp => &self.tcp_owner,
        }
    }

    /// The replica whose socket holds `port`, if any: one Relaxed load
    /// (what the RX steering reads per frame).
    #[inline]
    pub fn owner(&self, space: PortSpace, port: u16) -> Option<usize> {
        match self.owners(space)[port as usize].load(Ordering::Relaxed) {
            0 => None,
            o => Some(o as usize - 1),
        }
    }

    /// Replica `id` claims `port`: true when it is free or already `id`'s.
    pub(crate) fn claim(&self, space: PortSpace, port: u16, id: usize) -> bool {
        let me = id as u8 + 1;
        match self.owners(space)[port as usize].compare_exchange(
            0,
            me,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => true,
            Err(o) => o == me,
        }
    }

    /// Replica `id` gives `port` back (its last binding on it went).
    pub(crate) fn release(&self, space: PortSpace, port: u16, id: usize) {
        let me = id as u8 + 1;
        let _ = self.owners(space)[port as usize].compare_exchange(
            me,
            0,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    /// Entries still held (for tests and stats).
    pub fn log_len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// A stack's membership in a control plane.
pub(crate) struct Replica {
    pub cp: std::sync::Arc<ControlPlane>,
    pub id: usize,
    /// The generation the last sync reached.
    pub seen: u64,
    pub stats: SyncStats,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.cp.unsubscribe(self.id);
    }
}

/// A port claim hook the socket tables use: `None` when the stack is alone.
#[derive(Clone)]
pub(crate) struct PortClaims {
    pub cp: std::sync::Arc<ControlPlane>,
    pub id: usize,
}

impl PortClaims {
    pub fn claim(&self, space: PortSpace, port: u16) -> bool {
        self.cp.claim(space, port, self.id)
    }

    pub fn taken_by_other(&self, space: PortSpace, port: u16) -> bool {
        self.cp.owner(space, port).is_some_and(|o| o != self.id)
    }

    pub fn release(&self, space: PortSpace, port: u16) {
        self.cp.release(space, port, self.id)
    }
}
