//! `wirespeed gen` end to end: frames written to a pcap port dissect cleanly in
//! tshark with IPv4 and UDP checksum validation on.

use std::process::Command;

mod common;
use common::{bin, tmpdir, tshark_fields};

fn gen(args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(["gen", "--no-huge", "-q"])
        .args(args)
        .output()
        .expect("run wirespeed")
}

#[test]
fn pcap_frames_have_exact_sizes_and_valid_checksums() {
    let dir = tmpdir("sizes");
    for size in [64u32, 65, 1000, 1518] {
        let pcap = dir.join(format!("s{size}.pcap"));
        let json = dir.join(format!("s{size}.json"));
        let out = gen(&[
            "--port",
            &format!("pcap:{}", pcap.display()),
            "--count",
            "1000",
            "--size",
            &size.to_string(),
            "--json",
            json.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = tshark_fields(
            &pcap,
            &[
                "frame.len",
                "ip.checksum.status",
                "udp.checksum.status",
                "ip.len",
                "udp.length",
            ],
        );
        assert_eq!(lines.len(), 1000, "size {size}");
        let flen = size - 4; // the pcap holds frames without FCS
        let want = format!("{flen} 1 1 {} {}", flen - 14, flen - 34);
        for l in &lines {
            assert_eq!(l, &want, "size {size}");
        }
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(v["packets_sent"], 1000);
        assert_eq!(v["bytes_sent"], 1000 * flen as u64);
        assert_eq!(v["ports"][0]["queues"][0]["packets"], 1000);
        assert!(v["mpps"].as_f64().unwrap() > 0.0);
        assert!(v["duration_s"].as_f64().unwrap() > 0.0);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn vlan_stream_is_tagged_and_valid() {
    let dir = tmpdir("vlan");
    let pcap = dir.join("v.pcap");
    let out = gen(&[
        "--port",
        &format!("pcap:{}", pcap.display()),
        "--count",
        "10",
        "--size",
        "128",
        "--vlan",
        "42",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = tshark_fields(
        &pcap,
        &["vlan.id", "ip.checksum.status", "udp.checksum.status"],
    );
    assert_eq!(lines.len(), 10);
    assert!(lines.iter().all(|l| l == "42 1 1"), "{lines:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_exits_2_with_the_key_named() {
    let dir = tmpdir("bad");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--port".into(), "nope:x".into()],
            "unknown driver 'nope'",
        ),
        (
            vec!["--port".into(), "null".into(), "--size".into(), "20".into()],
            "stream[0].size",
        ),
        (
            vec![
                "--port".into(),
                "null".into(),
                "--lcores".into(),
                "999".into(),
            ],
            "run.lcores",
        ),
        (
            vec![
                "--port".into(),
                "null".into(),
                "--lcores".into(),
                "1-0".into(),
            ],
            "run.lcores",
        ),
        (vec!["--port".into(), "pcap:".into()], "port[0].spec"),
        (
            vec![dir.join("missing.toml").display().to_string()],
            "cannot read config file",
        ),
    ];
    for (args, needle) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = gen(&a);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let cfg = dir.join("typo.toml");
    std::fs::write(
        &cfg,
        "[run]\nlcores = \"0\"\ncuont = 5\n[[port]]\nspec = \"null\"\n",
    )
    .unwrap();
    let out = gen(&[cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("typo.toml:3") && err.contains("cuont"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ice_model_frames_dissect_clean() {
    let dir = tmpdir("ice");
    let pcap = dir.join("ice.pcap");
    let out = gen(&[
        "--port",
        &format!("ice-model?sink=pcap:{}", pcap.display()),
        "--count",
        "1000",
        "--size",
        "128",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = tshark_fields(
        &pcap,
        &["frame.len", "ip.checksum.status", "udp.checksum.status"],
    );
    assert_eq!(lines.len(), 1000);
    assert!(lines.iter().all(|l| l == "124 1 1"), "{:?}", &lines[..3]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sigint_ends_a_run_cleanly_with_a_summary() {
    let dir = tmpdir("sigint");
    let json = dir.join("s.json");
    let child = Command::new(bin())
        .args([
            "gen",
            "--no-huge",
            "-q",
            "--port",
            "null",
            "--duration",
            "60",
            "--rate",
            "1 Mpps",
            "--json",
        ])
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let t0 = std::time::Instant::now();
    let rc = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(rc.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        t0.elapsed().as_secs() < 10,
        "stopping took {:?}",
        t0.elapsed()
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let sent = v["packets_sent"].as_u64().unwrap();
    assert!(sent > 10_000, "sent {sent}");
    assert_eq!(v["ports"][0]["conserved"], true);
    assert_eq!(v["lcores"][0]["mempool_in_use_at_end"], 0);
    std::fs::remove_dir_all(&dir).ok();
}

/// `--capture PORT:FILE`: what the receiving end of a ring pair got, in
/// pcapng, read back by our reader and by tshark (checksums validated);
/// `--capture-limit` caps the file and counts the rest.
#[test]
fn capture_writes_what_a_port_receives() {
    let dir = tmpdir("capture");
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        "[run]\nlcores = \"0\"\n[[port]]\nspec = \"ring:cap\"\n[[port]]\nspec = \"ring:cap\"\n\
         [[stream]]\ncount = 500\nsize = 100\nrx_port = 1\n",
    )
    .unwrap();
    let file = dir.join("rx.pcapng");
    let json = dir.join("s.json");
    let out = gen(&[
        cfg.to_str().unwrap(),
        "--capture",
        &format!("1:{}", file.display()),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = wirespeed::ethdev::pcap::read_file(&file).unwrap();
    assert_eq!(recs.len(), 500);
    assert!(recs.iter().all(|r| r.data.len() == 96));
    assert!(recs.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
    let lines = tshark_fields(
        &file,
        &["frame.len", "ip.checksum.status", "udp.checksum.status"],
    );
    assert_eq!(lines.len(), 500);
    // Status 1: checksum verified good.
    assert!(lines.iter().all(|l| l == "96 1 1"), "{:?}", &lines[..3]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(
        v["ports"][1]["xstats"]["tap_rx_frames"], 500,
        "{}",
        v["ports"][1]["xstats"]
    );
    assert_eq!(v["ports"][1]["xstats"]["tap_tx_frames"], 0);
    // A limit: 40 frames written, the other 460 counted.
    let out = gen(&[
        cfg.to_str().unwrap(),
        "--capture",
        &format!("1:{}", file.display()),
        "--capture-limit",
        "40",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(wirespeed::ethdev::pcap::read_file(&file).unwrap().len(), 40);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["ports"][1]["xstats"]["tap_limit_skipped"], 460);
    // Bad input names the flag.
    for bad in ["x:rx.pcap", "7:rx.pcap", "1:", "1:a+b"] {
        let o = gen(&[cfg.to_str().unwrap(), "--capture", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--capture"),
            "{bad}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A chain (`after`, TRex's `next`): the second stream starts when the
/// first has ended — every frame of the first is on the wire before any of
/// the second; a name that is not an earlier stream, or one that never
/// ends, is refused naming the key.
#[test]
fn a_chained_stream_starts_when_the_one_before_ends() {
    let dir = tmpdir("chain");
    let pcap = dir.join("c.pcap");
    let cfg = dir.join("c.toml");
    let body = |after: &str, first_bound: &str| {
        format!(
            "[run]\nlcores = \"0\"\n[[port]]\nspec = \"pcap:{}\"\n\
             [[stream]]\nname = \"first\"\nsize = 64\nrate = \"200 kpps\"\n{first_bound}\n\
             [[stream]]\nname = \"second\"\nsize = 128\nrate = \"200 kpps\"\ncount = 300\nafter = \"{after}\"\n",
            pcap.display()
        )
    };
    std::fs::write(&cfg, body("first", "count = 500")).unwrap();
    let out = gen(&[cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = wirespeed::ethdev::pcap::read_file(&pcap).unwrap();
    let lens: Vec<usize> = recs.iter().map(|r| r.data.len()).collect();
    assert_eq!(lens.len(), 800);
    assert!(
        lens[..500].iter().all(|l| *l == 60),
        "the first stream's 500 frames first"
    );
    assert!(
        lens[500..].iter().all(|l| *l == 124),
        "then the second's 300"
    );
    for (after, bound, key_says) in [
        ("nobody", "count = 500", "earlier stream"),
        ("first", "", "never ends"),
    ] {
        std::fs::write(&cfg, body(after, bound)).unwrap();
        let o = gen(&[cfg.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("stream[1].after") && e.contains(key_says), "{e}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
