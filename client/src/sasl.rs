//! SASL DIGEST-MD5 (RFC 2831), the mechanism of ZooKeeper's `DigestLoginModule`, as a pure
//! state machine: it is fed the server's challenges and answers with the client's
//! responses. The session runs it through [`zk_proto::sasl`]'s mechanism traits.
//!
//! ZooKeeper's server names itself `zk-sasl-md5` under the protocol `zookeeper`, so the
//! digest URI is `zookeeper/zk-sasl-md5` unless the server is configured otherwise.
//!
//! ```
//! use zk_client::sasl::DigestMd5;
//! use zk_proto::sasl::Step;
//!
//! // The exchange of RFC 2831, section 4.
//! let mut sasl = DigestMd5::new("chris", "secret", "imap/elwood.innosoft.com", "OA6MHXh6VqTrRk");
//! let challenge = br#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8"#;
//! let Ok(Step::Respond(response)) = sasl.step(challenge) else { panic!() };
//! assert!(String::from_utf8(response).unwrap().contains("response=d388dad90d4bbd760a152321f2143af7"));
//! let Ok(Step::Done) = sasl.step(b"rspauth=ea40f60335c427b5527b84dbabcdfffd") else { panic!() };
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use md5::{Digest, Md5};
use zk_proto::sasl::{SaslExchange, SaslLogin, SaslMechanism, Step};

/// The digest URI ZooKeeper's server expects by default.
pub const ZOOKEEPER_DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

/// MD5 of `data`.
fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// DIGEST-MD5 as a login mechanism: one [`DigestMd5`] exchange per connection, each with a
/// fresh client nonce derived from a secret the driver drew from the operating system (a
/// session's seed, which a user may set, never makes it predictable). Its `Debug` leaves
/// the password out.
pub struct DigestMd5Login {
    user: String,
    password: String,
    digest_uri: String,
    secret: u128,
    starts: AtomicU64,
}

impl std::fmt::Debug for DigestMd5Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestMd5Login")
            .field("user", &self.user)
            .field("digest_uri", &self.digest_uri)
            .finish_non_exhaustive()
    }
}

impl DigestMd5Login {
    /// Logs in as `user` with `password` towards `digest_uri` (usually
    /// [`ZOOKEEPER_DIGEST_URI`]); `secret` is 128 bits from the operating system, which
    /// the client nonces are derived from.
    pub fn new(user: &str, password: &str, digest_uri: &str, secret: u128) -> DigestMd5Login {
        DigestMd5Login {
            user: user.to_string(),
            password: password.to_string(),
            digest_uri: digest_uri.to_string(),
            secret,
            starts: AtomicU64::new(0),
        }
    }

    /// As a session's login.
    pub fn login(self) -> SaslLogin {
        SaslLogin::mechanism_of(self)
    }
}

impl SaslMechanism for DigestMd5Login {
    fn name(&self) -> &str {
        "DIGEST-MD5"
    }

    fn user(&self) -> &str {
        &self.user
    }

    fn start(&self, _host: &str, _random: u64) -> Result<Box<dyn SaslExchange>, String> {
        // A nonce per connection that nobody can foresee without the secret.
        let start = self.starts.fetch_add(1, Ordering::Relaxed);
        let cnonce = hex(&md5(&[
            self.secret.to_le_bytes().as_slice(),
            &start.to_le_bytes(),
        ]
        .concat()));
        Ok(Box::new(DigestMd5::new(
            &self.user,
            &self.password,
            &self.digest_uri,
            &cnonce,
        )))
    }
}

impl SaslExchange for DigestMd5 {
    fn initial_response(&mut self) -> Result<Vec<u8>, String> {
        Ok(DigestMd5::initial_response(self))
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Step, String> {
        DigestMd5::step(self, challenge).map_err(|e| e.to_string())
    }
}

/// Why a DIGEST-MD5 exchange cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslError {
    /// The server's challenge is not a DIGEST-MD5 challenge this client can answer.
    BadChallenge(&'static str),
    /// The server's final message does not prove it knows the password: it may not be the
    /// server it claims to be.
    BadServerProof,
    /// The exchange is over (done or failed); nothing more is expected.
    Finished,
}

impl std::fmt::Display for SaslError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaslError::BadChallenge(why) => write!(
                f,
                "the server's DIGEST-MD5 challenge is malformed or unsupported: {why}"
            ),
            SaslError::BadServerProof => f.write_str(
                "the server's DIGEST-MD5 proof (rspauth) is wrong: do not trust this server",
            ),
            SaslError::Finished => f.write_str("the DIGEST-MD5 exchange is already over"),
        }
    }
}

impl std::error::Error for SaslError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Waiting for the server's first challenge.
    Start,
    /// Our response is sent; `rspauth` is what the server must answer.
    Sent { rspauth: String },
    /// The server proved itself.
    Done,
    /// The exchange failed.
    Failed,
}

/// A client's side of one DIGEST-MD5 exchange (authentication only, `qop=auth`). Its
/// `Debug` leaves the password out.
#[derive(Clone)]
pub struct DigestMd5 {
    user: String,
    password: String,
    digest_uri: String,
    cnonce: String,
    state: State,
}

impl std::fmt::Debug for DigestMd5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestMd5")
            .field("user", &self.user)
            .field("digest_uri", &self.digest_uri)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl DigestMd5 {
    /// An exchange for `user` with `password` towards `digest_uri` (usually
    /// [`ZOOKEEPER_DIGEST_URI`]), with the client nonce `cnonce` (random, from the caller:
    /// this crate has no randomness of its own).
    pub fn new(user: &str, password: &str, digest_uri: &str, cnonce: &str) -> DigestMd5 {
        DigestMd5 {
            user: user.to_string(),
            password: password.to_string(),
            digest_uri: digest_uri.to_string(),
            cnonce: cnonce.to_string(),
            state: State::Start,
        }
    }

    /// DIGEST-MD5 sends nothing first: the initial response is empty.
    pub fn initial_response(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Whether the server proved itself and the exchange is over.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The next step for the server's `challenge`.
    pub fn step(&mut self, challenge: &[u8]) -> Result<Step, SaslError> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Start => {
                let (response, rspauth) = self.respond(challenge)?;
                self.state = State::Sent { rspauth };
                Ok(Step::Respond(response))
            }
            State::Sent { rspauth } => {
                let fields = parse(challenge).ok_or(SaslError::BadServerProof)?;
                match field(&fields, "rspauth") {
                    Some(proof) if proof.eq_ignore_ascii_case(&rspauth) => {
                        self.state = State::Done;
                        Ok(Step::Done)
                    }
                    _ => Err(SaslError::BadServerProof),
                }
            }
            done @ (State::Done | State::Failed) => {
                self.state = done;
                Err(SaslError::Finished)
            }
        }
    }

    /// Our response to the first challenge, and the proof the server must send back.
    fn respond(&self, challenge: &[u8]) -> Result<(Vec<u8>, String), SaslError> {
        let fields = parse(challenge).ok_or(SaslError::BadChallenge("not a list of fields"))?;
        let nonce = field(&fields, "nonce").ok_or(SaslError::BadChallenge("no nonce"))?;
        let realm = field(&fields, "realm").unwrap_or("");
        if let Some(qop) = field(&fields, "qop")
            && !qop.split(',').any(|q| q.trim() == "auth")
        {
            return Err(SaslError::BadChallenge(
                "the server does not offer qop=auth",
            ));
        }
        if let Some(algorithm) = field(&fields, "algorithm")
            && !algorithm.eq_ignore_ascii_case("md5-sess")
        {
            return Err(SaslError::BadChallenge("the algorithm is not md5-sess"));
        }
        let utf8 = field(&fields, "charset").is_some_and(|c| c.eq_ignore_ascii_case("utf-8"));
        let nc = "00000001";
        let (user, password) = if utf8 {
            (
                self.user.as_bytes().to_vec(),
                self.password.as_bytes().to_vec(),
            )
        } else {
            (latin1(&self.user)?, latin1(&self.password)?)
        };
        // A1 = H(user:realm:password):nonce:cnonce
        let mut secret = user.clone();
        secret.push(b':');
        secret.extend_from_slice(realm.as_bytes());
        secret.push(b':');
        secret.extend_from_slice(&password);
        let mut a1 = md5(&secret).to_vec();
        a1.extend_from_slice(format!(":{nonce}:{}", self.cnonce).as_bytes());
        let ha1 = hex(&md5(&a1));
        let kd = |a2: &str| {
            let ha2 = hex(&md5(a2.as_bytes()));
            let s = format!("{ha1}:{nonce}:{nc}:{}:auth:{ha2}", self.cnonce);
            hex(&md5(s.as_bytes()))
        };
        let response = kd(&format!("AUTHENTICATE:{}", self.digest_uri));
        let rspauth = kd(&format!(":{}", self.digest_uri));
        let mut out = String::new();
        if utf8 {
            out.push_str("charset=utf-8,");
        }
        out.push_str(&format!(
            "username={},realm={},nonce={},nc={nc},cnonce={},digest-uri={},response={response},qop=auth",
            quote(&self.user),
            quote(realm),
            quote(nonce),
            quote(&self.cnonce),
            quote(&self.digest_uri),
        ));
        Ok((out.into_bytes(), rspauth))
    }
}

fn latin1(s: &str) -> Result<Vec<u8>, SaslError> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .ok_or(SaslError::BadChallenge(
            "the server does not take UTF-8 and the credentials are not Latin-1",
        ))
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// `key=value` or `key="quoted value"`, separated by commas; `None` when malformed.
fn parse(raw: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_string();
        if key.is_empty() {
            return None;
        }
        rest = &rest[eq + 1..];
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.push(chars.next()?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &quoted[end?..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.push((key, value));
        rest = rest.trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => {}
            None => return None,
        }
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &[u8] = br#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8"#;

    fn rfc_exchange() -> DigestMd5 {
        DigestMd5::new(
            "chris",
            "secret",
            "imap/elwood.innosoft.com",
            "OA6MHXh6VqTrRk",
        )
    }

    #[test]
    fn the_rfc_2831_exchange_is_reproduced() {
        let mut sasl = rfc_exchange();
        assert!(sasl.initial_response().is_empty());
        let Ok(Step::Respond(response)) = sasl.step(CHALLENGE) else {
            panic!("a response")
        };
        assert_eq!(
            String::from_utf8(response).unwrap(),
            "charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",\
             nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",\
             digest-uri=\"imap/elwood.innosoft.com\",\
             response=d388dad90d4bbd760a152321f2143af7,qop=auth"
        );
        assert_eq!(
            sasl.step(b"rspauth=ea40f60335c427b5527b84dbabcdfffd"),
            Ok(Step::Done)
        );
        assert!(sasl.is_done());
        assert_eq!(sasl.step(b"anything"), Err(SaslError::Finished));
    }

    #[test]
    fn a_wrong_server_proof_is_refused() {
        let mut sasl = rfc_exchange();
        assert!(matches!(sasl.step(CHALLENGE), Ok(Step::Respond(_))));
        assert_eq!(
            sasl.step(b"rspauth=00000000000000000000000000000000"),
            Err(SaslError::BadServerProof)
        );
        assert!(!sasl.is_done());
        assert_eq!(sasl.step(b""), Err(SaslError::Finished));
    }

    #[test]
    fn challenges_it_cannot_answer_are_typed_errors() {
        let bad: [(&[u8], &str); 4] = [
            (b"realm=\"r\"", "no nonce"),
            (b"nonce=\"n\",qop=\"auth-conf\"", "qop"),
            (b"nonce=\"n\",algorithm=md5", "algorithm"),
            (b"nonce=\"unterminated", "fields"),
        ];
        for (challenge, why) in bad {
            let err = rfc_exchange().step(challenge).unwrap_err();
            assert!(
                matches!(err, SaslError::BadChallenge(m) if m.contains(why)),
                "{challenge:?}: {err:?}"
            );
        }
        // Without charset=utf-8, credentials must be Latin-1.
        let mut sasl = DigestMd5::new("ключ", "secret", ZOOKEEPER_DIGEST_URI, "c");
        assert!(matches!(
            sasl.step(b"nonce=\"n\""),
            Err(SaslError::BadChallenge(_))
        ));
    }
}
