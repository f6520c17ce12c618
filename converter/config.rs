//! The converter's settings, from flags or `DOCCONV_*` environment
//! variables. Defaults are documented where they are declared.

/// The types of the webhook flags.
pub use crate::webhooks::{Cidr, HostPattern};
use crate::webhooks::{Policy, Secret};
use docconv_auth::tls::ServerCertificate;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Clone, Debug)]
pub struct ConverterConfig {
    /// Where jobs, inputs and outputs are kept
    /// [default: $XDG_DATA_HOME/docconv, else ~/.local/share/docconv]
    #[arg(long, env = "DOCCONV_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// LibreOffice worker processes [default: one per CPU core]
    #[arg(long, env = "DOCCONV_WORKERS")]
    pub workers: Option<usize>,

    /// How workers start: `fork` from a zygote that holds LibreOffice
    /// preinitialised (faster, and workers share its memory; exec'd
    /// instead whenever the zygote cannot be had), or `exec`, each a fresh
    /// process loading LibreOffice itself
    #[arg(long, env = "DOCCONV_WORKER_START", default_value = "fork")]
    pub worker_start: docconv_worker::StartMode,

    /// Seconds a conversion may take before its worker is killed
    #[arg(long, env = "DOCCONV_JOB_TIMEOUT_SECS", default_value_t = 60)]
    pub job_timeout_secs: u64,

    /// Jobs a worker converts before it is replaced (LibreOffice leaks)
    #[arg(long, env = "DOCCONV_WORKER_MAX_JOBS", default_value_t = 200)]
    pub worker_max_jobs: u32,

    /// Resident memory (MiB) above which a worker is replaced after its job
    #[arg(long, env = "DOCCONV_WORKER_MAX_MEMORY_MIB", default_value_t = 1024)]
    pub worker_max_memory_mib: u64,

    /// Resident memory (MiB) a worker may reach while converting; past it
    /// the worker is killed and the job fails (decompression bombs)
    #[arg(long, env = "DOCCONV_WORKER_MEMORY_LIMIT_MIB", default_value_t = 2048)]
    pub worker_memory_limit_mib: u64,

    /// Jobs that may wait in the queue; more are refused with RESOURCE_EXHAUSTED
    #[arg(long, env = "DOCCONV_QUEUE_CAPACITY", default_value_t = 1000)]
    pub queue_capacity: usize,

    /// Free disk space (MiB) below which new jobs are refused and health
    /// reports NOT_SERVING, until space is freed
    #[arg(long, env = "DOCCONV_MIN_FREE_DISK_MIB", default_value_t = 64)]
    pub min_free_disk_mib: u64,

    /// Largest accepted upload, in MiB
    #[arg(long, env = "DOCCONV_MAX_UPLOAD_MIB", default_value_t = 100)]
    pub max_upload_mib: u64,

    /// Hours a finished job and its result are kept
    #[arg(long, env = "DOCCONV_RETENTION_HOURS", default_value_t = 24.0)]
    pub retention_hours: f64,

    /// Seconds of silence on a WatchJob stream before a heartbeat is sent
    #[arg(long, env = "DOCCONV_HEARTBEAT_SECS", default_value_t = 15.0)]
    pub heartbeat_secs: f64,

    /// LibreOffice's program directory
    #[arg(long, env = "DOCCONV_LIBREOFFICE_DIR", default_value = "/usr/lib/libreoffice/program")]
    pub libreoffice_dir: PathBuf,

    /// Seconds running jobs get to finish on shutdown; unfinished ones run
    /// again at the next start
    #[arg(long, env = "DOCCONV_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// The tokens file (see `docconv_auth`): with it, every
    /// `docconv.v1.Converter` call needs one of its tokens. Set from the
    /// command line's `--auth-tokens-file`, which `serve` hands to the
    /// gateway too, so it is not a flag of this struct.
    #[arg(skip)]
    pub auth_tokens_file: Option<PathBuf>,

    /// The certificate the gRPC listener serves TLS with (see
    /// `docconv_auth::tls`); without it, plain HTTP/2. Opened from the
    /// command line's `--tls-cert` and `--tls-key`, which `serve` hands to
    /// the gateway too, so they are not flags of this struct.
    #[arg(skip)]
    pub tls: Option<Arc<ServerCertificate>>,

    /// What this converter counts; the command line registers it for
    /// `--metrics-listen` (under `serve` next to the gateway's).
    #[arg(skip)]
    pub metrics: Arc<crate::metrics::Metrics>,

    /// NATS server URLs (JetStream enabled): converters given the same
    /// servers share one job space. Several URLs, comma-separated or
    /// repeated, name servers of one NATS cluster. Without it, jobs are kept
    /// on this machine (the data directory).
    /// A user and password, or a token, may be part of a URL
    /// (`nats://user:password@host:4222`); `tls://` asks for TLS.
    #[arg(long = "nats-url", env = "DOCCONV_NATS_URL", value_delimiter = ',', hide_env_values = true)]
    pub nats_urls: Vec<String>,

    /// A NATS credentials file (user JWT and NKey seed), for NATS servers
    /// in operator mode
    #[arg(long, env = "DOCCONV_NATS_CREDS", requires = "nats_urls")]
    pub nats_creds: Option<PathBuf>,

    /// Certificate authority (PEM) for the NATS servers' certificates, on
    /// top of the system's; requires TLS
    #[arg(long, env = "DOCCONV_NATS_TLS_CA", requires = "nats_urls")]
    pub nats_tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) for NATS servers that verify clients;
    /// requires TLS
    #[arg(long, env = "DOCCONV_NATS_TLS_CERT", requires_all = ["nats_urls", "nats_tls_key"])]
    pub nats_tls_cert: Option<PathBuf>,

    /// The client certificate's key (PEM)
    #[arg(long, env = "DOCCONV_NATS_TLS_KEY", requires = "nats_tls_cert")]
    pub nats_tls_key: Option<PathBuf>,

    /// Seconds a job stays with a converter that stops answering for it
    /// (killed, cut off) before another converter takes it over. Running
    /// jobs renew it every third of this.
    #[arg(long, env = "DOCCONV_JOB_LEASE_SECS", default_value_t = 30)]
    pub job_lease_secs: u64,

    /// Names the shared buckets and stream, so that several services can
    /// use one NATS
    #[arg(long, env = "DOCCONV_NATS_PREFIX", default_value = "docconv")]
    pub nats_prefix: String,

    /// Copies NATS keeps of the shared job space: 1, or 3 on a cluster of
    /// three or more NATS servers
    #[arg(long, env = "DOCCONV_NATS_REPLICAS", default_value_t = 1)]
    pub nats_replicas: usize,

    /// The secret webhooks are signed with: HMAC-SHA256 of the body, sent
    /// as `Docconv-Signature: sha256=<hex>`. Without it (or a secret file),
    /// webhooks are not signed
    #[arg(long, env = "DOCCONV_WEBHOOK_SECRET", hide_env_values = true, conflicts_with = "webhook_secret_file")]
    pub webhook_secret: Option<String>,

    /// A file holding the webhook secret (a trailing line break is not part
    /// of it), to keep it out of the environment and process lists
    #[arg(long, env = "DOCCONV_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,

    /// Hosts webhooks may go to, comma-separated: exact names, or
    /// `*.example.com` for any name under example.com [default: any host]
    #[arg(long, env = "DOCCONV_WEBHOOK_ALLOW_HOSTS", value_delimiter = ',', value_name = "HOSTS")]
    pub webhook_allow_hosts: Vec<HostPattern>,

    /// Networks webhooks may reach although they are not public,
    /// comma-separated CIDRs (e.g. 10.0.0.0/8). Loopback, private, shared
    /// (CGNAT), link-local (cloud metadata), unique-local, multicast and
    /// reserved addresses are refused otherwise
    #[arg(long, env = "DOCCONV_WEBHOOK_ALLOW_PRIVATE_NETWORKS", value_delimiter = ',', value_name = "CIDRS")]
    pub webhook_allow_private_networks: Vec<Cidr>,

    /// Attempts to deliver a webhook before giving up; waits between them
    /// double from 1 s up to 5 minutes (20 attempts: about an hour)
    #[arg(long, env = "DOCCONV_WEBHOOK_MAX_ATTEMPTS", default_value_t = 20)]
    pub webhook_max_attempts: u32,

    /// Seconds one webhook request may take, from resolving its host to
    /// its answer
    #[arg(long, env = "DOCCONV_WEBHOOK_TIMEOUT_SECS", default_value_t = 10)]
    pub webhook_timeout_secs: u64,

    /// Leave LibreOffice's own link blocking off, relying on the sandbox
    /// alone. Only for tests that prove the sandbox holds by itself.
    #[arg(long, hide = true)]
    pub insecure_profile_allows_links: bool,
}

impl Default for ConverterConfig {
    fn default() -> Self {
        crate::defaults()
    }
}

impl ConverterConfig {
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("docconv")
    }

    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1)
    }

    pub fn job_timeout(&self) -> Duration {
        Duration::from_secs(self.job_timeout_secs.max(1))
    }

    pub fn job_lease(&self) -> Duration {
        Duration::from_secs(self.job_lease_secs.max(1))
    }

    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_mib * 1024 * 1024
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs_f64(self.retention_hours.max(0.0) * 3600.0)
    }

    /// Credentials and TLS for NATS, as given.
    pub fn nats_access(&self) -> docconv_backend::NatsAccess {
        docconv_backend::NatsAccess {
            credentials: self.nats_creds.clone(),
            ca: self.nats_tls_ca.clone(),
            client_certificate: self.nats_tls_cert.clone().zip(self.nats_tls_key.clone()),
        }
    }

    /// What webhooks may reach.
    pub(crate) fn webhook_policy(&self) -> Policy {
        Policy { hosts: self.webhook_allow_hosts.clone(), networks: self.webhook_allow_private_networks.clone() }
    }

    pub fn webhook_timeout(&self) -> Duration {
        Duration::from_secs(self.webhook_timeout_secs.max(1))
    }

    /// The webhook secret, from the flag or the file; `None` without one.
    pub(crate) fn webhook_secret(&self) -> Result<Option<Secret>, String> {
        let secret = match (&self.webhook_secret, &self.webhook_secret_file) {
            (Some(secret), _) => secret.clone().into_bytes(),
            (None, Some(file)) => {
                let mut read = std::fs::read(file)
                    .map_err(|e| format!("cannot read the webhook secret file {}: {e}", file.display()))?;
                while read.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                    read.pop();
                }
                read
            }
            (None, None) => return Ok(None),
        };
        match Secret::new(&secret) {
            Some(secret) => Ok(Some(secret)),
            None => Err("the webhook secret is empty".into()),
        }
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat_secs.max(0.05))
    }
}
