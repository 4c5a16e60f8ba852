//! The few pieces of Java behaviour that show on the wire: `String.hashCode`, the iteration
//! order of `java.util.HashSet` (children lists and ephemeral lists come out in it),
//! the order of small `ConcurrentHashMap` key sets (a connection's identities), and
//! `java.util.Random` (session passwords). Checked against vectors the JDK printed
//! (`sim/tests/java/Vectors.java`).

/// `String.hashCode()`: over UTF-16 code units, wrapping.
pub fn string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

/// `HashMap.hash`: the high half folded into the low half.
fn spread(h: i32) -> u32 {
    let h = h as u32;
    h ^ (h >> 16)
}

/// `HashMap.tableSizeFor`: the smallest power of two at least `c` (at least 1).
fn table_size_for(c: usize) -> usize {
    c.max(1).next_power_of_two()
}

/// Bins holding this many entries before an insert make Java treeify them (or, in a table
/// under 64 bins, grow the table instead).
const TREEIFY_THRESHOLD: usize = 8;
const MIN_TREEIFY_CAPACITY: usize = 64;

/// A `java.util.HashSet<String>` as far as its iteration order goes: the same bins, the same
/// growth, the same insertion order within a bin (JDK 8 to 17).
///
/// A bin that would hold more than eight names in a table of 64 bins or more becomes a tree
/// in Java, which reorders it; such bins keep insertion order here (names crafted to collide
/// are the only way to get one).
#[derive(Debug, Clone, Default)]
pub struct JavaHashSet {
    bins: Vec<Vec<(u32, String)>>,
    len: usize,
    /// Before the table exists: the capacity it will be created with (0 for the default 16).
    initial: usize,
}

impl JavaHashSet {
    /// `new HashSet<>()`: 16 bins once the first name arrives.
    pub fn new() -> Self {
        JavaHashSet::default()
    }

    /// `new HashSet<>(capacity)`.
    pub fn with_capacity(capacity: usize) -> Self {
        JavaHashSet {
            bins: Vec::new(),
            len: 0,
            initial: table_size_for(capacity),
        }
    }

    /// The number of names.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn index(&self, hash: u32) -> usize {
        hash as usize & (self.bins.len() - 1)
    }

    /// True when `name` is in the set.
    pub fn contains(&self, name: &str) -> bool {
        if self.bins.is_empty() {
            return false;
        }
        let hash = spread(string_hash(name));
        self.bins[self.index(hash)]
            .iter()
            .any(|(h, n)| *h == hash && n == name)
    }

    /// `add`: appends to its bin; false if it was there (nothing moves).
    pub fn insert(&mut self, name: &str) -> bool {
        if self.bins.is_empty() {
            let cap = if self.initial == 0 { 16 } else { self.initial };
            self.bins = vec![Vec::new(); cap];
        }
        let hash = spread(string_hash(name));
        let i = self.index(hash);
        if self.bins[i].iter().any(|(h, n)| *h == hash && n == name) {
            return false;
        }
        let before = self.bins[i].len();
        self.bins[i].push((hash, name.to_owned()));
        if before >= TREEIFY_THRESHOLD && self.bins.len() < MIN_TREEIFY_CAPACITY {
            self.grow();
        }
        self.len += 1;
        if self.len > self.threshold() {
            self.grow();
        }
        true
    }

    /// `remove`: the others keep their order.
    pub fn remove(&mut self, name: &str) -> bool {
        if self.bins.is_empty() {
            return false;
        }
        let hash = spread(string_hash(name));
        let i = self.index(hash);
        match self.bins[i]
            .iter()
            .position(|(h, n)| *h == hash && n == name)
        {
            Some(at) => {
                self.bins[i].remove(at);
                self.len -= 1;
                true
            }
            None => false,
        }
    }

    fn threshold(&self) -> usize {
        // (int) (capacity * 0.75f), exact for powers of two of 4 and more; 0 for 1 and 1 for 2.
        self.bins.len() * 3 / 4
    }

    /// `resize()`: each bin splits into a low and a high bin, both keeping their order.
    fn grow(&mut self) {
        let old = self.bins.len();
        let mut bins = vec![Vec::new(); old * 2];
        for (j, bin) in std::mem::take(&mut self.bins).into_iter().enumerate() {
            for (hash, name) in bin {
                let k = if hash as usize & old == 0 { j } else { j + old };
                bins[k].push((hash, name));
            }
        }
        self.bins = bins;
    }

    /// The names in Java's iteration order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.bins.iter().flatten().map(|(_, n)| n.as_str())
    }

    /// `HashSet.clone()`: a new table sized for the current count, filled in iteration order,
    /// so its order can differ from the original's.
    pub fn java_clone(&self) -> JavaHashSet {
        if self.len == 0 {
            return JavaHashSet::new();
        }
        // putMapEntries: threshold = tableSizeFor((int) (size / 0.75f + 1.0f)).
        let t = (self.len as f32 / 0.75f32 + 1.0f32) as usize;
        let mut copy = JavaHashSet::with_capacity(t);
        for name in self.iter() {
            copy.insert(name);
        }
        copy
    }
}

/// A small `ConcurrentHashMap` key set of hash codes, as a connection keeps its
/// identities: iteration goes by bin of a 16-bin table, then insertion order. Exact up to
/// 12 members (a table resize, which reorders bins in this map, happens past that).
pub fn concurrent_set_order<T>(members: &mut [(i32, T)]) {
    // spread(h) = (h ^ (h >>> 16)) & 0x7fffffff; bin = spread & 15. A stable sort keeps the
    // insertion order within a bin.
    members.sort_by_key(|(h, _)| (spread(*h) & 0x7fff_ffff) & 15);
}

/// The hash code of a jute record `Id { scheme, id }`: `37 * (37 * 17 + scheme) + id`.
pub fn id_hash(scheme: &str, id: &str) -> i32 {
    let r = 37i32.wrapping_mul(17).wrapping_add(string_hash(scheme));
    37i32.wrapping_mul(r).wrapping_add(string_hash(id))
}

/// `java.util.Random`: a 48-bit linear congruential generator.
#[derive(Debug, Clone)]
pub struct JavaRandom(u64);

const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const MASK: u64 = (1 << 48) - 1;

impl JavaRandom {
    /// `new Random(seed)`.
    pub fn new(seed: i64) -> Self {
        JavaRandom((seed as u64 ^ MULTIPLIER) & MASK)
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.0 = (self.0.wrapping_mul(MULTIPLIER).wrapping_add(0xB)) & MASK;
        (self.0 >> (48 - bits)) as i64 as i32
    }

    /// `nextInt()`.
    pub fn next_int(&mut self) -> i32 {
        self.next(32)
    }

    /// `nextBytes(bytes)`: four bytes from each int, low byte first.
    pub fn next_bytes(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(4) {
            let mut rnd = self.next_int();
            for b in chunk {
                *b = rnd as u8;
                rnd >>= 8;
            }
        }
    }
}

/// `String.split(sep)` with Java's rule that trailing empty strings are dropped: the number
/// of parts it returns.
pub fn split_count(s: &str, sep: char) -> usize {
    let parts: Vec<&str> = s.split(sep).collect();
    let kept = parts
        .iter()
        .rposition(|p| !p.is_empty())
        .map_or(0, |i| i + 1);
    // "".split(":") is [""] in Java: one part, the input itself.
    if s.is_empty() { 1 } else { kept }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_hashes_match_java() {
        assert_eq!(string_hash(""), 0);
        assert_eq!(string_hash("a"), 97);
        assert_eq!(string_hash("zookeeper"), 1_600_681_804);
        // A character outside the BMP counts as two UTF-16 units.
        assert_eq!(string_hash("\u{1F600}"), 1_772_899);
    }

    #[test]
    fn split_drops_trailing_empty_parts() {
        assert_eq!(split_count("a:b", ':'), 2);
        assert_eq!(split_count("a:b:", ':'), 2);
        assert_eq!(split_count(":b", ':'), 2);
        assert_eq!(split_count("a::b", ':'), 3);
        assert_eq!(split_count("a:", ':'), 1);
        assert_eq!(split_count("a", ':'), 1);
        assert_eq!(split_count(":", ':'), 0);
        assert_eq!(split_count("", ':'), 1);
    }

    /// Replays the JDK's own output (sim/tests/java/Vectors.java).
    #[test]
    fn the_jdk_agrees() {
        let vectors = include_str!("../tests/java/vectors.txt");
        let mut set = JavaHashSet::new();
        let (mut orders, mut clones, mut randoms, mut ids) = (0, 0, 0, 0);
        for line in vectors.lines() {
            let (tag, rest) = line.split_once(' ').unwrap();
            match tag {
                "random" => {
                    let (seed, hex) = rest.split_once(' ').unwrap();
                    let seed: i64 = seed.parse().unwrap();
                    let mut bytes = [0u8; 16];
                    JavaRandom::new(seed ^ 0xB341_5C00).next_bytes(&mut bytes);
                    let got: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                    assert_eq!(got, hex, "seed {seed}");
                    randoms += 1;
                }
                "set" => {
                    let cap: i64 = rest.parse().unwrap();
                    set = if cap < 0 {
                        JavaHashSet::new()
                    } else {
                        JavaHashSet::with_capacity(cap as usize)
                    };
                }
                "+" => {
                    set.insert(rest);
                }
                "-" => {
                    assert!(set.remove(rest), "{rest} was in the set");
                }
                "order" => {
                    let got: Vec<&str> = set.iter().collect();
                    let want: Vec<&str> = rest.split(',').filter(|s| !s.is_empty()).collect();
                    assert_eq!(got, want);
                    orders += 1;
                }
                "clone" => {
                    let copy = set.java_clone();
                    let got: Vec<&str> = copy.iter().collect();
                    let want: Vec<&str> = rest.split(',').filter(|s| !s.is_empty()).collect();
                    assert_eq!(got, want);
                    clones += 1;
                }
                "ids" => {
                    let (input, output) = rest.split_once(' ').unwrap();
                    let mut members: Vec<(i32, &str)> = input
                        .split('|')
                        .map(|id| {
                            let (scheme, rest) = id.split_once(':').unwrap();
                            (id_hash(scheme, rest), id)
                        })
                        .collect();
                    concurrent_set_order(&mut members);
                    let got: Vec<&str> = members.iter().map(|(_, id)| *id).collect();
                    assert_eq!(got.join("|"), output);
                    ids += 1;
                }
                other => panic!("unknown vector line {other}"),
            }
        }
        assert!(orders > 50 && clones > 40 && randoms == 6 && ids == 3);
    }
}
