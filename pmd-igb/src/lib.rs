//! `pmd-igb`: a poll-mode driver for Intel igb NICs (82576, I350) bound to
//! vfio-pci, and a register-level igb device model.
//!
//! Registered devices:
//! - `igb:BDF[?link_wait_ms=N]` — a NIC at PCI address BDF (bound with
//!   `wirespeed bind BDF`), driven through VFIO with BAR0 mmapped.
//! - `igb-model[?speed=1g|100m|10m|unlimited&sink=count|pcap:PATH|loopback&core=N]`
//!   — the same driver on the device model.
//!
//! The driver code is generic over [`RegisterSpace`](wirespeed::eal::RegisterSpace): [`IgbPort<Mmio>`] and
//! [`IgbPort<IgbModel>`] are the same code, monomorphized.

pub mod hw;
pub mod model;
pub mod port;
pub mod regs;
pub mod rx;
pub mod tx;

pub use hw::{lookup, Family, IgbHw, PartId, PARTS};
pub use model::{IgbModel, ModelConfig, Sink};
pub use port::IgbPort;
pub use rx::IgbRxQueue;
pub use tx::{IgbTxQueue, TX_OFFLOAD_CAPA};

use std::sync::Arc;
use std::time::Duration;
use wirespeed::eal::pci::PciAddr;
use wirespeed::eal::regs::Mmio;
use wirespeed::eal::vfio::VfioDevice;
use wirespeed::eal::RegisterSpace;
use wirespeed::ethdev::{DevSpec, DriverInfo, EthdevError, Port, Registry};

/// Registers `igb` and `igb-model` (already registered names are left alone).
pub fn register(reg: &mut Registry) {
    for d in [igb_driver(), model_driver()] {
        if let Err(e) = reg.register(d) {
            tracing::debug!("pmd-igb: {e}");
        }
    }
}

/// The `igb:BDF` driver entry.
pub fn igb_driver() -> DriverInfo {
    DriverInfo {
        name: "igb",
        syntax: "igb:BDF",
        help: "Intel 82576/I350 through VFIO (bind first: wirespeed bind BDF); ?link_wait_ms=N",
        open: |spec| Ok(Box::new(open_pci(spec)?) as Box<dyn Port>),
    }
}

/// The `igb-model` driver entry.
pub fn model_driver() -> DriverInfo {
    DriverInfo {
        name: "igb-model",
        syntax: "igb-model",
        help: "the igb driver on a register-level 82576 model; ?speed=1g|100m|10m|unlimited&sink=count|pcap:PATH|loopback&core=N",
        open: |spec| Ok(Box::new(open_model(spec)?) as Box<dyn Port>),
    }
}

fn bad(spec: &DevSpec, why: impl Into<String>) -> EthdevError {
    EthdevError::BadSpec {
        spec: spec.raw.clone(),
        why: why.into(),
    }
}

/// Opens `igb:BDF`: VFIO device, id check, BAR0 mmap, reset and init.
pub fn open_pci(spec: &DevSpec) -> Result<IgbPort<Mmio>, EthdevError> {
    spec.check_params(&["link_wait_ms"])?;
    let arg = spec.require_arg("igb:BDF (e.g. igb:0000:00:01.0)")?;
    let addr = PciAddr::parse(arg).map_err(|e| bad(spec, e.to_string()))?;
    let link_wait = port::link_wait_param(spec, 3000)?;
    let dev_err = |why: String| EthdevError::Device {
        port: spec.raw.clone(),
        why,
    };
    let dev = VfioDevice::open(&addr).map_err(|e| dev_err(e.to_string()))?;
    let (vendor, device) = dev.ids();
    let part = lookup(vendor, device).ok_or_else(|| {
        dev_err(format!(
            "{addr} is {vendor:04x}:{device:04x}, not an igb part this driver knows (Intel 82576: {}; I350: {})",
            ids_of(Family::I82576),
            ids_of(Family::I350)
        ))
    })?;
    let bar = dev.map_bar(0).map_err(|e| dev_err(e.to_string()))?;
    if bar.len() < regs::BAR0_LEN {
        return Err(dev_err(format!(
            "BAR0 of {addr} is {} bytes; igb needs {}",
            bar.len(),
            regs::BAR0_LEN
        )));
    }
    IgbPort::init(
        &spec.raw,
        Arc::new(bar),
        part,
        link_wait,
        None,
        Some(port::owner(dev)),
    )
}

fn ids_of(f: Family) -> String {
    PARTS
        .iter()
        .filter(|p| p.family == f)
        .map(|p| format!("{:04x}", p.device))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses `igb-model` parameters into a [`ModelConfig`].
pub fn model_config(spec: &DevSpec) -> Result<ModelConfig, EthdevError> {
    spec.check_params(&["speed", "sink", "core", "link_wait_ms"])?;
    if spec.arg.is_some() {
        return Err(bad(
            spec,
            "igb-model takes no ':' argument; use ?speed=…&sink=…",
        ));
    }
    let mut cfg = ModelConfig::default();
    if let Some(s) = spec.param("speed") {
        cfg.speed_bps = match s.to_ascii_lowercase().as_str() {
            "1g" | "1000m" => 1_000_000_000,
            "100m" => 100_000_000,
            "10m" => 10_000_000,
            "unlimited" | "0" => 0,
            _ => {
                return Err(bad(
                    spec,
                    format!("speed={s}: use 1g, 100m, 10m or unlimited"),
                ))
            }
        };
    }
    if let Some(s) = spec.param("sink") {
        cfg.sink = match s {
            "count" => Sink::Count,
            "loopback" => Sink::Loopback,
            _ => match s.strip_prefix("pcap:") {
                Some(p) if !p.is_empty() => Sink::Pcap(p.into()),
                _ => {
                    return Err(bad(
                        spec,
                        format!("sink={s}: use count, loopback or pcap:PATH"),
                    ))
                }
            },
        };
    }
    if let Some(c) = spec.param("core") {
        let n: usize = c
            .parse()
            .map_err(|_| bad(spec, format!("core={c} is not a core number")))?;
        let cores = system_cores();
        if n >= cores {
            return Err(bad(
                spec,
                format!(
                    "core={n}: this machine has cores 0..={}",
                    cores.saturating_sub(1)
                ),
            ));
        }
        cfg.core = Some(n);
    }
    Ok(cfg)
}

/// CPUs the system has online (not just those the calling thread may use:
/// the caller may already be pinned).
fn system_cores() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| wirespeed::eal::CoreList::parse(s.trim()).ok())
        .and_then(|c| c.cores().iter().max().map(|m| m + 1))
        .unwrap_or_else(wirespeed::eal::lcore::online_cores)
}

/// Opens `igb-model?…`: a model with its engine thread, and the igb driver on it.
pub fn open_model(spec: &DevSpec) -> Result<IgbPort<IgbModel>, EthdevError> {
    let cfg = model_config(spec)?;
    let link_wait = port::link_wait_param(spec, 1000)?;
    let m = IgbModel::new(cfg).map_err(|e| EthdevError::Device {
        port: spec.raw.clone(),
        why: e.to_string(),
    })?;
    let part = lookup(hw::VENDOR_INTEL, model::MODEL_DEVICE_ID).expect("model id is in the table");
    IgbPort::init(&spec.raw, m.clone(), part, link_wait, Some(m), None)
}

/// Opens the driver on a model built from `cfg` (tests, benchmarks).
pub fn model_port(cfg: ModelConfig) -> Result<(IgbPort<IgbModel>, Arc<IgbModel>), EthdevError> {
    let m = IgbModel::new(cfg).map_err(|e| EthdevError::Device {
        port: "igb-model".into(),
        why: e.to_string(),
    })?;
    let part = lookup(hw::VENDOR_INTEL, model::MODEL_DEVICE_ID).expect("model id is in the table");
    let p = IgbPort::init(
        "igb-model",
        m.clone(),
        part,
        Duration::from_secs(1),
        Some(m.clone()),
        None,
    )?;
    Ok((p, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cover_both_families() {
        assert_eq!(lookup(0x8086, 0x10C9).unwrap().family, Family::I82576);
        assert_eq!(lookup(0x8086, 0x1521).unwrap().family, Family::I350);
        assert!(lookup(0x8086, 0x10CA).is_none(), "82576 VF is not a PF");
        assert!(lookup(0x1af4, 0x10C9).is_none());
        assert_eq!(Family::I82576.queues(), 16);
        assert_eq!(Family::I350.queues(), 8);
    }

    #[test]
    fn model_spec_parsing_and_errors() {
        let c = model_config(
            &DevSpec::parse("igb-model?speed=unlimited&sink=pcap:/tmp/x.pcap").unwrap(),
        )
        .unwrap();
        assert_eq!(c.speed_bps, 0);
        assert_eq!(c.sink, Sink::Pcap("/tmp/x.pcap".into()));
        let c = model_config(&DevSpec::parse("igb-model").unwrap()).unwrap();
        assert_eq!(c.speed_bps, 1_000_000_000);
        assert_eq!(c.sink, Sink::Count);
        for (s, want) in [
            ("igb-model?speed=2g", "speed=2g"),
            ("igb-model?sink=pcap:", "sink=pcap:"),
            ("igb-model?speeed=1g", "unknown parameter 'speeed'"),
            ("igb-model:x", "no ':' argument"),
            ("igb-model?core=9999", "core=9999"),
        ] {
            let e = model_config(&DevSpec::parse(s).unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn pci_spec_errors_are_clear() {
        let mut r = Registry::with_builtins();
        register(&mut r);
        let e = r.open("igb:zz").err().unwrap().to_string();
        assert!(e.contains("not a PCI address"), "{e}");
        let e = r.open("igb").err().unwrap().to_string();
        assert!(e.contains("igb:BDF"), "{e}");
        let e = r.open("igb:0000:7f:1f.7").err().unwrap().to_string();
        assert!(e.contains("no PCI device 0000:7f:1f.7"), "{e}");
    }
}
