//! Request preparation: a write (client request or server-made work) becomes the txn at a zxid,
//! checked against the tree plus the outstanding changes (ZooKeeper's `PrepRequestProcessor`).

use corral_proto::jute::Reader;
use corral_proto::records::*;
use corral_proto::request::*;
use corral_proto::txn::*;
use corral_proto::ErrorCode;

use super::{Core, CoreConfig, Now, Submitted};
use crate::prep::{CreateKind, CreateMode, Ctx, View};

impl Core {
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
    pub(super) fn prepare(
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
            enforce_quota: self.cfg.enforce_quota,
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
        self.tally
            .note_quota_refused(std::mem::take(&mut view.quota_refused));
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
