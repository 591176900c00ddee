//! What saving a finished response writes, as plain statements: SQL and the
//! values it binds, the same for both databases (`$N` placeholders, syntax both
//! share). Building them is separate from running them because SQLite's writer
//! runs them on a thread of its own (rusqlite) and PostgreSQL through sqlx;
//! every statement is unconditional, so neither needs to look at a result
//! before sending the next one.

use std::borrow::Cow;

use antwort_api::Item;
use antwort_engine::store::{Scope, StoreError, StoredResponse};

/// Which list of a response an item row belongs to.
pub(crate) const INPUT: i64 = 0;
pub(crate) const OUTPUT: i64 = 1;
/// Item rows per INSERT: 6 parameters each, well under SQLite's and
/// PostgreSQL's limits on bound parameters.
const ITEMS_PER_INSERT: usize = 100;

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Text(String),
    Int(i64),
    Null,
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Self {
        Value::Int(number)
    }
}

impl From<Option<&String>> for Value {
    fn from(text: Option<&String>) -> Self {
        text.map_or(Value::Null, |text| Value::Text(text.clone()))
    }
}

/// One statement: `binds[n]` goes to placeholder `$(n + 1)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub sql: Cow<'static, str>,
    pub binds: Vec<Value>,
}

impl Statement {
    pub(crate) fn new(sql: impl Into<Cow<'static, str>>, binds: Vec<Value>) -> Self {
        Self {
            sql: sql.into(),
            binds,
        }
    }
}

impl Value {
    /// The text of a text column; anything else is corrupt data.
    pub(crate) fn into_text(self) -> Result<String, StoreError> {
        match self {
            Value::Text(text) => Ok(text),
            other => Err(StoreError::Corrupt(format!(
                "expected text, found {other:?}"
            ))),
        }
    }

    /// The text of a nullable text column.
    pub(crate) fn into_optional_text(self) -> Result<Option<String>, StoreError> {
        match self {
            Value::Null => Ok(None),
            other => other.into_text().map(Some),
        }
    }

    /// The number of an integer column.
    pub(crate) fn into_int(self) -> Result<i64, StoreError> {
        match self {
            Value::Int(number) => Ok(number),
            other => Err(StoreError::Corrupt(format!(
                "expected an integer, found {other:?}"
            ))),
        }
    }
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt(error.to_string()))
}

fn item_id(item: &Item) -> &str {
    item.id().unwrap_or_default()
}

/// A response saved again (a background response moving on) replaces its row;
/// the row of another tenant with the same id is never touched.
const UPSERT_RESPONSE: &str = "INSERT INTO responses \
    (id, tenant, owner, created_at, model, status, previous_response_id, metadata, body) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
    ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, created_at = excluded.created_at, \
    model = excluded.model, status = excluded.status, \
    previous_response_id = excluded.previous_response_id, metadata = excluded.metadata, \
    body = excluded.body \
    WHERE responses.tenant = excluded.tenant";

/// Items added to a conversation only if it exists in this scope.
const APPEND_CONVERSATION_ITEM: &str = "INSERT INTO conversation_items \
    (conversation_id, item_id, tenant, body) \
    SELECT $1, $2, $3, $4 \
    WHERE EXISTS (SELECT 1 FROM conversations WHERE id = $1 AND tenant = $3)";

/// The statements that save `record`: its response row and items when it is
/// stored, and its input and output appended to its conversation when it has one.
pub(crate) fn statements(
    scope: &Scope,
    record: &StoredResponse,
) -> Result<Vec<Statement>, StoreError> {
    let response = &record.response;
    let mut statements = Vec::new();
    if response.store {
        statements.push(Statement {
            sql: Cow::Borrowed(UPSERT_RESPONSE),
            binds: vec![
                response.id.as_str().into(),
                scope.tenant.as_str().into(),
                scope.owner.as_str().into(),
                (response.created_at as i64).into(),
                response.model.as_str().into(),
                response.status.as_str().into(),
                response.previous_response_id.as_ref().into(),
                to_json(&response.metadata)?.into(),
                to_json(response)?.into(),
            ],
        });
        // Only a response saved again has items to replace; for a new one this
        // finds nothing by the primary key's prefix.
        statements.push(Statement {
            sql: Cow::Borrowed("DELETE FROM response_items WHERE response_id = $1 AND tenant = $2"),
            binds: vec![response.id.as_str().into(), scope.tenant.as_str().into()],
        });
        let items: Vec<(i64, usize, &Item)> = (record.input.iter().enumerate())
            .map(|(position, item)| (INPUT, position, item))
            .chain(
                (response.output.iter().enumerate())
                    .map(|(position, item)| (OUTPUT, position, item)),
            )
            .collect();
        for chunk in items.chunks(ITEMS_PER_INSERT) {
            statements.push(insert_items(scope, &response.id, chunk)?);
        }
    }
    if let Some(conversation) = &record.conversation_id {
        let items = record.input.iter().chain(response.output.iter());
        statements.extend(conversation_items(scope, conversation, items)?);
    }
    Ok(statements)
}

/// One multi-row INSERT of item rows: one round trip instead of one per item.
fn insert_items(
    scope: &Scope,
    response_id: &str,
    rows: &[(i64, usize, &Item)],
) -> Result<Statement, StoreError> {
    let mut sql = String::from(
        "INSERT INTO response_items (response_id, kind, position, item_id, tenant, body) VALUES ",
    );
    let mut binds = Vec::with_capacity(rows.len() * 6);
    for (row, (kind, position, item)) in rows.iter().enumerate() {
        let n = row * 6;
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${})",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5,
            n + 6
        ));
        binds.extend([
            response_id.into(),
            (*kind).into(),
            (*position as i64).into(),
            item_id(item).into(),
            scope.tenant.as_str().into(),
            to_json(*item)?.into(),
        ]);
    }
    Ok(Statement {
        sql: Cow::Owned(sql),
        binds,
    })
}

/// Statements appending `items` to `conversation`, in order; they add nothing
/// when the conversation does not exist in this scope.
pub(crate) fn conversation_items<'a>(
    scope: &Scope,
    conversation: &str,
    items: impl Iterator<Item = &'a Item>,
) -> Result<Vec<Statement>, StoreError> {
    items
        .map(|item| {
            Ok(Statement {
                sql: Cow::Borrowed(APPEND_CONVERSATION_ITEM),
                binds: vec![
                    conversation.into(),
                    item_id(item).into(),
                    scope.tenant.as_str().into(),
                    to_json(item)?.into(),
                ],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The highest `$N` a statement uses.
    fn highest_placeholder(sql: &str) -> usize {
        sql.split('$')
            .skip(1)
            .filter_map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .max()
            .unwrap_or(0)
    }

    fn record(inputs: usize, conversation: Option<&str>) -> StoredResponse {
        let item = |n: usize| -> Item {
            serde_json::from_value(serde_json::json!({
                "type": "message", "id": format!("msg_{n}"), "role": "user",
                "content": [{"type": "input_text", "text": format!("text {n}")}]
            }))
            .unwrap()
        };
        let response = serde_json::from_value(serde_json::json!({
            "id": "resp_1", "object": "response", "created_at": 7, "completed_at": 7,
            "status": "completed", "incomplete_details": null, "model": "m",
            "previous_response_id": null, "instructions": null, "output": [], "error": null,
            "tools": [], "tool_choice": "auto", "truncation": "disabled",
            "parallel_tool_calls": true, "text": {"format": {"type": "text"}}, "top_p": 1.0,
            "presence_penalty": 0.0, "frequency_penalty": 0.0, "top_logprobs": 0,
            "temperature": 1.0, "reasoning": {"effort": null, "summary": null}, "usage": null,
            "max_output_tokens": null, "max_tool_calls": null, "store": true,
            "background": false, "service_tier": "default", "metadata": {},
            "safety_identifier": null, "prompt_cache_key": null, "user": null
        }))
        .unwrap();
        StoredResponse {
            response,
            input: (0..inputs).map(item).collect(),
            conversation_id: conversation.map(str::to_owned),
        }
    }

    #[test]
    fn every_statement_binds_exactly_its_placeholders() {
        let scope = Scope::default();
        let statements = statements(&scope, &record(250, Some("conv_1"))).unwrap();
        for statement in &statements {
            assert_eq!(
                highest_placeholder(&statement.sql),
                statement.binds.len(),
                "{}",
                statement.sql
            );
        }
        // Upsert, delete, three item inserts (100 + 100 + 50), 250 conversation items.
        assert_eq!(statements.len(), 2 + 3 + 250);
    }

    #[test]
    fn items_keep_their_order_across_inserts() {
        let statements = statements(&Scope::default(), &record(150, None)).unwrap();
        let positions: Vec<i64> = statements[2..]
            .iter()
            .flat_map(|statement| statement.binds.chunks(6).map(|row| row[2].clone()))
            .map(|position| match position {
                Value::Int(position) => position,
                other => panic!("position bound as {other:?}"),
            })
            .collect();
        assert_eq!(positions, (0..150).collect::<Vec<i64>>());
    }
}
