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

/// One change as the mean sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// A new target (pps).
    Rate(f64),
    /// Paused or stopped: the target is 0 until a `Go`.
    Hold,
    Go,
}

/// The time-weighted mean of the target over `[first, last]`, starting at
/// `rate0` and changed by `steps` (TSC, in order; times outside the span
/// count at its edges).
pub fn mean_over(rate0: f64, steps: &[(u64, Step)], first: u64, last: u64) -> f64 {
    if last <= first {
        return rate0;
    }
    let (mut rate, mut t, mut held, mut area) = (rate0, first, false, 0.0f64);
    for &(at, step) in steps {
        let te = at.clamp(first, last);
        if !held {
            area += (te - t) as f64 * rate;
        }
        t = te;
        match step {
            Step::Rate(r) => rate = r,
            Step::Hold => held = true,
            Step::Go => held = false,
        }
    }
    if !held {
        area += (last - t) as f64 * rate;
    }
    area / (last - first) as f64
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
    let rate0 = plan.targets[s.index]?;
    let pp = &plan.ports[s.port];
    let mean = mean_wire(s, pp.mtu);
    let mut steps = Vec::new();
    for e in events.iter().filter(|e| e.stream == s.index) {
        steps.push((
            e.tsc,
            match &e.change {
                Change::Rate(r) => Step::Rate(r.pps(mean, pp.info.line_rate_bps)?),
                Change::Pause | Change::Stop => Step::Hold,
                Change::Resume | Change::Start => Step::Go,
            },
        ));
    }
    Some(mean_over(rate0, &steps, first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_weighs_each_target_by_its_time_and_pauses_count_zero() {
        // 20 kpps for 10 ticks, then 5 kpps for 10.
        assert_eq!(mean_over(20e3, &[(10, Step::Rate(5e3))], 0, 20), 12.5e3);
        // Paused for the middle half.
        let s = [(5, Step::Hold), (15, Step::Go)];
        assert_eq!(mean_over(10e3, &s, 0, 20), 5e3);
        // A change before the span counts from its start; one after, never.
        assert_eq!(mean_over(1e3, &[(0, Step::Rate(2e3))], 10, 20), 2e3);
        assert_eq!(mean_over(1e3, &[(30, Step::Rate(2e3))], 10, 20), 1e3);
        assert_eq!(
            mean_over(7.0, &[], 5, 5),
            7.0,
            "an empty span: the start rate"
        );
    }
}
