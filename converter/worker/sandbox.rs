//! The worker's confinement, entered by the worker process itself before
//! LibreOffice is loaded, so everything LibreOffice does is inside it.
//!
//! The profile's settings (see `profile`) tell LibreOffice not to follow
//! links; this module makes following them impossible, so a document that
//! finds a path around those settings still reads nothing and reaches
//! nobody. Three independent layers, each used where the kernel has it:
//!
//! - **network**: a network namespace of its own, with only a loopback
//!   device that is down: no address is reachable, not even this machine's;
//! - **files** (Landlock): reads only the LibreOffice installation, system
//!   libraries, fonts and locale data; writes only the worker's own
//!   directory (profile, temporary files and the job it converts);
//! - **system calls** (seccomp): no socket can be created at all, and no
//!   io_uring (which could create one behind the filter's back).
//!
//! The seccomp layer also turns LibreOffice's syncs into no-ops, for speed
//! rather than containment (see `skip_syncs`).
//!
//! Landlock also denies TCP connects and binds (ABI 4+) and abstract Unix
//! sockets and signals outside the worker (ABI 6+), where the kernel has
//! them. What could not be set up is reported, never fatal here: the
//! converter decides whether that is acceptable.

use crate::proto::Sandbox;
use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
    path_beneath_rules,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Directories a worker only reads: LibreOffice itself is added by
/// `enter`; these are the shared libraries, configuration and data it
/// loads. None of them holds anything private to this machine's users.
const READ_ONLY: &[&str] = &[
    "/usr/lib",
    "/usr/lib64",
    "/lib",
    "/lib64",
    "/usr/local/lib",
    "/usr/share/libreoffice",
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "/usr/share/fontconfig",
    "/usr/share/zoneinfo",
    "/usr/share/locale",
    "/usr/share/icu",
    "/usr/share/liblangtag",
    "/usr/share/hunspell",
    "/usr/share/hyphen",
    "/usr/share/mythes",
    "/usr/share/myspell",
    "/usr/share/xml/iso-codes",
    "/etc/libreoffice",
    "/etc/fonts",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/var/cache/fontconfig",
    "/proc/self",
    "/proc/meminfo",
    "/proc/cpuinfo",
    "/sys/devices/system/cpu",
    "/dev/urandom",
    "/dev/random",
];

/// Device files a worker may write (discarded output).
const WRITABLE_DEVICES: &[&str] = &["/dev/null"];

/// The highest Landlock ABI this code was written and tested against;
/// newer kernels are asked for exactly these rights, no more.
const LANDLOCK_ABI: ABI = ABI::V6;

/// Confines the calling process (which must not have started threads yet:
/// seccomp and Landlock apply to the calling thread and what it starts).
/// `install` is LibreOffice's installation; `home` the worker's private
/// directory, the only place it may write; `shared` one more it may read.
pub fn enter(install: &Path, home: &Path, shared: Option<&Path>) -> Sandbox {
    let mut report = Sandbox::default();
    match isolate_network() {
        Ok(how) => report.network = how.into(),
        Err(why) => report.problems.push(format!("no network namespace: {why}")),
    }
    match confine_files(install, home, shared) {
        Ok(how) => report.filesystem = how,
        Err(why) => report.problems.push(format!("no file system confinement: {why}")),
    }
    match deny_sockets() {
        Ok(()) => report.syscalls = "seccomp: no sockets, no io_uring".into(),
        Err(why) => report.problems.push(format!("no system call filter: {why}")),
    }
    // Not a layer of containment: without it LibreOffice only waits longer.
    // It needs what the socket filter set up (no_new_privs).
    if !report.syscalls.is_empty() && skip_syncs().is_ok() {
        report.syscalls.push_str(", syncs skipped");
    }
    report
}

/// A new network namespace holds only a loopback device, down. Creating
/// one needs CAP_SYS_ADMIN, which a root service has; otherwise an
/// unprivileged user namespace grants it where the system allows those.
fn isolate_network() -> Result<&'static str, String> {
    // SAFETY: unshare only changes this process's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
        return Ok("network namespace");
    }
    let privileged = std::io::Error::last_os_error();
    // SAFETY: as above.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } == 0 {
        return Ok("network namespace (in a user namespace)");
    }
    let unprivileged = std::io::Error::last_os_error();
    Err(format!("{privileged}; in a user namespace: {unprivileged}"))
}

fn confine_files(install: &Path, home: &Path, shared: Option<&Path>) -> Result<String, String> {
    let error = |e: landlock::RulesetError| e.to_string();
    let read = AccessFs::from_read(LANDLOCK_ABI);
    let all = AccessFs::from_all(LANDLOCK_ABI);
    let readable: Vec<PathBuf> = READ_ONLY
        .iter()
        .map(PathBuf::from)
        .chain([install.to_path_buf()])
        .chain(shared.map(Path::to_path_buf))
        .collect();
    let status = landlock::Ruleset::default()
        // Best effort: an older kernel enforces what it knows.
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(error)?
        // No TCP connect or bind rules: every port is denied.
        .handle_access(AccessNet::from_all(LANDLOCK_ABI))
        .map_err(error)?
        .scope(Scope::from_all(LANDLOCK_ABI))
        .map_err(error)?
        .create()
        .map_err(error)?
        .add_rules(path_beneath_rules(&readable, read))
        .map_err(error)?
        .add_rules(path_beneath_rules(WRITABLE_DEVICES, read | AccessFs::WriteFile))
        .map_err(error)?
        .add_rules(path_beneath_rules([home], all))
        .map_err(error)?
        .restrict_self()
        .map_err(error)?;
    match status.ruleset {
        RulesetStatus::NotEnforced => Err("the kernel has no Landlock".into()),
        RulesetStatus::PartiallyEnforced => Ok(format!("landlock (partial, kernel ABI {})", kernel_landlock_abi())),
        RulesetStatus::FullyEnforced => Ok(format!("landlock (kernel ABI {})", kernel_landlock_abi())),
    }
}

/// The Landlock ABI version the kernel reports, 0 without Landlock.
pub fn kernel_landlock_abi() -> i64 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute and this flag, the call only returns
    // the ABI version.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    abi.max(0)
}

/// `socket()` of any family and `io_uring_setup()` fail with EACCES.
/// LibreOffice needs neither to convert: the worker talks to the converter
/// over pipes it was started with.
fn deny_sockets() -> Result<(), String> {
    use seccompiler::{SeccompAction, SeccompFilter, TargetArch};
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    // An empty rule list matches the call whatever its arguments.
    let rules = BTreeMap::from([(libc::SYS_socket, vec![]), (libc::SYS_io_uring_setup, vec![])]);
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EACCES as u32), arch)
        .map_err(|e| e.to_string())?;
    let program: seccompiler::BpfProgram = filter.try_into().map_err(|e: seccompiler::BackendError| e.to_string())?;
    // SAFETY: no_new_privs only stops this process gaining privileges by
    // exec, which a worker never does; seccomp requires it.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    seccompiler::apply_filter(&program).map_err(|e| e.to_string())
}

/// `fsync` and its kin succeed without doing anything. LibreOffice syncs
/// the file it exports and some of its temporary files, waiting for the
/// disk each time; none of that needs to survive a crash of the machine.
/// The converter moves the output into the job's folder and syncs the
/// result itself (`Blobs::keep`), which is the sync that matters.
fn skip_syncs() -> Result<(), String> {
    use seccompiler::{SeccompAction, SeccompFilter, TargetArch};
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let calls = [libc::SYS_fsync, libc::SYS_fdatasync, libc::SYS_sync_file_range, libc::SYS_syncfs, libc::SYS_sync];
    let rules = calls.into_iter().map(|call| (call, vec![])).collect();
    // "Fail with error 0" is how seccomp returns success without running
    // the call. A second filter: the kernel runs both and takes the
    // strictest answer, so the socket filter's refusals still hold.
    let filter =
        SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(0), arch).map_err(|e| e.to_string())?;
    let program: seccompiler::BpfProgram = filter.try_into().map_err(|e: seccompiler::BackendError| e.to_string())?;
    seccompiler::apply_filter(&program).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    //! The sandbox on its own, without LibreOffice: a child process (this
    //! test binary again, running one test) confines itself, then tries
    //! what a hostile document would.

    use super::*;
    use std::process::Command;

    const PROBE: &str = "DOCCONV_SANDBOX_PROBE_DIR";

    #[test]
    fn a_confined_process_reads_and_writes_only_its_own_directory_and_reaches_no_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "outside the sandbox").unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "sandbox::tests::probe", "--nocapture", "--test-threads=1"])
            .env(PROBE, dir.path())
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{log}");
        assert!(log.contains("probe: confined"), "the probe did not run: {log}");
    }

    /// Runs only as the child of the test above.
    #[test]
    fn probe() {
        let Some(dir) = std::env::var_os(PROBE).map(PathBuf::from) else { return };
        let home = dir.join("home");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let report = enter(Path::new("/usr/lib/libreoffice"), &home, None);
        println!("probe: confined: {report:?}");

        if !report.filesystem.is_empty() {
            let read = std::fs::read(dir.join("secret"));
            assert!(read.is_err(), "read a file outside the sandbox");
            assert!(std::fs::write(dir.join("written"), "x").is_err(), "wrote outside the sandbox");
            assert!(std::fs::read("/etc/passwd").is_err(), "read /etc/passwd");
        }
        std::fs::write(home.join("written"), "x").expect("writing in its own directory");
        assert_eq!(std::fs::read(home.join("written")).unwrap(), b"x");
        let installed = Path::new("/usr/lib/libreoffice/program/fundamentalrc");
        if installed.exists() {
            std::fs::read(installed).expect("reading LibreOffice's installation");
        }

        // The sync filter stacks on the socket filter without loosening it
        // (the socket checks below), and syncs still report success.
        if !report.syscalls.is_empty() {
            assert!(report.syscalls.ends_with("syncs skipped"), "{report:?}");
            std::fs::File::open(home.join("written")).and_then(|f| f.sync_all()).expect("a skipped sync succeeds");
        }
        if !report.syscalls.is_empty() {
            for family in [libc::AF_INET, libc::AF_INET6, libc::AF_UNIX, libc::AF_NETLINK] {
                // SAFETY: a plain socket call; it must fail, so there is
                // no descriptor to close.
                let fd = unsafe { libc::socket(family, libc::SOCK_STREAM, 0) };
                assert!(fd < 0, "created a socket of family {family}");
            }
        }
        let connected = std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(2));
        assert!(connected.is_err(), "connected to {address}");
        assert!(
            !(report.network.is_empty() && report.filesystem.is_empty() && report.syscalls.is_empty()),
            "no layer could be set up here: {report:?}"
        );
    }
}
