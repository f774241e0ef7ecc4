//! The appliance examples (`apps/examples/macswap.rs`, `apps/examples/l3fwd.rs`)
//! against in-process `ring:` ports: the test holds one end of each cable
//! (end A, opened first), the example runs on the other end on its own
//! lcore thread. Frames go in as bytes and are checked byte for byte when
//! they come out. The last tests run the built `l3fwd` binary on its config
//! file (and on pcap ports), and on bad configs.

#[allow(dead_code)]
#[path = "../examples/macswap.rs"]
mod macswap;

#[allow(dead_code)]
#[path = "../examples/l3fwd.rs"]
mod l3fwd;

#[allow(dead_code)]
#[path = "../examples/udp_echo.rs"]
mod udp_echo;

use clap::Parser;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::ethdev::{MacAddr, Port, PortConfig, Registry, RxQueue, TxQueue};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};
use wirespeed::stack::checksum;

// ---------------------------------------------------------------- the peer

/// The test's end of a ring cable.
struct Peer {
    _port: Box<dyn Port>,
    tx: Box<dyn TxQueue>,
    rx: Box<dyn RxQueue>,
}

impl Peer {
    /// Opens end A of `ring:name`; `rx_ring` bounds what the far end can
    /// have in flight towards us.
    fn open(name: &str, rx_ring: u16) -> Peer {
        let mut port = Registry::with_builtins()
            .open(&format!("ring:{name}"))
            .unwrap();
        port.configure(&PortConfig {
            tx_ring_size: 1024,
            rx_ring_size: rx_ring,
            ..PortConfig::default()
        })
        .unwrap();
        let tx = port.tx_queue(0).unwrap();
        let rx = port.rx_queue(0).unwrap();
        port.start().unwrap();
        Peer {
            _port: port,
            tx,
            rx,
        }
    }

    fn send(&mut self, pool: &mut Mempool, frames: &[Vec<u8>]) {
        for f in frames {
            let mut m = pool.alloc().expect("test pool");
            m.extend_from_slice(f).unwrap();
            let mut b = Burst::new();
            b.push(m).unwrap();
            assert_eq!(self.tx.tx_burst(&mut b), 1, "peer ring full");
        }
        self.tx.clean(usize::MAX);
    }

    /// Frames received until `want` non-ARP frames arrived (`want` 0: until
    /// `wait` passed) or `wait` passed, split into non-ARP and ARP frames.
    fn recv(&mut self, pool: &mut Mempool, want: usize, wait: Duration) -> Split {
        let end = Instant::now() + wait;
        let mut s = Split::default();
        let mut b = Burst::new();
        while (want == 0 || s.ip.len() < want) && Instant::now() < end {
            self.tx.clean(usize::MAX);
            if self.rx.rx_burst(pool, &mut b, 32) == 0 {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            while let Some(m) = b.pop_front() {
                let d = m.data().to_vec();
                if d.len() >= 14 && d[12..14] == [0x08, 0x06] {
                    s.arp.push(d);
                } else {
                    s.ip.push(d);
                }
            }
        }
        s
    }
}

#[derive(Default)]
struct Split {
    ip: Vec<Vec<u8>>,
    arp: Vec<Vec<u8>>,
}

fn test_pool() -> Mempool {
    set_page_mode(PageMode::Small);
    Mempool::new(&PoolConfig {
        name: "examples-test".into(),
        size: 2048,
        ..PoolConfig::default()
    })
    .unwrap()
}

// ---------------------------------------------------------------- frames

const MAC_R0: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
const MAC_R1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x11]);
const MAC_N0: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x20]);
const MAC_N1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x21]);

/// An Ethernet + IPv4 (+ options) + UDP frame with a correct header checksum.
struct Ip4 {
    dst_mac: MacAddr,
    src_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    options: Vec<u8>,
    payload: usize,
    tag: u16,
}

impl Ip4 {
    fn new(src: [u8; 4], dst: [u8; 4], ttl: u8) -> Ip4 {
        Ip4 {
            dst_mac: MAC_R0,
            src_mac: MAC_N0,
            src: Ipv4Addr::from(src),
            dst: Ipv4Addr::from(dst),
            ttl,
            options: Vec::new(),
            payload: 18,
            tag: 0,
        }
    }
    fn build(&self) -> Vec<u8> {
        let ihl = 20 + self.options.len();
        let total = ihl + 8 + self.payload;
        let mut f = Vec::new();
        f.extend_from_slice(&self.dst_mac.0);
        f.extend_from_slice(&self.src_mac.0);
        f.extend_from_slice(&[0x08, 0x00]);
        let mut h = vec![0u8; ihl];
        h[0] = 0x40 | (ihl / 4) as u8;
        h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        h[4..6].copy_from_slice(&self.tag.to_be_bytes());
        h[6] = 0x40; // DF
        h[8] = self.ttl;
        h[9] = 17;
        h[12..16].copy_from_slice(&self.src.octets());
        h[16..20].copy_from_slice(&self.dst.octets());
        h[20..].copy_from_slice(&self.options);
        let c = checksum::checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&h);
        f.extend_from_slice(&4000u16.to_be_bytes());
        f.extend_from_slice(&5000u16.to_be_bytes());
        f.extend_from_slice(&((8 + self.payload) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend((0..self.payload).map(|i| (i as u8).wrapping_add(self.tag as u8)));
        // Pad to the Ethernet minimum (60 bytes without FCS).
        while f.len() < 60 {
            f.push(0);
        }
        f
    }
}

/// The RFC 1071 checksum of an IPv4 header, recomputed from scratch with
/// the checksum field taken as zero (independent of the incremental update).
fn recompute_ip_checksum(h: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for (i, w) in h.chunks(2).enumerate() {
        if i == 5 {
            continue;
        }
        acc += u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]) as u32;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

// ---------------------------------------------------------------- macswap

fn run_macswap(args: &[&str]) -> std::thread::JoinHandle<macswap::Report> {
    let mut argv = vec!["macswap", "--no-huge", "--duration", "20", "--pool", "1024"];
    argv.extend_from_slice(args);
    let plan = macswap::Opts::parse_from(argv).plan().unwrap();
    std::thread::spawn(move || macswap::run(&plan, &Registry::with_builtins(), false).unwrap())
}

/// Runs example `name` on its shipped `configs/NAME.toml` for 0.2 s and
/// asserts it succeeded: the checkout's root, the binary, its stdout.
fn run_shipped_config(name: &str) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = example_bin(name);
    let out = std::process::Command::new(&bin)
        .current_dir(&root)
        .args(["--config", &format!("configs/{name}.toml"), "--no-huge"])
        .args(["--duration", "0.2"])
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{so}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (root, bin, so)
}

/// Example `bin` on the `shipped` config with `from` replaced by `to`
/// (written to `p`) exits 2 naming `key`.
fn refused_naming(
    bin: &std::path::Path,
    p: &std::path::Path,
    shipped: &str,
    (from, to): (&str, &str),
    key: &str,
) {
    assert!(shipped.contains(from), "{from}");
    std::fs::write(p, shipped.replacen(from, to, 1)).unwrap();
    let out = std::process::Command::new(bin)
        .args(["--config", p.to_str().unwrap(), "--no-huge"])
        .output()
        .unwrap();
    let se = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{key}: {se}");
    assert!(se.contains(key), "{key}: {se}");
}

/// The example binary on its shipped config (`null` ports) runs; bad keys
/// and values are exit 2 naming them; flags override the keys.
#[test]
fn macswap_binary_runs_its_config_and_names_bad_keys() {
    let (root, bin, so) = run_shipped_config("macswap");
    assert!(
        so.contains("port 0 null: rx 0 tx 0 dropped 0 runts 0"),
        "{so}"
    );
    assert!(so.contains("port 1 null: rx 0"), "{so}");
    let shipped = std::fs::read_to_string(root.join("configs/macswap.toml")).unwrap();
    let dir = std::env::temp_dir().join(format!("ws-macswap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("bad.toml");
    for (from, to, key) in [
        ("burst = 32 ", "bursts = 32 ", "unknown field `bursts`"),
        (
            "\n[[port]]\nspec",
            "\n[[ports]]\nspec",
            "unknown field `ports`",
        ),
        (
            r#"spec = "null""#,
            r#"spec = "null"
speed = 1"#,
            "unknown field `speed`",
        ),
        ("burst = 32 ", "burst = 300 ", "run.burst:"),
        ("duration = 1 ", "duration = -1 ", "run.duration:"),
        ("pool = 8192 ", "pool = 8 ", "run.pool:"),
    ] {
        refused_naming(&bin, &p, &shipped, (from, to), key);
    }
    // A flag overrides its key (and its error); --port replaces the list.
    std::fs::write(&p, shipped.replacen("burst = 32 ", "burst = 300 ", 1)).unwrap();
    let plan = macswap::Opts::parse_from([
        "macswap",
        "--config",
        p.to_str().unwrap(),
        "--burst",
        "8",
        "--port",
        "ring:x",
    ])
    .plan()
    .unwrap();
    assert_eq!(
        (plan.run.burst, plan.ports.clone()),
        (8, vec!["ring:x".to_string()])
    );
    assert_eq!(plan.run.pool, 8192);
    let e = macswap::Opts::parse_from(["macswap", "--burst", "0", "--port", "null"])
        .plan()
        .unwrap_err();
    assert!(
        e.to_string().starts_with("--burst:") && e.exit_code() == 2,
        "{e}"
    );
    let e = macswap::Opts::parse_from(["macswap"]).plan().unwrap_err();
    assert!(e.to_string().starts_with("port:"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn macswap_reflects_every_frame_out_of_its_port_with_macs_swapped() {
    let mut pool = test_pool();
    let mut a = Peer::open("ex-ms-a", 1024);
    let mut b = Peer::open("ex-ms-b", 1024);
    let frames = |seed: u16| -> Vec<Vec<u8>> {
        (0..100)
            .map(|i| {
                let mut f = Ip4::new([198, 18, 0, 1], [198, 18, 1, 1], 64);
                f.tag = seed + i;
                f.payload = 18 + (i as usize * 13) % 1400;
                f.build()
            })
            .collect()
    };
    let (fa, fb) = (frames(0), frames(1000));
    a.send(&mut pool, &fa);
    b.send(&mut pool, &fb);
    // A runt (shorter than an Ethernet header) on port 0: freed, counted.
    a.send(&mut pool, &[vec![0xaa; 10]]);
    let h = run_macswap(&[
        "--port",
        "ring:ex-ms-a",
        "--port",
        "ring:ex-ms-b",
        "--count",
        "201",
    ]);
    let ga = a.recv(&mut pool, 100, Duration::from_secs(10));
    let gb = b.recv(&mut pool, 100, Duration::from_secs(10));
    let r = h.join().unwrap();
    for (sent, got) in [(&fa, &ga.ip), (&fb, &gb.ip)] {
        assert_eq!(got.len(), 100);
        for (s, g) in sent.iter().zip(got.iter()) {
            assert_eq!(g.len(), s.len());
            assert_eq!(&g[0..6], &s[6..12], "destination = the sender");
            assert_eq!(&g[6..12], &s[0..6], "source = the old destination");
            assert_eq!(&g[12..], &s[12..], "the rest untouched");
        }
    }
    assert_eq!(
        r.ports[0],
        macswap::PortCount {
            rx: 101,
            tx: 100,
            dropped: 0,
            runts: 1
        }
    );
    assert_eq!(
        r.ports[1],
        macswap::PortCount {
            rx: 100,
            tx: 100,
            dropped: 0,
            runts: 0
        }
    );
    assert!(r.ports.iter().all(|c| c.balanced()));
    assert!(r
        .to_string()
        .contains("port 0 ring:ex-ms-a: rx 101 tx 100 dropped 0 runts 1"));
}

#[test]
fn macswap_frees_and_counts_what_the_tx_ring_cannot_take() {
    let mut pool = test_pool();
    // Our RX ring (the example's TX ring towards us) holds 32 frames, and
    // we do not read until the run is over.
    let mut a = Peer::open("ex-ms-full", 32);
    let frames: Vec<Vec<u8>> = (0..100)
        .map(|i| {
            let mut f = Ip4::new([198, 18, 0, 1], [198, 18, 1, 1], 64);
            f.tag = i;
            f.build()
        })
        .collect();
    a.send(&mut pool, &frames);
    let h = run_macswap(&["--port", "ring:ex-ms-full", "--count", "100"]);
    let r = h.join().unwrap();
    let got = a.recv(&mut pool, 100, Duration::from_millis(300));
    let c = r.ports[0];
    assert_eq!(c.rx, 100);
    assert_eq!(c.tx, 32, "{c:?}");
    assert_eq!(c.dropped, 68);
    assert!(c.balanced());
    assert_eq!(got.ip.len(), 32);
    // The first 32 made it, in order.
    for (s, g) in frames.iter().zip(&got.ip) {
        assert_eq!(&g[0..6], &s[6..12]);
        assert_eq!(&g[14..], &s[14..]);
    }
}

// ---------------------------------------------------------------- l3fwd

/// Two ports on ring cables `NAME-0` / `NAME-1`; the peers are the next hops.
fn l3fwd_config(name: &str, extra: &str, static_n1: bool) -> String {
    let mut s = format!(
        r#"
[run]
lcore = 0
pool = 1024
ring = 256
duration = 20
no_huge = true

[[port]]
spec = "ring:{name}-0"
address = "10.0.0.1/24"
mac = "{MAC_R0}"

[[port]]
spec = "ring:{name}-1"
address = "10.0.1.1/24"
mac = "{MAC_R1}"

[[route]]
prefix = "198.18.0.0/24"
port = 0
via = "10.0.0.2"

[[route]]
prefix = "198.18.1.0/24"
port = 1
via = "10.0.1.2"

[[route]]
prefix = "198.18.1.128/25"
port = 0
via = "10.0.0.2"

[[neighbour]]
port = 0
address = "10.0.0.2"
mac = "{MAC_N0}"
{extra}
"#
    );
    if static_n1 {
        s.push_str(&format!(
            "\n[[neighbour]]\nport = 1\naddress = \"10.0.1.2\"\nmac = \"{MAC_N1}\"\n"
        ));
    }
    s
}

fn run_l3fwd(cfg: &str, count: u64) -> std::thread::JoinHandle<l3fwd::Report> {
    let mut c = l3fwd::Config::parse("test", cfg).unwrap();
    c.run.count = Some(count);
    let plan = c.plan().unwrap();
    std::thread::spawn(move || l3fwd::run(&plan, &Registry::with_builtins(), false).unwrap())
}

/// Checks a forwarded frame against the one sent: next-hop MACs, TTL − 1,
/// checksum right (recomputed from scratch), every other byte the same.
fn assert_forwarded(sent: &[u8], got: &[u8], dst_mac: MacAddr, src_mac: MacAddr) {
    assert_eq!(got.len(), sent.len());
    assert_eq!(&got[0..6], &dst_mac.0, "next hop's MAC");
    assert_eq!(&got[6..12], &src_mac.0, "output port's MAC");
    assert_eq!(&got[12..14], &[0x08, 0x00]);
    let ihl = (sent[14] & 0x0f) as usize * 4;
    let (s, g) = (&sent[14..], &got[14..]);
    assert_eq!(g[8], s[8] - 1, "TTL decremented");
    let c = u16::from_be_bytes([g[10], g[11]]);
    assert_eq!(c, recompute_ip_checksum(&g[..ihl]), "header checksum");
    assert_eq!(checksum::checksum(&g[..ihl]), 0);
    assert_eq!(&g[..8], &s[..8]);
    assert_eq!(&g[9..10], &s[9..10]);
    assert_eq!(&g[12..], &s[12..], "addresses, options, payload untouched");
}

#[test]
fn l3fwd_forwards_by_longest_prefix_with_ttl_checksum_and_macs_rewritten() {
    let mut pool = test_pool();
    let mut p0 = Peer::open("ex-l3-fw-0", 1024);
    let mut p1 = Peer::open("ex-l3-fw-1", 1024);
    // 60 frames to 198.18.1.0/25 (out of port 1) with TTLs 2..=255, some
    // with IP options, one with TTL 255 and checksum 0xffff-adjacent values.
    let to1: Vec<Vec<u8>> = (0..60u16)
        .map(|i| {
            let mut f = Ip4::new([198, 18, 0, 9], [198, 18, 1, (i % 120) as u8 + 1], 0);
            f.ttl = [2, 3, 64, 128, 255][i as usize % 5];
            f.tag = i.wrapping_mul(4099);
            if i % 7 == 0 {
                f.options = vec![1, 1, 1, 0]; // NOP NOP NOP EOL
            }
            f.payload = (i as usize * 37) % 1200;
            f.build()
        })
        .collect();
    // 10 frames to 198.18.1.200 (the /25 is more specific: back out of port 0).
    let to0: Vec<Vec<u8>> = (0..10u16)
        .map(|i| {
            let mut f = Ip4::new([198, 18, 0, 9], [198, 18, 1, 200], 64);
            f.tag = 7000 + i;
            f.build()
        })
        .collect();
    p0.send(&mut pool, &to1);
    p0.send(&mut pool, &to0);
    let h = run_l3fwd(&l3fwd_config("ex-l3-fw", "", true), 70);
    let g1 = p1.recv(&mut pool, 60, Duration::from_secs(10));
    let g0 = p0.recv(&mut pool, 10, Duration::from_secs(10));
    let r = h.join().unwrap();
    assert_eq!(g1.ip.len(), 60);
    for (s, g) in to1.iter().zip(&g1.ip) {
        assert_forwarded(s, g, MAC_N1, MAC_R1);
    }
    assert_eq!(g0.ip.len(), 10);
    for (s, g) in to0.iter().zip(&g0.ip) {
        assert_forwarded(s, g, MAC_N0, MAC_R0);
    }
    // The router announced each port's address (gratuitous ARP).
    assert_eq!(g1.arp.len(), 1);
    assert_eq!(&g1.arp[0][28..32], &[10, 0, 1, 1]);
    let c = r.c;
    assert_eq!(
        (c.rx, c.forwarded, c.drops(), c.local),
        (70, 70, 0, 0),
        "{c:?}"
    );
    assert_eq!(r.ports[0].rx, 70);
    assert_eq!((r.ports[0].tx, r.ports[1].tx), (10, 60));
    assert!(c.balanced());
}

#[test]
fn l3fwd_counts_each_bad_frame_in_one_drop_counter_and_answers_ttl_expiry() {
    let mut pool = test_pool();
    let mut p0 = Peer::open("ex-l3-drop-0", 1024);
    let mut p1 = Peer::open("ex-l3-drop-1", 1024);
    let good = Ip4::new([198, 18, 0, 9], [198, 18, 1, 7], 64);
    let mut frames = Vec::new();
    // 0: good.
    frames.push(good.build());
    // 1: bad checksum.
    let mut f = good.build();
    f[24] ^= 0x01;
    frames.push(f);
    // 2: no route.
    frames.push(Ip4::new([198, 18, 0, 9], [203, 0, 113, 1], 64).build());
    // 3: TTL 1 → time exceeded. 4: TTL 0 → time exceeded.
    let mut ttl1 = Ip4::new([198, 18, 0, 9], [198, 18, 1, 7], 1);
    ttl1.payload = 700; // the quote is cut at 576 bytes of IP
    let ttl1 = ttl1.build();
    frames.push(ttl1.clone());
    frames.push(Ip4::new([198, 18, 0, 9], [198, 18, 1, 7], 0).build());
    // 5: version 6 in an IPv4 frame. 6: IHL 4.
    let mut f = good.build();
    f[14] = 0x65;
    frames.push(f);
    let mut f = good.build();
    f[14] = 0x44;
    frames.push(f);
    // 7: total length past the frame.
    let mut f = good.build();
    f[16..18].copy_from_slice(&1000u16.to_be_bytes());
    frames.push(f);
    // 8: IPv6 ethertype. 9: unicast to another MAC.
    let mut f = good.build();
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    frames.push(f);
    let mut f = good.build();
    f[0..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
    frames.push(f);
    p0.send(&mut pool, &frames);
    let h = run_l3fwd(&l3fwd_config("ex-l3-drop", "", true), frames.len() as u64);
    let g1 = p1.recv(&mut pool, 1, Duration::from_secs(10));
    let g0 = p0.recv(&mut pool, 2, Duration::from_secs(10));
    let r = h.join().unwrap();
    let c = r.c;
    assert_eq!(c.rx, 10);
    assert_eq!(c.forwarded, 1);
    assert_eq!(c.bad_checksum, 1);
    assert_eq!(c.no_route, 1);
    assert_eq!(c.ttl_exceeded, 2);
    assert_eq!(c.bad_header, 3);
    assert_eq!(c.not_ipv4, 1);
    assert_eq!(c.other_host, 1);
    assert_eq!((c.no_neighbour, c.tx_dropped, c.local), (0, 0, 0));
    assert_eq!(c.icmp_sent, 2);
    assert!(c.balanced(), "{c:?}");
    assert_eq!(g1.ip.len(), 1);
    assert_forwarded(&frames[0], &g1.ip[0], MAC_N1, MAC_R1);

    // The time exceeded for the TTL 1 frame, byte for byte.
    assert_eq!(g0.ip.len(), 2);
    let quoted = &ttl1[14..14 + 548];
    let mut want = Vec::new();
    want.extend_from_slice(&MAC_N0.0);
    want.extend_from_slice(&MAC_R0.0);
    want.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![
        0x45, 0xc0, 0x02, 0x40, 0x00, 0x01, 0x00, 0x00, 64, 1, 0, 0, 10, 0, 0, 1, 198, 18, 0, 9,
    ];
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    want.extend_from_slice(&ip);
    let mut icmp = vec![11, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(quoted);
    let c = checksum::checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    want.extend_from_slice(&icmp);
    assert_eq!(want.len(), 14 + 576);
    assert_eq!(g0.ip[0], want);
    // The second (TTL 0) is the same shape with the next ID.
    assert_eq!(&g0.ip[1][18..20], &[0, 2]);
    assert_eq!(g0.ip[1][34], 11);
}

#[test]
fn l3fwd_rate_limits_time_exceeded() {
    let mut pool = test_pool();
    let mut p0 = Peer::open("ex-l3-rl-0", 1024);
    let _p1 = Peer::open("ex-l3-rl-1", 1024);
    let frames: Vec<Vec<u8>> = (0..20u16)
        .map(|i| {
            let mut f = Ip4::new([198, 18, 0, 9], [198, 18, 1, 7], 1);
            f.tag = i;
            f.build()
        })
        .collect();
    p0.send(&mut pool, &frames);
    // A bucket of 3 refilled once a second: a burst of 20 gets 3 answers
    // (plus at most one refill if the run is slow).
    let extra = "[icmp]\nrate = 1\nburst = 3\n";
    let h = run_l3fwd(&l3fwd_config("ex-l3-rl", extra, true), 20);
    let g0 = p0.recv(&mut pool, 4, Duration::from_millis(500));
    let c = h.join().unwrap().c;
    assert_eq!(c.ttl_exceeded, 20);
    assert!((3..=4).contains(&c.icmp_sent), "{c:?}");
    assert_eq!(c.icmp_sent + c.icmp_rate_limited, 20);
    assert_eq!(g0.ip.len() as u64, c.icmp_sent);
    assert!(c.balanced());
}

#[test]
fn l3fwd_resolves_the_next_hop_by_arp_on_the_output_port() {
    let mut pool = test_pool();
    let mut p0 = Peer::open("ex-l3-arp-0", 1024);
    let mut p1 = Peer::open("ex-l3-arp-1", 1024);
    // No static neighbour on port 1: the first frame starts ARP and is dropped.
    let h = run_l3fwd(&l3fwd_config("ex-l3-arp", "", false), 3);
    let first = Ip4::new([198, 18, 0, 9], [198, 18, 1, 7], 64).build();
    p0.send(&mut pool, std::slice::from_ref(&first));
    // Wait for the request for 10.0.1.2 (after the gratuitous ARP).
    let end = Instant::now() + Duration::from_secs(10);
    let req = loop {
        let s = p1.recv(&mut pool, 0, Duration::from_millis(20));
        if let Some(r) = s.arp.into_iter().find(|a| a[38..42] == [10, 0, 1, 2]) {
            break r;
        }
        assert!(Instant::now() < end, "no ARP request for 10.0.1.2");
    };
    assert_eq!(&req[0..6], &[0xff; 6]);
    assert_eq!(&req[6..12], &MAC_R1.0);
    assert_eq!(&req[20..22], &[0, 1], "request");
    assert_eq!(&req[22..28], &MAC_R1.0);
    assert_eq!(&req[28..32], &[10, 0, 1, 1]);
    // The reply, then a frame on the same cable (so the router sees it
    // after the reply) routed back out of port 1 (hairpin).
    let mut reply = Vec::new();
    reply.extend_from_slice(&MAC_R1.0);
    reply.extend_from_slice(&MAC_N1.0);
    reply.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    reply.extend_from_slice(&MAC_N1.0);
    reply.extend_from_slice(&[10, 0, 1, 2]);
    reply.extend_from_slice(&MAC_R1.0);
    reply.extend_from_slice(&[10, 0, 1, 1]);
    reply.resize(60, 0);
    let mut second = Ip4::new([198, 18, 0, 9], [198, 18, 1, 8], 64);
    (second.dst_mac, second.src_mac) = (MAC_R1, MAC_N1);
    let second = second.build();
    p1.send(&mut pool, &[reply, second.clone()]);
    let g1 = p1.recv(&mut pool, 1, Duration::from_secs(10));
    let r = h.join().unwrap();
    assert_eq!(g1.ip.len(), 1);
    assert_forwarded(&second, &g1.ip[0], MAC_N1, MAC_R1);
    let c = r.c;
    assert_eq!(
        (c.rx, c.no_neighbour, c.local, c.forwarded),
        (3, 1, 1, 1),
        "{c:?}"
    );
    assert!(c.balanced());
}

#[test]
fn l3fwd_config_errors_name_the_key() {
    let base = l3fwd_config("ex-l3-cfg", "", true);
    let e = l3fwd::Config::parse("t.toml", &base.replace("ring = 256", "rings = 256"))
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("unknown field `rings`"), "{e}");
    let plan = |s: &str| {
        l3fwd::Config::parse("t.toml", s)
            .unwrap()
            .plan()
            .err()
            .unwrap()
            .to_string()
    };
    let e = plan(&base.replace("198.18.1.0/24", "198.18.1.0/40"));
    assert!(
        e.starts_with("route[1].prefix:") && e.contains("0..=32"),
        "{e}"
    );
    let e = plan(&base.replace("198.18.1.0/24", "198.18.1.1/24"));
    assert!(
        e.starts_with("route[1].prefix:") && e.contains("host bits"),
        "{e}"
    );
    let e = plan(&base.replace("via = \"10.0.1.2\"", "via = \"10.9.9.9\""));
    assert!(
        e.starts_with("route[1].via:") && e.contains("subnet"),
        "{e}"
    );
    let e = plan(&base.replace("port = 1\nvia", "port = 7\nvia"));
    assert!(
        e.starts_with("route[1].port:") && e.contains("does not exist"),
        "{e}"
    );
    let e = plan(&base.replace("mac = \"02:00:00:00:00:11\"", "mac = \"01:00:5e:00:00:01\""));
    assert!(e.starts_with("port[1].mac:"), "{e}");
}

// ---------------------------------------------------------------- the binary

/// The built example binary (`cargo test` builds examples beside the test
/// binaries' `deps/`); built here when missing or older than its source
/// (`cargo test --test examples` alone does not rebuild examples).
fn example_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("examples").join(name);
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.rs"));
    let mtime = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if mtime(&bin).is_none() || mtime(&bin) < mtime(&src) {
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "wirespeed-apps", "--example", name]);
        if dir.file_name().is_some_and(|d| d == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().unwrap();
        assert!(st.success());
    }
    bin
}

fn counter(out: &str, key: &str) -> u64 {
    out.lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(key)).then(|| w.next().unwrap().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no counter {key} in:\n{out}"))
}

#[test]
fn l3fwd_binary_runs_its_config_and_routes_a_pcap_end_to_end() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = example_bin("l3fwd");
    // 1. The shipped config as it is (null ports: nothing arrives).
    let out = std::process::Command::new(&bin)
        .current_dir(&root)
        .args([
            "--config",
            "configs/l3fwd.toml",
            "--no-huge",
            "--duration",
            "0.2",
        ])
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{so}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(counter(&so, "rx"), 0);
    assert!(so.contains("balanced           yes"), "{so}");

    // 2. The shipped config with pcap ports: port 0 replays IN.pcap.
    let dir = std::env::temp_dir().join(format!("ws-l3fwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.pcap");
    let mut w =
        wirespeed::ethdev::pcap::PcapWriter::new(std::fs::File::create(&input).unwrap()).unwrap();
    let mut sent = Vec::new();
    for i in 0..10u16 {
        let mut f = Ip4::new([198, 18, 0, 9], [198, 18, 1, 1 + i as u8], 64);
        f.tag = i;
        sent.push(f.build());
    }
    let mut bad = sent[0].clone();
    bad[24] ^= 0xff;
    let extra = [
        bad,
        Ip4::new([198, 18, 0, 9], [192, 0, 2, 1], 64).build(),
        Ip4::new([198, 18, 0, 9], [198, 18, 1, 1], 1).build(),
    ];
    for (i, f) in sent.iter().chain(extra.iter()).enumerate() {
        w.write(i as u64 * 1000, f).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let out0 = dir.join("out0.pcap");
    let out1 = dir.join("out1.pcap");
    let shipped = std::fs::read_to_string(root.join("configs/l3fwd.toml")).unwrap();
    let mut ports = shipped.splitn(3, "spec = \"null\"");
    let cfg = format!(
        "{}spec = \"pcap:{}?rx={}\"{}spec = \"pcap:{}\"{}",
        ports.next().unwrap(),
        out0.display(),
        input.display(),
        ports.next().unwrap(),
        out1.display(),
        ports.next().unwrap()
    );
    let cfg_path = dir.join("l3fwd.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let out = std::process::Command::new(&bin)
        .args([
            "--config",
            cfg_path.to_str().unwrap(),
            "--no-huge",
            "--duration",
            "0.5",
        ])
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{so}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(counter(&so, "rx"), 13, "{so}");
    assert_eq!(counter(&so, "forwarded"), 10);
    assert_eq!(counter(&so, "bad_checksum"), 1);
    assert_eq!(counter(&so, "no_route"), 1);
    assert_eq!(counter(&so, "ttl_exceeded"), 1);
    assert_eq!(counter(&so, "icmp_sent"), 1);
    assert!(so.contains("balanced           yes"));
    let recs = wirespeed::ethdev::pcap::read_file(&out1).unwrap();
    let ip: Vec<&[u8]> = recs
        .iter()
        .map(|r| r.data.as_slice())
        .filter(|d| d[12..14] == [0x08, 0x00])
        .collect();
    assert_eq!(ip.len(), 10);
    for (s, g) in sent.iter().zip(ip) {
        assert_forwarded(s, g, MAC_N1, MAC_R1);
    }
    let back = wirespeed::ethdev::pcap::read_file(&out0).unwrap();
    assert_eq!(
        back.iter()
            .filter(|r| r.data[12..14] == [0x08, 0x00] && r.data[34] == 11)
            .count(),
        1,
        "one time exceeded back out of port 0"
    );

    // 3. Bad configs: exit 2, the key named.
    for (from, to, key) in [
        ("burst = 32 ", "bursts = 32 ", "unknown field `bursts`"),
        ("198.18.1.0/24", "198.18.1.0/33", "route[1].prefix"),
        ("198.18.1.0/24", "198.18.1.1/24", "route[1].prefix"),
    ] {
        let p = dir.join("bad.toml");
        assert!(shipped.contains(from));
        std::fs::write(&p, shipped.replacen(from, to, 1)).unwrap();
        let out = std::process::Command::new(&bin)
            .args(["--config", p.to_str().unwrap()])
            .output()
            .unwrap();
        let se = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{se}");
        assert!(se.contains(key), "{se}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The compiled DIR-24-8 table answers as the engine's FIB does, for
/// prefixes of every length (/0 to /32, nested, many sharing a /24) and
/// addresses at and around every prefix boundary.
#[test]
fn l3fwd_dir248_matches_the_engine_fib() {
    use wirespeed::stack::{Route, RouteTable};
    let mut t = RouteTable::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut probes = Vec::new();
    for i in 0..400u32 {
        let len = match i % 5 {
            0 => 8 + (rnd() % 17) as u8,
            1 => 25 + (rnd() % 8) as u8,
            _ => (rnd() % 33) as u8,
        };
        // Cluster half of them under 198.18.0.0/15 so prefixes nest.
        let base = if i % 2 == 0 {
            0xc612_0000 | (rnd() as u32 & 0x1_ffff)
        } else {
            rnd() as u32
        };
        let m = wirespeed::stack::route::mask(len);
        let prefix = base & m;
        let gw = Some(Ipv4Addr::from(0x0a00_0000 | (i % 7)));
        let mut r = Route::unicast(Ipv4Addr::from(prefix), len, gw, (i % 3) as u16);
        // Some backups (a higher metric) and some blackholes.
        r.metric = (i % 4 == 3) as u32 * 100;
        if i % 11 == 5 {
            r.rtype = wirespeed::stack::RouteType::Blackhole;
        }
        let _ = t.add(r);
        for d in [
            prefix,
            prefix | !m,
            prefix.wrapping_sub(1),
            (prefix | !m).wrapping_add(1),
        ] {
            probes.push(d);
        }
    }
    for _ in 0..20_000 {
        probes.push(rnd() as u32);
    }
    let d = l3fwd::Dir248::build(&t).unwrap();
    for a in probes {
        let want = t
            .lookup(Ipv4Addr::from(a))
            .filter(|r| r.rtype == wirespeed::stack::RouteType::Unicast)
            .map(|r| (r.port, r.gateway.map_or(0, u32::from)));
        let got = d.lookup(a).map(|i| (d.nhs[i].port, d.nhs[i].gw));
        assert_eq!(got, want, "{}", Ipv4Addr::from(a));
    }
}

/// Sets an IPv4 header field of a built frame and fixes the header checksum.
fn patch_ip(f: &mut [u8], at: usize, bytes: &[u8]) {
    f[14 + at..14 + at + bytes.len()].copy_from_slice(bytes);
    f[24..26].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn l3fwd_sends_no_time_exceeded_about_an_icmp_error_a_fragment_or_a_broadcast_source() {
    let mut pool = test_pool();
    let mut p0 = Peer::open("ex-l3-sup-0", 1024);
    let _p1 = Peer::open("ex-l3-sup-1", 1024);
    let base = Ip4::new([198, 18, 0, 9], [198, 18, 1, 7], 1);
    // An ICMP destination unreachable (an error: no answer).
    let mut unreach = base.build();
    patch_ip(&mut unreach, 9, &[1]);
    unreach[34] = 3;
    // An ICMP echo request (not an error: answered).
    let mut echo = base.build();
    patch_ip(&mut echo, 9, &[1]);
    echo[34] = 8;
    // A second fragment (offset 185 × 8).
    let mut frag = base.build();
    patch_ip(&mut frag, 6, &185u16.to_be_bytes());
    // A limited-broadcast source.
    let bsrc = Ip4::new([255, 255, 255, 255], [198, 18, 1, 7], 1).build();
    let frames = [unreach, echo.clone(), frag, bsrc];
    p0.send(&mut pool, &frames);
    let h = run_l3fwd(&l3fwd_config("ex-l3-sup", "", true), 4);
    let g0 = p0.recv(&mut pool, 2, Duration::from_millis(500));
    let c = h.join().unwrap().c;
    assert_eq!(
        (c.ttl_exceeded, c.icmp_sent, c.icmp_suppressed),
        (4, 1, 3),
        "{c:?}"
    );
    assert_eq!(c.icmp_rate_limited, 0);
    assert!(c.balanced());
    assert_eq!(g0.ip.len(), 1, "only the echo request is answered");
    assert_eq!(g0.ip[0][34], 11);
    assert_eq!(
        &g0.ip[0][42..42 + 28],
        &echo[14..42],
        "quotes the echo request"
    );
}

// ---------------------------------------------------------------- udp_echo

/// A UDP datagram from the test's host 10.0.0.2 (MAC_N0) to `dst_mac`.
fn udp_request(dst_mac: [u8; 6], sport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&MAC_N0.0);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + 8 + payload.len();
    let mut h = vec![0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    h[8] = 64;
    h[9] = 17;
    h[12..16].copy_from_slice(&[10, 0, 0, 2]);
    h[16..20].copy_from_slice(&[10, 0, 0, 1]);
    let c = checksum::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&7u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]); // no checksum (RFC 768: zero = none)
    f.extend_from_slice(payload);
    f.resize(f.len().max(60), 0);
    f
}

/// The echo server answers every datagram from where it came, after
/// resolving the client by ARP: the same payload, ports swapped, valid
/// IPv4 and UDP checksums; its counters and the stack's agree.
#[test]
fn udp_echo_answers_every_datagram_to_its_sender() {
    const N: u16 = 50;
    let mut pool = test_pool();
    let mut peer = Peer::open("ex-echo", 1024);
    let opts = udp_echo::Opts::parse_from([
        "udp_echo",
        "--port",
        "ring:ex-echo",
        "--ip",
        "10.0.0.1/24",
        "--no-huge",
        "--count",
        "50",
        "--duration",
        "20",
    ]);
    let plan = opts.plan().unwrap();
    let h = std::thread::spawn(move || {
        udp_echo::run(&plan, &Registry::with_builtins(), false).unwrap()
    });
    // The server announces its address: its MAC.
    let end = Instant::now() + Duration::from_secs(10);
    let mac: [u8; 6] = loop {
        let s = peer.recv(&mut pool, 0, Duration::from_millis(20));
        if let Some(a) = s.arp.iter().find(|a| a[28..32] == [10, 0, 0, 1]) {
            break a[6..12].try_into().unwrap();
        }
        assert!(Instant::now() < end, "no gratuitous ARP from the server");
    };
    let reqs: Vec<Vec<u8>> = (0..N)
        .map(|i| udp_request(mac, 5000 + i, format!("echo {i}").as_bytes()))
        .collect();
    peer.send(&mut pool, &reqs);
    // It asks who 10.0.0.2 is before answering: tell it.
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    let mut answered = false;
    while got.len() < N as usize {
        if Instant::now() >= end {
            let r = h.join().unwrap();
            panic!(
                "{} of {N} echoes (asked for our MAC: {answered}); server: {r}",
                got.len()
            );
        }
        let s = peer.recv(&mut pool, 0, Duration::from_millis(20));
        got.extend(s.ip);
        if !answered
            && s.arp
                .iter()
                .any(|a| a[20..22] == [0, 1] && a[38..42] == [10, 0, 0, 2])
        {
            let mut reply = Vec::new();
            reply.extend_from_slice(&mac);
            reply.extend_from_slice(&MAC_N0.0);
            reply.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
            reply.extend_from_slice(&MAC_N0.0);
            reply.extend_from_slice(&[10, 0, 0, 2]);
            reply.extend_from_slice(&mac);
            reply.extend_from_slice(&[10, 0, 0, 1]);
            reply.resize(60, 0);
            peer.send(&mut pool, &[reply]);
            answered = true;
        }
    }
    assert!(answered, "the server asked for the client's MAC");
    let mut seen = vec![false; N as usize];
    for f in &got {
        assert_eq!(&f[0..6], &MAC_N0.0, "to the client");
        assert_eq!(&f[6..12], &mac);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(checksum::checksum(&f[14..34]), 0, "IPv4 header checksum");
        assert_eq!(
            (&f[26..30], &f[30..34]),
            (&[10u8, 0, 0, 1][..], &[10u8, 0, 0, 2][..])
        );
        let sport = u16::from_be_bytes([f[34], f[35]]);
        let dport = u16::from_be_bytes([f[36], f[37]]);
        assert_eq!(sport, 7);
        let i = dport - 5000;
        let ulen = u16::from_be_bytes([f[38], f[39]]) as usize;
        assert_eq!(&f[42..34 + ulen], format!("echo {i}").as_bytes());
        // The UDP checksum over the pseudo-header verifies.
        let mut ph = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 17];
        ph.extend_from_slice(&(ulen as u16).to_be_bytes());
        ph.extend_from_slice(&f[34..34 + ulen]);
        assert_eq!(checksum::checksum(&ph), 0, "UDP checksum of echo {i}");
        seen[i as usize] = true;
    }
    assert!(seen.iter().all(|s| *s));
    let r = h.join().unwrap();
    assert_eq!((r.received, r.echoed, r.failed), (N as u64, N as u64, 0));
    let u = r.snmp.unwrap().udp;
    assert_eq!((u.in_datagrams, u.out_datagrams), (N as u64, N as u64));
}

#[test]
fn udp_echo_refuses_a_bad_address() {
    let o = udp_echo::Opts::parse_from(["udp_echo", "--port", "null", "--ip", "10.0.0.1"]);
    let e = o.plan().unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().starts_with("--ip:"), "{e}");
    let o = udp_echo::Opts::parse_from(["udp_echo"]);
    let e = o.plan().unwrap_err();
    assert!(e.to_string().starts_with("port.spec:"), "{e}");
}

/// Checks an echo to the client (addresses, checksums); its destination port.
fn assert_echo(f: &[u8], server_mac: &[u8]) -> u16 {
    assert_eq!(&f[0..6], &MAC_N0.0, "to the client");
    assert_eq!(&f[6..12], server_mac);
    assert_eq!(checksum::checksum(&f[14..34]), 0, "IPv4 header checksum");
    let ulen = u16::from_be_bytes([f[38], f[39]]) as usize;
    let mut ph = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 17];
    ph.extend_from_slice(&(ulen as u16).to_be_bytes());
    ph.extend_from_slice(&f[34..34 + ulen]);
    assert_eq!(checksum::checksum(&ph), 0, "UDP checksum of {f:02x?}");
    u16::from_be_bytes([f[36], f[37]])
}

/// The ARP reply from the client (10.0.0.2, MAC_N0) to the server.
fn arp_reply(server_mac: &[u8]) -> Vec<u8> {
    let mut reply = Vec::new();
    reply.extend_from_slice(server_mac);
    reply.extend_from_slice(&MAC_N0.0);
    reply.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    reply.extend_from_slice(&MAC_N0.0);
    reply.extend_from_slice(&[10, 0, 0, 2]);
    reply.extend_from_slice(server_mac);
    reply.extend_from_slice(&[10, 0, 0, 1]);
    reply.resize(60, 0);
    reply
}

/// Two lcores behind a two-queue ring port: the peer sends every request
/// on its TX queue 1 (the server's RX queue 1: lcore 1), and the ARP reply
/// there too. Lcore 1 hands the datagrams to the socket on lcore 0 (its
/// steering ring), its stack learns the client's MAC for both (the shared
/// control plane), and lcore 0 echoes all of them: each lcore's counters
/// nonzero, the steering balanced, every datagram answered once.
#[test]
fn udp_echo_on_two_lcores_steers_to_the_socket_and_shares_arp() {
    const N: u16 = 40;
    let mut pool = test_pool();
    let mut port = Registry::with_builtins().open("ring:ex-echo2").unwrap();
    port.configure(&PortConfig {
        nb_tx_queues: 2,
        nb_rx_queues: 2,
        ..PortConfig::default()
    })
    .unwrap();
    let mut tx0 = port.tx_queue(0).unwrap();
    let mut tx1 = port.tx_queue(1).unwrap();
    let mut rxs: Vec<Box<dyn RxQueue>> = (0..2).map(|q| port.rx_queue(q).unwrap()).collect();
    port.start().unwrap();
    let opts = udp_echo::Opts::parse_from([
        "udp_echo",
        "--config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/udp_echo.toml"),
        "--port",
        "ring:ex-echo2",
        "--lcores",
        "0-1",
        "--no-huge",
        "--count",
        "40",
        "--duration",
        "20",
    ]);
    let plan = opts.plan().unwrap();
    assert_eq!(plan.cores.len(), 2);
    let h = std::thread::spawn(move || {
        udp_echo::run(&plan, &Registry::with_builtins(), false).unwrap()
    });
    let mut send1 = |pool: &mut Mempool, f: &[u8]| {
        let mut m = pool.alloc().unwrap();
        m.extend_from_slice(f).unwrap();
        let mut b = Burst::new();
        b.push(m).unwrap();
        assert_eq!(tx1.tx_burst(&mut b), 1);
        tx1.clean(usize::MAX);
    };
    let mut recv = |pool: &mut Mempool| -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut b = Burst::new();
        for rx in rxs.iter_mut() {
            rx.rx_burst(pool, &mut b, 32);
            while let Some(m) = b.pop_front() {
                out.push(m.data().to_vec());
            }
        }
        out
    };
    let is_arp = |f: &[u8]| f[12..14] == [0x08, 0x06];
    let end = Instant::now() + Duration::from_secs(10);
    let mac: [u8; 6] = 'found: loop {
        for f in recv(&mut pool) {
            if is_arp(&f) && f[28..32] == [10, 0, 0, 1] {
                break 'found f[6..12].try_into().unwrap();
            }
        }
        assert!(Instant::now() < end, "no gratuitous ARP from the server");
        std::thread::sleep(Duration::from_millis(1));
    };
    // The first request to lcore 0 (which polls only once its socket is
    // bound: lcore 1 may start first and would answer port unreachable),
    // the ARP exchange it starts, its echo; then the rest to lcore 1 (a
    // neighbour being resolved holds a few packets only).
    let req = |i: u16| udp_request(mac, 6000 + i, format!("two {i}").as_bytes());
    {
        let mut m = pool.alloc().unwrap();
        m.extend_from_slice(&req(0)).unwrap();
        let mut b = Burst::new();
        b.push(m).unwrap();
        assert_eq!(tx0.tx_burst(&mut b), 1);
        tx0.clean(usize::MAX);
    }
    let mut got = Vec::new();
    let mut answered = false;
    let mut rest_sent = false;
    let end = Instant::now() + Duration::from_secs(10);
    while got.len() < N as usize {
        if Instant::now() >= end {
            let r = h.join().unwrap();
            panic!("{} of {N} echoes; server: {r}", got.len());
        }
        if !rest_sent && !got.is_empty() {
            for i in 1..N {
                send1(&mut pool, &req(i));
            }
            rest_sent = true;
        }
        for f in recv(&mut pool) {
            if !is_arp(&f) {
                got.push(f);
            } else if !answered && f[20..22] == [0, 1] && f[38..42] == [10, 0, 0, 2] {
                send1(&mut pool, &arp_reply(&mac));
                answered = true;
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut seen = vec![false; N as usize];
    for f in &got {
        let dport = assert_echo(f, &mac);
        let i = (dport - 6000) as usize;
        let ulen = u16::from_be_bytes([f[38], f[39]]) as usize;
        assert_eq!(&f[42..34 + ulen], format!("two {i}").as_bytes());
        assert!(!seen[i], "echo {i} twice");
        seen[i] = true;
    }
    let r = h.join().unwrap();
    assert_eq!((r.received, r.echoed, r.failed), (N as u64, N as u64, 0));
    assert_eq!(r.lcores.len(), 2);
    let (l0, l1) = (&r.lcores[0], &r.lcores[1]);
    assert!(!r.rss, "a ring: port has no RSS");
    // Lcore 1 received the ARP reply and requests 1.., steered the requests.
    assert_eq!(l1.steered_out, N as u64 - 1);
    assert_eq!(l1.rx_frames, N as u64, "{r}");
    assert_eq!((l0.steered_in, l0.echoed), (N as u64 - 1, N as u64), "{r}");
    assert_eq!(l0.steer_drops + l1.steer_drops, 0);
    assert!(r.steering_balanced());
    let u = r.snmp.unwrap().udp;
    assert_eq!((u.in_datagrams, u.out_datagrams), (N as u64, N as u64));
}

/// The example binary on its shipped config (a `null` port: nothing
/// arrives) runs and ends; a bad key or value is exit 2 naming it; a flag
/// overrides its key.
#[test]
fn udp_echo_binary_runs_its_config_and_names_bad_keys() {
    let (root, bin, so) = run_shipped_config("udp_echo");
    assert!(
        so.contains("udp_echo: received 0, echoed 0, not echoed 0"),
        "{so}"
    );
    assert!(so.contains("lcore 0 (core 0): rx frames 0"), "{so}");
    let shipped = std::fs::read_to_string(root.join("configs/udp_echo.toml")).unwrap();
    let dir = std::env::temp_dir().join(format!("ws-udp-echo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (from, to, key) in [
        (
            "listen = 7 ",
            "listen_port = 7 ",
            "unknown field `listen_port`",
        ),
        ("[echo]", "[echoo]", "unknown field `echoo`"),
        ("ring = 1024 ", "rings = 1024 ", "unknown field `rings`"),
        (
            r#"address = "10.0.0.1/24""#,
            r#"address = "10.0.0.1""#,
            "port.address:",
        ),
        (r#"lcores = "0""#, r#"lcores = "zero""#, "run.lcores:"),
        ("listen = 7 ", "listen = 0 ", "echo.listen:"),
        ("pool = 8192 ", "pool = 10 ", "run.pool:"),
    ] {
        let p = dir.join("bad.toml");
        refused_naming(&bin, &p, &shipped, (from, to), key);
    }
    // The flag wins over the bad key.
    let p = dir.join("bad.toml");
    std::fs::write(&p, shipped.replacen("listen = 7 ", "listen = 0 ", 1)).unwrap();
    let o = udp_echo::Opts::parse_from([
        "udp_echo",
        "--config",
        p.to_str().unwrap(),
        "--listen",
        "9",
        "--lcores",
        "1",
    ]);
    let plan = o.plan().unwrap();
    assert_eq!((plan.listen, plan.cores.cores()), (9, &[1usize][..]));
    assert_eq!(plan.spec, "null");
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------- l3fwd, two lcores

/// The igb model ports of the multi-lcore test, handed to the example's
/// registry by name (`igb-test:0`, `igb-test:1`): the test keeps the
/// models to inject into and capture from.
static MODEL_PORTS: std::sync::Mutex<Vec<Option<Box<dyn Port>>>> =
    std::sync::Mutex::new(Vec::new());

fn open_model_port(
    spec: &wirespeed::ethdev::DevSpec,
) -> Result<Box<dyn Port>, wirespeed::ethdev::EthdevError> {
    let i: usize = spec.arg.as_deref().unwrap_or("0").parse().unwrap();
    Ok(MODEL_PORTS.lock().unwrap()[i].take().expect("opened once"))
}

/// RX queue (of 2) the igb model's RSS picks for a UDP frame
/// `src:sport → dst:dport` (Toeplitz over the 4-tuple with the default key,
/// RETA entry i → queue i % 2).
fn rss_queue(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> usize {
    let mut t = src.to_vec();
    t.extend_from_slice(&dst);
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    let h = wirespeed::ethdev::rss::toeplitz_hash(&wirespeed::ethdev::rss::DEFAULT_RSS_KEY, &t);
    ((h & 0x7F) % 2) as usize
}

/// l3fwd on two lcores between two igb model ports with RSS: frames of
/// many flows injected into port 0 are spread by the model's Toeplitz hash
/// and RETA over two RX queues, each polled by its lcore, which forwards
/// them out of its own TX queue on port 1. Each lcore received exactly the
/// flows hashed to its queue (both nonzero), forwarded every one, and its
/// counters balance; port 1 sent every frame, each forwarded correctly.
#[test]
fn l3fwd_on_two_lcores_spreads_flows_by_rss_on_the_igb_model() {
    use pmd_igb::{model_port, ModelConfig, Sink};
    use wirespeed::eal::regs::RegisterSpace;
    const N: usize = 600;
    set_page_mode(PageMode::Small);
    let (p0, m0) = model_port(ModelConfig {
        speed_bps: 0,
        sink: Sink::Count,
        ..ModelConfig::default()
    })
    .unwrap();
    let (p1, m1) = model_port(ModelConfig {
        speed_bps: 0,
        sink: Sink::Capture,
        ..ModelConfig::default()
    })
    .unwrap();
    *MODEL_PORTS.lock().unwrap() = vec![Some(Box::new(p0)), Some(Box::new(p1))];
    let mut reg = Registry::with_builtins();
    reg.register(wirespeed::ethdev::DriverInfo {
        name: "igb-test",
        syntax: "igb-test:N",
        help: "the test's igb model ports",
        open: open_model_port,
    })
    .unwrap();
    let cfg = l3fwd_config("unused", "", true)
        .replace("lcore = 0\n", "lcores = \"0-1\"\n")
        .replace("ring:unused-0", "igb-test:0")
        .replace("ring:unused-1", "igb-test:1");
    let mut c = l3fwd::Config::parse("test", &cfg).unwrap();
    c.run.count = Some(N as u64);
    let plan = c.plan().unwrap();
    assert_eq!(plan.cores.len(), 2);
    let h = std::thread::spawn(move || l3fwd::run(&plan, &reg, false).unwrap());
    // Wait for the driver to enable RX on both queues (frames before that
    // are not received: the model counts them rx_not_ready).
    let end = Instant::now() + Duration::from_secs(20);
    while m0.read32(pmd_igb::regs::RCTL) & pmd_igb::regs::RCTL_EN == 0
        || (0..2).any(|q| m0.read32(pmd_igb::regs::rdt(q)) == 0)
    {
        assert!(Instant::now() < end, "port 0 RX never enabled");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let mut want = [0u64; 2];
    let mut sent = Vec::new();
    for i in 0..N {
        let src = [198, 18, 0, 1 + (i % 200) as u8];
        let dst = [198, 18, 1, 1 + (i % 7) as u8];
        let sport = 1000 + (i % 256) as u16;
        let mut f = Ip4::new(src, dst, 64).build();
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        want[rss_queue(src, dst, sport, 5000)] += 1;
        assert!(m0.inject(&f));
        sent.push(f);
        if i % 32 == 31 {
            // The model has put the batch into the RX rings (256 each): a
            // preempted lcore cannot make it miss frames.
            let k = m0
                .counters()
                .rx_frames
                .load(std::sync::atomic::Ordering::Relaxed);
            let end = Instant::now() + Duration::from_secs(10);
            while m0
                .counters()
                .rx_frames
                .load(std::sync::atomic::Ordering::Relaxed)
                < k.max(i as u64 + 1)
                && Instant::now() < end
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let r = h.join().unwrap();
    assert!(want[0] > 0 && want[1] > 0, "{want:?}");
    assert_eq!(r.rss, vec![true, true], "RSS on both igb ports");
    assert_eq!(r.lcores.len(), 2);
    for (q, (_, c)) in r.lcores.iter().enumerate() {
        assert_eq!(c.rx, want[q], "lcore {q} received its queue's flows\n{r}");
        assert_eq!(c.forwarded, c.rx, "lcore {q}\n{r}");
        assert!(c.balanced(), "lcore {q}");
    }
    assert_eq!((r.c.rx, r.c.forwarded), (N as u64, N as u64));
    assert_eq!(r.ports[1].tx, N as u64);
    assert!(r.c.balanced());
    // Port 1's wire: every frame, next hop's MACs, TTL − 1 (the flows of
    // the two lcores interleave: matched by content).
    let end = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < N && Instant::now() < end {
        got.extend(
            m1.take_captured()
                .into_iter()
                .filter(|f| f[12..14] == [0x08, 0x00]),
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(got.len(), N);
    let mut by_key: std::collections::HashMap<Vec<u8>, usize> = Default::default();
    for s in &sent {
        *by_key.entry(s[26..].to_vec()).or_default() += 1;
    }
    for g in &got {
        let mut key = g[26..].to_vec();
        key.truncate(sent[0].len() - 26);
        let n = by_key.get_mut(&key).expect("a frame that was sent");
        *n -= 1;
        assert_eq!(&g[0..6], &MAC_N1.0);
        assert_eq!(&g[6..12], &MAC_R1.0);
    }
    assert!(by_key.values().all(|&n| n == 0));
}

/// Waits until the igb model's driver enabled RX on queues 0 and 1.
fn wait_rx_enabled(m: &pmd_igb::IgbModel) {
    use wirespeed::eal::regs::RegisterSpace;
    let end = Instant::now() + Duration::from_secs(20);
    while m.read32(pmd_igb::regs::RCTL) & pmd_igb::regs::RCTL_EN == 0
        || (0..2).any(|q| m.read32(pmd_igb::regs::rdt(q)) == 0)
    {
        assert!(Instant::now() < end, "RX never enabled");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
}

/// udp_echo on two lcores behind an igb model port with RSS: requests of
/// many client ports are spread by the model's hash over two RX queues;
/// lcore 1 hands its share to the socket on lcore 0 (steering), which
/// resolves the client by ARP and echoes every one. Each lcore received
/// exactly its queue's flows (both nonzero), steering balanced, N echoes
/// on the wire.
#[test]
fn udp_echo_on_two_lcores_with_rss_on_the_igb_model() {
    use pmd_igb::{model_port, ModelConfig, Sink};
    const N: u16 = 300;
    set_page_mode(PageMode::Small);
    let (p0, m0) = model_port(ModelConfig {
        speed_bps: 0,
        sink: Sink::Capture,
        ..ModelConfig::default()
    })
    .unwrap();
    let mac = p0.mac().0;
    *MODEL_PORTS.lock().unwrap() = vec![Some(Box::new(p0))];
    let mut reg = Registry::with_builtins();
    reg.register(wirespeed::ethdev::DriverInfo {
        name: "igb-test",
        syntax: "igb-test:N",
        help: "the test's igb model ports",
        open: open_model_port,
    })
    .unwrap();
    let plan = udp_echo::Opts::parse_from([
        "udp_echo",
        "--port",
        "igb-test:0",
        "--lcores",
        "0-1",
        "--no-huge",
        "--count",
        &N.to_string(),
        "--duration",
        "20",
    ])
    .plan()
    .unwrap();
    let h = std::thread::spawn(move || udp_echo::run(&plan, &reg, false).unwrap());
    wait_rx_enabled(&m0);
    let mut want = [0u64; 2];
    // Request 0's port hashes to queue 0: lcore 0 polls only once its
    // socket is bound (lcore 1 may start first and answer port unreachable).
    let first = (0..100u16)
        .find(|&k| rss_queue([10, 0, 0, 2], [10, 0, 0, 1], 7000 + N + k, 7) == 0)
        .unwrap();
    let mut send = |i: u16| {
        let sport = if i == 0 { 7000 + N + first } else { 7000 + i };
        want[rss_queue([10, 0, 0, 2], [10, 0, 0, 1], sport, 7)] += 1;
        assert!(m0.inject(&udp_request(mac, sport, format!("rss {i}").as_bytes())));
    };
    // The first request makes the server ask for the client's MAC (from
    // lcore 0, whose socket answers): tell it (ARP is not hashed: queue
    // 0); then the rest (a neighbour being resolved queues a few only).
    send(0);
    let end = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut answered = false;
    // Then the rest, 20 at a time, each batch after the echoes of the last
    // (a burst larger than the socket's buffers would be dropped there:
    // RcvbufErrors, or EAGAIN while the NIC has not completed the echoes).
    let mut next = 1u16;
    while got.len() < N as usize {
        if got.len() == next as usize && next < N {
            let to = (next + 20).min(N);
            for i in next..to {
                send(i);
            }
            next = to;
        }
        if Instant::now() >= end {
            let r = h.join().unwrap();
            panic!(
                "{} of {N} echoes; server: {r}\nmodel: {:?}",
                got.len(),
                m0.counters()
            );
        }
        for f in m0.take_captured() {
            if f[12..14] == [0x08, 0x06] {
                if !answered && f[20..22] == [0, 1] && f[38..42] == [10, 0, 0, 2] {
                    assert!(m0.inject(&arp_reply(&mac)));
                    answered = true;
                }
            } else {
                got.push(f);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut seen = vec![false; N as usize];
    for f in &got {
        let p = assert_echo(f, &mac);
        let i = if p >= 7000 + N {
            0
        } else {
            (p - 7000) as usize
        };
        assert!(!seen[i], "echo {i} twice");
        seen[i] = true;
    }
    let r = h.join().unwrap();
    assert!(r.rss, "RSS on the igb model\n{r}");
    assert!(want[0] > 0 && want[1] > 0, "{want:?}");
    let (l0, l1) = (&r.lcores[0], &r.lcores[1]);
    // Lcore 0 also got the ARP reply (unhashed: queue 0).
    assert_eq!((l0.rx_frames, l1.rx_frames), (want[0] + 1, want[1]), "{r}");
    assert_eq!((l1.steered_out, l0.steered_in), (want[1], want[1]), "{r}");
    assert_eq!((r.received, r.echoed, r.failed), (N as u64, N as u64, 0));
    assert!(r.steering_balanced());
}
