//! Simulated ZooKeeper clients. Each keeps one session, talks to one node at a time over a
//! FIFO connection, pipelines a few requests, pings when idle, gives up on a silent
//! connection after 2/3 of the session timeout (as `ClientCnxn` does) and resumes its session
//! on a random node, sending the last zxid it saw. Every request is recorded as an
//! invoke/complete pair; a request whose connection was lost completes as `Unknown` (a write
//! may or may not have happened).
//!
//! Checked on every reply: replies come in request order, the reply zxid never goes back on a
//! session, an acknowledged write is on the chain with its session and cxid, a `sync` returns
//! a zxid at least as new as every write acknowledged before it was invoked, and so does the
//! next read after it.

use std::collections::VecDeque;

use corral_proto::jute::{Jute, Reader};
use corral_proto::records::*;
use corral_proto::request::{Connect, MultiDecode, MultiOp, Request};

use crate::rng::Fnv;
use crate::sim::{CConn, Sim, C2N, N2C};
use crate::watch::{Set, Watches};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Create,
    /// createContainer or createTTL (answered with path and Stat).
    Create2,
    SetData,
    SetAcl,
    GetAcl,
    Delete,
    GetData,
    Exists,
    GetChildren,
    Multi,
    Sync,
    CloseSession,
    /// addWatch (persistent or recursive).
    AddWatch,
    /// The SetWatches a resumed session sends first on a new connection.
    SetWatches,
}

impl OpKind {
    pub fn is_write(self) -> bool {
        matches!(
            self,
            OpKind::Create
                | OpKind::Create2
                | OpKind::SetData
                | OpKind::SetAcl
                | OpKind::Delete
                | OpKind::Multi
                | OpKind::CloseSession
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "invoke-create",
            OpKind::Create2 => "invoke-create2",
            OpKind::SetData => "invoke-setData",
            OpKind::SetAcl => "invoke-setACL",
            OpKind::GetAcl => "invoke-getACL",
            OpKind::Delete => "invoke-delete",
            OpKind::GetData => "invoke-getData",
            OpKind::Exists => "invoke-exists",
            OpKind::GetChildren => "invoke-getChildren",
            OpKind::Multi => "invoke-multi",
            OpKind::Sync => "invoke-sync",
            OpKind::CloseSession => "invoke-closeSession",
            OpKind::AddWatch => "invoke-addWatch",
            OpKind::SetWatches => "invoke-setWatches",
        }
    }

    pub fn is_read(self) -> bool {
        matches!(
            self,
            OpKind::GetData | OpKind::Exists | OpKind::GetChildren | OpKind::GetAcl
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pending,
    Done {
        err: i32,
        zxid: i64,
        summary: u64,
    },
    /// The connection was lost first: the request may or may not have taken effect.
    Unknown,
}

/// One request in the history.
#[derive(Debug, Clone)]
pub struct Hist {
    pub client: usize,
    pub session: i64,
    pub xid: i32,
    pub kind: OpKind,
    pub path: String,
    pub node: i64,
    pub invoke_ms: u64,
    pub complete_ms: Option<u64>,
    pub outcome: Outcome,
}

impl Hist {
    pub fn hash(&self) -> u64 {
        let mut h = Fnv::default();
        h.u64(self.client as u64);
        h.u64(self.session as u64);
        h.u64(self.xid as u64);
        h.bytes(format!("{:?}{}", self.kind, self.path).as_bytes());
        h.u64(self.node as u64);
        h.u64(self.invoke_ms);
        h.u64(self.complete_ms.unwrap_or(0));
        match &self.outcome {
            Outcome::Pending => h.u64(1),
            Outcome::Unknown => h.u64(2),
            Outcome::Done { err, zxid, summary } => {
                h.u64(*err as u64);
                h.u64(*zxid as u64);
                h.u64(*summary);
            }
        }
        h.finish()
    }
}

struct Outstanding {
    xid: i32,
    kind: OpKind,
    hist: usize,
    /// Sync: the highest acknowledged write when it was invoked.
    sync_floor: i64,
    is_final: bool,
    /// Its index in the checker's history (`Sim::rec`); watch bookkeeping is not in it.
    lin: Option<usize>,
    /// A read with a watch, or an addWatch with its mode.
    watch: Option<WatchReq>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WatchReq {
    Read,
    Persistent,
    Recursive,
}

/// The liveness phase's fresh write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Final {
    Idle,
    Wanted,
    Sent,
    Done,
}

pub struct Client {
    id: usize,
    session: Option<(i64, Vec<u8>)>,
    timeout_ms: i32,
    /// Highest reply zxid on the current session.
    session_zxid: i64,
    /// `lastZxidSeen` sent when connecting.
    last_zxid_seen: i64,
    conn: Option<u64>,
    node: i64,
    established: bool,
    opened_at: u64,
    last_recv: u64,
    last_send: u64,
    ping_out: bool,
    outstanding: VecDeque<Outstanding>,
    next_xid: i32,
    retry_at: u64,
    /// After a sync: the next read must be at least this new.
    read_floor: Option<i64>,
    pub final_state: Final,
    counter: u64,
    /// The session's watches and what the connection was notified of.
    pub watches: Watches,
}

impl Client {
    pub fn new(id: usize) -> Client {
        Client {
            id,
            session: None,
            timeout_ms: 0,
            session_zxid: 0,
            last_zxid_seen: 0,
            conn: None,
            node: 0,
            established: false,
            opened_at: 0,
            last_recv: 0,
            last_send: 0,
            ping_out: false,
            outstanding: VecDeque::new(),
            next_xid: 1,
            retry_at: 0,
            read_floor: None,
            final_state: Final::Idle,
            counter: 0,
            watches: Watches::default(),
        }
    }
}

impl Client {
    pub fn session_id(&self) -> Option<i64> {
        self.session.as_ref().map(|s| s.0)
    }

    /// A closeSession of its own is in flight.
    pub fn closing(&self) -> bool {
        self.outstanding
            .iter()
            .any(|o| o.kind == OpKind::CloseSession)
    }
}

const PATHS: [&str; 6] = ["/a", "/b", "/c", "/a/x", "/a/y", "/b/x"];
const SEQ_PARENTS: [&str; 3] = ["", "/a", "/b"];
/// Where addWatch sets persistent and recursive watches.
const WATCH_ROOTS: [&str; 5] = ["/", "/a", "/b", "/a/x", "/c"];
const CONNECT_TIMEOUT_MS: u64 = 3_000;

fn open_acl() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}

/// TTLs of the workload's TTL nodes (ms): a few reaper checks long, so they come and go.
const TTL_MS: (u64, u64) = (500, 6_000);

impl Sim {
    /// Mostly the open ACL; now and then one without WRITE, CREATE, DELETE or ADMIN. READ is
    /// always granted: ZooKeeper 3.8.4+ (and corral) withhold notifications a connection may
    /// not read, which the watch checks do not model.
    fn random_acl(&mut self, restricted_pct: u64) -> Vec<Acl> {
        if !self.rng.chance(restricted_pct) {
            return open_acl();
        }
        let drop = *(self.rng)
            .pick(&[perms::WRITE, perms::CREATE, perms::DELETE, perms::ADMIN])
            .expect("not empty");
        vec![Acl::new(perms::ALL & !drop, "world", "anyone")]
    }
}

impl Sim {
    pub(crate) fn client_tick(&mut self, c: usize) {
        let d = self.rng.range(5, 30);
        self.schedule(d, crate::sim::Ev::ClientTick { client: c });
        let now = self.now;
        let cl = &self.clients[c];
        if cl.conn.is_none() {
            if now >= cl.retry_at {
                self.connect(c);
            }
            return;
        }
        if !cl.established {
            if now - cl.opened_at > CONNECT_TIMEOUT_MS {
                self.drop_conn(c, "connect timeout");
            }
            return;
        }
        let waiting = !cl.outstanding.is_empty() || cl.ping_out;
        if waiting && now - cl.last_recv > (cl.timeout_ms as u64) * 2 / 3 {
            return self.drop_conn(c, "read timeout");
        }
        let room = cl.outstanding.len() < self.p.max_inflight;
        if cl.final_state == Final::Wanted && room {
            self.issue(c, None);
        } else if self.random_ops && room && self.rng.chance(self.p.op_pct) {
            let r = self.rng.below(100);
            let kind = match r {
                0..=19 => OpKind::Create,
                20..=32 => OpKind::SetData,
                33..=42 => OpKind::Delete,
                43..=56 => OpKind::GetData,
                57..=65 => OpKind::Exists,
                66..=71 => OpKind::GetChildren,
                72..=80 => OpKind::Multi,
                81..=89 => OpKind::Sync,
                90..=93 => OpKind::AddWatch,
                94..=95 => OpKind::SetAcl,
                96..=98 => OpKind::GetAcl,
                _ => OpKind::CloseSession,
            };
            self.issue(c, Some(kind));
        } else if !cl.ping_out && now - cl.last_send > (cl.timeout_ms as u64) / 3 {
            let conn = cl.conn.expect("connected");
            let cl = &mut self.clients[c];
            cl.ping_out = true;
            if cl.outstanding.is_empty() {
                cl.last_recv = now;
            }
            cl.last_send = now;
            self.send_node(conn, C2N::Request(xid::PING, Request::Ping));
        }
    }

    fn connect(&mut self, c: usize) {
        let sid = 1 + self.rng.below(self.nodes.len() as u64) as i64;
        let node_inc = self.inc_of(sid);
        let conn = self.next_cconn;
        self.next_cconn += 1;
        self.cconns.insert(
            conn,
            CConn {
                client: c,
                node: sid,
                node_inc,
            },
        );
        let timeout = self.p.session_timeout_ms;
        let now = self.now;
        let cl = &mut self.clients[c];
        cl.conn = Some(conn);
        cl.node = sid;
        cl.established = false;
        cl.opened_at = now;
        cl.last_recv = now;
        cl.last_send = now;
        let (session_id, passwd) = cl.session.clone().unwrap_or((0, vec![0; 16]));
        let connect = Connect {
            req: ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: cl.last_zxid_seen,
                time_out: timeout,
                session_id,
                passwd: Some(passwd),
            },
            read_only: Some(false),
        };
        self.trace("client-connect", c as i64, session_id, sid);
        self.send_node(conn, C2N::Open);
        self.send_node(conn, C2N::Connect(connect));
    }

    pub(crate) fn cut_client(&mut self, c: usize) {
        if self.clients[c].conn.is_some() {
            self.drop_conn(c, "cut");
        }
    }

    fn drop_conn(&mut self, c: usize, why: &'static str) {
        let now = self.now;
        let backoff = self.rng.range(5, 200);
        let cl = &mut self.clients[c];
        let Some(conn) = cl.conn.take() else { return };
        cl.established = false;
        cl.ping_out = false;
        cl.retry_at = now + backoff;
        cl.watches.connection_lost();
        let lost: Vec<Outstanding> = cl.outstanding.drain(..).collect();
        for o in &lost {
            if o.is_final {
                cl.final_state = Final::Wanted;
            }
        }
        if lost.iter().any(|o| o.kind == OpKind::CloseSession) {
            // Like ZooKeeper.close(): the handle is closed whatever became of the request; the
            // session is never used again (its closeSession may still be applied late: the
            // leader does not check a closeSession's owner, ZooKeeper's PrepRequestProcessor
            // neither), and the client starts a new one.
            cl.session = None;
            cl.session_zxid = 0;
            cl.read_floor = None;
            cl.watches.clear();
        }
        for o in lost {
            let h = &mut self.history[o.hist];
            h.outcome = Outcome::Unknown;
            h.complete_ms = Some(now);
            self.report.ops_unknown += 1;
        }
        self.trace(why, c as i64, conn as i64, 0);
        self.send_node(conn, C2N::Closed);
    }

    /// Issue a random op of `kind`, or the final fresh write when `None`.
    fn issue(&mut self, c: usize, kind: Option<OpKind>) {
        let is_final = kind.is_none();
        let cl = &mut self.clients[c];
        cl.counter += 1;
        let data = Some(format!("c{}-{}", cl.id, cl.counter).into_bytes());
        let (id, counter) = (cl.id, cl.counter);
        let path = self.rng.pick(&PATHS).expect("not empty").to_string();
        let (kind, path, req) = match kind {
            None => {
                let path = format!("/final-{id}-{counter}");
                let req = Request::Create(CreateRequest {
                    path: path.clone(),
                    data,
                    acl: open_acl(),
                    flags: 0,
                });
                (OpKind::Create, path, req)
            }
            Some(OpKind::Create) => {
                let acl = self.random_acl(15);
                // Containers (flags 4) and TTL nodes (5, 6 sequential) one create in ten each.
                let flags = *(self.rng)
                    .pick(&[0, 0, 0, 1, 1, 2, 3, 3, 4, 5, 6, 6])
                    .expect("not empty");
                let path = if flags & 2 != 0 {
                    format!("{}/s-", self.rng.pick(&SEQ_PARENTS).expect("not empty"))
                } else {
                    path
                };
                let create = CreateRequest {
                    path: path.clone(),
                    data,
                    acl,
                    flags,
                };
                let req = match flags {
                    4 => Request::CreateContainer(create),
                    5 | 6 => Request::CreateTtl(CreateTtlRequest {
                        path: create.path,
                        data: create.data,
                        acl: create.acl,
                        flags,
                        ttl: self.rng.range(TTL_MS.0, TTL_MS.1) as i64,
                    }),
                    _ => Request::Create(create),
                };
                let kind = if flags >= 4 {
                    OpKind::Create2
                } else {
                    OpKind::Create
                };
                (kind, path, req)
            }
            Some(OpKind::SetAcl) => {
                let acl = self.random_acl(40);
                let version = *self.rng.pick(&[-1, -1, -1, 0, 1]).expect("not empty");
                let req = Request::SetAcl(SetAclRequest {
                    path: path.clone(),
                    acl,
                    version,
                });
                (OpKind::SetAcl, path, req)
            }
            Some(OpKind::GetAcl) => {
                let req = Request::GetAcl(PathRequest { path: path.clone() });
                (OpKind::GetAcl, path, req)
            }
            Some(OpKind::Create2) => unreachable!("chosen under Create"),
            Some(OpKind::SetData) => {
                let req = Request::SetData(SetDataRequest {
                    path: path.clone(),
                    data,
                    version: -1,
                });
                (OpKind::SetData, path, req)
            }
            Some(OpKind::Delete) => {
                let req = Request::Delete(DeleteRequest {
                    path: path.clone(),
                    version: -1,
                });
                (OpKind::Delete, path, req)
            }
            Some(k @ (OpKind::GetData | OpKind::Exists | OpKind::GetChildren)) => {
                // A one-shot watch where the session holds a persistent one would replace it in
                // ZooKeeper 3.8.0's one-mode-per-path tables (a quirk later versions dropped):
                // the workload stays clear of it, so the checked model need not carry it.
                let clear = !self.clients[c].watches.holds_persistent(&path);
                let r = PathWatchRequest {
                    path: path.clone(),
                    watch: clear && self.rng.chance(40),
                };
                let req = match k {
                    OpKind::GetData => Request::GetData(r),
                    OpKind::Exists => Request::Exists(r),
                    _ => Request::GetChildren(r),
                };
                (k, path, req)
            }
            Some(OpKind::Multi) => {
                let n = self.rng.range(1, 3);
                let mut ops = Vec::new();
                for _ in 0..n {
                    let p = self.rng.pick(&PATHS).expect("not empty").to_string();
                    ops.push(match self.rng.below(4) {
                        0 => MultiOp::Create {
                            op: op::CREATE,
                            req: CreateRequest {
                                path: p,
                                data: data.clone(),
                                acl: open_acl(),
                                flags: 0,
                            },
                        },
                        1 => MultiOp::SetData(SetDataRequest {
                            path: p,
                            data: data.clone(),
                            version: -1,
                        }),
                        2 => MultiOp::Delete(DeleteRequest {
                            path: p,
                            version: -1,
                        }),
                        _ => MultiOp::Check(CheckVersionRequest {
                            path: p,
                            version: -1,
                        }),
                    });
                }
                let req = Request::Multi(MultiDecode::Ops(ops));
                (OpKind::Multi, path, req)
            }
            Some(OpKind::Sync) => {
                let req = Request::Sync(PathRequest { path: path.clone() });
                (OpKind::Sync, path, req)
            }
            Some(OpKind::CloseSession) => {
                (OpKind::CloseSession, String::new(), Request::CloseSession)
            }
            Some(OpKind::AddWatch) => {
                let path = self.rng.pick(&WATCH_ROOTS).expect("not empty").to_string();
                if self.clients[c].watches.holds_persistent(&path) {
                    return;
                }
                let mode = *self.rng.pick(&[0, 1]).expect("not empty");
                let req = Request::AddWatch(AddWatchRequest {
                    path: path.clone(),
                    mode,
                });
                (OpKind::AddWatch, path, req)
            }
            Some(OpKind::SetWatches) => unreachable!("sent on reconnect only"),
        };
        self.send_request(c, kind, path, req, is_final);
    }

    /// Send `req` on the client's connection, recording it.
    fn send_request(&mut self, c: usize, kind: OpKind, path: String, req: Request, is_final: bool) {
        let watch = match &req {
            Request::GetData(r) | Request::Exists(r) | Request::GetChildren(r) if r.watch => {
                Some(WatchReq::Read)
            }
            Request::AddWatch(r) if r.mode == add_watch_mode::PERSISTENT => {
                Some(WatchReq::Persistent)
            }
            Request::AddWatch(_) => Some(WatchReq::Recursive),
            _ => None,
        };
        let now = self.now;
        let floor = self.max_acked_write;
        let cl = &mut self.clients[c];
        let conn = cl.conn.expect("connected");
        let xid = cl.next_xid;
        cl.next_xid += 1;
        if is_final {
            cl.final_state = Final::Sent;
        }
        if cl.outstanding.is_empty() && !cl.ping_out {
            cl.last_recv = now;
        }
        cl.last_send = now;
        let hist = self.history.len();
        let session = cl.session.as_ref().map_or(0, |s| s.0);
        let lin = if kind == OpKind::SetWatches {
            None
        } else {
            Some(
                self.rec
                    .invoke(session, xid, now, crate::record::call_of(&req)),
            )
        };
        let cl = &mut self.clients[c];
        cl.outstanding.push_back(Outstanding {
            xid,
            kind,
            hist,
            sync_floor: floor,
            is_final,
            lin,
            watch,
        });
        let node = cl.node;
        self.history.push(Hist {
            client: c,
            session,
            xid,
            kind,
            path,
            node,
            invoke_ms: now,
            complete_ms: None,
            outcome: Outcome::Pending,
        });
        self.trace(kind.name(), c as i64, session, xid as i64);
        self.send_node(conn, C2N::Request(xid, req));
    }

    pub(crate) fn node_to_client(&mut self, conn: u64, m: N2C) {
        let Some(cc) = self.cconns.get(&conn) else {
            return;
        };
        let c = cc.client;
        if self.clients[c].conn != Some(conn) {
            return;
        }
        match m {
            N2C::Closed => self.drop_conn(c, "closed-by-server"),
            N2C::Frame(f) => self.client_frame(c, f),
        }
    }

    fn client_frame(&mut self, c: usize, frame: Vec<u8>) {
        let now = self.now;
        self.clients[c].last_recv = now;
        if frame.len() < 4 {
            return self.fail("frames decode", format!("client {c}: short frame"));
        }
        let body = &frame[4..];
        if !self.clients[c].established {
            let resp = match ConnectResponse::read(&mut Reader::new(body)) {
                Ok(r) => r,
                Err(e) => return self.fail("frames decode", format!("client {c}: {e}")),
            };
            let cl = &mut self.clients[c];
            if resp.session_id == 0 || resp.time_out <= 0 {
                // Expired (or never known): the handle is dead; start over with a new session.
                let old = cl.session.take().map_or(0, |s| s.0);
                cl.session_zxid = 0;
                cl.watches.clear();
                self.rec.expired(old);
                self.trace("session-expired", c as i64, old, 0);
                return self.drop_conn(c, "expired");
            }
            if let Some((id, _)) = &cl.session {
                if *id != resp.session_id {
                    let msg = format!("client {c}: resumed 0x{id:x}, got 0x{:x}", resp.session_id);
                    return self.fail("a resumed session keeps its id", msg);
                }
                self.rec.reconnected(resp.session_id);
            } else {
                cl.session = Some((resp.session_id, resp.passwd.clone().unwrap_or_default()));
                cl.session_zxid = 0;
                cl.watches.clear();
            }
            cl.established = true;
            cl.timeout_ms = resp.time_out;
            let node = cl.node;
            let resend = cl.watches.resend(cl.last_zxid_seen);
            self.trace("client-up", c as i64, resp.session_id, node);
            // As the Java client: the watches go first on the new connection.
            if let Some(sw) = resend {
                let path = String::new();
                self.send_request(c, OpKind::SetWatches, path, Request::SetWatches2(sw), false);
            }
            return;
        }
        let mut r = Reader::new(body);
        let h = match ReplyHeader::read(&mut r) {
            Ok(h) => h,
            Err(e) => return self.fail("frames decode", format!("client {c}: {e}")),
        };
        if h.xid == xid::NOTIFICATION {
            let ev = match WatcherEvent::read(&mut r) {
                Ok(e) => e,
                Err(e) => return self.fail("frames decode", format!("client {c}: {e}")),
            };
            if let Err(e) = self.watch_triggers() {
                return self.fail("every committed txn is known", e);
            }
            let session = self.clients[c].session_id().unwrap_or(0);
            self.trace("notified", c as i64, session, ev.r#type as i64);
            let cl = &mut self.clients[c];
            if let Err(e) = cl.watches.notified(&self.triggers, (ev.r#type, ev.path)) {
                let held = cl.watches.describe();
                let msg = format!("client {c} session 0x{session:x}: {e}; watches held: {held}");
                return self.fail("a watch fires once per trigger, in zxid order", msg);
            }
            return;
        }
        if h.xid == xid::PING {
            self.clients[c].ping_out = false;
            return;
        }
        let rest = r.rest().to_vec();
        let Some(o) = self.clients[c].outstanding.pop_front() else {
            let msg = format!("client {c}: reply xid {} with nothing outstanding", h.xid);
            return self.fail("replies answer requests", msg);
        };
        if o.xid != h.xid {
            let cl = &self.clients[c];
            let overtook_sync = o.kind == OpKind::Sync
                || cl
                    .outstanding
                    .iter()
                    .take_while(|x| x.xid != h.xid)
                    .any(|x| x.kind == OpKind::Sync);
            let msg = format!(
                "client {c}: reply xid {} while xid {} ({:?}) is oldest",
                h.xid, o.xid, o.kind
            );
            let stale = cl
                .session_id()
                .is_some_and(|s| self.stale_pending.contains(&(cl.node, s)));
            let invariant = match (overtook_sync, stale) {
                (true, _) => crate::known::SYNC_OVERTAKEN,
                (false, true) => crate::known::STALE_PENDING,
                (false, false) => "per-session FIFO",
            };
            return self.fail(invariant, msg);
        }
        self.complete(c, o, h, &rest);
    }

    fn complete(&mut self, c: usize, o: Outstanding, h: ReplyHeader, body: &[u8]) {
        let now = self.now;
        let summary = if o.kind == OpKind::GetChildren && h.err == 0 {
            match GetChildrenResponse::read(&mut Reader::new(body)) {
                Ok(mut r) => {
                    r.children.sort();
                    let mut f = Fnv::default();
                    for ch in &r.children {
                        f.bytes(ch.as_bytes());
                        f.u64(0);
                    }
                    f.finish()
                }
                Err(e) => return self.fail("frames decode", format!("client {c}: {e}")),
            }
        } else {
            crate::rng::fingerprint(body)
        };
        if let Some(lin) = o.lin {
            match crate::record::res_of(o.kind, h.err, body) {
                Ok(res) => self.rec.complete(lin, now, h.zxid, res),
                Err(e) => {
                    let msg = format!("client {c}: {:?} reply: {e}", o.kind);
                    return self.fail("frames decode", msg);
                }
            }
        }
        if !self.check_watches(c, &o, &h) {
            return;
        }
        let hist = &mut self.history[o.hist];
        hist.complete_ms = Some(now);
        hist.outcome = Outcome::Done {
            err: h.err,
            zxid: h.zxid,
            summary,
        };
        self.report.ops_completed += 1;
        let session = hist.session;
        self.trace("complete", c as i64, h.zxid, h.xid as i64);
        let cl = &mut self.clients[c];
        if h.zxid < cl.session_zxid {
            let msg = format!(
                "client {c} session 0x{session:x}: {:?} xid {} replied at 0x{:x} after 0x{:x}",
                o.kind, h.xid, h.zxid, cl.session_zxid
            );
            return self.fail("reply zxids never go back on a session", msg);
        }
        cl.session_zxid = h.zxid;
        cl.last_zxid_seen = cl.last_zxid_seen.max(h.zxid);
        if o.kind.is_write() {
            let on_chain = self
                .chain
                .get(h.zxid)
                .is_some_and(|e| e.txn.session == session && e.txn.cxid == h.xid);
            if !on_chain {
                let e = self.chain.get(h.zxid).map(|e| e.txn);
                let msg = format!(
                    "client {c} session 0x{session:x} xid {} acknowledged at 0x{:x}, chain has {e:?}",
                    h.xid, h.zxid
                );
                return self.fail("an acknowledged write is on the chain", msg);
            }
            self.max_acked_write = self.max_acked_write.max(h.zxid);
            self.acked.push((h.zxid, session, h.xid));
        }
        let cl = &mut self.clients[c];
        if o.kind == OpKind::Sync {
            if h.zxid < o.sync_floor {
                let msg = format!(
                    "client {c}: sync replied at 0x{:x}, a write was acknowledged at 0x{:x} before it",
                    h.zxid, o.sync_floor
                );
                return self.fail("sync sees every write acknowledged before it", msg);
            }
            cl.read_floor = Some(cl.read_floor.unwrap_or(0).max(o.sync_floor));
        }
        if o.kind.is_read() {
            if let Some(floor) = cl.read_floor.take() {
                if h.zxid < floor {
                    let msg = format!(
                        "client {c}: read after sync at 0x{:x}, a write was acknowledged at 0x{floor:x} before the sync",
                        h.zxid
                    );
                    return self.fail(
                        "a read after sync sees every write acknowledged before it",
                        msg,
                    );
                }
            }
        }
        if o.is_final {
            if h.err != 0 {
                let msg = format!("client {c}: fresh create failed with {}", h.err);
                return self.fail("the liveness write succeeds", msg);
            }
            cl.final_state = Final::Done;
        }
        if o.kind == OpKind::CloseSession && h.err == 0 {
            cl.watches.clear();
            cl.session = None;
            cl.session_zxid = 0;
            cl.read_floor = None;
            self.drop_conn(c, "session-closed");
        }
    }
}

impl Sim {
    /// The chain's txns as watch triggers, up to date.
    pub(crate) fn watch_triggers(&mut self) -> Result<(), String> {
        self.triggers.advance(&self.chain, &self.bodies)
    }

    /// Watches on a reply: every notification due at or before it came first; a SetWatches
    /// reply settles what the resend fired; a successful watching read or addWatch sets one.
    /// False when the run failed.
    fn check_watches(&mut self, c: usize, o: &Outstanding, h: &ReplyHeader) -> bool {
        if let Err(e) = self.watch_triggers() {
            self.fail("every committed txn is known", e);
            return false;
        }
        let session = self.clients[c].session_id().unwrap_or(0);
        let w = &mut self.clients[c].watches;
        let (checked, invariant) = if o.kind == OpKind::SetWatches {
            (
                w.resent(&self.triggers, h.err, h.zxid),
                "a reconnect fires what SetWatches calls for",
            )
        } else {
            (
                w.replied(&self.triggers, h.zxid),
                "a watch fires before the client sees newer data",
            )
        };
        if let Err(e) = checked {
            let held = self.clients[c].watches.describe();
            let msg = format!("client {c} session 0x{session:x}: {e}; watches held: {held}");
            self.fail(invariant, msg);
            return false;
        }
        let no_node = corral_proto::ErrorCode::NoNode.code();
        let set = match (o.watch, o.kind, h.err) {
            (Some(WatchReq::Read), OpKind::GetData | OpKind::Exists, 0) => Some(Set::Data),
            (Some(WatchReq::Read), OpKind::Exists, e) if e == no_node => Some(Set::Exist),
            (Some(WatchReq::Read), OpKind::GetChildren, 0) => Some(Set::Child),
            (Some(WatchReq::Persistent), OpKind::AddWatch, 0) => Some(Set::Persistent),
            (Some(WatchReq::Recursive), OpKind::AddWatch, 0) => Some(Set::Recursive),
            _ => None,
        };
        if let Some(kind) = set {
            let path = self.history[o.hist].path.clone();
            self.clients[c].watches.set(kind, &path);
        }
        true
    }
}
