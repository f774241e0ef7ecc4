//! The generator's stream features end to end: field ranges, IMIX, latency
//! with loss/reorder accounting over a ring pair, pcap replay, bad configs.

use std::path::Path;
use std::process::Command;
use wirespeed::ethdev::pcap::{read_file, PcapWriter};

mod common;
use common::{bin, tmpdir, tshark_fields as tshark};

fn run_cfg(dir: &Path, name: &str, toml: &str, extra: &[&str]) -> (serde_json::Value, String) {
    run_cfg_exit(dir, name, toml, extra, 0)
}

/// Runs a config and expects exit status `code` (the JSON is written either way).
fn run_cfg_exit(
    dir: &Path,
    name: &str,
    toml: &str,
    extra: &[&str],
    code: i32,
) -> (serde_json::Value, String) {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, toml).unwrap();
    let json = dir.join(format!("{name}.json"));
    let out = Command::new(bin())
        .args(["gen", "--no-huge", "-q"])
        .arg(&cfg)
        .arg("--json")
        .arg(&json)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{name}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap(),
        stdout,
    )
}

#[test]
fn field_ranges_give_the_exact_sequence_with_valid_checksums() {
    let dir = tmpdir("fields");
    let pcap = dir.join("f.pcap");
    let (v, _) = run_cfg(
        &dir,
        "fields",
        &format!(
            r#"[run]
lcores = "0"
[[port]]
spec = "pcap:{}"
[[stream]]
count = 12
size = 100
[[stream.field]]
name = "src_ip"
min = "10.0.0.1"
max = "10.0.0.3"
[[stream.field]]
name = "dst_port"
op = "dec"
min = 2000
max = 2003
step = 2
[[stream.field]]
name = "dst_mac"
min = "02:00:00:00:00:fe"
max = "02:00:00:00:01:00"
"#,
            pcap.display()
        ),
        &[],
    );
    assert_eq!(v["packets_sent"], 12);
    let lines = tshark(
        &pcap,
        &[
            "ip.src",
            "udp.dstport",
            "eth.dst",
            "ip.checksum.status",
            "udp.checksum.status",
        ],
    );
    assert_eq!(lines.len(), 12);
    let ips = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    let macs = [
        "02:00:00:00:00:fe",
        "02:00:00:00:00:ff",
        "02:00:00:00:01:00",
    ];
    // dec by 2 over 2000..=2003 (span 4): 2003, 2001, 2003, ...
    for (i, l) in lines.iter().enumerate() {
        let port = if i % 2 == 0 { 2003 } else { 2001 };
        let want = format!("{} {port} {} 1 1", ips[i % 3], macs[i % 3]);
        assert_eq!(l, &want, "packet {i}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn imix_proportions_hold_and_sizes_interleave() {
    let dir = tmpdir("imix");
    let pcap = dir.join("i.pcap");
    let (v, _) = run_cfg(
        &dir,
        "imix",
        &format!(
            "[[port]]\nspec = \"pcap:{}\"\n[[stream]]\ncount = 100000\nimix = \"simple\"\n",
            pcap.display()
        ),
        &[],
    );
    assert_eq!(v["packets_sent"], 100_000);
    let recs = read_file(&pcap).unwrap();
    assert_eq!(recs.len(), 100_000);
    let n = |len: usize| recs.iter().filter(|r| r.data.len() == len).count() as f64;
    for (size, w) in [(60usize, 7.0), (590, 4.0), (1514, 1.0)] {
        let share = n(size) / 100_000.0;
        let want = w / 12.0;
        assert!(
            (share - want).abs() / want < 0.01,
            "size {size}: {share} vs {want}"
        );
    }
    // Spread evenly: never three 64-byte frames in a row.
    let lens: Vec<usize> = recs.iter().map(|r| r.data.len()).collect();
    assert!(!lens.windows(3).any(|w| w.iter().all(|&l| l == 60)));
    // A sample dissects clean.
    let sample = dir.join("sample.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&sample).unwrap()).unwrap();
    for r in recs.iter().take(24) {
        w.write(r.ts_ns, &r.data).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    for l in tshark(&sample, &["ip.checksum.status", "udp.checksum.status"]) {
        assert_eq!(l, "1 1");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn latency_over_a_ring_pair_accounts_every_sequence_number() {
    let dir = tmpdir("lat");
    let cfg = |spec: &str, tag: &str| {
        format!(
            r#"[run]
lcores = "0"
[[port]]
spec = "{spec}"
[[port]]
spec = "ring:{tag}"
[[stream]]
name = "probe"
count = 20000
size = 64
latency = true
rx_port = 1
"#
        )
    };
    let (v, out) = run_cfg(
        &dir,
        "clean",
        &cfg("ring:lat-clean", "lat-clean"),
        &[
            "--hlog",
            dir.join("l.hlog").to_str().unwrap(),
            "--plot",
            dir.join("p.svg").to_str().unwrap(),
        ],
    );
    let l = &v["streams"][0]["latency"];
    assert_eq!(l["sent"], 20000, "{out}");
    assert_eq!(l["received"], 20000, "{out}");
    assert_eq!(l["lost"], 0);
    assert_eq!(l["duplicates"], 0);
    assert_eq!(l["reordered"], 0);
    assert!(l["ns"]["p50"].as_u64().unwrap() > 0);
    assert!(l["ns"]["max"].as_u64().unwrap() >= l["ns"]["p99"].as_u64().unwrap());
    let hlog = std::fs::read_to_string(dir.join("l.hlog")).unwrap();
    assert!(
        hlog.contains("#[StartTime:") && hlog.contains("Tag=probe,"),
        "{hlog}"
    );
    let svg = std::fs::read_to_string(dir.join("p.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("probe"));

    // A lossy, reordering cable: the report matches what the cable did.
    let (v, out) = run_cfg(
        &dir,
        "faulty",
        &cfg("ring:lat-faulty?drop_every=97&swap_every=41", "lat-faulty"),
        &[],
    );
    let l = &v["streams"][0]["latency"];
    let x = &v["ports"][0]["xstats"];
    assert_eq!(l["sent"], 20000, "{out}");
    assert_eq!(l["lost"], x["fault_drops"], "{out}");
    assert_eq!(l["lost"], 20000 / 97);
    assert_eq!(l["reordered"], x["fault_swaps"], "{out}");
    assert!(l["reordered"].as_u64().unwrap() > 400);
    assert_eq!(l["duplicates"], 0);
    // Conservation at the port: sent = transmitted + dropped.
    assert_eq!(
        v["ports"][0]["tx_packets"].as_u64().unwrap() + v["ports"][0]["tx_drops"].as_u64().unwrap(),
        20000
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Named `model_*` so it runs in the serial phase: it measures timing.
#[test]
fn model_pcap_replay_reproduces_bytes_and_gaps() {
    let dir = tmpdir("replay");
    let input = dir.join("in.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&input).unwrap()).unwrap();
    let mut frames = Vec::new();
    for i in 0..20u64 {
        let mut f = vec![0u8; 60 + (i as usize * 37) % 900];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[12] = 0x88;
        f[13] = 0xb5;
        for (j, b) in f.iter_mut().enumerate().skip(14) {
            *b = (j as u64 * 7 + i) as u8;
        }
        // 10 ms apart, with one 30 ms pause.
        let ts = 1_000_000_000 + i * 10_000_000 + if i >= 10 { 30_000_000 } else { 0 };
        w.write(ts, &f).unwrap();
        frames.push((ts, f));
    }
    w.flush().unwrap();
    drop(w);
    let out = dir.join("out.pcap");
    let (v, _) = run_cfg(
        &dir,
        "replay",
        &format!(
            "[[port]]\nspec = \"pcap:{}\"\n[[stream]]\nmode = \"pcap\"\npcap = \"{}\"\nloops = 2\n",
            out.display(),
            input.display()
        ),
        &[],
    );
    assert_eq!(v["packets_sent"], 40);
    // A replay has the file's sizes, not the default 64 B.
    assert_eq!(v["streams"][0]["sizes"], "pcap frames");
    let got = read_file(&out).unwrap();
    assert_eq!(got.len(), 40);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.data, frames[i % 20].1, "frame {i} differs");
    }
    // Each frame leaves at its offset in the file. Deadlines are absolute, so
    // a frame delayed by the OS does not shift the rest: measured against the
    // least-late frame, the median frame is within 2 ms of its schedule (which
    // includes the 30 ms pause: ignoring it would put half the frames 30 ms off).
    let lateness: Vec<i64> = (0..20)
        .map(|i| (got[i].ts_ns - got[0].ts_ns) as i64 - (frames[i].0 - frames[0].0) as i64)
        .collect();
    let base = *lateness.iter().min().unwrap();
    let mut errs: Vec<i64> = lateness.iter().map(|l| l - base).collect();
    errs.sort();
    assert!(errs[errs.len() / 2] < 2_000_000, "timing errors {errs:?}");
    // A truncated pcap is an error naming the record, exit 2.
    let bad = dir.join("bad.pcap");
    let img = std::fs::read(&input).unwrap();
    std::fs::write(&bad, &img[..img.len() - 10]).unwrap();
    let cfg = dir.join("bad.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[port]]\nspec = \"null\"\n[[stream]]\nmode = \"pcap\"\npcap = \"{}\"\n",
            bad.display()
        ),
    )
    .unwrap();
    let o = Command::new(bin())
        .args(["gen", "-q", "--no-huge"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("stream[0].pcap") && e.contains("record 19"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn broken_configs_exit_2_naming_the_key() {
    let dir = tmpdir("broken");
    let cases: &[(&str, &str)] = &[
        ("[[port]]\nspec = \"null\"\n[[stream]]\nrate = \"lots\"\n", "stream[0].rate"),
        ("[[port]]\nspec = \"null\"\n[[stream]]\nrate = \"50%\"\ncount = 10\n", "stream[0].rate"),
        ("[[port]]\nspec = \"null\"\n[[stream]]\nimix = \"big\"\n", "stream[0].imix"),
        ("[[port]]\nspec = \"null\"\n[[stream]]\nsize = 9000\n", "stream[0].size"),
        ("[[port]]\nspec = \"null\"\n[[stream]]\nsizes = 64\n", "unknown field `sizes`"),
        ("[[port]]\nspec = \"null\"\n[[stream]]\nrx_port = 4\n", "stream[0].rx_port"),
        ("[[port]]\nspec = \"null\"\n[[stream]]\npriority = 16\n", "stream[0].priority"),
        ("[[port]]\nspec = \"null\"\n[[stream]]\npayload = \"hex:ABC\"\n", "stream[0].payload"),
        ("[[port]]\nspec = \"null\"\ntx_queues = 1\n[run]\nlcores = \"0-1\"\n", "port[0].tx_queues"),
        ("[[port]]\nspec = \"null?x=1\"\n", "port[0].spec"),
        ("[[port]]\nspec = \"ring:a?drop_every=x\"\n", "port[0].spec"),
        ("[[port]]\nspec = \"null\"\n[[stream]]\nmode = \"pcap\"\npcap = \"/nonexistent.pcap\"\n", "stream[0].pcap"),
    ];
    for (i, (toml, needle)) in cases.iter().enumerate() {
        let cfg = dir.join(format!("c{i}.toml"));
        std::fs::write(&cfg, toml).unwrap();
        let o = Command::new(bin())
            .args(["gen", "-q", "--no-huge", "--duration", "0.1"])
            .arg(&cfg)
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "case {i} ({needle}): {e}");
        assert!(e.contains(needle), "case {i}: expected '{needle}' in: {e}");
        assert!(!e.contains("panicked"));
    }
    let o = Command::new(bin())
        .args([
            "gen", "-q", "--port", "null", "--plot", "x.png", "--count", "1",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn socket_mode_resolves_by_arp_and_measures_latency() {
    let dir = tmpdir("sock");
    let (v, out) = run_cfg(
        &dir,
        "sock",
        r#"[run]
lcores = "0"
[[port]]
spec = "ring:sock-ok"
ip = "10.0.0.1/24"
[[port]]
spec = "ring:sock-ok"
ip = "10.0.0.2/24"
[[stream]]
mode = "socket"
dst_ip = "10.0.0.2"
dst_port = 7000
count = 2000
size = 200
latency = true
rx_port = 1
"#,
        &[],
    );
    let l = &v["streams"][0]["latency"];
    assert_eq!(l["received"], 2000, "{out}");
    assert_eq!(l["lost"], 0);
    let snmp = &v["stacks"][0]["snmp"];
    assert_eq!(v["stacks"][0]["port"], 0);
    assert_eq!(
        v["stacks"][1]["snmp"]["Udp"]["OutDatagrams"], 0,
        "one table per stack"
    );
    assert_eq!(snmp["Udp"]["OutDatagrams"], 2000, "{snmp}");
    assert_eq!(snmp["Ip"]["OutRequests"], 2000);
    // The stack answered its peer's ARP: both ports sent more than the datagrams.
    assert!(
        v["ports"][1]["tx_packets"].as_u64().unwrap() >= 1,
        "the peer answered ARP"
    );
    for p in v["ports"].as_array().unwrap() {
        assert_eq!(p["conserved"], true);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A socket stream on two lcores (issue 15): each lcore sends its half
/// through its own replica of the port's stack, from its own socket (source
/// ports 7100 and 7101); the ARP reply for whichever replica asked lands on
/// the one RX queue (lcore 0) and resolves the neighbour for both through
/// the shared control plane; the report adds the replicas up per port.
#[test]
fn socket_stream_sends_from_every_lcore_through_the_shared_control_plane() {
    let dir = tmpdir("sock2");
    let (v, out) = run_cfg(
        &dir,
        "sock2",
        r#"[run]
lcores = "0-1"
[[port]]
spec = "ring:sock-two"
ip = "10.0.0.1/24"
[[port]]
spec = "ring:sock-two"
ip = "10.0.0.2/24"
[[stream]]
mode = "socket"
dst_ip = "10.0.0.2"
dst_port = 7000
src_port = 7100
count = 2000
size = 200
latency = true
rx_port = 1
"#,
        &[],
    );
    let l = &v["streams"][0]["latency"];
    assert_eq!(l["received"], 2000, "{out}");
    assert_eq!(l["lost"], 0, "{out}");
    let lc = v["lcores"].as_array().unwrap();
    assert_eq!(lc.len(), 2, "{out}");
    for x in lc {
        assert_eq!(x["packets"], 1000, "each lcore sends its half: {x}");
    }
    let st = v["stacks"].as_array().unwrap();
    assert_eq!(
        st.len(),
        2,
        "one entry per port, the replicas added up: {out}"
    );
    assert_eq!(st[0]["port"], 0);
    assert_eq!(st[0]["snmp"]["Udp"]["OutDatagrams"], 2000, "{out}");
    assert_eq!(st[1]["snmp"]["Udp"]["OutDatagrams"], 0, "{out}");
    for p in v["ports"].as_array().unwrap() {
        assert_eq!(p["conserved"], true, "{out}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn socket_mode_unreachable_peer_is_counted_and_ends() {
    let dir = tmpdir("sock-unreach");
    let t0 = std::time::Instant::now();
    // Nothing can be delivered: the run says so and exits 1.
    let (v, out) = run_cfg_exit(
        &dir,
        "unreach",
        r#"[run]
lcores = "0"
[[port]]
spec = "ring:nobody-home"
ip = "10.9.0.1/24"
[[port]]
spec = "ring:nobody-home"
ip = "10.9.0.2/24"
[[stream]]
mode = "socket"
dst_ip = "10.9.0.7"
count = 1000000
"#,
        &[],
        1,
    );
    // The neighbour fails after its probes: the run ends there, naming the peer.
    assert!(
        out.contains("10.9.0.7 did not answer ARP")
            || v["failures"]
                .to_string()
                .contains("10.9.0.7 did not answer ARP"),
        "{out}"
    );
    assert!(t0.elapsed().as_secs() < 20, "took {:?}", t0.elapsed());
    let s = &v["streams"][0];
    assert_eq!(s["packets"], 0, "delivered nothing: {out}");
    // The run lasted until the neighbour failed (3 probes, a second apart),
    // and the summary says so (it used to say "in 0.000 s").
    assert!(v["duration_s"].as_f64().unwrap() > 2.0, "{out}");
    assert_eq!(s["achieved_pps"], 0.0, "{out}");
    assert!(
        s["flags"].to_string().contains("DELIVERED NOTHING"),
        "{out}"
    );
    assert!(
        v["failures"].to_string().contains("delivered nothing"),
        "{out}"
    );
    // Every datagram the socket took is accounted for as dropped in the stack.
    assert_eq!(s["offered"], s["dropped"]["stack"], "{out}");
    let neigh = &v["stacks"][0]["snmp"]["Neigh"];
    assert!(neigh["res_failed"].as_u64().unwrap() >= 1, "{neigh}");
    std::fs::remove_dir_all(&dir).ok();
}
