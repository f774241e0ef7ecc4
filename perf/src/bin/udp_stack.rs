//! Connected `UdpSocket::send` of 64-byte frames (18-byte payload, 60 bytes +
//! FCS on the wire) through the whole stack — udp_sendmsg, ip_make_skb,
//! udp_send_skb, ip_send_skb/ip_output, neigh_hh_output — into the `null`
//! port, on one pinned lcore, against the raw path (a prebuilt frame copied
//! into mbufs and handed to `tx_burst`).
//!
//! The stack's output goes through the netdev layer (`NetdevXmit`: batches of
//! 32 into `NetdevQueue::xmit_burst` with pfifo_fast + BQL); a second row
//! uses `DirectXmit` (no qdisc) for comparison.
//!
//! The kernel comparison runs the same workload through Linux's UDP path: a
//! connected socket sending 18-byte datagrams with `sendmmsg` batches of 32
//! into an `ifb` device (a sink) inside a network namespace the benchmark
//! creates (`unshare -n`, needs root); skipped with a note otherwise.
//!
//! Usage: `cargo run --release -p wirespeed-perf --bin udp_stack [-- SECONDS [CORE]]`

use std::net::{Ipv4Addr, SocketAddrV4};
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::eal::Tsc;
use wirespeed::ethdev::{null::NullPort, MacAddr, Port, PortConfig};
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};
use wirespeed::netdev::{NetdevQueue, TxqConfig};
use wirespeed::stack::{DirectXmit, NetdevXmit, PortConf, SocketId, Stack, StackConfig};
use wirespeed_perf::{pin, row, run_for, Measurement};

/// Best (fewest cycles per packet) of `n` windows: the figure a core gets
/// when the machine's other tenants leave it alone.
fn best_of(n: usize, secs: f64, mut step: impl FnMut() -> u64) -> Measurement {
    let mut best: Option<Measurement> = None;
    for _ in 0..n {
        let m = run_for(secs / n as f64, &mut step);
        if best.is_none_or(|b| m.cycles_per_packet() < b.cycles_per_packet()) {
            best = Some(m);
        }
    }
    best.expect("n > 0")
}

const PAYLOAD: usize = 18;
const BATCH: usize = 32;

fn pool(name: &str) -> Mempool {
    Mempool::new(&PoolConfig {
        name: name.into(),
        size: 8192,
        headroom: 128,
        data_room: 2048,
    })
    .expect("mempool")
}

/// Runs in the child made by `unshare -n`: sets up `ifb0` and measures the
/// kernel's connected-UDP `sendmmsg` path on `core`; prints one figure.
fn kernel_child(secs: f64, core: usize) -> Result<(), String> {
    pin(core);
    let sh = |args: &[&str]| -> Result<(), String> {
        let o = std::process::Command::new("ip")
            .args(args)
            .output()
            .map_err(|e| format!("ip {args:?}: {e}"))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ip {args:?}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
    };
    sh(&["link", "add", "ifb0", "type", "ifb"])?;
    sh(&["link", "set", "ifb0", "up"])?;
    sh(&["addr", "add", "10.99.0.1/24", "dev", "ifb0"])?;
    sh(&[
        "neigh",
        "add",
        "10.99.0.2",
        "lladdr",
        "02:00:00:00:00:02",
        "dev",
        "ifb0",
    ])?;
    let sock = std::net::UdpSocket::bind("10.99.0.1:0").map_err(|e| e.to_string())?;
    sock.connect("10.99.0.2:9").map_err(|e| e.to_string())?;
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    let payload = [0x42u8; PAYLOAD];
    let mut iov: Vec<libc::iovec> = (0..BATCH)
        .map(|_| libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: PAYLOAD,
        })
        .collect();
    // SAFETY: mmsghdr is plain data; zeroed is a valid empty header.
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_iov = v as *mut libc::iovec;
        m.msg_hdr.msg_iovlen = 1;
    }
    let mut errors = 0u64;
    let m = best_of(10, secs, || {
        // SAFETY: msgs/iov/payload outlive the call; the fd is a connected UDP socket.
        let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), BATCH as u32, 0) };
        if n < 0 {
            errors += 1;
            0
        } else {
            n as u64
        }
    });
    row("kernel: connected UDP sendmmsg x32 (ifb)", &m);
    println!("KERNEL_CPP {:.3}", m.cycles_per_packet());
    if errors > 0 {
        println!("kernel send errors: {errors}");
    }
    Ok(())
}

fn kernel_figure(secs: f64, core: usize) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new("unshare")
        .arg("-n")
        .arg(exe)
        .args(["--kernel", &secs.to_string(), &core.to_string()])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let mut cpp = None;
            for l in text.lines() {
                if let Some(v) = l.strip_prefix("KERNEL_CPP ") {
                    cpp = v.parse().ok();
                } else {
                    println!("{l}");
                }
            }
            cpp
        }
        Ok(o) => {
            println!(
                "note: kernel comparison skipped (needs root, unshare, ip and the ifb module): {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            None
        }
        Err(e) => {
            println!("note: kernel comparison skipped: cannot run unshare: {e}");
            None
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--kernel") {
        let secs: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2.0);
        let core: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
        if let Err(e) = kernel_child(secs, core) {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return;
    }
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let core: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    if !pin(core) {
        eprintln!("note: could not pin to core {core}; running unpinned");
    }
    if std::env::var_os("WIRESPEED_HUGEPAGES").is_none() {
        set_page_mode(PageMode::Small);
    }

    // --- the raw path: prebuilt frame, alloc_bulk, copy, tx_burst.
    let mut port = NullPort::new("null");
    port.configure(&PortConfig::default())
        .expect("configure null");
    let mut txq = port.tx_queue(0).expect("txq");
    let mut p = pool("raw");
    let frame = [0x5au8; 60];
    let mut b = Burst::new();
    let raw = best_of(10, secs, || {
        if !p.alloc_bulk(&mut b, BATCH) {
            return 0;
        }
        for m in b.as_mut_slice() {
            let _ = m.extend_from_slice(&frame);
        }
        let n = txq.tx_burst(&mut b) as u64;
        b.clear();
        txq.clean(usize::MAX);
        n
    });

    // --- the stack: connected UdpSocket::send, through pfifo_fast + BQL.
    let local = Ipv4Addr::new(10, 0, 0, 1);
    let peer = Ipv4Addr::new(10, 0, 0, 2);
    let cfg = StackConfig {
        ports: vec![PortConf::new(MacAddr::local(1), local, 24)],
        static_neighbours: vec![(0, peer, MacAddr::local(2))],
        ..Default::default()
    };
    let payload = [0x42u8; PAYLOAD];
    let bufs: [&[u8]; BATCH] = [&payload; BATCH];
    let mut errors = 0u64;
    let mut measure = |st: &mut Stack, s: SocketId, batch: bool| {
        best_of(10, secs, || {
            let n = if batch {
                st.socket(s).send_batch(&bufs).unwrap_or(0) as u64
            } else {
                let mut n = 0;
                let mut sock = st.socket(s);
                for _ in 0..BATCH {
                    match sock.send(&payload) {
                        Ok(_) => n += 1,
                        Err(_) => errors += 1,
                    }
                }
                n
            };
            st.flush();
            st.xmit_mut().reclaim();
            n
        })
    };
    let mut port = NullPort::new("null");
    port.configure(&PortConfig::default())
        .expect("configure null");
    let q = NetdevQueue::new(
        0,
        "null",
        port.tx_queue(0).expect("txq"),
        &TxqConfig::default(),
        Tsc::global(),
    )
    .expect("netdev queue");
    let mut st = Stack::new(
        cfg.clone(),
        pool("stack"),
        Box::new(NetdevXmit::new(vec![q])),
    )
    .expect("stack");
    let s = st.udp_socket().expect("socket");
    st.socket(s)
        .connect(SocketAddrV4::new(peer, 9))
        .expect("connect");
    let stack_m = measure(&mut st, s, false);
    let batch_m = measure(&mut st, s, true);
    let mut port2 = NullPort::new("null");
    port2
        .configure(&PortConfig::default())
        .expect("configure null");
    let txq = port2.tx_queue(0).expect("txq");
    let mut st2 =
        Stack::new(cfg, pool("stack2"), Box::new(DirectXmit::new(vec![txq]))).expect("stack");
    let s2 = st2.udp_socket().expect("socket");
    st2.socket(s2)
        .connect(SocketAddrV4::new(peer, 9))
        .expect("connect");
    let direct_m = measure(&mut st2, s2, false);
    let c = st.counters();
    println!("# 60-byte frames (64 on the wire with FCS), batches of {BATCH}, core {core}, best of 10 windows");
    row("raw: alloc_bulk + copy + tx_burst (null)", &raw);
    row("stack: UdpSocket::send, pfifo_fast+BQL (null)", &stack_m);
    row("stack: send_batch x32, pfifo_fast+BQL (null)", &batch_m);
    row("stack: UdpSocket::send, no qdisc (null)", &direct_m);
    let skip_kernel = std::env::var_os("UDP_STACK_NO_KERNEL").is_some();
    if let Some(kcpp) = (!skip_kernel).then(|| kernel_figure(secs, core)).flatten() {
        println!(
            "stack vs kernel: send {:.1}x, send_batch (like sendmmsg) {:.1}x (cycles per packet {:.1} / {:.1} vs {:.1})",
            kcpp / stack_m.cycles_per_packet(),
            kcpp / batch_m.cycles_per_packet(),
            stack_m.cycles_per_packet(),
            batch_m.cycles_per_packet(),
            kcpp
        );
    }
    println!(
        "stack/raw = {:.2}   OutDatagrams = {}  send errors = {}  SndbufErrors = {}",
        stack_m.mpps() / raw.mpps(),
        c.udp.out_datagrams,
        errors,
        c.udp.sndbuf_errors
    );
}
