#!/usr/bin/env python3
"""Builds the small seed corpora from real traffic: the frames recorded between the Java
client and a ZooKeeper 3.8 server in proto/tests/golden/frames.txt."""

import hashlib
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))
# Lines: <connection> <c2s|s2c> <label> <hex>; comments start with '#'.
lines = [
    l.split()
    for l in open(os.path.join(here, "../proto/tests/golden/frames.txt"))
    if l.strip() and not l.startswith("#")
]
c2s = [bytes.fromhex(h) for _, d, _, h in lines if d == "c2s"]
# The first connection's server stream, after its handshake, feeds the session target.
s2c = [bytes.fromhex(h) for c, d, _, h in lines if d == "s2c" and c == "1"]
s2c_all = [bytes.fromhex(h) for _, d, _, h in lines if d == "s2c"]


def put(target, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# decode: one chunk-size byte, then real frames (each alone, and the server stream whole).
for i, frame in enumerate(s2c_all + c2s):
    put("decode", bytes([i % 64]) + frame)
put("decode", bytes([7]) + b"".join(s2c))

# session_bytes: a seed, then (chunk, wait, length, bytes) groups carrying the replies the
# server really sent after the handshake.
stream = b"".join(s2c[1:])
seed = struct.pack("<Q", 1)
for n in (64, 96):
    body = b""
    for k in range(0, min(len(stream), 900), n):
        part = stream[k : k + n]
        body += bytes([13, 0, 0, len(part) % 97]) + part
    put("session_bytes", seed + body)

# session_ops and roundtrip: arbitrary-decoded inputs; real frames make varied seeds.
for frame in (s2c + c2s)[:24]:
    put("session_ops", frame)
    put("roundtrip", frame)

# sim_server: a standalone model, one connection, a valid handshake, then what the Java
# client really sent (each captured connection's requests), in one group per frame; and
# an ensemble variant with a kill in the middle.
by_conn = {}
for c, d, _, h in lines:
    if d == "c2s":
        by_conn.setdefault(c, []).append(bytes.fromhex(h))
for c, frames in sorted(by_conn.items()):
    for flags in (2, 3):
        body = bytes([flags, 0, 0])
        for i, f in enumerate(frames):
            for k in range(0, len(f), 255):
                part = f[k : k + 255]
                body += bytes([1, len(part)]) + part
            if flags == 3 and i == len(frames) // 2:
                body += bytes([6, 0, 5, 50])
        body += bytes([5, 200])
        put("sim_server", body)
