//! The client history in the form `corral_lincheck` checks: every request as a `Call`, every
//! reply decoded into a `Res` with its header zxid, each session's stream of replies (and
//! reconnects), and the txns no client issued (session expiry) from the committed chain. At
//! the end of a run the whole history must be linearizable under ZooKeeper's model.

use std::collections::BTreeMap;

use corral_lincheck::{
    Acl as LinAcl, AddWatchMode, Call, CreateMode, History, Op, Received, Res, Ret, Session, Stat,
    SystemWhat, SystemWrite,
};
use corral_proto::jute::{Jute, Reader};
use corral_proto::records::{
    add_watch_mode, op, Acl, Create2Response, CreateRequest, CreateResponse, DeleteRequest,
    GetAclResponse, GetChildrenResponse, GetDataResponse, MultiHeader, SetDataRequest,
    Stat as WireStat, StatResponse,
};
use corral_proto::request::{MultiDecode, MultiOp, Request};
use corral_proto::txn::TxnBody;

use crate::chain::Chain;
use crate::client::OpKind;

/// Txn types ZooKeeper writes for closeSession and createSession.
const CLOSE_SESSION_TYPE: i32 = -11;
const CREATE_SESSION_TYPE: i32 = -10;

#[derive(Default)]
pub struct Recorder {
    pub ops: Vec<Op>,
    /// Per op: the cxid (xid) it was sent with.
    xids: Vec<i32>,
    sessions: BTreeMap<i64, Session>,
}

fn stat(s: &WireStat) -> Stat {
    Stat {
        czxid: s.czxid,
        mzxid: s.mzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        cversion: s.cversion,
        aversion: s.aversion,
        ephemeral_owner: s.ephemeral_owner,
        data_length: s.data_length,
        num_children: s.num_children,
        pzxid: s.pzxid,
    }
}

fn mode(flags: i32) -> CreateMode {
    CreateMode {
        ephemeral: flags & 1 != 0,
        sequential: flags & 2 != 0,
        ..CreateMode::default()
    }
}

fn acls(a: &[Acl]) -> Vec<LinAcl> {
    a.iter()
        .map(|a| LinAcl {
            perms: a.perms,
            scheme: a.id.scheme.clone(),
            id: a.id.id.clone(),
        })
        .collect()
}

fn data(d: &Option<Vec<u8>>) -> Vec<u8> {
    d.clone().unwrap_or_default()
}

fn create_call(r: &CreateRequest) -> Call {
    Call::Create {
        path: r.path.clone(),
        data: data(&r.data),
        mode: mode(r.flags),
        acl: acls(&r.acl),
    }
}

fn set_data_call(r: &SetDataRequest) -> Call {
    Call::SetData {
        path: r.path.clone(),
        data: data(&r.data),
        version: r.version,
    }
}

fn delete_call(r: &DeleteRequest) -> Call {
    Call::Delete {
        path: r.path.clone(),
        version: r.version,
    }
}

/// The request as the checker's `Call`.
pub fn call_of(req: &Request) -> Call {
    match req {
        Request::Create(r) => create_call(r),
        // createContainer makes a container whatever the flags (the workload sends 4).
        Request::CreateContainer(r) => Call::Create {
            path: r.path.clone(),
            data: data(&r.data),
            mode: CreateMode {
                container: true,
                ..CreateMode::default()
            },
            acl: acls(&r.acl),
        },
        Request::CreateTtl(r) => Call::Create {
            path: r.path.clone(),
            data: data(&r.data),
            mode: CreateMode {
                sequential: r.flags & 2 != 0,
                ttl_ms: Some(r.ttl),
                ..CreateMode::default()
            },
            acl: acls(&r.acl),
        },
        Request::SetAcl(r) => Call::SetAcl {
            path: r.path.clone(),
            acl: acls(&r.acl),
            version: r.version,
        },
        Request::GetAcl(r) => Call::GetAcl {
            path: r.path.clone(),
        },
        Request::SetData(r) => set_data_call(r),
        Request::Delete(r) => delete_call(r),
        Request::GetData(r) => Call::GetData {
            path: r.path.clone(),
            watch: r.watch,
        },
        Request::Exists(r) => Call::Exists {
            path: r.path.clone(),
            watch: r.watch,
        },
        Request::GetChildren(r) => Call::GetChildren {
            path: r.path.clone(),
            watch: r.watch,
        },
        Request::Sync(r) => Call::Sync {
            path: r.path.clone(),
        },
        Request::CloseSession => Call::CloseSession,
        Request::AddWatch(r) => Call::AddWatch {
            path: r.path.clone(),
            mode: if r.mode == add_watch_mode::PERSISTENT {
                AddWatchMode::Persistent
            } else {
                AddWatchMode::PersistentRecursive
            },
        },
        Request::Multi(MultiDecode::Ops(ops)) => Call::Multi(
            ops.iter()
                .map(|o| match o {
                    MultiOp::Create { req, .. } => create_call(req),
                    MultiOp::SetData(r) => set_data_call(r),
                    MultiOp::Delete(r) => delete_call(r),
                    MultiOp::Check(r) => Call::Check {
                        path: r.path.clone(),
                        version: r.version,
                    },
                    other => unreachable!("the simulated clients do not send {other:?}"),
                })
                .collect(),
        ),
        other => unreachable!("the simulated clients do not send {other:?}"),
    }
}

/// The reply body of a `kind` request with header error `err`, decoded.
pub fn res_of(kind: OpKind, err: i32, body: &[u8]) -> Result<Res, String> {
    let mut r = Reader::new(body);
    let e = |e: corral_proto::DecodeError| e.to_string();
    if kind == OpKind::Multi {
        return multi_res(&mut r).map_err(e);
    }
    if kind == OpKind::Exists && err == corral_proto::ErrorCode::NoNode.code() {
        return Ok(Res::Exists(None));
    }
    if err != 0 {
        return Ok(Res::Err(err));
    }
    Ok(match kind {
        OpKind::Create => Res::Created {
            path: CreateResponse::read(&mut r).map_err(e)?.path,
            stat: None,
        },
        OpKind::Create2 => {
            let c = Create2Response::read(&mut r).map_err(e)?;
            Res::Created {
                path: c.path,
                stat: Some(stat(&c.stat)),
            }
        }
        OpKind::SetData | OpKind::SetAcl => {
            Res::Stat(stat(&StatResponse::read(&mut r).map_err(e)?.stat))
        }
        OpKind::GetAcl => {
            let g = GetAclResponse::read(&mut r).map_err(e)?;
            Res::Acl {
                acl: acls(&g.acl),
                stat: stat(&g.stat),
            }
        }
        OpKind::Delete => Res::Deleted,
        OpKind::GetData => {
            let g = GetDataResponse::read(&mut r).map_err(e)?;
            Res::Data {
                data: g.data.unwrap_or_default(),
                stat: stat(&g.stat),
            }
        }
        OpKind::Exists => Res::Exists(Some(stat(&StatResponse::read(&mut r).map_err(e)?.stat))),
        OpKind::GetChildren => {
            Res::Children(GetChildrenResponse::read(&mut r).map_err(e)?.children)
        }
        OpKind::Sync => Res::Synced,
        OpKind::CloseSession => Res::Closed,
        OpKind::Multi => unreachable!("handled above"),
        OpKind::AddWatch => Res::WatchAdded,
        OpKind::SetWatches => return Err("SetWatches is not in the checked history".into()),
    })
}

/// A MultiResponse: per op a header and its record, then the `done` header.
fn multi_res(r: &mut Reader<'_>) -> Result<Res, corral_proto::DecodeError> {
    let mut items = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            break;
        }
        items.push(match h.r#type {
            -1 => Res::Err(r.read_i32()?),
            op::CREATE => Res::Created {
                path: r.read_ustring()?.unwrap_or_default(),
                stat: None,
            },
            op::SET_DATA => Res::Stat(stat(&WireStat::read(r)?)),
            op::DELETE => Res::Deleted,
            op::CHECK => Res::Checked,
            t => return Err(corral_proto::DecodeError::UnknownOpCode(t)),
        });
    }
    Ok(Res::Multi(items))
}

impl Recorder {
    /// A request sent; returns its index.
    pub fn invoke(&mut self, session: i64, xid: i32, at: u64, call: Call) -> usize {
        self.ops.push(Op {
            session,
            invoke: at,
            complete: None,
            call,
            ret: Ret::Unknown,
        });
        self.xids.push(xid);
        self.ops.len() - 1
    }

    pub fn complete(&mut self, i: usize, at: u64, zxid: i64, result: Res) {
        let o = &mut self.ops[i];
        o.complete = Some(at);
        o.ret = Ret::Done { zxid, result };
        let session = o.session;
        self.session(session).stream.push(Received::Reply(i));
    }

    /// The session was resumed on a new connection.
    pub fn reconnected(&mut self, session: i64) {
        self.session(session).stream.push(Received::Reconnected);
    }

    pub fn expired(&mut self, session: i64) {
        self.session(session).expired = true;
    }

    fn session(&mut self, id: i64) -> &mut Session {
        self.sessions.entry(id).or_insert_with(|| Session {
            id,
            ..Session::default()
        })
    }

    /// The history to check, with the txns no client op accounts for (session expiry, the
    /// reaper's deletes) taken from the committed chain; `bodies` holds their txns.
    pub fn history(
        &self,
        chain: &Chain,
        bodies: &std::collections::HashMap<(i64, u64), TxnBody>,
        initial: Vec<(String, Vec<u8>)>,
    ) -> Result<History, String> {
        let client_closes: std::collections::BTreeSet<(i64, i32)> = (self.ops.iter())
            .zip(&self.xids)
            .filter(|(o, _)| o.call == Call::CloseSession)
            .map(|(o, x)| (o.session, *x))
            .collect();
        let known: std::collections::BTreeSet<i64> = (self.ops.iter())
            .filter(|o| o.call.is_write())
            .filter_map(|o| o.zxid())
            .collect();
        let mut system_writes = Vec::new();
        for e in &chain.entries {
            let t = &e.txn;
            if t.ty == CLOSE_SESSION_TYPE && !client_closes.contains(&(t.session, t.cxid)) {
                system_writes.push(SystemWrite {
                    zxid: t.zxid,
                    what: SystemWhat::SessionClosed { session: t.session },
                });
            } else if t.ty == op::DELETE_CONTAINER && !t.noop {
                let Some(TxnBody::DeleteContainer(d)) = bodies.get(&(t.zxid, t.fp)) else {
                    return Err(format!("deleteContainer 0x{:x} has no known body", t.zxid));
                };
                system_writes.push(SystemWrite {
                    zxid: t.zxid,
                    what: SystemWhat::Deleted {
                        path: d.path.clone(),
                    },
                });
            }
        }
        // A write whose reply was lost sits where the committed log put it (matched by session
        // and cxid), if the log has it and it changed something; the checker verifies that
        // position against real time and the session's order, and searches no further.
        let logged: BTreeMap<(i64, i32), (i64, bool)> = (chain.entries.iter())
            .filter(|e| e.txn.cxid != 0)
            .map(|e| ((e.txn.session, e.txn.cxid), (e.txn.zxid, e.txn.noop)))
            .collect();
        let lost_write_zxids = (self.ops.iter().enumerate())
            .filter(|(_, o)| o.ret == Ret::Unknown && o.call.is_write())
            .filter_map(|(i, o)| match logged.get(&(o.session, self.xids[i])) {
                Some(&(z, false)) => Some((i, z)),
                _ => None,
            })
            .collect();
        Ok(History {
            // `crate::watch` checks every notification per connection as it arrives.
            watches_checked_elsewhere: true,
            lost_write_zxids,
            lost_writes_complete: true,
            ops: self.ops.clone(),
            sessions: self.sessions.values().cloned().collect(),
            system_writes,
            // Every committed txn but session creations (not requests in the history) and txns
            // that changed nothing (a lost request may fail late, e.g. SessionMoved, and then
            // it is as if never applied) unless a reply names them: each must be a known,
            // lost-reply or system write, which also tells the search where a lost-reply write
            // can sit.
            committed_zxids: Some(
                (chain.entries.iter())
                    .filter(|e| e.txn.ty != CREATE_SESSION_TYPE)
                    .filter(|e| !e.txn.noop || known.contains(&e.txn.zxid))
                    .map(|e| e.txn.zxid)
                    .collect(),
            ),
            initial,
        })
    }
}
