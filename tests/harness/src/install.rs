//! Finding ZooKeeper's jars, installing Debian's package when they are missing.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use crate::HarnessError;

/// Where Debian's `zookeeper` package puts the server jar. Its manifest lists the
/// dependency jars, so this one path is a complete class path.
pub const DEBIAN_JAR: &str = "/usr/share/java/zookeeper.jar";

/// A logging backend from Debian's `libslf4j-java`, installed with the server. Without it the
/// server logs nothing; with it, warnings go to each server's `server.log`.
const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";

/// The exact commands that install what the harness needs.
pub const INSTALL_COMMAND: &str = "sudo apt-get update && sudo apt-get install -y zookeeper";

static INSTALL: Mutex<()> = Mutex::new(());

/// The class path to start a server with: `ZK_CLASSPATH` when set, otherwise Debian's jars,
/// installing the package first when they are missing and this process may do so (root, with
/// `apt-get` on the path).
pub fn classpath() -> Result<String, HarnessError> {
    if let Ok(cp) = std::env::var("ZK_CLASSPATH")
        && !cp.trim().is_empty()
    {
        return Ok(cp);
    }
    ensure_installed()?;
    let mut cp = DEBIAN_JAR.to_string();
    if Path::new(SLF4J_SIMPLE).exists() {
        cp.push(':');
        cp.push_str(SLF4J_SIMPLE);
    }
    Ok(cp)
}

/// Every `/usr/share/java/netty-*.jar`, each preceded by `:`, for a server that serves TLS
/// (Debian's `netty-all.jar` only points at the module jars, so each must be named).
pub(crate) fn netty_classpath() -> Result<String, HarnessError> {
    let mut jars: Vec<String> = std::fs::read_dir("/usr/share/java")?
        .flatten()
        .map(|e| e.path().display().to_string())
        .filter(|p| {
            p.rsplit('/')
                .next()
                .is_some_and(|name| name.starts_with("netty-") && name.ends_with(".jar"))
        })
        .collect();
    if jars.is_empty() {
        return Err(HarnessError::Install(
            "no /usr/share/java/netty-*.jar: TLS needs Debian's libnetty-java, which the \
             zookeeper package depends on"
                .into(),
        ));
    }
    jars.sort();
    Ok(jars.iter().map(|j| format!(":{j}")).collect())
}

fn ensure_installed() -> Result<(), HarnessError> {
    if Path::new(DEBIAN_JAR).exists() {
        return Ok(());
    }
    // One install per process even when many tests start servers at once.
    let _guard = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if Path::new(DEBIAN_JAR).exists() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let has_apt = Path::new("/usr/bin/apt-get").exists();
    if !(root && has_apt) {
        return Err(HarnessError::NotInstalled {
            reason: if has_apt {
                "this process is not root, so it cannot install it"
            } else {
                "apt-get is not available"
            },
        });
    }
    eprintln!(
        "zk-harness: {DEBIAN_JAR} is missing; installing Debian's zookeeper package \
         (apt-get update && apt-get install -y zookeeper)"
    );
    apt_install(&["zookeeper"])?;
    if Path::new(DEBIAN_JAR).exists() {
        Ok(())
    } else {
        Err(HarnessError::Install(format!(
            "the zookeeper package installed but {DEBIAN_JAR} is still missing"
        )))
    }
}

/// Makes sure `path` exists, installing Debian's `packages` first when it does not and this
/// process may (root, with `apt-get`); otherwise says which command installs them.
pub fn ensure_tool(path: &str, packages: &[&str]) -> Result<(), HarnessError> {
    if Path::new(path).exists() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !(root && Path::new("/usr/bin/apt-get").exists()) {
        return Err(HarnessError::Install(format!(
            "{path} is missing; run `sudo apt-get install -y {}`",
            packages.join(" ")
        )));
    }
    eprintln!(
        "zk-harness: {path} is missing; installing {}",
        packages.join(" ")
    );
    apt_install(packages)?;
    if Path::new(path).exists() {
        Ok(())
    } else {
        Err(HarnessError::Install(format!(
            "{} installed but {path} is still missing",
            packages.join(" ")
        )))
    }
}

/// `apt-get update`, then `apt-get install -y` of `packages`, one install at a time per
/// process.
pub(crate) fn apt_install(packages: &[&str]) -> Result<(), HarnessError> {
    static APT: Mutex<()> = Mutex::new(());
    let _guard = APT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut install = vec!["install", "-y"];
    install.extend_from_slice(packages);
    for args in [&["update"][..], &install[..]] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| HarnessError::Install(format!("cannot run apt-get: {e}")))?;
        if !status.success() {
            return Err(HarnessError::Install(format!(
                "`apt-get {}` failed with {status}",
                args.join(" ")
            )));
        }
    }
    Ok(())
}
