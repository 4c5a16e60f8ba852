// Curator's side of the semaphore interop test: two threads each take a lease of
// Curator's InterProcessSemaphoreV2 (2 leases), or with a fifth argument "mutex" its
// InterProcessSemaphoreMutex, `turns` times and, while holding it, add an ephemeral
// sequential node under `inside` and count its children: more than the leases means more
// holders at once than leases, in server time. Creates `<inside>-ready` once connected,
// and prints "DONE <turns> OVERLAPS <n> FULL <n>" (FULL: turns that found every lease in
// use).

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreMutex;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;

public class CuratorSemaphoreSide {
    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        int turns = Integer.parseInt(args[1]);
        String path = args[2];
        String inside = args[3];
        boolean mutex = args.length > 4 && args[4].equals("mutex");
        int leases = mutex ? 1 : 2;
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                hosts, 10000, 10000, new ExponentialBackoffRetry(100, 5));
        client.start();
        client.blockUntilConnected(30, TimeUnit.SECONDS);
        client.create().withMode(CreateMode.EPHEMERAL).forPath(inside + "-ready");
        AtomicInteger done = new AtomicInteger();
        AtomicInteger overlaps = new AtomicInteger();
        AtomicInteger full = new AtomicInteger();
        Thread[] workers = new Thread[2];
        for (int w = 0; w < workers.length; w++) {
            workers[w] = new Thread(() -> {
                try {
                    InterProcessSemaphoreV2 sem = new InterProcessSemaphoreV2(client, path, 2);
                    InterProcessSemaphoreMutex lock = new InterProcessSemaphoreMutex(client, path);
                    for (int i = 0; i < turns; i++) {
                        Lease lease = null;
                        if (mutex) {
                            if (!lock.acquire(60, TimeUnit.SECONDS)) {
                                System.out.println("TIMEOUT");
                                System.exit(2);
                            }
                        } else {
                            lease = sem.acquire(60, TimeUnit.SECONDS);
                            if (lease == null) {
                                System.out.println("TIMEOUT");
                                System.exit(2);
                            }
                        }
                        try {
                            String me = client.create().withMode(CreateMode.EPHEMERAL_SEQUENTIAL)
                                    .forPath(inside + "/c-");
                            int n = client.getChildren().forPath(inside).size();
                            if (n > leases) overlaps.incrementAndGet();
                            if (n == leases) full.incrementAndGet();
                            Thread.sleep(20);
                            client.delete().forPath(me);
                            done.incrementAndGet();
                        } finally {
                            if (mutex) {
                                lock.release();
                            } else {
                                sem.returnLease(lease);
                            }
                        }
                    }
                } catch (Exception e) {
                    e.printStackTrace();
                    System.exit(3);
                }
            });
            workers[w].start();
        }
        for (Thread t : workers) t.join();
        System.out.println("DONE " + done.get() + " OVERLAPS " + overlaps.get() + " FULL " + full.get());
        client.close();
    }
}
