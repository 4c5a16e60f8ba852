//! `zk` end to end against a real ZooKeeper 3.8 server: every command, its `--json`, its
//! exit codes, dump and restore of 10,000 nodes, and the interactive shell in a real
//! terminal (tmux).

use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;
use zk_harness::ZkServer;

fn server() -> &'static ZkServer {
    static SERVER: OnceLock<ZkServer> = OnceLock::new();
    SERVER.get_or_init(|| ZkServer::standalone().expect("start a server"))
}

fn zk(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::cargo_bin("zk").expect("the zk binary");
    // The server is shared with a test that pipelines 10,000 creates: under a loaded CI
    // machine, connections and four-letter answers get 30 s instead of 5.
    cmd.env("ZK_HOSTS", server().connect_string())
        .env("ZK_CONNECT_TIMEOUT", "30")
        .env_remove("ZK_SASL_PASSWORD")
        .args(args)
        .stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    zk(args).output().expect("run zk")
}

/// Runs `zk args`, which must succeed; returns its standard output.
fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "zk {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn json(args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let text = ok(&all);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("zk {all:?} printed no JSON ({e}):\n{text}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn reading_and_writing_nodes_with_text_json_and_exit_codes() {
    let _ = run(&["rmr", "--yes", "/cli-rw"]);
    assert_eq!(
        ok(&["create", "-p", "/cli-rw/a/b", "hello"]).trim(),
        "/cli-rw/a/b"
    );
    // One line per node, like zkCli.sh; `--raw` gives the bytes alone.
    assert_eq!(ok(&["get", "/cli-rw/a/b"]), "hello\n");
    assert_eq!(ok(&["get", "--raw", "/cli-rw/a/b"]), "hello");
    ok(&["set", "/cli-rw/a/b", "world", "-v", "0"]);
    let v = json(&["get", "--stat", "/cli-rw/a/b"]);
    assert_eq!(v["data"], "world");
    assert_eq!(v["encoding"], "utf8");
    assert_eq!(v["stat"]["version"], 1);
    let v = json(&["stat", "/cli-rw/a"]);
    assert_eq!(v["stat"]["numChildren"], 1);
    assert!(ok(&["stat", "/cli-rw/a"]).contains("numChildren = 1"));

    // Modes: sequential, container, TTL, ephemeral (gone with the command's session).
    let seq = ok(&["create", "-s", "/cli-rw/seq-"]);
    assert!(seq.trim().starts_with("/cli-rw/seq-0000"), "{seq}");
    ok(&["create", "--container", "/cli-rw/box"]);
    ok(&["create", "--ttl", "60000", "/cli-rw/ttl"]);
    ok(&["create", "-e", "/cli-rw/eph"]);
    let kids: Vec<String> = serde_json::from_value(json(&["ls", "/cli-rw"])).unwrap();
    assert_eq!(kids.len(), 4, "{kids:?}");
    assert!(!kids.contains(&"eph".to_string()));
    let long = ok(&["ls", "-l", "/cli-rw"]);
    assert!(long.contains("children") && long.contains("box"), "{long}");
    let all: Vec<String> = serde_json::from_value(json(&["ls", "-R", "/cli-rw"])).unwrap();
    assert_eq!(all.len(), 6, "{all:?}");

    // Data from standard input, and data that is not UTF-8.
    let mut child = zk(&["set", "/cli-rw/a", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&[0xff, 0x00, 0x01])
            .unwrap();
    }
    assert!(child.wait().unwrap().success());
    let v = json(&["get", "/cli-rw/a"]);
    assert_eq!(
        (v["data"].as_str(), v["encoding"].as_str()),
        (Some("/wAB"), Some("base64"))
    );

    // Errors: the ZooKeeper error's name and exit code 1; usage errors exit with 2.
    let out = run(&["get", "/cli-rw/missing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("zk: NoNode:"), "{}", stderr(&out));
    assert!(stderr(&out).contains("/cli-rw/missing"), "{}", stderr(&out));
    let out = run(&["delete", "/cli-rw/a"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("zk: NotEmpty:"),
        "{}",
        stderr(&out)
    );
    let out = run(&["set", "/cli-rw/a/b", "x", "-v", "7"]);
    assert!(
        stderr(&out).starts_with("zk: BadVersion:"),
        "{}",
        stderr(&out)
    );
    let out = run(&["get", "no-slash"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no-slash"), "{}", stderr(&out));
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(run(&["get"]).status.code(), Some(2));
    assert_eq!(run(&["--help"]).status.code(), Some(0));
    ok(&["delete", "/cli-rw/a/b", "-v", "1"]);
    ok(&["sync", "/cli-rw"]);
}

#[test]
fn nothing_answering_is_one_line_and_exit_code_1() {
    let started = Instant::now();
    let out = zk(&["ls", "/"])
        .env("ZK_HOSTS", "127.0.0.1:1")
        .args(["--connect-timeout", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("zk: ConnectionLoss: no ZooKeeper server"),
        "{err}"
    );
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn trees_finds_sizes_and_acls() {
    let _ = run(&["rmr", "--yes", "/cli-tree"]);
    for p in [
        "/cli-tree/a/x",
        "/cli-tree/a/y",
        "/cli-tree/b",
        "/cli-tree/lock-1",
        "/cli-tree/b/lock-2",
    ] {
        ok(&["create", "-p", p, "12345"]);
    }
    let tree = ok(&["tree", "/cli-tree"]);
    assert_eq!(
        tree,
        "/cli-tree (0 B, 3 children)\n\
         ├── a (0 B, 2 children)\n\
         │   ├── x (5 B, 0 children)\n\
         │   └── y (5 B, 0 children)\n\
         ├── b (5 B, 1 children)\n\
         │   └── lock-2 (5 B, 0 children)\n\
         └── lock-1 (5 B, 0 children)\n",
        "{tree}"
    );
    let v = json(&["tree", "/cli-tree", "--depth", "1"]);
    assert_eq!(v["children"].as_array().unwrap().len(), 3);
    let found: Vec<String> =
        serde_json::from_value(json(&["find", "/cli-tree", "lock-*"])).unwrap();
    assert_eq!(found, ["/cli-tree/b/lock-2", "/cli-tree/lock-1"]);
    let du = json(&["du", "/cli-tree"]);
    assert_eq!(
        (du["bytes"].as_i64(), du["nodes"].as_i64()),
        (Some(25), Some(7))
    );
    assert_eq!(ok(&["du", "/cli-tree"]).trim(), "25\t7\t/cli-tree");

    // Read and admin for anyone: without admin the server would show digest ids as `bob:x`.
    ok(&[
        "setacl",
        "/cli-tree/b",
        "world:anyone:ra",
        "digest:bob:x1:cdrwa",
    ]);
    assert_eq!(
        ok(&["getacl", "/cli-tree/b"]),
        "world:anyone:ra\ndigest:bob:x1:cdrwa\n"
    );
    let v = json(&["getacl", "/cli-tree/b"]);
    assert_eq!(v["acl"][0]["perms"], "ra");
    let out = run(&["set", "/cli-tree/b", "no"]);
    assert!(stderr(&out).starts_with("zk: NoAuth:"), "{}", stderr(&out));
    assert_eq!(
        run(&["setacl", "/cli-tree/b", "world:anyone:rx"])
            .status
            .code(),
        Some(2)
    );
    ok(&["setacl", "/cli-tree/b", "world:anyone:cdrwa"]);

    // rmr: a dry run deletes nothing; without --yes and no one to ask, it refuses.
    let dry = run(&["rmr", "--dry-run", "/cli-tree/a"]);
    assert_eq!(
        String::from_utf8_lossy(&dry.stdout),
        "/cli-tree/a\n/cli-tree/a/x\n/cli-tree/a/y\n"
    );
    assert!(stderr(&dry).contains("would delete 3 nodes"));
    let out = run(&["rmr", "/cli-tree/a"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("needs --yes"), "{}", stderr(&out));
    assert_eq!(json(&["stat", "/cli-tree/a"])["stat"]["numChildren"], 2);
    assert_eq!(run(&["rmr", "--yes", "/"]).status.code(), Some(2));
    ok(&["rmr", "--yes", "/cli-tree"]);
    assert_eq!(run(&["stat", "/cli-tree"]).status.code(), Some(1));
}

#[test]
fn watch_prints_each_change_as_it_happens() {
    let _ = run(&["rmr", "--yes", "/cli-watch"]);
    ok(&["create", "/cli-watch"]);
    let child = zk(&["--json", "watch", "-R", "/cli-watch", "--count", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The watch is set once the command says so on stderr; give it a moment.
    std::thread::sleep(Duration::from_millis(700));
    ok(&["create", "/cli-watch/a"]);
    std::thread::sleep(Duration::from_millis(200));
    ok(&["set", "/cli-watch/a", "1\tone"]);
    std::thread::sleep(Duration::from_millis(200));
    ok(&["delete", "/cli-watch/a"]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["NodeCreated", "NodeDataChanged", "NodeDeleted"]);
    assert!(events.iter().all(|e| e["path"] == "/cli-watch/a"));
    // A creation and a change come with the data read just after them: a value the node
    // had (or none, had it gone by then); a deletion with none.
    let data = |i: usize| events[i].get("data").and_then(Value::as_str);
    assert!(
        matches!(data(0), Some("" | "1\tone") | None),
        "{:?}",
        events[0]
    );
    assert!(matches!(data(1), Some("1\tone") | None), "{:?}", events[1]);
    assert!(
        data(1).is_some() || data(0).is_some(),
        "no data at all: {events:?}"
    );
    assert_eq!(data(2), None);

    // In text, on one line, control characters escaped; `--no-data` leaves it out.
    let text = |no_data: bool| {
        let mut args = vec!["watch", "/cli-watch", "--count", "1"];
        if no_data {
            args.push("--no-data");
        }
        let child = zk(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        ok(&["set", "/cli-watch", "2\nlines"]);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(text(false), "NodeDataChanged /cli-watch 2\\nlines\n");
    assert_eq!(text(true), "NodeDataChanged /cli-watch\n");
}

#[test]
fn lock_runs_a_command_and_passes_its_exit_code_on() {
    let _ = run(&["rmr", "--yes", "/cli-lock"]);
    let out = run(&["lock", "/cli-lock", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    // While one command holds the lock, another gives up after its timeout.
    let holder = zk(&["lock", "/cli-lock", "--", "sleep", "2"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let out = run(&["lock", "/cli-lock", "--timeout", "0.3", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not ours within"), "{}", stderr(&out));
    let status = holder.wait_with_output().unwrap().status;
    assert!(status.success());
    // Released: no contender node is left, and the next one gets it at once.
    let kids: Vec<String> = serde_json::from_value(json(&["ls", "/cli-lock"])).unwrap();
    assert!(kids.is_empty(), "{kids:?}");
    ok(&["lock", "/cli-lock", "--timeout", "5", "--", "true"]);
    // Ctrl-C (SIGINT) stops the command and releases the lock.
    let mut held = zk(&["lock", "/cli-lock", "--", "sleep", "30"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kids: Vec<String> = serde_json::from_value(json(&["ls", "/cli-lock"])).unwrap();
        if !kids.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the lock was never taken");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &held.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = held.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(5));
    let kids: Vec<String> = serde_json::from_value(json(&["ls", "/cli-lock"])).unwrap();
    assert!(kids.is_empty(), "released on Ctrl-C: {kids:?}");
    // elect runs its command once elected.
    let out = run(&[
        "elect",
        "/cli-elect",
        "--id",
        "me",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("me leads /cli-elect"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn four_letter_words_per_server() {
    let out = ok(&["admin", "ruok"]);
    assert_eq!(out.trim(), format!("{}: imok", server().connect_string()));
    let mntr = ok(&["admin", "mntr"]);
    assert!(mntr.contains("zk_znode_count"), "{mntr}");
    let v = json(&["admin", "srvr"]);
    assert_eq!(v["mode"], "Standalone", "{v}");
    let v = json(&["admin", "mntr"]);
    assert!(v["metrics"]["zk_znode_count"].as_i64().unwrap() > 0);
    assert!(ok(&["admin", "isro"]).contains(": rw"));
    for word in ["ruok", "isro", "stat", "conf", "cons", "wchs", "envi"] {
        let v = json(&["admin", word]);
        assert!(v.get("host").is_some(), "{word}: {v}");
        assert!(v.get("error").is_none_or(Value::is_null), "{word}: {v}");
    }
    assert_eq!(json(&["admin", "isro"])["read_only"], false);
    assert_eq!(run(&["admin", "nope"]).status.code(), Some(2));
}

#[test]
fn completions_for_each_shell() {
    let bash = ok(&["completions", "bash"]);
    assert!(bash.contains("_zk()") || bash.contains("zk"), "{bash}");
    assert!(!ok(&["completions", "zsh"]).is_empty());
}

#[test]
fn dump_and_restore_round_trip_ten_thousand_nodes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hosts = server().connect_string();
    let _ = run(&["rmr", "--yes", "/cli-dump"]);
    let _ = run(&["rmr", "--yes", "/cli-copy"]);
    // 100 parents of 99 children each, with data, plus a container, a TTL node, a node with
    // its own ACL, binary data and an ephemeral node that must not be dumped.
    rt.block_on(async {
        let c = zk_tokio::Client::connect(&hosts).await.unwrap();
        c.create("/cli-dump", "root", &zk_tokio::CreateOptions::persistent())
            .await
            .unwrap();
        let c = &c;
        let mut futs = FuturesUnordered::new();
        for p in 0..100 {
            futs.push(async move {
                c.create(
                    &format!("/cli-dump/p{p:03}"),
                    format!("parent {p}"),
                    &zk_tokio::CreateOptions::persistent(),
                )
                .await
            });
        }
        while let Some(r) = futs.next().await {
            r.unwrap();
        }
        let mut futs = FuturesUnordered::new();
        for p in 0..100 {
            for k in 0..99 {
                futs.push(async move {
                    c.create(
                        &format!("/cli-dump/p{p:03}/k{k:02}"),
                        format!("{p}-{k}"),
                        &zk_tokio::CreateOptions::persistent(),
                    )
                    .await
                });
            }
        }
        while let Some(r) = futs.next().await {
            r.unwrap();
        }
        c.close().await;
    });
    ok(&["create", "--container", "/cli-dump/box"]);
    ok(&["create", "/cli-dump/box/in"]);
    ok(&["create", "--ttl", "3600000", "/cli-dump/ttl"]);
    ok(&["create", "/cli-dump/private", "secret"]);
    ok(&["setacl", "/cli-dump/private", "world:anyone:r"]);
    let mut child = zk(&["set", "/cli-dump/p000", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&[0, 159, 146, 150])
            .unwrap();
    }
    assert!(child.wait().unwrap().success());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dump.jsonl");
    let file_s = file.to_str().unwrap();
    let started = Instant::now();
    let out = run(&["dump", "/cli-dump", "-o", file_s]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dumped = started.elapsed();
    assert!(
        stderr(&out).contains("dumped 10005 nodes"),
        "{}",
        stderr(&out)
    );
    let started = Instant::now();
    let out = run(&["restore", file_s, "--into", "/cli-copy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let restored = started.elapsed();
    assert!(
        stderr(&out).contains("restored 10005 nodes"),
        "{}",
        stderr(&out)
    );
    eprintln!("10,005 nodes: dump {dumped:?}, restore {restored:?}");

    // The copy is the original, node for node: paths, data, ACLs, modes.
    let dump_again = |root: &str| -> Vec<Value> {
        let out = run(&["dump", root]);
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                let p = v["path"].as_str().unwrap().replacen(root, "", 1);
                v["path"] = Value::String(p);
                v
            })
            .collect()
    };
    let (a, b) = (dump_again("/cli-dump"), dump_again("/cli-copy"));
    assert_eq!(a.len(), 10_005);
    assert_eq!(a, b);
    // The server reports containers and TTL nodes to clients as persistent (ZooKeeper's
    // DataNode.getClientEphemeralOwner gives them owner 0), so that is what a dump can keep.
    assert!(b.iter().all(|v| v["mode"] == "persistent"));
    assert_eq!(json(&["get", "/cli-copy/p000"])["encoding"], "base64");
    assert_eq!(ok(&["getacl", "/cli-copy/private"]), "world:anyone:r\n");

    // Ephemeral nodes are skipped with a note; restoring again leaves what is there.
    let eph = zk(&[
        "lock",
        "/cli-dump/held",
        "--",
        "sh",
        "-c",
        &format!(
            "{} dump /cli-dump > /dev/null",
            std::process::Command::cargo_bin("zk")
                .unwrap()
                .get_program()
                .to_string_lossy()
        ),
    ])
    .output()
    .unwrap();
    assert!(
        String::from_utf8_lossy(&eph.stderr).contains("skipped 1 ephemeral nodes"),
        "{}",
        stderr(&eph)
    );
    let out = run(&["restore", file_s, "--into", "/cli-copy"]);
    assert!(
        stderr(&out).contains("restored 0 nodes; 10005 were there already"),
        "{}",
        stderr(&out)
    );
    ok(&["rmr", "--yes", "/cli-dump"]);
    ok(&["rmr", "--yes", "/cli-copy"]);
}

/// The interactive shell, typed into a real terminal: tmux runs it, sends keys (Tab for
/// completion included) and reads the screen.
#[test]
fn the_shell_runs_commands_completes_paths_and_keeps_history() {
    zk_harness::ensure_tool("/usr/bin/tmux", &["tmux"])
        .expect("tmux, to drive the shell in a terminal");
    let _ = run(&["rmr", "--yes", "/cli-shell"]);
    ok(&["create", "-p", "/cli-shell/completion-target", "found me"]);
    let home = tempfile::tempdir().unwrap();
    let session = format!("zk-shell-{}", std::process::id());
    let bin = std::process::Command::cargo_bin("zk").unwrap();
    let program = bin.get_program().to_string_lossy().into_owned();
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(args)
            .output()
            .expect("run tmux")
    };
    let start = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "40",
        &format!(
            "env HOME={} ZK_HOSTS={} {program}",
            home.path().display(),
            server().connect_string()
        ),
    ]);
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    let screen = || {
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-J", "-t", &session]).stdout)
            .into_owned()
    };
    let wait_for = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = screen();
            if s.contains(what) {
                return s;
            }
            assert!(Instant::now() < deadline, "no `{what}` on the screen:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("zk>");
    // Tab completes the path from the server.
    tmux(&["send-keys", "-t", &session, "get /cli-shell/comp", "Tab"]);
    wait_for("get /cli-shell/completion-target");
    tmux(&["send-keys", "-t", &session, "Enter"]);
    wait_for("found me");
    tmux(&[
        "send-keys",
        "-t",
        &session,
        "create /cli-shell/typed 'two words'",
        "Enter",
    ]);
    wait_for("/cli-shell/typed\n");
    tmux(&[
        "send-keys",
        "-t",
        &session,
        "get /cli-shell/nothing",
        "Enter",
    ]);
    wait_for("zk: NoNode");
    tmux(&[
        "send-keys",
        "-t",
        &session,
        "stat --json /cli-shell/typed",
        "Enter",
    ]);
    wait_for("\"dataLength\":9");
    // rmr asks on the terminal before deleting.
    tmux(&[
        "send-keys",
        "-t",
        &session,
        "rmr /cli-shell/completion-target",
        "Enter",
    ]);
    wait_for("delete /cli-shell/completion-target and 0 nodes under it? [y/N]");
    tmux(&["send-keys", "-t", &session, "y", "Enter"]);
    wait_for("deleted 1 nodes");
    tmux(&["send-keys", "-t", &session, "exit", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux(&["has-session", "-t", &session]).status.success() {
        assert!(
            Instant::now() < deadline,
            "the shell did not exit:\n{}",
            screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ok(&["get", "/cli-shell/typed"]), "two words\n");
    let history = std::fs::read_to_string(home.path().join(".zk_history")).unwrap();
    assert!(
        history.contains("create /cli-shell/typed 'two words'"),
        "{history}"
    );
    ok(&["rmr", "--yes", "/cli-shell"]);
}

/// The connection flags: chroot, digest credentials, TLS with a CA file, SASL with the
/// password from the environment, against a server that serves TLS and knows the user.
#[test]
fn chroot_credentials_tls_and_sasl_from_flags() {
    let _ = run(&["rmr", "--yes", "/cli-chroot"]);
    ok(&["create", "-p", "/cli-chroot/inside", "x"]);
    assert_eq!(ok(&["--chroot", "/cli-chroot", "ls", "/"]), "inside\n");
    let ids = ok(&["--auth", "bob:secret", "whoami"]);
    assert!(ids.contains("digest:bob"), "{ids}");

    let pki = zk_harness::Pki::new("cli CA").unwrap();
    let secured = ZkServer::standalone_with(
        zk_harness::ServerOptions::default()
            .tls(zk_harness::ServerTls::new(&pki).unwrap())
            .sasl_users(&[("carol", "sesame")]),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let secure = secured.secure_connect_string().unwrap();
    let ca_s = ca.to_str().unwrap();
    let out = zk(&["--tls-ca", ca_s, "--sasl-user", "carol", "--json", "whoami"])
        .env("ZK_HOSTS", &secure)
        .env("ZK_SASL_PASSWORD", "sesame")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let ids: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        ids.as_array()
            .unwrap()
            .iter()
            .any(|i| i["scheme"] == "sasl" && i["id"] == "carol"),
        "{ids}"
    );
    let out = zk(&["--tls-ca", ca_s, "--sasl-user", "carol", "ls", "/"])
        .env("ZK_HOSTS", &secure)
        .env("ZK_SASL_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("zk: AuthFailed:"),
        "{}",
        stderr(&out)
    );
    // Without the CA flag, the TLS port is no ZooKeeper to a plain client.
    let out = zk(&["ls", "/", "--connect-timeout", "1"])
        .env("ZK_HOSTS", &secure)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // A CA file that is not there is named.
    let out = zk(&["--tls-ca", "/nonexistent/ca.pem", "ls", "/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/ca.pem"),
        "{}",
        stderr(&out)
    );
}
