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
    /// `zk_unsuccessful_handshake`: failed TLS handshakes (ZooKeeper's counter of that name).
    pub unsuccessful_handshake: u64,
    /// `zk_connection_rejected`: connections refused by `maxCnxns` / `maxClientCnxns`.
    pub connection_rejected: u64,
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
            *st.stats = Default::default();
            *st.node.counters_mut() = Default::default();
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
    let _ = writeln!(o, "Outstanding: 0");
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

fn proposal_sizes(st: &View<'_>) -> (i64, i64, i64) {
    match st.node.counters().proposal_sizes {
        None => (-1, -1, -1),
        Some(p) => (p.last as i64, p.min as i64, p.max as i64),
    }
}

/// mntr lines only an ensemble member has (QuorumPeer / Leader / Observer metrics).
fn ensemble_rows(st: &View<'_>) -> Vec<(&'static str, String)> {
    let (Some(state), Some(peer)) = (st.node.state(), st.node.peer()) else {
        return Vec::new();
    };
    let mut rows = vec![
        ("zk_peer_state", st.node.detailed_state()),
        ("zk_quorum_size", st.node.quorum_size().to_string()),
    ];
    match state {
        ServerState::Leading => {
            let followers = peer.synced_learners().len();
            let observers = peer.synced_observers().len();
            let (l, mi, ma) = proposal_sizes(st);
            rows.extend([
                ("zk_learners", st.node.learner_count().to_string()),
                ("zk_synced_followers", followers.to_string()),
                ("zk_synced_non_voting_followers", "0".to_string()),
                ("zk_synced_observers", observers.to_string()),
                ("zk_pending_syncs", peer.pending_syncs().to_string()),
                ("zk_last_proposal_size", l.to_string()),
                ("zk_min_proposal_size", mi.to_string()),
                ("zk_max_proposal_size", ma.to_string()),
            ]);
        }
        ServerState::Observing => {
            if let Some(l) = peer.leader() {
                rows.push(("zk_observer_master_id", l.to_string()));
            }
        }
        _ => {}
    }
    rows
}

fn connection_lines(st: &View<'_>, full: bool) -> Vec<String> {
    st.conns
        .iter()
        .map(|(id, cs)| {
            let mut s = format!(" /{}[1](queued=0,recved={},sent={}", cs.peer, cs.received, cs.sent);
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
    let _ = writeln!(o, "serverId=0");
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
    for (k, v) in mntr_rows(st) {
        let _ = writeln!(o, "{k}\t{v}");
    }
}

/// `mntr`'s rows, also the AdminServer's `monitor` (without the `zk_` prefix).
pub(crate) fn mntr_rows(st: &View<'_>) -> Vec<(&'static str, String)> {
    let s = &st.stats;
    let core = st.node.core();
    let tree = core.tree();
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let rows: Vec<(&str, String)> = vec![
        ("zk_version", VERSION.to_string()),
        ("zk_server_state", mode(st).to_string()),
        ("zk_ephemerals_count", tree.ephemeral_count().to_string()),
        ("zk_num_alive_connections", st.conns.len().to_string()),
        ("zk_avg_latency", format!("{:.1}", s.latency.avg())),
        ("zk_outstanding_requests", "0".into()),
        ("zk_znode_count", node_count(st).to_string()),
        ("zk_global_sessions", core.sessions().len().to_string()),
        ("zk_packets_sent", s.packets_sent.to_string()),
        ("zk_packets_received", s.packets_received.to_string()),
        (
            "zk_watch_count",
            (core.data_watches().watch_count() + core.child_watches().watch_count()).to_string(),
        ),
        ("zk_auth_failed_count", st.auth_failed.to_string()),
        (
            "zk_unsuccessful_handshake",
            st.unsuccessful_handshake.to_string(),
        ),
        ("zk_min_latency", s.latency.min().to_string()),
        ("zk_max_latency", s.latency.max_ms.to_string()),
        ("zk_open_file_descriptor_count", fds.to_string()),
        (
            "zk_approximate_data_size",
            tree.approximate_data_size().to_string(),
        ),
        ("zk_local_sessions", "0".into()),
        ("zk_uptime", st.uptime_ms.to_string()),
        ("zk_bytes_received_count", s.bytes_received.to_string()),
        (
            "zk_large_requests_rejected",
            s.large_requests_rejected.to_string(),
        ),
        ("zk_connection_rejected", st.connection_rejected.to_string()),
        ("zk_proposal_count", "0".into()),
        ("zk_commit_count", st.node.counters().txns.to_string()),
        ("zk_digest_mismatches_count", "0".into()),
    ];
    rows.into_iter().chain(ensemble_rows(st)).collect()
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
