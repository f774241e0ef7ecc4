//! The ethdev framework: the bookkeeping every port needs, done once (DPDK's
//! `lib/ethdev/rte_ethdev.c`, which validates a configuration and each queue
//! set-up for every PMD before calling the driver's ops).
//!
//! A driver implements [`Driver`] — only what differs: what it can do, how
//! a queue is set up, start/stop hooks, its own counters. [`EthDev`] wraps
//! it into a [`Port`]: it validates each [`PortConfig`] against the
//! driver's [`PortInfo`] (`rte_eth_dev_configure`), owns the queue slots so
//! each queue is handed out once (`rte_eth_tx_queue_setup` /
//! `rte_eth_rx_queue_setup`), owns the per-queue counters and sums them
//! (`rte_eth_stats_get`, `rte_eth_xstats_get`), and keeps the link state
//! (`rte_eth_dev_start` / `rte_eth_dev_stop`, `rte_eth_link_get`).

use super::*;
use std::sync::Arc;

/// What the framework hands a driver to set up one queue.
#[derive(Debug)]
pub struct QueueSetup<'a> {
    /// The port's name (its spec), for messages.
    pub port: &'a str,
    pub queue: u16,
    /// Descriptors, validated against the driver's limits.
    pub ring_size: u16,
    /// The queue's counters; the framework sums them into the port's.
    pub stats: Arc<QueueStats>,
    /// The whole validated configuration.
    pub conf: &'a PortConfig,
    /// The port is started (a queue set up on a running port is enabled at once).
    pub started: bool,
}

/// What differs per driver (DPDK's `eth_dev_ops`, the part a PMD fills).
pub trait Driver: Send + 'static {
    /// The link is reported while the port is stopped too: a NIC's PHY
    /// negotiates from initialisation on, and DPDK's `rte_eth_link_get`
    /// reads it whatever the port state. Software ports: up only while started.
    const LINK_WHILE_STOPPED: bool = false;
    /// `start` is refused before `configure` (DPDK `rte_eth_dev_start`:
    /// "not configured"); software ports may start with their defaults.
    const START_NEEDS_CONFIGURE: bool = false;

    /// Capabilities and limits (`dev_infos_get`).
    fn info(&self) -> PortInfo;
    fn mac(&self) -> MacAddr;
    /// After the framework validated `conf` (`dev_configure`): per-configure
    /// state, e.g. per-queue counters of the driver's own.
    fn configure(&mut self, _port: &str, _conf: &PortConfig) -> Result<(), EthdevError> {
        Ok(())
    }
    /// `tx_queue_setup`: the queue, once per queue per configure.
    fn tx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn TxQueue>, EthdevError>;
    /// `rx_queue_setup`: the queue, once per queue per configure.
    fn rx_queue_setup(&mut self, q: QueueSetup<'_>) -> Result<Box<dyn RxQueue>, EthdevError>;
    /// `dev_start`.
    fn start(&mut self, _port: &str) -> Result<(), EthdevError> {
        Ok(())
    }
    /// `dev_stop` (flush what the driver buffers).
    fn stop(&mut self, _port: &str) -> Result<(), EthdevError> {
        Ok(())
    }
    /// Link speed while started, Mbit/s (0: no line rate).
    fn speed_mbps(&self) -> u32 {
        0
    }
    /// Duplex of the link.
    fn full_duplex(&self) -> bool {
        true
    }
    /// Carrier (`netif_carrier_ok`): the link is up while started and this
    /// holds. Software ports always have it; a kernel interface reports its own.
    fn carrier(&self) -> bool {
        true
    }
    /// Device counters folded into the framework's sum of the queue
    /// counters (`stats_get`: e.g. frames the NIC missed for want of RX
    /// descriptors, which no queue saw).
    fn stats(&self, _stats: &mut PortStats) {}
    /// The driver's counters, appended to the framework's (`xstats_get`).
    fn xstats(&self, _stats: &PortStats, _out: &mut Vec<(String, u64)>) {}
    /// Events the device raised since the last call (MDD, link changes, …).
    fn events(&mut self) -> Vec<PortEvent> {
        Vec::new()
    }
}

/// A driver's carrier read, rate-limited for [`TxQueue::carrier`]: the
/// netdev layer asks with the watchdog (every few hundred polls), and a
/// register, admin-queue or sysfs read is done at most once per period —
/// Linux learns of a link change from an interrupt and its watchdog task
/// (`igb_watchdog_task`, every 2 s); between reads the last answer stands.
/// Never on the per-packet path.
#[derive(Debug)]
pub struct CarrierPoll {
    tsc: crate::eal::tsc::Tsc,
    period: u64,
    next: std::cell::Cell<u64>,
    up: std::cell::Cell<bool>,
}

impl CarrierPoll {
    /// The period the PMDs poll their link at from a TX queue: a tenth of
    /// a second (a register or admin-queue read that often costs nothing;
    /// Linux reacts to the link interrupt at once, so 2 s would be slow).
    pub const PMD_PERIOD: std::time::Duration = std::time::Duration::from_millis(100);

    /// A poll that re-reads at most once per `period`; the first call reads.
    pub fn new(period: std::time::Duration) -> CarrierPoll {
        let tsc = crate::eal::tsc::Tsc::global();
        CarrierPoll {
            tsc,
            period: tsc.ns_to_cycles(period.as_nanos() as u64),
            next: std::cell::Cell::new(0),
            up: std::cell::Cell::new(true),
        }
    }

    /// The carrier: `read()` when the period has passed, else the last
    /// value; `read` returning `None` (the device could not be asked just
    /// now, e.g. its control path is busy) keeps the last value too.
    pub fn get(&self, read: impl FnOnce() -> Option<bool>) -> bool {
        let now = self.tsc.now();
        if now >= self.next.get() {
            if let Some(up) = read() {
                self.up.set(up);
            }
            self.next.set(now.saturating_add(self.period));
        }
        self.up.get()
    }
}

/// A port: one [`Driver`] plus the framework's bookkeeping.
pub struct EthDev<D: Driver> {
    name: String,
    driver: D,
    conf: Option<PortConfig>,
    tx: Vec<Arc<QueueStats>>,
    rx: Vec<Arc<QueueStats>>,
    txs: QueueSlots,
    rxs: QueueSlots,
    started: bool,
}

impl<D: Driver> EthDev<D> {
    /// A port called `name` (its spec) driven by `driver`, not yet configured.
    pub fn with_driver(name: &str, driver: D) -> EthDev<D> {
        EthDev {
            name: name.to_string(),
            driver,
            conf: None,
            tx: Vec::new(),
            rx: Vec::new(),
            txs: QueueSlots::new(0),
            rxs: QueueSlots::new(0),
            started: false,
        }
    }

    pub fn driver(&self) -> &D {
        &self.driver
    }

    pub fn driver_mut(&mut self) -> &mut D {
        &mut self.driver
    }

    /// The configuration in force, once configured.
    pub fn config(&self) -> Option<&PortConfig> {
        self.conf.as_ref()
    }

    /// Records an RSS set-up the driver applied after configure (a RETA
    /// or key update), so [`EthDev::config`] shows the one in force.
    pub fn set_rss(&mut self, rss: RssConf) {
        if let Some(c) = self.conf.as_mut() {
            c.rss = Some(rss);
        }
    }

    pub fn is_started(&self) -> bool {
        self.started
    }

    /// `rte_eth_tx_queue_setup` with the driver's own queue type: the
    /// framework checks the port is configured and hands queue `q` out
    /// once, then `setup` builds it (a PMD's tests and benchmarks want the
    /// concrete type; [`Port::tx_queue`] boxes it).
    pub fn setup_tx_with<T>(
        &mut self,
        q: u16,
        setup: impl FnOnce(&mut D, QueueSetup<'_>) -> Result<T, EthdevError>,
    ) -> Result<T, EthdevError> {
        let Some(conf) = self.conf.as_ref() else {
            return Err(not_configured(&self.name, "tx queue", q));
        };
        self.txs.take(&self.name, "tx queue", q)?;
        setup(
            &mut self.driver,
            QueueSetup {
                port: &self.name,
                queue: q,
                ring_size: conf.tx_ring_size,
                stats: self.tx[q as usize].clone(),
                conf,
                started: self.started,
            },
        )
    }

    /// `rte_eth_rx_queue_setup` with the driver's own queue type (see
    /// [`EthDev::setup_tx_with`]).
    pub fn setup_rx_with<T>(
        &mut self,
        q: u16,
        setup: impl FnOnce(&mut D, QueueSetup<'_>) -> Result<T, EthdevError>,
    ) -> Result<T, EthdevError> {
        let Some(conf) = self.conf.as_ref() else {
            return Err(not_configured(&self.name, "rx queue", q));
        };
        self.rxs.take(&self.name, "rx queue", q)?;
        setup(
            &mut self.driver,
            QueueSetup {
                port: &self.name,
                queue: q,
                ring_size: conf.rx_ring_size,
                stats: self.rx[q as usize].clone(),
                conf,
                started: self.started,
            },
        )
    }
}

/// The error for a queue asked for before `configure`.
fn not_configured(port: &str, what: &'static str, queue: u16) -> EthdevError {
    EthdevError::Queue {
        port: port.to_string(),
        what,
        queue,
        why: "cannot be set up before the port is configured (call configure first)".into(),
    }
}

/// A driver crate's port type that holds an [`EthDev`] in a field is a
/// [`Port`] through it: `port_via_ethdev!(IcePort<R: RegisterSpace>, dev);`
/// writes the forwarding impl once, so each PMD's port type keeps only its
/// own inherent methods (bring-up, model handles).
#[macro_export]
macro_rules! port_via_ethdev {
    ($ty:ident < $p:ident : $bound:path >, $field:ident) => {
        impl<$p: $bound> $crate::ethdev::Port for $ty<$p> {
            fn name(&self) -> &str {
                $crate::ethdev::Port::name(&self.$field)
            }
            fn info(&self) -> $crate::ethdev::PortInfo {
                $crate::ethdev::Port::info(&self.$field)
            }
            fn configure(
                &mut self,
                conf: &$crate::ethdev::PortConfig,
            ) -> Result<(), $crate::ethdev::EthdevError> {
                $crate::ethdev::Port::configure(&mut self.$field, conf)
            }
            fn tx_queue(
                &mut self,
                q: u16,
            ) -> Result<Box<dyn $crate::ethdev::TxQueue>, $crate::ethdev::EthdevError> {
                $crate::ethdev::Port::tx_queue(&mut self.$field, q)
            }
            fn rx_queue(
                &mut self,
                q: u16,
            ) -> Result<Box<dyn $crate::ethdev::RxQueue>, $crate::ethdev::EthdevError> {
                $crate::ethdev::Port::rx_queue(&mut self.$field, q)
            }
            fn start(&mut self) -> Result<(), $crate::ethdev::EthdevError> {
                $crate::ethdev::Port::start(&mut self.$field)
            }
            fn stop(&mut self) -> Result<(), $crate::ethdev::EthdevError> {
                $crate::ethdev::Port::stop(&mut self.$field)
            }
            fn link(&self) -> $crate::ethdev::LinkStatus {
                $crate::ethdev::Port::link(&self.$field)
            }
            fn mac(&self) -> $crate::ethdev::MacAddr {
                $crate::ethdev::Port::mac(&self.$field)
            }
            fn stats(&self) -> $crate::ethdev::PortStats {
                $crate::ethdev::Port::stats(&self.$field)
            }
            fn xstats(&self) -> Vec<(String, u64)> {
                $crate::ethdev::Port::xstats(&self.$field)
            }
            fn events(&mut self) -> Vec<$crate::ethdev::PortEvent> {
                $crate::ethdev::Port::events(&mut self.$field)
            }
        }
    };
}

impl<D: Driver> Port for EthDev<D> {
    fn name(&self) -> &str {
        &self.name
    }
    fn info(&self) -> PortInfo {
        self.driver.info()
    }
    /// Plays the part of `rte_eth_dev_configure`: validated once, here, for
    /// every driver; then the driver's hook; then fresh queue slots and counters.
    fn configure(&mut self, conf: &PortConfig) -> Result<(), EthdevError> {
        if self.started {
            // rte_eth_dev_configure: -EBUSY on a started port.
            return Err(EthdevError::Config {
                port: self.name.clone(),
                key: "configure".into(),
                why: "the port is started; stop it first".into(),
            });
        }
        conf.validate(&self.name, &self.driver.info())?;
        self.driver.configure(&self.name, conf)?;
        self.tx = (0..conf.nb_tx_queues).map(|_| Arc::default()).collect();
        self.rx = (0..conf.nb_rx_queues).map(|_| Arc::default()).collect();
        self.txs = QueueSlots::new(conf.nb_tx_queues);
        self.rxs = QueueSlots::new(conf.nb_rx_queues);
        self.conf = Some(conf.clone());
        Ok(())
    }
    /// Plays the part of `rte_eth_tx_queue_setup`: each queue once.
    fn tx_queue(&mut self, q: u16) -> Result<Box<dyn TxQueue>, EthdevError> {
        self.setup_tx_with(q, |d, s| d.tx_queue_setup(s))
    }
    /// Plays the part of `rte_eth_rx_queue_setup`: each queue once.
    fn rx_queue(&mut self, q: u16) -> Result<Box<dyn RxQueue>, EthdevError> {
        self.setup_rx_with(q, |d, s| d.rx_queue_setup(s))
    }
    fn start(&mut self) -> Result<(), EthdevError> {
        if D::START_NEEDS_CONFIGURE && self.conf.is_none() {
            return Err(EthdevError::Device {
                port: self.name.clone(),
                why: "not configured: call configure() before start()".into(),
            });
        }
        self.driver.start(&self.name)?;
        self.started = true;
        Ok(())
    }
    fn stop(&mut self) -> Result<(), EthdevError> {
        self.started = false;
        self.driver.stop(&self.name)
    }
    fn link(&self) -> LinkStatus {
        let up = (self.started || D::LINK_WHILE_STOPPED) && self.driver.carrier();
        LinkStatus {
            up,
            speed_mbps: if up { self.driver.speed_mbps() } else { 0 },
            full_duplex: self.driver.full_duplex(),
        }
    }
    fn mac(&self) -> MacAddr {
        self.driver.mac()
    }
    fn stats(&self) -> PortStats {
        let mut s = PortStats::from_queues(&self.tx, &self.rx);
        self.driver.stats(&mut s);
        s
    }
    fn xstats(&self) -> Vec<(String, u64)> {
        let s = self.stats();
        let mut v = s.xstats();
        self.driver.xstats(&s, &mut v);
        v
    }
    fn events(&mut self) -> Vec<PortEvent> {
        self.driver.events()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_framework_validates_hands_out_once_and_keeps_link_state() {
        for spec in ["null", "ring:framework-t"] {
            let mut p = Registry::with_builtins().open(spec).unwrap();
            let e = p.tx_queue(0).err().unwrap().to_string();
            assert!(e.contains("before the port is configured"), "{spec}: {e}");
            let bad = PortConfig {
                nb_tx_queues: 65,
                ..Default::default()
            };
            let e = p.configure(&bad).err().unwrap().to_string();
            assert!(
                e.contains("tx_queues") && e.contains("1..=64"),
                "{spec}: {e}"
            );
            p.configure(&PortConfig::default()).unwrap();
            let _q = p.tx_queue(0).unwrap();
            let e = p.tx_queue(0).err().unwrap().to_string();
            assert!(e.contains("already handed out"), "{spec}: {e}");
            assert!(p.tx_queue(1).is_err(), "{spec}: only one configured");
            assert!(!p.link().up);
            p.start().unwrap();
            assert!(p.link().up);
            p.stop().unwrap();
            assert!(!p.link().up);
            assert_eq!(p.stats().tx_queues.len(), 1);
        }
    }
}
