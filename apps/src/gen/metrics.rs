//! `--metrics ADDR`: the run's counters as OpenMetrics text for Prometheus
//! to scrape (`GET /metrics`), served from a thread of its own while the
//! lcores run. The monitor thread refreshes one snapshot a second — streams,
//! TX queues (qdisc, BQL, netdev counters), latency histograms — and a
//! scrape encodes the latest with `prometheus-client`; nothing touches the
//! lcores' fast path. The listener binds to loopback unless an address says
//! otherwise.

use super::measure::latency_histogram;
use hdrhistogram::Histogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use wirespeed::netdev::TxqSnapshot;

/// One stream's counters at the last refresh.
#[derive(Debug, Clone, Default)]
pub struct StreamRow {
    pub name: String,
    pub mode: String,
    pub port: usize,
    pub packets: u64,
    pub bytes: u64,
    pub dropped: u64,
}

/// What a scrape reports: the run as the monitor last saw it.
#[derive(Debug, Default)]
pub struct LiveSnapshot {
    pub port_names: Vec<String>,
    pub streams: Vec<StreamRow>,
    pub queues: Vec<TxqSnapshot>,
    /// Per stream with latency probes: every latency recorded so far (ns).
    pub latency: Vec<(String, Histogram<u64>)>,
    pub elapsed_s: f64,
}

impl LiveSnapshot {
    /// Adds one interval's latencies to stream `name`'s histogram.
    pub fn add_latency(&mut self, name: &str, h: &Histogram<u64>) {
        if let Some((_, t)) = self.latency.iter_mut().find(|(n, _)| n == name) {
            let _ = t.add(h);
            return;
        }
        let mut t = latency_histogram();
        let _ = t.add(h);
        self.latency.push((name.to_string(), t));
    }
}

type Labels = Vec<(&'static str, String)>;

#[derive(Debug)]
struct GenCollector(Arc<Mutex<LiveSnapshot>>);

/// Writes one metric family: `rows` of (labels, value) under `name`.
fn family<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    ty: MetricType,
    rows: impl Iterator<Item = (Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, ty)?;
    for (l, v) in rows {
        v.encode(m.encode_family(&l)?)?;
    }
    Ok(())
}

/// A latency histogram in OpenMetrics buckets (ns), from an HdrHistogram:
/// powers of two from 256 ns to 1 s, then +Inf.
#[derive(Debug)]
struct LatencyBuckets<'a>(&'a Histogram<u64>);

impl EncodeMetric for LatencyBuckets<'_> {
    fn encode(
        &self,
        mut e: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        let h = self.0;
        let mut buckets = Vec::new();
        let mut below = 0u64;
        let mut le = 256u64;
        while le <= 1_000_000_000 {
            let n = h.count_between(0, le);
            buckets.push((le as f64, n - below));
            below = n;
            le *= 2;
        }
        buckets.push((f64::MAX, h.len() - below));
        let sum = h.mean() * h.len() as f64;
        e.encode_histogram::<()>(sum, h.len(), &buckets, None)
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl Collector for GenCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let sl = |r: &StreamRow| -> Labels {
            vec![
                ("stream", r.name.clone()),
                ("mode", r.mode.clone()),
                ("port", r.port.to_string()),
            ]
        };
        let c = |v: u64| ConstCounter::new(v);
        let g = |v: i64| ConstGauge::new(v);
        family(
            &mut enc,
            "wirespeed_stream_packets",
            "Packets a stream handed to its port",
            MetricType::Counter,
            s.streams.iter().map(|r| (sl(r), c(r.packets))),
        )?;
        family(
            &mut enc,
            "wirespeed_stream_bytes",
            "Frame bytes (no FCS) a stream handed to its port",
            MetricType::Counter,
            s.streams.iter().map(|r| (sl(r), c(r.bytes))),
        )?;
        family(
            &mut enc,
            "wirespeed_stream_admission_drops",
            "Packets of a stream the netdev layer refused on admission (qdisc full, no carrier)",
            MetricType::Counter,
            s.streams.iter().map(|r| (sl(r), c(r.dropped))),
        )?;
        let ql = |q: &TxqSnapshot| -> Labels {
            let port = s
                .port_names
                .get(q.port as usize)
                .cloned()
                .unwrap_or_default();
            vec![
                ("port", port),
                ("queue", q.queue.to_string()),
                ("qdisc", q.qdisc.kind.to_string()),
            ]
        };
        let qs = &s.queues;
        family(
            &mut enc,
            "wirespeed_txq_sent_packets",
            "Packets the driver took (dev_hard_start_xmit)",
            MetricType::Counter,
            qs.iter().map(|q| (ql(q), c(q.counters.sent_packets))),
        )?;
        family(
            &mut enc,
            "wirespeed_txq_sent_bytes",
            "Bytes the driver took",
            MetricType::Counter,
            qs.iter().map(|q| (ql(q), c(q.counters.sent_bytes))),
        )?;
        family(
            &mut enc,
            "wirespeed_txq_drops",
            "Packets dropped in the netdev layer (every drop counter of the queue)",
            MetricType::Counter,
            qs.iter().map(|q| (ql(q), c(q.counters.drops()))),
        )?;
        family(
            &mut enc,
            "wirespeed_txq_requeues",
            "Packets the driver handed back (dev_requeue_skb)",
            MetricType::Counter,
            qs.iter().map(|q| (ql(q), c(q.counters.requeues))),
        )?;
        family(
            &mut enc,
            "wirespeed_qdisc_backlog_packets",
            "Packets waiting in the qdisc (tc -s qdisc backlog)",
            MetricType::Gauge,
            qs.iter()
                .map(|q| (ql(q), g(q.counters.backlog_packets as i64))),
        )?;
        family(
            &mut enc,
            "wirespeed_bql_limit_bytes",
            "BQL limit (byte_queue_limits/limit)",
            MetricType::Gauge,
            qs.iter()
                .filter(|q| q.bql.enabled)
                .map(|q| (ql(q), g(q.bql.limit as i64))),
        )?;
        family(
            &mut enc,
            "wirespeed_bql_inflight_bytes",
            "Bytes queued to the driver, not completed (byte_queue_limits/inflight)",
            MetricType::Gauge,
            qs.iter()
                .filter(|q| q.bql.enabled)
                .map(|q| (ql(q), g(q.bql.inflight as i64))),
        )?;
        family(
            &mut enc,
            "wirespeed_txq_stopped",
            "1 while the queue is stopped (by BQL/the stack, the driver, or for want of carrier)",
            MetricType::Gauge,
            qs.iter().map(|q| {
                (
                    ql(q),
                    g(i64::from(q.xoff.stack || q.xoff.drv || q.xoff.carrier)),
                )
            }),
        )?;
        family(
            &mut enc,
            "wirespeed_latency_ns",
            "Round-trip latency of a stream's probes (ns)",
            MetricType::Histogram,
            s.latency
                .iter()
                .map(|(n, h)| (vec![("stream", n.clone())], LatencyBuckets(h))),
        )?;
        let up = ConstGauge::new(s.elapsed_s);
        up.encode(enc.encode_descriptor(
            "wirespeed_run_seconds",
            "Seconds since the run started",
            None,
            MetricType::Gauge,
        )?)?;
        Ok(())
    }
}

/// The `--metrics` listener: `ADDR` is `HOST:PORT`, or a bare port
/// (`9100`, `:9100`) on 127.0.0.1. Port 0 picks a free one; the address
/// bound is returned (and printed by the caller).
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub addr: SocketAddr,
}

/// Parses `--metrics`: a bare port means loopback.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    let with_host = if t.chars().all(|c| c.is_ascii_digit()) {
        format!("127.0.0.1:{t}")
    } else if let Some(p) = t.strip_prefix(':') {
        format!("127.0.0.1:{p}")
    } else {
        t.to_string()
    };
    with_host
        .parse()
        .map_err(|_| format!("'{s}' is not HOST:PORT or PORT (e.g. 9100, 127.0.0.1:9100)"))
}

impl MetricsServer {
    pub fn start(
        addr: SocketAddr,
        snap: Arc<Mutex<LiveSnapshot>>,
    ) -> Result<MetricsServer, String> {
        let server = tiny_http::Server::http(addr)
            .map_err(|e| format!("--metrics: cannot listen on {addr}: {e}"))?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| format!("--metrics: {addr} is not an IP address"))?;
        let server = Arc::new(server);
        let s2 = server.clone();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(GenCollector(snap)));
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || serve(&s2, &registry))
            .map_err(|e| format!("--metrics: thread: {e}"))?;
        Ok(MetricsServer {
            server,
            thread: Some(thread),
            addr: bound,
        })
    }
}

fn serve(server: &tiny_http::Server, registry: &Registry) {
    for req in server.incoming_requests() {
        let path = req.url().split('?').next().unwrap_or("");
        let resp = if path == "/metrics" && *req.method() == tiny_http::Method::Get {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => tiny_http::Response::from_string(body).with_header(
                    tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        &b"application/openmetrics-text; version=1.0.0; charset=utf-8"[..],
                    )
                    .expect("a valid header"),
                ),
                Err(_) => {
                    tiny_http::Response::from_string("encoding failed\n").with_status_code(500)
                }
            }
        } else {
            tiny_http::Response::from_string("wirespeed: GET /metrics\n").with_status_code(404)
        };
        let _ = req.respond(resp);
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
