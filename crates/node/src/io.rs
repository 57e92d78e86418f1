//! What goes into a node and what comes out of it.

use corral_proto::quorum::{Notification, QuorumPacket, ServerState};
use corral_proto::request::{Connect, Request};
use corral_proto::{Epoch, ServerId};
use corral_tree::ConnId;

/// Learner connections on the leader's quorum port, numbered by the glue.
pub type LearnerConn = u64;

/// Something that happened outside the node, in the order it happened.
#[derive(Debug)]
pub enum Event {
    /// A client connection was accepted from `addr` (its IP, for the ip ACL scheme).
    ClientOpen {
        conn: ConnId,
        addr: String,
        /// For a TLS connection with a client certificate: its subject (RFC 2253).
        x509: Option<String>,
    },
    /// Its first frame, the ConnectRequest.
    ClientConnect {
        conn: ConnId,
        connect: Connect,
    },
    ClientRequest {
        conn: ConnId,
        xid: i32,
        req: Request,
    },
    /// A request whose body did not decode: answered with MarshallingError.
    ClientMalformed {
        conn: ConnId,
        xid: i32,
        op_type: i32,
    },
    /// A request of an unknown type: answered with Unimplemented, then the connection closes.
    ClientUnimplemented {
        conn: ConnId,
        xid: i32,
    },
    ClientClosed {
        conn: ConnId,
    },
    /// An election connection to `sid` is up (either side dialled).
    ElectionConnected {
        sid: ServerId,
    },
    Election {
        from: ServerId,
        n: Notification,
    },
    /// A learner connected to our quorum port.
    LearnerConnected {
        conn: LearnerConn,
    },
    LearnerPacket {
        conn: LearnerConn,
        p: QuorumPacket,
    },
    LearnerClosed {
        conn: LearnerConn,
    },
    /// The connection asked for by [`Action::ConnectToLeader`] is up.
    LeaderConnected,
    LeaderPacket(QuorumPacket),
    /// The payload that follows a SNAP packet (reference §4.7).
    LeaderSnapshot {
        zxid: i64,
        blob: Vec<u8>,
    },
    /// The connection to the leader failed or closed.
    LeaderClosed,
    /// The [`Action::WriteSnapshot`] finished.
    SnapshotWritten {
        result: Result<(), String>,
    },
    /// The [`Action::Purge`] finished: how many files it removed.
    PurgeDone {
        result: Result<usize, String>,
    },
}

/// What the node asks its driver to do, in order.
#[derive(Debug)]
pub enum Action {
    /// Bytes for a client connection (a reply or a watch event frame).
    Send {
        conn: ConnId,
        frame: Vec<u8>,
    },
    /// Close a client connection after what was sent before.
    Close {
        conn: ConnId,
    },
    /// An election notification for `to`; dial it when not connected.
    ElectionSend {
        to: ServerId,
        n: Notification,
    },
    /// Connect to the leader's quorum port (closing any earlier leader connection).
    ConnectToLeader {
        sid: ServerId,
    },
    CloseLeader,
    SendLeader(QuorumPacket),
    SendLearner {
        conn: LearnerConn,
        p: QuorumPacket,
    },
    /// A SNAP packet at `zxid` followed by `blob` (a snapshot stream).
    SendSnapshot {
        conn: LearnerConn,
        zxid: i64,
        blob: Vec<u8>,
    },
    CloseLearner {
        conn: LearnerConn,
    },
    /// Make the appended txns durable, then call [`crate::Node::handle_sync`]. Replies that
    /// depend on them are held inside the node until then.
    Sync,
    /// Write this serialized snapshot (`snapshot.<zxid>`, compressed as configured)
    /// atomically, off the node's thread if you like, then report
    /// [`Event::SnapshotWritten`]. At most one job (this or a purge) is out at a time.
    WriteSnapshot {
        zxid: i64,
        raw: Vec<u8>,
        nodes: usize,
    },
    /// autopurge: remove old snapshots and logs keeping `retain` snapshots, then report
    /// [`Event::PurgeDone`].
    Purge {
        retain: usize,
    },
    /// The committed ensemble config changed: persist it next to zoo.cfg (the dynamic file).
    PersistConfig {
        text: String,
        version: i64,
    },
    RoleChanged {
        state: ServerState,
        leader: Option<ServerId>,
        epoch: Epoch,
    },
    /// Clients are served from here on (at `zxid`).
    StartServing {
        zxid: i64,
    },
    /// Clients are not served until synced with a leader; `closed` connections were closed.
    StopServing {
        closed: usize,
    },
    /// What happened inside, for a checker (only with `NodeConfig::observe`).
    Observed(Observation),
    /// Storage failed in a way that makes acknowledging anything more unsafe: the node has
    /// stopped; the driver must stop the process (ZooKeeper exits too).
    Fatal {
        what: String,
    },
}

/// Inside events a checker (the simulation) follows to know which txns a node's state reflects
/// without reading its files: with them it rebuilds a restarted node's history from the
/// snapshot it loaded and the log entries after it. Emitted only with `NodeConfig::observe`.
#[derive(Debug, Clone)]
pub enum Observation {
    /// A txn went into the log (not yet durable).
    Appended { zxid: i64, txn: Vec<u8> },
    /// Logged txns after `zxid` were dropped (TRUNC, or before a leader's SNAP is loaded).
    Truncated { zxid: i64 },
    /// The state was (re)loaded from disk: the snapshot at `snapshot_zxid` (`None`: none)
    /// and the logged txns after it, up to `last_zxid`.
    Loaded {
        snapshot_zxid: Option<i64>,
        last_zxid: i64,
    },
    /// A snapshot of the current state at `zxid` began (fuzzy: it is named `zxid` and the log
    /// after it completes it). It may never reach the disk.
    SnapshotStarted { zxid: i64 },
    /// A committed txn was applied; the tree digest after it.
    Committed {
        zxid: i64,
        txn: Vec<u8>,
        digest: u64,
    },
    /// The leader's SNAP at `zxid` replaced the state, and a snapshot of it was written.
    SnapLoaded { zxid: i64, digest: u64 },
}
