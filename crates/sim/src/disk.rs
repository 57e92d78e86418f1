//! The simulated data directory of one node: a txn log with a synced prefix (a crash keeps the
//! synced prefix and a random part of the rest, never a torn entry), the epoch files (written
//! synchronously), and snapshots serialized with the real snapshot format. Beside each
//! snapshot and log entry the simulator keeps the "ghost" of what the tree reflects: the
//! (zxid, fingerprint) of every txn applied to reach it, so the checkers can compare a
//! restarted node's history with the global chain. Mirrors `corral_server::storage`:
//! `truncate_after` drops log entries and snapshots above the zxid, `load` takes the newest
//! snapshot and replays the log after it with ZooKeeper's fuzzy tolerance.

use std::collections::BTreeMap;

use corral_proto::txn::Txn;
use corral_storage::snapshot::{self, Meta};
use corral_storage::store::apply_replayed;
use corral_tree::DataTree;

use crate::rng::fingerprint;

/// One applied txn as the checkers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GhostEntry {
    pub zxid: i64,
    pub fp: u64,
    pub session: i64,
    pub cxid: i32,
    pub ty: i32,
}

impl GhostEntry {
    pub fn of(txn: &Txn, bytes: &[u8]) -> GhostEntry {
        GhostEntry {
            zxid: txn.header.zxid,
            fp: fingerprint(bytes),
            session: txn.header.client_id,
            cxid: txn.header.cxid,
            ty: txn.header.r#type,
        }
    }
}

pub struct Snap {
    pub zxid: i64,
    pub bytes: Vec<u8>,
    pub ghost: Vec<GhostEntry>,
}

/// Snapshots kept; older ones are purged (the log is kept whole, so a restore never lacks
/// the txns after the snapshot it picks).
const SNAPS_KEPT: usize = 4;

#[derive(Default)]
pub struct Disk {
    pub log: Vec<(i64, Vec<u8>)>,
    pub synced: usize,
    pub accepted_epoch: Option<i64>,
    pub current_epoch: Option<i64>,
    pub snaps: Vec<Snap>,
    /// Txns appended since the last snapshot (the real storage's `since_snapshot`).
    pub since_snap: usize,
}

/// What a restore produced.
pub struct Loaded {
    pub tree: DataTree,
    pub sessions: Vec<(i64, i32)>,
    pub ghost: Vec<GhostEntry>,
    /// The last `REPLAYED_KEPT` txns replayed from the log (the real restore keeps them for
    /// the peer's committed log).
    pub replayed: Vec<(i64, Vec<u8>)>,
}

const REPLAYED_KEPT: usize = 500;

impl Disk {
    pub fn last_logged(&self) -> i64 {
        self.log.last().map_or(0, |(z, _)| *z)
    }

    /// Append a txn; `Err` when its zxid does not exceed the last logged one.
    pub fn append(&mut self, zxid: i64, bytes: Vec<u8>) -> Result<(), String> {
        let last = self.last_logged();
        if zxid <= last {
            return Err(format!("appended 0x{zxid:x} after 0x{last:x}"));
        }
        self.log.push((zxid, bytes));
        self.since_snap += 1;
        Ok(())
    }

    pub fn sync(&mut self) {
        self.synced = self.log.len();
    }

    /// A crash: the synced prefix survives, plus `extra` of the unsynced entries (the disk
    /// may have written some of them on its own).
    pub fn crash(&mut self, extra: usize) {
        let keep = (self.synced + extra).min(self.log.len());
        self.log.truncate(keep);
        self.synced = keep;
    }

    /// TRUNC or SNAP: drop log entries and snapshots above `zxid`, durably.
    pub fn truncate_after(&mut self, zxid: i64) {
        let cut = self.log.partition_point(|(z, _)| *z <= zxid);
        self.log.truncate(cut);
        self.synced = self.log.len();
        self.snaps.retain(|s| s.zxid <= zxid);
    }

    /// SNAP: after the leader's state is durable as a snapshot, the log before it goes: it may
    /// hold txns of a history the leader's replaced (never committed), which restore skips
    /// but a txn-log sync (`read_log`) would send.
    pub fn drop_log(&mut self) {
        self.log.clear();
        self.synced = 0;
    }

    pub fn snapshot(&mut self, tree: &DataTree, sessions: Vec<(i64, i32)>, ghost: Vec<GhostEntry>) {
        let zxid = tree.last_processed_zxid();
        let meta = Meta {
            sessions,
            digest: Some((zxid, tree.digest() as i64)),
        };
        let bytes = snapshot::serialize(tree, &meta);
        self.snaps.retain(|s| s.zxid != zxid);
        self.snaps.push(Snap { zxid, bytes, ghost });
        self.snaps.sort_by_key(|s| s.zxid);
        if self.snaps.len() > SNAPS_KEPT {
            self.snaps.remove(0);
        }
        self.since_snap = 0;
    }

    /// A leader's txn-log sync read (`corral_server`'s `Storage::read_log`) over the synced
    /// log: the last entry at or before `from` through `to`; `None` when the log does not
    /// reach back to `from`, or when the bytes read exceed `factor` × the newest snapshot's
    /// size (the real storage counts log files, not entries; a factor of 0 or no snapshot
    /// means no limit, as `ZKDatabase` has it).
    pub fn read_log(&self, from: i64, to: i64, factor: f64) -> Option<Vec<(i64, Vec<u8>)>> {
        let synced = &self.log[..self.synced];
        let start = synced.partition_point(|(z, _)| *z <= from).checked_sub(1)?;
        let end = synced.partition_point(|(z, _)| *z <= to);
        let txns = synced[start..end.max(start)].to_vec();
        let snap_len = self.snaps.last().map_or(0, |s| s.bytes.len() as u64);
        let limit = corral_zab::sync::txn_log_size_limit(snap_len, factor);
        let bytes: u64 = txns.iter().map(|(_, t)| t.len() as u64).sum();
        corral_zab::sync::txn_log_within_limit(bytes, limit).then_some(txns)
    }

    /// The newest snapshot plus the log after it (ZooKeeper's `loadDataBase`).
    pub fn load(&self) -> Result<Loaded, String> {
        let (mut tree, sessions, mut ghost, base) = match self.snaps.last() {
            Some(s) => {
                let (tree, meta) = snapshot::deserialize(&s.bytes, usize::MAX)
                    .map_err(|e| format!("snapshot 0x{:x}: {e}", s.zxid))?;
                (tree, meta.sessions, s.ghost.clone(), s.zxid)
            }
            None => (DataTree::new(), Vec::new(), Vec::new(), 0),
        };
        tree.set_last_processed_zxid(base);
        let mut sessions: BTreeMap<i64, i32> = sessions.into_iter().collect();
        let mut replayed = Vec::new();
        for (zxid, bytes) in self.log.iter().filter(|(z, _)| *z > base) {
            let txn = Txn::from_bytes(bytes).map_err(|e| format!("log 0x{zxid:x}: {e}"))?;
            apply_replayed(&mut tree, &mut sessions, &txn);
            ghost.push(GhostEntry::of(&txn, bytes));
            replayed.push((*zxid, bytes.clone()));
        }
        let skip = replayed.len().saturating_sub(REPLAYED_KEPT);
        replayed.drain(..skip);
        Ok(Loaded {
            tree,
            sessions: sessions.into_iter().collect(),
            ghost,
            replayed,
        })
    }
}
