//! TCP over the stack's IPv4: sockets (`connect`, `listen`/`accept`,
//! `send`/`recv`, `shutdown`, `close`), the RFC 9293 state machine, and the
//! Linux send path of seed 002, one stage per file:
//!
//! ```text
//! TcpSocket::send_msg ─► sendmsg.rs  tcp_sendmsg_locked (write queue in size_goal
//!                                     pieces, sk_wmem_queued, EAGAIN, MSG_MORE)
//!                     ─► output.rs   tcp_push → __tcp_push_pending_frames →
//!                                     tcp_write_xmit (Nagle, cork, cwnd, rwnd, TSQ)
//!                                     → __tcp_transmit_skb → ip_queue_xmit
//! Stack::rx ─► input.rs  tcp_v4_rcv → tcp_rcv_state_process / tcp_ack /
//!                         tcp_data_queue; sack.rs the SACK scoreboard (RFC 6675)
//! Stack::poll_timers ─► timer.rs  tcp_retransmit_timer, tcp_probe_timer,
//!                         tcp_delack_timer, tcp_time_wait; RTO (RFC 6298)
//! cong.rs  Reno and CUBIC with HyStart (tcp_congestion_ops)
//! ```
//!
//! Everything is non-blocking and polled from the lcore that owns the
//! stack: `connect` returns at once (watch [`TcpSocket::state`] or
//! [`TcpSocket::poll`]), `send` takes what fits the send buffer or says
//! `EAGAIN`, `recv` says `EAGAIN` when nothing is queued.

pub mod cong;
mod input;
pub(crate) mod offload;
mod output;
mod sack;
mod sendmsg;
mod timer;
pub mod wire;

pub use cong::CongAlgo;
pub use output::IPPROTO_TCP;

use super::ip::Dst;
use super::{secret, Errno, MsgFlags, Stack};
use crate::mbuf::{Mbuf, WmemAccount};
use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

/// TCP states (`TCP_ESTABLISHED` … in include/net/tcp_states.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    Closed,
    Listen,
    SynSent,
    SynRecv,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl TcpState {
    /// The name `ss` prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSE",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynRecv => "SYN-RECV",
            TcpState::Established => "ESTAB",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST-ACK",
            TcpState::TimeWait => "TIME-WAIT",
        }
    }
    /// States in which we may still send data.
    fn can_send(self) -> bool {
        matches!(self, TcpState::Established | TcpState::CloseWait)
    }
    /// States that count in CurrEstab.
    fn counts_estab(self) -> bool {
        matches!(self, TcpState::Established | TcpState::CloseWait)
    }
}

/// A TCP socket handle (index + generation: a stale handle is EBADF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpId {
    idx: u32,
    gen: u32,
}

/// One piece of a [`TcpSocket::send_splice`]: `len` bytes at `off` of
/// `buf`'s data (the `bio_vec` of an `ITER_BVEC`: page, offset, length).
#[derive(Clone, Copy, Debug)]
pub struct SpliceVec<'a> {
    pub buf: &'a Mbuf,
    pub off: usize,
    pub len: usize,
}

impl<'a> SpliceVec<'a> {
    /// All of `buf`'s (first segment's) data.
    pub fn whole(buf: &'a Mbuf) -> SpliceVec<'a> {
        SpliceVec {
            buf,
            off: 0,
            len: buf.data_len(),
        }
    }
}

/// `TCP_INFO`-like state of one socket (`struct tcp_info` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct TcpInfo {
    pub state: &'static str,
    /// `tcpi_ca_state`: 0 Open, 3 Recovery, 4 Loss.
    pub ca_state: u8,
    pub retransmits: u8,
    pub backoff: u8,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub rto_us: u32,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    pub unacked: u32,
    pub sacked: u32,
    pub lost: u32,
    pub retrans: u32,
    pub rtt_us: u32,
    pub rttvar_us: u32,
    pub snd_ssthresh: u32,
    pub snd_cwnd: u32,
    pub snd_wnd: u32,
    pub rcv_wnd: u32,
    pub total_retrans: u32,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub segs_out: u64,
    pub segs_in: u64,
    /// `tcpi_notsent_bytes`.
    pub notsent_bytes: u32,
    /// Bytes charged below TCP (qdisc/driver; `sk_wmem_alloc`).
    pub wmem_alloc: u64,
    /// `sk_wmem_queued`.
    pub wmem_queued: u32,
    pub congestion: &'static str,
}

/// What a poll of the socket reports (`tcp_poll`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpPoll {
    /// Data to read, a FIN (read returns 0), or a connection to accept.
    pub readable: bool,
    /// `sk_stream_is_writeable`: send-buffer room.
    pub writable: bool,
    /// Both directions closed (or reset).
    pub hup: bool,
    /// A pending error (`sk_err`).
    pub error: bool,
}

/// Per-stack TCP settings (`net.ipv4.tcp_*` sysctls that apply here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// `tcp_syn_retries` (6).
    pub syn_retries: u8,
    /// `tcp_synack_retries` (5).
    pub synack_retries: u8,
    /// `tcp_retries2` (15).
    pub retries2: u8,
    /// `tcp_limit_output_bytes` (TSQ cap: 1 MiB).
    pub limit_output_bytes: u32,
    /// `tcp_sack`.
    pub sack: bool,
    /// `tcp_timestamps`.
    pub timestamps: bool,
    /// `tcp_window_scaling`.
    pub window_scaling: bool,
    /// `TIME_WAIT` duration (`TCP_TIMEWAIT_LEN`, 60 s).
    pub time_wait_ns: u64,
    /// `tcp_congestion_control` for new sockets.
    pub congestion: CongAlgo,
    /// Send buffer of new sockets (`tcp_wmem[1]` is 16 KiB in Linux, which
    /// then autotunes up to 4 MiB; without autotuning 1 MiB is the default here).
    pub sndbuf: u32,
    /// Receive buffer of new sockets (bytes the receive ring holds).
    pub rcvbuf: u32,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            syn_retries: 6,
            synack_retries: 5,
            retries2: 15,
            limit_output_bytes: 1 << 20,
            sack: true,
            timestamps: true,
            window_scaling: true,
            time_wait_ns: 60 * 1_000_000_000,
            congestion: CongAlgo::Cubic,
            sndbuf: 1 << 20,
            rcvbuf: 1 << 20,
        }
    }
}

/// Retransmission-queue marks (`TCP_SKB_CB(skb)->sacked`).
pub(crate) const SACKED: u8 = 1;
pub(crate) const RETRANS: u8 = 2;
pub(crate) const LOST: u8 = 4;
/// Retransmitted at least once (Karn: no RTT sample).
pub(crate) const EVER_RETRANS: u8 = 8;

/// One write-queue entry (an skb of the write/retransmit queue): a
/// sequence range, its payload (one mbuf of at most one MSS, or none for a
/// bare FIN/SYN), flags, scoreboard marks and its last transmit time.
pub(crate) struct Skb {
    pub seq: u32,
    /// End sequence (SYN and FIN count one each).
    pub end_seq: u32,
    pub flags: u8,
    pub data: Option<Mbuf>,
    /// Bytes charged to `sk_wmem_queued`.
    pub truesize: u32,
    pub sacked: u8,
    /// Last (re)transmission time (ns), for RTT samples and RACK-less
    /// ordering.
    pub tx_ns: u64,
}

impl Skb {
    #[inline]
    pub fn len(&self) -> u32 {
        self.data.as_ref().map_or(0, |m| m.pkt_len() as u32)
    }
}

/// Most segments one connection keeps out of order.
pub(crate) const OFO_MAX: usize = 256;

/// A segment held beyond a hole (`out_of_order_queue` entry): its
/// sequence range, FIN, and the received mbuf trimmed to the payload.
pub(crate) struct Ofo {
    pub seq: u32,
    pub end: u32,
    pub fin: bool,
    pub m: Mbuf,
}

/// Congestion-avoidance state (`icsk_ca_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CaState {
    Open,
    Disorder,
    Recovery,
    Loss,
}

/// One connection's control block (`struct tcp_sock` + `inet_connection_sock`).
pub(crate) struct Tcb {
    /// This block's slot in the table.
    pub idx: usize,
    pub state: TcpState,
    pub laddr: Ipv4Addr,
    pub lport: u16,
    pub raddr: Ipv4Addr,
    pub rport: u16,
    pub hashed: bool,
    /// The user closed the handle (`SOCK_DEAD`): reaped once CLOSED.
    pub orphan: bool,
    /// Listener this connection came from (until accepted).
    pub parent: Option<usize>,
    // Listener.
    pub backlog: usize,
    pub accept_q: VecDeque<usize>,
    pub syn_q_len: usize,
    // Send sequence space.
    pub iss: u32,
    pub snd_una: u32,
    pub snd_nxt: u32,
    /// `write_seq`: end of data queued by the user.
    pub write_seq: u32,
    pub snd_wnd: u32,
    pub snd_wl1: u32,
    pub max_window: u32,
    pub snd_wscale: u8,
    /// `snd_sml`: end of the last small segment sent (Minshall).
    pub snd_sml: u32,
    /// The write queue: `[0, send_head)` is the retransmit queue, the rest
    /// not yet sent.
    pub wq: VecDeque<Skb>,
    pub send_head: usize,
    pub wmem_queued: u32,
    pub sndbuf: u32,
    /// Transmitted copies below TCP (`sk_wmem_alloc`).
    pub wmem: Arc<WmemAccount>,
    pub fin_queued: bool,
    /// `TSQ_THROTTLED`: a send stopped for bytes below TCP (TSQ or
    /// autocork); the lcore's poll pushes again (the `tcp_wfree` →
    /// `tcp_tsq_handler` path).
    pub tsq_throttled: bool,
    // Receive sequence space.
    pub irs: u32,
    pub rcv_nxt: u32,
    pub rcv_wscale: u8,
    pub rcv_wnd: u32,
    /// `rcv_wup`: rcv_nxt when the window was last advertised.
    pub rcv_wup: u32,
    pub rcvq: VecDeque<u8>,
    /// The out-of-order queue, sorted, non-overlapping.
    pub ofo: VecDeque<Ofo>,
    /// Start of the segment last queued out of order (its SACK block goes first).
    pub ofo_last: u32,
    pub rcvbuf: u32,
    pub rcv_fin: bool,
    pub rcv_mss: u32,
    // Options.
    pub mss_clamp: u16,
    pub mss_cache: u32,
    pub advmss: u16,
    pub sack_ok: bool,
    pub ts_ok: bool,
    pub wscale_ok: bool,
    pub ts_recent: u32,
    pub ts_offset: u32,
    // Nagle/cork.
    pub nodelay: bool,
    pub cork: bool,
    // Congestion.
    pub cw: cong::Cwnd,
    pub cc: cong::CongControl,
    pub ca_state: CaState,
    pub high_seq: u32,
    pub packets_out: u32,
    pub sacked_out: u32,
    pub lost_out: u32,
    pub retrans_out: u32,
    pub dupacks: u32,
    pub max_packets_out: u32,
    pub max_packets_seq: u32,
    pub cwnd_limited: bool,
    pub prior_ssthresh: u32,
    // RTT / RTO (µs, Linux's scaled forms: srtt << 3, mdev << 2).
    pub srtt_us: u32,
    pub mdev_us: u32,
    pub rttvar_us: u32,
    pub rto_us: u32,
    /// Smallest RTT sample (µs; `u32::MAX` before one), for TSO autosizing
    /// (`tcp_min_rtt`; Linux keeps a windowed minimum, here the minimum
    /// over the connection).
    pub min_rtt_us: u32,
    pub backoff: u8,
    pub retransmits: u8,
    // Timers (absolute ns deadlines).
    pub rto_at: Option<u64>,
    pub delack_at: Option<u64>,
    pub probe_at: Option<u64>,
    pub tw_at: Option<u64>,
    /// Internal pacing (`tcp_internal_pacing`): on once `SO_MAX_PACING_RATE`
    /// is set (`sk_pacing_status = SK_PACING_NEEDED`).
    pub pacing: bool,
    /// `sk_max_pacing_rate`, bytes/s (`u64::MAX`: no cap).
    pub max_pacing_rate: u64,
    /// `tcp_wstamp_ns`: earliest departure of the next new segment.
    pub wstamp_ns: u64,
    /// The pacing timer (`tp->pacing_timer`): fires at `wstamp_ns`.
    pub pace_at: Option<u64>,
    pub probes_out: u8,
    /// Segments received since the last ACK we sent (quick-ack every 2).
    pub unacked_rx: u32,
    pub ack_pending: bool,
    // Errors (`sk_err`, `sk_shutdown`).
    pub err: Option<Errno>,
    pub shut_wr: bool,
    pub shut_rd: bool,
    pub inet_id: u16,
    pub txhash: u32,
    pub dst: Option<Dst>,
    // Counters of this socket.
    pub total_retrans: u32,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub segs_out: u64,
    pub segs_in: u64,
}

impl Tcb {
    fn new(cfg: &TcpConfig, now_us: u32) -> Tcb {
        Tcb {
            idx: 0,
            state: TcpState::Closed,
            laddr: Ipv4Addr::UNSPECIFIED,
            lport: 0,
            raddr: Ipv4Addr::UNSPECIFIED,
            rport: 0,
            hashed: false,
            orphan: false,
            parent: None,
            backlog: 0,
            accept_q: VecDeque::new(),
            syn_q_len: 0,
            iss: 0,
            snd_una: 0,
            snd_nxt: 0,
            write_seq: 0,
            snd_wnd: 0,
            snd_wl1: 0,
            max_window: 0,
            snd_wscale: 0,
            snd_sml: 0,
            wq: VecDeque::new(),
            send_head: 0,
            wmem_queued: 0,
            sndbuf: cfg.sndbuf,
            wmem: Arc::new(WmemAccount::new()),
            fin_queued: false,
            tsq_throttled: false,
            irs: 0,
            rcv_nxt: 0,
            rcv_wscale: 0,
            rcv_wnd: 0,
            rcv_wup: 0,
            rcvq: VecDeque::new(),
            ofo: VecDeque::new(),
            ofo_last: 0,
            rcvbuf: cfg.rcvbuf,
            rcv_fin: false,
            rcv_mss: 536,
            mss_clamp: 536,
            mss_cache: 536,
            advmss: 1460,
            sack_ok: false,
            ts_ok: false,
            wscale_ok: false,
            ts_recent: 0,
            ts_offset: 0,
            nodelay: false,
            cork: false,
            cw: cong::Cwnd::default(),
            cc: cong::CongControl::new(cfg.congestion, now_us, 0),
            ca_state: CaState::Open,
            high_seq: 0,
            packets_out: 0,
            sacked_out: 0,
            lost_out: 0,
            retrans_out: 0,
            dupacks: 0,
            max_packets_out: 0,
            max_packets_seq: 0,
            cwnd_limited: false,
            prior_ssthresh: 0,
            srtt_us: 0,
            mdev_us: 0,
            rttvar_us: 0,
            rto_us: timer::TCP_TIMEOUT_INIT_US,
            min_rtt_us: u32::MAX,
            backoff: 0,
            retransmits: 0,
            rto_at: None,
            delack_at: None,
            probe_at: None,
            tw_at: None,
            pacing: false,
            max_pacing_rate: u64::MAX,
            wstamp_ns: 0,
            pace_at: None,
            probes_out: 0,
            unacked_rx: 0,
            ack_pending: false,
            err: None,
            shut_wr: false,
            shut_rd: false,
            inet_id: 0,
            txhash: 0,
            dst: None,
            total_retrans: 0,
            bytes_acked: 0,
            bytes_received: 0,
            bytes_sent: 0,
            bytes_retrans: 0,
            segs_out: 0,
            segs_in: 0,
        }
    }

    /// `tcp_packets_in_flight`: packets_out − (sacked_out + lost_out) +
    /// retrans_out (RFC 6675's "pipe" in segments).
    #[inline]
    pub fn in_flight(&self) -> u32 {
        (self.packets_out + self.retrans_out).saturating_sub(self.sacked_out + self.lost_out)
    }

    /// `tcp_wnd_end`: right edge of the peer's window.
    #[inline]
    pub fn wnd_end(&self) -> u32 {
        self.snd_una.wrapping_add(self.snd_wnd)
    }

    /// `sk_stream_memory_free`.
    #[inline]
    pub fn memory_free(&self) -> bool {
        self.wmem_queued < self.sndbuf
    }

    /// Bytes free in the receive ring (the window we can offer).
    #[inline]
    pub fn rcv_space(&self) -> u32 {
        self.rcvbuf.saturating_sub(self.rcvq.len() as u32)
    }

    fn key(&self) -> FourTuple {
        (
            u32::from(self.laddr),
            self.lport,
            u32::from(self.raddr),
            self.rport,
        )
    }

    fn tcp_info(&self, now_ns: u64) -> TcpInfo {
        let _ = now_ns;
        TcpInfo {
            state: self.state.name(),
            ca_state: match self.ca_state {
                CaState::Open => 0,
                CaState::Disorder => 1,
                CaState::Recovery => 3,
                CaState::Loss => 4,
            },
            retransmits: self.retransmits,
            backoff: self.backoff,
            snd_wscale: self.snd_wscale,
            rcv_wscale: self.rcv_wscale,
            rto_us: self.rto_us,
            snd_mss: self.mss_cache,
            rcv_mss: self.rcv_mss,
            unacked: self.packets_out,
            sacked: self.sacked_out,
            lost: self.lost_out,
            retrans: self.retrans_out,
            rtt_us: self.srtt_us >> 3,
            rttvar_us: self.mdev_us >> 2,
            snd_ssthresh: self.cw.ssthresh,
            snd_cwnd: self.cw.cwnd,
            snd_wnd: self.snd_wnd,
            rcv_wnd: self.rcv_wnd,
            total_retrans: self.total_retrans,
            bytes_acked: self.bytes_acked,
            bytes_received: self.bytes_received,
            bytes_sent: self.bytes_sent,
            bytes_retrans: self.bytes_retrans,
            segs_out: self.segs_out,
            segs_in: self.segs_in,
            notsent_bytes: self.write_seq.wrapping_sub(self.snd_nxt),
            wmem_alloc: self.wmem.in_flight(),
            wmem_queued: self.wmem_queued,
            congestion: self.cc.algo.name(),
        }
    }
}

type FourTuple = (u32, u16, u32, u16);

/// The TCP socket table of one stack: slots with generations, the
/// established hash (`inet_ehash`, 4-tuple → slot), the listening hash
/// (`inet_lhash2`, local port → slot), and settings.
pub(crate) struct TcpTable {
    slots: Vec<Option<Box<Tcb>>>,
    gens: Vec<u32>,
    free: Vec<u32>,
    pub(crate) ehash: HashMap<FourTuple, usize>,
    pub(crate) lhash: HashMap<u16, usize>,
    /// Local ports bound by sockets not yet in the established hash.
    bound: HashMap<u16, u32>,
    pub(crate) cfg: TcpConfig,
    max: usize,
    ephemeral: (u16, u16),
    /// `secure_tcp_seq` / `secure_tcp_ts_off` / port-offset key.
    pub(crate) key: secret::SipKey,
    /// The next ephemeral port search start (`table_perturb`-like).
    perturb: u32,
    /// Sockets with transmit work pending (TSQ throttled, timers).
    pub(crate) active: Vec<usize>,
    /// `in_active[i]`: slot `i` is on `active` (O(1) membership).
    pub(crate) in_active: Vec<bool>,
    /// Ports claimed for every lcore's stack (`inet_hashinfo` is global in
    /// Linux), when the stack shares a control plane.
    pub(crate) claims: Option<super::shared::PortClaims>,
}

impl TcpTable {
    pub(crate) fn new(cfg: &super::StackConfig) -> TcpTable {
        // tcpv4_offload_init: the device layer's software GSO segments
        // TCP super-segments with this stack's segmenter.
        crate::ethdev::offload::add_offload_tcp4(offload::tcp4_gso_segment);
        TcpTable {
            slots: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            ehash: HashMap::new(),
            lhash: HashMap::new(),
            bound: HashMap::new(),
            cfg: TcpConfig::default(),
            max: cfg.max_sockets,
            ephemeral: cfg.ephemeral_ports,
            key: secret::SipKey::process(0x0074_6370_5f73_6571), // "tcp_seq"
            perturb: 0,
            active: Vec::new(),
            in_active: Vec::new(),
            claims: None,
        }
    }

    /// Any socket open (listening, connecting or connected)?
    pub(crate) fn has_sockets(&self) -> bool {
        self.slots.iter().any(Option::is_some)
    }

    fn alloc(&mut self, mut t: Tcb) -> Result<usize, Errno> {
        if let Some(i) = self.free.pop() {
            t.idx = i as usize;
            self.slots[i as usize] = Some(Box::new(t));
            return Ok(i as usize);
        }
        if self.slots.len() >= self.max {
            return Err(Errno::EMFILE);
        }
        t.idx = self.slots.len();
        self.slots.push(Some(Box::new(t)));
        self.gens.push(0);
        self.in_active.push(false);
        Ok(self.slots.len() - 1)
    }

    fn id(&self, idx: usize) -> TcpId {
        TcpId {
            idx: idx as u32,
            gen: self.gens[idx],
        }
    }

    fn check(&self, id: TcpId) -> Result<usize, Errno> {
        let i = id.idx as usize;
        match (self.slots.get(i), self.gens.get(i)) {
            (Some(Some(t)), Some(&g)) if g == id.gen && !t.orphan => Ok(i),
            _ => Err(Errno::EBADF),
        }
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&Tcb> {
        self.slots.get(i).and_then(|s| s.as_deref())
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut Tcb> {
        self.slots.get_mut(i).and_then(|s| s.as_deref_mut())
    }

    /// Takes a control block out of its slot (put it back with `put`).
    #[inline]
    pub(crate) fn take(&mut self, i: usize) -> Option<Box<Tcb>> {
        self.slots.get_mut(i).and_then(|s| s.take())
    }

    #[inline]
    pub(crate) fn put(&mut self, i: usize, t: Box<Tcb>) {
        self.slots[i] = Some(t);
    }

    /// Frees a slot (`inet_csk_destroy_sock` / `tcp_done` for a dead socket).
    pub(crate) fn destroy(&mut self, i: usize) {
        if let Some(t) = self.slots.get_mut(i).and_then(|s| s.take()) {
            self.unhash(&t);
            self.gens[i] = self.gens[i].wrapping_add(1);
            self.free.push(i as u32);
        }
    }

    pub(crate) fn unhash(&mut self, t: &Tcb) {
        if t.hashed {
            self.ehash.remove(&t.key());
        }
        if t.state == TcpState::Listen && self.lhash.contains_key(&t.lport) {
            self.lhash.remove(&t.lport);
        }
        if t.lport != 0 {
            if let Some(n) = self.bound.get_mut(&t.lport) {
                *n -= 1;
                if *n == 0 {
                    self.bound.remove(&t.lport);
                    if !self.lhash.contains_key(&t.lport) {
                        if let Some(c) = &self.claims {
                            c.release(super::shared::PortSpace::Tcp, t.lport);
                        }
                    }
                }
            }
        }
    }

    fn port_in_use(&self, port: u16) -> bool {
        self.bound.contains_key(&port)
            || self.lhash.contains_key(&port)
            || self
                .claims
                .as_ref()
                .is_some_and(|c| c.taken_by_other(super::shared::PortSpace::Tcp, port))
    }

    /// Claims `port` for this stack among the lcores sharing its control
    /// plane (always true for a stack alone).
    fn claim(&self, port: u16) -> bool {
        self.claims
            .as_ref()
            .is_none_or(|c| c.claim(super::shared::PortSpace::Tcp, port))
    }

    fn bind_port(&mut self, port: u16) {
        *self.bound.entry(port).or_insert(0) += 1;
        self.claim(port);
    }

    /// Plays the part of `__inet_hash_connect`: an ephemeral port for a
    /// connection to (daddr, dport), searched from a keyed offset of the
    /// destination (`port_offset`) plus a per-table perturbation, skipping
    /// ports already bound.
    fn pick_port(&mut self, saddr: Ipv4Addr, daddr: Ipv4Addr, dport: u16) -> Result<u16, Errno> {
        let (lo, hi) = self.ephemeral;
        let n = (hi - lo) as u32 + 1;
        let off = secret::siphash_2u64(
            ((u32::from(saddr) as u64) << 32) | u32::from(daddr) as u64,
            dport as u64,
            &self.key,
        ) as u32;
        for i in 0..n {
            let p = lo + ((off.wrapping_add(self.perturb).wrapping_add(i)) % n) as u16;
            if !self.port_in_use(p) && self.claim(p) {
                self.perturb = self.perturb.wrapping_add(i + 1);
                return Ok(p);
            }
        }
        Err(Errno::EADDRNOTAVAIL)
    }

    pub(crate) fn mark_active(&mut self, i: usize) {
        if !self.in_active[i] {
            self.in_active[i] = true;
            self.active.push(i);
        }
    }

    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i)
    }
}

impl Stack {
    /// Plays the part of `inet_create` for `SOCK_STREAM`: a new TCP socket.
    pub fn tcp_socket(&mut self) -> Result<TcpId, Errno> {
        let now_us = self.tcp_now_us();
        let t = Tcb::new(&self.tcp.cfg, now_us);
        let i = self.tcp.alloc(t)?;
        Ok(self.tcp.id(i))
    }

    /// A handle to a TCP socket.
    pub fn tcp(&mut self, id: TcpId) -> TcpSocket<'_> {
        TcpSocket { st: self, id }
    }

    /// The TCP settings (`net.ipv4.tcp_*`) for sockets created from now on
    /// (and the retry limits of all).
    pub fn tcp_config_mut(&mut self) -> &mut TcpConfig {
        &mut self.tcp.cfg
    }

    /// Every TCP socket's (local, remote, state, info), as `ss -ti` lists them.
    pub fn tcp_sockets(&self) -> Vec<(SocketAddrV4, SocketAddrV4, TcpInfo)> {
        let now = self.now;
        self.tcp
            .live()
            .filter_map(|i| self.tcp.get(i))
            .map(|t| {
                (
                    SocketAddrV4::new(t.laddr, t.lport),
                    SocketAddrV4::new(t.raddr, t.rport),
                    t.tcp_info(now),
                )
            })
            .collect()
    }

    /// µs clock (`tcp_mstamp`).
    #[inline]
    pub(crate) fn tcp_now_us(&self) -> u32 {
        (self.now / 1000) as u32
    }

    /// ms clock (`tcp_jiffies32`, HZ = 1000; also the TSval clock, Linux's
    /// `TCP_TS_HZ`).
    #[inline]
    pub(crate) fn tcp_now_ms(&self) -> u32 {
        (self.now / 1_000_000) as u32
    }

    /// Runs `f` on the control block of slot `i`, taken out of the table so
    /// `f` can use the rest of the stack.
    pub(crate) fn with_tcb<R>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Stack, &mut Tcb) -> R,
    ) -> Option<R> {
        let mut t = self.tcp.take(i)?;
        let r = f(self, &mut t);
        self.tcp.put(i, t);
        Some(r)
    }

    /// Moves a control block to `new` state, keeping CurrEstab right
    /// (`tcp_set_state`).
    pub(crate) fn tcp_set_state(&mut self, t: &mut Tcb, new: TcpState) {
        let c = &self.counters.tcp;
        if t.state.counts_estab() && !new.counts_estab() {
            c.curr_estab.sub(1);
            if new == TcpState::Closed {
                // A reset or abort out of ESTABLISHED/CLOSE_WAIT (tcp_set_state → EstabResets
                // is counted by the caller that knows it was a reset).
            }
        } else if !t.state.counts_estab() && new.counts_estab() {
            c.curr_estab.add(1);
        }
        t.state = new;
    }

    /// Plays the part of `tcp_done`: the connection is CLOSED; its timers
    /// stop, its queues are freed; an orphan's slot is freed too.
    pub(crate) fn tcp_done(&mut self, t: &mut Tcb) {
        self.tcp_set_state(t, TcpState::Closed);
        t.rto_at = None;
        t.delack_at = None;
        t.probe_at = None;
        t.tw_at = None;
        t.wq.clear();
        t.send_head = 0;
        t.wmem_queued = 0;
        t.packets_out = 0;
        t.sacked_out = 0;
        t.lost_out = 0;
        t.retrans_out = 0;
        if t.hashed {
            self.tcp.ehash.remove(&t.key());
            t.hashed = false;
        }
        if t.orphan {
            // Nobody holds a handle: the next poll frees the slot.
            self.tcp.mark_active(t.idx);
        }
    }
}

/// A TCP socket on this lcore's stack. Calls never block.
pub struct TcpSocket<'a> {
    st: &'a mut Stack,
    id: TcpId,
}

impl TcpSocket<'_> {
    pub fn id(&self) -> TcpId {
        self.id
    }

    fn with<R>(&mut self, f: impl FnOnce(&mut Stack, &mut Tcb, usize) -> R) -> Result<R, Errno> {
        let i = self.st.tcp.check(self.id)?;
        Ok(self
            .st
            .with_tcb(i, |st, t| f(st, t, i))
            .expect("checked slot"))
    }

    fn read<R>(&self, f: impl FnOnce(&Tcb) -> R) -> Result<R, Errno> {
        let i = self.st.tcp.check(self.id)?;
        Ok(f(self.st.tcp.get(i).expect("checked slot")))
    }

    /// `bind`: `addr` must be 0.0.0.0 or one of the stack's addresses;
    /// port 0 picks one at connect/listen.
    pub fn bind(&mut self, addr: SocketAddrV4) -> Result<(), Errno> {
        let ip = *addr.ip();
        if !ip.is_unspecified() && self.st.port_of_addr(ip).is_none() {
            return Err(Errno::EADDRNOTAVAIL);
        }
        let port = addr.port();
        if port != 0 && (self.st.tcp.port_in_use(port) || !self.st.tcp.claim(port)) {
            return Err(Errno::EADDRINUSE);
        }
        self.with(|st, t, _| {
            if t.state != TcpState::Closed || t.lport != 0 {
                return Err(Errno::EINVAL);
            }
            t.laddr = ip;
            if port != 0 {
                t.lport = port;
                st.tcp.bind_port(port);
            }
            Ok(())
        })?
    }

    /// Plays the part of `inet_stream_connect` → `tcp_v4_connect` →
    /// `tcp_connect`: route, source address and ephemeral port
    /// (`__inet_hash_connect`), ISN (`secure_tcp_seq`), timestamp offset,
    /// per-socket IP ID start, then the SYN (MSS, SACK-permitted,
    /// timestamps, window scale) with its retransmit timer. Returns at once;
    /// the socket is SYN-SENT until the handshake completes
    /// ([`TcpSocket::state`], [`TcpSocket::poll`]).
    pub fn connect(&mut self, peer: SocketAddrV4) -> Result<(), Errno> {
        self.with(|st, t, i| st.tcp_v4_connect(t, i, peer))?
    }

    /// Plays the part of `inet_listen` / `inet_csk_listen_start`: accept
    /// connections to the bound port, at most `backlog` pending.
    pub fn listen(&mut self, backlog: usize) -> Result<(), Errno> {
        self.with(|st, t, i| {
            if t.state == TcpState::Listen {
                t.backlog = backlog.max(1);
                return Ok(());
            }
            if t.state != TcpState::Closed {
                return Err(Errno::EINVAL);
            }
            if t.lport == 0 {
                return Err(Errno::EDESTADDRREQ);
            }
            if st.tcp.lhash.contains_key(&t.lport) {
                return Err(Errno::EADDRINUSE);
            }
            t.backlog = backlog.max(1);
            t.state = TcpState::Listen;
            st.tcp.lhash.insert(t.lport, i);
            Ok(())
        })?
    }

    /// Plays the part of `inet_csk_accept`: the next established
    /// connection, or `EAGAIN`.
    pub fn accept(&mut self) -> Result<(TcpId, SocketAddrV4), Errno> {
        let child = self.with(|_, t, _| {
            if t.state != TcpState::Listen {
                return Err(Errno::EINVAL);
            }
            t.accept_q.pop_front().ok_or(Errno::EAGAIN)
        })??;
        let c = self.st.tcp.get_mut(child).ok_or(Errno::EAGAIN)?;
        c.parent = None;
        let peer = SocketAddrV4::new(c.raddr, c.rport);
        Ok((self.st.tcp.id(child), peer))
    }

    /// `send(buf, 0)`: see [`TcpSocket::send_msg`].
    pub fn send(&mut self, buf: &[u8]) -> Result<usize, Errno> {
        self.send_msg(buf, MsgFlags::NONE)
    }

    /// Plays the part of `tcp_sendmsg` → `tcp_sendmsg_locked`: copies what
    /// fits the send buffer into the write queue and pushes
    /// (`tcp_push`); `MSG_MORE` holds a partial segment back like
    /// `TCP_CORK`. Returns the bytes taken; `EAGAIN` when none fit (or the
    /// handshake is still under way), `EPIPE` after shutdown or on a
    /// closed connection, the pending error (`ECONNRESET` …) first if any.
    pub fn send_msg(&mut self, buf: &[u8], flags: MsgFlags) -> Result<usize, Errno> {
        self.with(|st, t, i| st.tcp_sendmsg_locked(t, i, buf, flags))?
    }

    /// `send` without the copy (`sendfile`/`splice`: `tcp_sendmsg_locked`
    /// with `MSG_SPLICE_PAGES` over a `bio_vec` array): the bytes of
    /// `iov`, in order, join the write queue by reference — indirect mbufs
    /// of at most one MSS attached to each buffer, so give MSS-sized
    /// pieces (or multiples) for full segments, and many in one call: the
    /// call pushes once at its end, as `tcp_sendmsg` does, so a call of
    /// 45 MSS leaves as one 64 KiB super-segment where 45 calls of one
    /// would leave as 45 segments (or pass `MSG_MORE` on all but the last,
    /// as `splice_to_socket` does). The buffers must come from a pool of
    /// the stack's thread and stay read-only while the stack holds them
    /// ([`crate::mbuf::Mbuf::is_shared`]); the caller may drop its handles
    /// at once. Returns the bytes taken (fewer when the send buffer fills,
    /// `EAGAIN` when none fit), the errors of [`TcpSocket::send_msg`], and
    /// `EINVAL` — nothing queued — for a range outside its buffer's first
    /// segment or a foreign pool's buffer.
    pub fn send_splice(&mut self, iov: &[SpliceVec<'_>], flags: MsgFlags) -> Result<usize, Errno> {
        self.with(|st, t, i| st.tcp_sendmsg_splice(t, i, iov, flags))?
    }

    /// `recv`: copies queued bytes into `buf`; `Ok(0)` at end of stream
    /// (the peer's FIN), `EAGAIN` when nothing is queued yet,
    /// `ECONNRESET` once after a reset, `ENOTCONN` before connecting.
    /// Reading opens the window: a window update goes out when it grew by
    /// two segments or from below one (`tcp_cleanup_rbuf`).
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.with(|st, t, _| st.tcp_recvmsg(t, buf))?
    }

    /// `shutdown(SHUT_WR)`: queue a FIN after the data (`tcp_shutdown`).
    pub fn shutdown_write(&mut self) -> Result<(), Errno> {
        self.with(|st, t, i| st.tcp_shutdown(t, i))?
    }

    /// Plays the part of `tcp_close`: unread data → RST (`TCPAbortOnClose`),
    /// else a FIN after the queued data; the handle is gone at once and
    /// the connection finishes on its own (FIN-WAIT, TIME-WAIT).
    pub fn close(self) -> Result<(), Errno> {
        let i = self.st.tcp.check(self.id)?;
        self.st.tcp_close(i, false);
        Ok(())
    }

    /// `close` with `SO_LINGER {on, 0}`: an RST now, no TIME-WAIT
    /// (`tcp_disconnect` → `tcp_send_active_reset`).
    pub fn abort(self) -> Result<(), Errno> {
        let i = self.st.tcp.check(self.id)?;
        self.st.tcp_close(i, true);
        Ok(())
    }

    /// `TCP_NODELAY`: no Nagle; setting it pushes what is queued.
    pub fn set_nodelay(&mut self, on: bool) -> Result<(), Errno> {
        self.with(|st, t, i| {
            t.nodelay = on;
            if on {
                st.tcp_push_pending(t, i);
            }
        })
    }

    /// `TCP_CORK`: hold partial segments; clearing it pushes them.
    pub fn set_cork(&mut self, on: bool) -> Result<(), Errno> {
        self.with(|st, t, i| {
            t.cork = on;
            if !on {
                st.tcp_push_pending(t, i);
            }
        })
    }

    /// `SO_MAX_PACING_RATE` (bytes/s; `u64::MAX` lifts the cap): caps
    /// `sk_pacing_rate` and turns on internal pacing, as Linux's
    /// `sock_setsockopt` does (`SK_PACING_NEEDED`): new segments leave no
    /// closer than their length at the rate (`tcp_update_skb_after_send`),
    /// the rest waits for the pacing timer. Retransmissions are not paced.
    pub fn set_max_pacing_rate(&mut self, bytes_per_sec: u64) -> Result<(), Errno> {
        if bytes_per_sec == 0 {
            return Err(Errno::EINVAL);
        }
        self.with(|_, t, _| {
            t.max_pacing_rate = bytes_per_sec;
            t.pacing = true;
        })
    }

    /// `SO_SNDBUF` (bytes of write queue, `sk_wmem_queued` limit).
    pub fn set_sndbuf(&mut self, bytes: u32) -> Result<(), Errno> {
        self.with(|_, t, _| t.sndbuf = bytes.max(4608))
    }

    /// `SO_RCVBUF` (bytes the receive ring holds; before connect/listen,
    /// since the window scale is chosen from it).
    pub fn set_rcvbuf(&mut self, bytes: u32) -> Result<(), Errno> {
        self.with(|_, t, _| {
            if t.state != TcpState::Closed {
                return Err(Errno::EINVAL);
            }
            t.rcvbuf = bytes.clamp(2048, 1 << 30);
            Ok(())
        })?
    }

    /// `TCP_CONGESTION` (before or during the connection, as Linux allows).
    pub fn set_congestion(&mut self, algo: CongAlgo) -> Result<(), Errno> {
        self.with(|st, t, _| {
            let now_us = st.tcp_now_us();
            t.cc = cong::CongControl::new(algo, now_us, t.snd_nxt);
        })
    }

    /// `TCP_MAXSEG` before connecting: clamp the MSS we advertise and use.
    pub fn set_mss(&mut self, mss: u16) -> Result<(), Errno> {
        self.with(|_, t, _| {
            if !(88..=65495).contains(&mss) || t.state != TcpState::Closed {
                return Err(Errno::EINVAL);
            }
            t.advmss = mss;
            Ok(())
        })?
    }

    pub fn state(&self) -> Result<TcpState, Errno> {
        self.read(|t| t.state)
    }

    /// `getsockopt(TCP_INFO)`.
    pub fn info(&self) -> Result<TcpInfo, Errno> {
        let now = self.st.now;
        self.read(|t| t.tcp_info(now))
    }

    /// `getsockopt(SO_ERROR)`: the pending error, cleared by reading.
    pub fn take_error(&mut self) -> Result<Option<Errno>, Errno> {
        self.with(|_, t, _| t.err.take())
    }

    /// Plays the part of `tcp_poll`.
    pub fn poll(&self) -> Result<TcpPoll, Errno> {
        self.read(|t| TcpPoll {
            readable: !t.rcvq.is_empty()
                || t.rcv_fin
                || !t.accept_q.is_empty()
                || t.err.is_some()
                || t.state == TcpState::Closed && t.lport != 0 && t.raddr != Ipv4Addr::UNSPECIFIED,
            writable: t.state.can_send() && !t.shut_wr && t.memory_free(),
            hup: t.state == TcpState::Closed && t.raddr != Ipv4Addr::UNSPECIFIED
                || t.shut_wr && t.rcv_fin,
            error: t.err.is_some(),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddrV4, Errno> {
        self.read(|t| SocketAddrV4::new(t.laddr, t.lport))
    }

    pub fn peer_addr(&self) -> Result<SocketAddrV4, Errno> {
        self.read(|t| {
            if t.raddr.is_unspecified() {
                Err(Errno::ENOTCONN)
            } else {
                Ok(SocketAddrV4::new(t.raddr, t.rport))
            }
        })?
    }

    /// Bytes queued and not yet acknowledged (`SIOCOUTQ`).
    pub fn outq(&self) -> Result<u32, Errno> {
        self.read(|t| t.write_seq.wrapping_sub(t.snd_una))
    }
}

#[cfg(test)]
mod tests;
