//! Identifier generation, in one place so that every id has the same shape: the
//! OpenAI prefix of its object kind and a time-ordered UUIDv7 in hex, which sorts by
//! creation time (useful for cursor pagination over stored objects).

fn make(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

pub fn response_id() -> String {
    make("resp")
}

pub fn message_id() -> String {
    make("msg")
}

pub fn function_call_id() -> String {
    make("fc")
}

pub fn reasoning_id() -> String {
    make("rs")
}

/// A call id for a tool call whose backend did not name it.
pub fn call_id() -> String {
    make("call")
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
