//! The OpenAI list shape and the query string of list calls, shared by every
//! listing route.

use antwort_api::{ApiError, ErrorCode, Include, check_text};
use antwort_engine::store::{ListQuery, Order, Page};
use serde::Serialize;
use serde_json::json;

/// `{"object": "list", "data": [...], "first_id", "last_id", "has_more"}`.
#[derive(Serialize)]
pub struct List<T> {
    object: &'static str,
    data: Vec<T>,
    first_id: Option<String>,
    last_id: Option<String>,
    has_more: bool,
}

pub fn list<T>(page: Page<T>, id: impl Fn(&T) -> Option<String>) -> List<T> {
    List {
        object: "list",
        first_id: page.data.first().and_then(&id),
        last_id: page.data.last().and_then(&id),
        has_more: page.has_more,
        data: page.data,
    }
}

/// The query string of a list call: pagination, `include[]`, and the filters
/// `model`, `status` and `metadata[KEY]=VALUE`.
pub fn list_query(raw: Option<&str>, filters: bool) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery {
        limit: 20,
        order: Order::Desc,
        ..ListQuery::default()
    };
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let (key, value) = (key.into_owned(), value.into_owned());
        // Every value here reaches a store's query (ids, filters, metadata keys).
        check_text(&key, &key)?;
        check_text(&key, &value)?;
        match key.as_str() {
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid("limit", "limit must be an integer from 1 to 100")
                    })?;
            }
            "order" => {
                query.order = match value.as_str() {
                    "asc" => Order::Asc,
                    "desc" => Order::Desc,
                    _ => return Err(ApiError::invalid("order", "order must be `asc` or `desc`")),
                }
            }
            "after" => query.after = Some(value),
            "before" => query.before = Some(value),
            "include" | "include[]" => check_include(&value)?,
            "model" if filters => query.model = Some(value),
            "status" if filters => query.status = Some(value),
            _ if filters && key.starts_with("metadata[") && key.ends_with(']') => {
                let name = &key["metadata[".len()..key.len() - 1];
                query.metadata.push((name.to_owned(), value));
            }
            _ => {
                return Err(ApiError::new(
                    ErrorCode::UnknownParameter,
                    format!("Unrecognized query parameter: {key}"),
                )
                .with_param(key));
            }
        }
    }
    if query.after.is_some() && query.before.is_some() {
        return Err(ApiError::invalid(
            "before",
            "use `after` or `before`, not both",
        ));
    }
    Ok(query)
}

pub fn check_include(value: &str) -> Result<(), ApiError> {
    serde_json::from_value::<Include>(json!(value))
        .map(|_| ())
        .map_err(|_| {
            ApiError::invalid("include", format!("`{value}` is not a known include value"))
        })
}
