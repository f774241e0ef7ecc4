#![allow(dead_code)]

use pmd_ice::{IceModel, IcePort, ModelConfig, ProbeOptions, Sink, Speed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::ethdev::{Port, PortConfig};
use wirespeed::mbuf::{Mbuf, Mempool, PoolConfig};

pub fn model(sink: Sink, pacing: bool, speed: Speed) -> Arc<IceModel> {
    set_page_mode(PageMode::Small);
    Arc::new(
        IceModel::new(ModelConfig {
            sink,
            pacing,
            speed,
            ..Default::default()
        })
        .unwrap(),
    )
}

pub fn probe(m: &Arc<IceModel>) -> IcePort<IceModel> {
    IcePort::probe(
        "ice-test",
        m.clone(),
        0x8086,
        m.device_id(),
        &ProbeOptions {
            aq_len: 16,
            aq_timeout: Duration::from_secs(2),
        },
    )
    .unwrap()
}

pub fn configured(m: &Arc<IceModel>, ring: u16, offloads: u32) -> IcePort<IceModel> {
    let mut p = probe(m);
    p.configure(&PortConfig {
        nb_tx_queues: 2,
        nb_rx_queues: 1,
        tx_ring_size: ring,
        rx_ring_size: 128,
        tx_offloads: offloads,
        promiscuous: true,
        rss: None,
    })
    .unwrap();
    p
}

pub fn pool(n: u32) -> Mempool {
    set_page_mode(PageMode::Small);
    Mempool::new(&PoolConfig {
        name: "ice-test".into(),
        size: n,
        headroom: 128,
        data_room: 2048,
    })
    .unwrap()
}

/// A frame of `len` bytes: broadcast-free unicast Ethernet, ethertype 0x88B5,
/// sequence number at bytes 14..18, then a pattern.
pub fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    let hdr = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0xe8, 0x10, 0x01, 0x88, 0xb5,
    ];
    let n = hdr.len().min(len);
    f[..n].copy_from_slice(&hdr[..n]);
    if len >= 18 {
        f[14..18].copy_from_slice(&seq.to_be_bytes());
    }
    for (i, b) in f.iter_mut().enumerate().skip(18) {
        *b = (i as u32 ^ seq) as u8;
    }
    f
}

pub fn mbuf(pool: &mut Mempool, data: &[u8]) -> Mbuf {
    let mut m = pool.alloc().unwrap();
    m.extend_from_slice(data).unwrap();
    m
}

/// Polls `f` until it returns true; panics after 5 s (never hangs).
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        if t0.elapsed() > Duration::from_secs(5) {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

pub fn tmp_pcap(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pmd-ice-tests-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}
