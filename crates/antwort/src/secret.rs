//! Credentials in the configuration, as types that cannot be printed.
//!
//! [`Secret`] wraps `secrecy::SecretString`: its `Debug` shows `<redacted>`, it has
//! no `Display`, and the value is reached only through `expose`, so that
//! `check-config`, logs and error messages cannot carry a key by accident.
//! [`Dsn`] is a database address whose password is a secret: its `Debug` shows
//! the address with the password masked, in every form a DSN can carry one
//! (`user:password@`, `?password=`, and PostgreSQL's `key=value` form).

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

/// A credential: an API key, a token, a client secret, a header value.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// The documentation test walks the configuration as JSON; a secret shows there
/// as it does everywhere else.
#[cfg(test)]
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

#[cfg(test)]
impl serde::Serialize for Dsn {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

/// A database address (a SQLite path or a PostgreSQL URL) that may carry a
/// password.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Dsn(Secret);

impl Dsn {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Secret::new(value))
    }

    /// The whole address, for the one place that connects with it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The address with its password masked, for messages.
    pub fn redacted(&self) -> String {
        redact_password(self.expose())
    }
}

impl std::fmt::Debug for Dsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

/// A URL that may carry credentials (`http://user:key@host`, `?api_key=`):
/// printed and logged with its user information and query masked.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(Secret);

impl SecretUrl {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Secret::new(value))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// Scheme, host, port and path; `***` where user information or a query was.
    pub fn redacted(&self) -> String {
        antwort_egress::redact_url(self.expose())
    }
}

impl From<&str> for SecretUrl {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for SecretUrl {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

#[cfg(test)]
impl serde::Serialize for SecretUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

/// Masks the password of a DSN in each form it may take:
/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`,
/// `...?password=secret&x=1` → `...?password=***&x=1`, and
/// `host=h password=secret` → `host=h password=***`.
pub fn redact_password(dsn: &str) -> String {
    let mut text = dsn.to_owned();
    if let Some((scheme, rest)) = text.split_once("://")
        && let Some((credentials, host)) = rest.rsplit_once('@')
        && let Some((user, _)) = credentials.split_once(':')
    {
        text = format!("{scheme}://{user}:***@{host}");
    }
    mask_key_values(&text)
}

/// Masks every `password=<value>` (case-insensitive), where the value ends at
/// `&`, whitespace, or the end; a quoted value (`password='a b'`) ends at its
/// closing quote.
fn mask_key_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find("password=") {
        let start = search + found;
        let boundary = start == 0
            || matches!(
                lower.as_bytes().get(start - 1),
                Some(b'?' | b'&' | b' ' | b'\t' | b'\n')
            );
        let value_start = start + "password=".len();
        if !boundary {
            search = value_start;
            continue;
        }
        let bytes = text.as_bytes();
        let value_end = match bytes.get(value_start) {
            Some(b'\'') => text[value_start + 1..]
                .find('\'')
                .map_or(text.len(), |end| value_start + 1 + end + 1),
            _ => text[value_start..]
                .find(|c: char| c == '&' || c.is_whitespace())
                .map_or(text.len(), |end| value_start + end),
        };
        out.push_str(&text[rest..value_start]);
        out.push_str("***");
        rest = value_end;
        search = value_end;
    }
    out.push_str(&text[rest..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_urls_print_without_their_credentials() {
        let url = SecretUrl::from("http://u:p@h/v1");
        assert_eq!(format!("{url:?}"), "\"http://***@h/v1\"");
        assert_eq!(url.expose(), "http://u:p@h/v1");
    }

    #[test]
    fn every_password_form_is_masked() {
        assert_eq!(
            redact_password("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact_password("postgres://u@h/db?sslmode=require&password=pw&x=1"),
            "postgres://u@h/db?sslmode=require&password=***&x=1"
        );
        assert_eq!(
            redact_password("host=h user=u password='p w' dbname=d"),
            "host=h user=u password=*** dbname=d"
        );
        assert_eq!(redact_password("host=h PASSWORD=pw"), "host=h PASSWORD=***");
        assert_eq!(redact_password("antwort.db"), "antwort.db");
        assert_eq!(
            redact_password("/data/oldpassword=x.db"),
            "/data/oldpassword=x.db"
        );
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        let dsn = Dsn::new("postgres://u:hunter2@h/db");
        assert!(!format!("{dsn:?}").contains("hunter2"));
        assert_eq!(dsn.expose(), "postgres://u:hunter2@h/db");
    }
}
