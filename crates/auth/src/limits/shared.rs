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

/// A replica's rows count while refreshed within this.
const STREAMS_FRESH_SECONDS: i64 = 30;
/// How often a replica refreshes its rows.
const STREAMS_REFRESH: Duration = Duration::from_secs(10);

/// Concurrent streams counted in the store, across replicas: each replica
/// keeps a count per key under its own id and refreshes it, so the streams of
/// a replica that died stop counting within half a minute.
#[derive(Clone)]
pub(crate) struct SharedStreams {
    pub(crate) store: Arc<dyn RateWindowStore>,
    pub(crate) replica: String,
}

impl SharedStreams {
    /// A replica's streams, refreshed on a task for the life of the process.
    pub(crate) fn start(store: Arc<dyn RateWindowStore>) -> Self {
        let replica = antwort_engine::ids::replica_id();
        let streams = Self { store, replica };
        let refresher = streams.clone();
        antwort_engine::tasks::spawn(async move {
            let mut ticks = tokio::time::interval(STREAMS_REFRESH);
            loop {
                ticks.tick().await;
                let now = unix_now();
                if let Err(error) = refresher
                    .store
                    .refresh_streams(&refresher.replica, now, now - STREAMS_FRESH_SECONDS)
                    .await
                {
                    tracing::debug!(%error, "cannot refresh this replica's stream counts");
                }
            }
        });
        streams
    }

    /// Counts a stream of `key` unless `max` are open; a store that cannot
    /// answer lets it through.
    pub(crate) async fn open(&self, key: &str, max: u32) -> bool {
        let now = unix_now();
        match self
            .store
            .open_stream(
                key,
                &self.replica,
                i64::from(max),
                now - STREAMS_FRESH_SECONDS,
                now,
            )
            .await
        {
            Ok(opened) => opened,
            Err(error) => {
                tracing::warn!(%error, "the shared stream limit cannot be read; letting the stream through");
                true
            }
        }
    }

    /// Gives a stream back, on a task (a slot is dropped where nothing can wait).
    pub(crate) fn close(&self, key: String) {
        let (store, replica) = (self.store.clone(), self.replica.clone());
        if tokio::runtime::Handle::try_current().is_ok() {
            antwort_engine::tasks::spawn(async move {
                if let Err(error) = store.close_stream(&key, &replica).await {
                    tracing::warn!(%error, "cannot give a stream back to the shared limit");
                }
            });
        }
    }
}

fn unix_now() -> i64 {
    i64::try_from(clock::unix_now()).unwrap_or(i64::MAX)
}
