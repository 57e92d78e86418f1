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

use crate::error::DecodeError;
use crate::jute::{Jute, Reader, WriteJute};
use crate::records::Id;

// ---------------------------------------------------------------------------------------------
// zxids (`ZxidUtils`)
// ---------------------------------------------------------------------------------------------

/// The epoch half of a zxid: the high 32 bits, shifted arithmetically like
/// `ZxidUtils.getEpochFromZxid`, so the "no zxid" value -1 has epoch -1.
pub fn epoch_of(zxid: i64) -> i64 {
    zxid >> 32
}

/// The counter half of a zxid: the low 32 bits, always in `0..=0xffff_ffff`.
pub fn counter_of(zxid: i64) -> i64 {
    zxid & 0xffff_ffff
}

/// `epoch << 32 | counter`, with the counter cut to 32 bits as `ZxidUtils.makeZxid` does.
pub fn make_zxid(epoch: i64, counter: i64) -> i64 {
    (epoch << 32) | (counter & 0xffff_ffff)
}

// ---------------------------------------------------------------------------------------------
// Fast Leader Election notifications (§4.3, `FastLeaderElection.Messenger`)
// ---------------------------------------------------------------------------------------------

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
    pub leader: i64,
    /// Proposed leader's last zxid.
    pub zxid: i64,
    /// The sender's logical clock (election round).
    pub election_epoch: i64,
    /// Proposed leader's epoch.
    pub peer_epoch: i64,
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
        leader: i64,
        zxid: i64,
        election_epoch: i64,
        peer_epoch: i64,
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
        out.put_i64(self.leader);
        out.put_i64(self.zxid);
        out.put_i64(self.election_epoch);
        out.put_i64(self.peer_epoch);
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
        let leader = r.read_i64()?;
        let zxid = r.read_i64()?;
        let election_epoch = r.read_i64()?;
        let mut version = 0;
        let mut config = None;
        let peer_epoch = if buf.len() == NOTIFICATION_BYTES_MIN {
            epoch_of(zxid)
        } else {
            let peer_epoch = r.read_i64()?;
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

// ---------------------------------------------------------------------------------------------
// Election connections (§4.2, `QuorumCnxManager`)
// ---------------------------------------------------------------------------------------------

/// First i64 of a V1 election header (0xffff_ffff_ffff_0000).
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// First i64 of a V2 (multi-address) election header (0xffff_ffff_ffff_0001).
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// Largest address blob in an election header (`QuorumCnxManager.maxBuffer`).
pub const ELECTION_ADDRESS_MAX: usize = 2048;
/// Largest election frame payload (`QuorumCnxManager.PACKETMAXSIZE`, 512 KiB).
pub const ELECTION_MESSAGE_MAX: usize = 512 * 1024;

/// The header an initiator writes once on a new election connection; nothing answers it.
///
/// ```text
/// off  size  field
///   0     8  protocolVersion  i64  PROTOCOL_VERSION_V1 or _V2
///   8     8  sid              i64  initiator's myid
///  16     4  addrLen          i32  1..=2048
///  20     n  addr                  UTF-8 "host:port" (V2: several joined by '|'),
///                                  IPv6 hosts in brackets
/// ```
///
/// An old-style header is only the sid (a first i64 ≥ 0). It decodes with `protocol_version
/// == sid` and no addresses, and any header with `protocol_version ≥ 0` encodes as just the
/// 8-byte sid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionHeader {
    pub protocol_version: i64,
    pub sid: i64,
    /// `host:port` strings as sent, split on '|'.
    pub addresses: Vec<String>,
}

impl ElectionHeader {
    /// The V1 header a 3.8 server sends by default (multi-address disabled).
    pub fn v1(sid: i64, address: String) -> ElectionHeader {
        ElectionHeader {
            protocol_version: PROTOCOL_VERSION_V1,
            sid,
            addresses: vec![address],
        }
    }

    /// The header bytes (see the type docs).
    ///
    /// Panics if a new-style header's joined addresses are empty or longer than 2048 bytes:
    /// the peer would reject them, and our own election address comes from validated config.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.protocol_version >= 0 {
            out.put_i64(self.sid);
            return out;
        }
        let blob = self.addresses.join("|");
        assert!(
            (1..=ELECTION_ADDRESS_MAX).contains(&blob.len()),
            "election address blob must be 1..=2048 bytes, got {}",
            blob.len()
        );
        out.put_i64(self.protocol_version);
        out.put_i64(self.sid);
        out.put_buffer(Some(blob.as_bytes()));
        out
    }

    /// Decode a header from the start of `buf`, as `QuorumCnxManager.handleConnection` and
    /// `InitialMessage.parse` do. `Ok(None)`: not all of it has arrived yet. `Ok(Some((h, n)))`:
    /// the header took `n` bytes and election frames follow.
    ///
    /// Errors: a negative first i64 other than V1/V2, an address length outside 1..=2048, or an
    /// address that is not `host:port` with a port in 0..=65535 (Java: "Badly formed address").
    /// Unlike Java we keep wildcard addresses (`0.0.0.0:3888`); resolving them is the glue's job.
    pub fn try_decode(buf: &[u8]) -> Result<Option<(ElectionHeader, usize)>, DecodeError> {
        let Some(first) = be_i64(buf, 0) else {
            return Ok(None);
        };
        if first >= 0 {
            let header = ElectionHeader {
                protocol_version: first,
                sid: first,
                addresses: Vec::new(),
            };
            return Ok(Some((header, 8)));
        }
        if first != PROTOCOL_VERSION_V1 && first != PROTOCOL_VERSION_V2 {
            return Err(DecodeError::Invalid {
                what: "election protocol version",
                value: first,
            });
        }
        let (Some(sid), Some(len)) = (be_i64(buf, 8), be_i32(buf, 16)) else {
            return Ok(None);
        };
        if len <= 0 || len as usize > ELECTION_ADDRESS_MAX {
            return Err(DecodeError::BadLength {
                offset: 16,
                len: len as i64,
            });
        }
        let end = 20 + len as usize;
        let Some(blob) = buf.get(20..end) else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(blob);
        let mut addresses = Vec::new();
        for address in text.split('|') {
            let parts = host_and_port(address)?;
            if parts.len() != 2 {
                return Err(DecodeError::malformed("election address", address));
            }
            parse_port(parts[1], "election address port")?;
            addresses.push(address.to_owned());
        }
        let header = ElectionHeader {
            protocol_version: first,
            sid,
            addresses,
        };
        Ok(Some((header, end)))
    }
}

/// Whether an election connection from `initiator_sid` to `acceptor_sid` survives: only one
/// initiated by the larger sid does (§4.2). The initiator hangs up right after its header when
/// the acceptor's sid is larger; the acceptor closes a connection from a smaller sid and dials
/// back. With equal sids (a misconfiguration) the acceptor does not use it either. Observers
/// that connect with `OBSERVER_ID` (i64::MAX) are given a negative id by the acceptor first,
/// which the caller must do before asking.
pub fn keeps_connection(initiator_sid: i64, acceptor_sid: i64) -> bool {
    initiator_sid > acceptor_sid
}

/// One election frame: `i32 length` (1..=512 KiB) then the payload (a notification).
///
/// Panics on an empty or over-long payload, which the peer would treat as a broken connection.
pub fn encode_election_frame(payload: &[u8]) -> Vec<u8> {
    assert!(
        (1..=ELECTION_MESSAGE_MAX).contains(&payload.len()),
        "election frame payload must be 1..=512 KiB, got {}",
        payload.len()
    );
    let mut out = Vec::with_capacity(4 + payload.len());
    out.put_buffer(Some(payload));
    out
}

/// Decode one election frame from the start of `buf`. `Ok(None)`: incomplete; `Ok(Some((payload,
/// n)))`: the frame took `n` bytes. A length outside 1..=512 KiB is an error
/// (`QuorumCnxManager.RecvWorker` closes the connection), reported as soon as the 4 length bytes
/// are in.
pub fn try_decode_election_frame(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, DecodeError> {
    let Some(len) = be_i32(buf, 0) else {
        return Ok(None);
    };
    if len <= 0 || len as usize > ELECTION_MESSAGE_MAX {
        return Err(DecodeError::BadLength {
            offset: 0,
            len: len as i64,
        });
    }
    let end = 4 + len as usize;
    Ok(buf.get(4..end).map(|payload| (payload.to_vec(), end)))
}

/// `host:port` with the host in brackets when it is an IPv6 literal, as `NetUtils.formatInetAddr`
/// and `QuorumServer.delimitedHostString` print it.
pub fn format_address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn be_i64(buf: &[u8], at: usize) -> Option<i64> {
    let b: [u8; 8] = buf.get(at..at + 8)?.try_into().ok()?;
    Some(i64::from_be_bytes(b))
}

fn be_i32(buf: &[u8], at: usize) -> Option<i32> {
    let b: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(i32::from_be_bytes(b))
}

// ---------------------------------------------------------------------------------------------
// Leader ↔ learner stream (§4.4, `QuorumPacket` in zookeeper.jute, `Leader`, `Learner`)
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Packet payloads (§4.4, §4.5)
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Config string (§4.1, `QuorumMaj`, `QuorumPeer.QuorumServer`)
// ---------------------------------------------------------------------------------------------

/// One `server.<sid>=` line of a config string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuorumMember {
    pub sid: i64,
    /// Without brackets, also for IPv6 literals.
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub observer: bool,
    /// `;clientHost:clientPort`; `None` when the client port comes from static config.
    pub client: Option<(String, u16)>,
}

impl QuorumMember {
    /// `<host>:<qport>:<eport>:participant|observer[;<clientHost>:<clientPort>]`, as
    /// `QuorumServer.toString`.
    pub fn to_config_value(&self) -> String {
        let mut s = format_address(&self.host, self.quorum_port);
        s.push(':');
        s.push_str(&self.election_port.to_string());
        s.push_str(if self.observer {
            ":observer"
        } else {
            ":participant"
        });
        if let Some((host, port)) = &self.client {
            s.push(';');
            s.push_str(&format_address(host, *port));
        }
        s
    }

    /// Parse the value of a `server.<sid>=` line like `QuorumServer(sid, addressStr)`:
    /// `host:qport:eport[:type][;[clientHost:]clientPort]`, the type (trimmed, any case)
    /// defaulting to participant, a bare client port meaning host `0.0.0.0`. Multiple
    /// '|'-separated addresses are rejected, as Java does with multi-address disabled (the
    /// default); so are equal quorum and election ports.
    pub fn parse(sid: i64, value: &str) -> Result<QuorumMember, DecodeError> {
        let (server, client) = match value.split_once(';') {
            None => (value, None),
            Some((_, c)) if c.contains(';') => {
                return Err(DecodeError::malformed("quorum member", value))
            }
            Some((s, c)) => (s, Some(c)),
        };
        if server.contains('|') {
            return Err(DecodeError::malformed(
                "quorum member (multi-address)",
                value,
            ));
        }
        let parts = host_and_port(server)?;
        if !(3..=4).contains(&parts.len()) {
            return Err(DecodeError::malformed("quorum member", value));
        }
        let quorum_port = parse_port(parts[1], "quorum port")?;
        let election_port = parse_port(parts[2], "election port")?;
        if quorum_port == election_port {
            return Err(DecodeError::malformed("quorum member (equal ports)", value));
        }
        let observer = match parts
            .get(3)
            .map(|t| t.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("participant") => false,
            Some("observer") => true,
            Some(_) => return Err(DecodeError::malformed("quorum member type", value)),
        };
        let client = match client {
            None => None,
            Some(c) => {
                let parts = host_and_port(c)?;
                match parts[..] {
                    [port] => Some(("0.0.0.0".to_owned(), parse_port(port, "client port")?)),
                    [host, port] => Some((host.to_owned(), parse_port(port, "client port")?)),
                    _ => return Err(DecodeError::malformed("client address", c)),
                }
            }
        };
        Ok(QuorumMember {
            sid,
            host: parts[0].to_owned(),
            quorum_port,
            election_port,
            observer,
            client,
        })
    }
}

/// An ensemble config: what NEWLEADER and notifications carry and `/zookeeper/config` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    pub members: Vec<QuorumMember>,
    pub version: i64,
}

impl QuorumConfig {
    /// `QuorumMaj.toString`: one `server.<sid>=<value>` line per member in ascending sid order
    /// (what 3.8 was seen to send for small sids), joined by "\n", then `version=<hex>` (no
    /// `0x`, lowercase, two's complement for a negative version as `Long.toHexString`), with no
    /// trailing newline.
    pub fn to_config_string(&self) -> String {
        let mut members: Vec<&QuorumMember> = self.members.iter().collect();
        members.sort_by_key(|m| m.sid);
        let mut s = String::new();
        for m in members {
            s.push_str(&format!("server.{}={}\n", m.sid, m.to_config_value()));
        }
        s.push_str(&format!("version={:x}", self.version));
        s
    }

    /// Parse a config string the way `QuorumPeer.configFromString` does for a majority quorum:
    /// `key=value` lines (blank lines and `#`/`!` comments skipped, whitespace around key and
    /// value trimmed), keys `server.<sid>` and `version` (hex, default 0). Members come back in
    /// ascending sid order, in any order on input.
    ///
    /// Errors: any other key (including hierarchical `group`/`weight`, which we do not
    /// support), a line without '=', a bad sid or version, a malformed member, or a sid given
    /// twice (Java's `Properties` would keep the last one silently). A version is read as
    /// unsigned 64-bit hex so that our own output for a negative version parses back.
    pub fn parse(s: &str) -> Result<QuorumConfig, DecodeError> {
        let mut members: Vec<QuorumMember> = Vec::new();
        let mut version = 0;
        for line in s.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(DecodeError::malformed("config line", line));
            };
            let (key, value) = (key.trim(), value.trim());
            if let Some(sid) = key.strip_prefix("server.") {
                let sid: i64 = sid
                    .parse()
                    .map_err(|_| DecodeError::malformed("server id", key))?;
                if members.iter().any(|m| m.sid == sid) {
                    return Err(DecodeError::malformed("config (duplicate server)", key));
                }
                members.push(QuorumMember::parse(sid, value)?);
            } else if key == "version" {
                version = u64::from_str_radix(value, 16)
                    .map_err(|_| DecodeError::malformed("config version", value))?
                    as i64;
            } else {
                return Err(DecodeError::malformed("config key", key));
            }
        }
        members.sort_by_key(|m| m.sid);
        Ok(QuorumConfig { members, version })
    }

    /// Sids of the participants (voters), in member order.
    pub fn voters(&self) -> impl Iterator<Item = i64> + '_ {
        self.members.iter().filter(|m| !m.observer).map(|m| m.sid)
    }

    pub fn member(&self, sid: i64) -> Option<&QuorumMember> {
        self.members.iter().find(|m| m.sid == sid)
    }
}

/// Split an address like `ConfigUtils.getHostAndPort`: `[v6]:a:b…` gives the bracketed host
/// then the ':'-separated rest; anything else is split on ':'. Unlike Java we require the ':'
/// right after ']' and reject a bracketed host with nothing after it.
fn host_and_port(s: &str) -> Result<Vec<&str>, DecodeError> {
    let Some(bracketed) = s.strip_prefix('[') else {
        return Ok(s.split(':').collect());
    };
    let Some((host, rest)) = bracketed.split_once(']') else {
        return Err(DecodeError::malformed("address (no ']')", s));
    };
    let Some(rest) = rest.strip_prefix(':').filter(|r| !r.is_empty()) else {
        return Err(DecodeError::malformed("address (no port)", s));
    };
    let mut parts = vec![host];
    parts.extend(rest.split(':'));
    Ok(parts)
}

fn parse_port(s: &str, what: &'static str) -> Result<u16, DecodeError> {
    s.parse().map_err(|_| DecodeError::malformed(what, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hex string (spaces ignored) to bytes, for golden vectors written as in the reference.
    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test vector is hex"))
            .collect()
    }

    /// The 138-byte config of §4.1: three participants on 127.0.0.1, version 0.
    fn three_node_config() -> QuorumConfig {
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

    const THREE_NODE_CONFIG: &str = "server.1=127.0.0.1:32881:33881:participant\n\
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

    // --- notifications -----------------------------------------------------------------------

    /// §7: the notification a FOLLOWING sid 1 sent is 182 bytes: 44 + the 138-byte config.
    #[test]
    fn notification_golden_from_follower() {
        let config = three_node_config().to_config_string().into_bytes();
        assert_eq!(config.len(), 138);
        let n = Notification::new(ServerState::Following, 2, 0, 1, 1, Some(config.clone()));
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
        let n = Notification::new(ServerState::Looking, 3, 0x1_0000_0005, 7, 1, None);
        let bytes = n.encode();
        assert_eq!(bytes.len(), 44);
        assert_eq!(&bytes[40..], &[0, 0, 0, 0]);
        assert_eq!(Notification::decode(&bytes).unwrap(), n);
        let empty = Notification::new(ServerState::Looking, 3, 0x1_0000_0005, 7, 1, Some(vec![]));
        assert_eq!(empty, n);
    }

    /// A 28-byte (pre ZOOKEEPER-107) message derives peerEpoch from the zxid (§4.3).
    #[test]
    fn notification_28_bytes_derives_peer_epoch() {
        let bytes = hex("00000002 0000000000000001 0000000300000009 0000000000000004");
        let n = Notification::decode(&bytes).unwrap();
        assert_eq!(n.state, ServerState::Leading);
        assert_eq!(n.peer_epoch, 3);
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
        assert_eq!((n.peer_epoch, n.version, n.config), (5, 0, None));
    }

    /// A version-1 message longer than 40 bytes has no config part; trailing bytes are ignored.
    #[test]
    fn notification_version_1_has_no_config() {
        let mut bytes = Notification::new(ServerState::Observing, 1, 2, 3, 4, None).encode();
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
        let good = Notification::new(ServerState::Looking, 1, 2, 3, 4, Some(b"abc".to_vec()));
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

    // --- election connection -----------------------------------------------------------------

    /// §7 "Election initial message": the V1 header sid 3 sent.
    #[test]
    fn election_header_golden() {
        let h = ElectionHeader::v1(3, "127.0.0.1:33883".into());
        let mut expected = hex("ffffffffffff0000 0000000000000003 0000000f");
        expected.extend_from_slice(b"127.0.0.1:33883");
        assert_eq!(h.encode(), expected);
        assert_eq!(
            ElectionHeader::try_decode(&expected).unwrap(),
            Some((h, expected.len()))
        );
    }

    /// The header decodes only once complete, whichever byte it is cut at, and reports exactly
    /// its own length when a frame follows.
    #[test]
    fn election_header_streams_one_byte_at_a_time() {
        let h = ElectionHeader {
            protocol_version: PROTOCOL_VERSION_V2,
            sid: 7,
            addresses: vec!["[::1]:3888".into(), "10.0.0.7:3888".into()],
        };
        let bytes = h.encode();
        for cut in 0..bytes.len() {
            assert_eq!(ElectionHeader::try_decode(&bytes[..cut]), Ok(None), "{cut}");
        }
        let mut more = bytes.clone();
        more.extend_from_slice(&encode_election_frame(b"x"));
        assert_eq!(
            ElectionHeader::try_decode(&more).unwrap(),
            Some((h, bytes.len()))
        );
    }

    /// A first i64 ≥ 0 is an old-style header holding only the sid.
    #[test]
    fn election_header_old_style() {
        let bytes = 5i64.to_be_bytes();
        let (h, n) = ElectionHeader::try_decode(&bytes).unwrap().unwrap();
        assert_eq!((h.sid, h.protocol_version, n), (5, 5, 8));
        assert!(h.addresses.is_empty());
        assert_eq!(h.encode(), bytes);
    }

    /// Rejections from `InitialMessage.parse`: unknown protocol version, address length 0,
    /// negative or above 2048, and a badly formed address.
    #[test]
    fn election_header_rejections() {
        let mut unknown = hex("ffffffffffff0002 0000000000000003 00000001");
        unknown.push(b'x');
        assert!(matches!(
            ElectionHeader::try_decode(&unknown),
            Err(DecodeError::Invalid { .. })
        ));
        for len in [0i32, -1, 2049, i32::MAX] {
            let mut b = hex("ffffffffffff0000 0000000000000003");
            b.extend_from_slice(&len.to_be_bytes());
            assert!(
                matches!(
                    ElectionHeader::try_decode(&b),
                    Err(DecodeError::BadLength { offset: 16, .. })
                ),
                "{len}"
            );
        }
        for addr in [
            "localhost",
            "a:b",
            "1.2.3.4:70000",
            "::1:3888",
            "[::1]",
            "a:1|",
        ] {
            let mut b = hex("ffffffffffff0000 0000000000000003");
            b.put_buffer(Some(addr.as_bytes()));
            assert!(ElectionHeader::try_decode(&b).is_err(), "{addr}");
        }
        // 2048 bytes is the largest accepted blob.
        let long = format!("{}:1", "h".repeat(2046));
        let h = ElectionHeader::v1(1, long);
        assert!(ElectionHeader::try_decode(&h.encode()).unwrap().is_some());
    }

    #[test]
    #[should_panic(expected = "election address blob")]
    fn election_header_encode_refuses_long_address() {
        ElectionHeader::v1(1, format!("{}:1", "h".repeat(2047))).encode();
    }

    /// §4.2: only connections initiated by the larger sid survive.
    #[test]
    fn larger_sid_keeps_connection() {
        assert!(keeps_connection(3, 1));
        assert!(!keeps_connection(1, 3));
        assert!(!keeps_connection(2, 2));
    }

    /// Frames are `i32 len` + payload, delivered only when complete.
    #[test]
    fn election_frames_stream_and_reject_bad_lengths() {
        let payload = Notification::new(ServerState::Looking, 1, 0, 1, 0, None).encode();
        let frame = encode_election_frame(&payload);
        assert_eq!(&frame[..4], &44i32.to_be_bytes());
        for cut in 0..frame.len() {
            assert_eq!(try_decode_election_frame(&frame[..cut]), Ok(None));
        }
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        assert_eq!(
            try_decode_election_frame(&two).unwrap(),
            Some((payload, frame.len()))
        );
        for len in [0i32, -1, ELECTION_MESSAGE_MAX as i32 + 1] {
            assert!(
                matches!(
                    try_decode_election_frame(&len.to_be_bytes()),
                    Err(DecodeError::BadLength { .. })
                ),
                "{len}"
            );
        }
        let max = (ELECTION_MESSAGE_MAX as i32).to_be_bytes();
        assert_eq!(try_decode_election_frame(&max), Ok(None));
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        assert_eq!(format_address("::1", 3888), "[::1]:3888");
        assert_eq!(format_address("10.0.0.1", 3888), "10.0.0.1:3888");
    }

    // --- quorum packets ----------------------------------------------------------------------

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

    // --- payloads ----------------------------------------------------------------------------

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

    // --- config string -----------------------------------------------------------------------

    /// §4.1: the 138-byte config 3.8 sent for a three-node ensemble, both ways.
    #[test]
    fn config_string_golden() {
        let cfg = three_node_config();
        let s = cfg.to_config_string();
        assert_eq!(s, THREE_NODE_CONFIG);
        assert_eq!(s.len(), 138);
        assert_eq!(QuorumConfig::parse(&s), Ok(cfg.clone()));
        assert_eq!(cfg.voters().collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    /// Observers, client addresses, IPv6 brackets, hex versions and member order.
    #[test]
    fn config_string_variants_round_trip() {
        let cfg = QuorumConfig {
            members: vec![
                QuorumMember {
                    sid: 12,
                    host: "fe80::1".into(),
                    quorum_port: 2888,
                    election_port: 3888,
                    observer: true,
                    client: Some(("::1".into(), 2181)),
                },
                QuorumMember {
                    sid: 2,
                    host: "zk2.example".into(),
                    quorum_port: 2888,
                    election_port: 3888,
                    observer: false,
                    client: Some(("0.0.0.0".into(), 2182)),
                },
            ],
            version: 0x1_0000_0000,
        };
        let s = cfg.to_config_string();
        assert_eq!(
            s,
            "server.2=zk2.example:2888:3888:participant;0.0.0.0:2182\n\
             server.12=[fe80::1]:2888:3888:observer;[::1]:2181\n\
             version=100000000"
        );
        let parsed = QuorumConfig::parse(&s).unwrap();
        assert_eq!(parsed.members[0], cfg.members[1]);
        assert_eq!(parsed.members[1], cfg.members[0]);
        assert_eq!(parsed.version, cfg.version);
        assert_eq!(parsed.voters().collect::<Vec<_>>(), vec![2]);
        assert_eq!(parsed.member(12).map(|m| m.observer), Some(true));
        let negative = QuorumConfig {
            members: vec![],
            version: -1,
        };
        assert_eq!(negative.to_config_string(), "version=ffffffffffffffff");
        assert_eq!(
            QuorumConfig::parse(&negative.to_config_string()),
            Ok(negative)
        );
    }

    /// What `QuorumServer` also accepts: no type (participant), type in any case, a bare
    /// client port, blank lines, comments and padding.
    #[test]
    fn config_parse_is_as_lenient_as_java() {
        let cfg = QuorumConfig::parse(
            "# static part\n\n  server.1 = h1:1:2 \r\nserver.2=h2:1:2: Observer ;2181\nversion=a\n",
        )
        .unwrap();
        assert_eq!(cfg.version, 10);
        assert!(!cfg.members[0].observer);
        assert_eq!(cfg.members[0].client, None);
        assert!(cfg.members[1].observer);
        assert_eq!(cfg.members[1].client, Some(("0.0.0.0".into(), 2181)));
        assert_eq!(
            QuorumConfig::parse(""),
            Ok(QuorumConfig {
                members: vec![],
                version: 0
            })
        );
    }

    #[test]
    fn config_parse_rejections() {
        for bad in [
            "server.1=h:1",
            "server.1=h:1:2:3:4",
            "server.1=h:1:1",
            "server.1=h:1:2:voter",
            "server.1=h:1:70000",
            "server.1=h:1:2;c:3;4",
            "server.1=h:1:2;a:b:3",
            "server.1=h:1:2|h2:1:2",
            "server.1=[::1:1:2",
            "server.x=h:1:2",
            "server.1=h:1:2\nserver.1=h:3:4",
            "group.1=1:2",
            "weight.1=1",
            "clientPort=2181",
            "version=xyz",
            "server.1",
        ] {
            assert!(QuorumConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
