//! ZooKeeper's audit log (`audit.enable`): one line per write a client of this server made,
//! and per ephemeral removed with its session, in ZooKeeper 3.8's format (tab-separated
//! `key=value` pairs: session, user, ip, operation, znode, znode_type, acl, then result),
//! logged at INFO under the `audit` target. Which requests, which fields and which result
//! follow ZooKeeper's AuditHelper, checked against the real server (docs/operations.md).

use corral_proto::records::{Acl, Id};
use corral_proto::request::{MultiDecode, MultiOp, Request};
use corral_proto::txn::TxnBody;

/// What a write request needs for its audit line, taken when it arrives.
#[derive(Debug, Clone)]
pub(crate) struct AuditReq {
    op: &'static str,
    /// The request's path (the line's znode for a request that failed before it became a txn).
    path: Option<String>,
    create_mode: Option<&'static str>,
    acl: Option<String>,
    /// A multi's creates: path → create mode.
    multi_modes: Vec<(String, &'static str)>,
    users: Option<String>,
    ip: String,
    session: i64,
}

/// ZooKeeper's `CreateMode.fromFlag(...).toString().toLowerCase()`.
fn create_mode(flags: i32) -> Option<&'static str> {
    Some(match flags {
        0 => "persistent",
        1 => "ephemeral",
        2 => "persistent_sequential",
        3 => "ephemeral_sequential",
        4 => "container",
        5 => "persistent_with_ttl",
        6 => "persistent_sequential_with_ttl",
        _ => return None,
    })
}

/// ZooKeeper's `ZKUtil.aclToString`: `scheme:id:perms` per entry, perms as `cdrwa`, the
/// entries written one after another (ZooKeeper puts nothing between them).
fn acl_string(acl: &[Acl]) -> String {
    use corral_proto::records::perms;
    let mut s = String::new();
    for a in acl {
        s.push_str(&a.id.scheme);
        s.push(':');
        s.push_str(&a.id.id);
        s.push(':');
        for (bit, c) in [
            (perms::CREATE, 'c'),
            (perms::DELETE, 'd'),
            (perms::READ, 'r'),
            (perms::WRITE, 'w'),
            (perms::ADMIN, 'a'),
        ] {
            if a.perms & bit != 0 {
                s.push(c);
            }
        }
    }
    s
}

/// ZooKeeper's `AuthUtil.getUsers`: each id's user name (a digest id's user, an ip id's
/// address, an x509 or sasl id as it is; `super` has none), joined by commas. ZooKeeper lists
/// the connection's address after the identities it authenticated.
fn users(auth: &[Id]) -> Option<String> {
    let name = |i: &Id| -> Option<String> {
        match i.scheme.as_str() {
            "digest" => Some(i.id.split(':').next().unwrap_or("").to_string()),
            "super" | "world" => None,
            _ => Some(i.id.clone()),
        }
    };
    let names: Vec<String> = (auth.iter().filter(|i| i.scheme != "ip"))
        .chain(auth.iter().filter(|i| i.scheme == "ip"))
        .filter_map(name)
        .filter(|n| !n.trim().is_empty())
        .collect();
    (!names.is_empty()).then(|| names.join(","))
}

impl AuditReq {
    /// The audit facts of `req`, or None for a request ZooKeeper does not audit.
    pub(crate) fn of(req: &Request, session: i64, auth: &[Id], ip: &str) -> Option<AuditReq> {
        let mut a = AuditReq {
            op: "",
            path: None,
            create_mode: None,
            acl: None,
            multi_modes: Vec::new(),
            users: users(auth),
            ip: ip.to_string(),
            session,
        };
        match req {
            Request::Create(r) | Request::Create2(r) => {
                a.op = "create";
                a.path = Some(r.path.clone());
                a.create_mode = Some(create_mode(r.flags)?);
            }
            Request::CreateContainer(r) => {
                a.op = "create";
                a.path = Some(r.path.clone());
                a.create_mode = Some(create_mode(r.flags)?);
            }
            Request::Delete(r) => {
                a.op = "delete";
                a.path = Some(r.path.clone());
            }
            Request::SetData(r) => {
                a.op = "setData";
                a.path = Some(r.path.clone());
            }
            Request::SetAcl(r) => {
                a.op = "setAcl";
                a.path = Some(r.path.clone());
                a.acl = Some(acl_string(&r.acl));
            }
            Request::Multi(MultiDecode::Ops(ops)) => {
                a.op = "multiOperation";
                for o in ops {
                    if let MultiOp::Create { req, .. } = o {
                        if let Some(m) = create_mode(req.flags) {
                            a.multi_modes.push((req.path.clone(), m));
                        }
                    }
                }
            }
            Request::Multi(_) => a.op = "multiOperation",
            Request::Reconfig(_) => a.op = "reconfig",
            _ => return None,
        }
        Some(a)
    }

    fn line(
        &self,
        op: &str,
        znode: Option<&str>,
        create_mode: Option<&str>,
        acl: Option<&str>,
        ok: bool,
    ) {
        let mut fields = vec![
            ("session", Some(format!("0x{:x}", self.session))),
            ("user", self.users.clone()),
            ("ip", Some(self.ip.clone())),
            ("operation", Some(op.to_string())),
            ("znode", znode.map(str::to_string)),
            ("znode_type", create_mode.map(str::to_string)),
            ("acl", acl.map(str::to_string)),
        ];
        fields.push((
            "result",
            Some(if ok { "success" } else { "failure" }.into()),
        ));
        log(&fields);
    }

    /// The lines for the txn `body` the request became, applied with `err`.
    pub(crate) fn log(&self, body: &TxnBody, err: i32) {
        match body {
            // Refused before it became a txn: the request's own path, a failure.
            TxnBody::Error(_) => self.line(
                self.op,
                self.path.as_deref(),
                self.create_mode,
                self.acl.as_deref(),
                false,
            ),
            TxnBody::Multi(subs) => {
                let mut failed = false;
                for s in subs {
                    match s {
                        TxnBody::Create(t) => {
                            let mode = (self.multi_modes.iter())
                                .find(|(p, _)| *p == t.path)
                                .map(|(_, m)| *m);
                            self.line("create", Some(&t.path), mode, None, true)
                        }
                        TxnBody::CreateContainer(t) => {
                            self.line("create", Some(&t.path), Some("container"), None, true)
                        }
                        TxnBody::CreateTtl(t) => {
                            let mode = (self.multi_modes.iter())
                                .find(|(p, _)| *p == t.path)
                                .map(|(_, m)| *m);
                            self.line("create", Some(&t.path), mode, None, true)
                        }
                        TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => {
                            self.line("delete", Some(&t.path), None, None, true)
                        }
                        TxnBody::SetData(t) => {
                            self.line("setData", Some(&t.path), None, None, true)
                        }
                        TxnBody::Error(_) => failed = true,
                        _ => {}
                    }
                }
                if failed {
                    self.line("multiOperation", None, None, None, false);
                }
            }
            body => {
                let path = match body {
                    TxnBody::Create(t) => Some(t.path.as_str()),
                    TxnBody::CreateContainer(t) => Some(t.path.as_str()),
                    TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => Some(t.path.as_str()),
                    TxnBody::SetData(t) | TxnBody::Reconfig(t) => Some(t.path.as_str()),
                    TxnBody::SetAcl(t) => Some(t.path.as_str()),
                    _ => self.path.as_deref(),
                };
                self.line(
                    self.op,
                    path,
                    self.create_mode,
                    self.acl.as_deref(),
                    err == 0,
                )
            }
        }
    }
}

/// The line for an ephemeral removed with its session (on every member, as ZooKeeper's data
/// tree logs it), `user` being the server's own.
pub(crate) fn ephemeral_removed(user: &str, session: i64, path: &str) {
    log(&[
        ("session", Some(format!("0x{session:x}"))),
        ("user", Some(user.to_string())),
        (
            "operation",
            Some("ephemeralZNodeDeletionOnSessionCloseOrExpire".into()),
        ),
        ("znode", Some(path.to_string())),
        ("result", Some("success".into())),
    ]);
}

/// The server's start and stop lines (`serverStart` success, `serverStop` invoked).
pub fn server_event(user: &str, operation: &str, result: &str) {
    log(&[
        ("user", Some(user.to_string())),
        ("operation", Some(operation.to_string())),
        ("result", Some(result.to_string())),
    ]);
}

fn log(fields: &[(&str, Option<String>)]) {
    let line: Vec<String> = fields
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    tracing::info!(target: "audit", "{}", line.join("\t"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_strings_and_users_as_zookeeper_writes_them() {
        let acl = vec![
            Acl::new(31, "world", "anyone"),
            Acl::new(1, "digest", "bob:x"),
        ];
        assert_eq!(acl_string(&acl), "world:anyone:cdrwadigest:bob:x:r");
        let auth = vec![
            Id::new("ip", "127.0.0.1"),
            Id::new("digest", "bob:hash="),
            Id::new("super", ""),
        ];
        assert_eq!(users(&auth).as_deref(), Some("bob,127.0.0.1"));
        assert_eq!(create_mode(3), Some("ephemeral_sequential"));
        assert_eq!(create_mode(9), None);
    }
}
