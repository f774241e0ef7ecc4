//! Time-stamp counter clock: calibrated cycles ↔ nanoseconds with a cheap
//! `now()` for the fast path (like DPDK's `rte_rdtsc()` / `rte_get_tsc_hz()`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Reads the raw cycle counter. On x86_64 this is `rdtsc`; elsewhere a
/// monotonic nanosecond clock stands in (1 "cycle" = 1 ns).
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` has no memory effects and is available on every x86_64 CPU.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        fallback_ns()
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn fallback_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A calibrated TSC clock. Copyable; all lcores share the same calibration.
#[derive(Debug, Clone, Copy)]
pub struct Tsc {
    hz: u64,
    /// ns per cycle in 32.32 fixed point, so `cycles_to_ns` is a multiply and a shift.
    ns_per_cycle_fp: u64,
}

static GLOBAL: OnceLock<Tsc> = OnceLock::new();

impl Tsc {
    /// The process-wide clock, calibrated once (about 20 ms) on first use.
    pub fn global() -> Tsc {
        *GLOBAL.get_or_init(|| Tsc::calibrate(Duration::from_millis(20)))
    }

    /// Calibrate the counter against the OS monotonic clock over `window`.
    pub fn calibrate(window: Duration) -> Tsc {
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = window;
            return Tsc::from_hz(1_000_000_000);
        }
        #[cfg(target_arch = "x86_64")]
        {
            let t0 = Instant::now();
            let c0 = rdtsc();
            while t0.elapsed() < window {
                std::hint::spin_loop();
            }
            let c1 = rdtsc();
            let ns = t0.elapsed().as_nanos() as u64;
            let cycles = c1.wrapping_sub(c0).max(1);
            Tsc::from_hz((cycles as u128 * 1_000_000_000 / ns.max(1) as u128) as u64)
        }
    }

    /// A clock with a known frequency (tests, replay).
    pub fn from_hz(hz: u64) -> Tsc {
        let hz = hz.max(1);
        Tsc {
            hz,
            ns_per_cycle_fp: ((1_000_000_000u128 << 32).div_ceil(hz as u128)) as u64,
        }
    }

    /// Cycles per second.
    pub fn hz(&self) -> u64 {
        self.hz
    }

    /// The current cycle count (cheap: one `rdtsc`).
    #[inline(always)]
    pub fn now(&self) -> u64 {
        rdtsc()
    }

    /// Converts a cycle count to nanoseconds.
    #[inline]
    pub fn cycles_to_ns(&self, cycles: u64) -> u64 {
        ((cycles as u128 * self.ns_per_cycle_fp as u128) >> 32) as u64
    }

    /// Converts nanoseconds to cycles.
    #[inline]
    pub fn ns_to_cycles(&self, ns: u64) -> u64 {
        (ns as u128 * self.hz as u128 / 1_000_000_000) as u64
    }

    /// Nanoseconds since an arbitrary origin (the counter's zero).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.cycles_to_ns(self.now())
    }
}

/// Wall-clock nanoseconds since the Unix epoch (for pcap timestamps).
pub fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        let t = Tsc::from_hz(2_500_000_000);
        assert_eq!(t.cycles_to_ns(2_500_000_000), 1_000_000_000);
        assert_eq!(t.ns_to_cycles(1_000), 2_500);
        assert!(
            t.cycles_to_ns(t.ns_to_cycles(123_456_789))
                .abs_diff(123_456_789)
                <= 1
        );
    }

    #[test]
    fn calibrated_clock_is_monotonic_and_plausible() {
        let t = Tsc::global();
        assert!(t.hz() > 10_000_000, "hz {}", t.hz());
        let a = t.now();
        let b = t.now();
        assert!(b >= a);
    }
}
