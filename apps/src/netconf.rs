//! Routing configuration of the ports' stacks: `[[port.route]]` (what
//! `ip route add` takes) and the top-level `[[rule]]` list (`ip rule add`),
//! parsed and checked into the engine's [`RouteConf`] / [`RuleConf`].
//! Every error names its key: `port[i].route[j].KEY`, `rule[k].KEY`.
//!
//! Each port has a stack of its own holding that one port (its index 0
//! inside the stack), so a route's `dev` must be the port whose section it
//! is in, and a rule with `oif = N` goes only into port N's stack (in the
//! others it could never match). The stacks route only traffic they
//! generate, which Linux looks up with `iif lo`: `iif = "lo"` matches every
//! flow, any other `iif` none (refused, as it could never match).

use crate::config::ConfigError;
use serde::Deserialize;
use std::net::Ipv4Addr;
use wirespeed::stack::fib_rules::{
    parse_prefix, parse_table, parse_tos, parse_u32, RuleAction, RuleConf, RuleSelector,
    RT_TABLE_MAIN,
};
use wirespeed::stack::route::{RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE};
use wirespeed::stack::{NeighParams, NexthopConf, RouteConf, RouteType};

/// A number or a string (`table = 100`, `table = "main"`, `fwmark = "0x7/0xff"`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum NumOrName {
    Num(u64),
    Name(String),
}

impl NumOrName {
    fn text(&self) -> String {
        match self {
            NumOrName::Num(n) => n.to_string(),
            NumOrName::Name(s) => s.clone(),
        }
    }
}

/// `[[port.route]]`: one `ip route add` line.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// Destination prefix, `"A.B.C.D/LEN"` or `"default"`.
    pub prefix: String,
    /// Gateway (`via`).
    #[serde(default)]
    pub via: Option<String>,
    /// Output port (`dev`): this port's index (or `"portN"`).
    #[serde(default)]
    pub dev: Option<NumOrName>,
    /// `unicast` (default), `local`, `broadcast`, `unreachable`,
    /// `prohibit`, `blackhole`, `throw`.
    #[serde(default, rename = "type")]
    pub rtype: Option<String>,
    #[serde(default)]
    pub metric: u32,
    /// `main` (default), `local`, `default` or 1..=2^32-1.
    #[serde(default)]
    pub table: Option<NumOrName>,
    /// Preferred source address (one of the stack's).
    #[serde(default)]
    pub src: Option<String>,
    /// The gateway is on the link even outside the port's prefix.
    #[serde(default)]
    pub onlink: bool,
    /// `tos` (bits of `IPTOS_RT_MASK`, 0x1e).
    #[serde(default)]
    pub tos: Option<NumOrName>,
    /// `host`, `link`, `universe` or 0..=255 (default: the type's).
    #[serde(default)]
    pub scope: Option<NumOrName>,
    /// Route MTU (`mtu N`), 68..=65535.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Multipath next hops (`nexthop via … weight …`): two or more.
    #[serde(default)]
    pub nexthop: Vec<NexthopSection>,
}

/// `[[port.route.nexthop]]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NexthopSection {
    #[serde(default)]
    pub via: Option<String>,
    #[serde(default)]
    pub dev: Option<NumOrName>,
    /// 1..=256 (default 1).
    #[serde(default)]
    pub weight: Option<u32>,
}

/// `[[rule]]`: one `ip rule add` line, added to every port's stack.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    /// `priority` / `pref` (default: Linux's, one below the second rule).
    #[serde(default)]
    pub priority: Option<u32>,
    /// Source prefix (`from`).
    #[serde(default)]
    pub from: Option<String>,
    /// Destination prefix (`to`).
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub tos: Option<NumOrName>,
    /// `MARK` or `"MARK/MASK"`.
    #[serde(default)]
    pub fwmark: Option<NumOrName>,
    /// Only `"lo"` (locally generated traffic).
    #[serde(default)]
    pub iif: Option<String>,
    /// Output port (as `ipi_ifindex` / `IP_MULTICAST_IF` choose it).
    #[serde(default)]
    pub oif: Option<NumOrName>,
    /// The table `lookup` uses (default `main`).
    #[serde(default)]
    pub table: Option<NumOrName>,
    /// `lookup` (default), `goto`, `nop`, `unreachable`, `prohibit`, `blackhole`.
    #[serde(default)]
    pub action: Option<String>,
    /// The priority `action = "goto"` jumps to.
    #[serde(default)]
    pub goto: Option<u32>,
    /// `not`: the rule matches what the selectors do not.
    #[serde(default)]
    pub not: bool,
    #[serde(default)]
    pub suppress_prefixlength: Option<u8>,
}

fn addr(key: &str, s: &str) -> Result<Ipv4Addr, ConfigError> {
    s.parse()
        .map_err(|_| ConfigError::new(key, format!("'{s}' is not an IPv4 address")))
}

/// A `dev`/`oif` value: a port index or `portN`.
fn dev(key: &str, v: &NumOrName, nports: usize) -> Result<usize, ConfigError> {
    let t = v.text();
    let n: usize = t.strip_prefix("port").unwrap_or(&t).parse().map_err(|_| {
        ConfigError::new(
            key,
            format!("'{t}' is not a port index (0, 1, … or \"port0\")"),
        )
    })?;
    if n >= nports {
        return Err(ConfigError::new(
            key,
            format!("port {n} does not exist; {nports} port(s) are configured"),
        ));
    }
    Ok(n)
}

/// A route's `dev`: it must be the port whose section it is in (the
/// stack's port 0).
fn own_dev(
    key: String,
    v: &Option<NumOrName>,
    pi: usize,
    nports: usize,
) -> Result<Option<u16>, ConfigError> {
    match v {
        None => Ok(None),
        Some(v) => {
            let n = dev(&key, v, nports)?;
            if n != pi {
                return Err(ConfigError::new(key, format!(
                    "port {n} is not this port ({pi}): each port's stack routes out of its own port; put the route under port[{n}]"
                )));
            }
            Ok(Some(0))
        }
    }
}

fn table(key: &str, v: &Option<NumOrName>) -> Result<u32, ConfigError> {
    match v {
        None => Ok(RT_TABLE_MAIN),
        Some(v) => parse_table(&v.text()).map_err(|e| ConfigError::new(key, e)),
    }
}

fn route_type(key: &str, s: &str) -> Result<RouteType, ConfigError> {
    Ok(match s {
        "unicast" => RouteType::Unicast,
        "local" => RouteType::Local,
        "broadcast" => RouteType::Broadcast,
        "unreachable" => RouteType::Unreachable,
        "prohibit" => RouteType::Prohibit,
        "blackhole" => RouteType::Blackhole,
        "throw" => RouteType::Throw,
        o => {
            return Err(ConfigError::new(
                key,
                format!(
            "'{o}' is not unicast, local, broadcast, unreachable, prohibit, blackhole or throw"
        ),
            ))
        }
    })
}

fn scope(key: &str, v: &NumOrName) -> Result<u8, ConfigError> {
    match v.text().as_str() {
        "universe" | "global" => Ok(RT_SCOPE_UNIVERSE),
        "link" => Ok(RT_SCOPE_LINK),
        "host" => Ok(RT_SCOPE_HOST),
        t => t.parse().map_err(|_| {
            ConfigError::new(key, format!("'{t}' is not universe, link, host or 0..=255"))
        }),
    }
}

impl RouteSection {
    /// `[[port.route.nexthop]]`, each checked.
    fn nexthops(
        &self,
        pi: usize,
        j: usize,
        nports: usize,
    ) -> Result<Vec<NexthopConf>, ConfigError> {
        let mut nexthops = Vec::new();
        for (h, n) in self.nexthop.iter().enumerate() {
            let kh = |f: &str| format!("port[{pi}].route[{j}].nexthop[{h}].{f}");
            let weight = n.weight.unwrap_or(1);
            if !(1..=256).contains(&weight) {
                return Err(ConfigError::new(kh("weight"), "must be 1..=256"));
            }
            nexthops.push(NexthopConf {
                gateway: n.via.as_deref().map(|g| addr(&kh("via"), g)).transpose()?,
                port: own_dev(kh("dev"), &n.dev, pi, nports)?,
                weight,
            });
        }
        Ok(nexthops)
    }

    /// Route `j` of port `pi` as the port's stack takes it (its port 0).
    pub fn route_conf(&self, pi: usize, j: usize, nports: usize) -> Result<RouteConf, ConfigError> {
        let k = |f: &str| format!("port[{pi}].route[{j}].{f}");
        let (prefix, len) =
            parse_prefix(self.prefix.trim()).map_err(|e| ConfigError::new(k("prefix"), e))?;
        let rtype = match &self.rtype {
            None => RouteType::Unicast,
            Some(t) => route_type(&k("type"), t)?,
        };
        let gateway = self
            .via
            .as_deref()
            .map(|g| addr(&k("via"), g))
            .transpose()?;
        if gateway.is_some() && rtype != RouteType::Unicast {
            return Err(ConfigError::new(
                k("via"),
                format!("a {} route has no gateway", rtype.name()),
            ));
        }
        let nexthops = self.nexthops(pi, j, nports)?;
        if !nexthops.is_empty() {
            if nexthops.len() < 2 {
                return Err(ConfigError::new(
                    k("nexthop"),
                    "a multipath route needs two or more next hops (one: use via)",
                ));
            }
            if gateway.is_some() || rtype != RouteType::Unicast {
                return Err(ConfigError::new(
                    k("nexthop"),
                    "next hops replace via and are for unicast routes only",
                ));
            }
        }
        if let Some(m) = self.mtu {
            if !(68..=65535).contains(&m) {
                return Err(ConfigError::new(
                    k("mtu"),
                    format!("{m} is outside 68..=65535"),
                ));
            }
        }
        Ok(RouteConf {
            prefix,
            len,
            gateway,
            port: own_dev(k("dev"), &self.dev, pi, nports)?,
            mtu: self.mtu,
            table: table(&k("table"), &self.table)?,
            rtype,
            metric: self.metric,
            tos: match &self.tos {
                None => 0,
                Some(t) => parse_tos(&t.text(), 0x1e).map_err(|e| ConfigError::new(k("tos"), e))?,
            },
            scope: self
                .scope
                .as_ref()
                .map(|s| scope(&k("scope"), s))
                .transpose()?,
            src: self
                .src
                .as_deref()
                .map(|s| addr(&k("src"), s))
                .transpose()?,
            onlink: self.onlink,
            nexthops,
        })
    }
}

impl RuleSection {
    /// The rule's action (`action`, with `table` / `goto`).
    fn action(&self, k: usize) -> Result<RuleAction, ConfigError> {
        let key = |f: &str| format!("rule[{k}].{f}");
        Ok(
            match self.action.as_deref().unwrap_or(if self.goto.is_some() {
                "goto"
            } else {
                "lookup"
            }) {
                "lookup" | "table" => RuleAction::ToTable(table(&key("table"), &self.table)?),
                "goto" => RuleAction::Goto(self.goto.ok_or_else(|| {
                    ConfigError::new(key("goto"), "action goto needs goto = PRIORITY")
                })?),
                "nop" => RuleAction::Nop,
                "unreachable" => RuleAction::Unreachable,
                "prohibit" => RuleAction::Prohibit,
                "blackhole" => RuleAction::Blackhole,
                o => {
                    return Err(ConfigError::new(
                        key("action"),
                        format!(
                            "'{o}' is not lookup, goto, nop, unreachable, prohibit or blackhole"
                        ),
                    ))
                }
            },
        )
    }

    /// Rule `k` for the stack of port `pi`: `None` when its `oif` names
    /// another port (it could never match there).
    pub fn rule_conf(
        &self,
        k: usize,
        pi: usize,
        nports: usize,
    ) -> Result<Option<RuleConf>, ConfigError> {
        let key = |f: &str| format!("rule[{k}].{f}");
        let mut sel = RuleSelector {
            invert: self.not,
            ..Default::default()
        };
        if let Some(f) = &self.from {
            (sel.src, sel.src_len) =
                parse_prefix(f.trim()).map_err(|e| ConfigError::new(key("from"), e))?;
        }
        if let Some(t) = &self.to {
            (sel.dst, sel.dst_len) =
                parse_prefix(t.trim()).map_err(|e| ConfigError::new(key("to"), e))?;
        }
        if let Some(t) = &self.tos {
            sel.tos = parse_tos(&t.text(), 0x1e).map_err(|e| ConfigError::new(key("tos"), e))?;
        }
        if let Some(m) = &self.fwmark {
            let v = m.text();
            let (m, mask) = v.split_once('/').unwrap_or((&v, "0xffffffff"));
            match (parse_u32(m.trim()), parse_u32(mask.trim())) {
                (Some(m), Some(mask)) => (sel.fwmark, sel.fwmask) = (m, mask),
                _ => {
                    return Err(ConfigError::new(
                        key("fwmark"),
                        format!("'{v}' is not MARK or \"MARK/MASK\" (numbers, 0x… allowed)"),
                    ))
                }
            }
        }
        if let Some(i) = &self.iif {
            if i != "lo" {
                return Err(ConfigError::new(key("iif"), format!(
                    "'{i}': the stacks route only the traffic they send, which Linux looks up with iif lo; a rule for iif {i} would never match"
                )));
            }
        }
        let mut skip = false;
        if let Some(o) = &self.oif {
            let n = dev(&key("oif"), o, nports)?;
            skip = n != pi;
            sel.oif = Some(0);
        }
        let action = self.action(k)?;
        if self.table.is_some() && !matches!(action, RuleAction::ToTable(_)) {
            return Err(ConfigError::new(
                key("table"),
                "only action lookup uses a table",
            ));
        }
        if let Some(l) = self.suppress_prefixlength {
            if l > 32 {
                return Err(ConfigError::new(
                    key("suppress_prefixlength"),
                    "must be 0..=32",
                ));
            }
        }
        if let (RuleAction::Goto(g), Some(p)) = (action, self.priority) {
            if g <= p {
                return Err(ConfigError::new(
                    key("goto"),
                    format!(
                        "goto {g} must jump forward, past this rule's priority {p} (Linux: EINVAL)"
                    ),
                ));
            }
        }
        Ok((!skip).then_some(RuleConf {
            pref: self.priority,
            sel,
            action,
            suppress_prefixlen: self.suppress_prefixlength,
        }))
    }
}

/// A rule with the index of its `[[rule]]` section.
pub type IndexedRule = (usize, RuleConf);

/// The routes of port `pi` and the rules for its stack (with their
/// `[[rule]]` index).
pub fn port_routing(
    routes: &[RouteSection],
    rules: &[RuleSection],
    pi: usize,
    nports: usize,
) -> Result<(Vec<RouteConf>, Vec<IndexedRule>), ConfigError> {
    let r = routes
        .iter()
        .enumerate()
        .map(|(j, r)| r.route_conf(pi, j, nports))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ru = Vec::new();
    for (k, x) in rules.iter().enumerate() {
        if let Some(c) = x.rule_conf(k, pi, nports)? {
            ru.push((k, c));
        }
    }
    Ok((r, ru))
}

/// Adds `routes` and `rules` to a stack for port `pi` (address `addr/len`,
/// default route via `gateway`) built only to check them: the engine's
/// refusals (a gateway off the link, a source not ours, a backward `goto`,
/// …) come back naming `port[pi].route[j]` / `rule[k]` before anything
/// runs. Returns the stack (tests look routes up in it).
pub fn probe_stack(
    pi: usize,
    ip: &crate::config::PortIp,
    routes: &[RouteConf],
    rules: &[(usize, RuleConf)],
) -> Result<wirespeed::stack::Stack, ConfigError> {
    use wirespeed::stack::{DirectXmit, PortConf, Stack, StackConfig};
    let mut cfg = StackConfig {
        ports: vec![PortConf::new(
            wirespeed::ethdev::MacAddr::local(pi as u32 + 1),
            ip.addr,
            ip.prefix_len,
        )],
        ..Default::default()
    };
    if let Some(g) = ip.gateway {
        cfg.routes.push(RouteConf {
            gateway: Some(g),
            port: Some(0),
            ..Default::default()
        });
    }
    // A few 4 KiB pages, whatever the run will use: checking the routes
    // reserves no hugepage and warns about none (the run's own page mode
    // is set once flags are read, after this).
    use wirespeed::eal::dma::{page_mode, set_page_mode, PageMode};
    let mode = page_mode();
    set_page_mode(PageMode::Small);
    let pool = wirespeed::mbuf::Mempool::new(&wirespeed::mbuf::PoolConfig {
        name: format!("route-check-p{pi}"),
        size: 64,
        ..Default::default()
    });
    set_page_mode(mode);
    let pool = pool.map_err(|e| ConfigError::new(format!("port[{pi}].route"), e.to_string()))?;
    let mut st = Stack::new(cfg, pool, Box::new(DirectXmit::new(Vec::new())))
        .map_err(|e| ConfigError::new(format!("port[{pi}].ip"), e.to_string()))?;
    for (j, r) in routes.iter().enumerate() {
        st.add_route(r).map_err(|e| {
            ConfigError::new(
                format!("port[{pi}].route[{j}]"),
                strip_stack(&e.to_string()),
            )
        })?;
    }
    for (k, r) in rules {
        st.ip_rule_add(r)
            .map_err(|e| ConfigError::new(format!("rule[{k}]"), strip_stack(&e.to_string())))?;
    }
    Ok(st)
}

fn strip_stack(s: &str) -> String {
    s.strip_prefix("stack: ").unwrap_or(s).to_string()
}

/// What a port's stack gets from `[[port.route]]`, `[[rule]]`,
/// `[port.neigh_parms]` and `wmem_max`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortRouting {
    pub routes: Vec<RouteConf>,
    /// With the index of their `[[rule]]` section.
    pub rules: Vec<(usize, RuleConf)>,
    /// `[port.neigh_parms]` over Linux's defaults.
    pub neigh: Option<NeighParams>,
    /// `net.core.wmem_max`.
    pub wmem_max: Option<u32>,
    /// `force_igmp_version` (2 or 3).
    pub force_igmp_version: Option<u8>,
}

impl PortRouting {
    /// Adds the routes and rules to a port's stack configuration (the
    /// stack adds routes first, then rules, as [`probe_stack`] checked)
    /// and sets its neighbour parameters and `wmem_max`.
    pub fn apply(&self, cfg: &mut wirespeed::stack::StackConfig) {
        cfg.routes.extend(self.routes.iter().cloned());
        cfg.rules.extend(self.rules.iter().map(|(_, r)| *r));
        if let Some(n) = &self.neigh {
            cfg.neigh = n.clone();
        }
        if let Some(w) = self.wmem_max {
            cfg.wmem_max = w;
        }
        if let Some(v) = self.force_igmp_version {
            cfg.force_igmp_version = v;
        }
    }
}

/// `[port.neigh_parms]`: the port's ARP parameters under their Linux
/// names (`net.ipv4.neigh.<dev>.*`; the `gc_thresh*` of
/// `net.ipv4.neigh.default`). Absent keys keep Linux's defaults.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NeighParmsSection {
    pub base_reachable_time_ms: Option<u64>,
    pub retrans_time_ms: Option<u64>,
    pub delay_first_probe_time_ms: Option<u64>,
    pub gc_stale_time_ms: Option<u64>,
    pub mcast_solicit: Option<u32>,
    pub ucast_solicit: Option<u32>,
    pub unres_qlen: Option<usize>,
    pub unres_qlen_bytes: Option<usize>,
    pub gc_thresh1: Option<usize>,
    pub gc_thresh2: Option<usize>,
    pub gc_thresh3: Option<usize>,
}

impl NeighParmsSection {
    /// The parameters, checked; errors name `port[i].neigh_parms.KEY`.
    pub fn params(&self, i: usize) -> Result<NeighParams, ConfigError> {
        let k = |f: &str| format!("port[{i}].neigh_parms.{f}");
        let mut p = NeighParams::default();
        let pos = |key: &str, v: u64| -> Result<u64, ConfigError> {
            if v == 0 {
                return Err(ConfigError::new(k(key), "must be at least 1 (ms)"));
            }
            Ok(v)
        };
        if let Some(v) = self.base_reachable_time_ms {
            p.base_reachable_ms = pos("base_reachable_time_ms", v)?;
        }
        if let Some(v) = self.retrans_time_ms {
            p.retrans_ms = pos("retrans_time_ms", v)?;
        }
        if let Some(v) = self.delay_first_probe_time_ms {
            p.delay_first_probe_ms = pos("delay_first_probe_time_ms", v)?;
        }
        if let Some(v) = self.gc_stale_time_ms {
            p.gc_stale_ms = pos("gc_stale_time_ms", v)?;
        }
        if let Some(v) = self.mcast_solicit {
            p.mcast_probes = v;
        }
        if let Some(v) = self.ucast_solicit {
            p.ucast_probes = v;
        }
        if let Some(v) = self.unres_qlen {
            if v > 256 {
                return Err(ConfigError::new(
                    k("unres_qlen"),
                    "at most 256 packets per entry",
                ));
            }
            p.unres_qlen = v;
        }
        if let Some(v) = self.unres_qlen_bytes {
            p.unres_qlen_bytes = v;
        }
        if let Some(v) = self.gc_thresh1 {
            p.gc_thresh1 = v;
        }
        if let Some(v) = self.gc_thresh2 {
            p.gc_thresh2 = v;
        }
        if let Some(v) = self.gc_thresh3 {
            if v == 0 {
                return Err(ConfigError::new(
                    k("gc_thresh3"),
                    "the table needs room for one entry",
                ));
            }
            p.gc_thresh3 = v;
        }
        if p.gc_thresh2 > p.gc_thresh3 {
            return Err(ConfigError::new(
                k("gc_thresh2"),
                format!(
                "{} is above gc_thresh3 ({}): the forced GC would never run before the hard limit",
                p.gc_thresh2, p.gc_thresh3
            ),
            ));
        }
        Ok(p)
    }
}

/// `[port.byte_queue_limits]`: BQL on every TX queue of the port, as the
/// sysfs files `byte_queue_limits/{limit_min,limit_max,hold_time}` set it.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BqlSection {
    pub limit_min: Option<u32>,
    pub limit_max: Option<u32>,
    /// Milliseconds (`hold_time`).
    pub hold_time: Option<u64>,
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::net::Ipv4Addr;
    use wirespeed::stack::{Errno, Flowi4, RouteType};

    const BASE: &str = r#"
[[port]]
spec = "null"
ip = "10.0.0.1/24"

[[port]]
spec = "null"
ip = "192.168.1.1/24"
"#;

    fn err(extra: &str) -> String {
        let c = Config::parse(&format!("{BASE}{extra}"), "t.toml").unwrap();
        match c.validate() {
            Ok(_) => panic!("accepted: {extra}"),
            Err(e) => e.to_string(),
        }
    }

    fn lookup(
        st: &wirespeed::stack::Stack,
        dst: [u8; 4],
        mark: u32,
    ) -> Result<(RouteType, Option<Ipv4Addr>, u32), Errno> {
        let mut fl = Flowi4::new(Ipv4Addr::from(dst));
        fl.mark = mark;
        st.fib()
            .fib_lookup(&fl)
            .map(|r| (r.rtype, r.gateway, r.table))
    }

    /// Routes of every type, a table, a multipath route and rules by mark
    /// and destination, looked up in the stack the config builds. By hand
    /// from fib_rules.c / route.c: rule 50 (`to 198.18.0.0/15 prohibit`)
    /// ends with EACCES; rule 100 (`fwmark 7`) sends mark 7 to table 100;
    /// everything else reaches `main`, where a blackhole route is EINVAL,
    /// unreachable EHOSTUNREACH, prohibit EACCES.
    #[test]
    fn routes_and_rules_reach_the_stack() {
        let text = format!(
            "{BASE}{}",
            r#"
[[port.route]]
prefix = "default"
via = "192.168.1.254"
table = 100

[[port.route]]
prefix = "192.0.2.0/24"
type = "blackhole"

[[port.route]]
prefix = "198.51.100.0/24"
type = "unreachable"

[[port.route]]
prefix = "100.64.0.0/10"
type = "prohibit"

[[port.route]]
prefix = "203.0.113.0/24"
metric = 5
[[port.route.nexthop]]
via = "192.168.1.253"
[[port.route.nexthop]]
via = "192.168.1.252"
dev = 1
weight = 3

[[rule]]
priority = 100
fwmark = "0x7/0xff"
table = 100

[[rule]]
priority = 50
to = "198.18.0.0/15"
action = "prohibit"

[[rule]]
oif = 0
table = 100
"#
        );
        let c = Config::parse(&text, "t.toml").unwrap();
        c.validate().unwrap();
        let r = c.ports[1].routing(1, &c).unwrap();
        assert_eq!(r.routes.len(), 5);
        // The oif = 0 rule is not in port 1's stack; it is in port 0's.
        assert_eq!(
            r.rules.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            vec![0, 1]
        );
        let r0 = c.ports[0].routing(0, &c).unwrap();
        assert_eq!(
            r0.rules.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        let ip = c.ports[1].stack_ip(1).unwrap().unwrap();
        let st = super::probe_stack(1, &ip, &r.routes, &r.rules).unwrap();
        let gw = Ipv4Addr::new(192, 168, 1, 254);
        assert_eq!(
            lookup(&st, [8, 8, 8, 8], 7),
            Ok((RouteType::Unicast, Some(gw), 100))
        );
        assert_eq!(
            lookup(&st, [8, 8, 8, 8], 0x107),
            Ok((RouteType::Unicast, Some(gw), 100)),
            "mask 0xff"
        );
        assert_eq!(lookup(&st, [8, 8, 8, 8], 0), Err(Errno::ENETUNREACH));
        assert_eq!(
            lookup(&st, [198, 19, 0, 1], 7),
            Err(Errno::EACCES),
            "rule 50 first"
        );
        assert_eq!(lookup(&st, [192, 0, 2, 1], 0), Err(Errno::EINVAL));
        assert_eq!(lookup(&st, [198, 51, 100, 1], 0), Err(Errno::EHOSTUNREACH));
        assert_eq!(lookup(&st, [100, 64, 1, 1], 0), Err(Errno::EACCES));
        let mp = st
            .fib()
            .fib_lookup(&Flowi4::new(Ipv4Addr::new(203, 0, 113, 9)))
            .unwrap();
        assert_eq!((mp.nhs, mp.metric, mp.table), (2, 5, 254));
        let rules: Vec<String> = st.fib().rules().iter().map(|r| r.to_string()).collect();
        assert!(
            rules
                .iter()
                .any(|r| r.starts_with("50:") && r.contains("prohibit")),
            "{rules:?}"
        );
        assert!(
            rules
                .iter()
                .any(|r| r.starts_with("100:") && r.contains("lookup 100")),
            "{rules:?}"
        );
    }

    #[test]
    fn route_and_rule_errors_name_the_key() {
        let cases = [
            ("[[port.route]]\nprefix = \"10.1.0.0/8\"", "port[1].route[0].prefix"),
            ("[[port.route]]\nprefix = \"10.1.0.0/16\"\ntype = \"anycast\"", "port[1].route[0].type"),
            ("[[port.route]]\nprefix = \"10.1.0.0/16\"\ndev = 0", "port[1].route[0].dev"),
            ("[[port.route]]\nprefix = \"10.1.0.0/16\"\ndev = 9", "port[1].route[0].dev"),
            ("[[port.route]]\nprefix = \"10.1.0.0/16\"\ntype = \"blackhole\"\nvia = \"192.168.1.9\"", "port[1].route[0].via"),
            ("[[port.route]]\nprefix = \"10.1.0.0/16\"\nvia = \"192.168.1.300\"", "port[1].route[0].via"),
            ("[[port.route]]\nprefix = \"10.1.0.0/16\"\ntable = \"bogus\"", "port[1].route[0].table"),
            ("[[port.route]]\nprefix = \"10.1.0.0/16\"\ntos = 1", "port[1].route[0].tos"),
            ("[[port.route]]\nprefix = \"10.1.0.0/16\"\nmtu = 20", "port[1].route[0].mtu"),
            ("[[port.route]]\nprefix = \"10.1.0.0/16\"\n[[port.route.nexthop]]\nvia = \"192.168.1.2\"\nweight = 0", "port[1].route[0].nexthop[0].weight"),
            ("[[port.route]]\nprefix = \"10.1.0.0/16\"\n[[port.route.nexthop]]\nvia = \"192.168.1.2\"", "port[1].route[0].nexthop"),
            // The engine refuses it: the gateway is not on the port's link.
            ("[[port.route]]\nprefix = \"10.1.0.0/16\"\nvia = \"172.16.0.1\"", "port[1].route[0]"),
            ("[[rule]]\nfwmark = \"x/1\"", "rule[0].fwmark"),
            ("[[rule]]\nfrom = \"10.0.0.1/8\"", "rule[0].from"),
            ("[[rule]]\niif = \"eth0\"", "rule[0].iif"),
            ("[[rule]]\noif = 4", "rule[0].oif"),
            ("[[rule]]\naction = \"goto\"", "rule[0].goto"),
            ("[[rule]]\naction = \"prohibit\"\ntable = 5", "rule[0].table"),
            ("[[rule]]\naction = \"jump\"", "rule[0].action"),
            ("[[rule]]\npriority = 300\ngoto = 200", "rule[0].goto"),
            ("[[rule]]\ntos = 0xff", "rule[0].tos"),
        ];
        for (extra, key) in cases {
            let e = err(extra);
            assert!(e.starts_with(&format!("{key}:")), "{extra}: {e}");
        }
        // Unknown keys are TOML errors with the line.
        let c = Config::parse(
            &format!("{BASE}[[port.route]]\nprefix = \"default\"\nvai = \"1.2.3.4\"\n"),
            "t.toml",
        );
        assert!(c.unwrap_err().to_string().contains("vai"));
        // Routes need the port's stack.
        let c = Config::parse(
            "[[port]]\nspec = \"null\"\n[[port.route]]\nprefix = \"default\"\n",
            "t.toml",
        )
        .unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("port[0].route[0].prefix:"));
    }

    /// Frames a stack hands to its port, counted (ARP requests only here).
    #[derive(Clone, Default)]
    struct Count(std::rc::Rc<std::cell::Cell<usize>>);
    impl wirespeed::stack::L2Xmit for Count {
        fn queue_xmit(
            &mut self,
            _port: u16,
            m: wirespeed::mbuf::Mbuf,
        ) -> Result<(), wirespeed::stack::XmitDrop> {
            if m.data().get(12..14) == Some(&[0x08, 0x06]) {
                self.0.set(self.0.get() + 1);
            }
            Ok(())
        }
    }

    /// `[port.neigh_parms]` reaches the stack: with `mcast_solicit = 1`
    /// and `retrans_time_ms = 200` an unanswered neighbour fails after one
    /// request at 200 ms (Linux's default: three requests, 1 s apart).
    #[test]
    fn neigh_parms_and_wmem_max_take_effect() {
        use wirespeed::stack::{NudState, PortConf, Stack, StackConfig};
        let ms = 1_000_000u64;
        let run = |extra: &str| -> (usize, Option<NudState>, Option<NudState>, u32) {
            let c = Config::parse(
                &format!("[[port]]\nspec = \"null\"\nip = \"10.0.0.1/24\"\n{extra}"),
                "t.toml",
            )
            .unwrap();
            c.validate().unwrap();
            let r = c.ports[0].routing(0, &c).unwrap();
            let mut sc = StackConfig {
                ports: vec![PortConf::new(
                    wirespeed::ethdev::MacAddr::local(1),
                    Ipv4Addr::new(10, 0, 0, 1),
                    24,
                )],
                ..Default::default()
            };
            r.apply(&mut sc);
            wirespeed::eal::dma::set_page_mode(wirespeed::eal::dma::PageMode::Small);
            let pool = wirespeed::mbuf::Mempool::new(&wirespeed::mbuf::PoolConfig {
                name: "neigh-parms".into(),
                size: 64,
                ..Default::default()
            })
            .unwrap();
            let n = Count::default();
            let mut st = Stack::new(sc, pool, Box::new(n.clone())).unwrap();
            st.poll_timers(0);
            let s = st.udp_socket().unwrap();
            let peer = Ipv4Addr::new(10, 0, 0, 2);
            st.socket(s)
                .send_to(b"x", std::net::SocketAddrV4::new(peer, 9))
                .unwrap();
            st.poll_timers(199 * ms);
            let before = st.neighbour_state(0, peer);
            st.poll_timers(201 * ms);
            let after = st.neighbour_state(0, peer);
            st.socket(s).set_sndbuf(1 << 30).unwrap();
            (n.0.get(), before, after, st.socket(s).sndbuf().unwrap())
        };
        let (reqs, before, after, _) =
            run("wmem_max = 50000\n[port.neigh_parms]\nmcast_solicit = 1\nretrans_time_ms = 200\n");
        assert_eq!(
            (reqs, before, after),
            (1, Some(NudState::Incomplete), Some(NudState::Failed))
        );
        let (reqs, _, after, sndbuf) = run("wmem_max = 50000\n");
        assert_eq!(
            (reqs, after, sndbuf),
            (1, Some(NudState::Incomplete), 100_000)
        );
        let (_, _, _, sndbuf) = run("");
        assert_eq!(sndbuf, 2 * 212_992);
    }

    #[test]
    fn knob_errors_name_the_key() {
        let cases = [
            (
                "[port.neigh_parms]\nretrans_time_ms = 0",
                "port[1].neigh_parms.retrans_time_ms",
            ),
            (
                "[port.neigh_parms]\ngc_thresh2 = 5000",
                "port[1].neigh_parms.gc_thresh2",
            ),
            (
                "[port.neigh_parms]\nunres_qlen = 1000",
                "port[1].neigh_parms.unres_qlen",
            ),
            ("wmem_max = 0", "port[1].wmem_max"),
            ("force_igmp_version = 1", "port[1].force_igmp_version"),
        ];
        for (extra, key) in cases {
            let e = err(extra);
            assert!(e.starts_with(&format!("{key}:")), "{extra}: {e}");
        }
        let c = Config::parse(
            "[[port]]\nspec = \"null\"\n[port.neigh_parms]\nmcast_solicit = 1\n",
            "t.toml",
        )
        .unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("port[0].neigh_parms:"));
        let c = Config::parse(
            &format!("{BASE}[port.neigh_parms]\nmcast_solicitt = 1\n"),
            "t.toml",
        );
        assert!(c.unwrap_err().to_string().contains("mcast_solicitt"));
    }
}
