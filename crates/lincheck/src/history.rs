//! The recorded history: what simulated clients sent and observed. Pure data, no logic.

/// A znode's Stat as the client saw it. `ctime`/`mtime` are carried but never checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

impl Stat {
    /// Equality on everything but the timestamps.
    pub fn same_as(&self, other: &Stat) -> bool {
        let a = Stat {
            ctime: 0,
            mtime: 0,
            ..*self
        };
        let b = Stat {
            ctime: 0,
            mtime: 0,
            ..*other
        };
        a == b
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreateMode {
    pub ephemeral: bool,
    pub sequential: bool,
    /// A container (createContainer): reaped by the server once it had a child and is empty.
    pub container: bool,
    /// A TTL node (createTTL) with this TTL in ms. When the server reaps it is not checked
    /// here (the history has no server clocks); that it is a TTL node without children is.
    pub ttl_ms: Option<i64>,
}

/// One ACL entry. The model knows no authenticated identities: only `world:anyone` entries
/// grant anything, and histories with other schemes are `Outcome::Invalid`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Acl {
    pub perms: i32,
    pub scheme: String,
    pub id: String,
}

impl Acl {
    pub fn world(perms: i32) -> Acl {
        Acl {
            perms,
            scheme: "world".into(),
            id: "anyone".into(),
        }
    }

    /// `world:anyone` with every permission, the ACL most clients create with.
    pub fn open() -> Vec<Acl> {
        vec![Acl::world(perms::ALL)]
    }
}

/// Permission bits (ZooDefs.Perms).
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = 31;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddWatchMode {
    Persistent,
    PersistentRecursive,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Create {
        path: String,
        data: Vec<u8>,
        mode: CreateMode,
        acl: Vec<Acl>,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    Delete {
        path: String,
        version: i32,
    },
    /// `version` is checked against the node's aversion.
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    /// Only valid inside `Multi`.
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<Call>),
    GetData {
        path: String,
        watch: bool,
    },
    Exists {
        path: String,
        watch: bool,
    },
    GetChildren {
        path: String,
        watch: bool,
    },
    GetAcl {
        path: String,
    },
    Sync {
        path: String,
    },
    CloseSession,
    AddWatch {
        path: String,
        mode: AddWatchMode,
    },
}

impl Call {
    /// True for calls that ZooKeeper turns into a txn (and so a zxid).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Call::Create { .. }
                | Call::SetData { .. }
                | Call::Delete { .. }
                | Call::SetAcl { .. }
                | Call::Check { .. }
                | Call::Multi(_)
                | Call::CloseSession
        )
    }

    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Call::GetData { .. }
                | Call::Exists { .. }
                | Call::GetChildren { .. }
                | Call::GetAcl { .. }
        )
    }
}

/// A result as the client decoded it. Multi sub-results use the same type; a failed multi is
/// `Multi` whose items are `Err(0)` before the failing op, `Err(code)` for it and `Err(-2)`
/// (RuntimeInconsistency) after it, as ZooKeeper 3.8's `DataTree.processTxn` builds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Res {
    Err(i32),
    /// `stat` is `None` when the client used plain create (no Stat in the reply); then only the
    /// path is checked.
    Created {
        path: String,
        stat: Option<Stat>,
    },
    Stat(Stat),
    Deleted,
    /// A successful `Check` inside a multi.
    Checked,
    Data {
        data: Vec<u8>,
        stat: Stat,
    },
    Exists(Option<Stat>),
    /// getACL: the node's ACL (in order) and Stat.
    Acl {
        acl: Vec<Acl>,
        stat: Stat,
    },
    /// Order is not significant.
    Children(Vec<String>),
    Synced,
    Multi(Vec<Res>),
    Closed,
    WatchAdded,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// The connection was lost before the reply: the op may or may not have taken effect.
    Unknown,
    /// The reply: header zxid and decoded result.
    Done { zxid: i64, result: Res },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub session: i64,
    /// Simulated ms when the client sent the request.
    pub invoke: u64,
    /// Simulated ms when the reply arrived; `None` iff `ret` is `Unknown`.
    pub complete: Option<u64>,
    pub call: Call,
    pub ret: Ret,
}

impl Op {
    pub fn zxid(&self) -> Option<i64> {
        match self.ret {
            Ret::Done { zxid, .. } => Some(zxid),
            Ret::Unknown => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    NodeCreated,
    NodeDeleted,
    NodeDataChanged,
    NodeChildrenChanged,
}

/// One item a session's client received, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// The reply to `History::ops[index]`.
    Reply(usize),
    Event {
        kind: EventKind,
        path: String,
    },
    /// The client lost its connection and re-established the same session (re-registering its
    /// watches with SetWatches).
    Reconnected,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    pub id: i64,
    /// The session expired (its SessionClosed system write should be in the history).
    pub expired: bool,
    pub stream: Vec<Received>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemWhat {
    /// Session expiry: the session's ephemerals are deleted.
    SessionClosed { session: i64 },
    /// A server-issued delete (TTL or container reaping).
    Deleted { path: String },
}

/// A committed txn that no client issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemWrite {
    pub zxid: i64,
    pub what: SystemWhat,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub ops: Vec<Op>,
    /// Per-session streams. A session with ops but no entry here gets no watch checks and its
    /// per-session order is taken from invoke times.
    pub sessions: Vec<Session>,
    pub system_writes: Vec<SystemWrite>,
    /// Every committed zxid, when the caller knows them. Then each must be explained by exactly
    /// one known, unknown or system write, and unknown writes may only sit at these zxids.
    pub committed_zxids: Option<Vec<i64>>,
    /// Where the servers' committed log put writes whose reply was lost, when the caller knows
    /// (op index, zxid). Such a write must sit exactly there, and that zxid must lie within the
    /// window real time and its session's order allow (else the servers broke an order the
    /// client relies on); it then costs the search nothing. Lost writes not listed are searched.
    pub lost_write_zxids: Vec<(usize, i64)>,
    /// `lost_write_zxids` lists every lost write that took effect: the others changed nothing
    /// (never committed, or committed as a failure) and are not searched.
    pub lost_writes_complete: bool,
    /// Persistent nodes that exist at zxid 0 with all-zero stats (e.g. `/zookeeper`), created
    /// in this order (parents first). The root `/` always exists.
    pub initial: Vec<(String, Vec<u8>)>,
    /// The caller checks watch notifications itself (the simulation does, per connection,
    /// against the committed txns and ZooKeeper's SetWatches rules); then watch registrations
    /// and events are not checked here, only the data.
    pub watches_checked_elsewhere: bool,
}
