//! A Chat Completions token stream as model events: the SSE body read by the
//! crate's [`EventStream`], each `data:` chunk translated by [`ChunkTranslator`].

use std::collections::VecDeque;

use antwort_engine::{BackendError, ModelEvent};

use super::response;
use crate::stream::{EventStream, Translate};
pub use crate::stream::{MAX_EVENT_BYTES, Translated};

/// Chunk by chunk translation, apart from any I/O so that it can be fuzzed.
#[derive(Default)]
pub struct ChunkTranslator {
    scratch: Vec<ModelEvent>,
    /// A finish reason was seen.
    pub finished: bool,
}

impl ChunkTranslator {
    /// Translates one event's `data`, appending its model events to `out`.
    pub fn translate(
        &mut self,
        data: &str,
        out: &mut VecDeque<ModelEvent>,
    ) -> Result<Translated, BackendError> {
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(Translated::Done);
        }
        if data.is_empty() {
            return Ok(Translated::Events);
        }
        let chunk: response::ChatChunk = serde_json::from_str(data)
            .map_err(|error| BackendError::protocol(format!("invalid chunk: {error}")))?;
        if let Some(error) = &chunk.error {
            let message = error
                .get("message")
                .and_then(|m| m.as_str())
                .map_or_else(|| error.to_string(), str::to_owned);
            return Err(BackendError::interrupted(format!(
                "the backend reported an error mid-stream: {message}"
            )));
        }
        response::chunk_events(chunk, &mut self.scratch);
        self.finished |= self
            .scratch
            .iter()
            .any(|e| matches!(e, ModelEvent::Finish(_)));
        out.extend(self.scratch.drain(..));
        Ok(Translated::Events)
    }
}

impl Translate for ChunkTranslator {
    fn translate(
        &mut self,
        data: &str,
        out: &mut VecDeque<ModelEvent>,
    ) -> Result<Translated, BackendError> {
        ChunkTranslator::translate(self, data, out)
    }

    fn finished(&self) -> bool {
        self.finished
    }
}

/// Chat Completions SSE → model events. Reads on after the finish chunk until
/// `[DONE]`, since vLLM and OpenAI send usage in a chunk of its own after it.
pub type ChunkStream = EventStream<ChunkTranslator>;
