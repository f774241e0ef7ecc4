//! Transmit queue selection: a static XPS map (lcore → TX queues, per port),
//! the flow-hash pick, and the per-flow queue cache.
//!
//! Linux picks a TX queue per packet in `netdev_pick_tx` → `__netdev_pick_tx`:
//! the socket's cached queue (`sk_tx_queue_get`) if still valid, else the XPS
//! map of the sending CPU (`get_xps_queue`), else a hash of the flow scaled to
//! the queue count (`skb_tx_hash`), then remembered on the socket
//! (`sk_tx_queue_set`). Here the XPS map is static and validated at start:
//! every queue has exactly one owning lcore, so a queue is only ever touched by
//! its owner and needs no lock. An lcore owning several queues of a port
//! spreads flows over them by hash, and each flow (socket, generator stream)
//! caches its queue so its packets never reorder.

use serde::Serialize;

/// Errors in an XPS map; each names the port, the lcore and/or queue.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XpsError {
    #[error("port {port}: xps: lcore {lcore} lists tx queue {queue}, but the port has {nb_queues} tx queues (0..{nb_queues})")]
    NoSuchQueue {
        port: String,
        lcore: usize,
        queue: u16,
        nb_queues: u16,
    },
    #[error("port {port}: xps: lcore {lcore} does not exist ({nb_lcores} lcores are running); list lcores 0..{nb_lcores}")]
    NoSuchLcore {
        port: String,
        lcore: usize,
        nb_lcores: usize,
    },
    #[error("port {port}: xps: tx queue {queue} has no owning lcore; give it to exactly one lcore or configure fewer tx queues")]
    QueueUnowned { port: String, queue: u16 },
    #[error("port {port}: xps: tx queue {queue} is owned by both lcore {first} and lcore {second}; each queue needs exactly one owner")]
    QueueShared {
        port: String,
        queue: u16,
        first: usize,
        second: usize,
    },
    #[error("port {port}: xps: lcore {lcore} sends on this port but owns none of its tx queues; give it a queue or remove it from the port's senders")]
    LcoreWithoutQueue { port: String, lcore: usize },
    #[error("port {port}: xps: lcore {lcore}: {why}")]
    BadTc {
        port: String,
        lcore: usize,
        why: String,
    },
}

/// The TX layout of one port, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortTxMap {
    /// Port name (for error messages).
    pub port: String,
    /// TX queues configured on the port.
    pub nb_queues: u16,
    /// Explicit map: entry `l` lists the queues lcore `l` owns. `None`: queue
    /// `q` is owned by lcore `q % nb_lcores` (so lcore i owns queue i, and
    /// i + nb_lcores, …).
    pub lcore_queues: Option<Vec<Vec<u16>>>,
    /// Lcores that transmit on this port; `None` = all of them.
    pub senders: Option<Vec<usize>>,
}

#[derive(Debug, Clone)]
struct PortXps {
    /// queue → owning lcore.
    owner: Vec<usize>,
    /// lcore → owned queues (ascending unless given explicitly).
    by_lcore: Vec<Vec<u16>>,
}

/// The validated static XPS map of every port.
#[derive(Debug, Clone)]
pub struct XpsMap {
    nb_lcores: usize,
    ports: Vec<PortXps>,
}

impl XpsMap {
    /// Builds and validates the map: every queue exactly one owner, every
    /// sending lcore at least one queue on each port it sends to.
    pub fn build(nb_lcores: usize, ports: &[PortTxMap]) -> Result<XpsMap, XpsError> {
        let mut out = Vec::with_capacity(ports.len());
        for p in ports {
            let nq = p.nb_queues as usize;
            let mut owner: Vec<Option<usize>> = vec![None; nq];
            let mut by_lcore: Vec<Vec<u16>> = vec![Vec::new(); nb_lcores];
            match &p.lcore_queues {
                None => {
                    for q in 0..nq {
                        if nb_lcores > 0 {
                            owner[q] = Some(q % nb_lcores);
                            by_lcore[q % nb_lcores].push(q as u16);
                        }
                    }
                }
                Some(map) => {
                    for (l, qs) in map.iter().enumerate() {
                        if l >= nb_lcores && !qs.is_empty() {
                            return Err(XpsError::NoSuchLcore {
                                port: p.port.clone(),
                                lcore: l,
                                nb_lcores,
                            });
                        }
                        for &q in qs {
                            let slot =
                                owner
                                    .get_mut(q as usize)
                                    .ok_or_else(|| XpsError::NoSuchQueue {
                                        port: p.port.clone(),
                                        lcore: l,
                                        queue: q,
                                        nb_queues: p.nb_queues,
                                    })?;
                            if let Some(first) = *slot {
                                return Err(XpsError::QueueShared {
                                    port: p.port.clone(),
                                    queue: q,
                                    first,
                                    second: l,
                                });
                            }
                            *slot = Some(l);
                            by_lcore[l].push(q);
                        }
                    }
                }
            }
            if let Some(q) = owner.iter().position(|o| o.is_none()) {
                return Err(XpsError::QueueUnowned {
                    port: p.port.clone(),
                    queue: q as u16,
                });
            }
            let senders: Vec<usize> = match &p.senders {
                Some(s) => s.clone(),
                None => (0..nb_lcores).collect(),
            };
            for l in senders {
                if l >= nb_lcores {
                    return Err(XpsError::NoSuchLcore {
                        port: p.port.clone(),
                        lcore: l,
                        nb_lcores,
                    });
                }
                if by_lcore[l].is_empty() {
                    return Err(XpsError::LcoreWithoutQueue {
                        port: p.port.clone(),
                        lcore: l,
                    });
                }
            }
            out.push(PortXps {
                owner: owner.into_iter().map(|o| o.unwrap_or(0)).collect(),
                by_lcore,
            });
        }
        Ok(XpsMap {
            nb_lcores,
            ports: out,
        })
    }

    pub fn nb_lcores(&self) -> usize {
        self.nb_lcores
    }

    pub fn nb_ports(&self) -> usize {
        self.ports.len()
    }

    /// The queues lcore `lcore` owns on port `port` (empty when none).
    pub fn queues_of(&self, port: usize, lcore: usize) -> &[u16] {
        self.ports
            .get(port)
            .and_then(|p| p.by_lcore.get(lcore))
            .map_or(&[], |v| v.as_slice())
    }

    /// The lcore owning queue `queue` of port `port`.
    pub fn owner_of(&self, port: usize, queue: u16) -> Option<usize> {
        self.ports.get(port)?.owner.get(queue as usize).copied()
    }

    /// The pick tables of one lcore (one [`TxQueueSet`] per port).
    pub fn lcore_view(&self, lcore: usize) -> Vec<TxQueueSet> {
        (0..self.ports.len())
            .map(|p| TxQueueSet::new(self.queues_of(p, lcore).to_vec()))
            .collect()
    }
}

/// Plays the part of `reciprocal_scale`: maps a 32-bit hash onto `0..n` with
/// a multiply and a shift (no division), as `skb_tx_hash` does.
#[inline(always)]
pub fn reciprocal_scale(val: u32, n: u32) -> u32 {
    ((val as u64 * n as u64) >> 32) as u32
}

/// Priority → traffic class → queue range (`num_tc`, `prio_tc_map`,
/// `tc_to_txq` of a `net_device`), over an lcore's own queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcMap {
    pub num_tc: u8,
    /// `skb->priority & TC_PRIO_MAX` → traffic class.
    pub prio_tc_map: [u8; 16],
    /// Traffic class → (offset, count) into the lcore's queue list.
    pub tc_to_txq: Vec<(u16, u16)>,
}

/// The queues one lcore owns on one port, and how it picks among them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TxQueueSet {
    /// Port queue ids, by local index.
    queues: Vec<u16>,
    tc: Option<TcMap>,
}

impl TxQueueSet {
    pub fn new(queues: Vec<u16>) -> TxQueueSet {
        TxQueueSet { queues, tc: None }
    }

    /// Port queue ids owned, by local index.
    pub fn queues(&self) -> &[u16] {
        &self.queues
    }

    pub fn len(&self) -> usize {
        self.queues.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Installs a traffic-class map (hardware traffic classes, `mqprio`):
    /// each class gets a contiguous range of this lcore's queues.
    pub fn set_tc(&mut self, port: &str, lcore: usize, tc: TcMap) -> Result<(), XpsError> {
        let bad = |why: String| XpsError::BadTc {
            port: port.to_string(),
            lcore,
            why,
        };
        if tc.num_tc == 0 || tc.num_tc as usize > 16 || tc.tc_to_txq.len() != tc.num_tc as usize {
            return Err(bad(format!(
                "num_tc {} needs 1..=16 classes and one (offset, count) per class ({} given)",
                tc.num_tc,
                tc.tc_to_txq.len()
            )));
        }
        for (c, &(off, cnt)) in tc.tc_to_txq.iter().enumerate() {
            if cnt == 0 || off as usize + cnt as usize > self.queues.len() {
                return Err(bad(format!(
                    "class {c} maps to queues {off}+{cnt}, but this lcore owns {} queues",
                    self.queues.len()
                )));
            }
        }
        if let Some(p) = tc.prio_tc_map.iter().position(|&c| c >= tc.num_tc) {
            return Err(bad(format!(
                "priority {p} maps to class {} (only {} classes)",
                tc.prio_tc_map[p], tc.num_tc
            )));
        }
        self.tc = Some(tc);
        Ok(())
    }

    /// Plays the part of `get_xps_queue` + `skb_tx_hash`: the local index of
    /// the queue for a flow hash (and priority, when traffic classes are set):
    /// `offset + reciprocal_scale(hash, count)`.
    #[inline]
    pub fn pick(&self, hash: u32, priority: u8) -> usize {
        let (off, cnt) = match &self.tc {
            None => (0u32, self.queues.len() as u32),
            Some(tc) => {
                let c = tc.prio_tc_map[(priority & 15) as usize] as usize;
                let (o, n) = tc.tc_to_txq[c];
                (o as u32, n as u32)
            }
        };
        (off + reciprocal_scale(hash, cnt)) as usize
    }
}

/// The per-flow queue cache (Linux's `sk_tx_queue_mapping`): a flow keeps the
/// queue it was first given, so its packets never reorder across queues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxQueueCache {
    local: Option<u16>,
}

impl TxQueueCache {
    pub const fn new() -> TxQueueCache {
        TxQueueCache { local: None }
    }

    /// Plays the part of `__netdev_pick_tx`: the cached queue while it is
    /// valid for `set`, otherwise a fresh pick that is then cached
    /// (`sk_tx_queue_set`). Returns the local index into `set`.
    #[inline]
    pub fn pick(&mut self, set: &TxQueueSet, hash: u32, priority: u8) -> usize {
        if let Some(q) = self.local {
            if (q as usize) < set.len() {
                return q as usize;
            }
        }
        let q = set.pick(hash, priority);
        self.local = Some(q as u16);
        q
    }

    /// The cached local index, if any (`sk_tx_queue_get`).
    pub fn get(&self) -> Option<usize> {
        self.local.map(|q| q as usize)
    }

    /// Forgets the queue (`sk_tx_queue_clear`; what `ooo_okay` allows: the
    /// flow has nothing in flight, so it may move without reordering).
    pub fn clear(&mut self) {
        self.local = None;
    }
}

/// A 32-bit hash of a flow's 5-tuple (the `skb_get_hash` role): seeded word
/// mixing with a full-avalanche finaliser, so nearby tuples spread evenly.
pub fn flow_hash(src_ip: u32, dst_ip: u32, src_port: u16, dst_port: u16, proto: u8) -> u32 {
    const SEED: u32 = 0x5bd1_e995;
    let mut h = SEED;
    for w in [
        src_ip,
        dst_ip,
        ((src_port as u32) << 16) | dst_port as u32,
        proto as u32,
    ] {
        h ^= w
            .wrapping_mul(0xcc9e_2d51)
            .rotate_left(15)
            .wrapping_mul(0x1b87_3593);
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    h ^= 16;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(nq: u16, map: Option<Vec<Vec<u16>>>) -> PortTxMap {
        PortTxMap {
            port: "ring:x".into(),
            nb_queues: nq,
            lcore_queues: map,
            senders: None,
        }
    }

    #[test]
    fn default_map_gives_lcore_i_queue_i() {
        let m = XpsMap::build(2, &[port(4, None)]).unwrap();
        assert_eq!(m.queues_of(0, 0), &[0, 2]);
        assert_eq!(m.queues_of(0, 1), &[1, 3]);
        assert_eq!(m.owner_of(0, 3), Some(1));
        let m = XpsMap::build(2, &[port(2, None)]).unwrap();
        assert_eq!(m.queues_of(0, 1), &[1]);
    }

    #[test]
    fn validation_errors_name_port_lcore_and_queue() {
        let e = XpsMap::build(2, &[port(3, Some(vec![vec![0], vec![1]]))]).unwrap_err();
        assert_eq!(
            e,
            XpsError::QueueUnowned {
                port: "ring:x".into(),
                queue: 2
            }
        );
        let e = XpsMap::build(2, &[port(2, Some(vec![vec![0, 1], vec![1]]))]).unwrap_err();
        assert_eq!(
            e,
            XpsError::QueueShared {
                port: "ring:x".into(),
                queue: 1,
                first: 0,
                second: 1
            }
        );
        assert!(e.to_string().contains("lcore 0 and lcore 1"));
        let e = XpsMap::build(2, &[port(2, Some(vec![vec![0, 1], vec![]]))]).unwrap_err();
        assert_eq!(
            e,
            XpsError::LcoreWithoutQueue {
                port: "ring:x".into(),
                lcore: 1
            }
        );
        assert!(e.to_string().contains("port ring:x") && e.to_string().contains("lcore 1"));
        // Default map with more lcores than queues: lcore 2 has none.
        let e = XpsMap::build(3, &[port(2, None)]).unwrap_err();
        assert!(matches!(e, XpsError::LcoreWithoutQueue { lcore: 2, .. }));
        // ... unless it does not send on that port.
        let mut p = port(2, None);
        p.senders = Some(vec![0, 1]);
        assert!(XpsMap::build(3, &[p]).is_ok());
        let e = XpsMap::build(2, &[port(2, Some(vec![vec![0], vec![5]]))]).unwrap_err();
        assert!(matches!(e, XpsError::NoSuchQueue { queue: 5, .. }));
        let e = XpsMap::build(1, &[port(2, Some(vec![vec![0], vec![1]]))]).unwrap_err();
        assert!(matches!(e, XpsError::NoSuchLcore { lcore: 1, .. }));
    }

    #[test]
    fn reciprocal_scale_is_multiply_shift() {
        assert_eq!(reciprocal_scale(0, 4), 0);
        assert_eq!(reciprocal_scale(u32::MAX, 4), 3);
        assert_eq!(reciprocal_scale(0x4000_0000, 4), 1);
        assert_eq!(reciprocal_scale(0x7fff_ffff, 4), 1);
        assert_eq!(reciprocal_scale(0x8000_0000, 3), 1);
    }

    #[test]
    fn flows_stick_to_their_queue() {
        let set = TxQueueSet::new(vec![4, 5, 6, 7]);
        let mut cache = TxQueueCache::new();
        let h = flow_hash(0x0a000001, 0x0a000002, 1234, 80, 17);
        let first = cache.pick(&set, h, 0);
        assert_eq!(first, set.pick(h, 0));
        // Later packets of the flow keep the queue whatever their hash says.
        for other in 0..100u32 {
            assert_eq!(cache.pick(&set, other.wrapping_mul(0x9e37_79b9), 0), first);
        }
        // A smaller set invalidates the cache (queue count changed).
        let small = TxQueueSet::new(vec![4]);
        assert_eq!(cache.pick(&small, h, 0), 0);
        cache.clear();
        assert_eq!(cache.get(), None);
    }

    #[test]
    fn many_flows_spread_evenly_over_an_lcores_queues() {
        let set = TxQueueSet::new(vec![0, 1, 2, 3]);
        let mut count = [0u32; 4];
        let mut n = 0;
        for src in 0..40u32 {
            for sport in 0..100u16 {
                let h = flow_hash(0xc0a8_0000 + src, 0x0a00_0001, 1024 + sport, 9, 17);
                let mut c = TxQueueCache::new();
                count[c.pick(&set, h, 0)] += 1;
                n += 1;
            }
        }
        let mean = n / 4;
        for (q, &c) in count.iter().enumerate() {
            assert!(c.abs_diff(mean) < mean / 10, "queue {q}: {c} of {n} flows");
        }
    }

    #[test]
    fn traffic_classes_restrict_the_range() {
        let mut set = TxQueueSet::new(vec![0, 1, 2, 3]);
        let mut prio = [0u8; 16];
        prio[6] = 1;
        set.set_tc(
            "p",
            0,
            TcMap {
                num_tc: 2,
                prio_tc_map: prio,
                tc_to_txq: vec![(0, 3), (3, 1)],
            },
        )
        .unwrap();
        for h in [0u32, 1 << 30, u32::MAX] {
            assert_eq!(set.pick(h, 6), 3);
            assert!(set.pick(h, 0) < 3);
        }
        let bad = TcMap {
            num_tc: 1,
            prio_tc_map: [0; 16],
            tc_to_txq: vec![(2, 3)],
        };
        assert!(matches!(
            set.set_tc("p", 0, bad),
            Err(XpsError::BadTc { .. })
        ));
    }
}
