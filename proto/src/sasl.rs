//! SASL DIGEST-MD5 (RFC 2831), the mechanism of ZooKeeper's `DigestLoginModule`, as a pure
//! state machine: it is fed the server's challenges and answers with the client's
//! responses. MD5 is implemented here to keep the crate's dependencies at `bytes`, `nom`
//! and `thiserror`.
//!
//! ZooKeeper's server names itself `zk-sasl-md5` under the protocol `zookeeper`, so the
//! digest URI is `zookeeper/zk-sasl-md5` unless the server is configured otherwise.
//!
//! ```
//! use zk_proto::sasl::{DigestMd5, Step};
//!
//! // The exchange of RFC 2831, section 4.
//! let mut sasl = DigestMd5::new("chris", "secret", "imap/elwood.innosoft.com", "OA6MHXh6VqTrRk");
//! let challenge = br#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8"#;
//! let Ok(Step::Respond(response)) = sasl.step(challenge) else { panic!() };
//! assert!(String::from_utf8(response).unwrap().contains("response=d388dad90d4bbd760a152321f2143af7"));
//! let Ok(Step::Done) = sasl.step(b"rspauth=ea40f60335c427b5527b84dbabcdfffd") else { panic!() };
//! ```

use std::sync::Arc;

use thiserror::Error;

/// The digest URI ZooKeeper's server expects by default.
pub const ZOOKEEPER_DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

/// Why a DIGEST-MD5 exchange cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SaslError {
    /// The server's challenge is not a DIGEST-MD5 challenge this client can answer.
    #[error("the server's DIGEST-MD5 challenge is malformed or unsupported: {0}")]
    BadChallenge(&'static str),
    /// The server's final message does not prove it knows the password: it may not be the
    /// server it claims to be.
    #[error("the server's DIGEST-MD5 proof (rspauth) is wrong: do not trust this server")]
    BadServerProof,
    /// The exchange is over (done or failed); nothing more is expected.
    #[error("the DIGEST-MD5 exchange is already over")]
    Finished,
}

/// What a session logs in with by SASL, after the handshake of every connection and before
/// anything else is sent on it (see `Config::with_sasl`).
#[derive(Clone)]
#[non_exhaustive]
pub enum SaslLogin {
    /// DIGEST-MD5, against the server's `DigestLoginModule` (its JAAS `Server` section
    /// names each user as `user_<name>="<password>"`). The session's identity becomes
    /// `sasl:<user>`.
    DigestMd5 {
        /// The user name.
        user: String,
        /// The password.
        password: String,
        /// The digest URI, [`ZOOKEEPER_DIGEST_URI`] unless the server is configured with
        /// another protocol or server name.
        digest_uri: String,
    },
    /// A mechanism implemented outside this crate, such as GSSAPI through the system's
    /// Kerberos library.
    Mechanism(Arc<dyn SaslMechanism>),
}

impl PartialEq for SaslLogin {
    fn eq(&self, other: &SaslLogin) -> bool {
        match (self, other) {
            (
                SaslLogin::DigestMd5 {
                    user: a,
                    password: b,
                    digest_uri: c,
                },
                SaslLogin::DigestMd5 {
                    user: x,
                    password: y,
                    digest_uri: z,
                },
            ) => (a, b, c) == (x, y, z),
            (SaslLogin::Mechanism(a), SaslLogin::Mechanism(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for SaslLogin {}

/// A SASL mechanism implemented outside this crate: it starts one [`SaslExchange`] per
/// connection. Its work may reach outside the process (a Kerberos library asks its KDC for
/// a ticket), so it is the driver's or the application's, never this crate's.
pub trait SaslMechanism: Send + Sync + std::fmt::Debug {
    /// The mechanism's name as SASL spells it (`GSSAPI`).
    fn name(&self) -> &str;
    /// Who logs in, for messages.
    fn user(&self) -> &str;
    /// A fresh exchange with the server reached as `host` (from the connect string).
    /// `random` is fresh randomness from the session, for mechanisms that need a nonce.
    fn start(&self, host: &str, random: u64) -> Result<Box<dyn SaslExchange>, String>;
}

/// One SASL exchange on one connection: fed the server's challenges, it answers with
/// responses until it is done.
pub trait SaslExchange: Send + std::fmt::Debug {
    /// The first token to send (empty for mechanisms where the server speaks first).
    fn initial_response(&mut self) -> Result<Vec<u8>, String>;
    /// The next step for the server's `challenge`.
    fn step(&mut self, challenge: &[u8]) -> Result<Step, String>;
}

impl SaslExchange for DigestMd5 {
    fn initial_response(&mut self) -> Result<Vec<u8>, String> {
        Ok(DigestMd5::initial_response(self))
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Step, String> {
        DigestMd5::step(self, challenge).map_err(|e| e.to_string())
    }
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaslLogin::DigestMd5 {
                user, digest_uri, ..
            } => f
                .debug_struct("DigestMd5")
                .field("user", user)
                .field("password", &"<hidden>")
                .field("digest_uri", digest_uri)
                .finish(),
            SaslLogin::Mechanism(m) => m.fmt(f),
        }
    }
}

impl SaslLogin {
    /// DIGEST-MD5 as `user` with `password`, towards [`ZOOKEEPER_DIGEST_URI`].
    pub fn digest_md5(user: &str, password: &str) -> SaslLogin {
        SaslLogin::DigestMd5 {
            user: user.to_string(),
            password: password.to_string(),
            digest_uri: ZOOKEEPER_DIGEST_URI.to_string(),
        }
    }

    /// The same login towards another digest URI (`<protocol>/<server name>`, for a server
    /// started with other `zookeeper.sasl.server.*` names).
    pub fn with_digest_uri(self, uri: &str) -> SaslLogin {
        match self {
            SaslLogin::DigestMd5 { user, password, .. } => SaslLogin::DigestMd5 {
                user,
                password,
                digest_uri: uri.to_string(),
            },
            other => other,
        }
    }

    /// A login with a mechanism implemented outside this crate.
    pub fn mechanism_of(mechanism: impl SaslMechanism + 'static) -> SaslLogin {
        SaslLogin::Mechanism(Arc::new(mechanism))
    }

    /// The mechanism's name, as SASL spells it.
    pub fn mechanism(&self) -> &str {
        match self {
            SaslLogin::DigestMd5 { .. } => "DIGEST-MD5",
            SaslLogin::Mechanism(m) => m.name(),
        }
    }

    /// Who logs in.
    pub fn user(&self) -> &str {
        match self {
            SaslLogin::DigestMd5 { user, .. } => user,
            SaslLogin::Mechanism(m) => m.user(),
        }
    }

    /// A fresh exchange with the server reached as `host`; `random` seeds its nonce.
    pub fn start(&self, host: &str, random: u64) -> Result<Box<dyn SaslExchange>, String> {
        match self {
            SaslLogin::DigestMd5 {
                user,
                password,
                digest_uri,
            } => {
                // A client nonce from the session's seeded randomness, fresh per connection.
                let cnonce = format!(
                    "{random:016x}{:016x}",
                    random.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15
                );
                Ok(Box::new(DigestMd5::new(
                    user, password, digest_uri, &cnonce,
                )))
            }
            SaslLogin::Mechanism(m) => m.start(host, random),
        }
    }
}

/// What the client does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes to the server.
    Respond(Vec<u8>),
    /// The server is authenticated too; the exchange is complete.
    Done,
}

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

/// A client's side of one DIGEST-MD5 exchange (authentication only, `qop=auth`).
#[derive(Debug, Clone)]
pub struct DigestMd5 {
    user: String,
    password: String,
    digest_uri: String,
    cnonce: String,
    state: State,
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

/// MD5 (RFC 1321) of `data`.
pub fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    // K[i] = floor(abs(sin(i + 1)) * 2^32), written out so no floating point is involved.
    #[rustfmt::skip]
    const K: [u32; 64] = [
        0xd76a_a478, 0xe8c7_b756, 0x2420_70db, 0xc1bd_ceee,
        0xf57c_0faf, 0x4787_c62a, 0xa830_4613, 0xfd46_9501,
        0x6980_98d8, 0x8b44_f7af, 0xffff_5bb1, 0x895c_d7be,
        0x6b90_1122, 0xfd98_7193, 0xa679_438e, 0x49b4_0821,
        0xf61e_2562, 0xc040_b340, 0x265e_5a51, 0xe9b6_c7aa,
        0xd62f_105d, 0x0244_1453, 0xd8a1_e681, 0xe7d3_fbc8,
        0x21e1_cde6, 0xc337_07d6, 0xf4d5_0d87, 0x455a_14ed,
        0xa9e3_e905, 0xfcef_a3f8, 0x676f_02d9, 0x8d2a_4c8a,
        0xfffa_3942, 0x8771_f681, 0x6d9d_6122, 0xfde5_380c,
        0xa4be_ea44, 0x4bde_cfa9, 0xf6bb_4b60, 0xbebf_bc70,
        0x289b_7ec6, 0xeaa1_27fa, 0xd4ef_3085, 0x0488_1d05,
        0xd9d4_d039, 0xe6db_99e5, 0x1fa2_7cf8, 0xc4ac_5665,
        0xf429_2244, 0x432a_ff97, 0xab94_23a7, 0xfc93_a039,
        0x655b_59c3, 0x8f0c_cc92, 0xffef_f47d, 0x8584_5dd1,
        0x6fa8_7e4f, 0xfe2c_e6e0, 0xa301_4314, 0x4e08_11a1,
        0xf753_7e82, 0xbd3a_f235, 0x2ad7_d2bb, 0xeb86_d391,
    ];
    let mut h: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut message = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bits.to_le_bytes());
    for chunk in message.chunks_exact(64) {
        let m: [u32; 16] = std::array::from_fn(|i| {
            u32::from_le_bytes([
                chunk[4 * i],
                chunk[4 * i + 1],
                chunk[4 * i + 2],
                chunk[4 * i + 3],
            ])
        });
        let [mut a, mut b, mut c, mut d] = h;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(K[i])
                .wrapping_add(m[g])
                .rotate_left(S[i]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(rotated);
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, word) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc_1321() {
        let cases: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, digest) in cases {
            assert_eq!(hex(&md5(input.as_bytes())), digest, "md5({input:?})");
        }
    }

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
