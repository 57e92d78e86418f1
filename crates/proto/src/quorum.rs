//! ZooKeeper 3.8 quorum wire formats (reference §4): the election connection header and
//! Fast Leader Election notifications on the election port, the `QuorumPacket` stream between
//! leader and learners on the quorum port, the payloads carried inside those packets, and the
//! ensemble config string (`QuorumMaj.toString`). Pure: bytes in, values out.

/// `ServerState` ordinals as sent in notifications (§4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerState {
    Looking,
    Following,
    Leading,
    Observing,
}

impl ServerState {
    pub fn ordinal(self) -> i32 {
        match self {
            ServerState::Looking => 0,
            ServerState::Following => 1,
            ServerState::Leading => 2,
            ServerState::Observing => 3,
        }
    }

    pub fn from_ordinal(v: i32) -> Option<ServerState> {
        Some(match v {
            0 => ServerState::Looking,
            1 => ServerState::Following,
            2 => ServerState::Leading,
            3 => ServerState::Observing,
            _ => return None,
        })
    }
}

/// A Fast Leader Election notification (§4.3), as decoded from any of the accepted lengths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub state: ServerState,
    /// Proposed leader's sid.
    pub leader: i64,
    /// Proposed leader's last zxid.
    pub zxid: i64,
    /// The sender's logical clock (election round).
    pub election_epoch: i64,
    /// Proposed leader's epoch.
    pub peer_epoch: i64,
    /// 0 for 28/40-byte messages, 2 for current ones.
    pub version: i32,
    /// Config string bytes (§4.1), present in version ≥ 2 messages.
    pub config: Option<Vec<u8>>,
}

/// `QuorumPacket` types (§4.4).
pub mod packet_type {
    pub const REQUEST: i32 = 1;
    pub const PROPOSAL: i32 = 2;
    pub const ACK: i32 = 3;
    pub const COMMIT: i32 = 4;
    pub const PING: i32 = 5;
    pub const REVALIDATE: i32 = 6;
    pub const SYNC: i32 = 7;
    pub const INFORM: i32 = 8;
    pub const COMMITANDACTIVATE: i32 = 9;
    pub const NEWLEADER: i32 = 10;
    pub const FOLLOWERINFO: i32 = 11;
    pub const UPTODATE: i32 = 12;
    pub const DIFF: i32 = 13;
    pub const TRUNC: i32 = 14;
    pub const SNAP: i32 = 15;
    pub const OBSERVERINFO: i32 = 16;
    pub const LEADERINFO: i32 = 17;
    pub const ACKEPOCH: i32 = 18;
    pub const INFORMANDACTIVATE: i32 = 19;
}

/// One record of the leader ↔ learner stream (§4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumPacket {
    pub r#type: i32,
    pub zxid: i64,
    pub data: Option<Vec<u8>>,
    pub authinfo: Option<Vec<crate::records::Id>>,
}
