//! `zk-sim --config zoo.cfg`: the binary serves what a real server's configuration file
//! says, so a harness written for the real server starts the model by changing the command.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Served {
    child: Child,
    hosts: String,
    stderr: String,
    /// Kept open: the binary prints more after the serving line.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(cfg: &str) -> Served {
    let dir = std::env::temp_dir().join(format!("zk-sim-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("zoo-{}.cfg", cfg.len()));
    std::fs::write(&path, cfg).unwrap();
    let err_path = dir.join(format!("stderr-{}.txt", cfg.len()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_zk-sim"))
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let hosts = line
        .rsplit(' ')
        .next()
        .expect("the serving line ends with the connect string")
        .trim()
        .to_owned();
    // What the binary said about the file comes before it serves.
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    Served {
        child,
        hosts,
        stderr,
        _stdout: stdout,
    }
}

fn ask(addr: &str, word: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(word.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A free loopback port (taken again by the binary a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_standalone_zoo_cfg_is_served_as_written() {
    let port = free_port();
    let served = serve(&format!(
        "# a harness's file\ntickTime=500\ninitLimit=10\nsyncLimit=5\n\
         dataDir=/tmp/zk-sim-test-data\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
         4lw.commands.whitelist=conf, srvr\nmaxClientCnxns=0\nautopurge.purgeInterval=1\n\
         secureClientPort=2281\n"
    ));
    assert_eq!(served.hosts, format!("127.0.0.1:{port}"));
    let conf = ask(&served.hosts, "conf");
    assert!(conf.starts_with(&format!("clientPort={port}\n")), "{conf}");
    assert!(
        conf.contains("\ndataDir=/tmp/zk-sim-test-data/version-2\n"),
        "{conf}"
    );
    assert!(conf.contains("\ntickTime=500\n"), "{conf}");
    assert!(conf.contains("\nmaxClientCnxns=0\n"), "{conf}");
    assert!(
        conf.contains("\nminSessionTimeout=1000\nmaxSessionTimeout=10000\n"),
        "{conf}"
    );
    // The whitelist is the file's: ruok is refused as a real server refuses it.
    assert_eq!(
        ask(&served.hosts, "ruok"),
        "ruok is not executed because it is not in the whitelist.\n"
    );
    assert!(
        served.stderr.contains("secureClientPort"),
        "{}",
        served.stderr
    );
    assert!(
        served.stderr.contains("initLimit, autopurge.purgeInterval"),
        "{}",
        served.stderr
    );
}

#[test]
fn an_ensemble_zoo_cfg_serves_every_member() {
    let ports = [free_port(), free_port(), free_port()];
    let served = serve(&format!(
        "tickTime=200\nclientPort={}\n4lw.commands.whitelist=*\n\
         server.1=127.0.0.1:2888:3888;127.0.0.1:{}\n\
         server.2=127.0.0.1:2889:3889;127.0.0.1:{}\n\
         server.3=127.0.0.1:2890:3890;127.0.0.1:{}\n",
        ports[0], ports[0], ports[1], ports[2]
    ));
    let hosts: Vec<&str> = served.hosts.split(',').collect();
    assert_eq!(hosts.len(), 3);
    let modes: Vec<String> = hosts
        .iter()
        .map(|h| {
            ask(h, "srvr")
                .lines()
                .find_map(|l| l.strip_prefix("Mode: ").map(str::to_owned))
                .unwrap()
        })
        .collect();
    assert_eq!(modes, ["follower", "follower", "leader"]);
}
