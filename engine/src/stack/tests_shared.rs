//! The shared control plane (shared.rs): two lcores' stacks on one port,
//! each with its own replica of the neighbour table and FIB, converging at
//! their next `sync` as Linux's single `arp_tbl`/FIB would have it; ports
//! claimed once for both (`udp_lib_get_port`/`inet_csk_get_port` are global).

use super::shared::{ControlPlane, PortSpace};
use super::*;
use std::sync::Arc;

/// Two stacks with the same address (two lcores of one port), joined.
fn pair() -> (Arc<ControlPlane>, (Stack, Cap), (Stack, Cap)) {
    let cp = Arc::new(ControlPlane::new());
    let mut a = cap_stack(cfg(MAC_A, IP_A));
    let mut b = cap_stack(cfg(MAC_A, IP_A));
    a.0.join(cp.clone()).unwrap();
    b.0.join(cp.clone()).unwrap();
    (cp, a, b)
}

/// B sends to 10.0.0.2 first: its entry is INCOMPLETE, the datagram waits.
/// The ARP reply lands on A's queue (RSS sends non-IP to queue 0): A learns
/// the address, and at B's next sync its waiting datagram leaves with the
/// right destination MAC — no second ARP exchange.
#[test]
fn an_arp_reply_on_one_lcore_resolves_the_neighbour_on_the_other() {
    let (_cp, (mut a, _ca), (mut b, cb)) = pair();
    let s = b.udp_socket().unwrap();
    b.socket(s).send_to(b"waiting", sa(IP_B, 9)).unwrap();
    b.flush();
    let f = cb.take();
    assert_eq!(f.len(), 1, "only B's ARP request");
    assert!(arp_of(&f[0].bytes).is_some());
    assert_eq!(b.neighbour_state(0, IP_B), Some(NudState::Incomplete));

    // A has no entry: in Linux's one table B's entry would take the
    // reply; here A hands it to the others at its next sync.
    inject(&mut a, &arp_frame(ARP_REPLY, MAC_B, IP_B, MAC_A, IP_A));
    assert_eq!(a.neighbour_state(0, IP_B), None);
    a.sync();
    assert_eq!(b.neighbour_state(0, IP_B), Some(NudState::Incomplete));
    let st = b.sync();
    assert_eq!((st.applied, st.refused), (1, 0));
    assert_eq!(b.neighbour_state(0, IP_B), Some(NudState::Reachable));
    b.flush();
    let f = cb.take();
    assert_eq!(f.len(), 1);
    let u = parse_udp(&f[0].bytes);
    assert_eq!((u.eth.dst, &u.payload[..]), (MAC_B, &b"waiting"[..]));
    // Nothing new: a sync is one load, and applies nothing.
    assert_eq!(b.sync().applied, 1);
}

/// An ARP request for our address received on B creates a STALE entry
/// there (neigh_event_ns); A gets the same entry, and sends to the
/// requester without asking.
#[test]
fn a_request_learned_on_one_lcore_is_known_to_the_other() {
    let (_cp, (mut a, ca), (mut b, _cb)) = pair();
    inject(
        &mut b,
        &arp_frame(ARP_REQUEST, MAC_B, IP_B, MacAddr::ZERO, IP_A),
    );
    b.sync();
    a.sync();
    assert_eq!(a.neighbour_state(0, IP_B), Some(NudState::Stale));
    let s = a.udp_socket().unwrap();
    a.socket(s).send_to(b"hi", sa(IP_B, 9)).unwrap();
    a.flush();
    let f = ca.take();
    let u = parse_udp(&f.last().unwrap().bytes);
    assert_eq!(u.eth.dst, MAC_B);
    assert!(
        f.iter().all(|x| arp_of(&x.bytes).is_none()),
        "no ARP from A"
    );
}

/// Routes, rules and static neighbours added through either stack or the
/// handle reach every replica; deletions too. A route one replica cannot
/// take is refused there and counted.
#[test]
fn routes_rules_and_static_neighbours_reach_every_replica() {
    let (cp, (mut a, _), (mut b, _)) = pair();
    let r = via(
        Ipv4Addr::new(192, 168, 7, 0),
        24,
        Ipv4Addr::new(10, 0, 0, 254),
    );
    a.add_route(&r).unwrap();
    let dst = Ipv4Addr::new(192, 168, 7, 1);
    assert!(a.routes().lookup(dst).is_some());
    assert!(b.routes().lookup(dst).is_none(), "not before B's sync");
    b.sync();
    assert!(b.routes().lookup(dst).is_some());
    a.sync();
    assert_eq!(a.sync().applied, 0, "A does not replay its own change");

    cp.ip_route_del(
        fib_rules::RT_TABLE_MAIN,
        Ipv4Addr::new(192, 168, 7, 0),
        24,
        None,
    );
    cp.neigh_add_permanent(0, Ipv4Addr::new(10, 0, 0, 77), MAC_B);
    a.sync();
    b.sync();
    for st in [&a, &b] {
        assert!(st.routes().lookup(dst).is_none());
        assert_eq!(
            st.neighbour_state(0, Ipv4Addr::new(10, 0, 0, 77)),
            Some(NudState::Permanent)
        );
    }
    // A gateway outside every subnet: refused on both, the run goes on.
    cp.ip_route_add(&via(
        Ipv4Addr::new(172, 16, 0, 0),
        12,
        Ipv4Addr::new(192, 0, 2, 1),
    ));
    assert_eq!(a.sync().refused, 1);
    assert_eq!(b.sync().refused, 1);
    // A third stack joining late replays what is still logged.
    let mut c = cap_stack(cfg(MAC_A, IP_A)).0;
    c.join(cp.clone()).unwrap();
    assert_eq!(
        c.neighbour_state(0, Ipv4Addr::new(10, 0, 0, 77)),
        Some(NudState::Permanent)
    );
    // Everyone has read everything: the log is trimmed.
    a.sync();
    b.sync();
    assert_eq!(cp.log_len(), 0);
}

/// A port bound on one lcore is taken for the other (EADDRINUSE); an
/// ephemeral port never repeats across them; closing gives it back; the
/// owner table says which lcore's socket a datagram is for.
#[test]
fn ports_are_claimed_once_for_every_lcore() {
    let (cp, (mut a, _), (mut b, _)) = pair();
    let sa_ = a.udp_socket().unwrap();
    a.socket(sa_).bind(sa(Ipv4Addr::UNSPECIFIED, 5000)).unwrap();
    let sb = b.udp_socket().unwrap();
    assert_eq!(
        b.socket(sb).bind(sa(Ipv4Addr::UNSPECIFIED, 5000)),
        Err(Errno::EADDRINUSE)
    );
    let (_, ia) = a.control_plane().unwrap();
    let (_, ib) = b.control_plane().unwrap();
    assert_eq!(cp.owner(PortSpace::Udp, 5000), Some(ia));
    a.close(sa_).unwrap();
    assert_eq!(cp.owner(PortSpace::Udp, 5000), None);
    b.socket(sb).bind(sa(Ipv4Addr::UNSPECIFIED, 5000)).unwrap();
    assert_eq!(cp.owner(PortSpace::Udp, 5000), Some(ib));

    // A narrow ephemeral range: 8 sockets on each side take 16 distinct ports.
    let cp = Arc::new(ControlPlane::new());
    let mut c = cfg(MAC_A, IP_A);
    c.ephemeral_ports = (40000, 40015);
    let mut x = cap_stack(c.clone()).0;
    let mut y = cap_stack(c).0;
    x.join(cp.clone()).unwrap();
    y.join(cp.clone()).unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..8 {
        for st in [&mut x, &mut y] {
            let s = st.udp_socket().unwrap();
            st.socket(s).bind(sa(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
            let p = st.socket(s).local_addr().unwrap().port();
            assert!(seen.insert(p), "port {p} handed out twice");
        }
    }
    let s = x.udp_socket().unwrap();
    assert_eq!(
        x.socket(s).bind(sa(Ipv4Addr::UNSPECIFIED, 0)),
        Err(Errno::EAGAIN),
        "the range is exhausted across both lcores"
    );

    // TCP too: a listener on A holds the port against B.
    let l = a.tcp_socket().unwrap();
    a.tcp(l).bind(sa(Ipv4Addr::UNSPECIFIED, 8080)).unwrap();
    a.tcp(l).listen(8).unwrap();
    let m = b.tcp_socket().unwrap();
    assert_eq!(
        b.tcp(m).bind(sa(Ipv4Addr::UNSPECIFIED, 8080)),
        Err(Errno::EADDRINUSE)
    );
    assert_eq!(cp_of(&a).owner(PortSpace::Tcp, 8080), Some(ia));
    // A dropped stack's claims go with it.
    drop(a);
    assert_eq!(cp_of(&b).owner(PortSpace::Tcp, 8080), None);
}

fn via(prefix: Ipv4Addr, len: u8, gw: Ipv4Addr) -> RouteConf {
    RouteConf {
        prefix,
        len,
        gateway: Some(gw),
        ..Default::default()
    }
}

fn cp_of(st: &Stack) -> Arc<ControlPlane> {
    st.control_plane().unwrap().0.clone()
}

/// Joining twice, or after opening a socket, is refused with a reason.
#[test]
fn join_misuse_is_a_typed_error() {
    let cp = Arc::new(ControlPlane::new());
    let mut a = cap_stack(cfg(MAC_A, IP_A)).0;
    a.join(cp.clone()).unwrap();
    let e = a.join(cp.clone()).unwrap_err().to_string();
    assert!(e.contains("already"), "{e}");
    let mut b = cap_stack(cfg(MAC_A, IP_A)).0;
    b.udp_socket().unwrap();
    let e = b.join(cp).unwrap_err().to_string();
    assert!(e.contains("before opening sockets"), "{e}");
}
