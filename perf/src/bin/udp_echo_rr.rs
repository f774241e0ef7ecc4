//! UDP request/response through the stack (issue 15's "UDP echo on the
//! stack"): an echo server written on `Runtime::run_stacked` — the
//! `udp_echo` example's loop — on one pinned lcore behind a `ring:` port,
//! and a client stack on the ring's other end, on the other core, keeping
//! `WINDOW` requests outstanding. Each request carries its TSC send time;
//! the round trip of every response goes into an HdrHistogram.
//!
//! The server runs twice, one after the other: the copying loop
//! (`recv_from` + `send_to`) and the example's zero-copy loop
//! (`recv_mbuf` + `send_mbuf_to`: the request's own buffer goes back).
//!
//! The peer, in the same run: the same closed loop through Linux's own UDP
//! stack — a `std::net::UdpSocket` echo server and client on 127.0.0.1
//! (`udp_sendmsg` … `loopback_xmit` … `udp_rcv` both ways), pinned to the
//! same two cores.
//!
//! Usage: `cargo run --release -p wirespeed-perf --bin udp_echo_rr [-- SECONDS [WINDOW]]`

use hdrhistogram::Histogram;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket as KernelUdp};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::eal::lcore::CoreList;
use wirespeed::eal::Tsc;
use wirespeed::ethdev::{MacAddr, Port, PortConfig, Registry};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};
use wirespeed::runtime::stacked::{StackApp, StackCtx, StackSpec};
use wirespeed::runtime::{PortSetup, Runtime, RuntimeConfig};
use wirespeed::stack::{DirectXmit, PortConf, SocketId, Stack, StackConfig};
use wirespeed_perf::pin;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const PAYLOAD: usize = 32;

struct Echo {
    sock: SocketId,
    done: Arc<AtomicBool>,
    echoed: u64,
    /// The copying loop the example had before `send_mbuf`
    /// (`recv_from` + `send_to`), measured in the same run.
    copy: bool,
}

impl StackApp for Echo {
    type Summary = u64;
    fn poll(&mut self, ctx: &mut StackCtx<'_>) {
        if self.copy {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = ctx.stack.socket(self.sock).recv_from(&mut buf) {
                if ctx.stack.socket(self.sock).send_to(&buf[..n], from).is_ok() {
                    self.echoed += 1;
                }
            }
        } else {
            // The datagram goes back in the buffer it arrived in: no copy.
            while let Ok((m, from)) = ctx.stack.socket(self.sock).recv_mbuf() {
                if ctx.stack.socket(self.sock).send_mbuf_to(m, from).is_ok() {
                    self.echoed += 1;
                }
            }
        }
        if self.done.load(Ordering::Relaxed) {
            ctx.request_stop();
        }
    }
    fn finish(self, _ctx: &mut StackCtx<'_>) -> u64 {
        self.echoed
    }
}

struct Result_ {
    rps: f64,
    hist: Histogram<u64>,
}

fn report(name: &str, r: &Result_) {
    let q = |p: f64| r.hist.value_at_quantile(p) as f64 / 1000.0;
    println!(
        "{:<34} {:>10.0} req/s   RTT p50 {:>7.1} µs  p99 {:>7.1} µs  p99.9 {:>7.1} µs  ({} samples)",
        name,
        r.rps,
        q(0.5),
        q(0.99),
        q(0.999),
        r.hist.len()
    );
}

/// The client on the ring's far end: a stack of its own, `window`
/// requests in flight, for `secs` after the first response.
fn client(mut port: Box<dyn Port>, secs: f64, window: usize, done: Arc<AtomicBool>) -> Result_ {
    pin(0);
    port.configure(&PortConfig::default()).expect("ring end");
    let txq = port.tx_queue(0).expect("txq");
    let mut rxq = port.rx_queue(0).expect("rxq");
    port.start().expect("start");
    let pool = Mempool::new(&PoolConfig {
        name: "rr-client".into(),
        size: 4096,
        ..Default::default()
    })
    .expect("pool");
    let cfg = StackConfig {
        ports: vec![PortConf::new(MacAddr([2, 0, 0, 0, 0x99, 2]), CLIENT, 24)],
        ..Default::default()
    };
    let mut st = Stack::new(cfg, pool, Box::new(DirectXmit::new(vec![txq]))).expect("stack");
    let tsc = Tsc::global();
    st.start(tsc.now_ns());
    let s = st.udp_socket().expect("socket");
    st.socket(s)
        .connect(SocketAddrV4::new(SERVER, 7))
        .expect("connect");
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("histogram");
    let send = |st: &mut Stack| {
        let mut b = [0u8; PAYLOAD];
        b[..8].copy_from_slice(&tsc.now().to_le_bytes());
        let _ = st.socket(s).send(&b);
    };
    for _ in 0..window {
        send(&mut st);
    }
    st.flush();
    let mut buf = [0u8; 2048];
    let mut b = Burst::new();
    let (mut start, mut n) = (None::<Instant>, 0u64);
    let mut last_timers = Instant::now();
    loop {
        rxq.rx_burst(st.pool_mut(), &mut b, 32);
        st.rx_burst(0, &mut b);
        while let Ok((k, _)) = st.socket(s).recv_from(&mut buf) {
            if k >= 8 {
                let t = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
                let ns = tsc.cycles_to_ns(tsc.now().saturating_sub(t)).max(1);
                if start.is_some() {
                    let _ = hist.record(ns);
                    n += 1;
                }
            }
            start.get_or_insert_with(Instant::now);
            send(&mut st);
        }
        st.flush();
        if last_timers.elapsed() > Duration::from_millis(1) {
            st.poll_timers(tsc.now_ns());
            last_timers = Instant::now();
        }
        if start.is_some_and(|t| t.elapsed().as_secs_f64() >= secs) {
            break;
        }
        if start.is_none() && last_timers.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    done.store(true, Ordering::Relaxed);
    let el = start.map_or(1.0, |t| t.elapsed().as_secs_f64());
    Result_ {
        rps: n as f64 / el,
        hist,
    }
}

fn wirespeed_rr(secs: f64, window: usize, copy: bool) -> Result_ {
    let reg = Registry::with_builtins();
    let a = reg.open("ring:echo-rr").expect("ring");
    let b = reg.open("ring:echo-rr").expect("ring");
    let mut cfg = RuntimeConfig::new(CoreList::from_cores(vec![1]));
    cfg.handle_signals = false;
    cfg.stop.duration = Some(Duration::from_secs_f64(secs + 10.0));
    let rt = Runtime::new(cfg, vec![PortSetup::new(a, PortConfig::default())]).expect("runtime");
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let cl = std::thread::spawn(move || client(b, secs, window, d2));
    let spec = StackSpec::new(StackConfig {
        ports: vec![PortConf::new(MacAddr::ZERO, SERVER, 24)],
        ..Default::default()
    });
    let report = rt
        .run_stacked(spec, move |ctx| {
            let sock = ctx.stack.udp_socket().map_err(|e| e.to_string())?;
            ctx.stack
                .socket(sock)
                .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7))
                .map_err(|e| e.to_string())?;
            Ok(Echo {
                sock,
                done: done.clone(),
                echoed: 0,
                copy,
            })
        })
        .expect("run");
    let r = cl.join().expect("client");
    assert!(report.lcores[0].app.app > 0, "the server echoed nothing");
    r
}

fn kernel_rr(secs: f64, window: usize) -> Result_ {
    let srv = KernelUdp::bind("127.0.0.1:0").expect("bind");
    let addr = srv.local_addr().expect("addr");
    srv.set_read_timeout(Some(Duration::from_millis(200))).ok();
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let server = std::thread::spawn(move || {
        pin(1);
        let mut buf = [0u8; 2048];
        while !d2.load(Ordering::Relaxed) {
            if let Ok((n, from)) = srv.recv_from(&mut buf) {
                let _ = srv.send_to(&buf[..n], from);
            }
        }
    });
    pin(0);
    let cl = KernelUdp::bind("127.0.0.1:0").expect("bind");
    cl.connect(addr).expect("connect");
    cl.set_read_timeout(Some(Duration::from_secs(1))).ok();
    let t0 = Instant::now();
    let stamp = |b: &mut [u8; PAYLOAD]| {
        let ns = t0.elapsed().as_nanos() as u64;
        b[..8].copy_from_slice(&ns.to_le_bytes());
    };
    let mut b = [0u8; PAYLOAD];
    for _ in 0..window {
        stamp(&mut b);
        cl.send(&b).expect("send");
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("histogram");
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        let Ok(k) = cl.recv(&mut buf) else { break };
        if k >= 8 {
            let t = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
            let _ = hist.record((t0.elapsed().as_nanos() as u64).saturating_sub(t).max(1));
            n += 1;
        }
        stamp(&mut b);
        let _ = cl.send(&b);
    }
    done.store(true, Ordering::Relaxed);
    let _ = server.join();
    Result_ {
        rps: n as f64 / start.elapsed().as_secs_f64(),
        hist,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let window: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    set_page_mode(PageMode::Small);
    println!("UDP echo, {PAYLOAD}-byte requests, {window} outstanding, {secs} s each (server core 1, client core 0)");
    // In a thread of its own: pinning the main thread would narrow the
    // process's affinity the runtime reads its cores from.
    let k = std::thread::spawn(move || kernel_rr(secs, window))
        .join()
        .expect("kernel run");
    let c = wirespeed_rr(secs, window, true);
    let w = wirespeed_rr(secs, window, false);
    report("Linux UDP over 127.0.0.1", &k);
    report("wirespeed, recv_from + send_to", &c);
    report("wirespeed, recv_mbuf + send_mbuf", &w);
    println!(
        "ratio (req/s): {:.2}x vs Linux (copying server {:.2}x; zero-copy / copying {:.2}x)",
        w.rps / k.rps,
        c.rps / k.rps,
        w.rps / c.rps
    );
}
