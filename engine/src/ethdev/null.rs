//! `null`: a sink port (DPDK's `net_null`). TX accepts everything and frees it
//! at once; completions are reported on the next `clean`. RX receives nothing.

use super::*;
use crate::mbuf::{Burst, Mempool};
use std::sync::Arc;

pub(crate) fn driver() -> DriverInfo {
    DriverInfo {
        name: "null",
        syntax: "null",
        help: "sink: transmits into nothing, receives nothing (DPDK net_null)",
        open: |spec| {
            spec.check_params(&[])?;
            if spec.arg.is_some() {
                return Err(EthdevError::BadSpec {
                    spec: spec.raw.clone(),
                    why: "driver 'null' takes no argument".into(),
                });
            }
            Ok(Box::new(NullPort::new(&spec.raw)))
        },
    }
}

/// What the null driver does differently: nothing to set up.
#[derive(Debug, Default)]
pub struct NullDriver;

/// The null port: [`NullDriver`] in the ethdev framework.
pub type NullPort = EthDev<NullDriver>;

impl EthDev<NullDriver> {
    pub fn new(name: &str) -> NullPort {
        EthDev::with_driver(name, NullDriver)
    }
}

impl Driver for NullDriver {
    fn info(&self) -> PortInfo {
        let mut i = PortInfo::software("null");
        // A sink can "do" any offload: nothing checks the result.
        i.tx_offload_capa = crate::mbuf::ol::TX_OFFLOAD_MASK;
        i
    }
    fn mac(&self) -> MacAddr {
        MacAddr([0x02, 0, 0, 0, 0, 0x01])
    }
    fn tx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn TxQueue>, EthdevError> {
        Ok(Box::new(NullTxQueue {
            index: q.queue,
            stats: q.stats,
            ring: q.ring_size as usize,
            pending: Completed::default(),
        }))
    }
    fn rx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn RxQueue>, EthdevError> {
        Ok(Box::new(NullRxQueue {
            index: q.queue,
            stats: q.stats,
        }))
    }
}

/// TX queue of the null port.
pub struct NullTxQueue {
    index: u16,
    stats: Arc<QueueStats>,
    ring: usize,
    pending: Completed,
}

impl TxQueue for NullTxQueue {
    fn index(&self) -> u16 {
        self.index
    }
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        let n = pkts.len();
        let mut bytes = 0u64;
        for m in pkts.as_slice() {
            bytes += m.pkt_len() as u64;
        }
        pkts.clear();
        self.pending.packets += n as u32;
        self.pending.bytes += bytes;
        self.stats.packets.add(n as u64);
        self.stats.bytes.add(bytes);
        n
    }
    fn clean(&mut self, _budget: usize) -> Completed {
        std::mem::take(&mut self.pending)
    }
    fn free_slots(&self) -> usize {
        self.ring
    }
    fn ring_size(&self) -> usize {
        self.ring
    }
    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }
}

struct NullRxQueue {
    index: u16,
    stats: Arc<QueueStats>,
}

impl RxQueue for NullRxQueue {
    fn index(&self) -> u16 {
        self.index
    }
    fn rx_burst(&mut self, _pool: &mut Mempool, _out: &mut Burst, _max: usize) -> usize {
        0
    }
    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }
}
