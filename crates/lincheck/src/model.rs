//! The sequential ZooKeeper 3.8 data tree the history is replayed through. It owns the
//! semantics of each txn (result codes, sequence numbers, stats) and the watch triggers each
//! txn produces; it knows nothing about sessions' streams or time.
//!
//! Mutations go through an undo log so the search can roll back to a mark cheaply.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{perms, Acl, Call, CreateMode, Res, Stat};

pub const OK: i32 = 0;
pub const RUNTIME_INCONSISTENCY: i32 = -2;
pub const BAD_ARGUMENTS: i32 = -8;
pub const NO_NODE: i32 = -101;
pub const NO_AUTH: i32 = -102;
pub const BAD_VERSION: i32 = -103;
pub const NO_CHILDREN_FOR_EPHEMERALS: i32 = -108;
pub const NODE_EXISTS: i32 = -110;
pub const NOT_EMPTY: i32 = -111;
pub const SESSION_EXPIRED: i32 = -112;
pub const INVALID_ACL: i32 = -114;

/// Stored ephemeralOwner of a container (EphemeralType.CONTAINER).
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// High byte of a TTL node's stored ephemeralOwner (EphemeralType.TTL); the TTL is in the low
/// 40 bits.
const TTL_OWNER: i64 = 0xFF00_0000_0000_0000_u64 as i64;
const TTL_MAX_MS: i64 = 0xFF_FFFF_FFFF;

/// What a node's ephemeralOwner says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Persistent,
    Ephemeral,
    Container,
    Ttl(i64),
}

pub fn kind_of(owner: i64) -> Kind {
    if owner == 0 {
        Kind::Persistent
    } else if owner == CONTAINER_OWNER {
        Kind::Container
    } else if owner & TTL_OWNER == TTL_OWNER {
        Kind::Ttl(owner & TTL_MAX_MS)
    } else {
        Kind::Ephemeral
    }
}

/// ZooKeeperServer.checkACL for a connection without authenticated ids: an empty list allows
/// everything, else some `world:anyone` entry must carry the permission.
fn allows(acl: &[Acl], perm: i32) -> bool {
    acl.is_empty()
        || acl
            .iter()
            .any(|a| a.perms & perm != 0 && a.scheme == "world" && a.id == "anyone")
}

/// PrepRequestProcessor.fixupACL without identities: duplicates go, an empty list is invalid.
/// (Other schemes are refused before the check starts.)
fn fixup(acl: &[Acl]) -> Result<Vec<Acl>, i32> {
    if acl.is_empty() {
        return Err(INVALID_ACL);
    }
    let mut out: Vec<Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    Ok(out)
}

/// Closed sessions are kept in the node map under this prefix (not a valid path), so the undo
/// log rolls them back with everything else.
const CLOSED_PREFIX: &str = "\u{0}closed/";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub data: Vec<u8>,
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub version: i32,
    /// ZooKeeper's persisted cversion: counts child creates only. Sequential suffixes use it;
    /// clients see `2 * cversion - num_children` (DataNode.copyStat), i.e. creates + deletes.
    pub cversion: i32,
    pub ephemeral_owner: i64,
    pub children: BTreeSet<String>,
    pub acl: Vec<Acl>,
    pub aversion: i32,
}

/// What a txn does to watches, in the order ZooKeeper's DataTree triggers them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// createNode: data watches on the path fire NodeCreated, child watches on the parent fire
    /// NodeChildrenChanged.
    Created(String),
    /// deleteNode: data watches and child watches on the path fire NodeDeleted (one event per
    /// watcher), child watches on the parent fire NodeChildrenChanged.
    Deleted(String),
    /// setData: data watches fire NodeDataChanged.
    Changed(String),
}

#[derive(Clone, Debug, Default)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
    undo: Vec<(String, Option<Node>)>,
}

pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    let i = path.rfind('/')?;
    Some(if i == 0 { "/" } else { &path[..i] })
}

fn name(path: &str) -> &str {
    &path[path.rfind('/').map_or(0, |i| i + 1)..]
}

fn valid_path(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    path.starts_with('/')
        && !path.ends_with('/')
        && !path[1..]
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
}

impl Tree {
    pub fn new(initial: &[(String, Vec<u8>)]) -> Tree {
        let mut t = Tree::default();
        t.nodes
            .insert("/".to_string(), empty_node(Vec::new(), 0, 0));
        for (p, d) in initial {
            if t.nodes.contains_key(p) {
                continue;
            }
            if let Some(par) = parent(p).and_then(|q| t.nodes.get_mut(q)) {
                par.children.insert(name(p).to_string());
                t.nodes.insert(p.clone(), empty_node(d.clone(), 0, 0));
            }
        }
        t
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.nodes.get(path).map(stat_of)
    }

    /// Undo-log position; `rollback(mark)` restores the tree as it was.
    fn closed_key(session: i64) -> String {
        format!("{CLOSED_PREFIX}{session}")
    }

    /// Whether `session`'s close (by the client or by expiry) was applied.
    pub fn is_closed(&self, session: i64) -> bool {
        session != 0 && self.nodes.contains_key(&Tree::closed_key(session))
    }

    fn mark_closed(&mut self, session: i64) {
        if session != 0 && !self.is_closed(session) {
            self.put(
                &Tree::closed_key(session),
                Some(empty_node(Vec::new(), 0, 0)),
            );
        }
    }

    pub fn mark(&self) -> usize {
        self.undo.len()
    }

    pub fn rollback(&mut self, mark: usize) {
        while self.undo.len() > mark {
            let (p, old) = self.undo.pop().expect("length checked above");
            match old {
                Some(n) => self.nodes.insert(p, n),
                None => self.nodes.remove(&p),
            };
        }
    }

    /// Forget undo history (no rollback past this point). Used when no search is pending.
    pub fn commit(&mut self) {
        self.undo.clear();
    }

    fn put(&mut self, path: &str, node: Option<Node>) {
        let old = match node {
            Some(n) => self.nodes.insert(path.to_string(), n),
            None => self.nodes.remove(path),
        };
        self.undo.push((path.to_string(), old));
    }

    /// Serve a read as of the current state.
    pub fn read(&self, call: &Call) -> Res {
        match call {
            Call::GetData { path, .. } => match self.nodes.get(path) {
                None => Res::Err(NO_NODE),
                Some(n) if !allows(&n.acl, perms::READ) => Res::Err(NO_AUTH),
                Some(n) => Res::Data {
                    data: n.data.clone(),
                    stat: stat_of(n),
                },
            },
            // ZooKeeper 3.8.0 checks no permission for exists.
            Call::Exists { path, .. } => Res::Exists(self.stat(path)),
            Call::GetChildren { path, .. } => match self.nodes.get(path) {
                None => Res::Err(NO_NODE),
                Some(n) if !allows(&n.acl, perms::READ) => Res::Err(NO_AUTH),
                Some(n) => Res::Children(n.children.iter().cloned().collect()),
            },
            Call::GetAcl { path } => match self.nodes.get(path) {
                None => Res::Err(NO_NODE),
                Some(n) if !allows(&n.acl, perms::READ | perms::ADMIN) => Res::Err(NO_AUTH),
                Some(n) => Res::Acl {
                    acl: n.acl.clone(),
                    stat: stat_of(n),
                },
            },
            Call::Sync { .. } => Res::Synced,
            Call::AddWatch { .. } => Res::WatchAdded,
            _ => Res::Err(BAD_ARGUMENTS),
        }
    }

    /// Apply a txn at `zxid` for `session`, returning the client's result and the watch
    /// triggers (empty when the txn failed: an error txn changes nothing).
    pub fn apply(&mut self, call: &Call, session: i64, zxid: i64) -> (Res, Vec<Trigger>) {
        let mut triggers = Vec::new();
        // A write prepared after its session's close fails (PrepRequestProcessor's
        // checkSession), so nothing it asks for outlives the close.
        if !matches!(call, Call::CloseSession) && self.is_closed(session) {
            return (Res::Err(SESSION_EXPIRED), triggers);
        }
        let res = match call {
            Call::Multi(ops) => {
                let mark = self.mark();
                let mut items = Vec::with_capacity(ops.len());
                let mut failed_at = None;
                for (i, sub) in ops.iter().enumerate() {
                    let r = self.apply_one(sub, session, zxid, &mut triggers);
                    if let Res::Err(code) = r {
                        failed_at = Some((i, code));
                        break;
                    }
                    items.push(r);
                }
                match failed_at {
                    None => Res::Multi(items),
                    Some((i, code)) => {
                        self.rollback(mark);
                        triggers.clear();
                        let items = (0..ops.len())
                            .map(|j| match j.cmp(&i) {
                                std::cmp::Ordering::Less => Res::Err(OK),
                                std::cmp::Ordering::Equal => Res::Err(code),
                                std::cmp::Ordering::Greater => Res::Err(RUNTIME_INCONSISTENCY),
                            })
                            .collect();
                        Res::Multi(items)
                    }
                }
            }
            Call::CloseSession => {
                self.mark_closed(session);
                let owned: Vec<String> = self
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.ephemeral_owner == session && session != 0)
                    .map(|(p, _)| p.clone())
                    .collect();
                for p in owned {
                    self.unlink(&p, -1, zxid, &mut triggers);
                }
                Res::Closed
            }
            Call::Check { .. } => Res::Err(BAD_ARGUMENTS),
            other => {
                let r = self.apply_one(other, session, zxid, &mut triggers);
                if matches!(r, Res::Err(_)) {
                    triggers.clear();
                }
                r
            }
        };
        (res, triggers)
    }

    /// Delete every ephemeral of `session` (session expiry) at `zxid`.
    pub fn close_session(&mut self, session: i64, zxid: i64) -> Vec<Trigger> {
        self.apply(&Call::CloseSession, session, zxid).1
    }

    /// A server-issued delete at `zxid` (the container/TTL reaper's deleteContainer, committed
    /// as a success). Only an existing, childless container that once had a child
    /// (`znode.container.maxNeverUsedIntervalMs` = 0, the default) or TTL node may go.
    pub fn system_delete(&mut self, path: &str, zxid: i64) -> Result<Vec<Trigger>, String> {
        let Some(n) = self.nodes.get(path) else {
            return Err(format!("the server deleted {path}, which does not exist"));
        };
        if !n.children.is_empty() {
            return Err(format!("the server deleted {path}, which has children"));
        }
        match kind_of(n.ephemeral_owner) {
            Kind::Container if n.cversion > 0 => {}
            Kind::Container => {
                return Err(format!(
                    "the server deleted container {path}, which never had a child"
                ))
            }
            Kind::Ttl(_) => {}
            k => {
                return Err(format!(
                    "the server deleted {path}, a {k:?} node (only containers and TTL nodes are reaped)"
                ))
            }
        }
        // The reaper's delete is the server's own: no ACL applies.
        let mut t = Vec::new();
        match self.unlink(path, -1, zxid, &mut t) {
            Res::Deleted => Ok(t),
            other => Err(format!("deleting {path} gives {other:?}")),
        }
    }

    fn apply_one(&mut self, call: &Call, session: i64, zxid: i64, trig: &mut Vec<Trigger>) -> Res {
        match call {
            Call::Create {
                path,
                data,
                mode,
                acl,
            } => self.create(path, data, *mode, acl, session, zxid, trig),
            Call::SetData {
                path,
                data,
                version,
            } => {
                let Some(n) = self.nodes.get(path) else {
                    return Res::Err(NO_NODE);
                };
                if !allows(&n.acl, perms::WRITE) {
                    return Res::Err(NO_AUTH);
                }
                if *version != -1 && *version != n.version {
                    return Res::Err(BAD_VERSION);
                }
                let mut n = n.clone();
                n.data = data.clone();
                n.version = n.version.wrapping_add(1);
                n.mzxid = zxid;
                let st = stat_of(&n);
                self.put(path, Some(n));
                trig.push(Trigger::Changed(path.clone()));
                Res::Stat(st)
            }
            Call::Delete { path, version } => self.delete(path, *version, zxid, trig),
            Call::SetAcl { path, acl, version } => {
                // PrepRequestProcessor: fixupACL, then the node, ADMIN, the aversion.
                let acl = match fixup(acl) {
                    Ok(a) => a,
                    Err(e) => return Res::Err(e),
                };
                let Some(n) = self.nodes.get(path) else {
                    return Res::Err(NO_NODE);
                };
                if !allows(&n.acl, perms::ADMIN) {
                    return Res::Err(NO_AUTH);
                }
                if *version != -1 && *version != n.aversion {
                    return Res::Err(BAD_VERSION);
                }
                let mut n = n.clone();
                n.acl = acl;
                n.aversion = n.aversion.wrapping_add(1);
                let st = stat_of(&n);
                self.put(path, Some(n));
                Res::Stat(st)
            }
            Call::Check { path, version } => match self.nodes.get(path) {
                None => Res::Err(NO_NODE),
                Some(n) if !allows(&n.acl, perms::READ) => Res::Err(NO_AUTH),
                Some(n) if *version != -1 && *version != n.version => Res::Err(BAD_VERSION),
                Some(_) => Res::Checked,
            },
            _ => Res::Err(BAD_ARGUMENTS),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
        acl: &[Acl],
        session: i64,
        zxid: i64,
        trig: &mut Vec<Trigger>,
    ) -> Res {
        // PrepRequestProcessor.pRequest2TxnCreate order: mode and TTL, path, fixupACL, parent
        // NoNode, CREATE on the parent, NodeExists, NoChildrenForEphemerals.
        let kinds = mode.ephemeral as u8 + mode.container as u8 + mode.ttl_ms.is_some() as u8;
        let bad_ttl = mode.ttl_ms.is_some_and(|t| t <= 0 || t > TTL_MAX_MS);
        if kinds > 1 || (mode.container && mode.sequential) || bad_ttl {
            return Res::Err(BAD_ARGUMENTS);
        }
        let prefix_ok =
            mode.sequential && path.ends_with('/') && valid_path(&path[..path.len() - 1]);
        if !valid_path(path) && !prefix_ok {
            return Res::Err(BAD_ARGUMENTS);
        }
        let acl = match fixup(acl) {
            Ok(a) => a,
            Err(e) => return Res::Err(e),
        };
        let Some(parent_path) = parent(path).map(str::to_string) else {
            return Res::Err(NODE_EXISTS);
        };
        let parent_path = if prefix_ok {
            path[..path.len() - 1].to_string()
        } else {
            parent_path
        };
        let Some(par) = self.nodes.get(&parent_path) else {
            return Res::Err(NO_NODE);
        };
        if !allows(&par.acl, perms::CREATE) {
            return Res::Err(NO_AUTH);
        }
        let full = if mode.sequential {
            format!("{path}{:010}", par.cversion)
        } else {
            path.to_string()
        };
        if self.nodes.contains_key(&full) {
            return Res::Err(NODE_EXISTS);
        }
        if kind_of(par.ephemeral_owner) == Kind::Ephemeral {
            return Res::Err(NO_CHILDREN_FOR_EPHEMERALS);
        }
        let mut par = par.clone();
        par.cversion = par.cversion.wrapping_add(1);
        par.pzxid = zxid;
        par.children.insert(name(&full).to_string());
        self.put(&parent_path, Some(par));
        let owner = match mode {
            CreateMode {
                ttl_ms: Some(t), ..
            } => TTL_OWNER | t,
            CreateMode {
                container: true, ..
            } => CONTAINER_OWNER,
            CreateMode {
                ephemeral: true, ..
            } => session,
            _ => 0,
        };
        let mut n = empty_node(data.to_vec(), zxid, owner);
        n.acl = acl;
        n.pzxid = zxid;
        let st = stat_of(&n);
        self.put(&full, Some(n));
        trig.push(Trigger::Created(full.clone()));
        Res::Created {
            path: full,
            stat: Some(st),
        }
    }

    /// PrepRequestProcessor order: parent NoNode, DELETE on the parent, NoNode, BadVersion,
    /// NotEmpty.
    fn delete(&mut self, path: &str, version: i32, zxid: i64, trig: &mut Vec<Trigger>) -> Res {
        let Some(parent_path) = parent(path).map(str::to_string) else {
            return Res::Err(BAD_ARGUMENTS);
        };
        let Some(par) = self.nodes.get(&parent_path) else {
            return Res::Err(NO_NODE);
        };
        if !allows(&par.acl, perms::DELETE) {
            return Res::Err(NO_AUTH);
        }
        self.unlink(path, version, zxid, trig)
    }

    /// Delete without the permission check (closeSession and the reaper are the server's).
    fn unlink(&mut self, path: &str, version: i32, zxid: i64, trig: &mut Vec<Trigger>) -> Res {
        let Some(parent_path) = parent(path).map(str::to_string) else {
            return Res::Err(BAD_ARGUMENTS);
        };
        let Some(n) = self.nodes.get(path) else {
            return Res::Err(NO_NODE);
        };
        if version != -1 && version != n.version {
            return Res::Err(BAD_VERSION);
        }
        if !n.children.is_empty() {
            return Res::Err(NOT_EMPTY);
        }
        let mut par = self
            .nodes
            .get(&parent_path)
            .expect("a node's parent exists")
            .clone();
        par.children.remove(name(path));
        if zxid > par.pzxid {
            par.pzxid = zxid;
        }
        self.put(&parent_path, Some(par));
        self.put(path, None);
        trig.push(Trigger::Deleted(path.to_string()));
        Res::Deleted
    }
}

fn empty_node(data: Vec<u8>, zxid: i64, owner: i64) -> Node {
    Node {
        data,
        czxid: zxid,
        mzxid: zxid,
        pzxid: zxid,
        version: 0,
        cversion: 0,
        ephemeral_owner: owner,
        children: BTreeSet::new(),
        acl: Acl::open(),
        aversion: 0,
    }
}

/// The Stat a client sees (DataNode.copyStat): containers and TTL nodes show ephemeralOwner 0.
pub fn stat_of(n: &Node) -> Stat {
    let kids = n.children.len() as i32;
    Stat {
        czxid: n.czxid,
        mzxid: n.mzxid,
        ctime: 0,
        mtime: 0,
        version: n.version,
        cversion: n.cversion.wrapping_mul(2).wrapping_sub(kids),
        aversion: n.aversion,
        ephemeral_owner: match kind_of(n.ephemeral_owner) {
            Kind::Ephemeral => n.ephemeral_owner,
            _ => 0,
        },
        data_length: n.data.len() as i32,
        num_children: kids,
        pzxid: n.pzxid,
    }
}
