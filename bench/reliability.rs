//! The reliability report: the cases the fault, hostile and soak tests
//! measured and recorded as JSON lines (`tests/converter/reliability.rs`,
//! with `DOCCONV_RELIABILITY_OUT`), grouped into markdown tables by kind
//! and class. `scripts/reliability` runs the tests and then this.

use crate::stats::Samples;
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub struct ReliabilityArgs {
    /// The JSON lines the tests recorded (the file DOCCONV_RELIABILITY_OUT named)
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the report
    #[arg(long, default_value = "docs/reliability.md")]
    pub output: PathBuf,
    /// The revision the tests ran on, for the header
    #[arg(long)]
    pub revision: Option<String>,
    /// How long the test run took, in seconds, for the header
    #[arg(long)]
    pub took_secs: Option<u64>,
    /// The test run failed: the report says so (a failed test's case may be missing)
    #[arg(long)]
    pub tests_failed: bool,
    /// The command that produced the input, for the header
    #[arg(long, default_value = "scripts/reliability")]
    pub command: String,
}

/// What the header says about the run.
pub struct Run {
    /// When, as "2026-11-29 04:12 UTC".
    pub when: String,
    pub machine: String,
    pub revision: Option<String>,
    pub took_secs: Option<u64>,
    pub tests_failed: bool,
    pub command: String,
}

/// One recorded case.
#[derive(Debug)]
struct Case {
    kind: String,
    class: String,
    name: String,
    tried: u64,
    accepted: u64,
    lost: u64,
    leaked_bytes: u64,
    recover_ms: Option<u64>,
    recovery: Option<String>,
    figures: Map<String, Value>,
}

/// The kinds, in the order the report shows them, with their headings.
const KINDS: [(&str, &str); 3] = [("fault", "Faults"), ("hostile", "Hostile inputs"), ("soak", "Soak")];

/// Hostile cases' own counts, shown per class: (figure, column heading).
const HOSTILE_COUNTS: [(&str, &str); 2] =
    [("local_file_read", "local file in a result"), ("connections", "URL fetches")];

pub fn run(args: ReliabilityArgs) -> Result<(), String> {
    let input = std::fs::read_to_string(&args.input).map_err(|e| format!("{}: {e}", args.input.display()))?;
    let run = Run {
        when: utc_now(),
        machine: machine(),
        revision: args.revision,
        took_secs: args.took_secs,
        tests_failed: args.tests_failed,
        command: args.command,
    };
    let markdown = render(&input, &run).map_err(|e| format!("{}: {e}", args.input.display()))?;
    write(&args.output, &markdown)?;
    eprintln!("reliability: report in {}", args.output.display());
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The report for `input`, one JSON object a line.
pub fn render(input: &str, run: &Run) -> Result<String, String> {
    let mut cases = Vec::new();
    for (number, line) in input.lines().enumerate() {
        if !line.trim().is_empty() {
            cases.push(parse(line).map_err(|e| format!("line {}: {e}", number + 1))?);
        }
    }
    if cases.is_empty() {
        return Err("no cases recorded".into());
    }
    // Tests finish in no fixed order; sorted, two runs compare line by line.
    cases.sort_by(|a, b| (a.class.to_lowercase(), &a.name).cmp(&(b.class.to_lowercase(), &b.name)));
    let mut out = header(run);
    out.push_str("\n## Summary\n\n");
    out.push_str("| | classes | cases | tried | jobs accepted | jobs lost (target 0) | bytes leaked (target 0) |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for (kind, heading) in KINDS {
        let of_kind: Vec<&Case> = cases.iter().filter(|c| c.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "| {heading} | {} | {} | {} | {} | {} | {} |",
            classes(&of_kind).len(),
            of_kind.len(),
            sum(&of_kind, |c| c.tried),
            sum(&of_kind, |c| c.accepted),
            flag(sum(&of_kind, |c| c.lost)),
            flag(sum(&of_kind, |c| c.leaked_bytes)),
        );
    }
    for (kind, heading) in KINDS {
        let of_kind: Vec<&Case> = cases.iter().filter(|c| c.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let _ = write!(out, "\n## {heading}\n\n");
        if kind == "soak" {
            soak(&mut out, &of_kind);
        } else {
            classes_table(&mut out, kind, &of_kind);
        }
    }
    let unknown: Vec<&str> =
        cases.iter().map(|c| c.kind.as_str()).filter(|k| !KINDS.iter().any(|(kind, _)| kind == k)).collect();
    if !unknown.is_empty() {
        return Err(format!("unknown kind {:?}: fault, hostile or soak", unknown[0]));
    }
    out.push_str("\n## Every case\n\n");
    out.push_str("| kind | class | case | tried | accepted | lost | leaked bytes | recovery | other figures |\n");
    out.push_str("|---|---|---|---:|---:|---:|---:|---|---|\n");
    for (kind, _) in KINDS {
        for case in cases.iter().filter(|c| c.kind == kind) {
            let recovery = match (case.recover_ms, &case.recovery) {
                (Some(ms), Some(what)) => format!("{} ({})", duration(ms as f64), cell(what)),
                (Some(ms), None) => duration(ms as f64),
                _ => "–".into(),
            };
            let _ = writeln!(
                out,
                "| {kind} | {} | {} | {} | {} | {} | {} | {recovery} | {} |",
                cell(&case.class),
                cell(&case.name),
                case.tried,
                case.accepted,
                flag(case.lost),
                flag(case.leaked_bytes),
                figures(&case.figures),
            );
        }
    }
    Ok(out)
}

fn header(run: &Run) -> String {
    let revision = run.revision.as_deref().map(|r| format!(", revision `{r}`")).unwrap_or_default();
    let took = run.took_secs.map(|s| format!("; the tests took {s} s")).unwrap_or_default();
    let verdict = if run.tests_failed {
        "**the test run failed**: a case whose test failed before recording it is missing"
    } else {
        "every test passed"
    };
    format!(
        "# Reliability\n\n\
         Written by `{command}` from the test suite's own run, not by hand: each fault, hostile-input and soak \
         test records what it tried and what it observed (`tests/converter/reliability.rs`), and \
         `docconv-bench reliability` turns those records into this page. Regenerate it with `{command}` \
         (`scripts/reliability --soak-secs N` soaks for N seconds instead of 60).\n\n\
         - Run: {when}{revision}{took}; {verdict}\n\
         - Machine: {machine}\n\n\
         What the columns count:\n\n\
         - **tried**: attempts a case made (uploads, calls, requests); **jobs accepted**: the attempts the \
         service answered with a job.\n\
         - **jobs lost**: accepted jobs that vanished or never reached an end (given a minute after the case).\n\
         - **bytes leaked**: what stayed on disk with nothing owning it once the case was over (after up to \
         30 s to settle): a job directory without a job record, an unfinished write (`*.partial`) or a \
         tool's scratch copy in the directory of a job that has ended, the directory of a worker no longer \
         running; for a converter that refused to start, any file the attempt added.\n\
         - **recovery**: how long the service took, from the moment each case names (a kill, a restart, a \
         refusal, space freed) to the service having dealt with it; the median and the longest over the \
         cases of a class. Tests run side by side on a shared machine, so times are upper bounds.\n",
        command = run.command,
        when = run.when,
        machine = run.machine,
    )
}

/// One row per class.
fn classes_table(out: &mut String, kind: &str, cases: &[&Case]) {
    let counts: &[(&str, &str)] = if kind == "hostile" { &HOSTILE_COUNTS } else { &[] };
    out.push_str(
        "| class | cases | tried | jobs accepted | jobs lost | bytes leaked | recovery (median) | recovery (max) |",
    );
    for (_, heading) in counts {
        let _ = write!(out, " {heading} |");
    }
    out.push_str(" recovery measured |\n|---|---:|---:|---:|---:|---:|---:|---:|");
    out.push_str(&"---:|".repeat(counts.len()));
    out.push_str("---|\n");
    for class in classes(cases) {
        let of_class: Vec<&Case> = cases.iter().copied().filter(|c| c.class == class).collect();
        let times = Samples(of_class.iter().filter_map(|c| c.recover_ms).map(|ms| ms as f64).collect());
        let (median, max) = match (times.median(), times.percentile(1.0)) {
            (Some(median), Some(max)) => (duration(median), duration(max)),
            _ => ("–".into(), "–".into()),
        };
        let _ = write!(
            out,
            "| {} | {} | {} | {} | {} | {} | {median} | {max} |",
            cell(class),
            of_class.len(),
            sum(&of_class, |c| c.tried),
            sum(&of_class, |c| c.accepted),
            flag(sum(&of_class, |c| c.lost)),
            flag(sum(&of_class, |c| c.leaked_bytes)),
        );
        for (figure, _) in counts {
            let values: Vec<u64> = of_class.iter().filter_map(|c| c.figures.get(*figure)?.as_u64()).collect();
            let shown = if values.is_empty() { "–".into() } else { flag(values.iter().sum()) };
            let _ = write!(out, " {shown} |");
        }
        let mut measured: Vec<&str> = Vec::new();
        for what in of_class.iter().filter_map(|c| c.recovery.as_deref()) {
            if !measured.contains(&what) {
                measured.push(what);
            }
        }
        let measured = if measured.is_empty() { "–".into() } else { cell(&measured.join("; ")) };
        let _ = writeln!(out, " {measured} |");
    }
}

/// Each soak case with all its figures.
fn soak(out: &mut String, cases: &[&Case]) {
    for (index, case) in cases.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let _ = write!(out, "### {}: {}\n\n| figure | value |\n|---|---:|\n", cell(&case.class), cell(&case.name));
        let common = [
            ("jobs tried", case.tried),
            ("jobs accepted", case.accepted),
            ("jobs lost (target 0)", case.lost),
            ("bytes leaked (target 0)", case.leaked_bytes),
        ];
        for (name, value) in common {
            let shown = if name.contains("target 0") { flag(value) } else { value.to_string() };
            let _ = writeln!(out, "| {name} | {shown} |");
        }
        for (name, value) in paired(&case.figures) {
            let _ = writeln!(out, "| {} | {value} |", cell(&name));
        }
    }
}

fn parse(line: &str) -> Result<Case, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| format!("no {key}"));
    let count = |key: &str| value.get(key).and_then(Value::as_u64).ok_or_else(|| format!("no count {key}"));
    Ok(Case {
        kind: text("kind")?,
        class: text("class")?,
        name: text("case")?,
        tried: count("tried")?,
        accepted: count("accepted")?,
        lost: count("lost")?,
        leaked_bytes: count("leaked_bytes")?,
        recover_ms: value.get("recover_ms").and_then(Value::as_u64),
        recovery: value.get("recovery").and_then(Value::as_str).map(str::to_owned),
        figures: value.get("figures").and_then(Value::as_object).cloned().unwrap_or_default(),
    })
}

/// The classes of `cases`, each once, in their order.
fn classes<'a>(cases: &[&'a Case]) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for case in cases.iter().copied() {
        if !seen.contains(&case.class.as_str()) {
            seen.push(&case.class);
        }
    }
    seen
}

fn sum(cases: &[&Case], field: impl Fn(&Case) -> u64) -> u64 {
    cases.iter().map(|c| field(c)).sum()
}

/// A figure whose target is 0, in bold when it is missed.
fn flag(value: u64) -> String {
    if value == 0 { "0".into() } else { format!("**{value}**") }
}

/// "850 ms", or "12.3 s" from ten seconds on.
fn duration(ms: f64) -> String {
    if ms < 10_000.0 { format!("{ms:.0} ms") } else { format!("{:.1} s", ms / 1000.0) }
}

fn number(value: &Value) -> String {
    match value {
        Value::String(text) => cell(text),
        other => other.to_string(),
    }
}

fn figures(figures: &Map<String, Value>) -> String {
    let shown: Vec<String> =
        paired(figures).into_iter().map(|(name, value)| format!("{} {value}", cell(&name))).collect();
    if shown.is_empty() { "–".into() } else { shown.join(", ") }
}

/// Figures with readable names; a `_before` and its `_after` as one, "17 → 18".
fn paired(figures: &Map<String, Value>) -> Vec<(String, String)> {
    let mut shown = Vec::new();
    for (name, value) in figures {
        if let Some(stem) = name.strip_suffix("_before")
            && let Some(after) = figures.get(&format!("{stem}_after"))
        {
            shown.push((label(stem), format!("{} → {}", number(value), number(after))));
        } else if let Some(stem) = name.strip_suffix("_after")
            && figures.contains_key(&format!("{stem}_before"))
        {
            continue;
        } else {
            shown.push((label(name), number(value)));
        }
    }
    shown
}

/// "converter_rss_mib" as "converter RSS MiB".
fn label(name: &str) -> String {
    let words = name.split('_').map(|word| match word {
        "rss" => "RSS",
        "mib" => "MiB",
        "fds" => "descriptors",
        "dirs" => "directories",
        other => other,
    });
    words.collect::<Vec<_>>().join(" ")
}

/// Text for a table cell: a `|` would end it early, a line break the row.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(str::trim)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map_or(0.0, |kib| kib as f64 / 1048576.0);
    format!("{cpu}, {cores} cores, {memory:.0} GiB")
}

/// The time now in UTC, to the minute.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    utc(secs)
}

/// `secs` since the epoch as a UTC date and time, to the minute.
fn utc(secs: u64) -> String {
    // Days to a civil date (Howard Hinnant's algorithm), so the header
    // needs no date library.
    let days = (secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let minutes = secs % 86_400 / 60;
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Run {
        Run {
            when: "2026-11-29 04:12 UTC".into(),
            machine: "a test machine, 2 cores, 8 GiB".into(),
            revision: Some("abc1234".into()),
            took_secs: Some(600),
            tests_failed: false,
            command: "scripts/reliability".into(),
        }
    }

    const INPUT: &str = r#"
{"kind":"fault","class":"worker killed mid-job","case":"SIGKILL while converting","tried":1,"accepted":1,"lost":0,"leaked_bytes":0,"recover_ms":1200,"recovery":"kill → job ended","figures":{}}
{"kind":"fault","class":"worker killed mid-job","case":"again","tried":2,"accepted":2,"lost":0,"leaked_bytes":0,"recover_ms":3000,"recovery":"kill → job ended","figures":{}}
{"kind":"fault","class":"upload | limits","case":"over 1 MiB","tried":4,"accepted":0,"lost":1,"leaked_bytes":65536,"recover_ms":null,"recovery":null,"figures":{}}
{"kind":"hostile","class":"page background","case":"sandbox alone → pdf","tried":3,"accepted":3,"lost":0,"leaked_bytes":0,"recover_ms":null,"figures":{"local_file_read":0,"connections":0}}
{"kind":"hostile","class":"macros","case":".ppsm","tried":1,"accepted":1,"lost":0,"leaked_bytes":0,"recover_ms":null,"figures":{}}
{"kind":"soak","class":"mixed load with poison","case":"60 s, 2 workers","tried":121,"accepted":121,"lost":0,"leaked_bytes":0,"recover_ms":null,"figures":{"converter_rss_mib_before":40,"converter_rss_mib_after":42,"poison":48,"worker_dirs":3}}
"#;

    #[test]
    fn cases_are_summed_by_kind_and_class() {
        let report = render(INPUT, &run()).unwrap();
        assert!(report.starts_with("# Reliability\n"), "{report}");
        assert!(report.contains("revision `abc1234`; the tests took 600 s; every test passed"), "{report}");
        assert!(report.contains("Regenerate it with `scripts/reliability`"), "{report}");
        // Summary: two fault classes over three cases, the misses in bold.
        assert!(report.contains("| Faults | 2 | 3 | 7 | 3 | **1** | **65536** |"), "{report}");
        assert!(report.contains("| Hostile inputs | 2 | 2 | 4 | 4 | 0 | 0 |"), "{report}");
        assert!(report.contains("| Soak | 1 | 1 | 121 | 121 | 0 | 0 |"), "{report}");
        // A class row: the median and the longest recovery, and how it was timed.
        assert!(
            report.contains("| worker killed mid-job | 2 | 3 | 3 | 0 | 0 | 2100 ms | 3000 ms | kill → job ended |"),
            "{report}"
        );
        // A class without timings, its name escaped for the table.
        assert!(report.contains("| upload \\| limits | 1 | 4 | 0 | **1** | **65536** | – | – | – |"), "{report}");
        // Hostile classes show what reached out, "–" where nothing measured it.
        assert!(report.contains("| page background | 1 | 3 | 3 | 0 | 0 | – | – | 0 | 0 | – |"), "{report}");
        assert!(report.contains("| macros | 1 | 1 | 1 | 0 | 0 | – | – | – | – | – |"), "{report}");
        // The soak's own figures.
        assert!(report.contains("### mixed load with poison: 60 s, 2 workers"), "{report}");
        assert!(report.contains("| converter RSS MiB | 40 → 42 |"), "{report}");
        assert!(report.contains("| worker directories | 3 |"), "{report}");
        assert!(report.contains("| poison | 48 |"), "{report}");
        // Every case is listed, sorted by class.
        assert_eq!(report.matches("\n| fault | ").count(), 3, "{report}");
        let upload = report.find("| fault | upload \\| limits |").unwrap();
        assert!(upload < report.find("| fault | worker killed mid-job |").unwrap(), "{report}");
        assert!(report.contains("| 1200 ms (kill → job ended) |"), "{report}");
    }

    #[test]
    fn a_failed_run_says_so() {
        let report = render(INPUT, &Run { tests_failed: true, ..run() }).unwrap();
        assert!(report.contains("**the test run failed**"), "{report}");
    }

    #[test]
    fn bad_input_is_refused_by_line() {
        let error = render("\n{\"kind\":\"fault\"}\n", &run()).unwrap_err();
        assert!(error.starts_with("line 2: no class"), "{error}");
        assert_eq!(render("", &run()).unwrap_err(), "no cases recorded");
        let odd = INPUT.replace("\"kind\":\"soak\"", "\"kind\":\"weather\"");
        assert!(render(&odd, &run()).unwrap_err().contains("unknown kind \"weather\""));
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400 + 3_600 * 13 + 60 * 7), "2000-02-29 13:07 UTC");
        assert_eq!(utc(1_798_761_600), "2027-01-01 00:00 UTC");
    }
}
