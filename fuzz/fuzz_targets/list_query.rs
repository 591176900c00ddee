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
