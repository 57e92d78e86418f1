//! The leader's choice between DIFF, TRUNC and SNAP for one learner (reference §4.6, ZooKeeper's
//! `LearnerHandler.syncFollower` and `queueCommittedProposals`), as a pure function of the
//! learner's last zxid and the leader's history.
//!
//! Rule 5 (reading older proposals from the on-disk txn log when the learner is behind the
//! in-memory committed log) is not implemented: that case falls back to SNAP, which ZooKeeper
//! also does whenever the on-disk log cannot cover the gap.

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
    /// History zxids to send as PROPOSAL + COMMIT pairs after the op packet (not for SNAP).
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

pub fn plan_sync(peer_last: i64, h: History<'_>) -> SyncPlan {
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
        return SyncPlan {
            mode: SyncMode::Diff(peer_last),
            send: Vec::new(),
            queued_zxid: peer_last,
        };
    }
    if peer_last > max && !new_epoch_peer {
        return SyncPlan {
            mode: SyncMode::Trunc(max),
            send: Vec::new(),
            queued_zxid: max,
        };
    }
    if min <= peer_last && peer_last <= max {
        return walk(peer_last, h.zxids, max).unwrap_or(snap);
    }
    if h.base_without_log == Some(peer_last) {
        // Only the tail is in memory and the learner stands exactly at its base: everything
        // listed follows what it has. ZooKeeper's committedLog would include that base.
        return SyncPlan {
            mode: SyncMode::Diff(max),
            send: h.zxids.to_vec(),
            queued_zxid: max,
        };
    }
    snap
}

/// `queueCommittedProposals` over the in-memory history. `None` means SNAP.
fn walk(peer_last: i64, zxids: &[i64], last_committed: i64) -> Option<SyncPlan> {
    let new_epoch_peer = counter_of(peer_last) == 0;
    let mut mode = None;
    let mut queued = peer_last;
    let mut prev = -1;
    let mut send = Vec::new();
    for &z in zxids {
        if z < peer_last {
            prev = z;
            continue;
        }
        if mode.is_none() {
            if z == peer_last {
                mode = Some(SyncMode::Diff(last_committed));
                continue;
            }
            if new_epoch_peer {
                mode = Some(SyncMode::Diff(last_committed));
            } else {
                // The learner has a txn we never committed; a TRUNC cannot cross epochs.
                if epoch_of(z) != epoch_of(peer_last) {
                    return None;
                }
                mode = Some(SyncMode::Trunc(prev));
            }
        }
        if z <= queued {
            continue;
        }
        send.push(z);
        queued = z;
    }
    if mode.is_none() && new_epoch_peer {
        mode = Some(SyncMode::Diff(last_committed));
    }
    Some(SyncPlan {
        mode: mode?,
        send,
        queued_zxid: queued,
    })
}

#[cfg(test)]
mod tests {
    //! The §4.6 decision table, one case per rule, with the zxids of the reference examples.

    use super::*;

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
        let p = plan_sync(0x1_0000_0002, hist(&E1));
        assert_eq!(p.mode, SyncMode::Diff(0x1_0000_0006));
        assert_eq!(p.send, E1[2..].to_vec());
        assert_eq!(p.queued_zxid, 0x1_0000_0006);
    }

    #[test]
    fn peer_equal_to_last_processed_gets_empty_diff() {
        let p = plan_sync(0x1_0000_0006, hist(&E1));
        assert_eq!(p.mode, SyncMode::Diff(0x1_0000_0006));
        assert!(p.send.is_empty());
    }

    #[test]
    fn peer_ahead_gets_trunc_to_max() {
        let p = plan_sync(0x1_0000_0008, hist(&E1));
        assert_eq!(p.mode, SyncMode::Trunc(0x1_0000_0006));
        assert!(p.send.is_empty());
        assert_eq!(p.queued_zxid, 0x1_0000_0006);
    }

    #[test]
    fn peer_with_unknown_txn_in_same_epoch_gets_trunc_to_previous() {
        // Leader history skips 0x…04 (the old leader proposed it, nobody committed it).
        let h = [0x1_0000_0001, 0x1_0000_0002, 0x1_0000_0003, 0x2_0000_0001];
        let p = plan_sync(0x1_0000_0004, hist(&h));
        // 0x200000001 follows in another epoch: no TRUNC across epochs, SNAP instead.
        assert_eq!(p.mode, SyncMode::Snap);
        let h = [0x1_0000_0001, 0x1_0000_0002, 0x1_0000_0003, 0x1_0000_0005];
        let p = plan_sync(0x1_0000_0004, hist(&h));
        assert_eq!(p.mode, SyncMode::Trunc(0x1_0000_0003));
        assert_eq!(p.send, vec![0x1_0000_0005]);
    }

    #[test]
    fn new_epoch_peer_gets_diff_even_when_ahead() {
        let p = plan_sync(0x2_0000_0000, hist(&E1));
        // Above max but a new-epoch zxid: not rule 3; not in range; SNAP (ZooKeeper's
        // "unhandled scenario" ends in a snapshot too).
        assert_eq!(p.mode, SyncMode::Snap);
        let h = [0x1_0000_0001, 0x1_0000_0002, 0x2_0000_0001, 0x2_0000_0002];
        let p = plan_sync(0x2_0000_0000, hist(&h));
        assert_eq!(p.mode, SyncMode::Diff(0x2_0000_0002));
        assert_eq!(p.send, vec![0x2_0000_0001, 0x2_0000_0002]);
    }

    #[test]
    fn peer_behind_the_log_gets_snap() {
        let p = plan_sync(0x0, hist(&E1[2..]));
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
        assert_eq!(
            plan_sync(0x1_0000_0004, h).mode,
            SyncMode::Diff(0x1_0000_0004)
        );
        assert_eq!(
            plan_sync(0x1_0000_0007, h).mode,
            SyncMode::Trunc(0x1_0000_0004)
        );
        assert_eq!(plan_sync(0x1_0000_0002, h).mode, SyncMode::Snap);
    }

    #[test]
    fn tail_only_history_diffs_a_peer_at_its_base() {
        let tail = [0x1_0000_0005, 0x1_0000_0006];
        let h = History {
            zxids: &tail,
            last_processed: 0x1_0000_0006,
            base_without_log: Some(0x1_0000_0004),
        };
        let p = plan_sync(0x1_0000_0004, h);
        assert_eq!(p.mode, SyncMode::Diff(0x1_0000_0006));
        assert_eq!(p.send, tail.to_vec());
    }
}
