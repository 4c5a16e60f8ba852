// Prints test vectors for zk-sim's emulation of the JDK behaviours ZooKeeper's replies
// depend on: java.util.Random bytes, HashSet iteration order (with adds, removes and
// clones), and the order of small ConcurrentHashMap key sets of jute Ids.
//
//   javac -d /tmp/vectors Vectors.java && java -cp /tmp/vectors Vectors > vectors.txt
import java.util.*;
import java.util.concurrent.ConcurrentHashMap;

public class Vectors {
    // The hash code jute generates for org.apache.zookeeper.data.Id.
    static final class Id {
        final String scheme, id;
        Id(String scheme, String id) { this.scheme = scheme; this.id = id; }
        @Override public int hashCode() {
            int result = 17;
            result = 37 * result + scheme.hashCode();
            result = 37 * result + id.hashCode();
            return result;
        }
        @Override public boolean equals(Object o) {
            return o instanceof Id && ((Id) o).scheme.equals(scheme) && ((Id) o).id.equals(id);
        }
        @Override public String toString() { return scheme + ":" + id; }
    }

    static String name(Random r) {
        switch (r.nextInt(4)) {
            case 0: return "n" + r.nextInt(200);
            case 1: return String.format(Locale.ENGLISH, "lock-%010d", r.nextInt(5000));
            case 2: return "x" + Long.toHexString(r.nextLong());
            default: return "\u00e9t\u00e9" + r.nextInt(50);
        }
    }

    static String join(Collection<String> c) { return String.join(",", c); }

    public static void main(String[] args) {
        long[] seeds = {0L, 1L, -1L, 0x0100005cd6040000L, 0x12345678abcdefL, Long.MIN_VALUE};
        for (long s : seeds) {
            byte[] p = new byte[16];
            new Random(s ^ 0xB3415C00L).nextBytes(p);
            StringBuilder sb = new StringBuilder();
            for (byte b : p) sb.append(String.format("%02x", b & 0xff));
            System.out.println("random " + s + " " + sb);
        }
        Random r = new Random(42);
        for (int scenario = 0; scenario < 6; scenario++) {
            int capacity = scenario % 2 == 0 ? 8 : -1;
            HashSet<String> set = capacity < 0 ? new HashSet<>() : new HashSet<>(capacity);
            System.out.println("set " + capacity);
            int ops = 40 + scenario * 40;
            for (int i = 0; i < ops; i++) {
                if (!set.isEmpty() && r.nextInt(3) == 0) {
                    List<String> names = new ArrayList<>(set);
                    String victim = names.get(r.nextInt(names.size()));
                    set.remove(victim);
                    System.out.println("- " + victim);
                } else {
                    String n = name(r);
                    set.add(n);
                    System.out.println("+ " + n);
                }
                if (i % 9 == 8) {
                    System.out.println("order " + join(set));
                    @SuppressWarnings("unchecked")
                    HashSet<String> copy = (HashSet<String>) set.clone();
                    System.out.println("clone " + join(copy));
                }
            }
            System.out.println("order " + join(set));
        }
        String[][] idSets = {
            {"ip:127.0.0.1", "digest:alice:HASH1", "digest:bob:HASH2"},
            {"ip:127.0.0.1", "digest:u:Xy9", "digest:v:Zz0", "digest:w:Aa1", "super:"},
            {"digest:b:2", "ip:10.0.0.1", "digest:a:1"},
        };
        for (String[] ids : idSets) {
            Set<Id> s = Collections.newSetFromMap(new ConcurrentHashMap<Id, Boolean>());
            List<String> in = new ArrayList<>();
            for (String id : ids) {
                String[] parts = id.split(":", 2);
                s.add(new Id(parts[0], parts[1]));
                in.add(id);
            }
            List<String> out = new ArrayList<>();
            for (Id id : s) out.add(id.toString());
            System.out.println("ids " + String.join("|", in) + " " + String.join("|", out));
        }
    }
}
