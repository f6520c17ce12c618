//! The engine's own floor, for the benchmark: LibreOfficeKit started once,
//! then for each document only `documentLoad`, `saveAs` to PDF and
//! `destroy`, with none of what a docconv worker adds (its profile
//! settings, sandbox, callbacks, load options, filter options, progress,
//! the pipe protocol, copies or fsyncs). What docconv costs beyond
//! LibreOffice is measured against this.
//!
//! It reads lines `INPUT<TAB>OUTPUT` (paths) on stdin and answers each with
//! `ok` or `error: …` on stdout; it ends at the end of stdin.

use super::lok::{Office, file_url};
use std::io::{BufRead, Write};
use std::path::Path;

/// Runs until stdin ends; returns the process's exit code.
pub fn run(program_dir: &Path, profile_dir: &Path) -> i32 {
    let office = match Office::bare(program_dir, profile_dir) {
        Ok(office) => office,
        Err(e) => {
            eprintln!("LibreOfficeKit: {e}");
            return 1;
        }
    };
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { return 1 };
        let answer = match line.split_once('\t') {
            Some((input, output)) => convert(&office, Path::new(input), Path::new(output)),
            None => Err("expected INPUT<TAB>OUTPUT".into()),
        };
        let written = match answer {
            Ok(()) => writeln!(out, "ok"),
            Err(e) => writeln!(out, "error: {e}"),
        };
        if written.and_then(|()| out.flush()).is_err() {
            return 1;
        }
    }
    0
}

fn convert(office: &Office, input: &Path, output: &Path) -> Result<(), String> {
    let document = office.load(&file_url(input)?, "")?;
    document.save_as(&file_url(output)?, "pdf", "")
    // Dropping the document destroys it, as the loop of a bare harness would.
}
