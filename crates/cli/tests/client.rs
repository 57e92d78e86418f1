//! corral driven by a real ZooKeeper client library: the Rust `zookeeper-client` crate (0.11).
//!
//! Every test starts its own corral (`corral_testkit::start_corral`, loopback, free port,
//! `extendedTypesEnabled=true`) and checks what an application relies on: replies, stats, error
//! codes, watch events and their ordering, sessions, containers and TTL nodes.
//!
//! A few checks need more than the crate shows (it filters watch events client-side, reports only
//! the first failing op of a multi and has no checkWatches); those use the small raw jute client in
//! [`raw`] next to the crate.
//!
//! Set `CLIENT_TESTS_SERVER=zookeeper` to run the very same tests against the real ZooKeeper 3.8
//! (`corral_testkit::start_zookeeper`); that is how the expectations here were checked.

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corral_testkit::ServerProcess;
use zookeeper_client::{
    Acl, Acls, AddWatchMode, AuthId, AuthUser, CheckWriteError, Client, CreateMode, CreateOptions,
    Error, EventType, MultiReadResult, MultiWriteError, MultiWriteResult, OneshotWatcher,
    Permission, PersistentWatcher, SessionState, Stat, WatchedEvent,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Upper bound for anything that should happen "soon" (a reply, an event). Only a bound against
/// hanging forever; nothing asserts how fast it happens.
const WAIT: Duration = Duration::from_secs(10);

/// Upper bound for a whole test, so that a server bug that makes a client wait forever (e.g. an
/// endless reconnect loop) fails the test instead of hanging the suite.
const TEST_LIMIT: Duration = Duration::from_secs(45);

/// `#[tokio::test]` with the body bounded by [`TEST_LIMIT`]; attributes (doc comment, `ignore`)
/// are passed through.
macro_rules! client_test {
    ($(#[$meta:meta])* async fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[tokio::test]
        async fn $name() {
            if tokio::time::timeout(TEST_LIMIT, async move $body).await.is_err() {
                panic!("{} did not finish within {:?}", stringify!($name), TEST_LIMIT);
            }
        }
    };
}

/// `base64(sha1("super:pw"))`, for `-Dzookeeper.DigestAuthenticationProvider.superDigest`.
const SUPER_DIGEST: &str = "super:0bX78nEegDzJM3ju0iLBEJdWzjg=";
/// The digest ACL id of `bob:secret` (the verified example of zookeeper-wire.md §3.6).
const BOB_ID: &str = "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=";

/// Starts corral, or the real ZooKeeper 3.8 with `CLIENT_TESTS_SERVER=zookeeper`.
fn start_server(extra_cfg: &[&str], extra_props: &[(&str, &str)]) -> ServerProcess {
    match std::env::var("CLIENT_TESTS_SERVER").as_deref() {
        Ok("zookeeper") => {
            assert!(
                corral_testkit::require_real_zookeeper("client tests"),
                "CLIENT_TESTS_SERVER=zookeeper but the real ZooKeeper is not installed"
            );
            corral_testkit::start_zookeeper(extra_cfg, extra_props).expect("start ZooKeeper")
        }
        _ => corral_testkit::start_corral(
            Path::new(env!("CARGO_BIN_EXE_corral")),
            extra_cfg,
            extra_props,
        )
        .expect("start corral"),
    }
}

fn start() -> ServerProcess {
    start_server(&[], &[])
}

async fn connect(server: &ServerProcess) -> Client {
    within("connect", Client::connect(&server.connect_string()))
        .await
        .expect("connect")
}

fn open(mode: CreateMode) -> CreateOptions<'static> {
    mode.with_acls(Acls::anyone_all())
}

const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());

/// Awaits `f`, failing the test if it does not finish within [`WAIT`].
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: nothing within {WAIT:?}"),
    }
}

/// The next event of a one-shot watcher, as `(type, path)`.
async fn fired(what: &str, watcher: OneshotWatcher) -> (EventType, String) {
    let e = within(what, watcher.changed()).await;
    assert_eq!(
        e.session_state,
        SessionState::SyncConnected,
        "{what}: {e:?}"
    );
    (e.event_type, e.path)
}

/// The next event of a persistent watcher, as `(type, path)`.
async fn next(what: &str, watcher: &mut PersistentWatcher) -> (EventType, String) {
    let e: WatchedEvent = within(what, watcher.changed()).await;
    assert_eq!(
        e.session_state,
        SessionState::SyncConnected,
        "{what}: {e:?}"
    );
    (e.event_type, e.path)
}

fn ev(t: EventType, path: &str) -> (EventType, String) {
    (t, path.to_string())
}

/// Polls `f` exactly once: `Some(output)` if it is already complete. Used to ask "has this
/// event already been delivered?" at a precise moment, without waiting.
fn poll_once<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Polls `check` every 50 ms until it returns true; fails after `limit`.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn exists(c: &Client, path: &str) -> bool {
    c.check_stat(path).await.expect("exists").is_some()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The stat of a node just created by create2/createContainer/createTTL.
fn assert_fresh_stat(what: &str, stat: &Stat, data_len: i32) {
    assert!(stat.czxid > 0, "{what}: {stat:?}");
    assert_eq!(stat.czxid, stat.mzxid, "{what}: czxid == mzxid");
    assert_eq!(stat.czxid, stat.pzxid, "{what}: czxid == pzxid");
    assert_eq!(stat.ctime, stat.mtime, "{what}: ctime == mtime");
    assert!(
        (stat.ctime - now_ms()).abs() < 600_000,
        "{what}: ctime is wall-clock ms: {stat:?}"
    );
    assert_eq!(
        (stat.version, stat.cversion, stat.aversion),
        (0, 0, 0),
        "{what}: versions"
    );
    assert_eq!(stat.data_length, data_len, "{what}: dataLength");
    assert_eq!(stat.num_children, 0, "{what}: numChildren");
}

// ---------------------------------------------------------------------------------------------
// A minimal raw jute client, for what the crate hides
// ---------------------------------------------------------------------------------------------

/// Jute records by hand over `corral_testkit::raw` frames. Blocking: a call holds the test's
/// (single-threaded) runtime until the server answers, at most [`WAIT`]; a server reply never
/// depends on another client of the test making progress, so nothing waits on it meanwhile.
mod raw {
    use std::io::ErrorKind;
    use std::net::{SocketAddr, TcpStream};
    use std::time::Instant;

    use corral_testkit::raw as wire;

    use super::WAIT;

    pub const CREATE: i32 = 1;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const GET_CHILDREN: i32 = 8;
    pub const MULTI: i32 = 14;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const ADD_WATCH: i32 = 106;
    pub const AUTH: i32 = 100;
    pub const WHO_AM_I: i32 = 107;

    pub const CREATED: i32 = 1;
    pub const DELETED: i32 = 2;
    pub const DATA_CHANGED: i32 = 3;
    pub const CHILDREN_CHANGED: i32 = 4;

    /// WatcherType for check/removeWatches.
    pub const WATCH_CHILDREN: i32 = 1;
    pub const WATCH_DATA: i32 = 2;
    pub const WATCH_ANY: i32 = 3;

    /// Jute writer.
    #[derive(Default)]
    pub struct W(pub Vec<u8>);

    impl W {
        pub fn new() -> W {
            W(Vec::new())
        }
        pub fn i32(mut self, v: i32) -> W {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        pub fn i64(mut self, v: i64) -> W {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        pub fn bool(mut self, v: bool) -> W {
            self.0.push(v as u8);
            self
        }
        pub fn buf(self, b: &[u8]) -> W {
            let mut w = self.i32(b.len() as i32);
            w.0.extend_from_slice(b);
            w
        }
        pub fn str(self, s: &str) -> W {
            self.buf(s.as_bytes())
        }
        /// `[31 world:anyone]`.
        pub fn open_acl(self) -> W {
            self.i32(1).i32(31).str("world").str("anyone")
        }
        /// A one-entry ACL list.
        pub fn acl(self, perms: i32, scheme: &str, id: &str) -> W {
            self.i32(1).i32(perms).str(scheme).str(id)
        }
        /// CreateRequest with an open ACL.
        pub fn create(self, path: &str, data: &[u8], flags: i32) -> W {
            self.str(path).buf(data).open_acl().i32(flags)
        }
        /// A multi sub-op header.
        pub fn op(self, op: i32) -> W {
            self.i32(op).bool(false).i32(-1)
        }
        /// The multi terminator.
        pub fn done(self) -> W {
            self.i32(-1).bool(true).i32(-1)
        }
    }

    /// Jute reader.
    pub struct R<'a>(pub &'a [u8]);

    impl R<'_> {
        fn take(&mut self, n: usize) -> &[u8] {
            assert!(
                self.0.len() >= n,
                "short record: want {n} bytes, have {:?}",
                self.0
            );
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            a
        }
        pub fn i32(&mut self) -> i32 {
            i32::from_be_bytes(self.take(4).try_into().unwrap())
        }
        pub fn i64(&mut self) -> i64 {
            i64::from_be_bytes(self.take(8).try_into().unwrap())
        }
        pub fn bool(&mut self) -> bool {
            self.take(1)[0] != 0
        }
        pub fn buf(&mut self) -> Vec<u8> {
            let n = self.i32();
            if n < 0 {
                return Vec::new();
            }
            self.take(n as usize).to_vec()
        }
        pub fn str(&mut self) -> String {
            String::from_utf8(self.buf()).expect("utf-8")
        }
    }

    /// A watch notification: `WatcherEvent{type, state, path}` and the frame's zxid.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Event {
        pub kind: i32,
        pub state: i32,
        pub path: String,
        pub zxid: i64,
    }

    pub struct Reply {
        pub zxid: i64,
        pub err: i32,
        pub body: Vec<u8>,
    }

    pub struct Raw {
        stream: TcpStream,
        xid: i32,
        pub session_id: i64,
        pub passwd: Vec<u8>,
        pub timeout: i32,
        /// Notifications received so far (while waiting for replies).
        pub events: Vec<Event>,
    }

    impl Raw {
        /// Handshake: new session (`session_id` 0) or resume. Returns the ConnectResponse values;
        /// a refused session has `session_id == 0`.
        pub fn connect(addr: SocketAddr, timeout_ms: i32, session_id: i64, passwd: &[u8]) -> Raw {
            let mut stream = wire::connect(addr, Instant::now() + WAIT).expect("raw connect");
            let body = W::new()
                .i32(0)
                .i64(0)
                .i32(timeout_ms)
                .i64(session_id)
                .buf(passwd)
                .bool(false);
            wire::send_frame(&mut stream, &body.0, Instant::now() + WAIT).expect("raw handshake");
            let resp = wire::read_frame(&mut stream, wire::FRAME_BYTES_MAX, Instant::now() + WAIT)
                .expect("ConnectResponse");
            let mut r = R(&resp);
            let _protocol = r.i32();
            let timeout = r.i32();
            let session_id = r.i64();
            let passwd = r.buf();
            Raw {
                stream,
                xid: 0,
                session_id,
                passwd,
                timeout,
                events: Vec::new(),
            }
        }

        /// Sends one request with the given xid.
        pub fn send(&mut self, xid: i32, op: i32, body: W) {
            let payload = W::new().i32(xid).i32(op).0;
            let payload = [payload, body.0].concat();
            wire::send_frame(&mut self.stream, &payload, Instant::now() + WAIT)
                .expect("write request");
        }

        /// Reads frames until one that is not a notification: `(xid, reply)`. Notifications on
        /// the way are collected in `events`.
        pub fn recv_reply(&mut self) -> (i32, Reply) {
            loop {
                let deadline = Instant::now() + WAIT;
                let f = wire::read_frame(&mut self.stream, wire::FRAME_BYTES_MAX, deadline)
                    .unwrap_or_else(|e| match e.kind() {
                        ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                            panic!("no reply within {WAIT:?}")
                        }
                        _ => panic!("reading a reply: {e}"),
                    });
                let mut r = R(&f);
                let rxid = r.i32();
                let zxid = r.i64();
                let err = r.i32();
                if rxid == -1 {
                    let kind = r.i32();
                    let state = r.i32();
                    let path = r.str();
                    self.events.push(Event {
                        kind,
                        state,
                        path,
                        zxid,
                    });
                    continue;
                }
                let body = r.0.to_vec();
                return (rxid, Reply { zxid, err, body });
            }
        }

        /// Sends one request (next xid) and waits for its reply, collecting notifications on the
        /// way.
        pub fn call(&mut self, op: i32, body: W) -> Reply {
            self.xid += 1;
            let xid = self.xid;
            self.send(xid, op, body);
            let (rxid, reply) = self.recv_reply();
            assert_eq!(rxid, xid, "reply xid (op {op})");
            reply
        }

        /// A round trip that changes nothing (exists "/" without watch): every notification the
        /// server queued for this connection before it is read.
        pub fn barrier(&mut self) {
            let r = self.call(EXISTS, W::new().str("/").bool(false));
            assert_eq!(r.err, 0);
        }

        /// `(type, path)` of the notifications received so far, which are then forgotten; also
        /// checks that each is a server notification (state SyncConnected, frame zxid -1).
        pub fn take_events(&mut self) -> Vec<(i32, String)> {
            std::mem::take(&mut self.events)
                .into_iter()
                .map(|e| {
                    assert_eq!(e.state, 3, "notification state SyncConnected: {e:?}");
                    (e.kind, e.path)
                })
                .collect()
        }
    }
}

use raw::{Raw, W};

fn rev(kind: i32, path: &str) -> (i32, String) {
    (kind, path.to_string())
}

// ---------------------------------------------------------------------------------------------
// create, stats, node kinds
// ---------------------------------------------------------------------------------------------

client_test! {
    /// Proves: create2 (what the crate sends for plain creates) returns the new node's Stat with
    /// czxid == mzxid == pzxid, ctime == mtime (wall-clock ms), all versions 0, the data length;
    /// for every CreateMode (persistent, ephemeral, both sequentials, container, TTL, sequential
    /// TTL) ephemeralOwner is the creator's session id for ephemerals and 0 for everything else
    /// (containers and TTL nodes included); the reply's Stat is what getData/exists return later;
    /// the parent's pzxid/numChildren/cversion follow; zxids strictly increase.
    async fn create_every_mode_returns_create2_stat() {
        let server = start();
        let c = connect(&server).await;
        let sid = c.session_id().0;
        let ttl = Duration::from_secs(3600);

        let cases: Vec<(&str, CreateOptions<'static>, i64, bool)> = vec![
            ("/persistent", open(CreateMode::Persistent), 0, false),
            ("/ephemeral", open(CreateMode::Ephemeral), sid, false),
            ("/pseq-", open(CreateMode::PersistentSequential), 0, true),
            ("/eseq-", open(CreateMode::EphemeralSequential), sid, true),
            ("/container", open(CreateMode::Container), 0, false),
            ("/ttl", open(CreateMode::Persistent).with_ttl(ttl), 0, false),
            (
                "/tseq-",
                open(CreateMode::PersistentSequential).with_ttl(ttl),
                0,
                true,
            ),
        ];
        let mut last_zxid = 0;
        for (i, (path, options, owner, sequential)) in cases.into_iter().enumerate() {
            let data = vec![b'x'; i + 1];
            let (stat, seq) = c
                .create(path, &data, &options)
                .await
                .unwrap_or_else(|e| panic!("create {path}: {e}"));
            assert_fresh_stat(path, &stat, data.len() as i32);
            assert_eq!(stat.ephemeral_owner, owner, "{path}: ephemeralOwner");
            assert!(stat.czxid > last_zxid, "{path}: zxids increase");
            last_zxid = stat.czxid;
            let full = if sequential {
                // Sequence = the parent's (root's) cversion before this create: i creates so far.
                assert_eq!(seq.into_i64(), i as i64, "{path}: sequence number");
                assert_eq!(seq.to_string(), format!("{i:010}"));
                format!("{path}{i:010}")
            } else {
                assert_eq!(seq.into_i64(), -1);
                path.to_string()
            };
            let (got, stat2) = c.get_data(&full).await.unwrap();
            assert_eq!(got, data, "{full}: data");
            assert_eq!(stat2, stat, "{full}: getData returns the create2 stat");
            assert_eq!(
                c.check_stat(&full).await.unwrap(),
                Some(stat),
                "{full}: exists"
            );
        }

        // The root saw 7 creates: the last one set its pzxid.
        let (children, root) = c.get_children("/").await.unwrap();
        assert_eq!(root.pzxid, last_zxid, "root pzxid = last child create");
        assert_eq!(root.num_children as usize, children.len());
        assert_eq!(
            sorted(children),
            vec![
                "container",
                "ephemeral",
                "eseq-0000000003",
                "persistent",
                "pseq-0000000002",
                "tseq-0000000006",
                "ttl",
                "zookeeper",
            ]
        );
    }
}

client_test! {
    /// Proves: sequential names are the parent's cversion before the create, formatted %010d: they
    /// count every child create under that parent (plain, ephemeral and sequential alike) but not
    /// deletes; the client-visible parent cversion counts creates + deletes.
    async fn sequential_numbering_follows_parent_cversion() {
        let server = start();
        let c = connect(&server).await;
        c.create("/q", b"", &PERSISTENT).await.unwrap();
        let seq = open(CreateMode::PersistentSequential);
        let eseq = open(CreateMode::EphemeralSequential);

        for expect in 0..3 {
            let (_, s) = c.create("/q/s-", b"", &seq).await.unwrap();
            assert_eq!(s.into_i64(), expect);
        }
        // One plain create (cversion 3 -> 4) and one delete (no change).
        c.create("/q/plain", b"", &PERSISTENT).await.unwrap();
        c.delete("/q/plain", None).await.unwrap();
        let (_, s) = c.create("/q/e-", b"", &eseq).await.unwrap();
        assert_eq!(
            s.into_i64(),
            4,
            "after 4 creates and a delete the next is 4"
        );
        let (_, s) = c.create("/q/s-", b"", &seq).await.unwrap();
        assert_eq!(s.into_i64(), 5);

        let (children, stat) = c.get_children("/q").await.unwrap();
        assert_eq!(
            sorted(children),
            vec![
                "e-0000000004",
                "s-0000000000",
                "s-0000000001",
                "s-0000000002",
                "s-0000000005"
            ]
        );
        assert_eq!(stat.num_children, 5);
        assert_eq!(stat.cversion, 7, "6 creates + 1 delete");

        // A prefix with a trailing slash is a parent path: the name is just the number.
        let (_, s) = c.create("/q/", b"", &seq).await.unwrap();
        assert_eq!(s.into_i64(), 6);
        assert!(exists(&c, "/q/0000000006").await);
    }
}

client_test! {
    /// Proves: NodeExists for an existing path, NoNode for a missing parent,
    /// NoChildrenForEphemerals under an ephemeral (for every mode of child), and containers and TTL
    /// nodes may have children.
    async fn create_errors_and_parent_rules() {
        let server = start();
        let c = connect(&server).await;
        c.create("/a", b"", &PERSISTENT).await.unwrap();
        assert_eq!(
            c.create("/a", b"", &PERSISTENT).await.unwrap_err(),
            Error::NodeExists
        );
        assert_eq!(
            c.create("/a", b"", &open(CreateMode::Container))
                .await
                .unwrap_err(),
            Error::NodeExists
        );
        assert_eq!(
            c.create("/missing/x", b"", &PERSISTENT).await.unwrap_err(),
            Error::NoNode
        );
        assert_eq!(
            c.create("/missing/x-", b"", &open(CreateMode::EphemeralSequential))
                .await
                .unwrap_err(),
            Error::NoNode
        );

        c.create("/e", b"", &EPHEMERAL).await.unwrap();
        for mode in [
            CreateMode::Persistent,
            CreateMode::Ephemeral,
            CreateMode::PersistentSequential,
            CreateMode::EphemeralSequential,
            CreateMode::Container,
        ] {
            assert_eq!(
                c.create("/e/child", b"", &open(mode)).await.unwrap_err(),
                Error::NoChildrenForEphemerals,
                "{mode:?} under an ephemeral"
            );
        }
        assert_eq!(c.list_children("/e").await.unwrap(), Vec::<String>::new());

        c.create("/ct", b"", &open(CreateMode::Container))
            .await
            .unwrap();
        c.create("/ct/child", b"", &PERSISTENT).await.unwrap();
        c.create(
            "/ttl",
            b"",
            &open(CreateMode::Persistent).with_ttl(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
        c.create("/ttl/child", b"", &EPHEMERAL).await.unwrap();
        assert_eq!(c.get_children("/ct").await.unwrap().1.num_children, 1);
        assert_eq!(c.get_children("/ttl").await.unwrap().1.num_children, 1);
    }
}

client_test! {
    /// Proves: createTTL is refused with Unimplemented when extended types are disabled, and then
    /// creates nothing.
    async fn ttl_requires_extended_types() {
        let server = start_server(&["extendedTypesEnabled=false"], &[]);
        let c = connect(&server).await;
        let ttl = open(CreateMode::Persistent).with_ttl(Duration::from_secs(60));
        assert_eq!(
            c.create("/t", b"", &ttl).await.unwrap_err(),
            Error::Unimplemented
        );
        assert!(!exists(&c, "/t").await);
        // Everything else still works on this session.
        c.create("/t", b"", &open(CreateMode::Container))
            .await
            .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// delete, exists, getData, setData
// ---------------------------------------------------------------------------------------------

client_test! {
    /// Proves: delete checks the version (BadVersion, -1/None = any), NoNode for a missing node,
    /// NotEmpty for a node with children, BadArguments for ZooKeeper's own nodes; a successful
    /// delete bumps the parent's cversion and pzxid and leaves its data alone.
    async fn delete_with_version_and_errors() {
        let server = start();
        let c = connect(&server).await;
        c.create("/d", b"", &PERSISTENT).await.unwrap();
        c.create("/d/a", b"", &PERSISTENT).await.unwrap();
        c.set_data("/d/a", b"1", None).await.unwrap(); // version 1

        assert_eq!(
            c.delete("/d/a", Some(0)).await.unwrap_err(),
            Error::BadVersion
        );
        assert_eq!(
            c.delete("/d/a", Some(2)).await.unwrap_err(),
            Error::BadVersion
        );
        assert_eq!(c.delete("/d", None).await.unwrap_err(), Error::NotEmpty);
        assert!(exists(&c, "/d/a").await, "failed deletes change nothing");

        let before = c.get_children("/d").await.unwrap().1;
        c.delete("/d/a", Some(1)).await.unwrap();
        let after = c.get_children("/d").await.unwrap().1;
        assert_eq!(after.num_children, 0);
        assert_eq!(after.cversion, before.cversion + 1);
        assert!(
            after.pzxid > before.pzxid,
            "delete moves the parent's pzxid"
        );
        assert_eq!(after.mzxid, before.mzxid, "the parent's data is untouched");
        assert_eq!(c.delete("/d/a", None).await.unwrap_err(), Error::NoNode);
        assert_eq!(c.delete("/d/a", Some(1)).await.unwrap_err(), Error::NoNode);

        for special in ["/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            assert_eq!(
                c.delete(special, None).await.unwrap_err(),
                Error::BadArguments(&"server error"),
                "delete {special}"
            );
        }
        c.set_data("/d", b"v", None).await.unwrap();
        c.delete("/d", None).await.unwrap();
        assert!(!exists(&c, "/d").await);
    }
}

client_test! {
    /// Proves: exists returns None for a missing node; setData checks the version, returns the new
    /// Stat (version + 1, mzxid and mtime advance, dataLength follows, czxid/ctime/pzxid/cversion
    /// unchanged) which getData and exists then return; empty data reads back empty; setData and
    /// getData on a missing node are NoNode.
    async fn exists_get_set_data_with_versions() {
        let server = start();
        let c = connect(&server).await;
        assert_eq!(c.check_stat("/n").await.unwrap(), None);
        assert_eq!(c.get_data("/n").await.unwrap_err(), Error::NoNode);
        assert_eq!(
            c.set_data("/n", b"x", None).await.unwrap_err(),
            Error::NoNode
        );

        let (created, _) = c.create("/n", b"hello", &PERSISTENT).await.unwrap();
        let s1 = c.set_data("/n", b"hello, world", Some(0)).await.unwrap();
        assert_eq!(s1.version, 1);
        assert!(s1.mzxid > created.mzxid, "mzxid advances");
        assert!(s1.mtime >= created.mtime);
        assert_eq!(s1.data_length, 12);
        assert_eq!(
            (
                s1.czxid,
                s1.ctime,
                s1.pzxid,
                s1.cversion,
                s1.aversion,
                s1.ephemeral_owner
            ),
            (
                created.czxid,
                created.ctime,
                created.pzxid,
                created.cversion,
                created.aversion,
                created.ephemeral_owner
            )
        );
        assert_eq!(
            c.get_data("/n").await.unwrap(),
            (b"hello, world".to_vec(), s1)
        );
        assert_eq!(c.check_stat("/n").await.unwrap(), Some(s1));

        assert_eq!(
            c.set_data("/n", b"x", Some(0)).await.unwrap_err(),
            Error::BadVersion
        );
        assert_eq!(
            c.set_data("/n", b"x", Some(5)).await.unwrap_err(),
            Error::BadVersion
        );
        assert_eq!(
            c.get_data("/n").await.unwrap().1,
            s1,
            "failed setData changes nothing"
        );

        let s2 = c.set_data("/n", b"", None).await.unwrap();
        assert_eq!((s2.version, s2.data_length), (2, 0));
        assert!(s2.mzxid > s1.mzxid);
        assert_eq!(c.get_data("/n").await.unwrap(), (Vec::new(), s2));

        let s3 = c.set_data("/n", &[7u8; 1000], Some(2)).await.unwrap();
        assert_eq!((s3.version, s3.data_length), (3, 1000));
        assert_eq!(c.get_data("/n").await.unwrap().0, vec![7u8; 1000]);
    }
}

// ---------------------------------------------------------------------------------------------
// children, counts, ephemerals, sync
// ---------------------------------------------------------------------------------------------

client_test! {
    /// Proves: getChildren lists names (no leading '/'); getChildren2 adds the parent's Stat with
    /// cversion, numChildren and pzxid following child creates and deletes; getAllChildrenNumber
    /// counts all descendants (for "/" including /zookeeper, /zookeeper/quota, /zookeeper/config);
    /// both are NoNode for a missing node.
    async fn children_parent_stat_and_descendant_count() {
        let server = start();
        let c = connect(&server).await;
        let (p, _) = c.create("/p", b"data", &PERSISTENT).await.unwrap();
        let (a, _) = c.create("/p/a", b"", &PERSISTENT).await.unwrap();
        let (ax, _) = c.create("/p/a/x", b"", &PERSISTENT).await.unwrap();
        let (b, _) = c.create("/p/b", b"", &EPHEMERAL).await.unwrap();

        assert_eq!(sorted(c.list_children("/p").await.unwrap()), vec!["a", "b"]);
        let (children, stat) = c.get_children("/p").await.unwrap();
        assert_eq!(sorted(children), vec!["a", "b"]);
        assert_eq!(stat.num_children, 2);
        assert_eq!(stat.cversion, 2);
        assert_eq!(stat.pzxid, b.czxid, "pzxid = zxid of the last child change");
        assert_eq!((stat.czxid, stat.mzxid), (p.czxid, p.mzxid));
        assert_eq!(stat.data_length, 4);
        assert_eq!(c.get_children("/p/a").await.unwrap().1.pzxid, ax.czxid);
        assert_eq!(c.get_children("/p/a/x").await.unwrap(), (vec![], ax));
        assert!(a.czxid < ax.czxid);

        c.delete("/p/b", None).await.unwrap();
        // Nothing else writes in between: the next txn has the next zxid.
        let marker = c.set_data("/p/a/x", b"m", None).await.unwrap();
        let (children, stat) = c.get_children("/p").await.unwrap();
        assert_eq!(children, vec!["a"]);
        assert_eq!((stat.num_children, stat.cversion), (1, 3));
        assert_eq!(stat.pzxid, marker.mzxid - 1, "pzxid = the delete's zxid");

        assert_eq!(c.count_descendants_number("/p").await.unwrap(), 2);
        assert_eq!(c.count_descendants_number("/p/a").await.unwrap(), 1);
        assert_eq!(c.count_descendants_number("/p/a/x").await.unwrap(), 0);
        assert_eq!(
            c.count_descendants_number("/").await.unwrap(),
            3 + 3,
            "/p, /p/a, /p/a/x and the three /zookeeper nodes"
        );
        assert_eq!(
            c.count_descendants_number("/nope").await.unwrap_err(),
            Error::NoNode
        );
        assert_eq!(c.list_children("/nope").await.unwrap_err(), Error::NoNode);
        assert_eq!(c.get_children("/nope").await.unwrap_err(), Error::NoNode);
    }
}

client_test! {
    /// Proves: getEphemerals returns only the calling session's ephemerals; the prefix is a plain
    /// string prefix of the full path (not component-aware); "/" means all; no match is an empty
    /// list, not an error.
    async fn get_ephemerals_own_session_and_prefix() {
        let server = start();
        let a = connect(&server).await;
        let b = connect(&server).await;
        a.create("/eph", b"", &PERSISTENT).await.unwrap();
        a.create("/other", b"", &PERSISTENT).await.unwrap();
        a.create("/eph/a1", b"", &EPHEMERAL).await.unwrap();
        a.create("/eph/a2", b"", &EPHEMERAL).await.unwrap();
        a.create("/other/a3", b"", &EPHEMERAL).await.unwrap();
        a.create("/eph/persistent", b"", &PERSISTENT).await.unwrap();
        b.create("/eph/b1", b"", &EPHEMERAL).await.unwrap();

        assert_eq!(
            sorted(a.list_ephemerals("/").await.unwrap()),
            vec!["/eph/a1", "/eph/a2", "/other/a3"]
        );
        assert_eq!(
            sorted(a.list_ephemerals("/eph").await.unwrap()),
            vec!["/eph/a1", "/eph/a2"]
        );
        assert_eq!(
            sorted(a.list_ephemerals("/eph/a").await.unwrap()),
            vec!["/eph/a1", "/eph/a2"]
        );
        assert_eq!(a.list_ephemerals("/ot").await.unwrap(), vec!["/other/a3"]);
        assert_eq!(
            a.list_ephemerals("/nothing").await.unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(b.list_ephemerals("/").await.unwrap(), vec!["/eph/b1"]);
        assert_eq!(
            b.list_ephemerals("/other").await.unwrap(),
            Vec::<String>::new()
        );
    }
}

client_test! {
    /// Proves: sync succeeds (for "/", an existing node, and a path that does not exist: sync does
    /// not look at the tree) and a read after it sees the latest write.
    async fn sync_then_read() {
        let server = start();
        let a = connect(&server).await;
        let b = connect(&server).await;
        a.create("/s", b"1", &PERSISTENT).await.unwrap();
        b.set_data("/s", b"2", None).await.unwrap();
        a.sync("/s").await.unwrap();
        assert_eq!(a.get_data("/s").await.unwrap().0, b"2");
        a.sync("/").await.unwrap();
        a.sync("/does/not/exist").await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// ACLs and auth
// ---------------------------------------------------------------------------------------------

fn acl(perms: Permission, scheme: &str, id: &str) -> Acl {
    Acl::new(perms, AuthId::new(scheme, id))
}

client_test! {
    /// Proves: getACL returns the node's ACL and Stat (aversion 0); setACL checks and bumps
    /// aversion (BadVersion on a stale one) and changes nothing else; an empty ACL or malformed ids
    /// (digest without ':', bad ip, unknown scheme, `auth` without authenticated ids) are
    /// InvalidACL; getACL/setACL on a missing node are NoNode.
    async fn get_and_set_acl() {
        let server = start();
        let c = connect(&server).await;
        let (created, _) = c.create("/acl", b"x", &PERSISTENT).await.unwrap();
        let (acls, stat) = c.get_acl("/acl").await.unwrap();
        assert_eq!(acls, vec![acl(Permission::ALL, "world", "anyone")]);
        assert_eq!(stat, created);

        let new = vec![
            acl(Permission::READ | Permission::ADMIN, "world", "anyone"),
            acl(Permission::ALL, "digest", BOB_ID),
            acl(Permission::WRITE, "ip", "127.0.0.0/8"),
        ];
        let s1 = c.set_acl("/acl", &new, Some(0)).await.unwrap();
        assert_eq!(s1.aversion, 1);
        assert_eq!(
            (s1.version, s1.mzxid, s1.cversion, s1.czxid),
            (0, created.mzxid, 0, created.czxid),
            "setACL changes only aversion"
        );
        let (acls, stat) = c.get_acl("/acl").await.unwrap();
        assert_eq!(acls, new);
        assert_eq!(stat, s1);

        assert_eq!(
            c.set_acl("/acl", &new, Some(0)).await.unwrap_err(),
            Error::BadVersion
        );
        assert_eq!(
            c.set_acl("/acl", &new, Some(7)).await.unwrap_err(),
            Error::BadVersion
        );
        assert_eq!(c.set_acl("/acl", &new, Some(1)).await.unwrap().aversion, 2);
        assert_eq!(c.set_acl("/acl", &new, None).await.unwrap().aversion, 3);

        for (what, bad) in [
            ("empty ACL", vec![]),
            (
                "digest id without ':'",
                vec![acl(Permission::ALL, "digest", "bob")],
            ),
            ("bad ip", vec![acl(Permission::ALL, "ip", "not-an-ip")]),
            ("unknown scheme", vec![acl(Permission::ALL, "nosuch", "x")]),
            (
                "auth without authenticated ids",
                vec![acl(Permission::ALL, "auth", "")],
            ),
        ] {
            assert_eq!(
                c.set_acl("/acl", &bad, None).await.unwrap_err(),
                Error::InvalidAcl,
                "setACL with {what}"
            );
            if !bad.is_empty() {
                // (The crate refuses an empty ACL for create itself.)
                assert_eq!(
                    c.create(
                        "/acl2",
                        b"",
                        &CreateMode::Persistent.with_acls(Acls::new(&bad))
                    )
                    .await
                    .unwrap_err(),
                    Error::InvalidAcl,
                    "create with {what}"
                );
            }
        }
        assert_eq!(
            c.get_acl("/acl").await.unwrap().1.aversion,
            3,
            "refused setACLs change nothing"
        );
        assert!(!exists(&c, "/acl2").await);
        assert_eq!(c.get_acl("/nope").await.unwrap_err(), Error::NoNode);
        assert_eq!(
            c.set_acl("/nope", &new, None).await.unwrap_err(),
            Error::NoNode
        );
    }
}

client_test! {
    /// Proves: every operation checks the permission ZooKeeper requires and answers NoAuth without
    /// it: getData/getChildren/getAllChildrenNumber need READ, setData WRITE, create CREATE and
    /// delete DELETE on the parent, setACL ADMIN, getACL READ or ADMIN; exists needs nothing
    /// (3.8.0).
    async fn acl_permissions_are_enforced() {
        let server = start();
        let c = connect(&server).await;
        let only = |p: Permission| vec![acl(p, "world", "anyone")];
        let none = vec![acl(Permission::ALL, "digest", BOB_ID)];

        c.create(
            "/r",
            b"r",
            &CreateMode::Persistent.with_acls(Acls::new(&only(Permission::READ))),
        )
        .await
        .unwrap();
        assert_eq!(c.get_data("/r").await.unwrap().0, b"r");
        assert_eq!(c.list_children("/r").await.unwrap(), Vec::<String>::new());
        assert_eq!(c.count_descendants_number("/r").await.unwrap(), 0);
        assert_eq!(c.get_acl("/r").await.unwrap().0, only(Permission::READ));
        assert_eq!(
            c.set_data("/r", b"x", None).await.unwrap_err(),
            Error::NoAuth
        );
        assert_eq!(
            c.create("/r/c", b"", &PERSISTENT).await.unwrap_err(),
            Error::NoAuth
        );
        assert_eq!(
            c.set_acl("/r", &only(Permission::ALL), None)
                .await
                .unwrap_err(),
            Error::NoAuth
        );

        c.create(
            "/n",
            b"n",
            &CreateMode::Persistent.with_acls(Acls::new(&none)),
        )
        .await
        .unwrap();
        assert_eq!(c.get_data("/n").await.unwrap_err(), Error::NoAuth);
        assert_eq!(c.list_children("/n").await.unwrap_err(), Error::NoAuth);
        assert_eq!(c.get_children("/n").await.unwrap_err(), Error::NoAuth);
        assert_eq!(
            c.count_descendants_number("/n").await.unwrap_err(),
            Error::NoAuth
        );
        assert_eq!(c.get_acl("/n").await.unwrap_err(), Error::NoAuth);
        assert_eq!(
            c.set_data("/n", b"x", None).await.unwrap_err(),
            Error::NoAuth
        );
        assert_eq!(
            c.set_acl("/n", &only(Permission::ALL), None)
                .await
                .unwrap_err(),
            Error::NoAuth
        );
        assert!(
            c.check_stat("/n").await.unwrap().is_some(),
            "exists needs no permission"
        );

        // ADMIN alone is enough for getACL and setACL.
        c.create(
            "/adm",
            b"",
            &CreateMode::Persistent.with_acls(Acls::new(&only(Permission::ADMIN))),
        )
        .await
        .unwrap();
        assert_eq!(c.get_acl("/adm").await.unwrap().0, only(Permission::ADMIN));
        assert_eq!(c.get_data("/adm").await.unwrap_err(), Error::NoAuth);

        // CREATE without DELETE on the parent: children can be made but not removed.
        c.create(
            "/cr",
            b"",
            &CreateMode::Persistent.with_acls(Acls::new(&only(Permission::CREATE))),
        )
        .await
        .unwrap();
        c.create("/cr/child", b"", &PERSISTENT).await.unwrap();
        assert_eq!(
            c.delete("/cr/child", None).await.unwrap_err(),
            Error::NoAuth
        );
        c.set_acl("/adm", &only(Permission::ALL), Some(0))
            .await
            .unwrap();
        assert_eq!(c.get_data("/adm").await.unwrap().0, b"");

        // DELETE on the parent is what delete needs, whatever the child's own ACL.
        c.create(
            "/del",
            b"",
            &CreateMode::Persistent
                .with_acls(Acls::new(&only(Permission::DELETE | Permission::CREATE))),
        )
        .await
        .unwrap();
        c.create(
            "/del/locked",
            b"",
            &CreateMode::Persistent.with_acls(Acls::new(&none)),
        )
        .await
        .unwrap();
        c.delete("/del/locked", None).await.unwrap();
    }
}

client_test! {
    /// Proves: digest auth (`user:password`) adds a digest id: whoAmI lists ("ip", "127.0.0.1") for
    /// every connection plus ("digest", "bob") after auth; `auth` ACLs expand to the caller's
    /// digest id; such nodes are NoAuth for other identities and readable by the same user on
    /// another session; an ip ACL matches loopback clients; getACL without ADMIN shows what the
    /// node has.
    async fn digest_auth_who_am_i_and_auth_acls() {
        let server = start();
        let anon = connect(&server).await;
        assert_eq!(
            anon.list_auth_users().await.unwrap(),
            vec![AuthUser::new("ip", "127.0.0.1")]
        );

        let bob = connect(&server).await;
        bob.auth("digest", b"bob:secret").await.unwrap();
        let mut users = bob.list_auth_users().await.unwrap();
        users.sort_by(|a, b| a.scheme().cmp(b.scheme()));
        assert_eq!(
            users,
            vec![
                AuthUser::new("digest", "bob"),
                AuthUser::new("ip", "127.0.0.1")
            ]
        );

        bob.create(
            "/bob",
            b"mine",
            &CreateMode::Persistent.with_acls(Acls::creator_all()),
        )
        .await
        .unwrap();
        assert_eq!(
            bob.get_acl("/bob").await.unwrap().0,
            vec![acl(Permission::ALL, "digest", BOB_ID)],
            "`auth` expands to the caller's digest id"
        );
        assert_eq!(bob.get_data("/bob").await.unwrap().0, b"mine");
        assert_eq!(anon.get_data("/bob").await.unwrap_err(), Error::NoAuth);
        assert_eq!(
            anon.set_data("/bob", b"x", None).await.unwrap_err(),
            Error::NoAuth
        );

        let alice = Client::connector()
            .with_auth("digest", b"alice:pw")
            .connect(&server.connect_string())
            .await
            .unwrap();
        assert!(alice
            .list_auth_users()
            .await
            .unwrap()
            .contains(&AuthUser::new("digest", "alice")));
        assert_eq!(alice.get_data("/bob").await.unwrap_err(), Error::NoAuth);
        let wrong = connect(&server).await;
        wrong.auth("digest", b"bob:wrong").await.unwrap();
        assert_eq!(wrong.get_data("/bob").await.unwrap_err(), Error::NoAuth);

        let bob2 = Client::connector()
            .with_auth("digest", b"bob:secret")
            .connect(&server.connect_string())
            .await
            .unwrap();
        assert_eq!(
            bob2.set_data("/bob", b"again", None).await.unwrap().version,
            1
        );

        anon.create(
            "/ip",
            b"",
            &CreateMode::Persistent.with_acls(Acls::new(&[acl(
                Permission::ALL,
                "ip",
                "127.0.0.1",
            )])),
        )
        .await
        .unwrap();
        assert_eq!(alice.set_data("/ip", b"ok", None).await.unwrap().version, 1);
        anon.create(
            "/ip-other",
            b"",
            &CreateMode::Persistent.with_acls(Acls::new(&[acl(Permission::ALL, "ip", "10.1.2.3")])),
        )
        .await
        .unwrap();
        assert_eq!(anon.get_data("/ip-other").await.unwrap_err(), Error::NoAuth);
    }
}

client_test! {
    /// Proves: an auth packet with an unknown scheme fails with AuthFailed and ends the session
    /// (AuthFailed is terminal), while other sessions carry on.
    async fn auth_with_unknown_scheme_fails_the_session() {
        let server = start();
        let other = connect(&server).await;
        let c = connect(&server).await;
        let mut states = c.state_watcher();
        assert_eq!(c.auth("nosuch", b"x").await.unwrap_err(), Error::AuthFailed);
        let mut state = c.state();
        while state != SessionState::AuthFailed {
            state = within("AuthFailed state", states.changed()).await;
        }
        assert_eq!(c.get_data("/").await.unwrap_err(), Error::AuthFailed);
        other.create("/still", b"", &PERSISTENT).await.unwrap();
    }
}

client_test! {
    /// Proves (raw): the reply to an auth packet echoes the request's xid, whatever it is (the Java
    /// client always sends -4; the Rust crate and others use their normal xid sequence and match
    /// the reply by it), with err 0 and zxid 0; a failed auth (unknown scheme) is AuthFailed
    /// (-115). The authentication took effect: whoAmI lists the digest user.
    async fn auth_reply_echoes_the_request_xid() {
        let server = start();
        let mut raw = Raw::connect(server.addr(), 30_000, 0, &[0; 16]);
        for (xid, user) in [(-4, "bob:secret"), (7, "alice:pw")] {
            let auth = W::new().i32(0).str("digest").buf(user.as_bytes());
            raw.send(xid, raw::AUTH, auth);
            let (rxid, reply) = raw.recv_reply();
            assert_eq!(
                (rxid, reply.zxid, reply.err, reply.body.len()),
                (xid, 0, 0, 0),
                "auth reply (xid, zxid, err, body length) for request xid {xid}"
            );
        }
        let who = raw.call(raw::WHO_AM_I, W::new());
        assert_eq!(who.err, 0);
        let mut r = raw::R(&who.body);
        let n = r.i32();
        let mut ids: Vec<(String, String)> = (0..n).map(|_| (r.str(), r.str())).collect();
        ids.sort();
        assert_eq!(
            ids,
            vec![
                ("digest".to_string(), "alice".to_string()),
                ("digest".to_string(), "bob".to_string()),
                ("ip".to_string(), "127.0.0.1".to_string()),
            ]
        );

        let mut raw = Raw::connect(server.addr(), 30_000, 0, &[0; 16]);
        raw.send(9, raw::AUTH, W::new().i32(0).str("nosuch").buf(b"x"));
        let (rxid, reply) = raw.recv_reply();
        assert_eq!((rxid, reply.err), (9, -115), "failed auth (xid, err)");
    }
}

client_test! {
    /// Proves (raw, authenticating like the Java client: auth packets with xid -4): digest
    /// identities and the super digest work as in ZooKeeper: an `auth` ACL becomes the creator's
    /// digest id, other identities get NoAuth, the same user on another connection is allowed, and
    /// `super:pw` (with `-Dzookeeper.DigestAuthenticationProvider.superDigest`) bypasses the ACL;
    /// whoAmI lists the digest users.
    async fn digest_and_super_acls_with_java_style_auth() {
        let server = start_server(
            &[],
            &[(
                "zookeeper.DigestAuthenticationProvider.superDigest",
                SUPER_DIGEST,
            )],
        );
        let anon = connect(&server).await;
        async fn authed(server: &ServerProcess, user: &str) -> Raw {
            let mut raw = Raw::connect(server.addr(), 30_000, 0, &[0; 16]);
            raw.send(
                -4,
                raw::AUTH,
                W::new().i32(0).str("digest").buf(user.as_bytes()),
            );
            let (xid, reply) = raw.recv_reply();
            assert_eq!((xid, reply.err), (-4, 0), "auth {user}");
            raw
        }
        async fn who_am_i(raw: &mut Raw) -> Vec<(String, String)> {
            let reply = raw.call(raw::WHO_AM_I, W::new());
            assert_eq!(reply.err, 0);
            let mut r = raw::R(&reply.body);
            let n = r.i32();
            let mut ids: Vec<(String, String)> = (0..n).map(|_| (r.str(), r.str())).collect();
            ids.sort();
            ids
        }

        let mut bob = authed(&server, "bob:secret").await;
        let ids = who_am_i(&mut bob).await;
        assert_eq!(
            ids,
            vec![
                ("digest".to_string(), "bob".to_string()),
                ("ip".to_string(), "127.0.0.1".to_string())
            ]
        );
        let create = W::new()
            .str("/locked")
            .buf(b"secret")
            .acl(31, "auth", "")
            .i32(0);
        assert_eq!(bob.call(raw::CREATE, create).err, 0);
        let reply = bob.call(raw::GET_ACL, W::new().str("/locked"));
        assert_eq!(reply.err, 0);
        let mut r = raw::R(&reply.body);
        assert_eq!(r.i32(), 1, "one ACL entry");
        assert_eq!(
            (r.i32(), r.str(), r.str()),
            (31, "digest".to_string(), BOB_ID.to_string())
        );
        let reply = bob
            .call(raw::GET_DATA, W::new().str("/locked").bool(false));
        assert_eq!(
            (reply.err, &reply.body[..10]),
            (0, &[0, 0, 0, 6, b's', b'e', b'c', b'r', b'e', b't'][..])
        );

        assert_eq!(anon.get_data("/locked").await.unwrap_err(), Error::NoAuth);
        let mut alice = authed(&server, "alice:pw").await;
        let reply = alice
            .call(raw::GET_DATA, W::new().str("/locked").bool(false));
        assert_eq!(reply.err, -102, "another digest user: NoAuth");
        let mut bob2 = authed(&server, "bob:secret").await;
        let set = W::new().str("/locked").buf(b"v1").i32(0);
        assert_eq!(
            bob2.call(raw::SET_DATA, set).err,
            0,
            "same user, other session"
        );
        let mut fake = authed(&server, "super:wrong").await;
        let reply = fake
            .call(raw::GET_DATA, W::new().str("/locked").bool(false));
        assert_eq!(reply.err, -102, "wrong super password: NoAuth");

        let mut root = authed(&server, "super:pw").await;
        assert!(who_am_i(&mut root)
            .await
            .contains(&("digest".to_string(), "super".to_string())));
        let reply = root
            .call(raw::GET_DATA, W::new().str("/locked").bool(false));
        assert_eq!(reply.err, 0, "super reads");
        let set = W::new().str("/locked").buf(b"root").i32(1);
        assert_eq!(root.call(raw::SET_DATA, set).err, 0, "super writes");
        let child = W::new().create("/locked/c", b"", 0);
        assert_eq!(
            root.call(raw::CREATE, child).err,
            0,
            "super creates under it"
        );
        let setacl = W::new().str("/locked").acl(1, "world", "anyone").i32(-1);
        assert_eq!(root.call(7, setacl).err, 0, "super sets the ACL");
        assert_eq!(anon.get_data("/locked").await.unwrap().0, b"root");
        let set = W::new().str("/locked").buf(b"x").i32(-1);
        assert_eq!(
            bob.call(raw::SET_DATA, set).err,
            -102,
            "bob lost WRITE"
        );
    }
}

client_test! {
    /// Proves: with `zookeeper.DigestAuthenticationProvider.superDigest` set, authenticating as
    /// that user bypasses every ACL (read, write, setACL, create under and delete), and whoAmI
    /// shows the digest user.
    async fn super_digest_bypasses_acls() {
        let server = start_server(
            &[],
            &[(
                "zookeeper.DigestAuthenticationProvider.superDigest",
                SUPER_DIGEST,
            )],
        );
        let bob = connect(&server).await;
        bob.auth("digest", b"bob:secret").await.unwrap();
        bob.create(
            "/locked",
            b"secret",
            &CreateMode::Persistent.with_acls(Acls::creator_all()),
        )
        .await
        .unwrap();
        bob.create(
            "/locked/child",
            b"",
            &CreateMode::Persistent.with_acls(Acls::creator_all()),
        )
        .await
        .unwrap();

        let anon = connect(&server).await;
        assert_eq!(anon.get_data("/locked").await.unwrap_err(), Error::NoAuth);
        let not_super = connect(&server).await;
        not_super.auth("digest", b"super:wrong").await.unwrap();
        assert_eq!(
            not_super.get_data("/locked").await.unwrap_err(),
            Error::NoAuth
        );

        let root = connect(&server).await;
        root.auth("digest", b"super:pw").await.unwrap();
        assert!(root
            .list_auth_users()
            .await
            .unwrap()
            .contains(&AuthUser::new("digest", "super")));
        assert_eq!(root.get_data("/locked").await.unwrap().0, b"secret");
        assert_eq!(
            root.get_acl("/locked").await.unwrap().0,
            vec![acl(Permission::ALL, "digest", BOB_ID)]
        );
        assert_eq!(
            root.set_data("/locked", b"mine now", None)
                .await
                .unwrap()
                .version,
            1
        );
        root.create("/locked/new", b"", &PERSISTENT).await.unwrap();
        root.delete("/locked/child", None).await.unwrap();
        root.delete("/locked/new", None).await.unwrap();
        root.set_acl("/locked", &[acl(Permission::READ, "world", "anyone")], None)
            .await
            .unwrap();
        assert_eq!(anon.get_data("/locked").await.unwrap().0, b"mine now");
        assert_eq!(
            bob.set_data("/locked", b"x", None).await.unwrap_err(),
            Error::NoAuth
        );
        root.delete("/locked", None).await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Error codes and path validation
// ---------------------------------------------------------------------------------------------

client_test! {
    /// Proves: a path the crate lets through but ZooKeeper's path rules reject (a trailing "." or
    /// ".." component) is BadArguments for writes that validate the path (create, setData, setACL)
    /// and plain NoNode for reads and delete, which do not.
    async fn invalid_paths_are_bad_arguments() {
        let server = start();
        let c = connect(&server).await;
        c.create("/a", b"", &PERSISTENT).await.unwrap();
        let bad = Error::BadArguments(&"server error");
        for path in ["/a/.", "/a/.."] {
            assert_eq!(
                c.create(path, b"", &PERSISTENT).await.unwrap_err(),
                bad,
                "create {path}"
            );
            assert_eq!(
                c.create(path, b"", &EPHEMERAL).await.unwrap_err(),
                bad,
                "create {path}"
            );
            assert_eq!(
                c.set_data(path, b"", None).await.unwrap_err(),
                bad,
                "setData {path}"
            );
            assert_eq!(
                c.set_acl(path, &Acls::anyone_all(), None)
                    .await
                    .unwrap_err(),
                bad,
                "setACL {path}"
            );
            assert_eq!(
                c.get_data(path).await.unwrap_err(),
                Error::NoNode,
                "getData {path}"
            );
            assert_eq!(c.check_stat(path).await.unwrap(), None, "exists {path}");
            assert_eq!(c.list_children(path).await.unwrap_err(), Error::NoNode);
            assert_eq!(
                c.delete(path, None).await.unwrap_err(),
                Error::NoNode,
                "delete {path}"
            );
        }
        // Under a missing parent the parent check comes first.
        assert_eq!(
            c.create("/missing/.", b"", &PERSISTENT).await.unwrap_err(),
            Error::NoNode
        );
        assert_eq!(c.list_children("/a").await.unwrap(), Vec::<String>::new());
    }
}

// ---------------------------------------------------------------------------------------------
// multi and multiRead
// ---------------------------------------------------------------------------------------------

client_test! {
    /// Proves: a successful multi applies every op in order with one zxid and returns one result
    /// per op: create (path incl. sequence suffix; a plain create2 sub-op is reported as create,
    /// without a Stat, as ZooKeeper 3.8.0 does; a container create with its Stat), setData (new
    /// Stat), check, delete; later ops see earlier ones (check of the version setData just made);
    /// sequential creates in one multi get distinct numbers.
    async fn multi_success_results() {
        let server = start();
        let c = connect(&server).await;
        c.create("/m", b"", &PERSISTENT).await.unwrap();
        c.create("/m/gone", b"", &PERSISTENT).await.unwrap(); // /m cversion 1

        let mut w = c.new_multi_writer();
        w.add_create("/m/a", b"a", &PERSISTENT).unwrap();
        w.add_create("/m/s-", b"", &open(CreateMode::PersistentSequential))
            .unwrap();
        w.add_create("/m/s-", b"", &open(CreateMode::EphemeralSequential))
            .unwrap();
        w.add_set_data("/m", b"x", Some(0)).unwrap();
        w.add_check_version("/m", 1).unwrap();
        w.add_create("/m/ct", b"c", &open(CreateMode::Container))
            .unwrap();
        w.add_delete("/m/gone", Some(0)).unwrap();
        w.add_check_version("/m/a", 0).unwrap();
        let results = within("multi", w.commit()).await.expect("multi");
        assert_eq!(results.len(), 8, "{results:?}");

        let MultiWriteResult::SetData { stat: set } = &results[3] else {
            panic!("setData result: {results:?}")
        };
        let zxid = set.mzxid;
        assert_eq!(set.version, 1);
        assert_eq!(set.data_length, 1);
        for (i, path) in [(0, "/m/a"), (1, "/m/s-0000000002"), (2, "/m/s-0000000003")] {
            match &results[i] {
                MultiWriteResult::Create { path: p, stat } => {
                    assert_eq!(p, path, "result {i}");
                    assert!(
                        stat.is_invalid(),
                        "create2 sub-op reported as plain create: {stat:?}"
                    );
                }
                other => panic!("result {i}: {other:?}"),
            }
        }
        assert_eq!(results[4], MultiWriteResult::Check);
        match &results[5] {
            MultiWriteResult::Create { path, stat } => {
                assert_eq!(path, "/m/ct");
                assert_fresh_stat("container in multi", stat, 1);
                assert_eq!(stat.czxid, zxid, "one zxid for the whole multi");
                assert_eq!(stat.ephemeral_owner, 0);
            }
            other => panic!("container result: {other:?}"),
        }
        assert_eq!(results[6], MultiWriteResult::Delete);
        assert_eq!(results[7], MultiWriteResult::Check);

        let (a, a_stat) = c.get_data("/m/a").await.unwrap();
        assert_eq!(a, b"a");
        assert_eq!(a_stat.czxid, zxid);
        let eph = c.get_data("/m/s-0000000003").await.unwrap().1;
        assert_eq!(eph.ephemeral_owner, c.session_id().0);
        let (children, m) = c.get_children("/m").await.unwrap();
        assert_eq!(
            sorted(children),
            vec!["a", "ct", "s-0000000002", "s-0000000003"]
        );
        assert_eq!(m.pzxid, zxid);
        assert_eq!(m.cversion, 1 + 4 + 1, "1 + 4 creates + 1 delete");
    }
}

client_test! {
    /// Proves: a failing multi is atomic (nothing of it is applied: no creates, no version bumps,
    /// no sequence numbers used) and reports the failing op and its error: NodeExists, BadVersion
    /// from a check or a versioned setData/delete, NoNode, NotEmpty; a CheckWriter reports a failed
    /// leading check separately.
    async fn multi_failure_is_atomic() {
        let server = start();
        let c = connect(&server).await;
        c.create("/m", b"v0", &PERSISTENT).await.unwrap();
        c.create("/m/x", b"", &PERSISTENT).await.unwrap();
        c.create("/m/x/y", b"", &PERSISTENT).await.unwrap();
        let before_m = c.get_data("/m").await.unwrap();
        let before_children = sorted(c.list_children("/m").await.unwrap());

        type Build = fn(&mut zookeeper_client::MultiWriter<'_>);
        let cases: Vec<(&str, Build, usize, Error)> = vec![
            (
                "create exists",
                |w| {
                    w.add_create("/m/new", b"", &PERSISTENT).unwrap();
                    w.add_create("/m/x", b"", &PERSISTENT).unwrap();
                    w.add_set_data("/m", b"changed", None).unwrap();
                },
                1,
                Error::NodeExists,
            ),
            (
                "check bad version",
                |w| {
                    w.add_set_data("/m", b"changed", None).unwrap();
                    w.add_create("/m/s-", b"", &open(CreateMode::PersistentSequential))
                        .unwrap();
                    w.add_check_version("/m", 0).unwrap();
                },
                2,
                Error::BadVersion,
            ),
            (
                "setData bad version",
                |w| {
                    w.add_create("/m/new", b"", &PERSISTENT).unwrap();
                    w.add_set_data("/m", b"changed", Some(3)).unwrap();
                },
                1,
                Error::BadVersion,
            ),
            (
                "check missing",
                |w| {
                    w.add_check_version("/m/none", 0).unwrap();
                    w.add_create("/m/new", b"", &PERSISTENT).unwrap();
                },
                0,
                Error::NoNode,
            ),
            (
                "delete not empty",
                |w| {
                    w.add_delete("/m/x/y", None).unwrap();
                    w.add_create("/m/x/z", b"", &PERSISTENT).unwrap();
                    w.add_delete("/m/x", None).unwrap();
                },
                2,
                Error::NotEmpty,
            ),
            (
                "delete bad version",
                |w| {
                    w.add_create("/m/new", b"", &EPHEMERAL).unwrap();
                    w.add_delete("/m/x/y", Some(1)).unwrap();
                },
                1,
                Error::BadVersion,
            ),
            (
                "create under ephemeral created earlier in the multi",
                |w| {
                    w.add_create("/m/e", b"", &EPHEMERAL).unwrap();
                    w.add_create("/m/e/c", b"", &PERSISTENT).unwrap();
                },
                1,
                Error::NoChildrenForEphemerals,
            ),
        ];
        for (what, build, index, error) in cases {
            let mut w = c.new_multi_writer();
            build(&mut w);
            let err = within(what, w.commit()).await.unwrap_err();
            assert_eq!(
                err,
                MultiWriteError::OperationFailed {
                    index,
                    source: error
                },
                "{what}"
            );
            assert_eq!(
                c.get_data("/m").await.unwrap(),
                before_m,
                "{what}: /m untouched"
            );
            assert_eq!(
                sorted(c.list_children("/m").await.unwrap()),
                before_children,
                "{what}: no child created"
            );
            assert!(exists(&c, "/m/x/y").await, "{what}: nothing deleted");
        }
        // No sequence number was consumed by the failed multis (ZooKeeper rolls back the cversion).
        let (_, s) = c
            .create("/m/s-", b"", &open(CreateMode::PersistentSequential))
            .await
            .unwrap();
        assert_eq!(s.into_i64(), 1);

        let mut cw = c.new_check_writer("/m", Some(5)).unwrap();
        cw.add_create("/m/new", b"", &PERSISTENT).unwrap();
        assert_eq!(
            cw.commit().await.unwrap_err(),
            CheckWriteError::CheckFailed {
                source: Error::BadVersion
            }
        );
        let mut cw = c.new_check_writer("/m", Some(0)).unwrap();
        cw.add_create("/m/new", b"", &PERSISTENT).unwrap();
        let done = cw.commit().await.unwrap();
        assert!(matches!(&done[..], [MultiWriteResult::Create { path, .. }] if path == "/m/new"));
    }
}

client_test! {
    /// Proves (raw, since the crate shows only the failing op): in a failed multi the reply
    /// header's err is 0 and every op gets an error result: ops before the failing one 0, the
    /// failing op its code, later ops RuntimeInconsistency (-2); and the failed multi still
    /// consumes a zxid.
    async fn multi_failure_reports_every_op() {
        let server = start();
        let c = connect(&server).await;
        c.create("/exists", b"", &PERSISTENT).await.unwrap();
        let mut raw = Raw::connect(server.addr(), 30_000, 0, &[0; 16]);
        let body = W::new()
            .op(raw::CREATE)
            .create("/fresh", b"", 0)
            .op(raw::CREATE)
            .create("/exists", b"", 0)
            .op(raw::SET_DATA)
            .str("/exists")
            .buf(b"x")
            .i32(-1)
            .done();
        let before = c.set_data("/exists", b"", None).await.unwrap().mzxid;
        let reply = raw.call(raw::MULTI, body);
        assert_eq!(
            reply.err, 0,
            "a failed multi is not an error at the header level"
        );
        assert_eq!(reply.zxid, before + 1, "the failed multi got a zxid");
        let mut r = raw::R(&reply.body);
        let mut results = Vec::new();
        loop {
            let (op, done, err) = (r.i32(), r.bool(), r.i32());
            if done {
                assert_eq!((op, err), (-1, -1), "terminator");
                break;
            }
            assert_eq!(op, -1, "error results have type -1");
            let inner = r.i32();
            assert_eq!(inner, err, "ErrorResponse repeats the header's err");
            results.push(err);
        }
        assert!(r.0.is_empty());
        assert_eq!(results, vec![0, -110, -2]);
        assert!(!exists(&c, "/fresh").await);
        let after = c.set_data("/exists", b"", None).await.unwrap().mzxid;
        assert_eq!(after, reply.zxid + 1);
    }
}

client_test! {
    /// Proves: multiRead returns one result per op, each independently: data + Stat, children, or
    /// its own error (NoNode, NoAuth) without failing the others.
    async fn multi_read_results() {
        let server = start();
        let c = connect(&server).await;
        c.create("/mr", b"data", &PERSISTENT).await.unwrap();
        c.create("/mr/a", b"", &PERSISTENT).await.unwrap();
        c.create("/mr/b", b"", &PERSISTENT).await.unwrap();
        c.create(
            "/mr/locked",
            b"",
            &CreateMode::Persistent.with_acls(Acls::new(&[acl(Permission::ALL, "digest", BOB_ID)])),
        )
        .await
        .unwrap();
        let stat = c.set_data("/mr", b"new data", None).await.unwrap();

        let mut r = c.new_multi_reader();
        r.add_get_data("/mr").unwrap();
        r.add_get_children("/mr").unwrap();
        r.add_get_data("/missing").unwrap();
        r.add_get_children("/missing").unwrap();
        r.add_get_data("/mr/locked").unwrap();
        r.add_get_data("/mr/a").unwrap();
        let results = within("multiRead", r.commit()).await.expect("multiRead");
        assert_eq!(results.len(), 6, "{results:?}");
        match &results[0] {
            MultiReadResult::Data { data, stat: s } => {
                assert_eq!(data, b"new data");
                assert_eq!(*s, stat);
            }
            other => panic!("{other:?}"),
        }
        match &results[1] {
            MultiReadResult::Children { children } => {
                assert_eq!(sorted(children.clone()), vec!["a", "b", "locked"])
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&results[2], MultiReadResult::Error { err: Error::NoNode }),
            "{:?}",
            results[2]
        );
        assert!(
            matches!(&results[3], MultiReadResult::Error { err: Error::NoNode }),
            "{:?}",
            results[3]
        );
        assert!(
            matches!(&results[4], MultiReadResult::Error { err: Error::NoAuth }),
            "{:?}",
            results[4]
        );
        assert!(
            matches!(&results[5], MultiReadResult::Data { data, .. } if data.is_empty()),
            "{:?}",
            results[5]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Watches
// ---------------------------------------------------------------------------------------------

client_test! {
    /// Proves: one-shot watches fire with the right event type: getData watch → NodeDataChanged on
    /// setData and NodeDeleted on delete; exists watch on a missing node → NodeCreated, on an
    /// existing node → NodeDataChanged; getChildren watch → NodeChildrenChanged on child create and
    /// delete, NodeDeleted when the node itself goes; a child's setData does not trigger the
    /// parent's child watch.
    async fn one_shot_watch_event_types() {
        let server = start();
        let a = connect(&server).await;
        let b = connect(&server).await;
        b.create("/w", b"", &PERSISTENT).await.unwrap();

        let (_, _, data_w) = a.get_and_watch_data("/w").await.unwrap();
        b.set_data("/w", b"1", None).await.unwrap();
        assert_eq!(
            fired("data watch", data_w).await,
            ev(EventType::NodeDataChanged, "/w")
        );

        let (none, exist_w) = a.check_and_watch_stat("/w/c").await.unwrap();
        assert_eq!(none, None);
        let (_, _, child_w) = a.get_and_watch_children("/w").await.unwrap();
        b.create("/w/c", b"", &PERSISTENT).await.unwrap();
        assert_eq!(
            fired("exists watch", exist_w).await,
            ev(EventType::NodeCreated, "/w/c")
        );
        assert_eq!(
            fired("child watch", child_w).await,
            ev(EventType::NodeChildrenChanged, "/w")
        );

        let (_, exist_w) = a.check_and_watch_stat("/w/c").await.unwrap();
        let (_, child_w) = a.list_and_watch_children("/w").await.unwrap();
        b.set_data("/w/c", b"2", None).await.unwrap();
        assert_eq!(
            fired("exists watch", exist_w).await,
            ev(EventType::NodeDataChanged, "/w/c")
        );
        // The child's setData did not fire the parent's child watch: the next thing it sees is
        // the delete.
        let (_, _, data_w) = a.get_and_watch_data("/w/c").await.unwrap();
        let (_, _, own_child_w) = a.get_and_watch_children("/w/c").await.unwrap();
        b.delete("/w/c", None).await.unwrap();
        assert_eq!(
            fired("child watch", child_w).await,
            ev(EventType::NodeChildrenChanged, "/w")
        );
        assert_eq!(
            fired("data watch", data_w).await,
            ev(EventType::NodeDeleted, "/w/c")
        );
        assert_eq!(
            fired("own child watch", own_child_w).await,
            ev(EventType::NodeDeleted, "/w/c")
        );

        // setACL triggers nothing; the following setData does.
        let (_, _, data_w) = a.get_and_watch_data("/w").await.unwrap();
        b.set_acl("/w", &Acls::anyone_all(), None).await.unwrap();
        a.sync("/w").await.unwrap();
        let mut data_w = pin!(data_w.changed());
        assert!(
            poll_once(data_w.as_mut()).is_none(),
            "setACL fired a data watch"
        );
        b.set_data("/w", b"2", None).await.unwrap();
        let e = within("data watch after setACL", data_w).await;
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeDataChanged, "/w")
        );
    }
}

client_test! {
    /// Proves (raw, to see exactly what the server sends): each one-shot watch fires exactly once
    /// and is then gone; a connection with several watches on a deleted node gets one NodeDeleted;
    /// a watch set on a missing node by getData/getChildren is not registered (only exists
    /// registers); notifications carry state SyncConnected and zxid -1 (ZooKeeper 3.8).
    async fn one_shot_watches_fire_exactly_once() {
        let server = start();
        let b = connect(&server).await;
        b.create("/n", b"", &PERSISTENT).await.unwrap();
        let mut a = Raw::connect(server.addr(), 30_000, 0, &[0; 16]);

        let r = a.call(raw::GET_DATA, W::new().str("/n").bool(true));
        assert_eq!(r.err, 0);
        let r = a.call(raw::EXISTS, W::new().str("/m").bool(true));
        assert_eq!(
            r.err, -101,
            "exists on a missing node is NoNode but sets the watch"
        );
        let r = a
            .call(raw::GET_CHILDREN, W::new().str("/n").bool(true));
        assert_eq!(r.err, 0);
        let r = a.call(raw::GET_DATA, W::new().str("/x").bool(true));
        assert_eq!(r.err, -101);
        let r = a
            .call(raw::GET_CHILDREN, W::new().str("/x").bool(true));
        assert_eq!(r.err, -101);

        b.set_data("/n", b"1", None).await.unwrap();
        b.set_data("/n", b"2", None).await.unwrap();
        b.create("/m", b"", &PERSISTENT).await.unwrap();
        b.set_data("/m", b"1", None).await.unwrap();
        b.create("/n/c1", b"", &PERSISTENT).await.unwrap();
        b.create("/n/c2", b"", &PERSISTENT).await.unwrap();
        b.create("/x", b"", &PERSISTENT).await.unwrap();
        b.delete("/x", None).await.unwrap();
        a.barrier();
        assert!(
            a.events.iter().all(|e| e.zxid == -1),
            "notification zxid: {:?}",
            a.events
        );
        assert_eq!(
            a.take_events(),
            vec![
                rev(raw::DATA_CHANGED, "/n"),
                rev(raw::CREATED, "/m"),
                rev(raw::CHILDREN_CHANGED, "/n"),
            ]
        );

        // Data and child watch on the same node, plus a child watch on the parent: one NodeDeleted.
        for (op, path) in [
            (raw::GET_DATA, "/n/c1"),
            (raw::GET_CHILDREN, "/n/c1"),
            (raw::EXISTS, "/n/c1"),
            (raw::GET_CHILDREN, "/n"),
        ] {
            assert_eq!(a.call(op, W::new().str(path).bool(true)).err, 0);
        }
        b.delete("/n/c1", None).await.unwrap();
        b.delete("/n/c2", None).await.unwrap();
        a.barrier();
        let mut got = a.take_events();
        got.sort();
        assert_eq!(
            got,
            vec![rev(raw::DELETED, "/n/c1"), rev(raw::CHILDREN_CHANGED, "/n")]
        );
    }
}

client_test! {
    /// Proves: a persistent watch keeps firing for the node's own creation, data changes, child
    /// creates/deletes and deletion (not for a child's data), and survives the node's deletion and
    /// re-creation.
    async fn persistent_watch_keeps_firing() {
        let server = start();
        let a = connect(&server).await;
        let b = connect(&server).await;
        let mut w = a.watch("/pw", AddWatchMode::Persistent).await.unwrap();

        b.create("/pw", b"", &PERSISTENT).await.unwrap();
        b.set_data("/pw", b"1", None).await.unwrap();
        b.set_data("/pw", b"2", None).await.unwrap();
        b.create("/pw/c", b"", &PERSISTENT).await.unwrap();
        b.set_data("/pw/c", b"1", None).await.unwrap();
        b.delete("/pw/c", None).await.unwrap();
        b.delete("/pw", None).await.unwrap();
        b.create("/pw", b"", &PERSISTENT).await.unwrap();
        let expected = vec![
            ev(EventType::NodeCreated, "/pw"),
            ev(EventType::NodeDataChanged, "/pw"),
            ev(EventType::NodeDataChanged, "/pw"),
            ev(EventType::NodeChildrenChanged, "/pw"),
            ev(EventType::NodeChildrenChanged, "/pw"),
            ev(EventType::NodeDeleted, "/pw"),
            ev(EventType::NodeCreated, "/pw"),
        ];
        for (i, want) in expected.into_iter().enumerate() {
            assert_eq!(
                next(&format!("persistent event {i}"), &mut w).await,
                want,
                "event {i}"
            );
        }
        a.sync("/").await.unwrap();
        assert!(poll_once(w.changed()).is_none(), "no further event");
    }
}

client_test! {
    /// Proves: a persistent recursive watch fires for the node and every descendant (created, data
    /// changed, deleted, at any depth) and keeps firing; a non-recursive persistent watch on the
    /// same client sees only its own node.
    async fn persistent_recursive_watch_sees_descendants() {
        let server = start();
        let a = connect(&server).await;
        let b = connect(&server).await;
        let mut rw = a
            .watch("/rw", AddWatchMode::PersistentRecursive)
            .await
            .unwrap();

        b.create("/rw", b"", &PERSISTENT).await.unwrap();
        b.create("/rw/a", b"", &PERSISTENT).await.unwrap();
        b.create("/rw/a/b", b"", &EPHEMERAL).await.unwrap();
        b.set_data("/rw/a/b", b"1", None).await.unwrap();
        b.set_data("/rw", b"1", None).await.unwrap();
        b.delete("/rw/a/b", None).await.unwrap();
        // A sibling with a common prefix is not inside.
        b.create("/rwx", b"", &PERSISTENT).await.unwrap();
        b.delete("/rw/a", None).await.unwrap();
        let expected = vec![
            ev(EventType::NodeCreated, "/rw"),
            ev(EventType::NodeCreated, "/rw/a"),
            ev(EventType::NodeCreated, "/rw/a/b"),
            ev(EventType::NodeDataChanged, "/rw/a/b"),
            ev(EventType::NodeDataChanged, "/rw"),
            ev(EventType::NodeDeleted, "/rw/a/b"),
            ev(EventType::NodeDeleted, "/rw/a"),
        ];
        for (i, want) in expected.into_iter().enumerate() {
            assert_eq!(
                next(&format!("recursive event {i}"), &mut rw).await,
                want,
                "event {i}"
            );
        }
        a.sync("/").await.unwrap();
        assert!(poll_once(rw.changed()).is_none(), "no further event");
    }
}

client_test! {
    /// Proves (raw, because the crate drops such events itself): the server never sends
    /// NodeChildrenChanged for a recursive watch, sends it for a plain persistent watch, and both
    /// kinds of persistent watch stay registered after firing; addWatch's reply body is an
    /// ErrorResponse of 0.
    async fn persistent_watches_exact_events() {
        let server = start();
        let b = connect(&server).await;
        let mut a = Raw::connect(server.addr(), 30_000, 0, &[0; 16]);
        let r = a.call(raw::ADD_WATCH, W::new().str("/r").i32(1));
        assert_eq!((r.err, r.body.as_slice()), (0, &[0u8, 0, 0, 0][..]));
        let r = a.call(raw::ADD_WATCH, W::new().str("/p").i32(0));
        assert_eq!(r.err, 0);

        for _round in 0..2 {
            b.create("/r", b"", &PERSISTENT).await.unwrap();
            b.create("/r/a", b"", &PERSISTENT).await.unwrap();
            b.create("/r/a/b", b"", &PERSISTENT).await.unwrap();
            b.set_data("/r/a/b", b"1", None).await.unwrap();
            b.delete("/r/a/b", None).await.unwrap();
            b.delete("/r/a", None).await.unwrap();
            b.delete("/r", None).await.unwrap();
            b.create("/p", b"", &PERSISTENT).await.unwrap();
            b.create("/p/c", b"", &PERSISTENT).await.unwrap();
            b.set_data("/p/c", b"1", None).await.unwrap();
            b.delete("/p/c", None).await.unwrap();
            b.set_data("/p", b"1", None).await.unwrap();
            b.delete("/p", None).await.unwrap();
            a.barrier();
            assert_eq!(
                a.take_events(),
                vec![
                    rev(raw::CREATED, "/r"),
                    rev(raw::CREATED, "/r/a"),
                    rev(raw::CREATED, "/r/a/b"),
                    rev(raw::DATA_CHANGED, "/r/a/b"),
                    rev(raw::DELETED, "/r/a/b"),
                    rev(raw::DELETED, "/r/a"),
                    rev(raw::DELETED, "/r"),
                    rev(raw::CREATED, "/p"),
                    rev(raw::CHILDREN_CHANGED, "/p"),
                    rev(raw::CHILDREN_CHANGED, "/p"),
                    rev(raw::DATA_CHANGED, "/p"),
                    rev(raw::DELETED, "/p"),
                ]
            );
        }
    }
}

client_test! {
    /// Proves ZooKeeper's ordering guarantee: with a watch set by session A, when session B changes
    /// the node, A receives the watch event before it can see the new value: at the moment A's
    /// getData (sent after B's change, on the same connection) returns the new data, the event has
    /// already been delivered. Repeated with B's write racing A's reads.
    async fn watch_event_arrives_before_the_new_value() {
        let server = start();
        let a = connect(&server).await;
        let b = connect(&server).await;
        a.create("/o", b"0", &PERSISTENT).await.unwrap();

        for i in 1..=100u32 {
            let value = i.to_string().into_bytes();
            let (old, _, watcher) = a.get_and_watch_data("/o").await.unwrap();
            assert_ne!(old, value);
            let mut watcher = pin!(watcher.changed());
            let writer = {
                let b = b.clone();
                let value = value.clone();
                tokio::spawn(async move { b.set_data("/o", &value, None).await })
            };
            loop {
                let (data, _) = within("getData", a.get_data("/o")).await.unwrap();
                if data == value {
                    let event = poll_once(watcher.as_mut()).unwrap_or_else(|| {
                        panic!("round {i}: getData returned the new value before the watch event")
                    });
                    assert_eq!(
                        (event.event_type, event.path.as_str()),
                        (EventType::NodeDataChanged, "/o")
                    );
                    break;
                }
                // (With the old value the event may or may not be there yet: the crate dispatches a
                // reply and an event that arrive in the same read together, so nothing to check.)
            }
            writer.await.unwrap().unwrap();
        }
    }
}

client_test! {
    /// Proves: a session's own write triggers its own watch, and the event arrives before the
    /// write's reply (for setData, create, delete and a multi).
    async fn own_write_event_arrives_before_the_reply() {
        let server = start();
        let a = connect(&server).await;
        a.create("/own", b"", &PERSISTENT).await.unwrap();

        let (_, _, w) = a.get_and_watch_data("/own").await.unwrap();
        let mut w = pin!(w.changed());
        a.set_data("/own", b"1", None).await.unwrap();
        let e = poll_once(w.as_mut()).expect("setData reply before its watch event");
        assert_eq!(e.event_type, EventType::NodeDataChanged);

        let (_, w) = a.list_and_watch_children("/own").await.unwrap();
        let mut w = pin!(w.changed());
        a.create("/own/c", b"", &PERSISTENT).await.unwrap();
        let e = poll_once(w.as_mut()).expect("create reply before its watch event");
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeChildrenChanged, "/own")
        );

        let (_, w) = a.check_and_watch_stat("/own/c").await.unwrap();
        let mut w = pin!(w.changed());
        a.delete("/own/c", None).await.unwrap();
        let e = poll_once(w.as_mut()).expect("delete reply before its watch event");
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeDeleted, "/own/c")
        );

        let mut pw = a
            .watch("/own", AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        let mut m = a.new_multi_writer();
        m.add_create("/own/x", b"", &PERSISTENT).unwrap();
        m.add_set_data("/own/x", b"1", None).unwrap();
        m.commit().await.unwrap();
        assert_eq!(
            poll_once(pw.changed()).map(|e| (e.event_type, e.path)),
            Some(ev(EventType::NodeCreated, "/own/x"))
        );
        assert_eq!(
            poll_once(pw.changed()).map(|e| (e.event_type, e.path)),
            Some(ev(EventType::NodeDataChanged, "/own/x"))
        );
    }
}

client_test! {
    /// Proves: removeWatches through the crate (the watcher's `remove`) is acknowledged by the
    /// server for one-shot data and child watches and for persistent watches, and a removed watch
    /// does not fire.
    #[allow(deprecated)]
    async fn remove_watches_through_the_crate() {
        let server = start();
        let a = connect(&server).await;
        let b = connect(&server).await;
        a.create("/rm", b"", &PERSISTENT).await.unwrap();

        let (_, _, data_w) = a.get_and_watch_data("/rm").await.unwrap();
        within("remove data watch", data_w.remove()).await.unwrap();
        let (_, child_w) = a.list_and_watch_children("/rm").await.unwrap();
        within("remove child watch", child_w.remove())
            .await
            .unwrap();
        let (_, exist_w) = a.check_and_watch_stat("/rm-missing").await.unwrap();
        within("remove exist watch", exist_w.remove())
            .await
            .unwrap();
        let pw = a.watch("/rm", AddWatchMode::Persistent).await.unwrap();
        within("remove persistent watch", pw.remove())
            .await
            .unwrap();
        let rw = a
            .watch("/rm", AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        within("remove recursive watch", rw.remove()).await.unwrap();

        // A fresh watch still works and sees only what happens now.
        let (_, _, w) = a.get_and_watch_data("/rm").await.unwrap();
        b.create("/rm/c", b"", &PERSISTENT).await.unwrap();
        b.create("/rm-missing", b"", &PERSISTENT).await.unwrap();
        b.set_data("/rm", b"1", None).await.unwrap();
        assert_eq!(
            fired("fresh watch", w).await,
            ev(EventType::NodeDataChanged, "/rm")
        );
    }
}

client_test! {
    /// Proves (raw: the crate has no checkWatches): checkWatches/removeWatches look at this
    /// connection's watches by type (Children 1, Data 2, Any 3) and answer NoWatcher (-121) when
    /// none matches; a removed watch no longer fires; another connection's watch is unaffected;
    /// persistent watches are found and removed with type Any.
    ///
    /// (ZooKeeper 3.8's checkWatches also succeeds when only *another* connection watches the path,
    /// fixed in 3.9 by ZOOKEEPER-4466; the checks here avoid that situation.)
    async fn check_and_remove_watches() {
        let server = start();
        let b = connect(&server).await;
        b.create("/cw", b"", &PERSISTENT).await.unwrap();
        let mut a = Raw::connect(server.addr(), 30_000, 0, &[0; 16]);
        let mut other = Raw::connect(server.addr(), 30_000, 0, &[0; 16]);
        let watch_req = |p: &str, t: i32| W::new().str(p).i32(t);

        assert_eq!(
            a.call(raw::CHECK_WATCHES, watch_req("/cw", raw::WATCH_ANY))
                .err,
            -121
        );
        assert_eq!(
            a.call(raw::REMOVE_WATCHES, watch_req("/cw", raw::WATCH_ANY))
                .err,
            -121
        );
        assert_eq!(
            a.call(raw::GET_DATA, W::new().str("/cw").bool(true))
                .err,
            0
        );
        assert_eq!(
            a.call(raw::CHECK_WATCHES, watch_req("/cw", raw::WATCH_DATA))
                .err,
            0
        );
        assert_eq!(
            a.call(raw::CHECK_WATCHES, watch_req("/cw", raw::WATCH_ANY))
                .err,
            0
        );
        assert_eq!(
            a.call(raw::CHECK_WATCHES, watch_req("/cw", raw::WATCH_CHILDREN))
                .err,
            -121
        );
        assert_eq!(
            a.call(raw::REMOVE_WATCHES, watch_req("/cw", raw::WATCH_CHILDREN))
                .err,
            -121
        );
        assert_eq!(
            a.call(raw::CHECK_WATCHES, watch_req("/other", raw::WATCH_DATA))
                .err,
            -121
        );

        assert_eq!(
            a.call(raw::GET_CHILDREN, W::new().str("/cw").bool(true))
                .err,
            0
        );
        assert_eq!(
            a.call(raw::CHECK_WATCHES, watch_req("/cw", raw::WATCH_CHILDREN))
                .err,
            0
        );
        assert_eq!(
            a.call(raw::REMOVE_WATCHES, watch_req("/cw", raw::WATCH_DATA))
                .err,
            0
        );
        assert_eq!(
            a.call(raw::CHECK_WATCHES, watch_req("/cw", raw::WATCH_DATA))
                .err,
            -121
        );
        assert_eq!(
            a.call(raw::CHECK_WATCHES, watch_req("/cw", raw::WATCH_CHILDREN))
                .err,
            0
        );

        assert_eq!(
            other
                .call(raw::GET_DATA, W::new().str("/cw").bool(true))
                .err,
            0
        );
        b.set_data("/cw", b"1", None).await.unwrap();
        a.barrier();
        other.barrier();
        assert_eq!(
            a.take_events(),
            vec![],
            "the removed data watch did not fire"
        );
        assert_eq!(other.take_events(), vec![rev(raw::DATA_CHANGED, "/cw")]);

        assert_eq!(
            a.call(raw::REMOVE_WATCHES, watch_req("/cw", raw::WATCH_ANY))
                .err,
            0
        );
        assert_eq!(
            a.call(raw::CHECK_WATCHES, watch_req("/cw", raw::WATCH_ANY))
                .err,
            -121
        );
        b.create("/cw/c", b"", &PERSISTENT).await.unwrap();
        a.barrier();
        assert_eq!(
            a.take_events(),
            vec![],
            "the removed child watch did not fire"
        );

        // Persistent watches are found by Any and removed by Any.
        assert_eq!(
            a.call(raw::ADD_WATCH, W::new().str("/cw").i32(1)).err,
            0
        );
        assert_eq!(
            a.call(raw::CHECK_WATCHES, watch_req("/cw", raw::WATCH_ANY))
                .err,
            0
        );
        assert_eq!(
            a.call(raw::REMOVE_WATCHES, watch_req("/cw", raw::WATCH_ANY))
                .err,
            0
        );
        assert_eq!(
            a.call(raw::CHECK_WATCHES, watch_req("/cw", raw::WATCH_ANY))
                .err,
            -121
        );
        b.set_data("/cw/c", b"1", None).await.unwrap();
        b.set_data("/cw", b"2", None).await.unwrap();
        a.barrier();
        assert_eq!(
            a.take_events(),
            vec![],
            "the removed persistent watch did not fire"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

client_test! {
    /// Proves: closing a session (dropping the last Client, which sends closeSession) deletes all
    /// its ephemerals at once, and other sessions' watches on them and on their parent fire; the
    /// parent's stat shows the deletes.
    async fn closing_a_session_deletes_its_ephemerals() {
        let server = start();
        let b = connect(&server).await;
        b.create("/s", b"", &PERSISTENT).await.unwrap();
        let a = connect(&server).await;
        a.create("/s/e1", b"", &EPHEMERAL).await.unwrap();
        a.create("/s/e2-", b"", &open(CreateMode::EphemeralSequential))
            .await
            .unwrap();
        a.create("/s/p", b"", &PERSISTENT).await.unwrap();

        let (_, _, w1) = b.get_and_watch_data("/s/e1").await.unwrap();
        let (_, w2) = b.check_and_watch_stat("/s/e2-0000000001").await.unwrap();
        let (children, wc) = b.list_and_watch_children("/s").await.unwrap();
        assert_eq!(children.len(), 3);

        drop(a);
        assert_eq!(fired("e1", w1).await, ev(EventType::NodeDeleted, "/s/e1"));
        assert_eq!(
            fired("e2", w2).await,
            ev(EventType::NodeDeleted, "/s/e2-0000000001")
        );
        assert_eq!(
            fired("parent", wc).await,
            ev(EventType::NodeChildrenChanged, "/s")
        );
        let (children, stat) = b.get_children("/s").await.unwrap();
        assert_eq!(children, vec!["p"], "only the persistent child is left");
        assert_eq!(
            (stat.num_children, stat.cversion),
            (1, 5),
            "3 creates + 2 deletes"
        );
    }
}

client_test! {
    /// Proves: the session timeout is negotiated within [2, 20] × tickTime; a session survives the
    /// loss of its connection and is resumed (same id, its ephemerals still owned by it) by
    /// connecting with its id and password within the timeout; the resumed connection keeps it
    /// alive beyond the timeout; a resume with a wrong password is refused without hurting the
    /// session.
    async fn session_resume_within_timeout() {
        let server = start(); // tickTime=2000: timeouts 4000..=40000 ms
        let cs = server.connect_string();
        for (asked, got) in [
            (1_000, 4_000),
            (4_000, 4_000),
            (10_000, 10_000),
            (100_000, 40_000),
        ] {
            let c = Client::connector()
                .with_session_timeout(Duration::from_millis(asked))
                .connect(&cs)
                .await
                .unwrap();
            assert_eq!(
                c.session_timeout(),
                Duration::from_millis(got),
                "asked {asked} ms"
            );
        }

        let a = Client::connector()
            .with_session_timeout(Duration::from_secs(4))
            .with_detached()
            .connect(&cs)
            .await
            .unwrap();
        let id = a.session_id();
        a.create("/res", b"", &EPHEMERAL).await.unwrap();
        let session = a.session().clone();
        drop(a); // detached: the connection closes without closeSession

        let b = Client::connector()
            .with_session_timeout(Duration::from_secs(4))
            .with_session(session)
            .connect(&cs)
            .await
            .expect("resume");
        assert_eq!(b.session_id(), id, "same session");
        assert_eq!(b.list_ephemerals("/").await.unwrap(), vec!["/res"]);

        // A resume with the right id and a wrong password is refused (timeout 0, session 0).
        let refused = Raw::connect(server.addr(), 4_000, id.0, &[0; 16]);
        assert_eq!((refused.timeout, refused.session_id), (0, 0));

        // Longer than the session timeout: the resumed connection's pings keep the session alive.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let stat = b
            .check_stat("/res")
            .await
            .unwrap()
            .expect("ephemeral still there");
        assert_eq!(stat.ephemeral_owner, id.0);
        assert_eq!(b.state(), SessionState::SyncConnected);
    }
}

client_test! {
    /// Proves: a session whose client vanished without closing it expires after its timeout: its
    /// ephemerals are deleted (other sessions' watches fire) and resuming it fails with
    /// SessionExpired.
    async fn session_expiry_deletes_ephemerals() {
        let server = start();
        let cs = server.connect_string();
        let b = connect(&server).await;
        b.create("/exp", b"", &PERSISTENT).await.unwrap();

        let a = Client::connector()
            .with_session_timeout(Duration::from_secs(4))
            .with_detached()
            .connect(&cs)
            .await
            .unwrap();
        a.create("/exp/e", b"", &EPHEMERAL).await.unwrap();
        let session = a.session().clone();
        // And a raw session that just goes silent (no close, socket left open).
        let raw = Raw::connect(server.addr(), 4_000, 0, &[0; 16]);
        assert_eq!(raw.timeout, 4_000);
        let mut raw = raw;
        assert_eq!(
            raw.call(raw::CREATE, W::new().create("/exp/raw", b"", 1))
                .err,
            0
        );

        let (_, w) = b.check_and_watch_stat("/exp/e").await.unwrap();
        let (_, w_raw) = b.check_and_watch_stat("/exp/raw").await.unwrap();
        drop(a);

        let deadline = Duration::from_secs(15);
        let e = tokio::time::timeout(deadline, w.changed())
            .await
            .expect("the ephemeral of the vanished client is deleted within 15 s");
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeDeleted, "/exp/e")
        );
        let e = tokio::time::timeout(deadline, w_raw.changed())
            .await
            .expect("the ephemeral of the silent raw session is deleted within 15 s");
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeDeleted, "/exp/raw")
        );
        assert_eq!(b.list_children("/exp").await.unwrap(), Vec::<String>::new());
        let (raw_id, raw_passwd) = (raw.session_id, raw.passwd.clone());
        drop(raw);
        let again = Raw::connect(server.addr(), 4_000, raw_id, &raw_passwd);
        assert_eq!(
            (again.timeout, again.session_id),
            (0, 0),
            "expired: resume refused"
        );

        let err = Client::connector()
            .with_session(session)
            .with_fail_eagerly()
            .connect(&cs)
            .await
            .unwrap_err();
        assert_eq!(err, Error::SessionExpired);
    }
}

// ---------------------------------------------------------------------------------------------
// Containers and TTL nodes
// ---------------------------------------------------------------------------------------------

const FAST_REAPER: [(&str, &str); 1] = [("znode.container.checkIntervalMs", "200")];

client_test! {
    /// Proves: a container is deleted by the server once its last child is gone (watchers see
    /// NodeDeleted), while a container that never had a child, and one that still has a child,
    /// stay.
    async fn containers_are_reaped_after_their_last_child() {
        let server = start_server(&[], &FAST_REAPER);
        let c = connect(&server).await;
        let container = open(CreateMode::Container);
        c.create("/never-used", b"", &container).await.unwrap();
        c.create("/busy", b"", &container).await.unwrap();
        c.create("/busy/child", b"", &PERSISTENT).await.unwrap();
        c.create("/used", b"", &container).await.unwrap();
        c.create("/used/child", b"", &EPHEMERAL).await.unwrap();
        c.create("/used/child2", b"", &PERSISTENT).await.unwrap();
        let (_, w) = c.check_and_watch_stat("/used").await.unwrap();

        c.delete("/used/child", None).await.unwrap();
        // Still has child2; then the last one goes.
        c.delete("/used/child2", None).await.unwrap();
        let e = tokio::time::timeout(Duration::from_secs(15), w.changed())
            .await
            .expect("the emptied container is deleted within 15 s");
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeDeleted, "/used")
        );
        assert!(!exists(&c, "/used").await);
        // The reaper has run since those were created: they are not candidates.
        assert!(
            exists(&c, "/never-used").await,
            "a never-used container stays"
        );
        assert!(exists(&c, "/busy").await, "a container with a child stays");

        c.delete("/busy/child", None).await.unwrap();
        wait_until("/busy reaped", Duration::from_secs(15), || async {
            !exists(&c, "/busy").await
        })
        .await;
        assert!(exists(&c, "/never-used").await);
    }
}

client_test! {
    /// Proves: a TTL node (plain or sequential) that has no children is deleted once it has not
    /// been modified for its TTL (watchers see NodeDeleted); one with a child and one with a long
    /// TTL stay; after the child goes the expired parent is deleted too.
    async fn ttl_nodes_expire() {
        let server = start_server(&[], &FAST_REAPER);
        let c = connect(&server).await;
        let short = open(CreateMode::Persistent).with_ttl(Duration::from_millis(100));
        let short_seq = open(CreateMode::PersistentSequential).with_ttl(Duration::from_millis(100));
        let long = open(CreateMode::Persistent).with_ttl(Duration::from_secs(3600));
        c.create("/long", b"", &long).await.unwrap();
        c.create("/parent", b"", &short).await.unwrap();
        c.create("/parent/child", b"", &PERSISTENT).await.unwrap();
        c.create("/seq-", b"", &short_seq).await.unwrap();
        c.create("/short", b"", &short).await.unwrap();
        let (_, w) = c.check_and_watch_stat("/short").await.unwrap();

        let e = tokio::time::timeout(Duration::from_secs(15), w.changed())
            .await
            .expect("the TTL node is deleted within 15 s");
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeDeleted, "/short")
        );
        wait_until(
            "/seq-0000000002 expired",
            Duration::from_secs(15),
            || async { !exists(&c, "/seq-0000000002").await },
        )
        .await;
        assert!(exists(&c, "/long").await, "a long TTL keeps the node");
        assert!(exists(&c, "/parent").await, "a TTL node with a child stays");

        c.delete("/parent/child", None).await.unwrap();
        wait_until("/parent expired", Duration::from_secs(15), || async {
            !exists(&c, "/parent").await
        })
        .await;
        assert!(exists(&c, "/long").await);
    }
}
