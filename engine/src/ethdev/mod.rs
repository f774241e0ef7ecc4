//! The driver interface, in the spirit of DPDK's ethdev: [`Port`], [`TxQueue`],
//! [`RxQueue`], device spec strings, the driver [`Registry`], port statistics,
//! and the software ports `null`, `pcap` and `ring`.
//!
//! The transmit contract (Linux `ndo_start_xmit` with `xmit_more`): one call to
//! [`TxQueue::tx_burst`] writes descriptors for every packet it accepts and rings
//! the doorbell once, at the end. Accepted mbufs belong to the queue until the
//! device reports them complete; [`TxQueue::clean`] frees them in bulk and
//! returns the (packets, bytes) completed — the figures BQL's
//! `netdev_tx_completed_queue` consumes.
//!
//! Every packet `tx_burst` takes is reported by `clean` exactly once, with
//! the length it had when offered (what the netdev layer gave
//! `netdev_tx_sent_queue`): sent, or dropped by the queue and counted once in
//! its `drops` (or `errors`). A packet taken and never reported holds its
//! bytes in BQL's in-flight count for ever and stops the queue.

pub mod af_packet;
pub mod af_xdp;
mod framework;
pub mod lo;
pub mod null;
pub mod offload;
pub mod pcap;
mod registry;
pub mod ring;
pub mod rss;
mod spec;
mod stats;
pub mod wrap;

pub use framework::{CarrierPoll, Driver, EthDev, QueueSetup};
pub use registry::{DriverInfo, Registry, WrapperInfo};
pub use rss::{RssConf, RssHashTypes, RssType, Toeplitz};
pub use spec::DevSpec;
pub use stats::{PortStats, QueueCounters, QueueStats, StatCounter};

use crate::mbuf::{Burst, Mempool};
use std::fmt;

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    /// A locally administered unicast address derived from `seed`.
    pub fn local(seed: u32) -> MacAddr {
        let b = seed.to_be_bytes();
        MacAddr([0x02, 0x00, b[0], b[1], b[2], b[3]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<MacAddr, String> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(format!(
                "'{s}' is not a MAC address (expected aa:bb:cc:dd:ee:ff)"
            ));
        }
        let mut m = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            m[i] = u8::from_str_radix(p, 16)
                .map_err(|_| format!("'{s}' is not a MAC address (bad byte '{p}')"))?;
        }
        Ok(MacAddr(m))
    }
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct LinkStatus {
    pub up: bool,
    /// Mbit/s; 0 when down, or when the link has no line rate (software
    /// ports, a device model at unlimited speed).
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// What a port can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    pub driver: &'static str,
    pub max_tx_queues: u16,
    pub max_rx_queues: u16,
    /// Smallest, largest and granularity of ring sizes (descriptors).
    pub tx_ring_min: u16,
    pub tx_ring_max: u16,
    pub tx_ring_align: u16,
    pub rx_ring_min: u16,
    pub rx_ring_max: u16,
    pub rx_ring_align: u16,
    /// TX offloads the hardware does ([`crate::mbuf::ol`] bits).
    pub tx_offload_capa: u32,
    /// Largest frame (without FCS) a single packet may have.
    pub max_frame: u32,
    /// Line rate, bit/s, for pacing and "% of line"; 0 = unbounded (software).
    pub line_rate_bps: u64,
    /// Entries of the RSS redirection table (`reta_size` of DPDK's
    /// `rte_eth_dev_info`); 0 = the port has no receive-side scaling.
    pub reta_size: u16,
    /// The packet types its RSS hashes (`flow_type_rss_offloads`).
    pub rss_hash_types: RssHashTypes,
}

impl PortInfo {
    /// A permissive description for software ports.
    pub fn software(driver: &'static str) -> PortInfo {
        PortInfo {
            driver,
            max_tx_queues: 64,
            max_rx_queues: 64,
            tx_ring_min: 1,
            tx_ring_max: 32768,
            tx_ring_align: 1,
            rx_ring_min: 1,
            rx_ring_max: 32768,
            rx_ring_align: 1,
            tx_offload_capa: 0,
            max_frame: 65535,
            line_rate_bps: 0,
            reta_size: 0,
            rss_hash_types: RssHashTypes::NONE,
        }
    }
}

/// How a port is to be set up (DPDK `rte_eth_conf` + queue setup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    pub nb_tx_queues: u16,
    pub nb_rx_queues: u16,
    pub tx_ring_size: u16,
    pub rx_ring_size: u16,
    /// Requested TX offloads ([`crate::mbuf::ol`] bits); must be a subset of the capabilities.
    pub tx_offloads: u32,
    pub promiscuous: bool,
    /// Receive-side scaling (DPDK `rx_adv_conf.rss_conf` with
    /// `RTE_ETH_MQ_RX_RSS`): `None` = every frame to RX queue 0.
    pub rss: Option<RssConf>,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            nb_tx_queues: 1,
            nb_rx_queues: 1,
            tx_ring_size: 1024,
            rx_ring_size: 1024,
            tx_offloads: 0,
            promiscuous: true,
            rss: None,
        }
    }
}

impl PortConfig {
    /// Checks the request against a port's capabilities; the error names the
    /// setting and what the port allows.
    pub fn validate(&self, port: &str, info: &PortInfo) -> Result<(), EthdevError> {
        let bad = |key: &str, why: String| EthdevError::Config {
            port: port.to_string(),
            key: key.to_string(),
            why,
        };
        if self.nb_tx_queues == 0 || self.nb_tx_queues > info.max_tx_queues {
            return Err(bad(
                "tx_queues",
                format!(
                    "{} requested; this port has 1..={}",
                    self.nb_tx_queues, info.max_tx_queues
                ),
            ));
        }
        if self.nb_rx_queues > info.max_rx_queues {
            return Err(bad(
                "rx_queues",
                format!(
                    "{} requested; this port has 0..={}",
                    self.nb_rx_queues, info.max_rx_queues
                ),
            ));
        }
        let ring_ok = |n: u16, min: u16, max: u16, al: u16| {
            n >= min && n <= max && n.is_multiple_of(al.max(1))
        };
        if !ring_ok(
            self.tx_ring_size,
            info.tx_ring_min,
            info.tx_ring_max,
            info.tx_ring_align,
        ) {
            return Err(bad(
                "tx_ring_size",
                format!(
                    "{} descriptors; {} needs {}..={} in multiples of {}",
                    self.tx_ring_size,
                    info.driver,
                    info.tx_ring_min,
                    info.tx_ring_max,
                    info.tx_ring_align
                ),
            ));
        }
        if self.nb_rx_queues > 0
            && !ring_ok(
                self.rx_ring_size,
                info.rx_ring_min,
                info.rx_ring_max,
                info.rx_ring_align,
            )
        {
            return Err(bad(
                "rx_ring_size",
                format!(
                    "{} descriptors; {} needs {}..={} in multiples of {}",
                    self.rx_ring_size,
                    info.driver,
                    info.rx_ring_min,
                    info.rx_ring_max,
                    info.rx_ring_align
                ),
            ));
        }
        let missing = self.tx_offloads & !info.tx_offload_capa;
        if missing != 0 {
            return Err(bad(
                "tx_offloads",
                format!(
                    "{} does not offer {} (it offers {}); compute them in software instead",
                    info.driver,
                    offload_names(missing),
                    offload_names(info.tx_offload_capa)
                ),
            ));
        }
        if let Some(rss) = &self.rss {
            rss.validate(
                port,
                info.driver,
                info.reta_size,
                info.rss_hash_types,
                self.nb_rx_queues,
            )?;
        }
        Ok(())
    }
}

/// Human names of offload bits.
pub fn offload_names(bits: u32) -> String {
    use crate::mbuf::ol;
    let names = [
        (ol::TX_IP_CKSUM, "ipv4-cksum"),
        (ol::TX_UDP_CKSUM, "udp-cksum"),
        (ol::TX_TCP_CKSUM, "tcp-cksum"),
        (ol::TX_VLAN, "vlan-insert"),
        (ol::TX_TSO, "tso"),
        (ol::TX_TIMESTAMP, "timestamp"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(",")
    }
}

/// Packets and bytes a queue reports complete (for BQL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Completed {
    pub packets: u32,
    pub bytes: u64,
}

/// Something a queue or port reports outside the data path (e.g. an ice MDD event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortEvent {
    pub queue: Option<u16>,
    pub kind: String,
    pub detail: String,
}

/// A transmit queue, owned by exactly one lcore.
pub trait TxQueue: Send {
    /// Queue index on its port.
    fn index(&self) -> u16;

    /// Plays the part of `ndo_start_xmit` for a whole `xmit_more` batch: takes
    /// packets from the front of `pkts` while the ring has room, writes their
    /// descriptors and rings the doorbell once. Returns how many it took; the
    /// rest stay in `pkts` (the caller requeues them). A packet the queue
    /// cannot send (malformed for the device) is taken, freed, counted in
    /// `drops`, and reported by the next [`TxQueue::clean`] like a completed
    /// one (Linux drivers return `NETDEV_TX_OK` after `dev_kfree_skb_any`).
    fn tx_burst(&mut self, pkts: &mut Burst) -> usize;

    /// Plays the part of the driver's TX completion (`igb_clean_tx_irq`,
    /// `ice_clean_tx_irq`): reclaims up to `budget` completed packets, frees
    /// their mbufs in bulk, and reports what completed — plus every packet
    /// dropped since the last call, each once, with its offered length.
    fn clean(&mut self, budget: usize) -> Completed;

    /// Descriptor slots free right now (what `maybe_stop_tx` checks).
    fn free_slots(&self) -> usize;

    /// Ring size in descriptors.
    fn ring_size(&self) -> usize;

    /// Shared counters (readable from any thread).
    fn stats(&self) -> std::sync::Arc<QueueStats>;

    /// A data-path event (queue disabled by the device, …), if any.
    fn poll_event(&mut self) -> Option<PortEvent> {
        None
    }

    /// Plays the part of the queue half of `ndo_tx_timeout` (igb's
    /// `igb_reset_task` → `igb_clean_tx_ring` + `igb_configure_tx_ring`):
    /// called by the TX watchdog when completions stopped while packets
    /// were in flight. The driver stops the queue, reports what the device
    /// completed, frees every packet still on the ring — each moved from
    /// `packets`/`bytes` to `drops` in its stats, as it was never sent — and
    /// re-initialises the ring so traffic resumes.
    ///
    /// Returns every packet reported by this call (completed or dropped,
    /// each once, with its offered length, as [`TxQueue::clean`] does); a
    /// packet the queue could not reclaim stays in flight and is reported by
    /// a later `clean`. `None` (the default): the driver cannot reset a
    /// queue; the netdev layer then reports the timeout and completes the
    /// packets in flight as dropped itself.
    fn reset(&mut self) -> Option<Completed> {
        None
    }

    /// Carrier as the driver sees it under this queue (`netif_carrier_ok`):
    /// false while the link is down. The netdev layer polls it with the
    /// watchdog ([`crate::netdev::NetdevQueue::carrier_poll`]) and stops the
    /// queue while it is false (`netif_carrier_off` → `dev_deactivate`).
    /// The default: always up.
    fn carrier(&self) -> bool {
        true
    }

    /// TX offloads this queue performs as configured ([`crate::mbuf::ol`]
    /// bits, the queue's `dev->features`): without `TX_TSO` the netdev
    /// layer segments TCP super-segments in software first
    /// (`netif_needs_gso`). The default: none.
    fn tx_offloads(&self) -> u32 {
        0
    }
}

/// A receive queue, owned by exactly one lcore.
pub trait RxQueue: Send {
    fn index(&self) -> u16;

    /// Moves up to `max` received packets to the back of `out`, refilling the
    /// ring from `pool`. Returns how many arrived.
    fn rx_burst(&mut self, pool: &mut Mempool, out: &mut Burst, max: usize) -> usize;

    fn stats(&self) -> std::sync::Arc<QueueStats>;

    /// The queue's event fd for interrupt mode ([`crate::eal::wait`]):
    /// readable (`POLLIN`) while a packet waits to be taken, so an idle
    /// lcore may sleep in `poll(2)` instead of spinning — DPDK's
    /// `rte_eth_dev_rx_intr_ctl_q_get_fd`. `None` (the default) for queues
    /// that can only be polled (device models, software rings).
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }

    /// Plays the part of `igb_clean_rx_ring` / `ice_clean_rx_ring` at
    /// `ndo_stop`: stops the queue and returns every buffer posted on its
    /// ring to its pool, so a pool count taken afterwards sees them home.
    /// The next [`RxQueue::rx_burst`] re-arms the ring. Queues that post no
    /// buffers (software ports) have nothing to do.
    fn stop(&mut self) {}
}

/// A network port: configure, hand out queues, start/stop, report.
pub trait Port: Send {
    /// The spec string it was opened with.
    fn name(&self) -> &str;

    fn info(&self) -> PortInfo;

    /// Applies a configuration (before start). Validates against [`PortInfo`].
    fn configure(&mut self, conf: &PortConfig) -> Result<(), EthdevError>;

    /// Sets up TX queue `q` and hands it out (once per queue per configure).
    fn tx_queue(&mut self, q: u16) -> Result<Box<dyn TxQueue>, EthdevError>;

    /// Sets up RX queue `q` and hands it out (once per queue per configure).
    fn rx_queue(&mut self, q: u16) -> Result<Box<dyn RxQueue>, EthdevError>;

    fn start(&mut self) -> Result<(), EthdevError>;

    fn stop(&mut self) -> Result<(), EthdevError>;

    fn link(&self) -> LinkStatus;

    fn mac(&self) -> MacAddr;

    /// Per-queue and total counters.
    fn stats(&self) -> PortStats;

    /// Named extended statistics (like `ethtool -S`).
    fn xstats(&self) -> Vec<(String, u64)> {
        self.stats().xstats()
    }

    /// Events raised since the last call (MDD, link changes, …).
    fn events(&mut self) -> Vec<PortEvent> {
        Vec::new()
    }
}

/// ethdev errors; each names the port or spec and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EthdevError {
    #[error("unknown driver '{driver}' in device spec '{spec}'; known drivers: {known}")]
    UnknownDriver {
        spec: String,
        driver: String,
        known: String,
    },
    #[error("bad device spec '{spec}': {why}")]
    BadSpec { spec: String, why: String },
    #[error("port {port}: {key}: {why}")]
    Config {
        port: String,
        key: String,
        why: String,
    },
    #[error("port {port}: {path}: {source}")]
    Io {
        port: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("port {port}: {why}")]
    Device { port: String, why: String },
    #[error("port {port}: {what} {queue} {why}")]
    Queue {
        port: String,
        what: &'static str,
        queue: u16,
        why: String,
    },
    #[error("driver '{0}' is already registered")]
    Duplicate(String),
}

impl EthdevError {
    pub(crate) fn device(port: &str, why: impl Into<String>) -> EthdevError {
        EthdevError::Device {
            port: port.to_string(),
            why: why.into(),
        }
    }
}

/// Common bookkeeping for handing out each configured queue once.
#[derive(Debug, Default, Clone)]
pub struct QueueSlots {
    taken: Vec<bool>,
}

impl QueueSlots {
    pub fn new(n: u16) -> QueueSlots {
        QueueSlots {
            taken: vec![false; n as usize],
        }
    }
    /// Marks queue `q` as handed out; errors when out of range or taken.
    pub fn take(&mut self, port: &str, what: &'static str, q: u16) -> Result<(), EthdevError> {
        let n = self.taken.len();
        match self.taken.get_mut(q as usize) {
            None => Err(EthdevError::Queue {
                port: port.to_string(),
                what,
                queue: q,
                why: format!("does not exist: the port is configured with {n} (raise the queue count in configure)"),
            }),
            Some(true) => Err(EthdevError::Queue {
                port: port.to_string(),
                what,
                queue: q,
                why: "was already handed out: each queue has exactly one owning lcore".into(),
            }),
            Some(t) => {
                *t = true;
                Ok(())
            }
        }
    }
}
