//! The register-access seam: the only way a PMD touches device registers.
//!
//! Two kinds of implementation exist: [`Mmio`] over a BAR mapped from a VFIO
//! device fd (volatile accesses, monomorphized, zero cost), and the register-level
//! device models in the PMD crates, which implement the side effects the NIC has.

use std::ptr::NonNull;
use std::sync::Arc;

/// 32-bit register access at byte offsets into BAR0.
pub trait RegisterSpace: Send + Sync + 'static {
    fn read32(&self, offset: u32) -> u32;
    fn write32(&self, offset: u32, value: u32);
    /// Size of the register window in bytes.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<R: RegisterSpace + ?Sized> RegisterSpace for Arc<R> {
    #[inline(always)]
    fn read32(&self, offset: u32) -> u32 {
        (**self).read32(offset)
    }
    #[inline(always)]
    fn write32(&self, offset: u32, value: u32) {
        (**self).write32(offset, value)
    }
    fn len(&self) -> usize {
        (**self).len()
    }
}

/// Keeps a mapping alive (the mmap of a BAR, or the model behind it).
pub trait MappingOwner: Send + Sync {}
impl<T: Send + Sync> MappingOwner for T {}

/// A memory-mapped register window (a BAR mmapped from a VFIO device).
pub struct Mmio {
    base: NonNull<u8>,
    len: usize,
    _owner: Arc<dyn MappingOwner>,
}

// SAFETY: MMIO registers are accessed only with volatile 32-bit loads/stores,
// which the device serialises; the mapping lives as long as `_owner`.
unsafe impl Send for Mmio {}
// SAFETY: as above; concurrent volatile accesses to device registers are what
// the hardware expects (each queue's doorbell is written by its one owner).
unsafe impl Sync for Mmio {}

impl Mmio {
    /// # Safety
    /// `base` must point at a mapping of at least `len` bytes of device registers
    /// that stays valid while `owner` lives.
    pub unsafe fn new(base: NonNull<u8>, len: usize, owner: Arc<dyn MappingOwner>) -> Mmio {
        Mmio {
            base,
            len,
            _owner: owner,
        }
    }

    #[inline(always)]
    fn check(&self, offset: u32) -> usize {
        let o = offset as usize;
        assert!(
            o + 4 <= self.len && o.is_multiple_of(4),
            "register offset {offset:#x} outside BAR of {} bytes",
            self.len
        );
        o
    }
}

impl RegisterSpace for Mmio {
    #[inline(always)]
    fn read32(&self, offset: u32) -> u32 {
        let o = self.check(offset);
        // SAFETY: `o` is 4-aligned and inside the mapping (checked above).
        unsafe { std::ptr::read_volatile(self.base.as_ptr().add(o) as *const u32) }
    }
    #[inline(always)]
    fn write32(&self, offset: u32, value: u32) {
        let o = self.check(offset);
        // SAFETY: `o` is 4-aligned and inside the mapping (checked above).
        unsafe { std::ptr::write_volatile(self.base.as_ptr().add(o) as *mut u32, value) }
    }
    fn len(&self) -> usize {
        self.len
    }
}
