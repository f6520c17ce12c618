//! The gateway's one error type and its mapping to HTTP, in one place.
//! Pages get an HTML error page, API clients JSON; neither ever carries
//! internal details, which go to the log.

use super::view;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tonic::Code;
use tonic_types::StatusExt;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no such job")]
    NotFound,
    /// The request is wrong; the message says how.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    /// No token, or one the tokens file does not list (see `auth`).
    #[error("no valid token")]
    Unauthorized,
    /// The converter refused the token the gateway forwarded: the two read
    /// different tokens files, or only the converter has one. The detail
    /// is the converter's message, for the log.
    #[error("the converter refused the token: {0}")]
    RefusedUpstream(String),
    /// Refused on principle, e.g. a WebSocket from another site.
    #[error("{0}")]
    Forbidden(String),
    /// The converter is restarting or unreachable for now; try again later.
    #[error("{0}")]
    Busy(String),
    /// The converter is full (queue, disk); try again after the delay.
    #[error("{message}")]
    Overloaded { message: String, retry_after_secs: u64 },
    /// The job is not in a state the request needs (e.g. no result yet).
    #[error("{0}")]
    Conflict(String),
    /// The converter did not answer in time.
    #[error("the converter did not answer in time")]
    Timeout,
    /// The client sent its request too slowly, or for too long.
    #[error("{0}")]
    TooSlow(String),
    /// The converter could not be reached or failed: what the gateway was
    /// doing, and why, for the log.
    #[error("{doing}")]
    Upstream {
        doing: String,
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl AppError {
    /// The converter answered in a way it never should.
    pub fn upstream(doing: impl Into<String>) -> AppError {
        AppError::Upstream { doing: doing.into(), cause: None }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unauthorized | AppError::RefusedUpstream(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            AppError::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            AppError::Upstream { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    /// What a person may read.
    pub fn message(&self) -> String {
        match self {
            AppError::NotFound => {
                "There is no such job. It may have expired; results are kept for a limited time.".into()
            }
            AppError::BadRequest(m)
            | AppError::TooLarge(m)
            | AppError::Forbidden(m)
            | AppError::Busy(m)
            | AppError::Conflict(m)
            | AppError::TooSlow(m)
            | AppError::Overloaded { message: m, .. } => m.clone(),
            AppError::Timeout => "The conversion service did not answer in time. Please try again.".into(),
            AppError::Unauthorized | AppError::RefusedUpstream(_) => "This service needs a token. In a browser, \
                 sign in with the token as the password (any user name); scripts send the header \
                 `Authorization: Bearer <token>`."
                .into(),
            AppError::Upstream { .. } => {
                "The conversion service is unavailable right now. Please try again shortly.".into()
            }
        }
    }

    fn log(&self) {
        match self {
            AppError::Upstream { doing, cause } => match cause {
                Some(cause) => tracing::error!("converter: {doing}: {cause}"),
                None => tracing::error!("converter: {doing}"),
            },
            AppError::Timeout => tracing::warn!("converter timed out"),
            AppError::RefusedUpstream(detail) => tracing::warn!(
                "the converter refused the token of a request ({detail}); unless it was revoked a moment \
                 ago, the gateway and the converter do not read the same tokens file (--auth-tokens-file)"
            ),
            // The caller's mistakes are not server errors.
            _ => {}
        }
    }

    pub fn into_json_response(self) -> Response {
        self.log();
        let body = serde_json::json!({ "error": self.message() });
        with_headers(&self, (self.status(), axum::Json(body)).into_response())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let html = view::render_error(self.status(), &self.message());
        with_headers(&self, (self.status(), axum::response::Html(html)).into_response())
    }
}

/// `Retry-After` when trying again later helps; `WWW-Authenticate` when a
/// token is missing, so browsers ask for one.
fn with_headers(error: &AppError, mut response: Response) -> Response {
    let (name, value) = match error {
        AppError::Busy(_) => (header::RETRY_AFTER, HeaderValue::from(5)),
        AppError::Overloaded { retry_after_secs, .. } => (header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)),
        AppError::Unauthorized | AppError::RefusedUpstream(_) => {
            (header::WWW_AUTHENTICATE, HeaderValue::from_static(super::auth::CHALLENGE))
        }
        _ => return response,
    };
    response.headers_mut().insert(name, value);
    response
}

/// Whether the client asked for JSON (scripts) rather than a page.
pub fn wants_json(headers: &axum::http::HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("application/json"))
}

impl From<tonic::Status> for AppError {
    fn from(status: tonic::Status) -> AppError {
        let message = status.message().to_owned();
        match status.code() {
            Code::NotFound => AppError::NotFound,
            Code::InvalidArgument => AppError::BadRequest(message),
            // With a retry delay: the service is full for now. Without
            // one: this request is over a limit.
            Code::ResourceExhausted => match status.get_error_details().retry_info() {
                Some(retry) => AppError::Overloaded {
                    message,
                    retry_after_secs: retry.retry_delay.map_or(5, |d| d.as_secs().max(1)),
                },
                None => AppError::TooLarge(message),
            },
            Code::Unavailable => AppError::Busy(message),
            Code::FailedPrecondition | Code::OutOfRange => AppError::Conflict(message),
            Code::DeadlineExceeded => AppError::Timeout,
            Code::Unauthenticated => AppError::RefusedUpstream(message),
            _ => AppError::Upstream { doing: "calling the converter".into(), cause: Some(Box::new(status)) },
        }
    }
}

/// Bounds a converter call that only reads (and so may be made again) by
/// the request timeout. With several converters (`others`), it is made
/// again while the converter that took it was unavailable: one that died
/// is left out within a health check (see `converters`), and a later try
/// reaches one that answers. With one, there is no other to wait for.
pub async fn read<T, F, Fut>(limit: std::time::Duration, others: bool, mut call: F) -> Result<T, AppError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    const PAUSE: std::time::Duration = std::time::Duration::from_millis(250);
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match tokio::time::timeout(left, call()).await {
            Ok(Err(status)) if others && status.code() == Code::Unavailable && left > PAUSE * 2 => {
                tracing::debug!("a converter was unavailable ({}); trying again", status.message());
                tokio::time::sleep(PAUSE).await;
            }
            Ok(result) => return result.map_err(AppError::from),
            Err(_) => return Err(AppError::Timeout),
        }
    }
}

/// Bounds a converter call by the request timeout.
pub async fn deadline<T>(
    limit: std::time::Duration,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, AppError> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(AppError::from),
        Err(_) => Err(AppError::Timeout),
    }
}
