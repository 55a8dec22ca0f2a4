"""A DNS server for the image check: answers A queries for the names it is given.

Usage: dns_server.py PORT NAME=IPV4 [NAME=IPV4 ...]

Listens on 127.0.0.1:PORT (UDP). A query for a given name and type A gets that address;
any other type for a given name gets an empty answer; any other name NXDOMAIN. Just
enough of RFC 1035 for the C library's resolver inside the image to find the gateway
by name: a container whose resolv.conf says `nameserver 127.0.0.1` asks here.
Prints `ready` once listening and one line per query.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys

TYPE_A = 1
CLASS_IN = 1
# Flags of an answer: QR (response), RD copied as set, RA; rcode in the low bits.
RESPONSE = 0x8180
NXDOMAIN = 3


def question(packet: bytes) -> tuple[str, int, bytes]:
    """The first question's name, type, and its wire bytes (to echo back)."""
    at = 12
    labels = []
    while packet[at]:
        length = packet[at]
        labels.append(packet[at + 1 : at + 1 + length].decode("ascii").lower())
        at += 1 + length
    end = at + 5  # the zero label, then QTYPE and QCLASS
    (qtype,) = struct.unpack(">H", packet[at + 1 : at + 3])
    return ".".join(labels), qtype, packet[12:end]


def answer(packet: bytes, table: dict[str, bytes]) -> bytes:
    (ident,) = struct.unpack(">H", packet[:2])
    name, qtype, asked = question(packet)
    print(f"query {name} type {qtype}", flush=True)
    if name not in table:
        return struct.pack(">HHHHHH", ident, RESPONSE | NXDOMAIN, 1, 0, 0, 0) + asked
    if qtype != TYPE_A:
        return struct.pack(">HHHHHH", ident, RESPONSE, 1, 0, 0, 0) + asked
    # The answer's name points back at the question's (offset 12); TTL 0: never cached.
    record = struct.pack(">HHHIH", 0xC00C, TYPE_A, CLASS_IN, 0, 4) + table[name]
    return struct.pack(">HHHHHH", ident, RESPONSE, 1, 1, 0, 0) + asked + record


def main() -> int:
    port = int(sys.argv[1])
    table = {}
    for entry in sys.argv[2:]:
        name, address = entry.split("=", 1)
        table[name.lower().rstrip(".")] = ipaddress.IPv4Address(address).packed
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", port))
        print("ready", flush=True)
        while True:
            packet, client = server.recvfrom(512)
            try:
                server.sendto(answer(packet, table), client)
            except (IndexError, struct.error, UnicodeDecodeError):
                continue  # not a query this server understands: no answer


if __name__ == "__main__":
    sys.exit(main())
