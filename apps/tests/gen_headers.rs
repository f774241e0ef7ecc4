//! Raw streams with layered headers (TCP, ICMP echo, IPv6, QinQ, MPLS,
//! VXLAN, GRE, ARP, IPv4 options) written to a pcap port: every frame
//! dissects in tshark with the expected protocol stack, every checksum
//! tshark can check is good (IPv4, UDP, TCP validation on; ICMP and
//! ICMPv6 are always checked), and no expert item of warning or error
//! severity is raised.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{bin, tmpdir};

/// Wireshark's expert severity of a warning (`PI_WARN`): nothing at or above it is allowed.
const PI_WARN: u64 = 0x0060_0000;

const CHECKS: [&str; 5] = [
    "ip.checksum.status",
    "udp.checksum.status",
    "tcp.checksum.status",
    "icmp.checksum.status",
    "icmpv6.checksum.status",
];

/// Runs one generator config (`[[port]]` is a pcap file) and returns the pcap.
fn gen(dir: &Path, name: &str, streams: &str) -> PathBuf {
    let pcap = dir.join(format!("{name}.pcap"));
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!("[[port]]\nspec = \"pcap:{}\"\n{streams}", pcap.display()),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["gen", "--no-huge", "-q"])
        .arg(&cfg)
        .output()
        .expect("run wirespeed");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pcap
}

/// tshark's fields per frame (checksum validation on, TCP sequence
/// analysis off: a flood repeats its segments on purpose): the protocol
/// stack, the five checksum statuses, the expert severities, then `extra`.
fn dissect(pcap: &Path, extra: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(pcap);
    for o in [
        "ip.check_checksum:TRUE",
        "udp.check_checksum:TRUE",
        "tcp.check_checksum:TRUE",
        "tcp.analyze_sequence_numbers:FALSE",
    ] {
        cmd.args(["-o", o]);
    }
    cmd.args(["-T", "fields", "-E", "separator=|", "-e", "frame.protocols"]);
    for f in CHECKS.iter().chain(&["_ws.expert.severity"]).chain(extra) {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark is required for this test (apt-get install tshark)");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

/// Every frame: protocol stack `protos`, the checksums named in `checked`
/// present `n` times each (inner and outer) and good, the others absent,
/// no warning or error. Returns the `extra` columns of each frame.
fn check(
    pcap: &Path,
    count: usize,
    protos: &str,
    checked: &[(&str, usize)],
    extra: &[&str],
) -> Vec<Vec<String>> {
    let rows = dissect(pcap, extra);
    assert_eq!(rows.len(), count, "{}", pcap.display());
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], protos, "frame {i}");
        for (c, name) in CHECKS.iter().enumerate() {
            let want = checked.iter().find(|x| x.0 == *name).map_or(0, |x| x.1);
            let got: Vec<&str> = r[c + 1].split(',').filter(|s| !s.is_empty()).collect();
            assert_eq!(got, vec!["1"; want], "frame {i}: {name} (1 = good)");
        }
        for sev in r[6].split(',').filter(|s| !s.is_empty()) {
            assert!(
                sev.parse::<u64>().unwrap() < PI_WARN,
                "frame {i}: expert severity {sev}: {r:?}"
            );
        }
    }
    rows.into_iter().map(|r| r[7..].to_vec()).collect()
}

fn col(rows: &[Vec<String>], i: usize) -> Vec<&str> {
    rows.iter().map(|r| r[i].as_str()).collect()
}

#[test]
fn tcp_over_ipv4_syn_flood_has_valid_checksums_and_its_fields() {
    let dir = tmpdir("hdr-tcp");
    let pcap = gen(
        &dir,
        "syn",
        "[[stream]]\ncount = 64\nsize = 64\nl4 = \"tcp\"\ntcp_flags = \"S\"\ntcp_seq = 123456789\ntcp_window = 29200\ndst_port = 80\n\
         [[stream.field]]\nname = \"src_port\"\nmin = 40000\nmax = 40009\n\
         [[stream.field]]\nname = \"src_ip\"\nop = \"random\"\nmin = \"10.0.0.0\"\nmax = \"10.0.255.255\"\n",
    );
    let rows = check(
        &pcap,
        64,
        "eth:ethertype:ip:tcp",
        &[("ip.checksum.status", 1), ("tcp.checksum.status", 1)],
        &[
            "tcp.srcport",
            "tcp.dstport",
            "tcp.flags",
            "tcp.seq_raw",
            "tcp.window_size_value",
            "ip.src",
            "ip.len",
        ],
    );
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], (40000 + i % 10).to_string());
        assert_eq!(&r[1..], ["80", "0x0002", "123456789", "29200", &r[5], "46"]);
        assert!(r[5].starts_with("10.0."), "{}", r[5]);
    }
    // Other flags, a sequence that varies, sizes that vary.
    let pcap = gen(
        &dir,
        "pa",
        "[[stream]]\ncount = 20\nsize = \"64-1518\"\nl4 = \"tcp\"\ntcp_flags = \"PA\"\ntcp_ack = 7\n\
         [[stream.field]]\nname = \"tcp_seq\"\nmin = 4294967290\nmax = 4294967295\nstep = 4\n",
    );
    let rows = check(
        &pcap,
        20,
        "eth:ethertype:ip:tcp:data",
        &[("ip.checksum.status", 1), ("tcp.checksum.status", 1)],
        &["tcp.flags", "tcp.ack_raw", "tcp.seq_raw"],
    );
    let seqs: Vec<&str> = col(&rows, 2);
    assert_eq!(
        &seqs[..4],
        ["4294967290", "4294967294", "4294967292", "4294967290"]
    );
    assert!(rows.iter().all(|r| r[0] == "0x0018" && r[1] == "7"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn icmp_echo_requests_count_their_sequence_with_valid_checksums() {
    let dir = tmpdir("hdr-icmp");
    let pcap = gen(
        &dir,
        "ping",
        "[[stream]]\ncount = 30\nimix = \"simple\"\nl4 = \"icmp\"\nicmp_id = 4660\n\
         [[stream.field]]\nname = \"icmp_seq\"\nmin = 1\nmax = 65535\n",
    );
    let rows = check(
        &pcap,
        30,
        "eth:ethertype:ip:icmp:data",
        &[("ip.checksum.status", 1), ("icmp.checksum.status", 1)],
        &["icmp.type", "icmp.code", "icmp.ident", "icmp.seq"],
    );
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[..3], ["8", "0", "4660"]);
        assert_eq!(r[3], (i + 1).to_string());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ipv6_carries_udp_tcp_and_icmpv6_with_pseudo_header_checksums() {
    let dir = tmpdir("hdr-v6");
    let head = "[[stream]]\ncount = 16\nip = 6\nsrc_ip6 = \"2001:db8::10\"\ndst_ip6 = \"2001:db8:1::20\"\nhop_limit = 7\ntraffic_class = 184\nflow_label = 74565\n";
    let v6 = [
        "ipv6.src",
        "ipv6.dst",
        "ipv6.hlim",
        "ipv6.tclass",
        "ipv6.flow",
        "ipv6.plen",
    ];
    let fixed = [
        "2001:db8::10",
        "2001:db8:1::20",
        "7",
        "0x000000b8",
        "0x012345",
    ];
    for (l4, size, protos, csum) in [
        (
            "udp",
            "size = \"66-1518\"",
            "eth:ethertype:ipv6:udp:data",
            "udp.checksum.status",
        ),
        (
            "tcp",
            "size = 200",
            "eth:ethertype:ipv6:tcp:data",
            "tcp.checksum.status",
        ),
        (
            "icmp",
            "imix = [[70, 3], [1000, 1]]",
            "eth:ethertype:ipv6:icmpv6:data",
            "icmpv6.checksum.status",
        ),
    ] {
        let field = if l4 == "icmp" {
            "[[stream.field]]\nname = \"icmp_seq\"\nmin = 0\nmax = 9\n"
        } else {
            "[[stream.field]]\nname = \"src_port\"\nmin = 41000\nmax = 41007\n"
        };
        let pcap = gen(
            &dir,
            l4,
            &format!(
                "{head}l4 = \"{l4}\"\n{size}\n{field}[[stream.field]]\nname = \"src_ip6\"\nmin = \"2001:db8::10\"\nmax = \"2001:db8::11\"\n"
            ),
        );
        let mut extra = v6.to_vec();
        extra.extend([
            "frame.len",
            "udp.srcport",
            "tcp.srcport",
            "icmpv6.type",
            "icmpv6.echo.sequence_number",
        ]);
        let rows = check(&pcap, 16, protos, &[(csum, 1)], &extra);
        for (i, r) in rows.iter().enumerate() {
            // The address field steps the low 32 bits: ::10, ::11, ::10, …
            let src = if i % 2 == 0 {
                "2001:db8::10"
            } else {
                "2001:db8::11"
            };
            assert_eq!(r[0], src, "{l4} frame {i}");
            assert_eq!(r[1..5], fixed[1..], "{l4} frame {i}");
            let flen: usize = r[6].parse().unwrap();
            assert_eq!(r[5], (flen - 54).to_string(), "{l4}: payload length");
            match l4 {
                "udp" => assert_eq!(r[7], (41000 + i % 8).to_string()),
                "tcp" => assert_eq!(r[8], (41000 + i % 8).to_string()),
                _ => assert_eq!(r[9..], ["128".to_string(), (i % 10).to_string()]),
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn qinq_and_mpls_stacks_dissect_with_their_tags_and_labels() {
    let dir = tmpdir("hdr-l2");
    let pcap = gen(
        &dir,
        "qinq",
        "[[stream]]\ncount = 10\nsize = 128\nsvlan = 100\nvlan = 200\nmpls = [16, 1048575]\nmpls_ttl = 9\n\
         [[stream.field]]\nname = \"vlan\"\nmin = 200\nmax = 204\n\
         [[stream.field]]\nname = \"dst_ip\"\nmin = \"10.9.0.1\"\nmax = \"10.9.0.10\"\n",
    );
    let rows = check(
        &pcap,
        10,
        "eth:ethertype:ieee8021ad:ethertype:vlan:ethertype:mpls:ip:udp:data",
        &[("ip.checksum.status", 1), ("udp.checksum.status", 1)],
        &[
            "ieee8021ad.id",
            "vlan.id",
            "mpls.label",
            "mpls.bottom",
            "mpls.ttl",
            "ip.dst",
        ],
    );
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], "100");
        assert_eq!(r[1], (200 + i % 5).to_string());
        assert_eq!(r[2..5], ["16,1048575", "0,1", "9,9"]);
        assert_eq!(r[5], format!("10.9.0.{}", i + 1));
    }
    // A single service tag, MPLS over IPv6/TCP.
    let pcap = gen(
        &dir,
        "mpls6",
        "[[stream]]\ncount = 4\nsize = 100\nsvlan = 7\nmpls = [3000]\nip = 6\nl4 = \"tcp\"\n",
    );
    let rows = check(
        &pcap,
        4,
        "eth:ethertype:ieee8021ad:ethertype:mpls:ipv6:tcp:data",
        &[("tcp.checksum.status", 1)],
        &["ieee8021ad.id", "mpls.label", "mpls.bottom"],
    );
    assert!(rows.iter().all(|r| r == &["7", "3000", "1"]), "{rows:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn vxlan_and_gre_tunnels_have_valid_inner_and_outer_checksums() {
    let dir = tmpdir("hdr-tun");
    let tun = "tunnel_src = \"192.0.2.1\"\ntunnel_dst = \"192.0.2.2\"\ntunnel_ttl = 33\n";
    let pcap = gen(
        &dir,
        "vxlan",
        &format!(
            "[[stream]]\ncount = 24\nsize = \"110-1518\"\ntunnel = \"vxlan\"\nvni = 16777215\ntunnel_sport = 50000\n{tun}\
             inner_src_mac = \"02:aa:00:00:00:01\"\ninner_dst_mac = \"02:aa:00:00:00:02\"\n\
             [[stream.field]]\nname = \"dst_port\"\nmin = 7000\nmax = 7002\n\
             [[stream.field]]\nname = \"src_ip\"\nop = \"random\"\nmin = \"10.0.0.0\"\nmax = \"10.255.255.255\"\n\
             [[stream.field]]\nname = \"tunnel_sport\"\nmin = 50000\nmax = 50003\n"
        ),
    );
    let rows = check(
        &pcap,
        24,
        "eth:ethertype:ip:udp:vxlan:eth:ethertype:ip:udp:data",
        &[("ip.checksum.status", 2), ("udp.checksum.status", 2)],
        &[
            "vxlan.vni",
            "udp.srcport",
            "udp.dstport",
            "ip.src",
            "ip.ttl",
            "eth.src",
        ],
    );
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], "16777215");
        // tunnel_sport varies the outer UDP source port (flow entropy).
        assert_eq!(r[1], format!("{},1024", 50000 + i % 4));
        // The fields address the inner packet (the flow); the outer header is the tunnel's.
        assert_eq!(r[2], format!("4789,{}", 7000 + i % 3));
        assert!(r[3].starts_with("192.0.2.1,10."), "{}", r[3]);
        assert_eq!(r[4], "33,64");
        assert_eq!(r[5], "02:00:00:00:00:01,02:aa:00:00:00:01");
    }
    // GRE with an inner Ethernet frame (0x6558) carrying TCP …
    let pcap = gen(
        &dir,
        "gre-eth",
        &format!("[[stream]]\ncount = 8\nsize = 300\ntunnel = \"gre\"\n{tun}l4 = \"tcp\"\n"),
    );
    let rows = check(
        &pcap,
        8,
        "eth:ethertype:ip:gre:eth:ethertype:ip:tcp:data",
        &[("ip.checksum.status", 2), ("tcp.checksum.status", 1)],
        &["gre.proto", "ip.proto"],
    );
    assert!(rows.iter().all(|r| r == &["0x6558", "47,6"]), "{rows:?}");
    // … and the inner IP packet directly (0x0800, 0x86DD).
    for (ip, protos, proto, csum) in [
        (
            "4",
            "eth:ethertype:ip:gre:ip:icmp:data",
            "0x0800",
            vec![("ip.checksum.status", 2), ("icmp.checksum.status", 1)],
        ),
        (
            "6",
            "eth:ethertype:ip:gre:ipv6:icmpv6:data",
            "0x86dd",
            vec![("ip.checksum.status", 1), ("icmpv6.checksum.status", 1)],
        ),
    ] {
        let pcap = gen(
            &dir,
            &format!("gre-ip{ip}"),
            &format!("[[stream]]\ncount = 8\nimix = [[100, 3], [1000, 1]]\ntunnel = \"gre\"\ngre_proto = \"ip\"\nip = {ip}\nl4 = \"icmp\"\n{tun}"),
        );
        let rows = check(&pcap, 8, protos, &csum, &["gre.proto"]);
        assert!(rows.iter().all(|r| r[0] == proto), "{rows:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn arp_requests_and_replies_carry_their_sender_and_target() {
    let dir = tmpdir("hdr-arp");
    let pcap = gen(
        &dir,
        "req",
        "[[stream]]\ncount = 6\nl3 = \"arp\"\ndst_mac = \"ff:ff:ff:ff:ff:ff\"\nsrc_mac = \"02:00:00:00:00:0a\"\ndst_ip = \"10.1.1.1\"\n\
         [[stream.field]]\nname = \"src_ip\"\nmin = \"10.1.1.100\"\nmax = \"10.1.1.102\"\n",
    );
    let rows = check(
        &pcap,
        6,
        "eth:ethertype:arp",
        &[],
        &[
            "arp.opcode",
            "arp.src.hw_mac",
            "arp.src.proto_ipv4",
            "arp.dst.hw_mac",
            "arp.dst.proto_ipv4",
            "frame.len",
        ],
    );
    for (i, r) in rows.iter().enumerate() {
        let spa = format!("10.1.1.{}", 100 + i % 3);
        assert_eq!(
            r,
            &[
                "1",
                "02:00:00:00:00:0a",
                &spa,
                "00:00:00:00:00:00",
                "10.1.1.1",
                "60"
            ]
        );
    }
    let pcap = gen(
        &dir,
        "reply",
        "[[stream]]\ncount = 3\nl3 = \"arp\"\narp_op = \"reply\"\narp_sender_ip = \"10.2.2.2\"\narp_target_mac = \"02:00:00:00:00:99\"\narp_target_ip = \"10.2.2.9\"\n",
    );
    let rows = check(
        &pcap,
        3,
        "eth:ethertype:arp",
        &[],
        &[
            "arp.opcode",
            "arp.src.hw_mac",
            "arp.src.proto_ipv4",
            "arp.dst.hw_mac",
            "arp.dst.proto_ipv4",
        ],
    );
    assert!(
        rows.iter().all(|r| r
            == &[
                "2",
                "02:00:00:00:00:01",
                "10.2.2.2",
                "02:00:00:00:00:99",
                "10.2.2.9"
            ]),
        "{rows:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ipv4_options_go_into_raw_headers_with_valid_checksums() {
    let dir = tmpdir("hdr-opt");
    for (opt, hlen, types, l4, protos, csum) in [
        (
            "rr",
            "60",
            "7,0",
            "udp",
            "eth:ethertype:ip:udp:data",
            "udp.checksum.status",
        ),
        (
            "ts",
            "60",
            "68",
            "tcp",
            "eth:ethertype:ip:tcp:data",
            "tcp.checksum.status",
        ),
        (
            "router-alert",
            "24",
            "148",
            "icmp",
            "eth:ethertype:ip:icmp:data",
            "icmp.checksum.status",
        ),
        // NOP, NOP, then router alert with value 0 (RFC 2113).
        (
            "hex:010194040000",
            "28",
            "1,1,148,0",
            "udp",
            "eth:ethertype:ip:udp:data",
            "udp.checksum.status",
        ),
    ] {
        let pcap = gen(
            &dir,
            "opt",
            &format!(
                "[[stream]]\ncount = 5\nsize = \"100-200\"\nip_options = \"{opt}\"\nl4 = \"{l4}\"\n\
                 [[stream.field]]\nname = \"src_ip\"\nmin = \"10.3.0.1\"\nmax = \"10.3.0.5\"\n"
            ),
        );
        let rows = check(
            &pcap,
            5,
            protos,
            &[("ip.checksum.status", 1), (csum, 1)],
            &["ip.hdr_len", "ip.opt.type", "ip.rec_rt", "ip.src"],
        );
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r[..2], [hlen, types], "{opt}");
            if opt == "rr" {
                // Our address in the first slot (ip_options_build), as the template has it.
                assert_eq!(r[2], "198.18.0.1");
            }
            assert_eq!(r[3], format!("10.3.0.{}", i + 1));
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// configs/headers.toml (one stream per kind of stack): every frame it
/// sends has good checksums, inner and outer, and raises no warning.
#[test]
fn the_headers_config_sends_only_valid_frames() {
    let dir = tmpdir("hdr-cfg");
    let pcap = dir.join("h.pcap");
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/headers.toml");
    let out = Command::new(bin())
        .args(["gen", "--no-huge", "-q", "--duration", "0.2", "--port"])
        .arg(format!("pcap:{}", pcap.display()))
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = dissect(&pcap, &[]);
    assert!(rows.len() > 1000, "{} frames", rows.len());
    let mut stacks = std::collections::BTreeSet::new();
    for r in &rows {
        for c in &r[1..6] {
            assert!(
                c.split(',').filter(|s| !s.is_empty()).all(|s| s == "1"),
                "{r:?}"
            );
        }
        for sev in r[6].split(',').filter(|s| !s.is_empty()) {
            assert!(sev.parse::<u64>().unwrap() < PI_WARN, "{r:?}");
        }
        stacks.insert(r[0].clone());
    }
    // One stack per stream: TCP, ICMP, IPv6, QinQ+MPLS, VXLAN, GRE, ARP, options (plain UDP).
    assert_eq!(stacks.len(), 8, "{stacks:?}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The harness itself: a frame whose TCP checksum is off by one is
/// reported bad, so the checks above can fail.
#[test]
fn a_corrupted_tcp_checksum_is_caught_by_the_check() {
    let dir = tmpdir("hdr-bad");
    let pcap = gen(
        &dir,
        "good",
        "[[stream]]\ncount = 1\nsize = 64\nl4 = \"tcp\"\n",
    );
    let mut b = std::fs::read(&pcap).unwrap();
    // pcap header 24 + record header 16, then the frame: TCP checksum at 14 + 20 + 16.
    b[24 + 16 + 50] ^= 1;
    std::fs::write(&pcap, &b).unwrap();
    let rows = dissect(&pcap, &[]);
    assert_eq!(
        rows[0][3], "0",
        "tcp.checksum.status of a corrupted frame: {rows:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_header_keys_exit_2_naming_the_key() {
    let dir = tmpdir("hdr-keys");
    for (stream, key) in [
        ("l4 = \"sctp\"", "stream[0].l4"),
        ("l4 = \"udp\"\ntcp_flags = \"S\"", "stream[0].tcp_flags"),
        ("l4 = \"tcp\"\ntcp_flags = \"SX\"", "stream[0].tcp_flags"),
        ("ip = 5", "stream[0].ip"),
        ("l3 = \"ipv6\"\nsize = 64", "stream[0].size"),
        (
            "tunnel = \"vxlan\"\ntunnel_src = \"1.1.1.1\"\ntunnel_dst = \"1.1.1.2\"",
            "stream[0].vni",
        ),
        ("l3 = \"arp\"\nl4 = \"udp\"", "stream[0].l4"),
        (
            "[[stream.field]]\nname = \"src_port\"\nmin = 1\nmax = 2\n",
            "stream[0].field[0].name",
        ),
    ] {
        let body = if key.ends_with("field[0].name") {
            format!("[[stream]]\nl4 = \"icmp\"\n{stream}")
        } else {
            format!("[[stream]]\n{stream}\n")
        };
        let cfg = dir.join("bad.toml");
        std::fs::write(&cfg, format!("[[port]]\nspec = \"null\"\n{body}")).unwrap();
        let out = Command::new(bin()).arg("check").arg(&cfg).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stream}: {err}");
        assert!(err.contains(key), "{stream}: wanted {key} in: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Writes `frames` as a classic pcap (microsecond, Ethernet).
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        b.extend_from_slice(&(i as u32).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(f);
    }
    std::fs::write(path, b).unwrap();
}

/// Every combination of network layer, transport, tags, MPLS, tunnel
/// and IPv4 options (216 stacks, four frames each of varying sizes with a
/// varying field) dissects with exactly the checksums it should carry —
/// inner and outer — all good, and no warning.
#[test]
fn every_combination_of_headers_has_valid_checksums() {
    use wirespeed::mbuf::{Mempool, PoolConfig};
    use wirespeed_apps::config::Config;
    use wirespeed_apps::frame::PacketGen;
    wirespeed::eal::dma::set_page_mode(wirespeed::eal::PageMode::Small);
    let tun = "tunnel_src = \"192.0.2.1\"\ntunnel_dst = \"192.0.2.2\"";
    let mut frames = Vec::new();
    let mut want = Vec::new();
    for ip in [4, 6] {
        for l4 in ["udp", "tcp", "icmp"] {
            for tags in ["", "vlan = 5", "svlan = 6\nvlan = 7"] {
                for mpls in ["", "mpls = [100, 200]"] {
                    for tunnel in ["", "vxlan", "gre", "gre-ip"] {
                        for opts in ["", "ip_options = \"rr\""] {
                            if ip == 6 && !opts.is_empty() {
                                continue;
                            }
                            let tunnel_keys = match tunnel {
                                "" => String::new(),
                                "vxlan" => format!("tunnel = \"vxlan\"\nvni = 9\n{tun}"),
                                "gre" => format!("tunnel = \"gre\"\n{tun}"),
                                _ => format!("tunnel = \"gre\"\ngre_proto = \"ip\"\n{tun}"),
                            };
                            let field = if l4 == "icmp" { "icmp_seq" } else { "src_port" };
                            let toml = format!(
                                "[[port]]\nspec = \"null\"\n[[stream]]\nsize = \"200-600\"\nip = {ip}\nl4 = \"{l4}\"\n\
                                 {tags}\n{mpls}\n{tunnel_keys}\n{opts}\n\
                                 [[stream.field]]\nname = \"{field}\"\nmin = 40000\nmax = 40003\n"
                            );
                            let s = Config::parse(&toml, "combo")
                                .unwrap()
                                .validate()
                                .unwrap()
                                .remove(0);
                            let mut g = PacketGen::new(&s, 0, false);
                            let mut pool = Mempool::new(&PoolConfig {
                                size: 8,
                                ..Default::default()
                            })
                            .unwrap();
                            let t = g.template.clone();
                            pool.init_all(|m| {
                                let _ = m.extend_from_slice(&t);
                            })
                            .unwrap();
                            for _ in 0..4 {
                                let mut m = pool.alloc().unwrap();
                                let wire = g.take_size();
                                g.fill_sized(&mut m, wire, 0);
                                frames.push(m.data().to_vec());
                                // ip, udp, tcp, icmp, icmpv6 checksums the stack carries.
                                let outer = !tunnel.is_empty() as usize;
                                want.push((
                                    toml.clone(),
                                    [
                                        (ip == 4) as usize + outer,
                                        (l4 == "udp") as usize + (tunnel == "vxlan") as usize,
                                        (l4 == "tcp") as usize,
                                        (l4 == "icmp" && ip == 4) as usize,
                                        (l4 == "icmp" && ip == 6) as usize,
                                    ],
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(frames.len(), 216 * 4);
    let dir = tmpdir("hdr-combo");
    let pcap = dir.join("all.pcap");
    write_pcap(&pcap, &frames);
    let rows = dissect(&pcap, &[]);
    assert_eq!(rows.len(), frames.len());
    for (r, (toml, counts)) in rows.iter().zip(&want) {
        for (c, n) in counts.iter().enumerate() {
            let got: Vec<&str> = r[c + 1].split(',').filter(|s| !s.is_empty()).collect();
            assert_eq!(got, vec!["1"; *n], "{}: {toml}\n{r:?}", CHECKS[c]);
        }
        for sev in r[6].split(',').filter(|s| !s.is_empty()) {
            assert!(sev.parse::<u64>().unwrap() < PI_WARN, "{toml}\n{r:?}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
