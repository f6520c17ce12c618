//! A gateway with tokens: browsers without one are asked for it, Basic and
//! Bearer credentials both let in, probes and assets stay open, and the
//! caller's token goes on to a converter that checks it too.

use crate::support::{self, TokensFile, fixture, pdf_pages};
use crate::web::multipart;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use docconv_gateway::{AppState, app, config::GatewayConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Error;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tower::ServiceExt;

pub const BROWSER: &str = "browser-token-6d1f3a5c7e9b2d4f6a8c";
const SCRIPT: &str = "script-token-0e2c4a6e8c1a3e5c7a9e";
/// Listed in a gateway's file but not in its converter's.
const GATEWAY_ONLY: &str = "gateway-only-token-7f5d3b1f9d7b5f3d";
pub const CHALLENGE: &str = "Basic realm=\"docconv\"";

/// A converter whose tokens file lists `BROWSER` and `SCRIPT`.
pub fn converter() -> &'static (support::Server, TokensFile) {
    static CONVERTER: OnceLock<(support::Server, TokensFile)> = OnceLock::new();
    CONVERTER.get_or_init(|| {
        let tokens = TokensFile::with(&[BROWSER, SCRIPT]);
        let server = support::Server::start(|c| c.auth_tokens_file = Some(tokens.path.clone()));
        (server, tokens)
    })
}

/// A gateway in front of that converter, reading `tokens`.
fn gateway(tokens: &Path) -> Router {
    let config = GatewayConfig { auth_tokens_file: Some(tokens.to_path_buf()), ..GatewayConfig::default() };
    app(AppState::new(&[format!("http://{}", converter().0.addr)], config).unwrap())
}

pub fn basic(user: &str, token: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{token}")))
}

async fn get(app: Router, uri: &str, authorization: Option<&str>) -> Response {
    let mut request = Request::get(uri);
    if let Some(authorization) = authorization {
        request = request.header(header::AUTHORIZATION, authorization);
    }
    app.oneshot(request.body(Body::empty()).unwrap()).await.unwrap()
}

async fn text(response: Response) -> String {
    String::from_utf8(to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap()
}

fn assert_asked_for_a_token(response: &Response, what: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], CHALLENGE, "{what}");
}

#[tokio::test]
async fn without_a_token_browsers_are_asked_for_one_while_probes_and_assets_stay_open() {
    let tokens = &converter().1.path;
    let response = get(gateway(tokens), "/", None).await;
    assert_asked_for_a_token(&response, "/");
    assert!(response.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    let html = text(response).await;
    assert!(html.contains("<!doctype html>") && html.contains("needs a token"), "{html}");

    // Every other route, and paths that lead nowhere, say the same: without
    // a token one cannot even tell which jobs exist.
    let job = "/jobs/0123456789abcdef0123456789abcdef";
    for uri in [job, &format!("{job}/download"), &format!("{job}/preview.png"), "/batch?ids=x", "/nowhere"] {
        assert_asked_for_a_token(&get(gateway(tokens), uri, None).await, uri);
    }
    for wrong in
        [format!("Bearer {GATEWAY_ONLY}"), basic("anyone", "wrong"), format!("Bearer {BROWSER}x"), basic(BROWSER, "")]
    {
        assert_asked_for_a_token(&get(gateway(tokens), "/", Some(&wrong)).await, &wrong);
    }
    // Scripts get the gateway's usual JSON error.
    let (content_type, body) = multipart(&[("file", "page_1.docx", b"x")]);
    let request = Request::post("/convert")
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT, "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = gateway(tokens).oneshot(request).await.unwrap();
    assert_asked_for_a_token(&response, "POST /convert");
    let json: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    assert!(json["error"].as_str().unwrap().contains("Authorization: Bearer"), "{json}");

    // Open: liveness, readiness (the converter's health needs no token
    // either), the icon browsers ask for, and the assets pages load.
    for uri in ["/healthz", "/readyz", "/favicon.ico"] {
        assert_eq!(get(gateway(tokens), uri, None).await.status(), StatusCode::OK, "{uri}");
    }
    let page = text(get(gateway(tokens), "/", Some(&basic("me", BROWSER))).await).await;
    let start = page.find("/assets/").unwrap() + "/assets/".len();
    let style = format!("/assets/{}/style.css", &page[start..start + page[start..].find('/').unwrap()]);
    assert_eq!(get(gateway(tokens), &style, None).await.status(), StatusCode::OK, "{style}");
}

#[tokio::test]
async fn basic_and_bearer_let_in_and_the_converter_checks_the_token_again() {
    let tokens = &converter().1.path;
    // The upload page lists the converter's formats: its ListFormats call
    // carried the caller's token, which the converter accepted.
    for authorization in [basic("anyone", BROWSER), basic("", BROWSER), format!("Bearer {SCRIPT}")] {
        let response = get(gateway(tokens), "/", Some(&authorization)).await;
        assert_eq!(response.status(), StatusCode::OK, "{authorization}");
        assert!(text(response).await.contains(".docx"), "{authorization}");
    }

    // A gateway whose file lists a token its converter's does not: it lets
    // the request in, the converter refuses it, and the browser is asked
    // for a token again.
    let gateway_tokens = TokensFile::with(&[BROWSER, GATEWAY_ONLY]);
    let response = get(gateway(&gateway_tokens.path), "/", Some(&format!("Bearer {GATEWAY_ONLY}"))).await;
    assert_asked_for_a_token(&response, "a token only the gateway lists");
    let job = "/jobs/0123456789abcdef0123456789abcdef";
    let response = get(gateway(&gateway_tokens.path), job, Some(&basic("me", GATEWAY_ONLY))).await;
    assert_asked_for_a_token(&response, job);
    // While a token both list still works through that gateway.
    let response = get(gateway(&gateway_tokens.path), "/", Some(&basic("me", BROWSER))).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// `docconv serve` in a process of its own, killed when dropped.
pub struct Serve {
    child: std::process::Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    _data_dir: tempfile::TempDir,
}

impl Serve {
    fn start(tokens: &Path) -> Serve {
        Serve::start_with(tokens, &[])
    }

    /// `start`, with more flags.
    pub fn start_with(tokens: &Path, flags: &[&std::ffi::OsStr]) -> Serve {
        let data_dir = tempfile::tempdir().unwrap();
        let grpc: SocketAddr = format!("127.0.0.1:{}", support::free_port()).parse().unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", support::free_port()).parse().unwrap();
        let child = std::process::Command::new(support::docconv_exe())
            .args(["serve", "--grpc-listen", &grpc.to_string(), "--http-listen", &http.to_string()])
            .args(["--workers", "1", "--shutdown-grace-secs", "0", "--auth-tokens-file"])
            .arg(tokens)
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(flags)
            .env("DOCCONV_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Serve { child, grpc, http, _data_dir: data_dir }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn an_upload_with_a_token_converts_end_to_end_under_serve() {
    const TOKEN: &str = "serve-token-4c6e8a0c2e4a6c8e0a2c";
    let tokens = TokensFile::with(&[TOKEN]);
    let serve = Serve::start(&tokens.path);
    support::wait_ready(serve.grpc);

    // `serve` gave the file to its converter...
    let mut anonymous = support::connect(serve.grpc).await;
    let refused = anonymous.list_formats(docconv::proto::v1::ListFormatsRequest {}).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    // ...and to its gateway, whose probes stay open.
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(serve.http).await.is_err() {
        assert!(Instant::now() < deadline, "the gateway never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(support::http(serve.http, "GET", "/healthz", &[], b"").await.status, 200);
    let page = support::http(serve.http, "GET", "/", &[], b"").await;
    assert_eq!((page.status, page.header("www-authenticate")), (401, Some(CHALLENGE)));

    // A script uploads with Bearer.
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let (content_type, body) = multipart(&[("file", "page_1.docx", &data)]);
    let bearer = format!("Bearer {TOKEN}");
    let headers = [("Content-Type", content_type.as_str()), ("Accept", "application/json"), ("Authorization", &bearer)];
    let reply = support::http(serve.http, "POST", "/convert", &headers, &body).await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let id = json["jobs"][0]["id"].as_str().unwrap().to_owned();

    // A browser follows it live with Basic; without credentials the
    // WebSocket handshake itself is refused.
    let url = format!("ws://{}/jobs/{id}/stream", serve.http);
    match tokio_tungstenite::connect_async(&url).await {
        Err(Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a stream opened without a token: {:?}", other.map(|(_, r)| r.status())),
    }
    let browser = basic("me", TOKEN);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("authorization", browser.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (frames, close) = crate::websocket::frames_until_close(&mut socket).await;
    let last = frames.last().cloned().unwrap_or_default();
    assert_eq!(close, Some(CloseCode::Normal));
    assert!(last.contains("Download page_1.pdf"), "{last}");

    // And downloads the result, which needs the token too.
    let download = format!("/jobs/{id}/download");
    assert_eq!(support::http(serve.http, "GET", &download, &[], b"").await.status, 401);
    let reply = support::http(serve.http, "GET", &download, &[("Authorization", &browser)], b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/pdf"));
    assert_eq!(pdf_pages(&reply.body), 1);
}
