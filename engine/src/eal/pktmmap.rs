//! Kernel-shared packet rings (`PACKET_MMAP`, Documentation/networking/
//! packet_mmap.rst): an `AF_PACKET` socket bound to one interface, a
//! `TPACKET_V2` TX ring and a `TPACKET_V3` RX block ring mapped into our
//! address space. Like DMA memory, the rings are memory another agent (the
//! kernel) reads and writes behind our back: every status word is accessed
//! with acquire/release atomics, and the raw pointer work stays here, behind
//! a safe interface for the `af_packet` port (`ethdev/af_packet.rs`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

/// `ETH_P_ALL` in network order, as `socket(2)` and `sockaddr_ll` want it.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

/// Most parts [`PacketSocket::send_gather`] takes (a virtio-net header,
/// a super-segment's headers and its chain of up to 64 buffers).
pub const MAX_GATHER: usize = 68;

/// An `AF_PACKET`/`SOCK_RAW` socket bound to one interface.
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl PacketSocket {
    /// The socket's fd: `packet_poll` reports it readable while a frame
    /// of its RX ring is ours (the one before the kernel's head is not
    /// `TP_STATUS_KERNEL`, or a `TPACKET_V3` block was retired).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// `socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL))` bound to `ifindex`
    /// (bound only once the rings are set up: see [`PacketSocket::bind`]).
    pub fn open(ifindex: i32) -> io::Result<PacketSocket> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, ETH_P_ALL_BE as i32) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PacketSocket { fd, ifindex })
    }

    /// `socket(AF_PACKET, SOCK_RAW, 0)`: a socket that receives nothing
    /// (protocol 0 registers no packet hook: `packet_create`), to hold
    /// interface memberships such as `PACKET_MR_PROMISC`.
    pub fn open_silent(ifindex: i32) -> io::Result<PacketSocket> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PacketSocket { fd, ifindex })
    }

    /// `bind(2)` to the interface (after the rings, as packet_mmap.rst does).
    pub fn bind(&self) -> io::Result<()> {
        self.bind_proto(ETH_P_ALL_BE)
    }

    /// `bind(2)` to the interface with protocol 0: the socket sends but
    /// hooks no receive path (`packet_do_bind` registers no `prot_hook`
    /// for protocol 0), so no frame of the interface is cloned to it; what
    /// it sends gets its protocol from the Ethernet header
    /// (`packet_parse_headers` for `SOCK_RAW`).
    pub fn bind_send_only(&self) -> io::Result<()> {
        self.bind_proto(0)
    }

    fn bind_proto(&self, proto_be: u16) -> io::Result<()> {
        // SAFETY: zeroed sockaddr_ll is a valid value; we fill the fields we need.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = proto_be;
        sa.sll_ifindex = self.ifindex;
        // SAFETY: `sa` lives across the call and its size is passed.
        let r = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// `setsockopt(SOL_PACKET, opt, &val)`.
    pub fn set<T>(&self, opt: i32, val: &T) -> io::Result<()> {
        // SAFETY: `val` is a live value of the size passed.
        let r = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                opt,
                val as *const T as *const libc::c_void,
                std::mem::size_of::<T>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// `PACKET_STATISTICS` as `tpacket_stats_v3` (the kernel resets them on
    /// each read): (packets, drops, freeze_q_cnt).
    pub fn stats_v3(&self) -> io::Result<(u32, u32, u32)> {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as u32;
        // SAFETY: `st` and `len` live across the call; the kernel writes at most `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                &mut st as *mut libc::tpacket_stats_v3 as *mut libc::c_void,
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((st.tp_packets, st.tp_drops, st.tp_freeze_q_cnt))
    }

    /// The TX kick: `sendto(fd, NULL, 0, MSG_DONTWAIT)` makes the kernel
    /// send every frame marked `TP_STATUS_SEND_REQUEST` (`tpacket_snd`).
    pub fn kick(&self) -> io::Result<()> {
        // SAFETY: a null buffer of length 0 and no address are what the TX
        // ring protocol asks for.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            // Nothing to send, or the device queue is busy: the frames stay
            // requested and the next kick sends them.
            if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::ENOBUFS)) {
                return Ok(());
            }
            return Err(e);
        }
        Ok(())
    }

    /// `SO_SNDBUFFORCE` (root: past `net.core.wmem_max`), else `SO_SNDBUF`.
    pub fn set_sndbuf(&self, bytes: i32) -> io::Result<()> {
        for opt in [libc::SO_SNDBUFFORCE, libc::SO_SNDBUF] {
            // SAFETY: `bytes` is a live i32 of the size passed.
            let r = unsafe {
                libc::setsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    &bytes as *const i32 as *const libc::c_void,
                    std::mem::size_of::<i32>() as u32,
                )
            };
            if r == 0 {
                return Ok(());
            }
        }
        Err(io::Error::last_os_error())
    }

    /// One frame gathered from `parts` by `sendmsg(MSG_DONTWAIT)` on a
    /// socket without a TX ring: `packet_snd`, whose
    /// `skb_copy_datagram_from_iter` copies the bytes straight from the
    /// parts (mbuf buffers) into the skb — the only copy of them, and into
    /// pages of the kernel's own, so a veth forwarding the skb to another
    /// namespace need not copy it again (a `TPACKET_V2` ring frame's pages
    /// are the ring's: `tpacket_fill_skb` marks the skb zero-copy
    /// (`skb_zcopy_set_nouarg`), and `__dev_forward_skb` →
    /// `skb_orphan_frags` copies it out with `skb_copy_ubufs`). With
    /// `PACKET_VNET_HDR` the first part is the virtio-net header. At most
    /// [`MAX_GATHER`] parts. `EAGAIN`/`ENOBUFS` mean the send buffer is
    /// full (try again after completions).
    pub fn send_gather(&self, parts: &[&[u8]]) -> io::Result<usize> {
        if parts.len() > MAX_GATHER {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_GATHER];
        for (v, p) in iov.iter_mut().zip(parts) {
            v.iov_base = p.as_ptr() as *mut libc::c_void;
            v.iov_len = p.len();
        }
        // SAFETY: zeroed msghdr is valid (no name, no control); it points at
        // `iov`, whose entries point at the live slices of `parts`, which
        // the kernel only reads during the call.
        let r = unsafe {
            let mut mh: libc::msghdr = std::mem::zeroed();
            mh.msg_iov = iov.as_mut_ptr();
            mh.msg_iovlen = parts.len() as _;
            libc::sendmsg(self.fd.as_raw_fd(), &mh, libc::MSG_DONTWAIT)
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    fn map(&self, len: usize) -> io::Result<Mapping> {
        // SAFETY: a shared mapping of the socket's ring, `len` as set up by
        // PACKET_{TX,RX}_RING; checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED,
                self.fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: p as *mut u8,
            len,
        })
    }
}

struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are the mapping mmap returned; nothing refers to it after drop.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

// SAFETY: the mapping is plain shared memory; its owner (one queue, one lcore)
// is the only user on our side.
unsafe impl Send for Mapping {}

/// Frame status words live at the start of each frame / block (`tp_status`,
/// `block_status`): 32-bit, naturally aligned, shared with the kernel.
impl Mapping {
    #[inline(always)]
    fn status(&self, off: usize) -> &AtomicU32 {
        assert!(off + 4 <= self.len && off.is_multiple_of(4));
        // SAFETY: the word is inside the mapping and 4-byte aligned (frames
        // and blocks are TPACKET_ALIGNMENT-aligned, checked above); AtomicU32
        // has u32's layout; the borrow is bounded by `&self`.
        unsafe { &*(self.ptr.add(off) as *const AtomicU32) }
    }
}

/// A `TPACKET_V2` ring's blocks for at least `frames` slots of
/// `frame_size` bytes: (block size, slots per block, blocks). A frame never
/// straddles a block (`packet_set_ring` wants whole frames per block).
fn v2_geometry(frame_size: usize, frames: usize) -> (usize, usize, usize) {
    let block = if frame_size.is_power_of_two() {
        frame_size.max(4096)
    } else {
        BIG_BLOCK.max(frame_size.next_multiple_of(4096))
    };
    let per_block = block / frame_size;
    (block, per_block, frames.div_ceil(per_block))
}

/// Sets a `TPACKET_V2` ring of at least `frames` slots on `sock` (`opt`:
/// `PACKET_TX_RING` or `PACKET_RX_RING`), maps it and binds the socket;
/// the mapping and the ring's geometry (see [`v2_geometry`]).
fn set_v2_ring(
    sock: &PacketSocket,
    opt: i32,
    frame_size: usize,
    frames: usize,
) -> io::Result<(Mapping, (usize, usize, usize))> {
    let (block, per_block, blocks) = v2_geometry(frame_size, frames);
    let req = libc::tpacket_req {
        tp_block_size: block as u32,
        tp_block_nr: blocks as u32,
        tp_frame_size: frame_size as u32,
        tp_frame_nr: (blocks * per_block) as u32,
    };
    sock.set(opt, &req)?;
    let map = sock.map(block * blocks)?;
    sock.bind()?;
    Ok((map, (block, per_block, blocks)))
}

/// Byte offset of slot `i` in a `TPACKET_V2` ring of that geometry.
#[inline(always)]
fn v2_slot(i: usize, block: usize, per_block: usize, frame_size: usize) -> usize {
    if per_block == 1 {
        i * block
    } else {
        (i / per_block) * block + (i % per_block) * frame_size
    }
}

/// A `TPACKET_V2` TX ring: `frames` slots of `frame_size` bytes, packed
/// `per_block` to a block of `block` bytes (frames never straddle blocks).
/// With `PACKET_VNET_HDR` each slot's data starts with a [`VnetHdr`].
pub struct TxRing {
    sock: PacketSocket,
    map: Mapping,
    frame_size: usize,
    frames: usize,
    block: usize,
    per_block: usize,
    vnet: bool,
}

/// Where a TX frame's data starts: `TPACKET2_HDRLEN - sizeof(sockaddr_ll)`
/// (packet_mmap.rst, "TX ring"; `tpacket_fill_skb` without `tp_net` set).
const TX_DATA_OFF: usize = libc::TPACKET2_HDRLEN - std::mem::size_of::<libc::sockaddr_ll>();

/// Block size of a ring whose frame size is not a power of two (the
/// super-segment slots): 1 MiB holds 15 slots of 64 KiB + headers. The
/// kernel allocates each block as `2^order` pages (`alloc_pg_vec`), so a
/// block of one such slot would waste half of it.
const BIG_BLOCK: usize = 1 << 20;

/// `sizeof(struct virtio_net_hdr)` (include/uapi/linux/virtio_net.h).
pub const VNET_HDR_LEN: usize = 10;
/// Bytes of a TX slot before the frame itself with `PACKET_VNET_HDR`: the
/// `tpacket2_hdr` area and the virtio-net header.
pub const TX_FRAME_OVERHEAD: usize = TX_DATA_OFF + VNET_HDR_LEN;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start +
/// csum_offset` is partial (`CHECKSUM_PARTIAL`): the field holds the
/// pseudo-header sum, the rest is summed from `csum_start` to the end.
pub const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`: segment as TCP over IPv4 (`SKB_GSO_TCPV4`).
pub const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;

/// `struct virtio_net_hdr`, what precedes each frame of a socket with
/// `PACKET_VNET_HDR` (`virtio_net_hdr_to_skb` reads it in `tpacket_snd`).
/// Its 16-bit fields are in the legacy virtio byte order, the host's
/// (`vio_le()` is `virtio_legacy_is_little_endian()`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    /// Bytes of headers every segment repeats (L2 + L3 + L4).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where the checksummed span starts (from the frame's start).
    pub csum_start: u16,
    /// Offset of the checksum field from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// The header's bytes as the kernel reads them.
    #[inline(always)]
    pub fn to_bytes(self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }
}

impl TxRing {
    /// Sets `TPACKET_V2`, `PACKET_QDISC_BYPASS` (when asked), `PACKET_LOSS`,
    /// `PACKET_VNET_HDR` (when `vnet`: before the ring, as `packet_setsockopt`
    /// refuses it once a ring exists) and the TX ring on `sock`, maps it and
    /// binds the socket. The ring has at least `frames` slots (rounded up
    /// to whole blocks).
    pub fn new(
        sock: PacketSocket,
        frame_size: usize,
        frames: usize,
        qdisc_bypass: bool,
        vnet: bool,
    ) -> io::Result<TxRing> {
        let v = libc::tpacket_versions::TPACKET_V2 as i32;
        sock.set(libc::PACKET_VERSION, &v)?;
        if qdisc_bypass {
            sock.set(libc::PACKET_QDISC_BYPASS, &1i32)?;
        }
        // A frame the kernel cannot send is skipped, not a wedge of the ring.
        sock.set(libc::PACKET_LOSS, &1i32)?;
        // A TX socket reads nothing: spare it clones of the interface's
        // outgoing frames (`dev_queue_xmit_nit` skips an `ignore_outgoing`
        // hook; a kernel without the option clones them as before).
        let _ = sock.set(libc::PACKET_IGNORE_OUTGOING, &1i32);
        if vnet {
            sock.set(libc::PACKET_VNET_HDR, &1i32)?;
        }
        let (map, (block, per_block, blocks)) =
            set_v2_ring(&sock, libc::PACKET_TX_RING, frame_size, frames)?;
        Ok(TxRing {
            sock,
            map,
            frame_size,
            frames: blocks * per_block,
            block,
            per_block,
            vnet,
        })
    }

    /// `PACKET_VNET_HDR` on a fresh socket (set, then the socket is dropped):
    /// whether this kernel sends frames with a virtio-net header.
    pub fn probe_vnet(ifindex: i32) -> bool {
        PacketSocket::open_silent(ifindex)
            .is_ok_and(|s| s.set(libc::PACKET_VNET_HDR, &1i32).is_ok())
    }

    pub fn frames(&self) -> usize {
        self.frames
    }

    /// True when each frame carries a [`VnetHdr`].
    pub fn vnet(&self) -> bool {
        self.vnet
    }

    /// Most frame bytes a slot holds (after the virtio-net header, if any).
    pub fn max_data(&self) -> usize {
        self.frame_size - TX_DATA_OFF - if self.vnet { VNET_HDR_LEN } else { 0 }
    }

    /// Byte offset of slot `i` in the mapping.
    #[inline(always)]
    fn slot(&self, i: usize) -> usize {
        v2_slot(i, self.block, self.per_block, self.frame_size)
    }

    /// The status of slot `i` (`TP_STATUS_AVAILABLE`, `_SEND_REQUEST`,
    /// `_SENDING`, `_WRONG_FORMAT`).
    #[inline]
    pub fn status(&self, i: usize) -> u32 {
        self.map.status(self.slot(i)).load(Ordering::Acquire)
    }

    /// Marks slot `i` available again (after a `TP_STATUS_WRONG_FORMAT`).
    pub fn set_available(&self, i: usize) {
        self.map
            .status(self.slot(i))
            .store(libc::TP_STATUS_AVAILABLE, Ordering::Release);
    }

    /// Copies a frame given as segments into slot `i` (which must be
    /// available; `len` ≤ [`TxRing::max_data`]) after `vnet` (written only
    /// when the ring has virtio-net headers), lets `fix` edit the copied
    /// frame (checksum fields the kernel expects otherwise than the mbuf
    /// holds them), then hands it to the kernel (`TP_STATUS_SEND_REQUEST`,
    /// release-ordered after the data).
    #[inline]
    pub fn fill<'a>(
        &self,
        i: usize,
        vnet: VnetHdr,
        len: usize,
        segs: impl Iterator<Item = &'a [u8]>,
        fix: impl FnOnce(&mut [u8]),
    ) {
        assert!(i < self.frames && len <= self.max_data());
        let base = self.slot(i);
        let hdr = if self.vnet { VNET_HDR_LEN } else { 0 };
        // SAFETY: slot `i` is inside the mapping (`slot` stays within the
        // blocks mapped), available (the kernel does not touch it), and the
        // header plus `len` bytes fit its data area (asserted above); the
        // frame slice lives only until the status store below.
        unsafe {
            let data = self.map.ptr.add(base + TX_DATA_OFF);
            if self.vnet {
                std::ptr::copy_nonoverlapping(vnet.to_bytes().as_ptr(), data, VNET_HDR_LEN);
            }
            let frame = data.add(hdr);
            let mut off = 0;
            for s in segs {
                let n = s.len().min(len - off);
                std::ptr::copy_nonoverlapping(s.as_ptr(), frame.add(off), n);
                off += n;
            }
            fix(std::slice::from_raw_parts_mut(frame, len));
            let h = self.map.ptr.add(base) as *mut libc::tpacket2_hdr;
            std::ptr::addr_of_mut!((*h).tp_len).write_volatile((hdr + len) as u32);
        }
        self.map
            .status(base)
            .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
    }

    pub fn socket(&self) -> &PacketSocket {
        &self.sock
    }
}

/// A `TPACKET_V3` RX ring: `blocks` blocks of `block_size` bytes, each
/// retired to us full or after `retire_ms`.
pub struct RxRing {
    sock: PacketSocket,
    map: Mapping,
    block_size: usize,
    blocks: usize,
}

/// `TP_STATUS_CSUMNOTREADY` (include/uapi/linux/if_packet.h).
pub const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
/// `TP_STATUS_CSUM_VALID` (include/uapi/linux/if_packet.h).
pub const TP_STATUS_CSUM_VALID: u32 = 1 << 7;

/// One received packet in a block: its bytes and the link-layer type
/// (`sll_pkttype`: host, broadcast, outgoing, …).
pub struct RxPacket<'a> {
    pub data: &'a [u8],
    /// Bytes on the wire (`tp_len`; more than `data` when truncated).
    pub wire_len: usize,
    /// `tp_status` (`TP_STATUS_CSUMNOTREADY`: a local sender's
    /// `CHECKSUM_PARTIAL` frame whose L4 checksum is left unfinished;
    /// `TP_STATUS_CSUM_VALID`: the device verified it).
    pub status: u32,
}

impl RxRing {
    /// Sets `TPACKET_V3`, ignores our own outgoing frames
    /// (`PACKET_IGNORE_OUTGOING`), sets the RX ring, maps it and binds.
    pub fn new(
        sock: PacketSocket,
        block_size: usize,
        blocks: usize,
        frame_size: usize,
        retire_ms: u32,
    ) -> io::Result<RxRing> {
        let v = libc::tpacket_versions::TPACKET_V3 as i32;
        sock.set(libc::PACKET_VERSION, &v)?;
        sock.set(libc::PACKET_IGNORE_OUTGOING, &1i32)?;
        let req = libc::tpacket_req3 {
            tp_block_size: block_size as u32,
            tp_block_nr: blocks as u32,
            tp_frame_size: frame_size as u32,
            tp_frame_nr: (block_size / frame_size * blocks) as u32,
            tp_retire_blk_tov: retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sock.set(libc::PACKET_RX_RING, &req)?;
        let map = sock.map(block_size * blocks)?;
        sock.bind()?;
        Ok(RxRing {
            sock,
            map,
            block_size,
            blocks,
        })
    }

    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// True when block `b` belongs to us (`TP_STATUS_USER`).
    #[inline]
    pub fn ready(&self, b: usize) -> bool {
        // `block_status` is the first field of `tpacket_hdr_v1`, which follows
        // `version` and `offset_to_priv` in `tpacket_block_desc`.
        self.map
            .status(b * self.block_size + 8)
            .load(Ordering::Acquire)
            & libc::TP_STATUS_USER
            != 0
    }

    /// Packets in block `b` and the offset of the first (only when ready).
    pub fn block_info(&self, b: usize) -> (usize, usize) {
        // SAFETY: block `b` is inside the mapping and ours (ready); the
        // header is a `tpacket_block_desc` the kernel wrote before releasing it.
        unsafe {
            let d = self.map.ptr.add(b * self.block_size) as *const libc::tpacket_block_desc;
            let h = &(*d).hdr.bh1;
            (h.num_pkts as usize, h.offset_to_first_pkt as usize)
        }
    }

    /// The packet at byte offset `off` of block `b`, and the offset of the
    /// next one (`tp_next_offset`; 0 for the last). `None` when the header
    /// points outside the block (a corrupt ring is not trusted).
    pub fn packet(&self, b: usize, off: usize) -> Option<(RxPacket<'_>, usize)> {
        let hdr_len = std::mem::size_of::<libc::tpacket3_hdr>();
        if off + hdr_len > self.block_size {
            return None;
        }
        // SAFETY: the header lies inside block `b` (checked), which is ours.
        let (next, mac, snap, len, status) = unsafe {
            let h = self.map.ptr.add(b * self.block_size + off) as *const libc::tpacket3_hdr;
            (
                (*h).tp_next_offset as usize,
                (*h).tp_mac as usize,
                (*h).tp_snaplen as usize,
                (*h).tp_len as usize,
                (*h).tp_status,
            )
        };
        if off + mac + snap > self.block_size {
            return None;
        }
        // SAFETY: the data lies inside block `b` (checked) and stays valid
        // until the block is released, which needs `&self` again after the
        // returned borrow ends.
        let data = unsafe {
            std::slice::from_raw_parts(self.map.ptr.add(b * self.block_size + off + mac), snap)
        };
        Some((
            RxPacket {
                data,
                wire_len: len,
                status,
            },
            if next == 0 { 0 } else { off + next },
        ))
    }

    /// Gives block `b` back to the kernel (`TP_STATUS_KERNEL`).
    pub fn release(&self, b: usize) {
        self.map
            .status(b * self.block_size + 8)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }

    pub fn socket(&self) -> &PacketSocket {
        &self.sock
    }
}

/// A `TPACKET_V2` RX ring: `frames` slots of `frame_size` bytes, each ours
/// as soon as the kernel has written it (`tp_status` gains
/// `TP_STATUS_USER`, `tpacket_rcv`), so a frame waits for nothing — unlike
/// a `TPACKET_V3` block, which reaches us when it is full or its retire
/// timer (1 ms at the least) fires. What DPDK's `net_af_packet` reads;
/// the choice for request/response and ACK-clocked traffic.
pub struct RxFrameRing {
    sock: PacketSocket,
    map: Mapping,
    frame_size: usize,
    frames: usize,
    block: usize,
    per_block: usize,
}

/// What an RX frame slot holds.
pub enum RxSlot<'a> {
    /// Still the kernel's: nothing received there yet.
    Empty,
    Packet(RxPacket<'a>),
    /// A header that points outside its slot (a corrupt ring is not trusted).
    Corrupt,
}

impl RxFrameRing {
    /// Sets `TPACKET_V2`, ignores our own outgoing frames, sets an RX ring
    /// of at least `frames` slots, maps it and binds.
    pub fn new(sock: PacketSocket, frame_size: usize, frames: usize) -> io::Result<RxFrameRing> {
        let v = libc::tpacket_versions::TPACKET_V2 as i32;
        sock.set(libc::PACKET_VERSION, &v)?;
        sock.set(libc::PACKET_IGNORE_OUTGOING, &1i32)?;
        let (map, (block, per_block, blocks)) =
            set_v2_ring(&sock, libc::PACKET_RX_RING, frame_size, frames)?;
        Ok(RxFrameRing {
            sock,
            map,
            frame_size,
            frames: blocks * per_block,
            block,
            per_block,
        })
    }

    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Slot `i`: empty, a packet (valid until [`RxFrameRing::release`]),
    /// or corrupt.
    #[inline]
    pub fn slot(&self, i: usize) -> RxSlot<'_> {
        let base = v2_slot(i, self.block, self.per_block, self.frame_size);
        let status = self.map.status(base).load(Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return RxSlot::Empty;
        }
        // SAFETY: the slot is inside the mapping (`v2_slot` of i < frames)
        // and ours (TP_STATUS_USER, acquire-ordered before these reads).
        let (len, snap, mac) = unsafe {
            let h = self.map.ptr.add(base) as *const libc::tpacket2_hdr;
            (
                (*h).tp_len as usize,
                (*h).tp_snaplen as usize,
                (*h).tp_mac as usize,
            )
        };
        if mac + snap > self.frame_size {
            return RxSlot::Corrupt;
        }
        // SAFETY: the data lies inside slot `i` (checked), which stays ours
        // until `release`, which needs `&self` again after this borrow ends.
        let data = unsafe { std::slice::from_raw_parts(self.map.ptr.add(base + mac), snap) };
        RxSlot::Packet(RxPacket {
            data,
            wire_len: len,
            status,
        })
    }

    /// Gives slot `i` back to the kernel (`TP_STATUS_KERNEL`).
    #[inline]
    pub fn release(&self, i: usize) {
        let base = v2_slot(i, self.block, self.per_block, self.frame_size);
        self.map
            .status(base)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }

    pub fn socket(&self) -> &PacketSocket {
        &self.sock
    }
}
