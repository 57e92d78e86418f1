//! Applying a txn: the tree changes, watches fire, and the local request it came from is
//! answered; reads queued behind the write are served after it.

use corral_proto::records::*;
use corral_proto::request::*;
use corral_proto::txn::*;
use corral_proto::ErrorCode;

use super::{body, Core, Now, Output, Pending};
use crate::session::session_password;
use crate::tree::Trigger;

impl Core {
    /// Ensemble: a txn the quorum committed, in zxid order. The peer has logged it already.
    pub fn apply_committed(&mut self, now: Now, txn: Txn) {
        self.apply_txn(now, txn, false);
    }

    /// Apply a txn, fire its watches, answer the local request it came from (if any), and,
    /// standalone, queue it for storage.
    pub(super) fn apply_txn(&mut self, now: Now, txn: Txn, append: bool) {
        let session = txn.header.client_id;
        let cxid = txn.header.cxid;
        let zxid = txn.header.zxid;
        let ty = txn.header.r#type;
        let origin = self.take_pending(session, cxid, ty);
        // The ephemerals a closing session takes with it, for the audit log.
        let removed = match (&self.cfg.audit_user, &txn.body) {
            (Some(_), TxnBody::CloseSession(_)) => self.tree.ephemerals_of(session),
            _ => Vec::new(),
        };
        let (err, results) = self.apply_to_tree(now, &txn);
        if let Some(user) = &self.cfg.audit_user {
            for path in removed {
                super::audit::ephemeral_removed(user, session, &path);
            }
        }
        if err == 0 {
            self.note_ttl_changes(now, &txn.body);
        }
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

    /// Remember when TTL nodes were created or had their data set (by this core's monotonic
    /// clock), and forget deleted ones. A failed multi changed nothing (its sub-txns before
    /// the failing one are still real records, a delete among them included): skipped.
    fn note_ttl_changes(&mut self, now: Now, body: &TxnBody) {
        let touched = match body {
            TxnBody::Multi(subs) if subs.iter().any(|s| matches!(s, TxnBody::Error(_))) => {
                return;
            }
            TxnBody::Multi(subs) => {
                for s in subs {
                    self.note_ttl_changes(now, s);
                }
                return;
            }
            TxnBody::CreateTtl(t) => &t.path,
            TxnBody::SetData(t) => &t.path,
            TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => {
                self.ttl_touched_ms.remove(&t.path);
                return;
            }
            _ => return,
        };
        let is_ttl = (self.tree.get(touched))
            .is_some_and(|n| matches!(n.kind(), crate::tree::NodeKind::Ttl(_)));
        if is_ttl {
            self.ttl_touched_ms.insert(touched.clone(), now.mono_ms);
        }
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
    pub(super) fn drain_reads(&mut self, session: i64) {
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
            Pending::Write {
                conn,
                xid,
                op: o,
                audit,
            } => {
                if let Some(a) = audit {
                    a.log(&txn.body, err);
                }
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
                    // ZooKeeper counts each table's watchers, the child table's before it
                    // leaves out those the data table told already.
                    self.tally.note_fired(event_type::NODE_DELETED, data.len());
                    self.tally.note_fired(event_type::NODE_DELETED, child.len());
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
            if !matches!(t, Trigger::Deleted(..)) {
                for (ty, conns) in &notify {
                    self.tally.note_fired(*ty, conns.len());
                }
            }
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
}
