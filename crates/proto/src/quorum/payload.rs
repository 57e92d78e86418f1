//! Packet payloads (§4.4, §4.5): the data inside a `QuorumPacket`, by packet type: learner
//! info, LEADERINFO/ACKEPOCH, session touches, REVALIDATE, forwarded REQUESTs, and the
//! designated leader of COMMITANDACTIVATE/INFORMANDACTIVATE.

use super::{be_i32, be_i64};
use crate::error::DecodeError;
use crate::jute::{Reader, WriteJute};

/// The protocol version a 3.8 leader sends in LEADERINFO and a learner in `LearnerInfo`.
pub const LEADER_PROTOCOL_VERSION: i32 = 0x10000;

/// `protocolVersion` the leader assumes when a LearnerInfo is shorter than 12 bytes
/// (`LearnerHandler.version`'s initial value): a pre-3.4 learner, which gets no LEADERINFO.
pub const LEARNER_PROTOCOL_VERSION_DEFAULT: i32 = 0x1;

/// `configVersion` we report when a LearnerInfo is shorter than 20 bytes. Java then skips the
/// "learner has a later config" check; -1 is below every real config version, so the same
/// check on our side never fires either.
pub const LEARNER_CONFIG_VERSION_UNKNOWN: i64 = -1;

/// FOLLOWERINFO / OBSERVERINFO data (jute record `LearnerInfo`), 20 bytes:
///
/// ```text
/// off  size  field
///   0     8  serverid         i64
///   8     4  protocolVersion  i32  0x10000
///  12     8  configVersion    i64  learner's last-seen config version
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnerInfo {
    pub sid: i64,
    pub protocol_version: i32,
    pub config_version: i64,
}

impl LearnerInfo {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20);
        out.put_i64(self.sid);
        out.put_i32(self.protocol_version);
        out.put_i64(self.config_version);
        out
    }

    /// Read as leniently as `LearnerHandler.run`: 8+ bytes give the sid, 12+ the protocol
    /// version (else `LEARNER_PROTOCOL_VERSION_DEFAULT`), 20+ the config version (else
    /// `LEARNER_CONFIG_VERSION_UNKNOWN`); further bytes are ignored.
    ///
    /// Fewer than 8 bytes is an error. Java would keep sid 0 there, a real sid another server
    /// may own; no ZooKeeper version sends that. (Null data, where Java invents a negative sid,
    /// is the caller's case: it never reaches this function.)
    pub fn decode(data: &[u8]) -> Result<LearnerInfo, DecodeError> {
        let Some(sid) = be_i64(data, 0) else {
            return Err(DecodeError::UnexpectedEof {
                offset: data.len(),
                needed: 8 - data.len(),
            });
        };
        Ok(LearnerInfo {
            sid,
            protocol_version: be_i32(data, 8).unwrap_or(LEARNER_PROTOCOL_VERSION_DEFAULT),
            config_version: be_i64(data, 12).unwrap_or(LEARNER_CONFIG_VERSION_UNKNOWN),
        })
    }
}

/// A lone big-endian i32: LEADERINFO data (the leader's protocol version, 0x10000) and
/// ACKEPOCH data (the learner's current epoch, or -1 if it just accepted the proposed one).
pub fn encode_i32_data(v: i32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

/// The first 4 bytes as an i32; Java reads with `ByteBuffer.getInt` and ignores the rest.
pub fn decode_i32_data(data: &[u8]) -> Result<i32, DecodeError> {
    be_i32(data, 0).ok_or(DecodeError::UnexpectedEof {
        offset: data.len(),
        needed: 4 - data.len().min(4),
    })
}

/// A learner's PING reply data: `(i64 sessionId, i32 timeout)` for each session touched since
/// the last ping, back to back (12 bytes each; empty, not null, when there are none).
pub fn encode_session_touches(touches: &[(i64, i32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 * touches.len());
    for &(session_id, timeout) in touches {
        out.put_i64(session_id);
        out.put_i32(timeout);
    }
    out
}

/// The inverse of `encode_session_touches`. A length that is not a multiple of 12 is an error:
/// `LearnerHandler` hits end of stream mid-record and drops the learner.
pub fn decode_session_touches(data: &[u8]) -> Result<Vec<(i64, i32)>, DecodeError> {
    if !data.len().is_multiple_of(12) {
        return Err(DecodeError::UnexpectedEof {
            offset: data.len(),
            needed: 12 - data.len() % 12,
        });
    }
    let mut r = Reader::new(data);
    let mut touches = Vec::with_capacity(data.len() / 12);
    while !r.is_empty() {
        touches.push((r.read_i64()?, r.read_i32()?));
    }
    Ok(touches)
}

/// REVALIDATE data from a learner: `i64 sessionId, i32 timeout` (12 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevalidateRequest {
    pub session_id: i64,
    pub timeout: i32,
}

impl RevalidateRequest {
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_session_touches(&[(self.session_id, self.timeout)])
    }

    /// The first 12 bytes; the rest is ignored, as `DataInputStream` reads do.
    pub fn decode(data: &[u8]) -> Result<RevalidateRequest, DecodeError> {
        let mut r = Reader::new(data);
        Ok(RevalidateRequest {
            session_id: r.read_i64()?,
            timeout: r.read_i32()?,
        })
    }
}

/// REVALIDATE data from the leader: `i64 sessionId, bool valid` (9 bytes; any non-zero byte
/// is true, as `DataInputStream.readBoolean`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevalidateReply {
    pub session_id: i64,
    pub valid: bool,
}

impl RevalidateReply {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9);
        out.put_i64(self.session_id);
        out.put_bool(self.valid);
        out
    }

    pub fn decode(data: &[u8]) -> Result<RevalidateReply, DecodeError> {
        let mut r = Reader::new(data);
        Ok(RevalidateReply {
            session_id: r.read_i64()?,
            valid: r.read_bool()?,
        })
    }
}

/// REQUEST data (`Learner.request`): a client request a learner forwards to the leader.
///
/// ```text
/// off  size  field
///   0     8  sessionId  i64
///   8     4  cxid       i32
///  12     4  opType     i32  OpCode
///  16     n  body            the request record as the client sent it (after the
///                            RequestHeader); may be empty
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedRequest {
    pub session_id: i64,
    pub cxid: i32,
    pub op_type: i32,
    pub body: Vec<u8>,
}

impl ForwardedRequest {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.body.len());
        out.put_i64(self.session_id);
        out.put_i32(self.cxid);
        out.put_i32(self.op_type);
        out.extend_from_slice(&self.body);
        out
    }

    pub fn decode(data: &[u8]) -> Result<ForwardedRequest, DecodeError> {
        let mut r = Reader::new(data);
        Ok(ForwardedRequest {
            session_id: r.read_i64()?,
            cxid: r.read_i32()?,
            op_type: r.read_i32()?,
            body: r.rest().to_vec(),
        })
    }
}

/// COMMITANDACTIVATE data: the designated leader's sid as an i64 (8 bytes).
pub fn encode_designated_leader(sid: i64) -> Vec<u8> {
    sid.to_be_bytes().to_vec()
}

/// INFORMANDACTIVATE data: the designated leader's sid, then the PROPOSAL data (txn bytes).
pub fn encode_inform_and_activate(sid: i64, proposal: &[u8]) -> Vec<u8> {
    let mut out = encode_designated_leader(sid);
    out.extend_from_slice(proposal);
    out
}

/// COMMITANDACTIVATE / INFORMANDACTIVATE data: the designated leader's sid and the bytes after
/// it (empty for COMMITANDACTIVATE, the txn for INFORMANDACTIVATE).
pub fn decode_designated_leader(data: &[u8]) -> Result<(i64, &[u8]), DecodeError> {
    let mut r = Reader::new(data);
    let sid = r.read_i64()?;
    Ok((sid, r.rest()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::tests::hex;

    /// `LearnerHandler` reads LearnerInfo leniently; shorter forms get Java's defaults.
    #[test]
    fn learner_info_lenient_lengths() {
        let full = LearnerInfo {
            sid: 9,
            protocol_version: LEADER_PROTOCOL_VERSION,
            config_version: 0x1_0000_0000,
        };
        let bytes = full.to_bytes();
        assert_eq!(bytes.len(), 20);
        assert_eq!(LearnerInfo::decode(&bytes), Ok(full));
        let mut longer = bytes.clone();
        longer.push(0xaa);
        assert_eq!(LearnerInfo::decode(&longer), Ok(full));
        assert_eq!(
            LearnerInfo::decode(&bytes[..19]),
            Ok(LearnerInfo {
                config_version: LEARNER_CONFIG_VERSION_UNKNOWN,
                ..full
            })
        );
        assert_eq!(
            LearnerInfo::decode(&bytes[..11]),
            Ok(LearnerInfo {
                sid: 9,
                protocol_version: LEARNER_PROTOCOL_VERSION_DEFAULT,
                config_version: LEARNER_CONFIG_VERSION_UNKNOWN,
            })
        );
        assert!(LearnerInfo::decode(&bytes[..7]).is_err());
        assert!(LearnerInfo::decode(&[]).is_err());
    }

    /// §7 PING reply from a learner: one touched session, or an empty (not null) buffer.
    #[test]
    fn session_touches_golden() {
        let one = hex("0100005ca4110001 00007530");
        assert_eq!(
            encode_session_touches(&[(0x0100_005c_a411_0001, 30000)]),
            one
        );
        assert_eq!(
            decode_session_touches(&one),
            Ok(vec![(0x0100_005c_a411_0001, 30000)])
        );
        assert_eq!(encode_session_touches(&[]), Vec::<u8>::new());
        assert_eq!(decode_session_touches(&[]), Ok(vec![]));
        let two = encode_session_touches(&[(1, 2), (-3, 4)]);
        assert_eq!(decode_session_touches(&two), Ok(vec![(1, 2), (-3, 4)]));
        assert!(decode_session_touches(&two[..13]).is_err());
        assert!(decode_session_touches(&one[..11]).is_err());
    }

    /// §7 REVALIDATE in both directions.
    #[test]
    fn revalidate_golden() {
        let req = RevalidateRequest {
            session_id: 0x0200_005c_a42b_0001,
            timeout: 30000,
        };
        let req_bytes = hex("0200005ca42b0001 00007530");
        assert_eq!(req.to_bytes(), req_bytes);
        assert_eq!(RevalidateRequest::decode(&req_bytes), Ok(req));
        assert!(RevalidateRequest::decode(&req_bytes[..11]).is_err());

        let reply = RevalidateReply {
            session_id: 0x0200_005c_a42b_0001,
            valid: true,
        };
        let reply_bytes = hex("0200005ca42b0001 01");
        assert_eq!(reply.to_bytes(), reply_bytes);
        assert_eq!(RevalidateReply::decode(&reply_bytes), Ok(reply));
        assert!(RevalidateReply::decode(&reply_bytes[..8]).is_err());
        let invalid = RevalidateReply {
            valid: false,
            ..reply
        };
        assert_eq!(RevalidateReply::decode(&invalid.to_bytes()), Ok(invalid));
    }

    #[test]
    fn i32_data_and_designated_leader() {
        assert_eq!(encode_i32_data(-1), hex("ffffffff"));
        assert_eq!(decode_i32_data(&hex("ffffffff")), Ok(-1));
        assert!(decode_i32_data(&[0, 1, 0]).is_err());
        assert_eq!(encode_designated_leader(2), hex("0000000000000002"));
        assert_eq!(
            decode_designated_leader(&encode_designated_leader(2)),
            Ok((2, &[][..]))
        );
        let ia = encode_inform_and_activate(3, b"txn");
        assert_eq!(decode_designated_leader(&ia), Ok((3, &b"txn"[..])));
        assert!(decode_designated_leader(&[0; 7]).is_err());
    }
}
