//! The protocol stack inside the runtime: a [`Stack`](crate::stack::Stack)'s
//! `dev_queue_xmit` when the device queues belong to the lcore's context.
//!
//! The stack hands frames to [`StagedXmit`] (its [`L2Xmit`]); they wait in a
//! per-port staging burst until the application calls [`StagedTx::flush`]
//! from its poll, which picks each frame's queue by XPS (flow hash, cached)
//! and offers them to the netdev queues in batches — one `xmit_more` batch
//! per queue, one doorbell each.

use super::LcoreCtx;
use crate::mbuf::{Burst, Mbuf, BURST_MAX};
use crate::netdev::TxQueueCache;
use crate::stack::{L2Xmit, XmitDrop};
use std::cell::RefCell;
use std::rc::Rc;

/// The stack side: plays `dev_queue_xmit` by staging the frame.
pub struct StagedXmit {
    staged: Rc<RefCell<Vec<Burst>>>,
}

/// The application side: moves staged frames to the lcore's netdev queues.
pub struct StagedTx {
    staged: Rc<RefCell<Vec<Burst>>>,
    /// Stack port index → runtime port index.
    map: Vec<usize>,
    /// Frames the netdev layer dropped (also counted there, by cause).
    pub dropped: u64,
    pub offered: u64,
}

/// A staging pair for a stack whose port `i` is runtime port `map[i]`.
pub fn staged(map: Vec<usize>) -> (StagedXmit, StagedTx) {
    let staged = Rc::new(RefCell::new((0..map.len()).map(|_| Burst::new()).collect()));
    (
        StagedXmit {
            staged: staged.clone(),
        },
        StagedTx {
            staged,
            map,
            dropped: 0,
            offered: 0,
        },
    )
}

impl L2Xmit for StagedXmit {
    /// Plays the part of `dev_queue_xmit`'s entry: the frame is staged for
    /// its port; the lcore's poll hands it to the queue XPS picks.
    fn queue_xmit(&mut self, port: u16, m: Mbuf) -> Result<(), XmitDrop> {
        let mut st = self.staged.borrow_mut();
        let Some(b) = st.get_mut(port as usize) else {
            return Err(XmitDrop::NoPort);
        };
        b.push(m).map_err(|_| XmitDrop::QueueFull)
    }
}

impl StagedTx {
    /// Frames waiting on any port.
    pub fn pending(&self) -> usize {
        self.staged.borrow().iter().map(|b| b.len()).sum()
    }

    /// True when a port's staging burst is more than half full (flush soon).
    pub fn nearly_full(&self) -> bool {
        self.staged.borrow().iter().any(|b| b.len() > BURST_MAX / 2)
    }

    /// Hands every staged frame to the netdev queue XPS picks for it
    /// (`netdev_pick_tx` by flow hash), batched per queue.
    pub fn flush(&mut self, ctx: &mut LcoreCtx) {
        let mut st = self.staged.borrow_mut();
        for (sp, b) in st.iter_mut().enumerate() {
            if b.is_empty() {
                continue;
            }
            let port = self.map[sp];
            let nq = ctx.tx_queues(port).len();
            if nq == 0 {
                // No queue on this lcore: dropped, counted here.
                self.dropped += b.len() as u64;
                self.offered += b.len() as u64;
                b.clear();
                continue;
            }
            if nq == 1 {
                self.offered += b.len() as u64;
                let out = ctx.xmit_burst(port, 0, b);
                self.dropped += out.dropped as u64;
                continue;
            }
            // Several queues: group by the picked queue, keeping order per queue.
            let mut per_q: Vec<Burst> = (0..nq).map(|_| Burst::new()).collect();
            while let Some(m) = b.pop_front() {
                // The flow hash alone fixes the queue while the map holds, so
                // a flow never reorders (a fresh cache: no per-socket state here).
                let mut cache = TxQueueCache::default();
                let q = ctx.pick_tx(port, &mut cache, m.hash(), m.priority());
                let _ = per_q[q.min(nq - 1)].push(m);
            }
            for (q, mut qb) in per_q.into_iter().enumerate() {
                if !qb.is_empty() {
                    self.offered += qb.len() as u64;
                    let out = ctx.xmit_burst(port, q, &mut qb);
                    self.dropped += out.dropped as u64;
                }
            }
        }
    }
}
