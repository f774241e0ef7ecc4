//! `udp_echo`: a UDP echo server (RFC 862) on the engine's stack — the
//! appliance an embedder writes first. `Runtime::run_stacked` gives the
//! lcore a `Stack` with the port's address (its MAC filled in from the
//! port); frames the port receives go to the stack (ARP, ICMP, IPv4
//! reassembly, UDP demux), a bound `UdpSocket` hands each datagram to the
//! app (`recv_from`), which sends it back to where it came from (`send_to`:
//! route, neighbour — ARP for a new client —, pfifo_fast + BQL, the
//! driver). The runtime runs the stack's timers and flushes its output
//! after every poll: the app is its socket calls and nothing else.
//!
//! ```text
//! cargo run --release -p wirespeed-apps --example udp_echo -- \
//!     --port af_packet:veth0 --ip 10.0.0.1/24 --listen 7 --duration 30
//! ```
//!
//! Ends on Ctrl-C, `--count N` (datagrams echoed) or `--duration S`, and
//! prints what it received, echoed and could not echo, with the stack's
//! `Udp:` counters.

use clap::Parser;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;
use wirespeed::eal::lcore::CoreList;
use wirespeed::ethdev::{MacAddr, PortConfig, Registry};
use wirespeed::runtime::stacked::{StackApp, StackCtx, StackSpec};
use wirespeed::runtime::{PortSetup, Runtime, RuntimeConfig};
use wirespeed::stack::{PortConf, SnmpSnapshot, SocketId, StackConfig};

/// Command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "udp_echo",
    about = "UDP echo server (RFC 862) on the wirespeed stack"
)]
pub struct Opts {
    /// Device spec of the port: ring:NAME, af_packet:IFACE, af_xdp:IFACE, igb-model, …
    #[arg(long)]
    pub port: String,
    /// The port's address and prefix length.
    #[arg(long, default_value = "10.0.0.1/24")]
    pub ip: String,
    /// The UDP port to answer on.
    #[arg(long, default_value_t = 7)]
    pub listen: u16,
    /// The core the lcore runs on.
    #[arg(long, default_value_t = 0)]
    pub lcore: usize,
    /// Stop after echoing this many datagrams.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// 4 KiB pages only (DPDK --no-huge).
    #[arg(long)]
    pub no_huge: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub received: u64,
    pub echoed: u64,
    /// Datagrams the stack refused to send back (counted by errno in
    /// `last_error`; the stack's SNMP counts them too).
    pub failed: u64,
    pub last_error: Option<String>,
    pub snmp: Option<SnmpSnapshot>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "udp_echo: received {}, echoed {}, not echoed {}{}",
            self.received,
            self.echoed,
            self.failed,
            self.last_error
                .as_ref()
                .map(|e| format!(" (last: {e})"))
                .unwrap_or_default()
        )?;
        if let Some(s) = &self.snmp {
            let u = &s.udp;
            write!(
                f,
                "Udp: InDatagrams {} NoPorts {} InErrors {} OutDatagrams {} RcvbufErrors {} SndbufErrors {}",
                u.in_datagrams, u.no_ports, u.in_errors, u.out_datagrams, u.rcvbuf_errors, u.sndbuf_errors
            )?;
        }
        Ok(())
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Ethdev(#[from] wirespeed::ethdev::EthdevError),
    #[error(transparent)]
    Runtime(#[from] wirespeed::runtime::RuntimeError),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// `--ip A.B.C.D/LEN`.
pub fn parse_ip(s: &str) -> Result<(Ipv4Addr, u8), Error> {
    let bad = || {
        Error::Usage(format!(
            "--ip: '{s}' is not ADDRESS/PREFIX (e.g. 10.0.0.1/24)"
        ))
    };
    let (a, l) = s.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let len: u8 = l.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(bad());
    }
    Ok((addr, len))
}

/// One lcore's echo server: a socket on the runtime's stack.
struct Echo {
    sock: SocketId,
    buf: Vec<u8>,
    r: Report,
    limit: Option<u64>,
}

impl Echo {
    fn new(ctx: &mut StackCtx<'_>, o: &Opts) -> Result<Echo, String> {
        let sock = ctx.stack.udp_socket().map_err(|e| format!("socket: {e}"))?;
        ctx.stack
            .socket(sock)
            .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, o.listen))
            .map_err(|e| format!("bind :{}: {e}", o.listen))?;
        Ok(Echo {
            sock,
            buf: vec![0; 65536],
            r: Report::default(),
            limit: o.count,
        })
    }
}

impl StackApp for Echo {
    type Summary = Report;

    /// Every datagram queued on the socket, sent back to its sender (the
    /// runtime flushes the stack's output after this).
    fn poll(&mut self, ctx: &mut StackCtx<'_>) {
        while let Ok((n, from)) = ctx.stack.socket(self.sock).recv_from(&mut self.buf) {
            self.r.received += 1;
            match ctx.stack.socket(self.sock).send_to(&self.buf[..n], from) {
                Ok(_) => self.r.echoed += 1,
                Err(e) => {
                    // EAGAIN (send buffer full) included: counted, not retried
                    // — UDP has no delivery promise to keep.
                    self.r.failed += 1;
                    self.r.last_error = Some(format!("to {from}: {e}"));
                }
            }
        }
        // Done once the last echo left the stack: a reply to a client being
        // resolved waits in its neighbour entry until ARP answers.
        if self.limit.is_some_and(|n| self.r.echoed >= n)
            && ctx.stack.neighbours().iter().all(|x| x.queued == 0)
        {
            ctx.request_stop();
        }
    }

    fn finish(mut self, ctx: &mut StackCtx<'_>) -> Report {
        self.r.snmp = Some(ctx.stack.counters());
        self.r
    }
}

/// Opens the port through `reg` and echoes until a stop condition.
pub fn run(o: &Opts, reg: &Registry, handle_signals: bool) -> Result<Report, Error> {
    parse_ip(&o.ip)?;
    if o.no_huge {
        wirespeed::eal::dma::set_page_mode(wirespeed::eal::PageMode::Small);
    }
    let (addr, len) = parse_ip(&o.ip)?;
    let port = reg.open(&o.port)?;
    let setup = PortSetup::new(port, PortConfig::default());
    let mut cfg = RuntimeConfig::new(CoreList::from_cores(vec![o.lcore]));
    cfg.pool.name = "udp-echo".into();
    cfg.handle_signals = handle_signals;
    cfg.stop.duration = o.duration.map(Duration::from_secs_f64);
    let rt = Runtime::new(cfg, vec![setup])?;
    // The port's MAC is filled in by the runtime (MacAddr::ZERO).
    let spec = StackSpec::new(StackConfig {
        ports: vec![PortConf::new(MacAddr::ZERO, addr, len)],
        ..Default::default()
    });
    let o2 = o.clone();
    let report = rt.run_stacked(spec, move |ctx| Echo::new(ctx, &o2))?;
    Ok(report.lcores[0].app.app.clone())
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    let o = Opts::parse();
    match run(&o, &wirespeed_apps::registry(), true) {
        Ok(r) => {
            println!("{r}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("udp_echo: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
