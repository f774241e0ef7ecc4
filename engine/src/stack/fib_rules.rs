//! Policy routing: the rule list and the tables it selects. Plays the part
//! of `fib_lookup` → `fib_rules_lookup` → `fib4_rule_action` →
//! `fib_table_lookup` (net/ipv4/fib_rules.c, net/core/fib_rules.c, seed 004).
//!
//! Rules are kept by priority (`pref`), lowest first; each selects flows by
//! source and destination prefix, TOS, firewall mark, output port, IP
//! protocol and port ranges (or their inverse, `not`), and its action either
//! looks the flow up in a table (`FR_ACT_TO_TBL`), jumps to a later rule
//! (`FR_ACT_GOTO`), does nothing (`FR_ACT_NOP`), or ends the lookup with an
//! error: `unreachable` → `ENETUNREACH`, `prohibit` → `EACCES`, `blackhole`
//! → `EINVAL` (`fib4_rule_action`). A table with no matching route (or a
//! `throw` route) passes the flow on to the next rule (`-EAGAIN`); when no
//! rule gives an answer the result is `ENETUNREACH` (`-ESRCH`, turned into
//! `-ENETUNREACH` by `__fib_lookup`). A fresh stack has Linux's three
//! default rules: `0: lookup local`, `32766: lookup main`, `32767: lookup
//! default`.
//!
//! The lookup is allocation-free and walks a few rules; a connected socket
//! pays it only when its cached `dst` is invalidated (every change here
//! bumps [`Fib::generation`]).

use super::route::{FibErr, FibResult, RouteTable, TableKey, IPTOS_RT_MASK, RT_SCOPE_UNIVERSE};
use super::Errno;
use std::net::Ipv4Addr;

/// `RT_TABLE_DEFAULT`.
pub const RT_TABLE_DEFAULT: u32 = 253;
/// `RT_TABLE_MAIN`.
pub const RT_TABLE_MAIN: u32 = 254;
/// `RT_TABLE_LOCAL`.
pub const RT_TABLE_LOCAL: u32 = 255;

/// `enum fr_act` (include/uapi/linux/fib_rules.h), the actions IPv4 rules take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// `FR_ACT_TO_TBL`: look the flow up in this table (`lookup ID`).
    ToTable(u32),
    /// `FR_ACT_GOTO`: go on at the rule with this priority (`goto PREF`).
    Goto(u32),
    /// `FR_ACT_NOP`.
    Nop,
    /// `FR_ACT_BLACKHOLE`: `-EINVAL`.
    Blackhole,
    /// `FR_ACT_UNREACHABLE`: `-ENETUNREACH`.
    Unreachable,
    /// `FR_ACT_PROHIBIT`: `-EACCES`.
    Prohibit,
}

/// What a rule matches (`struct fib_rule` + `struct fib4_rule` selectors).
/// The default matches every flow (`from all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSelector {
    pub src: Ipv4Addr,
    pub src_len: u8,
    pub dst: Ipv4Addr,
    pub dst_len: u8,
    /// `tos`: 0 = any.
    pub tos: u8,
    /// `fwmark MARK/MASK`: matches when `(mark ^ flow mark) & mask == 0`.
    pub fwmark: u32,
    pub fwmask: u32,
    /// `oif`: the output port the socket chose (`SO_BINDTODEVICE`,
    /// `IP_PKTINFO`'s `ipi_ifindex`, `IP_MULTICAST_IF`).
    pub oif: Option<u16>,
    /// `ipproto`: 0 = any.
    pub ipproto: u8,
    /// `sport A-B` / `dport A-B`.
    pub sport: Option<(u16, u16)>,
    pub dport: Option<(u16, u16)>,
    /// `not` (`FIB_RULE_INVERT`).
    pub invert: bool,
}

impl Default for RuleSelector {
    fn default() -> Self {
        RuleSelector {
            src: Ipv4Addr::UNSPECIFIED,
            src_len: 0,
            dst: Ipv4Addr::UNSPECIFIED,
            dst_len: 0,
            tos: 0,
            fwmark: 0,
            fwmask: 0,
            oif: None,
            ipproto: 0,
            sport: None,
            dport: None,
            invert: false,
        }
    }
}

/// One rule (`ip rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FibRule {
    /// `pref` / `priority`.
    pub pref: u32,
    pub sel: RuleSelector,
    pub action: RuleAction,
    /// `suppress_prefixlength N`: a table answer with a prefix this short
    /// or shorter is ignored (`fib4_rule_suppress`).
    pub suppress_prefixlen: Option<u8>,
}

/// A rule to add; `pref: None` takes Linux's default, one below the
/// second rule's (`fib_default_rule_pref`: 32765, 32764, … on a fresh list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleConf {
    pub pref: Option<u32>,
    pub sel: RuleSelector,
    pub action: RuleAction,
    pub suppress_prefixlen: Option<u8>,
}

/// The flow a route is looked up for (`struct flowi4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flowi4 {
    pub daddr: Ipv4Addr,
    /// Unspecified until the socket or the route chooses one.
    pub saddr: Ipv4Addr,
    pub oif: Option<u16>,
    /// The datagram's TOS byte (`flowi4_tos`; routes and rules compare
    /// `tos & IPTOS_RT_MASK`).
    pub tos: u8,
    /// `flowi4_scope`: `RT_SCOPE_LINK` for `RTO_ONLINK` (`MSG_DONTROUTE`,
    /// `SO_DONTROUTE`), else `RT_SCOPE_UNIVERSE`.
    pub scope: u8,
    /// `flowi4_mark` (`SO_MARK`, or the `SO_MARK` cmsg).
    pub mark: u32,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

impl Flowi4 {
    /// A flow to `daddr` with nothing else chosen.
    pub fn new(daddr: Ipv4Addr) -> Flowi4 {
        Flowi4 {
            daddr,
            saddr: Ipv4Addr::UNSPECIFIED,
            oif: None,
            tos: 0,
            scope: RT_SCOPE_UNIVERSE,
            mark: 0,
            proto: 0,
            sport: 0,
            dport: 0,
        }
    }
}

#[inline]
fn prefix_match(a: Ipv4Addr, p: Ipv4Addr, len: u8) -> bool {
    (u32::from(a) ^ u32::from(p)) & super::route::mask(len) == 0
}

impl RuleSelector {
    /// Plays `fib_rule_match` + `fib4_rule_match`.
    #[inline]
    pub fn matches(&self, fl: &Flowi4) -> bool {
        let m = self.oif.is_none_or(|o| fl.oif == Some(o))
            && (self.fwmark ^ fl.mark) & self.fwmask == 0
            && prefix_match(fl.daddr, self.dst, self.dst_len)
            && prefix_match(fl.saddr, self.src, self.src_len)
            && (self.tos == 0 || self.tos == fl.tos & IPTOS_RT_MASK)
            && (self.ipproto == 0 || self.ipproto == fl.proto)
            && self.sport.is_none_or(|(a, b)| (a..=b).contains(&fl.sport))
            && self.dport.is_none_or(|(a, b)| (a..=b).contains(&fl.dport));
        m != self.invert
    }
}

/// The rules and the tables of one stack (`net->ipv4.rules_ops` + the
/// `fib_table_hash`).
#[derive(Debug, Clone)]
pub struct Fib {
    rules: Vec<FibRule>,
    tables: Vec<RouteTable>,
    generation: u64,
}

impl Default for Fib {
    fn default() -> Self {
        Fib::new()
    }
}

impl Fib {
    /// The `local`, `main` and `default` tables (empty) and Linux's default
    /// rules (`fib_default_rules_init`).
    pub fn new() -> Fib {
        let rule = |pref, table| FibRule {
            pref,
            sel: RuleSelector::default(),
            action: RuleAction::ToTable(table),
            suppress_prefixlen: None,
        };
        Fib {
            rules: vec![
                rule(0, RT_TABLE_LOCAL),
                rule(32766, RT_TABLE_MAIN),
                rule(32767, RT_TABLE_DEFAULT),
            ],
            tables: [RT_TABLE_LOCAL, RT_TABLE_MAIN, RT_TABLE_DEFAULT]
                .into_iter()
                .map(RouteTable::with_id)
                .collect(),
            generation: 1,
        }
    }

    /// Bumped by every change to a rule or a table.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A table (`fib_get_table`).
    #[inline]
    pub fn table(&self, id: u32) -> Option<&RouteTable> {
        self.tables.iter().find(|t| t.id() == id)
    }

    /// A table to change, created when new (`fib_new_table`).
    pub fn table_mut(&mut self, id: u32) -> &mut RouteTable {
        self.generation += 1;
        let i = match self.tables.iter().position(|t| t.id() == id) {
            Some(i) => i,
            None => {
                self.tables.push(RouteTable::with_id(id));
                self.tables.len() - 1
            }
        };
        &mut self.tables[i]
    }

    /// The tables, by id.
    pub fn tables(&self) -> impl Iterator<Item = &RouteTable> {
        self.tables.iter()
    }

    /// The rules in lookup order (`ip rule show`).
    pub fn rules(&self) -> &[FibRule] {
        &self.rules
    }

    /// `fib_default_rule_pref`: one below the second rule's priority.
    pub fn default_pref(&self) -> u32 {
        match self.rules.get(1) {
            Some(r) if r.pref > 0 => r.pref - 1,
            _ => 0,
        }
    }

    /// Adds a rule after the rules of the same or lower priority
    /// (`fib_nl_newrule`). `EINVAL` for a `goto` that does not go forward.
    pub fn add_rule(&mut self, c: &RuleConf) -> Result<FibRule, Errno> {
        let pref = c.pref.unwrap_or_else(|| self.default_pref());
        if let RuleAction::Goto(t) = c.action {
            if t <= pref {
                return Err(Errno::EINVAL);
            }
        }
        let r = FibRule {
            pref,
            sel: c.sel,
            action: c.action,
            suppress_prefixlen: c.suppress_prefixlen,
        };
        let at = self
            .rules
            .iter()
            .position(|x| x.pref > pref)
            .unwrap_or(self.rules.len());
        self.rules.insert(at, r);
        self.generation += 1;
        Ok(r)
    }

    /// Deletes the first rule with priority `pref` (`ip rule del pref N`).
    pub fn del_rule(&mut self, pref: u32) -> Option<FibRule> {
        let i = self.rules.iter().position(|r| r.pref == pref)?;
        self.generation += 1;
        Some(self.rules.remove(i))
    }

    /// Plays the part of `fib_lookup` (`__fib_lookup`): the rules, with
    /// "no rule answered" (`-ESRCH`) reported as `ENETUNREACH`.
    #[inline]
    pub fn fib_lookup(&self, fl: &Flowi4) -> Result<FibResult, Errno> {
        self.fib_rules_lookup(fl)
            .map_err(|e| e.unwrap_or(Errno::ENETUNREACH))
    }

    /// Plays the part of `fib_rules_lookup`: the first matching rule whose
    /// action gives an answer (a route or an error) decides; `Err(None)` is
    /// `-ESRCH`.
    pub fn fib_rules_lookup(&self, fl: &Flowi4) -> Result<FibResult, Option<Errno>> {
        let mut i = 0;
        while let Some(rule) = self.rules.get(i) {
            i += 1;
            if !rule.sel.matches(fl) {
                continue;
            }
            match rule.action {
                RuleAction::Goto(target) => {
                    // `ctarget`: the rule with exactly that priority; none
                    // (deleted) makes the goto a no-op.
                    if let Some(j) = self.rules.iter().position(|r| r.pref == target) {
                        i = j;
                    }
                    continue;
                }
                RuleAction::Nop => continue,
                _ => {}
            }
            match self.fib4_rule_action(rule, fl) {
                Err(FibErr::Again) => continue,
                Err(FibErr::Errno(e)) => return Err(Some(e)),
                Ok(res) => {
                    // fib4_rule_suppress: too short a prefix is no answer.
                    if rule.suppress_prefixlen.is_some_and(|p| res.len <= p) {
                        continue;
                    }
                    return Ok(res);
                }
            }
        }
        Err(None)
    }

    /// Plays the part of `fib4_rule_action`: the errors of the terminal
    /// actions, or a lookup in the rule's table (a table that does not
    /// exist is `-EAGAIN`).
    #[inline]
    pub fn fib4_rule_action(&self, rule: &FibRule, fl: &Flowi4) -> Result<FibResult, FibErr> {
        let id = match rule.action {
            RuleAction::ToTable(id) => id,
            RuleAction::Unreachable => return Err(FibErr::Errno(Errno::ENETUNREACH)),
            RuleAction::Prohibit => return Err(FibErr::Errno(Errno::EACCES)),
            RuleAction::Blackhole | RuleAction::Goto(_) | RuleAction::Nop => {
                return Err(FibErr::Errno(Errno::EINVAL))
            }
        };
        let Some(t) = self.table(id) else {
            return Err(FibErr::Again);
        };
        t.fib_table_lookup(&TableKey {
            daddr: fl.daddr,
            tos: fl.tos,
            scope: fl.scope,
            oif: fl.oif,
        })
    }
}

/// A table name or number as `ip` takes it (`local`, `main`, `default`, 1..).
pub fn parse_table(s: &str) -> Result<u32, String> {
    match s {
        "local" => Ok(RT_TABLE_LOCAL),
        "main" => Ok(RT_TABLE_MAIN),
        "default" => Ok(RT_TABLE_DEFAULT),
        _ => match parse_u32(s) {
            Some(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "table '{s}' is not local, main, default or a number 1..4294967295"
            )),
        },
    }
}

/// A number in decimal or `0x` hex.
pub fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `A.B.C.D[/LEN]`, `all`/`default` (0/0); host bits must be clear.
pub fn parse_prefix(s: &str) -> Result<(Ipv4Addr, u8), String> {
    if s == "all" || s == "default" || s == "any" {
        return Ok((Ipv4Addr::UNSPECIFIED, 0));
    }
    let (a, l) = s.split_once('/').unwrap_or((s, "32"));
    let addr: Ipv4Addr = a
        .parse()
        .map_err(|_| format!("'{s}' is not an IPv4 prefix (A.B.C.D/LEN)"))?;
    let len: u8 = l
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| format!("'{s}': prefix length must be 0..=32"))?;
    let m = super::route::mask(len);
    if u32::from(addr) & !m != 0 {
        return Err(format!(
            "'{s}': host bits are set (did you mean {}/{len}?)",
            Ipv4Addr::from(u32::from(addr) & m)
        ));
    }
    Ok((addr, len))
}

/// A port as `dev` takes it: `N` or `portN`.
pub(crate) fn parse_dev(s: &str) -> Result<u16, String> {
    s.strip_prefix("port")
        .unwrap_or(s)
        .parse()
        .map_err(|_| format!("dev '{s}' is not a port index (0, 1, … or port0, port1, …)"))
}

fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    match (a.parse::<u16>(), b.parse::<u16>()) {
        (Ok(a), Ok(b)) if a <= b => Ok((a, b)),
        _ => Err(format!("'{s}' is not a port or a range A-B")),
    }
}

/// The TOS a rule or route takes (`tos 0x10`), checked against `mask`.
pub fn parse_tos(s: &str, mask: u8) -> Result<u8, String> {
    match parse_u32(s) {
        Some(t) if t <= 0xff && t as u8 & !mask == 0 => Ok(t as u8),
        _ => Err(format!(
            "tos '{s}' must be a number with bits only in {mask:#04x} (Invalid tos)"
        )),
    }
}

impl std::str::FromStr for RuleConf {
    type Err = String;

    /// `ip rule add` syntax: `[not] [from P] [to P] [tos T] [fwmark M[/MASK]]
    /// [oif N] [ipproto udp|tcp|icmp|N] [sport A[-B]] [dport A[-B]]
    /// [pref N] [lookup T | goto N | nop | unreachable | prohibit |
    /// blackhole] [suppress_prefixlength N]`; no action is `lookup main`.
    fn from_str(s: &str) -> Result<RuleConf, String> {
        let mut c = RuleConf {
            pref: None,
            sel: RuleSelector::default(),
            action: RuleAction::ToTable(RT_TABLE_MAIN),
            suppress_prefixlen: None,
        };
        let mut w = s.split_whitespace();
        let val = |w: &mut std::str::SplitWhitespace<'_>, k: &str| {
            w.next()
                .map(str::to_owned)
                .ok_or(format!("'{k}' needs a value"))
        };
        while let Some(k) = w.next() {
            match k {
                "not" => c.sel.invert = true,
                "from" => (c.sel.src, c.sel.src_len) = parse_prefix(&val(&mut w, k)?)?,
                "to" => (c.sel.dst, c.sel.dst_len) = parse_prefix(&val(&mut w, k)?)?,
                "tos" | "dsfield" => c.sel.tos = parse_tos(&val(&mut w, k)?, 0x1e)?,
                "fwmark" => {
                    let v = val(&mut w, k)?;
                    let (m, mask) = v.split_once('/').unwrap_or((&v, "0xffffffff"));
                    match (parse_u32(m), parse_u32(mask)) {
                        (Some(m), Some(mask)) => (c.sel.fwmark, c.sel.fwmask) = (m, mask),
                        _ => return Err(format!("fwmark '{v}' is not MARK or MARK/MASK")),
                    }
                }
                "oif" | "dev" => c.sel.oif = Some(parse_dev(&val(&mut w, k)?)?),
                "ipproto" => {
                    let v = val(&mut w, k)?;
                    c.sel.ipproto = match v.as_str() {
                        "udp" => 17,
                        "tcp" => 6,
                        "icmp" => 1,
                        n => n.parse().map_err(|_| {
                            format!("ipproto '{n}' is not udp, tcp, icmp or 0..255")
                        })?,
                    }
                }
                "sport" => c.sel.sport = Some(parse_range(&val(&mut w, k)?)?),
                "dport" => c.sel.dport = Some(parse_range(&val(&mut w, k)?)?),
                "pref" | "priority" | "order" => {
                    let v = val(&mut w, k)?;
                    c.pref = Some(parse_u32(&v).ok_or(format!("pref '{v}' is not a number"))?);
                }
                "lookup" | "table" => {
                    c.action = RuleAction::ToTable(parse_table(&val(&mut w, k)?)?)
                }
                "goto" => {
                    let v = val(&mut w, k)?;
                    c.action =
                        RuleAction::Goto(parse_u32(&v).ok_or(format!("goto '{v}' is not a pref"))?);
                }
                "nop" => c.action = RuleAction::Nop,
                "unreachable" => c.action = RuleAction::Unreachable,
                "prohibit" => c.action = RuleAction::Prohibit,
                "blackhole" => c.action = RuleAction::Blackhole,
                "suppress_prefixlength" => {
                    let v = val(&mut w, k)?;
                    c.suppress_prefixlen = Some(
                        v.parse()
                            .ok()
                            .filter(|l: &u8| *l <= 32)
                            .ok_or(format!("suppress_prefixlength '{v}' must be 0..=32"))?,
                    );
                }
                _ => return Err(format!("unknown word '{k}' in rule '{s}'")),
            }
        }
        Ok(c)
    }
}

impl std::fmt::Display for FibRule {
    /// `ip rule show` format.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.sel;
        write!(f, "{}:\t", self.pref)?;
        if s.invert {
            write!(f, "not ")?;
        }
        if s.src_len == 0 {
            write!(f, "from all")?;
        } else {
            write!(f, "from {}/{}", s.src, s.src_len)?;
        }
        if s.dst_len > 0 {
            write!(f, " to {}/{}", s.dst, s.dst_len)?;
        }
        if s.tos != 0 {
            write!(f, " tos {:#04x}", s.tos)?;
        }
        if s.fwmask != 0 {
            write!(f, " fwmark {:#x}/{:#x}", s.fwmark, s.fwmask)?;
        }
        if let Some(o) = s.oif {
            write!(f, " oif port{o}")?;
        }
        match self.action {
            RuleAction::ToTable(RT_TABLE_LOCAL) => write!(f, " lookup local"),
            RuleAction::ToTable(RT_TABLE_MAIN) => write!(f, " lookup main"),
            RuleAction::ToTable(RT_TABLE_DEFAULT) => write!(f, " lookup default"),
            RuleAction::ToTable(t) => write!(f, " lookup {t}"),
            RuleAction::Goto(p) => write!(f, " goto {p}"),
            RuleAction::Nop => write!(f, " nop"),
            RuleAction::Blackhole => write!(f, " blackhole"),
            RuleAction::Unreachable => write!(f, " unreachable"),
            RuleAction::Prohibit => write!(f, " prohibit"),
        }
    }
}
