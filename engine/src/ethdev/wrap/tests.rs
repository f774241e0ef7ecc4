//! The wrappers on the software ports: captures are exact, faults keep
//! packet conservation, pools come back full.

use super::*;
use crate::eal::dma::{set_page_mode, PageMode};
use crate::ethdev::pcap::read_file;
use crate::mbuf::{Burst, Mempool, PoolConfig};
use std::collections::HashMap;

fn pool(n: u32) -> Mempool {
    set_page_mode(PageMode::Small);
    Mempool::new(&PoolConfig {
        size: n,
        ..Default::default()
    })
    .unwrap()
}

fn frames(pool: &mut Mempool, from: u32, n: u32, len: usize) -> Burst {
    let mut b = Burst::new();
    for i in from..from + n {
        let mut m = pool.alloc().unwrap();
        let mut d = vec![0u8; len];
        d[..4].copy_from_slice(&i.to_be_bytes());
        m.extend_from_slice(&d).unwrap();
        b.push(m).unwrap();
    }
    b
}

fn xs(p: &dyn Port) -> HashMap<String, u64> {
    p.xstats().into_iter().collect()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("wirespeed-wrap-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn tap_on_null_captures_every_frame_once() {
    let mut pool = pool(256);
    let path = tmp("null.pcap");
    let reg = Registry::with_builtins();
    let mut p = reg.open(&format!("tap:{}+null", path.display())).unwrap();
    p.configure(&PortConfig::default()).unwrap();
    let mut tx = p.tx_queue(0).unwrap();
    p.start().unwrap();
    let mut sent = 0u64;
    for round in 0..10 {
        let mut b = frames(&mut pool, round * 20, 20, 60 + round as usize);
        assert_eq!(tx.tx_burst(&mut b), 20);
        sent += tx.clean(256).packets as u64;
    }
    p.stop().unwrap();
    drop(tx);
    assert_eq!(sent, 200);
    assert_eq!(pool.stats().in_use, 0);
    let recs = read_file(&path).unwrap();
    assert_eq!(recs.len(), 200);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.data[..4], (i as u32).to_be_bytes(), "record {i} in order");
        assert_eq!(r.data.len(), 60 + i / 20);
    }
    assert_eq!(xs(p.as_ref())["tap_tx_frames"], 200);
}

#[test]
fn tap_writes_only_what_a_full_ring_took() {
    let mut pool = pool(64);
    let path = tmp("ring.pcap");
    let reg = Registry::with_builtins();
    let mut a = reg
        .open(&format!("tap:{}+ring:wrap-tap", path.display()))
        .unwrap();
    let mut b = reg.open("ring:wrap-tap").unwrap();
    let conf = PortConfig {
        tx_ring_size: 8,
        rx_ring_size: 8,
        ..Default::default()
    };
    a.configure(&conf).unwrap();
    b.configure(&conf).unwrap();
    let mut atx = a.tx_queue(0).unwrap();
    let mut arx = a.rx_queue(0).unwrap();
    let mut brx = b.rx_queue(0).unwrap();
    let mut btx = b.tx_queue(0).unwrap();
    let mut burst = frames(&mut pool, 0, 12, 64);
    assert_eq!(atx.tx_burst(&mut burst), 8, "ring of 8");
    assert_eq!(atx.tx_burst(&mut burst), 0, "still full");
    let mut got = Burst::new();
    assert_eq!(brx.rx_burst(&mut pool, &mut got, 64), 8);
    assert_eq!(atx.tx_burst(&mut burst), 4);
    assert_eq!(brx.rx_burst(&mut pool, &mut got, 64), 4);
    // The other direction: what B sends, A's tap sees arrive.
    let mut back = frames(&mut pool, 100, 3, 70);
    assert_eq!(btx.tx_burst(&mut back), 3);
    let mut rx = Burst::new();
    assert_eq!(arx.rx_burst(&mut pool, &mut rx, 64), 3);
    drop((got, rx));
    a.stop().unwrap();
    let recs = read_file(&path).unwrap();
    let ids: Vec<u32> = recs
        .iter()
        .map(|r| u32::from_be_bytes(r.data[..4].try_into().unwrap()))
        .collect();
    assert_eq!(ids, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 100, 101, 102]);
    let x = xs(a.as_ref());
    assert_eq!((x["tap_tx_frames"], x["tap_rx_frames"]), (12, 3));
}

/// Sends `n` frames through `tx` in bursts of 32, cleaning as it goes, and
/// returns (offered, reported by clean).
fn push(
    tx: &mut dyn TxQueue,
    pool: &mut Mempool,
    n: u32,
    mut far: impl FnMut(&mut Mempool),
) -> (u64, u64) {
    let (mut offered, mut reported) = (0u64, 0u64);
    let mut i = 0;
    let mut spins = 0;
    while i < n {
        let k = 32.min(n - i);
        let mut b = frames(pool, i, k, 64);
        let took = tx.tx_burst(&mut b) as u32;
        offered += took as u64;
        i += took;
        drop(b);
        far(pool);
        reported += tx.clean(usize::MAX).packets as u64;
        spins += 1;
        assert!(spins < 1_000_000, "no progress");
    }
    for _ in 0..10_000 {
        far(pool);
        reported += tx.clean(usize::MAX).packets as u64;
        if reported == offered {
            break;
        }
    }
    (offered, reported)
}

#[test]
fn fault_drop_keeps_conservation_on_every_software_port() {
    let reg = Registry::with_builtins();
    let pcap = tmp("fault.pcap");
    for inner in [
        "null",
        &format!("pcap:{}", pcap.display()),
        "ring:wrap-fault",
    ] {
        let mut pool = pool(512);
        let spec = format!("fault:drop=0.1,busy=0.2,seed=7+{inner}");
        let mut p = reg.open(&spec).unwrap();
        let mut far = if inner.starts_with("ring") {
            Some(reg.open("ring:wrap-fault").unwrap())
        } else {
            None
        };
        p.configure(&PortConfig::default()).unwrap();
        let mut tx = p.tx_queue(0).unwrap();
        let mut far_rx = far.as_mut().map(|f| {
            f.configure(&PortConfig::default()).unwrap();
            f.rx_queue(0).unwrap()
        });
        let (offered, reported) = push(tx.as_mut(), &mut pool, 5000, |pool| {
            if let Some(rx) = far_rx.as_mut() {
                let mut got = Burst::new();
                rx.rx_burst(pool, &mut got, 256);
            }
        });
        let s = p.stats();
        let x = xs(p.as_ref());
        assert_eq!(offered, 5000, "{spec}");
        assert_eq!(reported, offered, "{spec}: every packet reported once");
        assert_eq!(s.tx.packets + s.tx.drops + s.tx.errors, offered, "{spec}");
        assert_eq!(s.tx.drops, x["fault_drop"], "{spec}: one drop counter");
        assert!((400..600).contains(&x["fault_drop"]), "{spec}: {x:?}");
        assert!(x["fault_busy"] > 0, "{spec}: {x:?}");
        drop(tx);
        drop(far_rx);
        assert_eq!(pool.stats().in_use, 0, "{spec}: pool full");
    }
}

#[test]
fn fault_schedule_is_seeded_and_reorders_corrupts_and_delays() {
    let reg = Registry::with_builtins();
    let run = |seed: u64| {
        let mut pool = pool(128);
        let mut a = reg
            .open(&format!(
                "fault:reorder=0.2,corrupt=0.1,delay_us=2000,seed={seed}+ring:wrap-seed{seed}"
            ))
            .unwrap();
        let mut b = reg.open(&format!("ring:wrap-seed{seed}")).unwrap();
        a.configure(&PortConfig::default()).unwrap();
        b.configure(&PortConfig::default()).unwrap();
        let mut tx = a.tx_queue(0).unwrap();
        let mut rx = b.rx_queue(0).unwrap();
        let mut burst = frames(&mut pool, 0, 64, 64);
        assert_eq!(tx.tx_burst(&mut burst), 64);
        let mut got = Burst::new();
        assert_eq!(rx.rx_burst(&mut pool, &mut got, 256), 0, "held for 2 ms");
        let t0 = std::time::Instant::now();
        while got.len() < 64 && t0.elapsed().as_secs() < 5 {
            tx.clean(256);
            rx.rx_burst(&mut pool, &mut got, 256);
        }
        assert!(t0.elapsed().as_micros() >= 1000);
        let ids: Vec<u32> = got
            .iter()
            .map(|m| u32::from_be_bytes(m.data()[..4].try_into().unwrap()))
            .collect();
        let corrupt = got.iter().filter(|m| m.data()[63] != 0).count() as u64;
        let x = xs(a.as_ref());
        assert_eq!(x["fault_corrupt"], corrupt);
        assert_eq!(x["fault_delay"], 64);
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, (0..64).collect::<Vec<_>>(), "nothing lost");
        assert_eq!(ids != sorted, x["fault_reorder"] > 0);
        drop(got);
        assert_eq!(tx.clean(256).packets, 64);
        (ids, corrupt)
    };
    assert_eq!(run(5), run(5), "same seed, same faults");
    assert_ne!(run(5), run(6));
}

#[test]
fn fault_stall_withholds_completions_until_reset() {
    let mut pool = pool(2048);
    let reg = Registry::with_builtins();
    let mut p = reg.open("fault:stall=1,stall_ms=60000+null").unwrap();
    p.configure(&PortConfig {
        tx_ring_size: 64,
        ..Default::default()
    })
    .unwrap();
    let mut tx = p.tx_queue(0).unwrap();
    let mut b = frames(&mut pool, 0, 100, 64);
    assert_eq!(tx.tx_burst(&mut b), 64, "the stalled ring fills");
    assert_eq!(tx.clean(256), Completed::default(), "stalled");
    assert_eq!(tx.free_slots(), 0);
    let c = tx.reset().expect("the fault layer resets");
    assert_eq!(c.packets, 64, "everything the stall withheld is reported");
    assert_eq!(xs(p.as_ref())["fault_reset"], 1);
    drop(b);
    drop(tx);
    assert_eq!(pool.stats().in_use, 0);
}

#[test]
fn fault_rx_dup_and_fcs_are_counted_by_the_receiver() {
    let reg = Registry::with_builtins();
    let mut pool = pool(1024);
    // B's RX is wrapped: what A sends arrives duplicated or with a bad FCS.
    let mut a = reg.open("ring:wrap-rxfault").unwrap();
    let mut b = reg
        .open("fault:dup=0.2,fcs=0.1,seed=3+ring:wrap-rxfault")
        .unwrap();
    a.configure(&PortConfig::default()).unwrap();
    b.configure(&PortConfig::default()).unwrap();
    let mut tx = a.tx_queue(0).unwrap();
    let mut rx = b.rx_queue(0).unwrap();
    let mut seen: HashMap<u32, u32> = HashMap::new();
    for round in 0..20 {
        let mut burst = frames(&mut pool, round * 50, 50, 64);
        assert_eq!(tx.tx_burst(&mut burst), 50);
        let mut got = Burst::new();
        while rx.rx_burst(&mut pool, &mut got, 64) > 0 {
            for m in got.iter() {
                *seen
                    .entry(u32::from_be_bytes(m.data()[..4].try_into().unwrap()))
                    .or_default() += 1;
            }
            got.clear();
        }
        tx.clean(256);
    }
    let x = xs(b.as_ref());
    let s = b.stats();
    let dups = seen.values().filter(|&&n| n == 2).count() as u64;
    let lost = 1000 - seen.len() as u64;
    assert!(seen.values().all(|&n| n <= 2));
    assert_eq!(x["fault_dup"], dups, "{x:?}");
    assert_eq!(x["fault_fcs"], lost, "{x:?}");
    assert_eq!(x["rx_crc_errors"], lost);
    assert!(
        (100..300).contains(&dups) && (50..150).contains(&lost),
        "{x:?}"
    );
    // The receiver's counters: delivered (with the copies) + CRC errors.
    assert_eq!(s.rx.errors, lost);
    assert_eq!(s.rx.packets, 1000 - lost + dups);
    assert_eq!(s.rx.bytes, 64 * (1000 - lost + dups));
    assert_eq!(x["fault_dup_nomem"], 0);
    drop((tx, rx));
    assert_eq!(pool.stats().in_use, 0, "copies and discards all home");
}

#[test]
fn fault_dup_without_buffers_is_counted_not_made() {
    let reg = Registry::with_builtins();
    let mut pool = pool(16);
    let mut a = reg.open("ring:wrap-dupdry").unwrap();
    let mut b = reg.open("fault:dup=1+ring:wrap-dupdry").unwrap();
    a.configure(&PortConfig::default()).unwrap();
    b.configure(&PortConfig::default()).unwrap();
    let mut tx = a.tx_queue(0).unwrap();
    let mut rx = b.rx_queue(0).unwrap();
    let mut burst = frames(&mut pool, 0, 12, 64);
    assert_eq!(tx.tx_burst(&mut burst), 12);
    let mut got = Burst::new();
    let n = rx.rx_burst(&mut pool, &mut got, 64);
    // 4 buffers left: 4 copies, 8 not made.
    assert_eq!(n, 16);
    let x = xs(b.as_ref());
    assert_eq!((x["fault_dup"], x["fault_dup_nomem"]), (4, 8));
    drop(got);
    drop((tx, rx));
    assert_eq!(pool.stats().in_use, 0);
}

#[test]
fn fault_refuse_hands_back_the_rest_of_the_burst_in_order() {
    let reg = Registry::with_builtins();
    let mut pool = pool(512);
    let mut a = reg
        .open("fault:refuse=0.05,seed=11+ring:wrap-refuse")
        .unwrap();
    let mut b = reg.open("ring:wrap-refuse").unwrap();
    a.configure(&PortConfig::default()).unwrap();
    b.configure(&PortConfig::default()).unwrap();
    let mut tx = a.tx_queue(0).unwrap();
    let mut rx = b.rx_queue(0).unwrap();
    let mut order = Vec::new();
    let mut next = 0u32;
    let mut partial = 0;
    let mut pending = Burst::new();
    while order.len() < 2000 {
        while next < 2000 && pending.len() < 32 {
            let mut f = frames(&mut pool, next, 1, 64);
            pending.push(f.pop_front().unwrap()).unwrap();
            next += 1;
        }
        let before = pending.len();
        let took = tx.tx_burst(&mut pending);
        if took < before {
            partial += 1;
            // What was not taken is the tail of the burst, unchanged.
            assert_eq!(pending.len(), before - took);
        }
        let mut got = Burst::new();
        rx.rx_burst(&mut pool, &mut got, 256);
        order.extend(
            got.iter()
                .map(|m| u32::from_be_bytes(m.data()[..4].try_into().unwrap())),
        );
        tx.clean(256);
    }
    assert_eq!(
        order,
        (0..2000).collect::<Vec<_>>(),
        "nothing lost or reordered"
    );
    let x = xs(a.as_ref());
    assert!(
        x["fault_refuse"] >= partial && partial > 10,
        "{x:?} {partial}"
    );
    assert_eq!(a.stats().tx.packets, 2000);
    drop((tx, rx, pending));
    assert_eq!(pool.stats().in_use, 0);
}

#[test]
fn fault_flap_takes_the_carrier_down_and_back() {
    let reg = Registry::with_builtins();
    let mut pool = pool(256);
    let mut p = reg.open("fault:flap_ms=20,flap_every_ms=40+null").unwrap();
    p.configure(&PortConfig::default()).unwrap();
    let mut tx = p.tx_queue(0).unwrap();
    p.start().unwrap();
    let t0 = std::time::Instant::now();
    let (mut downs, mut ups, mut was) = (0, 0, true);
    let mut held_while_down = false;
    while t0.elapsed().as_millis() < 130 {
        let up = tx.carrier();
        assert_eq!(up, p.link().up, "port and queue agree");
        if !up {
            // No link: taken, not sent.
            let mut b = frames(&mut pool, 0, 1, 64);
            if tx.tx_burst(&mut b) == 1 && tx.clean(64).packets == 0 {
                held_while_down = true;
            }
        }
        if up != was {
            if up {
                ups += 1;
            } else {
                downs += 1;
            }
            was = up;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(downs >= 2 && ups >= 2, "{downs} {ups}");
    assert!(held_while_down);
    assert!(xs(p.as_ref())["fault_flap"] >= 3);
    assert_eq!(p.link().speed_mbps, 0);
    // Back up: what was held is sent.
    while !tx.carrier() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let mut b = Burst::new();
    tx.tx_burst(&mut b);
    let mut done = 0;
    for _ in 0..100 {
        done += tx.clean(256).packets;
    }
    assert!(done > 0);
    drop(tx);
    assert_eq!(pool.stats().in_use, 0);
}

#[test]
fn fault_specs_refuse_nonsense_with_a_reason() {
    let reg = Registry::with_builtins();
    for (spec, want) in [
        ("fault:flap_every_ms=10+null", "needs flap_ms"),
        (
            "fault:flap_ms=10,flap_every_ms=10+null",
            "longer than flap_ms",
        ),
        ("fault:dup=1.5+null", "0..=1"),
        ("fault:refuse=x+null", "0..=1"),
        ("fault:fcs+null", "key=value"),
    ] {
        let e = reg.check(spec).err().unwrap().to_string();
        assert!(e.contains(want), "{spec}: {e}");
    }
    reg.check("fault:dup=0.1,fcs=0.1,refuse=0.1,flap_ms=5+null")
        .unwrap();
}

#[test]
fn pcap_port_and_tap_refuse_a_symlink_at_their_path() {
    let reg = Registry::with_builtins();
    let target = tmp("symlink-target");
    std::fs::write(&target, b"keep").unwrap();
    let link = tmp("symlink.pcap");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for spec in [
        format!("pcap:{}", link.display()),
        format!("tap:{}+null", link.display()),
    ] {
        let e = reg.open(&spec).err().expect("refused").to_string();
        assert!(e.contains("symbolic link"), "{spec}: {e}");
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
}

/// `tap:PATH.pcapng+…` writes pcapng that Wireshark's own tools read:
/// `capinfos` names the format and nanosecond resolution, `tshark` sees
/// every frame with its length and direction (EPB flags).
#[test]
fn tap_pcapng_is_read_by_tshark_with_directions() {
    let mut pool = pool(64);
    let path = tmp("both.pcapng");
    let reg = Registry::with_builtins();
    let mut a = reg
        .open(&format!("tap:{}+ring:wrap-ng", path.display()))
        .unwrap();
    let mut b = reg.open("ring:wrap-ng").unwrap();
    a.configure(&PortConfig::default()).unwrap();
    b.configure(&PortConfig::default()).unwrap();
    let mut atx = a.tx_queue(0).unwrap();
    let mut arx = a.rx_queue(0).unwrap();
    let mut brx = b.rx_queue(0).unwrap();
    let mut btx = b.tx_queue(0).unwrap();
    // Odd lengths: the EPB padding is exercised.
    let mut out = frames(&mut pool, 0, 5, 61);
    assert_eq!(atx.tx_burst(&mut out), 5);
    let mut got = Burst::new();
    assert_eq!(brx.rx_burst(&mut pool, &mut got, 64), 5);
    let mut back = frames(&mut pool, 100, 3, 70);
    assert_eq!(btx.tx_burst(&mut back), 3);
    let mut rx = Burst::new();
    assert_eq!(arx.rx_burst(&mut pool, &mut rx, 64), 3);
    drop((got, rx));
    a.stop().unwrap();
    let info = std::process::Command::new("capinfos")
        .arg(&path)
        .output()
        .expect("capinfos (wireshark-common, installed by scripts/test)");
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("- pcapng"), "{info}");
    assert!(info.contains("nanoseconds (9)"), "{info}");
    assert!(info.contains("Number of packets:   8"), "{info}");
    assert!(info.contains("Strict time order:   True"), "{info}");
    let o = std::process::Command::new("tshark")
        .args(["-r"])
        .arg(&path)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.len",
            "-e",
            "frame.packet_flags_direction",
        ])
        .output()
        .expect("tshark");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    let want: Vec<String> = std::iter::repeat_n("61\t0x00000002".to_string(), 5)
        .chain(std::iter::repeat_n("70\t0x00000001".to_string(), 3))
        .collect();
    assert_eq!(rows, want, "outbound = 2, inbound = 1");
}
