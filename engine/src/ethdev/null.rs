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

/// The null port.
pub struct NullPort {
    name: String,
    conf: PortConfig,
    tx: Vec<Arc<QueueStats>>,
    rx: Vec<Arc<QueueStats>>,
    txs: QueueSlots,
    rxs: QueueSlots,
    started: bool,
}

impl NullPort {
    pub fn new(name: &str) -> NullPort {
        NullPort {
            name: name.to_string(),
            conf: PortConfig::default(),
            tx: Vec::new(),
            rx: Vec::new(),
            txs: QueueSlots::new(0),
            rxs: QueueSlots::new(0),
            started: false,
        }
    }
}

impl Port for NullPort {
    fn name(&self) -> &str {
        &self.name
    }
    fn info(&self) -> PortInfo {
        let mut i = PortInfo::software("null");
        // A sink can "do" any offload: nothing checks the result.
        i.tx_offload_capa = crate::mbuf::ol::TX_OFFLOAD_MASK;
        i
    }
    fn configure(&mut self, conf: &PortConfig) -> Result<(), EthdevError> {
        conf.validate(&self.name, &self.info())?;
        self.conf = conf.clone();
        self.tx = (0..conf.nb_tx_queues).map(|_| Arc::default()).collect();
        self.rx = (0..conf.nb_rx_queues).map(|_| Arc::default()).collect();
        self.txs = QueueSlots::new(conf.nb_tx_queues);
        self.rxs = QueueSlots::new(conf.nb_rx_queues);
        Ok(())
    }
    fn tx_queue(&mut self, q: u16) -> Result<Box<dyn TxQueue>, EthdevError> {
        self.txs.take(&self.name, "tx queue", q)?;
        Ok(Box::new(NullTxQueue {
            index: q,
            stats: self.tx[q as usize].clone(),
            ring: self.conf.tx_ring_size as usize,
            pending: Completed::default(),
        }))
    }
    fn rx_queue(&mut self, q: u16) -> Result<Box<dyn RxQueue>, EthdevError> {
        self.rxs.take(&self.name, "rx queue", q)?;
        Ok(Box::new(NullRxQueue {
            index: q,
            stats: self.rx[q as usize].clone(),
        }))
    }
    fn start(&mut self) -> Result<(), EthdevError> {
        self.started = true;
        Ok(())
    }
    fn stop(&mut self) -> Result<(), EthdevError> {
        self.started = false;
        Ok(())
    }
    fn link(&self) -> LinkStatus {
        LinkStatus {
            up: self.started,
            speed_mbps: 0,
            full_duplex: true,
        }
    }
    fn mac(&self) -> MacAddr {
        MacAddr([0x02, 0, 0, 0, 0, 0x01])
    }
    fn stats(&self) -> PortStats {
        PortStats::from_queues(&self.tx, &self.rx)
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
