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
use docconv::proto::v1::{CancelJobRequest, GetJobRequest, JobState, WatchJobRequest, watch_job_response};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

/// The documents of a watchers' run: busy ones, three per worker, holding
/// every worker for seconds (long enough to connect ten thousand watchers),
/// and a small one queued behind them for the watchers to watch.
pub struct WatchedJobs<'a> {
    pub busy: &'a Document,
    pub small: &'a Document,
    pub workers: usize,
}

/// Where watchers connect.
pub enum Route {
    /// gRPC, taking turns over these converters, a connection per 500
    /// watchers on each, as separate clients would make.
    Grpc(Vec<SocketAddr>),
    /// WebSocket, through this gateway.
    WebSocket(SocketAddr),
}

/// How one watcher connects.
enum Via {
    Grpc(Client),
    WebSocket(SocketAddr),
}

/// What a crowd of watchers cost and saw.
pub struct Crowd {
    /// Growth of each process's memory with every watcher connected, in KiB.
    pub growth_kib: Vec<u64>,
    /// From each state's writing to its arrival, in ms, over every state
    /// after the snapshot.
    pub delays: Samples,
    pub delivered: usize,
    /// From the first watcher's call to the last one's snapshot.
    pub connect: Duration,
    /// Watchers whose watch failed, before or after its snapshot.
    pub failed: usize,
    pub first_error: Option<String>,
    /// Whether the watched job was still waiting once every watcher had
    /// connected: if not, some were gone when memory was read.
    pub held: bool,
}

impl Crowd {
    /// What went wrong, if anything: then the figures are not the cost of
    /// `count` live watchers.
    pub fn trouble(&self, count: usize) -> Option<String> {
        if self.failed > 0 {
            let first = self.first_error.as_deref().unwrap_or("");
            return Some(format!("{} of {count} watches failed (the first: {first})", self.failed));
        }
        (!self.held).then(|| format!("the watched job ran before {count} watchers had connected"))
    }

    /// The measured cell of a target of under 20 KiB per watcher, and
    /// whether it is met: a figure counts only when every watcher was live.
    pub fn judge(&self, count: usize, kib: f64) -> (String, bool) {
        match self.trouble(count) {
            Some(trouble) => (trouble, false),
            None => (format!("{kib:.1} KiB"), kib < 20.0),
        }
    }
}

/// Connects `count` watchers of a job waiting behind busy ones, reads how
/// much the memory of `pids` grew, then frees the workers (cancelling the
/// busy jobs) and waits for every watcher to see the job end or fail.
pub async fn crowd(
    client: &mut Client,
    documents: &WatchedJobs<'_>,
    count: usize,
    route: &Route,
    pids: &[u32],
) -> Result<Crowd, String> {
    let mut busy = Vec::new();
    for _ in 0..3 * documents.workers {
        busy.push(peers::submit(client, documents.busy).await?.id);
    }
    let waiting = peers::submit(client, documents.small).await?.id;
    let before: Vec<u64> = pids.iter().map(|&pid| system::rss_kib(pid)).collect();
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(count);
    let (delays_tx, mut delays_rx) = mpsc::unbounded_channel::<Vec<u64>>();
    let (errors_tx, mut errors_rx) = mpsc::unbounded_channel::<String>();
    let connecting = std::time::Instant::now();
    let nodes = if let Route::Grpc(converters) = route { converters.len() } else { 0 };
    let mut connections: Vec<Option<Client>> = vec![None; nodes];
    for index in 0..count {
        let (ready, delays, errors) = (ready_tx.clone(), delays_tx.clone(), errors_tx.clone());
        let waiting = waiting.clone();
        let via = match route {
            Route::Grpc(converters) => {
                let (node, nth) = (index % nodes, index / nodes);
                if nth % 500 == 0 {
                    connections[node] = Some(peers::connect(converters[node]).await?);
                }
                Via::Grpc(connections[node].clone().ok_or("no connection")?)
            }
            &Route::WebSocket(gateway) => Via::WebSocket(gateway),
        };
        tokio::spawn(async move {
            let watched = match via {
                Via::Grpc(mut grpc) => watch_grpc(&mut grpc, &waiting, ready).await,
                Via::WebSocket(gateway) => watch_websocket(gateway, &waiting, ready).await,
            };
            match watched {
                Ok(batch) => drop(delays.send(batch)),
                Err(e) => drop(errors.send(e)),
            }
        });
    }
    drop((errors_tx, ready_tx, delays_tx));
    let mut connected = 0;
    while connected < count && ready_rx.recv().await.is_some() {
        connected += 1;
    }
    let connect = connecting.elapsed();
    // Let the allocator settle before reading memory.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = client.get_job(GetJobRequest { id: waiting.clone() }).await.map_err(|e| e.to_string())?;
    let held = still.into_inner().state() == JobState::Queued;
    let growth_kib =
        pids.iter().zip(before).map(|(&pid, before)| system::rss_kib(pid).saturating_sub(before)).collect();
    for id in busy {
        // A busy job left running only delays the watched one.
        if let Err(e) = client.cancel_job(CancelJobRequest { id }).await {
            eprintln!("bench: a busy job could not be cancelled, so runs to its end: {}", e.message());
        }
    }
    let mut delays = Samples::default();
    let mut delivered = 0;
    while let Some(batch) = delays_rx.recv().await {
        delivered += batch.len();
        for micros in batch {
            delays.push(micros as f64 / 1000.0);
        }
    }
    let first_error = errors_rx.recv().await;
    let failed = usize::from(first_error.is_some()) + std::iter::from_fn(|| errors_rx.try_recv().ok()).count();
    Ok(Crowd { growth_kib, delays, delivered, connect, failed, first_error, held })
}

pub async fn watchers(bench: &Bench, busy: &Document, small: &Document, report: &mut Report) -> Result<(), String> {
    system::raise_file_limit();
    let service = Service::start(&bench.exe, &bench.work, "watchers", false, &["--workers", "1"])?;
    service.wait_ready().await?;
    let gateway_process = Gateway::start(&bench.exe, service.grpc).await?;
    let mut client = peers::connect(service.grpc).await?;
    let documents = WatchedJobs { busy, small, workers: 1 };
    let mut table = String::from(
        "| watchers | over | memory per watcher: converter | gateway | delay median | delay p99 | states delivered |\n|---|---|---|---|---|---|---|\n",
    );
    let mut notes = String::new();
    for &count in &bench.watchers {
        for over in ["gRPC", "WebSocket"] {
            let route = match over {
                "gRPC" => Route::Grpc(vec![service.grpc]),
                _ => Route::WebSocket(gateway_process.http),
            };
            let pids = [service.pid(), gateway_process.pid()];
            let crowd = crowd(&mut client, &documents, count, &route, &pids).await?;
            // A watcher that fails is a fault of the service; a watched job
            // that ran too soon (short busy jobs, as in smoke mode) is not.
            if crowd.failed > 0 {
                return Err(format!("{over}: {}", crowd.trouble(count).unwrap_or_default()));
            }
            if let Some(trouble) = crowd.trouble(count) {
                let _ = write!(notes, "\n{count} {over} watchers: {trouble}, so memory was read with fewer.\n");
            }
            let [converter_kib, gateway_kib] = [0, 1].map(|n| crowd.growth_kib[n] as f64 / count as f64);
            let gateway_cell = if over == "gRPC" { "–".to_owned() } else { format!("{gateway_kib:.1} KiB") };
            let _ = writeln!(
                table,
                "| {count} | {over} | {converter_kib:.1} KiB | {gateway_cell} | {:.1} ms | {:.1} ms | {} |",
                crowd.delays.median().unwrap_or(f64::NAN),
                crowd.delays.percentile(0.99).unwrap_or(f64::NAN),
                crowd.delivered
            );
            // Each kind of watcher is judged where it lives: a gRPC watcher
            // in the converter, a WebSocket watcher in the gateway (its
            // converter share is the gRPC figure).
            let judged = if over == "gRPC" { converter_kib } else { gateway_kib };
            let process = if over == "gRPC" { "converter" } else { "gateway" };
            let (measured, met) = crowd.judge(count, judged);
            report.target(
                "watchers",
                &format!("{count} {over} watchers: under 20 KiB each in the {process}"),
                measured,
                met,
            );
        }
    }
    let _ = write!(
        table,
        "\nMemory per watcher is each process's growth with all watchers connected, divided by their number. The \
         converter and the gateway run as separate processes here; a WebSocket watcher costs a socket and a task \
         in the gateway plus a watch in the converter. Delay is from a state's writing (its update_time) to the message \
         arriving at the watching client, over every state after the snapshot.\n{notes}"
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
            delays.push(system::since_written(&job).as_micros() as u64);
        }
        if matches!(job.state(), JobState::Succeeded | JobState::Failed | JobState::Cancelled) {
            break;
        }
    }
    Ok(delays)
}

async fn watch_websocket(gateway: SocketAddr, id: &str, ready: mpsc::Sender<()>) -> Result<Vec<u64>, String> {
    let url = format!("ws://{gateway}/jobs/{id}/stream");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.map_err(|e| e.to_string())?;
    let mut delays = Vec::new();
    let mut first = true;
    while let Some(message) = socket.next().await {
        let tokio_tungstenite::tungstenite::Message::Text(text) = message.map_err(|e| e.to_string())? else {
            continue;
        };
        let arrived = system::now_micros();
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
