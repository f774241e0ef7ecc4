#!/usr/bin/env bash
# End-to-end test of the igb PMD on QEMU's emulated igb (82576) behind an
# emulated VT-d IOMMU (TCG guest):
#   provision (setup.sh, cached) -> static `wirespeed` -> initramfs -> boot ->
#   in the guest: `wirespeed bind`, several `wirespeed gen --port igb:BDF` runs,
#   `wirespeed unbind` -> on the host: check QEMU's filter-dump pcap with
#   tshark (exact frame counts, sizes, VLAN ids, every IPv4 and UDP checksum),
#   the ARP peer's counts (RX path), and the guest log for IOMMU faults.
#
# The igb, a virtio-net NIC driven by the guest's own kernel and the host
# peer (peer.py, over `-netdev dgram`) are ports of one QEMU hub, so:
#   - RSS: a generator run with rss = true and two RX queues sends 256 UDP
#     flows to the peer's echo port; the echoes come back into the igb, and
#     each RX queue's count (the PMD's rx_qN_packets) must be exactly what
#     the Toeplitz hash of each echoed flow under the default key and the
#     round-robin RETA gives (the hash is recomputed here, checked first
#     against Microsoft's published verification vectors);
#   - TSO: a `mode = "tcp"` stream with `tso = true` sends N bytes to a
#     kernel TCP receiver (busybox nc) on the virtio NIC: the receiver must
#     get all N bytes with the SHA-256 of the generator's pattern, QEMU must
#     have taken TSE packets (the PMD's hw_tx_tso_contexts, QEMU's TSCTC),
#     and the pcap must show only MSS-sized (or smaller) segments with good
#     IPv4 and TCP checksums and no tshark expert error.
# The last line is `vm-igb: N passed, M failed`; exit status 1 on any failure.
#
#   WIRESPEED_VM_CACHE      cache (default /var/cache/wirespeed-vm): kernel, cargo target
#   WIRESPEED_VM_SKIP_SETUP=1   do not run setup.sh (packages + kernel already there)
#   WIRESPEED_VM_TIMEOUT    seconds QEMU may run (default 300)
#   WIRESPEED_VM_KEEP=1     keep the work folder (console log, pcap) and print its path
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${WIRESPEED_VM_CACHE:-/var/cache/wirespeed-vm}
LIMIT=${WIRESPEED_VM_TIMEOUT:-300}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wirespeed-vm.XXXXXX")
T0=$(date +%s.%N)
el() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
log() { echo "vm-igb [$(el)s]: $*"; }

QPID="" PPID_PEER=""
cleanup() {
    # End what this script started, by PID only.
    if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then kill "$QPID" 2>/dev/null; sleep 1; kill -9 "$QPID" 2>/dev/null; fi
    if [ -n "$PPID_PEER" ] && kill -0 "$PPID_PEER" 2>/dev/null; then kill "$PPID_PEER" 2>/dev/null; fi
    if [ "${WIRESPEED_VM_KEEP:-0}" = 1 ]; then echo "vm-igb: work folder kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); echo "vm-igb: PASS $1"; }
bad() { FAIL=$((FAIL + 1)); echo "vm-igb: FAIL $1: $2"; }
finish() { echo "vm-igb: $PASS passed, $FAIL failed"; [ "$FAIL" = 0 ] && [ "$PASS" -gt 0 ]; exit $?; }

# ------------------------------------------------------------------ provision
if [ "${WIRESPEED_VM_SKIP_SETUP:-0}" != 1 ]; then
    if ! bash "$HERE/setup.sh"; then bad setup "setup.sh failed"; finish; fi
fi
KROOT=$CACHE/kernel
KERNEL=$KROOT/vmlinux
[ -f "$KERNEL" ] || KERNEL=$(ls "$KROOT"/boot/vmlinuz-* 2>/dev/null | head -1)
if [ ! -f "${KERNEL:-}" ]; then bad setup "no guest kernel under $KROOT (run tests/vm/setup.sh)"; finish; fi
for b in qemu-system-x86_64 tshark busybox cpio modinfo python3; do
    command -v $b >/dev/null || { bad setup "$b missing (run tests/vm/setup.sh)"; finish; }
done
log "setup done"

# ------------------------------------------------------------------ build
# Static glibc binary: nothing to copy into the initramfs but the file.
if ! (cd "$ROOT" && CARGO_TARGET_DIR=$CACHE/target RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build -q --release -p wirespeed-apps --bin wirespeed --target x86_64-unknown-linux-gnu); then
    bad build "cargo build of the static wirespeed failed"; finish
fi
BIN=$CACHE/target/x86_64-unknown-linux-gnu/release/wirespeed
log "static wirespeed built ($(du -h "$BIN" | cut -f1))"

# ------------------------------------------------------------------ the test plan
NIC_MAC=52:54:00:12:34:56
PEER_MAC=02:de:ad:be:ef:02
PEER_IP=198.18.0.2
# The guest kernel's own NIC (virtio-net) and the TCP test.
KNIC_MAC=52:54:00:12:34:57
KERNEL_IP=198.18.0.3
TCP_PORT=5001
TCP_SPORT=40000
TCP_BYTES=4194304
TCP_WRITE=65536
# The RSS test: UDP flows from source ports RSS_SPORT0.. to the peer's echo port.
RSS_SPORT0=1000
RSS_FLOWS=256
RSS_COUNT=2048
# name | size (wire, with FCS) | vlan | extra gen flags | count | expected frame.len | expected vlan.id | sport
PLAN="udp60|64|0||1000|60||5001
udp61|65|0||1000|61||5002
udp1514|1518|0||1000|1514||5003
vlan-sw|68|100||1000|64|100|5004
vlan-hw|1518|200|--vlan-offload|1000|1514|200|5005
arp-udp|64|0|--arp|200|60||5006"

ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,sbin,dev,proc,sys,tmp,etc,cfg}
cp "$(command -v busybox)" "$ROOTFS/bin/busybox"
for a in $("$ROOTFS/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$ROOTFS/bin/$a"; done
cp "$BIN" "$ROOTFS/wirespeed"
cp "$HERE/init" "$ROOTFS/init"; chmod +x "$ROOTFS/init"

# Kernel modules for VFIO, with their dependencies, decompressed, in load order.
KVER=$(ls "$KROOT/lib/modules" | head -1)
MDIR=$KROOT/lib/modules/$KVER
declare -A SEEN=()
ORDER=()
add_mod() {
    local n=$1 p d alt
    [ -n "${SEEN[$n]:-}" ] && return 0
    SEEN[$n]=1
    alt=$(echo "$n" | tr '_-' '-_')
    p=$(find "$MDIR/kernel" \( -name "$n.ko*" -o -name "$alt.ko*" \) | head -1)
    if [ -z "$p" ]; then
        grep -qE "/${n//[-_]/[-_]}\.ko" "$MDIR/modules.builtin" 2>/dev/null && return 0
        echo "module $n not found in $MDIR" >&2; return 1
    fi
    for d in $(modinfo -F depends "$p" | tr ',' ' '); do add_mod "$d" || return 1; done
    ORDER+=("$p")
}
for m in vfio vfio_iommu_type1 vfio-pci virtio_net; do add_mod $m || { bad initramfs "kernel module $m"; finish; }; done
: > "$ROOTFS/etc/vm-modules"
for p in "${ORDER[@]}"; do
    dst=$ROOTFS/lib/modules/$(basename "$p"); dst=${dst%.xz}; dst=${dst%.zst}; dst=${dst%.gz}
    mkdir -p "$(dirname "$dst")"
    case $p in *.xz) xz -dc "$p" > "$dst";; *.zst) zstd -qdc "$p" > "$dst";; *.gz) gzip -dc "$p" > "$dst";; *) cp "$p" "$dst";; esac
    echo "/lib/modules/$(basename "$dst")" >> "$ROOTFS/etc/vm-modules"
done

# Guest configs and the guest test script.
{
    echo '#!/bin/sh'
    echo 'BDF=""'
    echo 'for d in /sys/bus/pci/devices/*; do'
    echo '  [ "$(cat $d/vendor)" = 0x8086 ] && [ "$(cat $d/device)" = 0x10c9 ] && BDF=$(basename $d)'
    echo 'done'
    echo 'echo "VMTEST: bdf=$BDF"'
    echo 'run() { n=$1; shift; echo "VMTEST: BEGIN $n: $*"; "$@"; rc=$?; echo "VMTEST: RESULT $n rc=$rc"; }'
    echo 'dump() { echo "VMTEST: JSON-BEGIN $1"; cat "$2" 2>/dev/null; echo; echo "VMTEST: JSON-END $1"; }'
    echo "KNIC_MAC=$KNIC_MAC KERNEL_IP=$KERNEL_IP TCP_PORT=$TCP_PORT"
    echo 'run devices-before /wirespeed devices'
    echo 'run bind /wirespeed bind $BDF'
    echo 'run devices-bound sh -c "/wirespeed devices | grep \"^$BDF .*drv=vfio-pci\""'
} > "$ROOTFS/tests.sh"
while IFS='|' read -r name size vlan flags count len vid sport; do
    cat > "$ROOTFS/cfg/$name.toml" <<EOF
[run]
lcores = "0"
count = $count
pages = "small"

[[port]]
spec = "null"
ring_size = 512

[[stream]]
size = $size
vlan = $vlan
src_mac = "$NIC_MAC"
dst_mac = "02:00:00:00:00:99"
src_ip = "198.18.0.1"
dst_ip = "$PEER_IP"
src_port = $sport
dst_port = 9
EOF
    echo "run $name /wirespeed gen /cfg/$name.toml --port igb:\$BDF --count $count --offload $flags --quiet" >> "$ROOTFS/tests.sh"
done <<< "$PLAN"
# RSS: two RX queues, 256 UDP flows echoed by the peer. The "hold" stream
# keeps the run going (at 100 pps, to a MAC nobody echoes) until its
# duration ends, so every echo is in before the port stops.
cat > "$ROOTFS/cfg/rss.toml" <<EOF
[run]
lcores = "0"
duration = 3
pages = "small"

[[port]]
spec = "null"
ring_size = 512
rss = true
rx_queues = 2

[[stream]]
name = "flows"
size = 64
rate = "2 kpps"
count = $RSS_COUNT
latency = true
src_mac = "$NIC_MAC"
dst_mac = "$PEER_MAC"
src_ip = "198.18.0.1"
dst_ip = "$PEER_IP"
dst_port = 7
[[stream.field]]
name = "src_port"
min = $RSS_SPORT0
max = $((RSS_SPORT0 + RSS_FLOWS - 1))

[[stream]]
name = "hold"
size = 64
rate = "100 pps"
src_mac = "$NIC_MAC"
dst_mac = "02:00:00:00:00:99"
src_ip = "198.18.0.1"
dst_ip = "$PEER_IP"
src_port = 5100
dst_port = 9
EOF
# TCP with TSO from the engine's stack into the guest kernel's receiver.
cat > "$ROOTFS/cfg/tcp.toml" <<EOF
[run]
lcores = "0"
# A bound: the run ends when every byte is acknowledged.
duration = 60
pages = "small"

[[port]]
spec = "null"
ring_size = 512
ip = "198.18.0.1/24"
tso = true

[[stream]]
name = "bulk"
mode = "tcp"
dst_ip = "$KERNEL_IP"
dst_port = $TCP_PORT
src_port = $TCP_SPORT
connections = 1
bytes = $TCP_BYTES
size = $TCP_WRITE
EOF
cat >> "$ROOTFS/tests.sh" <<'EOF'
run rss /wirespeed gen /cfg/rss.toml --port igb:$BDF --quiet --json /tmp/rss.json
dump rss /tmp/rss.json
# The kernel's NIC: no IPv6 (no router solicitations or MLD on the link).
ETH=""
for n in /sys/class/net/*; do [ "$(cat $n/address)" = "$KNIC_MAC" ] && ETH=$(basename $n); done
echo "VMTEST: kernel nic '$ETH'"
echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6
echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6
ip addr add $KERNEL_IP/24 dev $ETH && ip link set $ETH up
# The receiver: busybox nc runs cat on the accepted socket (no half-close
# of its own), which writes every byte to /tmp/tcp.bin until the FIN.
nc -l -p $TCP_PORT -e sh -c 'cat > /tmp/tcp.bin' &
NC=$!
hexport=$(printf '%04X' $TCP_PORT)
i=0
while ! grep -q ":$hexport 00000000:0000 0A" /proc/net/tcp && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
run tcp-tso /wirespeed gen /cfg/tcp.toml --port igb:$BDF --quiet --json /tmp/tcp.json
i=0
while kill -0 $NC 2>/dev/null && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
kill -0 $NC 2>/dev/null && { echo "VMTEST: tcp receiver still running after 20 s; killed"; kill $NC; }
echo "VMTEST: tcp-rx bytes=$(wc -c < /tmp/tcp.bin) sha256=$(sha256sum /tmp/tcp.bin | cut -d' ' -f1)"
dump tcp /tmp/tcp.json
grep -E "^(Tcp|Ip):" /proc/net/snmp | sed "s/^/VMTEST: snmp: /"
EOF
{
    echo 'run unbind /wirespeed unbind $BDF'
    echo 'run devices-unbound sh -c "/wirespeed devices | grep \"^$BDF .*drv=none\""'
    echo 'dmesg | grep -iE "dmar|vfio|iommu" | tail -20 | sed "s/^/VMTEST: dmesg: /"'
} >> "$ROOTFS/tests.sh"
chmod +x "$ROOTFS/tests.sh"
(cd "$ROOTFS" && find . | cpio -o -H newc --quiet) | gzip -1 > "$WORK/initramfs.cpio.gz"
log "initramfs built ($(du -h "$WORK/initramfs.cpio.gz" | cut -f1), kernel $KVER, modules: ${#ORDER[@]})"

# ------------------------------------------------------------------ boot
PORT=$((30000 + RANDOM % 20000))
python3 "$HERE/peer.py" --listen $((PORT + 1)) --qemu $PORT --mac $PEER_MAC --ip $PEER_IP \
    --out "$WORK/peer.json" --timeout $((LIMIT + 30)) &
PPID_PEER=$!
for _ in $(seq 50); do [ -s "$WORK/peer.json" ] || ! kill -0 $PPID_PEER 2>/dev/null && break; sleep 0.1; done
if [ ! -s "$WORK/peer.json" ]; then bad peer "tests/vm/peer.py did not start (see its error above)"; finish; fi
PCAP=$WORK/igb.pcap
LOG=$WORK/console.log
qemu-system-x86_64 -machine q35,accel=tcg -cpu max -smp 1 -m 768 \
    -nographic -nodefaults -no-reboot -serial stdio -pidfile "$WORK/qemu.pid" \
    -device intel-iommu,aw-bits=48 \
    -netdev hubport,id=n0,hubid=0 \
    -netdev hubport,id=n1,hubid=0 \
    -netdev "dgram,id=d0,local.type=inet,local.host=127.0.0.1,local.port=$PORT,remote.type=inet,remote.host=127.0.0.1,remote.port=$((PORT + 1))" \
    -netdev hubport,id=n2,hubid=0,netdev=d0 \
    -device igb,netdev=n0,mac=$NIC_MAC \
    -device virtio-net-pci,netdev=n1,mac=$KNIC_MAC \
    -object "filter-dump,id=f0,netdev=n0,file=$PCAP" \
    -kernel "$KERNEL" -initrd "$WORK/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 intel_iommu=on quiet" \
    < /dev/null > "$LOG" 2>&1 &
QPID=$!
log "QEMU pid $QPID, dgram ports $PORT/$((PORT + 1)), limit ${LIMIT}s"
deadline=$(( $(date +%s) + LIMIT ))
while kill -0 "$QPID" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        bad boot "QEMU still running after ${LIMIT}s; killed (pid $QPID)"
        kill "$QPID" 2>/dev/null; sleep 1; kill -9 "$QPID" 2>/dev/null
        break
    fi
    if grep -q "Kernel panic" "$LOG" 2>/dev/null; then kill "$QPID" 2>/dev/null; fi
    sleep 0.5
done
wait "$QPID" 2>/dev/null
QPID=""
sleep 0.3
kill "$PPID_PEER" 2>/dev/null; wait "$PPID_PEER" 2>/dev/null; PPID_PEER=""
log "QEMU ended"
grep -E "VMTEST|wirespeed|DMAR|panic" "$LOG" | tr -d '\r' | sed 's/^/  guest| /'

# ------------------------------------------------------------------ checks
grep -q "VMTEST: poweroff" "$LOG" && ok "guest ran the test script to the end" || bad boot "the guest did not reach poweroff"
step_rc() { grep -a "VMTEST: RESULT $1 rc=" "$LOG" | tail -1 | sed 's/.*rc=//' | tr -d '\r'; }
for s in bind devices-bound unbind devices-unbound; do
    rc=$(step_rc $s)
    [ "$rc" = 0 ] && ok "guest: wirespeed $s" || bad "guest: wirespeed $s" "rc='${rc}'"
done

tsh() { tshark -r "$PCAP" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE "$@" 2>/dev/null; }
while IFS='|' read -r name size vlan flags count len vid sport; do
    rc=$(step_rc "$name")
    if [ "$rc" != 0 ]; then bad "$name" "wirespeed gen exit status '${rc}'"; continue; fi
    out=$(tsh -Y "eth.src == $NIC_MAC && udp.srcport == $sport" \
        -T fields -E separator=, -e frame.len -e vlan.id -e ip.checksum.status -e udp.checksum.status -e eth.dst)
    n=$(printf '%s' "$out" | grep -c . || true)
    want_dst=02:00:00:00:00:99
    [ "$name" = arp-udp ] && want_dst=$PEER_MAC
    badlines=$(printf '%s\n' "$out" | grep . | grep -vc "^$len,$vid,1,1,$want_dst\$" || true)
    if [ "$n" = "$count" ] && [ "$badlines" = 0 ]; then
        ok "$name: pcap holds exactly $count frames of $len bytes${vid:+ on VLAN $vid}, every IPv4 and UDP checksum good (tshark)"
    else
        bad "$name" "pcap: $n frames (want $count), $badlines not '$len,$vid,1,1,$want_dst'; first: $(printf '%s\n' "$out" | grep . | sort | uniq -c | head -3 | tr '\n' ';')"
    fi
done <<< "$PLAN"

# RX: the ARP reply came in through the NIC's RX ring, and the UDP frames
# reached the host peer at the resolved address.
if grep -aq "ARP: $PEER_IP is at $PEER_MAC" "$LOG"; then
    ok "arp: the guest resolved $PEER_IP to $PEER_MAC through the igb RX ring"
else
    bad arp "no 'ARP: $PEER_IP is at $PEER_MAC' in the guest log"
fi
got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["udp_to_peer"].get("5006", 0))' "$WORK/peer.json" 2>/dev/null || echo "?")
[ "$got" = 200 ] && ok "arp-udp: the host peer received all 200 UDP frames" || bad arp-udp "host peer counted '$got' of 200 UDP frames"

# RSS and TSO: the JSON summaries the guest printed between markers.
json_of() {
    awk -v b="VMTEST: JSON-BEGIN $1" -v e="VMTEST: JSON-END $1" \
        '{sub(/\r$/, "")} $0 == e {f = 0} f {print} $0 == b {f = 1}' "$LOG" > "$WORK/$1.json"
}
vm_checks() {
    # checks.py prints "PASS what" / "FAIL name: why", one line per check.
    local line
    while IFS= read -r line; do
        case $line in
            "PASS "*) ok "${line#PASS }" ;;
            "FAIL "*) line=${line#FAIL }; bad "${line%%: *}" "${line#*: }" ;;
            *) bad checks "unexpected output of checks.py: $line" ;;
        esac
    done < <(python3 "$HERE/checks.py" "$@" 2>&1)
}
json_of rss
rc=$(step_rc rss)
if [ "$rc" = 0 ]; then
    ok "rss: wirespeed gen with rss = true, rx_queues = 2 ran"
    vm_checks rss --json "$WORK/rss.json" --peer "$WORK/peer.json" \
        --sport0 $RSS_SPORT0 --flows $RSS_FLOWS --count $RSS_COUNT --nic-ip 198.18.0.1 --peer-ip $PEER_IP
else
    bad rss "wirespeed gen exit status '${rc}'"
fi
json_of tcp
knic=$(grep -a "VMTEST: kernel nic '" "$LOG" | tail -1 | tr -d '\r' | sed "s/.*nic '\(.*\)'.*/\1/")
if [ -n "$knic" ]; then
    ok "tcp: the guest kernel drives the virtio-net NIC $KNIC_MAC as $knic"
else
    bad tcp-kernel-nic "no guest interface has MAC $KNIC_MAC (did virtio_net load? see 'insmod' lines above)"
fi
rc=$(step_rc tcp-tso)
rx=$(grep -a "VMTEST: tcp-rx " "$LOG" | tail -1 | tr -d '\r')
rxb=$(echo "$rx" | sed -n 's/.*bytes=\([0-9]*\).*/\1/p')
rxs=$(echo "$rx" | sed -n 's/.*sha256=\([0-9a-f]*\).*/\1/p')
if [ "$rc" = 0 ]; then
    ok "tcp-tso: wirespeed gen of a TCP stream with tso = true ran"
else
    bad tcp-tso "wirespeed gen exit status '${rc}'"
fi
vm_checks tcp --json "$WORK/tcp.json" --pcap "$PCAP" --mac $NIC_MAC --sport $TCP_SPORT \
    --bytes $TCP_BYTES --write $TCP_WRITE --rx-bytes "${rxb:--1}" --rx-sha "${rxs:-none}"

nf=$(grep -ac "DMAR: \[DMA" "$LOG" || true)
[ "$nf" = 0 ] && ok "no 'DMAR: [DMA' fault in the guest kernel log" || bad dmar "$nf IOMMU fault line(s) in the guest log"

finish
