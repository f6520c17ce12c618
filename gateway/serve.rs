//! The gateway's HTTP server loop.
//!
//! `axum::serve` gives hyper no timer, so hyper cannot time out a request
//! head: a client trickling header bytes would hold a connection forever.
//! This loop is axum's, with a timer and a header deadline; bodies are
//! bounded where they are read (see `upload`). With a certificate it serves
//! HTTPS, offering HTTP/2 and HTTP/1.1 by ALPN (browsers open WebSockets
//! on HTTP/1.1 connections).

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, header};
use docconv_auth::tls::{self, TlsAcceptor, TlsStream};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// How long a client may take to send a request's head (line and headers).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// How long open connections get to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown`
/// resolves, then lets open connections finish (WebSocket streams are told
/// to reconnect elsewhere by their own handlers) for a short grace period.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, app: Router, shutdown: impl Future<Output = ()>) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEAD_TIMEOUT);
    let graceful = GracefulShutdown::new();
    // With TLS, connections arrive with their handshake done, each made in
    // a task of its own so that a client that connects and stays silent
    // holds up no one (the head deadline starts after the handshake's own).
    let mut incoming = match tls {
        Some(acceptor) => Incoming::Tls(tls::incoming(listener, acceptor)),
        None => Incoming::Plain(listener),
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = incoming.next() => match accepted {
                Some(Connection::Plain(socket, peer)) => {
                    // Stream frames are small and must leave at once, not
                    // wait for an ACK (`tls::incoming` sets it for TLS).
                    let _ = socket.set_nodelay(true);
                    spawn_connection(&builder, &graceful, socket, peer, &app);
                }
                Some(Connection::Tls(stream, peer)) => spawn_connection(&builder, &graceful, stream, peer, &app),
                None => break,
            },
            () = &mut shutdown => break,
        }
    }
    // Dropping the TLS receiver stops its accepting; handshakes still in
    // flight are then dropped.
    drop(incoming);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::debug!("connections still open after the shutdown grace; closing them");
    }
}

enum Incoming {
    Plain(TcpListener),
    Tls(tokio::sync::mpsc::Receiver<tls::Accepted>),
}

enum Connection {
    Plain(TcpStream, SocketAddr),
    // Boxed: a TLS stream carries its session state, over a kilobyte.
    Tls(Box<TlsStream<TcpStream>>, SocketAddr),
}

impl Incoming {
    /// The next connection; `None` once no more can come.
    async fn next(&mut self) -> Option<Connection> {
        match self {
            Incoming::Plain(listener) => loop {
                match listener.accept().await {
                    Ok((socket, peer)) => return Some(Connection::Plain(socket, peer)),
                    Err(e) => {
                        // Out of descriptors and the like: wait, do not spin.
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            },
            Incoming::Tls(connections) => {
                connections.recv().await.map(|(stream, peer)| Connection::Tls(Box::new(stream), peer))
            }
        }
    }
}

/// Serves one connection, HTTP/1.1 (with upgrades, for WebSockets) or
/// HTTP/2, in a task of its own.
fn spawn_connection<I>(
    builder: &Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    io: I,
    peer: SocketAddr,
    app: &Router,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app.clone().map_request(move |mut request: Request<_>| {
        // Handlers learn who is calling (per-client upload limits).
        request.extensions_mut().insert(ConnectInfo(peer));
        host_from_authority(&mut request);
        request.map(Body::new)
    }));
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned();
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("connection: {e}");
        }
    });
}

/// Gives an HTTP/2 request the `Host` header HTTP/1.1 would have had.
/// Browsers send the host of an HTTP/2 request in `:authority` alone, and
/// the same-site checks (`stream::origin_allowed`) compare `Origin` with
/// `Host`; RFC 9113 (8.3.1) asks the same of anything that passes such a
/// request on as HTTP/1.1.
fn host_from_authority<B>(request: &mut Request<B>) {
    if request.headers().contains_key(header::HOST) {
        return;
    }
    let Some(host) = request.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) else {
        return;
    };
    request.headers_mut().insert(header::HOST, host);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http2_request_gets_its_authority_as_host() {
        let mut request = Request::get("https://convert.example.com:8443/jobs").body(()).unwrap();
        host_from_authority(&mut request);
        assert_eq!(request.headers()[header::HOST], "convert.example.com:8443");

        // A Host sent is left as it is; a request without an authority gets none.
        let mut request = Request::get("https://a.example/").header(header::HOST, "b.example").body(()).unwrap();
        host_from_authority(&mut request);
        assert_eq!(request.headers()[header::HOST], "b.example");
        let mut request = Request::get("/").body(()).unwrap();
        host_from_authority(&mut request);
        assert!(!request.headers().contains_key(header::HOST));
    }
}
