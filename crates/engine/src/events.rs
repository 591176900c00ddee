//! A response's event log: the hub every view of a response follows.
//!
//! A stored response runs on a task of its own and appends its events to its
//! log; the client that started it follows the log from the first event, and so
//! can others (a second connection, and with background mode and `GET
//! /v1/responses/{id}?stream=true&starting_after=N`, a client resuming after a
//! cut). SSE, the JSON body, WebSocket and replay are views of one log; storage
//! is the writer's view at the terminal event, which is saved before it is
//! appended ("stored before told").
//!
//! [`EventLog`] is the seam; [`MemoryEventLog`] the in-process implementation,
//! whose logs live while their response runs. It is bounded: a follower may be
//! at most a window of events behind, and the writer waits for it there (a slow
//! reader slows its own response instead of growing the server's memory); a
//! reader that stays a window behind for [`CUT_AFTER`] is cut (its stream ends,
//! and it may resume later), so that a stalled connection can never keep stored
//! work from finishing; and of the events every follower has read, only the
//! last few are kept, for a reader that reconnects and resumes. A persisted log
//! (events in the database, followers woken by `LISTEN/NOTIFY`) implements the
//! same trait for background responses followed from another replica.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use antwort_api::StreamEvent;
use async_trait::async_trait;
use futures::{Stream, StreamExt};
use tokio::sync::Notify;

use crate::store::Scope;

/// An event as a log holds it: shared by every follower, copied by none.
pub type SharedEvent = Arc<StreamEvent>;

/// The events a follower reads, in order.
pub type EventStream = Pin<Box<dyn Stream<Item = SharedEvent> + Send>>;

/// The event logs of responses.
pub trait EventLog: Send + Sync {
    /// Starts the log of response `response_id`, which belongs to `scope`.
    fn create(&self, scope: &Scope, response_id: &str) -> Box<dyn LogWriter>;

    /// The events of a live response after sequence number `after` (all of
    /// them for `None`), then the live ones to its end. `None` when this log
    /// has no such response in `scope`, or no longer holds the events asked for.
    fn follow(&self, scope: &Scope, response_id: &str, after: Option<u64>) -> Option<EventStream>;
}

/// Appends the events of one response to its log.
#[async_trait]
pub trait LogWriter: Send {
    /// Appends `event`, waiting while a follower is a whole window behind.
    async fn append(&mut self, event: SharedEvent);

    /// The response has ended: followers read to here and stop.
    fn close(&mut self);
}

/// How far a follower may fall behind the writer, in events.
pub const DEFAULT_WINDOW: usize = 256;

/// Events kept, per response, after every follower has read them.
pub const DEFAULT_HISTORY: usize = 32;

/// How long the writer waits for a follower a whole window behind before it
/// cuts that follower loose.
pub const CUT_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// The in-process event log.
#[derive(Clone)]
pub struct MemoryEventLog {
    logs: Arc<Mutex<HashMap<String, Arc<Shared>>>>,
    window: usize,
    history: usize,
    cut_after: std::time::Duration,
}

impl Default for MemoryEventLog {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW, DEFAULT_HISTORY, CUT_AFTER)
    }
}

impl MemoryEventLog {
    /// A log that lets a follower fall `window` events behind (at least one),
    /// keeps `history` events every follower has read, and cuts a follower that
    /// stays a window behind for `cut_after`.
    pub fn new(window: usize, history: usize, cut_after: std::time::Duration) -> Self {
        Self {
            logs: Arc::new(Mutex::new(HashMap::new())),
            window: window.max(1),
            history,
            cut_after,
        }
    }

    /// Responses whose logs are live.
    pub fn live(&self) -> usize {
        self.logs.lock().map_or(0, |logs| logs.len())
    }
}

struct Shared {
    scope: Scope,
    window: usize,
    history: usize,
    cut_after: std::time::Duration,
    state: Mutex<State>,
    /// Wakes followers: an event arrived, or the log closed.
    appended: Notify,
    /// Wakes the writer: a follower moved on, or left.
    consumed: Notify,
}

#[derive(Default)]
struct State {
    /// The latest events; `events[0]` has index `first`.
    events: VecDeque<SharedEvent>,
    first: u64,
    closed: bool,
    /// Each follower's next index, by follower id.
    cursors: HashMap<u64, u64>,
    next_follower: u64,
}

impl State {
    fn next_index(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    /// Drops the events nobody needs: beyond the window, and those every
    /// follower has read beyond the last `history`.
    fn evict(&mut self, window: usize, history: usize) {
        let slowest = self
            .cursors
            .values()
            .copied()
            .min()
            .unwrap_or_else(|| self.next_index());
        while !self.events.is_empty()
            && (self.events.len() > window || slowest.saturating_sub(self.first) > history as u64)
        {
            self.events.pop_front();
            self.first += 1;
        }
    }
}

impl EventLog for MemoryEventLog {
    fn create(&self, scope: &Scope, response_id: &str) -> Box<dyn LogWriter> {
        let shared = Arc::new(Shared {
            scope: scope.clone(),
            window: self.window,
            history: self.history,
            cut_after: self.cut_after,
            state: Mutex::new(State::default()),
            appended: Notify::new(),
            consumed: Notify::new(),
        });
        if let Ok(mut logs) = self.logs.lock() {
            logs.insert(response_id.to_owned(), shared.clone());
        }
        Box::new(MemoryWriter {
            shared,
            logs: self.logs.clone(),
            response_id: response_id.to_owned(),
        })
    }

    fn follow(&self, scope: &Scope, response_id: &str, after: Option<u64>) -> Option<EventStream> {
        let shared = self.logs.lock().ok()?.get(response_id).cloned()?;
        if !scope.sees(&shared.scope) {
            return None;
        }
        let start = after.map_or(0, |after| after.saturating_add(1));
        let id = {
            let mut state = shared.state.lock().ok()?;
            if start < state.first || start > state.next_index() {
                // Those events have left the window, or never were.
                return None;
            }
            let id = state.next_follower;
            state.next_follower += 1;
            state.cursors.insert(id, start);
            id
        };
        let follower = Follower { shared, id };
        Some(
            futures::stream::unfold(follower, |follower| async move {
                let event = follower.next().await?;
                Some((event, follower))
            })
            .boxed(),
        )
    }
}

struct MemoryWriter {
    shared: Arc<Shared>,
    logs: Arc<Mutex<HashMap<String, Arc<Shared>>>>,
    response_id: String,
}

#[async_trait]
impl LogWriter for MemoryWriter {
    async fn append(&mut self, event: SharedEvent) {
        let shared = &self.shared;
        loop {
            let consumed = shared.consumed.notified();
            tokio::pin!(consumed);
            consumed.as_mut().enable();
            {
                let Ok(mut state) = shared.state.lock() else {
                    return;
                };
                let next = state.next_index();
                let slowest = state.cursors.values().copied().min().unwrap_or(next);
                if next.saturating_sub(slowest) < shared.window as u64 {
                    state.events.push_back(event);
                    state.evict(shared.window, shared.history);
                    drop(state);
                    shared.appended.notify_waiters();
                    return;
                }
            }
            if tokio::time::timeout(shared.cut_after, consumed)
                .await
                .is_err()
            {
                self.cut_slowest();
            }
        }
    }

    fn close(&mut self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.closed = true;
        }
        self.shared.appended.notify_waiters();
        // Followers hold the log as long as they read; new ones look in the store.
        if let Ok(mut logs) = self.logs.lock() {
            logs.remove(&self.response_id);
        }
    }
}

impl MemoryWriter {
    /// Cuts the followers a whole window behind: their streams end, and the
    /// response goes on without them.
    fn cut_slowest(&self) {
        let Ok(mut state) = self.shared.state.lock() else {
            return;
        };
        let next = state.next_index();
        let window = self.shared.window as u64;
        let before = state.cursors.len();
        state
            .cursors
            .retain(|_, cursor| next.saturating_sub(*cursor) < window);
        let cut = before - state.cursors.len();
        drop(state);
        if cut > 0 {
            tracing::warn!(
                response_id = %self.response_id,
                readers = cut,
                "a reader stayed a whole window of events behind; its stream was cut, the response goes on"
            );
        }
        self.shared.appended.notify_waiters();
    }
}

impl Drop for MemoryWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// One reader of a log; leaving (dropping it) releases the writer.
struct Follower {
    shared: Arc<Shared>,
    id: u64,
}

impl Follower {
    async fn next(&self) -> Option<SharedEvent> {
        loop {
            let appended = self.shared.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            {
                let mut state = self.shared.state.lock().ok()?;
                let cursor = *state.cursors.get(&self.id)?;
                if cursor < state.next_index() {
                    let offset = cursor.checked_sub(state.first)?;
                    let event = state.events.get(offset as usize).cloned()?;
                    state.cursors.insert(self.id, cursor + 1);
                    drop(state);
                    self.shared.consumed.notify_one();
                    return Some(event);
                }
                if state.closed {
                    return None;
                }
            }
            appended.await;
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.cursors.remove(&self.id);
        }
        self.shared.consumed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use antwort_api::EventData;

    fn event(n: u64) -> SharedEvent {
        Arc::new(StreamEvent {
            data: EventData::Error {
                error: antwort_api::ApiError::new(antwort_api::ErrorCode::InternalError, "x")
                    .body()
                    .error,
            },
            sequence_number: n,
        })
    }

    fn numbers(events: &[SharedEvent]) -> Vec<u64> {
        events.iter().map(|event| event.sequence_number).collect()
    }

    #[tokio::test]
    async fn followers_read_every_event_from_where_they_start() {
        let log = MemoryEventLog::new(8, 8, CUT_AFTER);
        let scope = Scope::default();
        let mut writer = log.create(&scope, "resp_1");
        let first = log.follow(&scope, "resp_1", None).unwrap();
        for n in 0..3 {
            writer.append(event(n)).await;
        }
        let late = log.follow(&scope, "resp_1", Some(0)).unwrap();
        let other = Scope {
            tenant: "other".into(),
            owner: "x".into(),
            reach: crate::store::Reach::Own,
        };
        assert!(
            log.follow(&other, "resp_1", None).is_none(),
            "tenant checked"
        );
        writer.append(event(3)).await;
        writer.close();
        assert_eq!(numbers(&first.collect::<Vec<_>>().await), [0, 1, 2, 3]);
        assert_eq!(numbers(&late.collect::<Vec<_>>().await), [1, 2, 3]);
        assert_eq!(log.live(), 0, "a closed log leaves the hub");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_follower_holds_the_writer_at_the_window_and_leaving_frees_it() {
        let log = MemoryEventLog::new(2, 2, std::time::Duration::from_secs(5));
        let scope = Scope::default();
        let mut writer = log.create(&scope, "resp_1");
        let mut follower = log.follow(&scope, "resp_1", None).unwrap();
        writer.append(event(0)).await;
        writer.append(event(1)).await;
        // A third event would leave the follower more than a window behind.
        let blocked =
            tokio::time::timeout(std::time::Duration::from_secs(1), writer.append(event(2))).await;
        assert!(blocked.is_err(), "the writer waits for the reader");
        assert_eq!(follower.next().await.unwrap().sequence_number, 0);
        writer.append(event(2)).await;
        drop(follower);
        // Nobody reads: the window turns over and memory stays bounded.
        for n in 3..100 {
            writer.append(event(n)).await;
        }
        assert!(
            log.follow(&scope, "resp_1", None).is_none(),
            "event 0 left the window"
        );
        assert!(log.follow(&scope, "resp_1", Some(97)).is_some());
        assert!(
            log.follow(&scope, "resp_1", Some(u64::MAX)).is_none(),
            "nothing after events that never were"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_follower_is_cut_so_the_response_goes_on() {
        let log = MemoryEventLog::new(2, 0, std::time::Duration::from_secs(5));
        let scope = Scope::default();
        let mut writer = log.create(&scope, "resp_1");
        let stalled = log.follow(&scope, "resp_1", None).unwrap();
        let reading = log.follow(&scope, "resp_1", None).unwrap();
        let reader = crate::tasks::spawn(async move { reading.collect::<Vec<_>>().await });
        // The stalled follower is never polled; paused time runs the cut's
        // timer forward as soon as everything else waits.
        for n in 0..10 {
            writer.append(event(n)).await;
        }
        writer.close();
        assert_eq!(numbers(&reader.await.unwrap()), (0..10).collect::<Vec<_>>());
        let after_cut: Vec<_> = stalled.collect().await;
        assert!(after_cut.is_empty(), "a cut follower's stream ends");
    }

    #[tokio::test]
    async fn read_events_beyond_the_history_are_let_go() {
        let log = MemoryEventLog::new(64, 3, CUT_AFTER);
        let scope = Scope::default();
        let mut writer = log.create(&scope, "resp_1");
        let mut follower = log.follow(&scope, "resp_1", None).unwrap();
        for n in 0..10 {
            writer.append(event(n)).await;
            follower.next().await.unwrap();
        }
        writer.append(event(10)).await;
        assert!(
            log.follow(&scope, "resp_1", Some(5)).is_none(),
            "read long ago"
        );
        assert!(
            log.follow(&scope, "resp_1", Some(6)).is_some(),
            "within the history"
        );
    }
}
