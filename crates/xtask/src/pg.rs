//! A fresh PostgreSQL schema for one benchmark lane, made and dropped with `psql`
//! (which the development machines have): the benchmark never touches tables it did
//! not create, and a database driver for two statements would be a heavy
//! dependency for the xtask.

use std::process::Command;

use anyhow::{Context, Result, bail};

/// A schema that exists until this value is dropped.
pub struct Schema {
    url: String,
    pub name: String,
}

impl Schema {
    /// Creates `name` in the database at `url`; fails when the server cannot be
    /// reached, which the caller reports as "PostgreSQL not reachable".
    pub fn create(url: &str, name: &str) -> Result<Self> {
        psql(url, &format!("CREATE SCHEMA {name}"))?;
        Ok(Self {
            url: url.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The gateway's DSN: the same database, with this schema first on its search
    /// path, so the gateway's migrations create their tables inside it.
    pub fn dsn(&self) -> String {
        with_search_path(&self.url, &self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Err(error) = psql(&self.url, &format!("DROP SCHEMA {} CASCADE", self.name)) {
            eprintln!(
                "warning: could not drop PostgreSQL schema {}: {error:#}",
                self.name
            );
        }
    }
}

/// Adds `options=-c search_path=<schema>` to a PostgreSQL URL.
pub fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

fn psql(url: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        // libpq's own connect timeout, so an absent server fails in seconds.
        .env("PGCONNECT_TIMEOUT", "3")
        .output()
        .context("running psql (is the PostgreSQL client installed?)")?;
    if !out.status.success() {
        bail!(
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_path_goes_into_the_url() {
        assert_eq!(
            with_search_path("postgres://postgres@127.0.0.1:5432/test", "b1"),
            "postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3Db1"
        );
        assert_eq!(
            with_search_path("postgres://h/db?sslmode=disable", "b1"),
            "postgres://h/db?sslmode=disable&options=-c%20search_path%3Db1"
        );
    }
}
