//! `--metrics-listen`: what a Prometheus scrape of a running service says
//! after real conversions, a failure and a download through the gateway.

use crate::support::*;
use docconv::proto::v1::JobState;
use std::net::SocketAddr;
use std::process::Command;

fn local() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

/// The samples of a scrape whose name and labels start with `series`,
/// summed (several label sets may match a prefix).
fn sum(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#') && line.starts_with(series))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_scrape_counts_jobs_by_kind_and_outcome_stages_bytes_and_gateway_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, web, metrics) = (local(), local(), local());
    let _service = Process(
        Command::new(docconv_exe())
            .args(["serve", "--workers", "1", "--shutdown-grace-secs", "0"])
            .args(["--grpc-listen", &grpc.to_string(), "--http-listen", &web.to_string()])
            .args(["--metrics-listen", &metrics.to_string()])
            .arg("--data-dir")
            .arg(dir.path())
            .env("DOCCONV_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    wait_ready(grpc);
    let mut client = connect(grpc).await;
    let (job, pdf) = convert(&mut client, "page_1.docx").await;
    let broken = submit(&mut client, header("broken.docx"), b"no office document at all").await.unwrap();
    assert_eq!(wait_end(&mut client, &broken.id).await.state(), JobState::Failed);
    let download = http(web, "GET", &format!("/jobs/{}/download", job.id), &[], b"").await;
    assert_eq!((download.status, download.body.len()), (200, pdf.len()));

    let scrape = http(metrics, "GET", "/metrics", &[], b"").await;
    assert_eq!(scrape.status, 200);
    assert!(scrape.header("content-type").unwrap().starts_with("application/openmetrics-text"));
    let text = scrape.text();
    let sent = |series: &str| sum(&text, series);
    assert_eq!(sent(r#"docconv_jobs_submitted_total{input="docx"}"#), 2.0, "{text}");
    assert_eq!(sent(r#"docconv_jobs_ended_total{input="docx",outcome="succeeded""#), 1.0, "{text}");
    assert_eq!(sent(r#"docconv_jobs_ended_total{input="docx",outcome="failed""#), 1.0, "{text}");
    assert_eq!(sent(r#"docconv_conversion_duration_seconds_count{input="docx"}"#), 1.0, "{text}");
    assert!(sent(r#"docconv_stage_duration_seconds_count{stage="load"}"#) >= 1.0, "{text}");
    assert!(sent("docconv_queue_wait_duration_seconds_count") >= 2.0, "{text}");
    let uploaded = std::fs::metadata(fixture("page_1.docx")).unwrap().len() as f64 + 25.0;
    assert_eq!(sent("docconv_received_bytes_total"), uploaded, "{text}");
    // The client's ReadResult and the gateway's download.
    assert_eq!(sent("docconv_sent_bytes_total"), 2.0 * pdf.len() as f64, "{text}");
    assert_eq!(sent("docconv_gateway_sent_bytes_total"), pdf.len() as f64, "{text}");
    assert_eq!(sent(r#"docconv_gateway_requests_total{route="/jobs/{id}/download",status="2xx"}"#), 1.0, "{text}");
    assert_eq!(sent("docconv_queue_depth "), 0.0, "{text}");
    assert_eq!(sent("docconv_jobs_running "), 0.0, "{text}");
    assert_eq!(sent("docconv_worker_restarts_total"), 0.0, "no worker was replaced: {text}");
    assert!(text.trim_end().ends_with("# EOF"), "a whole OpenMetrics exposition");
}
