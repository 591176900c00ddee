//! Clock reads, in one place: wall-clock time in the Unix seconds the API uses,
//! and the monotonic instant timers and caches measure with (tokio's, so that a
//! test with paused time controls it). `clippy.toml` forbids reading a clock
//! anywhere else.

#[allow(
    clippy::disallowed_methods,
    reason = "the one place that reads the wall clock"
)]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The monotonic now, for deadlines, timeouts and cache ages.
#[allow(
    clippy::disallowed_methods,
    reason = "the one place that reads the monotonic clock"
)]
pub fn now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// The wall clock as a `SystemTime`, for comparing with dates a peer sent
/// (`Retry-After: <HTTP date>`).
#[allow(
    clippy::disallowed_methods,
    reason = "the one place that reads the wall clock"
)]
pub fn system_now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}
