//! A property: whatever JSON value a client sends as a create body, the answer
//! is a 200 or a 4xx in the OpenAI error shape, never a 5xx and never a hang.
//! Values are drawn from every JSON shape, biased towards objects with the
//! request's own field names (so that the cases reach past the first check).

use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::harness::{Gateway, Storage, client, start_on, storages};

/// Field names of the create request, and some that are not.
const KEYS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "previous_response_id",
    "conversation",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tool_calls",
    "store",
    "stream",
    "include",
    "text",
    "reasoning",
    "temperature",
    "top_p",
    "top_logprobs",
    "max_output_tokens",
    "truncation",
    "metadata",
    "user",
    "prompt_cache_key",
    "service_tier",
    "type",
    "role",
    "content",
    "id",
    "name",
    "arguments",
    "call_id",
    "output",
    "server_label",
    "server_url",
    "format",
    "schema",
    "x",
];

/// Strings as clients get them wrong: empty, NUL, control characters,
/// surrogate-free non-ASCII, mock directives, ids.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just(String::new()),
        Just("\u{0}".to_owned()),
        Just("mock-model".to_owned()),
        Just("user".to_owned()),
        Just("message".to_owned()),
        Just("function".to_owned()),
        Just("input_text".to_owned()),
        Just("item_reference".to_owned()),
        Just("resp_0".to_owned()),
        Just("[[tokens:3]]".to_owned()),
        Just("é\u{1F600}\t\n".to_owned()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        (0u32..40).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner.clone()), 0..6).prop_map(
                |pairs| {
                    Value::Object(
                        pairs
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect::<Map<_, _>>(),
                    )
                }
            ),
            prop::collection::vec((text(), inner), 0..3)
                .prop_map(|pairs| { Value::Object(pairs.into_iter().collect::<Map<_, _>>()) }),
        ]
    })
}

/// A message item, sometimes with a field of any value beside or instead of
/// its own.
fn item() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(&["user", "assistant", "system", "developer", "tool", ""][..]),
        text(),
        prop::option::of((prop::sample::select(KEYS), json_value())),
    )
        .prop_map(|(role, content, extra)| {
            let mut item = json!({"type": "message", "role": role, "content": content});
            if let Some((key, value)) = extra {
                item[key] = value;
            }
            item
        })
}

/// A create body that is nearly right: an input, maybe a model, and a few
/// fields with any value.
fn request_like() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            text().prop_map(Value::String),
            prop::collection::vec(item(), 0..4).prop_map(Value::Array),
        ],
        prop::option::of(text()),
        prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..4),
    )
        .prop_map(|(input, model, fields)| {
            let mut body = json!({"input": input});
            if let Some(model) = model {
                body["model"] = json!(model);
            }
            for (key, value) in fields {
                body[key] = value;
            }
            body
        })
}

fn create_body() -> impl Strategy<Value = Value> {
    prop_oneof![1 => json_value(), 3 => request_like()]
}

/// One gateway for every case, on a runtime of its own (proptest's cases are
/// synchronous), on PostgreSQL when it is there: the stricter store, which
/// refuses what SQLite keeps.
fn gateway() -> &'static (tokio::runtime::Runtime, Gateway) {
    static GATEWAY: OnceLock<(tokio::runtime::Runtime, Gateway)> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let storage = storages().last().copied().unwrap_or(Storage::Sqlite);
        let gateway = runtime.block_on(start_on(storage, |config| {
            config.engine.backend_timeout = Duration::from_secs(5);
        }));
        (runtime, gateway)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_json_create_body_is_a_200_or_a_4xx_in_the_error_shape(body in create_body()) {
        let (runtime, gateway) = gateway();
        let (status, answer) = runtime.block_on(async {
            let response = tokio::time::timeout(
                Duration::from_secs(20),
                client()
                    .post(format!("{}/v1/responses", gateway.url))
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send(),
            )
            .await
            .expect("an answer within 20 s")
            .unwrap();
            let status = response.status().as_u16();
            let text = tokio::time::timeout(Duration::from_secs(20), response.text())
                .await
                .expect("the whole answer within 20 s")
                .unwrap();
            (status, text)
        });
        prop_assert!(status == 200 || (400..500).contains(&status), "{status} for {body}: {answer}");
        if status != 200 {
            let error: Value = serde_json::from_str(&answer).unwrap();
            prop_assert!(error["error"]["message"].is_string(), "{answer}");
            prop_assert!(error["error"]["type"].is_string(), "{answer}");
            prop_assert!(error["error"]["code"].is_string(), "{answer}");
        }
    }
}
