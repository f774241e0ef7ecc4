//! IP options on transmit (`IP_OPTIONS`): `ip_options_compile` checks,
//! `ip_options_build` on every datagram (record route, timestamp, loose
//! source route routed to its first hop), `ip_options_fragment` for the
//! fragments after the first, and a tshark dissection of such frames.
//! Expectations worked by hand from net/ipv4/ip_options.c and udp.c.

use super::*;
use crate::stack::ipopt::IpOptError;

const MAC_C: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc]);
const IP_C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const HOP2: Ipv4Addr = Ipv4Addr::new(192, 168, 9, 9);
const FINAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

fn opt_bytes(f: &Frame) -> Vec<u8> {
    let ip = Ipv4Header::parse(&f.bytes[14..]).unwrap();
    ip.options[..ip.options_len as usize].to_vec()
}

/// Milliseconds since midnight UTC now.
fn ms_of_day() -> u32 {
    u32::from_be_bytes(crate::stack::ipopt::current_timestamp())
}

/// Record route: the pointer moves past the first slot and our address
/// fills it; the header grows by the padded options (IHL 8), checksums
/// hold. A connected socket with options takes the general path and still
/// carries them; clearing them gives 20-byte headers again.
#[test]
fn record_route_on_the_wire_and_on_a_connected_socket() {
    let (mut st, cap) = resolved_stack(cfg(MAC_A, IP_A));
    let s = st.udp_socket().unwrap();
    // RR with two slots, length 11 → padded to 12 with End.
    let rr = [7u8, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0];
    st.socket(s).set_ip_options(&rr).unwrap();
    let mut got = [0u8; 40];
    assert_eq!(st.socket(s).ip_options(&mut got), Ok(12));
    assert_eq!(&got[..12], &[7, 11, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    st.socket(s).send_to(b"hello rr", sa(IP_B, 9)).unwrap();
    let f = cap.take();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].bytes[14], 0x48, "IHL 8: 20 + 12 bytes");
    let u = parse_udp(&f[0].bytes);
    assert_eq!(u.ip.total_len, 32 + 8 + 8);
    let mut want = vec![7u8, 11, 8];
    want.extend_from_slice(&IP_A.octets());
    want.extend_from_slice(&[0, 0, 0, 0, 0]);
    assert_eq!(opt_bytes(&f[0]), want);
    assert_eq!(u.payload, b"hello rr");
    assert_eq!(f[0].lens.1, 32, "l3_len covers the options");
    let l4 = &f[0].bytes[14 + 32..];
    assert!(UdpHeader::verify(l4, IP_A, IP_B));

    // Connected: the template is not used, the options still go out.
    st.socket(s).connect(sa(IP_B, 9)).unwrap();
    for _ in 0..3 {
        st.socket(s).send(b"c").unwrap();
    }
    let f = cap.take();
    assert_eq!(f.len(), 3);
    for fr in &f {
        assert_eq!(opt_bytes(fr), want);
    }
    st.socket(s).set_ip_options(&[]).unwrap();
    assert_eq!(st.socket(s).ip_options(&mut got), Ok(0));
    st.socket(s).send(b"c").unwrap();
    let f = cap.take();
    assert_eq!(f[0].bytes[14], 0x45);
    assert!(opt_bytes(&f[0]).is_empty());
}

/// Timestamp, flag 0 (times only) and flag 1 (address + time): the time is
/// milliseconds since midnight UTC, big-endian, taken as the datagram is
/// built; the pointer is past the slot filled.
#[test]
fn timestamp_options_carry_our_time_and_address() {
    let (mut st, cap) = resolved_stack(cfg(MAC_A, IP_A));
    let s = st.udp_socket().unwrap();
    st.socket(s)
        .set_ip_options(&[68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        .unwrap();
    let t0 = ms_of_day();
    st.socket(s).send_to(b"ts", sa(IP_B, 9)).unwrap();
    let t1 = ms_of_day();
    let o = opt_bytes(&cap.take()[0]);
    assert_eq!(&o[..4], &[68, 12, 9, 0]);
    let t = u32::from_be_bytes([o[4], o[5], o[6], o[7]]);
    assert!(
        (t0 <= t && t <= t1) || t1 < t0,
        "time {t} within [{t0}, {t1}]"
    );
    assert_eq!(&o[8..], &[0, 0, 0, 0], "second slot untouched");

    st.socket(s)
        .set_ip_options(&[68, 20, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        .unwrap();
    st.socket(s).send_to(b"ts", sa(IP_B, 9)).unwrap();
    let f = cap.take();
    assert_eq!(f[0].bytes[14], 0x4a, "IHL 10");
    let o = opt_bytes(&f[0]);
    assert_eq!(&o[..4], &[68, 20, 13, 1]);
    assert_eq!(&o[4..8], &IP_A.octets());
    let t = u32::from_be_bytes([o[8], o[9], o[10], o[11]]);
    assert!(t < 86_400_000);
    assert_eq!(&o[12..], &[0; 8]);
}

/// Loose source route: the first address is the first hop — the IP
/// destination and the next hop whose MAC the frame goes to — and leaves
/// the list; the final destination takes the last slot, pointer 4. As in
/// Linux's udp_sendmsg (`fl4->daddr = faddr`), the UDP checksum's
/// pseudo-header uses the first hop. No route to the final destination is
/// needed; a connected socket does not use its cached route either.
#[test]
fn loose_source_route_goes_to_its_first_hop() {
    let mut c = cfg(MAC_A, IP_A);
    c.static_neighbours.push((0, IP_C, MAC_C));
    let (mut st, cap) = resolved_stack(c);
    let s = st.udp_socket().unwrap();
    let mut lsrr = vec![0x83u8, 11, 4];
    lsrr.extend_from_slice(&IP_C.octets());
    lsrr.extend_from_slice(&HOP2.octets());
    st.socket(s).set_ip_options(&lsrr).unwrap();
    st.socket(s).send_to(b"via C", sa(FINAL, 5000)).unwrap();
    let f = cap.take();
    assert_eq!(f.len(), 1);
    let u = parse_udp(&f[0].bytes);
    assert_eq!(u.eth.dst, MAC_C, "framed to the first hop");
    assert_eq!(u.ip.dst, IP_C);
    assert_eq!(u.ip.src, IP_A);
    let mut want = vec![0x83u8, 11, 4];
    want.extend_from_slice(&HOP2.octets());
    want.extend_from_slice(&FINAL.octets());
    want.push(0);
    assert_eq!(opt_bytes(&f[0]), want);
    assert_eq!(u.udp.dst_port, 5000);
    assert!(UdpHeader::verify(&f[0].bytes[14 + 32..], IP_A, IP_C));

    // Connected to B: still routed by the source route.
    st.socket(s).connect(sa(IP_B, 9)).unwrap();
    st.socket(s).send(b"x").unwrap();
    let f = cap.take();
    let u = parse_udp(&f[0].bytes);
    assert_eq!((u.eth.dst, u.ip.dst), (MAC_C, IP_C));
    assert_eq!(&opt_bytes(&f[0])[7..11], &IP_B.octets());
}

/// A fragmented datagram with options: the per-fragment payload shrinks
/// by the options ((1500 - 32) & !7 = 1464); the first fragment carries
/// all of them, the later ones keep the copied ones (router alert, 0x94)
/// and have the others (record route, 7) turned into NOPs, same header
/// length; every header checksum is right and the data reassembles.
#[test]
fn fragments_after_the_first_carry_only_copied_options() {
    let (mut st, cap) = resolved_stack(cfg(MAC_A, IP_A));
    let s = st.udp_socket().unwrap();
    let opts = [0x94u8, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0];
    st.socket(s).set_ip_options(&opts).unwrap();
    let payload: Vec<u8> = (0..3000u32).map(|i| (i % 253) as u8).collect();
    st.socket(s).send_to(&payload, sa(IP_B, 7)).unwrap();
    let f = cap.take();
    assert_eq!(f.len(), 3);
    let hs: Vec<Ipv4Header> = f
        .iter()
        .map(|f| Ipv4Header::parse(&f.bytes[14..]).expect("header checksum good"))
        .collect();
    assert!(hs.iter().all(|h| h.header_len() == 32));
    assert_eq!(
        hs.iter().map(|h| h.total_len).collect::<Vec<_>>(),
        vec![1496, 1496, 32 + 3008 - 2928]
    );
    assert_eq!(
        hs.iter().map(|h| h.frag_offset()).collect::<Vec<_>>(),
        vec![0, 1464, 2928]
    );
    let mut first = vec![0x94u8, 4, 0, 0, 7, 7, 8];
    first.extend_from_slice(&IP_A.octets());
    first.push(0);
    assert_eq!(opt_bytes(&f[0]), first);
    let later = vec![0x94u8, 4, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0];
    assert_eq!(opt_bytes(&f[1]), later);
    assert_eq!(opt_bytes(&f[2]), later);
    let mut d = Vec::new();
    for (fr, h) in f.iter().zip(&hs) {
        assert_eq!(h.frag_offset(), d.len());
        d.extend_from_slice(&fr.bytes[14 + 32..14 + h.total_len as usize]);
    }
    assert!(UdpHeader::verify(&d, IP_A, IP_B));
    assert_eq!(&d[8..], &payload[..]);
    let c = st.counters();
    assert_eq!((c.ip.frag_creates, c.ip.frag_oks), (3, 1));

    // With DF the limit is the MTU less the options.
    st.socket(s).set_mtu_discover(PmtuDisc::Do).unwrap();
    assert_eq!(
        st.socket(s).send_to(&payload[..1500 - 32 - 8], sa(IP_B, 7)),
        Ok(1460)
    );
    assert_eq!(
        st.socket(s).send_to(&payload[..1500 - 32 - 7], sa(IP_B, 7)),
        Err(Errno::EMSGSIZE)
    );
}

/// `ip_options_compile`'s refusals: EINVAL, the offending byte, the
/// problem named; the socket's options stay what they were.
#[test]
fn bad_options_are_einval_naming_the_problem() {
    let (mut st, cap) = resolved_stack(cfg(MAC_A, IP_A));
    let s = st.udp_socket().unwrap();
    st.socket(s).set_ip_options(&[7, 7, 4, 0, 0, 0, 0]).unwrap();
    let cases: &[(&[u8], usize, &str)] = &[
        (&[0; 41], 40, "more than 40"),
        (&[1, 1, 1, 7], 3, "without a length"),
        (&[7, 9, 4, 0], 0, "past the end"),
        (&[7, 1, 4, 0], 0, "below 2"),
        (&[7, 2, 4, 0], 1, "record route shorter"),
        (&[1, 7, 7, 3, 0, 0, 0, 0], 3, "record route pointer below 4"),
        (&[7, 7, 6, 0, 0, 0, 0, 0], 2, "partial slot"),
        (&[68, 8, 4, 0, 0, 0, 0, 0], 2, "timestamp pointer below 5"),
        (&[68, 8, 5, 1, 0, 0, 0, 0], 2, "address+time"),
        (&[68, 8, 5, 2, 0, 0, 0, 0], 3, "timestamp flag"),
        (&[68, 8, 9, 0xf0, 0, 0, 0, 0], 3, "overflow"),
        (&[0x83, 7, 5, 1, 2, 3, 4, 0], 1, "pointer 4"),
        (&[0x83, 9, 4, 1, 2, 3, 4, 5, 6], 1, "whole addresses"),
        (&[0x83, 3, 3, 0], 2, "source route pointer below 4"),
        (
            &[0x83, 7, 4, 1, 2, 3, 4, 0x89, 7, 4, 1, 2, 3, 4],
            7,
            "second source route",
        ),
        (&[0x82, 4, 0, 0], 0, "CAP_NET_RAW"),
        (&[0x94, 3, 0, 0], 1, "router alert"),
    ];
    for (raw, off, what) in cases {
        let e: IpOptError = st.socket(s).set_ip_options(raw).unwrap_err();
        assert_eq!(e.errno, Errno::EINVAL, "{raw:?}");
        assert_eq!(e.offset, *off, "{raw:?}: {e}");
        assert!(e.to_string().contains(what), "{raw:?}: {e}");
        assert_eq!(Errno::from(e), Errno::EINVAL);
    }
    // Still the RR set first.
    st.socket(s).send_to(b"x", sa(IP_B, 9)).unwrap();
    assert_eq!(&opt_bytes(&cap.take()[0])[..3], &[7, 7, 8]);
    // End, NOP and a full RR (pointer past the end: nothing to add) pass.
    st.socket(s)
        .set_ip_options(&[1, 7, 7, 12, 9, 9, 9, 9, 0, 5])
        .unwrap();
    let mut got = [0u8; 40];
    assert_eq!(st.socket(s).ip_options(&mut got), Ok(12));
    assert_eq!(&got[..12], &[1, 7, 7, 12, 9, 9, 9, 9, 0, 0, 0, 0]);
}

/// The frames above written to a pcap and dissected by tshark with header
/// checksum validation: every header good, the option types as sent.
#[test]
fn tshark_dissects_option_frames_with_good_checksums() {
    let Some(_) = tshark() else { return };
    let mut c = cfg(MAC_A, IP_A);
    c.static_neighbours.push((0, IP_C, MAC_C));
    let (mut st, cap) = resolved_stack(c);
    let s = st.udp_socket().unwrap();
    let sends: [&[u8]; 3] = [
        &[7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0],
        &[68, 12, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        &[0x83, 7, 4, 10, 0, 0, 3],
    ];
    for o in sends {
        st.socket(s).set_ip_options(o).unwrap();
        st.socket(s).send_to(b"dissect me", sa(IP_B, 9)).unwrap();
    }
    st.socket(s)
        .set_ip_options(&[0x94, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0])
        .unwrap();
    st.socket(s).send_to(&[0x5a; 2000], sa(IP_B, 9)).unwrap();
    let frames = cap.take();
    assert_eq!(frames.len(), 5);
    let dir = std::env::temp_dir().join(format!("ws-ipopt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ipopt.pcap");
    {
        let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut w = crate::ethdev::pcap::PcapWriter::new(file).unwrap();
        for (i, f) in frames.iter().enumerate() {
            w.write(i as u64 * 1000, &f.bytes).unwrap();
        }
    }
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args(["-o", "ip.check_checksum:TRUE", "-T", "fields"])
        .args(["-e", "ip.opt.type", "-e", "ip.checksum.status"])
        .args(["-E", "separator=|"])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rows: Vec<(Vec<u32>, String)> = text
        .lines()
        .map(|l| {
            let (types, status) = l.split_once('|').expect("two fields");
            let types = types
                .split(',')
                .filter(|t| !t.is_empty())
                .map(|t| match t.strip_prefix("0x") {
                    Some(h) => u32::from_str_radix(h, 16).unwrap(),
                    None => t.parse().unwrap(),
                })
                .collect();
            (types, status.to_string())
        })
        .collect();
    assert_eq!(rows.len(), 5, "{text}");
    for (_, status) in &rows {
        assert_eq!(status, "1", "header checksum good: {text}");
    }
    // Options end with EOL (type 0) where padding follows.
    let no_eol = |v: &Vec<u32>| v.iter().copied().filter(|&t| t != 0).collect::<Vec<_>>();
    assert_eq!(no_eol(&rows[0].0), vec![7], "{text}");
    assert_eq!(no_eol(&rows[1].0), vec![68], "{text}");
    assert_eq!(no_eol(&rows[2].0), vec![131], "{text}");
    assert_eq!(no_eol(&rows[3].0), vec![148, 7], "{text}");
    assert_eq!(no_eol(&rows[4].0), vec![148, 1, 1, 1, 1, 1, 1, 1], "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Strict source route: the first hop must be on-link (udp_sendmsg sets
/// RTO_ONLINK for `is_strictroute`): through a gateway it is ENETUNREACH,
/// where a loose route to the same first hop goes via the gateway.
#[test]
fn strict_source_route_needs_an_on_link_first_hop() {
    let (mut st, cap) = resolved_stack(cfg(MAC_A, IP_A));
    st.add_route(&RouteConf {
        prefix: Ipv4Addr::UNSPECIFIED,
        len: 0,
        gateway: Some(IP_B),
        port: Some(0),
        ..Default::default()
    })
    .unwrap();
    let s = st.udp_socket().unwrap();
    let mut ssrr = vec![0x89u8, 7, 4];
    ssrr.extend_from_slice(&HOP2.octets());
    st.socket(s).set_ip_options(&ssrr).unwrap();
    assert_eq!(
        st.socket(s).send_to(b"x", sa(FINAL, 9)),
        Err(Errno::ENETUNREACH)
    );
    assert!(cap.take().is_empty());
    ssrr[0] = 0x83;
    st.socket(s).set_ip_options(&ssrr).unwrap();
    st.socket(s).send_to(b"x", sa(FINAL, 9)).unwrap();
    let f = cap.take();
    let u = parse_udp(&f[0].bytes);
    assert_eq!((u.eth.dst, u.ip.dst), (MAC_B, HOP2), "via the gateway");
    assert_eq!(&opt_bytes(&f[0])[..7], &[0x83, 7, 4, 192, 0, 2, 7]);
}
