//! The neighbour table and ARP (RFC 826): states INCOMPLETE, REACHABLE,
//! STALE, DELAY, PROBE, FAILED and PERMANENT with Linux's default timers,
//! a bounded queue of packets waiting for resolution, and a cached Ethernet
//! header per entry (`hh_cache`).
//!
//! Timers are driven by `NeighTable::poll_timers`, which the stack's
//! `poll_timers(now)` calls (the runtime's timer poll plays the kernel timer
//! softirq that runs `neigh_timer_handler`).

use super::snmp::StackCounters;
use super::wire::{self, ArpPacket, EthernetHeader, VlanTag, ARP_REPLY, ARP_REQUEST};
use super::{Errno, L2Xmit, PortState};
use crate::ethdev::MacAddr;
use crate::mbuf::{Burst, Mbuf, Mempool, BURST_MAX};
use std::collections::HashMap;
use std::net::Ipv4Addr;

const MS: u64 = 1_000_000;

/// The index a [`super::ip::Dst`] carries when its neighbour could not be
/// created (the table was full: `neigh_alloc` failed); no entry has it.
pub(crate) const NO_NEIGH: usize = usize::MAX;

/// What a queued packet charges an entry's `unres_qlen_bytes`: the
/// `skb->truesize` Linux gives a frame of its length, `SKB_TRUESIZE(len)`
/// = len + 256 (`sk_buff`) + 320 (`skb_shared_info`) on x86-64, the frame
/// being the IPv4 packet and its Ethernet header. So the default 212 992
/// holds 101 full 1514-byte frames, the `unres_qlen` Linux derives.
fn truesize(m: &Mbuf) -> usize {
    m.pkt_len() + ETH_HLEN + SKB_OVERHEAD
}
const ETH_HLEN: usize = 14;
/// `SKB_DATA_ALIGN(sizeof(struct sk_buff)) + SKB_DATA_ALIGN(sizeof(struct skb_shared_info))`.
const SKB_OVERHEAD: usize = 256 + 320;

/// Neighbour Unreachability Detection states (`NUD_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum NudState {
    /// Just created, never used (`NUD_NONE`).
    None,
    /// Resolution in progress: broadcast ARP requests every `retrans`.
    Incomplete,
    /// Confirmed within `reachable_time`.
    Reachable,
    /// Address known but unconfirmed; the next use starts verification.
    Stale,
    /// Used while stale; waiting `delay_first_probe` for an upper-layer confirmation.
    Delay,
    /// Unicast probing.
    Probe,
    /// Resolution failed: the queued packets were dropped. The next packet
    /// starts resolution again (FAILED → INCOMPLETE, `__neigh_event_send`).
    Failed,
    /// Static entry: never changes, never probed.
    Permanent,
}

impl NudState {
    /// `NUD_VALID`: has a usable link-layer address.
    pub fn valid(self) -> bool {
        matches!(
            self,
            NudState::Reachable
                | NudState::Stale
                | NudState::Delay
                | NudState::Probe
                | NudState::Permanent
        )
    }
}

/// Neighbour parameters (`/proc/sys/net/ipv4/neigh/<dev>/*`), Linux defaults.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct NeighParams {
    /// `base_reachable_time_ms`: reachable time is drawn uniformly from [base/2, 3·base/2).
    pub base_reachable_ms: u64,
    /// `retrans_time_ms`: spacing of probes.
    pub retrans_ms: u64,
    /// `mcast_solicit`: broadcast requests while INCOMPLETE.
    pub mcast_probes: u32,
    /// `ucast_solicit`: unicast probes in PROBE.
    pub ucast_probes: u32,
    /// `delay_first_probe_time`.
    pub delay_first_probe_ms: u64,
    /// `unres_qlen`: packets queued per unresolved entry (at most 256).
    pub unres_qlen: usize,
    /// `unres_qlen_bytes`: bytes queued per unresolved entry, each packet
    /// charged `SKB_TRUESIZE` of its frame (`QUEUE_LEN_BYTES`; Linux's
    /// default `SK_WMEM_MAX` = 256 × `SKB_TRUESIZE(256)` = 212 992 on
    /// x86-64, of which `unres_qlen` 101 is the view in 1514-byte frames).
    /// Past it the oldest packets are dropped.
    pub unres_qlen_bytes: usize,
    /// `gc_thresh1`: below this many entries the periodic GC does not run.
    pub gc_thresh1: usize,
    /// `gc_thresh2`: above it, creating an entry runs a forced GC (at most
    /// once per 5 s) that trims the table back towards it.
    pub gc_thresh2: usize,
    /// `gc_thresh3`: the hard limit; creating an entry at it runs a forced
    /// GC every time, and fails (`table_fulls`, ENOBUFS) when nothing could
    /// be freed. PERMANENT entries do not count (`exempt_from_gc`).
    pub gc_thresh3: usize,
    /// How long an unused FAILED entry stays before garbage collection
    /// removes it (Linux's periodic GC runs every base/2). A packet sent
    /// meanwhile re-resolves it at once.
    pub failed_hold_ms: u64,
    /// `gc_staletime`: unused STALE entries older than this are collected.
    pub gc_stale_ms: u64,
}

impl Default for NeighParams {
    fn default() -> Self {
        NeighParams {
            base_reachable_ms: 30_000,
            retrans_ms: 1_000,
            mcast_probes: 3,
            ucast_probes: 3,
            delay_first_probe_ms: 5_000,
            unres_qlen: 101,
            unres_qlen_bytes: 212_992,
            gc_thresh1: 128,
            gc_thresh2: 512,
            gc_thresh3: 1024,
            failed_hold_ms: 15_000,
            gc_stale_ms: 60_000,
        }
    }
}

/// A neighbour as shown to users (`ip neigh`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NeighInfo {
    pub port: u16,
    pub ip: Ipv4Addr,
    pub mac: Option<String>,
    pub state: NudState,
    pub queued: usize,
}

/// One entry.
pub(crate) struct Neighbour {
    pub port: u16,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
    pub state: NudState,
    /// Cached L2 header (`hh_cache`): dst, src, [802.1Q tag], 0x0800.
    pub hh: [u8; 18],
    pub hh_len: u8,
    /// Bumped whenever `hh` changes (socket header templates compare it).
    pub hh_seq: u32,
    /// Unique id, so a cached index can tell the slot was reused.
    pub uid: u64,
    /// Resolution failures that dropped queued packets (each one is an
    /// `arp_error_report` → ICMP host unreachable for their senders).
    pub fail_gen: u32,
    /// Last reachability confirmation (`None`: never confirmed).
    confirmed: Option<u64>,
    used: u64,
    updated: u64,
    reachable_ns: u64,
    timer: u64,
    probes: u32,
    pending: Burst,
    /// Bytes `pending` holds (`arp_queue_len_bytes`).
    pending_bytes: usize,
    /// A static entry (`ip neigh add … nud permanent`): outside the GC
    /// limits and never collected (`exempt_from_gc`).
    exempt_gc: bool,
}

/// Everything the neighbour layer needs to emit frames.
pub(crate) struct NeighIo<'a> {
    pub pool: &'a mut Mempool,
    pub xmit: &'a mut dyn L2Xmit,
    pub ports: &'a [PortState],
    pub c: &'a StackCounters,
}

const NO_TIMER: u64 = u64::MAX;

/// An address learned on one lcore, for the other lcores' replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NeighNews {
    pub port: u16,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
    pub state: NudState,
    /// Create the entry where it is missing (the origin has one), or only
    /// update existing ones (an ARP reply the origin had no entry for: in
    /// Linux's one table, the lcore that asked has it).
    pub create: bool,
}

/// The neighbour table (`arp_tbl`).
pub struct NeighTable {
    pub(crate) params: NeighParams,
    entries: Vec<Option<Box<Neighbour>>>,
    free: Vec<usize>,
    index: HashMap<(u16, Ipv4Addr), usize>,
    next_uid: u64,
    next_timer: u64,
    next_gc: u64,
    rng: u64,
    /// Entries that count against the GC thresholds (`gc_entries`).
    gc_entries: usize,
    /// When the last forced GC ran (`last_flush`).
    last_flush: u64,
    /// Addresses learned here that the other lcores' replicas must hear
    /// about (drained by `Stack::sync`; only when the stack shares a
    /// control plane).
    pub(crate) outbox: Vec<NeighNews>,
    pub(crate) share: bool,
}

impl NeighTable {
    pub fn new(params: NeighParams, seed: u64) -> NeighTable {
        NeighTable {
            params,
            entries: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            next_uid: 1,
            next_timer: NO_TIMER,
            next_gc: 0,
            rng: seed | 1,
            gc_entries: 0,
            last_flush: 0,
            outbox: Vec::new(),
            share: false,
        }
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `neigh_rand_reach_time`: uniform in [base/2, 3·base/2).
    fn rand_reach(&mut self) -> u64 {
        let base = self.params.base_reachable_ms * MS;
        if base == 0 {
            return 0;
        }
        base / 2 + self.rand() % base
    }

    fn arm(&mut self, idx: usize, at: u64) {
        if let Some(n) = self.entries[idx].as_deref_mut() {
            n.timer = at;
        }
        self.next_timer = self.next_timer.min(at);
    }

    pub(crate) fn get(&self, idx: usize) -> Option<&Neighbour> {
        self.entries.get(idx).and_then(|e| e.as_deref())
    }

    /// The index of the entry for (port, ip), if any.
    pub(crate) fn find(&self, port: u16, ip: Ipv4Addr) -> Option<usize> {
        self.index.get(&(port, ip)).copied()
    }

    /// `__neigh_lookup` + `__neigh_create` (state NONE is folded into the
    /// first event): finds or makes the entry for (port, ip); `None` when
    /// the table is full (`neigh_alloc`'s limits, counted `table_fulls`).
    pub(crate) fn lookup_or_create(
        &mut self,
        port: u16,
        ip: Ipv4Addr,
        c: &StackCounters,
        now: u64,
    ) -> Option<usize> {
        if let Some(i) = self.find(port, ip) {
            return Some(i);
        }
        self.neigh_alloc(c, now)
            .then(|| self.create(port, ip, false, c, now))
    }

    /// Plays `neigh_alloc`'s limits for an entry that counts against them:
    /// at `gc_thresh3`, or at `gc_thresh2` more than 5 s after the last
    /// forced GC, run `neigh_forced_gc`; at `gc_thresh3` with nothing freed
    /// the allocation fails (`table_fulls`).
    fn neigh_alloc(&mut self, c: &StackCounters, now: u64) -> bool {
        let entries = self.gc_entries;
        let (t2, t3) = (self.params.gc_thresh2, self.params.gc_thresh3);
        let full = entries >= t3;
        let flush_due = entries >= t2 && now > self.last_flush + 5_000 * MS;
        if !(full || flush_due) {
            return true;
        }
        // The forced GC runs either way; only at gc_thresh3 does freeing
        // nothing refuse the entry.
        let freed = self.neigh_forced_gc(c, now);
        if full && freed == 0 {
            c.neigh.table_fulls.add(1);
            return false;
        }
        true
    }

    /// Plays `neigh_forced_gc`: walks the entries oldest first (`gc_list`
    /// order: creation) and removes those nothing holds — no timer running,
    /// no packet queued (`refcnt == 1`), not static — that are FAILED, NOARP,
    /// or not updated for 5 s, until the table is back at `gc_thresh2`
    /// (counting the entry about to be made). Returns how many went.
    fn neigh_forced_gc(&mut self, c: &StackCounters, now: u64) -> usize {
        c.neigh.forced_gc_runs.add(1);
        let max_clean = (self.gc_entries + 1).saturating_sub(self.params.gc_thresh2);
        let mut cand: Vec<(u64, usize)> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let n = e.as_deref()?;
                let unheld = !n.exempt_gc && n.timer == NO_TIMER && n.pending.is_empty();
                // NOARP entries show as PERMANENT here but are not static.
                let remove = n.state == NudState::Failed
                    || n.state == NudState::Permanent
                    || n.updated + 5_000 * MS < now;
                (unheld && remove).then_some((n.uid, i))
            })
            .collect();
        cand.sort_unstable();
        let mut shrunk = 0;
        for (_, i) in cand {
            self.remove(i, c);
            shrunk += 1;
            if shrunk >= max_clean {
                break;
            }
        }
        self.last_flush = now;
        shrunk
    }

    /// Frees entry `idx` (`neigh_remove_one` → `neigh_cleanup_and_release`).
    fn remove(&mut self, idx: usize, c: &StackCounters) {
        if let Some(n) = self.entries[idx].take() {
            self.index.remove(&(n.port, n.ip));
            self.free.push(idx);
            if !n.exempt_gc {
                self.gc_entries -= 1;
            }
            c.neigh.destroys.add(1);
        }
    }

    fn create(
        &mut self,
        port: u16,
        ip: Ipv4Addr,
        exempt_gc: bool,
        c: &StackCounters,
        now: u64,
    ) -> usize {
        let uid = self.next_uid;
        self.next_uid += 1;
        let n = Box::new(Neighbour {
            port,
            ip,
            mac: MacAddr::ZERO,
            state: NudState::None,
            hh: [0; 18],
            hh_len: 0,
            hh_seq: 0,
            uid,
            fail_gen: 0,
            confirmed: None,
            used: now,
            updated: now,
            reachable_ns: 0,
            timer: NO_TIMER,
            probes: 0,
            pending: Burst::new(),
            pending_bytes: 0,
            exempt_gc,
        });
        let idx = match self.free.pop() {
            Some(i) => {
                self.entries[i] = Some(n);
                i
            }
            None => {
                self.entries.push(Some(n));
                self.entries.len() - 1
            }
        };
        self.index.insert((port, ip), idx);
        if !exempt_gc {
            self.gc_entries += 1;
        }
        c.neigh.allocs.add(1);
        idx
    }

    fn set_lladdr(n: &mut Neighbour, mac: MacAddr, ports: &[PortState]) {
        n.mac = mac;
        let p = &ports[n.port as usize].conf;
        let len = build_l2(&mut n.hh, mac, p.mac, p.vlan, wire::ETHERTYPE_IPV4);
        n.hh_len = len as u8;
        n.hh_seq = n.hh_seq.wrapping_add(1);
    }

    /// The `neigh_hh_output` fast-path test for a socket's cached header:
    /// the entry is the one the template was built from, its header is
    /// unchanged, and its state lets packets go without the resolve path.
    /// Marks the entry used.
    #[inline]
    pub(crate) fn fast_ok(&mut self, idx: usize, uid: u64, hh_seq: u32, now: u64) -> bool {
        match self.entries.get_mut(idx).and_then(|e| e.as_deref_mut()) {
            Some(n)
                if n.uid == uid
                    && n.hh_seq == hh_seq
                    && matches!(
                        n.state,
                        NudState::Reachable
                            | NudState::Permanent
                            | NudState::Delay
                            | NudState::Probe
                    ) =>
            {
                n.used = now;
                true
            }
            _ => false,
        }
    }

    /// Adds a PERMANENT entry (static, from configuration).
    pub(crate) fn add_static(
        &mut self,
        port: u16,
        ip: Ipv4Addr,
        mac: MacAddr,
        io: &mut NeighIo<'_>,
        now: u64,
    ) {
        // `ip neigh add … nud permanent`: exempt from the GC limits.
        let idx = match self.find(port, ip) {
            Some(i) => i,
            None => self.create(port, ip, true, io.c, now),
        };
        let n = self.entries[idx].as_deref_mut().expect("live entry");
        if !n.exempt_gc {
            // neigh_update_gc_list: it leaves the GC's list.
            n.exempt_gc = true;
            self.gc_entries -= 1;
        }
        Self::set_lladdr(n, mac, io.ports);
        n.state = NudState::Permanent;
        n.timer = NO_TIMER;
        n.updated = now;
        Self::flush_pending(n, io);
    }

    /// Another lcore's replica learned `mac` for (port, ip): the same
    /// `neigh_update` here (creating the entry, as the one shared table of
    /// Linux has it), without telling the others again. Packets waiting for
    /// the address go out now.
    pub(crate) fn apply_news(&mut self, news: &NeighNews, io: &mut NeighIo<'_>, now: u64) {
        let NeighNews {
            port,
            ip,
            mac,
            state,
            create,
        } = *news;
        if port as usize >= io.ports.len() {
            return;
        }
        if state == NudState::Permanent {
            self.add_static(port, ip, mac, io, now);
            return;
        }
        let idx = if create {
            self.lookup_or_create(port, ip, io.c, now)
        } else {
            self.find(port, ip)
        };
        let share = std::mem::replace(&mut self.share, false);
        if let Some(idx) = idx {
            self.update(idx, mac, state, io, now);
        }
        self.share = share;
    }

    /// `dst_confirm_neigh` (MSG_CONFIRM): the upper layer saw forward progress,
    /// so reachability is refreshed without probing.
    pub(crate) fn confirm(&mut self, idx: usize, now: u64) {
        if let Some(n) = self.entries.get_mut(idx).and_then(|e| e.as_deref_mut()) {
            n.confirmed = Some(now);
        }
    }

    /// Plays `neigh_output` → `neigh_hh_output` (valid entry: push the cached
    /// header and hand the frame to `dev_queue_xmit`) or `neigh_resolve_output`
    /// / `__neigh_event_send` (unresolved: queue and start resolution).
    ///
    /// `m` holds an IPv4 packet at its data start. `Ok` means sent or queued.
    pub(crate) fn neigh_output(
        &mut self,
        idx: usize,
        m: Mbuf,
        io: &mut NeighIo<'_>,
        now: u64,
    ) -> Result<(), Errno> {
        let (delay_ms, retrans_ms, qlen, qbytes) = (
            self.params.delay_first_probe_ms,
            self.params.retrans_ms,
            self.params.unres_qlen,
            self.params.unres_qlen_bytes,
        );
        let Some(n) = self.entries.get_mut(idx).and_then(|e| e.as_deref_mut()) else {
            // NO_NEIGH: creating the entry failed (table full), which
            // ip_finish_output2 reports as neigh_alloc's ENOBUFS.
            return Err(if idx == NO_NEIGH {
                Errno::ENOBUFS
            } else {
                Errno::EHOSTUNREACH
            });
        };
        n.used = now;
        match n.state {
            NudState::Reachable | NudState::Permanent | NudState::Delay | NudState::Probe => {
                return neigh_hh_output(n, m, io);
            }
            NudState::Stale => {
                // __neigh_event_send: STALE → DELAY, first probe after delay_first_probe.
                n.state = NudState::Delay;
                n.updated = now;
                let at = now + delay_ms * MS;
                let r = neigh_hh_output(n, m, io);
                self.arm(idx, at);
                return r;
            }
            NudState::Incomplete => {}
            NudState::None if io.ports[n.port as usize].conf.noarp => {
                // arp_constructor on an IFF_NOARP device: NUD_NOARP with the
                // device's own address; never probed, never expires.
                let mac = io.ports[n.port as usize].conf.mac;
                Self::set_lladdr(n, mac, io.ports);
                n.state = NudState::Permanent;
                n.updated = now;
                return neigh_hh_output(n, m, io);
            }
            NudState::None | NudState::Failed => {
                // __neigh_event_send: any state outside CONNECTED, DELAY,
                // PROBE, STALE and INCOMPLETE (that is NONE or FAILED) with
                // multicast probes configured goes to INCOMPLETE, queues the
                // packet and probes at once — a FAILED entry is re-resolved
                // by the next packet, not held refusing sends.
                if n.state == NudState::Failed {
                    io.c.neigh.failed_resolves.add(1);
                }
                n.state = NudState::Incomplete;
                n.updated = now;
                n.probes = 0;
                let (port, ip) = (n.port, n.ip);
                send_arp(io, port, ARP_REQUEST, MacAddr::BROADCAST, MacAddr::ZERO, ip);
                n.probes = 1;
                self.arm(idx, now + retrans_ms * MS);
            }
        }
        let n = self.entries[idx].as_deref_mut().expect("live entry");
        let cap = qlen.clamp(1, BURST_MAX);
        let size = truesize(&m);
        // __neigh_event_send: drop the oldest until the new packet fits
        // `unres_qlen_bytes` (and, here, the packet count); a packet larger
        // than the limit alone is still queued.
        while n.pending.len() >= cap || (n.pending_bytes + size > qbytes && !n.pending.is_empty()) {
            let old = n.pending.pop_front().expect("not empty");
            n.pending_bytes -= truesize(&old);
            drop(old);
            io.c.neigh.unres_discards.add(1);
        }
        n.pending_bytes += size;
        if let Err(m) = n.pending.push(m) {
            n.pending_bytes -= size;
            drop(m);
            io.c.neigh.unres_discards.add(1);
        }
        Ok(())
    }

    /// Plays `neigh_event_send` for a caller with no packet to queue (an
    /// application that wants the address before it builds its frames):
    /// NONE or FAILED starts resolution (INCOMPLETE, the first probe now),
    /// STALE goes to DELAY; returns the link-layer address once the entry
    /// is valid (`NUD_VALID`), None while it is being resolved.
    pub(crate) fn event_send(
        &mut self,
        idx: usize,
        io: &mut NeighIo<'_>,
        now: u64,
    ) -> Option<MacAddr> {
        let (delay_ms, retrans_ms) = (self.params.delay_first_probe_ms, self.params.retrans_ms);
        let n = self.entries.get_mut(idx)?.as_deref_mut()?;
        n.used = now;
        match n.state {
            NudState::Reachable | NudState::Permanent | NudState::Delay | NudState::Probe => {
                Some(n.mac)
            }
            NudState::Stale => {
                n.state = NudState::Delay;
                n.updated = now;
                let mac = n.mac;
                self.arm(idx, now + delay_ms * MS);
                Some(mac)
            }
            NudState::Incomplete => None,
            NudState::None if io.ports[n.port as usize].conf.noarp => {
                let mac = io.ports[n.port as usize].conf.mac;
                Self::set_lladdr(n, mac, io.ports);
                n.state = NudState::Permanent;
                n.updated = now;
                Some(mac)
            }
            NudState::None | NudState::Failed => {
                if n.state == NudState::Failed {
                    io.c.neigh.failed_resolves.add(1);
                }
                n.state = NudState::Incomplete;
                n.updated = now;
                let (port, ip) = (n.port, n.ip);
                send_arp(io, port, ARP_REQUEST, MacAddr::BROADCAST, MacAddr::ZERO, ip);
                n.probes = 1;
                self.arm(idx, now + retrans_ms * MS);
                None
            }
        }
    }

    fn flush_pending(n: &mut Neighbour, io: &mut NeighIo<'_>) {
        n.pending_bytes = 0;
        while let Some(m) = n.pending.pop_front() {
            // The sender was already told "sent"; a refusal now is counted here.
            if neigh_hh_output(n, m, io).is_err() {
                io.c.neigh.queued_tx_drops.add(1);
            }
        }
    }

    /// `neigh_update`: a new link-layer address and/or state learned from ARP.
    fn update(&mut self, idx: usize, mac: MacAddr, new: NudState, io: &mut NeighIo<'_>, now: u64) {
        let reach = self.rand_reach();
        let n = self.entries[idx].as_deref_mut().expect("live entry");
        if n.state == NudState::Permanent {
            return;
        }
        let old = n.state;
        let changed = !old.valid() || n.mac != mac;
        // Same address, only "STALE" news: keep a better state (neigh_update).
        let new = if !changed && new == NudState::Stale && old.valid() {
            old
        } else {
            new
        };
        if changed {
            Self::set_lladdr(n, mac, io.ports);
        }
        if self.share && (changed || old != new) {
            self.outbox.push(NeighNews {
                port: n.port,
                ip: n.ip,
                mac,
                state: new,
                create: true,
            });
        }
        n.state = new;
        n.updated = now;
        let mut arm = None;
        if new == NudState::Reachable {
            n.confirmed = Some(now);
            n.reachable_ns = reach;
            n.probes = 0;
            arm = Some(now + reach);
        } else if new == NudState::Stale {
            n.timer = NO_TIMER;
        }
        if !old.valid() && new.valid() {
            Self::flush_pending(n, io);
        }
        if let Some(at) = arm {
            self.arm(idx, at);
        }
    }

    /// Plays `arp_process`: learns from a received ARP packet and answers
    /// requests for our address (including duplicate-address probes).
    pub(crate) fn arp_input(
        &mut self,
        port: u16,
        arp: &ArpPacket,
        to_us_unicast: bool,
        io: &mut NeighIo<'_>,
        now: u64,
    ) {
        let pc = &io.ports[port as usize].conf;
        let (our_mac, our_ip) = (pc.mac, pc.addr);
        match arp.op {
            ARP_REQUEST => io.c.neigh.arp_requests_received.add(1),
            ARP_REPLY => io.c.neigh.arp_replies_received.add(1),
            _ => {
                io.c.neigh.arp_ignored.add(1);
                return;
            }
        }
        if arp.sha == our_mac || arp.sha.is_multicast() {
            io.c.neigh.arp_ignored.add(1);
            return;
        }
        if arp.spa.is_unspecified() {
            // Duplicate address detection probe: answer for our address only.
            if arp.op == ARP_REQUEST && arp.tpa == our_ip {
                send_arp(io, port, ARP_REPLY, arp.sha, arp.sha, arp.spa);
            } else {
                io.c.neigh.arp_ignored.add(1);
            }
            return;
        }
        if arp.op == ARP_REQUEST && arp.tpa == our_ip {
            // neigh_event_ns: create or refresh as STALE, then reply (a
            // full table only skips the learning).
            if let Some(idx) = self.lookup_or_create(port, arp.spa, io.c, now) {
                self.update(idx, arp.sha, NudState::Stale, io, now);
            }
            send_arp(io, port, ARP_REPLY, arp.sha, arp.sha, arp.spa);
            return;
        }
        // Replies and others' requests (incl. gratuitous ARP): update only
        // entries we already have.
        let st = if arp.op == ARP_REPLY && to_us_unicast {
            NudState::Reachable
        } else {
            NudState::Stale
        };
        let known = self.find(port, arp.spa);
        if let Some(idx) = known {
            self.update(idx, arp.sha, st, io, now);
        }
        if self.share && arp.op == ARP_REPLY {
            // Another lcore's entry may be the one waiting for it (the reply
            // lands on whichever queue the NIC picks): the others update
            // the entries they have.
            self.outbox.push(NeighNews {
                port,
                ip: arp.spa,
                mac: arp.sha,
                state: st,
                create: false,
            });
        } else if known.is_none() {
            io.c.neigh.arp_ignored.add(1);
        }
    }

    /// Plays `neigh_timer_handler` for every due entry, plus periodic GC
    /// (`neigh_periodic_work`).
    pub(crate) fn poll_timers(&mut self, io: &mut NeighIo<'_>, now: u64) {
        if now >= self.next_gc {
            self.gc(io.c, now);
            self.next_gc = now + (self.params.base_reachable_ms * MS / 2).max(MS);
        }
        if now < self.next_timer {
            return;
        }
        let p = self.params.clone();
        let mut next = NO_TIMER;
        for idx in 0..self.entries.len() {
            let due = matches!(self.entries[idx].as_deref(), Some(n) if n.timer <= now);
            if due {
                let reach = self.rand_reach();
                let n = self.entries[idx].as_deref_mut().expect("live entry");
                n.timer = NO_TIMER;
                Self::timer_fired(n, &p, reach, io, now);
            }
            if let Some(n) = self.entries[idx].as_deref() {
                next = next.min(n.timer);
            }
        }
        self.next_timer = next;
    }

    fn timer_fired(n: &mut Neighbour, p: &NeighParams, reach: u64, io: &mut NeighIo<'_>, now: u64) {
        let delay = p.delay_first_probe_ms * MS;
        let retrans = p.retrans_ms * MS;
        match n.state {
            NudState::Reachable => {
                let until = n.confirmed.map(|c| c + n.reachable_ns);
                if let Some(until) = until.filter(|&u| now <= u) {
                    n.timer = until;
                } else if now <= n.used + delay {
                    n.state = NudState::Delay;
                    n.updated = now;
                    n.timer = now + delay;
                } else {
                    n.state = NudState::Stale;
                    n.updated = now;
                }
            }
            NudState::Delay => {
                if let Some(conf) = n.confirmed.filter(|&c| now <= c + delay) {
                    // Confirmed by the upper layer (MSG_CONFIRM): no probe needed.
                    n.state = NudState::Reachable;
                    n.updated = now;
                    n.reachable_ns = reach;
                    n.timer = conf + reach;
                } else {
                    n.state = NudState::Probe;
                    n.updated = now;
                    n.probes = 1;
                    send_arp(io, n.port, ARP_REQUEST, n.mac, MacAddr::ZERO, n.ip);
                    n.timer = now + retrans;
                }
            }
            NudState::Incomplete | NudState::Probe => {
                let max = if n.state == NudState::Incomplete {
                    p.mcast_probes
                } else {
                    p.ucast_probes
                };
                if n.probes >= max {
                    n.state = NudState::Failed;
                    n.updated = now;
                    io.c.neigh.res_failed.add(1);
                    let dropped = n.pending.len() as u64;
                    if dropped > 0 {
                        n.fail_gen = n.fail_gen.wrapping_add(1);
                    }
                    n.pending.clear();
                    n.pending_bytes = 0;
                    io.c.neigh.failed_drops.add(dropped);
                } else {
                    let dst = if n.state == NudState::Incomplete {
                        MacAddr::BROADCAST
                    } else {
                        n.mac
                    };
                    send_arp(io, n.port, ARP_REQUEST, dst, MacAddr::ZERO, n.ip);
                    n.probes += 1;
                    n.timer = now + retrans;
                }
            }
            NudState::None | NudState::Stale | NudState::Failed | NudState::Permanent => {}
        }
    }

    /// `neigh_periodic_work`: nothing below `gc_thresh1` entries (static
    /// ones included, `tbl->entries`); else unused FAILED entries after
    /// `failed_hold` and unused STALE/NONE ones after `gc_staletime` go.
    fn gc(&mut self, c: &StackCounters, now: u64) {
        if self.index.len() < self.params.gc_thresh1 {
            return;
        }
        let hold = self.params.failed_hold_ms * MS;
        let stale = self.params.gc_stale_ms * MS;
        for idx in 0..self.entries.len() {
            let remove = match self.entries[idx].as_deref() {
                Some(n) => {
                    (n.state == NudState::Failed && now >= n.updated + hold)
                        || (matches!(n.state, NudState::Stale | NudState::None)
                            && now >= n.used.max(n.updated) + stale)
                }
                None => false,
            };
            if remove {
                self.remove(idx, c);
            }
        }
    }

    /// The table as users see it.
    pub fn list(&self) -> Vec<NeighInfo> {
        let mut v: Vec<NeighInfo> = self
            .entries
            .iter()
            .flatten()
            .map(|n| NeighInfo {
                port: n.port,
                ip: n.ip,
                mac: n.state.valid().then(|| n.mac.to_string()),
                state: n.state,
                queued: n.pending.len(),
            })
            .collect();
        v.sort_by_key(|n| (n.port, n.ip));
        v
    }

    /// State of the entry for (port, ip).
    pub fn state(&self, port: u16, ip: Ipv4Addr) -> Option<NudState> {
        self.find(port, ip)
            .and_then(|i| self.get(i))
            .map(|n| n.state)
    }
}

/// `neigh_hh_output`: pushes the cached header and hands the frame on.
fn neigh_hh_output(n: &Neighbour, mut m: Mbuf, io: &mut NeighIo<'_>) -> Result<(), Errno> {
    let hl = n.hh_len as usize;
    match m.prepend(hl) {
        Ok(h) => h.copy_from_slice(&n.hh[..hl]),
        Err(_) => return Err(Errno::ENOBUFS),
    }
    let (_, l3, l4) = m.tx_lens();
    m.set_tx_lens(hl as u8, l3, l4);
    io.xmit.queue_xmit(n.port, m).map_err(|_| Errno::ENOBUFS)
}

/// Writes an Ethernet (+ optional 802.1Q) header; returns its length.
pub(crate) fn build_l2(
    b: &mut [u8],
    dst: MacAddr,
    src: MacAddr,
    vlan: Option<u16>,
    ethertype: u16,
) -> usize {
    match vlan {
        Some(vid) => {
            EthernetHeader {
                dst,
                src,
                ethertype: wire::ETHERTYPE_VLAN,
            }
            .emit(b);
            VlanTag {
                pcp: 0,
                dei: false,
                vid,
                ethertype,
            }
            .emit(&mut b[14..]);
            18
        }
        None => {
            EthernetHeader {
                dst,
                src,
                ethertype,
            }
            .emit(b);
            14
        }
    }
}

/// Builds and sends one ARP packet from `port` (`arp_send_dst`).
pub(crate) fn send_arp(
    io: &mut NeighIo<'_>,
    port: u16,
    op: u16,
    eth_dst: MacAddr,
    tha: MacAddr,
    tpa: Ipv4Addr,
) {
    let pc = &io.ports[port as usize].conf;
    let Some(mut m) = io.pool.alloc() else {
        io.c.neigh.ctl_tx_drops.add(1);
        return;
    };
    let l2len = if pc.vlan.is_some() { 18 } else { 14 };
    let Ok(b) = m.append(l2len + wire::ARP_LEN) else {
        io.c.neigh.ctl_tx_drops.add(1);
        return;
    };
    build_l2(b, eth_dst, pc.mac, pc.vlan, wire::ETHERTYPE_ARP);
    ArpPacket {
        op,
        sha: pc.mac,
        spa: pc.addr,
        tha,
        tpa,
    }
    .emit(&mut b[l2len..]);
    match io.xmit.queue_xmit(port, m) {
        Ok(()) => {
            if op == ARP_REQUEST {
                io.c.neigh.arp_requests_sent.add(1)
            } else {
                io.c.neigh.arp_replies_sent.add(1)
            }
        }
        Err(_) => io.c.neigh.ctl_tx_drops.add(1),
    }
}
