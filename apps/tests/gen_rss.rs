//! The generator on the igb model with receive-side scaling: two lcores,
//! each polling its own RX queue, each receives exactly the flows the
//! model's Toeplitz hash and redirection table send to that queue; and the
//! `[[port]]` RSS keys' errors name the key.

use std::process::Command;
use wirespeed::ethdev::rss::{toeplitz_hash, DEFAULT_RSS_KEY};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wirespeed")
}

fn gen(name: &str, toml: &str) -> (std::process::Output, Option<serde_json::Value>) {
    let dir = std::env::temp_dir().join(format!("ws-rss-{name}-{}", std::process::id()));
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
    let v = std::fs::read(&json)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap());
    std::fs::remove_dir_all(&dir).ok();
    (out, v)
}

/// RX queue of a UDP flow 198.18.0.1:sport → 198.18.0.2:1024 under the
/// default key and a round-robin RETA over `nq` queues (entry i → i % nq).
fn queue_of(sport: u16, nq: u32) -> usize {
    let mut t = vec![198, 18, 0, 1, 198, 18, 0, 2];
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&1024u16.to_be_bytes());
    ((toeplitz_hash(&DEFAULT_RSS_KEY, &t) & 0x7F) % nq) as usize
}

#[test]
fn model_rss_gives_each_lcore_the_flows_its_queue_hashes_to() {
    let per_lcore = 2000u64;
    let toml = format!(
        r#"
[run]
lcores = "0-1"
count = {}

[[port]]
spec = "igb-model?speed=unlimited&sink=loopback"
rss = true

[[stream]]
size = 64
rate = "20 kpps"
latency = true
[[stream.field]]
name = "src_port"
min = 1000
max = 1255
"#,
        2 * per_lcore
    );
    let (out, v) = gen("two-lcores", &toml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = v.unwrap();
    // Each lcore's stream steps src_port 1000, 1001, … 1255, 1000, …
    let mut want = [0u64; 2];
    for k in 0..per_lcore {
        want[queue_of(1000 + (k % 256) as u16, 2)] += 2;
    }
    assert!(want[0] > 1000 && want[1] > 1000, "{want:?}");
    let p = &v["ports"][0];
    let x = &p["xstats"];
    let missed = x["hw_rx_missed_packets"].as_u64().unwrap();
    assert!(
        missed < 2 * per_lcore / 10,
        "too loaded to judge: {missed} missed"
    );
    let mut total = 0;
    for q in 0..2 {
        let got = x[format!("rx_q{q}_packets")].as_u64().unwrap();
        // Exact when nothing was missed; a missed frame moves a count by one.
        assert!(
            got.abs_diff(want[q]) <= missed,
            "queue {q}: {got} received, {} hashed to it ({missed} missed)",
            want[q]
        );
        // Queue q is polled by lcore q, which counts what it received.
        let l = &v["lcores"][q];
        assert_eq!(l["lcore"], q as u64);
        assert_eq!(l["rx_packets"].as_u64().unwrap(), got, "lcore {q}");
        total += got;
    }
    assert_eq!(p["rx_packets"].as_u64().unwrap(), total);
    assert_eq!(total + missed, 2 * per_lcore);
}

/// The same through the ice PMD on its model: the generator's `rss` keys
/// are generic (PortInfo's LUT size and hash types), the key and the
/// 2048-entry LUT go to the model firmware over the admin queue, and each
/// lcore receives what the Toeplitz hash and the LUT send to its queue.
/// Frames that arrive before a queue's ring is armed are discarded by the
/// device and counted in the VSI's GLV_RDPC (`vsi_rx_discards`).
#[test]
fn ice_model_rss_gives_each_lcore_the_flows_its_queue_hashes_to() {
    let per_lcore = 2000u64;
    let toml = format!(
        r#"
[run]
lcores = "0-1"
count = {}

[[port]]
spec = "ice-model?sink=loopback&pacing=off"
rss = true

[[stream]]
size = 64
rate = "20 kpps"
[[stream.field]]
name = "src_port"
min = 1000
max = 1255
"#,
        2 * per_lcore
    );
    let (out, v) = gen("ice-two-lcores", &toml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = v.unwrap();
    // Round-robin 2048-entry LUT over 2 queues: entry (h & 2047) → its
    // index % 2, the same split as igb's 128-entry RETA.
    let ice_queue_of = |sport: u16| {
        let mut t = vec![198, 18, 0, 1, 198, 18, 0, 2];
        t.extend_from_slice(&sport.to_be_bytes());
        t.extend_from_slice(&1024u16.to_be_bytes());
        ((toeplitz_hash(&DEFAULT_RSS_KEY, &t) & 2047) % 2) as usize
    };
    let mut want = [0u64; 2];
    for k in 0..per_lcore {
        want[ice_queue_of(1000 + (k % 256) as u16)] += 2;
    }
    assert!(want[0] > 1000 && want[1] > 1000, "{want:?}");
    let p = &v["ports"][0];
    let x = &p["xstats"];
    let mut total = 0;
    for q in 0..2 {
        let got = x[format!("rx_q{q}_packets")].as_u64().unwrap();
        assert!(
            got <= want[q],
            "queue {q}: {got} received, {} hashed to it",
            want[q]
        );
        let l = &v["lcores"][q];
        assert_eq!(l["rx_packets"].as_u64().unwrap(), got, "lcore {q}");
        total += got;
    }
    assert!(
        total >= 2 * per_lcore * 9 / 10,
        "{total} of {} received",
        2 * per_lcore
    );
    assert_eq!(p["rx_packets"].as_u64().unwrap(), total);
}

#[test]
fn rss_keys_are_checked_and_errors_name_them() {
    let base = |port: &str| {
        format!("[run]\nlcores = \"0\"\ncount = 10\n[[port]]\n{port}\n[[stream]]\nsize = 64\n")
    };
    for (port, key, why) in [
        (
            "spec = \"null\"\nrss = true",
            "port[0].rss",
            "no receive-side scaling",
        ),
        (
            "spec = \"igb-model?speed=unlimited\"\nrss = true\nrss_reta = [0, 0]",
            "port[0].rss_reta",
            "exactly 128",
        ),
        (
            "spec = \"igb-model?speed=unlimited\"\nrss = true\nrx_queues = 2\nrss_reta = [0, 1, 2]",
            "port[0].rss_reta",
            "exactly 128",
        ),
        (
            "spec = \"igb-model?speed=unlimited\"\nrss = true\nrss_key = \"6d5a\"",
            "port[0].rss_key",
            "40 bytes of hex",
        ),
        (
            "spec = \"igb-model?speed=unlimited\"\nrss = true\nrss_hash = [\"ipv6\"]",
            "port[0].rss_hash",
            "'ipv6'",
        ),
        (
            "spec = \"igb-model?speed=unlimited\"\nrss_hash = [\"ipv4\"]",
            "port[0].rss_hash",
            "rss = true",
        ),
        (
            "spec = \"igb-model?speed=unlimited\"\nrx_queues = 99",
            "port[0].rx_queues",
            "1..=16",
        ),
    ] {
        let (out, _) = gen("errors", &base(port));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{port}: {err}");
        assert!(err.contains(key) && err.contains(why), "{port}: {err}");
    }
    // A RETA entry beyond the RX queues names its index.
    let reta: Vec<String> = (0..128)
        .map(|i| if i == 77 { "3" } else { "1" }.to_string())
        .collect();
    let port = format!(
        "spec = \"igb-model?speed=unlimited\"\nrss = true\nrx_queues = 2\nrss_reta = [{}]",
        reta.join(", ")
    );
    let (out, _) = gen("errors", &base(&port));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("port[0].rss_reta[77]") && err.contains("queue 3"),
        "{err}"
    );
}
