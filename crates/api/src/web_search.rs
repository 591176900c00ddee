//! The wire types of web search, as the OpenAI API defines them: the
//! `web_search_call` item (what was searched, its status) and its events
//! (`response.web_search_call.in_progress`, `.searching`, `.completed`). The tool
//! that produces them plugs into the engine's server-tool seam.

use serde::{Deserialize, Serialize};

/// `web_search_call`: one search the gateway ran for the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebSearchCallItem {
    pub id: String,
    pub status: WebSearchStatus,
    /// What was done: `{"type": "search", "query": ..., "sources": [...]}`,
    /// `open_page` or `find_in_page`, kept as the OpenAI shape.
    pub action: WebSearchAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebSearchStatus {
    InProgress,
    Searching,
    Completed,
    Failed,
    Incomplete,
}

/// The action of a web search call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WebSearchAction {
    Search {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sources: Option<Vec<WebSearchSource>>,
    },
    OpenPage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
    FindInPage {
        pattern: String,
        url: String,
    },
}

/// A source a search used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSearchSource {
    /// Always `url`.
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_call_reads_and_writes_the_openai_shape() {
        let value = json!({"id": "ws_1", "status": "completed",
            "action": {"type": "search", "query": "rust", "sources": [{"type": "url", "url": "https://www.rust-lang.org"}]}});
        let call: WebSearchCallItem = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(call.status, WebSearchStatus::Completed);
        assert_eq!(serde_json::to_value(&call).unwrap(), value);
    }
}
