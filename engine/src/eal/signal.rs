//! Clean shutdown on SIGINT/SIGTERM: the handler only stores a flag that the
//! poll loops read (a plain load per poll, no read-modify-write).

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Installs the SIGINT/SIGTERM handlers (idempotent).
pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` is async-signal-safe (one atomic store) and has the
        // signature `signal` expects; installing a handler has no other effect.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// True once a stop was requested (signal or [`request_stop`]).
#[inline]
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Asks every poll loop to end.
pub fn request_stop() {
    STOP.store(true, Ordering::Relaxed);
}

/// Clears the stop flag (for a new run in the same process).
pub fn reset() {
    STOP.store(false, Ordering::Relaxed);
}

/// Restores the default SIGPIPE action so a CLI whose output goes to a closed
/// pipe (`wirespeed … | head`) ends quietly instead of failing its writes.
pub fn default_sigpipe() {
    // SAFETY: SIG_DFL is a valid disposition; no handler code runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
