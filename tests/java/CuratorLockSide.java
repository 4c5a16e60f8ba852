// Curator's side of the lock and election interop tests: takes Curator's InterProcessMutex
// (mode "mutex") or wins a LeaderLatch (mode "latch") on a path `turns` times and, while
// holding it, does the critical section the Rust side also does
// (an ephemeral marker node that must not exist, then a read-modify-write of a counter
// with its version). Any overlap with another holder shows up on the server as
// NodeExists or BadVersion. Creates `<marker>-ready` once connected, and prints
// "DONE <turns> OVERLAPS <n>" at the end.

import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
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
                client.create().withMode(CreateMode.EPHEMERAL).forPath(marker, "curator".getBytes());
                Stat stat = new Stat();
                byte[] data = client.getData().storingStatIn(stat).forPath(counter);
                long n = Long.parseLong(new String(data, "UTF-8"));
                try {
                    client.setData().withVersion(stat.getVersion())
                            .forPath(counter, Long.toString(n + 1).getBytes("UTF-8"));
                    done++;
                } catch (KeeperException.BadVersionException e) {
                    overlaps++;
                }
                client.delete().forPath(marker);
            } catch (KeeperException.NodeExistsException e) {
                overlaps++;
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
}
