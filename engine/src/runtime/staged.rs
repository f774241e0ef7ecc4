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
