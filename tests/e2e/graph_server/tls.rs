//! HTTPS for axum: a [`TlsListener`] that accepts TCP connections and
//! completes the TLS handshake (test CA's server certificate) before
//! handing them to axum.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// rustls' ring provider (the one the connectors use).
pub(super) fn provider() -> rustls::crypto::CryptoProvider {
    #[allow(deprecated)] // the post-quantum default needs aws-lc-rs, which builds C
    rustls::crypto::ring::default_provider()
}

/// A TLS acceptor for `server.pem` / `server.key` in the CA folder, HTTP/1.1 only.
pub(super) fn acceptor(ca_dir: &Path) -> TlsAcceptor {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(ca_dir.join("server.pem"))
            .expect("read the test server certificate")
            .collect::<Result<_, _>>()
            .expect("parse the test server certificate");
    let key =
        PrivateKeyDer::from_pem_file(ca_dir.join("server.key")).expect("read the test server key");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a TLS configuration with the test certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// TCP listener + TLS handshake, as an [`axum::serve::Listener`].
pub(super) struct TlsListener {
    pub tcp: TcpListener,
    pub acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    /// The next connection whose handshake succeeds; failed accepts and
    /// handshakes are logged and skipped, never fatal.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, addr) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("graph server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => return (tls, addr),
                Ok(Err(e)) => eprintln!("graph server: TLS handshake with {addr} failed: {e}"),
                Err(_) => eprintln!("graph server: TLS handshake with {addr} timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
