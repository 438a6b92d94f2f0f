//! Group commit for [`update_account_and_release`]: writes that arrive while another is
//! being committed wait for it, then go to the database together, in one transaction.
//!
//! A refresher pass ends every account's refresh with this write, several at once; each
//! write alone is a commit (on PostgreSQL a WAL flush, on SQLite a WAL append under the
//! single write lock), and the commit is what costs. Combining the writes that queue up
//! meanwhile pays it once per batch instead of once per account, without adding any wait
//! when the store is idle: a lone write is flushed at once, as a plain statement.
//!
//! Every caller still returns only after its own row is committed (or its error is known);
//! each row keeps its own version and lease check, so a batch never writes a row that a
//! single statement would not have written. A write whose caller stopped waiting may still
//! be committed, by its batch or by the next one (like a statement sent before its caller
//! gave up); its version and lease checks still decide whether it applies.
//!
//! [`update_account_and_release`]: integrations_core::TokenStore::update_account_and_release

use integrations_core::{AccountRecord, ConnectionEvent, StoreError};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedMutexGuard, oneshot};

/// The most rows one transaction writes; more queued writes take the next turn.
pub(crate) const MAX_BATCH: usize = 256;

/// A refresh write waiting for its turn.
pub(crate) struct QueuedWrite {
    /// The row to write (at `record.version`, held by `owner`).
    pub(crate) record: AccountRecord,
    /// The lease owner that must still hold the row.
    pub(crate) owner: String,
    /// The events recorded with the write (only if the row is written).
    pub(crate) events: Vec<ConnectionEvent>,
    /// Whether the row was written (version and lease matched).
    pub(crate) done: oneshot::Sender<Result<bool, StoreError>>,
}

/// The queue of writes and the turn to flush them.
#[derive(Default)]
pub(crate) struct WriteQueue {
    queued: Mutex<Vec<QueuedWrite>>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

/// What the caller of [`WriteQueue::submit`] must do next.
pub(crate) enum Next {
    /// Its write is done: the result.
    Done(Result<bool, StoreError>),
    /// It holds the turn: flush this batch (which may not include its own write), then
    /// drop the guard after every sender has been answered.
    Flush(Vec<QueuedWrite>, OwnedMutexGuard<()>),
}

/// A write whose result the caller waits for.
pub(crate) struct Ticket {
    rx: oneshot::Receiver<Result<bool, StoreError>>,
}

impl WriteQueue {
    /// Queues a write; the returned ticket waits for its result.
    pub(crate) fn submit(
        &self,
        record: AccountRecord,
        owner: String,
        events: Vec<ConnectionEvent>,
    ) -> Ticket {
        let (done, rx) = oneshot::channel();
        self.lock().push(QueuedWrite {
            record,
            owner,
            events,
            done,
        });
        Ticket { rx }
    }

    /// Waits until either the ticket's write is done or the caller gets the turn with a
    /// non-empty batch to flush.
    pub(crate) async fn next(&self, ticket: &mut Ticket) -> Next {
        loop {
            tokio::select! {
                biased;
                done = &mut ticket.rx => {
                    return Next::Done(done.unwrap_or_else(|_| Err(abandoned())));
                }
                turn = self.turn.clone().lock_owned() => {
                    let batch = {
                        let mut queued = self.lock();
                        let rest = if queued.len() > MAX_BATCH {
                            queued.split_off(MAX_BATCH)
                        } else {
                            Vec::new()
                        };
                        std::mem::replace(&mut *queued, rest)
                    };
                    if !batch.is_empty() {
                        return Next::Flush(batch, turn);
                    }
                    // Empty: whoever took this write has answered it (answers come before
                    // the turn is released), so the receiver is ready on the next loop.
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<QueuedWrite>> {
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The error of a write whose batch was dropped before it answered (a panic while
/// flushing).
fn abandoned() -> StoreError {
    StoreError::Unavailable {
        message: "the batched refresh write was abandoned before it finished".into(),
        source: None,
    }
}
