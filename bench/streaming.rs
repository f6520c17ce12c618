//! Scenario 5: a large upload and download through gRPC and through the
//! gateway; the services' memory must not grow with the file.

use super::Bench;
use super::peers;
use super::report::Report;
use super::service::Service;
use super::system::{self, MemorySampler};
use docconv::proto::v1::{
    CancelJobRequest, ConversionOptions, JobState, PdfOptions, SubmitHeader, SubmitRequest, submit_request,
};
use std::fmt::Write as _;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub async fn streaming(bench: &Bench, report: &mut Report) -> Result<(), String> {
    let size = bench.upload_mib << 20;
    let document = bench.work.join("upload.fodt");
    // An image document: the upload is the file itself, the download the
    // PDF LibreOffice makes of the image.
    let pixels = (((size as f64) * 0.9 / 4.0).sqrt()) as u32;
    super::documents::write_image_document(&document, pixels, size).map_err(|e| e.to_string())?;
    let limit = (bench.upload_mib + 16).to_string();
    let service =
        Service::start(&bench.exe, &bench.work, "streaming", true, &["--workers", "1", "--max-upload-mib", &limit])?;
    service.wait_ready().await?;
    let pid = service.pid();
    let mut client = peers::connect(service.grpc).await?;
    let mut rows = Vec::new();

    // gRPC upload, streamed from disk in 1 MiB messages.
    let (job, growth) = measured(pid, submit_file(&mut client, &document)).await;
    let job = job?;
    rows.push(("gRPC", "upload", size as u64, growth));
    let done = peers::watch_to_end(&mut client, &job).await?;
    if done.state() != JobState::Succeeded {
        return Err(format!("the streaming document did not convert: {:?}", done.error));
    }
    let result_size = done.output.map_or(0, |o| o.size_bytes);
    let (read, growth) = measured(pid, peers::read_result(&mut client, &job)).await;
    rows.push(("gRPC", "download", read?, growth));

    // The gateway: a browser-style multipart upload, then the download.
    let gateway = service.http.expect("serve has a gateway");
    let (uploaded, growth) = measured(pid, http_upload(gateway, &document)).await;
    let other = uploaded?;
    rows.push(("gateway", "upload", size as u64, growth));
    // Only the upload matters for this job.
    let _ = client.cancel_job(CancelJobRequest { id: other }).await;
    let (read, growth) = measured(pid, http_download(gateway, &job)).await;
    rows.push(("gateway", "download", read?, growth));

    let mut table = String::from("| path | direction | bytes | peak memory growth |\n|---|---|---|---|\n");
    for (path, direction, bytes, growth_kib) in &rows {
        let _ = writeln!(
            table,
            "| {path} | {direction} | {:.1} MiB | {:.1} MiB |",
            *bytes as f64 / 1048576.0,
            *growth_kib as f64 / 1024.0
        );
        report.target(
            "streaming",
            &format!("{path} {direction}: memory growth under 16 MiB"),
            format!("{:.1} MiB", *growth_kib as f64 / 1024.0),
            (*growth_kib as f64 / 1024.0) < 16.0,
        );
    }
    let _ = write!(
        table,
        "\nThe upload is a {} MiB document (a {pixels}×{pixels} noise image in flat ODF); the download is the \
         {:.1} MiB PDF made of it. Growth is the `docconv serve` process's peak resident memory during the \
         transfer (sampled every 5 ms) above its level just before.\n",
        bench.upload_mib,
        result_size as f64 / 1048576.0
    );
    report.section("5. Streaming", table);
    Ok(())
}

/// Runs `work` while sampling the memory of `pid`; returns its result and
/// the peak growth in KiB.
async fn measured<T>(pid: u32, work: impl std::future::Future<Output = T>) -> (T, u64) {
    let before = system::rss_kib(pid);
    let sampler = MemorySampler::start(vec![pid]);
    let result = work.await;
    let peak = sampler.stop().first().copied().unwrap_or(0);
    (result, peak.saturating_sub(before))
}

async fn submit_file(client: &mut peers::Client, path: &Path) -> Result<String, String> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("upload.fodt").to_owned();
    // Keep images as they are, so the PDF is as large as the upload allows.
    let pdf = PdfOptions { max_image_resolution: 1200, ..Default::default() };
    let header = SubmitHeader {
        file_name: name,
        options: Some(ConversionOptions { pdf: Some(pdf), ..Default::default() }),
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.blocking_send(SubmitRequest { payload: Some(submit_request::Payload::Header(header)) });
        let Ok(mut file) = std::fs::File::open(path) else {
            return;
        };
        let mut buffer = vec![0u8; 1 << 20];
        while let Ok(n) = file.read(&mut buffer) {
            if n == 0
                || tx
                    .blocking_send(SubmitRequest { payload: Some(submit_request::Payload::Data(buffer[..n].to_vec())) })
                    .is_err()
            {
                return;
            }
        }
    });
    let job = client.submit(tokio_stream::wrappers::ReceiverStream::new(rx)).await.map_err(|e| e.to_string())?;
    Ok(job.into_inner().id)
}

/// POSTs `path` as a multipart form to the gateway, reading it from disk as
/// it goes; returns the job id.
async fn http_upload(gateway: SocketAddr, path: &Path) -> Result<String, String> {
    let boundary = "docconv-benchmark-boundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload.fodt\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() as u64 + std::fs::metadata(path).map_err(|e| e.to_string())?.len() + tail.len() as u64;
    let mut stream = tokio::net::TcpStream::connect(gateway).await.map_err(|e| e.to_string())?;
    let request = format!(
        "POST /convert HTTP/1.1\r\nHost: {gateway}\r\nAccept: application/json\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{head}"
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut file = tokio::fs::File::open(path).await.map_err(|e| e.to_string())?;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        stream.write_all(&buffer[..n]).await.map_err(|e| e.to_string())?;
    }
    stream.write_all(tail.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.map_err(|e| e.to_string())?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("{e}: {response}"))?;
    json["jobs"][0]["id"].as_str().map(str::to_owned).ok_or_else(|| format!("no job in {body}"))
}

/// GETs the job's download from the gateway; returns the bytes received.
async fn http_download(gateway: SocketAddr, id: &str) -> Result<u64, String> {
    let mut stream = tokio::net::TcpStream::connect(gateway).await.map_err(|e| e.to_string())?;
    let request = format!("GET /jobs/{id}/download HTTP/1.1\r\nHost: {gateway}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    let mut head = Vec::new();
    let mut body_started = false;
    loop {
        let n = stream.read(&mut buffer).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        if body_started {
            total += n as u64;
            continue;
        }
        head.extend_from_slice(&buffer[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            if !head.starts_with(b"HTTP/1.1 200") {
                return Err(format!("download failed: {}", String::from_utf8_lossy(&head[..end])));
            }
            total += (head.len() - end - 4) as u64;
            body_started = true;
        }
    }
    Ok(total)
}
