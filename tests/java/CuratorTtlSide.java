// Curator's side of the TTL-kept node interop test: keeps a PersistentTtlNode at `path`
// (TTL `ttl` ms, data "curator") and creates `<path>-curator` once its node exists; stops
// touching it (closes the node) once `<path>-stop` exists, then prints "CLOSED".

import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.nodes.PersistentTtlNode;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;

public class CuratorTtlSide {
    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        String path = args[1];
        long ttl = Long.parseLong(args[2]);
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                hosts, 10000, 10000, new ExponentialBackoffRetry(100, 5));
        client.start();
        client.blockUntilConnected(30, TimeUnit.SECONDS);
        PersistentTtlNode node = new PersistentTtlNode(client, path, ttl,
                "curator".getBytes(StandardCharsets.UTF_8));
        node.start();
        if (!node.waitForInitialCreate(30, TimeUnit.SECONDS)) {
            System.out.println("NEVER CREATED");
            System.exit(2);
        }
        client.create().withMode(CreateMode.EPHEMERAL).forPath(path + "-curator");
        long deadline = System.currentTimeMillis() + 60000;
        while (client.checkExists().forPath(path + "-stop") == null) {
            if (System.currentTimeMillis() > deadline) {
                System.exit(3);
            }
            Thread.sleep(50);
        }
        node.close();
        System.out.println("CLOSED");
        client.close();
    }
}
