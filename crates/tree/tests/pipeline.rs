//! The core's ensemble pipeline without the ZAB peer: a leader core and a learner core wired by
//! hand the way the glue wires them through ZAB (Submit → leader `prepare_submitted` → txn →
//! `apply_committed` everywhere). Proves that replies wait for the commit, that a session's
//! reads wait behind its writes, that the leader prepares against outstanding (uncommitted)
//! changes and stamps the digest the tree has after applying them, and that sessions are global.

use corral_proto::jute::{Jute, Reader};
use corral_proto::records::*;
use corral_proto::request::*;
use corral_proto::txn::{ErrorTxn, Txn, TxnBody};
use corral_tree::core::{Core, CoreConfig, Now, Output, Role, Submitted};

const NOW: Now = Now {
    mono_ms: 1_000_000,
    wall_ms: 1_700_000_000_000,
};

fn core(sid: u8, role: Role) -> Core {
    let cfg = CoreConfig {
        server_id: sid,
        ..CoreConfig::default()
    };
    let mut c = Core::new(cfg, NOW);
    c.set_role(NOW, role);
    c
}

/// Everything a core produced, split by kind.
#[derive(Default, Debug)]
struct Out {
    submits: Vec<Submitted>,
    replies: Vec<(u64, i32, i64, i32, Vec<u8>)>,
    events: Vec<(u64, i32, String)>,
    closes: Vec<u64>,
    revalidates: Vec<(i64, i32)>,
    connects: Vec<(u64, i64)>,
}

fn drain(c: &mut Core) -> Out {
    let mut o = Out::default();
    while let Some(x) = c.poll_output() {
        match x {
            Output::Submit(s) => o.submits.push(s),
            Output::Revalidate { session, timeout } => o.revalidates.push((session, timeout)),
            Output::Close { conn } => o.closes.push(conn),
            Output::Append(t) => panic!("an ensemble core does not log by itself: {t:?}"),
            Output::Send { conn, frame } => {
                let b = &frame[4..];
                if b.len() >= 16
                    && b[..4] == [0, 0, 0, 0]
                    && !o.connects.iter().any(|c| c.0 == conn)
                    && frame.len() > 30
                {
                    // ConnectResponse: protocol 0, timeout, session, password.
                    let r = ConnectResponse::read(&mut Reader::new(b)).unwrap();
                    o.connects.push((conn, r.session_id));
                    continue;
                }
                let mut r = Reader::new(b);
                let h = ReplyHeader::read(&mut r).unwrap();
                if h.xid == -1 {
                    let e = WatcherEvent::read(&mut r).unwrap();
                    o.events.push((conn, e.r#type, e.path));
                } else {
                    o.replies
                        .push((conn, h.xid, h.zxid, h.err, r.rest().to_vec()));
                }
            }
        }
    }
    o
}

/// The leader side of ZAB, reduced to what the core sees: zxids in order, prep on submit.
struct Ensemble {
    leader: Core,
    learner: Core,
    next_counter: i64,
}

impl Ensemble {
    fn new() -> Ensemble {
        Ensemble {
            leader: core(1, Role::Leader),
            learner: core(2, Role::Learner),
            next_counter: 1,
        }
    }

    /// Prepare submitted work on the leader, in order; returns the txns (not yet committed).
    fn prepare(&mut self, subs: &[Submitted]) -> Vec<Txn> {
        subs.iter()
            .map(|s| {
                let zxid = (1i64 << 32) | self.next_counter;
                self.next_counter += 1;
                self.leader.prepare_submitted(NOW, zxid, s)
            })
            .collect()
    }

    fn commit(&mut self, txns: &[Txn]) {
        for t in txns {
            // What travels is bytes: PROPOSAL data is the serialized txn.
            let t = Txn::from_bytes(&t.to_bytes()).unwrap();
            self.leader.apply_committed(NOW, t.clone());
            self.learner.apply_committed(NOW, t);
        }
    }
}

fn connect_req(session: i64, passwd: Vec<u8>) -> Connect {
    Connect {
        req: ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 30000,
            session_id: session,
            passwd: Some(passwd),
        },
        read_only: Some(false),
    }
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(b"v".to_vec()),
        acl: vec![Acl::new(perms::ALL, "world", "anyone")],
        flags,
    })
}

/// Open a session through the learner; returns its id.
fn open_session(e: &mut Ensemble, conn: u64) -> i64 {
    e.learner.handle_open(conn, "127.0.0.1".into());
    e.learner
        .handle_connect(NOW, conn, &connect_req(0, vec![0; 16]));
    let o = drain(&mut e.learner);
    assert!(
        o.connects.is_empty(),
        "no ConnectResponse before createSession commits"
    );
    assert_eq!(o.submits.len(), 1);
    assert_eq!(o.submits[0].op_type, op::CREATE_SESSION);
    assert!(o.submits[0].auth.is_none());
    let txns = e.prepare(&o.submits);
    e.commit(&txns);
    let o = drain(&mut e.learner);
    assert_eq!(o.connects.len(), 1);
    let id = o.connects[0].1;
    assert_eq!(id >> 56, 2, "the learner's sid is in the session id");
    assert!(
        e.leader.sessions().contains(id),
        "the leader tracks the session"
    );
    id
}

// A write through a learner is answered only when its txn is applied there, with the txn's
// zxid; the reply is built from the txn (the sequential name the leader chose).
#[test]
fn write_through_learner_answers_on_commit() {
    let mut e = Ensemble::new();
    open_session(&mut e, 7);
    e.learner.handle_request(NOW, 7, 1, create("/s-", 2));
    let o = drain(&mut e.learner);
    assert!(o.replies.is_empty());
    let txns = e.prepare(&o.submits);
    assert_eq!(txns[0].header.cxid, 1);
    e.commit(&txns);
    let o = drain(&mut e.learner);
    assert_eq!(o.replies.len(), 1);
    let (conn, xid, zxid, err, body) = &o.replies[0];
    assert_eq!((*conn, *xid, *zxid, *err), (7, 1, txns[0].zxid(), 0));
    let r = CreateResponse::read(&mut Reader::new(body)).unwrap();
    assert_eq!(r.path, "/s-0000000000");
    assert_eq!(e.learner.tree().digest(), e.leader.tree().digest());
}

// The leader preps request N+1 before N commits (ZooKeeper's outstandingChanges): a child of
// an uncommitted node can be created, sequential names advance, a conflicting create fails,
// and every stamped digest equals the tree digest after that txn is applied.
#[test]
fn leader_preps_against_outstanding_changes() {
    let mut e = Ensemble::new();
    open_session(&mut e, 7);
    for (xid, r) in [
        (1, create("/a", 0)),
        (2, create("/a/b", 0)),
        (3, create("/a/s-", 2)),
        (4, create("/a/s-", 2)),
        (5, create("/a", 0)),
        (
            6,
            Request::SetData(SetDataRequest {
                path: "/a/b".into(),
                data: Some(vec![1; 100]),
                version: 0,
            }),
        ),
        (
            7,
            Request::Delete(DeleteRequest {
                path: "/a/b".into(),
                version: 1,
            }),
        ),
    ] {
        e.learner.handle_request(NOW, 7, xid, r);
    }
    let o = drain(&mut e.learner);
    assert_eq!(o.submits.len(), 7);
    let txns = e.prepare(&o.submits);
    assert_eq!(
        txns[4].header.r#type,
        op::ERROR,
        "second /a exists (outstanding)"
    );
    for t in &txns {
        e.leader.apply_committed(NOW, t.clone());
        if let Some(d) = &t.digest {
            assert_eq!(
                d.tree_digest as u64,
                e.leader.tree().digest(),
                "zxid 0x{:x}",
                t.zxid()
            );
        }
    }
    for t in &txns {
        e.learner.apply_committed(NOW, t.clone());
    }
    let o = drain(&mut e.learner);
    let errs: Vec<i32> = o.replies.iter().map(|r| r.3).collect();
    assert_eq!(errs, vec![0, 0, 0, 0, -110, 0, 0]);
    let name = |i: usize| {
        CreateResponse::read(&mut Reader::new(&o.replies[i].4))
            .unwrap()
            .path
    };
    assert_eq!(
        (name(2), name(3)),
        ("/a/s-0000000001".into(), "/a/s-0000000002".into())
    );
}

// A read waits behind the same session's earlier write; another session's read does not.
#[test]
fn reads_wait_for_the_sessions_writes() {
    let mut e = Ensemble::new();
    open_session(&mut e, 7);
    open_session(&mut e, 8);
    e.learner.handle_request(NOW, 7, 1, create("/r", 0));
    let exists = |p: &str| {
        Request::Exists(PathWatchRequest {
            path: p.into(),
            watch: false,
        })
    };
    e.learner.handle_request(NOW, 7, 2, exists("/r"));
    e.learner.handle_request(NOW, 8, 1, exists("/r"));
    let o = drain(&mut e.learner);
    assert_eq!(
        o.replies.len(),
        1,
        "only the other session's read is served"
    );
    assert_eq!((o.replies[0].0, o.replies[0].3), (8, -101));
    let txns = e.prepare(&o.submits);
    e.commit(&txns);
    let o = drain(&mut e.learner);
    let got: Vec<(u64, i32, i32)> = o.replies.iter().map(|r| (r.0, r.1, r.3)).collect();
    assert_eq!(got, vec![(7, 1, 0), (7, 2, 0)]);
}

// sync is forwarded and answered when the leader says so, after the session's earlier writes.
#[test]
fn sync_answers_after_leader() {
    let mut e = Ensemble::new();
    open_session(&mut e, 7);
    e.learner.handle_request(NOW, 7, 1, create("/y", 0));
    e.learner
        .handle_request(NOW, 7, 2, Request::Sync(PathRequest { path: "/y".into() }));
    let o = drain(&mut e.learner);
    assert_eq!(o.submits.len(), 2);
    assert_eq!(o.submits[1].op_type, op::SYNC);
    let txns = e.prepare(&o.submits[..1]);
    e.commit(&txns);
    e.learner.handle_sync_done();
    let o = drain(&mut e.learner);
    let got: Vec<(i32, i32)> = o.replies.iter().map(|r| (r.1, r.3)).collect();
    assert_eq!(got, vec![(1, 0), (2, 0)]);
    assert_eq!(o.replies[1].2, txns[0].zxid());
}

// A client resuming its session on a learner is answered after the leader's REVALIDATE.
#[test]
fn resume_on_learner_revalidates() {
    let mut e = Ensemble::new();
    let id = open_session(&mut e, 7);
    e.learner.handle_closed(7);
    let pw = corral_tree::session::session_password(id).to_vec();
    e.learner.handle_open(9, "127.0.0.1".into());
    e.learner.handle_connect(NOW, 9, &connect_req(id, pw));
    let o = drain(&mut e.learner);
    assert_eq!(o.revalidates, vec![(id, 30000)]);
    assert!(o.connects.is_empty());
    assert!(e.leader.check_session(NOW, id, 30000, Some(1)));
    e.learner.handle_revalidated(NOW, id, true);
    let o = drain(&mut e.learner);
    assert_eq!(o.connects, vec![(9, id)]);
    assert_eq!(e.learner.take_touches(), vec![(id, 30000)]);
}

// Only the leader expires sessions; the closeSession txn removes the ephemerals everywhere
// and the learner drops the client's connection.
#[test]
fn leader_expires_sessions_ensemble_wide() {
    let mut e = Ensemble::new();
    let id = open_session(&mut e, 7);
    e.learner.handle_request(NOW, 7, 1, create("/eph", 1));
    let o = drain(&mut e.learner);
    let txns = e.prepare(&o.submits);
    e.commit(&txns);
    drain(&mut e.learner);
    let later = Now {
        mono_ms: NOW.mono_ms + 120_000,
        wall_ms: NOW.wall_ms + 120_000,
    };
    e.learner.handle_tick(later);
    assert!(
        drain(&mut e.learner).submits.is_empty(),
        "learners never expire"
    );
    e.leader.handle_tick(later);
    let o = drain(&mut e.leader);
    assert_eq!(o.submits.len(), 1);
    assert_eq!(
        (o.submits[0].op_type, o.submits[0].session),
        (op::CLOSE_SESSION, id)
    );
    let txns = e.prepare(&o.submits);
    e.commit(&txns);
    assert!(e.learner.tree().get("/eph").is_none());
    assert!(!e.learner.sessions().contains(id));
    let o = drain(&mut e.learner);
    assert_eq!(o.closes, vec![7]);
}

// Losing the leader closes connections with unanswered requests, so clients retry elsewhere.
#[test]
fn role_change_closes_waiting_connections() {
    let mut e = Ensemble::new();
    open_session(&mut e, 7);
    open_session(&mut e, 8);
    e.learner.handle_request(NOW, 7, 1, create("/z", 0));
    drain(&mut e.learner);
    e.learner.set_role(NOW, Role::Leader);
    let o = drain(&mut e.learner);
    assert_eq!(o.closes, vec![7]);
}

// Regression (sim seed 2622): session A's ephemeral /a is deleted and re-created as a
// persistent node with a child by B, all still outstanding when A's closeSession is prepared.
// The close must not list /a (it is no longer A's); it did, deleting B's /a and orphaning its
// child, because the outstanding overlay keeps only a path's latest state.
#[test]
fn close_session_skips_an_ephemeral_recreated_in_flight() {
    let mut e = Ensemble::new();
    open_session(&mut e, 7);
    open_session(&mut e, 8);
    e.learner.handle_request(NOW, 7, 1, create("/a", 1));
    let o = drain(&mut e.learner);
    let t = e.prepare(&o.submits);
    e.commit(&t);
    drain(&mut e.learner);
    e.learner.handle_request(
        NOW,
        8,
        1,
        Request::Delete(DeleteRequest {
            path: "/a".into(),
            version: -1,
        }),
    );
    e.learner.handle_request(NOW, 8, 2, create("/a", 0));
    e.learner.handle_request(NOW, 8, 3, create("/a/y", 0));
    e.learner.handle_request(NOW, 7, 2, Request::CloseSession);
    let o = drain(&mut e.learner);
    assert_eq!(o.submits.len(), 4);
    let txns = e.prepare(&o.submits);
    match &txns[3].body {
        corral_proto::txn::TxnBody::CloseSession(Some(c)) => {
            assert!(c.paths_to_delete.is_empty(), "{:?}", c.paths_to_delete)
        }
        other => panic!("expected closeSession, got {other:?}"),
    }
    e.commit(&txns);
    assert!(e.leader.tree().get("/a/y").is_some());
    assert!(e.learner.tree().get("/a").is_some());
    assert_eq!(e.learner.tree().digest(), e.leader.tree().digest());
}

// ZooKeeper's SessionTracker.checkSession(id, owner) on the leader: once a session resumed
// through another server (REVALIDATE from it), a request still arriving through the former one
// fails with SessionMoved (sim seed 91); one of a session whose close was prepared fails with
// SessionExpired (sim seed 753). Either way nothing it asked for is applied.
#[test]
fn leader_fails_requests_of_moved_or_closing_sessions() {
    let mut e = Ensemble::new();
    let id = open_session(&mut e, 7);
    assert!(e.leader.check_session(NOW, id, 30000, Some(5)));
    e.learner.handle_request(NOW, 7, 1, create("/moved", 0));
    let o = drain(&mut e.learner);
    let mut stale = o.submits[0].clone();
    stale.owner = Some(4);
    let txns = e.prepare(&[stale]);
    assert_eq!(txns[0].body, TxnBody::Error(ErrorTxn { err: -118 }));
    let mut current = o.submits[0].clone();
    current.owner = Some(5);
    let txns = e.prepare(&[current]);
    assert!(
        matches!(txns[0].body, TxnBody::Create(_)),
        "{:?}",
        txns[0].body
    );
    e.learner.handle_request(NOW, 7, 2, Request::CloseSession);
    let mut close = drain(&mut e.learner).submits;
    close[0].owner = Some(5);
    let txns = e.prepare(&close);
    assert!(
        matches!(txns[0].body, TxnBody::CloseSession(_)),
        "{:?}",
        txns[0].body
    );
    // The same create again (another server forwarded it late), after the close.
    let mut late = o.submits[0].clone();
    late.owner = Some(5);
    let txns = e.prepare(&[late]);
    assert_eq!(txns[0].body, TxnBody::Error(ErrorTxn { err: -112 }));
}
