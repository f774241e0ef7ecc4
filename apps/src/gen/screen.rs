//! The live screen: under each interval's port line, one row per stream
//! (what it delivered per second since the last line, its admission
//! drops, the probes that came back and their latency); with `--tui` the
//! same text as a full-screen page redrawn in place (pktgen-dpdk's main
//! page, in a terminal) with plain ANSI/VT100 sequences: the alternate
//! screen (`ESC[?1049h`), cursor home and erase (`ESC[H ESC[2J`), and back
//! on exit. ratatui was measured against this and not taken (README,
//! the live line).

use super::live::{LiveRun, StreamNow};
use crate::config::si;
use std::io::{IsTerminal, Write};

/// Per stream: the counters at the last row, for the per-interval rates.
pub struct StreamRows {
    last: Vec<(StreamNow, f64)>,
}

impl StreamRows {
    pub fn new(n: usize) -> StreamRows {
        StreamRows {
            last: vec![(StreamNow::default(), 0.0); n],
        }
    }

    /// One row per stream since the previous call.
    pub fn rows(&mut self, live: &LiveRun) -> Vec<String> {
        let t = live.elapsed();
        let mut out = Vec::new();
        for (i, s) in live.streams().iter().enumerate() {
            let now = live.stream_now(i);
            let (prev, pt) = std::mem::replace(&mut self.last[i], (now, t));
            let dt = (t - pt).max(1e-6);
            let dp = now.delivered().saturating_sub(prev.delivered());
            let db = now.delivered_bytes().saturating_sub(prev.delivered_bytes());
            let pps = dp as f64 / dt;
            // L2 with FCS, as the port line.
            let bps = (db + 4 * dp) as f64 * 8.0 / dt;
            let row = live.stream_json(i);
            let lat = match (
                row["latency_p50_ns"].as_u64(),
                row["latency_p99_ns"].as_u64(),
            ) {
                (Some(a), Some(b)) => format!(
                    " lat p50 {:.1} µs p99 {:.1} µs",
                    a as f64 / 1e3,
                    b as f64 / 1e3
                ),
                _ => String::new(),
            };
            let rx = row["rx_probes"]
                .as_u64()
                .map_or("-".to_string(), |v| v.to_string());
            out.push(format!(
                "    {:<16} port{} {:<8} tx {:>9}pps {:>9}bit/s drops {} rx {}{}",
                s.name,
                s.port,
                live.state(i),
                si(pps),
                si(bps),
                now.dropped,
                rx,
                lat
            ));
        }
        out
    }
}

/// `--tui`: the page on the terminal's alternate screen; dropping it
/// gives the terminal back as it was.
pub struct Tui {
    out: std::io::Stdout,
}

impl Tui {
    /// Enters the page, or says why not (stdout is not a terminal).
    pub fn enter() -> Result<Tui, String> {
        let out = std::io::stdout();
        if !out.is_terminal() {
            return Err(
                "--tui: stdout is not a terminal; printing the plain live lines instead".into(),
            );
        }
        let mut t = Tui { out };
        t.write("\x1b[?1049h\x1b[?25l");
        Ok(t)
    }

    fn write(&mut self, s: &str) {
        let mut l = self.out.lock();
        let _ = l.write_all(s.as_bytes());
        let _ = l.flush();
    }

    /// Redraws the page: a title, the port line split per port, the stream rows.
    pub fn draw(&mut self, title: &str, port_line: &str, rows: &[String]) {
        let mut page = String::from("\x1b[H\x1b[2J");
        page.push_str(title);
        page.push_str("\n\n");
        let mut parts = port_line.split(" | ");
        if let Some(t) = parts.next() {
            page.push_str(&format!("time {}\n\nports\n", t.trim()));
        }
        for p in parts {
            page.push_str(&format!("  {p}\n"));
        }
        page.push_str("\nstreams\n");
        for r in rows {
            page.push_str(r);
            page.push('\n');
        }
        page.push_str("\nCtrl-C ends the run (the summary follows)\n");
        self.write(&page);
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        self.write("\x1b[?25h\x1b[?1049l");
    }
}
