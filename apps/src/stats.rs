//! `wirespeed stats FILE.json`: a run's `--json` summary shown as the Linux
//! tools show the same things — `ethtool -S` (a port's xstats), `tc -s
//! qdisc` (each TX queue's qdisc), the `byte_queue_limits` files of sysfs
//! (BQL per queue), `cat /proc/net/snmp` (each port's stack) — so a user
//! reads wirespeed's counters where they would look on a kernel.
//!
//! `wirespeed stats --control PATH` reads the same from a running
//! generator (its control socket's `stats`), with two views only a live
//! run has: `/proc/net/udp` (the socket streams' sockets) and `ip neigh`
//! (each stack's neighbour table).

use serde_json::Value;
use std::fmt::Write;

/// Which views to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum View {
    /// `ethtool -S IFACE`: the port's xstats.
    Ethtool,
    /// `tc -s qdisc show dev IFACE`: each TX queue's qdisc.
    Tc,
    /// `/sys/class/net/IFACE/queues/tx-N/byte_queue_limits/*`.
    Bql,
    /// `cat /proc/net/snmp`: the port's stack.
    Snmp,
    /// `cat /proc/net/udp`: the stack's UDP sockets (a live run only).
    Udp,
    /// `ip neigh show dev IFACE`: the stack's neighbours (a live run only).
    Neigh,
    /// All of the above.
    All,
}

/// Why a summary could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("{path}: {why}")]
    File { path: String, why: String },
}

/// The views of `v` (a `wirespeed gen --json` summary) as text; `port`
/// limits them to one port index.
pub fn render(v: &Value, view: View, port: Option<usize>) -> Result<String, String> {
    let ports = v["ports"]
        .as_array()
        .ok_or("not a wirespeed gen --json summary (no \"ports\")")?;
    if let Some(p) = port {
        if p >= ports.len() {
            return Err(format!(
                "--port {p}: the run had {} port(s) (0..={})",
                ports.len(),
                ports.len().saturating_sub(1)
            ));
        }
    }
    let mut out = String::new();
    for (i, p) in ports.iter().enumerate() {
        if port.is_some_and(|x| x != i) {
            continue;
        }
        let name = p["spec"].as_str().unwrap_or("?");
        if matches!(view, View::Ethtool | View::All) {
            ethtool(&mut out, name, p);
        }
        if matches!(view, View::Tc | View::All) {
            tc(&mut out, name, p);
        }
        if matches!(view, View::Bql | View::All) {
            bql(&mut out, name, p);
        }
        for s in v["stacks"].as_array().into_iter().flatten() {
            if s["port"].as_u64() != Some(i as u64) {
                continue;
            }
            if matches!(view, View::Snmp | View::All) {
                snmp(&mut out, name, s);
            }
            if matches!(view, View::Udp | View::All) && s["sockets"].is_array() {
                udp(&mut out, name, s);
            }
            if matches!(view, View::Neigh | View::All) && s["neigh"].is_array() {
                neigh(&mut out, name, s);
            }
        }
    }
    Ok(out)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn ethtool(out: &mut String, name: &str, p: &Value) {
    let _ = writeln!(out, "# ethtool -S {name}\nNIC statistics:");
    if let Some(x) = p["xstats"].as_object() {
        for (k, v) in x {
            let _ = writeln!(out, "     {k}: {}", u(v));
        }
    }
    let _ = writeln!(out);
}

fn tc(out: &mut String, name: &str, p: &Value) {
    let _ = writeln!(out, "# tc -s qdisc show dev {name}");
    for q in p["queues"].as_array().into_iter().flatten() {
        let d = &q["qdisc"];
        let kind = d["kind"].as_str().unwrap_or("?");
        let n = u(&q["queue"]);
        match kind {
            "pfifo_fast" => {
                let _ = writeln!(
                    out,
                    "qdisc pfifo_fast 0: parent :{} bands 3 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1",
                    n + 1
                );
            }
            k => {
                let _ = writeln!(out, "qdisc {k} 0: parent :{}", n + 1);
            }
        }
        let _ = writeln!(
            out,
            " Sent {} bytes {} pkt (dropped {}, overlimits {} requeues {})",
            u(&d["sent_bytes"]),
            u(&d["sent_packets"]),
            u(&d["dropped"]),
            u(&d["overlimits"]),
            u(&d["requeues"])
        );
        let _ = writeln!(
            out,
            " backlog {}b {}p requeues {}",
            u(&d["backlog_bytes"]),
            u(&d["backlog_packets"]),
            u(&d["requeues"])
        );
    }
    let _ = writeln!(out);
}

fn bql(out: &mut String, name: &str, p: &Value) {
    for q in p["queues"].as_array().into_iter().flatten() {
        let b = &q["bql"];
        if b["enabled"] != true {
            continue;
        }
        let dir = format!(
            "/sys/class/net/{name}/queues/tx-{}/byte_queue_limits",
            u(&q["queue"])
        );
        let _ = writeln!(out, "# grep . {dir}/*");
        for (f, k) in [
            ("hold_time", "hold_time_ms"),
            ("inflight", "inflight"),
            ("limit", "limit"),
            ("limit_max", "limit_max"),
            ("limit_min", "limit_min"),
        ] {
            let _ = writeln!(out, "{dir}/{f}:{}", u(&b[k]));
        }
        let _ = writeln!(out);
    }
}

fn snmp(out: &mut String, name: &str, s: &Value) {
    let _ = writeln!(
        out,
        "# cat /proc/net/snmp   ({name}, {})",
        s["addr"].as_str().unwrap_or("")
    );
    for proto in ["Ip", "Icmp", "Udp", "Tcp"] {
        let Some(m) = s["snmp"][proto].as_object() else {
            continue;
        };
        let names: Vec<&str> = m.keys().map(|k| k.as_str()).collect();
        let vals: Vec<String> = m.values().map(|v| u(v).to_string()).collect();
        let _ = writeln!(out, "{proto}: {}", names.join(" "));
        let _ = writeln!(out, "{proto}: {}", vals.join(" "));
    }
    let _ = writeln!(out);
}

/// An `a.b.c.d:port` as `/proc/net/udp` prints it (`udp4_format_sock`:
/// the `__be32` address as `%08X` of its bytes read on a little-endian
/// host, the port as `%04X`).
fn hex_addr(a: Option<&str>) -> String {
    let Some(sa) = a.and_then(|t| t.parse::<std::net::SocketAddrV4>().ok()) else {
        return "00000000:0000".into();
    };
    format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(sa.ip().octets()),
        sa.port()
    )
}

/// `cat /proc/net/udp`: one line per socket. `tx_queue` is the send
/// buffer in flight (`sk_wmem_alloc_get`), `rx_queue` the receive queue's
/// truesize (`sk_rmem_alloc`), `drops` what the receive buffer refused
/// (`sk_drops`).
fn udp(out: &mut String, name: &str, s: &Value) {
    let _ = writeln!(out, "# cat /proc/net/udp   ({name})");
    let _ = writeln!(out, "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops   stream");
    for (i, k) in s["sockets"].as_array().into_iter().flatten().enumerate() {
        let _ = writeln!(
            out,
            "{i:>4}: {} {} {:02X} {:08X}:{:08X} 00:00000000 00000000     0        0 0 2 0000000000000000 {}   {}",
            hex_addr(k["local"].as_str()),
            hex_addr(k["remote"].as_str()),
            if k["connected"] == true { 1 } else { 7 },
            u(&k["tx_queue"]),
            u(&k["rx_queue"]),
            u(&k["drops"]),
            k["stream"].as_str().unwrap_or("")
        );
    }
    let _ = writeln!(out);
}

/// `ip neigh show dev IFACE`: `IP lladdr MAC STATE` (`INCOMPLETE` and
/// `FAILED` have no lladdr, as iproute2 prints them).
fn neigh(out: &mut String, name: &str, s: &Value) {
    let _ = writeln!(out, "# ip neigh show dev {name}");
    for n in s["neigh"].as_array().into_iter().flatten() {
        let state = n["state"].as_str().unwrap_or("?").to_ascii_uppercase();
        let mac = n["mac"]
            .as_str()
            .map_or(String::new(), |m| format!(" lladdr {m}"));
        let _ = writeln!(out, "{}{mac} {state}", n["ip"].as_str().unwrap_or("?"));
    }
    let _ = writeln!(out);
}

/// `--control PATH`: the same views from a running generator.
pub fn live(socket: &std::path::Path, view: View, port: Option<usize>) -> Result<String, String> {
    let reply = crate::ctl::request(socket, &serde_json::json!({"cmd": "stats"}))
        .map_err(|e| e.to_string())?;
    if reply["ok"] != true {
        return Err(format!(
            "{}: {}",
            socket.display(),
            reply["error"].as_str().unwrap_or("the run refused stats")
        ));
    }
    render(&reply, view, port)
}

/// Reads `path` (a `--json` summary) and renders it.
pub fn run(path: &std::path::Path, view: View, port: Option<usize>) -> Result<String, StatsError> {
    let err = |why: String| StatsError::File {
        path: path.display().to_string(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| err(format!("not JSON: {e}")))?;
    render(&v, view, port).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Value {
        serde_json::json!({
            "ports": [{
                "spec": "ring:a",
                "xstats": {"tx_packets": 7, "tx_dropped": 1},
                "queues": [{
                    "queue": 0,
                    "qdisc": {"kind": "pfifo_fast", "sent_bytes": 420, "sent_packets": 7,
                              "dropped": 1, "overlimits": 0, "requeues": 2,
                              "backlog_bytes": 60, "backlog_packets": 1},
                    "bql": {"enabled": true, "limit": 3000, "inflight": 120, "limit_min": 0,
                            "limit_max": 1879048192, "hold_time_ms": 1000}
                }]
            }],
            "stacks": [{"port": 0, "addr": "10.0.0.1/24",
                        "snmp": {"Udp": {"InDatagrams": 3, "OutDatagrams": 7}}}]
        })
    }

    #[test]
    fn views_read_like_the_linux_tools() {
        let t = render(&summary(), View::All, None).unwrap();
        assert!(
            t.contains(
                "# ethtool -S ring:a\nNIC statistics:\n     tx_packets: 7\n     tx_dropped: 1\n"
            ),
            "{t}"
        );
        assert!(t.contains("qdisc pfifo_fast 0: parent :1 bands 3"), "{t}");
        assert!(t.contains(" Sent 420 bytes 7 pkt (dropped 1, overlimits 0 requeues 2)\n backlog 60b 1p requeues 2\n"), "{t}");
        assert!(
            t.contains("/sys/class/net/ring:a/queues/tx-0/byte_queue_limits/limit:3000\n"),
            "{t}"
        );
        assert!(t.contains("/byte_queue_limits/inflight:120\n"), "{t}");
        assert!(
            t.contains("Udp: InDatagrams OutDatagrams\nUdp: 3 7\n"),
            "{t}"
        );
        let only_tc = render(&summary(), View::Tc, Some(0)).unwrap();
        assert!(!only_tc.contains("ethtool") && only_tc.contains("tc -s qdisc"));
    }

    #[test]
    fn live_views_read_like_proc_net_udp_and_ip_neigh() {
        let mut v = summary();
        v["stacks"][0]["sockets"] = serde_json::json!([{
            "stream": "s", "local": "10.0.0.1:5000", "remote": "10.0.0.2:7000",
            "connected": true, "tx_queue": 2304
        }]);
        v["stacks"][0]["neigh"] = serde_json::json!([
            {"ip": "10.0.0.2", "mac": "02:00:00:00:00:02", "state": "Reachable"},
            {"ip": "10.0.0.9", "mac": null, "state": "Incomplete"}
        ]);
        let u = render(&v, View::Udp, None).unwrap();
        assert!(
            u.contains("   0: 0100000A:1388 0200000A:1B58 01 00000900:00000000 "),
            "{u}"
        );
        let n = render(&v, View::Neigh, None).unwrap();
        assert_eq!(
            n,
            "# ip neigh show dev ring:a\n10.0.0.2 lladdr 02:00:00:00:00:02 REACHABLE\n10.0.0.9 INCOMPLETE\n\n"
        );
        // A --json summary has neither table: the views print nothing.
        assert_eq!(render(&summary(), View::Neigh, None).unwrap(), "");
    }

    #[test]
    fn bad_input_names_what_is_wrong() {
        assert!(render(&serde_json::json!({"x": 1}), View::All, None)
            .unwrap_err()
            .contains("\"ports\""));
        assert!(render(&summary(), View::All, Some(3))
            .unwrap_err()
            .contains("--port 3"));
        let e = run(std::path::Path::new("/nonexistent/s.json"), View::All, None).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/s.json"));
    }
}
