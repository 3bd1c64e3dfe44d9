//! SQLite only: the write-ahead log is copied into the database by the
//! store's checkpointer, beside the writers, and starts over once copied,
//! whether writing pauses or goes on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hirecj_domain::{ConversationId, NewMessage, Role};
use hirecj_store::Store;

mod harness;

use harness::with_sqlite;

/// SQLite's page size here.
const PAGE: u64 = 4096;

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The frames in the log and how many of them are copied into the
/// database, from the WAL-index header in the `-shm` file
/// (<https://www.sqlite.org/walformat.html>: `mxFrame` at byte 16,
/// `nBackfill` at byte 96, in the machine's byte order).
fn log_frames(shm: &Path) -> (u32, u32) {
    let bytes = std::fs::read(shm).unwrap_or_default();
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    (word(16), word(96))
}

/// Waits, checking every few milliseconds, until `done` holds; fails after
/// ten seconds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The database's file, its log and the log's index.
fn files(url: &str) -> (PathBuf, PathBuf, PathBuf) {
    let database = PathBuf::from(url.strip_prefix("sqlite://").unwrap());
    let log = database.with_file_name("hirecj.db-wal");
    let shm = database.with_file_name("hirecj.db-shm");
    (database, log, shm)
}

async fn conversation(store: &Store) -> ConversationId {
    let id = ConversationId::generate();
    store
        .create_conversation(id, None, None, "ad_hoc_support")
        .await
        .unwrap();
    id
}

/// Writes `n` messages of about 4 KB, one commit each; returns the log's
/// largest size seen after a commit.
async fn write_messages(store: &Store, id: ConversationId, n: usize, log: &Path) -> u64 {
    let text = "A merchant's long message. ".repeat(150);
    let mut largest = 0;
    for _ in 0..n {
        store
            .append_message(id, &NewMessage::new(Role::Merchant, text.clone()))
            .await
            .unwrap();
        largest = largest.max(size(log));
    }
    largest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_copied_once_writing_pauses_and_starts_over() {
    with_sqlite(|store, url| async move {
        let (database, log, shm) = files(&url);
        let id = conversation(&store).await;
        let before = size(&database);

        // About a thousand pages of log: a tenth of what makes a
        // committing connection checkpoint on its own.
        write_messages(&store, id, 200, &log).await;
        wait_until("the log is copied into the database in full", || {
            let (frames, copied) = log_frames(&shm);
            frames > 0 && copied == frames
        })
        .await;
        assert!(
            size(&database) >= before + 200 * 4_000,
            "the messages are in the database file"
        );

        // The next writes start the log over instead of making it longer
        // (it has held at least a hundred of these messages; fifty fit).
        let copied = size(&log);
        write_messages(&store, id, 50, &log).await;
        assert_eq!(size(&log), copied, "the log started over");
        assert_eq!(store.messages(id, 0).await.unwrap().len(), 250);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_starts_over_while_writing_goes_on() {
    with_sqlite(|store, url| async move {
        let (_, log, _) = files(&url);
        let id = conversation(&store).await;
        // About 12,000 pages written without a pause. Passive checkpoints
        // racing the writer never leave the log fully copied; the short
        // pass under the write lock past 4,000 pages does, so the log
        // starts over well before the 10,000 pages at which a commit would
        // checkpoint by itself.
        let largest = write_messages(&store, id, 2_400, &log).await;
        assert!(
            largest < 7_000 * PAGE,
            "the log reached {} pages",
            largest / PAGE
        );
        assert_eq!(store.messages(id, 0).await.unwrap().len(), 2_400);
    })
    .await;
}
