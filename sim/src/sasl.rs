//! The server's side of SASL DIGEST-MD5 (RFC 2831), as ZooKeeper's `DigestLoginModule`
//! serves it: the challenge, the check of the client's response against the user's
//! password, and the server's proof. Pure: the nonce is derived from what the caller gives.

/// The realm and service ZooKeeper's server names itself by.
const REALM: &str = "zk-sasl-md5";
/// The digest URI the server expects.
const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

/// MD5 (RFC 1321).
pub(crate) fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    // K[i] = floor(2^32 * |sin(i + 1)|).
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_le_bytes());
    for block in msg.chunks_exact(64) {
        let m: Vec<u32> = block
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
    let mut out = [0u8; 16];
    for (chunk, s) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&s.to_le_bytes());
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `key=value` or `key="value"` pairs, comma-separated, quotes around values with commas.
fn fields(raw: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = raw.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.push((key.trim().to_ascii_lowercase(), value.to_owned()));
        rest = after.trim_start_matches([',', ' ']);
    }
    out
}

/// Where a connection's DIGEST-MD5 exchange stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DigestServer {
    /// The challenge went out with this nonce.
    Challenged { nonce: String },
    /// The client proved it knows the password of this user.
    Done,
}

/// What the server answers a client's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The login is refused (an unknown user, a wrong password, a malformed response).
    Refused,
    /// The login succeeded as `user`: send `token` (the server's proof).
    LoggedIn { user: String, token: Vec<u8> },
}

impl DigestServer {
    /// The first challenge, with a nonce derived from `seed`.
    pub(crate) fn challenge(seed: u64) -> (Vec<u8>, DigestServer) {
        let nonce = hex(&md5(&seed.to_le_bytes()));
        let token = format!(
            "realm=\"{REALM}\",nonce=\"{nonce}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess"
        );
        (token.into_bytes(), DigestServer::Challenged { nonce })
    }

    /// Checks the client's response against `password_of` its user.
    pub(crate) fn respond(
        &self,
        token: &[u8],
        password_of: impl Fn(&str) -> Option<String>,
    ) -> Answer {
        let DigestServer::Challenged { nonce } = self else {
            return Answer::Refused;
        };
        let Ok(text) = std::str::from_utf8(token) else {
            return Answer::Refused;
        };
        let f = fields(text);
        let get = |k: &str| f.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let (Some(user), Some(their_nonce), Some(cnonce), Some(nc), Some(uri), Some(response)) = (
            get("username"),
            get("nonce"),
            get("cnonce"),
            get("nc"),
            get("digest-uri"),
            get("response"),
        ) else {
            return Answer::Refused;
        };
        if their_nonce != nonce || uri != DIGEST_URI || get("qop").is_some_and(|q| q != "auth") {
            return Answer::Refused;
        }
        let Some(password) = password_of(user) else {
            return Answer::Refused;
        };
        let realm = get("realm").unwrap_or(REALM);
        let mut a1 = md5(format!("{user}:{realm}:{password}").as_bytes()).to_vec();
        a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
        let ha1 = hex(&md5(&a1));
        let kd = |a2: &str| {
            let ha2 = hex(&md5(a2.as_bytes()));
            hex(&md5(
                format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes()
            ))
        };
        if !kd(&format!("AUTHENTICATE:{uri}")).eq_ignore_ascii_case(response) {
            return Answer::Refused;
        }
        Answer::LoggedIn {
            user: user.to_owned(),
            token: format!("rspauth={}", kd(&format!(":{uri}"))).into_bytes(),
        }
    }
}

/// The users of a JAAS file's `Server` section (`user_<name>="<password>"` options of
/// `DigestLoginModule`), as the real server reads them.
///
/// ```
/// let users = zk_sim::jaas_digest_users(
///     "Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
///      user_super=\"adminsecret\"\n  user_bob=\"bobsecret\";\n};\nClient { x required; };\n",
/// );
/// assert_eq!(users, [("super".to_owned(), "adminsecret".to_owned()),
///                    ("bob".to_owned(), "bobsecret".to_owned())]);
/// ```
pub fn jaas_digest_users(jaas: &str) -> Vec<(String, String)> {
    let Some(start) = jaas.find("Server") else {
        return Vec::new();
    };
    let section = &jaas[start..];
    let Some(open) = section.find('{') else {
        return Vec::new();
    };
    let body = &section[open + 1..];
    let body = &body[..body.find("};").unwrap_or(body.len())];
    let mut users = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find("user_") {
        rest = &rest[at + 5..];
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let after = after.trim_start();
        let Some(quoted) = after.strip_prefix('"') else {
            continue;
        };
        let Some(end) = quoted.find('"') else {
            break;
        };
        users.push((name.trim().to_owned(), quoted[..end].to_owned()));
        rest = &quoted[end + 1..];
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_answers_rfc_1321s_vectors() {
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(&md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(&md5(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn a_response_is_checked_against_the_password() {
        let (challenge, state) = DigestServer::challenge(7);
        let text = String::from_utf8(challenge).unwrap();
        let nonce = fields(&text)
            .into_iter()
            .find(|(k, _)| k == "nonce")
            .unwrap()
            .1;
        // The response a client computes (RFC 2831's formulas) for bob/secret.
        let cnonce = "abc";
        let mut a1 = md5(b"bob:zk-sasl-md5:secret").to_vec();
        a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
        let ha1 = hex(&md5(&a1));
        let ha2 = hex(&md5(b"AUTHENTICATE:zookeeper/zk-sasl-md5"));
        let response = hex(&md5(
            format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}").as_bytes()
        ));
        let token = format!(
            "username=\"bob\",realm=\"zk-sasl-md5\",nonce=\"{nonce}\",nc=00000001,\
             cnonce=\"{cnonce}\",digest-uri=\"zookeeper/zk-sasl-md5\",response={response},qop=auth"
        );
        let users = |u: &str| (u == "bob").then(|| "secret".to_owned());
        assert!(matches!(
            state.respond(token.as_bytes(), users),
            Answer::LoggedIn { user, .. } if user == "bob"
        ));
        let wrong = |u: &str| (u == "bob").then(|| "other".to_owned());
        assert_eq!(state.respond(token.as_bytes(), wrong), Answer::Refused);
        assert_eq!(state.respond(b"garbage", users), Answer::Refused);
    }
}
