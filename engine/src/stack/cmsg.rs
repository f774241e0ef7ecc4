//! Control messages on `sendmsg` (`__sock_cmsg_send`, `ip_cmsg_send`,
//! `udp_cmsg_send`): the per-datagram options a UDP socket's caller passes
//! beside the data. They are parsed into a [`SendOpts`], which overrides the
//! socket's own options for that one datagram (Linux's `ipcm_cookie`,
//! initialised from the socket by `ipcm_init_sk`).
//!
//! The wire form is kept: each [`Cmsg`] is a level, a type and the data
//! bytes whose length is `cmsg_len - CMSG_LEN(0)`, so every size check
//! Linux makes (and its `EINVAL`) happens here the same way. The typed
//! constructors ([`Cmsg::ttl`], [`Cmsg::pktinfo`], …) build the sizes a C
//! caller would.
//!
//! Interface indexes: wirespeed port `p` has `ifindex` `p + 1`
//! ([`port_ifindex`]); 0 means "no interface", as in `in_pktinfo`.

use super::ipopt::{ip_options_compile, IpOptions, MAX_OPTLEN};
use super::udp::{MsgFlags, SendOpts};
use super::Errno;
use std::net::Ipv4Addr;

/// `SOL_IP` (`IPPROTO_IP`).
pub const SOL_IP: i32 = 0;
/// `SOL_SOCKET`.
pub const SOL_SOCKET: i32 = 1;
/// `SOL_UDP` (`IPPROTO_UDP`).
pub const SOL_UDP: i32 = 17;

/// `IP_TOS`.
pub const IP_TOS: i32 = 1;
/// `IP_TTL`.
pub const IP_TTL: i32 = 2;
/// `IP_OPTIONS`.
pub const IP_OPTIONS: i32 = 4;
/// `IP_RETOPTS` (the same as `IP_OPTIONS` on send).
pub const IP_RETOPTS: i32 = 7;
/// `IP_PKTINFO`.
pub const IP_PKTINFO: i32 = 8;
/// `IP_PROTOCOL` (meaningful for raw sockets only).
pub const IP_PROTOCOL: i32 = 52;

/// `SCM_RIGHTS`, `SCM_CREDENTIALS` (`SOL_UNIX` in meaning; skipped).
pub const SCM_RIGHTS: i32 = 1;
pub const SCM_CREDENTIALS: i32 = 2;
/// `SO_PRIORITY`.
pub const SO_PRIORITY: i32 = 12;
/// `SO_MARK`.
pub const SO_MARK: i32 = 36;
/// `SO_TIMESTAMPING_OLD` / `SO_TIMESTAMPING_NEW` (`SCM_TIMESTAMPING`).
pub const SO_TIMESTAMPING_OLD: i32 = 37;
pub const SO_TIMESTAMPING_NEW: i32 = 65;
/// `SCM_TXTIME` (`SO_TXTIME`).
pub const SCM_TXTIME: i32 = 61;
/// `SCM_TS_OPT_ID`: a timestamp key for this datagram (Linux 6.13).
pub const SCM_TS_OPT_ID: i32 = 81;
/// `UDP_SEGMENT` (UDP GSO size).
pub const UDP_SEGMENT: i32 = 103;

/// `SOF_TIMESTAMPING_TX_HARDWARE`, `_TX_SOFTWARE`, `_TX_SCHED`, `_TX_ACK`:
/// the bits a `SO_TIMESTAMPING` cmsg may carry
/// (`SOF_TIMESTAMPING_TX_RECORD_MASK`, include/uapi/linux/net_tstamp.h).
pub const SOF_TIMESTAMPING_TX_RECORD_MASK: u32 = (1 << 0) | (1 << 1) | (1 << 8) | (1 << 9);
/// `SOF_TIMESTAMPING_TX_SOFTWARE`: a timestamp when the driver takes the packet.
pub const SOF_TIMESTAMPING_TX_SOFTWARE: u32 = 1 << 1;
/// `SOF_TIMESTAMPING_SOFTWARE`: report software timestamps.
pub const SOF_TIMESTAMPING_SOFTWARE: u32 = 1 << 4;
/// `SOF_TIMESTAMPING_OPT_ID`: each datagram's timestamp carries a key.
pub const SOF_TIMESTAMPING_OPT_ID: u32 = 1 << 7;

/// The `SO_TIMESTAMPING` socket option's flags this stack can honour:
/// `EINVAL` for bits Linux does not define (`SOF_TIMESTAMPING_MASK`,
/// 17 bits as of 6.x), `EOPNOTSUPP` for timestamps no port here reports.
pub fn check_tsflags(flags: u32) -> Result<(), Errno> {
    if flags >> 17 != 0 {
        return Err(Errno::EINVAL);
    }
    let ok = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID;
    if flags & !ok & (SOF_TIMESTAMPING_TX_RECORD_MASK | 0b0100_0100) != 0 {
        // TX_HARDWARE/TX_SCHED/TX_ACK, RX_HARDWARE (1<<2), RAW_HARDWARE (1<<6).
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(())
}

/// Data bytes kept per message: the largest any type uses (IP options).
const CMSG_DATA_MAX: usize = MAX_OPTLEN;

/// One control message: level, type and data (`struct cmsghdr` + data).
/// Holds up to 40 data bytes inline (no allocation); a longer message keeps
/// its length, so the size checks still see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cmsg {
    pub level: i32,
    pub ty: i32,
    /// `cmsg_len - CMSG_LEN(0)`.
    len: usize,
    data: [u8; CMSG_DATA_MAX],
}

impl Cmsg {
    /// A message with these data bytes, as a C caller lays it out.
    pub fn raw(level: i32, ty: i32, data: &[u8]) -> Cmsg {
        let mut d = [0u8; CMSG_DATA_MAX];
        let n = data.len().min(CMSG_DATA_MAX);
        d[..n].copy_from_slice(&data[..n]);
        Cmsg {
            level,
            ty,
            len: data.len(),
            data: d,
        }
    }
    /// `SOL_SOCKET`/`SO_MARK` with a `u32`.
    pub fn mark(m: u32) -> Cmsg {
        Cmsg::raw(SOL_SOCKET, SO_MARK, &m.to_ne_bytes())
    }
    /// `SOL_SOCKET`/`SO_PRIORITY` with a `u32`.
    pub fn priority(p: u32) -> Cmsg {
        Cmsg::raw(SOL_SOCKET, SO_PRIORITY, &p.to_ne_bytes())
    }
    /// `SOL_SOCKET`/`SO_TIMESTAMPING` with the `SOF_TIMESTAMPING_TX_*` bits.
    pub fn timestamping(flags: u32) -> Cmsg {
        Cmsg::raw(SOL_SOCKET, SO_TIMESTAMPING_OLD, &flags.to_ne_bytes())
    }
    /// `SOL_IP`/`IP_TTL` with an `int`.
    pub fn ttl(ttl: i32) -> Cmsg {
        Cmsg::raw(SOL_IP, IP_TTL, &ttl.to_ne_bytes())
    }
    /// `SOL_IP`/`IP_TOS` with an `int` (a single byte is accepted too).
    pub fn tos(tos: i32) -> Cmsg {
        Cmsg::raw(SOL_IP, IP_TOS, &tos.to_ne_bytes())
    }
    /// `SOL_IP`/`IP_PKTINFO` with a `struct in_pktinfo` (`ipi_ifindex`,
    /// `ipi_spec_dst`; `ipi_addr` is ignored on send).
    pub fn pktinfo(ifindex: i32, spec_dst: Ipv4Addr) -> Cmsg {
        let mut d = [0u8; 12];
        d[..4].copy_from_slice(&ifindex.to_ne_bytes());
        d[4..8].copy_from_slice(&spec_dst.octets());
        Cmsg::raw(SOL_IP, IP_PKTINFO, &d)
    }
    /// `SOL_IP`/`IP_OPTIONS` with raw option bytes (empty: this datagram
    /// carries no options even when the socket has some).
    pub fn ip_options(opts: &[u8]) -> Cmsg {
        Cmsg::raw(SOL_IP, IP_OPTIONS, opts)
    }
    /// The data bytes (those kept).
    pub fn data(&self) -> &[u8] {
        &self.data[..self.len.min(CMSG_DATA_MAX)]
    }
    fn u32(&self) -> Result<u32, Errno> {
        match self.data().first_chunk::<4>() {
            Some(b) if self.len == 4 => Ok(u32::from_ne_bytes(*b)),
            _ => Err(Errno::EINVAL),
        }
    }
}

/// The `ifindex` of wirespeed port `port` (`port + 1`; 0 is "none").
pub fn port_ifindex(port: u16) -> i32 {
    i32::from(port) + 1
}

/// Plays the part of `ip_cmsg_send` (net/ipv4/ip_sockglue.c), with
/// `udp_cmsg_send` (net/ipv4/udp.c) before it and `__sock_cmsg_send`
/// (net/core/sock.c) for the `SOL_SOCKET` messages, filling `o` for one
/// datagram. As Linux:
/// - `SOL_UDP`: `UDP_SEGMENT` needs a `u16` (else `EINVAL`); any other
///   type is `EINVAL`. wirespeed has no UDP GSO: a well-formed
///   `UDP_SEGMENT` is `EOPNOTSUPP` rather than silently ignored.
/// - `SOL_SOCKET`: `SO_MARK` and `SO_PRIORITY` need a `u32` (`EINVAL`);
///   the application owns the stack and holds `CAP_NET_ADMIN`, so neither
///   is `EPERM`. wirespeed's packet priority is 8 bits: a priority above
///   255 is `EINVAL` (the bands and traffic classes read the low 4 bits).
///   `SO_TIMESTAMPING` needs a `u32` holding only
///   [`SOF_TIMESTAMPING_TX_RECORD_MASK`] bits (`EINVAL`); it replaces the
///   socket's record bits for this datagram. TX timestamps are not
///   reported yet: any record bit set is `EOPNOTSUPP` (0 is accepted). `SCM_TXTIME` and
///   `SCM_TS_OPT_ID` are `EINVAL` (the socket never enabled `SO_TXTIME` /
///   `SOF_TIMESTAMPING_OPT_ID`); `SCM_RIGHTS` and
///   `SCM_CREDENTIALS` are skipped; any other type is `EINVAL`.
/// - `SOL_IP`: `IP_OPTIONS`/`IP_RETOPTS` compile the first 40 bytes
///   (`ip_options_get`; bad options `EINVAL`); `IP_PKTINFO` needs a
///   `struct in_pktinfo` (12 bytes; `EINVAL`) and sets the output
///   interface and the source (`ipc->oif`, `ipc->addr`: a zero
///   `ipi_spec_dst` lets the route choose the source, even on a bound
///   socket); `IP_TTL` needs an `int` in 1..=255; `IP_TOS` an `int` or one
///   byte in 0..=255; `IP_PROTOCOL` an `int` in 1..=255 (ignored on a UDP
///   socket); any other type is `EINVAL`.
/// - Other levels are skipped.
///
/// `ipi_ifindex` is returned as given ([`SendOpts::oif`] is filled by the
/// caller, which has the ports: an unknown index is `ENODEV` from the
/// route lookup, as `dev_get_by_index_rcu` failing there is).
pub fn ip_cmsg_send(cmsgs: &[Cmsg], o: &mut SendOpts) -> Result<Option<i32>, Errno> {
    // udp_cmsg_send runs first over all messages.
    let mut gso = false;
    for c in cmsgs.iter().filter(|c| c.level == SOL_UDP) {
        match (c.ty, c.len) {
            (UDP_SEGMENT, 2) => gso = true,
            _ => return Err(Errno::EINVAL),
        }
    }
    let mut ifindex = None;
    for c in cmsgs {
        match c.level {
            SOL_SOCKET => sock_cmsg_send(c, o)?,
            SOL_IP => {
                if let Some(i) = ip_cmsg_one(c, o)? {
                    ifindex = Some(i);
                }
            }
            _ => {}
        }
    }
    if gso {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(ifindex)
}

/// Plays `__sock_cmsg_send` for one `SOL_SOCKET` message.
fn sock_cmsg_send(c: &Cmsg, o: &mut SendOpts) -> Result<(), Errno> {
    match c.ty {
        SO_MARK => o.mark = Some(c.u32()?),
        SO_PRIORITY => {
            let p = c.u32()?;
            o.priority = Some(u8::try_from(p).map_err(|_| Errno::EINVAL)?);
        }
        SO_TIMESTAMPING_OLD | SO_TIMESTAMPING_NEW => {
            let f = c.u32()?;
            if f & !SOF_TIMESTAMPING_TX_RECORD_MASK != 0 {
                return Err(Errno::EINVAL);
            }
            if f & !SOF_TIMESTAMPING_TX_SOFTWARE != 0 {
                // Linux accepts these; no driver here reports hardware,
                // scheduler or ACK timestamps, and a caller waiting on its
                // error queue for one that never comes is worse off than
                // told so.
                return Err(Errno::EOPNOTSUPP);
            }
            o.tsflags = Some(f);
        }
        // SCM_TXTIME: the socket never set SO_TXTIME (`sock_flag(sk,
        // SOCK_TXTIME)` is false); SCM_TS_OPT_ID: the socket never set
        // SOF_TIMESTAMPING_OPT_ID. Both are EINVAL before their size is read.
        SCM_TXTIME | SCM_TS_OPT_ID => return Err(Errno::EINVAL),
        SCM_RIGHTS | SCM_CREDENTIALS => {}
        _ => return Err(Errno::EINVAL),
    }
    Ok(())
}

/// One `SOL_IP` message of `ip_cmsg_send`; returns `ipi_ifindex` for
/// `IP_PKTINFO`.
fn ip_cmsg_one(c: &Cmsg, o: &mut SendOpts) -> Result<Option<i32>, Errno> {
    let int = || -> Result<i32, Errno> { c.u32().map(|v| v as i32) };
    match c.ty {
        IP_OPTIONS | IP_RETOPTS => {
            let n = c.len.min(MAX_OPTLEN);
            let opt: Option<IpOptions> = ip_options_compile(&c.data()[..n]).map_err(|e| e.errno)?;
            o.ip_opt = Some(opt);
        }
        IP_PKTINFO => {
            if c.len != 12 {
                return Err(Errno::EINVAL);
            }
            let d = c.data();
            let ifindex = i32::from_ne_bytes([d[0], d[1], d[2], d[3]]);
            o.src = Some(Ipv4Addr::new(d[4], d[5], d[6], d[7]));
            return Ok(Some(ifindex));
        }
        IP_TTL => {
            let v = int()?;
            if !(1..=255).contains(&v) {
                return Err(Errno::EINVAL);
            }
            o.ttl = Some(v as u8);
        }
        IP_TOS => {
            let v = match c.len {
                4 => int()?,
                1 => i32::from(c.data()[0]),
                _ => return Err(Errno::EINVAL),
            };
            if !(0..=255).contains(&v) {
                return Err(Errno::EINVAL);
            }
            o.tos = Some(v as u8);
        }
        IP_PROTOCOL => {
            let v = int()?;
            if !(1..=255).contains(&v) {
                return Err(Errno::EINVAL);
            }
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(None)
}

/// [`SendOpts`] for `cmsgs` and `flags` with `ipi_ifindex` resolved to a
/// port of a stack with `nports` ports: `ENODEV` for an index no port has.
pub fn send_opts(cmsgs: &[Cmsg], flags: MsgFlags, nports: usize) -> Result<SendOpts, Errno> {
    let mut o = SendOpts {
        flags,
        ..Default::default()
    };
    if let Some(i) = ip_cmsg_send(cmsgs, &mut o)? {
        if i != 0 {
            let p = usize::try_from(i - 1)
                .ok()
                .filter(|&p| p < nports)
                .ok_or(Errno::ENODEV)?;
            o.oif = Some(p as u16);
        }
    }
    Ok(o)
}
