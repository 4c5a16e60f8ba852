//! A tour of the client: connect, create, read, watch, a transaction, the session-state
//! stream, clean up.
//!
//! Connects to `ZK_HOSTS` (for example `127.0.0.1:2181`); when it is unset, starts a
//! throwaway local ZooKeeper through the test harness and says so.
//!
//! ```sh
//! cargo run -p zk-tokio --example tour
//! ```

use std::time::Duration;

use zk_tokio::{AddWatchMode, Client, CreateOptions, ReadOp, ReadResult, StateEvent, WatcherType};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();

    // Where to connect: ZK_HOSTS, or a server of our own.
    let mut _local = None;
    let hosts = match std::env::var("ZK_HOSTS") {
        Ok(hosts) if !hosts.trim().is_empty() => hosts,
        _ => {
            println!("ZK_HOSTS is not set: starting a throwaway ZooKeeper on loopback...");
            let server = tokio::task::spawn_blocking(zk_harness::ZkServer::standalone).await??;
            println!("  started on {}", server.connect_string());
            let hosts = server.connect_string();
            _local = Some(server);
            hosts
        }
    };

    // 1. Connect, and follow the session's state in the background.
    let client = Client::builder(&hosts)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    println!(
        "connected: session 0x{:x}, timeout {:?}",
        client.session_id(),
        client.session_timeout().unwrap_or_default()
    );
    let mut states = client.state_events();
    let listener = tokio::spawn(async move {
        while let Some(event) = states.next().await {
            if let StateEvent::App(app) = event {
                println!("  [state listener] application view: {app:?}");
            }
        }
    });

    // 2. Create a small tree.
    let root = "/zk-rs-tour";
    if client.exists(root).await?.is_some() {
        let removed = client.delete_all(root).await?;
        println!("removed {removed} nodes");
    }
    client
        .create(root, "tour", &CreateOptions::persistent())
        .await?;
    let (path, stat) = client
        .create2(
            &format!("{root}/config"),
            "v1",
            &CreateOptions::persistent(),
        )
        .await?;
    println!("created {path} (czxid {})", stat.czxid);
    let member = client
        .create(
            &format!("{root}/member-"),
            "me",
            &CreateOptions::ephemeral_sequential(),
        )
        .await?;
    println!("created ephemeral sequential node {member}");

    // 3. Read with a one-shot watch, then change the node.
    let config = format!("{root}/config");
    let (data, stat, watcher) = client.get_data_watch(&config).await?;
    println!(
        "read {config} = {:?} (version {})",
        String::from_utf8_lossy(&data),
        stat.version
    );
    client.set_data(&config, "v2", Some(stat.version)).await?;
    let event = watcher.await;
    println!("watch fired: {:?} on {}", event.kind, event.path);

    // 4. A persistent recursive watch sees everything below the root.
    let mut tree = client
        .add_watch(root, AddWatchMode::PersistentRecursive)
        .await?;
    client
        .create(
            &format!("{root}/config/child"),
            "",
            &CreateOptions::persistent(),
        )
        .await?;
    if let Some(e) = tree.next().await {
        println!("recursive watch: {:?} on {}", e.kind, e.path);
    }

    // 5. A transaction: all or nothing.
    let results = client
        .transaction()
        .check(&config, 1)
        .create(&format!("{root}/a"), "1", &CreateOptions::persistent())
        .create(&format!("{root}/b"), "2", &CreateOptions::persistent())
        .commit()
        .await?;
    println!("transaction applied {} operations", results.len());
    match client
        .transaction()
        .create(&format!("{root}/c"), "3", &CreateOptions::persistent())
        .delete(&format!("{root}/does-not-exist"), None)
        .commit()
        .await
    {
        Err(e) => println!("a failing transaction changes nothing: {e}"),
        Ok(_) => println!("unexpected: the failing transaction succeeded"),
    }
    let reads = client
        .multi_read(&[
            ReadOp::GetData(format!("{root}/a")),
            ReadOp::GetChildren(root.into()),
        ])
        .await?;
    for r in reads {
        match r {
            ReadResult::Data(d, _) => println!("multiRead data: {:?}", String::from_utf8_lossy(&d)),
            ReadResult::Children(c) => println!("multiRead children: {c:?}"),
            ReadResult::Error(code) => println!("multiRead error: {code}"),
        }
    }

    // 6. Who am I, and what does the session own?
    println!("whoami: {:?}", client.whoami().await?);
    println!("my ephemerals: {:?}", client.get_ephemerals(root).await?);

    // 7. Clean up: remove the watch, the tree, and close the session.
    drop(tree);
    client.remove_watches(root, WatcherType::Any).await.ok();
    let removed = client.delete_all(root).await?;
    println!("removed {removed} nodes");
    client.close().await;
    listener.await?;
    println!("closed; the tour is over");
    Ok(())
}
