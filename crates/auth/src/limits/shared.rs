//! Limits shared by the replicas of one database: fixed one-minute windows
//! per key, counted in the store (`rate_windows`), so that a key's requests
//! and tokens count the same whichever replica serves them. One upsert per
//! request and limit; a store that cannot answer lets the request through
//! (and says so in the log) rather than refuse everyone.

use std::sync::Arc;
use std::time::Duration;

use antwort_engine::clock;
use antwort_engine::store::RateWindowStore;

use super::BucketState;

/// The window every count belongs to.
const WINDOW_SECONDS: i64 = 60;

pub(crate) struct SharedMeter {
    pub(crate) store: Arc<dyn RateWindowStore>,
    pub(crate) limit: u32,
    /// `requests` or `tokens`: part of the stored key.
    pub(crate) kind: &'static str,
}

impl SharedMeter {
    fn window() -> (i64, Duration) {
        let now = i64::try_from(clock::unix_now()).unwrap_or(i64::MAX);
        let start = now - now.rem_euclid(WINDOW_SECONDS);
        let left = u64::try_from((start + WINDOW_SECONDS - now).max(1)).unwrap_or(1);
        (start, Duration::from_secs(left))
    }

    fn stored_key(&self, key: &str) -> String {
        // No NUL: PostgreSQL text cannot hold one.
        format!("{}:{key}", self.kind)
    }

    /// Adds `cost` to `key`'s window; refuses when that goes past the limit.
    /// A `cost` of 0 asks whether anything is left.
    pub(crate) async fn take(
        &self,
        key: &str,
        cost: u32,
    ) -> Result<BucketState, (BucketState, Duration)> {
        let (start, left) = Self::window();
        let used = match self
            .store
            .add_to_window(&self.stored_key(key), start, i64::from(cost))
            .await
        {
            Ok(used) => u32::try_from(used.max(0)).unwrap_or(u32::MAX),
            Err(error) => {
                tracing::warn!(%error, "the shared rate limit cannot be read; letting the request through");
                return Ok(BucketState {
                    limit: self.limit,
                    remaining: self.limit,
                    reset: left,
                });
            }
        };
        let state = BucketState {
            limit: self.limit,
            remaining: self.limit.saturating_sub(used),
            reset: left,
        };
        let over = if cost == 0 {
            used >= self.limit
        } else {
            used > self.limit
        };
        if over { Err((state, left)) } else { Ok(state) }
    }

    /// Charges `amount` to `key`'s window, on a task of its own (the caller is
    /// a stream that must not wait for the database).
    pub(crate) fn charge(&self, key: &str, amount: u64) {
        let store = self.store.clone();
        let key = self.stored_key(key);
        let (start, _) = Self::window();
        let amount = i64::try_from(amount).unwrap_or(i64::MAX);
        antwort_engine::tasks::spawn(async move {
            if let Err(error) = store.add_to_window(&key, start, amount).await {
                tracing::warn!(%error, "cannot charge tokens to the shared rate limit");
            }
        });
    }

    /// Forgets windows older than the one before this.
    pub(crate) fn prune(&self) {
        let store = self.store.clone();
        let (start, _) = Self::window();
        antwort_engine::tasks::spawn(async move {
            if let Err(error) = store.prune_windows(start - WINDOW_SECONDS).await {
                tracing::debug!(%error, "cannot prune old rate windows");
            }
        });
    }
}
