//! `docconv job get|watch|cancel|download ID`: one job, by its id (as
//! `convert --json` prints it).

use super::download::{self, Destination};
use super::error::ClientError;
use super::json;
use super::progress::{Mode, Progress};
use super::{EXIT_ERROR, EXIT_JOB_FAILED, EXIT_OK, ServerArgs};
use clap::{Args, Subcommand};
use docconv::proto::v1::{CancelJobRequest, GetJobRequest, Job, JobState, WatchJobRequest, watch_job_response::Event};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct JobArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Print the job's current state
    Get {
        #[command(flatten)]
        job: JobId,
        /// The job as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Print each state of the job until it ends; exits with 1 if it
    /// failed or was cancelled
    Watch {
        #[command(flatten)]
        job: JobId,
        /// One JSON object a line for each state
        #[arg(long)]
        json: bool,
    },
    /// Cancel the job if it has not ended (an ended job stays as it is)
    Cancel {
        #[command(flatten)]
        job: JobId,
        /// The job after the cancel, as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Download the result of a succeeded job; an interrupted download of
    /// the same job to the same place goes on where it stopped
    Download {
        #[command(flatten)]
        job: JobId,
        /// The file to write, or a directory to write it into under the
        /// result's name [default: the current directory]
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct JobId {
    /// The job's id, 32 hex digits
    id: String,
    #[command(flatten)]
    server: ServerArgs,
}

pub async fn run(args: JobArgs) -> u8 {
    let (Action::Get { job, .. }
    | Action::Watch { job, .. }
    | Action::Cancel { job, .. }
    | Action::Download { job, .. }) = &args.action;
    match act(&args.action, job).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("docconv: {}", e.chain());
            EXIT_ERROR
        }
    }
}

async fn act(action: &Action, job: &JobId) -> Result<u8, ClientError> {
    // An id is a path component of the download's temporary file, and
    // the service would refuse anything else anyway.
    if !docconv::ids::is_valid(&job.id) {
        return Err(ClientError::Usage(format!(
            "{:?} is not a job id (32 lowercase hex digits)",
            docconv::ids::shown(&job.id)
        )));
    }
    let mut client = job.server.connect().await?;
    let id = job.id.clone();
    match action {
        Action::Get { json, .. } => {
            let job = client.get_job(GetJobRequest { id }).await.map_err(ClientError::rpc("getting the job"))?;
            print_job(job.get_ref(), *json);
            Ok(EXIT_OK)
        }
        Action::Cancel { json, .. } => {
            let job =
                client.cancel_job(CancelJobRequest { id }).await.map_err(ClientError::rpc("cancelling the job"))?;
            print_job(job.get_ref(), *json);
            Ok(EXIT_OK)
        }
        Action::Watch { json, .. } => {
            let mut stream = client
                .watch_job(WatchJobRequest { id })
                .await
                .map_err(ClientError::rpc("watching the job"))?
                .into_inner();
            let mut last: Option<Job> = None;
            while let Some(message) = stream.message().await.map_err(ClientError::rpc("watching the job"))? {
                let Some(Event::Job(job)) = message.event else { continue };
                match *json {
                    true => println!("{}", json::job(&job)),
                    false => println!("{}", json::state_words(&job)),
                }
                last = Some(job);
            }
            match last.map(|j| j.state()) {
                Some(JobState::Succeeded) => Ok(EXIT_OK),
                Some(state) if state.is_terminal() => Ok(EXIT_JOB_FAILED),
                _ => Err(ClientError::Protocol("the watch ended before the job did".into())),
            }
        }
        Action::Download { output, .. } => {
            let job =
                client.get_job(GetJobRequest { id }).await.map_err(ClientError::rpc("getting the job"))?.into_inner();
            match job.state() {
                JobState::Succeeded => {}
                JobState::Failed | JobState::Cancelled => {
                    let why = job.error.as_ref().map(|e| e.message.as_str()).unwrap_or("no reason given");
                    eprintln!("docconv: job {} {}: {why}", job.id, json::state_name(job.state()));
                    return Ok(EXIT_JOB_FAILED);
                }
                _ => {
                    return Err(ClientError::Usage(format!(
                        "job {} has not ended ({}); `docconv job watch {}` follows it",
                        job.id,
                        json::state_words(&job),
                        job.id
                    )));
                }
            }
            let to = Destination::new(output.as_deref(), &job);
            let name = to.path.display().to_string();
            let progress = Progress::new(Mode::detect(false), std::slice::from_ref(&name));
            let line = progress.file(&name);
            let result = download::download(&mut client, &job, &to, |done, total| line.downloading(done, total)).await;
            line.finish(result.is_ok(), if result.is_ok() { "done" } else { "stopped" });
            result?;
            println!("{name}");
            Ok(EXIT_OK)
        }
    }
}

fn print_job(job: &Job, as_json: bool) {
    match as_json {
        true => println!("{}", json::job(job)),
        false => println!("{}", json::summary(job)),
    }
}
