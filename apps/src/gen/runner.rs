//! One `wirespeed gen` run: plan → launch → summarize → outputs.

use super::launch::{launch, Outcome};
use super::measure::{latency_histogram, HlogWriter, Series};
use super::plan::RunPlan;
use super::report::{self, Summary};
use super::{GenArgs, GenError};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::SystemTime;
use wirespeed::ethdev::Registry;

pub(super) fn run(args: &GenArgs, registry: &Registry) -> Result<Summary, GenError> {
    let mut plan = RunPlan::build(args, registry)?;
    let wall_start = SystemTime::now();
    let out = launch(&mut plan, args)?;
    let mut summary = report::summarize(&plan, &out);
    // A run an lcore ended (ARP unanswered, a stalled queue) still reports
    // what it did; the reason comes first among the failures (exit 1).
    if let Some(e) = out.report.lcores.iter().find_map(|l| l.app.error.clone()) {
        summary.failures.insert(0, e);
    }
    if let Some(path) = &args.hlog {
        let bytes = hlog(&plan, &out, wall_start)?;
        wirespeed::eal::file::write_nofollow(path, &bytes)
            .map_err(|e| GenError::Run(format!("--hlog {}: {e}", path.display())))?;
    }
    if let Some(path) = &args.plot {
        let series: Vec<Series> = out.mon.series();
        let svg = super::measure::svg_plot(&summary.latency_hists, &series);
        wirespeed::eal::file::write_nofollow(path, svg.as_bytes())
            .map_err(|e| GenError::Run(format!("--plot {}: {e}", path.display())))?;
    }
    Ok(summary)
}

/// The HdrHistogram interval log: the lcores' intervals of each stream
/// merged per second of the run.
fn hlog(plan: &RunPlan, out: &Outcome, wall_start: SystemTime) -> Result<Vec<u8>, GenError> {
    let tsc = out.tsc;
    let mut intervals: Vec<_> = out.lat_intervals.iter().collect();
    intervals.sort_by_key(|l| l.start_tsc);
    let mut merged: BTreeMap<(u64, usize), (u64, Histogram<u64>)> = BTreeMap::new();
    for li in intervals {
        let sec = tsc.cycles_to_ns(li.start_tsc.saturating_sub(out.start_tsc)) / 1_000_000_000;
        let e = merged
            .entry((sec, li.stream))
            .or_insert_with(|| (li.end_tsc, latency_histogram()));
        e.0 = e.0.max(li.end_tsc);
        let _ = e.1.add(&li.hist);
    }
    let mut w = HlogWriter::new(wall_start);
    for ((sec, si), (end, h)) in merged {
        let start_s = sec as f64;
        let end_s = tsc.cycles_to_ns(end.saturating_sub(out.start_tsc)) as f64 / 1e9;
        w.interval(
            &plan.streams[si].name,
            start_s,
            (end_s - start_s).max(1e-3),
            &h,
        )
        .map_err(|e| GenError::Run(format!("--hlog: {e}")))?;
    }
    Ok(w.into_bytes())
}
