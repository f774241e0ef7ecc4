//! The igb driver against the igb device model: descriptors, offloads,
//! completions, faults and counters, checked on the frames the model puts on
//! its "wire" and on the model's registers.

use pmd_igb::model::net;
use pmd_igb::regs::*;
use pmd_igb::{model_port, IgbModel, IgbPort, ModelConfig, Sink};
use std::sync::Arc;
use std::time::Duration;
use wirespeed::eal::dma::{set_page_mode, DmaRegion, PageMode};
use wirespeed::eal::RegisterSpace;
use wirespeed::ethdev::{Port, PortConfig, RxQueue, TxQueue};
use wirespeed::mbuf::{ol, Burst, Mbuf, Mempool, PoolConfig};

const SRC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const DST: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

fn cfg(sink: Sink, speed_bps: u64) -> ModelConfig {
    ModelConfig {
        sink,
        speed_bps,
        ..ModelConfig::default()
    }
}

fn pool(n: u32) -> Mempool {
    set_page_mode(PageMode::Small);
    Mempool::new(&PoolConfig {
        name: "igb-test".into(),
        size: n,
        headroom: 128,
        data_room: 2048,
    })
    .unwrap()
}

fn started(cfg: ModelConfig, ring: u16, rx: bool) -> (IgbPort<IgbModel>, Arc<IgbModel>) {
    let (mut p, m) = model_port(cfg).unwrap();
    p.configure(&PortConfig {
        nb_tx_queues: 2,
        nb_rx_queues: u16::from(rx),
        tx_ring_size: ring,
        rx_ring_size: 64,
        tx_offloads: 0,
        promiscuous: true,
        rss: None,
    })
    .unwrap();
    (p, m)
}

/// Ethernet + IPv4 + UDP (or TCP) frame of `size` bytes (without FCS) with
/// sequence number `seq` in the payload. With `offload`, the IPv4 checksum is
/// left 0 and the L4 checksum field holds the pseudo-header sum, as the
/// offload contract asks; otherwise both are complete.
fn frame(size: usize, seq: u32, tcp: bool, offload: bool) -> Vec<u8> {
    let l4h = if tcp { 20 } else { 8 };
    assert!(size >= 14 + 20 + l4h + 4);
    let mut f = vec![0u8; size];
    f[..6].copy_from_slice(&DST);
    f[6..12].copy_from_slice(&SRC);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (size - 14) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[4..6].copy_from_slice(&(seq as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = if tcp { 6 } else { 17 };
    ip[12..16].copy_from_slice(&[198, 18, 0, 1]);
    ip[16..20].copy_from_slice(&[198, 18, 0, 2]);
    let l4_len = size - 34;
    {
        let l4 = &mut f[34..];
        l4[0..2].copy_from_slice(&1234u16.to_be_bytes());
        l4[2..4].copy_from_slice(&9u16.to_be_bytes());
        if tcp {
            l4[12] = 0x50;
        } else {
            l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        }
        l4[l4h..l4h + 4].copy_from_slice(&seq.to_be_bytes());
        for (i, b) in l4[l4h + 4..].iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
    }
    let pseudo = net::sum16(&f[26..34], 0) + u32::from(f[23]) + l4_len as u32;
    let field = 34 + if tcp { 16 } else { 6 };
    if offload {
        let seed = net::fold(pseudo);
        f[field..field + 2].copy_from_slice(&seed.to_be_bytes());
    } else {
        net::insert_ipv4_csum(&mut f, 14, 20);
        let mut c = !net::fold(net::sum16(&f[34..], pseudo));
        if !tcp && c == 0 {
            c = 0xFFFF;
        }
        f[field..field + 2].copy_from_slice(&c.to_be_bytes());
    }
    f
}

fn mbuf(pool: &mut Mempool, data: &[u8]) -> Mbuf {
    let mut m = pool.alloc().expect("pool has buffers");
    m.extend_from_slice(data).unwrap();
    m
}

fn seq_of(f: &[u8]) -> u32 {
    let l2 = if f[12..14] == [0x81, 0x00] { 18 } else { 14 };
    let l4h = if f[l2 + 9] == 6 { 20 } else { 8 };
    let o = l2 + 20 + l4h;
    u32::from_be_bytes([f[o], f[o + 1], f[o + 2], f[o + 3]])
}

/// Sends `pkts` on `q`, cleaning until the model has put all on the wire;
/// returns total completions.
fn drain(m: &IgbModel, q: &mut dyn TxQueue) -> (u64, u64) {
    let mut pk = 0u64;
    let mut by = 0u64;
    assert!(m.wait_idle(Duration::from_secs(5)), "model did not drain");
    for _ in 0..1000 {
        let c = q.clean(usize::MAX);
        pk += u64::from(c.packets);
        by += c.bytes;
        if q.free_slots() == q.ring_size() - 1 {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    (pk, by)
}

#[test]
fn ring_wraps_and_every_packet_completes_exactly_once() {
    let (mut p, m) = started(cfg(Sink::Capture, 0), 32, false);
    let mut q = p.igb_tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = pool(256);
    let mut done = (0u64, 0u64);
    let mut sent_bytes = 0u64;
    let mut seq = 0u32;
    for _round in 0..25 {
        let mut b = Burst::new();
        for _ in 0..8 {
            let f = frame(60 + (seq as usize % 40), seq, false, false);
            sent_bytes += f.len() as u64;
            b.push(mbuf(&mut pool, &f)).unwrap();
            seq += 1;
        }
        let mut taken = 0;
        for _ in 0..1000 {
            taken += q.tx_burst(&mut b);
            if b.is_empty() {
                break;
            }
            let c = q.clean(usize::MAX);
            done.0 += u64::from(c.packets);
            done.1 += c.bytes;
            std::thread::sleep(Duration::from_micros(100));
        }
        assert_eq!(taken, 8);
        let c = q.clean(usize::MAX);
        done.0 += u64::from(c.packets);
        done.1 += c.bytes;
    }
    let (pk, by) = drain(&m, &mut q);
    done.0 += pk;
    done.1 += by;
    assert_eq!(done, (200, sent_bytes), "completions: every packet once");
    assert_eq!(pool.stats().in_use, 0, "every mbuf went back to the pool");
    let wire = m.take_captured();
    assert_eq!(wire.len(), 200);
    for (i, f) in wire.iter().enumerate() {
        assert_eq!(
            seq_of(f),
            i as u32,
            "frames leave in order across 6 ring wraps"
        );
        assert_eq!(f, &frame(60 + (i % 40), i as u32, false, false));
    }
    assert_eq!(q.stats().packets.get(), 200);
    assert_eq!(
        m.counters()
            .data_descs
            .load(std::sync::atomic::Ordering::Relaxed),
        200
    );
}

#[test]
fn full_ring_stops_and_leaves_the_rest_for_requeue() {
    let (mut p, m) = started(cfg(Sink::Capture, 0), 32, false);
    let mut q = p.igb_tx_queue(1).unwrap();
    p.start().unwrap();
    let mut pool = pool(128);
    let mut b = Burst::new();
    for s in 0..64 {
        b.push(mbuf(&mut pool, &frame(60, s, false, false)))
            .unwrap();
    }
    // 32 slots, one always left empty, nothing reclaimable before the doorbell.
    assert_eq!(q.tx_burst(&mut b), 31);
    assert_eq!(b.len(), 33);
    assert_eq!(q.free_slots(), 0);
    assert_eq!(
        seq_of(b.front().unwrap().data()),
        31,
        "the rest stays in order"
    );
    assert!(m.wait_idle(Duration::from_secs(5)));
    let mut total = 31;
    for _ in 0..1000 {
        if b.is_empty() {
            break;
        }
        q.clean(usize::MAX);
        total += q.tx_burst(&mut b);
        std::thread::sleep(Duration::from_micros(100));
    }
    assert_eq!(total, 64);
    let (_, _) = drain(&m, &mut q);
    let wire = m.take_captured();
    assert_eq!(wire.len(), 64);
    assert!(wire.iter().enumerate().all(|(i, f)| seq_of(f) == i as u32));
    assert_eq!(pool.stats().in_use, 0);
    // TDT never caught up with TDH while full: the ring head is where the tail is.
    assert_eq!(m.read32(tdh(1)), m.read32(tdt(1)));
}

#[test]
fn rs_and_dd_are_batched_and_one_doorbell_per_burst() {
    let (mut p, m) = started(cfg(Sink::Count, 0), 256, false);
    let mut q = p.igb_tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = pool(256);
    let mut b = Burst::new();
    for s in 0..100 {
        b.push(mbuf(&mut pool, &frame(64, s, false, false)))
            .unwrap();
    }
    let db0 = m
        .counters()
        .doorbells
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(q.tx_burst(&mut b), 100);
    assert_eq!(q.doorbells(), 1);
    assert_eq!(
        m.counters()
            .doorbells
            .load(std::sync::atomic::Ordering::Relaxed)
            - db0,
        1,
        "one TDT write for the whole burst"
    );
    let (pk, by) = drain(&m, &mut q);
    assert_eq!((pk, by), (100, 6400));
    // RS on descriptors 32, 64, 96 and on the burst's last (100): four DD write-backs.
    assert_eq!(
        m.counters()
            .dd_writebacks
            .load(std::sync::atomic::Ordering::Relaxed),
        4
    );
    // RS on every packet when asked for it.
    q.set_rs_thresh(1);
    for s in 0..10 {
        b.push(mbuf(&mut pool, &frame(64, s, false, false)))
            .unwrap();
    }
    assert_eq!(q.tx_burst(&mut b), 10);
    assert_eq!(drain(&m, &mut q).0, 10);
    assert_eq!(
        m.counters()
            .dd_writebacks
            .load(std::sync::atomic::Ordering::Relaxed),
        14
    );
}

fn offload_mbuf(pool: &mut Mempool, size: usize, seq: u32, tcp: bool, vlan: Option<u16>) -> Mbuf {
    let mut m = mbuf(pool, &frame(size, seq, tcp, true));
    let mut f = ol::TX_IPV4
        | ol::TX_IP_CKSUM
        | if tcp {
            ol::TX_TCP_CKSUM
        } else {
            ol::TX_UDP_CKSUM
        };
    if let Some(v) = vlan {
        f |= ol::TX_VLAN;
        m.set_vlan_tci(v);
    }
    m.set_ol_flags(f);
    m.set_tx_lens(14, 20, if tcp { 20 } else { 8 });
    m
}

#[test]
fn context_descriptors_are_written_only_when_the_tuple_changes() {
    let (mut p, m) = started(cfg(Sink::Capture, 0), 256, false);
    let mut q = p.igb_tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = pool(256);
    // Tuples: U = UDP csum, T = TCP csum, V = UDP csum + VLAN 100.
    // Sequence U U U T T U U V T T U: misses at U, T, V (evicts T, the LRU),
    // T (evicts U), U (evicts V) = 5 context descriptors for 11 packets.
    let seqn: &[(bool, Option<u16>)] = &[
        (false, None),
        (false, None),
        (false, None),
        (true, None),
        (true, None),
        (false, None),
        (false, None),
        (false, Some(100)),
        (true, None),
        (true, None),
        (false, None),
    ];
    let mut b = Burst::new();
    for (i, (tcp, vlan)) in seqn.iter().enumerate() {
        b.push(offload_mbuf(&mut pool, 60 + i * 9, i as u32, *tcp, *vlan))
            .unwrap();
    }
    // A packet without offloads needs no context at all.
    b.push(mbuf(&mut pool, &frame(70, 11, false, false)))
        .unwrap();
    assert_eq!(q.tx_burst(&mut b), 12);
    assert_eq!(q.context_descriptors(), 5);
    drain(&m, &mut q);
    assert_eq!(
        m.counters()
            .ctx_descs
            .load(std::sync::atomic::Ordering::Relaxed),
        5
    );
    let wire = m.take_captured();
    assert_eq!(wire.len(), 12);
    for (i, f) in wire.iter().enumerate().take(11) {
        let (tcp, vlan) = seqn[i];
        let mut want = frame(60 + i * 9, i as u32, tcp, false);
        if let Some(v) = vlan {
            net::insert_vlan(&mut want, 0x8100, v);
        }
        assert_eq!(
            f, &want,
            "frame {i}: checksums and tag as computed in software"
        );
        let (is4, ip_ok, l4) = net::verify(f);
        assert!(is4 && ip_ok && l4.unwrap().1, "frame {i} verifies");
    }
    assert_eq!(wire[11], frame(70, 11, false, false));
}

#[test]
fn checksums_and_vlan_on_the_wire_for_60_61_and_1514_bytes() {
    let (mut p, m) = started(cfg(Sink::Capture, 0), 64, false);
    let mut q = p.igb_tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = pool(64);
    let sizes = [60usize, 61, 1514];
    let mut b = Burst::new();
    for (i, s) in sizes.iter().enumerate() {
        b.push(offload_mbuf(&mut pool, *s, i as u32, false, None))
            .unwrap();
        b.push(offload_mbuf(
            &mut pool,
            *s,
            10 + i as u32,
            false,
            Some(0x2064),
        ))
        .unwrap();
    }
    // Short frames are padded to 60 on the wire (TCTL.PSP).
    let mut short = frame(60, 99, false, false);
    short.truncate(46);
    b.push(mbuf(&mut pool, &short)).unwrap();
    assert_eq!(q.tx_burst(&mut b), 7);
    drain(&m, &mut q);
    let wire = m.take_captured();
    assert_eq!(wire.len(), 7);
    for (i, s) in sizes.iter().enumerate() {
        let plain = &wire[2 * i];
        assert_eq!(plain.len(), *s);
        assert_eq!(plain, &frame(*s, i as u32, false, false));
        let tagged = &wire[2 * i + 1];
        assert_eq!(tagged.len(), s + 4);
        assert_eq!(&tagged[12..16], &[0x81, 0x00, 0x20, 0x64]);
        let mut want = frame(*s, 10 + i as u32, false, false);
        net::insert_vlan(&mut want, 0x8100, 0x2064);
        assert_eq!(tagged, &want);
        let (_, ip_ok, l4) = net::verify(tagged);
        assert!(ip_ok && l4 == Some((true, true)));
    }
    assert_eq!(wire[6].len(), 60);
    assert_eq!(&wire[6][..46], &short[..]);
    assert!(wire[6][46..].iter().all(|b| *b == 0));
}

#[test]
fn chained_mbufs_use_one_descriptor_per_segment() {
    let (mut p, m) = started(cfg(Sink::Capture, 0), 64, false);
    let mut q = p.igb_tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = pool(64);
    let f = frame(300, 7, false, false);
    let mut head = mbuf(&mut pool, &f[..42]);
    head.chain(mbuf(&mut pool, &f[42..200]));
    head.chain(mbuf(&mut pool, &f[200..]));
    assert_eq!(head.nb_segs(), 3);
    let mut b = Burst::new();
    b.push(head).unwrap();
    assert_eq!(q.tx_burst(&mut b), 1);
    assert_eq!(q.free_slots(), 63 - 3);
    assert_eq!(drain(&m, &mut q), (1, 300));
    assert_eq!(m.take_captured(), vec![f]);
    assert_eq!(
        m.counters()
            .data_descs
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    assert_eq!(pool.stats().in_use, 0);
}

#[test]
fn malformed_packets_are_counted_not_sent() {
    let (mut p, m) = started(cfg(Sink::Capture, 0), 64, false);
    let mut q = p.igb_tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = pool(64);
    let mut b = Burst::new();
    b.push(mbuf(&mut pool, &[0u8; 10])).unwrap();
    b.push(mbuf(&mut pool, &frame(60, 1, false, false)))
        .unwrap();
    assert_eq!(q.tx_burst(&mut b), 2);
    drain(&m, &mut q);
    assert_eq!(m.take_captured().len(), 1);
    assert_eq!(q.stats().drops.get(), 1);
    assert_eq!(q.stats().packets.get(), 1);
}

#[test]
fn hardware_counters_accumulate_across_clear_on_read() {
    let (mut p, m) = started(cfg(Sink::Count, 0), 64, false);
    let mut q = p.igb_tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = pool(64);
    let xs = |p: &IgbPort<IgbModel>, k: &str| {
        p.xstats()
            .into_iter()
            .find(|(n, _)| n == k)
            .unwrap_or_else(|| panic!("no xstat {k}"))
            .1
    };
    let mut b = Burst::new();
    for s in 0..10 {
        b.push(mbuf(&mut pool, &frame(100, s, false, false)))
            .unwrap();
    }
    q.tx_burst(&mut b);
    drain(&m, &mut q);
    assert_eq!(xs(&p, "hw_tx_good_packets"), 10);
    assert_eq!(
        xs(&p, "hw_tx_good_octets"),
        10 * 104,
        "octets count the FCS"
    );
    // The registers cleared on that read...
    assert_eq!(m.read32(GPTC), 0);
    assert_eq!(m.read32(GOTCL), 0);
    for s in 0..5 {
        b.push(mbuf(&mut pool, &frame(200, s, false, false)))
            .unwrap();
    }
    q.tx_burst(&mut b);
    drain(&m, &mut q);
    // ...and the 64-bit totals kept counting.
    assert_eq!(xs(&p, "hw_tx_good_packets"), 15);
    assert_eq!(xs(&p, "hw_tx_total_packets"), 15);
    assert_eq!(xs(&p, "hw_tx_good_octets"), 10 * 104 + 5 * 204);
    assert_eq!(xs(&p, "tx_packets"), 15);
}

#[test]
fn loopback_rx_delivers_frames_with_checksum_flags() {
    let (mut p, m) = started(cfg(Sink::Loopback, 0), 64, true);
    let mut tq = p.igb_tx_queue(0).unwrap();
    let mut rq = p.igb_rx_queue(0).unwrap();
    p.start().unwrap();
    assert!(p.link().up);
    assert_eq!(
        p.link().speed_mbps,
        0,
        "an unlimited model has no line rate"
    );
    let mut pool = pool(512);
    let mut out = Burst::new();
    // Fill the RX ring first.
    assert_eq!(rq.rx_burst(&mut pool, &mut out, 32), 0);
    let mut b = Burst::new();
    for s in 0..40 {
        b.push(offload_mbuf(&mut pool, 60 + s as usize, s, false, None))
            .unwrap();
    }
    assert_eq!(tq.tx_burst(&mut b), 40);
    let mut got = Vec::new();
    for _ in 0..2000 {
        rq.rx_burst(&mut pool, &mut out, 32);
        while let Some(mb) = out.pop_front() {
            assert_ne!(mb.ol_flags() & ol::RX_IP_CKSUM_GOOD, 0);
            assert_ne!(mb.ol_flags() & ol::RX_L4_CKSUM_GOOD, 0);
            got.push(mb.data().to_vec());
        }
        if got.len() == 40 {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(got.len(), 40);
    for (i, f) in got.iter().enumerate() {
        assert_eq!(f, &frame(60 + i, i as u32, false, false));
    }
    assert_eq!(rq.stats().packets.get(), 40);
    drain(&m, &mut tq);
    assert!(rq.refills() >= 1);
    let s = p.stats();
    assert_eq!(s.rx.packets, 40);
    assert_eq!(s.rx.drops, 0);
}

#[test]
fn rx_without_buffers_counts_missed_frames() {
    let (mut p, m) = started(cfg(Sink::Count, 0), 64, true);
    let mut rq = p.igb_rx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = pool(512);
    let mut out = Burst::new();
    rq.rx_burst(&mut pool, &mut out, 0); // arms 63 descriptors
    for s in 0..200 {
        let mut f = frame(60, s, false, false);
        f[..6].copy_from_slice(&SRC); // to the port's own MAC
        assert!(m.inject(&f));
    }
    assert!(m.wait_idle(Duration::from_secs(5)));
    let s = p.stats();
    // 63 armed descriptors took frames; the backlog beyond the modeled packet
    // buffer was missed (MPC) and counted as RX drops.
    assert_eq!(
        m.counters()
            .rx_frames
            .load(std::sync::atomic::Ordering::Relaxed),
        63
    );
    assert_eq!(s.rx.drops, 200 - 63 - 32);
    let mut n = 0;
    for _ in 0..100 {
        n += rq.rx_burst(&mut pool, &mut out, 256);
        out.clear();
        if n >= 63 + 32 {
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    assert_eq!(
        n,
        63 + 32,
        "the frames held in the packet buffer arrive once buffers do"
    );
}

#[test]
fn bad_iova_is_a_fault_and_nothing_is_read() {
    set_page_mode(PageMode::Small);
    let m = IgbModel::new(cfg(Sink::Capture, 0)).unwrap();
    let ring = DmaRegion::alloc(64 * 16).unwrap();
    // A descriptor whose buffer IOVA lies in no DMA region.
    let bad: u64 = 0x10;
    let d = ring.as_ptr() as *mut u64;
    let cmd = 60u32 | TXD_DTYP_DATA | TXD_DEXT | TXD_IFCS | TXD_EOP | TXD_RS;
    // SAFETY: the ring region is 1 KiB; descriptor 0 is its first 16 bytes.
    unsafe {
        d.write_volatile(bad);
        d.add(1)
            .write_volatile(u64::from(cmd) | ((60u64 << TXD_PAYLEN_SHIFT) << 32));
    }
    m.write32(tdbal(0), ring.iova() as u32);
    m.write32(tdbah(0), (ring.iova() >> 32) as u32);
    m.write32(tdlen(0), 64 * 16);
    m.write32(txdctl(0), XDCTL_ENABLE);
    assert_eq!(
        m.read32(txdctl(0)) & XDCTL_ENABLE,
        0,
        "enable latches only with TCTL.EN"
    );
    m.write32(TCTL, TCTL_EN | TCTL_PSP);
    assert_ne!(m.read32(txdctl(0)) & XDCTL_ENABLE, 0);
    m.write32(tdt(0), 1);
    assert!(m.wait_idle(Duration::from_secs(5)));
    let c = m.counters();
    assert_eq!(c.dma_faults.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(c.wire_frames.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert!(m.take_captured().is_empty());
    assert_eq!(m.read32(GPTC), 0);
    let ev = m.take_events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, "dma-fault");
    assert!(ev[0].detail.contains("0x10"), "{}", ev[0].detail);
    // The descriptor itself was readable: it completes (DD) like the part does.
    // SAFETY: reading descriptor 0's status dword.
    let st = unsafe { (ring.as_ptr() as *const u32).add(3).read_volatile() };
    assert_eq!(st & TXD_STAT_DD, 1);

    // A ring that is not DMA memory: the fetch faults and the queue stops.
    m.write32(txdctl(1), 0);
    m.write32(tdbal(1), 0x2000);
    m.write32(tdbah(1), 0);
    m.write32(tdlen(1), 64 * 16);
    m.write32(txdctl(1), XDCTL_ENABLE);
    m.write32(tdt(1), 1);
    assert!(m.wait_idle(Duration::from_secs(5)));
    let ev = m.take_events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(ev[0].detail.contains("descriptor fetch"));
    assert_eq!(m.read32(txdctl(1)) & XDCTL_ENABLE, 0);

    // A tail beyond the ring stops the queue instead of running off its end.
    m.write32(tdt(0), 64);
    assert!(m.wait_idle(Duration::from_secs(5)));
    let ev = m.take_events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].kind, "tdt-out-of-range");
    assert_eq!(m.read32(txdctl(0)) & XDCTL_ENABLE, 0);
    assert_eq!(c.wire_frames.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn reset_phy_autoneg_and_link() {
    let m = IgbModel::new(ModelConfig {
        autoneg: Duration::from_millis(30),
        ..ModelConfig::default()
    })
    .unwrap();
    m.write32(RAL0, 0x1234_5678);
    m.write32(CTRL, CTRL_RST);
    assert_eq!(m.read32(CTRL) & CTRL_RST, 0, "RST self-clears");
    assert_eq!(m.read32(RAL0), 0x1200_5452, "reset reloads the MAC");
    assert_eq!(
        m.read32(STATUS) & STATUS_LU,
        0,
        "no link before autonegotiation"
    );
    // Restart autonegotiation on the PHY (address 1) through MDIC.
    let v = u32::from(BMCR_AN_ENABLE | BMCR_AN_RESTART)
        | (PHY_BMCR << MDIC_REG_SHIFT)
        | (PHY_ADDR << MDIC_PHY_SHIFT)
        | MDIC_OP_WRITE;
    m.write32(MDIC, v);
    assert_ne!(m.read32(MDIC) & MDIC_READY, 0);
    assert_eq!(
        m.read32(STATUS) & STATUS_LU,
        0,
        "link is down while negotiating"
    );
    std::thread::sleep(Duration::from_millis(40));
    let s = m.read32(STATUS);
    assert_ne!(s & STATUS_LU, 0);
    assert_eq!(s & STATUS_SPEED_MASK, STATUS_SPEED_1000);
    m.write32(
        MDIC,
        (PHY_BMSR << MDIC_REG_SHIFT) | (PHY_ADDR << MDIC_PHY_SHIFT) | MDIC_OP_READ,
    );
    let r = m.read32(MDIC);
    assert_ne!(r & u32::from(BMSR_LINK), 0);
    assert_ne!(r & u32::from(BMSR_AN_COMPLETE), 0);
    // A PHY that is not there answers with an error.
    m.write32(
        MDIC,
        (PHY_BMSR << MDIC_REG_SHIFT) | (7 << MDIC_PHY_SHIFT) | MDIC_OP_READ,
    );
    assert_ne!(m.read32(MDIC) & MDIC_ERROR, 0);
}

#[test]
fn driver_init_reads_mac_and_brings_link_up() {
    let (p, _m) = model_port(ModelConfig {
        mac: wirespeed::ethdev::MacAddr([0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE]),
        ..ModelConfig::default()
    })
    .unwrap();
    assert_eq!(p.mac().to_string(), "02:aa:bb:cc:dd:ee");
    let i = p.info();
    assert_eq!(i.max_tx_queues, 16);
    assert_eq!(i.tx_offload_capa, pmd_igb::TX_OFFLOAD_CAPA);
    assert!(pmd_igb::hw::wait_for(
        Duration::from_secs(1),
        Duration::from_millis(1),
        || p.link().up
    ));
    assert_ne!(p.hw().rd(CTRL_EXT) & CTRL_EXT_DRV_LOAD, 0);
    let mut p = p;
    let e = p
        .configure(&PortConfig {
            tx_ring_size: 100,
            ..PortConfig::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("multiples of 8"), "{e}");
    let e = p
        .configure(&PortConfig {
            tx_ring_size: 8192,
            ..PortConfig::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("32..=4096"), "{e}");
}

#[test]
fn registry_opens_the_model_spec() {
    let mut r = wirespeed::ethdev::Registry::with_builtins();
    pmd_igb::register(&mut r);
    let mut p = r.open("igb-model?speed=unlimited&sink=count").unwrap();
    assert_eq!(p.info().driver, "igb-model");
    assert_eq!(p.info().line_rate_bps, 0);
    p.configure(&PortConfig {
        nb_rx_queues: 0,
        tx_ring_size: 64,
        ..PortConfig::default()
    })
    .unwrap();
    let mut q = p.tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = pool(64);
    let mut b = Burst::new();
    for s in 0..20 {
        b.push(mbuf(&mut pool, &frame(60, s, false, false)))
            .unwrap();
    }
    assert_eq!(q.tx_burst(&mut b), 20);
    let mut done = 0;
    for _ in 0..1000 {
        done += q.clean(64).packets;
        if done == 20 {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(done, 20);
    let x = p.xstats();
    assert!(x.iter().any(|(k, v)| k == "model_wire_frames" && *v == 20));
}

#[test]
fn pacing_counts_preamble_ifg_and_fcs() {
    for (speed, per_bit_ns) in [(1_000_000_000u64, 1u64), (100_000_000, 10)] {
        let (mut p, m) = started(cfg(Sink::Count, speed), 256, false);
        let mut q = p.igb_tx_queue(0).unwrap();
        p.start().unwrap();
        let mut pool = pool(256);
        let mut b = Burst::new();
        for s in 0..50 {
            b.push(mbuf(&mut pool, &frame(60, s, false, false)))
                .unwrap();
        }
        for s in 0..50 {
            b.push(mbuf(&mut pool, &frame(1514, s, false, false)))
                .unwrap();
        }
        assert_eq!(q.tx_burst(&mut b), 100);
        drain(&m, &mut q);
        // 60 B + FCS 4 + preamble/SFD 8 + IFG 12 = 84 B; 1514 B -> 1538 B on the wire.
        let want = (50 * 84 + 50 * 1538) * 8 * per_bit_ns;
        assert_eq!(
            m.counters()
                .wire_ns
                .load(std::sync::atomic::Ordering::Relaxed),
            want
        );
    }
    let (_p, m) = started(cfg(Sink::Count, 0), 64, false);
    assert_eq!(
        m.counters()
            .wire_ns
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn a_queue_the_device_stopped_is_reported_once() {
    let (mut p, m) = started(cfg(Sink::Count, 10_000_000), 64, false);
    let mut q = p.igb_tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = pool(64);
    let mut b = Burst::new();
    for s in 0..40 {
        b.push(mbuf(&mut pool, &frame(1514, s, false, false)))
            .unwrap();
    }
    // At 10 Mbit/s the wire holds the queue busy for ~50 ms: stop it meanwhile,
    // as the device does after a fatal DMA error.
    assert_eq!(q.tx_burst(&mut b), 40);
    m.write32(txdctl(0), 0);
    // As on the 82576, ENABLE reads 1 until the engine has let go of the
    // queue (it may be between frames, or not scheduled on a busy machine).
    let t0 = std::time::Instant::now();
    while m.read32(txdctl(0)) & XDCTL_ENABLE != 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the model never stopped the queue"
        );
        std::thread::sleep(Duration::from_micros(100));
    }
    let mut ev = None;
    for _ in 0..4 * pmd_igb::tx::STALL_CHECK_POLLS {
        q.clean(64);
        if let Some(e) = q.poll_event() {
            ev = Some(e);
            break;
        }
    }
    let ev = ev.expect("stopped queue reported");
    assert_eq!(ev.kind, "tx-queue-stopped");
    assert_eq!(ev.queue, Some(0));
    for _ in 0..2 * pmd_igb::tx::STALL_CHECK_POLLS {
        q.clean(64);
    }
    assert!(q.poll_event().is_none(), "reported once");
}

/// Issue 10 item 3: an oversized frame the driver takes and drops must leave
/// BQL's in-flight count (`netdev_tx_completed_queue`), or the queue stays
/// STACK_XOFF for ever.
#[test]
fn an_oversized_frame_is_dropped_once_and_does_not_wedge_bql() {
    use wirespeed::eal::tsc::Tsc;
    use wirespeed::netdev::{NetdevQueue, TxqConfig};
    let (mut p, m) = started(cfg(Sink::Count, 0), 256, false);
    let txq = p.igb_tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = pool(512);
    let mut nq = NetdevQueue::new(
        0,
        "igb-model",
        Box::new(txq),
        &TxqConfig::default(),
        Tsc::global(),
    )
    .unwrap();
    let total = 1000u32;
    let bad = 500u32;
    let mut made = 0u32;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while made < total {
        assert!(
            std::time::Instant::now() < deadline,
            "queue wedged: {}",
            nq.snapshot()
        );
        nq.poll();
        let room = nq.tx_room(0).min(32).min((total - made) as usize);
        let mut b = Burst::new();
        for _ in 0..room {
            let f = if made == bad {
                vec![0u8; 2000]
            } else {
                frame(60 + (made as usize % 1400), made, false, false)
            };
            let Some(mut mb) = pool.alloc() else { break };
            mb.extend_from_slice(&f).unwrap();
            b.push(mb).unwrap();
            made += 1;
        }
        nq.xmit_burst(&mut b);
    }
    assert!(nq.flush(5_000_000_000), "queue wedged: {}", nq.snapshot());
    assert!(m.wait_idle(Duration::from_secs(5)));
    let s = nq.snapshot();
    assert_eq!(s.bql.inflight, 0, "{s}");
    assert!(!s.xoff.stack && !s.xoff.drv, "{s}");
    let c = s.counters;
    assert_eq!(c.offered, u64::from(total));
    assert_eq!(c.drops(), 0, "nothing dropped above the driver: {s}");
    let st = p.stats().tx;
    assert_eq!(st.drops, 1, "the oversized frame, counted once");
    assert_eq!(st.packets, u64::from(total) - 1);
    assert_eq!(
        c.completed_packets,
        u64::from(total),
        "taken = completed + dropped"
    );
    drop(nq);
    assert_eq!(pool.stats().in_use, 0);
}

/// `RxQueue::stop` (`igb_clean_rx_ring`) returns every posted buffer; the
/// next `rx_burst` re-arms the ring and receives again.
#[test]
fn rx_stop_returns_posted_buffers_and_rx_restarts() {
    let (mut p, m) = started(cfg(Sink::Loopback, 0), 64, true);
    let mut tq = p.igb_tx_queue(0).unwrap();
    let mut rq = p.igb_rx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = pool(512);
    let mut out = Burst::new();
    assert_eq!(rq.rx_burst(&mut pool, &mut out, 32), 0);
    assert!(pool.stats().in_use >= 60, "the ring holds its buffers");
    let mut seq = 0u32;
    for round in 0..3 {
        let mut b = Burst::new();
        for _ in 0..20 {
            b.push(mbuf(&mut pool, &frame(100, seq, false, false)))
                .unwrap();
            seq += 1;
        }
        assert_eq!(tq.tx_burst(&mut b), 20);
        let mut got = 0;
        for _ in 0..5000 {
            got += rq.rx_burst(&mut pool, &mut out, 32);
            out.clear();
            if got == 20 {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        assert_eq!(got, 20, "round {round}");
        drain(&m, &mut tq);
        rq.stop();
        assert_eq!(pool.stats().in_use, 0, "round {round}: every buffer home");
        rq.stop();
        assert_eq!(pool.stats().in_use, 0, "a second stop is harmless");
    }
    assert_eq!(p.stats().rx.packets, 60);
}

/// Issue 10 item 14: a runtime run with an igb RX queue ends with every pool
/// buffer back (the RX ring's posted buffers returned before the count).
#[test]
fn a_runtime_run_with_an_rx_queue_ends_with_the_pool_full() {
    use wirespeed::eal::CoreList;
    use wirespeed::runtime::{PollFn, PortSetup, Runtime, RuntimeConfig};
    set_page_mode(PageMode::Small);
    let (p, _m) = model_port(cfg(Sink::Loopback, 0)).unwrap();
    let conf = PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: 1,
        tx_ring_size: 256,
        rx_ring_size: 256,
        tx_offloads: 0,
        promiscuous: true,
        rss: None,
    };
    let mut rc = RuntimeConfig::new(CoreList::from_cores(vec![0]));
    rc.pool.size = 1024;
    rc.handle_signals = false;
    rc.stop.polls = Some(20_000);
    rc.stop.duration = Some(Duration::from_secs(10));
    let rt = Runtime::new(rc, vec![PortSetup::new(Box::new(p), conf)]).unwrap();
    let report = rt
        .run(|_ctx| {
            let mut sent = 0u32;
            Ok(PollFn(move |ctx: &mut wirespeed::runtime::LcoreCtx| {
                if sent < 200 {
                    let mut b = Burst::new();
                    let f = frame(200, sent, false, false);
                    b.push(mbuf(&mut ctx.pool, &f)).unwrap();
                    ctx.xmit_burst(0, 0, &mut b);
                    sent += 1;
                }
            }))
        })
        .unwrap();
    let l = &report.lcores[0];
    assert!(l.rx_packets > 0, "frames came back over the loopback");
    assert_eq!(l.pool.in_use, 0, "every pool buffer back: {:?}", l.pool);
}

/// Issue 10 item 9: the link speed a model port reports is the modeled line
/// rate (`igb-model?speed=unlimited` used to say 1000 Mbit/s), and STATUS
/// carries the modeled 10/100/1000 speed.
#[test]
fn model_link_speed_is_the_modeled_line_rate() {
    let mut r = wirespeed::ethdev::Registry::with_builtins();
    pmd_igb::register(&mut r);
    for (spec, mbps, status) in [
        ("igb-model?speed=unlimited", 0, STATUS_SPEED_1000),
        ("igb-model?speed=1g", 1000, STATUS_SPEED_1000),
        ("igb-model?speed=100m", 100, STATUS_SPEED_100),
        ("igb-model?speed=10m", 10, STATUS_SPEED_10),
    ] {
        let (mut p, m) = pmd_igb::model_port(
            pmd_igb::model_config(&wirespeed::ethdev::DevSpec::parse(spec).unwrap()).unwrap(),
        )
        .unwrap();
        p.configure(&PortConfig::default()).unwrap();
        p.start().unwrap();
        let l = p.link();
        assert!(l.up, "{spec}");
        assert_eq!(l.speed_mbps, mbps, "{spec}");
        assert_eq!(
            u64::from(l.speed_mbps) * 1_000_000,
            p.info().line_rate_bps,
            "{spec}"
        );
        assert_eq!(m.read32(STATUS) & STATUS_SPEED_MASK, status, "{spec}");
        let p2 = r.open(spec).unwrap();
        assert_eq!(
            p2.info().line_rate_bps,
            u64::from(mbps) * 1_000_000,
            "{spec}"
        );
    }
}

/// Issue 10 item 12 end to end: with mbufs in IOVA mode `pa` on 4 KiB pages
/// (physical addresses, pages not adjacent), the device reads every frame
/// from the right memory and no DMA faults (a buffer across two pages would
/// be read from a wrong page, or fault in the model's IOMMU).
#[test]
fn frames_from_a_physically_addressed_4k_pool_reach_the_wire_intact() {
    use wirespeed::eal::dma::{virt_to_phys, IovaMode};
    if virt_to_phys(&0u8 as *const u8 as u64).is_err() {
        eprintln!("needs /proc/self/pagemap physical addresses (root): skipping");
        return;
    }
    let (mut p, m) = started(cfg(Sink::Capture, 0), 256, false);
    let mut q = p.igb_tx_queue(0).unwrap();
    p.start().unwrap();
    let mut pool = Mempool::new_in(
        &PoolConfig {
            name: "pa".into(),
            size: 256,
            headroom: 128,
            data_room: 2048,
        },
        PageMode::Small,
        IovaMode::Pa,
    )
    .unwrap();
    let frames: Vec<Vec<u8>> = (0..400u32)
        .map(|s| frame(1514 - (s as usize % 7), s, false, false))
        .collect();
    let mut i = 0;
    let mut captured = Vec::new();
    let t0 = std::time::Instant::now();
    while captured.len() < frames.len() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "stuck at {}",
            captured.len()
        );
        let mut b = Burst::new();
        while i < frames.len() && b.len() < 32 {
            let Some(mut mb) = pool.alloc() else { break };
            mb.extend_from_slice(&frames[i]).unwrap();
            b.push(mb).unwrap();
            i += 1;
        }
        q.tx_burst(&mut b);
        // What the ring had no room for is built again next round.
        while let Some(mb) = b.pop_back() {
            drop(mb);
            i -= 1;
        }
        q.clean(usize::MAX);
        captured.extend(m.take_captured());
    }
    drain(&m, &mut q);
    assert_eq!(
        m.counters()
            .dma_faults
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    for (c, f) in captured.iter().zip(&frames) {
        assert_eq!(&c[..f.len()], &f[..], "frame bytes on the wire");
    }
    assert_eq!(pool.stats().in_use, 0);
}

/// A pulled cable: the PHY reports no link (`STATUS.LU` clear), the queue's
/// carrier goes down (the PMD re-reads STATUS every 100 ms), the netdev
/// layer stops the queue (`netif_carrier_off`) and counts what is offered
/// meanwhile as carrier drops; plugged back in, autonegotiation brings the
/// link up and traffic resumes.
#[test]
fn a_pulled_cable_stops_the_queue_and_counts_carrier_drops() {
    use wirespeed::eal::tsc::Tsc;
    use wirespeed::netdev::{CarrierPolicy, NetdevQueue, TxqConfig};
    let (mut p, m) = started(cfg(Sink::Count, 0), 256, false);
    let txq = p.igb_tx_queue(0).unwrap();
    p.start().unwrap();
    let t0 = std::time::Instant::now();
    while !p.link().up {
        assert!(t0.elapsed() < Duration::from_secs(5), "link never came up");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut pool = pool(256);
    let conf = TxqConfig {
        carrier: CarrierPolicy::Drop,
        ..Default::default()
    };
    let mut nq = NetdevQueue::new(0, "igb-model", Box::new(txq), &conf, Tsc::global()).unwrap();
    let mut send = |nq: &mut NetdevQueue, seqs: std::ops::Range<u32>| {
        let mut b = Burst::new();
        for s in seqs {
            b.push(mbuf(&mut pool, &frame(64, s, false, false)))
                .unwrap();
        }
        nq.xmit_burst(&mut b)
    };
    let wait_carrier = |nq: &mut NetdevQueue, up: bool| {
        let t0 = std::time::Instant::now();
        while nq.has_carrier() != up {
            nq.carrier_poll();
            nq.poll();
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "carrier never went {up}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    send(&mut nq, 0..10);
    assert!(nq.flush(5_000_000_000), "{}", nq.snapshot());
    assert_eq!(
        m.counters()
            .wire_frames
            .load(std::sync::atomic::Ordering::Relaxed),
        10
    );
    m.set_cable(false);
    assert!(!p.link().up, "STATUS.LU clear with the cable out");
    wait_carrier(&mut nq, false);
    assert!(nq.xoff().carrier, "stopped for the carrier");
    let o = send(&mut nq, 10..15);
    assert_eq!((o.dropped, o.carrier_dropped), (5, 5));
    m.set_cable(true);
    wait_carrier(&mut nq, true);
    assert!(p.link().up);
    send(&mut nq, 15..20);
    assert!(nq.flush(5_000_000_000), "{}", nq.snapshot());
    assert!(m.wait_idle(Duration::from_secs(5)));
    assert_eq!(
        m.counters()
            .wire_frames
            .load(std::sync::atomic::Ordering::Relaxed),
        15
    );
    let c = nq.counters();
    assert_eq!(c.carrier_drops, 5, "{c:?}");
    assert_eq!(c.carrier_changes, 2, "{c:?}");
    assert_eq!(c.unaccounted(), 0, "{c:?}");
    let ev: Vec<String> = m.take_events().into_iter().map(|e| e.detail).collect();
    assert_eq!(ev, ["pulled", "plugged in"]);
    drop(nq);
    p.stop().unwrap();
    assert_eq!(pool.stats().in_use, 0, "pool full at the end");
}
