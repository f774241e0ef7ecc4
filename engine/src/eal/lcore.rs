//! Lcores: DPDK-style core lists (`0-3,6`) and one pinned thread per lcore.
//!
//! Plays the part of DPDK's `rte_eal_remote_launch` / `rte_eal_mp_wait_lcore`:
//! each lcore is a thread pinned to one CPU with `core_affinity`; the first
//! core of the list is the main lcore.

use std::fmt;
use std::thread;

/// Errors from core-list parsing and lcore launch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LcoreError {
    #[error("bad core list '{list}': {why} (expected e.g. '0', '0-3' or '0-3,6')")]
    Parse { list: String, why: String },
    #[error("core {core} does not exist on this machine (cores 0-{max} are online); pick cores from that range")]
    NoSuchCore { core: usize, max: usize },
    #[error("lcore thread for core {core} could not start: {why}")]
    Spawn { core: usize, why: String },
    #[error("lcore on core {core} panicked: {why}")]
    Panicked { core: usize, why: String },
}

/// An ordered, duplicate-free list of CPU ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreList(Vec<usize>);

impl CoreList {
    /// Parses `0-3,6`, `2`, `1,3-4`. Ranges must be ascending; duplicates are errors.
    pub fn parse(s: &str) -> Result<CoreList, LcoreError> {
        let err = |why: &str| LcoreError::Parse {
            list: s.to_string(),
            why: why.to_string(),
        };
        let mut out: Vec<usize> = Vec::new();
        if s.trim().is_empty() {
            return Err(err("empty list"));
        }
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(err("empty element"));
            }
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let a: usize = a
                .parse()
                .map_err(|_| err(&format!("'{a}' is not a core number")))?;
            let b: usize = b
                .parse()
                .map_err(|_| err(&format!("'{b}' is not a core number")))?;
            if b < a {
                return Err(err(&format!("range {a}-{b} is descending")));
            }
            if b - a > 4096 {
                return Err(err("range too large"));
            }
            for c in a..=b {
                if out.contains(&c) {
                    return Err(err(&format!("core {c} listed twice")));
                }
                out.push(c);
            }
        }
        Ok(CoreList(out))
    }

    /// A list from explicit core ids.
    pub fn from_cores(cores: Vec<usize>) -> CoreList {
        CoreList(cores)
    }

    /// The cores, main lcore first.
    pub fn cores(&self) -> &[usize] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks every core exists on this machine.
    pub fn validate(&self) -> Result<(), LcoreError> {
        let n = online_cores();
        for &c in &self.0 {
            if c >= n {
                return Err(LcoreError::NoSuchCore {
                    core: c,
                    max: n.saturating_sub(1),
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for CoreList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s: Vec<String> = self.0.iter().map(|c| c.to_string()).collect();
        write!(f, "{}", s.join(","))
    }
}

static CLAIMED: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// Records the cores the lcores will be pinned to, so helper threads (a
/// device model's DMA engine, say) can stay off them.
pub fn claim(cores: &CoreList) {
    *CLAIMED.lock().unwrap_or_else(|e| e.into_inner()) = cores.cores().to_vec();
}

/// A core no lcore is claimed on (the highest such), if any: where a device
/// model pins its engine thread by default.
pub fn spare_core() -> Option<usize> {
    let claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .map(|v| v.into_iter().map(|c| c.id).collect())
        .unwrap_or_default();
    allowed.into_iter().filter(|c| !claimed.contains(c)).max()
}

/// Number of CPUs this process may run on.
pub fn online_cores() -> usize {
    core_affinity::get_core_ids()
        .map(|v| v.iter().map(|c| c.id + 1).max().unwrap_or(1))
        .unwrap_or_else(|| {
            thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// What an lcore thread knows about itself.
#[derive(Debug, Clone, Copy)]
pub struct LcoreId {
    /// Index in the core list (0 = main lcore).
    pub index: usize,
    /// The CPU it is pinned to.
    pub core: usize,
}

impl LcoreId {
    pub fn is_main(&self) -> bool {
        self.index == 0
    }
}

/// Launches one pinned thread per lcore, runs `f` on each and waits for all.
/// Returns each lcore's result in core-list order. A panic in one lcore is
/// reported as [`LcoreError::Panicked`], never propagated.
pub fn launch<T, F>(cores: &CoreList, f: F) -> Result<Vec<T>, LcoreError>
where
    T: Send + 'static,
    F: Fn(LcoreId) -> T + Send + Sync + 'static,
{
    cores.validate()?;
    let f = std::sync::Arc::new(f);
    let mut handles = Vec::new();
    for (index, &core) in cores.cores().iter().enumerate() {
        let f = f.clone();
        let h = thread::Builder::new()
            .name(format!("lcore-{core}"))
            .spawn(move || {
                if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                    tracing::warn!(core, "could not pin lcore thread; running unpinned");
                }
                f(LcoreId { index, core })
            })
            .map_err(|e| LcoreError::Spawn {
                core,
                why: e.to_string(),
            })?;
        handles.push((core, h));
    }
    let mut out = Vec::new();
    let mut first_err = None;
    for (core, h) in handles {
        match h.join() {
            Ok(v) => out.push(v),
            Err(p) => {
                let why = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                first_err.get_or_insert(LcoreError::Panicked { core, why });
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        assert_eq!(CoreList::parse("0").unwrap().cores(), &[0]);
        assert_eq!(CoreList::parse("0-3,6").unwrap().cores(), &[0, 1, 2, 3, 6]);
        assert_eq!(CoreList::parse(" 1 , 3-4").unwrap().cores(), &[1, 3, 4]);
        assert_eq!(CoreList::parse("0-3,6").unwrap().to_string(), "0,1,2,3,6");
    }

    #[test]
    fn rejects_bad_lists() {
        for bad in ["", "a", "1-", "3-1", "1,,2", "1,1", "0-2,2", "-1", "1-x"] {
            assert!(
                matches!(CoreList::parse(bad), Err(LcoreError::Parse { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn missing_core_is_a_clear_error() {
        let l = CoreList::parse("4000").unwrap();
        let e = l.validate().unwrap_err();
        assert!(matches!(e, LcoreError::NoSuchCore { core: 4000, .. }));
        assert!(e.to_string().contains("does not exist"));
    }

    #[test]
    fn spare_core_avoids_claimed_ones() {
        let n = online_cores();
        claim(&CoreList::from_cores((0..n).collect()));
        assert_eq!(spare_core(), None);
        claim(&CoreList::from_cores(vec![0]));
        if n > 1 {
            assert!(spare_core().is_some_and(|c| c != 0));
        }
        claim(&CoreList::from_cores(Vec::new()));
    }

    #[test]
    fn launch_runs_every_lcore_and_reports_panics() {
        let l = CoreList::parse("0").unwrap();
        let r = launch(&l, |id| id.index * 10 + id.core).unwrap();
        assert_eq!(r, vec![0]);
        let e = launch(&l, |_| -> () { panic!("boom") }).unwrap_err();
        assert!(matches!(e, LcoreError::Panicked { .. }));
    }
}
