//! Any string as the query of `GET /v1/responses`: parsing never panics, and
//! every query it accepts is answered by the store (SQLite, in memory) without
//! an error, whatever ids, filters and metadata keys it names.

#![no_main]

use std::sync::OnceLock;

use antwort_engine::store::{ResponseStore, Scope};
use antwort_store::{SqlStore, StoreConfig};
use libfuzzer_sys::fuzz_target;

fn runtime_and_store() -> &'static (tokio::runtime::Runtime, SqlStore) {
    static STORE: OnceLock<(tokio::runtime::Runtime, SqlStore)> = OnceLock::new();
    STORE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let store = runtime
            .block_on(SqlStore::open(&StoreConfig::Memory))
            .expect("a memory store");
        // Rows for the filters to run over: metadata with the keys the seeds
        // name, and one with quotes, dots and non-ASCII in its keys.
        for (id, metadata) in [
            ("resp_1", serde_json::json!({"team": "blue", "a.b\"c\\": "x"})),
            ("resp_2", serde_json::json!({"k": "v", "é ü": "ß"})),
        ] {
            let response = serde_json::json!({
                "id": id, "object": "response", "created_at": 1, "status": "completed",
                "model": "m", "output": [], "metadata": metadata,
                "tools": [], "tool_choice": "auto", "parallel_tool_calls": true, "text": {"format": {"type": "text"}},
                "truncation": "disabled", "top_p": 1.0, "temperature": 1.0, "presence_penalty": 0.0,
                "frequency_penalty": 0.0, "top_logprobs": 0, "store": true, "background": false,
                "service_tier": "default"
            });
            let response = serde_json::from_value(response).expect("a response");
            let record = antwort_engine::store::StoredResponse {
                response,
                input: Vec::new(),
                conversation_id: None,
            };
            runtime
                .block_on(store.save_response(&Scope::default(), record))
                .expect("saved");
        }
        (runtime, store)
    })
}

fuzz_target!(|query: &[u8]| {
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let Ok(parsed) = antwort_server::parse_list_query(query) else {
        return;
    };
    let (runtime, store) = runtime_and_store();
    let answer = runtime.block_on(store.list_responses(&Scope::default(), &parsed));
    assert!(answer.is_ok(), "{query:?}: {answer:?}");
});
