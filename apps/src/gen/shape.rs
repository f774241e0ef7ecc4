//! Traffic shapes on top of a sender's rate (TRex's `STLTXSingleBurst`,
//! `STLTXMultiBurst` and on/off streams): bursts of N packets with a gap
//! between them, a number of bursts, and on/off windows. The pacer still
//! spaces the packets inside a burst or an on window at the stream's rate
//! (line rate: back to back); the shape only says when the sender may send
//! and how much.

/// A sender's shape, in TSC cycles.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Packets per burst (0: no bursts).
    burst: u64,
    /// Bursts to send (0: until the stream ends otherwise).
    bursts: u64,
    /// Idle time after each burst.
    gap: u64,
    /// On/off windows from the sender's start (0: always on).
    on: u64,
    off: u64,
    in_burst: u64,
    bursts_done: u64,
    resume_at: u64,
}

impl Shape {
    /// `burst` packets per burst (this sender's share), `bursts` of them,
    /// `gap_ns` between; `on_ns`/`off_ns` windows.
    pub fn new(burst: u64, bursts: u64, gap_ns: u64, on_ns: u64, off_ns: u64, hz: u64) -> Shape {
        let cyc = |ns: u64| (ns as u128 * hz as u128 / 1_000_000_000) as u64;
        Shape {
            burst,
            bursts,
            gap: cyc(gap_ns),
            on: cyc(on_ns),
            off: cyc(off_ns),
            in_burst: 0,
            bursts_done: 0,
            resume_at: 0,
        }
    }

    /// Every burst asked for went out.
    #[inline]
    pub fn finished(&self) -> bool {
        self.burst > 0 && self.bursts != 0 && self.bursts_done >= self.bursts
    }

    /// No shape: the sender sends whenever its pacer allows.
    pub fn is_none(&self) -> bool {
        self.burst == 0 && self.on == 0
    }

    /// Packets the shape lets go at `now` (0: wait; `u64::MAX`: no limit).
    #[inline]
    pub fn allow(&self, now: u64, start: u64) -> u64 {
        if now < self.resume_at || self.finished() {
            return 0;
        }
        if self.on > 0 {
            let phase = now.saturating_sub(start) % (self.on + self.off);
            if phase >= self.on {
                return 0;
            }
        }
        if self.burst > 0 {
            self.burst - self.in_burst
        } else {
            u64::MAX
        }
    }

    /// Counts `n` packets sent at `now`; true when the last burst is done.
    #[inline]
    pub fn sent(&mut self, n: u64, now: u64) -> bool {
        if self.burst == 0 || n == 0 {
            return false;
        }
        self.in_burst += n;
        if self.in_burst < self.burst {
            return false;
        }
        self.in_burst = 0;
        self.bursts_done += 1;
        self.resume_at = now.saturating_add(self.gap);
        self.bursts != 0 && self.bursts_done >= self.bursts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_gaps_and_windows() {
        // 1 GHz: cycles = ns. 3 bursts of 10, 100 ns apart.
        let mut s = Shape::new(10, 3, 100, 0, 0, 1_000_000_000);
        assert_eq!(s.allow(0, 0), 10);
        assert!(!s.sent(4, 0));
        assert_eq!(s.allow(1, 0), 6);
        assert!(!s.sent(6, 5));
        assert_eq!(s.allow(50, 0), 0, "in the gap");
        assert_eq!(s.allow(105, 0), 10);
        assert!(!s.sent(10, 110));
        assert!(s.sent(10, 300), "the third burst ends it");
        assert!(s.finished());
        assert_eq!(s.allow(10_000, 0), 0, "nothing after the last burst");
        // On 30, off 70: windows from the start.
        let w = Shape::new(0, 0, 0, 30, 70, 1_000_000_000);
        assert_eq!(w.allow(1010, 1000), u64::MAX);
        assert_eq!(w.allow(1040, 1000), 0);
        assert_eq!(w.allow(1105, 1000), u64::MAX);
        assert!(Shape::new(0, 0, 0, 0, 0, 1).is_none());
    }
}
