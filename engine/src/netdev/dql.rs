//! Dynamic queue limits: the algorithm behind BQL (Linux
//! `lib/dynamic_queue_limits.c`, `include/linux/dynamic_queue_limits.h`).
//!
//! A DQL sits between a producer (the qdisc feeding a TX ring) and a consumer
//! (the NIC, whose progress is reported by TX completions). It lets the
//! producer put at most `limit` bytes in flight and tunes `limit` from what the
//! completions show:
//!
//! * **Starvation → grow.** If at a completion the queue was over its limit and
//!   everything queued has completed (the NIC ran dry while the stack was held
//!   back), or it was over the limit in the previous interval and all of that
//!   interval's data has now completed, the limit grows by the bytes both queued
//!   and completed in the last interval plus the previous over-limit amount.
//! * **Persistent slack → shrink.** If the queue stayed busy through the whole
//!   interval, the excess ("slack": limit plus previous over-limit minus twice
//!   the bytes completed, or the non-over-limit part of the last queued object)
//!   is measured; the minimum slack seen over `hold_time` is taken off the limit.
//! * The limit is always kept within `[limit_min, limit_max]`.
//!
//! Counters are `u32` and wrap, as in Linux; comparisons are made on the signed
//! difference, so the algorithm is exact across wrap-around. Time is the TSC
//! (cycles), passed in by the caller, so traces can be replayed exactly.

use serde::Serialize;

/// Largest object (packet, in bytes) a single `queued` call may account.
pub const DQL_MAX_OBJECT: u32 = u32::MAX / 16;
/// Largest limit (Linux's `DQL_MAX_LIMIT`, the sysfs `limit_max` default: 1879048192).
pub const DQL_MAX_LIMIT: u32 = (u32::MAX / 2) - DQL_MAX_OBJECT;

/// `a - b` when positive in wrapping (signed-difference) terms, else 0.
#[inline(always)]
fn posdiff(a: u32, b: u32) -> u32 {
    let d = a.wrapping_sub(b);
    if (d as i32) > 0 {
        d
    } else {
        0
    }
}

/// `a` is at or after `b` in wrapping terms.
#[inline(always)]
fn after_eq(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// Errors from DQL/BQL tuning.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DqlError {
    #[error("bql: {key} = {value} is out of range (0..={max}); pick a smaller value")]
    TooLarge {
        key: &'static str,
        value: u64,
        max: u64,
    },
    #[error("bql: limit_min ({min}) is above limit_max ({max}); set limit_min <= limit_max")]
    MinAboveMax { min: u32, max: u32 },
}

/// One dynamic queue limit (Linux `struct dql`).
#[derive(Debug, Clone)]
pub struct Dql {
    // Enqueue side (`dql_queued`, `dql_avail`).
    /// Total bytes ever queued (wraps).
    num_queued: u32,
    /// `limit + num_completed`: `avail = adj_limit - num_queued`.
    adj_limit: u32,
    /// Size of the last queued object.
    last_obj_cnt: u32,

    // Completion side (`dql_completed`).
    limit: u32,
    /// Total bytes ever completed (wraps).
    num_completed: u32,
    prev_ovlimit: u32,
    prev_num_queued: u32,
    prev_last_obj_cnt: u32,
    lowest_slack: u32,
    slack_start_time: u64,

    // Configuration.
    max_limit: u32,
    min_limit: u32,
    slack_hold_time: u64,
}

impl Dql {
    /// Plays the part of `dql_init`: limits `[0, DQL_MAX_LIMIT]`, the given
    /// hold time (cycles), then a reset at time `now`.
    pub fn new(hold_time_cycles: u64, now: u64) -> Dql {
        let mut d = Dql {
            num_queued: 0,
            adj_limit: 0,
            last_obj_cnt: 0,
            limit: 0,
            num_completed: 0,
            prev_ovlimit: 0,
            prev_num_queued: 0,
            prev_last_obj_cnt: 0,
            lowest_slack: u32::MAX,
            slack_start_time: now,
            max_limit: DQL_MAX_LIMIT,
            min_limit: 0,
            slack_hold_time: hold_time_cycles,
        };
        d.reset(now);
        d
    }

    /// Plays the part of `dql_reset`: forgets all history; the limit restarts
    /// at `limit_min`.
    pub fn reset(&mut self, now: u64) {
        self.limit = self.min_limit;
        self.num_queued = 0;
        self.num_completed = 0;
        self.last_obj_cnt = 0;
        self.prev_num_queued = 0;
        self.prev_last_obj_cnt = 0;
        self.prev_ovlimit = 0;
        self.lowest_slack = u32::MAX;
        self.slack_start_time = now;
        self.adj_limit = self.limit;
    }

    /// Plays the part of `dql_queued`: `bytes` more are in flight.
    #[inline(always)]
    pub fn queued(&mut self, bytes: u32) {
        debug_assert!(bytes <= DQL_MAX_OBJECT);
        self.last_obj_cnt = bytes;
        self.num_queued = self.num_queued.wrapping_add(bytes);
    }

    /// Plays the part of `dql_avail`: bytes that may still be queued before the
    /// limit is reached (negative when over it).
    #[inline(always)]
    pub fn avail(&self) -> i64 {
        self.adj_limit.wrapping_sub(self.num_queued) as i32 as i64
    }

    /// Bytes queued and not yet completed (sysfs `inflight`).
    #[inline(always)]
    pub fn inflight(&self) -> u32 {
        self.num_queued.wrapping_sub(self.num_completed)
    }

    /// The current limit (sysfs `limit`).
    pub fn limit(&self) -> u32 {
        self.limit
    }
    pub fn limit_min(&self) -> u32 {
        self.min_limit
    }
    pub fn limit_max(&self) -> u32 {
        self.max_limit
    }
    /// Hold time in cycles.
    pub fn hold_time(&self) -> u64 {
        self.slack_hold_time
    }

    /// Sets `limit_min`/`limit_max` (sysfs writes) and pulls the current limit
    /// into the new range.
    pub fn set_limits(&mut self, min: u32, max: u32) -> Result<(), DqlError> {
        for (key, v) in [("limit_min", min), ("limit_max", max)] {
            if v > DQL_MAX_LIMIT {
                return Err(DqlError::TooLarge {
                    key,
                    value: v as u64,
                    max: DQL_MAX_LIMIT as u64,
                });
            }
        }
        if min > max {
            return Err(DqlError::MinAboveMax { min, max });
        }
        self.min_limit = min;
        self.max_limit = max;
        self.limit = self.limit.clamp(min, max);
        self.adj_limit = self.limit.wrapping_add(self.num_completed);
        Ok(())
    }

    /// Sets the hold time (cycles) over which the minimum slack is taken.
    pub fn set_hold_time(&mut self, cycles: u64) {
        self.slack_hold_time = cycles;
    }

    /// Plays the part of `dql_completed`: `count` bytes completed at time
    /// `now`; re-tunes the limit. A count larger than what is in flight (a
    /// driver bug) is clamped to the in-flight bytes; the clamped count is
    /// returned.
    pub fn completed(&mut self, count: u32, now: u64) -> u32 {
        let num_queued = self.num_queued;
        let count = count.min(num_queued.wrapping_sub(self.num_completed));

        let completed = self.num_completed.wrapping_add(count);
        let mut limit = self.limit;
        let mut ovlimit = posdiff(num_queued.wrapping_sub(self.num_completed), limit);
        let inprogress = num_queued.wrapping_sub(completed);
        let prev_inprogress = self.prev_num_queued.wrapping_sub(self.num_completed);
        let all_prev_completed = after_eq(completed, self.prev_num_queued);

        if (ovlimit != 0 && inprogress == 0) || (self.prev_ovlimit != 0 && all_prev_completed) {
            // Starved: the device ran out of work while we were holding back.
            // Grow by what was both queued and completed in the last
            // interval, plus the previous over-limit.
            limit = limit
                .wrapping_add(posdiff(completed, self.prev_num_queued))
                .wrapping_add(self.prev_ovlimit);
            self.slack_start_time = now;
            self.lowest_slack = u32::MAX;
        } else if inprogress != 0 && prev_inprogress != 0 && !all_prev_completed {
            // Busy for the whole interval: measure the excess.
            let slack = posdiff(limit.wrapping_add(self.prev_ovlimit), count.wrapping_mul(2));
            let slack_last_objs = if self.prev_ovlimit != 0 {
                posdiff(self.prev_last_obj_cnt, self.prev_ovlimit)
            } else {
                0
            };
            let slack = slack.max(slack_last_objs);
            if slack < self.lowest_slack {
                self.lowest_slack = slack;
            }
            let deadline = self.slack_start_time.wrapping_add(self.slack_hold_time);
            if (now.wrapping_sub(deadline) as i64) > 0 {
                limit = posdiff(limit, self.lowest_slack);
                self.slack_start_time = now;
                self.lowest_slack = u32::MAX;
            }
        }

        let limit = limit.clamp(self.min_limit, self.max_limit);
        if limit != self.limit {
            self.limit = limit;
            ovlimit = 0;
        }
        self.adj_limit = limit.wrapping_add(completed);
        self.prev_ovlimit = ovlimit;
        self.prev_last_obj_cnt = self.last_obj_cnt;
        self.num_completed = completed;
        self.prev_num_queued = num_queued;
        count
    }

    #[cfg(test)]
    fn set_counters_for_test(&mut self, base: u32) {
        self.num_queued = base;
        self.num_completed = base;
        self.prev_num_queued = base;
        self.adj_limit = self.limit.wrapping_add(base);
    }
}

/// The `byte_queue_limits` view of one TX queue (like
/// `/sys/class/net/DEV/queues/tx-N/byte_queue_limits/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct BqlView {
    /// False when BQL is turned off for the port (only ring space limits).
    pub enabled: bool,
    pub limit: u32,
    pub inflight: u32,
    pub limit_min: u32,
    pub limit_max: u32,
    /// Milliseconds, as sysfs shows it.
    pub hold_time_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLD: u64 = 1000;

    /// Limit 0 → 1000 → 2500 by starvation, then a busy interval with slack
    /// 1500 held past hold_time shrinks it to 1000 (numbers worked by hand in
    /// the comments).
    #[test]
    fn grows_on_starvation_and_shrinks_by_min_slack_after_hold_time() {
        let mut d = Dql::new(HOLD, 0);
        assert_eq!((d.limit(), d.avail()), (0, 0));

        // queued 1000 → avail -1000. completed 1000: ovlimit = 1000, nothing
        // in progress → starved: limit += (1000 - 0) + 0.
        d.queued(1000);
        assert_eq!(d.avail(), -1000);
        d.completed(1000, 10);
        assert_eq!(d.limit(), 1000);
        assert_eq!(d.avail(), 1000);

        // 3 x 500 → num_queued 2500, avail -500. completed 1500: ovlimit =
        // 1500 - 1000 = 500, drained → limit += (2500 - 1000) + 0 = 2500.
        for _ in 0..3 {
            d.queued(500);
        }
        assert_eq!(d.avail(), -500);
        d.completed(1500, 20);
        assert_eq!(d.limit(), 2500);
        assert_eq!(d.avail(), 2500);

        // 5 x 500 queued (avail exactly 0). completed 1000: not over limit,
        // previous interval had nothing in progress → no change.
        for _ in 0..5 {
            d.queued(500);
        }
        assert_eq!(d.avail(), 0);
        d.completed(1000, 30);
        assert_eq!(d.limit(), 2500);
        assert_eq!(d.inflight(), 1500);
        assert_eq!(d.avail(), 1000);

        // One more 500. completed 500: busy all interval; slack = 2500 - 2*500
        // = 1500 → lowest_slack 1500; hold time (20 + 1000) not passed.
        d.queued(500);
        d.completed(500, 40);
        assert_eq!(d.limit(), 2500, "no shrink before hold_time");

        // completed 500 at t=1100 (> 1020): slack again 1500, hold time
        // passed → limit = 2500 - 1500 = 1000; avail = 1000 + 4500 - 5500.
        d.completed(500, 1100);
        assert_eq!(d.limit(), 1000);
        assert_eq!(d.inflight(), 1000);
        assert_eq!(d.avail(), 0);
    }

    /// The second starvation case: over limit in the previous interval and
    /// everything of that interval now completed.
    #[test]
    fn previous_overlimit_with_all_completed_counts_as_starvation() {
        let mut d = Dql::new(HOLD, 0);
        d.queued(1000);
        d.completed(1000, 10); // limit 1000 (as above)
        for _ in 0..4 {
            d.queued(500);
        }
        assert_eq!(d.avail(), -1000);
        // completed 1000: ovlimit = 2000 - 1000 = 1000 but 1000 still in
        // progress; previous interval had none in progress → no change, and
        // prev_ovlimit becomes 1000.
        d.completed(1000, 20);
        assert_eq!(d.limit(), 1000);
        assert_eq!(d.avail(), 0);
        d.queued(500);
        // completed 1000 reaches prev_num_queued (3000) exactly → starved:
        // limit += posdiff(3000, 3000) + prev_ovlimit 1000 = 2000.
        d.completed(1000, 30);
        assert_eq!(d.limit(), 2000);
        assert_eq!(d.inflight(), 500);
        assert_eq!(d.avail(), 1500);
    }

    #[test]
    fn limit_stays_within_min_and_max() {
        let mut d = Dql::new(HOLD, 0);
        d.set_limits(1500, 2000).unwrap();
        assert_eq!(d.limit(), 1500, "limit pulled up to limit_min");
        assert_eq!(d.avail(), 1500);
        // Starve it hard: limit would be 1500 + 5000, clamped to 2000.
        for _ in 0..10 {
            d.queued(650);
        }
        d.completed(6500, 10);
        assert_eq!(d.limit(), 2000);
        // Same shrink scenario as above but floor at 1500: busy intervals with
        // slack 2000 - 2*100 = 1800 → limit would be 200, clamped to 1500.
        for _ in 0..20 {
            d.queued(100);
        }
        d.completed(100, 20);
        d.completed(100, 30);
        d.completed(100, 2000);
        assert_eq!(d.limit(), 1500);
        assert_eq!(
            d.set_limits(10, 5),
            Err(DqlError::MinAboveMax { min: 10, max: 5 })
        );
        assert!(matches!(
            d.set_limits(0, DQL_MAX_LIMIT + 1),
            Err(DqlError::TooLarge {
                key: "limit_max",
                ..
            })
        ));
        assert_eq!(DQL_MAX_LIMIT, 1_879_048_192);
    }

    #[test]
    fn exact_across_counter_wraparound() {
        let mut a = Dql::new(HOLD, 0);
        let mut b = Dql::new(HOLD, 0);
        b.set_counters_for_test(u32::MAX - 1200);
        let mut t = 0;
        for round in 0..50u32 {
            let n = 1 + round % 7;
            for _ in 0..n {
                a.queued(300);
                b.queued(300);
            }
            t += 100;
            let c = 300 * (n / 2 + 1);
            assert_eq!(a.completed(c, t), b.completed(c, t));
            assert_eq!(a.limit(), b.limit(), "round {round}");
            assert_eq!(a.avail(), b.avail(), "round {round}");
            assert_eq!(a.inflight(), b.inflight());
        }
    }

    #[test]
    fn overcompletion_is_clamped() {
        let mut d = Dql::new(HOLD, 0);
        d.queued(100);
        assert_eq!(d.completed(500, 1), 100);
        assert_eq!(d.inflight(), 0);
    }
}
