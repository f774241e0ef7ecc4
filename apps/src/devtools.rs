//! `wirespeed devices` / `bind` / `unbind`: NIC status and driver binding
//! (what `dpdk-devbind.py --status / -b vfio-pci / -u` does).

use std::process::ExitCode;
use wirespeed::eal::pci::{PciAddr, PciDevice, PciError, Sysfs, VFIO_PCI};

/// Device-tool subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DevCmd {
    /// Network devices, their drivers and IOMMU groups (like `dpdk-devbind --status`).
    Devices {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Bind a NIC to vfio-pci so wirespeed can drive it (e.g. `wirespeed bind 0000:00:01.0`).
    Bind {
        /// PCI address, DDDD:BB:DD.F or BB:DD.F.
        bdf: String,
        /// Unbind even if the kernel interface is up.
        #[arg(long)]
        force: bool,
    },
    /// Unbind a NIC from its driver (from vfio-pci after a run).
    Unbind {
        /// PCI address, DDDD:BB:DD.F or BB:DD.F.
        bdf: String,
        /// Give the device back to its kernel driver afterwards (drivers_probe).
        #[arg(long)]
        restore: bool,
    },
}

type DevFilter = Box<dyn Fn(&PciDevice) -> bool>;

/// Which wirespeed driver handles a PCI id, if any.
fn wirespeed_driver(d: &PciDevice) -> Option<String> {
    pmd_igb::lookup(d.vendor, d.device).map(|p| format!("igb ({})", p.name))
}

fn line(d: &PciDevice) -> String {
    let mut s = format!("{} {:04x}:{:04x}", d.addr, d.vendor, d.device);
    if let Some(w) = wirespeed_driver(d) {
        s += &format!(" [{w}]");
    }
    s += &format!(" drv={}", d.driver.as_deref().unwrap_or("none"));
    match d.iommu_group {
        Some(g) => s += &format!(" iommu_group={g}"),
        None => s += " iommu_group=none",
    }
    if !d.netdevs.is_empty() {
        s += &format!(" if={}", d.netdevs.join(","));
    }
    if let Some(o) = &d.driver_override {
        s += &format!(" driver_override={o}");
    }
    s
}

fn iface_up(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/operstate"))
        .map(|s| s.trim() == "up")
        .unwrap_or(false)
}

/// Runs a device-tool subcommand.
pub fn run(cmd: &DevCmd) -> ExitCode {
    run_with(&Sysfs::system(), cmd)
}

fn parse(bdf: &str) -> Result<PciAddr, ExitCode> {
    PciAddr::parse(bdf).map_err(|e| {
        eprintln!("wirespeed: {e}");
        ExitCode::from(2)
    })
}

fn fail(what: &str, e: PciError) -> ExitCode {
    eprintln!("wirespeed {what}: {e}");
    ExitCode::from(1)
}

/// [`run`] against a given sysfs tree.
pub fn run_with(sysfs: &Sysfs, cmd: &DevCmd) -> ExitCode {
    match cmd {
        DevCmd::Devices { json } => devices(sysfs, *json),
        DevCmd::Bind { bdf, force } => bind(sysfs, bdf, *force),
        DevCmd::Unbind { bdf, restore } => unbind(sysfs, bdf, *restore),
    }
}

/// `wirespeed devices`: network devices grouped as dpdk-devbind shows them.
fn devices(sysfs: &Sysfs, json: bool) -> ExitCode {
    let devs = match sysfs.network_devices() {
        Ok(d) => d,
        Err(e) => return fail("devices", e),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&devs).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    let groups: [(&str, DevFilter); 3] = [
        (
            "Network devices using vfio-pci (usable by wirespeed)",
            Box::new(|d| d.is_vfio_bound()),
        ),
        (
            "Network devices using a kernel driver",
            Box::new(|d| d.driver.is_some() && !d.is_vfio_bound()),
        ),
        (
            "Network devices without a driver",
            Box::new(|d| d.driver.is_none()),
        ),
    ];
    for (title, f) in groups.iter() {
        println!("{title}");
        println!("{}", "=".repeat(title.len()));
        let mut any = false;
        for d in devs.iter().filter(|d| f(d)) {
            println!("{}", line(d));
            any = true;
        }
        if !any {
            println!("<none>");
        }
        println!();
    }
    ExitCode::SUCCESS
}

/// `wirespeed bind BDF`: to vfio-pci (refused while its interface is up
/// unless forced; the module loaded when missing, as dpdk-devbind does).
fn bind(sysfs: &Sysfs, bdf: &str, force: bool) -> ExitCode {
    let a = match parse(bdf) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let d = match sysfs.device(&a) {
        Ok(d) => d,
        Err(e) => return fail("bind", e),
    };
    if !force {
        if let Some(i) = d.netdevs.iter().find(|i| iface_up(i)) {
            eprintln!(
                "wirespeed bind: {a} is interface {i}, which is up; take it down first \
                 (`ip link set {i} down`) or pass --force"
            );
            return ExitCode::from(1);
        }
    }
    if !sysfs.root().join("bus/pci/drivers").join(VFIO_PCI).exists() {
        let _ = std::process::Command::new("modprobe")
            .arg("vfio-pci")
            .status();
    }
    match sysfs.bind_vfio(&a) {
        Ok(prev) => {
            let g = sysfs
                .device(&a)
                .ok()
                .and_then(|d| d.iommu_group)
                .map(|g| g.to_string())
                .unwrap_or_else(|| "?".into());
            println!(
                "{a}: {} -> vfio-pci (IOMMU group {g}, /dev/vfio/{g})",
                prev.as_deref().unwrap_or("no driver")
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail("bind", e),
    }
}

/// `wirespeed unbind BDF [--restore]`.
fn unbind(sysfs: &Sysfs, bdf: &str, restore: bool) -> ExitCode {
    let a = match parse(bdf) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let r = if restore {
        sysfs.restore(&a).map(|now| {
            println!(
                "{a}: unbound; kernel driver now {}",
                now.as_deref()
                    .unwrap_or("none (no kernel driver claimed it)")
            )
        })
    } else {
        sysfs.unbind(&a).map(|prev| {
            println!(
                "{a}: unbound from {}",
                prev.as_deref().unwrap_or("no driver (it had none)")
            )
        })
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail("unbind", e),
    }
}
