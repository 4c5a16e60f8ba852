// Curator's side of the group membership interop test: joins the group at `membership`
// as `id` with a GroupMember (payload "curator-payload"), creates `<membership>-ready`
// once its node exists, then waits until getCurrentMembers shows every id in `expected`
// (comma-separated) and prints "MEMBERS <id>=<payload>,..." sorted by id. After that it
// waits for `<membership>-done` and leaves.

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.nodes.GroupMember;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;

public class CuratorGroupSide {
    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        String membership = args[1];
        String id = args[2];
        String[] expected = args[3].split(",");
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                hosts, 10000, 10000, new ExponentialBackoffRetry(100, 5));
        client.start();
        client.blockUntilConnected(30, TimeUnit.SECONDS);
        GroupMember member = new GroupMember(client, membership, id,
                "curator-payload".getBytes(StandardCharsets.UTF_8));
        member.start();
        long deadline = System.currentTimeMillis() + 60000;
        while (client.checkExists().forPath(membership + "/" + id) == null) {
            if (System.currentTimeMillis() > deadline) {
                System.out.println("NEVER JOINED");
                System.exit(2);
            }
            Thread.sleep(20);
        }
        client.create().withMode(CreateMode.EPHEMERAL).forPath(membership + "-ready");
        Map<String, byte[]> members = member.getCurrentMembers();
        while (!members.keySet().containsAll(Arrays.asList(expected))) {
            if (System.currentTimeMillis() > deadline) {
                System.out.println("MISSING " + members.keySet());
                System.exit(3);
            }
            Thread.sleep(50);
            members = member.getCurrentMembers();
        }
        StringBuilder out = new StringBuilder("MEMBERS ");
        TreeMap<String, byte[]> sorted = new TreeMap<>(members);
        boolean first = true;
        for (Map.Entry<String, byte[]> e : sorted.entrySet()) {
            if (!first) out.append(",");
            first = false;
            out.append(e.getKey()).append("=").append(new String(e.getValue(), StandardCharsets.UTF_8));
        }
        System.out.println(out);
        System.out.flush();
        while (client.checkExists().forPath(membership + "-done") == null) {
            if (System.currentTimeMillis() > deadline) {
                System.exit(4);
            }
            Thread.sleep(50);
        }
        member.close();
        client.close();
    }
}
