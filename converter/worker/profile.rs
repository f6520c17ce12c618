//! The throwaway LibreOffice user profile each worker starts with.
//!
//! Settings here are the safety policy of the engine: a document must never
//! pull in anything outside itself, and never run code. They are the first
//! of two layers: LibreOffice has paths that ignore them (page and
//! paragraph backgrounds, bitmap fills, image bullets, RTF and HTML
//! imports), and the worker's sandbox (see `sandbox`) stops those.

use std::io;
use std::path::Path;

/// Refuse links to local files and URLs that the document itself did not
/// bring: without this, an image linked by `file:///etc/...` or
/// `http://internal-host/...` is read and embedded into the output.
const BLOCK_LINKS: (&str, &str, &str) =
    ("/org.openoffice.Office.Common/Security/Scripting", "BlockUntrustedRefererLinks", "true");

/// `registrymodifications.xcu` entries, as (path, property, value).
const SETTINGS: &[(&str, &str, &str)] = &[
    // Macros never run: the highest security level, and execution disabled.
    ("/org.openoffice.Office.Common/Security/Scripting", "MacroSecurityLevel", "3"),
    ("/org.openoffice.Office.Common/Security/Scripting", "DisableMacrosExecution", "true"),
    // Never update links to other documents or DDE sources. The modules
    // number their modes differently: Writer 0 = never (1 asks, 2 always),
    // Calc 1 = never (0 always, 2 asks).
    ("/org.openoffice.Office.Writer/Content/Update", "Link", "0"),
    ("/org.openoffice.Office.Calc/Content/Update", "Link", "1"),
    // No lock files: a worker killed while writing would leave one beside
    // the output, and the next attempt would wait on it.
    ("/org.openoffice.Office.Common/Misc", "UseLocking", "false"),
    // Nothing a conversion needs, all of them costing time or disk.
    ("/org.openoffice.Office.Common/Misc", "UseOpenCL", "false"),
    ("/org.openoffice.Office.Common/Save/Document", "CreateBackup", "false"),
    ("/org.openoffice.Office.Recovery/AutoSave", "Enabled", "false"),
    ("/org.openoffice.Office.Recovery/RecoveryInfo", "Enabled", "false"),
];

/// Creates a fresh profile in `dir` (which should be empty). Only tests
/// that show the sandbox holds by itself pass `block_links: false`.
pub fn create(dir: &Path, block_links: bool) -> io::Result<()> {
    let user = dir.join("user");
    std::fs::create_dir_all(&user)?;
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <oor:items xmlns:oor=\"http://openoffice.org/2001/registry\" \
         xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n",
    );
    let block = block_links.then_some(&BLOCK_LINKS);
    for (path, name, value) in SETTINGS.iter().chain(block) {
        xml.push_str(&format!(
            "<item oor:path=\"{path}\"><prop oor:name=\"{name}\" oor:op=\"fuse\"><value>{value}</value></prop></item>\n"
        ));
    }
    xml.push_str("</oor:items>\n");
    std::fs::write(user.join("registrymodifications.xcu"), xml)
}
