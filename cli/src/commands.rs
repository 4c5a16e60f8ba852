//! Each command, run on a connected client: from the command line once, or line by line
//! from the shell.

use std::io::{BufReader, IsTerminal, Read, Write};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use serde_json::{Value, json};
use zk_tokio::admin;
use zk_tokio::recipes::{Election, Lock};
use zk_tokio::{AddWatchMode, Client, CreateOptions};

use crate::output::{
    UsageError, acl_json, acl_parse, colour, data_json, data_text, parent_name, perms_text,
    stat_json, stat_text, time,
};
use crate::walk::{Want, matches, name, walk};
use crate::{Command, Global, Outcome, connect, dump};

/// Connects, runs one command, closes the session.
pub async fn run_once(g: &Global, command: Command) -> Result<Outcome> {
    // Four-letter words need no session.
    if let Command::Admin { word } = &command {
        return admin_word(g, word).await;
    }
    let client = connect::connect(g).await?;
    let outcome = run(&client, g, command).await;
    client.close().await;
    outcome
}

fn print_json(v: &Value) {
    println!("{v}");
}

/// Reads `data`, or standard input for `-`.
fn data_arg(data: &str) -> Result<Bytes> {
    if data == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        Ok(Bytes::from(buf))
    } else {
        Ok(Bytes::from(data.to_string()))
    }
}

/// Runs `command` on `client`.
pub async fn run(client: &Client, g: &Global, command: Command) -> Result<Outcome> {
    let ctx = |path: &str| path.to_string();
    match command {
        Command::Ls {
            path,
            long,
            recursive,
        } => ls(client, g, &path, long, recursive).await?,
        Command::Get { path, stat, raw } => {
            let (data, st) = client.get_data(&path).await.context(ctx(&path))?;
            if g.json {
                let (value, encoding) = data_json(&data);
                let mut v = json!({ "path": path, "data": value, "encoding": encoding });
                if stat {
                    v["stat"] = stat_json(&st);
                }
                print_json(&v);
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(&data)?;
                // One line per node, as zkCli.sh prints it: whatever comes next starts on a
                // line of its own. `--raw` keeps the bytes exactly.
                if !raw && !data.ends_with(b"\n") {
                    out.write_all(b"\n")?;
                }
                if stat {
                    writeln!(out, "{}", stat_text(&st))?;
                }
            }
        }
        Command::Set {
            path,
            data,
            version,
        } => {
            let st = client
                .set_data(&path, data_arg(&data)?, version)
                .await
                .context(ctx(&path))?;
            if g.json {
                print_json(&json!({ "path": path, "stat": stat_json(&st) }));
            }
        }
        Command::Create {
            path,
            data,
            ephemeral,
            sequential,
            container,
            ttl,
            parents,
        } => {
            let options = match (ephemeral, sequential, container, ttl) {
                (_, _, true, _) => CreateOptions::container(),
                (_, false, _, Some(ms)) => CreateOptions::ttl(Duration::from_millis(ms)),
                (_, true, _, Some(ms)) => CreateOptions::sequential_ttl(Duration::from_millis(ms)),
                (true, true, _, _) => CreateOptions::ephemeral_sequential(),
                (true, false, _, _) => CreateOptions::ephemeral(),
                (false, true, _, _) => CreateOptions::persistent_sequential(),
                (false, false, _, _) => CreateOptions::persistent(),
            };
            if parents
                && let Some((parent, _)) = path.rsplit_once('/')
                && !parent.is_empty()
            {
                client.create_all(parent, "").await.context(ctx(parent))?;
            }
            let created = client
                .create(&path, data_arg(&data)?, &options)
                .await
                .context(ctx(&path))?;
            if g.json {
                print_json(&json!({ "path": created }));
            } else {
                println!("{created}");
            }
        }
        Command::Delete { path, version } => {
            client.delete(&path, version).await.context(ctx(&path))?;
        }
        Command::Rmr { path, dry_run, yes } => return rmr(client, g, &path, dry_run, yes).await,
        Command::Stat { path } => {
            let st = client
                .exists(&path)
                .await
                .context(ctx(&path))?
                .ok_or(zk_tokio::Error::server(zk_tokio::ErrorCode::NoNode).at_path(&path))?;
            if g.json {
                print_json(&json!({ "path": path, "stat": stat_json(&st) }));
            } else {
                println!("{}", stat_text(&st));
            }
        }
        Command::Getacl { path } => {
            let (acl, st) = client.get_acl(&path).await.context(ctx(&path))?;
            if g.json {
                print_json(
                    &json!({ "path": path, "acl": acl_json(&acl), "aversion": st.aversion }),
                );
            } else {
                for a in acl {
                    println!("{}:{}:{}", a.id.scheme, a.id.id, perms_text(a.perms));
                }
            }
        }
        Command::Setacl { path, acl, version } => {
            let acl = acl
                .iter()
                .map(|e| acl_parse(e))
                .collect::<Result<Vec<_>>>()
                .map_err(|e| UsageError(e.to_string()))?;
            client
                .set_acl(&path, acl, version)
                .await
                .context(ctx(&path))?;
        }
        Command::Whoami => {
            let ids = client.whoami().await?;
            if g.json {
                let v: Vec<Value> = ids
                    .iter()
                    .map(|i| json!({ "scheme": i.auth_scheme, "id": i.user }))
                    .collect();
                print_json(&Value::Array(v));
            } else {
                for i in ids {
                    println!("{}:{}", i.auth_scheme, i.user);
                }
            }
        }
        Command::Sync { path } => {
            client.sync(&path).await.context(ctx(&path))?;
        }
        Command::Tree { path, depth } => tree(client, g, &path, depth).await?,
        Command::Find { path, pattern } => {
            let nodes = walk(client, &path, Want::default(), None, &mut |_| {}).await?;
            let found: Vec<&str> = nodes
                .iter()
                .filter(|n| matches(&pattern, name(&n.path)))
                .map(|n| n.path.as_str())
                .collect();
            if g.json {
                print_json(&json!(found));
            } else {
                for p in found {
                    println!("{p}");
                }
            }
        }
        Command::Du { path } => {
            let nodes = walk(client, &path, Want::default(), None, &mut |_| {}).await?;
            let bytes: i64 = nodes.iter().map(|n| i64::from(n.stat.data_length)).sum();
            if g.json {
                print_json(&json!({ "path": path, "bytes": bytes, "nodes": nodes.len() }));
            } else {
                println!("{bytes}\t{}\t{path}", nodes.len());
            }
        }
        Command::Watch {
            path,
            recursive,
            count,
            no_data,
        } => watch(client, g, &path, recursive, count, !no_data).await?,
        Command::Dump { path, output } => {
            let (written, skipped) = match &output {
                Some(file) => {
                    let f = std::fs::File::create(file)
                        .with_context(|| format!("cannot create {}", file.display()))?;
                    let mut w = std::io::BufWriter::new(f);
                    dump::dump(client, &path, &mut w).await?
                }
                None => {
                    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
                    dump::dump(client, &path, &mut w).await?
                }
            };
            eprintln!("dumped {written} nodes");
            if skipped > 0 {
                eprintln!("skipped {skipped} ephemeral nodes: they belong to their sessions");
            }
        }
        Command::Restore { input, into } => {
            let (created, existing) = match &input {
                Some(file) => {
                    let f = std::fs::File::open(file)
                        .with_context(|| format!("cannot open {}", file.display()))?;
                    dump::restore(client, &mut BufReader::new(f), into.as_deref()).await?
                }
                None => {
                    let mut r = BufReader::new(std::io::stdin().lock());
                    dump::restore(client, &mut r, into.as_deref()).await?
                }
            };
            eprintln!("restored {created} nodes; {existing} were there already and were left");
        }
        Command::Lock {
            path,
            timeout,
            command,
        } => {
            let lock = Lock::new(client, &path);
            let guard = match timeout {
                Some(secs) => lock
                    .acquire_timeout(Duration::from_secs_f64(secs))
                    .await
                    .context(ctx(&path))?
                    .ok_or_else(|| anyhow::anyhow!("{path}: not ours within {secs} s"))?,
                None => lock.acquire().await.context(ctx(&path))?,
            };
            let code = tokio::select! {
                code = run_child(&command) => code,
                _ = guard.lost() => {
                    eprintln!("zk: {path}: the lock was lost; the command was stopped");
                    Ok(1)
                }
            };
            guard.release().await.context(ctx(&path))?;
            return Ok(Outcome::Code(code?));
        }
        Command::Elect { path, id, command } => {
            let election = Election::new(client, &path, id.clone().into_bytes());
            let leadership = election.lead().await.context(ctx(&path))?;
            eprintln!("{id} leads {path}");
            let code = if command.is_empty() {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => 0,
                    _ = leadership.lost() => 1,
                }
            } else {
                tokio::select! {
                    code = run_child(&command) => code?,
                    _ = leadership.lost() => 1,
                }
            };
            leadership.relinquish().await.context(ctx(&path))?;
            return Ok(Outcome::Code(code));
        }
        Command::Admin { word } => return admin_word(g, &word).await,
        Command::Completions { .. } => {}
    }
    Ok(Outcome::Ok)
}

/// Runs `command` to its end and returns its exit code; Ctrl-C stops it (and counts as
/// 130, as shells do).
async fn run_child(command: &[String]) -> Result<u8> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| UsageError("no command to run".into()))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run `{program}`"))?;
    tokio::select! {
        status = child.wait() => {
            let status = status?;
            Ok(status.code().map_or(1, |c| c.clamp(0, 255) as u8))
        }
        _ = tokio::signal::ctrl_c() => {
            let _ = child.kill().await;
            Ok(130)
        }
    }
}

async fn ls(client: &Client, g: &Global, path: &str, long: bool, recursive: bool) -> Result<()> {
    if recursive {
        let nodes = walk(client, path, Want::default(), None, &mut |_| {}).await?;
        if g.json {
            let paths: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
            print_json(&json!(paths));
        } else {
            for n in nodes {
                println!("{}", n.path);
            }
        }
        return Ok(());
    }
    if !long {
        let mut children = client.get_children(path).await.context(path.to_string())?;
        children.sort();
        if g.json {
            print_json(&json!(children));
        } else {
            for c in children {
                println!("{c}");
            }
        }
        return Ok(());
    }
    let nodes = walk(client, path, Want::default(), Some(1), &mut |_| {}).await?;
    let children: Vec<_> = nodes.iter().filter(|n| n.path != path).collect();
    if g.json {
        let v: Vec<Value> = children
            .iter()
            .map(|n| json!({ "name": name(&n.path), "stat": stat_json(&n.stat) }))
            .collect();
        print_json(&Value::Array(v));
        return Ok(());
    }
    let colour = colour();
    println!(
        "{:>8} {:>9} {:>8}  {:19}  {:>18}  name",
        "version", "bytes", "children", "modified (UTC)", "owner"
    );
    for n in children {
        let s = &n.stat;
        let owner = if s.ephemeral_owner == 0 {
            "-".to_string()
        } else {
            format!("{:#x}", s.ephemeral_owner)
        };
        let shown = if s.num_children > 0 {
            parent_name(name(&n.path), colour)
        } else {
            name(&n.path).to_string()
        };
        println!(
            "{:>8} {:>9} {:>8}  {:19}  {:>18}  {shown}",
            s.version,
            s.data_length,
            s.num_children,
            time(s.mtime),
            owner
        );
    }
    Ok(())
}

async fn rmr(client: &Client, g: &Global, path: &str, dry_run: bool, yes: bool) -> Result<Outcome> {
    if path == "/" {
        return Err(UsageError("refusing to delete the whole tree `/`".into()).into());
    }
    let nodes = walk(client, path, Want::default(), None, &mut |_| {}).await?;
    if dry_run {
        if g.json {
            let paths: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
            print_json(&json!({ "would_delete": paths }));
        } else {
            for n in &nodes {
                println!("{}", n.path);
            }
            eprintln!("would delete {} nodes (dry run)", nodes.len());
        }
        return Ok(Outcome::Ok);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(format!(
                "deleting {path} and its {} descendants needs --yes when no one can be asked",
                nodes.len().saturating_sub(1)
            ))
            .into());
        }
        eprint!(
            "delete {path} and {} nodes under it? [y/N] ",
            nodes.len().saturating_sub(1)
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing deleted");
            return Ok(Outcome::Code(1));
        }
    }
    let deleted = client.delete_all(path).await.context(path.to_string())?;
    if g.json {
        print_json(&json!({ "deleted": deleted }));
    } else {
        eprintln!("deleted {deleted} nodes");
    }
    Ok(Outcome::Ok)
}

async fn tree(client: &Client, g: &Global, path: &str, depth: Option<usize>) -> Result<()> {
    let nodes = walk(client, path, Want::default(), depth, &mut |_| {}).await?;
    if g.json {
        // Nested objects: name, bytes, children.
        fn nest(nodes: &[crate::walk::Node], i: &mut usize) -> Value {
            let n = &nodes[*i];
            *i += 1;
            let mut kids = Vec::new();
            let prefix = if n.path == "/" {
                "/".to_string()
            } else {
                format!("{}/", n.path)
            };
            while *i < nodes.len() && nodes[*i].path.starts_with(&prefix) {
                kids.push(nest(nodes, i));
            }
            json!({
                "path": n.path,
                "bytes": n.stat.data_length,
                "children": kids,
            })
        }
        let mut i = 0;
        print_json(&nest(&nodes, &mut i));
        return Ok(());
    }
    let colour = colour();
    let root_depth = depth_of(path);
    // For each level, whether the node drawn last at that level was its parent's last child.
    let mut last_at: Vec<bool> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let d = depth_of(&n.path) - root_depth;
        let label = format!(
            "{} ({} B, {} children)",
            if n.stat.num_children > 0 {
                parent_name(name(&n.path), colour)
            } else {
                name(&n.path).to_string()
            },
            n.stat.data_length,
            n.stat.num_children
        );
        if d == 0 {
            println!(
                "{}",
                if path == "/" {
                    format!("/ ({} children)", n.stat.num_children)
                } else {
                    format!(
                        "{} ({} B, {} children)",
                        n.path, n.stat.data_length, n.stat.num_children
                    )
                }
            );
            continue;
        }
        // Last among its siblings: no later node at the same depth before a shallower one.
        let last = !nodes[i + 1..]
            .iter()
            .map(|m| depth_of(&m.path) - root_depth)
            .take_while(|md| *md >= d)
            .any(|md| md == d);
        last_at.truncate(d - 1);
        let mut line = String::new();
        for &done in &last_at {
            line.push_str(if done { "    " } else { "│   " });
        }
        line.push_str(if last { "└── " } else { "├── " });
        println!("{line}{label}");
        last_at.push(last);
    }
    Ok(())
}

fn depth_of(path: &str) -> usize {
    path.split('/').filter(|s| !s.is_empty()).count()
}

async fn watch(
    client: &Client,
    g: &Global,
    path: &str,
    recursive: bool,
    count: Option<u64>,
    with_data: bool,
) -> Result<()> {
    let mode = if recursive {
        AddWatchMode::PersistentRecursive
    } else {
        AddWatchMode::Persistent
    };
    let mut watcher = client
        .add_watch(path, mode)
        .await
        .context(path.to_string())?;
    eprintln!(
        "watching {path}{}; Ctrl-C ends",
        if recursive { " and below" } else { "" }
    );
    let mut seen = 0;
    loop {
        if count.is_some_and(|c| seen >= c) {
            return Ok(());
        }
        let event = tokio::select! {
            e = watcher.next() => e,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(event) = event else {
            anyhow::bail!("the watch ended: the session is gone");
        };
        seen += 1;
        let shows_data = matches!(
            event.kind,
            zk_tokio::EventType::NodeCreated | zk_tokio::EventType::NodeDataChanged
        );
        // Read after the event: the node may have changed again, or gone (then no data).
        let data = if with_data && shows_data {
            client.get_data(&event.path).await.ok().map(|(d, _)| d)
        } else {
            None
        };
        if g.json {
            let mut v = json!({ "event": format!("{:?}", event.kind), "path": event.path });
            if let Some(d) = &data {
                let (value, encoding) = data_json(d);
                v["data"] = value;
                v["encoding"] = encoding.into();
            }
            print_json(&v);
        } else {
            match &data {
                Some(d) => println!("{:?} {} {}", event.kind, event.path, data_text(d)),
                None => println!("{:?} {}", event.kind, event.path),
            }
        }
        std::io::stdout().flush()?;
    }
}

/// A server that did not answer a four-letter word as expected: a line, or a JSON object
/// with `error` in JSON mode.
fn admin_error(g: &Global, host: &str, e: &admin::AdminError) {
    if g.json {
        print_json(&json!({ "host": host, "error": e.to_string() }));
    } else {
        println!("{host}: {e}");
    }
}

async fn admin_word(g: &Global, word: &str) -> Result<Outcome> {
    let t = g.connect_timeout();
    let hosts = g.server.as_str();
    match word {
        "ruok" => {
            for (host, answer) in (admin::ask_each(hosts, admin::Ruok, t).await)? {
                match answer {
                    _ if g.json => print_json(&json!({
                        "host": host,
                        "ok": answer.is_ok(),
                        "error": answer.err().map(|e| e.to_string()),
                    })),
                    Ok(()) => println!("{host}: imok"),
                    Err(e) => println!("{host}: not ok ({e})"),
                }
            }
        }
        "isro" => {
            for (host, answer) in (admin::ask_each(hosts, admin::Isro, t).await)? {
                match answer {
                    Ok(ro) if g.json => print_json(&json!({ "host": host, "read_only": ro })),
                    Ok(ro) => println!("{host}: {}", if ro { "ro" } else { "rw" }),
                    Err(e) if g.json => {
                        print_json(&json!({ "host": host, "error": e.to_string() }));
                    }
                    Err(e) => admin_error(g, &host, &e),
                }
            }
        }
        "srvr" | "stat" => {
            let answers = if word == "srvr" {
                (admin::ask_each(hosts, admin::Srvr, t).await)?
            } else {
                (admin::ask_each(hosts, admin::Stat, t).await)?
            };
            for (host, answer) in answers {
                match answer {
                    Ok(s) if g.json => print_json(&json!({
                        "host": host, "mode": format!("{:?}", s.mode), "version": s.version,
                        "connections": s.connections, "outstanding": s.outstanding,
                        "zxid": s.zxid, "nodes": s.node_count,
                        "latency_ms": { "min": s.latency_min_ms, "avg": s.latency_avg_ms, "max": s.latency_max_ms },
                    })),
                    Ok(s) => println!(
                        "{host}: {:?}, {} nodes, {} connections, zxid {:#x}, latency {}/{:.1}/{} ms",
                        s.mode,
                        s.node_count,
                        s.connections,
                        s.zxid,
                        s.latency_min_ms,
                        s.latency_avg_ms,
                        s.latency_max_ms
                    ),
                    Err(e) => admin_error(g, &host, &e),
                }
            }
        }
        "mntr" => {
            for (host, answer) in (admin::ask_each(hosts, admin::Mntr, t).await)? {
                match answer {
                    Ok(m) if g.json => {
                        let map: serde_json::Map<String, Value> = m
                            .entries
                            .iter()
                            .map(|(k, v)| {
                                let v = match v {
                                    admin::MetricValue::Int(i) => json!(i),
                                    admin::MetricValue::Float(f) => json!(f),
                                    admin::MetricValue::Text(s) => json!(s),
                                    admin::MetricValue::Null => Value::Null,
                                };
                                (k.clone(), v)
                            })
                            .collect();
                        print_json(&json!({ "host": host, "metrics": map }));
                    }
                    Ok(m) => {
                        println!("{host}");
                        let width = m.entries.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                        for (k, v) in &m.entries {
                            let v = match v {
                                admin::MetricValue::Int(i) => i.to_string(),
                                admin::MetricValue::Float(f) => format!("{f}"),
                                admin::MetricValue::Text(s) => s.clone(),
                                admin::MetricValue::Null => "null".to_owned(),
                            };
                            println!("  {k:<width$}  {v:>}");
                        }
                    }
                    Err(e) => admin_error(g, &host, &e),
                }
            }
        }
        "conf" | "envi" => {
            let answers = if word == "conf" {
                (admin::ask_each(hosts, admin::Conf, t).await)?
            } else {
                (admin::ask_each(hosts, admin::Envi, t).await)?
            };
            for (host, answer) in answers {
                match answer {
                    Ok(kv) if g.json => {
                        let map: serde_json::Map<String, Value> =
                            kv.into_iter().map(|(k, v)| (k, json!(v))).collect();
                        print_json(&json!({ "host": host, word: map }));
                    }
                    Ok(kv) => {
                        println!("{host}");
                        for (k, v) in kv {
                            println!("  {k}={v}");
                        }
                    }
                    Err(e) => admin_error(g, &host, &e),
                }
            }
        }
        "cons" => {
            for (host, answer) in (admin::ask_each(hosts, admin::Cons, t).await)? {
                match answer {
                    Ok(conns) if g.json => {
                        let list: Vec<Value> = conns
                            .iter()
                            .map(|c| {
                                json!({
                                    "address": c.address,
                                    "session_id": c.session_id,
                                    "queued": c.queued,
                                    "received": c.received,
                                    "sent": c.sent,
                                    "timeout_ms": c.timeout_ms,
                                    "last_operation": c.last_operation,
                                })
                            })
                            .collect();
                        print_json(&json!({ "host": host, "connections": list }));
                    }
                    Ok(conns) => {
                        println!("{host}");
                        for c in conns {
                            println!(
                                "  {} session {} queued {} received {} sent {}",
                                c.address,
                                c.session_id.map_or("-".into(), |s| format!("{s:#x}")),
                                c.queued,
                                c.received,
                                c.sent
                            );
                        }
                    }
                    Err(e) => admin_error(g, &host, &e),
                }
            }
        }
        "wchs" => {
            for (host, answer) in (admin::ask_each(hosts, admin::Wchs, t).await)? {
                match answer {
                    Ok(w) if g.json => print_json(&json!({
                        "host": host,
                        "connections": w.connections,
                        "paths": w.paths,
                        "watches": w.watches,
                    })),
                    Ok(w) => println!(
                        "{host}: {} connections watch {} paths, {} watches",
                        w.connections, w.paths, w.watches
                    ),
                    Err(e) => admin_error(g, &host, &e),
                }
            }
        }
        other => {
            return Err(UsageError(format!(
                "`{other}` is not a four-letter word zk knows: ruok, isro, srvr, stat, mntr, \
                 conf, cons, wchs, envi"
            ))
            .into());
        }
    }
    Ok(Outcome::Ok)
}
