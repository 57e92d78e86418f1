//! Every bound the node keeps, with the reason for it.

/// Nodes serialized per slice of a fuzzy snapshot walk: small enough that requests queued
/// behind one slice wait about a millisecond, large enough that a 1M-znode walk is not spread
/// over thousands of batches.
pub const SNAPSHOT_NODES_PER_STEP: usize = 20_000;
/// Bytes serialized per slice at most: 20,000 nodes of 10 KiB would be 200 MB in one slice.
pub const SNAPSHOT_BYTES_PER_STEP: usize = 4 << 20;
/// Learner connections held while we are still looking (see `Node::pending_learners`), at
/// most: one per possible member with room to spare; more is a misbehaving peer.
pub const PENDING_LEARNERS_MAX: usize = 64;
/// Packets buffered per held learner connection: it sends FOLLOWERINFO (or OBSERVERINFO) and
/// waits for LEADERINFO, so more than a few is a misbehaving peer.
pub const PENDING_PACKETS_MAX: usize = 16;
/// How long a learner connection is held while we are still looking: an election that has not
/// decided by then will not decide for this connection's leader view either.
pub const PENDING_LEARNER_TTL_MS: u64 = 10_000;
/// A snapshot is due after a random count in [snapCount/2, snapCount) txns (ZooKeeper's
/// `SyncRequestProcessor` spread); below this the halves degenerate.
pub const SNAP_COUNT_MIN: u64 = 2;
/// autopurge keeps at least this many snapshots (ZooKeeper's `PurgeTxnLog` minimum).
pub const PURGE_RETAIN_MIN: usize = 3;

const _: () = assert!(SNAPSHOT_NODES_PER_STEP > 0);
const _: () = assert!(SNAPSHOT_BYTES_PER_STEP >= 1 << 20);
const _: () = assert!(PENDING_PACKETS_MAX >= 1);
const _: () = assert!(SNAP_COUNT_MIN >= 2);
