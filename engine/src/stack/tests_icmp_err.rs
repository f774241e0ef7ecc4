//! ICMP errors to UDP sockets (`__udp4_lib_err`, `icmp_err_convert`,
//! `ip_icmp_error` / `ip_recv_error`) and the reassembly-timeout ICMP the
//! stack sends (`ip_expire`). Expectations worked by hand from the Linux
//! sources named in each test.

use super::*;

/// An ICMP error from B to A of `ty`/`code` (`rest`: the header's second
/// word) quoting `quoted` (bytes of a datagram A sent, from its IP header).
fn icmp_error(ty: u8, code: u8, rest: [u8; 4], quoted: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 14 + 20 + 8 + quoted.len()];
    EthernetHeader {
        dst: MAC_A,
        src: MAC_B,
        ethertype: ETHERTYPE_IPV4,
    }
    .emit(&mut b);
    Ipv4Header {
        total_len: (20 + 8 + quoted.len()) as u16,
        protocol: IPPROTO_ICMP,
        src: IP_B,
        dst: IP_A,
        ..Default::default()
    }
    .emit(&mut b[14..]);
    b[42..].copy_from_slice(quoted);
    let h = match ty {
        ICMP_DEST_UNREACH => IcmpHeader::DestUnreachable {
            code,
            next_hop_mtu: u16::from_be_bytes([rest[2], rest[3]]),
        },
        _ => IcmpHeader::Other {
            kind: ty,
            code,
            rest,
        },
    };
    h.emit(&mut b[34..]);
    b
}

fn unreach(code: u8, quoted: &[u8]) -> Vec<u8> {
    icmp_error(ICMP_DEST_UNREACH, code, [0; 4], quoted)
}

/// The IP packet of the last frame `cap` saw (what a router would quote).
fn last_ip(cap: &Cap) -> Vec<u8> {
    let f = cap.take().pop().expect("a frame went out");
    let ip = Ipv4Header::parse(&f.bytes[14..]).unwrap();
    f.bytes[14..14 + ip.total_len as usize].to_vec()
}

/// `__udp4_lib_err` without `IP_RECVERR`: a connected socket hears the
/// hard errors only — port unreachable (ECONNREFUSED, fatal), protocol
/// unreachable, administratively prohibited/filtered codes, parameter
/// problem, fragmentation needed (EMSGSIZE unless IP_PMTUDISC_DONT) — and
/// not the transient ones RFC 1122 3.2.2.1 names (net and host
/// unreachable, fatal = 0 in `icmp_err_convert`) nor time exceeded. The
/// error is reported once: by the next send (counted OutDiscards), by the
/// next receive (before queued data, `__skb_recv_udp` → `sock_error`) or
/// by SO_ERROR. An unconnected socket hears nothing.
#[test]
fn icmp_errors_set_sk_err_on_connected_sockets_only_for_hard_errors() {
    let (mut st, cap) = resolved_stack(cfg(MAC_A, IP_A));
    let c = st.udp_socket().unwrap();
    st.socket(c).connect(sa(IP_B, 9000)).unwrap();
    let cport = st.socket(c).local_addr().unwrap().port();
    assert_eq!(st.socket(c).send(b"hello"), Ok(5));
    let sent = last_ip(&cap);

    // Port unreachable: ECONNREFUSED, once, through SO_ERROR.
    inject(&mut st, &unreach(ICMP_PORT_UNREACH, &sent));
    assert_eq!(st.socket(c).take_error(), Ok(Some(Errno::ECONNREFUSED)));
    assert_eq!(st.socket(c).take_error(), Ok(None));

    // Through the next send: that send fails (OutDiscards), the next goes.
    inject(&mut st, &unreach(ICMP_PORT_UNREACH, &sent));
    let before = st.counters();
    assert_eq!(st.socket(c).send(b"x"), Err(Errno::ECONNREFUSED));
    let after = st.counters();
    assert_eq!(after.ip.out_discards - before.ip.out_discards, 1);
    assert_eq!(after.udp.out_datagrams, before.udp.out_datagrams);
    assert!(cap.take().is_empty(), "the failed send put a frame out");
    assert_eq!(st.socket(c).send(b"x"), Ok(1));
    assert_eq!(cap.take().len(), 1);
    // send_batch (sendmmsg) reports it too.
    inject(&mut st, &unreach(ICMP_PORT_UNREACH, &sent));
    assert_eq!(
        st.socket(c).send_batch(&[b"a", b"b"]),
        Err(Errno::ECONNREFUSED)
    );

    // Through the next receive, ahead of a queued datagram.
    inject(&mut st, &udp_frame(IP_B, IP_A, 9000, cport, b"data", true));
    inject(&mut st, &unreach(ICMP_PORT_UNREACH, &sent));
    let mut buf = [0u8; 64];
    assert_eq!(st.socket(c).recv_from(&mut buf), Err(Errno::ECONNREFUSED));
    assert_eq!(st.socket(c).recv_from(&mut buf), Ok((4, sa(IP_B, 9000))));

    // icmp_err_convert, code by code: (code, errno if fatal).
    let table: [(u8, Option<Errno>); 16] = [
        (0, None),                       // NET_UNREACH: transient
        (1, None),                       // HOST_UNREACH: transient
        (2, Some(Errno::ENOPROTOOPT)),   // PROT_UNREACH
        (3, Some(Errno::ECONNREFUSED)),  // PORT_UNREACH
        (5, None),                       // SR_FAILED: transient
        (6, Some(Errno::ENETUNREACH)),   // NET_UNKNOWN
        (7, Some(Errno::EHOSTDOWN)),     // HOST_UNKNOWN
        (8, Some(Errno::ENONET)),        // HOST_ISOLATED
        (9, Some(Errno::ENETUNREACH)),   // NET_ANO
        (10, Some(Errno::EHOSTUNREACH)), // HOST_ANO
        (11, None),                      // NET_UNR_TOS
        (12, None),                      // HOST_UNR_TOS
        (13, Some(Errno::EHOSTUNREACH)), // PKT_FILTERED
        (14, Some(Errno::EHOSTUNREACH)), // PREC_VIOLATION
        (15, Some(Errno::EHOSTUNREACH)), // PREC_CUTOFF
        (16, None),                      // beyond NR_ICMP_UNREACH: soft EHOSTUNREACH
    ];
    for (code, want) in table {
        inject(&mut st, &unreach(code, &sent));
        assert_eq!(st.socket(c).take_error(), Ok(want), "code {code}");
    }
    // Time exceeded (TTL, reassembly): EHOSTUNREACH, soft. Parameter
    // problem: EPROTO, hard. Source quench and redirect: nothing.
    for (ty, code, want) in [
        (ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, None),
        (ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME, None),
        (ICMP_PARAMETERPROB, 0, Some(Errno::EPROTO)),
        (ICMP_SOURCE_QUENCH, 0, None),
        (ICMP_REDIRECT, 1, None),
    ] {
        inject(&mut st, &icmp_error(ty, code, [0; 4], &sent));
        assert_eq!(st.socket(c).take_error(), Ok(want), "type {ty} code {code}");
    }
    // Fragmentation needed: EMSGSIZE and the path MTU; with
    // IP_PMTUDISC_DONT the MTU still drops but no error is reported.
    inject(
        &mut st,
        &icmp_error(
            ICMP_DEST_UNREACH,
            ICMP_FRAG_NEEDED,
            [0, 0, 0x05, 0x78],
            &sent,
        ),
    );
    assert_eq!(st.socket(c).take_error(), Ok(Some(Errno::EMSGSIZE)));
    st.socket(c).send(b"y").unwrap();
    assert_eq!(st.socket(c).mtu(), Ok(1400));
    st.socket(c).set_mtu_discover(PmtuDisc::Dont).unwrap();
    inject(
        &mut st,
        &icmp_error(
            ICMP_DEST_UNREACH,
            ICMP_FRAG_NEEDED,
            [0, 0, 0x05, 0x14],
            &sent,
        ),
    );
    assert_eq!(st.socket(c).take_error(), Ok(None));
    st.socket(c).send(b"y").unwrap();
    assert_eq!(st.socket(c).mtu(), Ok(1300));

    // An unconnected socket: no error without IP_RECVERR.
    let u = st.udp_socket().unwrap();
    st.socket(u).bind(sa(Ipv4Addr::UNSPECIFIED, 7100)).unwrap();
    st.socket(u).send_to(b"hi", sa(IP_B, 9001)).unwrap();
    let usent = last_ip(&cap);
    inject(&mut st, &unreach(ICMP_PORT_UNREACH, &usent));
    assert_eq!(st.socket(u).take_error(), Ok(None));
    assert_eq!(st.socket(u).send_to(b"hi", sa(IP_B, 9001)), Ok(2));

    let k = st.counters();
    // 1+1+1+1 port unreach, 16 codes, 2 frag needed, 1 to `u`.
    assert_eq!(k.icmp.in_dest_unreachs, 4 + 16 + 2 + 1);
    assert_eq!(k.icmp.in_time_excds, 2);
    assert_eq!(k.icmp.in_parm_probs, 1);
    assert_eq!(k.icmp.in_src_quenchs, 1);
    assert_eq!(k.icmp.in_redirects, 1);
    assert_eq!(k.icmp.in_errors, 0);
}

/// `icmp_socket_deliver` / `__udp4_lib_err`'s failures are Icmp InErrors:
/// a quote shorter than its IP header + 8 bytes, and a datagram no socket
/// of ours sent. A quoted protocol other than UDP is not UDP's business.
#[test]
fn icmp_errors_nobody_sent_count_in_errors() {
    let (mut st, cap) = resolved_stack(cfg(MAC_A, IP_A));
    let c = st.udp_socket().unwrap();
    st.socket(c).connect(sa(IP_B, 9000)).unwrap();
    st.socket(c).send(b"hello").unwrap();
    let sent = last_ip(&cap);
    // Only the IP header and 4 bytes quoted.
    inject(&mut st, &unreach(ICMP_PORT_UNREACH, &sent[..24]));
    assert_eq!(st.counters().icmp.in_errors, 1);
    // Another peer port than the connected one: no socket matches.
    let mut other = sent.clone();
    other[22..24].copy_from_slice(&9999u16.to_be_bytes());
    inject(&mut st, &unreach(ICMP_PORT_UNREACH, &other));
    assert_eq!(st.counters().icmp.in_errors, 2);
    // Quoting a TCP segment.
    let mut tcp = sent.clone();
    tcp[9] = 6;
    inject(&mut st, &unreach(ICMP_PORT_UNREACH, &tcp));
    assert_eq!(st.counters().icmp.in_errors, 2);
    assert_eq!(st.counters().icmp.in_dest_unreachs, 3);
    assert_eq!(st.socket(c).take_error(), Ok(None));
}

/// `IP_RECVERR`: `ip_icmp_error` queues every error (soft ones, and on an
/// unconnected socket) with its `sock_extended_err`; the offender is the
/// ICMP's source, the name the failed datagram's destination, the
/// payload what followed the quoted UDP header. `sk_err` is set too and
/// `sock_dequeue_err_skb` moves it to the next queued errno. The queue
/// is bounded by the receive buffer (`sock_queue_err_skb`: refused when
/// `rmem + truesize >= rcvbuf`), counted `errqueue_full`; turning the
/// option off purges it.
#[test]
fn ip_recverr_queues_extended_errors_bounded_by_rcvbuf() {
    let (mut st, cap) = resolved_stack(cfg(MAC_A, IP_A));
    let u = st.udp_socket().unwrap();
    st.socket(u).bind(sa(Ipv4Addr::UNSPECIFIED, 7200)).unwrap();
    st.socket(u).set_recverr(true).unwrap();
    assert_eq!(st.socket(u).recv_err(), Err(Errno::EAGAIN));
    st.socket(u).send_to(b"payload!", sa(IP_B, 53)).unwrap();
    let sent = last_ip(&cap);
    // Host unreachable (soft) and fragmentation needed (MTU 1400).
    inject(&mut st, &unreach(ICMP_HOST_UNREACH, &sent));
    inject(
        &mut st,
        &icmp_error(
            ICMP_DEST_UNREACH,
            ICMP_FRAG_NEEDED,
            [0, 0, 0x05, 0x78],
            &sent,
        ),
    );
    assert_eq!(st.socket(u).err_queue_len(), Ok(2));
    let e = st.socket(u).recv_err().unwrap();
    assert_eq!(
        e,
        SockExtendedErr {
            ee_errno: Errno::EHOSTUNREACH,
            ee_origin: SO_EE_ORIGIN_ICMP,
            ee_type: ICMP_DEST_UNREACH,
            ee_code: ICMP_HOST_UNREACH,
            ee_info: 0,
            offender: IP_B,
            addr: sa(IP_B, 53),
            payload: b"payload!".to_vec(),
        }
    );
    // The pending error is now the next queued one's.
    assert_eq!(st.socket(u).take_error(), Ok(Some(Errno::EMSGSIZE)));
    let e = st.socket(u).recv_err().unwrap();
    assert_eq!(
        (e.ee_errno, e.ee_code, e.ee_info),
        (Errno::EMSGSIZE, 4, 1400)
    );
    assert_eq!(st.socket(u).take_error(), Ok(None));
    assert_eq!(st.socket(u).recv_err(), Err(Errno::EAGAIN));

    // Bounded: SO_RCVBUF 2304 → 4608 bytes; each ICMP buffer charges
    // buf_len + 128. With 2048 + 128 = 2176 + 128 = 2304: the first fits
    // (0 + 2304 < 4608), the second does not (2304 + 2304 >= 4608).
    st.socket(u).set_rcvbuf(2304).unwrap();
    for _ in 0..3 {
        inject(&mut st, &unreach(ICMP_PORT_UNREACH, &sent));
    }
    assert_eq!(st.socket(u).err_queue_len(), Ok(1));
    assert_eq!(st.counters().rx.errqueue_full, 2);
    // ... and the error still reaches sk_err.
    assert_eq!(st.socket(u).take_error(), Ok(Some(Errno::ECONNREFUSED)));
    // Off purges the queue and gives its bytes back: a datagram fits again.
    st.socket(u).set_recverr(false).unwrap();
    assert_eq!(st.socket(u).err_queue_len(), Ok(0));
    // (The receive queue's own test is `>`, `__udp_enqueue_schedule_skb`:
    // two datagrams of 2304 fit 4608, the third does not.)
    for _ in 0..3 {
        inject(&mut st, &udp_frame(IP_B, IP_A, 53, 7200, b"ok", true));
    }
    let mut buf = [0u8; 8];
    assert_eq!(st.socket(u).recv_from(&mut buf), Ok((2, sa(IP_B, 53))));
    assert_eq!(
        st.counters().udp.rcvbuf_errors,
        1,
        "the third overflowed 4608"
    );
    // Unconnected without IP_RECVERR again: nothing.
    inject(&mut st, &unreach(ICMP_PORT_UNREACH, &sent));
    assert_eq!(st.socket(u).take_error(), Ok(None));
}

/// Our own port unreachable reaches our own connected socket (seed 004's
/// RTN_LOCAL path): the second send to a port nobody listens on fails
/// with ECONNREFUSED, as on Linux over `lo`.
#[test]
fn local_port_unreachable_refuses_the_next_send() {
    let (mut st, cap) = cap_stack(cfg(MAC_A, IP_A));
    st.start(0);
    cap.take(); // the gratuitous ARP
    let c = st.udp_socket().unwrap();
    st.socket(c).connect(sa(Ipv4Addr::LOCALHOST, 7999)).unwrap();
    assert_eq!(st.socket(c).send(b"anyone?"), Ok(7));
    st.flush(); // datagram in, port unreachable out
    st.flush(); // the ICMP error in
    assert_eq!(st.socket(c).send(b"again?"), Err(Errno::ECONNREFUSED));
    assert_eq!(st.socket(c).send(b"again?"), Ok(6));
    assert!(cap.take().is_empty());
}

/// `ip_expire`: a datagram to us whose first fragment came but which did
/// not complete within `ipfrag_time` (30 s) is answered with ICMP time
/// exceeded, code 1 (fragment reassembly time exceeded), quoting the first
/// fragment's IP header and payload up to 548 bytes (`__icmp_send`: 576 -
/// 20 - 8); counted ReasmTimeout, ReasmFails and OutTimeExcds. Without
/// the first fragment nothing is sent; a broadcast datagram gets none.
#[test]
fn reassembly_timeout_sends_icmp_time_exceeded_for_the_first_fragment() {
    let (mut st, cap) = resolved_stack(cfg(MAC_A, IP_A));
    st.start(0);
    cap.take();
    let frag = |dst: Ipv4Addr, id: u16, off8: u16, mf: bool, len: usize| {
        let mut b = vec![0u8; 14 + 20 + len];
        EthernetHeader {
            dst: if dst == IP_A {
                MAC_A
            } else {
                MacAddr::BROADCAST
            },
            src: MAC_B,
            ethertype: ETHERTYPE_IPV4,
        }
        .emit(&mut b);
        for (i, x) in b[34..].iter_mut().enumerate() {
            *x = (i % 256) as u8;
        }
        Ipv4Header {
            total_len: (20 + len) as u16,
            id,
            frag: off8 | if mf { 0x2000 } else { 0 },
            protocol: IPPROTO_UDP,
            src: IP_B,
            dst,
            ..Default::default()
        }
        .emit(&mut b[14..]);
        b
    };
    // id 1: first fragment (1480 bytes) in, the rest never. id 2: only a
    // middle fragment. id 3: first fragment of a broadcast datagram.
    let first = frag(IP_A, 1, 0, true, 1480);
    inject(&mut st, &first);
    inject(&mut st, &frag(IP_A, 2, 185, true, 1480));
    inject(
        &mut st,
        &frag(Ipv4Addr::new(10, 0, 0, 255), 3, 0, true, 1480),
    );
    st.poll_timers(29 * S);
    assert!(cap.take().is_empty());
    st.poll_timers(30 * S);
    let f = cap.take();
    assert_eq!(f.len(), 1, "one time exceeded, for id 1 only");
    let ip = Ipv4Header::parse(&f[0].bytes[14..]).unwrap();
    assert_eq!((ip.protocol, ip.src, ip.dst), (IPPROTO_ICMP, IP_A, IP_B));
    assert_eq!(ip.total_len as usize, 20 + 8 + 548);
    let icmp = &f[0].bytes[34..14 + ip.total_len as usize];
    assert_eq!(
        IcmpHeader::parse(icmp).unwrap(),
        IcmpHeader::Other {
            kind: ICMP_TIME_EXCEEDED,
            code: ICMP_EXC_FRAGTIME,
            rest: [0; 4]
        }
    );
    assert_eq!(
        &icmp[8..],
        &first[14..14 + 548],
        "quote: header + 528 bytes"
    );
    let k = st.counters();
    assert_eq!((k.ip.reasm_timeout, k.ip.reasm_fails), (3, 3));
    assert_eq!((k.icmp.out_time_excds, k.icmp.out_msgs), (1, 1));
}
