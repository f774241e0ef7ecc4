//! Measurement: per-interval throughput histograms, per-packet latency
//! histograms with loss/duplicate/reorder accounting from sequence numbers,
//! HdrHistogram interval logs, and SVG plots.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt::Write as _;

/// Latency histograms: nanoseconds, 3 significant digits, up to 100 s.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("static bounds are valid")
}

/// Rate histograms (pps or bit/s samples), 3 significant digits, up to 10 Tbit/s.
pub fn rate_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000_000, 3).expect("static bounds are valid")
}

/// Sequence accounting for one sender (stream × sending lcore): every
/// sequence number seen once is `unique`; seen again is a duplicate; seen
/// after a higher one is reordered. A sliding bitmap of [`WINDOW`] numbers
/// keeps memory bounded; numbers older than the window are counted as `late`.
#[derive(Debug, Clone)]
pub struct SeqTracker {
    base: u64,
    bits: Vec<u64>,
    max_seen: Option<u64>,
    pub unique: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub late: u64,
}

/// Latency counts at the resolution of [`latency_histogram`] (3 significant
/// digits: unit buckets below 2048, then 1024 sub-buckets per power of two
/// — HdrHistogram's own bucket boundaries), one add per record. It is
/// merged into a `Histogram` when the interval closes: recording straight
/// into the `hdrhistogram` crate costs about 65 instructions a value.
pub struct FastHist {
    counts: Vec<u64>,
    total: u64,
}

/// Buckets up to the latency histogram's highest value (10^11 ns < 2^37).
const FAST_BUCKETS: usize = 2048 + 26 * 1024;

impl Default for FastHist {
    fn default() -> Self {
        FastHist {
            counts: vec![0; FAST_BUCKETS],
            total: 0,
        }
    }
}

impl FastHist {
    /// The bucket of `v`.
    #[inline(always)]
    fn index(v: u64) -> usize {
        if v < 2048 {
            v as usize
        } else {
            // v >> shift lands in 1024..2048.
            let shift = 63 - v.leading_zeros() - 10;
            2048 + (shift as usize - 1) * 1024 + ((v >> shift) as usize - 1024)
        }
    }

    /// The lowest value of bucket `i`.
    fn lowest(i: usize) -> u64 {
        if i < 2048 {
            i as u64
        } else {
            let k = i - 2048;
            ((k % 1024 + 1024) as u64) << (k / 1024 + 1)
        }
    }

    /// Counts `v` (values beyond the histogram's range are not counted,
    /// as the histogram would refuse them).
    #[inline(always)]
    pub fn record(&mut self, v: u64) {
        if let Some(c) = self.counts.get_mut(Self::index(v)) {
            *c += 1;
            self.total += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Moves every count into `h` and leaves this empty.
    pub fn drain_into(&mut self, h: &mut Histogram<u64>) {
        if self.total == 0 {
            return;
        }
        for (i, c) in self.counts.iter_mut().enumerate() {
            if *c > 0 {
                let _ = h.record_n(Self::lowest(i).max(1), *c);
                *c = 0;
            }
        }
        self.total = 0;
    }
}

/// The receive half of latency measurement, per lcore: for each stream an
/// interval histogram (ns) and for each of its senders an exact sequence
/// tracker. Per packet: the header parsed, TSC turned into ns, one
/// histogram record, one sequence record.
pub struct LatencyRx {
    tsc: wirespeed::eal::Tsc,
    /// Per stream: whether it carries latency headers.
    enabled: Vec<bool>,
    /// Per stream: this interval's latencies.
    pub interval: Vec<FastHist>,
    /// Per stream, per sender id: its sequence accounting.
    pub trackers: Vec<Vec<Option<SeqTracker>>>,
    /// Latency frames recorded.
    pub received: u64,
}

impl LatencyRx {
    /// For streams whose `enabled[i]` says they carry latency headers.
    pub fn new(enabled: Vec<bool>, tsc: wirespeed::eal::Tsc) -> LatencyRx {
        LatencyRx {
            tsc,
            interval: enabled.iter().map(|_| FastHist::default()).collect(),
            trackers: enabled
                .iter()
                .map(|&on| {
                    if on {
                        (0..=255).map(|_| None).collect()
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
            enabled,
            received: 0,
        }
    }

    /// Records `frame` received at TSC `now` when it carries the latency
    /// header of one of the streams; false (nothing recorded) otherwise.
    #[inline]
    pub fn record(&mut self, frame: &[u8], now: u64) -> bool {
        let Some(tag) = crate::latency::parse(frame) else {
            return false;
        };
        let si = tag.stream as usize;
        if !self.enabled.get(si).copied().unwrap_or(false) {
            return false;
        }
        let lat = self.tsc.cycles_to_ns(now.saturating_sub(tag.tx_tsc)).max(1);
        // One record per packet, into the interval histogram; it is added to
        // the run's total when the interval closes.
        self.interval[si].record(lat);
        if let Some(slot) = self.trackers[si].get_mut(tag.lcore as usize) {
            slot.get_or_insert_with(SeqTracker::default).record(tag.seq);
        }
        self.received += 1;
        true
    }
}

/// Sequence numbers tracked exactly around the newest one.
pub const WINDOW: u64 = 1 << 16;

impl Default for SeqTracker {
    fn default() -> Self {
        SeqTracker {
            base: 0,
            bits: vec![0; (WINDOW / 64) as usize],
            max_seen: None,
            unique: 0,
            duplicates: 0,
            reordered: 0,
            late: 0,
        }
    }
}

impl SeqTracker {
    #[inline]
    pub fn record(&mut self, seq: u64) {
        if seq < self.base {
            self.late += 1;
            return;
        }
        while seq >= self.base + WINDOW {
            let w = ((self.base / 64) % (WINDOW / 64)) as usize;
            self.bits[w] = 0;
            self.base += 64;
        }
        let i = (seq % WINDOW) as usize;
        let (w, b) = (i / 64, i % 64);
        if self.bits[w] & (1 << b) != 0 {
            self.duplicates += 1;
            return;
        }
        self.bits[w] |= 1 << b;
        self.unique += 1;
        match self.max_seen {
            Some(m) if seq < m => self.reordered += 1,
            Some(m) if seq > m => self.max_seen = Some(seq),
            None => self.max_seen = Some(seq),
            _ => {}
        }
    }

    /// Adds another tracker's counts (same sender seen on several queues).
    pub fn merge_counts(&mut self, o: &SeqTracker) {
        self.unique += o.unique;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.late += o.late;
    }
}

/// Percentiles of a histogram, for reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

/// Writes an HdrHistogram interval log (the format HdrHistogram's own tools
/// — HistogramLogProcessor, HdrHistogramVisualizer — read): compressed V2
/// histograms, one line per interval and tag.
pub struct HlogWriter {
    out: Vec<u8>,
    serializer: hdrhistogram::serialization::V2DeflateSerializer,
    start: std::time::SystemTime,
    lines: usize,
}

impl HlogWriter {
    pub fn new(start: std::time::SystemTime) -> HlogWriter {
        HlogWriter {
            out: Vec::new(),
            serializer: hdrhistogram::serialization::V2DeflateSerializer::new(),
            start,
            lines: 0,
        }
    }

    /// Appends one interval (`start_s` seconds after the run start).
    pub fn interval(
        &mut self,
        tag: &str,
        start_s: f64,
        dur_s: f64,
        h: &Histogram<u64>,
    ) -> Result<(), String> {
        use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
        let mut buf = Vec::new();
        {
            let mut b = IntervalLogWriterBuilder::new();
            if self.lines == 0 {
                b.add_comment("wirespeed gen latency log, values in nanoseconds");
                b.with_start_time(self.start);
                b.with_base_time(self.start);
            }
            b.with_max_value_divisor(1e6);
            let mut w = b
                .begin_log_with(&mut buf, &mut self.serializer)
                .map_err(|e| e.to_string())?;
            let tag_name = sanitize_tag(tag);
            let tag = Tag::new(&tag_name);
            w.write_histogram(
                h,
                std::time::Duration::from_secs_f64(start_s),
                std::time::Duration::from_secs_f64(dur_s),
                tag,
            )
            .map_err(|e| format!("{e:?}"))?;
        }
        // Every writer emits its own header lines; keep them only once.
        let text = String::from_utf8_lossy(&buf);
        for line in text.lines() {
            let header = line.starts_with('#') || line.starts_with("\"StartTimestamp\"");
            if header && self.lines > 0 {
                continue;
            }
            self.out.extend_from_slice(line.as_bytes());
            self.out.push(b'\n');
        }
        self.lines += 1;
        Ok(())
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }
}

fn sanitize_tag(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One series for the throughput plot.
pub struct Series {
    pub name: String,
    /// (seconds since start, value)
    pub points: Vec<(f64, f64)>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// A plot panel's frame: origin and size in SVG units.
#[derive(Clone, Copy)]
struct Panel {
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
}

impl Panel {
    /// The y axis labels, `ticks + 1` of them from 0 to `max`.
    fn y_labels(&self, s: &mut String, max: f64, ticks: u32, fmt: impl Fn(f64) -> String) {
        for i in 0..=ticks {
            let v = max * i as f64 / ticks as f64;
            let y = self.y0 + self.h - self.h * i as f64 / ticks as f64;
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{y:.1}" text-anchor="end">{}</text>"#,
                self.x0 - 6.0,
                fmt(v)
            );
        }
    }

    /// One series: the line and its name in the legend (`k`-th entry).
    fn series(&self, s: &mut String, k: usize, name: &str, pts: &str, width: f64) {
        let c = COLORS[k % COLORS.len()];
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="{width}" points="{pts}"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" fill="{c}">{}</text>"#,
            self.x0 + 10.0,
            self.y0 + 16.0 + 15.0 * k as f64,
            esc(name)
        );
    }
}

/// Panel 1: each stream's latency by percentile (a log-scaled
/// 1 − 10^−x axis up to the 99.9999th).
fn latency_panel(s: &mut String, latency: &[(String, Histogram<u64>)]) {
    let p = Panel {
        x0: 70.0,
        y0: 40.0,
        w: 800.0,
        h: 280.0,
    };
    let _ = writeln!(
        s,
        r#"<text x="{}" y="25" font-size="15">Latency by percentile (µs)</text>"#,
        p.x0
    );
    let max_lat = latency
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(_, h)| h.max())
        .max()
        .unwrap_or(1)
        .max(1) as f64
        / 1000.0;
    let xmax = 6.0;
    axes(s, p.x0, p.y0, p.w, p.h);
    for (i, lbl) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"]
        .iter()
        .enumerate()
    {
        let x = p.x0 + p.w * i as f64 / xmax;
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{lbl}</text>"#,
            p.y0 + p.h + 16.0
        );
    }
    p.y_labels(s, max_lat, 4, |v| format!("{v:.1}"));
    for (k, (name, hist)) in latency.iter().enumerate() {
        if hist.is_empty() {
            continue;
        }
        let mut pts = String::new();
        for i in 0..=240 {
            let xl = xmax * i as f64 / 240.0;
            let q = 1.0 - 10f64.powf(-xl);
            let v = hist.value_at_quantile(q.min(1.0)) as f64 / 1000.0;
            let _ = write!(
                pts,
                "{:.1},{:.1} ",
                p.x0 + p.w * xl / xmax,
                p.y0 + p.h - p.h * (v / max_lat).min(1.0)
            );
        }
        p.series(s, k, name, &pts, 2.0);
    }
}

/// Panel 2: each stream's throughput over the run.
fn throughput_panel(s: &mut String, throughput: &[Series]) {
    let p = Panel {
        x0: 70.0,
        y0: 420.0,
        w: 800.0,
        h: 280.0,
    };
    let _ = writeln!(
        s,
        r#"<text x="{}" y="405" font-size="15">Throughput (Mpps) over time (s)</text>"#,
        p.x0
    );
    axes(s, p.x0, p.y0, p.w, p.h);
    let all = || throughput.iter().flat_map(|x| x.points.iter());
    let tmax = all().map(|p| p.0).fold(0.0, f64::max).max(1e-3);
    let vmax = all().map(|p| p.1).fold(0.0, f64::max).max(1e-9);
    p.y_labels(s, vmax, 4, |v| format!("{:.3}", v / 1e6));
    for i in 0..=4 {
        let t = tmax * i as f64 / 4.0;
        let x = p.x0 + p.w * i as f64 / 4.0;
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{t:.2}</text>"#,
            p.y0 + p.h + 16.0
        );
    }
    for (k, ser) in throughput.iter().enumerate() {
        let mut pts = String::new();
        for (t, v) in &ser.points {
            let _ = write!(
                pts,
                "{:.1},{:.1} ",
                p.x0 + p.w * t / tmax,
                p.y0 + p.h - p.h * v / vmax
            );
        }
        p.series(s, k, &ser.name, &pts, 1.5);
    }
}

/// Renders a two-panel SVG: the latency percentile distribution (x: percentile
/// on the usual 1/(1-p) log scale, y: µs) and throughput over time (Mpps).
pub fn svg_plot(latency: &[(String, Histogram<u64>)], throughput: &[Series]) -> String {
    let (w, h) = (900.0f64, 760.0f64);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    latency_panel(&mut s, latency);
    throughput_panel(&mut s, throughput);
    s.push_str("</svg>\n");
    s
}

fn axes(s: &mut String, x0: f64, y0: f64, pw: f64, ph: f64) {
    let _ = writeln!(
        s,
        r##"<path d="M{x0},{y0} V{:.1} H{:.1}" stroke="#333" fill="none"/>"##,
        y0 + ph,
        x0 + pw
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast counts fall in the histogram's own buckets: drained into a
    /// histogram they give the percentiles direct recording gives.
    #[test]
    fn fast_counts_match_direct_recording() {
        let mut fast = FastHist::default();
        let mut direct = latency_histogram();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Spread over 1 ns .. ~68 s, log-uniform-ish, and the edges.
            let v = match i % 5 {
                0 => 1 + i % 4096,
                _ => 1 + (x >> (x % 28 + 28)),
            };
            fast.record(v);
            let _ = direct.record(v);
        }
        let mut merged = latency_histogram();
        fast.drain_into(&mut merged);
        assert!(fast.is_empty());
        assert_eq!(merged.len(), direct.len());
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 0.99999, 1.0] {
            assert_eq!(
                merged.value_at_quantile(q),
                direct.value_at_quantile(q),
                "quantile {q}"
            );
        }
        assert_eq!(merged.min(), direct.min());
        assert_eq!(merged.max(), direct.max());
    }

    #[test]
    fn tracker_counts_loss_dups_and_reorders_exactly() {
        let mut t = SeqTracker::default();
        // 0..100 with 10 and 20 lost, 30/31 swapped, 40 duplicated.
        let mut seqs: Vec<u64> = (0..100).filter(|s| *s != 10 && *s != 20).collect();
        let i = seqs.iter().position(|s| *s == 30).unwrap();
        seqs.swap(i, i + 1);
        seqs.insert(seqs.iter().position(|s| *s == 41).unwrap(), 40);
        for s in seqs {
            t.record(s);
        }
        assert_eq!(t.unique, 98);
        assert_eq!(100 - t.unique, 2, "lost");
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.reordered, 1);
        assert_eq!(t.late, 0);
    }

    #[test]
    fn tracker_window_slides() {
        let mut t = SeqTracker::default();
        for s in 0..(3 * WINDOW) {
            t.record(s);
        }
        assert_eq!(t.unique, 3 * WINDOW);
        t.record(5);
        assert_eq!(t.late, 1);
    }

    #[test]
    fn hlog_has_one_header_and_a_line_per_interval() {
        let mut w = HlogWriter::new(
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
        );
        let mut h = latency_histogram();
        h.record(1500).unwrap();
        h.record(2500).unwrap();
        w.interval("lat", 0.0, 1.0, &h).unwrap();
        w.interval("lat", 1.0, 1.0, &h).unwrap();
        let text = String::from_utf8(w.into_bytes()).unwrap();
        assert_eq!(text.matches("#[StartTime:").count(), 1, "{text}");
        let data: Vec<&str> = text.lines().filter(|l| l.starts_with("Tag=lat,")).collect();
        assert_eq!(data.len(), 2, "{text}");
        // Round trip: the standard reader parses it back.
        let mut d = hdrhistogram::serialization::Deserializer::new();
        let b64 = data[0].rsplit(',').next().unwrap();
        let raw = base64_decode(b64);
        let back: Histogram<u64> = d.deserialize(&mut &raw[..]).unwrap();
        assert_eq!(back.len(), 2);
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        let tbl = |c: u8| -> u32 {
            match c {
                b'A'..=b'Z' => (c - b'A') as u32,
                b'a'..=b'z' => (c - b'a' + 26) as u32,
                b'0'..=b'9' => (c - b'0' + 52) as u32,
                b'+' => 62,
                b'/' => 63,
                _ => 0,
            }
        };
        let b: Vec<u8> = s.bytes().filter(|c| *c != b'=').collect();
        let mut out = Vec::new();
        for ch in b.chunks(4) {
            let mut v = 0u32;
            for (i, c) in ch.iter().enumerate() {
                v |= tbl(*c) << (18 - 6 * i);
            }
            let n = ch.len() * 6 / 8;
            for i in 0..n {
                out.push((v >> (16 - 8 * i)) as u8);
            }
        }
        out
    }

    #[test]
    fn svg_is_well_formed() {
        let mut h = latency_histogram();
        for v in 1..1000 {
            h.record(v * 100).unwrap();
        }
        let svg = svg_plot(
            &[("probe <1>".into(), h)],
            &[Series {
                name: "port0".into(),
                points: vec![(0.0, 1e6), (1.0, 2e6)],
            }],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("probe &lt;1&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 2);
    }
}
