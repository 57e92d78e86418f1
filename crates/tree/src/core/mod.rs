//! The standalone server as a sans-IO state machine. The glue feeds it connection events,
//! decoded requests and ticks, each with the time; it answers with an ordered queue of outputs
//! (frames to send, connections to close, txns to persist). Output order is the contract: a
//! watch notification is queued before the reply of the txn that fired it, and a reply that
//! follows an `Append` must not be sent before that txn is durable.
//!
//! One `Core`, its `impl` split by concern: `conn` (connections and the ConnectRequest),
//! `session` (touches, revalidation, expiry, the reaper), `request` (routing a request, the
//! per-session queue, `submit`), `prepare` (request -> txn), `apply` (txn -> tree, watches,
//! replies), `read` (reads answered from the tree) and `role` (serving, leader or learner).

use std::collections::{HashMap, VecDeque};

use corral_proto::jute::{Jute, WriteJute};
use corral_proto::records::*;
use corral_proto::request::*;
use corral_proto::txn::*;

use crate::acl::AclPolicy;
use crate::prep::Outstanding;
use crate::session::SessionTable;
use crate::tree::DataTree;
use crate::watch::{ConnId, WatchManager};

mod apply;
pub mod audit;
mod conn;
mod prepare;
mod read;
mod request;
mod role;
mod session;

pub use prepare::Work;
pub use request::{is_write_op, op_name};

/// Settings the core needs (the glue derives them from zoo.cfg and -D properties).
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub server_id: u8,
    pub tick_ms: u32,
    pub session_timeout_ms_min: u32,
    pub session_timeout_ms_max: u32,
    pub acl: AclPolicy,
    pub extended_types: bool,
    /// `zookeeper.enforceQuota`: creates and setData over a hard quota get QuotaExceeded.
    pub enforce_quota: bool,
    pub reconfig_enabled: bool,
    pub close_session_txn_enabled: bool,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u32,
    pub container_max_never_used_interval_ms: u64,
    /// `audit.enable`: audit lines are logged, with this as the server's own user (ZooKeeper's
    /// login user: the process's user name).
    pub audit_user: Option<String>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            server_id: 1,
            tick_ms: 2000,
            session_timeout_ms_min: 4000,
            session_timeout_ms_max: 40000,
            acl: AclPolicy::default(),
            extended_types: false,
            enforce_quota: false,
            reconfig_enabled: false,
            close_session_txn_enabled: true,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            container_max_never_used_interval_ms: 0,
            audit_user: None,
        }
    }
}

/// The two clocks the core uses: monotonic for session expiry, wall for txn times.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono_ms: u64,
    pub wall_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write this frame to the connection.
    Send { conn: ConnId, frame: Vec<u8> },
    /// Close the connection once everything queued for it before has been written.
    Close { conn: ConnId },
    /// Standalone: a txn was applied; storage persists it. Later `Send`s wait until it is
    /// durable.
    Append(Txn),
    /// Ensemble: a write (or sync) for the ZAB peer, to forward to the leader or, on the
    /// leader, to prepare (`prepare_submitted`). It comes back through `apply_committed`.
    Submit(Submitted),
    /// Ensemble, learner: a client resumed this session here; ask the leader whether it is
    /// alive and answer through `handle_revalidated`.
    Revalidate { session: i64, timeout: i32 },
}

/// A write as it travels to the leader (the data of a REQUEST packet, §4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub session: i64,
    pub cxid: i32,
    pub op_type: i32,
    pub body: Vec<u8>,
    /// The client connection's auth ids; `None` for server-made requests.
    pub auth: Option<Vec<Id>>,
    /// Leader: the learner connection the request came through (`None`: a client of the
    /// leader itself, or a server-made request). See [`Core::prepare_submitted`].
    pub owner: Option<u64>,
}

/// How this core takes part: alone, or as the leader or a learner of an ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Standalone,
    Leader,
    Learner,
}

/// A request of a session waiting for its turn: requests of one session complete in the
/// order they were sent, so reads wait behind earlier writes (ZooKeeper's CommitProcessor).
#[derive(Debug)]
enum Pending {
    Connect {
        conn: ConnId,
        timeout: u32,
        read_only: Option<bool>,
    },
    Write {
        conn: ConnId,
        xid: i32,
        op: i32,
        /// Its audit facts, with `audit.enable`.
        audit: Option<Box<audit::AuditReq>>,
    },
    Read {
        conn: ConnId,
        xid: i32,
        req: Request,
    },
    Sync {
        conn: ConnId,
        xid: i32,
        path: String,
    },
}

/// Per-connection state the core keeps.
#[derive(Debug)]
pub struct ConnInfo {
    pub session: i64,
    pub remote_ip: String,
    pub auth: Vec<Id>,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_op: &'static str,
    /// The core asked for this connection to be closed; later requests are ignored.
    pub closing: bool,
    /// A SASL exchange under way or over.
    pub sasl: Option<ConnSasl>,
}

/// A connection's SASL exchange: DIGEST-MD5 in the core, or another mechanism's.
#[derive(Debug)]
pub enum ConnSasl {
    Digest(crate::sasl::DigestMd5),
    Other(Box<dyn crate::sasl::SaslExchange>),
}

pub struct Core {
    cfg: CoreConfig,
    tree: DataTree,
    data_watches: WatchManager,
    child_watches: WatchManager,
    sessions: SessionTable,
    conns: HashMap<ConnId, ConnInfo>,
    session_conn: HashMap<i64, ConnId>,
    out: VecDeque<Output>,
    last_container_check_ms: u64,
    /// TTL nodes: the monotonic time this core last applied a create or setData to each one.
    /// A TTL node is reaped only once its TTL has passed on this clock too, so a wall clock that
    /// jumps forward (or runs ahead of the member that set the node's mtime) never reaps early.
    ttl_touched_ms: HashMap<String, u64>,
    /// Nodes loaded with the tree were last seen changing no later than this (monotonic ms).
    ttl_base_ms: u64,
    role: Role,
    /// Prepared but not yet applied changes (standalone: always empty between events).
    outstanding: Outstanding,
    pending: HashMap<i64, VecDeque<Pending>>,
    /// Sessions with a forwarded sync, oldest first.
    syncs: VecDeque<i64>,
    /// Learner: resumes waiting for the leader's REVALIDATE answer.
    revalidating: HashMap<i64, (ConnId, u32, Option<bool>)>,
    /// Leader: the server each session's client is connected through (`None`: this one), as
    /// ZooKeeper's session owner; requests from a former owner fail with SessionMoved.
    owners: HashMap<i64, Option<u64>>,
    /// Learner: sessions touched since the last PING, with their timeouts.
    touched: HashMap<i64, i32>,
    /// Ensemble: false while the peer is not synced with a leader; connections and requests
    /// are then refused (always true standalone).
    serving: bool,
    /// SASL exchanges begun, for distinct nonces.
    sasl_nonces: u64,
    /// Figures for the server's metrics since the last [`Core::take_tally`].
    tally: Tally,
}

/// Entries each list of a [`Tally`] keeps between takes: a core nobody asks (the
/// simulation) stays small.
pub const TALLY_KEPT: usize = 65_536;

/// What the core counts for the server's metrics as it happens, taken with
/// [`Core::take_tally`].
#[derive(Debug, Default)]
pub struct Tally {
    /// Watch triggers that found watchers: (event type, watchers), per watch table (ZooKeeper's
    /// `node_created/deleted/changed/children_watch_count`).
    pub watchers_fired: Vec<(i32, usize)>,
    /// Requests refused with QuotaExceeded, by top-level namespace.
    pub quota_refused: Vec<String>,
    /// Sessions expired (`stale_sessions_expired`).
    pub sessions_expired: u64,
    /// Writes applied, by top-level namespace: (namespace, path and data bytes).
    pub writes: Vec<(String, i64)>,
}

impl Tally {
    fn note_fired(&mut self, event: i32, watchers: usize) {
        if watchers > 0 && self.watchers_fired.len() < TALLY_KEPT {
            self.watchers_fired.push((event, watchers));
        }
    }

    fn note_quota_refused(&mut self, namespaces: Vec<String>) {
        let room = TALLY_KEPT.saturating_sub(self.quota_refused.len());
        self.quota_refused.extend(namespaces.into_iter().take(room));
    }
}

fn body<T: Jute>(r: &T) -> Vec<u8> {
    r.to_bytes()
}

/// A reply frame to be filled in place: room for the length, then the reply header (err 0).
fn frame_start(xid: i32, zxid: i64) -> Vec<u8> {
    let mut f = Vec::with_capacity(256);
    f.put_i32(0);
    ReplyHeader { xid, zxid, err: 0 }.write(&mut f);
    f
}

/// Set the length of a frame begun with `frame_start`.
fn frame_end(mut f: Vec<u8>) -> Vec<u8> {
    let len = (f.len() - 4) as i32;
    f[..4].copy_from_slice(&len.to_be_bytes());
    f
}

impl Core {
    pub fn new(cfg: CoreConfig, now: Now) -> Core {
        Core::with_tree(cfg, now, DataTree::new())
    }

    /// Start from a loaded tree.
    pub fn with_tree(cfg: CoreConfig, now: Now, tree: DataTree) -> Core {
        Core::with_state(cfg, now, tree, &[])
    }

    /// Start from a restored tree and session table; restored sessions expire after their
    /// timeout from now unless their clients come back (as after a ZooKeeper restart).
    pub fn with_state(cfg: CoreConfig, now: Now, tree: DataTree, restored: &[(i64, i32)]) -> Core {
        let mut sessions = SessionTable::new(cfg.server_id, cfg.tick_ms, now.mono_ms);
        for &(id, timeout) in restored {
            sessions.add(id, timeout.max(0) as u32, now.mono_ms);
        }
        Core {
            cfg,
            tree,
            data_watches: WatchManager::default(),
            child_watches: WatchManager::default(),
            sessions,
            conns: HashMap::new(),
            session_conn: HashMap::new(),
            out: VecDeque::new(),
            last_container_check_ms: now.mono_ms,
            ttl_touched_ms: HashMap::new(),
            ttl_base_ms: now.mono_ms,
            role: Role::Standalone,
            outstanding: Outstanding::default(),
            pending: HashMap::new(),
            syncs: VecDeque::new(),
            revalidating: HashMap::new(),
            owners: HashMap::new(),
            touched: HashMap::new(),
            serving: true,
            sasl_nonces: 0,
            tally: Tally::default(),
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// The figures counted since the last call.
    pub fn take_tally(&mut self) -> Tally {
        let mut t = std::mem::take(&mut self.tally);
        t.writes = self.tree.take_write_stats();
        t
    }

    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    pub fn data_watches(&self) -> &WatchManager {
        &self.data_watches
    }

    pub fn child_watches(&self) -> &WatchManager {
        &self.child_watches
    }

    pub fn conn(&self, conn: ConnId) -> Option<&ConnInfo> {
        self.conns.get(&conn)
    }

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    pub fn last_zxid(&self) -> i64 {
        self.tree.last_processed_zxid()
    }

    /// When the core next needs `handle_tick`. A learner never expires sessions nor reaps
    /// containers (the leader does), so it needs no tick: waking it for a session whose expiry
    /// time has passed would spin (sim note, seed 1).
    pub fn next_wakeup_ms(&self) -> u64 {
        if self.role == Role::Learner {
            return u64::MAX;
        }
        let c = self.last_container_check_ms + self.cfg.container_check_interval_ms;
        self.sessions.next_expiry_ms().map_or(c, |s| s.min(c))
    }

    fn send(&mut self, conn: ConnId, frame: Vec<u8>) {
        self.out.push_back(Output::Send { conn, frame });
    }

    fn reply(&mut self, conn: ConnId, xid: i32, zxid: i64, err: i32, b: &[u8]) {
        self.send(conn, reply_frame(xid, zxid, err, b));
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closing = true;
        }
        self.out.push_back(Output::Close { conn });
    }
}
