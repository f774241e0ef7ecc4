//! `tap:PATH+INNER`: a capture of everything the inner port transmits and
//! receives, in a nanosecond pcap — or pcapng, with each frame's direction,
//! when the path ends in `.pcapng` — (smoltcp's `phy::PcapWriter`; the part
//! `dev_queue_xmit_nit` plays for `AF_PACKET` taps in Linux: a copy of each
//! frame to the tap, the frame itself untouched).
//!
//! TX frames are written when the inner queue takes them — exactly the
//! frames it took, once each, even when it takes only part of a burst — and
//! RX frames when they arrive. Both directions share one file per port.

use super::*;
use crate::eal::tsc::{wall_ns, Tsc};
use crate::ethdev::pcap::{flush_shared, CaptureFormat, Direction, PcapWriter, SharedWriter};
use crate::mbuf::{Burst, Mbuf, Mempool, BURST_MAX};
use std::io::BufWriter;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub(crate) fn wrapper() -> WrapperInfo {
    WrapperInfo {
        name: "tap",
        syntax: "tap:PATH[.pcapng][?dir=both|rx|tx&max_frames=N]+INNER",
        help: "captures every frame INNER transmits and receives (dir=rx or tx: one direction) to PATH without changing them: nanosecond pcap, or pcapng (with each frame's direction) when PATH ends in .pcapng; max_frames=N stops writing after N frames (the rest counted in tap_limit_skipped); PATH cannot contain '+'",
        check: |spec| check(spec).map(|_| ()),
        wrap: |spec, inner, full| {
            let (dir, max) = check(spec)?;
            let path = spec.require_arg("tap:PATH+INNER")?;
            let mut tap = Tap::create(full, Path::new(path))?;
            tap.dir = dir;
            tap.max_frames = max;
            Ok(Wrapped::boxed(full, inner, tap))
        },
    }
}

/// Which directions a tap writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dirs {
    Both,
    Rx,
    Tx,
}

fn check(spec: &DevSpec) -> Result<(Dirs, u64), EthdevError> {
    spec.check_params(&["dir", "max_frames"])?;
    spec.require_arg("tap:PATH+INNER")?;
    let dir = match spec.param("dir") {
        None | Some("both") => Dirs::Both,
        Some("rx") => Dirs::Rx,
        Some("tx") => Dirs::Tx,
        Some(o) => {
            return Err(EthdevError::BadSpec {
                spec: spec.raw.clone(),
                why: format!("dir={o}: use both, rx or tx"),
            })
        }
    };
    Ok((dir, spec.param_u64("max_frames", 0)?))
}

/// One queue's tap counters.
#[derive(Debug, Default)]
struct TapStats {
    tx_frames: StatCounter,
    rx_frames: StatCounter,
    write_errors: StatCounter,
    /// Frames not written: the file held `max_frames` already.
    limit_skipped: StatCounter,
}

struct Tap {
    path: String,
    writer: SharedWriter,
    queues: Vec<Arc<TapStats>>,
    dir: Dirs,
    /// Frames written at most (0: no limit).
    max_frames: u64,
}

impl Tap {
    /// Creates (truncates) `path` — refusing to follow a symlink there — and
    /// writes the pcap header.
    fn create(port: &str, path: &Path) -> Result<Tap, EthdevError> {
        let io = |e| EthdevError::Io {
            port: port.to_string(),
            path: path.display().to_string(),
            source: e,
        };
        let f = crate::eal::file::create_nofollow(path).map_err(io)?;
        let w = PcapWriter::with_format(
            BufWriter::with_capacity(1 << 20, f),
            CaptureFormat::for_path(path),
        )
        .map_err(io)?;
        Ok(Tap {
            path: path.display().to_string(),
            writer: Arc::new(Mutex::new(w)),
            queues: Vec::new(),
            dir: Dirs::Both,
            max_frames: 0,
        })
    }

    fn writer(&mut self, port: &str) -> TapWriter {
        let stats = Arc::new(TapStats::default());
        self.queues.push(stats.clone());
        let tsc = Tsc::global();
        TapWriter {
            port: port.to_string(),
            writer: self.writer.clone(),
            stats,
            failed: false,
            max_frames: if self.max_frames == 0 {
                u64::MAX
            } else {
                self.max_frames
            },
            tsc,
            wall0: wall_ns(),
            tsc0: tsc.now(),
        }
    }
}

impl Layer for Tap {
    fn wrap_tx(&mut self, port: &str, inner: Box<dyn TxQueue>) -> Box<dyn TxQueue> {
        if self.dir == Dirs::Rx {
            return inner;
        }
        Box::new(TapTx {
            w: self.writer(port),
            inner,
            skip: [0; BURST_MAX],
            nskip: 0,
        })
    }
    fn wrap_rx(&mut self, port: &str, inner: Box<dyn RxQueue>) -> Box<dyn RxQueue> {
        if self.dir == Dirs::Tx {
            return inner;
        }
        Box::new(TapRx {
            w: self.writer(port),
            inner,
        })
    }
    fn xstats(&self, out: &mut Vec<(String, u64)>) {
        let sum = |f: fn(&TapStats) -> u64| self.queues.iter().map(|q| f(q)).sum::<u64>();
        out.push(("tap_tx_frames".into(), sum(|q| q.tx_frames.get())));
        out.push(("tap_rx_frames".into(), sum(|q| q.rx_frames.get())));
        out.push(("tap_write_errors".into(), sum(|q| q.write_errors.get())));
        out.push(("tap_limit_skipped".into(), sum(|q| q.limit_skipped.get())));
    }
    fn stop(&mut self, port: &str) -> Result<(), EthdevError> {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flush()
            .map_err(|e| EthdevError::Io {
                port: port.to_string(),
                path: self.path.clone(),
                source: e,
            })
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        flush_shared(&self.writer);
    }
}

/// One queue's handle on the capture file.
struct TapWriter {
    port: String,
    writer: SharedWriter,
    stats: Arc<TapStats>,
    /// A write failed already (logged once, counted every time).
    failed: bool,
    /// The file's frame limit (all queues together: the writer's count).
    max_frames: u64,
    tsc: Tsc,
    wall0: u64,
    tsc0: u64,
}

impl TapWriter {
    /// Appends `frames`; a failed write is counted, never passed on to the
    /// data path.
    fn write<'a>(&mut self, frames: impl Iterator<Item = &'a Mbuf>, rx: bool) {
        let count = if rx {
            &self.stats.rx_frames
        } else {
            &self.stats.tx_frames
        };
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        for m in frames {
            if w.records >= self.max_frames {
                self.stats.limit_skipped.add(1);
                continue;
            }
            let ts = self.wall0
                + self
                    .tsc
                    .cycles_to_ns(self.tsc.now().wrapping_sub(self.tsc0));
            let dir = if rx {
                Direction::Inbound
            } else {
                Direction::Outbound
            };
            match w.write_segments_dir(ts, m.segments().map(|s| s.data), dir) {
                Ok(()) => count.add(1),
                Err(e) => {
                    self.stats.write_errors.add(1);
                    if !self.failed {
                        self.failed = true;
                        tracing::error!(port = %self.port, error = %e, "tap write failed; further failed frames are counted in tap_write_errors");
                    }
                }
            }
        }
    }
}

struct TapTx {
    w: TapWriter,
    inner: Box<dyn TxQueue>,
    /// Pool indices of frames at the front of the caller's burst that were
    /// written but not taken last time (the inner queue was full): they are
    /// not written twice when offered again.
    skip: [u32; BURST_MAX],
    nskip: usize,
}

impl TapTx {
    /// Writes `pkts[..k]`, except the leading ones already written.
    fn capture(&mut self, pkts: &Burst, k: usize) {
        let skip = &self.skip[..self.nskip];
        let lead = pkts
            .iter()
            .zip(skip)
            .take_while(|(m, id)| m.index() == **id)
            .count();
        self.w.write(pkts.iter().take(k).skip(lead), false);
        self.nskip = 0;
    }

    /// Remembers the written frames the inner queue left at the front.
    fn remember(&mut self, pkts: &Burst, written_left: usize) {
        for (s, m) in self.skip.iter_mut().zip(pkts.iter().take(written_left)) {
            *s = m.index();
        }
        self.nskip = written_left;
    }
}

impl TxQueue for TapTx {
    fn index(&self) -> u16 {
        self.inner.index()
    }
    /// Copies each frame the inner queue takes to the capture, then hands
    /// the burst on unchanged (`dev_queue_xmit_nit` + `ndo_start_xmit`).
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        let k = pkts.len().min(self.inner.free_slots());
        if k == 0 {
            return 0;
        }
        self.capture(pkts, k);
        if k == pkts.len() {
            let n = self.inner.tx_burst(pkts);
            self.remember(pkts, k - n);
            return n;
        }
        // Offer exactly the written prefix, so the queue cannot take a frame
        // that was not captured; what it leaves goes back to the front.
        let mut sub = Burst::new();
        for _ in 0..k {
            if let Some(m) = pkts.pop_front() {
                let _ = sub.push(m);
            }
        }
        let n = self.inner.tx_burst(&mut sub);
        while let Some(m) = sub.pop_back() {
            // `pkts` lost k frames above: room for them.
            let _ = pkts.push_front(m);
        }
        self.remember(pkts, k - n);
        n
    }
    #[inline]
    fn clean(&mut self, budget: usize) -> Completed {
        self.inner.clean(budget)
    }
    fn free_slots(&self) -> usize {
        self.inner.free_slots()
    }
    fn ring_size(&self) -> usize {
        self.inner.ring_size()
    }
    fn stats(&self) -> Arc<QueueStats> {
        self.inner.stats()
    }
    fn poll_event(&mut self) -> Option<PortEvent> {
        self.inner.poll_event()
    }
    fn carrier(&self) -> bool {
        self.inner.carrier()
    }
    fn reset(&mut self) -> Option<Completed> {
        self.inner.reset()
    }
}

impl Drop for TapTx {
    fn drop(&mut self) {
        flush_shared(&self.w.writer);
    }
}

struct TapRx {
    w: TapWriter,
    inner: Box<dyn RxQueue>,
}

impl RxQueue for TapRx {
    fn index(&self) -> u16 {
        self.inner.index()
    }
    /// `netif_receive_skb`'s `deliver_skb` to the packet taps, before the stack.
    fn rx_burst(&mut self, pool: &mut Mempool, out: &mut Burst, max: usize) -> usize {
        let before = out.len();
        let n = self.inner.rx_burst(pool, out, max);
        if n > 0 {
            self.w.write(out.as_slice()[before..].iter(), true);
        }
        n
    }
    fn stats(&self) -> Arc<QueueStats> {
        self.inner.stats()
    }
    fn stop(&mut self) {
        self.inner.stop()
    }
}
