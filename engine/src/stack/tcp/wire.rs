//! The TCP header and its options (RFC 9293 §3.1, RFC 7323 timestamps and
//! window scale, RFC 2018 SACK): a parsed view of a received segment
//! (`tcp_parse_options`) and the writer of a segment's options
//! (`tcp_options_write`, with `tcp_syn_options` / `tcp_established_options`
//! choosing which).

use crate::stack::wire::WireError;

/// Fixed TCP header length.
pub const TCP_HLEN: usize = 20;
/// Longest TCP header (data offset 15).
pub const TCP_MAX_HLEN: usize = 60;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;
pub const ECE: u8 = 0x40;
pub const CWR: u8 = 0x80;

// Option kinds (include/net/tcp.h TCPOPT_*).
const OPT_EOL: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;
const OPT_WINDOW: u8 = 3;
const OPT_SACK_PERM: u8 = 4;
const OPT_SACK: u8 = 5;
const OPT_TIMESTAMP: u8 = 8;

/// Largest window shift (RFC 7323 §2.3: 14).
pub const TCP_MAX_WSCALE: u8 = 14;
/// Timestamp option length on the wire with its two NOPs (`TCPOLEN_TSTAMP_ALIGNED`).
pub const TCPOLEN_TSTAMP_ALIGNED: usize = 12;

/// A received segment's header (ports, sequence space, flags, window,
/// options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// Header length in bytes (data offset × 4).
    pub hlen: usize,
    pub flags: u8,
    /// The raw 16-bit window field (unscaled).
    pub window: u16,
    pub checksum: u16,
    pub urg_ptr: u16,
    pub opts: TcpOptions,
}

/// Options seen on a segment (`struct tcp_options_received` as
/// `tcp_parse_options` fills it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_ok: bool,
    /// (TSval, TSecr).
    pub ts: Option<(u32, u32)>,
    /// SACK blocks (start, end), at most 4.
    pub sack: [(u32, u32); 4],
    pub num_sacks: u8,
}

impl TcpHeader {
    /// Parses the header of segment `b` (the whole TCP segment). Plays the
    /// part of the header checks of `tcp_v4_rcv` (`doff` at least 5 and
    /// within the segment) and `tcp_parse_options`.
    pub fn parse(b: &[u8]) -> Result<TcpHeader, WireError> {
        if b.len() < TCP_HLEN {
            return Err(WireError::Truncated {
                what: "tcp",
                need: TCP_HLEN,
                have: b.len(),
            });
        }
        let be16 = |o: usize| u16::from_be_bytes([b[o], b[o + 1]]);
        let be32 = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let hlen = ((b[12] >> 4) as usize) * 4;
        if hlen < TCP_HLEN || hlen > b.len() {
            return Err(WireError::BadField {
                what: "tcp",
                field: "data offset",
                value: hlen as u32,
            });
        }
        let syn = b[13] & SYN != 0;
        Ok(TcpHeader {
            src_port: be16(0),
            dst_port: be16(2),
            seq: be32(4),
            ack: be32(8),
            hlen,
            flags: b[13],
            window: be16(14),
            checksum: be16(16),
            urg_ptr: be16(18),
            opts: parse_options(&b[TCP_HLEN..hlen], syn),
        })
    }

    #[inline]
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// Plays the part of `tcp_parse_options` (net/ipv4/tcp_input.c): walks the
/// option list; MSS, window scale and SACK-permitted count only on a SYN;
/// malformed lengths end the walk (as Linux does, without failing the
/// segment). The window shift is clamped to 14 (RFC 7323 §2.3).
pub fn parse_options(mut o: &[u8], syn: bool) -> TcpOptions {
    let mut r = TcpOptions::default();
    while let Some(&kind) = o.first() {
        match kind {
            OPT_EOL => break,
            OPT_NOP => {
                o = &o[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = o.get(1) else { break };
        let len = len as usize;
        if len < 2 || len > o.len() {
            break;
        }
        let v = &o[2..len];
        match (kind, len) {
            (OPT_MSS, 4) if syn => {
                let m = u16::from_be_bytes([v[0], v[1]]);
                if m != 0 {
                    r.mss = Some(m);
                }
            }
            (OPT_WINDOW, 3) if syn => r.wscale = Some(v[0].min(TCP_MAX_WSCALE)),
            (OPT_SACK_PERM, 2) if syn => r.sack_ok = true,
            (OPT_TIMESTAMP, 10) => {
                r.ts = Some((
                    u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
                    u32::from_be_bytes([v[4], v[5], v[6], v[7]]),
                ))
            }
            (OPT_SACK, l) if l >= 10 && (l - 2) % 8 == 0 && !syn => {
                for blk in v.chunks_exact(8).take(4) {
                    let s = u32::from_be_bytes([blk[0], blk[1], blk[2], blk[3]]);
                    let e = u32::from_be_bytes([blk[4], blk[5], blk[6], blk[7]]);
                    r.sack[r.num_sacks as usize] = (s, e);
                    r.num_sacks += 1;
                }
            }
            _ => {}
        }
        o = &o[len..];
    }
    r
}

/// What options a segment carries (`struct tcp_out_options`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OutOptions {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_ok: bool,
    pub ts: Option<(u32, u32)>,
    /// SACK blocks (at most 3 beside timestamps, 4 without).
    pub sack: [(u32, u32); 4],
    pub num_sacks: u8,
}

impl OutOptions {
    /// Bytes the options take (a multiple of 4).
    pub fn len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.ts.is_some() {
            n += TCPOLEN_TSTAMP_ALIGNED; // SACK_PERM rides in the TS option's NOPs
        } else if self.sack_ok {
            n += 4;
        }
        if self.wscale.is_some() {
            n += 4;
        }
        if self.num_sacks > 0 {
            n += 4 + 8 * self.num_sacks as usize; // TCPOLEN_SACK_BASE_ALIGNED + blocks
        }
        n
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Plays the part of `tcp_options_write` (net/ipv4/tcp_output.c): the
    /// layout Linux uses — MSS; SACK-permitted packed into the timestamp
    /// option's leading NOPs (`kind 4 len 2, kind 8 len 10`) or NOP NOP
    /// SACK-permitted without timestamps; NOP + window scale last.
    /// `b` must be `self.len()` bytes.
    pub fn write(&self, b: &mut [u8]) {
        let mut i = 0;
        if let Some(m) = self.mss {
            b[i..i + 4].copy_from_slice(&[OPT_MSS, 4, (m >> 8) as u8, m as u8]);
            i += 4;
        }
        if let Some((val, ecr)) = self.ts {
            if self.sack_ok {
                b[i..i + 4].copy_from_slice(&[OPT_SACK_PERM, 2, OPT_TIMESTAMP, 10]);
            } else {
                b[i..i + 4].copy_from_slice(&[OPT_NOP, OPT_NOP, OPT_TIMESTAMP, 10]);
            }
            b[i + 4..i + 8].copy_from_slice(&val.to_be_bytes());
            b[i + 8..i + 12].copy_from_slice(&ecr.to_be_bytes());
            i += 12;
        } else if self.sack_ok {
            b[i..i + 4].copy_from_slice(&[OPT_NOP, OPT_NOP, OPT_SACK_PERM, 2]);
            i += 4;
        }
        if let Some(w) = self.wscale {
            b[i..i + 4].copy_from_slice(&[OPT_NOP, OPT_WINDOW, 3, w]);
            i += 4;
        }
        if self.num_sacks > 0 {
            let n = self.num_sacks as usize;
            b[i..i + 4].copy_from_slice(&[OPT_NOP, OPT_NOP, OPT_SACK, (2 + 8 * n) as u8]);
            i += 4;
            for &(s, e) in &self.sack[..n] {
                b[i..i + 4].copy_from_slice(&s.to_be_bytes());
                b[i + 4..i + 8].copy_from_slice(&e.to_be_bytes());
                i += 8;
            }
        }
    }
}

/// Writes the fixed 20-byte header (checksum field zero).
#[allow(clippy::too_many_arguments)]
pub fn write_header(
    b: &mut [u8],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    hlen: usize,
    flags: u8,
    window: u16,
) {
    b[0..2].copy_from_slice(&sport.to_be_bytes());
    b[2..4].copy_from_slice(&dport.to_be_bytes());
    b[4..8].copy_from_slice(&seq.to_be_bytes());
    b[8..12].copy_from_slice(&ack.to_be_bytes());
    b[12] = ((hlen / 4) as u8) << 4;
    b[13] = flags;
    b[14..16].copy_from_slice(&window.to_be_bytes());
    b[16..18].copy_from_slice(&[0, 0]);
    b[18..20].copy_from_slice(&[0, 0]);
}

/// Sequence-space comparisons (`before`/`after` in include/net/tcp.h).
#[inline(always)]
pub fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
#[inline(always)]
pub fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_options_have_linux_layout_and_parse_back() {
        let o = OutOptions {
            mss: Some(1460),
            wscale: Some(7),
            sack_ok: true,
            ts: Some((0x01020304, 0)),
            ..Default::default()
        };
        assert_eq!(o.len(), 20);
        let mut b = [0u8; 20];
        o.write(&mut b);
        assert_eq!(
            b,
            [2, 4, 5, 180, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7]
        );
        let p = parse_options(&b, true);
        assert_eq!(p.mss, Some(1460));
        assert_eq!(p.wscale, Some(7));
        assert!(p.sack_ok);
        assert_eq!(p.ts, Some((0x01020304, 0)));
        // MSS and wscale are ignored off a SYN.
        let q = parse_options(&b, false);
        assert_eq!((q.mss, q.wscale, q.sack_ok), (None, None, false));
    }

    #[test]
    fn sack_blocks_and_malformed_options() {
        let b = [
            1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0, 40,
        ];
        let p = parse_options(&b, false);
        assert_eq!(p.num_sacks, 2);
        assert_eq!(p.sack[0], (10, 20));
        assert_eq!(p.sack[1], (30, 40));
        // A length running past the end stops the walk without panicking.
        let p = parse_options(&[8, 40, 0, 0], false);
        assert_eq!(p.ts, None);
        let p = parse_options(&[3, 3, 200], true);
        assert_eq!(p.wscale, Some(14), "window shift clamped to 14");
    }

    #[test]
    fn sack_blocks_written_after_timestamps() {
        let mut o = OutOptions {
            ts: Some((5, 6)),
            ..Default::default()
        };
        o.sack[0] = (100, 200);
        o.sack[1] = (300, 400);
        o.num_sacks = 2;
        assert_eq!(o.len(), 12 + 4 + 16);
        let mut b = vec![0u8; o.len()];
        o.write(&mut b);
        assert_eq!(&b[12..16], &[1, 1, 5, 18]);
        let p = parse_options(&b, false);
        assert_eq!(p.ts, Some((5, 6)));
        assert_eq!(&p.sack[..2], &[(100, 200), (300, 400)]);
    }

    #[test]
    fn sequence_comparisons_wrap() {
        assert!(before(0xffff_fff0, 0x10));
        assert!(after(0x10, 0xffff_fff0));
        assert!(!before(5, 5));
    }

    #[test]
    fn header_rejects_bad_offset() {
        let mut b = [0u8; 20];
        write_header(&mut b, 1, 2, 3, 4, 20, SYN, 100);
        assert!(TcpHeader::parse(&b).is_ok());
        b[12] = 4 << 4;
        assert!(TcpHeader::parse(&b).is_err());
        b[12] = 6 << 4;
        assert!(TcpHeader::parse(&b).is_err());
    }
}
