//! Per-queue transmit machinery: XPS queue pick, qdisc, BQL (DQL), xmit_more
//! batching, completion → wake — the part of the Linux TX path between
//! `dev_queue_xmit` and the driver.
//!
//! | Linux | here |
//! |---|---|
//! | `netdev_pick_tx` / `__netdev_pick_tx` (`sk_tx_queue` cache) | [`xps::TxQueueCache::pick`] |
//! | `get_xps_queue` + `skb_tx_hash` (`reciprocal_scale`, `tc_to_txq`) | [`xps::TxQueueSet::pick`], [`xps::reciprocal_scale`] |
//! | XPS map (`xps_cpus`), validated | [`xps::XpsMap::build`] |
//! | `__dev_xmit_skb` (bypass, enqueue, noqueue) | [`txq::NetdevQueue::xmit_burst`] |
//! | `__qdisc_run` / `qdisc_restart` / `dequeue_skb` | [`txq::NetdevQueue::run`] |
//! | `sch_direct_xmit` / `dev_hard_start_xmit` / `dev_requeue_skb` | `NetdevQueue::transmit_front` / `requeue_front` (private) |
//! | `pfifo_fast` / `noqueue` | [`qdisc::PfifoFast`] / [`qdisc::NoQueue`] |
//! | `netdev_tx_sent_queue` / `__netdev_tx_sent_queue` | end of `transmit_front` |
//! | `netdev_tx_completed_queue` + driver clean | [`txq::NetdevQueue::complete`] |
//! | `lib/dynamic_queue_limits.c` | [`dql::Dql`] |
//! | `netif_carrier_off` / `netif_carrier_on` → `linkwatch_do_dev` → `dev_deactivate` / `dev_activate` | [`txq::NetdevQueue::carrier_poll`] / [`txq::NetdevQueue::set_carrier`] (in `carrier.rs`) |
//! | `validate_xmit_skb` → `skb_gso_segment` (software GSO) | `NetdevQueue::xmit_gso` (private, `gso.rs`) → [`crate::ethdev::offload::segment_tcp4`] |
//! | `dev_watchdog` / `ndo_tx_timeout` / `netdev_tx_reset_queue` | [`txq::NetdevQueue::watchdog`] / [`txq::NetdevQueue::tx_timeout`] → [`crate::ethdev::TxQueue::reset`] / `reset_bql` (private) |

pub mod dql;
pub mod fifo;
pub mod qdisc;
pub mod txq;
pub mod xps;

pub use dql::{BqlView, Dql, DqlError, DQL_MAX_LIMIT};
pub use qdisc::{
    NoQueue, PfifoFast, Qdisc, QdiscConfig, QdiscError, QdiscImpl, QdiscKind, QdiscStats,
};
pub use txq::{
    BqlConfig, CarrierChange, CarrierPolicy, NetdevError, NetdevQueue, TxTimeout, TxqConfig,
    TxqCounters, TxqShared, TxqSnapshot, XmitOutcome, XoffState, DEFAULT_WATCHDOG_TIMEOUT_MS,
};
pub use xps::{
    flow_hash, reciprocal_scale, PortTxMap, TcMap, TxQueueCache, TxQueueSet, XpsError, XpsMap,
};

#[cfg(test)]
mod tests;
