//! The leader's choice between DIFF, TRUNC and SNAP for one learner (reference §4.6, ZooKeeper's
//! `LearnerHandler.syncFollower` and `queueCommittedProposals`), as a pure function of the
//! learner's last zxid, the leader's history and, for rule 5, what the on-disk txn log holds.
//!
//! Rule 5 (the learner is behind the in-memory committed log) needs the on-disk log, which only
//! the glue can read: with txn-log sync enabled the first call answers [`Step::ReadLog`], and
//! the leader plans again with the glue's answer ([`TxnLog::Read`]).

use corral_proto::quorum::{counter_of, epoch_of};

/// The op packet that opens the sync stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    Diff(i64),
    Trunc(i64),
    Snap,
}

/// The decision for one learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPlan {
    pub mode: SyncMode,
    /// History zxids to send as PROPOSAL + COMMIT pairs after the op packet (not for SNAP),
    /// oldest first: first those from the on-disk log (rule 5), then the in-memory ones.
    pub send: Vec<i64>,
    /// The last zxid the learner has once the stream is applied (`startForwarding` argument).
    pub queued_zxid: i64,
}

/// The leader's history as seen by `syncFollower`.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    /// Zxids of the committed log (plus, before the epoch is established, the leader's logged
    /// tail, which becomes committed with the epoch), oldest first.
    pub zxids: &'a [i64],
    /// `lastProcessedZxid`: the end of the history.
    pub last_processed: i64,
    /// The zxid before the first entry of `zxids` when the committed log itself is empty and
    /// only the tail is listed (the applied zxid); `None` otherwise.
    pub base_without_log: Option<i64>,
}

/// What the on-disk txn log contributes to rule 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnLog<'a> {
    /// `zookeeper.snapshotSizeFactor` < 0 (`ZKDatabase.isTxnLogSyncEnabled` false): rule 5
    /// never applies and a learner behind the committed log gets SNAP (rule 6).
    Disabled,
    /// Enabled and not read yet: where rule 5 applies, [`plan_sync`] asks for the log.
    Unread,
    /// The glue's answer (`ZKDatabase.getProposalsFromTxnLog`): the zxids of the logged txns
    /// from the last one at or before the learner's zxid on, oldest first (at least through
    /// the requested `to_zxid` when the log has them); `None` is ZooKeeper's empty iterator
    /// (no log reaching back that far, or more log than the size limit allows).
    Read(Option<&'a [i64]>),
}

/// What the leader does next for this learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Plan(SyncPlan),
    /// Rule 5 applies: read the on-disk log from `from_zxid` (the learner's zxid) through
    /// `to_zxid`, then plan again with [`TxnLog::Read`]. ZooKeeper walks the log only up to
    /// `minCommittedLog` (and so does the plan); `to_zxid` is `maxCommittedLog`, so that an
    /// answer still covers a committed log that moved on while the read was pending.
    ReadLog {
        from_zxid: i64,
        to_zxid: i64,
    },
}

pub fn plan_sync(peer_last: i64, h: History<'_>, log: TxnLog<'_>) -> Step {
    let new_epoch_peer = counter_of(peer_last) == 0;
    let (min, max) = match (h.zxids.first(), h.zxids.last()) {
        (Some(first), Some(last)) => (*first, *last),
        _ => (h.last_processed, h.last_processed),
    };
    let snap = SyncPlan {
        mode: SyncMode::Snap,
        send: Vec::new(),
        queued_zxid: h.last_processed,
    };
    if peer_last == h.last_processed {
        return Step::Plan(SyncPlan {
            mode: SyncMode::Diff(peer_last),
            send: Vec::new(),
            queued_zxid: peer_last,
        });
    }
    if peer_last > max && !new_epoch_peer {
        return Step::Plan(SyncPlan {
            mode: SyncMode::Trunc(max),
            send: Vec::new(),
            queued_zxid: max,
        });
    }
    if min <= peer_last && peer_last <= max {
        let mut w = Walk::new(peer_last, max);
        let plan = w.feed(h.zxids, None).and_then(|()| w.finish());
        return Step::Plan(plan.unwrap_or(snap));
    }
    if h.base_without_log == Some(peer_last) {
        // Only the tail is in memory and the learner stands exactly at its base: everything
        // listed follows what it has. ZooKeeper's committedLog would include that base.
        return Step::Plan(SyncPlan {
            mode: SyncMode::Diff(max),
            send: h.zxids.to_vec(),
            queued_zxid: max,
        });
    }
    if peer_last < min {
        match log {
            TxnLog::Disabled | TxnLog::Read(None) => {}
            TxnLog::Unread => {
                return Step::ReadLog {
                    from_zxid: peer_last,
                    to_zxid: max,
                }
            }
            TxnLog::Read(Some(logged)) => {
                if let Some(plan) = from_txn_log(peer_last, logged, h.zxids, min, max) {
                    return Step::Plan(plan);
                }
            }
        }
    }
    Step::Plan(snap)
}

/// `zookeeper.snapshotSizeFactor` as `ZKDatabase` reads it: 0.33 when unset, unparsable or
/// above 1. A negative factor disables rule 5 ([`TxnLog::Disabled`], `isTxnLogSyncEnabled`).
pub fn snapshot_size_factor(property: Option<&str>) -> f64 {
    const DEFAULT: f64 = 0.33;
    match property.map(|v| v.trim().parse::<f64>()) {
        Some(Ok(f)) if f > 1.0 => DEFAULT,
        Some(Ok(f)) => f,
        Some(Err(_)) | None => DEFAULT,
    }
}

/// Rule 5 is on (`ZKDatabase.isTxnLogSyncEnabled`).
pub fn txn_log_sync_enabled(factor: f64) -> bool {
    factor >= 0.0
}

/// `ZKDatabase.calculateTxnLogSizeLimit`: `(long) (size of the latest snapshot file × factor)`,
/// with no snapshot counting as size 0.
pub fn txn_log_size_limit(latest_snapshot_len: u64, factor: f64) -> i64 {
    (latest_snapshot_len as f64 * factor) as i64
}

/// The size check of `ZKDatabase.getProposalsFromTxnLog`: `storage_size` is what ZooKeeper's
/// log iterator reports (`FileTxnIterator.getStorageSize`: the on-disk length of the log files
/// it has yet to open after the one it read the first txn from). A negative limit reads
/// nothing, 0 means no limit.
pub fn txn_log_within_limit(storage_size: u64, limit: i64) -> bool {
    match limit {
        l if l < 0 => false,
        0 => true,
        l => storage_size <= l as u64,
    }
}

/// Rule 5: the on-disk log up to `minCommittedLog`, then the committed log. `None` means SNAP.
fn from_txn_log(
    peer_last: i64,
    logged: &[i64],
    zxids: &[i64],
    min: i64,
    max: i64,
) -> Option<SyncPlan> {
    // `getProposalsFromTxnLog`: a log whose first txn is past the learner's cannot be trusted
    // to hold everything after it.
    if logged.first().is_none_or(|first| *first > peer_last) {
        return None;
    }
    let mut w = Walk::new(peer_last, max);
    w.feed(logged, Some(min))?;
    if w.queued < min {
        // "Detected gap between end of txnlog and start of committedLog".
        return None;
    }
    w.feed(zxids, None)?;
    w.finish()
}

/// `queueCommittedProposals`, over one source after another (the op packet is chosen once).
struct Walk {
    peer_last: i64,
    new_epoch_peer: bool,
    /// `lastCommittedZxid`: what DIFF carries (`maxCommittedLog`).
    last_committed: i64,
    mode: Option<SyncMode>,
    queued: i64,
    prev: i64,
    send: Vec<i64>,
}

impl Walk {
    fn new(peer_last: i64, last_committed: i64) -> Walk {
        Walk {
            peer_last,
            new_epoch_peer: counter_of(peer_last) == 0,
            last_committed,
            mode: None,
            queued: peer_last,
            prev: -1,
            send: Vec::new(),
        }
    }

    /// Queue the zxids of one source, stopping past `limit`. `None`: the learner has a txn we
    /// never committed and a TRUNC would cross an epoch (SNAP).
    fn feed(&mut self, zxids: &[i64], limit: Option<i64>) -> Option<()> {
        for &z in zxids {
            if limit.is_some_and(|l| z > l) {
                break;
            }
            if z < self.peer_last {
                self.prev = z;
                continue;
            }
            if self.mode.is_none() {
                if z == self.peer_last {
                    self.mode = Some(SyncMode::Diff(self.last_committed));
                    continue;
                }
                if self.new_epoch_peer {
                    self.mode = Some(SyncMode::Diff(self.last_committed));
                } else {
                    // The learner has a txn we never committed; a TRUNC cannot cross epochs.
                    if epoch_of(z) != epoch_of(self.peer_last) {
                        return None;
                    }
                    self.mode = Some(SyncMode::Trunc(self.prev));
                }
            }
            if z <= self.queued {
                continue;
            }
            self.send.push(z);
            self.queued = z;
        }
        Some(())
    }

    fn finish(mut self) -> Option<SyncPlan> {
        if self.mode.is_none() && self.new_epoch_peer {
            self.mode = Some(SyncMode::Diff(self.last_committed));
        }
        Some(SyncPlan {
            mode: self.mode?,
            send: self.send,
            queued_zxid: self.queued,
        })
    }
}

#[cfg(test)]
mod tests {
    //! The §4.6 decision table, one case per rule, with the zxids of the reference examples.

    use super::*;

    /// The decision without the on-disk log (rules 1–4 and 6).
    fn plan(peer_last: i64, h: History<'_>) -> SyncPlan {
        match plan_sync(peer_last, h, TxnLog::Disabled) {
            Step::Plan(p) => p,
            s => panic!("txn-log sync is disabled, yet {s:?}"),
        }
    }

    fn hist(zxids: &[i64]) -> History<'_> {
        History {
            zxids,
            last_processed: *zxids.last().unwrap(),
            base_without_log: None,
        }
    }

    const E1: [i64; 6] = [
        0x1_0000_0001,
        0x1_0000_0002,
        0x1_0000_0003,
        0x1_0000_0004,
        0x1_0000_0005,
        0x1_0000_0006,
    ];

    #[test]
    fn peer_in_log_gets_diff_max_then_the_rest() {
        // §4.6 [V]: DIFF 0x100000006 then PROPOSAL/COMMIT 0x…03..06 for peer 0x100000002.
        let p = plan(0x1_0000_0002, hist(&E1));
        assert_eq!(p.mode, SyncMode::Diff(0x1_0000_0006));
        assert_eq!(p.send, E1[2..].to_vec());
        assert_eq!(p.queued_zxid, 0x1_0000_0006);
    }

    #[test]
    fn peer_equal_to_last_processed_gets_empty_diff() {
        let p = plan(0x1_0000_0006, hist(&E1));
        assert_eq!(p.mode, SyncMode::Diff(0x1_0000_0006));
        assert!(p.send.is_empty());
    }

    #[test]
    fn peer_ahead_gets_trunc_to_max() {
        let p = plan(0x1_0000_0008, hist(&E1));
        assert_eq!(p.mode, SyncMode::Trunc(0x1_0000_0006));
        assert!(p.send.is_empty());
        assert_eq!(p.queued_zxid, 0x1_0000_0006);
    }

    #[test]
    fn peer_with_unknown_txn_in_same_epoch_gets_trunc_to_previous() {
        // Leader history skips 0x…04 (the old leader proposed it, nobody committed it).
        let h = [0x1_0000_0001, 0x1_0000_0002, 0x1_0000_0003, 0x2_0000_0001];
        let p = plan(0x1_0000_0004, hist(&h));
        // 0x200000001 follows in another epoch: no TRUNC across epochs, SNAP instead.
        assert_eq!(p.mode, SyncMode::Snap);
        let h = [0x1_0000_0001, 0x1_0000_0002, 0x1_0000_0003, 0x1_0000_0005];
        let p = plan(0x1_0000_0004, hist(&h));
        assert_eq!(p.mode, SyncMode::Trunc(0x1_0000_0003));
        assert_eq!(p.send, vec![0x1_0000_0005]);
    }

    #[test]
    fn new_epoch_peer_gets_diff_even_when_ahead() {
        let p = plan(0x2_0000_0000, hist(&E1));
        // Above max but a new-epoch zxid: not rule 3; not in range; SNAP (ZooKeeper's
        // "unhandled scenario" ends in a snapshot too).
        assert_eq!(p.mode, SyncMode::Snap);
        let h = [0x1_0000_0001, 0x1_0000_0002, 0x2_0000_0001, 0x2_0000_0002];
        let p = plan(0x2_0000_0000, hist(&h));
        assert_eq!(p.mode, SyncMode::Diff(0x2_0000_0002));
        assert_eq!(p.send, vec![0x2_0000_0001, 0x2_0000_0002]);
    }

    #[test]
    fn peer_behind_the_log_gets_snap() {
        let p = plan(0x0, hist(&E1[2..]));
        assert_eq!(p.mode, SyncMode::Snap);
        assert_eq!(p.queued_zxid, 0x1_0000_0006);
    }

    #[test]
    fn empty_log_compares_with_last_processed() {
        let h = History {
            zxids: &[],
            last_processed: 0x1_0000_0004,
            base_without_log: None,
        };
        assert_eq!(plan(0x1_0000_0004, h).mode, SyncMode::Diff(0x1_0000_0004));
        assert_eq!(plan(0x1_0000_0007, h).mode, SyncMode::Trunc(0x1_0000_0004));
        assert_eq!(plan(0x1_0000_0002, h).mode, SyncMode::Snap);
    }

    #[test]
    fn tail_only_history_diffs_a_peer_at_its_base() {
        let tail = [0x1_0000_0005, 0x1_0000_0006];
        let h = History {
            zxids: &tail,
            last_processed: 0x1_0000_0006,
            base_without_log: Some(0x1_0000_0004),
        };
        let p = plan(0x1_0000_0004, h);
        assert_eq!(p.mode, SyncMode::Diff(0x1_0000_0006));
        assert_eq!(p.send, tail.to_vec());
    }

    // Rule 5: committed log 0x…11..14 in memory, the on-disk log from 0x…01.
    const MEM: [i64; 4] = [0x1_0000_0011, 0x1_0000_0012, 0x1_0000_0013, 0x1_0000_0014];

    fn disk(from: i64, to: i64) -> Vec<i64> {
        (from..=to).map(|c| 0x1_0000_0000 | c).collect()
    }

    fn with_log(peer_last: i64, logged: Option<&[i64]>) -> SyncPlan {
        match plan_sync(peer_last, hist(&MEM), TxnLog::Read(logged)) {
            Step::Plan(p) => p,
            s => panic!("the log was read, yet {s:?}"),
        }
    }

    #[test]
    fn peer_behind_the_committed_log_asks_for_the_txn_log_from_its_zxid() {
        let s = plan_sync(0x1_0000_0005, hist(&MEM), TxnLog::Unread);
        assert_eq!(
            s,
            Step::ReadLog {
                from_zxid: 0x1_0000_0005,
                to_zxid: 0x1_0000_0014
            }
        );
        // Disabled (`snapshotSizeFactor` < 0): straight to SNAP, nothing read.
        let s = plan_sync(0x1_0000_0005, hist(&MEM), TxnLog::Disabled);
        assert!(matches!(
            s,
            Step::Plan(SyncPlan {
                mode: SyncMode::Snap,
                ..
            })
        ));
        // Rules 2-4 never read the log.
        for peer in [0x1_0000_0012, 0x1_0000_0014, 0x1_0000_0016] {
            let s = plan_sync(peer, hist(&MEM), TxnLog::Unread);
            assert!(matches!(s, Step::Plan(_)), "{peer:#x}: {s:?}");
        }
    }

    #[test]
    fn txn_log_then_committed_log_gives_one_diff_stream_without_duplicates() {
        // The log goes past min (0x…11): the walk stops at min, the committed log follows.
        for logged in [disk(0x03, 0x11), disk(0x05, 0x14), disk(0x01, 0x13)] {
            let p = with_log(0x1_0000_0005, Some(&logged));
            assert_eq!(p.mode, SyncMode::Diff(0x1_0000_0014), "{logged:x?}");
            assert_eq!(p.send, disk(0x06, 0x14));
            assert_eq!(p.queued_zxid, 0x1_0000_0014);
        }
    }

    #[test]
    fn txn_log_not_reaching_back_or_leaving_a_gap_means_snap() {
        // First txn found after the learner's zxid (`getProposalsFromTxnLog`).
        assert_eq!(
            with_log(0x1_0000_0005, Some(&disk(0x06, 0x14))).mode,
            SyncMode::Snap
        );
        // The log ends before min: a gap between it and the committed log.
        assert_eq!(
            with_log(0x1_0000_0005, Some(&disk(0x01, 0x10))).mode,
            SyncMode::Snap
        );
        // Nothing (no log, or over the size limit).
        assert_eq!(with_log(0x1_0000_0005, None).mode, SyncMode::Snap);
        assert_eq!(with_log(0x1_0000_0005, Some(&[])).mode, SyncMode::Snap);
        assert_eq!(with_log(0x1_0000_0005, None).queued_zxid, 0x1_0000_0014);
    }

    #[test]
    fn txn_log_with_a_txn_the_learner_lacks_gives_trunc_or_snap_across_epochs() {
        // The leader's log skips 0x…05, which the learner has: TRUNC to 0x…04, then the rest.
        let mut logged = disk(0x01, 0x04);
        logged.extend(disk(0x06, 0x11));
        let p = with_log(0x1_0000_0005, Some(&logged));
        assert_eq!(p.mode, SyncMode::Trunc(0x1_0000_0004));
        assert_eq!(p.send, disk(0x06, 0x14));
        // The next logged txn is of a later epoch: no TRUNC across it.
        let logged = [0x1_0000_0004, 0x2_0000_0001, 0x2_0000_0002];
        let mem = [0x2_0000_0002, 0x2_0000_0003];
        let s = plan_sync(0x1_0000_0005, hist(&mem), TxnLog::Read(Some(&logged)));
        assert!(matches!(
            s,
            Step::Plan(SyncPlan {
                mode: SyncMode::Snap,
                ..
            })
        ));
    }

    #[test]
    fn new_epoch_peer_behind_the_committed_log_gets_diff_from_the_txn_log() {
        let logged = [0x1_0000_0007, 0x2_0000_0001, 0x2_0000_0002];
        let mem = [0x2_0000_0002, 0x2_0000_0003];
        let s = plan_sync(0x2_0000_0000, hist(&mem), TxnLog::Unread);
        assert!(matches!(s, Step::ReadLog { .. }));
        let s = plan_sync(0x2_0000_0000, hist(&mem), TxnLog::Read(Some(&logged)));
        let Step::Plan(p) = s else { panic!("{s:?}") };
        assert_eq!(p.mode, SyncMode::Diff(0x2_0000_0003));
        assert_eq!(p.send, vec![0x2_0000_0001, 0x2_0000_0002, 0x2_0000_0003]);
    }

    #[test]
    fn size_limit_follows_zkdatabase() {
        assert_eq!(snapshot_size_factor(None), 0.33);
        assert_eq!(snapshot_size_factor(Some("0.5")), 0.5);
        assert_eq!(snapshot_size_factor(Some(" 1 ")), 1.0);
        assert_eq!(snapshot_size_factor(Some("1.5")), 0.33);
        assert_eq!(snapshot_size_factor(Some("lots")), 0.33);
        assert_eq!(snapshot_size_factor(Some("-1")), -1.0);
        assert!(txn_log_sync_enabled(0.0) && !txn_log_sync_enabled(-1.0));
        // (long) (snapSize * factor), truncated.
        assert_eq!(txn_log_size_limit(1000, 0.33), 330);
        assert_eq!(txn_log_size_limit(1001, 0.33), 330);
        // No snapshot, or a factor of 0: limit 0, which means no limit.
        assert_eq!(txn_log_size_limit(0, 0.33), 0);
        assert!(txn_log_within_limit(u64::MAX, 0));
        assert!(txn_log_within_limit(330, 330));
        assert!(!txn_log_within_limit(331, 330));
        assert!(!txn_log_within_limit(0, -1));
    }
}
