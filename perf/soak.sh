#!/usr/bin/env bash
# Soak (issue 16's reliability suite): a long raw run and a long socket run
# of the real generator, with the process's resident memory sampled every
# second. Checks at the end of each: every packet offered was sent or is in
# one drop counter (stream, netdev queue, port and driver counters agree:
# no drift), every mempool is back to full, and RSS after warm-up is flat.
#
#   perf/soak.sh [RAW_PACKETS] [SOCKET_PACKETS]     # defaults 10^9 and 10^8
#
# Raw: 64-byte frames to `null` (one lcore). Socket: 18-byte datagrams from
# a connected UdpSocket over a ring pair to the peer's stack (ARP first),
# pfifo_fast + BQL. Exit status non-zero when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
RAW="${1:-1000000000}"
SOCK="${2:-100000000}"
cargo build --release -q -p wirespeed-apps
BIN=target/release/wirespeed
DIR=$(mktemp -d /tmp/wirespeed-soak.XXXXXX)
trap 'rm -rf "$DIR"' EXIT

cat >"$DIR/socket.toml" <<TOML
[run]
lcores = "0"

[[port]]
spec = "ring:soak"
ip = "10.0.0.1/24"
qdisc = "pfifo_fast"
bql = true

[[port]]
spec = "ring:soak"
ip = "10.0.0.2/24"

[[stream]]
name = "soak-socket"
mode = "socket"
port = 0
dst_ip = "10.0.0.2"
dst_port = 7000
size = 18
count = $SOCK
TOML

# run NAME ARGS...: runs the generator, samples VmRSS (KiB) each second.
run() {
  local name=$1
  shift
  "$BIN" gen "$@" --json "$DIR/$name.json" -q >"$DIR/$name.out" 2>"$DIR/$name.err" &
  local pid=$! t=0
  : >"$DIR/$name.rss"
  while kill -0 "$pid" 2>/dev/null; do
    awk '/^VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null >>"$DIR/$name.rss" || true
    sleep 1
    t=$((t + 1))
  done
  wait "$pid" || { echo "$name: wirespeed gen failed"; cat "$DIR/$name.err"; return 1; }
  python3 - "$name" "$DIR/$name.json" "$DIR/$name.rss" <<'PY'
import json, sys
name, jf, rf = sys.argv[1:]
d = json.load(open(jf))
rss = [int(x) for x in open(rf).read().split()]
bad = []
def need(c, what):
    if not c: bad.append(what)
# The streams' own packets (the port also carries ARP on the socket path).
sent = sum(s["packets"] for s in d["streams"])
offered = sum(s["offered"] for s in d["streams"])
drops = sum(sum(s["dropped"].values()) for s in d["streams"])
need(offered == sent + drops, f"offered {offered} != sent {sent} + drops {drops}")
need(sent <= d["packets_sent"], "streams sent more than the ports")
for p in d["ports"]:
    need(p["conserved"], f"port {p['spec']} counters do not add up")
    for q in p["queues"]:
        n = q["netdev"]
        need(n["offered"] == n["sent_packets"] + n["qdisc_drops"] + n["busy_drops"] + n["purged"] + n["carrier_drops"] + n["backlog_packets"],
             f"{p['spec']} q{q['queue']}: netdev counters drift: {n}")
        need(n["completed_packets"] == n["sent_packets"], f"{p['spec']} q{q['queue']}: completed != sent")
        need(q["packets"] + q["drops"] + q["errors"] == n["sent_packets"], f"{p['spec']} q{q['queue']}: driver != netdev")
for l in d["lcores"]:
    need(l["mempool_in_use_at_end"] == 0, f"lcore {l['lcore']}: {l['mempool_in_use_at_end']} mbufs not home")
# Warm-up: the first 3 s (pools, rings, histograms are allocated up front).
warm = rss[3:] if len(rss) > 4 else rss[-1:]
growth = (warm[-1] - warm[0]) if warm else 0
need(growth <= 1024, f"RSS grew {growth} KiB after warm-up")
print(f"{name}: {sent} packets sent, {drops} dropped, {d['duration_s']:.1f} s, {d['mpps']:.2f} Mpps; "
      f"RSS samples {len(rss)}: first {rss[0] if rss else 0} KiB, after warm-up {warm[0] if warm else 0} .. max {max(warm) if warm else 0} .. last {warm[-1] if warm else 0} KiB (growth {growth} KiB); "
      f"mempools full: {all(l['mempool_in_use_at_end'] == 0 for l in d['lcores'])}; alloc failures {sum(l['alloc_failures'] for l in d['lcores'])}")
if bad:
    print("FAILED: " + "; ".join(bad)); sys.exit(1)
PY
}

echo "soak $(date -u +%FT%TZ) $(git rev-parse --short HEAD): raw $RAW, socket $SOCK"
run raw --port null --count "$RAW"
run socket "$DIR/socket.toml"
echo "soak passed"
