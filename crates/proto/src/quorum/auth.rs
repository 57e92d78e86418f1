//! Quorum SASL (`quorum.auth.enableSasl`): the `QuorumAuthPacket`s a connecting member and the
//! member it connects to exchange before anything else on the quorum port, and right after the
//! header on the election port. Read from ZooKeeper 3.8's `QuorumAuth` and its two SASL halves.
//!
//! ```text
//! off  size  field
//!   0     8  magic   i64  QUORUM_AUTH_MAGIC
//!   8     4  status  i32  0 in progress, 1 success, -1 error
//!  12     4  len     i32  token length, -1 for none
//!  16     n  token
//! ```
//!
//! The connecting side (the "learner") sends first, always with status "in progress"; the
//! accepting side answers each token, with "success" and its last token when it is satisfied,
//! or "error". The accepting side tells an authenticating peer from one that is not by peeking
//! at the magic.

use super::{be_i32, be_i64};
use crate::error::DecodeError;
use crate::jute::WriteJute;

/// First i64 of every quorum auth packet. ZooKeeper writes it as `-0xa0dbcafecafe1234L`; that
/// Java literal is already negative, so the value sent is positive.
pub const QUORUM_AUTH_MAGIC: i64 = 0x5f24_3501_3501_edcc;
/// Longest token taken from the wire; SASL tokens of either mechanism are far shorter.
pub const QUORUM_AUTH_TOKEN_MAX: usize = 64 * 1024;

/// Where the exchange stands, as the packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStatus {
    InProgress,
    Success,
    Error,
}

impl AuthStatus {
    fn code(self) -> i32 {
        match self {
            AuthStatus::InProgress => 0,
            AuthStatus::Success => 1,
            AuthStatus::Error => -1,
        }
    }
}

/// One `QuorumAuthPacket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumAuthPacket {
    pub status: AuthStatus,
    pub token: Option<Vec<u8>>,
}

impl QuorumAuthPacket {
    pub fn new(status: AuthStatus, token: Vec<u8>) -> QuorumAuthPacket {
        QuorumAuthPacket {
            status,
            token: Some(token),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.token.as_ref().map_or(0, Vec::len));
        out.put_i64(QUORUM_AUTH_MAGIC);
        out.put_i32(self.status.code());
        out.put_buffer(self.token.as_deref());
        out
    }

    /// Whether `buf` starts with an auth packet: `None` until 8 bytes have arrived.
    pub fn starts(buf: &[u8]) -> Option<bool> {
        be_i64(buf, 0).map(|m| m == QUORUM_AUTH_MAGIC)
    }

    /// Decodes a packet from the start of `buf`: `Ok(None)` until all of it has arrived.
    /// Errors: another magic, an unknown status, a token length below -1 or above
    /// [`QUORUM_AUTH_TOKEN_MAX`].
    pub fn try_decode(buf: &[u8]) -> Result<Option<(QuorumAuthPacket, usize)>, DecodeError> {
        let (Some(magic), Some(status), Some(len)) =
            (be_i64(buf, 0), be_i32(buf, 8), be_i32(buf, 12))
        else {
            return Ok(None);
        };
        if magic != QUORUM_AUTH_MAGIC {
            return Err(DecodeError::Invalid {
                what: "quorum auth magic",
                value: magic,
            });
        }
        let status = match status {
            0 => AuthStatus::InProgress,
            1 => AuthStatus::Success,
            -1 => AuthStatus::Error,
            other => {
                return Err(DecodeError::Invalid {
                    what: "quorum auth status",
                    value: other.into(),
                })
            }
        };
        if len < -1 || len > QUORUM_AUTH_TOKEN_MAX as i32 {
            return Err(DecodeError::BadLength {
                offset: 12,
                len: len.into(),
            });
        }
        if len == -1 {
            return Ok(Some((
                QuorumAuthPacket {
                    status,
                    token: None,
                },
                16,
            )));
        }
        let end = 16 + len as usize;
        let Some(token) = buf.get(16..end) else {
            return Ok(None);
        };
        let p = QuorumAuthPacket {
            status,
            token: Some(token.to_vec()),
        };
        Ok(Some((p, end)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Bytes as ZooKeeper's BinaryOutputArchive writes QuorumAuthPacket(magic, 0, "ab").
    #[test]
    fn layout_and_round_trip() {
        let p = QuorumAuthPacket::new(AuthStatus::InProgress, b"ab".to_vec());
        let bytes = p.encode();
        let expected = [
            0x5f, 0x24, 0x35, 0x01, 0x35, 0x01, 0xed, 0xcc, // magic, big-endian
            0, 0, 0, 0, // status: in progress
            0, 0, 0, 2, b'a', b'b', // token
        ];
        assert_eq!(bytes, expected);
        // Java's long arithmetic: -(0xa0dbcafecafe1234 as a two's complement i64).
        assert_eq!(
            QUORUM_AUTH_MAGIC,
            (0xa0db_cafe_cafe_1234u64 as i64).wrapping_neg()
        );
        for n in 0..bytes.len() {
            assert_eq!(QuorumAuthPacket::try_decode(&bytes[..n]), Ok(None), "{n}");
        }
        assert_eq!(
            QuorumAuthPacket::try_decode(&bytes),
            Ok(Some((p, bytes.len())))
        );
        assert_eq!(QuorumAuthPacket::starts(&bytes), Some(true));
        assert_eq!(QuorumAuthPacket::starts(&bytes[..7]), None);
        let none = QuorumAuthPacket {
            status: AuthStatus::Success,
            token: None,
        };
        assert_eq!(
            QuorumAuthPacket::try_decode(&none.encode()),
            Ok(Some((none, 16)))
        );
    }

    // A quorum packet or an election frame is not an auth packet; garbage is refused.
    #[test]
    fn refuses_what_is_not_one() {
        let mut frame = Vec::new();
        frame.put_i32(28);
        frame.put_i32(1);
        assert_eq!(QuorumAuthPacket::starts(&frame), Some(false));
        assert!(QuorumAuthPacket::try_decode(&[0u8; 16]).is_err());
        let mut bad = QuorumAuthPacket::new(AuthStatus::Error, vec![]).encode();
        bad[11] = 7;
        assert!(QuorumAuthPacket::try_decode(&bad).is_err());
        let mut huge = QuorumAuthPacket::new(AuthStatus::Error, vec![]).encode();
        huge[12..16].copy_from_slice(&(1_000_000i32).to_be_bytes());
        assert!(QuorumAuthPacket::try_decode(&huge).is_err());
    }
}
