// Curator's side of the lock and election interop tests: takes Curator's InterProcessMutex
// (mode "mutex"), wins a LeaderLatch (mode "latch") or leads through a LeaderSelector
// (mode "selector", which contends as an InterProcessMutex) on a path `turns` times and, while
// holding it, does the critical section the Rust side also does
// (an ephemeral marker node that must not exist, then a read-modify-write of a counter
// with its version). Any overlap with another holder shows up on the server as
// NodeExists or BadVersion. Creates `<marker>-ready` once connected, and prints
// "DONE <turns> OVERLAPS <n>" at the end.

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

public class CuratorLockSide {
    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        int turns = Integer.parseInt(args[1]);
        String lockPath = args[2];
        String counter = args[3];
        String marker = args[4];
        boolean latch = args.length > 5 && args[5].equals("latch");
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                hosts, 10000, 10000, new ExponentialBackoffRetry(100, 5));
        client.start();
        client.blockUntilConnected(30, TimeUnit.SECONDS);
        // Tells the other side that Curator is about to contend.
        client.create().withMode(CreateMode.EPHEMERAL).forPath(marker + "-ready");
        if (args.length > 5 && args[5].equals("selector")) {
            select(client, turns, lockPath, counter, marker);
            return;
        }
        InterProcessMutex lock = new InterProcessMutex(client, lockPath);
        int done = 0;
        int overlaps = 0;
        for (int i = 0; i < turns; i++) {
            LeaderLatch leader = null;
            if (latch) {
                leader = new LeaderLatch(client, lockPath, "curator");
                leader.start();
                if (!leader.await(60, TimeUnit.SECONDS)) {
                    System.out.println("TIMEOUT at turn " + i);
                    System.exit(2);
                }
            } else if (!lock.acquire(60, TimeUnit.SECONDS)) {
                System.out.println("TIMEOUT at turn " + i);
                System.exit(2);
            }
            try {
                if (critical(client, counter, marker)) {
                    done++;
                } else {
                    overlaps++;
                }
            } finally {
                if (latch) {
                    leader.close();
                } else {
                    lock.release();
                }
            }
        }
        System.out.println("DONE " + done + " OVERLAPS " + overlaps);
        client.close();
    }

    /// The critical section: true when done alone, false on an overlap seen on the server.
    static boolean critical(CuratorFramework client, String counter, String marker) throws Exception {
        try {
            client.create().withMode(CreateMode.EPHEMERAL).forPath(marker, "curator".getBytes());
        } catch (KeeperException.NodeExistsException e) {
            return false;
        }
        boolean alone = true;
        Stat stat = new Stat();
        byte[] data = client.getData().storingStatIn(stat).forPath(counter);
        long n = Long.parseLong(new String(data, "UTF-8"));
        try {
            client.setData().withVersion(stat.getVersion())
                    .forPath(counter, Long.toString(n + 1).getBytes("UTF-8"));
        } catch (KeeperException.BadVersionException e) {
            alone = false;
        }
        client.delete().forPath(marker);
        return alone;
    }

    /// Mode "selector": a LeaderSelector, requeued after each leadership, leads `turns` times.
    static void select(CuratorFramework client, int turns, String path, String counter, String marker)
            throws Exception {
        AtomicInteger done = new AtomicInteger();
        AtomicInteger overlaps = new AtomicInteger();
        CountDownLatch finished = new CountDownLatch(turns);
        LeaderSelector selector = new LeaderSelector(client, path, new LeaderSelectorListenerAdapter() {
            @Override
            public void takeLeadership(CuratorFramework c) throws Exception {
                if (finished.getCount() == 0) {
                    return;
                }
                if (critical(c, counter, marker)) {
                    done.incrementAndGet();
                } else {
                    overlaps.incrementAndGet();
                }
                finished.countDown();
            }
        });
        selector.autoRequeue();
        selector.start();
        if (!finished.await(120, TimeUnit.SECONDS)) {
            System.out.println("TIMEOUT after " + done.get() + " turns");
            System.exit(2);
        }
        selector.close();
        System.out.println("DONE " + done.get() + " OVERLAPS " + overlaps.get());
        client.close();
    }
}
