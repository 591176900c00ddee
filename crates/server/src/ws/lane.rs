//! A lane of a WebSocket connection: the default one, or one `stream_id`.
//! It runs one turn at a time, holds the turns waiting behind it (a named lane
//! takes them in order; the default one refuses a second turn while one
//! runs), and remembers its most recent unstored response to continue from.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use antwort_api::{ApiError, CreateResponseRequest, ErrorCode};
use antwort_engine::{Cancel, Prior};

/// The key of a lane: its `stream_id`, or none for the default lane.
pub type LaneKey = Option<String>;

/// A turn a lane runs, or holds until it can.
pub struct Job {
    pub request: Box<CreateResponseRequest>,
    /// The size of its message, which the connection's queue budget counts.
    pub bytes: usize,
    /// `generate: false`.
    pub warm_up: bool,
}

/// The turn a lane runs now.
pub struct Running {
    /// Filled once the response has begun (its `response.created`).
    pub response_id: Arc<OnceLock<String>>,
    pub cancel: Cancel,
    /// The task that runs it.
    pub task: tokio::task::Id,
}

#[derive(Default)]
pub struct Lane {
    pub running: Option<Running>,
    pub waiting: VecDeque<Job>,
    /// The most recent unstored response this lane finished.
    pub memory: Option<Prior>,
    /// When the lane was last given a turn, to choose which idle lane to forget.
    pub last_used: u64,
}

impl Lane {
    /// Takes `job`: to run now (returned), or to wait behind the running turn.
    pub fn offer(
        &mut self,
        job: Job,
        named: bool,
        max_waiting: usize,
    ) -> Result<Option<Job>, ApiError> {
        if self.running.is_none() && self.waiting.is_empty() {
            return Ok(Some(job));
        }
        if !named {
            return Err(ApiError::new(
                ErrorCode::ResponseInProgress,
                "A response is already in progress on this connection; wait for its terminal event, cancel it, or give each concurrent response a `stream_id`.",
            ));
        }
        if self.waiting.len() >= max_waiting {
            return Err(ApiError::new(
                ErrorCode::ResponseInProgress,
                format!(
                    "This stream already holds {max_waiting} responses waiting behind the running one (websocket.max_queued_per_stream)."
                ),
            )
            .with_param("stream_id"));
        }
        self.waiting.push_back(job);
        Ok(None)
    }

    pub fn is_idle(&self) -> bool {
        self.running.is_none() && self.waiting.is_empty()
    }

    /// After a turn: a response to continue from replaces what the lane
    /// remembered; a turn that failed while continuing from memory forgets it
    /// (retrying it is `previous_response_not_found`, as on OpenAI). Any other
    /// end (stored, cancelled) leaves the memory as it was.
    pub fn finished(&mut self, end: &super::turn::TurnEnd) {
        let (continued, failed) = (end.continued.as_deref(), end.failed);
        if end.outgrown {
            self.memory = None;
        } else if let Some(prior) = end.remembered.clone() {
            self.memory = Some(prior);
        } else if failed
            && let Some(continued) = continued
            && self
                .memory
                .as_ref()
                .is_some_and(|memory| memory.response_id == continued)
        {
            self.memory = None;
        }
    }
}
