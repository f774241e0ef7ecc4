//! What a sender sends: one type per kind of source, each filling a burst
//! (or, for a socket, sending through the stack) for the window the sender
//! opened. The common part — the window, the queue's room, the hand-over
//! and the counters — stays in [`super::lcore`].

mod raw;
mod replay;
mod socket;
mod tcp;

pub use raw::RawSource;
pub use replay::ReplaySource;
pub use socket::SocketSource;
pub use tcp::{TcpResult, TcpSource};

use super::pacer::Pacer;
use wirespeed::eal::Tsc;
use wirespeed::mbuf::Mempool;

/// A sender's source of packets.
pub enum Source {
    /// Raw frames built from the stream's headers, fields and sizes.
    Raw(RawSource),
    /// Datagrams through a connected UDP socket on the port's stack.
    Socket(SocketSource),
    /// Frames of a pcap file, at their original gaps or as fast as allowed.
    Replay(ReplaySource),
    /// Bulk TCP connections on the port's stack.
    Tcp(TcpSource),
}

/// What a frame source fills from: the sender's pool and pacer, its
/// remaining quota, and the time.
pub struct FillCx<'a> {
    /// TSC at the start of the round (admission time).
    pub now: u64,
    pub tsc: Tsc,
    pub pool: &'a mut Mempool,
    pub pacer: &'a mut Pacer,
    /// Packets still to send (a replay that ran its loops sets it to 0).
    pub remaining: &'a mut u64,
    /// The sender's scheduled start (TSC).
    pub start: u64,
    /// Counts a failed bulk allocation (the pool ran dry).
    pub alloc_failures: &'a mut u64,
}

pub use crate::frame::FILL_MAX;
