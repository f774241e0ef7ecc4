//! `--control`: a running generator on the `null` port takes commands on
//! its Unix socket — streams are listed, a rate change shows in the
//! delivered counters within one interval, a paused stream's counter
//! stops, bad requests get error replies while the run goes on, `quit`
//! ends it — and the summary tells what was delivered under the changes.
//! `wirespeed stats --control` prints the live `ethtool -S` view;
//! `wirespeed ctl` fails clearly without a socket; the README's Python
//! snippet drives a run.

mod common;

use common::{bin, tmpdir};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A run of `cfg` with `--control SOCK --json OUT`, once its socket is up.
fn start(tag: &str, cfg: &str) -> (Child, PathBuf, PathBuf) {
    let dir = tmpdir(tag);
    let (c, sock, out) = (dir.join("c.toml"), dir.join("ctl.sock"), dir.join("s.json"));
    std::fs::write(&c, cfg).unwrap();
    let _ = std::fs::remove_file(&sock);
    let child = Command::new(bin())
        .args(["gen", "--no-huge", "-q", "--control"])
        .arg(&sock)
        .arg("--json")
        .arg(&out)
        .arg(&c)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while UnixStream::connect(&sock).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(20), "no control socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, sock, out)
}

/// One connection, one request line (sent as is), one reply.
fn raw(sock: &Path, line: &str) -> Value {
    let mut c = UnixStream::connect(sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut r = String::new();
    BufReader::new(c).read_line(&mut r).unwrap();
    serde_json::from_str(&r).unwrap_or_else(|e| panic!("reply {r:?}: {e}"))
}

fn req(sock: &Path, v: Value) -> Value {
    raw(sock, &v.to_string())
}

/// (seconds since the start, delivered) of stream `name`, from `streams`.
fn delivered(sock: &Path, name: &str) -> (f64, u64) {
    let r = req(sock, json!({"cmd": "streams"}));
    let row = r["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {r}"))
        .clone();
    (
        r["elapsed_s"].as_f64().unwrap(),
        row["delivered"].as_u64().unwrap(),
    )
}

/// Delivered packets per second of `name` over the next `secs`.
fn rate_over(sock: &Path, name: &str, secs: f64) -> f64 {
    let (t0, p0) = delivered(sock, name);
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (t1, p1) = delivered(sock, name);
    (p1 - p0) as f64 / (t1 - t0)
}

const TWO_STREAMS: &str = r#"[run]
lcores = "0"
duration = 30
[[port]]
spec = "null"
[[stream]]
name = "a"
size = 64
rate = "20 kpps"
[[stream]]
name = "b"
size = 128
rate = "10 kpps"
"#;

/// The run's output once `quit` ended it (well before its 30 s).
fn finish(child: Child) -> std::process::Output {
    let t0 = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "quit did not end the run"
    );
    o
}

#[test]
fn control_socket_steers_a_running_generator() {
    let (child, sock, out) = start("ctl-steer", TWO_STREAMS);
    let r = req(&sock, json!({"cmd": "streams"}));
    assert_eq!(r["ok"], true, "{r}");
    let names: Vec<&str> = r["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"], "{r}");
    // Wait for the start, then the rate as configured.
    while delivered(&sock, "a").1 == 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = rate_over(&sock, "a", 1.0);
    assert!((before - 20_000.0).abs() < 20_000.0 * 0.03, "{before}");
    let r = req(
        &sock,
        json!({"cmd": "rate", "stream": "a", "rate": "5 kpps"}),
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["rate"], "5.000 k pps", "{r}");
    // Within one interval (10 ms) the pacer has the new target: measured
    // from 100 ms on, the counters move at 5 kpps.
    std::thread::sleep(Duration::from_millis(100));
    let after = rate_over(&sock, "a", 1.0);
    assert!((after - 5_000.0).abs() < 5_000.0 * 0.03, "{after}");
    // A paused stream's counter stops; the other goes on.
    assert_eq!(
        req(&sock, json!({"cmd": "pause", "stream": "b"}))["state"],
        "paused"
    );
    std::thread::sleep(Duration::from_millis(50));
    let (_, b0) = delivered(&sock, "b");
    let (_, a0) = delivered(&sock, "a");
    std::thread::sleep(Duration::from_millis(500));
    let (_, b1) = delivered(&sock, "b");
    let (_, a1) = delivered(&sock, "a");
    assert_eq!(b0, b1, "paused b still sends");
    assert!(a1 > a0 + 1000, "a stopped with b: {a0} → {a1}");
    // Bad requests: error replies naming what is wrong; the run goes on.
    let e = req(&sock, json!({"cmd": "pause", "stream": "zz"}));
    assert_eq!(e["ok"], false, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("no stream 'zz'"),
        "{e}"
    );
    let e = raw(&sock, "{\"cmd\": \"streams\"");
    assert!(e["error"].as_str().unwrap().contains("bad JSON"), "{e}");
    let e = req(
        &sock,
        json!({"cmd": "rate", "stream": "a", "rate": "5 kbananas"}),
    );
    assert!(
        e["error"].as_str().unwrap().contains("is not a rate"),
        "{e}"
    );
    let e = req(&sock, json!({"cmd": "rate", "stream": "a", "rate": "50%"}));
    assert!(
        e["error"].as_str().unwrap().contains("has no line rate"),
        "{e}"
    );
    let e = req(&sock, json!({"cmd": "rate", "stream": "a"}));
    assert!(
        e["error"].as_str().unwrap().contains("give \"rate\""),
        "{e}"
    );
    let e = req(&sock, json!({"cmd": "pause"}));
    assert!(
        e["error"].as_str().unwrap().contains("give \"stream\""),
        "{e}"
    );
    let e = req(&sock, json!({"cmd": "warp"}));
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("unknown command 'warp'"),
        "{e}"
    );
    assert!(delivered(&sock, "a").1 > a1, "the run went on");
    // Resumed, b goes on at its rate (no burst to catch up the pause).
    assert_eq!(
        req(&sock, json!({"cmd": "resume", "stream": "b"}))["state"],
        "running"
    );
    std::thread::sleep(Duration::from_millis(100));
    let b_after = rate_over(&sock, "b", 1.0);
    assert!((b_after - 10_000.0).abs() < 10_000.0 * 0.03, "{b_after}");
    // `wirespeed stats --control` reads the running process.
    let o = Command::new(bin())
        .args(["stats", "--control"])
        .arg(&sock)
        .arg("ethtool")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        text.starts_with("# ethtool -S null\nNIC statistics:\n"),
        "{text}"
    );
    let tx: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("tx_packets: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(tx > a1 + b1 - 100, "live tx_packets {tx}");
    assert!(!text.contains("qdisc"), "only the ethtool view: {text}");
    assert_eq!(req(&sock, json!({"cmd": "quit"}))["quitting"], true);
    let o = finish(child);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!sock.exists(), "the socket file is removed at the end");
    // The summary says what was delivered under the changes.
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let (a, b) = (&s["streams"][0], &s["streams"][1]);
    assert!(
        a["control"][0]
            .as_str()
            .unwrap()
            .ends_with("rate 5.000 k pps"),
        "{a}"
    );
    assert!(b["control"][0].as_str().unwrap().ends_with("paused"), "{b}");
    assert!(
        b["control"][1].as_str().unwrap().ends_with("resumed"),
        "{b}"
    );
    // b's target is 10 kpps but 0 while paused: what it delivered over its
    // active time (pause included) matches that, not 10 kpps.
    let bt = b["target_pps"].as_f64().unwrap();
    assert!(bt < 9_000.0, "{b}");
    assert!(
        (b["achieved_pps"].as_f64().unwrap() - bt).abs() < bt * 0.03,
        "{b}"
    );
    // a's target is the time-weighted mean of 20 and 5 kpps: between them.
    let t = a["target_pps"].as_f64().unwrap();
    assert!(t > 5_000.0 && t < 20_000.0, "{a}");
    assert!(
        (a["achieved_pps"].as_f64().unwrap() - t).abs() < t * 0.03,
        "{a}"
    );
}

#[test]
fn ctl_names_a_missing_socket_and_exits_3() {
    let dir = tmpdir("ctl-missing");
    let sock = dir.join("nobody.sock");
    let o = Command::new(bin())
        .arg("ctl")
        .arg(&sock)
        .arg("streams")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("nobody.sock: no control socket there"), "{e}");
    // A stale socket file (its run gone): connection refused.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let o = Command::new(bin())
        .arg("ctl")
        .arg(&sock)
        .arg("streams")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("connection refused"));
    let o = Command::new(bin())
        .args(["stats", "--control"])
        .arg(&sock)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn ctl_command_line_pauses_and_quits() {
    let cfg = format!(
        "{TWO_STREAMS}[[stream]]\nname = \"late\"\nsize = 64\nrate = \"1 kpps\"\nstart_delay = 25\n"
    );
    let (child, sock, out) = start("ctl-cli", &cfg);
    let ctl = |args: &[&str]| {
        Command::new(bin())
            .arg("ctl")
            .arg(&sock)
            .args(args)
            .output()
            .unwrap()
    };
    // Both streams under way (a run quit before a stream sent anything
    // fails: it delivered nothing).
    while delivered(&sock, "a").1 == 0 || delivered(&sock, "b").1 == 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = ctl(&["streams"]);
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && t.starts_with("stream ") && t.contains("\nb "),
        "{t}"
    );
    let o = ctl(&["rate", "a", "2", "kpps", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rate"], "2.000 k pps", "{v}");
    let o = ctl(&["stop", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("error: stop: no stream 'nosuch'"));
    let o = ctl(&["rate", "a"]);
    assert_eq!(o.status.code(), Some(2), "usage");
    // start: a stream waiting for its start_delay goes now.
    assert_eq!(
        req(&sock, json!({"cmd": "streams"}))["streams"][2]["state"],
        "waiting"
    );
    assert!(ctl(&["start", "late"]).status.success());
    let t0 = Instant::now();
    while delivered(&sock, "late").1 == 0 {
        assert!(t0.elapsed() < Duration::from_secs(5), "late did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // stop ends a stream for good: resume is refused, naming why.
    assert!(ctl(&["stop", "b"]).status.success());
    let o = ctl(&["resume", "b"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("'b' was stopped"));
    assert!(ctl(&["quit"]).status.success());
    let o = finish(child);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(s["streams"][2]["control"][0]
        .as_str()
        .unwrap()
        .ends_with("started"));
    assert!(s["streams"][1]["control"][0]
        .as_str()
        .unwrap()
        .ends_with("stopped"));
}

/// The README's Python snippet (between its markers), run as written.
#[test]
fn readme_python_snippet_drives_a_run() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start_m = "<!-- ctl-python -->\n```python\n";
    let i = readme
        .find(start_m)
        .expect("the snippet's marker in README")
        + start_m.len();
    let snippet = &readme[i..i + readme[i..].find("```").unwrap()];
    let (child, sock, out) = start("ctl-py", TWO_STREAMS);
    while delivered(&sock, "a").1 == 0 || delivered(&sock, "b").1 == 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = Command::new("python3")
        .args(["-c", snippet])
        .env("WIRESPEED_CTL", &sock)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("streams: ['a', 'b']\n"), "{text}");
    let o = finish(child);
    assert!(
        o.status.success(),
        "the snippet's quit ends the run cleanly"
    );
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let changes = &s["streams"][0]["control"];
    assert_eq!(changes.as_array().unwrap().len(), 3, "{changes}");
}

#[test]
fn tui_without_a_terminal_prints_the_plain_lines() {
    let dir = tmpdir("ctl-tui");
    let o = Command::new(bin())
        .args([
            "gen",
            "--no-huge",
            "--tui",
            "--port",
            "null",
            "--duration",
            "1.5",
        ])
        .args(["--rate", "10 kpps"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("--tui: stdout is not a terminal; printing the plain live lines instead"),
        "{e}"
    );
    assert!(e.contains("| port0 "), "the port line: {e}");
    assert!(e.contains("port0 running  tx"), "a stream row: {e}");
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("\x1b["),
        "no escapes on a pipe"
    );
}

/// A socket stream between two stacks on a ring pair: the live views only
/// a running process has — `ip neigh` (ARP resolved the peer) and
/// `/proc/net/udp` (the stream's connected socket) — beside the live
/// `/proc/net/snmp`; the stream's row has its probes' latency.
#[test]
fn stats_control_shows_neighbours_sockets_and_latency() {
    let (child, sock, _) = start(
        "ctl-stack",
        r#"[run]
lcores = "0"
duration = 30
[[port]]
spec = "ring:ctlstack"
ip = "10.0.0.1/24"
qdisc = "pfifo_fast"
[[port]]
spec = "ring:ctlstack"
ip = "10.0.0.2/24"
[[stream]]
name = "udp-to-peer"
mode = "socket"
port = 0
dst_ip = "10.0.0.2"
dst_port = 7000
src_port = 5000
size = 128
rate = "20 kpps"
latency = true
rx_port = 1
"#,
    );
    while delivered(&sock, "udp-to-peer").1 == 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Two refreshes of the latency snapshot (once a second).
    std::thread::sleep(Duration::from_millis(2200));
    let stats = |view: &str| {
        let o = Command::new(bin())
            .args(["stats", "--control"])
            .arg(&sock)
            .args([view, "--port", "0"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let n = stats("neigh");
    assert!(n.starts_with("# ip neigh show dev ring:ctlstack\n"), "{n}");
    let peer = n.lines().nth(1).unwrap_or_default();
    assert!(peer.starts_with("10.0.0.2 lladdr "), "{n}");
    assert!(
        peer.ends_with(" REACHABLE") || peer.ends_with(" STALE") || peer.ends_with(" DELAY"),
        "{n}"
    );
    let u = stats("udp");
    // 10.0.0.1:5000 → 10.0.0.2:7000, connected (01), as udp4_format_sock prints.
    assert!(u.contains("   0: 0100000A:1388 0200000A:1B58 01 "), "{u}");
    assert!(u.trim_end().ends_with("udp-to-peer"), "{u}");
    let s = stats("snmp");
    let udp_vals = s
        .lines()
        .filter(|l| l.starts_with("Udp: "))
        .nth(1)
        .unwrap_or_else(|| panic!("{s}"));
    assert!(
        udp_vals
            .split(' ')
            .skip(1)
            .any(|v| v.parse::<u64>().unwrap_or(0) > 1000),
        "{s}"
    );
    let r = req(&sock, json!({"cmd": "streams"}));
    let row = &r["streams"][0];
    assert!(row["rx_probes"].as_u64().unwrap() > 1000, "{row}");
    assert!(row["latency_p50_ns"].as_u64().unwrap() > 0, "{row}");
    assert!(
        row["latency_p99_ns"].as_u64() >= row["latency_p50_ns"].as_u64(),
        "{row}"
    );
    req(&sock, json!({"cmd": "quit"}));
    let o = finish(child);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `--tui` on a terminal (a pty from `script`): the alternate screen, the
/// page with its stream rows, and the terminal given back before the summary.
#[test]
fn tui_on_a_terminal_draws_the_page() {
    let dir = tmpdir("ctl-tuipty");
    let cmd = format!(
        "{} gen --no-huge --tui --port null --duration 2.5 --rate '10 kpps'",
        bin()
    );
    let o = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs the test's pty");
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{t}");
    let enter = t
        .find("\x1b[?1049h")
        .unwrap_or_else(|| panic!("no alternate screen: {t:?}"));
    let page = t
        .find("\x1b[H\x1b[2Jwirespeed gen")
        .expect("a redrawn page");
    let leave = t.find("\x1b[?1049l").expect("the terminal given back");
    let summary = t.rfind("stream ").unwrap();
    assert!(enter < page && page < leave && leave < summary, "{t:?}");
    assert!(
        t[page..leave].contains("streams\r\n    "),
        "the stream rows: {t:?}"
    );
}

/// `[run] control = "PATH"` opens the socket as `--control` does; a path
/// that is a file, not a socket, is a usage error naming the key.
#[test]
fn run_control_key_and_a_path_that_is_not_a_socket() {
    let dir = tmpdir("ctl-key");
    let sock = dir.join("k.sock");
    let _ = std::fs::remove_file(&sock);
    let cfg = dir.join("k.toml");
    let body = |p: &Path| {
        format!(
            "[run]\nlcores = \"0\"\nduration = 30\ncontrol = \"{}\"\n[[port]]\nspec = \"null\"\n[[stream]]\nname = \"a\"\nrate = \"10 kpps\"\n",
            p.display()
        )
    };
    std::fs::write(&cfg, body(&sock)).unwrap();
    let child = Command::new(bin())
        .args(["gen", "--no-huge", "-q"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while UnixStream::connect(&sock).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(20), "no control socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    while delivered(&sock, "a").1 == 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    // A second run on the same socket is refused while the first serves it.
    let o = Command::new(bin())
        .args(["gen", "--no-huge", "-q"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("run.control") && e.contains("another run is serving"),
        "{e}"
    );
    req(&sock, json!({"cmd": "quit"}));
    assert!(finish(child).status.success());
    let file = dir.join("plain-file");
    std::fs::write(&file, "x").unwrap();
    std::fs::write(&cfg, body(&file)).unwrap();
    let o = Command::new(bin())
        .args(["gen", "--no-huge", "-q", "--control"])
        .arg(&file)
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("--control") && e.contains("is not a socket"),
        "{e}"
    );
}
