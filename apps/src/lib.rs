//! The `wirespeed` CLI's library half: the traffic generator (`gen`), its
//! configuration, frame building and latency header, and the device tools.
//! The binary (`src/main.rs`) is the command line over it; benchmarks under
//! `perf/` use the same code.

pub mod bench;
pub mod config;
pub mod ctl;
pub mod devtools;
pub mod doctor;
pub mod frame;
pub mod gen;
pub mod latency;
pub mod netconf;
pub mod stats;

use wirespeed::ethdev::Registry;

/// The device `wirespeed gen` uses when neither a config nor --port names one.
pub const DEFAULT_PORT: &str = "ice-model";

/// Every driver this binary knows.
pub fn registry() -> Registry {
    let mut reg = Registry::with_builtins();
    pmd_igb::register(&mut reg);
    pmd_ice::register(&mut reg);
    reg
}
