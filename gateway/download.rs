//! `GET /jobs/{id}/download`: the result, streamed from the converter to
//! the browser chunk by chunk, under its original name. One `ReadResult`
//! call: its first message names and types the result.

use super::AppState;
use super::auth::Caller;
use super::error::{AppError, deadline, read};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use docconv::proto::v1::ReadResultRequest;
use tokio_stream::StreamExt;

pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    if !docconv::ids::is_valid(&id) {
        return Err(AppError::NotFound);
    }
    let no_result = |error: AppError| match error {
        AppError::Conflict(_) => AppError::Conflict("This job has no result to download (yet).".into()),
        other => other,
    };
    let request = || ReadResultRequest { id: id.clone(), offset: 0, limit: 0 };
    let mut stream = read(state.timeout(), state.others, || {
        let (mut client, request) = (state.client(&caller), request());
        async move { client.read_result(request).await }
    })
    .await
    .map_err(no_result)?
    .into_inner();
    let first = deadline(state.timeout(), stream.message())
        .await?
        .ok_or_else(|| AppError::upstream("the result stream ended before it began"))?;
    let output = first.output.clone().ok_or_else(|| AppError::upstream("the result came without its description"))?;
    let sent = state.config.metrics.sent.clone();
    let rest = stream.map(|chunk| chunk.map(|c| Bytes::from(c.data)));
    let body = tokio_stream::once(Ok(Bytes::from(first.data))).chain(rest).map(move |chunk| {
        if let Ok(data) = &chunk {
            sent.inc_by(data.len() as u64);
        }
        chunk
    });
    let body = Body::from_stream(body);
    let headers = [
        (header::CONTENT_TYPE, header_value(&output.content_type)),
        (header::CONTENT_LENGTH, HeaderValue::from(output.size_bytes)),
        (header::CONTENT_DISPOSITION, content_disposition(&output.file_name)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600")),
    ];
    Ok((headers, body).into_response())
}

/// `GET /jobs/{id}/preview.png`: the first page of a PDF result.
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    if !docconv::ids::is_valid(&id) {
        return Err(AppError::NotFound);
    }
    let request = || docconv::proto::v1::GetPreviewRequest { id: id.clone() };
    let preview = read(state.timeout(), state.others, || {
        let (mut client, request) = (state.client(&caller), request());
        async move { client.get_preview(request).await }
    })
    .await?
    .into_inner();
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
        (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600")),
    ];
    Ok((headers, preview.png).into_response())
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

/// `attachment` with an ASCII fallback name and the exact name in RFC 6266's
/// `filename*` (UTF-8, percent-encoded), so non-ASCII names arrive intact.
pub fn content_disposition(file_name: &str) -> HeaderValue {
    let fallback: String = file_name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let mut encoded = String::new();
    for byte in file_name.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => encoded.push(byte as char),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    HeaderValue::from_str(&format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or(HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_names_survive_in_filename_star() {
        let value = content_disposition("Special_Chars_ß.pdf");
        assert_eq!(
            value.to_str().unwrap(),
            "attachment; filename=\"Special_Chars__.pdf\"; filename*=UTF-8''Special_Chars_%C3%9F.pdf"
        );
    }

    #[test]
    fn quotes_cannot_break_out_of_the_header() {
        let value = content_disposition("a\"b\r\n.pdf");
        let text = value.to_str().unwrap();
        assert!(text.starts_with("attachment; filename=\"a_b__.pdf\";"), "{text}");
        assert!(text.ends_with("filename*=UTF-8''a%22b%0D%0A.pdf"), "{text}");
    }
}
