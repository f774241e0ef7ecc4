#!/usr/bin/env python3
"""Host-side peer on QEMU's `-netdev dgram` link (one UDP datagram = one frame).

It answers ARP requests for --ip with --mac (so the guest's `wirespeed gen --arp`
resolves it through the NIC's RX path) and counts the IPv4/UDP frames
addressed to it, per UDP source port. The counts are rewritten to --out (JSON)
after every change, so they survive the peer being stopped. Bounded by
--timeout seconds.

usage: peer.py --listen PORT --qemu PORT --mac MAC --ip IP --out FILE [--timeout S]
  --listen  127.0.0.1 port QEMU sends the NIC's frames to (its remote.port)
  --qemu    127.0.0.1 port QEMU receives frames for the NIC on (its local.port)
"""
import argparse
import json
import socket
import struct
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
    s.bind(("127.0.0.1", a.listen))
    s.settimeout(0.2)
    counts = {"arp_requests": 0, "arp_replies_sent": 0, "udp_to_peer": {}, "frames": 0}

    def save():
        with open(a.out + ".tmp", "w") as f:
            json.dump(counts, f)
        import os
        os.replace(a.out + ".tmp", a.out)

    save()
    end = time.time() + a.timeout
    while time.time() < end:
        try:
            f = s.recv(65536)
        except socket.timeout:
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
            save()
        elif et == 0x0800 and f[0:6] == mac and len(f) >= 42 and f[23] == 17 and f[30:34] == ip:
            ihl = (f[14] & 0xF) * 4
            sport = struct.unpack("!H", f[14 + ihl:16 + ihl])[0]
            k = str(sport)
            counts["udp_to_peer"][k] = counts["udp_to_peer"].get(k, 0) + 1
            save()
    save()


if __name__ == "__main__":
    main()
