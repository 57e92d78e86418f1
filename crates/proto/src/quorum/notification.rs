//! Fast Leader Election notifications (§4.3, `FastLeaderElection.Messenger`): what a peer sends
//! on the election port while it elects, in every length a 3.8 receiver accepts.

use crate::error::DecodeError;
use crate::ids::{Epoch, ServerId, Zxid};
use crate::jute::{Reader, WriteJute};

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

/// The notification format version we send (`Notification.CURRENTVERSION`).
pub const NOTIFICATION_VERSION_CURRENT: i32 = 0x2;

/// The shortest notification a 3.8 receiver accepts: state, leader, zxid, electionEpoch.
pub const NOTIFICATION_BYTES_MIN: usize = 28;

/// A Fast Leader Election notification (§4.3), as decoded from any of the accepted lengths.
///
/// Current (version 2) layout, all big-endian, 44 + configLength bytes:
///
/// ```text
/// off  size  field
///   0     4  state          i32  sender's ServerState ordinal
///   4     8  leader         i64  proposed leader's sid
///  12     8  zxid           i64  proposed leader's last zxid
///  20     8  electionEpoch  i64  sender's logical clock
///  28     8  peerEpoch      i64  proposed leader's epoch
///  36     4  version        i32  2
///  40     4  configLength   i32  0..=message length
///  44     n  config              §4.1 config string, UTF-8
/// ```
///
/// Older senders stop after byte 28 (no peerEpoch: it is `zxid >> 32`) or after byte 40
/// (bytes 36..40 are not read; version 0). A version ≤ 1 message has no config part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub state: ServerState,
    /// Proposed leader's sid.
    pub leader: ServerId,
    /// Proposed leader's last zxid.
    pub zxid: Zxid,
    /// The sender's logical clock: Fast Leader Election's round counter, which Java calls
    /// `electionEpoch` but which is not a ZAB [`Epoch`]. It stays a bare `i64` so that it can
    /// never be passed where `peer_epoch` is meant.
    pub election_epoch: i64,
    /// Proposed leader's epoch.
    pub peer_epoch: Epoch,
    /// 0 for 28/40-byte messages, 2 for current ones.
    pub version: i32,
    /// Config string bytes (§4.1), present in version ≥ 2 messages. An empty config is `None`:
    /// the two are the same bytes on the wire.
    pub config: Option<Vec<u8>>,
}

impl Notification {
    /// A current-format (version 2) notification. `Some(empty)` is normalised to `None`, so a
    /// decoded copy compares equal.
    pub fn new(
        state: ServerState,
        leader: ServerId,
        zxid: Zxid,
        election_epoch: i64,
        peer_epoch: Epoch,
        config: Option<Vec<u8>>,
    ) -> Notification {
        Notification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version: NOTIFICATION_VERSION_CURRENT,
            config: config.filter(|c| !c.is_empty()),
        }
    }

    /// The version 2 layout (see the type docs), whatever `self.version` says: like
    /// `FastLeaderElection.buildMsg`, we only ever speak the current format. `None` config is
    /// configLength 0.
    pub fn encode(&self) -> Vec<u8> {
        let config = self.config.as_deref().unwrap_or_default();
        let mut out = Vec::with_capacity(44 + config.len());
        out.put_i32(self.state.ordinal());
        out.put_i64(self.leader.0);
        out.put_i64(self.zxid.0);
        out.put_i64(self.election_epoch);
        out.put_i64(self.peer_epoch.0);
        out.put_i32(NOTIFICATION_VERSION_CURRENT);
        out.put_i32(config.len() as i32);
        out.extend_from_slice(config);
        out
    }

    /// Decode one election frame payload the way `FastLeaderElection.Messenger` does:
    ///
    /// * fewer than 28 bytes: error;
    /// * exactly 28: peerEpoch = `zxid >> 32`, version 0;
    /// * exactly 40: peerEpoch read, version 0 (bytes 36..40 ignored);
    /// * otherwise peerEpoch and version are read (29..=39 bytes is a short read: error), and
    ///   a version above 1 is followed by configLength (0..=message length) and the config;
    /// * bytes after the decoded fields are ignored;
    /// * a state ordinal other than 0..=3 is an error (Java drops such a message from a voter).
    pub fn decode(buf: &[u8]) -> Result<Notification, DecodeError> {
        if buf.len() < NOTIFICATION_BYTES_MIN {
            return Err(DecodeError::UnexpectedEof {
                offset: buf.len(),
                needed: NOTIFICATION_BYTES_MIN - buf.len(),
            });
        }
        let mut r = Reader::new(buf);
        let state_ordinal = r.read_i32()?;
        let leader = ServerId(r.read_i64()?);
        let zxid = Zxid(r.read_i64()?);
        let election_epoch = r.read_i64()?;
        let mut version = 0;
        let mut config = None;
        let peer_epoch = if buf.len() == NOTIFICATION_BYTES_MIN {
            zxid.epoch()
        } else {
            let peer_epoch = Epoch(r.read_i64()?);
            if buf.len() != 40 {
                version = r.read_i32()?;
            }
            peer_epoch
        };
        if version > 1 {
            let offset = r.position();
            let len = r.read_i32()?;
            // Java bounds configLength by the message length before allocating.
            if len < 0 || len as usize > buf.len() {
                return Err(DecodeError::BadLength {
                    offset,
                    len: len as i64,
                });
            }
            if r.remaining() < len as usize {
                return Err(DecodeError::UnexpectedEof {
                    offset: r.position(),
                    needed: len as usize,
                });
            }
            let bytes = &r.rest()[..len as usize];
            if !bytes.is_empty() {
                config = Some(bytes.to_vec());
            }
        }
        let state = ServerState::from_ordinal(state_ordinal).ok_or(DecodeError::Invalid {
            what: "server state",
            value: state_ordinal as i64,
        })?;
        Ok(Notification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version,
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::tests::{hex, three_node_config};

    /// §7: the notification a FOLLOWING sid 1 sent is 182 bytes: 44 + the 138-byte config.
    #[test]
    fn notification_golden_from_follower() {
        let config = three_node_config().to_config_string().into_bytes();
        assert_eq!(config.len(), 138);
        let n = Notification::new(
            ServerState::Following,
            ServerId(2),
            Zxid(0),
            1,
            Epoch(1),
            Some(config.clone()),
        );
        let bytes = n.encode();
        let mut expected = hex(
            "00000001 0000000000000002 0000000000000000 0000000000000001 0000000000000001
             00000002 0000008a",
        );
        expected.extend_from_slice(&config);
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), 182);
        assert_eq!(Notification::decode(&bytes).unwrap(), n);
    }

    /// A `None` config is configLength 0 and decodes back to `None`.
    #[test]
    fn notification_without_config_is_44_bytes() {
        let n = Notification::new(
            ServerState::Looking,
            ServerId(3),
            Zxid(0x1_0000_0005),
            7,
            Epoch(1),
            None,
        );
        let bytes = n.encode();
        assert_eq!(bytes.len(), 44);
        assert_eq!(&bytes[40..], &[0, 0, 0, 0]);
        assert_eq!(Notification::decode(&bytes).unwrap(), n);
        let empty = Notification::new(
            ServerState::Looking,
            ServerId(3),
            Zxid(0x1_0000_0005),
            7,
            Epoch(1),
            Some(vec![]),
        );
        assert_eq!(empty, n);
    }

    /// A 28-byte (pre ZOOKEEPER-107) message derives peerEpoch from the zxid (§4.3).
    #[test]
    fn notification_28_bytes_derives_peer_epoch() {
        let bytes = hex("00000002 0000000000000001 0000000300000009 0000000000000004");
        let n = Notification::decode(&bytes).unwrap();
        assert_eq!(n.state, ServerState::Leading);
        assert_eq!(n.peer_epoch, Epoch(3));
        assert_eq!(n.version, 0);
        assert_eq!(n.config, None);
    }

    /// A 40-byte message carries peerEpoch; its last 4 bytes are not read as a version
    /// (`buildMsg` writes 1 there, which Java ignores).
    #[test]
    fn notification_40_bytes_is_version_0() {
        let bytes = hex(
            "00000000 0000000000000001 0000000300000009 0000000000000004 0000000000000005
             00000001",
        );
        let n = Notification::decode(&bytes).unwrap();
        assert_eq!((n.peer_epoch, n.version, n.config), (Epoch(5), 0, None));
    }

    /// A version-1 message longer than 40 bytes has no config part; trailing bytes are ignored.
    #[test]
    fn notification_version_1_has_no_config() {
        let mut bytes = Notification::new(
            ServerState::Observing,
            ServerId(1),
            Zxid(2),
            3,
            Epoch(4),
            None,
        )
        .encode();
        bytes[36..40].copy_from_slice(&1i32.to_be_bytes());
        bytes[40..44].copy_from_slice(&(-5i32).to_be_bytes());
        let n = Notification::decode(&bytes).unwrap();
        assert_eq!((n.version, n.config), (1, None));
    }

    /// Rejections, each as in `FastLeaderElection.Messenger`: < 28 bytes, a length between the
    /// known formats, a negative or oversized configLength, a truncated config, and an unknown
    /// state.
    #[test]
    fn notification_rejections() {
        let good = Notification::new(
            ServerState::Looking,
            ServerId(1),
            Zxid(2),
            3,
            Epoch(4),
            Some(b"abc".to_vec()),
        );
        let bytes = good.encode();
        assert!(Notification::decode(&bytes[..27]).is_err());
        assert!(Notification::decode(&[]).is_err());
        for len in [29, 35, 36, 39, 41, 43] {
            assert!(Notification::decode(&bytes[..len]).is_err(), "{len}");
        }
        assert!(
            Notification::decode(&bytes[..46]).is_err(),
            "truncated config"
        );
        let mut neg = bytes.clone();
        neg[40..44].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(
            Notification::decode(&neg),
            Err(DecodeError::BadLength {
                offset: 40,
                len: -1
            })
        ));
        let mut huge = bytes.clone();
        huge[40..44].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            Notification::decode(&huge),
            Err(DecodeError::BadLength { .. })
        ));
        let mut state = bytes.clone();
        state[..4].copy_from_slice(&4i32.to_be_bytes());
        assert_eq!(
            Notification::decode(&state),
            Err(DecodeError::Invalid {
                what: "server state",
                value: 4
            })
        );
    }
}
