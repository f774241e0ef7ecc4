//! How a generator lcore hands packets to a port: straight to the driver's
//! queue (raw mode, like testpmd txonly — the `noqueue` qdisc), counting what
//! the queue completes so the run can end only when everything left the NIC.

use wirespeed::ethdev::TxQueue;
use wirespeed::mbuf::Burst;

/// A transmit path owned by one lcore.
pub trait TxPath: Send {
    /// Offers a burst; returns how many packets were taken (the rest stay in `b`).
    fn send(&mut self, b: &mut Burst) -> usize;
    /// Completions (and, with a qdisc, dequeueing).
    fn poll(&mut self);
    /// True when every packet taken has been reported complete.
    fn drained(&self) -> bool;
}

/// Raw mode: the driver queue itself (`noqueue`).
pub struct RawTx {
    q: Box<dyn TxQueue>,
    sent: u64,
    completed: u64,
}

impl RawTx {
    pub fn new(q: Box<dyn TxQueue>) -> RawTx {
        RawTx {
            q,
            sent: 0,
            completed: 0,
        }
    }
}

impl TxPath for RawTx {
    #[inline]
    fn send(&mut self, b: &mut Burst) -> usize {
        let n = self.q.tx_burst(b);
        self.sent += n as u64;
        n
    }
    #[inline]
    fn poll(&mut self) {
        let c = self.q.clean(512);
        self.completed += c.packets as u64;
    }
    fn drained(&self) -> bool {
        self.completed >= self.sent
    }
}
