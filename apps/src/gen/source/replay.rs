//! pcap replay: the file's frames in order, looped, at their original gaps
//! (`timing = "original"`) or as fast as the pacer admits.

use super::FillCx;
use crate::config::{Stream, Timing};
use std::sync::Arc;
use wirespeed::ethdev::pcap::{copy_into_chain, PcapRecord};
use wirespeed::mbuf::Burst;

pub struct ReplaySource {
    frames: Arc<Vec<PcapRecord>>,
    next: usize,
    loops_done: u32,
    /// Loops to play (0 = until the count or duration ends it).
    loops: u32,
    /// TSC at which the current loop's first frame is due (0 = not begun).
    loop_start: u64,
    span_cycles: u64,
    original: bool,
}

impl ReplaySource {
    pub fn new(
        st: &Stream,
        frames: Arc<Vec<PcapRecord>>,
        tsc: wirespeed::eal::Tsc,
    ) -> ReplaySource {
        let span_ns = match (frames.first(), frames.last()) {
            (Some(a), Some(b)) => b.ts_ns.saturating_sub(a.ts_ns),
            _ => 0,
        };
        // A loop lasts the file's span plus one mean gap.
        let gap = match frames.len() as u64 {
            0 | 1 => 0,
            n => span_ns / (n - 1),
        };
        ReplaySource {
            frames,
            next: 0,
            loops_done: 0,
            loops: st.loops,
            loop_start: 0,
            span_cycles: tsc.ns_to_cycles(span_ns + gap),
            original: st.timing == Timing::Original,
        }
    }

    /// The stream was paused for `cycles`: the frames' original gaps
    /// resume where they stopped instead of catching up the pause.
    pub fn delay(&mut self, cycles: u64) {
        if self.loop_start != 0 {
            self.loop_start += cycles;
        }
    }

    /// Copies the frames that are due into `out` (up to `want`).
    pub fn fill(&mut self, cx: &mut FillCx, want: usize, out: &mut Burst) {
        if self.loop_start == 0 {
            self.loop_start = cx.start;
        }
        let base_ns = self.frames.first().map_or(0, |f| f.ts_ns);
        while out.len() < want {
            if self.loops != 0 && self.loops_done >= self.loops {
                *cx.remaining = 0;
                break;
            }
            let f = &self.frames[self.next];
            if self.original {
                let due = self.loop_start + cx.tsc.ns_to_cycles(f.ts_ns.saturating_sub(base_ns));
                if cx.now < due {
                    break;
                }
            }
            if !cx.pacer.admit(cx.now, f.data.len() as u32 + 4) {
                break;
            }
            let Some(m) = copy_into_chain(cx.pool, &f.data) else {
                *cx.alloc_failures += 1;
                break;
            };
            let _ = out.push(m);
            self.next += 1;
            if self.next == self.frames.len() {
                self.next = 0;
                self.loops_done += 1;
                self.loop_start += self.span_cycles;
            }
        }
    }
}
