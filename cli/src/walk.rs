//! Reading a whole subtree quickly: level by level, with up to `IN_FLIGHT` requests
//! pipelined on the one session. A node deleted meanwhile is left out.

use anyhow::Result;
use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use zk_tokio::{Acl, Client, ErrorCode, Stat};

const IN_FLIGHT: usize = 256;

/// What to read of each node besides its children and stat.
#[derive(Debug, Clone, Copy, Default)]
pub struct Want {
    /// Its data.
    pub data: bool,
    /// Its ACL.
    pub acl: bool,
}

/// One node of a subtree.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its full path.
    pub path: String,
    /// Its stat.
    pub stat: Stat,
    /// Its children's names, sorted.
    pub children: Vec<String>,
    /// Its data, when asked for.
    pub data: Bytes,
    /// Its ACL, when asked for.
    pub acl: Vec<Acl>,
}

/// The child `name` of `parent`.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The last component of `path`.
pub fn name(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some((_, n)) if !n.is_empty() => n,
        _ => "/",
    }
}

async fn read(client: &Client, path: String, want: Want) -> Result<Option<Node>> {
    let gone = |e: &zk_tokio::Error| e.is(ErrorCode::NoNode);
    let (children, stat) = match client.get_children2(&path).await {
        Ok(r) => r,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(anyhow::Error::new(e).context(path)),
    };
    let mut node = Node {
        path,
        stat,
        children,
        data: Bytes::new(),
        acl: Vec::new(),
    };
    node.children.sort();
    if want.data {
        match client.get_data(&node.path).await {
            Ok((data, stat)) => {
                node.data = data;
                node.stat = stat;
            }
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(anyhow::Error::new(e).context(node.path)),
        }
    }
    if want.acl {
        match client.get_acl(&node.path).await {
            Ok((acl, _)) => node.acl = acl,
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(anyhow::Error::new(e).context(node.path)),
        }
    }
    Ok(Some(node))
}

/// Every node of the subtree at `root` down to `depth` levels below it, parents before
/// their children and siblings in name order; `progress` hears the count so far.
pub async fn walk(
    client: &Client,
    root: &str,
    want: Want,
    depth: Option<usize>,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Node>> {
    let Some(top) = read(client, root.to_string(), want).await? else {
        return Err(zk_tokio::Error::server(ErrorCode::NoNode)
            .at_path(root)
            .into());
    };
    let mut levels: Vec<Vec<Node>> = vec![vec![top]];
    let mut count = 1;
    progress(count);
    loop {
        let level = levels.len() - 1;
        if depth.is_some_and(|d| level >= d) {
            break;
        }
        let paths: Vec<String> = levels[level]
            .iter()
            .flat_map(|n| n.children.iter().map(|c| join(&n.path, c)))
            .collect();
        if paths.is_empty() {
            break;
        }
        let mut next = Vec::with_capacity(paths.len());
        let mut pending = paths.into_iter();
        let mut inflight = FuturesUnordered::new();
        loop {
            while inflight.len() < IN_FLIGHT {
                match pending.next() {
                    Some(p) => inflight.push(read(client, p, want)),
                    None => break,
                }
            }
            match inflight.next().await {
                Some(node) => {
                    if let Some(node) = node? {
                        next.push(node);
                        count += 1;
                        progress(count);
                    }
                }
                None => break,
            }
        }
        levels.push(next);
    }
    let mut all: Vec<Node> = levels.into_iter().flatten().collect();
    // Parents first, then each parent's children in name order: sort by components.
    all.sort_by(|a, b| {
        let ka = a.path.split('/').filter(|s| !s.is_empty());
        let kb = b.path.split('/').filter(|s| !s.is_empty());
        ka.cmp(kb)
    });
    Ok(all)
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters and `?`
/// for one.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_a_shell() {
        assert!(matches("lock-*", "lock-0000000001"));
        assert!(matches("*", ""));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("*b*", "abc"));
        assert!(!matches("lock-*", "latch-1"));
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(name("/"), "/");
    }
}
