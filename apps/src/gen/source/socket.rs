//! Socket streams: datagrams through a connected UDP socket on the port's
//! stack — the whole path, `udp_sendmsg` → `ip_make_skb` → neighbour →
//! `dev_queue_xmit`.

use super::FillCx;
use crate::config::{socket_frames, socket_wire, Stream, LATENCY_HDR};
use crate::frame::{Rng, SizeSeq};
use crate::latency;
use std::net::{Ipv4Addr, SocketAddrV4};
use wirespeed::runtime::staged::StagedTx;
use wirespeed::runtime::LcoreCtx;
use wirespeed::stack::{Errno, SocketId, Stack};

pub struct SocketSource {
    sock: SocketId,
    sizes: SizeSeq,
    rng: Rng,
    /// The payload (incrementing bytes), the latency header written over its start.
    buf: Vec<u8>,
    seq: u64,
    latency: bool,
    stream: u8,
    sender_id: u8,
    /// Sends the stack refused, and the first reason.
    pub errors: u64,
    pub last_error: String,
    /// The stack's MTU (for the wire bytes a datagram becomes).
    mtu: u32,
}

/// What one round of sends did.
#[derive(Default)]
pub struct SocketRound {
    /// Datagrams the socket took, and the frame bytes (no FCS) they became.
    pub sent: u64,
    pub bytes: u64,
    /// The socket's buffer or the pool was full: try again next round.
    pub blocked: bool,
    /// The neighbour failed: nothing this stream sends can arrive.
    pub unreachable: Option<String>,
}

impl SocketSource {
    /// The stream's socket (for the live `/proc/net/udp` view).
    pub fn id(&self) -> SocketId {
        self.sock
    }

    /// Opens the stream's socket on `stack`: bound to the port's address and
    /// the stream's port (+ the sender id), connected to its destination,
    /// with its priority, TOS and TTL.
    pub fn open(
        stack: &mut Stack,
        st: &Stream,
        src_ip: Ipv4Addr,
        sender_id: u8,
        mtu: u32,
    ) -> Result<SocketSource, String> {
        let e = |what: &str, err: Errno| format!("stream {}: {what}: {err}", st.name);
        let sock = stack.udp_socket().map_err(|er| e("socket", er))?;
        let mut so = stack.socket(sock);
        let sport = st.src_port.wrapping_add(sender_id as u16);
        so.bind(SocketAddrV4::new(src_ip, sport))
            .map_err(|er| e("bind", er))?;
        so.connect(SocketAddrV4::new(st.dst_ip, st.dst_port))
            .map_err(|er| e("connect", er))?;
        so.set_priority(st.priority)
            .map_err(|er| e("SO_PRIORITY", er))?;
        so.set_tos(st.tos).map_err(|er| e("IP_TOS", er))?;
        so.set_ttl(Some(st.ttl)).map_err(|er| e("IP_TTL", er))?;
        let buf = (0..st.sizes.max() as usize).map(|i| i as u8).collect();
        Ok(SocketSource {
            sock,
            sizes: SizeSeq::new(&st.sizes),
            rng: Rng::new(0xD06 ^ st.index as u64),
            buf,
            seq: 0,
            latency: st.latency,
            stream: st.index as u8,
            sender_id,
            errors: 0,
            last_error: String::new(),
            mtu,
        })
    }

    /// Sends up to `want` datagrams the pacer has due. A refusal for a full
    /// buffer is not a send: the same datagram is offered again later, and
    /// nothing is counted twice.
    /// The stack's frames go to the lcore's queues through `tx`, flushed
    /// whenever it fills and at the end of the round.
    pub fn send(
        &mut self,
        cx: &mut FillCx,
        stack: &mut Stack,
        tx: &mut StagedTx,
        ctx: &mut LcoreCtx,
        want: usize,
        st: &Stream,
    ) -> SocketRound {
        let mut r = SocketRound::default();
        let mut attempts = 0;
        while attempts < want && *cx.remaining > r.sent && cx.pacer.due(cx.now) {
            attempts += 1;
            // The size is the datagram's; the pacer charges the frames it
            // becomes on the wire.
            let len = self.sizes.next(&mut self.rng) as usize;
            let wire = socket_wire(len as u32, self.mtu);
            if self.latency {
                let h = &mut self.buf[..LATENCY_HDR as usize];
                latency::write(h, self.stream, self.sender_id, self.seq, cx.tsc.now());
            }
            if stack.socket(self.sock).would_block().unwrap_or(false) {
                r.blocked = true;
                break;
            }
            match stack.socket(self.sock).send(&self.buf[..len]) {
                Ok(_) => {
                    cx.pacer.admit(cx.now, wire);
                    r.sent += 1;
                    self.seq += 1;
                    r.bytes += (wire - 4 * socket_frames(len as u32, self.mtu)) as u64;
                }
                Err(Errno::EAGAIN) | Err(Errno::ENOBUFS) => {
                    r.blocked = true;
                    break;
                }
                Err(Errno::ECONNREFUSED) => {
                    // The peer's ICMP port unreachable, reported once by
                    // this send as on Linux (`sk_err`, `__udp4_lib_err`);
                    // the datagram was not sent: counted as a refusal and
                    // offered again (it is not lost).
                    self.errors += 1;
                    if self.last_error.is_empty() {
                        self.last_error = Errno::ECONNREFUSED.to_string();
                    }
                    continue;
                }
                Err(er) => {
                    // Counted (and in the stack's SNMP counters); the
                    // datagram never existed, so no packet is lost.
                    cx.pacer.admit(cx.now, wire);
                    self.errors += 1;
                    if self.last_error.is_empty() {
                        self.last_error = er.to_string();
                    }
                    *cx.remaining = cx.remaining.saturating_sub(1);
                    if er == Errno::EHOSTUNREACH {
                        // The neighbour failed (no ARP answer after its
                        // probes, `arp_error_report`): end the run rather
                        // than feed a dead neighbour forever.
                        r.unreachable = Some(format!(
                            "stream {}: {} did not answer ARP on port {} ({er}); is the peer up and on this link?",
                            st.name, st.dst_ip, st.port
                        ));
                        break;
                    }
                }
            }
            if tx.nearly_full() {
                tx.flush(ctx);
            }
        }
        tx.flush(ctx);
        r
    }
}
