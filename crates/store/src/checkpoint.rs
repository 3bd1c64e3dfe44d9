//! SQLite's write-ahead log, copied into the database beside the writers.
//!
//! Left to itself, SQLite checkpoints inside the commit that takes the log
//! past 1,000 pages: that commit copies the log into the database and waits
//! for the disk to sync both, while this process's write lock
//! ([`crate::Store`]'s `writer`) is held, so every message and reply queued
//! behind it waits for the copy and the disk too.
//!
//! Here each connection counts its commits (a commit hook) and a task of
//! the store's runs SQLite's passive checkpoint, which never blocks a
//! writer, every [`COMMITS_PER_PASS`] commits and once writing pauses for
//! [`QUIET`]. While writing goes on, a passive pass never leaves the log
//! fully copied (writers append during it), and only a fully copied log
//! starts over; so once the log passes [`RESTART_PAGES`] a pass is followed
//! by a second one under the write lock, which copies only what was
//! appended during the first and lets the next writer start the log from
//! its beginning. A connection still checkpoints on its own past
//! [`SAFETY_NET_PAGES`], so the log stays bounded if the task falls behind
//! (a long read holding old pages) or is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::Notify;

/// Commits between two passes while writing goes on: a message or a reply
/// is a commit of a few pages, so a pass copies a few hundred pages, about
/// SQLite's own default of 1,000.
pub(crate) const COMMITS_PER_PASS: u64 = 100;

/// A pause in writing after which what was written is copied.
pub(crate) const QUIET: Duration = Duration::from_secs(1);

/// The log's size at which a committing connection checkpoints itself
/// (SQLite's `wal_autocheckpoint`, in pages): ten times SQLite's default,
/// reached only when the passes fall behind.
pub(crate) const SAFETY_NET_PAGES: u32 = 10_000;

/// Commits counted by the connections' commit hooks.
#[derive(Debug, Default)]
pub(crate) struct Commits {
    count: AtomicU64,
    wake: Notify,
}

impl Commits {
    /// Called by a connection's commit hook: on the connection's thread,
    /// inside the commit, so it only counts and wakes.
    pub(crate) fn committed(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Waits until [`COMMITS_PER_PASS`] commits follow `copied`, or some do
    /// and then none for [`QUIET`].
    async fn due(&self, copied: u64) {
        loop {
            let pending = self.count().wrapping_sub(copied);
            if pending >= COMMITS_PER_PASS {
                return;
            }
            if pending == 0 {
                self.wake.notified().await;
            } else if tokio::time::timeout(QUIET, self.wake.notified())
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// The checkpointing task; stops it when dropped (with the last clone of
/// the store), so the pool it holds can close.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    task: tokio::task::AbortHandle,
}

impl Checkpointer {
    /// Starts the passes on `pool`, paced by `commits`.
    pub(crate) fn start(
        pool: SqlitePool,
        commits: Arc<Commits>,
        writer: Arc<tokio::sync::Mutex<()>>,
    ) -> Self {
        let task = tokio::spawn(run(pool, commits, writer)).abort_handle();
        Self { task }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The log's size (pages) past which a pass is followed by a short one
/// holding the store's write lock: with no writer appending meanwhile it
/// copies the last frames, and the next writer starts the log over.
pub(crate) const RESTART_PAGES: i64 = 4_000;

async fn run(pool: SqlitePool, commits: Arc<Commits>, writer: Arc<tokio::sync::Mutex<()>>) {
    let mut copied = commits.count();
    loop {
        commits.due(copied).await;
        copied = commits.count();
        match pass(&pool).await {
            Err(sqlx::Error::PoolClosed) => return,
            Ok(log) if log >= RESTART_PAGES => {
                let _writer = writer.lock().await;
                if let Err(sqlx::Error::PoolClosed) = pass(&pool).await {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// One passive checkpoint; the pages in the log.
async fn pass(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    // (busy, pages in the log, pages copied): busy is 0 for a passive
    // checkpoint unless another connection is checkpointing.
    match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await
    {
        Ok((_, log, copied)) => {
            tracing::trace!(log, copied, "copied the SQLite log");
            Ok(log)
        }
        Err(e) => {
            if !matches!(e, sqlx::Error::PoolClosed) {
                tracing::warn!(error = %e, "could not copy the SQLite log into the database; trying again after the next writes");
            }
            Err(e)
        }
    }
}
