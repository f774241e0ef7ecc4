//! PCI devices in sysfs: enumeration, ids, driver binding.
//!
//! Everything reads and writes the sysfs tree under a root (normally `/sys`),
//! so the parsing and the binding logic can be tested against a fake tree.
//! Binding to vfio-pci uses `driver_override` + `drivers_probe`, as
//! `dpdk-devbind.py` does: no `new_id`, so no other device with the same ids
//! gets grabbed by accident.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A PCI address `domain:bus:device.function`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddr {
    pub domain: u32,
    pub bus: u8,
    pub dev: u8,
    pub func: u8,
}

/// PCI and driver-binding errors; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PciError {
    #[error("'{input}' is not a PCI address: {why} (expected DDDD:BB:DD.F or BB:DD.F, e.g. 0000:00:01.0)")]
    BadAddr { input: String, why: String },
    #[error("no PCI device {addr} (see `wirespeed devices` for the NICs this machine has)")]
    NoSuchDevice { addr: PciAddr },
    #[error("PCI device {addr} has no IOMMU group: enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line; in a VM give it a vIOMMU, e.g. QEMU `-device intel-iommu`)")]
    NoIommuGroup { addr: PciAddr },
    #[error("the vfio-pci driver is not loaded: run `modprobe vfio-pci`")]
    VfioPciNotLoaded,
    #[error("permission denied writing {path}: run as root")]
    Permission { path: PathBuf },
    #[error("binding {addr} to {driver} failed: the device is now bound to {now}; check `dmesg` (e.g. vfio-pci: probe of {addr} failed)")]
    BindFailed {
        addr: PciAddr,
        driver: String,
        now: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl PciAddr {
    /// Parses `0000:00:01.0` or `00:01.0` (domain 0); hex digits, any case.
    pub fn parse(s: &str) -> Result<PciAddr, PciError> {
        let bad = |why: &str| PciError::BadAddr {
            input: s.to_string(),
            why: why.to_string(),
        };
        let t = s.trim();
        let parts: Vec<&str> = t.split(':').collect();
        let (dom, bus, devfn) = match parts.as_slice() {
            [b, df] => ("0", *b, *df),
            [d, b, df] => (*d, *b, *df),
            _ => return Err(bad("wrong number of ':' separators")),
        };
        let (dev, func) = devfn
            .split_once('.')
            .ok_or_else(|| bad("missing '.function'"))?;
        let hex = |v: &str, max: u32, what: &str, width: usize| -> Result<u32, PciError> {
            if v.is_empty() || v.len() > width || !v.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad(&format!("{what} '{v}' is not a hex number")));
            }
            let n = u32::from_str_radix(v, 16).map_err(|_| bad(&format!("{what} '{v}'")))?;
            if n > max {
                return Err(bad(&format!("{what} {n:#x} is larger than {max:#x}")));
            }
            Ok(n)
        };
        Ok(PciAddr {
            domain: hex(dom, 0xffff_ffff, "domain", 8)?,
            bus: hex(bus, 0xff, "bus", 2)? as u8,
            dev: hex(dev, 0x1f, "device", 2)? as u8,
            func: hex(func, 0x7, "function", 1)? as u8,
        })
    }
}

impl fmt::Display for PciAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.dev, self.func
        )
    }
}

impl FromStr for PciAddr {
    type Err = PciError;
    fn from_str(s: &str) -> Result<PciAddr, PciError> {
        PciAddr::parse(s)
    }
}

/// One PCI function as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PciDevice {
    #[serde(serialize_with = "ser_display")]
    pub addr: PciAddr,
    pub vendor: u16,
    pub device: u16,
    /// 24-bit class code (0x020000 = Ethernet controller).
    pub class: u32,
    /// The bound driver (`igb`, `vfio-pci`, …), if any.
    pub driver: Option<String>,
    /// `driver_override`, if set.
    pub driver_override: Option<String>,
    pub iommu_group: Option<u32>,
    pub numa_node: Option<i32>,
    /// Kernel network interfaces of the function (when a kernel driver owns it).
    pub netdevs: Vec<String>,
}

fn ser_display<S: serde::Serializer>(a: &PciAddr, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(a)
}

impl PciDevice {
    /// Class 0x02: network controller.
    pub fn is_network(&self) -> bool {
        self.class >> 16 == 0x02
    }
    pub fn is_vfio_bound(&self) -> bool {
        self.driver.as_deref() == Some(VFIO_PCI)
    }
}

/// The driver name of vfio-pci in sysfs.
pub const VFIO_PCI: &str = "vfio-pci";

/// Drivers the kernel tolerates next to vfio-pci in one IOMMU group
/// (`vfio_dev_driver_allowed`): the group stays viable.
const GROUP_COMPANIONS: &[&str] = &[VFIO_PCI, "pci-stub", "pcieport"];

/// A sysfs tree (normally `/sys`).
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs::system()
    }
}

fn io_err(path: &Path, source: io::Error) -> PciError {
    if source.kind() == io::ErrorKind::PermissionDenied {
        PciError::Permission {
            path: path.to_path_buf(),
        }
    } else {
        PciError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn read_trim(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

fn parse_hex(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

fn link_name(p: &Path) -> Option<String> {
    fs::read_link(p)
        .ok()
        .and_then(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()))
}

impl Sysfs {
    /// The real `/sys`.
    pub fn system() -> Sysfs {
        Sysfs {
            root: PathBuf::from("/sys"),
        }
    }

    /// A tree rooted elsewhere (tests).
    pub fn at(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `/sys/bus/pci/devices/<addr>`.
    pub fn device_dir(&self, addr: &PciAddr) -> PathBuf {
        self.root.join("bus/pci/devices").join(addr.to_string())
    }

    fn drivers_dir(&self) -> PathBuf {
        self.root.join("bus/pci/drivers")
    }

    /// Reads one device; `NoSuchDevice` when sysfs has no such function.
    pub fn device(&self, addr: &PciAddr) -> Result<PciDevice, PciError> {
        let d = self.device_dir(addr);
        if !d.exists() {
            return Err(PciError::NoSuchDevice { addr: *addr });
        }
        let hexfile = |name: &str| -> Result<u32, PciError> {
            let p = d.join(name);
            let s = fs::read_to_string(&p).map_err(|e| io_err(&p, e))?;
            parse_hex(&s).ok_or_else(|| PciError::Io {
                path: p.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, format!("not hex: {s:?}")),
            })
        };
        let driver_override =
            read_trim(&d.join("driver_override")).filter(|s| !s.is_empty() && s != "(null)");
        let mut netdevs: Vec<String> = fs::read_dir(d.join("net"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        netdevs.sort();
        Ok(PciDevice {
            addr: *addr,
            vendor: hexfile("vendor")? as u16,
            device: hexfile("device")? as u16,
            class: hexfile("class")?,
            driver: link_name(&d.join("driver")),
            driver_override,
            iommu_group: link_name(&d.join("iommu_group")).and_then(|s| s.parse().ok()),
            numa_node: read_trim(&d.join("numa_node")).and_then(|s| s.parse().ok()),
            netdevs,
        })
    }

    /// Every PCI function, sorted by address (entries that do not parse are skipped).
    pub fn devices(&self) -> Result<Vec<PciDevice>, PciError> {
        let dir = self.root.join("bus/pci/devices");
        let rd = fs::read_dir(&dir).map_err(|e| io_err(&dir, e))?;
        let mut v = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(addr) = PciAddr::parse(&name) else {
                continue;
            };
            if let Ok(dev) = self.device(&addr) {
                v.push(dev);
            }
        }
        v.sort_by_key(|d| d.addr);
        Ok(v)
    }

    /// Network-class functions (what `dpdk-devbind --status` lists under
    /// "Network devices").
    pub fn network_devices(&self) -> Result<Vec<PciDevice>, PciError> {
        Ok(self
            .devices()?
            .into_iter()
            .filter(|d| d.is_network())
            .collect())
    }

    /// The functions sharing `group`, by address.
    pub fn group_members(&self, group: u32) -> Vec<PciAddr> {
        let dir = self
            .root
            .join("kernel/iommu_groups")
            .join(group.to_string())
            .join("devices");
        let mut v: Vec<PciAddr> = fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| PciAddr::parse(&e.file_name().to_string_lossy()).ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Functions in `addr`'s IOMMU group that keep the group from being
    /// viable for VFIO (bound to a driver other than vfio-pci / pci-stub /
    /// pcieport), with their drivers.
    pub fn group_blockers(&self, addr: &PciAddr, group: u32) -> Vec<(PciAddr, String)> {
        self.group_members(group)
            .into_iter()
            .filter(|a| a != addr)
            .filter_map(|a| {
                let drv = link_name(&self.device_dir(&a).join("driver"))?;
                (!GROUP_COMPANIONS.contains(&drv.as_str())).then_some((a, drv))
            })
            .collect()
    }

    fn write(&self, p: &Path, v: &str) -> Result<(), PciError> {
        fs::write(p, v).map_err(|e| io_err(p, e))
    }

    /// Binds `addr` to vfio-pci (`driver_override` = vfio-pci, unbind from the
    /// current driver, `drivers_probe`). Returns the driver it had before.
    /// Already bound: nothing changes.
    pub fn bind_vfio(&self, addr: &PciAddr) -> Result<Option<String>, PciError> {
        let dev = self.device(addr)?;
        if dev.is_vfio_bound() {
            return Ok(dev.driver);
        }
        if !self.drivers_dir().join(VFIO_PCI).exists() {
            return Err(PciError::VfioPciNotLoaded);
        }
        if dev.iommu_group.is_none() {
            return Err(PciError::NoIommuGroup { addr: *addr });
        }
        let d = self.device_dir(addr);
        self.write(&d.join("driver_override"), VFIO_PCI)?;
        if dev.driver.is_some() {
            self.write(&d.join("driver/unbind"), &addr.to_string())?;
        }
        self.write(&self.root.join("bus/pci/drivers_probe"), &addr.to_string())?;
        let now = link_name(&d.join("driver"));
        if now.as_deref() != Some(VFIO_PCI) {
            return Err(PciError::BindFailed {
                addr: *addr,
                driver: VFIO_PCI.into(),
                now: now.unwrap_or_else(|| "no driver".into()),
            });
        }
        Ok(dev.driver)
    }

    /// Unbinds `addr` from whatever driver has it and clears `driver_override`
    /// (the device stays without a driver). Returns the driver it had.
    pub fn unbind(&self, addr: &PciAddr) -> Result<Option<String>, PciError> {
        let dev = self.device(addr)?;
        let d = self.device_dir(addr);
        if dev.driver.is_some() {
            self.write(&d.join("driver/unbind"), &addr.to_string())?;
        }
        if dev.driver_override.is_some() {
            self.write(&d.join("driver_override"), "\n")?;
        }
        Ok(dev.driver)
    }

    /// Gives the device back to the kernel: unbind, clear `driver_override`,
    /// `drivers_probe` (the kernel picks its own driver, e.g. igb). Returns the
    /// driver bound afterwards, if any.
    pub fn restore(&self, addr: &PciAddr) -> Result<Option<String>, PciError> {
        self.unbind(addr)?;
        self.write(&self.root.join("bus/pci/drivers_probe"), &addr.to_string())?;
        Ok(link_name(&self.device_dir(addr).join("driver")))
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A fake sysfs tree for tests.
    use super::*;
    use std::os::unix::fs::symlink;

    pub struct FakeSysfs {
        pub dir: PathBuf,
    }

    impl Drop for FakeSysfs {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    impl FakeSysfs {
        pub fn new(tag: &str) -> FakeSysfs {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("wirespeed-sysfs-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(dir.join("bus/pci/devices")).unwrap();
            fs::create_dir_all(dir.join("bus/pci/drivers")).unwrap();
            fs::create_dir_all(dir.join("devices/pci0000:00")).unwrap();
            fs::write(dir.join("bus/pci/drivers_probe"), "").unwrap();
            FakeSysfs { dir }
        }

        pub fn sysfs(&self) -> Sysfs {
            Sysfs::at(&self.dir)
        }

        pub fn add_driver(&self, name: &str) {
            let d = self.dir.join("bus/pci/drivers").join(name);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("unbind"), "").unwrap();
        }

        /// Adds a function; `driver`/`group` make the symlinks sysfs has.
        pub fn add_device(
            &self,
            addr: &str,
            vendor: u16,
            device: u16,
            class: u32,
            driver: Option<&str>,
            group: Option<u32>,
        ) {
            let real = self.dir.join("devices/pci0000:00").join(addr);
            fs::create_dir_all(&real).unwrap();
            fs::write(real.join("vendor"), format!("0x{vendor:04x}\n")).unwrap();
            fs::write(real.join("device"), format!("0x{device:04x}\n")).unwrap();
            fs::write(real.join("class"), format!("0x{class:06x}\n")).unwrap();
            fs::write(real.join("numa_node"), "-1\n").unwrap();
            fs::write(real.join("driver_override"), "(null)\n").unwrap();
            symlink(&real, self.dir.join("bus/pci/devices").join(addr)).unwrap();
            if let Some(drv) = driver {
                self.add_driver(drv);
                symlink(
                    self.dir.join("bus/pci/drivers").join(drv),
                    real.join("driver"),
                )
                .unwrap();
            }
            if let Some(g) = group {
                let gd = self.dir.join("kernel/iommu_groups").join(g.to_string());
                fs::create_dir_all(gd.join("devices")).unwrap();
                symlink(&gd, real.join("iommu_group")).unwrap();
                symlink(&real, gd.join("devices").join(addr)).unwrap();
            }
        }

        pub fn add_netdev(&self, addr: &str, ifname: &str) {
            let real = self.dir.join("devices/pci0000:00").join(addr);
            fs::create_dir_all(real.join("net").join(ifname)).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeSysfs;
    use super::*;

    #[test]
    fn parses_long_and_short_forms() {
        let a = PciAddr::parse("0000:00:01.0").unwrap();
        assert_eq!(
            a,
            PciAddr {
                domain: 0,
                bus: 0,
                dev: 1,
                func: 0
            }
        );
        assert_eq!(PciAddr::parse("00:01.0").unwrap(), a);
        let b: PciAddr = "0001:3B:1f.7".parse().unwrap();
        assert_eq!((b.domain, b.bus, b.dev, b.func), (1, 0x3b, 0x1f, 7));
        assert_eq!(b.to_string(), "0001:3b:1f.7");
        assert_eq!(a.to_string(), "0000:00:01.0");
    }

    #[test]
    fn rejects_bad_addresses_with_the_reason() {
        for (s, why) in [
            ("", "separators"),
            ("00:01", "function"),
            ("00:20.0", "larger than"),
            ("00:01.8", "larger than"),
            ("zz:01.0", "not a hex"),
            ("1:2:3:4.0", "separators"),
            ("000:100:01.0", "not a hex"),
        ] {
            let e = PciAddr::parse(s).unwrap_err();
            let m = e.to_string();
            assert!(matches!(e, PciError::BadAddr { .. }), "{s}");
            assert!(m.contains(why), "{s}: {m}");
            assert!(m.contains("0000:00:01.0"), "{m}");
        }
    }

    #[test]
    fn enumerates_network_devices_from_sysfs() {
        let f = FakeSysfs::new("enum");
        f.add_device(
            "0000:00:01.0",
            0x8086,
            0x10c9,
            0x020000,
            Some("igb"),
            Some(1),
        );
        f.add_netdev("0000:00:01.0", "enp0s1");
        f.add_device(
            "0000:00:02.0",
            0x8086,
            0x1521,
            0x020000,
            Some("vfio-pci"),
            Some(2),
        );
        f.add_device(
            "0000:00:03.0",
            0x1af4,
            0x1001,
            0x010000,
            Some("virtio-pci"),
            None,
        );
        f.add_device("0000:00:04.0", 0x8086, 0x1593, 0x020000, None, None);
        let s = f.sysfs();
        let all = s.devices().unwrap();
        assert_eq!(all.len(), 4);
        let net = s.network_devices().unwrap();
        assert_eq!(net.len(), 3);
        let igb = &net[0];
        assert_eq!(igb.addr.to_string(), "0000:00:01.0");
        assert_eq!((igb.vendor, igb.device), (0x8086, 0x10c9));
        assert_eq!(igb.driver.as_deref(), Some("igb"));
        assert_eq!(igb.iommu_group, Some(1));
        assert_eq!(igb.netdevs, vec!["enp0s1".to_string()]);
        assert_eq!(igb.driver_override, None);
        assert_eq!(igb.numa_node, Some(-1));
        assert!(net[1].is_vfio_bound());
        assert_eq!(net[2].driver, None);
        assert_eq!(net[2].iommu_group, None);
        let e = s.device(&PciAddr::parse("00:09.0").unwrap()).unwrap_err();
        assert!(matches!(e, PciError::NoSuchDevice { .. }));
        assert!(e.to_string().contains("wirespeed devices"));
    }

    #[test]
    fn group_blockers_name_foreign_drivers() {
        let f = FakeSysfs::new("group");
        f.add_device(
            "0000:00:01.0",
            0x8086,
            0x10c9,
            0x020000,
            Some("vfio-pci"),
            Some(5),
        );
        f.add_device(
            "0000:00:01.1",
            0x8086,
            0x10c9,
            0x020000,
            Some("igb"),
            Some(5),
        );
        f.add_device(
            "0000:00:01.2",
            0x8086,
            0x10c9,
            0x020000,
            Some("pcieport"),
            Some(5),
        );
        f.add_device("0000:00:01.3", 0x8086, 0x10c9, 0x020000, None, Some(5));
        let s = f.sysfs();
        let a = PciAddr::parse("00:01.0").unwrap();
        assert_eq!(s.group_members(5).len(), 4);
        let b = s.group_blockers(&a, 5);
        assert_eq!(b, vec![(PciAddr::parse("00:01.1").unwrap(), "igb".into())]);
    }

    #[test]
    fn bind_checks_and_writes_override_unbind_probe() {
        let f = FakeSysfs::new("bind");
        f.add_device(
            "0000:00:01.0",
            0x8086,
            0x10c9,
            0x020000,
            Some("igb"),
            Some(1),
        );
        f.add_device("0000:00:02.0", 0x8086, 0x10c9, 0x020000, Some("igb"), None);
        let s = f.sysfs();
        let a = PciAddr::parse("00:01.0").unwrap();
        // vfio-pci not loaded yet
        assert!(matches!(s.bind_vfio(&a), Err(PciError::VfioPciNotLoaded)));
        f.add_driver("vfio-pci");
        // no IOMMU group
        let e = s
            .bind_vfio(&PciAddr::parse("00:02.0").unwrap())
            .unwrap_err();
        assert!(matches!(e, PciError::NoIommuGroup { .. }));
        assert!(e.to_string().contains("intel_iommu=on"));
        // the fake kernel does not act on the writes: bind reports the failure,
        // after writing exactly what the kernel needs.
        let e = s.bind_vfio(&a).unwrap_err();
        assert!(matches!(e, PciError::BindFailed { .. }), "{e}");
        let d = s.device_dir(&a);
        assert_eq!(
            fs::read_to_string(d.join("driver_override")).unwrap(),
            "vfio-pci"
        );
        assert_eq!(
            fs::read_to_string(f.dir.join("bus/pci/drivers/igb/unbind")).unwrap(),
            "0000:00:01.0"
        );
        assert_eq!(
            fs::read_to_string(f.dir.join("bus/pci/drivers_probe")).unwrap(),
            "0000:00:01.0"
        );
        assert_eq!(
            s.device(&a).unwrap().driver_override.as_deref(),
            Some("vfio-pci")
        );
        // unbind clears the override
        assert_eq!(s.unbind(&a).unwrap().as_deref(), Some("igb"));
        assert_eq!(s.device(&a).unwrap().driver_override, None);
    }

    #[test]
    fn bind_of_bound_device_is_a_no_op() {
        let f = FakeSysfs::new("bound");
        f.add_device(
            "0000:00:01.0",
            0x8086,
            0x10c9,
            0x020000,
            Some("vfio-pci"),
            Some(1),
        );
        let s = f.sysfs();
        let a = PciAddr::parse("00:01.0").unwrap();
        assert_eq!(s.bind_vfio(&a).unwrap().as_deref(), Some("vfio-pci"));
        assert_eq!(
            fs::read_to_string(f.dir.join("bus/pci/drivers_probe")).unwrap(),
            ""
        );
    }
}
