//! Four-letter words on the client port, with the output formats of ZooKeeper 3.8.0 (captured
//! from the Debian package on loopback; see docs/compatibility.md). Tools parse `mntr` (tab
//! separated `key value` lines), `srvr` and `stat`, so those match line for line.

use std::fmt::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use corral_proto::quorum::ServerState;

use corral_node::Node;
use corral_storage::disk::RealDisk;
use corral_tree::ConnId;

use crate::config::ServerConfig;
use crate::metrics::{Metrics, Provider, Value};
use crate::stats::{ConnStats, ServerStats};

/// What the four-letter words read (and `srst`/`crst` reset), lent by the node task.
pub(crate) struct View<'a> {
    pub node: &'a mut Node<RealDisk>,
    pub cfg: &'a ServerConfig,
    pub stats: &'a mut ServerStats,
    pub conns: std::collections::BTreeMap<ConnId, &'a mut ConnStats>,
    pub uptime_ms: u64,
    /// This member's sid, 0 when standalone.
    pub my_sid: i64,
    /// Txn log fsyncs slower than `fsync.warningthresholdms`.
    pub fsync_threshold_exceeded: u64,
    /// The trace mask (`gtmk`, `stmk`).
    pub trace_mask: &'a mut i64,
    /// `zk_auth_failed_count`: failed TLS handshakes and client certificates, as ZooKeeper's
    /// Netty factory counts them (`srst` leaves it, as ZooKeeper's reset does).
    pub auth_failed: u64,
    /// ZooKeeper's server metrics.
    pub metrics: &'a mut Metrics,
    /// `zk_outstanding_tls_handshake`.
    pub handshakes_in_progress: u64,
    /// The connection throttle's BLUE drop chance.
    pub drop_probability: f64,
    /// Plaintext client connections (local, remote) when TLS is configured.
    pub non_mtls: (u64, u64),
    /// Milliseconds since this member became leader, while it leads.
    pub leader_uptime_ms: Option<u64>,
    /// Requests read and not yet answered (`globalOutstandingLimit`'s count).
    pub in_process: usize,
    /// The leader's synced observers: sid and their connection's figures.
    pub observers: Vec<(i64, crate::quorum::LearnerStats)>,
}

/// ZooTrace's default mask: client ping, client data packets and server packets (2+16+256+32).
pub const DEFAULT_TRACE_MASK: i64 = 306;

/// Every word ZooKeeper 3.8 knows; others are treated as a frame length.
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srvr", "srst", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

/// What `srvr`/`mntr` report as the version. Tools match the `3.8.0` prefix.
pub const VERSION: &str = concat!(
    "3.8.0-corral-",
    env!("CARGO_PKG_VERSION"),
    ", built on 1970-01-01 00:00 UTC"
);

pub(crate) fn run(st: &mut View<'_>, word: &str, peer: SocketAddr) -> String {
    let mut o = String::new();
    match word {
        "ruok" => o.push_str("imok"),
        "isro" => o.push_str("rw"),
        "srvr" => server_summary(st, &mut o, false),
        "stat" => server_summary(st, &mut o, true),
        "cons" => {
            for line in connection_lines(st, true) {
                let _ = writeln!(o, "{line}");
            }
            // The four-letter connection itself shows up in ZooKeeper's list too.
            let _ = writeln!(o, " /{peer}[0](queued=0,recved=1,sent=0)");
            o.push('\n');
        }
        "crst" => {
            for cs in st.conns.values_mut() {
                cs.reset();
            }
            o.push_str("Connection stats reset.\n");
        }
        "srst" => {
            reset_server_stats(st);
            o.push_str("Server stats reset.\n");
        }
        "conf" => conf(st, &mut o),
        "envi" => envi(&mut o),
        "mntr" => mntr(st, &mut o),
        "wchs" => {
            let w = st.node.core().data_watches();
            let _ = write!(
                o,
                "{} connections watching {} paths\nTotal watches:{}",
                w.conn_count(),
                w.path_count(),
                w.watch_count()
            );
        }
        "wchc" => {
            let core = st.node.core();
            for (conn, paths) in core.data_watches().by_conn() {
                let sid = core.conn(conn).map_or(0, |c| c.session);
                let _ = writeln!(o, "0x{sid:x}");
                for p in paths {
                    let _ = writeln!(o, "\t{p}");
                }
            }
            o.push('\n');
        }
        "wchp" => {
            let core = st.node.core();
            for (path, conns) in core.data_watches().by_path() {
                let _ = writeln!(o, "{path}");
                for c in conns {
                    let _ = writeln!(o, "\t0x{:x}", core.conn(c).map_or(0, |c| c.session));
                }
            }
            o.push('\n');
        }
        "dump" => dump(st, &mut o),
        "dirs" => {
            let (data, log) = dir_sizes(st.cfg);
            let _ = writeln!(o, "datadir_size: {data}");
            let _ = writeln!(o, "logdir_size: {log}");
        }
        // stmk has set the mask already; both print it.
        "gtmk" | "stmk" => {
            let _ = write!(o, "{}", *st.trace_mask);
        }
        "hash" => {
            for (zxid, digest) in st.node.core().tree().digest_log() {
                let _ = writeln!(o, "{zxid:x}: {}", digest as i64);
            }
        }
        _ => {}
    }
    o
}

/// `srst` and the AdminServer's `stat_reset`: what ZooKeeper's `ServerStats.reset` clears.
pub(crate) fn reset_server_stats(st: &mut View<'_>) {
    *st.stats = Default::default();
    st.node.counters_mut().reset();
    st.metrics.reset();
}

/// The snapshot and txn log directories, `<dataDir>/version-2` and `<dataLogDir>/version-2`
/// (dataLogDir defaults to dataDir), as ZooKeeper reports them.
pub(crate) fn version_dirs(cfg: &ServerConfig) -> (Option<PathBuf>, Option<PathBuf>) {
    let v2 = |d: Option<&PathBuf>| d.map(|d| d.join("version-2"));
    let log = cfg.data_log_dir.as_ref().or(cfg.data_dir.as_ref());
    (v2(cfg.data_dir.as_ref()), v2(log))
}

/// The bytes in the snapshot and txn log directories, as ZooKeeper sums them.
pub(crate) fn dir_sizes(cfg: &ServerConfig) -> (u64, u64) {
    let (data, log) = version_dirs(cfg);
    let size = |d: Option<PathBuf>| d.map_or(0, |d| dir_size(&d));
    (size(data), size(log))
}

/// The bytes of the files under `dir`, recursively (ZooKeeper's `getDirSize`).
fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return std::fs::metadata(dir).map_or(0, |m| m.len());
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

pub(crate) fn mode(st: &View<'_>) -> &'static str {
    match st.node.state() {
        None => "standalone",
        Some(s) => crate::quorum::mode_name(s),
    }
}

/// ZooKeeper counts the root twice (it is stored under "" and "/").
pub(crate) fn node_count(st: &View<'_>) -> usize {
    st.node.core().tree().node_count() + 1
}

fn server_summary(st: &View<'_>, o: &mut String, with_clients: bool) {
    let _ = writeln!(o, "Zookeeper version: {VERSION}");
    if with_clients {
        let _ = writeln!(o, "Clients:");
        for line in connection_lines(st, false) {
            let _ = writeln!(o, "{line}");
        }
        o.push('\n');
    }
    let l = &st.stats.latency;
    let _ = writeln!(
        o,
        "Latency min/avg/max: {}/{:.1}/{}",
        l.min(),
        l.avg(),
        l.max_ms
    );
    let _ = writeln!(o, "Received: {}", st.stats.packets_received);
    let _ = writeln!(o, "Sent: {}", st.stats.packets_sent);
    let _ = writeln!(o, "Connections: {}", st.conns.len());
    let _ = writeln!(o, "Outstanding: {}", outstanding(st));
    let _ = writeln!(o, "Zxid: 0x{:x}", zxid(st));
    let _ = writeln!(o, "Mode: {}", mode(st));
    let _ = writeln!(o, "Node count: {}", node_count(st));
    if let Some(s) = st.node.state() {
        if s == ServerState::Leading {
            let (l, mi, ma) = proposal_sizes(st);
            let _ = writeln!(o, "Proposal sizes last/min/max: {l}/{mi}/{ma}");
        }
    }
}

/// The zxid `srvr` shows: the last applied one, or, once a new epoch is established and
/// nothing was written in it yet, `epoch << 32` (as ZooKeeper's leader and followers show).
pub(crate) fn zxid(st: &View<'_>) -> i64 {
    let applied = st.node.core().last_zxid();
    match st.node.peer() {
        Some(p) if p.serving() => applied.max(corral_proto::Zxid::new(p.epoch(), 0).0),
        _ => applied,
    }
}

pub(crate) fn proposal_sizes(st: &View<'_>) -> (i64, i64, i64) {
    match st.node.counters().proposal_sizes {
        None => (-1, -1, -1),
        Some(p) => (p.last as i64, p.min as i64, p.max as i64),
    }
}

/// mntr lines only an ensemble member has (QuorumPeer / Leader / Observer metrics).
fn ensemble_rows(st: &View<'_>) -> Vec<(String, Value)> {
    let (Some(state), Some(peer)) = (st.node.state(), st.node.peer()) else {
        return Vec::new();
    };
    let long = |v: usize| Value::Long(v as i64);
    let mut rows = vec![
        ("peer_state", Value::Text(st.node.detailed_state())),
        ("quorum_size", long(st.node.quorum_size())),
    ];
    match state {
        ServerState::Leading => {
            let followers = peer.synced_learners().len();
            let observers = peer.synced_observers().len();
            let (l, mi, ma) = proposal_sizes(st);
            rows.extend([
                ("learners", long(st.node.learner_count())),
                ("synced_followers", long(followers)),
                ("synced_non_voting_followers", long(0)),
                ("synced_observers", long(observers)),
                ("pending_syncs", long(peer.pending_syncs())),
                ("last_proposal_size", Value::Long(l)),
                ("min_proposal_size", Value::Long(mi)),
                ("max_proposal_size", Value::Long(ma)),
                (
                    "leader_uptime",
                    Value::Long(st.leader_uptime_ms.unwrap_or(0) as i64),
                ),
            ]);
        }
        ServerState::Observing => {
            if let Some(l) = peer.leader() {
                rows.push(("observer_master_id", Value::Long(l.0)));
            }
        }
        _ => {}
    }
    rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Requests read and not yet answered, over every connection (ZooKeeper's requests in
/// process: those still queued for the node task included).
pub(crate) fn outstanding(st: &View<'_>) -> usize {
    st.in_process
}

/// This process's open file descriptors and their limit (ZooKeeper's OSMXBean figures).
pub(crate) fn file_descriptors() -> (i64, i64) {
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64);
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1);
    (open, max)
}

fn connection_lines(st: &View<'_>, full: bool) -> Vec<String> {
    st.conns
        .iter()
        .map(|(id, cs)| {
            let mut s = format!(
                " /{}[1](queued={},recved={},sent={}",
                cs.peer, cs.queued, cs.received, cs.sent
            );
            if full {
                if let Some(c) = st.node.core().conn(*id) {
                    let to = st.node.core().sessions().get(c.session).map_or(0, |s| s.timeout_ms);
                    let _ = write!(
                        s,
                        ",sid=0x{:x},lop={},est={},to={},lcxid=0x{:x},lzxid=0x{:x},lresp={},llat={},minlat={},avglat={:.0},maxlat={}",
                        c.session,
                        c.last_op,
                        cs.established_wall_ms,
                        to,
                        c.last_cxid,
                        c.last_zxid,
                        cs.last_response_wall_ms,
                        cs.last_latency_ms,
                        cs.latency.min(),
                        cs.latency.avg(),
                        cs.latency.max_ms
                    );
                }
            }
            s.push(')');
            s
        })
        .collect()
}

fn conf(st: &View<'_>, o: &mut String) {
    let c = &st.cfg;
    let _ = writeln!(o, "clientPort={}", c.client_port.map_or(-1, |p| p as i32));
    let _ = writeln!(
        o,
        "secureClientPort={}",
        c.secure_client_port.map_or(-1, |p| p as i32)
    );
    let (data, log) = version_dirs(c);
    let (data_size, log_size) = dir_sizes(c);
    let shown = |d: Option<PathBuf>| d.map(|d| d.display().to_string()).unwrap_or_default();
    let _ = writeln!(o, "dataDir={}", shown(data));
    let _ = writeln!(o, "dataDirSize={data_size}");
    let _ = writeln!(o, "dataLogDir={}", shown(log));
    let _ = writeln!(o, "dataLogSize={log_size}");
    let _ = writeln!(o, "tickTime={}", c.tick_time_ms);
    let _ = writeln!(o, "maxClientCnxns={}", c.max_client_cnxns);
    let _ = writeln!(o, "minSessionTimeout={}", c.min_session_timeout_ms);
    let _ = writeln!(o, "maxSessionTimeout={}", c.max_session_timeout_ms);
    let _ = writeln!(o, "clientPortListenBacklog=-1");
    let _ = writeln!(o, "serverId={}", st.my_sid);
    // An ensemble member adds its quorum settings and the membership (ZooKeeper's
    // QuorumZooKeeperServer), the server lines as `/zookeeper/config` holds them.
    let Some(me) = c.servers.iter().find(|s| s.id as i64 == st.my_sid) else {
        return;
    };
    let _ = writeln!(o, "initLimit={}", c.init_limit.unwrap_or(0));
    let _ = writeln!(o, "syncLimit={}", c.sync_limit.unwrap_or(0));
    let _ = writeln!(o, "electionAlg=3");
    let _ = writeln!(o, "electionPort={}", me.election_port);
    let _ = writeln!(o, "quorumPort={}", me.quorum_port);
    let _ = writeln!(o, "peerType={}", u8::from(me.observer));
    let _ = writeln!(o, "membership: ");
    let config = st
        .node
        .core()
        .tree()
        .get("/zookeeper/config")
        .and_then(|n| n.data().map(|d| String::from_utf8_lossy(d).into_owned()))
        .unwrap_or_default();
    o.push_str(config.trim_end());
    o.push('\n');
}

fn envi(o: &mut String) {
    envi_text(o)
}

/// `envi`'s lines: a heading, then `key=value`.
pub(crate) fn envi_text(o: &mut String) {
    let _ = writeln!(o, "Environment:");
    let _ = writeln!(o, "zookeeper.version={VERSION}");
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let _ = writeln!(o, "host.name={host}");
    let _ = writeln!(o, "corral.version={}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(o, "os.name={}", std::env::consts::OS);
    let _ = writeln!(o, "os.arch={}", std::env::consts::ARCH);
    if let Ok(u) = std::env::var("USER") {
        let _ = writeln!(o, "user.name={u}");
    }
    if let Ok(d) = std::env::current_dir() {
        let _ = writeln!(o, "user.dir={}", d.display());
    }
}

fn mntr(st: &View<'_>, o: &mut String) {
    for (k, mut v) in mntr_rows(st) {
        // The four-letter word's own connection is among ZooKeeper's connections.
        if k == "num_alive_connections" {
            if let Value::Long(n) = v {
                v = Value::Long(n + 1);
            }
        }
        let _ = writeln!(o, "zk_{k}\t{v}");
    }
}

/// The gauges ZooKeeper's server registers, computed from the server's state, in the order
/// ZooKeeper 3.8's `mntr` prints them.
pub(crate) fn gauges(st: &View<'_>) -> Vec<(String, Value)> {
    let s = &st.stats;
    let core = st.node.core();
    let tree = core.tree();
    let (open_fds, max_fds) = file_descriptors();
    let (last_resp, min_resp, max_resp) = s.response_size_figures();
    let long = |v: usize| Value::Long(v as i64);
    let rows: Vec<(&str, Value)> = vec![
        ("ephemerals_count", long(tree.ephemeral_count())),
        ("num_alive_connections", long(st.conns.len())),
        ("avg_latency", Value::Double(s.latency.avg())),
        ("outstanding_requests", long(outstanding(st))),
        ("znode_count", long(node_count(st))),
        ("global_sessions", long(core.sessions().len())),
        (
            "non_mtls_remote_conn_count",
            Value::Long(st.non_mtls.1 as i64),
        ),
        ("last_client_response_size", Value::Long(last_resp)),
        ("packets_sent", Value::Long(s.packets_sent as i64)),
        ("packets_received", Value::Long(s.packets_received as i64)),
        ("max_client_response_size", Value::Long(max_resp)),
        (
            "connection_drop_probability",
            Value::Double(st.drop_probability),
        ),
        (
            "watch_count",
            long(core.data_watches().watch_count() + core.child_watches().watch_count()),
        ),
        ("auth_failed_count", Value::Long(st.auth_failed as i64)),
        ("min_latency", Value::Long(s.latency.min() as i64)),
        ("max_file_descriptor_count", Value::Long(max_fds)),
        (
            "approximate_data_size",
            Value::Long(tree.approximate_data_size() as i64),
        ),
        ("open_file_descriptor_count", Value::Long(open_fds)),
        ("local_sessions", long(0)),
        ("uptime", Value::Long(st.uptime_ms as i64)),
        ("max_latency", Value::Long(s.latency.max_ms as i64)),
        (
            "outstanding_tls_handshake",
            Value::Long(st.handshakes_in_progress as i64),
        ),
        ("min_client_response_size", Value::Long(min_resp)),
        (
            "non_mtls_local_conn_count",
            Value::Long(st.non_mtls.0 as i64),
        ),
    ];
    rows.into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(ensemble_rows(st))
        .collect()
}

/// ZooKeeper's quota gauge sets: (set, top-level namespace, value), limits (the hard one when
/// set) and usage summed over the quotas in each namespace.
pub(crate) fn quota_gauges(st: &View<'_>) -> Vec<(&'static str, String, i64)> {
    let mut sums: std::collections::BTreeMap<(&'static str, String), i64> = Default::default();
    for (path, limits, stats) in st.node.core().tree().quota_figures() {
        let Some(ns) = path.split('/').nth(1).filter(|n| !n.is_empty()) else {
            continue;
        };
        let get =
            |m: &std::collections::BTreeMap<String, i64>, k: &str| m.get(k).copied().unwrap_or(-1);
        let limit = |hard: i64, soft: i64| if hard > -1 { hard } else { soft };
        for (set, v) in [
            (
                "quota_count_limit_per_namespace",
                limit(get(&limits, "countHardLimit"), get(&limits, "count")),
            ),
            (
                "quota_bytes_limit_per_namespace",
                limit(get(&limits, "byteHardLimit"), get(&limits, "bytes")),
            ),
            ("quota_count_usage_per_namespace", get(&stats, "count")),
            ("quota_bytes_usage_per_namespace", get(&stats, "bytes")),
        ] {
            *sums.entry((set, ns.to_string())).or_default() += v;
        }
    }
    sums.into_iter()
        .map(|((set, ns), v)| (set, ns, v))
        .collect()
}

/// `mntr`'s rows without the `zk_` prefix, also the AdminServer's `monitor`: version and
/// state, the gauges, then what the metrics provider dumps (with the Prometheus provider, its
/// samples, as ZooKeeper's Prometheus provider dumps them).
pub(crate) fn mntr_rows(st: &View<'_>) -> Vec<(String, Value)> {
    let mut rows = vec![
        ("version".to_string(), Value::Text(VERSION.to_string())),
        (
            "server_state".to_string(),
            Value::Text(mode(st).to_string()),
        ),
    ];
    match st.metrics.provider() {
        Provider::Default => {
            rows.extend(gauges(st));
            let quota = quota_gauges(st).into_iter();
            rows.extend(quota.map(|(set, ns, v)| (format!("{ns}_{set}"), Value::Long(v))));
            rows.extend(st.metrics.rows());
        }
        Provider::Prometheus => rows.extend(crate::metrics_http::samples(st)),
    }
    rows
}

fn dump(st: &View<'_>, o: &mut String) {
    let core = st.node.core();
    let mut sessions: Vec<_> = core
        .sessions()
        .iter()
        .map(|s| (s.expire_at_ms, s.id))
        .collect();
    sessions.sort();
    let _ = writeln!(o, "SessionTracker dump:");
    let _ = writeln!(o, "Session Sets ({})/({}):", sessions.len(), sessions.len());
    for (at, id) in &sessions {
        let _ = writeln!(o, "1 expire at {at}:");
        let _ = writeln!(o, "\t0x{id:x}");
    }
    let _ = writeln!(o, "ephemeral nodes dump:");
    let mut eph: Vec<_> = core.tree().ephemerals().collect();
    eph.sort_by_key(|(id, _)| **id);
    let _ = writeln!(o, "Sessions with Ephemerals ({}):", eph.len());
    for (id, paths) in eph {
        let _ = writeln!(o, "0x{id:x}:");
        for p in paths {
            let _ = writeln!(o, "\t{p}");
        }
    }
    let _ = writeln!(o, "Connections dump:");
    let _ = writeln!(o, "Connections Sets (1)/({}):", st.conns.len());
    for (id, cs) in &st.conns {
        let sid = core.conn(*id).map_or(0, |c| c.session);
        let _ = writeln!(o, "\tip: /{} sessionId: 0x{sid:x}", cs.peer);
    }
}
