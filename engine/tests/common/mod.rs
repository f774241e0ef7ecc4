//! What the engine's root-only tests share: a shell helper and a veth pair
//! that is deleted when dropped.

use std::process::{Command, Stdio};

/// Runs `args`, quietly; true on success.
pub fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A veth pair, deleted (both ends) when dropped.
pub struct Veth {
    pub a: String,
    pub b: String,
}

impl Veth {
    /// `{prefix}{pid}` and `…b`, both up, IPv6 off (no router solicitations
    /// on the cable); None when not root.
    pub fn new(prefix: &str) -> Option<Veth> {
        // SAFETY: plain libc call.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let a = format!("{prefix}{}", std::process::id() % 100_000);
        let b = format!("{a}b");
        sh(&["ip", "link", "del", &a]);
        assert!(sh(&[
            "ip", "link", "add", &a, "type", "veth", "peer", "name", &b
        ]));
        for i in [&a, &b] {
            sh(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{i}.disable_ipv6=1"),
            ]);
            assert!(sh(&["ip", "link", "set", i, "up"]));
        }
        Some(Veth { a, b })
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        sh(&["ip", "link", "del", &self.a]);
    }
}
