//! IPv4 options on transmit (RFC 791): a socket's `IP_OPTIONS` checked
//! once when set (Linux's `ip_options_get` → `ip_options_compile` with no
//! packet), written into every datagram's header (`ip_options_build`), and
//! reduced to the copied options for fragments after the first
//! (`ip_options_fragment`).

use std::fmt;
use std::net::Ipv4Addr;

use super::Errno;

/// End of option list.
pub const IPOPT_END: u8 = 0;
/// No operation (padding between options).
pub const IPOPT_NOOP: u8 = 1;
/// Record route.
pub const IPOPT_RR: u8 = 7;
/// Internet timestamp.
pub const IPOPT_TS: u8 = 68;
/// Loose source and record route.
pub const IPOPT_LSRR: u8 = 131;
/// Strict source and record route.
pub const IPOPT_SSRR: u8 = 137;
/// Router alert (RFC 2113).
pub const IPOPT_RA: u8 = 148;
/// The copied flag of an option type: the option goes into every fragment.
pub const IPOPT_COPY: u8 = 0x80;
/// Most option bytes an IPv4 header holds.
pub const MAX_OPTLEN: usize = 40;

/// Timestamp flags (the low nibble of the option's fourth byte).
const TS_TSONLY: u8 = 0;
const TS_TSANDADDR: u8 = 1;
const TS_PRESPEC: u8 = 3;

/// Why a set of options was refused: always `EINVAL` as Linux reports it,
/// with the problem and the offset of the offending byte in the options
/// (Linux's `pp_ptr`, counted from the first option byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpOptError {
    /// `EINVAL` for bad options; the socket lookup's error otherwise.
    pub errno: Errno,
    /// Byte offset in the given options.
    pub offset: usize,
    /// What is wrong and what would be right.
    pub what: &'static str,
}

impl fmt::Display for IpOptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}: IP_OPTIONS byte {}: {}",
            self.errno, self.offset, self.what
        )
    }
}

impl std::error::Error for IpOptError {}

impl From<IpOptError> for Errno {
    fn from(e: IpOptError) -> Errno {
        e.errno
    }
}

impl From<Errno> for IpOptError {
    /// A socket-level failure (no such socket) before any option was read.
    fn from(errno: Errno) -> IpOptError {
        IpOptError {
            errno,
            offset: 0,
            what: "the socket call failed before the options were read",
        }
    }
}

/// Compiled options (Linux's `struct ip_options` for a socket): the bytes
/// as they go on the wire (padded with End-of-Options to a multiple of 4;
/// for a source route the first hop already taken out) and where the
/// output path fills them in. Offsets count from the first option byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpOptions {
    pub data: [u8; MAX_OPTLEN],
    /// Bytes used (a multiple of 4, at most 40).
    pub len: u8,
    /// Offset of the LSRR/SSRR option, if any.
    pub srr: Option<u8>,
    /// SSRR (the first hop must be on-link).
    pub strict: bool,
    /// The source route's first hop (the datagram's IP destination).
    pub faddr: Ipv4Addr,
    /// Offset of the record route option and whether we add our address.
    pub rr: Option<u8>,
    pub rr_needaddr: bool,
    /// Offset of the timestamp option and what we add to it.
    pub ts: Option<u8>,
    pub ts_needaddr: bool,
    pub ts_needtime: bool,
}

impl IpOptions {
    /// The wire bytes (a multiple of 4).
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

/// Plays `ip_options_get` + `ip_options_compile` for a socket's options
/// (no packet: the output case). Pads to a multiple of 4 with End; checks
/// each option's length; RR and LSRR/SSRR pointers must be at least 4, the
/// timestamp pointer at least 5, a slot the pointer names must fit; a
/// source route must start with its pointer at 4 and hold whole addresses
/// (at least one), and only one source route may be given. Record route
/// and timestamp slots the pointer names are claimed for our address /
/// time (the pointer advances now, the value is written per datagram).
/// Options Linux lets only `CAP_NET_RAW` set (security, stream ID, CIPSO,
/// unknown types, unknown timestamp flags) are refused, as for an
/// unprivileged caller. Empty `raw` is Ok(None): no options.
pub fn ip_options_compile(raw: &[u8]) -> Result<Option<IpOptions>, IpOptError> {
    let bad = |offset: usize, what: &'static str| IpOptError {
        errno: Errno::EINVAL,
        offset,
        what,
    };
    if raw.len() > MAX_OPTLEN {
        return Err(bad(
            MAX_OPTLEN,
            "more than 40 bytes of options (an IPv4 header holds 40 at most)",
        ));
    }
    if raw.is_empty() {
        return Ok(None);
    }
    let mut o = IpOptions {
        data: [IPOPT_END; MAX_OPTLEN],
        len: raw.len().div_ceil(4) as u8 * 4,
        srr: None,
        strict: false,
        faddr: Ipv4Addr::UNSPECIFIED,
        rr: None,
        rr_needaddr: false,
        ts: None,
        ts_needaddr: false,
        ts_needtime: false,
    };
    o.data[..raw.len()].copy_from_slice(raw);
    let total = o.len as usize;
    let d = &mut o.data;
    let mut at = 0usize;
    while at < total {
        let l = total - at;
        match d[at] {
            IPOPT_END => {
                // Everything after End is End.
                d[at..total].fill(IPOPT_END);
                break;
            }
            IPOPT_NOOP => {
                at += 1;
                continue;
            }
            _ => {}
        }
        if l < 2 {
            return Err(bad(at, "option type without a length byte"));
        }
        let optlen = d[at + 1] as usize;
        if optlen < 2 || optlen > l {
            return Err(bad(
                at,
                "option length below 2 or past the end of the options",
            ));
        }
        match d[at] {
            t @ (IPOPT_LSRR | IPOPT_SSRR) => {
                if optlen < 3 {
                    return Err(bad(at + 1, "source route shorter than 3 bytes"));
                }
                if d[at + 2] < 4 {
                    return Err(bad(at + 2, "source route pointer below 4"));
                }
                if o.srr.is_some() {
                    return Err(bad(at, "a second source route option"));
                }
                if d[at + 2] != 4 || optlen < 7 || (optlen - 3) & 3 != 0 {
                    return Err(bad(
                        at + 1,
                        "source route needs pointer 4 and whole addresses (length 3 + 4n, n >= 1)",
                    ));
                }
                // The first address is the first hop: it leaves the list
                // (the rest moves up; the freed last slot takes the final
                // destination at build time).
                o.faddr = Ipv4Addr::new(d[at + 3], d[at + 4], d[at + 5], d[at + 6]);
                d.copy_within(at + 7..at + optlen, at + 3);
                o.strict = t == IPOPT_SSRR;
                o.srr = Some(at as u8);
            }
            IPOPT_RR => {
                if optlen < 3 {
                    return Err(bad(at + 1, "record route shorter than 3 bytes"));
                }
                let ptr = d[at + 2] as usize;
                if ptr < 4 {
                    return Err(bad(at + 2, "record route pointer below 4"));
                }
                if ptr <= optlen {
                    if ptr + 3 > optlen {
                        return Err(bad(at + 2, "record route pointer names a partial slot"));
                    }
                    d[at + 2] += 4;
                    o.rr_needaddr = true;
                }
                o.rr = Some(at as u8);
            }
            IPOPT_TS => {
                if optlen < 4 {
                    return Err(bad(at + 1, "timestamp shorter than 4 bytes"));
                }
                let ptr = d[at + 2] as usize;
                if ptr < 5 {
                    return Err(bad(at + 2, "timestamp pointer below 5"));
                }
                let flag = d[at + 3] & 0xf;
                if ptr <= optlen {
                    if ptr + 3 > optlen {
                        return Err(bad(at + 2, "timestamp pointer names a partial slot"));
                    }
                    match flag {
                        TS_TSONLY => {
                            o.ts_needtime = true;
                            d[at + 2] += 4;
                        }
                        TS_TSANDADDR | TS_PRESPEC => {
                            if ptr + 7 > optlen {
                                return Err(bad(
                                    at + 2,
                                    "timestamp pointer names a partial address+time slot",
                                ));
                            }
                            // Prespecified: the address given is meant to be
                            // ours (on output Linux cannot tell; it fills the
                            // time only), so only the time is added.
                            o.ts_needaddr = flag == TS_TSANDADDR;
                            o.ts_needtime = true;
                            d[at + 2] += 8;
                        }
                        _ => {
                            return Err(bad(
                                at + 3,
                                "timestamp flag other than 0, 1 or 3 (Linux needs CAP_NET_RAW)",
                            ))
                        }
                    }
                } else if flag != TS_PRESPEC && d[at + 3] >> 4 == 15 {
                    return Err(bad(at + 3, "timestamp overflow count already 15"));
                }
                o.ts = Some(at as u8);
            }
            IPOPT_RA => {
                if optlen < 4 {
                    return Err(bad(at + 1, "router alert shorter than 4 bytes"));
                }
            }
            _ => {
                return Err(bad(
                    at,
                    "option type not settable without CAP_NET_RAW (use RR, TS, LSRR, SSRR, RA, NOP, EOL)",
                ))
            }
        }
        at += optlen;
    }
    Ok(Some(o))
}

/// Milliseconds since midnight UTC, big-endian bytes (`inet_current_timestamp`).
pub fn current_timestamp() -> [u8; 4] {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ms = (since.as_secs() % 86_400) * 1000 + since.subsec_millis() as u64;
    (ms as u32).to_be_bytes()
}

/// Plays `ip_options_build`: writes `o` into `hdr` (the option area of the
/// header, `o.len` bytes) for a datagram to the final destination `daddr`
/// from our address `saddr`: the final destination into a source route's
/// last slot, our address into record route's slot, our address and/or the
/// time into the timestamp's slot, where compile moved the pointers past.
pub fn ip_options_build(hdr: &mut [u8], o: &IpOptions, daddr: Ipv4Addr, saddr: Ipv4Addr) {
    hdr[..o.len as usize].copy_from_slice(o.bytes());
    if let Some(s) = o.srr {
        let s = s as usize;
        let end = s + hdr[s + 1] as usize;
        hdr[end - 4..end].copy_from_slice(&daddr.octets());
    }
    if let (Some(r), true) = (o.rr, o.rr_needaddr) {
        let r = r as usize;
        let at = r + hdr[r + 2] as usize - 5;
        hdr[at..at + 4].copy_from_slice(&saddr.octets());
    }
    if let Some(t) = o.ts {
        let t = t as usize;
        let ptr = hdr[t + 2] as usize;
        if o.ts_needaddr {
            hdr[t + ptr - 9..t + ptr - 5].copy_from_slice(&saddr.octets());
        }
        if o.ts_needtime {
            hdr[t + ptr - 5..t + ptr - 1].copy_from_slice(&current_timestamp());
        }
    }
}

/// Plays `ip_options_fragment`: for the fragments after the first, every
/// option without the copied flag becomes No-Operation bytes (the header
/// keeps its length, as in Linux).
pub fn ip_options_fragment(opts: &mut [u8]) {
    let mut at = 0usize;
    while at < opts.len() {
        match opts[at] {
            IPOPT_END => return,
            IPOPT_NOOP => {
                at += 1;
                continue;
            }
            _ => {}
        }
        let l = opts.len() - at;
        if l < 2 {
            return;
        }
        let optlen = opts[at + 1] as usize;
        if optlen < 2 || optlen > l {
            return;
        }
        if opts[at] & IPOPT_COPY == 0 {
            opts[at..at + optlen].fill(IPOPT_NOOP);
        }
        at += optlen;
    }
}
