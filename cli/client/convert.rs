//! `docconv convert FILE…`: each file (or, with `--merge`, all of them in
//! one job) is streamed to `Submit` in chunks, followed with `WatchJob`,
//! and its result downloaded into place; all files at once, each with its
//! own progress line.

use super::attach::{AttachArgs, Attaching};
use super::download::{self, Destination};
use super::error::ClientError;
use super::json;
use super::marks::MarkArgs;
use super::options::OptionArgs;
use super::progress::{FileProgress, Mode, Progress};
use super::webhook::WebhookArgs;
use super::{Client, EXIT_ERROR, EXIT_JOB_FAILED, EXIT_OK, ServerArgs};
use clap::Args;
use docconv::limits::MAX_CHUNK;
use docconv::proto::v1::{
    ConversionOptions, DocumentHeader, GetJobRequest, Job, JobState, SubmitHeader, SubmitRequest, WatchJobRequest,
    Webhook, submit_request::Payload, watch_job_response::Event,
};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Documents to convert (Word, Excel, PowerPoint, OpenDocument, RTF,
    /// CSV, text, HTML, …), and PDFs to finish or merge
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The target format by extension, e.g. pdf, docx, odt [default: pdf]
    #[arg(long, value_name = "FORMAT")]
    to: Option<String>,
    /// The directory to write results into, under the names the service
    /// gives them (the document's name with the new extension) [default:
    /// the current directory]
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Merge the files, in the order given, into one PDF
    #[arg(long)]
    merge: bool,
    /// Print one JSON object per file on standard output (its job's id,
    /// state, output path and error) and no progress
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    options: OptionArgs,
    #[command(flatten)]
    webhook: WebhookArgs,
    #[command(flatten)]
    attach: AttachArgs,
    #[command(flatten)]
    marks: MarkArgs,
}

/// One job of the run: a file, or every file of a merge.
struct Work {
    files: Vec<PathBuf>,
    /// How it is shown: the file as given, or "a.docx + 2 more".
    name: String,
}

/// How one job of the run ended.
struct Outcome {
    job: Option<Job>,
    output: Option<PathBuf>,
    error: Option<ClientError>,
}

impl Outcome {
    fn failed(error: ClientError) -> Outcome {
        Outcome { job: None, output: None, error: Some(error) }
    }

    fn succeeded(&self) -> bool {
        self.error.is_none() && self.job.as_ref().is_some_and(|j| j.state() == JobState::Succeeded)
    }
}

pub async fn run(args: ConvertArgs) -> u8 {
    let work: Vec<Work> = if args.merge {
        let name = match args.files.len() {
            1 => shown(&args.files[0]),
            n => format!("{} + {} more", shown(&args.files[0]), n - 1),
        };
        vec![Work { files: args.files.clone(), name }]
    } else {
        args.files.iter().map(|f| Work { files: vec![f.clone()], name: shown(f) }).collect()
    };
    if let Err(e) = check(&args, &work) {
        eprintln!("docconv: {}", e.chain());
        return EXIT_ERROR;
    }
    let mode = Mode::detect(args.json);
    let outcomes = match args.server.connect().await {
        Ok(client) => convert_all(client, &args, &work, mode).await,
        Err(e) => {
            let message = e.chain();
            work.iter().map(|_| Outcome::failed(ClientError::Protocol(message.clone()))).collect()
        }
    };
    report(&args, &work, &outcomes);
    if outcomes.iter().any(|o| o.error.is_some()) {
        EXIT_ERROR
    } else if outcomes.iter().all(Outcome::succeeded) {
        EXIT_OK
    } else {
        EXIT_JOB_FAILED
    }
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// What can be known wrong before anything is sent.
fn check(args: &ConvertArgs, work: &[Work]) -> Result<(), ClientError> {
    let mut attachments = args.attach.to_attachments().map_err(ClientError::Usage)?;
    attachments.extend(args.marks.files());
    for file in args.files.iter().chain(attachments.iter().map(|a| &a.path)) {
        let metadata =
            std::fs::metadata(file).map_err(|e| ClientError::io(format!("reading {}", file.display()), e))?;
        if !metadata.is_file() {
            return Err(ClientError::Usage(format!("{} is not a file", file.display())));
        }
    }
    // Results are named after their documents: two with one name would
    // overwrite each other.
    let extension = args.to.as_deref().unwrap_or("pdf");
    let mut names: HashMap<String, &Path> = HashMap::new();
    for item in work {
        let first = &item.files[0];
        let stem = first.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(other) = names.insert(format!("{stem}.{extension}"), first) {
            return Err(ClientError::Usage(format!(
                "{} and {} would both be written to {stem}.{extension}; convert them in separate runs or to separate \
                 directories",
                other.display(),
                first.display()
            )));
        }
    }
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).map_err(|e| ClientError::io(format!("creating {}", dir.display()), e))?;
    }
    Ok(())
}

/// Runs every job at once (the service queues what it cannot start yet)
/// and returns their outcomes in the order of `work`.
async fn convert_all(client: Client, args: &ConvertArgs, work: &[Work], mode: Mode) -> Vec<Outcome> {
    let names: Vec<String> = work.iter().map(|w| w.name.clone()).collect();
    let progress = Arc::new(Progress::new(mode, &names));
    let options = args.marks.add_to(args.options.to_options());
    let webhook = args.webhook.to_webhook();
    let target = args.to.clone().unwrap_or_default();
    let out_dir = args.output_dir.clone();
    // Checked already (`check`). The files of marks go like attachments,
    // after the documents, their headers saying which mark they are.
    let mut attachments = args.attach.to_attachments().unwrap_or_default();
    attachments.extend(args.marks.files());
    let mut tasks = tokio::task::JoinSet::new();
    for (index, item) in work.iter().enumerate() {
        let (mut client, files, options, webhook, target, out_dir) =
            (client.clone(), item.files.clone(), options.clone(), webhook.clone(), target.clone(), out_dir.clone());
        let line = progress.file(&item.name);
        let attachments = attachments.clone();
        tasks.spawn(async move {
            let asked = Asked { target, options, webhook, attachments };
            let outcome = convert_one(&mut client, &files, asked, out_dir.as_deref(), &line).await;
            let words = match (&outcome.error, &outcome.job) {
                (Some(e), _) => format!("error: {}", e.chain().lines().next().unwrap_or_default()),
                (None, Some(job)) if job.state() == JobState::Succeeded => match &outcome.output {
                    Some(path) => format!("done: {}", path.display()),
                    None => "done".to_owned(),
                },
                (None, Some(job)) => json::state_words(job),
                (None, None) => String::new(),
            };
            line.finish(outcome.succeeded(), &words);
            (index, outcome)
        });
    }
    let mut outcomes: Vec<Option<Outcome>> = work.iter().map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((index, outcome)) => {
                if args.json {
                    println!("{}", json_line(&work[index], &outcome));
                }
                outcomes[index] = Some(outcome);
            }
            // A task that panicked: its outcome stays missing, reported below.
            Err(e) => progress.println(&format!("docconv: a conversion stopped: {e}")),
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::failed(ClientError::Protocol("the conversion stopped".into()))))
        .collect()
}

/// What each job is asked to do, besides converting its files.
struct Asked {
    target: String,
    options: ConversionOptions,
    webhook: Option<Webhook>,
    /// Files embedded in the result, and the files of marks, sent after
    /// the documents.
    attachments: Vec<Attaching>,
}

async fn convert_one(
    client: &mut Client,
    files: &[PathBuf],
    asked: Asked,
    out_dir: Option<&Path>,
    line: &FileProgress,
) -> Outcome {
    let job = match submit_again_if_unavailable(client, files, &asked, line).await {
        Ok(job) => job,
        Err(e) => return Outcome::failed(e),
    };
    line.job(&job);
    let job = match follow(client, job, line).await {
        Ok(job) => job,
        Err((job, e)) => return Outcome { job: Some(job), output: None, error: Some(e) },
    };
    if job.state() != JobState::Succeeded {
        return Outcome { job: Some(job), output: None, error: None };
    }
    let to = Destination::new(Some(out_dir.unwrap_or(Path::new("."))), &job);
    match download::download(client, &job, &to, |done, total| line.downloading(done, total)).await {
        Ok(()) => Outcome { job: Some(job), output: Some(to.path), error: None },
        Err(e) => Outcome { job: Some(job), output: None, error: Some(e) },
    }
}

/// Waits before each further `Submit` when the service was unavailable.
const RESUBMIT_AFTER: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)];

/// `submit`, again while the service answers UNAVAILABLE (a converter
/// stopping, a cluster's job store electing a leader, a gateway's
/// converter gone). Every try carries the same request id, so a try that
/// was accepted before its answer was lost is answered with that job, not
/// converted twice.
async fn submit_again_if_unavailable(
    client: &mut Client,
    files: &[PathBuf],
    asked: &Asked,
    line: &FileProgress,
) -> Result<Job, ClientError> {
    let request_id = docconv::ids::new_id();
    let mut waits = RESUBMIT_AFTER.iter();
    loop {
        match submit(client, files, asked, &request_id, line).await {
            Err(e) if e.code() == Some(tonic::Code::Unavailable) => match waits.next() {
                Some(wait) => tokio::time::sleep(*wait).await,
                None => return Err(e),
            },
            answer => return answer,
        }
    }
}

/// What ended the reading side of an upload early.
enum ReadEnd {
    /// The call ended (the service answered, e.g. refusing the header).
    CallEnded,
    Failed(ClientError),
}

/// Streams `files` into one `Submit` call: the header, then each file in
/// chunks of at most `MAX_CHUNK`, a `next_document` before each further
/// one. Each document's size is declared, so the service refuses an
/// upload that came out short; a file that cannot be read cancels the
/// call.
async fn submit(
    client: &mut Client,
    files: &[PathBuf],
    asked: &Asked,
    request_id: &str,
    line: &FileProgress,
) -> Result<Job, ClientError> {
    // The documents, then the files to embed, each with its header (the
    // first document's is the SubmitHeader).
    let attached = asked.attachments.iter().map(|a| (&a.path, Some(&a.header)));
    let parts: Vec<(&PathBuf, Option<&DocumentHeader>)> = files.iter().map(|f| (f, None)).chain(attached).collect();
    let mut sizes = Vec::new();
    for (file, _) in &parts {
        let metadata =
            tokio::fs::metadata(file).await.map_err(|e| ClientError::io(format!("reading {}", file.display()), e))?;
        sizes.push(metadata.len());
    }
    let total: u64 = sizes.iter().sum();
    // A few chunks in flight: memory stays a few MiB whatever the size.
    let (sender, receiver) = mpsc::channel::<SubmitRequest>(2);
    let read = async {
        let mut sent = 0;
        for (index, ((file, attachment), &size)) in parts.iter().zip(&sizes).enumerate() {
            let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let header = match (index, attachment) {
                (_, Some(attachment)) => {
                    Payload::NextDocument(DocumentHeader { size_bytes: Some(size), ..(*attachment).clone() })
                }
                (0, None) => Payload::Header(SubmitHeader {
                    file_name,
                    target_format: asked.target.clone(),
                    size_bytes: Some(size),
                    options: Some(asked.options.clone()),
                    webhook: asked.webhook.clone(),
                    request_id: request_id.to_owned(),
                    ..SubmitHeader::default()
                }),
                (_, None) => {
                    Payload::NextDocument(DocumentHeader { file_name, size_bytes: Some(size), ..Default::default() })
                }
            };
            if sender.send(SubmitRequest { payload: Some(header) }).await.is_err() {
                return ReadEnd::CallEnded;
            }
            let mut reader = match tokio::fs::File::open(file).await {
                Ok(reader) => reader,
                Err(e) => return ReadEnd::Failed(ClientError::io(format!("reading {}", file.display()), e)),
            };
            loop {
                let chunk = match read_chunk(&mut reader).await {
                    Ok(chunk) if chunk.is_empty() => break,
                    Ok(chunk) => chunk,
                    Err(e) => return ReadEnd::Failed(ClientError::io(format!("reading {}", file.display()), e)),
                };
                sent += chunk.len() as u64;
                if sender.send(SubmitRequest { payload: Some(Payload::Data(chunk)) }).await.is_err() {
                    return ReadEnd::CallEnded;
                }
                line.uploading(sent, total);
            }
        }
        // Dropping the sender ends the request stream: the upload is complete.
        drop(sender);
        ReadEnd::CallEnded
    };
    let call = client.submit(ReceiverStream::new(receiver));
    tokio::pin!(call);
    let answer = tokio::select! {
        answer = &mut call => answer,
        end = read => match end {
            ReadEnd::CallEnded => call.await,
            // Returning drops the call, which cancels it: the service
            // keeps nothing of an upload that did not finish.
            ReadEnd::Failed(e) => return Err(e),
        },
    };
    answer.map(|r| r.into_inner()).map_err(ClientError::rpc("submitting"))
}

/// Reads up to `MAX_CHUNK` bytes (fewer only at the end of the file).
async fn read_chunk(reader: &mut tokio::fs::File) -> std::io::Result<Vec<u8>> {
    let mut chunk = vec![0u8; MAX_CHUNK];
    let mut filled = 0;
    while filled < MAX_CHUNK {
        let read = reader.read(&mut chunk[filled..]).await?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    chunk.truncate(filled);
    Ok(chunk)
}

/// Follows the job with `WatchJob` to its end. A watch that breaks (the
/// service restarting) is opened again a few times: the job lives on.
async fn follow(client: &mut Client, mut job: Job, line: &FileProgress) -> Result<Job, (Job, ClientError)> {
    let mut retries = 0;
    loop {
        match watch(client, &mut job, line).await {
            Ok(()) if job.state().is_terminal() => return Ok(job),
            Ok(()) => {
                // The stream ended without the end; ask for the state.
                let request = GetJobRequest { id: job.id.clone() };
                match client.get_job(request).await {
                    Ok(answer) if answer.get_ref().state().is_terminal() => return Ok(answer.into_inner()),
                    Ok(_) => {}
                    Err(status) => return Err((job, ClientError::rpc("following the job")(status))),
                }
            }
            Err(ClientError::Rpc { status, .. }) if status.code() == tonic::Code::Unavailable && retries < 5 => {}
            Err(e) => return Err((job, e)),
        }
        retries += 1;
        if retries > 5 {
            return Err((job, ClientError::Protocol("the job's state stopped coming".into())));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One `WatchJob` stream, until it ends; `job` follows it.
async fn watch(client: &mut Client, job: &mut Job, line: &FileProgress) -> Result<(), ClientError> {
    let request = WatchJobRequest { id: job.id.clone() };
    let mut stream = client.watch_job(request).await.map_err(ClientError::rpc("following the job"))?.into_inner();
    while let Some(message) = stream.message().await.map_err(ClientError::rpc("following the job"))? {
        if let Some(Event::Job(state)) = message.event {
            line.job(&state);
            *job = state;
            if job.state().is_terminal() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Results on standard output (the paths written), problems on standard
/// error, each failure with the job's own message.
fn report(args: &ConvertArgs, work: &[Work], outcomes: &[Outcome]) {
    if args.json {
        return;
    }
    for (item, outcome) in work.iter().zip(outcomes) {
        match (&outcome.error, &outcome.job, &outcome.output) {
            (Some(e), job, _) => {
                let id = job.as_ref().map(|j| format!(" (job {})", j.id)).unwrap_or_default();
                eprintln!("docconv: {}{id}: {}", item.name, e.chain());
            }
            (None, Some(_), Some(path)) => println!("{}", path.display()),
            (None, Some(job), None) => {
                let why = job.error.as_ref().map(|e| e.message.as_str()).unwrap_or("no reason given");
                eprintln!("docconv: {} (job {}) {}: {why}", item.name, job.id, json::state_name(job.state()));
            }
            (None, None, _) => {}
        }
    }
}

/// `--json`'s object for one file (or merge).
fn json_line(item: &Work, outcome: &Outcome) -> serde_json::Value {
    let error = match (&outcome.error, &outcome.job) {
        (Some(e), _) => {
            let violations: Vec<_> =
                e.violations().into_iter().map(|(field, why)| json!({ "field": field, "description": why })).collect();
            Some(json!({
                "code": e.code().map(|c| c as i32),
                "message": e.chain(),
                "field_violations": violations,
            }))
        }
        (None, Some(job)) => job.error.as_ref().map(|e| json!({ "code": e.code, "message": e.message })),
        (None, None) => None,
    };
    let mut line = json!({
        "file": item.files[0].display().to_string(),
        "id": outcome.job.as_ref().map(|j| &j.id),
        "state": outcome.job.as_ref().map(|j| j.state().as_str_name()),
        "output": outcome.output.as_ref().map(|p| p.display().to_string()),
        "error": error,
        "job": outcome.job.as_ref().map(json::job),
    });
    if item.files.len() > 1 {
        line["files"] = item.files.iter().map(|f| f.display().to_string()).collect();
    }
    line
}
