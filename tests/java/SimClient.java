// The reference Java client against a server given on the command line: each step prints
// what it saw, and "ALL OK" at the end. tests/tests/java_client_on_sim.rs runs it against
// zk-sim's model server.

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs.Ids;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class SimClient {
    static final LinkedBlockingQueue<WatchedEvent> events = new LinkedBlockingQueue<>();

    static void check(boolean ok, String what) {
        if (!ok) {
            System.out.println("FAILED: " + what);
            System.exit(1);
        }
        System.out.println("ok: " + what);
    }

    static WatchedEvent next(Watcher.Event.EventType type) throws InterruptedException {
        while (true) {
            WatchedEvent e = events.poll(10, TimeUnit.SECONDS);
            if (e == null) {
                System.out.println("FAILED: no " + type + " event within 10 s");
                System.exit(1);
            }
            if (e.getType() == type) {
                return e;
            }
        }
    }

    public static void main(String[] args) throws Exception {
        ZooKeeper zk = new ZooKeeper(args[0], 4000, events::add);
        next(Watcher.Event.EventType.None);
        check(zk.getState() == ZooKeeper.States.CONNECTED, "connected");
        String base = "/java-on-sim";
        zk.create(base, "v0".getBytes(StandardCharsets.UTF_8), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        Stat stat = new Stat();
        byte[] data = zk.getData(base, true, stat);
        check(new String(data, StandardCharsets.UTF_8).equals("v0") && stat.getVersion() == 0, "create and read");
        zk.setData(base, "v1".getBytes(StandardCharsets.UTF_8), 0);
        check(next(Watcher.Event.EventType.NodeDataChanged).getPath().equals(base), "data watch fired");
        try {
            zk.setData(base, new byte[0], 0);
            check(false, "a stale version is refused");
        } catch (KeeperException.BadVersionException e) {
            check(true, "a stale version is refused");
        }
        String seq = zk.create(base + "/m-", new byte[0], Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL_SEQUENTIAL);
        check(seq.equals(base + "/m-0000000000"), "sequential name " + seq);
        List<OpResult> results = zk.multi(Arrays.asList(
            Op.create(base + "/a", new byte[0], Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
            Op.setData(base, "v2".getBytes(StandardCharsets.UTF_8), 1),
            Op.check(base + "/a", 0)));
        check(results.size() == 3, "multi applied");
        try {
            zk.multi(Arrays.asList(
                Op.delete(base + "/a", -1),
                Op.delete(base + "/missing", -1)));
            check(false, "a failing multi fails");
        } catch (KeeperException.NoNodeException e) {
            check(zk.exists(base + "/a", false) != null, "a failing multi changes nothing");
        }
        zk.addWatch(base, AddWatchMode.PERSISTENT_RECURSIVE);
        zk.create(base + "/a/deep", new byte[0], Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        check(next(Watcher.Event.EventType.NodeCreated).getPath().equals(base + "/a/deep"), "recursive watch fired");
        List<String> kids = zk.getChildren(base, false);
        check(kids.size() == 2 && kids.contains("a"), "children " + kids);
        zk.addAuthInfo("digest", "java:secret".getBytes(StandardCharsets.UTF_8));
        zk.create(base + "/private", new byte[0], Ids.CREATOR_ALL_ACL, CreateMode.PERSISTENT);
        check(zk.getACL(base + "/private", new Stat()).get(0).getId().getScheme().equals("digest"), "creator ACL");
        zk.close();
        ZooKeeper other = new ZooKeeper(args[0], 4000, e -> { });
        for (int i = 0; i < 100 && other.getState() != ZooKeeper.States.CONNECTED; i++) {
            Thread.sleep(50);
        }
        check(other.exists(seq, false) == null, "the ephemeral node went with the session");
        try {
            other.getData(base + "/private", false, null);
            check(false, "another identity is refused");
        } catch (KeeperException.NoAuthException e) {
            check(true, "another identity is refused");
        }
        other.close();
        System.out.println("ALL OK");
    }
}
