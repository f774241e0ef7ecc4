//! VFIO: container/group/device, BAR mmap, DMA mapping (IOVA = VA).
//!
//! Opening goes through `vfio-ioctls` (container, group, device fd, region
//! table, `VFIO_IOMMU_MAP_DMA`). Where that crate swallows errors (its config
//! `region_read`/`region_write` and `reset`), this module does its own
//! `pread`/`pwrite`/ioctl and reports the failure. Registers are never
//! accessed with syscalls: BAR0 is mmapped and handed out as an
//! [`Mmio`](super::regs::Mmio) register window.
//!
//! One container is shared by every device the process opens (as DPDK does),
//! and it is registered as a [`DmaMapper`]: every DMA region, existing and
//! future, is mapped into the IOMMU with IOVA = VA.
//!
//! Before touching `/dev/vfio`, [`preflight`] checks sysfs so that each usual
//! mistake gets its own error that says what to do.

use super::dma::{self, DmaMapper};
use super::pci::{PciAddr, PciError, Sysfs, VFIO_PCI};
use super::regs::Mmio;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// What can go wrong opening or using a VFIO device.
#[derive(Debug, thiserror::Error)]
pub enum VfioError {
    #[error("no PCI device {addr} (see `wirespeed devices` for the NICs this machine has)")]
    NoSuchDevice { addr: PciAddr },
    #[error(
        "PCI device {addr} is bound to {driver}, not vfio-pci: run `wirespeed bind {addr}` first"
    )]
    NotBound { addr: PciAddr, driver: String },
    #[error("PCI device {addr} has no IOMMU group: enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line; in a VM give it a vIOMMU, e.g. QEMU `-device intel-iommu`)")]
    NoIommuGroup { addr: PciAddr },
    #[error("IOMMU group {group} of {addr} is not viable: {others} must be bound to vfio-pci too (or unbound): run `wirespeed bind` for each")]
    GroupNotViable {
        addr: PciAddr,
        group: u32,
        others: String,
    },
    #[error("VFIO is not available ({path} missing): run `modprobe vfio-pci` (and bind the device with `wirespeed bind BDF`)")]
    Unavailable { path: PathBuf },
    #[error("permission denied opening {path} for {addr}: run as root, or `chown $USER {path}` and raise the locked-memory limit (ulimit -l)")]
    Permission { addr: PciAddr, path: PathBuf },
    #[error("{path} for {addr} is busy: another process (or another open of this device) holds the IOMMU group")]
    Busy { addr: PciAddr, path: PathBuf },
    #[error("VFIO {what} for {addr} failed: {why}")]
    Os {
        addr: PciAddr,
        what: &'static str,
        why: String,
    },
    #[error("BAR{bar} of {addr}: {why}")]
    Bar {
        addr: PciAddr,
        bar: u32,
        why: String,
    },
    #[error(transparent)]
    Pci(PciError),
    #[error(transparent)]
    Dma(#[from] dma::DmaError),
}

impl From<PciError> for VfioError {
    fn from(e: PciError) -> VfioError {
        match e {
            PciError::NoSuchDevice { addr } => VfioError::NoSuchDevice { addr },
            PciError::NoIommuGroup { addr } => VfioError::NoIommuGroup { addr },
            e => VfioError::Pci(e),
        }
    }
}

/// Checks, from sysfs and `/dev/vfio`, that `addr` can be opened through
/// VFIO; returns its IOMMU group. Each usual mistake has its own error.
pub fn preflight(sysfs: &Sysfs, dev_vfio: &Path, addr: &PciAddr) -> Result<u32, VfioError> {
    let dev = sysfs.device(addr)?;
    let Some(group) = dev.iommu_group else {
        return Err(VfioError::NoIommuGroup { addr: *addr });
    };
    if !dev.is_vfio_bound() {
        return Err(VfioError::NotBound {
            addr: *addr,
            driver: dev.driver.unwrap_or_else(|| "no driver".into()),
        });
    }
    let blockers = sysfs.group_blockers(addr, group);
    if !blockers.is_empty() {
        let others = blockers
            .iter()
            .map(|(a, d)| format!("{a} (bound to {d})"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(VfioError::GroupNotViable {
            addr: *addr,
            group,
            others,
        });
    }
    let container = dev_vfio.join("vfio");
    if !container.exists() {
        return Err(VfioError::Unavailable { path: container });
    }
    let gpath = dev_vfio.join(group.to_string());
    if !gpath.exists() {
        return Err(VfioError::Unavailable { path: gpath });
    }
    for p in [&container, &gpath] {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(p)
            .map_err(|e| open_error(addr, p, e))?;
    }
    Ok(group)
}

fn open_error(addr: &PciAddr, path: &Path, e: io::Error) -> VfioError {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => VfioError::Permission {
            addr: *addr,
            path: path.to_path_buf(),
        },
        Some(libc::EBUSY) => VfioError::Busy {
            addr: *addr,
            path: path.to_path_buf(),
        },
        Some(libc::ENOENT) | Some(libc::ENODEV) => VfioError::Unavailable {
            path: path.to_path_buf(),
        },
        _ => VfioError::Os {
            addr: *addr,
            what: "open",
            why: format!("{}: {e}", path.display()),
        },
    }
}

fn crate_error(addr: &PciAddr, group: u32, e: vfio_ioctls::VfioError) -> VfioError {
    use vfio_ioctls::VfioError as E;
    match e {
        E::OpenContainer(io) => open_error(addr, Path::new("/dev/vfio/vfio"), io),
        E::OpenGroup(io, g) => open_error(addr, &Path::new("/dev/vfio").join(g), io),
        E::GroupViable => VfioError::GroupNotViable {
            addr: *addr,
            group,
            others: "another device in the group".into(),
        },
        E::InvalidPath => VfioError::NoIommuGroup { addr: *addr },
        other => VfioError::Os {
            addr: *addr,
            what: "open",
            why: other.to_string(),
        },
    }
}

/// The process-wide container and its DMA mapper.
struct Container {
    vfio: Arc<vfio_ioctls::VfioContainer>,
    mapper: Arc<dyn DmaMapper>,
    registered: AtomicBool,
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.registered.load(Ordering::Acquire) {
            dma::unregister_mapper(&self.mapper);
        }
    }
}

static CONTAINER: Mutex<Weak<Container>> = Mutex::new(Weak::new());

/// Maps every DMA region into the container's IOMMU domain (IOVA = VA).
struct ContainerMapper {
    vfio: Arc<vfio_ioctls::VfioContainer>,
}

impl DmaMapper for ContainerMapper {
    fn name(&self) -> String {
        "vfio".into()
    }
    fn map(&self, va: u64, iova: u64, len: usize) -> Result<(), String> {
        // SAFETY: the DMA table calls this only for live regions; a region is
        // unmapped (below) before its memory is released.
        unsafe { self.vfio.vfio_dma_map(iova, len, va as *mut u8) }.map_err(|e| {
            format!(
                "VFIO_IOMMU_MAP_DMA iova={iova:#x} len={len:#x}: {e}; if the IOMMU's address \
                 width is below 48 bits the process's addresses cannot be used as IOVAs \
                 (QEMU: -device intel-iommu,aw-bits=48); ENOMEM means the locked-memory \
                 limit is too low (ulimit -l unlimited)"
            )
        })
    }
    fn unmap(&self, iova: u64, len: usize) {
        if let Err(e) = self.vfio.vfio_dma_unmap(iova, len) {
            tracing::warn!("VFIO_IOMMU_UNMAP_DMA iova={iova:#x} len={len:#x}: {e}");
        }
    }
}

fn shared_container(addr: &PciAddr, group: u32) -> Result<Arc<Container>, VfioError> {
    let mut g = CONTAINER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = g.upgrade() {
        return Ok(c);
    }
    let vfio =
        Arc::new(vfio_ioctls::VfioContainer::new(None).map_err(|e| crate_error(addr, group, e))?);
    let mapper: Arc<dyn DmaMapper> = Arc::new(ContainerMapper { vfio: vfio.clone() });
    let c = Arc::new(Container {
        vfio,
        mapper,
        registered: AtomicBool::new(false),
    });
    *g = Arc::downgrade(&c);
    Ok(c)
}

/// `_IO(';', 100 + n)`, the VFIO ioctl numbers.
const fn vfio_io(n: u64) -> u64 {
    ((b';' as u64) << 8) | (100 + n)
}
const VFIO_DEVICE_RESET: u64 = vfio_io(11);
/// Region index of PCI config space (`VFIO_PCI_CONFIG_REGION_INDEX`).
const CONFIG_REGION: u32 = vfio_bindings::bindings::vfio::VFIO_PCI_CONFIG_REGION_INDEX;
const REGION_FLAG_MMAP: u32 = vfio_bindings::bindings::vfio::VFIO_REGION_INFO_FLAG_MMAP;

/// PCI COMMAND register bits.
pub const PCI_COMMAND: u64 = 0x04;
pub const PCI_COMMAND_MEMORY: u16 = 0x0002;
pub const PCI_COMMAND_MASTER: u16 = 0x0004;

/// An open VFIO PCI device: memory decoding and bus mastering enabled, every
/// DMA region mapped into its IOMMU domain.
pub struct VfioDevice {
    addr: PciAddr,
    group: u32,
    vendor: u16,
    device: u16,
    dev: vfio_ioctls::VfioDevice,
    // Dropped after `dev` (field order): the group and container outlive the device fd.
    _container: Arc<Container>,
}

impl std::fmt::Debug for VfioDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioDevice")
            .field("addr", &self.addr.to_string())
            .field("group", &self.group)
            .field(
                "id",
                &format_args!("{:04x}:{:04x}", self.vendor, self.device),
            )
            .finish()
    }
}

impl VfioDevice {
    /// Opens `addr` (bound to vfio-pci) through the shared container, enables
    /// memory space and bus mastering, and makes every DMA region visible to it.
    pub fn open(addr: &PciAddr) -> Result<Arc<VfioDevice>, VfioError> {
        Self::open_in(&Sysfs::system(), Path::new("/dev/vfio"), addr)
    }

    /// [`open`](Self::open) with explicit sysfs and `/dev/vfio` roots.
    pub fn open_in(
        sysfs: &Sysfs,
        dev_vfio: &Path,
        addr: &PciAddr,
    ) -> Result<Arc<VfioDevice>, VfioError> {
        let group = preflight(sysfs, dev_vfio, addr)?;
        let container = shared_container(addr, group)?;
        let ops: Arc<dyn vfio_ioctls::VfioOps> = container.vfio.clone();
        let dev = vfio_ioctls::VfioDevice::new(&sysfs.device_dir(addr), ops, false)
            .map_err(|e| crate_error(addr, group, e))?;
        // The first group attached set the IOMMU type; now the container can map
        // the DMA regions (the mapper stays registered while the container lives).
        if !container.registered.swap(true, Ordering::AcqRel) {
            if let Err(e) = dma::register_mapper(container.mapper.clone()) {
                container.registered.store(false, Ordering::Release);
                return Err(e.into());
            }
        }
        let mut d = VfioDevice {
            addr: *addr,
            group,
            vendor: 0,
            device: 0,
            dev,
            _container: container,
        };
        d.vendor = d.config_read_u16(0)?;
        d.device = d.config_read_u16(2)?;
        let cmd = d.config_read_u16(PCI_COMMAND)?;
        let want = cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
        if want != cmd {
            d.config_write(PCI_COMMAND, &want.to_le_bytes())?;
        }
        let now = d.config_read_u16(PCI_COMMAND)?;
        if now & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)
            != PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER
        {
            return Err(VfioError::Os {
                addr: *addr,
                what: "enable memory space + bus mastering",
                why: format!("PCI COMMAND reads {now:#06x} after writing {want:#06x}"),
            });
        }
        tracing::debug!(
            "vfio: opened {addr} ({:04x}:{:04x}), IOMMU group {group}, COMMAND {cmd:#06x} -> {now:#06x}",
            d.vendor,
            d.device
        );
        Ok(Arc::new(d))
    }

    pub fn addr(&self) -> PciAddr {
        self.addr
    }
    pub fn iommu_group(&self) -> u32 {
        self.group
    }
    /// PCI vendor and device id, from config space.
    pub fn ids(&self) -> (u16, u16) {
        (self.vendor, self.device)
    }

    fn config_base(&self) -> u64 {
        self.dev.get_region_offset(CONFIG_REGION)
    }

    /// Reads PCI config space at `off` (a `pread` on the device fd).
    pub fn config_read(&self, off: u64, buf: &mut [u8]) -> Result<(), VfioError> {
        // SAFETY: `buf` is a valid writable buffer of buf.len() bytes; the fd is open.
        let n = unsafe {
            libc::pread(
                self.dev.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                (self.config_base() + off) as libc::off_t,
            )
        };
        if n != buf.len() as isize {
            return Err(VfioError::Os {
                addr: self.addr,
                what: "config space read",
                why: format!("offset {off:#x}: {}", io::Error::last_os_error()),
            });
        }
        Ok(())
    }

    /// Writes PCI config space at `off` (a `pwrite` on the device fd).
    pub fn config_write(&self, off: u64, buf: &[u8]) -> Result<(), VfioError> {
        // SAFETY: `buf` is a valid readable buffer; the fd is open.
        let n = unsafe {
            libc::pwrite(
                self.dev.as_raw_fd(),
                buf.as_ptr() as *const libc::c_void,
                buf.len(),
                (self.config_base() + off) as libc::off_t,
            )
        };
        if n != buf.len() as isize {
            return Err(VfioError::Os {
                addr: self.addr,
                what: "config space write",
                why: format!("offset {off:#x}: {}", io::Error::last_os_error()),
            });
        }
        Ok(())
    }

    pub fn config_read_u16(&self, off: u64) -> Result<u16, VfioError> {
        let mut b = [0u8; 2];
        self.config_read(off, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    pub fn config_read_u32(&self, off: u64) -> Result<u32, VfioError> {
        let mut b = [0u8; 4];
        self.config_read(off, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Function-level reset (`VFIO_DEVICE_RESET`), with its error reported.
    pub fn reset(&self) -> Result<(), VfioError> {
        // SAFETY: VFIO_DEVICE_RESET takes no argument; the fd is a VFIO device fd.
        let r = unsafe { libc::ioctl(self.dev.as_raw_fd(), VFIO_DEVICE_RESET as _) };
        if r < 0 {
            return Err(VfioError::Os {
                addr: self.addr,
                what: "VFIO_DEVICE_RESET",
                why: io::Error::last_os_error().to_string(),
            });
        }
        Ok(())
    }

    /// Size of BAR `bar` in bytes (0 when absent).
    pub fn bar_size(&self, bar: u32) -> u64 {
        self.dev.get_region_size(bar)
    }

    /// mmaps BAR `bar` and returns it as a register window. The mapping keeps
    /// the device open while it lives.
    pub fn map_bar(self: &Arc<Self>, bar: u32) -> Result<Mmio, VfioError> {
        let size = self.dev.get_region_size(bar);
        let flags = self.dev.get_region_flags(bar);
        let bad = |why: String| VfioError::Bar {
            addr: self.addr,
            bar,
            why,
        };
        if size == 0 {
            return Err(bad("the device has no such BAR".into()));
        }
        if flags & REGION_FLAG_MMAP == 0 {
            return Err(bad(format!(
                "VFIO does not allow mmap of this BAR (flags {flags:#x})"
            )));
        }
        let off = self.dev.get_region_offset(bar);
        // SAFETY: mapping a VFIO region of `size` bytes at its region offset on
        // the device fd; the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.dev.as_raw_fd(),
                off as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(bad(format!("mmap: {}", io::Error::last_os_error())));
        }
        let base = NonNull::new(p as *mut u8).ok_or_else(|| bad("mmap returned null".into()))?;
        let owner = Arc::new(BarMapping {
            base: p as usize,
            len: size as usize,
            _dev: self.clone(),
        });
        // SAFETY: `base` maps `size` bytes of the BAR, unmapped only when `owner` drops.
        Ok(unsafe { Mmio::new(base, size as usize, owner) })
    }
}

/// Keeps an mmapped BAR (and its device) alive.
struct BarMapping {
    base: usize,
    len: usize,
    _dev: Arc<VfioDevice>,
}

impl Drop for BarMapping {
    fn drop(&mut self) {
        // SAFETY: (base, len) is the mapping made in `map_bar`; nobody holds it
        // any more (the last Mmio owning it is gone).
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

/// The vfio-pci driver name (re-exported for tools).
pub const DRIVER: &str = VFIO_PCI;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eal::pci::fake::FakeSysfs;

    fn dev_vfio(f: &FakeSysfs, groups: &[u32]) -> PathBuf {
        let d = f.dir.join("dev-vfio");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("vfio"), "").unwrap();
        for g in groups {
            std::fs::write(d.join(g.to_string()), "").unwrap();
        }
        d
    }

    #[test]
    fn preflight_names_each_mistake() {
        let f = FakeSysfs::new("vfio");
        f.add_device(
            "0000:00:01.0",
            0x8086,
            0x10c9,
            0x020000,
            Some("igb"),
            Some(1),
        );
        f.add_device(
            "0000:00:02.0",
            0x8086,
            0x10c9,
            0x020000,
            Some("vfio-pci"),
            None,
        );
        f.add_device(
            "0000:00:03.0",
            0x8086,
            0x10c9,
            0x020000,
            Some("vfio-pci"),
            Some(3),
        );
        f.add_device(
            "0000:00:03.1",
            0x8086,
            0x10c9,
            0x020000,
            Some("igb"),
            Some(3),
        );
        f.add_device(
            "0000:00:04.0",
            0x8086,
            0x10c9,
            0x020000,
            Some("vfio-pci"),
            Some(4),
        );
        f.add_device(
            "0000:00:05.0",
            0x8086,
            0x10c9,
            0x020000,
            Some("vfio-pci"),
            Some(5),
        );
        let s = f.sysfs();
        let dv = dev_vfio(&f, &[4]);
        let a = |s: &str| PciAddr::parse(s).unwrap();

        let e = preflight(&s, &dv, &a("00:09.0")).unwrap_err();
        assert!(matches!(e, VfioError::NoSuchDevice { .. }), "{e}");

        let e = preflight(&s, &dv, &a("00:01.0")).unwrap_err();
        assert!(matches!(e, VfioError::NotBound { .. }), "{e}");
        let m = e.to_string();
        assert!(
            m.contains("bound to igb") && m.contains("wirespeed bind 0000:00:01.0"),
            "{m}"
        );

        let e = preflight(&s, &dv, &a("00:02.0")).unwrap_err();
        assert!(matches!(e, VfioError::NoIommuGroup { .. }), "{e}");
        assert!(e.to_string().contains("intel_iommu=on"));

        let e = preflight(&s, &dv, &a("00:03.0")).unwrap_err();
        assert!(
            matches!(e, VfioError::GroupNotViable { group: 3, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("0000:00:03.1 (bound to igb)"), "{e}");

        // group 5's node is missing under /dev/vfio
        let e = preflight(&s, &dv, &a("00:05.0")).unwrap_err();
        assert!(matches!(e, VfioError::Unavailable { .. }), "{e}");
        assert!(e.to_string().contains("modprobe vfio-pci"));

        assert_eq!(preflight(&s, &dv, &a("00:04.0")).unwrap(), 4);
    }

    #[test]
    fn missing_container_node_says_load_vfio() {
        let f = FakeSysfs::new("novfio");
        f.add_device(
            "0000:00:04.0",
            0x8086,
            0x10c9,
            0x020000,
            Some("vfio-pci"),
            Some(4),
        );
        let e = preflight(
            &f.sysfs(),
            &f.dir.join("no-such-dir"),
            &PciAddr::parse("00:04.0").unwrap(),
        )
        .unwrap_err();
        assert!(matches!(e, VfioError::Unavailable { .. }));
    }

    #[test]
    fn permission_error_says_run_as_root() {
        let e = open_error(
            &PciAddr::parse("00:04.0").unwrap(),
            Path::new("/dev/vfio/4"),
            io::Error::from_raw_os_error(libc::EACCES),
        );
        assert!(matches!(e, VfioError::Permission { .. }));
        let m = e.to_string();
        assert!(
            m.contains("run as root") && m.contains("chown $USER /dev/vfio/4"),
            "{m}"
        );
        let e = open_error(
            &PciAddr::parse("00:04.0").unwrap(),
            Path::new("/dev/vfio/4"),
            io::Error::from_raw_os_error(libc::EBUSY),
        );
        assert!(matches!(e, VfioError::Busy { .. }));
    }

    #[test]
    fn ioctl_numbers_match_the_uapi() {
        // VFIO_DEVICE_RESET = _IO(';', 111) = 0x3b6f
        assert_eq!(VFIO_DEVICE_RESET, 0x3b6f);
        assert_eq!(CONFIG_REGION, 7);
    }
}
