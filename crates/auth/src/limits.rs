//! Rate limits per key and per tenant: requests per minute, tokens per minute
//! (counted from each response's usage once it is known) and concurrent
//! streams. Requests and tokens are GCRA buckets from `governor` in process,
//! or one-minute windows in the database that replicas share
//! ([`shared`]); streams are a count per key released when the stream ends,
//! in process or, shared, in the database per replica.
//!
//! Tokens are charged after the fact, so a request is admitted while any token
//! is left and its whole usage is then taken, down to an empty bucket (never
//! below: what one long answer overdraws is forgiven, as OpenAI's own estimate
//! is).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use antwort_engine::store::RateWindowStore;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::identity::Identity;

mod shared;
use shared::{SharedMeter, SharedStreams};

/// One level's limits (`auth.rate_limits.per_key` / `.per_tenant`); `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitSettings {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    pub concurrent_streams: Option<u32>,
}

/// Streams open per key of one level.
type OpenStreams = Arc<Mutex<HashMap<String, u32>>>;

type Bucket = DefaultKeyedRateLimiter<String, StateInformationMiddleware>;

fn bucket(per_minute: Option<u32>) -> Option<Bucket> {
    let per_minute = NonZeroU32::new(per_minute?)?;
    Some(
        governor::RateLimiter::keyed(Quota::per_minute(per_minute))
            .with_middleware::<StateInformationMiddleware>(),
    )
}

/// What one bucket says about a request, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketState {
    pub limit: u32,
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset: Duration,
}

/// A request the limits let through: what its buckets hold now, for the headers.
#[derive(Debug, Default)]
pub struct Admission {
    pub requests: Option<BucketState>,
    pub tokens: Option<BucketState>,
}

/// A request the limits refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `requests`, `tokens` or `concurrent streams`.
    pub limit: &'static str,
    /// `key` or `tenant`.
    pub level: &'static str,
    pub retry_after: Duration,
    pub requests: Option<BucketState>,
    pub tokens: Option<BucketState>,
}

/// One limit's counter: in process, or in the shared store.
enum Meter {
    Local(Bucket),
    Shared(SharedMeter),
}

impl Meter {
    fn new(
        per_minute: Option<u32>,
        shared: Option<&Arc<dyn RateWindowStore>>,
        kind: &'static str,
    ) -> Option<Self> {
        let limit = per_minute.filter(|n| *n > 0)?;
        Some(match shared {
            Some(store) => Meter::Shared(SharedMeter {
                store: store.clone(),
                limit,
                kind,
            }),
            None => Meter::Local(bucket(Some(limit))?),
        })
    }

    /// Takes one (requests), or checks that anything is left (tokens, whose
    /// cost is known later).
    async fn admit(
        &self,
        key: &String,
        peek: bool,
    ) -> Result<BucketState, (BucketState, Duration)> {
        match self {
            // A GCRA bucket cannot be read without taking: a peek takes one.
            Meter::Local(bucket) => take(bucket, key),
            Meter::Shared(meter) => meter.take(key, if peek { 0 } else { 1 }).await,
        }
    }

    fn charge(&self, key: &String, tokens: u64) {
        match self {
            Meter::Local(bucket) => charge_bucket(bucket, key, tokens),
            Meter::Shared(meter) => meter.charge(key, tokens),
        }
    }

    fn housekeeping(&self) {
        match self {
            Meter::Local(bucket) => bucket.retain_recent(),
            Meter::Shared(meter) => meter.prune(),
        }
    }
}

struct Level {
    name: &'static str,
    requests: Option<Meter>,
    tokens: Option<Meter>,
    max_streams: Option<u32>,
    streams: OpenStreams,
}

impl Level {
    fn new(
        name: &'static str,
        settings: LimitSettings,
        shared: Option<&Arc<dyn RateWindowStore>>,
    ) -> Self {
        Self {
            name,
            requests: Meter::new(settings.requests_per_minute, shared, "requests"),
            tokens: Meter::new(settings.tokens_per_minute, shared, "tokens"),
            max_streams: settings.concurrent_streams,
            streams: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// Every limit of the server.
pub struct RateLimits {
    levels: [Level; 2],
    /// Streams counted across replicas, when the limits are shared.
    shared_streams: Option<SharedStreams>,
    /// No request or token limit at all: admission is free.
    unlimited: bool,
    checks: std::sync::atomic::AtomicU64,
}

/// Buckets untouched for a while are dropped every this many checks, so keys
/// seen once do not stay in memory.
const RETAIN_EVERY: u64 = 4096;

impl RateLimits {
    /// Limits counted in this process.
    pub fn new(per_key: LimitSettings, per_tenant: LimitSettings) -> Self {
        Self::build(per_key, per_tenant, None)
    }

    /// Limits counted in `store`, shared with every replica that uses it.
    pub fn shared(
        per_key: LimitSettings,
        per_tenant: LimitSettings,
        store: Arc<dyn RateWindowStore>,
    ) -> Self {
        Self::build(per_key, per_tenant, Some(&store))
    }

    fn build(
        per_key: LimitSettings,
        per_tenant: LimitSettings,
        shared: Option<&Arc<dyn RateWindowStore>>,
    ) -> Self {
        let levels = [
            Level::new("key", per_key, shared),
            Level::new("tenant", per_tenant, shared),
        ];
        let unlimited = levels
            .iter()
            .all(|level| level.requests.is_none() && level.tokens.is_none());
        let counts_streams = levels.iter().any(|level| level.max_streams.is_some());
        let shared_streams = shared
            .filter(|_| counts_streams)
            .map(|store| SharedStreams::start(store.clone()));
        Self {
            levels,
            shared_streams,
            unlimited,
            checks: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn key(level: &Level, identity: &Identity) -> String {
        match level.name {
            // `key:`, `sub:` or `anonymous` for keys and subjects, `tenant:`
            // here: the levels never share a counter in a shared store.
            "key" => identity.limit_key(),
            _ => format!("tenant:{}", identity.tenant),
        }
    }

    /// Admits a request (taking one from each request bucket), or says which
    /// limit refuses it and for how long. A stream asks for its slot apart
    /// ([`Self::stream_slot`]): whether a request streams is in its body.
    pub async fn admit(&self, identity: &Identity) -> Result<Admission, Refusal> {
        if self.unlimited {
            return Ok(Admission::default());
        }
        self.housekeeping();
        let mut admission = Admission::default();
        for level in &self.levels {
            let key = Self::key(level, identity);
            let refuse = |limit, retry_after, admission: &Admission| Refusal {
                limit,
                level: level.name,
                retry_after,
                requests: admission.requests,
                tokens: admission.tokens,
            };
            if let Some(meter) = &level.requests {
                match meter.admit(&key, false).await {
                    Ok(state) => admission.requests = tighter(admission.requests, state),
                    Err((state, wait)) => {
                        admission.requests = Some(state);
                        return Err(refuse("requests", wait, &admission));
                    }
                }
            }
            if let Some(meter) = &level.tokens {
                // Admitted while a token is left; the usage is charged later.
                match meter.admit(&key, true).await {
                    Ok(state) => admission.tokens = tighter(admission.tokens, state),
                    Err((state, wait)) => {
                        admission.tokens = Some(state);
                        return Err(refuse("tokens", wait, &admission));
                    }
                }
            }
        }
        Ok(admission)
    }

    /// Holds a concurrent-stream slot for the life of the returned guard.
    pub async fn stream_slot(&self, identity: &Identity) -> Result<StreamSlot, Refusal> {
        let mut slot = StreamSlot { held: Vec::new() };
        for level in &self.levels {
            let Some(max) = level.max_streams else {
                continue;
            };
            let key = Self::key(level, identity);
            let opened = match &self.shared_streams {
                Some(shared) => {
                    let opened = shared.open(&key, max).await;
                    if opened {
                        slot.held.push(Held::Shared(shared.clone(), key));
                    }
                    opened
                }
                None => {
                    let mut streams = level.streams.lock().unwrap_or_else(|e| e.into_inner());
                    let open = streams.entry(key.clone()).or_insert(0);
                    let opened = *open < max;
                    if opened {
                        *open += 1;
                        slot.held.push(Held::Local(level.streams.clone(), key));
                    }
                    opened
                }
            };
            if !opened {
                // Dropping `slot` gives back what the earlier level took.
                return Err(Refusal {
                    limit: "concurrent streams",
                    level: level.name,
                    retry_after: Duration::from_secs(1),
                    requests: None,
                    tokens: None,
                });
            }
        }
        Ok(slot)
    }

    /// Charges a finished response's tokens to the token buckets.
    pub fn charge_tokens(&self, identity: &Identity, tokens: u64) {
        for level in &self.levels {
            if let Some(meter) = &level.tokens {
                meter.charge(&Self::key(level, identity), tokens);
            }
        }
    }

    /// Whether any limit counts tokens (so usage needs charging).
    pub fn counts_tokens(&self) -> bool {
        self.levels.iter().any(|level| level.tokens.is_some())
    }

    fn housekeeping(&self) {
        let n = self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % RETAIN_EVERY == RETAIN_EVERY - 1 {
            for level in &self.levels {
                for meter in [&level.requests, &level.tokens].into_iter().flatten() {
                    meter.housekeeping();
                }
            }
        }
    }
}

/// Charges `tokens` to a local bucket: one was taken at admission, the rest
/// in the largest pieces that fit, down to an empty bucket.
fn charge_bucket(bucket: &Bucket, key: &String, tokens: u64) {
    let mut left = tokens.saturating_sub(1);
    let mut n = u32::try_from(left).unwrap_or(u32::MAX);
    while let Some(cells) = NonZeroU32::new(n) {
        match bucket.check_key_n(key, cells) {
            Ok(Ok(_)) => {
                left -= u64::from(n);
                n = n.min(u32::try_from(left).unwrap_or(u32::MAX));
            }
            _ => n /= 2,
        }
    }
}

/// Takes one from `key`'s bucket: its state after, or its state and the wait.
fn take(bucket: &Bucket, key: &String) -> Result<BucketState, (BucketState, Duration)> {
    match bucket.check_key(key) {
        Ok(snapshot) => {
            let quota = snapshot.quota();
            let limit = quota.burst_size().get();
            let remaining = snapshot.remaining_burst_capacity().min(limit);
            Ok(BucketState {
                limit,
                remaining,
                reset: quota.replenish_interval() * (limit - remaining),
            })
        }
        Err(not_until) => {
            let quota = not_until.quota();
            let limit = quota.burst_size().get();
            let state = BucketState {
                limit,
                remaining: 0,
                reset: quota.replenish_interval() * limit,
            };
            Err((
                state,
                not_until.wait_time_from(DefaultClock::default().now()),
            ))
        }
    }
}

/// The state with less left, which is the one a client must heed.
fn tighter(current: Option<BucketState>, new: BucketState) -> Option<BucketState> {
    match current {
        Some(current) if current.remaining <= new.remaining => Some(current),
        _ => Some(new),
    }
}

/// A concurrent-stream slot, given back when dropped.
pub struct StreamSlot {
    held: Vec<Held>,
}

/// One level's count a slot holds.
enum Held {
    Local(OpenStreams, String),
    Shared(SharedStreams, String),
}

impl std::fmt::Debug for StreamSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSlot")
            .field("levels", &self.held.len())
            .finish()
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        for held in self.held.drain(..) {
            match held {
                Held::Local(streams, key) => {
                    let mut streams = streams.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(open) = streams.get_mut(&key) {
                        *open = open.saturating_sub(1);
                        if *open == 0 {
                            streams.remove(&key);
                        }
                    }
                }
                Held::Shared(shared, key) => shared.close(key),
            }
        }
    }
}

/// `x-ratelimit-reset-*` in OpenAI's style: `1s`, `6m0s`, `120ms`.
pub fn reset_text(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let seconds = duration.as_secs_f64();
    if seconds < 60.0 {
        let text = format!("{seconds:.3}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        return format!("{text}s");
    }
    let whole = duration.as_secs();
    format!("{}m{}s", whole / 60, whole % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Credential;
    use crate::permission::Permissions;

    fn identity(key: &str, tenant: &str) -> Identity {
        Identity {
            tenant: tenant.into(),
            subject: "s".into(),
            permissions: Permissions::user(),
            credential: Credential::ApiKey { key_id: key.into() },
        }
    }

    #[tokio::test]
    async fn requests_past_the_per_minute_limit_are_refused_with_a_wait() {
        let limits = RateLimits::new(
            LimitSettings {
                requests_per_minute: Some(2),
                ..LimitSettings::default()
            },
            LimitSettings::default(),
        );
        let alice = identity("a", "t");
        let first = limits.admit(&alice).await.unwrap();
        assert_eq!(first.requests.unwrap().remaining, 1);
        limits.admit(&alice).await.unwrap();
        let refused = limits.admit(&alice).await.unwrap_err();
        assert_eq!((refused.limit, refused.level), ("requests", "key"));
        assert!(refused.retry_after > Duration::from_secs(20), "{refused:?}");
        // Another key of the same tenant has its own bucket.
        limits.admit(&identity("b", "t")).await.unwrap();
    }

    #[tokio::test]
    async fn the_tenant_limit_counts_every_key_of_the_tenant() {
        let limits = RateLimits::new(
            LimitSettings::default(),
            LimitSettings {
                requests_per_minute: Some(1),
                ..LimitSettings::default()
            },
        );
        limits.admit(&identity("a", "t")).await.unwrap();
        let refused = limits.admit(&identity("b", "t")).await.unwrap_err();
        assert_eq!(refused.level, "tenant");
        limits.admit(&identity("c", "other")).await.unwrap();
    }

    #[tokio::test]
    async fn used_tokens_empty_the_bucket_and_the_next_request_waits() {
        let limits = RateLimits::new(
            LimitSettings {
                tokens_per_minute: Some(100),
                ..LimitSettings::default()
            },
            LimitSettings::default(),
        );
        let alice = identity("a", "t");
        limits.admit(&alice).await.unwrap();
        limits.charge_tokens(&alice, 5000);
        let refused = limits.admit(&alice).await.unwrap_err();
        assert_eq!(refused.limit, "tokens");
        assert_eq!(refused.tokens.unwrap().remaining, 0);
    }

    #[tokio::test]
    async fn a_stream_slot_is_given_back_when_its_stream_ends() {
        let limits = RateLimits::new(
            LimitSettings {
                concurrent_streams: Some(1),
                ..LimitSettings::default()
            },
            LimitSettings::default(),
        );
        let alice = identity("a", "t");
        let open = limits.stream_slot(&alice).await.unwrap();
        assert_eq!(
            limits.stream_slot(&alice).await.unwrap_err().limit,
            "concurrent streams"
        );
        // Non-streamed requests need no slot.
        limits.admit(&alice).await.unwrap();
        drop(open);
        limits.stream_slot(&alice).await.unwrap();
    }

    #[test]
    fn resets_read_as_openai_writes_them() {
        assert_eq!(reset_text(Duration::from_millis(120)), "120ms");
        assert_eq!(reset_text(Duration::from_millis(1500)), "1.5s");
        assert_eq!(reset_text(Duration::from_secs(360)), "6m0s");
    }
}
