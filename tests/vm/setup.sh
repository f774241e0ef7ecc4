#!/usr/bin/env bash
# Provisions what the igb VM test needs, once, and caches it:
#   - qemu-system-x86 from bookworm-backports (apt source added if missing),
#   - busybox-static, kmod, cpio, xz/zstd, tshark (apt),
#   - the bookworm-backports kernel (linux-image-amd64's target), fetched with
#     `apt-get download` and unpacked with `dpkg -x` into the cache (nothing is
#     installed into /boot), plus its uncompressed PVH-bootable vmlinux.
# Cache: ${WIRESPEED_VM_CACHE:-/var/cache/wirespeed-vm}. Needs root for apt.
set -euo pipefail
CACHE=${WIRESPEED_VM_CACHE:-/var/cache/wirespeed-vm}
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
mkdir -p "$CACHE"

need_apt=0
command -v qemu-system-x86_64 >/dev/null || need_apt=1
for b in busybox modinfo cpio xz zstd tshark; do command -v $b >/dev/null || need_apt=1; done
if [ -x /bin/busybox ] && ! ldd /bin/busybox 2>&1 | grep -q "not a dynamic"; then need_apt=1; fi
if [ $need_apt = 1 ] || [ ! -f "$CACHE/kernel/.pkg" ]; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
        [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
        [ -n "$uri" ] || { echo "vm setup: no Debian mirror found to add bookworm-backports" >&2; exit 1; }
        echo "deb $uri bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/wirespeed-bpo.list >/dev/null
    fi
    $SUDO apt-get update -q >/dev/null
fi
if [ $need_apt = 1 ]; then
    echo 'wireshark-common wireshark-common/install-setuid boolean false' | $SUDO debconf-set-selections
    $SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null
    $SUDO apt-get install -y -q --no-install-recommends busybox-static kmod cpio xz-utils zstd tshark >/dev/null
fi

kpkg=$(apt-cache depends -t bookworm-backports linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
[ -n "$kpkg" ] || { echo "vm setup: cannot resolve the bookworm-backports kernel package" >&2; exit 1; }
if [ ! -f "$CACHE/kernel/.pkg" ] || [ "$(cat "$CACHE/kernel/.pkg")" != "$kpkg" ]; then
    tmp=$(mktemp -d "$CACHE/dl.XXXXXX")
    (cd "$tmp" && apt-get download -q -t bookworm-backports "$kpkg" >/dev/null)
    rm -rf "$CACHE/kernel.new"
    dpkg -x "$tmp"/*.deb "$CACHE/kernel.new"
    rm -rf "$tmp"
    # The uncompressed kernel (PVH entry; boots faster under TCG): find the
    # compressed payload in the bzImage that decompresses to an ELF image.
    python3 - "$(ls "$CACHE"/kernel.new/boot/vmlinuz-* | head -1)" "$CACHE/kernel.new/vmlinux" <<'PY'
import subprocess, sys
data = open(sys.argv[1], "rb").read()
tools = ((b"\x28\xb5\x2f\xfd", ["zstd", "-dcq"]), (b"\xfd7zXZ\x00", ["xz", "-dcq"]), (b"\x1f\x8b\x08", ["gzip", "-dcq"]))
for magic, cmd in tools:
    at = data.find(magic)
    while at >= 0:
        out = subprocess.run(cmd, input=data[at:], capture_output=True).stdout
        if out[:4] == b"\x7fELF":
            open(sys.argv[2], "wb").write(out)
            sys.exit(0)
        at = data.find(magic, at + 1)
print("vm setup: no ELF payload in the bzImage; the bzImage will be booted", file=sys.stderr)
PY
    echo "$kpkg" > "$CACHE/kernel.new/.pkg"
    rm -rf "$CACHE/kernel"
    mv "$CACHE/kernel.new" "$CACHE/kernel"
fi
echo "vm setup: $(qemu-system-x86_64 --version | head -1); kernel $(cat "$CACHE/kernel/.pkg"); cache $CACHE"
