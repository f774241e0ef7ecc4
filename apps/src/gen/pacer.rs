//! TSC-deadline pacing (accurate by construction): each sender keeps the TSC
//! time at which its next packet is due and advances it by that packet's cost,
//! so the rate holds for any mix of sizes. Costs are kept in 1/2^16-cycle fixed
//! point, so rounding never drifts the rate.

use crate::config::Rate;

/// What one packet costs.
#[derive(Debug, Clone, Copy)]
enum Cost {
    /// Unpaced (line rate).
    None,
    /// Fixed cycles per packet (pps targets), 16.16 fixed point.
    PerPacket(u64),
    /// Cycles per byte of wire size, 16.16 fixed point, plus bytes of overhead
    /// per frame (0 for L2 with FCS, 20 for L1).
    PerByte { per_byte: u64, overhead: u64 },
}

/// A per-queue pacer.
#[derive(Debug, Clone)]
pub struct Pacer {
    cost: Cost,
    /// Next deadline in 16.16 fixed-point cycles.
    next: u128,
    /// How far behind the pacer may fall before it stops catching up (cycles).
    max_lag: u64,
}

const FP: u32 = 16;

impl Pacer {
    /// A pacer for `share` of `rate` (share = 1/number of senders), given the
    /// TSC frequency and the port's line rate in bit/s (for "%" targets).
    pub fn new(rate: &Rate, share: f64, hz: u64, line_bps: u64, start_tsc: u64) -> Pacer {
        let hz = hz as f64;
        let cost = match *rate {
            Rate::Line => Cost::None,
            Rate::Pps(p) => Cost::PerPacket(((hz / (p * share)) * (1u64 << FP) as f64) as u64),
            Rate::Bps { bps, l1 } => Cost::PerByte {
                per_byte: ((hz * 8.0 / (bps * share)) * (1u64 << FP) as f64) as u64,
                overhead: if l1 { 20 } else { 0 },
            },
            Rate::Percent(p) => Cost::PerByte {
                per_byte: ((hz * 8.0 / (line_bps as f64 * p / 100.0 * share)) * (1u64 << FP) as f64)
                    as u64,
                overhead: 20,
            },
        };
        Pacer {
            cost,
            next: (start_tsc as u128) << FP,
            max_lag: (hz * 0.05) as u64,
        }
    }

    /// True when the pacer never holds a packet back (rate "line").
    #[inline(always)]
    pub fn is_unpaced(&self) -> bool {
        matches!(self.cost, Cost::None)
    }

    /// Whether the next packet is due at `now` (nothing is charged).
    #[inline(always)]
    pub fn due(&self, now: u64) -> bool {
        matches!(self.cost, Cost::None) || self.next <= (now as u128) << FP
    }

    /// While the stream's shape holds it back (a burst gap, an off
    /// window), time does not count as credit: the next packet is due no
    /// earlier than `now`, so the rate holds inside each window instead of
    /// the idle time being caught up at its start.
    #[inline]
    pub fn hold(&mut self, now: u64) {
        let n = (now as u128) << FP;
        if self.next < n {
            self.next = n;
        }
    }

    /// Gives back the cost of packets admitted but not sent (no buffers).
    pub fn refund(&mut self, wires: &[u32]) {
        for &w in wires {
            let c = match self.cost {
                Cost::None => return,
                Cost::PerPacket(c) => c as u128,
                Cost::PerByte { per_byte, overhead } => {
                    per_byte as u128 * (w as u64 + overhead) as u128
                }
            };
            self.next = self.next.saturating_sub(c);
        }
    }

    /// Whether a packet of `wire` bytes (with FCS) may go at `now`; if so its
    /// cost is charged.
    #[inline(always)]
    pub fn admit(&mut self, now: u64, wire: u32) -> bool {
        let c = match self.cost {
            Cost::None => return true,
            Cost::PerPacket(c) => c as u128,
            Cost::PerByte { per_byte, overhead } => {
                per_byte as u128 * (wire as u64 + overhead) as u128
            }
        };
        let now_fp = (now as u128) << FP;
        if self.next > now_fp {
            return false;
        }
        // Fell far behind (the port could not take the rate): do not burst
        // to catch up more than max_lag.
        let floor = now_fp.saturating_sub((self.max_lag as u128) << FP);
        if self.next < floor {
            self.next = floor;
        }
        self.next += c;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pps_pacing_is_exact_over_time() {
        let hz = 2_000_000_000;
        let mut p = Pacer::new(&Rate::Pps(1_000_000.0), 1.0, hz, 0, 0);
        // Over one simulated second, polled every 100 cycles.
        let mut n = 0u64;
        let mut t = 0;
        while t < hz {
            while p.admit(t, 64) {
                n += 1;
            }
            t += 100;
        }
        assert!(n.abs_diff(1_000_000) <= 1, "{n}");
    }

    #[test]
    fn bit_rate_pacing_counts_l1_overhead_and_mixed_sizes() {
        let hz = 1_000_000_000;
        // 10 Gbit/s L1 with 64-byte frames = 14.88 Mpps.
        let mut p = Pacer::new(
            &Rate::Bps {
                bps: 1e10,
                l1: true,
            },
            1.0,
            hz,
            0,
            0,
        );
        let mut n = 0u64;
        let mut bits = 0u64;
        let sizes = [64u32, 594, 1518];
        let mut t = 0;
        while t < hz {
            loop {
                let s = sizes[(n % 3) as usize];
                if !p.admit(t, s) {
                    break;
                }
                bits += (s as u64 + 20) * 8;
                n += 1;
            }
            t += 50;
        }
        let err = (bits as f64 - 1e10).abs() / 1e10;
        assert!(err < 0.001, "{bits} bits, err {err}");
    }

    #[test]
    fn shares_sum_to_the_target() {
        let hz = 1_000_000_000;
        let mut a = Pacer::new(&Rate::Percent(50.0), 0.5, hz, 10_000_000_000, 0);
        let mut b = Pacer::new(&Rate::Percent(50.0), 0.5, hz, 10_000_000_000, 0);
        let (mut na, mut nb) = (0u64, 0u64);
        let mut t = 0;
        while t < hz / 10 {
            while a.admit(t, 64) {
                na += 1;
            }
            while b.admit(t, 64) {
                nb += 1;
            }
            t += 100;
        }
        let total = (na + nb) as f64 * 10.0;
        let want = 0.5 * 1e10 / (84.0 * 8.0);
        assert!((total - want).abs() / want < 0.001, "{total} vs {want}");
    }

    #[test]
    fn catch_up_is_bounded() {
        let hz = 1_000_000_000;
        let mut p = Pacer::new(&Rate::Pps(1e6), 1.0, hz, 0, 0);
        // Stalled for a whole second: at most max_lag worth of packets burst out.
        let mut n = 0;
        while p.admit(hz, 64) {
            n += 1;
        }
        assert!(n <= 50_001, "{n}");
        assert!(
            Pacer::new(&Rate::Line, 1.0, hz, 0, 0).admit(0, 64),
            "line rate is never held back"
        );
    }
}
