//! Identifier generation, in one place so that every id has the same shape: the
//! OpenAI prefix of its object kind and a time-ordered UUIDv7 in hex, which sorts by
//! creation time (useful for cursor pagination over stored objects).

#[allow(clippy::disallowed_methods, reason = "the one place that makes an id")]
fn make(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

pub fn response_id() -> String {
    make("resp")
}

pub fn compaction_id() -> String {
    make("cmp")
}

pub fn conversation_id() -> String {
    make("conv")
}

pub fn message_id() -> String {
    make("msg")
}

pub fn function_call_id() -> String {
    make("fc")
}

/// The id of a call item of a client tool that is not a function (`ctc_`,
/// `lsh_`, `sh_`, `apc_`).
pub fn client_call_id(prefix: &str) -> String {
    make(prefix)
}

pub fn reasoning_id() -> String {
    make("rs")
}

/// An `mcp_list_tools` item's id, tagged with the fingerprint of the server it
/// lists (`mcpl_<uuid>_<tag>`).
pub fn mcp_list_tools_id(server_tag: &str) -> String {
    format!("{}_{server_tag}", make("mcpl"))
}

pub fn mcp_call_id() -> String {
    make("mcp")
}

pub fn mcp_approval_request_id() -> String {
    make("mcpr")
}

/// Gives every input item without an id one of its kind, so that stored input can
/// be listed and referenced.
pub fn assign_item_ids(items: &mut [antwort_api::Item]) {
    use antwort_api::Item;
    for item in items {
        let (slot, prefix) = match item {
            Item::Message(m) => (&mut m.id, "msg"),
            Item::FunctionCall(c) => (&mut c.id, "fc"),
            Item::FunctionCallOutput(o) => (&mut o.id, "fco"),
            Item::Reasoning(r) => (&mut r.id, "rs"),
            Item::Compaction(c) => (&mut c.id, "cmp"),
            Item::McpApprovalResponse(a) => (&mut a.id, "mcpa"),
            Item::CustomToolCall(c) => (&mut c.id, "ctc"),
            Item::CustomToolCallOutput(o) => (&mut o.id, "ctco"),
            Item::ShellCall(c) => (&mut c.id, "sh"),
            Item::ShellCallOutput(o) => (&mut o.id, "sho"),
            Item::ApplyPatchCall(c) => (&mut c.id, "apc"),
            Item::ApplyPatchCallOutput(o) => (&mut o.id, "apco"),
            // These carry required ids of their own (they are output items sent back).
            Item::ItemReference(_)
            | Item::McpListTools(_)
            | Item::McpCall(_)
            | Item::McpApprovalRequest(_)
            | Item::WebSearchCall(_)
            | Item::LocalShellCall(_)
            | Item::LocalShellCallOutput(_) => continue,
        };
        if slot.as_deref().is_none_or(str::is_empty) {
            *slot = Some(make(prefix));
        }
    }
}

/// A call id for a tool call whose backend did not name it.
pub fn call_id() -> String {
    make("call")
}

/// This process's id among the replicas of one database (shared limits).
pub fn replica_id() -> String {
    make("replica")
}

pub fn api_key_id() -> String {
    make("key")
}

/// A new API key: `sk-antwort-` and 244 random bits (two UUIDv4s, from the
/// operating system's CSPRNG-seeded generator), shown once to its creator and
/// kept only as a hash.
#[allow(clippy::disallowed_methods, reason = "the one place that makes an id")]
pub fn api_key_secret() -> String {
    format!(
        "sk-antwort-{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_prefixed_and_unique() {
        let a = super::response_id();
        let b = super::response_id();
        assert!(a.starts_with("resp_"));
        assert_ne!(a, b);
    }
}
