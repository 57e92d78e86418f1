//! Real-client interop suite: the clients people actually run — the ZooKeeper 3.8 Java client,
//! Curator 5.4 recipes, zkCli.sh, the C client (`cli_mt` and a program linked against
//! libzookeeper_mt) and the Go client (samuel/go-zookeeper) — run the same scenario files from
//! `interop/` against a fresh real ZooKeeper 3.8 and a fresh corral, and the results are reported
//! side by side.
//!
//! Rules (see `docs/clients.md`):
//! - a scenario that fails on ZooKeeper is a broken scenario: the test fails;
//! - a scenario that fails on corral fails the test, unless it is listed in
//!   [`KNOWN_CORRAL_FAILURES`] with its reason; a listed scenario that passes on corral also
//!   fails the test, so the list stays honest;
//! - a missing peer (javac and the Curator jars, zkCli.sh, cli_mt, gcc and the C headers, go and
//!   go-zookeeper, the real ZooKeeper) skips its scenarios loudly, and fails the test under CI=true.
//!
//! Scenario programs (Java, C, Go) take the connect string as their only argument, exit 0 on
//! success and non-zero with a `FAIL: ...` line otherwise. They can ask the runner to act on the
//! server by printing `@@ACTION restart|stop|start`; the runner answers `@@DONE <action>` on
//! their stdin. Scripts (`interop/zkcli/*.zk`, `interop/climt/*.cli`) are expect-style, see
//! [`run_script`].
//!
//! `CORRAL_INTEROP=name,name` runs only the scenarios whose names contain one of the words.
//! `CORRAL_INTEROP_JOBS=1` runs the ZooKeeper and corral sides one after the other instead of at
//! the same time.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corral_testkit::{ServerProcess, CLI_MT, ZKCLI};

// ---------------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Lang {
    Java,
    ZkCli,
    CliMt,
    C,
    Go,
}

impl Lang {
    fn label(self) -> &'static str {
        match self {
            Lang::Java => "java",
            Lang::ZkCli => "zkCli.sh",
            Lang::CliMt => "cli_mt",
            Lang::C => "C",
            Lang::Go => "go",
        }
    }
}

struct Scenario {
    /// Unique name, shown in the table.
    name: &'static str,
    lang: Lang,
    /// Java class, C or Go program name, or script file name under `interop/<lang>/`.
    file: &'static str,
    /// Extra zoo.cfg lines for both servers.
    cfg: &'static [&'static str],
    /// Per-scenario deadline for one side (client program or script, server actions included).
    deadline_s: u64,
}

const fn java(name: &'static str, class: &'static str, deadline_s: u64) -> Scenario {
    Scenario {
        name,
        lang: Lang::Java,
        file: class,
        cfg: &[],
        deadline_s,
    }
}

/// zoo.cfg lines every scenario's servers get (after testkit's defaults).
const BASE_CFG: &[&str] = &["maxClientCnxns=0"];
/// -D properties both servers get: containers and TTL nodes are reaped every 500 ms instead of
/// every 60 s, so scenarios can wait for them.
const BASE_PROPS: &[(&str, &str)] = &[("znode.container.checkIntervalMs", "500")];

const fn zkcli(name: &'static str, file: &'static str) -> Scenario {
    Scenario {
        name,
        lang: Lang::ZkCli,
        file,
        cfg: &[],
        deadline_s: 90,
    }
}

const fn climt(name: &'static str, file: &'static str) -> Scenario {
    Scenario {
        name,
        lang: Lang::CliMt,
        file,
        cfg: &[],
        deadline_s: 60,
    }
}

const SCENARIOS: &[Scenario] = &[
    java("java_client_api", "ZkApi", 90),
    java("curator_locks", "CuratorLocks", 120),
    java("curator_leader", "CuratorLeader", 120),
    java("curator_barriers", "CuratorBarriers", 90),
    java("curator_queues", "CuratorQueues", 90),
    java("curator_counters", "CuratorCounters", 90),
    java("curator_caches", "CuratorCaches", 90),
    java("curator_nodes", "CuratorNodes", 90),
    java("curator_discovery", "CuratorDiscovery", 90),
    java("curator_transactions", "CuratorTxn", 90),
    java("fail_conn_drop_mid_lock", "FailLockDrop", 90),
    java("fail_restart_mid_lock", "FailLockRestart", 120),
    java("fail_session_expiry", "FailExpiry", 90),
    java("fail_crashed_client_session_timeout", "FailCrash", 120),
    java("fail_watches_after_conn_drop", "FailWatchesDrop", 90),
    java("fail_watches_after_restart", "FailWatchesRestart", 120),
    java("fail_stopped_then_started", "FailStopped", 120),
    java("fail_long_outage_session_survives", "FailLongOutage", 120),
    zkcli("zkcli_basic", "basic.zk"),
    zkcli("zkcli_acl", "acl.zk"),
    zkcli("zkcli_watch", "watch.zk"),
    zkcli("zkcli_quota", "quota.zk"),
    zkcli("zkcli_restart", "restart.zk"),
    zkcli("zkcli_edge", "edge.zk"),
    climt("cli_mt_basic", "basic.cli"),
    Scenario {
        name: "c_client",
        lang: Lang::C,
        file: "zkc",
        cfg: &[],
        deadline_s: 60,
    },
    Scenario {
        name: "go_client",
        lang: Lang::Go,
        file: "gozk",
        cfg: &[],
        deadline_s: 90,
    },
    Scenario {
        name: "go_restart",
        lang: Lang::Go,
        file: "gorestart",
        cfg: &[],
        deadline_s: 90,
    },
];

/// Scenarios that pass on ZooKeeper and are known to fail on corral, with the reason. A listed
/// scenario that passes on corral fails the suite: remove it from here when corral is fixed.
const KNOWN_CORRAL_FAILURES: &[(&str, &str)] = &[];

/// Expectations of script scenarios wait at most this long for their output.
const EXPECT_WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Paths, peers, compilation
// ---------------------------------------------------------------------------------------------

const TEST: &str = "interop";

use corral_testkit::{interop_dir, run_bounded, CURATOR_JARS as JAVA_JARS, SLF4J_SIMPLE};
const JAVAC: &str = "/usr/bin/javac";
const GCC: &str = "/usr/bin/gcc";
const ZK_C_HEADER: &str = "/usr/include/zookeeper/zookeeper.h";
const GO: &str = "/usr/bin/go";
const GO_ZK: &str = "/usr/share/gocode/src/github.com/samuel/go-zookeeper/zk";
const GOPATH: &str = "/usr/share/gocode";

fn corral_bin() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_corral")).to_path_buf()
}

/// Writes straight to stderr (not captured by the test harness), so progress and the table are
/// visible in every run.
fn say(text: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{text}");
    let _ = err.flush();
}

/// Which languages can run here. Missing peers skip loudly (panic under CI, via testkit).
fn available_langs() -> BTreeSet<Lang> {
    let mut langs = BTreeSet::new();
    let java_ok = [
        (JAVAC, "default-jdk-headless"),
        (SLF4J_SIMPLE, "libslf4j-java"),
    ]
    .iter()
    .chain(JAVA_JARS.iter())
    .fold(true, |ok, (path, pkg)| {
        corral_testkit::require_tool(TEST, path, pkg) && ok
    });
    if java_ok {
        langs.insert(Lang::Java);
    }
    if corral_testkit::require_tool(TEST, ZKCLI, "zookeeper") {
        langs.insert(Lang::ZkCli);
    }
    if corral_testkit::require_tool(TEST, CLI_MT, "zookeeper-bin") {
        langs.insert(Lang::CliMt);
    }
    let c_ok = corral_testkit::require_tool(TEST, GCC, "gcc")
        & corral_testkit::require_tool(TEST, ZK_C_HEADER, "libzookeeper-mt-dev");
    if c_ok {
        langs.insert(Lang::C);
    }
    let go_ok = corral_testkit::require_tool(TEST, GO, "golang-go")
        & corral_testkit::require_tool(TEST, GO_ZK, "golang-github-samuel-go-zookeeper-dev");
    if go_ok {
        langs.insert(Lang::Go);
    }
    langs
}

/// Runs a build command, bounded by a deadline; fails with its output.
fn build(what: &str, cmd: &mut Command, limit: Duration) {
    let started = Instant::now();
    let out = run_bounded(cmd, limit).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.0, "{what} failed:\n{}", out.1);
    say(&format!(
        "interop: {what} in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
}

struct Built {
    java_cp: String,
    bin_dir: PathBuf,
}

fn compile(langs: &BTreeSet<Lang>, scenarios: &[&Scenario], out: &Path) -> Built {
    let dir = interop_dir();
    let bin_dir = out.join("bin");
    fs::create_dir_all(&bin_dir).unwrap();
    let jars: Vec<&str> = JAVA_JARS.iter().map(|(j, _)| *j).collect();
    let classes = out.join("classes");
    let wanted = |lang: Lang| langs.contains(&lang) && scenarios.iter().any(|s| s.lang == lang);
    if wanted(Lang::Java) {
        fs::create_dir_all(&classes).unwrap();
        let mut sources: Vec<PathBuf> = fs::read_dir(dir.join("java"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "java"))
            .collect();
        sources.sort();
        build(
            "javac interop/java/*.java",
            Command::new("javac")
                .arg("-J-Xmx512m")
                .arg("-nowarn")
                .arg("-d")
                .arg(&classes)
                .arg("-cp")
                .arg(jars.join(":"))
                .args(&sources),
            Duration::from_secs(180),
        );
    }
    if wanted(Lang::C) {
        for s in scenarios.iter().filter(|s| s.lang == Lang::C) {
            build(
                &format!("gcc interop/c/{}.c", s.file),
                Command::new(GCC)
                    .args(["-std=gnu11", "-Wall", "-Werror", "-O0", "-g", "-DTHREADED"])
                    .arg("-I/usr/include/zookeeper")
                    .arg("-o")
                    .arg(bin_dir.join(s.file))
                    .arg(dir.join("c").join(format!("{}.c", s.file)))
                    .args(["-lzookeeper_mt", "-lpthread"]),
                Duration::from_secs(120),
            );
        }
    }
    if wanted(Lang::Go) {
        // GOPATH mode against Debian's source packages: the module proxy is not reachable.
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-gocache");
        for s in scenarios.iter().filter(|s| s.lang == Lang::Go) {
            let src = out.join(format!("go-{}", s.file));
            fs::create_dir_all(&src).unwrap();
            fs::copy(
                dir.join("go").join(format!("{}.go", s.file)),
                src.join("main.go"),
            )
            .unwrap();
            build(
                &format!("go build interop/go/{}.go", s.file),
                Command::new(GO)
                    .arg("build")
                    .arg("-o")
                    .arg(bin_dir.join(s.file))
                    .arg("main.go")
                    .current_dir(&src)
                    .env("GOPATH", GOPATH)
                    .env("GO111MODULE", "off")
                    .env("GOCACHE", &cache)
                    .env("GOFLAGS", "")
                    .env("GOMAXPROCS", "1"),
                Duration::from_secs(300),
            );
        }
    }
    let mut cp = vec![classes.display().to_string()];
    cp.extend(jars.iter().map(|j| j.to_string()));
    cp.push(SLF4J_SIMPLE.to_string());
    Built {
        java_cp: cp.join(":"),
        bin_dir,
    }
}

// ---------------------------------------------------------------------------------------------
// Running one side of one scenario
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Outcome {
    passed: bool,
    secs: f64,
    /// One line: why it failed (empty when it passed).
    reason: String,
    /// Everything the client printed, plus the runner's notes.
    transcript: String,
    /// The server's log tail, kept for failures.
    server_log: String,
}

/// A child whose stdout+stderr lines arrive on a channel and are kept in a transcript.
struct Driven {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    transcript: Arc<Mutex<String>>,
}

impl Driven {
    fn spawn(program: &Path, args: &[String], env: &[(&str, &str)]) -> io::Result<Driven> {
        // `exec 2>&1` merges stderr into the same pipe, in order.
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg("exec 2>&1; exec \"$0\" \"$@\"")
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        let transcript = Arc::new(Mutex::new(String::new()));
        let t = transcript.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                        {
                            let mut t = t.lock().unwrap();
                            t.push_str(&line);
                            t.push('\n');
                        }
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(Driven {
            child,
            stdin,
            lines: rx,
            transcript,
        })
    }

    fn note(&self, text: &str) {
        let mut t = self.transcript.lock().unwrap();
        let _ = writeln!(t, "[runner] {text}");
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        match self.stdin.as_mut() {
            Some(stdin) => {
                stdin.write_all(line.as_bytes())?;
                stdin.write_all(b"\n")?;
                stdin.flush()
            }
            None => Err(io::Error::new(io::ErrorKind::BrokenPipe, "stdin closed")),
        }
    }

    /// Waits for the child to exit until `deadline`; kills it (our own child) after that.
    fn finish(&mut self, deadline: Instant) -> Result<std::process::ExitStatus, String> {
        self.stdin = None;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("deadline passed; client killed".to_string());
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn transcript(&self) -> String {
        self.transcript.lock().unwrap().clone()
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Performs a server action a scenario asked for.
fn server_action(server: &mut ServerProcess, action: &str) -> Result<(), String> {
    match action {
        "restart" => server.restart().map_err(|e| format!("{e:#}")),
        "stop" => {
            server.stop();
            Ok(())
        }
        "start" => server.restart().map_err(|e| format!("{e:#}")),
        "kill9" => {
            server.kill9();
            Ok(())
        }
        other => Err(format!("unknown server action {other:?}")),
    }
}

/// Runs a scenario program: answers its `@@ACTION`s until it exits or the deadline passes.
fn run_program(
    program: &Path,
    args: &[String],
    server: &mut ServerProcess,
    deadline: Instant,
) -> (bool, String, String) {
    let mut d = match Driven::spawn(program, args, &[]) {
        Ok(d) => d,
        Err(e) => {
            return (
                false,
                format!("cannot start {}: {e}", program.display()),
                String::new(),
            )
        }
    };
    let mut failure = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match d.lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(action) = line.strip_prefix("@@ACTION ") {
                    let action = action.trim();
                    let result = server_action(server, action);
                    d.note(&format!("server {action}: {result:?}"));
                    match result {
                        Ok(()) => {
                            let _ = d.send(&format!("@@DONE {action}"));
                        }
                        Err(e) => {
                            failure = Some(format!("server {action} failed: {e}"));
                            let _ = d.send(&format!("@@FAILED {action}"));
                        }
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                failure = Some("deadline passed".to_string());
                break;
            }
        }
    }
    let status = d.finish(deadline);
    let transcript = d.transcript();
    let fail_line = transcript
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .map(str::to_string);
    match (failure, status) {
        (Some(f), _) => (false, fail_line.unwrap_or(f), transcript),
        (None, Ok(s)) if s.success() && transcript.lines().any(|l| l == "PASS" || l == "PASS.") => {
            (true, String::new(), transcript)
        }
        (None, Ok(s)) => (
            false,
            fail_line.unwrap_or_else(|| format!("exited with {s} without a PASS line")),
            transcript,
        ),
        (None, Err(e)) => (false, fail_line.unwrap_or(e), transcript),
    }
}

/// One step of an expect-style script.
#[derive(Debug, PartialEq)]
enum Step {
    /// A line sent to the client's stdin.
    Send(String),
    /// `> text`: a later output line contains `text` (in order: the search starts after the
    /// previous `>` match, and after the output that preceded the last command).
    Expect(String),
    /// `>* text`: some output line since the last command contains `text` (any order).
    ExpectAnywhere(String),
    /// `!text`: no line of the whole transcript contains `text` (checked at the end).
    Never(String),
    /// `@restart`, `@stop`, `@start`: a server action.
    Action(String),
    /// `@sleep ms`: lets time pass (used only to make a negative check meaningful).
    Sleep(u64),
}

fn parse_script(text: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(t) = line.strip_prefix(">* ") {
            steps.push(Step::ExpectAnywhere(t.to_string()));
        } else if let Some(t) = line.strip_prefix("> ") {
            steps.push(Step::Expect(t.to_string()));
        } else if let Some(t) = line.strip_prefix('!') {
            steps.push(Step::Never(t.trim().to_string()));
        } else if let Some(ms) = line.strip_prefix("@sleep ") {
            steps.push(Step::Sleep(
                ms.trim().parse().expect("@sleep takes milliseconds"),
            ));
        } else if let Some(a) = line.strip_prefix('@') {
            steps.push(Step::Action(a.trim().to_string()));
        } else {
            steps.push(Step::Send(line.to_string()));
        }
    }
    steps
}

/// Runs an expect-style script against a line-oriented client (zkCli.sh, cli_mt): commands are
/// sent one by one; after each, its `>` / `>*` expectations must show up within
/// [`EXPECT_WAIT`]. At the end stdin is closed and the client must exit by the deadline.
fn run_script(
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
    script: &[Step],
    server: &mut ServerProcess,
    deadline: Instant,
) -> (bool, String, String) {
    let mut d = match Driven::spawn(program, args, env) {
        Ok(d) => d,
        Err(e) => {
            return (
                false,
                format!("cannot start {}: {e}", program.display()),
                String::new(),
            )
        }
    };
    let mut lines: Vec<String> = Vec::new();
    let mut cursor = 0; // index of the first line an ordered expectation may match
    let mut mark = 0; // first line of output after the last command was sent
    let mut last_cmd = String::from("(start)");
    let mut failure: Option<String> = None;
    let mut nevers = Vec::new();
    for step in script {
        match step {
            Step::Send(cmd) => {
                mark = lines.len();
                cursor = cursor.max(mark);
                last_cmd = cmd.clone();
                d.note(&format!("send: {cmd}"));
                if let Err(e) = d.send(cmd) {
                    failure = Some(format!("cannot send {cmd:?}: {e}"));
                }
            }
            Step::Expect(text) | Step::ExpectAnywhere(text) => {
                let ordered = matches!(step, Step::Expect(_));
                let until = (Instant::now() + EXPECT_WAIT).min(deadline);
                loop {
                    let from = if ordered { cursor } else { mark };
                    if let Some(i) = lines[from..].iter().position(|l| l.contains(text.as_str())) {
                        if ordered {
                            cursor = from + i + 1;
                        }
                        break;
                    }
                    let left = until.saturating_duration_since(Instant::now());
                    match d.lines.recv_timeout(left) {
                        Ok(l) => lines.push(l),
                        Err(_) => {
                            failure = Some(format!(
                                "after `{last_cmd}`: expected a line containing {text:?}"
                            ));
                            break;
                        }
                    }
                }
            }
            Step::Never(text) => nevers.push(text.clone()),
            Step::Action(action) => {
                let result = server_action(server, action);
                d.note(&format!("server {action}: {result:?}"));
                if let Err(e) = result {
                    failure = Some(format!("server {action} failed: {e}"));
                }
            }
            Step::Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
        }
        if failure.is_some() {
            break;
        }
    }
    let status = d.finish(deadline);
    let transcript = d.transcript();
    if failure.is_none() {
        if let Err(e) = status {
            failure = Some(format!("client did not exit after its script: {e}"));
        }
    }
    if failure.is_none() {
        for text in &nevers {
            if let Some(l) = transcript
                .lines()
                .find(|l| l.contains(text.as_str()) && !l.starts_with("[runner]"))
            {
                failure = Some(format!("unexpected output line: {l}"));
                break;
            }
        }
    }
    match failure {
        None => (true, String::new(), transcript),
        Some(f) => (false, f, transcript),
    }
}

fn log_tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Starts a fresh server of the given kind and runs the scenario against it.
fn run_side(zookeeper: bool, s: &Scenario, built: &Built) -> Outcome {
    let started = Instant::now();
    let mut cfg: Vec<&str> = BASE_CFG.to_vec();
    cfg.extend_from_slice(s.cfg);
    let server = if zookeeper {
        corral_testkit::start_zookeeper(&cfg, BASE_PROPS)
    } else {
        corral_testkit::start_corral(&corral_bin(), &cfg, BASE_PROPS)
    };
    let mut server = match server {
        Ok(server) => server,
        Err(e) => {
            return Outcome {
                passed: false,
                secs: started.elapsed().as_secs_f64(),
                reason: "server did not start".to_string(),
                transcript: String::new(),
                server_log: format!("{e:#}"),
            }
        }
    };
    let connect = server.connect_string();
    let deadline = Instant::now() + Duration::from_secs(s.deadline_s);
    let dir = interop_dir();
    let (passed, reason, transcript) = match s.lang {
        Lang::Java => {
            let args = vec![
                "-Xmx256m".to_string(),
                "-XX:+UseSerialGC".to_string(),
                "-XX:TieredStopAtLevel=1".to_string(),
                "-Xshare:auto".to_string(),
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn".to_string(),
                format!("-Dinterop.deadline={}", s.deadline_s.saturating_sub(5)),
                "-cp".to_string(),
                built.java_cp.clone(),
                s.file.to_string(),
                connect,
            ];
            run_program(Path::new("java"), &args, &mut server, deadline)
        }
        Lang::C | Lang::Go => run_program(
            &built.bin_dir.join(s.file),
            &[connect],
            &mut server,
            deadline,
        ),
        Lang::ZkCli => {
            let script = parse_script(&fs::read_to_string(dir.join("zkcli").join(s.file)).unwrap());
            let args = vec!["-server".to_string(), connect];
            let env = [(
                "CLIENT_JVMFLAGS",
                "-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1",
            )];
            run_script(
                Path::new(ZKCLI),
                &args,
                &env,
                &script,
                &mut server,
                deadline,
            )
        }
        Lang::CliMt => {
            let script = parse_script(&fs::read_to_string(dir.join("climt").join(s.file)).unwrap());
            run_script(
                Path::new(CLI_MT),
                &[connect],
                &[],
                &script,
                &mut server,
                deadline,
            )
        }
    };
    let server_log = if passed {
        String::new()
    } else {
        log_tail(&server.log(), 40)
    };
    server.stop();
    Outcome {
        passed,
        secs: started.elapsed().as_secs_f64(),
        reason,
        transcript,
        server_log,
    }
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

fn selected() -> Vec<&'static Scenario> {
    let filter = std::env::var("CORRAL_INTEROP").unwrap_or_default();
    let words: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    SCENARIOS
        .iter()
        .filter(|s| words.is_empty() || words.iter().any(|w| s.name.contains(w)))
        .collect()
}

fn cell(o: &Option<Outcome>) -> String {
    match o {
        None => "skipped".to_string(),
        Some(o) if o.passed => format!("pass ({:.1} s)", o.secs),
        Some(o) => format!("FAIL ({:.1} s)", o.secs),
    }
}

#[test]
fn interop_suite() {
    if !corral_testkit::require_real_zookeeper(TEST) {
        return;
    }
    let suite_started = Instant::now();
    let langs = available_langs();
    let scenarios = selected();
    let work = tempfile::Builder::new()
        .prefix("corral-interop-")
        .tempdir()
        .unwrap();
    let built = compile(&langs, &scenarios, work.path());
    let jobs: usize = std::env::var("CORRAL_INTEROP_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(2);

    let mut results: Vec<(&Scenario, Option<Outcome>, Option<Outcome>)> = Vec::new();
    for s in &scenarios {
        if !langs.contains(&s.lang) {
            say(&format!(
                "SKIPPED interop {}: {} not available",
                s.name,
                s.lang.label()
            ));
            results.push((s, None, None));
            continue;
        }
        let (zk, corral) = if jobs >= 2 {
            std::thread::scope(|scope| {
                let zk = scope.spawn(|| run_side(true, s, &built));
                let corral = run_side(false, s, &built);
                (zk.join().expect("zookeeper side panicked"), corral)
            })
        } else {
            (run_side(true, s, &built), run_side(false, s, &built))
        };
        say(&format!(
            "interop {:<36} zookeeper: {:<16} corral: {}",
            s.name,
            cell(&Some(zk.clone())),
            cell(&Some(corral.clone()))
        ));
        results.push((s, Some(zk), Some(corral)));
    }

    // The side-by-side table.
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| scenario | client | zookeeper 3.8 | corral | note |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|");
    let mut problems = Vec::new();
    let (mut zk_pass, mut corral_pass, mut ran, mut known_failed) = (0, 0, 0, 0);
    for (s, zk, corral) in &results {
        let known = KNOWN_CORRAL_FAILURES
            .iter()
            .find(|(n, _)| n == &s.name)
            .map(|(_, r)| *r);
        let mut note = String::new();
        if let (Some(zk), Some(corral)) = (zk, corral) {
            ran += 1;
            zk_pass += zk.passed as usize;
            corral_pass += corral.passed as usize;
            if !zk.passed {
                problems.push(format!(
                    "{}: fails on ZooKeeper (broken scenario): {}",
                    s.name, zk.reason
                ));
            }
            match (corral.passed, known) {
                (false, None) => {
                    problems.push(format!("{}: fails on corral: {}", s.name, corral.reason));
                }
                (false, Some(r)) => {
                    known_failed += 1;
                    note = format!("known corral failure: {r}");
                }
                (true, Some(r)) => problems.push(format!(
                    "{}: listed as a known corral failure ({r}) but passes on corral: remove it from \
                     KNOWN_CORRAL_FAILURES",
                    s.name
                )),
                (true, None) => {}
            }
            if !corral.passed && note.is_empty() {
                note = corral.reason.clone();
            }
        }
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} |",
            s.name,
            s.lang.label(),
            cell(zk),
            cell(corral),
            note.replace('|', "\\|")
        );
    }
    let _ = writeln!(
        table,
        "\n{ran} scenarios ran: {zk_pass} pass on ZooKeeper, {corral_pass} pass on corral \
         ({known_failed} known corral failures); {:.0} s in all",
        suite_started.elapsed().as_secs_f64()
    );
    let report = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-report.md");
    let _ = fs::write(&report, &table);
    say(&format!(
        "\ninterop side by side (also in {}):\n{table}",
        report.display()
    ));

    // Details of every failure, ZooKeeper's and corral's, expected or not.
    for (s, zk, corral) in &results {
        for (side, o) in [("zookeeper", zk), ("corral", corral)] {
            if let Some(o) = o.as_ref().filter(|o| !o.passed) {
                say(&format!(
                    "---- {} on {side}: {}\n-- client transcript (tail):\n{}\n-- server log (tail):\n{}\n----",
                    s.name,
                    o.reason,
                    log_tail(&o.transcript, 60),
                    o.server_log
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "interop problems:\n  {}",
        problems.join("\n  ")
    );
}

/// Every scenario file under interop/ is in the table, names are unique, and every known
/// failure names a scenario (runs without any external tool).
#[test]
fn scenario_table_is_complete() {
    let dir = interop_dir();
    let mut names = BTreeSet::new();
    for s in SCENARIOS {
        assert!(names.insert(s.name), "duplicate scenario name {}", s.name);
    }
    for (name, reason) in KNOWN_CORRAL_FAILURES {
        assert!(
            names.contains(name),
            "KNOWN_CORRAL_FAILURES names unknown scenario {name}"
        );
        assert!(!reason.is_empty(), "{name}: give a reason");
    }
    let files = [
        (Lang::Java, "java", "java"),
        (Lang::ZkCli, "zkcli", "zk"),
        (Lang::CliMt, "climt", "cli"),
        (Lang::C, "c", "c"),
        (Lang::Go, "go", "go"),
    ];
    for (lang, sub, ext) in files {
        let Ok(entries) = fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.extension() != Some(std::ffi::OsStr::new(ext)) {
                continue;
            }
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            let file = path.file_name().unwrap().to_string_lossy().to_string();
            if lang == Lang::Java && !SCENARIOS.iter().any(|s| s.file == stem) {
                // helpers: a class without its own main scenario
                let text = fs::read_to_string(&path).unwrap();
                assert!(
                    !text.contains("public static void main"),
                    "{} has a main but is not in SCENARIOS",
                    path.display()
                );
                continue;
            }
            let key = if matches!(lang, Lang::ZkCli | Lang::CliMt) {
                file
            } else {
                stem
            };
            assert!(
                SCENARIOS.iter().any(|s| s.lang == lang && s.file == key),
                "{} is not in SCENARIOS",
                path.display()
            );
        }
    }
}

#[test]
fn script_parser() {
    let steps = parse_script(
        "# c\n\ncreate /a x\n> Created /a\n>* event\n!Exception\n@restart\n@sleep 5\n",
    );
    assert_eq!(
        steps,
        vec![
            Step::Send("create /a x".into()),
            Step::Expect("Created /a".into()),
            Step::ExpectAnywhere("event".into()),
            Step::Never("Exception".into()),
            Step::Action("restart".into()),
            Step::Sleep(5),
        ]
    );
}
