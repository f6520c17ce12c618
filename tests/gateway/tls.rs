//! HTTPS: pages over HTTP/2 and HTTP/1.1, live streams over wss, `serve`'s
//! gateway reaching its converter over TLS with the token check intact, a
//! gateway trusting a converter's CA, and a renewed certificate served to
//! new connections without a restart.

use crate::auth::{CHALLENGE, Serve, basic};
use crate::support::{self, Reply, TlsClientStream, TlsFiles, TokensFile, alpn, fixture, peer_fingerprint};
use crate::web::{multipart, spawn_gateway_with};
use docconv_gateway::config::GatewayConfig;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const TOKEN: &str = "tls-token-3e5a7c9e1b3d5f7a9c1e";

/// One HTTP/1.1 request on an open (keep-alive) connection, and its answer.
async fn request(
    stream: &mut TlsClientStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let head = support::request_head(method, path, "localhost", headers, body.len(), false);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream.flush().await.unwrap();

    let mut raw = Vec::new();
    let mut reply = loop {
        if let Some(reply) = support::parse_head(&raw) {
            break reply;
        }
        read_more(stream, &mut raw).await;
    };
    if reply.header("transfer-encoding") == Some("chunked") {
        reply.body = read_chunked(stream, std::mem::take(&mut reply.body)).await;
    } else {
        let length: usize = reply.header("content-length").map_or(0, |l| l.parse().unwrap());
        while reply.body.len() < length {
            read_more(stream, &mut reply.body).await;
        }
    }
    reply
}

async fn read_more(stream: &mut TlsClientStream, into: &mut Vec<u8>) {
    let mut buffer = [0u8; 16 * 1024];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buffer)).await.unwrap().unwrap();
    assert!(n > 0, "the connection closed mid-answer");
    into.extend_from_slice(&buffer[..n]);
}

async fn read_chunked(stream: &mut TlsClientStream, mut raw: Vec<u8>) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
                break end;
            }
            read_more(stream, &mut raw).await;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..line_end]).trim(), 16).unwrap();
        while raw.len() < line_end + 2 + size + 2 {
            read_more(stream, &mut raw).await;
        }
        body.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
        raw.drain(..line_end + 2 + size + 2);
        if size == 0 {
            return body;
        }
    }
}

/// A request over HTTP/2 on a connection that negotiated it, its head in
/// pseudo-headers as browsers send it (no `Host`); the status and body.
async fn h2_request(
    stream: TlsClientStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String) {
    let port = stream.get_ref().0.peer_addr().unwrap().port();
    let (client, connection) = h2::client::handshake(stream).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let mut request = axum::http::Request::builder().method(method).uri(format!("https://localhost:{port}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (response, mut send) = client.send_request(request.body(()).unwrap(), body.is_empty()).unwrap();
    if !body.is_empty() {
        send.send_data(body.into(), true).unwrap();
    }
    let response = response.await.unwrap();
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        text.extend_from_slice(&chunk);
    }
    (status, String::from_utf8_lossy(&text).into_owned())
}

/// Waits until something listens at `addr`.
async fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listened at {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `docconv gateway` in a process of its own, killed when dropped.
struct Gateway {
    child: std::process::Child,
    http: SocketAddr,
}

impl Gateway {
    fn start(flags: &[&OsStr]) -> Gateway {
        let http: SocketAddr = format!("127.0.0.1:{}", support::free_port()).parse().unwrap();
        let child = std::process::Command::new(support::docconv_exe())
            .args(["gateway", "--listen", &http.to_string()])
            .args(flags)
            .env("DOCCONV_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Gateway { child, http }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /readyz` on a plain-HTTP gateway: whether it reaches its converter.
async fn ready(http: SocketAddr) -> u16 {
    let mut socket = tokio::net::TcpStream::connect(http).await.unwrap();
    socket.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    socket.read_to_end(&mut raw).await.unwrap();
    String::from_utf8_lossy(&raw).split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn serve_with_tls_serves_pages_uploads_and_wss_streams_and_checks_tokens_on_its_own_hop() {
    let files = TlsFiles::new();
    let tokens = TokensFile::with(&[TOKEN]);
    let serve = Serve::start_with(
        &tokens.path,
        &[OsStr::new("--tls-cert"), files.cert.as_os_str(), OsStr::new("--tls-key"), files.key.as_os_str()],
    );
    support::wait_ready_with(serve.grpc, Some(files.open()));
    wait_listening(serve.http).await;
    let bearer = format!("Bearer {TOKEN}");

    // The gateway reached its own converter over TLS: it is ready, and
    // the page lists the converter's formats.
    let mut web = files.connect(serve.http, &[b"http/1.1"]).await;
    assert_eq!(alpn(&web).as_deref(), Some("http/1.1"));
    let reply = request(&mut web, "GET", "/readyz", &[], b"").await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "ready\n"));
    let reply = request(&mut web, "GET", "/", &[], b"").await;
    assert_eq!((reply.status, reply.header("www-authenticate")), (401, Some(CHALLENGE)));

    // Browsers get HTTP/2.
    let h2 = files.connect(serve.http, &[b"h2", b"http/1.1"]).await;
    assert_eq!(alpn(&h2).as_deref(), Some("h2"));
    let (status, page) = h2_request(h2, "GET", "/", &[("authorization", &bearer)], Vec::new()).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(".docx"), "the page lists the converter's formats: {page}");
    // A form posted from the page itself, as a browser sends it over
    // HTTP/2: the site's origin, and the host in `:authority` alone.
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let (content_type, body) = multipart(&[("file", "page_1.docx", &data)]);
    let origin = format!("https://localhost:{}", serve.http.port());
    let headers = [("content-type", content_type.as_str()), ("origin", &origin), ("authorization", &bearer)];
    let h2 = files.connect(serve.http, &[b"h2"]).await;
    let (status, answer) = h2_request(h2, "POST", "/convert", &headers, body).await;
    assert_eq!(status, 303, "{answer}");

    // An upload over HTTPS converts through that hop, which carries the
    // caller's token as any other.
    let (content_type, body) = multipart(&[("file", "page_1.docx", &data)]);
    let headers = [("Content-Type", content_type.as_str()), ("Accept", "application/json"), ("Authorization", &bearer)];
    let reply = request(&mut web, "POST", "/convert", &headers, &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let id = json["jobs"][0]["id"].as_str().unwrap().to_owned();

    // Its live stream over wss, on an HTTP/1.1 connection as browsers open
    // them, signed in with Basic.
    let stream = files.connect(serve.http, &[b"http/1.1"]).await;
    let mut upgrade = format!("wss://localhost:{}/jobs/{id}/stream", serve.http.port()).into_client_request().unwrap();
    upgrade.headers_mut().insert("authorization", basic("me", TOKEN).parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::client_async(upgrade, stream).await.unwrap();
    let read = crate::websocket::frames_until_close(&mut socket);
    let (frames, close) = tokio::time::timeout(Duration::from_secs(120), read).await.expect("the stream ends");
    let last = frames.last().cloned().unwrap_or_default();
    assert_eq!(close, Some(CloseCode::Normal));
    assert!(last.contains("Download page_1.pdf"), "{last}");
    let reply = request(&mut web, "GET", &format!("/jobs/{id}/download"), &[("Authorization", &bearer)], b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(support::pdf_pages(&reply.body), 1);

    // The converter's listener is the same TLS one for everyone, and its
    // token check applies there.
    let mut anonymous = files.client(serve.grpc).await;
    let refused = anonymous.list_formats(docconv::proto::v1::ListFormatsRequest {}).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    // Plain HTTP to the HTTPS port gets no page, and harms nothing.
    let mut plain = tokio::net::TcpStream::connect(serve.http).await.unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await.unwrap().unwrap();
    assert!(!answer.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&answer));
    assert_eq!(request(&mut web, "GET", "/healthz", &[], b"").await.status, 200);

    // A gateway of its own reaches that converter by name, trusting its CA
    // with --converter-ca; with another CA it refuses the certificate.
    let url = format!("https://localhost:{}", serve.grpc.port());
    let trusting = Gateway::start(&[
        OsStr::new("--converter-url"),
        OsStr::new(&url),
        OsStr::new("--converter-ca"),
        files.ca_path.as_os_str(),
    ]);
    let other = TlsFiles::new();
    let wary = Gateway::start(&[
        OsStr::new("--converter-url"),
        OsStr::new(&url),
        OsStr::new("--converter-ca"),
        other.ca_path.as_os_str(),
    ]);
    wait_listening(trusting.http).await;
    wait_listening(wary.http).await;
    assert_eq!(ready(trusting.http).await, 200);
    assert_eq!(ready(wary.http).await, 503);
}

#[tokio::test]
async fn a_renewed_certificate_reaches_new_https_connections_while_open_ones_keep_going() {
    let files = TlsFiles::new();
    // No converter needed: /healthz answers without one (the gateway
    // connects to its converter lazily).
    let config = GatewayConfig { tls: Some(files.open()), ..GatewayConfig::default() };
    let gateway = spawn_gateway_with("127.0.0.1:9".parse().unwrap(), config);
    wait_listening(gateway).await;

    let mut before = files.connect(gateway, &[b"http/1.1"]).await;
    assert_eq!(request(&mut before, "GET", "/healthz", &[], b"").await.status, 200);
    let old = peer_fingerprint(&before);

    let new = files.renew();
    assert_ne!(new, old);
    tokio::time::sleep(docconv_auth::RELOAD_INTERVAL + Duration::from_millis(300)).await;
    let mut after = files.connect(gateway, &[b"h2", b"http/1.1"]).await;
    assert_eq!(peer_fingerprint(&after), new, "a new connection gets the new certificate");
    assert_eq!(alpn(&after).as_deref(), Some("h2"));
    // The connection made before goes on.
    assert_eq!(request(&mut before, "GET", "/healthz", &[], b"").await.text(), "ok\n");
    after.shutdown().await.unwrap();

    // A pair that cannot be used leaves the last good one served.
    std::fs::write(&files.key, "not a key\n").unwrap();
    tokio::time::sleep(docconv_auth::RELOAD_INTERVAL + Duration::from_millis(300)).await;
    let mut during = files.connect(gateway, &[b"http/1.1"]).await;
    assert_eq!(peer_fingerprint(&during), new);
    assert_eq!(request(&mut during, "GET", "/healthz", &[], b"").await.status, 200);
    assert_eq!(request(&mut before, "GET", "/healthz", &[], b"").await.status, 200);
}
