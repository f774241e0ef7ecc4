//! Counters written by one lcore and read by anyone: each is an `AtomicU64`
//! advanced with a plain load + store (single writer), never a locked RMW.

use std::sync::atomic::{AtomicU64, Ordering};

/// A single-writer counter.
#[derive(Debug, Default)]
pub struct StatCounter(AtomicU64);

impl StatCounter {
    pub const fn new() -> StatCounter {
        StatCounter(AtomicU64::new(0))
    }
    /// Adds `n`. Only the owning thread may call this.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
    #[inline(always)]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    /// Takes `n` back: for a correction by the owning thread (a queue reset
    /// moves packets it had counted as sent to its drops).
    #[inline]
    pub fn sub(&self, n: u64) {
        self.add(n.wrapping_neg());
    }
    /// Overwrites (for counters that accumulate a clear-on-read register).
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
}

/// One queue's counters.
#[derive(Debug, Default)]
pub struct QueueStats {
    pub packets: StatCounter,
    pub bytes: StatCounter,
    pub errors: StatCounter,
    pub drops: StatCounter,
}

impl QueueStats {
    pub fn snapshot(&self) -> QueueCounters {
        QueueCounters {
            packets: self.packets.get(),
            bytes: self.bytes.get(),
            errors: self.errors.get(),
            drops: self.drops.get(),
        }
    }
}

/// A snapshot of one queue's (or a port's summed) counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueCounters {
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
    pub drops: u64,
}

impl std::ops::AddAssign for QueueCounters {
    fn add_assign(&mut self, o: QueueCounters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.errors += o.errors;
        self.drops += o.drops;
    }
}

/// Port totals and per-queue counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PortStats {
    pub tx: QueueCounters,
    pub rx: QueueCounters,
    pub tx_queues: Vec<QueueCounters>,
    pub rx_queues: Vec<QueueCounters>,
}

impl PortStats {
    /// The software counters as named extended statistics (like `ethtool -S`):
    /// totals, then per queue. Drivers append their hardware counters.
    pub fn xstats(&self) -> Vec<(String, u64)> {
        let mut v = vec![
            ("tx_packets".to_string(), self.tx.packets),
            ("tx_bytes".to_string(), self.tx.bytes),
            ("tx_errors".to_string(), self.tx.errors),
            ("tx_dropped".to_string(), self.tx.drops),
            ("rx_packets".to_string(), self.rx.packets),
            ("rx_bytes".to_string(), self.rx.bytes),
            ("rx_errors".to_string(), self.rx.errors),
            ("rx_dropped".to_string(), self.rx.drops),
        ];
        for (i, q) in self.tx_queues.iter().enumerate() {
            v.push((format!("tx_q{i}_packets"), q.packets));
            v.push((format!("tx_q{i}_bytes"), q.bytes));
            v.push((format!("tx_q{i}_dropped"), q.drops));
        }
        for (i, q) in self.rx_queues.iter().enumerate() {
            v.push((format!("rx_q{i}_packets"), q.packets));
            v.push((format!("rx_q{i}_bytes"), q.bytes));
        }
        v
    }

    /// Sums queue counters from shared handles.
    pub fn from_queues(
        tx: &[std::sync::Arc<QueueStats>],
        rx: &[std::sync::Arc<QueueStats>],
    ) -> PortStats {
        let mut s = PortStats::default();
        for q in tx {
            let c = q.snapshot();
            s.tx += c;
            s.tx_queues.push(c);
        }
        for q in rx {
            let c = q.snapshot();
            s.rx += c;
            s.rx_queues.push(c);
        }
        s
    }
}
