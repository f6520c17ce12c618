//! Webhook flags of `docconv convert`: one per field of the API's
//! `Webhook`, named `--webhook-<field>`. The service checks the values
//! (and names a wrong one by its field), so nothing is checked twice here.

use clap::{Args, ValueEnum};
use docconv::proto::v1::{Webhook, WebhookEvents, WebhookMethod};

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Webhook")]
pub struct WebhookArgs {
    /// Have the service call this URL (http:// or https://) when each job
    /// ends, with a JSON description of the job
    #[arg(long, value_name = "URL")]
    webhook_url: Option<String>,
    /// The webhook request's method [default: post]
    #[arg(long, value_enum, requires = "webhook_url", value_name = "METHOD")]
    webhook_method: Option<Method>,
    /// An extra header of the webhook request, as NAME:VALUE; the flag
    /// repeated for each
    #[arg(long, requires = "webhook_url", value_name = "NAME:VALUE", value_parser = header)]
    webhook_header: Vec<(String, String)>,
    /// Which ends call the webhook: every end, or only a success, or only
    /// a failure [default: ended]
    #[arg(long, value_enum, requires = "webhook_url", value_name = "EVENTS")]
    webhook_events: Option<Events>,
}

/// `WebhookMethod` without its UNSPECIFIED.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Patch,
}

/// `WebhookEvents` without its UNSPECIFIED.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Events {
    Ended,
    Succeeded,
    Failed,
}

/// `NAME:VALUE`, spaces around the value trimmed.
fn header(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_owned(), value.trim().to_owned())),
        _ => Err(format!("{text:?} is not NAME:VALUE, e.g. \"Authorization: Bearer abc\"")),
    }
}

impl WebhookArgs {
    /// The webhook as the API takes it; `None` without `--webhook-url`.
    pub fn to_webhook(&self) -> Option<Webhook> {
        let url = self.webhook_url.clone()?;
        let method = match self.webhook_method {
            None => WebhookMethod::Unspecified,
            Some(Method::Post) => WebhookMethod::Post,
            Some(Method::Put) => WebhookMethod::Put,
            Some(Method::Patch) => WebhookMethod::Patch,
        };
        let events = match self.webhook_events {
            None => WebhookEvents::Unspecified,
            Some(Events::Ended) => WebhookEvents::Ended,
            Some(Events::Succeeded) => WebhookEvents::Succeeded,
            Some(Events::Failed) => WebhookEvents::Failed,
        };
        Some(Webhook {
            url,
            method: method as i32,
            headers: self.webhook_header.iter().cloned().collect(),
            events: events as i32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        webhook: WebhookArgs,
    }

    fn parse(args: &[&str]) -> Result<Option<Webhook>, clap::Error> {
        let args = std::iter::once("docconv").chain(args.iter().copied());
        Command::try_parse_from(args).map(|c| c.webhook.to_webhook())
    }

    #[test]
    fn each_flag_maps_to_its_field() {
        assert_eq!(parse(&[]).unwrap(), None);
        let webhook = parse(&[
            "--webhook-url",
            "https://example.com/hook",
            "--webhook-method",
            "put",
            "--webhook-header",
            "Authorization: Bearer abc",
            "--webhook-header",
            "X-Tenant:42",
            "--webhook-events",
            "failed",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(webhook.url, "https://example.com/hook");
        assert_eq!(webhook.method(), WebhookMethod::Put);
        assert_eq!(webhook.events(), WebhookEvents::Failed);
        assert_eq!(webhook.headers["Authorization"], "Bearer abc");
        assert_eq!(webhook.headers["X-Tenant"], "42");
        let plain = parse(&["--webhook-url", "https://example.com/"]).unwrap().unwrap();
        assert_eq!((plain.method(), plain.events()), (WebhookMethod::Unspecified, WebhookEvents::Unspecified));
    }

    #[test]
    fn headers_need_a_name_and_other_flags_need_a_url() {
        assert!(parse(&["--webhook-url", "https://example.com/", "--webhook-header", "novalue"]).is_err());
        assert!(parse(&["--webhook-url", "https://example.com/", "--webhook-header", ":x"]).is_err());
        assert!(parse(&["--webhook-events", "failed"]).is_err());
    }
}
