//! `--metrics`: while a run goes, `GET /metrics` answers OpenMetrics text
//! that a standard parser reads (the Python Prometheus client's OpenMetrics
//! parser, Debian's python3-prometheus-client), with the streams', queues'
//! and latency figures; the listener binds to loopback for a bare port, and
//! a bad address is a usage error naming the flag.

mod common;

use common::{bin, tmpdir};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The parser, or None (and the test says why) when the package is absent.
fn parser() -> Option<&'static str> {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("python3-prometheus-client is not installed (scripts/test installs it): skipped");
        return None;
    }
    Some("/usr/bin/python3")
}

/// Parses `text` with the OpenMetrics parser; prints `name{labels} value` per sample.
const PARSE: &str = r#"import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for f in text_string_to_metric_families(sys.stdin.read()):
    for s in f.samples:
        print(f.type, s.name, ','.join('%s=%s' % kv for kv in sorted(s.labels.items())), s.value)
"#;

fn get(addr: &str, path: &str) -> (String, String) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(c, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut r = String::new();
    c.read_to_string(&mut r).unwrap();
    let (head, body) = r.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

#[test]
fn metrics_during_a_run_parse_as_openmetrics() {
    let Some(py) = parser() else { return };
    let dir = tmpdir("metrics");
    let cfg = dir.join("m.toml");
    std::fs::write(
        &cfg,
        r#"[run]
lcores = "0"
duration = 4
[[port]]
spec = "ring:metrics"
qdisc = "pfifo_fast"
[[port]]
spec = "ring:metrics"
[[stream]]
name = "probe"
size = 64
rate = "100 kpps"
latency = true
rx_port = 1
"#,
    )
    .unwrap();
    let mut child = Command::new(bin())
        .args(["gen", "--no-huge", "-q", "--metrics", "0"])
        .arg(&cfg)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let t0 = Instant::now();
    let addr = loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "no metrics line");
        if let Some(u) = line
            .trim()
            .strip_prefix("wirespeed gen: metrics at http://")
        {
            break u.trim_end_matches("/metrics").to_string();
        }
        assert!(t0.elapsed() < Duration::from_secs(10));
    };
    assert!(
        addr.starts_with("127.0.0.1:"),
        "a bare port binds to loopback: {addr}"
    );
    // Two refreshes in: the counters and the latency histogram are there.
    std::thread::sleep(Duration::from_millis(2500));
    let (head, body) = get(&addr, "/metrics");
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200"),
        "{head}"
    );
    assert!(
        head.to_lowercase().contains("application/openmetrics-text"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    let mut p = Command::new(py)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let o = p.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "the parser refused it: {}\n{body}",
        String::from_utf8_lossy(&o.stderr)
    );
    let samples = String::from_utf8_lossy(&o.stdout).to_string();
    let value = |prefix: &str| -> f64 {
        samples
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no '{prefix}' in\n{samples}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        value("counter wirespeed_stream_packets_total mode=raw,port=0,stream=probe") > 10_000.0,
        "{samples}"
    );
    assert!(
        value(
            "counter wirespeed_txq_sent_packets_total port=ring:metrics,qdisc=pfifo_fast,queue=0"
        ) > 10_000.0,
        "{samples}"
    );
    assert!(
        value("histogram wirespeed_latency_ns_count stream=probe") > 10_000.0,
        "{samples}"
    );
    assert!(
        samples.contains("histogram wirespeed_latency_ns_bucket le=+Inf,stream=probe"),
        "{samples}"
    );
    assert!(
        samples.contains("gauge wirespeed_bql_limit_bytes"),
        "{samples}"
    );
    let (head, _) = get(&addr, "/");
    assert!(head.contains(" 404"), "{head}");
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bad_metrics_address_is_a_usage_error() {
    for bad in ["nonsense", "1.2.3.4.5:80", "99999"] {
        let o = Command::new(bin())
            .args([
                "gen",
                "--no-huge",
                "-q",
                "--port",
                "null",
                "--count",
                "10",
                "--metrics",
                bad,
            ])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("--metrics"), "{bad}: {e}");
    }
}

/// `wirespeed stats` over a run's `--json`: the `tc -s qdisc` and SNMP
/// views carry the summary's own numbers.
#[test]
fn stats_views_show_the_runs_counters() {
    let dir = tmpdir("stats");
    let j = dir.join("s.json");
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/socket-arp.toml");
    let o = Command::new(bin())
        .args(["gen", "--no-huge", "-q", cfg, "--duration", "0.3", "--json"])
        .arg(&j)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&j).unwrap()).unwrap();
    let q = &v["ports"][0]["queues"][0]["qdisc"];
    let o = Command::new(bin()).arg("stats").arg(&j).output().unwrap();
    assert!(o.status.success());
    let t = String::from_utf8_lossy(&o.stdout);
    let sent = format!(
        " Sent {} bytes {} pkt (dropped {}",
        q["sent_bytes"], q["sent_packets"], q["dropped"]
    );
    assert!(t.contains(&sent), "{sent}\n{t}");
    let udp = &v["stacks"][0]["snmp"]["Udp"];
    assert!(
        t.contains(&format!(
            "Udp: {} {} {} {}",
            udp["InDatagrams"], udp["NoPorts"], udp["InErrors"], udp["OutDatagrams"]
        )),
        "{t}"
    );
    assert!(t.contains("NIC statistics:"), "{t}");
    let o = Command::new(bin())
        .args(["stats", "--view", "nope"])
        .arg(&j)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}
