#!/usr/bin/env python3
"""Host-side peer on QEMU's `-netdev dgram` link (one UDP datagram = one frame).

It answers ARP requests for --ip with --mac (so the guest's `wirespeed gen --arp`
resolves it through the NIC's RX path) and counts the IPv4/UDP frames
addressed to it, per UDP source port. It is also a UDP echo server (RFC 862)
on port 7: each datagram to --ip:7 goes back with the Ethernet and IPv4
addresses and the UDP ports swapped (the checksums stay valid: both sums
are symmetric in the swapped fields), counted per the sender's source port
under "echoed" (the RSS test hashes these replies). The counts go to --out
(JSON) when the link is idle for 0.2 s and when the peer is stopped
(SIGTERM), so they survive it. Bounded by --timeout seconds.

usage: peer.py --listen PORT --qemu PORT --mac MAC --ip IP --out FILE [--timeout S]
  --listen  127.0.0.1 port QEMU sends the NIC's frames to (its remote.port)
  --qemu    127.0.0.1 port QEMU receives frames for the NIC on (its local.port)
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import time


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--qemu", type=int, required=True)
    ap.add_argument("--mac", required=True)
    ap.add_argument("--ip", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    mac = mac_bytes(a.mac)
    ip = socket.inet_aton(a.ip)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Room for a burst from the guest while this loop is descheduled.
    # Linux SO_RCVBUFFORCE (33, root: past net.core.rmem_max), else SO_RCVBUF.
    try:
        s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 8 << 20)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("127.0.0.1", a.listen))
    s.settimeout(0.2)
    counts = {"arp_requests": 0, "arp_replies_sent": 0, "udp_to_peer": {}, "echoed": {}, "frames": 0}
    dirty = [False]

    def save():
        with open(a.out + ".tmp", "w") as f:
            json.dump(counts, f)
        os.replace(a.out + ".tmp", a.out)
        dirty[0] = False

    def stop(_sig, _frame):
        save()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    save()
    end = time.time() + a.timeout
    while time.time() < end:
        try:
            f = s.recv(65536)
        except socket.timeout:
            if dirty[0]:
                save()
            continue
        counts["frames"] += 1
        if len(f) < 14:
            continue
        et = struct.unpack("!H", f[12:14])[0]
        if et == 0x0806 and len(f) >= 42 and f[14:22] == b"\x00\x01\x08\x00\x06\x04\x00\x01":
            if f[38:42] != ip:
                continue
            counts["arp_requests"] += 1
            sha, spa = f[22:28], f[28:32]
            reply = sha + mac + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x02" + mac + ip + sha + spa
            reply = reply.ljust(60, b"\x00")
            s.sendto(reply, ("127.0.0.1", a.qemu))
            counts["arp_replies_sent"] += 1
            dirty[0] = True
        elif et == 0x0800 and f[0:6] == mac and len(f) >= 42 and f[23] == 17 and f[30:34] == ip:
            ihl = (f[14] & 0xF) * 4
            u = 14 + ihl
            sport, dport = struct.unpack("!HH", f[u:u + 4])
            k = str(sport)
            counts["udp_to_peer"][k] = counts["udp_to_peer"].get(k, 0) + 1
            if dport == 7 and len(f) >= u + 8:
                # Echo: swap MACs, IPv4 addresses, UDP ports.
                r = bytearray(f)
                r[0:6], r[6:12] = f[6:12], f[0:6]
                r[26:30], r[30:34] = f[30:34], f[26:30]
                r[u:u + 2], r[u + 2:u + 4] = f[u + 2:u + 4], f[u:u + 2]
                s.sendto(bytes(r), ("127.0.0.1", a.qemu))
                counts["echoed"][k] = counts["echoed"].get(k, 0) + 1
            dirty[0] = True
    save()


if __name__ == "__main__":
    main()
