//! Receive-side scaling on the igb model: the driver programs MRQC, RSSRK
//! and RETA as `igb_setup_mrqc` does; the model hashes each frame with the
//! programmed key, delivers it to the queue the RETA names and writes the
//! hash and RSS type back; the driver hands the hash up on the mbuf.
//! Every expectation is computed independently with the bit-by-bit
//! Toeplitz reference (`toeplitz_hash`) from the frame's own fields.

use pmd_igb::regs::*;
use pmd_igb::{model_port, IgbModel, IgbPort, IgbRxQueue, ModelConfig, Sink};
use std::sync::Arc;
use std::time::Duration;
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::eal::RegisterSpace;
use wirespeed::ethdev::rss::{toeplitz_hash, DEFAULT_RSS_KEY};
use wirespeed::ethdev::{Port, PortConfig, RssConf, RssHashTypes, RxQueue};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};

const MODEL_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const SRC_IP: [u8; 4] = [198, 18, 0, 1];
const DST_IP: [u8; 4] = [198, 18, 0, 2];

fn pool(n: u32) -> Mempool {
    set_page_mode(PageMode::Small);
    Mempool::new(&PoolConfig {
        name: "igb-rss".into(),
        size: n,
        headroom: 128,
        data_room: 2048,
    })
    .unwrap()
}

/// Ethernet + IPv4 + UDP/TCP (proto 17/6) or another protocol, 64 bytes.
fn frame(proto: u8, sport: u16, dport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&MODEL_MAC);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 9]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&50u16.to_be_bytes());
    f[22] = 64;
    f[23] = proto;
    f[26..30].copy_from_slice(&SRC_IP);
    f[30..34].copy_from_slice(&DST_IP);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        f[46] = 0x50;
    }
    f
}

/// The hash input as the Microsoft spec lays it out: src, dst (, sport, dport).
fn tuple(ports: Option<(u16, u16)>) -> Vec<u8> {
    let mut v = [SRC_IP, DST_IP].concat();
    if let Some((s, d)) = ports {
        v.extend_from_slice(&s.to_be_bytes());
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

fn rss_port(
    nq: u16,
    rss: Option<RssConf>,
) -> (IgbPort<IgbModel>, Arc<IgbModel>, Vec<IgbRxQueue<IgbModel>>) {
    let (mut p, m) = model_port(ModelConfig {
        sink: Sink::Count,
        speed_bps: 0,
        ..ModelConfig::default()
    })
    .unwrap();
    p.configure(&PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: nq,
        rx_ring_size: 256,
        rss,
        ..PortConfig::default()
    })
    .unwrap();
    let qs = (0..nq).map(|q| p.igb_rx_queue(q).unwrap()).collect();
    p.start().unwrap();
    (p, m, qs)
}

/// Polls every queue until `want` packets arrived; returns (queue, hash
/// flag, hash, sport) of each.
fn collect(
    qs: &mut [IgbRxQueue<IgbModel>],
    pool: &mut Mempool,
    want: usize,
) -> Vec<(u16, Option<u32>, u16)> {
    let mut got = Vec::new();
    let mut out = Burst::new();
    for _ in 0..5000 {
        for q in qs.iter_mut() {
            q.rx_burst(pool, &mut out, 64);
            while let Some(m) = out.pop_front() {
                let (_, queue) = m.rx_port_queue();
                assert_eq!(queue, q.index());
                let d = m.data();
                got.push((queue, m.rss_hash(), u16::from_be_bytes([d[34], d[35]])));
            }
        }
        if got.len() >= want {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    got
}

fn arm(qs: &mut [IgbRxQueue<IgbModel>], pool: &mut Mempool) {
    let mut out = Burst::new();
    for q in qs.iter_mut() {
        assert_eq!(q.rx_burst(pool, &mut out, 0), 0);
    }
}

#[test]
fn the_driver_programs_mrqc_rssrk_and_reta_as_igb_setup_mrqc() {
    let conf = RssConf::spread(4, 128);
    let (p, _m, _qs) = rss_port(4, Some(conf));
    let hw = p.hw();
    assert_eq!(
        hw.regs.read32(MRQC),
        MRQC_ENABLE_RSS_MQ
            | MRQC_RSS_FIELD_IPV4
            | MRQC_RSS_FIELD_IPV4_TCP
            | MRQC_RSS_FIELD_IPV4_UDP
    );
    // Key byte 4i+j in bits 8j+7:8j of RSSRK i: 6d 5a 56 da → 0xda565a6d.
    assert_eq!(hw.regs.read32(RSSRK), 0xda56_5a6d);
    assert_eq!(hw.regs.read32(RSSRK + 36), 0xfa01_acbe);
    // RETA entry 4i+j in byte j of RETA i: 0,1,2,3 → 0x03020100.
    assert_eq!(hw.regs.read32(RETA), 0x0302_0100);
    assert_eq!(hw.regs.read32(RETA + 124), 0x0302_0100);
    assert_ne!(hw.regs.read32(RXCSUM) & RXCSUM_PCSD, 0);
}

#[test]
fn the_model_delivers_each_flow_to_the_queue_the_reta_names_with_its_toeplitz_hash() {
    // A RETA that is no simple round-robin, so a wrong index would show.
    let reta: Vec<u16> = (0..128u16).map(|i| (i * 5 + i / 16) % 4).collect();
    let conf = RssConf {
        reta: reta.clone(),
        ..RssConf::spread(4, 128)
    };
    let (_p, m, mut qs) = rss_port(4, Some(conf));
    let mut pool = pool(2048);
    arm(&mut qs, &mut pool);
    let n = 200u16;
    let mut want = std::collections::HashMap::new();
    for i in 0..n {
        let (proto, sport) = (if i % 2 == 0 { 17 } else { 6 }, 1000 + i);
        assert!(m.inject(&frame(proto, sport, 9)));
        let h = toeplitz_hash(&DEFAULT_RSS_KEY, &tuple(Some((sport, 9))));
        want.insert(sport, (reta[(h & 0x7F) as usize], h));
    }
    let got = collect(&mut qs, &mut pool, n as usize);
    assert_eq!(got.len(), n as usize);
    let mut per_queue = [0usize; 4];
    for (q, hash, sport) in got {
        let (wq, wh) = want[&sport];
        assert_eq!(q, wq, "sport {sport}: queue");
        assert_eq!(hash, Some(wh), "sport {sport}: write-back hash");
        per_queue[q as usize] += 1;
    }
    assert!(per_queue.iter().all(|&c| c > 20), "{per_queue:?}");
    for (q, c) in per_queue.iter().enumerate() {
        assert_eq!(qs[q].stats().packets.get(), *c as u64);
    }
}

#[test]
fn selected_types_decide_the_tuple_and_unhashed_frames_go_to_queue_0() {
    // IPv4 only: TCP and UDP are hashed on the addresses (one queue for
    // all of them); a non-IP frame and ICMP go unhashed to queue 0.
    let key: [u8; 40] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5A);
    let reta: Vec<u16> = (0..128).map(|i| 1 + (i % 3)).collect();
    let conf = RssConf {
        key,
        reta: reta.clone(),
        hash_types: RssHashTypes::IPV4,
    };
    let (p, m, mut qs) = rss_port(4, Some(conf));
    assert_eq!(
        p.hw().regs.read32(MRQC),
        MRQC_ENABLE_RSS_MQ | MRQC_RSS_FIELD_IPV4
    );
    let mut pool = pool(1024);
    arm(&mut qs, &mut pool);
    for i in 0..10 {
        assert!(m.inject(&frame(6, 2000 + i, 80)));
    }
    let mut arp = frame(0, 0, 0);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert!(m.inject(&arp));
    // ICMP echo request: type 8 code 0 where the ports would be.
    let icmp = frame(1, 0x0800, 0);
    let h2 = toeplitz_hash(&key, &tuple(None));
    let q2 = reta[(h2 & 0x7F) as usize];
    let got = collect(&mut qs, &mut pool, 11);
    assert_eq!(got.len(), 11);
    for (q, hash, sport) in &got {
        if (2000..2010).contains(sport) {
            assert_eq!((*q, *hash), (q2, Some(h2)), "2-tuple for TCP");
        } else {
            assert_eq!((*q, *hash), (0, None), "ARP: queue 0, no hash");
        }
    }
    // ICMP is IPv4: hashed on the addresses too.
    assert!(m.inject(&icmp));
    let got = collect(&mut qs, &mut pool, 1);
    assert_eq!(got, vec![(q2, Some(h2), 0x0800)]);
}

#[test]
fn without_rss_every_frame_lands_in_queue_0_unhashed() {
    let (p, m, mut qs) = rss_port(2, None);
    assert_eq!(p.hw().regs.read32(MRQC) & MRQC_ENABLE_MASK, 0);
    let mut pool = pool(1024);
    arm(&mut qs, &mut pool);
    for i in 0..20 {
        assert!(m.inject(&frame(17, 3000 + i, 9)));
    }
    let got = collect(&mut qs, &mut pool, 20);
    assert_eq!(got.len(), 20);
    assert!(
        got.iter().all(|(q, h, _)| *q == 0 && h.is_none()),
        "{got:?}"
    );
}

#[test]
fn bad_reta_and_hash_types_are_refused_at_configure_naming_the_key() {
    let (mut p, _m) = model_port(ModelConfig::default()).unwrap();
    let mut c = PortConfig {
        nb_rx_queues: 2,
        rss: Some(RssConf {
            reta: vec![0; 64],
            ..RssConf::spread(2, 128)
        }),
        ..PortConfig::default()
    };
    let e = p.configure(&c).unwrap_err().to_string();
    assert!(e.contains("rss.reta") && e.contains("exactly 128"), "{e}");
    let mut far = RssConf::spread(2, 128);
    far.reta[100] = 2;
    c.rss = Some(far);
    let e = p.configure(&c).unwrap_err().to_string();
    assert!(e.contains("rss.reta[100]") && e.contains("queue 2"), "{e}");
    c.rss = Some(RssConf {
        hash_types: RssHashTypes::NONE,
        ..RssConf::spread(2, 128)
    });
    let e = p.configure(&c).unwrap_err().to_string();
    assert!(e.contains("rss.hash_types"), "{e}");
    // A software port has no RSS at all.
    let mut r = wirespeed::ethdev::Registry::with_builtins()
        .open("null")
        .unwrap();
    c.rss = Some(RssConf::spread(2, 128));
    let e = r.configure(&c).unwrap_err().to_string();
    assert!(
        e.contains("rss:") && e.contains("no receive-side scaling"),
        "{e}"
    );
}

#[test]
fn a_reta_update_on_a_running_port_moves_the_flows() {
    let (mut p, m, mut qs) = rss_port(2, Some(RssConf::spread(2, 128)));
    let mut pool = pool(1024);
    arm(&mut qs, &mut pool);
    // Everything to queue 1 now (rte_eth_dev_rss_reta_update).
    p.update_rss(RssConf {
        reta: vec![1; 128],
        ..RssConf::spread(2, 128)
    })
    .unwrap();
    assert_eq!(p.hw().regs.read32(RETA + 64), 0x0101_0101);
    assert_eq!(p.config().unwrap().rss.as_ref().unwrap().reta[5], 1);
    for i in 0..16 {
        assert!(m.inject(&frame(17, 4000 + i, 9)));
    }
    let got = collect(&mut qs, &mut pool, 16);
    assert_eq!(got.len(), 16);
    assert!(
        got.iter().all(|(q, h, _)| *q == 1 && h.is_some()),
        "{got:?}"
    );
    // An update that names a queue the port does not have is refused and
    // changes nothing.
    let e = p
        .update_rss(RssConf {
            reta: vec![2; 128],
            ..RssConf::spread(2, 128)
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("rss.reta[0]"), "{e}");
    assert_eq!(p.hw().regs.read32(RETA), 0x0101_0101);
}
