//! VFIO: container/group/device, BAR mmap, DMA mapping (IOVA = VA).
