//! The audit log: one JSON line per security event (a failed authentication, a
//! denied permission, a refused rate, an admin action, a deletion, a key
//! change), to stdout or appended to a file. A line names the request id, the
//! tenant, subject and credential, and the source address; it never holds a
//! secret (a key is named by its public id, a token by its issuer).

use std::io::Write;
use std::sync::Mutex;

use antwort_engine::clock;
use serde::Serialize;

use crate::identity::Identity;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    AuthenticationFailed,
    PermissionDenied,
    RateLimited,
    Deleted,
    KeyCreated,
    KeyRevoked,
    KeysListed,
}

/// One event, before it is written.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub event: AuditKind,
    pub request_id: Option<String>,
    pub tenant: Option<String>,
    pub subject: Option<String>,
    pub credential: Option<String>,
    pub source: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    /// The object acted on (a response, a conversation, a key id).
    pub object: Option<String>,
    /// Why, for refusals.
    pub reason: Option<String>,
}

impl AuditEvent {
    pub fn new(event: AuditKind) -> Self {
        Self {
            event,
            request_id: None,
            tenant: None,
            subject: None,
            credential: None,
            source: None,
            method: None,
            path: None,
            object: None,
            reason: None,
        }
    }

    pub fn by(mut self, identity: &Identity) -> Self {
        self.tenant = Some(identity.tenant.clone());
        self.subject = Some(identity.subject.clone());
        self.credential = Some(identity.credential_label());
        self
    }

    pub fn object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    #[serde(flatten)]
    event: &'a AuditEvent,
}

/// Where audit lines go.
pub enum AuditSink {
    Off,
    Stdout,
    File(std::fs::File),
    /// Lines kept in memory, for tests.
    Memory(Vec<String>),
}

pub struct AuditLog {
    sink: Mutex<AuditSink>,
}

impl AuditLog {
    pub fn new(sink: AuditSink) -> Self {
        Self {
            sink: Mutex::new(sink),
        }
    }

    pub fn off() -> Self {
        Self::new(AuditSink::Off)
    }

    /// Appends to `path`, creating it.
    pub fn to_file(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self::new(AuditSink::File(file)))
    }

    pub fn record(&self, event: &AuditEvent) {
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*sink, AuditSink::Off) {
            return;
        }
        let line = Line {
            time: humantime::format_rfc3339_millis(clock::system_now()).to_string(),
            event,
        };
        let Ok(text) = serde_json::to_string(&line) else {
            return;
        };
        // An audit line that cannot be written is logged, never a request failure.
        let written = match &mut *sink {
            AuditSink::Off => Ok(()),
            AuditSink::Stdout => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{text}").and_then(|()| out.flush())
            }
            AuditSink::File(file) => writeln!(file, "{text}"),
            AuditSink::Memory(lines) => {
                lines.push(text);
                Ok(())
            }
        };
        if let Err(error) = written {
            tracing::error!(%error, "cannot write the audit log");
        }
    }

    /// The lines of a memory sink.
    pub fn lines(&self) -> Vec<String> {
        match &*self.sink.lock().unwrap_or_else(|e| e.into_inner()) {
            AuditSink::Memory(lines) => lines.clone(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_json_with_its_time_and_fields() {
        let log = AuditLog::new(AuditSink::Memory(Vec::new()));
        log.record(
            &AuditEvent::new(AuditKind::Deleted)
                .by(&Identity::anonymous())
                .object("resp_1"),
        );
        let lines = log.lines();
        let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(line["event"], "deleted");
        assert_eq!(line["object"], "resp_1");
        assert_eq!(line["credential"], "anonymous");
        assert!(line["time"].as_str().unwrap().ends_with('Z'));
    }
}
