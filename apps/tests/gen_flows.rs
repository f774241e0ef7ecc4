//! Flow scaling end to end through the pcap port: value tables (IPv4 and
//! IPv6, nested), flow counts with lifetimes, and the configs refused.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{bin, tmpdir, tshark_fields as tshark};

/// Runs `stream` on a `pcap:` port (the file returned), expecting exit 0.
fn run(dir: &Path, name: &str, stream: &str) -> PathBuf {
    let pcap = dir.join(format!("{name}.pcap"));
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[run]\nlcores = \"0\"\n[[port]]\nspec = \"pcap:{}\"\n{stream}",
            pcap.display()
        ),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["gen", "--no-huge", "-q"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pcap
}

/// A table of destinations nested under a port range: every (port, address)
/// pair once per 15 packets, in odometer order, checksums good in tshark.
#[test]
fn a_value_table_gives_the_exact_sequence_in_tshark() {
    let dir = tmpdir("flows-table");
    let p = run(
        &dir,
        "table",
        "[[stream]]\ncount = 45\nsize = 100\n\
         [[stream.field]]\nname = \"src_port\"\nmin = 1000\nmax = 1004\n\
         [[stream.field]]\nname = \"dst_ip\"\nvalues = [\"10.0.0.1\", \"10.0.0.7\", \"10.0.0.9\"]\nnest = true\n",
    );
    let lines = tshark(
        &p,
        &[
            "udp.srcport",
            "ip.dst",
            "ip.checksum.status",
            "udp.checksum.status",
        ],
    );
    assert_eq!(lines.len(), 45);
    let ips = ["10.0.0.1", "10.0.0.7", "10.0.0.9"];
    for (k, l) in lines.iter().enumerate() {
        assert_eq!(
            l,
            &format!("{} {} 1 1", 1000 + k % 5, ips[(k / 5) % 3]),
            "packet {k}"
        );
    }
    // IPv6 (a layered stack): the low 32 bits of the address from a table,
    // walked backwards; the UDP checksum over the IPv6 pseudo-header holds.
    let p = run(
        &dir,
        "table6",
        "[[stream]]\ncount = 6\nsize = 100\nip = 6\nsrc_ip6 = \"2001:db8::10\"\ndst_ip6 = \"2001:db8:1::20\"\n\
         [[stream.field]]\nname = \"dst_ip6\"\nop = \"dec\"\nvalues = [\"2001:db8:1::1\", \"2001:db8:1::a:b\", \"2001:db8:1::ffff:ffff\"]\n",
    );
    let lines = tshark(&p, &["ipv6.dst", "udp.checksum.status"]);
    let want = ["2001:db8:1::ffff:ffff", "2001:db8:1::a:b", "2001:db8:1::1"];
    assert_eq!(lines.len(), 6);
    for (k, l) in lines.iter().enumerate() {
        assert_eq!(l, &format!("{} 1", want[k % 3]), "packet {k}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `flows = 5` with a 10 ms lifetime on a paced stream: the frames, read
/// back, are set after set of F(wN + i mod N) with the sets in order
/// (S(0), S(1), …), each of exactly 5 distinct flows once it went round.
#[test]
fn flow_sets_churn_in_order_through_the_pcap_port() {
    let dir = tmpdir("flows-churn");
    let p = run(
        &dir,
        "churn",
        "[[stream]]\ncount = 1500\nsize = 64\nrate = \"20 kpps\"\nflows = 5\nflow_lifetime_ms = 10\n\
         [[stream.field]]\nname = \"src_port\"\nmin = 1000\nmax = 1099\n",
    );
    let lines = tshark(
        &p,
        &["udp.srcport", "ip.checksum.status", "udp.checksum.status"],
    );
    assert_eq!(lines.len(), 1500);
    let n = 5u64;
    let f = |k: u64| 1000 + k % 100;
    let (mut w, mut i) = (0u64, 0u64);
    let mut per_set = vec![std::collections::HashSet::new()];
    for (k, l) in lines.iter().enumerate() {
        let mut it = l.split(' ');
        let port: u64 = it.next().unwrap().parse().unwrap();
        assert_eq!(it.collect::<Vec<_>>(), ["1", "1"], "packet {k}: checksums");
        if port != f(w * n + i % n) {
            // Only the next set may take over, from its first flow.
            assert_eq!(port, f((w + 1) * n), "packet {k}: set {w} flow {i}");
            w += 1;
            i = 0;
            per_set.push(Default::default());
        }
        per_set[w as usize].insert(port);
        i += 1;
    }
    // 75 ms of packets, 10 ms sets: several sets (no timing asserted).
    assert!(w >= 2, "only {} sets", w + 1);
    for (s, set) in per_set.iter().enumerate().take(w as usize) {
        assert!(set.len() <= n as usize, "set {s}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Bad tables and flow counts exit 2 naming the key.
#[test]
fn bad_tables_and_flow_counts_exit_2_naming_the_key() {
    let dir = tmpdir("flows-bad");
    let f = "[[stream.field]]\nname = \"dst_ip\"\n";
    let cases: &[(&str, &str, &str)] = &[
        ("", "values = []", "stream[0].field[0].values"),
        (
            "",
            "values = [\"10.0.0.1\", \"10.0.0.x\"]",
            "stream[0].field[0].values",
        ),
        (
            "",
            "values = [\"10.0.0.1\"]\nmin = \"10.0.0.1\"",
            "stream[0].field[0].values",
        ),
        ("", "max = \"10.0.0.1\"", "stream[0].field[0].min"),
        ("flows = 0\n", "values = [\"10.0.0.1\"]", "stream[0].flows"),
        (
            "flows = 4\n",
            "values = [\"10.0.0.1\", \"10.0.0.2\"]",
            "stream[0].flows",
        ),
        (
            "flow_lifetime_ms = 5\n",
            "values = [\"10.0.0.1\"]",
            "stream[0].flow_lifetime_ms",
        ),
        (
            "flows = 2\nflow_lifetime_ms = -1\n",
            "values = [\"1.1.1.1\", \"2.2.2.2\"]",
            "stream[0].flow_lifetime_ms",
        ),
    ];
    for (i, (keys, field, needle)) in cases.iter().enumerate() {
        let cfg = dir.join(format!("c{i}.toml"));
        std::fs::write(
            &cfg,
            format!("[[port]]\nspec = \"null\"\n[[stream]]\n{keys}{f}{field}\n"),
        )
        .unwrap();
        let o = Command::new(bin())
            .args(["gen", "-q", "--no-huge", "--duration", "0.1"])
            .arg(&cfg)
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "case {i} ({needle}): {e}");
        assert!(e.contains(needle), "case {i}: expected '{needle}' in: {e}");
        assert!(!e.contains("panicked"), "case {i}: {e}");
    }
    // A flow count without varying fields.
    let cfg = dir.join("nofields.toml");
    std::fs::write(&cfg, "[[port]]\nspec = \"null\"\n[[stream]]\nflows = 3\n").unwrap();
    let o = Command::new(bin()).arg("check").arg(&cfg).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("stream[0].flows"));
    std::fs::remove_dir_all(&dir).ok();
}
