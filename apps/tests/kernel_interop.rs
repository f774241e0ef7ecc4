//! The interop suite, against the Linux kernel's own stack: wirespeed on
//! one end of a veth pair through each kernel-interface port (`af_packet`
//! and `af_xdp`), the kernel in a network namespace on the other. The
//! kernel validates every IPv4 and UDP checksum, answers and asks ARP,
//! answers ping, reassembles our fragments and fragments its own; its
//! /proc/net/snmp and `ip -s link` count what arrived; tshark checks a
//! capture taken on the kernel's side. Needs root (namespaces, AF_PACKET,
//! AF_XDP + BPF): CI runs as root; elsewhere each test says why it cannot
//! run and passes.

use std::process::Command;

mod common;
use common::kernel::{is_root, tshark_count, Peer};
use common::{bin, tmpdir};

fn run(cfg: &str, dir: &std::path::Path, extra: &[&str]) -> (serde_json::Value, String) {
    let p = dir.join("c.toml");
    std::fs::write(&p, cfg).unwrap();
    let j = dir.join("s.json");
    let o = Command::new(bin())
        .args(["gen", "--no-huge", "-q"])
        .arg(&p)
        .arg("--json")
        .arg(&j)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    (
        serde_json::from_slice(&std::fs::read(&j).unwrap()).unwrap(),
        text,
    )
}

/// Datagram payload sizes from wirespeed sockets and how many of each:
/// the smallest the generator sends, the largest unfragmented at MTU 1500,
/// one byte more (two fragments), and 4000 / 8000 (3 and 6 fragments).
const SIZES: [(u64, u64); 5] = [
    (18, 600),
    (1472, 400),
    (1473, 300),
    (4000, 300),
    (8000, 200),
];

/// Everything one port kind must do with the kernel, in one run:
/// - ARP both ways: our stack resolves 10.77.0.2 (the first datagram
///   waits for it), and the kernel resolves us: its entry for 10.77.0.1
///   reaches REACHABLE (`ip neigh`) while the run lasts;
/// - UDP from wirespeed sockets into a kernel socket, 18..8000 bytes:
///   every datagram arrives with its payload intact, the kernel's
///   `ReasmOKs` grows by the fragmented ones, `InCsumErrors` stays 0;
/// - UDP from the kernel into wirespeed, fragmented (3000-byte answers):
///   our `ReasmOKs` counts them;
/// - ping from the kernel answered; our ICMP port unreachable reaches the
///   kernel's socket as ECONNREFUSED;
/// - conservation: what we transmitted = what the kernel's interface
///   received (`ip -s link`), and the datagrams the receiver counted = the
///   datagrams sent;
/// - tshark, on a capture taken on the kernel's end of the veth: no bad
///   IPv4/UDP/ICMP checksum and nothing malformed among our frames.
fn udp_arp_icmp_conservation(kind: &str) {
    let Some(peer) = Peer::new(&format!("w{}", &kind[3..4])) else {
        return;
    };
    if kind == "af_xdp" {
        peer.full_checksums();
    }
    // When our ARP request reaches the kernel first, its entry for us is
    // STALE, then DELAY on use, and it probes us after
    // delay_first_probe_time (5 s): make that 1 s, so REACHABLE comes
    // while the run lasts.
    let probe = format!("net.ipv4.neigh.{}.delay_first_probe_time=1", peer.peer_if);
    assert!(peer
        .exec(&["sysctl", "-qw", &probe])
        .status()
        .unwrap()
        .success());
    let dir = tmpdir(&format!("kernel-{kind}"));
    let pcap = dir.join("peer.pcap");
    let cap = peer.capture(&pcap);
    let reasm0 = peer.snmp("Ip", "ReasmOKs");
    let sink = peer.sink(9000, 20);
    let ping = peer.ping(8);
    let refused = peer.refused_probe(9999, 8);
    let mut cfg = format!(
        "[run]\nlcores = \"0\"\n[[port]]\nspec = \"{kind}:{}\"\nip = \"10.77.0.1/24\"\n",
        peer.host_if
    );
    for (i, (size, count)) in SIZES.iter().enumerate() {
        cfg += &format!(
            "[[stream]]\nname = \"s{size}\"\nmode = \"socket\"\nsrc_port = {}\ndst_ip = \"10.77.0.2\"\ndst_port = 9000\ncount = {count}\nrate = \"{} pps\"\nsize = {size}\n",
            40000 + i,
            count / 6 + 1,
        );
    }
    // Poll the kernel's neighbour entry for us while the run goes on.
    let neigh = {
        let (ns, dev) = (peer.ns.clone(), peer.peer_if.clone());
        std::thread::spawn(move || {
            let end = std::time::Instant::now() + std::time::Duration::from_secs(9);
            let mut seen = String::new();
            while std::time::Instant::now() < end {
                let out = Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        &ns,
                        "ip",
                        "neigh",
                        "show",
                        "10.77.0.1",
                        "dev",
                        &dev,
                    ])
                    .output()
                    .unwrap();
                seen = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if seen.ends_with("REACHABLE") {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            seen
        })
    };
    let (v, text) = run(&cfg, &dir, &[]);
    let got = sink.count();
    let sent: u64 = SIZES.iter().map(|s| s.1).sum();
    let lost = peer.snmp("Udp", "RcvbufErrors");
    assert_eq!(
        got.datagrams + lost,
        sent,
        "{kind}: the kernel got {got:?} of {sent}\n{text}"
    );
    if lost == 0 {
        let want: Vec<(u64, u64)> = SIZES.to_vec();
        assert_eq!(got.sizes, want, "{kind}: datagrams per size");
        assert_eq!(got.bytes, SIZES.iter().map(|(s, n)| s * n).sum::<u64>());
    }
    assert_eq!(got.bad, 0, "{kind}: payloads changed on the way");
    assert_eq!(
        peer.snmp("Udp", "InCsumErrors"),
        0,
        "{kind}: bad UDP checksums"
    );
    assert_eq!(
        peer.snmp("Ip", "InHdrErrors"),
        0,
        "{kind}: bad IPv4 headers"
    );
    let fragmented: u64 = SIZES.iter().filter(|s| s.0 > 1472).map(|s| s.1).sum();
    assert_eq!(
        peer.snmp("Ip", "ReasmOKs") - reasm0,
        fragmented,
        "{kind}: the kernel reassembled our fragments\n{text}"
    );
    assert_eq!(peer.snmp("Ip", "ReasmFails"), 0);
    // The kernel's fragmented answers, reassembled by our stack.
    let snmp = &v["stacks"][0]["snmp"];
    assert_eq!(snmp["Ip"]["ReasmOKs"], 20, "{kind}: our reassembly\n{snmp}");
    assert_eq!(snmp["Ip"]["ReasmFails"], 0);
    for s in v["streams"].as_array().unwrap() {
        assert_eq!(s["flags"].as_array().unwrap().len(), 0, "{kind}: {text}");
    }
    assert_eq!(v["ports"][0]["conserved"], true, "{kind}");
    let mut ping = ping;
    assert!(
        ping.wait().unwrap().success(),
        "{kind}: the kernel's pings to 10.77.0.1 got no answer\n{text}"
    );
    let mut refused = refused;
    assert!(
        refused.wait().unwrap().success(),
        "{kind}: no ECONNREFUSED at the kernel's socket: our ICMP port unreachable did not arrive\n{snmp}"
    );
    assert!(
        snmp["Icmp"]["OutDestUnreachs"].as_u64().unwrap() >= 1,
        "{kind}: {snmp}"
    );
    let state = neigh.join().unwrap();
    assert!(
        state.ends_with("REACHABLE"),
        "{kind}: the kernel's neighbour entry for us: '{state}'"
    );
    // Conservation with the kernel's own interface counters.
    cap.stop();
    let (peer_rx, _peer_tx) = peer.link_packets();
    let tx = v["ports"][0]["tx_packets"].as_u64().unwrap();
    assert_eq!(
        tx, peer_rx,
        "{kind}: we transmitted {tx} frames, the kernel's interface received {peer_rx}"
    );
    // tshark on the kernel's side: our frames are sound.
    let ours = "ip.src == 10.77.0.1 || arp.src.proto_ipv4 == 10.77.0.1";
    let frames = tshark_count(&pcap, ours);
    assert!(
        frames as u64 >= sent,
        "{kind}: {frames} frames of ours captured"
    );
    let bad = tshark_count(
        &pcap,
        &format!("({ours}) && (ip.checksum.status == \"Bad\" || udp.checksum.status == \"Bad\" || icmp.checksum.status == \"Bad\" || _ws.malformed || _ws.expert.severity == error)"),
    );
    assert_eq!(bad, 0, "{kind}: tshark flags {bad} of our frames");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn kernel_af_packet_udp_arp_icmp_conservation() {
    udp_arp_icmp_conservation("af_packet");
}

#[test]
fn kernel_af_xdp_udp_arp_icmp_conservation() {
    udp_arp_icmp_conservation("af_xdp");
}

/// A latency stream through a tiny UDP echo in the namespace: every
/// packet comes back (none lost), the histogram is reported, and the
/// frames we sent are the frames the kernel's interface received.
fn latency_through_kernel_echo(kind: &str) {
    let Some(peer) = Peer::new(&format!("l{}", &kind[3..4])) else {
        return;
    };
    let dir = tmpdir(&format!("kernel-lat-{kind}"));
    let mut echo = peer.echo(7007);
    let cfg = format!(
        r#"[run]
lcores = "0"
[[port]]
spec = "{kind}:{}"
ip = "10.77.0.1/24"
[[stream]]
name = "probe"
src_ip = "10.77.0.1"
dst_ip = "10.77.0.2"
src_port = 7100
dst_port = 7007
count = 3000
rate = "3 kpps"
size = 128
latency = true
"#,
        peer.host_if
    );
    let (v, text) = run(&cfg, &dir, &["--arp"]);
    let _ = echo.kill();
    let _ = echo.wait();
    let l = &v["streams"][0]["latency"];
    assert_eq!(l["sent"], 3000, "{kind}: {text}");
    assert_eq!(l["received"], 3000, "{kind}: every probe back\n{text}");
    assert_eq!(l["lost"], 0);
    assert!(l["ns"]["p50"].as_f64().unwrap() > 0.0, "{kind}: {l}");
    assert!(
        text.contains("latency µs"),
        "{kind}: histogram reported\n{text}"
    );
    let (peer_rx, _) = peer.link_packets();
    assert_eq!(
        v["ports"][0]["tx_packets"].as_u64().unwrap(),
        peer_rx,
        "{kind}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn kernel_af_packet_latency_through_kernel_echo() {
    latency_through_kernel_echo("af_packet");
}

#[test]
fn kernel_af_xdp_latency_through_kernel_echo() {
    latency_through_kernel_echo("af_xdp");
}

/// Raw mode with ARP: prebuilt frames (varying source ports) to the
/// kernel's MAC, found by ARP through the RX ring; every one accepted.
fn raw_frames_with_varying_fields(kind: &str) {
    let Some(peer) = Peer::new(&format!("r{}", &kind[3..4])) else {
        return;
    };
    let dir = tmpdir(&format!("kernel-raw-{kind}"));
    let sink = peer.sink(9001, 0);
    let cfg = format!(
        r#"[run]
lcores = "0"
[[port]]
spec = "{kind}:{}"
[[stream]]
src_ip = "10.77.0.1"
dst_ip = "10.77.0.2"
dst_port = 9001
count = 5000
rate = "20 kpps"
size = 128
[[stream.field]]
name = "src_port"
min = 2000
max = 2099
"#,
        peer.host_if
    );
    let (v, text) = run(&cfg, &dir, &["--arp"]);
    let got = sink.count();
    let n = got.datagrams + peer.snmp("Udp", "RcvbufErrors");
    assert_eq!(n, 5000, "{kind}: the kernel got {n} of 5000\n{text}");
    assert_eq!(peer.snmp("Udp", "InCsumErrors"), 0, "bad UDP checksums");
    assert_eq!(peer.snmp("Ip", "InHdrErrors"), 0);
    assert_eq!(v["streams"][0]["packets"], 5000);
    assert!(peer.mac().len() == 17);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn kernel_af_packet_accepts_raw_frames_with_varying_fields() {
    raw_frames_with_varying_fields("af_packet");
}

#[test]
fn kernel_af_xdp_accepts_raw_frames_with_varying_fields() {
    raw_frames_with_varying_fields("af_xdp");
}

/// One queue per lcore: two lcores, each with its own AF_XDP socket on its
/// own interface queue (and its own UMEM, its lcore's pool), raw frames to
/// the kernel found by ARP; every frame arrives, both queues carry them.
#[test]
fn kernel_af_xdp_two_queues_on_two_lcores() {
    let Some(peer) = Peer::with_queues("q2", 2) else {
        return;
    };
    let dir = tmpdir("kernel-xdp-2q");
    let sink = peer.sink(9002, 0);
    let cfg = format!(
        r#"[run]
lcores = "0,1"
[[port]]
spec = "af_xdp:{}"
[[stream]]
src_ip = "10.77.0.1"
dst_ip = "10.77.0.2"
dst_port = 9002
count = 6000
rate = "20 kpps"
size = 100
"#,
        peer.host_if
    );
    let (v, text) = run(&cfg, &dir, &["--arp"]);
    let got = sink.count();
    let n = got.datagrams + peer.snmp("Udp", "RcvbufErrors");
    assert_eq!(n, 6000, "the kernel got {n} of 6000\n{text}");
    assert_eq!(peer.snmp("Udp", "InCsumErrors"), 0);
    let q = v["ports"][0]["queues"].as_array().unwrap();
    assert_eq!(q.len(), 2, "{text}");
    for (i, q) in q.iter().enumerate() {
        assert!(q["packets"].as_u64().unwrap() >= 2000, "queue {i}: {q}");
    }
    let (peer_rx, _) = peer.link_packets();
    assert_eq!(v["ports"][0]["tx_packets"].as_u64().unwrap(), peer_rx);
    std::fs::remove_dir_all(&dir).ok();
}

/// Bad interface names are refused before anything starts, naming them.
#[test]
fn unknown_interface_is_a_clear_error() {
    for kind in ["af_packet", "af_xdp"] {
        let o = Command::new(bin())
            .args([
                "gen",
                "--no-huge",
                "-q",
                "--port",
                &format!("{kind}:nosuch0"),
                "--count",
                "1",
            ])
            .output()
            .unwrap();
        assert_ne!(o.status.code(), Some(0), "{kind}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("no interface 'nosuch0'"), "{kind}: {err}");
    }
}

/// af_xdp's own errors: bad parameters name the key and what is allowed;
/// a queue the interface does not have; a second port on the same
/// interface finds the XDP program slot taken and says so.
#[test]
fn af_xdp_errors_name_what_to_do() {
    use wirespeed::ethdev::{PortConfig, Registry};
    let reg = Registry::with_builtins();
    for (spec, want) in [
        (
            "af_xdp:lo?zerocopy=maybe",
            "zerocopy=maybe: give auto, on or off",
        ),
        (
            "af_xdp:lo?umem_frames=100",
            "umem_frames=100: give a power of two",
        ),
        ("af_xdp:lo?colour=red", "unknown parameter 'colour'"),
        ("af_xdp:lo?queue=7", "queue=7: lo has 1 queue"),
    ] {
        let e = reg
            .open(spec)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        if !is_root() && e.contains("root") {
            continue;
        }
        assert!(e.contains(want), "{spec}: {e}");
    }
    let Some(peer) = Peer::new("xe") else { return };
    let spec = format!("af_xdp:{}", peer.host_if);
    let mut a = reg.open(&spec).unwrap();
    let mut b = reg.open(&spec).unwrap();
    let conf = PortConfig::default();
    a.configure(&conf).unwrap();
    a.start().unwrap();
    b.configure(&conf).unwrap();
    let e = match b.start() {
        Ok(()) => panic!("a second XDP program on one interface was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("already attached"), "{e}");
    a.stop().unwrap();
    // The link went with the first port's stop: the slot is free again.
    b.start().unwrap();
    b.stop().unwrap();
    let conf = PortConfig {
        tx_ring_size: 1088,
        ..Default::default()
    };
    let e = a.configure(&conf).err().unwrap().to_string();
    assert!(e.contains("powers of two"), "{e}");

    // Two sockets on one interface queue: the second's set-up fails on
    // its lcore; it says why (an event) and drops every frame it is
    // given, each counted and reported complete (nothing lost silently).
    use wirespeed::mbuf::{Burst, Mempool, PoolConfig};
    let tx_only = PortConfig {
        nb_rx_queues: 0,
        ..Default::default()
    };
    let mut pool = Mempool::new(&PoolConfig {
        name: "xe".into(),
        size: 256,
        ..Default::default()
    })
    .unwrap();
    a.configure(&tx_only).unwrap();
    b.configure(&tx_only).unwrap();
    let (mut qa, mut qb) = (a.tx_queue(0).unwrap(), b.tx_queue(0).unwrap());
    let mut burst = |q: &mut Box<dyn wirespeed::ethdev::TxQueue>| {
        let mut out = Burst::new();
        assert!(pool.alloc_bulk(&mut out, 8));
        for m in out.as_mut_slice() {
            m.set_len(60).unwrap();
        }
        q.tx_burst(&mut out)
    };
    assert_eq!(burst(&mut qa), 8);
    assert_eq!(burst(&mut qb), 8, "taken (and dropped)");
    let ev = qb.poll_event().expect("the set-up failure as an event");
    assert!(ev.detail.contains("already has an AF_XDP socket"), "{ev:?}");
    assert_eq!(qb.clean(64).packets, 8);
    assert_eq!(qb.stats().drops.get(), 8);
    assert_eq!(qa.stats().drops.get(), 0);
}

/// The XDP program goes when wirespeed goes: after a clean end, after
/// Ctrl-C, and after SIGKILL (the kernel closes the BPF link's fd).
#[test]
fn af_xdp_program_is_detached_on_exit_ctrl_c_and_kill() {
    let Some(peer) = Peer::new("xd") else { return };
    let attached = || {
        let o = Command::new("ip")
            .args(["link", "show", &peer.host_if])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).contains("prog/xdp")
    };
    let dir = tmpdir("kernel-detach");
    for sig in [0, libc::SIGINT, libc::SIGKILL] {
        // A stack on the port: it receives, so the program is attached.
        let cfg = dir.join("d.toml");
        std::fs::write(
            &cfg,
            format!(
                "[run]\nlcores = \"0\"\nduration = {}\n[[port]]\nspec = \"af_xdp:{}\"\nip = \"10.77.0.1/24\"\n[[stream]]\nmode = \"socket\"\ndst_ip = \"10.77.0.2\"\ndst_port = 9\nrate = \"100 pps\"\nsize = 18\n",
                if sig == 0 { 2 } else { 30 },
                peer.host_if
            ),
        )
        .unwrap();
        let mut c = Command::new(bin())
            .args(["gen", "--no-huge", "-q"])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !attached() && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(attached(), "signal {sig}: the program was never attached");
        let o = Command::new("ip")
            .args(["-d", "link", "show", &peer.host_if])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("promiscuity 1"),
            "promiscuous mode while running"
        );
        if sig != 0 {
            // SAFETY: plain libc call on the pid of a child we spawned.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
        let _ = c.wait();
        assert!(
            !attached(),
            "signal {sig}: the XDP program outlived wirespeed"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Multicast to the kernel (seed 004's `ip_mc_output` side, issue 18): a
/// kernel socket in the namespace joins 239.1.2.3 (IP_ADD_MEMBERSHIP on its
/// veth) and receives every datagram of a wirespeed socket stream sent to
/// the group — routed by a `[[port.route]] 224.0.0.0/4` from the TOML,
/// with the group's MAC (01:00:5e:01:02:03) and TTL 1 (Linux's
/// IP_MULTICAST_TTL default). tshark on the kernel's end validates the
/// checksums.
#[test]
fn kernel_multicast_listener_receives_group_traffic() {
    let Some(peer) = Peer::new("wm") else {
        return;
    };
    let dir = tmpdir("kernel-mcast");
    let pcap = dir.join("peer.pcap");
    let cap = peer.capture(&pcap);
    let mut child = peer
        .exec(&[
            "python3",
            "-c",
            "import socket,struct\n\
             s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
             s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('0.0.0.0',5600))\n\
             m=struct.pack('4s4s',socket.inet_aton('239.1.2.3'),socket.inet_aton('10.77.0.2'))\n\
             s.setsockopt(socket.IPPROTO_IP,socket.IP_ADD_MEMBERSHIP,m)\n\
             print('ready',flush=True)\n\
             n=0\ns.settimeout(30)\n\
             try:\n  while True:\n    d,a=s.recvfrom(2048); n+=1; s.settimeout(1)\n\
             except socket.timeout:\n  pass\n\
             print(n,flush=True)\n",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let cfg = format!(
        "[run]\nlcores = \"0\"\n[[port]]\nspec = \"af_packet:{}\"\nip = \"10.77.0.1/24\"\n\
         [[port.route]]\nprefix = \"224.0.0.0/4\"\ndev = 0\n\
         [[stream]]\nmode = \"socket\"\ndst_ip = \"239.1.2.3\"\ndst_port = 5600\ncount = 300\nrate = \"1000 pps\"\nsize = 64\n",
        peer.host_if
    );
    let (v, text) = run(&cfg, &dir, &[]);
    assert_eq!(v["streams"][0]["packets"], 300, "{text}");
    line.clear();
    out.read_line(&mut line).unwrap();
    let _ = child.wait();
    assert_eq!(
        line.trim(),
        "300",
        "the kernel's group member received every datagram"
    );
    cap.stop();
    let groups = tshark_count(
        &pcap,
        "ip.dst == 239.1.2.3 && eth.dst == 01:00:5e:01:02:03 && ip.ttl == 1 && udp.dstport == 5600",
    );
    assert_eq!(groups, 300);
    assert_eq!(
        tshark_count(&pcap, "ip.dst == 239.1.2.3 && (_ws.expert.severity >= warning || udp.checksum.status == \"Bad\" || ip.checksum.status == \"Bad\")"),
        0
    );
}
