//! The one retry policy: exponential backoff with a cap, used by the engine
//! for retryable per-object export failures and by connectors for transient
//! connection failures (server busy, connection reset, throttling).

use std::future::Future;
use std::time::Duration;

/// How often and how patiently to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (1: no retry).
    pub attempts: u32,
    /// The wait before the first retry; each later wait doubles.
    pub first_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(20);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait before retry number `retry`: the server's own wait when it
    /// gave one (`Retry-After`, capped by `max_delay`), otherwise the
    /// backoff delay with jitter (between half and all of it), so that
    /// clients throttled together do not all come back together.
    pub fn wait(&self, retry: u32, hint: Option<Duration>) -> Duration {
        match hint {
            Some(w) => w.min(self.max_delay),
            None => jittered(self.delay(retry)),
        }
    }

    /// Runs `op` until it succeeds, fails with an error `retryable` rejects,
    /// or the attempts are used up; the last error is returned. `what` names
    /// the operation in the log line of each retry. A server's own wait
    /// (`Retry-After`) is honoured through `wait_hint`, capped by `max_delay`.
    pub async fn run<T, E, F, Fut>(
        &self,
        what: &str,
        mut op: F,
        retryable: impl Fn(&E) -> bool,
        wait_hint: impl Fn(&E) -> Option<Duration>,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < self.attempts && retryable(&e) => {
                    let wait = self.wait(attempt, wait_hint(&e));
                    tracing::warn!(
                        "{what} failed (attempt {attempt} of {}), retrying in {} ms: {e}",
                        self.attempts,
                        wait.as_millis()
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// `delay` scaled by a random factor between 0.5 and 1.
fn jittered(delay: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    // Each RandomState has fresh keys: hashing nothing gives a random number.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    delay.mul_f64(0.5 + (random % 1024) as f64 / 2048.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn delays_double_up_to_the_cap() {
        let p = RetryPolicy {
            attempts: 10,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        let waits: Vec<u128> = (1..=5).map(|r| p.delay(r).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500]);
    }

    #[test]
    fn waits_honour_the_server_and_jitter_the_backoff() {
        let p = RetryPolicy {
            attempts: 10,
            first_delay: Duration::from_millis(1000),
            max_delay: Duration::from_secs(60),
        };
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(600))),
            Duration::from_secs(60)
        );
        let waits: std::collections::BTreeSet<u128> =
            (0..20).map(|_| p.wait(2, None).as_millis()).collect();
        assert!(waits.iter().all(|w| (1000..=2000).contains(w)), "{waits:?}");
        assert!(waits.len() > 1, "the backoff is jittered: {waits:?}");
    }

    #[tokio::test]
    async fn retries_only_what_can_be_retried_and_stops_at_the_limit() {
        let p = RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
        let calls = Cell::new(0);
        let r: Result<(), String> = p
            .run(
                "op",
                || {
                    calls.set(calls.get() + 1);
                    async { Err("busy".to_string()) }
                },
                |e| e == "busy",
                |_| None,
            )
            .await;
        assert_eq!((r, calls.get()), (Err("busy".into()), 3));
        calls.set(0);
        let r: Result<(), String> = p
            .run(
                "op",
                || {
                    calls.set(calls.get() + 1);
                    async { Err("denied".to_string()) }
                },
                |e| e == "busy",
                |_| None,
            )
            .await;
        assert_eq!((r, calls.get()), (Err("denied".into()), 1));
        calls.set(0);
        let r = p
            .run(
                "op",
                || {
                    calls.set(calls.get() + 1);
                    let n = calls.get();
                    async move {
                        if n < 2 {
                            Err("busy".to_string())
                        } else {
                            Ok(n)
                        }
                    }
                },
                |e| e == "busy",
                |_| None,
            )
            .await;
        assert_eq!(r, Ok(2));
    }
}
