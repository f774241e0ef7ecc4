#!/usr/bin/env bash
# IPv4 forwarding, 64 B frames, one lcore: the l3fwd example (apps/examples/
# l3fwd.rs, run by l3fwd_bench.rs on `replay:` ports) against DPDK 22.11's
# l3fwd (LPM mode, its default route table) on net_pcap vdevs with
# infinite_rx, in one run, alternating, each alone on CORE.
#
# Both routers get the same two input streams: port 0 receives 32 UDP frames
# to 198.18.1.1-32 (routed out of port 1), port 1 receives 32 to 198.18.0.x
# (out of port 0), read round and round from a pcap into fresh pool buffers
# (DPDK: rte_pktmbuf_alloc_bulk + rte_memcpy per packet in
# eth_pcap_rx_infinite; wirespeed: alloc_bulk + copy in ReplayRx), and both
# transmit into a drop queue (eth_tx_drop / DropTx). 4 KiB pages for both
# (--no-huge).
#
# DPDK's l3fwd is built from /usr/share/dpdk/examples/l3fwd with its
# Makefile (pkg-config libdpdk) after one change to a copy: its port config
# asks for RX checksum offload, which no vdev offers (rte_eth_dev_configure
# fails with -EINVAL), so the request is set to 0 — the forwarding path is
# untouched (l3fwd never checks the checksum in software). It runs with
# --parse-ptype (the vdevs set no packet type). Its rate is read from the
# ethdev counters through the telemetry socket over SECS after a 1 s warm-up.
#
# Prints per round and the median: Mpps (frames received and forwarded per
# second) and TSC cycles per packet (TSC Hz / pps), and the ratio.
#   usage: sudo perf/l3fwd_vs_dpdk.sh [SECONDS] [CORE] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
CORE=${2:-1}
ROUNDS=${3:-3}
if ! pkg-config --exists libdpdk 2>/dev/null || [ ! -d /usr/share/dpdk/examples/l3fwd ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q dpdk dpdk-dev dpdk-doc pkg-config >/dev/null
fi
PMDS=$(pkg-config --variable=pmdsdir libdpdk 2>/dev/null || true)
[ -d "$PMDS" ] || PMDS=$(dirname "$(find /usr/lib -name 'librte_net_pcap.so' | head -1)")
cargo build --release -q -p wirespeed-apps --example l3fwd_bench
OURS=target/release/examples/l3fwd_bench
OUT=$(mktemp -d)
DPID=
trap '[ -n "$DPID" ] && kill -INT $DPID 2>/dev/null; rm -rf "$OUT"' EXIT

# DPDK's l3fwd, built from its source with the one change above.
cp -r /usr/share/dpdk/examples/l3fwd /usr/share/dpdk/examples/common "$OUT/"
sed -i 's/^\t\t\.offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM,/\t\t.offloads = 0,/' "$OUT/l3fwd/main.c"
grep -q '\.offloads = 0,' "$OUT/l3fwd/main.c" || { echo "patching l3fwd's rx offloads failed" >&2; exit 1; }
make -s -C "$OUT/l3fwd" >/dev/null 2>"$OUT/make.log" || { cat "$OUT/make.log" >&2; exit 1; }
DPDK_L3FWD="$OUT/l3fwd/build/l3fwd"

# The two input streams (60-byte frames: 64 on the wire with the FCS).
python3 - "$OUT" <<'EOF'
import struct, sys
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s > 0xffff:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def frame(rx_port, i):
    out = 1 - rx_port
    udp = struct.pack('!HHHH', 4000, 5000, 26, 0) + bytes(18)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), i, 0x4000, 64, 17, 0,
                     bytes([198, 18, rx_port, 1]), bytes([198, 18, out, 1 + i % 32]))
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    eth = bytes([2, 0, 0, 0, 0, 0x10 + rx_port, 2, 0, 0, 0, 0, 0x20 + rx_port]) + b'\x08\x00'
    return eth + ip + udp
for p in (0, 1):
    with open('%s/p%d.pcap' % (sys.argv[1], p), 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
        for i in range(32):
            fr = frame(p, i)
            assert len(fr) == 60
            f.write(struct.pack('<IIII', 0, i, 60, 60) + fr)
EOF

cat > "$OUT/ws.toml" <<EOT
[run]
lcore = $CORE
burst = 32
ring = 1024
pool = 8192
no_huge = true
[[port]]
spec = "replay:$OUT/p0.pcap"
address = "10.0.0.1/24"
mac = "02:00:00:00:00:10"
[[port]]
spec = "replay:$OUT/p1.pcap"
address = "10.0.1.1/24"
mac = "02:00:00:00:00:11"
[[route]]
prefix = "198.18.0.0/24"
port = 0
via = "10.0.0.2"
[[route]]
prefix = "198.18.1.0/24"
port = 1
via = "10.0.1.2"
[[neighbour]]
port = 0
address = "10.0.0.2"
mac = "02:00:00:00:00:20"
[[neighbour]]
port = 1
address = "10.0.1.2"
mac = "02:00:00:00:00:21"
EOT

# Reads both ports' ipackets/opackets from DPDK's telemetry socket twice,
# SECS apart, after a warm-up; prints rx and tx packets per second.
cat > "$OUT/tel.py" <<'EOF'
import json, socket, sys, time
path, secs = sys.argv[1], float(sys.argv[2])
for _ in range(100):
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(path)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("no telemetry socket at " + path)
s.recv(4096)
def snap():
    v = []
    for p in (0, 1):
        s.send(b"/ethdev/stats,%d" % p)
        v.append(json.loads(s.recv(1 << 16))["/ethdev/stats"])
    return time.monotonic(), sum(x["ipackets"] for x in v), sum(x["opackets"] for x in v)
time.sleep(1.0)
t0, i0, o0 = snap()
time.sleep(secs)
t1, i1, o1 = snap()
print("%.0f %.0f" % ((i1 - i0) / (t1 - t0), (o1 - o0) / (t1 - t0)))
EOF

run_ours() {
  local o
  o=$("$OURS" --config "$OUT/ws.toml" --duration "$SECS")
  grep -q '^balanced *yes' <<<"$o" || { echo "wirespeed: counters do not balance" >&2; echo "$o" >&2; exit 1; }
  local rx fw
  rx=$(awk '$1=="rx"{print $2}' <<<"$o"); fw=$(awk '$1=="forwarded"{print $2}' <<<"$o")
  [ "$rx" = "$fw" ] || { echo "wirespeed: rx $rx forwarded $fw" >&2; exit 1; }
  awk '$1=="rx_mpps"{m=$2} $1=="cycles_per_rx"{c=$2} $1=="tsc_hz"{h=$2} END{print m, c, h}' <<<"$o"
}

run_dpdk() { # TSC_HZ
  local prefix="l3fwd-vs-$$"
  "$DPDK_L3FWD" -l "$CORE" --no-huge -m 1024 --no-pci --file-prefix "$prefix" \
    -d "$PMDS/librte_net_pcap.so" -d "$PMDS/librte_mempool_ring.so" \
    --vdev "net_pcap0,rx_pcap=$OUT/p0.pcap,infinite_rx=1" \
    --vdev "net_pcap1,rx_pcap=$OUT/p1.pcap,infinite_rx=1" \
    -- -p 0x3 --config "(0,0,$CORE),(1,0,$CORE)" --parse-ptype >"$OUT/dpdk.log" 2>&1 &
  DPID=$!
  local r
  r=$(python3 "$OUT/tel.py" "/var/run/dpdk/$prefix/dpdk_telemetry.v2" "$SECS") || { kill -INT $DPID; cat "$OUT/dpdk.log" >&2; exit 1; }
  kill -INT $DPID; wait $DPID 2>/dev/null || true; DPID=
  read -r rxpps txpps <<<"$r"
  # Every received frame must be forwarded (the drop queue counts them).
  awk -v a="$rxpps" -v b="$txpps" 'BEGIN{exit !(b >= 0.99 * a)}' || { echo "dpdk: rx $rxpps/s tx $txpps/s" >&2; exit 1; }
  awk -v p="$rxpps" -v hz="$1" 'BEGIN{printf "%.3f %.1f\n", p / 1e6, hz / p}'
}

echo "# $(date -u +%F) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), core $CORE, ${SECS}s x $ROUNDS rounds"
printf '%-6s %-28s %8s %9s\n' round router Mpps cyc/pkt
W=(); D=(); R=()
for r in $(seq 1 "$ROUNDS"); do
  read -r wm wc hz <<<"$(run_ours)"
  printf '%-6s %-28s %8s %9s\n' "$r" "wirespeed l3fwd example" "$wm" "$wc"
  read -r dm dc <<<"$(run_dpdk "$hz")"
  printf '%-6s %-28s %8s %9s\n' "$r" "DPDK 22.11 l3fwd (LPM)" "$dm" "$dc"
  R+=("$(awk -v a="$wm" -v b="$dm" 'BEGIN{printf "%.2f", a / b}')")
  printf '%-6s %-28s %8sx\n' "$r" "ratio" "${R[-1]}"
  W+=("$wm $wc"); D+=("$dm $dc")
done
median() { sort -n | awk '{a[NR]=$0} END{print a[int((NR+1)/2)]}'; }
WM=$(printf '%s\n' "${W[@]}" | median); DM=$(printf '%s\n' "${D[@]}" | median)
read -r wm wc <<<"$WM"; read -r dm dc <<<"$DM"
printf '%-6s %-28s %8s %9s\n' median "wirespeed l3fwd example" "$wm" "$wc"
printf '%-6s %-28s %8s %9s\n' median "DPDK 22.11 l3fwd (LPM)" "$dm" "$dc"
awk -v a="$wm" -v b="$dm" 'BEGIN{printf "ratio of the medians  wirespeed / DPDK = %.2fx\n", a / b}'
printf 'median of the round ratios = %sx\n' "$(printf '%s\n' "${R[@]}" | median)"
