//! How a URL is shown wherever it may carry credentials: logs, error
//! messages, and the `server_url` a stored response echoes.

/// A URL as logs, error messages and stored objects may show it: scheme, host,
/// port and path, with `***` where user information or a query (where
/// credentials hide) was. The one place that decides how a URL with
/// credentials is shown; it parses nothing, so a malformed URL is masked too.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority_and_path, query) = match rest.split_once(['?', '#']) {
        Some((before, _)) => (before, true),
        None => (rest, false),
    };
    let (authority, path) = match authority_and_path.find('/') {
        Some(index) => authority_and_path.split_at(index),
        None => (authority_and_path, ""),
    };
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_owned(),
    };
    let scheme = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    let query = if query { "?***" } else { "" };
    format!("{scheme}{host}{path}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_and_query() {
        assert_eq!(
            redact_url("http://bob:hunter2@10.0.0.5:8000/v1?key=k#f"),
            "http://***@10.0.0.5:8000/v1?***"
        );
        assert_eq!(
            redact_url("https://sk-123@api.x.com"),
            "https://***@api.x.com"
        );
        assert_eq!(redact_url("http://h:8000/v1"), "http://h:8000/v1");
    }
}
