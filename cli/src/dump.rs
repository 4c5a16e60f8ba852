//! `dump` and `restore`: a subtree as JSON lines, and back.
//!
//! The first line names the format and the dump's root; each further line is one node,
//! parents before children: `{"path", "data", "encoding": "utf8"|"base64", "acl": [...],
//! "mode": "persistent"|"container"|"ttl", "ttl_ms"}`. Ephemeral nodes belong to a session
//! and are skipped, with a note; so is ZooKeeper's own `/zookeeper`.

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::stream::{FuturesUnordered, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use zk_tokio::{Client, CreateOptions, ErrorCode};

use crate::output::{acl_from_json, acl_json, data_from_json, data_json};
use crate::walk::{Want, walk};

const FORMAT: &str = "zk-dump";
const IN_FLIGHT: usize = 256;
/// The owner of a container node.
const CONTAINER_OWNER: i64 = i64::MIN;

/// What an `ephemeralOwner` says about a node's mode.
enum Mode {
    Persistent,
    Container,
    Ttl(u64),
    Ephemeral,
}

fn mode(owner: i64) -> Mode {
    if owner == 0 {
        Mode::Persistent
    } else if owner == CONTAINER_OWNER {
        Mode::Container
    } else if (owner as u64) >> 56 == 0xff {
        // Extended type TTL: the top byte all ones, the TTL in the low 40 bits.
        Mode::Ttl(owner as u64 & 0xff_ffff_ffff)
    } else {
        Mode::Ephemeral
    }
}

fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template(&format!("{{spinner}} {{pos}} nodes {what}")) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Writes the subtree at `root` to `out`; returns (nodes written, ephemerals skipped).
pub async fn dump(client: &Client, root: &str, out: &mut dyn Write) -> Result<(usize, usize)> {
    let bar = spinner("read");
    let nodes = walk(
        client,
        root,
        Want {
            data: true,
            acl: true,
        },
        None,
        &mut |n| bar.set_position(n as u64),
    )
    .await?;
    bar.finish_and_clear();
    writeln!(
        out,
        "{}",
        json!({ "format": FORMAT, "version": 1, "root": root })
    )?;
    let (mut written, mut skipped) = (0, 0);
    for node in nodes {
        if node.path == "/zookeeper" || node.path.starts_with("/zookeeper/") {
            continue;
        }
        let (mode_name, ttl) = match mode(node.stat.ephemeral_owner) {
            Mode::Persistent => ("persistent", None),
            Mode::Container => ("container", None),
            Mode::Ttl(ms) => ("ttl", Some(ms)),
            Mode::Ephemeral => {
                skipped += 1;
                continue;
            }
        };
        let (data, encoding) = data_json(&node.data);
        let mut line = json!({
            "path": node.path,
            "data": data,
            "encoding": encoding,
            "acl": acl_json(&node.acl),
            "mode": mode_name,
        });
        if let Some(ms) = ttl {
            line["ttl_ms"] = json!(ms);
        }
        writeln!(out, "{line}")?;
        written += 1;
    }
    out.flush()?;
    Ok((written, skipped))
}

/// One node of a dump, where it goes.
struct Entry {
    path: String,
    data: Vec<u8>,
    options: CreateOptions,
    depth: usize,
}

fn entry(v: &Value, root: &str, into: Option<&str>) -> Result<Entry> {
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow::anyhow!("a line lacks `{k}`"))
    };
    let path = field("path")?;
    let path = match into {
        Some(into) => {
            let rest = path
                .strip_prefix(root)
                .ok_or_else(|| anyhow::anyhow!("{path} is not under the dump's root {root}"))?;
            let base = into.trim_end_matches('/');
            match (base.is_empty(), rest.is_empty()) {
                (true, true) => "/".to_string(),
                (true, false) => rest.to_string(),
                (false, _) if rest.starts_with('/') || rest.is_empty() => format!("{base}{rest}"),
                (false, _) => format!("{base}/{rest}"),
            }
        }
        None => path.to_string(),
    };
    let data = data_from_json(field("data")?, field("encoding")?)?;
    let acl = acl_from_json(v.get("acl").unwrap_or(&Value::Null))?;
    let options = match field("mode")? {
        "persistent" => CreateOptions::persistent(),
        "container" => CreateOptions::container(),
        "ttl" => {
            let ms = v
                .get("ttl_ms")
                .and_then(Value::as_u64)
                .ok_or_else(|| anyhow::anyhow!("a TTL node without `ttl_ms`"))?;
            CreateOptions::ttl(Duration::from_millis(ms))
        }
        other => anyhow::bail!("unknown mode `{other}`"),
    }
    .with_acl(acl);
    let depth = path.split('/').filter(|s| !s.is_empty()).count();
    Ok(Entry {
        path,
        data,
        options,
        depth,
    })
}

/// Creates the nodes of the dump in `input`, level by level, pipelined; returns (created,
/// already there).
pub async fn restore(
    client: &Client,
    input: &mut dyn BufRead,
    into: Option<&str>,
) -> Result<(usize, usize)> {
    let mut lines = input.lines();
    let header: Value = serde_json::from_str(
        &lines
            .next()
            .context("the dump is empty")?
            .context("cannot read the dump")?,
    )
    .context("the dump's first line is not JSON")?;
    if header.get("format").and_then(Value::as_str) != Some(FORMAT) {
        anyhow::bail!("not a zk dump (its first line names no `{FORMAT}` format)");
    }
    let root = header
        .get("root")
        .and_then(Value::as_str)
        .unwrap_or("/")
        .to_string();
    let mut entries = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line.context("cannot read the dump")?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(&line).with_context(|| format!("line {} is not JSON", n + 2))?;
        entries.push(entry(&v, &root, into).with_context(|| format!("line {}", n + 2))?);
    }
    if let Some(into) = into {
        // The new root's parents, as plain nodes.
        if let Some((parent, _)) = into.trim_end_matches('/').rsplit_once('/')
            && !parent.is_empty()
        {
            client.create_all(parent, "").await?;
        }
    }
    let bar = ProgressBar::new(entries.len() as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} nodes restored") {
        bar.set_style(style);
    }
    entries.sort_by_key(|e| e.depth);
    let (mut created, mut existing) = (0, 0);
    let mut start = 0;
    while start < entries.len() {
        let depth = entries[start].depth;
        let end = entries[start..]
            .iter()
            .position(|e| e.depth != depth)
            .map_or(entries.len(), |i| start + i);
        let mut pending = entries[start..end].iter();
        let mut inflight = FuturesUnordered::new();
        loop {
            while inflight.len() < IN_FLIGHT {
                match pending.next() {
                    Some(e) if e.path == "/" => existing += 1,
                    Some(e) => inflight.push(async move {
                        let r = client.create(&e.path, e.data.clone(), &e.options).await;
                        (e, r)
                    }),
                    None => break,
                }
            }
            match inflight.next().await {
                Some((_, Ok(_))) => created += 1,
                Some((_, Err(err))) if err.is(ErrorCode::NodeExists) => existing += 1,
                Some((e, Err(err))) => {
                    return Err(anyhow::Error::new(err).context(e.path.clone()));
                }
                None => break,
            }
            bar.set_position((created + existing) as u64);
        }
        start = end;
    }
    bar.finish_and_clear();
    Ok((created, existing))
}
