//! Test support for corral: free loopback ports, skipping (locally) or failing (in CI) when an
//! external tool is missing, and starting/stopping the real ZooKeeper 3.8 and the corral binary
//! as child processes on a fresh temporary data directory; and a raw frame-level client for the
//! client port ([`raw`]).
//!
//! Everything here is plain synchronous `std` code so it can be used from any test.
//!
//! Layout of a server's temporary directory ([`ServerProcess::dir`]):
//!
//! ```text
//! <tmp>/zoo.cfg          the configuration the server was started with
//! <tmp>/data/            dataDir (ServerProcess::data_dir), unless an existing dataDir was
//!                        given to start_zookeeper_in / start_corral_in
//! <tmp>/server.log       the server's stdout and stderr (ServerProcess::log)
//! <tmp>/log4j.properties ZooKeeper only: console logging
//! ```

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::raw::{connect, read_frame, remaining, write_all_by, FRAME_BYTES_MAX};

mod ensemble;
pub mod kdc;
pub mod pki;
mod proxy;
pub mod raw;

pub use ensemble::{Ensemble, EnsembleBuilder, Flavor, Member, ENSEMBLE_STARTUP_TIMEOUT};
pub use proxy::Cut;

/// The ZooKeeper 3.8 server jar of Debian's `libzookeeper-java` (pulled in by `zookeeper`).
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// The slf4j → log4j 1.2 binding (`libslf4j-java`); without it ZooKeeper logs nothing.
pub const SLF4J_LOG4J_JAR: &str = "/usr/share/java/slf4j-log4j12.jar";
/// log4j 1.2 itself (`liblog4j1.2-java`).
pub const LOG4J_JAR: &str = "/usr/share/java/log4j-1.2.jar";
/// ZooKeeper's Java command-line client (package `zookeeper`).
pub const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
/// ZooKeeper's C command-line client (package `zookeeper-bin`).
pub const CLI_MT: &str = "/usr/lib/zookeeper/bin/cli_mt";

/// The packages that provide the real ZooKeeper, as named in skip/panic messages.
pub const ZOOKEEPER_PACKAGES: &str = "zookeeper zookeeper-bin";

/// How long `start_*` waits for the first successful handshake.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`ServerProcess::stop`] waits after SIGTERM before it sends SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

const ZOOKEEPER_MAIN: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// Our own log4j 1.2 configuration for the real ZooKeeper: console only, so that everything lands
/// in `server.log`. (Debian's `/etc/zookeeper/conf/log4j.properties` sets
/// `log4j.rootLogger=${zookeeper.root.logger}`, which is empty unless that property is given, so
/// with it and no `-Dzookeeper.root.logger` the server logs nothing at all; and that path is an
/// alternatives symlink that an administrator may repoint.) The level stays overridable with
/// `-Dzookeeper.root.logger=DEBUG,CONSOLE` in `extra_props`.
const LOG4J_PROPERTIES: &str = "\
log4j.rootLogger=${zookeeper.root.logger}
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
";

// ---------------------------------------------------------------------------------------------
// Environment checks
// ---------------------------------------------------------------------------------------------

/// A free TCP port on 127.0.0.1: binds `127.0.0.1:0`, reads the port, and drops the listener.
///
/// Another process may take the port before the caller binds it; `start_zookeeper` and
/// `start_corral` retry with a new port when the server reports "Address already in use".
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind 127.0.0.1:0 to find a free port")
}

/// True when the environment variable `CI` is set to something other than "", "0" or "false".
pub fn in_ci() -> bool {
    ci_flag(
        std::env::var_os("CI")
            .map(|v| v.to_string_lossy().into_owned())
            .as_deref(),
    )
}

fn ci_flag(value: Option<&str>) -> bool {
    match value.map(str::trim) {
        None => false,
        Some(v) => !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false")),
    }
}

/// Writes straight to the process's stderr. `eprintln!` inside a `#[test]` is captured by the
/// test harness and only shown when the test fails; a skip must be visible in every run.
fn loud(line: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

/// The common rule for a missing prerequisite: panic in CI, skip loudly elsewhere.
fn missing(test: &str, what: &str, install: &str, detail: &str) -> bool {
    if in_ci() {
        panic!(
            "{test}: {what} not installed ({detail}); CI is set, so this is a failure, not a skip: \
             run `{install}` (.ci/run does)"
        );
    }
    loud(&format!("SKIPPED {test}: {what} not installed ({install})"));
    loud(&format!("        {test}: {detail}"));
    false
}

/// Whether the corral under test was built with cargo feature `feature` (`enabled`, the
/// caller's `cfg!(feature = …)`); without it the test skips loudly, and fails under CI=true.
pub fn require_feature(test: &str, enabled: bool, feature: &str) -> bool {
    if enabled {
        return true;
    }
    if in_ci() {
        panic!(
            "{test}: corral was built without the `{feature}` feature; CI is set, so this is a \
             failure, not a skip: run the tests with --all-features (README.md, .ci/run)"
        );
    }
    loud(&format!(
        "SKIPPED {test}: corral built without the `{feature}` feature (cargo test --all-features)"
    ));
    false
}

fn java_runs() -> bool {
    static JAVA: OnceLock<bool> = OnceLock::new();
    *JAVA.get_or_init(|| {
        Command::new("java")
            .arg("-version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
}

/// What is missing for [`start_zookeeper`], or `None` when everything is there.
fn real_zookeeper_missing() -> Option<String> {
    let mut missing: Vec<String> = [ZOOKEEPER_JAR, SLF4J_LOG4J_JAR, LOG4J_JAR]
        .iter()
        .filter(|p| !Path::new(p).is_file())
        .map(|p| p.to_string())
        .collect();
    if !java_runs() {
        missing.push("a working `java` on PATH (default-jre-headless)".to_string());
    }
    if missing.is_empty() {
        None
    } else {
        Some(format!("missing: {}", missing.join(", ")))
    }
}

/// Returns true if the real ZooKeeper 3.8 (`java` plus `/usr/share/java/zookeeper.jar` and its
/// log jars) is available. If not: in CI ([`in_ci`]) it panics saying what to install; otherwise
/// it prints `SKIPPED <test>: real ZooKeeper not installed (apt-get install zookeeper
/// zookeeper-bin)` to the real stderr (not captured by the test harness) and returns false.
///
/// ```no_run
/// #[test]
/// fn compare_with_zookeeper() {
///     if !corral_testkit::require_real_zookeeper("compare_with_zookeeper") {
///         return;
///     }
///     // ...
/// }
/// ```
pub fn require_real_zookeeper(test: &str) -> bool {
    match real_zookeeper_missing() {
        None => true,
        Some(detail) => missing(
            test,
            "real ZooKeeper",
            &format!("apt-get install {ZOOKEEPER_PACKAGES}"),
            &detail,
        ),
    }
}

/// Same rule as [`require_real_zookeeper`] for one file, e.g.
/// `require_tool("t", CLI_MT, "zookeeper-bin")` or `require_tool("t", ZKCLI, "zookeeper")`:
/// true if `path` exists; otherwise panic in CI, or print
/// `SKIPPED <test>: <path> not installed (apt-get install <package>)` and return false.
pub fn require_tool(test: &str, path: &str, package: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    missing(
        test,
        path,
        &format!("apt-get install {package}"),
        &format!("{path} does not exist"),
    )
}

/// Jars the Curator programs of `interop/java` compile against (Debian packages beside them;
/// the Class-Path entries of their manifests bring in the rest: jackson, commons, netty).
pub const CURATOR_JARS: &[(&str, &str)] = &[
    (
        "/usr/share/java/curator-recipes.jar",
        "libcurator-recipes-java",
    ),
    (
        "/usr/share/java/curator-x-discovery.jar",
        "libcurator-discovery-java",
    ),
    (
        "/usr/share/java/curator-framework.jar",
        "libcurator-framework-java",
    ),
    (
        "/usr/share/java/curator-client.jar",
        "libcurator-framework-java",
    ),
    ("/usr/share/java/zookeeper.jar", "zookeeper"),
    ("/usr/share/java/zookeeper-jute.jar", "zookeeper"),
    ("/usr/share/java/guava.jar", "libguava-java"),
    ("/usr/share/java/slf4j-api.jar", "libslf4j-java"),
];

/// What ZooKeeper's Netty connection factory and the Java client's `ClientCnxnSocketNetty` need
/// beside zookeeper.jar for TLS (Debian's `libnetty-java`; the manifest does not pull them).
/// They are on every real ZooKeeper's classpath, so a test can turn on `secureClientPort`.
pub const NETTY_TLS_JARS: &[&str] = &[
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
];

/// What ZooKeeper's AdminServer (Jetty) needs beside zookeeper.jar (Debian's `libjetty9-java`,
/// `libservlet-api-java`, `libjackson2-databind-java`); on every real ZooKeeper's classpath, so
/// a test can turn on `admin.enableServer`.
pub const ADMIN_JARS: &[&str] = &[
    "/usr/share/java/jetty9-server.jar",
    "/usr/share/java/jetty9-servlet.jar",
    "/usr/share/java/jetty9-http.jar",
    "/usr/share/java/jetty9-io.jar",
    "/usr/share/java/jetty9-util.jar",
    "/usr/share/java/jetty9-security.jar",
    "/usr/share/java/servlet-api.jar",
    "/usr/share/java/jackson-databind.jar",
    "/usr/share/java/jackson-core.jar",
    "/usr/share/java/jackson-annotations.jar",
];

/// Runtime only: warnings and errors of the client libraries go to the program's output.
pub const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";

/// The repository's `interop/` directory: the client programs and scripts the tests run.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// Runs `cmd` to success within `limit` and returns the non-empty lines of its output, joined by
/// newlines (what a test compares); panics with the output, naming `what`, otherwise.
pub fn output_lines(cmd: &mut Command, limit: Duration, what: &str) -> String {
    match run_bounded(cmd, limit) {
        Ok((true, out)) => out
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        Ok((false, out)) => panic!("{what} failed:\n{out}"),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Compiles one Java source file into `out` (created) against `classpath`; returns `out`.
/// `java` for a compiled test program: a small heap, `classpath`, and slf4j-simple's logging
/// off (the program prints what the test compares).
pub fn java_program(classpath: &str) -> Command {
    let mut cmd = Command::new("java");
    cmd.args([
        "-Xmx256m",
        "-cp",
        classpath,
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=off",
    ]);
    cmd
}

/// Runs the interop `SaslClient` program (compiled into `classes`) against `connect`, logging
/// in with a JAAS file written to `jaas` whose `Client` section is `login` (the login module
/// and its options, e.g. `org.apache.zookeeper.server.auth.DigestLoginModule required
/// username="bob" password="pw"`), with `-D` `defines`; returns what it printed (60 s bound).
pub fn java_sasl_client(
    classes: &Path,
    jaas: &Path,
    login: &str,
    defines: &[(&str, String)],
    connect: &str,
) -> String {
    fs::write(jaas, format!("Client {{\n    {login};\n}};\n")).expect("client JAAS file");
    let cp = format!("{}:{ZOOKEEPER_JAR}:{SLF4J_SIMPLE}", classes.display());
    let mut cmd = java_program(&cp);
    cmd.arg(format!(
        "-Djava.security.auth.login.config={}",
        jaas.display()
    ));
    for (k, v) in defines {
        cmd.arg(format!("-D{k}={v}"));
    }
    cmd.arg("SaslClient").arg(connect);
    output_lines(&mut cmd, Duration::from_secs(60), "SaslClient")
}

pub fn javac(src: &Path, classpath: &str, out: &Path) -> PathBuf {
    fs::create_dir_all(out).expect("class directory");
    let mut cmd = Command::new("javac");
    cmd.args(["-J-Xmx256m", "-nowarn", "-d"])
        .arg(out)
        .args(["-cp", classpath])
        .arg(src);
    output_lines(
        &mut cmd,
        Duration::from_secs(120),
        &format!("javac {}", src.display()),
    );
    out.to_path_buf()
}

/// Runs a command to completion with a time limit; returns (success, stdout+stderr), or why it
/// could not run or did not finish (then it has been killed).
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<(bool, String), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out_path = dir.path().join("out");
    let out = fs::File::create(&out_path).map_err(|e| e.to_string())?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(out)
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = fs::read_to_string(&out_path).unwrap_or_default();
    match status {
        Some(s) => Ok((s.success(), text)),
        None => Err(format!("{cmd:?} did not finish within {limit:?}:\n{text}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Wire helpers
// ---------------------------------------------------------------------------------------------

/// The 49 bytes of the probe's ConnectRequest: length 45, protocolVersion 0, lastZxidSeen 0,
/// timeOut 30000, sessionId 0, passwd = 16 zero bytes, readOnly false.
fn connect_request() -> Vec<u8> {
    let mut req = Vec::with_capacity(49);
    req.extend_from_slice(&45i32.to_be_bytes()); // frame length
    req.extend_from_slice(&0i32.to_be_bytes()); // protocolVersion
    req.extend_from_slice(&0i64.to_be_bytes()); // lastZxidSeen
    req.extend_from_slice(&30_000i32.to_be_bytes()); // timeOut
    req.extend_from_slice(&0i64.to_be_bytes()); // sessionId
    req.extend_from_slice(&16i32.to_be_bytes()); // passwd length
    req.extend_from_slice(&[0u8; 16]); // passwd
    req.push(0); // readOnly
    req
}

/// closeSession: length 8, xid 1, type -11.
fn close_request() -> [u8; 12] {
    let mut req = [0u8; 12];
    req[0..4].copy_from_slice(&8i32.to_be_bytes());
    req[4..8].copy_from_slice(&1i32.to_be_bytes());
    req[8..12].copy_from_slice(&(-11i32).to_be_bytes());
    req
}

/// Raw ZooKeeper handshake, used for readiness: connect, send a ConnectRequest (protocolVersion 0,
/// lastZxidSeen 0, timeOut 30000, sessionId 0, 16 zero bytes of password, readOnly false), read
/// the ConnectResponse, and succeed with its session id if that is not 0. Then close the session
/// (xid 1, type -11) and wait for the reply, so that no session is left behind; errors after the
/// session was established are ignored. `timeout` bounds the whole exchange.
///
/// A server that is listening but has not loaded its data yet closes the connection instead of
/// answering, so this fails with `UnexpectedEof` until the server really serves.
pub fn probe_handshake(addr: SocketAddr, timeout: Duration) -> io::Result<i64> {
    let deadline = Instant::now() + timeout;
    let mut stream = connect(addr, deadline)?;
    write_all_by(&mut stream, &connect_request(), deadline)?;
    let body = read_frame(&mut stream, FRAME_BYTES_MAX, deadline)?;
    if body.len() < 16 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("ConnectResponse too short: {} bytes", body.len()),
        ));
    }
    let session_id = i64::from_be_bytes(body[8..16].try_into().unwrap());
    if session_id == 0 {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "server answered the handshake with session id 0 (refused)",
        ));
    }
    if write_all_by(&mut stream, &close_request(), deadline).is_ok() {
        let _ = read_frame(&mut stream, FRAME_BYTES_MAX, deadline);
    }
    Ok(session_id)
}

/// Opens a session on a new connection (the handshake of [`probe_handshake`]) and returns the
/// connection, ready for raw requests, with `timeout` as its read and write timeout.
pub fn open_session(addr: SocketAddr, timeout: Duration) -> io::Result<std::net::TcpStream> {
    let deadline = Instant::now() + timeout;
    let mut stream = connect(addr, deadline)?;
    write_all_by(&mut stream, &connect_request(), deadline)?;
    let body = read_frame(&mut stream, FRAME_BYTES_MAX, deadline)?;
    if body.len() < 16 || body[8..16] == [0u8; 8] {
        return Err(io::Error::other("no session in the ConnectResponse"));
    }
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// Sends a four-letter word (`ruok`, `srvr`, `mntr`, `conf`, ...) and returns the whole
/// response, read until the server closes the connection. 5 s timeout for everything.
pub fn four_letter(addr: SocketAddr, word: &str) -> io::Result<String> {
    four_letter_bytes(addr, word.as_bytes())
}

/// [`four_letter`] with raw bytes: a word and its argument (`stmk` takes an 8-byte mask).
pub fn four_letter_bytes(addr: SocketAddr, request: &[u8]) -> io::Result<String> {
    let word = String::from_utf8_lossy(&request[..request.len().min(4)]).into_owned();
    let word = word.as_str();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut stream = connect(addr, deadline)?;
    write_all_by(&mut stream, request, deadline)?;
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let left = match remaining(deadline) {
            Ok(left) => left,
            Err(e) => return Err(partial(e, word, &out)),
        };
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The server may reset rather than close once it has answered.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !out.is_empty() => break,
            Err(e) => return Err(partial(e, word, &out)),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn partial(e: io::Error, word: &str, got: &[u8]) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "four-letter word {word:?}: {e}; received so far: {:?}",
            String::from_utf8_lossy(got)
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Server processes
// ---------------------------------------------------------------------------------------------

/// A server (real ZooKeeper or corral) running as our child process on 127.0.0.1:`port`, with
/// its own temporary directory. Dropping it kills the process (SIGKILL) if it still runs and
/// removes the directory.
pub struct ServerProcess {
    /// The client port, on 127.0.0.1.
    pub port: u16,
    /// The server's dataDir: `<tmp>/data`, which lives as long as this value, or the existing
    /// directory given to [`start_zookeeper_in`] / [`start_corral_in`].
    pub data_dir: PathBuf,
    tmp: tempfile::TempDir,
    name: &'static str,
    program: PathBuf,
    args: Vec<OsString>,
    child: Child,
}

impl std::fmt::Debug for ServerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerProcess")
            .field("name", &self.name)
            .field("port", &self.port)
            .field("pid", &self.child.id())
            .field("dir", &self.tmp.path())
            .finish()
    }
}

impl ServerProcess {
    /// `"127.0.0.1:PORT"`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The temporary directory that holds `zoo.cfg`, `data/` and `server.log`.
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// `<tmp>/zoo.cfg`.
    pub fn config_path(&self) -> PathBuf {
        self.tmp.path().join("zoo.cfg")
    }

    /// `<tmp>/server.log`, the server's stdout and stderr.
    pub fn log_path(&self) -> PathBuf {
        self.tmp.path().join("server.log")
    }

    /// Everything the server printed so far (stdout and stderr; across restarts).
    pub fn log(&self) -> String {
        fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path().display()))
    }

    /// The full command line, for messages.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(|a| a.as_os_str()))
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// True while the child has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, wait up to 10 s, then SIGKILL; returns the exit status (the real ZooKeeper
    /// exits with 143 on SIGTERM). Returns the earlier status if the process already exited.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_within(STOP_TIMEOUT)
    }

    /// [`stop`](Self::stop) with another grace period before SIGKILL.
    pub fn stop_within(&mut self, grace: Duration) -> ExitStatus {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status;
        }
        // Our own child, not yet reaped: the pid cannot have been reused.
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break,
            }
        }
        loud(&format!(
            "testkit: {} (pid {}) did not exit within {grace:?} of SIGTERM; sending SIGKILL",
            self.name,
            self.pid()
        ));
        self.kill9();
        self.child.wait().expect("wait for the killed server")
    }

    /// SIGKILL and reap (a crash, from the clients' point of view). No-op if already exited.
    pub fn kill9(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    /// Stops the server if it still runs (SIGTERM as [`stop`](Self::stop)) and starts the same
    /// command again, on the same port, config and dataDir, appending to the same log; returns
    /// when the server answers a handshake again.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.child = spawn(&self.program, &self.args, self.tmp.path())
            .with_context(|| format!("restarting {}: {}", self.name, self.command_line()))?;
        self.wait_ready(STARTUP_TIMEOUT)
    }

    /// Stops the server if it still runs (SIGTERM as [`stop`](Self::stop)) and starts the same
    /// command again like [`restart`](Self::restart), but returns at once, without waiting for
    /// a handshake: an ensemble member may only serve once a quorum is up. Wait with
    /// [`wait_ready`](Self::wait_ready).
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.child = spawn(&self.program, &self.args, self.tmp.path())
            .with_context(|| format!("restarting {}: {}", self.name, self.command_line()))?;
        Ok(())
    }

    /// SIGSTOP: the process stays alive with its sockets open but does nothing (a long pause,
    /// as a GC stall or an overloaded machine). Undo with [`resume`](Self::resume).
    pub fn pause(&mut self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&mut self, signal: libc::c_int) {
        if let Ok(None) = self.child.try_wait() {
            // Our own child, not yet reaped: the pid cannot have been reused.
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, signal);
            }
        }
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Waits until [`probe_handshake`] succeeds; fails early if the process exits, and kills it
    /// after `timeout`. The error carries the log.
    pub fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited during startup with {status}\ncommand: {}\n{}",
                    self.name,
                    self.command_line(),
                    self.log_for_error()
                );
            }
            let error = match probe_handshake(self.addr(), Duration::from_secs(2)) {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if started.elapsed() >= timeout {
                self.kill9();
                bail!(
                    "{} did not answer a handshake on {} within {timeout:?} (last error: {error})\n\
                     command: {}\n{}",
                    self.name,
                    self.addr(),
                    self.command_line(),
                    self.log_for_error()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The log for an error message: all of it, or its last 30 000 characters.
    fn log_for_error(&self) -> String {
        let log = self.log();
        const MAX: usize = 30_000;
        let tail = if log.len() > MAX {
            let mut cut = log.len() - MAX;
            while !log.is_char_boundary(cut) {
                cut += 1;
            }
            format!("...\n{}", &log[cut..])
        } else {
            log
        };
        format!(
            "--- {} ---\n{tail}--- end of log ---",
            self.log_path().display()
        )
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Spawns `program args` in `dir` with stdin closed and stdout+stderr appended to
/// `dir/server.log`.
fn spawn(program: &Path, args: &[OsString], dir: &Path) -> io::Result<Child> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))?;
    let mut attempts = 0;
    loop {
        let result = Command::new(program)
            .args(args)
            .current_dir(dir)
            .env(
                "RUST_BACKTRACE",
                std::env::var_os("RUST_BACKTRACE").unwrap_or("1".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .spawn();
        match result {
            // ETXTBSY: a just-written executable may still be open for writing in a child that
            // another test thread forked; it goes away at that child's exec.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// The zoo.cfg both servers get.
fn zoo_cfg(data_dir: &Path, port: u16, extra_cfg: &[&str]) -> String {
    let mut cfg = format!(
        "tickTime=2000\n\
         dataDir={}\n\
         clientPort={port}\n\
         clientPortAddress=127.0.0.1\n\
         admin.enableServer=false\n\
         4lw.commands.whitelist=*\n\
         extendedTypesEnabled=true\n",
        data_dir.display()
    );
    for line in extra_cfg {
        cfg.push_str(line);
        cfg.push('\n');
    }
    cfg
}

fn props(extra_props: &[(&str, &str)]) -> Vec<OsString> {
    extra_props
        .iter()
        .map(|(k, v)| format!("-D{k}={v}").into())
        .collect()
}

/// Starts a server on a free port in a fresh temporary directory and waits until it answers a
/// handshake. `command` gets the directory, the config path and the port. Retries with another
/// port (up to 3 times) if the port turned out to be taken.
fn start(
    name: &'static str,
    existing_data_dir: Option<&Path>,
    extra_cfg: &[&str],
    command: impl Fn(&Path, &Path) -> anyhow::Result<(PathBuf, Vec<OsString>)>,
) -> anyhow::Result<ServerProcess> {
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("corral-testkit-{name}-"))
            .tempdir()
            .context("creating the server's temporary directory")?;
        let data_dir = match existing_data_dir {
            Some(dir) => {
                if !dir.is_dir() {
                    bail!("data directory {} does not exist", dir.display());
                }
                dir.to_path_buf()
            }
            None => {
                let dir = tmp.path().join("data");
                fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
                dir
            }
        };
        let port = free_port();
        let cfg_path = tmp.path().join("zoo.cfg");
        fs::write(&cfg_path, zoo_cfg(&data_dir, port, extra_cfg))
            .with_context(|| format!("writing {}", cfg_path.display()))?;
        let (program, args) = command(tmp.path(), &cfg_path)?;
        let child = spawn(&program, &args, tmp.path())
            .with_context(|| format!("cannot start {name}: {}", program.display()))?;
        let mut server = ServerProcess {
            port,
            data_dir,
            tmp,
            name,
            program,
            args,
            child,
        };
        match server.wait_ready(STARTUP_TIMEOUT) {
            Ok(()) => return Ok(server),
            Err(e) if attempt < ATTEMPTS && server.log().contains("Address already in use") => {
                loud(&format!(
                    "testkit: port {port} was taken, starting {name} again: {e:#}"
                ));
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!()
}

/// Starts the real ZooKeeper 3.8 standalone on a free loopback port with a fresh dataDir and a
/// zoo.cfg of `tickTime=2000`, `clientPortAddress=127.0.0.1`, `admin.enableServer=false`,
/// `4lw.commands.whitelist=*`, `extendedTypesEnabled=true` and then the `extra_cfg` lines (a
/// later line overrides an earlier one). Runs
/// `java -Xmx512m -cp zookeeper.jar:slf4j-log4j12.jar:log4j-1.2.jar:netty-codec.jar:netty-resolver.jar -Dlog4j.configuration=…
/// -Dzookeeper.root.logger=INFO,CONSOLE -Dzookeeper.extendedTypesEnabled=true -D<extra_props>…
/// QuorumPeerMain zoo.cfg` (an `extra_props` entry overrides an earlier -D of the same key).
/// Returns once a raw handshake succeeds ([`probe_handshake`]; `ruok` answers before the data
/// is loaded), or fails after 60 s with the server log in the error.
///
/// Call [`require_real_zookeeper`] first.
pub fn start_zookeeper(
    extra_cfg: &[&str],
    extra_props: &[(&str, &str)],
) -> anyhow::Result<ServerProcess> {
    zookeeper(None, extra_cfg, extra_props)
}

/// Like [`start_zookeeper`], but on an existing dataDir instead of a fresh one, e.g. one that
/// corral wrote: `data_dir` goes into the zoo.cfg as is and is used in place (not copied). The
/// new [`ServerProcess`] gets its own temporary directory for `zoo.cfg` and `server.log`, and
/// [`ServerProcess::data_dir`] is `data_dir`, which the caller must keep alive (if it belongs to
/// another `ServerProcess`, stop that one first and keep it until this one is done: dropping it
/// removes the directory). Call [`require_real_zookeeper`] first.
pub fn start_zookeeper_in(
    data_dir: &Path,
    extra_cfg: &[&str],
    extra_props: &[(&str, &str)],
) -> anyhow::Result<ServerProcess> {
    zookeeper(Some(data_dir), extra_cfg, extra_props)
}

fn zookeeper(
    data_dir: Option<&Path>,
    extra_cfg: &[&str],
    extra_props: &[(&str, &str)],
) -> anyhow::Result<ServerProcess> {
    if let Some(detail) = real_zookeeper_missing() {
        bail!(
            "real ZooKeeper not installed ({detail}): apt-get install {ZOOKEEPER_PACKAGES} \
             (and call require_real_zookeeper first)"
        );
    }
    start("zookeeper", data_dir, extra_cfg, |dir, cfg| {
        zookeeper_command(dir, cfg, extra_props)
    })
}

/// The real ZooKeeper's command line for `cfg`, after writing our log4j configuration into `dir`.
fn zookeeper_command(
    dir: &Path,
    cfg: &Path,
    extra_props: &[(&str, &str)],
) -> anyhow::Result<(PathBuf, Vec<OsString>)> {
    let log4j = dir.join("log4j.properties");
    fs::write(&log4j, LOG4J_PROPERTIES).with_context(|| format!("writing {}", log4j.display()))?;
    let mut args: Vec<OsString> = vec![
        "-Xmx512m".into(),
        "-cp".into(),
        format!(
            "{ZOOKEEPER_JAR}:{SLF4J_LOG4J_JAR}:{LOG4J_JAR}:{}",
            NETTY_TLS_JARS
                .iter()
                .chain(ADMIN_JARS)
                .copied()
                .collect::<Vec<_>>()
                .join(":")
        )
        .into(),
        format!("-Dlog4j.configuration=file:{}", log4j.display()).into(),
        "-Dzookeeper.root.logger=INFO,CONSOLE".into(),
        "-Dzookeeper.extendedTypesEnabled=true".into(),
    ];
    args.extend(props(extra_props));
    args.push(ZOOKEEPER_MAIN.into());
    args.push(cfg.into());
    Ok((PathBuf::from("java"), args))
}

/// The corral binary to run: `$CORRAL_BIN` if set and not empty, else `default` (from a test
/// in the `corral` package: `Path::new(env!("CARGO_BIN_EXE_corral"))`).
pub fn corral_bin(default: &Path) -> PathBuf {
    match std::env::var_os("CORRAL_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => default.to_path_buf(),
    }
}

/// The real ZooKeeper (`which` is `"zookeeper"`) or corral (`bin`, any other `which`) with the
/// same zoo.cfg lines and properties: the start of every test that runs the same steps on
/// both.
pub fn start_server(
    which: &str,
    bin: &Path,
    extra_cfg: &[&str],
    extra_props: &[(&str, &str)],
) -> anyhow::Result<ServerProcess> {
    match which {
        "zookeeper" => start_zookeeper(extra_cfg, extra_props),
        _ => start_corral(bin, extra_cfg, extra_props),
    }
}

/// Starts corral like [`start_zookeeper`] (same zoo.cfg content, same readiness rule):
/// `<bin> server --config <tmp>/zoo.cfg -D<k>=<v>...`. `bin` is replaced by `$CORRAL_BIN` when
/// that is set (see [`corral_bin`]). `RUST_BACKTRACE` defaults to 1; `RUST_LOG` is inherited.
pub fn start_corral(
    bin: &Path,
    extra_cfg: &[&str],
    extra_props: &[(&str, &str)],
) -> anyhow::Result<ServerProcess> {
    corral(bin, None, extra_cfg, extra_props)
}

/// Like [`start_corral`], but on an existing dataDir (e.g. one the real ZooKeeper wrote), used
/// in place; the same rules as for [`start_zookeeper_in`] apply.
pub fn start_corral_in(
    bin: &Path,
    data_dir: &Path,
    extra_cfg: &[&str],
    extra_props: &[(&str, &str)],
) -> anyhow::Result<ServerProcess> {
    corral(bin, Some(data_dir), extra_cfg, extra_props)
}

fn corral(
    bin: &Path,
    data_dir: Option<&Path>,
    extra_cfg: &[&str],
    extra_props: &[(&str, &str)],
) -> anyhow::Result<ServerProcess> {
    let bin = corral_bin(bin);
    if !bin.is_file() {
        bail!("corral binary {} does not exist", bin.display());
    }
    start("corral", data_dir, extra_cfg, |_dir, cfg| {
        Ok(corral_command(&bin, cfg, extra_props))
    })
}

/// corral's command line for `cfg`: `<bin> server --config <cfg> -D<k>=<v>...`.
fn corral_command(
    bin: &Path,
    cfg: &Path,
    extra_props: &[(&str, &str)],
) -> (PathBuf, Vec<OsString>) {
    let mut args: Vec<OsString> = vec!["server".into(), "--config".into(), cfg.into()];
    args.extend(props(extra_props));
    (bin.to_path_buf(), args)
}

// ---------------------------------------------------------------------------------------------
// Unit tests (no ZooKeeper needed; see tests/real_zookeeper.rs for the real one)
// ---------------------------------------------------------------------------------------------

/// `GET path` over HTTP/1.0 on 127.0.0.1:`port` (an AdminServer): the status and the body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the AdminServer");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text)
        .expect("the AdminServer's answer");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// The shape of a JSON answer: field names with the types of their values, nested. Maps keyed
/// by data (session ids, paths, expiry times) keep one key, `<key>`, with the shape of their
/// first value; arrays the shape of their first element.
pub fn json_shape(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::{json, Value};
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(n) if n.is_f64() => json!("float"),
        Value::Number(_) => json!("int"),
        Value::String(_) => json!("string"),
        Value::Array(a) => json!([a.first().map(json_shape).unwrap_or(json!("empty"))]),
        Value::Object(m) => {
            let data_keys = !m.is_empty()
                && m.keys()
                    .all(|k| k.starts_with('/') || k.parse::<i64>().is_ok());
            if data_keys {
                json!({"<key>": json_shape(m.values().next().unwrap())})
            } else {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), json_shape(v))).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::ExitStatusExt;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn free_port_is_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("free port can be bound");
    }

    #[test]
    fn ci_flag_values() {
        assert!(!ci_flag(None));
        assert!(!ci_flag(Some("")));
        assert!(!ci_flag(Some("0")));
        assert!(!ci_flag(Some("false")));
        assert!(!ci_flag(Some("FALSE")));
        assert!(ci_flag(Some("true")));
        assert!(ci_flag(Some("1")));
        assert!(ci_flag(Some("yes")));
    }

    #[test]
    fn wire_frames_match_the_spec() {
        assert_eq!(
            hex(&connect_request()),
            format!(
                "0000002d{}{}{}{}{}{}{}",
                "00000000",
                "0000000000000000",
                "00007530",
                "0000000000000000",
                "00000010",
                "00".repeat(16),
                "00"
            )
        );
        assert_eq!(
            hex(&close_request()),
            "00000008".to_owned() + "00000001" + "fffffff5"
        );
    }

    /// A one-connection fake server; `script` gets the accepted stream.
    fn fake_server(
        script: impl FnOnce(TcpStream) + Send + 'static,
    ) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            script(stream);
        });
        (addr, handle)
    }

    #[test]
    fn probe_handshake_reads_session_id_and_closes() {
        let (addr, server) = fake_server(|mut s| {
            let mut req = [0u8; 49];
            s.read_exact(&mut req).unwrap();
            assert_eq!(req.to_vec(), connect_request());
            // ConnectResponse: protocolVersion, timeOut, sessionId, passwd, readOnly.
            let mut body = Vec::new();
            body.extend_from_slice(&0i32.to_be_bytes());
            body.extend_from_slice(&30_000i32.to_be_bytes());
            body.extend_from_slice(&0x0100_0000_0000_0042i64.to_be_bytes());
            body.extend_from_slice(&16i32.to_be_bytes());
            body.extend_from_slice(&[7u8; 16]);
            body.push(0);
            s.write_all(&(body.len() as i32).to_be_bytes()).unwrap();
            s.write_all(&body).unwrap();
            let mut close = [0u8; 12];
            s.read_exact(&mut close).unwrap();
            assert_eq!(close, close_request());
            // ReplyHeader: xid 1, zxid, err 0.
            let mut reply = vec![0, 0, 0, 16];
            reply.extend_from_slice(&1i32.to_be_bytes());
            reply.extend_from_slice(&5i64.to_be_bytes());
            reply.extend_from_slice(&0i32.to_be_bytes());
            s.write_all(&reply).unwrap();
        });
        let sid = probe_handshake(addr, Duration::from_secs(5)).unwrap();
        assert_eq!(sid, 0x0100_0000_0000_0042);
        server.join().unwrap();
    }

    #[test]
    fn probe_handshake_fails_on_session_zero_and_on_close() {
        let (addr, server) = fake_server(|mut s| {
            let mut req = [0u8; 49];
            s.read_exact(&mut req).unwrap();
            let mut body = vec![0u8; 36];
            body.push(0);
            s.write_all(&(body.len() as i32).to_be_bytes()).unwrap();
            s.write_all(&body).unwrap();
        });
        let err = probe_handshake(addr, Duration::from_secs(5)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        server.join().unwrap();

        // Not serving yet: ZooKeeper closes the connection without an answer.
        let (addr, server) = fake_server(|mut s| {
            let mut req = [0u8; 49];
            s.read_exact(&mut req).unwrap();
        });
        let err = probe_handshake(addr, Duration::from_secs(5)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        server.join().unwrap();

        // Nobody listening.
        let port = free_port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        assert!(probe_handshake(addr, Duration::from_secs(2)).is_err());
    }

    #[test]
    fn probe_handshake_times_out_on_a_silent_server() {
        let (addr, server) = fake_server(|mut s| {
            let mut req = [0u8; 49];
            s.read_exact(&mut req).unwrap();
            std::thread::sleep(Duration::from_millis(800));
        });
        let started = Instant::now();
        let err = probe_handshake(addr, Duration::from_millis(300)).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(750));
        server.join().unwrap();
    }

    #[test]
    fn four_letter_reads_to_eof() {
        let (addr, server) = fake_server(|mut s| {
            let mut word = [0u8; 4];
            s.read_exact(&mut word).unwrap();
            assert_eq!(&word, b"srvr");
            s.write_all(b"Zookeeper version: x\n").unwrap();
            std::thread::sleep(Duration::from_millis(50));
            s.write_all(b"Mode: standalone\n").unwrap();
        });
        assert_eq!(
            four_letter(addr, "srvr").unwrap(),
            "Zookeeper version: x\nMode: standalone\n"
        );
        server.join().unwrap();
    }

    #[test]
    fn zoo_cfg_content() {
        let cfg = zoo_cfg(Path::new("/tmp/x/data"), 4242, &["maxClientCnxns=0", "a=b"]);
        assert_eq!(
            cfg,
            "tickTime=2000\ndataDir=/tmp/x/data\nclientPort=4242\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n4lw.commands.whitelist=*\nextendedTypesEnabled=true\n\
             maxClientCnxns=0\na=b\n"
        );
    }

    /// Writes an executable shell script standing in for the corral binary.
    fn fake_bin(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("fake-corral");
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn start_reports_early_exit_with_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_bin(dir.path(), "echo \"fake says: $*\"; echo oops >&2; exit 3");
        // CORRAL_BIN is not set by the tests here; if a developer sets it, skip this check.
        if std::env::var_os("CORRAL_BIN").is_some_and(|b| !b.is_empty()) {
            return;
        }
        let err = start_corral(&bin, &["x=y"], &[("k", "v")]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("exited during startup"), "{msg}");
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(msg.contains("fake says: server --config /"), "{msg}");
        assert!(msg.contains("zoo.cfg -Dk=v"), "{msg}");
        assert!(msg.contains("oops"), "{msg}");
    }

    #[test]
    fn start_in_uses_the_given_data_dir() {
        if std::env::var_os("CORRAL_BIN").is_some_and(|b| !b.is_empty()) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_bin(dir.path(), "cat \"$3\"; exit 3");
        let data = dir.path().join("existing");
        let err = start_corral_in(&bin, &data, &[], &[]).unwrap_err();
        assert!(format!("{err:#}").contains("does not exist"), "{err:#}");
        fs::create_dir(&data).unwrap();
        fs::write(data.join("keep"), "x").unwrap();
        let msg = format!(
            "{:#}",
            start_corral_in(&bin, &data, &["x=y"], &[]).unwrap_err()
        );
        assert!(
            msg.contains(&format!("dataDir={}\n", data.display())),
            "{msg}"
        );
        assert!(msg.contains("x=y"), "{msg}");
        assert!(
            data.join("keep").exists(),
            "the existing dataDir is used in place"
        );
    }

    fn sleeper(script: &str) -> ServerProcess {
        let tmp = tempfile::tempdir().unwrap();
        let args: Vec<OsString> = vec!["-c".into(), script.into()];
        let child = spawn(Path::new("/bin/sh"), &args, tmp.path()).unwrap();
        ServerProcess {
            port: free_port(),
            data_dir: tmp.path().join("data"),
            tmp,
            name: "sleeper",
            program: "/bin/sh".into(),
            args,
            child,
        }
    }

    fn wait_for_log(p: &ServerProcess, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !p.log().contains(text) {
            assert!(
                Instant::now() < deadline,
                "{text:?} not in log: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn stop_sends_sigterm() {
        let mut p = sleeper("echo started; exec sleep 1000");
        assert!(p.is_running());
        wait_for_log(&p, "started");
        let status = p.stop();
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
        assert!(!p.is_running());
        assert_eq!(p.stop().signal(), Some(libc::SIGTERM), "stop is idempotent");
    }

    #[test]
    fn stop_escalates_to_sigkill() {
        // An ignored signal stays ignored across exec.
        let mut p = sleeper("trap '' TERM; echo trapped; exec sleep 1000");
        wait_for_log(&p, "trapped");
        let started = Instant::now();
        let status = p.stop_within(Duration::from_millis(500));
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        assert!(started.elapsed() >= Duration::from_millis(500));
    }

    #[test]
    fn kill9_and_drop_kill_the_child() {
        let mut p = sleeper("exec sleep 1000");
        p.kill9();
        assert!(!p.is_running());
        let p = sleeper("exec sleep 1000");
        let pid = p.pid();
        let dir = p.dir().to_path_buf();
        drop(p);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "child reaped");
        assert!(!dir.exists(), "temporary directory removed");
    }
}
