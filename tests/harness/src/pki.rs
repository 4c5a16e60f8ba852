//! Certificates for TLS tests, made fresh by each test: a CA, server certificates for the
//! loopback names, client certificates for mutual TLS and x509 identities, and the bad ones
//! (expired, from another CA, for another name).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, date_time_ymd,
};

use crate::HarnessError;

/// A certificate and its private key, both PEM (the key as PKCS#8).
#[derive(Debug, Clone)]
pub struct CertKey {
    /// The certificate, `BEGIN CERTIFICATE`.
    pub cert_pem: String,
    /// Its key, `BEGIN PRIVATE KEY`.
    pub key_pem: String,
}

impl CertKey {
    /// Key then certificate in one file: the PEM key store ZooKeeper reads.
    pub fn key_store_pem(&self) -> String {
        format!("{}{}", self.key_pem, self.cert_pem)
    }
}

/// Whether a certificate is valid today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From 2020 to 2100.
    Current,
    /// Only during 2020.
    Expired,
}

/// A test certificate authority with ECDSA P-256 keys.
///
/// ```no_run
/// let pki = zk_harness::Pki::new("test CA").unwrap();
/// let server = pki.server_cert().unwrap();
/// let alice = pki.client_cert("alice").unwrap();
/// # let _ = (server, alice);
/// ```
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

fn pki_error(e: rcgen::Error) -> HarnessError {
    HarnessError::Io(std::io::Error::other(format!(
        "cannot make a test certificate: {e}"
    )))
}

impl Pki {
    /// A new CA whose certificate's common name is `name`.
    pub fn new(name: &str) -> Result<Pki, HarnessError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2100, 1, 1);
        let key = KeyPair::generate().map_err(pki_error)?;
        let ca = CertifiedIssuer::self_signed(params, key).map_err(pki_error)?;
        Ok(Pki { ca })
    }

    /// The CA certificate, PEM: the trust store of clients and servers.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A server certificate for `localhost`, `127.0.0.1` and `::1`.
    pub fn server_cert(&self) -> Result<CertKey, HarnessError> {
        self.leaf(
            "zookeeper",
            &["localhost", "127.0.0.1", "::1"],
            Validity::Current,
        )
    }

    /// A client certificate whose subject is `CN=<common_name>`: with the server's x509
    /// provider, the session's identity is `x509:CN=<common_name>`.
    pub fn client_cert(&self, common_name: &str) -> Result<CertKey, HarnessError> {
        self.leaf(common_name, &[], Validity::Current)
    }

    /// A certificate signed by this CA, with subject `CN=<common_name>`, the given subject
    /// alternative names (DNS names or IP addresses) and validity. It serves both as a server
    /// and as a client certificate.
    pub fn leaf(
        &self,
        common_name: &str,
        names: &[&str],
        validity: Validity,
    ) -> Result<CertKey, HarnessError> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).map_err(pki_error)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let (from, to) = match validity {
            Validity::Current => (date_time_ymd(2020, 1, 1), date_time_ymd(2100, 1, 1)),
            Validity::Expired => (date_time_ymd(2020, 1, 1), date_time_ymd(2021, 1, 1)),
        };
        params.not_before = from;
        params.not_after = to;
        let key = KeyPair::generate().map_err(pki_error)?;
        let cert = params.signed_by(&key, &self.ca).map_err(pki_error)?;
        Ok(CertKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
