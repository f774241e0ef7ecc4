//! Proves the fast path's "no heap allocation per packet" rule (DESIGN.md,
//! rules of the fast path): a counting `#[global_allocator]` wraps the system
//! allocator, and each workload is warmed up, then run for N packets in steady
//! state between two snapshots of the counters. Every thread of the process
//! counts (the lcore, the device models' DMA engine threads, the runtime's
//! ticker), so an allocation anywhere on the path shows.
//!
//! Workloads:
//! * `raw noqueue` / `raw pfifo_fast+BQL`: generator-style frames (prebuilt
//!   in the mempool, alloc_bulk + set_len) through the runtime loop and a
//!   netdev queue into the `null` port;
//! * `udp send` / `udp send_batch`: a connected `UdpSocket` through the stack,
//!   pfifo_fast + BQL (`NetdevXmit`), `null` port;
//! * `ice-model raw` / `igb-model raw`: the PMD's `tx_burst` + `clean` on its
//!   device model (ice pacing off, igb speed unlimited; model thread on the
//!   other core); `… netdev`: the same through the runtime and pfifo_fast+BQL;
//! * `ice-model RSS loopback`: the ice PMD transmitting into its model's
//!   loopback, the model hashing each frame (256 flows) and steering it by
//!   the 2048-entry LUT to one of two RX queues, the PMD receiving it with
//!   its hash (`rx_burst` on both queues, bulk free);
//! * `staged udp 1q` / `staged udp 2q`: the generator's socket mode — a stack
//!   inside the runtime whose `dev_queue_xmit` is `runtime::staged`
//!   (`StagedXmit` → `StagedTx::flush`), stack timers every millisecond, with
//!   one and with two TX queues on the lcore.
//!
//! Prints `workload packets allocations allocs/Mpkt` (allocations include
//! reallocs; bytes are the sum of requested sizes) and exits 1 naming every
//! workload that allocated in steady state.
//!
//! `ALLOC_BACKTRACE=N` prints the backtraces of the first N steady-state
//! allocations of each workload (to stderr), to find the allocation site.
//!
//! Usage: `cargo run --release -p wirespeed-perf --bin alloc_count [-- --packets N
//! --warmup N --only SUBSTRING --lcore C --model-core C]`
//! (defaults: 10 M packets after 1 M of warm-up, lcore 0, model core 1).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::eal::lcore::CoreList;
use wirespeed::eal::Tsc;
use wirespeed::ethdev::{null::NullPort, MacAddr, Port, PortConfig, Registry};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};
use wirespeed::netdev::{NetdevQueue, QdiscKind, TxqConfig};
use wirespeed::runtime::staged::{staged, StagedTx};
use wirespeed::runtime::{LcoreApp, LcoreCtx, PortSetup, Runtime, RuntimeConfig};
use wirespeed::stack::{
    L2Xmit, NetdevXmit, PortConf, SocketId, Stack, StackConfig, TcpState, XmitDrop,
};

// ---------------------------------------------------------------- allocator

/// `System`, counting every allocation with relaxed atomics (a benchmark:
/// the counting is all it adds).
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// Set during a steady-state window when `ALLOC_BACKTRACE` asks for traces.
static TRACING: AtomicBool = AtomicBool::new(false);
/// Backtraces still to print in this window.
static TRACE_LEFT: AtomicU64 = AtomicU64::new(0);
/// Frames of each backtrace printed.
const TRACE_FRAMES: usize = 12;

thread_local! {
    /// This thread is capturing a backtrace: its own allocations are not the
    /// workload's (neither counted nor traced).
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
}

impl Counting {
    #[inline(always)]
    fn count(&self, kind: &'static str, size: usize) {
        if IN_TRACE.try_with(|t| t.get()).unwrap_or(true) {
            return;
        }
        if kind == "realloc" {
            REALLOCS.fetch_add(1, Relaxed);
        } else {
            ALLOCS.fetch_add(1, Relaxed);
        }
        BYTES.fetch_add(size as u64, Relaxed);
        if TRACING.load(Relaxed) {
            trace(kind, size);
        }
    }
}

#[cold]
#[inline(never)]
fn trace(kind: &'static str, size: usize) {
    let take = TRACE_LEFT
        .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
        .is_ok();
    if !take {
        return;
    }
    IN_TRACE.with(|t| t.set(true));
    let bt = std::backtrace::Backtrace::force_capture().to_string();
    // Frames: a "N: function" line, then its "at file:line" (when known).
    let mut frames: Vec<(&str, Option<&str>)> = Vec::new();
    for l in bt.lines() {
        match (l.trim_start().strip_prefix("at "), frames.last_mut()) {
            (Some(at), Some(f)) => f.1 = Some(at),
            _ => frames.push((l.trim(), None)),
        }
    }
    // Skip this allocator's frames (up to `__rust_alloc`/`__rust_realloc`) and
    // the standard library's: what is left is who asked for the memory.
    let from = frames
        .iter()
        .position(|f| f.0.contains("__rust_"))
        .map_or(0, |i| i + 1);
    let th = std::thread::current();
    eprintln!(
        "--- steady-state {kind} of {size} B on thread {}:",
        th.name().unwrap_or("?")
    );
    let ours = frames[from..]
        .iter()
        .filter(|f| !f.1.is_some_and(|at| at.starts_with("/rustc/")));
    for (func, at) in ours.take(TRACE_FRAMES) {
        eprintln!("  {func}\n        at {}", at.unwrap_or("?"));
    }
    IN_TRACE.with(|t| t.set(false));
}

// SAFETY: every call is forwarded unchanged to `System`; the counting touches
// only atomics and a const-initialised thread-local (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.count("alloc", layout.size());
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.count("alloc_zeroed", layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.count("realloc", new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counters at one instant.
#[derive(Debug, Clone, Copy, Default)]
struct Snap {
    allocs: u64,
    reallocs: u64,
    bytes: u64,
}

impl Snap {
    fn now() -> Snap {
        Snap {
            allocs: ALLOCS.load(Relaxed),
            reallocs: REALLOCS.load(Relaxed),
            bytes: BYTES.load(Relaxed),
        }
    }
}

/// A steady-state window: counters and packets between `open` and `close`.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    open: bool,
    start: Snap,
    pkts0: u64,
    /// (packets, allocations, reallocations, bytes) once closed.
    result: Option<(u64, u64, u64, u64)>,
}

/// How many backtraces `ALLOC_BACKTRACE` asks for per window (0 = off).
fn backtraces() -> u64 {
    match std::env::var("ALLOC_BACKTRACE") {
        Ok(v) => v.parse().unwrap_or(5),
        Err(_) => 0,
    }
}

impl Window {
    /// Opens the window at `pkts` packets (the end of the warm-up).
    fn open(&mut self, pkts: u64) {
        let n = backtraces();
        TRACE_LEFT.store(n, Relaxed);
        TRACING.store(n > 0, Relaxed);
        self.open = true;
        self.pkts0 = pkts;
        self.start = Snap::now();
    }
    fn close(&mut self, pkts: u64) {
        let end = Snap::now();
        TRACING.store(false, Relaxed);
        self.result = Some((
            pkts - self.pkts0,
            end.allocs - self.start.allocs,
            end.reallocs - self.start.reallocs,
            end.bytes - self.start.bytes,
        ));
    }
    /// Drives the window from a packet count; true once it has closed.
    #[inline]
    fn step(&mut self, pkts: u64, p: &Params) -> bool {
        if self.result.is_some() {
            return true;
        }
        if !self.open {
            if pkts >= p.warmup {
                self.open(pkts);
            }
        } else if pkts - self.pkts0 >= p.packets {
            self.close(pkts);
            return true;
        }
        false
    }
}

// ---------------------------------------------------------------- set-up

const BURST: usize = 32;
/// 60 bytes + FCS = 64 on the wire.
const FRAME: usize = 60;
/// A UDP payload that makes a 60-byte frame.
const PAYLOAD: usize = 18;

#[derive(Debug, Clone)]
struct Params {
    packets: u64,
    warmup: u64,
    lcore: usize,
    model_core: usize,
}

fn frame_template() -> [u8; FRAME] {
    wirespeed_perf::frame_template::<FRAME>()
}

fn pool(name: &str, size: u32) -> Mempool {
    Mempool::new(&PoolConfig {
        name: name.into(),
        size,
        headroom: 128,
        data_room: 2048,
    })
    .expect("mempool")
}

fn registry() -> Registry {
    let mut reg = Registry::with_builtins();
    pmd_ice::register(&mut reg);
    pmd_igb::register(&mut reg);
    reg
}

fn txq_config(qdisc: QdiscKind, bql: bool) -> TxqConfig {
    let mut c = TxqConfig::default();
    c.qdisc.kind = qdisc;
    c.bql.enabled = bql;
    c
}

fn stack_config() -> (StackConfig, Ipv4Addr) {
    let local = Ipv4Addr::new(10, 0, 0, 1);
    let peer = Ipv4Addr::new(10, 0, 0, 2);
    (
        StackConfig {
            ports: vec![PortConf::new(MacAddr::local(1), local, 24)],
            static_neighbours: vec![(0, peer, MacAddr::local(2))],
            ..Default::default()
        },
        peer,
    )
}

fn runtime_config(p: &Params, name: &str) -> RuntimeConfig {
    let mut cfg = RuntimeConfig::new(CoreList::from_cores(vec![p.lcore]));
    cfg.pool = PoolConfig {
        name: name.into(),
        size: 8192,
        ..Default::default()
    };
    cfg.handle_signals = false;
    // A safety net only: each app stops itself once its window closes.
    cfg.stop.duration = Some(Duration::from_secs(120));
    cfg
}

// ---------------------------------------------------------------- workloads

/// Raw generator frames into queue 0 of port 0 through the netdev layer.
struct RawGen {
    p: Params,
    w: Window,
}

impl LcoreApp for RawGen {
    type Summary = Window;
    #[inline]
    fn poll(&mut self, ctx: &mut LcoreCtx) {
        let mut b = Burst::new();
        if ctx.pool.alloc_bulk(&mut b, BURST) {
            for m in b.as_mut_slice() {
                let _ = m.set_len(FRAME);
            }
            ctx.xmit_burst(0, 0, &mut b);
        }
        if self.w.step(ctx.tx_sent_packets(), &self.p) {
            ctx.request_stop();
        }
    }
    fn finish(self, _ctx: &mut LcoreCtx) -> Window {
        self.w
    }
}

fn run_raw_runtime(p: &Params, spec: &str, txq: TxqConfig) -> Result<Window, String> {
    let port = registry().open(spec).map_err(|e| e.to_string())?;
    let mut setup = PortSetup::new(port, PortConfig::default());
    setup.txq = txq;
    let rt =
        Runtime::new(runtime_config(p, "alloc-raw"), vec![setup]).map_err(|e| e.to_string())?;
    let tmpl = frame_template();
    let params = p.clone();
    let report = rt
        .run(move |ctx| {
            ctx.pool
                .init_all(|m| {
                    let _ = m.extend_from_slice(&tmpl);
                })
                .map_err(|e| e.to_string())?;
            Ok(RawGen {
                p: params.clone(),
                w: Window::default(),
            })
        })
        .map_err(|e| e.to_string())?;
    Ok(report.lcores[0].app)
}

/// The raw testpmd-txonly loop on a driver queue, no netdev layer: the PMD
/// and its device model alone.
fn run_raw_pmd(p: &Params, spec: &str) -> Result<Window, String> {
    let mut port = registry().open(spec).map_err(|e| e.to_string())?;
    port.configure(&PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: 0,
        tx_ring_size: 1024,
        rx_ring_size: 1024,
        tx_offloads: 0,
        promiscuous: true,
        rss: None,
    })
    .map_err(|e| e.to_string())?;
    let mut q = port.tx_queue(0).map_err(|e| e.to_string())?;
    port.start().map_err(|e| e.to_string())?;
    let mut pool = pool("alloc-pmd", 4096);
    let tmpl = frame_template();
    pool.init_all(|m| {
        let _ = m.extend_from_slice(&tmpl);
    })
    .map_err(|e| e.to_string())?;
    let mut b = Burst::new();
    let mut w = Window::default();
    let mut done = 0u64;
    let t0 = Instant::now();
    loop {
        if b.is_empty() && pool.alloc_bulk(&mut b, BURST) {
            for m in b.as_mut_slice() {
                let _ = m.set_len(FRAME);
            }
        }
        done += q.tx_burst(&mut b) as u64;
        q.clean(2 * BURST);
        if w.step(done, p) {
            break;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            return Err(format!("{spec}: only {done} packets in 120 s"));
        }
    }
    b.clear();
    let t1 = Instant::now();
    while q.free_slots() + 1 < q.ring_size() && t1.elapsed() < Duration::from_secs(2) {
        q.clean(usize::MAX);
    }
    drop(q);
    let _ = port.stop();
    Ok(w)
}

/// TX into the ice model's loopback, RSS over two RX queues, RX on both:
/// the model's steering (Toeplitz + LUT) and the PMD's receive path with
/// the hash. Counts received packets.
fn run_ice_rss(p: &Params, spec: &str) -> Result<Window, String> {
    let mut port = registry().open(spec).map_err(|e| e.to_string())?;
    let reta = port.info().reta_size;
    port.configure(&PortConfig {
        nb_tx_queues: 1,
        nb_rx_queues: 2,
        tx_ring_size: 1024,
        rx_ring_size: 1024,
        tx_offloads: 0,
        promiscuous: true,
        rss: Some(wirespeed::ethdev::RssConf::spread(2, reta)),
    })
    .map_err(|e| e.to_string())?;
    let mut q = port.tx_queue(0).map_err(|e| e.to_string())?;
    let mut rx: Vec<_> = (0..2)
        .map(|i| port.rx_queue(i))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    port.start().map_err(|e| e.to_string())?;
    let mut pool = pool("alloc-ice-rss", 8192);
    let tmpl = frame_template();
    pool.init_all(|m| {
        let _ = m.extend_from_slice(&tmpl);
    })
    .map_err(|e| e.to_string())?;
    let mut b = Burst::new();
    let mut got = Burst::new();
    let mut w = Window::default();
    let (mut sent, mut done) = (0u64, 0u64);
    let t0 = Instant::now();
    loop {
        if b.is_empty() && pool.alloc_bulk(&mut b, BURST) {
            for m in b.as_mut_slice() {
                let _ = m.set_len(FRAME);
                // 256 flows: the low byte of the UDP source port.
                m.data_mut()[35] = sent as u8;
                sent += 1;
            }
        }
        q.tx_burst(&mut b);
        q.clean(2 * BURST);
        for r in rx.iter_mut() {
            done += r.rx_burst(&mut pool, &mut got, BURST) as u64;
            got.clear();
        }
        if w.step(done, p) {
            break;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            return Err(format!("{spec}: only {done} packets received in 120 s"));
        }
    }
    b.clear();
    let t1 = Instant::now();
    while q.free_slots() + 1 < q.ring_size() && t1.elapsed() < Duration::from_secs(2) {
        q.clean(usize::MAX);
    }
    drop(q);
    for r in rx.iter_mut() {
        r.stop();
    }
    let _ = port.stop();
    Ok(w)
}

/// Connected `UdpSocket::send` (or `send_batch`) x32, flush, reclaim — the
/// `udp_stack` loop — through pfifo_fast + BQL into `null`.
fn run_udp(p: &Params, batch: bool) -> Result<Window, String> {
    let (cfg, peer) = stack_config();
    let mut port = NullPort::new("null");
    port.configure(&PortConfig::default())
        .map_err(|e| e.to_string())?;
    let q = NetdevQueue::new(
        0,
        "null",
        port.tx_queue(0).map_err(|e| e.to_string())?,
        &txq_config(QdiscKind::PfifoFast, true),
        Tsc::global(),
    )
    .map_err(|e| e.to_string())?;
    let mut st = Stack::new(
        cfg,
        pool("alloc-udp", 8192),
        Box::new(NetdevXmit::new(vec![q])),
    )
    .map_err(|e| e.to_string())?;
    let s = st.udp_socket().map_err(|e| e.to_string())?;
    st.socket(s)
        .connect(SocketAddrV4::new(peer, 9))
        .map_err(|e| e.to_string())?;
    let payload = [0x42u8; PAYLOAD];
    let bufs: [&[u8]; BURST] = [&payload; BURST];
    let mut w = Window::default();
    let mut sent = 0u64;
    let mut idle = 0u64;
    loop {
        let n = if batch {
            st.socket(s).send_batch(&bufs).unwrap_or(0) as u64
        } else {
            let mut n = 0;
            let mut sock = st.socket(s);
            for _ in 0..BURST {
                if sock.send(&payload).is_ok() {
                    n += 1;
                }
            }
            n
        };
        st.flush();
        st.xmit_mut().reclaim();
        sent += n;
        idle = if n == 0 { idle + 1 } else { 0 };
        if idle > 1_000_000 {
            return Err(format!(
                "no datagram accepted in 1 M tries (after {sent}); counters {:?}",
                st.counters().udp
            ));
        }
        if w.step(sent, p) {
            return Ok(w);
        }
    }
}

/// A cable between two stacks of one thread: frames move as mbufs into a
/// fixed burst the other side's RX drains (a full burst refuses: a drop).
/// With `gso`, a TCP super-segment is cut on the way (as the netdev
/// layer's software GSO does for a port without TSO) into segments from
/// the sender's pool; the super-segment — its payload indirect mbufs over
/// the write queue's buffers — is freed right after.
#[derive(Clone)]
struct Cable(std::rc::Rc<std::cell::RefCell<Burst>>, bool);

impl L2Xmit for Cable {
    fn queue_xmit(&mut self, _port: u16, m: wirespeed::mbuf::Mbuf) -> Result<(), XmitDrop> {
        use wirespeed::ethdev::offload as gso;
        if self.1 && gso::is_gso(&m) {
            let mut parts = [&[][..]; gso::GSO_MAX_CHAIN];
            let frame = gso::frame_slices(&m, &mut parts).ok_or(XmitDrop::QueueFull)?;
            let req = gso::GsoRequest {
                mss: m.tso_segsz(),
                tx_csum: false,
                rx_csum_good: false,
            };
            let pool = m.pool_ref();
            let mut out = self.0.borrow_mut();
            return gso::segment_tcp4(frame, req, &mut || pool.alloc(), &mut out)
                .map(|_| ())
                .map_err(|_| XmitDrop::QueueFull);
        }
        self.0.borrow_mut().push(m).map_err(|_| XmitDrop::QueueFull)
    }
}

/// TCP bulk transfer between two stacks on one lcore (A sends 1 MiB
/// writes, B reads them): the send path of seed 002 and the receive path,
/// per segment. Packets = A's OutSegs.
fn run_tcp(p: &Params) -> Result<Window, String> {
    run_tcp_with(p, false)
}

/// [`run_tcp`] with TSO on A's port: super-segments whose payload is
/// indirect mbufs attached to the write queue, cut by software GSO on the
/// cable.
fn run_tcp_tso(p: &Params) -> Result<Window, String> {
    run_tcp_with(p, true)
}

fn run_tcp_with(p: &Params, tso: bool) -> Result<Window, String> {
    let a_ip = Ipv4Addr::new(10, 0, 0, 1);
    let b_ip = Ipv4Addr::new(10, 0, 0, 2);
    let (ma, mb) = (MacAddr::local(1), MacAddr::local(2));
    let ab = Cable(std::rc::Rc::new(std::cell::RefCell::new(Burst::new())), tso);
    let ba = Cable(
        std::rc::Rc::new(std::cell::RefCell::new(Burst::new())),
        false,
    );
    let cfg = |mac, ip, peer_mac, peer, ol: u32| {
        let mut pc = PortConf::new(mac, ip, 24);
        pc.tx_offloads = ol;
        StackConfig {
            ports: vec![pc],
            static_neighbours: vec![(0, peer, peer_mac)],
            ..Default::default()
        }
    };
    let a_ol = if tso { wirespeed::mbuf::ol::TX_TSO } else { 0 };
    let mut a = Stack::new(
        cfg(ma, a_ip, mb, b_ip, a_ol),
        pool("alloc-tcp-a", 8192),
        Box::new(ab.clone()),
    )
    .map_err(|e| e.to_string())?;
    let mut b = Stack::new(
        cfg(mb, b_ip, ma, a_ip, 0),
        pool("alloc-tcp-b", 8192),
        Box::new(ba.clone()),
    )
    .map_err(|e| e.to_string())?;
    let mut now = 1_000_000_000u64;
    a.start(now);
    b.start(now);
    let l = b.tcp_socket().map_err(|e| e.to_string())?;
    b.tcp(l)
        .bind(SocketAddrV4::new(b_ip, 80))
        .map_err(|e| e.to_string())?;
    b.tcp(l).listen(4).map_err(|e| e.to_string())?;
    let c = a.tcp_socket().map_err(|e| e.to_string())?;
    a.tcp(c)
        .connect(SocketAddrV4::new(b_ip, 80))
        .map_err(|e| e.to_string())?;
    let chunk = vec![0x5au8; 1 << 20];
    let mut rbuf = vec![0u8; 1 << 16];
    let mut srv = None;
    let mut w = Window::default();
    let mut spins = 0u64;
    let (mut rx_a, mut rx_b) = (Burst::new(), Burst::new());
    loop {
        now += 2_000;
        // Cable: each side's frames to the other's RX.
        std::mem::swap(&mut *ab.0.borrow_mut(), &mut rx_b);
        b.rx_burst(0, &mut rx_b);
        std::mem::swap(&mut *ba.0.borrow_mut(), &mut rx_a);
        a.rx_burst(0, &mut rx_a);
        a.poll_timers(now);
        b.poll_timers(now);
        if srv.is_none() {
            srv = b.tcp(l).accept().ok().map(|x| x.0);
        }
        if a.tcp(c).state().map_err(|e| e.to_string())? == TcpState::Established {
            let _ = a.tcp(c).send(&chunk);
        }
        if let Some(s) = srv {
            while let Ok(n) = b.tcp(s).recv(&mut rbuf) {
                if n == 0 {
                    break;
                }
            }
        }
        spins += 1;
        if spins > 50_000_000 {
            return Err(format!("stalled: {:?}", a.counters().tcp));
        }
        if w.step(a.counters().tcp.out_segs, p) {
            return Ok(w);
        }
    }
}

/// The generator's socket mode: a stack inside the runtime, its
/// `dev_queue_xmit` staged (`runtime::staged`) and flushed from the poll into
/// the lcore's netdev queues; stack timers every millisecond.
struct StagedUdp {
    p: Params,
    w: Window,
    st: Stack,
    tx: StagedTx,
    sock: SocketId,
    last_timers: u64,
}

impl LcoreApp for StagedUdp {
    type Summary = Window;
    fn poll(&mut self, ctx: &mut LcoreCtx) {
        let now = ctx.now();
        if now - self.last_timers > ctx.tsc().hz() / 1000 {
            self.last_timers = now;
            self.st.poll_timers(ctx.tsc().cycles_to_ns(now));
            self.tx.flush(ctx);
        }
        let payload = [0x42u8; PAYLOAD];
        for _ in 0..BURST {
            if self.st.socket(self.sock).send(&payload).is_err() {
                break;
            }
            if self.tx.nearly_full() {
                self.tx.flush(ctx);
            }
        }
        self.tx.flush(ctx);
        if self.w.step(ctx.tx_sent_packets(), &self.p) {
            ctx.request_stop();
        }
    }
    fn finish(mut self, ctx: &mut LcoreCtx) -> Window {
        self.tx.flush(ctx);
        self.w
    }
}

fn run_staged(p: &Params, queues: u16) -> Result<Window, String> {
    let port = registry().open("null").map_err(|e| e.to_string())?;
    let mut setup = PortSetup::new(
        port,
        PortConfig {
            nb_tx_queues: queues,
            ..PortConfig::default()
        },
    );
    setup.txq = txq_config(QdiscKind::PfifoFast, true);
    // Every queue on the one lcore, so StagedTx spreads over them.
    setup.xps = Some(vec![(0..queues).collect()]);
    let rt =
        Runtime::new(runtime_config(p, "alloc-staged"), vec![setup]).map_err(|e| e.to_string())?;
    let params = p.clone();
    let report = rt
        .run(move |ctx| {
            let (cfg, peer) = stack_config();
            let (xmit, tx) = staged(vec![0]);
            let pool = Mempool::new(&PoolConfig {
                name: format!("alloc-stack-l{}", ctx.lcore().index),
                size: 8192,
                ..Default::default()
            })
            .map_err(|e| e.to_string())?;
            let mut st = Stack::new(cfg, pool, Box::new(xmit)).map_err(|e| e.to_string())?;
            let now = ctx.now();
            st.start(ctx.tsc().cycles_to_ns(now));
            let sock = st.udp_socket().map_err(|e| e.to_string())?;
            st.socket(sock)
                .connect(SocketAddrV4::new(peer, 9))
                .map_err(|e| e.to_string())?;
            Ok(StagedUdp {
                p: params.clone(),
                w: Window::default(),
                st,
                tx,
                sock,
                last_timers: now,
            })
        })
        .map_err(|e| e.to_string())?;
    Ok(report.lcores[0].app)
}

// ---------------------------------------------------------------- main

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    match args.iter().position(|a| a == name) {
        Some(i) => match args.get(i + 1).map(|v| v.parse()) {
            Some(Ok(v)) => v,
            _ => {
                eprintln!("alloc_count: {name} needs a value");
                std::process::exit(2);
            }
        },
        None => default,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: alloc_count [--packets N] [--warmup N] [--only SUBSTRING] [--lcore C] [--model-core C]");
        println!("  ALLOC_BACKTRACE=N prints the first N steady-state allocations' backtraces per workload");
        return;
    }
    let p = Params {
        packets: arg(&args, "--packets", 10_000_000u64).max(1),
        warmup: arg(&args, "--warmup", 1_000_000u64).max(1),
        lcore: arg(&args, "--lcore", 0usize),
        model_core: arg(&args, "--model-core", 1usize),
    };
    let only: Option<String> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    // The counter must see an allocation, or every 0 below means nothing.
    let before = Snap::now();
    drop(std::hint::black_box(vec![0u8; 64]));
    if Snap::now().allocs == before.allocs {
        eprintln!("alloc_count: the counting allocator saw no allocation; not installed?");
        std::process::exit(1);
    }
    if std::env::var_os("WIRESPEED_HUGEPAGES").is_none() {
        set_page_mode(PageMode::Small);
    }
    if !core_affinity::set_for_current(core_affinity::CoreId { id: p.lcore }) {
        eprintln!("alloc_count: could not pin to core {}", p.lcore);
    }
    let mc = p.model_core;
    let ice = format!("ice-model?pacing=off&sink=count&core={mc}");
    let igb = format!("igb-model?speed=unlimited&sink=count&core={mc}");
    let ice_lo = format!("ice-model?pacing=off&sink=loopback&core={mc}");
    let pf = || txq_config(QdiscKind::PfifoFast, true);
    type Run<'a> = Box<dyn Fn(&Params) -> Result<Window, String> + 'a>;
    let workloads: Vec<(&str, Run)> = vec![
        (
            "raw noqueue (null)",
            Box::new(|p| run_raw_runtime(p, "null", txq_config(QdiscKind::Noqueue, false))),
        ),
        (
            "raw pfifo_fast+BQL (null)",
            Box::new(|p| run_raw_runtime(p, "null", pf())),
        ),
        (
            "udp send pfifo_fast+BQL (null)",
            Box::new(|p| run_udp(p, false)),
        ),
        (
            "udp send_batch pfifo_fast+BQL (null)",
            Box::new(|p| run_udp(p, true)),
        ),
        ("ice-model raw tx_burst", Box::new(|p| run_raw_pmd(p, &ice))),
        (
            "ice-model pfifo_fast+BQL",
            Box::new(|p| run_raw_runtime(p, &ice, pf())),
        ),
        (
            "ice-model RSS loopback rx (2 queues)",
            Box::new(|p| run_ice_rss(p, &ice_lo)),
        ),
        ("igb-model raw tx_burst", Box::new(|p| run_raw_pmd(p, &igb))),
        (
            "igb-model pfifo_fast+BQL",
            Box::new(|p| run_raw_runtime(p, &igb, pf())),
        ),
        (
            "fault drop+reorder+corrupt+delay (null)",
            Box::new(|p| {
                run_raw_runtime(
                    p,
                    "fault:drop=0.01,reorder=0.01,corrupt=0.01,delay_us=5,seed=1+null",
                    pf(),
                )
            }),
        ),
        (
            "fault refuse+busy, rx dup+fcs (lo)",
            Box::new(|p| {
                run_raw_runtime(
                    p,
                    "fault:refuse=0.01,busy=0.01,dup=0.05,fcs=0.01,seed=1+lo",
                    pf(),
                )
            }),
        ),
        (
            "tap (/dev/null) + trace (null)",
            Box::new(|p| run_raw_runtime(p, "tap:/dev/null+trace+null", pf())),
        ),
        ("staged udp 1q (null)", Box::new(|p| run_staged(p, 1))),
        ("tcp bulk, two stacks (cable)", Box::new(run_tcp)),
        (
            "tcp bulk TSO, two stacks (cable + GSO)",
            Box::new(run_tcp_tso),
        ),
        ("staged udp 2q (null)", Box::new(|p| run_staged(p, 2))),
    ];
    println!(
        "alloc_count: {} packets per workload after {} of warm-up; lcore {}, model core {}; 60-byte frames, bursts of {BURST}",
        p.packets, p.warmup, p.lcore, p.model_core
    );
    println!(
        "{:<38} {:>10} {:>11} {:>11} {:>12} {:>7}",
        "workload", "packets", "allocations", "bytes", "allocs/Mpkt", "secs"
    );
    let mut failed: Vec<String> = Vec::new();
    for (name, run) in &workloads {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let t0 = Instant::now();
        match run(&p) {
            Ok(Window {
                result: Some((pkts, allocs, reallocs, bytes)),
                ..
            }) => {
                let n = allocs + reallocs;
                println!(
                    "{name:<38} {pkts:>10} {n:>11} {bytes:>11} {:>12.3} {:>7.1}",
                    n as f64 * 1e6 / pkts.max(1) as f64,
                    t0.elapsed().as_secs_f64()
                );
                if n > 0 {
                    failed.push(format!("{name} ({allocs} allocs + {reallocs} reallocs)"));
                }
            }
            Ok(_) => {
                println!("{name:<38} did not reach its packet count");
                failed.push(format!("{name} (window never closed)"));
            }
            Err(e) => {
                println!("{name:<38} failed: {e}");
                failed.push(format!("{name} (error: {e})"));
            }
        }
    }
    if failed.is_empty() {
        println!("PASS: 0 heap allocations in steady state on every workload");
    } else {
        for f in &failed {
            eprintln!("FAIL: {f}");
        }
        eprintln!("(ALLOC_BACKTRACE=5 prints where the steady-state allocations come from)");
        std::process::exit(1);
    }
}
