//! The counters' order of preference and the fit with a backend's tokenizer
//! endpoint, against fake backends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use antwort_api::{Item, Model};
use async_trait::async_trait;

use super::*;
use crate::model::{BackendError, ModelStream};
use crate::tokens::TokenCounter;

/// A backend whose tokenizer endpoint counts `factor` tokens for every one
/// `o200k_base` counts (or fails), and says how often it was asked.
struct Endpoint {
    factor: u64,
    fails: bool,
    asked: AtomicUsize,
}

impl Endpoint {
    fn counting(factor: u64) -> Self {
        Self {
            factor,
            fails: false,
            asked: AtomicUsize::new(0),
        }
    }

    fn failing() -> Self {
        Self {
            fails: true,
            ..Self::counting(1)
        }
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Backend for Endpoint {
    async fn generate(&self, _: &ModelRequest) -> Result<ModelStream, BackendError> {
        Err(BackendError::unavailable("a counting fake"))
    }

    async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
        Ok(Vec::new())
    }

    async fn check_ready(&self) -> Result<(), BackendError> {
        Ok(())
    }

    async fn count_tokens(&self, request: &ModelRequest) -> Option<Result<u64, BackendError>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        if self.fails {
            return Some(Err(BackendError::timeout("slow").from_backend("vllm")));
        }
        Some(Ok(self.factor * local(request)))
    }
}

/// A backend without a tokenizer endpoint: the trait's default.
struct Plain;

#[async_trait]
impl Backend for Plain {
    async fn generate(&self, _: &ModelRequest) -> Result<ModelStream, BackendError> {
        Err(BackendError::unavailable("a plain fake"))
    }

    async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
        Ok(Vec::new())
    }

    async fn check_ready(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// One token per whitespace-separated word.
struct Words;

impl TokenCounter for Words {
    fn count(&self, text: &str) -> u64 {
        text.split_whitespace().count() as u64
    }

    fn name(&self) -> &str {
        "words"
    }
}

fn local(request: &ModelRequest) -> u64 {
    Counter::tokens(None).turn(
        &request.input,
        request.instructions.as_deref(),
        &request.tools,
    )
}

fn message(role: &str, text: &str) -> Item {
    serde_json::from_value(serde_json::json!({"type": "message", "role": role, "content": text}))
        .unwrap()
}

/// Two old turns of about 200 tokens a message, and a short question.
fn conversation() -> ModelRequest {
    let mut request = ModelRequest::empty("m");
    request.input = vec![
        message("user", &"old ".repeat(200)),
        message("assistant", &"reply ".repeat(200)),
        message("user", &"middle ".repeat(200)),
        message("assistant", &"answer ".repeat(200)),
        message("user", "the newest question"),
    ];
    request
}

fn texts(request: &ModelRequest) -> Vec<String> {
    request
        .input
        .iter()
        .map(|item| match item {
            Item::Message(message) => match &message.content {
                antwort_api::MessageContent::Text(text) => {
                    text.split_whitespace().next().unwrap_or("").to_owned()
                }
                antwort_api::MessageContent::Parts(_) => String::new(),
            },
            _ => String::new(),
        })
        .collect()
}

#[tokio::test]
async fn counts_prefer_the_endpoint_then_the_models_tokenizer_then_o200k() {
    let request = conversation();
    let o200k = local(&request);
    let words = Tokenizer::new(Arc::new(Words));
    let doubling = Endpoint::counting(2);
    let with = |tokenizer, backend| Counting { tokenizer, backend };
    assert_eq!(with(None, Some(&doubling)).count(&request).await, 2 * o200k);
    assert_eq!(
        with(Some(&words), Some(&doubling)).count(&request).await,
        2 * o200k,
        "the endpoint counts the template too"
    );
    let by_words = Counter::tokens(Some(&words)).turn(&request.input, None, &[]);
    assert_eq!(
        with(Some(&words), Some(&Plain)).count(&request).await,
        by_words
    );
    assert_ne!(by_words, o200k);
    assert_eq!(Counting::default().count(&request).await, o200k);

    let failing = Endpoint::failing();
    let counting = Counting {
        tokenizer: None,
        backend: Some(&failing),
    };
    assert_eq!(
        counting.count(&request).await,
        o200k,
        "a failure counts locally"
    );
    assert_eq!(failing.asked(), 1);
}

#[tokio::test]
async fn the_endpoint_decides_whether_a_turn_fits() {
    let o200k = local(&conversation());
    // `o200k_base` says it fits; the bytes do not prove it.
    let limit = o200k + 50;
    let doubling = Endpoint::counting(2);
    let counting = Counting {
        tokenizer: None,
        backend: Some(&doubling),
    };

    let mut refused = conversation();
    let error = counting
        .fit(&mut refused, limit, Truncation::Disabled)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::ContextLengthExceeded);
    assert!(
        error.message.contains(&(2 * o200k).to_string()),
        "{}",
        error.message
    );
    assert_eq!(refused, conversation(), "nothing dropped");
    assert_eq!(doubling.asked(), 1);

    let mut fitted = conversation();
    counting
        .fit(&mut fitted, limit, Truncation::Auto)
        .await
        .unwrap();
    assert_eq!(
        texts(&fitted),
        ["middle", "answer", "the"],
        "the oldest turn went"
    );
    assert!(2 * local(&fitted) <= limit);
    assert_eq!(doubling.asked(), 3, "asked again after the refit");

    let agreeing = Endpoint::counting(1);
    let mut kept = conversation();
    Counting {
        tokenizer: None,
        backend: Some(&agreeing),
    }
    .fit(&mut kept, limit, Truncation::Disabled)
    .await
    .unwrap();
    assert_eq!(kept, conversation());

    // Where the bytes fit, nothing is counted.
    let mut small = conversation();
    counting
        .fit(&mut small, 100 * o200k, Truncation::Disabled)
        .await
        .unwrap();
    assert_eq!(doubling.asked(), 3);
}

#[tokio::test]
async fn a_models_tokenizer_fits_without_asking_the_endpoint() {
    let words = Tokenizer::new(Arc::new(Words));
    let doubling = Endpoint::counting(2);
    let counting = Counting {
        tokenizer: Some(&words),
        backend: Some(&doubling),
    };
    let by_words = Counter::tokens(Some(&words)).turn(&conversation().input, None, &[]);
    let mut request = conversation();
    counting
        .fit(&mut request, by_words, Truncation::Disabled)
        .await
        .unwrap();
    let error = counting
        .fit(&mut request, by_words - 1, Truncation::Disabled)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::ContextLengthExceeded);
    assert_eq!(doubling.asked(), 0);
}

#[tokio::test]
async fn an_endpoint_that_fails_leaves_the_fit_to_the_local_count() {
    let o200k = local(&conversation());
    let failing = Endpoint::failing();
    let counting = Counting {
        tokenizer: None,
        backend: Some(&failing),
    };
    let mut request = conversation();
    counting
        .fit(&mut request, o200k, Truncation::Disabled)
        .await
        .unwrap();
    assert_eq!(request, conversation());
    let error = counting
        .fit(&mut request, o200k - 1, Truncation::Disabled)
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::ContextLengthExceeded);
    assert_eq!(failing.asked(), 2);
}

#[tokio::test]
async fn auto_refuses_a_newest_turn_the_endpoint_counts_over_the_window() {
    let mut request = ModelRequest::empty("m");
    request.input = vec![message("user", &"word ".repeat(300))];
    let limit = local(&request) + 10;
    let doubling = Endpoint::counting(2);
    let error = Counting {
        tokenizer: None,
        backend: Some(&doubling),
    }
    .fit(&mut request, limit, Truncation::Auto)
    .await
    .unwrap_err();
    assert_eq!(error.code, ErrorCode::ContextLengthExceeded);
    assert!(error.message.contains("even after"), "{}", error.message);
    assert_eq!(request.input.len(), 1);
}

#[test]
fn scaling_neither_overflows_nor_divides_by_zero() {
    assert_eq!(scale(1000, 1, 2), 500);
    assert_eq!(scale(u64::MAX, 3, 2), u64::MAX);
    assert_eq!(scale(7, 1, 0), 7);
}
