//! The converter's side of the worker zygote (see `zygote`): start it,
//! and ask it for a worker with pipes made here.
//!
//! The zygote runs in its own process group, is killed when its handle
//! drops, and dies with the converter (`PR_SET_PDEATHSIG`); each worker it
//! forks dies with it in turn, so a converter's death still ends them all.

use super::handle::{WorkerError, WorkerSpec, create_home, forward_stderr, libreoffice_command, remove_dir_later};
use super::{fd_passing, lok};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::unix::pipe;
use tokio::process::Child;

/// How long the zygote may take to fork and answer.
const FORK_ANSWER_WITHIN: Duration = Duration::from_secs(10);

pub struct Zygote {
    /// The request socket; one request and its answer at a time.
    control: Arc<Mutex<UnixStream>>,
    process: Mutex<Child>,
    /// Its directory: the policy profile every forked worker runs with.
    home: PathBuf,
}

/// A worker just forked: its PID and our ends of its pipes.
pub(crate) struct Forked {
    pub pid: u32,
    pub pidfd: Option<OwnedFd>,
    pub stdin: pipe::Sender,
    pub events: pipe::Receiver,
    pub stderr: pipe::Receiver,
    /// Where the zygote writes how the worker ended (see `reaper`).
    pub ended: pipe::Receiver,
}

impl Zygote {
    /// Starts the zygote and waits until LibreOffice is preinitialised in
    /// it.
    pub async fn start(spec: &WorkerSpec) -> Result<Zygote, WorkerError> {
        let (home, profile_dir) = create_home(spec, "zygote")?;
        let (control, theirs) = UnixStream::pair().map_err(WorkerError::Spawn)?;
        let profile_url = lok::file_url(&profile_dir).map_err(|e| WorkerError::Spawn(std::io::Error::other(e)))?;
        let mut command = libreoffice_command(spec, "worker-zygote", &home, &profile_dir)?;
        command
            // Preinit reads its configuration from this profile: LibreOffice
            // takes bootstrap variables from the environment.
            .env("UserInstallation", &profile_url)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(WorkerError::Spawn)?;
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_stderr(child.id().unwrap_or(0), stderr));
        }
        let zygote = Zygote { control: Arc::new(Mutex::new(control)), process: Mutex::new(child), home };
        match zygote.answer(spec.start_timeout).await {
            Ok(0) => Ok(zygote),
            Ok(other) => Err(WorkerError::Died(format!("the zygote answered {other} before any request"))),
            Err(e) => Err(e),
        }
    }

    /// The zygote's process, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.lock().unwrap().id()
    }

    /// Whether the zygote process is still there.
    pub fn is_running(&self) -> bool {
        matches!(self.process.lock().unwrap().try_wait(), Ok(None))
    }

    /// Forks a worker with `home` as its directory and `profile` as its
    /// profile.
    pub(crate) async fn fork(&self, home: &Path, profile: &Path) -> Result<Forked, WorkerError> {
        let (stdin_theirs, stdin) = pipe_pair()?;
        let (events, events_theirs) = pipe_pair()?;
        let (stderr, stderr_theirs) = pipe_pair()?;
        let (ended, ended_theirs) = pipe_pair()?;
        let mut payload = home.as_os_str().as_encoded_bytes().to_vec();
        payload.push(0);
        payload.extend_from_slice(profile.as_os_str().as_encoded_bytes());
        let control = self.control.clone();
        let pid = tokio::task::spawn_blocking(move || -> std::io::Result<u32> {
            let control = control.lock().unwrap();
            let theirs = [
                stdin_theirs.as_raw_fd(),
                events_theirs.as_raw_fd(),
                stderr_theirs.as_raw_fd(),
                ended_theirs.as_raw_fd(),
            ];
            fd_passing::send(&control, &payload, &theirs)?;
            // Our copies of the worker's ends go now: its pipes then close
            // when it dies (and the status pipe when the zygote has told).
            drop((stdin_theirs, events_theirs, stderr_theirs, ended_theirs));
            read_answer(&control, FORK_ANSWER_WITHIN)
        })
        .await
        .map_err(|e| WorkerError::Died(e.to_string()))?;
        let pid = match pid {
            Ok(pid) => pid,
            Err(e) => {
                // A late answer would be taken for the next request's, and
                // name the wrong process: this zygote is done with.
                let _ = self.process.lock().unwrap().start_kill();
                return Err(WorkerError::Died(format!("the zygote did not answer: {e}")));
            }
        };
        if pid == 0 {
            return Err(WorkerError::Spawn(std::io::Error::other("the zygote could not fork")));
        }
        let spawn = WorkerError::Spawn;
        Ok(Forked {
            pid,
            pidfd: pidfd_open(pid),
            stdin: pipe::Sender::from_owned_fd(stdin).map_err(spawn)?,
            events: pipe::Receiver::from_owned_fd(events).map_err(spawn)?,
            stderr: pipe::Receiver::from_owned_fd(stderr).map_err(spawn)?,
            ended: pipe::Receiver::from_owned_fd(ended).map_err(spawn)?,
        })
    }

    async fn answer(&self, limit: Duration) -> Result<u32, WorkerError> {
        let control = self.control.clone();
        tokio::task::spawn_blocking(move || read_answer(&control.lock().unwrap(), limit))
            .await
            .map_err(|e| WorkerError::Died(e.to_string()))?
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => WorkerError::StartTimeout,
                _ => WorkerError::Died(format!("the zygote ended: {e}")),
            })
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        remove_dir_later(&self.home);
    }
}

fn read_answer(control: &UnixStream, limit: Duration) -> std::io::Result<u32> {
    control.set_read_timeout(Some(limit))?;
    let mut pid = [0u8; 4];
    (&*control).read_exact(&mut pid)?;
    Ok(u32::from_be_bytes(pid))
}

/// A pipe, close-on-exec: (read end, write end).
fn pipe_pair() -> Result<(OwnedFd, OwnedFd), WorkerError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(WorkerError::Spawn(std::io::Error::last_os_error()));
    }
    // SAFETY: both were just opened and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A descriptor for the process `pid`, `None` where the kernel has none
/// (before Linux 5.3) or the process is already gone.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open only creates a descriptor for that process.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a new descriptor owned by nobody else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}
