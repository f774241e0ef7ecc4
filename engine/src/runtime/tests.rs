//! Runtime tests: real lcore threads, ring ports, conservation end to end.

use super::*;
use crate::eal::dma::{set_page_mode, PageMode};
use crate::ethdev::Registry;
use crate::netdev::{flow_hash, QdiscKind, XpsError};

fn ring_pair(name: &str, txq: u16, rxq: u16) -> (Box<dyn Port>, Box<dyn Port>, PortConfig) {
    let reg = Registry::with_builtins();
    let a = reg.open(&format!("ring:{name}")).unwrap();
    let b = reg.open(&format!("ring:{name}")).unwrap();
    let conf = PortConfig {
        nb_tx_queues: txq,
        nb_rx_queues: rxq,
        tx_ring_size: 64,
        rx_ring_size: 64,
        ..Default::default()
    };
    (a, b, conf)
}

fn rt_config(cores: Vec<usize>) -> RuntimeConfig {
    set_page_mode(PageMode::Small);
    let mut c = RuntimeConfig::new(CoreList::from_cores(cores));
    c.pool.size = 2048;
    c.handle_signals = false;
    c.stop.duration = Some(Duration::from_secs(5)); // safety net
    c
}

/// Sends `total` packets over 64 flows on port 0 (two queues), receives them
/// on port 1, and stops when all have arrived.
struct Echo {
    total: u32,
    sent: u32,
    got: Vec<u32>,
    caches: Vec<TxQueueCache>,
    per_queue: [u64; 2],
}

impl LcoreApp for Echo {
    type Summary = (Vec<u32>, [u64; 2]);
    fn poll(&mut self, ctx: &mut LcoreCtx) {
        if self.got.len() as u32 == self.total {
            ctx.request_stop();
            return;
        }
        for _ in 0..8 {
            if self.sent == self.total {
                break;
            }
            let flow = (self.sent % 64) as usize;
            let mut m = ctx.pool.alloc().expect("pool");
            let d = m.append(64).unwrap();
            d[..4].copy_from_slice(&self.sent.to_be_bytes());
            d[4] = flow as u8;
            let h = flow_hash(0x0a00_0001, 0x0a00_0002, 1000 + flow as u16, 9, 17);
            let q = ctx.pick_tx(0, &mut self.caches[flow], h, 0);
            self.per_queue[q] += 1;
            let o = ctx.xmit_burst(0, q, &mut {
                let mut b = Burst::new();
                b.push(m).unwrap();
                b
            });
            assert_eq!(o.dropped, 0);
            self.sent += 1;
        }
    }
    fn on_rx(&mut self, _ctx: &mut LcoreCtx, port: u16, _queue: u16, pkts: &mut Burst) {
        assert_eq!(port, 1);
        while let Some(m) = pkts.pop_front() {
            self.got
                .push(u32::from_be_bytes(m.data()[..4].try_into().unwrap()));
        }
    }
    fn finish(self, ctx: &mut LcoreCtx) -> Self::Summary {
        assert!(ctx.polls() > 0);
        (self.got, self.per_queue)
    }
}

#[test]
fn one_lcore_sends_flows_over_its_queues_and_receives_them_all() {
    let (a, b, conf) = ring_pair("rt-echo", 2, 2);
    let rt = Runtime::new(
        rt_config(vec![0]),
        vec![PortSetup::new(a, conf.clone()), PortSetup::new(b, conf)],
    )
    .unwrap();
    assert_eq!(rt.xps().queues_of(0, 0), &[0, 1]);
    let report = rt
        .run(|_ctx| {
            Ok(Echo {
                total: 3000,
                sent: 0,
                got: Vec::new(),
                caches: vec![TxQueueCache::new(); 64],
                per_queue: [0; 2],
            })
        })
        .unwrap();
    let l = &report.lcores[0];
    let (got, per_queue) = &l.app;
    assert_eq!(got.len(), 3000);
    // Each flow stays on one queue, so per flow the order is kept.
    for flow in 0..64u32 {
        let seq: Vec<u32> = got.iter().copied().filter(|t| t % 64 == flow).collect();
        assert!(seq.windows(2).all(|w| w[0] < w[1]), "flow {flow} reordered");
    }
    assert!(per_queue[0] > 0 && per_queue[1] > 0, "{per_queue:?}");
    assert!(l.drained);
    let sent: u64 = l.queues.iter().map(|q| q.counters.sent_packets).sum();
    let offered: u64 = l.queues.iter().map(|q| q.counters.offered).sum();
    let drops: u64 = l.queues.iter().map(|q| q.counters.drops()).sum();
    assert_eq!((offered, sent, drops), (3000, 3000, 0));
    assert_eq!(l.rx_packets, 3000);
    assert_eq!(l.pool.in_use, 0, "pool back to full");
    assert_eq!(report.ports[0].stats.tx.packets, 3000);
    assert_eq!(report.ports[1].stats.rx.packets, 3000);
}

#[test]
fn ends_on_duration_poll_count_or_external_stop() {
    let reg = Registry::with_builtins();
    let mk = || PortSetup::new(reg.open("null").unwrap(), PortConfig::default());
    // Poll count.
    let mut c = rt_config(vec![0]);
    c.stop.polls = Some(1000);
    let r = Runtime::new(c, vec![mk()])
        .unwrap()
        .run(|_| Ok(PollFn(|_: &mut LcoreCtx| {})))
        .unwrap();
    assert_eq!(r.lcores[0].polls, 1000);
    // Duration.
    let mut c = rt_config(vec![0]);
    c.stop.duration = Some(Duration::from_millis(30));
    let r = Runtime::new(c, vec![mk()])
        .unwrap()
        .run(|_| Ok(PollFn(|_: &mut LcoreCtx| {})))
        .unwrap();
    let ms = r.lcores[0].elapsed_ns / 1_000_000;
    assert!((30..2000).contains(&ms), "{ms} ms");
    // External stop from the ticker thread, which also sees live counters.
    let c = rt_config(vec![0]);
    let rt = Runtime::new(c, vec![mk()]).unwrap();
    let mut seen = Vec::new();
    let r = rt
        .run_with_ticker(
            |_| {
                Ok(PollFn(|ctx: &mut LcoreCtx| {
                    let mut b = Burst::new();
                    if ctx.pool.alloc_bulk(&mut b, 16) {
                        for m in b.as_mut_slice() {
                            m.set_len(64).unwrap();
                        }
                        ctx.xmit_burst(0, 0, &mut b);
                    }
                }))
            },
            Duration::from_millis(20),
            |m: &Monitor| {
                seen.push(m.queues()[0].counters.sent_packets);
                if seen.len() >= 2 {
                    m.request_stop();
                }
            },
        )
        .unwrap();
    assert!(seen.len() >= 2 && seen[1] > 0, "{seen:?}");
    let q = &r.lcores[0].queues[0];
    assert!(q.counters.sent_packets > 0);
    assert_eq!(q.counters.unaccounted(), 0);
    assert_eq!(r.lcores[0].pool.in_use, 0);
}

#[test]
fn stop_on_tx_count_and_timers_fire() {
    let reg = Registry::with_builtins();
    let mut c = rt_config(vec![0]);
    c.stop.tx_packets = Some(5000);
    let rt = Runtime::new(
        c,
        vec![PortSetup::new(
            reg.open("null").unwrap(),
            PortConfig::default(),
        )],
    )
    .unwrap();
    struct T {
        fired: u32,
    }
    impl LcoreApp for T {
        type Summary = u32;
        fn poll(&mut self, ctx: &mut LcoreCtx) {
            let mut b = Burst::new();
            if ctx.pool.alloc_bulk(&mut b, 32) {
                for m in b.as_mut_slice() {
                    m.set_len(64).unwrap();
                }
                ctx.xmit_burst(0, 0, &mut b);
            }
            // Slow down so the timer has time to fire.
            std::thread::sleep(Duration::from_micros(200));
        }
        fn on_timer(&mut self, _ctx: &mut LcoreCtx, id: u32) {
            assert_eq!(id, 7);
            self.fired += 1;
        }
        fn finish(self, _ctx: &mut LcoreCtx) -> u32 {
            self.fired
        }
    }
    let r = rt
        .run(|ctx| {
            ctx.add_timer(Duration::from_millis(1), 7);
            Ok(T { fired: 0 })
        })
        .unwrap();
    let l = &r.lcores[0];
    let sent = l.queues[0].counters.sent_packets;
    assert!((5000..5000 + 32).contains(&sent), "{sent}");
    assert!(l.app > 0, "timer fired {} times", l.app);
}

#[test]
fn xps_errors_surface_before_anything_runs() {
    let reg = Registry::with_builtins();
    let conf = PortConfig::default(); // one TX queue
    let e = Runtime::new(
        rt_config(vec![0, 0]),
        vec![PortSetup::new(reg.open("null").unwrap(), conf.clone())],
    )
    .err()
    .unwrap();
    assert!(
        matches!(
            e,
            RuntimeError::Xps(XpsError::LcoreWithoutQueue { lcore: 1, .. })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("null") && e.to_string().contains("lcore 1"));
    let mut s = PortSetup::new(reg.open("null").unwrap(), conf);
    s.txq.qdisc.kind = QdiscKind::PfifoFast;
    s.txq.qdisc.txqueuelen = 0;
    let e = Runtime::new(rt_config(vec![0]), vec![s]).err().unwrap();
    assert!(e.to_string().contains("txqueuelen"), "{e}");
}

#[test]
fn app_start_failure_is_reported() {
    let reg = Registry::with_builtins();
    let rt = Runtime::new(
        rt_config(vec![0]),
        vec![PortSetup::new(
            reg.open("null").unwrap(),
            PortConfig::default(),
        )],
    )
    .unwrap();
    let e = rt
        .run(|_| -> Result<PollFn<fn(&mut LcoreCtx)>, String> { Err("no templates".into()) })
        .err()
        .unwrap();
    assert!(matches!(e, RuntimeError::App { lcore: 0, .. }), "{e}");
}

/// Two lcores: lcore 0 sends on ring end A through pfifo_fast + BQL; lcore 1
/// receives on end B, 4 packets per poll (a slow port), and frees what it gets
/// (the buffers go home to lcore 0's pool through its return list).
#[test]
fn two_lcores_slow_receiver_conserves_packets_and_bounds_inflight() {
    const TOTAL: u32 = 20_000;
    let cores = if lcore::online_cores() >= 2 {
        vec![0, 1]
    } else {
        vec![0, 0]
    };
    let (a, b, mut conf) = ring_pair("rt-slow", 1, 1);
    conf.tx_ring_size = 256;
    conf.rx_ring_size = 256;
    let mut pa = PortSetup::new(a, conf.clone());
    pa.senders = Some(vec![0]);
    pa.rx_lcores = Some(vec![0]);
    pa.txq.qdisc.txqueuelen = 200;
    let mut pb = PortSetup::new(b, conf);
    pb.xps = Some(vec![vec![0], vec![]]);
    pb.senders = Some(vec![]);
    pb.rx_lcores = Some(vec![1]);
    let mut cfg = rt_config(cores);
    cfg.rx_burst = 4;
    let rt = Runtime::new(cfg, vec![pa, pb]).unwrap();

    struct App {
        sender: bool,
        offered: u32,
        got: u64,
        max_over: i64,
    }
    impl LcoreApp for App {
        type Summary = (u32, u64, i64);
        fn poll(&mut self, ctx: &mut LcoreCtx) {
            if !self.sender {
                return;
            }
            if self.offered < TOTAL {
                let mut b = Burst::new();
                for _ in 0..16 {
                    let mut m = ctx.pool.alloc().expect("pool");
                    m.set_len(60 + (self.offered as usize * 97) % 1455).unwrap();
                    b.push(m).unwrap();
                    self.offered += 1;
                }
                ctx.xmit_burst(0, 0, &mut b);
            } else if ctx.tx_queue(0, 0).is_idle() {
                ctx.request_stop_all();
            }
            self.max_over = ctx.tx_queue(0, 0).counters().bql_overshoot_max as i64;
        }
        fn on_rx(&mut self, _ctx: &mut LcoreCtx, port: u16, _q: u16, pkts: &mut Burst) {
            assert_eq!(port, 1);
            self.got += pkts.len() as u64;
            pkts.clear();
        }
        fn finish(self, ctx: &mut LcoreCtx) -> Self::Summary {
            // Frees by the receiving lcore reach this pool asynchronously.
            let end = std::time::Instant::now() + Duration::from_secs(2);
            while self.sender && ctx.pool.stats().in_use > 0 && std::time::Instant::now() < end {
                std::thread::yield_now();
            }
            (self.offered, self.got, self.max_over)
        }
    }
    let r = rt
        .run(|ctx| {
            Ok(App {
                sender: ctx.lcore().index == 0,
                offered: 0,
                got: 0,
                max_over: i64::MIN,
            })
        })
        .unwrap();
    let (offered, _, max_over) = r.lcores[0].app;
    let (_, got, _) = r.lcores[1].app;
    let q = &r.lcores[0].queues[0];
    assert_eq!(offered, TOTAL);
    assert_eq!(q.counters.offered, TOTAL as u64);
    assert_eq!(
        q.counters.offered,
        got + q.counters.qdisc_drops + q.counters.busy_drops + q.counters.purged,
        "{:?}",
        q.counters
    );
    assert_eq!(q.counters.sent_packets, got);
    assert!(max_over <= 1514, "inflight exceeded limit by {max_over}");
    assert_eq!(r.lcores[1].rx_packets, got);
    assert!(r.lcores[1].queues.is_empty(), "lcore 1 owns no tx queue");
    assert_eq!(r.lcores[0].pool.in_use, 0, "every buffer came home");
}

#[test]
fn watchdog_events_are_reported_and_the_stalled_queue_recovers() {
    let reg = Registry::with_builtins();
    let port = reg
        .open("fault:stall=0.001,stall_ms=600000,seed=4+null")
        .unwrap();
    let mut setup = PortSetup::new(port, PortConfig::default());
    setup.txq.watchdog_timeout_ms = 30;
    let mut cfg = rt_config(vec![0]);
    cfg.stop.duration = Some(Duration::from_millis(400));
    let rt = Runtime::new(cfg, vec![setup]).unwrap();
    let report = rt
        .run(|_| {
            Ok(PollFn(|ctx: &mut LcoreCtx| {
                let mut b = Burst::new();
                if ctx.pool.alloc_bulk(&mut b, 32) {
                    for m in b.as_mut_slice() {
                        let _ = m.set_len(64);
                    }
                    ctx.xmit_burst(0, 0, &mut b);
                }
            }))
        })
        .unwrap();
    let l = &report.lcores[0];
    let c = &l.queues[0].counters;
    assert!(!l.tx_timeouts.is_empty(), "{:?}", l.events);
    assert_eq!(c.tx_timeouts, l.tx_timeouts.len() as u64);
    assert!(
        l.events.iter().any(|e| e.contains("tx_timeout")),
        "{:?}",
        l.events
    );
    // Traffic resumed after each reset: far more than one ring's worth sent.
    assert!(c.sent_packets > 10 * 1024, "{c:?}");
    assert_eq!(c.unaccounted(), 0);
    assert_eq!(l.pool.in_use, 0);
}

/// A pool that runs dry under load with cross-lcore frees: lcore 0 sends
/// from a 256-buffer pool over a ring pair; lcore 1 receives and keeps up
/// to 192 buffers at a time before freeing them (an appliance holding
/// packets), so lcore 0's pool runs dry again and again and its buffers
/// come home only through lcore 1's return ring. The sender never blocks (each
/// failed allocation is counted by the pool and skipped), the run ends,
/// every packet is received or in one drop counter, and every buffer is
/// home at the end.
#[test]
fn two_lcores_dry_pool_never_hangs_the_sender_and_every_buffer_returns_home() {
    const TOTAL: u64 = 200_000;
    let cores = if lcore::online_cores() >= 2 {
        vec![0, 1]
    } else {
        vec![0, 0]
    };
    let (a, b, mut conf) = ring_pair("rt-dry", 1, 1);
    conf.tx_ring_size = 128;
    conf.rx_ring_size = 128;
    let mut pa = PortSetup::new(a, conf.clone());
    pa.senders = Some(vec![0]);
    pa.rx_lcores = Some(vec![0]);
    let mut pb = PortSetup::new(b, conf);
    pb.xps = Some(vec![vec![0], vec![]]);
    pb.senders = Some(vec![]);
    pb.rx_lcores = Some(vec![1]);
    let mut cfg = rt_config(cores);
    cfg.pool.size = 256;
    cfg.stop.duration = Some(Duration::from_secs(20)); // safety net
    let rt = Runtime::new(cfg, vec![pa, pb]).unwrap();

    struct App {
        sender: bool,
        offered: u64,
        dry: u64,
        got: u64,
        held: Vec<Mbuf>,
    }
    impl LcoreApp for App {
        type Summary = (u64, u64, u64, MempoolStats);
        fn poll(&mut self, ctx: &mut LcoreCtx) {
            if !self.sender {
                if self.held.len() >= 192 {
                    self.held.clear(); // 192 remote frees into lcore 0's pool
                }
                return;
            }
            if self.offered < TOTAL {
                let mut b = Burst::new();
                if !ctx.pool.alloc_bulk(&mut b, 32) {
                    self.dry += 1;
                    return;
                }
                for m in b.as_mut_slice() {
                    m.set_len(60).unwrap();
                }
                self.offered += b.len() as u64;
                ctx.xmit_burst(0, 0, &mut b);
            } else if ctx.tx_queue(0, 0).is_idle() {
                ctx.request_stop_all();
            }
        }
        fn on_rx(&mut self, _ctx: &mut LcoreCtx, _port: u16, _q: u16, pkts: &mut Burst) {
            self.got += pkts.len() as u64;
            while let Some(m) = pkts.pop_front() {
                self.held.push(m);
            }
        }
        fn finish(mut self, ctx: &mut LcoreCtx) -> Self::Summary {
            self.held.clear();
            let end = std::time::Instant::now() + Duration::from_secs(5);
            while self.sender && ctx.pool.stats().in_use > 0 && std::time::Instant::now() < end {
                std::thread::yield_now();
            }
            (self.offered, self.dry, self.got, ctx.pool.stats())
        }
    }
    let t0 = std::time::Instant::now();
    let r = rt
        .run(|ctx| {
            Ok(App {
                sender: ctx.lcore().index == 0,
                offered: 0,
                dry: 0,
                got: 0,
                held: Vec::with_capacity(512),
            })
        })
        .unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "ended by the stop, not the safety net"
    );
    let (offered, dry, _, pool) = r.lcores[0].app;
    let (_, _, got, _) = r.lcores[1].app;
    let q = &r.lcores[0].queues[0].counters;
    assert_eq!(offered, TOTAL);
    assert!(dry > 0, "the pool ran dry");
    assert_eq!(pool.alloc_fails, dry, "each failed allocation counted once");
    assert_eq!(q.offered, offered);
    assert_eq!(q.offered, got + q.drops(), "{q:?}");
    assert_eq!(pool.in_use, 0, "every buffer came home: {pool:?}");
    assert_eq!(pool.available, 256);
    // Home through lcore 1's return ring: no lock taken on the way.
    assert!(pool.remote_frees >= got, "{pool:?}");
    assert_eq!(pool.locked_returns, 0, "{pool:?}");
}

#[path = "tests_stacked.rs"]
mod stacked_tests;
