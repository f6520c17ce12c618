//! The shared backend of cluster mode, on NATS JetStream: every converter
//! node connected to the same NATS servers shares one job space. Nothing
//! here is home-made consensus; each trait maps onto the engine's own
//! primitives:
//!
//! - `Records`: a key-value bucket, `<prefix>-jobs`, one key per job. A
//!   key's revision (the stream sequence of its last write) is the job's
//!   revision; `update` is the bucket's compare-and-set; `watch` is a
//!   read, then each write as the node's one watch of the whole bucket
//!   hands it out (`nats_watch`). Request ids map
//!   to job ids in `<prefix>-requests`, keyed by their SHA-256 (a client's
//!   id may hold characters a key cannot).
//! - `Queue`: a work-queue stream, `<prefix>-queue`, one subject per job,
//!   and one durable pull consumer shared by every node (`nats_queue`).
//!   Its ack wait is the lease: in-progress acks extend it, an ack ends
//!   it, and the server hands out again what was not acknowledged in time.
//!   Webhook deliveries wait in a second one, `<prefix>-deliveries`.
//! - `Blobs`: an object store, `<prefix>-files`, one object per file
//!   (`<id>/<name>`), streamed in and out in chunks; workers convert in a
//!   local folder per job.
//!
//! Retention is the buckets' and the stream's maximum age, so nothing grows
//! without bound even if every node is gone.

use crate::error::{BackendError, Result};
use crate::nats_access::{NatsAccess, shown_urls};
use crate::nats_object::Objects;
use crate::nats_queue::{NatsQueue, QueueNames};
use crate::nats_watch::{Subscription, Watches};
use crate::record::StoredJob;
use crate::{
    BlobWriter, Blobs, Created, Durability, Events, Records, Revision, ended_before, has_ended, id_of, revision_of,
    stamp,
};
use async_nats::ConnectErrorKind;
use async_nats::jetstream::{self, kv, object_store, stream};
use async_trait::async_trait;
use futures_util::StreamExt;
use prost::Message;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWriteExt};

/// How a node reaches the shared job space.
#[derive(Clone, Debug)]
pub struct NatsSettings {
    /// One or more server URLs of one NATS cluster.
    pub urls: Vec<String>,
    /// Names the buckets and the stream, so several services can share a NATS.
    pub prefix: String,
    /// How long a lease lasts unless extended (the consumer's ack wait).
    pub lease: Duration,
    /// How long jobs and their files are kept after their last change.
    pub retention: Duration,
    /// Copies of every bucket and stream (1, or 3 on a three-server cluster).
    pub replicas: usize,
    /// This node's folder for the files of the jobs it converts.
    pub scratch: PathBuf,
    /// Credentials and TLS, when the servers ask for them.
    pub access: NatsAccess,
}

pub struct Nats {
    jobs: kv::Store,
    requests: kv::Store,
    /// The jobs waiting for a worker.
    pub queue: Arc<NatsQueue>,
    /// The webhook deliveries waiting to be sent.
    pub deliveries: Arc<NatsQueue>,
    files: Objects,
    /// Every write to the jobs bucket, handed to the watches of its job.
    watches: Arc<Watches>,
    settings: NatsSettings,
}

/// A NATS call that failed: the server or its cluster did not answer as
/// it should (a server lost, a leader being elected, a cut connection),
/// which trying again later may mend.
pub(crate) fn failed(doing: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError::Unavailable(format!("NATS: {doing}: {e}"))
}

/// Longest a listing of every job may take before it counts as failed.
const LISTING_TIME: Duration = Duration::from_secs(120);

/// Reads are tried again for a few seconds: long enough for a NATS
/// cluster to elect a new leader after losing a server.
pub(crate) const READ_TRIES: u32 = 8;
pub(crate) const READ_PAUSE: Duration = Duration::from_millis(500);

/// Runs a read, again while NATS is unavailable (see `READ_TRIES`).
async fn again<T, Fut: std::future::Future<Output = Result<T>>>(mut read: impl FnMut() -> Fut) -> Result<T> {
    let mut tries = 1;
    loop {
        match read().await {
            Err(BackendError::Unavailable(why)) if tries < READ_TRIES => {
                tracing::debug!("{why}; trying again");
                tries += 1;
                tokio::time::sleep(READ_PAUSE).await;
            }
            result => return result,
        }
    }
}

impl Nats {
    /// Connects and makes (or finds) the buckets, the stream and the consumer.
    pub async fn connect(settings: NatsSettings) -> Result<Nats> {
        let shown = shown_urls(&settings.urls);
        let servers = settings
            .urls
            .iter()
            .map(|url| url.trim().parse::<async_nats::ServerAddr>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| BackendError::Misconfigured(format!("NATS: reading the server URLs {shown}: {e}")))?;
        let client = settings.access.options(&servers).await?.connect(servers).await.map_err(|e| match e.kind() {
            // Servers that refuse who this node says it is will refuse it
            // again: the settings need fixing, trying again cannot help.
            ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                BackendError::Misconfigured(format!("NATS: {shown} refused this node: {e}"))
            }
            _ => failed(&format!("connecting to {shown}"), e),
        })?;
        let js = jetstream::new(client);
        let prefix = &settings.prefix;
        let jobs = key_value(&js, format!("{prefix}-jobs"), &settings).await?;
        let requests = key_value(&js, format!("{prefix}-requests"), &settings).await?;
        let queue_of = |name: &str, consumer: &str, dedupe: bool| QueueNames {
            stream: format!("{prefix}-{name}"),
            subjects: format!("{prefix}.{name}"),
            consumer: consumer.to_owned(),
            dedupe,
        };
        let (lease, retention, replicas) = (settings.lease, settings.retention, settings.replicas);
        let queue = NatsQueue::open(&js, queue_of("queue", "workers", false), lease, retention, replicas).await?;
        // A job's delivery is one piece of work: pushed again by a second
        // run of the job (its first node died between queueing the
        // delivery and recording the end), it is dropped as a duplicate.
        let deliveries =
            NatsQueue::open(&js, queue_of("deliveries", "deliveries", true), lease, retention, replicas).await?;
        let files = match js.get_object_store(format!("{prefix}-files")).await {
            Ok(files) => files,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: format!("{prefix}-files"),
                    max_age: settings.retention,
                    num_replicas: settings.replicas,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| failed("making the files bucket", e))?,
        };
        let stream = js
            .get_stream(format!("OBJ_{prefix}-files"))
            .await
            .map_err(|e| failed("finding the files bucket's stream", e))?;
        let files = Objects { store: files, stream };
        let watches = Watches::start(jobs.clone()).await.map_err(|e| failed("following the jobs bucket", e))?;
        let (queue, deliveries) = (Arc::new(queue), Arc::new(deliveries));
        Ok(Nats { jobs, requests, queue, deliveries, files, watches, settings })
    }

    fn object(id: &str, name: &str) -> String {
        format!("{id}/{name}")
    }
}

/// Finds or makes a key-value bucket. Made by hand, as the bucket's own
/// stream: the client's `create_key_value` first asks the server for
/// account details in a shape the NATS 2.9 of Debian does not send. The
/// stream is what that call would make (one subject per key, rollups),
/// but for direct gets (see below).
async fn key_value(js: &jetstream::Context, bucket: String, settings: &NatsSettings) -> Result<kv::Store> {
    if let Ok(store) = js.get_key_value(bucket.clone()).await {
        return Ok(store);
    }
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age: settings.retention,
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        allow_rollup: true,
        deny_delete: true,
        // Reads go to the stream's leader: direct gets may be answered by a
        // replica that has not applied the latest write yet, and a node
        // must read back what it just wrote (a job it just created, the
        // revision it compares and sets against).
        allow_direct: false,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(|e| failed(&format!("making the bucket {bucket}"), e))?;
    js.get_key_value(bucket.clone()).await.map_err(|e| failed(&format!("opening the bucket {bucket}"), e))
}

fn request_key(request_id: &str) -> String {
    docconv::ids::hex(&Sha256::digest(request_id.as_bytes()))
}

fn decode(entry: &kv::Entry) -> Result<StoredJob> {
    let mut record = StoredJob::decode(entry.value.as_ref())
        .map_err(|e| BackendError::Damaged(format!("job {} does not decode: {e}", entry.key)))?;
    record.job.get_or_insert_default().sequence = entry.revision;
    Ok(record)
}

#[async_trait]
impl Records for Nats {
    async fn create(&self, mut record: StoredJob) -> Result<Created> {
        stamp(&mut record);
        let id = id_of(&record).to_owned();
        if !record.request_id.is_empty() {
            let key = request_key(&record.request_id);
            match self.requests.create(&key, id.clone().into()).await {
                Ok(_) => {}
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    let earlier = self.requests.get(&key).await.map_err(|e| failed("reading a request id", e))?;
                    let earlier = earlier.map(|id| String::from_utf8_lossy(&id).into_owned());
                    if let Some(earlier) = earlier.filter(|earlier| *earlier != id)
                        && let Some(existing) = self.get(&earlier).await?
                    {
                        return Ok(Created::Existing(existing));
                    }
                    // A node died between the two writes: the request id is
                    // this job's now.
                    self.requests
                        .put(&key, id.clone().into())
                        .await
                        .map_err(|e| failed("recording a request id", e))?;
                }
                Err(e) => return Err(failed("recording a request id", e)),
            }
        }
        let revision = self
            .jobs
            .create(&id, record.encode_to_vec().into())
            .await
            .map_err(|e| failed(&format!("recording job {id}"), e))?;
        record.job.get_or_insert_default().sequence = revision;
        Ok(Created::New(record))
    }

    async fn get(&self, id: &str) -> Result<Option<StoredJob>> {
        let entry = again(|| async { self.jobs.entry(id).await.map_err(|e| failed("reading a job", e)) }).await?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => Ok(Some(decode(&entry)?)),
            _ => Ok(None),
        }
    }

    async fn by_request_id(&self, request_id: &str) -> Result<Option<StoredJob>> {
        let id = self.requests.get(request_key(request_id)).await.map_err(|e| failed("reading a request id", e))?;
        match id {
            Some(id) => self.get(&String::from_utf8_lossy(&id)).await,
            None => Ok(None),
        }
    }

    /// Both durabilities are one write here: the bucket is on disk.
    async fn update(&self, mut record: StoredJob, _durability: Durability) -> Result<StoredJob> {
        let id = id_of(&record).to_owned();
        let expected = revision_of(&record);
        if expected == 0 {
            // Never read from the bucket (revision 0 would mean "create").
            return Err(BackendError::Missing { id });
        }
        stamp(&mut record);
        match self.jobs.update(&id, record.encode_to_vec().into(), expected).await {
            Ok(revision) => {
                record.job.get_or_insert_default().sequence = revision;
                Ok(record)
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => match self.get(&id).await? {
                Some(current) => Err(BackendError::Conflict { id, current: revision_of(&current) }),
                None => Err(BackendError::Missing { id }),
            },
            Err(e) => Err(failed(&format!("writing job {id}"), e)),
        }
    }

    async fn delete(&self, id: &str) -> Result<()> {
        if let Some(record) = self.get(id).await?
            && !record.request_id.is_empty()
        {
            let key = request_key(&record.request_id);
            self.requests.purge(key).await.map_err(|e| failed("forgetting a request id", e))?;
        }
        self.jobs.purge(id).await.map_err(|e| failed(&format!("deleting job {id}"), e))
    }

    /// One pass over the latest value of every key (the bucket streamed
    /// to this node once), not a read per job: retention can keep many.
    async fn ended_before(&self, cutoff: SystemTime) -> Result<Vec<String>> {
        const LISTING: &str = "listing jobs";
        // The bucket's own status is what it was when opened; ask afresh.
        let mut bucket = self.jobs.stream.clone();
        let info = bucket.info().await.map_err(|e| failed(LISTING, e))?;
        if info.state.messages == 0 {
            // A watch of an empty bucket would wait for a first write.
            return Ok(Vec::new());
        }
        let mut latest = self.jobs.watch_with_history(">").await.map_err(|e| failed(LISTING, e))?;
        let mut ended = Vec::new();
        let read = async {
            while let Some(entry) = latest.next().await {
                let entry = entry.map_err(|e| failed(LISTING, e))?;
                if entry.operation == kv::Operation::Put && ended_before(&decode(&entry)?, cutoff) {
                    ended.push(entry.key);
                }
                // `delta` counts the values still to come of those there were.
                if entry.delta == 0 {
                    break;
                }
            }
            Ok::<_, BackendError>(())
        };
        tokio::time::timeout(LISTING_TIME, read).await.map_err(|e| failed(LISTING, e))??;
        Ok(ended)
    }

    /// The job as it is, then the writes this node's one watch of the
    /// bucket hands out (see `nats_watch`). The subscription comes first,
    /// so that no write after the read is missed.
    async fn watch(&self, id: &str, from: Revision) -> Result<Option<Events>> {
        let updates = self.watches.subscribe(id);
        let Some(current) = self.get(id).await? else {
            return Ok(None);
        };
        let watching = Watching {
            id: id.to_owned(),
            current: Some(current),
            updates: Some(updates),
            last: from.saturating_sub(1),
        };
        Ok(Some(Box::pin(futures_util::stream::unfold(watching, Watching::next))))
    }
}

/// Where a watch is: the job as read, until sent; the writes to it (none
/// once the job has ended or the watch failed); the revision last sent.
struct Watching {
    id: String,
    current: Option<StoredJob>,
    updates: Option<Subscription>,
    last: Revision,
}

impl Watching {
    /// The next record newer than the last sent; after the record of an
    /// end, or an error, the watch is over.
    async fn next(mut self) -> Option<(Result<StoredJob>, Watching)> {
        loop {
            let record = match self.current.take() {
                Some(current) if revision_of(&current) <= self.last => continue,
                Some(current) => {
                    self.last = revision_of(&current);
                    Ok(current)
                }
                None => match self.updates.as_mut()?.next().await {
                    None => Err(failed("watching a job", "this node stopped following the jobs")),
                    Some(entry) if entry.operation != kv::Operation::Put => {
                        Err(BackendError::Missing { id: self.id.clone() })
                    }
                    Some(entry) if entry.revision <= self.last => continue,
                    Some(entry) => {
                        self.last = entry.revision;
                        decode(&entry)
                    }
                },
            };
            if !matches!(&record, Ok(record) if !has_ended(record)) {
                self.updates = None;
            }
            return Some((record, self));
        }
    }
}

/// An object being written: the data goes through a pipe into the object
/// store's own chunked upload, running in a task.
struct ObjectWriter {
    pipe: Option<tokio::io::DuplexStream>,
    upload: Option<tokio::task::JoinHandle<Result<()>>>,
}

/// Room in the pipe between a writer and its upload: a few chunks.
const PIPE: usize = 256 * 1024;

#[async_trait]
impl BlobWriter for ObjectWriter {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        let pipe = self.pipe.as_mut().expect("written before finishing");
        pipe.write_all(data).await.map_err(|e| failed("storing a file", e))
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        if let Some(mut pipe) = self.pipe.take() {
            pipe.shutdown().await.map_err(|e| failed("storing a file", e))?;
        }
        let upload = self.upload.take().expect("finished once");
        upload.await.map_err(|e| failed("storing a file", e))?
    }
}

impl Drop for ObjectWriter {
    /// An unfinished file must not be stored cut: the upload is stopped
    /// before the pipe closes (a closed pipe would read as the end).
    fn drop(&mut self) {
        if let (Some(upload), pipe) = (self.upload.take(), self.pipe.take()) {
            upload.abort();
            tokio::spawn(async move {
                let _ = upload.await;
                drop(pipe);
            });
        }
    }
}

#[async_trait]
impl Blobs for Nats {
    async fn create(&self, id: &str, name: &str) -> Result<Box<dyn BlobWriter>> {
        let (pipe, mut reader) = tokio::io::duplex(PIPE);
        let files = self.files.store.clone();
        let object = Nats::object(id, name);
        let upload = tokio::spawn(async move {
            files.put(object.as_str(), &mut reader).await.map(drop).map_err(|e| failed("storing a file", e))
        });
        Ok(Box::new(ObjectWriter { pipe: Some(pipe), upload: Some(upload) }))
    }

    async fn open(&self, id: &str, name: &str, offset: u64) -> Result<Option<Box<dyn AsyncRead + Send + Unpin>>> {
        let object = Nats::object(id, name);
        let found = again(|| async {
            match self.files.store.info(&object).await {
                Ok(info) => Ok(Some(info).filter(|info| !info.deleted)),
                Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => Ok(None),
                Err(e) => Err(failed("reading a file", e)),
            }
        });
        Ok(found.await?.map(|info| self.files.read(info, offset)))
    }

    async fn checkout(&self, id: &str, names: &[String]) -> Result<PathBuf> {
        let folder = self.settings.scratch.join(id);
        tokio::fs::create_dir_all(&folder).await.map_err(|e| BackendError::io("creating a job folder", e))?;
        for name in names {
            let path = folder.join(name);
            // A copy cut short by a server's loss is made again, whole.
            let copied = again(|| async {
                let Some(mut object) = self.open(id, name, 0).await? else {
                    return Ok(());
                };
                let mut file =
                    tokio::fs::File::create(&path).await.map_err(|e| BackendError::io("checking out a file", e))?;
                tokio::io::copy(&mut object, &mut file).await.map_err(|e| failed("checking out a file", e))?;
                file.flush().await.map_err(|e| BackendError::io("checking out a file", e))
            });
            copied.await?;
        }
        Ok(folder)
    }

    async fn keep(&self, id: &str, names: &[String]) -> Result<()> {
        let folder = self.settings.scratch.join(id);
        for name in names {
            let mut file =
                tokio::fs::File::open(folder.join(name)).await.map_err(|e| BackendError::io("keeping a file", e))?;
            self.files
                .store
                .put(Nats::object(id, name).as_str(), &mut file)
                .await
                .map_err(|e| failed("keeping a file", e))?;
        }
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.delete_all(&[id.to_owned()]).await
    }

    /// Finding a job's objects means listing the store, so expiry lists it
    /// once for all the jobs it deletes.
    async fn delete_all(&self, ids: &[String]) -> Result<()> {
        let ids: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        let of_these = |name: &str, _| name.split_once('/').is_some_and(|(id, _)| ids.contains(id));
        for name in self.object_names(of_these).await? {
            match self.files.store.delete(&name).await {
                Err(e) if e.kind() != object_store::DeleteErrorKind::NotFound => {
                    return Err(failed("deleting a file", e));
                }
                _ => {}
            }
        }
        for id in ids {
            self.forget_local(id).await?;
        }
        Ok(())
    }

    async fn forget_local(&self, id: &str) -> Result<()> {
        match tokio::fs::remove_dir_all(self.settings.scratch.join(id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(BackendError::io("deleting a job folder", e)),
            _ => Ok(()),
        }
    }

    async fn ids(&self, older_than: Duration) -> Result<Vec<String>> {
        let now = SystemTime::now();
        let old = |modified: Option<SystemTime>| {
            modified.is_some_and(|m| now.duration_since(m).unwrap_or_default() >= older_than)
        };
        let names = self.object_names(|_, modified| old(modified)).await?;
        let mut ids: Vec<String> = names.iter().filter_map(|n| n.split('/').next()).map(str::to_owned).collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

impl Nats {
    /// The names of the stored objects that `keep` accepts, given each
    /// one's name and time of writing.
    async fn object_names(&self, keep: impl Fn(&str, Option<SystemTime>) -> bool) -> Result<Vec<String>> {
        let mut list = self.files.store.list().await.map_err(|e| failed("listing files", e))?;
        let mut names = Vec::new();
        while let Some(info) = list.next().await {
            let info = info.map_err(|e| failed("listing files", e))?;
            if info.deleted {
                continue;
            }
            let modified = info.modified.map(SystemTime::from);
            if keep(&info.name, modified) {
                names.push(info.name);
            }
        }
        Ok(names)
    }
}
