//! Hostile input (issue 16's fuzzed-input part): random and mutated bytes
//! into every parser a user or a peer can reach — device specs (with
//! wrapper chains), pcap images, and the stack's receive path (Ethernet,
//! ARP, IPv4 with fragments, UDP, ICMP). The properties: no panic, no hang,
//! errors instead of crashes, every received frame counted, and every buffer
//! back in its pool afterwards. Cases per property: `PROPTEST_CASES`
//! (256 by default; `PROPTEST_CASES=1000000` for the long run).

use proptest::prelude::*;
use std::net::Ipv4Addr;
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::ethdev::{pcap, MacAddr, Registry};
use wirespeed::mbuf::{Mbuf, Mempool, PoolConfig};
use wirespeed::stack::{L2Xmit, PortConf, Stack, StackConfig, XmitDrop};

const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// The output boundary: frames the stack answers with are freed, counted.
struct Sink(std::rc::Rc<std::cell::Cell<u64>>);
impl L2Xmit for Sink {
    fn queue_xmit(&mut self, _port: u16, m: Mbuf) -> Result<(), XmitDrop> {
        drop(m);
        self.0.set(self.0.get() + 1);
        Ok(())
    }
}

fn pool(name: &str, n: u32) -> Mempool {
    set_page_mode(PageMode::Small);
    Mempool::new(&PoolConfig {
        name: name.into(),
        size: n,
        ..Default::default()
    })
    .unwrap()
}

fn stack() -> Stack {
    let cfg = StackConfig {
        ports: vec![PortConf::new(MAC_A, IP_A, 24)],
        ..Default::default()
    };
    let sent = std::rc::Rc::new(std::cell::Cell::new(0));
    Stack::new(cfg, pool("fuzz-stack", 1024), Box::new(Sink(sent))).unwrap()
}

/// A valid-looking frame to mutate: Ethernet to our MAC, IPv4 to our
/// address, protocol and fragment fields chosen by the case.
fn frame(proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20];
    f[0..6].copy_from_slice(&MAC_A.0);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0xb]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let tot = (20 + payload.len()).min(65535) as u16;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&tot.to_be_bytes());
    f[18..20].copy_from_slice(&0x1234u16.to_be_bytes());
    f[20..22].copy_from_slice(&frag.to_be_bytes());
    f[22] = 64;
    f[23] = proto;
    f[26..30].copy_from_slice(&[10, 0, 0, 2]);
    f[30..34].copy_from_slice(&IP_A.octets());
    let mut acc = 0u32;
    for w in f[14..34].chunks(2) {
        acc += u16::from_be_bytes([w[0], w[1]]) as u32;
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    f[24..26].copy_from_slice(&(!(acc as u16)).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

proptest! {
    /// Any string as a device spec: an error or a port, never a panic.
    #[test]
    fn device_specs_never_panic(s in "\\PC{0,40}", pre in prop::sample::select(vec![
        "", "tap:", "fault:", "trace+", "fault:drop=", "ring:", "pcap:", "ice-model?", "igb-model?speed=",
        "af_packet:", "lo", "tap:/nonexistent/x+", "fault:stall_ms=1,seed=+",
    ])) {
        let reg = Registry::with_builtins();
        let spec = format!("{pre}{s}");
        let _ = reg.check(&spec);
        let _ = wirespeed::ethdev::DevSpec::parse(&spec);
    }

    /// Random bytes, and a valid pcap or pcapng image with bytes
    /// overwritten or cut, parse to records or to an error naming the
    /// record or block.
    #[test]
    fn pcap_images_never_panic(
        junk in prop::collection::vec(any::<u8>(), 0..200),
        cut in 0usize..400,
        flips in prop::collection::vec((0usize..400, any::<u8>()), 0..8),
        ng in any::<bool>(),
    ) {
        let _ = pcap::parse("junk.pcap", &junk);
        let mut img = Vec::new();
        {
            // Classic pcap or pcapng (SHB, IDB with if_tsresol, EPBs).
            let format = if ng { pcap::CaptureFormat::Pcapng } else { pcap::CaptureFormat::Pcap };
            let mut w = pcap::PcapWriter::with_format(&mut img, format).unwrap();
            for i in 0..4u64 {
                w.write(1_000_000_000 + i * 1000, &vec![i as u8; 60 + i as usize * 10]).unwrap();
            }
            w.flush().unwrap();
        }
        for (at, b) in flips {
            if at < img.len() {
                img[at] = b;
            }
        }
        img.truncate(cut.min(img.len()));
        match pcap::parse("cut.pcap", &img) {
            // Overwritten lengths may split the image into other records;
            // each is still within the image.
            Ok(recs) => prop_assert!(recs.iter().map(|r| r.data.len()).sum::<usize>() <= img.len()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// The receive path on random frames and on mutated IPv4/UDP/ICMP/ARP
    /// frames (fragments included): every frame is counted, nothing panics,
    /// and once the reassembly queues expire every buffer is home.
    #[test]
    fn stack_rx_counts_every_frame_and_frees_every_buffer(
        frames in prop::collection::vec(
            (
                prop::sample::select(vec![17u8, 1, 6, 255]),
                prop::sample::select(vec![0u16, 0x2000, 0x2001, 0x0003, 0x20b9, 0x4000, 0x1fff]),
                prop::collection::vec(any::<u8>(), 0..300),
                prop::collection::vec((0usize..340, any::<u8>()), 0..4),
                any::<bool>(),
            ),
            1..24,
        ),
    ) {
        let mut st = stack();
        st.start(0);
        let free0 = st.pool_mut().stats().available;
        let mut rx_pool = pool("fuzz-rx", 64);
        let n = frames.len() as u64;
        for (proto, frag, payload, flips, arp) in frames {
            let mut f = if arp {
                let mut a = vec![0xffu8; 6];
                a.extend_from_slice(&[2, 0, 0, 0, 0, 0xb, 0x08, 0x06]);
                a.extend_from_slice(&payload);
                a
            } else {
                frame(proto, frag, &payload)
            };
            for (at, b) in flips {
                if at < f.len() {
                    f[at] = b;
                }
            }
            let mut m = rx_pool.alloc().unwrap();
            f.truncate(2048);
            m.extend_from_slice(&f).unwrap();
            st.rx(0, m);
            st.flush();
        }
        prop_assert_eq!(st.counters().rx.frames, n);
        // Fragments wait at most ipfrag_time; a first fragment's expiry
        // sends ICMP time exceeded (ip_expire), which waits on ARP for the
        // unanswering peer until the neighbour fails (3 probes, 1 s apart).
        // After both, all buffers are home.
        for t in 60..=70u64 {
            st.poll_timers(t * 1_000_000_000);
        }
        prop_assert_eq!(rx_pool.stats().in_use, 0);
        prop_assert_eq!(st.pool_mut().stats().available, free0);
    }
}
