//! Job-store calls tried again while the store is unavailable.
//!
//! A shared job store (NATS JetStream) stops answering for a few seconds
//! while its servers elect a new leader after one is lost. A job that was
//! converted meanwhile must not fail for that: keeping its output, checking
//! out its inputs and recording its end wait for the store instead, for a
//! while.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// How long the service waits for an unavailable store before handing a
/// job back to the queue: several leader elections' worth.
pub const STORE_PATIENCE: Duration = Duration::from_secs(60);

/// The first pause between tries; it doubles up to `LONGEST_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LONGEST_PAUSE: Duration = Duration::from_secs(4);

/// Runs `call` until it succeeds, fails for another reason than
/// `unavailable` says, or `patience` has passed; returns its last result.
pub async fn while_unavailable<T, E: Display, F: Future<Output = Result<T, E>>>(
    patience: Duration,
    doing: &str,
    unavailable: impl Fn(&E) -> bool,
    mut call: impl FnMut() -> F,
) -> Result<T, E> {
    let give_up = Instant::now() + patience;
    let mut pause = FIRST_PAUSE;
    loop {
        match call().await {
            Err(e) if unavailable(&e) && Instant::now() + pause < give_up => {
                tracing::warn!("{doing}: {e}; trying again in {} ms", pause.as_millis());
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, PartialEq)]
    enum Trouble {
        Unavailable,
        Broken,
    }

    impl Display for Trouble {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    /// A call that gives each of `answers` in turn, then succeeds.
    async fn tried(patience: Duration, answers: Vec<Trouble>) -> (Result<u32, Trouble>, u32) {
        let calls = AtomicU32::new(0);
        let answers = std::sync::Mutex::new(answers.into_iter());
        let result = while_unavailable(
            patience,
            "testing",
            |e| *e == Trouble::Unavailable,
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                match answers.lock().unwrap().next() {
                    Some(trouble) => Err(trouble),
                    None => Ok(n),
                }
            },
        )
        .await;
        (result, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn an_unavailable_store_is_asked_again_until_it_answers() {
        let answers = vec![Trouble::Unavailable, Trouble::Unavailable];
        assert_eq!(tried(Duration::from_secs(10), answers).await, (Ok(3), 3));
    }

    #[tokio::test]
    async fn other_errors_are_returned_at_once() {
        let answers = vec![Trouble::Broken, Trouble::Unavailable];
        assert_eq!(tried(Duration::from_secs(10), answers).await, (Err(Trouble::Broken), 1));
    }

    #[tokio::test]
    async fn patience_runs_out() {
        // A pause of 250 ms, then one of 500 ms would pass 600 ms: two calls.
        let answers = (0..10).map(|_| Trouble::Unavailable).collect();
        assert_eq!(tried(Duration::from_millis(600), answers).await, (Err(Trouble::Unavailable), 2));
    }
}
