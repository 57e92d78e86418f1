//! Request → txn: the checks ZooKeeper's `PrepRequestProcessor` makes, in its exact order
//! (reference §3.2–3.4), against a view of the tree plus the changes already prepared in the
//! same multi. A failed check is an `ErrorCode`; the caller turns it into an error txn.

use std::collections::HashMap;
use std::sync::Arc;

use corral_proto::records::{perms, Acl, Data, Id, StatPersisted};
use corral_proto::txn::*;
use corral_proto::ErrorCode;

use crate::acl::AclPolicy;
use crate::path;
use crate::tree::{digest_parts, DataTree, NodeKind, QuotaCheck, CONTAINER_OWNER};

/// What prep needs to know about a node: its persisted stat, data, ACL and child count. The data
/// is here so the tree digest after a prepared change can be computed before it is applied (a
/// PROPOSAL carries that digest, §5.3).
#[derive(Debug, Clone)]
pub struct Rec {
    pub stat: StatPersisted,
    pub data: Data,
    pub acl: Arc<Vec<Acl>>,
    pub child_count: i32,
}

impl Rec {
    fn of(n: crate::tree::Node<'_>) -> Rec {
        Rec {
            stat: n.stat().clone(),
            data: n.to_data(),
            acl: n.acl().clone(),
            child_count: n.num_children() as i32,
        }
    }

    fn digest(&self, path: &str) -> u64 {
        digest_parts(path, self.data.as_deref(), &self.stat)
    }
}

/// Changes prepared but not applied yet (ZooKeeper's `outstandingChanges`): a leader prepares
/// request N+1 before txn N is committed, so prep must see N's effects. Each path keeps its
/// latest prepared state and the zxid that produced it; applying that zxid retires the entry.
/// `digest` is the tree digest once everything prepared so far is applied.
#[derive(Debug, Default)]
pub struct Outstanding {
    changes: HashMap<String, (i64, Option<Rec>)>,
    digest: Option<u64>,
}

impl Outstanding {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether a prepared, not yet applied txn changes `path`.
    pub fn touches(&self, path: &str) -> bool {
        self.changes.contains_key(path)
    }

    /// Record the changes of a txn prepared at `zxid` and return the tree digest after it.
    pub fn absorb(
        &mut self,
        tree: &DataTree,
        zxid: i64,
        over: HashMap<String, Option<Rec>>,
    ) -> u64 {
        let mut digest = self.digest.unwrap_or_else(|| tree.digest());
        for (p, new) in over {
            let old = match self.changes.get(&p) {
                Some((_, r)) => r.as_ref().map_or(0, |r| r.digest(&p)),
                None => tree
                    .get(&p)
                    .map_or(0, |n| digest_parts(&p, n.data(), n.stat())),
            };
            let new_digest = new.as_ref().map_or(0, |r| r.digest(&p));
            digest = digest.wrapping_sub(old).wrapping_add(new_digest);
            self.changes.insert(p, (zxid, new));
        }
        self.digest = Some(digest);
        digest
    }

    /// The txn at `zxid` was applied to `tree`: entries it (or an earlier txn) produced are now
    /// visible there.
    pub fn applied(&mut self, tree: &DataTree, zxid: i64) {
        if self.changes.is_empty() {
            self.digest = None;
            return;
        }
        self.changes.retain(|_, (z, _)| *z > zxid);
        if self.changes.is_empty() {
            debug_assert_eq!(
                self.digest,
                Some(tree.digest()),
                "predicted digest differs from the applied tree at 0x{zxid:x}"
            );
            self.digest = None;
        }
    }

    /// Forget everything prepared (a leader that lost its quorum: those txns may never commit).
    pub fn clear(&mut self) {
        self.changes.clear();
        self.digest = None;
    }
}

/// The tree as seen by prep: committed state, then outstanding changes of earlier requests, then
/// this request's own changes.
pub struct View<'a> {
    tree: &'a DataTree,
    outstanding: Option<&'a Outstanding>,
    over: HashMap<String, Option<Rec>>,
    /// Top-level namespaces of the quotas that refused this request (QuotaExceeded).
    pub quota_refused: Vec<String>,
}

/// Who is asking, and under which rules.
pub struct Ctx<'a> {
    pub session: i64,
    pub ids: &'a [Id],
    pub policy: &'a AclPolicy,
    pub extended_types: bool,
    /// `zookeeper.enforceQuota`.
    pub enforce_quota: bool,
    pub zxid: i64,
    pub time: i64,
}

type Res<T> = Result<T, ErrorCode>;

/// CreateMode flags (§2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateMode {
    pub ephemeral: bool,
    pub sequential: bool,
    pub container: bool,
    pub ttl: bool,
}

impl CreateMode {
    pub fn from_flag(flags: i32) -> Option<CreateMode> {
        let m = |e, s, c, t| CreateMode {
            ephemeral: e,
            sequential: s,
            container: c,
            ttl: t,
        };
        Some(match flags {
            0 => m(false, false, false, false),
            1 => m(true, false, false, false),
            2 => m(false, true, false, false),
            3 => m(true, true, false, false),
            4 => m(false, false, true, false),
            5 => m(false, false, false, true),
            6 => m(false, true, false, true),
            _ => return None,
        })
    }
}

/// Largest TTL ZooKeeper accepts (40 bits of milliseconds).
pub const TTL_MAX_MS: i64 = 0xff_ffff_ffff;

/// Which txn kind a create produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    Plain,
    Container,
    Ttl,
}

fn data_len(d: &Data) -> i64 {
    d.as_ref().map_or(0, |v| v.len() as i64)
}

fn check_version(current: i32, expected: i32) -> Res<i32> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

fn is_special(p: &str) -> bool {
    matches!(
        p,
        "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
    )
}

impl<'a> View<'a> {
    pub fn new(tree: &'a DataTree) -> View<'a> {
        View {
            tree,
            outstanding: None,
            over: HashMap::new(),
            quota_refused: Vec::new(),
        }
    }

    pub fn with_outstanding(tree: &'a DataTree, outstanding: &'a Outstanding) -> View<'a> {
        View {
            tree,
            outstanding: Some(outstanding),
            over: HashMap::new(),
            quota_refused: Vec::new(),
        }
    }

    /// This request's changes, for `Outstanding::absorb`.
    pub fn into_changes(self) -> HashMap<String, Option<Rec>> {
        self.over
    }

    pub fn get(&self, p: &str) -> Option<Rec> {
        if let Some(r) = self.over.get(p) {
            return r.clone();
        }
        if let Some((_, r)) = self.outstanding.and_then(|o| o.changes.get(p)) {
            return r.clone();
        }
        self.tree.get(p).map(Rec::of)
    }

    fn need(&self, p: &str) -> Res<Rec> {
        self.get(p).ok_or(ErrorCode::NoNode)
    }

    /// `zookeeper.enforceQuota`: ZooKeeper checks the quota's committed stats (not the
    /// outstanding changes), refusing only over a hard limit.
    fn check_quota(&mut self, ctx: &Ctx<'_>, p: &str, bytes_diff: i64, count_diff: i64) -> Res<()> {
        if !ctx.enforce_quota {
            return Ok(());
        }
        match self.tree.quota_check(p, bytes_diff, count_diff) {
            QuotaCheck::Within => Ok(()),
            QuotaCheck::OverSoftLimit(msg) => {
                tracing::warn!("{msg}");
                Ok(())
            }
            QuotaCheck::Exceeded(msg) => {
                tracing::warn!("{msg}");
                if let Some(ns) = p.split('/').nth(1).filter(|n| !n.is_empty()) {
                    self.quota_refused.push(ns.to_string());
                }
                Err(ErrorCode::QuotaExceeded)
            }
        }
    }

    fn check_acl(&self, ctx: &Ctx<'_>, acl: &[Acl], perm: i32) -> Res<()> {
        if ctx.policy.allows(acl, perm, ctx.ids) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    /// create / create2 / createContainer / createTTL. `kind` comes from the opcode.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        ctx: &Ctx<'_>,
        kind: CreateKind,
        path_in: &str,
        data: &Data,
        acl: &[Acl],
        flags: i32,
        ttl: i64,
    ) -> Res<(TxnBody, String)> {
        let mode = CreateMode::from_flag(flags).ok_or(ErrorCode::BadArguments)?;
        if mode.ttl && !ctx.extended_types {
            return Err(ErrorCode::Unimplemented);
        }
        if mode.ttl {
            if ttl <= 0 || ttl > TTL_MAX_MS {
                return Err(ErrorCode::BadArguments);
            }
        } else if ttl >= 0 || kind == CreateKind::Ttl {
            // ZooKeeper 3.8.0 accepts createTTL with non-TTL flags and a negative ttl here, then
            // fails applying the txn and shuts down; corral refuses the request instead.
            return Err(ErrorCode::BadArguments);
        }
        if !path::has_slash_no_nul(path_in) {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = path::parent(path_in).expect("has a slash").to_string();
        let acl = ctx
            .policy
            .fixup(acl, ctx.ids)
            .ok_or(ErrorCode::InvalidAcl)?;
        let parent = self.need(&parent_path)?;
        self.check_acl(ctx, &parent.acl, perms::CREATE)?;
        let mut full = path_in.to_string();
        if mode.sequential {
            full.push_str(&format!("{:010}", parent.stat.cversion));
        }
        path::validate(&full).map_err(|_| ErrorCode::BadArguments)?;
        if self.get(&full).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(
            NodeKind::from_owner(parent.stat.ephemeral_owner),
            NodeKind::Ephemeral(_)
        ) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        self.check_quota(ctx, &full, data_len(data), 1)?;
        let new_cversion = parent.stat.cversion.wrapping_add(1);
        let (body, owner) = match kind {
            CreateKind::Container => (
                TxnBody::CreateContainer(CreateContainerTxn {
                    path: full.clone(),
                    data: data.clone(),
                    acl: acl.clone(),
                    parent_cversion: new_cversion,
                }),
                CONTAINER_OWNER,
            ),
            CreateKind::Ttl => (
                TxnBody::CreateTtl(CreateTtlTxn {
                    path: full.clone(),
                    data: data.clone(),
                    acl: acl.clone(),
                    parent_cversion: new_cversion,
                    ttl,
                }),
                NodeKind::ttl_owner(ttl),
            ),
            CreateKind::Plain => (
                TxnBody::Create(CreateTxn {
                    path: full.clone(),
                    data: data.clone(),
                    acl: acl.clone(),
                    ephemeral: mode.ephemeral,
                    parent_cversion: new_cversion,
                }),
                if mode.container {
                    // A plain create with container flags makes a container in the stat
                    // ZooKeeper precomputes, but the txn says persistent; the txn wins.
                    0
                } else if mode.ttl {
                    NodeKind::ttl_owner(ttl)
                } else if mode.ephemeral {
                    ctx.session
                } else {
                    0
                },
            ),
        };
        let mut p = parent;
        p.child_count += 1;
        p.stat.cversion = new_cversion;
        p.stat.pzxid = ctx.zxid;
        self.over.insert(parent_path, Some(p));
        let stat = StatPersisted {
            czxid: ctx.zxid,
            mzxid: ctx.zxid,
            ctime: ctx.time,
            mtime: ctx.time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: ctx.zxid,
        };
        self.over.insert(
            full.clone(),
            Some(Rec {
                stat,
                data: data.clone(),
                acl: Arc::new(acl),
                child_count: 0,
            }),
        );
        Ok((body, full))
    }

    pub fn delete(&mut self, ctx: &Ctx<'_>, p: &str, version: i32) -> Res<TxnBody> {
        if !path::has_slash_no_nul(p) || is_special(p) {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = path::parent(p).expect("has a slash").to_string();
        let parent = self.need(&parent_path)?;
        self.check_acl(ctx, &parent.acl, perms::DELETE)?;
        let node = self.need(p)?;
        check_version(node.stat.version, version)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        let mut pr = parent;
        pr.child_count -= 1;
        pr.stat.pzxid = ctx.zxid;
        self.over.insert(parent_path, Some(pr));
        self.over.insert(p.to_string(), None);
        Ok(TxnBody::Delete(DeleteTxn {
            path: p.to_string(),
        }))
    }

    /// The container/TTL reaper's delete (`deleteContainer`, opcode 20).
    pub fn delete_container(&mut self, ctx: &Ctx<'_>, p: &str) -> Res<TxnBody> {
        if !path::has_slash_no_nul(p) || is_special(p) {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = path::parent(p).expect("has a slash").to_string();
        let node = self.need(p)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        // ZooKeeper refuses only normal ephemerals here, so a persistent node made at the path
        // after the reaper picked it would be deleted; corral refuses that too (§3.5 note).
        if !matches!(
            NodeKind::from_owner(node.stat.ephemeral_owner),
            NodeKind::Container | NodeKind::Ttl(_)
        ) {
            return Err(ErrorCode::BadVersion);
        }
        let mut pr = self.need(&parent_path)?;
        pr.child_count -= 1;
        pr.stat.pzxid = ctx.zxid;
        self.over.insert(parent_path, Some(pr));
        self.over.insert(p.to_string(), None);
        Ok(TxnBody::DeleteContainer(DeleteTxn {
            path: p.to_string(),
        }))
    }

    pub fn set_data(&mut self, ctx: &Ctx<'_>, p: &str, data: &Data, version: i32) -> Res<TxnBody> {
        path::validate(p).map_err(|_| ErrorCode::BadArguments)?;
        let mut node = self.need(p)?;
        self.check_acl(ctx, &node.acl, perms::WRITE)?;
        self.check_quota(ctx, p, data_len(data) - data_len(&node.data), 0)?;
        let new_version = check_version(node.stat.version, version)?;
        node.stat.version = new_version;
        node.stat.mzxid = ctx.zxid;
        node.stat.mtime = ctx.time;
        node.data = data.clone();
        self.over.insert(p.to_string(), Some(node));
        Ok(TxnBody::SetData(SetDataTxn {
            path: p.to_string(),
            data: data.clone(),
            version: new_version,
        }))
    }

    pub fn set_acl(&mut self, ctx: &Ctx<'_>, p: &str, acl: &[Acl], version: i32) -> Res<TxnBody> {
        path::validate(p).map_err(|_| ErrorCode::BadArguments)?;
        let acl = ctx
            .policy
            .fixup(acl, ctx.ids)
            .ok_or(ErrorCode::InvalidAcl)?;
        let mut node = self.need(p)?;
        self.check_acl(ctx, &node.acl, perms::ADMIN)?;
        let new_version = check_version(node.stat.aversion, version)?;
        node.stat.aversion = new_version;
        node.acl = Arc::new(acl.clone());
        self.over.insert(p.to_string(), Some(node));
        Ok(TxnBody::SetAcl(SetAclTxn {
            path: p.to_string(),
            acl,
            version: new_version,
        }))
    }

    pub fn check(&mut self, ctx: &Ctx<'_>, p: &str, version: i32) -> Res<TxnBody> {
        path::validate(p).map_err(|_| ErrorCode::BadArguments)?;
        let node = self.need(p)?;
        self.check_acl(ctx, &node.acl, perms::READ)?;
        let v = check_version(node.stat.version, version)?;
        Ok(TxnBody::Check(CheckVersionTxn {
            path: p.to_string(),
            version: v,
        }))
    }

    /// Ephemerals a closing session owns, including those created by outstanding txns and
    /// without those outstanding txns delete (as ZooKeeper's prep of closeSession).
    pub fn close_session(&mut self, ctx: &Ctx<'_>) -> Vec<String> {
        let mut set: std::collections::BTreeSet<String> =
            self.tree.ephemerals_of(ctx.session).into_iter().collect();
        if let Some(o) = self.outstanding {
            for (p, (_, r)) in &o.changes {
                // Only the latest outstanding state of a path is kept, so a path this session
                // owned, deleted and someone else re-created in flight must go too (sim seed
                // 2622: the close deleted a persistent /a with a child, orphaning it).
                match r {
                    Some(r) if r.stat.ephemeral_owner == ctx.session => {
                        set.insert(p.clone());
                    }
                    None | Some(_) => {
                        set.remove(p);
                    }
                }
            }
        }
        let paths: Vec<String> = set.into_iter().collect();
        for p in &paths {
            if let Some(parent) = path::parent(p) {
                if let Some(mut pr) = self.get(parent) {
                    pr.stat.pzxid = ctx.zxid;
                    pr.child_count -= 1;
                    self.over.insert(parent.to_string(), Some(pr));
                }
            }
            self.over.insert(p.clone(), None);
        }
        paths
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_proto::records::Acl;

    fn open() -> Vec<Acl> {
        vec![Acl::new(perms::ALL, "world", "anyone")]
    }

    fn ctx<'a>(policy: &'a AclPolicy, ids: &'a [Id]) -> Ctx<'a> {
        Ctx {
            session: 0x100,
            ids,
            policy,
            extended_types: false,
            enforce_quota: false,
            zxid: 5,
            time: 1000,
        }
    }

    // create checks run in ZooKeeper's order: flags, TTL, path shape, ACL, parent, sequence,
    // full path, existence, ephemeral parent (§3.2).
    #[test]
    fn create_error_order() {
        let t = DataTree::new();
        let p = AclPolicy::default();
        let c = ctx(&p, &[]);
        let mut v = View::new(&t);
        let mk = |v: &mut View, path: &str, acl: &[Acl], flags: i32| {
            v.create(&c, CreateKind::Plain, path, &None, acl, flags, -1)
                .map(|x| x.1)
        };
        assert_eq!(mk(&mut v, "/a", &open(), 9), Err(ErrorCode::BadArguments));
        assert_eq!(mk(&mut v, "/a", &open(), 5), Err(ErrorCode::Unimplemented));
        assert_eq!(mk(&mut v, "a", &open(), 0), Err(ErrorCode::BadArguments));
        assert_eq!(mk(&mut v, "/a", &[], 0), Err(ErrorCode::InvalidAcl));
        assert_eq!(mk(&mut v, "/x/", &open(), 0), Err(ErrorCode::NoNode));
        assert_eq!(mk(&mut v, "/a/", &[], 0), Err(ErrorCode::InvalidAcl));
        assert_eq!(mk(&mut v, "/a/../b", &open(), 0), Err(ErrorCode::NoNode));
        assert_eq!(mk(&mut v, "/.", &open(), 0), Err(ErrorCode::BadArguments));
        assert_eq!(
            mk(&mut v, "/zookeeper", &open(), 0),
            Err(ErrorCode::NodeExists)
        );
        assert_eq!(mk(&mut v, "/e", &open(), 1), Ok("/e".to_string()));
        assert_eq!(
            mk(&mut v, "/e/c", &open(), 0),
            Err(ErrorCode::NoChildrenForEphemerals)
        );
    }

    // Sequential names use the parent's persisted cversion, which the view advances.
    #[test]
    fn sequential_names_advance_within_a_view() {
        let t = DataTree::new();
        let p = AclPolicy::default();
        let c = ctx(&p, &[]);
        let mut v = View::new(&t);
        let a = v
            .create(&c, CreateKind::Plain, "/s-", &None, &open(), 2, -1)
            .unwrap()
            .1;
        let b = v
            .create(&c, CreateKind::Plain, "/s-", &None, &open(), 2, -1)
            .unwrap()
            .1;
        assert_eq!((a.as_str(), b.as_str()), ("/s-0000000000", "/s-0000000001"));
    }

    // delete refuses special paths, checks version before emptiness.
    #[test]
    fn delete_rules() {
        let t = DataTree::new();
        let p = AclPolicy::default();
        let c = ctx(&p, &[]);
        let mut v = View::new(&t);
        assert_eq!(v.delete(&c, "/zookeeper", -1), Err(ErrorCode::BadArguments));
        assert_eq!(v.delete(&c, "/", -1), Err(ErrorCode::BadArguments));
        assert_eq!(v.delete(&c, "/nope", -1), Err(ErrorCode::NoNode));
        v.create(&c, CreateKind::Plain, "/d", &None, &open(), 0, -1)
            .unwrap();
        v.create(&c, CreateKind::Plain, "/d/c", &None, &open(), 0, -1)
            .unwrap();
        assert_eq!(v.delete(&c, "/d", 3), Err(ErrorCode::BadVersion));
        assert_eq!(v.delete(&c, "/d", 0), Err(ErrorCode::NotEmpty));
        assert!(v.delete(&c, "/d/c", -1).is_ok());
        assert!(v.delete(&c, "/d", -1).is_ok());
    }

    // The reaper's delete takes only containers and TTL nodes: a persistent node made at the
    // path after the reaper picked it stays (ZooKeeper would delete it).
    #[test]
    fn delete_container_spares_other_kinds() {
        let t = DataTree::new();
        let p = AclPolicy::default();
        let c = ctx(&p, &[]);
        let mut v = View::new(&t);
        v.create(&c, CreateKind::Plain, "/p", &None, &open(), 0, -1)
            .unwrap();
        assert_eq!(v.delete_container(&c, "/p"), Err(ErrorCode::BadVersion));
        v.create(&c, CreateKind::Container, "/k", &None, &open(), 4, -1)
            .unwrap();
        assert!(v.delete_container(&c, "/k").is_ok());
    }
}
