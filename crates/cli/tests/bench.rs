//! `corral bench` as an operator runs it: the `corral` binary as a process against a running
//! server, its `--json` summary parsed and checked.
//!
//! * Every op (create, set, get, exists, children, multi, mixed) with 300 requests over 4
//!   sessions and a window of 8 against corral: the count is exact, no request failed,
//!   percentiles are ordered and the throughput is positive.
//! * The watch fan-out with 5 watchers: one notification per watcher per write.
//! * `--duration`, the text summary and the progress lines, and `--cleanup` leaving nothing
//!   behind (checked with the `zookeeper-client` crate); sessions spread over two servers.
//! * Failed requests (creates on nodes that exist) give exit status 1 and a count by code.
//! * The same generator against the real ZooKeeper 3.8 (`corral_testkit::start_zookeeper`),
//!   which proves it speaks the protocol and not corral's dialect of it. Skips loudly without
//!   ZooKeeper installed, fails under CI=true.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use corral_bench::Report;
use corral_testkit::ServerProcess;

/// Bound of one `corral bench` process; `--timeout` inside it is smaller.
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn corral() -> ServerProcess {
    corral_testkit::start_corral(Path::new(env!("CARGO_BIN_EXE_corral")), &[], &[])
        .expect("start corral")
}

/// Run `corral bench ARGS`, killing it after [`RUN_LIMIT`].
fn bench(args: &[&str]) -> Output {
    let bin = corral_testkit::corral_bin(Path::new(env!("CARGO_BIN_EXE_corral")));
    let mut child = Command::new(&bin)
        .arg("bench")
        .args(args)
        .args(["--timeout", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn corral bench");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "corral bench {args:?} still running after {RUN_LIMIT:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Run with `--json --quiet`, require exit status 0, and parse the summary.
fn bench_json(server: &str, args: &[&str]) -> Report {
    let mut all = vec!["--server", server, "--json", "--quiet"];
    all.extend_from_slice(args);
    let out = bench(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "corral bench {all:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: not a report: {stdout}"))
}

/// What every successful report must satisfy.
fn check_sane(r: &Report, count: u64) {
    assert_eq!(r.count, count, "{r:?}");
    assert_eq!(r.errors, 0, "{r:?}");
    assert!(r.errors_by_code.is_empty(), "{r:?}");
    assert!(r.ops_per_s > 0.0, "{r:?}");
    assert!(r.p50_us > 0, "{r:?}");
    assert!(r.p50_us <= r.p90_us, "{r:?}");
    assert!(r.p90_us <= r.p99_us, "{r:?}");
    assert!(r.p99_us <= r.p999_us, "{r:?}");
    assert!(r.p999_us <= r.max_us, "{r:?}");
    assert!(r.mean_us <= r.max_us, "{r:?}");
    assert!(r.elapsed_s > 0.0, "{r:?}");
}

#[test]
fn every_op_against_corral() {
    let server = corral();
    let cs = server.connect_string();
    let common = ["--count", "300", "--sessions", "4", "--window", "8"];
    for op in [
        "create", "set", "get", "exists", "children", "multi", "mixed",
    ] {
        let mut args = vec!["--op", op];
        args.extend_from_slice(&common);
        let r = bench_json(&cs, &args);
        check_sane(&r, 300);
        assert_eq!(r.op, op);
        assert_eq!((r.sessions, r.window, r.bytes), (4, 8, 100), "{r:?}");
        assert_eq!(r.reads + r.writes, 300, "{op}: {r:?}");
        match op {
            "create" | "set" | "multi" => assert_eq!(r.writes, 300, "{r:?}"),
            "get" | "exists" | "children" => assert_eq!(r.reads, 300, "{r:?}"),
            _ => {
                // 90% reads, exact per session for every 100 of its requests.
                assert!((260..=280).contains(&r.reads), "{r:?}");
                assert_eq!(r.read_percent, Some(90));
            }
        }
        let keys = if matches!(op, "create" | "multi") {
            0
        } else {
            300
        };
        assert_eq!(r.keys, keys, "{r:?}");
    }
}

#[test]
fn watch_fan_out_against_corral() {
    let server = corral();
    let r = bench_json(
        &server.connect_string(),
        &["--watchers", "5", "--count", "20", "--value-bytes", "10"],
    );
    // 20 writes, each notifying 5 watchers.
    check_sane(&r, 100);
    assert_eq!(r.op, "watch");
    assert_eq!(
        (r.watchers, r.sessions, r.writes),
        (Some(5), 6, 20),
        "{r:?}"
    );
    let from_write = r.from_write_p99_us.expect("from-write latency");
    assert!(
        from_write > 0 && from_write <= r.from_write_max_us.unwrap(),
        "{r:?}"
    );
    assert!(r.notified_before_reply.unwrap() <= 100, "{r:?}");
}

#[test]
fn duration_text_summary_progress_and_cleanup() {
    let server = corral();
    let out = bench(&[
        "--server",
        &server.connect_string(),
        "--op",
        "create",
        "--duration",
        "1.5",
        "--sessions",
        "2",
        "--window",
        "4",
        "--prefix",
        "/bench/dur",
        "--cleanup",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // zkbench's line: op= count= sessions= window= bytes= ops_per_s= p50_us= ... errors=0.
    let line = stdout.trim();
    let fields: Vec<&str> = line
        .split(' ')
        .map(|kv| kv.split_once('=').expect("key=value").0)
        .collect();
    assert_eq!(
        fields,
        [
            "op",
            "count",
            "sessions",
            "window",
            "bytes",
            "ops_per_s",
            "p50_us",
            "p90_us",
            "p99_us",
            "p999_us",
            "max_us",
            "errors"
        ],
        "{line}"
    );
    assert!(line.starts_with("op=create count="), "{line}");
    assert!(line.ends_with(" errors=0"), "{line}");
    assert!(
        stderr.contains("corral bench:    1s op=create ops="),
        "no progress line: {stderr}"
    );
    // Cleanup removed the nodes and both parents it had to create.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = zookeeper_client::Client::connect(&server.connect_string())
            .await
            .expect("connect");
        assert_eq!(c.check_stat("/bench").await.unwrap(), None);
    });
}

/// `Received: N` of `srvr`: requests the server has read.
fn received(server: &ServerProcess) -> u64 {
    let srvr = corral_testkit::four_letter(server.addr(), "srvr").expect("srvr");
    srvr.lines()
        .find_map(|l| l.strip_prefix("Received: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Received line in {srvr}"))
}

#[test]
fn sessions_go_round_robin_over_servers() {
    // Two standalone servers with the same keys: the setup runs on the first one only, so the
    // second gets its keys from a run of its own first.
    let a = corral();
    let b = corral();
    let keys = ["--keys", "10", "--prefix", "/rr"];
    bench_json(
        &b.connect_string(),
        &[&["--count", "10"][..], &keys].concat(),
    );
    let before = received(&b);
    let both = format!("{},{}", a.connect_string(), b.connect_string());
    let r = bench_json(
        &both,
        &[
            &["--count", "400", "--sessions", "2", "--window", "4"][..],
            &keys,
        ]
        .concat(),
    );
    check_sane(&r, 400);
    assert_eq!(r.servers.len(), 2);
    let on_b = received(&b) - before;
    assert!(on_b >= 20, "server b read only {on_b} requests");
}

#[test]
fn failed_requests_exit_1_with_codes() {
    let server = corral();
    let cs = server.connect_string();
    let first = bench_json(
        &cs,
        &["--op", "create", "--count", "50", "--prefix", "/dup"],
    );
    check_sane(&first, 50);
    // The same names again: every create fails with NodeExists.
    let out = bench(&[
        "--server", &cs, "--op", "create", "--count", "50", "--prefix", "/dup", "--json", "-q",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let r: Report = serde_json::from_slice(&out.stdout).expect("report printed even on failure");
    assert_eq!((r.count, r.errors), (50, 50), "{r:?}");
    assert_eq!(r.errors_by_code.get(&-110), Some(&50), "{r:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("50 of 50 requests failed: 50 x NodeExists (-110)"),
        "{stderr}"
    );
    // No server: a clear error, no summary.
    let port = corral_testkit::free_port();
    let out = bench(&["--server", &format!("127.0.0.1:{port}"), "--count", "5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn same_generator_drives_real_zookeeper() {
    if !corral_testkit::require_real_zookeeper("same_generator_drives_real_zookeeper") {
        return;
    }
    let zk = corral_testkit::start_zookeeper(&[], &[]).expect("start ZooKeeper");
    assert!(
        zk.command_line().starts_with("java "),
        "{}",
        zk.command_line()
    );
    let cs = zk.connect_string();
    let r = bench_json(
        &cs,
        &[
            "--op",
            "mixed",
            "--count",
            "300",
            "--sessions",
            "4",
            "--window",
            "8",
        ],
    );
    check_sane(&r, 300);
    let r = bench_json(&cs, &["--op", "multi", "--count", "100", "--sessions", "2"]);
    check_sane(&r, 100);
    let r = bench_json(&cs, &["--watchers", "3", "--count", "10", "--cleanup"]);
    check_sane(&r, 30);
    assert_eq!(r.cleaned, Some(2), "the watched node and the prefix: {r:?}");
}
