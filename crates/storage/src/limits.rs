//! Every bound storage keeps, with the reason for it.

/// Sibling sets up to this size are written in name order, so typical snapshots are
/// reproducible byte for byte; larger ones keep creation order, so the walk stays linear on a
/// node with a million children (ZooKeeper's hash order is not reproducible either).
pub const SORTED_SIBLINGS_MAX: usize = 1024;

/// Uncompressed bytes per block of a snappy snapshot: snappy-java's stream block size, so
/// ZooKeeper reads our blocks with the buffers it allocates for its own.
pub const SNAPPY_BLOCK: usize = 32 * 1024;

/// Snapshot files start-up tries, newest first, before it gives up (ZooKeeper's
/// `FileSnap.deserialize` tries up to 100 as well): past that the directory is not one a
/// server wrote.
pub const SNAPSHOTS_TRIED_MAX: usize = 100;

/// How many replayed txns `restore` keeps for `Restored::recent_txns`
/// (`zookeeper.commitLogCount`).
pub const RECENT_TXNS_KEPT: usize = 500;

const _: () = assert!(SORTED_SIBLINGS_MAX > 0 && SNAPPY_BLOCK >= 1024);
const _: () = assert!(RECENT_TXNS_KEPT > 0 && SNAPSHOTS_TRIED_MAX >= 3);
