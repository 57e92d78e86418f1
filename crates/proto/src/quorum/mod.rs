//! ZooKeeper 3.8 quorum wire formats (reference §4): the election connection header and
//! Fast Leader Election notifications on the election port, the `QuorumPacket` stream between
//! leader and learners on the quorum port, the payloads carried inside those packets, and the
//! ensemble config string (`QuorumMaj.toString`). Pure: bytes in, values out.
//!
//! This module owns byte layouts only. It does not decide anything (who leads, what to sync,
//! which connection to drop): that is `zab`. The SNAP stream that follows a SNAP packet is the
//! tree serializer's business and lives in `storage`.
//!
//! Every decoder takes untrusted bytes: it returns a `DecodeError` and never panics, and no
//! length read from the wire is allocated before the bytes behind it have arrived.
//!
//! One file per message family: `auth` (quorum SASL packets), `notification` (FLE notifications), `election` (the
//! election connection header and frames), `packet` (the leader ↔ learner `QuorumPacket`),
//! `payload` (what packets carry), `config` (the config string) and `server_line` (the value
//! of a `server.<sid>=` line, zoo.cfg's and the config string's alike). Everything is re-exported
//! here, so callers name `corral_proto::quorum::X`.

use crate::ids::{Epoch, Zxid};

mod auth;
mod config;
mod election;
mod notification;
mod packet;
mod payload;
mod server_line;

pub use auth::{AuthStatus, QuorumAuthPacket, QUORUM_AUTH_MAGIC, QUORUM_AUTH_TOKEN_MAX};
pub use config::{QuorumConfig, QuorumMember};
pub use election::{
    encode_election_frame, format_address, keeps_connection, try_decode_election_frame,
    ElectionHeader, ELECTION_ADDRESS_MAX, ELECTION_MESSAGE_MAX, PROTOCOL_VERSION_V1,
    PROTOCOL_VERSION_V2,
};
pub use notification::{
    Notification, ServerState, NOTIFICATION_BYTES_MIN, NOTIFICATION_VERSION_CURRENT,
};
pub use packet::{packet_type, QuorumPacket};
pub use payload::{
    decode_designated_leader, decode_i32_data, decode_session_touches, encode_designated_leader,
    encode_i32_data, encode_inform_and_activate, encode_session_touches, ForwardedRequest,
    LearnerInfo, RevalidateReply, RevalidateRequest, LEADER_PROTOCOL_VERSION,
    LEARNER_CONFIG_VERSION_UNKNOWN, LEARNER_PROTOCOL_VERSION_DEFAULT,
};
pub use server_line::{host_and_port, java_split, ServerAddress, ServerLine, ServerLineError};

// ---------------------------------------------------------------------------------------------
// zxids (`ZxidUtils`), for callers that still hold a bare `i64`: see `crate::ids::Zxid`
// ---------------------------------------------------------------------------------------------

/// The epoch half of a zxid: [`Zxid::epoch`] on a bare `i64` (so -1 has epoch -1).
pub fn epoch_of(zxid: i64) -> i64 {
    Zxid(zxid).epoch().0
}

/// The counter half of a zxid: [`Zxid::counter`] on a bare `i64`, always in `0..=0xffff_ffff`.
pub fn counter_of(zxid: i64) -> i64 {
    Zxid(zxid).counter()
}

/// [`Zxid::new`] on bare `i64`s: `epoch << 32 | counter`, the counter cut to 32 bits.
pub fn make_zxid(epoch: i64, counter: i64) -> i64 {
    Zxid::new(Epoch(epoch), counter).0
}

fn be_i64(buf: &[u8], at: usize) -> Option<i64> {
    let b: [u8; 8] = buf.get(at..at + 8)?.try_into().ok()?;
    Some(i64::from_be_bytes(b))
}

fn be_i32(buf: &[u8], at: usize) -> Option<i32> {
    let b: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(i32::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hex string (spaces ignored) to bytes, for golden vectors written as in the reference.
    pub(super) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test vector is hex"))
            .collect()
    }

    /// The 138-byte config of §4.1: three participants on 127.0.0.1, version 0.
    pub(super) fn three_node_config() -> QuorumConfig {
        let members = (1..=3)
            .map(|i| QuorumMember {
                sid: i,
                host: "127.0.0.1".into(),
                quorum_port: 32880 + i as u16,
                election_port: 33880 + i as u16,
                observer: false,
                client: None,
            })
            .collect();
        QuorumConfig {
            members,
            version: 0,
        }
    }

    pub(super) const THREE_NODE_CONFIG: &str = "server.1=127.0.0.1:32881:33881:participant\n\
        server.2=127.0.0.1:32882:33882:participant\n\
        server.3=127.0.0.1:32883:33883:participant\n\
        version=0";

    // --- zxids -------------------------------------------------------------------------------

    /// `ZxidUtils` splits a zxid at bit 32; -1 (no zxid) keeps epoch -1 because the shift is
    /// arithmetic.
    #[test]
    fn zxid_halves() {
        assert_eq!(make_zxid(1, 3), 0x1_0000_0003);
        assert_eq!(epoch_of(0x1_0000_0003), 1);
        assert_eq!(counter_of(0x1_0000_0003), 3);
        assert_eq!(epoch_of(-1), -1);
        assert_eq!(counter_of(-1), 0xffff_ffff);
        assert_eq!(make_zxid(2, -1), 0x2_ffff_ffff);
    }
}
