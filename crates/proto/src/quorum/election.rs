//! Election connections (§4.2, `QuorumCnxManager`): the header an initiator sends once, which
//! side keeps a connection, and the length-prefixed frames that carry notifications.

use super::{be_i32, be_i64, host_and_port};
use crate::error::DecodeError;
use crate::jute::WriteJute;

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
            let parts = host_and_port(address)
                .map_err(|_| DecodeError::malformed("election address", address))?;
            if parts.len() != 2 || parts[1].parse::<u16>().is_err() {
                return Err(DecodeError::malformed("election address", address));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Epoch, ServerId, Zxid};
    use crate::quorum::tests::hex;
    use crate::quorum::{Notification, ServerState};

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
        let payload = Notification::new(
            ServerState::Looking,
            ServerId(1),
            Zxid(0),
            1,
            Epoch(0),
            None,
        )
        .encode();
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
}
