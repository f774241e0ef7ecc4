//! Shared helpers for wirespeed's benchmark binaries (`perf/src/bin/*`).

use wirespeed::eal::Tsc;

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
