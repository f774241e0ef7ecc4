//! `wirespeed bench` (RFC 2544): the searches find the loss points the
//! ports are built with — a paced model's line rate, a fault wrapper's drop
//! rate, a dead peer's ring — and bad input is refused, exit 2 naming the flag.
//!
//! Trials are 50–100 ms; the tests that need the machine's cores (the
//! models' paced links) are named `model_*` and run one at a time.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;
use common::{bin, tmpdir};

fn bench(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("bench")
        .args(args)
        .args(["--no-huge", "-q"])
        // The dead-peer tests leave mbufs on a ring: the engine warns.
        .env("WIRESPEED_LOG", "error")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn config(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// 10 Mbit/s at 64 B: 10e6 / ((64 + 20) × 8) frames/s.
const PPS_10M_64: f64 = 10e6 / (84.0 * 8.0);

/// A paced 10 Mbit/s model takes every frame up to its line rate: the
/// search's first trial, at the top, passes, and the NDR is the line rate
/// in every unit.
#[test]
fn model_throughput_of_a_paced_port_is_its_line_rate() {
    let dir = tmpdir("bench-line");
    let cfg = config(
        &dir,
        "c.toml",
        "[run]\nlcores = \"0\"\n[[port]]\nspec = \"igb-model?speed=10m\"\n[[stream]]\n",
    );
    let j = dir.join("r.json");
    let o = bench(&[
        "throughput",
        cfg.to_str().unwrap(),
        "--sizes",
        "64,1518",
        "--trial-s",
        "0.1",
        "--settle-ms",
        "200",
        "--resolution",
        "5",
        "--json",
        j.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&j);
    assert_eq!(v["loss_basis"], "transmitted");
    assert!(
        text(&o).contains("offered − transmitted on the wire"),
        "{}",
        text(&o)
    );
    let s64 = &v["sizes"][0];
    assert_eq!(s64["size"], "64");
    let t = &s64["throughput"];
    assert_eq!(t["found"], true, "{}", text(&o));
    // Within one search step (5%) of the line rate, never above it.
    let mpps = f(&t["mpps"]);
    assert!(
        mpps * 1e6 <= PPS_10M_64 + 1.0 && mpps * 1e6 >= PPS_10M_64 * 0.95,
        "NDR {mpps} Mpps, line rate {PPS_10M_64} pps\n{}",
        text(&o)
    );
    let line = f(&t["line_pct"]);
    assert!((95.0..=100.001).contains(&line), "{line}% of line");
    // L1 counts 20 B of preamble and gap per frame, L2 the frame alone.
    assert!((f(&t["l1_gbps"]) - mpps * 1e6 * 84.0 * 8.0 / 1e9).abs() < 1e-6);
    assert!((f(&t["l2_gbps"]) - mpps * 1e6 * 64.0 * 8.0 / 1e9).abs() < 1e-6);
    let s1518 = &v["sizes"][1]["throughput"];
    assert!(f(&s1518["line_pct"]) >= 95.0, "{s1518}");
    // Every trial's frames are accounted: offered = delivered + lost.
    for tr in s64["trial_log"].as_array().unwrap() {
        assert_eq!(
            tr["frames"].as_u64().unwrap(),
            tr["delivered"].as_u64().unwrap() + tr["lost"].as_u64().unwrap()
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A port that drops 20% of what it is given loses at every rate: no NDR
/// (the search halves down to its resolution and says so), while a PDR
/// allowing 30% is the full line rate at the first trial.
#[test]
fn model_a_dropping_port_has_no_ndr_and_a_full_rate_pdr() {
    let dir = tmpdir("bench-drop");
    let cfg = config(
        &dir,
        "c.toml",
        "[run]\nlcores = \"0\"\n[[port]]\nspec = \"fault:drop=0.2,seed=3+igb-model?speed=10m\"\n[[stream]]\n",
    );
    let j = dir.join("r.json");
    let o = bench(&[
        "throughput",
        cfg.to_str().unwrap(),
        "--sizes",
        "64",
        "--trial-s",
        "0.1",
        "--settle-ms",
        "200",
        "--resolution",
        "2",
        "--pdr",
        "30",
        "--json",
        j.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&j);
    let s = &v["sizes"][0];
    let t = &s["throughput"];
    assert_eq!(t["found"], false, "{}", text(&o));
    assert_eq!(f(&t["mpps"]), 0.0);
    assert!(
        text(&o).contains("loss at every load tried"),
        "{}",
        text(&o)
    );
    // The top, then halving to 2% of the range: 1 + ceil(log2(50)) trials.
    assert_eq!(s["trials"], 7, "{}", text(&o));
    let log = s["trial_log"].as_array().unwrap();
    let lowest = log
        .iter()
        .map(|t| f(&t["load_pct"]))
        .fold(f64::MAX, f64::min);
    assert!(lowest < 2.0 && lowest > 0.0, "lowest load {lowest}%");
    for tr in log {
        let l = f(&tr["loss_pct"]);
        assert!(l > 5.0 && l < 50.0, "a 20% drop measured as {l}%: {tr}");
    }
    let p = &s["pdr"];
    assert_eq!(p["found"], true);
    assert!(f(&p["line_pct"]) > 99.9, "{p}");
    assert!(f(&p["loss_pct"]) > 10.0 && f(&p["loss_pct"]) <= 30.0, "{p}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Loss counted on the receiving end of a ring pair: a cable losing every
/// 10th frame is 10% loss at every rate (exactly), so a 15% PDR is the top
/// of the range and the NDR does not exist; the output says what it counted.
#[test]
fn model_loss_is_counted_at_the_receiving_port() {
    let dir = tmpdir("bench-ring");
    let cfg = config(
        &dir,
        "c.toml",
        "[run]\nlcores = \"0\"\n[[port]]\nspec = \"ring:bench-rx?drop_every=10\"\n[[port]]\nspec = \"ring:bench-rx\"\n[[stream]]\nrx_port = 1\n",
    );
    let j = dir.join("r.json");
    let o = bench(&[
        "throughput",
        cfg.to_str().unwrap(),
        "--sizes",
        "128",
        "--trial-s",
        "0.05",
        "--settle-ms",
        "50",
        "--resolution",
        "25",
        "--pdr",
        "15",
        "--max-rate",
        "20 kpps",
        "--json",
        j.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("offered − received"), "{}", text(&o));
    let v = json(&j);
    assert_eq!(v["loss_basis"], "received");
    let s = &v["sizes"][0];
    assert_eq!(s["throughput"]["found"], false);
    // No line rate: no % of it.
    assert!(s["pdr"]["line_pct"].is_null());
    assert!((f(&s["pdr"]["mpps"]) - 0.02).abs() < 1e-6, "{}", s["pdr"]);
    for tr in s["trial_log"].as_array().unwrap() {
        let (n, lost) = (tr["frames"].as_u64().unwrap(), tr["lost"].as_u64().unwrap());
        assert_eq!(lost, n / 10, "every 10th of {n} frames: {tr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// §26.3: from 100% down in steps until two successive trials lose
/// nothing — two trials on a clean port, every step on a lossy one.
#[test]
fn model_frame_loss_ends_after_two_clean_trials() {
    let dir = tmpdir("bench-fl");
    let clean = config(
        &dir,
        "clean.toml",
        "[run]\nlcores = \"0\"\n[[port]]\nspec = \"igb-model?speed=10m\"\n[[stream]]\n",
    );
    let j = dir.join("r.json");
    let o = bench(&[
        "frame-loss",
        clean.to_str().unwrap(),
        "--sizes",
        "64",
        "--trial-s",
        "0.05",
        "--settle-ms",
        "200",
        "--json",
        j.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&j);
    let steps = v["sizes"][0]["steps"].as_array().unwrap().clone();
    let loads: Vec<f64> = steps.iter().map(|s| f(&s["load_pct"])).collect();
    assert_eq!(loads, vec![100.0, 90.0], "{}", text(&o));
    assert_eq!(v["sizes"][0]["two_clean"], true);
    let lossy = config(
        &dir,
        "lossy.toml",
        "[run]\nlcores = \"0\"\n[[port]]\nspec = \"fault:drop=0.3,seed=5+igb-model?speed=10m\"\n[[stream]]\n",
    );
    let o = bench(&[
        "frame-loss",
        lossy.to_str().unwrap(),
        "--sizes",
        "256",
        "--trial-s",
        "0.05",
        "--settle-ms",
        "200",
        "--step",
        "25",
        "--json",
        j.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&j);
    let steps = v["sizes"][0]["steps"].as_array().unwrap().clone();
    let loads: Vec<f64> = steps.iter().map(|s| f(&s["load_pct"])).collect();
    assert_eq!(loads, vec![100.0, 75.0, 50.0, 25.0]);
    assert_eq!(v["sizes"][0]["two_clean"], false);
    assert!(steps.iter().all(|s| s["lost"].as_u64().unwrap() > 0));
    assert!(text(&o).contains("no two successive trials without loss"));
    std::fs::remove_dir_all(&dir).ok();
}

/// §26.4 against a peer that never reads: the cable's ring (256 slots)
/// holds a burst of 256, and the 257th frame is lost — every search finds
/// exactly the ring.
#[test]
fn model_back_to_back_finds_the_ring_of_a_dead_peer() {
    let dir = tmpdir("bench-b2b");
    let cfg = config(
        &dir,
        "c.toml",
        "[run]\nlcores = \"0\"\n[[port]]\nspec = \"ring:bench-b2b\"\nring_size = 256\n[[port]]\nspec = \"ring:bench-b2b\"\n[[stream]]\n",
    );
    let j = dir.join("r.json");
    let o = bench(&[
        "back-to-back",
        cfg.to_str().unwrap(),
        "--sizes",
        "64",
        "--max-burst",
        "1000",
        "--repeat",
        "2",
        "--settle-ms",
        "20",
        "--max-rate",
        "100 kpps",
        "--json",
        j.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&j);
    let s = &v["sizes"][0];
    assert_eq!(s["bursts"], serde_json::json!([256, 256]), "{}", text(&o));
    assert_eq!(f(&s["mean"]), 256.0);
    assert!((f(&s["burst_pps"]) - 100e3).abs() < 1e-6);
    std::fs::remove_dir_all(&dir).ok();
}

/// The shipped config runs: a looped-back 100 Mbit/s model whose stream
/// carries latency stamps; the NDR comes with its latency.
#[test]
fn model_rfc2544_config_runs_with_latency() {
    let dir = tmpdir("bench-cfg");
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/rfc2544.toml");
    let j = dir.join("r.json");
    let o = bench(&[
        "throughput",
        cfg.to_str().unwrap(),
        "--sizes",
        "64",
        "--trial-s",
        "0.1",
        "--settle-ms",
        "200",
        "--resolution",
        "10",
        "--json",
        j.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&j);
    assert_eq!(v["loss_basis"], "received");
    let t = &v["sizes"][0]["throughput"];
    assert_eq!(t["found"], true, "{}", text(&o));
    assert!(f(&t["line_pct"]) <= 100.001);
    let l = &t["latency"][0];
    assert_eq!(l["stream"], "bench");
    let (min, avg, p99, max) = (
        f(&l["min_ns"]),
        f(&l["avg_ns"]),
        f(&l["p99_ns"]),
        f(&l["max_ns"]),
    );
    assert!(min > 0.0 && min <= avg && avg <= max && p99 <= max, "{l}");
    assert!(l["received"].as_u64().unwrap() > 0);
    assert!(text(&o).contains("latency µs min/avg/p99/max"));
    std::fs::remove_dir_all(&dir).ok();
}

/// A stream that should come back and never does: a clear error, exit 1,
/// after one bounded trial — not a hang.
#[test]
fn model_a_port_that_delivers_nothing_is_an_error() {
    let dir = tmpdir("bench-none");
    let cfg = config(
        &dir,
        "c.toml",
        "[run]\nlcores = \"0\"\n[[port]]\nspec = \"null\"\n[[stream]]\nlatency = true\n",
    );
    let t0 = Instant::now();
    let o = bench(&[
        "throughput",
        cfg.to_str().unwrap(),
        "--sizes",
        "64",
        "--trial-s",
        "0.05",
        "--settle-ms",
        "50",
        "--max-rate",
        "10 kpps",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("came back") && e.contains("null"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(20));
    std::fs::remove_dir_all(&dir).ok();
}

/// Bad flags and configs: exit 2 before any trial, naming the flag or key.
#[test]
fn bad_input_exits_2_naming_the_flag() {
    let dir = tmpdir("bench-bad");
    let ok = config(
        &dir,
        "ok.toml",
        "[run]\nlcores = \"0\"\n[[port]]\nspec = \"igb-model?speed=10m\"\n[[stream]]\n",
    );
    let nostream = config(
        &dir,
        "nostream.toml",
        "[run]\nlcores = \"0\"\n[[port]]\nspec = \"null\"\n",
    );
    let fixed = config(
        &dir,
        "fixed.toml",
        "[[port]]\nspec = \"null\"\n[[stream]]\nrate = \"1 Mpps\"\n",
    );
    let norate = config(
        &dir,
        "norate.toml",
        "[[port]]\nspec = \"null\"\n[[stream]]\n",
    );
    let socket = config(
        &dir,
        "socket.toml",
        "[[port]]\nspec = \"lo\"\nip = \"127.0.0.1/8\"\n[[stream]]\nmode = \"socket\"\ndst_ip = \"127.0.0.1\"\n",
    );
    let okp = ok.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["throughput", okp, "--sizes", "63"], "--sizes"),
        (vec!["throughput", okp, "--sizes", "64,big"], "--sizes"),
        (vec!["throughput", okp, "--loss", "101"], "--loss"),
        (vec!["throughput", okp, "--loss=-1"], "--loss"),
        (vec!["throughput", okp, "--pdr", "0"], "--pdr"),
        (
            vec!["throughput", okp, "--loss", "5", "--pdr", "1"],
            "--pdr",
        ),
        (vec!["throughput", okp, "--trial-s", "0"], "--trial-s"),
        (vec!["throughput", okp, "--resolution", "0"], "--resolution"),
        (vec!["throughput", okp, "--max-rate", "fast"], "--max-rate"),
        (
            vec!["throughput", okp, "--max-rate", "1 Gbit/s"],
            "--max-rate",
        ),
        (vec!["frame-loss", okp, "--step", "0"], "--step"),
        (vec!["frame-loss", okp, "--trial-s", "0"], "--trial-s"),
        (vec!["back-to-back", okp, "--repeat", "0"], "--repeat"),
        (vec!["back-to-back", okp, "--max-burst", "0"], "--max-burst"),
        (vec!["throughput", nostream.to_str().unwrap()], "stream"),
        (vec!["throughput", fixed.to_str().unwrap()], "fixed rate"),
        (vec!["throughput", norate.to_str().unwrap()], "--max-rate"),
        (
            vec!["throughput", socket.to_str().unwrap()],
            "stream[0].mode",
        ),
    ];
    for (args, key) in cases {
        let t0 = Instant::now();
        let o = bench(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(key), "{args:?}: {e}");
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{args:?} ran trials"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A stream with its own rate keeps it: a 1 kpps latency probe beside the
/// varied bulk stream takes its load off the line rate before the search,
/// and its latency is reported at the rate found.
#[test]
fn model_fixed_streams_keep_their_rate_and_take_their_load_off_the_line() {
    let dir = tmpdir("bench-fixed");
    let cfg = config(
        &dir,
        "c.toml",
        r#"[run]
lcores = "0"
[[port]]
spec = "igb-model?speed=10m&sink=loopback"
[[stream]]
name = "bulk"
[[stream]]
name = "probe"
size = 64
rate = "1 kpps"
latency = true
priority = 6
"#,
    );
    let j = dir.join("r.json");
    let o = bench(&[
        "throughput",
        cfg.to_str().unwrap(),
        "--sizes",
        "64",
        "--trial-s",
        "0.1",
        "--settle-ms",
        "200",
        "--resolution",
        "5",
        "--json",
        j.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&j);
    assert_eq!(v["ports"][0]["streams"], serde_json::json!(["bulk"]));
    // bulk does not come back as itself (no latency stamps, no rx_port).
    assert_eq!(v["loss_basis"], "transmitted");
    let t = &v["sizes"][0]["throughput"];
    // The probe's 1 kpps × 84 B × 8 = 672 kbit/s of the 10 Mbit/s.
    let want = 100.0 * (10e6 - 1e3 * 84.0 * 8.0) / 10e6;
    let line = f(&t["line_pct"]);
    assert!(
        line <= want + 1e-3 && line >= want * 0.95,
        "{line}% of line, want {want}%"
    );
    assert_eq!(f(&t["load_pct"]), 100.0);
    let l = &t["latency"][0];
    assert_eq!(l["stream"], "probe");
    assert!(l["received"].as_u64().unwrap() >= 90, "{l}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A size the port refuses (an untagged 1522-byte frame is above igb's
/// 1500-byte MTU) is exit 2 naming the key, and the sizes done before it
/// are still printed.
#[test]
fn model_a_refused_size_stops_the_bench_showing_what_it_found() {
    let dir = tmpdir("bench-mtu");
    let cfg = config(
        &dir,
        "c.toml",
        "[run]\nlcores = \"0\"\n[[port]]\nspec = \"igb-model?speed=10m\"\n[[stream]]\n",
    );
    let o = bench(&[
        "throughput",
        cfg.to_str().unwrap(),
        "--sizes",
        "64,1522",
        "--trial-s",
        "0.05",
        "--settle-ms",
        "200",
        "--resolution",
        "10",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("stream[0].size") && e.contains("MTU"), "{e}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("stopped at 1522 B"), "{out}");
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("64 ")),
        "the 64 B row: {out}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
