//! Policy routing against the kernel's (seed 004: `ip_route_output_key` →
//! `fib_lookup` → `fib_rules_lookup` → `fib4_rule_action`): the same
//! `ip rule` and `ip route` set-up in a network namespace and in a
//! wirespeed `Stack`, then the same flows asked of both — `ip route get`
//! there, `Fib::fib_lookup` here. The gateway (or none) and the errno
//! (EACCES for prohibit, EHOSTUNREACH for an unreachable route but
//! ENETUNREACH for an unreachable rule, EINVAL for blackhole) must agree
//! for every flow. Needs root (a namespace); skipped otherwise.

use std::net::Ipv4Addr;
use std::process::Command;
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::ethdev::MacAddr;
use wirespeed::mbuf::{Mbuf, Mempool, PoolConfig};
use wirespeed::stack::{
    fib_rules, Flowi4, L2Xmit, PortConf, RouteConf, RouteType, RuleConf, Stack, StackConfig,
    XmitDrop,
};

struct Discard;
impl L2Xmit for Discard {
    fn queue_xmit(&mut self, _port: u16, _m: Mbuf) -> Result<(), XmitDrop> {
        Ok(())
    }
}

const RULES: [&str; 4] = [
    "fwmark 0x10 lookup 100 pref 100",
    "to 172.16.0.0/12 tos 0x10 prohibit pref 200",
    "to 198.51.100.0/24 unreachable pref 300",
    "to 203.0.113.0/24 blackhole pref 310",
];

/// `ip route add …` words, and the same route for the stack.
fn routes() -> Vec<(&'static str, RouteConf)> {
    let r = |prefix: [u8; 4], len, gw: Option<[u8; 4]>, table, rtype| RouteConf {
        prefix: Ipv4Addr::from(prefix),
        len,
        gateway: gw.map(Ipv4Addr::from),
        port: Some(0),
        table,
        rtype,
        ..Default::default()
    };
    let main = fib_rules::RT_TABLE_MAIN;
    vec![
        (
            "default via 10.0.0.254",
            r([0; 4], 0, Some([10, 0, 0, 254]), main, RouteType::Unicast),
        ),
        (
            "default via 10.0.0.250 table 100",
            r([0; 4], 0, Some([10, 0, 0, 250]), 100, RouteType::Unicast),
        ),
        (
            "192.0.2.0/24 via 10.0.0.253",
            r(
                [192, 0, 2, 0],
                24,
                Some([10, 0, 0, 253]),
                main,
                RouteType::Unicast,
            ),
        ),
        (
            "unreachable 192.0.2.128/25",
            r([192, 0, 2, 128], 25, None, main, RouteType::Unreachable),
        ),
        (
            "prohibit 10.9.0.0/16 table 100",
            r([10, 9, 0, 0], 16, None, 100, RouteType::Prohibit),
        ),
    ]
}

/// (destination, fwmark, tos).
const FLOWS: [([u8; 4], u32, u8); 11] = [
    ([8, 8, 8, 8], 0, 0),
    ([8, 8, 8, 8], 0x10, 0),
    ([172, 16, 1, 1], 0, 0x10),
    ([172, 16, 1, 1], 0, 0),
    ([198, 51, 100, 7], 0, 0),
    ([203, 0, 113, 9], 0, 0),
    ([192, 0, 2, 5], 0, 0),
    ([192, 0, 2, 200], 0, 0),
    ([192, 0, 2, 200], 0x10, 0),
    ([10, 9, 1, 1], 0x10, 0),
    ([10, 0, 0, 7], 0, 0),
];

/// What a lookup gave: a gateway ("-" for on-link) or an errno name.
fn kernel(ns: &str, dst: Ipv4Addr, mark: u32, tos: u8) -> String {
    let (d, m, t) = (dst.to_string(), format!("{mark:#x}"), format!("{tos:#x}"));
    let mut args = vec!["netns", "exec", ns, "ip", "-o", "route", "get", &d];
    if mark != 0 {
        args.extend(["mark", &m]);
    }
    if tos != 0 {
        args.extend(["tos", &t]);
    }
    let o = Command::new("ip").args(&args).output().unwrap();
    if o.status.success() {
        let s = String::from_utf8_lossy(&o.stdout).to_string();
        let mut w = s.split_whitespace();
        while let Some(x) = w.next() {
            if x == "via" {
                return w.next().unwrap().to_string();
            }
        }
        return "-".into();
    }
    let e = String::from_utf8_lossy(&o.stderr);
    for (msg, name) in [
        ("Permission denied", "EACCES"),
        ("No route to host", "EHOSTUNREACH"),
        ("Invalid argument", "EINVAL"),
        ("Network is unreachable", "ENETUNREACH"),
    ] {
        if e.contains(msg) {
            return name.into();
        }
    }
    panic!("ip route get {dst}: {e}");
}

fn ours(st: &Stack, dst: Ipv4Addr, mark: u32, tos: u8) -> String {
    let mut fl = Flowi4::new(dst);
    fl.mark = mark;
    fl.tos = tos;
    match st.fib().fib_lookup(&fl) {
        Ok(r) => match r.rtype {
            RouteType::Unicast | RouteType::Local => {
                r.gateway.map_or("-".into(), |g| g.to_string())
            }
            RouteType::Unreachable => "EHOSTUNREACH".into(),
            RouteType::Prohibit => "EACCES".into(),
            RouteType::Blackhole => "EINVAL".into(),
            t => format!("{t:?}"),
        },
        Err(e) => format!("{e:?}"),
    }
}

fn ip(ns: &str, words: &[&str]) {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "ip"])
        .args(words)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ip {}: {}",
        words.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn rules_and_routes_choose_what_the_kernel_chooses() {
    // SAFETY: plain libc call.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("kernel_fib: not root: skipped");
        return;
    }
    let ns = format!("wfib{}", std::process::id() % 100_000);
    let _ = Command::new("ip").args(["netns", "del", &ns]).output();
    assert!(Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap()
        .success());
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
        }
    }
    let _del = Del(ns.clone());
    // A veth pair inside the namespace (both ends up: carrier), as this
    // kernel may lack the dummy driver.
    ip(
        &ns,
        &["link", "add", "d0", "type", "veth", "peer", "name", "d1"],
    );
    ip(&ns, &["addr", "add", "10.0.0.1/24", "dev", "d0"]);
    ip(&ns, &["link", "set", "d1", "up"]);
    ip(&ns, &["link", "set", "d0", "up"]);

    set_page_mode(PageMode::Small);
    let pool = Mempool::new(&PoolConfig {
        name: "kernel-fib".into(),
        size: 64,
        ..Default::default()
    })
    .unwrap();
    let cfg = StackConfig {
        ports: vec![PortConf::new(
            MacAddr([2, 0, 0, 0, 0, 1]),
            Ipv4Addr::new(10, 0, 0, 1),
            24,
        )],
        ..Default::default()
    };
    let mut st = Stack::new(cfg, pool, Box::new(Discard)).unwrap();
    for r in RULES {
        let mut words: Vec<&str> = vec!["rule", "add"];
        words.extend(r.split_whitespace());
        ip(&ns, &words);
        st.ip_rule_add(&r.parse::<RuleConf>().unwrap()).unwrap();
    }
    for (words, conf) in routes() {
        let mut w: Vec<&str> = vec!["route", "add"];
        w.extend(words.split_whitespace());
        w.extend(
            ["dev", "d0"]
                .iter()
                .filter(|_| !words.starts_with("unreachable") && !words.starts_with("prohibit")),
        );
        ip(&ns, &w);
        st.add_route(&conf).unwrap();
    }
    let mut disagree = Vec::new();
    for (d, mark, tos) in FLOWS {
        let dst = Ipv4Addr::from(d);
        let (k, w) = (kernel(&ns, dst, mark, tos), ours(&st, dst, mark, tos));
        eprintln!("{dst} mark {mark:#x} tos {tos:#x}: kernel {k}, wirespeed {w}");
        if k != w {
            disagree.push(format!(
                "{dst} mark {mark:#x} tos {tos:#x}: kernel {k}, wirespeed {w}"
            ));
        }
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}
