//! Flow counts with per-set lifetimes (`flows = N`, `flow_lifetime_ms`):
//! the stream's field sequence cut to N flows sent in turn, the set
//! replaced by the next N flows of the sequence when its lifetime ends
//! (TRex's limited flow count, MoonGen's flow churn scripts).
//!
//! The field sequence F(0), F(1), … is what the stream's fields give
//! packet after packet on one lcore. Set w is S(w) = F(wN) … F(wN + N − 1)
//! and packet i of its life carries F(wN + i mod N). Per packet this costs
//! a counter compare (the per-packet path) or nothing beyond the header
//! cache's own index (a set of at most [`MAX_FLOWS`] flows on a plain
//! fixed-size stream is prebuilt); the set's start is a saved copy of the
//! fields' state, restored without allocating. The lifetime is checked
//! against the TSC once per burst (or per paced packet): a compare.

use super::{PacketGen, Rng, MAX_FLOWS, MIN_FRAME};
use crate::config::{Field, Stream};
use crate::frame::fields::FieldGen;

/// The state of a stream's flow set (see the module doc).
#[derive(Debug, Clone)]
pub(super) struct FlowSet {
    /// Flows per set (N).
    n: u64,
    /// The set's lifetime in TSC cycles (0: for ever).
    pub(super) lifetime: u64,
    /// The fields' state (`cur` of each) and the random generator at the
    /// set's first flow F(wN) …
    base: Vec<u64>,
    base_rng: Rng,
    /// … and at the next set's, F(wN + N), once the set has gone round.
    next: Vec<u64>,
    next_rng: Rng,
    cycled: bool,
    /// The set's headers are prebuilt (`PacketGen::flows`, N entries).
    cached: bool,
    /// A frame of the stream's length to build cached headers in.
    scratch: Vec<u8>,
    /// Sets begun so far, the first included (w + 1).
    pub(super) sets: u64,
}

impl PacketGen {
    /// Sets up the flow set S(0) for a stream with `flows = N`: the header
    /// cache holds its N headers when the stream takes the cache (plain,
    /// fixed size, N ≤ [`MAX_FLOWS`]); field groups and columns are not
    /// used (the per-packet path counts the set's packets).
    pub(super) fn plan_flow_set(&mut self, s: &Stream) {
        let hz = wirespeed::eal::tsc::Tsc::global().hz();
        let lifetime = (s.flow_lifetime_ns as u128 * hz as u128 / 1_000_000_000) as u64;
        let base: Vec<u64> = self.fields.iter().map(|f| f.cur).collect();
        let cached = self.layout.is_none() && self.plain_fields() && s.flows <= MAX_FLOWS as u64;
        let len = self.fixed_len().unwrap_or(0).min(self.template.len());
        let fs = FlowSet {
            n: s.flows,
            lifetime: lifetime.max(if s.flow_lifetime_ns > 0 { 1 } else { 0 }),
            next: base.clone(),
            base,
            base_rng: self.rng.clone(),
            next_rng: self.rng.clone(),
            cycled: false,
            cached,
            scratch: if cached {
                self.template[..len].to_vec()
            } else {
                Vec::new()
            },
            sets: 1,
        };
        if cached {
            self.flows = vec![[0u8; MIN_FRAME]; s.flows as usize];
        }
        self.flow_left = s.flows;
        self.flow_expiry = if fs.lifetime > 0 { 0 } else { u64::MAX };
        self.flow_set = Some(Box::new(fs));
        self.build_flow_cache();
    }

    /// Writes the current set's N headers into the cache (when it has
    /// one), from the set's first flow, and leaves the fields there.
    fn build_flow_cache(&mut self) {
        let Some(mut fs) = self.flow_set.take() else {
            return;
        };
        if fs.cached {
            let mut frame = std::mem::take(&mut fs.scratch);
            for h in 0..self.flows.len() {
                self.patch_plain(&mut frame, false);
                self.flows[h].copy_from_slice(&frame[..MIN_FRAME]);
            }
            fs.scratch = frame;
            self.flow_idx = 0;
        }
        self.restore(&fs.base, &fs.base_rng);
        self.flow_set = Some(fs);
    }

    fn restore(&mut self, st: &[u64], rng: &Rng) {
        for (f, &c) in self.fields.iter_mut().zip(st) {
            f.cur = c;
        }
        self.rng = rng.clone();
    }

    /// The per-packet path has built the set's N-th packet: the set starts
    /// over (its end, the next set's start, is kept the first time).
    #[cold]
    pub(super) fn flow_wrap(&mut self) {
        let Some(mut fs) = self.flow_set.take() else {
            self.flow_left = u64::MAX;
            return;
        };
        if !fs.cycled {
            for (x, f) in fs.next.iter_mut().zip(&self.fields) {
                *x = f.cur;
            }
            fs.next_rng = self.rng.clone();
            fs.cycled = true;
        }
        self.restore(&fs.base, &fs.base_rng);
        self.flow_left = fs.n;
        self.flow_set = Some(fs);
    }

    /// The set's lifetime is over at `tsc` (or, the first time, the set's
    /// life begins): the next N flows of the field sequence replace it.
    #[cold]
    pub(super) fn flow_expire(&mut self, tsc: u64) {
        let Some(mut fs) = self.flow_set.take() else {
            self.flow_expiry = u64::MAX;
            return;
        };
        if self.flow_expiry == 0 {
            self.flow_expiry = tsc.saturating_add(fs.lifetime);
            self.flow_set = Some(fs);
            return;
        }
        if !fs.cycled {
            // The set ended before it went round once: step the fields
            // over the rest of it (as the per-packet path would).
            for _ in 0..self.flow_left {
                self.step_fields();
            }
            for (x, f) in fs.next.iter_mut().zip(&self.fields) {
                *x = f.cur;
            }
            fs.next_rng = self.rng.clone();
        }
        std::mem::swap(&mut fs.base, &mut fs.next);
        fs.base_rng = fs.next_rng.clone();
        fs.cycled = false;
        fs.sets += 1;
        self.flow_left = fs.n;
        let due = self.flow_expiry.saturating_add(fs.lifetime);
        // A stream idle for a whole lifetime resumes with the next set,
        // which lives a lifetime from now (sets are never skipped).
        self.flow_expiry = if due > tsc {
            due
        } else {
            tsc.saturating_add(fs.lifetime)
        };
        self.flow_set = Some(fs);
        self.build_flow_cache();
    }

    /// Steps the fields once without writing them (the order of
    /// [`PacketGen::write_fields`], so random draws match).
    fn step_fields(&mut self) {
        let mut carry = false;
        for fg in &mut self.fields {
            carry = if fg.nested && !carry {
                false
            } else {
                fg.advance(&mut self.rng)
            };
        }
    }

    /// Sets begun so far on this lcore (1 = the first set).
    pub fn flow_sets(&self) -> u64 {
        self.flow_set.as_ref().map_or(0, |f| f.sets)
    }
}

/// For a `flows = n` check: `Some(p)` when the deterministic fields repeat
/// after `p < n` packets (fewer distinct tuples than flows asked); None
/// when they give at least `n`, when a field is random (draws may repeat
/// by chance) or when it cannot tell within 2^24 steps.
pub fn distinct_flows(fields: &[Field], n: u64) -> Option<u64> {
    let mut f: Vec<FieldGen> = fields.iter().map(|x| FieldGen::at(x, 0, 4, 0)).collect();
    if f.iter().any(|x| x.cycle().is_none()) {
        return None;
    }
    if !f.iter().any(|x| x.nested) {
        // Fields stepping together repeat after the LCM of their cycles.
        let mut p = 1u64;
        for x in &f {
            let c = x.cycle()?;
            p = (p / super::fields::gcd(p, c)).checked_mul(c)?;
            if p >= n {
                return None;
            }
        }
        return Some(p);
    }
    let start: Vec<u64> = f.iter().map(|x| x.cur).collect();
    let mut rng = Rng::new(0);
    for k in 1..n.min(1 << 24) {
        let mut carry = false;
        for x in f.iter_mut() {
            carry = if x.nested && !carry {
                false
            } else {
                x.advance(&mut rng)
            };
        }
        if f.iter().zip(&start).all(|(x, s)| x.cur == *s) {
            return Some(k);
        }
    }
    None
}
