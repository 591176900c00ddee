//! The registry's routing, aliases, fallback, discovery and readiness, against fake backends.

use std::sync::Mutex;

use async_trait::async_trait;
use futures::StreamExt;

use super::*;
use crate::model::{BackendErrorKind, FinishReason, ModelEvent, ModelRequest, ModelStream};

/// A backend that answers with a fixed outcome, lists fixed models, and
/// remembers the model names it was asked for.
struct Fake {
    fails_with: Option<BackendError>,
    models: Mutex<Vec<String>>,
    asked: Mutex<Vec<String>>,
    lists: std::sync::atomic::AtomicUsize,
}

impl Fake {
    fn new(fails_with: Option<BackendError>, models: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            fails_with,
            models: Mutex::new(models.iter().map(|m| (*m).to_owned()).collect()),
            asked: Mutex::new(Vec::new()),
            lists: Default::default(),
        })
    }

    fn answering() -> Arc<Self> {
        Self::new(None, &[])
    }

    fn failing(error: BackendError) -> Arc<Self> {
        Self::new(Some(error), &[])
    }

    fn listing(models: &[&str]) -> Arc<Self> {
        Self::new(None, models)
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait]
impl Backend for Fake {
    async fn generate(&self, request: &ModelRequest) -> Result<ModelStream, BackendError> {
        self.asked.lock().unwrap().push(request.model.clone());
        if let Some(error) = &self.fails_with {
            return Err(error.clone());
        }
        let finish = Ok(ModelEvent::Finish(FinishReason::Stop));
        Ok(futures::stream::iter(vec![finish]).boxed())
    }

    async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
        self.lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self
            .models
            .lock()
            .unwrap()
            .iter()
            .map(|id| Model {
                id: id.clone(),
                object: "model".into(),
                created: 7,
                owned_by: "upstream".into(),
                max_model_len: Some(4096),
            })
            .collect())
    }

    async fn check_ready(&self) -> Result<(), BackendError> {
        match &self.fails_with {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    async fn count_tokens(&self, request: &ModelRequest) -> Option<Result<u64, BackendError>> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("count {}", request.model));
        Some(match &self.fails_with {
            Some(error) => Err(error.clone()),
            None => Ok(7),
        })
    }
}

fn request(model: &str) -> ModelRequest {
    ModelRequest {
        stream: true,
        ..ModelRequest::empty(model)
    }
}

fn listed(id: &str, upstream: &str, aliases: &[&str]) -> Serving {
    Serving {
        listed: vec![ServedModel {
            upstream: upstream.to_owned(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            context_window: Some(8192),
            ..ServedModel::named(id)
        }],
        ..Serving::default()
    }
}

#[tokio::test]
async fn models_route_to_the_entry_that_names_them_and_errors_carry_its_name() {
    let backends = Backends::single("default", Fake::failing(BackendError::unavailable("down")))
        .with(
            "special",
            Models::Named(vec!["m2".into()]),
            Fake::answering(),
        );
    assert_eq!(&*backends.route("m1").unwrap().primary().name, "default");
    assert_eq!(&*backends.route("m2").unwrap().primary().name, "special");
    let error = backends
        .route("m1")
        .unwrap()
        .generate(&request("m1"))
        .await
        .err()
        .unwrap();
    assert_eq!(error.backend, "default");
    assert!(Backends::default().route("m1").is_none());
}

#[tokio::test]
async fn token_counts_ask_the_primary_under_its_name_and_tokenizers_are_found_by_alias() {
    let vllm = Fake::answering();
    let mut serving = listed("llama-8b", "meta-llama/Llama-3.1-8B-Instruct", &["llama"]);
    let tokenizer = crate::tokens::Tokenizer::new(Arc::new(crate::tokens::O200kBase));
    serving.listed[0].tokenizer = Some(tokenizer.clone());
    let backends = Backends::default()
        .with("vllm", serving, vllm.clone())
        .with(
            "down",
            Models::Named(vec!["other".into()]),
            Fake::failing(BackendError::unavailable("down")),
        );
    let route = backends.route("llama").unwrap();
    assert_eq!(route.count_tokens(&request("llama")).await, Some(Ok(7)));
    assert_eq!(vllm.asked(), ["count meta-llama/Llama-3.1-8B-Instruct"]);
    assert_eq!(backends.tokenizer("llama"), Some(tokenizer));
    assert_eq!(backends.tokenizer("other"), None);
    let failed = backends.route("other").unwrap();
    let error = failed.count_tokens(&request("other")).await.unwrap();
    assert_eq!(error.unwrap_err().backend, "down", "named by the registry");
}

#[tokio::test]
async fn an_alias_reaches_the_backend_under_its_own_name() {
    let vllm = Fake::answering();
    let backends = Backends::default().with(
        "vllm",
        listed(
            "llama-8b",
            "meta-llama/Llama-3.1-8B-Instruct",
            &["llama", "fast"],
        ),
        vllm.clone(),
    );
    let route = backends.route("fast").unwrap();
    let _events = route.generate(&request("fast")).await.unwrap();
    assert_eq!(vllm.asked(), ["meta-llama/Llama-3.1-8B-Instruct"]);
    assert_eq!(backends.context_window("llama"), Some(8192));
    assert!(
        backends.route("gpt-4o").is_none(),
        "no catch-all: unknown models have no route"
    );
}

#[tokio::test]
async fn a_failure_another_backend_may_not_share_falls_back_and_a_bad_request_does_not() {
    let busy = Fake::failing(BackendError::status(503, "busy", None));
    let spare = Fake::answering();
    let backends = Backends::default()
        .with("a", listed("m", "m-on-a", &[]), busy.clone())
        .with("b", listed("m", "m-on-b", &[]), spare.clone());
    let route = backends.route("m").unwrap();
    assert_eq!(route.candidates().len(), 2);
    let mut events = route.generate(&request("m")).await.unwrap();
    assert_eq!(
        events.next().await.unwrap().unwrap(),
        ModelEvent::Finish(FinishReason::Stop)
    );
    assert_eq!(busy.asked(), ["m-on-a"]);
    assert_eq!(spare.asked(), ["m-on-b"]);

    let refusing = Fake::failing(BackendError::status(400, "bad tools", None));
    let spare = Fake::answering();
    let backends = Backends::default()
        .with("a", listed("m", "m", &[]), refusing)
        .with("b", listed("m", "m", &[]), spare.clone());
    let error = backends
        .route("m")
        .unwrap()
        .generate(&request("m"))
        .await
        .err()
        .unwrap();
    assert!(matches!(
        error.kind,
        BackendErrorKind::Status { status: 400, .. }
    ));
    assert_eq!(error.backend, "a");
    assert!(
        spare.asked().is_empty(),
        "the same request would fail there too"
    );
}

#[tokio::test]
async fn a_stream_that_fails_before_its_first_event_falls_back() {
    struct FailsInStream;
    #[async_trait]
    impl Backend for FailsInStream {
        async fn generate(&self, _: &ModelRequest) -> Result<ModelStream, BackendError> {
            let error = Err(BackendError::interrupted("error chunk"));
            Ok(futures::stream::iter(vec![error]).boxed())
        }
        async fn list_models(&self) -> Result<Vec<Model>, BackendError> {
            Ok(Vec::new())
        }
        async fn check_ready(&self) -> Result<(), BackendError> {
            Ok(())
        }
    }
    let spare = Fake::answering();
    let backends = Backends::default()
        .with("a", listed("m", "m", &[]), Arc::new(FailsInStream))
        .with("b", listed("m", "m", &[]), spare.clone());
    let _events = backends
        .route("m")
        .unwrap()
        .generate(&request("m"))
        .await
        .unwrap();
    assert_eq!(spare.asked(), ["m"]);
}

#[tokio::test]
async fn discovered_models_are_listed_with_their_backend_and_found_again_after_a_miss() {
    let ollama = Fake::listing(&["qwen3:8b"]);
    let backends = Backends::default()
        .with(
            "vllm",
            listed("llama-8b", "meta-llama/Llama-3.1-8B-Instruct", &["llama"]),
            Fake::answering(),
        )
        .with(
            "ollama",
            Serving {
                discover: true,
                reported_windows: true,
                ..Serving::default()
            },
            ollama.clone(),
        );
    let models = backends.list_models().await.unwrap();
    let listed: Vec<(&str, &str)> = models
        .iter()
        .map(|m| (m.id.as_str(), m.owned_by.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("llama-8b", "vllm"),
            ("llama", "vllm"),
            ("qwen3:8b", "ollama")
        ]
    );
    assert_eq!(
        backends.context_window("qwen3:8b"),
        Some(4096),
        "vLLM's max_model_len"
    );

    // A model loaded after the last refresh: a miss asks again, but not
    // within REFRESH_ON_MISS_AFTER of the last time.
    ollama.models.lock().unwrap().push("gemma3:4b".into());
    assert!(backends.route_or_refresh("gemma3:4b").await.is_none());
    assert_eq!(ollama.lists.load(std::sync::atomic::Ordering::SeqCst), 1);
    backends.refresh().await;
    let route = backends.route_or_refresh("gemma3:4b").await.unwrap();
    assert_eq!(&*route.primary().name, "ollama");
}

#[tokio::test(start_paused = true)]
async fn a_miss_asks_a_stale_backend_for_its_models() {
    let ollama = Fake::listing(&["a"]);
    let backends = Backends::default().with(
        "ollama",
        Serving {
            discover: true,
            ..Serving::default()
        },
        ollama.clone(),
    );
    backends.refresh().await;
    ollama.models.lock().unwrap().push("b".into());
    tokio::time::advance(REFRESH_ON_MISS_AFTER).await;
    assert!(backends.route_or_refresh("b").await.is_some());
}

#[tokio::test]
async fn readiness_names_each_backend() {
    let backends = Backends::default()
        .with("up", listed("a", "a", &[]), Fake::answering())
        .with(
            "down",
            listed("b", "b", &[]),
            Fake::failing(BackendError::timeout("slow")),
        );
    let readiness = backends.readiness(Duration::from_secs(1)).await;
    let states: Vec<(&str, bool)> = readiness.iter().map(|r| (&*r.name, r.ready)).collect();
    assert_eq!(states, [("up", true), ("down", false)]);
}
