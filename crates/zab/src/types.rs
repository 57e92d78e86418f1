//! The ZAB peer's interface with its glue (a tokio server or the deterministic simulator): the
//! static config, the durable state read at startup, and the inputs and outputs of
//! [`crate::peer::Peer`]. Plain data; no behaviour beyond small constructors.

use corral_proto::quorum::{
    ForwardedRequest, Notification, QuorumConfig, QuorumPacket, ServerState,
};
use corral_proto::records::Id;
use corral_proto::{Epoch, ServerId, SessionId, Zxid};

/// A learner connection on the leader's quorum port. The glue picks the number; the peer only
/// compares them.
pub type ConnId = u64;

/// Static inputs of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub my_sid: ServerId,
    /// Every member of the ensemble: `(sid, observer)`. Voters are the non-observers.
    pub members: Vec<(ServerId, bool)>,
    /// `tickTime`.
    pub tick_ms: u64,
    /// `initLimit`: ticks allowed for discovery and synchronisation.
    pub init_limit: u32,
    /// `syncLimit`: ticks a peer may stay silent once synced.
    pub sync_limit: u32,
    /// Config string (§4.1) sent in notifications and NEWLEADER.
    pub config: Vec<u8>,
    /// `zookeeper.commitLogCount`: committed txns kept in memory for DIFF (500).
    pub commit_log_count: usize,
    /// `zookeeper.snapshotSizeFactor` ≥ 0 (`ZKDatabase.isTxnLogSyncEnabled`, on by default):
    /// a learner behind the committed log may be sent older txns from the on-disk log
    /// ([`Output::ReadLog`]) instead of a snapshot. The size limit is the glue's.
    pub txn_log_sync: bool,
    /// `reconfigEnabled`: the first leader of a static config (version 0) gives it a version
    /// (see [`Output::ConfigChanged`]); without it the config never changes.
    pub reconfig_enabled: bool,
}

impl PeerConfig {
    pub fn voters(&self) -> Vec<ServerId> {
        self.members
            .iter()
            .filter(|(_, observer)| !observer)
            .map(|(sid, _)| *sid)
            .collect()
    }

    pub fn is_member(&self, sid: ServerId) -> bool {
        self.members.iter().any(|(s, _)| *s == sid)
    }

    pub fn is_voter(&self, sid: ServerId) -> bool {
        self.members.iter().any(|(s, obs)| *s == sid && !obs)
    }

    pub fn is_observer(&self) -> bool {
        !self.is_voter(self.my_sid)
    }

    /// `version=<hex>` at the end of the config string; 0 when absent or unreadable.
    pub fn config_version(&self) -> i64 {
        QuorumConfig::version_in(&self.config)
    }
}

/// Logged txns as the peer's inputs carry them, turned into the bare `(zxid, bytes)` pairs
/// the peer's logs keep.
pub(crate) fn bare_log(log: Vec<(Zxid, Vec<u8>)>) -> impl Iterator<Item = (i64, Vec<u8>)> {
    log.into_iter().map(|(z, t)| (z.0, t))
}

/// What the glue read from disk at startup (or what survives in memory across roles).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Durable {
    /// Last zxid in the txn log (or the snapshot if the log is empty).
    pub last_zxid: Zxid,
    /// Last zxid the data tree reflects.
    pub last_applied_zxid: Zxid,
    pub accepted_epoch: Epoch,
    pub current_epoch: Epoch,
    /// The most recent committed txns, oldest first, ending at `last_applied_zxid`; the leader
    /// answers DIFF from them (ZooKeeper's `committedLog`).
    pub committed_log: Vec<(Zxid, Vec<u8>)>,
    /// Logged txns after `last_applied_zxid`, oldest first, whose commit the peer has not seen.
    /// A glue that replays the whole log into the tree at startup (as ZooKeeper's
    /// `ZKDatabase.loadDataBase` does) passes it empty with `last_applied_zxid == last_zxid`.
    /// Extension of the brief's API so a simulator can keep "applied" equal to "committed".
    pub log_tail: Vec<(Zxid, Vec<u8>)>,
}

/// Everything the glue hands to the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A decoded election notification.
    Election {
        from: ServerId,
        n: Notification,
    },
    /// An election connection to `sid` came up (resend the last notification).
    ElectionPeerConnected {
        sid: ServerId,
    },
    // Leader side: learners on our quorum port.
    LearnerConnected {
        conn: ConnId,
    },
    LearnerPacket {
        conn: ConnId,
        p: QuorumPacket,
    },
    LearnerClosed {
        conn: ConnId,
    },
    // Learner side: our connection to the leader (dialled after `Output::ConnectToLeader`).
    LeaderConnected,
    LeaderPacket(QuorumPacket),
    /// The SNAP payload the glue read off the stream right after a SNAP packet.
    LeaderSnapshot {
        zxid: Zxid,
        blob: Vec<u8>,
    },
    LeaderClosed,
    /// Every `Append` up to and including `zxid` is durable. Never covers an `Append` issued
    /// before a later `Truncate` or `LoadSnapshot` (those are synchronous and durable).
    Synced {
        zxid: Zxid,
    },
    /// A local client write / sync / createSession / closeSession: forwarded to the leader, or
    /// prepared on the leader.
    Submit(ForwardedRequest, Option<Vec<Id>>),
    /// The glue's answer to `Output::Prepare`: the txn bytes at the zxid the peer assigned.
    Prepared {
        txn: Vec<u8>,
        zxid: Zxid,
    },
    /// A client resumed a session here; ask the leader (the leader answers through
    /// `Output::CheckSession`).
    Revalidate {
        session_id: SessionId,
        timeout: i32,
    },
    /// The glue's answer to `Output::CheckSession`.
    SessionChecked {
        conn: Option<ConnId>,
        session_id: SessionId,
        valid: bool,
    },
    /// Learner: sessions touched since the last ping, the answer to `Output::CollectTouches`.
    Touches(Vec<(SessionId, i32)>),
    /// Leader: the answer to `Output::ReadLog` for learner `conn`: the logged txns from the
    /// last one at or before `from_zxid` through at least `to_zxid` (as far as the log goes),
    /// oldest first; `None` when no log file reaches back to `from_zxid` or the log to read is
    /// over the size limit (ZooKeeper's `getProposalsFromTxnLog` returning nothing).
    LogRead {
        conn: ConnId,
        txns: Option<Vec<(Zxid, Vec<u8>)>>,
    },
    /// Learner, right after executing `Output::Truncate { zxid }` (before any other input):
    /// the reload of snapshot + log ended at `last_zxid`, *below* `zxid` (no snapshot at or
    /// below `zxid` is followed by log up to it: e.g. the snapshot was the leader's SNAP above
    /// `zxid`, which the truncation deleted, and the log before it was dropped). The tree now
    /// reflects `last_zxid`, the log holds nothing after it, and `committed_log` holds the
    /// last txns replayed (oldest first, ending at `last_zxid`, as in [`Durable`]).
    ///
    /// The peer takes this as its durable state and abandons the leader (back to LOOKING): it
    /// is not at `zxid` as the leader assumes, so it registers again reporting `last_zxid`,
    /// and the leader picks DIFF or SNAP for that. Not sent when the reload reaches `zxid`,
    /// nor after a `Truncate` that needed no reload.
    Reloaded {
        last_zxid: Zxid,
        committed_log: Vec<(Zxid, Vec<u8>)>,
    },
}

/// Everything the peer asks the glue to do, in the order it must be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    ElectionSend {
        to: ServerId,
        n: Notification,
    },
    /// Dial the leader's quorum port; answer with `LeaderConnected` or `LeaderClosed`.
    ConnectToLeader {
        sid: ServerId,
    },
    CloseLeader,
    SendLeader(QuorumPacket),
    SendLearner {
        conn: ConnId,
        p: QuorumPacket,
    },
    /// Write a SNAP packet with the applied zxid, then the serialized tree and sessions at the
    /// current applied state, in stream order with the packets around it.
    SendSnapshot {
        conn: ConnId,
    },
    CloseLearner {
        conn: ConnId,
    },
    /// Persist before feeding further input (synchronous).
    WriteAcceptedEpoch(Epoch),
    WriteCurrentEpoch(Epoch),
    /// Log the txn; report `Input::Synced` once durable.
    Append {
        zxid: Zxid,
        txn: Vec<u8>,
    },
    /// Learner: cut the log after `zxid`, drop the snapshots above it and make what remains
    /// durable. If the tree reflects a zxid above `zxid`, rebuild it from snapshot + log up
    /// to `zxid`; if that rebuild ends below `zxid`, answer `Input::Reloaded` at once.
    /// Synchronous.
    Truncate {
        zxid: Zxid,
    },
    /// Learner: replace tree and sessions by the leader's SNAP payload, drop the old log and
    /// make the new state durable (a snapshot at `zxid`). Synchronous.
    LoadSnapshot {
        zxid: Zxid,
        blob: Vec<u8>,
    },
    /// Apply to the tree; zxids strictly increase.
    Commit {
        zxid: Zxid,
        txn: Vec<u8>,
    },
    /// Leader: learner `conn` is behind the in-memory committed log (reference §4.6 rule 5):
    /// read the on-disk txn log from `from_zxid` to `to_zxid` within the size limit
    /// (`zookeeper.snapshotSizeFactor` × the latest snapshot's size) and answer
    /// `Input::LogRead`. Until then nothing is sent to that learner; its sync stream and
    /// forwarding start with the answer.
    ReadLog {
        conn: ConnId,
        from_zxid: Zxid,
        to_zxid: Zxid,
    },
    /// Leader: turn the request into a txn at this zxid; answer `Input::Prepared`.
    Prepare {
        zxid: Zxid,
        req: ForwardedRequest,
        auth: Option<Vec<Id>>,
        /// The learner connection it came through; `None`: a client of the leader itself. The
        /// session's owner (`SessionTracker.checkSession(id, owner)`).
        origin: Option<ConnId>,
    },
    /// Learner: the head of the pending sync queue may complete (leader: also local syncs).
    SyncDone,
    /// Learner: answer with `Input::Touches`.
    CollectTouches,
    /// Leader: sessions learners reported as touched.
    TouchSessions(Vec<(SessionId, i32)>),
    /// Leader: is this session live? Answer with `Input::SessionChecked`.
    CheckSession {
        conn: Option<ConnId>,
        session_id: SessionId,
        timeout: i32,
    },
    /// To the local connection that resumed the session.
    SessionRevalidated {
        session_id: SessionId,
        valid: bool,
    },
    RoleChanged {
        state: ServerState,
        leader: Option<ServerId>,
        epoch: Epoch,
    },
    /// The client port serves only between these two.
    StartServing,
    StopServing,
    /// The committed config string changed (ZooKeeper: `QuorumPeer.processReconfig` →
    /// `setQuorumVerifier(qv, true)`): show it in `/zookeeper/config` and persist it
    /// (`zoo.cfg.dynamic.<hex version>`, zoo.cfg pointing at it). Only with
    /// `reconfig_enabled`; today only the version of a static config changes (0 → the first
    /// established epoch << 32), never the membership.
    ConfigChanged {
        config: Vec<u8>,
    },
}
