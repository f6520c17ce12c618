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

/// Where LibreOffice remembers the version that last ran with a profile.
/// A profile that has none (every new one) or another makes LibreOffice
/// treat the start as its first after an upgrade, and run its graphics
/// self-test (`GraphicsRenderTests`) for about a second before it is ready.
const LAST_VERSION: (&str, &str) = ("/org.openoffice.Setup/Product", "ooSetupLastVersion");

/// Creates a fresh profile in `dir` (which should be empty) for the
/// LibreOffice installed in `install`. Only tests that show the sandbox
/// holds by itself pass `block_links: false`.
pub fn create(dir: &Path, install: &Path, block_links: bool) -> io::Result<()> {
    let user = dir.join("user");
    std::fs::create_dir_all(&user)?;
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <oor:items xmlns:oor=\"http://openoffice.org/2001/registry\" \
         xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n",
    );
    let version = installed_version(install);
    let block = block_links.then_some(BLOCK_LINKS);
    let last_version = version.as_deref().map(|v| (LAST_VERSION.0, LAST_VERSION.1, v));
    for (path, name, value) in SETTINGS.iter().copied().chain(block).chain(last_version) {
        xml.push_str(&format!(
            "<item oor:path=\"{path}\"><prop oor:name=\"{name}\" oor:op=\"fuse\"><value>{value}</value></prop></item>\n"
        ));
    }
    xml.push_str("</oor:items>\n");
    std::fs::write(user.join("registrymodifications.xcu"), xml)
}

/// The installation's version as the configuration names it ("7.4"): the
/// default of `ooSetupVersion` in its main registry file. `None` if it
/// cannot be read; the profile then just starts more slowly.
fn installed_version(install: &Path) -> Option<String> {
    let registry = std::fs::read_to_string(install.join("share/registry/main.xcd")).ok()?;
    let after = &registry[registry.find("oor:name=\"ooSetupVersion\">")?..];
    let value = &after[after.find("<value>")? + "<value>".len()..];
    let version = &value[..value.find("</value>")?];
    let plain = !version.is_empty() && version.len() < 16 && version.chars().all(|c| c.is_ascii_digit() || c == '.');
    plain.then(|| version.to_string())
}

/// LibreOffice's configuration layers (`CONFIGURATION_LAYERS` of its
/// `fundamentalrc`) with the profile's layer made read-only (`user:*` for
/// `user:!`), for the environment of the processes that run LibreOffice.
///
/// Every start changes some settings in memory (locale, logging), and a
/// writable profile then gets them written back by a `configmgrWriter`
/// thread that waits a second first. Nothing a worker does needs them
/// kept: its profile is thrown away. In the zygote that thread kept the
/// process from being single-threaded, so from forking, for that second.
/// `None` when the installation does not name a writable profile layer.
pub fn read_only_layers(program_dir: &Path) -> Option<String> {
    let rc = std::fs::read_to_string(program_dir.join("fundamentalrc")).ok()?;
    let layers = rc.lines().find_map(|line| line.trim().strip_prefix("CONFIGURATION_LAYERS="))?;
    with_read_only_user_layer(layers)
}

fn with_read_only_user_layer(layers: &str) -> Option<String> {
    let mut found = false;
    let layers: Vec<String> = layers
        .split(' ')
        .map(|layer| match layer.strip_prefix("user:!") {
            Some(url) => {
                found = true;
                format!("user:*{url}")
            }
            None => layer.to_owned(),
        })
        .collect();
    found.then(|| layers.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_layer_becomes_read_only_and_the_others_stay() {
        let layers = "xcsxcu:file:///etc/registry dconf:* user:!${$BRAND_BASE_DIR/program/bootstraprc:UserInstallation}/user/registrymodifications.xcu";
        assert_eq!(
            with_read_only_user_layer(layers).unwrap(),
            "xcsxcu:file:///etc/registry dconf:* user:*${$BRAND_BASE_DIR/program/bootstraprc:UserInstallation}/user/registrymodifications.xcu"
        );
        assert_eq!(with_read_only_user_layer("xcsxcu:file:///etc/registry user:*x"), None);
    }

    #[test]
    fn the_installed_libreoffice_names_a_writable_profile_layer() {
        let Some(layers) = read_only_layers(Path::new("/usr/lib/libreoffice/program")) else {
            panic!("no writable user layer in /usr/lib/libreoffice/program/fundamentalrc");
        };
        assert!(layers.contains(" user:*") && !layers.contains("user:!"), "{layers}");
    }

    #[test]
    fn a_profile_names_the_installed_version() {
        let install = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(install.path().join("share/registry")).unwrap();
        std::fs::write(
            install.path().join("share/registry/main.xcd"),
            "<prop oor:name=\"ooSetupVersion\">\n  <value>7.4</value>\n</prop>",
        )
        .unwrap();
        let profile = tempfile::tempdir().unwrap();
        create(profile.path(), install.path(), true).unwrap();
        let written = std::fs::read_to_string(profile.path().join("user/registrymodifications.xcu")).unwrap();
        assert!(written.contains("oor:name=\"ooSetupLastVersion\" oor:op=\"fuse\"><value>7.4</value>"), "{written}");
        assert!(written.contains("BlockUntrustedRefererLinks"));
    }

    #[test]
    fn without_a_readable_version_the_profile_has_the_rest() {
        let profile = tempfile::tempdir().unwrap();
        create(profile.path(), Path::new("/nonexistent"), false).unwrap();
        let written = std::fs::read_to_string(profile.path().join("user/registrymodifications.xcu")).unwrap();
        assert!(!written.contains("ooSetupLastVersion"));
        assert!(!written.contains("BlockUntrustedRefererLinks"));
        assert!(written.contains("DisableMacrosExecution"));
    }
}
