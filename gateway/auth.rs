//! Who may use the gateway. With a tokens file, every route but `/healthz`,
//! `/readyz` and `/assets/…` (the open part of `app`) needs a token: as
//! `Authorization: Bearer <token>` (scripts), or as the password of HTTP
//! Basic authentication under any user name (browsers: the 401's
//! `WWW-Authenticate: Basic` makes them ask, and they then send it with
//! every request to the site, WebSocket handshakes included).
//!
//! Each converter call made for a request carries that request's own token
//! (`Caller`), never one of the gateway's: the converter checks it again
//! with its own copy of the file, so nothing reaches a job on the strength
//! of the gateway's check alone.

use super::AppState;
use super::error::{AppError, wants_json};
use super::trace::Trace;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use docconv::auth::Bearer;
use docconv::trace::TraceParent;
use std::convert::Infallible;

/// What browsers are told to send: Basic, whose password is the token.
pub const CHALLENGE: &str = "Basic realm=\"docconv\"";

/// Who a request is, for the converter calls made for it: the token it
/// was let in with (none without a tokens file, and calls go without),
/// and its trace, passed on as `traceparent`.
#[derive(Clone, Default)]
pub struct Caller {
    bearer: Bearer,
    trace: Option<TraceParent>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, Infallible> {
        // The token is put there by `require`; a route outside it calls
        // without one, which a converter with tokens refuses: the failure
        // is closed. The trace is put there by `trace::follow`.
        let bearer = parts.extensions.get::<Bearer>().cloned().unwrap_or_default();
        let trace = parts.extensions.get::<Trace>().map(|trace| trace.0);
        Ok(Caller { bearer, trace })
    }
}

impl tonic::service::Interceptor for Caller {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let mut request = self.bearer.call(request)?;
        if let Some(value) = self.trace.and_then(|trace| trace.to_string().parse().ok()) {
            request.metadata_mut().insert(docconv::trace::HEADER, value);
        }
        Ok(request)
    }
}

/// Lets a request through only with a listed token (when there is a tokens
/// file), and hands the token on to the handler as its `Caller`.
pub async fn require(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(tokens) = &state.tokens else {
        return next.run(request).await;
    };
    let accepted = presented_token(request.headers()).and_then(|token| {
        // A token that cannot travel as gRPC metadata is no token of ours.
        let bearer = Bearer::new(&token).ok()?;
        Some((bearer, tokens.verify(&token)?))
    });
    match accepted {
        Some((bearer, name)) => {
            tracing::debug!(token = %name, "authenticated request");
            request.extensions_mut().insert(bearer);
            next.run(request).await
        }
        None if wants_json(request.headers()) => AppError::Unauthorized.into_json_response(),
        None => AppError::Unauthorized.into_response(),
    }
}

/// The token of `Authorization: Bearer <token>`, or the password of
/// `Authorization: Basic <base64 of user:password>`.
fn presented_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = docconv_auth::bearer(value) {
        return Some(token.to_owned());
    }
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    // The user name may be anything, even empty; the password is the token.
    let (_user, password) = decoded.split_once(':')?;
    Some(password.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn token(authorization: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
        presented_token(&headers)
    }

    #[test]
    fn bearer_and_basic_credentials() {
        assert_eq!(token("Bearer s3cr3t").as_deref(), Some("s3cr3t"));
        assert_eq!(token("Basic YW55b25lOnMzY3IzdA==").as_deref(), Some("s3cr3t"), "anyone:s3cr3t");
        assert_eq!(token("basic OnMzY3IzdA==").as_deref(), Some("s3cr3t"), ":s3cr3t");
        // A password may hold colons; only the first one ends the user name.
        assert_eq!(token(&format!("Basic {}", BASE64.encode("me:a:b"))).as_deref(), Some("a:b"));
        assert_eq!(token("Basic not base64!"), None);
        assert_eq!(token(&format!("Basic {}", BASE64.encode("no colon"))), None);
        assert_eq!(token("Digest username=x"), None);
        assert_eq!(presented_token(&HeaderMap::new()), None);
    }
}
