//! Durability: corral's data directory is ZooKeeper's own, in both directions, and survives
//! crashes (issue 3).
//!
//! * Both-way compatibility: the real ZooKeeper 3.8.0 starts on a dataDir that corral wrote and
//!   serves the very same tree (every node's data, ACL, full stat and sorted children, and the
//!   same tree digest), and corral starts on a dataDir the real ZooKeeper wrote, for snapshot
//!   compression none, gz and snappy, with `snapCount=100` so both servers roll logs and write
//!   snapshots every 50–100 txns. Each scenario goes three servers deep (corral → ZooKeeper →
//!   corral and ZooKeeper → corral → ZooKeeper), each server adding and changing nodes of every
//!   kind, and a session created on the first server is resumed on the next two.
//! * Crash safety: kill -9 under pipelined concurrent writes; every write whose reply arrived is
//!   there after the restart (a write without a reply is unknown, not absent).
//! * Damaged logs: a torn tail of the newest log is cut with a warning; a bad entry followed by
//!   valid ones stops start-up naming the file and offset, unless `corral.truncateCorruptLog`.
//! * Sessions across a restart: resumed within the timeout they keep their ephemerals; those of
//!   a session that does not come back go after its timeout.
//! * More both-way cases: a separate dataLogDir, `preAllocSize=16`, kill -9 of either server with
//!   the other one starting on the data, containers/TTL nodes removed by either reaper,
//!   ephemerals of a session missing from the snapshot, a torn entry ZooKeeper left behind.
//!
//! Everything talks to the servers through the small raw jute client below (built on
//! corral-proto), which gives exact control over null vs empty data and full stats. Tests that
//! need the real ZooKeeper skip loudly without it (and fail under CI=true).
//! `DURABILITY_SHOW_LOGS=1` prints the first two servers' warnings of each compatibility run.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use corral_proto::jute::{Jute, Reader};
use corral_proto::records::*;
use corral_proto::request::*;
use corral_proto::ErrorCode;
use corral_testkit::{raw, ServerProcess};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn corral_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_corral"))
}

/// `base64(sha1("super:pw"))`: the walker authenticates as super to read every node.
const SUPER_DIGEST: &str = "super:0bX78nEegDzJM3ju0iLBEJdWzjg=";
/// The digest ACL id of `bob:secret` (zookeeper-wire.md §7).
const BOB_ID: &str = "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=";
/// Bound on reading one frame from a server (or writing to it), so a hung server fails the test
/// instead of hanging it.
const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest reply frame this suite reads: 4 MiB, more than the 1 MiB most tests allow (the
/// cap it has always used).
const FRAME_BYTES_MAX: usize = 4 << 20;

// ---------------------------------------------------------------------------------------------
// Raw client
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Reply {
    xid: i32,
    zxid: i64,
    err: i32,
    body: Vec<u8>,
}

struct Conn {
    s: TcpStream,
    out: Vec<u8>,
    xid: i32,
    session: i64,
    passwd: Vec<u8>,
    timeout: i32,
    /// The highest zxid in a reply so far (what a client sends as lastZxidSeen on resume).
    last_zxid: i64,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn read_frame(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    raw::read_frame(s, FRAME_BYTES_MAX, Instant::now() + READ_TIMEOUT)
}

impl Conn {
    /// A new session.
    fn connect(addr: SocketAddr, timeout_ms: i32) -> io::Result<Conn> {
        Conn::handshake(addr, 0, &[0; 16], 0, timeout_ms)?
            .ok_or_else(|| other("the server refused a new session"))
    }

    /// Resumes `session` as a client does after losing its connection, telling the server the
    /// last zxid it saw (a server that has not got that far must refuse). `None` when the server
    /// refuses (expired or unknown session, or behind the client).
    fn resume(
        addr: SocketAddr,
        session: i64,
        passwd: &[u8],
        last_zxid_seen: i64,
        timeout_ms: i32,
    ) -> Option<Conn> {
        let c =
            Conn::handshake(addr, session, passwd, last_zxid_seen, timeout_ms).expect("handshake");
        if let Some(c) = &c {
            assert_eq!(c.session, session, "resumed the same session");
        }
        c
    }

    /// Handshake for `session` (0 = new). `None` when the server refuses it (ZooKeeper answers
    /// timeout 0 / session 0 and closes, or just closes).
    fn handshake(
        addr: SocketAddr,
        session: i64,
        passwd: &[u8],
        last_zxid_seen: i64,
        timeout_ms: i32,
    ) -> io::Result<Option<Conn>> {
        let mut s = raw::connect(addr, Instant::now() + Duration::from_secs(5))?;
        let mut body = Vec::new();
        Connect {
            req: ConnectRequest {
                protocol_version: 0,
                last_zxid_seen,
                time_out: timeout_ms,
                session_id: session,
                passwd: Some(passwd.to_vec()),
            },
            read_only: Some(false),
        }
        .write(&mut body);
        raw::send_frame(&mut s, &body, Instant::now() + READ_TIMEOUT)?;
        let resp = match read_frame(&mut s) {
            Ok(r) => r,
            Err(e)
                if session != 0
                    && matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                    ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let c = ConnectResponse::read(&mut Reader::new(&resp)).map_err(other)?;
        if c.session_id == 0 || c.time_out <= 0 {
            return Ok(None);
        }
        Ok(Some(Conn {
            s,
            out: Vec::new(),
            xid: 0,
            session: c.session_id,
            passwd: c.passwd.unwrap_or_default(),
            timeout: c.time_out,
            last_zxid: last_zxid_seen,
        }))
    }

    /// Queue a request (sent at the next `flush`); returns its xid.
    fn queue(&mut self, req: &Request) -> i32 {
        let xid = match req {
            Request::Ping => xid::PING,
            Request::Auth(_) => xid::AUTH,
            _ => {
                self.xid += 1;
                self.xid
            }
        };
        let mut body = Vec::new();
        RequestHeader {
            xid,
            r#type: req.op_code(),
        }
        .write(&mut body);
        req.write(&mut body);
        self.out.extend_from_slice(&frame(&body));
        xid
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = raw::write_all_by(&mut self.s, &self.out, Instant::now() + READ_TIMEOUT);
        self.out.clear();
        r
    }

    /// The next reply, skipping watch notifications.
    fn recv(&mut self) -> io::Result<Reply> {
        loop {
            let f = read_frame(&mut self.s)?;
            let mut r = Reader::new(&f);
            let h = ReplyHeader::read(&mut r).map_err(other)?;
            if h.xid == xid::NOTIFICATION {
                continue;
            }
            self.last_zxid = self.last_zxid.max(h.zxid);
            return Ok(Reply {
                xid: h.xid,
                zxid: h.zxid,
                err: h.err,
                body: r.rest().to_vec(),
            });
        }
    }

    fn call(&mut self, req: &Request) -> io::Result<Reply> {
        let xid = self.queue(req);
        self.flush()?;
        let rep = self.recv()?;
        assert_eq!(rep.xid, xid, "replies come in request order");
        Ok(rep)
    }

    /// Runs all `reqs` with up to `window` in flight; the replies in request order.
    fn pipeline(&mut self, reqs: &[Request], window: usize) -> io::Result<Vec<Reply>> {
        let mut out = Vec::with_capacity(reqs.len());
        let mut xids = VecDeque::new();
        let mut next = 0;
        while out.len() < reqs.len() {
            if xids.len() <= window / 2 {
                while next < reqs.len() && xids.len() < window {
                    xids.push_back(self.queue(&reqs[next]));
                    next += 1;
                }
                self.flush()?;
            }
            let rep = self.recv()?;
            assert_eq!(
                Some(rep.xid),
                xids.pop_front(),
                "replies come in request order"
            );
            out.push(rep);
        }
        Ok(out)
    }

    fn auth(&mut self, user_pw: &str) {
        let rep = self
            .call(&Request::Auth(AuthPacket {
                r#type: 0,
                scheme: "digest".into(),
                auth: Some(user_pw.as_bytes().to_vec()),
            }))
            .expect("auth");
        assert_eq!(rep.err, 0, "auth {user_pw}");
    }

    fn ping(&mut self) -> io::Result<()> {
        self.call(&Request::Ping).map(|_| ())
    }

    fn close(mut self) {
        let _ = self.call(&Request::CloseSession);
    }
}

// Request builders.

fn acl_open() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}

fn create_req(path: &str, data: Option<&[u8]>, acl: Vec<Acl>, flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: data.map(<[u8]>::to_vec),
        acl,
        flags,
    }
}

fn create(path: &str, data: Option<&[u8]>, acl: Vec<Acl>, flags: i32) -> Request {
    Request::Create(create_req(path, data, acl, flags))
}

fn create2(path: &str, data: Option<&[u8]>, acl: Vec<Acl>, flags: i32) -> Request {
    Request::Create2(create_req(path, data, acl, flags))
}

fn container(path: &str, data: Option<&[u8]>, acl: Vec<Acl>) -> Request {
    Request::CreateContainer(create_req(path, data, acl, 4))
}

fn ttl_node(path: &str, data: Option<&[u8]>, acl: Vec<Acl>, flags: i32, ttl: i64) -> Request {
    Request::CreateTtl(CreateTtlRequest {
        path: path.into(),
        data: data.map(<[u8]>::to_vec),
        acl,
        flags,
        ttl,
    })
}

fn set_data(path: &str, data: Option<&[u8]>, version: i32) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: data.map(<[u8]>::to_vec),
        version,
    })
}

fn set_acl(path: &str, acl: Vec<Acl>, version: i32) -> Request {
    Request::SetAcl(SetAclRequest {
        path: path.into(),
        acl,
        version,
    })
}

fn delete(path: &str, version: i32) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}

fn get_data(path: &str) -> Request {
    Request::GetData(PathWatchRequest {
        path: path.into(),
        watch: false,
    })
}

fn exists(path: &str) -> Request {
    Request::Exists(PathWatchRequest {
        path: path.into(),
        watch: false,
    })
}

fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

// ---------------------------------------------------------------------------------------------
// Tree walk and digest
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeState {
    data: Option<Vec<u8>>,
    stat: Stat,
    acl: Vec<Acl>,
    /// Sorted.
    children: Vec<String>,
}

type Tree = BTreeMap<String, NodeState>;

/// Reads every node (getData, getACL, getChildren, pipelined level by level) as super.
fn walk(addr: SocketAddr) -> Tree {
    let mut c = Conn::connect(addr, 30_000).expect("walker connects");
    c.auth("super:pw");
    let mut tree = Tree::new();
    let mut level = vec!["/".to_string()];
    while !level.is_empty() {
        let mut reqs = Vec::with_capacity(level.len() * 3);
        for p in &level {
            reqs.push(get_data(p));
            reqs.push(Request::GetAcl(PathRequest { path: p.clone() }));
            reqs.push(Request::GetChildren(PathWatchRequest {
                path: p.clone(),
                watch: false,
            }));
        }
        let reps = c.pipeline(&reqs, 256).expect("walk");
        let mut next = Vec::new();
        for (i, p) in level.iter().enumerate() {
            let (d, a, ch) = (&reps[3 * i], &reps[3 * i + 1], &reps[3 * i + 2]);
            assert_eq!((d.err, a.err, ch.err), (0, 0, 0), "walking {p}");
            let gd = GetDataResponse::from_bytes(&d.body).expect("GetDataResponse");
            let ga = GetAclResponse::from_bytes(&a.body).expect("GetAclResponse");
            let mut kids = GetChildrenResponse::from_bytes(&ch.body)
                .expect("children")
                .children;
            kids.sort();
            assert_eq!(gd.stat, ga.stat, "{p}: the stat changed during the walk");
            assert_eq!(
                gd.stat.num_children as usize,
                kids.len(),
                "{p}: numChildren"
            );
            next.extend(kids.iter().map(|k| join(p, k)));
            tree.insert(
                p.clone(),
                NodeState {
                    data: gd.data,
                    stat: gd.stat,
                    acl: ga.acl,
                    children: kids,
                },
            );
        }
        level = next;
    }
    c.close();
    tree
}

/// Fails with the first differences (at most 10) between two walks.
fn assert_same_tree(what: &str, expected: &Tree, actual: &Tree) {
    let mut diffs = Vec::new();
    for (p, e) in expected {
        match actual.get(p) {
            None => diffs.push(format!("{p}: missing")),
            Some(a) if a != e => diffs.push(format!("{p}:\n  expected {e:?}\n  actual   {a:?}")),
            _ => {}
        }
    }
    for p in actual.keys().filter(|p| !expected.contains_key(*p)) {
        diffs.push(format!("{p}: unexpected node {:?}", actual[p]));
    }
    if !diffs.is_empty() {
        let n = diffs.len();
        diffs.truncate(10);
        panic!(
            "{what}: {n} difference(s) in a tree of {} nodes, first ones:\n{}",
            expected.len(),
            diffs.join("\n")
        );
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut c = !0u32;
    for &b in bytes {
        c = t[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// The tree digest as ZooKeeper computes it (zookeeper-wire.md §5.3) from a walk: the stored
/// cversion is `(client cversion + numChildren) / 2`; containers and TTL nodes show
/// ephemeralOwner 0 to clients, so their stored owner comes from `owners`.
fn tree_digest(tree: &Tree, owners: &HashMap<String, i64>) -> u64 {
    let mut sum = 0u64;
    for (p, n) in tree {
        if p.starts_with("/zookeeper/") {
            continue;
        }
        let s = &n.stat;
        let owner = owners.get(p).copied().unwrap_or(s.ephemeral_owner);
        let mut b = Vec::with_capacity(p.len() + 128);
        if p != "/" {
            b.extend_from_slice(p.as_bytes());
        }
        if let Some(d) = &n.data {
            b.extend_from_slice(d);
        }
        for v in [s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        let cversion = (s.cversion + s.num_children) / 2;
        for v in [s.version, cversion, s.aversion] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&owner.to_be_bytes());
        sum = sum.wrapping_add(crc32(&b) as u64);
    }
    sum
}

#[test]
fn digest_of_the_empty_tree_matches_zookeeper() {
    // The verified value (zookeeper-wire.md §5.3): the helper above computes ZooKeeper's digest.
    let zero = Stat::default();
    let mut t = Tree::new();
    for p in ["/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"] {
        t.insert(
            p.into(),
            NodeState {
                data: Some(vec![]),
                stat: zero.clone(),
                acl: vec![],
                children: vec![],
            },
        );
    }
    t.get_mut("/").unwrap().stat.num_children = 0;
    assert_eq!(tree_digest(&t, &HashMap::new()), 0x51c6_d660);
}

// ---------------------------------------------------------------------------------------------
// Data directory inspection
// ---------------------------------------------------------------------------------------------

fn version2(data_dir: &Path) -> PathBuf {
    data_dir.join("version-2")
}

/// (zxid, file name) of the files in `version-2` named `<prefix>.<hex>[.suffix]`, ascending.
fn files(data_dir: &Path, prefix: &str) -> Vec<(i64, String)> {
    let mut v: Vec<(i64, String)> = std::fs::read_dir(version2(data_dir))
        .expect("version-2 exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| {
            let hex = n.strip_prefix(prefix)?.strip_prefix('.')?;
            let hex = hex.split('.').next()?;
            let z = u64::from_str_radix(hex, 16).ok()?;
            Some((z as i64, n))
        })
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// Workload: nodes of every kind, written by one server and changed by the next
// ---------------------------------------------------------------------------------------------

/// CONTAINER's stored ephemeralOwner (`EphemeralType.CONTAINER`).
const CONTAINER_OWNER: i64 = i64::MIN;

/// A TTL node's stored ephemeralOwner (`EphemeralType.TTL.toEphemeralOwner`).
fn ttl_owner(ttl: i64) -> i64 {
    (0xffu64 << 56) as i64 | ttl
}

/// Plain persistent nodes per phase (a third of them with two children).
const PLAIN: usize = 1200;

#[derive(Default)]
struct Model {
    /// Stored ephemeralOwner of containers and TTL nodes (clients see 0 for them).
    owners: HashMap<String, i64>,
    /// Persistent nodes without children that a later phase may change or delete.
    leaves: Vec<String>,
    /// Persistent nodes that a later phase may add children to.
    parents: Vec<String>,
    /// Containers with a child `x` that a later phase may delete (emptying the container).
    containers: Vec<String>,
    /// Ephemerals of the live session.
    ephemerals: Vec<String>,
    /// Session id, password and last zxid seen of the session kept alive from server to server.
    live: (i64, Vec<u8>, i64),
}

fn random_data(rng: &mut StdRng, i: usize) -> Option<Vec<u8>> {
    match i % 6 {
        0 => None,
        1 => Some(Vec::new()),
        _ => {
            let n = rng.gen_range(1..=200);
            Some((0..n).map(|_| rng.gen()).collect())
        }
    }
}

fn random_acl(rng: &mut StdRng) -> Vec<Acl> {
    match rng.gen_range(0..9) {
        0..=2 => acl_open(),
        3 => vec![Acl::new(perms::READ, "world", "anyone")],
        4 => vec![Acl::new(perms::ALL, "digest", BOB_ID)],
        5 => vec![
            Acl::new(perms::ALL, "digest", BOB_ID),
            Acl::new(perms::READ | perms::ADMIN, "world", "anyone"),
        ],
        6 => vec![
            Acl::new(perms::READ | perms::WRITE, "ip", "127.0.0.1"),
            Acl::new(perms::ALL, "ip", "10.0.0.0/8"),
        ],
        7 => vec![Acl::new(perms::CREATE | perms::DELETE, "world", "anyone")],
        // Expanded to the creator's digest ids (bob and super here) before it is stored.
        _ => vec![Acl::new(perms::ALL, "auth", "")],
    }
}

/// Runs `reqs` and checks each reply's error code against `expect` (0 = success).
fn run_expect(c: &mut Conn, what: &str, batch: Vec<(Request, i32)>) -> Vec<Reply> {
    let reqs: Vec<Request> = batch.iter().map(|(r, _)| r.clone()).collect();
    let reps = c
        .pipeline(&reqs, 64)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    for ((req, want), rep) in batch.iter().zip(&reps) {
        assert_eq!(rep.err, *want, "{what}: {req:?}");
    }
    reps
}

/// The path in a create / create2 reply.
fn created_path(rep: &Reply) -> String {
    String::from_bytes(&rep.body).expect("created path")
}

/// Phase `phase` of the workload on the server at `addr`, under `/p<phase>`: a few thousand
/// nodes of every kind, deletes, setData/setACL, multis, failed writes (which consume zxids),
/// ephemerals of the live session `live`, of a closed session and (in phase 1) of a session
/// that expires; then changes to what earlier phases left.
fn populate(addr: SocketAddr, phase: usize, rng: &mut StdRng, model: &mut Model, live: &mut Conn) {
    let base = format!("/p{phase}");
    let b = |s: &str| format!("{base}/{s}");
    let mut c = Conn::connect(addr, 30_000).expect("connect");
    for conn in [&mut c, &mut *live] {
        conn.auth("super:pw");
        conn.auth("bob:secret");
    }

    // A session that will expire (4 s, the minimum) with ephemerals: they must be gone from the
    // tree that is compared, and its closeSession be in the data.
    let expiring = (phase == 1).then(|| {
        let mut e = Conn::connect(addr, 4_000).expect("connect");
        run_expect(&mut c, "exp", vec![(create(&base, None, acl_open(), 0), 0)]);
        run_expect(
            &mut c,
            "exp",
            vec![(create(&b("exp"), None, acl_open(), 0), 0)],
        );
        let batch = (0..10).map(|i| {
            (
                create(&b(&format!("exp/x{i}")), Some(b"e"), acl_open(), 1),
                0,
            )
        });
        run_expect(&mut e, "expiring ephemerals", batch.collect());
        e
    });
    if expiring.is_none() {
        run_expect(
            &mut c,
            "base",
            vec![(create(&base, None, acl_open(), 0), 0)],
        );
    }

    let mut batch = Vec::new();
    for dir in ["seq", "ctr", "ttl", "eph", "gone", "del", "m"] {
        batch.push((create2(&b(dir), Some(dir.as_bytes()), acl_open(), 0), 0));
    }
    // A quota on `del` (as zkCli's setquota makes it): both servers keep its stats node up to
    // date in memory, without txns, as nodes under it come and go (also in later phases).
    let quota = format!("/zookeeper/quota{base}");
    batch.push((create(&quota, None, acl_open(), 0), 0));
    batch.push((create(&format!("{quota}/del"), None, acl_open(), 0), 0));
    let limits = Some(&b"count=1000,bytes=-1"[..]);
    batch.push((
        create(
            &format!("{quota}/del/zookeeper_limits"),
            limits,
            acl_open(),
            0,
        ),
        0,
    ));
    let stats = Some(&b"count=0,bytes=0"[..]);
    batch.push((
        create(
            &format!("{quota}/del/zookeeper_stats"),
            stats,
            acl_open(),
            0,
        ),
        0,
    ));
    run_expect(&mut c, "dirs", batch);

    // Plain persistent nodes, a third of them with two children.
    let mut batch = Vec::new();
    for i in 0..PLAIN {
        let p = b(&format!("n{i}"));
        let d = random_data(rng, i);
        let acl = random_acl(rng);
        let req = if i % 2 == 0 {
            create(&p, d.as_deref(), acl, 0)
        } else {
            create2(&p, d.as_deref(), acl, 0)
        };
        batch.push((req, 0));
        if i % 3 == 0 {
            model.parents.push(p.clone());
            for j in 0..2 {
                let k = format!("{p}/k{j}");
                let d = random_data(rng, i + j + 1);
                batch.push((create(&k, d.as_deref(), random_acl(rng), 0), 0));
                model.leaves.push(k);
            }
        } else {
            model.leaves.push(p);
        }
    }
    // Persistent sequential.
    for i in 0..120 {
        let d = random_data(rng, i);
        batch.push((create2(&b("seq/s-"), d.as_deref(), random_acl(rng), 2), 0));
    }
    // Containers with a child each.
    for i in 0..40 {
        let p = b(&format!("ctr/c{i}"));
        batch.push((container(&p, Some(b"container"), random_acl(rng)), 0));
        batch.push((create(&format!("{p}/x"), None, acl_open(), 0), 0));
        model.owners.insert(p.clone(), CONTAINER_OWNER);
        model.containers.push(p);
    }
    // TTL nodes with long TTLs, some sequential, some with a child.
    for i in 0..40 {
        let p = b(&format!("ttl/t{i}"));
        let ttl = 3_600_000 + i as i64;
        let d = random_data(rng, i);
        batch.push((ttl_node(&p, d.as_deref(), random_acl(rng), 5, ttl), 0));
        model.owners.insert(p.clone(), ttl_owner(ttl));
        if i % 5 == 0 {
            batch.push((
                create(&format!("{p}/x"), Some(b"under ttl"), acl_open(), 0),
                0,
            ));
        }
    }
    let seq_ttl_from = batch.len();
    for _ in 0..15 {
        batch.push((
            ttl_node(&b("ttl/ts-"), Some(b"seq ttl"), acl_open(), 6, 7_200_000),
            0,
        ));
    }
    for i in 0..300 {
        batch.push((
            create(
                &b(&format!("del/d{i}")),
                Some(b"doomed"),
                random_acl(rng),
                0,
            ),
            0,
        ));
    }
    let big: Vec<u8> = (0..200_000).map(|_| rng.gen()).collect();
    batch.push((create(&b("big"), Some(&big), acl_open(), 0), 0));
    batch.push((
        create2(&b("ünïcødé-名前"), Some("ü".as_bytes()), random_acl(rng), 0),
        0,
    ));
    let reps = run_expect(&mut c, "nodes", batch);
    for rep in &reps[seq_ttl_from..seq_ttl_from + 15] {
        let r = Create2Response::from_bytes(&rep.body).expect("Create2Response");
        model.owners.insert(r.path, ttl_owner(7_200_000));
    }

    // Deletes, setData, setACL, multis and failing writes.
    let mut batch = Vec::new();
    for i in 0..250 {
        batch.push((
            delete(&b(&format!("del/d{i}")), if i % 2 == 0 { -1 } else { 0 }),
            0,
        ));
    }
    for i in 250..300 {
        model.leaves.push(b(&format!("del/d{i}")));
    }
    // A quarter of the new containers lose their child (and stay: the reaper is held off).
    let emptied: Vec<String> = (0..40)
        .step_by(4)
        .map(|i| b(&format!("ctr/c{i}")))
        .collect();
    for p in &emptied {
        batch.push((delete(&format!("{p}/x"), -1), 0));
    }
    model.containers.retain(|p| !emptied.contains(p));
    for round in 0..2 {
        for _ in 0..(if round == 0 { 250 } else { 80 }) {
            let i = rng.gen_range(0..PLAIN);
            let k = rng.gen_range(0..6);
            let d = random_data(rng, k);
            batch.push((set_data(&b(&format!("n{i}")), d.as_deref(), -1), 0));
        }
    }
    for _ in 0..80 {
        let i = rng.gen_range(0..PLAIN);
        batch.push((set_acl(&b(&format!("n{i}")), random_acl(rng), -1), 0));
    }
    batch.push((
        create(&b("n0"), None, acl_open(), 0),
        ErrorCode::NodeExists.code(),
    ));
    batch.push((delete(&b("n0"), -1), ErrorCode::NotEmpty.code()));
    batch.push((set_data(&b("n1"), None, 999), ErrorCode::BadVersion.code()));
    batch.push((delete(&b("nothing"), -1), ErrorCode::NoNode.code()));
    for i in 0..25 {
        let m = b(&format!("m/m{i}"));
        let ops = vec![
            MultiOp::Create {
                op: op::CREATE,
                req: create_req(&m, Some(b"1"), random_acl(rng), 0),
            },
            MultiOp::SetData(SetDataRequest {
                path: m.clone(),
                data: Some(b"2".to_vec()),
                version: 0,
            }),
            MultiOp::Create {
                op: op::CREATE,
                req: create_req(&format!("{m}/x"), None, acl_open(), 0),
            },
            MultiOp::Create {
                op: op::CREATE,
                req: create_req(&format!("{m}/y"), Some(b""), acl_open(), 0),
            },
            MultiOp::Delete(DeleteRequest {
                path: format!("{m}/x"),
                version: -1,
            }),
            MultiOp::Check(CheckVersionRequest {
                path: m.clone(),
                version: 1,
            }),
            // Other node kinds inside a multi: sequential, ephemeral (of this session, gone
            // when it closes), container with a child, TTL.
            MultiOp::Create {
                op: op::CREATE,
                req: create_req(&format!("{m}/s-"), Some(b"s"), acl_open(), 2),
            },
            MultiOp::Create {
                op: op::CREATE,
                req: create_req(&format!("{m}/e"), Some(b"e"), acl_open(), 1),
            },
            MultiOp::Create {
                op: op::CREATE_CONTAINER,
                req: create_req(&format!("{m}/c"), Some(b"c"), acl_open(), 4),
            },
            MultiOp::Create {
                op: op::CREATE,
                req: create_req(&format!("{m}/c/k"), None, acl_open(), 0),
            },
            MultiOp::CreateTtl(CreateTtlRequest {
                path: format!("{m}/t"),
                data: Some(b"t".to_vec()),
                acl: random_acl(rng),
                flags: 5,
                ttl: 5_400_000,
            }),
        ];
        model.owners.insert(format!("{m}/c"), CONTAINER_OWNER);
        model.owners.insert(format!("{m}/t"), ttl_owner(5_400_000));
        batch.push((Request::Multi(MultiDecode::Ops(ops)), 0));
    }
    // Failing in the middle: the ops before the failure are in the txn with their real types,
    // the rest as errors, and none of it may be applied.
    for i in 0..5 {
        let f = b(&format!("m/g{i}"));
        let ops = vec![
            MultiOp::Create {
                op: op::CREATE,
                req: create_req(&f, Some(b"1"), acl_open(), 0),
            },
            MultiOp::SetData(SetDataRequest {
                path: b("m"),
                data: Some(b"changed by a failed multi".to_vec()),
                version: -1,
            }),
            MultiOp::Delete(DeleteRequest {
                path: b("nothing-here"),
                version: -1,
            }),
            MultiOp::Create {
                op: op::CREATE,
                req: create_req(&format!("{f}/x"), None, acl_open(), 0),
            },
        ];
        batch.push((Request::Multi(MultiDecode::Ops(ops)), 0));
    }
    for i in 0..8 {
        let ops = vec![
            MultiOp::Create {
                op: op::CREATE,
                req: create_req(&b(&format!("m/f{i}")), None, acl_open(), 0),
            },
            MultiOp::Check(CheckVersionRequest {
                path: b("m"),
                version: 999,
            }),
        ];
        // A failed multi is answered with err 0 in the header and the failure inside.
        batch.push((Request::Multi(MultiDecode::Ops(ops)), 0));
    }
    run_expect(&mut c, "changes", batch);

    // Ephemerals of the live session (kept across servers), and of a session that closes.
    let mut batch = Vec::new();
    for i in 0..50 {
        let d = random_data(rng, i);
        batch.push((
            create(&b(&format!("eph/e{i}")), d.as_deref(), random_acl(rng), 1),
            0,
        ));
    }
    for _ in 0..15 {
        batch.push((create2(&b("eph/es-"), Some(b"eph seq"), acl_open(), 3), 0));
    }
    // The live session also removes and changes some of its earlier ephemerals.
    let mut old: Vec<String> = std::mem::take(&mut model.ephemerals);
    for p in old.drain(..old.len().min(10)) {
        batch.push((delete(&p, -1), 0));
    }
    for p in old.iter().take(10) {
        batch.push((set_data(p, Some(b"changed"), -1), 0));
    }
    let reps = run_expect(live, "live ephemerals", batch);
    model.ephemerals = old;
    model
        .ephemerals
        .extend(reps.iter().take(65).map(created_path));
    let mut gone = Conn::connect(addr, 30_000).expect("connect");
    let batch = (0..20).map(|i| {
        (
            create(&b(&format!("gone/g{i}")), Some(b"g"), acl_open(), 1),
            0,
        )
    });
    run_expect(&mut gone, "closing session's ephemerals", batch.collect());
    gone.close();

    // Changes to what earlier phases (and servers) wrote.
    if phase > 1 {
        let mut batch = Vec::new();
        let n = model.leaves.len();
        for _ in 0..100 {
            let p = model.leaves[rng.gen_range(0..n)].clone();
            let k = rng.gen_range(0..6);
            let d = random_data(rng, k);
            batch.push((set_data(&p, d.as_deref(), -1), 0));
        }
        for _ in 0..40 {
            let p = model.leaves[rng.gen_range(0..n)].clone();
            batch.push((set_acl(&p, random_acl(rng), -1), 0));
        }
        let mut doomed = Vec::new();
        while doomed.len() < 60 {
            let i = rng.gen_range(0..model.leaves.len());
            let p = model.leaves.swap_remove(i);
            if !p.starts_with(&base) {
                doomed.push(p);
            }
        }
        for p in doomed {
            batch.push((delete(&p, -1), 0));
        }
        for p in model
            .parents
            .iter()
            .filter(|p| !p.starts_with(&base))
            .take(40)
        {
            batch.push((
                create(&format!("{p}/new{phase}"), Some(b"new"), random_acl(rng), 0),
                0,
            ));
        }
        let emptied: Vec<String> = model
            .containers
            .iter()
            .filter(|p| !p.starts_with(&base))
            .take(10)
            .cloned()
            .collect();
        for p in &emptied {
            batch.push((delete(&format!("{p}/x"), -1), 0));
        }
        model.containers.retain(|p| !emptied.contains(p));
        run_expect(&mut c, "changes to earlier phases", batch);
    }
    c.close();

    if let Some(e) = expiring {
        drop(e);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut w = Conn::connect(addr, 30_000).expect("connect");
        loop {
            let r = w
                .call(&Request::GetChildren(PathWatchRequest {
                    path: b("exp"),
                    watch: false,
                }))
                .unwrap();
            assert_eq!(r.err, 0);
            if GetChildrenResponse::from_bytes(&r.body)
                .unwrap()
                .children
                .is_empty()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the expiring session's ephemerals are still there"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        w.close();
    }
}

// ---------------------------------------------------------------------------------------------
// Both-way compatibility with the real ZooKeeper
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Corral,
    ZooKeeper,
}

impl Kind {
    fn other(self) -> Kind {
        match self {
            Kind::Corral => Kind::ZooKeeper,
            Kind::ZooKeeper => Kind::Corral,
        }
    }
}

/// Holds off the container/TTL reaper (default: every 60 s) so the trees stay comparable.
const REAPER_OFF: (&str, &str) = ("znode.container.checkIntervalMs", "3600000");

/// Starts `kind` with `snapCount=100`, the given snapshot compression ("" = none), super
/// digest auth, on `data_dir` (or a fresh one).
fn start_kind(kind: Kind, data_dir: Option<&Path>, compression: &str) -> ServerProcess {
    start_kind_logs_in(kind, data_dir, compression, None, &[])
}

/// [`start_kind`] with the txn logs in `log_dir` (`dataLogDir`) if given, and more zoo.cfg lines.
fn start_kind_logs_in(
    kind: Kind,
    data_dir: Option<&Path>,
    compression: &str,
    log_dir: Option<&Path>,
    extra_cfg: &[&str],
) -> ServerProcess {
    let mut cfg = vec!["snapCount=100".to_string()];
    cfg.extend(extra_cfg.iter().map(|l| l.to_string()));
    if let Some(d) = log_dir {
        cfg.push(format!("dataLogDir={}", d.display()));
    }
    let mut props = vec![REAPER_OFF];
    if !compression.is_empty() {
        props.push(("zookeeper.snapshot.compression.method", compression));
    }
    start_with(kind, data_dir, &cfg, &props)
}

/// Starts `kind` with the super digest and the given zoo.cfg lines and properties.
fn start_with(
    kind: Kind,
    data_dir: Option<&Path>,
    cfg: &[String],
    props: &[(&str, &str)],
) -> ServerProcess {
    let cfg: Vec<&str> = cfg.iter().map(String::as_str).collect();
    let mut props = props.to_vec();
    props.push((
        "zookeeper.DigestAuthenticationProvider.superDigest",
        SUPER_DIGEST,
    ));
    let r = match (kind, data_dir) {
        (Kind::Corral, None) => corral_testkit::start_corral(corral_bin(), &cfg, &props),
        (Kind::Corral, Some(d)) => corral_testkit::start_corral_in(corral_bin(), d, &cfg, &props),
        (Kind::ZooKeeper, None) => corral_testkit::start_zookeeper(&cfg, &props),
        (Kind::ZooKeeper, Some(d)) => corral_testkit::start_zookeeper_in(d, &cfg, &props),
    };
    r.unwrap_or_else(|e| panic!("start {kind:?}: {e:#}"))
}

/// ".gz" for "snapshot.1f.gz", "" for "snapshot.1f".
fn name_suffix(name: &str) -> &str {
    match name.splitn(3, '.').nth(2) {
        Some(_) => &name[name.rfind('.').unwrap()..],
        None => "",
    }
}

fn suffix(compression: &str) -> &'static str {
    match compression {
        "gz" => ".gz",
        "snappy" => ".snappy",
        _ => "",
    }
}

/// Both servers rolled logs and wrote snapshots in the configured compression.
fn assert_rolled(who: Kind, data_dir: &Path, log_dir: &Path, compression: &str) {
    let snaps = files(data_dir, "snapshot");
    let logs = files(log_dir, "log");
    let want = suffix(compression);
    let matching = snaps.iter().filter(|(_, n)| name_suffix(n) == want).count();
    assert!(
        matching >= 5 && logs.len() >= 5,
        "{who:?} with snapCount=100 should have rolled logs and written {compression:?} snapshots \
         often: snapshots {snaps:?}, logs {logs:?}"
    );
}

/// With `preAllocSize=16` the logs grew in small steps, several of them.
fn assert_small_preallocation(who: Kind, log_dir: &Path, extra_cfg: &[&str]) {
    if !extra_cfg.contains(&"preAllocSize=16") {
        return;
    }
    let sizes: Vec<u64> = files(log_dir, "log")
        .iter()
        .map(|(_, n)| std::fs::metadata(version2(log_dir).join(n)).unwrap().len())
        .collect();
    let max = sizes.iter().max().copied().unwrap_or(0);
    assert!(
        max > 2 * 16 * 1024 && max < 1 << 20,
        "{who:?}'s logs should have grown in 16 KiB steps: sizes {sizes:?}"
    );
}

/// The last `digest is <n>` ZooKeeper logged after loading its data.
fn zookeeper_loaded_digest(zk: &ServerProcess) -> i64 {
    let log = zk.log();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("Snapshot loaded in") && l.contains("digest is"))
        .unwrap_or_else(|| panic!("no 'digest is' line in the ZooKeeper log:\n{log}"));
    line.rsplit("digest is ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .expect("digest value")
}

/// The server that just started on another server's data serves `expected` exactly, with the
/// digest the loading server computed itself, from a snapshot of the right compression.
fn assert_loaded(
    server: &ServerProcess,
    kind: Kind,
    expected: &Tree,
    model: &Model,
    compression: &str,
    what: &str,
) {
    let t = walk(server.addr());
    assert_same_tree(what, expected, &t);
    let digest = tree_digest(&t, &model.owners);
    let log = server.log();
    let want = suffix(compression);
    match kind {
        Kind::ZooKeeper => {
            assert_eq!(
                zookeeper_loaded_digest(server),
                digest as i64,
                "{what}: ZooKeeper's digest after loading"
            );
            let mntr = corral_testkit::four_letter(server.addr(), "mntr").expect("mntr");
            assert!(
                mntr.lines().any(|l| l == "zk_digest_mismatches_count\t0"),
                "{what}: ZooKeeper found txn digests that do not match its tree:\n{mntr}"
            );
            let read = log
                .lines()
                .find(|l| l.contains("Reading snapshot"))
                .unwrap_or_else(|| panic!("{what}: no snapshot read:\n{log}"));
            let file = read.rsplit('/').next().unwrap().trim();
            assert_eq!(
                name_suffix(file),
                want,
                "{what}: ZooKeeper read {file}, expected a {compression:?} snapshot"
            );
            eprintln!(
                "{what}: ZooKeeper read {file}; {} nodes, digest {digest}",
                t.len()
            );
        }
        Kind::Corral => {
            // corral logs its own digest of the tree it loaded, as ZooKeeper does.
            let loaded = log
                .lines()
                .find(|l| l.contains(" txns from ") && l.contains(", digest "))
                .unwrap_or_else(|| panic!("{what}: no load summary with a digest:\n{log}"));
            let d: i64 = loaded
                .split(", digest ")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .and_then(|d| d.trim().parse().ok())
                .unwrap_or_else(|| panic!("{what}: no digest in {loaded:?}"));
            assert_eq!(
                d, digest as i64,
                "{what}: corral's digest of the loaded tree"
            );
            let read = log
                .lines()
                .find(|l| l.contains("loaded snapshot"))
                .unwrap_or_else(|| panic!("{what}: no snapshot read:\n{log}"));
            let file = read
                .split("loaded snapshot ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            let file = file.rsplit('/').next().unwrap();
            assert_eq!(
                name_suffix(file),
                want,
                "{what}: corral read {file}, expected a {compression:?} snapshot"
            );
            eprintln!(
                "{what}: corral read {file}; {} nodes, digest {digest}",
                t.len()
            );
        }
    }
}

/// Leaves the live session without closing it, remembering what a client would to resume it:
/// its id, password and the last zxid it saw (a ping reply carries the server's current zxid).
fn leave_live(mut live: Conn, model: &mut Model) {
    live.ping().expect("ping");
    model.live = (live.session, live.passwd.clone(), live.last_zxid);
}

/// Resumes the live session on `server` with the last zxid it saw: same id, valid.
fn resume_live(server: &ServerProcess, model: &Model, what: &str) -> Conn {
    let (id, pw, seen) = &model.live;
    let mut c = Conn::resume(server.addr(), *id, pw, *seen, 30_000).unwrap_or_else(|| {
        panic!("{what}: session 0x{id:x} (last zxid seen 0x{seen:x}) was not resumed")
    });
    c.ping().expect("ping the resumed session");
    c
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "corral-durability-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// first → other → first, each server adding a phase of the workload; after each switch the
/// new server must serve exactly the tree the old one served. With `separate_logs` the txn
/// logs go to a `dataLogDir` of their own; `extra_cfg` goes into every server's zoo.cfg.
fn three_servers_deep(
    test: &str,
    first: Kind,
    compression: &str,
    seed: u64,
    separate_logs: bool,
    extra_cfg: &[&str],
) {
    if !corral_testkit::require_real_zookeeper(test) {
        return;
    }
    let t0 = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Model::default();
    let log_scratch = separate_logs.then(|| Scratch::new(test));
    let log_dir = log_scratch.as_ref().map(|s| s.0.as_path());
    let start =
        |kind, data: Option<&Path>| start_kind_logs_in(kind, data, compression, log_dir, extra_cfg);

    let mut s1 = start(first, None);
    let mut live = Conn::connect(s1.addr(), 30_000).expect("connect");
    populate(s1.addr(), 1, &mut rng, &mut model, &mut live);
    let t1 = walk(s1.addr());
    assert!(t1.len() > 2000, "a few thousand nodes: {}", t1.len());
    let stats = &t1["/zookeeper/quota/p1/del/zookeeper_stats"].data;
    let stats = String::from_utf8_lossy(stats.as_deref().unwrap_or_default());
    assert!(
        stats.starts_with("count=51,"),
        "{first:?} keeps quota stats: {stats}"
    );
    leave_live(live, &mut model);
    s1.stop();
    let data = s1.data_dir.clone();
    let logs = log_dir.unwrap_or(&data);
    assert_rolled(first, &data, logs, compression);
    assert_small_preallocation(first, logs, extra_cfg);
    if separate_logs {
        assert!(
            files(&data, "log").is_empty(),
            "{first:?} wrote logs into dataDir"
        );
    }

    let second = first.other();
    let mut s2 = start(second, Some(&data));
    let what = format!("{first:?} -> {second:?}");
    assert_loaded(&s2, second, &t1, &model, compression, &what);
    let mut live = resume_live(&s2, &model, "on the second server");
    populate(s2.addr(), 2, &mut rng, &mut model, &mut live);
    let t2 = walk(s2.addr());
    leave_live(live, &mut model);
    s2.stop();
    assert_rolled(second, &data, logs, compression);
    assert_small_preallocation(second, logs, extra_cfg);
    if separate_logs {
        assert!(
            files(&data, "log").is_empty(),
            "{second:?} wrote logs into dataDir"
        );
    }
    if std::env::var_os("DURABILITY_SHOW_LOGS").is_some() {
        for (n, s) in [("s1", &s1), ("s2", &s2)] {
            let interesting = |l: &&str| {
                ["WARN", "ERROR", "txns", "loaded"]
                    .iter()
                    .any(|w| l.contains(w))
            };
            for l in s.log().lines().filter(interesting) {
                eprintln!("{n}: {l}");
            }
        }
    }

    let mut s3 = start(first, Some(&data));
    let what = format!("{first:?} -> {second:?} -> {first:?}");
    assert_loaded(&s3, first, &t2, &model, compression, &what);
    let live = resume_live(&s3, &model, "on the third server");
    assert!(live.timeout > 0);
    live.close();
    s3.stop();
    eprintln!("{test}: {} nodes, {:?}", t2.len(), t0.elapsed());
}

#[test]
fn corral_to_zookeeper_to_corral_uncompressed_separate_log_dir() {
    three_servers_deep(
        "corral_to_zookeeper_to_corral_uncompressed_separate_log_dir",
        Kind::Corral,
        "",
        1,
        true,
        &[],
    );
}

#[test]
fn corral_to_zookeeper_to_corral_gz() {
    three_servers_deep(
        "corral_to_zookeeper_to_corral_gz",
        Kind::Corral,
        "gz",
        2,
        false,
        // Log files grow in 16 KiB steps (ZooKeeper's FilePadding) instead of 64 MiB.
        &["preAllocSize=16"],
    );
}

#[test]
fn corral_to_zookeeper_to_corral_snappy() {
    three_servers_deep(
        "corral_to_zookeeper_to_corral_snappy",
        Kind::Corral,
        "snappy",
        3,
        false,
        &[],
    );
}

#[test]
fn zookeeper_to_corral_to_zookeeper_uncompressed_separate_log_dir() {
    three_servers_deep(
        "zookeeper_to_corral_to_zookeeper_uncompressed_separate_log_dir",
        Kind::ZooKeeper,
        "",
        4,
        true,
        &[],
    );
}

#[test]
fn zookeeper_to_corral_to_zookeeper_gz() {
    three_servers_deep(
        "zookeeper_to_corral_to_zookeeper_gz",
        Kind::ZooKeeper,
        "gz",
        5,
        false,
        // Log files grow in 16 KiB steps (ZooKeeper's FilePadding) instead of 64 MiB.
        &["preAllocSize=16"],
    );
}

#[test]
fn zookeeper_to_corral_to_zookeeper_snappy() {
    three_servers_deep(
        "zookeeper_to_corral_to_zookeeper_snappy",
        Kind::ZooKeeper,
        "snappy",
        6,
        false,
        &[],
    );
}

// ---------------------------------------------------------------------------------------------
// Crash safety: kill -9 under pipelined concurrent writes
// ---------------------------------------------------------------------------------------------

/// A write whose success reply arrived: `path` has `data` at `version` (0 = the create).
struct Ack {
    path: String,
    version: i32,
    data: Vec<u8>,
    zxid: i64,
}

/// One connection keeping `window` creates / setData in flight until the server goes away (or
/// `limit` writes); returns the acknowledged writes and how many got no reply.
fn crash_writer(
    addr: SocketAddr,
    seed: u64,
    prefix: String,
    window: usize,
    limit: usize,
    padding: usize,
) -> (Vec<Ack>, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let Ok(mut c) = Conn::connect(addr, 30_000) else {
        return (Vec::new(), 0);
    };
    let mut in_flight: VecDeque<(i32, String, Vec<u8>, bool)> = VecDeque::new();
    let mut created: Vec<String> = Vec::new();
    let mut acks = Vec::new();
    let mut sent = 0;
    'run: loop {
        while in_flight.len() < window && sent < limit {
            let mut data = format!("{prefix}#{sent}").into_bytes();
            data.resize(data.len() + padding, b'.');
            let (req, path, is_create) = if !created.is_empty() && rng.gen_bool(0.4) {
                let p = created[rng.gen_range(0..created.len())].clone();
                (set_data(&p, Some(&data), -1), p, false)
            } else {
                let p = format!("/crash/{prefix}-{sent}");
                (create2(&p, Some(&data), acl_open(), 0), p, true)
            };
            let xid = c.queue(&req);
            in_flight.push_back((xid, path, data, is_create));
            sent += 1;
        }
        if in_flight.is_empty() || c.flush().is_err() {
            break;
        }
        // Read what has arrived (at least one reply), then top the window up again.
        loop {
            let rep = match c.recv() {
                Ok(r) => r,
                Err(_) => break 'run,
            };
            let (xid, path, data, is_create) = in_flight.pop_front().expect("a request in flight");
            assert_eq!(rep.xid, xid, "replies come in request order");
            assert_eq!(rep.err, 0, "{path}: write failed");
            let version = if is_create {
                created.push(path.clone());
                0
            } else {
                StatResponse::from_bytes(&rep.body)
                    .expect("setData reply")
                    .stat
                    .version
            };
            acks.push(Ack {
                path,
                version,
                data,
                zxid: rep.zxid,
            });
            if in_flight.len() <= window / 2 {
                break;
            }
        }
    }
    (acks, in_flight.len())
}

/// Every acknowledged write among `paths` is there: the node exists with at least the acked
/// version, and with the acked data if no later (unacknowledged) write changed it. Every reply
/// is at or beyond the newest acknowledged zxid.
fn verify_acked(
    addr: SocketAddr,
    acked: &HashMap<String, (i32, Vec<u8>)>,
    paths: &[&String],
    max_zxid: i64,
    what: &str,
) {
    let mut c = Conn::connect(addr, 30_000).expect("connect");
    let reqs: Vec<Request> = paths.iter().map(|p| get_data(p)).collect();
    let reps = c.pipeline(&reqs, 256).expect("verify");
    for (p, rep) in paths.iter().zip(&reps) {
        let (version, data) = &acked[*p];
        assert_eq!(rep.err, 0, "{what}: acknowledged create of {p} lost");
        assert!(
            rep.zxid >= max_zxid,
            "{what}: server at zxid 0x{:x}, but 0x{max_zxid:x} was acknowledged",
            rep.zxid
        );
        let gd = GetDataResponse::from_bytes(&rep.body).expect("GetDataResponse");
        assert!(
            gd.stat.version >= *version,
            "{what}: {p} at version {} but version {version} was acknowledged",
            gd.stat.version
        );
        if gd.stat.version == *version {
            assert_eq!(
                gd.data.as_deref(),
                Some(&data[..]),
                "{what}: {p} version {version} has other data"
            );
        }
    }
    c.close();
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    const ITERATIONS: usize = 20;
    const CONNECTIONS: usize = 4;
    const WINDOW: usize = 32;
    const STARTUP_KILLS: usize = 8;
    let t0 = Instant::now();
    // A small snapCount so that kills also land during log rolls and snapshot writes.
    let mut srv =
        corral_testkit::start_corral(corral_bin(), &["snapCount=400"], &[]).expect("start corral");
    let mut c = Conn::connect(srv.addr(), 30_000).expect("connect");
    run_expect(
        &mut c,
        "root",
        vec![(create("/crash", None, acl_open(), 0), 0)],
    );
    drop(c);
    let mut rng = StdRng::seed_from_u64(0xC0FFEE);
    let mut acked: HashMap<String, (i32, Vec<u8>)> = HashMap::new();
    let mut max_zxid = 0i64;
    let (mut total_acked, mut total_unknown) = (0usize, 0usize);
    for it in 0..ITERATIONS {
        let addr = srv.addr();
        let writers: Vec<_> = (0..CONNECTIONS)
            .map(|k| {
                let seed = rng.gen();
                std::thread::spawn(move || {
                    crash_writer(addr, seed, format!("i{it}c{k}"), WINDOW, 100_000, 0)
                })
            })
            .collect();
        let delay = Duration::from_millis(rng.gen_range(30..500));
        std::thread::sleep(delay);
        srv.kill9();
        let mut this_round: Vec<String> = Vec::new();
        for w in writers {
            let (acks, unknown) = w.join().expect("writer thread");
            total_unknown += unknown;
            total_acked += acks.len();
            for a in acks {
                max_zxid = max_zxid.max(a.zxid);
                let e = acked.entry(a.path.clone()).or_insert((-1, Vec::new()));
                if a.version > e.0 {
                    *e = (a.version, a.data);
                }
                this_round.push(a.path);
            }
        }
        srv.restart()
            .unwrap_or_else(|e| panic!("iteration {it}: restart after kill -9: {e:#}"));
        // This round's writes, and a sample of all earlier ones.
        this_round.sort();
        this_round.dedup();
        let mut paths: Vec<&String> = this_round.iter().collect();
        let earlier: Vec<&String> = acked.keys().collect();
        for _ in 0..1000.min(earlier.len()) {
            paths.push(earlier[rng.gen_range(0..earlier.len())]);
        }
        verify_acked(
            srv.addr(),
            &acked,
            &paths,
            max_zxid,
            &format!("iteration {it} (killed after {delay:?})"),
        );
    }
    let all: Vec<&String> = acked.keys().collect();
    verify_acked(srv.addr(), &acked, &all, max_zxid, "after all iterations");
    assert!(
        total_acked > 1000 && total_unknown > 0,
        "the kills should land under load: {total_acked} acknowledged, {total_unknown} unknown"
    );

    // kill -9 during start-up too (restore, cutting, the start-up snapshot): spawn the same
    // command by hand and kill it at random points before and around "ready".
    srv.stop();
    let ready_ms: u64 = srv
        .log()
        .lines()
        .rev()
        .find_map(|l| l.split("ready in ").nth(1)?.split(' ').next()?.parse().ok())
        .expect("a 'ready in' line");
    let bin = corral_testkit::corral_bin(corral_bin());
    for _ in 0..STARTUP_KILLS {
        let mut child = std::process::Command::new(&bin)
            .arg("server")
            .arg("--config")
            .arg(srv.config_path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn corral");
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..ready_ms + 50)));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
    }
    srv.restart()
        .unwrap_or_else(|e| panic!("restart after kills during start-up: {e:#}"));
    let all: Vec<&String> = acked.keys().collect();
    verify_acked(
        srv.addr(),
        &acked,
        &all,
        max_zxid,
        "after kills during start-up",
    );
    eprintln!(
        "acknowledged_writes_survive_kill_9: {ITERATIONS} kills under load, {STARTUP_KILLS} during start-up (~{ready_ms} ms), {total_acked} acknowledged writes ({} nodes) all present, {total_unknown} without reply, {:?}",
        acked.len(),
        t0.elapsed()
    );
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// Damaged txn logs
// ---------------------------------------------------------------------------------------------

/// The newest `log.*` file of a data dir.
fn newest_log(data_dir: &Path) -> PathBuf {
    let (_, name) = files(data_dir, "log").pop().expect("a txn log");
    version2(data_dir).join(name)
}

/// (offset, length of the txn, created path if a create) of every entry of a log file.
fn log_entries(bytes: &[u8]) -> Vec<(usize, usize, Option<String>)> {
    let (entries, end) = corral_storage::txnlog::walk(bytes, 1 << 20);
    assert!(
        matches!(end, corral_storage::txnlog::End::Clean { .. }),
        "log not clean: {end:?}"
    );
    entries
        .iter()
        .map(|e| {
            let txn = corral_storage::txnlog::decode(e).expect("txn decodes");
            let created = match txn.body {
                corral_proto::txn::TxnBody::Create(c) => Some(c.path),
                _ => None,
            };
            (e.offset, e.txn.len(), created)
        })
        .collect()
}

/// Creates `/<dir>` and `/<dir>/n0..n<count>` (data = the path), one per request.
fn create_nodes(addr: SocketAddr, dir: &str, count: usize) {
    let mut c = Conn::connect(addr, 30_000).expect("connect");
    run_expect(
        &mut c,
        dir,
        vec![(create(&format!("/{dir}"), None, acl_open(), 0), 0)],
    );
    for i in 0..count {
        let p = format!("/{dir}/n{i}");
        run_expect(
            &mut c,
            dir,
            vec![(create(&p, Some(p.as_bytes()), acl_open(), 0), 0)],
        );
    }
    // Dropped without closeSession: no txn after the last create.
}

fn present(addr: SocketAddr, paths: &[String]) -> Vec<bool> {
    let mut c = Conn::connect(addr, 30_000).expect("connect");
    let reqs: Vec<Request> = paths.iter().map(|p| exists(p)).collect();
    let reps = c.pipeline(&reqs, 128).expect("exists");
    c.close();
    reps.iter()
        .zip(paths)
        .map(|(r, p)| match r.err {
            0 => true,
            e if e == ErrorCode::NoNode.code() => false,
            e => panic!("exists {p}: error {e}"),
        })
        .collect()
}

#[test]
fn torn_tail_of_the_newest_log_is_cut_with_a_warning() {
    let mut srv = corral_testkit::start_corral(corral_bin(), &[], &[]).expect("start corral");
    create_nodes(srv.addr(), "torn", 40);
    srv.stop();
    let log = newest_log(&srv.data_dir);
    let mut bytes = std::fs::read(&log).unwrap();
    let entries = log_entries(&bytes);
    let (off, len, path) = entries.last().cloned().unwrap();
    assert_eq!(
        path.as_deref(),
        Some("/torn/n39"),
        "the last entry is the last create"
    );
    // What a crash in the middle of the write leaves: the first half of the entry, then the
    // preallocated zeros.
    let cut_from = off + 12 + len / 2;
    bytes[cut_from..off + 13 + len].fill(0);
    std::fs::write(&log, &bytes).unwrap();

    srv.restart()
        .expect("corral starts on a log with a torn tail");
    let out = srv.log();
    let warning = out
        .lines()
        .find(|l| l.contains("WARN") && l.contains(&log.display().to_string()))
        .unwrap_or_else(|| panic!("no warning naming {}:\n{out}", log.display()));
    assert!(
        warning.contains("cut") && warning.contains(&format!("offset {off}")),
        "{warning}"
    );
    let paths: Vec<String> = (0..40).map(|i| format!("/torn/n{i}")).collect();
    let mut want = vec![true; 40];
    want[39] = false;
    assert_eq!(
        present(srv.addr(), &paths),
        want,
        "everything before the torn entry, nothing of it"
    );
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        off as u64,
        "the log was cut at the torn entry"
    );

    // The cut is final: more writes, another restart, no new warning and nothing lost.
    let mut c = Conn::connect(srv.addr(), 30_000).expect("connect");
    run_expect(
        &mut c,
        "after",
        vec![(create("/torn/n39", Some(b"again"), acl_open(), 0), 0)],
    );
    drop(c);
    srv.restart().expect("restart");
    assert_eq!(
        srv.log().matches("torn last entry").count(),
        1,
        "{}",
        srv.log()
    );
    assert_eq!(present(srv.addr(), &paths), vec![true; 40]);
    srv.stop();
}

#[test]
fn corrupt_entry_followed_by_valid_ones_stops_startup() {
    let mut srv = corral_testkit::start_corral(corral_bin(), &[], &[]).expect("start corral");
    create_nodes(srv.addr(), "mid", 60);
    srv.stop();
    let log = newest_log(&srv.data_dir);
    let mut bytes = std::fs::read(&log).unwrap();
    let entries = log_entries(&bytes);
    // A flipped bit in the data of the create of /mid/n30, with 29 valid entries after it.
    let k = entries
        .iter()
        .position(|e| e.2.as_deref() == Some("/mid/n30"))
        .unwrap();
    let (off, len, _) = entries[k].clone();
    bytes[off + 12 + len - 3] ^= 0x10;
    std::fs::write(&log, &bytes).unwrap();

    let err = srv.restart().expect_err("corral must refuse to start");
    let msg = format!("{err:#}");
    assert!(msg.contains("exited during startup"), "{msg}");
    assert!(!srv.stop().success(), "non-zero exit");
    let out = srv.log();
    let line = out
        .lines()
        .find(|l| l.contains("error") && l.contains(&log.display().to_string()))
        .unwrap_or_else(|| panic!("no error naming {}:\n{out}", log.display()));
    assert!(line.contains(&format!("offset {off}")), "{line}");
    assert!(
        line.contains("corral.truncateCorruptLog"),
        "the message says how to start anyway: {line}"
    );
    assert_eq!(
        std::fs::read(&log).unwrap(),
        bytes,
        "the log is left as it was"
    );

    // The operator's override: cut at the bad entry and start with what comes before it.
    let data = srv.data_dir.clone();
    let mut forced = corral_testkit::start_corral_in(
        corral_bin(),
        &data,
        &[],
        &[("corral.truncateCorruptLog", "true")],
    )
    .expect("corral starts with corral.truncateCorruptLog=true");
    let out = forced.log();
    assert!(
        out.lines().any(|l| l.contains("WARN")
            && l.contains(&log.display().to_string())
            && l.contains(&format!("offset {off}"))),
        "no warning about the cut:\n{out}"
    );
    let paths: Vec<String> = (0..60).map(|i| format!("/mid/n{i}")).collect();
    let want: Vec<bool> = (0..60).map(|i| i < 30).collect();
    assert_eq!(
        present(forced.addr(), &paths),
        want,
        "the entries before the bad one, none from it on"
    );
    forced.stop();
}

#[test]
fn bad_tail_of_an_older_log_stops_startup() {
    // Two runs give two logs; without the second run's snapshots, start-up has to replay both,
    // and a damaged end of the older one means txns in the middle of the history are gone.
    let mut srv = corral_testkit::start_corral(corral_bin(), &[], &[]).expect("start corral");
    create_nodes(srv.addr(), "old", 20);
    srv.restart().expect("restart");
    create_nodes(srv.addr(), "new", 20);
    srv.stop();
    let logs = files(&srv.data_dir, "log");
    assert!(logs.len() >= 2, "{logs:?}");
    let (first_log_zxid, older) = logs[0].clone();
    for (z, name) in files(&srv.data_dir, "snapshot") {
        if z >= first_log_zxid {
            std::fs::remove_file(version2(&srv.data_dir).join(name)).unwrap();
        }
    }
    let older = version2(&srv.data_dir).join(older);
    let mut bytes = std::fs::read(&older).unwrap();
    let (off, len, _) = log_entries(&bytes).last().cloned().unwrap();
    bytes[off + 12 + len / 2] ^= 0x01;
    std::fs::write(&older, &bytes).unwrap();

    let err = srv.restart().expect_err("corral must refuse to start");
    assert!(
        format!("{err:#}").contains("exited during startup"),
        "{err:#}"
    );
    let out = srv.log();
    assert!(
        out.lines().any(|l| l.contains("error")
            && l.contains(&older.display().to_string())
            && l.contains(&format!("offset {off}"))),
        "no error naming {} and offset {off}:\n{out}",
        older.display()
    );
}

// ---------------------------------------------------------------------------------------------
// Sessions across restarts
// ---------------------------------------------------------------------------------------------

fn children(addr: SocketAddr, path: &str) -> Vec<String> {
    let mut c = Conn::connect(addr, 30_000).expect("connect");
    let r = c
        .call(&Request::GetChildren(PathWatchRequest {
            path: path.into(),
            watch: false,
        }))
        .unwrap();
    assert_eq!(r.err, 0, "getChildren {path}");
    c.close();
    let mut v = GetChildrenResponse::from_bytes(&r.body).unwrap().children;
    v.sort();
    v
}

#[test]
fn sessions_survive_a_restart_and_the_abandoned_ones_expire() {
    let t0 = Instant::now();
    let mut srv = corral_testkit::start_corral(corral_bin(), &[], &[]).expect("start corral");
    let addr = srv.addr();
    let mut a = Conn::connect(addr, 10_000).expect("connect");
    let mut b = Conn::connect(addr, 4_000).expect("connect");
    assert_eq!((a.timeout, b.timeout), (10_000, 4_000));
    run_expect(&mut a, "dir", vec![(create("/s", None, acl_open(), 0), 0)]);
    run_expect(
        &mut a,
        "a",
        vec![
            (create("/s/a1", Some(b"a"), acl_open(), 1), 0),
            (create("/s/a2", None, acl_open(), 1), 0),
        ],
    );
    run_expect(
        &mut b,
        "b",
        vec![
            (create("/s/b1", Some(b"b"), acl_open(), 1), 0),
            (create("/s/b2", None, acl_open(), 1), 0),
        ],
    );
    a.ping().unwrap();
    let (a_id, a_pw, a_seen) = (a.session, a.passwd.clone(), a.last_zxid);
    let (b_id, b_pw) = (b.session, b.passwd.clone());
    drop((a, b));

    // Clean stop (SIGTERM): sessions are not closed by a server shutdown.
    srv.restart().expect("restart");
    let restarted = Instant::now();
    // A client that saw more than the server has is refused (so the next check means something).
    assert!(Conn::resume(addr, a_id, &a_pw, a_seen + 1000, 10_000).is_none());
    let mut a = Conn::resume(addr, a_id, &a_pw, a_seen, 10_000)
        .expect("session a resumes after the restart");
    run_expect(
        &mut a,
        "a after restart",
        vec![(create("/s/a3", None, acl_open(), 1), 0)],
    );
    let r = a.call(&exists("/s/a1")).unwrap();
    assert_eq!(
        StatResponse::from_bytes(&r.body)
            .unwrap()
            .stat
            .ephemeral_owner,
        a_id
    );
    assert_eq!(
        children(addr, "/s"),
        ["a1", "a2", "a3", "b1", "b2"],
        "b's ephemerals stay while b may come back"
    );

    // b does not come back: its ephemerals go once its 4 s timeout (counted from the restart)
    // has passed; a keeps pinging and keeps its own.
    let deadline = restarted + Duration::from_secs(20);
    loop {
        a.ping().expect("a stays connected");
        let kids = children(addr, "/s");
        if !kids.contains(&"b1".to_string()) {
            assert_eq!(
                kids,
                ["a1", "a2", "a3"],
                "b's ephemerals go together, a's stay"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b's ephemerals still there 20 s after the restart"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        restarted.elapsed() >= Duration::from_secs(3),
        "b expired after {:?}, before its timeout",
        restarted.elapsed()
    );
    assert!(
        Conn::resume(addr, b_id, &b_pw, 0, 4_000).is_none(),
        "the expired session b cannot resume"
    );

    // kill -9 instead of a clean stop: the same.
    a.ping().unwrap();
    let a_seen = a.last_zxid;
    drop(a);
    srv.kill9();
    srv.restart().expect("restart after kill -9");
    let mut a =
        Conn::resume(addr, a_id, &a_pw, a_seen, 10_000).expect("session a resumes after kill -9");
    a.ping().unwrap();
    assert_eq!(children(addr, "/s"), ["a1", "a2", "a3"]);
    a.close();
    assert_eq!(
        children(addr, "/s"),
        Vec::<String>::new(),
        "closing a removes its ephemerals"
    );
    srv.stop();
    eprintln!(
        "sessions_survive_a_restart_and_the_abandoned_ones_expire: {:?}",
        t0.elapsed()
    );
}

/// kill -9 of either server under pipelined writes, then the *other* server starts on its data:
/// every write the killed server acknowledged is there (ZooKeeper's log may end in a torn entry,
/// which corral must cut, not refuse).
#[test]
fn acknowledged_writes_survive_kill_9_across_servers() {
    const ROUNDS: usize = 4;
    if !corral_testkit::require_real_zookeeper("acknowledged_writes_survive_kill_9_across_servers")
    {
        return;
    }
    let t0 = Instant::now();
    let mut kind = Kind::ZooKeeper;
    let mut srv = start_kind(kind, None, "snappy");
    let data = srv.data_dir.clone();
    let mut c = Conn::connect(srv.addr(), 30_000).expect("connect");
    run_expect(
        &mut c,
        "root",
        vec![(create("/crash", None, acl_open(), 0), 0)],
    );
    drop(c);
    // Stopped servers are kept: the first one owns the data directory.
    let mut stopped = Vec::new();
    let mut rng = StdRng::seed_from_u64(0xDEAD);
    let mut acked: HashMap<String, (i32, Vec<u8>)> = HashMap::new();
    let mut max_zxid = 0i64;
    let mut cuts = 0;
    for round in 0..ROUNDS {
        let addr = srv.addr();
        let writers: Vec<_> = (0..4)
            .map(|k| {
                let seed = rng.gen();
                std::thread::spawn(move || {
                    // Entries of ~1.5 KiB, so a kill can land while ZooKeeper's 8 KiB
                    // output buffer holds part of one (a torn tail for corral to cut).
                    crash_writer(addr, seed, format!("r{round}c{k}"), 32, 100_000, 1500)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..800)));
        srv.kill9();
        let mut got = 0;
        for w in writers {
            let (acks, _) = w.join().expect("writer thread");
            got += acks.len();
            for a in acks {
                max_zxid = max_zxid.max(a.zxid);
                let e = acked.entry(a.path).or_insert((-1, Vec::new()));
                if a.version > e.0 {
                    *e = (a.version, a.data);
                }
            }
        }
        assert!(
            got > 0,
            "round {round}: {kind:?} acknowledged nothing before the kill"
        );
        let killed = kind;
        kind = kind.other();
        let next = start_kind(kind, Some(&data), "snappy");
        stopped.push(std::mem::replace(&mut srv, next));
        if srv.log().contains("torn last entry") {
            cuts += 1;
        }
        let all: Vec<&String> = acked.keys().collect();
        verify_acked(
            srv.addr(),
            &acked,
            &all,
            max_zxid,
            &format!("round {round}: {kind:?} after {killed:?} was killed"),
        );
    }
    srv.stop();
    eprintln!(
        "acknowledged_writes_survive_kill_9_across_servers: {ROUNDS} kills, {} nodes verified, {cuts} torn tail(s) cut, {:?}",
        acked.len(),
        t0.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Reaped containers and TTL nodes; ephemerals of sessions that are gone
// ---------------------------------------------------------------------------------------------

/// Under `base`: 20 containers with a child, 12 of which lose it (and get reaped), 10 TTL nodes
/// with a 200 ms TTL (reaped), 5 such with a child (kept), 5 with a 1 h TTL (kept). Waits for
/// the server's reaper (`checkIntervalMs=300`) to delete exactly the reapable ones.
fn reapable_nodes(addr: SocketAddr, base: &str, model: &mut Model) {
    let mut c = Conn::connect(addr, 30_000).expect("connect");
    c.auth("super:pw");
    let mut batch = vec![(create(base, None, acl_open(), 0), 0)];
    let mut kept = Vec::new();
    for i in 0..20 {
        let p = format!("{base}/ctr{i}");
        batch.push((container(&p, Some(b"c"), acl_open()), 0));
        batch.push((create(&format!("{p}/x"), None, acl_open(), 0), 0));
        model.owners.insert(p.clone(), CONTAINER_OWNER);
        if i >= 12 {
            kept.push(format!("ctr{i}"));
        }
    }
    for i in 0..20 {
        let p = format!("{base}/ttl{i}");
        let ttl = if i < 15 { 200 } else { 3_600_000 };
        batch.push((ttl_node(&p, Some(b"t"), acl_open(), 5, ttl), 0));
        model.owners.insert(p.clone(), ttl_owner(ttl));
        if (10..15).contains(&i) {
            batch.push((create(&format!("{p}/x"), None, acl_open(), 0), 0));
        }
        if i >= 10 {
            kept.push(format!("ttl{i}"));
        }
    }
    for i in 0..12 {
        batch.push((delete(&format!("{base}/ctr{i}/x"), -1), 0));
    }
    run_expect(&mut c, "reapable nodes", batch);
    c.close();
    kept.sort();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = children(addr, base);
        if now == kept {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reaper did not delete exactly the reapable nodes under {base}: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How many deleteContainer txns (type 20, what the reaper writes) the logs in `dir` hold.
fn delete_container_txns(dir: &Path) -> usize {
    let mut n = 0;
    for (_, name) in files(dir, "log") {
        let bytes = std::fs::read(version2(dir).join(name)).unwrap();
        let (entries, _) = corral_storage::txnlog::walk(&bytes, 1 << 20);
        for e in &entries {
            let txn = corral_storage::txnlog::decode(e).expect("txn decodes");
            if matches!(txn.body, corral_proto::txn::TxnBody::DeleteContainer(_)) {
                n += 1;
            }
        }
    }
    n
}

/// Containers and TTL nodes deleted by one server's reaper (deleteContainer txns in its log)
/// load the same on the other, both ways. The default snapCount keeps every txn in the logs, so
/// the loading server replays the reaper's txns rather than reading their result from a snapshot.
#[test]
fn reaped_containers_and_ttl_nodes_load_both_ways() {
    if !corral_testkit::require_real_zookeeper("reaped_containers_and_ttl_nodes_load_both_ways") {
        return;
    }
    let props = [("znode.container.checkIntervalMs", "300")];
    let mut model = Model::default();
    let mut s1 = start_with(Kind::Corral, None, &[], &props);
    reapable_nodes(s1.addr(), "/r1", &mut model);
    let t1 = walk(s1.addr());
    s1.stop();
    let data = s1.data_dir.clone();
    assert_eq!(delete_container_txns(&data), 22, "corral's reaper txns");

    let mut s2 = start_with(Kind::ZooKeeper, Some(&data), &[], &props);
    assert_loaded(
        &s2,
        Kind::ZooKeeper,
        &t1,
        &model,
        "",
        "reaped by corral, loaded by ZooKeeper",
    );
    reapable_nodes(s2.addr(), "/r2", &mut model);
    let t2 = walk(s2.addr());
    s2.stop();
    assert_eq!(
        delete_container_txns(&data),
        44,
        "plus ZooKeeper's reaper txns"
    );

    let mut s3 = start_with(Kind::Corral, Some(&data), &[], &props);
    assert_loaded(
        &s3,
        Kind::Corral,
        &t2,
        &model,
        "",
        "reaped by ZooKeeper, loaded by corral",
    );
    // Nothing more to reap: the tree stays as loaded.
    std::thread::sleep(Duration::from_millis(800));
    assert_same_tree("after another reaper pass", &t2, &walk(s3.addr()));
    s3.stop();
}

/// Copies a directory tree.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A snapshot whose tree holds ephemerals of a session that is not in its session table (and
/// not in the logs after it): ZooKeeper removes them at start-up, and so must corral, with the
/// same resulting tree.
#[test]
fn ephemerals_of_sessions_that_are_gone_are_removed_at_startup_as_zookeeper_does() {
    if !corral_testkit::require_real_zookeeper(
        "ephemerals_of_sessions_that_are_gone_are_removed_at_startup_as_zookeeper_does",
    ) {
        return;
    }
    let mut srv = start_with(Kind::Corral, None, &[], &[]);
    let mut gone = Conn::connect(srv.addr(), 30_000).expect("connect");
    let mut kept = Conn::connect(srv.addr(), 30_000).expect("connect");
    run_expect(
        &mut gone,
        "dir",
        vec![
            (create("/dead", None, acl_open(), 0), 0),
            (create("/dead/p", Some(b"p"), acl_open(), 0), 0),
        ],
    );
    run_expect(
        &mut gone,
        "gone",
        vec![
            (create("/dead/g1", Some(b"g"), acl_open(), 1), 0),
            (create("/dead/g2", None, acl_open(), 1), 0),
        ],
    );
    run_expect(
        &mut kept,
        "kept",
        vec![(create("/dead/k1", Some(b"k"), acl_open(), 1), 0)],
    );
    let gone_id = gone.session;
    drop((gone, kept));
    // The restart's snapshot (taken in the background once serving, as the restart replayed
    // txns) holds both sessions and all nodes; the logs after it only the readiness probe's
    // session.
    srv.restart().expect("restart");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let log = srv.log();
        if log
            .rsplit("serving clients")
            .next()
            .unwrap_or("")
            .contains(" written: ")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot after the restart:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    srv.stop();

    let v2 = version2(&srv.data_dir);
    let (_, name) = files(&srv.data_dir, "snapshot").pop().unwrap();
    let (_, c) = corral_storage::snapshot::parse_name(&name).unwrap();
    let raw = corral_storage::snapshot::decompress(&std::fs::read(v2.join(&name)).unwrap(), c)
        .unwrap()
        .into_owned();
    let (tree, mut meta) = corral_storage::snapshot::deserialize(&raw, usize::MAX).unwrap();
    let before = meta.sessions.len();
    meta.sessions.retain(|(id, _)| *id != gone_id);
    assert_eq!(
        meta.sessions.len(),
        before - 1,
        "the snapshot held the session"
    );
    let raw = corral_storage::snapshot::serialize(&tree, &meta);
    std::fs::write(v2.join(&name), corral_storage::snapshot::compress(&raw, c)).unwrap();

    let zk_copy = Scratch::new("gone-zk");
    let corral_copy = Scratch::new("gone-corral");
    copy_dir(&srv.data_dir, &zk_copy.0);
    copy_dir(&srv.data_dir, &corral_copy.0);
    let mut zk = start_with(Kind::ZooKeeper, Some(&zk_copy.0), &[], &[]);
    let zk_tree = walk(zk.addr());
    zk.stop();
    let mut co = start_with(Kind::Corral, Some(&corral_copy.0), &[], &[]);
    let corral_tree = walk(co.addr());
    assert_eq!(
        zk_tree["/dead"].children,
        ["k1", "p"],
        "ZooKeeper removed the ephemerals of the gone session"
    );
    assert_same_tree(
        "corral after start-up vs ZooKeeper after start-up",
        &zk_tree,
        &corral_tree,
    );
    // And it is final: corral's restart snapshot has it, a second start agrees.
    co.restart().expect("restart");
    assert_same_tree("corral after a second start", &zk_tree, &walk(co.addr()));
    co.stop();
}

/// ZooKeeper keeps `/zookeeper/quota/<path>/zookeeper_stats` up to date in memory (without txns)
/// and recomputes it when it loads a snapshot; after replaying ZooKeeper's log corral must serve
/// the same stats. (Failed until quota accounting came in with ae29d20: corral served the stats
/// node as created, `count=1,bytes=0`, where ZooKeeper serves `count=3,bytes=6`.)
#[test]
fn quota_stats_match_zookeeper_after_replay() {
    if !corral_testkit::require_real_zookeeper("quota_stats_match_zookeeper_after_replay") {
        return;
    }
    let mut zk = start_with(Kind::ZooKeeper, None, &[], &[]);
    let mut c = Conn::connect(zk.addr(), 30_000).unwrap();
    run_expect(
        &mut c,
        "quota",
        vec![
            (create("/q", None, acl_open(), 0), 0),
            (create("/zookeeper/quota/q", None, acl_open(), 0), 0),
            (
                create(
                    "/zookeeper/quota/q/zookeeper_limits",
                    Some(b"count=100,bytes=-1"),
                    acl_open(),
                    0,
                ),
                0,
            ),
            (
                create(
                    "/zookeeper/quota/q/zookeeper_stats",
                    Some(b"count=1,bytes=0"),
                    acl_open(),
                    0,
                ),
                0,
            ),
            (create("/q/a", Some(b"12345"), acl_open(), 0), 0),
            (create("/q/b", Some(b"1"), acl_open(), 0), 0),
        ],
    );
    let r = c
        .call(&get_data("/zookeeper/quota/q/zookeeper_stats"))
        .unwrap();
    let live = GetDataResponse::from_bytes(&r.body).unwrap().data;
    assert_eq!(
        live.as_deref(),
        Some(&b"count=3,bytes=6"[..]),
        "ZooKeeper's live stats"
    );
    drop(c);
    zk.stop();
    // corral replays ZooKeeper's log (the only snapshot is the empty snapshot.0).
    let mut co = start_with(Kind::Corral, Some(&zk.data_dir), &[], &[]);
    let t = walk(co.addr());
    co.stop();
    assert_eq!(t["/zookeeper/quota/q/zookeeper_stats"].data, live);
}

/// ZooKeeper does not cut a torn last entry when it restarts after a crash: it reads up to it,
/// then writes new txns (from the torn txn's zxid on) into a new log. corral must start on such
/// a dataDir, as ZooKeeper does, and serve what ZooKeeper served.
#[test]
fn zookeeper_restarted_after_a_torn_write_then_corral() {
    if !corral_testkit::require_real_zookeeper("zookeeper_restarted_after_a_torn_write_then_corral")
    {
        return;
    }
    let mut zk = start_with(Kind::ZooKeeper, None, &[], &[]);
    create_nodes(zk.addr(), "zt", 30);
    zk.stop();
    // What a kill -9 in the middle of flushing the last entry leaves: a prefix of it, then the
    // preallocated zeros.
    let log = newest_log(&zk.data_dir);
    let mut bytes = std::fs::read(&log).unwrap();
    let (off, len, path) = log_entries(&bytes).last().cloned().unwrap();
    assert_eq!(path.as_deref(), Some("/zt/n29"));
    bytes[off + 12 + len / 2..off + 13 + len].fill(0);
    std::fs::write(&log, &bytes).unwrap();

    let data = zk.data_dir.clone();
    let mut zk2 = start_with(Kind::ZooKeeper, Some(&data), &[], &[]);
    let mut c = Conn::connect(zk2.addr(), 30_000).unwrap();
    run_expect(
        &mut c,
        "after",
        vec![(create("/zt/after", Some(b"a"), acl_open(), 0), 0)],
    );
    drop(c);
    let served = walk(zk2.addr());
    zk2.stop();
    assert!(!served.contains_key("/zt/n29") && served.contains_key("/zt/n28"));
    let logs = files(&data, "log");
    assert!(
        logs.len() >= 2,
        "ZooKeeper continued in a new log: {logs:?}"
    );
    assert_eq!(
        std::fs::read(&log).unwrap(),
        bytes,
        "ZooKeeper left the torn entry in place"
    );

    // ZooKeeper's restart wrote a snapshot past the torn entry, so the torn log is not needed.
    let copy = Scratch::new("torn-zk");
    copy_dir(&data, &copy.0);
    let mut co = start_with(Kind::Corral, Some(&data), &[], &[]);
    assert_same_tree(
        "corral on ZooKeeper's data after a torn write",
        &served,
        &walk(co.addr()),
    );
    co.stop();

    // Without that snapshot both servers have to read the torn log, then the next one.
    for (z, name) in files(&copy.0, "snapshot") {
        if z > 0 {
            std::fs::remove_file(version2(&copy.0).join(name)).unwrap();
        }
    }
    let copy2 = Scratch::new("torn-corral");
    copy_dir(&copy.0, &copy2.0);
    let mut zk3 = start_with(Kind::ZooKeeper, Some(&copy.0), &[], &[]);
    let zk_tree = walk(zk3.addr());
    zk3.stop();
    assert_same_tree("ZooKeeper replaying its logs", &served, &zk_tree);
    let mut co = start_with(Kind::Corral, Some(&copy2.0), &[], &[]);
    assert_same_tree(
        "corral replaying ZooKeeper's logs",
        &served,
        &walk(co.addr()),
    );
    let torn = version2(&copy2.0).join(log.file_name().unwrap());
    let out = co.log();
    assert!(
        out.lines().any(|l| l.contains("WARN")
            && l.contains("torn")
            && l.contains(&torn.display().to_string())),
        "corral says what it passed over:\n{out}"
    );
    co.stop();
}
