//! The driver registry: drivers register themselves by name (like DPDK's
//! `RTE_PMD_REGISTER_*` and Linux's `inetsw` table); the engine never names a PMD.

use super::{DevSpec, EthdevError, Port};

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
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// A registry with the software ports: `null`, `pcap`, `ring`.
    pub fn with_builtins() -> Registry {
        let mut r = Registry::new();
        for d in [
            super::null::driver(),
            super::af_packet::driver(),
            super::lo::driver(),
            super::pcap::driver(),
            super::ring::driver(),
        ] {
            r.register(d).expect("builtin names are unique");
        }
        r
    }

    /// Adds a driver; a second driver with the same name is an error.
    pub fn register(&mut self, d: DriverInfo) -> Result<(), EthdevError> {
        if self.drivers.iter().any(|x| x.name == d.name) {
            return Err(EthdevError::Duplicate(d.name.to_string()));
        }
        self.drivers.push(d);
        Ok(())
    }

    pub fn drivers(&self) -> &[DriverInfo] {
        &self.drivers
    }

    /// Names of the known drivers, comma-separated.
    pub fn known(&self) -> String {
        self.drivers
            .iter()
            .map(|d| d.syntax)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Parses a spec and opens the port with its driver.
    pub fn open(&self, spec: &str) -> Result<Box<dyn Port>, EthdevError> {
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
    fn bad_spec_is_reported() {
        let r = Registry::with_builtins();
        assert!(matches!(r.open("pcap:"), Err(EthdevError::BadSpec { .. })));
        assert!(matches!(r.open("pcap"), Err(EthdevError::BadSpec { .. })));
    }
}
