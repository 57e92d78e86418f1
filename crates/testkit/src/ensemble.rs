//! Ensembles of corral and real ZooKeeper 3.8 processes on 127.0.0.1: one temporary directory
//! per member with its own zoo.cfg (the same `server.N` lines everywhere), `myid` and log, all
//! ports free loopback ports, a small tickTime so that elections and timeouts take a fraction of
//! a second. Members are ordinary [`ServerProcess`]es, so `kill9`, `stop`, `start_again`,
//! `pause` and `resume` work on each one.
//!
//! ```text
//! <member tmp>/zoo.cfg     tickTime, initLimit, syncLimit, clientPort, server.N lines, ...
//! <member tmp>/data/myid   the member's sid
//! <member tmp>/server.log  its stdout and stderr
//! ```
//!
//! With [`EnsembleBuilder::proxied`], the members reach each other through a [`Cut`]-able proxy
//! in the test process (see `proxy.rs`), and member i's zoo.cfg lists the proxy's ports for the
//! others (its own line keeps its real ports, which it binds).

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::proxy::{Cut, LinkProxy};
use crate::{
    corral_bin, corral_command, four_letter, real_zookeeper_missing, spawn, zookeeper_command,
    ServerProcess, ZOOKEEPER_PACKAGES,
};

/// How long [`EnsembleBuilder::start`] waits until every member serves (JVMs on a busy
/// two-core machine start slowly).
pub const ENSEMBLE_STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

/// Which server a member runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Corral,
    ZooKeeper,
}

impl Flavor {
    /// `"corral"` or `"zookeeper"`.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Corral => "corral",
            Flavor::ZooKeeper => "zookeeper",
        }
    }
}

/// Describes an ensemble; [`start`](Self::start) brings it up. Members get sids 1, 2, ... in
/// the order they are added.
#[derive(Clone, Debug)]
pub struct EnsembleBuilder {
    corral_bin: PathBuf,
    members: Vec<(Flavor, bool)>,
    tick_ms: u32,
    init_limit: u32,
    sync_limit: u32,
    extra_cfg: Vec<String>,
    /// zoo.cfg lines for one sid only, after the others.
    member_cfg: Vec<(u64, String)>,
    /// `-D` properties: for every member (`None`) or one sid.
    props: Vec<(Option<u64>, String, String)>,
    proxied: bool,
}

impl EnsembleBuilder {
    /// No members yet; `tickTime=200`, `initLimit=20`, `syncLimit=5`. `corral_bin` is
    /// replaced by `$CORRAL_BIN` when set ([`corral_bin`]).
    pub fn new(corral: &Path) -> EnsembleBuilder {
        EnsembleBuilder {
            corral_bin: corral_bin(corral),
            members: Vec::new(),
            tick_ms: 200,
            init_limit: 20,
            sync_limit: 5,
            extra_cfg: Vec::new(),
            member_cfg: Vec::new(),
            props: Vec::new(),
            proxied: false,
        }
    }

    /// Adds a voting member.
    pub fn voter(mut self, flavor: Flavor) -> EnsembleBuilder {
        self.members.push((flavor, false));
        self
    }

    /// Adds `n` corral voters.
    pub fn corral_voters(mut self, n: usize) -> EnsembleBuilder {
        for _ in 0..n {
            self.members.push((Flavor::Corral, false));
        }
        self
    }

    /// Adds an observer (`:observer` on its `server.N` line, `peerType=observer` in its cfg).
    pub fn observer(mut self, flavor: Flavor) -> EnsembleBuilder {
        self.members.push((flavor, true));
        self
    }

    /// `tickTime` in ms.
    pub fn tick_ms(mut self, tick_ms: u32) -> EnsembleBuilder {
        self.tick_ms = tick_ms;
        self
    }

    /// `initLimit` and `syncLimit`, in ticks.
    pub fn limits(mut self, init_limit: u32, sync_limit: u32) -> EnsembleBuilder {
        self.init_limit = init_limit;
        self.sync_limit = sync_limit;
        self
    }

    /// One more zoo.cfg line for every member (a later line overrides an earlier one).
    pub fn cfg(mut self, line: &str) -> EnsembleBuilder {
        self.extra_cfg.push(line.to_string());
        self
    }

    /// One more zoo.cfg line for member `sid` only (after the lines for all, so it overrides
    /// them).
    pub fn member_cfg_line(mut self, sid: u64, line: &str) -> EnsembleBuilder {
        self.member_cfg.push((sid, line.to_string()));
        self
    }

    /// A `-D` system property for every member (corral reads them as ZooKeeper does).
    pub fn property(mut self, key: &str, value: &str) -> EnsembleBuilder {
        self.props.push((None, key.to_string(), value.to_string()));
        self
    }

    /// A `-D` system property for member `sid` only, in place of one set for all.
    pub fn member_property(mut self, sid: u64, key: &str, value: &str) -> EnsembleBuilder {
        self.props
            .push((Some(sid), key.to_string(), value.to_string()));
        self
    }

    /// The properties member `sid` is started with.
    fn props_of(&self, sid: u64) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for (who, k, v) in &self.props {
            if who.is_some_and(|w| w != sid) {
                continue;
            }
            out.retain(|(key, _)| key != k);
            out.push((k, v));
        }
        out
    }

    /// Route quorum and election traffic through a proxy so members can be cut off
    /// ([`Ensemble::cut`]).
    pub fn proxied(mut self) -> EnsembleBuilder {
        self.proxied = true;
        self
    }

    /// Writes every member's directory and zoo.cfg, starts them all, and waits until all serve
    /// clients (a raw handshake succeeds on each), at most [`ENSEMBLE_STARTUP_TIMEOUT`].
    pub fn start(self) -> anyhow::Result<Ensemble> {
        let mut ensemble = self.spawn()?;
        let sids = ensemble.sids();
        ensemble.wait_serving(&sids, ENSEMBLE_STARTUP_TIMEOUT)?;
        Ok(ensemble)
    }

    /// Like [`start`](Self::start) but returns as soon as the processes are spawned.
    pub fn spawn(self) -> anyhow::Result<Ensemble> {
        if self.members.is_empty() {
            bail!("an ensemble needs members");
        }
        if self.members.iter().any(|(f, _)| *f == Flavor::ZooKeeper) {
            if let Some(detail) = real_zookeeper_missing() {
                bail!(
                    "real ZooKeeper not installed ({detail}): apt-get install {ZOOKEEPER_PACKAGES} \
                     (and call require_real_zookeeper first)"
                );
            }
        }
        if self.members.iter().any(|(f, _)| *f == Flavor::Corral) && !self.corral_bin.is_file() {
            bail!("corral binary {} does not exist", self.corral_bin.display());
        }
        let n = self.members.len();
        // Three ports per member, all held until the proxy's listeners are bound too, so that
        // every port is distinct.
        let held = hold_free_ports(3 * n)?;
        let ports: Vec<u16> = (held.iter())
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<_, _>>()?;
        let real: Vec<(u16, u16, u16)> = (0..n)
            .map(|i| (ports[3 * i], ports[3 * i + 1], ports[3 * i + 2]))
            .collect();
        let mut proxy = self.proxied.then(LinkProxy::default);
        let mut lines_by_member = Vec::with_capacity(n);
        for i in 0..n {
            let sid = i as u64 + 1;
            let mut lines = Vec::with_capacity(n);
            for (j, &(_, other_observer)) in self.members.iter().enumerate() {
                let other = j as u64 + 1;
                let (_, mut q, mut e) = real[j];
                if let Some(proxy) = proxy.as_mut().filter(|_| other != sid) {
                    q = proxy.listen(sid, other, q)?;
                    e = proxy.listen(sid, other, e)?;
                }
                let role = if other_observer { ":observer" } else { "" };
                lines.push(format!("server.{other}=127.0.0.1:{q}:{e}{role}"));
            }
            lines_by_member.push(lines);
        }
        drop(held);
        let mut members = Vec::with_capacity(n);
        for (i, &(flavor, observer)) in self.members.iter().enumerate() {
            let sid = i as u64 + 1;
            let (client_port, quorum_port, election_port) = real[i];
            let lines = &lines_by_member[i];
            let tmp = tempfile::Builder::new()
                .prefix(&format!("corral-testkit-ensemble-{}-{sid}-", flavor.name()))
                .tempdir()
                .context("creating a member's temporary directory")?;
            let data_dir = tmp.path().join("data");
            fs::create_dir(&data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            fs::write(data_dir.join("myid"), format!("{sid}\n")).context("writing myid")?;
            let cfg_path = tmp.path().join("zoo.cfg");
            let cfg = self.member_cfg(sid, &data_dir, client_port, observer, lines);
            fs::write(&cfg_path, cfg).with_context(|| format!("writing {}", cfg_path.display()))?;
            let props = self.props_of(sid);
            let (program, args) = match flavor {
                Flavor::Corral => corral_command(&self.corral_bin, &cfg_path, &props),
                Flavor::ZooKeeper => zookeeper_command(tmp.path(), &cfg_path, &props)?,
            };
            let child = spawn(&program, &args, tmp.path()).with_context(|| {
                format!("cannot start {}: {}", flavor.name(), program.display())
            })?;
            members.push(Member {
                sid,
                flavor,
                observer,
                quorum_port,
                election_port,
                server: ServerProcess {
                    port: client_port,
                    data_dir,
                    tmp,
                    name: flavor.name(),
                    program,
                    args,
                    child,
                },
            });
        }
        Ok(Ensemble { members, proxy })
    }

    fn member_cfg(
        &self,
        sid: u64,
        data_dir: &Path,
        client_port: u16,
        observer: bool,
        servers: &[String],
    ) -> String {
        let mut cfg = String::new();
        let _ = write!(
            cfg,
            "tickTime={}\n\
             initLimit={}\n\
             syncLimit={}\n\
             dataDir={}\n\
             clientPort={client_port}\n\
             clientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n\
             4lw.commands.whitelist=*\n\
             extendedTypesEnabled=true\n\
             maxSessionTimeout=60000\n",
            self.tick_ms,
            self.init_limit,
            self.sync_limit,
            data_dir.display()
        );
        if observer {
            cfg.push_str("peerType=observer\n");
        }
        let mine = (self.member_cfg.iter())
            .filter(|(s, _)| *s == sid)
            .map(|(_, l)| l);
        for line in servers.iter().chain(&self.extra_cfg).chain(mine) {
            cfg.push_str(line);
            cfg.push('\n');
        }
        cfg
    }
}

/// `n` listeners on free loopback ports; the caller drops them just before the servers start.
fn hold_free_ports(n: usize) -> anyhow::Result<Vec<TcpListener>> {
    (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .context("binding 127.0.0.1:0 to find free ports")
}

/// One member: its sid, flavor, real quorum and election ports, and its process.
#[derive(Debug)]
pub struct Member {
    pub sid: u64,
    pub flavor: Flavor,
    pub observer: bool,
    pub quorum_port: u16,
    pub election_port: u16,
    pub server: ServerProcess,
}

impl Member {
    /// The `Mode:` line of `srvr` (`leader`, `follower`, `observer`, `looking`, `standalone`),
    /// or `None` if the member does not answer or does not serve (ZooKeeper then says "This
    /// ZooKeeper instance is not currently serving requests").
    pub fn mode(&self) -> Option<String> {
        srvr_field(&self.srvr()?, "Mode")
    }

    /// The `Zxid:` line of `srvr`.
    pub fn zxid(&self) -> Option<i64> {
        let text = srvr_field(&self.srvr()?, "Zxid")?;
        i64::from_str_radix(text.trim_start_matches("0x"), 16).ok()
    }

    fn srvr(&self) -> Option<String> {
        four_letter(self.server.addr(), "srvr").ok()
    }

    /// True if the member answers a handshake now (one that is not synced with a leader closes
    /// new connections without an answer). Unlike [`crate::probe_handshake`] this creates no session,
    /// and so no txn: it asks to resume a session that does not exist, which a serving member
    /// refuses with a ConnectResponse (a follower after asking its leader).
    pub fn is_serving(&self) -> bool {
        probe_serving(self.server.addr(), Duration::from_secs(2)).is_ok()
    }

    /// `"<flavor> <sid>"`, for messages.
    pub fn label(&self) -> String {
        let role = if self.observer { " (observer)" } else { "" };
        format!("{} {}{role}", self.flavor.name(), self.sid)
    }
}

/// The session id [`probe_serving`] asks to resume: never handed out (ZooKeeper's session ids
/// start with the server's sid in the top byte; sids here are small).
const NO_SUCH_SESSION: i64 = 0x7f5e_55e0_0000_0001;

/// Sends a ConnectRequest to resume [`NO_SUCH_SESSION`] and succeeds on any ConnectResponse.
fn probe_serving(addr: std::net::SocketAddr, timeout: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut stream = crate::raw::connect(addr, deadline)?;
    let mut req = crate::connect_request();
    req[20..28].copy_from_slice(&NO_SUCH_SESSION.to_be_bytes()); // sessionId
    crate::raw::write_all_by(&mut stream, &req, deadline)?;
    crate::raw::read_frame(&mut stream, crate::raw::FRAME_BYTES_MAX, deadline).map(|_| ())
}

fn srvr_field(srvr: &str, field: &str) -> Option<String> {
    srvr.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// A running ensemble. Dropping it kills every member and the proxy.
pub struct Ensemble {
    pub members: Vec<Member>,
    proxy: Option<LinkProxy>,
}

impl Ensemble {
    /// Every member's sid.
    pub fn sids(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.sid).collect()
    }

    /// The sids of the voting members.
    pub fn voters(&self) -> Vec<u64> {
        (self.members.iter())
            .filter(|m| !m.observer)
            .map(|m| m.sid)
            .collect()
    }

    pub fn member(&self, sid: u64) -> &Member {
        (self.members.iter())
            .find(|m| m.sid == sid)
            .unwrap_or_else(|| panic!("no member {sid}"))
    }

    pub fn member_mut(&mut self, sid: u64) -> &mut Member {
        (self.members.iter_mut())
            .find(|m| m.sid == sid)
            .unwrap_or_else(|| panic!("no member {sid}"))
    }

    /// The client connect string of all members: `127.0.0.1:P1,127.0.0.1:P2,...`.
    pub fn connect_string(&self) -> String {
        self.connect_string_of(&self.sids())
    }

    /// The client connect string of some members.
    pub fn connect_string_of(&self, sids: &[u64]) -> String {
        (sids.iter())
            .map(|s| self.member(*s).server.connect_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until every member in `sids` answers a handshake. On timeout the error names the
    /// ones that do not and carries every member's log tail.
    pub fn wait_serving(&mut self, sids: &[u64], timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut waiting = Vec::new();
            for &sid in sids {
                let m = self.member_mut(sid);
                if let Some(status) = m.server.child.try_wait()? {
                    bail!(
                        "{} exited with {status} while the ensemble waited for it to serve\n{}",
                        m.label(),
                        self.logs(60)
                    );
                }
                if !m.is_serving() {
                    waiting.push(m.label());
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "not serving after {timeout:?}: {}\n{}",
                    waiting.join(", "),
                    self.logs(60)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until exactly one of `among` says `Mode: leader` in `srvr` and all of `among`
    /// serve; returns the leader's sid. Only ask members that are running and not paused (a
    /// paused one holds `srvr` for its 5 s timeout).
    pub fn wait_leader(&self, among: &[u64], timeout: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let modes: Vec<(u64, Option<String>)> =
                among.iter().map(|&s| (s, self.member(s).mode())).collect();
            let leaders: Vec<u64> = (modes.iter())
                .filter(|(_, m)| m.as_deref() == Some("leader"))
                .map(|(s, _)| *s)
                .collect();
            if leaders.len() == 1 && among.iter().all(|&s| self.member(s).is_serving()) {
                return Ok(leaders[0]);
            }
            if Instant::now() >= deadline {
                bail!(
                    "no single serving leader among {among:?} after {timeout:?}; modes: {modes:?}\n{}",
                    self.logs(60)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until all of `sids` report the same `Zxid:` in `srvr`, and returns it.
    pub fn wait_same_zxid(&self, sids: &[u64], timeout: Duration) -> anyhow::Result<i64> {
        let deadline = Instant::now() + timeout;
        loop {
            let zxids: Vec<(u64, Option<i64>)> =
                sids.iter().map(|&s| (s, self.member(s).zxid())).collect();
            if let Some((_, Some(first))) = zxids.first() {
                if zxids.iter().all(|(_, z)| *z == Some(*first)) {
                    return Ok(*first);
                }
            }
            if Instant::now() >= deadline {
                let shown: Vec<String> = (zxids.iter())
                    .map(|(s, z)| format!("{s}: {}", z.map_or("?".into(), |z| format!("{z:#x}"))))
                    .collect();
                bail!(
                    "members do not agree on the zxid after {timeout:?}: {}\n{}",
                    shown.join(", "),
                    self.logs(60)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last `lines` lines of every member's log, for failure messages.
    pub fn logs(&self, lines: usize) -> String {
        let mut out = String::new();
        for m in &self.members {
            let _ = writeln!(
                out,
                "--- {} ({}) last {lines} lines ---\n{}",
                m.label(),
                m.server.log_path().display(),
                m.server.log_tail(lines)
            );
        }
        out
    }

    /// Cuts member `sid` off from all the others (needs [`EnsembleBuilder::proxied`]). Its
    /// client port stays reachable.
    pub fn cut(&self, sid: u64, how: Cut) {
        self.proxy
            .as_ref()
            .expect("cut needs EnsembleBuilder::proxied")
            .cut(sid, how);
    }

    /// Reconnects member `sid` ([`cut`](Self::cut) undone).
    pub fn heal(&self, sid: u64) {
        self.proxy
            .as_ref()
            .expect("heal needs EnsembleBuilder::proxied")
            .heal(sid);
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        // Kill the members first so no one reconnects through a half-closed proxy.
        for m in &mut self.members {
            m.server.kill9();
        }
        self.proxy.take();
    }
}
