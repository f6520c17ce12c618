//! What a webhook says: a JSON object naming the event and describing the
//! job as it ended. Field names follow the API's (`Job`), states and times
//! in plain words (`"succeeded"`, RFC 3339).

use docconv::proto::v1::{Job, JobState};
use serde_json::{Value, json};

/// The event of a job's end: `job.succeeded`, `job.failed` or `job.cancelled`.
pub fn event(state: JobState) -> &'static str {
    match state {
        JobState::Succeeded => "job.succeeded",
        JobState::Cancelled => "job.cancelled",
        _ => "job.failed",
    }
}

/// The body of the webhook of `job`, which has ended.
pub fn body(job: &Job, delivery_id: &str) -> Vec<u8> {
    let time = |t: &Option<prost_types::Timestamp>| t.as_ref().map_or(Value::Null, |t| t.to_string().into());
    let mut described = json!({
        "id": job.id,
        "state": job.state().as_str_name().trim_start_matches("JOB_STATE_").to_ascii_lowercase(),
        "file_name": job.file_name,
        "target_format": job.target_format,
        "input_size_bytes": job.input_size_bytes,
        "create_time": time(&job.create_time),
        "end_time": time(&job.end_time),
        "attempts": job.attempts,
    });
    if !job.merged_file_names.is_empty() {
        described["merged_file_names"] = json!(job.merged_file_names);
    }
    if let Some(output) = job.output.as_ref().filter(|_| job.state() == JobState::Succeeded) {
        described["output"] = json!({
            "file_name": output.file_name,
            "content_type": output.content_type,
            "size_bytes": output.size_bytes,
            "sha256": output.sha256,
            "page_count": output.page_count,
        });
    }
    if let Some(error) = &job.error {
        described["error"] = json!({ "code": error.code, "message": error.message });
    }
    let body = json!({ "event": event(job.state()), "delivery_id": delivery_id, "job": described });
    serde_json::to_vec(&body).expect("JSON values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use docconv::proto::v1::{JobError, Output};

    #[test]
    fn a_succeeded_job_is_described_with_its_result() {
        let mut job = Job {
            id: "0123".into(),
            file_name: "report.docx".into(),
            target_format: "pdf".into(),
            end_time: Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 0 }),
            output: Some(Output {
                file_name: "report.pdf".into(),
                content_type: "application/pdf".into(),
                size_bytes: 1234,
                sha256: "ab".repeat(32),
                page_count: 2,
            }),
            ..Job::default()
        };
        job.set_state(JobState::Succeeded);
        let body: Value = serde_json::from_slice(&body(&job, "d1")).unwrap();
        assert_eq!(body["event"], "job.succeeded");
        assert_eq!(body["delivery_id"], "d1");
        assert_eq!(body["job"]["state"], "succeeded");
        assert_eq!(body["job"]["end_time"], "2023-11-14T22:13:20Z");
        assert_eq!(body["job"]["output"]["size_bytes"], 1234);
        assert_eq!(body["job"]["output"]["sha256"], "ab".repeat(32));
        assert!(body["job"].get("error").is_none());
        assert!(body["job"].get("merged_file_names").is_none());
    }

    #[test]
    fn a_failed_job_carries_its_error() {
        let mut job = Job { error: Some(JobError { code: 3, message: "not a docx".into() }), ..Job::default() };
        job.set_state(JobState::Failed);
        let body: Value = serde_json::from_slice(&body(&job, "d")).unwrap();
        assert_eq!((body["event"].as_str(), body["job"]["state"].as_str()), (Some("job.failed"), Some("failed")));
        assert_eq!(body["job"]["error"], json!({"code": 3, "message": "not a docx"}));
        job.set_state(JobState::Cancelled);
        assert_eq!(event(job.state()), "job.cancelled");
    }
}
