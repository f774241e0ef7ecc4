//! wirespeed's TCP sender against Linux's own, in the same run, on the same
//! path: a veth pair into a network namespace whose kernel receives (a
//! python3 sink reading 1 MiB at a time). Linux sends from the host side
//! of a second, identical veth pair into the same namespace (a python3
//! `sendall` loop: the kernel's `tcp_sendmsg` does the work), pinned to the
//! core wirespeed then uses; wirespeed sends through the `af_packet` port
//! on its pair, one pinned thread polling RX, timers and TX. Reported: goodput
//! (bytes the receiver read / time) and CPU cycles per byte on the sending
//! thread (its CPU time, user + system, × the TSC rate — for both, the
//! system time includes the kernel work done on the sender's behalf:
//! veth's transmit and the receiver's softirq that runs on its CPU). Then
//! connections per second: wirespeed connects to a kernel listener, 64
//! handshakes in flight, each connection reset once established.
//!
//! wirespeed's port asks for TSO and TCP checksum offload (`--tso 1`, the
//! default): super-segments of up to 64 KiB go to the kernel through
//! `PACKET_VNET_HDR`, as Linux's own GSO skbs go to its veth; `--tso 0`
//! sends MSS frames with software checksums.
//!
//! A poll-mode sender spins: its CPU time includes the turns of its loop
//! that found nothing to do (send buffer full, no ACK yet), which Linux's
//! sender spends asleep. Besides the CPU time, the busy share is printed:
//! the CPU time × the part of the loop's TSC time spent in turns that
//! queued bytes, received a frame or sent a segment (preemption by other
//! processes falls on busy and idle turns alike, in proportion).
//!
//! Our socket's send buffer is 4 MiB (`--sndbuf BYTES`), what Linux's
//! autotuning gives its sender (`tcp_wmem[2]`). `--sink-core N` pins both
//! receivers.
//!
//! The port reads a per-frame `TPACKET_V2` RX ring (`--rx-ring v2`, the
//! default): ACKs and SYN-ACKs reach the stack as they arrive. `--rx-ring
//! v3` reads `TPACKET_V3` blocks, which a timer retires after 1 ms when
//! they do not fill first: every ACK waits for it.
//!
//! `--own-mac 1` gives the stack a MAC of its own on the promiscuous port:
//! the host kernel, which also receives every frame of the veth, then
//! drops the peer's ACKs at `ip_rcv` (PACKET_OTHERHOST) instead of routing
//! each to nowhere on the sending core.
//!
//! `--zc 1` sends without the copy on both sides: Linux's sender
//! `sendfile`s a 1 MiB tmpfs file (its pages spliced into the skbs), ours
//! `send_splice`s 64 MSS-sized buffers filled once (`MSG_SPLICE_PAGES`:
//! the write queue references them). The kernel still copies our
//! super-segments once, in `packet_snd`.
//!
//! `--rps CORE` turns on RPS on both receiving veths (the receiver's
//! input and its wakeup run on CORE, not on the sender's core, for either
//! sender). `--idle wait` puts our sender in interrupt mode: after a few
//! idle turns it sleeps in `poll(2)` on the RX queue's fd until an ACK
//! arrives, as Linux's sender sleeps in `sk_stream_wait_memory`
//! (`--idle spin`, the default, polls without stopping).
//!
//! Needs root. Usage: tcp_vs_linux [--secs N] [--tso 1|0] [--sndbuf BYTES] [--sink-core N] [--rx-ring v2|v3] [--own-mac 1|0] [--zc 1|0] [--rps CORE] [--idle spin|wait]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};
use wirespeed::eal::dma::{set_page_mode, PageMode};
use wirespeed::eal::tsc::Tsc;
use wirespeed::ethdev::{PortConfig, Registry, RxQueue};
use wirespeed::mbuf::ol;
use wirespeed::mbuf::{Burst, Mempool, PoolConfig};
use wirespeed::stack::{
    DirectXmit, Errno, MsgFlags, PortConf, SpliceVec, Stack, StackConfig, TcpId, TcpState,
};

const NS: &str = "wstcpb";
const HOST_IF: &str = "wstcpbh";
const PEER_IF: &str = "wstcpbn";
/// Linux's own pair into the same namespace (an address on the af_packet
/// interface would make the host kernel answer our peer's frames too).
const LHOST_IF: &str = "wstcplh";
const LPEER_IF: &str = "wstcpln";
const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 2);

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ns(args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", NS]).args(args);
    c
}

struct Net;
impl Net {
    fn up() -> Net {
        let _ = sh(&["ip", "link", "del", HOST_IF]);
        let _ = sh(&["ip", "link", "del", LHOST_IF]);
        let _ = sh(&["ip", "netns", "del", NS]);
        for cmd in [
            vec!["ip", "netns", "add", NS],
            vec![
                "ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", PEER_IF,
            ],
            vec!["ip", "link", "set", PEER_IF, "netns", NS],
            vec!["ip", "link", "set", HOST_IF, "up"],
            vec![
                "ip", "link", "add", LHOST_IF, "type", "veth", "peer", "name", LPEER_IF,
            ],
            vec!["ip", "link", "set", LPEER_IF, "netns", NS],
            vec!["ip", "addr", "add", "10.80.0.3/24", "dev", LHOST_IF],
            vec!["ip", "link", "set", LHOST_IF, "up"],
            vec![
                "ip",
                "netns",
                "exec",
                NS,
                "ip",
                "addr",
                "add",
                "10.80.0.2/24",
                "dev",
                LPEER_IF,
            ],
            vec![
                "ip", "netns", "exec", NS, "ip", "link", "set", LPEER_IF, "up",
            ],
            vec![
                "ip",
                "netns",
                "exec",
                NS,
                "ip",
                "addr",
                "add",
                "10.79.0.2/24",
                "dev",
                PEER_IF,
            ],
            vec![
                "ip", "netns", "exec", NS, "ip", "link", "set", PEER_IF, "up",
            ],
            vec!["ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up"],
            // The af_packet RX ring hands over veth frames whose checksum
            // the sender left to "hardware" (TP_STATUS_CSUMNOTREADY), which
            // the port does not report as verified: the namespace's kernel
            // finishes its checksums itself (both pairs, for a fair match).
            vec![
                "ip", "netns", "exec", NS, "ethtool", "-K", PEER_IF, "tx", "off",
            ],
            vec![
                "ip", "netns", "exec", NS, "ethtool", "-K", LPEER_IF, "tx", "off",
            ],
        ] {
            assert!(
                sh(&cmd),
                "setting up the namespace failed at: {}",
                cmd.join(" ")
            );
        }
        Net
    }
}
impl Drop for Net {
    fn drop(&mut self) {
        let _ = sh(&["ip", "link", "del", HOST_IF]);
        let _ = sh(&["ip", "link", "del", LHOST_IF]);
        let _ = sh(&["ip", "netns", "del", NS]);
    }
}

/// Sink: accepts one connection on `port`, reads until EOF, prints bytes and seconds
/// from first byte to EOF.
const SINK: &str = "import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(('0.0.0.0',int(sys.argv[1]))); s.listen(8); print('ready',flush=True)
c,a=s.accept(); buf=bytearray(1<<20); n=0; t0=None
while True:
    k=c.recv_into(buf)
    if not k: break
    if t0 is None: t0=time.time()
    n+=k
print(n, time.time()-t0, flush=True)
";

/// Linux's sender: `sendall` of 1 MiB chunks for `secs` (argv[3] `zc`:
/// `sendfile` of a 1 MiB file in tmpfs instead, the page cache's pages
/// spliced into the skbs: no copy), then its CPU time.
const LINUX_SENDER: &str = "import socket,sys,time,resource,os
secs=float(sys.argv[1]); c=socket.create_connection(('10.80.0.2',int(sys.argv[2])))
zc=sys.argv[3]=='zc'; buf=b'x'*(1<<20)
if zc:
    p='/dev/shm/wstcpb.%d'%os.getpid(); f=open(p,'wb'); f.write(buf); f.close(); fd=os.open(p,os.O_RDONLY); os.unlink(p); off=0
r0=resource.getrusage(resource.RUSAGE_SELF); end=time.time()+secs; n=0
while time.time()<end:
    if zc:
        k=os.sendfile(c.fileno(),fd,off,len(buf)-off); off=(off+k)%len(buf); n+=k
    else:
        c.sendall(buf); n+=len(buf)
c.shutdown(socket.SHUT_WR); c.recv(1)
r1=resource.getrusage(resource.RUSAGE_SELF)
print(n, (r1.ru_utime-r0.ru_utime)+(r1.ru_stime-r0.ru_stime), flush=True)
";

/// The kernel listener for the connection rate: a thread that enters the
/// namespace (`setns`) and accepts and closes as fast as it can, on the
/// other core (a python3 loop capped both clients at its accept rate).
/// Returns once it listens.
fn spawn_acceptor(core: Option<core_affinity::CoreId>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(c) = core {
            core_affinity::set_for_current(c);
        }
        let f = std::fs::File::open(format!("/var/run/netns/{NS}")).expect("the namespace");
        // SAFETY: setns on this thread only, with a namespace fd we hold.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let l = std::net::TcpListener::bind(("0.0.0.0", 5003)).expect("bind 5003");
        // The accept queue as deep as the python listener's (std asks for
        // 128 on some versions): a full queue drops SYNs, and a dropped SYN
        // costs its client a 1 s retransmission.
        // SAFETY: listen(2) again on our own listening socket resizes its backlog.
        unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&l), 4096) };
        tx.send(()).unwrap();
        for c in l.incoming() {
            drop(c);
        }
    });
    rx.recv().expect("the acceptor started");
}

/// The python3 sink on `port` in the namespace, pinned to `core` if given.
fn sink_cmd(core: &Option<String>, port: &str) -> Command {
    match core {
        Some(c) => ns(&["taskset", "-c", c, "python3", "-c", SINK, port]),
        None => ns(&["python3", "-c", SINK, port]),
    }
}

fn spawn_ready(mut c: Command) -> (Child, BufReader<ChildStdout>) {
    let mut ch = c.stdout(Stdio::piped()).spawn().expect("python3");
    let mut r = BufReader::new(ch.stdout.take().unwrap());
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    assert_eq!(l.trim(), "ready");
    (ch, r)
}

fn line_nums(r: &mut BufReader<ChildStdout>) -> Vec<f64> {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    l.split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect()
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

struct Ws {
    st: Stack,
    rxq: Box<dyn RxQueue>,
    burst: Burst,
    tsc: Tsc,
    c0: u64,
    _port: Box<dyn wirespeed::ethdev::Port>,
}

impl Ws {
    fn new(tso: bool, rx_ring: &str, own_mac: bool, tsc: Tsc) -> Ws {
        set_page_mode(PageMode::Small);
        let reg = Registry::with_builtins();
        let mut port = reg
            .open(&format!("af_packet:{HOST_IF}?rx_ring={rx_ring}"))
            .unwrap();
        let want = if tso {
            ol::TX_TSO | ol::TX_TCP_CKSUM
        } else {
            0
        };
        let offloads = want & port.info().tx_offload_capa;
        if offloads != want {
            eprintln!("af_packet offers no TSO here (PACKET_VNET_HDR refused): MSS frames");
        }
        port.configure(&PortConfig {
            tx_offloads: offloads,
            ..Default::default()
        })
        .unwrap();
        let txq = port.tx_queue(0).unwrap();
        let rxq = port.rx_queue(0).unwrap();
        port.start().unwrap();
        let pool = Mempool::new(&PoolConfig {
            name: "tcpbench".into(),
            size: 32768,
            headroom: 128,
            data_room: 2048,
        })
        .unwrap();
        // `--own-mac 1`: the stack answers for a MAC of its own (the port
        // is promiscuous), so the host kernel, which sees every frame of the
        // veth too, drops our peer's ACKs at `ip_rcv` (PACKET_OTHERHOST)
        // instead of routing each to nowhere.
        let mac = if own_mac {
            wirespeed::ethdev::MacAddr([0x02, 0x77, 0x73, 0, 0, 1])
        } else {
            port.mac()
        };
        let mut pc = PortConf::new(mac, Ipv4Addr::new(10, 79, 0, 1), 24);
        pc.tx_offloads = offloads;
        let cfg = StackConfig {
            ports: vec![pc],
            max_sockets: 65536,
            ..Default::default()
        };
        let mut st = Stack::new(cfg, pool, Box::new(DirectXmit::new(vec![txq]))).unwrap();
        st.start(1_000_000_000);
        Ws {
            st,
            rxq,
            burst: Burst::new(),
            tsc,
            c0: tsc.now(),
            _port: port,
        }
    }
    /// One turn of the lcore loop; the clock is the TSC (`rdtsc`), as an
    /// lcore's loop reads it, not `clock_gettime`.
    /// Returns the frames received.
    fn poll(&mut self) -> usize {
        let rx = self.rxq.rx_burst(self.st.pool_mut(), &mut self.burst, 64);
        if !self.burst.is_empty() {
            self.st.rx_burst(0, &mut self.burst);
        }
        let now = self.tsc.cycles_to_ns(self.tsc.now() - self.c0) + 1_000_000_000;
        self.st.poll_timers(now);
        rx
    }
}

fn main() {
    let mut secs = 5.0f64;
    let mut tso = true;
    let mut sink_core: Option<String> = None;
    // Per-frame TPACKET_V2 RX: the ACKs reach the stack as they arrive,
    // not when a TPACKET_V3 block's 1 ms timer retires it.
    let mut rx_ring = "v2".to_string();
    let mut own_mac = false;
    let mut zc = false;
    let mut rps: Option<String> = None;
    let mut wait = false;
    // Linux's sender autotunes its send buffer up to tcp_wmem[2] (4 MiB);
    // ours has no autotuning, so it gets that size (`--sndbuf 0`: the
    // stack's 1 MiB default).
    let mut sndbuf: Option<u32> = Some(4 << 20);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|v| v.parse().ok()).expect("--secs N"),
            "--sndbuf" => {
                sndbuf = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .expect("--sndbuf BYTES"),
                )
            }
            "--sink-core" => sink_core = Some(args.next().expect("--sink-core N")),
            "--rx-ring" => rx_ring = args.next().expect("--rx-ring v2|v3"),
            "--own-mac" => own_mac = args.next().as_deref() == Some("1"),
            "--zc" => zc = args.next().as_deref() == Some("1"),
            "--rps" => rps = Some(args.next().expect("--rps CORE")),
            "--idle" => {
                wait = match args.next().as_deref() {
                    Some("wait") => true,
                    Some("spin") => false,
                    v => {
                        eprintln!("--idle {v:?}: give spin or wait");
                        std::process::exit(2);
                    }
                }
            }
            "--tso" => {
                tso = match args.next().as_deref() {
                    Some("1") => true,
                    Some("0") => false,
                    v => {
                        eprintln!("--tso {v:?}: give 1 or 0");
                        std::process::exit(2);
                    }
                }
            }
            other => {
                eprintln!(
                    "unknown argument {other}; usage: tcp_vs_linux [--secs N] [--tso 1|0] [--sndbuf BYTES] [--sink-core N] [--rx-ring v2|v3] [--own-mac 1|0] [--zc 1|0] [--rps CORE] [--idle spin|wait]"
                );
                std::process::exit(2);
            }
        }
    }
    // SAFETY: plain libc call with no arguments.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("tcp_vs_linux needs root (network namespace, AF_PACKET)");
        std::process::exit(2);
    }
    let tsc = Tsc::calibrate(Duration::from_millis(200));
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let _net = Net::up();
    if let Some(c) = &rps {
        // RPS on both receiving veths: `netif_rx` queues each frame to
        // core `c`'s backlog (`enqueue_to_backlog` + an IPI per batch), so
        // the receiver's IPv4/TCP input and its wakeup run there, not on
        // the sender's core, for either sender.
        let mask = format!("{:x}", 1u64 << c.parse::<u32>().expect("--rps CORE"));
        for dev in [PEER_IF, LPEER_IF] {
            let f = format!("/sys/class/net/{dev}/queues/rx-0/rps_cpus");
            let w = format!("echo {mask} > {f}");
            assert!(
                sh(&["ip", "netns", "exec", NS, "sh", "-c", &w]),
                "--rps: writing {f} in the namespace failed"
            );
        }
    }
    let ghz = tsc.hz() as f64 / 1e9;
    let how = if zc {
        "zero-copy: Linux sendfile, wirespeed send_splice"
    } else {
        "copying: Linux sendall, wirespeed send"
    };
    println!("# tcp_vs_linux: {secs} s per sender, veth into a namespace, kernel receiver; {how}; TSC {ghz:.2} GHz");

    // 1. Linux's sender.
    let (mut sink, mut sr) = spawn_ready({
        let mut c = sink_cmd(&sink_core, "5001");
        c.stderr(Stdio::inherit());
        c
    });
    // On the core wirespeed's sender will use (taskset, when present).
    let core = cores.get(1).or(cores.first()).map(|c| c.id);
    let mut lin = match core {
        Some(id) if sh(&["taskset", "-c", "0", "true"]) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &id.to_string(), "python3"]);
            c
        }
        _ => Command::new("python3"),
    };
    lin.args([
        "-c",
        LINUX_SENDER,
        &secs.to_string(),
        "5001",
        if zc { "zc" } else { "copy" },
    ]);
    let out = lin.output().expect("python3");
    let l: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let got = line_nums(&mut sr);
    let _ = sink.wait();
    let (lin_bytes, lin_secs) = (got[0], got[1]);
    let lin_cpu = l[1];
    let lin_gbps = lin_bytes * 8.0 / lin_secs / 1e9;
    let lin_cpb = lin_cpu * tsc.hz() as f64 / lin_bytes;
    println!(
        "linux   : {:>8.3} Gbit/s goodput, {:>6.2} cycles/byte on the sender ({:.0} MB, {:.2} s CPU)",
        lin_gbps,
        lin_cpb,
        lin_bytes / 1e6,
        lin_cpu
    );

    // 2. wirespeed's sender, pinned.
    if let Some(&c) = cores.get(1).or(cores.first()) {
        core_affinity::set_for_current(c);
    }
    let (mut sink, mut sr) = spawn_ready(sink_cmd(&sink_core, "5002"));
    let mut ws = Ws::new(tso, &rx_ring, own_mac, tsc);
    let c = ws.st.tcp_socket().unwrap();
    if let Some(b) = sndbuf.filter(|b| *b > 0) {
        ws.st.tcp(c).set_sndbuf(b).unwrap();
    }
    ws.st
        .tcp(c)
        .connect(SocketAddrV4::new(KERNEL, 5002))
        .unwrap();
    let t_conn = Instant::now();
    while ws.st.tcp(c).state().unwrap() == TcpState::SynSent {
        ws.poll();
        if t_conn.elapsed() > Duration::from_secs(10) {
            eprintln!("wirespeed: no answer to the SYN: {:?}", ws.st.tcp(c).info());
            std::process::exit(1);
        }
    }
    let chunk = vec![b'x'; 1 << 20];
    // `--zc 1`: MSS-sized buffers of the stack's pool, filled once and
    // spliced by reference (`send_splice`) over and over, as Linux's
    // `sendfile` splices the same page-cache pages.
    let mss = ws.st.tcp(c).info().unwrap().snd_mss as usize;
    let zbufs: Vec<wirespeed::mbuf::Mbuf> = if zc {
        (0..64)
            .map(|_| {
                let mut m = ws.st.pool_mut().alloc().expect("a buffer to splice");
                m.extend_from_slice(&chunk[..mss])
                    .expect("one MSS fits a buffer");
                m
            })
            .collect()
    } else {
        Vec::new()
    };
    let ziov: Vec<SpliceVec> = zbufs.iter().map(SpliceVec::whole).collect();
    let ctr = ws.st.counters_handle();
    let cpu0 = thread_cpu_ns();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(secs);
    let mut queued = 0u64;
    let mut turns = 0u32;
    // TSC time of the turns that did nothing: no byte queued, no frame
    // received, no segment sent (a poll-mode sender spins through them).
    let (loop_c0, mut idle_cyc) = (tsc.now(), 0u64);
    // `--idle wait`: after this many idle turns in a row (a short spin
    // catches the completions and ACKs that come at once), sleep in
    // poll(2) on the RX queue's fd.
    const IDLE_TURNS_BEFORE_WAIT: u32 = 8;
    let (mut idle_turns, mut waits) = (0u32, 0u64);
    // The deadline is checked every 64 turns (a clock read is not free).
    while !turns.is_multiple_of(64) || Instant::now() < end {
        turns = turns.wrapping_add(1);
        let (tc, q0, s0) = (tsc.now(), queued, ctr.tcp.out_segs.get());
        loop {
            let r = if zc {
                // The 64 buffers in one call, as `sendfile` hands TCP a
                // pipe's worth of pages per `tcp_sendmsg`.
                ws.st.tcp(c).send_splice(&ziov, MsgFlags::NONE)
            } else {
                ws.st.tcp(c).send(&chunk)
            };
            match r {
                Ok(n) => queued += n as u64,
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        let rx = ws.poll();
        if rx == 0 && queued == q0 && ctr.tcp.out_segs.get() == s0 {
            idle_turns += 1;
            if wait && idle_turns >= IDLE_TURNS_BEFORE_WAIT {
                // Interrupt mode: sleep until an ACK is in the ring (or
                // 1 ms: the stack's timers are coarser than that).
                if let Some(fd) = ws.rxq.wait_fd() {
                    let _ = wirespeed::eal::wait::wait_readable(&[fd], Duration::from_millis(1));
                    waits += 1;
                }
            }
            idle_cyc += tsc.now() - tc;
        } else {
            idle_turns = 0;
        }
    }
    let busy_share = 1.0 - idle_cyc as f64 / (tsc.now() - loop_c0).max(1) as f64;
    ws.st.tcp(c).shutdown_write().unwrap();
    let mut b = [0u8; 64];
    let t_fin = Instant::now();
    while !matches!(ws.st.tcp(c).recv(&mut b), Ok(0)) {
        ws.poll();
        if t_fin.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "wirespeed: no FIN from the receiver: {:?}",
                ws.st.tcp(c).info()
            );
            std::process::exit(1);
        }
    }
    let cpu = (thread_cpu_ns() - cpu0) as f64 / 1e9;
    let got = line_nums(&mut sr);
    let _ = sink.wait();
    let (ws_bytes, ws_secs) = (got[0], got[1]);
    assert_eq!(
        ws_bytes as u64, queued,
        "the receiver read every byte queued"
    );
    let ws_gbps = ws_bytes * 8.0 / ws_secs / 1e9;
    let ws_cpb = cpu * tsc.hz() as f64 / ws_bytes;
    let info = ws.st.tcp(c).info().unwrap();
    let busy_cpb = ws_cpb * busy_share;
    println!(
        "wirespeed: {:>8.3} Gbit/s goodput, {:>6.2} cycles/byte on the sender ({:.0} MB, {:.2} s CPU; retrans {}, cwnd {})",
        ws_gbps,
        ws_cpb,
        ws_bytes / 1e6,
        cpu,
        info.total_retrans,
        info.snd_cwnd
    );
    let x = ws._port.xstats();
    let get = |k: &str| x.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
    println!(
        "wirespeed: {} super-segments ({} wire segments), {} frames in all",
        get("tx_tso_frames"),
        get("tx_tso_segments"),
        ws._port.stats().tx.packets
    );
    println!(
        "wirespeed: {:>6.2} cycles/byte busy (the {:.0}% of the sending loop's time spent in turns that did work){}",
        busy_cpb,
        busy_share * 100.0,
        if wait {
            format!("; idle: waited in poll(2) {waits} times")
        } else {
            "; idle: spun".to_string()
        }
    );
    println!(
        "ratio    : wirespeed/linux cycles per byte {:.2} (busy {:.2}), goodput {:.2}",
        ws_cpb / lin_cpb,
        busy_cpb / lin_cpb,
        ws_gbps / lin_gbps
    );
    let _ = ws.st.tcp(c).close();

    // 3. Connections per second against a kernel listener: Linux's client
    // first (its own pair, this pinned thread), then wirespeed's.
    spawn_acceptor(cores.first().copied().filter(|_| cores.len() > 1));
    let (l_done, l_failed, l_el, l_cpu) = linux_connect_rate(secs.min(3.0));
    println!(
        "connect  : {:>8.0} connections/s established by linux (SYN → ESTABLISHED → RST), {} failed, 64 in flight, {:.2} µs CPU each",
        l_done as f64 / l_el,
        l_failed,
        l_cpu * 1e6 / l_done.max(1) as f64
    );
    let mut inflight: Vec<TcpId> = Vec::new();
    let mut done = 0u64;
    let mut failed = 0u64;
    let cpu0 = thread_cpu_ns();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(secs.min(3.0));
    while Instant::now() < end {
        while inflight.len() < 64 {
            let s = ws.st.tcp_socket().unwrap();
            ws.st
                .tcp(s)
                .connect(SocketAddrV4::new(KERNEL, 5003))
                .unwrap();
            inflight.push(s);
        }
        ws.poll();
        let mut k = 0;
        while k < inflight.len() {
            let s = inflight[k];
            match ws.st.tcp(s).state().unwrap() {
                TcpState::SynSent => k += 1,
                TcpState::Established | TcpState::CloseWait => {
                    ws.st.tcp(s).abort().unwrap();
                    inflight.swap_remove(k);
                    done += 1;
                }
                _ => {
                    ws.st.tcp(s).abort().unwrap();
                    inflight.swap_remove(k);
                    failed += 1;
                }
            }
        }
    }
    let el = t0.elapsed().as_secs_f64();
    let w_cpu = (thread_cpu_ns() - cpu0) as f64 / 1e9;
    println!(
        "connect  : {:>8.0} connections/s established by wirespeed (SYN → ESTABLISHED → RST), {} failed, 64 in flight, {:.2} µs CPU each",
        done as f64 / el,
        failed,
        w_cpu * 1e6 / done.max(1) as f64
    );
    println!(
        "ratio    : wirespeed/linux connections per second {:.2}, CPU per connection {:.2}",
        (done as f64 / el) / (l_done as f64 / l_el).max(1e-9),
        (w_cpu / done.max(1) as f64) / (l_cpu / l_done.max(1) as f64).max(1e-12)
    );
}

/// Linux's client for the connection rate, on its own veth pair into the
/// same namespace and listener: 64 non-blocking `connect`s in flight, each
/// closed with a reset once established (`SO_LINGER` 0, as wirespeed's
/// `abort`), for `secs`. Returns (established, failed, seconds, CPU seconds
/// of this thread, kernel work included).
fn linux_connect_rate(secs: f64) -> (u64, u64, f64, f64) {
    const INFLIGHT: usize = 64;
    let dst = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 5003u16.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(Ipv4Addr::new(10, 80, 0, 2)).to_be(),
        },
        sin_zero: [0; 8],
    };
    let open = || -> i32 {
        // SAFETY: plain libc calls on a socket this function owns; the
        // option and address structs live on the stack for the call.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let lg = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&lg as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
            libc::connect(
                fd,
                (&dst as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            fd
        }
    };
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(INFLIGHT);
    let (mut done, mut failed) = (0u64, 0u64);
    let cpu0 = thread_cpu_ns();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        while fds.len() < INFLIGHT {
            fds.push(libc::pollfd {
                fd: open(),
                events: libc::POLLOUT,
                revents: 0,
            });
        }
        // SAFETY: `fds` is a live array of `fds.len()` pollfds.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
        let mut k = 0;
        while k < fds.len() {
            if fds[k].revents == 0 {
                k += 1;
                continue;
            }
            let mut err: i32 = 0;
            let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
            // SAFETY: SO_ERROR writes one int we own; close ends our fd.
            unsafe {
                libc::getsockopt(
                    fds[k].fd,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut err as *mut i32).cast(),
                    &mut len,
                );
                libc::close(fds[k].fd);
            }
            if err == 0 {
                done += 1;
            } else {
                failed += 1;
            }
            fds.swap_remove(k);
        }
    }
    let el = t0.elapsed().as_secs_f64();
    for f in &fds {
        // SAFETY: closes fds this function opened.
        unsafe { libc::close(f.fd) };
    }
    (done, failed, el, (thread_cpu_ns() - cpu0) as f64 / 1e9)
}
