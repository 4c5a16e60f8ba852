// Curator's side of the revocation interop test, in one of two modes:
//
// - "hold": takes an InterProcessMutex at `path` made revocable (makeRevocable), creates
//   `<path>-held` once it holds it, lets go when its listener hears a revocation request,
//   and prints "REVOKED".
// - "revoke": waits for `<path>-ours`, whose data is the lock node of ours to revoke, asks
//   its holder to let go with Revoker.attemptRevoke, and prints "ASKED".

import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.Revoker;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;

public class CuratorRevokeSide {
    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        String mode = args[1];
        String path = args[2];
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                hosts, 10000, 10000, new ExponentialBackoffRetry(100, 5));
        client.start();
        client.blockUntilConnected(30, TimeUnit.SECONDS);
        if (mode.equals("hold")) {
            InterProcessMutex lock = new InterProcessMutex(client, path);
            CountDownLatch asked = new CountDownLatch(1);
            lock.makeRevocable(l -> asked.countDown());
            lock.acquire();
            client.create().withMode(CreateMode.EPHEMERAL).forPath(path + "-held");
            if (!asked.await(60, TimeUnit.SECONDS)) {
                System.out.println("NEVER ASKED");
                System.exit(2);
            }
            lock.release();
            System.out.println("REVOKED");
        } else {
            long deadline = System.currentTimeMillis() + 60000;
            while (client.checkExists().forPath(path + "-ours") == null) {
                if (System.currentTimeMillis() > deadline) {
                    System.out.println("NO LOCK OF OURS");
                    System.exit(2);
                }
                Thread.sleep(20);
            }
            byte[] node = client.getData().forPath(path + "-ours");
            Revoker.attemptRevoke(client, new String(node, StandardCharsets.UTF_8));
            System.out.println("ASKED");
        }
        client.close();
    }
}
