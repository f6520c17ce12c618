//! The worker zygote: `docconv worker-zygote`. It loads LibreOffice once
//! without starting it (`lok_preinit`) and forks a worker from that state
//! each time the converter asks, so a worker skips loading libraries and
//! services and shares their pages with every other worker.
//!
//! It talks to the converter over a Unix socket on its stdin. Each request
//! is a message `HOME\0PROFILE` carrying three descriptors (the worker's
//! stdin, stdout and stderr); the answer is the worker's PID, 4 bytes
//! big-endian (0 when the fork failed). Once LibreOffice is preinitialised
//! it sends one 0 PID: ready. It ends when the socket closes.
//!
//! Forking is only sound in a single-threaded process: the zygote checks
//! that every thread LibreOffice started has ended before each fork. In
//! 7.4 preinit leaves one only when the profile is writable (the
//! configuration writer, which waits a second before writing), so the
//! zygote is started with the profile layer read-only (see `profile`).
//! Each worker then enters its own process group, sandbox and profile as
//! an exec'd one does, before it finishes LibreOffice's start.
//!
//! Preinit reads LibreOffice's configuration from the profile that the
//! `UserInstallation` bootstrap variable names (the launcher sets it in
//! the environment), and every forked worker keeps that configuration: the
//! zygote's profile is the policy of all its workers. That profile names
//! the installed version, so no worker takes its start for the first
//! after an upgrade (see `profile`).
//!
//! Once no worker has been asked for a while, the zygote gives back the
//! pages of code that only it maps (see `page_out`).

use super::child;
use super::fd_passing;
use super::lok;
use super::page_out;
use super::protocol::readable_within;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The process name of a forked worker (at most 15 bytes).
const WORKER_NAME: &std::ffi::CStr = c"docconv-worker";

/// How long after its last fork the zygote gives back the code pages its
/// workers did not take: long enough for new workers to have warmed up
/// (touching what they need), which took 0.3-1.5 s when measured.
const PAGE_OUT_AFTER: Duration = Duration::from_secs(3);

/// How long LibreOffice's own threads may take to end after preinit.
const THREADS_END_WITHIN: Duration = Duration::from_secs(15);

/// Runs the zygote until its socket closes; returns the process exit code.
/// `profile_dir` must be the profile `UserInstallation` names.
pub fn run(program_dir: &Path, profile_dir: &Path) -> i32 {
    // SAFETY: fd 0 is the socket the launcher gave us; nothing else owns it.
    let control = unsafe { UnixStream::from_raw_fd(0) };
    if let Err(e) = lok::preinit(program_dir, profile_dir) {
        eprintln!("docconv worker-zygote: {e}");
        return 3;
    }
    if let Err(e) = until_single_threaded(THREADS_END_WITHIN) {
        eprintln!("docconv worker-zygote: {e}; forking would be unsafe");
        return 4;
    }
    // Children are reaped by the kernel: the converter follows each worker
    // through its pipes and its PID, not through the zygote.
    // SAFETY: setting a signal disposition; no handler runs.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    if answer(&control, 0).is_err() {
        return 0;
    }
    let mut buffer = vec![0u8; 8192];
    let mut page_out_due = false;
    loop {
        if page_out_due && !readable_within(&control, PAGE_OUT_AFTER) {
            page_out_unused_code();
            page_out_due = false;
        }
        let (length, fds) = match fd_passing::receive(&control, &mut buffer) {
            Ok((0, _)) => return 0,
            Ok(message) => message,
            Err(e) => {
                eprintln!("docconv worker-zygote: bad request: {e}");
                return 0;
            }
        };
        let pid = match parse(&buffer[..length], fds) {
            Some((home, profile, fds)) => {
                // Workers may read the zygote's directory (the policy
                // profile and LibreOffice's extension cache), never write it.
                let shared = profile_dir.parent().unwrap_or(profile_dir);
                page_out_due = true;
                fork_worker(program_dir, shared, &control, &home, &profile, fds)
            }
            None => {
                eprintln!("docconv worker-zygote: malformed request");
                0
            }
        };
        if answer(&control, pid).is_err() {
            return 0;
        }
    }
}

/// Drops the pages of LibreOffice's code that only the zygote maps (see
/// `page_out`). Its workers have mapped what they use by then, and the
/// kernel keeps every page another process maps.
fn page_out_unused_code() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return };
    let refused = page_out::page_out(&page_out::clean_file_mappings(&smaps));
    if refused > 0 {
        eprintln!("docconv worker-zygote: the kernel kept the pages of {refused} mappings");
    }
}

fn answer(control: &UnixStream, pid: u32) -> std::io::Result<()> {
    let mut control = control;
    control.write_all(&pid.to_be_bytes())
}

fn parse(message: &[u8], fds: Vec<OwnedFd>) -> Option<(PathBuf, PathBuf, [OwnedFd; 3])> {
    use std::os::unix::ffi::OsStrExt;
    let text = std::str::from_utf8(message).ok()?;
    let (home, profile) = text.split_once('\0')?;
    let fds: [OwnedFd; 3] = fds.try_into().ok()?;
    let path = |p: &str| PathBuf::from(std::ffi::OsStr::from_bytes(p.as_bytes()));
    Some((path(home), path(profile), fds))
}

/// Forks one worker; returns its PID, 0 if the fork failed.
fn fork_worker(
    program_dir: &Path,
    shared_dir: &Path,
    control: &UnixStream,
    home: &Path,
    profile: &Path,
    [stdin, stdout, stderr]: [OwnedFd; 3],
) -> u32 {
    // Checked before every fork, not only the first: cheap, and nothing
    // else guarantees LibreOffice starts no thread later.
    if let Err(e) = until_single_threaded(THREADS_END_WITHIN) {
        eprintln!("docconv worker-zygote: {e}; not forking");
        return 0;
    }
    // SAFETY: getpid has no preconditions.
    let zygote = unsafe { libc::getpid() };
    // SAFETY: this process is single-threaded (checked just above), so the
    // child inherits no lock held by another thread.
    match unsafe { libc::fork() } {
        -1 => {
            eprintln!("docconv worker-zygote: fork failed: {}", std::io::Error::last_os_error());
            0
        }
        0 => {
            let code = match become_worker(control, zygote, home, [stdin, stdout, stderr]) {
                Ok(()) => child::run(program_dir, profile, home, Some(shared_dir)),
                Err(e) => {
                    eprintln!("docconv worker: cannot set up the forked process: {e}");
                    2
                }
            };
            // SAFETY: the worker is done; leave without LibreOffice's exit
            // handlers (see `child::run`).
            unsafe { libc::_exit(code) }
        }
        pid => pid as u32,
    }
}

/// In the forked child: takes its own pipes, process group and
/// environment, as `handle` gives an exec'd worker.
fn become_worker(control: &UnixStream, zygote: libc::pid_t, home: &Path, fds: [OwnedFd; 3]) -> std::io::Result<()> {
    let check = |result: libc::c_int| if result < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) };
    // SAFETY: descriptor and process calls on this process only, each
    // checked; the child is single-threaded.
    unsafe {
        check(libc::close(control.as_raw_fd()))?;
        for (target, fd) in fds.iter().enumerate() {
            check(libc::dup2(fd.as_raw_fd(), target as libc::c_int))?;
        }
        check(libc::setpgid(0, 0))?;
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
        // The zygote may have died before the line above took effect.
        if libc::getppid() != zygote {
            return Err(std::io::Error::other("the zygote is gone"));
        }
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        // Its command line is still the zygote's; the name tells a worker
        // apart in `ps` and `/proc/PID/comm`.
        check(libc::prctl(libc::PR_SET_NAME, WORKER_NAME.as_ptr()))?;
    }
    // Relative paths resolve in its own directory, which is also how a
    // forked worker's directory is found from outside (`/proc/PID/cwd`).
    std::env::set_current_dir(home)?;
    // The originals; the control socket's handle is never dropped in the
    // child (it leaves with `_exit`), so its descriptor is closed once.
    drop(fds);
    // SAFETY: the child is single-threaded, so nothing reads the
    // environment concurrently.
    unsafe {
        std::env::set_var("HOME", home);
        std::env::set_var("TMPDIR", home.join("tmp"));
    }
    Ok(())
}

fn until_single_threaded(limit: Duration) -> Result<(), String> {
    let begun = Instant::now();
    loop {
        let threads = std::fs::read_dir("/proc/self/task").map_err(|e| e.to_string())?.count();
        if threads == 1 {
            return Ok(());
        }
        if begun.elapsed() > limit {
            return Err(format!("{threads} threads still run {limit:?} after preinit"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
