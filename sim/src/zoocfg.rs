//! The real server's configuration file (`zoo.cfg`, as `QuorumPeerConfig` reads it), turned
//! into the model's [`Config`] and the addresses to serve, so a harness written for the
//! real server can start the model by changing the command only.

use std::time::Duration;

use crate::{Config, Whitelist};

/// A `zoo.cfg` read for the model: its [`Config`], the client address of each server, and
/// what the model does not act on.
///
/// ```
/// let cfg = zk_sim::ZooCfg::parse(
///     "tickTime=500\nclientPort=2191\ndataDir=/tmp/zk\n4lw.commands.whitelist=ruok,srvr\n\
///      autopurge.purgeInterval=1\n",
/// )
/// .unwrap();
/// assert_eq!(cfg.addrs, ["0.0.0.0:2191"]);
/// assert!(cfg.config.is_standalone());
/// assert_eq!(cfg.ignored, ["autopurge.purgeInterval"]);
/// ```
#[derive(Debug, Clone)]
pub struct ZooCfg {
    /// The model's configuration.
    pub config: Config,
    /// The client address of each server, in server order (`clientPortAddress:clientPort`
    /// for a standalone server; each `server.N` line's client address in an ensemble).
    pub addrs: Vec<String>,
    /// Keys read but not acted on by the model (they change nothing it models), in the
    /// file's order.
    pub ignored: Vec<String>,
    /// Keys the model cannot serve as the real server would (SASL without its JAAS file,
    /// store types other than PEM, JKS and PKCS#12, TLS versions other than 1.2 and 1.3),
    /// with why.
    pub unsupported: Vec<(String, &'static str)>,
    /// TLS on secure client ports, when the file asks for it with stores the model reads.
    pub tls: Option<CfgTls>,
    /// The JAAS file SASL logins are checked against
    /// (`java.security.auth.login.config`), when SASL is configured: its `Server`
    /// section's DigestLoginModule users ([`crate::jaas_digest_users`]).
    pub jaas: Option<String>,
}

/// The TLS a `zoo.cfg` asks for: the files to read (the model reads none itself) and the
/// secure address of each server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfgTls {
    /// Each server's secure client address, in server order.
    pub secure_addrs: Vec<String>,
    /// `ssl.keyStore.location`: the server's private key and certificate chain.
    pub key_store: String,
    /// The key store's format (`ssl.keyStore.type`, or its file's extension).
    pub key_store_type: StoreType,
    /// `ssl.keyStore.password`, which opens a JKS store's key or a PKCS#12 store.
    pub key_store_password: String,
    /// `ssl.trustStore.location`: the CA certificates client certificates must chain to.
    pub trust_store: Option<String>,
    /// The trust store's format.
    pub trust_store_type: StoreType,
    /// `ssl.trustStore.password`, which opens a PKCS#12 trust store.
    pub trust_store_password: String,
    /// `ssl.clientAuth`: `need` (the default), `want` or `none`.
    pub client_auth: String,
    /// The TLS versions served: `ssl.enabledProtocols`, else `ssl.protocol`, else TLS 1.2
    /// (ZooKeeper 3.8's default).
    pub protocols: Vec<TlsProtocol>,
}

/// A TLS version a secure client port may speak, by its Java name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsProtocol {
    /// `TLSv1.2`.
    Tls12,
    /// `TLSv1.3`.
    Tls13,
}

impl TlsProtocol {
    /// The version Java calls `name` (`TLSv1.2`, `TLSv1.3`); `None` for one the model does
    /// not serve.
    pub fn from_java(name: &str) -> Option<TlsProtocol> {
        match name.trim() {
            "TLSv1.2" => Some(TlsProtocol::Tls12),
            "TLSv1.3" => Some(TlsProtocol::Tls13),
            _ => None,
        }
    }
}

/// The format of a TLS store file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// PEM: certificates and a private key in text.
    Pem,
    /// A Java keystore (JKS).
    Jks,
    /// PKCS#12 (`.p12`, `.pfx`), Java's default keystore type.
    Pkcs12,
}

/// Why a `zoo.cfg` cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZooCfgError {
    /// A line is not `key=value`.
    #[error("line {line}: `{text}` is not key=value")]
    Syntax {
        /// The 1-based line.
        line: usize,
        /// The line.
        text: String,
    },
    /// A value the key cannot take.
    #[error("line {line}: {key}={value}: {why}")]
    Value {
        /// The 1-based line.
        line: usize,
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// What it must be.
        why: &'static str,
    },
    /// Neither `clientPort` nor a client address on every `server.N` line.
    #[error("no clientPort, and not every server.N line names a client port (`;port`)")]
    NoClientPort,
}

fn number<T: std::str::FromStr>(
    line: usize,
    key: &str,
    value: &str,
    why: &'static str,
) -> Result<T, ZooCfgError> {
    value.trim().parse().map_err(|_| ZooCfgError::Value {
        line,
        key: key.to_owned(),
        value: value.to_owned(),
        why,
    })
}

/// One `server.N=host:quorum:election[:role][;[clientHost:]clientPort]` line's client
/// address, if it names one.
fn server_client_addr(value: &str) -> Option<String> {
    let (_, client) = value.split_once(';')?;
    let client = client.trim();
    match client.rsplit_once(':') {
        Some((host, port)) => Some(format!("{host}:{port}")),
        None => Some(format!("0.0.0.0:{client}")),
    }
}

impl ZooCfg {
    /// Reads `text` as the real server reads `zoo.cfg`: `key=value` lines, `#` comments,
    /// blank lines; for a key given twice the last value holds.
    pub fn parse(text: &str) -> Result<ZooCfg, ZooCfgError> {
        let mut tick_ms = 2000u64;
        let mut min_timeout = None;
        let mut max_timeout = None;
        let mut client_port: Option<u16> = None;
        let mut client_host = "0.0.0.0".to_owned();
        let mut servers: Vec<(u32, Option<String>)> = Vec::new();
        let mut ignored = Vec::new();
        let mut unsupported = Vec::new();
        let mut whitelist = Whitelist::default_server();
        let mut extended_types = false;
        let mut sync_limit = 5u64;
        let mut data_dir = None;
        let mut max_cnxns = 60u32;
        let mut super_digest = None;
        let mut secure_port: Option<u16> = None;
        let mut sasl = false;
        let mut jaas = None;
        let mut secure_host = "0.0.0.0".to_owned();
        let mut ssl: std::collections::BTreeMap<String, String> = Default::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                return Err(ZooCfgError::Syntax {
                    line,
                    text: raw.to_owned(),
                });
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "tickTime" => tick_ms = number(line, key, value, "a number of milliseconds")?,
                "minSessionTimeout" => {
                    min_timeout = Some(number(line, key, value, "a number of milliseconds")?)
                }
                "maxSessionTimeout" => {
                    max_timeout = Some(number(line, key, value, "a number of milliseconds")?)
                }
                "clientPort" => client_port = Some(number(line, key, value, "a port")?),
                "clientPortAddress" => client_host = value.to_owned(),
                "dataDir" => data_dir = Some(value.to_owned()),
                "syncLimit" => sync_limit = number(line, key, value, "a number of ticks")?,
                "maxClientCnxns" => max_cnxns = number(line, key, value, "a number")?,
                "4lw.commands.whitelist" => whitelist = Whitelist::parse(value),
                "extendedTypesEnabled" | "zookeeper.extendedTypesEnabled" => {
                    extended_types = value.eq_ignore_ascii_case("true")
                }
                "DigestAuthenticationProvider.superDigest"
                | "zookeeper.DigestAuthenticationProvider.superDigest" => {
                    super_digest = Some(value.to_owned())
                }
                "secureClientPort" => secure_port = Some(number(line, key, value, "a port")?),
                "secureClientPortAddress" => secure_host = value.to_owned(),
                _ if key.starts_with("ssl.") || key.starts_with("zookeeper.ssl.") => {
                    ssl.insert(
                        key.trim_start_matches("zookeeper.").to_owned(),
                        value.to_owned(),
                    );
                }
                _ if key.starts_with("authProvider.") && value.contains("SASL") => sasl = true,
                "java.security.auth.login.config" => jaas = Some(value.to_owned()),
                _ if key.starts_with("server.") => {
                    let id = number(line, key, &key["server.".len()..], "server.N with a number")?;
                    servers.retain(|(n, _)| *n != id);
                    servers.push((id, server_client_addr(value)));
                }
                _ => ignored.push(key.to_owned()),
            }
        }
        let min = min_timeout.unwrap_or(2 * tick_ms);
        let max = max_timeout.unwrap_or(20 * tick_ms);
        servers.sort_by_key(|(id, _)| *id);
        let base = if servers.len() > 1 {
            Config::ensemble(servers.len())
        } else {
            Config::standalone()
        };
        let addrs: Vec<String> = if servers.len() > 1 {
            // One process serves every member, each on its own client port: the one its
            // server.N line names, else clientPort plus its place in the list.
            servers
                .iter()
                .enumerate()
                .map(|(i, (_, addr))| match (addr, client_port) {
                    (Some(a), _) => Ok(a.clone()),
                    (None, Some(port)) => Ok(format!("{client_host}:{}", port + i as u16)),
                    (None, None) => Err(ZooCfgError::NoClientPort),
                })
                .collect::<Result<_, _>>()?
        } else {
            match (client_port, servers.first().and_then(|(_, a)| a.clone())) {
                (Some(port), _) => vec![format!("{client_host}:{port}")],
                (None, Some(addr)) => vec![addr],
                (None, None) => return Err(ZooCfgError::NoClientPort),
            }
        };
        let ports: Vec<u16> = addrs
            .iter()
            .map(|a| {
                a.rsplit_once(':')
                    .and_then(|(_, p)| p.parse().ok())
                    .unwrap_or(0)
            })
            .collect();
        let tls = match secure_port {
            None => {
                unsupported.extend(
                    ssl.keys()
                        .map(|k| (k.clone(), "no secureClientPort: nothing serves TLS")),
                );
                None
            }
            Some(port) => {
                // A store's type is its `.type` key, else its file's extension, as
                // ZooKeeper's X509Util infers it (`.pem`, `.p12`/`.pfx`, else JKS).
                let kind = |type_key: &str, location_key: &str| {
                    let t = match ssl.get(type_key) {
                        Some(t) => t.to_ascii_uppercase(),
                        None => {
                            let l = ssl.get(location_key).map(|l| l.to_ascii_lowercase());
                            match l.as_deref() {
                                Some(l) if l.ends_with(".pem") => "PEM".into(),
                                Some(l) if l.ends_with(".p12") || l.ends_with(".pfx") => {
                                    "PKCS12".into()
                                }
                                _ => "JKS".into(),
                            }
                        }
                    };
                    match t.as_str() {
                        "PEM" => Some(StoreType::Pem),
                        "JKS" => Some(StoreType::Jks),
                        "PKCS12" => Some(StoreType::Pkcs12),
                        _ => None,
                    }
                };
                let named = ssl
                    .get("ssl.enabledProtocols")
                    .or(ssl.get("ssl.protocol"))
                    .map_or("TLSv1.2", |v| v.as_str());
                let mut protocols = Vec::new();
                for name in named.split(',').filter(|n| !n.trim().is_empty()) {
                    match TlsProtocol::from_java(name) {
                        Some(p) if !protocols.contains(&p) => protocols.push(p),
                        Some(_) => {}
                        None => unsupported.push((
                            format!("ssl.enabledProtocols={}", name.trim()),
                            "zk-sim serves TLSv1.2 and TLSv1.3",
                        )),
                    }
                }
                if protocols.is_empty() {
                    protocols.push(TlsProtocol::Tls12);
                }
                let key_store = ssl.get("ssl.keyStore.location").cloned();
                let key_type = kind("ssl.keyStore.type", "ssl.keyStore.location");
                let trust_type = kind("ssl.trustStore.type", "ssl.trustStore.location");
                match (key_store, key_type, trust_type) {
                    (Some(key_store), Some(key_store_type), Some(trust_store_type)) => {
                        Some(CfgTls {
                            secure_addrs: (0..addrs.len())
                                .map(|i| format!("{secure_host}:{}", port + i as u16))
                                .collect(),
                            key_store,
                            key_store_type,
                            key_store_password: ssl
                                .get("ssl.keyStore.password")
                                .cloned()
                                .unwrap_or_default(),
                            trust_store: ssl.get("ssl.trustStore.location").cloned(),
                            trust_store_password: ssl
                                .get("ssl.trustStore.password")
                                .cloned()
                                .unwrap_or_default(),
                            trust_store_type,
                            client_auth: ssl
                                .get("ssl.clientAuth")
                                .cloned()
                                .unwrap_or_else(|| "need".to_owned()),
                            protocols,
                        })
                    }
                    (None, ..) => {
                        unsupported.push((
                            "secureClientPort".to_owned(),
                            "TLS needs ssl.keyStore.location",
                        ));
                        None
                    }
                    _ => {
                        unsupported.push((
                            "secureClientPort".to_owned(),
                            "TLS is served from PEM, JKS and PKCS#12 stores",
                        ));
                        None
                    }
                }
            }
        };
        let mut config = base
            .tick(Duration::from_millis(tick_ms))
            .session_timeouts(Duration::from_millis(min), Duration::from_millis(max))
            .sync_limit(sync_limit)
            .extended_types(extended_types)
            .four_letter_words(whitelist)
            .max_client_cnxns(max_cnxns)
            .client_ports(&ports);
        if let Some(dir) = data_dir {
            config = config.data_dir(&dir);
        }
        if let Some(digest) = super_digest {
            config = config.super_digest(&digest);
        }
        if sasl && jaas.is_none() {
            unsupported.push((
                "authProvider".to_owned(),
                "SASL needs the JAAS file of its users (java.security.auth.login.config)",
            ));
        }
        Ok(ZooCfg {
            config,
            addrs,
            ignored,
            unsupported,
            tls,
            jaas: jaas.filter(|_| sasl),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ensemble_serves_each_member_on_its_own_client_port() {
        let cfg = ZooCfg::parse(
            "tickTime=200\nclientPort=2181\nsyncLimit=3\n\
             server.1=127.0.0.1:2888:3888;127.0.0.1:2191\n\
             server.2=127.0.0.1:2889:3889:participant;2192\n\
             server.3=127.0.0.1:2890:3890\n",
        )
        .unwrap();
        assert_eq!(cfg.config.servers(), 3);
        assert_eq!(
            cfg.addrs,
            ["127.0.0.1:2191", "0.0.0.0:2192", "0.0.0.0:2183"]
        );
    }

    #[test]
    fn bad_lines_are_named() {
        assert_eq!(
            ZooCfg::parse("tickTime=soon\nclientPort=1\n").unwrap_err(),
            ZooCfgError::Value {
                line: 1,
                key: "tickTime".into(),
                value: "soon".into(),
                why: "a number of milliseconds"
            }
        );
        assert!(matches!(
            ZooCfg::parse("clientPort\n"),
            Err(ZooCfgError::Syntax { line: 1, .. })
        ));
        assert_eq!(
            ZooCfg::parse("tickTime=100\n").unwrap_err(),
            ZooCfgError::NoClientPort
        );
    }

    #[test]
    fn tls_versions_are_read_as_java_names_them() {
        let versions = |keys: &str| {
            let text = format!(
                "clientPort=2181\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\n{keys}"
            );
            let cfg = ZooCfg::parse(&text).unwrap();
            let unsupported: Vec<String> = cfg.unsupported.into_iter().map(|(k, _)| k).collect();
            (cfg.tls.unwrap().protocols, unsupported)
        };
        use TlsProtocol::*;
        assert_eq!(versions(""), (vec![Tls12], vec![]));
        assert_eq!(versions("ssl.protocol=TLSv1.3\n"), (vec![Tls13], vec![]));
        assert_eq!(
            versions("ssl.protocol=TLSv1.3\nssl.enabledProtocols=TLSv1.3, TLSv1.2\n"),
            (vec![Tls13, Tls12], vec![])
        );
        assert_eq!(
            versions("ssl.enabledProtocols=TLSv1.1,TLSv1.2\n"),
            (
                vec![Tls12],
                vec!["ssl.enabledProtocols=TLSv1.1".to_string()]
            )
        );
    }

    #[test]
    fn secured_keys_are_read_or_reported() {
        // PEM stores: TLS is served.
        let cfg = ZooCfg::parse(
            "clientPort=2181\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\n\
             ssl.keyStore.type=PEM\nssl.trustStore.location=/ca.pem\nssl.clientAuth=want\n\
             authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
             someFutureKey=1\n",
        )
        .unwrap();
        let tls = cfg.tls.unwrap();
        assert_eq!(tls.secure_addrs, ["0.0.0.0:2281"]);
        assert_eq!(
            (tls.key_store.as_str(), tls.client_auth.as_str()),
            ("/k.pem", "want")
        );
        let keys: Vec<&str> = cfg.unsupported.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["authProvider"], "SASL without a JAAS file");
        assert_eq!(cfg.ignored, ["someFutureKey"]);
        assert_eq!(
            tls.protocols,
            [TlsProtocol::Tls12],
            "ZooKeeper 3.8's default"
        );
        // A Java keystore, named or known by its extension, is read as JKS; PKCS#12 is
        // reported, not served.
        for store in [
            "ssl.keyStore.location=/k.jks\nssl.keyStore.type=JKS",
            "ssl.keyStore.location=/k.jks",
        ] {
            let text = format!("clientPort=2181\nsecureClientPort=2281\n{store}\n");
            let cfg = ZooCfg::parse(&text).unwrap();
            assert_eq!(cfg.tls.unwrap().key_store_type, StoreType::Jks, "{store}");
        }
        // PKCS#12, named or known by its extension, with its passwords; a store type
        // nothing reads is reported, not served.
        for store in [
            "ssl.keyStore.location=/k.p12",
            "ssl.keyStore.location=/k.store\nssl.keyStore.type=pkcs12",
        ] {
            let text = format!(
                "clientPort=2181\nsecureClientPort=2281\n{store}\nssl.keyStore.password=k\n\
                 ssl.trustStore.location=/t.pfx\nssl.trustStore.password=t\n"
            );
            let tls = ZooCfg::parse(&text).unwrap().tls.unwrap();
            assert_eq!(
                (tls.key_store_type, tls.trust_store_type),
                (StoreType::Pkcs12, StoreType::Pkcs12),
                "{store}"
            );
            assert_eq!(
                (&*tls.key_store_password, &*tls.trust_store_password),
                ("k", "t")
            );
        }
        let cfg = ZooCfg::parse(
            "clientPort=2181\nsecureClientPort=2281\nssl.keyStore.location=/k\n\
             ssl.keyStore.type=BCFKS\n",
        )
        .unwrap();
        assert!(cfg.tls.is_none());
        assert_eq!(cfg.unsupported[0].0, "secureClientPort");
    }
}
