//! `UdpSocket::send_mbuf_to` allocates nothing per datagram (DESIGN.md's
//! fast-path rule), counted by a counting global allocator over a
//! steady-state window: a datagram received (`rx` → `recv_mbuf`) is sent
//! back in its own buffer (`send_mbuf_to`) to a resolved neighbour, the
//! `udp_echo` loop; the frames reach an output that frees them (a TX
//! completion). The only test in this binary, so no other thread counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::ethdev::MacAddr;
use wirespeed::mbuf::{Mbuf, Mempool, PoolConfig};
use wirespeed::stack::{checksum, L2Xmit, PortConf, Stack, StackConfig, XmitDrop};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to `System`, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The device: counts the frames and their bytes, frees the buffers.
struct Sink {
    frames: std::rc::Rc<std::cell::Cell<(u64, u64)>>,
}

impl L2Xmit for Sink {
    fn queue_xmit(&mut self, _port: u16, m: Mbuf) -> Result<(), XmitDrop> {
        let (n, b) = self.frames.get();
        self.frames.set((n + 1, b + m.pkt_len() as u64));
        Ok(())
    }
}

const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);

/// B:5000 → A:7 with a 32-byte payload.
fn request() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_A.0);
    f.extend_from_slice(&MAC_B.0);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&60u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&IP_B.octets());
    ip[16..20].copy_from_slice(&IP_A.octets());
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&5000u16.to_be_bytes());
    f.extend_from_slice(&7u16.to_be_bytes());
    f.extend_from_slice(&40u16.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&[0x5a; 32]);
    f
}

#[test]
fn recv_mbuf_then_send_mbuf_to_allocates_nothing_per_datagram() {
    set_page_mode(PageMode::Small);
    let pool = Mempool::new(&PoolConfig {
        name: "nalloc".into(),
        size: 1024,
        ..PoolConfig::default()
    })
    .unwrap();
    let mut cfg = StackConfig {
        ports: vec![PortConf::new(MAC_A, IP_A, 24)],
        ..Default::default()
    };
    cfg.static_neighbours.push((0, IP_B, MAC_B));
    let frames = std::rc::Rc::new(std::cell::Cell::new((0, 0)));
    let mut st = Stack::new(
        cfg,
        pool,
        Box::new(Sink {
            frames: frames.clone(),
        }),
    )
    .unwrap();
    let s = st.udp_socket().unwrap();
    st.socket(s)
        .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7))
        .unwrap();
    let req = request();
    let echo = |st: &mut Stack| {
        let mut m = st.pool_mut().alloc().expect("pool");
        m.extend_from_slice(&req).unwrap();
        st.rx(0, m);
        let (m, from) = st.socket(s).recv_mbuf().expect("a datagram");
        assert_eq!(st.socket(s).send_mbuf_to(m, from), Ok(32));
        st.flush();
    };
    for _ in 0..1000 {
        echo(&mut st);
    }
    let before = ALLOCS.load(Relaxed);
    for _ in 0..100_000 {
        echo(&mut st);
    }
    let allocs = ALLOCS.load(Relaxed) - before;
    assert_eq!(frames.get(), (101_000, 101_000 * 74));
    let u = st.counters().udp;
    assert_eq!((u.in_datagrams, u.out_datagrams), (101_000, 101_000));
    assert_eq!(allocs, 0, "heap allocations over 100 000 echoes");
}
