//! The HTTP routes, one module per resource.

pub mod conversations;
pub mod health;
pub mod keys;
pub(crate) mod listing;
pub mod models;
pub mod responses;
pub mod stored;
