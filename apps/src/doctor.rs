//! `wirespeed doctor`: what this machine offers the engine (hugepages, VFIO,
//! IOMMU) and what to do about what is missing.

use serde::Serialize;
use std::path::Path;

/// The findings.
#[derive(Debug, Serialize)]
pub struct Report {
    pub hugepage_size_kib: u64,
    pub hugepages_total: u64,
    pub hugepages_free: u64,
    pub vfio_module: bool,
    pub vfio_pci_module: bool,
    pub vfio_container: bool,
    pub iommu_groups: usize,
    pub iommu_on_cmdline: bool,
    pub cores_online: usize,
    pub advice: Vec<String>,
}

fn module_loaded(name: &str) -> bool {
    Path::new(&format!("/sys/module/{name}")).exists()
}

/// Looks at the machine.
pub fn inspect() -> Report {
    let h = wirespeed::eal::dma::hugepage_info();
    let groups = std::fs::read_dir("/sys/kernel/iommu_groups")
        .map(|d| d.count())
        .unwrap_or(0);
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let mut r = Report {
        hugepage_size_kib: h.size_kib,
        hugepages_total: h.total,
        hugepages_free: h.free,
        vfio_module: module_loaded("vfio"),
        vfio_pci_module: module_loaded("vfio_pci"),
        vfio_container: Path::new("/dev/vfio/vfio").exists(),
        iommu_groups: groups,
        iommu_on_cmdline: cmdline.contains("intel_iommu=on")
            || cmdline.contains("amd_iommu=on")
            || cmdline.contains("iommu=pt"),
        cores_online: wirespeed::eal::lcore::online_cores(),
        advice: Vec::new(),
    };
    if r.hugepages_free == 0 {
        r.advice.push(
            "no free hugepages: DMA memory falls back to 4 KiB pages (slower TLB); reserve some with \
             `echo 512 > /proc/sys/vm/nr_hugepages`"
                .into(),
        );
    }
    if !r.vfio_pci_module {
        r.advice.push(
            "vfio-pci is not loaded: `modprobe vfio-pci` before binding a NIC (igb:BDF, ice:BDF need it)".into(),
        );
    }
    if r.iommu_groups == 0 {
        r.advice.push(
            "no IOMMU groups: enable VT-d/AMD-Vi in firmware and boot with intel_iommu=on (or amd_iommu=on); \
             without an IOMMU only the device models and software ports work"
                .into(),
        );
    }
    if r.advice.is_empty() {
        r.advice.push(
            "ready: hugepages reserved and VFIO usable; bind a NIC with `wirespeed bind BDF`"
                .into(),
        );
    }
    r
}

/// Prints the report for people.
pub fn print(r: &Report) {
    println!(
        "hugepages ({} KiB): {} reserved, {} free",
        r.hugepage_size_kib, r.hugepages_total, r.hugepages_free
    );
    println!(
        "vfio: module {}, vfio-pci {}, /dev/vfio/vfio {}",
        yes(r.vfio_module),
        yes(r.vfio_pci_module),
        yes(r.vfio_container)
    );
    println!(
        "iommu: {} groups, enabled on the kernel command line: {}",
        r.iommu_groups,
        yes(r.iommu_on_cmdline)
    );
    println!("cores online: {}", r.cores_online);
    for a in &r.advice {
        println!("- {a}");
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
