#!/usr/bin/env bash
# Socket streams on every lcore (issue 15): a `mode = "socket"` UDP stream
# (18-byte datagrams through the whole stack: udp_sendmsg, ip_make_skb,
# neighbour, pfifo_fast + BQL, the driver) into a `null` port with a static
# neighbour, from one lcore and then from two, ROUNDS times interleaved so
# both see the same machine. Prints each run's Mpps (datagrams the port
# transmitted per second) and the median ratio two/one.
#   usage: perf/gen_socket_lcores.sh [SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-2}
ROUNDS=${2:-5}
cargo build --release -q -p wirespeed-apps
WS=./target/release/wirespeed
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for n in 1 2; do
  lc=$([ "$n" = 1 ] && echo 1 || echo 0-1)
  cat > "$OUT/l$n.toml" <<EOT
[run]
lcores = "$lc"
duration = $SECS
[[port]]
spec = "null"
ip = "10.0.0.1/24"
[[port.neigh]]
ip = "10.0.0.2"
mac = "02:00:00:00:00:02"
[[stream]]
mode = "socket"
dst_ip = "10.0.0.2"
dst_port = 9
size = 18
EOT
done
echo "# gen_socket_lcores: $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  for n in 1 2; do
    "$WS" gen --no-huge -q "$OUT/l$n.toml" --json "$OUT/r$r-$n.json" >/dev/null
  done
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, sys, statistics
out, rounds = sys.argv[1], int(sys.argv[2])
one, two, ratios = [], [], []
for r in range(1, rounds + 1):
    a = json.load(open(f"{out}/r{r}-1.json"))
    b = json.load(open(f"{out}/r{r}-2.json"))
    tx = lambda v: sum(p["tx_packets"] for p in v["ports"]) / v["duration_s"] / 1e6
    x, y = tx(a), tx(b)
    per = [l["packets"] for l in b["lcores"]]
    one.append(x); two.append(y); ratios.append(y / x)
    print(f"round {r}: one lcore {x:7.3f} Mpps, two lcores {y:7.3f} Mpps (per lcore {per}), ratio {y / x:.2f}")
print(f"median: one {statistics.median(one):.3f} Mpps, two {statistics.median(two):.3f} Mpps, ratio {statistics.median(ratios):.2f}")
PY
