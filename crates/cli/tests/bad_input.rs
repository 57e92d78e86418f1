//! Hostile and malformed client input against the real `corral` binary, over raw TCP.
//!
//! Every test starts its own server ([`corral_testkit::start_corral`]), establishes a healthy
//! session first, then misbehaves on another connection and checks three things: what the
//! misbehaving connection gets (ZooKeeper 3.8.0's answer, or nothing) and that it is closed
//! within a bounded time; that the healthy session still answers a ping and a create; and that
//! the server process is still running.
//!
//! The expected behaviour is ZooKeeper 3.8.0's, checked against the Debian 3.8.0 jars with a
//! raw-socket client (reference §2.1–2.3, §2.13). Where corral differs, the test still asserts
//! ZooKeeper's behaviour and is `#[ignore]`d with the reason.
//!
//! All socket reads have timeouts and every loop is bounded by a deadline or a count.

use std::io::{self, ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use corral_proto::jute::{Jute, WriteJute};
use corral_proto::records::*;
use corral_proto::request::{frame, Connect, Request};
use corral_testkit::{four_letter, probe_handshake, raw, start_corral, ServerProcess};

/// Bound for one request/response exchange.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server may take to close a connection it should close.
const CLOSE_DEADLINE: Duration = Duration::from_secs(5);

/// Set (to anything but "" or "0") to run these tests against the real ZooKeeper 3.8 instead of
/// corral, to check that the expectations are ZooKeeper's: `BAD_INPUT_VS_ZOOKEEPER=1 cargo test
/// -p corral --test bad_input -- --include-ignored --test-threads=2`. Tests of corral-only
/// behaviour (its exit status) are skipped then.
const VS_ZOOKEEPER: &str = "BAD_INPUT_VS_ZOOKEEPER";

fn vs_zookeeper() -> bool {
    std::env::var(VS_ZOOKEEPER).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn start(extra_cfg: &[&str], extra_props: &[(&str, &str)]) -> ServerProcess {
    if vs_zookeeper() {
        assert!(
            corral_testkit::require_real_zookeeper(VS_ZOOKEEPER),
            "real ZooKeeper missing"
        );
        return corral_testkit::start_zookeeper(extra_cfg, extra_props)
            .unwrap_or_else(|e| panic!("ZooKeeper did not start: {e:#}"));
    }
    start_corral(
        Path::new(env!("CARGO_BIN_EXE_corral")),
        extra_cfg,
        extra_props,
    )
    .unwrap_or_else(|e| panic!("corral did not start: {e:#}"))
}

/// The end of the server log, for assertion messages.
fn log_tail(server: &ServerProcess) -> String {
    let log = server.log();
    let lines: Vec<&str> = log.lines().collect();
    let from = lines.len().saturating_sub(40);
    format!(
        "--- last lines of {} ---\n{}",
        server.log_path().display(),
        lines[from..].join("\n")
    )
}

// ---------------------------------------------------------------------------------------------
// Raw wire helpers
// ---------------------------------------------------------------------------------------------

fn dial(addr: SocketAddr) -> TcpStream {
    let s = raw::connect(addr, Instant::now() + IO_TIMEOUT).expect("connect to corral");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// One length-prefixed frame's payload.
fn read_frame(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    raw::read_frame(s, raw::FRAME_BYTES_MAX, Instant::now() + IO_TIMEOUT)
}

#[derive(Debug, PartialEq, Eq)]
enum Closed {
    Eof,
    Reset,
}

/// Reads until the server closes the connection and returns everything received before that.
/// Fails if the connection is still open after `within`.
fn read_until_closed(s: &mut TcpStream, within: Duration) -> Result<(Vec<u8>, Closed), String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "still open after {within:?}; received {} bytes: {got:02x?}",
                got.len()
            ));
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => return Ok((got, Closed::Eof)),
            Ok(n) => {
                got.extend_from_slice(&chunk[..n]);
                if got.len() > 1 << 20 {
                    return Err(format!("{} bytes and still open", got.len()));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return Ok((got, Closed::Reset))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("read error {e} after {} bytes", got.len())),
        }
    }
}

/// The server must close `s` without sending anything.
fn assert_closed_silently(server: &ServerProcess, s: &mut TcpStream, what: &str) {
    match read_until_closed(s, CLOSE_DEADLINE) {
        Ok((got, _)) => assert!(
            got.is_empty(),
            "{what}: expected no response, got {} bytes {got:02x?}\n{}",
            got.len(),
            log_tail(server)
        ),
        Err(e) => panic!("{what}: connection not closed: {e}\n{}", log_tail(server)),
    }
}

/// Writes that may fail because the server already closed (or refused) the connection.
fn send_raw(s: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    raw::write_all_by(s, bytes, Instant::now() + IO_TIMEOUT)
}

fn request_frame(xid: i32, op: i32, req: &Request) -> Vec<u8> {
    let mut body = RequestHeader { xid, r#type: op }.to_bytes();
    req.write(&mut body);
    frame(&body)
}

fn connect_frame(c: &Connect) -> Vec<u8> {
    let mut body = Vec::new();
    c.write(&mut body);
    frame(&body)
}

fn new_session_request() -> Connect {
    Connect {
        req: ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 30_000,
            session_id: 0,
            passwd: Some(vec![0; 16]),
        },
        read_only: Some(false),
    }
}

fn create_request(path: &str, data: &[u8]) -> Request {
    Request::Create(CreateRequest {
        path: path.to_string(),
        data: Some(data.to_vec()),
        acl: vec![Acl::new(perms::ALL, "world", "anyone")],
        flags: 0,
    })
}

fn reply_header(body: &[u8]) -> ReplyHeader {
    assert!(
        body.len() >= 16,
        "reply of {} bytes: {body:02x?}",
        body.len()
    );
    ReplyHeader::from_bytes(body).unwrap()
}

/// An established session on its own connection.
struct Session {
    stream: TcpStream,
    id: i64,
    passwd: Vec<u8>,
    timeout: i32,
    next_xid: i32,
}

impl Session {
    fn open(addr: SocketAddr) -> Session {
        Session::try_open(addr).expect("handshake")
    }

    fn try_open(addr: SocketAddr) -> io::Result<Session> {
        let mut stream = dial(addr);
        send_raw(&mut stream, &connect_frame(&new_session_request()))?;
        let body = read_frame(&mut stream)?;
        assert_eq!(
            body.len(),
            37,
            "ConnectResponse with readOnly byte: {body:02x?}"
        );
        let resp = ConnectResponse::from_bytes(&body).unwrap();
        assert_ne!(resp.session_id, 0, "session refused: {resp:?}");
        assert!(resp.time_out > 0, "{resp:?}");
        Ok(Session {
            stream,
            id: resp.session_id,
            passwd: resp.passwd.unwrap_or_default(),
            timeout: resp.time_out,
            next_xid: 1,
        })
    }

    fn xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid += 1;
        x
    }

    /// Sends a request and returns the reply with its xid (skipping notifications).
    fn call(&mut self, op: i32, req: &Request) -> (ReplyHeader, Vec<u8>) {
        let xid = self.xid();
        send_raw(&mut self.stream, &request_frame(xid, op, req)).expect("send request");
        self.reply_to(xid)
    }

    fn reply_to(&mut self, xid: i32) -> (ReplyHeader, Vec<u8>) {
        for _ in 0..64 {
            let body = read_frame(&mut self.stream).expect("reply frame");
            let h = reply_header(&body);
            if h.xid == xid::NOTIFICATION {
                continue;
            }
            assert_eq!(h.xid, xid, "reply out of order: {h:?}");
            return (h, body[16..].to_vec());
        }
        panic!("no reply to xid {xid} among 64 frames");
    }

    /// Ping (xid -2, type 11): the reply is a bare header with xid -2 and err 0.
    fn ping(&mut self) -> ReplyHeader {
        send_raw(
            &mut self.stream,
            &request_frame(xid::PING, op::PING, &Request::Ping),
        )
        .expect("send ping");
        let body = read_frame(&mut self.stream).expect("ping reply");
        assert_eq!(body.len(), 16, "ping reply: {body:02x?}");
        let h = reply_header(&body);
        assert_eq!((h.xid, h.err), (xid::PING, 0), "{h:?}");
        h
    }

    /// A successful create of `path`; returns the reply's zxid.
    fn create(&mut self, path: &str) -> i64 {
        let (h, body) = self.call(op::CREATE, &create_request(path, b"x"));
        assert_eq!(h.err, 0, "create {path}: {h:?}");
        assert_eq!(CreateResponse::from_bytes(&body).unwrap().path, path);
        h.zxid
    }

    fn exists(&mut self, path: &str) -> bool {
        let (h, _) = self.call(
            op::EXISTS,
            &Request::Exists(PathWatchRequest {
                path: path.into(),
                watch: false,
            }),
        );
        match h.err {
            0 => true,
            -101 => false,
            e => panic!("exists {path}: error {e}"),
        }
    }
}

/// The healthy session still works and the server still runs.
fn assert_still_serving(server: &mut ServerProcess, good: &mut Session, tag: &str) {
    assert!(
        server.is_running(),
        "{tag}: the server process exited\n{}",
        log_tail(server)
    );
    good.ping();
    let path = format!("/still-serving-{tag}");
    good.create(&path);
    assert!(good.exists(&path));
    // And a brand-new session can still be established.
    probe_handshake(server.addr(), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("{tag}: new handshake failed: {e}\n{}", log_tail(server)));
    assert!(
        server.is_running(),
        "{tag}: the server process exited\n{}",
        log_tail(server)
    );
}

// ---------------------------------------------------------------------------------------------
// (a) negative frame length
// ---------------------------------------------------------------------------------------------

#[test]
fn negative_frame_length_closes_only_that_connection() {
    let mut server = start(&[], &[]);
    let mut good = Session::open(server.addr());

    // As the very first frame (where the ConnectRequest belongs).
    for len in [-1i32, -5, i32::MIN] {
        let mut s = dial(server.addr());
        let _ = send_raw(&mut s, &len.to_be_bytes());
        assert_closed_silently(&server, &mut s, &format!("first frame of length {len}"));
        assert_still_serving(
            &mut server,
            &mut good,
            &format!("neg-first{}", len.unsigned_abs()),
        );
    }

    // After a successful handshake, as the length of a request.
    for len in [-1i32, -5, i32::MIN] {
        let mut bad = Session::open(server.addr());
        let _ = send_raw(
            &mut bad.stream,
            &[&len.to_be_bytes()[..], &[0u8; 8]].concat(),
        );
        assert_closed_silently(
            &server,
            &mut bad.stream,
            &format!("request frame of length {len}"),
        );
        assert_still_serving(
            &mut server,
            &mut good,
            &format!("neg-req{}", len.unsigned_abs()),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// (b) frame longer than jute.maxbuffer
// ---------------------------------------------------------------------------------------------

#[test]
fn frame_longer_than_jute_maxbuffer_closes_only_that_connection() {
    let mut server = start(&[], &[("jute.maxbuffer", "4096")]);
    let mut good = Session::open(server.addr());

    // A ConnectRequest frame claiming 5000 bytes: refused on the length alone.
    let mut s = dial(server.addr());
    let _ = send_raw(&mut s, &[&5000i32.to_be_bytes()[..], &[0u8; 64]].concat());
    assert_closed_silently(&server, &mut s, "ConnectRequest frame of 5000 bytes");
    assert_still_serving(&mut server, &mut good, "big-connect");

    // A request frame of 5000 bytes after the handshake, sent in full (a create with 4.9 KB
    // of data): refused on the length, nothing created.
    let mut bad = Session::open(server.addr());
    let mut f = request_frame(1, op::CREATE, &create_request("/too-big", &[]));
    let pad = 5000 - (f.len() - 4);
    f = request_frame(1, op::CREATE, &create_request("/too-big", &vec![b'x'; pad]));
    assert_eq!(i32::from_be_bytes(f[..4].try_into().unwrap()), 5000);
    let _ = send_raw(&mut bad.stream, &f);
    assert_closed_silently(&server, &mut bad.stream, "request frame of 5000 bytes");
    assert_still_serving(&mut server, &mut good, "big-request");
    assert!(
        !good.exists("/too-big"),
        "the oversized create was executed"
    );

    // Only the header of a 5000-byte frame: refused before the body arrives.
    let mut bad = Session::open(server.addr());
    let _ = send_raw(&mut bad.stream, &5000i32.to_be_bytes());
    assert_closed_silently(&server, &mut bad.stream, "length 5000 without a body");
    assert_still_serving(&mut server, &mut good, "big-header");

    // The limit is inclusive: a frame of exactly 4096 bytes is served.
    let f = request_frame(1, op::CREATE, &create_request("/just-fits", &[]));
    let pad = 4096 - (f.len() - 4);
    let req = create_request("/just-fits", &vec![b'y'; pad]);
    assert_eq!(request_frame(1, op::CREATE, &req).len(), 4 + 4096);
    let (h, body) = good.call(op::CREATE, &req);
    assert_eq!(
        h.err,
        0,
        "a 4096-byte frame must be accepted: {h:?}\n{}",
        log_tail(&server)
    );
    assert_eq!(
        CreateResponse::from_bytes(&body).unwrap().path,
        "/just-fits"
    );
    assert_still_serving(&mut server, &mut good, "fits");
}

// ---------------------------------------------------------------------------------------------
// (c) garbage ConnectRequest
// ---------------------------------------------------------------------------------------------

#[test]
fn garbage_connect_request_closes_only_that_connection() {
    let mut server = start(&[], &[]);
    let mut good = Session::open(server.addr());

    let mut bad_passwd_len = Vec::new();
    bad_passwd_len.put_i32(0);
    bad_passwd_len.put_i64(0);
    bad_passwd_len.put_i32(30_000);
    bad_passwd_len.put_i64(0);
    bad_passwd_len.put_i32(-7); // passwd length
    bad_passwd_len.put_u8(0);

    let mut short_passwd = new_session_request().req.to_bytes();
    short_passwd.truncate(short_passwd.len() - 6); // passwd claims 16 bytes, 10 follow

    let cases: [(&str, Vec<u8>); 4] = [
        ("a 3-byte ConnectRequest", b"abc".to_vec()),
        ("an empty ConnectRequest", Vec::new()),
        ("a ConnectRequest with passwd length -7", bad_passwd_len),
        ("a ConnectRequest with a truncated passwd", short_passwd),
    ];
    for (i, (what, payload)) in cases.into_iter().enumerate() {
        let mut s = dial(server.addr());
        let _ = send_raw(&mut s, &frame(&payload));
        assert_closed_silently(&server, &mut s, what);
        assert_still_serving(&mut server, &mut good, &format!("garbage-connect-{i}"));
    }
}

// ---------------------------------------------------------------------------------------------
// (d) unknown opcode
// ---------------------------------------------------------------------------------------------

/// ZooKeeper answers an unknown request type with `ReplyHeader(xid, zxid -1, err -6)` and then
/// closes the connection (verified against 3.8.0 for types 999 and 10).
#[test]
fn unknown_opcode_gets_unimplemented_then_eof() {
    let mut server = start(&[], &[]);
    let mut good = Session::open(server.addr());

    for (xid, op_type) in [(5i32, 999i32), (6, 10), (7, -100), (8, i32::MAX)] {
        let mut bad = Session::open(server.addr());
        bad.ping();
        let mut body = RequestHeader {
            xid,
            r#type: op_type,
        }
        .to_bytes();
        body.extend_from_slice(b"whatever follows");
        send_raw(&mut bad.stream, &frame(&body)).unwrap();
        let (got, _) = read_until_closed(&mut bad.stream, CLOSE_DEADLINE)
            .unwrap_or_else(|e| panic!("type {op_type}: {e}\n{}", log_tail(&server)));
        assert_eq!(
            got.len(),
            4 + 16,
            "type {op_type}: exactly one header-only reply: {got:02x?}"
        );
        assert_eq!(&got[..4], &16i32.to_be_bytes());
        assert_eq!(
            reply_header(&got[4..]),
            ReplyHeader {
                xid,
                zxid: -1,
                err: -6
            },
            "type {op_type}"
        );
        assert_still_serving(&mut server, &mut good, &format!("unknown-op-{xid}"));
    }
}

// ---------------------------------------------------------------------------------------------
// (e) malformed request bodies
// ---------------------------------------------------------------------------------------------

/// Where ZooKeeper closes the connection on a malformed request: a frame too short for the
/// RequestHeader, and an auth packet whose body cannot be decoded (both decoded in
/// `ZooKeeperServer.processPacket`, where an IOException closes the connection). Verified
/// against 3.8.0: EOF, no reply.
#[test]
fn malformed_header_or_auth_packet_closes_only_that_connection() {
    let mut server = start(&[], &[]);
    let mut good = Session::open(server.addr());

    let mut short_auth = RequestHeader {
        xid: xid::AUTH,
        r#type: op::AUTH,
    }
    .to_bytes();
    short_auth.extend_from_slice(&[0, 0]); // AuthPacket.type needs 4 bytes
    let mut auth_bad_len = RequestHeader {
        xid: xid::AUTH,
        r#type: op::AUTH,
    }
    .to_bytes();
    auth_bad_len.put_i32(0);
    auth_bad_len.put_i32(100); // scheme: 100 bytes announced
    auth_bad_len.extend_from_slice(b"digest");

    let cases: [(&str, Vec<u8>); 4] = [
        ("a 3-byte request frame", vec![0, 0, 0]),
        ("an empty request frame", Vec::new()),
        ("an auth packet cut inside its type", short_auth),
        ("an auth packet with a truncated scheme", auth_bad_len),
    ];
    for (i, (what, body)) in cases.into_iter().enumerate() {
        let mut bad = Session::open(server.addr());
        bad.ping();
        send_raw(&mut bad.stream, &frame(&body)).unwrap();
        assert_closed_silently(&server, &mut bad.stream, what);
        assert_still_serving(&mut server, &mut good, &format!("malformed-{i}"));
    }
}

/// A request whose header is fine but whose record is truncated. ZooKeeper 3.8.0 does not
/// close the connection: the record is decoded in PrepRequestProcessor (writes) or
/// FinalRequestProcessor (reads), where the failure becomes `MarshallingError` (-5). A write
/// still consumes a zxid (an ErrorTxn is logged) and the reply carries it; a read replies
/// with the current zxid. Verified against 3.8.0 with a truncated create path, an empty create
/// body, a truncated getData path, a truncated multi and a truncated setWatches.
#[test]
fn malformed_request_record_gets_marshalling_error_and_keeps_the_connection() {
    let mut server = start(&[], &[]);
    let mut good = Session::open(server.addr());
    let mut s = Session::open(server.addr());

    let mut cut_path = Vec::new();
    cut_path.put_i32(100); // path: 100 bytes announced
    cut_path.extend_from_slice(b"/ab");
    let cases: [(&str, i32, Vec<u8>, bool); 5] = [
        (
            "create with a truncated path",
            op::CREATE,
            cut_path.clone(),
            true,
        ),
        ("create with an empty body", op::CREATE, Vec::new(), true),
        (
            "getData with a truncated path",
            op::GET_DATA,
            cut_path,
            false,
        ),
        (
            "multi with a truncated op header",
            op::MULTI,
            vec![0, 0],
            true,
        ),
        (
            "setWatches with a truncated record",
            op::SET_WATCHES,
            vec![0, 0],
            false,
        ),
    ];
    for (i, (what, op_type, record, is_write)) in cases.into_iter().enumerate() {
        let before = s.create(&format!("/before-{i}"));
        let xid = s.xid();
        let mut body = RequestHeader {
            xid,
            r#type: op_type,
        }
        .to_bytes();
        body.extend_from_slice(&record);
        send_raw(&mut s.stream, &frame(&body)).unwrap();
        let reply = read_frame(&mut s.stream)
            .unwrap_or_else(|e| panic!("{what}: no reply ({e})\n{}", log_tail(&server)));
        assert_eq!(reply.len(), 16, "{what}: header-only reply: {reply:02x?}");
        let want_zxid = if is_write { before + 1 } else { before };
        assert_eq!(
            reply_header(&reply),
            ReplyHeader {
                xid,
                zxid: want_zxid,
                err: -5
            },
            "{what}"
        );
        // The connection and its session go on.
        assert_eq!(s.ping().zxid, want_zxid, "{what}");
        assert_eq!(s.create(&format!("/after-{i}")), want_zxid + 1, "{what}");
        assert_still_serving(&mut server, &mut good, &format!("marshalling-{i}"));
    }
}

/// Whichever answer a truncated record gets (ZooKeeper: a -5 reply on a connection that stays
/// open; corral today: the connection is closed), it comes within a bounded time, nothing of
/// the request is executed, and other sessions and the server are unaffected.
#[test]
fn malformed_request_record_does_not_disturb_other_sessions() {
    let mut server = start(&[], &[]);
    let mut good = Session::open(server.addr());

    let mut cut_path = Vec::new();
    cut_path.put_i32(100);
    cut_path.extend_from_slice(b"/ab");
    let mut acl_count_too_big = Vec::new();
    acl_count_too_big.put_ustring(Some("/acl"));
    acl_count_too_big.put_buffer(None);
    acl_count_too_big.put_i32(5); // five ACLs announced, none follow
    for (i, (op_type, record)) in [
        (op::CREATE, cut_path.clone()),
        (op::CREATE, acl_count_too_big),
        (op::GET_DATA, cut_path),
        (op::MULTI, vec![0, 0]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = Session::open(server.addr());
        let mut body = RequestHeader {
            xid: 1,
            r#type: op_type,
        }
        .to_bytes();
        body.extend_from_slice(&record);
        send_raw(&mut s.stream, &frame(&body)).unwrap();
        // ZooKeeper and corral answer -5 and keep the connection (see the test above).
        let reply = read_frame(&mut s.stream).unwrap_or_else(|e| {
            panic!(
                "type {op_type}: no MarshallingError reply within {IO_TIMEOUT:?}: {e}\n{}",
                log_tail(&server)
            )
        });
        let h = reply_header(&reply);
        assert_eq!((h.xid, h.err), (1, -5), "type {op_type}: {h:?}");
        assert_still_serving(&mut server, &mut good, &format!("record-{i}"));
    }
    assert!(!good.exists("/acl"));
}

// ---------------------------------------------------------------------------------------------
// (f) maxClientCnxns
// ---------------------------------------------------------------------------------------------

#[test]
fn connection_over_max_client_cnxns_is_closed_without_response() {
    let mut server = start(&["maxClientCnxns=3"], &[]);

    // The readiness probe's connection may not be released yet: retry until three sessions
    // are established side by side (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sessions = loop {
        let opened: Vec<io::Result<Session>> =
            (0..3).map(|_| Session::try_open(server.addr())).collect();
        if opened.iter().all(|s| s.is_ok()) {
            break opened.into_iter().map(Result::unwrap).collect::<Vec<_>>();
        }
        assert!(
            Instant::now() < deadline,
            "three connections never fit under maxClientCnxns=3"
        );
        drop(opened);
        std::thread::sleep(Duration::from_millis(100));
    };

    // The fourth concurrent connection from 127.0.0.1: closed, no ConnectResponse.
    let mut fourth = dial(server.addr());
    let _ = send_raw(&mut fourth, &connect_frame(&new_session_request()));
    assert_closed_silently(&server, &mut fourth, "the 4th connection");
    drop(fourth);

    // The first three all work.
    for (i, s) in sessions.iter_mut().enumerate() {
        s.ping();
        s.create(&format!("/cnxn-{i}"));
    }
    assert!(server.is_running());

    // Closing one frees its slot (bounded retries while the server notices the close).
    drop(sessions.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut replacement = loop {
        match Session::try_open(server.addr()) {
            Ok(s) => break s,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "slot never freed: {e}\n{}",
                    log_tail(&server)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    replacement.ping();
    for s in &mut sessions {
        s.ping();
    }
}

// ---------------------------------------------------------------------------------------------
// (g) four-letter words
// ---------------------------------------------------------------------------------------------

#[test]
fn four_letter_words_on_a_fresh_server() {
    let server = start(&[], &[]);

    assert_eq!(four_letter(server.addr(), "ruok").unwrap(), "imok");

    let srvr = four_letter(server.addr(), "srvr").unwrap();
    let lines: Vec<&str> = srvr.lines().collect();
    assert!(srvr.ends_with('\n'), "{srvr:?}");
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("Zookeeper version: 3.8.0")),
        "{srvr:?}"
    );
    for want in ["Mode: standalone", "Node count: 5", "Outstanding: 0"] {
        assert!(lines.contains(&want), "srvr lacks {want:?}: {srvr:?}");
    }
    for prefix in [
        "Latency min/avg/max: ",
        "Received: ",
        "Sent: ",
        "Connections: ",
        "Zxid: 0x",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(prefix)),
            "srvr lacks {prefix:?}: {srvr:?}"
        );
    }

    let mntr = four_letter(server.addr(), "mntr").unwrap();
    assert!(mntr.ends_with('\n'), "{mntr:?}");
    let mut pairs = std::collections::HashMap::new();
    for line in mntr.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        assert_eq!(parts.len(), 2, "not a tab-separated pair: {line:?}");
        assert!(parts[0].starts_with("zk_"), "{line:?}");
        assert!(!parts[1].is_empty(), "{line:?}");
        assert!(
            pairs.insert(parts[0], parts[1]).is_none(),
            "duplicate key: {line:?}"
        );
    }
    assert_eq!(
        pairs.get("zk_server_state"),
        Some(&"standalone"),
        "{mntr:?}"
    );
    assert_eq!(pairs.get("zk_znode_count"), Some(&"5"), "{mntr:?}");
    assert!(
        pairs
            .get("zk_version")
            .is_some_and(|v| v.starts_with("3.8.0")),
        "{mntr:?}"
    );
    for numeric in [
        "zk_num_alive_connections",
        "zk_outstanding_requests",
        "zk_ephemerals_count",
    ] {
        let v = pairs
            .get(numeric)
            .unwrap_or_else(|| panic!("mntr lacks {numeric}: {mntr:?}"));
        assert!(v.parse::<u64>().is_ok(), "{numeric} = {v:?}");
    }
}

/// testkit writes `4lw.commands.whitelist=*` first; a later line wins (Java `Properties`), so
/// only `ruok` is enabled, plus `srvr`, which ZooKeeper always allows (zkServer.sh needs it).
/// Verified against 3.8.0.
#[test]
fn four_letter_whitelist_from_the_last_line() {
    let server = start(&["4lw.commands.whitelist=ruok"], &[]);
    let cfg = std::fs::read_to_string(server.config_path()).unwrap();
    let star = cfg
        .find("4lw.commands.whitelist=*")
        .expect("testkit's default line");
    let ruok = cfg.find("4lw.commands.whitelist=ruok").expect("our line");
    assert!(star < ruok, "the override must come later:\n{cfg}");

    assert_eq!(four_letter(server.addr(), "ruok").unwrap(), "imok");
    for word in ["stat", "mntr", "conf", "cons", "dump"] {
        assert_eq!(
            four_letter(server.addr(), word).unwrap(),
            format!("{word} is not executed because it is not in the whitelist.\n")
        );
    }
    let srvr = four_letter(server.addr(), "srvr").unwrap();
    assert!(srvr.starts_with("Zookeeper version: 3.8.0"), "{srvr:?}");
}

// ---------------------------------------------------------------------------------------------
// (h) lastZxidSeen ahead of the server
// ---------------------------------------------------------------------------------------------

#[test]
fn connect_with_zxid_from_the_future_is_closed_without_response() {
    let mut server = start(&[], &[]);
    let mut good = Session::open(server.addr());
    for (i, zxid) in [1i64 << 40, i64::MAX, 1_000].into_iter().enumerate() {
        let mut c = new_session_request();
        c.req.last_zxid_seen = zxid;
        let mut s = dial(server.addr());
        send_raw(&mut s, &connect_frame(&c)).unwrap();
        assert_closed_silently(&server, &mut s, &format!("lastZxidSeen {zxid:#x}"));
        assert_still_serving(&mut server, &mut good, &format!("future-{i}"));
    }
}

// ---------------------------------------------------------------------------------------------
// (i) resume with a wrong password / unknown session
// ---------------------------------------------------------------------------------------------

/// The refusal ZooKeeper sends for a bad resume: protocolVersion 0, timeOut 0, sessionId 0,
/// passwd = 16 zero bytes, then the readOnly byte if the request had one (37 bytes, or 36
/// for an "old" client). Verified against 3.8.0.
fn invalid_connect_response(read_only_byte: bool) -> Vec<u8> {
    let mut body = Vec::new();
    body.put_i32(0);
    body.put_i32(0);
    body.put_i64(0);
    body.put_buffer(Some(&[0u8; 16]));
    if read_only_byte {
        body.put_bool(false);
    }
    frame(&body)
}

#[test]
fn resume_with_wrong_password_gets_invalid_response_then_eof() {
    let mut server = start(&[], &[]);
    let mut good = Session::open(server.addr());
    // The session whose resume is attempted (not the one checked afterwards: ZooKeeper drops
    // a session's current connection before it checks the password).
    let victim = Session::open(server.addr());
    let mut wrong = victim.passwd.clone();
    wrong[0] ^= 0xff;
    assert_eq!(invalid_connect_response(true).len(), 4 + 37);

    let cases = [
        (
            "wrong password",
            victim.id,
            Some(wrong.clone()),
            Some(false),
        ),
        ("wrong password, old client", victim.id, Some(wrong), None),
        ("null password", victim.id, None, Some(false)),
        (
            "unknown session",
            victim.id ^ 0x5a5a,
            Some(victim.passwd.clone()),
            Some(false),
        ),
    ];
    for (i, (what, session_id, passwd, read_only)) in cases.into_iter().enumerate() {
        let mut c = new_session_request();
        c.req.session_id = session_id;
        c.req.passwd = passwd;
        c.read_only = read_only;
        let mut s = dial(server.addr());
        send_raw(&mut s, &connect_frame(&c)).unwrap();
        let (got, how) = read_until_closed(&mut s, CLOSE_DEADLINE)
            .unwrap_or_else(|e| panic!("{what}: {e}\n{}", log_tail(&server)));
        assert_eq!(got, invalid_connect_response(read_only.is_some()), "{what}");
        assert_eq!(how, Closed::Eof, "{what}");
        assert_still_serving(&mut server, &mut good, &format!("badpw-{i}"));
    }

    // The right password still resumes the session.
    let mut c = new_session_request();
    c.req.session_id = victim.id;
    c.req.passwd = Some(victim.passwd.clone());
    let mut s = dial(server.addr());
    send_raw(&mut s, &connect_frame(&c)).unwrap();
    let body = read_frame(&mut s).unwrap();
    let resp = ConnectResponse::from_bytes(&body).unwrap();
    assert_eq!(
        (resp.session_id, resp.time_out),
        (victim.id, victim.timeout)
    );
    assert_eq!(resp.passwd.as_deref(), Some(&victim.passwd[..]));
}

// ---------------------------------------------------------------------------------------------
// (j) SIGTERM
// ---------------------------------------------------------------------------------------------

#[test]
fn sigterm_stops_promptly_with_success() {
    if vs_zookeeper() {
        // ZooKeeper exits with 143 on SIGTERM; exit status 0 is corral's own contract.
        return;
    }
    let mut server = start(&[], &[]);
    // Shut down with a live session and an idle half-handshaken connection attached.
    let mut live = Session::open(server.addr());
    live.create("/before-stop");
    let _idle = dial(server.addr());

    let started = Instant::now();
    let status = server.stop();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stop took {took:?}\n{}",
        log_tail(&server)
    );
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        log_tail(&server)
    );
    assert_eq!(status.code(), Some(0));
    assert!(!server.is_running());
    let log = server.log();
    assert!(
        log.contains("stopped"),
        "no \"stopped\" in the log\n{}",
        log_tail(&server)
    );

    // The live client sees its connection end.
    read_until_closed(&mut live.stream, CLOSE_DEADLINE).expect("client connection closed at exit");
}

/// A create request (xid 1) of `/big` with 512 KiB of data, open to anyone.
fn create_big() -> Vec<u8> {
    let mut create = Vec::new();
    create.extend_from_slice(&1i32.to_be_bytes());
    create.extend_from_slice(&1i32.to_be_bytes());
    jute_str(&mut create, "/big");
    create.extend_from_slice(&(512i32 << 10).to_be_bytes());
    create.extend(std::iter::repeat_n(7u8, 512 << 10));
    create.extend_from_slice(&1i32.to_be_bytes());
    create.extend_from_slice(&31i32.to_be_bytes());
    jute_str(&mut create, "world");
    jute_str(&mut create, "anyone");
    create.extend_from_slice(&0i32.to_be_bytes());
    create
}

/// `n` getData frames of `/big` (xids 1..=n, no watch), to send at once.
fn get_big_frames(n: i32) -> Vec<u8> {
    let mut get = Vec::new();
    for xid in 1..=n {
        let mut req = Vec::new();
        req.extend_from_slice(&xid.to_be_bytes());
        req.extend_from_slice(&4i32.to_be_bytes());
        jute_str(&mut req, "/big");
        req.push(0);
        get.extend_from_slice(&frame(&req));
    }
    get
}

/// A client that sends 40 getData of a 512 KiB node and reads nothing (20 MiB of replies, below
/// the cut-off): `cons` shows replies queued for its connection, and none for a client that
/// reads.
#[test]
fn cons_shows_the_replies_queued_for_a_client_that_does_not_read() {
    if vs_zookeeper() {
        return;
    }
    let mut server = start(&[], &[]);
    let addr = server.addr();
    let deadline = || Instant::now() + IO_TIMEOUT;
    let mut good = corral_testkit::open_session(addr, IO_TIMEOUT).unwrap();
    raw::send_frame(&mut good, &create_big(), deadline()).unwrap();
    raw::read_frame(&mut good, raw::FRAME_BYTES_MAX, deadline()).unwrap();
    let mut slow = corral_testkit::open_session(addr, IO_TIMEOUT).unwrap();
    let slow_port = slow.local_addr().unwrap().port();
    let get = get_big_frames(40);
    raw::write_all_by(&mut slow, &get, deadline()).unwrap();
    let queued_for = |port: u16| -> Option<u64> {
        let cons = four_letter(addr, "cons").ok()?;
        let line = cons.lines().find(|l| l.contains(&format!(":{port}[")))?;
        let q = line.split("queued=").nth(1)?.split(',').next()?;
        q.parse().ok()
    };
    let started = Instant::now();
    loop {
        if queued_for(slow_port).is_some_and(|q| q > 0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no replies queued for the client that does not read:\n{}",
            four_letter(addr, "cons").unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let good_port = good.local_addr().unwrap().port();
    assert_eq!(
        queued_for(good_port),
        Some(0),
        "the client that reads has nothing queued"
    );
    drop(slow);
    server.stop();
}

/// `--log-format json` (or `CORRAL_LOG_FORMAT=json`): every line on stderr is one JSON object
/// with a timestamp, a level, the target and the message, from start-up to the stop.
#[test]
fn log_lines_as_json_for_log_collectors() {
    if vs_zookeeper() {
        return;
    }
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let port = corral_testkit::free_port();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let bin = corral_testkit::corral_bin(Path::new(env!("CARGO_BIN_EXE_corral")));
    let mut child = std::process::Command::new(bin)
        .args(["--log-format", "json", "server", "--config"])
        .arg(&cfg)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start corral");
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in lines.by_ref() {
        let line = line.unwrap();
        let ready = line.contains("ready in");
        seen.push(line);
        if ready || Instant::now() > deadline {
            break;
        }
    }
    probe_handshake(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(10),
    )
    .expect("a session");
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    seen.extend(lines.map_while(Result::ok));
    assert!(child.wait().unwrap().success());
    assert!(seen.iter().any(|l| l.contains("ready in")), "{seen:#?}");
    assert!(seen.iter().any(|l| l.contains("session 0x")), "{seen:#?}");
    for line in &seen {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        for field in ["timestamp", "level", "target"] {
            assert!(v[field].is_string(), "{field} in {line}");
        }
        assert!(v["fields"]["message"].is_string(), "message in {line}");
    }
}

// ---------------------------------------------------------------------------------------------
// A closed connection stays closed
// ---------------------------------------------------------------------------------------------

/// When a session is resumed on a new connection, ZooKeeper closes the old connection
/// (reference §2.2): nothing sent on it afterwards may be executed.
#[test]
fn connection_replaced_by_a_resume_executes_nothing_more() {
    let server = start(&[], &[]);
    let mut old = Session::open(server.addr());
    old.create("/resume-base");

    let mut c = new_session_request();
    c.req.session_id = old.id;
    c.req.passwd = Some(old.passwd.clone());
    let mut new_stream = dial(server.addr());
    send_raw(&mut new_stream, &connect_frame(&c)).unwrap();
    let body = read_frame(&mut new_stream).unwrap();
    assert_eq!(
        ConnectResponse::from_bytes(&body).unwrap().session_id,
        old.id
    );
    let mut new = Session {
        stream: new_stream,
        id: old.id,
        passwd: old.passwd.clone(),
        timeout: old.timeout,
        next_xid: 100,
    };

    // The old connection is closed by the server...
    let (got, _) =
        read_until_closed(&mut old.stream, CLOSE_DEADLINE).expect("old connection closed");
    assert!(got.is_empty(), "{got:02x?}");
    // ...and a client that ignores that and keeps writing must not get anything executed.
    let _ = send_raw(
        &mut old.stream,
        &request_frame(50, op::CREATE, &create_request("/ghost", b"")),
    );
    std::thread::sleep(Duration::from_millis(300));
    new.ping();
    assert!(
        !new.exists("/ghost"),
        "a request on the replaced connection was executed"
    );
    assert!(new.exists("/resume-base"));
}

/// A jute string.
fn jute_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A client that stops reading its replies is cut off once it leaves more than the server's
/// bound unread (64 MiB here), instead of growing the server's memory: it pipelines 200
/// getData of a 512 KiB node (100 MiB of replies) and reads nothing; the server logs the cut,
/// the connection goes away, and another client is served all along.
#[test]
fn a_client_that_does_not_read_is_cut_off() {
    let mut server = start(&[], &[]);
    let addr = server.addr();
    let deadline = || Instant::now() + IO_TIMEOUT;
    let mut good = corral_testkit::open_session(addr, IO_TIMEOUT).unwrap();
    // create /big with 512 KiB of data, from the well-behaved session.
    raw::send_frame(&mut good, &create_big(), deadline()).unwrap();
    let reply = raw::read_frame(&mut good, raw::FRAME_BYTES_MAX, deadline()).unwrap();
    assert_eq!(&reply[12..16], &[0, 0, 0, 0], "create /big");

    let mut flood = corral_testkit::open_session(addr, IO_TIMEOUT).unwrap();
    let get = get_big_frames(200);
    // The requests are small: they all go out though nothing is read.
    raw::write_all_by(&mut flood, &get, deadline()).unwrap();
    let alive = |server: &ServerProcess| -> Option<u64> {
        four_letter(server.addr(), "mntr").ok().and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("zk_num_alive_connections\t"))
                .and_then(|v| v.trim().parse().ok())
        })
    };
    let started = Instant::now();
    // The well-behaved session's connection, and mntr's own (counted as ZooKeeper counts it).
    while alive(&server) != Some(2) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the flooding client is still connected\n{}",
            log_tail(&server)
        );
        // The well-behaved session is served meanwhile.
        let mut exists = Vec::new();
        exists.extend_from_slice(&2i32.to_be_bytes());
        exists.extend_from_slice(&3i32.to_be_bytes());
        jute_str(&mut exists, "/big");
        exists.push(0);
        raw::send_frame(&mut good, &exists, deadline()).unwrap();
        let r = raw::read_frame(&mut good, raw::FRAME_BYTES_MAX, deadline()).unwrap();
        assert_eq!(&r[12..16], &[0, 0, 0, 0], "exists /big");
        std::thread::sleep(Duration::from_millis(100));
    }
    if !vs_zookeeper() {
        let log = server.log();
        assert!(
            log.contains("bytes of replies unread"),
            "{}",
            log_tail(&server)
        );
    }
    drop(flood);
    server.stop();
}
