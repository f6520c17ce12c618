//! The worker process: `docconv worker`. It holds one LibreOfficeKit
//! instance and converts one document at a time, as the converter asks over
//! stdin, reporting events on a private pipe (see `protocol`).
//!
//! Everything here is blocking and single-threaded, as LOK requires.

use super::global_lock::GlobalLock;
use super::landscape;
use super::lok::{self, Office, callback};
use super::protocol::{read_frame, readable_within, write_frame};
use super::sandbox;
use crate::proto::{self as wire, Convert, Done, Event, Failed, LoadProgress, Loaded, Ready, Reason, event};
use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::fd::FromRawFd;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

/// Load options for every document. `Batch` makes LibreOffice cancel any
/// dialog instead of waiting forever for a click that never comes;
/// `Language` pins locale-dependent output (number formats, hyphenation).
const LOAD_OPTIONS: &str = "Language=en-US,Batch=true";

/// How long a worker waits for its next job before it gives the heap its
/// last one freed back to the system. LibreOffice frees most of a
/// document's memory when it is closed, but glibc keeps the pages: 20-30 MiB
/// of an idle worker's private memory. Trimming takes a few milliseconds,
/// so it waits for a pause instead of delaying the next job.
const IDLE_BEFORE_TRIM: Duration = Duration::from_millis(500);

/// What the LOK callback needs to know about the conversion in progress.
#[derive(Default)]
struct Current {
    /// The password to answer with, if the job has one.
    password: Option<String>,
    /// How often LibreOffice asked for a password during this load.
    password_requests: u32,
    last_percent: u32,
    /// Whether the "loaded" event went out for this document.
    loaded_sent: bool,
}

/// Runs the worker until stdin closes; returns the process exit code.
/// `home` is the worker's private directory (profile, temporary files and
/// the job being converted): once confined, the only place it can write.
/// `shared` is a directory it may also read: the zygote's, for a worker
/// forked from one (see `zygote`).
pub fn run(program_dir: &Path, profile_dir: &Path, home: &Path, shared: Option<&Path>) -> i32 {
    let events = match take_stdout_for_events() {
        Ok(file) => Rc::new(RefCell::new(file)),
        Err(e) => {
            eprintln!("docconv worker: cannot set up the event pipe: {e}");
            return 2;
        }
    };
    // Confined before LibreOffice is loaded, so nothing it does is outside.
    let install = program_dir.parent().unwrap_or(program_dir);
    let confinement = sandbox::enter(install, home, shared);
    let office = match Office::init(program_dir, profile_dir) {
        Ok(office) => office,
        Err(e) => {
            eprintln!("docconv worker: LibreOfficeKit failed to start: {e}");
            return 3;
        }
    };
    let current = Rc::new(RefCell::new(Current::default()));
    if let Err(e) = office.set_listener(listener(current.clone(), events.clone())) {
        eprintln!("docconv worker: {e}");
        return 3;
    }
    let lock = GlobalLock::find();
    if lock.is_none() {
        eprintln!(
            "docconv worker: this LibreOffice does not export its global lock; exports may wait for its idle work"
        );
    }
    if send(&events, event::Kind::Ready(Ready { sandbox: Some(confinement) })).is_err() {
        return 0;
    }
    // Unbuffered, so that polling the descriptor tells whether a request
    // is waiting.
    // SAFETY: fd 0 is the request pipe; nothing else reads or closes it.
    let mut stdin = unsafe { File::from_raw_fd(0) };
    let mut trim_due = false;
    loop {
        if trim_due && !readable_within(&stdin, IDLE_BEFORE_TRIM) {
            // SAFETY: malloc_trim only walks glibc's own heaps, under their locks.
            unsafe { libc::malloc_trim(0) };
            trim_due = false;
        }
        match read_frame::<wire::Request>(&mut stdin) {
            Ok(Some(wire::Request { kind: Some(wire::request::Kind::Convert(job)) })) => {
                let outcome = {
                    // From before the load until the document is closed (see
                    // `global_lock`).
                    let _held = lock.as_ref().map(GlobalLock::hold);
                    convert(&office, &current, &events, &job)
                };
                if send(&events, outcome).is_err() {
                    break;
                }
                trim_due = true;
            }
            Ok(Some(_)) => eprintln!("docconv worker: ignoring an empty request"),
            Ok(None) => break,
            Err(e) => {
                eprintln!("docconv worker: bad request stream: {e}");
                break;
            }
        }
    }
    // LibreOffice is known to crash in its exit handlers; the work is done,
    // so leave without running them.
    // SAFETY: _exit ends the process immediately; nothing is left to flush.
    unsafe { libc::_exit(0) }
}

/// Moves the real stdout to a private descriptor for protocol events and
/// points fd 1 at stderr, so anything LibreOffice prints cannot corrupt the
/// event stream.
fn take_stdout_for_events() -> io::Result<File> {
    // SAFETY: plain descriptor calls on fds 1 and 2, checked for errors.
    unsafe {
        let fd = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(File::from_raw_fd(fd))
    }
}

fn send(events: &RefCell<File>, kind: event::Kind) -> io::Result<()> {
    write_frame(&mut *events.borrow_mut(), &Event { kind: Some(kind) })
}

fn listener(current: Rc<RefCell<Current>>, events: Rc<RefCell<File>>) -> lok::Listener {
    Box::new(move |office, kind, payload| match kind {
        callback::STATUS_INDICATOR_SET_VALUE => {
            let Ok(percent) = payload.trim().parse::<u32>() else {
                return;
            };
            let percent = percent.min(100);
            let mut current = current.borrow_mut();
            if percent > current.last_percent {
                current.last_percent = percent;
                let _ = send(&events, event::Kind::LoadProgress(LoadProgress { percent }));
            }
        }
        callback::DOCUMENT_PASSWORD => {
            let mut current = current.borrow_mut();
            current.password_requests += 1;
            // LibreOffice asks again after a wrong answer; answering the same
            // wrong password forever would hang the load, so refuse the
            // second time.
            let answer = match current.password_requests {
                1 => current.password.clone(),
                _ => None,
            };
            drop(current);
            office.set_document_password(payload, answer.as_deref());
        }
        // Opening read-only is all a conversion needs.
        callback::DOCUMENT_PASSWORD_TO_MODIFY => office.set_document_password(payload, None),
        // Reported inside `documentLoad`, under LibreOffice's global lock,
        // once the document is loaded: the event goes out here rather than
        // after the call returns (see `convert`).
        callback::SIGNATURE_STATUS => send_loaded(&current, &events),
        callback::STATUS_INDICATOR_START | callback::STATUS_INDICATOR_FINISH => {}
        _ => {}
    })
}

fn convert(office: &Office, current: &RefCell<Current>, events: &RefCell<File>, job: &Convert) -> event::Kind {
    *current.borrow_mut() = Current { password: job.password.clone(), ..Current::default() };
    let urls = lok::file_url(Path::new(&job.input_path))
        .and_then(|input| Ok((input, lok::file_url(Path::new(&job.output_path))?)));
    let (input_url, output_url) = match urls {
        Ok(urls) => urls,
        Err(detail) => return failed(Reason::Unreadable, detail),
    };
    let document = match office.load(&input_url, LOAD_OPTIONS) {
        Ok(document) => document,
        Err(detail) => {
            let current = current.borrow();
            let reason = match (current.password_requests, &current.password) {
                (0, _) => Reason::Unreadable,
                (_, None) => Reason::PasswordRequired,
                (_, Some(_)) => Reason::WrongPassword,
            };
            return failed(reason, detail);
        }
    };
    // A password for a document that has none is a mistake worth telling:
    // in a merge it names the file that was not the protected one.
    if job.password.is_some() && current.borrow().password_requests == 0 {
        return failed(Reason::PasswordNotNeeded, "the document asked for no password".into());
    }
    // As little as possible between load and export: the caller holds
    // LibreOffice's global lock across both (see `global_lock`), but for a
    // LibreOffice that does not export it, every moment here is one in
    // which its main loop can take the lock and run the new view's idle
    // work first (15-20 ms of a small document's 35). Even the "loaded"
    // event's pipe write did (it wakes the converter), so the event goes
    // out from the last callback inside `documentLoad` and is sent here
    // only for a LibreOffice without that callback.
    send_loaded(current, events);
    let changes = landscape::Changes { landscape: job.landscape, reset_views: job.reset_views };
    let document = match changes.landscape || changes.reset_views {
        true => match landscape::rewrite(office, document, Path::new(&job.output_path), LOAD_OPTIONS, changes) {
            Ok(document) => document,
            Err(detail) => return failed(Reason::ExportFailed, detail),
        },
        false => document,
    };
    match document.save_as(&output_url, &job.format, &job.filter_options) {
        Ok(()) => event::Kind::Done(Done {}),
        Err(detail) => failed(Reason::ExportFailed, detail),
    }
}

/// Sends the "loaded" event once per document.
fn send_loaded(current: &RefCell<Current>, events: &RefCell<File>) {
    let mut current = current.borrow_mut();
    if !current.loaded_sent {
        current.loaded_sent = true;
        let _ = send(events, event::Kind::Loaded(Loaded {}));
    }
}

fn failed(reason: Reason, detail: String) -> event::Kind {
    event::Kind::Failed(Failed { reason: reason as i32, detail })
}
