// Curator's side of the service discovery interop test. Registers an instance of
// "curator-svc" (id "c1", address 10.1.2.3, port 7000, sslPort 7443, a String payload and
// a URI spec) under `base`, creates `<base>-ready`, then waits until "rust-svc" has an
// instance, and prints each of its fields as Curator read them, one per line:
// "FIELD <name> <value>", and "PROVIDED <id>" for what a round-robin ServiceProvider
// picks. It then waits for `<base>-done` and closes (unregistering its instance).

import java.util.Collection;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.ServiceProvider;
import org.apache.curator.x.discovery.UriSpec;
import org.apache.zookeeper.CreateMode;

public class CuratorDiscoverySide {
    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        String base = args[1];
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                hosts, 10000, 10000, new ExponentialBackoffRetry(100, 5));
        client.start();
        client.blockUntilConnected(30, TimeUnit.SECONDS);
        ServiceInstance<String> mine = ServiceInstance.<String>builder()
                .name("curator-svc")
                .id("c1")
                .address("10.1.2.3")
                .port(7000)
                .sslPort(7443)
                .payload("curator-payload")
                .uriSpec(new UriSpec("{scheme}://{address}:{port}"))
                .build();
        ServiceDiscovery<String> discovery = ServiceDiscoveryBuilder.builder(String.class)
                .client(client)
                .basePath(base)
                .thisInstance(mine)
                .build();
        discovery.start();
        client.create().withMode(CreateMode.EPHEMERAL).forPath(base + "-ready");
        long deadline = System.currentTimeMillis() + 60000;
        Collection<ServiceInstance<String>> found = discovery.queryForInstances("rust-svc");
        while (found.isEmpty()) {
            if (System.currentTimeMillis() > deadline) {
                System.out.println("NOTHING FOUND");
                System.exit(2);
            }
            Thread.sleep(50);
            found = discovery.queryForInstances("rust-svc");
        }
        ServiceInstance<String> theirs = found.iterator().next();
        System.out.println("FIELD name " + theirs.getName());
        System.out.println("FIELD id " + theirs.getId());
        System.out.println("FIELD address " + theirs.getAddress());
        System.out.println("FIELD port " + theirs.getPort());
        System.out.println("FIELD sslPort " + theirs.getSslPort());
        System.out.println("FIELD payload " + theirs.getPayload());
        System.out.println("FIELD registrationTimeUTC " + theirs.getRegistrationTimeUTC());
        System.out.println("FIELD serviceType " + theirs.getServiceType());
        System.out.println("FIELD uri " + theirs.buildUriSpec());
        System.out.println("FIELD enabled " + theirs.isEnabled());
        ServiceProvider<String> provider = discovery.serviceProviderBuilder()
                .serviceName("rust-svc")
                .build();
        provider.start();
        ServiceInstance<String> picked = provider.getInstance();
        while (picked == null && System.currentTimeMillis() < deadline) {
            Thread.sleep(50);
            picked = provider.getInstance();
        }
        System.out.println("PROVIDED " + (picked == null ? "none" : picked.getId()));
        System.out.println("END");
        System.out.flush();
        while (client.checkExists().forPath(base + "-done") == null) {
            if (System.currentTimeMillis() > deadline) {
                System.exit(4);
            }
            Thread.sleep(50);
        }
        provider.close();
        discovery.close();
        client.close();
    }
}
