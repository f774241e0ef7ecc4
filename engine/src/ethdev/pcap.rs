//! pcap files (the classic libpcap format, nanosecond variant for writing) and
//! the `pcap:PATH[?rx=IN.pcap]` port: TX appends every frame to PATH with a
//! nanosecond timestamp; RX replays the frames of IN.pcap once.
//!
//! Frames are stored without the 4-byte FCS (as a NIC hands them to a capture):
//! a 64-byte frame on the wire is a 60-byte record.

use super::*;
use crate::eal::tsc::{wall_ns, Tsc};
use crate::mbuf::{Burst, Mempool};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Magic of a nanosecond-resolution pcap (written by us).
pub const MAGIC_NS: u32 = 0xa1b2_3c4d;
/// Magic of a microsecond-resolution pcap.
pub const MAGIC_US: u32 = 0xa1b2_c3d4;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// pcap read errors: each names the record and byte offset.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a pcap or pcapng file (magic {magic:#010x})")]
    BadMagic { path: String, magic: u32 },
    #[error("{path}: pcapng block {block} at byte {offset}: {why}")]
    Pcapng {
        path: String,
        block: usize,
        offset: usize,
        why: String,
    },
    #[error("{path}: file header is truncated ({len} bytes, need 24)")]
    ShortHeader { path: String, len: usize },
    #[error("{path}: link type {linktype} is not Ethernet (1)")]
    LinkType { path: String, linktype: u32 },
    #[error("{path}: record {record} at byte {offset} is truncated: {why}")]
    Truncated {
        path: String,
        record: usize,
        offset: usize,
        why: String,
    },
    #[error("{path}: record {record} at byte {offset}: captured length {len} is larger than the snap length {snaplen} or 262144")]
    BadLength {
        path: String,
        record: usize,
        offset: usize,
        len: u32,
        snaplen: u32,
    },
}

/// One frame read from a pcap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapRecord {
    /// Nanoseconds since the epoch.
    pub ts_ns: u64,
    pub data: Vec<u8>,
    /// Length on the wire (may exceed `data.len()` when truncated by snaplen).
    pub orig_len: u32,
}

/// Reads every record of a pcap file (either resolution, either byte order).
pub fn read_file(path: &Path) -> Result<Vec<PcapRecord>, PcapError> {
    let p = path.display().to_string();
    let mut buf = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|e| PcapError::Io {
            path: p.clone(),
            source: e,
        })?;
    parse(&p, &buf)
}

/// Parses a pcap or pcapng image held in memory.
pub fn parse(path: &str, buf: &[u8]) -> Result<Vec<PcapRecord>, PcapError> {
    if buf.len() >= 4 && buf[0..4] == ng::SHB.to_le_bytes() {
        return parse_pcapng(path, buf);
    }
    if buf.len() < 24 {
        return Err(PcapError::ShortHeader {
            path: path.into(),
            len: buf.len(),
        });
    }
    let m_le = u32::from_le_bytes(buf[0..4].try_into().unwrap());
    let m_be = u32::from_be_bytes(buf[0..4].try_into().unwrap());
    let (le, ns) = match (m_le, m_be) {
        (MAGIC_US, _) => (true, false),
        (MAGIC_NS, _) => (true, true),
        (_, MAGIC_US) => (false, false),
        (_, MAGIC_NS) => (false, true),
        _ => {
            return Err(PcapError::BadMagic {
                path: path.into(),
                magic: m_le,
            })
        }
    };
    let rd = |b: &[u8]| -> u32 {
        let a: [u8; 4] = b.try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let snaplen = rd(&buf[16..20]);
    let linktype = rd(&buf[20..24]) & 0x0fff_ffff;
    if linktype != LINKTYPE_ETHERNET {
        return Err(PcapError::LinkType {
            path: path.into(),
            linktype,
        });
    }
    let mut out = Vec::new();
    let mut off = 24;
    while off < buf.len() {
        let record = out.len();
        if buf.len() - off < 16 {
            return Err(PcapError::Truncated {
                path: path.into(),
                record,
                offset: off,
                why: format!("record header needs 16 bytes, {} left", buf.len() - off),
            });
        }
        let sec = rd(&buf[off..off + 4]) as u64;
        let frac = rd(&buf[off + 4..off + 8]) as u64;
        let incl = rd(&buf[off + 8..off + 12]);
        let orig = rd(&buf[off + 12..off + 16]);
        if incl > 262_144 || (snaplen > 0 && incl > snaplen.max(65535)) {
            return Err(PcapError::BadLength {
                path: path.into(),
                record,
                offset: off,
                len: incl,
                snaplen,
            });
        }
        let start = off + 16;
        let end = start + incl as usize;
        if end > buf.len() {
            return Err(PcapError::Truncated {
                path: path.into(),
                record,
                offset: off,
                why: format!(
                    "{} bytes of frame data announced, {} present",
                    incl,
                    buf.len() - start
                ),
            });
        }
        let ts_ns = sec * 1_000_000_000 + if ns { frac } else { frac * 1000 };
        out.push(PcapRecord {
            ts_ns,
            data: buf[start..end].to_vec(),
            orig_len: orig,
        });
        off = end;
    }
    Ok(out)
}

/// One pcapng interface (IDB): its snap length and timestamp unit in ns.
#[derive(Clone, Copy)]
struct Iface {
    snaplen: u32,
    /// Nanoseconds per tick times 2^-shift: `ns = ticks * mul / div`.
    mul: u64,
    div: u64,
}

/// Parses a pcapng image (pcapng draft, IETF OPSAWG): sections of either
/// byte order, Ethernet interfaces with their `if_tsresol`, Enhanced and
/// Simple Packet Blocks; other blocks (statistics, name resolution,
/// custom) are skipped. Every length is checked against the buffer.
fn parse_pcapng(path: &str, buf: &[u8]) -> Result<Vec<PcapRecord>, PcapError> {
    let mut out = Vec::new();
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut le = true;
    let mut off = 0usize;
    let mut block = 0usize;
    while off < buf.len() {
        let err = |why: String| PcapError::Pcapng {
            path: path.into(),
            block,
            offset: off,
            why,
        };
        if buf.len() - off < 12 {
            return Err(err(format!(
                "block header needs 12 bytes, {} left",
                buf.len() - off
            )));
        }
        let raw_type = &buf[off..off + 4];
        if raw_type == ng::SHB.to_le_bytes() {
            // The byte-order magic decides how this section reads.
            let bom = &buf[off + 8..off + 12];
            le = if bom == ng::BYTE_ORDER_MAGIC.to_le_bytes() {
                true
            } else if bom == ng::BYTE_ORDER_MAGIC.to_be_bytes() {
                false
            } else {
                return Err(err(
                    "section header has no byte-order magic 0x1a2b3c4d".into()
                ));
            };
            ifaces.clear();
        }
        let rd32 = |o: usize| -> u32 {
            let a: [u8; 4] = buf[o..o + 4].try_into().unwrap_or([0; 4]);
            if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        };
        let rd16 = |o: usize| -> u16 {
            let a: [u8; 2] = buf[o..o + 2].try_into().unwrap_or([0; 2]);
            if le {
                u16::from_le_bytes(a)
            } else {
                u16::from_be_bytes(a)
            }
        };
        let btype = rd32(off);
        let blen = rd32(off + 4) as usize;
        if blen < 12 || !blen.is_multiple_of(4) || blen > buf.len() - off {
            return Err(err(format!(
                "block length {blen} is not a multiple of 4 of at least 12 within the {} bytes left",
                buf.len() - off
            )));
        }
        if rd32(off + blen - 4) as usize != blen {
            return Err(err(
                "trailing block length differs from the leading one".into()
            ));
        }
        let body = off + 8..off + blen - 4;
        match btype {
            ng::IDB => {
                if body.len() < 8 {
                    return Err(err("interface description shorter than 8 bytes".into()));
                }
                let link = rd16(body.start) as u32;
                if link != LINKTYPE_ETHERNET {
                    return Err(PcapError::LinkType {
                        path: path.into(),
                        linktype: link,
                    });
                }
                let snaplen = rd32(body.start + 4);
                // Default unit: microseconds (§4.2, if_tsresol absent).
                let mut iface = Iface {
                    snaplen,
                    mul: 1000,
                    div: 1,
                };
                let mut o = body.start + 8;
                while o + 4 <= body.end {
                    let (code, olen) = (rd16(o), rd16(o + 2) as usize);
                    if code == 0 {
                        break;
                    }
                    if o + 4 + olen > body.end {
                        return Err(err(format!("option {code} runs past its block")));
                    }
                    if code == ng::IF_TSRESOL && olen >= 1 {
                        let r = buf[o + 4];
                        let exp = u32::from(r & 0x7f);
                        (iface.mul, iface.div) = if r & 0x80 == 0 {
                            // 10^-exp s per tick.
                            match exp {
                                0..=9 => (10u64.pow(9 - exp), 1),
                                10..=19 => (1, 10u64.pow(exp - 9)),
                                _ => {
                                    return Err(err(format!(
                                        "if_tsresol 10^-{exp} is finer than this reader keeps"
                                    )))
                                }
                            }
                        } else {
                            // 2^-exp s per tick.
                            match exp {
                                0..=63 => (1_000_000_000, 1u64 << exp),
                                _ => {
                                    return Err(err(format!("if_tsresol 2^-{exp} is out of range")))
                                }
                            }
                        };
                    }
                    o += 4 + olen.div_ceil(4) * 4;
                }
                ifaces.push(iface);
            }
            ng::EPB => {
                if body.len() < 20 {
                    return Err(err("enhanced packet block shorter than 20 bytes".into()));
                }
                let id = rd32(body.start) as usize;
                let iface = *ifaces.get(id).ok_or_else(|| {
                    err(format!(
                        "packet of interface {id}, which no interface block described"
                    ))
                })?;
                let ticks =
                    (u64::from(rd32(body.start + 4)) << 32) | u64::from(rd32(body.start + 8));
                let cap = rd32(body.start + 12);
                let orig = rd32(body.start + 16);
                let data = body.start + 20;
                if cap > 262_144 || (iface.snaplen > 0 && cap > iface.snaplen.max(65535)) {
                    return Err(PcapError::BadLength {
                        path: path.into(),
                        record: out.len(),
                        offset: off,
                        len: cap,
                        snaplen: iface.snaplen,
                    });
                }
                if cap as usize > body.end - data {
                    return Err(err(format!(
                        "{cap} bytes of frame data announced, {} present",
                        body.end - data
                    )));
                }
                let ts_ns = (u128::from(ticks) * u128::from(iface.mul) / u128::from(iface.div))
                    .min(u128::from(u64::MAX)) as u64;
                out.push(PcapRecord {
                    ts_ns,
                    data: buf[data..data + cap as usize].to_vec(),
                    orig_len: orig,
                });
            }
            ng::SPB => {
                // No timestamp and no interface id: interface 0, time 0.
                if body.len() < 4 {
                    return Err(err("simple packet block shorter than 4 bytes".into()));
                }
                let iface = *ifaces
                    .first()
                    .ok_or_else(|| err("simple packet before any interface block".into()))?;
                let orig = rd32(body.start);
                let cap = (orig.min(if iface.snaplen == 0 {
                    u32::MAX
                } else {
                    iface.snaplen
                }) as usize)
                    .min(body.end - body.start - 4);
                out.push(PcapRecord {
                    ts_ns: 0,
                    data: buf[body.start + 4..body.start + 4 + cap].to_vec(),
                    orig_len: orig,
                });
            }
            _ => {}
        }
        off += blen;
        block += 1;
    }
    Ok(out)
}

/// The capture file format a writer produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap, nanosecond variant (magic `0xa1b23c4d`).
    Pcap,
    /// pcapng (the IETF OPSAWG pcapng draft): one section, one Ethernet
    /// interface with nanosecond timestamps (`if_tsresol` = 9), one
    /// Enhanced Packet Block per frame carrying its direction (`epb_flags`).
    Pcapng,
}

impl CaptureFormat {
    /// By file name: `*.pcapng` is pcapng, anything else classic pcap.
    pub fn for_path(path: &Path) -> CaptureFormat {
        match path.extension() {
            Some(e) if e.eq_ignore_ascii_case("pcapng") => CaptureFormat::Pcapng,
            _ => CaptureFormat::Pcap,
        }
    }
}

/// Which way a captured frame went (pcapng `epb_flags` bits 0–1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Unknown = 0,
    Inbound = 1,
    Outbound = 2,
}

/// pcapng block types and option codes (pcapng draft, sections 4 and 3.5).
mod ng {
    pub const SHB: u32 = 0x0A0D_0D0A;
    pub const IDB: u32 = 0x0000_0001;
    pub const EPB: u32 = 0x0000_0006;
    /// Simple Packet Block (§4.4): no timestamp, interface 0.
    pub const SPB: u32 = 0x0000_0003;
    /// The SHB's type reads the same in either byte order; this magic
    /// inside it says which the section uses.
    pub const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
    pub const OPT_ENDOFOPT: u16 = 0;
    pub const IF_TSRESOL: u16 = 9;
    pub const EPB_FLAGS: u16 = 2;
}

/// A nanosecond capture writer: classic pcap or pcapng.
pub struct PcapWriter<W: Write> {
    w: W,
    format: CaptureFormat,
    pub records: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes a classic pcap file header.
    pub fn new(w: W) -> std::io::Result<PcapWriter<W>> {
        Self::with_format(w, CaptureFormat::Pcap)
    }

    /// Writes the header of `format`: the pcap file header, or pcapng's
    /// Section Header Block and Interface Description Block.
    pub fn with_format(mut w: W, format: CaptureFormat) -> std::io::Result<PcapWriter<W>> {
        match format {
            CaptureFormat::Pcap => {
                let mut h = [0u8; 24];
                h[0..4].copy_from_slice(&MAGIC_NS.to_le_bytes());
                h[4..6].copy_from_slice(&2u16.to_le_bytes());
                h[6..8].copy_from_slice(&4u16.to_le_bytes());
                h[16..20].copy_from_slice(&262_144u32.to_le_bytes());
                h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
                w.write_all(&h)?;
            }
            CaptureFormat::Pcapng => {
                // SHB: type, length, byte-order magic, version 1.0, section
                // length -1 (not given), no options, length again.
                let mut shb = Vec::with_capacity(28);
                shb.extend_from_slice(&ng::SHB.to_le_bytes());
                shb.extend_from_slice(&28u32.to_le_bytes());
                shb.extend_from_slice(&ng::BYTE_ORDER_MAGIC.to_le_bytes());
                shb.extend_from_slice(&1u16.to_le_bytes());
                shb.extend_from_slice(&0u16.to_le_bytes());
                shb.extend_from_slice(&(-1i64).to_le_bytes());
                shb.extend_from_slice(&28u32.to_le_bytes());
                // IDB: LINKTYPE_ETHERNET, snaplen 262144, if_tsresol = 9
                // (10^-9 s), end of options.
                let mut idb = Vec::with_capacity(32);
                idb.extend_from_slice(&ng::IDB.to_le_bytes());
                idb.extend_from_slice(&32u32.to_le_bytes());
                idb.extend_from_slice(&(LINKTYPE_ETHERNET as u16).to_le_bytes());
                idb.extend_from_slice(&0u16.to_le_bytes());
                idb.extend_from_slice(&262_144u32.to_le_bytes());
                idb.extend_from_slice(&ng::IF_TSRESOL.to_le_bytes());
                idb.extend_from_slice(&1u16.to_le_bytes());
                idb.extend_from_slice(&[9, 0, 0, 0]);
                idb.extend_from_slice(&ng::OPT_ENDOFOPT.to_le_bytes());
                idb.extend_from_slice(&0u16.to_le_bytes());
                idb.extend_from_slice(&32u32.to_le_bytes());
                w.write_all(&shb)?;
                w.write_all(&idb)?;
            }
        }
        Ok(PcapWriter {
            w,
            format,
            records: 0,
        })
    }

    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Appends one frame given as segments.
    pub fn write_segments<'a>(
        &mut self,
        ts_ns: u64,
        segs: impl Iterator<Item = &'a [u8]> + Clone,
    ) -> std::io::Result<()> {
        self.write_segments_dir(ts_ns, segs, Direction::Unknown)
    }

    /// Appends one frame given as segments, with its direction (kept in
    /// pcapng, which has a field for it; classic pcap has none).
    pub fn write_segments_dir<'a>(
        &mut self,
        ts_ns: u64,
        segs: impl Iterator<Item = &'a [u8]> + Clone,
        dir: Direction,
    ) -> std::io::Result<()> {
        let len: usize = segs.clone().map(|s| s.len()).sum();
        match self.format {
            CaptureFormat::Pcap => {
                let mut h = [0u8; 16];
                h[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
                h[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
                h[8..12].copy_from_slice(&(len as u32).to_le_bytes());
                h[12..16].copy_from_slice(&(len as u32).to_le_bytes());
                self.w.write_all(&h)?;
                for s in segs {
                    self.w.write_all(s)?;
                }
            }
            CaptureFormat::Pcapng => {
                // EPB: type, length, interface 0, timestamp (high, low) in
                // if_tsresol units, captured and original length, data
                // padded to 32 bits, epb_flags, end of options, length.
                let pad = len.next_multiple_of(4) - len;
                let opts = if dir == Direction::Unknown { 0 } else { 12 };
                let total = (32 + len + pad + opts) as u32;
                let mut h = [0u8; 28];
                h[0..4].copy_from_slice(&ng::EPB.to_le_bytes());
                h[4..8].copy_from_slice(&total.to_le_bytes());
                h[12..16].copy_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
                h[16..20].copy_from_slice(&(ts_ns as u32).to_le_bytes());
                h[20..24].copy_from_slice(&(len as u32).to_le_bytes());
                h[24..28].copy_from_slice(&(len as u32).to_le_bytes());
                self.w.write_all(&h)?;
                for s in segs {
                    self.w.write_all(s)?;
                }
                self.w.write_all(&[0u8; 3][..pad])?;
                if opts != 0 {
                    let mut o = [0u8; 12];
                    o[0..2].copy_from_slice(&ng::EPB_FLAGS.to_le_bytes());
                    o[2..4].copy_from_slice(&4u16.to_le_bytes());
                    o[4..8].copy_from_slice(&(dir as u32).to_le_bytes());
                    // o[8..12]: opt_endofopt (code 0, length 0).
                    self.w.write_all(&o)?;
                }
                self.w.write_all(&total.to_le_bytes())?;
            }
        }
        self.records += 1;
        Ok(())
    }

    /// Appends one frame.
    pub fn write(&mut self, ts_ns: u64, data: &[u8]) -> std::io::Result<()> {
        self.write_segments(ts_ns, std::iter::once(data))
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

pub(crate) fn driver() -> DriverInfo {
    DriverInfo {
        name: "pcap",
        syntax: "pcap:PATH[?rx=IN.pcap]",
        help: "writes every transmitted frame to PATH (nanosecond pcap); with rx=, replays IN.pcap as received traffic",
        open: |spec| {
            spec.check_params(&["rx"])?;
            let path = spec.require_arg("pcap:PATH[?rx=IN.pcap]")?;
            let rx = match spec.param("rx") {
                Some(p) => read_file(Path::new(p)).map_err(|e| EthdevError::Device {
                    port: spec.raw.clone(),
                    why: e.to_string(),
                })?,
                None => Vec::new(),
            };
            Ok(Box::new(PcapPort::create(&spec.raw, Path::new(path), rx)?))
        },
    }
}

/// A capture file shared by the queues that write it (a port's, a tap's).
pub(crate) type SharedWriter = Arc<Mutex<PcapWriter<BufWriter<File>>>>;

/// Flushes a shared capture file (when a queue or port holding it goes).
pub(crate) fn flush_shared(w: &SharedWriter) {
    let _ = w.lock().unwrap_or_else(|e| e.into_inner()).flush();
}

/// What the pcap driver does differently: one capture file shared by its
/// TX queues, frames to replay on RX, a flush at stop.
pub struct PcapDriver {
    path: String,
    writer: SharedWriter,
    rx_frames: Arc<Mutex<std::collections::VecDeque<PcapRecord>>>,
}

/// The pcap port: [`PcapDriver`] in the ethdev framework.
pub type PcapPort = EthDev<PcapDriver>;

impl EthDev<PcapDriver> {
    /// Creates (truncates) `path` — a symlink there is refused — and writes
    /// the pcap header.
    pub fn create(name: &str, path: &Path, rx: Vec<PcapRecord>) -> Result<PcapPort, EthdevError> {
        let io = |e| EthdevError::Io {
            port: name.to_string(),
            path: path.display().to_string(),
            source: e,
        };
        let f = crate::eal::file::create_nofollow(path).map_err(io)?;
        let w = PcapWriter::new(BufWriter::with_capacity(1 << 20, f)).map_err(io)?;
        Ok(EthDev::with_driver(
            name,
            PcapDriver {
                path: path.display().to_string(),
                writer: Arc::new(Mutex::new(w)),
                rx_frames: Arc::new(Mutex::new(rx.into())),
            },
        ))
    }
}

impl PcapDriver {
    fn flush(&self, port: &str) -> Result<(), EthdevError> {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flush()
            .map_err(|e| EthdevError::Io {
                port: port.to_string(),
                path: self.path.clone(),
                source: e,
            })
    }
}

impl Driver for PcapDriver {
    fn info(&self) -> PortInfo {
        PortInfo::software("pcap")
    }
    fn mac(&self) -> MacAddr {
        MacAddr([0x02, 0, 0, 0, 0, 0x02])
    }
    fn tx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn TxQueue>, EthdevError> {
        let tsc = Tsc::global();
        Ok(Box::new(PcapTxQueue {
            index: q.queue,
            writer: self.writer.clone(),
            stats: q.stats,
            ring: q.ring_size as usize,
            pending: Completed::default(),
            write_failed: false,
            tsc,
            wall0: wall_ns(),
            tsc0: tsc.now(),
        }))
    }
    fn rx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn RxQueue>, EthdevError> {
        Ok(Box::new(PcapRxQueue {
            index: q.queue,
            port: q.port.to_string(),
            frames: self.rx_frames.clone(),
            stats: q.stats,
        }))
    }
    fn stop(&mut self, port: &str) -> Result<(), EthdevError> {
        self.flush(port)
    }
}

impl Drop for PcapDriver {
    fn drop(&mut self) {
        let _ = self.flush(&self.path.clone());
    }
}

struct PcapTxQueue {
    index: u16,
    writer: SharedWriter,
    stats: Arc<QueueStats>,
    ring: usize,
    pending: Completed,
    /// A write failed already (logged once, counted every time).
    write_failed: bool,
    tsc: Tsc,
    wall0: u64,
    tsc0: u64,
}

impl TxQueue for PcapTxQueue {
    fn index(&self) -> u16 {
        self.index
    }
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        while let Some(m) = pkts.pop_front() {
            let ts = self.wall0
                + self
                    .tsc
                    .cycles_to_ns(self.tsc.now().wrapping_sub(self.tsc0));
            match w.write_segments(ts, m.segments().map(|s| s.data)) {
                Ok(()) => {
                    self.stats.packets.add(1);
                    self.stats.bytes.add(m.pkt_len() as u64);
                    self.pending.packets += 1;
                    self.pending.bytes += m.pkt_len() as u64;
                }
                Err(e) => {
                    // Counted once, as a TX error; the packet is freed and
                    // reported complete like a sent one, so the bytes the
                    // netdev layer queued to BQL leave its in-flight count.
                    self.stats.errors.add(1);
                    self.pending.packets += 1;
                    self.pending.bytes += m.pkt_len() as u64;
                    if !self.write_failed {
                        self.write_failed = true;
                        tracing::error!(error = %e, "pcap write failed; further failed frames are counted in tx errors");
                    }
                }
            }
            n += 1;
        }
        n
    }
    fn clean(&mut self, _budget: usize) -> Completed {
        std::mem::take(&mut self.pending)
    }
    fn free_slots(&self) -> usize {
        self.ring
    }
    fn ring_size(&self) -> usize {
        self.ring
    }
    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }
}

impl Drop for PcapTxQueue {
    fn drop(&mut self) {
        flush_shared(&self.writer);
    }
}

struct PcapRxQueue {
    index: u16,
    port: String,
    frames: Arc<Mutex<std::collections::VecDeque<PcapRecord>>>,
    stats: Arc<QueueStats>,
}

impl RxQueue for PcapRxQueue {
    fn index(&self) -> u16 {
        self.index
    }
    fn rx_burst(&mut self, pool: &mut Mempool, out: &mut Burst, max: usize) -> usize {
        let mut frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        while n < max && out.room() > 0 {
            let Some(rec) = frames.front() else { break };
            match copy_into_chain(pool, &rec.data) {
                Some(mut m) => {
                    m.set_rx_port_queue(0, self.index);
                    self.stats.packets.add(1);
                    self.stats.bytes.add(rec.data.len() as u64);
                    frames.pop_front();
                    let _ = out.push(m);
                    n += 1;
                }
                None => {
                    // Out of buffers: leave the frame for the next poll, like a
                    // NIC whose ring is not yet refilled.
                    tracing::debug!(port = %self.port, "pcap rx: mempool empty");
                    break;
                }
            }
        }
        n
    }
    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }
}

/// Copies `data` into a chain of mbufs from `pool` (one segment per data room).
pub fn copy_into_chain(pool: &mut Mempool, data: &[u8]) -> Option<crate::mbuf::Mbuf> {
    let room = pool.data_room();
    let mut chunks = data.chunks(room.max(1));
    let first = chunks.next().unwrap_or(&[]);
    let mut head = pool.alloc()?;
    head.extend_from_slice(first).ok()?;
    for c in chunks {
        let mut seg = pool.alloc()?;
        seg.extend_from_slice(c).ok()?;
        head.chain(seg);
    }
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eal::dma::{set_page_mode, PageMode};
    use crate::mbuf::PoolConfig;

    /// What our pcapng writer writes, the reader reads back: frames,
    /// nanosecond timestamps (if_tsresol 9), lengths.
    #[test]
    fn pcapng_round_trip() {
        let mut w = PcapWriter::with_format(Vec::new(), CaptureFormat::Pcapng).unwrap();
        w.write(1_500_000_000_123_456_789, &[1, 2, 3]).unwrap();
        w.write(1_500_000_001_000_000_001, &[0xab; 60]).unwrap();
        let r = parse("mem.pcapng", &w.into_inner()).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].ts_ns, r[0].data.clone(), r[0].orig_len),
            (1_500_000_000_123_456_789, vec![1, 2, 3], 3)
        );
        assert_eq!(r[1].ts_ns, 1_500_000_001_000_000_001);
        assert_eq!(r[1].data, vec![0xab; 60]);
    }

    /// A big-endian section with the default microsecond unit, a simple
    /// packet block and a block the reader skips (name resolution),
    /// written by hand from the pcapng draft's layouts.
    #[test]
    fn pcapng_big_endian_default_resolution_and_skipped_blocks() {
        fn block(t: u32, body: &[u8]) -> Vec<u8> {
            let len = (12 + body.len().div_ceil(4) * 4) as u32;
            let mut b = t.to_be_bytes().to_vec();
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(body);
            b.resize(len as usize - 4, 0);
            b.extend_from_slice(&len.to_be_bytes());
            b
        }
        let mut img = block(
            0x0A0D_0D0A,
            &[
                0x1A, 0x2B, 0x3C, 0x4D, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        );
        img.extend(block(1, &[0, 1, 0, 0, 0, 0, 0xff, 0xff])); // Ethernet, snaplen 65535, no options
        img.extend(block(4, &[0, 0, 0, 0])); // name resolution: skipped
        let ticks: u64 = 1_700_000_000_000_001; // µs
        let mut epb = vec![0, 0, 0, 0];
        epb.extend_from_slice(&((ticks >> 32) as u32).to_be_bytes());
        epb.extend_from_slice(&(ticks as u32).to_be_bytes());
        epb.extend_from_slice(&5u32.to_be_bytes());
        epb.extend_from_slice(&64u32.to_be_bytes());
        epb.extend_from_slice(&[1, 2, 3, 4, 5]);
        img.extend(block(6, &epb));
        let mut spb = 4u32.to_be_bytes().to_vec();
        spb.extend_from_slice(&[9, 9, 9, 9]);
        img.extend(block(3, &spb));
        let r = parse("be.pcapng", &img).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].ts_ns, r[0].orig_len), (ticks * 1000, 64));
        assert_eq!(r[0].data, vec![1, 2, 3, 4, 5]);
        assert_eq!((r[1].ts_ns, r[1].data.clone()), (0, vec![9, 9, 9, 9]));
        // A packet of an interface never described is an error naming the block.
        let mut bad = img[..28].to_vec();
        bad.extend(block(6, &epb));
        let e = parse("bad.pcapng", &bad).unwrap_err().to_string();
        assert!(e.contains("block 1") && e.contains("interface 0"), "{e}");
    }

    /// A capture Wireshark's own tool wrote (editcap converts our pcap to
    /// pcapng with its own blocks and options) reads as the original.
    #[test]
    fn pcapng_from_editcap_reads_as_the_pcap() {
        let dir = std::env::temp_dir().join(format!("ws-ng-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.pcap"), dir.join("b.pcapng"));
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        for i in 0..5u64 {
            w.write(
                1_600_000_000_000_000_000 + i * 1_234_567,
                &vec![i as u8; 60 + i as usize],
            )
            .unwrap();
        }
        std::fs::write(&a, w.into_inner()).unwrap();
        let ok = std::process::Command::new("editcap")
            .args(["-F", "pcapng"])
            .arg(&a)
            .arg(&b)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("editcap (wireshark-common) not installed: skipped");
            return;
        }
        let want = read_file(&a).unwrap();
        let got = read_file(&b).unwrap();
        assert_eq!(got, want);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn writer_reader_round_trip() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write(1_500_000_000_123_456_789, &[1, 2, 3]).unwrap();
        w.write_segments(7, [&[9u8, 8][..], &[7u8][..]].into_iter())
            .unwrap();
        let img = w.into_inner();
        let r = parse("mem", &img).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].ts_ns, 1_500_000_000_123_456_789);
        assert_eq!(r[0].data, vec![1, 2, 3]);
        assert_eq!(r[1].data, vec![9, 8, 7]);
        assert_eq!(r[1].orig_len, 3);
    }

    #[test]
    fn truncated_and_bad_files_name_the_record() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write(0, &[0u8; 60]).unwrap();
        w.write(0, &[0u8; 60]).unwrap();
        let img = w.into_inner();
        let e = parse("x.pcap", &img[..img.len() - 5]).unwrap_err();
        assert!(
            matches!(
                e,
                PcapError::Truncated {
                    record: 1,
                    offset: 100,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("record 1"));
        let e = parse("x.pcap", &img[..10]).unwrap_err();
        assert!(matches!(e, PcapError::ShortHeader { .. }));
        let mut bad = img.clone();
        bad[0] = 0;
        assert!(matches!(parse("x", &bad), Err(PcapError::BadMagic { .. })));
        let mut big = img.clone();
        big[24 + 8..24 + 12].copy_from_slice(&1_000_000u32.to_le_bytes());
        assert!(matches!(
            parse("x", &big),
            Err(PcapError::BadLength { record: 0, .. })
        ));
    }

    #[test]
    fn reads_microsecond_big_endian_files() {
        let mut img = Vec::new();
        img.extend_from_slice(&MAGIC_US.to_be_bytes());
        img.extend_from_slice(&2u16.to_be_bytes());
        img.extend_from_slice(&4u16.to_be_bytes());
        img.extend_from_slice(&[0u8; 8]);
        img.extend_from_slice(&65535u32.to_be_bytes());
        img.extend_from_slice(&1u32.to_be_bytes());
        img.extend_from_slice(&5u32.to_be_bytes());
        img.extend_from_slice(&7u32.to_be_bytes());
        img.extend_from_slice(&2u32.to_be_bytes());
        img.extend_from_slice(&2u32.to_be_bytes());
        img.extend_from_slice(&[0xaa, 0xbb]);
        let r = parse("be", &img).unwrap();
        assert_eq!(r[0].ts_ns, 5_000_007_000);
        assert_eq!(r[0].data, vec![0xaa, 0xbb]);
    }

    /// A frame the file refuses (here `/dev/full`) is counted once in tx
    /// errors and still completes: the queue's BQL in-flight count drains.
    #[test]
    fn failed_writes_are_counted_and_complete() {
        use crate::eal::tsc::Tsc;
        use crate::netdev::{NetdevQueue, TxqConfig};
        set_page_mode(PageMode::Small);
        if !Path::new("/dev/full").exists() {
            return;
        }
        let reg = Registry::with_builtins();
        let mut p = reg.open("pcap:/dev/full").unwrap();
        p.configure(&PortConfig::default()).unwrap();
        let tx = p.tx_queue(0).unwrap();
        p.start().unwrap();
        let mut q =
            NetdevQueue::new(0, p.name(), tx, &TxqConfig::default(), Tsc::global()).unwrap();
        let mut pool = Mempool::new(&PoolConfig {
            size: 2048,
            ..Default::default()
        })
        .unwrap();
        // 1.5 MB: more than the 1 MiB write buffer, so writes fail.
        let total = 1500u64;
        for _ in 0..total / 30 {
            let mut b = Burst::new();
            for _ in 0..30 {
                let mut m = pool.alloc().unwrap();
                m.append(1000).unwrap().fill(0x5a);
                b.push(m).unwrap();
            }
            q.xmit_burst(&mut b);
            q.poll();
        }
        assert!(q.flush(1_000_000_000), "queue wedged: {}", q.snapshot());
        let s = q.snapshot();
        assert_eq!(s.bql.inflight, 0, "{s}");
        let st = p.stats().tx;
        assert!(st.errors > 0, "writes to /dev/full fail");
        assert_eq!(st.packets + st.errors, total, "{st:?}");
        assert_eq!(s.counters.offered, total);
        assert_eq!(s.counters.drops(), 0);
        drop(q);
        assert_eq!(pool.stats().in_use, 0);
        assert!(p.stop().is_err(), "the flush at stop reports the error");
    }

    #[test]
    fn port_writes_and_replays() {
        set_page_mode(PageMode::Small);
        let dir = std::env::temp_dir().join(format!("ws-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out.pcap");
        let reg = Registry::with_builtins();
        let mut p = reg.open(&format!("pcap:{}", out.display())).unwrap();
        p.configure(&PortConfig::default()).unwrap();
        let mut tx = p.tx_queue(0).unwrap();
        p.start().unwrap();
        let mut pool = Mempool::new(&PoolConfig {
            size: 64,
            ..Default::default()
        })
        .unwrap();
        let mut b = Burst::new();
        for i in 0..10u8 {
            let mut m = pool.alloc().unwrap();
            m.extend_from_slice(&[i; 60]).unwrap();
            b.push(m).unwrap();
        }
        assert_eq!(tx.tx_burst(&mut b), 10);
        assert_eq!(
            tx.clean(64),
            Completed {
                packets: 10,
                bytes: 600
            }
        );
        p.stop().unwrap();
        drop(tx);
        drop(p);
        let recs = read_file(&out).unwrap();
        assert_eq!(recs.len(), 10);
        assert_eq!(recs[3].data, vec![3u8; 60]);
        // Replay it.
        let mut p2 = reg
            .open(&format!(
                "pcap:{}?rx={}",
                dir.join("o2.pcap").display(),
                out.display()
            ))
            .unwrap();
        p2.configure(&PortConfig::default()).unwrap();
        let mut rx = p2.rx_queue(0).unwrap();
        let mut got = Burst::new();
        assert_eq!(rx.rx_burst(&mut pool, &mut got, 4), 4);
        assert_eq!(rx.rx_burst(&mut pool, &mut got, 64), 6);
        assert_eq!(got.as_slice()[9].data(), &[9u8; 60]);
        drop(got);
        assert_eq!(pool.stats().in_use, 0);
        std::fs::remove_dir_all(&dir).ok();
    }
}
