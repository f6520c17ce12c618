//! The live status stream, read frame by frame with a real WebSocket client.

use crate::support::{self, big_text_document, fixture, header, submit};
use crate::web::{converter, serve};
use tokio_stream::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};

/// Every text frame of a job's stream, then the close code.
async fn read_stream(id: &str) -> (Vec<String>, Option<CloseCode>) {
    let url = format!("ws://{}/jobs/{id}/stream", serve());
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    frames_until_close(&mut socket).await
}

/// Every text frame an open stream sends, then its close code.
pub async fn frames_until_close(
    socket: &mut (impl tokio_stream::Stream<Item = Result<Message, Error>> + Unpin),
) -> (Vec<String>, Option<CloseCode>) {
    let mut frames = Vec::new();
    while let Some(message) = socket.next().await {
        match message.unwrap() {
            Message::Text(text) => frames.push(text.to_string()),
            Message::Close(frame) => return (frames, frame.map(|f| f.code)),
            _ => {}
        }
    }
    (frames, None)
}

#[tokio::test]
async fn frames_go_from_snapshot_through_progress_to_the_result_then_close_1000() {
    let mut client = converter().client().await;
    // A document that takes a moment, so there is progress to see.
    let document = big_text_document(3000);
    let job = submit(&mut client, header("report.fodt"), &document[..]).await.unwrap();
    let (frames, close) = read_stream(&job.id).await;

    let target = format!("<turbo-stream action=\"replace\" target=\"job-{}\">", job.id);
    assert!(frames.iter().all(|f| f.starts_with(&target)), "{frames:?}");
    assert!(frames[0].contains("data-ended=\"false\""), "the first frame is the live snapshot: {}", frames[0]);
    assert!(frames.iter().any(|f| f.contains("<progress")), "no progress frame: {frames:?}");
    let last = frames.last().unwrap();
    assert!(last.contains("data-ended=\"true\"") && last.contains("Download report.pdf"), "{last}");
    assert_eq!(frames.iter().filter(|f| f.contains("data-ended=\"true\"")).count(), 1);
    // The live region is updated alongside the card.
    assert!(last.contains(&format!("target=\"job-{}-status\"", job.id)));
    assert_eq!(close, Some(CloseCode::Normal));
}

#[tokio::test]
async fn a_finished_job_gives_one_frame_then_close_1000() {
    let mut client = converter().client().await;
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let job = submit(&mut client, header("page_1.docx"), &data).await.unwrap();
    support::wait_end(&mut client, &job.id).await;
    let (frames, close) = read_stream(&job.id).await;
    assert_eq!(frames.len(), 1);
    assert!(frames[0].contains("Download page_1.pdf"));
    assert_eq!(close, Some(CloseCode::Normal));
}

#[tokio::test]
async fn hostile_file_names_are_escaped_in_frames() {
    let mut client = converter().client().await;
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let name = "<img src=x onerror=alert(1)>.docx";
    let job = submit(&mut client, header(name), &data).await.unwrap();
    let (frames, _) = read_stream(&job.id).await;
    for frame in &frames {
        assert!(!frame.contains("<img src=x"), "{frame}");
        assert!(frame.contains("&lt;img src=x onerror=alert(1)&gt;.docx"), "{frame}");
    }
}

#[tokio::test]
async fn other_sites_cannot_open_the_stream() {
    let mut client = converter().client().await;
    let data = std::fs::read(fixture("page_1.docx")).unwrap();
    let job = submit(&mut client, header("page_1.docx"), &data).await.unwrap();
    let mut request = format!("ws://{}/jobs/{}/stream", serve(), job.id).into_client_request().unwrap();
    request.headers_mut().insert("origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("a foreign origin was let in: {:?}", other.map(|(_, r)| r.status())),
    }
    // The page's own origin is welcome.
    let mut request = format!("ws://{}/jobs/{}/stream", serve(), job.id).into_client_request().unwrap();
    request.headers_mut().insert("origin", format!("http://{}", serve()).parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
}

#[tokio::test]
async fn unknown_jobs_are_404_before_any_upgrade() {
    let url = format!("ws://{}/jobs/0123456789abcdef0123456789abcdef/stream", serve());
    match tokio_tungstenite::connect_async(url).await {
        Err(Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("expected 404, got {:?}", other.map(|(_, r)| r.status())),
    }
}

#[tokio::test]
async fn a_broken_off_converter_stream_closes_with_1013_so_the_page_reconnects() {
    let server = support::Server::start(|_| {});
    let gateway = crate::web::spawn_gateway(server.addr);
    let mut client = server.client().await;
    let job = submit(&mut client, header("long.fodt"), &big_text_document(20000)[..]).await.unwrap();
    let url = format!("ws://{gateway}/jobs/{}/stream", job.id);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(matches!(socket.next().await, Some(Ok(Message::Text(_)))), "no snapshot frame");
    // The converter shuts down while the job runs.
    drop(server);
    let mut close = None;
    while let Some(message) = socket.next().await {
        if let Ok(Message::Close(frame)) = message {
            close = frame.map(|f| u16::from(f.code));
            break;
        }
    }
    assert_eq!(close, Some(docconv_gateway::CLOSE_RECONNECT));
}

#[tokio::test]
async fn browsers_watching_one_job_share_its_frames() {
    let mut client = converter().client().await;
    let job = submit(&mut client, header("shared.fodt"), &big_text_document(3000)[..]).await.unwrap();
    let (first, second) = tokio::join!(read_stream(&job.id), read_stream(&job.id));
    let (first, second) = (first.0, second.0);
    assert!(first.last().unwrap().contains("Download shared.pdf"));
    assert_eq!(first.last(), second.last());
    // Whatever both saw after joining, they saw alike and in order.
    let common: Vec<&String> = first.iter().filter(|f| second.contains(f)).collect();
    assert!(common.len() >= 2, "{first:?} / {second:?}");
}
