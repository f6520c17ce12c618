//! The job backend: everything about jobs that the nodes of a service
//! share, behind two traits.
//!
//! - [`Records`]: one record per job, each write giving it a new
//!   *revision* (the `sequence` clients see), compare-and-set on the
//!   revision it was read at, and events: a watch from a revision on.
//! - [`Queue`]: jobs waiting for a worker, handed out as leases with a
//!   deadline, extended while a worker converts, acknowledged at the end or
//!   released for another node. A lease that runs out is handed out again:
//!   that is how a job of a node that died is recovered.
//!
//! - A second [`Queue`], of webhook deliveries: ids of jobs whose
//!   webhook is to be sent, held by a node while it sends.
//!
//! - [`Blobs`]: the files of a job, streamed in (an upload), streamed
//!   out from an offset (a download), and checked out into a folder of
//!   this node for a worker to convert, its results kept from there.
//!
//! Two implementations live here: [`Backend::in_memory`], for fast tests,
//! and [`Backend::embedded`], a redb file and a directory per job, which
//! survive restarts. Records and queue are [`Local`] in both, deliveries a
//! [`DurableQueue`]. Both pass
//! the suite in [`conformance`], which any other implementation (a shared
//! engine for a cluster) must pass too.
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod durable_queue;
mod error;
mod files;
mod ledger;
mod line;
mod local;
mod memory_files;
mod nats;
mod nats_access;
mod nats_object;
mod nats_queue;
mod nats_watch;
mod record;
mod redb;

pub use durable_queue::DurableQueue;
pub use error::{BackendError, Result};
pub use files::Files;
pub use local::Local;
pub use memory_files::MemoryFiles;
pub use nats::NatsSettings;
pub use nats_access::{NatsAccess, shown_urls};
pub use record::{StoredInput, StoredJob};

use async_trait::async_trait;
use futures_util::Stream;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncRead;

/// A job record's version: it grows with every write of any job, and a
/// record's revision is its `job.sequence`.
pub type Revision = u64;

/// What a write must survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Survives a crash once the call returns: submission, start, retry,
    /// cancellation, the end.
    Lasting,
    /// Progress: reaches watchers and gets its revision, but a crash may
    /// lose it (the revisions after a restart are higher all the same).
    Passing,
}

/// What `create` did. Short-lived, so the size of the variants is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Created {
    /// The record as written, with its first revision.
    New(StoredJob),
    /// Its request id named an earlier job, returned unchanged; nothing was written.
    Existing(StoredJob),
}

/// A job's records from a revision on: the latest at or after it, then
/// each later one. Revisions in between may be skipped by a watcher that
/// falls behind, never reordered. Ends after the record of a job that has
/// ended.
pub type Events = Pin<Box<dyn Stream<Item = Result<StoredJob>> + Send>>;

/// Job records with revisions and events.
#[async_trait]
pub trait Records: Send + Sync + 'static {
    /// Records a new job (lasting), unless its request id was used before.
    async fn create(&self, record: StoredJob) -> Result<Created>;
    async fn get(&self, id: &str) -> Result<Option<StoredJob>>;
    async fn by_request_id(&self, request_id: &str) -> Result<Option<StoredJob>>;
    /// Writes `record` if the job is still at the revision it was read at
    /// (its `job.sequence`); `Conflict` otherwise. Returns it as written,
    /// with its new revision.
    async fn update(&self, record: StoredJob, durability: Durability) -> Result<StoredJob>;
    /// Forgets the job and its request id.
    async fn delete(&self, id: &str) -> Result<()>;
    /// Ids of jobs that ended before `cutoff`.
    async fn ended_before(&self, cutoff: SystemTime) -> Result<Vec<String>>;
    /// The job's records from `from` on (see `Events`); `None` for an
    /// unknown job.
    async fn watch(&self, id: &str, from: Revision) -> Result<Option<Events>>;
}

/// A job handed to one worker until `ack`, `release` or the deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub id: String,
    /// How many times the job has been handed out, this time included.
    pub deliveries: u32,
    /// Tells this lease from an earlier one of the same job; set by the queue.
    pub token: u64,
}

/// Jobs waiting for a worker, in the order they were pushed.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// How long a lease lasts unless extended (a setting of the queue: a
    /// shared engine fixes it when the queue is made).
    fn lease_time(&self) -> Duration;
    /// Adds a job at the end.
    async fn push(&self, id: &str) -> Result<()>;
    /// Waits for the first waiting job and leases it for the lease time.
    /// `None` once the queue is closed.
    async fn lease(&self) -> Result<Option<Lease>>;
    /// Pushes the lease's deadline to the lease time from now; `LeaseLost`
    /// if it ran out and the job was handed out again.
    async fn extend(&self, lease: &Lease) -> Result<()>;
    /// The job is done with, whatever its end.
    async fn ack(&self, lease: &Lease) -> Result<()>;
    /// Hands the job back for another worker (first in line, or last,
    /// as the implementation can).
    async fn release(&self, lease: &Lease) -> Result<()>;
    /// Takes a waiting job out of the queue; `false` if it was not waiting
    /// (leased, done, or unknown).
    async fn remove(&self, id: &str) -> Result<bool>;
    /// The waiting jobs, first in line first.
    async fn waiting(&self) -> Result<Vec<String>>;
    /// How many jobs are waiting: `waiting`'s length, unless the queue
    /// can count without listing.
    async fn waiting_count(&self) -> Result<usize> {
        Ok(self.waiting().await?.len())
    }
    /// Stops handing out leases on this node: every `lease` call returns `None`.
    fn close(&self);
}

/// The files of jobs. A file name is one path component, chosen by the
/// service (never by a client); ids are checked before they get here.
#[async_trait]
pub trait Blobs: Send + Sync + 'static {
    /// Starts writing file `name` of job `id`, replacing any. It can be
    /// read only once the writer is finished, and is durable then.
    async fn create(&self, id: &str, name: &str) -> Result<Box<dyn BlobWriter>>;
    /// Reads file `name` of job `id` from `offset` on; `None` if there is no
    /// such file.
    async fn open(&self, id: &str, name: &str, offset: u64) -> Result<Option<Box<dyn AsyncRead + Send + Unpin>>>;
    /// The folder of this node where job `id` is worked on, holding the
    /// named files (fetched there where they are kept elsewhere). Files a
    /// worker writes into it stay local until `keep`.
    async fn checkout(&self, id: &str, names: &[String]) -> Result<PathBuf>;
    /// Keeps the named files of the job's local folder: durable, and
    /// readable with `open` from any node.
    async fn keep(&self, id: &str, names: &[String]) -> Result<()>;
    /// This node is done working on job `id`: its local folder may go
    /// (kept files stay readable).
    async fn forget_local(&self, id: &str) -> Result<()>;
    /// Deletes every file of job `id`, kept or local.
    async fn delete(&self, id: &str) -> Result<()>;
    /// Deletes every file of each of these jobs: `delete` for each, unless
    /// the store can find many jobs' files in one go.
    async fn delete_all(&self, ids: &[String]) -> Result<()> {
        for id in ids {
            self.delete(id).await?;
        }
        Ok(())
    }
    /// The ids of the jobs whose files were written more than
    /// `older_than` ago, whatever their records (to find orphans: files
    /// of an upload another node is about to record are young).
    async fn ids(&self, older_than: Duration) -> Result<Vec<String>>;
}

/// A file being written; see `Blobs::create`. Dropping it unfinished
/// leaves nothing readable.
#[async_trait]
pub trait BlobWriter: Send {
    async fn write(&mut self, data: &[u8]) -> Result<()>;
    /// Every byte durable, the file readable.
    async fn finish(self: Box<Self>) -> Result<()>;
}

/// A job backend: the records, the queues and the files, which may be one object.
#[derive(Clone)]
pub struct Backend {
    pub records: Arc<dyn Records>,
    /// Jobs waiting for a worker.
    pub queue: Arc<dyn Queue>,
    pub blobs: Arc<dyn Blobs>,
    /// Ids of jobs whose webhook is to be sent: pushed before the job's
    /// end is recorded, acknowledged once the webhook is delivered or
    /// given up. Its own queue, as it waits for jobs that have ended.
    pub deliveries: Arc<dyn Queue>,
}

impl Backend {
    /// Everything in this process's memory (and a temporary folder for
    /// checkouts): nothing survives it. For tests. Leases last `lease`.
    pub fn in_memory(lease: Duration) -> Backend {
        let local = Arc::new(Local::new(Arc::new(ledger::MemoryLedger::default()), lease));
        let deliveries = DurableQueue::open(Arc::new(ledger::MemoryQueueLedger::default()), lease)
            .expect("an empty ledger in memory opens");
        Backend {
            records: local.clone(),
            queue: local,
            blobs: Arc::new(MemoryFiles::new()),
            deliveries: Arc::new(deliveries),
        }
    }

    /// Records in a redb file at `store` (created if there is no file; a
    /// damaged one is refused, never replaced) and a directory per job
    /// under `files`. Jobs that had not ended when the last process stopped
    /// wait in the queue again, in the order they were submitted: their
    /// leases died with that process. Leases last `lease`.
    pub fn embedded(store: &Path, files: &Path, lease: Duration) -> Result<Backend> {
        let store = Arc::new(redb::RedbStore::open(store)?);
        let local = Arc::new(Local::open(store.clone(), lease)?);
        let deliveries = Arc::new(DurableQueue::open(store, lease)?);
        Ok(Backend { records: local.clone(), queue: local, blobs: Arc::new(Files::new(files.to_owned())), deliveries })
    }

    /// The job space shared by every node connected to the same NATS
    /// servers with the same prefix (see `nats`).
    pub async fn nats(settings: NatsSettings) -> Result<Backend> {
        let shared = Arc::new(nats::Nats::connect(settings).await?);
        let (queue, deliveries) = (shared.queue.clone(), shared.deliveries.clone());
        Ok(Backend { records: shared.clone(), queue, blobs: shared, deliveries })
    }
}

/// Marks the record as written now (the job's `update_time`).
fn stamp(record: &mut StoredJob) {
    record.job.get_or_insert_default().update_time = Some(SystemTime::now().into());
}

/// The job id of a record.
pub fn id_of(record: &StoredJob) -> &str {
    record.job.as_ref().map_or("", |j| j.id.as_str())
}

/// The revision a record was read at.
pub fn revision_of(record: &StoredJob) -> Revision {
    record.job.as_ref().map_or(0, |j| j.sequence)
}

/// Whether the record's job ended before `cutoff`.
pub fn ended_before(record: &StoredJob, cutoff: SystemTime) -> bool {
    let end = record.job.as_ref().filter(|j| j.state().is_terminal()).and_then(|j| j.end_time);
    end.and_then(|end| SystemTime::try_from(end).ok()).is_some_and(|end| end < cutoff)
}

/// Whether the record's job has ended (succeeded, failed or cancelled).
pub fn has_ended(record: &StoredJob) -> bool {
    record.job.as_ref().is_some_and(|j| j.state().is_terminal())
}

/// What `modify` did.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Modified {
    /// The change was written; the record as written.
    Written(StoredJob),
    /// The change declined to write; the record as read.
    Kept(StoredJob),
    /// No such job.
    Missing,
}

/// Reads the job, lets `change` edit it and writes it back, reading again
/// after a conflict. `change` returns `false` to write nothing (it must
/// then leave the record as it found it).
pub async fn modify(
    records: &dyn Records,
    id: &str,
    durability: Durability,
    change: impl FnMut(&mut StoredJob) -> bool + Send,
) -> Result<Modified> {
    modify_from(records, id, records.get(id).await?, durability, change).await
}

/// `modify`, starting from `read`, the record as the caller just read it
/// (`None`: missing), so that a caller who needed it anyway does not read
/// it twice; after a conflict it is read again.
pub async fn modify_from(
    records: &dyn Records,
    id: &str,
    read: Option<StoredJob>,
    durability: Durability,
    mut change: impl FnMut(&mut StoredJob) -> bool + Send,
) -> Result<Modified> {
    let mut read = read;
    loop {
        let Some(mut record) = read.take() else {
            return Ok(Modified::Missing);
        };
        if !change(&mut record) {
            return Ok(Modified::Kept(record));
        }
        match records.update(record, durability).await {
            Ok(written) => return Ok(Modified::Written(written)),
            Err(BackendError::Conflict { .. }) => read = records.get(id).await?,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Backend;
    use super::conformance::{self, NatsServer, Subject};
    use async_trait::async_trait;

    struct InMemory;

    #[async_trait]
    impl Subject for InMemory {
        async fn fresh(&mut self) -> Backend {
            Backend::in_memory(conformance::LEASE)
        }

        async fn restart(&mut self, _: Backend) -> Option<Backend> {
            None
        }
    }

    struct Embedded {
        dir: tempfile::TempDir,
        made: usize,
    }

    impl Embedded {
        fn open(&self) -> Backend {
            let dir = self.dir.path().join(self.made.to_string());
            Backend::embedded(&dir.join("jobs.redb"), &dir.join("jobs"), conformance::LEASE).unwrap()
        }
    }

    #[async_trait]
    impl Subject for Embedded {
        async fn fresh(&mut self) -> Backend {
            self.made += 1;
            std::fs::create_dir_all(self.dir.path().join(self.made.to_string())).unwrap();
            self.open()
        }

        async fn restart(&mut self, old: Backend) -> Option<Backend> {
            drop(old);
            Some(self.open())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_in_memory_backend_conforms() {
        conformance::run(&mut InMemory).await;
    }

    struct OnNats {
        server: NatsServer,
        scratch: tempfile::TempDir,
        made: usize,
    }

    impl OnNats {
        async fn connect(&self) -> Backend {
            let settings = super::NatsSettings {
                urls: vec![self.server.url.clone()],
                prefix: format!("t{}", self.made),
                lease: conformance::LEASE,
                retention: std::time::Duration::from_secs(3600),
                replicas: 1,
                scratch: self.scratch.path().join(self.made.to_string()),
                access: Default::default(),
            };
            Backend::nats(settings).await.unwrap()
        }
    }

    #[async_trait]
    impl Subject for OnNats {
        async fn fresh(&mut self) -> Backend {
            self.made += 1;
            self.connect().await
        }

        async fn restart(&mut self, old: Backend) -> Option<Backend> {
            drop(old);
            Some(self.connect().await)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_nats_backend_conforms() {
        let server = NatsServer::start();
        conformance::run(&mut OnNats { server, scratch: tempfile::tempdir().unwrap(), made: 0 }).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_last_node_to_start_sets_the_shared_lease() {
        use std::time::Duration;
        let server = NatsServer::start();
        let scratch = tempfile::tempdir().unwrap();
        let settings = |lease| super::NatsSettings {
            urls: vec![server.url.clone()],
            prefix: "lease".into(),
            lease,
            retention: Duration::from_secs(3600),
            replicas: 1,
            scratch: scratch.path().to_owned(),
            access: Default::default(),
        };
        let short = Backend::nats(settings(Duration::from_secs(1))).await.unwrap();
        let long = Backend::nats(settings(Duration::from_secs(6))).await.unwrap();
        long.queue.push("a").await.unwrap();
        let held = long.queue.lease().await.unwrap().expect("the job");
        // Past the first node's lease, well within the second's.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let again = tokio::time::timeout(Duration::from_secs(1), short.queue.lease()).await;
        assert!(again.is_err(), "handed out again after the first node's lease: {again:?}");
        long.queue.ack(&held).await.unwrap();
    }

    /// Many watches of jobs on one node cost the NATS server one consumer
    /// per node, and each sees every write, whichever node made it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watches_on_a_node_share_one_consumer_and_see_every_nodes_writes() {
        use crate::{Created, Durability};
        use docconv::proto::v1::JobState;
        use futures_util::StreamExt;
        let server = NatsServer::start();
        let subject = OnNats { server, scratch: tempfile::tempdir().unwrap(), made: 1 };
        let (writer, watcher) = (subject.connect().await, subject.connect().await);
        let Created::New(mut record) = writer.records.create(conformance::queued("a", "", 1)).await.unwrap() else {
            panic!("a new job");
        };
        let mut watches = Vec::new();
        for _ in 0..50 {
            watches.push(watcher.records.watch("a", 0).await.unwrap().expect("the job"));
        }
        let mut revisions = vec![crate::revision_of(&record)];
        for state in [JobState::Running, JobState::Succeeded] {
            record.job.as_mut().unwrap().set_state(state);
            record = writer.records.update(record, Durability::Lasting).await.unwrap();
            revisions.push(crate::revision_of(&record));
        }
        for mut watch in watches {
            let mut seen = Vec::new();
            while let Some(event) = watch.next().await {
                seen.push(crate::revision_of(&event.unwrap()));
            }
            assert_eq!(seen, revisions, "the job as it was, then each write, then the end");
        }
        let mut bucket = async_nats::jetstream::new(async_nats::connect(&subject.server.url).await.unwrap())
            .get_stream("KV_t1-jobs")
            .await
            .unwrap();
        let consumers = bucket.info().await.unwrap().state.consumer_count;
        assert_eq!(consumers, 2, "one watch of the bucket per node");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_embedded_backend_conforms() {
        conformance::run(&mut Embedded { dir: tempfile::tempdir().unwrap(), made: 0 }).await;
    }
}
