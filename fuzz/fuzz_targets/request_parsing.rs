//! Any bytes as a request body: parsing and validation never panic, and a
//! create request that parses also plans (the engine's first step) without
//! panicking, whatever it holds. The same bytes as a WebSocket message too.

#![no_main]

use std::sync::Arc;

use antwort_api::{
    AddConversationItemsRequest, CompactRequest, CreateConversationRequest, CreateResponseRequest,
    Item, UpdateConversationRequest, check_item_ids, normalize_items, parse_json,
};
use antwort_engine::ToolType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(request) = CreateResponseRequest::from_json(body) {
        let types: Vec<Arc<dyn ToolType>> = vec![Arc::new(antwort_engine::mcp::McpType::new(
            Arc::new(antwort_engine::mcp::NoMcp),
        ))];
        let _ = antwort_engine::prepare::plan(
            request,
            Some("m"),
            "resp_1".into(),
            1,
            &types,
            &antwort_engine::Scope::default(),
        );
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = antwort_server::ws::ClientMessage::parse(text);
    }
    let _ = CompactRequest::from_json(body);
    let _ = parse_json::<CreateConversationRequest>(body);
    let _ = parse_json::<UpdateConversationRequest>(body);
    let _ = parse_json::<AddConversationItemsRequest>(body);
    if let Ok(mut items) = parse_json::<Vec<Item>>(body) {
        let _ = check_item_ids("input", &items);
        normalize_items(&mut items);
        // What is stored is read back: the stored form must serialize and parse.
        let stored = serde_json::to_vec(&items).expect("items serialize");
        let _: Vec<Item> = serde_json::from_slice(&stored).expect("the stored form parses");
    }
});
