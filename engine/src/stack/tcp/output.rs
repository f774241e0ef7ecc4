//! The TCP output path of seed 002: `tcp_connect` (the SYN), `tcp_push` →
//! `__tcp_push_pending_frames` → `tcp_write_xmit` (Nagle, cork, congestion
//! and receive windows, TCP small queues) → `__tcp_transmit_skb` (header,
//! options, checksum) → `ip_queue_xmit` (the socket's cached route, DF, the
//! per-socket IP ID) → the stack's `ip_output_one` / neighbour layer.
//! Also the retransmit path (`tcp_retransmit_skb`,
//! `tcp_xmit_retransmit_queue`), pure ACKs (`tcp_send_ack`), resets
//! (`tcp_send_active_reset`, `tcp_v4_send_reset`) and window probes
//! (`tcp_xmit_probe_skb`).

use super::wire::{self as tw, after, before, OutOptions, ACK, FIN, PSH, RST, SYN};
use super::{CaState, Skb, Tcb, TcpState, EVER_RETRANS, LOST, RETRANS, SACKED};
use crate::mbuf::{ol, Mbuf, MBUF_HDR_SIZE};
use crate::stack::checksum;
use crate::stack::ip::Dst;
use crate::stack::wire::{Ipv4Header, IPV4_MIN_HLEN, IP_DF};
use crate::stack::{secret, Errno, Stack};
use std::net::{Ipv4Addr, SocketAddrV4};

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;

/// `nonagle` bits (include/net/tcp.h).
pub(crate) const TCP_NAGLE_OFF: u8 = 1;
pub(crate) const TCP_NAGLE_CORK: u8 = 2;
pub(crate) const TCP_NAGLE_PUSH: u8 = 4;

/// What a segment carries from the write queue: skb index, byte offset
/// into its payload, length — over `n` consecutive skbs for a TSO
/// super-segment (`off` applies to the first; `len` is the total).
#[derive(Clone, Copy)]
pub(crate) struct Payload {
    pub skb: usize,
    pub off: usize,
    pub len: usize,
    pub n: usize,
}

/// `sk_pacing_shift`: TSQ and TSO autosizing budget ~1 ms of pacing.
const SK_PACING_SHIFT: u32 = 10;
/// `tcp_tso_rtt_log` (9): super-segments shrink as min RTT grows past 512 µs.
const TCP_TSO_RTT_LOG: u32 = 9;
/// `tcp_min_tso_segs` (2).
const TCP_MIN_TSO_SEGS: u32 = 2;

impl Tcb {
    /// The socket's `nonagle` word from `TCP_NODELAY` / `TCP_CORK`.
    #[inline]
    pub(crate) fn nonagle(&self) -> u8 {
        (if self.nodelay { TCP_NAGLE_OFF } else { 0 })
            | (if self.cork { TCP_NAGLE_CORK } else { 0 })
    }

    /// Plays the part of `tcp_minshall_check`: a small segment sent is
    /// still unacknowledged.
    #[inline]
    fn minshall_check(&self) -> bool {
        after(self.snd_sml, self.snd_una) && !after(self.snd_sml, self.snd_nxt)
    }

    /// Plays the part of `tcp_nagle_check`: true = hold a `partial`
    /// (sub-MSS) segment back — corked, or Nagle on with a small segment in
    /// flight.
    #[inline]
    pub(crate) fn nagle_check(&self, partial: bool, nonagle: u8) -> bool {
        partial
            && (nonagle & TCP_NAGLE_CORK != 0
                || (nonagle == 0 && self.packets_out > 0 && self.minshall_check()))
    }

    /// Plays the part of `tcp_nagle_test`: may the skb go now? PUSH (not
    /// the queue's last skb) and FIN always may.
    #[inline]
    pub(crate) fn nagle_test(&self, skb: &Skb, mss: u32, nonagle: u8) -> bool {
        if nonagle & TCP_NAGLE_PUSH != 0 || skb.flags & FIN != 0 {
            return true;
        }
        !self.nagle_check(skb.len() < mss, nonagle)
    }

    /// Plays the part of `tcp_cwnd_test`: how many segments the congestion
    /// window allows now (0 = none). A lone FIN is not held by cwnd.
    #[inline]
    pub(crate) fn cwnd_test(&self, skb: &Skb) -> u32 {
        if skb.flags & FIN != 0 && skb.len() == 0 {
            return 1;
        }
        let in_flight = self.in_flight();
        let cwnd = self.cw.cwnd;
        if in_flight >= cwnd {
            return 0;
        }
        (cwnd >> 1).max(1).min(cwnd - in_flight)
    }

    /// Plays the part of `tcp_snd_wnd_test`: does the skb's first segment
    /// fit the peer's window?
    #[inline]
    pub(crate) fn snd_wnd_test(&self, skb: &Skb, mss: u32) -> bool {
        let mut end = skb.end_seq;
        if skb.len() > mss {
            end = skb.seq.wrapping_add(mss);
        }
        !after(end, self.wnd_end())
    }

    /// Plays the part of `tcp_mss_split_point` for a write queue of
    /// MSS-sized skbs: how many skbs from `k` go out as one super-segment
    /// — at most `max_segs`, each inside the peer's window, all full-sized
    /// but the last, which may be partial (if Nagle lets it go: the
    /// queue's last skb with `nonagle`, `tcp_nagle_check`) or carry the FIN.
    pub(crate) fn mss_split_point(&self, k: usize, mss: u32, max_segs: u32, nonagle: u8) -> usize {
        let first = &self.wq[k];
        if first.len() != mss || first.flags & FIN != 0 {
            return 1;
        }
        let mut n = 1;
        while (n as u32) < max_segs && k + n < self.wq.len() {
            let nx = &self.wq[k + n];
            if nx.len() == 0 || after(nx.end_seq, self.wnd_end()) {
                break;
            }
            if nx.len() < mss {
                let last = k + n + 1 == self.wq.len();
                if self.nagle_test(nx, mss, if last { nonagle } else { TCP_NAGLE_PUSH }) {
                    n += 1;
                }
                break;
            }
            n += 1;
            if nx.flags & FIN != 0 {
                break;
            }
        }
        n
    }

    /// Plays the part of `tcp_is_cwnd_limited` (RFC 7661's test as Linux
    /// does it): in slow start, cwnd below twice the most packets in flight
    /// in the last window; else whether the last send was cwnd-limited.
    #[inline]
    pub(crate) fn is_cwnd_limited(&self) -> bool {
        if self.cw.in_slow_start() {
            return self.cw.cwnd < 2 * self.max_packets_out;
        }
        self.cwnd_limited
    }

    /// Plays the part of `tcp_cwnd_validate`'s bookkeeping.
    fn cwnd_validate(&mut self, is_cwnd_limited: bool) {
        if !before(self.snd_una, self.max_packets_seq) || self.packets_out > self.max_packets_out {
            self.max_packets_out = self.packets_out;
            self.max_packets_seq = self.snd_nxt;
            self.cwnd_limited = is_cwnd_limited;
        }
    }

    /// Plays the part of `tcp_select_window`: the window to advertise
    /// (receive-ring room), never moving the right edge left, rounded to
    /// the window scale; records it (`rcv_wnd`, `rcv_wup`). Returns the
    /// header field value.
    pub(crate) fn select_window(&mut self) -> u16 {
        let max = 65535u32 << self.rcv_wscale;
        let cur = self
            .rcv_wup
            .wrapping_add(self.rcv_wnd)
            .wrapping_sub(self.rcv_nxt) as i32;
        let mut new = self.rcv_space().min(max);
        if (new as i64) < cur as i64 {
            // Never shrink: keep the right edge where it was.
            new = (cur as u32).min(max);
        }
        let gran = (1u32 << self.rcv_wscale) - 1;
        new = (new + gran) & !gran;
        new = new.min(max);
        self.rcv_wnd = new;
        self.rcv_wup = self.rcv_nxt;
        (new >> self.rcv_wscale) as u16
    }

    /// Plays the part of `tcp_sack_new_ofo_skb`'s block list: the
    /// out-of-order queue's contiguous runs, the one holding the latest
    /// segment first (RFC 2018 §4), as many as fit beside timestamps.
    pub(crate) fn sack_blocks(&self, o: &mut OutOptions) {
        let max = if o.ts.is_some() { 3 } else { 4 };
        let mut runs = [(0u32, 0u32); 64];
        let mut n = 0;
        for q in &self.ofo {
            if n > 0 && runs[n - 1].1 == q.seq {
                runs[n - 1].1 = q.end;
            } else if n < runs.len() {
                runs[n] = (q.seq, q.end);
                n += 1;
            }
        }
        let first = runs[..n]
            .iter()
            .position(|&(s, e)| !before(self.ofo_last, s) && before(self.ofo_last, e))
            .unwrap_or(0);
        if n > 0 {
            o.sack[0] = runs[first];
            o.num_sacks = 1;
        }
        for (k, r) in runs[..n].iter().enumerate() {
            if o.num_sacks as usize >= max {
                break;
            }
            if k != first {
                o.sack[o.num_sacks as usize] = *r;
                o.num_sacks += 1;
            }
        }
    }

    /// The TSval we send (`tcp_time_stamp_ts` + `tsoffset`).
    #[inline]
    pub(crate) fn tsval(&self, now_ms: u32) -> u32 {
        now_ms.wrapping_add(self.ts_offset)
    }
}

impl Stack {
    /// Plays the part of `tcp_v4_connect` + `tcp_connect`.
    pub(crate) fn tcp_v4_connect(
        &mut self,
        t: &mut Tcb,
        i: usize,
        peer: SocketAddrV4,
    ) -> Result<(), Errno> {
        match t.state {
            TcpState::Closed => {}
            TcpState::SynSent | TcpState::SynRecv => return Err(Errno::EALREADY),
            TcpState::Listen => return Err(Errno::EINVAL),
            _ => return Err(Errno::EISCONN),
        }
        if t.raddr != Ipv4Addr::UNSPECIFIED {
            // A connection that already ended cannot be reused (Linux: EISCONN
            // after a completed connection; a fresh socket is needed).
            return Err(Errno::EISCONN);
        }
        let daddr = *peer.ip();
        if peer.port() == 0 || daddr.is_unspecified() {
            return Err(Errno::EINVAL);
        }
        if daddr.is_broadcast() || daddr.is_multicast() {
            return Err(Errno::ENETUNREACH);
        }
        let saddr = (!t.laddr.is_unspecified()).then_some(t.laddr);
        let dst = match self.route_output(daddr, saddr, None) {
            Ok(d) => d,
            Err(e) => {
                self.counters.ip.out_no_routes.add(1);
                return Err(e);
            }
        };
        t.laddr = dst.saddr;
        if t.lport == 0 {
            let p = self.tcp.pick_port(dst.saddr, daddr, peer.port())?;
            t.lport = p;
            self.tcp.bind_port(p);
        }
        t.raddr = daddr;
        t.rport = peer.port();
        if self.tcp.ehash.contains_key(&t.key()) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        self.tcp.ehash.insert(t.key(), i);
        t.hashed = true;
        // secure_tcp_seq / secure_tcp_ts_off: keyed hash of the 4-tuple plus
        // a clock (ns >> 6), so ISNs advance and never repeat across runs.
        let h = secret::siphash_2u64(
            ((u32::from(t.laddr) as u64) << 32) | u32::from(t.raddr) as u64,
            ((t.lport as u64) << 16) | t.rport as u64,
            &self.tcp.key,
        );
        t.iss = (h as u32).wrapping_add((self.now >> 6) as u32);
        t.ts_offset = (h >> 32) as u32;
        t.inet_id = (h >> 16) as u16; // inet_id = get_random_u16()
        t.txhash = secret::flow_hash4(
            u32::from(t.laddr),
            u32::from(t.raddr),
            t.lport,
            t.rport,
            IPPROTO_TCP,
            &self.hash_key,
        );
        t.dst = Some(dst);
        self.tcp_init_nonsynced(t, &dst);
        t.ts_ok = self.tcp.cfg.timestamps;
        t.sack_ok = self.tcp.cfg.sack;
        t.wscale_ok = self.tcp.cfg.window_scaling;
        self.tcp_set_state(t, TcpState::SynSent);
        self.counters.tcp.active_opens.add(1);
        // tcp_connect_queue_skb: the SYN takes one sequence number.
        t.snd_una = t.iss;
        t.snd_nxt = t.iss;
        t.write_seq = t.iss.wrapping_add(1);
        t.wq.push_back(Skb {
            seq: t.iss,
            end_seq: t.iss.wrapping_add(1),
            flags: SYN,
            data: None,
            truesize: 0,
            sacked: 0,
            tx_ns: self.now,
        });
        t.send_head = 0;
        self.tcp_transmit_skb(t, 0, None)?;
        t.send_head = 1;
        t.snd_nxt = t.write_seq;
        t.packets_out = 1;
        self.tcp_arm_rto(t);
        self.tcp.mark_active(i);
        self.xmit.flush();
        Ok(())
    }

    /// Plays the part of `tcp_connect_init`'s window and MSS set-up: our
    /// MSS from the route MTU (`tcp_mss_clamp`/`advmss`), the window scale
    /// that lets the receive ring be advertised (`tcp_select_initial_window`).
    pub(crate) fn tcp_init_nonsynced(&mut self, t: &mut Tcb, dst: &Dst) {
        let mtu_mss = dst
            .mtu
            .saturating_sub((IPV4_MIN_HLEN + tw::TCP_HLEN) as u32) as u16;
        t.advmss = t.advmss.min(mtu_mss);
        t.mss_clamp = t.advmss;
        t.rcvq = std::collections::VecDeque::with_capacity(t.rcvbuf as usize);
        let mut ws = 0u8;
        if self.tcp.cfg.window_scaling {
            while (t.rcvbuf >> ws) > 65535 && ws < tw::TCP_MAX_WSCALE {
                ws += 1;
            }
        }
        t.rcv_wscale = ws;
        t.rcv_wnd = t.rcvbuf.min(65535 << ws);
    }

    /// Plays the part of `tcp_sync_mss` / `tcp_current_mss`: the payload
    /// per segment: the peer's MSS and our path MTU, less the options every
    /// segment carries (timestamps: 12 bytes).
    pub(crate) fn tcp_sync_mss(&self, t: &mut Tcb) {
        let mtu = t.dst.map_or(576, |d| d.mtu);
        let mut mss = (mtu as usize - IPV4_MIN_HLEN - tw::TCP_HLEN) as u32;
        mss = mss.min(t.mss_clamp as u32);
        if t.ts_ok {
            mss -= tw::TCPOLEN_TSTAMP_ALIGNED as u32;
        }
        // A buffer holds the whole frame of a segment.
        let room = self
            .pool_data_room()
            .saturating_sub(14 + 4 + IPV4_MIN_HLEN + 60);
        t.mss_cache = mss.clamp(48, room as u32);
    }

    /// Data room of one mbuf of the stack's pool.
    pub(crate) fn pool_data_room(&self) -> usize {
        self.pool.data_room()
    }

    /// Plays the part of `tcp_push`: mark PSH unless `MSG_MORE`, autocork
    /// (hold a growing tail while earlier segments still sit below TCP:
    /// `tcp_should_autocork`), then `__tcp_push_pending_frames` with
    /// `TCP_NAGLE_CORK` under `MSG_MORE`.
    pub(crate) fn tcp_push(&mut self, t: &mut Tcb, i: usize, more: bool, size_goal: u32) {
        if t.send_head >= t.wq.len() {
            return;
        }
        let Some(tail) = t.wq.back_mut() else { return };
        if !more {
            tail.flags |= PSH; // tcp_mark_push
        }
        let tail_len = tail.len();
        let tail_true = tail.truesize as u64;
        let head_is_tail = t.send_head + 1 == t.wq.len();
        // tcp_should_autocork: a partial tail that is not the send head,
        // while bytes of this socket still wait in the qdisc/driver: the TX
        // completion (the lcore's next poll) pushes it.
        if tail_len < size_goal && !head_is_tail && t.wmem.in_flight() > tail_true {
            self.counters.tcp_ext.autocorking.add(1);
            t.tsq_throttled = true;
            self.tcp.mark_active(i);
            return;
        }
        let nonagle = if more { TCP_NAGLE_CORK } else { t.nonagle() };
        self.tcp_push_pending_frames(t, i, nonagle);
    }

    /// `tcp_push_pending_frames`: push with the socket's own Nagle mode.
    pub(crate) fn tcp_push_pending(&mut self, t: &mut Tcb, i: usize) {
        let nonagle = t.nonagle();
        self.tcp_push_pending_frames(t, i, nonagle);
    }

    /// Plays the part of `__tcp_push_pending_frames`: nothing once CLOSED;
    /// `tcp_write_xmit`, and the zero-window probe timer when nothing is in
    /// flight but data waits (`tcp_check_probe_timer`).
    pub(crate) fn tcp_push_pending_frames(&mut self, t: &mut Tcb, i: usize, nonagle: u8) {
        if t.state == TcpState::Closed {
            return;
        }
        if self.tcp_write_xmit(t, i, nonagle, false) && t.probe_at.is_none() {
            let to = t.rto_us.max(super::timer::TCP_RTO_MIN_US) as u64 * 1000;
            t.probe_at = Some(self.now + to);
            self.tcp.mark_active(i);
        }
        self.xmit.flush();
    }

    /// Plays the part of `tcp_write_xmit`: sends new segments from the send
    /// head while `tcp_cwnd_test`, `tcp_snd_wnd_test`, `tcp_nagle_test` (the
    /// queue's last skb uses `nonagle`, others `TCP_NAGLE_PUSH`) and
    /// `tcp_small_queue_check` allow; each goes through
    /// `__tcp_transmit_skb`, then `tcp_event_new_data_sent` (snd_nxt,
    /// packets_out, RTO) and `tcp_minshall_update`. Every skb is at most one
    /// MSS here (size_goal = mss), so there is no TSO split
    /// (`tcp_mss_split_point`, `tso_fragment`) or TSO deferral to do; GSO
    /// happens below, per port. Returns true when nothing is in flight and
    /// nothing could be sent though data waits (the caller arms the probe
    /// timer).
    pub(crate) fn tcp_write_xmit(
        &mut self,
        t: &mut Tcb,
        i: usize,
        nonagle: u8,
        push_one: bool,
    ) -> bool {
        let mss = t.mss_cache;
        let tso_segs = self.tcp_tso_segs(t);
        let mut sent = 0u32;
        let mut is_cwnd_limited = false;
        // Retransmissions first (RFC 6675 NextSeg rule 1; Linux calls
        // tcp_xmit_retransmit_queue from tcp_xmit_recovery).
        if t.lost_out > t.retrans_out || t.ca_state == CaState::Loss {
            self.tcp_xmit_retransmit_queue(t, i);
        }
        while t.send_head < t.wq.len() {
            if t.pacing && self.tcp_pacing_check(t, i) {
                break;
            }
            let k = t.send_head;
            let skb = &t.wq[k];
            let cwnd_quota = t.cwnd_test(skb);
            if cwnd_quota == 0 {
                is_cwnd_limited = true;
                break;
            }
            if !t.snd_wnd_test(skb, mss) {
                self.counters.tcp_ext.rwnd_limited.add(1);
                break;
            }
            let last = k + 1 == t.wq.len();
            if !t.nagle_test(skb, mss, if last { nonagle } else { TCP_NAGLE_PUSH }) {
                break;
            }
            if skb.end_seq == skb.seq {
                break;
            }
            let n = if tso_segs > 1 {
                t.mss_split_point(k, mss, cwnd_quota.min(tso_segs), nonagle)
            } else {
                1
            };
            let len: usize = (k..k + n).map(|j| t.wq[j].len() as usize).sum();
            if self.tcp_small_queue_check(t, i, 0, self.tcp_truesize(len, mss)) {
                break;
            }
            let p = (len > 0).then_some(Payload {
                skb: k,
                off: 0,
                len,
                n,
            });
            if self.tcp_transmit_skb(t, k, p).is_err() {
                break;
            }
            if t.pacing {
                self.tcp_update_skb_after_send(t, len);
            }
            for _ in 0..n {
                self.tcp_event_new_data_sent(t, mss);
            }
            sent += n as u32;
            if push_one {
                break;
            }
        }
        is_cwnd_limited |= t.in_flight() >= t.cw.cwnd;
        if sent > 0 || is_cwnd_limited {
            t.cwnd_validate(is_cwnd_limited);
        }
        if sent > 0 {
            t.probe_at = None;
            return false;
        }
        t.packets_out == 0 && t.send_head < t.wq.len()
    }

    /// Plays the part of `tcp_event_new_data_sent` for the send head: it
    /// joins the retransmit queue (snd_nxt, packets_out, the RTO), and
    /// `tcp_minshall_update` for a small one.
    fn tcp_event_new_data_sent(&mut self, t: &mut Tcb, mss: u32) {
        let k = t.send_head;
        let skb = &mut t.wq[k];
        skb.tx_ns = self.now;
        let (end, len) = (skb.end_seq, skb.len());
        t.snd_nxt = end;
        t.send_head += 1;
        t.packets_out += 1;
        t.bytes_sent += len as u64;
        if t.rto_at.is_none() {
            self.tcp_arm_rto(t);
        }
        if len < mss {
            t.snd_sml = end;
        }
    }

    /// True when segments on the socket's route may be super-segments
    /// (`sk_can_gso`): the output port was configured with `TX_TSO` (the
    /// device does TSO, or the netdev layer segments for it) and the route
    /// is not local delivery.
    pub(crate) fn tcp_can_gso(&self, t: &Tcb) -> bool {
        t.dst.is_some_and(|d| {
            !matches!(d.next, crate::stack::ip::NextHop::Local)
                && self.ports[d.port as usize].conf.tx_offloads & ol::TX_TSO != 0
        })
    }

    /// Plays the part of `tcp_tso_segs` → `tcp_tso_autosize`: MSS-sized
    /// segments per super-segment — about 1 ms at the pacing rate
    /// (`sk_pacing_rate >> sk_pacing_shift`) plus `gso_max_size >>
    /// (min_rtt >> tcp_tso_rtt_log)`, at most `gso_max_size`, at least
    /// `tcp_min_tso_segs` — bounded by what one IPv4 datagram holds, a
    /// chain the device layer reads, and a burst. 1 without GSO.
    pub(crate) fn tcp_tso_segs(&self, t: &Tcb) -> u32 {
        if !self.tcp_can_gso(t) {
            return 1;
        }
        let mss = t.mss_cache.max(1) as u64;
        let gso_max = crate::ethdev::offload::GSO_MAX_SIZE as u64;
        let mut bytes = self.tcp_pacing_rate(t) >> SK_PACING_SHIFT;
        let r = if t.min_rtt_us == u32::MAX {
            0
        } else {
            t.min_rtt_us >> TCP_TSO_RTT_LOG
        };
        if r < 32 {
            bytes += gso_max >> r;
        }
        let segs = (bytes.min(gso_max) / mss).max(TCP_MIN_TSO_SEGS as u64);
        // One IPv4 datagram (65535 with 60 bytes of TCP header), a chain of
        // at most GSO_MAX_CHAIN buffers (the header's, then one indirect
        // per write-queue skb: `tcp_attach_payload`), a burst of segments
        // for software GSO.
        let ip_max = (65535 - IPV4_MIN_HLEN as u64 - 60) / mss;
        let chain_max = crate::ethdev::offload::GSO_MAX_CHAIN as u64 - 1;
        segs.min(ip_max)
            .min(chain_max)
            .min(crate::mbuf::BURST_MAX as u64)
            .max(1) as u32
    }

    /// Bytes a segment of `payload` bytes holds in buffers (its chain's
    /// truesize), as TSQ counts it: one buffer when the payload is copied
    /// beside the headers, else the headers' buffer and one indirect per
    /// MSS-sized write-queue skb (`tcp_attach_payload`).
    pub(crate) fn tcp_truesize(&self, payload: usize, mss: u32) -> u64 {
        let room = self.pool.data_room().saturating_sub(128).max(1);
        let bufs = if payload + 128 <= room {
            1
        } else {
            1 + payload.div_ceil(mss.max(1) as usize)
        };
        (bufs * (self.pool.data_room() + MBUF_HDR_SIZE)) as u64
    }

    /// Plays the part of `tcp_small_queue_check` (TSQ): at most
    /// max(2 skbs, ~1 ms at the pacing rate) of this socket's bytes below
    /// TCP (qdisc + driver, `sk_wmem_alloc`), capped by
    /// `tcp_limit_output_bytes` and doubled for retransmits (`factor`); a
    /// throttled socket is pushed again from the lcore's poll once TX
    /// completions free its bytes (the `tcp_wfree` → TSQ work). Always lets
    /// a segment go when the retransmit queue holds at most one skb.
    pub(crate) fn tcp_small_queue_check(
        &mut self,
        t: &mut Tcb,
        i: usize,
        factor: u32,
        truesize: u64,
    ) -> bool {
        let pacing = self.tcp_pacing_rate(t) >> SK_PACING_SHIFT;
        let limit = (2 * truesize)
            .max(pacing)
            .min(self.tcp.cfg.limit_output_bytes as u64)
            << factor;
        if t.wmem.in_flight() > limit {
            if t.send_head <= 1 {
                return false;
            }
            self.counters.tcp_ext.tsq_throttled.add(1);
            t.tsq_throttled = true;
            self.tcp.mark_active(i);
            return true;
        }
        false
    }

    /// `tcp_update_pacing_rate`: 2·cwnd·mss/srtt in slow start, 1.2× in
    /// congestion avoidance (bytes/s), capped by `sk_max_pacing_rate`;
    /// used for the TSQ budget, TSO autosizing and internal pacing.
    pub(crate) fn tcp_pacing_rate(&self, t: &Tcb) -> u64 {
        let srtt = (t.srtt_us >> 3).max(1) as u64;
        let ratio = if t.cw.in_slow_start() { 200 } else { 120 };
        let rate = (t.mss_cache as u64 * t.cw.cwnd as u64 * 1_000_000 / srtt) * ratio / 100;
        rate.min(t.max_pacing_rate)
    }

    /// Plays the part of `tcp_pacing_check`: true (hold the write queue)
    /// while the next departure time is still ahead; arms the pacing
    /// timer for it (`hrtimer_start(&tp->pacing_timer, …)`).
    fn tcp_pacing_check(&mut self, t: &mut Tcb, i: usize) -> bool {
        if t.wstamp_ns <= self.now {
            return false;
        }
        if t.pace_at.is_none() {
            t.pace_at = Some(t.wstamp_ns);
            self.tcp.mark_active(i);
        }
        true
    }

    /// Plays the part of `tcp_update_skb_after_send` with internal pacing:
    /// the next departure is `len` bytes at the pacing rate after this one
    /// (which left no earlier than now: `tcp_wstamp_ns = max(tcp_wstamp_ns,
    /// tcp_clock_cache)` in `__tcp_transmit_skb`).
    fn tcp_update_skb_after_send(&mut self, t: &mut Tcb, len: usize) {
        let rate = self.tcp_pacing_rate(t).max(1);
        let len_ns = (len as u128 * 1_000_000_000 / rate as u128) as u64;
        t.wstamp_ns = t.wstamp_ns.max(self.now) + len_ns;
    }

    /// Plays the part of `__sk_dst_check` + `ip_route_output_ports`: the
    /// socket's cached route while the tables and its neighbour are
    /// unchanged, else a fresh lookup (cached again).
    pub(crate) fn tcp_dst(&mut self, t: &mut Tcb) -> Result<Dst, Errno> {
        if let Some(d) = t.dst {
            if self.dst_valid(&d) {
                return Ok(d);
            }
        }
        match self.route_output(t.raddr, Some(t.laddr), None) {
            Ok(d) => {
                t.dst = Some(d);
                Ok(d)
            }
            Err(e) => {
                self.counters.ip.out_no_routes.add(1);
                t.dst = None;
                Err(e)
            }
        }
    }

    /// Plays the part of `__tcp_transmit_skb`: builds the segment for write
    /// queue skb `k` (sequence, flags; `p` the payload slice, `None` for a
    /// SYN/FIN without data) with ACK = rcv_nxt and the window of
    /// `tcp_select_window`, options by `tcp_syn_options` /
    /// `tcp_established_options`; then `ip_queue_xmit`. A data segment is
    /// charged to the socket's `sk_wmem_alloc` until the driver frees it.
    pub(crate) fn tcp_transmit_skb(
        &mut self,
        t: &mut Tcb,
        k: usize,
        p: Option<Payload>,
    ) -> Result<(), Errno> {
        let skb = &t.wq[k];
        let mut flags = skb.flags;
        let seq = p.map_or(skb.seq, |p| skb.seq.wrapping_add(p.off as u32));
        if let Some(p) = p.filter(|p| p.n > 1) {
            // A super-segment: the last skb's FIN, PSH if any skb has it
            // (the device puts both on the last wire segment only).
            let last = &t.wq[k + p.n - 1];
            let psh = (k..k + p.n).any(|j| t.wq[j].flags & PSH != 0);
            flags = (skb.flags & !(FIN | PSH)) | (last.flags & FIN) | if psh { PSH } else { 0 };
        } else if let Some(p) = p {
            // A FIN rides only on the segment that ends the skb.
            if p.off + p.len < skb.len() as usize {
                flags &= !(FIN | PSH);
            }
        }
        if t.state != TcpState::SynSent {
            flags |= ACK;
        }
        self.tcp_build_and_send(t, seq, flags, p)
    }

    /// Builds one segment (header, options, payload copied from the write
    /// queue, checksum) and hands it to `ip_queue_xmit`.
    pub(crate) fn tcp_build_and_send(
        &mut self,
        t: &mut Tcb,
        seq: u32,
        flags: u8,
        p: Option<Payload>,
    ) -> Result<(), Errno> {
        let dst = self.tcp_dst(t)?;
        let now_ms = self.tcp_now_ms();
        let syn = flags & SYN != 0;
        let opts = if syn {
            // tcp_syn_options / tcp_synack_options.
            OutOptions {
                mss: Some(t.advmss),
                wscale: t.wscale_ok.then_some(t.rcv_wscale),
                sack_ok: t.sack_ok,
                ts: t.ts_ok.then(|| (t.tsval(now_ms), t.ts_recent)),
                ..Default::default()
            }
        } else {
            // tcp_established_options: timestamps, and SACK blocks for
            // what the out-of-order queue holds.
            let mut o = OutOptions {
                ts: t.ts_ok.then(|| (t.tsval(now_ms), t.ts_recent)),
                ..Default::default()
            };
            if t.sack_ok && !t.ofo.is_empty() {
                t.sack_blocks(&mut o);
            }
            o
        };
        let window = if syn {
            t.rcv_wnd.min(65535) as u16 // SYN windows are never scaled
        } else {
            t.select_window()
        };
        let ack = if flags & ACK != 0 { t.rcv_nxt } else { 0 };
        let plen = p.map_or(0, |p| p.len);
        let segs = p.map_or(1, |p| p.n);
        let thl = tw::TCP_HLEN + opts.len();
        let total = IPV4_MIN_HLEN + thl + plen;
        let mut m = self.pool.alloc().ok_or(Errno::ENOBUFS)?;
        let (src, daddr) = (dst.saddr, dst.daddr);
        // The first buffer holds the headers and what fits of the payload.
        let first = (IPV4_MIN_HLEN + thl + plen).min(m.tailroom()) - IPV4_MIN_HLEN - thl;
        {
            let b = m
                .append(IPV4_MIN_HLEN + thl + first)
                .map_err(|_| Errno::ENOBUFS)?;
            // ip_select_ident_segs: one ID per wire segment.
            let id = t.inet_id;
            t.inet_id = id.wrapping_add(segs as u16);
            Ipv4Header {
                tos: 0,
                total_len: total as u16,
                id,
                frag: IP_DF,
                ttl: self.default_ttl,
                protocol: IPPROTO_TCP,
                src,
                dst: daddr,
                ..Default::default()
            }
            .emit(b);
            let th = &mut b[IPV4_MIN_HLEN..];
            tw::write_header(th, t.lport, t.rport, seq, ack, thl, flags, window);
            opts.write(&mut th[tw::TCP_HLEN..thl]);
            if let (Some(p), true) = (p, p.is_some_and(|p| p.n == 1 && first == p.len)) {
                let src = t.wq[p.skb].data.as_ref().expect("payload skb has data");
                th[thl..thl + p.len].copy_from_slice(&src.data()[p.off..p.off + p.len]);
            }
        }
        if let Some(p) = p.filter(|p| p.n > 1 || first < p.len) {
            self.tcp_attach_payload(t, p, &mut m, IPV4_MIN_HLEN + thl)?;
        }
        let port_ol = self.ports[dst.port as usize].conf.tx_offloads;
        let l4len = (thl + plen) as u16;
        let pseudo = checksum::pseudo_header_sum(src, daddr, IPPROTO_TCP, l4len);
        let b = m.data_mut();
        if segs > 1 {
            // TSO (DPDK's RTE_MBUF_F_TX_TCP_SEG convention): the field holds
            // the pseudo-header sum without the length; the device or the
            // netdev layer's GSO makes `segs` segments of one MSS.
            let c = checksum::fold(pseudo - l4len as u64);
            b[IPV4_MIN_HLEN + 16..IPV4_MIN_HLEN + 18].copy_from_slice(&c.to_be_bytes());
            m.set_ol_flags(ol::TX_TSO | ol::TX_TCP_CKSUM | ol::TX_IPV4);
            m.set_tso_segsz(t.mss_cache as u16);
        } else if port_ol & ol::TX_TCP_CKSUM != 0 {
            // NETIF_F_IP_CSUM: the NIC finishes the sum (CHECKSUM_PARTIAL);
            // the field holds the pseudo-header sum.
            let c = checksum::fold(pseudo);
            b[IPV4_MIN_HLEN + 16..IPV4_MIN_HLEN + 18].copy_from_slice(&c.to_be_bytes());
            m.set_ol_flags(ol::TX_TCP_CKSUM | ol::TX_IPV4);
        } else {
            let mut c = checksum::Checksum::with_sum(pseudo);
            c.add(&b[IPV4_MIN_HLEN..]);
            let v = c.finish();
            b[IPV4_MIN_HLEN + 16..IPV4_MIN_HLEN + 18].copy_from_slice(&v.to_be_bytes());
        }
        m.set_tx_lens(0, IPV4_MIN_HLEN as u8, thl as u8);
        m.set_hash(t.txhash);
        if plen > 0 {
            let truesize = (m.nb_segs() * (m.buf_len() + MBUF_HDR_SIZE)) as u32;
            m.charge_wmem(&t.wmem, truesize);
        }
        if flags & ACK != 0 {
            // tcp_event_ack_sent: this segment carries the ACK.
            t.unacked_rx = 0;
            t.delack_at = None;
            t.ack_pending = false;
        }
        // OutSegs counts new data and pure control segments, not
        // retransmissions (`__tcp_transmit_skb`: end_seq after snd_nxt, or
        // seq == end_seq).
        let end = seq
            .wrapping_add(plen as u32)
            .wrapping_add((flags & SYN != 0) as u32)
            .wrapping_add((flags & FIN != 0) as u32);
        let fresh = after(end, t.snd_nxt) || end == seq;
        self.ip_queue_xmit(t, m, &dst, fresh, segs as u64)
    }

    /// Hangs payload `p` (over its `n` write-queue skbs) after the first
    /// `hdr` bytes of `m` without copying it: one indirect mbuf per skb,
    /// attached to that skb's buffer ([`crate::mbuf::Mempool::alloc_indirect`]),
    /// so the super-segment's paged part references the write queue's data
    /// as `skb_shinfo(skb)->frags` of an `skb_clone` does in
    /// `__tcp_transmit_skb` (the write queue keeps its reference for
    /// retransmission; the clone's references go when the driver is done).
    fn tcp_attach_payload(
        &mut self,
        t: &Tcb,
        p: Payload,
        m: &mut Mbuf,
        hdr: usize,
    ) -> Result<(), Errno> {
        // Drop what the caller appended for the first part: only the headers stay.
        m.set_len(hdr).map_err(|_| Errno::ENOBUFS)?;
        // Each skb's share, front to back (the first from `off`).
        let mut parts = [(0usize, 0usize); crate::ethdev::offload::GSO_MAX_CHAIN];
        if p.n >= parts.len() {
            return Err(Errno::ENOBUFS);
        }
        let mut left = p.len;
        for (k, j) in (p.skb..p.skb + p.n).enumerate() {
            let len = t.wq[j].data.as_ref().map_or(0, |d| d.data_len());
            let from = if j == p.skb { p.off } else { 0 };
            let take = len.saturating_sub(from).min(left);
            parts[k] = (from, take);
            left -= take;
        }
        // Built back to front, so each link is one step (`chain` walks to
        // the last segment).
        let mut rest: Option<Mbuf> = None;
        for (k, j) in (p.skb..p.skb + p.n).enumerate().rev() {
            let (from, take) = parts[k];
            if take == 0 {
                continue;
            }
            let src = t.wq[j].data.as_ref().expect("payload skb has data");
            let mut ind = self
                .pool
                .alloc_indirect(src, from, take)
                .map_err(|_| Errno::ENOBUFS)?;
            if let Some(r) = rest.take() {
                ind.chain(r);
            }
            rest = Some(ind);
        }
        if let Some(r) = rest {
            m.chain(r);
        }
        Ok(())
    }

    /// Plays the part of `ip_queue_xmit` → `__ip_queue_xmit` for a built
    /// segment (header already written: DF, per-socket ID, TTL): the
    /// output hooks, `ip_finish_output2` and the neighbour. Counts
    /// `OutRequests` and (`fresh`) the Tcp `OutSegs`; a refusal is
    /// `OutDiscards`.
    fn ip_queue_xmit(
        &mut self,
        t: &mut Tcb,
        m: Mbuf,
        dst: &Dst,
        fresh: bool,
        segs: u64,
    ) -> Result<(), Errno> {
        self.counters.ip.out_requests.add(1);
        match self.ip_output_one(m, dst, false) {
            Ok(()) => {
                if fresh {
                    // OutSegs counts tcp_skb_pcount(skb).
                    self.counters.tcp.out_segs.add(segs);
                }
                t.segs_out += segs;
                Ok(())
            }
            Err(e) => {
                self.counters.ip.out_discards.add(1);
                Err(e)
            }
        }
    }

    /// Plays the part of `tcp_send_ack` / `__tcp_send_ack`: a pure ACK at
    /// snd_nxt with the current window.
    pub(crate) fn tcp_send_ack(&mut self, t: &mut Tcb) {
        let seq = t.snd_nxt;
        let _ = self.tcp_build_and_send(t, seq, ACK, None);
        self.xmit.flush();
    }

    /// Plays the part of `tcp_fragment`: splits unsent skb `k` after `len`
    /// payload bytes (the rest moves to a new skb right after it, with the
    /// FIN/PSH flags), charging the new buffer to `sk_wmem_queued`.
    pub(crate) fn tcp_fragment(&mut self, t: &mut Tcb, k: usize, len: usize) -> Result<(), Errno> {
        let skb = &mut t.wq[k];
        let total = skb.len() as usize;
        if len == 0 || len >= total {
            return Ok(());
        }
        let src = skb.data.as_mut().expect("data skb");
        // A spliced (shared) buffer splits by reference, as Linux moves
        // page frags to the new skb; the stack's own buffer by copy.
        let (m2, truesize) = if src.is_shared() {
            let m2 = self
                .pool
                .alloc_indirect(src, len, total - len)
                .map_err(|_| Errno::ENOBUFS)?;
            (m2, (total - len + MBUF_HDR_SIZE) as u32)
        } else {
            let mut m2 = self.pool.alloc().ok_or(Errno::ENOBUFS)?;
            m2.extend_from_slice(&src.data()[len..])
                .map_err(|_| Errno::ENOBUFS)?;
            let ts = (m2.buf_len() + MBUF_HDR_SIZE) as u32;
            (m2, ts)
        };
        src.trim(total - len).map_err(|_| Errno::ENOBUFS)?;
        let new = Skb {
            seq: skb.seq.wrapping_add(len as u32),
            end_seq: skb.end_seq,
            flags: skb.flags,
            data: Some(m2),
            truesize,
            sacked: 0,
            tx_ns: 0,
        };
        skb.end_seq = new.seq;
        skb.flags &= !(FIN | PSH);
        t.wmem_queued += truesize;
        t.wq.insert(k + 1, new);
        Ok(())
    }

    /// Plays the part of `tcp_write_wakeup` (from the probe timer): when
    /// the peer's window has room for the send head (or part of it, split
    /// by `tcp_fragment`), send it regardless of Nagle/cork — this is what
    /// bounds `TCP_CORK` to about 200 ms; otherwise a zero-window probe.
    pub(crate) fn tcp_write_wakeup(&mut self, t: &mut Tcb, i: usize) {
        let k = t.send_head;
        if k < t.wq.len() && before(t.wq[k].seq, t.wnd_end()) {
            let room = t.wnd_end().wrapping_sub(t.wq[k].seq) as usize;
            let seg = room.min(t.mss_cache as usize);
            if (t.wq[k].len() as usize) > seg && self.tcp_fragment(t, k, seg).is_err() {
                return;
            }
            t.wq[k].flags |= PSH;
            let len = t.wq[k].len() as usize;
            let p = (len > 0).then_some(Payload {
                skb: k,
                off: 0,
                len,
                n: 1,
            });
            if self.tcp_transmit_skb(t, k, p).is_ok() {
                let skb = &mut t.wq[k];
                skb.tx_ns = self.now;
                t.snd_nxt = skb.end_seq;
                t.send_head += 1;
                t.packets_out += 1;
                t.bytes_sent += len as u64;
                if t.rto_at.is_none() {
                    self.tcp_arm_rto(t);
                }
            }
            self.xmit.flush();
            let _ = i;
            return;
        }
        self.tcp_xmit_probe_skb(t);
    }

    /// Plays the part of `tcp_xmit_probe_skb`: a zero-window probe, an ACK
    /// with an old sequence number (snd_una − 1) the peer must answer.
    pub(crate) fn tcp_xmit_probe_skb(&mut self, t: &mut Tcb) {
        let seq = t.snd_una.wrapping_sub(1);
        let _ = self.tcp_build_and_send(t, seq, ACK, None);
        self.xmit.flush();
    }

    /// Plays the part of `tcp_send_active_reset`: RST|ACK at snd_nxt.
    pub(crate) fn tcp_send_active_reset(&mut self, t: &mut Tcb) {
        let seq = t.snd_nxt;
        if self.tcp_build_and_send(t, seq, RST | ACK, None).is_ok() {
            self.counters.tcp.out_rsts.add(1);
        }
        self.xmit.flush();
    }

    /// Plays the part of `tcp_send_fin`: the FIN joins the last unsent skb
    /// or gets a skb of its own, then a push.
    pub(crate) fn tcp_send_fin(&mut self, t: &mut Tcb, i: usize) {
        if t.fin_queued {
            return;
        }
        t.fin_queued = true;
        let tail_unsent = t.send_head < t.wq.len();
        if tail_unsent {
            let tail = t.wq.back_mut().expect("unsent tail");
            tail.flags |= FIN;
            tail.end_seq = tail.end_seq.wrapping_add(1);
        } else {
            t.wq.push_back(Skb {
                seq: t.write_seq,
                end_seq: t.write_seq.wrapping_add(1),
                flags: FIN | ACK,
                data: None,
                truesize: 0,
                sacked: 0,
                tx_ns: 0,
            });
        }
        t.write_seq = t.write_seq.wrapping_add(1);
        self.tcp_push_pending_frames(t, i, TCP_NAGLE_OFF);
    }

    /// Plays the part of `__tcp_retransmit_skb` + `tcp_retransmit_skb`:
    /// sends write-queue skb `k` again (the part not yet acknowledged),
    /// counts RetransSegs, marks it RETRANS.
    pub(crate) fn tcp_retransmit_skb(&mut self, t: &mut Tcb, k: usize) -> Result<(), Errno> {
        let skb = &t.wq[k];
        let len = skb.len() as usize;
        let p = (len > 0).then_some(Payload {
            skb: k,
            off: 0,
            len,
            n: 1,
        });
        self.tcp_transmit_skb(t, k, p)?;
        self.counters.tcp.retrans_segs.add(1);
        let skb = &mut t.wq[k];
        skb.tx_ns = self.now;
        if skb.sacked & RETRANS == 0 {
            t.retrans_out += 1;
        }
        skb.sacked |= RETRANS | EVER_RETRANS;
        t.total_retrans += 1;
        t.bytes_retrans += len as u64;
        Ok(())
    }

    /// Plays the part of `tcp_xmit_retransmit_queue`: retransmits the skbs
    /// marked LOST and not yet retransmitted, in order, while the
    /// congestion window has room (RFC 6675 §5 (C), NextSeg rule 1) and
    /// TSQ (doubled for retransmits) allows.
    pub(crate) fn tcp_xmit_retransmit_queue(&mut self, t: &mut Tcb, i: usize) {
        let mut k = 0;
        while k < t.send_head {
            let s = t.wq[k].sacked;
            if s & LOST != 0 && s & (RETRANS | SACKED) == 0 {
                if t.in_flight() >= t.cw.cwnd {
                    break;
                }
                let ts = self.tcp_truesize(t.wq[k].len() as usize, t.mss_cache);
                if self.tcp_small_queue_check(t, i, 1, ts) {
                    break;
                }
                if self.tcp_retransmit_skb(t, k).is_err() {
                    break;
                }
                if k == 0 {
                    self.tcp_arm_rto(t);
                }
            }
            k += 1;
        }
    }

    /// Plays the part of `tcp_v4_send_reset`: the RST answering a segment
    /// no socket takes (RFC 9293 §3.10.7.1): seq = its ACK if it had one,
    /// else seq 0 with ACK = its end.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tcp_v4_send_reset(
        &mut self,
        laddr: Ipv4Addr,
        lport: u16,
        raddr: Ipv4Addr,
        rport: u16,
        h: &tw::TcpHeader,
        seg_len: u32,
    ) {
        if h.has(RST) || raddr.is_broadcast() || raddr.is_multicast() {
            return;
        }
        let (seq, ack, flags) = if h.has(ACK) {
            (h.ack, 0, RST)
        } else {
            let end = h
                .seq
                .wrapping_add(seg_len)
                .wrapping_add(h.has(SYN) as u32)
                .wrapping_add(h.has(FIN) as u32);
            (0, end, RST | ACK)
        };
        let r = self.ip_send_simple(
            raddr,
            Some(laddr),
            IPPROTO_TCP,
            0,
            |b| {
                tw::write_header(b, lport, rport, seq, ack, tw::TCP_HLEN, flags, 0);
                let s = checksum::pseudo_header_sum(laddr, raddr, IPPROTO_TCP, tw::TCP_HLEN as u16)
                    + checksum::sum(&b[..tw::TCP_HLEN]);
                let c = !checksum::fold(s);
                b[16..18].copy_from_slice(&c.to_be_bytes());
            },
            tw::TCP_HLEN,
        );
        if r.is_ok() {
            self.counters.tcp.out_rsts.add(1);
            self.counters.tcp.out_segs.add(1);
        }
        self.xmit.flush();
    }
}
