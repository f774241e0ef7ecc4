//! `trace+INNER`: logs every frame the inner port transmits or receives at
//! `tracing` debug (smoltcp's `phy::Tracer`; Linux's `skb:net_dev_xmit` /
//! `net:netif_receive_skb` tracepoints). With debug off for
//! `wirespeed::ethdev::wrap::trace`, a burst costs one cached level check.

use super::*;
use crate::mbuf::{Burst, Mbuf, Mempool, BURST_MAX};
use std::sync::Arc;

pub(crate) fn wrapper() -> WrapperInfo {
    WrapperInfo {
        name: "trace",
        syntax: "trace+INNER",
        help: "logs every frame INNER transmits and receives at tracing debug (RUST_LOG=wirespeed::ethdev::wrap::trace=debug): length, MACs, EtherType",
        check: no_arg,
        wrap: |spec, inner, full| {
            no_arg(spec)?;
            Ok(Wrapped::boxed(full, inner, Trace))
        },
    }
}

struct Trace;

impl Layer for Trace {
    fn wrap_tx(&mut self, port: &str, inner: Box<dyn TxQueue>) -> Box<dyn TxQueue> {
        Box::new(TraceTx {
            port: port.into(),
            inner,
        })
    }
    fn wrap_rx(&mut self, port: &str, inner: Box<dyn RxQueue>) -> Box<dyn RxQueue> {
        Box::new(TraceRx {
            port: port.into(),
            inner,
        })
    }
}

/// What is logged of one frame (taken before the inner queue owns it).
#[derive(Clone, Copy, Default)]
struct Line {
    len: u32,
    hdr: [u8; 14],
}

impl Line {
    fn of(m: &Mbuf) -> Line {
        let mut hdr = [0u8; 14];
        let d = m.data();
        let k = d.len().min(14);
        hdr[..k].copy_from_slice(&d[..k]);
        Line {
            len: m.pkt_len() as u32,
            hdr,
        }
    }
    fn log(&self, port: &str, dir: &str, q: u16) {
        let h = &self.hdr;
        tracing::debug!(
            port,
            queue = q,
            "{dir} len {} {} > {} type {:#06x}",
            self.len,
            MacAddr([h[6], h[7], h[8], h[9], h[10], h[11]]),
            MacAddr([h[0], h[1], h[2], h[3], h[4], h[5]]),
            u16::from_be_bytes([h[12], h[13]])
        );
    }
}

struct TraceTx {
    port: String,
    inner: Box<dyn TxQueue>,
}

impl TxQueue for TraceTx {
    fn index(&self) -> u16 {
        self.inner.index()
    }
    /// `trace_net_dev_xmit` for each frame the inner queue took.
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return self.inner.tx_burst(pkts);
        }
        let mut lines = [Line::default(); BURST_MAX];
        let k = pkts.len().min(BURST_MAX);
        for (l, m) in lines.iter_mut().zip(pkts.iter()) {
            *l = Line::of(m);
        }
        let n = self.inner.tx_burst(pkts);
        for l in &lines[..n.min(k)] {
            l.log(&self.port, "tx", self.inner.index());
        }
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
        tracing::debug!(port = %self.port, queue = self.inner.index(), "tx queue reset");
        self.inner.reset()
    }
}

struct TraceRx {
    port: String,
    inner: Box<dyn RxQueue>,
}

impl RxQueue for TraceRx {
    fn index(&self) -> u16 {
        self.inner.index()
    }
    /// `trace_netif_receive_skb` for each frame received.
    #[inline]
    fn rx_burst(&mut self, pool: &mut Mempool, out: &mut Burst, max: usize) -> usize {
        let before = out.len();
        let n = self.inner.rx_burst(pool, out, max);
        if n > 0 && tracing::enabled!(tracing::Level::DEBUG) {
            for m in &out.as_slice()[before..] {
                Line::of(m).log(&self.port, "rx", self.inner.index());
            }
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
