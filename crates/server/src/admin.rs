//! The AdminServer (`admin.enableServer`, on by default as in ZooKeeper): ZooKeeper 3.8's
//! commands over HTTP, `GET <admin.commandURL>/<name>` (or an alias) answering JSON with the
//! field names, types and nesting ZooKeeper's Jackson output has, every answer carrying
//! `command` and `error`; `GET <admin.commandURL>` lists the commands. An unknown command is
//! answered `"error": "Unknown command: NAME"`; other methods get 405, other paths 404, as
//! Jetty answers them. The HTTP side is axum/hyper; the answers are computed in the node task
//! from the same state the four-letter words read (`run`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::fourlw::{self, View};
use crate::wire::Event;

/// ZooKeeper 3.8's commands: primary name, aliases, and whether it needs a running server
/// (those answer `"error": "This ZooKeeper instance is not currently serving requests"`
/// otherwise).
pub(crate) const COMMANDS: &[(&str, &[&str], bool)] = &[
    ("configuration", &["conf", "config"], true),
    ("connection_stat_reset", &["crst"], true),
    ("connections", &["cons"], true),
    ("dirs", &[], true),
    ("dump", &[], true),
    ("environment", &["env", "envi"], false),
    ("get_trace_mask", &["gtmk"], false),
    ("hash", &[], true),
    ("initial_configuration", &["icfg"], true),
    ("is_read_only", &["isro"], true),
    ("last_snapshot", &["lsnp"], true),
    ("leader", &["lead"], true),
    ("monitor", &["mntr"], false),
    ("observer_connection_stat_reset", &["orst"], true),
    ("observers", &["obsr"], true),
    ("ruok", &[], true),
    ("server_stats", &["srvr"], true),
    ("set_trace_mask", &["stmk"], false),
    ("stat_reset", &["srst"], true),
    ("stats", &["stat"], true),
    ("system_properties", &["sysp"], false),
    ("voting_view", &[], true),
    ("watch_summary", &["wchs"], true),
    ("watches", &["wchc"], true),
    ("watches_by_path", &["wchp"], true),
    ("zabstate", &[], false),
];

/// The primary name of a command or alias.
pub(crate) fn primary(name: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .find(|(n, aliases, _)| *n == name || aliases.contains(&name))
        .map(|(n, _, _)| *n)
}

/// Where and how the AdminServer listens.
#[derive(Debug, Clone)]
pub(crate) struct AdminSettings {
    pub addr: SocketAddr,
    pub command_url: String,
    pub idle_timeout: Duration,
}

#[derive(Clone)]
struct Shared {
    ev: mpsc::Sender<Event>,
    command_url: String,
}

/// Binds the AdminServer's port. ZooKeeper logs a failure and goes on without it.
pub(crate) async fn bind(settings: &AdminSettings) -> Option<TcpListener> {
    match TcpListener::bind(settings.addr).await {
        Ok(l) => {
            info!(
                "AdminServer on http://{}{} (admin.serverPort)",
                l.local_addr().map_or(settings.addr, |a| a),
                settings.command_url
            );
            Some(l)
        }
        Err(e) => {
            warn!(
                "AdminServer not started: cannot bind {}: {e} (set admin.serverPort, or \
                 admin.enableServer=false)",
                settings.addr
            );
            None
        }
    }
}

/// Serves the AdminServer on `listener` until the task is dropped; connections idle longer than
/// `admin.idleTimeout` are closed.
pub(crate) async fn serve(listener: TcpListener, settings: AdminSettings, ev: mpsc::Sender<Event>) {
    let shared = Shared {
        ev,
        command_url: settings.command_url.clone(),
    };
    let base = settings.command_url.trim_end_matches('/').to_string();
    let router = Router::new()
        .route(
            &format!("{base}/{{name}}"),
            get(command).fallback(other_method),
        )
        .route(&base.clone(), get(list).fallback(other_method))
        .route(&format!("{base}/"), get(list).fallback(other_method))
        .route("/ready", get(ready))
        .route("/live", get(live))
        .fallback(not_found)
        .with_state(shared);
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let idle = settings.idle_timeout;
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(sock);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(idle)
                .serve_connection(io, service);
            let _ = conn.await;
        });
    }
}

/// `GET <commandURL>`: links to every command, as ZooKeeper's CommandListServlet writes them.
async fn list(State(s): State<Shared>) -> Response {
    let mut names: Vec<&str> = COMMANDS.iter().map(|(n, _, _)| *n).collect();
    names.sort_unstable();
    let base = s.command_url.trim_end_matches('/');
    let body: String = names
        .iter()
        .map(|n| format!("<a href=\"{base}/{n}\">{n}</a>\n<br/>\n"))
        .collect();
    ([(header::CONTENT_TYPE, "text/html")], body).into_response()
}

/// A method other than GET: Java's HttpServlet answers 405 to HTTP/1.1 and 400 to HTTP/1.0.
async fn other_method(version: axum::http::Version, method: axum::http::Method) -> Response {
    let status = if version == axum::http::Version::HTTP_10 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::METHOD_NOT_ALLOWED
    };
    (
        status,
        format!("HTTP method {method} is not supported by this URL\n"),
    )
        .into_response()
}

/// `/live` (corral's, for Kubernetes liveness probes): the process answers.
async fn live() -> Response {
    (StatusCode::OK, "live\n").into_response()
}

/// `/ready` (corral's, for readiness probes): 200 once the data is loaded and the server
/// serves (standalone, or a member in a quorum that has synced with its leader), else 503.
async fn ready(State(s): State<Shared>) -> Response {
    let (tx, rx) = oneshot::channel();
    let asked =
        s.ev.send(Event::Admin {
            command: "ruok",
            args: HashMap::new(),
            reply: tx,
        })
        .await;
    match (asked, rx.await) {
        (Ok(()), Ok(v)) if v["error"].is_null() => (StatusCode::OK, "ready\n").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "not serving\n").into_response(),
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found\n").into_response()
}

/// `GET <commandURL>/<name>[?arg=value]`.
async fn command(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(args): Query<HashMap<String, String>>,
) -> Response {
    let value = match primary(&name) {
        None => json!({"command": name, "error": format!("Unknown command: {name}")}),
        Some(cmd) => {
            let (tx, rx) = oneshot::channel();
            let asked =
                s.ev.send(Event::Admin {
                    command: cmd,
                    args,
                    reply: tx,
                })
                .await;
            match (asked, rx.await) {
                (Ok(()), Ok(v)) => v,
                _ => json!({"command": cmd, "error": "the server is shutting down"}),
            }
        }
    };
    let body = serde_json::to_string_pretty(&value).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The answer to `command` (a primary name), computed from the server's state.
pub(crate) fn run(
    st: &mut View<'_>,
    command: &'static str,
    args: &HashMap<String, String>,
) -> Value {
    let mut m = Map::new();
    let needs_server = COMMANDS.iter().any(|(n, _, needs)| *n == command && *needs);
    let serving = st.node.state().is_none() || st.node.peer().is_some_and(|p| p.serving());
    let error = if needs_server && !serving {
        Some("This ZooKeeper instance is not currently serving requests".to_string())
    } else {
        answer(st, command, args, &mut m)
    };
    m.insert("command".into(), Value::from(command));
    m.insert("error".into(), error.map_or(Value::Null, Value::from));
    Value::Object(m)
}

/// Fills `m`; an error message when the command fails.
fn answer(
    st: &mut View<'_>,
    command: &str,
    args: &HashMap<String, String>,
    m: &mut Map<String, Value>,
) -> Option<String> {
    let core = st.node.core();
    match command {
        "ruok" | "connection_stat_reset" | "observer_connection_stat_reset" | "stat_reset" => {
            match command {
                "connection_stat_reset" => {
                    for cs in st.conns.values_mut() {
                        cs.reset();
                    }
                }
                "stat_reset" => {
                    *st.stats = Default::default();
                    *st.node.counters_mut() = Default::default();
                }
                _ => {}
            }
        }
        "configuration" => {
            let c = st.cfg;
            let (data, log) = fourlw::version_dirs(c);
            let shown = |d: Option<std::path::PathBuf>| {
                d.map(|d| d.display().to_string()).unwrap_or_default()
            };
            m.insert(
                "client_port".into(),
                json!(c.client_port.map_or(-1, i32::from)),
            );
            m.insert("data_dir".into(), json!(shown(data)));
            m.insert("data_log_dir".into(), json!(shown(log)));
            m.insert("tick_time".into(), json!(c.tick_time_ms));
            m.insert("max_client_cnxns".into(), json!(c.max_client_cnxns));
            m.insert(
                "min_session_timeout".into(),
                json!(c.min_session_timeout_ms),
            );
            m.insert(
                "max_session_timeout".into(),
                json!(c.max_session_timeout_ms),
            );
            m.insert("server_id".into(), json!(st.my_sid));
            m.insert("client_port_listen_backlog".into(), json!(-1));
        }
        "connections" => {
            m.insert("connections".into(), Value::Array(connections(st, true)));
            m.insert("secure_connections".into(), json!([]));
        }
        "dirs" => {
            let (data, log) = fourlw::dir_sizes(st.cfg);
            m.insert("datadir_size".into(), json!(data));
            m.insert("logdir_size".into(), json!(log));
        }
        "dump" => {
            let mut expiry: std::collections::BTreeMap<u64, Vec<i64>> = Default::default();
            for s in core.sessions().iter() {
                expiry.entry(s.expire_at_ms).or_default().push(s.id);
            }
            let expiry: Map<String, Value> = expiry
                .into_iter()
                .map(|(at, ids)| (at.to_string(), json!(ids)))
                .collect();
            let eph: Map<String, Value> = core
                .tree()
                .ephemerals()
                .map(|(id, paths)| (id.to_string(), json!(paths)))
                .collect();
            m.insert("expiry_time_to_session_ids".into(), Value::Object(expiry));
            m.insert("session_id_to_ephemeral_paths".into(), Value::Object(eph));
        }
        "environment" => {
            let mut text = String::new();
            fourlw::envi_text(&mut text);
            for line in text.lines().skip(1) {
                if let Some((k, v)) = line.split_once('=') {
                    m.insert(k.to_string(), json!(v));
                }
            }
        }
        "get_trace_mask" => {
            m.insert("tracemask".into(), json!(*st.trace_mask));
        }
        "set_trace_mask" => match args.get("traceMask").and_then(|v| v.parse::<i64>().ok()) {
            Some(mask) => {
                *st.trace_mask = mask;
                m.insert("tracemask".into(), json!(mask));
            }
            None => return Some("setTraceMask requires long traceMask argument".into()),
        },
        "hash" => {
            let digests: Vec<Value> = core
                .tree()
                .digest_log()
                .map(|(zxid, digest)| json!({"zxid": zxid, "digestVersion": 2, "digest": digest as i64}))
                .collect();
            m.insert("digests".into(), Value::Array(digests));
        }
        "initial_configuration" => {
            let text = match &st.cfg.config_path {
                Some(p) => std::fs::read_to_string(p).unwrap_or_default(),
                None => crate::config::EMBEDDED_ZOO_CFG.to_string(),
            };
            m.insert("initial_configuration".into(), json!(text));
        }
        "is_read_only" => {
            m.insert("read_only".into(), json!(false));
        }
        "last_snapshot" => {
            let snap_dir = fourlw::version_dirs(st.cfg).0;
            let (zxid, secs) = last_snapshot(snap_dir.as_deref()).unwrap_or((-1, -1));
            m.insert("zxid".into(), json!(format!("{zxid:x}")));
            m.insert("timestamp".into(), json!(secs));
        }
        "leader" => {
            let Some(peer) = st.node.peer().filter(|_| st.node.state().is_some()) else {
                return Some("server is not initialized".into());
            };
            let leader = peer.leader();
            m.insert(
                "is_leader".into(),
                json!(st.node.state() == Some(corral_proto::quorum::ServerState::Leading)),
            );
            m.insert("leader_id".into(), json!(leader.map_or(-1, |l| l.0)));
            let host = leader
                .and_then(|l| st.cfg.servers.iter().find(|s| s.id as i64 == l.0))
                .map(|s| s.host.clone())
                .unwrap_or_default();
            m.insert("leader_ip".into(), json!(host));
        }
        "monitor" => {
            for (k, v) in fourlw::mntr_rows(st) {
                m.insert(k, typed(v));
            }
        }
        "observers" => {
            let synced = st.node.peer().map_or(0, |p| p.synced_observers().len());
            m.insert("synced_observers".into(), json!(synced));
            m.insert("observers".into(), json!([]));
        }
        "server_stats" | "stats" => {
            let s = &st.stats;
            let (data_size, log_size) = fourlw::dir_sizes(st.cfg);
            let (last, min, max) = st.stats.response_size_figures();
            let response =
                json!({"last_buffer_size": last, "min_buffer_size": min, "max_buffer_size": max});
            m.insert("version".into(), json!(fourlw::VERSION));
            m.insert("read_only".into(), json!(false));
            m.insert(
                "server_stats".into(),
                json!({
                    "packets_sent": s.packets_sent,
                    "packets_received": s.packets_received,
                    "fsync_threshold_exceed_count": st.fsync_threshold_exceeded,
                    "client_response_stats": response.clone(),
                    "data_dir_size": data_size,
                    "log_dir_size": log_size,
                    "provider_null": false,
                    "server_state": fourlw::mode(st),
                    "last_processed_zxid": fourlw::zxid(st),
                    "outstanding_requests": fourlw::outstanding(st),
                    "avg_latency": s.latency.avg(),
                    "max_latency": s.latency.max_ms,
                    "min_latency": s.latency.min(),
                    "num_alive_client_connections": st.conns.len(),
                    "auth_failed_count": st.auth_failed,
                    "non_mtlsremote_conn_count": 0,
                    "non_mtlslocal_conn_count": 0,
                    "uptime": st.uptime_ms,
                }),
            );
            m.insert("client_response".into(), response);
            m.insert("node_count".into(), json!(fourlw::node_count(st)));
            if command == "stats" {
                m.insert("connections".into(), Value::Array(connections(st, false)));
                m.insert("secure_connections".into(), json!([]));
            }
        }
        "system_properties" => {
            let mut props: Vec<(&String, &String)> = st.cfg.properties.iter().collect();
            props.sort();
            for (k, v) in props {
                m.insert(k.clone(), json!(v));
            }
        }
        "voting_view" => {
            let mut view = Map::new();
            if st.node.state().is_some() {
                for s in &st.cfg.servers {
                    view.insert(
                        s.id.to_string(),
                        json!({
                            "id": s.id,
                            "addrs": [format!("{}:{}", s.host, s.quorum_port)],
                            "election_addrs": [format!("{}:{}", s.host, s.election_port)],
                            "client_addr": s.client_port.map(|p| format!("{}:{p}", s.client_address.as_deref().unwrap_or("0.0.0.0"))).unwrap_or_default(),
                            "learner_type": if s.observer { "observer" } else { "participant" },
                        }),
                    );
                }
            }
            m.insert("current_config".into(), Value::Object(view));
        }
        "watch_summary" => {
            let w = core.data_watches();
            m.insert("num_connections".into(), json!(w.conn_count()));
            m.insert("num_paths".into(), json!(w.path_count()));
            m.insert("num_total_watches".into(), json!(w.watch_count()));
        }
        "watches" => {
            let by_session: Map<String, Value> = core
                .data_watches()
                .by_conn()
                .map(|(conn, paths)| {
                    let sid = core.conn(conn).map_or(0, |c| c.session);
                    (sid.to_string(), json!(paths))
                })
                .collect();
            m.insert(
                "session_id_to_watched_paths".into(),
                Value::Object(by_session),
            );
        }
        "watches_by_path" => {
            let by_path: Map<String, Value> = core
                .data_watches()
                .by_path()
                .map(|(path, conns)| {
                    let sids: Vec<i64> = conns
                        .into_iter()
                        .map(|c| core.conn(c).map_or(0, |c| c.session))
                        .collect();
                    (path.to_string(), json!(sids))
                })
                .collect();
            m.insert("path_to_session_ids".into(), Value::Object(by_path));
        }
        "zabstate" => {
            use corral_proto::quorum::ServerState;
            let serving = st.node.peer().is_some_and(|p| p.serving());
            let (voting, state) = match st.node.state() {
                None => (false, ""),
                Some(ServerState::Looking) => (true, "election"),
                Some(s) => (
                    s != ServerState::Observing,
                    if serving {
                        "broadcast"
                    } else {
                        "synchronization"
                    },
                ),
            };
            m.insert("voting".into(), json!(voting));
            m.insert("zabstate".into(), json!(state));
        }
        _ => return Some(format!("Unknown command: {command}")),
    }
    None
}

/// The newest snapshot's zxid and modification time in seconds in `snap_dir` (ZooKeeper's
/// `getLastSnapshotInfo`).
fn last_snapshot(snap_dir: Option<&std::path::Path>) -> Option<(i64, i64)> {
    std::fs::read_dir(snap_dir?)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            // snapshot.<zxid>[.gz|.snappy]
            let hex = name.strip_prefix("snapshot.")?.split('.').next()?;
            let zxid = i64::from_str_radix(hex, 16).ok()?;
            let secs = e
                .metadata()
                .ok()?
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs() as i64;
            Some((zxid, secs))
        })
        .max()
}

/// A `mntr` value with the JSON type ZooKeeper's metrics have: integers, decimals, or text.
/// A metric as Jackson writes the Java value behind it: longs and doubles as numbers.
fn typed(v: crate::metrics::Value) -> Value {
    match v {
        crate::metrics::Value::Long(n) => json!(n),
        crate::metrics::Value::Double(f) => json!(f),
        crate::metrics::Value::Text(t) => json!(t),
    }
}

/// Each client connection's figures, as ZooKeeper's `getConnectionInfo(brief)` maps them.
fn connections(st: &View<'_>, full: bool) -> Vec<Value> {
    let core = st.node.core();
    st.conns
        .iter()
        .map(|(id, cs)| {
            let mut c = Map::new();
            c.insert("remote_socket_address".into(), json!(cs.peer.to_string()));
            c.insert("interest_ops".into(), json!(1));
            c.insert("outstanding_requests".into(), json!(cs.in_flight.len()));
            c.insert("packets_received".into(), json!(cs.received));
            c.insert("packets_sent".into(), json!(cs.sent));
            if full {
                if let Some(conn) = core.conn(*id) {
                    let timeout = core
                        .sessions()
                        .get(conn.session)
                        .map_or(0, |s| s.timeout_ms);
                    c.insert("session_id".into(), json!(conn.session));
                    c.insert("last_operation".into(), json!(conn.last_op));
                    c.insert("established".into(), json!(cs.established_wall_ms));
                    c.insert("session_timeout".into(), json!(timeout));
                    c.insert("last_cxid".into(), json!(conn.last_cxid));
                    c.insert("last_zxid".into(), json!(conn.last_zxid));
                    c.insert("last_response_time".into(), json!(cs.last_response_wall_ms));
                    c.insert("last_latency".into(), json!(cs.last_latency_ms));
                    c.insert("min_latency".into(), json!(cs.latency.min()));
                    c.insert("avg_latency".into(), json!(cs.latency.avg() as i64));
                    c.insert("max_latency".into(), json!(cs.latency.max_ms));
                }
            }
            Value::Object(c)
        })
        .collect()
}
