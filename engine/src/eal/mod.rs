//! Environment abstraction layer: lcores, clock, DMA memory, register access.

pub mod dma;
pub mod file;
pub mod lcore;
pub mod regs;
pub mod signal;
pub mod tsc;
pub mod wait;

pub use dma::{DmaRegion, IovaMode, PageMode};
pub use lcore::{CoreList, LcoreError};
pub use regs::RegisterSpace;
pub use tsc::Tsc;
pub mod pci;
pub mod pktmmap;
pub mod vfio;
pub mod xsk;
