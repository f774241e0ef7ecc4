//! The socket calls of net/ipv4/tcp.c: `tcp_sendmsg_locked` (user bytes
//! into the write queue), `tcp_recvmsg` (the receive queue out, and the
//! window update of `tcp_cleanup_rbuf`), `tcp_shutdown`, `tcp_close`.

use super::output::TCP_NAGLE_PUSH;
use super::wire::ACK;
use super::{Skb, Tcb, TcpState};
use crate::mbuf::MBUF_HDR_SIZE;
use crate::stack::{Errno, MsgFlags, Stack};

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
        match t.state {
            TcpState::SynSent | TcpState::SynRecv => return Err(Errno::EAGAIN),
            TcpState::Established | TcpState::CloseWait if !t.shut_wr => {}
            TcpState::Closed if t.raddr.is_unspecified() => return Err(Errno::ENOTCONN),
            _ => return Err(Errno::EPIPE),
        }
        let size_goal = t.mss_cache;
        let more = flags.contains(MsgFlags::MORE);
        let mut copied = 0usize;
        while copied < buf.len() {
            let left = &buf[copied..];
            // Try to append to the unsent tail.
            if t.send_head < t.wq.len() {
                let tail = t.wq.back_mut().expect("unsent tail");
                if tail.flags & super::wire::FIN == 0 {
                    if let Some(m) = tail.data.as_mut() {
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
            t.wmem_queued += truesize;
            t.wq.push_back(Skb {
                seq: t.write_seq,
                end_seq: t.write_seq,
                flags: ACK,
                data: Some(m),
                truesize,
                sacked: 0,
                tx_ns: 0,
            });
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
