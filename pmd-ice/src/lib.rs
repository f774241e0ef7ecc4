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
        help: "E810 device model driven by the ice PMD: admin queue, TLAN contexts, descriptors, doorbells, MDD, paced at the link speed; frames to a counter, a pcap file or its own RX",
        open: open_model_boxed,
    }
}

/// Registers the ice drivers (`ice-model`, and `ice:BDF` where VFIO is built in).
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
    vec![model_driver()]
}
