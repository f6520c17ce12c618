//! The worker zygote: `docconv worker-zygote`. It loads LibreOffice once
//! without starting it (`lok_preinit`) and forks a worker from that state
//! each time the converter asks, so a worker skips loading libraries and
//! services and shares their pages with every other worker.
//!
//! It talks to the converter over a Unix socket on its stdin. Each request
//! is a message `HOME\0PROFILE` carrying four descriptors (the worker's
//! stdin, stdout and stderr, and the pipe that is told how it ends, see
//! `reaper`); the answer is the worker's PID, 4 bytes big-endian (0 when
//! the fork failed). Once LibreOffice is preinitialised it sends one 0
//! PID: ready. It ends when the socket closes.
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
use super::reaper::Reaper;
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
    let mut reaper = match Reaper::new() {
        Ok(reaper) => reaper,
        Err(e) => {
            eprintln!("docconv worker-zygote: cannot follow its workers: {e}");
            return 5;
        }
    };
    if answer(&control, 0).is_err() {
        return 0;
    }
    let mut buffer = vec![0u8; 8192];
    let mut page_out_at: Option<Instant> = None;
    loop {
        match wait(&control, &reaper, page_out_at) {
            Woke::PageOut => {
                page_out_unused_code();
                page_out_at = None;
                continue;
            }
            Woke::Children => {
                reaper.reap();
                continue;
            }
            Woke::Request => {}
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
                page_out_at = Some(Instant::now() + PAGE_OUT_AFTER);
                let (pid, ended) = fork_worker(program_dir, shared, &control, &reaper, &home, &profile, fds);
                if pid != 0 {
                    reaper.follow(pid as libc::pid_t, ended);
                }
                pid
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

/// What the zygote's loop woke up for.
enum Woke {
    Request,
    Children,
    PageOut,
}

/// Waits for a request or a child's end, or until `page_out_at`.
fn wait(control: &UnixStream, reaper: &Reaper, page_out_at: Option<Instant>) -> Woke {
    let mut fds = [
        libc::pollfd { fd: control.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: reaper.fd(), events: libc::POLLIN, revents: 0 },
    ];
    let timeout = match page_out_at {
        Some(at) => {
            at.saturating_duration_since(Instant::now()).as_millis().min(libc::c_int::MAX as u128) as libc::c_int
        }
        None => -1,
    };
    // SAFETY: two valid pollfds for the duration of the call.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
    match ready {
        0 => Woke::PageOut,
        // Reaping never blocks, so an error (EINTR) costs one more turn.
        _ if ready < 0 || fds[1].revents != 0 => Woke::Children,
        _ => Woke::Request,
    }
}

fn answer(control: &UnixStream, pid: u32) -> std::io::Result<()> {
    let mut control = control;
    control.write_all(&pid.to_be_bytes())
}

fn parse(message: &[u8], fds: Vec<OwnedFd>) -> Option<(PathBuf, PathBuf, [OwnedFd; 4])> {
    use std::os::unix::ffi::OsStrExt;
    let text = std::str::from_utf8(message).ok()?;
    let (home, profile) = text.split_once('\0')?;
    let fds: [OwnedFd; 4] = fds.try_into().ok()?;
    let path = |p: &str| PathBuf::from(std::ffi::OsStr::from_bytes(p.as_bytes()));
    Some((path(home), path(profile), fds))
}

/// Forks one worker; returns its PID (0 if the fork failed) and the pipe
/// to tell how it ends.
fn fork_worker(
    program_dir: &Path,
    shared_dir: &Path,
    control: &UnixStream,
    reaper: &Reaper,
    home: &Path,
    profile: &Path,
    [stdin, stdout, stderr, ended]: [OwnedFd; 4],
) -> (u32, OwnedFd) {
    // Checked before every fork, not only the first: cheap, and nothing
    // else guarantees LibreOffice starts no thread later.
    if let Err(e) = until_single_threaded(THREADS_END_WITHIN) {
        eprintln!("docconv worker-zygote: {e}; not forking");
        return (0, ended);
    }
    // SAFETY: getpid has no preconditions.
    let zygote = unsafe { libc::getpid() };
    // SAFETY: this process is single-threaded (checked just above), so the
    // child inherits no lock held by another thread.
    match unsafe { libc::fork() } {
        -1 => {
            eprintln!("docconv worker-zygote: fork failed: {}", std::io::Error::last_os_error());
            (0, ended)
        }
        0 => {
            let code = match become_worker(control, reaper, &ended, zygote, home, [stdin, stdout, stderr]) {
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
        pid => (pid as u32, ended),
    }
}

/// In the forked child: takes its own pipes, process group and
/// environment, as `handle` gives an exec'd worker.
fn become_worker(
    control: &UnixStream,
    reaper: &Reaper,
    ended: &OwnedFd,
    zygote: libc::pid_t,
    home: &Path,
    fds: [OwnedFd; 3],
) -> std::io::Result<()> {
    let check = |result: libc::c_int| if result < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) };
    reaper.leave()?;
    // Its own end is the zygote's to tell.
    // SAFETY: closes a descriptor the child never uses (its owner, in the
    // zygote's loop, never drops in the child, which leaves with `_exit`).
    check(unsafe { libc::close(ended.as_raw_fd()) })?;
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
