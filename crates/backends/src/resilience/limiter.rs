//! A per-backend cap on generations at once, with a bounded queue: a request
//! over the cap waits for a slot, at most `queue_timeout`, and only while
//! fewer than `max_queue` others wait; past that it is refused at once (503
//! with `Retry-After`), so that a slow backend never gathers an unbounded pile
//! of waiting requests. A slot is held until the generation's stream ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use antwort_engine::BackendError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Limiter {
    slots: Option<Arc<Semaphore>>,
    max_concurrency: usize,
    max_queue: usize,
    queue_timeout: Duration,
    waiting: AtomicUsize,
}

/// Counts a waiting request for as long as it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How long a refused client is told to wait: a slot frees when some
/// generation ends, usually within seconds.
const REFUSED_RETRY_AFTER: Duration = Duration::from_secs(1);

impl Limiter {
    /// `max_concurrency` 0 is no cap.
    pub fn new(max_concurrency: usize, max_queue: usize, queue_timeout: Duration) -> Self {
        Self {
            slots: (max_concurrency > 0).then(|| Arc::new(Semaphore::new(max_concurrency))),
            max_concurrency,
            max_queue,
            queue_timeout,
            waiting: AtomicUsize::new(0),
        }
    }

    /// A slot, once one is free; `None` without a cap.
    pub async fn acquire(&self) -> Result<Option<OwnedSemaphorePermit>, BackendError> {
        let Some(slots) = &self.slots else {
            return Ok(None);
        };
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            return Ok(Some(permit));
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(BackendError::overloaded(
                format!(
                    "{} generations are running and {} more are waiting",
                    self.max_concurrency, self.max_queue
                ),
                Some(REFUSED_RETRY_AFTER),
            ));
        }
        let _waiting = Waiting(&self.waiting);
        match tokio::time::timeout(self.queue_timeout, slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            // The semaphore is never closed; a closed one is as good as full.
            Ok(Err(_)) | Err(_) => Err(BackendError::overloaded(
                format!(
                    "no generation slot freed within {:?} ({} running)",
                    self.queue_timeout, self.max_concurrency
                ),
                Some(REFUSED_RETRY_AFTER),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn over_the_cap_requests_wait_in_a_bounded_queue() {
        let limiter = Arc::new(Limiter::new(1, 1, Duration::from_secs(10)));
        let running = limiter.acquire().await.unwrap().unwrap();
        let queued = {
            let limiter = limiter.clone();
            antwort_engine::tasks::spawn(
                async move { limiter.acquire().await.map(|p| p.is_some()) },
            )
        };
        tokio::task::yield_now().await;
        let refused = limiter.acquire().await.err().unwrap();
        assert_eq!(refused.retry_after(), Some(REFUSED_RETRY_AFTER));
        drop(running);
        assert!(
            queued.await.unwrap().unwrap(),
            "the queued one got the slot"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_queue_timeout_is_refused() {
        let limiter = Limiter::new(1, 4, Duration::from_secs(2));
        let _running = limiter.acquire().await.unwrap();
        let error = limiter.acquire().await.err().unwrap();
        assert!(error.to_string().contains("within 2s"), "{error}");
        assert_eq!(limiter.waiting.load(Ordering::SeqCst), 0);
        assert!(
            Limiter::new(0, 0, Duration::ZERO)
                .acquire()
                .await
                .unwrap()
                .is_none()
        );
    }
}
