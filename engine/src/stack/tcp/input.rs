//! TCP input: `tcp_v4_rcv` (checksum, socket lookup, RST for strays), the
//! listener's `tcp_conn_request`, `tcp_rcv_synsent_state_process`,
//! `tcp_rcv_state_process` (RFC 9293 §3.10.7.4 order: sequence check, RST,
//! SYN, ACK, data, FIN), `tcp_ack` with `tcp_clean_rtx_queue` and
//! `tcp_fastretrans_alert`, and `tcp_data_queue`.

use super::sack::DUP_THRESH;
use super::wire::{after, before, TcpHeader, ACK, FIN, RST, SYN};
use super::{CaState, Skb, Tcb, TcpState, EVER_RETRANS, LOST, RETRANS, SACKED};
use crate::mbuf::{ol, Mbuf};
use crate::stack::checksum;
use crate::stack::wire::Ipv4Header;
use crate::stack::{secret, Errno, Stack};

use super::output::IPPROTO_TCP;
use super::timer::TCP_DELACK_MIN_NS;

/// A received segment: header plus where its payload lies in the mbuf.
struct Seg {
    h: TcpHeader,
    /// The segment (data at the TCP header); taken when it joins the
    /// out-of-order queue.
    m: Option<Mbuf>,
    /// Payload length.
    len: u32,
}

impl Seg {
    /// `TCP_SKB_CB(skb)->end_seq`: seq + payload + SYN + FIN.
    fn end_seq(&self) -> u32 {
        self.h
            .seq
            .wrapping_add(self.len)
            .wrapping_add(self.h.has(SYN) as u32)
            .wrapping_add(self.h.has(FIN) as u32)
    }
    /// Copies payload bytes `[off, off+dst.len())` out of the mbuf chain.
    fn copy_payload(&self, off: usize, mut n: usize, out: &mut std::collections::VecDeque<u8>) {
        let mut skip = self.h.hlen + off;
        let Some(m) = self.m.as_ref() else { return };
        for s in m.segments() {
            if n == 0 {
                break;
            }
            let d = s.data;
            if skip >= d.len() {
                skip -= d.len();
                continue;
            }
            let take = (d.len() - skip).min(n);
            out.extend(&d[skip..skip + take]);
            n -= take;
            skip = 0;
        }
    }
}

impl Stack {
    /// Plays the part of `tcp_v4_rcv`: verifies the checksum (or trusts
    /// the NIC's), parses the header, looks the socket up (established
    /// 4-tuple, then listener) and hands the segment on; a segment for no
    /// socket gets an RST (`tcp_v4_send_reset`). Counts InSegs, InErrs and
    /// InCsumErrors.
    pub(crate) fn tcp_v4_rcv(&mut self, ih: &Ipv4Header, m: Mbuf) {
        self.counters.tcp.in_segs.add(1);
        let len = m.pkt_len();
        if ih.dst.is_broadcast() || ih.dst.is_multicast() {
            return; // TCP is unicast only
        }
        let good = m.ol_flags() & ol::RX_L4_CKSUM_GOOD != 0 || {
            let mut c = checksum::Checksum::with_sum(checksum::pseudo_header_sum(
                ih.src,
                ih.dst,
                IPPROTO_TCP,
                len as u16,
            ));
            for s in m.segments() {
                c.add(s.data);
            }
            c.folded() == 0xffff
        };
        if !good {
            self.counters.tcp.in_csum_errors.add(1);
            self.counters.tcp.in_errs.add(1);
            return;
        }
        let h = match TcpHeader::parse(&m.data()[..m.data_len().min(len)]) {
            Ok(h) if h.hlen <= len => h,
            _ => {
                self.counters.tcp.in_errs.add(1);
                return;
            }
        };
        let mut seg = Seg {
            h,
            m: Some(m),
            len: (len - h.hlen) as u32,
        };
        let key = (u32::from(ih.dst), h.dst_port, u32::from(ih.src), h.src_port);
        if let Some(&i) = self.tcp.ehash.get(&key) {
            self.with_tcb(i, |st, t| st.tcp_rcv_state_process(t, i, &mut seg));
            self.xmit.flush();
            return;
        }
        if let Some(&li) = self.tcp.lhash.get(&h.dst_port) {
            let ok = self
                .tcp
                .get(li)
                .is_some_and(|l| l.laddr.is_unspecified() || l.laddr == ih.dst);
            if ok {
                if h.has(RST) {
                    return;
                }
                if h.has(ACK) {
                    // An ACK for no pending connection (no syncookies).
                    self.tcp_v4_send_reset(ih.dst, h.dst_port, ih.src, h.src_port, &h, seg.len);
                    return;
                }
                if h.has(SYN) {
                    self.tcp_conn_request(li, ih, &seg);
                }
                return;
            }
        }
        self.tcp_v4_send_reset(ih.dst, h.dst_port, ih.src, h.src_port, &h, seg.len);
    }

    /// Plays the part of `tcp_conn_request` → `tcp_v4_send_synack`: a SYN
    /// on a listener becomes a SYN-RECV child (Linux keeps a request sock;
    /// here a full control block from the start) unless the backlog is
    /// full (`ListenOverflows`, `ListenDrops`). The SYN's options
    /// negotiate MSS, window scale, SACK and timestamps.
    fn tcp_conn_request(&mut self, li: usize, ih: &Ipv4Header, seg: &Seg) {
        let h = &seg.h;
        let (backlog, pending, rcvbuf, sndbuf, nodelay, cc) = {
            let l = self.tcp.get(li).expect("listener");
            (
                l.backlog,
                l.syn_q_len + l.accept_q.len(),
                l.rcvbuf,
                l.sndbuf,
                l.nodelay,
                l.cc.algo,
            )
        };
        if pending >= backlog {
            self.counters.tcp_ext.listen_overflows.add(1);
            self.counters.tcp_ext.listen_drops.add(1);
            return;
        }
        let now_us = self.tcp_now_us();
        let mut t = Tcb::new(&self.tcp.cfg, now_us);
        t.rcvbuf = rcvbuf;
        t.sndbuf = sndbuf;
        t.nodelay = nodelay;
        t.cc = super::cong::CongControl::new(cc, now_us, 0);
        t.laddr = ih.dst;
        t.lport = h.dst_port;
        t.raddr = ih.src;
        t.rport = h.src_port;
        t.parent = Some(li);
        let dst = match self.route_output(t.raddr, Some(t.laddr), None) {
            Ok(d) => d,
            Err(_) => {
                self.counters.ip.out_no_routes.add(1);
                self.counters.tcp_ext.listen_drops.add(1);
                return;
            }
        };
        t.dst = Some(dst);
        let o = &h.opts;
        t.ts_ok = self.tcp.cfg.timestamps && o.ts.is_some();
        t.sack_ok = self.tcp.cfg.sack && o.sack_ok;
        t.wscale_ok = self.tcp.cfg.window_scaling && o.wscale.is_some();
        self.tcp_init_nonsynced(&mut t, &dst);
        if t.wscale_ok {
            t.snd_wscale = o.wscale.unwrap_or(0);
        } else {
            t.rcv_wscale = 0;
            t.rcv_wnd = t.rcvbuf.min(65535);
        }
        t.mss_clamp = t.advmss.min(o.mss.unwrap_or(536));
        if let Some((val, _)) = o.ts {
            t.ts_recent = val;
        }
        t.irs = h.seq;
        t.rcv_nxt = h.seq.wrapping_add(1);
        t.rcv_wup = t.rcv_nxt;
        t.snd_wnd = h.window as u32;
        t.snd_wl1 = h.seq;
        let hsh = secret::siphash_2u64(
            ((u32::from(t.laddr) as u64) << 32) | u32::from(t.raddr) as u64,
            ((t.lport as u64) << 16) | t.rport as u64,
            &self.tcp.key,
        );
        t.iss = (hsh as u32).wrapping_add((self.now >> 6) as u32);
        t.ts_offset = (hsh >> 32) as u32;
        t.inet_id = (hsh >> 16) as u16;
        t.txhash = secret::flow_hash4(
            u32::from(t.laddr),
            u32::from(t.raddr),
            t.lport,
            t.rport,
            IPPROTO_TCP,
            &self.hash_key,
        );
        t.state = TcpState::SynRecv;
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
        self.tcp_sync_mss(&mut t);
        t.rcv_mss = t.mss_cache;
        let Ok(ci) = self.tcp.alloc(t) else {
            self.counters.tcp_ext.listen_drops.add(1);
            return;
        };
        let key = self.tcp.get(ci).expect("new child").key();
        self.tcp.ehash.insert(key, ci);
        self.tcp.bind_port(h.dst_port);
        if let Some(l) = self.tcp.get_mut(li) {
            l.syn_q_len += 1;
        }
        self.with_tcb(ci, |st, t| {
            t.hashed = true;
            if st.tcp_transmit_skb(t, 0, None).is_ok() {
                st.counters.tcp_ext.synacks_sent.add(1);
            }
            t.send_head = 1;
            t.snd_nxt = t.write_seq;
            t.packets_out = 1;
            st.tcp_arm_rto(t);
        });
        self.tcp.mark_active(ci);
    }

    /// Plays the part of `tcp_rcv_state_process` (and its established fast
    /// path `tcp_rcv_established`, which takes the same steps here).
    fn tcp_rcv_state_process(&mut self, t: &mut Tcb, i: usize, seg: &mut Seg) {
        t.segs_in += 1;
        let h = seg.h;
        let h = &h;
        match t.state {
            TcpState::Closed | TcpState::Listen => return,
            TcpState::SynSent => {
                self.tcp_rcv_synsent_state_process(t, i, seg);
                return;
            }
            TcpState::TimeWait => {
                self.tcp_timewait_state_process(t, seg);
                return;
            }
            _ => {}
        }
        // 0. PAWS (RFC 7323 §5.3 R1, `tcp_paws_discard`): a timestamp older
        // than the last one accepted marks an old duplicate: drop it, ACK.
        if t.ts_ok && !h.has(RST) && !h.has(SYN) {
            if let Some((val, _)) = h.opts.ts {
                if (val.wrapping_sub(t.ts_recent) as i32) < 0 {
                    self.counters.tcp_ext.paws_estab_rejected.add(1);
                    self.tcp_send_ack(t);
                    return;
                }
            }
        }
        // 1. Sequence check (tcp_sequence): the segment must overlap the
        // receive window.
        let end = seg.end_seq();
        let win_end = t.rcv_nxt.wrapping_add(t.rcv_wnd);
        let acceptable = if seg.len == 0 && !h.has(SYN) && !h.has(FIN) {
            !before(h.seq, t.rcv_wup) && !after(h.seq, win_end) || h.seq == t.rcv_nxt
        } else {
            !before(end, t.rcv_wup) && !after(h.seq, win_end)
        };
        if !acceptable {
            if t.state == TcpState::SynRecv && h.has(SYN) && h.seq == t.irs {
                // The peer resent its SYN: resend our SYN-ACK (tcp_check_req).
                let _ = self.tcp_retransmit_skb(t, 0);
                return;
            }
            if !h.has(RST) {
                // tcp_send_dupack.
                self.tcp_send_ack(t);
            }
            return;
        }
        // 2. RST (tcp_validate_incoming, RFC 5961 §3.2).
        if h.has(RST) {
            if h.seq == t.rcv_nxt {
                self.tcp_reset(t);
            } else {
                self.counters.tcp_ext.challenge_acks.add(1);
                self.tcp_send_ack(t);
            }
            return;
        }
        // Timestamps: remember the peer's clock (tcp_store_ts_recent).
        if t.ts_ok {
            if let Some((val, _)) = h.opts.ts {
                if !after(h.seq, t.rcv_wup) {
                    t.ts_recent = val;
                }
            }
        }
        // 3. A SYN in a synchronized state: challenge ACK (RFC 5961 §4).
        if h.has(SYN) {
            if t.state == TcpState::SynRecv && h.seq == t.irs {
                let _ = self.tcp_retransmit_skb(t, 0);
                return;
            }
            self.counters.tcp_ext.challenge_acks.add(1);
            self.tcp_send_ack(t);
            return;
        }
        // 4. ACK.
        if !h.has(ACK) {
            return;
        }
        if t.state == TcpState::SynRecv {
            if !after(h.ack, t.snd_una) || after(h.ack, t.snd_nxt) {
                let (la, lp, ra, rp) = (t.laddr, t.lport, t.raddr, t.rport);
                self.tcp_v4_send_reset(la, lp, ra, rp, h, seg.len);
                return;
            }
            self.tcp_synrecv_established(t, i, h);
        }
        if self.tcp_ack(t, i, seg).is_err() {
            return;
        }
        if t.state == TcpState::Closed {
            return;
        }
        // 5. Data and FIN.
        let orphan_data = t.orphan
            && seg.len > 0
            && matches!(t.state, TcpState::FinWait1 | TcpState::FinWait2)
            && after(end, t.rcv_nxt);
        if orphan_data {
            // tcp_rcv_state_process: data after close → reset.
            self.counters.tcp_ext.abort_on_data.add(1);
            self.tcp_send_active_reset(t);
            self.tcp_done(t);
            return;
        }
        if seg.len > 0 || h.has(FIN) {
            match t.state {
                TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2 => {
                    self.tcp_data_queue(t, i, seg)
                }
                // After the peer's FIN: a retransmission of it or of data: re-ACK.
                _ => self.tcp_send_ack(t),
            }
        }
    }

    /// SYN-RECV → ESTABLISHED on the handshake's ACK (`tcp_rcv_state_process`
    /// TCP_SYN_RECV case; `tcp_create_openreq_child` counts PassiveOpens).
    fn tcp_synrecv_established(&mut self, t: &mut Tcb, i: usize, h: &TcpHeader) {
        self.tcp_set_state(t, TcpState::Established);
        self.counters.tcp.passive_opens.add(1);
        t.snd_wnd = (h.window as u32) << t.snd_wscale;
        t.snd_wl1 = h.seq;
        t.max_window = t.snd_wnd;
        if let Some(p) = t.parent {
            if let Some(l) = self.tcp.get_mut(p) {
                l.syn_q_len = l.syn_q_len.saturating_sub(1);
                l.accept_q.push_back(i);
            }
        }
        if t.shut_wr {
            t.state = TcpState::FinWait1;
            self.counters.tcp.curr_estab.sub(1);
            self.tcp_send_fin(t, i);
        }
    }

    /// Plays the part of `tcp_rcv_synsent_state_process` (RFC 9293
    /// §3.10.7.3): an ACK must cover our SYN; RST with it refuses the
    /// connection (`ECONNREFUSED`); SYN+ACK completes it (options, window,
    /// RTT from the SYN, cwnd init, ACK); a bare SYN is a simultaneous open.
    fn tcp_rcv_synsent_state_process(&mut self, t: &mut Tcb, i: usize, seg: &Seg) {
        let h = &seg.h;
        if h.has(ACK) && (!after(h.ack, t.iss) || after(h.ack, t.snd_nxt)) {
            if !h.has(RST) {
                let (la, lp, ra, rp) = (t.laddr, t.lport, t.raddr, t.rport);
                self.tcp_v4_send_reset(la, lp, ra, rp, h, seg.len);
            }
            return;
        }
        if h.has(RST) {
            if h.has(ACK) {
                self.tcp_reset(t);
            }
            return;
        }
        if !h.has(SYN) {
            return;
        }
        let o = h.opts;
        t.ts_ok &= o.ts.is_some();
        t.sack_ok &= o.sack_ok;
        if t.wscale_ok && o.wscale.is_some() {
            t.snd_wscale = o.wscale.unwrap_or(0);
        } else {
            t.wscale_ok = false;
            t.rcv_wscale = 0;
            t.rcv_wnd = t.rcvbuf.min(65535);
        }
        t.mss_clamp = t.mss_clamp.min(o.mss.unwrap_or(536));
        if let Some((val, _)) = o.ts {
            t.ts_recent = val;
        }
        t.irs = h.seq;
        t.rcv_nxt = h.seq.wrapping_add(1);
        t.rcv_wup = t.rcv_nxt;
        t.snd_wl1 = h.seq;
        self.tcp_sync_mss(t);
        t.rcv_mss = t.mss_cache;
        if !h.has(ACK) {
            // Simultaneous open: SYN-RECV, answer SYN+ACK.
            self.tcp_set_state(t, TcpState::SynRecv);
            t.snd_wnd = h.window as u32;
            let _ = self.tcp_retransmit_skb(t, 0);
            return;
        }
        // The SYN is acknowledged: take it off the queue with an RTT sample.
        let syn = t.wq.pop_front().expect("SYN on the queue");
        if syn.sacked & EVER_RETRANS == 0 {
            let rtt = (self.now.saturating_sub(syn.tx_ns) / 1000) as u32;
            t.rtt_estimator(rtt);
        }
        t.send_head = 0;
        t.packets_out = 0;
        t.retrans_out = 0;
        t.snd_una = h.ack;
        t.snd_wnd = h.window as u32; // a SYN's window is not scaled
        t.max_window = t.snd_wnd;
        t.rto_at = None;
        t.backoff = 0;
        t.retransmits = 0;
        let now_us = self.tcp_now_us();
        t.cw = super::cong::Cwnd::default();
        t.cc = super::cong::CongControl::new(t.cc.algo, now_us, t.snd_nxt);
        self.tcp_set_state(t, TcpState::Established);
        self.tcp_send_ack(t);
        if t.shut_wr {
            self.tcp_set_state(t, TcpState::FinWait1);
            self.tcp_send_fin(t, i);
        } else {
            self.tcp_push_pending(t, i);
        }
    }

    /// Plays the part of `tcp_reset`: the peer reset the connection;
    /// `sk_err` = ECONNREFUSED in SYN-SENT, EPIPE in CLOSE-WAIT, else
    /// ECONNRESET; EstabResets when it was established; `tcp_done`.
    fn tcp_reset(&mut self, t: &mut Tcb) {
        let e = match t.state {
            TcpState::SynSent => {
                self.counters.tcp.attempt_fails.add(1);
                Errno::ECONNREFUSED
            }
            TcpState::CloseWait => Errno::EPIPE,
            _ => Errno::ECONNRESET,
        };
        if t.state.counts_estab() {
            self.counters.tcp.estab_resets.add(1);
        }
        if t.state == TcpState::SynRecv {
            self.counters.tcp.attempt_fails.add(1);
            if let Some(p) = t.parent.take() {
                if let Some(l) = self.tcp.get_mut(p) {
                    l.syn_q_len = l.syn_q_len.saturating_sub(1);
                }
                // A child nobody will accept: gone with the reset.
                t.orphan = true;
            }
        }
        t.err = Some(e);
        self.tcp_done(t);
    }

    /// Plays the part of `tcp_timewait_state_process`: a retransmitted FIN
    /// is ACKed again and restarts the 2MSL timer; an RST ends TIME-WAIT
    /// early only when in sequence.
    fn tcp_timewait_state_process(&mut self, t: &mut Tcb, seg: &Seg) {
        let h = &seg.h;
        if h.has(RST) {
            return; // RFC 1337: ignore RSTs in TIME-WAIT
        }
        if h.has(FIN) || seg.len > 0 {
            self.tcp_send_ack(t);
            t.tw_at = Some(self.now + self.tcp.cfg.time_wait_ns);
        }
    }

    /// Plays the part of `tcp_ack`: rejects ACKs of unsent data (answered
    /// with an ACK), updates the send window (`tcp_ack_update_window`),
    /// tags SACKs, frees what is acknowledged (`tcp_clean_rtx_queue`, RTT
    /// and RTO), runs the congestion state machine
    /// (`tcp_fastretrans_alert`) and window growth (`tcp_cong_avoid`), the
    /// FIN-ACK state changes, and sends what the ACK allows.
    fn tcp_ack(&mut self, t: &mut Tcb, i: usize, seg: &Seg) -> Result<(), ()> {
        let h = &seg.h;
        let ack = h.ack;
        let prior_snd_una = t.snd_una;
        if after(ack, t.snd_nxt) {
            self.tcp_send_ack(t);
            return Err(());
        }
        if before(ack, prior_snd_una) {
            // An old ACK: nothing to learn from it but the data it carries.
            return Ok(());
        }
        // tcp_ack_update_window (RFC 9293 §3.10.7.4 SND.WL1/WL2 rule).
        let nwin = (h.window as u32) << t.snd_wscale;
        let old_wnd = t.snd_wnd;
        if after(ack, prior_snd_una)
            || after(h.seq, t.snd_wl1)
            || (h.seq == t.snd_wl1 && nwin > t.snd_wnd)
        {
            t.snd_wnd = nwin;
            t.snd_wl1 = h.seq;
            t.max_window = t.max_window.max(nwin);
        }
        let mut newly_sacked = 0;
        if t.sack_ok && h.opts.num_sacks > 0 {
            newly_sacked = t.sacktag(&h.opts.sack[..h.opts.num_sacks as usize]);
        }
        let (acked, rtt_us) = self.tcp_clean_rtx_queue(t, ack);
        let now_ms = self.tcp_now_ms();
        let now_us = self.tcp_now_us();
        // RTT: the newest never-retransmitted segment's age, or the timestamp echo.
        let rtt = rtt_us.or_else(|| {
            let (_, ecr) = h.opts.ts?;
            (t.ts_ok && ecr != 0 && acked > 0)
                .then(|| now_ms.wrapping_sub(ecr.wrapping_sub(t.ts_offset)).max(1) * 1000)
        });
        if let Some(r) = rtt {
            t.rtt_estimator(r);
            t.cc.pkts_acked(&mut t.cw, r, now_ms, now_us);
        }
        if acked > 0 {
            t.backoff = 0;
            t.retransmits = 0;
            t.probes_out = 0;
            // tcp_rearm_rto.
            if t.packets_out > 0 {
                self.tcp_arm_rto(t);
            } else {
                t.rto_at = None;
            }
        }
        let is_dupack = ack == prior_snd_una
            && seg.len == 0
            && !h.has(FIN)
            && nwin == old_wnd
            && t.packets_out > 0;
        if t.snd_wnd > 0 {
            t.probe_at = None;
        }
        self.tcp_fastretrans_alert(t, acked, is_dupack, newly_sacked);
        if acked > 0 && t.ca_state != CaState::Recovery {
            let lim = t.is_cwnd_limited();
            let nxt = t.snd_nxt;
            t.cc.cong_avoid(&mut t.cw, ack, acked, lim, now_ms, now_us, nxt);
        }
        // Our FIN acknowledged?
        let fin_acked = t.fin_queued && t.snd_una == t.write_seq;
        if fin_acked {
            match t.state {
                TcpState::FinWait1 => {
                    self.tcp_set_state(t, TcpState::FinWait2);
                    if t.orphan {
                        // tcp_fin_timeout: an orphan does not wait forever.
                        t.tw_at = Some(self.now + self.tcp.cfg.time_wait_ns);
                        self.tcp.mark_active(i);
                    }
                }
                TcpState::Closing => self.tcp_time_wait(t, i),
                TcpState::LastAck => {
                    self.tcp_done(t);
                    return Err(());
                }
                _ => {}
            }
        }
        if acked > 0 || is_dupack || t.snd_wnd != old_wnd {
            // tcp_data_snd_check.
            self.tcp_push_pending(t, i);
        }
        Ok(())
    }

    /// Plays the part of `tcp_clean_rtx_queue`: frees the skbs `ack`
    /// covers (and trims a partly covered head, `tcp_trim_head`), keeps
    /// the scoreboard counts, returns (segments acked, RTT sample in µs
    /// from the newest never-retransmitted one: Karn's rule).
    fn tcp_clean_rtx_queue(&mut self, t: &mut Tcb, ack: u32) -> (u32, Option<u32>) {
        let mut acked = 0u32;
        let mut rtt = None;
        while t.send_head > 0 {
            let head = &t.wq[0];
            if after(head.end_seq, ack) {
                // Partly acknowledged data skb: drop the acknowledged bytes.
                if after(ack, head.seq) {
                    let n = ack.wrapping_sub(head.seq) as usize;
                    let head = &mut t.wq[0];
                    let is_syn = head.flags & SYN != 0;
                    if !is_syn {
                        if let Some(m) = head.data.as_mut() {
                            let n = n.min(m.pkt_len());
                            let _ = m.adj(n);
                            t.bytes_acked += n as u64;
                        }
                        head.seq = ack;
                    }
                }
                break;
            }
            let s = t.wq.pop_front().expect("head");
            t.send_head -= 1;
            t.packets_out -= 1;
            if s.sacked & SACKED != 0 {
                t.sacked_out -= 1;
            }
            if s.sacked & LOST != 0 {
                t.lost_out -= 1;
            }
            if s.sacked & RETRANS != 0 {
                t.retrans_out -= 1;
            }
            if s.sacked & EVER_RETRANS == 0 && s.sacked & SACKED == 0 {
                rtt = Some((self.now.saturating_sub(s.tx_ns) / 1000).max(1) as u32);
            }
            t.wmem_queued -= s.truesize;
            t.bytes_acked += s.len() as u64;
            acked += 1;
        }
        t.snd_una = ack;
        if !t.sack_ok {
            t.remove_reno_sacks(acked);
        }
        (acked, rtt)
    }

    /// Plays the part of `tcp_fastretrans_alert` (RFC 5681 §3.2, RFC 6582
    /// NewReno, RFC 6675 SACK recovery without PRR): detects loss (3
    /// duplicate ACKs, or `IsLost` on the SACK scoreboard), enters
    /// Recovery (`tcp_enter_recovery`: ssthresh from the algorithm, cwnd =
    /// ssthresh, the head marked lost for fast retransmit), marks further
    /// losses on partial ACKs, and leaves Recovery/Loss once `high_seq` is
    /// acknowledged. Retransmissions go out through `tcp_write_xmit`.
    fn tcp_fastretrans_alert(&mut self, t: &mut Tcb, acked: u32, is_dupack: bool, newly: u32) {
        if is_dupack {
            t.dupacks += 1;
            if !t.sack_ok {
                t.add_reno_sack();
            }
        } else if acked > 0 {
            t.dupacks = 0;
        }
        match t.ca_state {
            CaState::Recovery | CaState::Loss => {
                if !before(t.snd_una, t.high_seq) {
                    // tcp_try_undo / tcp_end_cwnd_reduction: recovery over.
                    if t.ca_state == CaState::Recovery {
                        t.cw.cwnd = t.cw.ssthresh.max(2).min(t.cw.cwnd.max(t.cw.ssthresh));
                        t.cw.cwnd = t.cw.ssthresh.max(2);
                    }
                    t.ca_state = CaState::Open;
                    t.dupacks = 0;
                    if !t.sack_ok {
                        t.sacked_out = 0;
                    }
                    return;
                }
                if t.ca_state == CaState::Recovery {
                    if t.sack_ok && t.sacked_out > 0 {
                        t.update_scoreboard();
                    } else if acked > 0 {
                        // NewReno partial ACK: the next hole is lost too.
                        t.mark_head_lost();
                    }
                }
            }
            CaState::Open | CaState::Disorder => {
                if t.sack_ok && (newly > 0 || t.sacked_out > 0) {
                    t.update_scoreboard();
                }
                let head_lost = t.wq.front().is_some_and(|s| s.sacked & LOST != 0);
                let enter = t.packets_out > 0
                    && (t.dupacks >= DUP_THRESH || (t.sack_ok && t.lost_out > 0) || head_lost);
                if enter {
                    self.tcp_enter_recovery(t);
                } else if t.sacked_out > 0 || t.dupacks > 0 {
                    t.ca_state = CaState::Disorder;
                } else {
                    t.ca_state = CaState::Open;
                }
            }
        }
    }

    /// Plays the part of `tcp_enter_recovery` + the fast retransmit mark.
    fn tcp_enter_recovery(&mut self, t: &mut Tcb) {
        if t.sack_ok {
            self.counters.tcp_ext.sack_recovery.add(1);
        } else {
            self.counters.tcp_ext.reno_recovery.add(1);
        }
        self.counters.tcp_ext.fast_retrans.add(1);
        t.prior_ssthresh = t.cw.ssthresh;
        t.cw.ssthresh = t.cc.ssthresh(&t.cw);
        t.cw.cwnd = t.cw.ssthresh;
        t.cw.cnt = 0;
        t.high_seq = t.snd_nxt;
        t.ca_state = CaState::Recovery;
        t.mark_head_lost();
        // RFC 6675 §5 (4.3): the first lost segment goes out now, whatever
        // the pipe (Linux: PRR's forced fast retransmit).
        if let Some(k) = (0..t.send_head).find(|&k| t.wq[k].sacked & (LOST | RETRANS) == LOST) {
            if self.tcp_retransmit_skb(t, k).is_ok() && k == 0 {
                self.tcp_arm_rto(t);
            }
        }
    }

    /// Plays the part of `tcp_time_wait`: TIME-WAIT for `TCP_TIMEWAIT_LEN`;
    /// the queues go now.
    pub(crate) fn tcp_time_wait(&mut self, t: &mut Tcb, i: usize) {
        self.tcp_set_state(t, TcpState::TimeWait);
        t.rto_at = None;
        t.probe_at = None;
        t.wq.clear();
        t.send_head = 0;
        t.wmem_queued = 0;
        t.packets_out = 0;
        t.sacked_out = 0;
        t.lost_out = 0;
        t.retrans_out = 0;
        t.tw_at = Some(self.now + self.tcp.cfg.time_wait_ns);
        self.tcp.mark_active(i);
    }

    /// Plays the part of `tcp_data_queue` (+ `tcp_fin`, `tcp_ofo_queue`,
    /// `__tcp_ack_snd_check`): in-order bytes go to the receive ring (up to
    /// its room; the rest is not acknowledged), then whatever the
    /// out-of-order queue now continues; a segment beyond rcv_nxt waits in
    /// the out-of-order queue (the mbuf itself, at most `OFO_MAX`, inside
    /// the window; overlaps are dropped) and is answered at once with
    /// SACK blocks; duplicates get an immediate ACK. A FIN in order ends
    /// the stream (CLOSE-WAIT, CLOSING or TIME-WAIT). ACKs: at once for
    /// every second segment, a FIN, a gap or a full ring; otherwise after
    /// the delayed-ACK timer (40 ms).
    fn tcp_data_queue(&mut self, t: &mut Tcb, i: usize, seg: &mut Seg) {
        let h = seg.h;
        if t.rcv_fin {
            self.tcp_send_ack(t);
            return;
        }
        let mut quick = false;
        if after(h.seq, t.rcv_nxt) {
            self.tcp_data_queue_ofo(t, seg);
            self.tcp_send_ack(t);
            return;
        }
        let skip = t.rcv_nxt.wrapping_sub(h.seq) as usize;
        if skip > seg.len as usize || (skip == seg.len as usize && !h.has(FIN)) {
            // Entirely old (a retransmission we already have).
            self.counters.tcp_ext.dup_data.add(1);
            self.tcp_send_ack(t);
            return;
        }
        let avail = seg.len as usize - skip.min(seg.len as usize);
        let room = t.rcv_space() as usize;
        let take = avail.min(room);
        if take > 0 {
            seg.copy_payload(skip, take, &mut t.rcvq);
            t.rcv_nxt = t.rcv_nxt.wrapping_add(take as u32);
            t.bytes_received += take as u64;
            t.rcv_mss = t.rcv_mss.max(take as u32).min(t.advmss as u32);
        }
        if take < avail {
            quick = true; // window overrun: part dropped
        }
        let mut fin = h.has(FIN) && take == avail;
        if !t.ofo.is_empty() {
            // tcp_ofo_queue: what the hole held back now follows.
            fin |= self.tcp_ofo_queue(t);
            quick = true;
        }
        if fin {
            // tcp_fin.
            t.rcv_nxt = t.rcv_nxt.wrapping_add(1);
            t.rcv_fin = true;
            match t.state {
                TcpState::Established => self.tcp_set_state(t, TcpState::CloseWait),
                TcpState::FinWait1 => self.tcp_set_state(t, TcpState::Closing),
                TcpState::FinWait2 => self.tcp_time_wait(t, i),
                _ => {}
            }
            quick = true;
        }
        t.unacked_rx += 1;
        if quick || t.unacked_rx >= 2 || t.rcv_space() < t.rcv_mss {
            self.tcp_send_ack(t);
        } else {
            t.ack_pending = true;
            if t.delack_at.is_none() {
                t.delack_at = Some(self.now + TCP_DELACK_MIN_NS);
            }
            self.tcp.mark_active(i);
        }
    }

    /// Plays the part of `tcp_data_queue_ofo`: keeps a segment that lies
    /// beyond a hole, if it fits the advertised window and overlaps nothing
    /// queued; the SACK blocks of the next ACK describe the queue.
    fn tcp_data_queue_ofo(&mut self, t: &mut Tcb, seg: &mut Seg) {
        let h = seg.h;
        let end = h.seq.wrapping_add(seg.len);
        let win_end = t.rcv_nxt.wrapping_add(t.rcv_wnd);
        let fits = seg.len > 0 && !after(end, win_end) && t.ofo.len() < super::OFO_MAX;
        let pos = t.ofo.iter().position(|o| after(o.end, h.seq));
        let overlaps =
            pos.is_some_and(|k| !after(t.ofo[k].seq, h.seq) || before(t.ofo[k].seq, end));
        let Some(mut m) = seg.m.take().filter(|_| fits && !overlaps) else {
            self.counters.tcp_ext.ofo_drop.add(1);
            return;
        };
        let extra = m.pkt_len() - h.hlen - seg.len as usize;
        if m.adj(h.hlen).is_err() || (extra > 0 && m.trim(extra).is_err()) {
            self.counters.tcp_ext.ofo_drop.add(1);
            return;
        }
        let o = super::Ofo {
            seq: h.seq,
            end,
            fin: h.has(FIN),
            m,
        };
        match pos {
            Some(k) => t.ofo.insert(k, o),
            None => t.ofo.push_back(o),
        }
        t.ofo_last = h.seq;
        self.counters.tcp_ext.ofo_queue.add(1);
    }

    /// Plays the part of `tcp_ofo_queue`: moves queued segments that now
    /// start at or below rcv_nxt into the receive ring; returns whether a
    /// FIN came with them.
    fn tcp_ofo_queue(&mut self, t: &mut Tcb) -> bool {
        while let Some(o) = t.ofo.front() {
            if after(o.seq, t.rcv_nxt) {
                break;
            }
            let o = t.ofo.pop_front().expect("front");
            if !after(o.end, t.rcv_nxt) {
                continue; // wholly duplicated meanwhile
            }
            let skip = t.rcv_nxt.wrapping_sub(o.seq) as usize;
            let n = (o.end.wrapping_sub(t.rcv_nxt) as usize).min(t.rcv_space() as usize);
            let mut k = 0;
            let mut off = skip;
            for s in o.m.segments() {
                if off >= s.data.len() {
                    off -= s.data.len();
                    continue;
                }
                let take = (s.data.len() - off).min(n - k);
                t.rcvq.extend(&s.data[off..off + take]);
                k += take;
                off = 0;
                if k == n {
                    break;
                }
            }
            t.rcv_nxt = t.rcv_nxt.wrapping_add(k as u32);
            t.bytes_received += k as u64;
            if o.fin && t.rcv_nxt == o.end {
                t.ofo.clear();
                return true;
            }
            if t.rcv_nxt != o.end {
                break; // ring full
            }
        }
        false
    }
}
