//! A Kerberos KDC of its own for GSSAPI tests: MIT's `krb5kdc` from Debian's `krb5-kdc`,
//! with a fresh realm database, principals and keytabs in a temporary directory, on a free
//! loopback port (UDP and TCP). Killed and removed when dropped.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::HarnessError;
use crate::ports::free_port;
use crate::spawn::{signal, spawn_tied};

const KDB5_UTIL: &str = "/usr/sbin/kdb5_util";
const KADMIN_LOCAL: &str = "/usr/sbin/kadmin.local";
const KRB5KDC: &str = "/usr/sbin/krb5kdc";
/// The Debian packages that hold them.
pub const KDC_INSTALL_COMMAND: &str = "sudo apt-get install -y krb5-kdc krb5-admin-server";

/// A running KDC for the realm `ZK.TEST`.
#[derive(Debug)]
pub struct Kdc {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
}

impl Kdc {
    /// The realm every principal lives in.
    pub const REALM: &'static str = "ZK.TEST";

    /// Creates the realm and starts its KDC, installing Debian's packages first when they
    /// are missing and this process may (root, with `apt-get`).
    pub fn start() -> Result<Kdc, HarnessError> {
        ensure_installed()?;
        let dir = tempfile::Builder::new()
            .prefix("zk-harness-kdc-")
            .tempdir()?;
        let port = free_port()?;
        let root = dir.path();
        let realm = Kdc::REALM;
        let mut krb5 = String::new();
        let _ = write!(
            krb5,
            "[libdefaults]\n    default_realm = {realm}\n    dns_lookup_realm = false\n    \
             dns_lookup_kdc = false\n    dns_canonicalize_hostname = false\n    rdns = false\n    \
             udp_preference_limit = 1\n    ticket_lifetime = 1h\n\n[realms]\n    {realm} = {{\n        \
             kdc = 127.0.0.1:{port}\n    }}\n\n[domain_realm]\n    localhost = {realm}\n"
        );
        fs::write(root.join("krb5.conf"), krb5)?;
        let kdc = format!(
            "[kdcdefaults]\n    kdc_ports = {port}\n    kdc_tcp_ports = {port}\n\n[realms]\n    \
             {realm} = {{\n        database_name = {db}\n        key_stash_file = {stash}\n        \
             acl_file = {acl}\n        supported_enctypes = aes256-cts-hmac-sha1-96:normal \
             aes128-cts-hmac-sha1-96:normal\n    }}\n\n[logging]\n    kdc = FILE:{log}\n",
            db = root.join("principal").display(),
            stash = root.join("stash").display(),
            acl = root.join("kadm5.acl").display(),
            log = root.join("kdc.log").display(),
        );
        fs::write(root.join("kdc.conf"), kdc)?;
        fs::write(root.join("kadm5.acl"), "")?;
        let mut kdc = Kdc {
            dir,
            port,
            child: None,
        };
        kdc.run(
            KDB5_UTIL,
            &["-r", realm, "create", "-s", "-P", "zk-harness-master"],
        )?;
        let mut cmd = Command::new(KRB5KDC);
        cmd.args(["-n", "-r", realm])
            .envs(kdc.env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        kdc.child = Some(
            spawn_tied(cmd)
                .map_err(|e| HarnessError::Install(format!("cannot start {KRB5KDC}: {e}")))?,
        );
        // Ready once it listens on TCP.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(HarnessError::Install(format!(
                    "the KDC did not listen on 127.0.0.1:{port} within 20 s; its log: {}",
                    fs::read_to_string(kdc.dir.path().join("kdc.log")).unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(kdc)
    }

    /// The environment of the realm's tools: its `krb5.conf` and `kdc.conf`.
    fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("KRB5_CONFIG", self.krb5_conf()),
            ("KRB5_KDC_PROFILE", self.dir.path().join("kdc.conf")),
        ]
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), HarnessError> {
        let out = Command::new(tool)
            .args(args)
            .envs(self.env())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| HarnessError::Install(format!("cannot run {tool}: {e}")))?;
        if !out.status.success() {
            return Err(HarnessError::Install(format!(
                "`{tool} {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// The realm's `krb5.conf`, for `KRB5_CONFIG` and `-Djava.security.krb5.conf`.
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.path().join("krb5.conf")
    }

    /// The KDC's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Adds `principal` (without the realm) with a random key and writes its keytab;
    /// returns the keytab's path.
    pub fn keytab(&self, principal: &str) -> Result<PathBuf, HarnessError> {
        let file = self
            .dir
            .path()
            .join(format!("{}.keytab", principal.replace('/', "_")));
        self.run(
            KADMIN_LOCAL,
            &[
                "-r",
                Kdc::REALM,
                "-q",
                &format!("addprinc -randkey {principal}"),
            ],
        )?;
        self.run(
            KADMIN_LOCAL,
            &[
                "-r",
                Kdc::REALM,
                "-q",
                &format!("ktadd -k {} {principal}", file.display()),
            ],
        )?;
        Ok(file)
    }

    /// The directory of the realm's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }
}

fn ensure_installed() -> Result<(), HarnessError> {
    let present = || {
        [KDB5_UTIL, KADMIN_LOCAL, KRB5KDC]
            .iter()
            .all(|t| Path::new(t).exists())
    };
    if present() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !(root && Path::new("/usr/bin/apt-get").exists()) {
        return Err(HarnessError::Install(format!(
            "MIT Kerberos' KDC is not installed; run `{KDC_INSTALL_COMMAND}`"
        )));
    }
    eprintln!("zk-harness: installing Debian's krb5-kdc and krb5-admin-server for a test KDC");
    crate::install::apt_install(&["krb5-kdc", "krb5-admin-server"])?;
    if present() {
        Ok(())
    } else {
        Err(HarnessError::Install(format!(
            "the KDC tools are still missing; run `{KDC_INSTALL_COMMAND}`"
        )))
    }
}
