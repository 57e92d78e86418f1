//! The data tree: znodes with data, ACL and persisted stat, the per-session ephemeral index,
//! container/TTL indexes and the rolling tree digest (reference §2.11, §5.3). Txns are applied
//! here; deciding whether a request may become a txn is `prep`'s job.

use std::collections::{BTreeMap, BTreeSet};

// aHash instead of std's SipHash for the per-node maps: hashing paths was the largest single cost
// of loading and walking a large tree, and aHash keeps per-process random keys (paths come from
// clients, so a fixed-key hash would invite collision attacks).
type HashMap<K, V> = ahash::HashMap<K, V>;
type HashSet<T> = ahash::HashSet<T>;
use std::sync::Arc;

use corral_proto::records::{Acl, Data, Stat, StatPersisted};
use corral_proto::txn::{TxnBody, TxnHeader};

use crate::path;

/// ephemeralOwner marker of a container node.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// High byte of a TTL node's ephemeralOwner.
const TTL_MARKER: i64 = 0xff;

/// What kind of node an ephemeralOwner value describes (`EphemeralType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Persistent,
    Ephemeral(i64),
    Container,
    Ttl(i64),
}

impl NodeKind {
    pub fn from_owner(owner: i64) -> NodeKind {
        if owner == 0 {
            NodeKind::Persistent
        } else if owner == CONTAINER_OWNER {
            NodeKind::Container
        } else if (owner >> 56) & 0xff == TTL_MARKER {
            NodeKind::Ttl(owner & 0xff_ffff_ffff)
        } else {
            NodeKind::Ephemeral(owner)
        }
    }

    pub fn ttl_owner(ttl: i64) -> i64 {
        (TTL_MARKER << 56) | (ttl & 0xff_ffff_ffff)
    }
}

/// One znode.
#[derive(Debug, Clone)]
pub struct Node {
    pub data: Data,
    pub acl: Arc<Vec<Acl>>,
    pub stat: StatPersisted,
    pub children: HashSet<String>,
}

impl Node {
    /// The Stat clients see (§2.11): derived cversion, masked owner for containers and TTLs.
    pub fn client_stat(&self) -> Stat {
        let s = &self.stat;
        let n = self.children.len() as i32;
        let owner = match NodeKind::from_owner(s.ephemeral_owner) {
            NodeKind::Ephemeral(o) => o,
            _ => 0,
        };
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(n),
            aversion: s.aversion,
            ephemeral_owner: owner,
            data_length: self.data.as_ref().map_or(0, |d| d.len() as i32),
            num_children: n,
            pzxid: s.pzxid,
        }
    }

    pub fn kind(&self) -> NodeKind {
        NodeKind::from_owner(self.stat.ephemeral_owner)
    }
}

/// A change applied to the tree that watches may care about, with the ACL a watcher needs READ
/// on to be told (the node's own, or the parent's for NodeChildrenChanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Created(String, Arc<Vec<Acl>>),
    Deleted(String, Arc<Vec<Acl>>),
    DataChanged(String, Arc<Vec<Acl>>),
    ChildrenChanged(String, Arc<Vec<Acl>>),
}

/// Result of applying one txn: its error code (0 on success) and the watch triggers in order.
#[derive(Debug, Default)]
pub struct Applied {
    pub err: i32,
    pub triggers: Vec<Trigger>,
    /// Session closed by a closeSession txn.
    pub closed_session: Option<i64>,
}

#[derive(Debug)]
pub struct DataTree {
    nodes: HashMap<String, Node>,
    ephemerals: HashMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    digest: u64,
    last_processed_zxid: i64,
    /// One shared copy of each distinct ACL list (most nodes share a handful of lists).
    acls: HashMap<Vec<Acl>, Arc<Vec<Acl>>>,
    /// Paths with a quota (a `/zookeeper/quota/<path>/zookeeper_limits` node exists).
    quotas: BTreeSet<String>,
}

const QUOTA_ROOT: &str = "/zookeeper/quota";
const QUOTA_LIMITS: &str = "zookeeper_limits";
const QUOTA_STATS: &str = "zookeeper_stats";

/// ZooKeeper's `StatsTrack` text (`count=N,bytes=M[=;key=value...]`), kept as ordered pairs.
fn parse_stats(data: &[u8]) -> BTreeMap<String, i64> {
    let text = String::from_utf8_lossy(data);
    let mut m = BTreeMap::new();
    for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
        let mut kv = pair.split('=');
        let k = kv.next().unwrap_or("").to_string();
        let v = kv
            .next()
            .filter(|v| !v.is_empty())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1);
        m.insert(k, v);
    }
    m
}

fn format_stats(m: &BTreeMap<String, i64>) -> Vec<u8> {
    let get = |k: &str| m.get(k).copied().unwrap_or(-1);
    let mut out = format!("count={},bytes={}", get("count"), get("bytes"));
    let rest: Vec<_> = m
        .iter()
        .filter(|(k, _)| *k != "count" && *k != "bytes")
        .collect();
    if !rest.is_empty() {
        // ZooKeeper adds '=' so old parsers ignore the new keys.
        out.push('=');
        for (k, v) in rest {
            out.push_str(&format!(";{k}={v}"));
        }
    }
    out.into_bytes()
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

fn empty_stat() -> StatPersisted {
    StatPersisted::default()
}

/// CRC-32 node digest of §5.3; 0 for the system subtree below /zookeeper.
pub fn node_digest(path: &str, node: &Node) -> u64 {
    digest_parts(path, &node.data, &node.stat)
}

/// The node digest from its parts (prep computes it for nodes that do not exist yet).
pub fn digest_parts(path: &str, data: &Data, s: &StatPersisted) -> u64 {
    if path.starts_with("/zookeeper/") {
        return 0;
    }
    let mut h = crc32fast::Hasher::new();
    h.update(if path == "/" { b"" } else { path.as_bytes() });
    if let Some(d) = data {
        h.update(d);
    }
    let mut blob = [0u8; 60];
    blob[0..8].copy_from_slice(&s.czxid.to_be_bytes());
    blob[8..16].copy_from_slice(&s.mzxid.to_be_bytes());
    blob[16..24].copy_from_slice(&s.pzxid.to_be_bytes());
    blob[24..32].copy_from_slice(&s.ctime.to_be_bytes());
    blob[32..40].copy_from_slice(&s.mtime.to_be_bytes());
    blob[40..44].copy_from_slice(&s.version.to_be_bytes());
    blob[44..48].copy_from_slice(&s.cversion.to_be_bytes());
    blob[48..52].copy_from_slice(&s.aversion.to_be_bytes());
    blob[52..60].copy_from_slice(&s.ephemeral_owner.to_be_bytes());
    h.update(&blob);
    h.finalize() as u64
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota`, `/zookeeper/config` as a
    /// standalone ZooKeeper 3.8 presents them.
    pub fn new() -> DataTree {
        let mut t = DataTree::empty();
        let open = t.intern_acl(&crate::acl::open_acl());
        let mk = |data: Data, acl: &Arc<Vec<Acl>>| Node {
            data,
            acl: acl.clone(),
            stat: empty_stat(),
            children: HashSet::default(),
        };
        t.insert_raw("/", mk(Some(Vec::new()), &open));
        t.insert_raw("/zookeeper", mk(Some(Vec::new()), &open));
        t.insert_raw("/zookeeper/quota", mk(Some(Vec::new()), &open));
        // /zookeeper/config is world-readable only, and its ACL was set with version -1 at
        // init, which leaves aversion -1 (§2.11).
        let read = t.intern_acl(&[Acl::new(
            corral_proto::records::perms::READ,
            "world",
            "anyone",
        )]);
        let mut cfg = mk(Some(Vec::new()), &read);
        cfg.stat.aversion = -1;
        t.insert_raw("/zookeeper/config", cfg);
        t
    }

    /// A tree without any node, to be filled from a snapshot with `insert_raw`.
    pub fn empty() -> DataTree {
        DataTree {
            nodes: HashMap::default(),
            ephemerals: HashMap::default(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            digest: 0,
            last_processed_zxid: 0,
            acls: HashMap::default(),
            quotas: BTreeSet::new(),
        }
    }

    /// The deepest quota path at or above `p` (`getMaxPrefixWithQuota`).
    fn quota_prefix(&self, p: &str) -> Option<String> {
        if self.quotas.is_empty() {
            return None;
        }
        let mut best = None;
        let mut cur = String::new();
        for comp in p.split('/').filter(|c| !c.is_empty()) {
            cur.push('/');
            cur.push_str(comp);
            if self.quotas.contains(&cur) {
                best = Some(cur.clone());
            }
        }
        best
    }

    /// Adjust a quota's `zookeeper_stats` node in place (no txn, no stat change: ZooKeeper's
    /// `updateQuotaStat`; the node is outside the digest).
    fn update_quota_stat(&mut self, prefix: &str, bytes: i64, count: i64) {
        let stat_path = format!("{QUOTA_ROOT}{prefix}/{QUOTA_STATS}");
        self.update(&stat_path, |n| {
            let mut m = parse_stats(n.data.as_deref().unwrap_or(&[]));
            let c = m.get("count").copied().unwrap_or(-1);
            let b = m.get("bytes").copied().unwrap_or(-1);
            m.insert("count".into(), c + count);
            m.insert("bytes".into(), b + bytes);
            n.data = Some(format_stats(&m));
        });
    }

    /// Recount a quota subtree into its stats node (`updateQuotaForPath`).
    fn update_quota_for_path(&mut self, p: &str) {
        let (mut count, mut bytes) = (0i64, 0i64);
        let mut stack = vec![p.to_string()];
        while let Some(cur) = stack.pop() {
            if let Some(n) = self.nodes.get(&cur) {
                count += 1;
                bytes += n.data.as_ref().map_or(0, |d| d.len() as i64);
                for c in &n.children {
                    stack.push(path::join(&cur, c));
                }
            }
        }
        let stat_path = format!("{QUOTA_ROOT}{p}/{QUOTA_STATS}");
        let mut m = BTreeMap::new();
        m.insert("count".to_string(), count);
        m.insert("bytes".to_string(), bytes);
        self.update(&stat_path, |n| n.data = Some(format_stats(&m)));
    }

    /// After loading a snapshot: find every quota and recount it (`setupQuota`).
    pub fn setup_quotas(&mut self) {
        let limits: Vec<String> = self
            .nodes
            .keys()
            .filter(|k| k.starts_with("/zookeeper/quota/") && k.ends_with("/zookeeper_limits"))
            .cloned()
            .collect();
        for l in limits {
            let real = l[QUOTA_ROOT.len()..l.len() - QUOTA_LIMITS.len() - 1].to_string();
            self.update_quota_for_path(&real);
            self.quotas.insert(real);
        }
    }

    /// The shared copy of an ACL list.
    pub fn intern_acl(&mut self, acl: &[Acl]) -> Arc<Vec<Acl>> {
        if let Some(a) = self.acls.get(acl) {
            return a.clone();
        }
        let a = Arc::new(acl.to_vec());
        self.acls.insert(acl.to_vec(), a.clone());
        a
    }

    /// Paths in pre-order (a parent before its children, siblings sorted so the output is
    /// reproducible), the order snapshots use.
    pub fn paths_preorder(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec!["/".to_string()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(&p) {
                let mut kids: Vec<&String> = n.children.iter().collect();
                kids.sort_unstable_by(|a, b| b.cmp(a));
                for c in kids {
                    stack.push(path::join(&p, c));
                }
                out.push(p);
            }
        }
        out
    }

    /// Insert a node and link it into its parent's child set without touching stats; used to
    /// build the initial tree and (later) to load snapshots.
    pub fn insert_raw(&mut self, p: &str, node: Node) {
        if p != "/" {
            let parent = path::parent(p).expect("absolute path has a parent");
            if let Some(pn) = self.nodes.get_mut(parent) {
                pn.children.insert(path::name(p).to_string());
            }
        }
        self.index(p, &node);
        self.digest = self.digest.wrapping_add(node_digest(p, &node));
        self.nodes.insert(p.to_string(), node);
    }

    fn index(&mut self, p: &str, node: &Node) {
        match node.kind() {
            NodeKind::Ephemeral(s) => {
                self.ephemerals.entry(s).or_default().insert(p.to_string());
            }
            NodeKind::Container => {
                self.containers.insert(p.to_string());
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(p.to_string());
            }
            NodeKind::Persistent => {}
        }
    }

    fn unindex(&mut self, p: &str, kind: NodeKind) {
        match kind {
            NodeKind::Ephemeral(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(p);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
            NodeKind::Container => {
                self.containers.remove(p);
            }
            NodeKind::Ttl(_) => {
                self.ttls.remove(p);
            }
            NodeKind::Persistent => {}
        }
    }

    pub fn get(&self, p: &str) -> Option<&Node> {
        self.nodes.get(p)
    }

    /// `/zookeeper/config` of an ensemble member: the config string, set outside any txn with
    /// version and aversion -1 and mzxid = the config version (ZooKeeper's
    /// `initConfigInZKDatabase`; verified with 3.8.0: dataVersion -1, aclVersion -1).
    pub fn set_config_node(&mut self, data: Vec<u8>, config_version: i64, time: i64) {
        self.update("/zookeeper/config", |n| {
            n.data = Some(data);
            n.stat.version = -1;
            n.stat.aversion = -1;
            n.stat.mzxid = config_version;
            n.stat.mtime = time;
        });
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn digest(&self) -> u64 {
        self.digest
    }

    pub fn last_processed_zxid(&self) -> i64 {
        self.last_processed_zxid
    }

    pub fn set_last_processed_zxid(&mut self, zxid: i64) {
        self.last_processed_zxid = zxid;
    }

    pub fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    pub fn ephemerals(&self) -> impl Iterator<Item = (&i64, &BTreeSet<String>)> {
        self.ephemerals.iter()
    }

    pub fn containers(&self) -> impl Iterator<Item = &String> {
        self.containers.iter()
    }

    pub fn ttls(&self) -> impl Iterator<Item = &String> {
        self.ttls.iter()
    }

    /// Approximate bytes of data held (for `mntr`'s zk_approximate_data_size).
    pub fn approximate_data_size(&self) -> u64 {
        self.nodes
            .iter()
            .map(|(p, n)| (p.len() + n.data.as_ref().map_or(0, |d| d.len())) as u64)
            .sum()
    }

    /// Number of descendants of `p` (getAllChildrenNumber, §3.3).
    pub fn all_children_number(&self, p: &str) -> i32 {
        if p == "/" {
            return self.nodes.len() as i32 - 1;
        }
        let mut count = 0i32;
        let mut stack = vec![p.to_string()];
        while let Some(cur) = stack.pop() {
            if let Some(n) = self.nodes.get(&cur) {
                for c in &n.children {
                    count += 1;
                    stack.push(path::join(&cur, c));
                }
            }
        }
        count
    }

    /// `setCversionPzxid`: after a replayed create hit NodeExists (fuzzy snapshot), move the
    /// parent's cversion/pzxid forward to what the txn says, never backward.
    pub fn raise_cversion(&mut self, p: &str, cversion: i32, zxid: i64) {
        self.update(p, |n| {
            let cv = if cversion == -1 {
                n.stat.cversion + 1
            } else {
                cversion
            };
            if cv > n.stat.cversion {
                n.stat.cversion = cv;
                n.stat.pzxid = zxid;
            }
        });
    }

    /// Delete every ephemeral of `session` without a txn (start-up cleanup of sessions that no
    /// longer exist).
    pub fn kill_session(&mut self, session: i64, zxid: i64) {
        for p in self.ephemerals_of(session) {
            let mut ignored = Vec::new();
            self.delete_node(&p, zxid, &mut ignored);
        }
        self.ephemerals.remove(&session);
    }

    /// Mutate a node keeping the digest in step.
    fn update<F: FnOnce(&mut Node)>(&mut self, p: &str, f: F) -> bool {
        let Some(n) = self.nodes.get_mut(p) else {
            return false;
        };
        let before = node_digest(p, n);
        f(n);
        let after = node_digest(p, n);
        self.digest = self.digest.wrapping_sub(before).wrapping_add(after);
        true
    }

    /// Apply a committed txn. Errors inside (e.g. NodeExists) are reported, not fatal: ZooKeeper
    /// treats them the same way when replaying a log over a fuzzy snapshot.
    pub fn apply(&mut self, header: &TxnHeader, body: &TxnBody) -> Applied {
        let mut out = Applied::default();
        self.apply_body(header, body, &mut out);
        if header.zxid > self.last_processed_zxid {
            self.last_processed_zxid = header.zxid;
        }
        out
    }

    fn apply_body(&mut self, h: &TxnHeader, body: &TxnBody, out: &mut Applied) {
        match body {
            TxnBody::Create(t) => {
                let owner = if t.ephemeral { h.client_id } else { 0 };
                out.err = self.create_node(
                    &t.path,
                    t.data.clone(),
                    &t.acl,
                    owner,
                    t.parent_cversion,
                    h.zxid,
                    h.time,
                    &mut out.triggers,
                );
            }
            TxnBody::CreateContainer(t) => {
                out.err = self.create_node(
                    &t.path,
                    t.data.clone(),
                    &t.acl,
                    CONTAINER_OWNER,
                    t.parent_cversion,
                    h.zxid,
                    h.time,
                    &mut out.triggers,
                );
            }
            TxnBody::CreateTtl(t) => {
                out.err = self.create_node(
                    &t.path,
                    t.data.clone(),
                    &t.acl,
                    NodeKind::ttl_owner(t.ttl),
                    t.parent_cversion,
                    h.zxid,
                    h.time,
                    &mut out.triggers,
                );
            }
            TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => {
                out.err = self.delete_node(&t.path, h.zxid, &mut out.triggers);
            }
            TxnBody::SetData(t) | TxnBody::Reconfig(t) => {
                let mut acl = None;
                let mut before = 0i64;
                let ok = self.update(&t.path, |n| {
                    before = n.data.as_ref().map_or(0, |d| d.len() as i64);
                    n.data = t.data.clone();
                    n.stat.version = t.version;
                    n.stat.mzxid = h.zxid;
                    n.stat.mtime = h.time;
                    acl = Some(n.acl.clone());
                });
                if let (true, Some(acl)) = (ok, acl) {
                    if let Some(q) = self.quota_prefix(&t.path) {
                        let after = t.data.as_ref().map_or(0, |d| d.len() as i64);
                        self.update_quota_stat(&q, after - before, 0);
                    }
                    out.triggers.push(Trigger::DataChanged(t.path.clone(), acl));
                } else {
                    out.err = corral_proto::ErrorCode::NoNode.code();
                }
            }
            TxnBody::SetAcl(t) => {
                let acl = self.intern_acl(&t.acl);
                if !self.update(&t.path, |n| {
                    n.acl = acl;
                    n.stat.aversion = t.version;
                }) {
                    out.err = corral_proto::ErrorCode::NoNode.code();
                }
            }
            TxnBody::Check(_) | TxnBody::CreateSession(_) => {}
            TxnBody::Error(e) => out.err = e.err,
            TxnBody::CloseSession(t) => {
                let mut paths: BTreeSet<String> = self
                    .ephemerals
                    .get(&h.client_id)
                    .cloned()
                    .unwrap_or_default();
                if let Some(t) = t {
                    paths.extend(t.paths_to_delete.iter().cloned());
                }
                // Deepest first is not needed (ephemerals have no children), but a stable
                // order keeps replays identical.
                for p in paths {
                    self.delete_node(&p, h.zxid, &mut out.triggers);
                }
                self.ephemerals.remove(&h.client_id);
                out.closed_session = Some(h.client_id);
            }
            TxnBody::Multi(subs) => {
                // A multi that failed at prep carries error sub-txns; ZooKeeper then applies
                // nothing of it (earlier sub-txns are turned into ErrorTxn(0)).
                if subs.iter().any(|s| matches!(s, TxnBody::Error(_))) {
                    return;
                }
                for s in subs {
                    let mut sub = Applied::default();
                    self.apply_body(h, s, &mut sub);
                    out.triggers.append(&mut sub.triggers);
                    if sub.err != 0 && out.err == 0 {
                        out.err = sub.err;
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create_node(
        &mut self,
        p: &str,
        data: Data,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> i32 {
        use corral_proto::ErrorCode;
        let Some(parent) = path::parent(p) else {
            return ErrorCode::NoNode.code();
        };
        let parent = parent.to_string();
        if !self.nodes.contains_key(&parent) {
            return ErrorCode::NoNode.code();
        }
        if self.nodes.contains_key(p) {
            return ErrorCode::NodeExists.code();
        }
        let name = path::name(p).to_string();
        let mut parent_acl = Arc::default();
        self.update(&parent, |pn| {
            parent_acl = pn.acl.clone();
            // -1 means "one more than now" (CreateTxnV0); a smaller value than the current one
            // can only come from replaying an older txn, which must not move it backwards.
            let cv = if parent_cversion == -1 {
                pn.stat.cversion + 1
            } else {
                parent_cversion
            };
            if cv > pn.stat.cversion {
                pn.stat.cversion = cv;
                pn.stat.pzxid = zxid;
            }
            pn.children.insert(name);
        });
        let node = Node {
            data,
            acl: self.intern_acl(acl),
            stat: StatPersisted {
                czxid: zxid,
                mzxid: zxid,
                ctime: time,
                mtime: time,
                version: 0,
                cversion: 0,
                aversion: 0,
                ephemeral_owner: owner,
                pzxid: zxid,
            },
            children: HashSet::default(),
        };
        self.index(p, &node);
        self.digest = self.digest.wrapping_add(node_digest(p, &node));
        let acl = node.acl.clone();
        let bytes = node.data.as_ref().map_or(0, |d| d.len() as i64);
        self.nodes.insert(p.to_string(), node);
        if let Some(real) = parent.strip_prefix(QUOTA_ROOT) {
            let real = real.to_string();
            if path::name(p) == QUOTA_LIMITS {
                self.quotas.insert(real.clone());
            }
            if path::name(p) == QUOTA_STATS {
                self.update_quota_for_path(&real);
            }
        }
        if let Some(q) = self.quota_prefix(p) {
            self.update_quota_stat(&q, bytes, 1);
        }
        triggers.push(Trigger::Created(p.to_string(), acl));
        triggers.push(Trigger::ChildrenChanged(parent, parent_acl));
        0
    }

    fn delete_node(&mut self, p: &str, zxid: i64, triggers: &mut Vec<Trigger>) -> i32 {
        use corral_proto::ErrorCode;
        let Some(parent) = path::parent(p) else {
            return ErrorCode::NoNode.code();
        };
        let parent = parent.to_string();
        let name = path::name(p);
        // As ZooKeeper's deleteNode: the parent's pzxid moves forward even when the child is
        // already gone, which happens when replaying a log over a fuzzy snapshot.
        let mut parent_acl = Arc::default();
        let parent_found = self.update(&parent, |pn| {
            pn.children.remove(name);
            if zxid > pn.stat.pzxid {
                pn.stat.pzxid = zxid;
            }
            parent_acl = pn.acl.clone();
        });
        if !parent_found {
            return ErrorCode::NoNode.code();
        }
        let Some(node) = self.nodes.remove(p) else {
            return ErrorCode::NoNode.code();
        };
        self.digest = self.digest.wrapping_sub(node_digest(p, &node));
        self.unindex(p, node.kind());
        if parent.starts_with("/zookeeper") && name == QUOTA_LIMITS {
            self.quotas
                .remove(parent.get(QUOTA_ROOT.len()..).unwrap_or(""));
        }
        if let Some(q) = self.quota_prefix(p) {
            self.update_quota_stat(&q, -(node.data.as_ref().map_or(0, |d| d.len() as i64)), -1);
        }
        triggers.push(Trigger::Deleted(p.to_string(), node.acl.clone()));
        triggers.push(Trigger::ChildrenChanged(parent, parent_acl));
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_proto::records::perms;
    use corral_proto::txn::CreateTxn;

    // The fresh tree's digest is the verified empty-tree value (reference §5.3, §7).
    #[test]
    fn empty_tree_digest() {
        assert_eq!(DataTree::new().digest(), 0x51c6d660);
    }

    // After `create /a "x"` at zxid 3 the digest is the one ZooKeeper logged (§5.3).
    #[test]
    fn digest_after_create_matches_zookeeper() {
        let mut t = DataTree::new();
        let h = TxnHeader {
            client_id: 1,
            cxid: 1,
            zxid: 3,
            time: 1795564174152,
            r#type: 1,
        };
        let body = TxnBody::Create(CreateTxn {
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: vec![Acl::new(perms::ALL, "world", "anyone")],
            ephemeral: false,
            parent_cversion: 1,
        });
        let r = t.apply(&h, &body);
        assert_eq!(r.err, 0);
        assert_eq!(t.digest(), 0x171e62ad5);
        let root = t.get("/").unwrap().client_stat();
        assert_eq!((root.cversion, root.num_children, root.pzxid), (0, 2, 3));
    }

    // Client cversion = 2*persisted - children: root -1 and /zookeeper -2 on a fresh tree.
    #[test]
    fn fresh_tree_client_cversions() {
        let t = DataTree::new();
        assert_eq!(t.get("/").unwrap().client_stat().cversion, -1);
        assert_eq!(t.get("/zookeeper").unwrap().client_stat().cversion, -2);
        assert_eq!(
            t.get("/zookeeper/config").unwrap().client_stat().aversion,
            -1
        );
        assert_eq!(t.all_children_number("/"), 3);
    }

    // Replaying a delete whose node a fuzzy snapshot already lacks still moves the parent's
    // pzxid forward (ZooKeeper's deleteNode does the same), so restored stats match.
    #[test]
    fn replayed_delete_of_missing_node_raises_parent_pzxid() {
        use corral_proto::txn::DeleteTxn;
        let mut t = DataTree::new();
        let h = TxnHeader {
            client_id: 1,
            cxid: 1,
            zxid: 9,
            time: 1,
            r#type: 2,
        };
        let r = t.apply(
            &h,
            &TxnBody::Delete(DeleteTxn {
                path: "/gone".into(),
            }),
        );
        assert_eq!(r.err, corral_proto::ErrorCode::NoNode.code());
        assert_eq!(t.get("/").unwrap().stat.pzxid, 9);
    }

    // Quota stats follow creates, data changes and deletes below a quota, as ZooKeeper keeps
    // them (zookeeper_stats data "count=N,bytes=M"), and are recounted when set up.
    #[test]
    fn quota_stats() {
        use corral_proto::txn::{DeleteTxn, SetDataTxn};
        let mut t = DataTree::new();
        let mut z = 0;
        let mut mk = |t: &mut DataTree, p: &str, d: &[u8]| {
            z += 1;
            let h = TxnHeader {
                client_id: 1,
                cxid: 1,
                zxid: z,
                time: 1,
                r#type: 1,
            };
            let body = TxnBody::Create(CreateTxn {
                path: p.into(),
                data: Some(d.to_vec()),
                acl: crate::acl::open_acl(),
                ephemeral: false,
                parent_cversion: -1,
            });
            assert_eq!(t.apply(&h, &body).err, 0, "{p}");
        };
        mk(&mut t, "/q", b"12");
        mk(&mut t, "/q/a", b"345");
        mk(&mut t, "/zookeeper/quota/q", b"");
        mk(
            &mut t,
            "/zookeeper/quota/q/zookeeper_limits",
            b"count=10,bytes=-1",
        );
        mk(
            &mut t,
            "/zookeeper/quota/q/zookeeper_stats",
            b"count=0,bytes=0",
        );
        let stats = |t: &DataTree| {
            t.get("/zookeeper/quota/q/zookeeper_stats")
                .unwrap()
                .data
                .clone()
                .unwrap()
        };
        assert_eq!(stats(&t), b"count=2,bytes=5");
        mk(&mut t, "/q/b", b"6789");
        assert_eq!(stats(&t), b"count=3,bytes=9");
        let h = TxnHeader {
            client_id: 1,
            cxid: 1,
            zxid: 50,
            time: 1,
            r#type: 5,
        };
        t.apply(
            &h,
            &TxnBody::SetData(SetDataTxn {
                path: "/q/a".into(),
                data: None,
                version: 1,
            }),
        );
        assert_eq!(stats(&t), b"count=3,bytes=6");
        let h = TxnHeader {
            client_id: 1,
            cxid: 1,
            zxid: 51,
            time: 1,
            r#type: 2,
        };
        t.apply(
            &h,
            &TxnBody::Delete(DeleteTxn {
                path: "/q/b".into(),
            }),
        );
        assert_eq!(stats(&t), b"count=2,bytes=2");
        assert_eq!(
            format_stats(&parse_stats(b"count=1,bytes=2=;countHardLimit=5")),
            b"count=1,bytes=2=;countHardLimit=5"
        );
    }

    // Owner markers decode to kinds and are masked in client stats.
    #[test]
    fn owner_kinds() {
        assert_eq!(NodeKind::from_owner(0), NodeKind::Persistent);
        assert_eq!(NodeKind::from_owner(CONTAINER_OWNER), NodeKind::Container);
        assert_eq!(
            NodeKind::from_owner(NodeKind::ttl_owner(5000)),
            NodeKind::Ttl(5000)
        );
        assert_eq!(
            NodeKind::from_owner(0x0100_0000_0000_0001),
            NodeKind::Ephemeral(0x0100_0000_0000_0001)
        );
    }
}
