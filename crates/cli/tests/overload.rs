//! Overload: a flood of pipelined writes from 50 sessions and 10,000 idle connections with
//! sessions, while a well-behaved client goes on reading and writing. The server's resident
//! memory stays bounded, the well-behaved client's p99 stays under a stated bound, and nothing
//! acknowledged is lost. Every loop is bounded in count and in time; all traffic is on
//! 127.0.0.1.
//!
//! `CORRAL_OVERLOAD_SERVER=zookeeper` runs the same scenario against the real ZooKeeper 3.8
//! instead, for the side-by-side figures in docs/benchmarks.md (run by hand, release build:
//! `cargo test --release -p corral --test overload -- --nocapture`, once per server).

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_proto::jute::{Jute, Reader};
use corral_proto::records::*;
use corral_proto::request::*;
use corral_testkit::raw;

const IDLE: usize = 10_000;
const FLOODERS: usize = 50;
/// Writes per flooding session, and how many it keeps in flight.
const FLOOD_WRITES: usize = 400;
const WINDOW: usize = 100;
const FLOOD_DATA: usize = 1024;
const GOOD_OPS: usize = 300;
/// The bounds this test states.
const GOOD_P99_MAX: Duration = Duration::from_secs(2);
const RSS_GROWTH_MAX_KIB: u64 = 256 * 1024;
const DEADLINE: Duration = Duration::from_secs(180);

/// A ConnectRequest frame asking for a 120 s session (the idle sessions must outlive the test
/// without pinging; tickTime=6000 allows up to 120 s).
fn connect_frame() -> Vec<u8> {
    let mut body = Vec::new();
    Connect {
        req: ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 120_000,
            session_id: 0,
            passwd: Some(vec![0; 16]),
        },
        read_only: Some(false),
    }
    .write(&mut body);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

fn session(addr: SocketAddr, deadline: Instant) -> TcpStream {
    let mut s = raw::connect(addr, deadline).expect("connect");
    raw::write_all_by(&mut s, &connect_frame(), deadline).expect("send connect");
    let resp = raw::read_frame(&mut s, raw::FRAME_BYTES_MAX, deadline).expect("connect response");
    let c = ConnectResponse::read(&mut Reader::new(&resp)).unwrap();
    assert_ne!(c.session_id, 0, "a session");
    s
}

fn send(s: &mut TcpStream, xid: i32, req: &Request, deadline: Instant) {
    let mut body = Vec::new();
    RequestHeader {
        xid,
        r#type: req.op_code(),
    }
    .write(&mut body);
    req.write(&mut body);
    raw::send_frame(s, &body, deadline).expect("send");
}

/// Reads the reply to `xid` (there are no watches here): its error code and record.
fn reply(s: &mut TcpStream, xid: i32, deadline: Instant) -> (i32, Vec<u8>) {
    let f = raw::read_frame(s, raw::FRAME_BYTES_MAX, deadline).expect("a reply");
    let mut r = Reader::new(&f);
    let h = ReplyHeader::read(&mut r).unwrap();
    assert_eq!(h.xid, xid, "replies in order");
    (h.err, r.rest().to_vec())
}

fn set(path: &str, data: Vec<u8>) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(data),
        version: -1,
    })
}

fn get(path: &str) -> Request {
    Request::GetData(PathWatchRequest {
        path: path.into(),
        watch: false,
    })
}

fn create(path: &str) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(Vec::new()),
        acl: vec![Acl::new(perms::ALL, "world", "anyone")],
        flags: 0,
    })
}

/// The data of a getData reply.
fn data_of(body: &[u8]) -> Vec<u8> {
    GetDataResponse::read(&mut Reader::new(body))
        .unwrap()
        .data
        .unwrap_or_default()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn flood_value(flooder: usize, seq: usize) -> Vec<u8> {
    let mut v = format!("{flooder}:{seq}:").into_bytes();
    v.resize(FLOOD_DATA, b'x');
    v
}

#[test]
fn a_flood_and_ten_thousand_idle_connections_leave_a_well_behaved_client_working() {
    let deadline = Instant::now() + DEADLINE;
    let cfg = ["maxClientCnxns=0", "tickTime=6000"];
    let against_zookeeper = std::env::var("CORRAL_OVERLOAD_SERVER").as_deref() == Ok("zookeeper");
    let mut server = if against_zookeeper {
        corral_testkit::start_zookeeper(&cfg, &[]).expect("start ZooKeeper")
    } else {
        corral_testkit::start_corral(Path::new(env!("CARGO_BIN_EXE_corral")), &cfg, &[])
            .expect("start corral")
    };
    let who = if against_zookeeper {
        "ZooKeeper"
    } else {
        "corral"
    };
    let (addr, pid) = (server.addr(), server.pid());

    let mut setup = session(addr, deadline);
    let mut xid = 0;
    for path in std::iter::once("/good".to_string()).chain((0..FLOODERS).map(|i| format!("/f{i}")))
    {
        xid += 1;
        send(&mut setup, xid, &create(&path), deadline);
        assert_eq!(reply(&mut setup, xid, deadline).0, 0, "create {path}");
    }

    // 10,000 idle connections, each with a session: handshakes sent 500 at a time.
    let started = Instant::now();
    let mut idle: Vec<TcpStream> = Vec::with_capacity(IDLE);
    while idle.len() < IDLE {
        let batch: Vec<TcpStream> = (0..500.min(IDLE - idle.len()))
            .map(|_| {
                let mut s = raw::connect(addr, deadline).expect("connect an idle client");
                raw::write_all_by(&mut s, &connect_frame(), deadline).unwrap();
                s
            })
            .collect();
        for mut s in batch {
            let resp = raw::read_frame(&mut s, raw::FRAME_BYTES_MAX, deadline)
                .expect("an idle client's connect response");
            let c = ConnectResponse::read(&mut Reader::new(&resp)).unwrap();
            assert_ne!(c.session_id, 0);
            idle.push(s);
        }
    }
    let rss_idle = rss_kib(pid);
    eprintln!(
        "{who}: {IDLE} idle sessions open in {} ms; server RSS {} MiB",
        started.elapsed().as_millis(),
        rss_idle / 1024
    );

    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        })
    };

    // The flood: each session keeps WINDOW writes in flight until FLOOD_WRITES are answered.
    let flood_started = Instant::now();
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|f| {
            std::thread::spawn(move || {
                let mut s = session(addr, deadline);
                let path = format!("/f{f}");
                let (mut sent, mut acked) = (0usize, 0usize);
                while acked < FLOOD_WRITES {
                    while sent < FLOOD_WRITES && sent - acked < WINDOW {
                        sent += 1;
                        send(
                            &mut s,
                            sent as i32,
                            &set(&path, flood_value(f, sent)),
                            deadline,
                        );
                    }
                    let (err, _) = reply(&mut s, acked as i32 + 1, deadline);
                    assert_eq!(err, 0, "flood write {} on {path}", acked + 1);
                    acked += 1;
                }
                acked
            })
        })
        .collect();

    // The well-behaved client: one request at a time, alternating reads and writes.
    let mut good = session(addr, deadline);
    let mut latencies = Vec::with_capacity(GOOD_OPS);
    let mut last_written = Vec::new();
    for i in 1..=GOOD_OPS {
        let t0 = Instant::now();
        if i % 2 == 0 {
            let value = format!("good {i}").into_bytes();
            send(&mut good, i as i32, &set("/good", value.clone()), deadline);
            assert_eq!(reply(&mut good, i as i32, deadline).0, 0, "good write {i}");
            last_written = value;
        } else {
            send(&mut good, i as i32, &get("/good"), deadline);
            let (err, body) = reply(&mut good, i as i32, deadline);
            assert_eq!(err, 0, "good read {i}");
            assert_eq!(
                data_of(&body),
                last_written,
                "reads see the client's own last write"
            );
        }
        latencies.push(t0.elapsed());
    }
    let acked: usize = flooders
        .into_iter()
        .map(|t| t.join().expect("flooder"))
        .sum();
    let flood_secs = flood_started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let rss_peak = sampler.join().unwrap();

    // Nothing acknowledged is lost: every node holds its last acknowledged value.
    for f in 0..FLOODERS {
        xid += 1;
        send(&mut setup, xid, &get(&format!("/f{f}")), deadline);
        let (err, body) = reply(&mut setup, xid, deadline);
        assert_eq!(err, 0);
        assert_eq!(data_of(&body), flood_value(f, FLOOD_WRITES), "/f{f}");
    }
    xid += 1;
    send(&mut setup, xid, &get("/good"), deadline);
    assert_eq!(data_of(&reply(&mut setup, xid, deadline).1), last_written);
    // The idle connections are all still there.
    let mntr = corral_testkit::four_letter(addr, "mntr").unwrap();
    let alive: usize = mntr
        .lines()
        .find_map(|l| l.strip_prefix("zk_num_alive_connections\t"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(alive > IDLE, "{alive} connections alive: {mntr}");

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let (p50, p99) = (pct(0.50), pct(0.99));
    eprintln!(
        "{who}: flood: {acked} writes of {FLOOD_DATA} B from {FLOODERS} sessions in {flood_secs:.1} s \
         ({:.0}/s); well-behaved client p50 {} ms, p99 {} ms; server RSS with {IDLE} idle \
         sessions {} MiB, peak {} MiB",
        acked as f64 / flood_secs,
        p50.as_millis(),
        p99.as_millis(),
        rss_idle / 1024,
        rss_peak / 1024
    );
    assert_eq!(acked, FLOODERS * FLOOD_WRITES);
    assert!(
        p99 <= GOOD_P99_MAX,
        "the well-behaved client's p99 was {} ms (bound {} ms)",
        p99.as_millis(),
        GOOD_P99_MAX.as_millis()
    );
    assert!(
        rss_peak <= rss_idle + RSS_GROWTH_MAX_KIB,
        "server RSS grew from {} MiB to {} MiB under the flood (bound +{} MiB)",
        rss_idle / 1024,
        rss_peak / 1024,
        RSS_GROWTH_MAX_KIB / 1024
    );
    drop(idle);
    server.stop();
}
