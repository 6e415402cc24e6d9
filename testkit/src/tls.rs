//! TLS for the tests: a certificate authority of their own, server
//! certificates it signs (valid, for another name, expired), and a TLS
//! front that puts any plain stand-in (Gitea, the control plane, a canned
//! server) behind HTTPS, so the clients provgate builds are tested against
//! real handshakes and real certificate failures. The real registry speaks
//! TLS itself ([`crate::registry::Registry::start_tls`]).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA of the tests' own, and a directory holding its PEM and what it signs.
pub struct Pki {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: tempfile::TempDir,
}

/// A server certificate and its key, as PEM files and as DER.
pub struct ServerCert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, "provgate test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        let dir = tempfile::Builder::new()
            .prefix("provgate-pki-")
            .tempdir()
            .expect("tempdir");
        std::fs::write(dir.path().join("ca.pem"), issuer.pem()).expect("write the CA");
        Pki { issuer, dir }
    }

    /// The CA certificate as a PEM file: what `--ca-file` is given.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A certificate for `names` (DNS names or IP addresses), valid from
    /// yesterday for a year.
    pub fn server(&self, names: &[&str]) -> ServerCert {
        let now = time::OffsetDateTime::now_utc();
        self.sign(names, now - time::Duration::days(1), now + time::Duration::days(365))
    }

    /// A certificate for `names` that expired yesterday.
    pub fn expired(&self, names: &[&str]) -> ServerCert {
        let now = time::OffsetDateTime::now_utc();
        self.sign(names, now - time::Duration::days(30), now - time::Duration::days(1))
    }

    fn sign(&self, names: &[&str], not_before: time::OffsetDateTime, not_after: time::OffsetDateTime) -> ServerCert {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("server params");
        params.distinguished_name.push(DnType::CommonName, names[0].clone());
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &self.issuer).expect("server certificate");
        let stem = format!("{}-{}", names[0].replace(['.', ':'], "_"), not_after.unix_timestamp());
        let (cert_file, key_file) = (
            self.dir.path().join(format!("{stem}.crt")),
            self.dir.path().join(format!("{stem}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).expect("write the certificate");
        std::fs::write(&key_file, key.serialize_pem()).expect("write the key");
        ServerCert {
            cert_file,
            key_file,
            cert: cert.der().clone(),
            key: key.serialize_der(),
        }
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

/// HTTPS on `127.0.0.1:PORT` in front of a plain server: each connection's
/// TLS is ended here and its bytes copied to and from `upstream`.
pub struct TlsFront {
    addr: SocketAddr,
}

impl TlsFront {
    pub fn start(upstream: SocketAddr, cert: &ServerCert) -> TlsFront {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.cert.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key.clone())),
            )
            .expect("server TLS config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        // A client that refuses the certificate ends here.
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    });
                }
            });
        });
        TlsFront { addr }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `https://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("https://{}", self.addr)
    }
}
