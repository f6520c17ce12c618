//! The converters a gateway calls. One URL gives one channel. Several
//! (converters of one cluster, which share their jobs) give a balanced
//! channel whose members are the converters that answer their health
//! checks: one that dies or stops is left out within a check, and taken
//! back when it serves again, so calls go to converters that can answer.

use std::time::Duration;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// How often each converter's health is asked.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How long a health answer may take before the converter counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A channel to `endpoints`: lazy for one, balanced over the healthy ones
/// for several (the checks run as long as the channel's users do).
pub fn channel(mut endpoints: Vec<Endpoint>) -> Channel {
    if endpoints.len() == 1 {
        return endpoints.remove(0).connect_lazy();
    }
    let (channel, changes) = Channel::balance_channel::<usize>(endpoints.len());
    // Every converter is a member until a check says otherwise, so the
    // first calls need not wait for one.
    for (key, endpoint) in endpoints.iter().enumerate() {
        let _ = changes.try_send(Change::Insert(key, endpoint.clone()));
    }
    tokio::spawn(check(endpoints, changes));
    channel
}

/// Keeps the balanced channel's members to the converters that serve.
/// One that does not is left out only while another serves: with none
/// serving, calls had better reach one and say why they fail.
async fn check(endpoints: Vec<Endpoint>, changes: tokio::sync::mpsc::Sender<Change<usize, Endpoint>>) {
    let clients: Vec<HealthClient<Channel>> =
        endpoints.iter().map(|endpoint| HealthClient::new(endpoint.connect_lazy())).collect();
    let mut members = vec![true; endpoints.len()];
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    loop {
        ticks.tick().await;
        // All at once: one converter that hangs must not delay noticing
        // the others.
        let serving = futures_util::future::join_all(clients.iter().cloned().map(serves)).await;
        let any = serving.iter().any(|&s| s);
        for (key, endpoint) in endpoints.iter().enumerate() {
            let wanted = serving[key] || !any;
            if wanted == members[key] {
                continue;
            }
            let change = if wanted { Change::Insert(key, endpoint.clone()) } else { Change::Remove(key) };
            if changes.send(change).await.is_err() {
                // The channel is gone: nobody calls any more.
                return;
            }
            members[key] = wanted;
            match wanted {
                true => tracing::info!(converter = %endpoint.uri(), "converter serves again; calling it"),
                false => tracing::warn!(converter = %endpoint.uri(), "converter does not serve; leaving it out"),
            }
        }
    }
}

async fn serves(mut client: HealthClient<Channel>) -> bool {
    // The converter's overall status: serving once its workers are warm,
    // not while it is out of disk space or stopping.
    let request = HealthCheckRequest { service: String::new() };
    match tokio::time::timeout(CHECK_TIMEOUT, client.check(request)).await {
        Ok(Ok(answer)) => answer.into_inner().status == ServingStatus::Serving as i32,
        _ => false,
    }
}
