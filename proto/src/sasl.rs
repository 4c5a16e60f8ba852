//! SASL logins: the framing and the turn-taking are the session's, the mechanisms are not.
//! A mechanism ([`SaslMechanism`]) starts one exchange ([`SaslExchange`]) per connection,
//! which the session feeds the server's challenges until it is [`Step::Done`].
//! DIGEST-MD5 is `zk_client::sasl`'s, GSSAPI is `zk-gssapi`'s.

use std::sync::Arc;

/// What the client does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes to the server.
    Respond(Vec<u8>),
    /// The server is authenticated too; the exchange is complete.
    Done,
}

/// What a session logs in with by SASL, after the handshake of every connection and before
/// anything else is sent on it: given to a client's builder with `sasl` (or `sasl_digest`),
/// or to a bare session's `Config::with_sasl`.
#[derive(Clone)]
pub struct SaslLogin(Arc<dyn SaslMechanism>);

impl PartialEq for SaslLogin {
    fn eq(&self, other: &SaslLogin) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SaslLogin {}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

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

impl SaslLogin {
    /// A login with `mechanism`.
    pub fn mechanism_of(mechanism: impl SaslMechanism + 'static) -> SaslLogin {
        SaslLogin(Arc::new(mechanism))
    }

    /// The mechanism's name, as SASL spells it.
    pub fn mechanism(&self) -> &str {
        self.0.name()
    }

    /// Who logs in.
    pub fn user(&self) -> &str {
        self.0.user()
    }

    /// A fresh exchange with the server reached as `host`; `random` is the session's
    /// randomness (seeded, so never a secret).
    pub fn start(&self, host: &str, random: u64) -> Result<Box<dyn SaslExchange>, String> {
        self.0.start(host, random)
    }
}
