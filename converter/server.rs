//! Assembles the converter: store, job hub, worker pool and gRPC server
//! (with health and reflection, and the tokens check on the Converter
//! service), over TLS when it has a certificate, and runs it until
//! `shutdown` resolves.

use super::auth::Authenticate;
use super::config::ConverterConfig;
use super::error::Error;
use super::jobs::Jobs;
use super::pool::{Pool, PoolConfig};
use super::postprocess;
use super::probe::ProbeCache;
use super::service::{ConverterService, Settings};
use super::webhooks::{self, Courier};
use super::workers::Processes;
use docconv::proto::v1::converter_server::ConverterServer;
use docconv_auth::TokensFile;
use docconv_auth::tls;
use docconv_backend::{Backend, BackendError, NatsSettings};
use docconv_worker::WorkerSpec;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

/// Why the converter could not start or run.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// The packages that provide what the workers load (see LIBREOFFICE notes
/// in the README: the `-nogui` variants lack files Calc needs).
pub const LIBREOFFICE_PACKAGES: &str =
    "libreoffice-core libreoffice-writer libreoffice-calc libreoffice-impress libreoffice-draw";

/// Fails with an actionable message when LibreOffice is not installed.
pub fn check_libreoffice(program_dir: &Path) -> Result<(), StartError> {
    let found = ["libsofficeapp.so", "libmergedlo.so"].iter().any(|lib| program_dir.join(lib).is_file());
    if found {
        return Ok(());
    }
    Err(StartError(format!(
        "LibreOffice was not found in {}. Install it with:\n  sudo apt-get install {LIBREOFFICE_PACKAGES}\n\
         or point --libreoffice-dir (DOCCONV_LIBREOFFICE_DIR) at its program directory.",
        program_dir.display()
    )))
}

/// Runs the converter on `listener` until `shutdown` resolves, then stops
/// taking jobs, gives running ones the grace period, and returns.
pub async fn run(
    config: ConverterConfig,
    worker_exe: PathBuf,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    // First: a bad tokens file is the cheapest mistake to report.
    let tokens = match &config.auth_tokens_file {
        Some(path) => Some(Arc::new(TokensFile::open(path).map_err(|e| StartError(e.to_string()))?)),
        None => None,
    };
    check_libreoffice(&config.libreoffice_dir)?;
    let missing = postprocess::missing_tools();
    if !missing.is_empty() {
        return Err(StartError(format!(
            "{} not found; docconv uses them on PDFs. Install them with:\n  sudo apt-get install {}",
            missing.join(", "),
            postprocess::PACKAGES
        )));
    }
    let data_dir = config.data_dir();
    let scratch_dir = data_dir.join("workers");
    // Profiles left by a previous run that was killed; never reused.
    let _ = std::fs::remove_dir_all(&scratch_dir);
    std::fs::create_dir_all(data_dir.join("jobs"))
        .map_err(|e| StartError(format!("cannot create the data directory {}: {e}", data_dir.display())))?;
    let webhook_secret = config.webhook_secret().map_err(StartError)?;
    let (backend, orphan_age) = open_backend(&config, &data_dir).await?;
    let jobs =
        Arc::new(Jobs::new(backend.clone(), config.queue_capacity, orphan_age).with_metrics(config.metrics.clone()));
    let recovered = jobs.recover().await.map_err(|e| StartError(format!("{e:?}")))?;
    if recovered > 0 {
        tracing::info!(recovered, "jobs from the previous run are queued again");
    }
    // Uploads cut off by the last stop left directories without records.
    let swept = jobs.sweep_orphans().await.map_err(|e| StartError(format!("{e:?}")))?;
    if swept > 0 {
        tracing::info!(swept, "removed the remains of uploads cut off by the last stop");
    }

    if webhook_secret.is_none() {
        tracing::info!("webhooks are sent unsigned: no --webhook-secret");
    }
    let sender = webhooks::Sender::new(config.webhook_policy(), config.webhook_timeout());
    let courier =
        Courier::new(backend.records, backend.deliveries, sender, webhook_secret, config.webhook_max_attempts)
            .with_metrics(config.metrics.clone());
    let courier = tokio::spawn(Arc::new(courier).run());

    let spec = WorkerSpec {
        exe: worker_exe,
        program_dir: config.libreoffice_dir.clone(),
        scratch_dir,
        start_timeout: Duration::from_secs(60),
        profile_blocks_links: !config.insecure_profile_allows_links,
        start: config.worker_start,
    };
    let pool_config = PoolConfig {
        workers: config.workers(),
        job_timeout: config.job_timeout(),
        max_jobs_per_worker: config.worker_max_jobs.max(1),
        max_worker_rss: config.worker_max_memory_mib * 1024 * 1024,
        worker_memory_limit: config.worker_memory_limit_mib * 1024 * 1024,
        probe_cache: Some(ProbeCache::new(data_dir.join("formats.json"), &config.libreoffice_dir)),
        store_patience: crate::patience::STORE_PATIENCE,
    };
    let workers = pool_config.workers;
    let pool = Pool::start(jobs.clone(), Arc::new(Processes::new(spec)), pool_config)
        .map_err(|e| StartError(format!("cannot prepare the worker directory: {e}")))?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_not_serving::<ConverterServer<ConverterService>>().await;
    health.set_service_status("", ServingStatus::NotServing).await;
    let min_free_disk = config.min_free_disk_mib << 20;
    let disk = Disk { dir: data_dir.clone(), min_free: min_free_disk };
    let readiness = tokio::spawn(report_readiness(health.clone(), pool.warm.clone(), workers, jobs.clone(), disk));

    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let settings = Settings {
        max_upload_bytes: config.max_upload_bytes(),
        heartbeat: config.heartbeat(),
        min_free_disk,
        workers: workers as u32,
        data_dir: data_dir.clone(),
        webhooks: config.webhook_policy(),
    };
    let service = ConverterService::new(jobs.clone(), &pool, stopping, settings);
    let expiry = tokio::spawn(expire_periodically(jobs.clone(), config.retention()));

    let reflection = |builder: tonic_reflection::server::Builder<'static>| {
        builder
            .register_encoded_file_descriptor_set(docconv::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection(tonic_reflection::server::Builder::configure())
        .build_v1()
        .map_err(|e| StartError(format!("reflection: {e}")))?;
    let reflection_v1alpha = reflection(tonic_reflection::server::Builder::configure())
        .build_v1alpha()
        .map_err(|e| StartError(format!("reflection: {e}")))?;

    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let (drained_tx, drained) = tokio::sync::oneshot::channel::<()>();
    let drain = {
        let jobs = jobs.clone();
        let readiness = readiness.abort_handle();
        async move {
            shutdown.await;
            tracing::info!("shutting down: no new jobs; waiting for running ones");
            readiness.abort();
            jobs.stop_accepting();
            health.set_not_serving::<ConverterServer<ConverterService>>().await;
            health.set_service_status("", ServingStatus::NotServing).await;
            let _ = stopping_tx.send(true);
            let aborts: Vec<_> = pool.runners.iter().map(|r| r.abort_handle()).collect();
            if tokio::time::timeout(grace, join_all(pool.runners)).await.is_err() {
                // Dropping a runner kills its worker. Its job goes back to
                // the queue: for another node now, or for this one at its
                // next start (the record still says running).
                aborts.iter().for_each(|a| a.abort());
                let handed = jobs.hand_back().await;
                tracing::warn!(handed, "running jobs did not finish in time; they go back to the queue");
            }
            let _ = drained_tx.send(());
        }
    };

    let address = listener.local_addr().ok();
    tracing::info!(?address, workers, tls = config.tls.is_some(), "converter listening");
    docconv_auth::log_state(tokens.as_deref(), address, "calls");
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // A gateway multiplexes every browser's watch over one connection;
        // the HTTP/2 default of 200 streams would cap it at 200 watchers.
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        // Health and reflection are not wrapped: see `auth`.
        .add_service(ConverterServer::with_interceptor(service, Authenticate::new(tokens)));
    let serve: Serving = match &config.tls {
        // tonic's own TLS reads its certificate once; we accept and
        // handshake ourselves (`docconv_auth::tls::incoming`, which also
        // sets TCP_NODELAY) so a renewed certificate applies without a
        // restart, and hand tonic the finished connections.
        Some(certificate) => {
            let connections = tls::incoming(listener, certificate.acceptor(tls::ALPN_GRPC));
            let connections = tokio_stream::wrappers::ReceiverStream::new(connections)
                .map(|(connection, _)| Ok::<_, std::io::Error>(connection));
            Box::pin(router.serve_with_incoming_shutdown(connections, drain))
        }
        // Small messages (job states, the end of a result) must leave at
        // once: with Nagle's algorithm they wait for the client's delayed
        // ACK, 40 ms a message.
        None => {
            Box::pin(router.serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), drain))
        }
    };
    let result = tokio::select! {
        result = serve => result.map_err(|e| StartError(format!("gRPC server: {e}"))),
        // A graceful shutdown waits for every client connection to close,
        // and idle HTTP/2 connections may never do so; once the jobs are
        // settled, open calls get a moment to finish, then we stop.
        () = async {
            let _ = drained.await;
            tokio::time::sleep(CONNECTION_GRACE).await;
        } => Ok(()),
    };
    expiry.abort();
    courier.abort();
    result
}

/// How many times a start tries to reach NATS, a second apart.
const NATS_START_TRIES: u32 = 60;

/// Files older than this without a record are swept in cluster mode;
/// younger ones may be another node's upload about to be recorded.
const SHARED_ORPHAN_AGE: Duration = Duration::from_secs(600);

/// The job backend: shared on NATS when servers are given, else embedded
/// in the data directory. Returns it with the age at which files without
/// a record count as orphans.
async fn open_backend(config: &ConverterConfig, data_dir: &Path) -> Result<(Backend, Duration), StartError> {
    if config.nats_urls.is_empty() {
        let backend = Backend::embedded(&data_dir.join("jobs.redb"), &data_dir.join("jobs"), config.job_lease())
            .map_err(|e| StartError(e.to_string()))?;
        // This node knows its own uploads in progress.
        return Ok((backend, Duration::ZERO));
    }
    let settings = NatsSettings {
        urls: config.nats_urls.clone(),
        prefix: config.nats_prefix.clone(),
        lease: config.job_lease(),
        retention: config.retention(),
        replicas: config.nats_replicas.max(1),
        scratch: data_dir.join("jobs"),
        access: config.nats_access(),
    };
    // NATS may come up after the converters (or be electing a JetStream
    // leader): keep trying for a while before giving up.
    let mut tries = 0;
    let backend = loop {
        match Backend::nats(settings.clone()).await {
            Ok(backend) => break backend,
            Err(e @ BackendError::Misconfigured(_)) => return Err(StartError(e.to_string())),
            Err(e) if tries < NATS_START_TRIES => {
                tries += 1;
                tracing::warn!("NATS is not ready ({e}); trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(StartError(e.to_string())),
        }
    };
    tracing::info!(urls = %docconv_backend::shown_urls(&config.nats_urls), prefix = %config.nats_prefix, "jobs are shared on NATS");
    Ok((backend, SHARED_ORPHAN_AGE))
}

/// The disk this node writes job files to, and the free space it needs.
struct Disk {
    dir: PathBuf,
    min_free: u64,
}

/// The gRPC server, on plain or TLS connections.
type Serving = std::pin::Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>>;

/// How often free disk space is read for health.
const DISK_CHECK: Duration = Duration::from_secs(2);

/// SERVING once every worker is warm, and for as long as the disk has
/// `min_free` bytes free; NOT_SERVING otherwise (and for good once the
/// service stops accepting jobs).
async fn report_readiness(
    health: tonic_health::server::HealthReporter,
    mut warm: tokio::sync::watch::Receiver<usize>,
    workers: usize,
    jobs: Arc<Jobs>,
    disk: Disk,
) {
    let Disk { dir, min_free } = disk;
    if warm.wait_for(|&n| n >= workers).await.is_err() {
        return;
    }
    tracing::info!(workers, "workers are warm; ready");
    let mut serving = None;
    loop {
        if !jobs.is_accepting() {
            return;
        }
        let free = super::disk::available(&dir).ok();
        let disk_ok = super::disk::enough(free, min_free);
        if serving != Some(disk_ok) {
            let status = if disk_ok { ServingStatus::Serving } else { ServingStatus::NotServing };
            match (serving, disk_ok) {
                (Some(false), true) => tracing::info!(free_bytes = ?free, "disk space is back; serving again"),
                (_, false) => tracing::warn!(free_bytes = ?free, min_free, "out of disk space; refusing new jobs"),
                _ => {}
            }
            health.set_service_status("", status).await;
            match disk_ok {
                true => health.set_serving::<ConverterServer<ConverterService>>().await,
                false => health.set_not_serving::<ConverterServer<ConverterService>>().await,
            }
            serving = Some(disk_ok);
        }
        tokio::time::sleep(DISK_CHECK).await;
    }
}

/// Concurrent calls on one client connection (each watch is one).
const MAX_STREAMS_PER_CONNECTION: u32 = 100_000;

/// How long calls still open at shutdown get, after the jobs are settled.
const CONNECTION_GRACE: Duration = Duration::from_secs(2);

async fn join_all(handles: Vec<tokio::task::JoinHandle<()>>) {
    for handle in handles {
        let _ = handle.await;
    }
}

/// Deletes expired jobs now and then; a tenth of the retention, at most a minute.
async fn expire_periodically(jobs: Arc<Jobs>, retention: Duration) {
    let period = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        // A store that is unavailable for now is a warning: the next
        // round does the work.
        match jobs.expire(retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "removed jobs past retention"),
            Err(e @ Error::Unavailable(_)) => tracing::warn!("expiring jobs: {e}"),
            Err(e) => tracing::error!("expiring jobs: {e:?}"),
        }
        match jobs.sweep_orphans().await {
            Err(e @ Error::Unavailable(_)) => tracing::warn!("sweeping job directories without records: {e}"),
            Err(e) => tracing::error!("sweeping job directories without records: {e:?}"),
            Ok(_) => {}
        }
        tokio::time::sleep(period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_libreoffice_is_named_with_the_packages_to_install() {
        let error = check_libreoffice(Path::new("/nonexistent/libreoffice/program")).unwrap_err();
        assert!(error.0.contains("LibreOffice was not found in /nonexistent/libreoffice/program"), "{error}");
        assert!(error.0.contains("apt-get install libreoffice-core libreoffice-writer libreoffice-calc"), "{error}");
    }
}
