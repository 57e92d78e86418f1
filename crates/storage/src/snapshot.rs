//! The snapshot file format (`snapshot.<zxid hex>[.gz|.snappy]`, reference §6.3–6.4), byte by
//! byte, over the uncompressed stream:
//!
//! ```text
//! header    i32 0x5A4B534E "ZKSN" | i32 2 | i64 dbid -1
//! sessions  i32 count, count x (i64 session id, i32 timeout ms)
//! acl cache i32 count, count x (i64 ref, vec<ACL>)          ref -1 = [31 world:anyone], no entry
//! nodes     ustr path ("" for the root) | buf data | i64 acl ref | StatPersisted (60 bytes)
//!           ... in pre-order, then ustr "/" to end the tree
//! seal 1    i64 adler32(every byte so far) | ustr "/"
//! digest    i64 zxid | i32 version 2 | i64 tree digest        (when the digest is enabled)
//! seal 2    i64 adler32(every byte so far) | ustr "/"
//! ```
//!
//! Pure: encodes into and decodes from byte buffers.

use crate::limits::{SNAPPY_BLOCK, SORTED_SIBLINGS_MAX};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;

use corral_proto::jute::{Jute, Reader, WriteJute};
use corral_proto::records::{perms, Acl, StatPersisted};
use corral_tree::{AclRef, DataTree, NodeId};

pub const MAGIC: i32 = 0x5A4B_534E;
pub const VERSION: i32 = 2;
const OPEN_ACL_REF: i64 = -1;
/// xerial snappy-java stream magic ("\x82SNAPPY\0").
pub const SNAPPY_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

/// `zookeeper.snapshot.compression.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gz,
    Snappy,
}

impl Compression {
    pub fn from_method(m: &str) -> Compression {
        match m {
            "gz" => Compression::Gz,
            "snappy" => Compression::Snappy,
            _ => Compression::None,
        }
    }

    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gz => ".gz",
            Compression::Snappy => ".snappy",
        }
    }
}

/// File name of a snapshot taken at `zxid`.
pub fn file_name(zxid: i64, c: Compression) -> String {
    format!("snapshot.{zxid:x}{}", c.suffix())
}

/// The zxid and compression in a snapshot file name.
pub fn parse_name(name: &str) -> Option<(i64, Compression)> {
    let rest = name.strip_prefix("snapshot.")?;
    let (hex, c) = match rest.split_once('.') {
        None => (rest, Compression::None),
        Some((h, "gz")) => (h, Compression::Gz),
        Some((h, "snappy")) => (h, Compression::Snappy),
        Some(_) => return None,
    };
    u64::from_str_radix(hex, 16).ok().map(|z| (z as i64, c))
}

/// What a snapshot holds besides the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub sessions: Vec<(i64, i32)>,
    /// (zxid, tree digest) of the last txn applied when serialization finished.
    pub digest: Option<(i64, i64)>,
}

struct Checked {
    buf: Vec<u8>,
}

impl Checked {
    fn seal(&mut self) {
        let sum = crate::txnlog::adler32(&self.buf) as i64;
        self.buf.put_i64(sum);
        self.buf.put_ustring(Some("/"));
    }
}

fn is_open(acl: &[Acl]) -> bool {
    acl.len() == 1 && acl[0] == Acl::new(perms::ALL, "world", "anyone")
}

/// Serialize `tree` (uncompressed stream) in one go.
pub fn serialize(tree: &DataTree, meta: &Meta) -> Vec<u8> {
    let mut f = Fuzzy::start(tree, meta.sessions.clone());
    while !f.step(tree, usize::MAX) {}
    f.finish(meta.digest)
}

/// A snapshot taken a few nodes at a time while txns keep being applied in between, like
/// ZooKeeper's fuzzy snapshots: each node is written as it is when visited, its children as
/// they are then; nodes created later are missed and nodes deleted before their visit are
/// skipped. Replaying the log from the snapshot's zxid + 1 repairs both (reference §6.3).
pub struct Fuzzy {
    zxid: i64,
    sessions: Vec<(i64, i32)>,
    /// Nodes still to visit: a node deleted before its visit is skipped (with what was below
    /// it, which had to be deleted first), even when its path or slot is reused since.
    stack: Vec<NodeId>,
    nodes: Vec<u8>,
    refs: HashMap<AclRef, i64>,
    lists: Vec<Arc<Vec<Acl>>>,
    written: usize,
    tree: u64,
    /// The path being written (reused).
    path: Vec<u8>,
}

impl Fuzzy {
    /// Begin at the tree's current zxid (the file's name).
    pub fn start(tree: &DataTree, sessions: Vec<(i64, i32)>) -> Fuzzy {
        Fuzzy {
            zxid: tree.last_processed_zxid(),
            sessions,
            stack: tree.get("/").map(|n| n.id()).into_iter().collect(),
            nodes: Vec::with_capacity(tree.node_count() * 128),
            refs: HashMap::new(),
            lists: Vec::new(),
            written: 0,
            tree: tree.instance(),
            path: Vec::new(),
        }
    }

    pub fn zxid(&self) -> i64 {
        self.zxid
    }

    pub fn nodes_written(&self) -> usize {
        self.written
    }

    /// Write up to `max_nodes` more nodes; true when the whole tree has been visited.
    pub fn step(&mut self, tree: &DataTree, max_nodes: usize) -> bool {
        self.step_bounded(tree, max_nodes, usize::MAX)
    }

    /// `step`, stopping as well once about `max_bytes` more have been written (big values make
    /// a node count alone a poor bound on how long a step keeps requests waiting).
    pub fn step_bounded(&mut self, tree: &DataTree, max_nodes: usize, max_bytes: usize) -> bool {
        let stop_at = self.nodes.len().saturating_add(max_bytes);
        // Node ids of another tree would name unrelated nodes: whoever replaces the tree (a
        // SNAP from a leader) must drop the walk first.
        assert_eq!(
            tree.instance(),
            self.tree,
            "a snapshot walk went on in another tree"
        );
        let mut n = 0;
        while n < max_nodes && self.nodes.len() < stop_at {
            let Some(id) = self.stack.pop() else {
                return true;
            };
            let Some(node) = tree.node(id) else { continue };
            let at = self.stack.len();
            self.stack.extend(node.children().map(|c| c.id()));
            // Pushed in creation order, popped newest first; small sibling sets are sorted
            // (popped by name) so typical snapshots are reproducible byte for byte, huge ones
            // are not, as ZooKeeper's hash order is not, to keep the walk linear.
            let kids = &mut self.stack[at..];
            if kids.len() <= SORTED_SIBLINGS_MAX {
                let name = |id: &NodeId| tree.node(*id).map_or("", |c| c.name());
                kids.sort_unstable_by(|a, b| name(b).cmp(name(a)));
            } else {
                kids.reverse();
            }
            let b = &mut self.nodes;
            node.write_path(&mut self.path);
            let p = std::str::from_utf8(&self.path).expect("paths are UTF-8");
            b.put_ustring(Some(if p == "/" { "" } else { p }));
            b.put_buffer(node.data());
            let acl = node.acl();
            let r = if is_open(acl) {
                OPEN_ACL_REF
            } else {
                match self.refs.get(&node.acl_ref()) {
                    Some(r) => *r,
                    None => {
                        let r = self.lists.len() as i64 + 1;
                        self.refs.insert(node.acl_ref(), r);
                        self.lists.push(acl.clone());
                        r
                    }
                }
            };
            b.put_i64(r);
            node.stat().write(b);
            n += 1;
            self.written += 1;
        }
        self.stack.is_empty()
    }

    /// Assemble the file: header, sessions, ACL cache, nodes, seals, and `digest` as
    /// (zxid, tree digest) of the last txn applied when the walk finished.
    pub fn finish(self, digest: Option<(i64, i64)>) -> Vec<u8> {
        let mut head = Vec::with_capacity(1024);
        head.put_i32(MAGIC);
        head.put_i32(VERSION);
        head.put_i64(-1);
        let mut c = Checked {
            buf: self.with_head(head),
        };
        c.buf.put_ustring(Some("/"));
        c.seal();
        if let Some((zxid, digest)) = digest {
            c.buf.put_i64(zxid);
            c.buf.put_i32(corral_proto::txn::DIGEST_VERSION);
            c.buf.put_i64(digest);
            c.seal();
        }
        c.buf
    }

    /// `head`, the sessions, the ACL cache and the nodes, in the buffer the nodes were written
    /// to (a million nodes make a buffer of ~200 MB: moved up once, not copied to a new one).
    fn with_head(self, mut head: Vec<u8>) -> Vec<u8> {
        head.put_i32(self.sessions.len() as i32);
        for (id, to) in &self.sessions {
            head.put_i64(*id);
            head.put_i32(*to);
        }
        head.put_i32(self.lists.len() as i32);
        for (i, l) in self.lists.iter().enumerate() {
            head.put_i64(i as i64 + 1);
            l.as_ref().write(&mut head);
        }
        let mut buf = self.nodes;
        buf.reserve(head.len() + 64);
        buf.splice(0..0, head);
        buf
    }
}

impl Fuzzy {
    /// The SNAP payload a leader writes to a learner after the SNAP packet (§4.7): sessions,
    /// ACL cache, nodes, the "/" end marker and "BenWasHere". No file header, seal or digest.
    pub fn finish_stream(self) -> Vec<u8> {
        let mut b = self.with_head(Vec::new());
        b.put_ustring(Some("/"));
        b.put_ustring(Some(SNAP_STREAM_END));
        b
    }
}

/// What ends a SNAP payload on the quorum stream (the learner refuses anything else).
pub const SNAP_STREAM_END: &str = "BenWasHere";

/// Serialize `tree` and `sessions` as a SNAP payload in one go.
pub fn serialize_snap_stream(tree: &DataTree, sessions: Vec<(i64, i32)>) -> Vec<u8> {
    let mut f = Fuzzy::start(tree, sessions);
    while !f.step(tree, usize::MAX) {}
    f.finish_stream()
}

/// A decoded SNAP payload: the tree, the sessions and the bytes it took.
pub type SnapStream = (DataTree, Vec<(i64, i32)>, usize);

/// Decode a SNAP payload from the start of `bytes`: the tree, the sessions and how many bytes
/// it took. `Ok(None)` when `bytes` ends before the payload does (read more and retry).
pub fn deserialize_snap_stream(
    bytes: &[u8],
    max_len: usize,
) -> Result<Option<SnapStream>, SnapError> {
    let mut r = Reader::with_max_len(bytes, max_len);
    let res = (|| {
        let e = |r: &Reader<'_>, x: corral_proto::DecodeError| (r.position(), x);
        let n = r.read_i32().map_err(|x| e(&r, x))?;
        if n < 0 {
            return Err((
                r.position(),
                corral_proto::DecodeError::malformed("session count", &n.to_string()),
            ));
        }
        let mut sessions = Vec::new();
        for _ in 0..n {
            let id = r.read_i64().map_err(|x| e(&r, x))?;
            let to = r.read_i32().map_err(|x| e(&r, x))?;
            sessions.push((id, to));
        }
        Ok(sessions)
    })();
    let sessions = match res {
        Ok(s) => s,
        Err((_, corral_proto::DecodeError::UnexpectedEof { .. })) => return Ok(None),
        Err((at, x)) => return Err(err(at, x.to_string())),
    };
    let tree = match read_tree_body(&mut r) {
        Ok(t) => t,
        Err(BodyError::Eof(_)) => return Ok(None),
        Err(BodyError::Bad(e)) => return Err(e),
    };
    let at = r.position();
    match String::read(&mut r) {
        Ok(end) if end == SNAP_STREAM_END => Ok(Some((tree, sessions, r.position()))),
        Ok(end) => Err(err(
            at,
            format!("SNAP payload ends with {end:?}, not \"BenWasHere\""),
        )),
        Err(corral_proto::DecodeError::UnexpectedEof { .. }) => Ok(None),
        Err(x) => Err(err(at, x.to_string())),
    }
}

enum BodyError {
    /// The input ended early (a SNAP payload still arriving, or a cut file).
    Eof(SnapError),
    Bad(SnapError),
}

/// ACL cache, nodes and the "/" end marker, as in a snapshot file and a SNAP payload.
fn read_tree_body(r: &mut Reader<'_>) -> Result<DataTree, BodyError> {
    let e = |r: &Reader<'_>, x: corral_proto::DecodeError| match x {
        // A vector count larger than the bytes at hand also means "not all here yet".
        x @ (corral_proto::DecodeError::UnexpectedEof { .. }
        | corral_proto::DecodeError::BadLength { len: 0.., .. }) => {
            BodyError::Eof(err(r.position(), x.to_string()))
        }
        x => BodyError::Bad(err(r.position(), x.to_string())),
    };
    let bad = |at: usize, m: String| BodyError::Bad(err(at, m));
    let mut tree = DataTree::empty();
    let mut cache: HashMap<i64, AclRef> = HashMap::new();
    let n = r.read_i32().map_err(|x| e(r, x))?;
    if n < 0 {
        return Err(bad(r.position(), format!("negative ACL cache size {n}")));
    }
    for _ in 0..n {
        let id = r.read_i64().map_err(|x| e(r, x))?;
        let acl = Vec::<Acl>::read(r).map_err(|x| e(r, x))?;
        cache.insert(id, tree.intern_acl(&acl));
    }
    let open = tree.intern_acl(&corral_tree::acl::open_acl());
    // A node takes at least 4 + 4 + 8 + 60 bytes: room for what the input can hold, at most.
    tree.reserve((r.remaining() / 128).min(64 << 20));
    loop {
        let at = r.position();
        let path = r
            .read_ustring_ref()
            .map_err(|x| e(r, x))?
            .ok_or_else(|| bad(at, "null path".into()))?;
        if path == "/" {
            break;
        }
        let data = r.read_buffer_ref().map_err(|x| e(r, x))?;
        let aref = r.read_i64().map_err(|x| e(r, x))?;
        let stat = StatPersisted::read(r).map_err(|x| e(r, x))?;
        let acl = if aref == OPEN_ACL_REF {
            open
        } else {
            *cache
                .get(&aref)
                .ok_or_else(|| bad(at, format!("node {path:?} uses unknown ACL ref {aref}")))?
        };
        let p = if path.is_empty() { "/" } else { &path };
        if !tree.insert_raw(p, data, acl, stat) {
            return Err(bad(
                at,
                if tree.get(p).is_some() {
                    format!("node {p:?} appears twice")
                } else if corral_tree::path::parent(p).is_none() {
                    format!("bad path {p:?}")
                } else {
                    format!("node {p:?} comes before its parent")
                },
            ));
        }
    }
    // As ZooKeeper's setupQuota after loading: find the quotas and recount them.
    tree.setup_quotas();
    Ok(tree)
}

/// Why a snapshot could not be loaded; `offset` is in the uncompressed stream.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("at offset {offset}: {reason}")]
pub struct SnapError {
    pub offset: usize,
    pub reason: String,
}

fn err(offset: usize, reason: impl Into<String>) -> SnapError {
    SnapError {
        offset,
        reason: reason.into(),
    }
}

/// Decode an uncompressed snapshot stream into a tree.
pub fn deserialize(bytes: &[u8], max_len: usize) -> Result<(DataTree, Meta), SnapError> {
    deserialize_beside(bytes, max_len, |a, b| {
        a();
        b();
    })
}

/// `deserialize`, with `beside` running the checksum of a large stream's prefix and the
/// parse (`Disk::beside`: at the same time where there is a second core).
pub fn deserialize_beside(
    bytes: &[u8],
    max_len: usize,
    beside: impl FnOnce(&mut (dyn FnMut() + Send), &mut dyn FnMut()),
) -> Result<(DataTree, Meta), SnapError> {
    // The seals checksum everything before them, i.e. all but the last 13 (no digest) or 46
    // bytes: a large stream is summed up to there apart from building the tree.
    let split = bytes.len().saturating_sub(46);
    if split < 1 << 20 {
        let parsed = parse(bytes, max_len);
        return check_seals(bytes, parsed?, adler::Adler32::new(), 0);
    }
    let (mut prefix, mut parsed) = (None, None);
    beside(
        &mut || {
            let mut a = adler::Adler32::new();
            a.write_slice(&bytes[..split]);
            prefix = Some(a);
        },
        &mut || parsed = Some(parse(bytes, max_len)),
    );
    let parsed = parsed.expect("beside ran the parse");
    check_seals(bytes, parsed?, prefix.expect("beside ran the sum"), split)
}

/// Header, sessions and tree; the reader is left at the first seal.
fn parse(bytes: &[u8], max_len: usize) -> Result<(DataTree, Meta, Reader<'_>), SnapError> {
    let mut r = Reader::with_max_len(bytes, max_len);
    let e = |r: &Reader<'_>, x: corral_proto::DecodeError| err(r.position(), x.to_string());
    let magic = r.read_i32().map_err(|x| e(&r, x))?;
    if magic != MAGIC {
        return Err(err(
            0,
            format!("bad magic 0x{magic:08x} (expected 0x5a4b534e \"ZKSN\")"),
        ));
    }
    let version = r.read_i32().map_err(|x| e(&r, x))?;
    if version != VERSION {
        return Err(err(4, format!("unsupported snapshot version {version}")));
    }
    r.read_i64().map_err(|x| e(&r, x))?;
    let mut meta = Meta::default();
    let n = r.read_i32().map_err(|x| e(&r, x))?;
    if n < 0 {
        return Err(err(r.position(), format!("negative session count {n}")));
    }
    for _ in 0..n {
        let id = r.read_i64().map_err(|x| e(&r, x))?;
        let to = r.read_i32().map_err(|x| e(&r, x))?;
        meta.sessions.push((id, to));
    }
    let tree = match read_tree_body(&mut r) {
        Ok(t) => t,
        Err(BodyError::Eof(e) | BodyError::Bad(e)) => return Err(e),
    };
    Ok((tree, meta, r))
}

/// Check the seal(s) after the tree and read the digest section. `prefix` is the Adler-32 of
/// `bytes[..split]`, continued from there when a seal lies beyond it.
fn check_seals(
    bytes: &[u8],
    (tree, mut meta, mut r): (DataTree, Meta, Reader<'_>),
    prefix: adler::Adler32,
    split: usize,
) -> Result<(DataTree, Meta), SnapError> {
    let sum_to = |end: usize| -> i64 {
        let mut a = if end >= split {
            prefix
        } else {
            adler::Adler32::new()
        };
        a.write_slice(&bytes[if end >= split { split } else { 0 }..end]);
        a.checksum() as i64
    };
    let e = |r: &Reader<'_>, x: corral_proto::DecodeError| err(r.position(), x.to_string());
    let sealed_len = r.position();
    let sum = r.read_i64().map_err(|x| e(&r, x))?;
    let slash = String::read(&mut r).map_err(|x| e(&r, x))?;
    let computed = sum_to(sealed_len);
    if sum != computed || slash != "/" {
        return Err(err(
            sealed_len,
            format!("checksum mismatch: stored 0x{sum:x}, computed 0x{computed:x}"),
        ));
    }
    if r.is_empty() {
        return Ok((tree, meta));
    }
    let zxid = r.read_i64().map_err(|x| e(&r, x))?;
    let dv = r.read_i32().map_err(|x| e(&r, x))?;
    if dv != corral_proto::txn::DIGEST_VERSION {
        return Err(err(
            r.position() - 4,
            format!("unsupported digest version {dv}"),
        ));
    }
    let digest = r.read_i64().map_err(|x| e(&r, x))?;
    let sealed_len = r.position();
    let sum = r.read_i64().map_err(|x| e(&r, x))?;
    let computed = sum_to(sealed_len);
    if sum != computed {
        return Err(err(
            sealed_len,
            format!("second checksum mismatch: stored 0x{sum:x}, computed 0x{computed:x}"),
        ));
    }
    meta.digest = Some((zxid, digest));
    Ok((tree, meta))
}

/// Compress an uncompressed stream for writing.
pub fn compress(raw: &[u8], c: Compression) -> std::borrow::Cow<'_, [u8]> {
    std::borrow::Cow::Owned(match c {
        Compression::None => return std::borrow::Cow::Borrowed(raw),
        Compression::Gz => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(raw).expect("writing to a Vec cannot fail");
            enc.finish().expect("writing to a Vec cannot fail")
        }
        Compression::Snappy => {
            let mut out = Vec::with_capacity(raw.len() / 2 + 16);
            out.extend_from_slice(&SNAPPY_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for chunk in raw.chunks(SNAPPY_BLOCK) {
                let block = enc
                    .compress_vec(chunk)
                    .expect("a 32 KiB block always compresses");
                out.extend_from_slice(&(block.len() as i32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            out
        }
    })
}

/// Undo `compress` (or ZooKeeper's own compression) for reading.
pub fn decompress(file: &[u8], c: Compression) -> Result<std::borrow::Cow<'_, [u8]>, SnapError> {
    use std::borrow::Cow;
    match c {
        Compression::None => Ok(Cow::Borrowed(file)),
        Compression::Gz => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(file)
                .read_to_end(&mut out)
                .map_err(|e| err(out.len(), format!("gzip: {e}")))?;
            Ok(Cow::Owned(out))
        }
        Compression::Snappy => {
            if file.len() < 16 || file[..8] != SNAPPY_MAGIC {
                return Err(err(0, "not a snappy-java stream (bad magic)"));
            }
            let mut out = Vec::new();
            let mut off = 16;
            let mut dec = snap::raw::Decoder::new();
            while off < file.len() {
                if file.len() - off < 4 {
                    return Err(err(off, "snappy block length cut short"));
                }
                let len = i32::from_be_bytes(file[off..off + 4].try_into().expect("4 bytes"));
                if len < 0 || off + 4 + len as usize > file.len() {
                    return Err(err(
                        off,
                        format!("snappy block of {len} bytes runs past the end"),
                    ));
                }
                let block = &file[off + 4..off + 4 + len as usize];
                let mut d = dec
                    .decompress_vec(block)
                    .map_err(|e| err(off, format!("snappy: {e}")))?;
                out.append(&mut d);
                off += 4 + len as usize;
            }
            Ok(Cow::Owned(out))
        }
    }
}

/// `SnapStream.isValidSnapshot`: the cheap check ZooKeeper uses to pick candidates.
pub fn looks_valid(file: &[u8], c: Compression) -> bool {
    let head = &file[..file.len().min(LOOKS_VALID_HEAD)];
    let tail = &file[file.len().saturating_sub(LOOKS_VALID_TAIL)..];
    looks_valid_ends(file.len() as u64, head, tail, c)
}

/// Bytes of a file's start and end that [`looks_valid_ends`] needs.
pub const LOOKS_VALID_HEAD: usize = 8;
pub const LOOKS_VALID_TAIL: usize = 5;

/// [`looks_valid`] from the file's length, its first [`LOOKS_VALID_HEAD`] bytes and its last
/// [`LOOKS_VALID_TAIL`] bytes (fewer when the file is shorter).
pub fn looks_valid_ends(len: u64, head: &[u8], tail: &[u8], c: Compression) -> bool {
    match c {
        Compression::None => len >= 10 && tail == [0, 0, 0, 1, b'/'],
        Compression::Gz => head.len() >= 2 && head[..2] == [0x1f, 0x8b],
        Compression::Snappy => head.len() >= 8 && head[..8] == SNAPPY_MAGIC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// A tree with `n` nodes `/n<i>` of 64 KiB each, created by txns 1..=n.
    fn big_nodes(n: i32) -> DataTree {
        use corral_proto::txn::{CreateTxn, TxnBody, TxnHeader};
        let mut t = DataTree::new();
        for i in 0..n {
            let h = TxnHeader {
                client_id: 1,
                cxid: i,
                zxid: i as i64 + 1,
                time: 1,
                r#type: 1,
            };
            let body = TxnBody::Create(CreateTxn {
                path: format!("/n{i}"),
                data: Some(vec![i as u8; 64 << 10]),
                acl: corral_tree::acl::open_acl(),
                ephemeral: false,
                parent_cversion: -1,
            });
            assert_eq!(t.apply(&h, &body).err, 0);
        }
        t
    }

    // A byte bound stops a step after the node that crosses it (one 64 KiB node per step
    // here) and the walk still writes exactly what an unbounded one does.
    #[test]
    fn byte_bounded_steps_write_the_same_snapshot() {
        let t = big_nodes(5);
        let mut f = Fuzzy::start(&t, vec![]);
        let mut steps = 1;
        while !f.step_bounded(&t, usize::MAX, 1024) {
            steps += 1;
        }
        assert!(steps >= 5, "{steps} steps");
        assert_eq!(f.finish(None), serialize(&t, &Meta::default()));
    }

    // A stream over 1 MiB is checksummed on a second thread while the tree is built: both
    // seals still catch a flipped byte anywhere before them, and an intact stream loads.
    #[test]
    fn large_snapshot_seals_are_checked() {
        let t = big_nodes(24);
        for digest in [None, Some((24, t.digest() as i64))] {
            let meta = Meta {
                sessions: vec![(7, 3000)],
                digest,
            };
            let raw = serialize(&t, &meta);
            assert!(raw.len() > 1 << 20);
            let (back, m) = deserialize(&raw, usize::MAX).expect("intact");
            assert_eq!((back.digest(), m), (t.digest(), meta.clone()));
            for at in [100, raw.len() / 2, raw.len() - 60] {
                let mut bad = raw.clone();
                bad[at] ^= 0x01;
                let e = deserialize(&bad, usize::MAX).expect_err("flipped byte");
                assert!(
                    e.reason.contains("checksum") || at < raw.len() / 2,
                    "{at}: {e}"
                );
            }
        }
    }

    // The fresh standalone snapshot.0 is 457 bytes with the verified seals (reference §6.3).
    #[test]
    fn empty_snapshot_matches_zookeeper() {
        let t = DataTree::new();
        let raw = serialize(
            &t,
            &Meta {
                sessions: vec![],
                digest: Some((0, 0)),
            },
        );
        assert_eq!(raw.len(), 457);
        let tail = hex(&raw[raw.len() - 46..]);
        assert!(tail.starts_with("00000000b8a23b49000000012f"), "{tail}");
        assert!(tail.ends_with("0000000095b93d59000000012f"), "{tail}");
        let (back, meta) = deserialize(&raw, 1 << 20).unwrap();
        assert_eq!(back.digest(), t.digest());
        assert_eq!(back.node_count(), 4);
        assert_eq!(meta.digest, Some((0, 0)));
        assert_eq!(back.get("/zookeeper/config").unwrap().stat().aversion, -1);
    }

    // Every compression method round-trips and passes the quick validity check.
    #[test]
    fn compression_round_trips() {
        let raw = serialize(
            &DataTree::new(),
            &Meta {
                sessions: vec![(7, 30000)],
                digest: None,
            },
        );
        for c in [Compression::None, Compression::Gz, Compression::Snappy] {
            let f = compress(&raw, c);
            assert!(looks_valid(&f, c) || c == Compression::None && !looks_valid(&f, c));
            assert_eq!(decompress(&f, c).unwrap(), raw);
        }
    }

    // A flipped byte anywhere in the node section is caught with its offset.
    #[test]
    fn corruption_is_detected() {
        let raw = serialize(
            &DataTree::new(),
            &Meta {
                sessions: vec![],
                digest: Some((0, 0)),
            },
        );
        let mut bad = raw.clone();
        bad[60] ^= 0x01;
        assert!(deserialize(&bad, 1 << 20).is_err());
    }

    // Names carry the zxid in hex and the compression suffix.
    #[test]
    fn names() {
        assert_eq!(file_name(0x1f, Compression::Gz), "snapshot.1f.gz");
        assert_eq!(
            parse_name("snapshot.1f.snappy"),
            Some((0x1f, Compression::Snappy))
        );
        assert_eq!(parse_name("snapshot.0"), Some((0, Compression::None)));
        assert_eq!(parse_name("snapshot.x"), None);
    }
}

#[cfg(test)]
mod snap_stream_tests {
    use super::*;
    use corral_proto::records::Acl;
    use corral_proto::txn::{CreateTxn, TxnBody, TxnHeader};

    // The SNAP payload round-trips, reports "need more" for every proper prefix, and refuses a
    // wrong end marker (§4.7).
    #[test]
    fn snap_stream_round_trip_and_prefixes() {
        let mut t = DataTree::new();
        let h = TxnHeader {
            client_id: 0x42,
            cxid: 1,
            zxid: 0x100000001,
            time: 5,
            r#type: 1,
        };
        let acl = vec![Acl::new(31, "digest", "u:x")];
        t.apply(
            &h,
            &TxnBody::Create(CreateTxn {
                path: "/a".into(),
                data: Some(b"hello".to_vec()),
                acl,
                ephemeral: true,
                parent_cversion: 1,
            }),
        );
        let blob = serialize_snap_stream(&t, vec![(0x42, 30000)]);
        let (t2, sessions, used) = deserialize_snap_stream(&blob, usize::MAX).unwrap().unwrap();
        assert_eq!(used, blob.len());
        assert_eq!(sessions, vec![(0x42, 30000)]);
        assert_eq!(t2.digest(), t.digest());
        assert_eq!(t2.ephemerals_of(0x42), vec!["/a".to_string()]);
        for cut in 0..blob.len() {
            assert!(deserialize_snap_stream(&blob[..cut], usize::MAX)
                .unwrap()
                .is_none());
        }
        let mut bad = blob.clone();
        let n = bad.len();
        bad[n - 1] = b'X';
        assert!(deserialize_snap_stream(&bad, usize::MAX).is_err());
    }
}
