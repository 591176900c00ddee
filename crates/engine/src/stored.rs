//! Stored responses as the API serves them: read, list, delete, and the input
//! items of one, with the errors a client sees when nothing is there. Handlers
//! call these and never a store: ownership checks and the stored form of items
//! live here, in one place.

use antwort_api::{ApiError, ErrorCode, Item, Response, normalize_items};

use crate::Engine;
use crate::error::{changed, found, store_error};
use crate::store::{ListQuery, Page, Scope};

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("Response with id '{id}' not found."),
    )
    .with_param("response_id")
}

impl Engine {
    /// `GET /v1/responses/{id}`.
    pub async fn get_response(&self, scope: &Scope, id: &str) -> Result<Response, ApiError> {
        found(self.stores.responses.get_response(scope, id).await, || {
            not_found(id)
        })
    }

    /// `DELETE /v1/responses/{id}`.
    ///
    /// A stored response still generating is stopped first (its stream ends
    /// `failed`, and it is not saved), so that it cannot come back after the
    /// delete; one that saved just before is deleted from the store as well.
    pub async fn delete_response(&self, scope: &Scope, id: &str) -> Result<(), ApiError> {
        let was_running = self.inflight.stop_for_delete(scope, id).await;
        let deleted = self.stores.responses.delete_response(scope, id).await;
        if was_running {
            return deleted.map(|_| ()).map_err(crate::error::store_error);
        }
        changed(deleted, || not_found(id))
    }

    /// `GET /v1/responses`.
    pub async fn list_responses(
        &self,
        scope: &Scope,
        query: &ListQuery,
    ) -> Result<Page<Response>, ApiError> {
        self.stores
            .responses
            .list_responses(scope, query)
            .await
            .map_err(store_error)
    }

    /// `GET /v1/responses/{id}/input_items`, in the stored form (items saved
    /// before that form existed are normalised as they are read).
    pub async fn list_input_items(
        &self,
        scope: &Scope,
        id: &str,
        query: &ListQuery,
    ) -> Result<Page<Item>, ApiError> {
        let listed = self.stores.responses.list_input_items(scope, id, query);
        let mut page = found(listed.await, || not_found(id))?;
        normalize_items(&mut page.data);
        Ok(page)
    }
}
