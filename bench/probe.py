#!/usr/bin/env python3
"""Wait until a ZooKeeper-protocol server answers a real read (or write); print the seconds.

Usage: probe.py HOST:PORT[,HOST:PORT...] PATH TIMEOUT_S [create]. Connects (handshake), sends
getData(PATH) - or, with "create", create(PATH) - and retries (round robin over the servers)
until the reply has err 0; "ruok" is not enough because ZooKeeper answers it before its data is
loaded. Used by bench/storage.sh to time restart-to-serving and by bench/ensemble.sh to time a
leader kill to the first acknowledged write; bench/compare imports try_read to time from the
moment it starts a server process.
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

def try_read(host, port, path, create=False):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(frame(struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + b"\0" * 16 + b"\0"))
        read_frame(s)
        p = path.encode()
        if create:
            # create(path, data "x", ACL world:anyone ALL, PERSISTENT)
            acl = struct.pack(">ii", 1, 31) + struct.pack(">i", 5) + b"world" + struct.pack(">i", 6) + b"anyone"
            body = struct.pack(">i", len(p)) + p + struct.pack(">i", 1) + b"x" + acl + struct.pack(">i", 0)
            s.sendall(frame(struct.pack(">ii", 1, 1) + body))
        else:
            s.sendall(frame(struct.pack(">ii", 1, 4) + struct.pack(">i", len(p)) + p + b"\0"))
        while True:
            r = read_frame(s)
            xid, zxid, err = struct.unpack(">iqi", r[:16])
            if xid == 1:
                return err == 0

def main():
    servers = [s.rsplit(":", 1) for s in sys.argv[1].split(",")]
    path, timeout = sys.argv[2], float(sys.argv[3])
    create = len(sys.argv) > 4 and sys.argv[4] == "create"
    t0 = time.time()
    i = 0
    while time.time() - t0 < timeout:
        host, port = servers[i % len(servers)]
        i += 1
        try:
            if try_read(host, int(port), path, create):
                print(f"{time.time() - t0:.3f}")
                return
        except (OSError, EOFError):
            pass
        time.sleep(0.02)
    print("timeout", file=sys.stderr)
    sys.exit(3)

if __name__ == "__main__":
    main()
