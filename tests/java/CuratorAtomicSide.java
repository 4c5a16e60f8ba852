// Curator's side of the atomic long interop test: two threads each increment a
// DistributedAtomicLong at `path` `turns` times (a few optimistic tries, then promoted to
// Curator's InterProcessMutex at `lock`), again until one succeeds. Creates `<path>-ready`
// once connected and prints "DONE <increments> PROMOTED <turns that took the lock>".

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.atomic.PromotedToLock;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;

public class CuratorAtomicSide {
    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        int turns = Integer.parseInt(args[1]);
        String path = args[2];
        String lock = args[3];
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                hosts, 10000, 10000, new ExponentialBackoffRetry(100, 5));
        client.start();
        client.blockUntilConnected(30, TimeUnit.SECONDS);
        client.create().withMode(CreateMode.EPHEMERAL).forPath(path + "-ready");
        AtomicInteger done = new AtomicInteger();
        AtomicInteger promoted = new AtomicInteger();
        Thread[] workers = new Thread[2];
        for (int w = 0; w < workers.length; w++) {
            workers[w] = new Thread(() -> {
                try {
                    DistributedAtomicLong value = new DistributedAtomicLong(client, path,
                            new RetryNTimes(3, 1),
                            PromotedToLock.builder().lockPath(lock)
                                    .retryPolicy(new RetryNTimes(3, 1)).build());
                    for (int i = 0; i < turns; i++) {
                        while (true) {
                            AtomicValue<Long> r = value.increment();
                            if (r.succeeded()) {
                                if (r.getStats().getPromotedLockTries() > 0) promoted.incrementAndGet();
                                break;
                            }
                        }
                        done.incrementAndGet();
                    }
                } catch (Exception e) {
                    e.printStackTrace();
                    System.exit(3);
                }
            });
            workers[w].start();
        }
        for (Thread t : workers) t.join();
        System.out.println("DONE " + done.get() + " PROMOTED " + promoted.get());
        client.close();
    }
}
