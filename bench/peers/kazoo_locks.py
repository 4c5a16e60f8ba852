# Kazoo's side of `zk-bench --locks`: `workers` threads, each with a session of its own,
# take Kazoo's Lock on one path `cycles` times each (acquire, release). Before that, the
# same threads run `warm` untimed cycles each on sessions to `warm_hosts` and a path of
# their own, as every side does. Prints the seconds the timed cycles took, counted from
# when every session is connected.
import sys, threading, time
from kazoo.client import KazooClient

hosts, path, workers, cycles = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
warm = int(sys.argv[5]) if len(sys.argv) > 5 else 0
warm_hosts = sys.argv[6] if len(sys.argv) > 6 else hosts


def connect(hosts):
    clients = []
    for _ in range(workers):
        zk = KazooClient(hosts=hosts, timeout=10)
        zk.start(timeout=20)
        clients.append(zk)
    return clients


def run(clients, path, cycles):
    def work(zk):
        lock = zk.Lock(path)
        for _ in range(cycles):
            lock.acquire()
            lock.release()

    threads = [threading.Thread(target=work, args=(zk,)) for zk in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if warm > 0:
    warming = connect(warm_hosts)
    run(warming, path + "-warm", warm)
    for zk in warming:
        zk.stop()
clients = connect(hosts)
start = time.monotonic()
run(clients, path, cycles)
took = time.monotonic() - start
for zk in clients:
    zk.stop()
print("SECONDS %.6f" % took)
