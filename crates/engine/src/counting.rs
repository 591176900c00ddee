//! Which counter counts a model's tokens, for `input_tokens` and for fitting
//! a turn into the context window.
//!
//! Three can: the backend's own tokenizer endpoint (vLLM's `POST /tokenize`,
//! [`Backend::count_tokens`]), which counts the prompt as the model sees it,
//! chat template included; the model's tokenizer loaded from its
//! `tokenizer.json` ([`Tokenizer`]), exact for the text, with the template
//! estimated; and tiktoken's `o200k_base`, an estimate, when neither is there.
//! `input_tokens` prefers the endpoint. A fit prefers the local tokenizer: it
//! counts item by item as it drops turns, which an endpoint that counts
//! whole prompts (over HTTP) cannot do cheaply. With only the endpoint, the
//! endpoint has the last word on whether a turn fits and the local estimate
//! chooses what to drop. Counting never fails a request: an endpoint that
//! fails is logged and the local count used. Which counter counted goes to
//! the debug log, never to a response.

use antwort_api::{ApiError, CreateResponseRequest, ErrorCode, Truncation};

use crate::model::{Backend, ModelRequest};
use crate::tokens::{Counter, Tokenizer};
use crate::truncation::{bound_fits, drop_oldest, exceeded, fit};
use crate::{CreateOptions, Engine, Scope};

/// How often a turn the endpoint still counts over the window is fitted
/// again, each time against a local limit scaled by the endpoint's count:
/// one refit is enough when the two tokenizers differ evenly over the turn,
/// the others are for turns whose oldest part differs most.
const REFITS: usize = 3;

/// What counts one model's tokens.
#[derive(Clone, Copy, Default)]
pub(crate) struct Counting<'a> {
    /// The model's own tokenizer, when one is configured.
    pub tokenizer: Option<&'a Tokenizer>,
    /// The backend to ask, which may have a tokenizer endpoint.
    pub backend: Option<&'a dyn Backend>,
}

impl Counting<'_> {
    /// The tokens of the whole request: the endpoint's count when the
    /// backend has one that answers, else the local tokenizer's.
    pub async fn count(self, request: &ModelRequest) -> u64 {
        if let Some(count) = self.remote(request).await {
            return count;
        }
        let counter = Counter::tokens(self.tokenizer);
        let count = counter.turn(
            &request.input,
            request.instructions.as_deref(),
            &request.tools,
        );
        tracing::debug!(model = %request.model, tokens = count, "tokens counted by {}", counter.name());
        count
    }

    /// The endpoint's count, when the backend has one; a failure is logged
    /// and is `None` like its absence.
    async fn remote(self, request: &ModelRequest) -> Option<u64> {
        match self.backend?.count_tokens(request).await? {
            Ok(count) => {
                tracing::debug!(model = %request.model, tokens = count, "tokens counted by the backend's tokenizer endpoint");
                Some(count)
            }
            Err(error) => {
                tracing::warn!(backend = %error.backend, model = %request.model, error = %error.kind, "the backend's tokenizer endpoint failed; counting locally");
                None
            }
        }
    }

    /// Fits `request`'s input into `limit` tokens as `mode` says (see
    /// `truncation`). Nothing is counted when the byte bound shows it fits.
    pub async fn fit(
        self,
        request: &mut ModelRequest,
        limit: u64,
        mode: Truncation,
    ) -> Result<(), ApiError> {
        if bound_fits(
            &request.input,
            request.instructions.as_deref(),
            &request.tools,
            limit,
        ) {
            return Ok(());
        }
        if self.tokenizer.is_none()
            && let Some(remote) = self.remote(request).await
        {
            return self.fit_remote(request, remote, limit, mode).await;
        }
        let counter = Counter::tokens(self.tokenizer);
        tracing::debug!(model = %request.model, "tokens counted by {}", counter.name());
        let fixed = counter.fixed(request.instructions.as_deref(), &request.tools);
        fit(&mut request.input, fixed, limit, mode, counter)
    }

    /// The fit when the endpoint counted `remote` tokens for the whole turn.
    /// Whether it fits is the endpoint's word, so a turn `o200k_base` would
    /// count over the window is not refused when the model's tokenizer takes
    /// it. What to drop is chosen by the local estimate, against the limit
    /// scaled by the endpoint's tokens per local token, and the endpoint
    /// asked again.
    async fn fit_remote(
        self,
        request: &mut ModelRequest,
        mut remote: u64,
        limit: u64,
        mode: Truncation,
    ) -> Result<(), ApiError> {
        if remote <= limit {
            return Ok(());
        }
        if mode == Truncation::Disabled {
            return Err(exceeded(remote, limit, mode));
        }
        let counter = Counter::tokens(None);
        for _ in 0..REFITS {
            let local = counter.turn(
                &request.input,
                request.instructions.as_deref(),
                &request.tools,
            );
            let scaled = scale(limit, local, remote);
            let left = drop_oldest(&mut request.input, local, scaled, counter);
            if left > scaled {
                // Only the newest turn is left, and it does not fit.
                return Err(exceeded(scale(left, remote, local), limit, mode));
            }
            remote = match self.remote(request).await {
                Some(count) if count <= limit => return Ok(()),
                Some(count) => count,
                // The endpoint failed now: the local fit against the scaled
                // limit is the best estimate left.
                None => return Ok(()),
            };
        }
        Err(ApiError::new(
            ErrorCode::ContextLengthExceeded,
            format!(
                "The input still takes {remote} tokens after dropping the oldest turns, more than the {limit} this model's context window leaves for it"
            ),
        )
        .with_param("input"))
    }
}

/// `value × numerator / denominator`, without overflow; `value` itself for
/// a zero denominator.
fn scale(value: u64, numerator: u64, denominator: u64) -> u64 {
    if denominator == 0 {
        return value;
    }
    let scaled = u128::from(value) * u128::from(numerator) / u128::from(denominator);
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

impl Engine {
    /// `POST /v1/responses/input_tokens`: what the input of this request would take.
    pub async fn count_input_tokens(
        &self,
        scope: &Scope,
        request: CreateResponseRequest,
    ) -> Result<u64, ApiError> {
        let turn = self
            .prepare_turn(scope, request, false, &CreateOptions::default())
            .await?;
        let request = &turn.plan.model_request;
        let tokenizer = self.backends.tokenizer(&request.model);
        let route = self.backends.route(&request.model);
        let counting = Counting {
            tokenizer: tokenizer.as_ref(),
            backend: route.as_ref().map(|route| route as &dyn Backend),
        };
        Ok(counting.count(request).await)
    }

    /// Fits a turn into its model's context window, less the tokens its
    /// answer may take.
    pub(crate) async fn fit_to_window(
        &self,
        request: &mut ModelRequest,
        mode: Truncation,
    ) -> Result<(), ApiError> {
        let window = self.context_window(&request.model);
        let limit = window.saturating_sub(u64::from(request.max_output_tokens.unwrap_or(0)));
        // The common turn fits by its bytes: no registry look-ups for it.
        if bound_fits(
            &request.input,
            request.instructions.as_deref(),
            &request.tools,
            limit,
        ) {
            return Ok(());
        }
        let tokenizer = self.backends.tokenizer(&request.model);
        let route = match tokenizer {
            Some(_) => None,
            None => self.backends.route(&request.model),
        };
        let counting = Counting {
            tokenizer: tokenizer.as_ref(),
            backend: route.as_ref().map(|route| route as &dyn Backend),
        };
        counting.fit(request, limit, mode).await
    }
}

#[cfg(test)]
mod tests;
