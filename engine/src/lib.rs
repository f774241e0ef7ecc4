//! wirespeed — a DPDK-style poll-mode packet engine that runs the Linux
//! transmit path (socket → UDP → IP → neighbour → XPS → qdisc → BQL → driver →
//! doorbell → completion) in user space, on pinned cores.
//!
//! Layout (see `DESIGN.md`):
//! - [`eal`]: lcores, TSC clock, DMA memory and IOVA, register access seam.
//! - [`mbuf`]: mempools in DMA memory and the owning packet handle [`mbuf::Mbuf`].
//! - [`ethdev`]: the driver interface (`Port`, `TxQueue`, `RxQueue`), device specs,
//!   the driver registry and the software ports (`null`, `pcap`, `ring`).

pub mod eal;
pub mod ethdev;
pub mod mbuf;
pub mod netdev;
pub mod runtime;
pub mod stack;
