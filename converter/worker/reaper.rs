//! In the zygote: reaping forked workers and telling the converter how
//! each ended.
//!
//! A forked worker is the zygote's child, so only the zygote can learn its
//! exit status (a signal, a code). With each fork request the converter
//! passes the write end of a pipe for that worker; when the worker dies,
//! the zygote writes its wait status there (4 bytes, big-endian) and
//! closes it. The converter reads it once the worker's event pipe closes,
//! and its logs say "killed by SIGSEGV" rather than "its pipe closed".
//!
//! SIGCHLD is blocked and read from a signalfd, so that the zygote's one
//! loop waits on its control socket and on its children together, and no
//! handler runs in a process that forks.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// What the zygote blocks: SIGCHLD (read from the signalfd instead) and
/// SIGPIPE (a status pipe the converter closed fails the write, and
/// nothing else). A forked worker unblocks them.
const BLOCKED: [libc::c_int; 2] = [libc::SIGCHLD, libc::SIGPIPE];

pub struct Reaper {
    /// A signalfd of SIGCHLD.
    signals: OwnedFd,
    /// Each live worker's status pipe.
    pipes: HashMap<libc::pid_t, OwnedFd>,
}

impl Reaper {
    /// Blocks the `BLOCKED` signals and opens the signalfd. Call with one
    /// thread left: the mask is the calling thread's.
    pub fn new() -> std::io::Result<Reaper> {
        let children = signal_set(&[libc::SIGCHLD]);
        // SAFETY: sigprocmask and signalfd on this single-threaded
        // process, with sets built by `signal_set`; the descriptor is
        // checked and then owned here.
        unsafe {
            if libc::sigprocmask(libc::SIG_BLOCK, &signal_set(&BLOCKED), std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &children, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(Reaper { signals: OwnedFd::from_raw_fd(fd), pipes: HashMap::new() })
        }
    }

    /// Readable when a child has ended.
    pub fn fd(&self) -> RawFd {
        self.signals.as_raw_fd()
    }

    /// Tells `pipe` how worker `pid` ends.
    pub fn follow(&mut self, pid: libc::pid_t, pipe: OwnedFd) {
        self.pipes.insert(pid, pipe);
    }

    /// Reaps every child that has ended and writes each one's status.
    pub fn reap(&mut self) {
        let mut info = std::mem::MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // Signals of children merge: drain them, then reap all there are.
        // SAFETY: reads into a buffer of the size given.
        while unsafe { libc::read(self.fd(), info.as_mut_ptr().cast(), size) } == size as isize {}
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status of one ended child, if any.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            if let Some(pipe) = self.pipes.remove(&pid) {
                // A converter that no longer listens is no error of ours.
                // SAFETY: writes 4 bytes from a local array to an owned pipe.
                let _ = unsafe { libc::write(pipe.as_raw_fd(), status.to_be_bytes().as_ptr().cast(), 4) };
            }
        }
    }

    /// In a worker just forked: closes the zygote's descriptors (the
    /// signalfd, the other workers' status pipes) and restores the signal
    /// mask, as an exec'd worker has them.
    pub fn leave(&self) -> std::io::Result<()> {
        // SAFETY: closes descriptors this process owns and never uses
        // again (the child leaves with `_exit`, so their owners never
        // drop), and unblocks the signals `new` blocked.
        unsafe {
            libc::close(self.signals.as_raw_fd());
            for pipe in self.pipes.values() {
                libc::close(pipe.as_raw_fd());
            }
            if libc::sigprocmask(libc::SIG_UNBLOCK, &signal_set(&BLOCKED), std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

fn signal_set(signals: &[libc::c_int]) -> libc::sigset_t {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset adds valid signals.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for &signal in signals {
            libc::sigaddset(set.as_mut_ptr(), signal);
        }
        set.assume_init()
    }
}
