//! Part of scenario 1: what the command-line client adds per file.
//! `docconv convert FILE` (a process started, a connection made, the
//! upload, progress followed, the result written through a temporary file
//! and renamed) against the same conversion from a gRPC client that is
//! already connected, interleaved, on the same service.

use super::Bench;
use super::documents::Document;
use super::peers::{self, Client};
use super::report::{Report, median_p95};
use super::stats::Samples;
use std::fmt::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Instant;

pub async fn overhead(
    bench: &Bench,
    service: SocketAddr,
    client: &mut Client,
    documents: &[Document],
    report: &mut Report,
) -> Result<(), String> {
    let out = bench.work.join("command-line");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let mut table = String::from(
        "`docconv convert FILE` per file against a connected gRPC client (medians and p95):\n\n\
         | document | gRPC client | `docconv convert` | added per file |\n|---|---|---|---|\n",
    );
    let mut added = Samples::default();
    for document in documents {
        let (mut direct, mut command) = (Samples::default(), Samples::default());
        for round in 0..bench.rounds {
            for turn in 0..2 {
                if (round + turn) % 2 == 0 {
                    let started = Instant::now();
                    peers::docconv_convert(client, document).await?;
                    direct.push_duration(started.elapsed());
                } else {
                    let started = Instant::now();
                    convert_command(bench, service, document, &out)?;
                    command.push_duration(started.elapsed());
                }
            }
        }
        let difference = match (command.median(), direct.median()) {
            (Some(c), Some(d)) => {
                added.push(c - d);
                format!("{:.1} ms", c - d)
            }
            _ => "–".into(),
        };
        let _ = writeln!(
            table,
            "| {} | {} | {} | {difference} |",
            document.name,
            median_p95(&direct),
            median_p95(&command)
        );
    }
    let _ = write!(
        table,
        "\n{} rounds each, alternating. The difference is the command's own cost: starting the process, connecting, \
         and writing the result to disk.\n",
        bench.rounds
    );
    report.section("1b. The command-line client", table);
    if let Some(ms) = added.median() {
        report.target(
            "latency",
            "`docconv convert` adds under 50 ms per file to a gRPC client's time",
            format!("{ms:.1} ms"),
            ms < 50.0,
        );
    }
    Ok(())
}

fn convert_command(
    bench: &Bench,
    service: SocketAddr,
    document: &Document,
    out: &std::path::Path,
) -> Result<(), String> {
    let status = Command::new(&bench.exe)
        .args(["convert", "--server", &format!("http://{service}"), "-o"])
        .arg(out)
        .arg(&document.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run docconv convert: {e}"))?;
    match status.success() {
        true => Ok(()),
        false => Err(format!("docconv convert {} failed: {status}", document.name)),
    }
}
