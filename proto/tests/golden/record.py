#!/usr/bin/env python3
"""Recording TCP proxy used by capture.sh.

    record.py LISTEN_PORT TARGET_PORT OUT_FILE

Forwards every connection made to 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT, cuts each
direction of each connection into length-prefixed frames (a 4-byte big-endian length, then
that many bytes) and, once it receives SIGTERM or SIGINT, writes all of them to OUT_FILE:

    <connection> <c2s|s2c> <label> <hex of the whole frame, length prefix included>

Connections are numbered from 1 in the order they were accepted; the lines of a connection
are in the order the proxy saw the frames, and a request is always recorded before it is
forwarded, so it comes before its reply. The label is only for people reading the file (the
test recomputes it from its own decoding and compares): `connect` for the handshake each
way, the opcode's name for a request, the request's opcode name for its reply (matched by
xid) with `!<error code>` when the reply carries an error, `notification` for xid -1.
"""

import signal
import socket
import sys
import threading

# ZooDefs.OpCode, as numbered in the ZooKeeper sources.
OPCODES = {
    0: "notification", 1: "create", 2: "delete", 3: "exists", 4: "getData", 5: "setData",
    6: "getACL", 7: "setACL", 8: "getChildren", 9: "sync", 11: "ping", 12: "getChildren2",
    13: "check", 14: "multi", 15: "create2", 16: "reconfig", 17: "checkWatches",
    18: "removeWatches", 19: "createContainer", 20: "deleteContainer", 21: "createTTL",
    22: "multiRead", 100: "auth", 101: "setWatches", 102: "sasl", 103: "getEphemerals",
    104: "getAllChildrenNumber", 105: "setWatches2", 106: "addWatch", 107: "whoAmI",
    -10: "createSession", -11: "closeSession",
}

lock = threading.Lock()
frames = []  # (sequence, connection, direction, frame bytes)
stop = threading.Event()


def be_int(b, at):
    return int.from_bytes(b[at : at + 4], "big", signed=True)


def pump(conn, src, dst, direction):
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
        buf += data
        while len(buf) >= 4:
            n = be_int(buf, 0)
            if n < 0 or len(buf) < 4 + n:
                break
            with lock:
                frames.append((len(frames), conn, direction, buf[: 4 + n]))
            buf = buf[4 + n :]
        try:
            dst.sendall(data)
        except OSError:
            pass


def serve(conn, client, target_port):
    upstream = socket.create_connection(("127.0.0.1", target_port))
    pumps = [
        threading.Thread(target=pump, args=(conn, client, upstream, "c2s")),
        threading.Thread(target=pump, args=(conn, upstream, client, "s2c")),
    ]
    for t in pumps:
        t.start()
    for t in pumps:
        t.join()
    client.close()
    upstream.close()


def label(conn_frames):
    """Labels the frames of one connection, in order."""
    out = []
    pending = {}
    seen = set()
    for direction, frame in conn_frames:
        if direction not in seen:
            seen.add(direction)
            out.append("connect")
        elif direction == "c2s":
            xid, op = be_int(frame, 4), be_int(frame, 8)
            name = OPCODES.get(op, f"op{op}")
            pending[xid] = name
            out.append(name)
        else:
            xid, err = be_int(frame, 4), be_int(frame, 16)
            name = "notification" if xid == -1 else pending.get(xid, f"xid{xid}")
            out.append(name if err == 0 else f"{name}!{err}")
    return out


def main():
    listen_port, target_port, out_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(8)
    server.settimeout(0.2)
    sessions = []
    while not stop.is_set():
        try:
            client, _ = server.accept()
        except (socket.timeout, InterruptedError):
            continue
        client.settimeout(None)
        t = threading.Thread(target=serve, args=(len(sessions) + 1, client, target_port))
        t.start()
        sessions.append(t)
    server.close()
    for t in sessions:
        t.join(timeout=10)

    with lock:
        recorded = sorted(frames)
    with open(out_path, "w") as out:
        out.write("# <connection> <c2s|s2c> <label> <frame hex>; see README.md\n")
        for conn in range(1, len(sessions) + 1):
            mine = [(d, f) for (_, c, d, f) in recorded if c == conn]
            for (direction, frame), name in zip(mine, label(mine)):
                out.write(f"{conn} {direction} {name} {frame.hex()}\n")
    print(f"record.py: {len(recorded)} frames on {len(sessions)} connections", file=sys.stderr)


if __name__ == "__main__":
    main()
