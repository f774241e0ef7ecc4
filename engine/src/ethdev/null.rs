//! `null`: a sink port (DPDK's `net_null`). TX accepts everything and frees it
//! at once; completions are reported on the next `clean`. RX receives nothing.
//!
//! `null?stamps=FILE` makes it a stamping sink: every packet is stamped with
//! the time (TSC, in ns) of the `tx_burst` that handed it over, and the stamps
//! are written to FILE (little-endian u64 ns, one per packet; queue N > 0
//! writes FILE.N) when the queue is released. That is the sender's pacing as
//! a NIC's doorbell would see it, without a writer in the way.

use super::*;
use crate::mbuf::{Burst, Mempool};
use std::sync::Arc;

pub(crate) fn driver() -> DriverInfo {
    DriverInfo {
        name: "null",
        syntax: "null",
        help: "sink: transmits into nothing, receives nothing (DPDK net_null); \
               ?stamps=FILE writes each packet's tx_burst time (u64 ns) at the end, \
               ?stamps_max=N keeps at most N per queue (default 4194304)",
        open: |spec| {
            spec.check_params(&["stamps", "stamps_max"])?;
            if spec.arg.is_some() {
                return Err(EthdevError::BadSpec {
                    spec: spec.raw.clone(),
                    why: "driver 'null' takes no argument".into(),
                });
            }
            let stamps = spec.param("stamps").map(std::path::PathBuf::from);
            let max = match spec.param("stamps_max") {
                None => DEFAULT_STAMPS,
                Some(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1 << 28).contains(n))
                    .ok_or_else(|| EthdevError::BadSpec {
                        spec: spec.raw.clone(),
                        why: format!("stamps_max '{v}' is not a count in 1..=268435456"),
                    })?,
            };
            if stamps.is_none() && spec.param("stamps_max").is_some() {
                return Err(EthdevError::BadSpec {
                    spec: spec.raw.clone(),
                    why: "stamps_max needs stamps=FILE".into(),
                });
            }
            let mut p = NullPort::new(&spec.raw);
            p.driver_mut().stamps = stamps.map(|f| (f, max));
            Ok(Box::new(p))
        },
    }
}

/// Stamps a stamping sink keeps per queue unless told otherwise (32 MiB).
const DEFAULT_STAMPS: usize = 1 << 22;

/// What the null driver does differently: nothing to set up, unless it
/// stamps (the file and how many stamps each queue keeps).
#[derive(Debug, Default)]
pub struct NullDriver {
    stamps: Option<(std::path::PathBuf, usize)>,
}

/// The null port: [`NullDriver`] in the ethdev framework.
pub type NullPort = EthDev<NullDriver>;

impl EthDev<NullDriver> {
    pub fn new(name: &str) -> NullPort {
        EthDev::with_driver(name, NullDriver::default())
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
        let stamps = match &self.stamps {
            None => None,
            Some((path, max)) => {
                let path = if q.queue == 0 {
                    path.clone()
                } else {
                    let mut p = path.clone().into_os_string();
                    p.push(format!(".{}", q.queue));
                    p.into()
                };
                Some(Stamps::create(q.port, path, *max)?)
            }
        };
        Ok(Box::new(NullTxQueue {
            index: q.queue,
            stats: q.stats,
            ring: q.ring_size as usize,
            pending: Completed::default(),
            stamps,
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
    stamps: Option<Stamps>,
}

/// A stamping sink's record: the time of each packet's `tx_burst`, in a
/// buffer allocated when the queue is set up, written out when it is
/// released. Stamps past the buffer are counted, not kept.
struct Stamps {
    file: std::fs::File,
    path: std::path::PathBuf,
    ns: Vec<u64>,
    dropped: u64,
    tsc: crate::eal::Tsc,
}

impl Stamps {
    /// Creates the file now (so a bad path fails the setup, not the end),
    /// without following a symlink.
    fn create(port: &str, path: std::path::PathBuf, max: usize) -> Result<Stamps, EthdevError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| EthdevError::Io {
                port: port.to_string(),
                path: path.display().to_string(),
                source: e,
            })?;
        // Every page written now: a page fault while stamping would be
        // jitter the sink itself adds.
        let mut ns = vec![u64::MAX; max];
        ns.clear();
        Ok(Stamps {
            file,
            path,
            ns,
            dropped: 0,
            tsc: crate::eal::Tsc::global(),
        })
    }

    #[inline]
    fn record(&mut self, n: usize) {
        let now = self.tsc.cycles_to_ns(self.tsc.now());
        let keep = n.min(self.ns.capacity() - self.ns.len());
        self.ns.extend(std::iter::repeat_n(now, keep));
        self.dropped += (n - keep) as u64;
    }
}

impl Drop for Stamps {
    fn drop(&mut self) {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(&self.file);
        let r = self
            .ns
            .iter()
            .try_for_each(|t| w.write_all(&t.to_le_bytes()))
            .and_then(|_| w.flush());
        if let Err(e) = r {
            tracing::warn!(path = %self.path.display(), "null sink: writing stamps failed: {e}");
        }
        if self.dropped > 0 {
            tracing::warn!(
                path = %self.path.display(),
                kept = self.ns.len(),
                dropped = self.dropped,
                "null sink: more packets than stamps_max; raise it to keep them all"
            );
        }
    }
}

impl TxQueue for NullTxQueue {
    fn index(&self) -> u16 {
        self.index
    }
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        let n = pkts.len();
        if let Some(s) = self.stamps.as_mut() {
            s.record(n);
        }
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
