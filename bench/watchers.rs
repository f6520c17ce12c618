//! Scenario 4: many watchers of one job, over gRPC and over WebSockets
//! through the gateway: memory per watcher, and the delay from a state
//! change to its arrival.
//!
//! Every state carries the time it was written (`update_time`), so
//! arrival time minus that is the delivery delay (same machine, same clock).

use super::Bench;
use super::documents::Document;
use super::peers::{self, Client};
use super::report::Report;
use super::service::{Gateway, Service};
use super::stats::Samples;
use super::system;
use docconv::proto::v1::{CancelJobRequest, JobState, WatchJobRequest, watch_job_response};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64
}

fn micros_of(time: Option<prost_types::Timestamp>) -> u64 {
    time.and_then(|t| SystemTime::try_from(t).ok())
        .map_or(0, |t| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64)
}

/// Busy jobs holding the only worker for seconds (long enough to connect
/// ten thousand watchers), and a small job queued behind them for the
/// watchers to watch.
async fn busy_and_waiting(
    client: &mut Client,
    busy: &Document,
    small: &Document,
) -> Result<(Vec<String>, String), String> {
    let mut busy_jobs = Vec::new();
    for _ in 0..3 {
        busy_jobs.push(peers::submit(client, busy).await?.id);
    }
    Ok((busy_jobs, peers::submit(client, small).await?.id))
}

pub async fn watchers(bench: &Bench, busy: &Document, small: &Document, report: &mut Report) -> Result<(), String> {
    system::raise_file_limit();
    let service = Service::start(&bench.exe, &bench.work, "watchers", false, &["--workers", "1"])?;
    service.wait_ready().await?;
    let gateway_process = Gateway::start(&bench.exe, service.grpc).await?;
    let gateway = gateway_process.http;
    let mut client = peers::connect(service.grpc).await?;
    let mut table = String::from(
        "| watchers | over | memory per watcher: converter | gateway | delay median | delay p99 | states delivered |\n|---|---|---|---|---|---|---|\n",
    );
    for &count in &bench.watchers {
        for over in ["gRPC", "WebSocket"] {
            let (busy_ids, waiting) = busy_and_waiting(&mut client, busy, small).await?;
            let before = (system::rss_kib(service.pid()), system::rss_kib(gateway_process.pid()));
            let (ready_tx, mut ready_rx) = mpsc::channel::<()>(count);
            let (delays_tx, mut delays_rx) = mpsc::unbounded_channel::<Vec<u64>>();
            let (errors_tx, mut errors_rx) = mpsc::unbounded_channel::<String>();
            // gRPC watchers come over a connection per 500, as separate
            // clients would.
            let mut connection = client.clone();
            for index in 0..count {
                let (ready, delays, errors) = (ready_tx.clone(), delays_tx.clone(), errors_tx.clone());
                let waiting = waiting.clone();
                if over == "gRPC" && index % 500 == 0 {
                    connection = peers::connect(service.grpc).await?;
                }
                let mut grpc = connection.clone();
                tokio::spawn(async move {
                    let watched = match over {
                        "gRPC" => watch_grpc(&mut grpc, &waiting, ready).await,
                        _ => watch_websocket(gateway, &waiting, ready).await,
                    };
                    match watched {
                        Ok(batch) => drop(delays.send(batch)),
                        Err(e) => drop(errors.send(e)),
                    }
                });
            }
            drop(errors_tx);
            drop(ready_tx);
            drop(delays_tx);
            let mut connected = 0;
            while connected < count && ready_rx.recv().await.is_some() {
                connected += 1;
            }
            // Let the allocator settle before reading memory.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let per_watcher = |pid: u32, before: u64| system::rss_kib(pid).saturating_sub(before) as f64 / count as f64;
            let converter_kib = per_watcher(service.pid(), before.0);
            let gateway_kib = per_watcher(gateway_process.pid(), before.1);
            // Free the worker: the watched job starts, runs and ends.
            for id in busy_ids {
                client.cancel_job(CancelJobRequest { id }).await.map_err(|e| e.to_string())?;
            }
            let mut delays = Samples::default();
            let mut delivered = 0;
            while let Some(batch) = delays_rx.recv().await {
                delivered += batch.len();
                for micros in batch {
                    delays.push(micros as f64 / 1000.0);
                }
            }
            let gateway_cell = if over == "gRPC" { "–".to_owned() } else { format!("{gateway_kib:.1} KiB") };
            let _ = writeln!(
                table,
                "| {count} | {over} | {converter_kib:.1} KiB | {gateway_cell} | {:.1} ms | {:.1} ms | {delivered} |",
                delays.median().unwrap_or(f64::NAN),
                delays.percentile(0.99).unwrap_or(f64::NAN)
            );
            // Each kind of watcher is judged where it lives: a gRPC watcher
            // in the converter, a WebSocket watcher in the gateway (its
            // converter share is the gRPC figure).
            let judged = if over == "gRPC" { converter_kib } else { gateway_kib };
            let process = if over == "gRPC" { "converter" } else { "gateway" };
            report.target(
                "watchers",
                &format!("{count} {over} watchers: under 20 KiB each in the {process}"),
                format!("{judged:.1} KiB"),
                judged < 20.0,
            );
            if connected < count {
                let first = errors_rx.recv().await.unwrap_or_default();
                return Err(format!("only {connected} of {count} {over} watchers connected: {first}"));
            }
        }
    }
    let _ = write!(
        table,
        "\nMemory per watcher is each process's growth with all watchers connected, divided by their number. The \
         converter and the gateway run as separate processes here; a WebSocket watcher costs a socket and a task \
         in the gateway plus a watch in the converter. Delay is from a state's writing (its update_time) to the message \
         arriving at the watching client, over every state after the snapshot.\n"
    );
    report.section("4. Watchers", table);
    Ok(())
}

async fn watch_grpc(client: &mut Client, id: &str, ready: mpsc::Sender<()>) -> Result<Vec<u64>, String> {
    let mut stream = client.watch_job(WatchJobRequest { id: id.into() }).await.map_err(|e| e.to_string())?.into_inner();
    let mut delays = Vec::new();
    let mut first = true;
    while let Some(message) = stream.message().await.map_err(|e| e.to_string())? {
        let Some(watch_job_response::Event::Job(job)) = message.event else {
            continue;
        };
        if first {
            first = false;
            let _ = ready.send(()).await;
        } else {
            delays.push(now_micros().saturating_sub(micros_of(job.update_time)));
        }
        if matches!(job.state(), JobState::Succeeded | JobState::Failed | JobState::Cancelled) {
            break;
        }
    }
    Ok(delays)
}

async fn watch_websocket(gateway: std::net::SocketAddr, id: &str, ready: mpsc::Sender<()>) -> Result<Vec<u64>, String> {
    let url = format!("ws://{gateway}/jobs/{id}/stream");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.map_err(|e| e.to_string())?;
    let mut delays = Vec::new();
    let mut first = true;
    while let Some(message) = socket.next().await {
        let tokio_tungstenite::tungstenite::Message::Text(text) = message.map_err(|e| e.to_string())? else {
            continue;
        };
        let arrived = now_micros();
        if first {
            first = false;
            let _ = ready.send(()).await;
            continue;
        }
        let updated = text
            .split("data-updated=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or("a frame without its time of writing")?;
        delays.push(arrived.saturating_sub(updated));
    }
    Ok(delays)
}
