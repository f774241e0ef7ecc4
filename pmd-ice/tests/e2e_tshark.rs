//! End to end on the model: UDP/IPv4 frames (checksums computed in software,
//! as safe mode requires) through the ice PMD to `sink=pcap:` dissect cleanly
//! in tshark with checksum validation on, and arrive byte for byte.

mod common;

use common::*;
use pmd_ice::{Sink, Speed};
use std::process::Command;
use wirespeed::ethdev::pcap::read_file;
use wirespeed::ethdev::{Port, TxQueue};
use wirespeed::mbuf::Burst;

fn csum(data: &[u8], init: u32) -> u16 {
    let mut s = init;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            (c[0] as u16) << 8
        };
        s += w as u32;
    }
    while s > 0xFFFF {
        s = (s & 0xFFFF) + (s >> 16);
    }
    !(s as u16)
}

/// Ethernet + IPv4 + UDP, 198.18.0.1:1024 → 198.18.0.2:9 (RFC 2544 range).
fn udp_frame(seq: u16, payload_len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0xe8, 0x10, 0x01, 0x08, 0x00,
    ]);
    let tot = 20 + 8 + payload_len;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(tot as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&seq.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[198, 18, 0, 1]);
    ip[16..20].copy_from_slice(&[198, 18, 0, 2]);
    let c = csum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let ulen = 8 + payload_len;
    let mut udp = vec![0u8; ulen];
    udp[0..2].copy_from_slice(&1024u16.to_be_bytes());
    udp[2..4].copy_from_slice(&9u16.to_be_bytes());
    udp[4..6].copy_from_slice(&(ulen as u16).to_be_bytes());
    for (i, b) in udp[8..].iter_mut().enumerate() {
        *b = (i as u16 ^ seq) as u8;
    }
    let mut pseudo = 0u32;
    for w in [[198u8, 18], [0, 1], [198, 18], [0, 2]] {
        pseudo += u16::from_be_bytes(w) as u32;
    }
    pseudo += 17 + ulen as u32;
    let mut c = csum(&udp, pseudo);
    if c == 0 {
        c = 0xFFFF;
    }
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&udp);
    f
}

#[test]
fn udp_frames_through_ice_model_dissect_clean_in_tshark() {
    let path = tmp_pcap("tshark.pcap");
    let m = model(Sink::Pcap(path.clone()), false, Speed::G25);
    let mut port = configured(&m, 256, 0);
    port.start().unwrap();
    let mut q = port.ice_tx_queue(0).unwrap();
    let mut pool = pool(512);
    let frames: Vec<Vec<u8>> = (0..500u16)
        .map(|s| udp_frame(s, 18 + (s as usize * 7) % 1400))
        .collect();
    let mut i = 0;
    let mut done = 0u64;
    let mut b = Burst::new();
    wait_until("500 frames completed", || {
        while b.len() < 32 && i < frames.len() {
            b.push(mbuf(&mut pool, &frames[i])).unwrap();
            i += 1;
        }
        q.tx_burst(&mut b);
        done += q.clean(usize::MAX).packets as u64;
        done == 500
    });
    drop(q);
    drop(port);
    drop(m);
    let recs = read_file(&path).unwrap();
    assert_eq!(recs.len(), 500);
    for (r, f) in recs.iter().zip(&frames) {
        assert_eq!(&r.data, f);
    }
    let out = match Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&path)
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-T",
            "fields",
            "-E",
            "separator=/s",
            "-e",
            "frame.len",
            "-e",
            "ip.checksum.status",
            "-e",
            "udp.checksum.status",
            "-e",
            "_ws.malformed",
        ])
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tshark not available ({e}); byte-exact check done, dissection skipped");
            return;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 500);
    for (l, f) in lines.iter().zip(&frames) {
        assert_eq!(*l, format!("{} 1 1 ", f.len()), "tshark: {l}");
    }
}
