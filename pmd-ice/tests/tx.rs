//! TX data path against the model: ring wrap, DESC_DONE batching, exactly-once
//! completion, padding, chains, VLAN insertion, MDD and recovery, stop/start,
//! statistics, end to end to pcap.

mod common;

use common::*;
use pmd_ice::regs::{self, *};
use pmd_ice::{Sink, Speed};
use wirespeed::eal::RegisterSpace;
use wirespeed::ethdev::pcap::read_file;
use wirespeed::ethdev::{Port, PortConfig, TxQueue};
use wirespeed::mbuf::{ol, Burst};

/// Sends `frames` through `q` in bursts and cleans until every one completed.
/// Returns the total completed packets reported by `clean`.
fn send_all<T: TxQueue + ?Sized>(
    q: &mut T,
    pool: &mut wirespeed::mbuf::Mempool,
    frames: &[Vec<u8>],
    burst: usize,
) -> u64 {
    let mut completed = 0u64;
    let mut i = 0;
    let mut b = Burst::new();
    let t0 = std::time::Instant::now();
    while i < frames.len() || !b.is_empty() {
        while b.len() < burst && i < frames.len() {
            b.push(mbuf(pool, &frames[i])).unwrap();
            i += 1;
        }
        q.tx_burst(&mut b);
        completed += q.clean(usize::MAX).packets as u64;
        assert!(t0.elapsed().as_secs() < 10, "send_all stuck");
    }
    wait_until("all completions", || {
        completed += q.clean(usize::MAX).packets as u64;
        completed == frames.len() as u64
    });
    completed
}

#[test]
fn ring_wraps_and_every_packet_completes_exactly_once_byte_exact() {
    let path = tmp_pcap("wrap.pcap");
    let m = model(Sink::Pcap(path.clone()), false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    let mut q = port.ice_tx_queue(0).unwrap();
    let mut pool = pool(512);
    let frames: Vec<Vec<u8>> = (0..1000u32)
        .map(|s| frame(s, 60 + (s as usize % 200)))
        .collect();
    let done = send_all(&mut q, &mut pool, &frames, 32);
    assert_eq!(done, 1000);
    assert_eq!(q.stats().packets.get(), 1000);
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    assert_eq!(q.stats().bytes.get(), bytes);
    assert_eq!(q.stats().drops.get(), 0);
    assert_eq!(pool.stats().in_use, 0, "every mbuf freed exactly once");
    assert_eq!(q.clean(usize::MAX).packets, 0, "nothing completes twice");
    assert_eq!(m.stats().tx_frames, 1000);
    assert_eq!(m.stats().mdd_events, 0);
    assert!(q.next_to_use() < 64);
    drop(q);
    drop(port);
    drop(m); // joins the engine, flushes the pcap
    let recs = read_file(&path).unwrap();
    assert_eq!(recs.len(), 1000);
    for (r, f) in recs.iter().zip(&frames) {
        assert_eq!(&r.data, f, "frame bytes on the wire");
    }
}

#[test]
fn desc_done_is_written_only_on_rs_descriptors() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut port = configured(&m, 128, 0);
    port.start().unwrap();
    let mut q = port.ice_tx_queue(0).unwrap();
    let mut pool = pool(256);
    let mut b = Burst::new();
    for s in 0..40 {
        b.push(mbuf(&mut pool, &frame(s, 64))).unwrap();
    }
    assert_eq!(q.tx_burst(&mut b), 40);
    wait_until("model sent 40", || m.stats().tx_frames == 40);
    wait_until("write-back", || {
        q.descriptor(39).1 & TXD_QW1_DTYPE_M == TX_DESC_DTYPE_DESC_DONE
    });
    for i in 0..40u32 {
        let (_, qw1) = q.descriptor(i);
        let cmd = (qw1 >> TXD_QW1_CMD_S) & 0xFFF;
        assert!(cmd & TX_DESC_CMD_EOP != 0, "EOP on {i}");
        let rs = i == 31 || i == 39;
        assert_eq!(cmd & TX_DESC_CMD_RS != 0, rs, "RS on {i}");
        let dtype = qw1 & TXD_QW1_DTYPE_M;
        if rs {
            assert_eq!(dtype, TX_DESC_DTYPE_DESC_DONE, "DESC_DONE on {i}");
        } else {
            assert_eq!(dtype, TX_DESC_DTYPE_DATA, "no write-back on {i}");
        }
        assert_eq!((qw1 & TXD_QW1_TX_BUF_SZ_M) >> TXD_QW1_TX_BUF_SZ_S, 64);
    }
    // Two RS batches: completions come in 32 + 8.
    let c = q.clean(32);
    assert_eq!(c.packets, 32);
    assert_eq!(c.bytes, 32 * 64);
    assert_eq!(q.clean(usize::MAX).packets, 8);
}

#[test]
fn short_frames_are_padded_to_17_bytes() {
    let path = tmp_pcap("pad.pcap");
    let m = model(Sink::Pcap(path.clone()), false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    let mut q = port.ice_tx_queue(0).unwrap();
    let mut pool = pool(64);
    let short = frame(7, 10);
    send_all(&mut q, &mut pool, std::slice::from_ref(&short), 1);
    assert_eq!(m.stats().mdd_events, 0);
    drop(q);
    drop(port);
    drop(m);
    let recs = read_file(&path).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].data.len(), TX_MIN_PKT_LEN);
    assert_eq!(&recs[0].data[..10], &short[..]);
    assert!(recs[0].data[10..].iter().all(|&b| b == 0));
}

#[test]
fn chained_mbufs_use_one_descriptor_per_segment() {
    let path = tmp_pcap("chain.pcap");
    let m = model(Sink::Pcap(path.clone()), false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    let mut q = port.ice_tx_queue(0).unwrap();
    let mut pool = pool(64);
    let f = frame(1, 300);
    let mut head = mbuf(&mut pool, &f[..100]);
    head.chain(mbuf(&mut pool, &f[100..250]));
    head.chain(mbuf(&mut pool, &f[250..]));
    // A 9-segment chain is more than ICE_MAX_BUF_TXD: dropped and counted.
    let mut big = mbuf(&mut pool, &f[..20]);
    for k in 0..8 {
        big.chain(mbuf(&mut pool, &f[20 + k * 10..30 + k * 10]));
    }
    let mut b = Burst::new();
    b.push(head).unwrap();
    b.push(big).unwrap();
    assert_eq!(q.tx_burst(&mut b), 2);
    assert_eq!(q.next_to_use(), 3, "three descriptors for three segments");
    let (_, qw1) = q.descriptor(0);
    assert_eq!((qw1 >> TXD_QW1_CMD_S) & TX_DESC_CMD_EOP, 0);
    let (_, qw1) = q.descriptor(2);
    assert!((qw1 >> TXD_QW1_CMD_S) & TX_DESC_CMD_EOP != 0);
    let mut done = 0;
    wait_until("completion", || {
        done += q.clean(usize::MAX).packets;
        done == 2
    });
    assert_eq!(q.stats().drops.get(), 1);
    assert_eq!(q.stats().packets.get(), 1);
    assert_eq!(pool.stats().in_use, 0);
    drop(q);
    drop(port);
    drop(m);
    let recs = read_file(&path).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].data, f);
}

#[test]
fn vlan_insertion_via_l2tag1() {
    let path = tmp_pcap("vlan.pcap");
    let m = model(Sink::Pcap(path.clone()), false, Speed::G100);
    let mut port = configured(&m, 64, ol::TX_VLAN);
    port.start().unwrap();
    let mut q = port.ice_tx_queue(0).unwrap();
    let mut pool = pool(64);
    let f = frame(3, 64);
    let mut mb = mbuf(&mut pool, &f);
    mb.set_ol_flags(ol::TX_VLAN);
    mb.set_vlan_tci(0x2123);
    let mut b = Burst::new();
    b.push(mb).unwrap();
    q.tx_burst(&mut b);
    wait_until("completion", || q.clean(usize::MAX).packets == 1);
    drop(q);
    drop(port);
    drop(m);
    let recs = read_file(&path).unwrap();
    let d = &recs[0].data;
    assert_eq!(d.len(), 68);
    assert_eq!(&d[..12], &f[..12]);
    assert_eq!(&d[12..16], &[0x81, 0x00, 0x21, 0x23]);
    assert_eq!(&d[16..], &f[12..]);
}

#[test]
fn safe_mode_offers_no_checksum_offload() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut port = probe(&m);
    let info = port.info();
    assert_eq!(
        info.tx_offload_capa & (ol::TX_IP_CKSUM | ol::TX_UDP_CKSUM | ol::TX_TCP_CKSUM | ol::TX_TSO),
        0
    );
    assert_eq!(info.tx_offload_capa, ol::TX_VLAN);
    assert_eq!(info.line_rate_bps, 100_000_000_000);
    let e = port
        .configure(&PortConfig {
            tx_offloads: ol::TX_UDP_CKSUM,
            tx_ring_size: 1024,
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("udp-cksum"), "{e}");
    for bad in [32u16, 100, 8192] {
        let e = port
            .configure(&PortConfig {
                tx_ring_size: bad,
                ..Default::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains("tx_ring_size"), "{e}");
    }
}

fn mdd_case(
    post: impl FnOnce(&mut pmd_ice::tx::IceTxQueue<pmd_ice::IceModel>, &pmd_ice::IceModel),
    expect: &str,
) {
    let m = model(Sink::Count, false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    let mut q = port.ice_tx_queue(0).unwrap();
    let mut pool = pool(128);
    // Some good traffic first.
    send_all(&mut q, &mut pool, &[frame(0, 64), frame(1, 64)], 2);
    post(&mut q, &m);
    wait_until("MDD raised", || m.stats().mdd_events == 1);
    assert!(!m.tx_queue_running(0));
    let mut ev = None;
    wait_until("MDD surfaced", || {
        ev = q.poll_event();
        ev.is_some()
    });
    let ev = ev.unwrap();
    assert_eq!(ev.kind, "mdd");
    assert_eq!(ev.queue, Some(0));
    assert!(ev.detail.contains(expect), "{}", ev.detail);
    assert!(ev.detail.contains("re-enabled"), "{}", ev.detail);
    assert!(m.tx_queue_running(0), "queue re-enabled");
    // The port reports it too.
    // The port reports it too: the global latch (naming the queue) and the
    // per-PF latch (PF_MDET_TX_TCLAN), both read and cleared.
    let pe = port.events();
    let mdd: Vec<_> = pe.iter().filter(|e| e.kind == "mdd").collect();
    assert_eq!(mdd.len(), 1, "{pe:?}");
    assert!(mdd[0].detail.contains(expect));
    assert!(
        mdd[0].detail.contains("GL_MDET_TX_TCLAN"),
        "{}",
        mdd[0].detail
    );
    assert!(
        pe.iter()
            .any(|e| e.kind == "mdd_pf" && e.detail.contains("PF_MDET_TX_TCLAN")),
        "{pe:?}"
    );
    assert!(port.events().is_empty(), "latches cleared");
    // The queue works again.
    let frames: Vec<_> = (10..110).map(|s| frame(s, 64)).collect();
    assert_eq!(send_all(&mut q, &mut pool, &frames, 32), 100);
    assert_eq!(m.stats().tx_frames, 102);
    assert_eq!(pool.stats().in_use, 0);
    assert!(port
        .xstats()
        .iter()
        .any(|(k, v)| k == "vsi_tx_errors" && *v == 1));
}

fn data_desc(size: u64, cmd: u64) -> u64 {
    TX_DESC_DTYPE_DATA | (cmd << TXD_QW1_CMD_S) | (size << TXD_QW1_TX_BUF_SZ_S)
}

#[test]
fn mdd_zero_length_buffer() {
    let buf = wirespeed::eal::DmaRegion::alloc(4096).unwrap();
    mdd_case(
        |q, _| {
            assert!(
                q.post_raw_descriptor(buf.iova(), data_desc(0, TX_DESC_CMD_EOP | TX_DESC_CMD_RS))
            )
        },
        "zero-length",
    );
}

#[test]
fn mdd_runt_frame() {
    let buf = wirespeed::eal::DmaRegion::alloc(4096).unwrap();
    mdd_case(
        |q, _| {
            assert!(
                q.post_raw_descriptor(buf.iova(), data_desc(10, TX_DESC_CMD_EOP | TX_DESC_CMD_RS))
            )
        },
        "shorter than 17",
    );
}

#[test]
fn mdd_bad_dtype() {
    let buf = wirespeed::eal::DmaRegion::alloc(4096).unwrap();
    mdd_case(
        |q, _| assert!(q.post_raw_descriptor(buf.iova(), data_desc(64, TX_DESC_CMD_EOP) | 0x5)),
        "bad descriptor type",
    );
}

#[test]
fn mdd_more_than_eight_descriptors() {
    let buf = wirespeed::eal::DmaRegion::alloc(4096).unwrap();
    mdd_case(
        |q, _| {
            for _ in 0..8 {
                assert!(q.post_raw_descriptor(buf.iova(), data_desc(64, 0)));
            }
            assert!(
                q.post_raw_descriptor(buf.iova(), data_desc(64, TX_DESC_CMD_EOP | TX_DESC_CMD_RS))
            );
        },
        "more than 8",
    );
}

#[test]
fn mdd_dma_fault_reads_nothing() {
    mdd_case(
        |q, _| {
            assert!(q.post_raw_descriptor(0x1000, data_desc(64, TX_DESC_CMD_EOP | TX_DESC_CMD_RS)))
        },
        "DMA fault",
    );
}

#[test]
fn mdd_doorbell_beyond_ring() {
    mdd_case(|_, m| m.write32(qtx_comm_dbell(0), 1000), "beyond the ring");
}

#[test]
fn stop_disables_and_start_reenables() {
    let m = model(Sink::Count, false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    let mut q = port.ice_tx_queue(0).unwrap();
    let mut pool = pool(128);
    let mut b = Burst::new();
    b.push(mbuf(&mut pool, &frame(0, 64))).unwrap();
    assert_eq!(q.tx_burst(&mut b), 0, "not started: nothing taken");
    assert_eq!(b.len(), 1);
    b.clear();
    port.start().unwrap();
    assert!(m.tx_queue_running(0));
    send_all(&mut q, &mut pool, &[frame(1, 64)], 1);
    port.stop().unwrap();
    assert!(!m.tx_queue_running(0));
    port.start().unwrap();
    assert!(m.tx_queue_running(0));
    let frames: Vec<_> = (0..70).map(|s| frame(s, 64)).collect();
    assert_eq!(send_all(&mut q, &mut pool, &frames, 32), 70);
    assert_eq!(pool.stats().in_use, 0);
}

#[test]
fn xstats_accumulate_40_bit_counters_across_wrap() {
    let m = model(Sink::Count, false, Speed::G100);
    m.preset_stat_counters(STAT40_MASK - 1000);
    let mut port = configured(&m, 256, 0);
    port.start().unwrap();
    let mut q = port.ice_tx_queue(1).unwrap();
    let mut pool = pool(256);
    let frames: Vec<_> = (0..100).map(|s| frame(s, 100)).collect();
    send_all(&mut q, &mut pool, &frames, 32);
    let x: std::collections::HashMap<_, _> = port.xstats().into_iter().collect();
    assert_eq!(
        x["port_tx_good_bytes"],
        100 * 104,
        "bytes + FCS, across the 2^40 wrap"
    );
    assert_eq!(x["port_tx_unicast_packets"], 100);
    assert_eq!(x["vsi_tx_good_bytes"], 100 * 104);
    assert_eq!(x["vsi_tx_unicast_packets"], 100);
    assert_eq!(x["tx_q1_packets"], 100);
    assert_eq!(x["tx_packets"], 100);
    assert!(
        m.read32(regs::glprt_gotcl(
            pmd_ice::model::firmware_consts::LPORT as u32
        )) < 10_000,
        "the register wrapped"
    );
}

#[test]
fn pacing_spaces_frames_at_the_link_rate() {
    let path = tmp_pcap("pace.pcap");
    let m = model(Sink::Pcap(path.clone()), true, Speed::G10);
    let mut port = configured(&m, 512, 0);
    port.start().unwrap();
    let mut q = port.ice_tx_queue(0).unwrap();
    let mut pool = pool(512);
    let frames: Vec<_> = (0..200).map(|s| frame(s, 60)).collect();
    send_all(&mut q, &mut pool, &frames, 200);
    drop(q);
    drop(port);
    drop(m);
    let recs = read_file(&path).unwrap();
    assert_eq!(recs.len(), 200);
    // Modelled wire time: (60 + 24) bytes at 10 Gbit/s = 67.2 ns per frame.
    let span = recs[199].ts_ns - recs[0].ts_ns;
    assert!(
        span >= 199 * 66,
        "timestamps {span} ns apart for 199 frame times"
    );
}

#[test]
fn loopback_receives_own_frames() {
    let m = model(Sink::Loopback, false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    let mut txq = port.ice_tx_queue(0).unwrap();
    let mut rxq = port.ice_rx_queue(0).unwrap();
    let mut pool = pool(1024);
    let mut got = Burst::new();
    use wirespeed::ethdev::RxQueue;
    assert_eq!(rxq.rx_burst(&mut pool, &mut got, 32), 0); // fills the ring, enables
    let frames: Vec<_> = (0..300).map(|s| frame(s, 60 + s as usize)).collect();
    let mut seen = Vec::new();
    let mut i = 0;
    let mut b = Burst::new();
    wait_until("all frames looped back", || {
        while b.len() < 16 && i < frames.len() {
            b.push(mbuf(&mut pool, &frames[i])).unwrap();
            i += 1;
        }
        txq.tx_burst(&mut b);
        txq.clean(usize::MAX);
        rxq.rx_burst(&mut pool, &mut got, 32);
        while let Some(m) = got.pop_front() {
            seen.push(m.data().to_vec());
        }
        seen.len() == frames.len()
    });
    assert_eq!(seen, frames);
    assert_eq!(m.stats().rx_frames, 300);
    assert_eq!(rxq.stats().packets.get(), 300);
}

#[test]
fn registry_opens_the_model() {
    let mut reg = wirespeed::ethdev::Registry::with_builtins();
    pmd_ice::register(&mut reg);
    let mut p = reg
        .open("ice-model?speed=10g&sink=count&pacing=off")
        .unwrap();
    assert_eq!(p.info().driver, "ice");
    p.configure(&PortConfig::default()).unwrap();
    p.start().unwrap();
    assert_eq!(p.link().speed_mbps, 10_000);
    assert_eq!(p.info().line_rate_bps, 10_000_000_000);
    // Through the trait objects, as the engine uses it.
    let mut q = p.tx_queue(0).unwrap();
    let mut pool = pool(64);
    let frames: Vec<_> = (0..10).map(|s| frame(s, 64)).collect();
    assert_eq!(send_all(&mut *q, &mut pool, &frames, 10), 10);
    assert!(p.tx_queue(0).is_err(), "each queue is handed out once");
    let x: std::collections::HashMap<_, _> = p.xstats().into_iter().collect();
    assert_eq!(x["port_tx_unicast_packets"], 10);
    drop(q);
    let e = reg.open("ice-model?speed=40g").err().unwrap();
    assert!(e.to_string().contains("10g, 25g or 100g"), "{e}");
    let e = reg.open("ice-model?sinc=count").err().unwrap();
    assert!(e.to_string().contains("unknown parameter 'sinc'"), "{e}");
    let e = reg
        .open("ice-model?sink=pcap:/nonexistent-dir/x.pcap")
        .err()
        .unwrap();
    assert!(e.to_string().contains("/nonexistent-dir/x.pcap"), "{e}");
}

#[test]
fn vfio_driver_reports_bad_addresses_clearly() {
    let mut reg = wirespeed::ethdev::Registry::with_builtins();
    pmd_ice::register(&mut reg);
    let e = reg.open("ice:not-a-bdf").err().unwrap();
    assert!(
        matches!(e, wirespeed::ethdev::EthdevError::BadSpec { .. }),
        "{e}"
    );
    let e = reg.open("ice").err().unwrap();
    assert!(e.to_string().contains("ice:BDF"), "{e}");
    // A well-formed address with no device behind it: a device error, no panic.
    let e = reg.open("ice:0000:ff:1f.7").err().unwrap();
    assert!(e.to_string().contains("0000:ff:1f.7"), "{e}");
}

#[test]
fn full_ring_leaves_packets_with_the_caller() {
    let m = model(Sink::Count, true, Speed::G10);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    let mut q = port.ice_tx_queue(0).unwrap();
    let mut pool = pool(512);
    let mut b = Burst::new();
    for s in 0..200 {
        b.push(mbuf(&mut pool, &frame(s, 1500))).unwrap();
    }
    let taken = q.tx_burst(&mut b);
    assert!((63..200).contains(&taken), "took {taken}");
    assert_eq!(
        taken + b.len(),
        200,
        "the rest stay with the caller, in order"
    );
    assert!(q.free_slots() < 64);
    let mut done = 0u64;
    let mut sent = taken as u64;
    wait_until("everything sent", || {
        sent += q.tx_burst(&mut b) as u64;
        done += q.clean(usize::MAX).packets as u64;
        done == 200
    });
    assert_eq!(sent, 200);
    assert_eq!(q.stats().packets.get(), 200);
}

#[test]
fn chain_with_empty_segment_and_short_total_is_padded() {
    let path = tmp_pcap("chainpad.pcap");
    let m = model(Sink::Pcap(path.clone()), false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    let mut q = port.ice_tx_queue(0).unwrap();
    let mut pool = pool(64);
    let f = frame(9, 12);
    let mut head = mbuf(&mut pool, &f);
    head.chain(pool.alloc().unwrap()); // empty tail segment
    let mut b = Burst::new();
    b.push(head).unwrap();
    assert_eq!(q.tx_burst(&mut b), 1);
    wait_until("completion", || q.clean(usize::MAX).packets == 1);
    assert_eq!(
        m.stats().mdd_events,
        0,
        "no zero-length descriptor reached the device"
    );
    drop(q);
    drop(port);
    drop(m);
    let recs = read_file(&path).unwrap();
    assert_eq!(recs[0].data.len(), TX_MIN_PKT_LEN);
    assert_eq!(&recs[0].data[..12], &f[..]);
}

/// Completion reports the bytes the netdev layer queued to BQL
/// (`netdev_tx_sent_queue` / `netdev_tx_completed_queue` must match), even
/// for a frame the driver padded to `ICE_MIN_TX_LEN`, and a dropped frame's
/// bytes too.
#[test]
fn completed_bytes_are_the_bytes_queued_for_padded_and_dropped_frames() {
    use wirespeed::eal::tsc::Tsc;
    use wirespeed::netdev::{NetdevQueue, TxqConfig};
    let m = model(Sink::Count, false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    let q = port.ice_tx_queue(0).unwrap();
    let mut pool = pool(64);
    let mut nq = NetdevQueue::new(
        0,
        "ice-test",
        Box::new(q),
        &TxqConfig::default(),
        Tsc::global(),
    )
    .unwrap();
    let mut b = Burst::new();
    for (s, len) in [10usize, 60, 12, 16, 17].into_iter().enumerate() {
        b.push(mbuf(&mut pool, &frame(s as u32, len))).unwrap();
    }
    // A chain of 9 segments: more buffers than ICE_MAX_BUF_TXD, dropped.
    let mut chain = mbuf(&mut pool, &frame(9, 60));
    for _ in 0..8 {
        chain.chain(mbuf(&mut pool, &[0u8; 10]));
    }
    b.push(chain).unwrap();
    nq.xmit_burst(&mut b);
    assert!(nq.flush(5_000_000_000), "{}", nq.snapshot());
    let s = nq.snapshot();
    assert_eq!(s.bql.inflight, 0, "{s}");
    let c = s.counters;
    assert_eq!(c.sent_packets, 6);
    assert_eq!(c.completed_packets, 6);
    assert_eq!(c.sent_bytes, 10 + 60 + 12 + 16 + 17 + 140);
    assert_eq!(c.completed_bytes, c.sent_bytes, "completed what was queued");
    assert_eq!(nq.driver().stats().drops.get(), 1);
    assert_eq!(nq.driver().stats().packets.get(), 5);
    drop(nq);
    assert_eq!(pool.stats().in_use, 0);
}

/// `RxQueue::stop` (`ice_clean_rx_ring`) returns every posted buffer; the
/// next `rx_burst` fills the ring, re-enables the queue and receives again.
#[test]
fn rx_stop_returns_posted_buffers_and_rx_restarts() {
    use wirespeed::ethdev::RxQueue;
    let m = model(Sink::Loopback, false, Speed::G100);
    let mut port = configured(&m, 64, 0);
    port.start().unwrap();
    let mut txq = port.ice_tx_queue(0).unwrap();
    let mut rxq = port.ice_rx_queue(0).unwrap();
    let mut pool = pool(512);
    let mut got = Burst::new();
    let mut seq = 0u32;
    for round in 0..3 {
        assert_eq!(rxq.rx_burst(&mut pool, &mut got, 32), 0);
        assert!(
            pool.stats().in_use >= 128,
            "round {round}: the ring holds its buffers"
        );
        let mut b = Burst::new();
        for _ in 0..20 {
            b.push(mbuf(&mut pool, &frame(seq, 100))).unwrap();
            seq += 1;
        }
        assert_eq!(txq.tx_burst(&mut b), 20);
        let mut n = 0;
        wait_until("frames looped back", || {
            txq.clean(usize::MAX);
            n += rxq.rx_burst(&mut pool, &mut got, 32);
            got.clear();
            n == 20
        });
        wait_until("tx completions", || {
            txq.clean(usize::MAX);
            txq.in_flight() == 0
        });
        rxq.stop();
        assert_eq!(pool.stats().in_use, 0, "round {round}: every buffer home");
    }
    assert_eq!(rxq.stats().packets.get(), 60);
}
