//! Gateways for tests, and small HTTP helpers.

use crate::support;
use docconv_gateway::config::GatewayConfig;
use docconv_gateway::{self as gateway, AppState};
use std::net::SocketAddr;
use std::sync::OnceLock;

/// The converter all gateway tests talk to: small limits to test against.
pub fn converter() -> &'static support::Server {
    static CONVERTER: OnceLock<support::Server> = OnceLock::new();
    CONVERTER.get_or_init(|| {
        support::Server::start(|c| {
            c.workers = Some(2);
            c.max_upload_mib = 1;
        })
    })
}

pub fn state(edit: impl FnOnce(&mut GatewayConfig)) -> AppState {
    let mut config = GatewayConfig::default();
    edit(&mut config);
    AppState::new(&[format!("http://{}", converter().addr)], config).unwrap()
}

/// The shared gateway on a real socket, for WebSocket and browser tests.
pub fn serve() -> SocketAddr {
    static GATEWAY: OnceLock<SocketAddr> = OnceLock::new();
    *GATEWAY.get_or_init(|| spawn_gateway(converter().addr))
}

/// A gateway in front of the converter at `converter`, running on a thread
/// of its own for the rest of the test process.
pub fn spawn_gateway(converter: SocketAddr) -> SocketAddr {
    spawn_gateway_with(converter, GatewayConfig::default())
}

/// `spawn_gateway` with settings of its own.
pub fn spawn_gateway_with(converter: SocketAddr, config: GatewayConfig) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let converter_url = format!("http://{converter}");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let forever = std::future::pending::<()>();
            gateway::run(&[converter_url], config, listener, forever).await.unwrap();
        });
    });
    addr
}

/// A multipart/form-data body with one part per (field, file name, bytes).
pub fn multipart(files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    form(&[], files)
}

/// A multipart/form-data body: text fields first, then files.
pub fn form(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "docconv-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    for (field, file_name, data) in files {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\n").as_bytes(),
        );
        body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
