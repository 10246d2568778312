#!/usr/bin/env python3
"""shm pool churn: what lockstep spends per pool and what it keeps per client.

Connects CLIENTS clients in turn; each binds wl_shm and runs CYCLES rounds of
wl_shm.create_pool (a fresh 4 KiB memfd) + wl_shm_pool.create_buffer + wl_buffer.destroy +
wl_shm_pool.destroy, with a wl_display.sync every 100 rounds, then hangs up. Prints
lockstep's CPU time per round (from /proc/PID/schedstat, in nanoseconds) and its RSS and fd
count before and after (BENCHMARKS.md, "Client memory accounting").

Usage: bench/shm-churn.py PID SOCKET_PATH CLIENTS CYCLES
"""
import os, socket, struct, sys

exec(open(__file__.replace("shm-churn.py", "selection-device-churn.py")).read().split("def main():")[0])


def cpu_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_sync(sock, callback):
    done = struct.pack("=II", callback, (12 << 16) | 0)
    data = b""
    while done not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("lockstep hung up on the client")
        data = data[-16:] + chunk


def client(path, cycles):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    names = globals_of(sock)
    shm = 4
    sock.sendall(msg(2, 0, names["wl_shm"], "wl_shm", 1, shm))
    oid = 5
    memfd = os.memfd_create("shm-churn")
    os.ftruncate(memfd, 4096)
    for round_ in range(cycles):
        pool, buffer = oid, oid + 1
        oid += 2
        # create_pool(new_id, fd, size): the fd travels as ancillary data.
        sock.sendmsg([msg(shm, 0, pool, 4096)],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("=i", memfd))])
        req = msg(pool, 0, buffer, 0, 16, 16, 64, 0)  # create_buffer, ARGB8888
        req += msg(buffer, 0) + msg(pool, 1)  # wl_buffer.destroy, wl_shm_pool.destroy
        if round_ % 100 == 99:
            req += msg(1, 0, oid)
            sock.sendall(req)
            wait_sync(sock, oid)
            oid += 1
        else:
            sock.sendall(req)
    sock.sendall(msg(1, 0, oid))
    wait_sync(sock, oid)
    os.close(memfd)
    sock.close()


def main():
    pid, path, clients, cycles = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rss0, fds0, cpu0 = rss_kib(pid), fd_count(pid), cpu_ns(pid)
    for _ in range(clients):
        client(path, cycles)
    cpu1 = cpu_ns(pid)
    rss1, fds1 = rss_kib(pid), fd_count(pid)
    rounds = clients * cycles
    print(f"{clients} clients x {cycles} rounds: lockstep CPU {(cpu1 - cpu0) / rounds:.0f} ns per "
          f"round; RSS {rss0} -> {rss1} KiB ({(rss1 - rss0) * 1024 / clients:.1f} B per client); "
          f"fds {fds0} -> {fds1}")


main()
