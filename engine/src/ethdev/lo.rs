//! `lo`: the loopback device (Linux drivers/net/loopback.c). What TX queue q
//! sends, RX queue q of the same port receives: `loopback_xmit` hands each
//! frame to `netif_rx` on the same device. The address is all zeros and the
//! device is `IFF_NOARP`: a stack on it resolves every neighbour to that
//! address without ARP (`arp_constructor` gives such entries `NUD_NOARP`).
//! A frame counts as completed once its own RX queue has taken it, so a
//! receiver that does not poll holds bytes in flight as a slow NIC would.

use super::ring::{RingRxQueue, SpscTx};
use super::*;
use crate::mbuf::{Burst, SpscRing};
use std::sync::Arc;

/// Linux's loopback MTU (`LOOPBACK_MTU` = 64 KiB).
const LOOPBACK_MTU: u32 = 65536;

pub(crate) fn driver() -> DriverInfo {
    DriverInfo {
        name: "lo",
        syntax: "lo",
        help: "the loopback device: what a TX queue sends, the same port's RX queue receives (Linux loopback_xmit); no ARP",
        open: |spec| {
            spec.check_params(&[])?;
            if spec.arg.is_some() {
                return Err(EthdevError::BadSpec {
                    spec: spec.raw.clone(),
                    why: "driver 'lo' takes no argument (for the kernel's lo, use af_packet:lo)"
                        .into(),
                });
            }
            Ok(Box::new(LoopbackPort::new(&spec.raw)))
        },
    }
}

/// The loopback port: the framework's bookkeeping around [`LoDriver`].
pub type LoopbackPort = EthDev<LoDriver>;

impl LoopbackPort {
    pub fn new(name: &str) -> LoopbackPort {
        EthDev::with_driver(name, LoDriver { rings: Vec::new() })
    }
}

/// What the loopback adds to the framework: one ring per queue pair.
pub struct LoDriver {
    rings: Vec<Arc<SpscRing>>,
}

impl Driver for LoDriver {
    fn info(&self) -> PortInfo {
        let mut i = PortInfo::software("lo");
        i.max_frame = LOOPBACK_MTU + 14 + 4;
        i
    }

    fn mac(&self) -> MacAddr {
        MacAddr::ZERO
    }

    fn configure(&mut self, port: &str, conf: &PortConfig) -> Result<(), EthdevError> {
        if conf.nb_rx_queues != 0 && conf.nb_rx_queues != conf.nb_tx_queues {
            return Err(EthdevError::Config {
                port: port.to_string(),
                key: "nb_rx_queues".into(),
                why: format!(
                    "{} RX queues for {} TX queues: the loopback's queue q receives what TX queue q sends; give as many of each (or no RX queue)",
                    conf.nb_rx_queues, conf.nb_tx_queues
                ),
            });
        }
        let cap = (conf.tx_ring_size as usize).max(conf.rx_ring_size as usize);
        self.rings = (0..conf.nb_tx_queues)
            .map(|_| Arc::new(SpscRing::new(cap.next_power_of_two())))
            .collect();
        Ok(())
    }

    fn tx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn TxQueue>, EthdevError> {
        Ok(Box::new(LoTxQueue {
            index: q.queue,
            tx: SpscTx::new(self.rings[q.queue as usize].clone()),
            stats: q.stats,
            receiver: q.conf.nb_rx_queues > 0,
            pending: Completed::default(),
        }))
    }

    fn rx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn RxQueue>, EthdevError> {
        Ok(Box::new(RingRxQueue::new(
            q.queue,
            self.rings[q.queue as usize].clone(),
            q.stats,
        )))
    }
}

/// TX side of a loopback queue.
struct LoTxQueue {
    index: u16,
    tx: SpscTx,
    stats: Arc<QueueStats>,
    /// False when the port has no RX queue: nothing would ever take the
    /// frames, so they are dropped at once (counted), as a loopback whose
    /// `netif_rx` backlog is full drops them.
    receiver: bool,
    pending: Completed,
}

impl TxQueue for LoTxQueue {
    fn index(&self) -> u16 {
        self.index
    }

    /// Plays the part of `loopback_xmit`: the frame goes to the same
    /// device's receive side.
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        if !self.receiver {
            let n = pkts.len();
            let bytes: u64 = pkts.iter().map(|m| m.pkt_len() as u64).sum();
            pkts.clear();
            self.stats.drops.add(n as u64);
            self.pending.packets += n as u32;
            self.pending.bytes += bytes;
            return n;
        }
        self.tx.push(pkts, &self.stats)
    }

    fn clean(&mut self, budget: usize) -> Completed {
        let mut done = std::mem::take(&mut self.pending);
        let c = self.tx.completed(budget);
        done.packets += c.packets;
        done.bytes += c.bytes;
        done
    }

    fn free_slots(&self) -> usize {
        self.tx.free_slots()
    }

    fn ring_size(&self) -> usize {
        self.tx.capacity()
    }

    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eal::dma::{set_page_mode, PageMode};
    use crate::mbuf::PoolConfig;

    #[test]
    fn what_a_queue_sends_the_same_port_receives_and_completes() {
        set_page_mode(PageMode::Small);
        let mut pool = Mempool::new(&PoolConfig {
            name: "lo-t".into(),
            size: 256,
            ..Default::default()
        })
        .unwrap();
        let mut p = Registry::with_builtins().open("lo").unwrap();
        p.configure(&PortConfig {
            nb_tx_queues: 1,
            nb_rx_queues: 1,
            tx_ring_size: 64,
            rx_ring_size: 64,
            ..Default::default()
        })
        .unwrap();
        p.start().unwrap();
        let mut tx = p.tx_queue(0).unwrap();
        let mut rx = p.rx_queue(0).unwrap();
        let mut b = Burst::new();
        for i in 0..10u8 {
            let mut m = pool.alloc().unwrap();
            m.extend_from_slice(&[i; 60]).unwrap();
            b.push(m).unwrap();
        }
        assert_eq!(tx.tx_burst(&mut b), 10);
        assert_eq!(tx.clean(64), Completed::default(), "nothing taken yet");
        let mut got = Burst::new();
        assert_eq!(rx.rx_burst(&mut pool, &mut got, 32), 10);
        let tags: Vec<u8> = got.iter().map(|m| m.data()[0]).collect();
        assert_eq!(tags, (0..10).collect::<Vec<u8>>());
        let c = tx.clean(64);
        assert_eq!((c.packets, c.bytes), (10, 600));
        assert_eq!(p.mac(), MacAddr::ZERO);
        drop(got);
        assert_eq!(pool.stats().in_use, 0);
        // Unequal queue counts are refused, naming the key.
        p.stop().unwrap();
        let e = p
            .configure(&PortConfig {
                nb_tx_queues: 2,
                nb_rx_queues: 1,
                tx_ring_size: 64,
                rx_ring_size: 64,
                ..Default::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains("nb_rx_queues"), "{e}");
    }
}
