//! Carrier off/on for one queue: Linux's `netif_carrier_off` /
//! `netif_carrier_on` (`net/sched/sch_generic.c`) and what the link watch
//! does about them (`net/core/link_watch.c`: `linkwatch_do_dev` calls
//! `dev_deactivate` when the carrier is gone and `dev_activate` when it is
//! back).
//!
//! `dev_deactivate` swaps each queue's qdisc for `noop_qdisc` (whose
//! enqueue drops every packet) and resets the old one, dropping its
//! backlog; `dev_watchdog` skips a device without carrier. Here the runtime
//! polls the driver's carrier ([`crate::ethdev::TxQueue::carrier`]) with
//! the watchdog, every few hundred polls, and
//!
//! * carrier lost: the queue is stopped (`CARRIER_XOFF`); with
//!   [`CarrierPolicy::Drop`] (Linux's behaviour) the backlog is purged and
//!   every packet offered until the carrier returns is dropped, each
//!   counted once in `carrier_drops`; with [`CarrierPolicy::Hold`] the
//!   backlog stays and the qdisc keeps taking packets up to its limit
//!   (overflow in `qdisc_drops`; `noqueue` reports no room, so a sender
//!   waits);
//! * carrier back: the queue is woken, the watchdog re-armed (time without
//!   link is not a stall), and the qdisc runs at the next poll.
//!
//! Packets the driver took before the carrier went are the driver's (they
//! wait on its ring, as on a NIC whose MAC lost link) and complete when it
//! sends them.

use super::*;

/// What a queue does with packets while its link has no carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CarrierPolicy {
    /// `dev_deactivate`: backlog purged, every packet offered dropped and
    /// counted in `carrier_drops`.
    #[default]
    Drop,
    /// The queue stays stopped with its backlog; it drains when carrier returns.
    Hold,
}

/// A carrier change seen by [`NetdevQueue::carrier_poll`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CarrierChange {
    pub port: u16,
    pub queue: u16,
    pub port_name: String,
    /// The carrier now.
    pub up: bool,
    /// Backlog packets dropped at the loss (policy `drop`).
    pub purged: u64,
}

impl std::fmt::Display for CarrierChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.up {
            write!(
                f,
                "{} queue {}: carrier on: queue woken, traffic resumes",
                self.port_name, self.queue
            )
        } else {
            write!(
                f,
                "{} queue {}: carrier off: queue stopped ({} backlog packets dropped)",
                self.port_name, self.queue, self.purged
            )
        }
    }
}

impl NetdevQueue {
    /// Plays the part of the link watch for this queue (`linkwatch_do_dev`
    /// → `dev_deactivate` / `dev_activate`): reads the driver's carrier and,
    /// when it changed, stops or wakes the queue. Cheap when nothing changed:
    /// one call and a compare. Called with the watchdog.
    pub fn carrier_poll(&mut self) -> Option<CarrierChange> {
        let up = self.txq.carrier();
        let was_up = self.state & CARRIER_XOFF == 0;
        if up == was_up {
            return None;
        }
        Some(self.set_carrier(up))
    }

    /// Plays the part of `netif_carrier_off` / `netif_carrier_on` followed
    /// by `dev_deactivate` / `dev_activate` on this queue.
    #[cold]
    pub fn set_carrier(&mut self, up: bool) -> CarrierChange {
        let mut purged = 0;
        if up {
            self.state &= !CARRIER_XOFF;
            // Re-armed at its next check.
            self.wd_rearm();
            self.maybe_wake_drv();
        } else {
            self.state |= CARRIER_XOFF;
            if self.carrier_policy == CarrierPolicy::Drop {
                // qdisc_reset of the old qdisc: its backlog is dropped.
                while let Some(m) = self.requeued.pop_front().or_else(|| self.qdisc.dequeue()) {
                    drop(m);
                    purged += 1;
                }
                self.c.carrier_drops += purged;
                self.c.carrier_purged += purged;
                self.c.backlog_packets = 0;
                self.c.backlog_bytes = 0;
            }
        }
        self.c.carrier_changes += 1;
        self.publish();
        CarrierChange {
            port: self.port,
            queue: self.queue,
            port_name: self.port_name.clone(),
            up,
            purged,
        }
    }

    /// True while the link has carrier.
    pub fn has_carrier(&self) -> bool {
        self.state & CARRIER_XOFF == 0
    }

    /// `noop_enqueue` for a whole batch: every packet dropped and counted.
    #[cold]
    pub(super) fn carrier_drop(&mut self, pkts: &mut Burst) -> XmitOutcome {
        let n = pkts.len();
        let bytes = pkts.iter().map(|m| m.pkt_len() as u64).sum::<u64>();
        pkts.clear();
        self.c.carrier_drops += n as u64;
        XmitOutcome {
            dropped: n as u32,
            dropped_bytes: bytes,
            carrier_dropped: n as u32,
            ..Default::default()
        }
    }
}
