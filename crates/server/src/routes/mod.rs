//! The HTTP routes, one module per resource.

pub mod health;
pub mod models;
pub mod responses;
pub mod stored;
