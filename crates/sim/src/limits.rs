//! Every bound the simulation keeps, with the reason for it.

/// Trace records kept for a failure report (the newest).
pub const TRACE_KEEP: usize = 300;

/// Timer firings at one simulated instant before a node counts as spinning.
pub const SAME_INSTANT_TIMERS_MAX: u32 = 10_000;

/// Blocks in force at once, at most (partitions may overlap).
pub const BLOCKS_MAX: usize = 4;

/// Snapshot histories kept per node (the real store keeps at least 3 snapshot files; a
/// restore that picks one older than these fails the run loudly rather than guessing).
pub const SNAPSHOT_HISTORIES_KEPT: usize = 16;

const _: () = assert!(BLOCKS_MAX >= 2);
const _: () = assert!(SNAPSHOT_HISTORIES_KEPT >= 3);

/// How often the leader's reaper looks for containers and TTL nodes (ms): ZooKeeper's 60 s
/// default would leave the workload's TTL nodes (0.5–6 s) alive through most of a run.
pub const REAPER_CHECK_MS: u64 = 1_000;
