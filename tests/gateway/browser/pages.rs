//! The pages as people's browsers take them: nothing refused by the
//! page's own policy, no failed request and nothing logged; no rule of
//! axe-core's accessibility checks broken; and on a phone's screen, no
//! sideways scrolling and controls big enough to tap (with screenshots to
//! look at).

use super::{Browser, submit};
use crate::support::big_text_document;
use crate::web::serve;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use docconv::proto::v1::CancelJobRequest;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whether the rules of Turbo's progress bar are in force: the stylesheet
/// Turbo writes into the page is applied only if the page's
/// Content-Security-Policy allows it.
const PROGRESS_BAR_STYLED: &str = "[...document.styleSheets].some((sheet) => {
    try { return [...sheet.cssRules].some((rule) => rule.selectorText === '.turbo-progress-bar'); }
    catch { return false; }
})";

/// Long enough to be seen running, small enough for the shared
/// converter's upload limit.
const LONG_DOCUMENT: usize = 8000;

/// Waits for a job's page to show the job running (for longer than most
/// waits: on a busy machine the job may wait its turn), then has the page
/// stop following the job, as when leaving it, so that it stays as it is
/// while it is looked at, however soon the job ends.
async fn hold_running_card(browser: &mut Browser) {
    let running = "!!document.querySelector('.card--running')";
    browser.wait_for_within(running, "the running card", Duration::from_secs(180)).await;
    browser.eval("window.dispatchEvent(new Event('pagehide'))").await;
}

/// One job in each state a status page shows once it started: running
/// (cancelled on drop, so it holds no worker after the test), succeeded
/// and failed.
struct Jobs {
    running: String,
    succeeded: String,
    failed: String,
}

impl Jobs {
    async fn submit() -> Jobs {
        // Submitted first, so that it runs first.
        let running = submit("Quarterly report of the regional offices.fodt", &big_text_document(LONG_DOCUMENT)).await;
        let fixture = std::fs::read(crate::support::fixture("page_1.docx")).unwrap();
        let succeeded = submit("A letter to the members of the board, final version.docx", &fixture).await;
        let failed = submit("broken.docx", b"not a word document").await;
        Jobs { running, succeeded, failed }
    }

    /// Waits for the jobs that succeed and fail to end.
    async fn wait_ended(&self) {
        let mut client = crate::web::converter().client().await;
        crate::support::wait_end(&mut client, &self.succeeded).await;
        crate::support::wait_failed(&mut client, &self.failed).await;
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        let id = self.running.clone();
        // The test's runtime may be ending: cancel from a thread of its own.
        let cancel = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let mut client = crate::web::converter().client().await;
                let _ = client.cancel_job(CancelJobRequest { id }).await;
            });
        });
        let _ = cancel.join();
    }
}

impl Browser {
    /// Has the browser report what pages log and load from now on (see
    /// `problems`).
    async fn record_problems(&mut self) {
        for domain in ["Runtime", "Log", "Network"] {
            self.call(&format!("{domain}.enable"), json!({})).await;
        }
    }

    /// What went wrong in the pages since `record_problems`: errors and
    /// warnings on the console, the pages' and the browser's own (a CSP
    /// refusal is one), uncaught exceptions, requests that failed, and
    /// answers of 400 or more.
    async fn problems(&mut self) -> Vec<String> {
        // Events arrive while a command waits for its answer.
        self.eval("1").await;
        let url_of = |request: &Value| {
            let sent = self
                .events
                .iter()
                .find(|e| e["method"] == "Network.requestWillBeSent" && &e["params"]["requestId"] == request);
            sent.map_or("?".into(), |e| text(&e["params"]["request"]["url"]))
        };
        let mut problems = Vec::new();
        for event in &self.events {
            let params = &event["params"];
            let problem = match event["method"].as_str().unwrap_or_default() {
                "Runtime.consoleAPICalled" if matches!(params["type"].as_str(), Some("error" | "warning")) => {
                    let args = params["args"].as_array().into_iter().flatten();
                    let args: Vec<String> =
                        args.map(|a| text(a.get("value").or(a.get("description")).unwrap_or(a))).collect();
                    format!("console.{}: {}", text(&params["type"]), args.join(" "))
                }
                "Log.entryAdded" if matches!(params["entry"]["level"].as_str(), Some("error" | "warning")) => {
                    let entry = &params["entry"];
                    let (level, source, url) = (text(&entry["level"]), text(&entry["source"]), text(&entry["url"]));
                    format!("{level} ({source}): {} [{url}]", text(&entry["text"]))
                }
                "Runtime.exceptionThrown" => {
                    let details = &params["exceptionDetails"];
                    let description = details["exception"].get("description").unwrap_or(&details["text"]);
                    format!("exception: {}", text(description))
                }
                "Network.loadingFailed" => {
                    format!("request failed: {}: {}", url_of(&params["requestId"]), text(&params["errorText"]))
                }
                "Network.responseReceived" if params["response"]["status"].as_u64() >= Some(400) => {
                    format!("answered {}: {}", params["response"]["status"], text(&params["response"]["url"]))
                }
                _ => continue,
            };
            problems.push(problem);
        }
        problems
    }

    /// The accessibility rules the page breaks, as axe-core checks them
    /// (all its rules but experimental ones), one readable paragraph each.
    async fn accessibility_violations(&mut self) -> Vec<String> {
        if self.eval("typeof axe === 'undefined'").await == json!(true) {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/axe/node_modules/axe-core/axe.min.js");
            let axe = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}; axe-core is not installed, run scripts/test", path.display()));
            self.eval(&format!("{axe}; true")).await;
        }
        let violations = self
            .eval(
                "axe.run(document, { resultTypes: ['violations'] }).then((results) => results.violations.map((v) => ({
                    rule: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
                    nodes: v.nodes.map((node) => ({ target: node.target.join(' '), html: node.html,
                                                   summary: node.failureSummary })),
                })))",
            )
            .await;
        let violations = violations.as_array().cloned().unwrap_or_default();
        violations
            .iter()
            .map(|v| {
                let mut paragraph = format!(
                    "{} ({}): {} <{}>",
                    text(&v["rule"]),
                    text(&v["impact"]),
                    text(&v["help"]),
                    text(&v["url"])
                );
                for node in v["nodes"].as_array().into_iter().flatten() {
                    let summary = text(&node["summary"]).replace('\n', "\n      ");
                    paragraph += &format!("\n    {}: {}\n      {summary}", text(&node["target"]), text(&node["html"]));
                }
                paragraph
            })
            .collect()
    }

    /// Makes the page a phone's: 390×844 CSS pixels, three device pixels
    /// each, as a current mid-size phone.
    async fn emulate_phone(&mut self) {
        let metrics = json!({ "width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": true });
        self.call("Emulation.setDeviceMetricsOverride", metrics).await;
        self.call("Emulation.setTouchEmulationEnabled", json!({ "enabled": true, "maxTouchPoints": 5 })).await;
    }

    /// What does not fit a small screen: the page scrolling sideways, an
    /// element matching a selector of `shown` or `controls` that is
    /// missing, hidden or off the screen's sides, and a control less than
    /// 44 CSS pixels tall (the smallest target a finger hits reliably).
    async fn small_screen_problems(&mut self, controls: &[&str], shown: &[&str]) -> Vec<String> {
        let script = format!(
            "(() => {{
                const problems = [];
                const root = document.documentElement;
                if (root.scrollWidth > innerWidth) {{
                    problems.push(`the page is ${{root.scrollWidth}} pixels wide, the screen ${{innerWidth}}`);
                }}
                const check = (selector, control) => {{
                    const found = document.querySelectorAll(selector);
                    if (!found.length) problems.push(`${{selector}}: none`);
                    for (const element of found) {{
                        const box = element.getBoundingClientRect();
                        const name = `${{selector}} \"${{element.textContent.trim().replace(/\\s+/g, ' ').slice(0, 40)}}\"`;
                        if (!element.checkVisibility({{ visibilityProperty: true, opacityProperty: true }})) {{
                            problems.push(`${{name}}: hidden`);
                        }} else if (box.left < 0 || box.right > innerWidth) {{
                            problems.push(`${{name}}: from ${{box.left}} to ${{box.right}}, off the screen`);
                        }} else if (control && box.height < 44) {{
                            problems.push(`${{name}}: ${{box.height}} pixels tall`);
                        }}
                    }}
                }};
                {controls}.forEach((selector) => check(selector, true));
                {shown}.forEach((selector) => check(selector, false));
                return problems;
            }})()",
            controls = json!(controls),
            shown = json!(shown),
        );
        let problems = self.eval(&script).await;
        problems.as_array().into_iter().flatten().map(|p| p.as_str().unwrap_or_default().to_owned()).collect()
    }

    /// A screenshot of the whole page, written as `name.png` into
    /// `DOCCONV_SCREENSHOT_DIR`, or `screenshots/` of the build's own
    /// temporary folder under `target/`, for people to look at.
    async fn screenshot(&mut self, name: &str) -> PathBuf {
        let dir = std::env::var_os("DOCCONV_SCREENSHOT_DIR")
            .map_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"), PathBuf::from);
        std::fs::create_dir_all(&dir).unwrap();
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true })).await;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, BASE64.decode(shot["data"].as_str().unwrap()).unwrap()).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
}

/// A string as it is, anything else as JSON.
fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// Each of `problems`, saying on which page it was found.
fn in_page<'a>(page: &'a str, problems: Vec<String>) -> impl Iterator<Item = String> + 'a {
    problems.into_iter().map(move |problem| format!("{page}: {problem}"))
}

#[tokio::test]
async fn pages_log_nothing_and_load_everything_they_ask_for() {
    let gateway = serve();
    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("long.fodt");
    std::fs::write(&document, big_text_document(LONG_DOCUMENT)).unwrap();

    let mut browser = Browser::start().await;
    browser.record_problems().await;
    browser.open(&format!("http://{gateway}/")).await;
    browser.wait_for("!!window.Turbo && !!document.querySelector('form[data-upload]')", "the upload page").await;
    assert_eq!(browser.eval(PROGRESS_BAR_STYLED).await, json!(true), "Turbo's stylesheet was refused");

    // The progress bar shows while the upload is sent (at once, rather
    // than after Turbo's usual half second), with its style.
    browser
        .eval(
            "Turbo.config.drive.progressBarDelay = 0;
             window.progressBar = null;
             new MutationObserver(() => {
                 const bar = document.querySelector('.turbo-progress-bar');
                 if (bar && !window.progressBar) window.progressBar = getComputedStyle(bar).position;
             }).observe(document.documentElement, { childList: true })",
        )
        .await;
    browser.upload(&document).await;
    browser.wait_for("window.progressBar !== null", "Turbo's progress bar").await;
    assert_eq!(browser.eval("window.progressBar").await, json!("fixed"), "the progress bar has no style");
    browser.wait_for_status_page().await;

    // The job's page, loaded anew while the job is under way.
    let status_page = browser.eval("location.href").await.as_str().unwrap().to_owned();
    browser.open(&status_page).await;
    browser.wait_for("!!document.querySelector('[data-job-card]')", "the status page").await;
    assert_eq!(browser.eval(PROGRESS_BAR_STYLED).await, json!(true), "Turbo's stylesheet was refused");
    let id = browser.eval("location.pathname.split('/')[2]").await.as_str().unwrap().to_owned();

    // Turbo visits: back to the start by the page's link; to the job's
    // page again, left the moment it shows, its stream still connecting.
    let start = "location.pathname === '/' && !!document.querySelector('form[data-upload]')";
    browser.eval("document.querySelector('.back a').click()").await;
    browser.wait_for(start, "the start").await;
    // A visit replaces the body, and the mark with it.
    browser
        .eval(&format!(
            "document.body.dataset.mark = 'here';
             document.addEventListener('turbo:load', () => document.querySelector('.back a').click(), {{ once: true }});
             Turbo.visit('/jobs/{id}')"
        ))
        .await;
    browser.wait_for(&format!("{start} && !document.body.dataset.mark"), "the start, again").await;

    // Back on the job's page, the job ends (cancelled, unless it ended
    // already) and the page shows it.
    browser.open(&status_page).await;
    let mut client = crate::web::converter().client().await;
    let _ = client.cancel_job(CancelJobRequest { id }).await;
    browser.wait_for("!!document.querySelector('[data-job-card][data-ended=true]')", "the job's end").await;

    let problems = browser.problems().await;
    assert!(problems.is_empty(), "the pages had problems:\n{}", problems.join("\n"));
}

#[tokio::test]
async fn pages_break_no_accessibility_rule() {
    let gateway = serve();
    let jobs = Jobs::submit().await;
    let mut browser = Browser::start().await;
    let mut broken = Vec::new();
    browser.open(&format!("http://{gateway}/jobs/{}", jobs.running)).await;
    hold_running_card(&mut browser).await;
    broken.extend(in_page("the running job's page", browser.accessibility_violations().await));
    jobs.wait_ended().await;

    browser.open(&format!("http://{gateway}/")).await;
    // With every part unfolded, so that the options are checked too.
    browser.eval("document.querySelectorAll('details').forEach((details) => details.open = true)").await;
    broken.extend(in_page("the upload page", browser.accessibility_violations().await));

    let batch = format!("batch?ids={},{}", jobs.succeeded, jobs.failed);
    for (page, path) in [
        ("the finished job's page", format!("jobs/{}", jobs.succeeded)),
        ("the failed job's page", format!("jobs/{}", jobs.failed)),
        ("the page of several jobs", batch),
        ("the error page", format!("jobs/{}", "0".repeat(32))),
    ] {
        browser.open(&format!("http://{gateway}/{path}")).await;
        broken.extend(in_page(page, browser.accessibility_violations().await));
    }

    assert!(broken.is_empty(), "accessibility rules broken:\n\n{}", broken.join("\n\n"));
}

#[tokio::test]
async fn on_a_phone_pages_fit_the_screen_and_controls_are_big_enough_to_tap() {
    let gateway = serve();
    let jobs = Jobs::submit().await;
    let mut browser = Browser::start().await;
    browser.emulate_phone().await;
    let mut problems = Vec::new();

    browser.open(&format!("http://{gateway}/jobs/{}", jobs.running)).await;
    hold_running_card(&mut browser).await;
    problems
        .extend(in_page("running", browser.small_screen_problems(&[".brand", ".back a"], &[".card progress"]).await));
    browser.screenshot("phone-running").await;
    jobs.wait_ended().await;

    browser.open_upload_page(gateway).await;
    problems.extend(in_page(
        "upload",
        browser.small_screen_problems(&[".brand", ".drop", ".upload .button", "summary"], &[]).await,
    ));
    browser.screenshot("phone-upload").await;
    browser.eval("document.querySelectorAll('details').forEach((details) => details.open = true)").await;
    let fields = [".options select", ".options input:not([type=checkbox])", ".options label.check"];
    problems.extend(in_page("upload, unfolded", browser.small_screen_problems(&fields, &[".formats li"]).await));
    browser.screenshot("phone-upload-unfolded").await;

    for (name, id) in [("finished", &jobs.succeeded), ("failed", &jobs.failed)] {
        browser.open(&format!("http://{gateway}/jobs/{id}")).await;
        problems
            .extend(in_page(name, browser.small_screen_problems(&[".brand", ".back a", ".card .button"], &[]).await));
        browser.screenshot(&format!("phone-{name}")).await;
    }

    assert!(problems.is_empty(), "on a phone:\n{}", problems.join("\n"));
}
