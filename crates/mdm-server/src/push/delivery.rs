//! What the APNs and FCM clients share: how many requests may be in flight,
//! how long one may take, and the in-process retry loop for transient
//! failures (429, 5xx, connection trouble) before the push is handed back
//! to the job queue as [`PushOutcome::Retry`].

use mdm_core::push::PushOutcome;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Limits and retry policy of one provider client.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Requests in flight at once, over all callers of the client.
    pub max_in_flight: usize,
    /// Connect and request timeout.
    pub timeout: Duration,
    /// Retries in process after the first attempt (0: none).
    pub retries: u32,
    /// First back-off; doubled per retry, with up to 25% jitter.
    pub backoff: Duration,
    /// Longest wait worth spending in process: a provider that asks for
    /// more (Retry-After, FCM quota) gets the push back through the queue.
    pub max_wait: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            max_in_flight: 64,
            timeout: Duration::from_secs(10),
            retries: 2,
            backoff: Duration::from_millis(200),
            max_wait: Duration::from_secs(5),
        }
    }
}

impl Delivery {
    /// The back-off before retry number `attempt` (0 for the first).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.backoff.saturating_mul(1u32 << attempt.min(16));
        let mut byte = [0u8; 1];
        let jitter = match getrandom::fill(&mut byte) {
            Ok(()) => exp.mul_f64(f64::from(byte[0]) / 1024.0),
            Err(_) => Duration::ZERO,
        };
        exp + jitter
    }
}

/// The answer of one attempt.
pub(crate) enum Attempt {
    /// Final: no retry can change it.
    Done(PushOutcome),
    /// Temporary; worth another attempt after at least `wait_at_least`.
    /// `in_process: false` sends it straight back to the queue.
    Transient {
        reason: String,
        wait_at_least: Option<Duration>,
        in_process: bool,
    },
}

/// Runs `attempt` until it is done, retrying transient failures with
/// back-off while the policy allows, then answers `Retry` with the time
/// before which the queue should not try again.
pub(crate) async fn retrying<F, Fut>(delivery: &Delivery, mut attempt: F) -> PushOutcome
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt>,
{
    let mut n = 0;
    loop {
        match attempt().await {
            Attempt::Done(outcome) => return outcome,
            Attempt::Transient {
                reason,
                wait_at_least,
                in_process,
            } => {
                let wait = delivery.backoff(n).max(wait_at_least.unwrap_or_default());
                if !in_process || n >= delivery.retries || wait > delivery.max_wait {
                    return PushOutcome::Retry {
                        reason,
                        retry_after: Some(OffsetDateTime::now_utc() + wait),
                    };
                }
                tracing::debug!(%reason, attempt = n, wait_ms = wait.as_millis() as u64, "push: retrying");
                tokio::time::sleep(wait).await;
                n += 1;
            }
        }
    }
}

/// The in-flight bound of one client.
#[derive(Clone)]
pub(crate) struct InFlight(Arc<Semaphore>);

impl InFlight {
    pub(crate) fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max.max(1))))
    }

    /// A permit, or `None` once the client is shut down (never closed today).
    pub(crate) async fn acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.0.acquire().await.ok()
    }
}

/// Runs one future per item with at most `max_in_flight` running (the
/// client's semaphore does the bounding), answering in input order.
pub(crate) async fn each<T, F, Fut>(items: &[T], f: F) -> Vec<PushOutcome>
where
    T: Clone + Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = PushOutcome> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, item) in items.iter().enumerate() {
        let fut = f(item.clone());
        set.spawn(async move { (i, fut.await) });
    }
    let mut out: Vec<Option<PushOutcome>> = vec![None; items.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, outcome)) = joined {
            out[i] = Some(outcome);
        }
    }
    out.into_iter()
        .map(|o| {
            o.unwrap_or_else(|| PushOutcome::Retry {
                reason: "push task failed".into(),
                retry_after: None,
            })
        })
        .collect()
}
