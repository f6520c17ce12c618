//! The throwaway LibreOffice user profile each worker starts with.
//!
//! Settings here are the safety policy of the engine: a document must never
//! pull in anything outside itself, and never run code.

use std::io;
use std::path::Path;

/// `registrymodifications.xcu` entries, as (path, property, value).
const SETTINGS: &[(&str, &str, &str)] = &[
    // Refuse links to local files and URLs that the document itself did not
    // bring: without this, an image linked by `file:///etc/...` or
    // `http://internal-host/...` is read and embedded into the output.
    ("/org.openoffice.Office.Common/Security/Scripting", "BlockUntrustedRefererLinks", "true"),
    // Macros never run: the highest security level, and execution disabled.
    ("/org.openoffice.Office.Common/Security/Scripting", "MacroSecurityLevel", "3"),
    ("/org.openoffice.Office.Common/Security/Scripting", "DisableMacrosExecution", "true"),
    // Do not update links to other documents or DDE sources on load.
    ("/org.openoffice.Office.Writer/Content/Update", "Link", "2"),
    ("/org.openoffice.Office.Calc/Content/Update", "Link", "2"),
    // Nothing a conversion needs, all of them costing time or disk.
    ("/org.openoffice.Office.Common/Misc", "UseOpenCL", "false"),
    ("/org.openoffice.Office.Common/Save/Document", "CreateBackup", "false"),
    ("/org.openoffice.Office.Recovery/AutoSave", "Enabled", "false"),
    ("/org.openoffice.Office.Recovery/RecoveryInfo", "Enabled", "false"),
];

/// Creates a fresh profile in `dir` (which should be empty).
pub fn create(dir: &Path) -> io::Result<()> {
    let user = dir.join("user");
    std::fs::create_dir_all(&user)?;
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <oor:items xmlns:oor=\"http://openoffice.org/2001/registry\" \
         xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n",
    );
    for (path, name, value) in SETTINGS {
        xml.push_str(&format!(
            "<item oor:path=\"{path}\"><prop oor:name=\"{name}\" oor:op=\"fuse\"><value>{value}</value></prop></item>\n"
        ));
    }
    xml.push_str("</oor:items>\n");
    std::fs::write(user.join("registrymodifications.xcu"), xml)
}
