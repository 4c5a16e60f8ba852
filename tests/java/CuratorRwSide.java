// Curator's side of the read/write lock interop test: takes Curator's
// InterProcessReadWriteLock `turns` times (every third turn the write lock, else the read
// lock) and, while holding it, moves a shared state node the way the Rust side does: "w"
// while a writer is inside, "r<n>" with n readers inside, every change a versioned write.
// A writer that finds anything but "r0", or a reader that finds "w", overlapped another
// holder in server time. Creates `<state>-ready` once connected, and prints
// "DONE <turns> OVERLAPS <n> SHARED <n>" at the end (SHARED: reads that found another
// reader inside).

import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

public class CuratorRwSide {
    static int overlaps = 0;
    static int shared = 0;

    // Moves the state node as a reader or writer entering or leaving, with a versioned
    // write (again while other readers move it); counts an overlap when what it finds
    // cannot be, had the lock held.
    static void move(CuratorFramework client, String state, boolean writer, boolean enter)
            throws Exception {
        while (true) {
            Stat stat = new Stat();
            String now = new String(client.getData().storingStatIn(stat).forPath(state), "UTF-8");
            String next;
            if (writer) {
                String expect = enter ? "r0" : "w";
                if (!now.equals(expect)) {
                    overlaps++;
                    return;
                }
                next = enter ? "w" : "r0";
            } else {
                if (now.equals("w")) {
                    overlaps++;
                    return;
                }
                int n = Integer.parseInt(now.substring(1));
                if (enter && n > 0) {
                    shared++;
                }
                next = "r" + (enter ? n + 1 : n - 1);
            }
            try {
                client.setData().withVersion(stat.getVersion()).forPath(state, next.getBytes("UTF-8"));
                return;
            } catch (KeeperException.BadVersionException e) {
                if (writer) {
                    overlaps++;
                    return;
                }
            }
        }
    }

    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        int turns = Integer.parseInt(args[1]);
        String lockPath = args[2];
        String state = args[3];
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                hosts, 10000, 10000, new ExponentialBackoffRetry(100, 5));
        client.start();
        client.blockUntilConnected(30, TimeUnit.SECONDS);
        client.create().withMode(CreateMode.EPHEMERAL).forPath(state + "-ready");
        InterProcessReadWriteLock rw = new InterProcessReadWriteLock(client, lockPath);
        int done = 0;
        for (int i = 0; i < turns; i++) {
            boolean writer = i % 3 == 0;
            InterProcessMutex lock = writer ? rw.writeLock() : rw.readLock();
            if (!lock.acquire(60, TimeUnit.SECONDS)) {
                System.out.println("TIMEOUT at turn " + i);
                System.exit(2);
            }
            try {
                move(client, state, writer, true);
                Thread.sleep(3);
                move(client, state, writer, false);
                done++;
            } finally {
                lock.release();
            }
        }
        System.out.println("DONE " + done + " OVERLAPS " + overlaps + " SHARED " + shared);
        client.close();
    }
}
