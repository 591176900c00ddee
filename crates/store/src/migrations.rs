//! Versioned migrations, embedded in the binary and run at start by sqlx's
//! migrator (which records what ran in `_sqlx_migrations` and, on PostgreSQL,
//! holds an advisory lock so that replicas starting together do not race).
//! Each version has one file per dialect; they differ only where the databases
//! do. The files reach the migrator through sqlx's public `MigrationSource`
//! trait, not through the `migrate!` macro, which would pull sqlx's macro
//! crates (and their build time) in for one call.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use antwort_engine::store::StoreError;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use crate::db::Db;
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
    (
        3,
        "metadata without NUL",
        include_str!("../migrations/sqlite/0003_metadata_without_nul.sql"),
        include_str!("../migrations/postgres/0003_metadata_without_nul.sql"),
    ),
    (
        4,
        "owners, api keys and approvals",
        include_str!("../migrations/sqlite/0004_owners_keys_and_approvals.sql"),
        include_str!("../migrations/postgres/0004_owners_keys_and_approvals.sql"),
    ),
];

/// The embedded migrations of one dialect.
#[derive(Debug, Clone, Copy)]
struct Embedded(Dialect);

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        let migrations = VERSIONS
            .iter()
            .map(|(version, description, sqlite, postgres)| {
                let sql = match self.0 {
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
        Box::pin(async move { Ok(migrations) })
    }
}

/// Runs the migrations `db` has not run yet.
pub(crate) async fn run(db: &Db) -> Result<(), StoreError> {
    let failed = |error: sqlx::migrate::MigrateError| {
        StoreError::Unavailable(format!("migrations failed: {error}"))
    };
    match db {
        Db::Sqlite(pool) => {
            let migrator = Migrator::new(Embedded(Dialect::Sqlite))
                .await
                .map_err(failed)?;
            migrator.run(pool).await.map_err(failed)
        }
        Db::Postgres(pool) => {
            let migrator = Migrator::new(Embedded(Dialect::Postgres))
                .await
                .map_err(failed)?;
            migrator.run(pool).await.map_err(failed)
        }
    }
}
