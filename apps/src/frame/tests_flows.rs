//! Value tables and flow sets: the exact frame sequences, on every path
//! (prebuilt headers, groups, columns, per packet), against a model.

use super::tests::{check_frame, pool, prebuilt, streams};
use super::{PacketGen, MAX_FLOWS};
use wirespeed::mbuf::Burst;

/// UDP source port / IPv4 destination of a plain untagged frame.
fn sport(d: &[u8]) -> u64 {
    u16::from_be_bytes([d[34], d[35]]) as u64
}
fn dst_ip(d: &[u8]) -> u64 {
    u32::from_be_bytes([d[30], d[31], d[32], d[33]]) as u64
}

/// Frames from `g` by bursts of the given sizes (the line-rate path) and
/// from a twin by single packets (the paced path): they must agree; returns
/// the frames.
fn both_paths(s: &crate::config::Stream, sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut fast = PacketGen::new(s, 0, false);
    let mut slow = PacketGen::new(s, 0, false);
    let mut p = prebuilt(&fast);
    let mut q = prebuilt(&slow);
    let mut out = Vec::new();
    for &n in sizes {
        let mut a = Burst::new();
        assert!(p.alloc_bulk(&mut a, n));
        fast.fill_burst(a.as_mut_slice(), 0);
        for x in a.iter() {
            let mut y = q.alloc().unwrap();
            slow.fill(&mut y, 0);
            assert_eq!(x.data(), y.data(), "burst path vs per-packet path");
            check_frame(x.data());
            out.push(x.data().to_vec());
        }
    }
    out
}

/// Table index of packet k.
type Order = fn(usize) -> usize;
/// The varying value of a frame.
type Key = fn(&[u8]) -> u64;

const TABLE: [u64; 3] = [0x0a00_0001, 0x0a00_0007, 0x0a00_0009];

/// inc walks the table in order, dec backwards, step skips entries; with a
/// second field the table joins a group (period = its length) or a column.
#[test]
fn value_tables_walk_in_order_on_every_path() {
    let vals = "name = \"dst_ip\"\nvalues = [\"10.0.0.1\", \"10.0.0.7\", \"10.0.0.9\"]";
    let cases: [(&str, Order); 3] = [
        ("", |k| k % 3),
        ("op = \"dec\"\n", |k| 2 - k % 3),
        ("step = 2\n", |k| (2 * k) % 3),
    ];
    for (op, idx) in cases {
        // Alone (the prebuilt cache), with a port range (a group), with a
        // random port (columns: no cache, no group).
        for (second, groups) in [
            ("", 0),
            (
                "[[stream.field]]\nname = \"src_port\"\nmin = 1000\nmax = 1003\n",
                1,
            ),
            (
                "[[stream.field]]\nname = \"src_port\"\nop = \"random\"\nmin = 1000\nmax = 1003\n",
                0,
            ),
        ] {
            let toml = format!("[[stream]]\nsize = 64\n{second}[[stream.field]]\n{op}{vals}\n");
            let s = &streams(&toml)[0];
            let g = PacketGen::new(s, 0, false);
            if !second.is_empty() && groups == 0 {
                assert!(g.flows.is_empty(), "{toml}");
            }
            if groups == 1 && s.fields.len() == 2 {
                // Period 3 × 4 = 12 fits the cache; force the group path too.
                assert_eq!(g.flows.len(), 12, "{toml}");
            }
            let frames = both_paths(s, &[64, 1, 33, 17, 64]);
            for (k, f) in frames.iter().enumerate() {
                assert_eq!(dst_ip(f), TABLE[idx(k)], "{toml} packet {k}");
                if !second.is_empty() {
                    assert!((1000..=1003).contains(&sport(f)));
                }
            }
        }
    }
    // The group path proper: a table next to a port range, with a random
    // TOS (no cache) in a column of its own: the table and the ports are
    // stepped from one FieldGroup table.
    let s = &streams(&format!(
        "[[stream]]\nsize = 64\n[[stream.field]]\nname = \"src_port\"\nmin = 1000\nmax = 1999\n[[stream.field]]\n{vals}\n\
         [[stream.field]]\nname = \"tos\"\nop = \"random\"\nmin = 0\nmax = 255\n"
    ))[0];
    let g = PacketGen::new(s, 0, false);
    assert!(g.flows.is_empty());
    assert_eq!(g.groups.len(), 1);
    let frames = both_paths(s, &[64; 8]);
    for (k, f) in frames.iter().enumerate() {
        assert_eq!(
            (dst_ip(f), sport(f)),
            (TABLE[k % 3], 1000 + k as u64 % 1000)
        );
    }
}

/// random picks table entries with the stream's seed: the same seed gives
/// the same frames, another seed other frames, every entry is drawn.
#[test]
fn random_value_tables_repeat_with_the_seed() {
    let run = |seed: u64| -> Vec<u64> {
        let s = &streams(&format!(
            "[[stream]]\nsize = 64\nseed = {seed}\n[[stream.field]]\nname = \"dst_ip\"\nop = \"random\"\nvalues = [\"10.0.0.1\", \"10.0.0.7\", \"10.0.0.9\"]\n"
        ))[0];
        both_paths(s, &[64, 64, 64])
            .iter()
            .map(|f| dst_ip(f))
            .collect()
    };
    let a = run(7);
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
    for v in TABLE {
        assert!(a.contains(&v), "{v:x} never drawn");
    }
    assert!(a.iter().all(|v| TABLE.contains(v)));
}

/// Every plain field kind takes a table (same notation as min/max) and
/// writes its entries at its offset.
#[test]
fn every_field_kind_takes_a_value_table() {
    for (field, vals, at, want) in [
        (
            "dst_mac",
            "[\"02:00:00:00:00:09\", \"0a:0b:0c:0d:0e:0f\"]",
            0..6,
            [0x0200_0000_0009u64, 0x0a0b_0c0d_0e0f],
        ),
        (
            "src_mac",
            "[\"02:00:00:00:00:09\", \"0a:0b:0c:0d:0e:0f\"]",
            6..12,
            [0x0200_0000_0009, 0x0a0b_0c0d_0e0f],
        ),
        ("tos", "[4, 184]", 15..16, [4, 184]),
        (
            "src_ip",
            "[\"1.2.3.4\", \"9.8.7.6\"]",
            26..30,
            [0x0102_0304, 0x0908_0706],
        ),
        ("src_port", "[53, 4789]", 34..36, [53, 4789]),
        ("dst_port", "[80, 443]", 36..38, [80, 443]),
    ] {
        let s = &streams(&format!(
            "[[stream]]\nsize = 64\n[[stream.field]]\nname = \"{field}\"\nvalues = {vals}\n"
        ))[0];
        for (k, f) in both_paths(s, &[5, 64]).iter().enumerate() {
            let v = f[at.clone()].iter().fold(0u64, |a, b| (a << 8) | *b as u64);
            assert_eq!(v, want[k % 2], "{field} packet {k}");
        }
    }
    // VLAN ids in the tag.
    let s = &streams(
        "[[stream]]\nsize = 68\nvlan = 5\n[[stream.field]]\nname = \"vlan\"\nvalues = [7, 4000]\n",
    )[0];
    for (k, f) in both_paths(s, &[3, 64]).iter().enumerate() {
        let tci = u16::from_be_bytes([f[14], f[15]]);
        assert_eq!(tci, [7, 4000][k % 2], "packet {k}");
    }
}

/// A table nests like a range: the outer table steps when the inner field wraps.
#[test]
fn a_nested_value_table_counts_like_an_odometer() {
    let s = &streams(
        "[[stream]]\nsize = 64\n[[stream.field]]\nname = \"src_port\"\nmin = 1000\nmax = 1004\n\
         [[stream.field]]\nname = \"dst_ip\"\nvalues = [\"10.0.0.1\", \"10.0.0.7\", \"10.0.0.9\"]\nnest = true\n",
    )[0];
    let frames = both_paths(s, &[64, 7]);
    let mut seen = std::collections::HashSet::new();
    for (k, f) in frames.iter().enumerate() {
        assert_eq!(
            (sport(f), dst_ip(f)),
            (1000 + k as u64 % 5, TABLE[(k / 5) % 3]),
            "packet {k}"
        );
        if k < 15 {
            assert!(seen.insert((sport(f), dst_ip(f))));
        }
    }
}

/// The model of a flow set: the window w and the position in it for each
/// packet, given the TSC each burst (or packet) is built at.
struct SetModel {
    n: u64,
    lifetime: u64,
    expiry: Option<u64>,
    w: u64,
    i: u64,
}

impl SetModel {
    fn at(&mut self, tsc: u64) {
        match self.expiry {
            None => self.expiry = Some(tsc + self.lifetime),
            Some(e) if tsc >= e => {
                self.w += 1;
                self.i = 0;
                let due = e + self.lifetime;
                self.expiry = Some(if due > tsc { due } else { tsc + self.lifetime });
            }
            _ => {}
        }
    }
    /// The flow index in the field sequence of the next packet.
    fn next(&mut self) -> u64 {
        let k = self.w * self.n + self.i % self.n;
        self.i += 1;
        k
    }
}

/// `flows = N` with a lifetime: packet i of set w carries F(wN + i mod N),
/// N distinct flows per set, sets replacing each other in order — for a set
/// in the header cache, one stepped per packet, sets that end before they
/// go round once and an idle gap longer than a lifetime; by bursts and by
/// single packets.
#[test]
fn flow_sets_cycle_n_flows_and_churn_in_order() {
    let port = "name = \"src_port\"\nmin = 1000\nmax = 1099";
    let wide = "name = \"dst_ip\"\nmin = \"10.0.0.0\"\nmax = \"10.1.0.0\"";
    let cases: [(&str, &str, u64, Key, u64, u64); 4] = [
        // (extra stream keys, field, N, key of a frame, its base, span)
        ("", port, 7, sport, 1000, 100),
        ("latency = true\n", port, 7, sport, 1000, 100),
        ("", wide, 20_000, dst_ip, 0x0a00_0000, 65_537),
        ("", wide, 40, dst_ip, 0x0a00_0000, 65_537),
    ];
    for (extra, field, n, key, base, span) in cases {
        let toml = format!(
            "[[stream]]\nsize = 64\n{extra}flows = {n}\nflow_lifetime_ms = 1\n[[stream.field]]\n{field}\n"
        );
        let s = &streams(&toml)[0];
        for by_burst in [true, false] {
            let mut g = PacketGen::new(s, 0, false);
            let cached = extra.is_empty() && n <= MAX_FLOWS as u64;
            assert_eq!(g.flows.len() as u64, if cached { n } else { 0 }, "{toml}");
            // A lifetime of 1000 TSC cycles; bursts 300 cycles apart, one
            // idle gap of 5000.
            g.flow_set.as_mut().unwrap().lifetime = 1000;
            let mut m = SetModel {
                n,
                lifetime: 1000,
                expiry: None,
                w: 0,
                i: 0,
            };
            let mut p = prebuilt(&g);
            let mut sets: Vec<std::collections::HashSet<u64>> = vec![Default::default()];
            let mut tsc = 10_000u64;
            for b in 0..60 {
                tsc += if b == 30 { 5000 } else { 300 };
                let len = [64usize, 1, 33, 17, 50][b % 5];
                let mut a = Burst::new();
                assert!(p.alloc_bulk(&mut a, len));
                if by_burst {
                    m.at(tsc);
                    g.fill_burst(a.as_mut_slice(), tsc);
                } else {
                    for x in a.as_mut_slice() {
                        m.at(tsc);
                        g.fill(x, tsc);
                    }
                }
                for x in a.iter() {
                    check_frame(x.data());
                    let want = m.next() % span;
                    assert_eq!(key(x.data()) - base, want, "{toml} burst {b}");
                    if sets.len() as u64 <= m.w {
                        sets.push(Default::default());
                    }
                    sets[m.w as usize].insert(want);
                }
            }
            assert_eq!(g.flow_sets(), m.w + 1, "{toml}");
            assert!(m.w >= 10, "{toml}: only {} sets", m.w + 1);
            // Sets of N distinct flows (the short sets cannot reach N).
            for (w, set) in sets.iter().enumerate() {
                assert!(set.len() as u64 <= n, "{toml} set {w}");
                if n == 7 {
                    assert_eq!(set.len(), 7, "{toml} set {w}");
                }
            }
        }
    }
}

/// Without a lifetime the first set is sent for ever; the config checks the
/// fields can give N distinct flows.
#[test]
fn a_flow_count_alone_cycles_the_first_n_flows() {
    let s = &streams(
        "[[stream]]\nsize = 64\nflows = 6\n[[stream.field]]\nname = \"src_port\"\nmin = 1000\nmax = 1099\n\
         [[stream.field]]\nname = \"dst_ip\"\nvalues = [\"10.0.0.1\", \"10.0.0.7\", \"10.0.0.9\"]\nnest = true\n",
    )[0];
    let frames = both_paths(s, &[64, 64, 3]);
    for (k, f) in frames.iter().enumerate() {
        assert_eq!(
            (sport(f), dst_ip(f)),
            (1000 + (k % 6) as u64, TABLE[0]),
            "packet {k}"
        );
    }
    // 5 × 3 tuples nested: 15 distinct, so flows = 16 is refused.
    let fields = &streams(
        "[[stream]]\n[[stream.field]]\nname = \"src_port\"\nmin = 1\nmax = 5\n\
         [[stream.field]]\nname = \"dst_port\"\nvalues = [1, 2, 3]\nnest = true\n",
    )[0]
    .fields;
    assert_eq!(super::distinct_flows(fields, 16), Some(15));
    assert_eq!(super::distinct_flows(fields, 15), None);
    let _ = pool();
}
