// Curator's side of the multi-lock interop test: two threads each take Curator's
// InterProcessMultiLock over the paths given (comma-separated) `turns` times and, while
// holding it, add an ephemeral sequential node under `inside` and count its children: more
// than one means two holders at once, in server time. Creates `<inside>-ready` once
// connected, and prints "DONE <turns> OVERLAPS <n>".

import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMultiLock;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;

public class CuratorMultiLockSide {
    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        int turns = Integer.parseInt(args[1]);
        String[] paths = args[2].split(",");
        String inside = args[3];
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                hosts, 10000, 10000, new ExponentialBackoffRetry(100, 5));
        client.start();
        client.blockUntilConnected(30, TimeUnit.SECONDS);
        client.create().withMode(CreateMode.EPHEMERAL).forPath(inside + "-ready");
        AtomicInteger done = new AtomicInteger();
        AtomicInteger overlaps = new AtomicInteger();
        Thread[] workers = new Thread[2];
        for (int w = 0; w < workers.length; w++) {
            workers[w] = new Thread(() -> {
                try {
                    InterProcessMultiLock lock = new InterProcessMultiLock(client, Arrays.asList(paths));
                    for (int i = 0; i < turns; i++) {
                        if (!lock.acquire(60, TimeUnit.SECONDS)) {
                            System.out.println("TIMEOUT");
                            System.exit(2);
                        }
                        try {
                            String me = client.create().withMode(CreateMode.EPHEMERAL_SEQUENTIAL)
                                    .forPath(inside + "/c-");
                            int n = client.getChildren().forPath(inside).size();
                            if (n > 1) overlaps.incrementAndGet();
                            Thread.sleep(10);
                            client.delete().forPath(me);
                            done.incrementAndGet();
                        } finally {
                            lock.release();
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
        System.out.println("DONE " + done.get() + " OVERLAPS " + overlaps.get());
        client.close();
    }
}
