#!/usr/bin/env python3
"""Wait until a ZooKeeper-protocol server answers a real read; print the seconds it took.

Usage: probe.py HOST:PORT PATH TIMEOUT_S. Connects (handshake), sends getData(PATH), and retries
until the reply has err 0; "ruok" is not enough because ZooKeeper answers it before its data is
loaded. Used by bench/storage.sh to time restart-to-serving.
"""
import socket, struct, sys, time

def frame(b):
    return struct.pack(">i", len(b)) + b

def read_frame(s):
    def exact(n):
        out = b""
        while len(out) < n:
            c = s.recv(n - len(out))
            if not c:
                raise EOFError
            out += c
        return out
    n = struct.unpack(">i", exact(4))[0]
    return exact(n)

def try_read(host, port, path):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(frame(struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + b"\0" * 16 + b"\0"))
        read_frame(s)
        p = path.encode()
        s.sendall(frame(struct.pack(">ii", 1, 4) + struct.pack(">i", len(p)) + p + b"\0"))
        while True:
            r = read_frame(s)
            xid, zxid, err = struct.unpack(">iqi", r[:16])
            if xid == 1:
                return err == 0

def main():
    host, port = sys.argv[1].rsplit(":", 1)
    path, timeout = sys.argv[2], float(sys.argv[3])
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if try_read(host, int(port), path):
                print(f"{time.time() - t0:.3f}")
                return
        except (OSError, EOFError):
            pass
        time.sleep(0.02)
    print("timeout", file=sys.stderr)
    sys.exit(3)

main()
