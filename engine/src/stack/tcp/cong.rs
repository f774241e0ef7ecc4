//! Congestion control: the `tcp_congestion_ops` a socket selects with
//! `TCP_CONGESTION` — Reno (`tcp_reno_cong_avoid`, `tcp_reno_ssthresh`,
//! net/ipv4/tcp_cong.c) and CUBIC with HyStart (net/ipv4/tcp_cubic.c,
//! RFC 8312), Linux's default. Windows count segments, as in Linux.
//!
//! Time: "jiffies" here are milliseconds (`HZ` = 1000), RTT samples are µs.

/// `TCP_INFINITE_SSTHRESH`.
pub const TCP_INFINITE_SSTHRESH: u32 = 0x7fff_ffff;
/// `TCP_INIT_CWND` (RFC 6928).
pub const TCP_INIT_CWND: u32 = 10;
const HZ: u32 = 1000;

/// The algorithm (`TCP_CONGESTION` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongAlgo {
    Reno,
    #[default]
    Cubic,
}

impl CongAlgo {
    /// Looks an algorithm up by its Linux name (`tcp_ca_find`).
    pub fn from_name(n: &str) -> Option<CongAlgo> {
        match n {
            "reno" => Some(CongAlgo::Reno),
            "cubic" => Some(CongAlgo::Cubic),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            CongAlgo::Reno => "reno",
            CongAlgo::Cubic => "cubic",
        }
    }
}

/// The window state the algorithms act on (the `tcp_sock` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cwnd {
    pub cwnd: u32,
    pub ssthresh: u32,
    /// `snd_cwnd_cnt`: ACKed segments towards the next increase.
    pub cnt: u32,
    pub clamp: u32,
}

impl Default for Cwnd {
    fn default() -> Self {
        Cwnd {
            cwnd: TCP_INIT_CWND,
            ssthresh: TCP_INFINITE_SSTHRESH,
            cnt: 0,
            clamp: u32::MAX >> 1,
        }
    }
}

impl Cwnd {
    /// `tcp_in_slow_start`.
    #[inline]
    pub fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    /// Plays the part of `tcp_slow_start` (RFC 5681 §3.1 with RFC 3465
    /// byte counting in segments): cwnd grows by the segments ACKed, up to
    /// ssthresh; returns the ACKed segments left over for congestion
    /// avoidance.
    pub fn slow_start(&mut self, acked: u32) -> u32 {
        let cwnd = self.cwnd.saturating_add(acked).min(self.ssthresh);
        let used = cwnd - self.cwnd;
        self.cwnd = cwnd.min(self.clamp);
        acked - used
    }

    /// Plays the part of `tcp_cong_avoid_ai`: one segment per `w` ACKed
    /// segments (w = cwnd is RFC 5681's +1 MSS per RTT).
    pub fn cong_avoid_ai(&mut self, w: u32, acked: u32) {
        let w = w.max(1);
        if self.cnt >= w {
            self.cnt = 0;
            self.cwnd += 1;
        }
        self.cnt += acked;
        if self.cnt >= w {
            let delta = self.cnt / w;
            self.cnt -= delta * w;
            self.cwnd += delta;
        }
        self.cwnd = self.cwnd.min(self.clamp);
    }
}

/// One socket's congestion control (`icsk_ca_ops` + `icsk_ca_priv`).
#[derive(Debug, Clone)]
pub struct CongControl {
    pub algo: CongAlgo,
    cubic: Bictcp,
    /// HyStart exits seen (TcpExt TCPHystartTrainDetect, TCPHystartDelayDetect).
    pub hystart_train: u64,
    pub hystart_delay: u64,
}

impl CongControl {
    /// Plays the part of `tcp_init_congestion_control` → `.init`
    /// (`cubictcp_init`: reset + HyStart reset).
    pub fn new(algo: CongAlgo, now_us: u32, snd_nxt: u32) -> CongControl {
        let mut c = CongControl {
            algo,
            cubic: Bictcp::default(),
            hystart_train: 0,
            hystart_delay: 0,
        };
        c.cubic.hystart_reset(now_us, snd_nxt);
        c
    }

    /// `.ssthresh`: the slow-start threshold after a loss.
    pub fn ssthresh(&mut self, w: &Cwnd) -> u32 {
        match self.algo {
            // tcp_reno_ssthresh: half the window, at least 2.
            CongAlgo::Reno => (w.cwnd >> 1).max(2),
            CongAlgo::Cubic => self.cubic.recalc_ssthresh(w.cwnd),
        }
    }

    /// `.cong_avoid`, called for an ACK that advanced snd_una by `acked`
    /// segments when the flow is cwnd-limited (`tcp_cong_avoid`).
    /// `now_ms` is the jiffies clock, `now_us` the µs clock.
    #[allow(clippy::too_many_arguments)]
    pub fn cong_avoid(
        &mut self,
        w: &mut Cwnd,
        ack: u32,
        acked: u32,
        cwnd_limited: bool,
        now_ms: u32,
        now_us: u32,
        snd_nxt: u32,
    ) {
        if !cwnd_limited {
            return;
        }
        match self.algo {
            CongAlgo::Reno => {
                // tcp_reno_cong_avoid.
                let mut acked = acked;
                if w.in_slow_start() {
                    acked = w.slow_start(acked);
                    if acked == 0 {
                        return;
                    }
                }
                let cw = w.cwnd;
                w.cong_avoid_ai(cw, acked);
            }
            CongAlgo::Cubic => {
                // cubictcp_cong_avoid.
                let mut acked = acked;
                if w.in_slow_start() {
                    if super::wire::after(ack, self.cubic.end_seq) {
                        self.cubic.hystart_reset(now_us, snd_nxt);
                    }
                    acked = w.slow_start(acked);
                    if acked == 0 {
                        return;
                    }
                }
                self.cubic.update(w.cwnd, acked, now_ms);
                let cnt = self.cubic.cnt;
                w.cong_avoid_ai(cnt, acked);
            }
        }
    }

    /// `.pkts_acked` with an RTT sample (µs): CUBIC's `cubictcp_acked`
    /// (delay_min, HyStart).
    pub fn pkts_acked(&mut self, w: &mut Cwnd, rtt_us: u32, now_ms: u32, now_us: u32) {
        if self.algo != CongAlgo::Cubic {
            return;
        }
        let ca = &mut self.cubic;
        // Discard delay samples right after fast recovery.
        if ca.epoch_start != 0 && (now_ms.wrapping_sub(ca.epoch_start) as i32) < HZ as i32 {
            return;
        }
        let delay = rtt_us.max(1);
        if ca.delay_min == 0 || ca.delay_min > delay {
            ca.delay_min = delay;
        }
        if ca.found == 0 && w.in_slow_start() && w.cwnd >= HYSTART_LOW_WINDOW {
            match ca.hystart_update(delay, now_us) {
                Some(Hystart::Train) => {
                    self.hystart_train += 1;
                    w.ssthresh = w.cwnd;
                }
                Some(Hystart::Delay) => {
                    self.hystart_delay += 1;
                    w.ssthresh = w.cwnd;
                }
                None => {}
            }
        }
    }

    /// `.set_state(TCP_CA_Loss)` (an RTO): CUBIC forgets its epoch and
    /// HyStart round (`cubictcp_state`).
    pub fn on_loss_state(&mut self, now_us: u32, snd_nxt: u32) {
        if self.algo == CongAlgo::Cubic {
            self.cubic.reset();
            self.cubic.hystart_reset(now_us, snd_nxt);
        }
    }

    /// The CUBIC state for inspection (tests, TCP_INFO-like output).
    pub fn cubic_state(&self) -> (u32, u32, u32) {
        (
            self.cubic.last_max_cwnd,
            self.cubic.bic_k,
            self.cubic.delay_min,
        )
    }
}

// tcp_cubic.c parameters (module defaults).
const BICTCP_BETA_SCALE: u32 = 1024;
const BICTCP_HZ: u32 = 10;
const BETA: u32 = 717;
const BIC_SCALE: u64 = 41;
const HYSTART_MIN_SAMPLES: u8 = 8;
const HYSTART_DELAY_MIN: u32 = 4000;
const HYSTART_DELAY_MAX: u32 = 16000;
const HYSTART_LOW_WINDOW: u32 = 16;
const HYSTART_ACK_DELTA_US: u32 = 2000;

/// `beta_scale = 8*(BICTCP_BETA_SCALE+beta) / 3 / (BICTCP_BETA_SCALE - beta)`.
const BETA_SCALE: u32 = 8 * (BICTCP_BETA_SCALE + BETA) / 3 / (BICTCP_BETA_SCALE - BETA);
/// `cube_rtt_scale = bic_scale * 10` (1024·C/RTT with RTT = 100 ms).
const CUBE_RTT_SCALE: u64 = BIC_SCALE * 10;
/// `cube_factor = 2^(10+3*BICTCP_HZ) / (bic_scale * 10)`.
const CUBE_FACTOR: u64 = (1u64 << (10 + 3 * BICTCP_HZ)) / (BIC_SCALE * 10);

enum Hystart {
    Train,
    Delay,
}

/// `struct bictcp`.
#[derive(Debug, Clone, Default)]
struct Bictcp {
    cnt: u32,
    last_max_cwnd: u32,
    last_cwnd: u32,
    last_time: u32,
    bic_origin_point: u32,
    bic_k: u32,
    delay_min: u32,
    epoch_start: u32,
    ack_cnt: u32,
    tcp_cwnd: u32,
    found: u8,
    sample_cnt: u8,
    round_start: u32,
    end_seq: u32,
    last_ack: u32,
    curr_rtt: u32,
}

impl Bictcp {
    /// `bictcp_reset`.
    fn reset(&mut self) {
        let keep = (self.round_start, self.end_seq, self.last_ack, self.curr_rtt);
        *self = Bictcp::default();
        (self.round_start, self.end_seq, self.last_ack, self.curr_rtt) = keep;
    }

    /// `bictcp_hystart_reset`: a new HyStart round starts at snd_nxt.
    fn hystart_reset(&mut self, now_us: u32, snd_nxt: u32) {
        self.round_start = now_us;
        self.last_ack = now_us;
        self.end_seq = snd_nxt;
        self.curr_rtt = u32::MAX;
        self.sample_cnt = 0;
    }

    /// `cubictcp_recalc_ssthresh` (fast convergence, β = 717/1024).
    fn recalc_ssthresh(&mut self, cwnd: u32) -> u32 {
        self.epoch_start = 0;
        self.last_max_cwnd = if cwnd < self.last_max_cwnd {
            (cwnd * (BICTCP_BETA_SCALE + BETA)) / (2 * BICTCP_BETA_SCALE)
        } else {
            cwnd
        };
        ((cwnd * BETA) / BICTCP_BETA_SCALE).max(2)
    }

    /// `bictcp_update`: the CUBIC window W(t) = C(t-K)^3 + W_max
    /// (RFC 8312 §4.1) as `cnt` (ACKed segments per +1), with the
    /// TCP-friendly region (§4.2) and Linux's growth cap (cnt ≥ 2).
    fn update(&mut self, cwnd: u32, acked: u32, now_ms: u32) {
        self.ack_cnt = self.ack_cnt.wrapping_add(acked);
        let skip_cubic = if self.last_cwnd == cwnd
            && (now_ms.wrapping_sub(self.last_time) as i32) <= (HZ / 32) as i32
        {
            return;
        } else {
            // The CUBIC function updates cnt at most once per jiffy.
            self.epoch_start != 0 && now_ms == self.last_time
        };
        if !skip_cubic {
            self.last_cwnd = cwnd;
            self.last_time = now_ms;
            if self.epoch_start == 0 {
                self.epoch_start = now_ms.max(1);
                self.ack_cnt = acked;
                self.tcp_cwnd = cwnd;
                if self.last_max_cwnd <= cwnd {
                    self.bic_k = 0;
                    self.bic_origin_point = cwnd;
                } else {
                    self.bic_k = cubic_root(CUBE_FACTOR * (self.last_max_cwnd - cwnd) as u64);
                    self.bic_origin_point = self.last_max_cwnd;
                }
            }
            // t = (now - epoch_start + delay_min) in 2^-10 s.
            let mut t = now_ms.wrapping_sub(self.epoch_start) as i32 as i64 as u64;
            t += (self.delay_min as u64).div_ceil(1000); // usecs_to_jiffies
            t = (t << BICTCP_HZ) / HZ as u64;
            let k = self.bic_k as u64;
            let offs = t.abs_diff(k);
            let delta = ((CUBE_RTT_SCALE * offs * offs * offs) >> (10 + 3 * BICTCP_HZ)) as u32;
            let target = if t < k {
                self.bic_origin_point.saturating_sub(delta)
            } else {
                self.bic_origin_point.saturating_add(delta)
            };
            self.cnt = if target > cwnd {
                cwnd / (target - cwnd)
            } else {
                100 * cwnd
            };
            // Unknown bandwidth: grow at least 5% per RTT.
            if self.last_max_cwnd == 0 && self.cnt > 20 {
                self.cnt = 20;
            }
        }
        // TCP friendliness.
        let delta = (cwnd * BETA_SCALE) >> 3;
        if delta > 0 {
            while self.ack_cnt > delta {
                self.ack_cnt -= delta;
                self.tcp_cwnd += 1;
            }
        }
        if self.tcp_cwnd > cwnd {
            let max_cnt = cwnd / (self.tcp_cwnd - cwnd);
            if self.cnt > max_cnt {
                self.cnt = max_cnt;
            }
        }
        // At most 1 segment per 2 ACKed: 1.5x per RTT.
        self.cnt = self.cnt.max(2);
    }

    /// `hystart_update`: ACK-train and delay-increase detection.
    fn hystart_update(&mut self, delay: u32, now_us: u32) -> Option<Hystart> {
        // ACK train: ACKs closely spaced for more than delay_min/2.
        if (now_us.wrapping_sub(self.last_ack) as i32) <= HYSTART_ACK_DELTA_US as i32 {
            self.last_ack = now_us;
            let threshold = self.delay_min >> 1; // no pacing: half of delay_min
            if (now_us.wrapping_sub(self.round_start) as i32) > threshold as i32 {
                self.found = 1;
                return Some(Hystart::Train);
            }
        }
        // Delay increase over the round's first samples.
        if self.curr_rtt > delay {
            self.curr_rtt = delay;
        }
        if self.sample_cnt < HYSTART_MIN_SAMPLES {
            self.sample_cnt += 1;
        } else if self.curr_rtt
            > self.delay_min + (self.delay_min >> 3).clamp(HYSTART_DELAY_MIN, HYSTART_DELAY_MAX)
        {
            self.found = 1;
            return Some(Hystart::Delay);
        }
        None
    }
}

/// Cube root by table lookup and one Newton-Raphson step (`cubic_root`,
/// average error ~0.2%).
fn cubic_root(a: u64) -> u32 {
    const V: [u8; 64] = [
        0, 54, 54, 54, 118, 118, 118, 118, 123, 129, 134, 138, 143, 147, 151, 156, 157, 161, 164,
        168, 170, 173, 176, 179, 181, 185, 187, 190, 192, 194, 197, 199, 200, 202, 204, 206, 209,
        211, 213, 215, 217, 219, 221, 222, 224, 225, 227, 229, 231, 232, 234, 236, 237, 239, 240,
        242, 244, 245, 246, 248, 250, 251, 252, 254,
    ];
    let b = 64 - a.leading_zeros(); // fls64
    if b < 7 {
        return (V[a as usize] as u32 + 35) >> 6;
    }
    let b = ((b * 84) >> 8) - 1;
    let shift = (a >> (b * 3)) as usize;
    let x = ((V[shift] as u32 + 10) << b) >> 6;
    let x = 2 * x as u64 + a / (x as u64 * (x as u64 - 1));
    ((x * 341) >> 10) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubic_root_is_close() {
        for &(a, r) in &[
            (27u64, 3u32),
            (1000, 10),
            (1 << 30, 1024),
            (123_456_789, 497),
        ] {
            let got = cubic_root(a);
            assert!(
                got.abs_diff(r) <= r / 50 + 1,
                "cbrt({a}) = {got}, want ~{r}"
            );
        }
    }

    /// RFC 5681 §3.1 by hand: cwnd 10 in slow start with 5 ACKs of 2
    /// segments each goes to 20; then with ssthresh 20, congestion avoidance
    /// takes 20 ACKed segments for +1.
    #[test]
    fn reno_slow_start_then_additive_increase() {
        let mut cc = CongControl::new(CongAlgo::Reno, 0, 0);
        let mut w = Cwnd {
            ssthresh: 20,
            ..Cwnd::default()
        };
        for _ in 0..5 {
            cc.cong_avoid(&mut w, 1, 2, true, 0, 0, 0);
        }
        assert_eq!(w.cwnd, 20);
        assert!(!w.in_slow_start());
        for i in 0..19 {
            cc.cong_avoid(&mut w, 1, 1, true, 0, 0, 0);
            assert_eq!(w.cwnd, 20, "after {} more", i + 1);
        }
        cc.cong_avoid(&mut w, 1, 1, true, 0, 0, 0);
        assert_eq!(w.cwnd, 21);
        // A slow-start ACK that crosses ssthresh spills into CA.
        let mut w = Cwnd {
            cwnd: 18,
            ssthresh: 20,
            ..Cwnd::default()
        };
        cc.cong_avoid(&mut w, 1, 4, true, 0, 0, 0);
        assert_eq!((w.cwnd, w.cnt), (20, 2));
        // Not cwnd-limited: no growth.
        cc.cong_avoid(&mut w, 1, 4, false, 0, 0, 0);
        assert_eq!(w.cwnd, 20);
        // Loss: half.
        assert_eq!(cc.ssthresh(&w), 10);
        assert_eq!(cc.ssthresh(&Cwnd { cwnd: 3, ..w }), 2);
    }

    /// RFC 8312 §4.5/§4.6 with Linux's β = 717/1024 and fast convergence:
    /// a loss at cwnd 100 gives ssthresh 70 and W_max 100; a second loss at
    /// 80 < W_max gives W_max = 80·(1024+717)/2048 = 68 and ssthresh 56.
    #[test]
    fn cubic_multiplicative_decrease_and_fast_convergence() {
        let mut cc = CongControl::new(CongAlgo::Cubic, 0, 0);
        let w = Cwnd {
            cwnd: 100,
            ..Cwnd::default()
        };
        assert_eq!(cc.ssthresh(&w), 70);
        assert_eq!(cc.cubic_state().0, 100);
        assert_eq!(cc.ssthresh(&Cwnd { cwnd: 80, ..w }), 56);
        assert_eq!(cc.cubic_state().0, 68);
    }

    /// After a loss at W_max = 100 and cwnd 70, K = cbrt(W_max·(1-β)/C) =
    /// cbrt(30/0.4) ≈ 4.2 s (RFC 8312 eq. 2), in 2^-10 s units ≈ 4305;
    /// the window grows concavely toward W_max: slowly near K, reaching
    /// W_max around t = K and growing past it afterwards.
    #[test]
    fn cubic_window_follows_the_cubic_curve() {
        let mut cc = CongControl::new(CongAlgo::Cubic, 0, 0);
        let mut w = Cwnd {
            cwnd: 100,
            ..Cwnd::default()
        };
        w.ssthresh = cc.ssthresh(&w);
        w.cwnd = w.ssthresh;
        // Feed one window of ACKs every 100 ms (RTT 100 ms) for 8 s.
        let mut at_k = 0;
        for step in 1..=80u32 {
            let now = 1000 + step * 100;
            let acks = w.cwnd;
            for _ in 0..acks {
                cc.cong_avoid(&mut w, 1, 1, true, now, now * 1000, 0);
            }
            if step == 42 {
                at_k = w.cwnd;
            }
        }
        let k = cc.cubic_state().1;
        assert!((4200..=4420).contains(&k), "K = {k} (2^-10 s)");
        assert!((90..=104).contains(&at_k), "cwnd near t = K: {at_k}");
        assert!(w.cwnd > 110, "convex growth past W_max: {}", w.cwnd);
    }

    /// HyStart's delay detection (tcp_cubic.c): with delay_min 10 ms, the
    /// threshold is delay_min + clamp(delay_min/8, 4 ms, 16 ms) = 14 ms; 8
    /// samples of a round are taken first, then an RTT of 15 ms exits slow
    /// start at the current window.
    #[test]
    fn hystart_delay_exits_slow_start() {
        let mut cc = CongControl::new(CongAlgo::Cubic, 0, 0);
        let mut w = Cwnd::default();
        // An earlier round (cwnd below hystart_low_window) set delay_min.
        let mut now_us = 5_000_000u32;
        cc.pkts_acked(&mut w, 10_000, 5000, now_us);
        w.cwnd = 32;
        cc.cubic.hystart_reset(now_us, 0);
        for _ in 0..8 {
            now_us += 5000;
            cc.pkts_acked(&mut w, 15_000, now_us / 1000, now_us);
        }
        assert!(w.in_slow_start());
        now_us += 5000;
        cc.pkts_acked(&mut w, 15_000, now_us / 1000, now_us);
        assert_eq!(w.ssthresh, 32);
        assert_eq!(cc.hystart_delay, 1);
    }

    #[test]
    fn algo_names() {
        assert_eq!(CongAlgo::from_name("cubic"), Some(CongAlgo::Cubic));
        assert_eq!(CongAlgo::from_name("reno"), Some(CongAlgo::Reno));
        assert_eq!(CongAlgo::from_name("bbr"), None);
    }
}
