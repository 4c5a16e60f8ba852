# Kazoo's side of `zk-bench --locks`: `workers` threads, each with a session of its own,
# take Kazoo's Lock on one path `cycles` times each (acquire, release). Prints the seconds
# the cycles took, counted from when every session is connected.
import sys, threading, time
from kazoo.client import KazooClient

hosts, path, workers, cycles = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
clients = []
for _ in range(workers):
    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=20)
    clients.append(zk)

def work(zk):
    lock = zk.Lock(path)
    for _ in range(cycles):
        lock.acquire()
        lock.release()

threads = [threading.Thread(target=work, args=(zk,)) for zk in clients]
start = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.monotonic() - start
for zk in clients:
    zk.stop()
print("SECONDS %.6f" % took)
