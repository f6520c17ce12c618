//! Sending one webhook request, to vetted addresses only.
//!
//! A name is resolved once, each address it resolves to is judged by the
//! operator's policy, and the connection goes to an address that passed,
//! itself: nothing looks the name up a second time, so an answer that
//! changes between a check and a connection (DNS rebinding) cannot steer
//! the request elsewhere. The request still names its host (the `Host`
//! header), and TLS sends the name (SNI) and checks the certificate
//! against it, with the system's certificate authorities.
//!
//! Redirects are not followed: the body is signed for the receiver the
//! caller named, a redirect would send it (or, for 301 to 303, a request
//! without it) somewhere else, and each hop would be another address to
//! vet. A receiver that moved is given its new URL instead.
//!
//! Everything is bounded: one deadline for the whole request (resolving,
//! connecting, TLS, the answer), a shorter one per connection attempt, and
//! at most a few KiB of the answer are read.

use super::policy::Policy;
use super::spec::{self, Target};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST, LOCATION};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long one connection attempt may take (a name may resolve to
/// several addresses; the request's own deadline bounds them all).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of an answer is read: its status says all we use.
const MAX_ANSWER: usize = 4096;
/// How much of a redirect's target a message quotes.
const MAX_QUOTED: usize = 200;

/// Why an attempt did not deliver, and whether another may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// In words a person can act on.
    pub message: String,
    /// The answer's HTTP status, if one came.
    pub status: Option<u16>,
    /// Whether trying again later may deliver it.
    pub retry: bool,
}

impl SendError {
    fn retry(message: String) -> SendError {
        SendError { message, status: None, retry: true }
    }

    fn fatal(message: String) -> SendError {
        SendError { message, status: None, retry: false }
    }
}

/// One webhook request.
pub struct Request {
    pub url: String,
    pub method: Method,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// Sends webhooks under a policy. One per node.
pub struct Sender {
    policy: Policy,
    timeout: Duration,
    /// Made on the first https:// webhook: reading the system's
    /// certificate authorities is file I/O that many nodes never need.
    tls: tokio::sync::OnceCell<TlsConnector>,
}

/// What a connection may be: plain TCP or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Aborts a task when dropped: the connection's driver must not outlive
/// the attempt (a receiver that never closes would keep it forever).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Sender {
    pub fn new(policy: Policy, timeout: Duration) -> Sender {
        Sender { policy, timeout, tls: tokio::sync::OnceCell::new() }
    }

    /// Makes the request; returns the answer's status if it was 2xx.
    pub async fn send(&self, request: Request) -> Result<u16, SendError> {
        match tokio::time::timeout(self.timeout, self.attempt(request)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::retry(format!("no answer within {} s", self.timeout.as_secs_f64()))),
        }
    }

    async fn attempt(&self, request: Request) -> Result<u16, SendError> {
        let target = spec::target(&request.url, &self.policy)
            .map_err(|why| SendError::fatal(format!("not sent: the URL {why}")))?;
        let host = target.host_text();
        let addresses = self.vetted(&target, &host).await?;
        let tcp = connect(&addresses, &host).await?;
        let io: Box<dyn Io> = match target.https {
            false => Box::new(tcp),
            true => {
                let name = server_name(&target)?;
                let tls = self.tls().await?.connect(name, tcp).await;
                Box::new(tls.map_err(|e| SendError::retry(format!("TLS with {host} failed: {e}")))?)
            }
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| SendError::retry(format!("{host}: {e}")))?;
        let _driver = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let answer = sender
            .send_request(http_request(&target, request)?)
            .await
            .map_err(|e| SendError::retry(format!("{host} did not answer: {e}")))?;
        let status = answer.status();
        let location = answer.headers().get(LOCATION).map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
        drain(answer.into_body()).await;
        judge(status, location, &host)
    }

    /// The addresses of the target that the policy allows; an error when
    /// there are none.
    async fn vetted(&self, target: &Target, host: &str) -> Result<Vec<SocketAddr>, SendError> {
        let found: Vec<IpAddr> = match &target.host {
            url::Host::Ipv4(ip) => vec![(*ip).into()],
            url::Host::Ipv6(ip) => vec![(*ip).into()],
            url::Host::Domain(name) => tokio::net::lookup_host((name.as_str(), target.port))
                .await
                .map_err(|e| SendError::retry(format!("cannot resolve {name}: {e}")))?
                .map(|address| address.ip())
                .collect(),
        };
        let mut allowed: Vec<IpAddr> = Vec::new();
        let mut refused = None;
        for ip in found.into_iter().map(|ip| ip.to_canonical()) {
            match self.policy.refusal(ip) {
                None if !allowed.contains(&ip) => allowed.push(ip),
                None => {}
                Some(kind) => {
                    refused.get_or_insert((ip, kind));
                }
            }
        }
        match (allowed.is_empty(), refused) {
            (false, _) => Ok(allowed.into_iter().map(|ip| SocketAddr::new(ip, target.port)).collect()),
            (true, Some((ip, kind))) => Err(SendError::fatal(format!(
                "not sent: {host} resolves to {ip}, not a public address ({kind}); webhooks may not reach it \
                 unless the operator allows its network (--webhook-allow-private-networks)"
            ))),
            (true, None) => Err(SendError::retry(format!("{host} resolves to no address"))),
        }
    }

    async fn tls(&self) -> Result<&TlsConnector, SendError> {
        let made = self.tls.get_or_try_init(|| async {
            tokio::task::spawn_blocking(tls_connector).await.unwrap_or_else(|e| Err(e.to_string()))
        });
        made.await.map_err(|e| SendError::retry(format!("TLS cannot be set up on this node: {e}")))
    }
}

/// A TLS client trusting the system's certificate authorities.
fn tls_connector() -> Result<TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if added == 0 {
        return Err("no certificate authority of the system could be read".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

fn server_name(target: &Target) -> Result<rustls::pki_types::ServerName<'static>, SendError> {
    use rustls::pki_types::ServerName;
    match &target.host {
        url::Host::Domain(name) => ServerName::try_from(name.clone())
            .map_err(|e| SendError::fatal(format!("not sent: {name} is not a name TLS can check: {e}"))),
        url::Host::Ipv4(ip) => Ok(ServerName::IpAddress(IpAddr::from(*ip).into())),
        url::Host::Ipv6(ip) => Ok(ServerName::IpAddress(IpAddr::from(*ip).into())),
    }
}

/// The first address that accepts a connection.
async fn connect(addresses: &[SocketAddr], host: &str) -> Result<TcpStream, SendError> {
    let mut last = String::new();
    for address in addresses {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = format!("cannot connect to {host} ({address}): {e}"),
            Err(_) => last = format!("cannot connect to {host} ({address}) within {} s", CONNECT_TIMEOUT.as_secs()),
        }
    }
    Err(SendError::retry(last))
}

fn http_request(target: &Target, request: Request) -> Result<http::Request<Full<Bytes>>, SendError> {
    let url = &target.url;
    let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let mut builder = http::Request::builder()
        .method(request.method)
        .uri(if path.is_empty() { "/" } else { path })
        .header(HOST, host)
        .header(CONTENT_LENGTH, request.body.len());
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    builder.body(Full::new(request.body)).map_err(|e| SendError::fatal(format!("not sent: {e}")))
}

/// Reads at most `MAX_ANSWER` bytes of an answer's body.
async fn drain(mut body: hyper::body::Incoming) {
    let mut read = 0;
    while read < MAX_ANSWER {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |data| data.len()),
            _ => return,
        }
    }
}

/// What an answer means: delivered (2xx), refused for good (a redirect,
/// a 4xx but 408 and 429), or worth another try (the rest).
fn judge(status: StatusCode, location: Option<String>, host: &str) -> Result<u16, SendError> {
    let code = status.as_u16();
    let (message, retry) = match code {
        200..=299 => return Ok(code),
        300..=399 => {
            let to =
                location.map(|l| format!(" to {}", l.chars().take(MAX_QUOTED).collect::<String>())).unwrap_or_default();
            (
                format!(
                    "{host} answered {status}, a redirect{to}; redirects are not followed: give the webhook its final URL"
                ),
                false,
            )
        }
        408 | 429 => (format!("{host} answered {status}"), true),
        400..=499 => (format!("{host} refused the webhook: {status}"), false),
        _ => (format!("{host} answered {status}"), true),
    };
    Err(SendError { message, status: Some(code), retry })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_by_their_status() {
        let judged = |code: u16, location: Option<&str>| {
            judge(StatusCode::from_u16(code).unwrap(), location.map(str::to_owned), "hooks.example.com")
        };
        assert_eq!(judged(200, None), Ok(200));
        assert_eq!(judged(204, None), Ok(204));
        for retried in [408, 429, 500, 502, 503] {
            let e = judged(retried, None).unwrap_err();
            assert!(e.retry && e.status == Some(retried), "{retried}: {e:?}");
        }
        for refused in [400, 401, 403, 404, 410, 422] {
            let e = judged(refused, None).unwrap_err();
            assert!(!e.retry, "{refused}: {e:?}");
            assert!(e.message.contains("refused the webhook"), "{e:?}");
        }
        let e = judged(302, Some("http://169.254.169.254/")).unwrap_err();
        assert!(!e.retry);
        assert!(e.message.contains("a redirect to http://169.254.169.254/; redirects are not followed"), "{e:?}");
    }

    #[tokio::test]
    async fn names_that_resolve_to_refused_addresses_are_not_sent_to() {
        let sender = Sender::new(Policy::default(), Duration::from_secs(5));
        let request = |url: &str| Request {
            url: url.into(),
            method: Method::POST,
            headers: Vec::new(),
            body: Bytes::from_static(b"{}"),
        };
        let e = sender.send(request("http://localhost:9/")).await.unwrap_err();
        assert!(!e.retry, "{e:?}");
        assert!(e.message.starts_with("not sent: localhost resolves to "), "{e:?}");
        assert!(e.message.contains("loopback"), "{e:?}");
        let e = sender.send(request("http://127.0.0.1:9/")).await.unwrap_err();
        assert!(!e.retry && e.message.contains("loopback"), "{e:?}");
    }

    #[tokio::test]
    async fn allowed_receivers_get_the_request_with_its_host() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let receiver = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buffer = [0u8; 1024];
            while !String::from_utf8_lossy(&seen).contains("{\"a\":1}") {
                let read = socket.read(&mut buffer).await.unwrap();
                assert!(read > 0, "the request ended early");
                seen.extend_from_slice(&buffer[..read]);
            }
            socket.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.unwrap();
            String::from_utf8(seen).unwrap()
        });
        let policy = Policy { networks: vec!["127.0.0.1/32".parse().unwrap()], ..Policy::default() };
        let sender = Sender::new(policy, Duration::from_secs(5));
        let request = Request {
            url: format!("http://localhost:{port}/hook?x=1"),
            method: Method::PUT,
            headers: vec![(HeaderName::from_static("x-tenant"), HeaderValue::from_static("42"))],
            body: Bytes::from_static(b"{\"a\":1}"),
        };
        assert_eq!(sender.send(request).await, Ok(204));
        let seen = receiver.await.unwrap().to_ascii_lowercase();
        assert!(seen.starts_with("put /hook?x=1 http/1.1\r\n"), "{seen}");
        assert!(seen.contains(&format!("host: localhost:{port}\r\n")), "{seen}");
        assert!(seen.contains("x-tenant: 42\r\n") && seen.contains("content-length: 7\r\n"), "{seen}");
    }
}
