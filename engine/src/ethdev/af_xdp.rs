//! `af_xdp:IFACE`: a port on a Linux interface through AF_XDP sockets
//! (DPDK's `net_af_xdp`). Queue `q` of the port is one XSK bound to the
//! interface's queue `queue + q`; its TX and RX halves are the port's TX
//! and RX queue `q`, which share the socket (TX and completion rings on the
//! TX side, RX and fill rings on the RX side).
//!
//! **UMEM = the lcore's mempool** (see `eal/xsk.rs`): a socket is set up on
//! its lcore, at the first burst, with the pool it is handed there — the RX
//! half's `rx_burst` pool when the port receives (the TX half waits for it,
//! taking nothing, so that received frames never land in a pool whose
//! buffers hold prebuilt frames), else the pool of the first frame the TX
//! half is given. A frame of that pool is transmitted where it lies; a frame
//! of another pool (or a chain) is copied into a buffer of the UMEM pool
//! first (xstat `tx_copied`), as DPDK's `af_xdp_tx_zc` does for an mbuf of a
//! foreign pool. Received frames are the pool's own mbufs, never copied.
//!
//! RX needs an XDP program on the interface: `eal::xsk::XdpProgram`, five
//! instructions redirecting each queue's frames to its socket through an
//! XSKMAP (and everything else to the kernel's stack), attached by a BPF
//! link at `start`: the kernel detaches it when the link's fd closes — at
//! `stop`, at exit, and on a crash.
//!
//! Both halves of a queue must run on one lcore (the default XPS map and
//! RX placement do that: queue `q` on lcore `q % n`); the socket is under a
//! mutex taken once per burst (never contended then), not per packet.

use super::af_packet::Iface;
use super::*;
use crate::eal::pktmmap::PacketSocket;
use crate::eal::xsk::{XdpLink, XdpProgram, Xsk, XskConfig, XskError, XskMap, XskMode, XskStats};
use crate::mbuf::{Burst, Mbuf, Mempool, PoolRef};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) fn driver() -> DriverInfo {
    DriverInfo {
        name: "af_xdp",
        syntax: "af_xdp:IFACE[?queue=N&zerocopy=auto|on|off&umem_frames=N]",
        help: "a Linux interface through AF_XDP sockets: the lcore's mempool is the UMEM (no copy on TX), XSK rings with need_wakeup kicks, an XDP program redirecting each queue to its socket (detached on exit); queue = first interface queue, umem_frames = buffers kept on the fill ring; needs root (CAP_NET_RAW, CAP_BPF, CAP_NET_ADMIN)",
        open: |spec| {
            spec.check_params(&["queue", "zerocopy", "umem_frames"])?;
            let iface = spec.require_arg("af_xdp:IFACE")?.to_string();
            let bad = |why: String| EthdevError::BadSpec {
                spec: spec.raw.clone(),
                why,
            };
            let queue = spec.param_u64("queue", 0)?;
            if queue > 4095 {
                return Err(bad(format!("queue={queue}: give 0..=4095")));
            }
            let zc = match spec.param("zerocopy").unwrap_or("auto") {
                "auto" => ZeroCopy::Auto,
                "on" => ZeroCopy::On,
                "off" => ZeroCopy::Off,
                v => return Err(bad(format!("zerocopy={v}: give auto, on or off"))),
            };
            let frames = spec.param_u64("umem_frames", 2048)?;
            if !(64..=32768).contains(&frames) || !frames.is_power_of_two() {
                return Err(bad(format!(
                    "umem_frames={frames}: give a power of two in 64..=32768 (buffers of the lcore's pool kept on the fill ring)"
                )));
            }
            Ok(Box::new(open_port(
                &spec.raw,
                &iface,
                queue as u32,
                zc,
                frames as u32,
            )?))
        },
    }
}

/// The `zerocopy=` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ZeroCopy {
    /// Zero-copy when the driver offers it and the pool's buffers never
    /// cross a page (hugepages); copy mode otherwise.
    Auto,
    On,
    Off,
}

/// The port: the framework's bookkeeping around [`AfXdpDriver`].
pub type AfXdpPort = EthDev<AfXdpDriver>;

/// What `af_xdp` adds to the framework.
pub struct AfXdpDriver {
    iface: Iface,
    /// The interface's queue of our queue 0.
    base: u32,
    zc: ZeroCopy,
    fill: u32,
    pairs: Vec<Arc<Pair>>,
    prog: Option<XdpProgram>,
    map: Option<Arc<XskMap>>,
    link: Option<XdpLink>,
    want_promisc: bool,
    /// Holds `PACKET_MR_PROMISC` while started (dropped with the socket).
    promisc: Option<PacketSocket>,
}

fn open_port(
    spec: &str,
    iface: &str,
    base: u32,
    zc: ZeroCopy,
    fill: u32,
) -> Result<AfXdpPort, EthdevError> {
    let iface = Iface::lookup(spec, iface)?;
    let queues = kernel_queues(&iface.name);
    if base >= queues {
        return Err(EthdevError::BadSpec {
            spec: spec.to_string(),
            why: format!(
                "queue={base}: {} has {queues} queue(s) (0..{queues}); `ethtool -l {}` shows them",
                iface.name, iface.name
            ),
        });
    }
    // Fail early, naming the capability, rather than on an lcore.
    probe_socket(spec)?;
    Ok(EthDev::with_driver(
        spec,
        AfXdpDriver {
            iface,
            base,
            zc,
            fill,
            pairs: Vec::new(),
            prog: None,
            map: None,
            link: None,
            want_promisc: false,
            promisc: None,
        },
    ))
}

/// Queues an XSK may bind on the interface: max(rx, tx) queues, as
/// `xsk_bind` checks (`queue_id >= max(real_num_rx_queues, real_num_tx_queues)`).
fn kernel_queues(iface: &str) -> u32 {
    let count = |kind: &str| {
        std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with(kind))
                    .count() as u32
            })
            .unwrap_or(1)
    };
    count("rx-").max(count("tx-")).max(1)
}

fn probe_socket(port: &str) -> Result<(), EthdevError> {
    crate::eal::xsk::probe().map_err(|e| xsk_error(port, None, e))
}

/// An XSK or BPF set-up error, with what to do about it.
fn xsk_error(port: &str, queue: Option<u16>, e: XskError) -> EthdevError {
    let errno = e.source.raw_os_error();
    let hint = match (e.op, errno) {
        ("socket(AF_XDP)", Some(libc::EAFNOSUPPORT)) => {
            " — this kernel has no AF_XDP (CONFIG_XDP_SOCKETS): use af_packet:IFACE".to_string()
        }
        (_, Some(libc::EPERM)) | (_, Some(libc::EACCES)) => {
            " — AF_XDP needs root, or CAP_NET_RAW (socket), CAP_BPF and CAP_NET_ADMIN (the XDP program) and CAP_IPC_LOCK or a large `ulimit -l` (the UMEM)".to_string()
        }
        ("XDP_UMEM_REG", Some(libc::ENOBUFS)) | ("XDP_UMEM_REG", Some(libc::ENOMEM)) => {
            " — the UMEM (the lcore's mempool) does not fit the locked-memory limit: raise it (`ulimit -l unlimited`, or LimitMEMLOCK= for a service) or run as root (CAP_IPC_LOCK)".to_string()
        }
        ("XDP_UMEM_REG", Some(libc::EINVAL)) => {
            " — the kernel refused the pool as a UMEM: each buffer object must be 2048..=4096 bytes (keep data_room ≤ 3840)".to_string()
        }
        ("bind(AF_XDP)", Some(libc::EBUSY)) => {
            " — that interface queue already has an AF_XDP socket (another wirespeed or XDP application); pick another with ?queue=N".to_string()
        }
        ("bind(AF_XDP)", Some(libc::EOPNOTSUPP)) => {
            " — the driver offers no zero-copy AF_XDP: use zerocopy=auto or zerocopy=off".to_string()
        }
        ("bind(AF_XDP)", Some(libc::EINVAL)) => {
            " — no such queue on the interface (`ethtool -l IFACE`), or the interface is down".to_string()
        }
        ("BPF_LINK_CREATE(XDP)", Some(libc::EBUSY)) | ("BPF_LINK_CREATE(XDP)", Some(libc::EEXIST)) => {
            " — an XDP program is already attached to the interface (`ip link show IFACE` shows it; `ip link set IFACE xdp off` removes one attached by netlink), or use af_packet:IFACE".to_string()
        }
        _ => String::new(),
    };
    let why = format!("{e}{hint}");
    match queue {
        Some(q) => EthdevError::Queue {
            port: port.to_string(),
            what: "queue",
            queue: q,
            why,
        },
        None => EthdevError::device(port, why),
    }
}

/// One XSK, shared by TX and RX queue `q` of the port.
struct Pair {
    port: String,
    index: u16,
    cfg: XskConfig,
    zc: ZeroCopy,
    has_rx: bool,
    map: Option<Arc<XskMap>>,
    state: Mutex<PairState>,
    /// The last `XDP_STATISTICS` (kept after the socket closes).
    last: Mutex<XskStats>,
    /// Single-writer counters (the pair's lcore).
    tx_copied: StatCounter,
    bad_descs: StatCounter,
    zerocopy: AtomicU64,
}

#[derive(Default)]
struct PairState {
    xsk: Option<Xsk>,
    /// Set-up failed (the reason) or the socket was closed at stop.
    failed: Option<String>,
    closed: bool,
}

impl Pair {
    /// Sets the socket up with `pool` as its UMEM (on the calling lcore).
    fn bind(&self, st: &mut PairState, pool: PoolRef) {
        let area = pool.area();
        let mode = match self.zc {
            ZeroCopy::Off => XskMode::Copy,
            ZeroCopy::On => XskMode::ZeroCopy,
            // A zero-copy driver DMAs whole chunks and refuses one that
            // crosses pages that are not contiguous for it
            // (`xp_desc_crosses_non_contig_pg`): 4 KiB pools whose
            // objects straddle pages stay in copy mode.
            ZeroCopy::Auto if area.page_bound => XskMode::Auto,
            ZeroCopy::Auto => XskMode::Copy,
        };
        if mode == XskMode::ZeroCopy && !area.page_bound {
            st.failed = Some(format!(
                "port {}: queue {}: zerocopy=on needs the pool's buffers within pages (reserve hugepages: echo 512 > /proc/sys/vm/nr_hugepages), or use zerocopy=auto",
                self.port, self.index
            ));
            return;
        }
        let cfg = XskConfig {
            mode,
            ..self.cfg.clone()
        };
        let r = Xsk::new(&cfg, pool).and_then(|x| {
            if let Some(m) = &self.map {
                m.insert(cfg.queue_id, x.fd())?;
            }
            Ok(x)
        });
        match r {
            Ok(x) => {
                self.zerocopy.store(x.zerocopy() as u64, Ordering::Relaxed);
                tracing::info!(
                    port = %self.port,
                    queue = self.index,
                    zerocopy = x.zerocopy(),
                    umem = %x.pool().name(),
                    "AF_XDP socket bound"
                );
                st.xsk = Some(x);
            }
            Err(e) => {
                let e = xsk_error(&self.port, Some(self.index), e);
                tracing::error!("{e}");
                st.failed = Some(e.to_string());
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PairState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn snapshot_stats(&self, x: &Xsk) {
        if let Ok(s) = x.stats() {
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) = s;
        }
    }

    /// Closes the socket: every buffer the kernel held goes home.
    fn close(&self) {
        let mut st = self.lock();
        if let Some(x) = st.xsk.take() {
            self.snapshot_stats(&x);
            if let Some(m) = &self.map {
                m.remove(self.cfg.queue_id);
            }
            x.close();
        }
        st.closed = true;
    }
}

impl Driver for AfXdpDriver {
    fn info(&self) -> PortInfo {
        let speed = self.iface.link().speed_mbps as u64;
        let q = (kernel_queues(&self.iface.name) - self.base).min(64) as u16;
        PortInfo {
            driver: "af_xdp",
            max_tx_queues: q,
            max_rx_queues: q,
            tx_ring_min: 64,
            tx_ring_max: 16384,
            tx_ring_align: 64,
            rx_ring_min: 64,
            rx_ring_max: 16384,
            rx_ring_align: 64,
            tx_offload_capa: 0,
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

    /// Ring sizes are powers of two (`xskq_create`); one XSK per queue
    /// pair; the XDP program and its map when the port receives.
    fn configure(&mut self, port: &str, conf: &PortConfig) -> Result<(), EthdevError> {
        for (key, n) in [
            ("tx_ring_size", conf.tx_ring_size),
            ("rx_ring_size", conf.rx_ring_size),
        ] {
            if !n.is_power_of_two() {
                return Err(EthdevError::Config {
                    port: port.to_string(),
                    key: key.into(),
                    why: format!("{n} descriptors; AF_XDP rings are powers of two (e.g. 1024)"),
                });
            }
        }
        self.link = None;
        self.want_promisc = conf.promiscuous && conf.nb_rx_queues > 0;
        let (prog, map) = if conf.nb_rx_queues > 0 {
            let p = XdpProgram::load(self.base + conf.nb_rx_queues as u32)
                .map_err(|e| xsk_error(port, None, e))?;
            let m = Arc::new(p.map());
            (Some(p), Some(m))
        } else {
            (None, None)
        };
        let n = conf.nb_tx_queues.max(conf.nb_rx_queues);
        self.pairs = (0..n)
            .map(|q| {
                Arc::new(Pair {
                    port: port.to_string(),
                    index: q,
                    cfg: XskConfig {
                        ifindex: self.iface.index as u32,
                        queue_id: self.base + q as u32,
                        mode: XskMode::Auto,
                        fill: self.fill,
                        comp: conf.tx_ring_size as u32,
                        rx: conf.rx_ring_size as u32,
                        tx: conf.tx_ring_size as u32,
                    },
                    zc: self.zc,
                    has_rx: q < conf.nb_rx_queues,
                    map: map.clone(),
                    state: Mutex::default(),
                    last: Mutex::default(),
                    tx_copied: StatCounter::new(),
                    bad_descs: StatCounter::new(),
                    zerocopy: AtomicU64::new(0),
                })
            })
            .collect();
        self.prog = prog;
        self.map = map;
        Ok(())
    }

    fn tx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn TxQueue>, EthdevError> {
        Ok(Box::new(AfXdpTxQueue {
            index: q.queue,
            stats: q.stats,
            pair: self.pairs[q.queue as usize].clone(),
            max_len: (self.iface.mtu + 14) as usize,
            ring: q.conf.tx_ring_size as usize,
            inflight: 0,
            inflight_bytes: 0,
            failure_reported: false,
            dropped: Completed::default(),
            scratch: Burst::new(),
            copy_failed_logged: false,

            iface: self.iface.clone(),
            link: CarrierPoll::new(CarrierPoll::PMD_PERIOD),
        }))
    }

    fn rx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn RxQueue>, EthdevError> {
        Ok(Box::new(AfXdpRxQueue {
            index: q.queue,
            stats: q.stats,
            pair: self.pairs[q.queue as usize].clone(),
            scratch: Burst::new(),
        }))
    }

    /// Attaches the XDP program (a BPF link: detached when it closes) and
    /// asks for promiscuous mode when configured.
    fn start(&mut self, port: &str) -> Result<(), EthdevError> {
        if !self.iface.link().up {
            tracing::warn!(
                port = %port,
                "link is down (carrier off or interface down: `ip link set {} up`)",
                self.iface.name
            );
        }
        if self.want_promisc {
            self.set_promisc(port)?;
        }
        if let Some(p) = &self.prog {
            self.link = Some(
                p.attach(self.iface.index as u32)
                    .map_err(|e| xsk_error(port, None, e))?,
            );
        }
        Ok(())
    }

    fn stop(&mut self, _port: &str) -> Result<(), EthdevError> {
        for p in &self.pairs {
            p.close();
        }
        self.link = None;
        self.promisc = None;
        Ok(())
    }

    fn carrier(&self) -> bool {
        self.iface.link().up
    }

    fn speed_mbps(&self) -> u32 {
        self.iface.link().speed_mbps
    }

    fn xstats(&self, _stats: &PortStats, v: &mut Vec<(String, u64)>) {
        let mut sum = XskStats::default();
        let (mut copied, mut bad, mut zc) = (0, 0, 0);
        for p in &self.pairs {
            {
                let st = p.lock();
                if let Some(x) = &st.xsk {
                    p.snapshot_stats(x);
                }
            }
            let s = *p.last.lock().unwrap_or_else(|e| e.into_inner());
            sum.rx_dropped += s.rx_dropped;
            sum.rx_invalid_descs += s.rx_invalid_descs;
            sum.tx_invalid_descs += s.tx_invalid_descs;
            sum.rx_ring_full += s.rx_ring_full;
            sum.rx_fill_ring_empty_descs += s.rx_fill_ring_empty_descs;
            sum.tx_ring_empty_descs += s.tx_ring_empty_descs;
            copied += p.tx_copied.get();
            bad += p.bad_descs.get();
            zc += p.zerocopy.load(Ordering::Relaxed);
        }
        for (k, n) in [
            ("xsk_rx_dropped", sum.rx_dropped),
            ("xsk_rx_invalid_descs", sum.rx_invalid_descs),
            ("xsk_tx_invalid_descs", sum.tx_invalid_descs),
            ("xsk_rx_ring_full", sum.rx_ring_full),
            ("xsk_rx_fill_ring_empty_descs", sum.rx_fill_ring_empty_descs),
            ("xsk_tx_ring_empty_descs", sum.tx_ring_empty_descs),
            ("tx_copied", copied),
            ("bad_descs", bad),
            ("zerocopy_queues", zc),
        ] {
            v.push((k.into(), n));
        }
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

impl AfXdpDriver {
    /// Promiscuous mode for the interface while started (the RX queues'
    /// `PortConfig::promiscuous`): a `PACKET_MR_PROMISC` membership on a
    /// silent AF_PACKET socket, dropped with it.
    fn set_promisc(&mut self, port: &str) -> Result<(), EthdevError> {
        let s = PacketSocket::open_silent(self.iface.index)
            .map_err(|e| EthdevError::device(port, format!("socket(AF_PACKET): {e}")))?;
        let mr = libc::packet_mreq {
            mr_ifindex: self.iface.index,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        s.set(libc::PACKET_ADD_MEMBERSHIP, &mr)
            .map_err(|e| EthdevError::device(port, format!("PACKET_MR_PROMISC: {e}")))?;
        self.promisc = Some(s);
        Ok(())
    }
}

/// TX queue `q`: the TX and completion rings of pair `q`'s socket.
pub struct AfXdpTxQueue {
    index: u16,
    stats: Arc<QueueStats>,
    pair: Arc<Pair>,
    max_len: usize,
    ring: usize,
    /// Frames (and their bytes) on the TX ring or in the kernel, not yet completed.
    inflight: usize,
    inflight_bytes: u64,
    /// The set-up failure was reported as an event.
    failure_reported: bool,
    /// Frames refused before the ring, reported by the next clean.
    dropped: Completed,
    scratch: Burst,
    copy_failed_logged: bool,
    /// The interface's carrier, re-read from sysfs at most every
    /// [`CarrierPoll::PMD_PERIOD`] (what `netif_carrier_ok` says of it).
    iface: Iface,
    link: CarrierPoll,
}

impl AfXdpTxQueue {
    #[inline(always)]
    fn drop_one(&mut self, m: Mbuf) {
        self.stats.drops.add(1);
        self.dropped.packets += 1;
        self.dropped.bytes += m.pkt_len() as u64;
    }
}

/// A frame of another pool (or a chain) copied into a buffer of the UMEM pool.
#[cold]
fn copy_into(pool: &PoolRef, m: &Mbuf) -> Option<Mbuf> {
    let mut c = pool.alloc()?;
    for s in m.segments() {
        c.extend_from_slice(s.data).ok()?;
    }
    Some(c)
}

impl TxQueue for AfXdpTxQueue {
    fn index(&self) -> u16 {
        self.index
    }

    /// Plays the part of `ndo_start_xmit` for an AF_XDP socket (user
    /// space's half of `xsk_sendmsg`): one TX descriptor per frame, in
    /// place in the UMEM, published once, then one `sendto` kick when the
    /// ring asks for it (`XDP_USE_NEED_WAKEUP`; always in copy mode).
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize {
        let pair = self.pair.clone();
        let mut st = pair.lock();
        if st.xsk.is_none() {
            if st.failed.is_none() && !st.closed {
                if pair.has_rx {
                    // The RX half binds with the lcore's pool at its first
                    // poll; until then nothing is taken.
                    return 0;
                }
                let Some(first) = pkts.front() else { return 0 };
                let pool = first.pool_ref();
                pair.bind(&mut st, pool);
            }
            if st.xsk.is_none() {
                // Set-up failed or the socket is closed: each frame dropped, counted.
                let n = pkts.len();
                while let Some(m) = pkts.pop_front() {
                    self.drop_one(m);
                }
                return n;
            }
        }
        let Some(x) = st.xsk.as_mut() else { return 0 };
        let room = x.tx_room();
        let mut took = 0;
        let mut queued = 0u32;
        while (queued as usize) < room {
            let Some(m) = pkts.pop_front() else { break };
            took += 1;
            let len = m.pkt_len();
            let tagged = m.data().len() >= 14 && m.data()[12..14] == [0x81, 0x00];
            if len < 14 || len > self.max_len + if tagged { 4 } else { 0 } {
                // The kernel would refuse it (tx_invalid_descs) and keep the buffer.
                self.drop_one(m);
                continue;
            }
            let m = if x.in_umem(&m) && m.nb_segs() == 1 && !m.is_indirect() {
                m
            } else {
                match copy_into(x.pool(), &m) {
                    Some(c) => {
                        pair.tx_copied.add(1);
                        c
                    }
                    None => {
                        if !self.copy_failed_logged {
                            self.copy_failed_logged = true;
                            tracing::warn!(
                                queue = self.index,
                                "af_xdp: a frame from another pool could not be copied into the UMEM pool (empty, or owned by another lcore): dropped and counted"
                            );
                        }
                        self.drop_one(m);
                        continue;
                    }
                }
            };
            self.stats.packets.add(1);
            self.stats.bytes.add(len as u64);
            self.inflight_bytes += len as u64;
            x.tx_push(queued, m);
            queued += 1;
        }
        if queued > 0 {
            x.tx_submit(queued);
            self.inflight += queued as usize;
            if x.tx_needs_wakeup() && x.kick_tx().is_err() {
                self.stats.errors.add(1);
            }
        }
        took
    }

    /// Plays the part of the TX completion (`xsk_tx_completed` /
    /// `xsk_destruct_skb` seen from user space): each completion-ring entry
    /// names a frame we sent; it is reported with its length and freed in
    /// bulk. Frames still on the TX ring get another kick (copy mode sends
    /// a bounded batch per `sendto`, `xsk_generic_xmit`).
    /// The interface's carrier (`/sys/class/net/IFACE/carrier` and
    /// `operstate`, what the kernel's `netif_carrier_ok` and
    /// `netif_oper_up` say), re-read every [`CarrierPoll::PMD_PERIOD`].
    fn carrier(&self) -> bool {
        self.link.get(|| Some(self.iface.link().up))
    }

    fn clean(&mut self, budget: usize) -> Completed {
        let mut done = std::mem::take(&mut self.dropped);
        if self.inflight == 0 {
            return done;
        }
        let pair = self.pair.clone();
        let mut st = pair.lock();
        let Some(x) = st.xsk.as_mut() else {
            if st.closed {
                // Closed at stop: what the kernel still held went home with
                // it, never sent: moved from packets/bytes to drops.
                let (n, b) = (self.inflight as u64, self.inflight_bytes);
                self.stats.packets.sub(n);
                self.stats.bytes.sub(b);
                self.stats.drops.add(n);
                done.packets += n as u32;
                done.bytes += b;
                self.inflight = 0;
                self.inflight_bytes = 0;
            }
            return done;
        };
        let mut bad = 0;
        let n = x.complete(
            &mut self.scratch,
            budget.min(crate::mbuf::BURST_MAX),
            &mut bad,
        );
        for m in self.scratch.iter() {
            done.bytes += m.pkt_len() as u64;
            self.inflight_bytes -= m.pkt_len() as u64;
        }
        done.packets += n as u32;
        self.inflight -= n;
        self.scratch.clear();
        if bad > 0 {
            pair.bad_descs.add(bad);
        }
        if x.tx_pending() > 0 && x.tx_needs_wakeup() && x.kick_tx().is_err() {
            self.stats.errors.add(1);
        }
        done
    }

    fn free_slots(&self) -> usize {
        self.ring - self.inflight.min(self.ring)
    }

    fn ring_size(&self) -> usize {
        self.ring
    }

    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }

    /// The socket's set-up failure (once), naming what to do.
    fn poll_event(&mut self) -> Option<PortEvent> {
        if self.failure_reported {
            return None;
        }
        let why = self.pair.lock().failed.clone()?;
        self.failure_reported = true;
        Some(PortEvent {
            queue: Some(self.index),
            kind: "af_xdp socket".into(),
            detail: why,
        })
    }
}

/// RX queue `q`: the RX and fill rings of pair `q`'s socket.
pub struct AfXdpRxQueue {
    index: u16,
    stats: Arc<QueueStats>,
    pair: Arc<Pair>,
    scratch: Burst,
}

/// Fill-ring refills go in batches of this many.
const FILL_BATCH: usize = 64;

impl RxQueue for AfXdpRxQueue {
    fn index(&self) -> u16 {
        self.index
    }

    /// Plays the part of user space's half of `xsk_rcv`: takes the frames
    /// the kernel wrote into our fill buffers (the mbufs themselves, their
    /// data at `XDP_PACKET_HEADROOM`), then refills the fill ring from the
    /// pool and wakes the driver if it sleeps (`XDP_RING_NEED_WAKEUP`).
    fn rx_burst(&mut self, pool: &mut Mempool, out: &mut Burst, max: usize) -> usize {
        let pair = self.pair.clone();
        let mut st = pair.lock();
        if st.xsk.is_none() {
            if st.failed.is_some() || st.closed {
                return 0;
            }
            pair.bind(&mut st, pool.pool_ref());
        }
        let Some(x) = st.xsk.as_mut() else { return 0 };
        let mut bad = 0;
        let before = out.len();
        let got = x.recv(out, max, &mut bad);
        let bytes: usize = out.as_slice()[before..].iter().map(|m| m.pkt_len()).sum();
        self.stats.packets.add(got as u64);
        self.stats.bytes.add(bytes as u64);
        if bad > 0 {
            self.stats.errors.add(bad);
            pair.bad_descs.add(bad);
        }
        let room = x.fill_room();
        if room >= FILL_BATCH {
            let same = x.pool().area().id == pool.area().id;
            let want = room.min(self.scratch.room());
            if same {
                let _ = pool.alloc_bulk(&mut self.scratch, want)
                    || pool.alloc_bulk(&mut self.scratch, FILL_BATCH);
            } else {
                while self.scratch.len() < want {
                    let Some(m) = x.pool().alloc() else { break };
                    let _ = self.scratch.push(m);
                }
            }
            x.fill(&mut self.scratch);
            self.scratch.clear();
        }
        if x.fill_needs_wakeup() {
            x.wake_rx();
        }
        got
    }

    fn stats(&self) -> Arc<QueueStats> {
        self.stats.clone()
    }

    /// The XDP socket once bound: `xsk_poll` makes it readable while its
    /// RX ring holds a descriptor.
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        self.pair.lock().xsk.as_ref().map(|x| x.fd())
    }

    /// Closes the socket (`ndo_stop`): only then does the kernel let go of
    /// the buffers on the fill ring and in its driver, which go home.
    fn stop(&mut self) {
        self.pair.close();
    }
}
