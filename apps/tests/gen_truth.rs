//! Issue 10, "truth in every counter": what the generator reports is what the
//! port delivered; bad flags are refused before anything starts; the command
//! line wins over the config; the MTU is the MTU.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{bin, tmpdir};

fn gen(args: &[&str]) -> Output {
    Command::new(bin())
        .args(["gen", "--no-huge", "-q"])
        .args(args)
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

/// A port that loses every other frame: "achieved" is what left, the
/// stream is flagged, and the drop is named.
#[test]
fn achieved_is_the_delivered_rate_not_the_offered_one() {
    let dir = tmpdir("truth-deliv");
    let j = dir.join("d.json");
    let cfg = dir.join("d.toml");
    std::fs::write(
        &cfg,
        r#"[run]
lcores = "0"
[[port]]
spec = "ring:truth-half?drop_every=2"
[[port]]
spec = "ring:truth-half"
[[stream]]
count = 10000
rate = "1 Mpps"
rx_port = 1
"#,
    )
    .unwrap();
    let o = gen(&[cfg.to_str().unwrap(), "--json", j.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&j);
    let s = &v["streams"][0];
    assert_eq!(s["offered"], 10000, "{}", text(&o));
    assert_eq!(s["packets"], 5000, "only what the port transmitted");
    assert_eq!(s["dropped"]["after_queue"], 5000);
    // Achieved is the transmitted half over the stream's active time (on a
    // loaded machine the offered rate itself may fall short of 1 Mpps).
    let pps = s["achieved_pps"].as_f64().unwrap();
    let active = s["active_s"].as_f64().unwrap();
    assert!(
        (pps * active - 5000.0).abs() < 1.0,
        "achieved {pps} pps over {active} s is not the 5000 delivered"
    );
    assert_eq!(s["rate_miss"], true);
    let flags = s["flags"].to_string();
    assert!(flags.contains("DROPPED 5000 of 10000"), "{flags}");
    assert!(text(&o).contains("sent 5000"), "{}", text(&o));
    assert_eq!(v["ports"][0]["conserved"], true);
    std::fs::remove_dir_all(&dir).ok();
}

/// Outputs are checked before the run, exit 2 naming the flag.
#[test]
fn unwritable_outputs_are_refused_before_the_run() {
    let t0 = std::time::Instant::now();
    for (flag, extra) in [
        ("--json", vec!["--json", "/nonexistent/dir/x.json"]),
        ("--hlog", vec!["--hlog", "/nonexistent/dir/x.hlog"]),
        ("--plot", vec!["--plot", "/nonexistent/dir/x.svg"]),
        (
            "port[0].spec",
            vec!["--port", "pcap:/nonexistent/dir/x.pcap"],
        ),
        (
            "port[0].spec",
            vec!["--port", "ice-model?sink=pcap:/nonexistent/dir/x.pcap"],
        ),
    ] {
        let mut args = vec!["--duration", "5"];
        args.extend(extra);
        let o = gen(&args);
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(flag), "{flag}: {err}");
        assert!(err.contains("/nonexistent/dir"), "{flag}: {err}");
    }
    // Five 5-second runs refused up front, not after running.
    assert!(t0.elapsed().as_secs() < 20, "{:?}", t0.elapsed());
}

/// A port whose queue never moves (a ring whose other end nobody opened)
/// ends the run after the TX watchdog's 5 s, exit 1, instead of hanging.
#[test]
fn a_stalled_queue_ends_the_run() {
    let t0 = std::time::Instant::now();
    let o = gen(&["--port", "ring:truth-nobody", "--count", "100000"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(t0.elapsed().as_secs() < 30, "{:?}", t0.elapsed());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("took no packet") && err.contains("ring:truth-nobody"),
        "{err}"
    );
}

/// A flag on the command line wins over the config, and `--count 0` is refused.
#[test]
fn count_flag_wins_over_the_config_and_zero_is_refused() {
    let dir = tmpdir("truth-count");
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/socket-arp.toml");
    let j = dir.join("c.json");
    let o = gen(&[
        cfg.to_str().unwrap(),
        "--count",
        "1000",
        "--json",
        j.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&j);
    assert_eq!(v["streams"][0]["offered"], 1000, "{}", text(&o));
    assert_eq!(v["streams"][0]["packets"], 1000);
    let o = gen(&["--count", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--count"));
    std::fs::remove_dir_all(&dir).ok();
}

/// igb takes 1518-byte frames for VLAN-tagged 1500-byte packets; an
/// untagged 1522-byte frame would carry a 1504-byte packet: refused.
#[test]
fn untagged_frames_above_the_mtu_are_refused() {
    let o = gen(&["--port", "igb-model", "--size", "1522", "--count", "10"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("stream[0].size") && err.contains("1504-byte IPv4 packets"),
        "{err}"
    );
    let o = gen(&[
        "--port",
        "igb-model",
        "--size",
        "1522",
        "--vlan",
        "7",
        "--count",
        "10",
    ]);
    assert_eq!(o.status.code(), Some(0), "tagged 1522 fits: {}", text(&o));
    let o = gen(&["--port", "igb-model", "--size", "1518", "--count", "10"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// A socket stream's size is the datagram's: 4000 bytes go out as three
/// fragments of a 1500-byte MTU.
#[test]
fn socket_datagrams_larger_than_a_frame_are_fragmented() {
    let dir = tmpdir("truth-frag");
    let cfg = dir.join("f.toml");
    std::fs::write(
        &cfg,
        r#"[run]
lcores = "0"
[[port]]
spec = "ring:truth-frag"
ip = "10.0.0.1/24"
[[port]]
spec = "ring:truth-frag"
ip = "10.0.0.2/24"
[[stream]]
mode = "socket"
dst_ip = "10.0.0.2"
dst_port = 7000
size = 4000
count = 500
rate = "10 kpps"
"#,
    )
    .unwrap();
    let j = dir.join("f.json");
    let o = gen(&[cfg.to_str().unwrap(), "--json", j.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&j);
    let ip = &v["stacks"][0]["snmp"]["Ip"];
    assert_eq!(ip["FragOKs"], 500, "{ip}");
    assert_eq!(ip["FragCreates"], 1500, "{ip}");
    assert_eq!(v["streams"][0]["packets"], 500);
    // Every frame the port sent (1500 fragments and the ARP traffic)
    // reached the peer.
    let tx = v["ports"][0]["tx_packets"].as_u64().unwrap();
    assert!(tx > 1500, "{}", text(&o));
    assert_eq!(v["ports"][1]["rx_packets"], tx, "{}", text(&o));
    let o = gen(&[
        cfg.to_str().unwrap(),
        "--size",
        "65508",
        "--json",
        j.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("65507"));
    std::fs::remove_dir_all(&dir).ok();
}

/// `wirespeed ports` fits a 100-column terminal.
#[test]
fn ports_table_fits_100_columns() {
    let o = Command::new(bin()).arg("ports").output().unwrap();
    assert!(o.status.success());
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(t.lines().count() >= 7, "{t}");
    for l in t.lines() {
        // A device spec longer than the column stands alone on its line.
        assert!(
            l.chars().count() <= 100 || !l.contains(' '),
            "too wide: {l}"
        );
    }
}

/// The loopback port: a socket stream to the port's own address comes back
/// on the same port (no ARP: `IFF_NOARP`), every latency probe accounted.
#[test]
fn loopback_port_returns_every_datagram_without_arp() {
    let dir = tmpdir("truth-lo");
    let cfg = dir.join("lo.toml");
    std::fs::write(
        &cfg,
        r#"[run]
lcores = "0"
[[port]]
spec = "lo"
ip = "127.0.0.1/8"
[[stream]]
mode = "socket"
dst_ip = "127.0.0.1"
dst_port = 7000
count = 3000
rate = "100 kpps"
size = 300
latency = true
"#,
    )
    .unwrap();
    let j = dir.join("lo.json");
    let o = gen(&[cfg.to_str().unwrap(), "--json", j.to_str().unwrap()]);
    let v = json(&j);
    let l = &v["streams"][0]["latency"];
    assert_eq!(l["received"], 3000, "{}", text(&o));
    assert_eq!(l["lost"], 0);
    let neigh = &v["stacks"][0]["snmp"]["Neigh"];
    assert_eq!(neigh["arp_requests_sent"], 0, "no ARP on lo: {neigh}");
    assert_eq!(v["ports"][0]["rx_packets"], v["ports"][0]["tx_packets"]);
    assert_eq!(v["ports"][0]["conserved"], true);
    std::fs::remove_dir_all(&dir).ok();
}

/// `--arp` for raw streams asks the engine's neighbour table: a port where
/// nobody answers ends the run once the neighbour's probes are spent
/// (FAILED), naming the address, with the probes counted in the port's
/// stack and no stream frame sent.
#[test]
fn raw_arp_unanswered_ends_the_run_naming_the_peer() {
    let dir = tmpdir("raw-arp-fail");
    let j = dir.join("s.json");
    let o = gen(&[
        "--port",
        "null",
        "--arp",
        "--count",
        "100",
        "--json",
        j.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("ARP: no reply from 198.18.0.2"), "{t}");
    let v = json(&j);
    let neigh = &v["stacks"][0]["snmp"]["Neigh"];
    assert!(neigh["arp_requests_sent"].as_u64().unwrap() >= 3, "{neigh}");
    assert_eq!(v["streams"][0]["offered"], 0);
    std::fs::remove_dir_all(&dir).ok();
}

/// The stamping sink (`null?stamps=FILE`): one stamp per packet sent, in
/// order, and a paced stream's gaps centred on its rate.
#[test]
fn model_stamping_sink_records_every_packet_at_its_pace() {
    let dir = tmpdir("stamps");
    let f = dir.join("s.bin");
    let o = gen(&[
        "--port",
        &format!("null?stamps={}", f.display()),
        "--rate",
        "100 kpps",
        "--count",
        "2000",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let b = std::fs::read(&f).unwrap();
    let ts: Vec<u64> = b
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(ts.len(), 2000);
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "stamps in order");
    let mut gaps: Vec<u64> = ts.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    assert!((9_500..=10_500).contains(&median), "median gap {median} ns");
    // A bad path is refused before the run, naming the key.
    let o = gen(&[
        "--port",
        "null?stamps=/nonexistent/dir/s.bin",
        "--count",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("stamps"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).ok();
}

/// `rx_lcore` puts a port's RX queues on another core: a latency stream
/// sent by lcore 1 is received and recorded on lcore 0, every packet;
/// a core outside run.lcores is refused naming the key.
#[test]
fn latency_returns_can_be_received_on_another_lcore() {
    let dir = tmpdir("rx-lcore");
    let cfg = dir.join("x.toml");
    let j = dir.join("x.json");
    let body = |rx: usize| {
        format!(
            "[run]\nlcores = \"0-1\"\ncount = 20000\n\
             [[port]]\nspec = \"ring:rxl{rx}\"\n\
             [[port]]\nspec = \"ring:rxl{rx}\"\nrx_lcore = {rx}\n\
             [[stream]]\nsize = 64\nlatency = true\nrx_port = 1\nlcores = \"1\"\n"
        )
    };
    std::fs::write(&cfg, body(0)).unwrap();
    let o = gen(&[cfg.to_str().unwrap(), "--json", j.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&j);
    let l = &v["lcores"];
    assert_eq!(l[1]["packets"], 20000, "lcore 1 sends");
    assert_eq!(l[0]["rx_latency"], 20000, "lcore 0 receives: {l}");
    assert_eq!(l[1]["rx_latency"], 0);
    assert_eq!(v["streams"][0]["latency"]["received"], 20000);
    std::fs::write(&cfg, body(7)).unwrap();
    let o = gen(&[cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("port[1].rx_lcore"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).ok();
}

/// A link that flaps under a paced stream: what the queue refused or
/// purged for want of carrier is named as such (not as qdisc drops), and
/// offered = sent + every named drop.
#[test]
fn carrier_loss_is_its_own_drop_bucket() {
    let dir = tmpdir("truth-carrier");
    let j = dir.join("c.json");
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        r#"[run]
lcores = "0"
[[port]]
spec = "fault:flap_ms=20,flap_every_ms=40+null"
[[stream]]
count = 100000
rate = "1 Mpps"
"#,
    )
    .unwrap();
    let o = gen(&[cfg.to_str().unwrap(), "--json", j.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&j);
    let s = &v["streams"][0];
    let d = &s["dropped"];
    let carrier = d["carrier"].as_u64().unwrap();
    assert!(carrier > 0, "the link was down half the time: {d}");
    assert_eq!(d["qdisc"], 0, "a paced stream never fills the qdisc: {d}");
    let total: u64 = ["qdisc", "busy", "after_queue", "stack", "carrier"]
        .iter()
        .map(|k| d[k].as_u64().unwrap())
        .sum();
    assert_eq!(s["offered"], 100000);
    assert_eq!(s["packets"].as_u64().unwrap() + total, 100000, "{d}");
    assert_eq!(v["ports"][0]["conserved"], true, "{}", text(&o));
    assert!(
        text(&o).contains(&format!("{carrier} no carrier")),
        "{}",
        text(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Stamps (ns) the stamping sink recorded for a config's run.
fn stamps_of(dir: &Path, name: &str, stream: &str) -> (Vec<u64>, String) {
    let f = dir.join(format!("{name}.bin"));
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[run]\nlcores = \"0\"\n[[port]]\nspec = \"null?stamps={}\"\n[[stream]]\nsize = 64\n{stream}",
            f.display()
        ),
    )
    .unwrap();
    let o = gen(&[cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let b = std::fs::read(&f).unwrap();
    let ts = b
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (ts, text(&o))
}

/// Shapes (TRex's multi-burst and on/off): three bursts of 200 at line
/// rate with 20 ms after each, then the stream ends; on 10 ms / off 30 ms
/// at 50 kpps: packets only inside the on windows.
#[test]
fn model_bursts_and_on_off_windows_shape_the_stream() {
    let dir = tmpdir("shapes");
    let (ts, out) = stamps_of(
        &dir,
        "bursts",
        "burst = 200\nbursts = 3\nburst_gap_ms = 20\n",
    );
    assert_eq!(ts.len(), 600, "{out}");
    let big: Vec<u64> = ts
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > 5_000_000)
        .collect();
    assert_eq!(big.len(), 2, "two gaps between three bursts: {big:?}");
    assert!(big.iter().all(|g| *g >= 19_000_000), "{big:?}");
    // Inside a burst the frames go back to back.
    assert!(ts[199] - ts[0] < 5_000_000, "{}", ts[199] - ts[0]);
    let (ts, out) = stamps_of(
        &dir,
        "onoff",
        "rate = \"50 kpps\"\nduration = 0.2\non_ms = 10\noff_ms = 30\n",
    );
    assert!(
        ts.len() > 1000 && ts.len() < 3500,
        "{} stamps\n{out}",
        ts.len()
    );
    assert!(
        !out.contains("MISSED"),
        "no whole-run target for a shaped stream\n{out}"
    );
    let t0 = ts[0];
    // Every packet sits in an on window (10 ms of every 40), give or take
    // the first packet's offset from the sender's start.
    let late = ts
        .iter()
        .filter(|t| (**t - t0) % 40_000_000 > 11_000_000)
        .count();
    assert!(
        late <= ts.len() / 100,
        "{late} of {} outside the on windows",
        ts.len()
    );
    // Bad shapes name their key.
    let o = gen(&[
        "--port", "null", "--count", "10", "--size", "64", "--rate", "1 Mpps",
    ]);
    assert_eq!(o.status.code(), Some(0));
    for (bad, key) in [
        ("bursts = 2\n", "bursts"),
        ("burst = 5\nburst_gap_ms = -1\n", "burst_gap_ms"),
        ("on_ms = 5\n", "off_ms"),
    ] {
        let cfg = dir.join("bad.toml");
        std::fs::write(
            &cfg,
            format!("[[port]]\nspec = \"null\"\n[[stream]]\n{bad}"),
        )
        .unwrap();
        let o = gen(&[cfg.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(
            text(&o).contains(&format!("stream[0].{key}")),
            "{bad}: {}",
            text(&o)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Rate profiles: steps (10 kpps for 100 ms, then 50 kpps) and a ramp
/// (10 → 50 kpps over 200 ms), seen in the gaps the stamping sink records;
/// a ramp between rates of two kinds is refused naming the key.
#[test]
fn model_rate_steps_and_ramps_change_the_gaps() {
    let dir = tmpdir("profiles");
    let median = |v: &[u64]| {
        let mut g: Vec<u64> = v.windows(2).map(|w| w[1] - w[0]).collect();
        g.sort_unstable();
        g[g.len() / 2]
    };
    let (ts, out) = stamps_of(
        &dir,
        "steps",
        "rate_steps = [\"10 kpps\", \"50 kpps\"]\nstep_s = 0.1\ncount = 4000\n",
    );
    assert_eq!(ts.len(), 4000, "{out}");
    let (a, b) = (median(&ts[50..900]), median(&ts[2000..3900]));
    assert!(
        (90_000..=110_000).contains(&a),
        "first step's gap {a} ns\n{out}"
    );
    assert!((18_000..=22_000).contains(&b), "second step's gap {b} ns");
    assert!(
        !out.contains("MISSED"),
        "no whole-run target for a profile\n{out}"
    );
    let (ts, out) = stamps_of(
        &dir,
        "ramp",
        "rate = \"10 kpps\"\nramp_to = \"50 kpps\"\nramp_s = 0.2\nduration = 0.25\n",
    );
    assert!(ts.len() > 3000, "{} stamps\n{out}", ts.len());
    let (first, last) = (median(&ts[10..200]), median(&ts[ts.len() - 500..]));
    assert!(
        first > 3 * last,
        "the gaps shrink along the ramp: {first} then {last} ns"
    );
    let cfg = dir.join("bad.toml");
    std::fs::write(
        &cfg,
        "[[port]]\nspec = \"null\"\n[[stream]]\nrate = \"1 Mpps\"\nramp_to = \"1 Gbit/s\"\nramp_s = 1\ncount = 5\n",
    )
    .unwrap();
    let o = gen(&[cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("stream[0].ramp_to"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).ok();
}

/// `[[port.neigh]]`: a static neighbour (`nud permanent`) needs no ARP —
/// a socket stream to it sends at once over a port nobody answers on;
/// a bad entry names its key.
#[test]
fn static_neighbours_from_the_config_need_no_arp() {
    let dir = tmpdir("neigh");
    let cfg = dir.join("n.toml");
    let body = |neigh: &str| {
        format!(
            "[run]\nlcores = \"0\"\n[[port]]\nspec = \"null\"\nip = \"10.0.0.1/24\"\n{neigh}\n\
             [[stream]]\nmode = \"socket\"\ndst_ip = \"10.0.0.2\"\ndst_port = 9\ncount = 100\nsize = 100\n"
        )
    };
    std::fs::write(
        &cfg,
        body("[[port.neigh]]\nip = \"10.0.0.2\"\nmac = \"02:00:00:00:00:02\""),
    )
    .unwrap();
    let j = dir.join("n.json");
    let o = gen(&[cfg.to_str().unwrap(), "--json", j.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&j);
    assert_eq!(v["streams"][0]["packets"], 100, "{}", text(&o));
    // Only the gratuitous ARP announcing our address: no request for 10.0.0.2.
    assert_eq!(v["stacks"][0]["snmp"]["Neigh"]["arp_requests_sent"], 1);
    // Without it, nobody answers ARP on a null port: the run fails, saying so.
    std::fs::write(&cfg, body("")).unwrap();
    let o = gen(&[cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("ARP"), "{}", text(&o));
    std::fs::write(
        &cfg,
        body("[[port.neigh]]\nip = \"10.0.0.2\"\nmac = \"zz\""),
    )
    .unwrap();
    let o = gen(&[cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("port[0].neigh[0].mac"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).ok();
}
