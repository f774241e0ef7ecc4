//! What the control socket (`--control`) tells a running stream: run,
//! pause, stop or start now, and its rate. One [`StreamGate`] per stream,
//! written by the control thread and read by every sender of the stream
//! once per send round, as a sequence lock over plain atomics (the
//! `seqcount_t` read side: `read_seqcount_begin`/`read_seqcount_retry`): a
//! sender loads the sequence once, and only when it moved does it read the
//! rest. Nothing here is touched per packet, and the lcores never write.

use crate::config::Rate;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

/// What a stream was told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Send (the default).
    Run,
    /// Hold: send nothing, keep no credit; `resume` goes on where it was.
    Pause,
    /// End the stream now, as if its count or duration were reached (a
    /// chained `after` stream starts).
    Stop,
}

/// One consistent read of a gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateState {
    pub command: Command,
    /// Start now if the stream waits (its `start_delay`, its `after`).
    pub start_now: bool,
    /// The rate the control socket set (None: the config's, or its profile).
    pub rate: Option<Rate>,
}

/// A stream's shared control state.
#[derive(Debug, Default)]
pub struct StreamGate {
    /// Even when stable; odd while the writer changes the fields.
    seq: AtomicU64,
    command: AtomicU8,
    start_now: AtomicBool,
    /// 0 none, 1 line, 2 pps, 3 bit/s L2, 4 bit/s L1, 5 percent.
    rate_kind: AtomicU8,
    rate_value: AtomicU64,
    /// Writers (the control thread's requests) one at a time.
    writer: Mutex<()>,
}

impl StreamGate {
    /// The sequence a sender compares with the one it last applied: one
    /// plain load per round.
    #[inline(always)]
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// The state as of sequence `seq` (from [`StreamGate::seq`]), or None
    /// when a write is under way or came in between (try next round).
    pub fn read(&self, seq: u64) -> Option<GateState> {
        if seq & 1 == 1 {
            return None;
        }
        let command = match self.command.load(Ordering::Relaxed) {
            1 => Command::Pause,
            2 => Command::Stop,
            _ => Command::Run,
        };
        let start_now = self.start_now.load(Ordering::Relaxed);
        let v = f64::from_bits(self.rate_value.load(Ordering::Relaxed));
        let rate = match self.rate_kind.load(Ordering::Relaxed) {
            1 => Some(Rate::Line),
            2 => Some(Rate::Pps(v)),
            3 => Some(Rate::Bps { bps: v, l1: false }),
            4 => Some(Rate::Bps { bps: v, l1: true }),
            5 => Some(Rate::Percent(v)),
            _ => None,
        };
        fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == seq).then_some(GateState {
            command,
            start_now,
            rate,
        })
    }

    /// Changes the state (control thread): `f` edits the current one.
    pub fn update(&self, f: impl FnOnce(&mut GateState)) -> GateState {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let s0 = self.seq.load(Ordering::Relaxed);
        let mut st = self.read(s0).unwrap_or(GateState {
            command: Command::Run,
            start_now: false,
            rate: None,
        });
        f(&mut st);
        self.seq.store(s0 + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        self.command.store(
            match st.command {
                Command::Run => 0,
                Command::Pause => 1,
                Command::Stop => 2,
            },
            Ordering::Relaxed,
        );
        self.start_now.store(st.start_now, Ordering::Relaxed);
        let (k, v) = match st.rate {
            None => (0, 0.0),
            Some(Rate::Line) => (1, 0.0),
            Some(Rate::Pps(p)) => (2, p),
            Some(Rate::Bps { bps, l1: false }) => (3, bps),
            Some(Rate::Bps { bps, l1: true }) => (4, bps),
            Some(Rate::Percent(p)) => (5, p),
        };
        self.rate_kind.store(k, Ordering::Relaxed);
        self.rate_value.store(v.to_bits(), Ordering::Relaxed);
        self.seq.store(s0 + 2, Ordering::Release);
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_sees_each_change_once_and_whole() {
        let g = StreamGate::default();
        let s0 = g.seq();
        assert_eq!(g.read(s0).unwrap().command, Command::Run);
        g.update(|s| s.rate = Some(Rate::Pps(5000.0)));
        let s1 = g.seq();
        assert_ne!(s0, s1, "a change moves the sequence");
        let st = g.read(s1).unwrap();
        assert_eq!(st.rate, Some(Rate::Pps(5000.0)));
        assert_eq!(st.command, Command::Run);
        g.update(|s| s.command = Command::Pause);
        let st = g.read(g.seq()).unwrap();
        assert_eq!(st.command, Command::Pause);
        assert_eq!(st.rate, Some(Rate::Pps(5000.0)), "the rate is kept");
        assert!(g.read(s1).is_none(), "a stale sequence reads nothing");
        assert!(
            g.read(s1 + 1).is_none(),
            "an odd sequence is a write under way"
        );
    }
}
