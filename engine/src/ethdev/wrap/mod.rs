//! Ports that compose: layers that wrap any port's queues, chained in front
//! of a spec with `+` (smoltcp's `phy` middleware — `PcapWriter`, `Tracer`,
//! `FaultInjector` — each owning an `inner` device).
//!
//! * [`tap`] — `tap:PATH+INNER`: every frame the inner port transmits or
//!   receives is appended to a nanosecond pcap; the inner port sees the same
//!   packets, unchanged.
//! * [`trace`] — `trace+INNER`: every frame logged at `tracing` debug.
//! * [`fault`] — `fault:drop=R,…+INNER`: seeded drops, reordering,
//!   corruption, refusals, delay, stalled completions and link flaps on TX;
//!   duplicates and bad-FCS frames on RX; each counted in xstats.
//!
//! A wrapper changes nothing about the port's set-up: [`Wrapped`] forwards
//! configure/start/stop/link/stats to the inner port and wraps each queue it
//! hands out. A wrapper that has nothing to do costs one indirect call and a
//! branch per burst (`perf/src/bin/wrap_cost.rs`).

pub mod fault;
pub mod tap;
pub mod trace;

use super::*;

/// What a wrapper adds to a port: wrapped queues and its counters.
pub(crate) trait Layer: Send + 'static {
    /// Called after the inner port accepted `conf`.
    fn configure(&mut self, _conf: &PortConfig) -> Result<(), EthdevError> {
        Ok(())
    }
    /// The link as seen through the layer (a flapping link reports carrier
    /// down part of the time); by default the inner port's.
    fn link(&self, inner: LinkStatus) -> LinkStatus {
        inner
    }
    fn wrap_tx(&mut self, port: &str, inner: Box<dyn TxQueue>) -> Box<dyn TxQueue>;
    fn wrap_rx(&mut self, port: &str, inner: Box<dyn RxQueue>) -> Box<dyn RxQueue>;
    /// Appends the layer's named counters.
    fn xstats(&self, _out: &mut Vec<(String, u64)>) {}
    /// At port stop (flush a capture).
    fn stop(&mut self, _port: &str) -> Result<(), EthdevError> {
        Ok(())
    }
}

/// A port wrapped in a layer.
pub(crate) struct Wrapped<L: Layer> {
    name: String,
    inner: Box<dyn Port>,
    layer: L,
}

impl<L: Layer> Wrapped<L> {
    pub(crate) fn boxed(full: &str, inner: Box<dyn Port>, layer: L) -> Box<dyn Port> {
        Box::new(Wrapped {
            name: full.to_string(),
            inner,
            layer,
        })
    }
}

impl<L: Layer> Port for Wrapped<L> {
    fn name(&self) -> &str {
        &self.name
    }
    fn info(&self) -> PortInfo {
        self.inner.info()
    }
    fn configure(&mut self, conf: &PortConfig) -> Result<(), EthdevError> {
        self.inner.configure(conf)?;
        self.layer.configure(conf)
    }
    fn tx_queue(&mut self, q: u16) -> Result<Box<dyn TxQueue>, EthdevError> {
        let inner = self.inner.tx_queue(q)?;
        Ok(self.layer.wrap_tx(&self.name, inner))
    }
    fn rx_queue(&mut self, q: u16) -> Result<Box<dyn RxQueue>, EthdevError> {
        let inner = self.inner.rx_queue(q)?;
        Ok(self.layer.wrap_rx(&self.name, inner))
    }
    fn start(&mut self) -> Result<(), EthdevError> {
        self.inner.start()
    }
    fn stop(&mut self) -> Result<(), EthdevError> {
        let r = self.inner.stop();
        self.layer.stop(&self.name)?;
        r
    }
    fn link(&self) -> LinkStatus {
        self.layer.link(self.inner.link())
    }
    fn mac(&self) -> MacAddr {
        self.inner.mac()
    }
    fn stats(&self) -> PortStats {
        self.inner.stats()
    }
    fn xstats(&self) -> Vec<(String, u64)> {
        let mut v = self.inner.xstats();
        self.layer.xstats(&mut v);
        v
    }
    fn events(&mut self) -> Vec<PortEvent> {
        self.inner.events()
    }
}

/// The builtin wrappers.
pub(crate) fn wrappers() -> Vec<WrapperInfo> {
    vec![tap::wrapper(), trace::wrapper(), fault::wrapper()]
}

/// Errors on an argument for a wrapper that takes none.
pub(crate) fn no_arg(spec: &DevSpec) -> Result<(), EthdevError> {
    spec.check_params(&[])?;
    if spec.arg.is_some() {
        return Err(EthdevError::BadSpec {
            spec: spec.raw.clone(),
            why: format!("wrapper '{}' takes no argument", spec.driver),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
