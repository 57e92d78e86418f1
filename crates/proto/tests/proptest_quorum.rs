//! Property tests for the quorum wire formats (`corral_proto::quorum`, reference §4):
//!
//! (a) notifications, election headers and frames, quorum packets, LearnerInfo, the smaller
//!     payloads and config strings round-trip encode → decode to an equal value, and stream
//!     decoders consume exactly the bytes the encoder produced, whatever follows;
//! (b) a stream decoder fed any prefix of a valid encoding asks for more bytes instead of
//!     failing or guessing;
//! (c) decoding arbitrary bytes never panics (each decoder is handed raw input from a peer).

use corral_proto::jute::Reader;
use corral_proto::quorum::*;
use corral_proto::records::Id;
use corral_proto::{Epoch, ServerId, Zxid};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn state() -> impl Strategy<Value = ServerState> {
    prop_oneof![
        Just(ServerState::Looking),
        Just(ServerState::Following),
        Just(ServerState::Leading),
        Just(ServerState::Observing),
    ]
}

fn notification() -> impl Strategy<Value = Notification> {
    (
        state(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        option::of(vec(any::<u8>(), 0..300)),
    )
        .prop_map(|(s, leader, zxid, ee, pe, config)| {
            Notification::new(s, ServerId(leader), Zxid(zxid), ee, Epoch(pe), config)
        })
}

fn address() -> impl Strategy<Value = String> {
    (
        prop_oneof!["[a-z0-9.-]{1,40}", "[0-9a-f:]{2,20}:[0-9a-f]{1,4}"],
        any::<u16>(),
    )
        .prop_map(|(host, port)| format_address(&host, port))
}

fn election_header() -> impl Strategy<Value = ElectionHeader> {
    prop_oneof![
        (any::<i64>(), address()).prop_map(|(sid, a)| ElectionHeader::v1(sid, a)),
        (any::<i64>(), vec(address(), 1..5)).prop_map(|(sid, addresses)| ElectionHeader {
            protocol_version: PROTOCOL_VERSION_V2,
            sid,
            addresses,
        }),
        (0..i64::MAX).prop_map(|sid| ElectionHeader {
            protocol_version: sid,
            sid,
            addresses: vec![],
        }),
    ]
}

fn quorum_packet() -> impl Strategy<Value = QuorumPacket> {
    (
        any::<i32>(),
        any::<i64>(),
        option::of(vec(any::<u8>(), 0..200)),
        option::of(vec(("[a-z]{0,8}", "[ -~]{0,20}"), 0..4)),
    )
        .prop_map(|(t, zxid, data, ids)| QuorumPacket {
            r#type: t,
            zxid,
            data,
            authinfo: ids.map(|v| v.iter().map(|(s, i)| Id::new(s, i)).collect()),
        })
}

fn member() -> impl Strategy<Value = QuorumMember> {
    (
        any::<i64>(),
        prop_oneof!["[a-z0-9.-]{1,20}", "[0-9a-f]{1,4}::[0-9a-f]{1,4}"],
        any::<u16>(),
        any::<u16>(),
        any::<bool>(),
        option::of(("[a-z0-9.]{1,20}", any::<u16>())),
    )
        .prop_filter("ports must differ", |m| m.2 != m.3)
        .prop_map(|(sid, host, qp, ep, observer, client)| QuorumMember {
            sid,
            host,
            quorum_port: qp,
            election_port: ep,
            observer,
            client,
        })
}

proptest! {
    #[test]
    fn notification_round_trips(n in notification()) {
        let bytes = n.encode();
        prop_assert_eq!(bytes.len(), 44 + n.config.as_ref().map_or(0, Vec::len));
        prop_assert_eq!(Notification::decode(&bytes), Ok(n));
    }

    #[test]
    fn election_header_round_trips_and_streams(h in election_header(), tail in vec(any::<u8>(), 0..16)) {
        let bytes = h.encode();
        for cut in 0..bytes.len() {
            prop_assert_eq!(ElectionHeader::try_decode(&bytes[..cut]), Ok(None));
        }
        let mut more = bytes.clone();
        more.extend_from_slice(&tail);
        prop_assert_eq!(ElectionHeader::try_decode(&more), Ok(Some((h, bytes.len()))));
    }

    #[test]
    fn election_frame_round_trips(payload in vec(any::<u8>(), 1..600), tail in vec(any::<u8>(), 0..8)) {
        let mut bytes = encode_election_frame(&payload);
        let len = bytes.len();
        prop_assert_eq!(try_decode_election_frame(&bytes[..len - 1]), Ok(None));
        bytes.extend_from_slice(&tail);
        prop_assert_eq!(try_decode_election_frame(&bytes), Ok(Some((payload, len))));
    }

    #[test]
    fn quorum_packet_round_trips_and_streams(p in quorum_packet(), tail in vec(any::<u8>(), 0..24)) {
        let bytes = p.to_bytes();
        prop_assert_eq!(QuorumPacket::decode(&mut Reader::new(&bytes)), Ok(p.clone()));
        for cut in 0..bytes.len() {
            prop_assert_eq!(QuorumPacket::try_decode(&bytes[..cut], 1024), Ok(None));
        }
        let mut more = bytes.clone();
        more.extend_from_slice(&tail);
        prop_assert_eq!(QuorumPacket::try_decode(&more, 1024), Ok(Some((p, bytes.len()))));
    }

    #[test]
    fn learner_info_round_trips(sid in any::<i64>(), pv in any::<i32>(), cv in any::<i64>()) {
        let info = LearnerInfo { sid, protocol_version: pv, config_version: cv };
        prop_assert_eq!(LearnerInfo::decode(&info.to_bytes()), Ok(info));
    }

    #[test]
    fn payloads_round_trip(
        touches in vec((any::<i64>(), any::<i32>()), 0..20),
        session_id in any::<i64>(),
        cxid in any::<i32>(),
        op in any::<i32>(),
        body in vec(any::<u8>(), 0..64),
        valid in any::<bool>(),
    ) {
        prop_assert_eq!(decode_session_touches(&encode_session_touches(&touches)), Ok(touches));
        prop_assert_eq!(decode_i32_data(&encode_i32_data(cxid)), Ok(cxid));
        let req = ForwardedRequest { session_id, cxid, op_type: op, body };
        prop_assert_eq!(ForwardedRequest::decode(&req.to_bytes()), Ok(req));
        let rv = RevalidateRequest { session_id, timeout: cxid };
        prop_assert_eq!(RevalidateRequest::decode(&rv.to_bytes()), Ok(rv));
        let rr = RevalidateReply { session_id, valid };
        prop_assert_eq!(RevalidateReply::decode(&rr.to_bytes()), Ok(rr));
    }

    #[test]
    fn config_round_trips(members in vec(member(), 0..6), version in any::<i64>()) {
        let mut members = members;
        members.sort_by_key(|m| m.sid);
        members.dedup_by_key(|m| m.sid);
        let cfg = QuorumConfig { members, version };
        prop_assert_eq!(QuorumConfig::parse(&cfg.to_config_string()), Ok(cfg));
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..256), max_len in 0usize..4096) {
        let _ = Notification::decode(&bytes);
        let _ = ElectionHeader::try_decode(&bytes);
        let _ = try_decode_election_frame(&bytes);
        let _ = QuorumPacket::try_decode(&bytes, max_len);
        let _ = QuorumPacket::decode(&mut Reader::new(&bytes));
        let _ = LearnerInfo::decode(&bytes);
        let _ = decode_session_touches(&bytes);
        let _ = ForwardedRequest::decode(&bytes);
        let _ = RevalidateRequest::decode(&bytes);
        let _ = RevalidateReply::decode(&bytes);
        let _ = decode_designated_leader(&bytes);
        let _ = QuorumConfig::parse(&String::from_utf8_lossy(&bytes));
    }

    /// Random bytes behind a valid header prefix reach the deeper branches (config length,
    /// address blob, id vectors) instead of failing on the first field.
    #[test]
    fn mutated_valid_bytes_never_panic(
        n in notification(),
        h in election_header(),
        p in quorum_packet(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        for mut bytes in [n.encode(), h.encode(), p.to_bytes()] {
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let _ = Notification::decode(&bytes);
            let _ = ElectionHeader::try_decode(&bytes);
            let _ = QuorumPacket::try_decode(&bytes, 1 << 20);
            let _ = LearnerInfo::decode(&bytes);
        }
    }

    #[test]
    fn random_text_configs_never_panic(s in "(server\\.[0-9]{1,3}=[a-z0-9:;\\[\\]|. ]{0,30}\n|version=[0-9a-fx]{0,18}\n|[ -~]{0,20}\n){0,5}") {
        let _ = QuorumConfig::parse(&s);
    }
}
