//! The socket calls of net/ipv4/tcp.c: `tcp_sendmsg_locked` (user bytes
//! into the write queue), `tcp_recvmsg` (the receive queue out, and the
//! window update of `tcp_cleanup_rbuf`), `tcp_shutdown`, `tcp_close`.

use super::output::TCP_NAGLE_PUSH;
use super::wire::ACK;
use super::SpliceVec;
use super::{Skb, Tcb, TcpState};
use crate::mbuf::{Mbuf, MBUF_HDR_SIZE};
use crate::stack::{Errno, MsgFlags, Stack};

/// Plays the part of `tcp_skb_entail`: a new skb holding `m` (its first
/// `len` bytes already the stream's next) at the tail of the write queue,
/// charged to `sk_wmem_queued` at `truesize`; `write_seq` moves past it.
fn skb_entail(t: &mut Tcb, m: Mbuf, len: u32, truesize: u32) {
    t.wmem_queued += truesize;
    let seq = t.write_seq;
    t.write_seq = seq.wrapping_add(len);
    t.wq.push_back(Skb {
        seq,
        end_seq: t.write_seq,
        flags: ACK,
        data: Some(m),
        truesize,
        sacked: 0,
        tx_ns: 0,
    });
}

/// The state tests of `tcp_sendmsg_locked`: a handshake in progress is
/// `EAGAIN` (the non-blocking `sk_stream_wait_connect`); after shutdown or
/// on a closed connection `EPIPE`; never connected `ENOTCONN`.
fn send_state_check(t: &Tcb) -> Result<(), Errno> {
    match t.state {
        TcpState::SynSent | TcpState::SynRecv => Err(Errno::EAGAIN),
        TcpState::Established | TcpState::CloseWait if !t.shut_wr => Ok(()),
        TcpState::Closed if t.raddr.is_unspecified() => Err(Errno::ENOTCONN),
        _ => Err(Errno::EPIPE),
    }
}

impl Stack {
    /// Plays the part of `tcp_sendmsg_locked`: a pending error first
    /// (`sock_error`); a handshake in progress is `EAGAIN` (the non-blocking
    /// `sk_stream_wait_connect`); after shutdown or on a closed connection
    /// `EPIPE`. Then, while bytes remain: append to the tail skb while it
    /// is unsent and under `size_goal` (`tcp_send_mss`; one MSS here), else
    /// open a new skb (`tcp_stream_alloc_skb` + `tcp_skb_entail`) if
    /// `sk_stream_memory_free` (`sk_wmem_queued` < `SO_SNDBUF`); each skb's
    /// mbuf is charged to `sk_wmem_queued` at its truesize. `write_seq` and
    /// the skb's `end_seq` advance by what was copied. Finally `tcp_push`
    /// (`MSG_MORE` corks). With no room at all: push what is queued
    /// (`TCP_NAGLE_PUSH`) and return `EAGAIN` (`sk_stream_wait_memory`
    /// without a timeout).
    pub(crate) fn tcp_sendmsg_locked(
        &mut self,
        t: &mut Tcb,
        i: usize,
        buf: &[u8],
        flags: MsgFlags,
    ) -> Result<usize, Errno> {
        if let Some(e) = t.err.take() {
            return Err(e);
        }
        send_state_check(t)?;
        let size_goal = t.mss_cache;
        let more = flags.contains(MsgFlags::MORE);
        let mut copied = 0usize;
        while copied < buf.len() {
            let left = &buf[copied..];
            // Try to append to the unsent tail.
            if t.send_head < t.wq.len() {
                let tail = t.wq.back_mut().expect("unsent tail");
                if tail.flags & super::wire::FIN == 0 {
                    // A spliced buffer is the caller's: never written.
                    if let Some(m) = tail.data.as_mut().filter(|m| !m.is_shared()) {
                        let room = (size_goal as usize)
                            .saturating_sub(m.pkt_len())
                            .min(m.tailroom())
                            .min(left.len());
                        if room > 0 {
                            let d = m.append(room).map_err(|_| Errno::ENOBUFS)?;
                            d.copy_from_slice(&left[..room]);
                            tail.end_seq = tail.end_seq.wrapping_add(room as u32);
                            t.write_seq = t.write_seq.wrapping_add(room as u32);
                            copied += room;
                            continue;
                        }
                    }
                }
            }
            // new_segment:
            if !t.memory_free() {
                break;
            }
            let Some(m) = self.pool.alloc() else {
                self.counters.tcp_ext.sndbuf_nomem.add(1);
                break;
            };
            let truesize = (m.buf_len() + MBUF_HDR_SIZE) as u32;
            skb_entail(t, m, 0, truesize);
        }
        if copied == 0 && !buf.is_empty() {
            // wait_for_space: push what we have, then report no room.
            self.tcp_push_pending_frames(t, i, TCP_NAGLE_PUSH);
            return Err(Errno::EAGAIN);
        }
        if copied < buf.len() {
            // Part fit: push it whole (tcp_push with TCP_NAGLE_PUSH, as
            // after sk_stream_wait_memory).
            self.tcp_push_pending_frames(t, i, TCP_NAGLE_PUSH);
        } else {
            self.tcp_push(t, i, more, size_goal);
        }
        Ok(copied)
    }

    /// Plays the part of `tcp_sendmsg_locked` with `MSG_SPLICE_PAGES`
    /// (`skb_splice_from_iter` over an `ITER_BVEC`, what `sendfile` and
    /// `splice` reach): the bytes of `iov`, in order, join the write queue
    /// by reference, not by copy — each `size_goal` piece an indirect mbuf
    /// attached to its buffer ([`crate::mbuf::Mempool::alloc_indirect`],
    /// the page reference `skb_splice_from_iter` takes), charged to
    /// `sk_wmem_queued` at its length plus its header, as Linux charges
    /// spliced pages at their length. One push at the end of the call, as
    /// `tcp_sendmsg_locked` pushes once (so a call of many MSS pieces
    /// leaves as super-segments). The buffers stay read-only until every
    /// reference is gone (acked, and done with by the driver). Same errors
    /// and push as [`Stack::tcp_sendmsg_locked`]; a range outside its
    /// buffer's first segment, or a buffer of another thread's pool, is
    /// `EINVAL` (checked before anything is queued).
    pub(crate) fn tcp_sendmsg_splice(
        &mut self,
        t: &mut Tcb,
        i: usize,
        iov: &[SpliceVec<'_>],
        flags: MsgFlags,
    ) -> Result<usize, Errno> {
        if let Some(e) = t.err.take() {
            return Err(e);
        }
        send_state_check(t)?;
        let mut len = 0usize;
        for v in iov {
            if v.off
                .checked_add(v.len)
                .is_none_or(|e| e > v.buf.data_len())
                || !self.pool.may_attach(v.buf)
            {
                return Err(Errno::EINVAL);
            }
            len += v.len;
        }
        let size_goal = t.mss_cache.max(1) as usize;
        let more = flags.contains(MsgFlags::MORE);
        let mut taken = 0usize;
        'iov: for v in iov {
            let mut at = 0usize;
            while at < v.len {
                if !t.memory_free() {
                    break 'iov;
                }
                let piece = (v.len - at).min(size_goal);
                let Ok(m) = self.pool.alloc_indirect(v.buf, v.off + at, piece) else {
                    // Range and owner were checked: the pool is empty (or
                    // the buffer's count is full).
                    self.counters.tcp_ext.sndbuf_nomem.add(1);
                    break 'iov;
                };
                skb_entail(t, m, piece as u32, (piece + MBUF_HDR_SIZE) as u32);
                at += piece;
                taken += piece;
            }
        }
        if taken == 0 && len > 0 {
            self.tcp_push_pending_frames(t, i, TCP_NAGLE_PUSH);
            return Err(Errno::EAGAIN);
        }
        if taken < len {
            self.tcp_push_pending_frames(t, i, TCP_NAGLE_PUSH);
        } else {
            self.tcp_push(t, i, more, size_goal as u32);
        }
        Ok(taken)
    }

    /// Plays the part of `tcp_recvmsg_locked` + `tcp_cleanup_rbuf`.
    pub(crate) fn tcp_recvmsg(&mut self, t: &mut Tcb, buf: &mut [u8]) -> Result<usize, Errno> {
        if t.state == TcpState::Listen {
            return Err(Errno::ENOTCONN);
        }
        if t.rcvq.is_empty() {
            if let Some(e) = t.err.take() {
                return Err(e);
            }
            if t.rcv_fin || t.shut_rd {
                return Ok(0);
            }
            return match t.state {
                TcpState::Closed if t.raddr.is_unspecified() => Err(Errno::ENOTCONN),
                TcpState::Closed => Ok(0),
                _ => Err(Errno::EAGAIN),
            };
        }
        let n = buf.len().min(t.rcvq.len());
        let (a, b) = t.rcvq.as_slices();
        let na = n.min(a.len());
        buf[..na].copy_from_slice(&a[..na]);
        if n > na {
            buf[na..n].copy_from_slice(&b[..n - na]);
        }
        t.rcvq.drain(..n);
        // tcp_cleanup_rbuf: announce the window when reading opened it by
        // at least two segments beyond what was advertised, or from closed.
        if matches!(
            t.state,
            TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2
        ) {
            let adv = t.rcv_wup.wrapping_add(t.rcv_wnd).wrapping_sub(t.rcv_nxt);
            let space = t.rcv_space();
            if space >= adv.saturating_add(2 * t.rcv_mss) || (adv < t.rcv_mss && space >= t.rcv_mss)
            {
                self.tcp_send_ack(t);
            }
        }
        Ok(n)
    }

    /// Plays the part of `tcp_shutdown(SEND_SHUTDOWN)` →
    /// `tcp_close_state` + `tcp_send_fin`.
    pub(crate) fn tcp_shutdown(&mut self, t: &mut Tcb, i: usize) -> Result<(), Errno> {
        match t.state {
            TcpState::Established => self.tcp_set_state(t, TcpState::FinWait1),
            TcpState::CloseWait => self.tcp_set_state(t, TcpState::LastAck),
            TcpState::SynSent | TcpState::SynRecv => {
                // Not yet connected: the FIN follows the handshake.
                t.shut_wr = true;
                return Ok(());
            }
            _ if t.shut_wr => return Ok(()),
            _ => return Err(Errno::ENOTCONN),
        }
        t.shut_wr = true;
        self.tcp_send_fin(t, i);
        Ok(())
    }

    /// Plays the part of `tcp_close` (and `abort` = `SO_LINGER` 0): the
    /// handle becomes an orphan; unread data or an abort sends an RST
    /// (`TCPAbortOnClose`/`TCPAbortOnLinger`) and frees the connection;
    /// otherwise a FIN after the queued data, and the connection ends on
    /// its own. A listener resets its pending children.
    pub(crate) fn tcp_close(&mut self, i: usize, abort: bool) {
        let Some(mut t) = self.tcp.take(i) else {
            return;
        };
        t.orphan = true;
        match t.state {
            TcpState::Listen => {
                self.tcp.lhash.remove(&t.lport);
                let children: Vec<usize> = t.accept_q.drain(..).collect();
                self.tcp.put(i, t);
                for c in children {
                    self.tcp_close(c, true);
                }
                // Children still in SYN-RECV point at us: reset them too.
                let pending: Vec<usize> = self
                    .tcp
                    .live()
                    .filter(|&c| self.tcp.get(c).is_some_and(|x| x.parent == Some(i)))
                    .collect();
                for c in pending {
                    self.tcp_close(c, true);
                }
                if let Some(mut t) = self.tcp.take(i) {
                    self.tcp_done(&mut t);
                    self.tcp.put(i, t);
                }
                self.tcp.destroy(i);
                return;
            }
            TcpState::Closed | TcpState::SynSent => {
                self.tcp_done(&mut t);
                self.tcp.put(i, t);
                self.tcp.destroy(i);
                return;
            }
            _ => {}
        }
        let unread = !t.rcvq.is_empty();
        if abort || unread {
            if unread {
                self.counters.tcp_ext.abort_on_close.add(1);
            } else {
                self.counters.tcp_ext.abort_on_linger.add(1);
            }
            if t.state.counts_estab() {
                self.counters.tcp.estab_resets.add(1);
            }
            if !matches!(t.state, TcpState::TimeWait) {
                self.tcp_send_active_reset(&mut t);
            }
            self.tcp_done(&mut t);
            self.tcp.put(i, t);
            self.tcp.destroy(i);
            return;
        }
        match t.state {
            TcpState::Established | TcpState::SynRecv => {
                self.tcp_set_state(&mut t, TcpState::FinWait1);
                t.shut_wr = true;
                self.tcp_send_fin(&mut t, i);
            }
            TcpState::CloseWait => {
                self.tcp_set_state(&mut t, TcpState::LastAck);
                t.shut_wr = true;
                self.tcp_send_fin(&mut t, i);
            }
            _ => {}
        }
        // The receive ring is no longer needed by anyone.
        t.rcvq = std::collections::VecDeque::new();
        self.tcp.put(i, t);
        self.tcp.mark_active(i);
    }
}
