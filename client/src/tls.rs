//! TLS settings both drivers share, on rustls (no OpenSSL): the roots a server's certificate
//! must chain to, an optional client certificate for mutual TLS, and the name a certificate
//! must carry. Built once per client; every connection and read-only probe of the client
//! uses them.
//!
//! The server's name is taken from each host of the connect string (a DNS name or an IP
//! address, both checked against the certificate's subject alternative names), unless
//! [`TlsBuilder::server_name`] overrides it for every host.
//!
//! ```
//! # fn demo(ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> Result<(), zk_client::Error> {
//! use zk_client::tls::TlsOptions;
//! let tls = TlsOptions::builder()
//!     .ca_pem(ca_pem)?
//!     .client_cert_pem(cert_pem, key_pem)?
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! A connection with these settings and a failed handshake reports why in words (see
//! [`describe_handshake_error`]): an unknown certificate authority, a name mismatch, an
//! expired certificate, a server that does not speak TLS or a plain client port.

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore};

use crate::Error;

pub use rustls;

/// TLS settings for a client: use them with the drivers' `ClientBuilder::tls`.
///
/// Cheap to clone: the rustls configuration inside is shared.
#[derive(Clone)]
pub struct TlsOptions {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("server_name", &self.server_name)
            .field(
                "client_auth",
                &self.config.client_auth_cert_resolver.has_certs(),
            )
            .finish_non_exhaustive()
    }
}

impl TlsOptions {
    /// Starts building settings from PEM roots and certificates.
    pub fn builder() -> TlsBuilder {
        TlsBuilder::default()
    }

    /// Settings from a rustls configuration of your own (a custom certificate verifier, other
    /// cipher suites, session resumption settings...), with names taken from the host string.
    pub fn from_config(config: Arc<ClientConfig>) -> Self {
        TlsOptions {
            config,
            server_name: None,
        }
    }

    /// The rustls configuration every connection uses.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The name the certificate of `host` (a host of the connect string, without its port)
    /// must carry: the override if one was given, else `host` itself.
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, Error> {
        match &self.server_name {
            Some(name) => Ok(name.clone()),
            None => parse_server_name(host),
        }
    }
}

fn parse_server_name(name: &str) -> Result<ServerName<'static>, Error> {
    // An IPv6 literal comes bracketed from a connect string.
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|_| {
        Error::Tls(format!(
            "`{name}` is neither a DNS name nor an IP address a certificate could carry"
        ))
    })
}

/// Builds [`TlsOptions`]; every step checks its input and says what is wrong with it.
#[derive(Default)]
pub struct TlsBuilder {
    roots: Vec<CertificateDer<'static>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for TlsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsBuilder")
            .field("roots", &self.roots.len())
            .field("client_cert", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsBuilder {
    /// Trusts every certificate in `pem` (one or more `BEGIN CERTIFICATE` blocks) as a root:
    /// servers must present a chain to one of them. Call again to add more.
    pub fn ca_pem(mut self, pem: impl AsRef<[u8]>) -> Result<Self, Error> {
        let certs = certificates(pem.as_ref(), "the CA PEM")?;
        self.roots.extend(certs);
        Ok(self)
    }

    /// Presents this certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or
    /// SEC1 PEM) to servers that ask for one: mutual TLS, and with the server's
    /// `authProvider.x509` an identity for ACLs (`x509:<subject DN>`).
    pub fn client_cert_pem(
        mut self,
        chain_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Result<Self, Error> {
        let chain = certificates(chain_pem.as_ref(), "the client certificate PEM")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_ref()).map_err(|e| {
            Error::Tls(format!(
                "the client key PEM holds no usable private key ({e}); expected a PKCS#8, \
                 PKCS#1 or SEC1 key without a password"
            ))
        })?;
        self.identity = Some((chain, key));
        Ok(self)
    }

    /// Checks every server's certificate against `name` instead of the host it was reached
    /// by: for servers reached by an address their certificate does not name (a proxy, a
    /// load balancer, an IP address where the certificate carries only DNS names).
    pub fn server_name(mut self, name: &str) -> Result<Self, Error> {
        self.server_name = Some(parse_server_name(name)?);
        Ok(self)
    }

    /// The settings, with TLS 1.2 and 1.3 (ZooKeeper 3.8 negotiates 1.2 by default).
    pub fn build(self) -> Result<TlsOptions, Error> {
        if self.roots.is_empty() {
            return Err(Error::Tls(
                "no CA certificate was given; add the roots the servers' certificates chain \
                 to with `ca_pem`"
                    .into(),
            ));
        }
        let mut roots = RootCertStore::empty();
        for cert in self.roots {
            roots
                .add(cert)
                .map_err(|e| Error::Tls(format!("a CA certificate cannot be used: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(format!("no usable TLS version: {e}")))?
            .with_root_certificates(roots);
        let config = match self.identity {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::Tls(format!(
                    "the client certificate and key cannot be used together: {e}"
                ))
            })?,
            None => builder.with_no_client_auth(),
        };
        Ok(TlsOptions {
            config: Arc::new(config),
            server_name: self.server_name,
        })
    }
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("{what} cannot be read: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{what} holds no `BEGIN CERTIFICATE` block"
        )));
    }
    Ok(certs)
}

/// Says in words why a TLS handshake failed, for an error from a handshake on an IO stream
/// (`tokio-rustls`' connect, or rustls' `complete_io`), with what to check.
pub fn describe_handshake_error(e: &io::Error) -> String {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return describe_tls_error(tls);
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => format!(
            "TLS handshake failed: the server closed the connection before completing it ({e}); \
             is this the server's plain client port rather than its secureClientPort, or did it \
             refuse our client certificate?"
        ),
        _ => format!("TLS handshake failed: {e}"),
    }
}

/// Says in words what a rustls error means for a ZooKeeper connection.
pub fn describe_tls_error(e: &rustls::Error) -> String {
    use rustls::Error as E;
    let why = match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => "the server's certificate is not signed by a \
                 trusted CA; give its CA with `ca_pem`"
                .to_string(),
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => format!(
                "the server's certificate does not name the host it was reached by ({}); it \
                 names {}; connect by a name it carries or set `server_name`",
                name_text(expected),
                presented
                    .iter()
                    .map(|p| san_text(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            CertificateError::NotValidForName => "the server's certificate does not name the \
                 host it was reached by; connect by a name it carries or set `server_name`"
                .to_string(),
            CertificateError::ExpiredContext { time, not_after } => format!(
                "the server's certificate expired at {} (the time here is {})",
                utc(not_after.as_secs()),
                utc(time.as_secs())
            ),
            CertificateError::Expired => "the server's certificate has expired".to_string(),
            CertificateError::NotValidYetContext { time, not_before } => format!(
                "the server's certificate is valid only from {} (the time here is {}); check \
                 both clocks",
                utc(not_before.as_secs()),
                utc(time.as_secs())
            ),
            CertificateError::NotValidYet => {
                "the server's certificate is not valid yet; check both clocks".to_string()
            }
            CertificateError::Revoked => "the server's certificate is revoked".to_string(),
            CertificateError::BadSignature => {
                "the server's certificate has a bad signature".to_string()
            }
            other => format!("the server's certificate was refused: {other:?}"),
        },
        E::AlertReceived(alert) => match alert {
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateRequired
            | AlertDescription::CertificateRevoked => format!(
                "the server refused our client certificate (alert {alert:?}); it wants one \
                 signed by a CA in its trust store"
            ),
            other => format!("the server ended the handshake (alert {other:?})"),
        },
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => format!(
            "the server does not speak TLS on this port ({e}); is this its plain client port?"
        ),
        E::PeerIncompatible(why) => {
            format!("the server and this client share no TLS version or cipher suite ({why:?})")
        }
        other => other.to_string(),
    };
    format!("TLS handshake failed: {why}")
}

fn name_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        // An address value from `core`, which has no sockets.
        ServerName::IpAddress(ip) => core::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// rustls lists a certificate's names as `DnsName("x")` or `IpAddress(1.2.3.4)`: the name.
fn san_text(presented: &str) -> &str {
    let inner = presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(presented);
    inner.trim_matches(|c| c == '"' || c == '\\')
}

/// `secs` since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(secs: u64) -> String {
    let at = i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(jiff::Timestamp::MAX);
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_names_read_plainly() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_609_459_200), "2021-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400 + 3_661), "2000-02-29 01:01:01 UTC");
        assert_eq!(san_text("DnsName(\"localhost\")"), "localhost");
        assert_eq!(san_text("IpAddress(127.0.0.1)"), "127.0.0.1");
    }

    #[test]
    fn empty_or_broken_settings_say_what_is_missing() {
        let e = TlsOptions::builder().build().unwrap_err();
        assert!(e.to_string().contains("no CA certificate"), "{e}");
        let e = TlsOptions::builder().ca_pem("").unwrap_err();
        assert!(e.to_string().contains("BEGIN CERTIFICATE"), "{e}");
        let e = TlsOptions::builder().server_name("").unwrap_err();
        assert!(matches!(e, Error::Tls(_)));
    }
}
