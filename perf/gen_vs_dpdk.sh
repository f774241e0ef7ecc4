#!/usr/bin/env bash
# Raw generator to the null port, one lcore, 64 B, burst 32: wirespeed vs DPDK
# testpmd (txonly → net_null) on the same core. Prints Mpps, cycles/packet and
# the ratio. Installs DPDK (dpdk, dpdk-dev) if testpmd is missing.
#   usage: perf/gen_vs_dpdk.sh [SECONDS] [CORE]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
CORE=${2:-1}
MAIN=$(( CORE == 0 ? 1 : 0 ))
if ! command -v dpdk-testpmd >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dpdk dpdk-dev >/dev/null
fi
cargo build --release -q -p wirespeed-apps
OUT=$(mktemp -d)
./target/release/wirespeed gen --port null --lcores "$CORE" --size 64 --duration "$SECS" \
  --no-huge -q --json "$OUT/ws.json" >/dev/null
WS_MPPS=$(python3 -c "import json;print('%.2f'%json.load(open('$OUT/ws.json'))['mpps'])")
WS_CPP=$(python3 -c "import json;print('%.1f'%json.load(open('$OUT/ws.json'))['cycles_per_packet'])")
LIB=$(dirname "$(find /usr/lib -name 'librte_net_null.so.*' -path '*pmds*' | head -1)")
NULLSO=$(ls "$LIB"/librte_net_null.so.?? | head -1)
RINGSO=$(ls "$LIB"/librte_mempool_ring.so.?? | head -1)
timeout -s INT $((SECS + 3)) dpdk-testpmd -l "$MAIN,$CORE" --main-lcore "$MAIN" --no-huge -m 1024 --no-pci \
  -d "$NULLSO" -d "$RINGSO" --vdev net_null0 --file-prefix wsperf -- \
  --forward-mode=txonly --txpkts=64 --burst=32 --total-num-mbufs=16384 --stats-period 1 \
  >"$OUT/testpmd.log" 2>&1 || true
# Mean of the per-second Tx-pps samples after the first (warm-up) one.
DPDK_MPPS=$(grep -E '^\s*Tx-pps:' "$OUT/testpmd.log" | awk '{print $2}' | tail -n +2 | \
  awk '{s+=$1;n++} END {if (n) printf "%.2f", s/n/1e6; else print "0"}')
HZ=$(python3 -c "import json;print(json.load(open('$OUT/ws.json'))['tsc_hz'])")
DPDK_CPP=$(python3 -c "print('%.1f' % ($HZ/($DPDK_MPPS*1e6)) if $DPDK_MPPS>0 else 'n/a')")
RATIO=$(python3 -c "print('%.2f' % ($WS_MPPS/$DPDK_MPPS) if $DPDK_MPPS>0 else 'n/a')")
printf '%-34s %10s %14s\n' "raw gen → null, 64 B, burst 32" "Mpps" "cycles/packet"
printf '%-34s %10s %14s\n' "wirespeed (core $CORE)" "$WS_MPPS" "$WS_CPP"
printf '%-34s %10s %14s\n' "dpdk-testpmd txonly (core $CORE)" "$DPDK_MPPS" "$DPDK_CPP"
echo "ratio wirespeed/DPDK: $RATIO"
rm -rf "$OUT"
