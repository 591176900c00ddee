//! Authentication and tenancy from the outside: every route but the allowlist
//! wants a credential; no tenant, and no owner within one, reaches another's
//! objects (404, as if they did not exist) on SQLite and PostgreSQL; scopes
//! refuse with 403; rate limits answer 429 with OpenAI's headers; keys made at
//! run time work on every replica of a database and stop when revoked; the
//! audit log records what happened without a secret; and configurations that
//! promise authentication nobody could pass refuse to start.

use std::time::Duration;

use antwort::config::{AuthKind, Config};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Answer, StoreTarget, api_key, call, start_on, start_with, storages};

const ALICE: &str = "sk-test-alice";
const BOB: &str = "sk-test-bob";
const EVE: &str = "sk-test-eve";
const ROOT: &str = "sk-test-root";
const READER: &str = "sk-test-reader";

/// Alice and Bob share tenant acme, whose admin is root; Eve is in globex.
fn keys(config: &mut Config) {
    config.auth.api_keys = vec![
        api_key(ALICE, "acme", "alice", &[]),
        api_key(BOB, "acme", "bob", &[]),
        api_key(EVE, "globex", "eve", &[]),
        api_key(ROOT, "acme", "root", &["*"]),
        api_key(
            READER,
            "acme",
            "alice",
            &["responses:read", "conversations:read"],
        ),
    ];
}

/// A path with every `{name}` segment filled in.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "x_1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_but_the_allowlist_needs_a_credential() {
    let gateway = start_with(keys).await;
    let (rules, _) = antwort_server::route_table().into_parts();
    let public: Vec<&str> = rules
        .iter()
        .filter(|rule| rule.access == antwort_server::access::Access::Public)
        .map(|rule| rule.path)
        .collect();
    assert_eq!(public, ["/healthz", "/readyz"], "the allowlist grew");
    assert!(
        rules.len() > 15,
        "the table lists only {} routes",
        rules.len()
    );
    for rule in &rules {
        let path = concrete(rule.path);
        let body = json!({});
        let body = (rule.method != Method::GET && rule.method != Method::DELETE).then_some(&body);
        for key in [None, Some("sk-wrong")] {
            let answer = call(&gateway.url, rule.method.clone(), &path, key, body).await;
            if public.contains(&rule.path) {
                assert_ne!(answer.status, 401, "{} {path} is public", rule.method);
            } else {
                assert_eq!(
                    answer.status, 401,
                    "{} {path} with {key:?}: {}",
                    rule.method, answer.body
                );
                assert_eq!(answer.body["error"]["code"], "invalid_api_key");
                assert_eq!(answer.body["error"]["type"], "invalid_request_error");
            }
        }
    }
    // HEAD runs a GET route's handler: it needs what GET needs.
    for rule in rules.iter().filter(|rule| rule.method == Method::GET) {
        let path = concrete(rule.path);
        let anonymous = call(&gateway.url, Method::HEAD, &path, None, None).await;
        let expected = if public.contains(&rule.path) {
            200
        } else {
            401
        };
        assert_eq!(anonymous.status, expected, "HEAD {path}");
    }
    let head = call(
        &gateway.url,
        Method::HEAD,
        "/v1/admin/keys",
        Some(READER),
        None,
    )
    .await;
    assert_eq!(head.status, 403, "HEAD takes GET's scope");
    // What no route serves needs a credential as well: nothing answers a
    // stranger but the allowlist.
    let unknown = call(&gateway.url, Method::GET, "/v1/nothing", None, None).await;
    assert_eq!(unknown.status, 401);
    let known = call(&gateway.url, Method::GET, "/v1/nothing", Some(ALICE), None).await;
    assert_eq!(known.status, 404);
    // `api-key`, Azure's header, works as the bearer does.
    let azure = crate::harness::client()
        .get(format!("{}/v1/models", gateway.url))
        .header("api-key", ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(azure.status(), 200);
}

fn assert_hidden(answer: &Answer, what: &str) {
    assert!(
        answer.status == 404 || answer.status == 400,
        "{what}: {} {}",
        answer.status,
        answer.body
    );
    if answer.status == 400 {
        // Only "not found" in a 400's words (a previous response, an item).
        let message = answer.body["error"]["message"].as_str().unwrap_or("");
        assert!(
            ["not found", "No ", "names no"]
                .iter()
                .any(|words| message.contains(words)),
            "{what}: {message}"
        );
    }
    assert!(
        !answer.body.to_string().contains("secret plan"),
        "{what} leaked content"
    );
}

#[tokio::test]
async fn no_request_reaches_another_tenants_or_owners_objects() {
    for storage in storages() {
        let gateway = start_on(storage, keys).await;
        let url = gateway.url.as_str();
        let post = |key, path: &'static str, body: Value| async move {
            call(url, Method::POST, path, Some(key), Some(&body)).await
        };
        let created = post(
            ALICE,
            "/v1/responses",
            json!({"input": "the secret plan", "store": true}),
        )
        .await;
        assert_eq!(created.status, 200, "{}", created.body);
        let response = created.body["id"].as_str().unwrap().to_owned();
        let conversation = post(
            ALICE,
            "/v1/conversations",
            json!({"items": [{"type": "message", "role": "user", "content": "the secret plan"}]}),
        )
        .await;
        assert_eq!(conversation.status, 200, "{}", conversation.body);
        let conversation = conversation.body["id"].as_str().unwrap().to_owned();
        let items = call(
            url,
            Method::GET,
            &format!("/v1/conversations/{conversation}/items"),
            Some(ALICE),
            None,
        )
        .await;
        let item = items.body["data"][0]["id"].as_str().unwrap().to_owned();
        let input = call(
            url,
            Method::GET,
            &format!("/v1/responses/{response}/input_items"),
            Some(ALICE),
            None,
        )
        .await;
        let input_item = input.body["data"][0]["id"].as_str().unwrap().to_owned();

        for stranger in [BOB, EVE] {
            let who = format!("{storage:?} {stranger}");
            let by_id: Vec<(Method, String, Option<Value>)> = vec![
                (Method::GET, format!("/v1/responses/{response}"), None),
                (
                    Method::GET,
                    format!("/v1/responses/{response}/input_items"),
                    None,
                ),
                (Method::DELETE, format!("/v1/responses/{response}"), None),
                (
                    Method::GET,
                    format!("/v1/conversations/{conversation}"),
                    None,
                ),
                (
                    Method::POST,
                    format!("/v1/conversations/{conversation}"),
                    Some(json!({"metadata": {"k": "v"}})),
                ),
                (
                    Method::GET,
                    format!("/v1/conversations/{conversation}/items"),
                    None,
                ),
                (
                    Method::POST,
                    format!("/v1/conversations/{conversation}/items"),
                    Some(json!({"items": [{"type": "message", "role": "user", "content": "x"}]})),
                ),
                (
                    Method::GET,
                    format!("/v1/conversations/{conversation}/items/{item}"),
                    None,
                ),
                (
                    Method::DELETE,
                    format!("/v1/conversations/{conversation}/items/{item}"),
                    None,
                ),
                (
                    Method::DELETE,
                    format!("/v1/conversations/{conversation}"),
                    None,
                ),
                (
                    Method::POST,
                    "/v1/responses".to_owned(),
                    Some(json!({"input": "continue", "previous_response_id": response})),
                ),
                (
                    Method::POST,
                    "/v1/responses".to_owned(),
                    Some(json!({"input": "continue", "conversation": conversation})),
                ),
                (
                    Method::POST,
                    "/v1/responses".to_owned(),
                    Some(json!({"input": [{"type": "item_reference", "id": input_item}]})),
                ),
                (
                    Method::POST,
                    "/v1/responses/input_tokens".to_owned(),
                    Some(json!({"input": "x", "previous_response_id": response})),
                ),
                (
                    Method::POST,
                    "/v1/responses/compact".to_owned(),
                    Some(json!({"model": "mock-model", "previous_response_id": response})),
                ),
            ];
            for (method, path, body) in by_id {
                let answer = call(url, method.clone(), &path, Some(stranger), body.as_ref()).await;
                assert_hidden(&answer, &format!("{who}: {method} {path}"));
            }
            let listed = call(url, Method::GET, "/v1/responses", Some(stranger), None).await;
            assert_eq!(listed.status, 200, "{who}");
            assert!(
                !listed.body.to_string().contains(&response),
                "{who}: a list shows a foreign response"
            );
        }
        // Nothing of Alice's changed, and her tenant's admin sees it all.
        let kept = call(
            url,
            Method::GET,
            &format!("/v1/responses/{response}"),
            Some(ALICE),
            None,
        )
        .await;
        assert_eq!(kept.status, 200, "{storage:?}");
        let items = call(
            url,
            Method::GET,
            &format!("/v1/conversations/{conversation}/items"),
            Some(ALICE),
            None,
        )
        .await;
        assert_eq!(
            items.body["data"].as_array().unwrap().len(),
            1,
            "{storage:?}: {}",
            items.body
        );
        assert!(items.body["data"][0]["id"] == item.as_str());
        let by_admin = call(url, Method::GET, "/v1/responses", Some(ROOT), None).await;
        assert!(by_admin.body.to_string().contains(&response), "{storage:?}");
        let own_list = call(url, Method::GET, "/v1/responses", Some(ALICE), None).await;
        assert!(own_list.body.to_string().contains(&response), "{storage:?}");
        let deleted = call(
            url,
            Method::DELETE,
            &format!("/v1/conversations/{conversation}"),
            Some(ROOT),
            None,
        )
        .await;
        assert_eq!(
            deleted.status, 200,
            "{storage:?}: the admin deletes in its tenant"
        );
    }
}

#[tokio::test]
async fn a_missing_scope_is_a_403_naming_it() {
    let gateway = start_with(keys).await;
    let url = gateway.url.as_str();
    let created = call(
        url,
        Method::POST,
        "/v1/responses",
        Some(ALICE),
        Some(&json!({"input": "hi"})),
    )
    .await;
    let id = created.body["id"].as_str().unwrap();
    // The reader key is Alice's too: it reads her response but writes nothing.
    let read = call(
        url,
        Method::GET,
        &format!("/v1/responses/{id}"),
        Some(READER),
        None,
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.body);
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/responses".to_owned(),
            Some(json!({"input": "hi"})),
        ),
        (Method::DELETE, format!("/v1/responses/{id}"), None),
        (
            Method::POST,
            "/v1/conversations".to_owned(),
            Some(json!({})),
        ),
        (Method::GET, "/v1/admin/keys".to_owned(), None),
    ] {
        let answer = call(url, method.clone(), &path, Some(READER), body.as_ref()).await;
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], "insufficient_permissions");
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Missing scope")
        );
    }
    // A user key has no admin scope either.
    let keys = call(url, Method::GET, "/v1/admin/keys", Some(ALICE), None).await;
    assert_eq!(keys.status, 403);
    // A key for a subject no store could keep is a 400, not a 5xx.
    let bad = call(
        url,
        Method::POST,
        "/v1/admin/keys",
        Some(ROOT),
        Some(&json!({"subject": "c\u{0}i"})),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
}

#[tokio::test]
async fn requests_past_a_limit_get_a_429_with_openais_headers() {
    let gateway = start_with(|config| {
        keys(config);
        config.auth.rate_limits.per_key.requests_per_minute = Some(2);
    })
    .await;
    let url = gateway.url.as_str();
    let first = call(url, Method::GET, "/v1/models", Some(ALICE), None).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.headers["x-ratelimit-limit-requests"], "2");
    assert_eq!(first.headers["x-ratelimit-remaining-requests"], "1");
    assert!(first.headers.contains_key("x-ratelimit-reset-requests"));
    call(url, Method::GET, "/v1/models", Some(ALICE), None).await;
    let refused = call(url, Method::GET, "/v1/models", Some(ALICE), None).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(refused.body["error"]["type"], "rate_limit_error");
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(refused.headers["x-ratelimit-remaining-requests"], "0");
    // Another key has a bucket of its own.
    assert_eq!(
        call(url, Method::GET, "/v1/models", Some(BOB), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn used_tokens_count_against_the_tokens_per_minute() {
    let gateway = start_with(|config| {
        keys(config);
        config.auth.rate_limits.per_tenant.tokens_per_minute = Some(10);
    })
    .await;
    let url = gateway.url.as_str();
    let body = json!({"input": "tell me a long story"});
    let first = call(url, Method::POST, "/v1/responses", Some(ALICE), Some(&body)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body["usage"]["total_tokens"].as_u64().unwrap() >= 10);
    // Bob is in the same tenant: its bucket is empty for him too.
    let second = call(url, Method::POST, "/v1/responses", Some(BOB), Some(&body)).await;
    assert_eq!(second.status, 429, "{}", second.body);
    assert_eq!(second.headers["x-ratelimit-remaining-tokens"], "0");
    assert_eq!(second.headers["x-ratelimit-limit-tokens"], "10");
    assert_eq!(
        call(url, Method::POST, "/v1/responses", Some(EVE), Some(&body))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_stream_past_the_concurrent_limit_is_refused_until_one_ends() {
    let gateway = start_with(|config| {
        keys(config);
        config.auth.rate_limits.per_key.concurrent_streams = Some(1);
    })
    .await;
    let url = gateway.url.clone();
    // The backend answers this one only after a while: its stream stays open.
    let slow = tokio::spawn(async move {
        call(
            &url,
            Method::POST,
            "/v1/responses",
            Some(ALICE),
            Some(&json!({"input": "[[status_ms:1500]] hi", "stream": true})),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stream = json!({"input": "hi", "stream": true});
    let refused = call(
        &gateway.url,
        Method::POST,
        "/v1/responses",
        Some(ALICE),
        Some(&stream),
    )
    .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("concurrent streams")
    );
    // A request that does not stream needs no slot.
    let plain = call(
        &gateway.url,
        Method::POST,
        "/v1/responses",
        Some(ALICE),
        Some(&json!({"input": "hi"})),
    )
    .await;
    assert_eq!(plain.status, 200);
    assert_eq!(slow.await.unwrap().status, 200);
    let again = call(
        &gateway.url,
        Method::POST,
        "/v1/responses",
        Some(ALICE),
        Some(&stream),
    )
    .await;
    assert_eq!(again.status, 200, "the slot came back");
}

#[tokio::test]
async fn keys_made_at_run_time_work_on_every_replica_until_revoked() {
    for storage in storages() {
        let target = StoreTarget::new(storage).await;
        let on_target = |config: &mut Config| {
            target.apply(config);
            config.auth.api_keys = vec![api_key(ROOT, "acme", "root", &["admin"])];
        };
        let first = start_with(on_target).await;
        // One at a time: the first runs the migrations before the second looks.
        let ready = call(&first.url, Method::GET, "/v1/admin/keys", Some(ROOT), None).await;
        assert_eq!(ready.status, 200, "{storage:?}: {}", ready.body);
        let second = start_with(on_target).await;
        let created = call(
            &first.url,
            Method::POST,
            "/v1/admin/keys",
            Some(ROOT),
            Some(&json!({"subject": "ci", "scopes": ["responses:read"]})),
        )
        .await;
        assert_eq!(created.status, 200, "{storage:?}: {}", created.body);
        let key = created.body["key"].as_str().unwrap().to_owned();
        let id = created.body["id"].as_str().unwrap().to_owned();
        assert!(key.starts_with("sk-antwort-"));
        assert_eq!(created.body["tenant"], "acme");
        // The other replica knows it without a restart.
        let used = call(&second.url, Method::GET, "/v1/responses", Some(&key), None).await;
        assert_eq!(used.status, 200, "{storage:?}: {}", used.body);
        let listed = call(&second.url, Method::GET, "/v1/admin/keys", Some(ROOT), None).await;
        assert!(listed.body.to_string().contains(&id), "{storage:?}");
        assert!(
            !listed.body.to_string().contains(&key),
            "{storage:?}: a list shows a key"
        );
        let write = call(
            &second.url,
            Method::POST,
            "/v1/responses",
            Some(&key),
            Some(&json!({"input": "x"})),
        )
        .await;
        assert_eq!(
            write.status, 403,
            "{storage:?}: the key has only responses:read"
        );
        let revoked = call(
            &first.url,
            Method::DELETE,
            &format!("/v1/admin/keys/{id}"),
            Some(ROOT),
            None,
        )
        .await;
        assert_eq!(revoked.status, 200, "{storage:?}: {}", revoked.body);
        assert_eq!(
            call(&first.url, Method::GET, "/v1/responses", Some(&key), None)
                .await
                .status,
            401
        );
        // The other replica stops honouring it within its cache's few seconds.
        let deadline = tokio::time::Instant::now()
            + antwort_auth::keys::RUNTIME_CACHE_TTL
            + Duration::from_secs(2);
        loop {
            let status = call(&second.url, Method::GET, "/v1/responses", Some(&key), None)
                .await
                .status;
            if status == 401 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{storage:?}: still {status}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let again = call(
            &first.url,
            Method::DELETE,
            &format!("/v1/admin/keys/{id}"),
            Some(ROOT),
            None,
        )
        .await;
        assert_eq!(again.status, 404, "{storage:?}: revoked once");
    }
}

#[tokio::test]
async fn the_audit_log_records_refusals_deletions_and_key_changes_without_a_secret() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "audit-{}-{:?}.jsonl",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&path);
    let output = path.to_string_lossy().into_owned();
    let gateway = start_with(|config| {
        keys(config);
        config.auth.audit.output = output;
    })
    .await;
    let url = gateway.url.as_str();
    call(
        url,
        Method::GET,
        "/v1/responses",
        Some("sk-not-a-key-at-all"),
        None,
    )
    .await;
    call(url, Method::GET, "/v1/admin/keys", Some(ALICE), None).await;
    let created = call(
        url,
        Method::POST,
        "/v1/responses",
        Some(ALICE),
        Some(&json!({"input": "hi"})),
    )
    .await;
    let id = created.body["id"].as_str().unwrap();
    call(
        url,
        Method::DELETE,
        &format!("/v1/responses/{id}"),
        Some(ALICE),
        None,
    )
    .await;
    let key = call(
        url,
        Method::POST,
        "/v1/admin/keys",
        Some(ROOT),
        Some(&json!({"subject": "ci"})),
    )
    .await;
    let new_key = key.body["key"].as_str().unwrap().to_owned();
    let key_id = key.body["id"].as_str().unwrap();
    call(
        url,
        Method::DELETE,
        &format!("/v1/admin/keys/{key_id}"),
        Some(ROOT),
        None,
    )
    .await;

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |event: &str| {
        lines
            .iter()
            .find(|line| line["event"] == event)
            .unwrap_or_else(|| panic!("no {event} in {text}"))
    };
    let failed = find("authentication_failed");
    assert_eq!(failed["path"], "/v1/responses");
    assert!(failed["source"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(
        failed["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let denied = find("permission_denied");
    assert_eq!(
        (denied["tenant"].as_str(), denied["subject"].as_str()),
        (Some("acme"), Some("alice"))
    );
    assert_eq!(find("deleted")["object"], id);
    assert_eq!(find("key_created")["subject"], "root");
    assert_eq!(find("key_revoked")["object"], key_id);
    for secret in [ALICE, ROOT, "sk-not-a-key-at-all", new_key.as_str()] {
        assert!(!text.contains(secret), "the audit log holds a secret");
    }
}

#[tokio::test]
async fn configurations_that_no_credential_could_pass_refuse_to_start() {
    let mut config = Config::default();
    config.engine.backend_url = Some("http://127.0.0.1:9".into());
    config.storage.kind = antwort::config::StorageKind::Memory;

    config.server.listen = Some("0.0.0.0:0".into());
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("without authentication"), "{error}");
    config.auth.kind = Some(AuthKind::None);
    config.validate().unwrap();

    config.server.listen = Some("127.0.0.1:0".into());
    config.auth.kind = Some(AuthKind::Jwt);
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("auth.jwt.issuer"), "{error}");

    config.auth.kind = Some(AuthKind::Apikey);
    config.validate().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = antwort::serve(&config, listener, async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no key is configured"), "{error}");
}

/// `antwort keys ...` on the SQLite file at `dsn`: its stdout, or the failure.
fn keys_cli(dsn: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_antwort"))
        .arg("keys")
        .args(args)
        .env("ANTWORT_STORAGE", "sqlite")
        .env("ANTWORT_STORAGE_DSN", dsn)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "antwort keys {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn the_keys_command_creates_lists_and_revokes_keys_a_gateway_honours() {
    let dsn = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("keys-cli-{}.db", std::process::id()))
        .to_string_lossy()
        .into_owned();
    let _ = std::fs::remove_file(&dsn);
    let key = keys_cli(
        &dsn,
        &[
            "create",
            "--tenant",
            "acme",
            "--subject",
            "ci",
            "--scope",
            "responses:read",
        ],
    )
    .trim()
    .to_owned();
    assert!(key.starts_with("sk-antwort-"), "{key}");
    let listed = keys_cli(&dsn, &["list"]);
    assert!(
        listed.contains("acme\tci\tresponses:read\tactive"),
        "{listed}"
    );
    assert!(!listed.contains(&key), "a list shows the key");
    let id = listed.split('\t').next().unwrap().to_owned();
    // A gateway with only database keys (type apikey, none configured) starts and honours it.
    let on_file = |config: &mut Config| {
        config.storage.kind = antwort::config::StorageKind::Sqlite;
        config.storage.dsn = Some(antwort::config::Dsn::new(dsn.clone()));
        config.auth.kind = Some(AuthKind::Apikey);
    };
    let gateway = start_with(on_file).await;
    assert_eq!(
        call(&gateway.url, Method::GET, "/v1/responses", Some(&key), None)
            .await
            .status,
        200
    );
    keys_cli(&dsn, &["revoke", &id]);
    assert!(keys_cli(&dsn, &["list"]).contains("revoked"));
    let deadline = tokio::time::Instant::now()
        + antwort_auth::keys::RUNTIME_CACHE_TTL
        + Duration::from_secs(2);
    while call(&gateway.url, Method::GET, "/v1/responses", Some(&key), None)
        .await
        .status
        != 401
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the revoked key still works"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn tls_is_served_when_configured() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let gateway = start_with(|config| {
        config.server.tls = Some(antwort::config::TlsSection {
            cert_file: format!("{fixtures}/tls-test.crt"),
            key_file: format!("{fixtures}/tls-test.key"),
        });
    })
    .await;
    let certificate = reqwest::Certificate::from_pem(
        &std::fs::read(format!("{fixtures}/tls-test-ca.crt")).unwrap(),
    )
    .unwrap();
    let tls_client = antwort_egress::client_builder(Duration::from_secs(5))
        .add_root_certificate(certificate)
        .build()
        .unwrap();
    let https = gateway.url.replace("http://", "https://");
    let answer = tls_client
        .get(format!("{https}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    // Plain HTTP on a TLS port gets no answer.
    assert!(
        crate::harness::client()
            .get(format!("{}/healthz", gateway.url))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn cors_is_off_unless_origins_are_configured() {
    let preflight = |url: String, origin: &'static str| async move {
        crate::harness::client()
            .request(Method::OPTIONS, format!("{url}/v1/responses"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap()
    };
    let closed = start_with(keys).await;
    let answer = preflight(closed.url.clone(), "https://app.example").await;
    assert!(!answer.headers().contains_key("access-control-allow-origin"));

    let open = start_with(|config| {
        keys(config);
        config.server.cors_allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let allowed = preflight(open.url.clone(), "https://app.example").await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = preflight(open.url.clone(), "https://evil.example").await;
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    // The request itself still needs its credential.
    let request = crate::harness::client()
        .get(format!("{}/v1/responses", open.url))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(request.status(), 401);
    assert_eq!(
        request.headers()["access-control-allow-origin"],
        "https://app.example"
    );
}

#[tokio::test]
async fn on_postgresql_replicas_share_their_rate_limits() {
    if !storages().contains(&crate::harness::Storage::Postgres) {
        return;
    }
    let target = StoreTarget::new(crate::harness::Storage::Postgres).await;
    let on_target = |config: &mut Config| {
        target.apply(config);
        keys(config);
        config.auth.rate_limits.per_key.requests_per_minute = Some(3);
    };
    let first = start_with(on_target).await;
    let ready = call(&first.url, Method::GET, "/v1/models", Some(BOB), None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let second = start_with(on_target).await;
    // The counts are per minute: start well inside one.
    let second_of_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if second_of_minute > 50 {
        tokio::time::sleep(Duration::from_secs(61 - second_of_minute)).await;
    }
    let models =
        |url: String| async move { call(&url, Method::GET, "/v1/models", Some(ALICE), None).await };
    assert_eq!(models(first.url.clone()).await.status, 200);
    assert_eq!(models(second.url.clone()).await.status, 200);
    let third = models(first.url.clone()).await;
    assert_eq!(third.status, 200);
    assert_eq!(third.headers["x-ratelimit-remaining-requests"], "0");
    // The fourth, on either replica, is one too many.
    let refused = models(second.url.clone()).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(models(first.url.clone()).await.status, 429);
}

#[tokio::test]
async fn tokens_are_charged_when_a_response_concludes_even_if_its_client_left() {
    // Anonymous (no keys): the limits apply to local use too.
    let gateway = start_with(|config| {
        config.auth.rate_limits.per_key.tokens_per_minute = Some(10);
    })
    .await;
    let id = crate::harness::stream_then_leave(
        &gateway.url,
        json!({"input": "[[tokens:30]] [[delay_ms:10]]", "store": true}),
    )
    .await;
    // The stored response goes on without its client and is charged when it ends.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while call(
        &gateway.url,
        Method::GET,
        &format!("/v1/responses/{id}"),
        None,
        None,
    )
    .await
    .body["status"]
        != "completed"
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the response never completed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let next = call(
        &gateway.url,
        Method::POST,
        "/v1/responses",
        None,
        Some(&json!({"input": "hi"})),
    )
    .await;
    assert_eq!(
        next.status, 429,
        "the left stream's tokens were not charged: {}",
        next.body
    );
    assert_eq!(next.headers["x-ratelimit-remaining-tokens"], "0");
}

#[tokio::test]
async fn a_tenant_admin_manages_only_its_own_tenants_keys() {
    let gateway = start_with(|config| {
        keys(config);
        config
            .auth
            .api_keys
            .push(api_key("sk-test-globex-root", "globex", "boss", &["admin"]));
    })
    .await;
    let url = gateway.url.as_str();
    let created = call(
        url,
        Method::POST,
        "/v1/admin/keys",
        Some(ROOT),
        Some(&json!({"subject": "ci"})),
    )
    .await;
    let id = created.body["id"].as_str().unwrap();
    let listed = call(
        url,
        Method::GET,
        "/v1/admin/keys",
        Some("sk-test-globex-root"),
        None,
    )
    .await;
    assert_eq!(listed.status, 200);
    assert!(
        !listed.body.to_string().contains(id),
        "another tenant's key is listed"
    );
    let revoke = call(
        url,
        Method::DELETE,
        &format!("/v1/admin/keys/{id}"),
        Some("sk-test-globex-root"),
        None,
    )
    .await;
    assert_eq!(revoke.status, 404, "{}", revoke.body);
    let own = call(url, Method::GET, "/v1/admin/keys", Some(ROOT), None).await;
    assert!(own.body.to_string().contains(id));
}

#[tokio::test]
async fn on_postgresql_replicas_share_their_concurrent_stream_limit() {
    if !storages().contains(&crate::harness::Storage::Postgres) {
        return;
    }
    let target = StoreTarget::new(crate::harness::Storage::Postgres).await;
    let on_target = |config: &mut Config| {
        target.apply(config);
        keys(config);
        config.auth.rate_limits.per_key.concurrent_streams = Some(1);
    };
    let first = start_with(on_target).await;
    let ready = call(&first.url, Method::GET, "/v1/models", Some(ALICE), None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let second = start_with(on_target).await;
    let url = first.url.clone();
    let slow = tokio::spawn(async move {
        let body = json!({"input": "[[status_ms:1500]] hi", "stream": true});
        call(
            &url,
            Method::POST,
            "/v1/responses",
            Some(ALICE),
            Some(&body),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stream = json!({"input": "hi", "stream": true});
    let refused = call(
        &second.url,
        Method::POST,
        "/v1/responses",
        Some(ALICE),
        Some(&stream),
    )
    .await;
    assert_eq!(
        refused.status, 429,
        "the other replica's stream counts: {}",
        refused.body
    );
    assert_eq!(slow.await.unwrap().status, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let again = call(
            &second.url,
            Method::POST,
            "/v1/responses",
            Some(ALICE),
            Some(&stream),
        )
        .await;
        if again.status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back: {}",
            again.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
