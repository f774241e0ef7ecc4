//! Appliances on the stack: [`Runtime::run_stacked`] gives every lcore a
//! [`Stack`] of the ports' addresses, all of them sharing one
//! [`ControlPlane`], and runs an application on top of it.
//!
//! What an embedder would otherwise write by hand (and what `udp_echo`
//! once did): a pool for the stack, the port MACs captured before the run,
//! received frames forwarded to `Stack::rx`, TSC converted to ns for the
//! stack's timers, staged TX flushed after every poll and in the drain. Here
//! an appliance is an [`StackApp`] and a `main` of a few lines:
//!
//! ```text
//! let rt = Runtime::new(cfg, ports)?;
//! let report = rt.run_stacked(StackSpec::new(stack_config), |ctx| Echo::new(ctx))?;
//! ```
//!
//! Per lcore, per poll loop (the order `net_rx_action` → the app → the
//! device's TX softirq has in Linux):
//!
//! 1. [`Stack::sync`]: one Acquire load; when another lcore learned a
//!    neighbour or a route changed, this replica catches up.
//! 2. Frames other lcores steered here go to this stack (`rx`).
//! 3. The app's `poll`; then the stack's output is flushed to this lcore's
//!    queues (`runtime::staged`: `netdev_pick_tx`, one doorbell per queue).
//!
//! RX: the app's `on_rx` sees each burst first and takes what it wants;
//! the rest goes to the stack — except a UDP or TCP segment whose
//! destination port a socket of *another* lcore holds (the control plane's
//! owner table, one Relaxed load per frame, only with two or more lcores):
//! it is handed to that lcore through an SPSC ring (what RPS/RFS or aRFS
//! steering to the socket's CPU does; `SO_INCOMING_CPU` the other way
//! round). A full ring drops the frame and counts it in `steer_drops`.
//! Fragments are not steered (only the first carries the ports): they are
//! reassembled on the lcore that received them.

use super::staged::{staged, StagedTx};
use super::steer::{SteerRings, Steerer};
use super::{LcoreApp, LcoreCtx, LcoreId, RunReport, Runtime, RuntimeError};
use crate::ethdev::MacAddr;
use crate::mbuf::{Burst, Mempool, PoolConfig};
use crate::stack::shared::{ControlPlane, SyncStats};
use crate::stack::{SnmpSnapshot, Stack, StackConfig};
use std::sync::Arc;
use std::time::Duration;

/// Timer id the host keeps for the stack's timers (apps get the others).
pub const STACK_TIMER: u32 = u32::MAX;

/// How the runtime builds each lcore's stack.
#[derive(Debug, Clone)]
pub struct StackSpec {
    /// The stack's ports, routes, neighbours, knobs. A port whose MAC is
    /// all zeros gets its runtime port's MAC.
    pub stack: StackConfig,
    /// Stack port `i` is runtime port `ports[i]` (default: `0..`).
    pub ports: Option<Vec<usize>>,
    /// Buffers of each lcore's stack pool.
    pub pool_size: u32,
    /// Period of the stack's timers (ARP retransmits, TCP, reassembly).
    pub timer_period: Duration,
    /// Slots of each lcore-to-lcore steering ring.
    pub steer_ring: usize,
}

impl StackSpec {
    pub fn new(stack: StackConfig) -> StackSpec {
        StackSpec {
            stack,
            ports: None,
            pool_size: 8192,
            timer_period: Duration::from_millis(1),
            steer_ring: 1024,
        }
    }
}

/// An application on the stack (one instance per lcore).
pub trait StackApp {
    type Summary: Send + 'static;

    /// Once per poll loop, after the stack has taken its input.
    fn poll(&mut self, ctx: &mut StackCtx<'_>);

    /// A received burst, before the stack sees it: what the app leaves in
    /// `pkts` goes to the stack.
    fn on_rx(&mut self, _ctx: &mut StackCtx<'_>, _port: u16, _queue: u16, _pkts: &mut Burst) {}

    /// A timer the app registered with [`StackCtx::add_timer`].
    fn on_timer(&mut self, _ctx: &mut StackCtx<'_>, _id: u32) {}

    /// Frames the app holds outside the stack (default none): see
    /// [`LcoreApp::flush_tx`].
    fn flush_tx(&mut self, _ctx: &mut StackCtx<'_>) -> usize {
        0
    }

    fn finish(self, ctx: &mut StackCtx<'_>) -> Self::Summary;
}

/// What the app sees: its lcore, its stack, the ports.
pub struct StackCtx<'a> {
    pub lcore: &'a mut LcoreCtx,
    pub stack: &'a mut Stack,
    macs: &'a [MacAddr],
}

impl StackCtx<'_> {
    pub fn lcore_id(&self) -> LcoreId {
        self.lcore.lcore()
    }

    /// Now, in the stack's clock (ns since the TSC's start).
    pub fn now_ns(&self) -> u64 {
        self.lcore.tsc().cycles_to_ns(self.lcore.now())
    }

    /// The MAC of stack port `port`.
    pub fn port_mac(&self, port: u16) -> Option<MacAddr> {
        self.macs.get(port as usize).copied()
    }

    /// Ends this lcore's loop (after the drain).
    pub fn request_stop(&mut self) {
        self.lcore.request_stop()
    }

    /// Ends every lcore's loop.
    pub fn request_stop_all(&mut self) {
        self.lcore.request_stop_all()
    }

    /// A periodic timer delivered to [`StackApp::on_timer`]
    /// (`id` != [`STACK_TIMER`]).
    pub fn add_timer(&mut self, period: Duration, id: u32) {
        debug_assert_ne!(id, STACK_TIMER, "timer id reserved for the stack");
        self.lcore.add_timer(period, id)
    }
}

/// What each lcore reports: the app's summary, the steering, the stack.
#[derive(Debug, Clone)]
pub struct StackReport<S> {
    pub app: S,
    /// Frames this lcore received for another lcore's socket and handed over.
    pub steered_out: u64,
    /// Frames other lcores handed to this one.
    pub steered_in: u64,
    /// Frames dropped because the steering ring to their lcore was full.
    pub steer_drops: u64,
    /// Control-plane changes this replica applied / could not apply.
    pub sync: SyncStats,
    /// This lcore's stack counters (`/proc/net/snmp`).
    pub snmp: SnmpSnapshot,
    /// The replica's index in the control plane (what the owner table names).
    pub replica: usize,
}

struct Env {
    cp: Arc<ControlPlane>,
    spec: StackSpec,
    macs: Vec<MacAddr>,
    map: Vec<usize>,
    rings: SteerRings,
    n: usize,
}

struct Host<A> {
    app: A,
    stack: Stack,
    staged: StagedTx,
    env: Arc<Env>,
    me: usize,
    steer: Steerer,
}

impl Runtime {
    /// Runs `make_app`'s application on every lcore on top of a stack of
    /// `spec`'s ports and addresses, the stacks sharing one control plane
    /// (see the module documentation). `make_app` runs on each lcore after
    /// its stack is up.
    pub fn run_stacked<A, F>(
        self,
        spec: StackSpec,
        make_app: F,
    ) -> Result<RunReport<StackReport<A::Summary>>, RuntimeError>
    where
        A: StackApp,
        F: Fn(&mut StackCtx<'_>) -> Result<A, String> + Send + Sync + 'static,
    {
        let env = Arc::new(self.stack_env(spec)?);
        let cp = env.cp.clone();
        let report = self.run(move |ctx| Host::new(ctx, &env, &make_app));
        drop(cp);
        report
    }

    fn stack_env(&self, spec: StackSpec) -> Result<Env, RuntimeError> {
        let nports = self.ports().len();
        let map = spec
            .ports
            .clone()
            .unwrap_or_else(|| (0..spec.stack.ports.len()).collect());
        if map.len() != spec.stack.ports.len() {
            return Err(RuntimeError::Config {
                key: "stack.ports",
                why: format!(
                    "{} entries for {} stack ports: give one runtime port per stack port",
                    map.len(),
                    spec.stack.ports.len()
                ),
            });
        }
        if let Some(&bad) = map.iter().find(|&&p| p >= nports) {
            return Err(RuntimeError::Config {
                key: "stack.ports",
                why: format!("runtime port {bad} does not exist ({nports} ports)"),
            });
        }
        let macs: Vec<MacAddr> = spec
            .stack
            .ports
            .iter()
            .zip(&map)
            .map(|(c, &p)| {
                if c.mac == MacAddr::ZERO {
                    self.ports()[p].mac()
                } else {
                    c.mac
                }
            })
            .collect();
        let n = self.cfg.cores.len();
        Ok(Env {
            cp: Arc::new(ControlPlane::new()),
            rings: SteerRings::new(n, spec.steer_ring),
            spec,
            macs,
            map,
            n,
        })
    }
}

impl<A: StackApp> Host<A> {
    fn new<F>(ctx: &mut LcoreCtx, env: &Arc<Env>, make_app: &F) -> Result<Host<A>, String>
    where
        F: Fn(&mut StackCtx<'_>) -> Result<A, String>,
    {
        let l = ctx.lcore().index;
        let mut cfg = env.spec.stack.clone();
        for (c, &mac) in cfg.ports.iter_mut().zip(&env.macs) {
            c.mac = mac;
        }
        // Each replica draws its own ephemeral ports and jitter.
        cfg.seed ^= (l as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let pool = Mempool::new(&PoolConfig {
            name: format!("stack-l{l}"),
            size: env.spec.pool_size,
            ..PoolConfig::default()
        })
        .map_err(|e| format!("stack pool: {e}"))?;
        let (xmit, staged_tx) = staged(env.map.clone());
        let mut stack = Stack::new(cfg, pool, Box::new(xmit)).map_err(|e| e.to_string())?;
        stack.join(env.cp.clone()).map_err(|e| e.to_string())?;
        let me = stack.control_plane().map(|(_, id)| id).unwrap_or(0);
        if me >= env.n {
            return Err(format!(
                "replica {me} of a control plane for {} lcores",
                env.n
            ));
        }
        let now_ns = ctx.tsc().cycles_to_ns(ctx.now());
        if me == 0 {
            // One gratuitous ARP per port for all the replicas.
            stack.start(now_ns);
        } else {
            stack.poll_timers(now_ns);
        }
        ctx.add_timer(env.spec.timer_period, STACK_TIMER);
        let app = make_app(&mut StackCtx {
            lcore: ctx,
            stack: &mut stack,
            macs: &env.macs,
        })?;
        Ok(Host {
            app,
            stack,
            staged: staged_tx,
            env: env.clone(),
            me,
            steer: Steerer::new(me, env.n),
        })
    }

    fn ctx<'a>(lcore: &'a mut LcoreCtx, stack: &'a mut Stack, env: &'a Env) -> StackCtx<'a> {
        StackCtx {
            lcore,
            stack,
            macs: &env.macs,
        }
    }

    /// Frames other lcores steered to this one.
    fn take_steered(&mut self) {
        let stack = &mut self.stack;
        self.steer
            .take(&self.env.rings, |port, m| stack.rx(port as u16, m));
    }
}

impl<A: StackApp> LcoreApp for Host<A> {
    type Summary = StackReport<A::Summary>;

    fn poll(&mut self, ctx: &mut LcoreCtx) {
        self.stack.sync();
        if self.env.n > 1 {
            self.take_steered();
        }
        let mut c = Self::ctx(ctx, &mut self.stack, &self.env);
        self.app.poll(&mut c);
        self.stack.flush();
        self.staged.flush(ctx);
    }

    fn on_rx(&mut self, ctx: &mut LcoreCtx, port: u16, queue: u16, pkts: &mut Burst) {
        let mut c = Self::ctx(ctx, &mut self.stack, &self.env);
        self.app.on_rx(&mut c, port, queue, pkts);
        // Runtime port → stack port.
        let Some(sp) = self.env.map.iter().position(|&p| p == port as usize) else {
            return; // Not a stack port: the runtime counts what is left.
        };
        let steer = self.env.n > 1;
        while let Some(m) = pkts.pop_front() {
            let m = if steer {
                match self.steer.offer(&self.env.cp, m, sp as u64) {
                    Some(m) => m,
                    None => continue,
                }
            } else {
                m
            };
            self.stack.rx(sp as u16, m);
        }
        if steer {
            self.steer.flush(&self.env.rings);
        }
        self.stack.flush();
    }

    fn on_timer(&mut self, ctx: &mut LcoreCtx, id: u32) {
        if id == STACK_TIMER {
            self.stack.poll_timers(ctx.tsc().cycles_to_ns(ctx.now()));
            self.stack.flush();
            self.staged.flush(ctx);
        } else {
            let mut c = Self::ctx(ctx, &mut self.stack, &self.env);
            self.app.on_timer(&mut c, id);
        }
    }

    fn flush_tx(&mut self, ctx: &mut LcoreCtx) -> usize {
        let mut c = Self::ctx(ctx, &mut self.stack, &self.env);
        let held = self.app.flush_tx(&mut c);
        self.stack.flush();
        self.staged.flush(ctx);
        held + self.staged.pending()
    }

    fn finish(mut self, ctx: &mut LcoreCtx) -> Self::Summary {
        // Frames still in our steering rings were counted as steered out
        // by their sender: they are taken and handed to this stack.
        if self.env.n > 1 {
            self.take_steered();
        }
        let mut c = Self::ctx(ctx, &mut self.stack, &self.env);
        let app = self.app.finish(&mut c);
        StackReport {
            app,
            steered_out: self.steer.stats.steered_out,
            steered_in: self.steer.stats.steered_in,
            steer_drops: self.steer.stats.steer_drops,
            sync: self.stack.sync(),
            snmp: self.stack.counters(),
            replica: self.me,
        }
    }
}
