//! Neighbour table limits: `neigh_alloc`'s `gc_thresh2`/`gc_thresh3` with
//! `neigh_forced_gc`, `table_fulls`, `unres_qlen_bytes`, and PERMANENT
//! entries outside it all (net/core/neighbour.c). Expectations worked by
//! hand with small thresholds.

use super::*;

fn host(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, i)
}

fn neigh_stack(f: impl FnOnce(&mut NeighParams)) -> (Stack, Cap) {
    let mut c = cfg(MAC_A, IP_A);
    f(&mut c.neigh);
    c.static_neighbours.push((0, IP_B, MAC_B));
    cap_stack(c)
}

/// One datagram to each host, on one unconnected socket.
fn send_each(st: &mut Stack, s: SocketId, hosts: &[u8]) -> Vec<Result<usize, Errno>> {
    hosts
        .iter()
        .map(|&h| st.socket(s).send_to(b"x", sa(host(h), 9)))
        .collect()
}

/// gc_thresh2 = 2, gc_thresh3 = 4. Four INCOMPLETE entries (each has its
/// retransmit timer: referenced, `refcnt > 1`) fill the table; the fifth
/// runs a forced GC that can free nothing → `table_fulls`, and the packet
/// fails with ENOBUFS — which `udp_send_skb` hides in SndbufErrors unless
/// IP_RECVERR. Once they are FAILED (3 probes, 3 s), creating the fifth
/// frees `gc_entries + 1 - gc_thresh2` = 5 - 2 = 3 of them, oldest first.
/// The static entry counts nowhere and is never collected.
#[test]
fn table_full_at_gc_thresh3_then_forced_gc_frees_failed_entries_oldest_first() {
    let (mut st, cap) = neigh_stack(|p| {
        p.gc_thresh2 = 2;
        p.gc_thresh3 = 4;
    });
    let s = st.udp_socket().unwrap();
    assert_eq!(send_each(&mut st, s, &[10, 11, 12, 13]), vec![Ok(1); 4]);
    let k = st.counters();
    // Below 5 s since the table began (last_flush = 0): no forced GC yet.
    assert_eq!((k.neigh.forced_gc_runs, k.neigh.table_fulls), (0, 0));
    // The fifth: nothing collectable, the datagram is lost.
    let before = st.counters();
    assert_eq!(send_each(&mut st, s, &[14]), vec![Ok(1)]);
    let k = st.counters();
    assert_eq!((k.neigh.forced_gc_runs, k.neigh.table_fulls), (1, 1));
    assert_eq!(k.udp.sndbuf_errors - before.udp.sndbuf_errors, 1);
    assert_eq!(k.ip.out_discards - before.ip.out_discards, 1);
    assert_eq!(st.neighbour_state(0, host(14)), None);
    // With IP_RECVERR the sender hears it.
    let r = st.udp_socket().unwrap();
    st.socket(r).set_recverr(true).unwrap();
    assert_eq!(
        st.socket(r).send_to(b"x", sa(host(14), 9)),
        Err(Errno::ENOBUFS)
    );
    // The application-side resolve fails the same way.
    assert_eq!(st.neigh_event_send(0, host(14)), None);
    assert_eq!(st.counters().neigh.table_fulls, 3);
    // The static entry still works (exempt, never refused).
    st.socket(s).send_to(b"to B", sa(IP_B, 9)).unwrap();
    let f = cap.take();
    let last = parse_udp(&f.last().unwrap().bytes);
    assert_eq!((last.eth.dst, &last.payload[..]), (MAC_B, &b"to B"[..]));

    // 3 probes, 1 s apart: FAILED at 3 s (the periodic GC does not run
    // below gc_thresh1 = 128 entries, so they stay).
    for t in 1..=4 {
        st.poll_timers(t * S);
    }
    for h in 10..=13 {
        assert_eq!(st.neighbour_state(0, host(h)), Some(NudState::Failed));
    }
    let destroys0 = st.counters().neigh.destroys;
    assert_eq!(send_each(&mut st, s, &[14]), vec![Ok(1)]);
    let k = st.counters();
    assert_eq!(k.neigh.destroys - destroys0, 3);
    assert_eq!((k.neigh.forced_gc_runs, k.neigh.table_fulls), (4, 3));
    let left: Vec<(Ipv4Addr, NudState)> = st.neighbours().iter().map(|n| (n.ip, n.state)).collect();
    assert_eq!(
        left,
        vec![
            (IP_B, NudState::Permanent),
            (host(13), NudState::Failed),
            (host(14), NudState::Incomplete),
        ]
    );
}

/// Between gc_thresh2 and gc_thresh3 a forced GC runs only when the last
/// one is more than 5 s old (`time_after(now, last_flush + 5 * HZ)`), and
/// it takes only entries not updated for 5 s: two STALE entries learned
/// from ARP requests at 0 s and 3 s; at 6 s (gc_thresh2 = 1, gc_thresh3 =
/// 100) a new entry collects the first only.
#[test]
fn forced_gc_between_thresholds_is_rate_limited_and_spares_recent_entries() {
    let (mut st, cap) = neigh_stack(|p| {
        p.gc_thresh2 = 1;
        p.gc_thresh3 = 100;
    });
    let s = st.udp_socket().unwrap();
    let mac = |i: u8| MacAddr([2, 0, 0, 0, 1, i]);
    inject(
        &mut st,
        &arp_frame(ARP_REQUEST, mac(50), host(50), MacAddr::ZERO, IP_A),
    );
    st.poll_timers(3 * S);
    inject(
        &mut st,
        &arp_frame(ARP_REQUEST, mac(51), host(51), MacAddr::ZERO, IP_A),
    );
    assert_eq!(st.neighbour_state(0, host(50)), Some(NudState::Stale));
    // 4 s: over gc_thresh2 but within 5 s of the table's start: no GC.
    st.poll_timers(4 * S);
    send_each(&mut st, s, &[60]);
    assert_eq!(st.counters().neigh.forced_gc_runs, 0);
    // 6 s: the GC runs; .50 (updated at 0 s) goes, .51 (3 s) and .60
    // (INCOMPLETE, its timer running) stay.
    st.poll_timers(6 * S);
    send_each(&mut st, s, &[61]);
    let k = st.counters();
    assert_eq!((k.neigh.forced_gc_runs, k.neigh.destroys), (1, 1));
    assert_eq!(st.neighbour_state(0, host(50)), None);
    assert_eq!(st.neighbour_state(0, host(51)), Some(NudState::Stale));
    // 7 s: the next creation is within 5 s of that GC: none.
    st.poll_timers(7 * S);
    send_each(&mut st, s, &[62]);
    assert_eq!(st.counters().neigh.forced_gc_runs, 1);
    assert_eq!(st.neighbours().len(), 1 + 4, "B + .51 .60 .61 .62");
    drop(cap);
}

/// `unres_qlen_bytes` (`__neigh_event_send`): while queued bytes + the new
/// packet's truesize exceed the limit, the oldest is dropped
/// (`unres_discards`). A 1-byte datagram is a 29-byte IPv4 packet, a
/// 43-byte frame: `SKB_TRUESIZE` 43 + 256 + 320 = 619; a limit of 3 × 619
/// holds three. A packet larger than the limit alone is still queued. The
/// default 212 992 holds 101 full frames (1514 + 576 = 2090 each: 101 ×
/// 2090 = 211 090, 102 × 2090 = 213 180).
#[test]
fn unres_qlen_bytes_bounds_the_queue_oldest_dropped() {
    let ts = 29 + 14 + 256 + 320;
    let (mut st, cap) = neigh_stack(|p| {
        p.unres_qlen = 256;
        p.unres_qlen_bytes = 3 * ts;
    });
    let s = st.udp_socket().unwrap();
    for i in 0..5u8 {
        st.socket(s).send_to(&[i], sa(host(20), 9)).unwrap();
    }
    assert_eq!(st.counters().neigh.unres_discards, 2);
    assert_eq!(
        st.neighbours()
            .iter()
            .find(|n| n.ip == host(20))
            .unwrap()
            .queued,
        3
    );
    cap.take();
    inject(&mut st, &arp_frame(ARP_REPLY, MAC_B, host(20), MAC_A, IP_A));
    let got: Vec<Vec<u8>> = cap
        .take()
        .iter()
        .map(|f| parse_udp(&f.bytes).payload)
        .collect();
    assert_eq!(got, vec![vec![2], vec![3], vec![4]]);

    // Limit below one packet: each new packet replaces the one queued.
    let (mut st, _cap) = neigh_stack(|p| p.unres_qlen_bytes = 1000);
    let s = st.udp_socket().unwrap();
    for i in 0..3u8 {
        st.socket(s).send_to(&[i], sa(host(21), 9)).unwrap();
    }
    assert_eq!(st.counters().neigh.unres_discards, 2);
    assert_eq!(
        st.neighbours()
            .iter()
            .find(|n| n.ip == host(21))
            .unwrap()
            .queued,
        1
    );
    // The default, with the packet count out of the way: 110 full frames
    // (1472-byte datagrams, 1500-byte packets) → 101 queued, 9 dropped.
    let (mut st, _cap) = neigh_stack(|p| p.unres_qlen = 256);
    let s = st.udp_socket().unwrap();
    // (Each queued datagram keeps its 2304-byte buffer charged to the
    // socket: room for 110.)
    st.socket(s).set_sndbuf(1 << 20).unwrap();
    for _ in 0..110 {
        st.socket(s).send_to(&[7u8; 1472], sa(host(22), 9)).unwrap();
    }
    assert_eq!(st.counters().neigh.unres_discards, 9);
    let q = st
        .neighbours()
        .iter()
        .find(|n| n.ip == host(22))
        .unwrap()
        .queued;
    assert_eq!(q, 101);
}

/// Linux's defaults: gc_thresh 128/512/1024, unres_qlen_bytes 212 992
/// (SK_WMEM_MAX), unres_qlen 101.
#[test]
fn neigh_params_default_to_linux() {
    let p = NeighParams::default();
    assert_eq!(
        (
            p.gc_thresh1,
            p.gc_thresh2,
            p.gc_thresh3,
            p.unres_qlen_bytes,
            p.unres_qlen
        ),
        (128, 512, 1024, 212_992, 101)
    );
}

/// PERMANENT entries sit outside the limits: a table of static entries
/// beyond gc_thresh3 still takes a dynamic one, and a full forced GC
/// never takes a static one, nor does the periodic GC above gc_thresh1.
#[test]
fn static_entries_are_exempt_from_the_limits() {
    let mut c = cfg(MAC_A, IP_A);
    c.neigh.gc_thresh1 = 0;
    c.neigh.gc_thresh2 = 1;
    c.neigh.gc_thresh3 = 2;
    for i in 100..110u8 {
        c.static_neighbours
            .push((0, host(i), MacAddr([2, 0, 0, 0, 2, i])));
    }
    let (mut st, cap) = cap_stack(c);
    let s = st.udp_socket().unwrap();
    assert_eq!(send_each(&mut st, s, &[20, 21]), vec![Ok(1); 2]);
    // FAILED at 3 s; the periodic GC (at 1 s, then every 15 s; above
    // gc_thresh1 = 0) takes them once failed_hold (15 s) is over: at 31 s.
    for t in 1..=31 {
        st.poll_timers(t * S);
    }
    assert_eq!(st.counters().neigh.destroys, 2);
    assert_eq!(st.neighbour_state(0, host(20)), None);
    send_each(&mut st, s, &[22, 23]);
    let k = st.counters();
    assert_eq!(k.neigh.table_fulls, 0);
    // .23 ran a forced GC (over gc_thresh2, 31 s since none) that found
    // only .22, INCOMPLETE with its timer: nothing to free, yet below
    // gc_thresh3 the entry is made.
    assert_eq!(k.neigh.forced_gc_runs, 1);
    assert_eq!(k.neigh.destroys, 2);
    let statics = st
        .neighbours()
        .iter()
        .filter(|n| n.state == NudState::Permanent)
        .count();
    assert_eq!(statics, 10);
    // Static entries are never probed: only the dynamic ones' ARP went out.
    let arps: Vec<Ipv4Addr> = cap
        .take()
        .iter()
        .filter_map(|f| arp_of(&f.bytes))
        .map(|a| a.tpa)
        .collect();
    assert!(
        arps.iter().all(|ip| !(100..110).contains(&ip.octets()[3])),
        "{arps:?}"
    );
}
