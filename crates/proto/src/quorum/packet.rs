//! The leader ↔ learner stream (§4.4, `QuorumPacket` in zookeeper.jute, `Leader`, `Learner`):
//! the packet types and the record every packet on the quorum port is.

use crate::error::DecodeError;
use crate::jute::{Jute, Reader, WriteJute};
use crate::records::Id;

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

    /// The Java constant's name, for logs; `None` for an unknown type.
    pub fn name(t: i32) -> Option<&'static str> {
        Some(match t {
            REQUEST => "REQUEST",
            PROPOSAL => "PROPOSAL",
            ACK => "ACK",
            COMMIT => "COMMIT",
            PING => "PING",
            REVALIDATE => "REVALIDATE",
            SYNC => "SYNC",
            INFORM => "INFORM",
            COMMITANDACTIVATE => "COMMITANDACTIVATE",
            NEWLEADER => "NEWLEADER",
            FOLLOWERINFO => "FOLLOWERINFO",
            UPTODATE => "UPTODATE",
            DIFF => "DIFF",
            TRUNC => "TRUNC",
            SNAP => "SNAP",
            OBSERVERINFO => "OBSERVERINFO",
            LEADERINFO => "LEADERINFO",
            ACKEPOCH => "ACKEPOCH",
            INFORMANDACTIVATE => "INFORMANDACTIVATE",
            _ => return None,
        })
    }
}

/// The smallest encoding of one `Id` in authinfo: two empty strings.
const ID_BYTES_MIN: usize = 8;

/// One record of the leader ↔ learner stream (§4.4). There is no frame length: the stream is
/// records back to back.
///
/// ```text
/// off  size  field
///   0     4  type      i32
///   4     8  zxid      i64
///  12     4  dataLen   i32  -1 = null
///  16     n  data
/// 16+n    4  idCount   i32  -1 = null
///  ...       ids       each: i32 len + scheme, i32 len + id
/// ```
///
/// A COMMIT is therefore 20 bytes: `00000004 <zxid> ffffffff ffffffff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumPacket {
    pub r#type: i32,
    pub zxid: i64,
    pub data: Option<Vec<u8>>,
    pub authinfo: Option<Vec<crate::records::Id>>,
}

impl QuorumPacket {
    /// A packet without authinfo (every type but a forwarded REQUEST).
    pub fn new(kind: i32, zxid: i64, data: Option<Vec<u8>>) -> QuorumPacket {
        QuorumPacket {
            r#type: kind,
            zxid,
            data,
            authinfo: None,
        }
    }

    /// Append the jute record (see the type docs).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_i32(self.r#type);
        out.put_i64(self.zxid);
        out.put_buffer(self.data.as_deref());
        match &self.authinfo {
            None => out.put_i32(-1),
            Some(ids) => ids.write(out),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decode one whole record from `r`. The reader's maximum bounds `data` and each id string;
    /// an id count larger than the remaining bytes could hold is a `BadLength`.
    pub fn decode(r: &mut Reader<'_>) -> Result<QuorumPacket, DecodeError> {
        Self::read_record(r, None)
    }

    /// Decode one record from the start of a stream buffer. `Ok(None)`: the record is
    /// incomplete, read more and call again with the longer buffer; `Ok(Some((p, n)))`: the
    /// record took `n` bytes.
    ///
    /// Errors as soon as the offending length field is complete: a buffer or string length
    /// above `max_len`, any negative length other than -1, or an id count whose smallest
    /// encoding (8 bytes per id) exceeds `max_len`.
    pub fn try_decode(
        buf: &[u8],
        max_len: usize,
    ) -> Result<Option<(QuorumPacket, usize)>, DecodeError> {
        let mut r = Reader::with_max_len(buf, max_len);
        match Self::read_record(&mut r, Some(max_len)) {
            Ok(p) => Ok(Some((p, r.position()))),
            // Every length is validated before the bytes it covers are taken, so running out of
            // input here only ever means "not all of it has arrived".
            Err(DecodeError::UnexpectedEof { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `ids_bytes_max`: for a stream, the most bytes authinfo may take (the remaining bytes are
    /// not a bound, more may arrive); `None` means the record must be complete in `r`.
    fn read_record(
        r: &mut Reader<'_>,
        ids_bytes_max: Option<usize>,
    ) -> Result<QuorumPacket, DecodeError> {
        let kind = r.read_i32()?;
        let zxid = r.read_i64()?;
        let data = r.read_buffer()?;
        let offset = r.position();
        let count = r.read_i32()?;
        let authinfo = if count == -1 {
            None
        } else {
            let limit = ids_bytes_max.unwrap_or(r.remaining()) / ID_BYTES_MIN;
            if count < 0 || count as usize > limit {
                return Err(DecodeError::BadLength {
                    offset,
                    len: count as i64,
                });
            }
            let mut ids = Vec::with_capacity((count as usize).min(16));
            for _ in 0..count {
                ids.push(Id::read(r)?);
            }
            Some(ids)
        };
        Ok(QuorumPacket {
            r#type: kind,
            zxid,
            data,
            authinfo,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::make_zxid;
    use crate::quorum::tests::hex;
    use crate::quorum::{
        decode_i32_data, encode_i32_data, ForwardedRequest, LearnerInfo, LEADER_PROTOCOL_VERSION,
    };

    /// §4.4: a COMMIT is exactly 20 bytes.
    #[test]
    fn commit_golden() {
        let p = QuorumPacket::new(packet_type::COMMIT, 0x1_0000_0003, None);
        let bytes = p.to_bytes();
        assert_eq!(bytes, hex("00000004 0000000100000003 ffffffff ffffffff"));
        assert_eq!(QuorumPacket::try_decode(&bytes, 1024), Ok(Some((p, 20))));
    }

    /// §7 learner handshake: the FOLLOWERINFO sid 3 sent and the LEADERINFO it got back.
    #[test]
    fn learner_handshake_golden() {
        let info = LearnerInfo {
            sid: 3,
            protocol_version: LEADER_PROTOCOL_VERSION,
            config_version: 0,
        };
        let fi = QuorumPacket::new(packet_type::FOLLOWERINFO, 0, Some(info.to_bytes()));
        let fi_bytes = hex(
            "0000000b 0000000000000000 00000014 0000000000000003 00010000 0000000000000000
             ffffffff",
        );
        assert_eq!(fi.to_bytes(), fi_bytes);
        let decoded = QuorumPacket::decode(&mut Reader::new(&fi_bytes)).unwrap();
        assert_eq!(decoded, fi);
        assert_eq!(LearnerInfo::decode(&decoded.data.unwrap()).unwrap(), info);

        let li = QuorumPacket::new(
            packet_type::LEADERINFO,
            make_zxid(1, 0),
            Some(encode_i32_data(LEADER_PROTOCOL_VERSION)),
        );
        let li_bytes = hex("00000011 0000000100000000 00000004 00010000 ffffffff");
        assert_eq!(li.to_bytes(), li_bytes);
        let (decoded, n) = QuorumPacket::try_decode(&li_bytes, 1024).unwrap().unwrap();
        assert_eq!((decoded.clone(), n), (li, li_bytes.len()));
        assert_eq!(decode_i32_data(&decoded.data.unwrap()), Ok(0x10000));
    }

    /// §7: a forwarded createSession (opType -10, body = the 30 s timeout) has null authinfo.
    #[test]
    fn forwarded_create_session_golden() {
        let data = hex("0100005ca4110001 00000000 fffffff6 00007530");
        let req = ForwardedRequest {
            session_id: 0x0100_005c_a411_0001,
            cxid: 0,
            op_type: -10,
            body: hex("00007530"),
        };
        assert_eq!(req.to_bytes(), data);
        assert_eq!(ForwardedRequest::decode(&data).unwrap(), req);
        let p = QuorumPacket::new(packet_type::REQUEST, -1, Some(data.clone()));
        let mut expected = hex("00000001 ffffffffffffffff 00000014");
        expected.extend_from_slice(&data);
        expected.extend_from_slice(&hex("ffffffff"));
        assert_eq!(p.to_bytes(), expected);
        assert!(ForwardedRequest::decode(&data[..15]).is_err());
        let bare = ForwardedRequest::decode(&data[..16]).unwrap();
        assert!(bare.body.is_empty());
    }

    /// A REQUEST carries the client's auth ids as a jute vector of `Id` records.
    #[test]
    fn request_with_authinfo_round_trips() {
        let mut p = QuorumPacket::new(packet_type::REQUEST, -1, Some(vec![1, 2, 3]));
        p.authinfo = Some(vec![Id::new("digest", "bob:x"), Id::new("ip", "127.0.0.1")]);
        let bytes = p.to_bytes();
        let mut expected = hex("00000001 ffffffffffffffff 00000003 010203 00000002");
        expected.extend_from_slice(&hex("00000006"));
        expected.extend_from_slice(b"digest");
        expected.extend_from_slice(&hex("00000005"));
        expected.extend_from_slice(b"bob:x");
        expected.extend_from_slice(&hex("00000002"));
        expected.extend_from_slice(b"ip");
        expected.extend_from_slice(&hex("00000009"));
        expected.extend_from_slice(b"127.0.0.1");
        assert_eq!(bytes, expected);
        assert_eq!(QuorumPacket::decode(&mut Reader::new(&bytes)).unwrap(), p);
        // An empty vector stays distinct from a null one.
        p.authinfo = Some(vec![]);
        let bytes = p.to_bytes();
        assert_eq!(QuorumPacket::decode(&mut Reader::new(&bytes)).unwrap(), p);
    }

    /// The stream decoder returns `None` for every proper prefix, then the packet and its
    /// exact length even when the next packet's bytes follow.
    #[test]
    fn quorum_packet_streams_one_byte_at_a_time() {
        let mut p = QuorumPacket::new(packet_type::PROPOSAL, 0x2_0000_0001, Some(vec![9; 33]));
        p.authinfo = Some(vec![Id::new("ip", "10.1.2.3")]);
        let bytes = p.to_bytes();
        for cut in 0..bytes.len() {
            assert_eq!(
                QuorumPacket::try_decode(&bytes[..cut], 1024),
                Ok(None),
                "{cut}"
            );
        }
        let mut two = bytes.clone();
        QuorumPacket::new(packet_type::ACK, 1, None).encode(&mut two);
        assert_eq!(
            QuorumPacket::try_decode(&two, 1024),
            Ok(Some((p, bytes.len())))
        );
    }

    /// Rejections as soon as the bad length field is complete: data above `max_len`, negative
    /// lengths other than -1 (data, id count, id strings), and an id count that could not fit.
    #[test]
    fn quorum_packet_rejections() {
        let head = hex("00000002 0000000100000001");
        let with = |tail: &str| {
            let mut b = head.clone();
            b.extend_from_slice(&hex(tail));
            b
        };
        let bad = [
            with("00000401"),                            // data 1025 > max_len 1024
            with("fffffffe"),                            // data -2
            with("80000000"),                            // data i32::MIN
            with("ffffffff fffffffe"),                   // id count -2
            with("ffffffff 00000081"),                   // 129 ids need > 1024 bytes
            with("ffffffff 00000001 fffffffe"),          // scheme -2
            with("ffffffff 00000001 00000000 00000401"), // id 1025 bytes
        ];
        for b in bad {
            assert!(
                matches!(
                    QuorumPacket::try_decode(&b, 1024),
                    Err(DecodeError::BadLength { .. })
                ),
                "{b:02x?}"
            );
        }
        // Within the limits but incomplete: wait for more.
        assert_eq!(QuorumPacket::try_decode(&with("00000400"), 1024), Ok(None));
        assert_eq!(
            QuorumPacket::try_decode(&with("ffffffff 00000080"), 1024),
            Ok(None)
        );
        // The whole-record decoder bounds the count by what is left.
        assert!(matches!(
            QuorumPacket::decode(&mut Reader::new(&with("ffffffff 00000002 00000000"))),
            Err(DecodeError::BadLength { .. })
        ));
        assert!(matches!(
            QuorumPacket::decode(&mut Reader::new(&head)),
            Err(DecodeError::UnexpectedEof { .. })
        ));
    }

    #[test]
    fn packet_type_names() {
        assert_eq!(packet_type::name(packet_type::COMMIT), Some("COMMIT"));
        assert_eq!(packet_type::name(19), Some("INFORMANDACTIVATE"));
        assert_eq!(packet_type::name(0), None);
        assert_eq!(packet_type::name(20), None);
    }
}
