// Curator's side of the counter interop test: adds 1 to a SharedCount `turns` times with
// trySetCount on the version it read, again while others wrote in between. Creates
// `<path>-ready` once connected and prints "DONE <turns>".

import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;

public class CuratorCounterSide {
    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        int turns = Integer.parseInt(args[1]);
        String path = args[2];
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                hosts, 10000, 10000, new ExponentialBackoffRetry(100, 5));
        client.start();
        client.blockUntilConnected(30, TimeUnit.SECONDS);
        SharedCount count = new SharedCount(client, path, 0);
        count.start();
        client.create().withMode(CreateMode.EPHEMERAL).forPath(path + "-ready");
        int done = 0;
        for (int i = 0; i < turns; i++) {
            while (true) {
                VersionedValue<Integer> seen = count.getVersionedValue();
                if (count.trySetCount(seen, seen.getValue() + 1)) {
                    break;
                }
            }
            done++;
        }
        count.close();
        client.close();
        System.out.println("DONE " + done);
    }
}
