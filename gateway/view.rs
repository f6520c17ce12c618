//! What pages show: job states turned into view models, rendered with the
//! embedded tera templates. The job card is one partial, used by the status
//! page and by every Turbo Stream frame, so a live update and a reload
//! always look the same.
//!
//! Templates end in `.html`, so tera escapes every value: file names and
//! messages from users or the converter can never become markup.

use super::{assets, csp};
use axum::http::StatusCode;
use docconv::proto::v1::{Job, JobState, ListFormatsResponse, Stage};
use serde::Serialize;
use std::sync::LazyLock;
use tera::{Context, Tera};

static TEMPLATES: LazyLock<Tera> = LazyLock::new(|| {
    let mut tera = Tera::default();
    tera.add_raw_templates([
        ("base.html", include_str!("templates/base.html")),
        ("index.html", include_str!("templates/index.html")),
        ("job.html", include_str!("templates/job.html")),
        ("batch.html", include_str!("templates/batch.html")),
        ("error.html", include_str!("templates/error.html")),
        ("job_card.html", include_str!("templates/job_card.html")),
        ("job_stream.html", include_str!("templates/job_stream.html")),
    ])
    .expect("the embedded templates are valid");
    tera
});

#[derive(Serialize, Clone, Debug)]
pub struct JobView {
    pub id: String,
    /// The job's sequence number: newer states have larger ones.
    pub sequence: u64,
    /// When the state was written, in microseconds since the epoch (the
    /// benchmark measures delivery delay from it).
    pub updated_micros: u64,
    pub file_name: String,
    /// queued, running, succeeded, failed or cancelled.
    pub state: &'static str,
    pub ended: bool,
    pub queue_position: u32,
    pub percent: u32,
    pub stage: &'static str,
    /// One sentence for the screen reader's live region.
    pub status_text: String,
    pub output: Option<OutputView>,
    pub error: Option<String>,
    pub status_url: String,
    pub stream_url: String,
    pub download_url: String,
    /// Set for succeeded PDF jobs.
    pub preview_url: Option<String>,
    /// For a merge, every document's name.
    pub merged: Vec<String>,
}

#[derive(Serialize, Clone, Debug)]
pub struct OutputView {
    pub file_name: String,
    pub size: String,
    pub page_count: u32,
}

impl JobView {
    pub fn new(job: &Job) -> JobView {
        let state = match job.state() {
            JobState::Queued | JobState::Unspecified => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        };
        let progress = job.progress.unwrap_or_default();
        let stage = match progress.stage() {
            Stage::Loading | Stage::Unspecified => "Reading the document",
            Stage::Exporting => "Writing the PDF",
            Stage::Storing => "Finishing",
        };
        let output = job.output.as_ref().filter(|_| state == "succeeded").map(|o| OutputView {
            file_name: o.file_name.clone(),
            size: human_size(o.size_bytes),
            page_count: o.page_count,
        });
        let error = job.error.as_ref().filter(|_| matches!(state, "failed" | "cancelled")).map(|e| e.message.clone());
        let status_text = match state {
            "queued" if job.queue_position > 0 => {
                format!("Waiting, number {} in line.", job.queue_position)
            }
            "queued" => "Waiting to start.".into(),
            "running" => format!("{stage}: {} percent.", progress.percent),
            "succeeded" => {
                let o = output.as_ref();
                format!(
                    "Ready: {} pages, {}.",
                    o.map_or(0, |o| o.page_count),
                    o.map_or(String::new(), |o| o.size.clone())
                )
            }
            "cancelled" => "Cancelled.".into(),
            _ => format!("Failed: {}", error.clone().unwrap_or_default()),
        };
        // Ids become URLs unescaped (they are plain hex); anything else is
        // not linked at all.
        let id = if docconv::ids::is_valid(&job.id) { job.id.as_str() } else { "invalid" };
        JobView {
            id: job.id.clone(),
            sequence: job.sequence,
            updated_micros: job
                .update_time
                .and_then(|t| std::time::SystemTime::try_from(t).ok())
                .map_or(0, |t| t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros() as u64),
            file_name: job.file_name.clone(),
            state,
            ended: matches!(state, "succeeded" | "failed" | "cancelled"),
            queue_position: job.queue_position,
            percent: progress.percent.min(100),
            stage,
            status_text,
            output,
            error,
            status_url: format!("/jobs/{id}"),
            stream_url: format!("/jobs/{id}/stream"),
            download_url: format!("/jobs/{id}/download"),
            // A split's result is a zip of parts: no one page to show.
            preview_url: (state == "succeeded"
                && job.output.as_ref().is_some_and(|o| o.content_type == "application/pdf"))
            .then(|| format!("/jobs/{id}/preview.png")),
            merged: job.merged_file_names.clone(),
        }
    }
}

#[derive(Serialize)]
struct FormatView<'a> {
    extension: &'a str,
    description: &'a str,
    /// What it can become, e.g. "pdf, docx, odt"; empty for outputs.
    targets: String,
}

/// What every page needs: where assets are, and the nonce of the response
/// (see `csp`).
fn base_context() -> Context {
    let mut context = Context::new();
    context.insert("assets", &assets::base_path());
    context.insert("csp_nonce", &csp::nonce());
    context
}

fn render(template: &str, context: &Context) -> String {
    TEMPLATES.render(template, context).unwrap_or_else(|e| {
        tracing::error!("template {template}: {e:?}");
        "<!doctype html><title>Error</title><p>This page could not be shown.</p>".into()
    })
}

pub fn render_index(formats: &ListFormatsResponse, max_files: usize) -> String {
    let mut context = base_context();
    let mut extensions: Vec<&str> = formats.inputs.iter().map(|f| f.extension.as_str()).collect();
    extensions.sort_unstable();
    let inputs: Vec<FormatView> = formats
        .inputs
        .iter()
        .map(|f| FormatView { extension: &f.extension, description: &f.description, targets: f.targets.join(", ") })
        .collect();
    let outputs: Vec<FormatView> = formats
        .outputs
        .iter()
        .map(|o| FormatView { extension: &o.extension, description: &o.description, targets: String::new() })
        .collect();
    let max_upload_bytes = formats.max_upload_bytes;
    context.insert("formats", &inputs);
    context.insert("outputs", &outputs);
    context.insert("accept", &extensions.iter().map(|e| format!(".{e}")).collect::<Vec<_>>().join(","));
    context.insert("extensions", &extensions);
    context.insert("max_upload", &human_size(max_upload_bytes));
    context.insert("max_files", &max_files);
    render("index.html", &context)
}

pub fn render_job_page(job: &Job) -> String {
    let mut context = base_context();
    context.insert("job", &JobView::new(job));
    render("job.html", &context)
}

pub fn render_batch(jobs: &[Job]) -> String {
    let mut context = base_context();
    context.insert("jobs", &jobs.iter().map(JobView::new).collect::<Vec<_>>());
    render("batch.html", &context)
}

/// A Turbo Stream message that replaces the job's card and updates its
/// live region.
pub fn render_stream_frame(job: &Job) -> String {
    let mut context = Context::new();
    context.insert("job", &JobView::new(job));
    render("job_stream.html", &context)
}

pub fn render_error(status: StatusCode, message: &str) -> String {
    let mut context = base_context();
    context.insert("status", &status.as_u16());
    context.insert("title", status.canonical_reason().unwrap_or("Error"));
    context.insert("message", message);
    render("error.html", &context)
}

/// Sizes in powers of 1024, as the limits are configured.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} bytes"),
        _ if value.fract() == 0.0 => format!("{value:.0} {}", UNITS[unit]),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: JobState, name: &str) -> Job {
        let mut job = Job { id: "ab".repeat(16), file_name: name.into(), ..Job::default() };
        job.set_state(state);
        job
    }

    #[test]
    fn hostile_names_are_text_in_pages_and_frames() {
        let hostile = "<img src=x onerror=alert(1)>.docx";
        let running = job(JobState::Running, hostile);
        for html in [render_job_page(&running), render_stream_frame(&running)] {
            assert!(!html.contains("<img"), "{html}");
            assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;.docx"), "{html}");
        }
    }

    #[test]
    fn frames_replace_the_card_by_its_id() {
        let frame = render_stream_frame(&job(JobState::Queued, "a.docx"));
        assert!(frame.contains(&format!("<turbo-stream action=\"replace\" target=\"job-{}\">", "ab".repeat(16))));
        assert!(frame.contains("<template>"));
    }

    #[test]
    fn only_a_single_pdf_result_has_a_preview() {
        let with_output = |content_type: &str| {
            let mut job = job(JobState::Succeeded, "a.docx");
            job.target_format = "pdf".into();
            job.output = Some(docconv::proto::v1::Output { content_type: content_type.into(), ..Default::default() });
            JobView::new(&job).preview_url
        };
        assert!(with_output("application/pdf").is_some());
        assert_eq!(with_output("application/zip"), None, "a split's parts");
    }

    #[test]
    fn sizes_read_like_a_person_writes_them() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(6447), "6.3 KB");
        assert_eq!(human_size(100 * 1024 * 1024), "100 MB");
    }
}
