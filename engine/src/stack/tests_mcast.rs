//! Multicast: IP_ADD/DROP_MEMBERSHIP with IGMPv2 reports and leaves (RFC
//! 2236; net/ipv4/igmp.c with force_igmp_version = 2), the receive group
//! filter, delivery to every interested socket (`__udp4_lib_mcast_deliver`,
//! `ip_mc_sf_allow`), and IP_MULTICAST_LOOP (`ip_mc_output`).

use super::igmp::*;
use super::*;

const G: Ipv4Addr = Ipv4Addr::new(239, 1, 2, 3);

/// (IPv4 header, IGMP bytes) of an IGMP frame, checksums checked.
fn igmp_of(f: &[u8]) -> Option<(Ipv4Header, Vec<u8>)> {
    let ip = Ipv4Header::parse(&f[14..]).ok()?;
    if ip.protocol != IPPROTO_IGMP {
        return None;
    }
    let hl = ip.header_len();
    let g = f[14 + hl..14 + ip.total_len as usize].to_vec();
    assert_eq!(checksum::fold(checksum::sum(&g)), 0xffff, "IGMP checksum");
    Some((ip, g))
}

/// Joining sends two IGMPv2 reports (2 jiffies after the join, then within
/// the 10 s unsolicited report interval: igmp_qrv = 2); a second socket
/// on the group adds a user, no report; the last leave sends the leave
/// message to 224.0.0.2. Every frame by hand: 01:00:5e + the low 23 bits,
/// IHL 6 with Router Alert (94 04 00 00), TOS 0xc0, TTL 1, DF, ID 0,
/// protocol 2; IGMP type 0x16/0x17, max resp 0, the group. tshark
/// dissects them with no warning and good checksums.
#[test]
fn join_and_leave_send_igmpv2_reports_and_leave() {
    let (mut st, cap) = resolved_stack(cfg(MAC_A, IP_A));
    st.start(0);
    cap.take();
    let s = st.udp_socket().unwrap();
    let t = st.udp_socket().unwrap();
    assert_eq!(
        st.socket(s).join_multicast_v4(IP_B, IP_A),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        st.socket(s)
            .join_multicast_v4(G, Ipv4Addr::new(10, 9, 9, 9)),
        Err(Errno::ENODEV)
    );
    st.socket(s).join_multicast_v4(G, IP_A).unwrap();
    assert_eq!(
        st.socket(s).join_multicast_v4(G, IP_A),
        Err(Errno::EADDRINUSE)
    );
    st.poll_timers(1_000_000);
    assert!(cap.take().is_empty(), "the first report waits 2 jiffies");
    st.poll_timers(2_000_000);
    let mut frames = cap.take();
    assert_eq!(frames.len(), 1);
    let f = &frames[0].bytes;
    assert_eq!(&f[0..6], &[1, 0, 0x5e, 1, 2, 3]);
    assert_eq!(&f[6..14], &[2, 0, 0, 0, 0, 0xa, 0x08, 0x00]);
    assert_eq!(
        &f[14..24],
        &[0x46, 0xc0, 0, 32, 0, 0, 0x40, 0, 1, 2],
        "IHL 6, TOS 0xc0, len 32, ID 0, DF, TTL 1, IGMP"
    );
    assert_eq!(&f[26..34], &[10, 0, 0, 1, 239, 1, 2, 3]);
    assert_eq!(&f[34..38], &[0x94, 0x04, 0, 0], "Router Alert");
    let (_, g) = igmp_of(f).unwrap();
    assert_eq!((g[0], g[1], &g[4..8]), (0x16, 0, &[239, 1, 2, 3][..]));
    // The repeat, within 10 s (+ 2 jiffies); then no more.
    for ms in (100..=10_100).step_by(100) {
        st.poll_timers(ms * 1_000_000);
    }
    st.poll_timers(60 * S);
    let again = cap.take();
    assert_eq!(again.len(), 1, "igmp_qrv = 2 reports in all");
    assert_eq!(igmp_of(&again[0].bytes).unwrap().1, g);
    frames.extend(again);
    // 0.0.0.0 picks the port by a route to the group: none here (no
    // default route), so ENODEV, as ip_mc_find_dev.
    assert_eq!(
        st.socket(t).join_multicast_v4(G, Ipv4Addr::UNSPECIFIED),
        Err(Errno::ENODEV)
    );
    // A second user: no report.
    st.socket(t).join_multicast_v4(G, IP_A).unwrap();
    st.poll_timers(61 * S);
    assert!(cap.take().is_empty());
    assert_eq!(st.multicast_groups(), vec![(0, G, 2)]);
    // The first leave: one user left, nothing sent; the last: the leave.
    st.socket(s).leave_multicast_v4(G, IP_A).unwrap();
    assert!(cap.take().is_empty());
    assert_eq!(
        st.socket(s).leave_multicast_v4(G, IP_A),
        Err(Errno::EADDRNOTAVAIL)
    );
    st.socket(t).leave_multicast_v4(G, IP_A).unwrap();
    let leave = cap.take();
    assert_eq!(leave.len(), 1);
    let f = &leave[0].bytes;
    assert_eq!(&f[0..6], &[1, 0, 0x5e, 0, 0, 2]);
    let (ip, g) = igmp_of(f).unwrap();
    assert_eq!(ip.dst, IGMP_ALL_ROUTER);
    assert_eq!((g[0], &g[4..8]), (0x17, &[239, 1, 2, 3][..]));
    frames.extend(leave);
    assert!(st.multicast_groups().is_empty());
    let k = st.counters();
    assert_eq!((k.igmp.reports_sent, k.igmp.leaves_sent), (2, 1));
    // All-hosts is never reported; 20 memberships per socket at most.
    st.socket(s)
        .join_multicast_v4(IGMP_ALL_HOSTS, IP_A)
        .unwrap();
    for i in 1..20u8 {
        st.socket(s)
            .join_multicast_v4(Ipv4Addr::new(239, 9, 0, i), IP_A)
            .unwrap();
    }
    assert_eq!(
        st.socket(s)
            .join_multicast_v4(Ipv4Addr::new(239, 9, 0, 99), IP_A),
        Err(Errno::ENOBUFS)
    );
    st.poll_timers(62 * S);
    let reports = cap.take();
    assert_eq!(reports.len(), 19, "one report per group but 224.0.0.1");
    // Closing the socket leaves every group (ip_mc_drop_socket).
    st.close(s).unwrap();
    assert_eq!(cap.take().len(), 19);
    assert!(st.multicast_groups().is_empty());

    let Some(_) = tshark() else { return };
    let dir = std::env::temp_dir().join(format!("ws-igmp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("igmp.pcap");
    {
        let file = std::fs::File::create(&path).unwrap();
        let mut w = crate::ethdev::pcap::PcapWriter::new(file).unwrap();
        for (i, f) in frames.iter().enumerate() {
            w.write(i as u64 * 1000, &f.bytes).unwrap();
        }
        w.flush().unwrap();
    }
    let rows = tshark_fields(
        &path,
        &[
            "frame.protocols",
            "ip.checksum.status",
            "igmp.version",
            "igmp.type",
            "igmp.maddr",
            "igmp.checksum.status",
            "ip.opt.type",
            "_ws.expert.severity",
        ],
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (r, ty) in rows.iter().zip(["0x16", "0x16", "0x17"]) {
        assert!(r[0].starts_with("eth:ethertype:ip:igmp"), "{r:?}");
        assert_eq!(r[1], "1", "ip checksum good: {r:?}");
        assert_eq!(r[2], "2", "IGMPv2: {r:?}");
        assert_eq!(r[3], ty, "{r:?}");
        assert_eq!(r[4], "239.1.2.3", "{r:?}");
        assert_ne!(r[5], "0", "igmp checksum not bad: {r:?}");
        assert!(r[6].contains("148"), "router alert (0x94): {r:?}");
        assert_eq!(r[7], "", "no expert info: {r:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn mcast_frame(group: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = udp_frame(IP_B, group, 5000, dport, payload, true);
    f[0..6].copy_from_slice(&crate::stack::wire::ipv4_multicast_mac(group).0);
    f
}

/// Receive: a group not joined on the port is dropped (`mc_not_joined`);
/// a joined group's datagram reaches a socket bound to the port on
/// 0.0.0.0 or on the group, with IP_MULTICAST_ALL (the default) even if
/// another socket joined; with it off only a socket that joined itself
/// (`ip_mc_sf_allow`). Nobody wanting it is Udp IgnoredMulti, not NoPorts.
/// 224.0.0.1 is always joined.
#[test]
fn rx_accepts_joined_groups_and_filters_by_socket() {
    let (mut st, _cap) = resolved_stack(cfg(MAC_A, IP_A));
    let a = st.udp_socket().unwrap();
    st.socket(a).bind(sa(Ipv4Addr::UNSPECIFIED, 6000)).unwrap();
    let x = st.udp_socket().unwrap();
    st.socket(x).bind(sa(G, 6001)).unwrap();
    let j = st.udp_socket().unwrap();
    inject(&mut st, &mcast_frame(G, 6000, b"not joined"));
    assert_eq!(st.counters().rx.mc_not_joined, 1);
    let mut buf = [0u8; 32];
    assert_eq!(st.socket(a).recv_from(&mut buf), Err(Errno::EAGAIN));
    st.socket(j).join_multicast_v4(G, IP_A).unwrap();
    inject(&mut st, &mcast_frame(G, 6000, b"joined"));
    assert_eq!(st.socket(a).recv_from(&mut buf), Ok((6, sa(IP_B, 5000))));
    inject(&mut st, &mcast_frame(G, 6001, b"to x"));
    assert_eq!(st.socket(x).recv_from(&mut buf), Ok((4, sa(IP_B, 5000))));
    // IP_MULTICAST_ALL off: `a` did not join.
    st.socket(a).set_multicast_all(false).unwrap();
    inject(&mut st, &mcast_frame(G, 6000, b"joined"));
    assert_eq!(st.socket(a).recv_from(&mut buf), Err(Errno::EAGAIN));
    st.socket(a).join_multicast_v4(G, IP_A).unwrap();
    inject(&mut st, &mcast_frame(G, 6000, b"joined"));
    assert_eq!(st.socket(a).recv_from(&mut buf), Ok((6, sa(IP_B, 5000))));
    inject(&mut st, &mcast_frame(IGMP_ALL_HOSTS, 6000, b"all"));
    let k = st.counters();
    assert_eq!(k.rx.mc_not_joined, 1);
    assert_eq!((k.udp.ignored_multi, k.udp.no_ports), (2, 0));
    assert_eq!(k.udp.in_datagrams, 3);
}

/// IP_MULTICAST_LOOP (`ip_mc_output` → `dev_loopback_xmit`): a datagram
/// to a group the stack joined on the outgoing port goes on the wire and
/// comes back to the local member; with the option off only the wire;
/// with IP_MULTICAST_TTL 0 only the local copy. A group nobody here
/// joined is not looped.
#[test]
fn multicast_loop_delivers_our_own_datagrams_to_local_members() {
    let (mut st, cap) = resolved_stack(cfg(MAC_A, IP_A));
    let r = st.udp_socket().unwrap();
    st.socket(r).bind(sa(Ipv4Addr::UNSPECIFIED, 6000)).unwrap();
    st.socket(r).join_multicast_v4(G, IP_A).unwrap();
    let s = st.udp_socket().unwrap();
    st.socket(s).bind(sa(IP_A, 0)).unwrap();
    let mut buf = [0u8; 32];
    let wire = |cap: &Cap| {
        cap.take()
            .iter()
            .filter(|f| Ipv4Header::parse(&f.bytes[14..]).is_ok_and(|h| h.protocol == IPPROTO_UDP))
            .count()
    };
    st.socket(s).send_to(b"loop", sa(G, 6000)).unwrap();
    st.flush();
    assert_eq!(wire(&cap), 1);
    let from = sa(IP_A, st.socket(s).local_addr().unwrap().port());
    assert_eq!(st.socket(r).recv_from(&mut buf), Ok((4, from)));
    assert_eq!(&buf[..4], b"loop");
    st.socket(s).set_multicast_loop(false).unwrap();
    st.socket(s).send_to(b"noloop", sa(G, 6000)).unwrap();
    st.flush();
    assert_eq!(wire(&cap), 1);
    assert_eq!(st.socket(r).recv_from(&mut buf), Err(Errno::EAGAIN));
    st.socket(s).set_multicast_loop(true).unwrap();
    st.socket(s).set_multicast_ttl(0).unwrap();
    st.socket(s).send_to(b"ttl0", sa(G, 6000)).unwrap();
    st.flush();
    assert_eq!(wire(&cap), 0, "TTL 0 stays on the host");
    assert_eq!(st.socket(r).recv_from(&mut buf), Ok((4, from)));
    st.socket(s).set_multicast_ttl(1).unwrap();
    st.socket(s)
        .send_to(b"other", sa(Ipv4Addr::new(239, 7, 7, 7), 6000))
        .unwrap();
    st.flush();
    assert_eq!(wire(&cap), 1);
    assert_eq!(st.socket(r).recv_from(&mut buf), Err(Errno::EAGAIN));
    assert_eq!(st.counters().rx.mc_not_joined, 0);
}

/// An IGMP frame from a querier/another member (10.0.0.254), with Router
/// Alert and a correct checksum unless `bad`.
fn igmp_frame(dst: Ipv4Addr, msg: &[u8], bad: bool) -> Vec<u8> {
    let mut m = msg.to_vec();
    let c = !checksum::fold(checksum::sum(&m));
    m[2..4].copy_from_slice(&c.to_be_bytes());
    if bad {
        m[7] ^= 1;
    }
    let mut f = vec![0u8; 14 + 24 + m.len()];
    EthernetHeader {
        dst: wire::ipv4_multicast_mac(dst),
        src: MAC_B,
        ethertype: ETHERTYPE_IPV4,
    }
    .emit(&mut f);
    let mut h = Ipv4Header {
        tos: 0xc0,
        total_len: (24 + m.len()) as u16,
        ttl: 1,
        protocol: IPPROTO_IGMP,
        src: Ipv4Addr::new(10, 0, 0, 254),
        dst,
        ..Default::default()
    };
    h.options[..4].copy_from_slice(&[0x94, 4, 0, 0]);
    h.options_len = 4;
    h.emit(&mut f[14..]);
    f[38..].copy_from_slice(&m);
    f
}

/// The IGMP reports among `frames` (their groups).
fn reports(frames: &[Frame]) -> Vec<Ipv4Addr> {
    frames
        .iter()
        .filter_map(|f| igmp_of(&f.bytes))
        .filter(|(_, g)| g[0] == IGMPV2_HOST_MEMBERSHIP_REPORT)
        .map(|(_, g)| Ipv4Addr::new(g[4], g[5], g[6], g[7]))
        .collect()
}

/// Queries answered as Linux's `igmp_heard_query` does (v2 forced): a
/// general v2 query with Max Resp Time 50 (5 s) brings one report per
/// joined group, each due in [2 ms, 5.002 s); a group-specific query only
/// that group's; a v3 query (12 bytes) is answered as v2 with
/// `IGMPV3_MRC(0x8c)` = 0x1c << 3 = 224 tenths (22.4 s); a bad checksum or
/// a 10-byte query is ignored; another member's report for the group stops
/// our pending one (`igmp_heard_report`).
#[test]
fn queries_are_answered_within_max_resp_time_and_reports_suppress() {
    let (mut st, cap) = resolved_stack(cfg(MAC_A, IP_A));
    st.start(0);
    let s = st.udp_socket().unwrap();
    let g2 = Ipv4Addr::new(239, 9, 9, 9);
    st.socket(s).join_multicast_v4(G, IP_A).unwrap();
    st.socket(s).join_multicast_v4(g2, IP_A).unwrap();
    // Let the unsolicited reports go (two each: at 2 ms, then within 10 s).
    st.poll_timers(S / 100);
    st.poll_timers(11 * S);
    assert_eq!(reports(&cap.take()).len(), 4);
    st.poll_timers(40 * S);
    assert!(cap.take().is_empty());
    let t0 = 40 * S;
    let general = [IGMP_HOST_MEMBERSHIP_QUERY, 50, 0, 0, 0, 0, 0, 0];
    inject(&mut st, &igmp_frame(IGMP_ALL_HOSTS, &general, false));
    st.poll_timers(t0 + S / 1000);
    assert!(reports(&cap.take()).is_empty(), "not before 2 jiffies");
    st.poll_timers(t0 + 5 * S + 2_000_000);
    let mut got = reports(&cap.take());
    got.sort();
    assert_eq!(got, vec![G, g2]);
    assert_eq!(igmpv3_mrc(0x8c), 224);
    // Group-specific (to the group, as RFC 2236 sends it): only G.
    let t1 = 50 * S;
    st.poll_timers(t1);
    let mut specific = [IGMP_HOST_MEMBERSHIP_QUERY, 10, 0, 0, 0, 0, 0, 0];
    specific[4..8].copy_from_slice(&G.octets());
    inject(&mut st, &igmp_frame(G, &specific, false));
    st.poll_timers(t1 + S + 2_000_000);
    assert_eq!(reports(&cap.take()), vec![G]);
    // Ignored: a bad checksum, a bogus 10-byte query.
    let t2 = 60 * S;
    st.poll_timers(t2);
    inject(&mut st, &igmp_frame(IGMP_ALL_HOSTS, &general, true));
    let mut bogus = general.to_vec();
    bogus.extend_from_slice(&[0, 0]);
    inject(&mut st, &igmp_frame(IGMP_ALL_HOSTS, &bogus, false));
    st.poll_timers(t2 + 6 * S);
    assert!(reports(&cap.take()).is_empty());
    // IGMPv3 query, Max Resp Code 0x8c: answered within 22.4 s, not 5.
    let t3 = 70 * S;
    st.poll_timers(t3);
    let v3 = [
        IGMP_HOST_MEMBERSHIP_QUERY,
        0x8c,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        2,
        0,
        0,
    ];
    inject(&mut st, &igmp_frame(IGMP_ALL_HOSTS, &v3, false));
    st.poll_timers(t3 + 22_400_000_000 + 2_000_000);
    assert_eq!(reports(&cap.take()).len(), 2);
    // Suppression: a query, then another member's report for G: only g2's
    // report goes.
    let t4 = 100 * S;
    st.poll_timers(t4);
    inject(&mut st, &igmp_frame(IGMP_ALL_HOSTS, &general, false));
    let mut theirs = [IGMPV2_HOST_MEMBERSHIP_REPORT, 0, 0, 0, 0, 0, 0, 0];
    theirs[4..8].copy_from_slice(&G.octets());
    inject(&mut st, &igmp_frame(G, &theirs, false));
    st.poll_timers(t4 + 5 * S + 2_000_000);
    assert_eq!(reports(&cap.take()), vec![g2]);
    assert_eq!(st.counters().ip.in_unknown_protos, 0);
}

/// `force_igmp_version = 3` (RFC 3376 reports, as Linux's default sends):
/// a join is `igmp_qrv` = 2 reports to 224.0.0.22 with one
/// CHANGE_TO_EXCLUDE record (no sources) — at 2 ms and within the v3
/// unsolicited interval (1 s); a general query is answered with
/// MODE_IS_EXCLUDE; another host's report suppresses nothing; the leave is
/// two CHANGE_TO_INCLUDE records, the group unjoined at once. tshark
/// dissects every report with its checksum validated.
#[test]
fn igmpv3_reports_on_join_query_and_leave() {
    let mut c = cfg(MAC_A, IP_A);
    c.force_igmp_version = 3;
    let (mut st, cap) = resolved_stack(c);
    st.start(0);
    let s = st.udp_socket().unwrap();
    st.socket(s).join_multicast_v4(G, IP_A).unwrap();
    let mut all = Vec::new();
    let recs = |frames: Vec<Frame>, all: &mut Vec<Frame>| -> Vec<(u8, Ipv4Addr)> {
        let v = frames
            .iter()
            .filter_map(|f| igmp_of(&f.bytes).map(|x| (f.bytes[0..6].to_vec(), x)))
            .map(|(mac, (ip, g))| {
                assert_eq!(mac, [0x01, 0x00, 0x5e, 0, 0, 0x16]);
                assert_eq!((ip.dst, ip.ttl, ip.tos), (IGMPV3_ALL_MCR, 1, 0xc0));
                assert_eq!((g[0], &g[4..8], g.len()), (0x22, &[0u8, 0, 0, 1][..], 16));
                assert_eq!(&g[9..12], &[0, 0, 0], "no aux data, no sources");
                (g[8], Ipv4Addr::new(g[12], g[13], g[14], g[15]))
            })
            .collect();
        all.extend(frames);
        v
    };
    st.poll_timers(1_000_000);
    assert!(
        recs(cap.take(), &mut all).is_empty(),
        "not before 2 jiffies"
    );
    st.poll_timers(2_000_000);
    assert_eq!(
        recs(cap.take(), &mut all),
        vec![(IGMPV3_CHANGE_TO_EXCLUDE, G)]
    );
    st.poll_timers(2_000_000 + S + 2_000_000);
    assert_eq!(
        recs(cap.take(), &mut all),
        vec![(IGMPV3_CHANGE_TO_EXCLUDE, G)]
    );
    st.poll_timers(5 * S);
    assert!(cap.take().is_empty());
    // General IGMPv3 query (Max Resp Code 20 = 2 s); another host's v2
    // report for G does not suppress ours.
    let v3 = [IGMP_HOST_MEMBERSHIP_QUERY, 20, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0];
    inject(&mut st, &igmp_frame(IGMP_ALL_HOSTS, &v3, false));
    let mut theirs = [IGMPV2_HOST_MEMBERSHIP_REPORT, 0, 0, 0, 0, 0, 0, 0];
    theirs[4..8].copy_from_slice(&G.octets());
    inject(&mut st, &igmp_frame(G, &theirs, false));
    st.poll_timers(7 * S + 2_000_000);
    assert_eq!(
        recs(cap.take(), &mut all),
        vec![(IGMPV3_MODE_IS_EXCLUDE, G)]
    );
    // Leave: TO_IN twice; the group is not joined any more.
    st.poll_timers(10 * S);
    st.socket(s).leave_multicast_v4(G, IP_A).unwrap();
    assert!(!st.mc.is_member(0, G));
    st.poll_timers(10 * S + 2_000_000);
    st.poll_timers(11 * S + 4_000_000);
    assert_eq!(
        recs(cap.take(), &mut all),
        vec![(IGMPV3_CHANGE_TO_INCLUDE, G), (IGMPV3_CHANGE_TO_INCLUDE, G)]
    );
    st.poll_timers(20 * S);
    assert!(cap.take().is_empty());
    assert_eq!(
        st.mc.list().len(),
        0,
        "the leave records done, the group is gone"
    );
    let k = st.counters();
    assert_eq!((k.igmp.reports_sent, k.igmp.leaves_sent), (3, 2));
    let mut bad = cfg(MAC_A, IP_A);
    bad.force_igmp_version = 1;
    assert!(Stack::new(bad, pool("igmp1", 64), Box::new(Cap::default())).is_err());

    let Some(_) = tshark() else { return };
    let dir = std::env::temp_dir().join(format!("ws-igmp3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("igmp3.pcap");
    {
        let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut w = crate::ethdev::pcap::PcapWriter::new(file).unwrap();
        for (i, f) in all.iter().enumerate() {
            w.write(i as u64 * 1000, &f.bytes).unwrap();
        }
    }
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-T",
            "fields",
            "-E",
            "separator=|",
        ])
        .args([
            "-e",
            "igmp.version",
            "-e",
            "igmp.type",
            "-e",
            "igmp.num_grp_recs",
        ])
        .args([
            "-e",
            "igmp.record_type",
            "-e",
            "igmp.maddr",
            "-e",
            "igmp.checksum.status",
        ])
        .args(["-e", "ip.checksum.status", "-e", "_ws.expert"])
        .output()
        .expect("run tshark");
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    // Only the IGMP frames (start() also sent a gratuitous ARP).
    let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with('|')).collect();
    assert_eq!(rows.len(), 5, "{text}");
    let types: Vec<&str> = rows.iter().map(|r| r.split('|').nth(3).unwrap()).collect();
    assert_eq!(types, vec!["4", "4", "2", "3", "3"], "{text}");
    for r in rows {
        let f: Vec<&str> = r.split('|').collect();
        assert_eq!(&f[..3], &["3", "0x22", "1"], "{text}");
        // Checksum status 1: good (tshark's PROTO_CHECKSUM_E_GOOD); no expert note.
        assert_eq!(
            (f[4], f[5], f[6], f[7]),
            ("239.1.2.3", "1", "1", ""),
            "{text}"
        );
    }
}
