//! Software GSO on the way to a driver (`validate_xmit_skb` →
//! `skb_gso_segment`): a TCP super-segment offered to a queue whose
//! device does not do TSO (`netif_needs_gso`) is split into wire segments
//! by the stack's registered segmenter ([`crate::ethdev::offload`]) before
//! the qdisc sees it, so everything below — qdisc, BQL, driver — handles
//! ordinary frames. Linux segments at dequeue time; splitting on entry
//! gives the same frames in the same order and keeps the qdisc's packet
//! counts in wire segments.

use super::{NetdevQueue, XmitOutcome};
use crate::ethdev::offload::{self, GsoRequest, GSO_MAX_CHAIN};
use crate::mbuf::{ol, Burst, Mbuf};

impl XmitOutcome {
    fn add(&mut self, o: XmitOutcome) {
        self.direct += o.direct;
        self.queued += o.queued;
        self.dropped += o.dropped;
        self.dropped_bytes += o.dropped_bytes;
        self.carrier_dropped += o.carrier_dropped;
    }
}

impl NetdevQueue {
    /// True when some packet of `pkts` must be segmented here
    /// (`netif_needs_gso`: a super-segment, and the device lacks TSO).
    #[inline]
    pub(crate) fn needs_gso(&self, pkts: &Burst) -> bool {
        !self.tso() && pkts.iter().any(offload::is_gso)
    }

    /// Plays the part of `validate_xmit_skb_list` for a burst holding
    /// super-segments: each is replaced by its wire segments (in order,
    /// between the packets around it), and the result goes through
    /// `xmit_burst`. A super-segment that cannot be segmented (malformed,
    /// no buffers) is dropped and counted in `gso_drops`.
    pub(crate) fn xmit_gso(&mut self, pkts: &mut Burst) -> XmitOutcome {
        let mut out = XmitOutcome::default();
        let mut plain = Burst::new();
        while let Some(m) = pkts.pop_front() {
            if !offload::is_gso(&m) {
                if let Err(m) = plain.push(m) {
                    out.add(self.xmit_burst(&mut plain));
                    let _ = plain.push(m);
                }
                continue;
            }
            if !plain.is_empty() {
                out.add(self.xmit_burst(&mut plain));
            }
            let mut segs = Burst::new();
            match self.gso_segment(&m, &mut segs) {
                Ok(()) => out.add(self.xmit_burst(&mut segs)),
                Err(e) => {
                    tracing::debug!(port = %self.port_name(), "GSO drop: {e}");
                    self.c.offered += 1;
                    self.c.gso_drops += 1;
                    out.dropped += 1;
                    out.dropped_bytes += m.pkt_len() as u64;
                }
            }
        }
        if !plain.is_empty() {
            out.add(self.xmit_burst(&mut plain));
        }
        out
    }

    /// Plays the part of `skb_gso_segment` for one super-segment: its
    /// segments come from its own pool (the sending lcore's), inherit its
    /// hash, priority and VLAN request, and share its send-buffer charge
    /// (`tcp_gso_segment` hands each segment a part of `truesize` with the
    /// `tcp_wfree` destructor, so TSQ keeps counting them).
    fn gso_segment(&mut self, m: &Mbuf, segs: &mut Burst) -> Result<(), offload::GsoError> {
        let mut parts = [&[][..]; GSO_MAX_CHAIN];
        let frame = offload::frame_slices(m, &mut parts)
            .ok_or(offload::GsoError::Malformed("chain longer than 64 buffers"))?;
        let pool = m.pool_ref();
        let req = GsoRequest {
            mss: m.tso_segsz(),
            tx_csum: self.tx_csum(),
            rx_csum_good: false,
        };
        let n = offload::segment_tcp4(frame, req, &mut || pool.alloc(), segs)?;
        let share = m.wmem_charge() / n as u32;
        let keep = m.ol_flags() & ol::TX_VLAN;
        for s in segs.as_mut_slice() {
            s.set_hash(m.hash());
            s.set_priority(m.priority());
            s.set_vlan_tci(m.vlan_tci());
            s.set_ol_flags(s.ol_flags() | keep);
            m.share_wmem(s, share);
        }
        self.c.gso_segments += n as u64;
        Ok(())
    }
}
