//! The pages as people's browsers take them: nothing refused by the
//! page's own policy, no failed request and nothing logged.

use super::Browser;
use crate::support::big_text_document;
use crate::web::serve;
use docconv::proto::v1::CancelJobRequest;
use serde_json::{Value, json};

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
}

/// A string as it is, anything else as JSON.
fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
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
    let status_page = "location.pathname.startsWith('/jobs/') && !!document.querySelector('[data-job-card]')";
    browser.wait_for(status_page, "the status page").await;

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
