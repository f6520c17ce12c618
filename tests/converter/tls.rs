//! TLS on the gRPC listener: grpcurl and Rust clients trusting a private CA,
//! plain-text clients refused without harm, a renewed certificate served to
//! new connections without a restart, and start errors that name the file.

use crate::grpcurl;
use crate::support::*;
use docconv::auth::Bearer;
use docconv::proto::v1::ListFormatsRequest;
use docconv::proto::v1::converter_client::ConverterClient;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::transport::Endpoint;

/// One converter serving TLS for every test here (its certificate is
/// renewed by one of them; every pair comes from the same CA).
pub fn server() -> &'static (Server, TlsFiles) {
    static SERVER: OnceLock<(Server, TlsFiles)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let files = TlsFiles::new();
        let server = Server::start(|c| c.tls = Some(files.open()));
        (server, files)
    })
}

/// A converter client over one connection that the test makes itself, so
/// it knows which certificate that connection was given, and whether the
/// channel ever made another.
async fn recorded_client(files: &TlsFiles, addr: SocketAddr) -> (Client, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let connector = {
        let (seen, connector) = (seen.clone(), files.connector(&[b"h2"]));
        tower::service_fn(move |_: tonic::transport::Uri| {
            let (seen, connector) = (seen.clone(), connector.clone());
            async move {
                let socket = TcpStream::connect(addr).await?;
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                let stream = connector.connect(name, socket).await?;
                seen.lock().unwrap().push(peer_fingerprint(&stream));
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        })
    };
    // http: the connector hands over connections already encrypted.
    let channel = Endpoint::from_static("http://localhost").connect_with_connector(connector).await.unwrap();
    (ConverterClient::with_interceptor(channel, Bearer::none()), seen)
}

async fn list_formats(client: &mut Client) {
    client.list_formats(ListFormatsRequest {}).await.unwrap();
}

#[test]
fn grpcurl_reaches_health_reflection_and_the_api_with_cacert() {
    let (server, files) = server();
    let addr = server.addr.to_string();
    let ca = files.ca_path.to_str().unwrap();
    let services = grpcurl::run(&["-cacert", ca, &addr, "list"], None);
    for service in ["docconv.v1.Converter", "grpc.health.v1.Health"] {
        assert!(services.contains(service), "{services}");
    }
    let health = grpcurl::run(&["-cacert", ca, &addr, "grpc.health.v1.Health/Check"], None);
    assert!(health.contains("\"SERVING\""), "{health}");
    let formats =
        grpcurl::json_stream(&grpcurl::run(&["-cacert", ca, &addr, "docconv.v1.Converter/ListFormats"], None));
    assert!(formats[0]["maxUploadBytes"].as_str().is_some(), "{formats:?}");
    assert!(formats[0].to_string().contains("docx"), "{formats:?}");

    // Without the CA the certificate is refused; in plain text the call fails.
    let untrusted = grpcurl::run_failing(&[&addr, "grpc.health.v1.Health/Check"], "");
    assert!(untrusted.contains("certificate"), "{untrusted}");
    grpcurl::run_failing(&["-plaintext", &addr, "grpc.health.v1.Health/Check"], "");
}

#[tokio::test]
async fn a_client_trusting_the_ca_converts_a_document() {
    let (server, files) = server();
    let mut client = files.client(server.addr).await;
    let (job, pdf) = convert(&mut client, "page_1.docx").await;
    assert_eq!(job.state(), docconv::proto::v1::JobState::Succeeded);
    assert_eq!(pdf_pages(&pdf), 1);
}

#[tokio::test]
async fn plain_text_and_silent_clients_are_cut_off_while_the_server_keeps_serving() {
    let (server, files) = server();
    // A client that connects and says nothing holds up no one: each
    // handshake runs apart from accepting.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();

    assert_eq!(health(server.addr).await, None, "a plain-text gRPC client gets no answer");
    // What it sees: a TLS alert at most, then the connection closes.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer))
        .await
        .expect("the server closes a plain-text connection")
        .unwrap();
    assert!(answer.is_empty() || answer[0] == 0x15, "not a TLS alert: {answer:?}");

    let stream = files.connect(server.addr, &[b"h2", b"http/1.1"]).await;
    assert_eq!(alpn(&stream).as_deref(), Some("h2"), "gRPC is HTTP/2 only");
    let mut client = files.client(server.addr).await;
    list_formats(&mut client).await;

    // The silent client is cut off once its handshake is overdue.
    let mut buffer = [0u8; 16];
    let read =
        tokio::time::timeout(docconv_auth::tls::HANDSHAKE_TIMEOUT + Duration::from_secs(5), silent.read(&mut buffer))
            .await
            .expect("a connection without a handshake is closed after the handshake deadline");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    list_formats(&mut client).await;
}

#[tokio::test]
async fn a_renewed_certificate_reaches_new_connections_while_open_ones_keep_going() {
    let (server, files) = server();
    let (mut before, seen_before) = recorded_client(files, server.addr).await;
    list_formats(&mut before).await;
    let old = seen_before.lock().unwrap()[0].clone();

    let new = files.renew();
    assert_ne!(new, old);
    tokio::time::sleep(docconv_auth::RELOAD_INTERVAL + Duration::from_millis(300)).await;
    let (mut after, seen_after) = recorded_client(files, server.addr).await;
    list_formats(&mut after).await;
    assert_eq!(*seen_after.lock().unwrap(), std::slice::from_ref(&new), "a new connection gets the new certificate");
    // The connection made before goes on, never remade.
    list_formats(&mut before).await;
    assert_eq!(*seen_before.lock().unwrap(), [old], "the open connection was remade");

    // A pair that cannot be used leaves the last good one served...
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n").unwrap();
    tokio::time::sleep(docconv_auth::RELOAD_INTERVAL + Duration::from_millis(300)).await;
    let stream = files.connect(server.addr, &[b"h2"]).await;
    assert_eq!(peer_fingerprint(&stream), new);
    list_formats(&mut files.client(server.addr).await).await;

    // ...until a good one is saved.
    let newer = files.renew();
    tokio::time::sleep(docconv_auth::RELOAD_INTERVAL + Duration::from_millis(300)).await;
    let stream = files.connect(server.addr, &[b"h2"]).await;
    assert_eq!(peer_fingerprint(&stream), newer);
    list_formats(&mut after).await;
}

/// Runs `docconv` with `args` (and `env`), expecting it to stop at once
/// with an error; returns what it printed.
fn start_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let child = std::process::Command::new(docconv_exe())
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let output = exit_within(child, Duration::from_secs(30));
    assert!(!output.status.success(), "docconv {args:?} started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_tls_settings_stop_the_start_with_a_message_naming_the_problem() {
    let files = TlsFiles::new();
    let other = TlsFiles::new();
    let (cert, key) = (files.cert.to_str().unwrap(), files.key.to_str().unwrap());
    let missing = files.cert.with_file_name("missing.pem");
    let missing = missing.to_str().unwrap();
    let key_body: String =
        std::fs::read_to_string(&other.key).unwrap().lines().filter(|l| !l.starts_with("---")).collect();

    for part in [
        &["converter", "--listen", "127.0.0.1:0"][..],
        &["gateway", "--listen", "127.0.0.1:0"],
        &["serve", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"],
    ] {
        fn with<'a>(part: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
            [part, extra].concat()
        }
        let error = start_error(&with(part, &["--tls-cert", cert]), &[]);
        assert!(error.contains("--tls-key (DOCCONV_TLS_KEY) is missing"), "{part:?}: {error}");
        let error = start_error(part, &[("DOCCONV_TLS_KEY", key)]);
        assert!(error.contains("--tls-cert (DOCCONV_TLS_CERT) is missing"), "{part:?}: {error}");
        let error = start_error(&with(part, &["--tls-cert", missing, "--tls-key", key]), &[]);
        assert!(error.contains(&format!("cannot read the TLS certificate file {missing}")), "{part:?}: {error}");
        let error = start_error(&with(part, &["--tls-cert", key, "--tls-key", key]), &[]);
        assert!(error.contains(&format!("the TLS certificate file {key}: no certificate")), "{part:?}: {error}");
        let error = start_error(&with(part, &["--tls-cert", cert, "--tls-key", other.key.to_str().unwrap()]), &[]);
        assert!(error.contains("is not the key of the certificate in"), "{part:?}: {error}");
        assert!(!error.contains(&key_body[..40]), "key material in the message: {error}");
    }
    // An https converter URL needs a CA to check it with.
    let error = start_error(&["gateway", "--listen", "127.0.0.1:0", "--converter-url", "https://localhost:1"], &[]);
    assert!(error.contains("give --converter-ca FILE"), "{error}");
}
