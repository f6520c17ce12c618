//! TLS from certificate files, for the converter's gRPC listener and the
//! gateway's web listener.
//!
//! A `ServerCertificate` is a PEM certificate chain and its PEM private
//! key, read at start (a missing, unreadable or malformed file, or a key
//! that is not the certificate's, stops the start with a message naming
//! the file) and read again when either file changes, the way the tokens
//! file is: rustls asks it for the certificate at every handshake, and it
//! looks at the files at most once per `RELOAD_INTERVAL` as it is asked.
//! A renewed certificate is therefore served to new connections within
//! about a second of being saved, without a restart; connections already
//! open keep the one they were made with. A new pair that cannot be used
//! (half-written, or a key that does not belong to the certificate) is
//! logged as an error and the pair read before keeps being served.
//!
//! Handshakes run in tasks of their own with a deadline (`incoming`), so a
//! client that connects and says nothing never holds up the next
//! connection. Key material is never logged or put in an error.

use crate::LoadError;
use crate::watch::{Look, Watched};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, TrustAnchor, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
pub use tokio_rustls::TlsAcceptor;
pub use tokio_rustls::server::TlsStream;

/// How long a client has to complete the TLS handshake after connecting.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes that may be in progress on one listener; connections beyond
/// wait to be accepted (in the kernel's backlog) until one ends.
const MAX_HANDSHAKES: usize = 1024;

/// ALPN for gRPC: HTTP/2 only.
pub const ALPN_GRPC: &[&[u8]] = &[b"h2"];
/// ALPN for the web: HTTP/2, or HTTP/1.1 (which WebSockets use).
pub const ALPN_WEB: &[&[u8]] = &[b"h2", b"http/1.1"];

/// rustls with ring, named explicitly rather than installed as the
/// process's default, so nothing depends on which provider was first.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

struct Served {
    current: Arc<CertifiedKey>,
    /// The pair served before the last reload, for `own_verifier`: a
    /// connection whose handshake began just before a reload still checks.
    previous: Option<Arc<CertifiedKey>>,
}

/// A certificate chain and its key from PEM files, kept current with them.
pub struct ServerCertificate {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    served: RwLock<Served>,
    watch: Watched,
}

impl std::fmt::Debug for ServerCertificate {
    // Paths and the fingerprint only: never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCertificate")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .field("fingerprint", &fingerprint(&self.current()))
            .finish()
    }
}

impl ServerCertificate {
    /// Reads the pair; an error names the file that cannot be used.
    pub fn open(cert: &Path, key: &Path) -> Result<Arc<ServerCertificate>, LoadError> {
        Self::open_with_interval(cert, key, crate::RELOAD_INTERVAL)
    }

    fn open_with_interval(cert: &Path, key: &Path, interval: Duration) -> Result<Arc<ServerCertificate>, LoadError> {
        let provider = provider();
        let watch = Watched::new(&[cert, key], interval)
            .map_err(|(path, e)| cannot_read(if path == cert { "certificate" } else { "key" }, &path, &e))?;
        let current = Arc::new(load(cert, key, &provider)?);
        tracing::info!(cert = %cert.display(), fingerprint = %fingerprint(&current), "serving TLS");
        Ok(Arc::new(ServerCertificate {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            provider,
            served: RwLock::new(Served { current, previous: None }),
            watch,
        }))
    }

    /// Accepts TLS connections with this certificate, offering `alpn`
    /// (`ALPN_GRPC` or `ALPN_WEB`).
    pub fn acceptor(self: &Arc<Self>, alpn: &[&[u8]]) -> TlsAcceptor {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsAcceptor::from(Arc::new(config))
    }

    /// The SHA-256 of the certificate served now, in hex (as `openssl x509
    /// -fingerprint -sha256` prints it, without the colons), as logged.
    #[cfg(test)]
    fn fingerprint(&self) -> String {
        fingerprint(&self.current())
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.served.read().unwrap_or_else(|p| p.into_inner()).current.clone()
    }

    /// Reads the files again if either changed since the last read. A pair
    /// that cannot be used leaves the one in force as it was: a renewal
    /// saved half-way, or in the wrong order, must not take the service
    /// down, and the next good save applies.
    fn refresh(&self) {
        match self.watch.look() {
            Look::Same => {}
            Look::Unreadable(path, e) => {
                let what = if path == self.cert_path { "certificate" } else { "key" };
                tracing::error!("{}; the certificate read before is still served", cannot_read(what, path, &e))
            }
            Look::Changed => match load(&self.cert_path, &self.key_path, &self.provider) {
                Err(e) => tracing::error!("{e}; the certificate read before is still served"),
                Ok(new) => {
                    let mut served = self.served.write().unwrap_or_else(|p| p.into_inner());
                    if new.cert == served.current.cert {
                        tracing::debug!(cert = %self.cert_path.display(), "TLS files saved without a new certificate");
                        return;
                    }
                    let new = Arc::new(new);
                    tracing::info!(
                        cert = %self.cert_path.display(),
                        fingerprint = %fingerprint(&new),
                        previous = %fingerprint(&served.current),
                        "TLS certificate changed; new connections get the new one"
                    );
                    served.previous = Some(std::mem::replace(&mut served.current, new));
                }
            },
        }
    }

    /// Whether `end_entity` is the certificate served now, or the one
    /// served just before.
    fn serves(&self, end_entity: &CertificateDer<'_>) -> bool {
        let served = self.served.read().unwrap_or_else(|p| p.into_inner());
        std::iter::once(&served.current)
            .chain(&served.previous)
            .any(|key| key.end_entity_cert().is_ok_and(|cert| cert == end_entity))
    }

    /// A verifier for a client in this same process that must reach the
    /// server serving this certificate (`docconv serve`'s gateway, calling
    /// its converter over loopback): it trusts exactly the certificate
    /// served, whatever its issuer and names, and checks the handshake's
    /// signature with it, which only the holder of its key can make.
    pub fn own_verifier(self: &Arc<Self>) -> Arc<dyn ServerCertVerifier> {
        Arc::new(OwnCertificate { server: self.clone(), algorithms: self.provider.signature_verification_algorithms })
    }
}

impl ResolvesServerCert for ServerCertificate {
    // One certificate for every name a client asks for: the file holds one
    // chain. Called at each handshake, on the handshake's own task; the
    // file reads `refresh` may do (two small files, at most once a second)
    // are cheap enough to do there.
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh();
        Some(self.current())
    }
}

#[derive(Debug)]
struct OwnCertificate {
    server: Arc<ServerCertificate>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for OwnCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.server.serves(end_entity) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the certificate this process serves".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The trust anchors in a PEM file of CA certificates (one or more; the
/// system's bundle works too), for a client checking a server.
pub fn trust_anchors(path: &Path) -> Result<Vec<TrustAnchor<'static>>, LoadError> {
    let text =
        std::fs::read(path).map_err(|e| LoadError(format!("cannot read the CA file {}: {e}", path.display())))?;
    let certs =
        certificates(&text).map_err(|problem| LoadError(format!("the CA file {}: {problem}", path.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for (index, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            LoadError(format!("the CA file {}: certificate {} cannot be used: {e}", path.display(), index + 1))
        })?;
    }
    Ok(roots.roots)
}

/// Completes the handshake of an accepted connection within
/// `HANDSHAKE_TIMEOUT`; the error says why it did not.
async fn handshake(acceptor: &TlsAcceptor, socket: TcpStream) -> Result<TlsStream<TcpStream>, String> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
        Err(_) => Err(format!("no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())),
    }
}

/// A connection whose handshake succeeded, and its peer's address.
pub type Accepted = (TlsStream<TcpStream>, SocketAddr);

/// Accepts connections on `listener` and completes each handshake in a
/// task of its own, handing over the connections whose handshake succeeded
/// (with `TCP_NODELAY` set: small messages, a job state or a stream frame,
/// must leave at once, not wait for an ACK). Ends when the receiver is
/// dropped.
pub fn incoming(listener: TcpListener, acceptor: TlsAcceptor) -> tokio::sync::mpsc::Receiver<Accepted> {
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                permit = handshakes.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                () = sender.closed() => return,
            };
            let (socket, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors and the like: wait, do not spin.
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = sender.closed() => return,
            };
            let _ = socket.set_nodelay(true);
            let (acceptor, sender) = (acceptor.clone(), sender.clone());
            tokio::spawn(async move {
                let result = handshake(&acceptor, socket).await;
                drop(permit);
                match result {
                    Ok(stream) => {
                        let _ = sender.send((stream, peer)).await;
                    }
                    // Scanners and plain-text clients do this all day.
                    Err(e) => tracing::debug!(%peer, "{e}"),
                }
            });
        }
    });
    receiver
}

/// `what`: "certificate" or "key".
fn cannot_read(what: &str, path: &Path, error: &std::io::Error) -> LoadError {
    LoadError(format!("cannot read the TLS {what} file {}: {error}", path.display()))
}

/// The pair in `cert` and `key`, checked to belong together.
fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, LoadError> {
    let chain = std::fs::read(cert).map_err(|e| cannot_read("certificate", cert, &e))?;
    let chain = certificates(&chain)
        .map_err(|problem| LoadError(format!("the TLS certificate file {}: {problem}", cert.display())))?;
    let key_text = std::fs::read(key).map_err(|e| cannot_read("key", key, &e))?;
    let private_key = private_key(&key_text)
        .map_err(|problem| LoadError(format!("the TLS key file {}: {problem}", key.display())))?;
    let signing_key = provider.key_provider.load_private_key(private_key).map_err(|_| {
        LoadError(format!(
            "the TLS key file {}: the key is of a kind TLS cannot use (RSA, ECDSA P-256 or P-384, and Ed25519 can be)",
            key.display()
        ))
    })?;
    let pair = CertifiedKey::new(chain, signing_key);
    match pair.keys_match() {
        // `Unknown`: the key cannot tell its public half; nothing to check.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(pair),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err(LoadError(format!(
            "the TLS key file {} is not the key of the certificate in {} (the first one there)",
            key.display(),
            cert.display()
        ))),
        Err(e) => Err(LoadError(format!(
            "the TLS certificate file {}: the first certificate cannot be read ({e})",
            cert.display()
        ))),
    }
}

/// Every certificate of a PEM file, in order; the problem if there is none.
fn certificates(text: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(text).collect::<Result<Vec<_>, _>>().map_err(describe)?;
    if certs.is_empty() {
        return Err("no certificate in it (a -----BEGIN CERTIFICATE----- block)".into());
    }
    Ok(certs)
}

/// The private key of a PEM file; the problem if there is none. The
/// problem never quotes the file.
fn private_key(text: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    match PrivateKeyDer::from_pem_slice(text) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) if contains(text, b"ENCRYPTED") => {
            Err("the key is encrypted; docconv needs it unencrypted (`openssl pkey -in KEY -out PLAIN`), \
             readable only by the service's user"
                .into())
        }
        Err(pem::Error::NoItemsFound) => {
            Err("no private key in it (a -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY block)".into())
        }
        Err(e) => Err(describe(e)),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What is wrong with a PEM file, in words that quote none of it (pem's
/// own messages may quote a line, and this may be a key).
fn describe(error: pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no -----END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a -----BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64".into(),
        pem::Error::NoItemsFound => "nothing usable in it".into(),
        _ => "it is not a PEM file docconv can read".into(),
    }
}

fn fingerprint(key: &CertifiedKey) -> String {
    match key.end_entity_cert() {
        Ok(cert) => Sha256::digest(cert.as_ref()).iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate for `name` signed by a CA of its own, as PEM: the
    /// chain (leaf then CA), the key, and the CA.
    fn issued(name: &str) -> (String, String, String) {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "docconv test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let leaf = params.signed_by(&key, &*ca).unwrap();
        (format!("{}{}", leaf.pem(), ca.pem()), key.serialize_pem(), ca.pem())
    }

    struct Files {
        _dir: tempfile::TempDir,
        cert: PathBuf,
        key: PathBuf,
    }

    impl Files {
        fn with(cert: &str, key: &str) -> Files {
            let dir = tempfile::tempdir().unwrap();
            let files = Files { cert: dir.path().join("cert.pem"), key: dir.path().join("key.pem"), _dir: dir };
            files.write(cert, key);
            files
        }

        fn write(&self, cert: &str, key: &str) {
            std::fs::write(&self.cert, cert).unwrap();
            std::fs::write(&self.key, key).unwrap();
        }

        fn open(&self) -> Result<Arc<ServerCertificate>, String> {
            ServerCertificate::open_with_interval(&self.cert, &self.key, INTERVAL).map_err(|e| e.to_string())
        }
    }

    const INTERVAL: Duration = Duration::from_millis(50);

    fn after_interval() {
        std::thread::sleep(INTERVAL + Duration::from_millis(20));
    }

    fn leaf(pem: &str) -> CertificateDer<'static> {
        certificates(pem.as_bytes()).unwrap().remove(0)
    }

    #[test]
    fn a_pair_is_read_with_its_chain_and_a_new_pair_replaces_it() {
        let (chain, key, _) = issued("one.test");
        let files = Files::with(&chain, &key);
        let served = files.open().unwrap();
        assert_eq!(served.current().cert.len(), 2, "leaf and CA");
        let first = served.fingerprint();
        assert!(served.serves(&leaf(&chain)));

        let (new_chain, new_key, _) = issued("two.test");
        files.write(&new_chain, &new_key);
        after_interval();
        served.refresh();
        assert_ne!(served.fingerprint(), first);
        assert!(served.serves(&leaf(&new_chain)));
        assert!(served.serves(&leaf(&chain)), "the one before is still known to the own verifier");
        let (other, _, _) = issued("three.test");
        assert!(!served.serves(&leaf(&other)));
    }

    #[test]
    fn a_bad_new_pair_leaves_the_old_one_served() {
        let (chain, key, _) = issued("one.test");
        let files = Files::with(&chain, &key);
        let served = files.open().unwrap();
        let first = served.fingerprint();

        // A renewal written certificate first: for a moment the key is
        // the old one's.
        let (new_chain, new_key, _) = issued("two.test");
        std::fs::write(&files.cert, &new_chain).unwrap();
        after_interval();
        served.refresh();
        assert_eq!(served.fingerprint(), first);
        // Then the key arrives, and the pair applies.
        std::fs::write(&files.key, &new_key).unwrap();
        after_interval();
        served.refresh();
        let second = served.fingerprint();
        assert_ne!(second, first);

        // Garbage, and a file removed: still the last good pair.
        std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").unwrap();
        after_interval();
        served.refresh();
        assert_eq!(served.fingerprint(), second);
        std::fs::remove_file(&files.key).unwrap();
        after_interval();
        served.refresh();
        assert_eq!(served.fingerprint(), second);
    }

    #[test]
    fn start_errors_name_the_file_and_never_quote_the_key() {
        let (chain, key, ca) = issued("one.test");
        let (_, other_key, _) = issued("two.test");

        let files = Files::with(&chain, &other_key);
        let error = files.open().unwrap_err();
        assert!(
            error.contains(&files.key.display().to_string()) && error.contains("is not the key of the certificate"),
            "{error}"
        );

        let files = Files::with(&chain, &key);
        std::fs::remove_file(&files.key).unwrap();
        let error = files.open().unwrap_err();
        assert!(error.starts_with(&format!("cannot read the TLS key file {}", files.key.display())), "{error}");

        let files = Files::with(&key, &key);
        let error = files.open().unwrap_err();
        assert!(error.contains(&files.cert.display().to_string()) && error.contains("no certificate"), "{error}");

        let files = Files::with(&chain, &ca);
        let error = files.open().unwrap_err();
        assert!(error.contains(&files.key.display().to_string()) && error.contains("no private key"), "{error}");

        let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
        let broken = key.replacen(&body[..10], "!!!!!!!!!!", 1);
        let files = Files::with(&chain, &broken);
        let error = files.open().unwrap_err();
        assert!(error.contains("not valid base64"), "{error}");
        assert!(!error.contains(&body[10..30]), "the key was quoted: {error}");

        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let files = Files::with(&chain, encrypted);
        let error = files.open().unwrap_err();
        assert!(error.contains("encrypted"), "{error}");
    }

    #[test]
    fn a_ca_file_gives_its_certificates_as_trust_anchors() {
        let (_, _, ca) = issued("one.test");
        let (_, _, other) = issued("two.test");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, format!("{ca}{other}")).unwrap();
        assert_eq!(trust_anchors(&path).unwrap().len(), 2);
        std::fs::write(&path, "").unwrap();
        let error = trust_anchors(&path).unwrap_err().to_string();
        assert!(error.contains(&path.display().to_string()) && error.contains("no certificate"), "{error}");
    }
}
