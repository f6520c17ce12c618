//! Webhooks: an HTTP request sent when a job ends, so its caller need not
//! watch or poll.
//!
//! - `spec.rs` checks a submitted webhook before its job is queued;
//! - `policy.rs` is what webhooks may reach: the operator's hosts, and the
//!   address ranges refused unless allowed (SSRF);
//! - `courier.rs` is this node's share of delivery, over the backend's
//!   deliveries queue: at least once, retried with backoff, its state kept
//!   in the job (`Job.webhook`);
//! - `send.rs` makes one request, to vetted addresses only;
//! - `body.rs` is what it says, `sign.rs` its signature.
//!
//! The hub queues a delivery before it records an end that a webhook
//! wants (`Jobs::end`): a crash between the two leaves a delivery that
//! waits for the end (recorded when the job runs again), a crash before
//! leaves neither.

mod body;
mod courier;
mod policy;
mod send;
mod sign;
mod spec;

pub use courier::Courier;
pub use policy::{Cidr, HostPattern, Policy};
pub use send::Sender;
pub use sign::Secret;
pub use spec::check;

use docconv::proto::v1::{JobState, WebhookEvents, WebhookState, WebhookStatus};

/// Whether a webhook listening for `events` is sent for a job that ended
/// in `state`.
pub fn wanted(events: WebhookEvents, state: JobState) -> bool {
    match events {
        WebhookEvents::Unspecified | WebhookEvents::Ended => state.is_terminal(),
        WebhookEvents::Succeeded => state == JobState::Succeeded,
        WebhookEvents::Failed => state == JobState::Failed,
    }
}

/// The status of a new job's webhook: pending, with the delivery id every
/// attempt will carry.
pub fn pending() -> WebhookStatus {
    let mut status = WebhookStatus { delivery_id: docconv::ids::new_id(), ..WebhookStatus::default() };
    status.set_state(WebhookState::Pending);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_choose_the_ends_that_are_sent() {
        use JobState::*;
        let sent = |events: WebhookEvents| -> Vec<JobState> {
            [Queued, Running, Succeeded, Failed, Cancelled].into_iter().filter(|&s| wanted(events, s)).collect()
        };
        assert_eq!(sent(WebhookEvents::Unspecified), [Succeeded, Failed, Cancelled]);
        assert_eq!(sent(WebhookEvents::Ended), [Succeeded, Failed, Cancelled]);
        assert_eq!(sent(WebhookEvents::Succeeded), [Succeeded]);
        assert_eq!(sent(WebhookEvents::Failed), [Failed]);
        assert_eq!(pending().state(), WebhookState::Pending);
        assert_ne!(pending().delivery_id, pending().delivery_id);
    }
}
