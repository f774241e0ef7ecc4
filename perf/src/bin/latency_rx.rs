//! The receive half of latency measurement on its own, in cycles per
//! packet: what `wirespeed gen` does for every returned latency frame —
//! find and parse the header, TSC → ns, one HdrHistogram record, one exact
//! sequence record (`gen::measure::LatencyRx::record`).
//!
//! Frames come from the generator's own latency burst path (valid headers,
//! increasing sequence numbers), built in chunks outside the timed loop;
//! each chunk is recorded under the TSC. The best of several rounds is
//! reported, beside the per-packet goal of 12 cycles.
//!
//! Usage: `cargo run --release -p wirespeed-perf --bin latency_rx [-- --packets N --rounds R --core C]`

use wirespeed::eal::tsc::Tsc;
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};
use wirespeed_apps::config::Config;
use wirespeed_apps::frame::PacketGen;
use wirespeed_apps::gen::measure::LatencyRx;

const CHUNK: usize = 4096;
const BURST: usize = 32;
const FRAME: usize = 60;
const GOAL: f64 = 12.0;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), String> {
    let packets = arg("--packets", 4_000_000);
    let rounds = arg("--rounds", 5);
    let core = arg("--core", 1) as usize;
    core_affinity::set_for_current(core_affinity::CoreId { id: core });
    wirespeed::eal::dma::set_page_mode(wirespeed::eal::PageMode::Small);
    let cfg = Config::parse(
        "[[port]]\nspec = \"null\"\n[[stream]]\nsize = 64\nlatency = true\n",
        "latency_rx",
    )
    .map_err(|e| e.to_string())?;
    let stream = cfg.validate().map_err(|e| e.to_string())?.remove(0);
    let mut gen = PacketGen::new(&stream, 0, false);
    let mut pool = Mempool::new(&PoolConfig {
        size: 2 * BURST as u32,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let t = gen.template.clone();
    pool.init_all(|m| {
        let _ = m.extend_from_slice(&t);
    })
    .map_err(|e| e.to_string())?;
    let tsc = Tsc::global();
    let mut frames = vec![[0u8; FRAME]; CHUNK];
    let mut best = f64::MAX;
    let mut worst: f64 = 0.0;
    for _ in 0..rounds {
        let mut rx = LatencyRx::new(vec![true], tsc);
        let (mut cycles, mut done) = (0u64, 0u64);
        while done < packets {
            // Build a chunk of stamped frames (not timed).
            for block in frames.chunks_mut(BURST) {
                let mut b = Burst::new();
                if !pool.alloc_bulk(&mut b, block.len()) {
                    return Err("pool ran dry".into());
                }
                gen.fill_burst(b.as_mut_slice(), tsc.now());
                for (f, m) in block.iter_mut().zip(b.iter()) {
                    f.copy_from_slice(&m.data()[..FRAME]);
                }
            }
            // Record it as the RX path does: one TSC read per burst.
            let t0 = tsc.now();
            for burst in frames.chunks(BURST) {
                let now = tsc.now();
                for f in burst {
                    std::hint::black_box(rx.record(f, now));
                }
            }
            cycles += tsc.now() - t0;
            done += CHUNK as u64;
        }
        if rx.received != done {
            return Err(format!("recorded {} of {done}", rx.received));
        }
        let cpp = cycles as f64 / done as f64;
        best = best.min(cpp);
        worst = worst.max(cpp);
    }
    println!(
        "latency RX (parse, TSC→ns, histogram, sequence), 64 B, core {core}: best {best:.1} cycles/packet (worst round {worst:.1}); goal ≤ {GOAL}: {}",
        if best <= GOAL { "met" } else { "not met" }
    );
    Ok(())
}
