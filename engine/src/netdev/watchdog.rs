//! The TX watchdog: Linux's `dev_watchdog` (`net/sched/sch_generic.c`), the
//! driver's `ndo_tx_timeout`, and `netdev_tx_reset_queue`, for one queue.
//!
//! `dev_watchdog` runs every `watchdog_timeo` and calls `ndo_tx_timeout` for
//! a queue that is stopped with its last transmit older than the timeout;
//! igb's handler schedules `igb_reset_task`, which cleans the TX ring
//! (`igb_clean_tx_ring` → `netdev_tx_reset_queue`) and re-initialises it.
//! Here the check is a comparison of counters the queue keeps anyway, done
//! by the runtime every few hundred polls (nothing on the per-packet path):
//! a queue with packets in flight whose completion count has not moved for
//! the timeout is timed out, and
//!
//! 1. the timeout is counted (`tx_timeouts`) and returned as a
//!    [`TxTimeout`] event;
//! 2. the driver resets the queue ([`crate::ethdev::TxQueue::reset`]); what
//!    it reports — completed or dropped, each packet once — is completed here
//!    as by a clean. A driver without a reset (`None`) leaves the netdev
//!    layer to complete every packet in flight as dropped (`timeout_drops`);
//!    should the driver report them later after all, those completions are
//!    absorbed, not counted twice;
//! 3. BQL forgets its history (`netdev_tx_reset_queue` → `dql_reset`), with
//!    whatever is still in flight re-queued so its completions balance;
//! 4. the queue is woken, and the qdisc runs again at the next poll.

use super::*;

/// Linux's default `watchdog_timeo` for Ethernet drivers (igb: `5 * HZ`).
pub const DEFAULT_WATCHDOG_TIMEOUT_MS: u64 = 5000;

/// What the watchdog found and did: the runtime's event for one timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TxTimeout {
    pub port: u16,
    pub queue: u16,
    /// Port name (its spec).
    pub port_name: String,
    /// Time since the last completion, ms.
    pub stalled_ms: u64,
    /// Packets in flight when it fired.
    pub in_flight: u64,
    /// True when the driver reset the queue; false when it cannot and the
    /// netdev layer completed the packets in flight as dropped.
    pub driver_reset: bool,
    /// Packets the driver reported at the reset (completed or dropped).
    pub reclaimed: u64,
    /// Packets the netdev layer completed as dropped (`timeout_drops`).
    pub dropped: u64,
}

impl std::fmt::Display for TxTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} queue {}: tx_timeout: no completion for {} ms with {} packets in flight; ",
            self.port_name, self.queue, self.stalled_ms, self.in_flight
        )?;
        if self.driver_reset {
            write!(
                f,
                "queue reset by the driver ({} packets reported), traffic resumes",
                self.reclaimed
            )
        } else {
            write!(
                f,
                "the driver cannot reset a queue: {} packets completed as dropped, traffic resumes",
                self.dropped
            )
        }
    }
}

/// The watchdog's state in a queue.
#[derive(Debug, Clone)]
pub(super) struct Watchdog {
    /// Timeout in TSC cycles; 0 = off.
    timeout: u64,
    /// `completed_packets` at the last check.
    seen: u64,
    /// When completions last moved (or the queue was last empty); 0 = not
    /// yet armed (the first check arms it, so time spent between set-up and
    /// the first poll never counts as a stall).
    since: u64,
    /// Completed as dropped at a timeout but still held by a driver without
    /// reset: its later reports of them are absorbed.
    pub(super) forgive: Completed,
}

impl Watchdog {
    pub(super) fn new(tsc: &Tsc, timeout_ms: u64) -> Watchdog {
        Watchdog {
            timeout: tsc.ns_to_cycles(timeout_ms.saturating_mul(1_000_000)),
            seen: 0,
            since: 0,
            forgive: Completed::default(),
        }
    }
}

impl NetdevQueue {
    /// Plays the part of `dev_watchdog` for this queue at time `now` (TSC):
    /// when packets are in flight and no completion arrived for the timeout,
    /// resets the queue ([`NetdevQueue::tx_timeout`]) and returns what
    /// happened. Cheap: two counter compares unless it fires.
    pub fn watchdog(&mut self, now: u64) -> Option<TxTimeout> {
        if self.wd.timeout == 0 {
            return None;
        }
        if self.state & super::CARRIER_XOFF != 0 {
            // `dev_watchdog` only looks at a queue with carrier: time spent
            // without link is not a stall; re-armed when carrier returns.
            self.wd.since = 0;
            return None;
        }
        let in_flight = self.c.sent_packets - self.c.completed_packets;
        if in_flight == 0 || self.c.completed_packets != self.wd.seen || self.wd.since == 0 {
            self.wd.seen = self.c.completed_packets;
            self.wd.since = now;
            return None;
        }
        if now.wrapping_sub(self.wd.since) < self.wd.timeout {
            return None;
        }
        Some(self.tx_timeout(now))
    }

    /// Plays the part of `ndo_tx_timeout` (igb: `igb_tx_timeout` →
    /// `igb_reset_task`) and `netdev_tx_reset_queue`: resets the driver
    /// queue, completes what it reports (or, when it cannot reset, every
    /// packet in flight as dropped), resets BQL and wakes the queue.
    #[cold]
    pub fn tx_timeout(&mut self, now: u64) -> TxTimeout {
        let in_flight = self.c.sent_packets - self.c.completed_packets;
        // Rounded: the TSC ↔ ns conversions may land a hair under the timeout.
        let stalled_ms =
            (self.tsc.cycles_to_ns(now.wrapping_sub(self.wd.since)) + 500_000) / 1_000_000;
        self.c.tx_timeouts += 1;
        let (driver_reset, reclaimed, dropped) = match self.txq.reset() {
            Some(done) => {
                let n = u64::from(done.packets).min(in_flight);
                self.c.completed_packets += n;
                self.c.completed_bytes += done.bytes;
                (true, n, 0)
            }
            None => {
                let bytes = self.c.sent_bytes - self.c.completed_bytes;
                self.c.timeout_drops += in_flight;
                self.c.completed_packets += in_flight;
                self.c.completed_bytes += bytes;
                self.wd.forgive.packets += in_flight as u32;
                self.wd.forgive.bytes += bytes;
                (false, 0, in_flight)
            }
        };
        self.reset_bql(now);
        self.wd.seen = self.c.completed_packets;
        self.wd.since = now;
        self.publish();
        TxTimeout {
            port: self.port,
            queue: self.queue,
            port_name: self.port_name.clone(),
            stalled_ms,
            in_flight,
            driver_reset,
            reclaimed,
            dropped,
        }
    }

    /// Plays the part of `netdev_tx_reset_queue`: BQL forgets its history
    /// (`dql_reset`); bytes still in flight (a driver that could not reclaim
    /// everything) are queued again so their completions balance; the queue
    /// is woken.
    fn reset_bql(&mut self, now: u64) {
        self.dql.reset(now);
        let mut left = self.c.sent_bytes.saturating_sub(self.c.completed_bytes);
        while self.bql && left > 0 {
            let chunk = left.min(u64::from(super::super::dql::DQL_MAX_OBJECT)) as u32;
            self.dql.queued(chunk);
            left -= u64::from(chunk);
        }
        if self.state & STACK_XOFF != 0 && (!self.bql || self.dql.avail() >= 0) {
            self.state &= !STACK_XOFF;
            self.c.wakes += 1;
        }
        self.maybe_wake_drv();
    }

    /// Re-arms the watchdog: the next check starts a fresh interval.
    pub(super) fn wd_rearm(&mut self) {
        self.wd.since = 0;
    }

    /// Completions a driver without reset reports for packets the watchdog
    /// already completed as dropped: absorbed, the rest passed on.
    #[cold]
    pub(super) fn absorb_late(&mut self, mut done: Completed) -> Completed {
        let f = &mut self.wd.forgive;
        let p = done.packets.min(f.packets);
        let b = done.bytes.min(f.bytes);
        f.packets -= p;
        f.bytes -= b;
        if f.packets == 0 {
            f.bytes = 0;
        }
        done.packets -= p;
        done.bytes -= b;
        done
    }
}
