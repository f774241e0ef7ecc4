//! The run as it is now, for the control socket's `stats` and `streams`
//! and for the live screen: the streams' counters (read from the senders'
//! shared counters, which the lcores publish once per burst), each port's
//! queue and driver counters (the runtime's [`Monitor`]), the latency seen
//! so far, and the stacks' tables, which only the lcores can read (each
//! owns its replicas) and publish when asked ([`StackLive`]).
//!
//! `stats` has the shape of a `--json` summary where the `wirespeed
//! stats` views read it (`ports[].xstats`, `ports[].queues[].qdisc`/`.bql`,
//! `stacks[].snmp`), plus `streams[]`, `stacks[].neigh` and
//! `stacks[].sockets`.

use super::gate::{Command, StreamGate};
use super::lcore::{RunParams, SenderCounters};
use super::metrics::LiveSnapshot;
use crate::config::{Rate, Stream};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wirespeed::eal::Tsc;
use wirespeed::runtime::Monitor;
use wirespeed::stack::{SocketId, Stack};

/// The lcores' answers to "what are the stacks' tables now": each lcore
/// publishes its replicas' tables into its own slot, the control thread adds
/// them up.
#[derive(Debug)]
pub struct StackLive {
    want: AtomicU64,
    /// Per lcore: the last request it answered.
    done: Box<[AtomicU64]>,
    tables: Mutex<Vec<Vec<Value>>>,
}

impl StackLive {
    /// For `lcores` lcores.
    pub fn new(lcores: usize) -> StackLive {
        StackLive {
            want: AtomicU64::new(0),
            done: (0..lcores).map(|_| AtomicU64::new(0)).collect(),
            tables: Mutex::new(vec![Vec::new(); lcores]),
        }
    }

    /// Lcore `l`, once per timer tick: a request is waiting for it.
    #[inline]
    pub fn wanted(&self, l: usize) -> bool {
        self.done
            .get(l)
            .is_some_and(|d| self.want.load(Ordering::Relaxed) != d.load(Ordering::Relaxed))
    }

    /// Lcore `l`: its tables for the requests so far.
    pub fn publish(&self, l: usize, tables: Vec<Value>) {
        let w = self.want.load(Ordering::Acquire);
        if let Some(slot) = self
            .tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(l)
        {
            *slot = tables;
        }
        if let Some(d) = self.done.get(l) {
            d.store(w, Ordering::Release);
        }
    }

    /// The control thread: asks and waits up to `timeout` for every lcore.
    /// None when no lcore answered (none runs its timers: ARP still going,
    /// or the run has ended); an lcore that did not answer in time (it has
    /// ended) adds its last tables.
    pub fn request(&self, timeout: Duration) -> Option<Vec<Value>> {
        let w = self.want.fetch_add(1, Ordering::AcqRel) + 1;
        let end = Instant::now() + timeout;
        let answered = || {
            self.done
                .iter()
                .filter(|d| d.load(Ordering::Acquire) >= w)
                .count()
        };
        while answered() < self.done.len() {
            if Instant::now() >= end {
                if answered() == 0 {
                    return None;
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        Some(merge_tables(&t))
    }
}

/// One entry per port over the lcores' tables: counters added, sockets
/// listed from every lcore, the neighbours as the first lcore has them
/// (the replicas share them through the control plane).
fn merge_tables(per_lcore: &[Vec<Value>]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for t in per_lcore.iter().flatten() {
        let port = t.get("port").cloned();
        match out.iter_mut().find(|o| o.get("port") == port.as_ref()) {
            None => out.push(t.clone()),
            Some(o) => {
                if let (Some(a), Some(b)) = (o.get_mut("snmp"), t.get("snmp")) {
                    add_numbers(a, b);
                }
                if let (Some(Value::Array(a)), Some(Value::Array(b))) =
                    (o.get_mut("sockets"), t.get("sockets"))
                {
                    a.extend(b.iter().cloned());
                }
            }
        }
    }
    out
}

/// `a += b`, number by number, through objects of the same shape.
fn add_numbers(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, bv) in b {
                match a.get_mut(k) {
                    Some(av) => add_numbers(av, bv),
                    None => {
                        a.insert(k.clone(), bv.clone());
                    }
                }
            }
        }
        (a @ Value::Number(_), Value::Number(b)) => {
            if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
                *a = json!(x + y);
            } else if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
                *a = json!(x + y);
            }
        }
        _ => {}
    }
}

/// One UDP socket as `/proc/net/udp` shows it (`udp4_format_sock`): the
/// addresses, connected or not (`st` 01 `TCP_ESTABLISHED`, 07 `TCP_CLOSE`),
/// and the send buffer in flight (`tx_queue`, `sk_wmem_alloc_get`).
pub fn socket_row(st: &mut Stack, id: SocketId, stream: &str, send_errors: u64) -> Value {
    let so = st.socket(id);
    let local = so.local_addr().ok();
    let remote = so.peer_addr().ok();
    let (rx_queue, drops) = so.rx_queue_and_drops().unwrap_or((0, 0));
    json!({
        "rx_queue": rx_queue,
        "drops": drops,
        "stream": stream,
        "local": local.map(|a| a.to_string()),
        "remote": remote.map(|a| a.to_string()),
        "connected": remote.is_some(),
        "tx_queue": so.wmem_in_flight().unwrap_or(0),
        "sndbuf": so.sndbuf().unwrap_or(0),
        "err_queue": so.err_queue_len().unwrap_or(0),
        "send_errors": send_errors,
    })
}

/// What the control thread and the screen read the run from.
#[derive(Clone)]
pub struct LiveRun {
    pub params: Arc<RunParams>,
    pub counters: Vec<Vec<Arc<SenderCounters>>>,
    pub monitor: Monitor,
    pub port_names: Vec<String>,
    pub snap: Arc<Mutex<LiveSnapshot>>,
    pub tsc: Tsc,
    /// Some port has a stack (else `stats` does not ask lcore 0).
    pub any_stack: bool,
    /// Per stream: its mean wire size (bytes with FCS) and its port's line
    /// rate (bit/s, 0 = none), to check a new rate as the config's is.
    pub limits: Vec<(f64, u64)>,
}

/// A stream's counters now.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamNow {
    pub offered: u64,
    pub offered_bytes: u64,
    /// Refused on admission (qdisc full, driver busy, no carrier).
    pub dropped: u64,
    pub dropped_bytes: u64,
}

impl StreamNow {
    /// Handed on to the port (offered − refused).
    pub fn delivered(&self) -> u64 {
        self.offered.saturating_sub(self.dropped)
    }
    pub fn delivered_bytes(&self) -> u64 {
        self.offered_bytes.saturating_sub(self.dropped_bytes)
    }
}

impl LiveRun {
    /// Seconds since the common start (0 before it).
    pub fn elapsed(&self) -> f64 {
        let s = self.params.start.load(Ordering::Acquire);
        let now = self.tsc.now();
        if s == 0 || now <= s {
            return 0.0;
        }
        self.tsc.cycles_to_ns(now - s) as f64 / 1e9
    }

    pub fn stream_now(&self, i: usize) -> StreamNow {
        let cs = &self.counters[i];
        StreamNow {
            offered: cs.iter().map(|c| c.packets.get()).sum(),
            offered_bytes: cs.iter().map(|c| c.bytes.get()).sum(),
            dropped: cs.iter().map(|c| c.dropped.get()).sum(),
            dropped_bytes: cs.iter().map(|c| c.dropped_bytes.get()).sum(),
        }
    }

    pub fn streams(&self) -> &[Stream] {
        &self.params.streams
    }

    pub fn gate(&self, i: usize) -> &StreamGate {
        &self.params.gates[i]
    }

    /// "waiting", "running", "paused", "stopped" or "done".
    pub fn state(&self, i: usize) -> &'static str {
        let g = self.gate(i);
        let cmd = g.read(g.seq()).map(|s| s.command);
        let left = self.params.stream_left[i].load(Ordering::Acquire);
        match cmd {
            Some(Command::Stop) => "stopped",
            _ if left == 0 => "done",
            Some(Command::Pause) => "paused",
            _ if self.counters[i].iter().all(|c| c.packets.get() == 0) => "waiting",
            _ => "running",
        }
    }

    /// The rate a stream runs at now: the control socket's, else the config's.
    pub fn rate(&self, i: usize) -> Rate {
        let g = self.gate(i);
        g.read(g.seq())
            .and_then(|s| s.rate)
            .unwrap_or(self.params.streams[i].rate)
    }

    /// Latency percentiles (ns) and probes received so far, per stream name.
    fn latency(&self, name: &str) -> Option<(u64, u64, u64)> {
        let l = self.snap.lock().unwrap_or_else(|e| e.into_inner());
        l.latency
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, h)| (h.len(), h.value_at_quantile(0.5), h.value_at_quantile(0.99)))
    }

    /// One stream's row of `streams`/`stats`.
    pub fn stream_json(&self, i: usize) -> Value {
        let s = &self.params.streams[i];
        let n = self.stream_now(i);
        let lat = self.latency(&s.name);
        json!({
            "name": s.name,
            "mode": format!("{:?}", s.mode).to_lowercase(),
            "port": s.port,
            "state": self.state(i),
            "rate": self.rate(i).describe(),
            "offered": n.offered,
            "offered_bytes": n.offered_bytes,
            "dropped": n.dropped,
            "delivered": n.delivered(),
            "delivered_bytes": n.delivered_bytes(),
            "latency": s.latency,
            "rx_probes": lat.map(|l| l.0),
            "latency_p50_ns": lat.map(|l| l.1),
            "latency_p99_ns": lat.map(|l| l.2),
        })
    }

    /// Each port: its live `ethtool -S` software counters and its queues.
    fn ports_json(&self) -> Vec<Value> {
        let queues = self.monitor.queues();
        let stats = self.monitor.port_stats();
        self.port_names
            .iter()
            .enumerate()
            .map(|(pi, name)| {
                let st = stats.get(pi).cloned().unwrap_or_default();
                let xstats: serde_json::Map<String, Value> = st
                    .xstats()
                    .into_iter()
                    .map(|(k, v)| (k, Value::from(v)))
                    .collect();
                let qs: Vec<Value> = queues
                    .iter()
                    .filter(|q| q.port as usize == pi)
                    .map(|q| {
                        json!({"queue": q.queue, "qdisc": q.qdisc, "bql": q.bql,
                               "netdev": q.counters})
                    })
                    .collect();
                json!({
                    "spec": name,
                    "tx_packets": st.tx.packets,
                    "tx_bytes": st.tx.bytes,
                    "rx_packets": st.rx.packets,
                    "xstats": xstats,
                    "queues": qs,
                })
            })
            .collect()
    }

    /// The `stats` reply: streams, ports and (when lcore 0 answers) stacks.
    pub fn stats_json(&self) -> Value {
        let streams: Vec<Value> = (0..self.params.streams.len())
            .map(|i| self.stream_json(i))
            .collect();
        let mut v = json!({
            "ok": true,
            "elapsed_s": self.elapsed(),
            "running": self.monitor.running(),
            "streams": streams,
            "ports": self.ports_json(),
            "stacks": [],
        });
        if self.any_stack {
            match self.params.stack_live.request(Duration::from_millis(500)) {
                Some(t) => v["stacks"] = Value::from(t),
                None => {
                    v["stacks_note"] =
                        "no lcore published its stacks (the run is starting or ending)".into()
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two lcores' replicas of port 0's stack: one entry, the counters
    /// added, the sockets of both, the first lcore's neighbours; a request
    /// waits for both, and one that never answers still lets the other's
    /// tables through at the timeout.
    #[test]
    fn the_lcores_tables_are_added_up_per_port() {
        let live = StackLive::new(2);
        let t = |out: u64, sock: &str| {
            json!({"port": 0, "addr": "10.0.0.1/24",
                   "snmp": {"Udp": {"OutDatagrams": out}, "Ip": {"OutRequests": out}},
                   "neigh": [{"ip": sock}], "sockets": [{"local": sock}]})
        };
        assert!(
            live.request(Duration::from_millis(5)).is_none(),
            "nobody answered"
        );
        // The lcores answer a request while it waits (`answer` lists who).
        let ask = |answer: &[(usize, u64, &str)]| {
            std::thread::scope(|sc| {
                // As the lcores do: publish whenever asked, until answered.
                let r = sc.spawn(|| live.request(Duration::from_millis(300)));
                while !r.is_finished() {
                    for &(l, out, sock) in answer {
                        if live.wanted(l) {
                            live.publish(l, vec![t(out, sock)]);
                        }
                    }
                    std::thread::yield_now();
                }
                r.join().unwrap()
            })
        };
        let got = ask(&[(0, 5, "a"), (1, 7, "b")]).unwrap();
        assert!(!live.wanted(0) && !live.wanted(1) && !live.wanted(2));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["snmp"]["Udp"]["OutDatagrams"], 12);
        assert_eq!(got[0]["snmp"]["Ip"]["OutRequests"], 12);
        assert_eq!(got[0]["sockets"].as_array().unwrap().len(), 2);
        assert_eq!(got[0]["neigh"][0]["ip"], "a");
        // Lcore 1 has ended: lcore 0's answer and lcore 1's last tables.
        let h = ask(&[(0, 9, "a")]);
        assert_eq!(h.unwrap()[0]["snmp"]["Udp"]["OutDatagrams"], 16);
    }
}
