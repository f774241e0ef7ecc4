//! `pmd-ice`: a poll-mode driver for the Intel E810 (ice) PF and a
//! register-level E810 device model.
//!
//! - [`regs`]: every register offset, bit, descriptor field and admin opcode
//!   used, each naming its published definition.
//! - [`adminq`]: admin send/receive queues (descriptors, indirect buffers,
//!   return codes, timeouts, cookies).
//! - [`ctx`]: TLAN (TX) and RLAN (RX) queue-context packing.
//! - [`hw`]: PF reset and the bring-up admin commands.
//! - [`tx`] / [`rx`]: the data path (`ice_tx_map`, `ice_clean_tx_irq`, RX ring).
//! - [`port`]: [`port::IcePort`], the ethdev `Port`.
//! - [`model`]: the `ice-model` device.
//!
//! Without a DDP package the E810 runs in safe mode: no checksum offload, no
//! TSO. The port therefore reports only VLAN insertion in
//! `PortInfo::tx_offload_capa`, and the stack checksums in software.
//!
//! RSS: key and PF LUT through set_rss_key / set_rss_lut, the VSI's
//! `q_opt_rss` (PF LUT, Toeplitz) in add/update_vsi, the hash from the flex
//! descriptor. The hash inputs, which a DDP package's flow profiles would
//! choose, are fixed to the defaults Linux programs (IPv4; IPv4/TCP and
//! IPv4/UDP with ports): see [`port`].

pub mod adminq;
pub mod ctx;
pub mod hw;
pub mod model;
pub mod port;
pub mod regs;
pub mod rx;
pub mod tx;

pub use hw::{IceError, ProbeOptions};
pub use model::{IceModel, ModelConfig, Sink, Speed};
pub use port::IcePort;

use std::sync::Arc;
use wirespeed::eal::pci::PciAddr;
use wirespeed::eal::regs::Mmio;
use wirespeed::eal::vfio::VfioDevice;
use wirespeed::ethdev::{DevSpec, DriverInfo, EthdevError, Port, Registry};

/// Syntax of the model's device spec.
pub const MODEL_SYNTAX: &str =
    "ice-model[?speed=10g|25g|100g&sink=count|pcap:PATH|loopback&pacing=on|off&core=N]";

fn bad(spec: &DevSpec, why: String) -> EthdevError {
    EthdevError::BadSpec {
        spec: spec.raw.clone(),
        why,
    }
}

/// Parses an `ice-model` spec into a model configuration.
pub fn model_config(spec: &DevSpec) -> Result<ModelConfig, EthdevError> {
    spec.check_params(&["speed", "sink", "pacing", "core"])?;
    if spec.arg.is_some() {
        return Err(bad(
            spec,
            "driver 'ice-model' takes no ':' argument; use ?speed=…&sink=…".into(),
        ));
    }
    let mut c = ModelConfig::default();
    if let Some(s) = spec.param("speed") {
        c.speed =
            Speed::parse(s).ok_or_else(|| bad(spec, format!("speed={s}: use 10g, 25g or 100g")))?;
    }
    if let Some(s) = spec.param("sink") {
        c.sink = match s {
            "count" => Sink::Count,
            "loopback" => Sink::Loopback,
            p if p.starts_with("pcap:") && p.len() > 5 => Sink::Pcap(p[5..].into()),
            _ => {
                return Err(bad(
                    spec,
                    format!("sink={s}: use count, loopback or pcap:PATH"),
                ))
            }
        };
    }
    if let Some(s) = spec.param("pacing") {
        c.pacing = match s {
            "on" => true,
            "off" => false,
            _ => return Err(bad(spec, format!("pacing={s}: use on or off"))),
        };
    }
    if spec.param("core").is_some() {
        c.core = Some(spec.param_u64("core", 0)? as usize);
    }
    Ok(c)
}

/// Opens an `ice-model` port: builds the model and probes it with the driver.
pub fn open_model(spec: &DevSpec) -> Result<IcePort<IceModel>, EthdevError> {
    let cfg = model_config(spec)?;
    let model = Arc::new(IceModel::new(cfg)?);
    let dev = model.device_id();
    IcePort::probe(
        &spec.raw,
        model,
        regs::INTEL_VENDOR_ID,
        dev,
        &ProbeOptions::default(),
    )
}

fn open_model_boxed(spec: &DevSpec) -> Result<Box<dyn Port>, EthdevError> {
    Ok(Box::new(open_model(spec)?))
}

/// The `ice-model` driver entry.
pub fn model_driver() -> DriverInfo {
    DriverInfo {
        name: "ice-model",
        syntax: MODEL_SYNTAX,
        help: "E810 device model driven by the ice PMD: admin queue, TLAN contexts, descriptors, doorbells, MDD, paced at the link speed; frames to a counter, a pcap file or its own RX; RSS over 64 RX queues (Toeplitz, 2048-entry LUT)",
        open: open_model_boxed,
    }
}

/// Syntax of the VFIO driver's device spec.
pub const VFIO_SYNTAX: &str = "ice:BDF (an E810 bound to vfio-pci, e.g. ice:0000:3b:00.0)";

/// Opens an E810 PF through VFIO: checks the PCI id from config space, maps
/// BAR0 as an MMIO register window, and runs the same driver the model runs.
pub fn open_vfio(spec: &DevSpec) -> Result<IcePort<Mmio>, EthdevError> {
    spec.check_params(&[])?;
    let bdf = spec.require_arg(VFIO_SYNTAX)?;
    let addr = PciAddr::parse(bdf).map_err(|e| bad(spec, e.to_string()))?;
    let dev_err = |why: String| EthdevError::Device {
        port: spec.raw.clone(),
        why,
    };
    let dev = VfioDevice::open(&addr).map_err(|e| dev_err(e.to_string()))?;
    let (vendor, device) = dev.ids();
    if regs::device_name(vendor, device).is_none() {
        return Err(dev_err(
            IceError::UnsupportedDevice { vendor, device }.to_string(),
        ));
    }
    let bar0 = dev.map_bar(0).map_err(|e| dev_err(e.to_string()))?;
    IcePort::probe(
        &spec.raw,
        Arc::new(bar0),
        vendor,
        device,
        &ProbeOptions::default(),
    )
}

fn open_vfio_boxed(spec: &DevSpec) -> Result<Box<dyn Port>, EthdevError> {
    Ok(Box::new(open_vfio(spec)?))
}

/// The `ice:BDF` driver entry.
pub fn vfio_driver() -> DriverInfo {
    DriverInfo {
        name: "ice",
        syntax: "ice:BDF",
        help: "Intel E810 (ice) PF through VFIO: admin queue, scheduler, VSI, TLAN contexts; safe mode (no DDP package: no checksum offload)",
        open: open_vfio_boxed,
    }
}

/// Registers the ice drivers: `ice:BDF` (VFIO) and `ice-model`.
/// A name already taken is logged and skipped.
pub fn register(reg: &mut Registry) {
    for d in drivers() {
        if let Err(e) = reg.register(d) {
            tracing::warn!("pmd-ice: {e}");
        }
    }
}

/// The drivers this crate provides.
pub fn drivers() -> Vec<DriverInfo> {
    vec![vfio_driver(), model_driver()]
}
