//! Compaction: the model summarises a conversation into one `compaction` item that
//! a client sends back as input instead of the whole history.
//!
//! The item's `encrypted_content` is the summary itself behind a version marker, not
//! ciphertext: this gateway has no secret to protect it with, and a summary the
//! client already saw gains nothing from being hidden. Content without the marker
//! (for example OpenAI's encrypted blobs) cannot be read here and is refused.

use antwort_api::{
    ApiError, CompactRequest, Compaction, CompactionItem, CompactionObject, CreateResponseRequest,
    ErrorCode, Item, MessageContent, MessageItem, Role, Truncation, Usage,
};
use futures::StreamExt;

use crate::model::{Backend, ModelEvent, ModelToolChoice};
use crate::store::Scope;
use crate::{Engine, clock, error, ids};

/// Marks compaction content written by this gateway.
pub const MARKER: &str = "antwort-summary-v1:";

const PROMPT: &str = "Summarize the conversation above so that it can be continued from the summary \
alone. Keep every fact, decision, name, number and open question, and the results of tool calls. \
Write only the summary.";

/// The summary inside compaction content, when this gateway wrote it.
pub fn summary(content: &str) -> Option<&str> {
    content.strip_prefix(MARKER)
}

impl Engine {
    /// `POST /v1/responses/compact`.
    pub async fn compact(
        &self,
        scope: &Scope,
        request: CompactRequest,
    ) -> Result<Compaction, ApiError> {
        let Some(model) = request.model.filter(|m| !m.trim().is_empty()) else {
            return Err(ApiError::new(
                ErrorCode::MissingRequiredParameter,
                "Missing required parameter: 'model'",
            )
            .with_param("model"));
        };
        let turn_request = CreateResponseRequest {
            model: Some(model),
            input: request.input,
            instructions: request.instructions,
            previous_response_id: request.previous_response_id,
            prompt_cache_key: request.prompt_cache_key,
            store: Some(false),
            truncation: Some(Truncation::Auto),
            ..CreateResponseRequest::default()
        };
        let mut turn = self
            .prepare_turn(scope, turn_request, true, &crate::CreateOptions::default())
            .await?
            .plan
            .model_request;
        turn.tools.clear();
        turn.tool_choice = ModelToolChoice::Default;
        turn.stream = false;
        turn.input.push(Item::Message(MessageItem {
            id: None,
            status: None,
            role: Role::User,
            content: MessageContent::Text(PROMPT.to_owned()),
            phase: None,
        }));
        let mut events = self
            .backend_for(&turn.model)
            .await?
            .generate(&turn)
            .await
            .map_err(error::backend_error)?;
        let mut text = String::new();
        let mut usage = Usage::default();
        while let Some(event) = events.next().await {
            match event.map_err(error::backend_error)? {
                ModelEvent::TextDelta { text: delta, .. } => text.push_str(&delta),
                ModelEvent::Usage(reported) => usage = reported,
                _ => {}
            }
        }
        if text.trim().is_empty() {
            return Err(ApiError::new(
                ErrorCode::BackendError,
                "The model returned an empty summary",
            ));
        }
        Ok(Compaction {
            id: ids::response_id(),
            object: CompactionObject::Compaction,
            output: vec![Item::Compaction(CompactionItem {
                id: Some(ids::compaction_id()),
                encrypted_content: format!("{MARKER}{text}"),
                created_by: Some("antwort".to_owned()),
            })],
            created_at: clock::unix_now(),
            usage,
        })
    }
}
