//! The other libraries the interop tests run beside ours: Kazoo from a Python that imports
//! it (`KAZOO_PYTHON`, else `python3`), and Curator 5.4 from Debian's jars, with the test's
//! Java side compiled by `javac`. A missing library skips the test with a note, unless
//! `ZK_REQUIRE_INTEROP` is set (as `.ci/run` does), which makes it a failure.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Curator's recipes jar; its manifest lists the rest of Curator's class path.
pub const CURATOR_JAR: &str = "/usr/share/java/curator-recipes.jar";
/// Curator's service discovery (`libcurator-discovery-java`); its manifest lists Jackson.
pub const DISCOVERY_JAR: &str = "/usr/share/java/curator-x-discovery.jar";
/// A logging backend for Curator, when installed.
const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";

/// Says why the test does not run, or fails it when the library is required.
fn missing(what: &str) {
    assert!(
        std::env::var("ZK_REQUIRE_INTEROP").is_err(),
        "{what} is required (ZK_REQUIRE_INTEROP) but missing"
    );
    eprintln!("skipped: no {what} (run .ci/run, or see the README)");
}

/// A Python that imports kazoo, or `None` (after the note) when there is none.
pub fn kazoo() -> Option<String> {
    let candidates = std::env::var("KAZOO_PYTHON")
        .ok()
        .into_iter()
        .chain(["python3".to_string()]);
    for python in candidates {
        let ok = Command::new(&python)
            .args(["-c", "import kazoo"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(python);
        }
    }
    missing("Kazoo");
    None
}

/// A test's Java side, compiled against Curator.
pub struct Curator {
    classes: tempfile::TempDir,
    classpath: String,
}

impl Curator {
    /// Compiles `tests/java/<class>.java`, or `None` (after the note) without Curator.
    pub fn compile(class: &str) -> Option<Curator> {
        Curator::compile_with(class, &[])
    }

    /// Like [`Curator::compile`], with more of Curator's jars (`DISCOVERY_JAR`) on the
    /// class path; `None` (after the note) when one is missing.
    pub fn compile_with(class: &str, jars: &[&str]) -> Option<Curator> {
        if !Path::new(CURATOR_JAR).exists() {
            missing("Curator");
            return None;
        }
        let mut classpath = CURATOR_JAR.to_string();
        for jar in jars {
            if !Path::new(jar).exists() {
                missing(jar);
                return None;
            }
            classpath = format!("{classpath}:{jar}");
        }
        if Path::new(SLF4J_SIMPLE).exists() {
            classpath = format!("{classpath}:{SLF4J_SIMPLE}");
        }
        let classes = tempfile::tempdir().expect("a temporary directory");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("java/{class}.java"));
        let javac = Command::new("javac")
            .args(["-cp", &classpath, "-d"])
            .arg(classes.path())
            .arg(&source)
            .output()
            .expect("javac runs");
        assert!(
            javac.status.success(),
            "javac failed: {}",
            String::from_utf8_lossy(&javac.stderr)
        );
        Some(Curator { classes, classpath })
    }

    /// `java` running `class` with Curator and the compiled classes on its class path,
    /// its output captured.
    pub fn java(&self, class: &str) -> Command {
        let cp = format!("{}:{}", self.classpath, self.classes.path().display());
        let mut cmd = Command::new("java");
        cmd.args(["-cp", &cp, class])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

/// A Python running `script` with `args`, its output captured.
pub fn python(python: &str, script: &str, args: &[impl AsRef<std::ffi::OsStr>]) -> Command {
    let mut cmd = Command::new(python);
    cmd.args(["-c", script])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Waits (60 s at most) until `path` exists: the other side's sign that it is connected.
pub async fn wait_for(c: &zk_tokio::Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.exists(path).await.expect("exists").is_none() {
        assert!(Instant::now() < deadline, "{path} never appeared");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The numbers of the other side's `DONE <n> <NAME> <n> ...` line, after checking that it
/// ended well.
pub fn summary<T: std::str::FromStr>(output: &Output) -> Vec<T> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the other side failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("DONE "))
        .unwrap_or_else(|| panic!("the other side's summary is missing:\n{stdout}"));
    line.split_whitespace()
        .skip(1)
        .step_by(2)
        .map(|x| x.parse().unwrap_or_else(|_| panic!("a number, not {x:?}")))
        .collect()
}
