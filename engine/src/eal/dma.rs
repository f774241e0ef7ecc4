//! DMA memory: regions from 2 MiB hugepages, or 4 KiB pages with one warning
//! when none are reserved (DPDK's `--no-huge`), each with the IOVA a device
//! uses to reach it.
//!
//! Every live region is listed in a process-wide table so that
//! - a VFIO container maps each region with `VFIO_IOMMU_MAP_DMA` (through a
//!   registered [`DmaMapper`]), and
//! - device models translate IOVAs through an IOMMU-like [`IovaMap`]: an IOVA
//!   outside every region is a fault, as on real hardware.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Once};

/// How DMA memory is backed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PageMode {
    /// 2 MiB hugepages when reserved, else 4 KiB pages with one warning.
    #[default]
    Auto,
    /// 2 MiB hugepages only (error when none are free).
    Huge,
    /// 4 KiB pages only (DPDK `--no-huge`).
    Small,
}

/// How a region's device address is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IovaMode {
    /// IOVA = virtual address (VFIO type1 IOMMU, software ports, device models).
    #[default]
    Va,
    /// IOVA = physical address from `/proc/self/pagemap` (no-IOMMU mode).
    Pa,
}

/// DMA memory errors.
#[derive(Debug, thiserror::Error)]
pub enum DmaError {
    #[error("no free 2 MiB hugepages for {len} bytes of DMA memory; reserve some with `echo 512 > /proc/sys/vm/nr_hugepages` or run with --no-huge")]
    NoHugepages { len: usize },
    #[error("could not allocate {len} bytes of DMA memory: {why}")]
    Alloc { len: usize, why: String },
    #[error("IOVA mode 'pa' needs physical addresses from /proc/self/pagemap: {why}; run as root, or use IOVA mode 'va' (VFIO)")]
    Pagemap { why: String },
    #[error("IOVA mode 'pa' needs physically contiguous memory; this region is not (use hugepages, a smaller region, or IOVA mode 'va')")]
    NotContiguous,
    #[error("DMA mapping failed ({mapper}): {why}")]
    Map { mapper: String, why: String },
}

static PAGE_MODE: AtomicU8 = AtomicU8::new(0);
static IOVA_MODE: AtomicU8 = AtomicU8::new(0);
static FALLBACK_WARNING: Once = Once::new();
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static GENERATION: AtomicU64 = AtomicU64::new(1);
static TABLE: Mutex<Vec<Arc<RegionInner>>> = Mutex::new(Vec::new());
static MAPPERS: Mutex<Vec<Arc<dyn DmaMapper>>> = Mutex::new(Vec::new());

/// Sets the process-wide default page mode (`--huge` / `--no-huge`).
pub fn set_page_mode(m: PageMode) {
    PAGE_MODE.store(m as u8, Ordering::Relaxed);
}

/// The process-wide default page mode.
pub fn page_mode() -> PageMode {
    match PAGE_MODE.load(Ordering::Relaxed) {
        1 => PageMode::Huge,
        2 => PageMode::Small,
        _ => PageMode::Auto,
    }
}

/// Sets the process-wide IOVA mode.
pub fn set_iova_mode(m: IovaMode) {
    IOVA_MODE.store(m as u8, Ordering::Relaxed);
}

/// The process-wide IOVA mode.
pub fn iova_mode() -> IovaMode {
    match IOVA_MODE.load(Ordering::Relaxed) {
        1 => IovaMode::Pa,
        _ => IovaMode::Va,
    }
}

/// Something that must learn about every DMA region: a VFIO container
/// (`VFIO_IOMMU_MAP_DMA`), for instance.
pub trait DmaMapper: Send + Sync {
    fn name(&self) -> String;
    fn map(&self, va: u64, iova: u64, len: usize) -> Result<(), String>;
    fn unmap(&self, iova: u64, len: usize);
}

struct RegionInner {
    id: u64,
    va: NonNull<u8>,
    len: usize,
    iova: u64,
    huge: bool,
    /// Per-page IOVAs when the region is not IOVA-contiguous (IOVA mode `pa`
    /// over pages that are not physically adjacent); `None` when it is.
    pages: Option<Box<[u64]>>,
    /// The region as runs of IOVA-contiguous memory: what the IOMMU (and a
    /// device model's [`IovaMap`]) maps. One run when IOVA-contiguous.
    runs: Vec<IovaRun>,
    _map: memmap2::MmapMut,
}

/// A stretch of a region whose IOVAs are contiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IovaRun {
    iova: u64,
    /// Offset into the region.
    off: usize,
    len: usize,
}

impl RegionInner {
    fn page_size(&self) -> usize {
        if self.huge {
            HUGE
        } else {
            SMALL
        }
    }
}

// SAFETY: the region is plain memory that stays mapped while any Arc lives;
// concurrent access is the device-DMA contract (driver and device never write
// the same bytes at once), as with real DMA memory.
unsafe impl Send for RegionInner {}
// SAFETY: see above.
unsafe impl Sync for RegionInner {}

/// A block of DMA-able memory with a known IOVA. Dropping it removes it from
/// the IOVA table (and unmaps it from VFIO containers); the memory itself is
/// freed once no device model holds a snapshot that names it.
pub struct DmaRegion {
    inner: Arc<RegionInner>,
}

impl std::fmt::Debug for DmaRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaRegion")
            .field("va", &self.inner.va)
            .field("len", &self.inner.len)
            .field("iova", &format_args!("{:#x}", self.inner.iova))
            .field("huge", &self.inner.huge)
            .finish()
    }
}

const HUGE: usize = 2 << 20;
const SMALL: usize = 4096;

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

impl DmaRegion {
    /// Allocates `len` bytes (rounded up to the page size) with the process-wide
    /// page and IOVA modes.
    pub fn alloc(len: usize) -> Result<DmaRegion, DmaError> {
        Self::alloc_with(len, page_mode(), iova_mode())
    }

    /// Allocates with explicit modes. Memory is zeroed and populated. The
    /// region is IOVA-contiguous (descriptor rings need that): in IOVA mode
    /// `pa` over pages that are not physically adjacent this is
    /// [`DmaError::NotContiguous`].
    pub fn alloc_with(len: usize, pages: PageMode, iova: IovaMode) -> Result<DmaRegion, DmaError> {
        Self::alloc_inner(pages, iova, true, |_| len)
    }

    /// Allocates memory for objects that never cross a page boundary (a
    /// mempool's): `len_for(page_size)` gives the bytes needed once the page
    /// size (2 MiB or 4 KiB, as the page mode resolves) is known. The region
    /// need not be IOVA-contiguous: in IOVA mode `pa` each page keeps its own
    /// physical address ([`DmaRegion::iova_at`] looks it up), as DPDK's
    /// `rte_mempool_populate_virt` populates "the largest group of
    /// contiguous pages" at a time.
    pub fn alloc_paged(
        pages: PageMode,
        iova: IovaMode,
        len_for: impl Fn(usize) -> usize,
    ) -> Result<DmaRegion, DmaError> {
        Self::alloc_inner(pages, iova, false, len_for)
    }

    fn alloc_inner(
        pages: PageMode,
        iova: IovaMode,
        need_contig: bool,
        len_for: impl Fn(usize) -> usize,
    ) -> Result<DmaRegion, DmaError> {
        let huge_len = len_for(HUGE).max(1);
        let small_len = len_for(SMALL).max(1);
        let (map, huge) = match pages {
            PageMode::Huge => (
                map_huge(huge_len).ok_or(DmaError::NoHugepages { len: huge_len })?,
                true,
            ),
            PageMode::Small => (map_small(small_len)?, false),
            PageMode::Auto => match map_huge(huge_len) {
                Some(m) => (m, true),
                None => {
                    FALLBACK_WARNING.call_once(|| {
                        tracing::warn!(
                            "no free 2 MiB hugepages: using 4 KiB pages for DMA memory \
                             (reserve some with `echo 512 > /proc/sys/vm/nr_hugepages`; \
                             --no-huge silences this)"
                        )
                    });
                    (map_small(small_len)?, false)
                }
            },
        };
        Self::register(map, huge, iova, need_contig)
    }

    /// Lists a fresh mapping in the IOVA table (after working out its
    /// IOVAs) and tells every mapper.
    fn register(
        mut map: memmap2::MmapMut,
        huge: bool,
        iova: IovaMode,
        need_contig: bool,
    ) -> Result<DmaRegion, DmaError> {
        let len = map.len();
        let va = NonNull::new(map.as_mut_ptr()).ok_or(DmaError::Alloc {
            len,
            why: "null mapping".into(),
        })?;
        let page = if huge { HUGE } else { SMALL };
        let (pages, runs) = match iova {
            IovaMode::Va => (
                None,
                vec![IovaRun {
                    iova: va.as_ptr() as u64,
                    off: 0,
                    len,
                }],
            ),
            IovaMode::Pa => {
                let pas = physical_pages(va.as_ptr() as u64, len, page)?;
                let runs = iova_runs(&pas, page, len);
                if runs.len() == 1 {
                    (None, runs)
                } else if need_contig {
                    return Err(DmaError::NotContiguous);
                } else {
                    (Some(pas.into_boxed_slice()), runs)
                }
            }
        };
        let iova_base = runs[0].iova;
        let inner = Arc::new(RegionInner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            va,
            len,
            iova: iova_base,
            huge,
            pages,
            runs,
            _map: map,
        });
        let mappers: Vec<_> = MAPPERS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (i, m) in mappers.iter().enumerate() {
            if let Err(why) = map_runs(m.as_ref(), &inner) {
                for done in &mappers[..i] {
                    unmap_runs(done.as_ref(), &inner);
                }
                return Err(DmaError::Map {
                    mapper: m.name(),
                    why,
                });
            }
        }
        TABLE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(inner.clone());
        GENERATION.fetch_add(1, Ordering::Release);
        Ok(DmaRegion { inner })
    }

    /// Start of the region in this process.
    pub fn as_ptr(&self) -> *mut u8 {
        self.inner.va.as_ptr()
    }

    /// Length in bytes (a whole number of pages).
    pub fn len(&self) -> usize {
        self.inner.len
    }

    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    /// Device address of the region's first byte.
    pub fn iova(&self) -> u64 {
        self.inner.iova
    }

    /// Device address of `offset` bytes into the region (looked up per page
    /// when the region is not IOVA-contiguous). Bytes `offset..offset + n`
    /// are contiguous for the device only within one page, unless
    /// [`DmaRegion::iova_contiguous`].
    pub fn iova_at(&self, offset: usize) -> u64 {
        debug_assert!(offset <= self.inner.len);
        match &self.inner.pages {
            None => self.inner.iova + offset as u64,
            Some(p) => {
                let ps = self.inner.page_size();
                p[offset / ps] + (offset % ps) as u64
            }
        }
    }

    /// Whether the device sees the whole region at consecutive IOVAs (IOVA
    /// mode `va`, or physically contiguous pages in mode `pa`).
    pub fn iova_contiguous(&self) -> bool {
        self.inner.pages.is_none()
    }

    /// Whether the region sits on 2 MiB hugepages.
    pub fn is_huge(&self) -> bool {
        self.inner.huge
    }

    /// Size of the pages backing the region (2 MiB or 4 KiB).
    pub fn page_size(&self) -> usize {
        self.inner.page_size()
    }
}

impl Drop for DmaRegion {
    fn drop(&mut self) {
        let id = self.inner.id;
        TABLE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|r| r.id != id);
        GENERATION.fetch_add(1, Ordering::Release);
        let mappers: Vec<_> = MAPPERS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for m in mappers {
            unmap_runs(m.as_ref(), &self.inner);
        }
    }
}

fn map_runs(m: &dyn DmaMapper, r: &RegionInner) -> Result<(), String> {
    for (i, run) in r.runs.iter().enumerate() {
        if let Err(e) = m.map(r.va.as_ptr() as u64 + run.off as u64, run.iova, run.len) {
            for done in &r.runs[..i] {
                m.unmap(done.iova, done.len);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn unmap_runs(m: &dyn DmaMapper, r: &RegionInner) {
    for run in &r.runs {
        m.unmap(run.iova, run.len);
    }
}

fn map_huge(len: usize) -> Option<memmap2::MmapMut> {
    let len = round_up(len, HUGE);
    memmap2::MmapOptions::new()
        .len(len)
        .huge(Some(21))
        .populate()
        .map_anon()
        .ok()
}

fn map_small(len: usize) -> Result<memmap2::MmapMut, DmaError> {
    let len = round_up(len, SMALL);
    let m = memmap2::MmapOptions::new()
        .len(len)
        .populate()
        .map_anon()
        .map_err(|e| DmaError::Alloc {
            len,
            why: e.to_string(),
        })?;
    // Pin it so a device's view stays valid; lack of RLIMIT_MEMLOCK is not fatal
    // for software ports and models.
    let _ = m.lock();
    Ok(m)
}

/// Physical address of the page holding `va`, from `/proc/self/pagemap`.
pub fn virt_to_phys(va: u64) -> Result<u64, DmaError> {
    use std::io::{Read, Seek, SeekFrom};
    let page = 4096u64;
    let mut f = std::fs::File::open("/proc/self/pagemap")
        .map_err(|e| DmaError::Pagemap { why: e.to_string() })?;
    f.seek(SeekFrom::Start((va / page) * 8))
        .map_err(|e| DmaError::Pagemap { why: e.to_string() })?;
    let mut b = [0u8; 8];
    f.read_exact(&mut b)
        .map_err(|e| DmaError::Pagemap { why: e.to_string() })?;
    let entry = u64::from_le_bytes(b);
    let pfn = entry & ((1u64 << 55) - 1);
    if entry >> 63 == 0 || pfn == 0 {
        return Err(DmaError::Pagemap {
            why: "page not present or PFN hidden (needs CAP_SYS_ADMIN)".into(),
        });
    }
    Ok(pfn * page + va % page)
}

/// Physical address of each `page`-sized page of `va..va + len`.
fn physical_pages(va: u64, len: usize, page: usize) -> Result<Vec<u64>, DmaError> {
    (0..len.div_ceil(page))
        .map(|i| virt_to_phys(va + (i * page) as u64))
        .collect()
}

/// Coalesces per-page addresses into IOVA-contiguous runs.
fn iova_runs(pas: &[u64], page: usize, len: usize) -> Vec<IovaRun> {
    let mut runs: Vec<IovaRun> = Vec::new();
    for (i, &pa) in pas.iter().enumerate() {
        let off = i * page;
        let plen = page.min(len - off);
        match runs.last_mut() {
            Some(r) if r.iova + r.len as u64 == pa => r.len += plen,
            _ => runs.push(IovaRun {
                iova: pa,
                off,
                len: plen,
            }),
        }
    }
    runs
}

/// Registers a mapper; it is told about every existing region now and every
/// new one from then on.
pub fn register_mapper(m: Arc<dyn DmaMapper>) -> Result<(), DmaError> {
    let regions: Vec<_> = TABLE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for r in &regions {
        map_runs(m.as_ref(), r).map_err(|why| DmaError::Map {
            mapper: m.name(),
            why,
        })?;
    }
    MAPPERS.lock().unwrap_or_else(|e| e.into_inner()).push(m);
    Ok(())
}

/// Whether any mapper (a VFIO container: a device behind an IOMMU) is
/// registered.
pub fn has_mappers() -> bool {
    !MAPPERS.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
}

/// Removes a mapper (by identity) without unmapping.
pub fn unregister_mapper(m: &Arc<dyn DmaMapper>) {
    MAPPERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|x| !Arc::ptr_eq(x, m));
}

/// Changes whenever a region is added or removed.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Sum of all live regions' sizes and how many are on hugepages.
pub fn usage() -> (usize, usize, usize) {
    let t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let bytes = t.iter().map(|r| r.len).sum();
    let huge = t.iter().filter(|r| r.huge).count();
    (t.len(), huge, bytes)
}

/// Whether `len` bytes at `iova` lie inside one IOVA-contiguous run of a
/// live DMA region: what the IOMMU (VFIO's `VFIO_IOMMU_MAP_DMA` table, a
/// model's [`IovaMap`]) would let the device reach. The PMDs assert it, in
/// debug builds, on every buffer address they write into a descriptor, so a
/// driver bug (or an mbuf header a device overwrote) can never aim the
/// device at memory outside what was mapped for it. Each thread keeps a
/// copy of the table's ranges (addresses only: it keeps no region alive),
/// re-read when [`generation`] changes.
pub fn iova_mapped(iova: u64, len: usize) -> bool {
    thread_local! {
        static RANGES: std::cell::RefCell<(u64, Vec<(u64, u64)>)> =
            const { std::cell::RefCell::new((0, Vec::new())) };
    }
    RANGES.with(|r| {
        let mut r = r.borrow_mut();
        let g = generation();
        if r.0 != g {
            let t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
            let mut v: Vec<(u64, u64)> = t
                .iter()
                .flat_map(|x| x.runs.iter().map(|run| (run.iova, run.len as u64)))
                .collect();
            v.sort_unstable();
            *r = (g, v);
        }
        let i = r.1.partition_point(|&(start, _)| start <= iova);
        i > 0 && {
            let (start, n) = r.1[i - 1];
            (iova - start)
                .checked_add(len as u64)
                .is_some_and(|end| end <= n)
        }
    })
}

/// A translated view of device memory: the IOMMU a device model sits behind.
/// A snapshot keeps the regions it names alive, so a model thread never
/// touches freed memory; refresh it when [`generation`] changes.
#[derive(Clone, Default)]
pub struct IovaMap {
    /// Every IOVA-contiguous run of every region, sorted by IOVA.
    runs: Vec<MappedRun>,
    generation: u64,
}

#[derive(Clone)]
struct MappedRun {
    iova: u64,
    len: usize,
    va: NonNull<u8>,
    /// Keeps the memory mapped while the snapshot lives.
    _region: Arc<RegionInner>,
}

// SAFETY: `va` points into `_region`, which the Arc keeps mapped; the map
// only hands out pointers checked against `len`, as `RegionInner` does.
unsafe impl Send for MappedRun {}
// SAFETY: see above.
unsafe impl Sync for MappedRun {}

impl IovaMap {
    /// The current table.
    pub fn snapshot() -> IovaMap {
        let generation = generation();
        let regions: Vec<_> = TABLE.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut runs: Vec<MappedRun> = regions
            .iter()
            .flat_map(|r| {
                r.runs.iter().map(move |run| MappedRun {
                    iova: run.iova,
                    len: run.len,
                    // SAFETY: run.off + run.len <= r.len: inside the mapping.
                    va: unsafe { NonNull::new_unchecked(r.va.as_ptr().add(run.off)) },
                    _region: r.clone(),
                })
            })
            .collect();
        runs.sort_by_key(|r| r.iova);
        IovaMap { runs, generation }
    }

    /// Re-reads the table if it changed since this snapshot.
    #[inline]
    pub fn refresh(&mut self) {
        if generation() != self.generation {
            *self = IovaMap::snapshot();
        }
    }

    /// Host pointer for `len` bytes at `iova`, or `None` (an IOMMU fault) when
    /// any part of the range lies outside every mapped region.
    #[inline]
    pub fn translate(&self, iova: u64, len: usize) -> Option<NonNull<u8>> {
        let i = self.runs.partition_point(|r| r.iova <= iova);
        if i == 0 {
            return None;
        }
        let r = &self.runs[i - 1];
        let off = iova - r.iova;
        if off.checked_add(len as u64)? > r.len as u64 {
            return None;
        }
        // SAFETY: off + len <= region length, so the pointer stays inside the mapping.
        NonNull::new(unsafe { r.va.as_ptr().add(off as usize) })
    }

    /// Copies device memory out (a DMA read). `false` on fault; nothing is read.
    pub fn read(&self, iova: u64, out: &mut [u8]) -> bool {
        match self.translate(iova, out.len()) {
            Some(p) => {
                // SAFETY: `translate` checked the whole range is mapped; the source
                // is plain memory in a live region.
                unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), out.as_mut_ptr(), out.len()) };
                true
            }
            None => false,
        }
    }

    /// Copies into device memory (a DMA write). `false` on fault; nothing is written.
    pub fn write(&self, iova: u64, data: &[u8]) -> bool {
        match self.translate(iova, data.len()) {
            Some(p) => {
                // SAFETY: `translate` checked the whole range is mapped.
                unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p.as_ptr(), data.len()) };
                true
            }
            None => false,
        }
    }

    /// Reads a little-endian u64 (a descriptor word) with a volatile load.
    pub fn read_u64(&self, iova: u64) -> Option<u64> {
        let p = self.translate(iova, 8)?;
        if !(p.as_ptr() as usize).is_multiple_of(8) {
            let mut b = [0u8; 8];
            self.read(iova, &mut b);
            return Some(u64::from_le_bytes(b));
        }
        // SAFETY: mapped, 8 bytes, 8-aligned.
        Some(u64::from_le(unsafe {
            std::ptr::read_volatile(p.as_ptr() as *const u64)
        }))
    }

    /// Writes a little-endian u64 (a descriptor write-back) with a volatile store.
    pub fn write_u64(&self, iova: u64, v: u64) -> bool {
        let Some(p) = self.translate(iova, 8) else {
            return false;
        };
        if !(p.as_ptr() as usize).is_multiple_of(8) {
            return self.write(iova, &v.to_le_bytes());
        }
        // SAFETY: mapped, 8 bytes, 8-aligned.
        unsafe { std::ptr::write_volatile(p.as_ptr() as *mut u64, v.to_le()) };
        true
    }
}

/// What `wirespeed doctor` reports about hugepages.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HugepageInfo {
    pub size_kib: u64,
    pub total: u64,
    pub free: u64,
}

/// Reads `/proc/meminfo` for the default hugepage pool.
pub fn hugepage_info() -> HugepageInfo {
    let mut h = HugepageInfo::default();
    if let Ok(s) = std::fs::read_to_string("/proc/meminfo") {
        for line in s.lines() {
            let mut it = line.split_whitespace();
            let (Some(k), Some(v)) = (it.next(), it.next()) else {
                continue;
            };
            let v: u64 = v.parse().unwrap_or(0);
            match k {
                "HugePages_Total:" => h.total = v,
                "HugePages_Free:" => h.free = v,
                "Hugepagesize:" => h.size_kib = v,
                _ => {}
            }
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_pages_region_is_zeroed_and_translates() {
        let r = DmaRegion::alloc_with(10_000, PageMode::Small, IovaMode::Va).unwrap();
        assert_eq!(r.len(), 12_288);
        assert_eq!(r.iova(), r.as_ptr() as u64);
        let map = IovaMap::snapshot();
        assert!(map.translate(r.iova(), r.len()).is_some());
        assert!(map.translate(r.iova() + r.len() as u64 - 4, 8).is_none());
        assert!(map.write_u64(r.iova() + 8, 0xdead_beef));
        assert_eq!(map.read_u64(r.iova() + 8), Some(0xdead_beef));
        // SAFETY: test reads inside the region.
        assert_eq!(unsafe { *r.as_ptr() }, 0);
    }

    #[test]
    fn iova_mapped_knows_every_live_region_and_forgets_a_dropped_one() {
        let r = DmaRegion::alloc_with(8192, PageMode::Small, IovaMode::Va).unwrap();
        let iova = r.iova();
        assert!(iova_mapped(iova, 8192));
        assert!(iova_mapped(iova + 100, 64));
        assert!(!iova_mapped(iova + 8190, 8), "runs past the end");
        assert!(!iova_mapped(iova.wrapping_sub(4096), 64), "before it");
        assert!(!iova_mapped(u64::MAX - 8, 64), "no overflow");
        let before = usage().0;
        drop(r);
        assert!(!iova_mapped(iova, 64), "unmapped once dropped");
        assert_eq!(usage().0, before - 1, "the check keeps no region alive");
    }

    #[test]
    fn dropped_region_faults_after_refresh() {
        let r = DmaRegion::alloc_with(4096, PageMode::Small, IovaMode::Va).unwrap();
        let iova = r.iova();
        let mut map = IovaMap::snapshot();
        assert!(map.translate(iova, 64).is_some());
        drop(r);
        map.refresh();
        assert!(map.translate(iova, 64).is_none());
        let mut b = [0u8; 4];
        assert!(!map.read(iova, &mut b));
    }

    #[test]
    fn huge_mode_without_reserved_pages_is_a_clear_error() {
        if hugepage_info().free > 0 {
            return;
        }
        let e = DmaRegion::alloc_with(4096, PageMode::Huge, IovaMode::Va).unwrap_err();
        assert!(e.to_string().contains("nr_hugepages"));
    }

    #[test]
    fn hugepage_regions_when_reserved() {
        let before = hugepage_info();
        if before.free < 2 {
            eprintln!("no free hugepages: skipping (scripts/test reserves some when it can)");
            return;
        }
        let r = DmaRegion::alloc_with(4096, PageMode::Huge, IovaMode::Va).unwrap();
        assert!(r.is_huge());
        assert_eq!(r.len(), 2 << 20, "rounded up to one 2 MiB page");
        // Auto picks hugepages when there are free ones.
        let a = DmaRegion::alloc_with(4096, PageMode::Auto, IovaMode::Va).unwrap();
        assert!(a.is_huge());
    }

    #[test]
    fn physical_iova_mode_uses_pagemap() {
        if hugepage_info().free < 1 || virt_to_phys(&0u8 as *const u8 as u64).is_err() {
            eprintln!("needs a free hugepage and root for /proc/self/pagemap: skipping");
            return;
        }
        let r = DmaRegion::alloc_with(4096, PageMode::Huge, IovaMode::Pa).unwrap();
        assert_eq!(r.iova(), virt_to_phys(r.as_ptr() as u64).unwrap());
        assert_ne!(r.iova(), r.as_ptr() as u64);
        // A 4 KiB region bigger than a page is refused in PA mode unless contiguous.
        match DmaRegion::alloc_with(64 << 10, PageMode::Small, IovaMode::Pa) {
            Ok(s) => assert_eq!(s.iova(), virt_to_phys(s.as_ptr() as u64).unwrap()),
            Err(e) => assert!(matches!(e, DmaError::NotContiguous), "{e}"),
        }
    }

    /// IOVA mode `pa` on 4 KiB pages: a paged region keeps each page's
    /// physical address; the device view (IOMMU runs) never joins two pages
    /// that are not adjacent, so a buffer across them faults in a model.
    #[test]
    fn paged_region_in_pa_mode_has_per_page_iovas() {
        if virt_to_phys(&0u8 as *const u8 as u64).is_err() {
            eprintln!("needs /proc/self/pagemap physical addresses (root): skipping");
            return;
        }
        let r = DmaRegion::alloc_paged(PageMode::Small, IovaMode::Pa, |_| 64 << 10).unwrap();
        assert_eq!(r.page_size(), 4096);
        let map = IovaMap::snapshot();
        let mut split = None;
        for i in 0..16usize {
            let va = r.as_ptr() as u64 + (i * 4096) as u64;
            assert_eq!(r.iova_at(i * 4096 + 100), virt_to_phys(va).unwrap() + 100);
            assert!(map.translate(r.iova_at(i * 4096), 4096).is_some());
            if i > 0 && r.iova_at(i * 4096) != r.iova_at(i * 4096 - 1) + 1 {
                split = Some(i);
            }
        }
        assert_eq!(r.iova_contiguous(), split.is_none());
        if let Some(i) = split {
            // Two bytes at the end of page i-1 and two at the start of page i.
            assert!(map.translate(r.iova_at(i * 4096 - 2), 4).is_none());
        }
    }

    struct Recorder(Mutex<Vec<(u64, usize, bool)>>);
    impl DmaMapper for Recorder {
        fn name(&self) -> String {
            "recorder".into()
        }
        fn map(&self, _va: u64, iova: u64, len: usize) -> Result<(), String> {
            self.0.lock().unwrap().push((iova, len, true));
            Ok(())
        }
        fn unmap(&self, iova: u64, len: usize) {
            self.0.lock().unwrap().push((iova, len, false));
        }
    }

    #[test]
    fn mappers_see_new_and_dropped_regions() {
        let rec = Arc::new(Recorder(Mutex::new(Vec::new())));
        let dynm: Arc<dyn DmaMapper> = rec.clone();
        register_mapper(dynm.clone()).unwrap();
        let r = DmaRegion::alloc_with(4096, PageMode::Small, IovaMode::Va).unwrap();
        let iova = r.iova();
        drop(r);
        unregister_mapper(&dynm);
        let log = rec.0.lock().unwrap();
        assert!(log.contains(&(iova, 4096, true)));
        assert!(log.contains(&(iova, 4096, false)));
    }
}
