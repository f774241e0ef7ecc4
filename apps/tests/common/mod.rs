//! Helpers shared by the CLI integration tests.
#![allow(dead_code)]

pub mod kernel;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `wirespeed` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wirespeed")
}

pub fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ws-it-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs tshark over `pcap` with checksum validation; returns one line per frame:
/// "len ip_status udp_status" (status 1 = good, 0 = bad, 2 = unverified).
pub fn tshark_fields(pcap: &Path, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(pcap).args([
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-T",
        "fields",
        "-E",
        "separator=/s",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect(
        "tshark is required for this test: scripts/test installs it (apt-get install tshark)",
    );
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}
