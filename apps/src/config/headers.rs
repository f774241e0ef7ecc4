//! The header stack of a raw stream beyond Ethernet[/802.1Q]/IPv4/UDP:
//! the `l3`/`l4` choice (IPv4, IPv6, ARP; UDP, TCP, ICMP echo), 802.1ad
//! QinQ, an MPLS label stack, VXLAN/GRE tunnels and IPv4 options, checked
//! into a [`Headers`] with errors that name the key.

use super::{ConfigError, Field, FieldKind, FieldSection, Sizes, StreamMode, StreamSection};
use std::net::{Ipv4Addr, Ipv6Addr};
use wirespeed::ethdev::MacAddr;
use wirespeed::stack::ipopt::{ip_options_compile, IpOptions, IPOPT_RA, IPOPT_RR, IPOPT_TS};

/// The network layer of a raw stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L3 {
    Ipv4,
    Ipv6,
    Arp,
}

/// The transport layer (none under ARP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    Udp,
    Tcp,
    /// ICMP echo request (ICMPv6 echo request over IPv6).
    Icmp,
    None,
}

/// A TCP header's fixed fields (RFC 9293 §3.1; no options: data offset 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpFixed {
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
}

/// Where a tunnel's inner packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    /// RFC 7348: outer UDP to port 4789 from `sport`, the 24-bit VNI, an inner Ethernet frame.
    Vxlan { vni: u32, sport: u16 },
    /// RFC 2784 without checksum: protocol 0x6558 (transparent Ethernet
    /// bridging) with an inner Ethernet frame, or the inner IP packet
    /// directly (0x0800 / 0x86DD).
    Gre { eth: bool },
}

/// An outer Ethernet (the stream's MACs and tags) / IPv4 around the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    pub kind: TunnelKind,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    /// The inner Ethernet header's addresses (VXLAN, GRE 0x6558).
    pub inner_src_mac: MacAddr,
    pub inner_dst_mac: MacAddr,
}

/// ARP's fields (RFC 826, Ethernet/IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpFixed {
    pub op: u16,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

/// A raw stream's header stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    pub l3: L3,
    pub l4: L4,
    pub tcp: TcpFixed,
    pub icmp_id: u16,
    pub icmp_seq: u16,
    pub src_ip6: Ipv6Addr,
    pub dst_ip6: Ipv6Addr,
    pub hop_limit: u8,
    pub traffic_class: u8,
    /// 20 bits.
    pub flow_label: u32,
    /// The 802.1ad service tag's TCI (0 = none; PCP in the top 3 bits as for `vlan`).
    pub svlan: u16,
    /// MPLS labels, outermost first (the last has the bottom-of-stack bit).
    pub mpls: Vec<u32>,
    pub mpls_ttl: u8,
    pub tunnel: Option<Tunnel>,
    pub arp: ArpFixed,
    /// IPv4 options, compiled (`ip_options_compile`).
    pub ip_options: Option<IpOptions>,
}

impl Default for Headers {
    fn default() -> Self {
        Headers {
            l3: L3::Ipv4,
            l4: L4::Udp,
            tcp: TcpFixed {
                flags: TCP_SYN,
                seq: 0,
                ack: 0,
                window: 65535,
            },
            icmp_id: 0,
            icmp_seq: 0,
            src_ip6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            dst_ip6: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            svlan: 0,
            mpls: Vec::new(),
            mpls_ttl: 64,
            tunnel: None,
            arp: ArpFixed {
                op: 1,
                sender_mac: MacAddr::ZERO,
                sender_ip: Ipv4Addr::UNSPECIFIED,
                target_mac: MacAddr::ZERO,
                target_ip: Ipv4Addr::UNSPECIFIED,
            },
            ip_options: None,
        }
    }
}

const TCP_SYN: u8 = 0x02;
/// VXLAN's default outer UDP source port (the flow-hash range starts here).
pub const VXLAN_DEFAULT_SPORT: u16 = 49152;
/// Most MPLS labels a stream stacks.
pub const MPLS_MAX: usize = 8;

impl Headers {
    /// Ethernet[/802.1Q]/IPv4/UDP without options: the frame the fast
    /// paths (prebuilt flows, grouped fields, the UDP template) build.
    pub fn is_plain(&self) -> bool {
        self.l3 == L3::Ipv4
            && self.l4 == L4::Udp
            && self.svlan == 0
            && self.mpls.is_empty()
            && self.tunnel.is_none()
            && self.ip_options.is_none()
    }

    /// Header bytes before the payload (the 802.1Q tag counted when it
    /// is in the frame).
    pub fn len(&self, vlan_in_frame: bool) -> usize {
        let tags = 4 * (self.svlan != 0) as usize + 4 * vlan_in_frame as usize;
        let link = 14 + tags + 4 * self.mpls.len();
        let tunnel = match &self.tunnel {
            None => 0,
            Some(t) => {
                20 + match t.kind {
                    TunnelKind::Vxlan { .. } => 8 + 8 + 14,
                    TunnelKind::Gre { eth } => 4 + if eth { 14 } else { 0 },
                }
            }
        };
        let l3 = match self.l3 {
            L3::Ipv4 => 20 + self.ip_options.map_or(0, |o| o.len as usize),
            L3::Ipv6 => 40,
            L3::Arp => 28,
        };
        let l4 = match self.l4 {
            L4::Udp | L4::Icmp => 8,
            L4::Tcp => 20,
            L4::None => 0,
        };
        link + tunnel + l3 + l4
    }
}

/// Parses `tcp_flags`: letters of FSRPAUEC (FIN, SYN, RST, PSH, ACK, URG,
/// ECE, CWR; RFC 9293 §3.1, RFC 3168), in any order and case.
fn tcp_flags(t: &str) -> Result<u8, String> {
    let mut f = 0u8;
    for c in t.chars() {
        f |= match c.to_ascii_uppercase() {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            'A' => 0x10,
            'U' => 0x20,
            'E' => 0x40,
            'C' => 0x80,
            _ => return Err(format!("'{t}': '{c}' is not a TCP flag; use letters of FSRPAUEC (e.g. \"S\", \"SA\", \"PA\")")),
        };
    }
    if f == 0 {
        return Err("give at least one flag (e.g. \"S\" for a SYN)".into());
    }
    Ok(f)
}

/// `ip_options`: "hex:…", "rr" (record route, 9 slots), "ts" (timestamps
/// only, 9 slots) or "router-alert" (RFC 2113); checked as Linux's
/// `ip_options_compile` checks a socket's `IP_OPTIONS`.
fn ip_options(t: &str) -> Result<IpOptions, String> {
    let raw: Vec<u8> = match t {
        "rr" | "record-route" => {
            let mut v = vec![IPOPT_RR, 39, 4];
            v.resize(39, 0);
            v
        }
        "ts" | "timestamp" => {
            let mut v = vec![IPOPT_TS, 40, 5, 0];
            v.resize(40, 0);
            v
        }
        "router-alert" => vec![IPOPT_RA, 4, 0, 0],
        h if h.starts_with("hex:") => {
            let hex = &h[4..];
            if hex.is_empty() || hex.len() % 2 != 0 {
                return Err("hex: needs an even number of hex digits".into());
            }
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
                .collect::<Result<_, _>>()
                .map_err(|_| format!("'{h}' has a non-hex digit"))?
        }
        o => {
            return Err(format!(
                "'{o}' is not \"rr\", \"ts\", \"router-alert\" or \"hex:…\""
            ))
        }
    };
    match ip_options_compile(&raw) {
        Ok(Some(o)) => Ok(o),
        Ok(None) => Err("no option bytes given".into()),
        Err(e) => Err(format!("byte {}: {}", e.offset, e.what)),
    }
}

/// A numeric header key: absent, or an integer in 0..=max (an error naming the key otherwise).
fn num(
    k: &dyn Fn(&str) -> String,
    key: &str,
    v: Option<i64>,
    max: u64,
) -> Result<Option<u64>, ConfigError> {
    match v {
        None => Ok(None),
        Some(x) if x >= 0 && x as u64 <= max => Ok(Some(x as u64)),
        Some(x) => Err(ConfigError::new(
            k(key),
            format!("{x} is outside 0..={max}"),
        )),
    }
}

impl StreamSection {
    /// The first layer-choosing header key that is set (l3, ip, l4, svlan, mpls, tunnel, ip_options), if any.
    fn has_header_keys(&self) -> Option<&'static str> {
        let set = [
            ("l3", self.l3.is_some()),
            ("ip", self.ip.is_some()),
            ("l4", self.l4.is_some()),
            ("svlan", self.svlan.is_some()),
            ("mpls", !self.mpls.is_empty()),
            ("tunnel", self.tunnel.is_some()),
            ("ip_options", self.ip_options.is_some()),
        ];
        set.iter().find(|x| x.1).map(|x| x.0)
    }

    /// The stream's header stack; `k` names a key of stream i.
    pub(super) fn headers(
        &self,
        k: &dyn Fn(&str) -> String,
        sizes: &Sizes,
        fields: &[Field],
    ) -> Result<Headers, ConfigError> {
        let e = |key: &str, why: String| ConfigError::new(k(key), why);
        if self.mode != StreamMode::Raw {
            if let Some(key) = self.has_header_keys() {
                return Err(e(key, "header keys are for mode = \"raw\"".into()));
            }
        }
        let mut h = Headers::default();
        h.l3 = self.parse_l3(k)?;
        h.l4 = match (self.l4.as_deref(), h.l3) {
            (Some(_), L3::Arp) => {
                return Err(e(
                    "l4",
                    "an ARP packet carries no transport header; drop l4".into(),
                ))
            }
            (_, L3::Arp) => L4::None,
            (None | Some("udp"), _) => L4::Udp,
            (Some("tcp"), _) => L4::Tcp,
            (Some("icmp"), _) => L4::Icmp,
            (Some(o), _) => {
                return Err(e(
                    "l4",
                    format!("'{o}' is not \"udp\", \"tcp\" or \"icmp\""),
                ))
            }
        };
        self.parse_l4_keys(k, &mut h)?;
        self.parse_ip6(k, &mut h)?;
        self.parse_link(k, &mut h)?;
        self.parse_tunnel(k, &mut h)?;
        self.parse_arp(k, &mut h)?;
        if let Some(t) = &self.ip_options {
            if h.l3 != L3::Ipv4 {
                return Err(e("ip_options", "IPv4 options need l3 = \"ipv4\"".into()));
            }
            h.ip_options = Some(ip_options(t).map_err(|w| e("ip_options", w))?);
        }
        if !h.is_plain() {
            self.check_layered(k, &h, sizes)?;
        }
        for (j, f) in fields.iter().enumerate() {
            field_fits(f.kind, &h)
                .map_err(|w| ConfigError::new(k(&format!("field[{j}].name")), w))?;
            if matches!(f.kind, FieldKind::SrcIp6 | FieldKind::DstIp6) {
                self.check_ip6_field(&self.fields[j], f.kind, &h)
                    .map_err(|(key, w)| ConfigError::new(k(&format!("field[{j}].{key}")), w))?;
            }
        }
        Ok(h)
    }

    fn parse_l3(&self, k: &dyn Fn(&str) -> String) -> Result<L3, ConfigError> {
        let by_ip = match self.ip {
            None => None,
            Some(4) => Some(L3::Ipv4),
            Some(6) => Some(L3::Ipv6),
            Some(o) => {
                return Err(ConfigError::new(k("ip"), format!("{o} is not 4 or 6")));
            }
        };
        let by_l3 = match self.l3.as_deref() {
            None => None,
            Some("ipv4") => Some(L3::Ipv4),
            Some("ipv6") => Some(L3::Ipv6),
            Some("arp") => Some(L3::Arp),
            Some(o) => {
                return Err(ConfigError::new(
                    k("l3"),
                    format!("'{o}' is not \"ipv4\", \"ipv6\" or \"arp\""),
                ))
            }
        };
        match (by_ip, by_l3) {
            (Some(a), Some(b)) if a != b => Err(ConfigError::new(
                k("ip"),
                "contradicts l3; give one of them",
            )),
            (a, b) => Ok(b.or(a).unwrap_or(L3::Ipv4)),
        }
    }

    /// tcp_* and icmp_* keys: only with their l4.
    fn parse_l4_keys(
        &self,
        k: &dyn Fn(&str) -> String,
        h: &mut Headers,
    ) -> Result<(), ConfigError> {
        let tcp_keys = [
            ("tcp_flags", self.tcp_flags.is_some()),
            ("tcp_seq", self.tcp_seq.is_some()),
            ("tcp_ack", self.tcp_ack.is_some()),
            ("tcp_window", self.tcp_window.is_some()),
        ];
        if h.l4 != L4::Tcp {
            if let Some((key, _)) = tcp_keys.iter().find(|x| x.1) {
                return Err(ConfigError::new(k(key), "only with l4 = \"tcp\""));
            }
        }
        if h.l4 != L4::Icmp {
            for (key, set) in [
                ("icmp_id", self.icmp_id.is_some()),
                ("icmp_seq", self.icmp_seq.is_some()),
            ] {
                if set {
                    return Err(ConfigError::new(k(key), "only with l4 = \"icmp\""));
                }
            }
        }
        if let Some(t) = &self.tcp_flags {
            h.tcp.flags = tcp_flags(t).map_err(|w| ConfigError::new(k("tcp_flags"), w))?;
        }
        h.tcp.seq = num(k, "tcp_seq", self.tcp_seq, u32::MAX as u64)?.unwrap_or(0) as u32;
        h.tcp.ack = num(k, "tcp_ack", self.tcp_ack, u32::MAX as u64)?.unwrap_or(0) as u32;
        if h.tcp.ack != 0 && h.tcp.flags & 0x10 == 0 {
            return Err(ConfigError::new(
                k("tcp_ack"),
                "an acknowledgment number needs the ACK flag (add A to tcp_flags)",
            ));
        }
        h.tcp.window = num(k, "tcp_window", self.tcp_window, 65535)?.unwrap_or(65535) as u16;
        h.icmp_id = num(k, "icmp_id", self.icmp_id, 65535)?.unwrap_or(0) as u16;
        h.icmp_seq = num(k, "icmp_seq", self.icmp_seq, 65535)?.unwrap_or(0) as u16;
        Ok(())
    }

    fn parse_ip6(&self, k: &dyn Fn(&str) -> String, h: &mut Headers) -> Result<(), ConfigError> {
        let keys = [
            ("src_ip6", self.src_ip6.is_some()),
            ("dst_ip6", self.dst_ip6.is_some()),
            ("hop_limit", self.hop_limit.is_some()),
            ("traffic_class", self.traffic_class.is_some()),
            ("flow_label", self.flow_label.is_some()),
        ];
        if h.l3 != L3::Ipv6 {
            if let Some((key, _)) = keys.iter().find(|x| x.1) {
                return Err(ConfigError::new(
                    k(key),
                    "only with l3 = \"ipv6\" (or ip = 6)",
                ));
            }
            return Ok(());
        }
        let ip6 = |key: &str, v: &Option<String>, d: Ipv6Addr| -> Result<Ipv6Addr, ConfigError> {
            match v {
                None => Ok(d),
                Some(t) => t
                    .parse()
                    .map_err(|_| ConfigError::new(k(key), format!("'{t}' is not an IPv6 address"))),
            }
        };
        h.src_ip6 = ip6("src_ip6", &self.src_ip6, h.src_ip6)?;
        h.dst_ip6 = ip6("dst_ip6", &self.dst_ip6, h.dst_ip6)?;
        h.hop_limit = num(k, "hop_limit", self.hop_limit, 255)?.map_or(self.ttl, |x| x as u8);
        h.traffic_class =
            num(k, "traffic_class", self.traffic_class, 255)?.map_or(self.tos, |x| x as u8);
        let fl = self.flow_label.unwrap_or(0);
        if !(0..=0xf_ffff).contains(&fl) {
            return Err(ConfigError::new(
                k("flow_label"),
                format!("{fl} does not fit the 20-bit flow label (0..=1048575)"),
            ));
        }
        h.flow_label = fl as u32;
        Ok(())
    }

    /// svlan and the MPLS stack.
    fn parse_link(&self, k: &dyn Fn(&str) -> String, h: &mut Headers) -> Result<(), ConfigError> {
        if let Some(sv) = self.svlan {
            if !(1..=4095).contains(&sv) {
                return Err(ConfigError::new(
                    k("svlan"),
                    format!("{sv} is not a VLAN id (1..=4095)"),
                ));
            }
            if self.vlan_offload {
                return Err(ConfigError::new(
                    k("vlan_offload"),
                    "with svlan both tags are in the frame; drop vlan_offload",
                ));
            }
            h.svlan = sv as u16;
        }
        if self.mpls_ttl.is_some() && self.mpls.is_empty() {
            return Err(ConfigError::new(k("mpls_ttl"), "needs mpls = [label, ...]"));
        }
        if self.mpls.len() > MPLS_MAX {
            return Err(ConfigError::new(
                k("mpls"),
                format!("{} labels; at most {MPLS_MAX}", self.mpls.len()),
            ));
        }
        if let Some((i, l)) = self
            .mpls
            .iter()
            .enumerate()
            .find(|(_, l)| !(0..=0xf_ffff).contains(*l))
        {
            return Err(ConfigError::new(
                format!("{}[{i}]", k("mpls")),
                format!("{l} does not fit a 20-bit MPLS label (0..=1048575)"),
            ));
        }
        if !self.mpls.is_empty() && h.l3 == L3::Arp {
            return Err(ConfigError::new(
                k("mpls"),
                "MPLS carries IP here, not ARP; drop mpls or l3 = \"arp\"",
            ));
        }
        h.mpls = self.mpls.iter().map(|&l| l as u32).collect();
        h.mpls_ttl = num(k, "mpls_ttl", self.mpls_ttl, 255)?.unwrap_or(64) as u8;
        Ok(())
    }

    fn parse_tunnel(&self, k: &dyn Fn(&str) -> String, h: &mut Headers) -> Result<(), ConfigError> {
        let e = |key: &str, why: &str| ConfigError::new(k(key), why.to_string());
        let Some(t) = &self.tunnel else {
            let keys = [
                ("vni", self.vni.is_some()),
                ("tunnel_src", self.tunnel_src.is_some()),
                ("tunnel_dst", self.tunnel_dst.is_some()),
                ("tunnel_ttl", self.tunnel_ttl.is_some()),
                ("tunnel_sport", self.tunnel_sport.is_some()),
                ("gre_proto", self.gre_proto.is_some()),
                ("inner_src_mac", self.inner_src_mac.is_some()),
                ("inner_dst_mac", self.inner_dst_mac.is_some()),
            ];
            if let Some((key, _)) = keys.iter().find(|x| x.1) {
                return Err(e(key, "only with tunnel = \"vxlan\" or \"gre\""));
            }
            return Ok(());
        };
        if h.l3 == L3::Arp {
            return Err(e(
                "tunnel",
                "tunnels carry IP streams here; drop tunnel or l3 = \"arp\"",
            ));
        }
        let kind = self.tunnel_kind(k, t)?;
        let ip = |key: &str, v: &Option<String>| -> Result<Ipv4Addr, ConfigError> {
            let t = v.as_ref().ok_or_else(|| {
                ConfigError::new(
                    k(key),
                    "a tunnel needs its outer IPv4 addresses (tunnel_src, tunnel_dst)",
                )
            })?;
            t.parse()
                .map_err(|_| ConfigError::new(k(key), format!("'{t}' is not an IPv4 address")))
        };
        let mac = |key: &str, v: &Option<String>, d: &str| -> Result<MacAddr, ConfigError> {
            v.as_deref()
                .unwrap_or(d)
                .parse()
                .map_err(|w: String| ConfigError::new(k(key), w))
        };
        h.tunnel = Some(Tunnel {
            kind,
            src: ip("tunnel_src", &self.tunnel_src)?,
            dst: ip("tunnel_dst", &self.tunnel_dst)?,
            ttl: num(k, "tunnel_ttl", self.tunnel_ttl, 255)?.unwrap_or(64) as u8,
            inner_src_mac: mac("inner_src_mac", &self.inner_src_mac, "02:00:00:00:01:01")?,
            inner_dst_mac: mac("inner_dst_mac", &self.inner_dst_mac, "02:00:00:00:01:02")?,
        });
        Ok(())
    }

    /// `tunnel` and the keys of its kind (vni, tunnel_sport; gre_proto).
    fn tunnel_kind(&self, k: &dyn Fn(&str) -> String, t: &str) -> Result<TunnelKind, ConfigError> {
        let e = |key: &str, why: &str| ConfigError::new(k(key), why.to_string());
        Ok(match t {
            "vxlan" => {
                if self.gre_proto.is_some() {
                    return Err(e("gre_proto", "only with tunnel = \"gre\""));
                }
                let vni = self
                    .vni
                    .ok_or_else(|| e("vni", "tunnel = \"vxlan\" needs vni = N (0..=16777215)"))?;
                if !(0..=0xff_ffff).contains(&vni) {
                    return Err(ConfigError::new(
                        k("vni"),
                        format!("{vni} does not fit the 24-bit VNI (0..=16777215)"),
                    ));
                }
                TunnelKind::Vxlan {
                    vni: vni as u32,
                    sport: num(k, "tunnel_sport", self.tunnel_sport, 65535)?
                        .map_or(VXLAN_DEFAULT_SPORT, |x| x as u16),
                }
            }
            "gre" => {
                if self.vni.is_some() {
                    return Err(e("vni", "only with tunnel = \"vxlan\""));
                }
                if self.tunnel_sport.is_some() {
                    return Err(e(
                        "tunnel_sport",
                        "only with tunnel = \"vxlan\" (GRE has no ports)",
                    ));
                }
                let eth = match self.gre_proto.as_deref() {
                None | Some("eth") => true,
                Some("ip") => false,
                Some(o) => {
                    return Err(ConfigError::new(
                        k("gre_proto"),
                        format!("'{o}' is not \"eth\" (0x6558, an inner Ethernet frame) or \"ip\" (the inner IP packet)"),
                    ))
                }
            };
                if !eth && (self.inner_src_mac.is_some() || self.inner_dst_mac.is_some()) {
                    let key = if self.inner_src_mac.is_some() {
                        "inner_src_mac"
                    } else {
                        "inner_dst_mac"
                    };
                    return Err(e(key, "gre_proto = \"ip\" has no inner Ethernet header"));
                }
                TunnelKind::Gre { eth }
            }
            o => {
                return Err(ConfigError::new(
                    k("tunnel"),
                    format!("'{o}' is not \"vxlan\" or \"gre\""),
                ))
            }
        })
    }

    /// The ARP keys: sender = src_mac/src_ip, target = dst_ip and (a reply)
    /// dst_mac unless arp_* override them.
    fn parse_arp(&self, k: &dyn Fn(&str) -> String, h: &mut Headers) -> Result<(), ConfigError> {
        let keys = [
            ("arp_op", self.arp_op.is_some()),
            ("arp_sender_mac", self.arp_sender_mac.is_some()),
            ("arp_sender_ip", self.arp_sender_ip.is_some()),
            ("arp_target_mac", self.arp_target_mac.is_some()),
            ("arp_target_ip", self.arp_target_ip.is_some()),
        ];
        if h.l3 != L3::Arp {
            if let Some((key, _)) = keys.iter().find(|x| x.1) {
                return Err(ConfigError::new(k(key), "only with l3 = \"arp\""));
            }
            return Ok(());
        }
        let op = match self.arp_op.as_deref() {
            None | Some("request") => 1,
            Some("reply") => 2,
            Some(o) => {
                return Err(ConfigError::new(
                    k("arp_op"),
                    format!("'{o}' is not \"request\" or \"reply\""),
                ))
            }
        };
        let mac = |key: &str, v: Option<&str>| -> Result<MacAddr, ConfigError> {
            v.unwrap_or("")
                .parse()
                .map_err(|w: String| ConfigError::new(k(key), w))
        };
        let ip = |key: &str, v: Option<&str>| -> Result<Ipv4Addr, ConfigError> {
            let t = v.unwrap_or("");
            t.parse()
                .map_err(|_| ConfigError::new(k(key), format!("'{t}' is not an IPv4 address")))
        };
        let request_target = "00:00:00:00:00:00";
        h.arp = ArpFixed {
            op,
            sender_mac: mac(
                "arp_sender_mac",
                Some(self.arp_sender_mac.as_deref().unwrap_or(&self.src_mac)),
            )?,
            sender_ip: ip(
                "arp_sender_ip",
                Some(self.arp_sender_ip.as_deref().unwrap_or(&self.src_ip)),
            )?,
            target_mac: mac(
                "arp_target_mac",
                Some(self.arp_target_mac.as_deref().unwrap_or(if op == 1 {
                    request_target
                } else {
                    &self.dst_mac
                })),
            )?,
            target_ip: ip(
                "arp_target_ip",
                Some(self.arp_target_ip.as_deref().unwrap_or(&self.dst_ip)),
            )?,
        };
        Ok(())
    }

    /// What a layered stack rules out, and its smallest frame.
    fn check_layered(
        &self,
        k: &dyn Fn(&str) -> String,
        h: &Headers,
        sizes: &Sizes,
    ) -> Result<(), ConfigError> {
        if self.latency {
            return Err(ConfigError::new(
                k("latency"),
                "latency headers ride in UDP over plain IPv4; drop latency or the header keys (l3, l4, svlan, mpls, tunnel, ip_options)",
            ));
        }
        if self.vlan_offload {
            return Err(ConfigError::new(
                k("vlan_offload"),
                "this header stack keeps its tags in the frame; drop vlan_offload",
            ));
        }
        let need = (h.len(self.vlan != 0) as u32 + 4).max(super::MIN_SIZE);
        if sizes.min() < need {
            let key = if self.imix.is_some() { "imix" } else { "size" };
            return Err(ConfigError::new(
                k(key),
                format!(
                    "{} is below {need}, the smallest frame (FCS included) these headers fit in",
                    sizes.describe()
                ),
            ));
        }
        Ok(())
    }

    /// An IPv6 address field varies the low 32 bits: min and max share the
    /// stream's address's first 96 bits.
    fn check_ip6_field(
        &self,
        f: &FieldSection,
        kind: FieldKind,
        h: &Headers,
    ) -> Result<(), (&'static str, String)> {
        let base = if kind == FieldKind::SrcIp6 {
            h.src_ip6
        } else {
            h.dst_ip6
        };
        let listed = f.min.iter().map(|v| ("min", v));
        let listed = listed.chain(f.max.iter().map(|v| ("max", v)));
        for (key, v) in listed.chain(f.values.iter().flatten().map(|v| ("values", v))) {
            let a: Ipv6Addr = v
                .as_str()
                .and_then(|t| t.parse().ok())
                .ok_or((key, format!("{v} is not an IPv6 address")))?;
            if a.octets()[..12] != base.octets()[..12] {
                return Err((
                    key,
                    format!("{a} differs from the stream's {base} above the low 32 bits (the field varies those only)"),
                ));
            }
        }
        Ok(())
    }
}

/// Whether a varying field exists in the header stack `h`. In a tunnel the
/// MAC and VLAN fields address the outer Ethernet header (the link), the
/// IP, port and ICMP fields the inner packet (the flow).
pub fn field_fits(kind: FieldKind, h: &Headers) -> Result<(), String> {
    let ok = match kind {
        FieldKind::SrcMac | FieldKind::DstMac | FieldKind::Vlan => true,
        FieldKind::SrcIp | FieldKind::DstIp => matches!(h.l3, L3::Ipv4 | L3::Arp),
        FieldKind::Tos => h.l3 == L3::Ipv4,
        FieldKind::SrcIp6 | FieldKind::DstIp6 => h.l3 == L3::Ipv6,
        FieldKind::SrcPort | FieldKind::DstPort => matches!(h.l4, L4::Udp | L4::Tcp),
        FieldKind::TcpSeq => h.l4 == L4::Tcp,
        FieldKind::IcmpId | FieldKind::IcmpSeq => h.l4 == L4::Icmp,
        FieldKind::TunnelSport => matches!(
            h.tunnel.as_ref().map(|t| t.kind),
            Some(TunnelKind::Vxlan { .. })
        ),
    };
    if ok {
        return Ok(());
    }
    let name = kind.name();
    let l3 = match h.l3 {
        L3::Ipv4 => "IPv4",
        L3::Ipv6 => "IPv6",
        L3::Arp => "ARP",
    };
    let l4 = match h.l4 {
        L4::Udp => "/UDP",
        L4::Tcp => "/TCP",
        L4::Icmp => "/ICMP",
        L4::None => "",
    };
    let hint = match kind {
        FieldKind::SrcIp | FieldKind::DstIp => " (IPv6 streams vary src_ip6/dst_ip6)",
        FieldKind::Tos => " (an IPv6 stream's traffic_class is fixed)",
        FieldKind::SrcIp6 | FieldKind::DstIp6 => " (needs l3 = \"ipv6\")",
        FieldKind::SrcPort | FieldKind::DstPort => " (needs l4 = \"udp\" or \"tcp\")",
        FieldKind::TcpSeq => " (needs l4 = \"tcp\")",
        FieldKind::TunnelSport => " (needs tunnel = \"vxlan\")",
        _ => " (needs l4 = \"icmp\")",
    };
    Err(format!(
        "'{name}' is not a field of this {l3}{l4} stream{hint}"
    ))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, Stream};

    fn validate(stream: &str) -> Result<Vec<Stream>, ConfigError> {
        Config::parse(
            &format!("[[port]]\nspec = \"null\"\n[[stream]]\n{stream}\n"),
            "t",
        )?
        .validate()
    }

    /// Every header key refuses a bad value or combination with an error
    /// that names it (and says what would do).
    #[test]
    fn every_header_key_names_itself_when_refused() {
        let tun = "tunnel_src = \"1.0.0.1\"\ntunnel_dst = \"1.0.0.2\"";
        let cases: Vec<(String, &str, &str)> = vec![
            ("l3 = \"ipx\"".into(), "l3", "\"ipv4\", \"ipv6\" or \"arp\""),
            ("ip = 5".into(), "ip", "not 4 or 6"),
            ("ip = 4\nl3 = \"ipv6\"".into(), "ip", "contradicts l3"),
            ("l4 = \"sctp\"".into(), "l4", "\"udp\", \"tcp\" or \"icmp\""),
            ("l3 = \"arp\"\nl4 = \"tcp\"".into(), "l4", "no transport header"),
            ("tcp_flags = \"S\"".into(), "tcp_flags", "only with l4 = \"tcp\""),
            ("l4 = \"tcp\"\ntcp_flags = \"SQ\"".into(), "tcp_flags", "'Q' is not a TCP flag"),
            ("l4 = \"tcp\"\ntcp_flags = \"\"".into(), "tcp_flags", "at least one flag"),
            ("l4 = \"tcp\"\ntcp_ack = 5".into(), "tcp_ack", "needs the ACK flag"),
            ("tcp_seq = 1".into(), "tcp_seq", "only with l4"),
            ("tcp_window = 1".into(), "tcp_window", "only with l4"),
            ("icmp_id = 1".into(), "icmp_id", "only with l4 = \"icmp\""),
            ("l4 = \"tcp\"\nicmp_seq = 1".into(), "icmp_seq", "only with l4 = \"icmp\""),
            ("src_ip6 = \"::1\"".into(), "src_ip6", "only with l3 = \"ipv6\""),
            ("ip = 6\nsize = 80\ndst_ip6 = \"1.2.3.4\"".into(), "dst_ip6", "not an IPv6 address"),
            ("hop_limit = 3".into(), "hop_limit", "only with l3"),
            ("traffic_class = 3".into(), "traffic_class", "only with l3"),
            ("ip = 6\nsize = 80\nflow_label = 1048576".into(), "flow_label", "20-bit"),
            ("svlan = 0".into(), "svlan", "1..=4095"),
            ("l4 = \"tcp\"\ntcp_window = 70000".into(), "tcp_window", "outside 0..=65535"),
            ("l4 = \"tcp\"\ntcp_seq = -1".into(), "tcp_seq", "outside 0..=4294967295"),
            ("l4 = \"icmp\"\nicmp_seq = 65536".into(), "icmp_seq", "outside"),
            ("l4 = \"icmp\"\nicmp_id = -3".into(), "icmp_id", "outside"),
            ("ip = 6\nsize = 80\nhop_limit = 256".into(), "hop_limit", "outside 0..=255"),
            ("ip = 6\nsize = 80\ntraffic_class = 300".into(), "traffic_class", "outside"),
            ("ip = 6\nsize = 80\nflow_label = -1".into(), "flow_label", "20-bit"),
            ("mpls = [5]\nmpls_ttl = 256".into(), "mpls_ttl", "outside"),
            ("mpls = [-5]".into(), "mpls[0]", "20-bit"),
            ("tunnel = \"vxlan\"\nvni = -1\ntunnel_src = \"1.0.0.1\"\ntunnel_dst = \"1.0.0.2\"".into(), "vni", "24-bit"),
            ("tunnel = \"vxlan\"\nvni = 1\ntunnel_sport = 65536\ntunnel_src = \"1.0.0.1\"\ntunnel_dst = \"1.0.0.2\"".into(), "tunnel_sport", "outside"),
            ("tunnel = \"gre\"\ntunnel_ttl = 999\ntunnel_src = \"1.0.0.1\"\ntunnel_dst = \"1.0.0.2\"".into(), "tunnel_ttl", "outside"),
            ("svlan = 5000".into(), "svlan", "1..=4095"),
            ("svlan = 5\nvlan = 6\nvlan_offload = true".into(), "vlan_offload", "both tags"),
            ("mpls = [1048576]".into(), "mpls[0]", "20-bit"),
            ("mpls = [1,2,3,4,5,6,7,8,9]".into(), "mpls", "at most 8"),
            ("mpls_ttl = 3".into(), "mpls_ttl", "needs mpls"),
            ("l3 = \"arp\"\nmpls = [5]".into(), "mpls", "not ARP"),
            ("tunnel = \"ipip\"".into(), "tunnel", "\"vxlan\" or \"gre\""),
            (format!("tunnel = \"vxlan\"\n{tun}"), "vni", "needs vni"),
            (format!("tunnel = \"vxlan\"\nvni = 16777216\n{tun}"), "vni", "24-bit"),
            ("tunnel = \"vxlan\"\nvni = 1\ntunnel_dst = \"1.0.0.2\"".into(), "tunnel_src", "outer IPv4"),
            ("tunnel = \"gre\"\ntunnel_src = \"1.0.0.1\"\ntunnel_dst = \"x\"".into(), "tunnel_dst", "not an IPv4"),
            (format!("tunnel = \"gre\"\nvni = 1\n{tun}"), "vni", "only with tunnel = \"vxlan\""),
            (format!("tunnel = \"gre\"\ntunnel_sport = 1\n{tun}"), "tunnel_sport", "GRE has no ports"),
            (format!("tunnel = \"vxlan\"\nvni = 1\ngre_proto = \"ip\"\n{tun}"), "gre_proto", "only with tunnel = \"gre\""),
            (format!("tunnel = \"gre\"\ngre_proto = \"ppp\"\n{tun}"), "gre_proto", "\"eth\""),
            (format!("tunnel = \"gre\"\ngre_proto = \"ip\"\ninner_dst_mac = \"02:00:00:00:00:09\"\n{tun}"), "inner_dst_mac", "no inner Ethernet"),
            (format!("tunnel = \"gre\"\ninner_src_mac = \"zz\"\n{tun}"), "inner_src_mac", ""),
            ("vni = 3".into(), "vni", "only with tunnel"),
            ("tunnel_ttl = 3".into(), "tunnel_ttl", "only with tunnel"),
            (format!("l3 = \"arp\"\ntunnel = \"gre\"\n{tun}"), "tunnel", "carry IP"),
            ("arp_op = \"reply\"".into(), "arp_op", "only with l3 = \"arp\""),
            ("l3 = \"arp\"\narp_op = \"rarp\"".into(), "arp_op", "\"request\" or \"reply\""),
            ("l3 = \"arp\"\narp_sender_ip = \"10.0.0\"".into(), "arp_sender_ip", "not an IPv4"),
            ("l3 = \"arp\"\narp_target_mac = \"02:00\"".into(), "arp_target_mac", ""),
            ("arp_target_ip = \"1.1.1.1\"".into(), "arp_target_ip", "only with l3"),
            ("ip_options = \"lsrr\"".into(), "ip_options", "\"rr\", \"ts\""),
            ("ip_options = \"hex:0\"".into(), "ip_options", "even number"),
            ("ip_options = \"hex:0703\"".into(), "ip_options", "byte"),
            ("ip = 6\nsize = 80\nip_options = \"rr\"".into(), "ip_options", "need l3 = \"ipv4\""),
            ("l4 = \"tcp\"\nlatency = true\nsize = 100".into(), "latency", "plain IPv4"),
            ("l4 = \"tcp\"\nvlan = 3\nvlan_offload = true".into(), "vlan_offload", "in the frame"),
            (format!("tunnel = \"vxlan\"\nvni = 1\n{tun}\nsize = 90"), "size", "below 96"),
            ("mode = \"pcap\"\npcap = \"x.pcap\"\nl4 = \"tcp\"".into(), "l4", "for mode = \"raw\""),
            (
                "ip = 6\nsize = 80\n[[stream.field]]\nname = \"src_ip\"\nmin = \"1.0.0.1\"\nmax = \"1.0.0.2\"".into(),
                "field[0].name",
                "src_ip6/dst_ip6",
            ),
            (
                "l4 = \"icmp\"\n[[stream.field]]\nname = \"dst_port\"\nmin = 1\nmax = 2".into(),
                "field[0].name",
                "not a field of this IPv4/ICMP stream",
            ),
            (
                "[[stream.field]]\nname = \"tunnel_sport\"\nmin = 1\nmax = 2".into(),
                "field[0].name",
                "needs tunnel = \"vxlan\"",
            ),
            (
                "[[stream.field]]\nname = \"icmp_seq\"\nmin = 1\nmax = 2".into(),
                "field[0].name",
                "needs l4 = \"icmp\"",
            ),
            (
                "ip = 6\nsize = 80\n[[stream.field]]\nname = \"src_ip6\"\nmin = \"2001:db8::1\"\nmax = \"2001:db9::2\"".into(),
                "field[0].max",
                "low 32 bits",
            ),
            (
                "ip = 6\nsize = 80\n[[stream.field]]\nname = \"dst_ip6\"\nmin = \"x\"\nmax = \"2001:db8::2\"".into(),
                "field[0].min",
                "not an IPv6 address",
            ),
        ];
        for (toml, key, why) in cases {
            let e = validate(&toml).expect_err(&toml);
            assert_eq!(e.key, format!("stream[0].{key}"), "{toml}: {e}");
            assert!(e.why.contains(why), "{toml}: {e}");
        }
    }

    /// The defaults give the plain stack; each key gives its layer.
    #[test]
    fn header_keys_parse_into_the_stack() {
        use super::*;
        let s = &validate("").unwrap()[0];
        assert!(s.hdr.is_plain());
        assert_eq!(s.hdr.len(false), 42);
        let s = &validate(
            "size = 200\nip = 6\nl4 = \"tcp\"\ntcp_flags = \"fsrpauec\"\nsvlan = 9\nvlan = 3\nmpls = [1, 2]\n\
             tunnel = \"vxlan\"\nvni = 7\ntunnel_src = \"1.0.0.1\"\ntunnel_dst = \"1.0.0.2\"",
        )
        .unwrap()[0];
        let h = &s.hdr;
        assert!(!h.is_plain());
        assert_eq!(
            (h.l3, h.l4, h.tcp.flags, h.svlan),
            (L3::Ipv6, L4::Tcp, 0xff, 9)
        );
        assert_eq!(h.mpls, vec![1, 2]);
        assert_eq!(
            h.tunnel.as_ref().unwrap().kind,
            TunnelKind::Vxlan {
                vni: 7,
                sport: 49152
            }
        );
        // 14 + 8 tags + 8 MPLS + 20 outer IPv4 + 8 UDP + 8 VXLAN + 14 inner Ethernet + 40 + 20.
        assert_eq!(h.len(true), 140);
        let s = &validate("l3 = \"arp\"").unwrap()[0];
        assert_eq!((s.hdr.l4, s.hdr.arp.op), (L4::None, 1));
        assert_eq!(s.hdr.arp.target_mac, MacAddr::ZERO);
    }
}
