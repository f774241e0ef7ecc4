#!/usr/bin/env python3
"""Host-side checks of the igb VM test's RSS and TSO runs (run.sh calls it).

Each check prints one line, `PASS what` or `FAIL name: why`; run.sh turns
them into its own PASS/FAIL lines. The exit status is 0 unless the
arguments are wrong.

  checks.py rss   --json RSS.json --peer PEER.json --sport0 N --flows N --count N
  checks.py tcp   --json TCP.json --pcap PCAP --mac MAC --sport N --bytes N --write N
                  --rx-bytes N --rx-sha HEX
"""
import argparse
import hashlib
import json
import subprocess
import sys

# The key the engine programs by default (engine/src/ethdev/rss.rs
# DEFAULT_RSS_KEY): Microsoft's verification key, the 82576 datasheet's
# sample key (7.1.1.7.3).
DEFAULT_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c"
    "6a42b73bbeac01fa"
)


def toeplitz(key, data):
    """Microsoft's RSS hash: for each set bit of the input (first byte's
    most significant bit first), XOR in the 32 key bits starting there."""
    k = int.from_bytes(key, "big")
    kbits = len(key) * 8
    h = 0
    for i, byte in enumerate(data):
        for b in range(8):
            if byte & (0x80 >> b):
                h ^= (k >> (kbits - 32 - (i * 8 + b))) & 0xFFFFFFFF
    return h


def ip4(s):
    return bytes(int(x) for x in s.split("."))


def tuple4(src, dst, sport, dport):
    return ip4(src) + ip4(dst) + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")


# "Verifying the RSS Hash Calculation" (Microsoft): IPv4 with TCP/UDP ports.
MS_VECTORS = [
    (("66.9.149.187", "161.142.100.80", 2794, 1766), 0x51CCC178),
    (("199.92.111.2", "65.69.140.83", 14230, 4739), 0xC626B0EA),
    (("24.19.198.95", "12.22.207.184", 12898, 38024), 0x5C2B394A),
    (("38.27.205.30", "209.142.163.6", 48228, 2217), 0xAFC7327F),
    (("153.39.163.191", "202.188.127.2", 44251, 1303), 0x10E828A2),
]


def say(ok, name, what, why=""):
    print(f"PASS {what}" if ok else f"FAIL {name}: {why}")


def load(path, name):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        say(False, name, "", f"cannot read {path}: {e}")
        return None


def check_rss(a):
    bad = [(t, h, toeplitz(DEFAULT_KEY, tuple4(*t))) for t, h in MS_VECTORS]
    bad = [x for x in bad if x[1] != x[2]]
    say(not bad, "rss-toeplitz",
        f"rss: the check's Toeplitz hash gives Microsoft's {len(MS_VECTORS)} IPv4/TCP-UDP verification values",
        f"mismatch {bad}")
    if bad:
        return
    v = load(a.json, "rss")
    peer = load(a.peer, "rss")
    if v is None or peer is None:
        return
    echoed = peer.get("echoed", {})
    sent = sum(echoed.get(str(a.sport0 + f), 0) for f in range(a.flows))
    say(sent == a.count, "rss-echo",
        f"rss: the peer echoed all {a.count} frames of {a.flows} flows",
        f"the peer echoed {sent} of {a.count} (per source port: {dict(list(echoed.items())[:8])}…)")
    # The echo is 198.18.0.2:7 -> 198.18.0.1:sport; the default RETA is
    # round-robin (entry i -> queue i % 2), indexed by the hash's low 7 bits.
    want = [0, 0]
    for f in range(a.flows):
        n = echoed.get(str(a.sport0 + f), 0)
        h = toeplitz(DEFAULT_KEY, tuple4(a.peer_ip, a.nic_ip, 7, a.sport0 + f))
        want[(h & 0x7F) % 2] += n
    p = v["ports"][0]
    x = p.get("xstats", {})
    got = [x.get("rx_q0_packets"), x.get("rx_q1_packets")]
    missed = x.get("hw_rx_missed_packets")
    lat = (v["streams"][0].get("latency") or {})
    other = sum(l.get("rx_other", 0) for l in v.get("lcores", []))
    say(got == want and min(want) > 0,
        "rss-split",
        f"rss: RX queue 0 got {got[0]}, queue 1 got {got[1]} — exactly the Toeplitz/RETA split of the echoed flows",
        f"rx_q0_packets/rx_q1_packets {got}, the hash says {want} (missed {missed}, other frames {other})")
    say(lat.get("received") == sent and lat.get("lost") == 0 and other == 0 and p.get("rx_packets") == sent,
        "rss-rx",
        f"rss: the stream received all {sent} echoes (latency accounting), no other frame, port rx_packets {p.get('rx_packets')}",
        f"latency {dict((k, lat.get(k)) for k in ('sent', 'received', 'lost', 'duplicates'))}, other {other}, port rx_packets {p.get('rx_packets')}, echoed {sent}")


def tshark(pcap, flt, fields):
    cmd = ["tshark", "-r", pcap, "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
           "-Y", flt, "-T", "fields", "-E", "separator=,"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    return [line.split(",") for line in out.splitlines() if line.strip()]


def pattern_sha(n, w):
    # Byte k of each connection is (k mod the write size) as a byte
    # (apps/src/gen/source/tcp.rs: TcpSource's buffer is 0, 1, … w-1 as u8).
    blk = bytes(i & 0xFF for i in range(w))
    h = hashlib.sha256()
    left = n
    while left:
        c = min(left, w)
        h.update(blk[:c])
        left -= c
    return h.hexdigest()


def check_tcp(a):
    want_sha = pattern_sha(a.bytes, a.write)
    say(a.rx_bytes == a.bytes and a.rx_sha == want_sha, "tcp-rx",
        f"tcp: the kernel receiver got all {a.bytes} bytes, SHA-256 of the generator's pattern",
        f"received {a.rx_bytes} bytes sha256 {a.rx_sha}, want {a.bytes} bytes sha256 {want_sha}")
    v = load(a.json, "tcp")
    if v is not None:
        t = v["streams"][0].get("tcp") or {}
        p = v["ports"][0]
        x = p.get("xstats", {})
        tso = x.get("hw_tx_tso_contexts", 0)
        say(t.get("established") == 1 and t.get("failed") == 0 and t.get("bytes_acked") == a.bytes,
            "tcp-gen",
            f"tcp: the generator's connection was established and all {a.bytes} bytes acknowledged",
            f"tcp summary {t}")
        say(tso > 0 and "tso" in p.get("offloads", "").split(","), "tcp-tso-hw",
            f"tcp: the igb took {tso} TSE packets (TSCTC; port offloads {p.get('offloads')})",
            f"hw_tx_tso_contexts {tso}, port offloads '{p.get('offloads')}'")
    # The wire: QEMU's segments, checked by tshark.
    syn = tshark(a.pcap, f"tcp.flags.syn == 1 && tcp.flags.ack == 1 && tcp.dstport == {a.sport}",
                 ["tcp.options.mss_val", "tcp.options.timestamp.tsval"])
    if not syn or not syn[0][0]:
        say(False, "tcp-pcap", "", "no SYN-ACK with an MSS option to the generator in the pcap")
        return
    mss = int(syn[0][0]) - (12 if len(syn[0]) > 1 and syn[0][1] else 0)
    rows = tshark(a.pcap, f"eth.src == {a.mac} && tcp.srcport == {a.sport} && tcp.len > 0",
                  ["frame.len", "tcp.len", "ip.checksum.status", "tcp.checksum.status",
                   "tcp.analysis.retransmission", "_ws.expert.message"])
    n = len(rows)
    lens = [int(r[1]) for r in rows]
    full = sum(1 for x in lens if x == mss)
    over = [x for x in lens if x > mss]
    # A TCP checksum that sums to zero is written 0xffff or 0x0000 (one's
    # complement -0 and +0, equivalent under RFC 1624); tshark flags the
    # writer's choice when it is not its own. About 1 segment in 65536:
    # allowed and counted, as apps/tests/kernel_tcp.rs does.
    mangled = [r for r in rows if r[2] == "1" and r[3] == "0"
               and any("RFC 1624" in x for x in r[5:])]
    csum_bad = [r for r in rows if (r[2] != "1" or r[3] != "1") and r not in mangled]
    payload = sum(int(r[1]) for r in rows if not r[4])
    ok = n > 0 and not over and not csum_bad and full >= a.bytes // mss * 9 // 10 and payload == a.bytes
    say(ok, "tcp-pcap",
        f"tcp: pcap holds {n} data segments of at most {mss} bytes ({full} of exactly MSS {mss}, largest frame {max(int(r[0]) for r in rows) if rows else 0}), {payload} payload bytes, every IPv4 and TCP checksum good (tshark; {len(mangled)} zero sums written as the other zero, RFC 1624)",
        f"{n} data segments, {len(over)} over MSS {mss} (e.g. {over[:3]}), {full} of exactly MSS, "
        f"{len(csum_bad)} with a checksum not good (e.g. {csum_bad[:2]}), {payload} payload bytes (want {a.bytes})")
    err = tshark(a.pcap, f"tcp.port == {a.sport} && _ws.expert.severity == error",
                 ["frame.number", "_ws.expert.message"])
    say(not err, "tcp-expert", "tcp: no tshark expert error on the connection",
        f"{len(err)} frame(s) with an expert error, first {err[:3]}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rss")
    r.add_argument("--json", required=True)
    r.add_argument("--peer", required=True)
    r.add_argument("--sport0", type=int, required=True)
    r.add_argument("--flows", type=int, required=True)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--nic-ip", default="198.18.0.1")
    r.add_argument("--peer-ip", default="198.18.0.2")
    t = sub.add_parser("tcp")
    t.add_argument("--json", required=True)
    t.add_argument("--pcap", required=True)
    t.add_argument("--mac", required=True)
    t.add_argument("--sport", type=int, required=True)
    t.add_argument("--bytes", type=int, required=True)
    t.add_argument("--write", type=int, required=True)
    t.add_argument("--rx-bytes", type=int, default=-1)
    t.add_argument("--rx-sha", default="")
    a = ap.parse_args()
    {"rss": check_rss, "tcp": check_tcp}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
