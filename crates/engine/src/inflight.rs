//! The responses generating right now, so that something outside a response's
//! loop can stop it: a `DELETE` of a stored response still in progress
//! ([`Inflight::stop_for_delete`]), and shutdown at the end of its drain
//! ([`Inflight::shut_down`]). A stopped loop ends the response as `failed`, with
//! the output it had, in the one event grammar: every stream still gets its
//! terminal event, and a stored response is saved (unless it was deleted).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use antwort_api::{ApiError, ErrorCode};
use tokio_util::sync::CancellationToken;

use crate::store::Scope;

/// Why a response's loop was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The gateway is shutting down and its drain time is up: the response
    /// ends failed, and is saved as such when stored.
    Shutdown,
    /// Its client deleted it: it ends failed and is not saved.
    Deleted,
    /// Its client cancelled it ([`Cancel`]): it ends `cancelled`, and is saved
    /// as such when stored.
    Cancelled,
}

impl Stop {
    pub(crate) fn error(self) -> ApiError {
        match self {
            Stop::Shutdown => ApiError::new(
                ErrorCode::ShuttingDown,
                "The gateway shut down before the response finished; it ended with the output it had.",
            ),
            Stop::Deleted => ApiError::new(
                ErrorCode::NotFound,
                "The response was deleted while it was being generated.",
            ),
            Stop::Cancelled => ApiError::new(
                ErrorCode::Cancelled,
                "The response was cancelled before it began.",
            ),
        }
    }
}

type Key = (String, String);

/// A handle its holder cancels a response with (a WebSocket's
/// `response.cancel`), made before the response is, so that a cancel that
/// arrives while the backend is being asked still counts.
#[derive(Debug, Clone, Default)]
pub struct Cancel(CancellationToken);

impl Cancel {
    pub fn cancel(&self) {
        self.0.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

struct Entry {
    /// Who started it: only a scope that sees it may stop it.
    scope: Scope,
    deleted: CancellationToken,
    ended: CancellationToken,
}

/// The registry of responses in progress in this process.
#[derive(Default)]
pub(crate) struct Inflight {
    runs: Mutex<HashMap<Key, Entry>>,
    shutdown: CancellationToken,
}

impl Inflight {
    /// Registers a response for as long as the returned handle lives. Only a
    /// stored response can be deleted (an unstored one is nobody else's to name).
    pub(crate) fn register(
        self: &Arc<Self>,
        scope: &Scope,
        id: &str,
        stored: bool,
        cancel: Option<Cancel>,
    ) -> Running {
        let deleted = CancellationToken::new();
        let ended = CancellationToken::new();
        let key = (scope.tenant.clone(), id.to_owned());
        if stored {
            let entry = Entry {
                scope: scope.clone(),
                deleted: deleted.clone(),
                ended: ended.clone(),
            };
            self.lock().insert(key.clone(), entry);
        }
        Running {
            registry: Arc::clone(self),
            key: stored.then_some(key),
            deleted,
            ended,
            shutdown: self.shutdown.clone(),
            cancelled: cancel.unwrap_or_default().0,
        }
    }

    /// Stops stored response `id` if it is in progress here, and waits until its
    /// loop has ended (so that it can no longer save). Returns whether it was.
    pub(crate) async fn stop_for_delete(&self, scope: &Scope, id: &str) -> bool {
        let ended = {
            let runs = self.lock();
            let Some(entry) = runs
                .get(&(scope.tenant.clone(), id.to_owned()))
                .filter(|entry| scope.sees(&entry.scope))
            else {
                return false;
            };
            entry.deleted.cancel();
            entry.ended.clone()
        };
        ended.cancelled().await;
        true
    }

    /// Stops every response in progress: each ends failed, with its terminal
    /// event, and the stored ones are saved.
    pub(crate) fn shut_down(&self) {
        self.shutdown.cancel();
    }

    /// How many stored responses are in progress.
    pub(crate) fn stored_in_progress(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        // The map stays consistent under a panic (one insert or remove).
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A response's registration, held by its loop; dropping it (the loop ended,
/// or was dropped with its client) takes the response out of the registry.
pub(crate) struct Running {
    registry: Arc<Inflight>,
    key: Option<Key>,
    deleted: CancellationToken,
    ended: CancellationToken,
    shutdown: CancellationToken,
    cancelled: CancellationToken,
}

impl Running {
    /// Resolves when the response is to stop, with why.
    pub(crate) async fn stopped(&self) -> Stop {
        tokio::select! {
            () = self.deleted.cancelled() => Stop::Deleted,
            () = self.shutdown.cancelled() => Stop::Shutdown,
            () = self.cancelled.cancelled() => Stop::Cancelled,
        }
    }

    /// Whether the response was deleted (its save is to be skipped).
    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted.is_cancelled()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.registry.lock().remove(&key);
        }
        self.ended.cancel();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[tokio::test]
    async fn a_delete_stops_a_stored_response_and_waits_for_its_end() {
        let registry = Arc::new(Inflight::default());
        let scope = Scope::default();
        let running = registry.register(&scope, "resp_1", true, None);
        let unstored = registry.register(&scope, "resp_2", false, None);
        assert!(!registry.stop_for_delete(&scope, "resp_2").await);
        assert_eq!(registry.stored_in_progress(), 1);
        let loop_ = crate::tasks::spawn(async move {
            let why = running.stopped().await;
            assert!(running.is_deleted());
            why
        });
        assert!(registry.stop_for_delete(&scope, "resp_1").await);
        assert_eq!(loop_.await.unwrap(), Stop::Deleted);
        assert_eq!(registry.stored_in_progress(), 0);
        registry.shut_down();
        assert_eq!(unstored.stopped().await, Stop::Shutdown);
    }

    #[tokio::test]
    async fn a_cancel_made_before_the_response_stops_it() {
        let registry = Arc::new(Inflight::default());
        let cancel = Cancel::default();
        let running = registry.register(&Scope::default(), "resp_1", false, Some(cancel.clone()));
        cancel.cancel();
        assert_eq!(running.stopped().await, Stop::Cancelled);
    }
}
