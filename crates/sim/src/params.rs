//! Every knob of one run, drawn from the seed: ensemble shape, timing, disk behaviour, and
//! which fault kinds are on and how often they strike.

use crate::rng::Rng;

/// Crash and restart nodes (losing the unsynced log suffix).
pub const FAULT_CRASHES: bool = true;
/// Partition the ensemble into two sides for a while.
pub const FAULT_PARTITIONS: bool = true;
/// Reset quorum and client connections.
pub const FAULT_CUTS: bool = true;
/// Drop election notifications (the election connection breaks and is redialled).
pub const FAULT_ELECTION_DROPS: bool = true;
/// Whole-ensemble power loss.
pub const FAULT_POWER_LOSS: bool = true;
/// EIO / ENOSPC from one node's disk.
pub const FAULT_DISK_ERRORS: bool = true;
/// A link that goes down and up several times in a row.
pub const FAULT_FLAPS: bool = true;
/// A node stops for a while (GC / VM pause) and carries on.
pub const FAULT_PAUSES: bool = true;
/// Wall clocks that disagree between nodes, and jump.
pub const FAULT_CLOCKS: bool = true;

#[derive(Debug, Clone)]
pub struct Params {
    pub voters: usize,
    pub observer: bool,
    pub clients: usize,
    /// How long faults are injected before the liveness phase.
    pub fault_ms: u64,
    pub tick_ms: u64,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub commit_log_count: usize,
    pub session_timeout_ms: i32,
    /// Fsync inside the flush (as `corral_server` does) or as a later disk completion.
    pub inline_fsync: bool,
    pub fsync_max_ms: u64,
    pub snap_every: usize,
    pub delay_max_ms: u64,
    /// Percent of messages that take a slow path (50..=500 ms), FIFO per connection kept.
    pub slow_pct: u64,
    /// Mean gaps between faults (ms); `None` when the kind is off for this seed.
    pub crash_every_ms: Option<u64>,
    pub partition_every_ms: Option<u64>,
    pub cut_every_ms: Option<u64>,
    pub client_cut_every_ms: Option<u64>,
    pub election_drop_pct: u64,
    pub max_inflight: usize,
    /// Percent chance per client tick to issue an op.
    pub op_pct: u64,
    /// `zookeeper.snapshotSizeFactor`: negative disables txn-log sync (§4.6 rule 5), 0 reads
    /// any amount of log, otherwise the log read may be at most this × the newest snapshot.
    pub snapshot_size_factor: f64,
    /// Whole-ensemble power loss every so often (all nodes at once).
    pub power_loss_every_ms: Option<u64>,
    /// `autopurge.purgeInterval` of every node, in ms.
    pub purge_every_ms: Option<u64>,
    /// One node's disk fails writes and fsyncs with this probability (per mille).
    pub disk_fault_permille: Option<u64>,
    pub flap_every_ms: Option<u64>,
    pub pause_every_ms: Option<u64>,
    /// Each node's wall clock starts up to this far off.
    pub clock_skew_ms: Option<u64>,
    pub clock_jump_every_ms: Option<u64>,
}

impl Params {
    pub fn from_seed(rng: &mut Rng) -> Params {
        let voters = if rng.chance(60) { 3 } else { 5 };
        let on = |rng: &mut Rng, enabled: bool, pct: u64, lo: u64, hi: u64| {
            (enabled && rng.chance(pct)).then(|| rng.range(lo, hi))
        };
        Params {
            voters,
            observer: rng.chance(35),
            clients: rng.range(2, 5) as usize,
            fault_ms: rng.range(4_000, 10_000),
            tick_ms: 100,
            init_limit: 10,
            sync_limit: 5,
            commit_log_count: rng.range(4, 60) as usize,
            session_timeout_ms: rng.range(3_000, 8_000) as i32,
            inline_fsync: rng.chance(50),
            fsync_max_ms: rng.range(1, 40),
            snap_every: rng.range(5, 80) as usize,
            delay_max_ms: rng.range(2, 20),
            slow_pct: rng.below(6),
            crash_every_ms: on(rng, FAULT_CRASHES, 75, 800, 4_000),
            partition_every_ms: on(rng, FAULT_PARTITIONS, 60, 1_000, 5_000),
            cut_every_ms: on(rng, FAULT_CUTS, 60, 300, 3_000),
            client_cut_every_ms: on(rng, FAULT_CUTS, 50, 200, 2_000),
            election_drop_pct: if FAULT_ELECTION_DROPS && rng.chance(50) {
                rng.range(1, 25)
            } else {
                0
            },
            max_inflight: rng.range(1, 4) as usize,
            op_pct: rng.range(20, 80),
            snapshot_size_factor: [-1.0, 0.0, 0.33, 1.0][rng.below(4) as usize],
            power_loss_every_ms: on(rng, FAULT_POWER_LOSS, 20, 3_000, 8_000),
            purge_every_ms: rng.chance(50).then(|| rng.range(500, 5_000)),
            disk_fault_permille: on(rng, FAULT_DISK_ERRORS, 20, 1, 20),
            flap_every_ms: on(rng, FAULT_FLAPS, 30, 1_000, 5_000),
            pause_every_ms: on(rng, FAULT_PAUSES, 30, 1_000, 5_000),
            clock_skew_ms: on(rng, FAULT_CLOCKS, 30, 10, 5_000),
            clock_jump_every_ms: on(rng, FAULT_CLOCKS, 20, 1_000, 5_000),
        }
    }
}
