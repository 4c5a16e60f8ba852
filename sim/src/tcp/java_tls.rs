//! What ZooKeeper's Java TLS takes and rustls alone does not: certificates of X.509
//! version 1, and EC private keys without their public key.
//!
//! Test harnesses make such certificates (Kazoo's makes its server's and its client's
//! without extensions, so version 1), and the real server serves and accepts them. rustls
//! reads version 3 only, for a server's own certificate and for a client's. Here, a
//! version-1 certificate is read by hand, as far as TLS needs it: its key, its issuer, its
//! validity and its signature.
//!
//! - [`V1Tolerant`] wraps webpki's client verifier: a version-3 chain is webpki's to judge,
//!   as before; a version-1 client certificate is accepted when a trust anchor signed it
//!   directly and now is within its validity, and its handshake signature is checked with
//!   its key.
//! - [`certified_key`] pairs a server's chain with its key, also when its certificate is
//!   of version 1, which rustls' single-certificate setup refuses, and when its key is an
//!   EC key that Java wrote without its public half, which ring refuses.

use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, SubjectPublicKeyInfoDer, UnixTime,
};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme,
};

/// One DER element: its tag, its contents, and the whole element with its header.
#[derive(Clone, Copy)]
struct Element<'a> {
    tag: u8,
    contents: &'a [u8],
    whole: &'a [u8],
}

/// Takes the next DER element off `input`; `None` if it is malformed.
fn element<'a>(input: &mut &'a [u8]) -> Option<Element<'a>> {
    let all = *input;
    let (&tag, rest) = all.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tags: no certificate field uses one
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return None;
    }
    let header = all.len() - rest.len();
    *input = &rest[len..];
    Some(Element {
        tag,
        contents: &rest[..len],
        whole: &all[..header + len],
    })
}

/// Takes the next element off `input` if it has tag `tag`.
fn expect<'a>(input: &mut &'a [u8], tag: u8) -> Option<Element<'a>> {
    element(input).filter(|e| e.tag == tag)
}

const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const VERSION: u8 = 0xa0;

/// What TLS needs of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cert<'a> {
    /// X.509 version 1: no version field, nothing after the key.
    pub(crate) v1: bool,
    /// The signed part, whole.
    tbs: &'a [u8],
    /// The signature's algorithm identifier, its contents.
    signature_alg: &'a [u8],
    /// The signature.
    signature: &'a [u8],
    /// The issuer's and the subject's names, whole.
    issuer: &'a [u8],
    subject: &'a [u8],
    /// The validity, in seconds since the epoch.
    not_before: i64,
    not_after: i64,
    /// The subject's public key info, whole; its algorithm identifier, its contents; and
    /// the key.
    spki: &'a [u8],
    key_alg: &'a [u8],
    key: &'a [u8],
}

/// Reads a certificate; `None` if it is not one.
pub(crate) fn parse(der: &[u8]) -> Option<Cert<'_>> {
    let mut input = der;
    let cert = expect(&mut input, SEQUENCE).filter(|_| input.is_empty())?;
    let mut body = cert.contents;
    let tbs = expect(&mut body, SEQUENCE)?;
    let signature_alg = expect(&mut body, SEQUENCE)?;
    let signature = expect(&mut body, BIT_STRING).filter(|_| body.is_empty())?;
    let signature = signature.contents.strip_prefix(&[0])?;
    let mut fields = tbs.contents;
    let mut serial = element(&mut fields)?;
    let v1 = serial.tag != VERSION;
    if !v1 {
        serial = element(&mut fields)?;
    }
    if serial.tag != INTEGER {
        return None;
    }
    // The algorithm inside the signed part is the one outside it.
    expect(&mut fields, SEQUENCE).filter(|a| a.contents == signature_alg.contents)?;
    let issuer = expect(&mut fields, SEQUENCE)?;
    let validity = expect(&mut fields, SEQUENCE)?;
    let subject = expect(&mut fields, SEQUENCE)?;
    let spki = expect(&mut fields, SEQUENCE)?;
    if v1 && !fields.is_empty() {
        return None; // unique ids and extensions come with versions 2 and 3 only
    }
    let mut times = validity.contents;
    let not_before = time(element(&mut times)?)?;
    let not_after = time(element(&mut times)?)?;
    let mut key = spki.contents;
    let key_alg = expect(&mut key, SEQUENCE)?;
    let bits = expect(&mut key, BIT_STRING).filter(|_| key.is_empty())?;
    Some(Cert {
        v1,
        tbs: tbs.whole,
        signature_alg: signature_alg.contents,
        signature,
        issuer: issuer.whole,
        subject: subject.whole,
        not_before,
        not_after,
        spki: spki.whole,
        key_alg: key_alg.contents,
        key: bits.contents.strip_prefix(&[0])?,
    })
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950 to 2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`) in seconds since the epoch.
fn time(e: Element<'_>) -> Option<i64> {
    let text = std::str::from_utf8(e.contents).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (e.tag, digits.len()) {
        (0x17, 12) => {
            let yy: i64 = digits[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (0x18, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| rest[i..i + 2].parse::<i64>().ok();
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    // Days since 1970-01-01 of a date in the proleptic Gregorian calendar.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Whether `signature` over `message` is good for the key `key` (`key_alg` its algorithm
/// identifier's contents) with `signature_alg`, by one of `algs`.
fn signed(
    algs: &WebPkiSupportedAlgorithms,
    key_alg: &[u8],
    key: &[u8],
    signature_alg: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    algs.all.iter().any(|a| {
        a.public_key_alg_id().as_ref() == key_alg
            && a.signature_alg_id().as_ref() == signature_alg
            && a.verify_signature(key, message, signature).is_ok()
    })
}

/// The server's certificate chain and its private key, checked to belong together.
pub(crate) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let cert = chain
        .first()
        .and_then(|c| parse(c))
        .ok_or("the key store's first certificate cannot be read")?;
    let loaded = match provider.key_provider.load_private_key(key.clone_key()) {
        Ok(loaded) => loaded,
        // Java writes EC keys without their public half, which ring needs: it is the
        // certificate's.
        Err(e) => match with_public_key(key.secret_der(), &cert) {
            Some(completed) => provider
                .key_provider
                .load_private_key(PrivateKeyDer::Pkcs8(completed.into()))
                .map_err(|e| e.to_string())?,
            None => return Err(e.to_string()),
        },
    };
    let matches = loaded
        .public_key()
        .is_some_and(|spki| spki.as_ref() == cert.spki);
    match matches {
        true => Ok(CertifiedKey::new(chain, loaded)),
        false => Err("the private key does not belong to the certificate".into()),
    }
}

/// A DER element of `tag` around `contents`.
fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// An EC private key in PKCS#8 (RFC 5915) without its public key, as Java writes it, with
/// the public key of `cert` put in and the private scalar at the curve's size; `None` if
/// `pkcs8` is not such a key.
fn with_public_key(pkcs8: &[u8], cert: &Cert<'_>) -> Option<Vec<u8>> {
    let mut input = pkcs8;
    let info = expect(&mut input, SEQUENCE).filter(|_| input.is_empty())?;
    let mut fields = info.contents;
    let version = expect(&mut fields, INTEGER)?;
    let alg = expect(&mut fields, SEQUENCE).filter(|a| a.contents == cert.key_alg)?;
    let inner = expect(&mut fields, OCTET_STRING)?;
    let mut ec = inner.contents;
    let ec = expect(&mut ec, SEQUENCE).filter(|_| ec.is_empty())?;
    let mut ec_fields = ec.contents;
    let ec_version = expect(&mut ec_fields, INTEGER)?;
    let scalar = expect(&mut ec_fields, OCTET_STRING)?;
    let params = match element(&mut ec_fields) {
        None => None,
        Some(p) if p.tag == 0xa0 && ec_fields.is_empty() => Some(p),
        Some(_) => return None, // a public key is there already, or something unknown
    };
    // An uncompressed point: 0x04, then both coordinates at the curve's size.
    let size = cert.key.len().checked_sub(1)? / 2;
    if cert.key.first() != Some(&0x04) || size == 0 {
        return None;
    }
    let digits = scalar.contents;
    let digits = &digits[digits.iter().take_while(|b| **b == 0).count()..];
    if digits.len() > size {
        return None;
    }
    let mut sized = vec![0; size - digits.len()];
    sized.extend_from_slice(digits);
    let mut public = vec![0];
    public.extend_from_slice(cert.key);
    let mut body = ec_version.whole.to_vec();
    body.extend(der(OCTET_STRING, &sized));
    if let Some(params) = params {
        body.extend_from_slice(params.whole);
    }
    body.extend(der(0xa1, &der(BIT_STRING, &public)));
    let mut outer = version.whole.to_vec();
    outer.extend_from_slice(alg.whole);
    outer.extend(der(OCTET_STRING, &der(SEQUENCE, &body)));
    Some(der(SEQUENCE, &outer))
}

/// webpki's client verifier, which also takes version-1 client certificates that a trust
/// anchor signed directly, as Java does.
#[derive(Debug)]
pub(crate) struct V1Tolerant {
    inner: Arc<dyn ClientCertVerifier>,
    /// The trust anchors, as DER.
    roots: Vec<CertificateDer<'static>>,
    algs: WebPkiSupportedAlgorithms,
}

impl V1Tolerant {
    pub(crate) fn new(
        inner: Arc<dyn ClientCertVerifier>,
        roots: Vec<CertificateDer<'static>>,
        algs: WebPkiSupportedAlgorithms,
    ) -> V1Tolerant {
        V1Tolerant { inner, roots, algs }
    }

    fn verify_v1(&self, cert: &Cert<'_>, now: UnixTime) -> Result<(), rustls::Error> {
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if now < cert.not_before {
            return Err(CertificateError::NotValidYet.into());
        }
        if now > cert.not_after {
            return Err(CertificateError::Expired.into());
        }
        let mut issuer_known = false;
        for root in self.roots.iter().filter_map(|r| parse(r)) {
            if root.subject != cert.issuer {
                continue;
            }
            issuer_known = true;
            let (alg, message, sig) = (cert.signature_alg, cert.tbs, cert.signature);
            if signed(&self.algs, root.key_alg, root.key, alg, message, sig) {
                return Ok(());
            }
        }
        Err(match issuer_known {
            true => CertificateError::BadSignature,
            false => CertificateError::UnknownIssuer,
        }
        .into())
    }

    /// Checks a handshake signature with a version-1 certificate's key (for TLS 1.2, any
    /// algorithm the scheme maps to that fits the key, as rustls does).
    fn verify_handshake(
        &self,
        cert: &Cert<'_>,
        message: &[u8],
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if tls13 {
            let spki = SubjectPublicKeyInfoDer::from(cert.spki);
            return rustls::crypto::verify_tls13_signature_with_raw_key(
                message, &spki, dss, &self.algs,
            );
        }
        let good = self
            .algs
            .mapping
            .iter()
            .filter(|(scheme, _)| *scheme == dss.scheme)
            .flat_map(|(_, algs)| algs.iter())
            .any(|a| {
                a.public_key_alg_id().as_ref() == cert.key_alg
                    && a.verify_signature(cert.key, message, dss.signature())
                        .is_ok()
            });
        match good {
            true => Ok(HandshakeSignatureValid::assertion()),
            false => Err(CertificateError::BadSignature.into()),
        }
    }
}

impl ClientCertVerifier for V1Tolerant {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match parse(end_entity) {
            Some(cert) if cert.v1 => {
                self.verify_v1(&cert, now)?;
                Ok(ClientCertVerified::assertion())
            }
            _ => self
                .inner
                .verify_client_cert(end_entity, intermediates, now),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match parse(cert) {
            Some(c) if c.v1 => self.verify_handshake(&c, message, dss, false),
            _ => self.inner.verify_tls12_signature(message, cert, dss),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match parse(cert) {
            Some(c) if c.v1 => self.verify_handshake(&c, message, dss, true),
            _ => self.inner.verify_tls13_signature(message, cert, dss),
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_rustls::rustls::pki_types::pem::PemObject;

    fn cert(pem: &[u8]) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem).expect("a PEM certificate")
    }

    const CA: &[u8] = include_bytes!("../../tests/data/tls-v1/ca.pem");
    const SERVER: &[u8] = include_bytes!("../../tests/data/tls-v1/server.pem");
    const CLIENT: &[u8] = include_bytes!("../../tests/data/tls-v1/client.pem");
    const CLIENT_KEY: &[u8] = include_bytes!("../../tests/data/tls-v1/client.key");
    const FORGED: &[u8] = include_bytes!("../../tests/data/tls-v1/forged.pem");

    fn verifier() -> V1Tolerant {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert(CA)).expect("the CA");
        let webpki = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            provider.clone(),
        )
        .build()
        .expect("a verifier");
        V1Tolerant::new(
            webpki,
            vec![cert(CA)],
            provider.signature_verification_algorithms,
        )
    }

    #[test]
    fn a_version_1_client_certificate_is_judged_by_its_signer_and_its_dates() {
        let v = verifier();
        let client = cert(CLIENT);
        let parsed = parse(&client).expect("a certificate");
        assert!(parsed.v1);
        assert!(!parse(&cert(CA)).expect("the CA").v1);
        // 2030, inside both certificates' validity.
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_900_000_000));
        assert!(v.verify_client_cert(&client, &[], now).is_ok());
        // Another CA of the same name signed this one: the signature does not hold.
        let forged = v.verify_client_cert(&cert(FORGED), &[], now);
        assert_eq!(
            forged.err(),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::BadSignature
            ))
        );
        // Before and after its validity.
        let early = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_000_000_000));
        let late = UnixTime::since_unix_epoch(std::time::Duration::from_secs(5_000_000_000));
        assert_eq!(
            v.verify_client_cert(&client, &[], early).err(),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet
            ))
        );
        assert_eq!(
            v.verify_client_cert(&client, &[], late).err(),
            Some(rustls::Error::InvalidCertificate(CertificateError::Expired))
        );
        // Signed by nobody the server trusts.
        let stranger = V1Tolerant::new(v.inner.clone(), vec![cert(FORGED)], v.algs);
        assert_eq!(
            stranger.verify_client_cert(&client, &[], now).err(),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        );
    }

    #[test]
    fn a_version_1_server_certificate_is_served_with_its_own_key_only() {
        let provider = rustls::crypto::ring::default_provider();
        let key = || PrivateKeyDer::from_pem_slice(SERVER).expect("the server's key");
        assert!(certified_key(vec![cert(SERVER)], key(), &provider).is_ok());
        let other = PrivateKeyDer::from_pem_slice(CLIENT_KEY).expect("the client's key");
        let e = certified_key(vec![cert(SERVER)], other, &provider).err();
        assert!(e.is_some_and(|e| e.contains("does not belong")));
    }

    #[test]
    fn times_read_as_the_calendar_says() {
        let utc = |s: &str| {
            time(Element {
                tag: 0x17,
                contents: s.as_bytes(),
                whole: &[],
            })
        };
        let general = |s: &str| {
            time(Element {
                tag: 0x18,
                contents: s.as_bytes(),
                whole: &[],
            })
        };
        assert_eq!(utc("700101000000Z"), Some(0));
        assert_eq!(utc("000229120000Z"), Some(951_825_600));
        assert_eq!(general("20261207053000Z"), Some(1_796_621_400));
        assert_eq!(utc("491231235959Z"), Some(2_524_607_999));
        assert_eq!(general("19500101000000Z"), Some(-631_152_000));
        for bad in [
            "7001010000Z",
            "700101000000",
            "701301000000Z",
            "70010100000aZ",
        ] {
            assert_eq!(utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn malformed_der_is_refused_without_panicking() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x05, 0x30],
            &[0x1f, 0x01, 0x00],
            &[0x30, 0x82, 0xff, 0xff, 0x00],
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
