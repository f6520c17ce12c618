//! Checking a submitted webhook, field by field, before its job is queued:
//! everything that can be decided without DNS (the URL's shape, a literal
//! address, the operator's allow-list of hosts, the method, events and
//! headers). What a name resolves to is checked when it is sent.

use super::policy::Policy;
use crate::options::Violation;
use docconv::proto::v1::{Webhook, WebhookEvents, WebhookMethod};

/// Longest accepted URL, in bytes.
const MAX_URL: usize = 2048;
/// Most extra headers, and the longest value of one.
const MAX_HEADERS: usize = 32;
const MAX_HEADER_VALUE: usize = 4096;

/// Headers the request itself sets, or that would change how it travels
/// (hop-by-hop ones), and every `Docconv-*` header (the signature and its
/// companions must be ours alone).
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "user-agent",
];

/// A URL a webhook may be sent to, as the sender reads it.
pub struct Target {
    pub url: url::Url,
    pub https: bool,
    /// A name (lowercase), or an address.
    pub host: url::Host<String>,
    pub port: u16,
}

impl Target {
    /// The host as the allow-list and messages write it: an IPv6 address
    /// without brackets.
    pub fn host_text(&self) -> String {
        match &self.host {
            url::Host::Domain(name) => name.clone(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        }
    }
}

/// Reads `text` as a webhook URL; the error says what is wrong with it.
pub fn target(text: &str, policy: &Policy) -> Result<Target, String> {
    if text.is_empty() {
        return Err("is required: an http:// or https:// URL".into());
    }
    if text.len() > MAX_URL {
        return Err(format!("must be at most {MAX_URL} bytes"));
    }
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    let https = match url.scheme() {
        "https" => true,
        "http" => false,
        other => return Err(format!("the scheme must be http or https, not {other:?}")),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold a user name or password; send credentials in a header instead".into());
    }
    let host = url.host().ok_or("has no host")?.to_owned();
    let port = url.port_or_known_default().ok_or("has no port")?;
    let target = Target { url, https, host, port };
    let host = target.host_text();
    if !policy.allows_host(&host) {
        return Err(format!("webhooks may not go to {host}: the operator allows only some hosts"));
    }
    let literal = match target.host {
        url::Host::Ipv4(ip) => Some(ip.into()),
        url::Host::Ipv6(ip) => Some(ip.into()),
        url::Host::Domain(_) => None,
    };
    if let Some(ip) = literal
        && let Some(kind) = policy.refusal(ip)
    {
        return Err(format!("{ip} is not a public address ({kind}); webhooks may not reach it"));
    }
    Ok(target)
}

/// Every field of `webhook` that is wrong, and why.
pub fn check(webhook: &Webhook, policy: &Policy) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut violation = |field: &str, description: String| {
        violations.push(Violation { field: format!("webhook.{field}"), description })
    };
    if let Err(why) = target(&webhook.url, policy) {
        violation("url", why);
    }
    if WebhookMethod::try_from(webhook.method).is_err() {
        violation("method", "unknown method; use POST, PUT or PATCH".into());
    }
    if WebhookEvents::try_from(webhook.events).is_err() {
        violation("events", "unknown events; use ENDED, SUCCEEDED or FAILED".into());
    }
    if webhook.headers.len() > MAX_HEADERS {
        violation("headers", format!("at most {MAX_HEADERS} headers"));
    }
    let mut names: Vec<&String> = webhook.headers.keys().collect();
    names.sort();
    for name in names {
        if let Err(why) = check_header(name, &webhook.headers[name]) {
            violation("headers", why);
        }
    }
    violations
}

fn check_header(name: &str, value: &str) -> Result<(), String> {
    let parsed = http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a header name (letters, digits and -)"))?;
    if RESERVED_HEADERS.contains(&parsed.as_str()) || parsed.as_str().starts_with("docconv-") {
        return Err(format!("{name} is set by the service itself"));
    }
    if value.len() > MAX_HEADER_VALUE || http::HeaderValue::from_str(value).is_err() {
        return Err(format!(
            "the value of {name} must be at most {MAX_HEADER_VALUE} bytes of visible text, without line breaks"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(url: &str) -> Webhook {
        Webhook { url: url.into(), ..Webhook::default() }
    }

    fn fields(webhook: &Webhook, policy: &Policy) -> Vec<(String, String)> {
        check(webhook, policy).into_iter().map(|v| (v.field, v.description)).collect()
    }

    #[test]
    fn good_webhooks_pass() {
        let policy = Policy::default();
        let mut webhook = hook("https://hooks.example.com/docconv?x=1");
        webhook.headers.insert("Authorization".into(), "Bearer abc".into());
        webhook.headers.insert("X-Tenant".into(), "42".into());
        webhook.method = WebhookMethod::Put as i32;
        webhook.events = WebhookEvents::Failed as i32;
        assert!(check(&webhook, &policy).is_empty());
        assert!(check(&hook("http://8.8.8.8:8080/"), &policy).is_empty());
        assert!(check(&hook("http://localhost:9/"), &policy).is_empty(), "names are checked once resolved");
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        let policy = Policy::default();
        for (url, why) in [
            ("", "is required"),
            ("ftp://example.com/x", "the scheme must be http or https"),
            ("file:///etc/passwd", "the scheme must be http or https"),
            ("not a url", "is not a URL"),
            ("http://user:pw@example.com/", "user name or password"),
            ("http://user@example.com/", "user name or password"),
            ("http://127.0.0.1:8080/", "loopback"),
            ("http://[::1]/", "loopback"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://10.0.0.1/", "private"),
            ("http://100.64.0.1/", "carrier-grade NAT"),
            ("http://0x7f000001/", "loopback"),
            ("http://2130706433/", "loopback"),
        ] {
            let found = fields(&hook(url), &policy);
            assert_eq!(found.len(), 1, "{url}: {found:?}");
            assert_eq!(found[0].0, "webhook.url");
            assert!(found[0].1.contains(why), "{url}: {}", found[0].1);
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert_eq!(fields(&hook(&long), &policy)[0].0, "webhook.url");
    }

    #[test]
    fn the_operator_decides_hosts_and_networks() {
        let policy = Policy {
            hosts: vec!["*.example.com".parse().unwrap(), "127.0.0.1".parse().unwrap()],
            networks: vec!["127.0.0.1/32".parse().unwrap()],
        };
        assert!(check(&hook("https://hooks.example.com/"), &policy).is_empty());
        assert!(check(&hook("http://127.0.0.1:9000/"), &policy).is_empty());
        let refused = fields(&hook("https://example.net/"), &policy);
        assert!(refused[0].1.contains("allows only some hosts"), "{refused:?}");
    }

    #[test]
    fn reserved_and_malformed_headers_are_refused() {
        let policy = Policy::default();
        for (name, value) in [
            ("Host", "evil"),
            ("content-length", "1"),
            ("Transfer-Encoding", "chunked"),
            ("Connection", "close"),
            ("Docconv-Signature", "sha256=00"),
            ("docconv-delivery", "x"),
            ("bad name", "x"),
            ("X-Ok", "line\r\nInjected: 1"),
        ] {
            let mut webhook = hook("https://example.com/");
            webhook.headers.insert(name.into(), value.into());
            let found = fields(&webhook, &policy);
            assert_eq!(found.len(), 1, "{name}: {found:?}");
            assert_eq!(found[0].0, "webhook.headers");
        }
        let mut webhook = hook("https://example.com/");
        webhook.method = 9;
        webhook.events = 9;
        let found: Vec<String> = fields(&webhook, &policy).into_iter().map(|(f, _)| f).collect();
        assert_eq!(found, ["webhook.method", "webhook.events"]);
    }
}
