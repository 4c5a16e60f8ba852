//! Java keystores (JKS), read for the TCP front's TLS: the private key entry (its key,
//! protected by Sun's key protector, and certificate chain) and trusted certificates, as
//! `java.security.KeyStore` of type JKS lays them out. The store's integrity digest is not
//! checked: it only guards against a wrong store password, and a wrong key password
//! already fails the key's own check.

use zk_proto::digest::sha1;

/// What a keystore holds, as DER.
#[derive(Debug, Default)]
pub(crate) struct Store {
    /// The first private key entry: its PKCS#8 key and its certificate chain.
    pub(crate) private_key: Option<(Vec<u8>, Vec<Vec<u8>>)>,
    /// Every trusted certificate entry.
    pub(crate) trusted: Vec<Vec<u8>>,
}

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("the keystore is cut short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u16(&mut self) -> Result<usize, String> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `writeUTF` string (length, then modified UTF-8), skipped.
    fn skip_utf(&mut self) -> Result<(), String> {
        let n = self.u16()?;
        self.take(n).map(|_| ())
    }

    /// A length-prefixed byte block.
    fn block(&mut self) -> Result<Vec<u8>, String> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    /// A certificate: its type (`X.509`) then its DER.
    fn certificate(&mut self) -> Result<Vec<u8>, String> {
        self.skip_utf()?;
        self.block()
    }
}

/// One DER element: its tag, its contents, and what follows it.
fn der(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let bad = || "the protected key is not DER".to_owned();
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err(bad());
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b));
        rest = &rest[count..];
        len
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// The key a JKS private key entry protects (`EncryptedPrivateKeyInfo` with Sun's key
/// protector: a salt, the key XORed with a SHA-1 keystream of the password and salt, and
/// a SHA-1 check of the password and the key).
fn unprotect(protected: &[u8], password: &str) -> Result<Vec<u8>, String> {
    let (_, info, _) = der(protected)?;
    let (_, _algorithm, rest) = der(info)?;
    let (_, data, _) = der(rest)?;
    if data.len() < 40 {
        return Err("the protected key is too short".into());
    }
    let (salt, rest) = data.split_at(20);
    let (encrypted, check) = rest.split_at(rest.len() - 20);
    let pass: Vec<u8> = password
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    let mut key = Vec::with_capacity(encrypted.len());
    let mut block = salt.to_vec();
    while key.len() < encrypted.len() {
        block = sha1(&[pass.as_slice(), &block].concat()).to_vec();
        key.extend_from_slice(&block);
    }
    let plain: Vec<u8> = encrypted.iter().zip(&key).map(|(c, k)| c ^ k).collect();
    if sha1(&[pass.as_slice(), &plain].concat()) != check {
        return Err("the key store's key password is wrong (ssl.keyStore.password)".into());
    }
    Ok(plain)
}

/// Reads a JKS keystore; `password` opens its private key entry.
pub(crate) fn read(bytes: &[u8], password: &str) -> Result<Store, String> {
    let mut i = Input(bytes);
    if i.u32()? != 0xFEED_FEED {
        return Err("not a Java keystore (JKS): no FEEDFEED magic".into());
    }
    let version = i.u32()?;
    if version != 2 {
        return Err(format!("a JKS keystore of version {version}, not 2"));
    }
    let mut store = Store::default();
    for _ in 0..i.u32()? {
        let tag = i.u32()?;
        i.skip_utf()?; // the alias
        i.take(8)?; // the date
        match tag {
            1 => {
                let protected = i.block()?;
                let chain = (0..i.u32()?)
                    .map(|_| i.certificate())
                    .collect::<Result<Vec<_>, _>>()?;
                if store.private_key.is_none() {
                    store.private_key = Some((unprotect(&protected, password)?, chain));
                }
            }
            2 => store.trusted.push(i.certificate()?),
            other => return Err(format!("a keystore entry of unknown kind {other}")),
        }
    }
    Ok(store)
}
