//! Open MCP sessions, kept for reuse: one per server and set of headers (the
//! key is a keyed hash of the target and the header values, so that requests
//! with different credentials never share a session, and no secret sits in
//! the map in plain text). A session unused for the idle timeout is closed, and
//! the pool never holds more than its maximum. Calls on one session run
//! concurrently: rmcp's `Peer` is cloneable and matches answers to requests.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use antwort_engine::clock;
use tokio::time::Instant;

use antwort_engine::mcp::McpError;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::ClientConfig;
use rmcp::service::RunningService;
use rmcp::{ClientCacheConfig, Peer, RoleClient};

use crate::settings::McpTransport;

/// An initialized MCP session.
pub(crate) struct Session {
    service: RunningService<RoleClient, ClientConfig>,
    /// The transport it speaks, remembered so that a reconnect skips the
    /// Streamable HTTP attempt when the server turned out to be SSE only.
    pub(crate) transport: McpTransport,
    /// The OAuth token it sends, so that a renewed token opens a new session.
    pub(crate) token: Option<String>,
}

impl Session {
    /// Wraps an initialized service. rmcp's own response cache is turned off:
    /// the gateway caches what it means to (configured servers' tool lists, for
    /// their TTL), and a stale list that rmcp serves when a request fails would
    /// hide a dead connection from the reconnect logic.
    pub(crate) async fn open(
        service: RunningService<RoleClient, ClientConfig>,
        transport: McpTransport,
        token: Option<String>,
    ) -> Self {
        service
            .peer()
            .set_response_cache_config(ClientCacheConfig::disabled())
            .await;
        tracing::debug!(?transport, "MCP session initialized");
        Self {
            service,
            transport,
            token,
        }
    }

    pub(crate) fn peer(&self) -> Peer<RoleClient> {
        self.service.peer().clone()
    }

    fn is_open(&self) -> bool {
        !self.service.is_closed() && !self.service.peer().is_transport_closed()
    }
}

/// Identifies a server and the headers sent to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SessionKey(u64, u64);

/// A session handed out for one operation.
pub(crate) struct Lease {
    pub(crate) session: Arc<Session>,
    /// Opened for this operation (so a failure is not a stale connection).
    pub(crate) fresh: bool,
}

pub(crate) struct SessionPool {
    slots: Mutex<HashMap<SessionKey, Arc<Slot>>>,
    idle_timeout: Duration,
    max_sessions: usize,
    /// Two independently keyed hashers: 128 bits that nobody outside the
    /// process can aim a collision at.
    hashers: (RandomState, RandomState),
}

struct Slot {
    last_used: Mutex<Instant>,
    /// Held while connecting, so that concurrent first calls share one
    /// handshake.
    state: tokio::sync::Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    session: Option<Arc<Session>>,
    transport: Option<McpTransport>,
}

impl Slot {
    fn last_used(&self) -> Instant {
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl SessionPool {
    pub(crate) fn new(idle_timeout: Duration, max_sessions: usize) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            idle_timeout,
            max_sessions: max_sessions.max(1),
            hashers: (RandomState::new(), RandomState::new()),
        }
    }

    /// The key of `target` (a URL, or a configured server's name) with
    /// `headers`.
    pub(crate) fn key(
        &self,
        target: &str,
        headers: &HashMap<HeaderName, HeaderValue>,
    ) -> SessionKey {
        let mut pairs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect();
        pairs.sort_unstable();
        let hash = |state: &RandomState| {
            let mut hasher = state.build_hasher();
            target.hash(&mut hasher);
            pairs.hash(&mut hasher);
            hasher.finish()
        };
        SessionKey(hash(&self.hashers.0), hash(&self.hashers.1))
    }

    /// The open session under `key` if it is still usable, or a new one from
    /// `connect` (which is told the transport the last session used).
    pub(crate) async fn lease<F, Fut>(
        &self,
        key: &SessionKey,
        usable: impl Fn(&Session) -> bool,
        connect: F,
    ) -> Result<Lease, McpError>
    where
        F: FnOnce(Option<McpTransport>) -> Fut,
        Fut: Future<Output = Result<Session, McpError>>,
    {
        let slot = self.slot(key);
        let mut state = slot.state.lock().await;
        if let Some(session) = &state.session {
            if session.is_open() && usable(session) {
                return Ok(Lease {
                    session: session.clone(),
                    fresh: false,
                });
            }
            state.session = None;
        }
        let session = Arc::new(connect(state.transport).await?);
        state.transport = Some(session.transport);
        state.session = Some(session.clone());
        Ok(Lease {
            session,
            fresh: true,
        })
    }

    /// Stops handing out `session` (its connection failed or its token was
    /// refused); operations still using it finish on their own.
    pub(crate) async fn discard(&self, key: &SessionKey, session: &Arc<Session>) {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned();
        if let Some(slot) = slot {
            let mut state = slot.state.lock().await;
            if state
                .session
                .as_ref()
                .is_some_and(|current| Arc::ptr_eq(current, session))
            {
                state.session = None;
            }
        }
    }

    /// The slot of `key`, marked as used now. Closes idle sessions and, when the
    /// pool is full, the least recently used one: sweeping here, on use, needs
    /// no background task.
    fn slot(&self, key: &SessionKey) -> Arc<Slot> {
        let now = clock::now();
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let before = slots.len();
        slots
            .retain(|k, slot| k == key || now.duration_since(slot.last_used()) < self.idle_timeout);
        if !slots.contains_key(key) && slots.len() >= self.max_sessions {
            let oldest = slots
                .iter()
                .min_by_key(|(_, slot)| slot.last_used())
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                slots.remove(&oldest);
            }
        }
        if slots.len() < before {
            tracing::debug!(closed = before - slots.len(), "closed idle MCP sessions");
        }
        let slot = slots
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    last_used: Mutex::new(now),
                    state: tokio::sync::Mutex::new(SlotState::default()),
                })
            })
            .clone();
        *slot
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = now;
        slot
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HashMap<HeaderName, HeaderValue> {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn keys_depend_on_target_and_header_values() {
        let pool = SessionPool::new(Duration::from_secs(60), 10);
        let a = pool.key("http://a/mcp", &headers(&[("authorization", "Bearer 1")]));
        let same = pool.key("http://a/mcp", &headers(&[("authorization", "Bearer 1")]));
        let other_token = pool.key("http://a/mcp", &headers(&[("authorization", "Bearer 2")]));
        let other_url = pool.key("http://b/mcp", &headers(&[("authorization", "Bearer 1")]));
        assert_eq!(a, same);
        assert_ne!(a, other_token);
        assert_ne!(a, other_url);
        let two = pool.key("t", &headers(&[("x-a", "1"), ("x-b", "2")]));
        let two_again = pool.key("t", &headers(&[("x-b", "2"), ("x-a", "1")]));
        assert_eq!(two, two_again);
    }

    #[test]
    fn the_pool_is_bounded() {
        let pool = SessionPool::new(Duration::from_secs(60), 2);
        for target in ["a", "b", "c", "d"] {
            pool.slot(&pool.key(target, &HashMap::new()));
        }
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn idle_slots_are_swept() {
        let pool = SessionPool::new(Duration::ZERO, 10);
        pool.slot(&pool.key("a", &HashMap::new()));
        pool.slot(&pool.key("b", &HashMap::new()));
        assert_eq!(pool.len(), 1);
    }
}
