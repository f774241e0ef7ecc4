//! `ring:NAME`: an in-process pair of ports joined like a cable (DPDK's
//! `net_ring`). The first open of a name is end A, the second end B; what TX
//! queue q of one end sends, RX queue q of the other receives.
//!
//! Each direction and queue is a single-producer/single-consumer ring. A packet
//! counts as completed when the far end has taken it off the ring — so a slow
//! receiver holds bytes "in flight" exactly like a slow NIC, which is what BQL
//! reacts to.

use super::*;
use crate::mbuf::{Burst, Mempool, SpscRing};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

struct PairShared {
    /// (direction: 0 = A→B, 1 = B→A, queue) → ring.
    rings: Mutex<HashMap<(u8, u16), Arc<SpscRing>>>,
}

impl PairShared {
    fn ring(&self, dir: u8, q: u16, cap: usize) -> Arc<SpscRing> {
        self.rings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((dir, q))
            .or_insert_with(|| Arc::new(SpscRing::new(cap)))
            .clone()
    }
}

struct Named {
    pair: Weak<PairShared>,
    ends: u8,
}

static PAIRS: Mutex<Option<HashMap<String, Named>>> = Mutex::new(None);

pub(crate) fn driver() -> DriverInfo {
    DriverInfo {
        name: "ring",
        syntax: "ring:NAME[?drop_every=N&swap_every=M]",
        help: "in-process cable: the first and second open of NAME are its two ends; drop_every/swap_every inject loss and reordering on this end's TX",
        open: |spec| {
            spec.check_params(&["drop_every", "swap_every"])?;
            let name = spec.require_arg("ring:NAME")?;
            let mut p = RingPort::open(&spec.raw, name)?;
            p.driver_mut().faults = Faults {
                drop_every: spec.param_u64("drop_every", 0)?,
                swap_every: spec.param_u64("swap_every", 0)?,
            };
            Ok(Box::new(p))
        },
    }
}

/// Fault injection on a ring end's TX (a lossy, reordering cable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Drop every Nth packet sent (0 = never). Dropped packets count as TX drops.
    pub drop_every: u64,
    /// Swap every Mth packet with the one after it in the same burst (0 = never).
    pub swap_every: u64,
}

/// What one end of a ring pair does differently: its rings, its faults.
pub struct RingDriver {
    faults: Faults,
    swaps: Vec<Arc<StatCounter>>,
    pair_name: String,
    end: u8,
    pair: Arc<PairShared>,
}

/// One end of a ring pair: [`RingDriver`] in the ethdev framework.
pub type RingPort = EthDev<RingDriver>;

impl EthDev<RingDriver> {
    /// Opens end A (first) or B (second) of the pair called `pair_name`.
    pub fn open(spec: &str, pair_name: &str) -> Result<RingPort, EthdevError> {
        let mut g = PAIRS.lock().unwrap_or_else(|e| e.into_inner());
        let map = g.get_or_insert_with(HashMap::new);
        let live = map
            .get(pair_name)
            .and_then(|n| n.pair.upgrade().map(|p| (p, n.ends)));
        let (pair, end) = match live {
            Some((_, ends)) if ends >= 2 => {
                return Err(EthdevError::device(
                    spec,
                    format!("ring '{pair_name}' already has both ends open; use another name"),
                ))
            }
            Some((p, _)) => (p, 1u8),
            None => (
                Arc::new(PairShared {
                    rings: Mutex::new(HashMap::new()),
                }),
                0u8,
            ),
        };
        map.insert(
            pair_name.to_string(),
            Named {
                pair: Arc::downgrade(&pair),
                ends: end + 1,
            },
        );
        Ok(EthDev::with_driver(
            spec,
            RingDriver {
                faults: Faults::default(),
                swaps: Vec::new(),
                pair_name: pair_name.to_string(),
                end,
                pair,
            },
        ))
    }

    /// 0 for end A, 1 for end B.
    pub fn end(&self) -> u8 {
        self.driver().end
    }
}

impl Drop for RingDriver {
    fn drop(&mut self) {
        let mut g = PAIRS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = g.as_mut() {
            if Arc::strong_count(&self.pair) == 1 {
                map.remove(&self.pair_name);
            }
        }
    }
}

impl Driver for RingDriver {
    fn info(&self) -> PortInfo {
        PortInfo::software("ring")
    }
    fn mac(&self) -> MacAddr {
        MacAddr([0x02, 0x52, 0x49, 0x4e, 0x47, self.end + 1])
    }
    fn configure(&mut self, _port: &str, conf: &PortConfig) -> Result<(), EthdevError> {
        self.swaps = (0..conf.nb_tx_queues).map(|_| Arc::default()).collect();
        Ok(())
    }
    fn tx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn TxQueue>, EthdevError> {
        let ring = self.pair.ring(self.end, q.queue, q.ring_size as usize);
        Ok(Box::new(RingTxQueue {
            swaps: self.swaps[q.queue as usize].clone(),
            faults: self.faults,
            seen: 0,
            fault_completed: Completed::default(),
            index: q.queue,
            tx: SpscTx::new(ring),
            stats: q.stats,
        }))
    }
    fn rx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn RxQueue>, EthdevError> {
        Ok(Box::new(RingRxQueue::new(
            q.queue,
            self.pair.ring(1 - self.end, q.queue, q.ring_size as usize),
            q.stats,
        )))
    }
    fn xstats(&self, s: &PortStats, out: &mut Vec<(String, u64)>) {
        out.push(("fault_drops".into(), s.tx.drops));
        out.push((
            "fault_swaps".into(),
            self.swaps.iter().map(|c| c.get()).sum(),
        ));
    }
}

struct RingTxQueue {
    swaps: Arc<StatCounter>,
    faults: Faults,
    /// Packets taken so far (for the fault schedule).
    seen: u64,
    /// Dropped "on the wire": complete at once, like a frame lost on a cable.
    fault_completed: Completed,
    index: u16,
    tx: SpscTx,
    stats: Arc<QueueStats>,
}

/// The producer side of an SPSC ring used as a transmit queue (a ring end's
/// TX, the loopback's TX): what it put on the ring counts as completed once
/// the consumer has taken it, with the length it had.
pub(crate) struct SpscTx {
    ring: Arc<SpscRing>,
    /// Length of the packet in each slot position (for completed bytes).
    lens: Vec<u32>,
    completed_upto: usize,
}

impl SpscTx {
    pub(crate) fn new(ring: Arc<SpscRing>) -> SpscTx {
        SpscTx {
            lens: vec![0; ring.capacity()],
            ring,
            completed_upto: 0,
        }
    }

    /// Moves what fits from the front of `pkts` onto the ring, counting it.
    #[inline]
    pub(crate) fn push(&mut self, pkts: &mut Burst, stats: &QueueStats) -> usize {
        let mask = self.ring.capacity() - 1;
        let lens = &mut self.lens;
        let mut bytes = 0u64;
        let n = self.ring.enqueue(pkts, |pos, m| {
            lens[pos & mask] = m.pkt_len() as u32;
            bytes += m.pkt_len() as u64;
        });
        stats.packets.add(n as u64);
        stats.bytes.add(bytes);
        n
    }

    /// What the consumer has taken since the last call (at most `budget`).
    pub(crate) fn completed(&mut self, budget: usize) -> Completed {
        let consumed = self.ring.consumed();
        let n = consumed.wrapping_sub(self.completed_upto).min(budget);
        let mask = self.ring.capacity() - 1;
        let mut bytes = 0u64;
        for i in 0..n {
            bytes += self.lens[self.completed_upto.wrapping_add(i) & mask] as u64;
        }
        self.completed_upto = self.completed_upto.wrapping_add(n);
        Completed {
            packets: n as u32,
            bytes,
        }
    }

    pub(crate) fn free_slots(&self) -> usize {
        self.ring.capacity() - self.ring.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.ring.capacity()
    }
}

impl TxQueue for RingTxQueue {
    fn index(&self) -> u16 {
        self.index
    }
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        if self.faults != Faults::default() {
            return self.tx_burst_faulty(pkts);
        }
        self.tx.push(pkts, &self.stats)
    }
    fn clean(&mut self, budget: usize) -> Completed {
        let mut extra = std::mem::take(&mut self.fault_completed);
        let c = self.tx.completed(budget);
        extra.packets += c.packets;
        extra.bytes += c.bytes;
        extra
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

impl RingTxQueue {
    /// The fault-injecting path: takes what fits, drops every Nth, swaps every Mth.
    fn tx_burst_faulty(&mut self, pkts: &mut Burst) -> usize {
        let room = self.tx.free_slots();
        let take = room.min(pkts.len());
        let mut out = Burst::new();
        for _ in 0..take {
            let m = pkts.pop_front().expect("take <= len");
            self.seen += 1;
            if self.faults.drop_every > 0 && self.seen.is_multiple_of(self.faults.drop_every) {
                self.stats.drops.add(1);
                self.fault_completed.packets += 1;
                self.fault_completed.bytes += m.pkt_len() as u64;
                continue;
            }
            let _ = out.push(m);
        }
        if self.faults.swap_every > 0 {
            let s = out.as_mut_slice();
            let mut i = 0;
            let base = self.seen - take as u64;
            while i + 1 < s.len() {
                if (base + i as u64 + 1).is_multiple_of(self.faults.swap_every) {
                    s.swap(i, i + 1);
                    self.swaps.add(1);
                    i += 2;
                } else {
                    i += 1;
                }
            }
        }
        self.tx.push(&mut out, &self.stats);
        debug_assert!(out.is_empty());
        take
    }
}

/// The consumer side of an SPSC ring used as a receive queue (the far end
/// of a ring pair, the loopback's RX).
pub(crate) struct RingRxQueue {
    index: u16,
    ring: Arc<SpscRing>,
    stats: Arc<QueueStats>,
}

impl RingRxQueue {
    pub(crate) fn new(index: u16, ring: Arc<SpscRing>, stats: Arc<QueueStats>) -> RingRxQueue {
        RingRxQueue { index, ring, stats }
    }
}

impl RxQueue for RingRxQueue {
    fn index(&self) -> u16 {
        self.index
    }
    fn rx_burst(&mut self, _pool: &mut Mempool, out: &mut Burst, max: usize) -> usize {
        let before = out.len();
        let n = self.ring.dequeue(out, max);
        let mut bytes = 0u64;
        for m in &mut out.as_mut_slice()[before..] {
            bytes += m.pkt_len() as u64;
            m.set_rx_port_queue(0, self.index);
        }
        self.stats.packets.add(n as u64);
        self.stats.bytes.add(bytes);
        n
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
    fn what_one_end_sends_the_other_receives() {
        set_page_mode(PageMode::Small);
        let reg = Registry::with_builtins();
        let mut a = reg.open("ring:t1").unwrap();
        let mut b = reg.open("ring:t1").unwrap();
        assert!(reg.open("ring:t1").is_err(), "a third end");
        let conf = PortConfig {
            tx_ring_size: 8,
            rx_ring_size: 8,
            ..Default::default()
        };
        a.configure(&conf).unwrap();
        b.configure(&conf).unwrap();
        let mut atx = a.tx_queue(0).unwrap();
        let mut brx = b.rx_queue(0).unwrap();
        assert!(a.tx_queue(0).is_err(), "queue handed out twice");
        let mut pool = Mempool::new(&PoolConfig {
            size: 32,
            ..Default::default()
        })
        .unwrap();
        let mut burst = Burst::new();
        for i in 0..12u8 {
            let mut m = pool.alloc().unwrap();
            m.extend_from_slice(&[i; 100]).unwrap();
            burst.push(m).unwrap();
        }
        // Ring of 8: only 8 fit; the rest stay with the caller.
        assert_eq!(atx.tx_burst(&mut burst), 8);
        assert_eq!(burst.len(), 4);
        assert_eq!(atx.clean(64), Completed::default(), "nothing consumed yet");
        let mut got = Burst::new();
        assert_eq!(brx.rx_burst(&mut pool, &mut got, 3), 3);
        assert_eq!(
            atx.clean(64),
            Completed {
                packets: 3,
                bytes: 300
            }
        );
        assert_eq!(got.as_slice()[2].data()[0], 2);
        assert_eq!(atx.tx_burst(&mut burst), 3);
        assert_eq!(brx.rx_burst(&mut pool, &mut got, 64), 8);
        assert_eq!(got.as_slice()[10].data()[0], 10);
        assert_eq!(atx.clean(64).packets, 8);
        drop(got);
        drop(burst);
        assert_eq!(pool.stats().in_use, 0);
        assert_eq!(a.stats().tx.packets, 11);
        assert_eq!(b.stats().rx.packets, 11);
    }

    #[test]
    fn injected_faults_drop_and_swap_exactly() {
        set_page_mode(PageMode::Small);
        let reg = Registry::with_builtins();
        let mut a = reg.open("ring:faulty?drop_every=5&swap_every=3").unwrap();
        let mut b = reg.open("ring:faulty").unwrap();
        a.configure(&PortConfig::default()).unwrap();
        b.configure(&PortConfig::default()).unwrap();
        let mut tx = a.tx_queue(0).unwrap();
        let mut rx = b.rx_queue(0).unwrap();
        let mut pool = Mempool::new(&PoolConfig {
            size: 64,
            ..Default::default()
        })
        .unwrap();
        let mut burst = Burst::new();
        for i in 1..=10u8 {
            let mut m = pool.alloc().unwrap();
            m.extend_from_slice(&[i]).unwrap();
            burst.push(m).unwrap();
        }
        assert_eq!(tx.tx_burst(&mut burst), 10);
        let mut got = Burst::new();
        rx.rx_burst(&mut pool, &mut got, 64);
        let order: Vec<u8> = got.iter().map(|m| m.data()[0]).collect();
        // 5 and 10 dropped; the 3rd and 6th survivors swapped with their successors.
        assert_eq!(order, vec![1, 2, 4, 3, 6, 8, 7, 9]);
        assert_eq!(a.stats().tx.drops, 2);
        let x: std::collections::HashMap<String, u64> = a.xstats().into_iter().collect();
        assert_eq!(x["fault_swaps"], 2);
        assert_eq!(x["fault_drops"], 2);
        assert_eq!(tx.clean(64).packets, 10, "dropped packets complete too");
        drop(got);
        assert_eq!(pool.stats().in_use, 0);
    }

    #[test]
    fn ring_drop_frees_packets_in_flight() {
        set_page_mode(PageMode::Small);
        let mut pool = Mempool::new(&PoolConfig {
            size: 8,
            ..Default::default()
        })
        .unwrap();
        let r = SpscRing::new(4);
        let mut b = Burst::new();
        pool.alloc_bulk(&mut b, 3);
        assert_eq!(r.enqueue(&mut b, |_, _| {}), 3);
        assert_eq!(pool.stats().in_use, 3);
        drop(r);
        assert_eq!(pool.stats().in_use, 0);
    }
}
