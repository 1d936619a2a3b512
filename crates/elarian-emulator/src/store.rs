//! Durable storage in an embedded redb database, with group commit.
//!
//! Records are written by one writer thread. Each engine command hands over the records it
//! changed as one batch; the writer takes every batch waiting, writes them in one transaction,
//! commits (fsync), and only then completes the batches. The server acknowledges a command after
//! its batch completed, so every acknowledged write survives `kill -9`.
//!
//! Handing a batch over never blocks: it happens under the engine's state lock, and a blocked
//! tokio worker holding that lock would stall every connection. Backpressure is applied before
//! the lock instead: callers await [`Store::room`] while more than [`QUEUE_BOUND`] batches wait,
//! so the queue exceeds the bound by at most the commands already past that check.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{Notify, oneshot};

/// A table of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Table {
    Customers,
    Purses,
    Transactions,
    Tokens,
    TagReminders,
    Pending,
}

impl Table {
    const ALL: [Table; 6] = [
        Table::Customers,
        Table::Purses,
        Table::Transactions,
        Table::Tokens,
        Table::TagReminders,
        Table::Pending,
    ];

    fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Table::Customers => TableDefinition::new("customers"),
            Table::Purses => TableDefinition::new("purses"),
            Table::Transactions => TableDefinition::new("transactions"),
            Table::Tokens => TableDefinition::new("tokens"),
            Table::TagReminders => TableDefinition::new("tag_reminders"),
            Table::Pending => TableDefinition::new("pending_notifications"),
        }
    }
}

/// One write.
#[derive(Debug)]
pub(crate) enum StoreOp {
    Put {
        table: Table,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        table: Table,
        key: String,
    },
}

/// Errors of the durable store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or read.
    #[error("cannot open the data dir {path}: {message}")]
    Open {
        /// The data dir.
        path: String,
        /// What failed.
        message: String,
    },
    /// A commit failed; the change may not be durable.
    #[error("storage write failed: {0}")]
    Write(String),
    /// The writer thread is gone (the emulator is shutting down).
    #[error("storage is closed")]
    Closed,
    /// The disk is so far behind that the write queue stayed full for the whole wait.
    #[error("storage is overloaded: the write queue stayed full for {0:?}")]
    Overloaded(Duration),
}

struct Batch {
    ops: Vec<StoreOp>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Batches waiting for the writer; beyond this, [`Store::room`] makes commands wait.
pub(crate) const QUEUE_BOUND: usize = 1024;
/// Batches folded into one transaction at most.
const GROUP_LIMIT: usize = 512;

/// Everything read from the store at open.
#[derive(Default)]
pub(crate) struct Loaded {
    pub customers: Vec<(String, Vec<u8>)>,
    pub purses: Vec<(String, Vec<u8>)>,
    pub transactions: Vec<(String, Vec<u8>)>,
    pub tokens: Vec<(String, Vec<u8>)>,
    pub tag_reminders: Vec<(String, Vec<u8>)>,
    pub pending: Vec<(String, Vec<u8>)>,
}

/// Handle to the writer thread.
pub(crate) struct Store {
    tx: Mutex<Option<mpsc::Sender<Batch>>>,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
    backlog: Arc<Backlog>,
}

/// Batches handed over and not yet committed, and a wake-up for whoever waits for room.
#[derive(Default)]
struct Backlog {
    queued: AtomicUsize,
    drained: Notify,
}

/// Creates `dir` (and its parents) if needed; a directory this creates is readable by its
/// owner only (0700), as it holds customer data and auth token hashes.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates `path` readable and writable by its owner only (0600), or narrows an existing
/// file to that, before the database opens it.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    drop(options.open(path)?);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

impl Store {
    /// Opens (or creates) `dir/emulator.redb` and reads every record.
    pub(crate) fn open(dir: &Path) -> Result<(Store, Loaded), StoreError> {
        let open_err = |message: String| StoreError::Open {
            path: dir.display().to_string(),
            message,
        };
        create_private_dir(dir).map_err(|e| open_err(e.to_string()))?;
        let path: PathBuf = dir.join("emulator.redb");
        create_private_file(&path).map_err(|e| open_err(e.to_string()))?;
        let db = Database::create(&path).map_err(|e| open_err(e.to_string()))?;
        // Create the tables so that the first read transaction finds them.
        let init = || -> Result<(), redb::Error> {
            let txn = db.begin_write()?;
            for table in Table::ALL {
                txn.open_table(table.definition())?;
            }
            txn.commit()?;
            Ok(())
        };
        init().map_err(|e| open_err(e.to_string()))?;
        let loaded = read_all(&db).map_err(|e| open_err(e.to_string()))?;
        // Unbounded on purpose: `room` bounds it without blocking under the state lock.
        let (tx, rx) = mpsc::channel::<Batch>();
        let backlog = Arc::new(Backlog::default());
        let writer_backlog = backlog.clone();
        let writer = thread::Builder::new()
            .name("elarian-emulator-store".into())
            .spawn(move || write_loop(db, rx, &writer_backlog))
            .map_err(|e| open_err(e.to_string()))?;
        Ok((
            Store {
                tx: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                backlog,
            },
            loaded,
        ))
    }

    /// Waits (asynchronously, up to `timeout`) until fewer than [`QUEUE_BOUND`] batches wait
    /// for the writer. Call it before taking the state lock for a change.
    pub(crate) async fn room(&self, timeout: Duration) -> Result<(), StoreError> {
        let deadline = crate::clock::deadline_after(timeout);
        loop {
            let drained = self.backlog.drained.notified();
            tokio::pin!(drained);
            // Registered before the check, so a drain between the check and the wait is seen.
            drained.as_mut().enable();
            if self.backlog.queued.load(Ordering::Acquire) < QUEUE_BOUND {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return Err(StoreError::Overloaded(timeout));
            }
        }
    }

    /// Queues a batch; the receiver completes once it is committed.
    pub(crate) fn submit(&self, ops: Vec<StoreOp>) -> oneshot::Receiver<Result<(), StoreError>> {
        let (done, rx) = oneshot::channel();
        let tx = self.tx.lock().ok().and_then(|t| t.clone());
        let batch = Batch { ops, done };
        self.backlog.queued.fetch_add(1, Ordering::AcqRel);
        let refused = match tx {
            Some(tx) => tx.send(batch).err().map(|mpsc::SendError(b)| b),
            None => Some(batch),
        };
        if refused.is_some() {
            self.backlog.queued.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(batch) = refused {
            let _ = batch.done.send(Err(StoreError::Closed));
        }
        rx
    }

    /// Commits what is queued, stops the writer and closes the database file. Blocks.
    pub(crate) fn close(&self) {
        // Closing the channel lets the writer finish the queued batches and exit.
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

fn read_all(db: &Database) -> Result<Loaded, redb::Error> {
    let txn = db.begin_read()?;
    let mut loaded = Loaded::default();
    for table in Table::ALL {
        let t = txn.open_table(table.definition())?;
        let target = match table {
            Table::Customers => &mut loaded.customers,
            Table::Purses => &mut loaded.purses,
            Table::Transactions => &mut loaded.transactions,
            Table::Tokens => &mut loaded.tokens,
            Table::TagReminders => &mut loaded.tag_reminders,
            Table::Pending => &mut loaded.pending,
        };
        for entry in t.iter()? {
            let (k, v) = entry?;
            target.push((k.value().to_owned(), v.value().to_vec()));
        }
    }
    Ok(loaded)
}

fn write_loop(db: Database, rx: mpsc::Receiver<Batch>, backlog: &Backlog) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_LIMIT {
            match rx.try_recv() {
                Ok(batch) => group.push(batch),
                Err(_) => break,
            }
        }
        let result = commit(&db, &group).map_err(|e| {
            tracing::error!(error = %e, "store commit failed");
            StoreError::Write(e.to_string())
        });
        let committed = group.len();
        for batch in group {
            let _ = batch.done.send(result.clone());
        }
        backlog.queued.fetch_sub(committed, Ordering::AcqRel);
        backlog.drained.notify_waiters();
    }
}

fn commit(db: &Database, group: &[Batch]) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut tables = Vec::with_capacity(Table::ALL.len());
        for table in Table::ALL {
            tables.push(txn.open_table(table.definition())?);
        }
        for batch in group {
            for op in &batch.ops {
                match op {
                    StoreOp::Put { table, key, value } => {
                        tables[*table as usize].insert(key.as_str(), value.as_slice())?;
                    }
                    StoreOp::Delete { table, key } => {
                        tables[*table as usize].remove(key.as_str())?;
                    }
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

/// The store key of a record owned by an org.
pub(crate) fn org_key(org_id: &str, id: &str) -> String {
    let mut key = String::with_capacity(org_id.len() + 1 + id.len());
    key.push_str(org_id);
    key.push('/');
    key.push_str(id);
    key
}

/// The store key of a pending notification: zero-padded, so that keys sort in id order.
pub(crate) fn pending_key(id: u64) -> String {
    format!("{id:020}")
}

/// Splits an [`org_key`] back into (org id, record id).
pub(crate) fn split_org_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "elarian-emulator-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn committed_batches_are_read_back_after_reopen() {
        let dir = temp_dir("store");
        {
            let (store, loaded) = Store::open(&dir).unwrap();
            assert!(loaded.customers.is_empty());
            let a = store.submit(vec![StoreOp::Put {
                table: Table::Customers,
                key: org_key("o", "c1"),
                value: vec![1, 2, 3],
            }]);
            let b = store.submit(vec![
                StoreOp::Put {
                    table: Table::Purses,
                    key: org_key("o", "p"),
                    value: vec![9],
                },
                StoreOp::Put {
                    table: Table::Customers,
                    key: org_key("o", "c2"),
                    value: vec![4],
                },
                StoreOp::Delete {
                    table: Table::Customers,
                    key: org_key("o", "c2"),
                },
            ]);
            a.await.unwrap().unwrap();
            b.await.unwrap().unwrap();
        }
        let (_store, loaded) = Store::open(&dir).unwrap();
        assert_eq!(loaded.customers, vec![("o/c1".to_string(), vec![1, 2, 3])]);
        assert_eq!(loaded.purses, vec![("o/p".to_string(), vec![9])]);
        assert_eq!(split_org_key("o/c1"), Some(("o", "c1")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_full_write_queue_makes_callers_wait_for_room_without_blocking_submit() {
        let dir = temp_dir("store-room");
        let (store, _) = Store::open(&dir).unwrap();
        store.room(Duration::from_millis(10)).await.unwrap();
        // Stand in for a disk that fell behind by a full queue.
        store
            .backlog
            .queued
            .fetch_add(QUEUE_BOUND, Ordering::AcqRel);
        assert!(matches!(
            store.room(Duration::from_millis(20)).await,
            Err(StoreError::Overloaded(_))
        ));
        // Handing over never blocks, even now (it runs under the engine's state lock).
        let done = store.submit(vec![StoreOp::Put {
            table: Table::Tokens,
            key: "t".into(),
            value: vec![1],
        }]);
        done.await.unwrap().unwrap();
        // The writer's commit above woke the waiters; the backlog draining lets them through.
        let waiter = {
            let backlog = store.backlog.clone();
            tokio::spawn(async move {
                backlog.queued.fetch_sub(QUEUE_BOUND, Ordering::AcqRel);
                backlog.drained.notify_waiters();
            })
        };
        store.room(Duration::from_secs(5)).await.unwrap();
        waiter.await.unwrap();
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
