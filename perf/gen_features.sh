#!/usr/bin/env bash
# Generator feature costs, one lcore, 64-byte frames:
#  1. per-packet TX timestamping + latency histogram recording vs a plain
#     stream (an in-process ring pair: the same lcore sends and receives);
#  2. pacing accuracy (achieved/target) and inter-packet gap jitter p99 at
#     1 Mpps and 10 Mpps, gaps taken at a stamping sink (`null?stamps=FILE`:
#     the TSC of the tx_burst that carried each packet) and, as before, from
#     the per-packet TX timestamps of a pcap port (its writer in the way).
#   usage: perf/gen_features.sh [SECONDS] [CORE]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-3}
CORE=${2:-1}
cargo build --release -q -p wirespeed-apps
WS=./target/release/wirespeed
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cfg() { # name latency
  cat > "$OUT/$1.toml" <<EOT
[run]
lcores = "$CORE"
duration = $SECS
[[port]]
spec = "ring:$1"
[[port]]
spec = "ring:$1"
[[stream]]
size = 64
latency = $2
rx_port = 1
EOT
}
mpps() { python3 -c "import json;print('%.2f'%json.load(open('$1'))['mpps'])"; }
cfg plain false; cfg stamped true
$WS gen "$OUT/plain.toml" -q --no-huge --json "$OUT/plain.json" >/dev/null
$WS gen "$OUT/stamped.toml" -q --no-huge --json "$OUT/stamped.json" >/dev/null
P=$(mpps "$OUT/plain.json"); S=$(mpps "$OUT/stamped.json")
echo "timestamp + histogram, ring pair, 64 B, core $CORE:"
echo "  plain   $P Mpps"
echo "  latency $S Mpps  (cost $(python3 -c "print('%.1f%%' % (100*(1-$S/$P)))"); every packet stamped, returned and recorded)"
# TX stamping alone: the same streams to the null port (nothing comes back).
for L in false true; do
  printf '[run]\nlcores = "%s"\nduration = %s\n[[port]]\nspec = "null"\n[[stream]]\nsize = 64\nlatency = %s\n' \
    "$CORE" "$SECS" "$L" > "$OUT/tx$L.toml"
  $WS gen "$OUT/tx$L.toml" -q --no-huge --json "$OUT/tx$L.json" >/dev/null
done
TP=$(mpps "$OUT/txfalse.json"); TS=$(mpps "$OUT/txtrue.json")
echo "TX stamping alone (sequence + TSC into each frame), to null, 64 B, core $CORE:"
echo "  plain   $TP Mpps"
echo "  stamped $TS Mpps  (cost $(python3 -c "print('%.1f%%' % (100*(1-$TS/$TP)))"))"
# TX and RX on different lcores: the stream sent by core $CORE, its returns
# polled by the other core (port rx_lcore).
OTHER=$(( CORE == 0 ? 1 : 0 ))
for L in false true; do
  cat > "$OUT/x$L.toml" <<EOT
[run]
lcores = "0-1"
duration = $SECS
[[port]]
spec = "ring:x$L"
[[port]]
spec = "ring:x$L"
rx_lcore = $OTHER
[[stream]]
size = 64
latency = $L
rx_port = 1
lcores = "$CORE"
EOT
  $WS gen "$OUT/x$L.toml" -q --no-huge --json "$OUT/x$L.json" >/dev/null
done
XP=$(mpps "$OUT/xfalse.json"); XS=$(mpps "$OUT/xtrue.json")
echo "timestamp + histogram, TX on core $CORE, RX on core $OTHER, ring pair, 64 B:"
echo "  plain   $XP Mpps"
echo "  latency $XS Mpps  (cost $(python3 -c "print('%.1f%%' % (100*(1-$XS/$XP)))"))"
echo "pacing, 64 B to a pcap port:"
for RATE in 1 10; do
  N=$((RATE * 200000))
  $WS gen --port "pcap:$OUT/p$RATE.pcap" --lcores "$CORE" --rate "$RATE Mpps" --count "$N" \
    -q --no-huge --json "$OUT/p$RATE.json" >/dev/null
  python3 - "$OUT/p$RATE.pcap" "$OUT/p$RATE.json" "$RATE" <<'EOP'
import json, struct, sys
path, js, rate = sys.argv[1], sys.argv[2], float(sys.argv[3]) * 1e6
b = open(path, 'rb').read()
off, ts = 24, []
while off < len(b):
    s, ns, incl, _ = struct.unpack_from('<IIII', b, off)
    ts.append(s * 1_000_000_000 + ns)
    off += 16 + incl
ideal = 1e9 / rate
dev = sorted(abs((ts[i] - ts[i - 1]) - ideal) for i in range(1, len(ts)))
p99 = dev[int(len(dev) * 0.99)]
j = json.load(open(js))['streams'][0]
print(f"  {rate/1e6:>4.0f} Mpps: achieved/target {j['achieved_pps']/j['target_pps']:.5f}, "
      f"gap jitter p99 {p99:.0f} ns (ideal gap {ideal:.0f} ns), {len(ts)} packets")
EOP
done
echo "pacing, 64 B to a stamping sink (null?stamps: the time of each packet's tx_burst):"
for RATE in 1 10; do
  N=$((RATE * 200000))
  $WS gen --port "null?stamps=$OUT/s$RATE.bin" --lcores "$CORE" --rate "$RATE Mpps" --count "$N" \
    -q --no-huge --json "$OUT/s$RATE.json" >/dev/null
  python3 - "$OUT/s$RATE.bin" "$OUT/s$RATE.json" "$RATE" <<'EOP'
import json, struct, sys
path, js, rate = sys.argv[1], sys.argv[2], float(sys.argv[3]) * 1e6
b = open(path, 'rb').read()
ts = struct.unpack('<%dQ' % (len(b) // 8), b)
ideal = 1e9 / rate
dev = sorted(abs((ts[i] - ts[i - 1]) - ideal) for i in range(1, len(ts)))
p50, p99 = dev[len(dev) // 2], dev[int(len(dev) * 0.99)]
j = json.load(open(js))['streams'][0]
print(f"  {rate/1e6:>4.0f} Mpps: achieved/target {j['achieved_pps']/j['target_pps']:.5f}, "
      f"gap jitter p50 {p50:.0f} ns p99 {p99:.0f} ns (ideal gap {ideal:.0f} ns), {len(ts)} packets")
EOP
done
