//! A client from the command line's options.

use anyhow::{Context, Result};
use zk_tokio::{Client, TlsOptions};

use crate::Global;

/// Connects as the options say; the error names what failed per host.
pub async fn connect(g: &Global) -> Result<Client> {
    let mut builder = Client::builder(&g.server)
        .session_timeout(g.session_timeout())
        .connect_timeout(g.connect_timeout());
    if let Some(chroot) = &g.chroot {
        builder = builder.chroot(chroot);
    }
    if let Some(auth) = &g.auth {
        builder = builder.auth("digest", auth.clone().into_bytes());
    }
    if let Some(tls) = tls(g)? {
        builder = builder.tls(tls);
    }
    if let (Some(user), Some(password)) = (&g.sasl_user, &g.sasl_password) {
        builder = builder.sasl_digest(user, password);
    }
    Ok(builder.connect().await?)
}

fn tls(g: &Global) -> Result<Option<TlsOptions>> {
    let Some(ca) = &g.tls_ca else {
        if g.tls_cert.is_some() || g.tls_server_name.is_some() {
            anyhow::bail!("--tls-cert and --tls-server-name need --tls-ca");
        }
        return Ok(None);
    };
    let read = |p: &std::path::Path| {
        std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let mut b = TlsOptions::builder().ca_pem(read(ca)?)?;
    if let (Some(cert), Some(key)) = (&g.tls_cert, &g.tls_key) {
        b = b.client_cert_pem(read(cert)?, read(key)?)?;
    }
    if let Some(name) = &g.tls_server_name {
        b = b.server_name(name)?;
    }
    Ok(Some(b.build()?))
}
