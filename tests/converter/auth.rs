//! Tokens: with a tokens file every `docconv.v1.Converter` call needs one of
//! its tokens, health and reflection stay open, editing the file takes
//! effect without a restart, and a bad file stops the start.

use crate::grpcurl;
use crate::support::*;
use docconv::auth::Bearer;
use docconv::proto::v1::{GetJobRequest, JobState, ListFormatsRequest};
use sha2::{Digest, Sha256};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tonic::Code;

// One token per test, so that no test's edits of the file touch another's.
const CONVERTS: &str = "converts-3c9a1e7f5b2d8064a1c3e5f7";
const GRPCURL: &str = "grpcurl-8d2f4a6c0e1b3d5f7a9c2e4f";
const KEPT: &str = "kept-5a7c9e1f3b5d7f9a1c3e5a7c";
const REVOKED: &str = "revoked-2e4a6c8e0a2c4e6a8c0e2a4c";
const ADDED: &str = "added-9b1d3f5a7c9e1b3d5f7a9c1e";
/// The command-line client's, in `cli.rs`.
pub const CLI: &str = "cli-6f0b2d4e8a1c3e5b7d9f0a2c";

/// A converter whose tokens file lists every token above but `ADDED`.
pub fn server() -> &'static (Server, TokensFile) {
    static SERVER: OnceLock<(Server, TokensFile)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let tokens = TokensFile::with(&[CONVERTS, GRPCURL, KEPT, REVOKED, CLI]);
        let server = Server::start(|c| c.auth_tokens_file = Some(tokens.path.clone()));
        (server, tokens)
    })
}

async fn client_with(token: &str) -> Client {
    connect_with(server().0.addr, Bearer::new(token).unwrap()).await
}

async fn list_formats(client: &mut Client) -> Result<(), tonic::Status> {
    client.list_formats(ListFormatsRequest {}).await.map(|_| ())
}

#[tokio::test]
async fn calls_need_a_listed_token_while_health_stays_open() {
    let (server, _) = server();
    assert_eq!(health(server.addr).await, Some(1), "health answers without a token");

    let mut anonymous = server.client().await;
    let refused = list_formats(&mut anonymous).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("authorization: Bearer <token>"), "{}", refused.message());
    // An upload is refused as a whole, and so is a watch.
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let refused = submit(&mut anonymous, header("page_1.docx"), &data).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let watch = docconv::proto::v1::WatchJobRequest { id: "0123456789abcdef0123456789abcdef".into() };
    assert_eq!(anonymous.watch_job(watch).await.unwrap_err().code(), Code::Unauthenticated);

    let mut guessing = client_with("not-a-token-of-this-service").await;
    let refused = guessing.get_job(GetJobRequest { id: "0123456789abcdef0123456789abcdef".into() }).await;
    let refused = refused.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("not accepted"), "{}", refused.message());

    let mut client = client_with(CONVERTS).await;
    let (job, pdf) = convert(&mut client, "page_1.docx").await;
    assert_eq!(job.state(), JobState::Succeeded);
    assert_eq!(pdf_pages(&pdf), 1);
}

/// Polls `call` until it gives `code` (`None`: success), for up to 10 s.
async fn wait_for(client: &mut Client, code: Option<Code>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = list_formats(client).await.err().map(|s| s.code());
        if got == code {
            return;
        }
        assert!(Instant::now() < deadline, "still {got:?}, expected {code:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn editing_the_file_revokes_and_adds_tokens_without_a_restart() {
    let (_, tokens) = server();
    let (mut kept, mut revoked, mut added) =
        (client_with(KEPT).await, client_with(REVOKED).await, client_with(ADDED).await);
    list_formats(&mut kept).await.unwrap();
    list_formats(&mut revoked).await.unwrap();
    assert_eq!(list_formats(&mut added).await.unwrap_err().code(), Code::Unauthenticated);

    // The line removed by an edit in place: the next calls on the same
    // connection are refused.
    tokens.rewrite(&[CONVERTS, GRPCURL, KEPT, CLI]);
    wait_for(&mut revoked, Some(Code::Unauthenticated)).await;
    list_formats(&mut kept).await.unwrap();

    // A line added, the new file renamed over the old.
    tokens.replace(&[CONVERTS, GRPCURL, KEPT, ADDED, CLI]);
    wait_for(&mut added, None).await;
    list_formats(&mut kept).await.unwrap();
    assert_eq!(list_formats(&mut revoked).await.unwrap_err().code(), Code::Unauthenticated);
}

#[test]
fn grpcurl_sends_the_token_with_h_and_discovers_the_api_without_one() {
    let addr = server().0.addr.to_string();
    // Reflection is open: grpcurl lists and describes without a token.
    let services = grpcurl::run(&["-plaintext", &addr, "list"], None);
    assert!(services.contains("docconv.v1.Converter"), "{services}");
    let described = grpcurl::run(&["-plaintext", &addr, "describe", "docconv.v1.Converter"], None);
    assert!(described.contains("rpc Submit"), "{described}");
    let health = grpcurl::run(&["-plaintext", &addr, "grpc.health.v1.Health/Check"], None);
    assert!(health.contains("SERVING"), "{health}");

    let refused = grpcurl::run_failing(&["-plaintext", &addr, "docconv.v1.Converter/ListFormats"], "");
    assert!(refused.contains("Unauthenticated") && refused.contains("authorization: Bearer"), "{refused}");

    let authorization = format!("authorization: Bearer {GRPCURL}");
    let run = |args: &[&str], input: Option<&str>| {
        let mut all = vec!["-plaintext", "-H", &authorization];
        all.extend_from_slice(args);
        grpcurl::run(&all, input)
    };
    use base64::Engine;
    let document = base64::engine::general_purpose::STANDARD.encode(std::fs::read(fixture("page_2.docx")).unwrap());
    let body = format!("{{\"header\": {{\"file_name\": \"page_2.docx\"}}}} {{\"data\": \"{document}\"}}");
    let submitted = grpcurl::json_stream(&run(&["-d", "@", &addr, "docconv.v1.Converter/Submit"], Some(&body)));
    let id = submitted[0]["id"].as_str().expect("a job id").to_owned();
    let request = format!("{{\"id\": \"{id}\"}}");
    let watched = grpcurl::json_stream(&run(&["-d", &request, &addr, "docconv.v1.Converter/WatchJob"], None));
    assert_eq!(watched.last().unwrap()["job"]["state"], "JOB_STATE_SUCCEEDED", "{watched:?}");
}

#[test]
fn hash_token_prints_the_line_for_a_token_read_from_stdin() {
    let token = "a-long-random-token-0123456789";
    let hex: String = Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    // The newline that ends the input is no part of the token.
    let output = hash_token(&format!("{token}\n"), Some("ci"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8(output.stdout).unwrap(), format!("{hex} ci\n"));
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
    let output = hash_token(token, None);
    assert_eq!(String::from_utf8(output.stdout).unwrap(), format!("{hex}\n"));

    // A short token is hashed, with a warning.
    let output = hash_token("short\n", None);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("can be guessed"));

    for bad in ["", "\n", "two words\n", "one\ntwo\n", "naïve-token-0123456789\n"] {
        let output = hash_token(bad, None);
        assert!(!output.status.success(), "{bad:?} was hashed");
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("token"), "{bad:?}: {stderr}");
    }
}

#[test]
fn a_bad_tokens_file_stops_the_start_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("tokens");
    let good = String::from_utf8(hash_token("a-long-random-token-0123456789", None).stdout).unwrap();
    std::fs::write(&bad, format!("# tokens\n{good}not-a-hash ci\n")).unwrap();
    let missing = dir.path().join("missing");
    let malformed = format!("{}:3: expected the lowercase hex SHA-256 of a token", bad.display());
    let unreadable = format!("cannot read the tokens file {}", missing.display());
    let data_dir = dir.path().join("data");
    let data_dir = data_dir.to_str().unwrap();
    let converter = ["converter", "--listen", "127.0.0.1:0", "--data-dir", data_dir];
    let gateway = ["gateway", "--listen", "127.0.0.1:0"];
    let cases = [
        (&converter[..], Some(&bad), None, &malformed),
        // The environment variable works as the flag does.
        (&gateway[..], None, Some(&bad), &malformed),
        (&converter[..], Some(&missing), None, &unreadable),
        (&gateway[..], Some(&missing), None, &unreadable),
    ];
    for (args, flag, env, needle) in cases {
        let mut command = Command::new(docconv_exe());
        command.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
        if let Some(path) = flag {
            command.arg("--auth-tokens-file").arg(path);
        }
        match env {
            Some(path) => command.env("DOCCONV_AUTH_TOKENS_FILE", path),
            None => command.env_remove("DOCCONV_AUTH_TOKENS_FILE"),
        };
        let output = exit_within(command.spawn().unwrap(), Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} started");
        assert!(stderr.contains(needle.as_str()), "{args:?}: {stderr}");
        assert!(!stderr.contains("not-a-hash"), "the bad line was quoted: {stderr}");
    }
    assert!(!std::path::Path::new(data_dir).exists(), "the converter began to start");
}
