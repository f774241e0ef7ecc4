//! A stream the control socket steered (rate changes, pauses, a stop):
//! what its target was over its active time, so the summary compares
//! what it delivered with what it was asked for then — the time-weighted
//! mean of its targets, paused time counting as 0 — and lists the changes.

use super::control::{Change, ControlEvent};
use super::plan::{mean_wire, RunPlan};
use crate::config::Stream;
use wirespeed::eal::Tsc;

/// The changes to stream `s`, as text ("1.20 s: rate 5.000 kpps").
pub fn changes(s: &Stream, events: &[ControlEvent], start_tsc: u64, tsc: Tsc) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.stream == s.index)
        .map(|e| {
            let t = tsc.cycles_to_ns(e.tsc.saturating_sub(start_tsc)) as f64 / 1e9;
            let what = match &e.change {
                Change::Rate(r) => format!("rate {}", r.describe()),
                Change::Pause => "paused".into(),
                Change::Resume => "resumed".into(),
                Change::Stop => "stopped".into(),
                Change::Start => "started".into(),
            };
            format!("{t:.2} s: {what}")
        })
        .collect()
}

/// The mean target (pps) of stream `s` over its active span `[first,
/// last]` (TSC) given the control changes; None when some part of it had
/// no packet target (line rate, a shape or profile).
pub fn mean_target(
    s: &Stream,
    plan: &RunPlan,
    events: &[ControlEvent],
    first: u64,
    last: u64,
) -> Option<f64> {
    let mut rate = plan.targets[s.index]?;
    if last <= first {
        return Some(rate);
    }
    let pp = &plan.ports[s.port];
    let mean = mean_wire(s, pp.mtu);
    let (mut t, mut paused, mut area) = (first, false, 0.0f64);
    for e in events.iter().filter(|e| e.stream == s.index) {
        let te = e.tsc.clamp(first, last);
        if !paused {
            area += (te - t) as f64 * rate;
        }
        t = te;
        match &e.change {
            Change::Rate(r) => rate = r.pps(mean, pp.info.line_rate_bps)?,
            Change::Pause | Change::Stop => paused = true,
            Change::Resume | Change::Start => paused = false,
        }
    }
    if !paused {
        area += (last - t) as f64 * rate;
    }
    Some(area / (last - first) as f64)
}
