// Curator's side of `zk-bench --locks`: `workers` threads, each with a CuratorFramework of
// its own, take an InterProcessMutex on one path `cycles` times each (acquire, release).
// Before that, the same threads run `warm` untimed cycles each on sessions to `warmHosts`
// and a path of their own, so the JIT has compiled the hot paths as in a long-running
// service. Prints the seconds the timed cycles took, counted from when every session is
// connected.

import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorLocks {
    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        String path = args[1];
        int workers = Integer.parseInt(args[2]);
        int cycles = Integer.parseInt(args[3]);
        int warm = args.length > 4 ? Integer.parseInt(args[4]) : 0;
        String warmHosts = args.length > 5 ? args[5] : hosts;
        if (warm > 0) {
            CuratorFramework[] warming = connect(warmHosts, workers);
            run(warming, path + "-warm", warm);
            for (CuratorFramework c : warming) c.close();
        }
        CuratorFramework[] clients = connect(hosts, workers);
        long start = System.nanoTime();
        run(clients, path, cycles);
        double took = (System.nanoTime() - start) / 1e9;
        for (CuratorFramework c : clients) c.close();
        System.out.println(String.format("SECONDS %.6f", took));
    }

    static CuratorFramework[] connect(String hosts, int workers) throws Exception {
        CuratorFramework[] clients = new CuratorFramework[workers];
        for (int w = 0; w < workers; w++) {
            clients[w] = CuratorFrameworkFactory.newClient(hosts, 10000, 10000,
                    new ExponentialBackoffRetry(100, 5));
            clients[w].start();
            clients[w].blockUntilConnected(30, TimeUnit.SECONDS);
        }
        return clients;
    }

    static void run(CuratorFramework[] clients, String path, int cycles) throws Exception {
        Thread[] threads = new Thread[clients.length];
        for (int w = 0; w < clients.length; w++) {
            InterProcessMutex lock = new InterProcessMutex(clients[w], path);
            threads[w] = new Thread(() -> {
                try {
                    for (int i = 0; i < cycles; i++) {
                        lock.acquire();
                        lock.release();
                    }
                } catch (Exception e) {
                    e.printStackTrace();
                    System.exit(3);
                }
            });
        }
        for (Thread t : threads) t.start();
        for (Thread t : threads) t.join();
    }
}
