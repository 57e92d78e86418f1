//! Client protocol records (`zookeeper.jute`, modules `org.apache.zookeeper.data` and `.proto`),
//! field for field in IDL order. Layouts: reference §2.5.

use crate::record;

/// A nullable jute `buffer` (znode data, passwords, tokens).
pub type Data = Option<Vec<u8>>;

record! {
    /// An authenticated identity: `(scheme, id)`, e.g. `("digest", "bob:fyVm...")`.
    pub struct Id { pub scheme: String, pub id: String }
}

record! {
    /// One ACL entry: a permission bit set for an identity.
    pub struct Acl { pub perms: i32, pub id: Id }
}

impl Id {
    pub fn new(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.to_owned(),
            id: id.to_owned(),
        }
    }
}

impl Acl {
    pub fn new(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }
}

record! {
    /// A znode's stat as clients see it (68 bytes).
    pub struct Stat {
        pub czxid: i64, pub mzxid: i64, pub ctime: i64, pub mtime: i64,
        pub version: i32, pub cversion: i32, pub aversion: i32,
        pub ephemeral_owner: i64, pub data_length: i32, pub num_children: i32, pub pzxid: i64,
    }
}

record! {
    /// A znode's stat as stored in snapshots (60 bytes; no dataLength/numChildren).
    pub struct StatPersisted {
        pub czxid: i64, pub mzxid: i64, pub ctime: i64, pub mtime: i64,
        pub version: i32, pub cversion: i32, pub aversion: i32,
        pub ephemeral_owner: i64, pub pzxid: i64,
    }
}

record! {
    /// One identity in a whoAmI reply.
    pub struct ClientInfo { pub auth_scheme: String, pub user: String }
}

record! {
    /// The first frame of a connection (without the optional trailing `readOnly` byte).
    pub struct ConnectRequest {
        pub protocol_version: i32, pub last_zxid_seen: i64, pub time_out: i32,
        pub session_id: i64, pub passwd: Data,
    }
}

record! {
    pub struct ConnectResponse {
        pub protocol_version: i32, pub time_out: i32, pub session_id: i64, pub passwd: Data,
    }
}

record! { pub struct RequestHeader { pub xid: i32, pub r#type: i32 } }
record! { pub struct ReplyHeader { pub xid: i32, pub zxid: i64, pub err: i32 } }
record! { pub struct MultiHeader { pub r#type: i32, pub done: bool, pub err: i32 } }
record! { pub struct AuthPacket { pub r#type: i32, pub scheme: String, pub auth: Data } }
record! { pub struct WatcherEvent { pub r#type: i32, pub state: i32, pub path: String } }

record! {
    pub struct CreateRequest { pub path: String, pub data: Data, pub acl: Vec<Acl>, pub flags: i32 }
}
record! {
    pub struct CreateTtlRequest {
        pub path: String, pub data: Data, pub acl: Vec<Acl>, pub flags: i32, pub ttl: i64,
    }
}
record! { pub struct CreateResponse { pub path: String } }
record! { pub struct Create2Response { pub path: String, pub stat: Stat } }
record! { pub struct DeleteRequest { pub path: String, pub version: i32 } }
record! {
    /// Shared layout of ExistsRequest, GetDataRequest, GetChildrenRequest, GetChildren2Request.
    pub struct PathWatchRequest { pub path: String, pub watch: bool }
}
record! { pub struct StatResponse { pub stat: Stat } }
record! { pub struct GetDataResponse { pub data: Data, pub stat: Stat } }
record! { pub struct SetDataRequest { pub path: String, pub data: Data, pub version: i32 } }
record! {
    /// Shared layout of GetACLRequest, SyncRequest/Response, GetAllChildrenNumberRequest,
    /// GetEphemeralsRequest, CreateResponse.
    pub struct PathRequest { pub path: String }
}
record! { pub struct GetAclResponse { pub acl: Vec<Acl>, pub stat: Stat } }
record! { pub struct SetAclRequest { pub path: String, pub acl: Vec<Acl>, pub version: i32 } }
record! { pub struct GetChildrenResponse { pub children: Vec<String> } }
record! { pub struct GetChildren2Response { pub children: Vec<String>, pub stat: Stat } }
record! { pub struct GetAllChildrenNumberResponse { pub total_number: i32 } }
record! { pub struct CheckVersionRequest { pub path: String, pub version: i32 } }
record! {
    pub struct ReconfigRequest {
        pub joining_servers: Option<String>, pub leaving_servers: Option<String>,
        pub new_members: Option<String>, pub cur_config_id: i64,
    }
}
record! {
    /// Shared layout of CheckWatchesRequest and RemoveWatchesRequest.
    pub struct WatchesRequest { pub path: String, pub r#type: i32 }
}
record! { pub struct AddWatchRequest { pub path: String, pub mode: i32 } }
record! {
    pub struct SetWatches {
        pub relative_zxid: i64, pub data_watches: Vec<String>, pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}
record! {
    pub struct SetWatches2 {
        pub relative_zxid: i64, pub data_watches: Vec<String>, pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>, pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}
record! { pub struct ErrorResponse { pub err: i32 } }
record! { pub struct GetEphemeralsResponse { pub ephemerals: Vec<String> } }
record! { pub struct WhoAmIResponse { pub client_info: Vec<ClientInfo> } }
record! { pub struct SaslToken { pub token: Data } }

/// Nullable string support for records like ReconfigRequest.
impl crate::jute::Jute for Option<String> {
    fn write(&self, out: &mut Vec<u8>) {
        crate::jute::WriteJute::put_ustring(out, self.as_deref())
    }
    fn read(r: &mut crate::jute::Reader<'_>) -> Result<Self, crate::error::DecodeError> {
        r.read_ustring()
    }
}

/// Permission bits (`ZooDefs.Perms`).
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 1 << 1;
    pub const CREATE: i32 = 1 << 2;
    pub const DELETE: i32 = 1 << 3;
    pub const ADMIN: i32 = 1 << 4;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

/// Watch event types (`Watcher.Event.EventType`).
pub mod event_type {
    pub const NONE: i32 = -1;
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
}

/// Keeper states (`Watcher.Event.KeeperState`) that a server sends.
pub mod keeper_state {
    pub const SYNC_CONNECTED: i32 = 3;
}

/// `WatcherType` of checkWatches/removeWatches.
pub mod watcher_type {
    pub const CHILDREN: i32 = 1;
    pub const DATA: i32 = 2;
    pub const ANY: i32 = 3;
}

/// `AddWatchMode`.
pub mod add_watch_mode {
    pub const PERSISTENT: i32 = 0;
    pub const PERSISTENT_RECURSIVE: i32 = 1;
}

/// Special xids (reference §2.3).
pub mod xid {
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// Request types (`ZooDefs.OpCode`).
pub mod op {
    pub const NOTIFICATION: i32 = 0;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const MULTI_READ: i32 = 22;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const SASL: i32 = 102;
    pub const GET_EPHEMERALS: i32 = 103;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const SET_WATCHES2: i32 = 105;
    pub const ADD_WATCH: i32 = 106;
    pub const WHO_AM_I: i32 = 107;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}
