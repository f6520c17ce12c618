//! LibreOffice's global lock (the "SolarMutex"), held by the worker from
//! before a document's load until after it is closed.
//!
//! Every LibreOfficeKit call takes that lock and releases it on return.
//! LibreOffice's main-loop thread waits for it to run the idle work a new
//! document's view queues (its sidebar: dozens of `.ui` files, 15-20 ms of
//! a small document's 35), and whenever the lock is free between
//! `documentLoad` and `saveAs`, the two threads race for it. Whoever calls
//! `saveAs` at once usually wins, but not always: it depends on whether the
//! main-loop thread finds a free core in that instant, which the number of
//! cores and their load decide, not the worker. Held across the whole
//! conversion, the lock is never free in between, so the export always
//! comes first and the queued work is dropped with the document.
//!
//! The lock is recursive, so LibreOfficeKit's own calls still take it; and
//! where LibreOffice has to wait for its main loop it releases every level
//! the thread holds (ours included) and takes them back, as without us.
//!
//! LibreOfficeKit has no call for this; `Application::AcquireSolarMutex`
//! and `ReleaseSolarMutex` are static functions of LibreOffice's VCL that
//! its libraries export (C++ names, plain C calling convention). A
//! LibreOffice without them is left as it is.

use std::ffi::{c_uint, c_void};

/// `Application::AcquireSolarMutex(sal_uInt32 nCount)`.
const ACQUIRE: &std::ffi::CStr = c"_ZN11Application17AcquireSolarMutexEj";
/// `Application::ReleaseSolarMutex()`: releases every level this thread
/// holds and returns how many that was.
const RELEASE: &std::ffi::CStr = c"_ZN11Application17ReleaseSolarMutexEv";

type Acquire = unsafe extern "C" fn(c_uint);
type Release = unsafe extern "C" fn() -> c_uint;

pub struct GlobalLock {
    acquire: Acquire,
    release: Release,
}

/// The lock, held by this thread until dropped.
pub struct Held<'a>(&'a GlobalLock);

impl GlobalLock {
    /// The lock of the LibreOffice loaded in this process (after
    /// `Office::init`); `None` if its libraries do not export it.
    pub fn find() -> Option<GlobalLock> {
        // SAFETY: dlsym over every library loaded globally, with
        // NUL-terminated names.
        let (acquire, release) = unsafe {
            (libc::dlsym(libc::RTLD_DEFAULT, ACQUIRE.as_ptr()), libc::dlsym(libc::RTLD_DEFAULT, RELEASE.as_ptr()))
        };
        if acquire.is_null() || release.is_null() {
            return None;
        }
        // SAFETY: both are static member functions with these signatures
        // in every LibreOffice since the lock was given these calls (3.x).
        unsafe {
            Some(GlobalLock {
                acquire: std::mem::transmute::<*mut c_void, Acquire>(acquire),
                release: std::mem::transmute::<*mut c_void, Release>(release),
            })
        }
    }

    /// Takes the lock (one more level, if this thread holds it already).
    pub fn hold(&self) -> Held<'_> {
        // SAFETY: LibreOffice is initialised; this is the thread that makes
        // every LibreOfficeKit call.
        unsafe { (self.acquire)(1) };
        Held(self)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Releasing gives up every level; any beyond ours (there should be
        // none once LibreOffice's calls have returned) are taken back.
        // SAFETY: this thread holds the lock (taken in `hold`).
        let levels = unsafe { (self.0.release)() };
        if levels > 1 {
            // SAFETY: as in `hold`.
            unsafe { (self.0.acquire)(levels - 1) };
        }
    }
}
