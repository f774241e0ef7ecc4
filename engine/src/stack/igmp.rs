//! IPv4 multicast membership and IGMPv2 host reports (RFC 2236), as Linux
//! runs them with `force_igmp_version = 2` (net/ipv4/igmp.c): a group joined
//! on a port (`ip_mc_inc_group`, one entry per port with a user count, the
//! `in_device`'s `mc_list`) is reported twice — 2 jiffies after the join
//! (`IGMP_INITIAL_REPORT_DELAY`) and once more within the unsolicited
//! report interval (10 s, `igmp_qrv` = 2 reports) — and a leave message goes
//! to 224.0.0.2 when the last user drops it, if we were the last reporter
//! (`igmp_group_dropped`). The all-hosts group 224.0.0.1 is always joined
//! and never reported. Receive filtering (`ip_check_mc_rcu`) and the
//! multicast loopback (`ip_mc_output`) use `McTable::is_member`.
//!
//! IGMP input (`igmp_rcv`): a membership query schedules a report for
//! each group it asks about at a random point below its Max Resp Time
//! (`igmp_heard_query` → `igmp_mod_timer`; an IGMPv3 query is answered as
//! a v2 one, as with `force_igmp_version = 2`), and another member's
//! report for a group stops ours (`igmp_heard_report`: v2 report
//! suppression).
//!
//! With `force_igmp_version = 3` the reports are IGMPv3's (RFC 3376 4.2,
//! `igmpv3_send_cr` / `igmpv3_send_report`): a join sends `igmp_qrv`
//! CHANGE_TO_EXCLUDE records, 2 jiffies and then within 1 s
//! (`igmpv3_unsolicited_report_interval`), a leave as many
//! CHANGE_TO_INCLUDE records, a query gets MODE_IS_EXCLUDE, and no report
//! is suppressed. One group record per report (Linux packs a port's records
//! into one).
//!
//! Not modelled: source filters, and the compatibility modes (a v1 query's
//! 10 s delay is honoured, but reports keep the configured version).

use super::wire::{self, Ipv4Header};
use super::{Errno, Stack};
use std::net::Ipv4Addr;

/// `IGMP_ALL_HOSTS`, `IGMP_ALL_ROUTER`.
pub const IGMP_ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
pub const IGMP_ALL_ROUTER: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);
pub const IPPROTO_IGMP: u8 = 2;
pub const IGMPV2_HOST_MEMBERSHIP_REPORT: u8 = 0x16;
pub const IGMP_HOST_LEAVE_MESSAGE: u8 = 0x17;
/// `IGMPV3_HOST_MEMBERSHIP_REPORT` (RFC 3376 4.2) and its destination,
/// `IGMPV3_ALL_MCR` 224.0.0.22.
pub const IGMPV3_HOST_MEMBERSHIP_REPORT: u8 = 0x22;
pub const IGMPV3_ALL_MCR: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 22);
/// Group record types (RFC 3376 4.2.12): current state `MODE_IS_EXCLUDE`,
/// state changes `CHANGE_TO_INCLUDE` (a leave) / `CHANGE_TO_EXCLUDE` (a join).
pub const IGMPV3_MODE_IS_EXCLUDE: u8 = 2;
pub const IGMPV3_CHANGE_TO_INCLUDE: u8 = 3;
pub const IGMPV3_CHANGE_TO_EXCLUDE: u8 = 4;
/// `igmpv3_unsolicited_report_interval`: 1 s.
const V3_UNSOLICITED_REPORT_INTERVAL_NS: u64 = 1_000_000_000;
/// `IGMP_HOST_MEMBERSHIP_QUERY`, `IGMP_HOST_MEMBERSHIP_REPORT` (v1).
pub const IGMP_HOST_MEMBERSHIP_QUERY: u8 = 0x11;
pub const IGMP_HOST_MEMBERSHIP_REPORT: u8 = 0x12;
/// `IGMP_QUERY_RESPONSE_INTERVAL` (10 s): a v1 query's response delay.
const IGMP_QUERY_RESPONSE_INTERVAL_NS: u64 = 10_000_000_000;
/// One Max Resp Time unit: 1/10 s (`IGMP_TIMER_SCALE`).
const MRT_UNIT_NS: u64 = 100_000_000;
/// One jiffy at HZ = 1000.
const JIFFY_NS: u64 = 1_000_000;
/// `net.ipv4.igmp_max_memberships`: groups one socket may join.
pub const IGMP_MAX_MEMBERSHIPS: usize = 20;
/// `net.ipv4.igmp_qrv`: unsolicited reports per join.
const IGMP_QRV: u32 = 2;
/// `IGMP_INITIAL_REPORT_DELAY` (1 jiffy: `igmp_start_timer` draws below it,
/// so 0) + the 2 jiffies `igmp_start_timer` adds, at HZ = 1000.
const FIRST_REPORT_NS: u64 = 2_000_000;
/// `igmpv2_unsolicited_report_interval`: 10 s.
const V2_UNSOLICITED_REPORT_INTERVAL_NS: u64 = 10_000_000_000;
/// IP Router Alert option (RFC 2113): `IPOPT_RA`, length 4, value 0.
const IPOPT_RA: [u8; 4] = [0x94, 0x04, 0, 0];

const NO_TIMER: u64 = u64::MAX;

/// One group joined on one port (`struct ip_mc_list`).
#[derive(Debug, Clone)]
struct McGroup {
    port: u16,
    group: Ipv4Addr,
    users: u32,
    /// Unsolicited reports still to send (`unsolicit_count`).
    unsolicit: u32,
    /// We sent the last report (`reporter`): we owe the leave.
    reporter: bool,
    timer: u64,
    /// IGMPv3: the last user left; the `CHANGE_TO_INCLUDE` records are
    /// still being sent (Linux's `mc_tomb`), the group is no longer joined.
    leaving: bool,
    /// IGMPv3: the pending report answers a query (`MODE_IS_EXCLUDE`)
    /// rather than a state change (`crcount` exhausted).
    query: bool,
}

/// The groups of every port.
#[derive(Default)]
pub(crate) struct McTable {
    groups: Vec<McGroup>,
    rng: u64,
    /// `force_igmp_version`: 2 or 3.
    version: u8,
}

impl McTable {
    pub(crate) fn new(seed: u64, version: u8) -> McTable {
        McTable {
            groups: Vec::new(),
            rng: seed | 1,
            version,
        }
    }

    /// `ip_check_mc_rcu`: is `group` joined on `port`? The all-hosts group
    /// always is (`ip_mc_up` joins it).
    #[inline]
    pub(crate) fn is_member(&self, port: u16, group: Ipv4Addr) -> bool {
        group == IGMP_ALL_HOSTS
            || self
                .groups
                .iter()
                .any(|g| g.port == port && g.group == group && !g.leaving)
    }

    /// `get_random_u32_below(max)`.
    fn below(&mut self, max: u64) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        if max == 0 {
            0
        } else {
            x % max
        }
    }

    /// Groups joined on `port` (for `ip maddr show`), with their user count.
    pub(crate) fn list(&self) -> Vec<(u16, Ipv4Addr, u32)> {
        self.groups
            .iter()
            .map(|g| (g.port, g.group, g.users))
            .collect()
    }
}

/// `IGMPV3_MRC`: a v3 Max Resp Code in tenths of a second (RFC 3376
/// 4.1.1: below 128 the value, else a mantissa/exponent float).
pub fn igmpv3_mrc(code: u8) -> u64 {
    if code < 0x80 {
        code as u64
    } else {
        (((code & 0x0f) | 0x10) as u64) << (((code >> 4) & 7) + 3)
    }
}

/// What a membership change asks the stack to send.
enum Send {
    Report,
    Leave,
    /// An IGMPv3 report with one group record of this type, no sources.
    V3(u8),
}

impl Stack {
    /// Plays `ip_mc_find_dev` for `IP_ADD_MEMBERSHIP`: the port whose
    /// address is `iface`, or with 0.0.0.0 the port a route to the group
    /// leaves by; `ENODEV` when there is none.
    pub(crate) fn mc_find_port(&mut self, group: Ipv4Addr, iface: Ipv4Addr) -> Result<u16, Errno> {
        if !iface.is_unspecified() {
            return self.port_of_addr(iface).ok_or(Errno::ENODEV);
        }
        self.route_output(group, None, None)
            .map(|d| d.port)
            .map_err(|_| Errno::ENODEV)
    }

    /// Plays `ip_mc_inc_group` → `igmp_group_added`: one more user of
    /// `group` on `port`; the first schedules the unsolicited reports.
    pub(crate) fn ip_mc_inc_group(&mut self, port: u16, group: Ipv4Addr) {
        let now = self.now;
        if let Some(g) = self
            .mc
            .groups
            .iter_mut()
            .find(|g| g.port == port && g.group == group)
        {
            g.users += 1;
            if g.leaving {
                // Rejoined while its leave records were going out: a new
                // join (state change) again.
                g.leaving = false;
                g.query = false;
                g.unsolicit = IGMP_QRV;
                g.timer = now + FIRST_REPORT_NS;
            }
            return;
        }
        let report = group != IGMP_ALL_HOSTS;
        self.mc.groups.push(McGroup {
            port,
            group,
            users: 1,
            unsolicit: if report { IGMP_QRV } else { 0 },
            reporter: false,
            timer: if report {
                now + FIRST_REPORT_NS
            } else {
                NO_TIMER
            },
            leaving: false,
            query: false,
        });
    }

    /// Plays `ip_mc_dec_group` → `igmp_group_dropped`: one user fewer; the
    /// last one removes the group, sending the leave if we reported it.
    pub(crate) fn ip_mc_dec_group(&mut self, port: u16, group: Ipv4Addr) {
        let Some(i) = self
            .mc
            .groups
            .iter()
            .position(|g| g.port == port && g.group == group)
        else {
            return;
        };
        let g = &mut self.mc.groups[i];
        g.users -= 1;
        if g.users > 0 {
            return;
        }
        if self.mc.version == 3 {
            // igmp_group_dropped → igmpv3_add_delrec + igmp_ifc_event: the
            // leave is `igmp_qrv` CHANGE_TO_INCLUDE records, whoever
            // reported last (v3 has no report suppression).
            g.leaving = true;
            g.query = false;
            g.unsolicit = IGMP_QRV;
            g.timer = self.now + FIRST_REPORT_NS;
            return;
        }
        let g = self.mc.groups.remove(i);
        if g.reporter {
            self.igmp_send_report(port, group, Send::Leave);
        }
    }

    /// Plays `igmp_timer_expire` for every due group: sends the report and,
    /// while unsolicited reports remain, rearms at a random point of the
    /// unsolicited report interval. Runs from [`Stack::poll_timers`].
    pub(crate) fn igmp_poll_timers(&mut self, now: u64) {
        for i in 0..self.mc.groups.len() {
            if self.mc.groups[i].timer > now {
                continue;
            }
            let (port, group) = (self.mc.groups[i].port, self.mc.groups[i].group);
            let v3 = self.mc.version == 3;
            let interval = if v3 {
                V3_UNSOLICITED_REPORT_INTERVAL_NS
            } else {
                V2_UNSOLICITED_REPORT_INTERVAL_NS
            };
            let next = self.mc.below(interval) + FIRST_REPORT_NS;
            let g = &mut self.mc.groups[i];
            g.timer = NO_TIMER;
            let what = match (v3, g.leaving, g.query) {
                (false, _, _) => Send::Report,
                (true, true, _) => Send::V3(IGMPV3_CHANGE_TO_INCLUDE),
                (true, false, true) => Send::V3(IGMPV3_MODE_IS_EXCLUDE),
                (true, false, false) => Send::V3(IGMPV3_CHANGE_TO_EXCLUDE),
            };
            if g.query {
                g.query = false;
                if g.unsolicit > 0 {
                    // A state change still owed: it goes on after this.
                    g.timer = now + next;
                }
            } else if g.unsolicit > 0 {
                g.unsolicit -= 1;
                if g.unsolicit > 0 {
                    g.timer = now + next;
                }
            }
            g.reporter = true;
            self.igmp_send_report(port, group, what);
        }
        // Leave records all sent: the group is gone (`igmpv3_clear_delrec`).
        self.mc
            .groups
            .retain(|g| !(g.leaving && g.timer == NO_TIMER));
    }

    /// Plays `igmp_rcv`: a message of at least 8 bytes with a good checksum
    /// (else dropped) goes to [`Stack::igmp_heard_query`] or
    /// [`Stack::igmp_heard_report`]; other types (leaves, v3 reports,
    /// PIM, …) are ignored, as a host does.
    pub(crate) fn igmp_rcv(&mut self, port: u16, m: &crate::mbuf::Mbuf) {
        let mut b = [0u8; 1500];
        let n = m.pkt_len().min(b.len());
        let mut off = 0;
        for s in m.segments() {
            let k = s.data.len().min(n - off);
            b[off..off + k].copy_from_slice(&s.data[..k]);
            off += k;
            if off == n {
                break;
            }
        }
        // The checksum covers the whole message (a v3 query with sources
        // is longer than 12 bytes; more than a frame's worth is not IGMP).
        if n < 8 || m.pkt_len() > b.len() {
            return;
        }
        let msg = &b[..n];
        if super::checksum::fold(super::checksum::sum(msg)) != 0xffff {
            return;
        }
        let group = Ipv4Addr::new(msg[4], msg[5], msg[6], msg[7]);
        match msg[0] {
            IGMP_HOST_MEMBERSHIP_QUERY => self.igmp_heard_query(port, msg[1], group, n),
            IGMPV2_HOST_MEMBERSHIP_REPORT | IGMP_HOST_MEMBERSHIP_REPORT => {
                self.igmp_heard_report(port, group)
            }
            _ => {}
        }
    }

    /// Plays `igmp_heard_query` with `force_igmp_version = 2`: an 8-byte
    /// query with Max Resp Time 0 is IGMPv1's (respond within
    /// `IGMP_QUERY_RESPONSE_INTERVAL`, 10 s), otherwise within `code`
    /// tenths of a second; 9 to 11 bytes is bogus (ignored); 12 or more is
    /// an IGMPv3 query treated as v2 (`IGMPV3_MRC(code)` tenths). A zero
    /// delay becomes one jiffy. Every group joined on the port that the
    /// query asks about (all for group 0.0.0.0) except 224.0.0.1 gets
    /// `igmp_mod_timer`: a running timer that fires sooner is kept, else
    /// the report is due at `now + rand(max_delay) + 2 jiffies`
    /// (`igmp_start_timer`).
    pub(crate) fn igmp_heard_query(&mut self, port: u16, code: u8, group: Ipv4Addr, len: usize) {
        let mut group = group;
        let max_delay = match len {
            8 if code == 0 => {
                group = Ipv4Addr::UNSPECIFIED; // v1 queries are general
                IGMP_QUERY_RESPONSE_INTERVAL_NS
            }
            8 => code as u64 * MRT_UNIT_NS,
            9..=11 => return,
            _ => igmpv3_mrc(code) * MRT_UNIT_NS,
        }
        .max(JIFFY_NS);
        let now = self.now;
        for i in 0..self.mc.groups.len() {
            let g = &self.mc.groups[i];
            if g.port != port
                || g.group == IGMP_ALL_HOSTS
                || (!group.is_unspecified() && group != g.group)
            {
                continue;
            }
            if g.leaving {
                continue;
            }
            if g.timer != NO_TIMER && g.timer.saturating_sub(now) < max_delay {
                continue;
            }
            let t = now + self.mc.below(max_delay) + 2 * JIFFY_NS;
            let g = &mut self.mc.groups[i];
            g.timer = t;
            g.query = true;
        }
    }

    /// Plays `igmp_heard_report`: another member reported `group` on this
    /// link, so ours is not needed (`igmp_stop_timer`: timer stopped,
    /// `reporter` and `unsolicit_count` cleared — the leave is then owed by
    /// that member). Reports for 224.0.0.1 are ignored.
    pub(crate) fn igmp_heard_report(&mut self, port: u16, group: Ipv4Addr) {
        // IGMPv3 hosts never suppress (RFC 3376 5.1; `igmp_heard_report`
        // returns early in v3 mode).
        if group == IGMP_ALL_HOSTS || self.mc.version == 3 {
            return;
        }
        if let Some(g) = self
            .mc
            .groups
            .iter_mut()
            .find(|g| g.port == port && g.group == group)
        {
            g.timer = NO_TIMER;
            g.reporter = false;
            g.unsolicit = 0;
        }
    }

    /// Plays `igmp_send_report` for IGMPv2: an 8-byte message (type, max
    /// response time 0, checksum, group) in an IPv4 packet with TOS 0xc0,
    /// TTL 1, DF, ID 0, and the Router Alert option; a report goes to the
    /// group, a leave to all routers, from the port's address.
    fn igmp_send_report(&mut self, port: u16, group: Ipv4Addr, what: Send) {
        let (ty, dst) = match what {
            Send::Report => (IGMPV2_HOST_MEMBERSHIP_REPORT, group),
            Send::Leave => (IGMP_HOST_LEAVE_MESSAGE, IGMP_ALL_ROUTER),
            Send::V3(_) => (IGMPV3_HOST_MEMBERSHIP_REPORT, IGMPV3_ALL_MCR),
        };
        let pc = &self.ports[port as usize].conf;
        let (src, mac, vlan) = (pc.addr, pc.mac, pc.vlan);
        let l2len = if vlan.is_some() { 18 } else { 14 };
        let mlen = if matches!(what, Send::V3(_)) { 16 } else { 8 };
        let (ihl, len) = (24, 24 + mlen);
        self.counters.ip.out_requests.add(1);
        let Some(mut m) = self.pool.alloc() else {
            self.counters.ip.out_discards.add(1);
            return;
        };
        let Ok(b) = m.append(l2len + len) else {
            self.counters.ip.out_discards.add(1);
            return;
        };
        super::neigh::build_l2(
            b,
            wire::ipv4_multicast_mac(dst),
            mac,
            vlan,
            wire::ETHERTYPE_IPV4,
        );
        let mut h = Ipv4Header {
            tos: 0xc0,
            total_len: len as u16,
            id: 0,
            frag: wire::IP_DF,
            ttl: 1,
            protocol: IPPROTO_IGMP,
            src,
            dst,
            ..Default::default()
        };
        h.options[..4].copy_from_slice(&IPOPT_RA);
        h.options_len = 4;
        h.emit(&mut b[l2len..]);
        let igmp = &mut b[l2len + ihl..];
        igmp[0] = ty;
        igmp[1] = 0;
        igmp[2..4].copy_from_slice(&[0, 0]);
        if let Send::V3(rec) = what {
            // igmpv3_newpack/add_grhead: reserved, one group record
            // (type, aux data 0, sources 0, group).
            igmp[4..8].copy_from_slice(&[0, 0, 0, 1]);
            igmp[8..12].copy_from_slice(&[rec, 0, 0, 0]);
            igmp[12..16].copy_from_slice(&group.octets());
        } else {
            igmp[4..8].copy_from_slice(&group.octets());
        }
        let c = !super::checksum::fold(super::checksum::sum(igmp));
        igmp[2..4].copy_from_slice(&c.to_be_bytes());
        m.set_tx_lens(l2len as u8, ihl as u8, 0);
        match self.xmit.queue_xmit(port, m) {
            Ok(()) => match what {
                Send::Report => self.counters.igmp.reports_sent.add(1),
                Send::V3(IGMPV3_CHANGE_TO_INCLUDE) | Send::Leave => {
                    self.counters.igmp.leaves_sent.add(1)
                }
                Send::V3(_) => self.counters.igmp.reports_sent.add(1),
            },
            Err(_) => self.counters.ip.out_discards.add(1),
        }
    }

    /// Joined groups: (port, group, sockets using it).
    pub fn multicast_groups(&self) -> Vec<(u16, Ipv4Addr, u32)> {
        self.mc.list()
    }
}
