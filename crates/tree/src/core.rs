//! The standalone server as a sans-IO state machine. The glue feeds it connection events,
//! decoded requests and ticks, each with the time; it answers with an ordered queue of outputs
//! (frames to send, connections to close, txns to persist). Output order is the contract: a
//! watch notification is queued before the reply of the txn that fired it, and a reply that
//! follows an `Append` must not be sent before that txn is durable.

use std::collections::{HashMap, VecDeque};

use corral_proto::jute::{Jute, Reader, WriteJute};
use corral_proto::records::*;
use corral_proto::request::*;
use corral_proto::txn::*;
use corral_proto::ErrorCode;

use crate::acl::{self, AclPolicy, AuthOutcome};
use crate::prep::{CreateKind, CreateMode, Ctx, Outstanding, View};
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
    /// Standalone: a txn was applied; storage persists it. Later `Send`s wait until it is
    /// durable.
    Append(Txn),
    /// Ensemble: a write (or sync) for the ZAB peer, to forward to the leader or, on the
    /// leader, to prepare (`prepare_submitted`). It comes back through `apply_committed`.
    Submit(Submitted),
    /// Ensemble, learner: a client resumed this session here; ask the leader whether it is
    /// alive and answer through `handle_revalidated`.
    Revalidate { session: i64, timeout: i32 },
}

/// A write as it travels to the leader (the data of a REQUEST packet, §4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub session: i64,
    pub cxid: i32,
    pub op_type: i32,
    pub body: Vec<u8>,
    /// The client connection's auth ids; `None` for server-made requests.
    pub auth: Option<Vec<Id>>,
    /// Leader: the learner connection the request came through (`None`: a client of the
    /// leader itself, or a server-made request). See [`Core::prepare_submitted`].
    pub owner: Option<u64>,
}

/// How this core takes part: alone, or as the leader or a learner of an ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Standalone,
    Leader,
    Learner,
}

/// A request of a session waiting for its turn: requests of one session complete in the
/// order they were sent, so reads wait behind earlier writes (ZooKeeper's CommitProcessor).
#[derive(Debug)]
enum Pending {
    Connect {
        conn: ConnId,
        timeout: u32,
        read_only: Option<bool>,
    },
    Write {
        conn: ConnId,
        xid: i32,
        op: i32,
    },
    Read {
        conn: ConnId,
        xid: i32,
        req: Request,
    },
    Sync {
        conn: ConnId,
        xid: i32,
        path: String,
    },
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
    role: Role,
    /// Prepared but not yet applied changes (standalone: always empty between events).
    outstanding: Outstanding,
    pending: HashMap<i64, VecDeque<Pending>>,
    /// Sessions with a forwarded sync, oldest first.
    syncs: VecDeque<i64>,
    /// Learner: resumes waiting for the leader's REVALIDATE answer.
    revalidating: HashMap<i64, (ConnId, u32, Option<bool>)>,
    /// Leader: the server each session's client is connected through (`None`: this one), as
    /// ZooKeeper's session owner; requests from a former owner fail with SessionMoved.
    owners: HashMap<i64, Option<u64>>,
    /// Learner: sessions touched since the last PING, with their timeouts.
    touched: HashMap<i64, i32>,
    /// Ensemble: false while the peer is not synced with a leader; connections and requests
    /// are then refused (always true standalone).
    serving: bool,
}

fn body<T: Jute>(r: &T) -> Vec<u8> {
    r.to_bytes()
}

/// A reply frame to be filled in place: room for the length, then the reply header (err 0).
fn frame_start(xid: i32, zxid: i64) -> Vec<u8> {
    let mut f = Vec::with_capacity(256);
    f.put_i32(0);
    ReplyHeader { xid, zxid, err: 0 }.write(&mut f);
    f
}

/// Set the length of a frame begun with `frame_start`.
fn frame_end(mut f: Vec<u8>) -> Vec<u8> {
    let len = (f.len() - 4) as i32;
    f[..4].copy_from_slice(&len.to_be_bytes());
    f
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
            role: Role::Standalone,
            outstanding: Outstanding::default(),
            pending: HashMap::new(),
            syncs: VecDeque::new(),
            revalidating: HashMap::new(),
            owners: HashMap::new(),
            touched: HashMap::new(),
            serving: true,
        }
    }

    /// Ensemble: the peer started or stopped serving clients. While not serving, every
    /// connection that sends a ConnectRequest or a request is closed (ZooKeeper closes client
    /// connections until it has synced with a leader), and on stopping, requests waiting for
    /// the ensemble are abandoned: the peer drops what it gets while not serving.
    pub fn set_serving(&mut self, on: bool) {
        self.serving = on;
        if !on {
            self.abandon_pending();
        }
    }

    pub fn serving(&self) -> bool {
        self.serving
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The ZAB peer changed role. Requests still waiting for a leader that is gone will never
    /// be answered by it: their connections are closed so clients retry (ZooKeeper closes
    /// every client connection when a server leaves the broadcast phase).
    pub fn set_role(&mut self, now: Now, role: Role) {
        if role == self.role {
            return;
        }
        self.role = role;
        self.owners.clear();
        self.abandon_pending();
        if role == Role::Leader {
            // A new leader gives every session a full timeout from now, as ZooKeeper's
            // fresh session tracker does.
            self.sessions.renew_all(now.mono_ms);
        }
    }

    /// Forget every request waiting for the ensemble and close the connections that sent them
    /// (the peer drops them when it stops serving; clients retry).
    pub fn abandon_pending(&mut self) {
        self.outstanding.clear();
        self.syncs.clear();
        self.revalidating.clear();
        self.touched.clear();
        let conns: Vec<ConnId> = self
            .pending
            .values()
            .flatten()
            .map(|p| match p {
                Pending::Connect { conn, .. }
                | Pending::Write { conn, .. }
                | Pending::Read { conn, .. }
                | Pending::Sync { conn, .. } => *conn,
            })
            .collect();
        self.pending.clear();
        for c in conns {
            self.close(c);
        }
    }

    /// Learner: sessions touched since the last call, for the PING reply (§4.8).
    pub fn take_touches(&mut self) -> Vec<(i64, i32)> {
        let mut v: Vec<_> = self.touched.drain().collect();
        v.sort_unstable();
        v
    }

    /// Leader: sessions a learner reported alive.
    pub fn touch_sessions(&mut self, now: Now, touches: &[(i64, i32)]) {
        for &(id, _) in touches {
            self.sessions.touch(id, now.mono_ms);
        }
    }

    /// Leader: REVALIDATE from a learner (`owner`: its connection; `None`: our own client);
    /// true when the session is alive (it is touched, and now owned by that learner).
    pub fn check_session(
        &mut self,
        now: Now,
        session: i64,
        timeout: i32,
        owner: Option<u64>,
    ) -> bool {
        let alive = self.sessions.get(session).is_some_and(|s| !s.closing);
        if alive {
            self.sessions.set_timeout(session, timeout.max(0) as u32);
            self.sessions.touch(session, now.mono_ms);
            self.owners.insert(session, owner);
        }
        alive
    }

    /// Replace the tree (a learner loaded a SNAP or truncated its log).
    pub fn replace_state(&mut self, now: Now, tree: DataTree, sessions: &[(i64, i32)]) {
        self.tree = tree;
        let mut table = SessionTable::new(self.cfg.server_id, self.cfg.tick_ms, now.mono_ms);
        for &(id, timeout) in sessions {
            table.add(id, timeout.max(0) as u32, now.mono_ms);
        }
        self.sessions = table;
        self.owners.clear();
        self.outstanding.clear();
    }

    /// Ensemble: show the config string in `/zookeeper/config`.
    pub fn set_config_node(&mut self, data: Vec<u8>, config_version: i64, wall_ms: i64) {
        self.tree.set_config_node(data, config_version, wall_ms);
    }

    /// Sessions with their timeouts (for a SNAP to a learner, or a snapshot).
    pub fn session_list(&self) -> Vec<(i64, i32)> {
        let mut v: Vec<_> = self
            .sessions
            .iter()
            .map(|s| (s.id, s.timeout_ms as i32))
            .collect();
        v.sort_unstable();
        v
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

    /// When the core next needs `handle_tick`. A learner never expires sessions nor reaps
    /// containers (the leader does), so it needs no tick: waking it for a session whose expiry
    /// time has passed would spin (sim note, seed 1).
    pub fn next_wakeup_ms(&self) -> u64 {
        if self.role == Role::Learner {
            return u64::MAX;
        }
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
        if !self.serving {
            self.close(conn);
            return;
        }
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
            self.enqueue(
                id,
                Pending::Connect {
                    conn,
                    timeout,
                    read_only: c.read_only,
                },
            );
            self.submit(
                now,
                id,
                0,
                Work::CreateSession {
                    timeout: timeout as i32,
                },
                None,
            );
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
        let password_ok = req.passwd.as_deref() == Some(&session_password(id)[..]);
        if self.role == Role::Learner && password_ok {
            // Only the leader knows whether the session is still alive (REVALIDATE, §4.8).
            self.revalidating.insert(id, (conn, timeout, c.read_only));
            self.out.push_back(Output::Revalidate {
                session: id,
                timeout: timeout as i32,
            });
            return;
        }
        let valid = password_ok && self.sessions.get(id).is_some_and(|s| !s.closing);
        self.finish_resume(now, conn, id, timeout, c.read_only, valid);
    }

    /// The leader's answer to an `Output::Revalidate`.
    pub fn handle_revalidated(&mut self, now: Now, session: i64, valid: bool) {
        let Some((conn, timeout, ro)) = self.revalidating.remove(&session) else {
            return;
        };
        if self.conns.get(&conn).is_some_and(|c| !c.closing) {
            self.finish_resume(now, conn, session, timeout, ro, valid);
        }
    }

    fn finish_resume(
        &mut self,
        now: Now,
        conn: ConnId,
        id: i64,
        timeout: u32,
        ro: Option<bool>,
        valid: bool,
    ) {
        if !valid {
            tracing::info!("invalid session 0x{id:x} for client {}", self.ip(conn));
            self.connect_reply(conn, 0, 0, &[0u8; 16], ro);
            self.close(conn);
            return;
        }
        if !self.sessions.contains(id) {
            self.sessions.add(id, timeout, now.mono_ms);
        }
        if self.role == Role::Leader {
            // Resumed on the leader itself: it owns the session from here on.
            self.owners.insert(id, None);
        }
        self.sessions.set_timeout(id, timeout);
        self.touch(id, now);
        self.attach(conn, id);
        self.connect_reply(conn, timeout as i32, id, &session_password(id), ro);
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

    /// Extend a session's life; a learner also remembers it for the next PING to the leader.
    fn touch(&mut self, session: i64, now: Now) -> bool {
        if !self.sessions.touch(session, now.mono_ms) {
            return false;
        }
        if self.role == Role::Learner {
            let timeout = self
                .sessions
                .get(session)
                .map_or(0, |s| s.timeout_ms as i32);
            self.touched.insert(session, timeout);
        }
        true
    }

    fn enqueue(&mut self, session: i64, p: Pending) {
        self.pending.entry(session).or_default().push_back(p);
    }

    /// Hand a write to the pipeline. Standalone, it is prepared and applied at once (the glue
    /// holds replies until the txn is durable); in an ensemble it goes to the ZAB peer, which
    /// forwards it to the leader, and comes back through `apply_committed`.
    fn submit(&mut self, now: Now, session: i64, cxid: i32, work: Work, auth: Option<Vec<Id>>) {
        match self.role {
            Role::Standalone => {
                let zxid = self.tree.last_processed_zxid() + 1;
                let txn = self.prepare(now, zxid, (session, cxid), work, auth.as_deref(), None);
                let predicted = txn.digest.clone();
                self.apply_txn(now, txn, true);
                if let Some(d) = predicted {
                    debug_assert_eq!(
                        d.tree_digest as u64,
                        self.tree.digest(),
                        "digest prediction"
                    );
                }
            }
            Role::Leader | Role::Learner => {
                let (op_type, body) = work.encode();
                self.out.push_back(Output::Submit(Submitted {
                    owner: None,
                    session,
                    cxid,
                    op_type,
                    body,
                    auth,
                }));
            }
        }
    }

    /// Time passes: expire sessions, reap containers and TTL nodes. Only a standalone server
    /// or the leader does either (followers learn of them as txns).
    pub fn handle_tick(&mut self, now: Now) {
        if self.role == Role::Learner {
            return;
        }
        for id in self.sessions.expire(now.mono_ms) {
            tracing::info!("expiring session 0x{id:x}");
            self.submit(now, id, 0, Work::CloseSession, None);
            if let Some(conn) = self.session_conn.remove(&id) {
                self.close(conn);
            }
        }
        if now.mono_ms >= self.last_container_check_ms + self.cfg.container_check_interval_ms {
            self.last_container_check_ms = now.mono_ms;
            self.reap_containers(now);
        }
    }

    /// Candidates of `ContainerManager` (§3.5).
    fn reap_containers(&mut self, now: Now) {
        let mut candidates = Vec::new();
        for p in self.tree.containers() {
            let n = self.tree.get(p).expect("indexed nodes exist");
            if n.num_children() != 0 {
                continue;
            }
            let never_used = self.cfg.container_max_never_used_interval_ms;
            if n.stat().cversion > 0
                || (never_used != 0 && now.wall_ms - n.stat().mtime > never_used as i64)
            {
                candidates.push(p.clone());
            }
        }
        if self.cfg.extended_types {
            for p in self.tree.ttls() {
                let n = self.tree.get(p).expect("indexed nodes exist");
                if let NodeKind::Ttl(ttl) = n.kind() {
                    if (n.num_children() == 0) && ttl != 0 && now.wall_ms - n.stat().mtime > ttl {
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
            tracing::debug!("reaping {p}");
            self.submit(now, 0, 0, Work::DeleteContainer(p), None);
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
        if !self.serving {
            // Sent before the client saw its connection closed at StopServing (sim seed 29).
            self.close(conn);
            return;
        }
        let session = info.session;
        if session == 0 {
            self.close(conn);
            return;
        }
        if !self.touch(session, now) {
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
        } else if let Request::Auth(_) = req {
            // Auth is handled as it arrives, before ZooKeeper's request pipeline.
            self.read_request(conn, session, xid, req);
        } else if let Request::Sync(r) = req {
            self.sync_request(conn, session, xid, r);
        } else if self.pending.get(&session).is_some_and(|q| !q.is_empty()) {
            // A session's requests complete in order: a read waits for its earlier writes.
            self.enqueue(session, Pending::Read { conn, xid, req });
        } else {
            self.read_request(conn, session, xid, req);
        }
        let z = self.tree.last_processed_zxid();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_zxid = z;
        }
    }

    /// `sync`: standalone, a plain read; in an ensemble, answered once the leader says every
    /// write it had accepted before is applied here (`handle_sync_done`).
    fn sync_request(&mut self, conn: ConnId, session: i64, xid: i32, r: PathRequest) {
        if self.role == Role::Standalone {
            if self.pending.get(&session).is_some_and(|q| !q.is_empty()) {
                self.enqueue(
                    session,
                    Pending::Read {
                        conn,
                        xid,
                        req: Request::Sync(r),
                    },
                );
            } else {
                self.read_request(conn, session, xid, Request::Sync(r));
            }
            return;
        }
        let body = body(&r);
        self.enqueue(
            session,
            Pending::Sync {
                conn,
                xid,
                path: r.path,
            },
        );
        self.syncs.push_back(session);
        self.out.push_back(Output::Submit(Submitted {
            owner: None,
            session,
            cxid: xid,
            op_type: op::SYNC,
            body,
            auth: None,
        }));
    }

    /// The leader answered the oldest forwarded `sync`.
    pub fn handle_sync_done(&mut self) {
        let Some(session) = self.syncs.pop_front() else {
            return;
        };
        let zxid = self.tree.last_processed_zxid();
        let Some(q) = self.pending.get_mut(&session) else {
            return;
        };
        let Some(pos) = q.iter().position(|p| matches!(p, Pending::Sync { .. })) else {
            return;
        };
        if let Some(Pending::Sync { conn, xid, path }) = q.remove(pos) {
            if self.conns.contains_key(&conn) {
                let b = body(&PathRequest { path });
                self.reply(conn, xid, zxid, 0, &b);
            }
        }
        self.drain_reads(session);
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
        if !self.serving {
            self.close(conn);
            return;
        }
        let session = info.session;
        if session == 0 || !self.touch(session, now) {
            self.close(conn);
            return;
        }
        let code = ErrorCode::MarshallingError.code();
        if is_write_op(op_type) {
            self.enqueue(
                session,
                Pending::Write {
                    conn,
                    xid,
                    op: op_type,
                },
            );
            self.submit(now, session, xid, Work::Malformed(op_type), None);
        } else {
            let zxid = self.tree.last_processed_zxid();
            self.reply(conn, xid, zxid, code, &[]);
        }
    }

    fn write_request(&mut self, now: Now, conn: ConnId, session: i64, xid: i32, req: Request) {
        if let Request::Check(_) = req {
            // ZooKeeper 3.8.0 drops the connection on a top-level check (and logs a txn it
            // cannot replay). We drop the connection too, but log nothing.
            tracing::warn!(
                "closing connection: top-level check (opcode 13) is only valid in multi"
            );
            self.close(conn);
            return;
        }
        let auth = self.conns.get(&conn).map(|c| c.auth.clone());
        self.enqueue(
            session,
            Pending::Write {
                conn,
                xid,
                op: req.op_code(),
            },
        );
        if let Request::CloseSession = req {
            self.sessions.set_closing(session);
            self.submit(now, session, xid, Work::CloseSession, None);
        } else {
            self.submit(now, session, xid, Work::Client(req), auth);
        }
    }

    /// Leader: turn a submitted request into the txn at `zxid` (ZooKeeper's
    /// `PrepRequestProcessor`). A body that does not decode becomes a MarshallingError txn.
    pub fn prepare_submitted(&mut self, now: Now, zxid: i64, s: &Submitted) -> Txn {
        let work = Work::decode(s.op_type, &s.body);
        match work {
            // The leader tracks every session of the ensemble from its creation on.
            Work::CreateSession { timeout } => {
                self.owners.insert(s.session, s.owner);
                self.sessions
                    .add(s.session, timeout.max(0) as u32, now.mono_ms)
            }
            Work::CloseSession => self.sessions.set_closing(s.session),
            _ => {}
        }
        // SessionTracker.checkSession(id, owner): a request of a session that is closing (its
        // close was prepared; sim seed 753) or unknown fails with SessionExpired, and one sent
        // through a server the session has since left (it resumed elsewhere; sim seed 91)
        // with SessionMoved, so nothing it asks for takes effect after the close, or after
        // the requests the client sent on its new connection.
        let session_err = match &work {
            Work::Client(_) if self.sessions.get(s.session).is_none_or(|x| x.closing) => {
                Some(ErrorCode::SessionExpired)
            }
            Work::Client(_) if self.moved(s.session, s.owner) => Some(ErrorCode::SessionMoved),
            _ => None,
        };
        self.prepare(
            now,
            zxid,
            (s.session, s.cxid),
            work,
            s.auth.as_deref(),
            session_err,
        )
    }

    /// Leader: whether `session` is owned by another server than `owner` (the first request or
    /// revalidation after an election claims it, as ZooKeeper's null owner does).
    fn moved(&mut self, session: i64, owner: Option<u64>) -> bool {
        match self.owners.get(&session) {
            Some(o) => *o != owner,
            None => {
                self.owners.insert(session, owner);
                false
            }
        }
    }

    /// Prep against the tree plus the outstanding changes, then record this txn's changes as
    /// outstanding and stamp the digest the tree will have once it is applied.
    /// `(session, cxid)` names the request; `session_err` fails it without prep (the leader's
    /// session check).
    fn prepare(
        &mut self,
        now: Now,
        zxid: i64,
        (session, cxid): (i64, i32),
        work: Work,
        auth: Option<&[Id]>,
        session_err: Option<ErrorCode>,
    ) -> Txn {
        let ids = auth.unwrap_or(&[]);
        let policy = self.cfg.acl.clone();
        let ctx = Ctx {
            session,
            ids,
            policy: &policy,
            extended_types: self.cfg.extended_types,
            zxid,
            time: now.wall_ms,
        };
        let mut view = View::with_outstanding(&self.tree, &self.outstanding);
        let prepped = match (session_err, &work) {
            (None, _) => prep_work(&mut view, &ctx, work, &self.cfg),
            // A multi fails op by op, as ZooKeeper checks the session for each.
            (Some(e), Work::Client(Request::Multi(MultiDecode::Ops(ops)))) => {
                let rest = ErrorCode::RuntimeInconsistency.code();
                let subs = std::iter::once(e.code())
                    .chain(std::iter::repeat(rest))
                    .take(ops.len().max(1))
                    .map(|err| TxnBody::Error(ErrorTxn { err }))
                    .collect();
                Ok((op::MULTI, TxnBody::Multi(subs)))
            }
            (Some(e), _) => Err(e),
        };
        let (ty, body) = match prepped {
            Ok(x) => x,
            Err(e) => {
                drop(view);
                return Txn {
                    header: TxnHeader {
                        client_id: session,
                        cxid,
                        zxid,
                        time: now.wall_ms,
                        r#type: op::ERROR,
                    },
                    body: TxnBody::Error(ErrorTxn { err: e.code() }),
                    digest: None,
                };
            }
        };
        let failed_multi = matches!(&body, TxnBody::Multi(subs) if subs.iter().any(|s| matches!(s, TxnBody::Error(_))));
        let changes = view.into_changes();
        let digest = if failed_multi {
            self.outstanding
                .absorb(&self.tree, zxid, Default::default())
        } else {
            self.outstanding.absorb(&self.tree, zxid, changes)
        };
        Txn {
            header: TxnHeader {
                client_id: session,
                cxid,
                zxid,
                time: now.wall_ms,
                r#type: ty,
            },
            digest: body.has_digest().then_some(TxnDigest {
                version: DIGEST_VERSION,
                tree_digest: digest as i64,
            }),
            body,
        }
    }

    /// Ensemble: a txn the quorum committed, in zxid order. The peer has logged it already.
    pub fn apply_committed(&mut self, now: Now, txn: Txn) {
        self.apply_txn(now, txn, false);
    }

    /// Apply a txn, fire its watches, answer the local request it came from (if any), and,
    /// standalone, queue it for storage.
    fn apply_txn(&mut self, now: Now, txn: Txn, append: bool) {
        let session = txn.header.client_id;
        let cxid = txn.header.cxid;
        let zxid = txn.header.zxid;
        let ty = txn.header.r#type;
        let origin = self.take_pending(session, cxid, ty);
        let (err, results) = self.apply_to_tree(now, &txn);
        self.outstanding.applied(&self.tree, zxid);
        if append {
            self.out.push_back(Output::Append(txn.clone()));
        }
        if let TxnBody::CreateSession(c) = &txn.body {
            if !self.sessions.contains(session) {
                self.sessions
                    .add(session, c.time_out.max(0) as u32, now.mono_ms);
            }
        }
        if let Some(p) = origin {
            self.answer(p, &txn, err, results);
        } else if ty == op::CLOSE_SESSION {
            // Expired elsewhere (or by the leader): drop the client's connection here too.
            if let Some(conn) = self.session_conn.remove(&session) {
                self.close(conn);
            }
        }
        self.drain_reads(session);
    }

    /// The local request a txn answers: the oldest pending write (or connect) of its session,
    /// matched by cxid.
    fn take_pending(&mut self, session: i64, cxid: i32, ty: i32) -> Option<Pending> {
        let q = self.pending.get_mut(&session)?;
        let pos = q.iter().position(|p| match p {
            Pending::Connect { .. } => ty == op::CREATE_SESSION,
            Pending::Write { xid, .. } => *xid == cxid && ty != op::CREATE_SESSION,
            _ => false,
        })?;
        // Reads queued before the write complete first (they were waiting for earlier writes).
        let p = q.remove(pos);
        if q.is_empty() {
            self.pending.remove(&session);
        }
        p
    }

    /// Serve reads that were waiting for earlier writes of the session, up to its next
    /// pending write.
    fn drain_reads(&mut self, session: i64) {
        loop {
            let Some(q) = self.pending.get_mut(&session) else {
                return;
            };
            if !matches!(q.front(), Some(Pending::Read { .. })) {
                if q.is_empty() {
                    self.pending.remove(&session);
                }
                return;
            }
            let Some(Pending::Read { conn, xid, req }) = q.pop_front() else {
                return;
            };
            if self.conns.contains_key(&conn) {
                self.read_request(conn, session, xid, req);
            }
        }
    }

    /// Apply to the tree; a successful multi is applied op by op so each result carries the
    /// stat right after its op, as ZooKeeper reports them.
    fn apply_to_tree(&mut self, _now: Now, txn: &Txn) -> (i32, Vec<MultiResult>) {
        let header = &txn.header;
        match &txn.body {
            TxnBody::Multi(subs) if !subs.iter().any(|s| matches!(s, TxnBody::Error(_))) => {
                let mut triggers = Vec::new();
                let mut results = Vec::with_capacity(subs.len());
                for s in subs {
                    let applied = self.tree.apply(header, s);
                    triggers.extend(applied.triggers);
                    results.push(self.multi_result(s));
                }
                // An empty multi applies nothing but still consumes its zxid.
                if header.zxid > self.tree.last_processed_zxid() {
                    self.tree.set_last_processed_zxid(header.zxid);
                }
                self.fire(&triggers);
                (0, results)
            }
            TxnBody::Multi(subs) => {
                self.tree.apply(header, &txn.body);
                let results = subs
                    .iter()
                    .map(|s| {
                        MultiResult::Error(match s {
                            TxnBody::Error(e) => e.err,
                            _ => 0,
                        })
                    })
                    .collect();
                (0, results)
            }
            body => {
                let applied = self.tree.apply(header, body);
                if let Some(s) = applied.closed_session {
                    self.sessions.remove(s);
                }
                self.fire(&applied.triggers);
                (applied.err, Vec::new())
            }
        }
    }

    fn multi_result(&self, s: &TxnBody) -> MultiResult {
        let stat = |p: &str| {
            self.tree
                .get(p)
                .map(|n| n.client_stat())
                .unwrap_or_default()
        };
        match s {
            TxnBody::Create(t) => MultiResult::Create(t.path.clone()),
            TxnBody::CreateContainer(t) => MultiResult::Create2(t.path.clone(), stat(&t.path)),
            TxnBody::CreateTtl(t) => MultiResult::Create2(t.path.clone(), stat(&t.path)),
            TxnBody::Delete(_) | TxnBody::DeleteContainer(_) => MultiResult::Delete,
            TxnBody::SetData(t) => MultiResult::SetData(stat(&t.path)),
            TxnBody::Check(_) => MultiResult::Check,
            _ => MultiResult::Error(0),
        }
    }

    /// Reply to the request a txn came from.
    fn answer(&mut self, p: Pending, txn: &Txn, err: i32, results: Vec<MultiResult>) {
        let zxid = txn.header.zxid;
        let session = txn.header.client_id;
        match p {
            Pending::Connect {
                conn,
                timeout,
                read_only,
            } => {
                if self.conns.get(&conn).is_none_or(|c| c.closing) {
                    return;
                }
                self.attach(conn, session);
                self.connect_reply(
                    conn,
                    timeout as i32,
                    session,
                    &session_password(session),
                    read_only,
                );
                tracing::info!("session 0x{session:x} created, timeout {timeout} ms");
            }
            Pending::Write { conn, xid, op: o } => {
                if !self.conns.contains_key(&conn) {
                    return;
                }
                if o == op::CLOSE_SESSION {
                    self.session_conn.remove(&session);
                    self.reply(conn, xid, zxid, 0, &[]);
                    self.close(conn);
                    return;
                }
                if err == ErrorCode::SessionMoved.code() {
                    // FinalRequestProcessor: the client's session lives on another server now;
                    // this connection is stale, so it is closed rather than answered.
                    self.close(conn);
                    return;
                }
                if err != 0 {
                    self.reply(conn, xid, zxid, err, &[]);
                    return;
                }
                let bytes = self.write_reply_body(o, &txn.body, &results);
                self.reply(conn, xid, zxid, 0, &bytes);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.last_zxid = zxid;
                }
            }
            Pending::Read { .. } | Pending::Sync { .. } => {
                unreachable!("take_pending only returns writes and connects")
            }
        }
    }

    /// The body of a successful write's reply, built from the applied txn as ZooKeeper's
    /// `FinalRequestProcessor` does.
    fn write_reply_body(&self, o: i32, txn_body: &TxnBody, results: &[MultiResult]) -> Vec<u8> {
        let path = match txn_body {
            TxnBody::Create(t) => Some(t.path.as_str()),
            TxnBody::CreateContainer(t) => Some(t.path.as_str()),
            TxnBody::CreateTtl(t) => Some(t.path.as_str()),
            TxnBody::SetData(t) => Some(t.path.as_str()),
            TxnBody::SetAcl(t) => Some(t.path.as_str()),
            _ => None,
        };
        let stat = || {
            path.and_then(|p| self.tree.get(p))
                .map(|n| n.client_stat())
                .unwrap_or_default()
        };
        match o {
            op::CREATE => body(&CreateResponse {
                path: path.unwrap_or_default().to_string(),
            }),
            op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => body(&Create2Response {
                path: path.unwrap_or_default().to_string(),
                stat: stat(),
            }),
            op::SET_DATA | op::SET_ACL => body(&stat()),
            op::MULTI => {
                let mut b = Vec::new();
                write_multi_response(results, &mut b);
                b
            }
            _ => Vec::new(),
        }
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
            // The hottest reads build their reply frame in place: the body straight after the
            // header, no intermediate copies of the data.
            Request::GetData(r) => {
                let mut f = frame_start(xid, zxid);
                match self.get_data(conn, &ids, &r.path, r.watch, &mut f) {
                    Ok(()) => self.send(conn, frame_end(f)),
                    Err(e) => self.reply(conn, xid, zxid, e.code(), &[]),
                }
                return;
            }
            Request::GetChildren(ref r) | Request::GetChildren2(ref r) => {
                let with_stat = matches!(req, Request::GetChildren2(_));
                let mut f = frame_start(xid, zxid);
                match self.get_children(conn, &ids, &r.path, r.watch, with_stat, &mut f) {
                    Ok(()) => self.send(conn, frame_end(f)),
                    Err(e) => self.reply(conn, xid, zxid, e.code(), &[]),
                }
                return;
            }
            Request::GetAcl(r) => match self.tree.get(&r.path) {
                None => Err(ErrorCode::NoNode),
                Some(n) => {
                    if !self
                        .cfg
                        .acl
                        .allows(n.acl(), perms::READ | perms::ADMIN, &ids)
                    {
                        Err(ErrorCode::NoAuth)
                    } else {
                        let acl = if self.cfg.acl.allows(n.acl(), perms::ADMIN, &ids) {
                            n.acl().to_vec()
                        } else {
                            acl::redact_digests(n.acl())
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
                Some(n) if !self.cfg.acl.allows(n.acl(), perms::READ, &ids) => {
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
                                // Rare enough to decode the one encoding of the list again.
                                let mut b = Vec::new();
                                match self.get_children(conn, &ids, &r.path, false, false, &mut b) {
                                    Ok(()) => MultiResult::GetChildren(
                                        Vec::<String>::read(&mut Reader::new(&b))
                                            .expect("just encoded"),
                                    ),
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
        if !self.cfg.acl.allows(n.acl(), perms::READ, ids) {
            return Err(ErrorCode::NoAuth);
        }
        Ok((n.to_data(), n.client_stat()))
    }

    /// The getData reply body (a GetDataResponse), appended to `out`.
    fn get_data(
        &mut self,
        conn: ConnId,
        ids: &[Id],
        p: &str,
        watch: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), ErrorCode> {
        let n = self.tree.get(p).ok_or(ErrorCode::NoNode)?;
        if !self.cfg.acl.allows(n.acl(), perms::READ, ids) {
            return Err(ErrorCode::NoAuth);
        }
        out.reserve(n.data_len() + 4 + 68);
        out.put_buffer(n.data());
        n.client_stat().write(out);
        if watch {
            self.data_watches.add(p, conn, WatchMode::Standard);
        }
        Ok(())
    }

    /// The getChildren (or, `with_stat`, getChildren2) reply body, appended to `b` straight
    /// from the child list: a list of thousands of names is not worth a `String` each.
    fn get_children(
        &mut self,
        conn: ConnId,
        ids: &[Id],
        p: &str,
        watch: bool,
        with_stat: bool,
        b: &mut Vec<u8>,
    ) -> Result<(), ErrorCode> {
        let n = self.tree.get(p).ok_or(ErrorCode::NoNode)?;
        if !self.cfg.acl.allows(n.acl(), perms::READ, ids) {
            return Err(ErrorCode::NoAuth);
        }
        b.reserve(4 + n.num_children() * 16 + 80);
        b.put_i32(n.num_children() as i32);
        for c in n.children() {
            // A jute ustring is a buffer of its UTF-8 bytes.
            b.put_buffer(Some(c.name_bytes()));
        }
        if with_stat {
            n.client_stat().write(b);
        }
        if watch {
            self.child_watches.add(p, conn, WatchMode::Standard);
        }
        Ok(())
    }

    /// SetWatches / SetWatches2 after a reconnect (§2.7): fire what the client missed, re-register
    /// the rest. Notifications go out before the reply.
    fn set_watches(&mut self, conn: ConnId, s: &SetWatches2) {
        let rel = s.relative_zxid;
        let mut events = Vec::new();
        for p in &s.data_watches {
            match self.tree.get(p) {
                None => events.push((event_type::NODE_DELETED, p)),
                Some(n) if n.stat().mzxid > rel => events.push((event_type::NODE_DATA_CHANGED, p)),
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
                Some(n) if n.stat().pzxid > rel => {
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

/// Where a write comes from: a client request, or the server itself (sessions, reaper).
#[derive(Debug, Clone)]
pub enum Work {
    Client(Request),
    /// A write whose record did not decode: prep answers MarshallingError.
    Malformed(i32),
    CreateSession {
        timeout: i32,
    },
    CloseSession,
    DeleteContainer(String),
}

impl Work {
    /// The REQUEST packet form (§4.4): opcode and the request record bytes. createSession
    /// carries its timeout as an i32, deleteContainer the raw path bytes, as ZooKeeper's.
    pub fn encode(&self) -> (i32, Vec<u8>) {
        match self {
            Work::Client(r) => {
                let mut b = Vec::new();
                r.write(&mut b);
                (r.op_code(), b)
            }
            Work::Malformed(o) => (*o, Vec::new()),
            Work::CreateSession { timeout } => (op::CREATE_SESSION, timeout.to_be_bytes().to_vec()),
            Work::CloseSession => (op::CLOSE_SESSION, Vec::new()),
            Work::DeleteContainer(p) => (op::DELETE_CONTAINER, p.as_bytes().to_vec()),
        }
    }

    pub fn decode(op_type: i32, body: &[u8]) -> Work {
        match op_type {
            op::CREATE_SESSION => match <[u8; 4]>::try_from(body) {
                Ok(b) => Work::CreateSession {
                    timeout: i32::from_be_bytes(b),
                },
                Err(_) => Work::Malformed(op_type),
            },
            op::CLOSE_SESSION => Work::CloseSession,
            op::DELETE_CONTAINER => match std::str::from_utf8(body) {
                Ok(p) => Work::DeleteContainer(p.to_string()),
                Err(_) => Work::Malformed(op_type),
            },
            _ => match Request::read(op_type, &mut Reader::new(body)) {
                Ok(r) if r.is_write() => Work::Client(r),
                _ => Work::Malformed(op_type),
            },
        }
    }
}

/// Prep one unit of work into (txn type, txn body); an error becomes an error txn.
fn prep_work(
    view: &mut View<'_>,
    ctx: &Ctx<'_>,
    work: Work,
    cfg: &CoreConfig,
) -> Result<(i32, TxnBody), ErrorCode> {
    let req = match work {
        Work::Malformed(_) => return Err(ErrorCode::MarshallingError),
        Work::CreateSession { timeout } => {
            return Ok((
                op::CREATE_SESSION,
                TxnBody::CreateSession(CreateSessionTxn { time_out: timeout }),
            ))
        }
        Work::CloseSession => {
            let paths = view.close_session(ctx);
            let body = cfg.close_session_txn_enabled.then_some(CloseSessionTxn {
                paths_to_delete: paths,
            });
            return Ok((op::CLOSE_SESSION, TxnBody::CloseSession(body)));
        }
        Work::DeleteContainer(p) => {
            return Ok((op::DELETE_CONTAINER, view.delete_container(ctx, &p)?));
        }
        Work::Client(r) => r,
    };
    let ty = req.op_code();
    let body = match req {
        Request::Create(r) | Request::Create2(r) => {
            view.create(
                ctx,
                CreateKind::Plain,
                &r.path,
                &r.data,
                &r.acl,
                r.flags,
                -1,
            )?
            .0
        }
        Request::CreateContainer(r) => {
            view.create(
                ctx,
                CreateKind::Container,
                &r.path,
                &r.data,
                &r.acl,
                r.flags,
                -1,
            )?
            .0
        }
        Request::CreateTtl(r) => {
            view.create(
                ctx,
                CreateKind::Ttl,
                &r.path,
                &r.data,
                &r.acl,
                r.flags,
                r.ttl,
            )?
            .0
        }
        Request::Delete(r) => view.delete(ctx, &r.path, r.version)?,
        Request::SetData(r) => view.set_data(ctx, &r.path, &r.data, r.version)?,
        Request::SetAcl(r) => view.set_acl(ctx, &r.path, &r.acl, r.version)?,
        Request::Reconfig(_) => {
            return Err(if cfg.reconfig_enabled {
                ErrorCode::Unimplemented
            } else {
                ErrorCode::ReconfigDisabled
            })
        }
        Request::Multi(m) => prep_multi(view, ctx, m)?,
        _ => return Err(ErrorCode::MarshallingError),
    };
    Ok((ty, body))
}

/// Prep a multi: every op in order against the view; after the first failure the rest become
/// RuntimeInconsistency; the ops before it keep their txns but nothing is applied (§3.4). Creates are
/// re-typed by their flags, as ZooKeeper's Op.create does; invalid flags become PERSISTENT
/// there. A non-TTL create op carrying TTL flags cannot be built into a TTL request and fails
/// the whole multi with MarshallingError.
fn prep_multi(view: &mut View<'_>, ctx: &Ctx<'_>, m: MultiDecode) -> Result<TxnBody, ErrorCode> {
    let MultiDecode::Ops(ops) = m else {
        return Err(ErrorCode::MarshallingError);
    };
    let mut subs = Vec::with_capacity(ops.len());
    let mut failed = false;
    for o in &ops {
        if failed {
            subs.push(TxnBody::Error(ErrorTxn {
                err: ErrorCode::RuntimeInconsistency.code(),
            }));
            continue;
        }
        let res = match o {
            MultiOp::Create { req, .. } => {
                let flags = if CreateMode::from_flag(req.flags).is_some() {
                    req.flags
                } else {
                    0
                };
                let mode = CreateMode::from_flag(flags).expect("normalised");
                if mode.ttl {
                    return Err(ErrorCode::MarshallingError);
                }
                let kind = if mode.container {
                    CreateKind::Container
                } else {
                    CreateKind::Plain
                };
                view.create(ctx, kind, &req.path, &req.data, &req.acl, flags, -1)
                    .map(|(b, _)| b)
            }
            MultiOp::CreateTtl(req) => {
                let mode = CreateMode::from_flag(req.flags)
                    .unwrap_or(CreateMode::from_flag(0).expect("0 is valid"));
                let flags = if CreateMode::from_flag(req.flags).is_some() {
                    req.flags
                } else {
                    0
                };
                let (kind, ttl) = if mode.ttl {
                    (CreateKind::Ttl, req.ttl)
                } else if mode.container {
                    (CreateKind::Container, -1)
                } else {
                    (CreateKind::Plain, -1)
                };
                view.create(ctx, kind, &req.path, &req.data, &req.acl, flags, ttl)
                    .map(|(b, _)| b)
            }
            MultiOp::Delete(r) => view.delete(ctx, &r.path, r.version),
            MultiOp::SetData(r) => view.set_data(ctx, &r.path, &r.data, r.version),
            MultiOp::Check(r) => view.check(ctx, &r.path, r.version),
            MultiOp::GetData(_) | MultiOp::GetChildren(_) => {
                unreachable!("decoder refuses reads in multi")
            }
        };
        match res {
            Ok(b) => subs.push(b),
            Err(e) => {
                failed = true;
                subs.push(TxnBody::Error(ErrorTxn { err: e.code() }));
            }
        }
    }
    Ok(TxnBody::Multi(subs))
}
