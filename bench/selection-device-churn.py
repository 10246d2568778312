#!/usr/bin/env python3
"""Connects N clients in turn, each making one selection device of every kind and hanging up,
and prints lockstep's RSS before and after (bench/README: "selection device churn").

Usage: bench/selection-device-churn.py PID SOCKET_PATH [N]
"""
import socket, struct, sys, time

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def msg(obj, op, *args):
    body = b""
    for a in args:
        if isinstance(a, str):
            b = a.encode() + b"\0"
            body += struct.pack("=I", len(b)) + b + b"\0" * (-len(b) % 4)
        else:
            body += struct.pack("=I", a)
    return struct.pack("=II", obj, ((8 + len(body)) << 16) | op) + body

def globals_of(sock):
    sock.sendall(msg(1, 1, 2) + msg(1, 0, 3))  # get_registry(2), sync(3)
    data, names = b"", {}
    while True:
        data += sock.recv(65536)
        at = 0
        while len(data) - at >= 8:
            obj, so = struct.unpack_from("=II", data, at)
            size = so >> 16
            if len(data) - at < size:
                break
            if obj == 2 and so & 0xffff == 0:
                name, ln = struct.unpack_from("=II", data, at + 8)
                iface = data[at + 16:at + 16 + ln - 1].decode()
                names.setdefault(iface, name)
            if obj == 3:
                return names
            at += size
        data = data[at:]

KINDS = [("wl_data_device_manager", 3), ("zwp_primary_selection_device_manager_v1", 1),
         ("zwlr_data_control_manager_v1", 2), ("ext_data_control_manager_v1", 1)]

def one_client(path, names):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    req = msg(1, 1, 2) + msg(2, 0, names["wl_seat"], "wl_seat", 1, 3)
    oid = 4
    for iface, ver in KINDS:
        req += msg(2, 0, names[iface], iface, ver, oid) + msg(oid, 1, oid + 1, 3)
        oid += 2
    req += msg(1, 0, oid)  # sync, to know the server has handled it all
    s.sendall(req)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("lockstep closed the connection: " + repr(data[-64:]))
        data += chunk
        if struct.pack("=I", oid) + struct.pack("=I", (12 << 16) | 0) in data:
            break
    s.close()

def main():
    pid, path = int(sys.argv[1]), sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 30000
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    names = globals_of(s)
    s.close()
    for _ in range(200):  # warm-up: allocator pools, first-time paths
        one_client(path, names)
    time.sleep(0.5)
    before = rss_kib(pid)
    start = time.time()
    for i in range(n):
        one_client(path, names)
    time.sleep(1.0)
    after = rss_kib(pid)
    print(f"{n} clients x 4 devices in {time.time() - start:.1f} s: "
          f"RSS {before} KiB -> {after} KiB, {(after - before) * 1024 / (4 * n):.1f} bytes per device")

main()
