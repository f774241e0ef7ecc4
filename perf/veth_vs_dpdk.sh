#!/usr/bin/env bash
# Kernel-interface ports on a veth pair, peers in the same run, each tool
# alone on one core (CORE), 64-byte frames (60 B + FCS):
#   TX: wirespeed af_xdp | dpdk-testpmd 22.11 txonly on net_af_xdp |
#       wirespeed af_packet | dpdk-testpmd txonly on net_af_packet | trafgen
#       (netsniff-ng: AF_PACKET TX ring, qdisc bypass)
#       pps = frames the other end of the veth received (its rx_packets in
#       sysfs) over the measuring window;
#   RX: trafgen on the other end (other core) floods; wirespeed af_xdp /
#       af_packet vs testpmd rxonly on the same PMDs count what they got;
#       drops = sent (trafgen's end tx_packets) - received.
# Cycles per packet: the core's busy time (/proc/stat: user+nice+system+
# irq+softirq+steal) over the window × TSC Hz / packets. The veth's own
# receive work (softirq on the sending core) is in every TX figure alike.
#   usage: sudo perf/veth_vs_dpdk.sh [SECONDS] [CORE]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
CORE=${2:-1}
OTHER=$(( CORE == 0 ? 1 : 0 ))
# trafgen pins its one worker to CPU 0 (it binds worker i to CPU i), so the
# tools under test take CORE (default 1) and trafgen's flood CPU 0.
[ "$(id -u)" = 0 ] || { echo "needs root (veth, AF_XDP, AF_PACKET)"; exit 2; }
for c in dpdk-testpmd trafgen; do
  command -v $c >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends dpdk dpdk-dev librte-net-af-xdp23 librte-net-af-packet23 netsniff-ng >/dev/null
done
cargo build --release -q -p wirespeed-apps
WS=./target/release/wirespeed
OUT=$(mktemp -d)
A=wsvb0 B=wsvb1
cleanup() { ip link del $A 2>/dev/null || true; rm -rf "$OUT"; }
trap cleanup EXIT
ip link del $A 2>/dev/null || true
ip link add $A type veth peer name $B
for i in $A $B; do
  sysctl -qw net.ipv6.conf.$i.disable_ipv6=1
  ip link set $i up
done
MAC_B=$(cat /sys/class/net/$B/address)
MAC_A=$(cat /sys/class/net/$A/address)

PMDS=$(dirname "$(find /usr/lib -name 'librte_net_af_xdp.so*' -path '*pmds*' | head -1)")
so() { ls "$PMDS"/$1.so* | head -1; }
XDPSO=$(so librte_net_af_xdp); PKTSO=$(so librte_net_af_packet); RINGSO=$(so librte_mempool_ring)

busy() { awk -v c="cpu$1" '$1==c {print $2+$3+$4+$7+$8+$9}' /proc/stat; }
cnt() { cat /sys/class/net/$1/statistics/$2; }
HZ_USER=$(getconf CLK_TCK)
TSC_HZ=""

# One measuring window over a running tool: "pps cycles/packet".
window() { # iface counter core
  local p0 b0 p1 b1
  p0=$(cnt "$1" "$2"); b0=$(busy "$3")
  sleep "$SECS"
  p1=$(cnt "$1" "$2"); b1=$(busy "$3")
  python3 -c "p=$p1-$p0; c=($b1-$b0)*$TSC_HZ/$HZ_USER; print('%.3f %.0f' % (p/$SECS/1e6, c/max(p,1)))"
}

stop() { kill -INT "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# ------------------------------------------------------------------ TX
ws_tx() { # kind → "Mpps cyc"
  $WS gen --no-huge -q --port "$1:$A" --lcores "$CORE" --size 64 --duration $((SECS + 10)) \
    --json "$OUT/ws.json" >/dev/null 2>&1 &
  local pid=$!; sleep 1.5
  window $B rx_packets "$CORE"
  stop $pid
}
testpmd_tx() { # vdev args → "Mpps cyc"
  dpdk-testpmd -l "$OTHER,$CORE" --main-lcore "$OTHER" --no-huge -m 1024 --no-pci \
    -d "$1" -d "$RINGSO" --vdev "$2" --file-prefix wsveth -- \
    --forward-mode=txonly --txpkts=60 --burst=32 --total-num-mbufs=16384 --nb-cores=1 --stats-period 1 \
    --eth-peer=0,$MAC_B </dev/zero >"$OUT/testpmd.log" 2>&1 &
  local pid=$!; sleep 4
  window $B rx_packets "$CORE"
  stop $pid
}
cat > "$OUT/pkt.cfg" <<EOT
{ eth(da=$MAC_B, sa=$MAC_A), ipv4(saddr=198.18.0.1, daddr=198.18.0.2), udp(sp=1024, dp=1024), fill(0, 18) }
EOT
# trafgen binds worker i to CPU i (-P 1: CPU 0): its window reads CPU 0.
trafgen_tx() {
  trafgen --dev $A --conf "$OUT/pkt.cfg" -P 1 -Q >/dev/null 2>&1 &
  local pid=$!; sleep 1.5
  window $B rx_packets 0
  stop $pid
}

# TSC Hz from a short wirespeed run.
$WS gen --no-huge -q --port null --lcores "$CORE" --duration 0.2 --json "$OUT/hz.json" >/dev/null 2>&1
TSC_HZ=$(python3 -c "import json;print(json.load(open('$OUT/hz.json'))['tsc_hz'])")

read -r T_WX T_WXC < <(ws_tx af_xdp)
read -r T_DX T_DXC < <(testpmd_tx "$XDPSO" "net_af_xdp0,iface=$A,start_queue=0,queue_count=1")
read -r T_WP T_WPC < <(ws_tx af_packet)
read -r T_DP T_DPC < <(testpmd_tx "$PKTSO" "net_af_packet0,iface=$A,qpairs=1,qdisc_bypass=1,framecnt=2048,blocksz=4096,framesz=2048")
read -r T_TG T_TGC < <(trafgen_tx)

# ------------------------------------------------------------------ RX
# trafgen floods from B on the other core; the receiver on A counts.
flood() { # → "sent" over SECS
  local t0 t1
  t0=$(cnt $B tx_packets)
  timeout -s INT "$SECS" trafgen --dev $B --conf "$OUT/pkt_rx.cfg" -P 1 -Q >/dev/null 2>&1 || true
  t1=$(cnt $B tx_packets)
  echo $((t1 - t0))
}
cat > "$OUT/pkt_rx.cfg" <<EOT
{ eth(da=$MAC_A, sa=$MAC_B), ipv4(saddr=198.18.0.2, daddr=198.18.0.77), udp(sp=1024, dp=1024), fill(0, 18) }
EOT
# (to our MAC, not our IP address: wirespeed's stack drops them at
# ip_rcv, InAddrErrors, as cheaply as testpmd's rxonly frees them)
cat > "$OUT/rx.toml" <<EOT
[run]
lcores = "$CORE"
duration = $((SECS + 6))
[[port]]
spec = "KIND:$A"
ip = "198.18.0.1/24"
ring_size = 4096
[[stream]]
dst_mac = "02:00:00:00:00:99"
src_ip = "198.18.0.1"
dst_ip = "198.18.0.99"
rate = "1 pps"
size = 64
EOT
ws_rx() { # kind → "Mpps cyc drops"
  sed "s/KIND/$1/" "$OUT/rx.toml" > "$OUT/rx-$1.toml"
  $WS gen --no-huge -q "$OUT/rx-$1.toml" --json "$OUT/wsrx.json" >/dev/null 2>&1 &
  local pid=$!; sleep 2
  local b0 b1 sent
  b0=$(busy "$CORE"); sent=$(flood); b1=$(busy "$CORE")
  sleep 0.5; stop $pid
  python3 - "$OUT/wsrx.json" "$sent" "$b0" "$b1" <<EOT
import json,sys
j=json.load(open(sys.argv[1])); got=j['ports'][0]['rx_packets']; sent=int(sys.argv[2])
cyc=(int(sys.argv[4])-int(sys.argv[3]))*$TSC_HZ/$HZ_USER
print('%.3f %.0f %d' % (got/$SECS/1e6, cyc/max(got,1), max(sent-got,0)))
EOT
}
testpmd_rx() { # so vdev → "Mpps cyc drops"
  dpdk-testpmd -l "$OTHER,$CORE" --main-lcore "$OTHER" --no-huge -m 1024 --no-pci \
    -d "$1" -d "$RINGSO" --vdev "$2" --file-prefix wsveth -- \
    --forward-mode=rxonly --rxd=4096 --burst=32 --total-num-mbufs=16384 --nb-cores=1 --stats-period 1 </dev/zero >"$OUT/testpmd-rx.log" 2>&1 &
  local pid=$!; sleep 4
  local b0 b1 sent
  b0=$(busy "$CORE"); sent=$(flood); b1=$(busy "$CORE")
  sleep 0.5; stop $pid
  local got
  got=$(grep -E 'RX-packets:' "$OUT/testpmd-rx.log" | tail -1 | awk '{print $2}')
  python3 -c "got=${got:-0}; sent=$sent; c=($b1-$b0)*$TSC_HZ/$HZ_USER; print('%.3f %.0f %d' % (got/$SECS/1e6, c/max(got,1), max(sent-got,0)))"
}

read -r R_WX R_WXC R_WXD < <(ws_rx af_xdp)
read -r R_DX R_DXC R_DXD < <(testpmd_rx "$XDPSO" "net_af_xdp0,iface=$A,start_queue=0,queue_count=1")
read -r R_WP R_WPC R_WPD < <(ws_rx af_packet)
read -r R_DP R_DPC R_DPD < <(testpmd_rx "$PKTSO" "net_af_packet0,iface=$A,qpairs=1,framecnt=2048,blocksz=4096,framesz=2048")

ratio() { python3 -c "print('%.2fx' % ($1/max($2,1e-9)))"; }
echo "veth pair, 64 B, ${SECS}s windows, tool on core $CORE ($(date -u +%F))"
printf '%-44s %8s %8s %10s\n' "TX" Mpps cyc/pkt ""
printf '%-44s %8s %8s\n' "wirespeed af_xdp" "$T_WX" "$T_WXC"
printf '%-44s %8s %8s   wirespeed %s\n' "dpdk-testpmd txonly net_af_xdp" "$T_DX" "$T_DXC" "$(ratio "$T_WX" "$T_DX")"
printf '%-44s %8s %8s\n' "wirespeed af_packet" "$T_WP" "$T_WPC"
printf '%-44s %8s %8s   wirespeed %s\n' "dpdk-testpmd txonly net_af_packet" "$T_DP" "$T_DPC" "$(ratio "$T_WP" "$T_DP")"
printf '%-44s %8s %8s   wirespeed %s\n' "trafgen (AF_PACKET, qdisc bypass)" "$T_TG" "$T_TGC" "$(ratio "$T_WP" "$T_TG")"
printf '%-44s %8s %8s %10s\n' "RX (trafgen floods from the peer)" Mpps cyc/pkt drops
printf '%-44s %8s %8s %10s\n' "wirespeed af_xdp" "$R_WX" "$R_WXC" "$R_WXD"
printf '%-44s %8s %8s %10s   wirespeed %s\n' "dpdk-testpmd rxonly net_af_xdp" "$R_DX" "$R_DXC" "$R_DXD" "$(ratio "$R_WX" "$R_DX")"
printf '%-44s %8s %8s %10s\n' "wirespeed af_packet" "$R_WP" "$R_WPC" "$R_WPD"
printf '%-44s %8s %8s %10s   wirespeed %s\n' "dpdk-testpmd rxonly net_af_packet" "$R_DP" "$R_DPC" "$R_DPD" "$(ratio "$R_WP" "$R_DP")"
