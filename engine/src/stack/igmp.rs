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
//! Not modelled: IGMP input (queries, other hosts' reports suppressing
//! ours), IGMPv3 and source filters.

use super::wire::{self, Ipv4Header};
use super::{Errno, Stack};
use std::net::Ipv4Addr;

/// `IGMP_ALL_HOSTS`, `IGMP_ALL_ROUTER`.
pub const IGMP_ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
pub const IGMP_ALL_ROUTER: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);
pub const IPPROTO_IGMP: u8 = 2;
pub const IGMPV2_HOST_MEMBERSHIP_REPORT: u8 = 0x16;
pub const IGMP_HOST_LEAVE_MESSAGE: u8 = 0x17;
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
}

/// The groups of every port.
#[derive(Default)]
pub(crate) struct McTable {
    groups: Vec<McGroup>,
    rng: u64,
}

impl McTable {
    pub(crate) fn new(seed: u64) -> McTable {
        McTable {
            groups: Vec::new(),
            rng: seed | 1,
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
                .any(|g| g.port == port && g.group == group)
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

/// What a membership change asks the stack to send.
enum Send {
    Report,
    Leave,
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
            let next = self.mc.below(V2_UNSOLICITED_REPORT_INTERVAL_NS) + FIRST_REPORT_NS;
            let g = &mut self.mc.groups[i];
            g.timer = NO_TIMER;
            if g.unsolicit > 0 {
                g.unsolicit -= 1;
                if g.unsolicit > 0 {
                    g.timer = now + next;
                }
            }
            g.reporter = true;
            self.igmp_send_report(port, group, Send::Report);
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
        };
        let pc = &self.ports[port as usize].conf;
        let (src, mac, vlan) = (pc.addr, pc.mac, pc.vlan);
        let l2len = if vlan.is_some() { 18 } else { 14 };
        let (ihl, len) = (24, 24 + 8);
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
        igmp[4..8].copy_from_slice(&group.octets());
        let c = !super::checksum::fold(super::checksum::sum(igmp));
        igmp[2..4].copy_from_slice(&c.to_be_bytes());
        m.set_tx_lens(l2len as u8, ihl as u8, 0);
        match self.xmit.queue_xmit(port, m) {
            Ok(()) => match what {
                Send::Report => self.counters.igmp.reports_sent.add(1),
                Send::Leave => self.counters.igmp.leaves_sent.add(1),
            },
            Err(_) => self.counters.ip.out_discards.add(1),
        }
    }

    /// Joined groups: (port, group, sockets using it).
    pub fn multicast_groups(&self) -> Vec<(u16, Ipv4Addr, u32)> {
        self.mc.list()
    }
}
