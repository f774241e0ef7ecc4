//! Receive-side scaling on the E810 model: the driver programs the key and
//! the PF LUT through set_rss_key / set_rss_lut and the VSI's queueing
//! options through update_vsi (as Linux `ice_vsi_cfg_rss_lut_key` and
//! `ice_set_rss_vsi_ctx`); the model's firmware checks those commands, its
//! DMA engine hashes each received frame with the programmed key, delivers
//! it to the queue the LUT names and writes the hash into the flex
//! descriptor; the driver hands it up on the mbuf. Every expectation is
//! computed independently with the bit-by-bit Toeplitz reference
//! (`toeplitz_hash`) from the frame's own fields.

mod common;

use common::*;
use pmd_ice::adminq::{AqDesc, AqError, AqRc};
use pmd_ice::hw::IceError;
use pmd_ice::regs::{self, opc};
use pmd_ice::rx::IceRxQueue;
use pmd_ice::{IceModel, IcePort, Sink, Speed};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use wirespeed::ethdev::rss::{toeplitz_hash, DEFAULT_RSS_KEY};
use wirespeed::ethdev::{Port, PortConfig, RssConf, RssHashTypes, RxQueue};
use wirespeed::mbuf::{Burst, Mempool};

const LUT: u16 = 2048;
const SRC_IP: [u8; 4] = [198, 18, 0, 1];
const DST_IP: [u8; 4] = [198, 18, 0, 2];

/// Ethernet + IPv4 + a 20-byte L4 area, 64 bytes: protocol `proto`, source
/// and destination port in the first four L4 bytes, IPv4 flags/fragment
/// field `frag`.
fn ip_frame(proto: u8, sport: u16, dport: u16, frag: u16) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&pmd_ice::ModelConfig::default().mac.0);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 9]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&50u16.to_be_bytes());
    f[20..22].copy_from_slice(&frag.to_be_bytes());
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

type Queues = Vec<IceRxQueue<IceModel>>;

fn rss_port(nq: u16, rss: Option<RssConf>) -> (IcePort<IceModel>, Arc<IceModel>, Queues) {
    let m = model(Sink::Count, false, Speed::G100);
    let mut p = probe(&m);
    p.configure(&PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: nq,
        rx_ring_size: 256,
        rss,
        ..PortConfig::default()
    })
    .unwrap();
    let qs = (0..nq).map(|q| p.ice_rx_queue(q).unwrap()).collect();
    p.start().unwrap();
    (p, m, qs)
}

/// Fills every ring and enables the queues (the first `rx_burst`).
fn arm(qs: &mut Queues, pool: &mut Mempool) {
    let mut out = Burst::new();
    for q in qs.iter_mut() {
        assert_eq!(q.rx_burst(pool, &mut out, 0), 0);
    }
    for q in 0..qs.len() as u16 {
        assert!(qs[q as usize].index() == q);
    }
}

/// Polls every queue until `want` frames arrived (bounded); returns
/// (queue, the mbuf's RSS hash, the frame's first four L4 bytes as
/// source port, ethertype) of each.
fn collect(
    qs: &mut [IceRxQueue<IceModel>],
    pool: &mut Mempool,
    want: usize,
) -> Vec<(u16, Option<u32>, u16)> {
    let mut got = Vec::new();
    let mut out = Burst::new();
    for _ in 0..10_000 {
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

#[test]
fn the_driver_programs_key_lut_and_vsi_options_as_ice_vsi_cfg_rss_lut_key() {
    let (p, m, _qs) = rss_port(4, Some(RssConf::spread(4, LUT)));
    let info = p.info();
    assert_eq!(info.reta_size, LUT, "ICE_AQC_CAPS_RSS table size");
    assert_eq!(info.rss_hash_types, RssHashTypes::ALL);
    // The 52-byte ice_aqc_get_set_rss_keys: the standard key, then the
    // extended hash key (zero).
    let key = m.rss_key().expect("set_rss_key reached the firmware");
    assert_eq!(key.len(), regs::RSS_KEYS_BUF_SIZE);
    assert_eq!(key[..40], DEFAULT_RSS_KEY);
    assert!(key[40..].iter().all(|&b| b == 0));
    // The PF LUT (q_opt_rss = LUT_PF | TPLZ selects it), one byte per entry.
    assert_eq!(m.vsi_q_opt_rss(), Some(regs::VSI_Q_OPT_RSS_LUT_PF));
    let lut = m.rss_lut().expect("set_rss_lut reached the firmware");
    assert_eq!(lut.len(), LUT as usize);
    assert!(lut.iter().enumerate().all(|(i, &q)| q as usize == i % 4));
    assert_eq!(p.config().unwrap().rss, Some(RssConf::spread(4, LUT)));
}

#[test]
fn frames_of_many_flows_land_where_the_lut_names_with_the_reference_hash() {
    // A LUT that is no round-robin, so a wrong index would show; a key
    // that is not the default.
    let lut: Vec<u16> = (0..LUT).map(|i| (i * 7 + i / 64) % 4).collect();
    let key: [u8; 40] = std::array::from_fn(|i| (i as u8).wrapping_mul(29) ^ 0xA5);
    let conf = RssConf {
        key,
        reta: lut.clone(),
        hash_types: RssHashTypes::ALL,
    };
    let (_p, m, mut qs) = rss_port(4, Some(conf));
    let mut pool = pool(4096);
    arm(&mut qs, &mut pool);
    let n = 400u16;
    let mut want = HashMap::new();
    for i in 0..n {
        let (proto, sport) = (if i % 2 == 0 { 17 } else { 6 }, 1000 + i);
        assert!(m.inject(&ip_frame(proto, sport, 4791, 0)));
        let h = toeplitz_hash(&key, &tuple(Some((sport, 4791))));
        want.insert(sport, (lut[(h & (LUT as u32 - 1)) as usize], h));
    }
    let got = collect(&mut qs, &mut pool, n as usize);
    assert_eq!(got.len(), n as usize, "{:?}", m.stats());
    let mut per_queue = [0u64; 4];
    for (q, hash, sport) in got {
        let (wq, wh) = want[&sport];
        assert_eq!(q, wq, "sport {sport}: queue");
        assert_eq!(hash, Some(wh), "sport {sport}: the hash in the mbuf");
        per_queue[q as usize] += 1;
    }
    assert!(per_queue.iter().all(|&c| c > 50), "{per_queue:?}");
    for (q, c) in per_queue.iter().enumerate() {
        assert_eq!(qs[q].stats().packets.get(), *c);
    }
    assert_eq!(m.stats().rx_frames, n as u64);
    assert_eq!(m.stats().rx_no_desc, 0);
}

#[test]
fn tcp_and_udp_hash_on_ports_other_ipv4_on_addresses_non_ip_unhashed_to_queue_0() {
    let lut: Vec<u16> = (0..LUT).map(|i| 1 + i % 3).collect();
    let (_p, m, mut qs) = rss_port(
        4,
        Some(RssConf {
            reta: lut.clone(),
            ..RssConf::spread(4, LUT)
        }),
    );
    let mut pool = pool(4096);
    arm(&mut qs, &mut pool);
    let k = &DEFAULT_RSS_KEY;
    let q_of = |h: u32| lut[(h & (LUT as u32 - 1)) as usize];
    // (frame, the hash the reference gives, a tag in the source-port bytes)
    let tcp = ip_frame(6, 5001, 80, 0);
    let h_tcp = toeplitz_hash(k, &tuple(Some((5001, 80))));
    let udp = ip_frame(17, 5002, 53, 0);
    let h_udp = toeplitz_hash(k, &tuple(Some((5002, 53))));
    // ICMP echo (type 8) and a UDP fragment (MF set): addresses only.
    let icmp = ip_frame(1, 0x0800, 0, 0);
    let frag = ip_frame(17, 5003, 53, 0x2000);
    let h_ip = toeplitz_hash(k, &tuple(None));
    let mut arp = ip_frame(0, 5004, 0, 0);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    for f in [&tcp, &udp, &icmp, &frag, &arp] {
        assert!(m.inject(f));
    }
    let got = collect(&mut qs, &mut pool, 5);
    assert_eq!(got.len(), 5);
    let by_tag: HashMap<u16, (u16, Option<u32>)> =
        got.into_iter().map(|(q, h, tag)| (tag, (q, h))).collect();
    assert_eq!(by_tag[&5001], (q_of(h_tcp), Some(h_tcp)), "TCP: 4-tuple");
    assert_eq!(by_tag[&5002], (q_of(h_udp), Some(h_udp)), "UDP: 4-tuple");
    assert_ne!(h_tcp, h_udp);
    assert_eq!(by_tag[&0x0800], (q_of(h_ip), Some(h_ip)), "ICMP: 2-tuple");
    assert_eq!(by_tag[&5003], (q_of(h_ip), Some(h_ip)), "fragment: 2-tuple");
    assert_eq!(by_tag[&5004], (0, None), "ARP: queue 0, no hash");
}

#[test]
fn a_lut_update_on_a_running_port_moves_the_flows() {
    let (mut p, m, mut qs) = rss_port(2, Some(RssConf::spread(2, LUT)));
    let mut pool = pool(4096);
    arm(&mut qs, &mut pool);
    for i in 0..32 {
        assert!(m.inject(&ip_frame(17, 4000 + i, 9, 0)));
    }
    let got = collect(&mut qs, &mut pool, 32);
    assert_eq!(got.len(), 32);
    assert!(got.iter().any(|(q, _, _)| *q == 0) && got.iter().any(|(q, _, _)| *q == 1));
    // Everything to queue 1 now (rte_eth_dev_rss_reta_update).
    p.update_rss(RssConf {
        reta: vec![1; LUT as usize],
        ..RssConf::spread(2, LUT)
    })
    .unwrap();
    assert!(m.rss_lut().unwrap().iter().all(|&q| q == 1));
    assert_eq!(p.config().unwrap().rss.as_ref().unwrap().reta[5], 1);
    for i in 0..32 {
        assert!(m.inject(&ip_frame(17, 4000 + i, 9, 0)));
    }
    let got = collect(&mut qs, &mut pool, 32);
    assert_eq!(got.len(), 32);
    for (q, h, sport) in &got {
        let wh = toeplitz_hash(&DEFAULT_RSS_KEY, &tuple(Some((*sport, 9))));
        assert_eq!((*q, *h), (1, Some(wh)), "sport {sport}");
    }
    // An update naming a queue the port does not have is refused and
    // changes nothing.
    let e = p
        .update_rss(RssConf {
            reta: vec![2; LUT as usize],
            ..RssConf::spread(2, LUT)
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("rss.reta[0]"), "{e}");
    assert!(m.rss_lut().unwrap().iter().all(|&q| q == 1));
}

#[test]
fn a_frame_steered_to_a_queue_not_yet_armed_is_discarded_and_counted() {
    // Every LUT entry names queue 1; only queue 0 is armed.
    let conf = RssConf {
        reta: vec![1; LUT as usize],
        ..RssConf::spread(2, LUT)
    };
    let (p, m, mut qs) = rss_port(2, Some(conf));
    let mut pool = pool(4096);
    let mut out = Burst::new();
    assert_eq!(qs[0].rx_burst(&mut pool, &mut out, 0), 0);
    for i in 0..3 {
        assert!(m.inject(&ip_frame(17, 7000 + i, 9, 0)));
    }
    // An ARP (not hashed) goes to queue 0 and is received.
    let mut arp = ip_frame(0, 7100, 0, 0);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert!(m.inject(&arp));
    let got = collect(&mut qs[..1], &mut pool, 1);
    assert_eq!(got, vec![(0, None, 7100)]);
    wait_until("the model to take the frames", || {
        m.rx_backlog() == 0 && m.stats().rx_frames + m.stats().rx_no_desc == 4
    });
    assert_eq!(m.stats().rx_no_desc, 3);
    let x: std::collections::HashMap<String, u64> = p.xstats().into_iter().collect();
    assert_eq!(x["vsi_rx_discards"], 3);
}

#[test]
fn without_rss_every_frame_lands_in_queue_0() {
    let (_p, m, mut qs) = rss_port(2, None);
    assert!(m.rss_lut().unwrap().iter().all(|&q| q == 0));
    let mut pool = pool(4096);
    arm(&mut qs, &mut pool);
    for i in 0..20 {
        assert!(m.inject(&ip_frame(17, 3000 + i, 9, 0)));
    }
    let got = collect(&mut qs, &mut pool, 20);
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|(q, _, _)| *q == 0), "{got:?}");
}

#[test]
fn bad_rss_configurations_are_refused_at_configure_naming_the_key() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut p = probe(&m);
    let mut c = PortConfig {
        nb_rx_queues: 2,
        rss: Some(RssConf::spread(2, 128)),
        ..PortConfig::default()
    };
    let e = p.configure(&c).unwrap_err().to_string();
    assert!(e.contains("rss.reta") && e.contains("exactly 2048"), "{e}");
    let mut far = RssConf::spread(2, LUT);
    far.reta[1000] = 2;
    c.rss = Some(far);
    let e = p.configure(&c).unwrap_err().to_string();
    assert!(e.contains("rss.reta[1000]") && e.contains("queue 2"), "{e}");
    // Without a DDP package the inputs cannot be chosen: a subset is refused.
    c.rss = Some(RssConf {
        hash_types: RssHashTypes::IPV4,
        ..RssConf::spread(2, LUT)
    });
    let e = p.configure(&c).unwrap_err().to_string();
    assert!(
        e.contains("rss.hash_types") && e.contains("DDP package") && e.contains("ipv4-tcp"),
        "{e}"
    );
    c.rss = Some(RssConf {
        hash_types: RssHashTypes::NONE,
        ..RssConf::spread(2, LUT)
    });
    let e = p.configure(&c).unwrap_err().to_string();
    assert!(e.contains("rss.hash_types"), "{e}");
    // None of that reached the firmware.
    assert_eq!(m.rss_lut(), None);
    // update_rss before configure names what to do.
    let e = p
        .update_rss(RssConf::spread(2, LUT))
        .unwrap_err()
        .to_string();
    assert!(e.contains("configure"), "{e}");
}

fn rc_of(r: Result<(), AqError>) -> AqRc {
    match r {
        Err(AqError::Firmware { rc, .. }) => rc,
        other => panic!("expected a firmware error, got {other:?}"),
    }
}

#[test]
fn the_firmware_checks_set_rss_key_and_set_rss_lut_as_published() {
    let (p, m, _qs) = rss_port(2, Some(RssConf::spread(2, LUT)));
    let vsi = p.firmware_info().3.unwrap();
    let valid = vsi | regs::AQ_RSS_VSI_VALID;
    p.with_hw(|hw| {
        let key = |hw: &mut pmd_ice::hw::IceHw<IceModel>, id: u16, len: usize| {
            let mut d = AqDesc::new(opc::SET_RSS_KEY);
            d.set_param_u16(0, id);
            let mut b = vec![0x11u8; len];
            hw.send(&mut d, Some((&mut b, true)))
        };
        // The 52-byte buffer ice_aq_set_rss_key sends is accepted…
        key(hw, valid, regs::RSS_KEYS_BUF_SIZE).unwrap();
        // …a 40-byte one, no VSI_VALID, or another function's VSI is not.
        assert_eq!(rc_of(key(hw, valid, 40)), AqRc::Einval);
        assert_eq!(rc_of(key(hw, vsi, regs::RSS_KEYS_BUF_SIZE)), AqRc::Einval);
        assert_eq!(
            rc_of(key(
                hw,
                (vsi + 1) | regs::AQ_RSS_VSI_VALID,
                regs::RSS_KEYS_BUF_SIZE
            )),
            AqRc::Eacces
        );
        let lut = |hw: &mut pmd_ice::hw::IceHw<IceModel>, flags: u16, len: usize| {
            let mut d = AqDesc::new(opc::SET_RSS_LUT);
            d.set_param_u16(0, valid);
            d.set_param_u16(regs::RSS_LUT_FLAGS_OFF, flags);
            let mut b = vec![1u8; len];
            hw.send(&mut d, Some((&mut b, true)))
        };
        use regs::lut_type::*;
        // PF LUT: 2048 with the 2K flag, 512 with the 512 flag, 128 small.
        lut(hw, PF | regs::AQC_LUT_SIZE_2K, 2048).unwrap();
        lut(hw, PF | regs::AQC_LUT_SIZE_512, 512).unwrap();
        lut(hw, PF | regs::AQC_LUT_SIZE_SMALL, 128).unwrap();
        // A VSI LUT is 64 entries, small size only.
        lut(hw, VSI, 64).unwrap();
        assert_eq!(rc_of(lut(hw, VSI, 128)), AqRc::Einval);
        assert_eq!(
            rc_of(lut(hw, VSI | regs::AQC_LUT_SIZE_2K, 2048)),
            AqRc::Einval
        );
        // A length that is not the size, size code 3, type 3.
        assert_eq!(
            rc_of(lut(hw, PF | regs::AQC_LUT_SIZE_2K, 512)),
            AqRc::Einval
        );
        assert_eq!(rc_of(lut(hw, PF | (3 << 2), 2048)), AqRc::Einval);
        assert_eq!(rc_of(lut(hw, 3, 64)), AqRc::Einval);
        // No global LUT is allocated to the PF.
        assert_eq!(
            rc_of(lut(hw, GLOBAL | regs::AQC_LUT_SIZE_512, 512)),
            AqRc::Enoent
        );
        // The driver's own call refuses a size no PF LUT has, before sending.
        assert!(matches!(
            hw.set_rss_lut(&[0u8; 100]),
            Err(IceError::Usage(_))
        ));
    });
    // The last PF LUT accepted (128 entries of queue 1) is the one in force.
    let l = m.rss_lut().unwrap();
    assert_eq!((l.len(), l[0]), (128, 1));
}

#[test]
fn frames_the_port_transmits_into_the_loopback_are_steered_and_hashed_too() {
    use wirespeed::ethdev::TxQueue;
    let m = model(Sink::Loopback, false, Speed::G100);
    let mut p = probe(&m);
    p.configure(&PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: 2,
        rx_ring_size: 256,
        rss: Some(RssConf::spread(2, LUT)),
        ..PortConfig::default()
    })
    .unwrap();
    let mut tx = p.ice_tx_queue(0).unwrap();
    let mut qs: Queues = (0..2).map(|q| p.ice_rx_queue(q).unwrap()).collect();
    p.start().unwrap();
    let mut pool = pool(4096);
    arm(&mut qs, &mut pool);
    let mut b = Burst::new();
    for i in 0..32u16 {
        b.push(mbuf(&mut pool, &ip_frame(17, 6000 + i, 7, 0)))
            .unwrap();
    }
    assert_eq!(tx.tx_burst(&mut b), 32);
    let got = collect(&mut qs, &mut pool, 32);
    assert_eq!(got.len(), 32, "{:?}", m.stats());
    let mut seen = [0; 2];
    for (q, h, sport) in got {
        let wh = toeplitz_hash(&DEFAULT_RSS_KEY, &tuple(Some((sport, 7))));
        // Round-robin LUT over two queues: entry (h & 2047) → its index % 2.
        assert_eq!((q, h), ((wh & 1) as u16, Some(wh)), "sport {sport}");
        seen[q as usize] += 1;
    }
    assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    tx.clean(usize::MAX);
}

#[test]
fn a_firmware_reporting_no_usable_rss_table_leaves_the_port_without_rss() {
    // Hostile firmware: list_func_caps reports a 1000-entry RSS table, a
    // size set_rss_lut has no flag for.
    let m = model(Sink::Count, false, Speed::G100);
    m.set_admin_hook(Some(Box::new(|op, _d, buf| {
        if op == opc::LIST_FUNC_CAPS {
            for e in buf.chunks_exact_mut(regs::CAPS_ELEM_SIZE) {
                if u16::from_le_bytes([e[0], e[1]]) == regs::caps::RSS {
                    e[4..8].copy_from_slice(&1000u32.to_le_bytes());
                }
            }
        }
    })));
    let mut p = probe(&m);
    m.set_admin_hook(None);
    let info = p.info();
    assert_eq!(
        (info.reta_size, info.rss_hash_types),
        (0, RssHashTypes::NONE)
    );
    let e = p
        .configure(&PortConfig {
            nb_rx_queues: 2,
            rss: Some(RssConf::spread(2, 2048)),
            ..PortConfig::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rss:") && e.contains("no receive-side scaling"),
        "{e}"
    );
    // Without RSS the port configures, and nothing is sent to the RSS commands.
    p.configure(&PortConfig {
        nb_rx_queues: 2,
        ..PortConfig::default()
    })
    .unwrap();
    assert_eq!(m.rss_lut(), None);
    assert_eq!(m.rss_key(), None);
}
