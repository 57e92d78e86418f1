//! A request on an established connection: routed to the read path, the write pipeline (via
//! `submit`), or a forwarded `sync`; each session's requests complete in the order sent.

use corral_proto::records::*;
use corral_proto::request::*;
use corral_proto::ErrorCode;

use super::{body, Core, Now, Output, Pending, Role, Submitted, Work};
use crate::watch::ConnId;

impl Core {
    pub(super) fn enqueue(&mut self, session: i64, p: Pending) {
        self.pending.entry(session).or_default().push_back(p);
    }

    /// Hand a write to the pipeline. Standalone, it is prepared and applied at once (the glue
    /// holds replies until the txn is durable); in an ensemble it goes to the ZAB peer, which
    /// forwards it to the leader, and comes back through `apply_committed`.
    pub(super) fn submit(
        &mut self,
        now: Now,
        session: i64,
        cxid: i32,
        work: Work,
        auth: Option<Vec<Id>>,
    ) {
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

    /// `enforce.auth.enabled`: a connection may send anything but auth and SASL packets only
    /// once it holds an id of one of `enforce.auth.schemes` (ZooKeeper's AuthenticationHelper).
    fn may_proceed(&self, conn: ConnId, req: &Request) -> bool {
        let Some(schemes) = &self.cfg.acl.enforce_schemes else {
            return true;
        };
        matches!(req, Request::Auth(_) | Request::Sasl(_))
            || self
                .conns
                .get(&conn)
                .is_some_and(|c| c.auth.iter().any(|i| schemes.contains(&i.scheme)))
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
        if !self.may_proceed(conn, &req) {
            tracing::warn!(
                "connection {conn} sent {} without authenticating with {:?} \
                 (enforce.auth.schemes); closing it",
                op_name(req.op_code()),
                self.cfg.acl.enforce_schemes.as_deref().unwrap_or_default()
            );
            let code = ErrorCode::SessionClosedRequireSaslAuth.code();
            self.reply(conn, xid, 0, code, &[]);
            self.close(conn);
            return;
        }
        if req.is_write() {
            self.write_request(now, conn, session, xid, req);
        } else if let Request::Auth(_) | Request::Sasl(_) = req {
            // Auth and SASL are handled as they arrive, before ZooKeeper's request pipeline.
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
        // ZooKeeper checks enforce.auth before it decodes the request's body.
        let authed = self.cfg.acl.enforce_schemes.as_ref().is_none_or(|schemes| {
            (self.conns.get(&conn))
                .is_some_and(|c| c.auth.iter().any(|i| schemes.contains(&i.scheme)))
        });
        if !authed
            && op_type != corral_proto::records::op::AUTH
            && op_type != corral_proto::records::op::SASL
        {
            let code = ErrorCode::SessionClosedRequireSaslAuth.code();
            self.reply(conn, xid, 0, code, &[]);
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
                    audit: None,
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
        let audit = match (&self.cfg.audit_user, self.conns.get(&conn)) {
            (Some(_), Some(c)) => {
                super::audit::AuditReq::of(&req, session, &c.auth, &c.remote_ip).map(Box::new)
            }
            _ => None,
        };
        self.enqueue(
            session,
            Pending::Write {
                conn,
                xid,
                op: req.op_code(),
                audit,
            },
        );
        if let Request::CloseSession = req {
            self.sessions.set_closing(session);
            self.submit(now, session, xid, Work::CloseSession, None);
        } else {
            self.submit(now, session, xid, Work::Client(req), auth);
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
