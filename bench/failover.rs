//! Scenario 6, failover: a cluster node killed (SIGKILL) with jobs
//! running, and how long those jobs take to run again and finish on the
//! other node, which the lease bounds.
//!
//! The two nodes have a job space of their own: a space's lease is set by
//! the first node to use it, and theirs is short. The other node is paused
//! (SIGSTOP) while the jobs are handed out, so that all go to the node
//! about to die and the survivor has idle workers when their leases run
//! out: what is timed is the failover, not a wait for a free worker.

use super::Bench;
use super::cluster::node;
use super::documents;
use super::peers::{self, Client};
use super::report::Report;
use super::service::Nats;
use super::stats::Samples;
use docconv::proto::v1::{GetJobRequest, JobState};
use std::time::{Duration, Instant, SystemTime};

/// The nodes' lease: a dead node's jobs move on after at most this long.
const LEASE_SECS: u64 = 2;

/// Workers of each node: every round kills one node with this many jobs
/// running.
const WORKERS: usize = 2;

/// The jobs' document: about a second of conversion alone, so still
/// running when its node is killed.
const PARAGRAPHS: usize = 1600;

/// How long the survivor stays paused before jobs are submitted: its
/// workers' requests for a job expire at the NATS server within five
/// seconds (an idle worker asks again that often).
const PULLS_EXPIRE: Duration = Duration::from_millis(6000);

/// Kills a node running jobs, and times them on the other; again with a
/// new node to kill each round.
pub async fn failover(bench: &Bench, nats: &Nats, report: &mut Report) -> Result<String, String> {
    let mut document =
        documents::write_large_docx(&bench.work.join("failover.docx"), PARAGRAPHS).map_err(|e| e.to_string())?;
    document.name = "failover.docx".into();
    let survivor = node(bench, nats, "failover-survivor", "failover", WORKERS, Some(LEASE_SECS))?;
    let mut victim = node(bench, nats, "failover-0", "failover", WORKERS, Some(LEASE_SECS))?;
    survivor.wait_ready().await?;
    let on_survivor = peers::connect(survivor.grpc).await?;
    let (mut to_running, mut to_end, mut own_run) = (Samples::default(), Samples::default(), Samples::default());
    let mut handover = Samples::default();
    for round in 0..bench.failover_rounds {
        if round > 0 {
            victim = node(bench, nats, &format!("failover-{round}"), "failover", WORKERS, Some(LEASE_SECS))?;
        }
        victim.wait_ready().await?;
        let mut on_victim = peers::connect(victim.grpc).await?;
        survivor.pause();
        tokio::time::sleep(PULLS_EXPIRE).await;
        // One job for each of the victim's workers, the only ones asking.
        let mut ids = Vec::new();
        for _ in 0..WORKERS {
            ids.push(peers::submit(&mut on_victim, &document).await?.id);
        }
        let first_starts = all_running(&on_victim, &ids).await;
        survivor.resume();
        let first_starts = first_starts?;
        let watches: Vec<_> = ids
            .iter()
            .map(|id| {
                let (mut client, id) = (on_survivor.clone(), id.clone());
                tokio::spawn(async move {
                    peers::watch(&mut client, &id, |job| job.state() == JobState::Running && job.attempts >= 2).await
                })
            })
            .collect();
        // The survivor answers again before the kill.
        on_survivor.clone().get_job(GetJobRequest { id: ids[0].clone() }).await.map_err(|e| e.to_string())?;
        let (killed, killed_at) = (Instant::now(), SystemTime::now());
        victim.kill();
        for (watch, first_start) in watches.into_iter().zip(first_starts) {
            let watched = watch.await.map_err(|e| e.to_string())??;
            let job = &watched.job;
            if job.state() != JobState::Succeeded {
                return Err(format!("a job of the killed node ended as {:?}: {:?}", job.state(), job.error));
            }
            // A job that ended before the kill ran once.
            if job.attempts < 2 {
                continue;
            }
            let rerun = watched.marked.ok_or("a moved job was never seen running again")?;
            let rerun = rerun.saturating_duration_since(killed);
            to_running.push_duration(rerun);
            // The lease began a moment before the job's first start was
            // written; from its end (so estimated) to running elsewhere.
            let lease_end = first_start + Duration::from_secs(LEASE_SECS);
            let after_kill = lease_end.duration_since(killed_at).unwrap_or_default();
            handover.push((rerun.as_secs_f64() - after_kill.as_secs_f64()) * 1000.0);
            to_end.push_duration(watched.ended.saturating_duration_since(killed));
            let timings = job.timings.unwrap_or_default();
            own_run.push((timings.load_ms + timings.export_ms + timings.store_ms) as f64);
        }
    }
    drop(victim);
    let moved = to_end.0.len();
    let median = |samples: &Samples| samples.median().unwrap_or(f64::NAN);
    let max = |samples: &Samples| samples.percentile(1.0).unwrap_or(f64::NAN);
    let lease_ms = (LEASE_SECS * 1000) as f64;
    let mut out = format!(
        "\n### Failover\n\nTwo cluster nodes of {WORKERS} workers with `--job-lease-secs {LEASE_SECS}`; {} \
         time(s), {WORKERS} jobs of a {PARAGRAPHS}-paragraph document are submitted to one node while the other \
         is paused (SIGSTOP), so that all run on the first; the other resumes, and the first is killed (SIGKILL) \
         as soon as all are running (it is started anew for the next round). Times are from the kill to what a \
         watcher on the other node sees; {moved} jobs moved:\n\n\
         | from the kill to | median | max | bound |\n|---|---|---|---|\n\
         | running again on the other node | {:.0} ms | {:.0} ms | the lease, {lease_ms:.0} ms |\n\
         | (from the lease's end, estimated from the first start) | {:.0} ms | {:.0} ms | |\n\
         | finished on the other node | {:.0} ms | {:.0} ms | the lease and the job's own conversion ({:.0} ms median) |\n",
        bench.failover_rounds,
        median(&to_running),
        max(&to_running),
        median(&handover),
        max(&handover),
        median(&to_end),
        max(&to_end),
        median(&own_run),
    );
    out.push_str(
        "\nA running job renews its lease every third of it; once its node is gone the NATS server hands it to \
         another node's worker when the lease runs out, at most one lease after the last renewal. Killed just \
         after its job started, before a first renewal, the node here leaves the longest wait: the whole lease. \
         So a dead node's work resumes elsewhere within one lease (`--job-lease-secs`, 30 s by default) and \
         finishes one conversion later; nothing is lost, and the jobs it had only queued were never its own.\n",
    );
    let worst = max(&to_running);
    report.target(
        "cluster",
        &format!("a killed node's running jobs run again on another node within 1.1× the lease ({LEASE_SECS} s)"),
        format!(
            "max {:.2} s (finished: median {:.2} s, max {:.2} s)",
            worst / 1000.0,
            median(&to_end) / 1000.0,
            max(&to_end) / 1000.0
        ),
        moved > 0 && worst <= 1.1 * lease_ms,
    );
    Ok(out)
}

/// Waits until every one of `ids` is running; returns when each started.
async fn all_running(client: &Client, ids: &[String]) -> Result<Vec<SystemTime>, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut starts = Vec::new();
        for id in ids {
            let job = client.clone().get_job(GetJobRequest { id: id.clone() }).await.map_err(|e| e.to_string())?;
            let job = job.into_inner();
            match job.state() {
                JobState::Running => starts.extend(job.start_time.and_then(|t| SystemTime::try_from(t).ok())),
                JobState::Queued => {}
                other => return Err(format!("a job ended as {other:?} before the kill")),
            }
        }
        let running = starts.len();
        if running == ids.len() {
            return Ok(starts);
        }
        if Instant::now() > deadline {
            return Err(format!("only {running} of {} jobs ever ran at once", ids.len()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
