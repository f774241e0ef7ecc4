//! `sendmsg` control messages (`__sock_cmsg_send`, `ip_cmsg_send`): the
//! errors Linux returns for each malformed message, the values that reach
//! the wire, `IP_PKTINFO` choosing the port and the source, `SO_MARK`
//! choosing a table through a rule, per-call `IP_OPTIONS`, and a connected
//! socket's template surviving all of it. Expectations worked by hand from
//! net/ipv4/ip_sockglue.c, net/core/sock.c, net/ipv4/udp.c and
//! net/ipv4/route.c (`ip_route_output_key_hash_rcu`).

use super::*;
use crate::stack::cmsg::*;

const MAC_P1: MacAddr = MacAddr([2, 0, 0, 0, 1, 1]);
const IP_P1: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const GW1: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 254);
const MAC_GW1: MacAddr = MacAddr([2, 0, 0, 0, 1, 0xfe]);

/// Port 0 10.0.0.1/24 (peer B static), port 1 192.168.1.1/24 (gateway
/// .254 static, and B static there too).
fn two_ports() -> (Stack, Cap) {
    let mut c = cfg(MAC_A, IP_A);
    c.ports.push(PortConf::new(MAC_P1, IP_P1, 24));
    c.static_neighbours.push((1, GW1, MAC_GW1));
    c.static_neighbours.push((1, IP_B, MAC_B));
    resolved_stack(c)
}

#[test]
fn malformed_cmsgs_fail_as_linux_fails_them() {
    let (mut st, cap) = two_ports();
    let s = st.udp_socket().unwrap();
    let to = Some(sa(IP_B, 9));
    let cases: Vec<(Cmsg, Errno)> = vec![
        // CMSG_LEN(sizeof(u32)) required.
        (Cmsg::raw(SOL_SOCKET, SO_MARK, &[1, 0]), Errno::EINVAL),
        (Cmsg::raw(SOL_SOCKET, SO_PRIORITY, &[0; 8]), Errno::EINVAL),
        (Cmsg::priority(256), Errno::EINVAL),
        // Only SOF_TIMESTAMPING_TX_RECORD_MASK bits: RX_SOFTWARE (1<<3) is not.
        (Cmsg::timestamping(1 << 3), Errno::EINVAL),
        (
            Cmsg::raw(SOL_SOCKET, SO_TIMESTAMPING_NEW, &[2]),
            Errno::EINVAL,
        ),
        // SO_TXTIME was never enabled on the socket.
        (Cmsg::raw(SOL_SOCKET, SCM_TXTIME, &[0; 8]), Errno::EINVAL),
        (Cmsg::raw(SOL_SOCKET, SCM_TS_OPT_ID, &[0; 4]), Errno::EINVAL),
        (Cmsg::raw(SOL_SOCKET, 99, &[0; 4]), Errno::EINVAL),
        // IP_TTL: an int in 1..=255.
        (Cmsg::ttl(0), Errno::EINVAL),
        (Cmsg::ttl(256), Errno::EINVAL),
        (Cmsg::raw(SOL_IP, IP_TTL, &[64]), Errno::EINVAL),
        // IP_TOS: an int or a byte, 0..=255.
        (Cmsg::tos(256), Errno::EINVAL),
        (Cmsg::tos(-1), Errno::EINVAL),
        (Cmsg::raw(SOL_IP, IP_TOS, &[0x10, 0]), Errno::EINVAL),
        // IP_PKTINFO: a 12-byte in_pktinfo.
        (Cmsg::raw(SOL_IP, IP_PKTINFO, &[0; 8]), Errno::EINVAL),
        // An ifindex no device has: dev_get_by_index_rcu fails.
        (Cmsg::pktinfo(7, Ipv4Addr::UNSPECIFIED), Errno::ENODEV),
        (Cmsg::pktinfo(-1, Ipv4Addr::UNSPECIFIED), Errno::ENODEV),
        // A source that is not ours: __ip_dev_find fails (EINVAL).
        (Cmsg::pktinfo(0, Ipv4Addr::new(1, 2, 3, 4)), Errno::EINVAL),
        // IP_OPTIONS: ip_options_compile (RR pointer 3 < 4).
        (Cmsg::ip_options(&[7, 7, 3, 0, 0, 0, 0]), Errno::EINVAL),
        (Cmsg::raw(SOL_IP, 200, &[0; 4]), Errno::EINVAL),
        (
            Cmsg::raw(SOL_IP, IP_PROTOCOL, &0i32.to_ne_bytes()),
            Errno::EINVAL,
        ),
        // udp_cmsg_send: UDP_SEGMENT wants a u16; other SOL_UDP types EINVAL.
        (Cmsg::raw(SOL_UDP, UDP_SEGMENT, &[0; 4]), Errno::EINVAL),
        (Cmsg::raw(SOL_UDP, 1, &[0; 4]), Errno::EINVAL),
        // TX timestamps no port here reports (hardware, scheduler, ACK):
        // refused; TX_SOFTWARE is taken (tests.rs `software_tx_timestamps…`).
        (Cmsg::timestamping(1 << 0), Errno::EOPNOTSUPP),
        (Cmsg::timestamping((1 << 1) | (1 << 9)), Errno::EOPNOTSUPP),
        // A well-formed UDP_SEGMENT: no UDP GSO here.
        (
            Cmsg::raw(SOL_UDP, UDP_SEGMENT, &1400u16.to_ne_bytes()),
            Errno::EOPNOTSUPP,
        ),
    ];
    for (c, want) in &cases {
        assert_eq!(
            st.socket(s).send_cmsg(b"x", to, &[*c], MsgFlags::NONE),
            Err(*want),
            "{c:?}"
        );
    }
    assert!(cap.take().is_empty(), "no datagram left for a bad cmsg");
    assert_eq!(st.counters().ip.out_requests, 0);
    // Skipped: SCM_RIGHTS / SCM_CREDENTIALS and other levels (IPv6's 41);
    // accepted: IP_TOS as one byte, IP_PROTOCOL in range.
    let ok = [
        Cmsg::raw(SOL_SOCKET, SCM_RIGHTS, &[0; 4]),
        Cmsg::raw(41, 67, &[0; 3]),
        Cmsg::raw(SOL_IP, IP_TOS, &[0x08]),
        Cmsg::raw(SOL_IP, IP_PROTOCOL, &17i32.to_ne_bytes()),
        Cmsg::timestamping(0),
    ];
    assert_eq!(st.socket(s).send_cmsg(b"x", to, &ok, MsgFlags::NONE), Ok(1));
    let u = parse_udp(&cap.take()[0].bytes);
    assert_eq!((u.ip.tos, u.ip.protocol), (0x08, IPPROTO_UDP));
}

/// TTL, TOS and priority on the wire; `SO_PRIORITY` wins over the
/// priority an `IP_TOS` cmsg implies (`rt_tos2priority(0x10)` = 6,
/// `TC_PRIO_INTERACTIVE`), and all of it for one datagram only.
#[test]
fn ttl_tos_priority_cmsgs_hold_for_one_datagram() {
    let (mut st, cap) = two_ports();
    let s = st.udp_socket().unwrap();
    let to = Some(sa(IP_B, 9));
    let c = [Cmsg::ttl(3), Cmsg::tos(0x10)];
    st.socket(s)
        .send_cmsg(b"a", to, &c, MsgFlags::NONE)
        .unwrap();
    let c = [Cmsg::tos(0x10), Cmsg::priority(2)];
    st.socket(s)
        .send_cmsg(b"b", to, &c, MsgFlags::NONE)
        .unwrap();
    st.socket(s).send_to(b"c", sa(IP_B, 9)).unwrap();
    let f = cap.take();
    let got: Vec<(u8, u8, u8)> = f
        .iter()
        .map(|f| {
            let u = parse_udp(&f.bytes);
            (u.ip.ttl, u.ip.tos, f.prio)
        })
        .collect();
    assert_eq!(got, vec![(3, 0x10, 6), (64, 0x10, 2), (64, 0, 0)]);
    for fr in &f {
        assert!(UdpHeader::verify(&fr.bytes[34..], IP_A, IP_B));
    }
}

/// `IP_PKTINFO`: `ipi_ifindex` 2 (port 1) for a destination only port 0
/// has a route to: the lookup restricted to port 1 fails and Linux assumes
/// the destination on that link (source: port 1's address). `ipi_spec_dst`
/// alone sets the source, the route still picks port 0; a zero
/// `ipi_spec_dst` on a bound socket lets the route choose the source.
#[test]
fn pktinfo_picks_the_port_and_the_source() {
    let (mut st, cap) = two_ports();
    assert_eq!((port_ifindex(0), port_ifindex(1)), (1, 2));
    let s = st.udp_socket().unwrap();
    st.socket(s).bind(sa(IP_P1, 5000)).unwrap();
    let to = Some(sa(IP_B, 9));
    let pi = |i, a| [Cmsg::pktinfo(i, a)];
    st.socket(s)
        .send_cmsg(b"1", to, &pi(2, Ipv4Addr::UNSPECIFIED), MsgFlags::NONE)
        .unwrap();
    st.socket(s)
        .send_cmsg(b"2", to, &pi(0, IP_A), MsgFlags::NONE)
        .unwrap();
    st.socket(s)
        .send_cmsg(b"3", to, &pi(0, Ipv4Addr::UNSPECIFIED), MsgFlags::NONE)
        .unwrap();
    st.socket(s).send_to(b"4", sa(IP_B, 9)).unwrap();
    let f = cap.take();
    let got: Vec<(MacAddr, Ipv4Addr)> = f
        .iter()
        .map(|f| {
            let u = parse_udp(&f.bytes);
            assert_eq!(u.eth.dst, MAC_B);
            assert!(UdpHeader::verify(&f.bytes[34..], u.ip.src, IP_B));
            (u.eth.src, u.ip.src)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (MAC_P1, IP_P1), // out of port 1, its address
            (MAC_A, IP_A),   // spec_dst IP_A, route via port 0
            (MAC_A, IP_A),   // spec_dst 0: the route's source, not the bound one
            (MAC_A, IP_P1),  // no cmsg: the bound address
        ]
    );
}

/// `SO_MARK` cmsg: a `fwmark 7 lookup 100` rule sends the datagram by
/// table 100's default route (gateway on port 1); the socket's own mark
/// (0) keeps the main table for the next datagram.
#[test]
fn mark_cmsg_selects_the_table_by_rule() {
    let (mut st, cap) = two_ports();
    st.add_route(&RouteConf {
        prefix: Ipv4Addr::UNSPECIFIED,
        len: 0,
        gateway: Some(GW1),
        table: 100,
        ..Default::default()
    })
    .unwrap();
    st.ip_rule_add(&"fwmark 7 lookup 100 pref 100".parse().unwrap())
        .unwrap();
    let s = st.udp_socket().unwrap();
    let far = Some(sa(Ipv4Addr::new(203, 0, 113, 5), 9));
    assert_eq!(
        st.socket(s).send_cmsg(b"m", far, &[], MsgFlags::NONE),
        Err(Errno::ENETUNREACH),
        "main has no default route"
    );
    st.socket(s)
        .send_cmsg(b"m", far, &[Cmsg::mark(7)], MsgFlags::NONE)
        .unwrap();
    let f = cap.take();
    assert_eq!(f.len(), 1);
    let u = parse_udp(&f[0].bytes);
    assert_eq!((u.eth.src, u.eth.dst, u.ip.src), (MAC_P1, MAC_GW1, IP_P1));
    assert_eq!(u.ip.dst, Ipv4Addr::new(203, 0, 113, 5));
}

/// `IP_OPTIONS` cmsg: options for one datagram on a socket with none, and
/// an empty one suppressing the socket's options for one datagram.
#[test]
fn ip_options_cmsg_overrides_the_socket_for_one_datagram() {
    let (mut st, cap) = two_ports();
    let s = st.udp_socket().unwrap();
    let to = Some(sa(IP_B, 9));
    let rr = [7u8, 7, 4, 0, 0, 0, 0];
    st.socket(s)
        .send_cmsg(b"o", to, &[Cmsg::ip_options(&rr)], MsgFlags::NONE)
        .unwrap();
    st.socket(s).send_to(b"p", sa(IP_B, 9)).unwrap();
    st.socket(s).set_ip_options(&rr).unwrap();
    st.socket(s)
        .send_cmsg(b"q", to, &[Cmsg::ip_options(&[])], MsgFlags::NONE)
        .unwrap();
    st.socket(s).send_to(b"r", sa(IP_B, 9)).unwrap();
    let f = cap.take();
    let ihl: Vec<u8> = f.iter().map(|f| f.bytes[14] & 0xf).collect();
    assert_eq!(ihl, vec![7, 5, 5, 7]);
    let mut want = vec![7u8, 7, 8];
    want.extend_from_slice(&IP_A.octets());
    want.push(0);
    assert_eq!(&f[0].bytes[34..42], &want[..]);
    for fr in &f {
        let h = (fr.bytes[14] & 0xf) as usize * 4;
        assert!(Ipv4Header::parse(&fr.bytes[14..]).is_ok());
        assert!(UdpHeader::verify(&fr.bytes[14 + h..], IP_A, IP_B));
    }
}

/// A connected socket's cached route and header template survive sends
/// with cmsgs (Linux clears `connected`: no `sk_dst_set`): a mark that
/// routes elsewhere, a TTL, an `ipi_ifindex` — and the next plain `send`
/// leaves by the cached route on the fast path with the socket's values.
#[test]
fn cmsgs_leave_the_connected_template_alone() {
    let (mut st, cap) = two_ports();
    st.add_route(&RouteConf {
        prefix: IP_B,
        len: 32,
        gateway: Some(GW1),
        table: 100,
        ..Default::default()
    })
    .unwrap();
    st.ip_rule_add(&"fwmark 7 lookup 100 pref 100".parse().unwrap())
        .unwrap();
    let s = st.udp_socket().unwrap();
    st.socket(s).connect(sa(IP_B, 9)).unwrap();
    st.socket(s).send(b"warm").unwrap();
    assert!(st.socket(s).has_template());
    let mut k = |c: &[Cmsg]| st.socket(s).send_cmsg(b"c", None, c, MsgFlags::NONE);
    k(&[Cmsg::mark(7)]).unwrap();
    k(&[Cmsg::ttl(1)]).unwrap();
    k(&[Cmsg::pktinfo(2, Ipv4Addr::UNSPECIFIED)]).unwrap();
    assert!(st.socket(s).has_template(), "template kept");
    st.socket(s).send(b"after").unwrap();
    let f = cap.take();
    let got: Vec<(MacAddr, MacAddr, u8)> = f
        .iter()
        .map(|f| {
            let u = parse_udp(&f.bytes);
            (u.eth.src, u.eth.dst, u.ip.ttl)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (MAC_A, MAC_B, 64),
            (MAC_P1, MAC_GW1, 64), // mark 7: table 100 via the gateway
            (MAC_A, MAC_B, 1),
            (MAC_P1, MAC_B, 64), // ifindex 2: on-link out of port 1
            (MAC_A, MAC_B, 64),  // the cached route again
        ]
    );
    let ids: Vec<u16> = f.iter().map(|f| parse_udp(&f.bytes).ip.id).collect();
    // DF datagrams of a connected socket number from inet_id, fast path
    // or not (ip_select_ident_segs).
    assert_eq!(ids[4], ids[0].wrapping_add(4), "{ids:?}");
}

/// `SO_SNDBUF` as `sk_setsockopt` sets it: `min(val, wmem_max) * 2`, at
/// least `SOCK_MIN_SNDBUF` (4608).
#[test]
fn sndbuf_is_capped_by_wmem_max_then_doubled() {
    let (mut st, _cap) = two_ports();
    let s = st.udp_socket().unwrap();
    st.socket(s).set_sndbuf(1 << 20).unwrap();
    assert_eq!(
        st.socket(s).sndbuf(),
        Ok(2 * 212_992),
        "Linux's default wmem_max"
    );
    let mut c = cfg(MAC_A, IP_A);
    c.wmem_max = 10_000;
    let (mut st, _cap) = resolved_stack(c);
    let s = st.udp_socket().unwrap();
    st.socket(s).set_sndbuf(1 << 20).unwrap();
    assert_eq!(st.socket(s).sndbuf(), Ok(20_000));
    st.socket(s).set_sndbuf(3000).unwrap();
    assert_eq!(st.socket(s).sndbuf(), Ok(6000));
    st.socket(s).set_sndbuf(100).unwrap();
    assert_eq!(st.socket(s).sndbuf(), Ok(4608));
}

/// The cmsg datagrams in a pcap, dissected by tshark with IP and UDP
/// checksum validation: TTL, DSCP/TOS, the record-route option, the source
/// `ipi_spec_dst` chose and the port `ipi_ifindex` chose (by its MAC).
#[test]
fn tshark_dissects_cmsg_datagrams_with_good_checksums() {
    let Some(_) = tshark() else { return };
    let (mut st, cap) = two_ports();
    let s = st.udp_socket().unwrap();
    let to = Some(sa(IP_B, 4000));
    let sends: [&[Cmsg]; 3] = [
        &[Cmsg::ttl(7), Cmsg::tos(0xb8)],
        &[Cmsg::ip_options(&[7, 7, 4, 0, 0, 0, 0])],
        &[Cmsg::pktinfo(2, Ipv4Addr::UNSPECIFIED)],
    ];
    for c in sends {
        st.socket(s)
            .send_cmsg(b"cmsg", to, c, MsgFlags::NONE)
            .unwrap();
    }
    let frames = cap.take();
    assert_eq!(frames.len(), 3);
    let dir = std::env::temp_dir().join(format!("ws-cmsg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cmsg.pcap");
    {
        let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut w = crate::ethdev::pcap::PcapWriter::new(file).unwrap();
        for (i, f) in frames.iter().enumerate() {
            w.write(i as u64 * 1000, &f.bytes).unwrap();
        }
    }
    let rows = tshark_fields(
        &path,
        &[
            "eth.src",
            "ip.src",
            "ip.ttl",
            "ip.dsfield",
            "ip.hdr_len",
            "ip.checksum.status",
            "udp.checksum.status",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
    let want = [
        ["02:00:00:00:00:0a", "10.0.0.1", "7", "0xb8", "20", "1", "1"],
        [
            "02:00:00:00:00:0a",
            "10.0.0.1",
            "64",
            "0x00",
            "28",
            "1",
            "1",
        ],
        [
            "02:00:00:00:01:01",
            "192.168.1.1",
            "64",
            "0x00",
            "20",
            "1",
            "1",
        ],
    ];
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (r, w) in rows.iter().zip(want.iter()) {
        assert_eq!(r, &w.map(str::to_string).to_vec(), "{rows:?}");
    }
}
