//! TCP streams: bulk connections on the port's stack, iperf3-like — the
//! whole send path of seed 002, `tcp_sendmsg_locked` → `tcp_push` →
//! `tcp_write_xmit` → `__tcp_transmit_skb` → `ip_queue_xmit`, paced by the
//! windows and the congestion control, not by the generator.

use super::FillCx;
use crate::config::Stream;
use hdrhistogram::Histogram;
use std::net::{Ipv4Addr, SocketAddrV4};
use wirespeed::mbuf::Mbuf;
use wirespeed::runtime::staged::StagedTx;
use wirespeed::runtime::LcoreCtx;
use wirespeed::stack::{Errno, MsgFlags, SpliceVec, Stack, TcpId, TcpState};

/// Header bytes of a data segment: Ethernet 14, IPv4 20, TCP 20 + 12 of
/// timestamps (every segment carries them once negotiated).
const SEG_HEADERS: u64 = 14 + 20 + 32;

/// One connection of a TCP stream.
struct Conn {
    id: TcpId,
    /// TSC when `connect` sent the SYN.
    started: u64,
    established: bool,
    /// Bytes the socket took (`send` returned).
    written: u64,
    /// FIN queued after the last byte (`shutdown(SHUT_WR)`).
    shut: bool,
    /// Finished: every byte acknowledged, or an error ended it.
    done: bool,
    /// Segments out as `tcpi_segs_out` last counted them.
    segs_seen: u64,
    bytes_seen: u64,
}

/// What a TCP stream did, for the report.
#[derive(Debug, Clone, Default)]
pub struct TcpResult {
    pub connections: u32,
    pub established: u32,
    /// Connections an error ended (refused, reset, timed out), and the first.
    pub failed: u32,
    pub first_error: Option<String>,
    /// Bytes the peer acknowledged (goodput), and the bytes asked for.
    pub bytes_acked: u64,
    pub bytes_asked: u64,
    pub segs_out: u64,
    pub retrans_segs: u64,
    /// Time from SYN to ESTABLISHED, µs (one value per connection).
    pub connect_us: Vec<u64>,
    /// TSC of the first SYN and of the last acknowledgement seen.
    pub first_tsc: u64,
    pub last_ack_tsc: u64,
}

pub struct TcpSource {
    conns: Vec<Conn>,
    /// The bytes each write sends (incrementing, as the socket streams).
    buf: Vec<u8>,
    /// Bytes per connection (0 = until the stream ends).
    bytes: u64,
    /// `zerocopy = true`: `buf` built once into buffers of one MSS each
    /// (made when the first connection is established and its MSS known)
    /// and spliced by reference (`send_splice`) instead of copied.
    zerocopy: bool,
    zc: Vec<Mbuf>,
    first_tsc: u64,
    last_ack_tsc: u64,
    connect_us: Histogram<u64>,
    pub failed: u32,
    pub first_error: Option<String>,
}

/// What one round did.
#[derive(Default)]
pub struct TcpRound {
    /// Segments and their frame bytes (no FCS) the connections put out.
    pub segs: u64,
    pub bytes: u64,
    /// Every connection finished.
    pub finished: bool,
}

impl TcpSource {
    /// Opens this sender's share of the stream's connections on `stack`
    /// (connection i is sender i % senders's): bound to the port's
    /// address (source ports `src_port` + i, or ephemeral when 0) and
    /// connected to the destination; the SYNs go out at once (ARP first).
    pub fn open(
        stack: &mut Stack,
        st: &Stream,
        src_ip: Ipv4Addr,
        now: u64,
        (sender, senders): (u8, u8),
    ) -> Result<TcpSource, String> {
        let e = |what: &str, err: Errno| format!("stream {}: {what}: {err}", st.name);
        let mut conns = Vec::new();
        // Connection i is sender i % senders's (each lcore its share).
        let step = usize::from(senders.max(1));
        for i in (0..st.connections).skip(usize::from(sender)).step_by(step) {
            let id = stack.tcp_socket().map_err(|er| e("socket", er))?;
            let mut so = stack.tcp(id);
            let sport = if st.src_port == 0 {
                0
            } else {
                st.src_port.wrapping_add(i as u16)
            };
            so.bind(SocketAddrV4::new(src_ip, sport))
                .map_err(|er| e("bind", er))?;
            so.connect(SocketAddrV4::new(st.dst_ip, st.dst_port))
                .map_err(|er| e("connect", er))?;
            conns.push(Conn {
                id,
                started: now,
                established: false,
                written: 0,
                shut: false,
                done: false,
                segs_seen: 0,
                bytes_seen: 0,
            });
        }
        let write = st.sizes.max() as usize;
        Ok(TcpSource {
            conns,
            buf: (0..write).map(|i| i as u8).collect(),
            bytes: st.bytes,
            zerocopy: st.zerocopy,
            zc: Vec::new(),
            first_tsc: now,
            last_ack_tsc: 0,
            connect_us: Histogram::new_with_bounds(1, 600_000_000, 3)
                .map_err(|er| format!("stream {}: histogram: {er}", st.name))?,
            failed: 0,
            first_error: None,
        })
    }

    /// Polls each connection: the handshake's end (its time recorded),
    /// writes while the send buffer has room, the FIN after the last byte,
    /// errors. Sends go to the lcore's queues through `tx`.
    pub fn send(
        &mut self,
        cx: &mut FillCx,
        stack: &mut Stack,
        tx: &mut StagedTx,
        ctx: &mut LcoreCtx,
    ) -> TcpRound {
        let mut r = TcpRound::default();
        let hz = cx.tsc.hz().max(1);
        if self.zerocopy && self.zc.is_empty() {
            self.build_zc(stack);
        }
        for c in self.conns.iter_mut().filter(|c| !c.done) {
            let mut so = stack.tcp(c.id);
            let state = so.state().unwrap_or(TcpState::Closed);
            // Any synchronized state: the handshake is over (the peer may
            // already have sent its FIN by the time we look).
            if !c.established && !matches!(state, TcpState::SynSent | TcpState::Closed) {
                c.established = true;
                let us = (cx.now.saturating_sub(c.started) as u128 * 1_000_000 / hz as u128) as u64;
                let _ = self.connect_us.record(us.max(1));
            }
            if let Ok(Some(er)) = so.take_error() {
                c.done = true;
                self.failed += 1;
                self.first_error.get_or_insert_with(|| er.to_string());
                continue;
            }
            if state == TcpState::Closed && !c.shut {
                c.done = true;
                self.failed += 1;
                self.first_error
                    .get_or_insert_with(|| "connection closed".into());
                continue;
            }
            if c.established && !c.shut {
                loop {
                    // The stream's bytes are one pattern (byte k is k mod the
                    // write size), whatever part of a write the socket took.
                    let w = self.buf.len();
                    let off = (c.written % w as u64) as usize;
                    let mut left = w - off;
                    if self.bytes != 0 {
                        left = left.min((self.bytes - c.written) as usize);
                    }
                    if left == 0 {
                        break;
                    }
                    let sent = if self.zc.is_empty() {
                        if self.zerocopy {
                            break; // the buffers come with the first MSS
                        }
                        so.send(&self.buf[off..off + left])
                    } else {
                        let mut iov = [SpliceVec::whole(&self.zc[0]); SPLICE_IOV];
                        let k = splice_iov(&self.zc, off, left, &mut iov);
                        so.send_splice(&iov[..k], MsgFlags::NONE)
                    };
                    match sent {
                        Ok(n) => c.written += n as u64,
                        Err(Errno::EAGAIN) | Err(Errno::ENOBUFS) => break,
                        Err(er) => {
                            c.done = true;
                            self.failed += 1;
                            self.first_error.get_or_insert_with(|| er.to_string());
                            break;
                        }
                    }
                }
                if self.bytes != 0 && c.written == self.bytes && !c.done {
                    let _ = so.shutdown_write();
                    c.shut = true;
                }
            }
            if let Ok(i) = so.info() {
                if i.segs_out > c.segs_seen {
                    r.segs += i.segs_out - c.segs_seen;
                    // Frame bytes of what went out: each segment's headers
                    // (Ethernet, IPv4, TCP with the timestamps option) and
                    // the payload (retransmissions included).
                    r.bytes +=
                        (i.segs_out - c.segs_seen) * SEG_HEADERS + (i.bytes_sent - c.bytes_seen);
                    c.segs_seen = i.segs_out;
                    c.bytes_seen = i.bytes_sent;
                }
                if c.shut && i.bytes_acked >= self.bytes && so.outq().unwrap_or(1) == 0 {
                    c.done = true;
                }
                if i.bytes_acked > 0 {
                    self.last_ack_tsc = cx.now;
                }
            }
            if tx.nearly_full() {
                tx.flush(ctx);
            }
        }
        tx.flush(ctx);
        r.finished = self.conns.iter().all(|c| c.done);
        r
    }

    /// The stream's results; the connections still open are closed (a
    /// reset for those with data in flight, as `close` does).
    pub fn finish(&mut self, stack: &mut Stack) -> TcpResult {
        let mut out = TcpResult {
            connections: self.conns.len() as u32,
            failed: self.failed,
            first_error: self.first_error.clone(),
            bytes_asked: self.bytes * self.conns.len() as u64,
            first_tsc: self.first_tsc,
            last_ack_tsc: self.last_ack_tsc,
            connect_us: Vec::new(),
            ..Default::default()
        };
        for c in &self.conns {
            out.established += u32::from(c.established);
            if let Ok(i) = stack.tcp(c.id).info() {
                out.bytes_acked += i.bytes_acked;
                out.segs_out += i.segs_out;
                out.retrans_segs += u64::from(i.total_retrans);
            }
        }
        for v in self.connect_us.iter_recorded() {
            for _ in 0..v.count_at_value() {
                out.connect_us.push(v.value_iterated_to());
            }
        }
        for c in self.conns.drain(..) {
            let _ = stack.tcp(c.id).close();
        }
        self.zc.clear();
        out
    }

    /// The write's bytes into buffers of the stack's pool, one MSS each
    /// (the MSS of the first established connection), once. No buffer
    /// left in the pool ends the stream with that error.
    fn build_zc(&mut self, stack: &mut Stack) {
        let Some(mss) = self.conns.iter().find_map(|c| {
            let so = stack.tcp(c.id);
            let up = !matches!(
                so.state().unwrap_or(TcpState::Closed),
                TcpState::SynSent | TcpState::Closed
            );
            up.then(|| so.info().ok().map(|i| i.snd_mss as usize))
                .flatten()
        }) else {
            return;
        };
        for chunk in self.buf.chunks(mss.max(1)) {
            let m = stack.pool_mut().alloc().and_then(|mut m| {
                m.extend_from_slice(chunk).ok()?;
                Some(m)
            });
            let Some(m) = m else {
                self.zc.clear();
                self.failed += self.conns.iter().filter(|c| !c.done).count() as u32;
                for c in self.conns.iter_mut() {
                    c.done = true;
                }
                self.first_error.get_or_insert_with(|| {
                    "zerocopy: no buffer left in the pool for the payload (give the port's pool more, or drop zerocopy)".into()
                });
                return;
            };
            self.zc.push(m);
        }
    }
}

/// Pieces one `send_splice` takes: 64 MSS, a 64 KiB super-segment and more.
const SPLICE_IOV: usize = 64;

/// Fills `iov` with the spliced pieces of the write's bytes `off ..
/// off + len` (`zc` holds them in order, one MSS each), at most
/// [`SPLICE_IOV`] of them; returns how many.
fn splice_iov<'a>(zc: &'a [Mbuf], off: usize, len: usize, iov: &mut [SpliceVec<'a>]) -> usize {
    let piece = zc.first().map_or(1, |m| m.data_len().max(1));
    let (mut pos, mut left, mut k) = (off, len, 0);
    while left > 0 && k < iov.len() {
        let Some(m) = zc.get(pos / piece) else { break };
        let o = pos % piece;
        let l = (m.data_len() - o).min(left);
        iov[k] = SpliceVec {
            buf: m,
            off: o,
            len: l,
        };
        k += 1;
        pos += l;
        left -= l;
    }
    k
}
