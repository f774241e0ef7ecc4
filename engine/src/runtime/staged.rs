//! The protocol stack inside the runtime: a [`Stack`](crate::stack::Stack)'s
//! `dev_queue_xmit` when the device queues belong to the lcore's context.
//!
//! The stack hands frames to [`StagedXmit`] (its [`L2Xmit`]); they wait in a
//! per-port staging queue until [`StagedTx::flush`] runs — from the
//! application's poll, and at the end of the run from the runtime's drain
//! through [`LcoreApp::flush_tx`](super::LcoreApp::flush_tx) — which picks
//! each frame's queue (`netdev_pick_tx`: the socket's cached queue carried
//! in the frame, else XPS by flow hash) and offers them to the netdev queues
//! in batches: one `xmit_more` batch per queue, one doorbell each.
//!
//! Every staged frame is accounted for exactly once: handed to a netdev
//! queue (which transmits it or counts its drop), counted in
//! [`StagedTx::dropped`] (no queue on this lcore), refused at staging with
//! `Err` when the bounded staging queue is full (the stack counts that
//! refusal; [`StagedTx::overflows`] counts it here too), or, when the stack
//! is dropped with frames still staged, freed and counted in
//! [`StagedTx::purged`].
//!
//! # Using it from an [`LcoreApp`](super::LcoreApp)
//!
//! ```text
//! fn poll(&mut self, ctx)     { stack.send…; stack.flush(); tx.flush(ctx); }
//! fn flush_tx(&mut self, ctx) -> usize { stack.flush(); tx.flush(ctx); tx.pending() }
//! ```

use super::LcoreCtx;
use crate::mbuf::{Burst, Mbuf};
use crate::netdev::{TxQueueCache, TxQueueSet};
use crate::stack::{tx_queue_mapping, L2Xmit, XmitDrop};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// Frames a port's staging queue holds by default (between two flushes).
pub const STAGE_DEFAULT: usize = 4096;

struct PortStage {
    frames: VecDeque<Mbuf>,
    cap: usize,
    /// This lcore's queues of the port, as the last flush saw them
    /// (`None` before the first flush).
    set: Option<TxQueueSet>,
}

#[derive(Default)]
struct StageCounters {
    overflows: u64,
    purged: u64,
}

struct Shared {
    ports: Vec<PortStage>,
    c: StageCounters,
}

/// The stack side: plays `dev_queue_xmit` by staging the frame.
pub struct StagedXmit {
    shared: Rc<RefCell<Shared>>,
}

/// The application side: moves staged frames to the lcore's netdev queues.
pub struct StagedTx {
    shared: Rc<RefCell<Shared>>,
    /// Stack port index → runtime port index.
    map: Vec<usize>,
    /// One batch per local queue (allocated when the queue count changes,
    /// never per flush).
    per_q: Vec<Burst>,
    /// Frames the netdev layer dropped (also counted there, by cause), or
    /// dropped here because this lcore has no queue on the port.
    pub dropped: u64,
    /// Frames handed to the netdev layer (or dropped for want of a queue).
    pub offered: u64,
}

/// A staging pair for a stack whose port `i` is runtime port `map[i]`,
/// each port staging up to [`STAGE_DEFAULT`] frames between flushes.
pub fn staged(map: Vec<usize>) -> (StagedXmit, StagedTx) {
    staged_with_capacity(map, STAGE_DEFAULT)
}

/// As [`staged`], with `cap` frames of staging per port (at least 1). The
/// queues are allocated here, once; staging never allocates.
pub fn staged_with_capacity(map: Vec<usize>, cap: usize) -> (StagedXmit, StagedTx) {
    let cap = cap.max(1);
    let ports = (0..map.len())
        .map(|_| PortStage {
            frames: VecDeque::with_capacity(cap),
            cap,
            set: None,
        })
        .collect();
    let shared = Rc::new(RefCell::new(Shared {
        ports,
        c: StageCounters::default(),
    }));
    (
        StagedXmit {
            shared: shared.clone(),
        },
        StagedTx {
            shared,
            map,
            per_q: Vec::new(),
            dropped: 0,
            offered: 0,
        },
    )
}

impl L2Xmit for StagedXmit {
    /// Plays the part of `dev_queue_xmit`'s entry: the frame is staged for
    /// its port; the lcore's flush hands it to the queue picked for it. A
    /// full staging queue refuses the frame (`Err`: the caller counts it).
    fn queue_xmit(&mut self, port: u16, m: Mbuf) -> Result<(), XmitDrop> {
        let mut sh = self.shared.borrow_mut();
        let Shared { ports, c } = &mut *sh;
        let Some(p) = ports.get_mut(port as usize) else {
            return Err(XmitDrop::NoPort);
        };
        if p.frames.len() >= p.cap {
            c.overflows += 1;
            return Err(XmitDrop::QueueFull);
        }
        // Within capacity: never reallocates.
        p.frames.push_back(m);
        Ok(())
    }

    /// Plays `__netdev_pick_tx` for a socket: its cached queue while valid
    /// for this lcore's queue set, else the XPS pick by hash, then cached.
    fn pick_tx(
        &mut self,
        port: u16,
        cache: &mut TxQueueCache,
        hash: u32,
        priority: u8,
    ) -> Option<u16> {
        let sh = self.shared.borrow();
        let set = sh.ports.get(port as usize)?.set.as_ref()?;
        if set.len() <= 1 {
            return None;
        }
        Some(cache.pick(set, hash, priority) as u16)
    }
}

impl Drop for StagedXmit {
    /// The stack (and its pool) is going away: free what is still staged
    /// now, while the pool exists, and count it.
    fn drop(&mut self) {
        let mut sh = self.shared.borrow_mut();
        let Shared { ports, c } = &mut *sh;
        for p in ports.iter_mut() {
            c.purged += p.frames.len() as u64;
            p.frames.clear();
        }
    }
}

impl StagedTx {
    /// Frames waiting on any port.
    pub fn pending(&self) -> usize {
        self.shared
            .borrow()
            .ports
            .iter()
            .map(|p| p.frames.len())
            .sum()
    }

    /// True when a port's staging queue is more than half full (flush soon).
    pub fn nearly_full(&self) -> bool {
        self.shared
            .borrow()
            .ports
            .iter()
            .any(|p| p.frames.len() > p.cap / 2)
    }

    /// Frames refused because a staging queue was full (each also counted
    /// by the stack where it was refused: `OutDiscards`, ARP `ctl_tx_drops`, …).
    pub fn overflows(&self) -> u64 {
        self.shared.borrow().c.overflows
    }

    /// Frames freed unsent because the stack was dropped while they were staged.
    pub fn purged(&self) -> u64 {
        self.shared.borrow().c.purged
    }

    /// Hands every staged frame to the netdev queue picked for it
    /// (`netdev_pick_tx`: the socket's queue mapping carried in the frame
    /// while it is valid, else XPS by flow hash and priority), batched per
    /// queue, in order within each queue. Allocation-free; leaves nothing
    /// staged.
    pub fn flush(&mut self, ctx: &mut LcoreCtx) {
        let mut sh = self.shared.borrow_mut();
        for (sp, ps) in sh.ports.iter_mut().enumerate() {
            let port = self.map[sp];
            // Keep the stack's view of the queues current (it changes only
            // on reconfiguration: a clone then, a compare otherwise).
            let live = ctx.tx_queue_set(port);
            if ps.set.as_ref() != Some(live) {
                ps.set = Some(live.clone());
            }
            if ps.frames.is_empty() {
                continue;
            }
            let nq = ctx.tx_queues(port).len();
            if nq == 0 {
                // No queue on this lcore: dropped, counted here.
                let n = ps.frames.len() as u64;
                self.dropped += n;
                self.offered += n;
                ps.frames.clear();
                continue;
            }
            if self.per_q.len() < nq {
                self.per_q.resize_with(nq, Burst::new);
            }
            let set = ps.set.as_ref().expect("synced above");
            let (per_q, offered, dropped) = (&mut self.per_q, &mut self.offered, &mut self.dropped);
            while let Some(m) = ps.frames.pop_front() {
                let q = match tx_queue_mapping(&m) {
                    Some(q) if (q as usize) < nq => q as usize,
                    _ if nq == 1 => 0,
                    _ => set.pick(m.hash(), m.priority()).min(nq - 1),
                };
                if let Err(m) = per_q[q].push(m) {
                    xmit_counted(ctx, port, q, &mut per_q[q], offered, dropped);
                    let _ = per_q[q].push(m);
                }
            }
            for (q, b) in per_q.iter_mut().enumerate().take(nq) {
                xmit_counted(ctx, port, q, b, offered, dropped);
            }
        }
    }
}

/// One `xmit_burst` (the netdev queue takes every frame: sent, queued, or
/// dropped and counted by cause).
fn xmit_counted(
    ctx: &mut LcoreCtx,
    port: usize,
    q: usize,
    b: &mut Burst,
    offered: &mut u64,
    dropped: &mut u64,
) {
    if b.is_empty() {
        return;
    }
    *offered += b.len() as u64;
    let out = ctx.xmit_burst(port, q, b);
    *dropped += out.dropped as u64;
    // xmit_burst consumes the burst; anything left is dropped by us, counted.
    *dropped += b.len() as u64;
    b.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eal::dma::{set_page_mode, PageMode};
    use crate::eal::lcore::CoreList;
    use crate::ethdev::{MacAddr, PortConfig, Registry};
    use crate::mbuf::{Mempool, PoolConfig};
    use crate::netdev::reciprocal_scale;
    use crate::runtime::{LcoreApp, PortSetup, Runtime, RuntimeConfig};
    use crate::stack::{PortConf, SocketId, Stack, StackConfig};
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::Duration;

    const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn stack(name: &str, xmit: StagedXmit) -> Stack {
        set_page_mode(PageMode::Small);
        let pool = Mempool::new(&PoolConfig {
            name: name.into(),
            size: 2048,
            ..Default::default()
        })
        .unwrap();
        let cfg = StackConfig {
            ports: vec![PortConf::new(MacAddr::local(1), IP_A, 24)],
            static_neighbours: vec![(0, IP_B, MacAddr::local(2))],
            ..Default::default()
        };
        Stack::new(cfg, pool, Box::new(xmit)).unwrap()
    }

    fn run<A: LcoreApp>(
        nq: u16,
        make: impl Fn(&mut LcoreCtx) -> Result<A, String> + Send + Sync + 'static,
    ) -> crate::runtime::RunReport<A::Summary> {
        set_page_mode(PageMode::Small);
        let mut cfg = RuntimeConfig::new(CoreList::from_cores(vec![0]));
        cfg.pool.size = 512;
        cfg.handle_signals = false;
        cfg.stop.duration = Some(Duration::from_secs(5));
        let port = Registry::with_builtins().open("null").unwrap();
        let conf = PortConfig {
            nb_tx_queues: nq,
            nb_rx_queues: 0,
            ..Default::default()
        };
        Runtime::new(cfg, vec![PortSetup::new(port, conf)])
            .unwrap()
            .run(make)
            .unwrap()
    }

    /// 64 connected sockets send in two rounds (before and after the
    /// staging learned the lcore's queues).
    struct Spread {
        st: Stack,
        tx: StagedTx,
        socks: Vec<SocketId>,
        round: u32,
    }

    impl LcoreApp for Spread {
        type Summary = Vec<(u32, Option<usize>)>;
        fn poll(&mut self, ctx: &mut LcoreCtx) {
            if self.round == 2 {
                ctx.request_stop();
                return;
            }
            let n = 2 + self.round;
            for &s in &self.socks {
                for _ in 0..n {
                    self.st.socket(s).send(b"datagram").unwrap();
                }
            }
            self.st.flush();
            self.tx.flush(ctx);
            self.round += 1;
        }
        fn flush_tx(&mut self, ctx: &mut LcoreCtx) -> usize {
            self.st.flush();
            self.tx.flush(ctx);
            self.tx.pending()
        }
        fn finish(mut self, _ctx: &mut LcoreCtx) -> Self::Summary {
            let socks = std::mem::take(&mut self.socks);
            socks
                .iter()
                .map(|&s| {
                    let k = self.st.socket(s);
                    (k.tx_hash().unwrap(), k.tx_queue().unwrap())
                })
                .collect()
        }
    }

    #[test]
    fn stack_flows_spread_over_the_lcores_queues_by_reciprocal_scale() {
        let rep = run(4, |_ctx| {
            let (x, tx) = staged(vec![0]);
            let mut st = stack("staged-spread", x);
            let socks = (0..64u16)
                .map(|i| {
                    let s = st.udp_socket().unwrap();
                    st.socket(s)
                        .connect(SocketAddrV4::new(IP_B, 1000 + i))
                        .unwrap();
                    s
                })
                .collect();
            Ok(Spread {
                st,
                tx,
                socks,
                round: 0,
            })
        });
        let l = &rep.lcores[0];
        assert!(l.drained);
        let mut want = [0u64; 4];
        for &(hash, cached) in &l.app {
            let q = reciprocal_scale(hash, 4) as usize;
            // sk_tx_queue_mapping: the socket's cache holds the XPS pick.
            assert_eq!(cached, Some(q), "hash {hash:#x}");
            want[q] += 5;
        }
        let got: Vec<u64> = l.queues.iter().map(|q| q.counters.sent_packets).collect();
        assert_eq!(got, want.to_vec());
        assert!(want.iter().all(|&n| n >= 5 * 5), "spread: {want:?}");
    }

    /// Sends `n` datagrams in its last poll and leaves them staged.
    struct Tail {
        st: Option<Stack>,
        tx: StagedTx,
        n: u32,
        hook: bool,
    }

    impl LcoreApp for Tail {
        type Summary = (u64, u64, u64);
        fn poll(&mut self, ctx: &mut LcoreCtx) {
            let st = self.st.as_mut().unwrap();
            let s = st.udp_socket().unwrap();
            st.socket(s).set_sndbuf(1 << 20).unwrap();
            st.socket(s).connect(SocketAddrV4::new(IP_B, 9)).unwrap();
            for _ in 0..self.n {
                st.socket(s).send(b"last words").unwrap();
            }
            ctx.request_stop();
        }
        fn flush_tx(&mut self, ctx: &mut LcoreCtx) -> usize {
            if !self.hook {
                return 0;
            }
            self.st.as_mut().unwrap().flush();
            self.tx.flush(ctx);
            self.tx.pending()
        }
        fn finish(mut self, _ctx: &mut LcoreCtx) -> Self::Summary {
            let st = self.st.take().unwrap();
            let in_use = st.pool_stats_in_use();
            drop(st);
            (in_use, self.tx.offered, self.tx.purged())
        }
    }

    impl Stack {
        fn pool_stats_in_use(&self) -> u64 {
            self.pool.stats().in_use
        }
    }

    #[test]
    fn the_drain_flushes_staged_frames_and_nothing_is_lost_silently() {
        let make = |hook: bool| {
            move |_ctx: &mut LcoreCtx| {
                let (x, tx) = staged(vec![0]);
                Ok(Tail {
                    st: Some(stack("staged-tail", x)),
                    tx,
                    n: 100,
                    hook,
                })
            }
        };
        // With the hook: the drain sends them, every buffer comes home.
        let rep = run(1, make(true));
        let l = &rep.lcores[0];
        assert!(l.drained);
        assert_eq!(l.queues[0].counters.sent_packets, 100);
        assert_eq!(l.app, (0, 100, 0));
        // An app without the hook: nothing is sent, and the frames freed
        // with the stack are counted, not leaked.
        let rep = run(1, make(false));
        let l = &rep.lcores[0];
        assert_eq!(l.queues[0].counters.sent_packets, 0);
        assert_eq!(l.app.2, 100);
    }

    #[test]
    fn a_full_staging_queue_refuses_and_counts() {
        let (x, tx) = staged_with_capacity(vec![0], 8);
        let mut st = stack("staged-full", x);
        let s = st.udp_socket().unwrap();
        st.socket(s).connect(SocketAddrV4::new(IP_B, 9)).unwrap();
        for _ in 0..20 {
            // udp_send_skb: a refusal below is counted, the send "succeeds".
            st.socket(s).send(b"x").unwrap();
        }
        assert_eq!(tx.pending(), 8);
        assert!(tx.nearly_full());
        assert_eq!(tx.overflows(), 12);
        let c = st.counters();
        assert_eq!(c.udp.out_datagrams, 8);
        assert_eq!((c.ip.out_discards, c.udp.sndbuf_errors), (12, 12));
        drop(st);
        assert_eq!(tx.purged(), 8);
        assert_eq!(tx.pending(), 0);
    }
}
