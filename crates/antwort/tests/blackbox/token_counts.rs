//! Token counts the backend agrees with: its tokenizer endpoint (the mock's
//! `POST /tokenize`, one token per word and one per message, unlike
//! tiktoken) and a model's `tokenizer.json`, for `input_tokens` and for
//! fitting a turn into the window; `o200k_base` where neither answers.

use std::sync::atomic::Ordering;
use std::time::Duration;

use antwort_mock::{Mock, MockOptions};
use serde_json::{Value, json};

use crate::harness::{Gateway, output_text, over_chat, start_with};

/// Counted by the mock as one token per word; by `o200k_base` as several.
const LONG_WORD: &str = "antidisestablishmentarianism";

/// A gateway whose only backends are the `backends:` entries of `yaml`, in
/// which `{url}` is the mock's and `{protocol}` the suite's.
async fn gateway_over(yaml: &str, mock: &Mock) -> Gateway {
    let protocol = if over_chat() {
        "chat_completions"
    } else {
        "responses"
    };
    let text = format!("backends:\n{yaml}")
        .replace("{url}", &mock.url)
        .replace("{protocol}", protocol);
    let parsed = antwort::Config::from_yaml(&text).unwrap();
    start_with(move |config| {
        config.engine.backend_url = None;
        config.engine.default_model = None;
        config.backends = parsed.backends;
    })
    .await
}

async fn input_tokens(gateway: &Gateway, body: Value) -> u64 {
    let answer = gateway.post("/v1/responses/input_tokens", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body.as_object().unwrap().len(),
        2,
        "which counter counted is not said: {}",
        answer.body
    );
    answer.body["input_tokens"].as_u64().unwrap()
}

/// A backend that counts with its endpoint (`counted`), the same without it
/// (`estimated`), and one whose endpoint fails (`broken`: the mock does not
/// know `missing-model`), each with a window of 200 tokens.
const THREE_WAYS: &str = r#"
  - name: vllm
    url: "{url}"
    protocol: {protocol}
    tokenize: true
    models:
      - {id: counted, model: mock-model, context_window: 200}
      - {id: broken, model: missing-model, context_window: 200}
  - name: plain
    url: "{url}"
    protocol: {protocol}
    models:
      - {id: estimated, model: mock-model, context_window: 200}
"#;

#[tokio::test]
async fn input_tokens_are_the_backends_count_when_it_has_a_tokenizer_endpoint() {
    let mock = antwort_mock::start(MockOptions::default()).await.unwrap();
    let gateway = gateway_over(THREE_WAYS, &mock).await;
    let words = format!("hello there {LONG_WORD} kenobi");
    let body = |model: &str| json!({"model": model, "instructions": "be brief", "input": words});

    let counted = input_tokens(&gateway, body("counted")).await;
    // The mock's count: a token per message, and per word.
    assert_eq!(counted, (1 + 2) + (1 + 4));
    assert_eq!(mock.stats.tokenize_requests.load(Ordering::SeqCst), 1);

    let estimated = input_tokens(&gateway, body("estimated")).await;
    assert!(estimated > counted + 4, "o200k_base: {estimated}");
    assert_eq!(mock.stats.tokenize_requests.load(Ordering::SeqCst), 1);

    let fallen_back = input_tokens(&gateway, body("broken")).await;
    assert_eq!(
        fallen_back, estimated,
        "a failing endpoint leaves the count to o200k_base"
    );
    assert_eq!(mock.stats.tokenize_requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_endpoint_decides_whether_a_turn_fits_the_window() {
    let mock = antwort_mock::start(MockOptions::default()).await.unwrap();
    let gateway = gateway_over(THREE_WAYS, &mock).await;
    // 61 tokens to the mock, several hundred to o200k_base.
    let long_words = format!("{LONG_WORD} ").repeat(60);
    let accepted = gateway
        .create(json!({"model": "counted", "input": format!("{long_words}[[reply:fits]]")}))
        .await;
    assert_eq!(output_text(&accepted), "fits");
    let estimated = gateway
        .post(
            "/v1/responses",
            &json!({"model": "estimated", "input": long_words}),
        )
        .await;
    assert_eq!(estimated.status, 400, "{}", estimated.body);
    assert_eq!(estimated.body["error"]["code"], "context_length_exceeded");

    // Over the window by the endpoint's count too: refused, with its count.
    let refused = gateway
        .post(
            "/v1/responses",
            &json!({"model": "counted", "input": "word ".repeat(250)}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "context_length_exceeded");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("251 tokens"), "{message}");

    // With truncation, the oldest turn goes until the endpoint agrees.
    let first = gateway
        .create(
            json!({"model": "counted", "input": format!("{} [[reply:ok]]", "old ".repeat(150))}),
        )
        .await;
    let asked = mock.stats.tokenize_requests.load(Ordering::SeqCst);
    let fitted = gateway
        .create(json!({"model": "counted", "input": "newest ".repeat(60),
            "previous_response_id": first["id"], "truncation": "auto"}))
        .await;
    assert!(
        output_text(&fitted).contains("messages: 1"),
        "{}",
        output_text(&fitted)
    );
    assert!(
        mock.stats.tokenize_requests.load(Ordering::SeqCst) >= asked + 2,
        "counted, fitted, counted again"
    );
}

/// A word-level tokenizer.json: words and punctuation, each one token.
const WORD_LEVEL: &str = r#"{
    "version": "1.0",
    "truncation": null,
    "padding": null,
    "added_tokens": [],
    "normalizer": null,
    "pre_tokenizer": {"type": "Whitespace"},
    "post_processor": null,
    "decoder": null,
    "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "hello": 1}, "unk_token": "[UNK]"}
}"#;

fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("antwort-tokenizer-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test]
async fn a_models_tokenizer_json_counts_its_tokens() {
    let mock = antwort_mock::start(MockOptions::default()).await.unwrap();
    let path = temp_file("counts", WORD_LEVEL);
    let yaml = format!(
        r#"
  - name: local
    url: "{{url}}"
    protocol: {{protocol}}
    models:
      - {{id: words, model: mock-model, context_window: 50, tokenizer: "{}"}}
      - {{id: estimated, model: mock-model, context_window: 50}}
"#,
        path.display()
    );
    let gateway = gateway_over(&yaml, &mock).await;
    let input = format!("{LONG_WORD}, {LONG_WORD}!");
    let words = input_tokens(&gateway, json!({"model": "words", "input": input})).await;
    // Four words and marks, four for the message, three for the reply's header.
    assert_eq!(words, 4 + 4 + 3);
    let estimated = input_tokens(&gateway, json!({"model": "estimated", "input": input})).await;
    assert!(estimated > words + 4, "o200k_base: {estimated}");

    // And the fit counts with it: 20 long words and the directive take 32.
    let long = format!("{LONG_WORD} ").repeat(20);
    let answer = gateway
        .create(json!({"model": "words", "input": format!("{long}[[reply:fits]]")}))
        .await;
    assert_eq!(output_text(&answer), "fits");
    let refused = gateway
        .post(
            "/v1/responses",
            &json!({"model": "estimated", "input": long}),
        )
        .await;
    assert_eq!(refused.body["error"]["code"], "context_length_exceeded");
    assert_eq!(mock.stats.tokenize_requests.load(Ordering::SeqCst), 0);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_tokenizer_that_does_not_load_stops_the_start_naming_its_key() {
    let path = temp_file("broken", r#"{"not": "a tokenizer"}"#);
    let yaml = format!(
        "backends:\n  - name: local\n    url: http://127.0.0.1:9\n    models:\n      - {{id: m, tokenizer: \"{}\"}}\n",
        path.display()
    );
    let mut config = antwort::Config::from_yaml(&yaml).unwrap();
    config.storage.kind = antwort::config::StorageKind::Memory;
    config.validate().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let served = tokio::time::timeout(
        Duration::from_secs(10),
        antwort::serve(&config, listener, std::future::pending()),
    )
    .await
    .expect("the start fails at once");
    let error = format!("{:#}", served.unwrap_err());
    assert!(error.contains("backends[0].models[0].tokenizer"), "{error}");
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
