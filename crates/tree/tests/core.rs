//! Drives the sans-IO core the way the glue does (connect, requests, ticks) and checks what a
//! client would see on the wire: reply codes, zxids, stats, watch events and their order.

use corral_proto::jute::{Jute, Reader};
use corral_proto::records::*;
use corral_proto::request::*;
use corral_proto::txn::TxnBody;
use corral_tree::core::{Core, CoreConfig, Now, Output};

struct Harness {
    core: Core,
    now: Now,
    appended: Vec<corral_proto::txn::Txn>,
}

/// A decoded server frame.
#[derive(Debug, Clone, PartialEq)]
enum Frame {
    Reply {
        xid: i32,
        zxid: i64,
        err: i32,
        body: Vec<u8>,
    },
    Event {
        ty: i32,
        path: String,
    },
    Close,
}

impl Harness {
    fn new(cfg: CoreConfig) -> Harness {
        let now = Now {
            mono_ms: 1_000_000,
            wall_ms: 1_700_000_000_000,
        };
        Harness {
            core: Core::new(cfg, now),
            now,
            appended: Vec::new(),
        }
    }

    fn drain(&mut self) -> Vec<(u64, Frame)> {
        let mut out = Vec::new();
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::Append(t) => self.appended.push(t),
                o @ (Output::Submit(_) | Output::Revalidate { .. }) => {
                    panic!("a standalone core never asks the ZAB peer: {o:?}")
                }
                Output::Close { conn } => out.push((conn, Frame::Close)),
                Output::Send { conn, frame } => {
                    let b = &frame[4..];
                    let mut r = Reader::new(b);
                    let h = ReplyHeader::read(&mut r).unwrap();
                    if h.xid == -1 {
                        let e = WatcherEvent::read(&mut r).unwrap();
                        out.push((
                            conn,
                            Frame::Event {
                                ty: e.r#type,
                                path: e.path,
                            },
                        ));
                    } else {
                        out.push((
                            conn,
                            Frame::Reply {
                                xid: h.xid,
                                zxid: h.zxid,
                                err: h.err,
                                body: r.rest().to_vec(),
                            },
                        ));
                    }
                }
            }
        }
        out
    }

    fn connect(&mut self, conn: u64) -> i64 {
        self.core.handle_open(conn, "127.0.0.1".into());
        let c = Connect {
            req: ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: 30000,
                session_id: 0,
                passwd: Some(vec![0; 16]),
            },
            read_only: Some(false),
        };
        self.core.handle_connect(self.now, conn, &c);
        let out = self.core.poll_output();
        let _ = out; // Append of createSession
        let Some(Output::Send { frame, .. }) = self.core.poll_output() else {
            panic!("no connect response")
        };
        let resp = ConnectResponse::read(&mut Reader::new(&frame[4..])).unwrap();
        resp.session_id
    }

    fn req(&mut self, conn: u64, xid: i32, r: Request) -> Vec<(u64, Frame)> {
        self.core.handle_request(self.now, conn, xid, r);
        self.drain()
    }

    fn one(&mut self, conn: u64, xid: i32, r: Request) -> (i64, i32, Vec<u8>) {
        let f = self.req(conn, xid, r);
        match f.last() {
            Some((
                _,
                Frame::Reply {
                    zxid, err, body, ..
                },
            )) => (*zxid, *err, body.clone()),
            other => panic!("expected a reply, got {other:?}"),
        }
    }
}

fn open() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(b"v".to_vec()),
        acl: open(),
        flags,
    })
}

// A failed write consumes a zxid and is logged as an error txn (reference §3.1).
#[test]
fn failed_write_consumes_zxid() {
    let mut h = Harness::new(CoreConfig::default());
    h.connect(1);
    let (z1, e1, _) = h.one(1, 1, create("/a", 0));
    let (z2, e2, _) = h.one(1, 2, create("/a", 0));
    assert_eq!((e1, e2), (0, -110));
    assert_eq!(z2, z1 + 1);
    let last = h.appended.last().unwrap();
    assert_eq!(last.header.r#type, -1);
    assert!(last.digest.is_none());
}

// A data watch fires before the reply of the txn that triggered it, on the watching connection.
#[test]
fn notification_precedes_reply() {
    let mut h = Harness::new(CoreConfig::default());
    h.connect(1);
    h.connect(2);
    h.one(1, 1, create("/w", 0));
    h.one(
        2,
        1,
        Request::GetData(PathWatchRequest {
            path: "/w".into(),
            watch: true,
        }),
    );
    h.one(
        1,
        1,
        Request::Exists(PathWatchRequest {
            path: "/w".into(),
            watch: true,
        }),
    );
    let f = h.req(
        1,
        2,
        Request::SetData(SetDataRequest {
            path: "/w".into(),
            data: None,
            version: -1,
        }),
    );
    assert!(matches!(&f[0], (_, Frame::Event { ty: 3, path }) if path == "/w"));
    assert!(matches!(&f[1], (_, Frame::Event { ty: 3, .. })));
    assert!(matches!(f[2], (1, Frame::Reply { err: 0, .. })));
}

// A failed multi reports 0 / code / -2 per op and changes nothing (§2.6, §3.4).
#[test]
fn failed_multi_changes_nothing() {
    let mut h = Harness::new(CoreConfig::default());
    h.connect(1);
    h.one(1, 1, create("/x", 0));
    let ops = vec![
        MultiOp::Create {
            op: 1,
            req: CreateRequest {
                path: "/m".into(),
                data: None,
                acl: open(),
                flags: 0,
            },
        },
        MultiOp::Create {
            op: 1,
            req: CreateRequest {
                path: "/x".into(),
                data: None,
                acl: open(),
                flags: 0,
            },
        },
        MultiOp::SetData(SetDataRequest {
            path: "/x".into(),
            data: None,
            version: -1,
        }),
    ];
    let (_, err, body) = h.one(1, 2, Request::Multi(MultiDecode::Ops(ops)));
    assert_eq!(err, 0);
    let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "ffffffff000000000000000000ffffffff00ffffff92ffffff92ffffffff00fffffffefffffffeffffffff01ffffffff");
    assert!(h.core.tree().get("/m").is_none());
    assert!(matches!(h.appended.last().unwrap().body, TxnBody::Multi(_)));
}

// Session expiry deletes ephemerals, fires watches on other sessions, and closes the socket.
#[test]
fn expiry_removes_ephemerals() {
    let mut h = Harness::new(CoreConfig::default());
    h.connect(1);
    h.connect(2);
    h.one(1, 1, create("/e", 1));
    h.one(
        2,
        1,
        Request::Exists(PathWatchRequest {
            path: "/e".into(),
            watch: true,
        }),
    );
    // Keep session 2 alive while session 1 goes silent.
    h.now.mono_ms += 20_000;
    h.one(2, 2, Request::Ping);
    h.now.mono_ms += 20_000;
    h.core.handle_tick(h.now);
    let f = h.drain();
    assert!(
        f.contains(&(
            2,
            Frame::Event {
                ty: 2,
                path: "/e".into()
            }
        )),
        "{f:?}"
    );
    assert!(f.contains(&(1, Frame::Close)));
    assert!(h.core.tree().get("/e").is_none());
}

// Resuming with the right password keeps the session; a wrong one gets the invalid response
// (and, as in ZooKeeper, still costs the session its current connection).
#[test]
fn resume_checks_password() {
    let mut h = Harness::new(CoreConfig::default());
    let id = h.connect(1);
    h.core.handle_closed(1);
    h.core.handle_open(2, "127.0.0.1".into());
    let pw = corral_tree::session::session_password(id).to_vec();
    let mk = |pw: Vec<u8>| Connect {
        req: ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 10000,
            session_id: id,
            passwd: Some(pw),
        },
        read_only: None,
    };
    h.core.handle_connect(h.now, 2, &mk(pw));
    let Some(Output::Send { frame, .. }) = h.core.poll_output() else {
        panic!()
    };
    assert_eq!(frame.len(), 40, "old-client response has no readOnly byte");
    let r = ConnectResponse::read(&mut Reader::new(&frame[4..])).unwrap();
    assert_eq!((r.session_id, r.time_out), (id, 10000));
    h.core.handle_open(3, "127.0.0.1".into());
    h.core.handle_connect(h.now, 3, &mk(vec![1; 16]));
    let f = h.drain();
    assert!(f.contains(&(3, Frame::Close)));
    // ZooKeeper drops the session's current connection before it checks the password.
    assert!(f.contains(&(2, Frame::Close)));
}

// Containers that had a child and became empty are reaped on the check interval.
#[test]
fn container_reaped() {
    let mut h = Harness::new(CoreConfig {
        container_check_interval_ms: 1000,
        ..CoreConfig::default()
    });
    h.connect(1);
    let c = CreateRequest {
        path: "/c".into(),
        data: None,
        acl: open(),
        flags: 4,
    };
    assert_eq!(h.one(1, 1, Request::CreateContainer(c)).1, 0);
    h.one(1, 2, create("/c/x", 0));
    h.one(
        1,
        3,
        Request::Delete(DeleteRequest {
            path: "/c/x".into(),
            version: -1,
        }),
    );
    h.now.mono_ms += 1000;
    h.core.handle_tick(h.now);
    h.drain();
    assert!(h.core.tree().get("/c").is_none());
}

fn ttl_harness() -> Harness {
    let mut h = Harness::new(CoreConfig {
        container_check_interval_ms: 1000,
        extended_types: true,
        ..CoreConfig::default()
    });
    h.connect(1);
    let t = CreateTtlRequest {
        path: "/t".into(),
        data: None,
        acl: open(),
        flags: 5,
        ttl: 10_000,
    };
    assert_eq!(h.one(1, 1, Request::CreateTtl(t)).1, 0);
    h
}

fn tick(h: &mut Harness, mono: u64, wall: i64) {
    h.now.mono_ms += mono;
    h.now.wall_ms += wall;
    h.core.handle_tick(h.now);
    h.drain();
}

// A TTL node goes once it has been idle for its TTL, on both clocks.
#[test]
fn ttl_node_reaped_after_its_ttl() {
    let mut h = ttl_harness();
    tick(&mut h, 9_000, 9_000);
    assert!(h.core.tree().get("/t").is_some(), "reaped before its TTL");
    tick(&mut h, 2_000, 2_000);
    assert!(
        h.core.tree().get("/t").is_none(),
        "not reaped after its TTL"
    );
}

// A wall clock that jumps forward (NTP step, VM resume) does not reap a TTL node early: the
// monotonic time since the node last changed must reach the TTL as well. ZooKeeper reads
// only the wall clock here.
#[test]
fn ttl_survives_wall_clock_jump() {
    let mut h = ttl_harness();
    tick(&mut h, 1_000, 120_000);
    assert!(h.core.tree().get("/t").is_some(), "reaped by a clock jump");
    // A setData restarts the TTL on both clocks.
    tick(&mut h, 8_000, 8_000);
    let set = Request::SetData(SetDataRequest {
        path: "/t".into(),
        data: Some(b"x".to_vec()),
        version: -1,
    });
    assert_eq!(h.one(1, 2, set).1, 0);
    tick(&mut h, 9_000, 9_000);
    assert!(
        h.core.tree().get("/t").is_some(),
        "reaped before its TTL from the setData"
    );
    tick(&mut h, 2_000, 2_000);
    assert!(
        h.core.tree().get("/t").is_none(),
        "not reaped after its TTL"
    );
}

// A failed multi that would have deleted the TTL node changed nothing, so it does not reset
// what the reaper knows of the node (it once made the monotonic guard forget it).
#[test]
fn failed_multi_leaves_ttl_guard() {
    let mut h = ttl_harness();
    let del = |path: &str| {
        MultiOp::Delete(DeleteRequest {
            path: path.into(),
            version: -1,
        })
    };
    tick(&mut h, 8_000, 8_000);
    let set = Request::SetData(SetDataRequest {
        path: "/t".into(),
        data: None,
        version: -1,
    });
    assert_eq!(h.one(1, 2, set).1, 0);
    let ops = vec![del("/t"), del("/nope")];
    h.one(1, 3, Request::Multi(MultiDecode::Ops(ops)));
    assert!(h.core.tree().get("/t").is_some());
    tick(&mut h, 3_000, 120_000);
    assert!(h.core.tree().get("/t").is_some(), "reaped by a clock jump");
}
