//! The reference Java client (Debian's 3.8 jar) talks to zk-sim's model server: the front
//! speaks the protocol well enough for another implementation, not only for ours.

use std::path::Path;
use std::process::Command;

#[test]
fn the_java_client_runs_a_session_against_the_model() {
    let classpath = zk_harness::classpath().expect("ZooKeeper's jars");
    let work = tempfile::tempdir().expect("a temporary directory");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("java/SimClient.java");
    let javac = Command::new("javac")
        .args(["-cp", &classpath, "-d"])
        .arg(work.path())
        .arg(&source)
        .output()
        .expect("javac runs");
    assert!(
        javac.status.success(),
        "javac failed: {}",
        String::from_utf8_lossy(&javac.stderr)
    );
    let server = zk_tests::shared_sim();
    let cp = format!("{classpath}:{}", work.path().display());
    let run = Command::new("java")
        .args(["-cp", &cp, "SimClient", &server.connect_string()])
        .output()
        .expect("java runs");
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && out.contains("ALL OK"),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
