//! Bad input and failing backends: the OpenAI error shape, the right status, and the
//! parameter at fault.

use serde_json::{Value, json};

use crate::harness::{Answer, start, start_with};

fn assert_error(answer: &Answer, status: u16, code: &str, param: Option<&str>) {
    assert_eq!(answer.status, status, "{}", answer.body);
    let error = &answer.body["error"];
    assert_eq!(error["code"], code, "{}", answer.body);
    assert_eq!(
        error["param"],
        param.map_or(Value::Null, Value::from),
        "{}",
        answer.body
    );
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(error["type"].is_string());
}

#[tokio::test]
async fn malformed_and_wrongly_typed_bodies_are_400s_naming_the_parameter() {
    let gateway = start().await;
    let invalid_json = gateway
        .post_raw("/v1/responses", "{\"input\": ".into(), "application/json")
        .await;
    assert_error(&invalid_json, 400, "invalid_json", None);

    let cases = [
        (
            json!({"input": "hi", "temperature": "hot"}),
            "invalid_value",
            "temperature",
        ),
        (
            json!({"input": "hi", "temperature": 2.5}),
            "invalid_value",
            "temperature",
        ),
        (
            json!({"input": "hi", "top_p": 1.5}),
            "invalid_value",
            "top_p",
        ),
        (
            json!({"input": "hi", "top_logprobs": 30}),
            "invalid_value",
            "top_logprobs",
        ),
        (
            json!({"input": "hi", "max_output_tokens": 2}),
            "invalid_value",
            "max_output_tokens",
        ),
        (
            json!({"input": "hi", "bogus_field": 1}),
            "unknown_parameter",
            "bogus_field",
        ),
        (
            json!({"input": [{"type": "teleport"}]}),
            "invalid_value",
            "input[0]",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_hologram"}]}]}),
            "invalid_value",
            "input[0]",
        ),
        (json!({"input": 42}), "invalid_value", "input"),
        (
            json!({"input": "hi", "tool_choice": "sometimes"}),
            "invalid_value",
            "tool_choice",
        ),
        (
            json!({"input": "hi", "tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "g"}}),
            "invalid_value",
            "tool_choice",
        ),
        (
            json!({"input": "hi", "tool_choice": "required"}),
            "invalid_value",
            "tool_choice",
        ),
        (
            json!({"input": "hi", "tools": [{"type": "teleporter"}]}),
            "invalid_value",
            "tools[0]",
        ),
        (
            json!({"input": "hi", "include": ["everything"]}),
            "invalid_value",
            "include[0]",
        ),
        (
            json!({"input": "hi", "metadata": {"k": 1}}),
            "invalid_value",
            "metadata.k",
        ),
        (
            json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
            "invalid_value",
            "input[0]",
        ),
        (
            json!({"input": [{"type": "function_call_output", "call_id": "c_nowhere", "output": "x"}]}),
            "invalid_value",
            "input[0]",
        ),
        (
            json!({"input": "hi", "previous_response_id": "resp_404"}),
            "previous_response_not_found",
            "previous_response_id",
        ),
        (
            json!({"input": "hi", "background": true}),
            "unsupported_parameter",
            "background",
        ),
        (json!({}), "missing_required_parameter", "input"),
    ];
    for (body, code, param) in cases {
        let answer = gateway.post("/v1/responses", &body).await;
        assert_error(&answer, 400, code, Some(param));
    }
}

#[tokio::test]
async fn missing_model_without_a_default_is_a_400() {
    let gateway = start_with(|config| config.engine.default_model = None).await;
    let answer = gateway.post("/v1/responses", &json!({"input": "hi"})).await;
    assert_error(&answer, 400, "missing_required_parameter", Some("model"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let gateway = start_with(|config| config.server.max_body_bytes = 1024).await;
    let answer = gateway
        .post("/v1/responses", &json!({"input": "x".repeat(4096)}))
        .await;
    assert_error(&answer, 413, "request_too_large", None);
}

#[tokio::test]
async fn backend_failures_before_the_first_byte_are_http_errors() {
    // Retries take a few hundred milliseconds: no keepalive starts the stream
    // meanwhile.
    let gateway =
        start_with(|config| config.server.keepalive_interval = std::time::Duration::from_secs(10))
            .await;
    let server_error = gateway
        .post("/v1/responses", &json!({"input": "[[error:500]]"}))
        .await;
    assert_error(&server_error, 502, "backend_error", None);
    assert!(
        server_error.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("500")
    );

    let limited = gateway
        .post(
            "/v1/responses",
            &json!({"input": "[[error:429]] [[retry_after:70]]"}),
        )
        .await;
    // Longer than resilience.retry_after_max: the client is told to wait.
    assert_error(&limited, 429, "rate_limit_exceeded", None);
    assert_eq!(limited.headers["retry-after"], "70");

    let missing = gateway
        .post(
            "/v1/responses",
            &json!({"model": "missing-model", "input": "hi"}),
        )
        .await;
    assert_error(&missing, 404, "model_not_found", None);

    // The same errors when the client asked for a stream: nothing was sent yet.
    let streamed = gateway
        .post(
            "/v1/responses",
            &json!({"input": "[[error:503]]", "stream": true}),
        )
        .await;
    assert_error(&streamed, 502, "backend_error", None);
}

#[tokio::test]
async fn an_unreachable_backend_is_a_503_that_says_so() {
    // A loopback port bound but never listening: nobody can serve on it (as a
    // test running beside this one could on a released port), and connecting
    // to it is refused.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = closed.local_addr().unwrap().port();
    let gateway = start_with(|config| {
        config.engine.backend_url = Some(format!("http://127.0.0.1:{port}").into())
    })
    .await;
    let answer = gateway.post("/v1/responses", &json!({"input": "hi"})).await;
    assert_error(&answer, 503, "backend_unavailable", None);
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
    let ready = gateway.get("/readyz").await;
    assert_eq!(ready.status, 503);
}

#[tokio::test]
async fn a_backend_that_does_not_answer_in_time_is_a_504() {
    let gateway =
        start_with(|config| config.engine.backend_timeout = std::time::Duration::from_millis(200))
            .await;
    let answer = gateway
        .post("/v1/responses", &json!({"input": "[[ttft_ms:3000]]"}))
        .await;
    assert_error(&answer, 504, "backend_timeout", None);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let gateway = start().await;
    let missing = gateway.get("/v1/nothing").await;
    assert_error(&missing, 404, "not_found", None);
    let wrong_method = crate::harness::client()
        .put(format!("{}/v1/responses", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    let body: serde_json::Value = wrong_method.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}
