//! Group commit: finished responses are saved by one writer per store, which
//! writes every record that queued up while the previous transaction ran in one
//! transaction of its own.
//!
//! A database has one writer at a time anyway (SQLite by design; on PostgreSQL
//! N commits are N fsyncs): one writer taking whatever has queued turns N
//! commits into one. A caller is answered only after the commit that holds its
//! record, so "stored before told" holds; a batch that fails is retried one
//! record at a time, so one bad record never fails the others.
//!
//! On PostgreSQL the writer is a task running the statements through the sqlx
//! pool. On SQLite it is a thread of its own with its own connection
//! (rusqlite), because sqlx runs every SQLite statement as a round trip to a
//! worker thread: with the gateway on one core, those hops (two context
//! switches each, four statements to a save) were most of a stored response's
//! cost. The thread takes a whole batch in one hop.

use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Duration;

use antwort_engine::store::{Scope, StoreError, StoredResponse};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::db::Db;
use crate::record::{self, Statement, Value};

/// The most records one transaction takes.
const MAX_BATCH: usize = 256;
/// Records that may wait for the writer before callers wait to queue.
const QUEUE: usize = 4096;
/// How often at most the checkpointer runs while responses are being written.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(20);
/// The writer's own checkpoint threshold, SQLite's default: the WAL is only
/// reset by a checkpoint that finds nothing left to copy, which the
/// checkpointer, running beside a busy writer, seldom does, so the writer
/// still checkpoints every 1,000 pages; the checkpointer has copied and synced
/// most of those pages by then, which leaves the writer little to do.
const WRITER_CHECKPOINT_PAGES: i64 = 1_000;

struct Job {
    scope: Scope,
    record: StoredResponse,
    done: oneshot::Sender<Result<(), StoreError>>,
}

impl Job {
    fn finish(self, result: Result<(), StoreError>) {
        // The caller may have gone (its request was cancelled); the record is
        // saved all the same.
        let _ = self.done.send(result);
    }
}

#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts a task on the current runtime that writes through `pool`; it ends
    /// when the last `Writer` is dropped.
    pub(crate) fn spawn_postgres(pool: PgPool) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        antwort_engine::tasks::spawn(run_pool(Db::Postgres(pool), queue));
        Self { jobs }
    }

    /// Opens `target` (a file path, or a `file:` URI) and starts a thread that
    /// writes through that connection; it ends when the last `Writer` is dropped.
    /// A file store (`wal`) also gets a thread that checkpoints its WAL.
    pub(crate) fn spawn_sqlite(target: &str, wal: bool) -> Result<Self, StoreError> {
        let connection = open_sqlite(target).map_err(sqlite_error)?;
        let committed = if wal {
            // A checkpoint copies the WAL into the database file and syncs it:
            // milliseconds during which the writer doing it holds up the batch
            // it just committed. The checkpointer does most of that work beside
            // the writer (measured: p99 at 8 clients 5.5 ms -> 5.0 ms, at 1
            // client 4.4 ms -> 2.1 ms).
            connection
                .pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
                .map_err(sqlite_error)?;
            let checkpoints = open_sqlite(target).map_err(sqlite_error)?;
            let (committed, commits) = std::sync::mpsc::sync_channel(1);
            spawn_thread("antwort-sqlite-checkpointer", move || {
                run_checkpointer(checkpoints, commits)
            })?;
            Some(committed)
        } else {
            None
        };
        let (jobs, queue) = mpsc::channel(QUEUE);
        spawn_thread("antwort-sqlite-writer", move || {
            run_sqlite(connection, queue, committed)
        })?;
        Ok(Self { jobs })
    }

    /// Saves `record`, returning once the transaction that holds it committed.
    pub(crate) async fn save(
        &self,
        scope: &Scope,
        record: StoredResponse,
    ) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        let job = Job {
            scope: scope.clone(),
            record,
            done,
        };
        let stopped = || StoreError::Unavailable("the store's writer has stopped".to_owned());
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// `first` and whatever else has queued behind it, up to a batch.
fn gather(first: Job, queue: &mut mpsc::Receiver<Job>) -> Vec<Job> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}

/// Answers every job of `batch` with the outcome of writing it, unless a batch
/// of several failed: those are returned, to be written one at a time.
fn settle(batch: Vec<Job>, result: Result<(), StoreError>) -> Vec<Job> {
    match result {
        Ok(()) => {
            batch.into_iter().for_each(|job| job.finish(Ok(())));
            Vec::new()
        }
        Err(error) if batch.len() == 1 => {
            batch
                .into_iter()
                .for_each(|job| job.finish(Err(error.clone())));
            Vec::new()
        }
        Err(error) => {
            tracing::warn!(%error, records = batch.len(), "a batch of responses failed to save; saving them one by one");
            batch
        }
    }
}

/// The statements of every record of `batch`, in order.
fn batch_statements(batch: &[Job]) -> Result<Vec<Statement>, StoreError> {
    let mut statements = Vec::new();
    for job in batch {
        statements.extend(record::statements(&job.scope, &job.record)?);
    }
    Ok(statements)
}

async fn run_pool(pool: Db, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.recv().await {
        let batch = gather(first, &mut queue);
        let result = write_pool(&pool, &batch).await;
        for job in settle(batch, result) {
            let result = write_pool(&pool, std::slice::from_ref(&job)).await;
            job.finish(result);
        }
    }
}

/// Writes `batch` in one transaction of the pool.
async fn write_pool(pool: &Db, batch: &[Job]) -> Result<(), StoreError> {
    let statements = batch_statements(batch)?;
    pool.transaction(&statements).await.map(|_| ())
}

fn open_sqlite(target: &str) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = rusqlite::Connection::open_with_flags(target, flags)?;
    // The same settings as the pool's connections (see `sqlite_pool` in sql.rs); WAL is a
    // property of the file and already set for a file store.
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.busy_timeout(Duration::from_secs(10))?;
    Ok(connection)
}

fn sqlite_error(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn spawn_thread(name: &str, body: impl FnOnce() + Send + 'static) -> Result<(), StoreError> {
    antwort_engine::tasks::spawn_thread(name, body)
        .map(|_| ())
        .map_err(|error| StoreError::Unavailable(format!("cannot start {name}: {error}")))
}

/// `committed` hears of every commit (dropped when the checkpointer is busy).
fn run_sqlite(
    mut connection: rusqlite::Connection,
    mut queue: mpsc::Receiver<Job>,
    committed: Option<SyncSender<()>>,
) {
    while let Some(first) = queue.blocking_recv() {
        let batch = gather(first, &mut queue);
        let result = write_sqlite(&mut connection, &batch);
        for job in settle(batch, result) {
            let result = write_sqlite(&mut connection, std::slice::from_ref(&job));
            job.finish(result);
        }
        if let Some(committed) = &committed {
            let _ = committed.try_send(());
        }
    }
}

/// Checkpoints the WAL after commits, at most once per `CHECKPOINT_EVERY`, and
/// not at all while nothing is written. PASSIVE never waits for the writer nor
/// holds it up; frames it could not copy yet are copied the next time.
fn run_checkpointer(connection: rusqlite::Connection, commits: Receiver<()>) {
    while commits.recv().is_ok() {
        let result = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        if let Err(error) = result {
            tracing::warn!(%error, "checkpointing the SQLite WAL failed; the next commit tries again");
        }
        std::thread::sleep(CHECKPOINT_EVERY);
    }
}

/// Writes `batch` in one transaction of the writer's own connection.
fn write_sqlite(connection: &mut rusqlite::Connection, batch: &[Job]) -> Result<(), StoreError> {
    let statements = batch_statements(batch)?;
    // IMMEDIATE takes the write lock up front, so a busy database is waited
    // for (busy timeout) instead of failing at the first write.
    let tx = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    for statement in &statements {
        execute_sqlite(&tx, statement).map_err(sqlite_error)?;
    }
    tx.commit().map_err(sqlite_error)
}

fn execute_sqlite(
    connection: &rusqlite::Connection,
    statement: &Statement,
) -> rusqlite::Result<()> {
    let mut prepared = connection.prepare_cached(&statement.sql)?;
    // Placeholders are `$N`; SQLite numbers them by first appearance, so each
    // is bound by its name, as sqlx does.
    for index in 1..=prepared.parameter_count() {
        let value = prepared
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|number| number.parse::<usize>().ok())
            .and_then(|number| statement.binds.get(number.checked_sub(1)?))
            .ok_or(rusqlite::Error::InvalidParameterCount(
                index,
                statement.binds.len(),
            ))?;
        match value {
            Value::Text(text) => prepared.raw_bind_parameter(index, text)?,
            Value::Int(number) => prepared.raw_bind_parameter(index, number)?,
            Value::Null => prepared.raw_bind_parameter(index, rusqlite::types::Null)?,
        }
    }
    prepared.raw_execute()?;
    Ok(())
}
