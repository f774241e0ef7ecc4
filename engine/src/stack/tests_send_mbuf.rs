//! `UdpSocket::send_mbuf`: the frames are byte for byte those `send` /
//! `send_to` build for the same payload, the buffer sent is the caller's
//! own (its data moved, not copied), the counters move as `send`'s do, a
//! datagram over the MTU is fragmented by copying, and the errors are
//! Linux's.

use super::wire::*;
use super::*;
use crate::eal::dma::{set_page_mode, PageMode};
use crate::mbuf::{ol, Mbuf, Mempool, PoolConfig};
use std::cell::{Cell, RefCell};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;

const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);
const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn pool(name: &str) -> Mempool {
    set_page_mode(PageMode::Small);
    Mempool::new(&PoolConfig {
        name: name.into(),
        size: 4096,
        headroom: 128,
        data_room: 2048,
    })
    .unwrap()
}

/// A transmitted frame: its bytes, metadata, and where its data sat.
#[derive(Debug, Clone, PartialEq)]
struct Frame {
    bytes: Vec<u8>,
    ol: u32,
    lens: (u8, u8, u8),
    prio: u8,
    hash: u32,
    iova: u64,
    index: u32,
}

/// The output boundary: records every frame, keeps the buffers while `hold`.
#[derive(Clone, Default)]
struct Cap {
    frames: Rc<RefCell<Vec<Frame>>>,
    held: Rc<RefCell<Vec<Mbuf>>>,
    hold: Rc<Cell<bool>>,
}

impl L2Xmit for Cap {
    fn queue_xmit(&mut self, _port: u16, m: Mbuf) -> Result<(), XmitDrop> {
        let mut bytes = Vec::new();
        m.copy_to_vec(&mut bytes);
        self.frames.borrow_mut().push(Frame {
            bytes,
            ol: m.ol_flags(),
            lens: m.tx_lens(),
            prio: m.priority(),
            hash: m.hash(),
            iova: m.data_iova(),
            index: m.index(),
        });
        if self.hold.get() {
            self.held.borrow_mut().push(m);
        }
        Ok(())
    }
}

impl Cap {
    fn take(&self) -> Vec<Frame> {
        std::mem::take(&mut *self.frames.borrow_mut())
    }
}

/// A stack at 10.0.0.1 whose peer 10.0.0.2 is a static neighbour.
fn stack(tx_offloads: u32) -> (Stack, Cap) {
    let mut c = StackConfig {
        ports: vec![PortConf::new(MAC_A, IP_A, 24)],
        ..Default::default()
    };
    c.ports[0].tx_offloads = tx_offloads;
    c.static_neighbours.push((0, IP_B, MAC_B));
    let cap = Cap::default();
    let st = Stack::new(c, pool("smb"), Box::new(cap.clone())).unwrap();
    (st, cap)
}

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

/// A buffer of the stack's pool holding `payload` (the default headroom).
fn filled(st: &mut Stack, payload: &[u8]) -> Mbuf {
    let mut m = st.pool_mut().alloc().unwrap();
    m.extend_from_slice(payload).unwrap();
    m
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn out_counters(st: &Stack) -> (u64, u64, u64, u64) {
    let c = st.counters();
    (
        c.ip.out_requests,
        c.udp.out_datagrams,
        c.ip.out_discards,
        c.udp.sndbuf_errors,
    )
}

/// Unconnected `sendto`: the same frame as `send_to` (DF set, ID 0, the
/// software or offload checksum), sent from the caller's buffer — its data
/// start moved back by the 42 header bytes, the same buffer index — and
/// the same counter steps; for every payload length around the word and
/// Ethernet-minimum boundaries, with and without checksum offload.
#[test]
fn send_mbuf_to_builds_send_to_s_frame_in_the_callers_buffer() {
    for offl in [0, ol::TX_UDP_CKSUM | ol::TX_IP_CKSUM] {
        let (mut st, cap) = stack(offl);
        let s = st.udp_socket().unwrap();
        st.socket(s).bind(sa(IP_A, 4000)).unwrap();
        for n in [0usize, 1, 17, 18, 31, 32, 33, 1000, 1472] {
            let p = payload(n);
            let c0 = out_counters(&st);
            assert_eq!(st.socket(s).send_to(&p, sa(IP_B, 7)), Ok(n));
            let c1 = out_counters(&st);
            let copied = cap.take();
            let m = filled(&mut st, &p);
            let (iova, index) = (m.data_iova(), m.index());
            assert_eq!(st.socket(s).send_mbuf_to(m, sa(IP_B, 7)), Ok(n));
            let c2 = out_counters(&st);
            let zc = cap.take();
            assert_eq!((copied.len(), zc.len()), (1, 1), "payload {n}");
            let (a, b) = (&copied[0], &zc[0]);
            assert_eq!(a.bytes, b.bytes, "payload {n}, offloads {offl:#x}");
            assert_eq!(
                (a.ol, a.lens, a.prio, a.hash),
                (b.ol, b.lens, b.prio, b.hash)
            );
            assert_eq!(&b.bytes[42..], &p[..]);
            assert_eq!(
                (b.index, b.iova),
                (index, iova - 42),
                "headers prepended in the caller's buffer"
            );
            assert_eq!(
                (c2.0 - c1.0, c2.1 - c1.1, c2.2 - c1.2, c2.3 - c1.3),
                (c1.0 - c0.0, c1.1 - c0.1, c1.2 - c0.2, c1.3 - c0.3),
                "the counters move as send_to's"
            );
        }
    }
}

/// Connected `send` (the template fast path) and `send_mbuf` (the general
/// path, in place): the same frame but for the per-socket IP ID, which
/// steps by one from one to the next (`ip_select_ident`'s `inet_id`).
#[test]
fn send_mbuf_on_a_connected_socket_matches_send() {
    let (mut st, cap) = stack(0);
    let s = st.udp_socket().unwrap();
    st.socket(s).connect(sa(IP_B, 9)).unwrap();
    let p = payload(100);
    st.socket(s).send(&p).unwrap();
    let m = filled(&mut st, &p);
    st.socket(s).send_mbuf(m).unwrap();
    let f = cap.take();
    assert_eq!(f.len(), 2);
    let (a, b) = (&f[0].bytes, &f[1].bytes);
    let ha = Ipv4Header::parse(&a[14..]).unwrap();
    let hb = Ipv4Header::parse(&b[14..]).unwrap();
    assert_eq!(hb.id, ha.id.wrapping_add(1));
    assert!(hb.df());
    assert_eq!(checksum::checksum(&b[14..34]), 0, "IPv4 header checksum");
    // Everything but ID and header checksum is the same.
    let mask = |f: &[u8]| {
        let mut v = f.to_vec();
        v[18..20].fill(0);
        v[24..26].fill(0);
        v
    };
    assert_eq!(mask(a), mask(b));
    assert!(UdpHeader::verify(&b[34..], IP_A, IP_B));
    assert_eq!((f[0].lens, f[0].ol), (f[1].lens, f[1].ol));
}

/// An echo without a copy: the datagram `recv_mbuf` returns goes back with
/// `send_mbuf_to` as the frame `send_to` would build — what the receive
/// left in the buffer (RX offload flags, RSS hash) is not carried over.
#[test]
fn recv_mbuf_then_send_mbuf_to_echoes_in_the_received_buffer() {
    let (mut st, cap) = stack(0);
    let s = st.udp_socket().unwrap();
    st.socket(s).bind(sa(Ipv4Addr::UNSPECIFIED, 7)).unwrap();
    // The request: B:5000 → A:7, no UDP checksum, as a NIC delivered it.
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_A.0);
    f.extend_from_slice(&MAC_B.0);
    f.extend_from_slice(&[0x08, 0x00]);
    let body = b"echo me";
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((28 + body.len()) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&IP_B.octets());
    ip[16..20].copy_from_slice(&IP_A.octets());
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&5000u16.to_be_bytes());
    f.extend_from_slice(&7u16.to_be_bytes());
    f.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(body);
    let mut m = st.pool_mut().alloc().unwrap();
    m.extend_from_slice(&f).unwrap();
    m.set_ol_flags(ol::RX_IP_CKSUM_GOOD | ol::RX_L4_CKSUM_GOOD | ol::RX_RSS_HASH);
    m.set_hash(0xdead_beef);
    st.rx(0, m);
    st.flush();
    let (m, from) = st.socket(s).recv_mbuf().unwrap();
    assert_eq!((m.data(), from), (&body[..], sa(IP_B, 5000)));
    let (iova, index) = (m.data_iova(), m.index());
    st.socket(s).send_mbuf_to(m, from).unwrap();
    let zc = cap.take();
    st.socket(s).send_to(body, from).unwrap();
    let copied = cap.take();
    assert_eq!(zc.len(), 1);
    assert_eq!(zc[0].bytes, copied[0].bytes);
    assert_eq!((zc[0].ol, zc[0].hash), (copied[0].ol, copied[0].hash));
    assert_eq!((zc[0].index, zc[0].iova), (index, iova - 42));
    let u = st.counters().udp;
    assert_eq!((u.in_datagrams, u.out_datagrams), (1, 2));
}

/// Over the MTU: fragmented by copying, the fragments those of `send_to`
/// (a chained buffer, as a reassembled datagram is); the caller's buffer
/// is freed.
#[test]
fn send_mbuf_over_the_mtu_fragments_as_send_to_does() {
    let (mut st, cap) = stack(0);
    let s = st.udp_socket().unwrap();
    st.socket(s).set_mtu_discover(PmtuDisc::Dont).unwrap();
    let p = payload(4000);
    st.socket(s).send_to(&p, sa(IP_B, 7)).unwrap();
    let copied = cap.take();
    let mut m = filled(&mut st, &p[..1500]);
    m.chain(filled(&mut st, &p[1500..3000]));
    m.chain(filled(&mut st, &p[3000..]));
    assert_eq!(m.pkt_len(), 4000);
    let free = st.pool_mut().stats().available;
    st.socket(s).send_mbuf_to(m, sa(IP_B, 7)).unwrap();
    let zc = cap.take();
    assert_eq!(zc.len(), 3);
    let ids = |f: &[Frame]| Ipv4Header::parse(&f[0].bytes[14..]).unwrap().id;
    assert_eq!(ids(&zc), ids(&copied).wrapping_add(1), "per destination");
    for (a, b) in copied.iter().zip(&zc) {
        let (mut x, mut y) = (a.bytes.clone(), b.bytes.clone());
        for v in [&mut x, &mut y] {
            v[18..20].fill(0);
            v[24..26].fill(0);
        }
        assert_eq!(x, y);
    }
    let c = st.counters().ip;
    assert_eq!((c.frag_oks, c.frag_creates), (2, 6));
    // The three buffers went back; the three fragments were freed by Cap.
    assert_eq!(st.pool_mut().stats().available, free + 3);
}

/// The errors: EINVAL (headroom too small for the headers), EMSGSIZE (more than a UDP datagram
/// holds; more than the path MTU with IP_PMTUDISC_DO), EAGAIN (send
/// buffer full, counted as send's); the buffer is freed in every case and
/// nothing else moves.
#[test]
fn send_mbuf_errors_are_linux_s_and_free_the_buffer() {
    let (mut st, cap) = stack(0);
    let s = st.udp_socket().unwrap();
    let to = sa(IP_B, 7);
    let free = st.pool_mut().stats().available;
    let c0 = out_counters(&st);
    // 41 bytes of headroom: the 42 the headers need do not fit.
    let mut m = st.pool_mut().alloc().unwrap();
    m.set_data_window(41, 10).unwrap();
    assert_eq!(st.socket(s).send_mbuf_to(m, to), Err(Errno::EINVAL));
    let mut m = st.pool_mut().alloc().unwrap();
    m.set_data_window(42, 10).unwrap();
    assert_eq!(st.socket(s).send_mbuf_to(m, to), Ok(10), "42 bytes suffice");
    cap.take();
    // Still charged to the socket that sent it (what a ring: port hands
    // across): sent, the charge stays the sender's until the buffer is freed.
    let other = st.udp_socket().unwrap();
    cap.hold.set(true);
    st.socket(other).send_to(b"x", to).unwrap();
    let mut charged = cap.held.borrow_mut().pop().unwrap();
    let held = st.socket(other).wmem_in_flight().unwrap();
    assert!(held > 0 && charged.wmem_charge() as u64 == held);
    charged.adj(42).unwrap();
    assert_eq!(st.socket(s).send_mbuf_to(charged, to), Ok(1));
    assert_eq!(st.socket(other).wmem_in_flight().unwrap(), held);
    assert_eq!(st.socket(s).wmem_in_flight().unwrap(), 0);
    cap.held.borrow_mut().clear();
    cap.hold.set(false);
    assert_eq!(
        st.socket(other).wmem_in_flight().unwrap(),
        0,
        "released on free"
    );
    cap.take();
    // Larger than UDP's 65535 - 8 - 20: EMSGSIZE (ip_append_data).
    let mut m = filled(&mut st, &[0u8; 2000]);
    for _ in 0..32 {
        m.chain(filled(&mut st, &[0u8; 2000]));
    }
    assert_eq!(m.pkt_len(), 66000);
    assert_eq!(st.socket(s).send_mbuf_to(m, to), Err(Errno::EMSGSIZE));
    let mut m = filled(&mut st, &[0u8; 2000]);
    for _ in 0..31 {
        m.chain(filled(&mut st, &[0u8; 2000]));
    }
    m.chain(filled(&mut st, &[0u8; 1508]));
    assert_eq!(m.pkt_len(), 65508);
    assert_eq!(st.socket(s).send_mbuf_to(m, to), Err(Errno::EMSGSIZE));
    // IP_PMTUDISC_DO: over the MTU is EMSGSIZE, not fragments.
    st.socket(s).set_mtu_discover(PmtuDisc::Do).unwrap();
    let mut m = filled(&mut st, &[0u8; 1000]);
    m.chain(filled(&mut st, &[0u8; 473]));
    assert_eq!(st.socket(s).send_mbuf_to(m, to), Err(Errno::EMSGSIZE));
    let m = filled(&mut st, &[0u8; 1472]);
    assert_eq!(st.socket(s).send_mbuf_to(m, to), Ok(1472), "1500 fits");
    assert_eq!(cap.take().len(), 1);
    let c1 = out_counters(&st);
    assert_eq!(
        (c1.0 - c0.0, c1.1 - c0.1, c1.2 - c0.2, c1.3 - c0.3),
        (4, 4, 0, 0),
        "only the datagrams sent counted"
    );
    assert_eq!(st.pool_mut().stats().available, free, "every buffer freed");
    // A full send buffer: EAGAIN, counted as send_to counts it.
    cap.hold.set(true);
    st.socket(s).set_sndbuf(4608).unwrap();
    let mut err = None;
    for _ in 0..100 {
        let m = filled(&mut st, &[1u8; 100]);
        if let Err(e) = st.socket(s).send_mbuf_to(m, to) {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err, Some(Errno::EAGAIN));
    let c2 = out_counters(&st);
    assert_eq!(
        (c2.2 - c1.2, c2.3 - c1.3),
        (1, 1),
        "OutDiscards, SndbufErrors"
    );
    cap.held.borrow_mut().clear();
    assert_eq!(st.socket(s).wmem_in_flight().unwrap(), 0, "charge released");
}
