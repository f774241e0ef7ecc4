//! Raw frames: the stream's prebuilt frame in every buffer of the sender's
//! pool, with only what varies rewritten per packet ([`PacketGen`]).

use super::{FillCx, FILL_MAX};
use crate::config::Stream;
use crate::frame::PacketGen;
use wirespeed::mbuf::{Burst, Mempool};

pub struct RawSource {
    gen: PacketGen,
}

impl RawSource {
    /// Builds the stream's frames and writes the template into every buffer
    /// of `pool` (the mbuf keeps its frame across recycles).
    pub fn new(
        st: &Stream,
        sender_id: u8,
        offload: bool,
        pool: &mut Mempool,
    ) -> Result<RawSource, String> {
        let gen = PacketGen::new(st, sender_id, offload);
        let t = gen.template.clone();
        pool.init_all(|m| {
            let _ = m.extend_from_slice(&t);
        })
        .map_err(|e| e.to_string())?;
        Ok(RawSource { gen })
    }

    /// Fills `out` with up to `want` frames the pacer admits.
    pub fn fill(&mut self, cx: &mut FillCx, want: usize, out: &mut Burst) {
        let g = &mut self.gen;
        let n = want.min(FILL_MAX);
        if cx.pacer.is_unpaced() && g.is_static() {
            // Line rate, nothing varies: the prebuilt frames only need their
            // length (testpmd txonly's loop, minus the copy).
            if !cx.pool.alloc_bulk_len(out, n, g.static_len()) {
                *cx.alloc_failures += 1;
            }
        } else if cx.pacer.is_unpaced() && g.fills_bursts() {
            // Line rate, no size to draw per packet: the whole burst in one pass.
            // A fixed size is set as the buffers are taken (one pass less).
            let taken = match g.fixed_len() {
                Some(len) => cx.pool.alloc_bulk_len(out, n, len),
                None => cx.pool.alloc_bulk(out, n),
            };
            if taken {
                // A fresh TSC only for frames that carry it (a latency
                // stamp); a TSC read costs tens of cycles on a VM.
                let tsc = if g.stamps() { cx.tsc.now() } else { cx.now };
                g.fill_burst(out.as_mut_slice(), tsc);
            } else {
                *cx.alloc_failures += 1;
            }
        } else {
            self.fill_paced(cx, n, out);
        }
    }

    /// Each admitted packet is charged its own size.
    fn fill_paced(&mut self, cx: &mut FillCx, want: usize, out: &mut Burst) {
        let g = &mut self.gen;
        let mut sizes = [0u32; FILL_MAX];
        let mut n = 0;
        while n < want && cx.pacer.admit(cx.now, g.peek_size()) {
            sizes[n] = g.take_size();
            n += 1;
        }
        if n == 0 {
            return;
        }
        if cx.pool.alloc_bulk(out, n) {
            let ts = if g.is_static() { cx.now } else { cx.tsc.now() };
            for (m, &z) in out.as_mut_slice().iter_mut().zip(&sizes[..n]) {
                g.fill_sized(m, z, ts);
            }
        } else {
            // Out of buffers: the admitted packets are owed, not lost; they
            // are built on a later round.
            cx.pacer.refund(&sizes[..n]);
            *cx.alloc_failures += 1;
        }
    }
}
