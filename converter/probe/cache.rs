//! What the probe found, kept across restarts. Probing exports a sample of
//! each kind to each candidate target, which takes a good part of a start;
//! its answer only changes with the LibreOffice installation or with
//! docconv itself, so a restart with both unchanged reads the answer back.
//!
//! The key describes both: docconv's version, the candidate targets, and
//! every file (name, size, modification time) of LibreOffice's program
//! directory and of its registry, where filters are declared, so an
//! upgrade or an added or removed module probes again. Only a probe no
//! worker died in is kept: a crash may have been passing.

use crate::formats::{Kind, Targets};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct ProbeCache {
    path: PathBuf,
    key: String,
}

impl ProbeCache {
    /// The cache in `path` for the LibreOffice installed in `program_dir`.
    pub fn new(path: PathBuf, program_dir: &Path) -> ProbeCache {
        let mut hash = Sha256::new();
        hash.update(env!("CARGO_PKG_VERSION"));
        for kind in Kind::OFFICE {
            hash.update(format!("{}:{}\n", kind.name(), kind.candidates().join(",")));
        }
        let registry = program_dir.parent().map(|dir| dir.join("share/registry"));
        for dir in std::iter::once(program_dir.to_path_buf()).chain(registry) {
            describe_dir(&dir, &mut hash);
        }
        ProbeCache { path, key: docconv::ids::hex(&hash.finalize()) }
    }

    /// The targets a probe of this very installation found, if kept.
    pub fn load(&self) -> Option<Targets> {
        let text = std::fs::read(&self.path).ok()?;
        let saved: Value = serde_json::from_slice(&text).ok()?;
        if saved["key"] != self.key.as_str() {
            return None;
        }
        let mut targets = Targets::default();
        for kind in Kind::OFFICE {
            for name in saved["targets"][kind.name()].as_array()? {
                // Only names docconv knows: the file cannot add a target.
                let target = kind.candidates().iter().find(|c| Some(**c) == name.as_str())?;
                targets.add(kind, target);
            }
        }
        Some(targets)
    }

    /// Keeps `targets` for the next start. A failure to write only costs
    /// that start a probe.
    pub fn store(&self, targets: &Targets) {
        let by_kind: Map<String, Value> =
            Kind::OFFICE.iter().map(|kind| (kind.name().to_owned(), json!(targets.of(*kind)))).collect();
        let text = json!({ "key": self.key, "targets": by_kind }).to_string();
        let scratch = self.path.with_extension("new");
        if let Err(e) = std::fs::write(&scratch, text).and_then(|()| std::fs::rename(&scratch, &self.path)) {
            tracing::warn!(path = %self.path.display(), "cannot keep what the probe found ({e}); the next start probes again");
        }
    }
}

/// Adds each file of `dir` (sorted by name) to `hash`; nothing for a
/// directory that cannot be read.
fn describe_dir(dir: &Path, hash: &mut Sha256) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
            Some(format!("{}:{}:{modified}\n", entry.file_name().to_string_lossy(), meta.len()))
        })
        .collect();
    files.sort();
    files.iter().for_each(|line| hash.update(line));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installation(dir: &Path) -> PathBuf {
        let program = dir.join("program");
        std::fs::create_dir_all(&program).unwrap();
        std::fs::create_dir_all(dir.join("share/registry")).unwrap();
        std::fs::write(program.join("libmergedlo.so"), b"engine").unwrap();
        std::fs::write(dir.join("share/registry/writer.xcd"), b"filters").unwrap();
        program
    }

    fn found() -> Targets {
        let mut targets = Targets::default();
        targets.add(Kind::Text, "pdf");
        targets.add(Kind::Text, "docx");
        targets.add(Kind::Spreadsheet, "pdf");
        targets
    }

    #[test]
    fn the_same_installation_reads_back_what_was_found() {
        let dir = tempfile::tempdir().unwrap();
        let program = installation(dir.path());
        let cache = ProbeCache::new(dir.path().join("formats.json"), &program);
        assert!(cache.load().is_none(), "nothing kept yet");
        cache.store(&found());
        let again = ProbeCache::new(dir.path().join("formats.json"), &program).load().expect("kept");
        assert_eq!(again.of(Kind::Text), ["pdf", "docx"]);
        assert_eq!(again.of(Kind::Spreadsheet), ["pdf"]);
        assert!(again.of(Kind::Presentation).is_empty());
    }

    #[test]
    fn a_changed_installation_probes_again() {
        let dir = tempfile::tempdir().unwrap();
        let program = installation(dir.path());
        let path = dir.path().join("formats.json");
        ProbeCache::new(path.clone(), &program).store(&found());
        // A module added: its filters are declared in the registry.
        std::fs::write(dir.path().join("share/registry/impress.xcd"), b"more filters").unwrap();
        assert!(ProbeCache::new(path.clone(), &program).load().is_none());
        // An upgraded engine.
        ProbeCache::new(path.clone(), &program).store(&found());
        std::fs::write(program.join("libmergedlo.so"), b"a newer engine").unwrap();
        assert!(ProbeCache::new(path, &program).load().is_none());
    }

    #[test]
    fn a_file_naming_unknown_targets_is_not_believed() {
        let dir = tempfile::tempdir().unwrap();
        let program = installation(dir.path());
        let path = dir.path().join("formats.json");
        let cache = ProbeCache::new(path.clone(), &program);
        cache.store(&found());
        let text = std::fs::read_to_string(&path).unwrap().replace("\"docx\"", "\"exe\"");
        std::fs::write(&path, text).unwrap();
        assert!(cache.load().is_none());
    }
}
