//! A small, safe-at-the-edges binding to the LibreOfficeKit C API.
//!
//! We bind the C API ourselves instead of using the `libreofficekit` crate:
//! that crate cannot pass a user-profile URL to `libreofficekit_hook_2`
//! (each worker needs its own profile), it sets `PATH` with `set_var` at run
//! time, and it checks LibreOffice's null returns only in debug builds. The
//! part of the API a converter needs is a dozen function pointers.
//!
//! Only the worker process uses this module; the converter never loads
//! LibreOffice. LOK is one instance per process, not thread-safe: `Office` is
//! neither `Send` nor `Sync`, and is created at most once.

use std::ffi::{CStr, CString, c_char, c_int, c_ulonglong, c_void};
use std::path::Path;
use std::ptr::NonNull;

type Callback = unsafe extern "C" fn(kind: c_int, payload: *const c_char, data: *mut c_void);

/// `LibreOfficeKitClass`, in the order of `LibreOfficeKit.h`; we never call
/// past `setDocumentPassword`, and check `size` before touching a member.
#[repr(C)]
struct OfficeClass {
    size: usize,
    destroy: Option<unsafe extern "C" fn(*mut RawOffice)>,
    document_load: Option<unsafe extern "C" fn(*mut RawOffice, *const c_char) -> *mut RawDocument>,
    get_error: Option<unsafe extern "C" fn(*mut RawOffice) -> *mut c_char>,
    document_load_with_options:
        Option<unsafe extern "C" fn(*mut RawOffice, *const c_char, *const c_char) -> *mut RawDocument>,
    free_error: Option<unsafe extern "C" fn(*mut c_char)>,
    register_callback: Option<unsafe extern "C" fn(*mut RawOffice, Callback, *mut c_void)>,
    get_filter_types: Option<unsafe extern "C" fn(*mut RawOffice) -> *mut c_char>,
    set_optional_features: Option<unsafe extern "C" fn(*mut RawOffice, c_ulonglong)>,
    set_document_password: Option<unsafe extern "C" fn(*mut RawOffice, *const c_char, *const c_char)>,
}

#[repr(C)]
struct RawOffice {
    class: *const OfficeClass,
}

/// A vtable slot we never call; only its place in the table matters.
type Unused = Option<unsafe extern "C" fn()>;

/// `LibreOfficeKitDocumentClass`, up to `initializeForRendering`.
#[repr(C)]
struct DocumentClass {
    size: usize,
    destroy: Option<unsafe extern "C" fn(*mut RawDocument)>,
    save_as: Option<unsafe extern "C" fn(*mut RawDocument, *const c_char, *const c_char, *const c_char) -> c_int>,
    get_document_type: Option<unsafe extern "C" fn(*mut RawDocument) -> c_int>,
    get_parts: Unused,
    get_part_page_rectangles: Option<unsafe extern "C" fn(*mut RawDocument) -> *mut c_char>,
    get_part: Unused,
    set_part: Unused,
    get_part_name: Unused,
    set_part_mode: Unused,
    paint_tile: Unused,
    get_tile_mode: Unused,
    get_document_size: Unused,
    initialize_for_rendering: Option<unsafe extern "C" fn(*mut RawDocument, *const c_char)>,
}

#[repr(C)]
struct RawDocument {
    class: *const DocumentClass,
}

/// Callback kinds from `LibreOfficeKitEnums.h`.
pub mod callback {
    pub const STATUS_INDICATOR_START: i32 = 9;
    pub const STATUS_INDICATOR_SET_VALUE: i32 = 10;
    pub const STATUS_INDICATOR_FINISH: i32 = 11;
    pub const DOCUMENT_PASSWORD: i32 = 20;
    pub const DOCUMENT_PASSWORD_TO_MODIFY: i32 = 21;
    /// The loaded document's signature state: the last thing
    /// `documentLoad` reports before it returns.
    pub const SIGNATURE_STATUS: i32 = 40;
}

/// `LOK_FEATURE_DOCUMENT_PASSWORD | LOK_FEATURE_DOCUMENT_PASSWORD_TO_MODIFY`:
/// without them a protected document fails type detection with no hint
/// that a password was the problem.
const FEATURE_PASSWORDS: c_ulonglong = 0b11;

/// Reads a member of a LOK vtable, refusing members past the `size` the
/// library reports (an older LibreOffice has a shorter table).
macro_rules! member {
    ($class:expr, $ty:ty, $field:ident) => {{
        let class: &$ty = $class;
        let end = std::mem::offset_of!($ty, $field) + std::mem::size_of_val(&class.$field);
        if class.size < end { None } else { class.$field }
    }};
}

pub struct Office {
    raw: NonNull<RawOffice>,
}

/// What a LOK callback receives: the kind and the payload text.
pub type Listener = Box<dyn FnMut(&Office, i32, &str)>;

struct ListenerSlot {
    office: *mut RawOffice,
    listener: Listener,
}

impl Office {
    /// Loads LibreOffice from `program_dir` (e.g. `/usr/lib/libreoffice/program`)
    /// with its user profile in `profile_dir`.
    pub fn init(program_dir: &Path, profile_dir: &Path) -> Result<Office, String> {
        let office = Office::bare(program_dir, profile_dir)?;
        if let Some(set) = member!(office.class(), OfficeClass, set_optional_features) {
            // SAFETY: a live office and a plain integer.
            unsafe { set(office.raw.as_ptr(), FEATURE_PASSWORDS) };
        }
        Ok(office)
    }

    /// LibreOffice as `lok_init_2` gives it: no optional features asked for.
    pub fn bare(program_dir: &Path, profile_dir: &Path) -> Result<Office, String> {
        let handle = open_library(program_dir)?;
        let hook = CString::new("libreofficekit_hook_2").unwrap();
        // SAFETY: dlsym on a live handle with a NUL-terminated name.
        let sym = unsafe { libc::dlsym(handle, hook.as_ptr()) };
        if sym.is_null() {
            return Err("this LibreOffice has no libreofficekit_hook_2 (too old)".into());
        }
        type Hook = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut RawOffice;
        // SAFETY: the symbol has this signature in every LibreOffice since 5.0.
        let hook: Hook = unsafe { std::mem::transmute::<*mut c_void, Hook>(sym) };
        let dir = c_string(program_dir.to_str().ok_or("program dir is not UTF-8")?)?;
        let profile = c_string(&file_url(profile_dir)?)?;
        // SAFETY: both arguments are valid C strings that outlive the call.
        let raw = unsafe { hook(dir.as_ptr(), profile.as_ptr()) };
        let raw = NonNull::new(raw).ok_or("LibreOfficeKit failed to start")?;
        Ok(Office { raw })
    }

    fn class(&self) -> &OfficeClass {
        // SAFETY: LOK hands out a valid class pointer for the office's life.
        unsafe { &*self.raw.as_ref().class }
    }

    /// Registers the one listener for office-wide callbacks (progress,
    /// password requests). It lives as long as the process.
    pub fn set_listener(&self, listener: Listener) -> Result<(), String> {
        let register =
            member!(self.class(), OfficeClass, register_callback).ok_or("LibreOfficeKit has no registerCallback")?;
        let slot = Box::into_raw(Box::new(ListenerSlot { office: self.raw.as_ptr(), listener }));
        // SAFETY: `slot` is leaked on purpose: LOK may call back until exit.
        unsafe { register(self.raw.as_ptr(), trampoline, slot.cast()) };
        Ok(())
    }

    /// Answers a password request for `url`; `None` refuses, which makes the
    /// pending load fail.
    pub fn set_document_password(&self, url: &str, password: Option<&str>) {
        let Some(set) = member!(self.class(), OfficeClass, set_document_password) else {
            return;
        };
        let Ok(url) = CString::new(url) else { return };
        let password = password.and_then(|p| CString::new(p).ok());
        let password_ptr = password.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
        // SAFETY: valid C strings (or null, which LOK documents as "refuse").
        unsafe { set(self.raw.as_ptr(), url.as_ptr(), password_ptr) };
    }

    /// Loads a document from a `file://` URL.
    pub fn load(&self, url: &str, options: &str) -> Result<Document<'_>, String> {
        let load = member!(self.class(), OfficeClass, document_load_with_options)
            .ok_or("LibreOfficeKit has no documentLoadWithOptions")?;
        let url = c_string(url)?;
        let options = c_string(options)?;
        // SAFETY: valid C strings; LOK returns null on failure.
        let raw = unsafe { load(self.raw.as_ptr(), url.as_ptr(), options.as_ptr()) };
        match NonNull::new(raw) {
            Some(raw) => Ok(Document { raw, _office: std::marker::PhantomData }),
            None => Err(self.last_error()),
        }
    }

    fn last_error(&self) -> String {
        let Some(get) = member!(self.class(), OfficeClass, get_error) else {
            return String::new();
        };
        // SAFETY: returns null or a malloc'ed C string that we free below.
        let text = unsafe { get(self.raw.as_ptr()) };
        if text.is_null() {
            return String::new();
        }
        // SAFETY: non-null, NUL-terminated.
        let message = unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned();
        match member!(self.class(), OfficeClass, free_error) {
            // SAFETY: the pointer came from getError.
            Some(free) => unsafe { free(text) },
            // SAFETY: older LOK versions allocate with malloc.
            None => unsafe { libc::free(text.cast()) },
        }
        message
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    Text,
    Spreadsheet,
    Presentation,
    Drawing,
    Other,
}

/// A loaded document; borrowing the office keeps it from outliving LOK.
pub struct Document<'a> {
    raw: NonNull<RawDocument>,
    _office: std::marker::PhantomData<&'a Office>,
}

impl Document<'_> {
    fn class(&self) -> &DocumentClass {
        // SAFETY: valid for the document's life.
        unsafe { &*self.raw.as_ref().class }
    }

    /// What kind of document LibreOffice loaded this as.
    pub fn kind(&self) -> DocumentKind {
        let kind = match member!(self.class(), DocumentClass, get_document_type) {
            // SAFETY: a live document.
            Some(get) => unsafe { get(self.raw.as_ptr()) },
            None => -1,
        };
        // `LibreOfficeKitDocumentType`.
        match kind {
            0 => DocumentKind::Text,
            1 => DocumentKind::Spreadsheet,
            2 => DocumentKind::Presentation,
            3 => DocumentKind::Drawing,
            _ => DocumentKind::Other,
        }
    }

    /// The first page's size in twips, for text documents (other kinds
    /// report no page rectangles).
    pub fn first_page_size(&self) -> Option<(i64, i64)> {
        let get = member!(self.class(), DocumentClass, get_part_page_rectangles)?;
        // SAFETY: a live document; returns null or a malloc'ed C string.
        let text = unsafe { get(self.raw.as_ptr()) };
        if text.is_null() {
            return None;
        }
        // SAFETY: non-null and NUL-terminated; freed right after copying.
        let rectangles = unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned();
        // SAFETY: LibreOffice allocated `text` with malloc and hands it over;
        // it is not used after this.
        unsafe { libc::free(text.cast()) };
        // "x, y, width, height; x, y, width, height; …"
        let first: Vec<i64> = rectangles.split(';').next()?.split(',').filter_map(|n| n.trim().parse().ok()).collect();
        match first[..] {
            [_, _, width, height] if width > 0 && height > 0 => Some((width, height)),
            _ => None,
        }
    }

    /// Gives the document a view. UNO commands and page queries act on
    /// the view, so call this before either.
    pub fn initialize_for_rendering(&self) -> Result<(), String> {
        let init = member!(self.class(), DocumentClass, initialize_for_rendering)
            .ok_or("LibreOfficeKit has no initializeForRendering")?;
        let no_arguments = c_string("")?;
        // SAFETY: a live document and a valid (empty) argument string.
        unsafe { init(self.raw.as_ptr(), no_arguments.as_ptr()) };
        Ok(())
    }

    pub fn save_as(&self, url: &str, format: &str, filter_options: &str) -> Result<(), String> {
        let save = member!(self.class(), DocumentClass, save_as).ok_or("LibreOfficeKit has no saveAs")?;
        let (url, format, options) = (c_string(url)?, c_string(format)?, c_string(filter_options)?);
        // SAFETY: valid C strings; saveAs returns non-zero on success.
        let ok = unsafe { save(self.raw.as_ptr(), url.as_ptr(), format.as_ptr(), options.as_ptr()) };
        if ok != 0 { Ok(()) } else { Err("LibreOffice could not write the output".into()) }
    }
}

impl Drop for Document<'_> {
    fn drop(&mut self) {
        if let Some(destroy) = member!(self.class(), DocumentClass, destroy) {
            // SAFETY: destroyed once, here.
            unsafe { destroy(self.raw.as_ptr()) };
        }
    }
}

unsafe extern "C" fn trampoline(kind: c_int, payload: *const c_char, data: *mut c_void) {
    if data.is_null() {
        return;
    }
    // SAFETY: `data` is the leaked ListenerSlot; LOK calls back on the thread
    // that called into it, so there is no concurrent access.
    let slot = unsafe { &mut *data.cast::<ListenerSlot>() };
    let text = if payload.is_null() {
        std::borrow::Cow::Borrowed("")
    } else {
        // SAFETY: LOK passes NUL-terminated payloads.
        unsafe { CStr::from_ptr(payload) }.to_string_lossy()
    };
    // A borrowed view of the office for the listener; never dropped.
    let office = std::mem::ManuallyDrop::new(Office { raw: NonNull::new(slot.office).unwrap() });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (slot.listener)(&office, kind, &text)));
    if result.is_err() {
        // Unwinding into C++ is undefined behaviour; die instead.
        std::process::abort();
    }
}

/// `lok_preinit`: loads LibreOffice's libraries, services and shared data
/// into this process without starting it, so that processes forked from it
/// share those pages and only finish the start (`Office::init`). The
/// configuration it loads is read from the profile named by the
/// `UserInstallation` bootstrap variable, not from `profile_dir` (passed
/// all the same, as LibreOffice expects one): a forked process keeps that
/// configuration whatever profile it starts with.
pub fn preinit(program_dir: &Path, profile_dir: &Path) -> Result<(), String> {
    let handle = open_library(program_dir)?;
    let name = CString::new("lok_preinit").unwrap();
    // SAFETY: dlsym on a live handle with a NUL-terminated name.
    let sym = unsafe { libc::dlsym(handle, name.as_ptr()) };
    if sym.is_null() {
        return Err("this LibreOffice has no lok_preinit".into());
    }
    type Preinit = unsafe extern "C" fn(*const c_char, *const c_char) -> c_int;
    // SAFETY: `lok_preinit(install_path, user_profile_url)` has had this
    // signature since LibreOffice 5.1.
    let preinit: Preinit = unsafe { std::mem::transmute::<*mut c_void, Preinit>(sym) };
    let dir = c_string(program_dir.to_str().ok_or("program dir is not UTF-8")?)?;
    let profile = c_string(&file_url(profile_dir)?)?;
    // SAFETY: both arguments are valid C strings that outlive the call.
    match unsafe { preinit(dir.as_ptr(), profile.as_ptr()) } {
        0 => Ok(()),
        code => Err(format!("lok_preinit failed ({code})")),
    }
}

fn open_library(program_dir: &Path) -> Result<*mut c_void, String> {
    // LOK's own loader tries libsofficeapp first; Debian ships the merged library.
    let mut errors = Vec::new();
    for name in ["libsofficeapp.so", "libmergedlo.so"] {
        let path = program_dir.join(name);
        if !path.exists() {
            continue;
        }
        let c_path = c_string(path.to_str().ok_or("library path is not UTF-8")?)?;
        // SAFETY: dlopen with a valid path.
        let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_LAZY | libc::RTLD_GLOBAL) };
        if !handle.is_null() {
            return Ok(handle);
        }
        // SAFETY: dlerror returns a static string or null.
        let err = unsafe { libc::dlerror() };
        if !err.is_null() {
            // SAFETY: non-null, NUL-terminated.
            errors.push(unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned());
        }
    }
    if errors.is_empty() {
        Err(format!("no LibreOffice library in {}", program_dir.display()))
    } else {
        Err(errors.join("; "))
    }
}

fn c_string(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"))
}

/// `file://` URL of an absolute path, percent-encoding what URLs reserve.
pub fn file_url(path: &Path) -> Result<String, String> {
    let text = path.to_str().ok_or("path is not UTF-8")?;
    if !text.starts_with('/') {
        return Err(format!("{text} is not an absolute path"));
    }
    let mut url = String::from("file://");
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => url.push(byte as char),
            _ => url.push_str(&format!("%{byte:02X}")),
        }
    }
    Ok(url)
}
