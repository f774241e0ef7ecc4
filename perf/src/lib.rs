//! Shared helpers for wirespeed's benchmark binaries (`perf/src/bin/*`).

use wirespeed::eal::Tsc;

pub mod rss;

/// One measured figure: packets over a TSC-timed interval.
#[derive(Debug, Clone, Copy)]
pub struct Measurement {
    pub packets: u64,
    pub cycles: u64,
    pub hz: u64,
}

impl Measurement {
    /// Million packets per second.
    pub fn mpps(&self) -> f64 {
        if self.cycles == 0 {
            return 0.0;
        }
        self.packets as f64 * self.hz as f64 / self.cycles as f64 / 1e6
    }
    /// TSC cycles per packet.
    pub fn cycles_per_packet(&self) -> f64 {
        if self.packets == 0 {
            return 0.0;
        }
        self.cycles as f64 / self.packets as f64
    }
}

/// Runs `step` (which returns packets handled) repeatedly for `secs` seconds
/// and measures it with the TSC.
pub fn run_for(secs: f64, mut step: impl FnMut() -> u64) -> Measurement {
    let tsc = Tsc::global();
    let end = tsc.ns_to_cycles((secs * 1e9) as u64);
    let t0 = tsc.now();
    let mut packets = 0;
    loop {
        for _ in 0..64 {
            packets += step();
        }
        if tsc.now() - t0 >= end {
            break;
        }
    }
    Measurement {
        packets,
        cycles: tsc.now() - t0,
        hz: tsc.hz(),
    }
}

/// On-CPU nanoseconds of the calling thread (`CLOCK_THREAD_CPUTIME_ID`):
/// excludes the time other threads or processes held its core, so a
/// per-packet cost measured with it holds on a shared machine.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Pins the calling thread to `core` (benchmarks run on a fixed core).
pub fn pin(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}

/// Prints one row of a results table.
pub fn row(name: &str, m: &Measurement) {
    println!(
        "{:<44} {:>10.2} Mpps {:>10.1} cycles/packet",
        name,
        m.mpps(),
        m.cycles_per_packet()
    );
}

/// An `N`-byte IPv4/UDP frame (without FCS), 10.0.0.1:1024 → 10.0.0.2:9,
/// checksums zero: the benchmarks' raw frame (`N` ≥ 42).
pub fn frame_template<const N: usize>() -> [u8; N] {
    const { assert!(N >= 42) };
    let mut f = [0u8; N];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((N - 14) as u16).to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&1024u16.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&((N - 34) as u16).to_be_bytes());
    f
}
