//! Versioned migrations, embedded in the binary and run at start by sqlx's migrator
//! (which records what ran in `_sqlx_migrations`). Each version has one file per
//! dialect; they differ only where the databases do.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::sql::Dialect;

const VERSIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "responses",
        include_str!("../migrations/sqlite/0001_responses.sql"),
        include_str!("../migrations/postgres/0001_responses.sql"),
    ),
    (
        2,
        "conversations",
        include_str!("../migrations/sqlite/0002_conversations.sql"),
        include_str!("../migrations/postgres/0002_conversations.sql"),
    ),
];

pub fn migrator(dialect: Dialect) -> Migrator {
    let migrations = VERSIONS
        .iter()
        .map(|(version, description, sqlite, postgres)| {
            let sql = match dialect {
                Dialect::Sqlite => *sqlite,
                Dialect::Postgres => *postgres,
            };
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}
