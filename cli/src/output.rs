//! How results are printed: plain text for people (coloured on a terminal only), JSON for
//! programs, and errors with the ZooKeeper error's name.

use std::io::IsTerminal;

use base64::Engine;
use serde_json::{Value, json};
use zk_tokio::{Acl, ErrorCode, Stat, perms};

/// Whether standard output is a terminal, where names may be coloured.
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// `name` in bold blue on a terminal (a node with children), as it is elsewhere.
pub fn parent_name(name: &str, colour: bool) -> String {
    if colour {
        format!("\x1b[1;34m{name}\x1b[0m")
    } else {
        name.to_string()
    }
}

/// Data as JSON: UTF-8 text when it is text, base64 otherwise, saying which.
pub fn data_json(data: &[u8]) -> (Value, &'static str) {
    match std::str::from_utf8(data) {
        Ok(text) => (Value::String(text.to_string()), "utf8"),
        Err(_) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(data)),
            "base64",
        ),
    }
}

/// Data on one line of text: UTF-8 with its line breaks and tabs escaped, or `base64:`
/// and the bytes when they are not text.
pub fn data_text(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) => text
            .chars()
            .map(|c| match c {
                '\\' => "\\\\".to_string(),
                c if c.is_control() => c.escape_default().to_string(),
                c => c.to_string(),
            })
            .collect(),
        Err(_) => format!(
            "base64:{}",
            base64::engine::general_purpose::STANDARD.encode(data)
        ),
    }
}

/// Data back from JSON, by its encoding.
pub fn data_from_json(data: &str, encoding: &str) -> anyhow::Result<Vec<u8>> {
    match encoding {
        "utf8" => Ok(data.as_bytes().to_vec()),
        "base64" => Ok(base64::engine::general_purpose::STANDARD.decode(data)?),
        other => anyhow::bail!("unknown data encoding `{other}` (utf8 or base64)"),
    }
}

/// A stat as JSON, with the field names of the Java client's `Stat`.
pub fn stat_json(s: &Stat) -> Value {
    json!({
        "czxid": s.czxid,
        "mzxid": s.mzxid,
        "ctime": s.ctime,
        "mtime": s.mtime,
        "version": s.version,
        "cversion": s.cversion,
        "aversion": s.aversion,
        "ephemeralOwner": s.ephemeral_owner,
        "dataLength": s.data_length,
        "numChildren": s.num_children,
        "pzxid": s.pzxid,
    })
}

/// A stat as `zkCli.sh` prints it.
pub fn stat_text(s: &Stat) -> String {
    format!(
        "cZxid = {:#x}\nctime = {}\nmZxid = {:#x}\nmtime = {}\npZxid = {:#x}\ncversion = {}\n\
         dataVersion = {}\naclVersion = {}\nephemeralOwner = {:#x}\ndataLength = {}\n\
         numChildren = {}",
        s.czxid,
        time(s.ctime),
        s.mzxid,
        time(s.mtime),
        s.pzxid,
        s.cversion,
        s.version,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children
    )
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(ms: i64) -> String {
    let at = jiff::Timestamp::from_second(ms.div_euclid(1000)).unwrap_or(jiff::Timestamp::MAX);
    at.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// Permissions as `cdrwa` letters.
pub fn perms_text(p: i32) -> String {
    [
        (perms::CREATE, 'c'),
        (perms::DELETE, 'd'),
        (perms::READ, 'r'),
        (perms::WRITE, 'w'),
        (perms::ADMIN, 'a'),
    ]
    .iter()
    .filter(|(bit, _)| p & bit != 0)
    .map(|(_, c)| *c)
    .collect()
}

/// `cdrwa` letters as permissions.
pub fn perms_parse(text: &str) -> anyhow::Result<i32> {
    let mut p = 0;
    for c in text.chars() {
        p |= match c {
            'c' => perms::CREATE,
            'd' => perms::DELETE,
            'r' => perms::READ,
            'w' => perms::WRITE,
            'a' => perms::ADMIN,
            other => anyhow::bail!("`{other}` is not a permission; use letters of cdrwa"),
        };
    }
    Ok(p)
}

/// An ACL entry `scheme:id:perms` (the id may itself hold colons, as digest ids do).
pub fn acl_parse(entry: &str) -> anyhow::Result<Acl> {
    let (rest, p) = entry
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("`{entry}` is not scheme:id:perms"))?;
    let (scheme, id) = rest
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("`{entry}` is not scheme:id:perms"))?;
    Ok(Acl::new(perms_parse(p)?, zk_tokio::Id::new(scheme, id)))
}

/// An ACL as JSON.
pub fn acl_json(acl: &[Acl]) -> Value {
    Value::Array(
        acl.iter()
            .map(|a| {
                json!({
                    "scheme": a.id.scheme,
                    "id": a.id.id,
                    "perms": perms_text(a.perms),
                })
            })
            .collect(),
    )
}

/// An ACL back from JSON.
pub fn acl_from_json(v: &Value) -> anyhow::Result<Vec<Acl>> {
    let entries = v
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("`acl` is not a list"))?;
    entries
        .iter()
        .map(|e| {
            let field = |k: &str| {
                e.get(k)
                    .and_then(Value::as_str)
                    .ok_or_else(|| anyhow::anyhow!("an ACL entry lacks `{k}`"))
            };
            Ok(Acl::new(
                perms_parse(field("perms")?)?,
                zk_tokio::Id::new(field("scheme")?, field("id")?),
            ))
        })
        .collect()
}

/// The ZooKeeper error inside `e`, if any.
fn zk_error(e: &anyhow::Error) -> Option<&zk_tokio::Error> {
    e.chain().find_map(|c| c.downcast_ref::<zk_tokio::Error>())
}

/// One line: the ZooKeeper error's name first (`NoNode: ...`), then the words.
pub fn describe_error(e: &anyhow::Error) -> String {
    let mut context: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    // A context that the next message starts with already (an error naming its node
    // under a context naming the same node) is said once.
    let mut i = 0;
    while i + 1 < context.len() {
        if context[i + 1].starts_with(&format!("{}: ", context[i])) {
            context.remove(i);
        } else {
            i += 1;
        }
    }
    let text = context.join(": ");
    match zk_error(e).and_then(zk_tokio::Error::code) {
        Some(code) => format!("{}: {text}", code_name(code)),
        None => text,
    }
}

/// The name the Java client gives a code (`NoNode`, `ConnectionLoss`, ...).
pub fn code_name(code: ErrorCode) -> String {
    let debug = format!("{code:?}");
    debug.split('(').next().unwrap_or(&debug).to_string()
}

/// 1 for everything that went wrong at run time (usage errors exit with 2 before).
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.downcast_ref::<UsageError>().is_some()) {
        2
    } else {
        1
    }
}

/// A mistake in how a command was called, found after parsing (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
