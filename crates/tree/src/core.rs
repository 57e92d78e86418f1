//! The standalone server as a sans-IO state machine. The glue feeds it connection events,
//! decoded requests and ticks, each with the time; it answers with an ordered queue of outputs
//! (frames to send, connections to close, txns to persist). Output order is the contract: a
//! watch notification is queued before the reply of the txn that fired it, and a reply that
//! follows an `Append` must not be sent before that txn is durable.

use std::collections::{HashMap, VecDeque};

use corral_proto::jute::Jute;
use corral_proto::records::*;
use corral_proto::request::*;
use corral_proto::txn::*;
use corral_proto::ErrorCode;

use crate::acl::{self, AclPolicy, AuthOutcome};
use crate::prep::{CreateKind, CreateMode, Ctx, View};
use crate::session::{session_password, SessionTable};
use crate::tree::{DataTree, NodeKind, Trigger};
use crate::watch::{ConnId, WatchManager, WatchMode};

/// Settings the core needs (the glue derives them from zoo.cfg and -D properties).
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub server_id: u8,
    pub tick_ms: u32,
    pub session_timeout_ms_min: u32,
    pub session_timeout_ms_max: u32,
    pub acl: AclPolicy,
    pub extended_types: bool,
    pub reconfig_enabled: bool,
    pub close_session_txn_enabled: bool,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u32,
    pub container_max_never_used_interval_ms: u64,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            server_id: 1,
            tick_ms: 2000,
            session_timeout_ms_min: 4000,
            session_timeout_ms_max: 40000,
            acl: AclPolicy::default(),
            extended_types: false,
            reconfig_enabled: false,
            close_session_txn_enabled: true,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            container_max_never_used_interval_ms: 0,
        }
    }
}

/// The two clocks the core uses: monotonic for session expiry, wall for txn times.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono_ms: u64,
    pub wall_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write this frame to the connection.
    Send { conn: ConnId, frame: Vec<u8> },
    /// Close the connection once everything queued for it before has been written.
    Close { conn: ConnId },
    /// A txn was applied; storage persists it. Later `Send`s wait until it is durable.
    Append(Txn),
}

/// Per-connection state the core keeps.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub session: i64,
    pub remote_ip: String,
    pub auth: Vec<Id>,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_op: &'static str,
    /// The core asked for this connection to be closed; later requests are ignored.
    pub closing: bool,
}

pub struct Core {
    cfg: CoreConfig,
    tree: DataTree,
    data_watches: WatchManager,
    child_watches: WatchManager,
    sessions: SessionTable,
    conns: HashMap<ConnId, ConnInfo>,
    session_conn: HashMap<i64, ConnId>,
    out: VecDeque<Output>,
    last_container_check_ms: u64,
}

fn body<T: Jute>(r: &T) -> Vec<u8> {
    r.to_bytes()
}

impl Core {
    pub fn new(cfg: CoreConfig, now: Now) -> Core {
        Core::with_tree(cfg, now, DataTree::new())
    }

    /// Start from a loaded tree.
    pub fn with_tree(cfg: CoreConfig, now: Now, tree: DataTree) -> Core {
        Core::with_state(cfg, now, tree, &[])
    }

    /// Start from a restored tree and session table; restored sessions expire after their
    /// timeout from now unless their clients come back (as after a ZooKeeper restart).
    pub fn with_state(cfg: CoreConfig, now: Now, tree: DataTree, restored: &[(i64, i32)]) -> Core {
        let mut sessions = SessionTable::new(cfg.server_id, cfg.tick_ms, now.mono_ms);
        for &(id, timeout) in restored {
            sessions.add(id, timeout.max(0) as u32, now.mono_ms);
        }
        Core {
            cfg,
            tree,
            data_watches: WatchManager::default(),
            child_watches: WatchManager::default(),
            sessions,
            conns: HashMap::new(),
            session_conn: HashMap::new(),
            out: VecDeque::new(),
            last_container_check_ms: now.mono_ms,
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    pub fn data_watches(&self) -> &WatchManager {
        &self.data_watches
    }

    pub fn child_watches(&self) -> &WatchManager {
        &self.child_watches
    }

    pub fn conn(&self, conn: ConnId) -> Option<&ConnInfo> {
        self.conns.get(&conn)
    }

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    pub fn last_zxid(&self) -> i64 {
        self.tree.last_processed_zxid()
    }

    /// When the core next needs `handle_tick`.
    pub fn next_wakeup_ms(&self) -> u64 {
        let c = self.last_container_check_ms + self.cfg.container_check_interval_ms;
        self.sessions.next_expiry_ms().map_or(c, |s| s.min(c))
    }

    fn send(&mut self, conn: ConnId, frame: Vec<u8>) {
        self.out.push_back(Output::Send { conn, frame });
    }

    fn reply(&mut self, conn: ConnId, xid: i32, zxid: i64, err: i32, b: &[u8]) {
        self.send(conn, reply_frame(xid, zxid, err, b));
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closing = true;
        }
        self.out.push_back(Output::Close { conn });
    }

    /// A socket was accepted.
    pub fn handle_open(&mut self, conn: ConnId, remote_ip: String) {
        let auth = vec![Id::new("ip", &remote_ip)];
        self.conns.insert(
            conn,
            ConnInfo {
                session: 0,
                remote_ip,
                auth,
                last_cxid: 0,
                last_zxid: 0,
                last_op: "NA",
                closing: false,
            },
        );
    }

    /// A socket is gone (closed by either side). The session lives on until it expires.
    pub fn handle_closed(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            if self.session_conn.get(&c.session) == Some(&conn) {
                self.session_conn.remove(&c.session);
            }
        }
        self.data_watches.remove_conn(conn);
        self.child_watches.remove_conn(conn);
    }

    fn clamp_timeout(&self, requested: i32) -> u32 {
        let r = requested.max(0) as u32;
        r.max(self.cfg.session_timeout_ms_min)
            .min(self.cfg.session_timeout_ms_max)
    }

    /// The ConnectRequest of a new connection (§2.2, §3.7).
    pub fn handle_connect(&mut self, now: Now, conn: ConnId, c: &Connect) {
        let req = &c.req;
        if req.last_zxid_seen > self.tree.last_processed_zxid() {
            tracing::info!(
                "refusing session 0x{:x}: client has seen zxid 0x{:x}, we are at 0x{:x}",
                req.session_id,
                req.last_zxid_seen,
                self.tree.last_processed_zxid()
            );
            self.close(conn);
            return;
        }
        let timeout = self.clamp_timeout(req.time_out);
        if req.session_id == 0 {
            let id = self.sessions.next_session_id();
            let txn = self.make_txn(id, 0, now, op::CREATE_SESSION);
            let txn = Txn {
                body: TxnBody::CreateSession(CreateSessionTxn {
                    time_out: timeout as i32,
                }),
                ..txn
            };
            self.sessions.add(id, timeout, now.mono_ms);
            self.commit(txn);
            self.attach(conn, id);
            self.connect_reply(conn, timeout as i32, id, &session_password(id), c.read_only);
            tracing::info!("session 0x{id:x} created, timeout {timeout} ms");
            return;
        }
        let id = req.session_id;
        // Like ZooKeeper, drop the session's current connection before the password is even
        // checked (a client that reconnects has given up on the old socket).
        if let Some(&old) = self.session_conn.get(&id) {
            if old != conn {
                self.close(old);
                self.data_watches.remove_conn(old);
                self.child_watches.remove_conn(old);
                self.session_conn.remove(&id);
            }
        }
        let valid = self.sessions.get(id).is_some_and(|s| !s.closing)
            && req.passwd.as_deref() == Some(&session_password(id)[..]);
        if !valid {
            tracing::info!("invalid session 0x{id:x} for client {}", self.ip(conn));
            self.connect_reply(conn, 0, 0, &[0u8; 16], c.read_only);
            self.close(conn);
            return;
        }
        self.sessions.set_timeout(id, timeout);
        self.sessions.touch(id, now.mono_ms);
        self.attach(conn, id);
        self.connect_reply(conn, timeout as i32, id, &session_password(id), c.read_only);
        tracing::info!("session 0x{id:x} resumed, timeout {timeout} ms");
    }

    fn ip(&self, conn: ConnId) -> String {
        self.conns
            .get(&conn)
            .map(|c| c.remote_ip.clone())
            .unwrap_or_default()
    }

    fn attach(&mut self, conn: ConnId, id: i64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = id;
        }
        self.session_conn.insert(id, conn);
    }

    fn connect_reply(&mut self, conn: ConnId, to: i32, id: i64, pw: &[u8], ro: Option<bool>) {
        let resp = ConnectResponse {
            protocol_version: 0,
            time_out: to,
            session_id: id,
            passwd: Some(pw.to_vec()),
        };
        self.send(conn, connect_response_frame(&resp, ro.map(|_| false)));
    }

    fn make_txn(&mut self, session: i64, cxid: i32, now: Now, ty: i32) -> Txn {
        let zxid = self.tree.last_processed_zxid() + 1;
        Txn {
            header: TxnHeader {
                client_id: session,
                cxid,
                zxid,
                time: now.wall_ms,
                r#type: ty,
            },
            body: TxnBody::Error(ErrorTxn { err: 0 }),
            digest: None,
        }
    }

    /// Apply a txn, fire its watches, and queue it for storage.
    fn commit(&mut self, mut txn: Txn) -> crate::tree::Applied {
        let applied = self.tree.apply(&txn.header, &txn.body);
        if let Some(s) = applied.closed_session {
            self.sessions.remove(s);
        }
        self.fire(&applied.triggers);
        if txn.body.has_digest() {
            txn.digest = Some(TxnDigest {
                version: DIGEST_VERSION,
                tree_digest: self.tree.digest() as i64,
            });
        }
        self.out.push_back(Output::Append(txn));
        applied
    }

    /// Deliver the events of applied txns. Like Debian's ZooKeeper 3.8.0 (which carries the
    /// CVE-2024-23944 fix of 3.8.4), a connection is told only if it may READ the node (the
    /// parent for NodeChildrenChanged), so persistent watches cannot reveal hidden paths.
    fn fire(&mut self, triggers: &[Trigger]) {
        for t in triggers {
            let (path, acl, notify) = match t {
                Trigger::Created(p, acl) => (
                    p,
                    acl,
                    vec![(
                        event_type::NODE_CREATED,
                        self.data_watches.trigger(p, event_type::NODE_CREATED),
                    )],
                ),
                Trigger::DataChanged(p, acl) => (
                    p,
                    acl,
                    vec![(
                        event_type::NODE_DATA_CHANGED,
                        self.data_watches.trigger(p, event_type::NODE_DATA_CHANGED),
                    )],
                ),
                Trigger::ChildrenChanged(p, acl) => (
                    p,
                    acl,
                    vec![(
                        event_type::NODE_CHILDREN_CHANGED,
                        self.child_watches
                            .trigger(p, event_type::NODE_CHILDREN_CHANGED),
                    )],
                ),
                Trigger::Deleted(p, acl) => {
                    let data = self.data_watches.trigger(p, event_type::NODE_DELETED);
                    let mut child = self.child_watches.trigger(p, event_type::NODE_DELETED);
                    child.retain(|c| !data.contains(c));
                    (
                        p,
                        acl,
                        vec![
                            (event_type::NODE_DELETED, data),
                            (event_type::NODE_DELETED, child),
                        ],
                    )
                }
            };
            for (ty, conns) in notify {
                let ev = WatcherEvent {
                    r#type: ty,
                    state: keeper_state::SYNC_CONNECTED,
                    path: path.clone(),
                };
                let frame = notification_frame(&ev);
                for c in conns {
                    let Some(info) = self.conns.get(&c) else {
                        continue;
                    };
                    if !self.cfg.acl.allows(acl, perms::READ, &info.auth) {
                        continue;
                    }
                    self.send(c, frame.clone());
                }
            }
        }
    }

    /// Time passes: expire sessions, reap containers and TTL nodes.
    pub fn handle_tick(&mut self, now: Now) {
        for id in self.sessions.expire(now.mono_ms) {
            tracing::info!("expiring session 0x{id:x}");
            self.close_session(now, id, 0);
            if let Some(conn) = self.session_conn.remove(&id) {
                self.close(conn);
            }
        }
        if now.mono_ms >= self.last_container_check_ms + self.cfg.container_check_interval_ms {
            self.last_container_check_ms = now.mono_ms;
            self.reap_containers(now);
        }
    }

    fn close_session(&mut self, now: Now, id: i64, cxid: i32) -> i64 {
        self.sessions.set_closing(id);
        let mut txn = self.make_txn(id, cxid, now, op::CLOSE_SESSION);
        let paths = {
            let policy = self.cfg.acl.clone();
            let ctx = Ctx {
                session: id,
                ids: &[],
                policy: &policy,
                extended_types: self.cfg.extended_types,
                zxid: txn.header.zxid,
                time: now.wall_ms,
            };
            View::new(&self.tree).close_session(&ctx)
        };
        txn.body = TxnBody::CloseSession(self.cfg.close_session_txn_enabled.then_some(
            CloseSessionTxn {
                paths_to_delete: paths,
            },
        ));
        let zxid = txn.header.zxid;
        self.commit(txn);
        self.sessions.remove(id);
        zxid
    }

    /// Candidates of `ContainerManager` (§3.5).
    fn reap_containers(&mut self, now: Now) {
        let mut candidates = Vec::new();
        for p in self.tree.containers() {
            let n = self.tree.get(p).expect("indexed nodes exist");
            if !n.children.is_empty() {
                continue;
            }
            let never_used = self.cfg.container_max_never_used_interval_ms;
            if n.stat.cversion > 0
                || (never_used != 0 && now.wall_ms - n.stat.mtime > never_used as i64)
            {
                candidates.push(p.clone());
            }
        }
        if self.cfg.extended_types {
            for p in self.tree.ttls() {
                let n = self.tree.get(p).expect("indexed nodes exist");
                if let NodeKind::Ttl(ttl) = n.kind() {
                    if n.children.is_empty() && ttl != 0 && now.wall_ms - n.stat.mtime > ttl {
                        candidates.push(p.clone());
                    }
                }
            }
        }
        let per_check = (self.cfg.container_max_per_minute as u64
            * self.cfg.container_check_interval_ms.max(1)
            / 60_000)
            .max(1) as usize;
        for p in candidates.into_iter().take(per_check) {
            let mut txn = self.make_txn(0, 0, now, op::DELETE_CONTAINER);
            let policy = self.cfg.acl.clone();
            let ctx = Ctx {
                session: 0,
                ids: &[],
                policy: &policy,
                extended_types: self.cfg.extended_types,
                zxid: txn.header.zxid,
                time: now.wall_ms,
            };
            match View::new(&self.tree).delete_container(&ctx, &p) {
                Ok(b) => txn.body = b,
                Err(e) => {
                    txn.header.r#type = op::ERROR;
                    txn.body = TxnBody::Error(ErrorTxn { err: e.code() });
                }
            }
            tracing::debug!("reaping {p}");
            self.commit(txn);
        }
    }

    /// A request on an established connection.
    pub fn handle_request(&mut self, now: Now, conn: ConnId, xid: i32, req: Request) {
        let Some(info) = self.conns.get(&conn) else {
            return;
        };
        if info.closing {
            return;
        }
        let session = info.session;
        if session == 0 {
            self.close(conn);
            return;
        }
        if !self.sessions.touch(session, now.mono_ms) {
            // The session expired or is closing; the client learns it on reconnect.
            self.close(conn);
            return;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_cxid = xid;
            c.last_op = op_name(req.op_code());
        }
        if req.is_write() {
            self.write_request(now, conn, session, xid, req);
        } else {
            self.read_request(conn, session, xid, req);
        }
        let z = self.tree.last_processed_zxid();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_zxid = z;
        }
    }

    /// A request whose header was fine but whose record did not decode: ZooKeeper answers
    /// MarshallingError, and a write consumes a zxid for its error txn.
    pub fn handle_malformed(&mut self, now: Now, conn: ConnId, xid: i32, op_type: i32) {
        let Some(info) = self.conns.get(&conn) else {
            return;
        };
        if info.closing {
            return;
        }
        let session = info.session;
        if session == 0 || !self.sessions.touch(session, now.mono_ms) {
            self.close(conn);
            return;
        }
        let code = ErrorCode::MarshallingError.code();
        if is_write_op(op_type) {
            let mut txn = self.make_txn(session, xid, now, op::ERROR);
            txn.body = TxnBody::Error(ErrorTxn { err: code });
            let zxid = txn.header.zxid;
            self.commit(txn);
            self.reply(conn, xid, zxid, code, &[]);
        } else {
            let zxid = self.tree.last_processed_zxid();
            self.reply(conn, xid, zxid, code, &[]);
        }
    }

    fn write_request(&mut self, now: Now, conn: ConnId, session: i64, xid: i32, req: Request) {
        let ty = req.op_code();
        let mut txn = self.make_txn(session, xid, now, ty);
        let zxid = txn.header.zxid;
        let ids = self
            .conns
            .get(&conn)
            .map(|c| c.auth.clone())
            .unwrap_or_default();
        let policy = self.cfg.acl.clone();
        let ctx = Ctx {
            session,
            ids: &ids,
            policy: &policy,
            extended_types: self.cfg.extended_types,
            zxid,
            time: now.wall_ms,
        };
        if let Request::CloseSession = req {
            self.close_session(now, session, xid);
            self.session_conn.remove(&session);
            self.reply(conn, xid, zxid, 0, &[]);
            self.close(conn);
            return;
        }
        if let Request::Check(_) = req {
            // ZooKeeper 3.8.0 drops the connection on a top-level check (and logs a txn it
            // cannot replay). We drop the connection too, but log nothing.
            tracing::warn!(
                "closing connection: top-level check (opcode 13) is only valid in multi"
            );
            self.close(conn);
            return;
        }
        if let Request::Multi(m) = req {
            self.multi(conn, xid, txn, &ctx, m);
            return;
        }
        let mut view = View::new(&self.tree);
        let prepared: Result<(TxnBody, Option<String>), ErrorCode> = match &req {
            Request::Create(r) | Request::Create2(r) => view
                .create(
                    &ctx,
                    CreateKind::Plain,
                    &r.path,
                    &r.data,
                    &r.acl,
                    r.flags,
                    -1,
                )
                .map(|(b, p)| (b, Some(p))),
            Request::CreateContainer(r) => view
                .create(
                    &ctx,
                    CreateKind::Container,
                    &r.path,
                    &r.data,
                    &r.acl,
                    r.flags,
                    -1,
                )
                .map(|(b, p)| (b, Some(p))),
            Request::CreateTtl(r) => view
                .create(
                    &ctx,
                    CreateKind::Ttl,
                    &r.path,
                    &r.data,
                    &r.acl,
                    r.flags,
                    r.ttl,
                )
                .map(|(b, p)| (b, Some(p))),
            Request::Delete(r) => view.delete(&ctx, &r.path, r.version).map(|b| (b, None)),
            Request::SetData(r) => view
                .set_data(&ctx, &r.path, &r.data, r.version)
                .map(|b| (b, Some(r.path.clone()))),
            Request::SetAcl(r) => view
                .set_acl(&ctx, &r.path, &r.acl, r.version)
                .map(|b| (b, Some(r.path.clone()))),
            Request::Reconfig(_) => Err(if self.cfg.reconfig_enabled {
                ErrorCode::Unimplemented
            } else {
                ErrorCode::ReconfigDisabled
            }),
            _ => unreachable!("is_write covers exactly these"),
        };
        drop(view);
        match prepared {
            Err(e) => {
                txn.header.r#type = op::ERROR;
                txn.body = TxnBody::Error(ErrorTxn { err: e.code() });
                self.commit(txn);
                self.reply(conn, xid, zxid, e.code(), &[]);
            }
            Ok((b, path)) => {
                txn.body = b;
                let applied = self.commit(txn);
                if applied.err != 0 {
                    self.reply(conn, xid, zxid, applied.err, &[]);
                    return;
                }
                let stat = || {
                    path.as_deref()
                        .and_then(|p| self.tree.get(p))
                        .map(|n| n.client_stat())
                        .unwrap_or_default()
                };
                let bytes = match &req {
                    Request::Create(_) => body(&CreateResponse {
                        path: path.clone().unwrap_or_default(),
                    }),
                    Request::Create2(_) | Request::CreateContainer(_) | Request::CreateTtl(_) => {
                        body(&Create2Response {
                            path: path.clone().unwrap_or_default(),
                            stat: stat(),
                        })
                    }
                    Request::SetData(_) | Request::SetAcl(_) => body(&stat()),
                    _ => Vec::new(),
                };
                self.reply(conn, xid, zxid, 0, &bytes);
            }
        }
    }

    fn multi(&mut self, conn: ConnId, xid: i32, mut txn: Txn, ctx: &Ctx<'_>, m: MultiDecode) {
        let zxid = txn.header.zxid;
        let MultiDecode::Ops(ops) = m else {
            txn.header.r#type = op::ERROR;
            txn.body = TxnBody::Error(ErrorTxn {
                err: ErrorCode::MarshallingError.code(),
            });
            self.commit(txn);
            self.reply(conn, xid, zxid, ErrorCode::MarshallingError.code(), &[]);
            return;
        };
        // Creates are re-typed by their flags, as ZooKeeper's Op.create does; invalid flags
        // become PERSISTENT there. A non-TTL create op carrying TTL flags cannot be built into
        // a TTL request and fails the whole multi with MarshallingError.
        let mut view = View::new(&self.tree);
        let mut subs = Vec::with_capacity(ops.len());
        let mut kinds = Vec::with_capacity(ops.len());
        let mut failed: Option<ErrorCode> = None;
        for o in &ops {
            if failed.is_some() {
                subs.push(TxnBody::Error(ErrorTxn {
                    err: ErrorCode::RuntimeInconsistency.code(),
                }));
                kinds.push((SubKind::Failed, String::new()));
                continue;
            }
            let (res, kind) = match o {
                MultiOp::Create { req, .. } => {
                    let flags = if CreateMode::from_flag(req.flags).is_some() {
                        req.flags
                    } else {
                        0
                    };
                    let mode = CreateMode::from_flag(flags).expect("normalised");
                    if mode.ttl {
                        drop(view);
                        txn.header.r#type = op::ERROR;
                        txn.body = TxnBody::Error(ErrorTxn {
                            err: ErrorCode::MarshallingError.code(),
                        });
                        self.commit(txn);
                        self.reply(conn, xid, zxid, ErrorCode::MarshallingError.code(), &[]);
                        return;
                    }
                    let kind = if mode.container {
                        CreateKind::Container
                    } else {
                        CreateKind::Plain
                    };
                    let r = view.create(ctx, kind, &req.path, &req.data, &req.acl, flags, -1);
                    let sk = if mode.container {
                        SubKind::Create2
                    } else {
                        SubKind::Create
                    };
                    (r.map(|(b, p)| (b, Some(p))), sk)
                }
                MultiOp::CreateTtl(req) => {
                    let mode = CreateMode::from_flag(req.flags)
                        .unwrap_or(CreateMode::from_flag(0).expect("0 is valid"));
                    let flags = if CreateMode::from_flag(req.flags).is_some() {
                        req.flags
                    } else {
                        0
                    };
                    let (kind, sk, ttl) = if mode.ttl {
                        (CreateKind::Ttl, SubKind::Create2, req.ttl)
                    } else if mode.container {
                        (CreateKind::Container, SubKind::Create2, -1)
                    } else {
                        (CreateKind::Plain, SubKind::Create, -1)
                    };
                    (
                        view.create(ctx, kind, &req.path, &req.data, &req.acl, flags, ttl)
                            .map(|(b, p)| (b, Some(p))),
                        sk,
                    )
                }
                MultiOp::Delete(r) => (
                    view.delete(ctx, &r.path, r.version).map(|b| (b, None)),
                    SubKind::Delete,
                ),
                MultiOp::SetData(r) => (
                    view.set_data(ctx, &r.path, &r.data, r.version)
                        .map(|b| (b, Some(r.path.clone()))),
                    SubKind::SetData,
                ),
                MultiOp::Check(r) => (
                    view.check(ctx, &r.path, r.version).map(|b| (b, None)),
                    SubKind::Check,
                ),
                MultiOp::GetData(_) | MultiOp::GetChildren(_) => {
                    unreachable!("decoder refuses reads in multi")
                }
            };
            match res {
                Ok((b, p)) => {
                    subs.push(b);
                    kinds.push((kind, p.unwrap_or_default()));
                }
                Err(e) => {
                    failed = Some(e);
                    subs.push(TxnBody::Error(ErrorTxn { err: e.code() }));
                    kinds.push((SubKind::Failed, String::new()));
                }
            }
        }
        drop(view);
        let mut results = Vec::with_capacity(subs.len());
        if failed.is_some() {
            for s in &subs {
                results.push(MultiResult::Error(match s {
                    TxnBody::Error(err) => err.err,
                    _ => 0,
                }));
            }
            txn.body = TxnBody::Multi(subs);
            self.commit(txn);
        } else {
            // Apply sub-txns one by one to capture each op's stat right after it, as
            // ZooKeeper reports them; the txn is logged as one MultiTxn.
            let header = txn.header.clone();
            let mut triggers = Vec::new();
            for (s, (k, p)) in subs.iter().zip(&kinds) {
                let applied = self.tree.apply(&header, s);
                triggers.extend(applied.triggers);
                let stat = |p: &str| {
                    self.tree
                        .get(p)
                        .map(|n| n.client_stat())
                        .unwrap_or_default()
                };
                results.push(match k {
                    SubKind::Create => MultiResult::Create(p.clone()),
                    SubKind::Create2 => MultiResult::Create2(p.clone(), stat(p)),
                    SubKind::Delete => MultiResult::Delete,
                    SubKind::SetData => MultiResult::SetData(stat(p)),
                    SubKind::Check => MultiResult::Check,
                    SubKind::Failed => MultiResult::Error(0),
                });
            }
            // An empty multi applies nothing but still consumes its zxid.
            if header.zxid > self.tree.last_processed_zxid() {
                self.tree.set_last_processed_zxid(header.zxid);
            }
            self.fire(&triggers);
            txn.body = TxnBody::Multi(subs);
            txn.digest = Some(TxnDigest {
                version: DIGEST_VERSION,
                tree_digest: self.tree.digest() as i64,
            });
            self.out.push_back(Output::Append(txn));
        }
        let mut b = Vec::new();
        write_multi_response(&results, &mut b);
        self.reply(conn, xid, zxid, 0, &b);
    }

    fn read_request(&mut self, conn: ConnId, session: i64, xid: i32, req: Request) {
        let zxid = self.tree.last_processed_zxid();
        let ids = self
            .conns
            .get(&conn)
            .map(|c| c.auth.clone())
            .unwrap_or_default();
        let result: Result<Vec<u8>, ErrorCode> = match req {
            Request::Ping => {
                self.reply(conn, xid::PING, zxid, 0, &[]);
                return;
            }
            Request::Auth(a) => {
                let ip = self.ip(conn);
                match self
                    .cfg
                    .acl
                    .authenticate(&a.scheme, a.auth.as_deref().unwrap_or(&[]), &ip)
                {
                    AuthOutcome::Added(new) => {
                        if let Some(c) = self.conns.get_mut(&conn) {
                            for i in new {
                                if !c.auth.contains(&i) {
                                    c.auth.push(i);
                                }
                            }
                        }
                        self.reply(conn, xid, 0, 0, &[]);
                    }
                    AuthOutcome::Failed => {
                        tracing::warn!("auth failed for scheme {:?}, closing connection", a.scheme);
                        self.reply(conn, xid, 0, ErrorCode::AuthFailed.code(), &[]);
                        self.close(conn);
                    }
                }
                return;
            }
            Request::Sasl(_) => {
                tracing::warn!("SASL is not supported by corral yet; closing connection");
                self.reply(conn, xid, 0, ErrorCode::AuthFailed.code(), &[]);
                self.close(conn);
                return;
            }
            Request::Exists(r) => {
                if r.path.contains('\0') {
                    Err(ErrorCode::BadArguments)
                } else {
                    if r.watch {
                        self.data_watches.add(&r.path, conn, WatchMode::Standard);
                    }
                    match self.tree.get(&r.path) {
                        Some(n) => Ok(body(&n.client_stat())),
                        None => Err(ErrorCode::NoNode),
                    }
                }
            }
            Request::GetData(r) => self.get_data(conn, &ids, &r.path, r.watch),
            Request::GetChildren(r) => self
                .get_children(conn, &ids, &r.path, r.watch)
                .map(|(c, _)| body(&GetChildrenResponse { children: c })),
            Request::GetChildren2(r) => {
                self.get_children(conn, &ids, &r.path, r.watch)
                    .map(|(c, s)| {
                        body(&GetChildren2Response {
                            children: c,
                            stat: s,
                        })
                    })
            }
            Request::GetAcl(r) => match self.tree.get(&r.path) {
                None => Err(ErrorCode::NoNode),
                Some(n) => {
                    if !self
                        .cfg
                        .acl
                        .allows(&n.acl, perms::READ | perms::ADMIN, &ids)
                    {
                        Err(ErrorCode::NoAuth)
                    } else {
                        let acl = if self.cfg.acl.allows(&n.acl, perms::ADMIN, &ids) {
                            n.acl.to_vec()
                        } else {
                            acl::redact_digests(&n.acl)
                        };
                        Ok(body(&GetAclResponse {
                            acl,
                            stat: n.client_stat(),
                        }))
                    }
                }
            },
            Request::GetAllChildrenNumber(r) => match self.tree.get(&r.path) {
                None => Err(ErrorCode::NoNode),
                Some(n) if !self.cfg.acl.allows(&n.acl, perms::READ, &ids) => {
                    Err(ErrorCode::NoAuth)
                }
                Some(_) => Ok(body(&GetAllChildrenNumberResponse {
                    total_number: self.tree.all_children_number(&r.path),
                })),
            },
            Request::GetEphemerals(r) => {
                let prefix = r.path.trim();
                let all = prefix.is_empty() || prefix == "/";
                let eph = self
                    .tree
                    .ephemerals_of(session)
                    .into_iter()
                    .filter(|p| all || p.starts_with(r.path.as_str()))
                    .collect();
                Ok(body(&GetEphemeralsResponse { ephemerals: eph }))
            }
            Request::Sync(r) => Ok(body(&r)),
            Request::WhoAmI => {
                let info = ids
                    .iter()
                    .map(|i| ClientInfo {
                        auth_scheme: i.scheme.clone(),
                        user: acl::user_name(i),
                    })
                    .collect();
                Ok(body(&WhoAmIResponse { client_info: info }))
            }
            Request::AddWatch(r) => {
                let mode = match r.mode {
                    add_watch_mode::PERSISTENT => Some(WatchMode::Persistent),
                    add_watch_mode::PERSISTENT_RECURSIVE => Some(WatchMode::PersistentRecursive),
                    _ => None,
                };
                match mode {
                    None => Err(ErrorCode::MarshallingError),
                    Some(m) => {
                        self.data_watches.add(&r.path, conn, m);
                        self.child_watches.add(&r.path, conn, m);
                        Ok(body(&ErrorResponse { err: 0 }))
                    }
                }
            }
            Request::CheckWatches(r) => self.watches_op(conn, &r, false),
            Request::RemoveWatches(r) => self.watches_op(conn, &r, true),
            Request::SetWatches(s) | Request::SetWatches2(s) => {
                self.set_watches(conn, &s);
                Ok(Vec::new())
            }
            Request::MultiRead(m) => match m {
                MultiDecode::Marshalling => Err(ErrorCode::MarshallingError),
                MultiDecode::Ops(ops) => {
                    let mut results = Vec::with_capacity(ops.len());
                    for o in ops {
                        results.push(match o {
                            MultiOp::GetData(r) => match self.get_data_raw(&ids, &r.path) {
                                Ok((d, s)) => MultiResult::GetData(d, s),
                                Err(e) => MultiResult::Error(e.code()),
                            },
                            MultiOp::GetChildren(r) => {
                                match self.get_children(conn, &ids, &r.path, false) {
                                    Ok((c, _)) => MultiResult::GetChildren(c),
                                    Err(e) => MultiResult::Error(e.code()),
                                }
                            }
                            _ => MultiResult::Error(ErrorCode::MarshallingError.code()),
                        });
                    }
                    let mut b = Vec::new();
                    write_multi_response(&results, &mut b);
                    Ok(b)
                }
            },
            _ => unreachable!("writes are handled by write_request"),
        };
        match result {
            Ok(b) => self.reply(conn, xid, zxid, 0, &b),
            Err(e) => self.reply(conn, xid, zxid, e.code(), &[]),
        }
    }

    /// checkWatches / removeWatches on this connection's registrations (3.8.0 semantics).
    fn watches_op(
        &mut self,
        conn: ConnId,
        r: &WatchesRequest,
        remove: bool,
    ) -> Result<Vec<u8>, ErrorCode> {
        let (child, data) = match r.r#type {
            watcher_type::CHILDREN => (true, false),
            watcher_type::DATA => (false, true),
            watcher_type::ANY => (true, true),
            _ => return Err(ErrorCode::MarshallingError),
        };
        let mut found = false;
        let marshalling = |_| ErrorCode::MarshallingError;
        if child {
            found |= if remove {
                self.child_watches.remove(&r.path, conn)
            } else {
                self.child_watches
                    .contains(&r.path, conn)
                    .map_err(marshalling)?
            };
        }
        if data {
            found |= if remove {
                self.data_watches.remove(&r.path, conn)
            } else {
                self.data_watches
                    .contains(&r.path, conn)
                    .map_err(marshalling)?
            };
        }
        if found {
            Ok(Vec::new())
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    fn get_data_raw(&self, ids: &[Id], p: &str) -> Result<(Data, Stat), ErrorCode> {
        let n = self.tree.get(p).ok_or(ErrorCode::NoNode)?;
        if !self.cfg.acl.allows(&n.acl, perms::READ, ids) {
            return Err(ErrorCode::NoAuth);
        }
        Ok((n.data.clone(), n.client_stat()))
    }

    fn get_data(
        &mut self,
        conn: ConnId,
        ids: &[Id],
        p: &str,
        watch: bool,
    ) -> Result<Vec<u8>, ErrorCode> {
        let (data, stat) = self.get_data_raw(ids, p)?;
        if watch {
            self.data_watches.add(p, conn, WatchMode::Standard);
        }
        Ok(body(&GetDataResponse { data, stat }))
    }

    fn get_children(
        &mut self,
        conn: ConnId,
        ids: &[Id],
        p: &str,
        watch: bool,
    ) -> Result<(Vec<String>, Stat), ErrorCode> {
        let n = self.tree.get(p).ok_or(ErrorCode::NoNode)?;
        if !self.cfg.acl.allows(&n.acl, perms::READ, ids) {
            return Err(ErrorCode::NoAuth);
        }
        let children: Vec<String> = n.children.iter().cloned().collect();
        let stat = n.client_stat();
        if watch {
            self.child_watches.add(p, conn, WatchMode::Standard);
        }
        Ok((children, stat))
    }

    /// SetWatches / SetWatches2 after a reconnect (§2.7): fire what the client missed, re-register
    /// the rest. Notifications go out before the reply.
    fn set_watches(&mut self, conn: ConnId, s: &SetWatches2) {
        let rel = s.relative_zxid;
        let mut events = Vec::new();
        for p in &s.data_watches {
            match self.tree.get(p) {
                None => events.push((event_type::NODE_DELETED, p)),
                Some(n) if n.stat.mzxid > rel => events.push((event_type::NODE_DATA_CHANGED, p)),
                Some(_) => self.data_watches.add(p, conn, WatchMode::Standard),
            }
        }
        for p in &s.exist_watches {
            if self.tree.get(p).is_some() {
                events.push((event_type::NODE_CREATED, p));
            } else {
                self.data_watches.add(p, conn, WatchMode::Standard);
            }
        }
        for p in &s.child_watches {
            match self.tree.get(p) {
                None => events.push((event_type::NODE_DELETED, p)),
                Some(n) if n.stat.pzxid > rel => {
                    events.push((event_type::NODE_CHILDREN_CHANGED, p))
                }
                Some(_) => self.child_watches.add(p, conn, WatchMode::Standard),
            }
        }
        for p in &s.persistent_watches {
            self.data_watches.add(p, conn, WatchMode::Persistent);
            self.child_watches.add(p, conn, WatchMode::Persistent);
        }
        for p in &s.persistent_recursive_watches {
            self.data_watches
                .add(p, conn, WatchMode::PersistentRecursive);
            self.child_watches
                .add(p, conn, WatchMode::PersistentRecursive);
        }
        for (ty, p) in events {
            let ev = WatcherEvent {
                r#type: ty,
                state: keeper_state::SYNC_CONNECTED,
                path: p.clone(),
            };
            self.send(conn, notification_frame(&ev));
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum SubKind {
    Create,
    Create2,
    Delete,
    SetData,
    Check,
    /// Unreachable in a successful multi; kept so every op has a kind.
    Failed,
}

/// Opcodes that go through prep as writes (and so get a txn even when they fail).
pub fn is_write_op(op_type: i32) -> bool {
    matches!(
        op_type,
        op::CREATE
            | op::CREATE2
            | op::CREATE_CONTAINER
            | op::CREATE_TTL
            | op::DELETE
            | op::SET_DATA
            | op::SET_ACL
            | op::CHECK
            | op::MULTI
            | op::RECONFIG
    )
}

/// ZooKeeper's short op names, as `cons` shows them.
pub fn op_name(op: i32) -> &'static str {
    match op {
        op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => "CREA",
        op::DELETE => "DELE",
        op::EXISTS => "EXIS",
        op::GET_DATA => "GETD",
        op::SET_DATA => "SETD",
        op::GET_ACL => "GETA",
        op::SET_ACL => "SETA",
        op::GET_CHILDREN => "GETC",
        op::GET_CHILDREN2 => "GETC",
        op::SYNC => "SYNC",
        op::PING => "PING",
        op::CHECK => "CHEC",
        op::MULTI => "MULT",
        op::MULTI_READ => "MLTR",
        op::RECONFIG => "RECO",
        op::CHECK_WATCHES => "CHKW",
        op::REMOVE_WATCHES => "REMW",
        op::SET_WATCHES | op::SET_WATCHES2 => "SETW",
        op::ADD_WATCH => "ADDW",
        op::GET_EPHEMERALS => "GETE",
        op::GET_ALL_CHILDREN_NUMBER => "GETACN",
        op::WHO_AM_I => "HOMI",
        op::CLOSE_SESSION => "CLOS",
        op::AUTH => "AUTH",
        op::SASL => "SASL",
        _ => "NA",
    }
}
