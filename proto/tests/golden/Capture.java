// The client side of capture.sh: drives the reference Java client through a fixed script
// that touches as many protocol records as it can, over connections that record.py numbers
// in the order they are opened:
//
//   1  "main"    canBeReadOnly=true, an admin client: the bulk of the operations
//   2  "watcher" canBeReadOnly=false: one-shot watches fired by main's writes
//   3  "watcher" again after its socket is dropped: session resumed, SetWatches
//   4  "watcher" again after a second drop, now with a persistent watch: SetWatches2
//   5  "sasl"    DIGEST-MD5 SASL login (needs the JAAS file capture.sh passes)
//
// golden.rs relies on that numbering and on the order of the operations below. Not part of
// the Rust build; see README.md.

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs.Ids;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.admin.ZooKeeperAdmin;
import org.apache.zookeeper.client.ZKClientConfig;
import org.apache.zookeeper.data.Stat;

public class Capture {
    static final int TIMEOUT_MS = 4000;

    /** Collects a client's events so the script can wait for the ones it caused. */
    static final class Events implements Watcher {
        final String who;
        final LinkedBlockingQueue<WatchedEvent> queue = new LinkedBlockingQueue<>();

        Events(String who) {
            this.who = who;
        }

        @Override
        public void process(WatchedEvent e) {
            queue.add(e);
        }

        /** Waits until every `"<EventType> <path>"` or `"<KeeperState>"` named was seen. */
        void expect(String... keys) throws InterruptedException {
            Set<String> missing = new HashSet<>(Arrays.asList(keys));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!missing.isEmpty()) {
                long left = deadline - System.nanoTime();
                WatchedEvent e = left > 0 ? queue.poll(left, TimeUnit.NANOSECONDS) : null;
                if (e == null) {
                    throw new IllegalStateException(who + ": never saw " + missing);
                }
                if (e.getType() == Event.EventType.None) {
                    missing.remove(e.getState().toString());
                } else {
                    missing.remove(e.getType() + " " + e.getPath());
                }
            }
        }
    }

    static ZKClientConfig config(boolean sasl) {
        ZKClientConfig c = new ZKClientConfig();
        c.setProperty(ZKClientConfig.ENABLE_CLIENT_SASL_KEY, Boolean.toString(sasl));
        return c;
    }

    /** Closes the client's socket from under it, as a network failure would. */
    static void dropConnection(ZooKeeper zk) throws Exception {
        Field cnxnField = ZooKeeper.class.getDeclaredField("cnxn");
        cnxnField.setAccessible(true);
        Object cnxn = cnxnField.get(zk);
        Field sendThreadField = cnxn.getClass().getDeclaredField("sendThread");
        sendThreadField.setAccessible(true);
        Object sendThread = sendThreadField.get(cnxn);
        Method close = sendThread.getClass().getDeclaredMethod("testableCloseSocket");
        close.setAccessible(true);
        close.invoke(sendThread);
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws Exception {
        String server = args[0];
        byte[] none = new byte[0];
        Watcher noop = e -> { };

        // 1: main.
        Events mainEvents = new Events("main");
        ZooKeeperAdmin main = new ZooKeeperAdmin(server, TIMEOUT_MS, mainEvents, true, config(false));
        mainEvents.expect("SyncConnected");
        // 2: watcher.
        Events watcherEvents = new Events("watcher");
        ZooKeeper watcher = new ZooKeeper(server, TIMEOUT_MS, watcherEvents, false, config(false));
        watcherEvents.expect("SyncConnected");

        main.addAuthInfo("digest", b("golden:secret"));
        watcher.addAuthInfo("digest", b("golden:secret"));

        main.create("/golden", b("data"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        main.create("/golden/c2", b("x"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, new Stat());
        main.create("/golden/box", none, Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER);
        main.create("/golden/ttl", none, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, null, 60000);
        main.create("/golden/eph-", none, Ids.CREATOR_ALL_ACL, CreateMode.EPHEMERAL_SEQUENTIAL);
        try {
            main.create("/golden", none, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            throw new IllegalStateException("created /golden twice");
        } catch (KeeperException.NodeExistsException expected) {
            // an error reply
        }

        // One-shot watches on the watcher: data, exist (on a missing node), child.
        watcher.getData("/golden", true, null);
        watcher.exists("/golden/new", true);
        watcher.getChildren("/golden", true);

        main.exists("/golden", true);
        main.exists("/golden/missing", false);
        main.getData("/golden", true, null);
        main.setData("/golden", b("v2"), -1);
        mainEvents.expect("NodeDataChanged /golden");
        watcherEvents.expect("NodeDataChanged /golden");
        try {
            main.setData("/golden", b("v3"), 0);
            throw new IllegalStateException("setData ignored the version");
        } catch (KeeperException.BadVersionException expected) {
            // an error reply
        }
        main.getACL("/golden", new Stat());
        main.setACL("/golden/c2", Ids.READ_ACL_UNSAFE, -1);
        main.getChildren("/golden", false);
        main.getChildren("/golden", false, new Stat());
        main.getAllChildrenNumber("/golden");
        main.getEphemerals("/golden");
        LinkedBlockingQueue<Integer> synced = new LinkedBlockingQueue<>();
        main.sync("/golden", (rc, path, ctx) -> synced.add(rc), null);
        synced.poll(30, TimeUnit.SECONDS);

        main.multi(Arrays.asList(
            Op.create("/golden/m", b("1"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
            Op.setData("/golden/m", b("2"), -1),
            Op.check("/golden/m", 1),
            Op.delete("/golden/m", -1),
            Op.create("/golden/mbox", none, Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER),
            Op.create("/golden/mttl", none, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, 60000)));
        try {
            main.multi(Arrays.asList(
                Op.create("/golden/n", none, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.delete("/golden/missing", -1),
                Op.setData("/golden", b("never"), -1)));
            throw new IllegalStateException("the failing multi succeeded");
        } catch (KeeperException expected) {
            // a multi reply of error results
        }
        main.multi(Arrays.asList(
            Op.getData("/golden"),
            Op.getChildren("/golden"),
            Op.getData("/golden/missing")));

        // Fires the watcher's exist watch and child watch.
        main.create("/golden/new", none, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        watcherEvents.expect("NodeCreated /golden/new", "NodeChildrenChanged /golden");

        main.addWatch("/golden/c2", noop, AddWatchMode.PERSISTENT);
        main.addWatch("/golden/box", mainEvents, AddWatchMode.PERSISTENT_RECURSIVE);
        main.create("/golden/box/in", none, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        mainEvents.expect("NodeCreated /golden/box/in");
        main.removeWatches("/golden/c2", noop, Watcher.WatcherType.Any, false);
        main.removeAllWatches("/golden/box", Watcher.WatcherType.Any, false);

        // 3: the watcher loses its connection holding one-shot watches of all three kinds.
        watcher.getData("/golden", true, null);
        watcher.exists("/golden/later", true);
        watcher.getChildren("/golden/new", true);
        dropConnection(watcher);
        watcherEvents.expect("Disconnected", "SyncConnected");
        watcher.getData("/golden/new", false, null);

        // 4: and again, holding a persistent recursive watch too.
        watcher.addWatch("/golden/new", AddWatchMode.PERSISTENT_RECURSIVE);
        dropConnection(watcher);
        watcherEvents.expect("Disconnected", "SyncConnected");
        watcher.exists("/golden/new", false);

        List<?> me = main.whoAmI();
        main.getConfig(false, null);
        try {
            main.reconfigure("server.2=127.0.0.1:2888:3888;2181", null, null, -1, null);
            throw new IllegalStateException("reconfig succeeded on a standalone server");
        } catch (KeeperException expected) {
            // reconfig is disabled: an error reply
        }
        // Idle for longer than a third of the session timeout: both clients ping.
        Thread.sleep(2000);
        main.delete("/golden/box/in", -1);
        main.delete("/golden/c2", -1);
        watcher.close();
        main.close();

        // 5: SASL.
        Events saslEvents = new Events("sasl");
        ZooKeeper sasl = new ZooKeeper(server, TIMEOUT_MS, saslEvents, false, config(true));
        saslEvents.expect("SyncConnected", "SaslAuthenticated");
        List<?> saslMe = sasl.whoAmI();
        sasl.close();

        System.out.println("capture done; whoAmI " + me + " / " + saslMe);
    }
}
