//! The benchmark harness, run at its smallest: every scenario against every
//! peer available, so the harness keeps working. Figures are not checked:
//! speed is measured by `scripts/bench`, never asserted in tests.

use docconv_bench::BenchArgs;
use std::path::PathBuf;

#[test]
fn the_benchmark_runs_every_scenario_and_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("benchmarks.md");
    let venv = std::env::var_os("DOCCONV_UNOSERVER_VENV").map(PathBuf::from);
    let args = BenchArgs {
        mode: "smoke".into(),
        out: out.clone(),
        fixtures: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/gotenberg")),
        unoserver_venv: venv.clone(),
        no_soffice: true,
        only: Vec::new(),
        docconv: Some(PathBuf::from(env!("CARGO_BIN_EXE_docconv"))),
    };
    docconv_bench::run(args).unwrap();
    let report = std::fs::read_to_string(&out).unwrap();
    for heading in [
        "1. Sequential latency",
        "1b. The command-line client",
        "2. Throughput",
        "3. Cold start",
        "4. Watchers",
        "5. Streaming",
        "6. Cluster mode",
        "7. Scaling",
        "8. Worker start-up",
        "## Targets",
    ] {
        assert!(report.contains(heading), "missing {heading}");
    }
    if venv.is_some() {
        assert!(report.contains("unoserver ÷ docconv") && !report.contains("unoserver not run"), "{report}");
    }
    assert!(report.contains("a replacement worker ready within 300 ms"), "{report}");
    let chart = std::fs::read_to_string(dir.path().join("benchmarks-throughput.svg")).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains("polyline"));
    let scaling = std::fs::read_to_string(dir.path().join("benchmarks-scaling.svg")).unwrap();
    assert!(scaling.starts_with("<svg") && scaling.contains("polyline"));
}
