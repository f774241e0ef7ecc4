//! The driver registry: drivers register themselves by name (like DPDK's
//! `RTE_PMD_REGISTER_*` and Linux's `inetsw` table); the engine never names a PMD.
//!
//! Wrappers (`tap`, `trace`, `fault`) register beside the drivers and chain
//! in front of a port with `+`: `tap:out.pcap+fault:drop=0.01+igb-model`
//! opens `igb-model`, wraps it in `fault`, and that in `tap`.

use super::{DevSpec, EthdevError, Port};

/// One wrapper's entry: a layer that wraps any port (smoltcp's `phy`
/// middleware: `Tracer`, `FaultInjector`, `PcapWriter`).
#[derive(Clone)]
pub struct WrapperInfo {
    pub name: &'static str,
    /// e.g. `tap:PATH+INNER`.
    pub syntax: &'static str,
    pub help: &'static str,
    /// Checks the wrapper's own spec (the part before `+`) without opening
    /// anything.
    pub check: fn(&DevSpec) -> Result<(), EthdevError>,
    /// Wraps the opened inner port; `full` is the whole chained spec (the
    /// port's name).
    pub wrap: WrapFn,
}

/// Wraps an opened port: (the wrapper's own spec, the inner port, the whole
/// chained spec).
pub type WrapFn = fn(&DevSpec, Box<dyn Port>, &str) -> Result<Box<dyn Port>, EthdevError>;

impl std::fmt::Debug for WrapperInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrapperInfo")
            .field("name", &self.name)
            .field("syntax", &self.syntax)
            .finish()
    }
}

/// One driver's entry.
#[derive(Clone)]
pub struct DriverInfo {
    pub name: &'static str,
    /// e.g. `pcap:PATH[?rx=IN.pcap]`.
    pub syntax: &'static str,
    pub help: &'static str,
    pub open: fn(&DevSpec) -> Result<Box<dyn Port>, EthdevError>,
}

impl std::fmt::Debug for DriverInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverInfo")
            .field("name", &self.name)
            .field("syntax", &self.syntax)
            .finish()
    }
}

/// Known drivers, by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    drivers: Vec<DriverInfo>,
    wrappers: Vec<WrapperInfo>,
}

/// The wrapper name a spec starts with: the text before the first ':',
/// '?' or '+'.
fn head_name(spec: &str) -> &str {
    let end = spec.find([':', '?', '+']).unwrap_or(spec.len());
    &spec[..end]
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// A registry with the software ports (`null`, `pcap`, `ring`) and the
    /// wrappers (`tap`, `trace`, `fault`).
    pub fn with_builtins() -> Registry {
        let mut r = Registry::new();
        for d in [
            super::null::driver(),
            super::af_packet::driver(),
            super::af_xdp::driver(),
            super::lo::driver(),
            super::pcap::driver(),
            super::ring::driver(),
        ] {
            r.register(d).expect("builtin names are unique");
        }
        for w in super::wrap::wrappers() {
            r.register_wrapper(w).expect("builtin names are unique");
        }
        r
    }

    fn taken(&self, name: &str) -> bool {
        self.drivers.iter().any(|x| x.name == name) || self.wrappers.iter().any(|x| x.name == name)
    }

    /// Adds a driver; a second driver or wrapper with the same name is an error.
    pub fn register(&mut self, d: DriverInfo) -> Result<(), EthdevError> {
        if self.taken(d.name) {
            return Err(EthdevError::Duplicate(d.name.to_string()));
        }
        self.drivers.push(d);
        Ok(())
    }

    /// Adds a wrapper; a name already taken by a driver or wrapper is an error.
    pub fn register_wrapper(&mut self, w: WrapperInfo) -> Result<(), EthdevError> {
        if self.taken(w.name) {
            return Err(EthdevError::Duplicate(w.name.to_string()));
        }
        self.wrappers.push(w);
        Ok(())
    }

    pub fn drivers(&self) -> &[DriverInfo] {
        &self.drivers
    }

    /// The wrappers, for `wirespeed ports`.
    pub fn wrappers(&self) -> &[WrapperInfo] {
        &self.wrappers
    }

    /// Splits `spec` at its first `+` when it starts with a wrapper:
    /// (the wrapper, its own spec, the inner spec).
    fn split_wrapper<'a>(
        &self,
        spec: &'a str,
    ) -> Result<Option<(&WrapperInfo, DevSpec, &'a str)>, EthdevError> {
        let name = head_name(spec);
        let Some(w) = self.wrappers.iter().find(|w| w.name == name) else {
            return Ok(None);
        };
        let bad = |why: String| EthdevError::BadSpec {
            spec: spec.to_string(),
            why,
        };
        let (own, inner) = match spec.split_once('+') {
            Some((o, i)) if !i.trim().is_empty() => (o, i.trim()),
            _ => {
                return Err(bad(format!(
                    "wrapper '{name}' needs the port it wraps after '+': {} (e.g. {name}{}+null)",
                    w.syntax,
                    if name == "tap" { ":out.pcap" } else { "" }
                )))
            }
        };
        let own = DevSpec::parse(own)?;
        Ok(Some((w, own, inner)))
    }

    /// Checks a (possibly chained) spec without opening anything: every
    /// wrapper's own part and the driver at the end of the chain.
    pub fn check(&self, spec: &str) -> Result<(), EthdevError> {
        let spec = spec.trim();
        if let Some((w, own, inner)) = self.split_wrapper(spec)? {
            (w.check)(&own)?;
            return self.check(inner);
        }
        let s = DevSpec::parse(spec)?;
        if self.drivers.iter().any(|d| d.name == s.driver) {
            Ok(())
        } else {
            Err(EthdevError::UnknownDriver {
                spec: spec.to_string(),
                driver: s.driver.clone(),
                known: self.known(),
            })
        }
    }

    /// Names of the known drivers and wrappers, comma-separated.
    pub fn known(&self) -> String {
        self.drivers
            .iter()
            .map(|d| d.syntax)
            .chain(self.wrappers.iter().map(|w| w.syntax))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Parses a spec and opens the port with its driver; a spec chained with
    /// `+` opens the innermost port first and wraps it outwards.
    pub fn open(&self, spec: &str) -> Result<Box<dyn Port>, EthdevError> {
        let full = spec.trim();
        if let Some((w, own, inner)) = self.split_wrapper(full)? {
            (w.check)(&own)?;
            let port = self.open(inner)?;
            return (w.wrap)(&own, port, full);
        }
        let s = DevSpec::parse(spec)?;
        match self.drivers.iter().find(|d| d.name == s.driver) {
            Some(d) => (d.open)(&s),
            None => Err(EthdevError::UnknownDriver {
                spec: spec.to_string(),
                driver: s.driver.clone(),
                known: self.known(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_driver_lists_known_ones() {
        let r = Registry::with_builtins();
        let e = r.open("nope:x").err().unwrap();
        let s = e.to_string();
        assert!(s.contains("unknown driver 'nope'"), "{s}");
        assert!(
            s.contains("null") && s.contains("pcap:PATH") && s.contains("ring:NAME"),
            "{s}"
        );
    }

    #[test]
    fn duplicate_registration_is_refused() {
        let mut r = Registry::with_builtins();
        assert!(matches!(
            r.register(super::super::null::driver()),
            Err(EthdevError::Duplicate(_))
        ));
    }

    #[test]
    fn chained_specs_open_inner_first() {
        let r = Registry::with_builtins();
        let p = r.open("trace+fault:drop=0.5,seed=3+null").unwrap();
        assert_eq!(p.name(), "trace+fault:drop=0.5,seed=3+null");
        assert!(p.xstats().iter().any(|(k, _)| k == "fault_drop"));
        r.check("trace+fault:drop=0.5+null").unwrap();
    }

    #[test]
    fn bad_chains_say_what_to_do() {
        let r = Registry::with_builtins();
        let s = r.open("tap:x.pcap").err().unwrap().to_string();
        assert!(s.contains("needs the port it wraps after '+'"), "{s}");
        let s = r.open("fault:drop=2+null").err().unwrap().to_string();
        assert!(s.contains("drop=2") && s.contains("0..=1"), "{s}");
        let s = r.open("fault:wobble=1+null").err().unwrap().to_string();
        assert!(
            s.contains("unknown fault 'wobble'") && s.contains("stall_ms"),
            "{s}"
        );
        let s = r.check("trace+nope").err().unwrap().to_string();
        assert!(s.contains("unknown driver 'nope'"), "{s}");
        let s = r.open("trace:x+null").err().unwrap().to_string();
        assert!(s.contains("takes no argument"), "{s}");
    }

    #[test]
    fn bad_spec_is_reported() {
        let r = Registry::with_builtins();
        assert!(matches!(r.open("pcap:"), Err(EthdevError::BadSpec { .. })));
        assert!(matches!(r.open("pcap"), Err(EthdevError::BadSpec { .. })));
    }
}
