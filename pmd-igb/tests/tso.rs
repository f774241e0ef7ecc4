//! igb TSO against the model: a TCP super-segment handed to the driver
//! (context descriptor with MSS and L4LEN, data descriptors with TSE and
//! PAYLEN) comes out of the model's segmentation as exactly the frames the
//! engine's software GSO (`tcp4_gso_segment`, the netdev layer's fallback)
//! makes of the same super-segment — compared byte for byte.

use pmd_igb::model::net;
use pmd_igb::{model_port, ModelConfig, Sink, TX_OFFLOAD_CAPA};
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::time::Duration;
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::ethdev::offload::{frame_slices, segment_tcp4, GsoRequest, GSO_MAX_CHAIN};
use wirespeed::ethdev::{MacAddr, Port, PortConfig, TxQueue};
use wirespeed::mbuf::{ol, Burst, Mbuf, Mempool, PoolConfig};
use wirespeed::stack::{DirectXmit, PortConf, Stack, StackConfig};

const MSS: usize = 1448;
/// TCP header with a 12-byte timestamp option (L4LEN 32).
const THL: usize = 32;

fn pool(name: &str) -> Mempool {
    set_page_mode(PageMode::Small);
    Mempool::new(&PoolConfig {
        name: name.into(),
        size: 256,
        headroom: 128,
        data_room: 2048,
    })
    .unwrap()
}

/// A `len`-byte Ethernet + IPv4 + TCP super-segment as the stack builds
/// one for TSO: IP ID 0x1234, the IPv4 checksum complete, the TCP
/// checksum field seeded with the pseudo-header sum without the length
/// (DPDK's `RTE_MBUF_F_TX_TCP_SEG` convention), PSH|FIN|ACK set.
fn super_segment(len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = 14;
    f[ip] = 0x45;
    f[ip + 2..ip + 4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    f[ip + 4..ip + 6].copy_from_slice(&0x1234u16.to_be_bytes());
    f[ip + 6] = 0x40; // DF
    f[ip + 8] = 64;
    f[ip + 9] = 6;
    f[ip + 12..ip + 16].copy_from_slice(&[10, 0, 0, 1]);
    f[ip + 16..ip + 20].copy_from_slice(&[10, 0, 0, 2]);
    net::insert_ipv4_csum(&mut f, 14, 20);
    let th = 34;
    f[th..th + 2].copy_from_slice(&40000u16.to_be_bytes());
    f[th + 2..th + 4].copy_from_slice(&5001u16.to_be_bytes());
    f[th + 4..th + 8].copy_from_slice(&0xfffff000u32.to_be_bytes()); // wraps
    f[th + 8..th + 12].copy_from_slice(&77u32.to_be_bytes());
    f[th + 12] = ((THL / 4) as u8) << 4;
    f[th + 13] = 0x19; // ACK | PSH | FIN
    f[th + 14..th + 16].copy_from_slice(&512u16.to_be_bytes());
    f[th + 20..th + 32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 3]);
    for (i, b) in f[th + THL..].iter_mut().enumerate() {
        *b = (i * 13 + 5) as u8;
    }
    let seed = net::fold(net::sum16(&f[26..34], 6));
    f[th + 16..th + 18].copy_from_slice(&seed.to_be_bytes());
    f
}

/// `f` as a chain of 1500-byte buffers, with the TSO request.
fn tso_mbuf(pool: &mut Mempool, f: &[u8]) -> Mbuf {
    let mut chunks = f.chunks(1500);
    let mut head = pool.alloc().unwrap();
    head.extend_from_slice(chunks.next().unwrap()).unwrap();
    for c in chunks {
        let mut m = pool.alloc().unwrap();
        m.extend_from_slice(c).unwrap();
        head.chain(m);
    }
    head.set_ol_flags(ol::TX_TSO | ol::TX_TCP_CKSUM | ol::TX_IPV4);
    head.set_tx_lens(14, 20, THL as u8);
    head.set_tso_segsz(MSS as u16);
    head
}

/// What the engine's software GSO makes of `m` (full checksums).
fn software_segments(m: &Mbuf, pool: &mut Mempool) -> Vec<Vec<u8>> {
    let mut parts = [&[][..]; GSO_MAX_CHAIN];
    let frame = frame_slices(m, &mut parts).unwrap();
    let mut out = Burst::new();
    let req = GsoRequest {
        mss: MSS as u16,
        tx_csum: false,
        rx_csum_good: false,
    };
    segment_tcp4(frame, req, &mut || pool.alloc(), &mut out).unwrap();
    out.iter()
        .map(|s| s.segments().flat_map(|x| x.data.iter().copied()).collect())
        .collect()
}

#[test]
fn model_tso_20000_byte_super_segment_matches_software_gso_byte_for_byte() {
    assert_ne!(TX_OFFLOAD_CAPA & ol::TX_TSO, 0, "igb offers TSO");
    // A stack registers the TCP segmenter (`inet_add_offload`).
    let _stack = Stack::new(
        StackConfig {
            ports: vec![PortConf::new(MacAddr::ZERO, Ipv4Addr::new(10, 0, 0, 1), 24)],
            ..Default::default()
        },
        pool("tso-stack"),
        Box::new(DirectXmit::new(Vec::new())),
    )
    .unwrap();
    let (mut p, m) = model_port(ModelConfig {
        sink: Sink::Capture,
        ..ModelConfig::default()
    })
    .unwrap();
    p.configure(&PortConfig {
        tx_ring_size: 64,
        nb_rx_queues: 0,
        tx_offloads: ol::TX_TSO | ol::TX_TCP_CKSUM,
        ..PortConfig::default()
    })
    .unwrap();
    let mut q = p.igb_tx_queue(0).unwrap();
    p.start().unwrap();
    // The netdev layer leaves super-segments to the queue (`netif_needs_gso` false).
    assert_eq!(
        q.tx_offloads() & (ol::TX_TSO | ol::TX_TCP_CKSUM),
        ol::TX_TSO | ol::TX_TCP_CKSUM
    );
    let mut pl = pool("tso-frames");
    let f = super_segment(20000);
    let sup = tso_mbuf(&mut pl, &f);
    let want = software_segments(&sup, &mut pl);
    let payload = 20000 - 14 - 20 - THL;
    assert_eq!(want.len(), payload.div_ceil(MSS));
    let mut b = Burst::new();
    b.push(sup).unwrap();
    assert_eq!(q.tx_burst(&mut b), 1);
    assert!(m.wait_idle(Duration::from_secs(5)), "model did not drain");
    let mut done = (0u64, 0u64);
    for _ in 0..1000 {
        let c = q.clean(usize::MAX);
        done.0 += u64::from(c.packets);
        done.1 += c.bytes;
        if q.free_slots() == q.ring_size() - 1 {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let got = m.take_captured();
    assert_eq!(got.len(), want.len(), "segments on the wire");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "segment {i} differs from software GSO's");
        // Each is a valid frame on its own: checksums the RX engine accepts.
        let (v4, ip_ok, l4) = net::verify(g);
        assert!(
            v4 && ip_ok && l4 == Some((false, true)),
            "segment {i} checksums"
        );
    }
    // FIN and PSH on the last segment only.
    assert!(got[..got.len() - 1].iter().all(|s| s[47] == 0x10));
    assert_eq!(got.last().unwrap()[47], 0x19);
    // One packet completed, with the bytes of all its wire frames.
    let wire: u64 = got.iter().map(|s| s.len() as u64).sum();
    assert_eq!(done, (1, wire));
    let c = m.counters();
    assert_eq!(c.tso_segments.load(Ordering::Relaxed), want.len() as u64);
    assert_eq!(c.paylen_mismatch.load(Ordering::Relaxed), 0);
    assert_eq!(c.tso_bad.load(Ordering::Relaxed), 0);
    assert_eq!(c.ctx_descs.load(Ordering::Relaxed), 1);
    // The statistics registers: GPTC per segment on the wire, TSCTC once
    // for the TSE packet (82576 datasheet 8.19; `igb_update_stats`).
    let x: std::collections::HashMap<String, u64> = p.xstats().into_iter().collect();
    assert_eq!(x["hw_tx_good_packets"], want.len() as u64);
    assert_eq!(x["hw_tx_tso_contexts"], 1);
    assert_eq!(x["hw_tx_tso_context_failures"], 0);
}

#[test]
fn model_tso_with_a_wrong_seed_gives_bad_checksums() {
    // The model sums the field as the part does: a seed that already
    // holds the length (the non-TSO convention) makes every segment's
    // TCP checksum wrong — the device does not repair it.
    let (mut p, m) = model_port(ModelConfig {
        sink: Sink::Capture,
        ..ModelConfig::default()
    })
    .unwrap();
    p.configure(&PortConfig {
        tx_ring_size: 64,
        nb_rx_queues: 0,
        tx_offloads: ol::TX_TSO | ol::TX_TCP_CKSUM,
        ..PortConfig::default()
    })
    .unwrap();
    let mut q = p.igb_tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pl = pool("tso-bad");
    let mut f = super_segment(6000);
    let seed = net::fold(net::sum16(&f[26..34], 6 + (6000 - 34) as u32));
    f[50..52].copy_from_slice(&seed.to_be_bytes());
    let mut b = Burst::new();
    b.push(tso_mbuf(&mut pl, &f)).unwrap();
    assert_eq!(q.tx_burst(&mut b), 1);
    assert!(m.wait_idle(Duration::from_secs(5)));
    let got = m.take_captured();
    assert_eq!(got.len(), (6000 - 66usize).div_ceil(MSS));
    for g in &got {
        let (_, ip_ok, l4) = net::verify(g);
        assert!(ip_ok, "the IPv4 checksum is the device's own");
        assert_eq!(l4, Some((false, false)), "a wrong seed, a wrong sum");
    }
}

#[test]
fn model_tso_context_with_a_short_tcp_header_is_counted_in_tsctfc_and_not_sent() {
    // A TSE packet whose context gives an L4LEN under the 20-byte TCP
    // header: the part cannot segment it; TSCTFC counts it, TSCTC does not.
    let (mut p, m) = model_port(ModelConfig {
        sink: Sink::Capture,
        ..ModelConfig::default()
    })
    .unwrap();
    p.configure(&PortConfig {
        tx_ring_size: 64,
        nb_rx_queues: 0,
        tx_offloads: ol::TX_TSO | ol::TX_TCP_CKSUM,
        ..PortConfig::default()
    })
    .unwrap();
    let mut q = p.igb_tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pl = pool("tso-short-l4");
    let mut sup = tso_mbuf(&mut pl, &super_segment(6000));
    sup.set_tx_lens(14, 20, 8);
    let mut b = Burst::new();
    b.push(sup).unwrap();
    assert_eq!(q.tx_burst(&mut b), 1);
    assert!(m.wait_idle(Duration::from_secs(5)));
    assert!(m.take_captured().is_empty(), "nothing on the wire");
    assert_eq!(m.counters().tso_bad.load(Ordering::Relaxed), 1);
    let x: std::collections::HashMap<String, u64> = p.xstats().into_iter().collect();
    assert_eq!(x["hw_tx_tso_context_failures"], 1);
    assert_eq!(x["hw_tx_tso_contexts"], 0);
    assert_eq!(x["hw_tx_good_packets"], 0);
}
