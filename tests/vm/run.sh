#!/usr/bin/env bash
# End-to-end test of the igb PMD on QEMU's emulated igb (82576) behind an
# emulated VT-d IOMMU (TCG guest):
#   provision (setup.sh, cached) -> static `wirespeed` -> initramfs -> boot ->
#   in the guest: `wirespeed bind`, several `wirespeed gen --port igb:BDF` runs,
#   `wirespeed unbind` -> on the host: check QEMU's filter-dump pcap with
#   tshark (exact frame counts, sizes, VLAN ids, every IPv4 and UDP checksum),
#   the ARP peer's counts (RX path), and the guest log for IOMMU faults.
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
for m in vfio vfio_iommu_type1 vfio-pci; do add_mod $m || { bad initramfs "kernel module $m"; finish; }; done
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
PCAP=$WORK/igb.pcap
LOG=$WORK/console.log
qemu-system-x86_64 -machine q35,accel=tcg -cpu max -smp 1 -m 768 \
    -nographic -nodefaults -no-reboot -serial stdio -pidfile "$WORK/qemu.pid" \
    -device intel-iommu,aw-bits=48 \
    -netdev "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$PORT,remote.type=inet,remote.host=127.0.0.1,remote.port=$((PORT + 1))" \
    -device igb,netdev=n0,mac=$NIC_MAC \
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

nf=$(grep -ac "DMAR: \[DMA" "$LOG" || true)
[ "$nf" = 0 ] && ok "no 'DMAR: [DMA' fault in the guest kernel log" || bad dmar "$nf IOMMU fault line(s) in the guest log"

finish
