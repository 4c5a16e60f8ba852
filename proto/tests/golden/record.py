#!/usr/bin/env python3
"""A recording TCP proxy for capture.sh: forwards one loopback port to another and writes
every length-prefixed frame, in each direction, to a fixture file as
`<c2s|s2c> <hex of the frame, length prefix included>`, one line per frame."""

import socket
import sys
import threading

listen_port, target_port, out_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
out = open(out_path, "w")


def pump(src, dst, direction):
    buf = b""
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            data = b""
        if not data:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return
        dst.sendall(data)
        buf += data
        while len(buf) >= 4:
            n = int.from_bytes(buf[:4], "big", signed=True)
            if n < 0 or len(buf) < 4 + n:
                break
            frame, buf = buf[: 4 + n], buf[4 + n :]
            with lock:
                out.write(f"{direction} {frame.hex()}\n")
                out.flush()


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen_port))
server.listen(1)
# One client connection is recorded; the capture stops when it ends.
client, _ = server.accept()
upstream = socket.create_connection(("127.0.0.1", target_port))
threads = [
    threading.Thread(target=pump, args=(client, upstream, "c2s")),
    threading.Thread(target=pump, args=(upstream, client, "s2c")),
]
for t in threads:
    t.start()
for t in threads:
    t.join()
out.close()
