// Curator's side of the barrier interop test. Raises the DistributedBarrier `<base>-gate2`,
// waits on `<base>-gate` (raised by the Rust side) after creating `<base>-waiting`, and
// prints "GATE ok" when the wait returned only once the gate was gone; then lowers gate2.
// Then takes part in `rounds` DistributedDoubleBarriers `<base>/round-<r>` for `total`
// participants, marking its arrival under `<base>-marks/<r>/arrived` before entering and
// its departure under `<base>-marks/<r>/leaving` before leaving: after enter returns every
// participant must have arrived, after leave every one must be leaving. Prints
// "DONE <rounds> VIOLATIONS <n>".

import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;

public class CuratorBarrierSide {
    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        String base = args[1];
        int rounds = Integer.parseInt(args[2]);
        int total = Integer.parseInt(args[3]);
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(60000);
            } catch (InterruptedException e) {
                return;
            }
            System.out.println("STUCK");
            System.exit(3);
        });
        watchdog.setDaemon(true);
        watchdog.start();
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                hosts, 10000, 10000, new ExponentialBackoffRetry(100, 5));
        client.start();
        client.blockUntilConnected(30, TimeUnit.SECONDS);

        DistributedBarrier gate2 = new DistributedBarrier(client, base + "-gate2");
        gate2.setBarrier();
        DistributedBarrier gate = new DistributedBarrier(client, base + "-gate");
        client.create().withMode(CreateMode.EPHEMERAL).forPath(base + "-waiting");
        boolean cleared = gate.waitOnBarrier(30, TimeUnit.SECONDS);
        boolean gone = client.checkExists().forPath(base + "-gate") == null;
        System.out.println(cleared && gone ? "GATE ok" : "GATE bad");
        gate2.removeBarrier();

        int bad = 0;
        for (int r = 0; r < rounds; r++) {
            String marks = base + "-marks/" + r;
            DistributedDoubleBarrier barrier =
                    new DistributedDoubleBarrier(client, base + "/round-" + r, total);
            if (r % 2 == 0) {
                Thread.sleep(300); // last to arrive: the Rust side must wait for us
            }
            client.create().creatingParentsIfNeeded().forPath(marks + "/arrived/curator");
            if (!barrier.enter(30, TimeUnit.SECONDS)) {
                System.out.println("TIMEOUT entering round " + r);
                System.exit(2);
            }
            if (client.getChildren().forPath(marks + "/arrived").size() != total) {
                bad++;
            }
            Thread.sleep(100);
            client.create().creatingParentsIfNeeded().forPath(marks + "/leaving/curator");
            if (!barrier.leave(30, TimeUnit.SECONDS)) {
                System.out.println("TIMEOUT leaving round " + r);
                System.exit(2);
            }
            if (client.getChildren().forPath(marks + "/leaving").size() != total) {
                bad++;
            }
        }
        client.close();
        System.out.println("DONE " + rounds + " VIOLATIONS " + bad);
    }
}
