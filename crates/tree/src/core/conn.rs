//! Client connections: open and close, the ConnectRequest that creates or resumes a session,
//! and the ConnectResponse.

use corral_proto::records::*;
use corral_proto::request::*;

use super::{ConnInfo, Core, Now, Output, Pending, Role, Work};
use crate::session::session_password;
use crate::watch::ConnId;

impl Core {
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
                sasl: None,
            },
        );
    }

    /// A TLS connection was accepted: as [`Self::handle_open`], and a client certificate's
    /// subject gives the connection its `x509` id (and `super` for the x509 super user), as
    /// ZooKeeper's x509 provider does once the handshake is done.
    pub fn handle_open_tls(&mut self, conn: ConnId, remote_ip: String, subject: Option<&str>) {
        self.handle_open(conn, remote_ip);
        if let Some(subject) = subject {
            let ids = self.cfg.acl.x509_ids(subject);
            self.add_ids(conn, ids);
        }
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

    pub(super) fn ip(&self, conn: ConnId) -> String {
        self.conns
            .get(&conn)
            .map(|c| c.remote_ip.clone())
            .unwrap_or_default()
    }

    pub(super) fn attach(&mut self, conn: ConnId, id: i64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = id;
        }
        self.session_conn.insert(id, conn);
    }

    pub(super) fn connect_reply(
        &mut self,
        conn: ConnId,
        to: i32,
        id: i64,
        pw: &[u8],
        ro: Option<bool>,
    ) {
        let resp = ConnectResponse {
            protocol_version: 0,
            time_out: to,
            session_id: id,
            passwd: Some(pw.to_vec()),
        };
        self.send(conn, connect_response_frame(&resp, ro.map(|_| false)));
    }
}
