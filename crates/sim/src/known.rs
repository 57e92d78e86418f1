//! Bugs this harness found in the code it drives, which others own. Each has the invariant
//! name its failures carry and a switch: while the switch is on, a seed that hits the bug ends
//! there and counts as "known" instead of failing the CI test. Turn a switch off once its bug
//! is fixed, so the harness guards the fix.

use crate::sim::Failure;

/// A sync's reply is overtaken by the reply to a later write of the same session.
/// `corral_zab` leader `try_commit` commits a batch of proposals and only then completes the
/// pending syncs, so a sync waiting for zxid N is answered (SyncDone, or SYNC to a learner)
/// after COMMIT N+k of a write the session sent after the sync; `Core` answers that write
/// first. ZooKeeper's `Leader.tryToCommit` sends the sync right after committing N.
pub const SYNC_OVERTAKEN: &str = "per-session FIFO: a reply overtook an earlier sync";
pub const KNOWN_BUG_SYNC_OVERTAKEN: bool = false;

/// A learner that loaded a leader's SNAP and crashed before NEWLEADER cannot start again:
/// `LoadSnapshot` persists a snapshot from the new epoch while `currentEpoch` is still the old
/// one, and start-up refuses "epoch files are behind the data". ZooKeeper takes the snapshot
/// at NEWLEADER, right before `setCurrentEpoch`.
pub const EPOCH_BEHIND_SNAP: &str = "epoch files are not behind the data";
pub const KNOWN_BUG_EPOCH_BEHIND_SNAP: bool = false;

/// At StopServing the glue closes every client connection (`close` only tells the writer) but
/// the core keeps them open, so a request already on the wire still reaches
/// `Core::handle_request`: a write becomes a `Pending::Write` and a `Submit` the peer drops
/// while LOOKING. That entry never completes; when the session later resumes on this node,
/// its reads queue behind it forever and its writes are answered before them.
pub const STALE_PENDING: &str =
    "per-session FIFO: a request queued behind a write lost at StopServing";
pub const KNOWN_BUG_STALE_PENDING: bool = false;

/// True when `f` is a known bug whose switch is on.
pub fn tolerated(f: &Failure) -> bool {
    (KNOWN_BUG_STALE_PENDING && f.invariant == STALE_PENDING)
        || (KNOWN_BUG_SYNC_OVERTAKEN && f.invariant == SYNC_OVERTAKEN)
        || (KNOWN_BUG_EPOCH_BEHIND_SNAP && f.invariant == EPOCH_BEHIND_SNAP)
}
