//! SASL GSSAPI (Kerberos V5) logins for ZooKeeper sessions, as RFC 4752 describes them,
//! through the system's MIT Kerberos GSS-API library (`libgssapi_krb5.so.2`, Debian's
//! `libgssapi-krb5-2`), opened when the first login starts.
//!
//! The credentials are the process's Kerberos credentials: a ticket cache (`kinit`,
//! `KRB5CCNAME`) or a client keytab (`KRB5_CLIENT_KTNAME`), with `KRB5_CONFIG` naming the
//! realm's configuration. The server's principal is `<service>/<host>`, the host being the
//! one the connect string names (so connect by the name in the server's principal, such as
//! `zk1.example.com:2181`, not by its address), unless [`Gssapi::with_host`] overrides it.
//!
//! ```no_run
//! # async fn demo() -> zk_tokio::Result<()> {
//! let client = zk_tokio::Client::builder("zk1.example.com:2181")
//!     .sasl(zk_gssapi::Gssapi::new("zookeeper").login())
//!     .connect()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Getting a service ticket may ask the KDC over the network, inside the call that starts
//! the exchange: the driver's loop waits for it, as the reference client's event thread
//! does. Only the security layer "none" is used (the server offers it by default); TLS is
//! the way to encrypt a ZooKeeper connection.

#![deny(missing_docs)]

mod ffi;

use std::fmt;

use zk_proto::sasl::{SaslExchange, SaslLogin, SaslMechanism, Step};

/// A GSSAPI login towards the servers' Kerberos service `service` (`zookeeper` unless the
/// servers run under another `zookeeper.sasl.client.username`).
#[derive(Debug, Clone)]
pub struct Gssapi {
    service: String,
    host: Option<String>,
    principal: Option<String>,
}

impl Gssapi {
    /// Logs in to `<service>/<host>` with the process's default Kerberos credentials.
    pub fn new(service: &str) -> Gssapi {
        Gssapi {
            service: service.to_string(),
            host: None,
            principal: None,
        }
    }

    /// Uses `host` in the server principal for every server instead of the host from the
    /// connect string (for servers that share one principal, or are reached by address).
    pub fn with_host(mut self, host: &str) -> Gssapi {
        self.host = Some(host.to_string());
        self
    }

    /// Names the client principal in messages (the credentials still come from the cache or
    /// keytab).
    pub fn with_principal_name(mut self, principal: &str) -> Gssapi {
        self.principal = Some(principal.to_string());
        self
    }

    /// The login to give a client builder's `sasl` or `Config::with_sasl`.
    pub fn login(self) -> SaslLogin {
        SaslLogin::mechanism_of(self)
    }
}

impl SaslMechanism for Gssapi {
    fn name(&self) -> &str {
        "GSSAPI"
    }

    fn user(&self) -> &str {
        self.principal
            .as_deref()
            .unwrap_or("the default Kerberos principal")
    }

    fn start(&self, host: &str, _random: u64) -> Result<Box<dyn SaslExchange>, String> {
        let lib = ffi::Gss::load()?;
        let host = self.host.as_deref().unwrap_or(host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let target = lib.import_service_name(&format!("{}@{host}", self.service))?;
        Ok(Box::new(Exchange {
            lib,
            target,
            context: ffi::Context::none(),
            stage: Stage::Context,
            server: format!("{}/{host}", self.service),
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Building the security context.
    Context,
    /// The context is up; the server's security-layer offer comes next.
    Layer,
    /// Our choice of layer is sent; the server's last word ends the exchange.
    Final,
    /// Over.
    Done,
}

/// One GSSAPI exchange on one connection.
struct Exchange {
    lib: &'static ffi::Gss,
    target: ffi::Name,
    context: ffi::Context,
    stage: Stage,
    server: String,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GssapiExchange")
            .field("server", &self.server)
            .field("stage", &self.stage)
            .finish()
    }
}

impl Exchange {
    fn context_step(&mut self, token: Option<&[u8]>) -> Result<Vec<u8>, String> {
        let (out, complete) = self
            .lib
            .init_sec_context(&mut self.context, &self.target, token)
            .map_err(|e| format!("no Kerberos ticket for {}: {e}", self.server))?;
        if complete {
            self.stage = Stage::Layer;
        }
        Ok(out)
    }
}

impl SaslExchange for Exchange {
    fn initial_response(&mut self) -> Result<Vec<u8>, String> {
        self.context_step(None)
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Step, String> {
        match self.stage {
            Stage::Context => Ok(Step::Respond(self.context_step(Some(challenge))?)),
            Stage::Layer => {
                // RFC 4752, 3.1: the server offers layers and a buffer size, wrapped; we take
                // "no security layer" and name no other identity.
                let offer = self.lib.unwrap(&self.context, challenge)?;
                if offer.len() != 4 {
                    return Err(format!(
                        "the server's security-layer offer has {} bytes, not 4",
                        offer.len()
                    ));
                }
                if offer[0] & 1 == 0 {
                    return Err(
                        "the server requires a SASL security layer; use TLS instead and let \
                         the server offer `auth` (its default)"
                            .into(),
                    );
                }
                let answer = self.lib.wrap(&self.context, &[1, 0, 0, 0])?;
                self.stage = Stage::Final;
                Ok(Step::Respond(answer))
            }
            Stage::Final => {
                self.stage = Stage::Done;
                Ok(Step::Done)
            }
            Stage::Done => Err("the GSSAPI exchange is already over".into()),
        }
    }
}

/// The crate's README, compiled and run as a doc test so its example stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
