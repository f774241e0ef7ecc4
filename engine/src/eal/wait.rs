//! Interrupt mode for an idle poll loop: sleep until a receive queue has a
//! packet or a deadline passes, instead of spinning. Plays the part of
//! DPDK's `rte_eth_dev_rx_intr_enable` + `rte_epoll_wait` as l3fwd-power
//! uses them, and of the kernel's own `napi_complete_done` → interrupt
//! re-enable → `schedule()` of an idle softirq: the queues' event fds
//! ([`crate::ethdev::RxQueue::wait_fd`]) are handed to `poll(2)`.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Most fds one [`wait_readable`] watches (one lcore's RX queues).
pub const MAX_WAIT_FDS: usize = 16;

/// Sleeps until one of `fds` is readable (`POLLIN`: a frame waits in its
/// ring) or `timeout` passes. `Ok(true)` when something is readable,
/// `Ok(false)` on timeout or a signal (`EINTR`: the caller's loop checks
/// its stop flag). No fd at all sleeps for `timeout`. More than
/// [`MAX_WAIT_FDS`] is `InvalidInput`.
pub fn wait_readable(fds: &[RawFd], timeout: Duration) -> io::Result<bool> {
    if fds.len() > MAX_WAIT_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("wait_readable: {} fds, at most {MAX_WAIT_FDS}", fds.len()),
        ));
    }
    let mut p = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX_WAIT_FDS];
    for (s, &fd) in p.iter_mut().zip(fds) {
        s.fd = fd;
        s.events = libc::POLLIN;
    }
    // Round up: a sub-millisecond deadline must not become a busy 0.
    let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
    // SAFETY: `p` is a live array of at least `fds.len()` pollfds.
    let r = unsafe { libc::poll(p.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    #[test]
    fn wakes_on_data_and_times_out_without() {
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let t = Instant::now();
        assert!(!wait_readable(&[b.as_raw_fd()], Duration::from_millis(20)).unwrap());
        assert!(
            t.elapsed() >= Duration::from_millis(20),
            "slept the timeout"
        );
        a.send(b"x").unwrap();
        assert!(wait_readable(&[b.as_raw_fd()], Duration::from_secs(5)).unwrap());
        // Sub-millisecond deadlines round up instead of spinning.
        let mut buf = [0u8; 4];
        b.recv(&mut buf).unwrap();
        let t = Instant::now();
        assert!(!wait_readable(&[b.as_raw_fd()], Duration::from_micros(10)).unwrap());
        assert!(t.elapsed() >= Duration::from_millis(1));
        let many = [b.as_raw_fd(); MAX_WAIT_FDS + 1];
        let e = wait_readable(&many, Duration::ZERO).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
