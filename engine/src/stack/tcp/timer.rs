//! TCP timers, run from the lcore's poll (`Stack::poll_timers`), like the
//! stack's ARP timers: the retransmission timer (`tcp_retransmit_timer`,
//! with SYN retries and `tcp_write_timeout`), the zero-window probe timer
//! (`tcp_probe_timer`), the delayed ACK (`tcp_delack_timer_handler`), and
//! TIME-WAIT expiry (`tcp_time_wait` / `inet_twsk_kill`). The RTO comes from
//! `tcp_rtt_estimator` / `__tcp_set_rto` (RFC 6298 in Linux's scaled
//! form, 200 ms minimum, 120 s maximum).

use super::{CaState, Tcb, TcpState, LOST, RETRANS, SACKED};
use crate::stack::{Errno, Stack};

/// `TCP_RTO_MIN` (HZ/5).
pub const TCP_RTO_MIN_US: u32 = 200_000;
/// `TCP_RTO_MAX` (120 s).
pub const TCP_RTO_MAX_US: u32 = 120_000_000;
/// `TCP_TIMEOUT_INIT` (1 s, RFC 6298 §2.1).
pub const TCP_TIMEOUT_INIT_US: u32 = 1_000_000;
/// `TCP_DELACK_MIN` (HZ/25 = 40 ms).
pub const TCP_DELACK_MIN_NS: u64 = 40_000_000;

impl Tcb {
    /// Plays the part of `tcp_rtt_estimator` (RFC 6298 §2 in Linux's form:
    /// `srtt_us` holds 8·SRTT, `mdev_us` 4·RTTVAR; gains 1/8 and 1/4) and
    /// `__tcp_set_rto`: RTO = SRTT + max(4·RTTVAR, `TCP_RTO_MIN`) — Linux
    /// applies its 200 ms floor to the variance term (`tcp_rto_min`), so
    /// the first sample R gives RTO = R + max(2R, 200 ms). Linux tracks the
    /// variance floor once per RTT (`mdev_max_us`); here every sample
    /// updates it.
    pub fn rtt_estimator(&mut self, mrtt_us: u32) {
        let mut m = mrtt_us.max(1) as i64;
        self.min_rtt_us = self.min_rtt_us.min(m as u32);
        if self.srtt_us != 0 {
            m -= (self.srtt_us >> 3) as i64;
            self.srtt_us = (self.srtt_us as i64 + m) as u32;
            if m < 0 {
                m = -m;
                m -= (self.mdev_us >> 2) as i64;
                if m > 0 {
                    m >>= 3;
                }
            } else {
                m -= (self.mdev_us >> 2) as i64;
            }
            self.mdev_us = (self.mdev_us as i64 + m).max(0) as u32;
        } else {
            self.srtt_us = (m as u32) << 3;
            self.mdev_us = (m as u32) << 1;
        }
        self.rttvar_us = self.mdev_us.max(TCP_RTO_MIN_US);
        self.rto_us = ((self.srtt_us >> 3) + self.rttvar_us).min(TCP_RTO_MAX_US);
    }

    /// The current RTO with exponential backoff (`inet_csk_rto_backoff`).
    #[inline]
    pub fn backed_off_rto_us(&self) -> u32 {
        ((self.rto_us as u64) << self.backoff.min(31)).min(TCP_RTO_MAX_US as u64) as u32
    }
}

impl Stack {
    /// (Re)arms the retransmission timer at now + RTO·2^backoff
    /// (`inet_csk_reset_xmit_timer(ICSK_TIME_RETRANS)`), and puts the
    /// socket on the timer list: a socket that left it (every byte acked,
    /// no timer) and sends again must have its RTO run, whatever else
    /// (TSQ, autocork) would have put it back.
    pub(crate) fn tcp_arm_rto(&mut self, t: &mut Tcb) {
        t.rto_at = Some(self.now + t.backed_off_rto_us() as u64 * 1000);
        self.tcp.mark_active(t.idx);
    }

    /// Runs every TCP timer that is due and pushes sockets waiting for TX
    /// completions (TSQ); called from `Stack::poll_timers`.
    pub(crate) fn tcp_poll_timers(&mut self) {
        let now = self.now;
        let mut n = self.tcp.active.len();
        let mut k = 0;
        while k < n {
            let i = self.tcp.active[k];
            let keep = self.with_tcb(i, |st, t| st.tcp_timers_one(t, i, now));
            match keep {
                Some(true) => k += 1,
                Some(false) | None => {
                    self.tcp.active.swap_remove(k);
                    self.tcp.in_active[i] = false;
                    n -= 1;
                }
            }
            if let Some(t) = self.tcp.get(i) {
                if t.orphan && t.state == TcpState::Closed {
                    self.tcp.destroy(i);
                }
            }
        }
    }

    /// One socket's due timers; returns whether it still has timers or
    /// pending transmit work (stays on the active list).
    fn tcp_timers_one(&mut self, t: &mut Tcb, i: usize, now: u64) -> bool {
        if t.tw_at.is_some_and(|d| now >= d) {
            // inet_twsk_kill: TIME-WAIT over.
            self.tcp_done(t);
            return false;
        }
        if t.delack_at.is_some_and(|d| now >= d) {
            // tcp_delack_timer_handler.
            t.delack_at = None;
            if t.ack_pending {
                self.counters.tcp_ext.delayed_acks.add(1);
                self.tcp_send_ack(t);
            }
        }
        if t.rto_at.is_some_and(|d| now >= d) {
            t.rto_at = None;
            self.tcp_retransmit_timer(t, i);
        }
        if t.probe_at.is_some_and(|d| now >= d) {
            t.probe_at = None;
            self.tcp_probe_timer(t, i);
        }
        if t.pace_at.is_some_and(|d| now >= d) {
            // tcp_pace_kick → tcp_tsq_handler: the pacing timer.
            t.pace_at = None;
            if t.state != TcpState::Closed {
                self.tcp_push_pending(t, i);
            }
        }
        // TSQ / autocork (tcp_tsq_handler): push what waited for completions.
        if t.tsq_throttled && t.state != TcpState::Closed {
            t.tsq_throttled = false;
            self.tcp_push_pending(t, i);
        }
        t.rto_at.is_some()
            || t.delack_at.is_some()
            || t.probe_at.is_some()
            || t.tw_at.is_some()
            || t.pace_at.is_some()
            || t.tsq_throttled
    }

    /// Plays the part of `tcp_retransmit_timer` + `tcp_write_timeout`: the
    /// oldest unacknowledged segment timed out. SYN-SENT: resend the SYN
    /// until `tcp_syn_retries`, then `ETIMEDOUT`. Otherwise: give up after
    /// `tcp_retries2` (`ETIMEDOUT`), else enter Loss (`tcp_enter_loss`:
    /// ssthresh from the algorithm, cwnd 1, every un-SACKed segment lost),
    /// retransmit the head, back off the RTO (doubling up to 120 s).
    pub(crate) fn tcp_retransmit_timer(&mut self, t: &mut Tcb, i: usize) {
        if t.packets_out == 0 || t.wq.is_empty() {
            return;
        }
        let limit = match t.state {
            TcpState::SynSent | TcpState::SynRecv => {
                if t.state == TcpState::SynSent {
                    self.tcp.cfg.syn_retries
                } else {
                    self.tcp.cfg.synack_retries
                }
            }
            _ => self.tcp.cfg.retries2,
        };
        if t.retransmits >= limit {
            // tcp_write_err.
            if t.state == TcpState::SynSent {
                self.counters.tcp.attempt_fails.add(1);
            } else if t.state.counts_estab() {
                self.counters.tcp.estab_resets.add(1);
            }
            self.counters.tcp_ext.abort_on_timeout.add(1);
            t.err = Some(Errno::ETIMEDOUT);
            self.tcp_done(t);
            return;
        }
        self.counters.tcp_ext.timeouts.add(1);
        if matches!(t.state, TcpState::SynSent | TcpState::SynRecv) {
            self.counters.tcp_ext.syn_retrans.add(1);
        } else {
            self.tcp_enter_loss(t);
        }
        if self.tcp_retransmit_skb(t, 0).is_err() {
            // Local congestion: try again after the resource probe interval
            // without counting it as a timeout retry.
            t.rto_at = Some(self.now + 500_000_000);
            return;
        }
        t.backoff = t.backoff.saturating_add(1);
        t.retransmits = t.retransmits.saturating_add(1);
        self.tcp_arm_rto(t);
        self.xmit.flush();
        let _ = i;
    }

    /// Plays the part of `tcp_enter_loss` (RFC 5681 §3.1 / RFC 6298 §5.5):
    /// ssthresh from the algorithm (unless already in Loss), cwnd = 1
    /// (loss window), every segment not SACKed marked LOST and its
    /// retransmit mark cleared; recovery lasts until snd_nxt is acknowledged.
    pub(crate) fn tcp_enter_loss(&mut self, t: &mut Tcb) {
        let now_us = self.tcp_now_us();
        if t.ca_state != CaState::Loss {
            t.prior_ssthresh = t.cw.ssthresh;
            t.cw.ssthresh = t.cc.ssthresh(&t.cw);
            t.cc.on_loss_state(now_us, t.snd_nxt);
        }
        t.cw.cwnd = 1;
        t.cw.cnt = 0;
        t.retrans_out = 0;
        t.lost_out = 0;
        for k in 0..t.send_head {
            let s = &mut t.wq[k];
            s.sacked &= !RETRANS;
            if s.sacked & SACKED == 0 {
                s.sacked |= LOST;
                t.lost_out += 1;
            }
        }
        t.dupacks = 0;
        t.high_seq = t.snd_nxt;
        t.ca_state = CaState::Loss;
    }

    /// Plays the part of `tcp_probe_timer` → `tcp_send_probe0` →
    /// `tcp_write_wakeup`: data waits and nothing is in flight (a closed
    /// window, or data held by Nagle/cork): send what the window allows or
    /// probe it, backing off like the RTO; give up after `tcp_retries2`
    /// probes of a closed window.
    fn tcp_probe_timer(&mut self, t: &mut Tcb, i: usize) {
        if t.packets_out > 0 || t.send_head >= t.wq.len() || !t.state.can_send_any() {
            t.probes_out = 0;
            return;
        }
        if t.probes_out >= self.tcp.cfg.retries2 {
            t.err = Some(Errno::ETIMEDOUT);
            self.counters.tcp_ext.abort_on_timeout.add(1);
            self.tcp_done(t);
            return;
        }
        let zero = t.snd_wnd == 0;
        self.tcp_write_wakeup(t, i);
        if !zero || t.packets_out > 0 {
            t.probes_out = 0;
            return;
        }
        t.probes_out += 1;
        let to = ((t.rto_us.max(TCP_RTO_MIN_US) as u64) << t.probes_out.min(31))
            .min(TCP_RTO_MAX_US as u64);
        t.probe_at = Some(self.now + to * 1000);
    }
}

impl TcpState {
    /// States in which queued data (or a FIN) may still leave.
    pub(crate) fn can_send_any(self) -> bool {
        matches!(
            self,
            TcpState::Established
                | TcpState::CloseWait
                | TcpState::FinWait1
                | TcpState::Closing
                | TcpState::LastAck
        )
    }
}
