//! What operators see of a running service: a Prometheus scrape
//! (`--metrics-listen`) after real conversions, a failure and a download
//! through the gateway; JSON logs in which one trace id follows an upload
//! from the browser's request through the converter to the job; and the
//! same trace's spans, linked, exported to an OpenTelemetry collector.

use crate::support::*;
use docconv::proto::v1::JobState;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
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

/// `docconv serve` on free ports with `extra` flags, logging to `log`.
fn serve(
    data_dir: &std::path::Path,
    grpc: SocketAddr,
    web: SocketAddr,
    extra: &[&str],
    log: std::process::Stdio,
) -> Process {
    Process(
        Command::new(docconv_exe())
            .args(["serve", "--workers", "1", "--shutdown-grace-secs", "0"])
            .args(["--grpc-listen", &grpc.to_string(), "--http-listen", &web.to_string()])
            .args(extra)
            .arg("--data-dir")
            .arg(data_dir)
            .env("DOCCONV_LOG", "info")
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

#[tokio::test]
async fn a_scrape_counts_jobs_by_kind_and_outcome_stages_bytes_and_gateway_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, web, metrics) = (local(), local(), local());
    let _service =
        serve(dir.path(), grpc, web, &["--metrics-listen", &metrics.to_string()], std::process::Stdio::null());
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

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Uploads page_1.docx through the gateway at `web` as part of the trace
/// `traceparent`; returns the job's id.
async fn upload_in_trace(web: SocketAddr, traceparent: &str) -> String {
    let boundary = "trace-boundary";
    let mut body =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"page_1.docx\"\r\n\r\n")
            .into_bytes();
    body.extend_from_slice(&std::fs::read(fixture("page_1.docx")).unwrap());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let headers =
        [("content-type", content_type.as_str()), ("accept", "application/json"), ("traceparent", traceparent)];
    let reply = http(web, "POST", "/convert", &headers, &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let answer: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    answer["jobs"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn one_trace_id_follows_an_upload_from_the_request_to_the_job_in_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, web) = (local(), local());
    let log_path = dir.path().join("service.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let _service = serve(&dir.path().join("data"), grpc, web, &["--log-format", "json"], log.into());
    wait_ready(grpc);
    let id = upload_in_trace(web, PARENT).await;
    let mut client = connect(grpc).await;
    assert_eq!(wait_end(&mut client, &id).await.state(), JobState::Succeeded);

    // The end is logged right after it is recorded; give it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let lines = loop {
        let text = std::fs::read_to_string(&log_path).unwrap();
        let lines: Vec<serde_json::Value> =
            text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect();
        if lines.iter().any(|line| line["fields"]["message"] == "job ended") || std::time::Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let trace = TRACE_ID;
    let about = |message: &str| {
        lines
            .iter()
            .find(|line| line["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line in {lines:#?}"))
    };
    let uploaded = about("upload submitted");
    assert_eq!(uploaded["span"]["trace_id"], trace, "the gateway's request: {uploaded}");
    let accepted = about("job accepted");
    assert_eq!(
        (&accepted["span"]["trace_id"], &accepted["fields"]["job"]),
        (&trace.into(), &id.clone().into()),
        "{accepted}"
    );
    let ended = about("job ended");
    assert_eq!(
        (&ended["span"]["trace_id"], &ended["span"]["id"]),
        (&trace.into(), &id.into()),
        "the job's own: {ended}"
    );
    assert_eq!(ended["fields"]["state"], "succeeded");
}

/// An OpenTelemetry collector that keeps every span it is sent, with the
/// name of the service that sent it.
#[derive(Clone, Default)]
struct Collector(std::sync::Arc<std::sync::Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for batch in request.into_inner().resource_spans {
            let service = batch
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| attribute.value.as_ref())
                .map(|value| format!("{:?}", value.value))
                .unwrap_or_default();
            let spans = batch.scope_spans.into_iter().flat_map(|scope| scope.spans);
            self.0.lock().unwrap().extend(spans.map(|span| (service.clone(), span)));
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test]
async fn spans_of_the_request_the_submit_and_the_job_reach_a_collector_linked_in_the_callers_trace() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let dir = tempfile::tempdir().unwrap();
    let (grpc, web) = (local(), local());
    let endpoint = format!("http://{otlp}");
    let _service = serve(dir.path(), grpc, web, &["--otlp-endpoint", &endpoint], std::process::Stdio::null());
    wait_ready(grpc);
    let id = upload_in_trace(web, PARENT).await;
    let mut client = connect(grpc).await;
    assert_eq!(wait_end(&mut client, &id).await.state(), JobState::Succeeded);

    // Spans are sent in batches, a few seconds apart.
    let trace: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&TRACE_ID[2 * i..2 * i + 2], 16).unwrap()).collect();
    let ours = |spans: &[(String, Span)], name: &str| {
        spans.iter().find(|(_, span)| span.name == name && span.trace_id == trace).cloned()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (request, submit, job) = loop {
        let spans = collector.0.lock().unwrap().clone();
        if let (Some(request), Some(submit), Some(job)) =
            (ours(&spans, "request"), ours(&spans, "submit"), ours(&spans, "job"))
        {
            break (request, submit, job);
        }
        let names: Vec<&str> = spans.iter().map(|(_, span)| span.name.as_str()).collect();
        assert!(std::time::Instant::now() < deadline, "the trace's spans never all arrived: {names:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(request.0.contains("docconv"), "sent as the service: {}", request.0);
    assert_eq!(docconv::ids::hex(&request.1.parent_span_id), "00f067aa0ba902b7", "the request is the caller's child");
    assert_eq!(submit.1.parent_span_id, request.1.span_id, "the Submit is the request's child");
    assert_eq!(job.1.parent_span_id, submit.1.span_id, "the job is the Submit's child");
}
