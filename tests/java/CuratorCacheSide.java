// Curator's side of the tree cache interop test. Mirrors `<root>` with a CuratorCache,
// creates `<root>-ready` once the cache is initialized, changes its own part of the tree
// (under `<root>/curator`), creates `<root>-curator-done`, then waits until its cache holds
// `<root>/zz-last` (written by the Rust side after all its own changes) and prints every
// node of its mirror as "NODE <path> <version> <data in hex>", then "END".

import java.util.Comparator;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;

public class CuratorCacheSide {
    static String hex(byte[] data) {
        StringBuilder out = new StringBuilder();
        if (data != null) {
            for (byte b : data) {
                out.append(String.format("%02x", b));
            }
        }
        return out.length() == 0 ? "-" : out.toString();
    }

    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        String root = args[1];
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                hosts, 10000, 10000, new ExponentialBackoffRetry(100, 5));
        client.start();
        client.blockUntilConnected(30, TimeUnit.SECONDS);
        CountDownLatch initialized = new CountDownLatch(1);
        CuratorCache cache = CuratorCache.build(client, root);
        cache.listenable().addListener(
                CuratorCacheListener.builder().forInitialized(initialized::countDown).build());
        cache.start();
        if (!initialized.await(30, TimeUnit.SECONDS)) {
            System.out.println("TIMEOUT initializing");
            System.exit(2);
        }
        client.create().withMode(CreateMode.EPHEMERAL).forPath(root + "-ready");

        String mine = root + "/curator";
        client.create().creatingParentsIfNeeded().forPath(mine + "/a/deep", "one".getBytes());
        for (int i = 0; i < 20; i++) {
            client.create().forPath(mine + "/n" + i, ("v" + i).getBytes());
        }
        for (int i = 0; i < 20; i += 2) {
            client.setData().forPath(mine + "/n" + i, ("w" + i).getBytes());
        }
        for (int i = 0; i < 20; i += 5) {
            client.delete().forPath(mine + "/n" + i);
        }
        client.setData().forPath(mine + "/a/deep", new byte[0]);
        client.create().withMode(CreateMode.EPHEMERAL).forPath(root + "-curator-done");

        long deadline = System.currentTimeMillis() + 60000;
        while (!cache.get(root + "/zz-last").isPresent()) {
            if (System.currentTimeMillis() > deadline) {
                System.out.println("TIMEOUT waiting for zz-last");
                System.exit(2);
            }
            Thread.sleep(10);
        }
        cache.stream()
                .sorted(Comparator.comparing(ChildData::getPath))
                .forEach(d -> System.out.println(
                        "NODE " + d.getPath() + " " + d.getStat().getVersion() + " " + hex(d.getData())));
        System.out.println("END");
        cache.close();
        client.close();
    }
}
