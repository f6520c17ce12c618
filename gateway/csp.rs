//! The security headers of every response, and its Content-Security-Policy
//! nonce.
//!
//! Pages load nothing from elsewhere and run only our own scripts; user
//! content is escaped anyway, this is the second line. The one inline
//! element a page may hold is the stylesheet of Turbo's progress bar, which
//! Turbo writes itself and marks with the nonce it reads from the page's
//! `<meta name="csp-nonce">`. So each response gets a nonce of its own,
//! made here before the handler runs: the page rendered for it (an error
//! page too) puts it in that meta tag (`view`), and this policy allows it.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

tokio::task_local! {
    /// The nonce of the response being made, while its handler runs.
    static NONCE: String;
}

/// The nonce of the response being made, for the page's meta tag; `None`
/// outside a request (a stream frame, which is not a page).
pub fn nonce() -> Option<String> {
    NONCE.try_with(Clone::clone).ok()
}

/// 128 random bits from the OS, in base64's URL-safe alphabet: CSP takes
/// it, and HTML has nothing in it to escape, so the page carries the very
/// same text as the header.
fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The policy allowing the inline stylesheet that carries `nonce`.
fn policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Runs the request with a fresh nonce and sends the headers that go with it.
pub async fn headers(request: Request, next: Next) -> Response {
    let nonce = new_nonce();
    let mut response = NONCE.scope(nonce.clone(), next.run(request)).await;
    let headers = response.headers_mut();
    let policy = HeaderValue::try_from(policy(&nonce)).expect("the policy is a valid header value");
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_fresh_and_fit_the_policy() {
        let (a, b) = (new_nonce(), new_nonce());
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{a}");
        assert!(policy(&a).contains(&format!("style-src 'self' 'nonce-{a}';")));
    }
}
