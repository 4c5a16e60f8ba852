//! zk-sim's TLS as a drop-in for a real server's: stores and certificates as Java writes
//! them, judged against the real server and the real other library where they can show it.

use std::time::Duration;

use zk_sim::SimServer;
use zk_tokio::{Client, CreateOptions};

/// A standalone zk-sim on loopback, plain and with `tls` on a secure port.
async fn serve_tls(tls: zk_sim::ServerTls) -> SimServer {
    let any = ["127.0.0.1:0"];
    let config = zk_sim::Config::standalone();
    SimServer::bind_tls(config, &any, &any, tls).await.unwrap()
}

/// A session over `zk`'s secure port with `tls` writes `path` and reads it back.
async fn writes_and_reads_over_tls(zk: &SimServer, tls: zk_tokio::TlsOptions, path: &str) {
    let c = Client::builder(&zk.secure_connect_string().unwrap())
        .tls(tls)
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    c.create(path, "over tls", &CreateOptions::ephemeral())
        .await
        .unwrap();
    assert_eq!(&c.get_data(path).await.unwrap().0[..], b"over tls");
    c.close().await;
}

/// Runs Java's `keytool` with `args`; its output.
fn keytool(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("keytool")
        .args(args)
        .output()
        .expect("keytool, from the JRE the real servers run on");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A Java keystore made by `keytool` (JKS, its key protected by the store's password)
/// serves TLS on zk-sim as ZooKeeper's `ssl.keyStore.type=JKS` would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_java_keystore_serves_tls_on_zk_sim() {
    let dir = std::env::temp_dir().join(format!("zk-sim-jks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("keystore.jks");
    let store_path = store.to_str().unwrap();
    keytool(&[
        "-genkeypair",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-alias",
        "server",
        "-storetype",
        "JKS",
        "-keystore",
        store_path,
        "-storepass",
        "apassword",
        "-keypass",
        "apassword",
        "-dname",
        "CN=localhost",
        "-ext",
        "SAN=ip:127.0.0.1",
        "-validity",
        "2",
    ]);
    let cert_pem = keytool(&[
        "-exportcert",
        "-rfc",
        "-alias",
        "server",
        "-keystore",
        store_path,
        "-storepass",
        "apassword",
    ]);
    let jks = std::fs::read(&store).unwrap();
    // A wrong password is told as such.
    let e = zk_sim::ServerTls::from_jks(&jks, "wrong", None, zk_sim::ClientAuth::None).unwrap_err();
    assert!(e.to_string().contains("password"), "{e}");
    let tls =
        zk_sim::ServerTls::from_jks(&jks, "apassword", None, zk_sim::ClientAuth::None).unwrap();
    let zk = serve_tls(tls).await;
    let trust = zk_tokio::TlsOptions::builder()
        .ca_pem(cert_pem)
        .unwrap()
        .build()
        .unwrap();
    writes_and_reads_over_tls(&zk, trust, "/jks").await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kazoo's own harness makes X.509 version-1 certificates (no extensions) for the server
/// and the client. The real server (Java) serves and accepts them; so does zk-sim, and both
/// refuse a version-1 client certificate that another CA of the same name signed. Both speak
/// TLS 1.2 only by default (ZooKeeper 3.8's `ssl.protocol`), also to a client offering 1.3;
/// zk-sim told to serve TLS 1.3 as well does the same over 1.3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_certificates_are_served_alike_to_kazoo_by_a_real_server_and_zk_sim() {
    use zk_harness::{CertKey, ClientAuth, ServerOptions, ServerTls, ZkServer};
    use zk_tests::interop;
    let Some(python) = interop::kazoo() else {
        return;
    };
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/tests/data/tls-v1");
    let read = |name: &str| std::fs::read_to_string(data.join(name)).unwrap();
    let server_pem = read("server.pem");
    let at = server_pem.find("-----BEGIN CERTIFICATE-----").unwrap();
    let tls = ServerTls {
        server: CertKey {
            key_pem: server_pem[..at].to_string(),
            cert_pem: server_pem[at..].to_string(),
        },
        trust_pem: read("ca.pem"),
        client_auth: ClientAuth::Need,
    };
    let real = ZkServer::standalone_with(ServerOptions::default().tls(tls)).unwrap();
    let model_tls = || {
        zk_sim::ServerTls::from_pem(
            server_pem.as_bytes(),
            Some(read("ca.pem").as_bytes()),
            zk_sim::ClientAuth::Need,
        )
        .unwrap()
    };
    let model = serve_tls(model_tls()).await;
    let both = [zk_sim::TlsProtocol::Tls12, zk_sim::TlsProtocol::Tls13];
    let model_13 = serve_tls(model_tls().protocols(&both).unwrap()).await;
    // Kazoo makes its own SSLContext; the script hands it one capped at a TLS version.
    let script = r#"
import ssl, sys, types
import kazoo.handlers.utils as utils
hosts, data, cert, version = sys.argv[1:5]
def capped(*args, **kwargs):
    ctx = ssl.SSLContext(*args, **kwargs)
    ctx.maximum_version = getattr(ssl.TLSVersion, version)
    return ctx
utils.ssl = types.SimpleNamespace(**{n: getattr(ssl, n) for n in dir(ssl) if not n.startswith("__")})
utils.ssl.SSLContext = capped
from kazoo.client import KazooClient
zk = KazooClient(hosts=hosts, use_ssl=True, keyfile=data + "/client.key",
                 certfile=data + "/" + cert, ca=data + "/ca.pem", timeout=4)
try:
    zk.start(timeout=4)
except Exception as e:
    print("REFUSED", type(e).__name__)
    sys.exit(0)
zk.create("/v1-" + version, b"kazoo", ephemeral=True)
assert zk.get("/v1-" + version)[0] == b"kazoo"
print("OK", zk._connection._socket.version())
zk.stop()
"#;
    let tls_12_only = [
        "client.pem TLSv1_2 OK TLSv1_2",
        "client.pem TLSv1_3 OK TLSv1_2",
        "forged.pem TLSv1_2 REFUSED",
        "forged.pem TLSv1_3 REFUSED",
    ];
    let mut with_13 = tls_12_only;
    with_13[1] = "client.pem TLSv1_3 OK TLSv1_3";
    for (name, hosts, want) in [
        ("real", real.secure_connect_string().unwrap(), tls_12_only),
        (
            "zk-sim",
            model.secure_connect_string().unwrap(),
            tls_12_only,
        ),
        (
            "zk-sim with TLS 1.3",
            model_13.secure_connect_string().unwrap(),
            with_13,
        ),
    ] {
        let mut outcomes = Vec::new();
        for cert in ["client.pem", "forged.pem"] {
            for version in ["TLSv1_2", "TLSv1_3"] {
                let args = [hosts.as_str(), data.to_str().unwrap(), cert, version];
                let out = interop::python(&python, script, &args).output().unwrap();
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "{name} {cert} {version}: {stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                // `OK TLSv1.3` (the version spoken) or `REFUSED KazooTimeoutError`.
                let said = stdout.lines().last().unwrap_or_default();
                let said = said.replace("TLSv1.", "TLSv1_");
                let said = said.replace("KazooTimeoutError", "");
                outcomes.push(format!("{cert} {version} {}", said.trim()));
            }
        }
        assert_eq!(outcomes, want, "{name}");
    }
}

/// PKCS#12 stores as Java's `keytool` writes them (its default keystore type) serve TLS on
/// zk-sim as ZooKeeper's `ssl.keyStore.type=PKCS12` and `ssl.trustStore.type=PKCS12`
/// would: the server's key and certificate from one, the CA that signs client
/// certificates from the other, each opened with its own password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs12_stores_serve_tls_on_zk_sim() {
    use zk_sim::{ClientAuth, StoreType, TlsStore};
    let dir = std::env::temp_dir().join(format!("zk-sim-p12-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("server.p12");
    let trust = dir.join("trust.p12");
    let (keys_path, trust_path) = (keys.to_str().unwrap(), trust.to_str().unwrap());
    keytool(&[
        "-genkeypair",
        "-keyalg",
        "EC",
        "-groupname",
        "secp256r1",
        "-alias",
        "server",
        "-storetype",
        "PKCS12",
        "-keystore",
        keys_path,
        "-storepass",
        "keypass",
        "-dname",
        "CN=localhost",
        "-ext",
        "SAN=ip:127.0.0.1",
        "-validity",
        "2",
    ]);
    let server_cert = keytool(&[
        "-exportcert",
        "-rfc",
        "-alias",
        "server",
        "-keystore",
        keys_path,
        "-storepass",
        "keypass",
    ]);
    // The CA of the clients' certificates, in a trust store of its own password.
    let pki = zk_harness::Pki::new("zk-sim pkcs12 CA").unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    keytool(&[
        "-importcert",
        "-noprompt",
        "-alias",
        "clients",
        "-file",
        ca.to_str().unwrap(),
        "-storetype",
        "PKCS12",
        "-keystore",
        trust_path,
        "-storepass",
        "trustpass",
    ]);
    let (keys, trust) = (
        std::fs::read(&keys).unwrap(),
        std::fs::read(&trust).unwrap(),
    );
    // A wrong password is told as such.
    let wrong = zk_sim::ServerTls::from_stores(
        TlsStore::new(StoreType::Pkcs12, &keys, "wrong"),
        None,
        ClientAuth::None,
    )
    .unwrap_err();
    assert!(wrong.to_string().contains("password"), "{wrong}");
    let tls = zk_sim::ServerTls::from_stores(
        TlsStore::new(StoreType::Pkcs12, &keys, "keypass"),
        Some(TlsStore::new(StoreType::Pkcs12, &trust, "trustpass")),
        ClientAuth::Need,
    )
    .unwrap();
    let zk = serve_tls(tls).await;
    let client = pki.client_cert("alice").unwrap();
    let options = |with_cert: bool| {
        let b = zk_tokio::TlsOptions::builder()
            .ca_pem(server_cert.clone())
            .unwrap();
        let b = match with_cert {
            true => b
                .client_cert_pem(client.cert_pem.clone(), client.key_pem.clone())
                .unwrap(),
            false => b,
        };
        b.build().unwrap()
    };
    writes_and_reads_over_tls(&zk, options(true), "/p12").await;
    // The trust store's CA is the only way in.
    let refused = Client::builder(&zk.secure_connect_string().unwrap())
        .tls(options(false))
        .connect_timeout(Duration::from_secs(3))
        .connect()
        .await;
    assert!(refused.is_err(), "a client without a certificate got in");
    let _ = std::fs::remove_dir_all(&dir);
}
