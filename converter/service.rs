//! The `docconv.v1.Converter` gRPC service: validates calls, streams
//! uploads to disk, and turns job states into responses. All job logic is
//! in `jobs`; all conversion in `pool`.

mod invoice;
mod upload;

use super::disk;
use super::error::{Error, Result};
use super::files;
use super::formats::{self, Targets};
use super::jobs::{Jobs, now_timestamp};
use super::options;
use super::pool::Running;
use super::postprocess;
use super::webhooks;
use docconv::ids;
use docconv::metrics::Active;
use docconv::proto::v1::converter_server::Converter;
use docconv::proto::v1::{
    CancelJobRequest, ConversionOptions, GetJobRequest, GetPreviewRequest, GetServerInfoRequest, Heartbeat, Job,
    JobState, ListFormatsRequest, ListFormatsResponse, Output, Preview, ReadResultRequest, ReadResultResponse,
    ServerInfo, SubmitHeader, SubmitRequest, WatchJobRequest, WatchJobResponse, WorkerSandbox, submit_request,
    watch_job_response,
};
use docconv::trace::{self, TraceParent};
use docconv_backend::{Events, StoredInput, StoredJob};
use futures_util::StreamExt;
use prometheus_client::metrics::counter::Counter;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;
use upload::check_file_name;

/// Chunk size of `ReadResult`: a multiple of 3, so grpcurl's base64 chunks
/// carry no padding but the last and decode as one concatenated text.
const READ_CHUNK: usize = 3 * 85 * 1024;
/// How long a call waits for a starting converter to learn its targets.
const STARTING: Duration = Duration::from_secs(30);

/// The service's fixed settings.
pub struct Settings {
    pub max_upload_bytes: u64,
    pub heartbeat: Duration,
    /// Free bytes below which `Submit` refuses (see `disk`).
    pub min_free_disk: u64,
    /// Worker processes, as `GetServerInfo` reports them.
    pub workers: u32,
    /// Where this node writes job files, for its free space.
    pub data_dir: std::path::PathBuf,
    /// What webhooks may reach, to refuse at once what never could.
    pub webhooks: webhooks::Policy,
}

pub struct ConverterService {
    jobs: Arc<Jobs>,
    /// What each kind of document can become, once the pool has probed it.
    targets: watch::Receiver<Option<Arc<Targets>>>,
    /// How workers are confined, once the first has started.
    sandbox: watch::Receiver<Option<docconv_worker::proto::Sandbox>>,
    /// Becomes true at shutdown: open watch streams end with UNAVAILABLE so
    /// clients reconnect elsewhere (or after the restart) instead of hanging.
    stopping: watch::Receiver<bool>,
    max_upload_bytes: u64,
    heartbeat: Duration,
    min_free_disk: u64,
    workers: u32,
    data_dir: std::path::PathBuf,
    webhooks: webhooks::Policy,
}

impl ConverterService {
    pub fn new(jobs: Arc<Jobs>, pool: &Running, stopping: watch::Receiver<bool>, settings: Settings) -> Self {
        let Settings { max_upload_bytes, heartbeat, min_free_disk, workers, data_dir, webhooks } = settings;
        let (targets, sandbox) = (pool.targets.clone(), pool.sandbox.clone());
        ConverterService {
            jobs,
            targets,
            sandbox,
            stopping,
            max_upload_bytes,
            heartbeat,
            min_free_disk,
            workers,
            data_dir,
            webhooks,
        }
    }

    /// The probed targets. Calls that arrive while the first worker is
    /// still starting wait for them, within reason.
    async fn targets(&self) -> Result<Arc<Targets>> {
        let mut targets = self.targets.clone();
        let probed = tokio::time::timeout(STARTING, targets.wait_for(Option::is_some)).await;
        match probed {
            Ok(Ok(found)) => Ok(found.clone().expect("waited for Some")),
            _ => Err(Error::Unavailable("the converter is still starting; try again shortly".into())),
        }
    }

    async fn submit(&self, mut stream: Streaming<SubmitRequest>, trace: TraceParent) -> Result<Job> {
        let header = match stream.message().await.map_err(upload_broken)? {
            Some(SubmitRequest { payload: Some(submit_request::Payload::Header(header)) }) => header,
            _ => {
                return Err(Error::InvalidArgument("the first message must be a header".into()));
            }
        };
        let checked = self.check_header(&header, &*self.targets().await?)?;
        if !header.request_id.is_empty()
            && let Some(job) = self.jobs.by_request_id(&header.request_id).await?
        {
            return Ok(job);
        }
        self.jobs.check_room().await?;
        disk::check(&self.data_dir, self.min_free_disk)?;
        // From here on, any way out but `keep` (an error, or the client
        // going away and this future being dropped) deletes the upload.
        let upload = self.jobs.begin_upload(ids::new_id());
        let id = upload.id().to_owned();
        let options = header.options.clone().unwrap_or_default();
        let accepted = self.accept(&mut stream, &id, checked, header, options, trace).await;
        match accepted {
            Ok(job) if job.id == upload.id() => {
                upload.keep();
                tracing::info!(job = %job.id, file = %job.file_name, to = %job.target_format, "job accepted");
                self.jobs.metrics().bytes_received.inc_by(job.input_size_bytes);
                Ok(job)
            }
            // The request id named an earlier job: that one is the answer.
            Ok(job) => {
                upload.discard().await;
                Ok(job)
            }
            Err(e) => {
                upload.discard().await;
                Err(e)
            }
        }
    }

    /// Receives the documents of job `id` and records it.
    async fn accept(
        &self,
        stream: &mut Streaming<SubmitRequest>,
        id: &str,
        checked: Checked,
        header: SubmitHeader,
        options: ConversionOptions,
        trace: TraceParent,
    ) -> Result<Job> {
        let (input_size_bytes, more_inputs) = self.receive(stream, id, &checked, &header, &options).await?;
        let reservation = self.jobs.reserve().await?;
        let attachments: Vec<&StoredInput> = more_inputs.iter().filter(|i| i.attachment.is_some()).collect();
        let documents: Vec<&StoredInput> = more_inputs.iter().filter(|i| upload::is_document(i)).collect();
        let merged_file_names = match documents.is_empty() {
            true => Vec::new(),
            false => std::iter::once(checked.file_name.clone())
                .chain(documents.iter().map(|i| i.file_name.clone()))
                .collect(),
        };
        let attachment_file_names = attachments.iter().map(|i| i.file_name.clone()).collect();
        let record = StoredJob {
            job: Some(Job {
                id: id.to_owned(),
                file_name: checked.file_name,
                target_format: checked.target,
                input_size_bytes,
                options: Some(options::redacted(&options)),
                merged_file_names,
                attachment_file_names,
                webhook: header.webhook.as_ref().map(|_| webhooks::pending()),
                ..Job::default()
            }),
            webhook: header.webhook,
            request_id: header.request_id,
            input_extension: checked.extension,
            order: 0,
            options: Some(options),
            more_inputs,
            traceparent: trace.to_string(),
            ..StoredJob::default()
        };
        self.jobs.enqueue(reservation, record).await
    }

    fn check_header(&self, header: &SubmitHeader, targets: &Targets) -> Result<Checked> {
        let (file_name, format) = check_file_name("header.file_name", &header.file_name)?;
        let target = match header.target_format.trim().trim_start_matches('.').to_ascii_lowercase() {
            t if t.is_empty() => "pdf".to_owned(),
            t => t,
        };
        let mut violations = options::check(&header.options.clone().unwrap_or_default(), &target, format.kind, targets);
        if let Some(webhook) = &header.webhook {
            violations.extend(webhooks::check(webhook, &self.webhooks));
        }
        if !violations.is_empty() {
            return Err(Error::BadRequest(violations));
        }
        if let Some(size) = header.size_bytes
            && size > self.max_upload_bytes
        {
            return Err(self.too_large());
        }
        Ok(Checked { file_name, extension: format.extension.to_owned(), target })
    }

    fn too_large(&self) -> Error {
        Error::ResourceExhausted(format!(
            "the document is larger than the upload limit of {} MiB",
            self.max_upload_bytes / (1024 * 1024)
        ))
    }
}

impl ConverterService {
    /// The preview of a PDF result, rendered once and kept with the job.
    async fn preview(&self, id: &str) -> Result<Vec<u8>> {
        let record = self.jobs.record(id).await?;
        let job = record.job.clone().unwrap_or_default();
        // A split's result is a zip of parts, not one PDF to show.
        let one_pdf = job.output.as_ref().is_some_and(|output| formats::result_extension(&output.file_name) == "pdf");
        if job.state() != JobState::Succeeded || !one_pdf {
            return Err(Error::FailedPrecondition(format!("job {id} has no single PDF to preview")));
        }
        if let Some(mut kept) = self.jobs.blobs().open(id, files::PREVIEW, 0).await? {
            let mut data = Vec::new();
            kept.read_to_end(&mut data).await?;
            return Ok(data);
        }
        let result = files::result_of(&record, "pdf");
        let folder = self.jobs.blobs().checkout(id, std::slice::from_ref(&result)).await?;
        let png = folder.join(files::PREVIEW);
        let password = record
            .options
            .and_then(|o| o.pdf)
            .and_then(|p| p.encryption)
            .map(|e| e.open_password)
            .filter(|p| !p.is_empty());
        let pdf = folder.join(&result);
        postprocess::render_preview(&pdf, &png, password.as_deref())
            .await
            .map_err(|failure| Error::internal(format!("rendering the preview of job {id}: {failure:?}")))?;
        self.jobs.blobs().keep(id, &[files::PREVIEW.to_owned()]).await?;
        let data = tokio::fs::read(&png).await?;
        self.jobs.blobs().forget_local(id).await?;
        Ok(data)
    }
}

struct Checked {
    file_name: String,
    extension: String,
    target: String,
}

fn upload_broken(status: Status) -> Error {
    Error::InvalidArgument(format!("the upload stream failed: {}", status.message()))
}

fn check_id(id: &str) -> Result<()> {
    if ids::is_valid(id) {
        Ok(())
    } else {
        Err(Error::NotFound(format!("no job {:?}: job ids are 32 hex digits", ids::shown(id))))
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = std::result::Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Converter for ConverterService {
    async fn submit(&self, request: Request<Streaming<SubmitRequest>>) -> std::result::Result<Response<Job>, Status> {
        // The caller's trace goes on with the job (a new one starts here
        // for callers that send none).
        let from_caller = request.metadata().get(trace::HEADER).and_then(|value| value.to_str().ok());
        let span = tracing::info_span!("submit", trace_id = tracing::field::Empty);
        let trace = TraceParent::adopt(&span, from_caller.and_then(TraceParent::parse));
        let job = self.submit(request.into_inner(), trace).instrument(span).await?;
        Ok(Response::new(job))
    }

    type WatchJobStream = BoxStream<WatchJobResponse>;

    async fn watch_job(
        &self,
        request: Request<WatchJobRequest>,
    ) -> std::result::Result<Response<Self::WatchJobStream>, Status> {
        let id = request.into_inner().id;
        check_id(&id)?;
        let watch = self.jobs.watch(&id).await?;
        let open = Active::of(&self.jobs.metrics().watches);
        Ok(Response::new(Box::pin(watch_stream(watch, self.heartbeat, self.stopping.clone(), open))))
    }

    async fn get_job(&self, request: Request<GetJobRequest>) -> std::result::Result<Response<Job>, Status> {
        let id = request.into_inner().id;
        check_id(&id)?;
        Ok(Response::new(self.jobs.get(&id).await?))
    }

    async fn cancel_job(&self, request: Request<CancelJobRequest>) -> std::result::Result<Response<Job>, Status> {
        let id = request.into_inner().id;
        check_id(&id)?;
        Ok(Response::new(self.jobs.cancel(&id).await?))
    }

    type ReadResultStream = BoxStream<ReadResultResponse>;

    async fn read_result(
        &self,
        request: Request<ReadResultRequest>,
    ) -> std::result::Result<Response<Self::ReadResultStream>, Status> {
        let request = request.into_inner();
        check_id(&request.id)?;
        let record = self.jobs.record(&request.id).await?;
        let job = record.job.clone().unwrap_or_default();
        let output = job.output.as_ref().filter(|_| job.state() == JobState::Succeeded);
        let Some(output) = output else {
            return Err(Error::FailedPrecondition(format!(
                "job {} has no result: it is {}",
                job.id,
                job.state().as_str_name().trim_start_matches("JOB_STATE_").to_lowercase()
            ))
            .into());
        };
        if request.offset > output.size_bytes {
            return Err(Error::OutOfRange(format!(
                "offset {} is past the end of the result ({} bytes)",
                request.offset, output.size_bytes
            ))
            .into());
        }
        let name = files::result_of(&record, formats::result_extension(&output.file_name));
        let Some(file) = self.jobs.blobs().open(&job.id, &name, request.offset).await.map_err(Error::from)? else {
            return Err(Error::internal(format!("the result of job {} is missing", job.id)).into());
        };
        let remaining = output.size_bytes - request.offset;
        let length = if request.limit == 0 { remaining } else { request.limit.min(remaining) };
        let (tx, rx) = mpsc::channel(4);
        let sent = self.jobs.metrics().bytes_sent.clone();
        tokio::spawn(send_file(file, request.offset, length, output.clone(), tx, sent));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_preview(&self, request: Request<GetPreviewRequest>) -> std::result::Result<Response<Preview>, Status> {
        let id = request.into_inner().id;
        check_id(&id)?;
        Ok(Response::new(Preview { png: self.preview(&id).await? }))
    }

    async fn list_formats(
        &self,
        _request: Request<ListFormatsRequest>,
    ) -> std::result::Result<Response<ListFormatsResponse>, Status> {
        let (inputs, outputs) = formats::listing(&*self.targets().await?);
        Ok(Response::new(ListFormatsResponse { inputs, outputs, max_upload_bytes: self.max_upload_bytes }))
    }

    async fn get_server_info(
        &self,
        _request: Request<GetServerInfoRequest>,
    ) -> std::result::Result<Response<ServerInfo>, Status> {
        let mut sandbox = self.sandbox.clone();
        let started = tokio::time::timeout(STARTING, sandbox.wait_for(Option::is_some)).await;
        let Ok(Ok(found)) = started else {
            return Err(Error::Unavailable("the converter is still starting; try again shortly".into()).into());
        };
        let found = found.clone().expect("waited for Some");
        Ok(Response::new(ServerInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            workers: self.workers,
            sandbox: Some(WorkerSandbox {
                network: found.network,
                filesystem: found.filesystem,
                syscalls: found.syscalls,
                problems: found.problems,
            }),
        }))
    }
}

/// Where a watch stream is.
struct Watching {
    /// The snapshot, until it is sent.
    snapshot: Option<Job>,
    /// Changes after the snapshot; none for a job that has ended.
    updates: Option<Events>,
    last_sequence: u64,
    heartbeat: Duration,
    stopping: watch::Receiver<bool>,
    done: bool,
    /// Counts this watch among the open ones while it lives.
    _open: Active,
}

/// The snapshot, then every state until the terminal one, with heartbeats
/// in long silences. The stream is polled by the connection itself: a
/// watcher costs no task and no buffer of its own, and when the client goes
/// away the stream is dropped; the job itself is not affected.
fn watch_stream(
    watch: super::jobs::Watch,
    heartbeat: Duration,
    stopping: watch::Receiver<bool>,
    open: Active,
) -> impl Stream<Item = std::result::Result<WatchJobResponse, Status>> + Send {
    let state = Watching {
        _open: open,
        last_sequence: watch.snapshot.sequence,
        snapshot: Some(watch.snapshot),
        updates: watch.updates,
        heartbeat,
        stopping,
        done: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        if let Some(job) = state.snapshot.take() {
            state.done = job.state().is_terminal() || state.updates.is_none();
            return Some((Ok(job_message(job)), state));
        }
        let mut updates = state.updates.take()?;
        let item = next_update(&mut state, &mut updates).await;
        state.updates = Some(updates);
        Some((item, state))
    })
}

fn job_message(job: Job) -> WatchJobResponse {
    WatchJobResponse { event: Some(watch_job_response::Event::Job(job)) }
}

async fn next_update(state: &mut Watching, updates: &mut Events) -> std::result::Result<WatchJobResponse, Status> {
    loop {
        let next = tokio::select! {
            next = updates.next() => next,
            () = tokio::time::sleep(state.heartbeat) => {
                let beat = Heartbeat { time: Some(now_timestamp()) };
                return Ok(WatchJobResponse { event: Some(watch_job_response::Event::Heartbeat(beat)) });
            }
            () = stopped(&mut state.stopping) => {
                state.done = true;
                return Err(Status::unavailable("the converter is shutting down; watch again"));
            }
        };
        match next {
            Some(Ok(record)) => {
                let job = record.job.unwrap_or_default();
                // States older than the snapshot were already covered by it.
                if job.sequence <= state.last_sequence {
                    continue;
                }
                state.last_sequence = job.sequence;
                state.done = job.state().is_terminal();
                return Ok(job_message(job));
            }
            Some(Err(e)) => {
                tracing::warn!("a watch ended early: {e}");
                state.done = true;
                return Err(Status::unavailable("the job's updates ended early; watch again"));
            }
            None => {
                state.done = true;
                return Err(Status::unavailable("the job's updates ended early; watch again"));
            }
        }
    }
}

async fn send_file(
    mut file: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    mut offset: u64,
    mut remaining: u64,
    output: Output,
    tx: mpsc::Sender<std::result::Result<ReadResultResponse, Status>>,
    sent: Counter,
) {
    let mut output = Some(output);
    if remaining == 0 {
        // Nothing to send but the description.
        let _ = tx.send(Ok(ReadResultResponse { offset, data: Vec::new(), output })).await;
        return;
    }
    while remaining > 0 {
        let mut buffer = vec![0u8; READ_CHUNK.min(remaining as usize)];
        let read = match file.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Err(Error::from(e).into())).await;
                return;
            }
        };
        buffer.truncate(read);
        if tx.send(Ok(ReadResultResponse { offset, data: buffer, output: output.take() })).await.is_err() {
            return;
        }
        sent.inc_by(read as u64);
        offset += read as u64;
        remaining -= read as u64;
    }
}

async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which happens only at exit.
    let _ = stopping.wait_for(|&stop| stop).await;
}
