// Curator's side of `zk-bench --locks`: `workers` threads, each with a CuratorFramework of
// its own, take an InterProcessMutex on one path `cycles` times each (acquire, release).
// Prints the seconds the cycles took, counted from when every session is connected.

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
        CuratorFramework[] clients = new CuratorFramework[workers];
        for (int w = 0; w < workers; w++) {
            clients[w] = CuratorFrameworkFactory.newClient(hosts, 10000, 10000,
                    new ExponentialBackoffRetry(100, 5));
            clients[w].start();
            clients[w].blockUntilConnected(30, TimeUnit.SECONDS);
        }
        Thread[] threads = new Thread[workers];
        for (int w = 0; w < workers; w++) {
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
        long start = System.nanoTime();
        for (Thread t : threads) t.start();
        for (Thread t : threads) t.join();
        double took = (System.nanoTime() - start) / 1e9;
        for (CuratorFramework c : clients) c.close();
        System.out.println(String.format("SECONDS %.6f", took));
    }
}
