//! How long `zk` takes from start to its answer, against `zkCli.sh` from Debian's
//! `zookeeper` package, both listing `/` of the same server, alternating (`--cli`). Needs
//! `zk` built next to this binary: `cargo build --release -p zk-cli`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

/// Runs `cmd` and returns (time until a stdout line contains `answer`, time until exit).
fn time_to_answer(mut cmd: Command, answer: &str) -> (Duration, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("start the command");
    let stdout = child.stdout.take().expect("its stdout");
    let mut first = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if first.is_none() && line.contains(answer) {
            first = Some(start.elapsed());
        }
    }
    let status = child.wait().expect("wait for the command");
    let total = start.elapsed();
    assert!(
        first.is_some(),
        "no line with `{answer}` in its output ({status})"
    );
    (first.unwrap_or(total), total)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Prints the table of `--cli`.
pub fn run(rounds: usize) {
    let exe = std::env::current_exe().expect("the bench binary");
    let zk = exe.with_file_name("zk");
    if !zk.exists() {
        eprintln!(
            "{} is missing: cargo build --release -p zk-cli first",
            zk.display()
        );
        std::process::exit(2);
    }
    let server = zk_harness::ZkServer::standalone().expect("start a server");
    let hosts = server.connect_string();
    let runs = rounds.max(1) * 10;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let mut order = [true, false];
        if i % 2 == 1 {
            order.reverse();
        }
        for mine in order {
            if mine {
                let mut cmd = Command::new(&zk);
                cmd.args(["-H", &hosts, "ls", "/"]);
                ours.push(time_to_answer(cmd, "zookeeper"));
            } else {
                let mut cmd = Command::new(ZKCLI);
                cmd.args(["-server", &hosts, "ls", "/"]);
                theirs.push(time_to_answer(cmd, "[zookeeper"));
            }
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let row = |name: &str, v: &[(Duration, Duration)]| {
        let answer = median(v.iter().map(|r| r.0).collect());
        let total = median(v.iter().map(|r| r.1).collect());
        (name.to_string(), answer, total)
    };
    let a = row("zk ls /", &ours);
    let b = row("zkCli.sh -server ... ls /", &theirs);
    println!("| command | runs | median ms to the answer | median ms to exit |");
    println!("|---|---|---|---|");
    for (name, answer, total) in [&a, &b] {
        println!(
            "| `{name}` | {runs} | {:.1} | {:.1} |",
            ms(*answer),
            ms(*total)
        );
    }
    println!(
        "\nzk reaches its answer in {:.3}x zkCli.sh's time ({:.0}x faster).",
        a.1.as_secs_f64() / b.1.as_secs_f64(),
        b.1.as_secs_f64() / a.1.as_secs_f64()
    );
}
