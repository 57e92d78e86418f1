//! Reads, answered from the tree at once: data, children, ACLs, watches, auth and multiRead.

use corral_proto::jute::{Jute, Reader, WriteJute};
use corral_proto::records::*;
use corral_proto::request::*;
use corral_proto::ErrorCode;

use super::{body, frame_end, frame_start, ConnSasl, Core};
use crate::acl::{self, AuthOutcome};
use crate::watch::{ConnId, WatchMode};

impl Core {
    pub(super) fn read_request(&mut self, conn: ConnId, session: i64, xid: i32, req: Request) {
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
                        self.add_ids(conn, new);
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
            Request::Sasl(t) => {
                self.sasl_step(conn, xid, t.token.as_deref().unwrap_or(&[]));
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

impl Core {
    /// One SASL token from a client: DIGEST-MD5 against the JAAS users, as ZooKeeper's
    /// `processSasl` runs it. Each step is answered with `SetSASLResponse`; the last one gives
    /// the connection its `sasl` id; a failure is AuthFailed with an empty response, and the
    /// connection is closed.
    fn sasl_step(&mut self, conn: ConnId, xid: i32, token: &[u8]) {
        let users = self.cfg.acl.sasl_users.clone();
        let other = self.cfg.acl.sasl_mechanism.clone();
        if users.is_none() && other.is_none() {
            tracing::warn!("SASL request on connection {conn}, but no JAAS Server section is configured; closing it");
            self.sasl_failed(conn, xid);
            return;
        }
        let seed = self.cfg.acl.sasl_nonce_seed;
        self.sasl_nonces += 1;
        let counter = self.sasl_nonces;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let mech = c.sasl.get_or_insert_with(|| match &other {
            Some(m) => ConnSasl::Other(m.start()),
            None => {
                use base64::Engine;
                use sha1::Digest;
                let mut h = sha1::Sha1::new();
                h.update(seed.to_be_bytes());
                h.update(conn.to_be_bytes());
                h.update(counter.to_be_bytes());
                let nonce = base64::engine::general_purpose::STANDARD.encode(h.finalize());
                ConnSasl::Digest(crate::sasl::DigestMd5::new(nonce))
            }
        });
        let step = match mech {
            ConnSasl::Other(x) => x.step(token),
            ConnSasl::Digest(d) => {
                let users = users.unwrap_or_default();
                d.step(token, |u| users.get(u).cloned())
            }
        };
        match step {
            crate::sasl::Step::Continue(t) => {
                self.reply(conn, xid, 0, 0, &body(&SaslToken { token: Some(t) }));
            }
            crate::sasl::Step::Done { token, user } => {
                tracing::info!("SASL: connection {conn} authenticated as {user}");
                let ids = self.cfg.acl.sasl_ids(&user);
                self.add_ids(conn, ids);
                self.reply(conn, xid, 0, 0, &body(&SaslToken { token }));
            }
            crate::sasl::Step::Failed(why) => {
                tracing::warn!(
                    "SASL authentication failed on connection {conn}: {why}; closing it"
                );
                self.sasl_failed(conn, xid);
            }
        }
    }

    /// AuthFailed (or -124 when SASL is required) with an empty SetSASLResponse body, as
    /// ZooKeeper answers a failed step, then the connection is closed. The Java client reads
    /// that body even on an error: without it, it sees the end of the stream and reconnects.
    fn sasl_failed(&mut self, conn: ConnId, xid: i32) {
        let empty = body(&SaslToken { token: None });
        // ZooKeeper answers -124 instead when SASL is what enforce.auth requires.
        let required = (self.cfg.acl.enforce_schemes.as_deref())
            .is_some_and(|s| s.iter().any(|x| x == "sasl"));
        if self.cfg.acl.allow_sasl_failed && !required {
            // allowSaslFailedClients: an ordinary answer with no token, and the connection
            // stays, without a sasl id.
            tracing::warn!("keeping connection {conn} despite its failed SASL authentication (allowSaslFailedClients)");
            self.reply(conn, xid, 0, 0, &empty);
            return;
        }
        let code = if required {
            ErrorCode::SessionClosedRequireSaslAuth.code()
        } else {
            ErrorCode::AuthFailed.code()
        };
        self.send(conn, error_frame_with_body(xid, 0, code, &empty));
        self.close(conn);
    }

    /// Gives a connection the ids an authentication produced (each once).
    pub(super) fn add_ids(&mut self, conn: ConnId, ids: Vec<Id>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            for i in ids {
                if !c.auth.contains(&i) {
                    c.auth.push(i);
                }
            }
        }
    }
}
