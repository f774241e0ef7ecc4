//! `af_packet:IFACE`: a port on any Linux interface through `AF_PACKET`
//! sockets with `PACKET_MMAP` rings (DPDK's `net_af_packet`). Each TX queue
//! is a socket with a `TPACKET_V2` TX ring and `PACKET_QDISC_BYPASS` (frames
//! go straight to the device's `ndo_start_xmit`, as `packet_direct_xmit`
//! does), kicked with one `sendto` per burst; each RX queue a socket with a
//! `TPACKET_V3` block ring, several RX queues joined in one `PACKET_FANOUT`
//! group (by flow hash). Frames are copied between mbufs and the rings.
//! The MAC, MTU, link state and speed come from sysfs.
//!
//! TX offloads go to the kernel in a virtio-net header (`PACKET_VNET_HDR`,
//! what `virtio_net_hdr_to_skb` reads in `tpacket_snd`): a TCP
//! super-segment travels as one 64 KiB frame with `VIRTIO_NET_HDR_GSO_TCPV4`
//! (the kernel's GSO — or the device, a veth passes it whole to its peer —
//! makes the wire segments), and a checksum left to the device as
//! `VIRTIO_NET_HDR_F_NEEDS_CSUM` (`CHECKSUM_PARTIAL`).
//!
//! A super-segment whose headers sit in its first buffer (every one the
//! TCP stack builds) skips the ring: one `sendmsg` on a send-only socket
//! of the queue gathers it from its buffers (`packet_snd`: the kernel
//! copies it once, into pages of its own), where the ring would cost a
//! copy into the slot and, on a veth into another namespace, a second
//! one in the kernel (`skb_copy_ubufs` of the ring-backed zero-copy skb).

use super::*;
use crate::eal::pktmmap::{
    PacketSocket, RxFrameRing, RxPacket, RxRing, RxSlot, TxRing, VnetHdr, MAX_GATHER,
    TP_STATUS_CSUMNOTREADY, TP_STATUS_CSUM_VALID, TX_FRAME_OVERHEAD, VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_GSO_TCPV4,
};
use crate::mbuf::{ol, Burst, Mbuf, Mempool};
use crate::stack::checksum;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;

pub(crate) fn driver() -> DriverInfo {
    DriverInfo {
        name: "af_packet",
        syntax: "af_packet:IFACE[?qdisc_bypass=1|0&block_kb=N&vnet=1|0&rx_ring=v3|v2]",
        help: "any Linux interface (a veth, lo, eth0) through AF_PACKET: TPACKET_V2 TX ring with qdisc bypass, TPACKET_V3 RX ring (rx_ring=v2: per-frame TPACKET_V2, no 1 ms block timer: for request/response and TCP), PACKET_FANOUT over RX queues, TSO and checksum offload through PACKET_VNET_HDR (vnet=0: none); needs root or CAP_NET_RAW",
        open: |spec| {
            spec.check_params(&["qdisc_bypass", "block_kb", "vnet", "rx_ring"])?;
            let iface = spec.require_arg("af_packet:IFACE")?.to_string();
            let bypass = spec.param_u64("qdisc_bypass", 1)? != 0;
            let vnet = match spec.param_u64("vnet", 1)? {
                0 => false,
                1 => true,
                v => {
                    return Err(EthdevError::BadSpec {
                        spec: spec.raw.clone(),
                        why: format!("vnet={v}: give 1 (TX offloads through PACKET_VNET_HDR) or 0"),
                    })
                }
            };
            let rx_frames = match spec.param("rx_ring").unwrap_or("v3") {
                "v3" => false,
                "v2" => true,
                v => {
                    return Err(EthdevError::BadSpec {
                        spec: spec.raw.clone(),
                        why: format!(
                            "rx_ring={v}: give v3 (TPACKET_V3 blocks, the default) or v2 (TPACKET_V2 frames, no block timer)"
                        ),
                    })
                }
            };
            let block_kb = spec.param_u64("block_kb", 256)?;
            if !(4..=4096).contains(&block_kb) || !block_kb.is_power_of_two() {
                return Err(EthdevError::BadSpec {
                    spec: spec.raw.clone(),
                    why: format!("block_kb={block_kb}: give a power of two in 4..=4096"),
                });
            }
            Ok(Box::new(open_port(
                &spec.raw,
                &iface,
                bypass,
                block_kb as usize * 1024,
                vnet,
                rx_frames,
            )?))
        },
    }
}

/// What sysfs says about an interface.
#[derive(Debug, Clone)]
pub(crate) struct Iface {
    pub(crate) name: String,
    pub(crate) index: i32,
    pub(crate) mac: MacAddr,
    pub(crate) mtu: u32,
}

fn sysfs(iface: &str, file: &str) -> PathBuf {
    PathBuf::from(format!("/sys/class/net/{iface}/{file}"))
}

fn read_sys(iface: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(sysfs(iface, file))
        .ok()
        .map(|s| s.trim().to_string())
}

impl Iface {
    pub(crate) fn lookup(port: &str, name: &str) -> Result<Iface, EthdevError> {
        let c = std::ffi::CString::new(name)
            .map_err(|_| EthdevError::device(port, format!("'{name}' is not an interface name")))?;
        // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
        let index = unsafe { libc::if_nametoindex(c.as_ptr()) } as i32;
        if index == 0 {
            return Err(EthdevError::device(
                port,
                format!("no interface '{name}' (`ip link` lists them; in a namespace, run wirespeed inside it)"),
            ));
        }
        let mac = read_sys(name, "address")
            .and_then(|a| {
                let b: Vec<u8> = a
                    .split(':')
                    .filter_map(|x| u8::from_str_radix(x, 16).ok())
                    .collect();
                <[u8; 6]>::try_from(b).ok()
            })
            .map(MacAddr)
            .unwrap_or(MacAddr::ZERO);
        let mtu = read_sys(name, "mtu")
            .and_then(|m| m.parse().ok())
            .unwrap_or(1500);
        Ok(Iface {
            name: name.to_string(),
            index,
            mac,
            mtu,
        })
    }

    pub(crate) fn link(&self) -> LinkStatus {
        let carrier = read_sys(&self.name, "carrier").as_deref() == Some("1");
        let oper = read_sys(&self.name, "operstate").unwrap_or_default();
        // `lo` says "unknown" and has carrier: up.
        let up = carrier && (oper == "up" || oper == "unknown");
        let speed = read_sys(&self.name, "speed")
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|s| *s > 0)
            .unwrap_or(0) as u32;
        LinkStatus {
            up,
            speed_mbps: if up { speed } else { 0 },
            full_duplex: true,
        }
    }

    /// A kernel counter of the interface (`statistics/NAME`).
    pub(crate) fn counter(&self, name: &str) -> u64 {
        read_sys(&self.name, &format!("statistics/{name}"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// A TX queue's offload counters (single writer: the queue's lcore).
#[derive(Debug, Default)]
struct TxVnetStats {
    /// Super-segments handed to the kernel as one GSO frame.
    tso_frames: StatCounter,
    /// Wire segments those make (`gso_segs`).
    tso_segments: StatCounter,
    /// Of the super-segments, those gathered by `sendmsg` from the mbufs
    /// (`send_super`) rather than copied into the ring.
    tso_gathered: StatCounter,
    /// Frames with a checksum left partial (`VIRTIO_NET_HDR_F_NEEDS_CSUM`).
    csum_partial: StatCounter,
    /// Frames refused for an offload request the headers contradict.
    bad_offload: StatCounter,
}

/// Counters the RX queues read from their sockets (`PACKET_STATISTICS`
/// resets on read, so they are accumulated here).
#[derive(Debug, Default)]
struct RxKernelStats {
    tp_drops: AtomicU64,
    tp_freeze_q_cnt: AtomicU64,
}

/// The port: the framework's bookkeeping around [`AfPacketDriver`].
pub type AfPacketPort = EthDev<AfPacketDriver>;

/// What `af_packet` adds to the framework: the interface, the ring
/// parameters and the kernel's RX statistics.
pub struct AfPacketDriver {
    iface: Iface,
    bypass: bool,
    block_size: usize,
    rx_kernel: Arc<RxKernelStats>,
    fanout_id: u16,
    /// The kernel takes `PACKET_VNET_HDR` and `vnet=1`: TX offloads offered.
    vnet: bool,
    /// `rx_ring=v2`: per-frame `TPACKET_V2` RX rings.
    rx_frames: bool,
    tx_vnet: Vec<Arc<TxVnetStats>>,
}

/// TX offloads a socket with `PACKET_VNET_HDR` performs.
const VNET_OFFLOADS: u32 = ol::TX_TSO | ol::TX_TCP_CKSUM | ol::TX_UDP_CKSUM | ol::TX_IP_CKSUM;

/// Slot size of a TX ring that takes super-segments: the virtio-net and
/// TPACKET_V2 headers, the largest IPv4 datagram (65535) and a tagged
/// Ethernet header, in 16-byte `TPACKET_ALIGNMENT` units.
const TSO_FRAME: usize = (TX_FRAME_OVERHEAD + 65535 + 18).next_multiple_of(16);

/// Most slots of a TSO ring: 120 × 64 KiB ≈ 7.5 MiB of locked memory per
/// queue (eight 1 MiB blocks), whatever `tx_ring_size` asks — each slot
/// holds up to 45 wire segments, so this carries as much as 5400 MSS slots.
const TSO_RING_MAX: usize = 120;

/// A process-unique fanout group id per port.
static NEXT_FANOUT: AtomicU16 = AtomicU16::new(1);

/// Frame size of the rings: a power of two holding the largest frame (MTU
/// + Ethernet header + one VLAN tag) after the 32-byte TPACKET_V2 header.
fn frame_size(mtu: u32) -> usize {
    (mtu as usize + 18 + 64).next_power_of_two().max(2048)
}

fn open_port(
    spec: &str,
    iface: &str,
    bypass: bool,
    block_size: usize,
    vnet: bool,
    rx_frames: bool,
) -> Result<AfPacketPort, EthdevError> {
    let iface = Iface::lookup(spec, iface)?;
    // Fail early, naming the capability, rather than at queue set-up.
    PacketSocket::open(iface.index).map_err(|e| sock_error(spec, "socket(AF_PACKET)", e))?;
    let vnet = vnet && TxRing::probe_vnet(iface.index);
    if frame_size(iface.mtu) > block_size {
        return Err(EthdevError::BadSpec {
            spec: spec.to_string(),
            why: format!(
                "block_kb={} is smaller than one frame at MTU {}; raise block_kb",
                block_size / 1024,
                iface.mtu
            ),
        });
    }
    Ok(EthDev::with_driver(
        spec,
        AfPacketDriver {
            iface,
            bypass,
            block_size,
            rx_kernel: Arc::default(),
            fanout_id: NEXT_FANOUT.fetch_add(1, Ordering::Relaxed),
            vnet,
            rx_frames,
            tx_vnet: Vec::new(),
        },
    ))
}

/// An errno from socket set-up, with what to do about it.
fn sock_error(port: &str, what: &str, e: std::io::Error) -> EthdevError {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            " — AF_PACKET needs root or CAP_NET_RAW (e.g. `setcap cap_net_raw,cap_ipc_lock+ep wirespeed`)"
        }
        Some(libc::ENOMEM) | Some(libc::EAGAIN) => {
            " — the ring does not fit the locked-memory limit: raise it (`ulimit -l unlimited`) or use smaller rings"
        }
        Some(libc::EAFNOSUPPORT) => " — this kernel has no AF_PACKET (CONFIG_PACKET)",
        _ => "",
    };
    EthdevError::device(port, format!("{what}: {e}{hint}"))
}

impl Driver for AfPacketDriver {
    fn info(&self) -> PortInfo {
        let speed = self.iface.link().speed_mbps as u64;
        PortInfo {
            driver: "af_packet",
            max_tx_queues: 16,
            max_rx_queues: 16,
            tx_ring_min: 64,
            tx_ring_max: 16384,
            tx_ring_align: 2,
            rx_ring_min: 64,
            rx_ring_max: 16384,
            rx_ring_align: 2,
            tx_offload_capa: if self.vnet { VNET_OFFLOADS } else { 0 },
            // The kernel takes MTU + header, and 4 more for a VLAN-tagged frame.
            max_frame: self.iface.mtu + 14 + 4,
            line_rate_bps: speed * 1_000_000,
            // No configurable RSS here (the kernel's own RX spreading applies).
            reta_size: 0,
            rss_hash_types: crate::ethdev::RssHashTypes::NONE,
        }
    }

    fn mac(&self) -> MacAddr {
        self.iface.mac
    }

    fn configure(&mut self, _port: &str, _conf: &PortConfig) -> Result<(), EthdevError> {
        self.tx_vnet.clear();
        Ok(())
    }

    /// With offloads configured the socket gets `PACKET_VNET_HDR`; with
    /// `TX_TSO` its slots hold a 64 KiB super-segment each (and there are
    /// at most [`TSO_RING_MAX`] of them), and it goes through the qdisc layer.
    fn tx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn TxQueue>, EthdevError> {
        let sock = PacketSocket::open(self.iface.index)
            .map_err(|e| sock_error(q.port, "socket(AF_PACKET)", e))?;
        let offloads = if self.vnet {
            q.conf.tx_offloads & VNET_OFFLOADS
        } else {
            0
        };
        let tso = offloads & ol::TX_TSO != 0;
        let (fs, frames) = if tso {
            (TSO_FRAME, (q.conf.tx_ring_size as usize).min(TSO_RING_MAX))
        } else {
            (frame_size(self.iface.mtu), q.conf.tx_ring_size as usize)
        };
        // `__dev_direct_xmit` (PACKET_QDISC_BYPASS) drops a frame that
        // `validate_xmit_skb` would have to segment — a super-segment on an
        // interface without TSO — so a TSO socket goes through
        // `dev_queue_xmit`, whose GSO cuts it when the device cannot.
        let bypass = self.bypass && !tso;
        let ring = TxRing::new(sock, fs, frames, bypass, offloads != 0)
            .map_err(|e| sock_error(q.port, "PACKET_TX_RING", e))?;
        // Super-segments go by sendmsg on a send-only socket of their own
        // (see `AfPacketTxQueue::send_super`); its send buffer holds what
        // the ring would.
        let gather = if tso {
            let g = PacketSocket::open_silent(self.iface.index)
                .map_err(|e| sock_error(q.port, "socket(AF_PACKET) for super-segments", e))?;
            g.set(libc::PACKET_VNET_HDR, &1i32)
                .and_then(|_| g.set_sndbuf((frames * TSO_FRAME).min(i32::MAX as usize) as i32))
                .and_then(|_| g.bind_send_only())
                .map_err(|e| sock_error(q.port, "PACKET_VNET_HDR send socket", e))?;
            Some(g)
        } else {
            None
        };
        let vs = Arc::new(TxVnetStats::default());
        self.tx_vnet.push(vs.clone());
        let frames = ring.frames();
        Ok(Box::new(AfPacketTxQueue {
            index: q.queue,
            stats: q.stats,
            offloads,
            vnet_stats: vs,
            max_len: (self.iface.mtu + 14) as usize,
            lens: vec![0; frames],
            ring,
            gather,
            unkicked: 0,
            head: 0,
            tail: 0,
            inflight: 0,
            settled: Completed::default(),
            kick_errors: 0,

            iface: self.iface.clone(),
            link: CarrierPoll::new(CarrierPoll::PMD_PERIOD),
        }))
    }

    fn rx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn RxQueue>, EthdevError> {
        let sock = PacketSocket::open(self.iface.index)
            .map_err(|e| sock_error(q.port, "socket(AF_PACKET)", e))?;
        let fs = frame_size(self.iface.mtu);
        let ring = if self.rx_frames {
            RxKind::Frames(
                RxFrameRing::new(sock, fs, q.conf.rx_ring_size.max(2) as usize)
                    .map_err(|e| sock_error(q.port, "PACKET_RX_RING (TPACKET_V2)", e))?,
            )
        } else {
            // The ring holds about rx_ring_size frames.
            let blocks = (q.conf.rx_ring_size as usize * fs)
                .div_ceil(self.block_size)
                .max(2);
            RxKind::Blocks(
                RxRing::new(sock, self.block_size, blocks, fs, 1)
                    .map_err(|e| sock_error(q.port, "PACKET_RX_RING", e))?,
            )
        };
        if q.conf.promiscuous {
            let mr = libc::packet_mreq {
                mr_ifindex: self.iface.index,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            ring.socket()
                .set(libc::PACKET_ADD_MEMBERSHIP, &mr)
                .map_err(|e| sock_error(q.port, "PACKET_MR_PROMISC", e))?;
        }
        if q.conf.nb_rx_queues > 1 {
            // PACKET_FANOUT_HASH: a flow stays on one queue (like RSS).
            let arg = self.fanout_id as u32 | (libc::PACKET_FANOUT_HASH << 16);
            ring.socket()
                .set(libc::PACKET_FANOUT, &arg)
                .map_err(|e| sock_error(q.port, "PACKET_FANOUT", e))?;
        }
        Ok(Box::new(AfPacketRxQueue {
            index: q.queue,
            stats: q.stats,
            kernel: self.rx_kernel.clone(),
            ring,
            block: 0,
            left: 0,
            off: 0,
            polls: 0,
        }))
    }

    fn start(&mut self, port: &str) -> Result<(), EthdevError> {
        if !self.iface.link().up {
            tracing::warn!(
                port = %port,
                "link is down (carrier off or interface down: `ip link set {} up`)",
                self.iface.name
            );
        }
        Ok(())
    }

    fn carrier(&self) -> bool {
        self.iface.link().up
    }

    fn speed_mbps(&self) -> u32 {
        self.iface.link().speed_mbps
    }

    fn xstats(&self, _stats: &PortStats, v: &mut Vec<(String, u64)>) {
        v.push((
            "rx_kernel_ring_drops".into(),
            self.rx_kernel.tp_drops.load(Ordering::Relaxed),
        ));
        v.push((
            "rx_kernel_freeze_q".into(),
            self.rx_kernel.tp_freeze_q_cnt.load(Ordering::Relaxed),
        ));
        let sum = |f: fn(&TxVnetStats) -> u64| self.tx_vnet.iter().map(|s| f(s)).sum::<u64>();
        v.push(("tx_tso_frames".into(), sum(|s| s.tso_frames.get())));
        v.push(("tx_tso_segments".into(), sum(|s| s.tso_segments.get())));
        v.push(("tx_tso_gathered".into(), sum(|s| s.tso_gathered.get())));
        v.push(("tx_csum_partial".into(), sum(|s| s.csum_partial.get())));
        v.push(("tx_bad_offload".into(), sum(|s| s.bad_offload.get())));
        // What the kernel's own counters say of the interface.
        for c in [
            "tx_packets",
            "tx_dropped",
            "tx_errors",
            "rx_packets",
            "rx_dropped",
        ] {
            v.push((format!("kernel_{c}"), self.iface.counter(c)));
        }
    }
}

/// A TX queue: one socket and its TPACKET_V2 ring.
pub struct AfPacketTxQueue {
    index: u16,
    stats: Arc<QueueStats>,
    /// Offloads this queue performs ([`VNET_OFFLOADS`] as configured; none
    /// without a virtio-net header).
    offloads: u32,
    vnet_stats: Arc<TxVnetStats>,
    /// Largest untagged frame the interface takes (MTU + 14).
    max_len: usize,
    /// Length of the frame in each slot (for the completion report).
    lens: Vec<u32>,
    ring: TxRing,
    /// With TSO: the send-only socket super-segments go through
    /// ([`PacketSocket::send_gather`]).
    gather: Option<PacketSocket>,
    /// Frames put in the ring since the last kick.
    unkicked: usize,
    /// Next slot to fill / oldest slot not yet reported.
    head: usize,
    tail: usize,
    inflight: usize,
    /// Frames refused before they reached the ring (too long), and
    /// super-segments the kernel took at once (`send_super`): reported by
    /// the next `clean`.
    settled: Completed,
    kick_errors: u64,
    /// The interface's carrier, re-read from sysfs at most every
    /// [`CarrierPoll::PMD_PERIOD`] (what `netif_carrier_ok` says of it).
    iface: Iface,
    link: CarrierPoll,
}

/// What became of a super-segment offered to [`AfPacketTxQueue::send_super`].
enum Super {
    /// The kernel took it (and copied it).
    Sent,
    /// The send buffer is full: it waits (`NETDEV_TX_BUSY`).
    Busy,
    /// The kernel refused it: dropped and counted.
    Dropped,
    /// Its headers are not all in the first buffer: the ring takes it.
    Ring,
}

impl AfPacketTxQueue {
    /// The ring's doorbell, once for the frames filled since the last.
    fn kick(&mut self) {
        if self.unkicked > 0 {
            self.unkicked = 0;
            if self.ring.socket().kick().is_err() {
                self.kick_errors += 1;
                self.stats.errors.add(1);
            }
        }
    }

    /// A frame refused before the kernel saw it (counted, reported by clean).
    fn drop_one(&mut self, m: &Mbuf) {
        self.stats.drops.add(1);
        self.settled.packets += 1;
        self.settled.bytes += offload::wire_len(m);
    }

    /// Plays the part of `packet_snd` for a TCP super-segment: its
    /// virtio-net header, its headers (copied to the stack to take the
    /// checksum seed edit `VnetReq::fix` makes, the mbuf may be shared)
    /// and then its buffers as they are — for a TCP stream the write
    /// queue's own buffers, which the super-segment's indirect mbufs
    /// share — gathered by one `sendmsg`: the kernel's copy into its skb is
    /// the only copy of the payload after `send`, where the ring costs two
    /// (ours into the slot, and `skb_copy_ubufs` when a veth forwards the
    /// ring-backed skb). Frames the ring already holds are kicked first,
    /// so the wire order is the burst's. Completion is immediate (the
    /// kernel copied): reported by the next `clean`.
    fn send_super(&mut self, m: &Mbuf, req: &VnetReq) -> Super {
        let hl = req.hdr.hdr_len as usize;
        let first = m.data();
        let mut hdr = [0u8; 256];
        if hl == 0 || hl > first.len() || hl > hdr.len() || m.nb_segs() + 2 > MAX_GATHER {
            return Super::Ring;
        }
        hdr[..hl].copy_from_slice(&first[..hl]);
        req.fix(&mut hdr[..hl]);
        let vnet = req.hdr.to_bytes();
        let mut parts: [&[u8]; MAX_GATHER] = [&[]; MAX_GATHER];
        parts[0] = &vnet;
        parts[1] = &hdr[..hl];
        parts[2] = &first[hl..];
        let mut k = 3;
        for s in m.segments().skip(1) {
            parts[k] = s.data;
            k += 1;
        }
        self.kick();
        let Some(g) = self.gather.as_ref() else {
            return Super::Ring;
        };
        match g.send_gather(&parts[..k]) {
            Ok(_) => {
                let segs = offload::gso_segs(m) as u64;
                let wire = offload::wire_len(m);
                self.vnet_stats.tso_frames.add(1);
                self.vnet_stats.tso_segments.add(segs);
                self.vnet_stats.tso_gathered.add(1);
                self.vnet_stats.csum_partial.add(1);
                self.stats.packets.add(1);
                self.stats.bytes.add(wire);
                self.settled.packets += 1;
                self.settled.bytes += wire;
                Super::Sent
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::ENOBUFS)) => {
                Super::Busy
            }
            Err(_) => {
                self.vnet_stats.bad_offload.add(1);
                Super::Dropped
            }
        }
    }
}

impl TxQueue for AfPacketTxQueue {
    fn index(&self) -> u16 {
        self.index
    }

    /// Plays the part of `ndo_start_xmit` over `tpacket_snd`: copies each
    /// frame into the next available slot (`TP_STATUS_SEND_REQUEST`), after
    /// its virtio-net header when the queue has offloads, then one `sendto`
    /// kick for the whole burst (the doorbell). A super-segment takes one
    /// slot; its completion reports the bytes its wire segments carry.
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        let n = self.ring.frames();
        let mut took = 0;
        while let Some(m) = pkts.pop_front() {
            let len = m.pkt_len();
            let tagged = m.data().len() >= 14 && m.data()[12..14] == [0x81, 0x00];
            let gso = self.offloads & ol::TX_TSO != 0 && offload::is_gso(&m);
            let mtu_ok = gso || len <= self.max_len + if tagged { 4 } else { 0 };
            let req = if self.offloads != 0 {
                vnet_request(&m, gso)
            } else {
                Some(VnetReq::default())
            };
            let Some(req) = req.filter(|_| mtu_ok && len <= self.ring.max_data()) else {
                // The kernel would refuse it: dropped and counted, reported by clean.
                if mtu_ok && len <= self.ring.max_data() {
                    self.vnet_stats.bad_offload.add(1);
                }
                self.stats.drops.add(1);
                self.settled.packets += 1;
                self.settled.bytes += offload::wire_len(&m);
                took += 1;
                continue;
            };
            if req.hdr.gso_type != 0 && self.gather.is_some() {
                match self.send_super(&m, &req) {
                    Super::Sent => {
                        took += 1;
                        continue;
                    }
                    Super::Busy => {
                        let _ = pkts.push_front(m);
                        break;
                    }
                    Super::Dropped => {
                        self.drop_one(&m);
                        took += 1;
                        continue;
                    }
                    Super::Ring => {}
                }
            }
            if self.inflight == n || self.ring.status(self.head) != libc::TP_STATUS_AVAILABLE {
                // Ring full: the rest waits (NETDEV_TX_BUSY).
                let _ = pkts.push_front(m);
                break;
            }
            self.ring
                .fill(self.head, req.hdr, len, m.segments().map(|s| s.data), |f| {
                    req.fix(f)
                });
            let wire = if req.hdr.gso_type != 0 {
                let segs = offload::gso_segs(&m) as u64;
                self.vnet_stats.tso_frames.add(1);
                self.vnet_stats.tso_segments.add(segs);
                offload::wire_len(&m)
            } else {
                len as u64
            };
            if req.hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
                self.vnet_stats.csum_partial.add(1);
            }
            self.lens[self.head] = wire as u32;
            self.head = (self.head + 1) % n;
            self.inflight += 1;
            self.unkicked += 1;
            self.stats.packets.add(1);
            self.stats.bytes.add(wire);
            took += 1;
            // The data is in the ring: the mbuf goes home now (copy mode).
            drop(m);
        }
        self.kick();
        took
    }

    /// Plays the part of `tpacket_destruct_skb` seen from user space: a
    /// slot back at `TP_STATUS_AVAILABLE` was sent; `TP_STATUS_WRONG_FORMAT`
    /// was refused by the kernel (counted as a drop). Reported in order.
    /// The interface's carrier (`/sys/class/net/IFACE/carrier` and
    /// `operstate`, what the kernel's `netif_carrier_ok` and
    /// `netif_oper_up` say), re-read every [`CarrierPoll::PMD_PERIOD`].
    fn carrier(&self) -> bool {
        self.link.get(|| Some(self.iface.link().up))
    }

    fn clean(&mut self, budget: usize) -> Completed {
        let n = self.ring.frames();
        let mut done = std::mem::take(&mut self.settled);
        let mut pending_kick = false;
        while self.inflight > 0 && (done.packets as usize) < budget {
            match self.ring.status(self.tail) {
                libc::TP_STATUS_AVAILABLE => {}
                libc::TP_STATUS_WRONG_FORMAT => {
                    self.ring.set_available(self.tail);
                    self.stats.drops.add(1);
                }
                libc::TP_STATUS_SEND_REQUEST => {
                    // Not taken yet (the device queue was busy): kick again.
                    pending_kick = true;
                    break;
                }
                _ => break, // TP_STATUS_SENDING: in the kernel now
            }
            done.packets += 1;
            done.bytes += self.lens[self.tail] as u64;
            self.tail = (self.tail + 1) % n;
            self.inflight -= 1;
        }
        if pending_kick && self.ring.socket().kick().is_err() {
            self.kick_errors += 1;
        }
        done
    }

    fn free_slots(&self) -> usize {
        self.ring.frames() - self.inflight
    }

    fn tx_offloads(&self) -> u32 {
        self.offloads
    }

    fn ring_size(&self) -> usize {
        self.ring.frames()
    }

    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }
}

/// What one frame asks of the kernel: its virtio-net header, and the
/// edits its copy in the slot needs first.
#[derive(Debug, Clone, Copy, Default)]
struct VnetReq {
    hdr: VnetHdr,
    /// The TCP checksum field's offset and the L4 length to add to its
    /// seed: a super-segment carries DPDK's TSO seed (the pseudo-header
    /// without the length), the kernel's `tcp_gso_segment` one with it
    /// (`__tcp_v4_send_check` over the whole `skb->len`; it swaps that
    /// length for each segment's).
    seed_len: Option<(usize, u16)>,
    /// Offset and length of an IPv4 header whose checksum is asked of the
    /// device (`TX_IP_CKSUM`): the kernel computes none for an unsegmented
    /// frame, so it is computed here, on the copy.
    ip_csum: Option<(usize, usize)>,
}

impl VnetReq {
    #[inline]
    fn fix(&self, f: &mut [u8]) {
        if let Some((off, add)) = self.seed_len {
            let old = u16::from_be_bytes([f[off], f[off + 1]]);
            let new = checksum::fold(old as u64 + add as u64);
            f[off..off + 2].copy_from_slice(&new.to_be_bytes());
        }
        if let Some((l2, l3)) = self.ip_csum {
            f[l2 + 10..l2 + 12].fill(0);
            let c = checksum::checksum(&f[l2..l2 + l3]);
            f[l2 + 10..l2 + 12].copy_from_slice(&c.to_be_bytes());
        }
    }
}

/// Plays the part of `virtio_net_hdr_from_skb` for an mbuf's offload
/// request (DPDK's `tx_offload` fields): GSO type and size, the header
/// length every segment repeats, and the partial checksum's place.
/// `None` when the lengths contradict the frame (the request cannot be
/// met; the frame is dropped and counted).
#[inline]
fn vnet_request(m: &Mbuf, gso: bool) -> Option<VnetReq> {
    let f = m.ol_flags();
    let len = m.pkt_len();
    let (l2, l3, l4) = m.tx_lens();
    let (l2, l3, l4) = (l2 as usize, l3 as usize, l4 as usize);
    let mut r = VnetReq::default();
    let wants = ol::TX_TCP_CKSUM | ol::TX_UDP_CKSUM | ol::TX_IP_CKSUM;
    if !gso && f & wants == 0 {
        return Some(r);
    }
    // The lengths bound every edit `VnetReq::fix` makes of the copy.
    if l2 < 14 || l3 < 20 || l2 + l3 + l4 > len {
        return None;
    }
    if f & ol::TX_IP_CKSUM != 0 {
        r.ip_csum = Some((l2, l3));
    }
    let start = l2 + l3;
    if gso {
        let mss = m.tso_segsz() as usize;
        if l4 < 20 {
            return None;
        }
        r.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        r.hdr.csum_start = start as u16;
        r.hdr.csum_offset = 16;
        r.seed_len = Some((start + 16, (len - start) as u16));
        // The kernel refuses a GSO frame of one segment or less
        // (`virtio_net_hdr_to_skb`): that one goes as a plain frame.
        if len - start - l4 > mss {
            r.hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
            r.hdr.gso_size = mss as u16;
            r.hdr.hdr_len = (start + l4) as u16;
        }
    } else if f & ol::TX_TCP_CKSUM != 0 {
        if start + 20 > len {
            return None;
        }
        r.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        r.hdr.csum_start = start as u16;
        r.hdr.csum_offset = 16;
    } else if f & ol::TX_UDP_CKSUM != 0 {
        if start + 8 > len {
            return None;
        }
        r.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        r.hdr.csum_start = start as u16;
        r.hdr.csum_offset = 6;
    }
    Some(r)
}

/// An RX queue's ring: `TPACKET_V3` blocks (the default) or `TPACKET_V2`
/// frames (`rx_ring=v2`).
enum RxKind {
    Blocks(RxRing),
    Frames(RxFrameRing),
}

impl RxKind {
    fn socket(&self) -> &PacketSocket {
        match self {
            RxKind::Blocks(r) => r.socket(),
            RxKind::Frames(r) => r.socket(),
        }
    }
}

/// What became of one received packet.
enum Took {
    /// Copied into an mbuf and queued in the burst.
    Pushed,
    /// Larger than a buffer or truncated by the ring: dropped, counted.
    Dropped,
    /// No buffer, or the burst is full: left in the ring for the next poll.
    Later,
}

/// An RX queue: one socket and its ring.
pub struct AfPacketRxQueue {
    index: u16,
    stats: Arc<QueueStats>,
    kernel: Arc<RxKernelStats>,
    ring: RxKind,
    /// The block (or frame slot) being read, packets left in it and the
    /// next one's offset.
    block: usize,
    left: usize,
    off: usize,
    polls: u64,
}

impl RxQueue for AfPacketRxQueue {
    fn index(&self) -> u16 {
        self.index
    }

    /// Plays the part of reading a `TPACKET_V3` ring (packet_mmap.rst,
    /// "TPACKET_V3"): walks the packets of each block the kernel retired to
    /// us, copies them into mbufs, and gives the block back when done — or
    /// with `rx_ring=v2`, a `TPACKET_V2` ring frame by frame.
    fn rx_burst(&mut self, pool: &mut Mempool, out: &mut Burst, max: usize) -> usize {
        self.polls += 1;
        if self.polls.is_multiple_of(4096) {
            if let Ok((_, drops, freeze)) = self.ring.socket().stats_v3() {
                self.kernel
                    .tp_drops
                    .fetch_add(drops as u64, Ordering::Relaxed);
                self.kernel
                    .tp_freeze_q_cnt
                    .fetch_add(freeze as u64, Ordering::Relaxed);
                self.stats.drops.add(drops as u64);
            }
        }
        if let RxKind::Frames(_) = self.ring {
            return self.rx_frames(pool, out, max);
        }
        let RxKind::Blocks(ring) = &self.ring else {
            return 0;
        };
        let mut got = 0;
        while got < max && out.room() > 0 {
            if self.left == 0 {
                if !ring.ready(self.block) {
                    break;
                }
                let (num, first) = ring.block_info(self.block);
                if num == 0 {
                    self.block = next_block(ring, self.block);
                    self.left = 0;
                    continue;
                }
                self.left = num;
                self.off = first;
            }
            let Some((p, next)) = ring.packet(self.block, self.off) else {
                // A header pointing outside the block: skip the block.
                self.stats.errors.add(self.left as u64);
                self.block = next_block(ring, self.block);
                self.left = 0;
                continue;
            };
            match take(&self.stats, pool, out, &p) {
                Took::Later => break,
                Took::Pushed => got += 1,
                Took::Dropped => {}
            }
            self.left -= 1;
            self.off = next;
            if self.left == 0 {
                self.block = next_block(ring, self.block);
            }
        }
        got
    }

    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }

    /// The RX socket: `packet_poll` makes it readable once a frame (or a
    /// retired block) of the ring is ours.
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.ring.socket().raw_fd())
    }
}

impl AfPacketRxQueue {
    /// `rx_ring=v2`: each frame slot the kernel handed over, in ring order.
    fn rx_frames(&mut self, pool: &mut Mempool, out: &mut Burst, max: usize) -> usize {
        let RxKind::Frames(ring) = &self.ring else {
            return 0;
        };
        let mut got = 0;
        while got < max && out.room() > 0 {
            match ring.slot(self.block) {
                RxSlot::Empty => break,
                RxSlot::Corrupt => self.stats.errors.add(1),
                RxSlot::Packet(p) => match take(&self.stats, pool, out, &p) {
                    Took::Later => break,
                    Took::Pushed => got += 1,
                    Took::Dropped => {}
                },
            }
            ring.release(self.block);
            self.block = (self.block + 1) % ring.frames();
        }
        got
    }
}

/// Gives block `b` back to the kernel; the next block's index.
fn next_block(ring: &RxRing, b: usize) -> usize {
    ring.release(b);
    (b + 1) % ring.blocks()
}

/// One received packet into an mbuf of `pool`, queued in `out`.
#[inline]
fn take(stats: &QueueStats, pool: &mut Mempool, out: &mut Burst, p: &RxPacket<'_>) -> Took {
    let Some(mut m) = pool.alloc() else {
        return Took::Later;
    };
    if m.extend_from_slice(p.data).is_err() || p.wire_len > p.data.len() {
        drop(m);
        stats.drops.add(1);
        return Took::Dropped;
    }
    // A frame of a local sender (a veth peer, `lo`) whose L4 checksum the
    // kernel left partial (CHECKSUM_PARTIAL → TP_STATUS_CSUMNOTREADY,
    // `tpacket_rcv`), or one the device verified: the checksum is good, as
    // Linux's own stack takes it.
    if p.status & (TP_STATUS_CSUMNOTREADY | TP_STATUS_CSUM_VALID) != 0 {
        m.set_ol_flags(m.ol_flags() | crate::mbuf::ol::RX_L4_CKSUM_GOOD);
    }
    let len = p.data.len() as u64;
    if let Err(m) = out.push(m) {
        drop(m);
        return Took::Later;
    }
    stats.packets.add(1);
    stats.bytes.add(len);
    Took::Pushed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eal::dma::{set_page_mode, PageMode};
    use crate::mbuf::PoolConfig;

    fn pool() -> Mempool {
        set_page_mode(PageMode::Small);
        Mempool::new(&PoolConfig {
            name: "afp-vnet-test".into(),
            size: 64,
            ..Default::default()
        })
        .unwrap()
    }

    /// Ethernet + IPv4 + TCP (32-byte header) frame of `len` bytes, the
    /// TCP checksum field holding `seed`, the IPv4 checksum 0.
    fn tcp_frame(len: usize, seed: u16) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[46] = 0x80;
        f[50..52].copy_from_slice(&seed.to_be_bytes());
        for (i, b) in f[66..].iter_mut().enumerate() {
            *b = i as u8;
        }
        f
    }

    fn pseudo(l4: u16) -> u64 {
        checksum::pseudo_header_sum(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            6,
            l4,
        )
    }

    #[test]
    fn rx_ring_takes_v3_or_v2_and_names_the_key_otherwise() {
        let reg = crate::ethdev::Registry::with_builtins();
        let e = reg.open("af_packet:lo?rx_ring=v4").err().expect("refused");
        let t = e.to_string();
        assert!(t.contains("rx_ring=v4") && t.contains("v2"), "{t}");
    }

    #[test]
    fn super_segment_gets_gso_tcpv4_and_the_kernels_seed() {
        let mut p = pool();
        let len = 14 + 20 + 32 + 3 * 1448 + 100;
        let l4 = (len - 34) as u16;
        // DPDK's TSO seed: the pseudo-header without the length.
        let seed = checksum::fold(pseudo(l4) - l4 as u64);
        let mut m = p.alloc().unwrap();
        m.extend_from_slice(&tcp_frame(len.min(1900), seed))
            .unwrap();
        for c in vec![7u8; len - 1900].chunks(1500) {
            let mut tail = p.alloc().unwrap();
            tail.extend_from_slice(c).unwrap();
            m.chain(tail);
        }
        assert_eq!(m.pkt_len(), len);
        m.set_ol_flags(ol::TX_TSO | ol::TX_TCP_CKSUM | ol::TX_IPV4);
        m.set_tx_lens(14, 20, 32);
        m.set_tso_segsz(1448);
        let r = vnet_request(&m, true).unwrap();
        assert_eq!(
            r.hdr,
            VnetHdr {
                flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
                gso_type: VIRTIO_NET_HDR_GSO_TCPV4,
                hdr_len: 66,
                gso_size: 1448,
                csum_start: 34,
                csum_offset: 16,
            }
        );
        let b = r.hdr.to_bytes();
        assert_eq!(&b[..2], &[1, 1]);
        assert_eq!(u16::from_ne_bytes([b[2], b[3]]), 66);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 1448);
        assert_eq!(u16::from_ne_bytes([b[6], b[7]]), 34);
        assert_eq!(u16::from_ne_bytes([b[8], b[9]]), 16);
        // The copy's field: `__tcp_v4_send_check`'s seed over the whole length.
        let mut f = tcp_frame(100, seed);
        r.fix(&mut f);
        assert_eq!(
            u16::from_be_bytes([f[50], f[51]]),
            checksum::fold(pseudo(l4))
        );
        assert_eq!(offload::gso_segs(&m), 4);
    }

    #[test]
    fn one_segment_super_segment_goes_as_a_plain_partial_checksum() {
        let mut p = pool();
        let len = 14 + 20 + 32 + 1000;
        let l4 = (len - 34) as u16;
        let seed = checksum::fold(pseudo(l4) - l4 as u64);
        let mut m = p.alloc().unwrap();
        m.extend_from_slice(&tcp_frame(len, seed)).unwrap();
        m.set_ol_flags(ol::TX_TSO | ol::TX_TCP_CKSUM | ol::TX_IPV4);
        m.set_tx_lens(14, 20, 32);
        m.set_tso_segsz(1448);
        let r = vnet_request(&m, true).unwrap();
        // `virtio_net_hdr_to_skb` refuses GSO of one segment or less.
        assert_eq!(r.hdr.gso_type, 0);
        assert_eq!(r.hdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
        let mut f = tcp_frame(len, seed);
        r.fix(&mut f);
        // The field now holds the pseudo-header sum with the length: the
        // checksum the kernel finishes over [34, len) is the full one.
        let mut c = checksum::Checksum::new();
        c.add(&f[34..]);
        let done = !c.folded();
        f[50..52].copy_from_slice(&done.to_be_bytes());
        let mut v = checksum::Checksum::with_sum(pseudo(l4));
        v.add(&f[34..]);
        assert_eq!(v.folded(), 0xffff, "the finished sum verifies");
    }

    #[test]
    fn checksum_requests_and_bad_lengths() {
        let mut p = pool();
        let mut m = p.alloc().unwrap();
        m.extend_from_slice(&tcp_frame(200, 0)).unwrap();
        assert_eq!(vnet_request(&m, false).unwrap().hdr, VnetHdr::default());
        m.set_ol_flags(ol::TX_UDP_CKSUM | ol::TX_IP_CKSUM | ol::TX_IPV4);
        m.set_tx_lens(14, 20, 8);
        let r = vnet_request(&m, false).unwrap();
        assert_eq!((r.hdr.csum_start, r.hdr.csum_offset), (34, 6));
        assert_eq!(r.ip_csum, Some((14, 20)));
        let mut f = tcp_frame(200, 0);
        r.fix(&mut f);
        assert_eq!(checksum::checksum(&f[14..34]), 0, "IPv4 header checksum");
        // Lengths the frame contradicts: refused, not sent wrong.
        m.set_tx_lens(0, 20, 8);
        assert!(vnet_request(&m, false).is_none());
        m.set_tx_lens(14, 20, 255);
        assert!(vnet_request(&m, false).is_none());
        // An IPv4 header length beyond the frame: refused, no edit out of bounds.
        m.set_tx_lens(14, 250, 0);
        assert!(vnet_request(&m, false).is_none());
        let mut short = p.alloc().unwrap();
        short.extend_from_slice(&tcp_frame(200, 0)[..40]).unwrap();
        short.set_ol_flags(ol::TX_TCP_CKSUM | ol::TX_IPV4);
        short.set_tx_lens(14, 20, 0);
        assert!(
            vnet_request(&short, false).is_none(),
            "no room for the TCP header"
        );
    }
}
