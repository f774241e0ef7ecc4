//! The SACK scoreboard (RFC 2018 blocks, RFC 6675 loss detection) on the
//! retransmit queue: `tcp_sacktag_write_queue` marks what the peer holds,
//! `tcp_mark_head_lost` / RFC 6675 `IsLost` marks what is lost, and for
//! peers without SACK the NewReno emulation (`tcp_add_reno_sack`,
//! `tcp_remove_reno_sacks`).

use super::wire::{after, before};
use super::{Tcb, LOST, RETRANS, SACKED};

/// `DupThresh` (RFC 6675 §2; Linux's initial `tp->reordering`, 3).
pub(crate) const DUP_THRESH: u32 = 3;

impl Tcb {
    /// Plays the part of `tcp_sacktag_write_queue`: every retransmit-queue
    /// skb wholly inside a valid SACK block (above snd_una, not beyond
    /// snd_nxt: `tcp_is_sackblock_valid`; D-SACKs below snd_una are
    /// ignored) becomes SACKED; a SACKED skb is no longer LOST or in
    /// retransmission. Returns the skbs newly SACKed.
    pub fn sacktag(&mut self, blocks: &[(u32, u32)]) -> u32 {
        let mut newly = 0;
        for &(start, end) in blocks {
            if !after(end, start) || before(start, self.snd_una) || after(end, self.snd_nxt) {
                continue;
            }
            for k in 0..self.send_head {
                let s = &mut self.wq[k];
                if !after(s.end_seq, start) {
                    continue;
                }
                if after(s.end_seq, end) {
                    break;
                }
                if before(s.seq, start) || s.sacked & SACKED != 0 {
                    continue;
                }
                if s.sacked & LOST != 0 {
                    self.lost_out -= 1;
                }
                if s.sacked & RETRANS != 0 {
                    self.retrans_out -= 1;
                }
                s.sacked = (s.sacked & !(LOST | RETRANS)) | SACKED;
                self.sacked_out += 1;
                newly += 1;
            }
        }
        newly
    }

    /// RFC 6675 §4 `IsLost` over the queue (Linux's `tcp_mark_head_lost` /
    /// `tcp_update_scoreboard` with FACK-free counting): an un-SACKed skb
    /// with at least `DupThresh` SACKed skbs above it is LOST. Returns the
    /// skbs newly marked.
    pub fn update_scoreboard(&mut self) -> u32 {
        let mut above = 0;
        let mut newly = 0;
        for k in (0..self.send_head).rev() {
            let s = &mut self.wq[k];
            if s.sacked & SACKED != 0 {
                above += 1;
            } else if above >= DUP_THRESH && s.sacked & LOST == 0 {
                s.sacked |= LOST;
                // A segment already retransmitted and lost again is sent again.
                if s.sacked & RETRANS != 0 {
                    s.sacked &= !RETRANS;
                    self.retrans_out -= 1;
                }
                self.lost_out += 1;
                newly += 1;
            }
        }
        newly
    }

    /// Marks the first un-SACKed skb LOST (`tcp_mark_head_lost(sk, 1)`):
    /// what fast retransmit resends, and NewReno's partial-ACK rule
    /// (RFC 6582 §3.2 step 3).
    pub fn mark_head_lost(&mut self) -> bool {
        for k in 0..self.send_head {
            let s = &mut self.wq[k];
            if s.sacked & SACKED != 0 {
                continue;
            }
            if s.sacked & LOST != 0 {
                return false;
            }
            s.sacked |= LOST;
            if s.sacked & RETRANS != 0 {
                s.sacked &= !RETRANS;
                self.retrans_out -= 1;
            }
            self.lost_out += 1;
            return true;
        }
        false
    }

    /// `tcp_add_reno_sack`: without SACK, each duplicate ACK stands for one
    /// segment that left the network.
    pub fn add_reno_sack(&mut self) {
        if self.sacked_out + 1 < self.packets_out {
            self.sacked_out += 1;
        }
    }

    /// `tcp_remove_reno_sacks`: a cumulative ACK of `acked` segments takes
    /// the duplicate-ACK credits (all but one) back.
    pub fn remove_reno_sacks(&mut self, acked: u32) {
        if acked > 0 {
            self.sacked_out = self.sacked_out.saturating_sub(acked - 1);
        }
        self.sacked_out = self.sacked_out.min(self.packets_out.saturating_sub(1));
    }
}
