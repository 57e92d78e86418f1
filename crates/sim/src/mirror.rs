//! What the checkers know of each node's files without reading them: the txns it logged and
//! the history behind each snapshot it began, followed through the node's observations
//! (`corral_node::Observation`). With them a restarted node's history (the ghost the chain
//! checks) is rebuilt from the snapshot the real `FileStore` loaded plus the logged txns after
//! it. The files themselves are real: `FileStore` over `FaultDisk`.

use std::collections::BTreeMap;

use corral_proto::txn::{Txn, TxnBody};

use crate::limits::SNAPSHOT_HISTORIES_KEPT;
use crate::rng::fingerprint;

/// One applied txn as the checkers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GhostEntry {
    pub zxid: i64,
    pub fp: u64,
    pub session: i64,
    pub cxid: i32,
    pub ty: i32,
    /// An error txn or a failed multi: it changed nothing.
    pub noop: bool,
}

impl GhostEntry {
    pub fn of(txn: &Txn, bytes: &[u8]) -> GhostEntry {
        GhostEntry {
            zxid: txn.header.zxid,
            fp: fingerprint(bytes),
            session: txn.header.client_id,
            cxid: txn.header.cxid,
            ty: txn.header.r#type,
            noop: match &txn.body {
                TxnBody::Error(_) => true,
                TxnBody::Multi(subs) => subs.iter().any(|s| matches!(s, TxnBody::Error(_))),
                _ => false,
            },
        }
    }
}

#[derive(Default)]
pub struct Mirror {
    /// Txns appended to the log, in order (durable or not: a crash decides, the next `Loaded`
    /// says which survived).
    pub log: Vec<GhostEntry>,
    /// The history behind each snapshot begun, by snapshot zxid.
    pub snapshots: BTreeMap<i64, Vec<GhostEntry>>,
}

impl Mirror {
    pub fn appended(&mut self, g: GhostEntry) -> Result<(), String> {
        if let Some(last) = self.log.last() {
            if g.zxid <= last.zxid {
                return Err(format!("logged 0x{:x} after 0x{:x}", g.zxid, last.zxid));
            }
        }
        self.log.push(g);
        Ok(())
    }

    pub fn truncated(&mut self, zxid: i64) {
        self.log.retain(|g| g.zxid <= zxid);
    }

    pub fn snapshot_started(&mut self, zxid: i64, history: &[GhostEntry]) {
        let upto = history.partition_point(|g| g.zxid <= zxid);
        self.snapshots.insert(zxid, history[..upto].to_vec());
        while self.snapshots.len() > SNAPSHOT_HISTORIES_KEPT {
            self.snapshots.pop_first();
        }
    }

    /// The history of a state loaded from the snapshot at `snapshot_zxid` plus the logged txns
    /// after it up to `last_zxid`; what was logged after `last_zxid` did not survive.
    pub fn loaded(
        &mut self,
        snapshot_zxid: Option<i64>,
        last_zxid: i64,
    ) -> Result<Vec<GhostEntry>, String> {
        let base = snapshot_zxid.unwrap_or(0);
        let mut ghost = match snapshot_zxid {
            None => Vec::new(),
            Some(z) => self
                .snapshots
                .get(&z)
                .cloned()
                .ok_or_else(|| format!("no history for the snapshot at 0x{z:x}"))?,
        };
        self.log.retain(|g| g.zxid <= last_zxid);
        ghost.extend(self.log.iter().filter(|g| g.zxid > base).copied());
        let end = ghost.last().map_or(0, |g| g.zxid);
        if end != last_zxid {
            return Err(format!(
                "snapshot 0x{base:x} + logged txns end at 0x{end:x}, the store loaded to 0x{last_zxid:x}"
            ));
        }
        Ok(ghost)
    }
}
