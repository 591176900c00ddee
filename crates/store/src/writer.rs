//! Group commit: finished responses are saved by one task per store, which
//! writes every record that queued up while the previous transaction ran in one
//! transaction of its own.
//!
//! SQLite has one writer at a time: responses saved from many connections at
//! once wait on each other's locks (and on the busy timeout's sleeps), and every
//! commit is a trip through the journal. One writer taking whatever has queued
//! turns N commits into one, and on PostgreSQL N fsyncs into one. A caller is
//! answered only after the commit that holds its record, so "stored before told"
//! holds; a batch that fails is retried one record at a time, so one bad record
//! never fails the others.

use antwort_engine::store::{Scope, StoreError, StoredResponse};
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

/// The most records one transaction takes.
const MAX_BATCH: usize = 256;
/// Records that may wait for the writer before callers wait to queue.
const QUEUE: usize = 4096;

pub(crate) struct Job {
    pub scope: Scope,
    pub record: StoredResponse,
    done: oneshot::Sender<Result<(), StoreError>>,
}

#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writing task on the current runtime; it ends when the last
    /// `Writer` is dropped.
    pub(crate) fn spawn(pool: AnyPool) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, queue));
        Self { jobs }
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

async fn run(pool: AnyPool, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match write(&pool, &batch).await {
            Ok(()) => {
                for job in batch {
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(error) if batch.len() == 1 => {
                for job in batch {
                    let _ = job.done.send(Err(error.clone()));
                }
            }
            Err(error) => {
                tracing::warn!(%error, records = batch.len(), "a batch of responses failed to save; saving them one by one");
                for job in batch {
                    let result = write(&pool, std::slice::from_ref(&job)).await;
                    let _ = job.done.send(result);
                }
            }
        }
    }
}

/// Writes `batch` in one transaction.
async fn write(pool: &AnyPool, batch: &[Job]) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(crate::sql::unavailable)?;
    for job in batch {
        crate::sql::write_record(&mut tx, &job.scope, &job.record).await?;
    }
    tx.commit().await.map_err(crate::sql::unavailable)
}
