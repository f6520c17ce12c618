//! Jobs as JSON for scripts (`--json`), and as a few readable lines for
//! people. Field names are the proto's; enum values their proto names
//! (e.g. "JOB_STATE_SUCCEEDED"), as the proto3 JSON mapping writes them;
//! times are RFC 3339. 64-bit numbers stay numbers.

use docconv::proto::v1::{ConversionOptions, Job, JobState, pdf_split};
use serde_json::{Map, Value, json};

/// A protobuf Timestamp, whose Display is RFC 3339.
fn time<T: std::fmt::Display>(t: &Option<T>) -> Option<String> {
    t.as_ref().map(T::to_string)
}

pub fn job(job: &Job) -> Value {
    json!({
        "id": job.id,
        "state": job.state().as_str_name(),
        "sequence": job.sequence,
        "file_name": job.file_name,
        "merged_file_names": job.merged_file_names,
        "attachment_file_names": job.attachment_file_names,
        "target_format": job.target_format,
        "input_size_bytes": job.input_size_bytes,
        "create_time": time(&job.create_time),
        "start_time": time(&job.start_time),
        "end_time": time(&job.end_time),
        "update_time": time(&job.update_time),
        "queue_position": job.queue_position,
        "progress": job.progress.as_ref().map(|p| json!({
            "stage": p.stage().as_str_name(),
            "percent": p.percent,
        })),
        "output": job.output.as_ref().map(|o| json!({
            "file_name": o.file_name,
            "content_type": o.content_type,
            "size_bytes": o.size_bytes,
            "sha256": o.sha256,
            "page_count": o.page_count,
        })),
        "error": job.error.as_ref().map(|e| json!({ "code": e.code, "message": e.message })),
        "timings": job.timings.as_ref().map(|t| json!({
            "queue_wait_ms": t.queue_wait_ms,
            "load_ms": t.load_ms,
            "export_ms": t.export_ms,
            "store_ms": t.store_ms,
        })),
        "attempts": job.attempts,
        "options": job.options.as_ref().map(options),
        "webhook": job.webhook.as_ref().map(|w| json!({
            "state": w.state().as_str_name(),
            "delivery_id": w.delivery_id,
            "attempts": w.attempts,
            "last_error": w.last_error,
            "last_status_code": w.last_status_code,
            "delivered_time": time(&w.delivered_time),
            "next_attempt_time": time(&w.next_attempt_time),
        })),
    })
}

/// The options a job shows (the service has removed the passwords).
pub fn options(options: &ConversionOptions) -> Value {
    let mut out = Map::new();
    if let Some(pdf) = &options.pdf {
        let split = pdf.split.as_ref().and_then(|s| s.by.as_ref()).map(|by| match by {
            pdf_split::By::EveryPages(pages) => json!({ "every_pages": pages }),
            pdf_split::By::Ranges(ranges) => json!({ "ranges": { "ranges": ranges.ranges } }),
        });
        out.insert(
            "pdf".into(),
            json!({
                "standard": pdf.standard().as_str_name(),
                "universal_access": pdf.universal_access,
                "page_ranges": pdf.page_ranges,
                "single_page_sheets": pdf.single_page_sheets,
                "image_quality": pdf.image_quality,
                "max_image_resolution": pdf.max_image_resolution,
                "export_bookmarks": pdf.export_bookmarks,
                "export_notes": pdf.export_notes,
                "export_form_fields": pdf.export_form_fields,
                "watermark": pdf.watermark,
                "encryption": pdf.encryption.as_ref().map(|e| json!({
                    "allow_printing": e.allow_printing,
                    "allow_copying": e.allow_copying,
                    "allow_editing": e.allow_editing,
                    "allow_annotating": e.allow_annotating,
                    "allow_filling_forms": e.allow_filling_forms,
                    "allow_assembling": e.allow_assembling,
                })),
                "landscape": pdf.landscape,
                "metadata": pdf.metadata.as_ref().map(|m| json!({
                    "title": m.title,
                    "author": m.author,
                    "subject": m.subject,
                    "keywords": m.keywords,
                })),
                "split": split,
                "factur_x": pdf.factur_x.as_ref().map(|f| json!({
                    "conformance_level": f.conformance_level().as_str_name(),
                    "document_type": f.document_type().as_str_name(),
                    "version": f.version,
                })),
            }),
        );
    }
    Value::Object(out)
}

/// A state in a few words: "queued (position 2)", "loading 40%", "succeeded".
pub fn state_words(job: &Job) -> String {
    match job.state() {
        JobState::Queued if job.queue_position > 0 => format!("queued (position {})", job.queue_position),
        JobState::Running => match &job.progress {
            Some(progress) => format!("{} {}%", stage_word(progress.stage()), progress.percent),
            None => "running".to_owned(),
        },
        state => state_name(state).to_owned(),
    }
}

pub fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Unspecified => "unknown",
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Succeeded => "succeeded",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

pub fn stage_word(stage: docconv::proto::v1::Stage) -> &'static str {
    use docconv::proto::v1::Stage;
    match stage {
        Stage::Unspecified => "running",
        Stage::Loading => "loading",
        Stage::Exporting => "exporting",
        Stage::Storing => "storing",
    }
}

/// `docconv job get` for a person: one fact a line.
pub fn summary(job: &Job) -> String {
    let mut lines = vec![format!("id:       {}", job.id), format!("state:    {}", state_words(job))];
    let files = match job.merged_file_names.as_slice() {
        [] => job.file_name.clone(),
        names => names.join(" + "),
    };
    let target = if job.target_format.is_empty() { "pdf" } else { &job.target_format };
    lines.push(format!("document: {files} ({}) → {target}", indicatif::HumanBytes(job.input_size_bytes)));
    if let Some(created) = &job.create_time {
        lines.push(format!("created:  {created}"));
    }
    if let Some(ended) = &job.end_time {
        lines.push(format!("ended:    {ended}"));
    }
    if let Some(output) = &job.output {
        lines.push(format!(
            "output:   {} ({}, {} page{}), sha256 {}",
            output.file_name,
            indicatif::HumanBytes(output.size_bytes),
            output.page_count,
            if output.page_count == 1 { "" } else { "s" },
            output.sha256
        ));
    }
    if let Some(error) = &job.error {
        lines.push(format!("error:    {}", error.message));
    }
    if let Some(options) = &job.options {
        // Only what was set: the defaults say nothing.
        let set: Vec<String> = match self::options(options).get("pdf") {
            Some(Value::Object(pdf)) => pdf
                .iter()
                .filter(|(_, v)| !matches!(v, Value::Null | Value::Bool(false)) && !is_default(v))
                .map(|(k, v)| format!("{k} {v}"))
                .collect(),
            _ => Vec::new(),
        };
        if !set.is_empty() {
            lines.push(format!("options:  {}", set.join(", ")));
        }
    }
    lines.join("\n")
}

fn is_default(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_u64() == Some(0),
        Value::String(s) => s.is_empty() || s.ends_with("_UNSPECIFIED"),
        _ => false,
    }
}
