// Drives the reference Java client through one session that touches as many records as
// possible, for capture.sh to record. Not part of the build; see README.md.

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs.Ids;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class Capture {
    public static void main(String[] args) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        Watcher noop = e -> { };
        ZooKeeper zk = new ZooKeeper(args[0], 4000, e -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        }, true);
        if (!connected.await(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException("no connection");
        }
        byte[] none = new byte[0];
        zk.addAuthInfo("digest", "golden:secret".getBytes());
        zk.create("/golden", "data".getBytes(), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create("/golden/c2", "x".getBytes(), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, new Stat());
        zk.create("/golden/box", none, Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER);
        zk.create("/golden/ttl", none, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, null, 60000);
        zk.create("/golden/eph-", none, Ids.CREATOR_ALL_ACL, CreateMode.EPHEMERAL_SEQUENTIAL);
        zk.exists("/golden", true);
        zk.exists("/golden/missing", false);
        zk.getData("/golden", true, null);
        zk.setData("/golden", "v2".getBytes(), -1);
        zk.getACL("/golden", new Stat());
        zk.setACL("/golden/c2", Ids.READ_ACL_UNSAFE, -1);
        zk.getChildren("/golden", false);
        zk.getChildren("/golden", false, new Stat());
        zk.getAllChildrenNumber("/golden");
        zk.getEphemerals("/golden");
        CountDownLatch synced = new CountDownLatch(1);
        zk.sync("/golden", (rc, path, ctx) -> synced.countDown(), null);
        synced.await(10, TimeUnit.SECONDS);
        zk.multi(Arrays.asList(
            Op.create("/golden/m", "1".getBytes(), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
            Op.setData("/golden/m", "2".getBytes(), -1),
            Op.check("/golden/m", 1),
            Op.delete("/golden/m", -1)));
        try {
            zk.multi(Arrays.asList(
                Op.create("/golden/n", none, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.delete("/golden/missing", -1)));
        } catch (KeeperException expected) {
            // the failing multi is what is being recorded
        }
        zk.multi(Arrays.asList(
            Op.getData("/golden"),
            Op.getChildren("/golden"),
            Op.getData("/golden/missing")));
        zk.addWatch("/golden/c2", noop, AddWatchMode.PERSISTENT);
        zk.addWatch("/golden/box", noop, AddWatchMode.PERSISTENT_RECURSIVE);
        zk.removeWatches("/golden/c2", noop, Watcher.WatcherType.Any, false);
        List<?> me = zk.whoAmI();
        zk.getConfig(false, null);
        // Stay idle long enough for a ping (every third of the 4 s session timeout).
        Thread.sleep(2000);
        zk.delete("/golden/c2", -1);
        zk.close();
        System.out.println("capture done; whoAmI " + me);
    }
}
