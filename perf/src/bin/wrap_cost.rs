//! Cost of a port wrapper that has nothing to do (`fault` with no fault
//! configured, `trace` with debug logging off) on the driver path.
//!
//! One thread, the `null` port, 64-byte frames prebuilt in the mempool
//! (`Mempool::init_all`). Each step is the driver half of a poll: allocate a
//! burst of 32, `tx_burst`, `clean` — what the runtime does per burst minus
//! the netdev layer, so the wrapper's share is not hidden by it. The modes
//! are interleaved over several rounds in the same process, and each mode's
//! best round is compared with the best round of bare `null`.
//!
//! Usage: `cargo run --release -p wirespeed-perf --bin wrap_cost [-- --secs S --rounds N --core C]`

use wirespeed::eal::tsc::Tsc;
use wirespeed::ethdev::{PortConfig, Registry, TxQueue};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};

const FRAME: usize = 64;
const BURST: usize = 32;
/// Extra cycles per packet a wrapper with nothing to do may cost.
const TARGET: f64 = 3.0;

const MODES: [&str; 4] = ["null", "fault+null", "trace+null", "trace+fault+null"];

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Cycles per packet of one timed run of `spec`.
fn run_once(reg: &Registry, spec: &str, pool: &mut Mempool, secs: f64) -> Result<f64, String> {
    let mut port = reg.open(spec).map_err(|e| e.to_string())?;
    port.configure(&PortConfig::default())
        .map_err(|e| e.to_string())?;
    let mut tx: Box<dyn TxQueue> = port.tx_queue(0).map_err(|e| e.to_string())?;
    port.start().map_err(|e| e.to_string())?;
    let mut b = Burst::new();
    let m = wirespeed_perf::run_for(secs, || {
        if !pool.alloc_bulk(&mut b, BURST) {
            return 0;
        }
        for m in b.as_mut_slice() {
            let _ = m.set_len(FRAME);
        }
        let n = tx.tx_burst(&mut b) as u64;
        b.clear();
        tx.clean(256);
        n
    });
    drop(tx);
    port.stop().map_err(|e| e.to_string())?;
    if pool.stats().in_use != 0 {
        return Err(format!(
            "{spec}: {} buffers not returned",
            pool.stats().in_use
        ));
    }
    Ok(m.cycles_per_packet())
}

fn main() {
    let secs = arg("--secs", 0.5);
    let rounds = arg("--rounds", 7.0).max(1.0) as usize;
    let core = arg("--core", 0.0) as usize;
    wirespeed::eal::dma::set_page_mode(wirespeed::eal::dma::PageMode::Small);
    wirespeed_perf::pin(core);
    let reg = Registry::with_builtins();
    let mut pool = Mempool::new(&PoolConfig {
        name: "wrap-cost".into(),
        size: 4096,
        ..Default::default()
    })
    .expect("mempool");
    let tmpl = wirespeed_perf::frame_template::<FRAME>();
    pool.init_all(|m| {
        let _ = m.extend_from_slice(&tmpl);
    })
    .expect("init_all");
    println!(
        "wrap_cost: {FRAME}-byte frames, burst {BURST}, alloc + tx_burst + clean on core {core}, {rounds} rounds x {secs}s per mode, TSC {:.3} GHz",
        Tsc::global().hz() as f64 / 1e9
    );
    let mut best = [f64::MAX; MODES.len()];
    for r in 0..rounds {
        for (i, spec) in MODES.iter().enumerate() {
            match run_once(&reg, spec, &mut pool, secs) {
                Ok(c) => {
                    println!("  round {r} {spec:<20} {c:>7.2} cycles/pkt");
                    best[i] = best[i].min(c);
                }
                Err(e) => {
                    eprintln!("wrap_cost: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
    println!();
    println!("{:<20} {:>10} {:>12}", "port", "cyc/pkt", "wrap cost");
    let mut ok = true;
    for (i, spec) in MODES.iter().enumerate() {
        let extra = best[i] - best[0];
        let layers = spec.matches('+').count() as f64;
        if layers > 0.0 && extra / layers > TARGET {
            ok = false;
        }
        println!("{spec:<20} {:>10.2} {:>+12.2}", best[i], extra);
    }
    println!();
    println!(
        "a wrapper with nothing to do costs <= {TARGET} cycles/packet (best vs best, per layer): {}",
        if ok { "PASS" } else { "FAIL" }
    );
}
