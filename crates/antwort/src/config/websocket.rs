//! `websocket`: WebSocket mode on `/v1/responses` (Codex CLI, the SDKs'
//! WebSocket clients): whether it is on, and the limits of one connection.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration, parse_duration};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketSection {
    /// Off, an upgrade gets a 426 (Codex CLI then uses SSE at once).
    pub enabled: bool,
    /// A larger client message is an error and closes the socket.
    pub max_message_bytes: usize,
    /// How long one connection may live.
    #[serde(deserialize_with = "duration")]
    pub max_connection_duration: Duration,
    #[serde(deserialize_with = "duration")]
    pub ping_interval: Duration,
    /// A connection its client sends nothing on (pongs included) this long is closed.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// `stream_id` lanes one connection may hold.
    pub max_streams: usize,
    /// Turns waiting behind the running one on a lane.
    pub max_queued_per_stream: usize,
    /// Messages buffered for a slow reader before its turns wait.
    pub send_buffer: usize,
}

impl Default for WebSocketSection {
    fn default() -> Self {
        let defaults = antwort_server::ws::WebSocketSettings::default();
        Self {
            enabled: defaults.enabled,
            max_message_bytes: defaults.max_message_bytes,
            max_connection_duration: defaults.max_connection_duration,
            ping_interval: defaults.ping_interval,
            idle_timeout: defaults.idle_timeout,
            max_streams: defaults.max_streams,
            max_queued_per_stream: defaults.max_queued_per_stream,
            send_buffer: defaults.send_buffer,
        }
    }
}

impl WebSocketSection {
    pub fn settings(&self) -> antwort_server::ws::WebSocketSettings {
        antwort_server::ws::WebSocketSettings {
            enabled: self.enabled,
            max_message_bytes: self.max_message_bytes,
            max_connection_duration: self.max_connection_duration,
            ping_interval: self.ping_interval,
            idle_timeout: self.idle_timeout,
            max_streams: self.max_streams,
            max_queued_per_stream: self.max_queued_per_stream,
            send_buffer: self.send_buffer,
        }
    }

    pub(super) fn apply_env(
        &mut self,
        get: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let env = |name: &'static str, value: &str, message: String| ConfigError::Env {
            name,
            value: value.to_owned(),
            message,
        };
        if let Some(v) = get("ANTWORT_WEBSOCKET_ENABLED") {
            self.enabled = v.trim().parse().map_err(|e: std::str::ParseBoolError| {
                env("ANTWORT_WEBSOCKET_ENABLED", &v, e.to_string())
            })?;
        }
        let durations: [(&'static str, &mut Duration); 3] = [
            (
                "ANTWORT_WEBSOCKET_MAX_CONNECTION_DURATION",
                &mut self.max_connection_duration,
            ),
            ("ANTWORT_WEBSOCKET_PING_INTERVAL", &mut self.ping_interval),
            ("ANTWORT_WEBSOCKET_IDLE_TIMEOUT", &mut self.idle_timeout),
        ];
        for (name, field) in durations {
            if let Some(v) = get(name) {
                *field = parse_duration(&v).map_err(|m| env(name, &v, m))?;
            }
        }
        if let Some(v) = get("ANTWORT_WEBSOCKET_MAX_MESSAGE_BYTES") {
            self.max_message_bytes = v.trim().parse().map_err(|e: std::num::ParseIntError| {
                env("ANTWORT_WEBSOCKET_MAX_MESSAGE_BYTES", &v, e.to_string())
            })?;
        }
        Ok(())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_message_bytes == 0
            || self.max_streams == 0
            || self.max_queued_per_stream == 0
            || self.send_buffer == 0
        {
            return Err(ConfigError::Invalid(
                "websocket.max_message_bytes, max_streams, max_queued_per_stream and send_buffer must be greater than 0".into(),
            ));
        }
        if self.max_connection_duration.is_zero()
            || self.ping_interval.is_zero()
            || self.idle_timeout.is_zero()
        {
            return Err(ConfigError::Invalid(
                "websocket.max_connection_duration, ping_interval and idle_timeout must be greater than 0".into(),
            ));
        }
        if self.idle_timeout <= self.ping_interval {
            return Err(ConfigError::Invalid(
                "websocket.idle_timeout must be longer than websocket.ping_interval (a client answers each ping)".into(),
            ));
        }
        Ok(())
    }
}
