//! The data tree: znodes with data, ACL and persisted stat, the per-session ephemeral index,
//! container/TTL indexes and the rolling tree digest (reference §2.11, §5.3). Txns are applied
//! here; deciding whether a request may become a txn is `prep`'s job.

use std::collections::{BTreeMap, BTreeSet};

// aHash instead of std's SipHash for the per-node maps: hashing paths was the largest single cost
// of loading and walking a large tree, and aHash keeps per-process random keys (paths come from
// clients, so a fixed-key hash would invite collision attacks).
type HashMap<K, V> = ahash::HashMap<K, V>;
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

/// No node (an empty link in the child lists).
const NIL: u32 = u32::MAX;
/// `Slot::meta` bit: the node's data is present (not the null buffer).
const HAS_DATA: u32 = 1 << 31;

/// One node's storage. Nodes live in one vector and refer to each other by index; a node keeps
/// only its name (its path is its parent's plus the name), in one allocation with its data:
/// with a million znodes the per-node maps, child sets and path strings of a naive layout cost
/// several times the data itself.
#[derive(Debug, Clone)]
struct Slot {
    /// The name's bytes followed by the data's.
    buf: Box<[u8]>,
    /// Name length, with `HAS_DATA`; `FREE` for a free slot.
    meta: u32,
    /// Index into `DataTree::acl_lists`.
    acl: u32,
    /// `NIL` for the root and for orphans (see `DataTree::orphans`).
    parent: u32,
    /// The first child; its `prev` is the last child (so appending is O(1)).
    first: u32,
    next: u32,
    prev: u32,
    children: u32,
    /// The path's hash (`path_hash`): the index grows without rebuilding paths.
    hash: u32,
    stat: StatPersisted,
}

/// `Slot::meta` of a free slot.
const FREE: u32 = u32::MAX;

impl Slot {
    fn name_len(&self) -> usize {
        (self.meta & !HAS_DATA) as usize
    }

    fn name_bytes(&self) -> &[u8] {
        &self.buf[..self.name_len()]
    }

    fn name(&self) -> &str {
        std::str::from_utf8(self.name_bytes()).expect("names are stored from &str")
    }

    fn data(&self) -> Option<&[u8]> {
        (self.meta & HAS_DATA != 0).then(|| &self.buf[self.name_len()..])
    }

    fn is_free(&self) -> bool {
        self.meta == FREE
    }

    fn set_data(&mut self, data: Option<&[u8]>) {
        let plen = self.name_len();
        let mut buf = Vec::with_capacity(plen + data.map_or(0, |d| d.len()));
        buf.extend_from_slice(&self.buf[..plen]);
        if let Some(d) = data {
            buf.extend_from_slice(d);
        }
        self.buf = buf.into_boxed_slice();
        self.meta = plen as u32 | if data.is_some() { HAS_DATA } else { 0 };
    }
}

/// A node that stays the same node while the tree changes: a later lookup with it finds
/// nothing once the node is deleted, even if its slot is reused (fuzzy snapshot walks use it).
/// A slot is told apart from its later occupants by czxid: a node created later has a later
/// zxid, except within the one multi txn that created both, which no walk step can split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeId {
    idx: u32,
    czxid: i64,
}

/// A read-only view of one znode.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    tree: &'a DataTree,
    idx: u32,
}

impl std::fmt::Debug for Node<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("path", &self.path())
            .field("data_len", &self.data().map(|d| d.len()))
            .field("stat", self.stat())
            .field("children", &self.num_children())
            .finish()
    }
}

impl<'a> Node<'a> {
    fn slot(&self) -> &'a Slot {
        &self.tree.slots[self.idx as usize]
    }

    pub fn id(&self) -> NodeId {
        NodeId {
            idx: self.idx,
            czxid: self.slot().stat.czxid,
        }
    }

    /// The node's path (built from its ancestors' names).
    pub fn path(&self) -> String {
        path_of(&self.tree.slots, &self.tree.orphans, self.idx)
    }

    /// The node's path into `buf` (cleared first), without allocating once it is large enough.
    pub fn write_path(&self, buf: &mut Vec<u8>) {
        fill_path(&self.tree.slots, &self.tree.orphans, self.idx, buf);
    }

    /// The last path component ("" for the root).
    pub fn name(&self) -> &'a str {
        self.slot().name()
    }

    /// `name` as bytes (UTF-8), without checking them again.
    pub fn name_bytes(&self) -> &'a [u8] {
        self.slot().name_bytes()
    }

    pub fn data(&self) -> Option<&'a [u8]> {
        self.slot().data()
    }

    /// An owned copy of the data, as records carry it.
    pub fn to_data(&self) -> Data {
        self.data().map(<[u8]>::to_vec)
    }

    pub fn data_len(&self) -> usize {
        self.data().map_or(0, <[u8]>::len)
    }

    pub fn acl_ref(&self) -> AclRef {
        AclRef(self.slot().acl)
    }

    pub fn acl(&self) -> &'a Arc<Vec<Acl>> {
        &self.tree.acl_lists[self.slot().acl as usize]
    }

    pub fn stat(&self) -> &'a StatPersisted {
        &self.slot().stat
    }

    pub fn num_children(&self) -> usize {
        self.slot().children as usize
    }

    /// The children, oldest first.
    pub fn children(&self) -> Children<'a> {
        Children {
            tree: self.tree,
            next: self.slot().first,
        }
    }

    /// The children's names, oldest first.
    pub fn child_names(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.children().map(|c| c.name())
    }

    /// The Stat clients see (§2.11): derived cversion, masked owner for containers and TTLs.
    pub fn client_stat(&self) -> Stat {
        let s = self.stat();
        let n = self.num_children() as i32;
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
            data_length: self.data_len() as i32,
            num_children: n,
            pzxid: s.pzxid,
        }
    }

    pub fn kind(&self) -> NodeKind {
        NodeKind::from_owner(self.stat().ephemeral_owner)
    }

    /// This node's term of the tree digest (§5.3).
    pub fn digest(&self) -> u64 {
        digest_parts(&self.path(), self.data(), self.stat())
    }
}

/// Iterator over a node's children.
pub struct Children<'a> {
    tree: &'a DataTree,
    next: u32,
}

impl<'a> Iterator for Children<'a> {
    type Item = Node<'a>;
    fn next(&mut self) -> Option<Node<'a>> {
        if self.next == NIL {
            return None;
        }
        let n = Node {
            tree: self.tree,
            idx: self.next,
        };
        self.next = self.tree.slots[self.next as usize].next;
        Some(n)
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

/// A shared ACL list of the tree (most nodes share a handful of lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AclRef(u32);

#[derive(Debug)]
pub struct DataTree {
    slots: Vec<Slot>,
    /// Freed slots, reused before the vector grows.
    free: Vec<u32>,
    /// Path -> slot, hashed with aHash (per-process random keys: paths come from clients, so
    /// a fixed-key hash would invite collision attacks).
    index: hashbrown::HashTable<u32>,
    hasher: ahash::RandomState,
    ephemerals: HashMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    digest: u64,
    last_processed_zxid: i64,
    /// One shared copy of each distinct ACL list, never dropped (as ZooKeeper's ACL cache
    /// keeps lists until the next snapshot load).
    acl_lists: Vec<Arc<Vec<Acl>>>,
    acl_ids: HashMap<Vec<Acl>, u32>,
    /// Paths with a quota (a `/zookeeper/quota/<path>/zookeeper_limits` node exists).
    quotas: BTreeSet<String>,
    /// Per-namespace writes not yet taken ([`DataTree::take_write_stats`]).
    write_stats: Vec<(String, i64)>,
    /// Tells trees of one process apart: a `NodeId` means nothing in another tree.
    instance: u64,
    /// Full paths of nodes left without a parent: a replay over a fuzzy snapshot can delete a
    /// node that still has children, which ZooKeeper's node map keeps (findable by path).
    orphans: HashMap<u32, Box<str>>,
    /// The digest after every txn whose zxid is a multiple of [`DIGEST_LOG_INTERVAL`], the
    /// last [`DIGEST_LOG_LIMIT`] of them (ZooKeeper's digest log, shown by `hash`).
    digest_log: std::collections::VecDeque<(i64, u64)>,
}

/// How often the digest log records the tree's digest, in zxids (ZooKeeper's).
pub const DIGEST_LOG_INTERVAL: i64 = 128;
/// How many digests the log keeps (ZooKeeper's).
pub const DIGEST_LOG_LIMIT: usize = 1024;

/// The full path of slot `i`: its name after its ancestors' (or an orphan's stored path).
fn path_of(slots: &[Slot], orphans: &HashMap<u32, Box<str>>, i: u32) -> String {
    let mut buf = Vec::new();
    fill_path(slots, orphans, i, &mut buf);
    String::from_utf8(buf).expect("names are stored from &str")
}

/// `path_of` into a reused buffer.
fn fill_path(slots: &[Slot], orphans: &HashMap<u32, Box<str>>, i: u32, buf: &mut Vec<u8>) {
    let mut len = 0;
    let mut j = i;
    let base: &str = loop {
        let s = &slots[j as usize];
        if s.parent == NIL {
            break orphans.get(&j).map_or("", |p| p);
        }
        len += 1 + s.name_len();
        j = s.parent;
    };
    buf.clear();
    if len == 0 {
        buf.extend_from_slice(if base.is_empty() {
            b"/"
        } else {
            base.as_bytes()
        });
        return;
    }
    buf.resize(base.len() + len, 0);
    buf[..base.len()].copy_from_slice(base.as_bytes());
    let (mut end, mut j) = (buf.len(), i);
    while end > base.len() {
        let s = &slots[j as usize];
        let n = s.name_bytes();
        buf[end - n.len()..end].copy_from_slice(n);
        end -= n.len() + 1;
        buf[end] = b'/';
        j = s.parent;
    }
}

/// A slot's index hash.
fn slot_hash(s: &Slot) -> u64 {
    widen(s.hash)
}

/// The index's 64-bit hash from 32 bits: hashbrown takes the bucket from the low bits and a tag
/// from the top seven.
fn widen(h: u32) -> u64 {
    (h as u64) << 32 | h as u64
}

/// Whether slot `i` has path `p`, without building its path.
fn path_is(slots: &[Slot], orphans: &HashMap<u32, Box<str>>, i: u32, p: &[u8]) -> bool {
    if slots[i as usize].parent == NIL {
        return match orphans.get(&i) {
            Some(o) => o.as_bytes() == p,
            None => p == b"/",
        };
    }
    let (mut rest, mut j) = (p, i);
    loop {
        let s = &slots[j as usize];
        if s.parent == NIL {
            return match orphans.get(&j) {
                Some(o) => o.as_bytes() == rest,
                None => rest.is_empty(),
            };
        }
        let Some(r) = rest.strip_suffix(s.name_bytes()) else {
            return false;
        };
        let Some(r) = r.strip_suffix(b"/") else {
            return false;
        };
        rest = r;
        j = s.parent;
    }
}

/// What [`DataTree::quota_check`] says of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaCheck {
    Within,
    /// Over a soft limit: allowed, with this warning.
    OverSoftLimit(String),
    /// Over a hard limit: QuotaExceeded, with this message.
    Exceeded(String),
}

const QUOTA_ROOT: &str = "/zookeeper/quota";

/// A quota's path, its parsed `zookeeper_limits` and its parsed `zookeeper_stats`.
pub type QuotaFigures = (String, BTreeMap<String, i64>, BTreeMap<String, i64>);

/// Per-namespace write figures kept between [`DataTree::take_write_stats`] calls.
pub const WRITE_STATS_KEPT: usize = 65_536;
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

/// The CRC-32 node digest of §5.3 from a node's parts (prep computes it for nodes that do not
/// exist yet); 0 for the system subtree below /zookeeper.
pub fn digest_parts(path: &str, data: Option<&[u8]>, s: &StatPersisted) -> u64 {
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
        let empty = Some(&[][..]);
        for p in ["/", "/zookeeper", "/zookeeper/quota"] {
            t.insert_raw(p, empty, open, empty_stat());
        }
        // /zookeeper/config is world-readable only, and its ACL was set with version -1 at
        // init, which leaves aversion -1 (§2.11).
        let read = t.intern_acl(&[Acl::new(
            corral_proto::records::perms::READ,
            "world",
            "anyone",
        )]);
        let mut cfg = empty_stat();
        cfg.aversion = -1;
        t.insert_raw("/zookeeper/config", empty, read, cfg);
        t
    }

    /// A tree without any node, to be filled from a snapshot with `insert_raw`.
    pub fn empty() -> DataTree {
        DataTree {
            slots: Vec::new(),
            free: Vec::new(),
            index: hashbrown::HashTable::new(),
            hasher: ahash::RandomState::new(),
            ephemerals: HashMap::default(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            digest: 0,
            last_processed_zxid: 0,
            acl_lists: Vec::new(),
            acl_ids: HashMap::default(),
            quotas: BTreeSet::new(),
            write_stats: Vec::new(),
            orphans: HashMap::default(),
            digest_log: std::collections::VecDeque::new(),
            instance: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        }
    }

    /// Which tree this is (see `NodeId`): a walk begun on one tree must not go on in another.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// Room for `n` more nodes (a snapshot load knows roughly how many are coming).
    pub fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        let slots = &self.slots;
        self.index.reserve(n, |&i| slot_hash(&slots[i as usize]));
    }

    /// 32 bits of the path's aHash: kept per slot, and enough for the index (its bucket and
    /// tag bits come from `widen`).
    fn path_hash(&self, p: &str) -> u32 {
        self.hasher.hash_one(p.as_bytes()) as u32
    }

    fn find(&self, p: &str) -> Option<u32> {
        let h = self.path_hash(p);
        self.index
            .find(widen(h), |&i| {
                let s = &self.slots[i as usize];
                s.hash == h && path_is(&self.slots, &self.orphans, i, p.as_bytes())
            })
            .copied()
    }

    fn view(&self, idx: u32) -> Node<'_> {
        Node { tree: self, idx }
    }

    pub fn get(&self, p: &str) -> Option<Node<'_>> {
        self.find(p).map(|i| self.view(i))
    }

    /// The node `id` was taken from, unless it has been deleted since.
    pub fn node(&self, id: NodeId) -> Option<Node<'_>> {
        let s = self.slots.get(id.idx as usize)?;
        (!s.is_free() && s.stat.czxid == id.czxid).then(|| self.view(id.idx))
    }

    /// Store a new node and link it as `parent`'s last child (`NIL` for the root); `None`,
    /// changing nothing, when `p` is taken. One probe of the index both checks and inserts.
    fn alloc(
        &mut self,
        p: &str,
        data: Option<&[u8]>,
        acl: u32,
        stat: StatPersisted,
        parent: u32,
    ) -> Option<u32> {
        let hash = self.path_hash(p);
        let (slots, orphans) = (&self.slots, &self.orphans);
        let vacant = match self.index.entry(
            widen(hash),
            |&i| slots[i as usize].hash == hash && path_is(slots, orphans, i, p.as_bytes()),
            |&i| slot_hash(&slots[i as usize]),
        ) {
            hashbrown::hash_table::Entry::Occupied(_) => return None,
            hashbrown::hash_table::Entry::Vacant(v) => v,
        };
        let name = path::name(p);
        let mut buf = Vec::with_capacity(name.len() + data.map_or(0, <[u8]>::len));
        buf.extend_from_slice(name.as_bytes());
        if let Some(d) = data {
            buf.extend_from_slice(d);
        }
        let slot = Slot {
            buf: buf.into_boxed_slice(),
            meta: name.len() as u32 | if data.is_some() { HAS_DATA } else { 0 },
            acl,
            parent,
            first: NIL,
            next: NIL,
            prev: NIL,
            children: 0,
            hash,
            stat,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        vacant.insert(idx);
        if parent != NIL {
            self.link(parent, idx);
        }
        Some(idx)
    }

    fn link(&mut self, parent: u32, c: u32) {
        let first = self.slots[parent as usize].first;
        if first == NIL {
            self.slots[parent as usize].first = c;
            self.slots[c as usize].prev = c;
        } else {
            let last = self.slots[first as usize].prev;
            self.slots[last as usize].next = c;
            self.slots[c as usize].prev = last;
            self.slots[first as usize].prev = c;
        }
        self.slots[c as usize].next = NIL;
        self.slots[parent as usize].children += 1;
    }

    fn unlink(&mut self, c: u32) {
        let Slot {
            parent, prev, next, ..
        } = self.slots[c as usize];
        if parent == NIL {
            return;
        }
        let first = self.slots[parent as usize].first;
        if c == first {
            self.slots[parent as usize].first = next;
            if next != NIL {
                self.slots[next as usize].prev = prev;
            }
        } else {
            self.slots[prev as usize].next = next;
            if next != NIL {
                self.slots[next as usize].prev = prev;
            } else {
                self.slots[first as usize].prev = prev;
            }
        }
        self.slots[parent as usize].children -= 1;
        let s = &mut self.slots[c as usize];
        (s.parent, s.prev, s.next) = (NIL, NIL, NIL);
    }

    /// Remove a node from the index and its parent's children and free its slot. Children it
    /// still has (only a replay over a fuzzy snapshot can leave any) stay findable by path
    /// but belong to no parent, as ZooKeeper's node map keeps them.
    fn free_slot(&mut self, idx: u32) {
        // A child's path runs through this node: take it while the node is still linked.
        let mut c = self.slots[idx as usize].first;
        while c != NIL {
            let path = path_of(&self.slots, &self.orphans, c);
            self.orphans.insert(c, path.into());
            let s = &mut self.slots[c as usize];
            let next = s.next;
            (s.parent, s.prev, s.next) = (NIL, NIL, NIL);
            c = next;
        }
        self.unlink(idx);
        self.orphans.remove(&idx);
        let h = slot_hash(&self.slots[idx as usize]);
        if let Ok(e) = self.index.find_entry(h, |&i| i == idx) {
            e.remove();
        }
        let s = &mut self.slots[idx as usize];
        s.buf = Box::default();
        s.meta = FREE;
        s.first = NIL;
        s.children = 0;
        self.free.push(idx);
    }

    fn slot_digest(&self, idx: u32, p: &str) -> u64 {
        let s = &self.slots[idx as usize];
        digest_parts(p, s.data(), &s.stat)
    }

    /// Mutate a node keeping the digest in step.
    fn update_idx<F: FnOnce(&mut Slot)>(&mut self, idx: u32, p: &str, f: F) {
        let before = self.slot_digest(idx, p);
        f(&mut self.slots[idx as usize]);
        let after = self.slot_digest(idx, p);
        self.digest = self.digest.wrapping_sub(before).wrapping_add(after);
    }

    fn update<F: FnOnce(&mut Slot)>(&mut self, p: &str, f: F) -> bool {
        match self.find(p) {
            Some(i) => {
                self.update_idx(i, p, f);
                true
            }
            None => false,
        }
    }

    /// The shared copy of an ACL list.
    pub fn intern_acl(&mut self, acl: &[Acl]) -> AclRef {
        if let Some(&i) = self.acl_ids.get(acl) {
            return AclRef(i);
        }
        let i = self.acl_lists.len() as u32;
        self.acl_lists.push(Arc::new(acl.to_vec()));
        self.acl_ids.insert(acl.to_vec(), i);
        AclRef(i)
    }

    pub fn acl_list(&self, r: AclRef) -> &Arc<Vec<Acl>> {
        &self.acl_lists[r.0 as usize]
    }

    /// Insert a node below its existing parent without touching the parent's stat (building
    /// the initial tree, loading snapshots). False when the parent is missing or the path is
    /// taken.
    pub fn insert_raw(
        &mut self,
        p: &str,
        data: Option<&[u8]>,
        acl: AclRef,
        stat: StatPersisted,
    ) -> bool {
        let parent = if p == "/" {
            NIL
        } else {
            match path::parent(p).and_then(|pp| self.find(pp)) {
                Some(i) => i,
                None => return false,
            }
        };
        let kind = NodeKind::from_owner(stat.ephemeral_owner);
        let Some(idx) = self.alloc(p, data, acl.0, stat, parent) else {
            return false;
        };
        self.index_kind(p, kind);
        self.digest = self.digest.wrapping_add(self.slot_digest(idx, p));
        true
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

    /// ZooKeeper's `checkQuota` under `zookeeper.enforceQuota`: would adding `count_diff` nodes
    /// and `bytes_diff` bytes under `p` pass the limits of the deepest quota above it, as
    /// committed? A hard limit (`countHardLimit`, `byteHardLimit`) refuses; a soft one (`count`,
    /// `bytes`) only warns. Creates count one node and their data, setData the change in data.
    pub fn quota_check(&self, p: &str, bytes_diff: i64, count_diff: i64) -> QuotaCheck {
        let Some(prefix) = self.quota_prefix(p) else {
            return QuotaCheck::Within;
        };
        let data = |leaf: &str| {
            let path = format!("{QUOTA_ROOT}{prefix}/{leaf}");
            self.get(&path)
                .map(|n| parse_stats(n.data().unwrap_or(&[])))
        };
        let Some(limits) = data(QUOTA_LIMITS) else {
            return QuotaCheck::Within;
        };
        let lim = |k: &str| limits.get(k).copied().unwrap_or(-1);
        let check_count = count_diff != 0 && (lim("count") > -1 || lim("countHardLimit") > -1);
        let check_bytes = bytes_diff != 0 && (lim("bytes") > -1 || lim("byteHardLimit") > -1);
        if !check_count && !check_bytes {
            return QuotaCheck::Within;
        }
        let Some(stats) = data(QUOTA_STATS) else {
            return QuotaCheck::Within;
        };
        let now = |k: &str| stats.get(k).copied().unwrap_or(-1);
        let mut soft = None;
        for (check, what, cur, diff, soft_key, hard_key) in [
            (
                check_count,
                "count",
                now("count"),
                count_diff,
                "count",
                "countHardLimit",
            ),
            (
                check_bytes,
                "bytes",
                now("bytes"),
                bytes_diff,
                "bytes",
                "byteHardLimit",
            ),
        ] {
            if !check {
                continue;
            }
            let hard = lim(hard_key) > -1;
            let limit = if hard { lim(hard_key) } else { lim(soft_key) };
            let new = cur + diff;
            if new > limit {
                let kind = if hard { "hard" } else { "soft" };
                let cap = if what == "count" { "Count" } else { "Byte" };
                let msg = format!(
                    "Quota exceeded: {prefix} [current {what}={new}, {kind}{cap}Limit={limit}]"
                );
                if hard {
                    return QuotaCheck::Exceeded(msg);
                }
                soft = Some(msg);
            }
        }
        match soft {
            Some(msg) => QuotaCheck::OverSoftLimit(msg),
            None => QuotaCheck::Within,
        }
    }

    /// Every quota: its path, then the parsed `zookeeper_limits` and `zookeeper_stats` nodes
    /// (`count`, `bytes`, `countHardLimit`, `byteHardLimit`; -1 where unset).
    pub fn quota_figures(&self) -> Vec<QuotaFigures> {
        let data = |prefix: &str, leaf: &str| {
            self.get(&format!("{QUOTA_ROOT}{prefix}/{leaf}"))
                .map(|n| parse_stats(n.data().unwrap_or(&[])))
                .unwrap_or_default()
        };
        self.quotas
            .iter()
            .map(|q| (q.clone(), data(q, QUOTA_LIMITS), data(q, QUOTA_STATS)))
            .collect()
    }

    /// Adjust a quota's `zookeeper_stats` node in place (no txn, no stat change: ZooKeeper's
    /// `updateQuotaStat`; the node is outside the digest).
    fn update_quota_stat(&mut self, prefix: &str, bytes: i64, count: i64) {
        let stat_path = format!("{QUOTA_ROOT}{prefix}/{QUOTA_STATS}");
        self.update(&stat_path, |n| {
            let mut m = parse_stats(n.data().unwrap_or(&[]));
            let c = m.get("count").copied().unwrap_or(-1);
            let b = m.get("bytes").copied().unwrap_or(-1);
            m.insert("count".into(), c + count);
            m.insert("bytes".into(), b + bytes);
            n.set_data(Some(&format_stats(&m)));
        });
    }

    /// The ids of `idx` and all its descendants.
    fn subtree(&self, idx: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut stack = vec![idx];
        while let Some(i) = stack.pop() {
            out.push(i);
            let mut c = self.slots[i as usize].first;
            while c != NIL {
                stack.push(c);
                c = self.slots[c as usize].next;
            }
        }
        out
    }

    /// Recount a quota subtree into its stats node (`updateQuotaForPath`).
    fn update_quota_for_path(&mut self, p: &str) {
        let (mut count, mut bytes) = (0i64, 0i64);
        if let Some(i) = self.find(p) {
            for d in self.subtree(i) {
                count += 1;
                bytes += self.view(d).data_len() as i64;
            }
        }
        let stat_path = format!("{QUOTA_ROOT}{p}/{QUOTA_STATS}");
        let mut m = BTreeMap::new();
        m.insert("count".to_string(), count);
        m.insert("bytes".to_string(), bytes);
        self.update(&stat_path, |n| n.set_data(Some(&format_stats(&m))));
    }

    /// After loading a snapshot: find every quota and recount it (`setupQuota`).
    pub fn setup_quotas(&mut self) {
        let Some(root) = self.find(QUOTA_ROOT) else {
            return;
        };
        let limits: Vec<String> = self
            .subtree(root)
            .into_iter()
            .map(|i| path_of(&self.slots, &self.orphans, i))
            .filter(|k| k.starts_with("/zookeeper/quota/") && k.ends_with("/zookeeper_limits"))
            .collect();
        for l in limits {
            let real = l[QUOTA_ROOT.len()..l.len() - QUOTA_LIMITS.len() - 1].to_string();
            self.update_quota_for_path(&real);
            self.quotas.insert(real);
        }
    }

    /// Paths in pre-order (a parent before its children, siblings sorted so the output is
    /// reproducible), the order snapshots use.
    pub fn paths_preorder(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.node_count());
        let mut stack: Vec<Node<'_>> = self.get("/").into_iter().collect();
        while let Some(n) = stack.pop() {
            let mut kids: Vec<Node<'_>> = n.children().collect();
            kids.sort_unstable_by(|a, b| b.name().cmp(a.name()));
            stack.extend(kids);
            out.push(n.path());
        }
        out
    }

    fn index_kind(&mut self, p: &str, kind: NodeKind) {
        match kind {
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

    /// `/zookeeper/config` of an ensemble member: the config string, set outside any txn with
    /// version and aversion -1 and mzxid = the config version (ZooKeeper's
    /// `initConfigInZKDatabase`; verified with 3.8.0: dataVersion -1, aclVersion -1).
    pub fn set_config_node(&mut self, data: Vec<u8>, config_version: i64, time: i64) {
        self.update("/zookeeper/config", |n| {
            n.set_data(Some(&data));
            n.stat.version = -1;
            n.stat.aversion = -1;
            n.stat.mzxid = config_version;
            n.stat.mtime = time;
        });
    }

    pub fn node_count(&self) -> usize {
        self.index.len()
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
        (0..self.slots.len() as u32)
            .filter(|&i| !self.slots[i as usize].is_free())
            .map(|i| {
                let s = &self.slots[i as usize];
                let mut path_len = 0;
                let mut j = i;
                while self.slots[j as usize].parent != NIL {
                    path_len += 1 + self.slots[j as usize].name_len();
                    j = self.slots[j as usize].parent;
                }
                let full = match self.orphans.get(&j) {
                    Some(o) => o.len() + path_len,
                    None => path_len.max(1),
                };
                (full + s.data().map_or(0, <[u8]>::len)) as u64
            })
            .sum()
    }

    /// Number of descendants of `p` (getAllChildrenNumber, §3.3).
    pub fn all_children_number(&self, p: &str) -> i32 {
        if p == "/" {
            return self.node_count() as i32 - 1;
        }
        self.find(p).map_or(0, |i| self.subtree(i).len() as i32 - 1)
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

    /// Apply a committed txn. Errors inside (e.g. NodeExists) are reported, not fatal: ZooKeeper
    /// treats them the same way when replaying a log over a fuzzy snapshot.
    pub fn apply(&mut self, header: &TxnHeader, body: &TxnBody) -> Applied {
        let mut out = Applied::default();
        self.apply_body(header, body, &mut out);
        if header.zxid > self.last_processed_zxid {
            self.last_processed_zxid = header.zxid;
        }
        if header.zxid % DIGEST_LOG_INTERVAL == 0 {
            self.digest_log.push_back((header.zxid, self.digest));
            if self.digest_log.len() > DIGEST_LOG_LIMIT {
                self.digest_log.pop_front();
            }
        }
        out
    }

    /// The digest log, oldest first: (zxid, digest) pairs.
    pub fn digest_log(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.digest_log.iter().copied()
    }

    /// ZooKeeper's per-namespace write figures (`write_per_namespace`: the path's length plus
    /// the data's, per top-level namespace) of the txns applied since the last call. At most
    /// [`WRITE_STATS_KEPT`] are kept between calls: a tree nobody asks (the simulation) stays
    /// small.
    pub fn take_write_stats(&mut self) -> Vec<(String, i64)> {
        std::mem::take(&mut self.write_stats)
    }

    fn note_write(&mut self, p: &str, data: usize) {
        if self.write_stats.len() < WRITE_STATS_KEPT {
            if let Some(ns) = p.split('/').nth(1).filter(|n| !n.is_empty()) {
                self.write_stats
                    .push((ns.to_string(), (p.len() + data) as i64));
            }
        }
    }

    fn apply_body(&mut self, h: &TxnHeader, body: &TxnBody, out: &mut Applied) {
        self.apply_one(h, body, out);
        if out.err == 0 {
            match body {
                TxnBody::Create(t) => self.note_write(&t.path, t.data.as_ref().map_or(0, Vec::len)),
                TxnBody::CreateContainer(t) => {
                    self.note_write(&t.path, t.data.as_ref().map_or(0, Vec::len))
                }
                TxnBody::CreateTtl(t) => {
                    self.note_write(&t.path, t.data.as_ref().map_or(0, Vec::len))
                }
                TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => self.note_write(&t.path, 0),
                TxnBody::SetData(t) | TxnBody::Reconfig(t) => {
                    self.note_write(&t.path, t.data.as_ref().map_or(0, Vec::len))
                }
                _ => {}
            }
        }
    }

    fn apply_one(&mut self, h: &TxnHeader, body: &TxnBody, out: &mut Applied) {
        match body {
            TxnBody::Create(t) => {
                let owner = if t.ephemeral { h.client_id } else { 0 };
                out.err = self.create_node(
                    &t.path,
                    t.data.as_deref(),
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
                    t.data.as_deref(),
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
                    t.data.as_deref(),
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
                let mut acl = 0;
                let mut before = 0i64;
                let ok = self.update(&t.path, |n| {
                    before = n.data().map_or(0, |d| d.len() as i64);
                    n.set_data(t.data.as_deref());
                    n.stat.version = t.version;
                    n.stat.mzxid = h.zxid;
                    n.stat.mtime = h.time;
                    acl = n.acl;
                });
                if ok {
                    if let Some(q) = self.quota_prefix(&t.path) {
                        let after = t.data.as_ref().map_or(0, |d| d.len() as i64);
                        self.update_quota_stat(&q, after - before, 0);
                    }
                    let acl = self.acl_lists[acl as usize].clone();
                    out.triggers.push(Trigger::DataChanged(t.path.clone(), acl));
                } else {
                    out.err = corral_proto::ErrorCode::NoNode.code();
                }
            }
            TxnBody::SetAcl(t) => {
                let acl = self.intern_acl(&t.acl);
                if !self.update(&t.path, |n| {
                    n.acl = acl.0;
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
        data: Option<&[u8]>,
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
        let Some(pi) = self.find(parent) else {
            return ErrorCode::NoNode.code();
        };
        // A create over an orphan (see `orphans`) replaces it, as ZooKeeper's create checks
        // only the parent's children and its node map then swaps the entry and its digest.
        if !self.orphans.is_empty() {
            if let Some(o) = self.find(p).filter(|o| self.orphans.contains_key(o)) {
                self.remove_slot(o, p);
            }
        }
        let acl = self.intern_acl(acl);
        let stat = StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            pzxid: zxid,
        };
        let Some(idx) = self.alloc(p, data, acl.0, stat, pi) else {
            return ErrorCode::NodeExists.code();
        };
        self.update_idx(pi, parent, |pn| {
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
        });
        let parent_acl = self.view(pi).acl().clone();
        self.index_kind(p, NodeKind::from_owner(owner));
        self.digest = self.digest.wrapping_add(self.slot_digest(idx, p));
        let bytes = data.map_or(0, |d| d.len() as i64);
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
        triggers.push(Trigger::Created(p.to_string(), self.acl_list(acl).clone()));
        triggers.push(Trigger::ChildrenChanged(parent.to_string(), parent_acl));
        0
    }

    /// Take node `ci` at `p` out of the tree with its digest term, indexes and quota count;
    /// returns its ACL.
    fn remove_slot(&mut self, ci: u32, p: &str) -> Arc<Vec<Acl>> {
        let (kind, bytes, acl) = {
            let n = self.view(ci);
            (n.kind(), n.data_len() as i64, n.acl().clone())
        };
        self.digest = self.digest.wrapping_sub(self.slot_digest(ci, p));
        self.free_slot(ci);
        self.unindex(p, kind);
        if let Some(parent) = path::parent(p) {
            if parent.starts_with("/zookeeper") && path::name(p) == QUOTA_LIMITS {
                self.quotas
                    .remove(parent.get(QUOTA_ROOT.len()..).unwrap_or(""));
            }
        }
        if let Some(q) = self.quota_prefix(p) {
            self.update_quota_stat(&q, -bytes, -1);
        }
        acl
    }

    fn delete_node(&mut self, p: &str, zxid: i64, triggers: &mut Vec<Trigger>) -> i32 {
        use corral_proto::ErrorCode;
        let Some(parent) = path::parent(p) else {
            return ErrorCode::NoNode.code();
        };
        // As ZooKeeper's deleteNode: the parent's pzxid moves forward even when the child is
        // already gone, which happens when replaying a log over a fuzzy snapshot.
        let Some(pi) = self.find(parent) else {
            return ErrorCode::NoNode.code();
        };
        self.update_idx(pi, parent, |pn| {
            if zxid > pn.stat.pzxid {
                pn.stat.pzxid = zxid;
            }
        });
        let parent_acl = self.view(pi).acl().clone();
        let Some(ci) = self.find(p) else {
            return ErrorCode::NoNode.code();
        };
        let acl = self.remove_slot(ci, p);
        triggers.push(Trigger::Deleted(p.to_string(), acl));
        triggers.push(Trigger::ChildrenChanged(parent.to_string(), parent_acl));
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A txn header with `zxid` and `ty`, from session 1.
    fn header(zxid: i64, ty: i32) -> TxnHeader {
        TxnHeader {
            client_id: 1,
            cxid: 1,
            zxid,
            time: 1,
            r#type: ty,
        }
    }

    /// A persistent create of `p` with `data`, open to anyone.
    fn create_txn(p: &str, data: Option<&[u8]>) -> TxnBody {
        TxnBody::Create(CreateTxn {
            path: p.into(),
            data: data.map(<[u8]>::to_vec),
            acl: crate::acl::open_acl(),
            ephemeral: false,
            parent_cversion: -1,
        })
    }
    use corral_proto::records::perms;
    use corral_proto::txn::{CreateTxn, DeleteTxn};
    use corral_proto::ErrorCode;

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
        assert_eq!(t.get("/").unwrap().stat().pzxid, 9);
    }

    // A replay over a fuzzy snapshot can delete /b while the snapshot still holds /b/c (created
    // later in the log). /b/c stays an orphan, findable and counted in the digest, as in
    // ZooKeeper's node map; replaying its create then replaces it (ZooKeeper checks only the
    // parent's children), and the digest comes back to the sum of the reachable nodes.
    #[test]
    fn replayed_create_replaces_an_orphan() {
        let mut t = DataTree::new();
        let mut zxid = 0;
        let mut run = |t: &mut DataTree, body: TxnBody| {
            zxid += 1;
            let h = TxnHeader {
                client_id: 1,
                cxid: 1,
                zxid,
                time: 1,
                r#type: if matches!(body, TxnBody::Delete(_)) {
                    2
                } else {
                    1
                },
            };
            t.apply(&h, &body).err
        };
        let create = |p: &str| {
            TxnBody::Create(CreateTxn {
                path: p.into(),
                data: Some(p.as_bytes().to_vec()),
                acl: vec![Acl::new(perms::ALL, "world", "anyone")],
                ephemeral: false,
                parent_cversion: -1,
            })
        };
        let reachable = |t: &DataTree| {
            t.paths_preorder()
                .iter()
                .fold(0u64, |a, p| a.wrapping_add(t.get(p).unwrap().digest()))
        };
        assert_eq!(run(&mut t, create("/b")), 0);
        assert_eq!(run(&mut t, create("/b/c")), 0);
        let delete = TxnBody::Delete(DeleteTxn { path: "/b".into() });
        assert_eq!(run(&mut t, delete), 0);
        assert!(t.get("/b").is_none());
        assert!(t.get("/b/c").is_some(), "the orphan stays findable");
        assert_ne!(t.digest(), reachable(&t), "and in the digest");
        assert_eq!(run(&mut t, create("/b")), 0);
        assert_eq!(t.get("/b").unwrap().client_stat().num_children, 0);
        assert_eq!(
            run(&mut t, create("/b/c")),
            0,
            "the create replaces the orphan"
        );
        assert_eq!(t.get("/b").unwrap().client_stat().num_children, 1);
        assert_eq!(t.get("/b/c").unwrap().stat().czxid, t.last_processed_zxid());
        assert_eq!(t.digest(), reachable(&t));
        assert_eq!(run(&mut t, create("/b/c")), ErrorCode::NodeExists.code());
    }

    // checkQuota as ZooKeeper's: hard limits refuse, soft ones warn, diffs of 0 are not
    // checked, the deepest quota counts, nothing without a quota.
    #[test]
    fn quota_checks() {
        use corral_proto::txn::SetDataTxn;
        let mut t = DataTree::new();
        let mut z = 0;
        let mut apply = |t: &mut DataTree, ty: i32, body: TxnBody| {
            z += 1;
            assert_eq!(t.apply(&header(z, ty), &body).err, 0);
        };
        let create = |p: &str, d: &[u8]| create_txn(p, Some(d));
        apply(&mut t, 1, create("/q", b""));
        apply(&mut t, 1, create("/q/a", b"12345"));
        apply(&mut t, 1, create("/zookeeper/quota/q", b""));
        let limits = "/zookeeper/quota/q/zookeeper_limits";
        apply(
            &mut t,
            1,
            create(
                limits,
                b"count=-1,bytes=-1=;countHardLimit=3;byteHardLimit=8",
            ),
        );
        apply(
            &mut t,
            1,
            create("/zookeeper/quota/q/zookeeper_stats", b"count=0,bytes=0"),
        );
        assert_eq!(t.quota_check("/other", 100, 1), QuotaCheck::Within);
        assert_eq!(t.quota_check("/q/b", 3, 1), QuotaCheck::Within);
        assert!(
            matches!(t.quota_check("/q/b", 4, 1), QuotaCheck::Exceeded(m) if m.contains("current bytes=9, hardByteLimit=8"))
        );
        apply(&mut t, 1, create("/q/b", b""));
        assert!(
            matches!(t.quota_check("/q/c", 0, 1), QuotaCheck::Exceeded(m) if m.contains("current count=4, hardCountLimit=3"))
        );
        assert_eq!(t.quota_check("/q/a", -5, 0), QuotaCheck::Within);
        let soft = SetDataTxn {
            path: limits.into(),
            data: Some(b"count=2,bytes=-1".to_vec()),
            version: 1,
        };
        apply(&mut t, 5, TxnBody::SetData(soft));
        assert!(
            matches!(t.quota_check("/q/c", 0, 1), QuotaCheck::OverSoftLimit(m) if m.contains("softCountLimit=2"))
        );
    }

    // The digest log takes the tree digest after every txn whose zxid is a multiple of 128,
    // as ZooKeeper's DataTree does, and keeps the last 1024.
    #[test]
    fn digest_log_every_128_zxids() {
        let mut t = DataTree::new();
        let mut at_384 = 0;
        for z in 1..=(DIGEST_LOG_INTERVAL * (DIGEST_LOG_LIMIT as i64 + 2)) {
            t.apply(&header(z, 1), &create_txn(&format!("/n{z}"), None));
            if z == 3 * DIGEST_LOG_INTERVAL {
                at_384 = t.digest();
            }
        }
        let log: Vec<(i64, u64)> = t.digest_log().collect();
        assert_eq!(log.len(), DIGEST_LOG_LIMIT);
        assert_eq!(
            log[0],
            (3 * DIGEST_LOG_INTERVAL, at_384),
            "the two oldest are gone"
        );
        assert_eq!(log.last().unwrap().1, t.digest());
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
            assert_eq!(
                t.apply(&header(z, 1), &create_txn(p, Some(d))).err,
                0,
                "{p}"
            );
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
                .to_data()
                .unwrap()
        };
        assert_eq!(stats(&t), b"count=2,bytes=5");
        mk(&mut t, "/q/b", b"6789");
        assert_eq!(stats(&t), b"count=3,bytes=9");
        t.apply(
            &header(50, 5),
            &TxnBody::SetData(SetDataTxn {
                path: "/q/a".into(),
                data: None,
                version: 1,
            }),
        );
        assert_eq!(stats(&t), b"count=3,bytes=6");
        t.apply(
            &header(51, 2),
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

    // A replay over a fuzzy snapshot can delete a node that still has children (ZooKeeper's
    // node map keeps them): they stay findable by path with their own path, a new node at the
    // parent's path starts without them, a create at their path replaces them, and they can
    // still be deleted.
    #[test]
    fn children_of_a_deleted_node_stay_findable() {
        let mut t = DataTree::new();
        let h = |zxid| TxnHeader {
            client_id: 1,
            cxid: 1,
            zxid,
            time: 1,
            r#type: 1,
        };
        let create = |p: &str| {
            TxnBody::Create(CreateTxn {
                path: p.into(),
                data: Some(p.as_bytes().to_vec()),
                acl: crate::acl::open_acl(),
                ephemeral: false,
                parent_cversion: -1,
            })
        };
        for (z, p) in ["/a", "/a/b", "/a/b/c", "/a/d"].iter().enumerate() {
            assert_eq!(t.apply(&h(z as i64 + 1), &create(p)).err, 0);
        }
        let del = |p: &str| TxnBody::Delete(DeleteTxn { path: p.into() });
        assert_eq!(t.apply(&h(10), &del("/a")).err, 0);
        assert!(t.get("/a").is_none());
        for p in ["/a/b", "/a/b/c", "/a/d"] {
            let n = t.get(p).unwrap_or_else(|| panic!("{p} gone"));
            assert_eq!((n.path(), n.data()), (p.to_string(), Some(p.as_bytes())));
        }
        assert_eq!(
            t.get("/a/b").unwrap().child_names().collect::<Vec<_>>(),
            ["c"]
        );
        assert_eq!(t.apply(&h(11), &create("/a")).err, 0);
        assert_eq!(t.get("/a").unwrap().num_children(), 0);
        // ZooKeeper's create checks the parent's children only: it replaces the orphan, whose
        // own child stays an orphan.
        assert_eq!(t.apply(&h(12), &create("/a/b")).err, 0);
        assert_eq!(t.get("/a/b").unwrap().num_children(), 0);
        assert!(t.get("/a/b/c").is_some());
        assert_eq!(t.apply(&h(13), &del("/a/b/c")).err, 0);
        assert_eq!(t.apply(&h(14), &del("/a/b")).err, 0);
        assert!(t.get("/a/b").is_none() && t.get("/a/b/c").is_none());
        assert_eq!(t.node_count(), 6);
        assert_eq!(t.approximate_data_size(), {
            let nodes = [
                "/",
                "/zookeeper",
                "/zookeeper/quota",
                "/zookeeper/config",
                "/a",
                "/a/d",
            ];
            nodes
                .iter()
                .map(|p| p.len() as u64 + t.get(p).unwrap().data_len() as u64)
                .sum::<u64>()
        });
    }

    // The slot store against a plain model: random creates and deletes (of leaves, as prep
    // allows) over a small path space keep every node findable by path, each parent's child
    // list and count equal to the model's children in creation order, the digest equal to a
    // fresh sum over the nodes, and stale NodeIds dead after their node is deleted.
    proptest::proptest! {
        #[test]
        fn slots_match_a_model(ops in proptest::collection::vec((0u8..2, 0usize..14, 0u8..3), 1..300)) {
            let paths = ["/a", "/b", "/a/x", "/a/y", "/a/z", "/b/x", "/a/x/1", "/a/x/2",
                "/b/x/1", "/c", "/c/q", "/a/y/1", "/a/y/2", "/a/y/3"];
            let mut t = DataTree::new();
            // path -> (children in creation order)
            let mut model: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for p in ["/", "/zookeeper"] {
                let n = t.get(p).unwrap();
                model.insert(p.into(), n.child_names().map(str::to_string).collect());
            }
            model.insert("/zookeeper/quota".into(), vec![]);
            model.insert("/zookeeper/config".into(), vec![]);
            let mut ids = Vec::new();
            for (i, (op, pi, len)) in ops.into_iter().enumerate() {
                let p = paths[pi];
                let zxid = i as i64 + 1;
                let h = TxnHeader { client_id: 1, cxid: 1, zxid, time: 7, r#type: 1 };
                let parent = path::parent(p).unwrap().to_string();
                if op == 0 {
                    let body = TxnBody::Create(CreateTxn {
                        path: p.into(), data: Some(vec![b'd'; len as usize * 40]),
                        acl: crate::acl::open_acl(), ephemeral: false, parent_cversion: -1,
                    });
                    let ok = model.contains_key(&parent) && !model.contains_key(p);
                    proptest::prop_assert_eq!(t.apply(&h, &body).err == 0, ok);
                    if ok {
                        model.get_mut(&parent).unwrap().push(path::name(p).into());
                        model.insert(p.into(), vec![]);
                        ids.push((t.get(p).unwrap().id(), p, true));
                    }
                } else if model.get(p).is_some_and(|c| c.is_empty()) {
                    let body = TxnBody::Delete(DeleteTxn { path: p.into() });
                    proptest::prop_assert_eq!(t.apply(&h, &body).err, 0);
                    model.remove(p);
                    for e in ids.iter_mut().filter(|e| e.1 == p) {
                        e.2 = false;
                    }
                    model.get_mut(&parent).unwrap().retain(|c| c != path::name(p));
                }
                proptest::prop_assert_eq!(t.node_count(), model.len());
                let mut sum = 0u64;
                for (p, kids) in &model {
                    let n = t.get(p).unwrap();
                    proptest::prop_assert_eq!(n.path(), p.as_str());
                    proptest::prop_assert_eq!(n.name(), path::name(p));
                    let got: Vec<&str> = n.child_names().collect();
                    proptest::prop_assert_eq!(&got, kids);
                    proptest::prop_assert_eq!(n.num_children(), kids.len());
                    sum = sum.wrapping_add(n.digest());
                }
                proptest::prop_assert_eq!(t.digest(), sum);
                // A live id names its own node; a dead one names nothing, even once the path
                // (or its slot) is used again.
                for (id, p, alive) in &ids {
                    let found = t.node(*id).map(|n| n.path());
                    proptest::prop_assert_eq!(found, alive.then(|| p.to_string()));
                }
            }
        }
    }
}

#[cfg(test)]
mod layout {
    // Memory per znode is what lets a million nodes fit in a quarter of ZooKeeper's RSS
    // (docs/benchmarks.md); a field added carelessly would undo it.
    #[test]
    fn slot_stays_small() {
        assert!(
            std::mem::size_of::<super::Slot>() <= 112,
            "{}",
            std::mem::size_of::<super::Slot>()
        );
    }
}
