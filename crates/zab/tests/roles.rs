//! Scenario tests of the ZAB roles driven by hand-built packets: a `Peer` is elected with
//! fabricated notifications, then talks to fake learners or a fake leader. Each test states
//! the ZooKeeper behaviour it pins (reference §4.5–4.8, §4.11; `Leader`, `LearnerHandler`,
//! `Learner`, `Follower`).

use corral_proto::quorum::{
    decode_i32_data, encode_i32_data, encode_session_touches, packet_type as pt, ForwardedRequest,
    LearnerInfo, Notification, QuorumPacket, ServerState,
};
use corral_proto::{Epoch, ServerId, SessionId, Zxid};
use corral_zab::{Durable, Input, Output, Peer, PeerConfig};

const TICK: u64 = 2000;
const CONFIG: &[u8] = b"server.1=a:1:11:participant\nserver.2=b:2:12:participant\nserver.3=c:3:13:participant\nserver.4=d:4:14:observer\nversion=0";

fn cfg(my_sid: i64) -> PeerConfig {
    PeerConfig {
        my_sid: ServerId(my_sid),
        members: vec![
            (ServerId(1), false),
            (ServerId(2), false),
            (ServerId(3), false),
            (ServerId(4), true),
        ],
        tick_ms: TICK,
        init_limit: 10,
        sync_limit: 5,
        config: CONFIG.to_vec(),
        commit_log_count: 500,
        reconfig_enabled: false,
        txn_log_sync: true,
    }
}

fn txn(z: i64) -> Vec<u8> {
    format!("txn-{z:x}").into_bytes()
}

/// A server that logged and applied epoch-1 txns 1..=n.
fn durable(n: i64) -> Durable {
    let log: Vec<(Zxid, Vec<u8>)> = (1..=n)
        .map(|c| (Zxid((1 << 32) | c), txn((1 << 32) | c)))
        .collect();
    let last = log.last().map_or(0, |(z, _)| z.0);
    Durable {
        last_zxid: Zxid(last),
        last_applied_zxid: Zxid(last),
        accepted_epoch: Epoch(1),
        current_epoch: Epoch(1),
        committed_log: log,
        log_tail: Vec::new(),
    }
}

fn drain(p: &mut Peer) -> Vec<Output> {
    std::iter::from_fn(|| p.poll_output()).collect()
}

fn pkt(kind: i32, zxid: i64, data: Option<Vec<u8>>) -> QuorumPacket {
    QuorumPacket::new(kind, zxid, data)
}

/// The learner-side packets sent to `conn`, as (type, zxid).
fn to_conn(out: &[Output], conn: u64) -> Vec<(i32, i64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::SendLearner { conn: c, p } if *c == conn => Some((p.r#type, p.zxid)),
            _ => None,
        })
        .collect()
}

fn to_leader(out: &[Output]) -> Vec<(i32, i64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::SendLeader(p) => Some((p.r#type, p.zxid)),
            _ => None,
        })
        .collect()
}

/// Run an election in which every other voter votes for `leader` (whose zxid/epoch are
/// given), then let the finalize wait pass. Returns the time after the decision.
fn elect(p: &mut Peer, now: u64, leader: i64, zxid: i64, epoch: i64) -> u64 {
    for from in [1, 2, 3] {
        let n = Notification::new(
            ServerState::Looking,
            ServerId(leader),
            Zxid(zxid),
            1,
            Epoch(epoch),
            Some(CONFIG.to_vec()),
        );
        let from = ServerId(from);
        p.handle(now, Input::Election { from, n });
    }
    let t = now + 1000;
    p.handle_timeout(t);
    t
}

/// A leader (sid 1) with history 0x100000001..=06, elected at t.
fn leader() -> (Peer, u64) {
    let mut p = Peer::new(cfg(1), durable(6), 0);
    let t = elect(&mut p, 0, 1, 0x1_0000_0006, 1);
    assert_eq!(p.state(), ServerState::Leading);
    drain(&mut p);
    (p, t)
}

fn info(kind: i32, sid: i64, accepted: i64) -> QuorumPacket {
    let li = LearnerInfo {
        sid,
        protocol_version: 0x10000,
        config_version: 0,
    };
    pkt(kind, accepted << 32, Some(li.to_bytes()))
}

fn ack_epoch(zxid: i64, epoch: i32) -> QuorumPacket {
    pkt(pt::ACKEPOCH, zxid, Some(encode_i32_data(epoch)))
}

/// Connect learner `sid` on `conn` and send FOLLOWERINFO with accepted epoch 1.
fn connect(p: &mut Peer, t: u64, conn: u64, sid: i64) {
    p.handle(t, Input::LearnerConnected { conn });
    let kind = if sid == 4 {
        pt::OBSERVERINFO
    } else {
        pt::FOLLOWERINFO
    };
    p.handle(
        t,
        Input::LearnerPacket {
            conn,
            p: info(kind, sid, 1),
        },
    );
}

/// Leader 1 established in epoch 2 with follower 2 on conn 10 (in sync at 0x100000006).
fn established_leader() -> (Peer, u64) {
    let (mut p, t) = leader();
    connect(&mut p, t, 10, 2);
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: ack_epoch(0x1_0000_0006, 1),
        },
    );
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: pkt(pt::ACK, 0x2_0000_0000, None),
        },
    );
    let out = drain(&mut p);
    assert!(out.contains(&Output::StartServing));
    (p, t)
}

fn req(op: i32) -> ForwardedRequest {
    ForwardedRequest {
        session_id: 0x77,
        cxid: 1,
        op_type: op,
        body: Vec::new(),
    }
}

#[test]
fn leader_discovery_chooses_epoch_then_diffs_peer_inside_the_committed_log() {
    // §4.5: epoch = max(accepted)+1 once a quorum connected, persisted before LEADERINFO;
    // currentEpoch persisted on the ACKEPOCH quorum. §4.6 [V]: DIFF 0x100000006 then
    // PROPOSAL/COMMIT 0x…03..06 for peer 0x100000002, then NEWLEADER(epoch<<32, config).
    let (mut p, t) = leader();
    connect(&mut p, t, 10, 2);
    let out = drain(&mut p);
    assert_eq!(out[0], Output::WriteAcceptedEpoch(Epoch(2)));
    assert_eq!(to_conn(&out, 10), vec![(pt::LEADERINFO, 0x2_0000_0000)]);
    let li = out.iter().find_map(|o| match o {
        Output::SendLearner { p, .. } => p.data.clone(),
        _ => None,
    });
    assert_eq!(decode_i32_data(&li.unwrap()).unwrap(), 0x10000);

    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: ack_epoch(0x1_0000_0002, 1),
        },
    );
    let out = drain(&mut p);
    assert_eq!(out[0], Output::WriteCurrentEpoch(Epoch(2)));
    let mut expect = vec![(pt::DIFF, 0x1_0000_0006)];
    for c in 3..=6 {
        expect.push((pt::PROPOSAL, 0x1_0000_0000 | c));
        expect.push((pt::COMMIT, 0x1_0000_0000 | c));
    }
    expect.push((pt::NEWLEADER, 0x2_0000_0000));
    assert_eq!(to_conn(&out, 10), expect);
    let nl = out.iter().rev().find_map(|o| match o {
        Output::SendLearner { p, .. } => p.data.clone(),
        _ => None,
    });
    assert_eq!(nl.unwrap(), CONFIG);

    // NEWLEADER ACK from 2 plus our own durable log: quorum, established, UPTODATE.
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: pkt(pt::ACK, 0x2_0000_0000, None),
        },
    );
    let out = drain(&mut p);
    assert!(out.contains(&Output::StartServing));
    assert_eq!(to_conn(&out, 10), vec![(pt::UPTODATE, -1)]);
    assert_eq!(p.epoch(), Epoch(2));
    assert_eq!(p.synced_learners(), vec![2]);
}

#[test]
fn leader_rejects_a_more_recent_learner_during_epoch_ack() {
    // `waitForEpochAck`: same current epoch and a larger zxid ⇒ the learner is dropped.
    let (mut p, t) = leader();
    connect(&mut p, t, 10, 2);
    drain(&mut p);
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: ack_epoch(0x1_0000_0009, 1),
        },
    );
    let out = drain(&mut p);
    assert_eq!(out, vec![Output::CloseLearner { conn: 10 }]);
}

#[test]
fn late_learners_get_trunc_or_snap() {
    // §4.6 rule 3: a peer ahead of the committed log in the same epoch gets TRUNC(max);
    // rule 6: a peer before it gets SNAP, written by the glue at the applied state.
    let (mut p, t) = established_leader();
    connect(&mut p, t, 11, 3);
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 11,
            p: ack_epoch(0x1_0000_0008, -1),
        },
    );
    let out = drain(&mut p);
    assert_eq!(
        to_conn(&out, 11),
        vec![
            (pt::LEADERINFO, 0x2_0000_0000),
            (pt::TRUNC, 0x1_0000_0006),
            (pt::NEWLEADER, 0x2_0000_0000)
        ]
    );
    // An observer far behind a leader whose committed log was cut to 2 entries, with txn-log
    // sync disabled (`snapshotSizeFactor` < 0; rule 5 below).
    let mut c = cfg(1);
    c.commit_log_count = 2;
    c.txn_log_sync = false;
    let mut p = Peer::new(c, durable(6), 0);
    let t = elect(&mut p, 0, 1, 0x1_0000_0006, 1);
    connect(&mut p, t, 10, 2);
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: ack_epoch(0x1_0000_0006, 1),
        },
    );
    connect(&mut p, t, 12, 4);
    drain(&mut p);
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 12,
            p: ack_epoch(0x1_0000_0001, 1),
        },
    );
    let out = drain(&mut p);
    let snap = out
        .iter()
        .position(|o| *o == Output::SendSnapshot { conn: 12 })
        .unwrap();
    let nl = out.iter().position(
        |o| matches!(o, Output::SendLearner { conn: 12, p } if p.r#type == pt::NEWLEADER),
    );
    assert!(snap < nl.unwrap());
}

#[test]
fn commits_wait_for_quorum_and_go_in_zxid_order() {
    // `Leader.tryToCommit`: a proposal commits only with a quorum of acks (ours counts only
    // after our own Synced) and only after every lower zxid committed.
    let (mut p, t) = established_leader();
    p.handle(t, Input::Submit(req(1), None));
    p.handle(t, Input::Submit(req(1), None));
    let out = drain(&mut p);
    let zs: Vec<i64> = out
        .iter()
        .filter_map(|o| match o {
            Output::Prepare { zxid, .. } => Some(zxid.0),
            _ => None,
        })
        .collect();
    assert_eq!(zs, vec![0x2_0000_0001, 0x2_0000_0002]);
    // Prepared out of order: proposals still go out in zxid order.
    p.handle(
        t,
        Input::Prepared {
            txn: txn(0x2_0000_0002),
            zxid: Zxid(0x2_0000_0002),
        },
    );
    assert!(to_conn(&drain(&mut p), 10).is_empty());
    p.handle(
        t,
        Input::Prepared {
            txn: txn(0x2_0000_0001),
            zxid: Zxid(0x2_0000_0001),
        },
    );
    let out = drain(&mut p);
    assert_eq!(
        to_conn(&out, 10),
        vec![(pt::PROPOSAL, 0x2_0000_0001), (pt::PROPOSAL, 0x2_0000_0002)]
    );
    assert_eq!(p.outstanding_proposals(), 2);
    // Follower acks the second: no commit (first not acked, our own log not durable).
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: pkt(pt::ACK, 0x2_0000_0002, None),
        },
    );
    assert!(drain(&mut p).is_empty());
    // Our log durable: the second has a quorum but waits for the first.
    p.handle(
        t,
        Input::Synced {
            zxid: Zxid(0x2_0000_0002),
        },
    );
    assert!(drain(&mut p).is_empty());
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: pkt(pt::ACK, 0x2_0000_0001, None),
        },
    );
    let out = drain(&mut p);
    let commits: Vec<i64> = out
        .iter()
        .filter_map(|o| match o {
            Output::Commit { zxid, .. } => Some(zxid.0),
            _ => None,
        })
        .collect();
    assert_eq!(commits, vec![0x2_0000_0001, 0x2_0000_0002]);
    assert_eq!(
        to_conn(&out, 10),
        vec![(pt::COMMIT, 0x2_0000_0001), (pt::COMMIT, 0x2_0000_0002)]
    );
    assert_eq!(p.last_committed(), 0x2_0000_0002);
}

#[test]
fn leader_never_counts_its_own_ack_before_synced() {
    let (mut p, t) = established_leader();
    p.handle(t, Input::Submit(req(1), None));
    drain(&mut p);
    p.handle(
        t,
        Input::Prepared {
            txn: txn(1),
            zxid: Zxid(0x2_0000_0001),
        },
    );
    let out = drain(&mut p);
    assert!(out.contains(&Output::Append {
        zxid: Zxid(0x2_0000_0001),
        txn: txn(1)
    }));
    // Own Synced alone is one of three voters: no commit.
    p.handle(
        t,
        Input::Synced {
            zxid: Zxid(0x2_0000_0001),
        },
    );
    assert!(drain(&mut p)
        .iter()
        .all(|o| !matches!(o, Output::Commit { .. })));
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: pkt(pt::ACK, 0x2_0000_0001, None),
        },
    );
    assert!(drain(&mut p)
        .iter()
        .any(|o| matches!(o, Output::Commit { .. })));
}

#[test]
fn sync_is_answered_after_outstanding_proposals_commit_and_a_quorum_ping_round() {
    // `Leader.processSync` answers SYNC(0) right away when nothing is outstanding, else after
    // the last proposal outstanding at the time commits. corral also waits for a quorum to
    // answer a PING sent after the sync arrived (ZOOKEEPER-1675): a leader deposed without
    // knowing it (a long pause) must not answer from its stale state.
    let (mut p, t) = established_leader();
    let sync = |p: &mut Peer| {
        let r = pkt(pt::REQUEST, -1, Some(req(9).to_bytes()));
        p.handle(t, Input::LearnerPacket { conn: 10, p: r });
    };
    let ping_back = |p: &mut Peer| {
        p.handle(
            t,
            Input::LearnerPacket {
                conn: 10,
                p: pkt(pt::PING, 0, None),
            },
        );
    };
    sync(&mut p);
    assert_eq!(
        to_conn(&drain(&mut p), 10),
        vec![(pt::PING, 0x2_0000_0000)],
        "a PING round, no SYNC yet"
    );
    ping_back(&mut p);
    assert_eq!(to_conn(&drain(&mut p), 10), vec![(pt::SYNC, 0)]);

    // A PING answered for a round sent before the sync arrived does not count.
    p.handle_timeout(t + TICK / 2);
    drain(&mut p);
    sync(&mut p);
    drain(&mut p);
    ping_back(&mut p);
    assert!(
        to_conn(&drain(&mut p), 10).is_empty(),
        "answer to the older round"
    );
    ping_back(&mut p);
    assert_eq!(to_conn(&drain(&mut p), 10), vec![(pt::SYNC, 0)]);

    p.handle(t, Input::Submit(req(1), None));
    p.handle(
        t,
        Input::Prepared {
            txn: txn(1),
            zxid: Zxid(0x2_0000_0001),
        },
    );
    drain(&mut p);
    sync(&mut p);
    p.handle(t, Input::Submit(req(9), None));
    assert_eq!(p.pending_syncs(), 2);
    assert!(!to_conn(&drain(&mut p), 10).contains(&(pt::SYNC, 0)));
    ping_back(&mut p);
    ping_back(&mut p);
    p.handle(
        t,
        Input::Synced {
            zxid: Zxid(0x2_0000_0001),
        },
    );
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: pkt(pt::ACK, 0x2_0000_0001, None),
        },
    );
    let out = drain(&mut p);
    assert_eq!(
        to_conn(&out, 10),
        vec![(pt::COMMIT, 0x2_0000_0001), (pt::SYNC, 0)]
    );
    assert!(out.contains(&Output::SyncDone));
}

#[test]
fn a_sync_waiting_for_its_ping_round_holds_back_later_commits() {
    // The sync's reply must reach its session before the reply to a write the session sent
    // after it, so the write's COMMIT waits for the sync's PING round.
    let (mut p, t) = established_leader();
    let r = pkt(pt::REQUEST, -1, Some(req(9).to_bytes()));
    p.handle(t, Input::LearnerPacket { conn: 10, p: r });
    drain(&mut p);
    p.handle(t, Input::Submit(req(1), None));
    p.handle(
        t,
        Input::Prepared {
            txn: txn(1),
            zxid: Zxid(0x2_0000_0001),
        },
    );
    p.handle(
        t,
        Input::Synced {
            zxid: Zxid(0x2_0000_0001),
        },
    );
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: pkt(pt::ACK, 0x2_0000_0001, None),
        },
    );
    let out = drain(&mut p);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Commit { .. })),
        "held back: {out:?}"
    );
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: pkt(pt::PING, 0, None),
        },
    );
    let out = drain(&mut p);
    assert_eq!(
        to_conn(&out, 10),
        vec![(pt::SYNC, 0), (pt::COMMIT, 0x2_0000_0001)]
    );
    assert!(out.iter().any(|o| matches!(o, Output::Commit { .. })));
}

#[test]
fn leader_pings_and_abdicates_without_a_synced_quorum() {
    // `Leader.lead`: PING(lastProposed) every tick/2; a learner silent for syncLimit ticks is
    // dropped and, lacking a quorum, the leader goes back to LOOKING.
    let (mut p, t) = established_leader();
    p.handle_timeout(t + TICK / 2);
    assert_eq!(to_conn(&drain(&mut p), 10), vec![(pt::PING, 0x2_0000_0000)]);
    let mut now = t;
    while p.state() == ServerState::Leading && now < t + 20 * TICK {
        now = p.poll_timeout().unwrap().max(now + 1);
        p.handle_timeout(now);
    }
    assert_eq!(p.state(), ServerState::Looking);
    assert!(
        now > t + 5 * TICK && now <= t + 7 * TICK,
        "abdicated at {now}"
    );
    let out = drain(&mut p);
    assert!(out.contains(&Output::CloseLearner { conn: 10 }));
    assert!(out.contains(&Output::StopServing));
}

#[test]
fn leader_gives_up_without_a_quorum_in_init_limit() {
    let (mut p, t) = leader();
    p.handle_timeout(t + 10 * TICK);
    assert_eq!(p.state(), ServerState::Looking);
}

// ---- learner side -----------------------------------------------------------------------

/// Follower 2 (history 0x100000001..=02) elected to follow 3.
fn follower() -> (Peer, u64) {
    let mut p = Peer::new(cfg(2), durable(2), 0);
    let t = elect(&mut p, 0, 3, 0x1_0000_0006, 1);
    assert_eq!(p.state(), ServerState::Following);
    let out = drain(&mut p);
    assert!(out.contains(&Output::ConnectToLeader { sid: ServerId(3) }));
    p.handle(t, Input::LeaderConnected);
    assert_eq!(
        to_leader(&drain(&mut p)),
        vec![(pt::FOLLOWERINFO, 0x1_0000_0000)]
    );
    (p, t)
}

fn lp(p: &mut Peer, t: u64, kind: i32, zxid: i64, data: Option<Vec<u8>>) -> Vec<Output> {
    p.handle(t, Input::LeaderPacket(pkt(kind, zxid, data)));
    drain(p)
}

#[test]
fn follower_acks_newleader_first_and_proposals_only_after_synced() {
    // §4.5 + §4.11: LEADERINFO ⇒ persist acceptedEpoch, ACKEPOCH(lastZxid, currentEpoch);
    // sync-phase proposals are logged at NEWLEADER; the NEWLEADER ACK waits for them to be
    // durable and precedes every proposal ACK; UPTODATE commits and starts serving.
    let (mut p, t) = follower();
    let out = lp(
        &mut p,
        t,
        pt::LEADERINFO,
        0x2_0000_0000,
        Some(encode_i32_data(0x10000)),
    );
    assert_eq!(out[0], Output::WriteAcceptedEpoch(Epoch(2)));
    assert_eq!(to_leader(&out), vec![(pt::ACKEPOCH, 0x1_0000_0002)]);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::SendLeader(q) if q.data == Some(encode_i32_data(1)))));
    assert!(lp(&mut p, t, pt::DIFF, 0x1_0000_0003, None).is_empty());
    lp(
        &mut p,
        t,
        pt::PROPOSAL,
        0x1_0000_0003,
        Some(txn(0x1_0000_0003)),
    );
    lp(&mut p, t, pt::COMMIT, 0x1_0000_0003, None);
    lp(
        &mut p,
        t,
        pt::PROPOSAL,
        0x2_0000_0001,
        Some(txn(0x2_0000_0001)),
    );
    let out = lp(
        &mut p,
        t,
        pt::NEWLEADER,
        0x2_0000_0000,
        Some(CONFIG.to_vec()),
    );
    assert_eq!(
        out,
        vec![
            Output::Append {
                zxid: Zxid(0x1_0000_0003),
                txn: txn(0x1_0000_0003)
            },
            Output::Append {
                zxid: Zxid(0x2_0000_0001),
                txn: txn(0x2_0000_0001)
            },
        ]
    );
    // A proposal between NEWLEADER and UPTODATE is logged but not acked yet.
    let out = lp(
        &mut p,
        t,
        pt::PROPOSAL,
        0x2_0000_0002,
        Some(txn(0x2_0000_0002)),
    );
    assert_eq!(to_leader(&out), vec![]);
    p.handle(
        t,
        Input::Synced {
            zxid: Zxid(0x2_0000_0001),
        },
    );
    let out = drain(&mut p);
    assert_eq!(out[0], Output::WriteCurrentEpoch(Epoch(2)));
    assert_eq!(
        to_leader(&out),
        vec![
            (pt::ACK, 0x2_0000_0000),
            (pt::ACK, 0x1_0000_0003),
            (pt::ACK, 0x2_0000_0001)
        ]
    );
    p.handle(
        t,
        Input::Synced {
            zxid: Zxid(0x2_0000_0002),
        },
    );
    assert_eq!(to_leader(&drain(&mut p)), vec![(pt::ACK, 0x2_0000_0002)]);
    let out = lp(&mut p, t, pt::UPTODATE, -1, None);
    assert_eq!(
        out,
        vec![
            Output::Commit {
                zxid: Zxid(0x1_0000_0003),
                txn: txn(0x1_0000_0003)
            },
            Output::StartServing,
            Output::SendLeader(pkt(pt::ACK, 0x2_0000_0000, None)),
            Output::RoleChanged {
                state: ServerState::Following,
                leader: Some(ServerId(3)),
                epoch: Epoch(2)
            },
        ]
    );
    // Broadcast: COMMITs apply in order.
    let out = lp(&mut p, t, pt::COMMIT, 0x2_0000_0001, None);
    assert_eq!(
        out,
        vec![Output::Commit {
            zxid: Zxid(0x2_0000_0001),
            txn: txn(0x2_0000_0001)
        }]
    );
}

/// Follower 2 synced with leader 3 in epoch 2 by an empty DIFF.
fn synced_follower() -> (Peer, u64) {
    let (mut p, t) = follower();
    lp(
        &mut p,
        t,
        pt::LEADERINFO,
        0x2_0000_0000,
        Some(encode_i32_data(0x10000)),
    );
    lp(&mut p, t, pt::DIFF, 0x1_0000_0002, None);
    let out = lp(
        &mut p,
        t,
        pt::NEWLEADER,
        0x2_0000_0000,
        Some(CONFIG.to_vec()),
    );
    assert_eq!(to_leader(&out), vec![(pt::ACK, 0x2_0000_0000)]);
    lp(&mut p, t, pt::UPTODATE, -1, None);
    assert!(p.serving());
    (p, t)
}

#[test]
fn follower_broadcast_acks_after_synced_pings_and_syncs() {
    let (mut p, t) = synced_follower();
    let out = lp(&mut p, t, pt::PROPOSAL, 0x2_0000_0001, Some(txn(1)));
    assert_eq!(
        out,
        vec![Output::Append {
            zxid: Zxid(0x2_0000_0001),
            txn: txn(1)
        }]
    );
    // COMMIT may arrive before our own fsync (the others formed the quorum).
    let out = lp(&mut p, t, pt::COMMIT, 0x2_0000_0001, None);
    assert_eq!(
        out,
        vec![Output::Commit {
            zxid: Zxid(0x2_0000_0001),
            txn: txn(1)
        }]
    );
    p.handle(
        t,
        Input::Synced {
            zxid: Zxid(0x2_0000_0001),
        },
    );
    assert_eq!(to_leader(&drain(&mut p)), vec![(pt::ACK, 0x2_0000_0001)]);
    // PING: collect touches, answer with the echo.
    assert_eq!(
        lp(&mut p, t, pt::PING, 0x2_0000_0001, None),
        vec![Output::CollectTouches]
    );
    p.handle(t, Input::Touches(vec![(SessionId(0x77), 4000)]));
    let out = drain(&mut p);
    assert_eq!(
        out,
        vec![Output::SendLeader(pkt(
            pt::PING,
            0x2_0000_0001,
            Some(encode_session_touches(&[(0x77, 4000)]))
        ))]
    );
    // A forwarded sync completes on SYNC.
    p.handle(t, Input::Submit(req(9), None));
    assert_eq!(to_leader(&drain(&mut p)), vec![(pt::REQUEST, -1)]);
    assert_eq!(p.pending_syncs(), 1);
    assert_eq!(lp(&mut p, t, pt::SYNC, 0, None), vec![Output::SyncDone]);
}

#[test]
fn follower_truncates_or_loads_a_snapshot() {
    let (mut p, t) = follower();
    lp(&mut p, t, pt::LEADERINFO, 0x2_0000_0000, None);
    let out = lp(&mut p, t, pt::TRUNC, 0x1_0000_0001, None);
    assert_eq!(
        out,
        vec![Output::Truncate {
            zxid: Zxid(0x1_0000_0001)
        }]
    );
    assert_eq!(p.last_zxid(), 0x1_0000_0001);

    let (mut p, t) = follower();
    lp(&mut p, t, pt::LEADERINFO, 0x2_0000_0000, None);
    assert!(lp(&mut p, t, pt::SNAP, 0x1_0000_0009, None).is_empty());
    p.handle(
        t,
        Input::LeaderSnapshot {
            zxid: Zxid(0x1_0000_0009),
            blob: b"tree".to_vec(),
        },
    );
    assert_eq!(
        drain(&mut p),
        vec![Output::LoadSnapshot {
            zxid: Zxid(0x1_0000_0009),
            blob: b"tree".to_vec()
        }]
    );
    assert_eq!(p.last_committed(), 0x1_0000_0009);
}

#[test]
fn learner_goes_looking_on_bad_packets_old_epochs_and_silence() {
    // Leader epoch below our accepted epoch: abort (`Learner.registerWithLeader`).
    let (mut p, t) = follower();
    let out = lp(&mut p, t, pt::LEADERINFO, 0x0_0000_0000, None);
    assert!(out.contains(&Output::CloseLeader));
    assert_eq!(p.state(), ServerState::Looking);
    // A COMMIT for a txn we never saw.
    let (mut p, t) = synced_follower();
    lp(&mut p, t, pt::COMMIT, 0x2_0000_0005, None);
    assert_eq!(p.state(), ServerState::Looking);
    // Leader silent for syncLimit ticks.
    let (mut p, t) = synced_follower();
    p.handle_timeout(t + 5 * TICK);
    assert_eq!(p.state(), ServerState::Looking);
    let out = drain(&mut p);
    assert!(out.contains(&Output::StopServing));
}

#[test]
fn observer_registers_with_observerinfo_and_applies_inform() {
    let mut p = Peer::new(cfg(4), durable(2), 0);
    let t = elect(&mut p, 0, 3, 0x1_0000_0006, 1);
    assert_eq!(p.state(), ServerState::Observing);
    drain(&mut p);
    p.handle(t, Input::LeaderConnected);
    assert_eq!(
        to_leader(&drain(&mut p)),
        vec![(pt::OBSERVERINFO, 0x1_0000_0000)]
    );
    lp(&mut p, t, pt::LEADERINFO, 0x2_0000_0000, None);
    lp(&mut p, t, pt::DIFF, 0x1_0000_0002, None);
    lp(&mut p, t, pt::NEWLEADER, 0x2_0000_0000, None);
    lp(&mut p, t, pt::UPTODATE, -1, None);
    let out = lp(&mut p, t, pt::INFORM, 0x2_0000_0001, Some(txn(1)));
    assert_eq!(
        out,
        vec![
            Output::Append {
                zxid: Zxid(0x2_0000_0001),
                txn: txn(1)
            },
            Output::Commit {
                zxid: Zxid(0x2_0000_0001),
                txn: txn(1)
            },
        ]
    );
    p.handle(
        t,
        Input::Synced {
            zxid: Zxid(0x2_0000_0001),
        },
    );
    assert!(
        to_leader(&drain(&mut p)).is_empty(),
        "observers never ACK proposals"
    );
}

#[test]
fn single_voter_leads_and_commits_alone() {
    // One voter is its own quorum: discovery, epoch ack and NEWLEADER complete at once, and a
    // write commits on the leader's own Synced.
    let mut c = cfg(1);
    c.members = vec![(ServerId(1), false)];
    let mut p = Peer::new(c, durable(0), 0);
    p.handle_timeout(1000);
    assert_eq!(p.state(), ServerState::Leading);
    let out = drain(&mut p);
    assert!(out.contains(&Output::StartServing));
    assert!(out.contains(&Output::RoleChanged {
        state: ServerState::Leading,
        leader: Some(ServerId(1)),
        epoch: Epoch(2)
    }));
    p.handle(1000, Input::Submit(req(1), None));
    p.handle(
        1000,
        Input::Prepared {
            txn: txn(1),
            zxid: Zxid(0x2_0000_0001),
        },
    );
    p.handle(
        1000,
        Input::Synced {
            zxid: Zxid(0x2_0000_0001),
        },
    );
    assert!(drain(&mut p).contains(&Output::Commit {
        zxid: Zxid(0x2_0000_0001),
        txn: txn(1)
    }));
}

#[test]
fn revalidate_round_trip() {
    // Learner → REVALIDATE(sessionId, timeout) → leader asks the glue → REVALIDATE reply.
    let (mut p, t) = established_leader();
    let r = corral_proto::quorum::RevalidateRequest {
        session_id: 0x55,
        timeout: 3000,
    };
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: pkt(pt::REVALIDATE, -1, Some(r.to_bytes())),
        },
    );
    assert_eq!(
        drain(&mut p),
        vec![Output::CheckSession {
            conn: Some(10),
            session_id: SessionId(0x55),
            timeout: 3000
        }]
    );
    p.handle(
        t,
        Input::SessionChecked {
            conn: Some(10),
            session_id: SessionId(0x55),
            valid: true,
        },
    );
    assert_eq!(to_conn(&drain(&mut p), 10), vec![(pt::REVALIDATE, -1)]);
    let (mut f, t) = synced_follower();
    f.handle(
        t,
        Input::Revalidate {
            session_id: SessionId(0x55),
            timeout: 3000,
        },
    );
    assert_eq!(to_leader(&drain(&mut f)), vec![(pt::REVALIDATE, -1)]);
    let reply = corral_proto::quorum::RevalidateReply {
        session_id: 0x55,
        valid: false,
    };
    let out = lp(&mut f, t, pt::REVALIDATE, -1, Some(reply.to_bytes()));
    assert_eq!(
        out,
        vec![Output::SessionRevalidated {
            session_id: SessionId(0x55),
            valid: false
        }]
    );
}

/// `CONFIG` with its version replaced.
fn versioned(version: i64) -> Vec<u8> {
    corral_proto::quorum::QuorumConfig::with_version(CONFIG, version)
}

/// The data of the last NEWLEADER sent to `conn`.
fn newleader_data(out: &[Output], conn: u64) -> Option<Vec<u8>> {
    out.iter().rev().find_map(|o| match o {
        Output::SendLearner { conn: c, p } if *c == conn && p.r#type == pt::NEWLEADER => {
            p.data.clone()
        }
        _ => None,
    })
}

fn config_changes(out: &[Output]) -> Vec<Vec<u8>> {
    out.iter()
        .filter_map(|o| match o {
            Output::ConfigChanged { config } => Some(config.clone()),
            _ => None,
        })
        .collect()
}

/// Leader 1 (history 0x100000001..=06) elected with `c`, follower 2 through ACKEPOCH on
/// conn 10. Returns the outputs of the ACKEPOCH (the sync stream and NEWLEADER).
fn leader_until_newleader(c: PeerConfig) -> (Peer, u64, Vec<Output>) {
    let mut p = Peer::new(c, durable(6), 0);
    let t = elect(&mut p, 0, 1, 0x1_0000_0006, 1);
    assert_eq!(p.state(), ServerState::Leading);
    drain(&mut p);
    connect(&mut p, t, 10, 2);
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: ack_epoch(0x1_0000_0006, 1),
        },
    );
    let out = drain(&mut p);
    (p, t, out)
}

#[test]
fn leader_with_reconfig_versions_a_static_config_with_the_newleader_zxid() {
    // ZOOKEEPER-1783 (`Leader.lead`): with reconfigEnabled and a version-0 config, NEWLEADER
    // carries the config with version = the NEWLEADER zxid; the leader commits it once a
    // quorum acked NEWLEADER (`startZkServer` → `processReconfig`), before serving, and its
    // notifications carry it from then on.
    let mut c = cfg(1);
    c.reconfig_enabled = true;
    let (mut p, t, out) = leader_until_newleader(c);
    let bumped = versioned(0x2_0000_0000);
    assert!(String::from_utf8_lossy(&bumped).ends_with("\nversion=200000000"));
    assert_eq!(newleader_data(&out, 10), Some(bumped.clone()));
    assert!(config_changes(&out).is_empty(), "not before the quorum");
    assert_eq!(p.config(), CONFIG);

    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: pkt(pt::ACK, 0x2_0000_0000, None),
        },
    );
    let out = drain(&mut p);
    let changed = out
        .iter()
        .position(|o| matches!(o, Output::ConfigChanged { .. }))
        .expect("ConfigChanged at establishment");
    let serving = out.iter().position(|o| *o == Output::StartServing).unwrap();
    assert!(changed < serving);
    assert_eq!(config_changes(&out), vec![bumped.clone()]);
    assert_eq!(p.config(), &bumped[..]);

    // A late learner gets the committed config; a LOOKING voter hears it in our answer.
    connect(&mut p, t, 11, 3);
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 11,
            p: ack_epoch(0x1_0000_0006, 1),
        },
    );
    assert_eq!(newleader_data(&drain(&mut p), 11), Some(bumped.clone()));
    let n = Notification::new(
        ServerState::Looking,
        ServerId(3),
        Zxid(0),
        1,
        Epoch(1),
        Some(CONFIG.to_vec()),
    );
    p.handle(
        t,
        Input::Election {
            from: ServerId(3),
            n,
        },
    );
    let answers: Vec<_> = drain(&mut p)
        .into_iter()
        .filter_map(|o| match o {
            Output::ElectionSend { to: ServerId(3), n } => Some(n.config),
            _ => None,
        })
        .collect();
    assert_eq!(answers, vec![Some(bumped)]);
}

#[test]
fn leader_keeps_a_versioned_config_or_one_without_reconfig() {
    // The bump is only for version 0 (`curQV.getVersion() == 0`), and without reconfigEnabled
    // `setLastSeenQuorumVerifier` / `processReconfig` do nothing.
    let mut with_version = cfg(1);
    with_version.reconfig_enabled = true;
    with_version.config = versioned(0x1_0000_0000);
    for c in [cfg(1), with_version] {
        let config = c.config.clone();
        let (mut p, t, out) = leader_until_newleader(c);
        assert_eq!(newleader_data(&out, 10), Some(config.clone()));
        p.handle(
            t,
            Input::LearnerPacket {
                conn: 10,
                p: pkt(pt::ACK, 0x2_0000_0000, None),
            },
        );
        let out = drain(&mut p);
        assert!(out.contains(&Output::StartServing));
        assert!(config_changes(&out).is_empty());
        assert_eq!(p.config(), &config[..]);
    }
}

/// Follower 2 (with `c`) synced by leader 3 in epoch 2 with a NEWLEADER carrying `config`;
/// returns the outputs of the NEWLEADER and of the UPTODATE.
fn follower_synced_with(c: PeerConfig, config: Vec<u8>) -> (Peer, Vec<Output>, Vec<Output>) {
    let mut p = Peer::new(c, durable(2), 0);
    let t = elect(&mut p, 0, 3, 0x1_0000_0006, 1);
    drain(&mut p);
    p.handle(t, Input::LeaderConnected);
    drain(&mut p);
    lp(
        &mut p,
        t,
        pt::LEADERINFO,
        0x2_0000_0000,
        Some(encode_i32_data(0x10000)),
    );
    lp(&mut p, t, pt::DIFF, 0x1_0000_0002, None);
    let at_newleader = lp(&mut p, t, pt::NEWLEADER, 0x2_0000_0000, Some(config));
    let at_uptodate = lp(&mut p, t, pt::UPTODATE, -1, None);
    assert!(p.serving());
    (p, at_newleader, at_uptodate)
}

#[test]
fn learner_with_reconfig_adopts_a_newer_newleader_config_at_uptodate() {
    // `Learner.syncWithLeader`: NEWLEADER's config becomes the last seen one; at UPTODATE
    // `processReconfig` commits it when its version is above ours, before serving.
    let mut c = cfg(2);
    c.reconfig_enabled = true;
    let bumped = versioned(0x2_0000_0000);
    let (p, at_newleader, at_uptodate) = follower_synced_with(c.clone(), bumped.clone());
    assert!(config_changes(&at_newleader).is_empty());
    assert_eq!(config_changes(&at_uptodate), vec![bumped.clone()]);
    let changed = at_uptodate
        .iter()
        .position(|o| matches!(o, Output::ConfigChanged { .. }))
        .unwrap();
    let serving = at_uptodate
        .iter()
        .position(|o| *o == Output::StartServing)
        .unwrap();
    assert!(changed < serving);
    assert_eq!(p.config(), &bumped[..]);

    // Not adopted: the same or an older version, reconfig disabled, other members, or a
    // config that does not parse (equal ports).
    let mut newer = c.clone();
    newer.config = versioned(0x3_0000_0000);
    let mut disabled = c.clone();
    disabled.reconfig_enabled = false;
    let other_members =
        b"server.1=a:1:11:participant\nserver.2=b:2:12:participant\nversion=200000000";
    let unreadable = b"server.1=a:1:1:participant\nversion=200000000";
    for (c, config) in [
        (newer, bumped.clone()),
        (disabled, bumped.clone()),
        (c.clone(), CONFIG.to_vec()),
        (c.clone(), other_members.to_vec()),
        (c, unreadable.to_vec()),
    ] {
        let ours = c.config.clone();
        let (p, _, at_uptodate) = follower_synced_with(c, config);
        assert!(config_changes(&at_uptodate).is_empty());
        assert_eq!(p.config(), &ours[..]);
    }
}

#[test]
fn learner_reports_its_config_version_in_learnerinfo() {
    // `Learner.registerWithLeader`: LearnerInfo ends with the committed config's version.
    let mut c = cfg(2);
    c.config = versioned(0x1_0000_0000);
    let mut p = Peer::new(c, durable(2), 0);
    let t = elect(&mut p, 0, 3, 0x1_0000_0006, 1);
    drain(&mut p);
    p.handle(t, Input::LeaderConnected);
    let info = drain(&mut p).into_iter().find_map(|o| match o {
        Output::SendLeader(q) if q.r#type == pt::FOLLOWERINFO => q.data,
        _ => None,
    });
    let info = LearnerInfo::decode(&info.unwrap()).unwrap();
    assert_eq!(info.config_version, 0x1_0000_0000);
}

/// The history of `stream` to `conn` after its LEADERINFO: (type, zxid) pairs, with the
/// PROPOSAL data checked against `txn`.
fn sync_stream(out: &[Output], conn: u64) -> Vec<(i32, i64)> {
    for o in out {
        if let Output::SendLearner { conn: c, p } = o {
            if *c == conn && p.r#type == pt::PROPOSAL {
                assert_eq!(p.data.as_deref(), Some(&txn(p.zxid)[..]), "{:#x}", p.zxid);
            }
        }
    }
    to_conn(out, conn)
}

/// PROPOSAL + COMMIT for each zxid.
fn pairs(zxids: impl IntoIterator<Item = i64>) -> Vec<(i32, i64)> {
    zxids
        .into_iter()
        .flat_map(|z| [(pt::PROPOSAL, z), (pt::COMMIT, z)])
        .collect()
}

/// The answer of a glue whose log holds epoch-1 txns 1..=`last`: from the last at or before
/// `from` on.
fn log_read(conn: u64, from: i64, last: i64) -> Input {
    let txns = ((from & 0xffff_ffff)..=last)
        .map(|c| (Zxid((1 << 32) | c), txn((1 << 32) | c)))
        .collect();
    Input::LogRead {
        conn,
        txns: Some(txns),
    }
}

#[test]
fn learner_behind_the_committed_log_is_diffed_from_the_txn_log_then_memory() {
    // §4.6 rule 5 (`syncFollower` → `getProposalsFromTxnLog` + `queueCommittedProposals`
    // twice): 1000 committed txns logged, the last 500 in memory (0x…1f5..=0x…3e8); learner 2
    // at 0x…12c is 700 behind. The leader asks the glue for the log from 0x…12c, sends nothing
    // to the learner until the answer, then DIFF(maxCommittedLog), PROPOSAL/COMMIT 0x…12d..=
    // 0x…1f5 from the log and 0x…1f6..=0x…3e8 from memory, in order, each once; NEWLEADER.
    let mut p = Peer::new(cfg(1), durable(1000), 0);
    let t = elect(&mut p, 0, 1, 0x1_0000_03e8, 1);
    drain(&mut p);
    connect(&mut p, t, 10, 2);
    drain(&mut p);
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: ack_epoch(0x1_0000_012c, 1),
        },
    );
    let out = drain(&mut p);
    assert_eq!(
        out,
        vec![
            Output::WriteCurrentEpoch(Epoch(2)),
            Output::ReadLog {
                conn: 10,
                from_zxid: Zxid(0x1_0000_012c),
                to_zxid: Zxid(0x1_0000_03e8)
            }
        ]
    );
    p.handle(t, log_read(10, 0x1_0000_012c, 1000));
    let out = drain(&mut p);
    let mut expect = vec![(pt::DIFF, 0x1_0000_03e8)];
    expect.extend(pairs((0x12d..=0x3e8).map(|c| (1 << 32) | c)));
    expect.push((pt::NEWLEADER, 0x2_0000_0000));
    assert_eq!(sync_stream(&out, 10), expect);

    // A log not reaching back to the learner's zxid, or over the size limit: SNAP.
    let mut p = Peer::new(cfg(1), durable(1000), 0);
    let t = elect(&mut p, 0, 1, 0x1_0000_03e8, 1);
    connect(&mut p, t, 10, 2);
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: ack_epoch(0x1_0000_012c, 1),
        },
    );
    drain(&mut p);
    p.handle(t, log_read(10, 0x1_0000_012d, 1000));
    let out = drain(&mut p);
    assert!(out.contains(&Output::SendSnapshot { conn: 10 }), "{out:?}");
    assert_eq!(to_conn(&out, 10), vec![(pt::NEWLEADER, 0x2_0000_0000)]);
}

#[test]
fn broadcast_to_a_learner_waiting_for_the_txn_log_starts_where_its_sync_ends() {
    // `startForwarding` runs with the sync stream: while the glue reads the log, proposals and
    // commits go to the synced follower only; once the answer is in, the late learner gets the
    // log part, the committed log as it is now (with the txn committed meanwhile), then the
    // outstanding proposal, then NEWLEADER.
    let mut p = Peer::new(cfg(1), durable(1000), 0);
    let t = elect(&mut p, 0, 1, 0x1_0000_03e8, 1);
    connect(&mut p, t, 10, 2);
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: ack_epoch(0x1_0000_03e8, 1),
        },
    );
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: pkt(pt::ACK, 0x2_0000_0000, None),
        },
    );
    assert!(drain(&mut p).contains(&Output::StartServing));

    connect(&mut p, t, 11, 3);
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 11,
            p: ack_epoch(0x1_0000_012c, 1),
        },
    );
    let out = drain(&mut p);
    assert!(out.contains(&Output::ReadLog {
        conn: 11,
        from_zxid: Zxid(0x1_0000_012c),
        to_zxid: Zxid(0x1_0000_03e8)
    }));
    let before = to_conn(&out, 11);
    assert_eq!(before, vec![(pt::LEADERINFO, 0x2_0000_0000)]);

    // Two writes; the first commits (follower ACK + our Synced), the second stays outstanding.
    for z in [0x2_0000_0001, 0x2_0000_0002] {
        p.handle(t, Input::Submit(req(1), None));
        p.handle(
            t,
            Input::Prepared {
                txn: txn(z),
                zxid: Zxid(z),
            },
        );
    }
    p.handle(
        t,
        Input::Synced {
            zxid: Zxid(0x2_0000_0002),
        },
    );
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 10,
            p: pkt(pt::ACK, 0x2_0000_0001, None),
        },
    );
    let out = drain(&mut p);
    assert_eq!(p.last_committed(), 0x2_0000_0001);
    assert_eq!(
        to_conn(&out, 10),
        vec![
            (pt::PROPOSAL, 0x2_0000_0001),
            (pt::PROPOSAL, 0x2_0000_0002),
            (pt::COMMIT, 0x2_0000_0001)
        ]
    );
    assert!(
        to_conn(&out, 11).is_empty(),
        "nothing before the log answer"
    );
    // A PING round passes the waiting learner by as well.
    p.handle_timeout(t + TICK);
    assert!(to_conn(&drain(&mut p), 11).is_empty());

    // The glue's answer (the log as it was asked for; the committed log has moved on by one).
    p.handle(t + TICK, log_read(11, 0x1_0000_012c, 1000));
    let out = drain(&mut p);
    let mut expect = vec![(pt::DIFF, 0x2_0000_0001)];
    expect.extend(pairs((0x12d..=0x3e8).map(|c| (1 << 32) | c)));
    expect.extend(pairs([0x2_0000_0001]));
    expect.push((pt::PROPOSAL, 0x2_0000_0002));
    expect.push((pt::NEWLEADER, 0x2_0000_0000));
    assert_eq!(sync_stream(&out, 11), expect);

    // From here on it is forwarded to like any learner: the commit of 0x…02 reaches it.
    p.handle(
        t + TICK,
        Input::LearnerPacket {
            conn: 10,
            p: pkt(pt::ACK, 0x2_0000_0002, None),
        },
    );
    let out = drain(&mut p);
    assert_eq!(to_conn(&out, 11), vec![(pt::COMMIT, 0x2_0000_0002)]);
    // A second answer for the same learner is stale.
    p.handle(t + TICK, log_read(11, 0x1_0000_012c, 1000));
    assert!(to_conn(&drain(&mut p), 11).is_empty());
}

/// Cluster seed 1767 (`ZAB_SEED=1767`): an observer loaded a SNAP at 0x100000017; the next
/// leader says TRUNC 0x100000015. Truncation deletes that snapshot and no log leads up to
/// 0x100000015, so the glue's reload ends below it (`Input::Reloaded`): the learner must not
/// go on syncing from a state it does not have, but register again with what it really has.
#[test]
fn learner_reloaded_below_the_trunc_point_registers_again() {
    let (mut p, t) = follower();
    lp(&mut p, t, pt::LEADERINFO, 0x2_0000_0000, None);
    lp(&mut p, t, pt::SNAP, 0x1_0000_0017, None);
    p.handle(
        t,
        Input::LeaderSnapshot {
            zxid: Zxid(0x1_0000_0017),
            blob: b"tree".to_vec(),
        },
    );
    drain(&mut p);
    // That leader goes away before NEWLEADER; the next one (epoch 3) truncates.
    p.handle(t, Input::LeaderClosed);
    assert_eq!(p.state(), ServerState::Looking);
    drain(&mut p);
    let t = elect_round(&mut p, t, 2, 0x1_0000_0015);
    let out = lp(&mut p, t, pt::LEADERINFO, 0x3_0000_0000, None);
    assert_eq!(to_leader(&out)[0], (pt::ACKEPOCH, 0x1_0000_0017));
    let out = lp(&mut p, t, pt::TRUNC, 0x1_0000_0015, None);
    assert_eq!(
        out,
        vec![Output::Truncate {
            zxid: Zxid(0x1_0000_0015)
        }]
    );
    // The glue reloaded: only an older state at 0x100000002 survived.
    let kept = durable(2).committed_log;
    p.handle(
        t,
        Input::Reloaded {
            last_zxid: Zxid(0x1_0000_0002),
            committed_log: kept,
        },
    );
    let out = drain(&mut p);
    assert!(out.contains(&Output::CloseLeader), "{out:?}");
    assert_eq!(p.state(), ServerState::Looking);
    assert_eq!(p.last_zxid(), 0x1_0000_0002);
    assert_eq!(p.last_committed(), 0x1_0000_0002);
    // Later packets of the abandoned sync change nothing.
    lp(
        &mut p,
        t,
        pt::PROPOSAL,
        0x1_0000_0016,
        Some(txn(0x1_0000_0016)),
    );
    lp(&mut p, t, pt::NEWLEADER, 0x3_0000_0000, None);
    assert_eq!(p.last_zxid(), 0x1_0000_0002);
    // Registering again reports the real last zxid.
    let t = elect_round(&mut p, t, 3, 0x1_0000_0015);
    let out = lp(&mut p, t, pt::LEADERINFO, 0x3_0000_0000, None);
    assert_eq!(to_leader(&out)[0], (pt::ACKEPOCH, 0x1_0000_0002));
}

/// Voters 1..3 all vote for 3 (at `zxid`, epoch 2) in election round `round`; the peer
/// follows 3 and registers.
fn elect_round(p: &mut Peer, now: u64, round: i64, zxid: i64) -> u64 {
    for from in [1, 2, 3] {
        let n = Notification::new(
            ServerState::Looking,
            ServerId(3),
            Zxid(zxid),
            round,
            Epoch(2),
            Some(CONFIG.to_vec()),
        );
        let from = ServerId(from);
        p.handle(now, Input::Election { from, n });
    }
    let t = now + 1000;
    p.handle_timeout(t);
    assert_eq!(p.state(), ServerState::Following);
    drain(p);
    p.handle(t, Input::LeaderConnected);
    drain(p);
    t
}

/// A TRUNC to a zxid our own log never reached (it ends below it) cannot leave us where the
/// leader thinks: register again rather than sync from there.
#[test]
fn learner_whose_log_ends_below_the_trunc_point_registers_again() {
    let (mut p, t) = follower();
    lp(&mut p, t, pt::LEADERINFO, 0x2_0000_0000, None);
    let out = lp(&mut p, t, pt::TRUNC, 0x1_0000_0005, None);
    assert!(out.contains(&Output::Truncate {
        zxid: Zxid(0x1_0000_0005)
    }));
    assert!(out.contains(&Output::CloseLeader), "{out:?}");
    assert_eq!(p.state(), ServerState::Looking);
    assert_eq!(p.last_zxid(), 0x1_0000_0002);
}

#[test]
fn established_leader_steps_down_for_a_learner_that_accepted_a_later_epoch() {
    // corral addition (zab cluster simulation, seed 81): learner 3 accepted epoch 5 from a
    // leader that never established it; our epoch is 2, which it would refuse for ever
    // (`Learner.registerWithLeader`), looping through elections that elect us again. The
    // leader steps down so the next one picks an epoch it accepts. An accepted epoch equal
    // to ours is fine: that learner just joins.
    let (mut p, t) = established_leader();
    p.handle(t, Input::LearnerConnected { conn: 11 });
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 11,
            p: info(pt::FOLLOWERINFO, 3, 2),
        },
    );
    assert_eq!(p.state(), ServerState::Leading);
    assert_eq!(
        to_conn(&drain(&mut p), 11),
        vec![(pt::LEADERINFO, 0x2_0000_0000)]
    );
    p.handle(t, Input::LearnerConnected { conn: 12 });
    p.handle(
        t,
        Input::LearnerPacket {
            conn: 12,
            p: info(pt::FOLLOWERINFO, 3, 5),
        },
    );
    assert_eq!(p.state(), ServerState::Looking);
    assert!(drain(&mut p).contains(&Output::StopServing));
}
