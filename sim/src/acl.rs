//! Identities and ACLs with the server's providers: `world`, `digest`, `ip`, `sasl` when
//! SASL is configured (and `super`, which passes every check), `fixupACL` on create and
//! setACL, and `checkACL`.

use zk_proto::ErrorCode;
use zk_proto::digest::{base64, sha1};
use zk_proto::records::{Acl, Id};

use crate::java::{concurrent_set_order, id_hash, split_count};

/// A connection's identities, in the order the server lists them (whoAmI, `auth` ACLs).
#[derive(Debug, Clone, Default)]
pub(crate) struct Identities {
    ids: Vec<(i32, Id)>,
    /// The server has the SASL provider (`authProvider.N=...SASLAuthenticationProvider`).
    sasl: bool,
}

impl Identities {
    /// The identity every connection has from the start: its address.
    pub(crate) fn new(ip: &str) -> Self {
        let mut ids = Identities::default();
        ids.add(Id::new("ip", ip));
        ids
    }

    /// With the SASL provider on the server (`sasl` ACLs then exist).
    pub(crate) fn with_sasl(mut self, on: bool) -> Self {
        self.sasl = on;
        self
    }

    /// Adds an identity unless it is there.
    pub(crate) fn add(&mut self, id: Id) {
        if self.ids.iter().any(|(_, have)| *have == id) {
            return;
        }
        self.ids.push((id_hash(&id.scheme, &id.id), id));
        concurrent_set_order(&mut self.ids);
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Id> {
        self.ids.iter().map(|(_, id)| id)
    }
}

/// The scheme's provider knows this id (`AuthenticationProvider.isValid`).
fn provider_accepts(scheme: &str, id: &str, sasl: bool) -> bool {
    match scheme {
        "digest" => split_count(id, ':') == 2,
        "ip" => parse_ip_expr(id).is_some(),
        "sasl" => sasl,
        _ => false,
    }
}

/// The schemes with a provider: `checkACL` only matches ids of these.
fn has_provider(scheme: &str, sasl: bool) -> bool {
    matches!(scheme, "digest" | "ip") || (sasl && scheme == "sasl")
}

/// The digest id for `user:password`, as `DigestAuthenticationProvider.generateDigest` makes it.
pub(crate) fn digest_of(credentials: &str) -> String {
    let user = credentials.split(':').next().unwrap_or("");
    format!("{user}:{}", base64(&sha1(credentials.as_bytes())))
}

/// An IPv4 address with an optional `/bits` mask (the ip provider knows no IPv6 in ACLs).
fn parse_ip_expr(expr: &str) -> Option<([u8; 4], u32)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (expr, None),
    };
    let addr = parse_v4(addr)?;
    let bits = match bits {
        Some(b) => {
            let n: i64 = parse_java_int(b)?;
            if !(0..=32).contains(&n) {
                return None;
            }
            n as u32
        }
        None => 32,
    };
    Some((addr, bits))
}

/// `Integer.parseInt`: an optional sign and decimal digits.
fn parse_java_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i32>().ok().map(i64::from)
}

fn parse_v4(s: &str) -> Option<[u8; 4]> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut out = [0u8; 4];
    for (o, p) in out.iter_mut().zip(parts) {
        let v = parse_java_int(p)?;
        *o = u8::try_from(v).ok()?;
    }
    Some(out)
}

fn masked(addr: [u8; 4], bits: u32) -> u32 {
    let v = u32::from_be_bytes(addr);
    if bits == 0 {
        0
    } else {
        v & (u32::MAX << (32 - bits))
    }
}

fn ip_matches(id: &str, expr: &str) -> bool {
    let Some((acl, bits)) = parse_ip_expr(expr) else {
        return false;
    };
    let Some(remote) = parse_v4(id) else {
        return false;
    };
    masked(acl, bits) == masked(remote, bits)
}

/// `PrepRequestProcessor.fixupACL`: drops duplicates, expands `auth` to the connection's
/// authenticated ids, refuses what no provider accepts.
pub(crate) fn fixup(ids: &Identities, acls: &[Acl]) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acls.len());
    for a in acls {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        let id = &a.id;
        if id.scheme == "world" && id.id == "anyone" {
            out.push(a.clone());
        } else if id.scheme == "auth" {
            // Only ids of providers that authenticate (digest and sasl, not ip) count.
            let mut any = false;
            for cid in ids
                .iter()
                .filter(|cid| cid.scheme == "digest" || (ids.sasl && cid.scheme == "sasl"))
            {
                any = true;
                out.push(Acl::new(a.perms, cid.clone()));
            }
            if !any {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if provider_accepts(&id.scheme, &id.id, ids.sasl) {
            out.push(a.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(out)
}

/// `ZooKeeperServer.checkACL`: may a connection with `ids` do `perm` on a node with `acl`?
pub(crate) fn check(ids: &Identities, acl: &[Acl], perm: i32) -> Result<(), ErrorCode> {
    if acl.is_empty() || ids.iter().any(|i| i.scheme == "super") {
        return Ok(());
    }
    for a in acl {
        if a.perms & perm == 0 {
            continue;
        }
        if a.id.scheme == "world" && a.id.id == "anyone" {
            return Ok(());
        }
        if !has_provider(&a.id.scheme, ids.sasl) {
            continue;
        }
        for have in ids.iter().filter(|i| i.scheme == a.id.scheme) {
            let ok = match a.id.scheme.as_str() {
                "digest" | "sasl" => have.id == a.id.id,
                _ => ip_matches(&have.id, &a.id.id),
            };
            if ok {
                return Ok(());
            }
        }
    }
    Err(ErrorCode::NoAuth)
}

/// The ACL as a getACL without ADMIN shows it: digest hashes replaced by `x`.
pub(crate) fn masked_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("");
                // replaceAll(":.*", ":x") on an id without ':' leaves it as it is.
                let id = if a.id.id.contains(':') {
                    format!("{user}:x")
                } else {
                    a.id.id.clone()
                };
                Acl::new(a.perms, Id::new("digest", id))
            } else {
                a.clone()
            }
        })
        .collect()
}

/// The user name whoAmI shows for an identity.
pub(crate) fn user_name(id: &Id) -> String {
    match id.scheme.as_str() {
        // DigestAuthenticationProvider.getUserName: id.split(":")[0].
        "digest" => id.id.split(':').next().unwrap_or("").to_owned(),
        "ip" => id.id.clone(),
        // SASLAuthenticationProvider.getUserName: the id itself.
        "sasl" => id.id.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::consts::perms;

    #[test]
    fn digest_ids_are_the_servers() {
        // The id the real server computes for golden:secret (proto's digest tests).
        assert_eq!(
            digest_of("user:password"),
            zk_proto::digest::digest_id("user", "password")
        );
    }

    #[test]
    fn ip_masks() {
        assert!(ip_matches("10.1.2.3", "10.0.0.0/8"));
        assert!(!ip_matches("11.1.2.3", "10.0.0.0/8"));
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(ip_matches("1.2.3.4", "0.0.0.0/0"));
        assert!(!ip_matches("::1", "127.0.0.1"));
        assert!(parse_ip_expr("10.0.0.0/33").is_none());
        assert!(parse_ip_expr("300.0.0.1").is_none());
    }

    #[test]
    fn auth_expands_to_digest_ids_only() {
        let mut ids = Identities::new("127.0.0.1");
        let acl = [Acl::new(perms::ALL, Id::authenticated())];
        assert_eq!(fixup(&ids, &acl), Err(ErrorCode::InvalidAcl));
        ids.add(Id::new("digest", digest_of("u:p")));
        let fixed = fixup(&ids, &acl).unwrap();
        assert_eq!(fixed.len(), 1);
        assert_eq!(fixed[0].id.scheme, "digest");
        assert!(check(&ids, &fixed, perms::READ).is_ok());
        assert_eq!(
            check(&Identities::new("127.0.0.1"), &fixed, perms::READ),
            Err(ErrorCode::NoAuth)
        );
    }

    #[test]
    fn unknown_schemes_and_bad_ids_are_invalid() {
        let ids = Identities::new("127.0.0.1");
        for acl in [
            Acl::new(perms::ALL, Id::new("world", "someone")),
            Acl::new(perms::ALL, Id::new("foo", "bar")),
            Acl::new(perms::ALL, Id::new("digest", "nocolon")),
            Acl::new(perms::ALL, Id::new("ip", "1.2.3")),
        ] {
            assert_eq!(fixup(&ids, &[acl]), Err(ErrorCode::InvalidAcl));
        }
        assert_eq!(fixup(&ids, &[]), Err(ErrorCode::InvalidAcl));
    }
}
