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
use tracing::{debug, info, warn};

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
    pub backup: BackupSettings,
    /// HTTPS (`admin.forceHttps`), or HTTPS beside HTTP (`admin.portUnification`: true).
    pub tls: Option<(std::sync::Arc<rustls::ServerConfig>, bool)>,
}

/// What Jetty's SecureRequestCustomizer adds to HTTPS answers in ZooKeeper's AdminServer.
const HSTS: &str = "max-age=86400; includeSubDomains";

/// ZooKeeper 3.9's backup commands, served beside 3.8's: `snapshot` (GET) streams a
/// consistent snapshot, `restore` (POST) loads one. Both need an `Authorization` header whose
/// identity holds ALL on `/`.
pub(crate) const BACKUP_COMMANDS: &[(&str, &[&str])] =
    &[("restore", &["rest"]), ("snapshot", &["snap"])];

/// The backup commands' settings (ZooKeeper 3.9's properties).
#[derive(Debug, Clone)]
pub(crate) struct BackupSettings {
    /// `zookeeper.admin.snapshot.enabled` / `zookeeper.admin.restore.enabled` (default true).
    pub snapshot_enabled: bool,
    pub restore_enabled: bool,
    /// `zookeeper.admin.rateLimiterIntervalInMS` (default 300000): one call per interval. As
    /// in ZooKeeper 3.9, `snapshot` reads the value as microseconds, `restore` as milliseconds.
    pub rate_limit_interval: i64,
}

impl BackupSettings {
    pub(crate) fn from_config(cfg: &crate::config::ServerConfig) -> BackupSettings {
        let flag = |k: &str| {
            cfg.property(k)
                .is_none_or(|v| v.trim().eq_ignore_ascii_case("true"))
        };
        BackupSettings {
            snapshot_enabled: flag("zookeeper.admin.snapshot.enabled"),
            restore_enabled: flag("zookeeper.admin.restore.enabled"),
            rate_limit_interval: cfg
                .property("zookeeper.admin.rateLimiterIntervalInMS")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(300_000),
        }
    }
}

/// What the node task answers a backup command.
#[derive(Debug)]
pub(crate) enum Backup {
    /// Allowed (auth checked, server serving).
    Allowed,
    Snapshot {
        zxid: i64,
        bytes: Vec<u8>,
    },
    Restored {
        zxid: i64,
    },
    /// An HTTP status and the `error` text.
    Refused(StatusCode, String),
}

#[derive(Clone)]
struct Shared {
    ev: mpsc::Sender<Event>,
    command_url: String,
    backup: BackupSettings,
    /// When `snapshot` and `restore` last ran (their rate limits).
    last_snapshot: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    last_restore: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
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
        backup: settings.backup.clone(),
        last_snapshot: Default::default(),
        last_restore: Default::default(),
    };
    let base = settings.command_url.trim_end_matches('/').to_string();
    let router = Router::new()
        .route(
            &format!("{base}/{{name}}"),
            get(command).post(post_command).fallback(other_method),
        )
        // A snapshot to restore is as large as the database.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .route(&base.clone(), get(list).fallback(other_method))
        .route(&format!("{base}/"), get(list).fallback(other_method))
        .route("/ready", get(ready))
        .route("/live", get(live))
        .fallback(not_found)
        .with_state(shared);
    loop {
        let Ok((sock, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let with_peer = router
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        let idle = settings.idle_timeout;
        let tls = settings.tls.clone();
        tokio::spawn(async move {
            let https = match &tls {
                None => false,
                Some((_, false)) => true,
                // Port unification: a TLS handshake record's first byte.
                Some((_, true)) => {
                    let mut first = [0u8; 1];
                    match tokio::time::timeout(idle, sock.peek(&mut first)).await {
                        Ok(Ok(1)) => first[0] == 0x16,
                        _ => return,
                    }
                }
            };
            if !https {
                serve_http(sock, with_peer, idle).await;
                return;
            }
            let Some((config, _)) = tls else { return };
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match tokio::time::timeout(idle, acceptor.accept(sock)).await {
                Ok(Ok(stream)) => {
                    let secured = with_peer.layer(axum::middleware::map_response(
                        |mut r: Response| async move {
                            r.headers_mut().insert(
                                header::STRICT_TRANSPORT_SECURITY,
                                axum::http::HeaderValue::from_static(HSTS),
                            );
                            r
                        },
                    ));
                    serve_http(stream, secured, idle).await;
                }
                Ok(Err(e)) => debug!("AdminServer TLS handshake with {peer} failed: {e}"),
                Err(_) => debug!("AdminServer TLS handshake with {peer} timed out"),
            }
        });
    }
}

/// One HTTP/1.1 connection until it closes or idles past `idle`.
async fn serve_http<S>(stream: S, router: Router, idle: Duration)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(router);
    let io = hyper_util::rt::TokioIo::new(stream);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(idle)
        .serve_connection(io, service);
    let _ = conn.await;
}

/// `GET <commandURL>`: links to every command, as ZooKeeper's CommandListServlet writes them.
async fn list(State(s): State<Shared>) -> Response {
    let mut names: Vec<&str> = COMMANDS.iter().map(|(n, _, _)| *n).collect();
    names.extend(BACKUP_COMMANDS.iter().map(|(n, _)| *n));
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

/// The primary name of a backup command or its alias.
fn backup_command(name: &str) -> Option<&'static str> {
    BACKUP_COMMANDS
        .iter()
        .find(|(n, aliases)| *n == name || aliases.contains(&name))
        .map(|(n, _)| *n)
}

/// A backup command's JSON answer: `command`, `error`, and what else it carries.
fn backup_json(
    status: StatusCode,
    command: &str,
    error: Option<String>,
    more: Map<String, Value>,
) -> Response {
    let mut m = more;
    m.insert("command".into(), json!(command));
    m.insert("error".into(), error.map_or(Value::Null, Value::from));
    let body = serde_json::to_string_pretty(&Value::Object(m)).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A backup command's answer when the node task refused it (or answered out of turn).
fn not_done(cmd: &str, answer: Backup) -> Response {
    match answer {
        Backup::Refused(status, error) => backup_json(status, cmd, Some(error), Map::new()),
        other => backup_json(
            StatusCode::INTERNAL_SERVER_ERROR,
            cmd,
            Some(format!("unexpected answer {other:?}")),
            Map::new(),
        ),
    }
}

/// One call per interval (ZooKeeper's RateLimiter with a single permit).
fn rate_limited(last: &std::sync::Mutex<Option<std::time::Instant>>, interval: Duration) -> bool {
    let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
    let now = std::time::Instant::now();
    if last.is_some_and(|t| now.duration_since(t) < interval) {
        return true;
    }
    *last = Some(now);
    false
}

/// Asks the node task; a closed channel is a server going away.
async fn ask_backup(s: &Shared, what: crate::wire::BackupAsk) -> Backup {
    let (reply, rx) = oneshot::channel();
    if s.ev.send(Event::Backup { what, reply }).await.is_err() {
        return Backup::Refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down".into(),
        );
    }
    rx.await.unwrap_or_else(|_| {
        Backup::Refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down".into(),
        )
    })
}

/// 3.9's check of who calls a backup command (its `Authorization` header, its address), made
/// before anything else: the refusal to answer with, if any.
async fn refused_caller(
    s: &Shared,
    cmd: &str,
    headers: &axum::http::HeaderMap,
    peer: axum::extract::ConnectInfo<SocketAddr>,
) -> Option<Response> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let ip = peer.0.ip().to_string();
    match ask_backup(s, crate::wire::BackupAsk::Check { auth, ip }).await {
        Backup::Refused(status, error) => Some(backup_json(status, cmd, Some(error), Map::new())),
        _ => None,
    }
}

/// `GET <commandURL>/snapshot[?streaming=false]`: a consistent snapshot of the database, its
/// zxid and size in the `last_zxid` and `snapshot_size` headers, streamed unless
/// `streaming=false`.
async fn snapshot(
    s: &Shared,
    args: &HashMap<String, String>,
    headers: &axum::http::HeaderMap,
    peer: axum::extract::ConnectInfo<SocketAddr>,
) -> Response {
    let cmd = "snapshot";
    if let Some(refusal) = refused_caller(s, cmd, headers, peer).await {
        return refusal;
    }
    if !s.backup.snapshot_enabled {
        warn!("snapshot command refused: zookeeper.admin.snapshot.enabled=false");
        return backup_json(StatusCode::SERVICE_UNAVAILABLE, cmd, None, Map::new());
    }
    let interval = Duration::from_micros(s.backup.rate_limit_interval.max(0) as u64);
    if rate_limited(&s.last_snapshot, interval) {
        return backup_json(StatusCode::TOO_MANY_REQUESTS, cmd, None, Map::new());
    }
    let streaming = args
        .get("streaming")
        .is_none_or(|v| v.trim().eq_ignore_ascii_case("true"));
    match ask_backup(s, crate::wire::BackupAsk::Snapshot).await {
        Backup::Snapshot { zxid, bytes } => {
            info!(
                "AdminServer snapshot at 0x{zxid:x}: {} bytes{}",
                bytes.len(),
                if streaming { ", streamed" } else { "" }
            );
            let headers = [
                ("last_zxid", format!("0x{zxid:x}")),
                ("snapshot_size", bytes.len().to_string()),
            ];
            let mut r = if streaming {
                ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
            } else {
                backup_json(StatusCode::OK, cmd, None, Map::new())
            };
            for (k, v) in headers {
                if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
                    r.headers_mut().insert(k, v);
                }
            }
            r
        }
        other => not_done(cmd, other),
    }
}

/// `POST <commandURL>/restore` with a snapshot as the body.
async fn post_command(
    State(s): State<Shared>,
    Path(name): Path<String>,
    peer: axum::extract::ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    version: axum::http::Version,
    method: axum::http::Method,
    body: axum::body::Body,
) -> Response {
    if backup_command(&name) != Some("restore") {
        return other_method(version, method).await;
    }
    let cmd = "restore";
    // Who is asking is checked before the body is read.
    if let Some(refusal) = refused_caller(&s, cmd, &headers, peer).await {
        return refusal;
    }
    if !s.backup.restore_enabled {
        warn!("restore command refused: zookeeper.admin.restore.enabled=false");
        return backup_json(StatusCode::SERVICE_UNAVAILABLE, cmd, None, Map::new());
    }
    let blob = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) if !b.is_empty() => b.to_vec(),
        Ok(_) => {
            return backup_json(
                StatusCode::BAD_REQUEST,
                cmd,
                Some("no snapshot in the request".into()),
                Map::new(),
            )
        }
        Err(e) => {
            return backup_json(
                StatusCode::BAD_REQUEST,
                cmd,
                Some(format!("reading the snapshot: {e}")),
                Map::new(),
            )
        }
    };
    let interval = Duration::from_millis(s.backup.rate_limit_interval.max(0) as u64);
    if rate_limited(&s.last_restore, interval) {
        return backup_json(StatusCode::TOO_MANY_REQUESTS, cmd, None, Map::new());
    }
    match ask_backup(&s, crate::wire::BackupAsk::Restore { blob }).await {
        Backup::Restored { zxid } => {
            let mut more = Map::new();
            more.insert("last_zxid".into(), json!(zxid));
            backup_json(StatusCode::OK, cmd, None, more)
        }
        other => not_done(cmd, other),
    }
}

/// The node task's side of the backup commands.
pub(crate) fn backup(
    st: &mut View<'_>,
    what: crate::wire::BackupAsk,
    now: corral_tree::core::Now,
) -> Backup {
    use crate::wire::BackupAsk;
    let serving = st.node.state().is_none() || st.node.peer().is_some_and(|p| p.serving());
    if !serving {
        return Backup::Refused(
            StatusCode::OK,
            "This ZooKeeper instance is not currently serving requests".into(),
        );
    }
    match what {
        BackupAsk::Check { auth, ip } => match authorized(st, auth.as_deref(), &ip) {
            Ok(()) => Backup::Allowed,
            Err((status, why)) => Backup::Refused(status, why.into()),
        },
        BackupAsk::Snapshot => {
            let (zxid, bytes) = st.node.snapshot_now();
            Backup::Snapshot { zxid, bytes }
        }
        BackupAsk::Restore { blob } => match st.node.restore(now, &blob) {
            Ok(zxid) => Backup::Restored { zxid },
            Err(e) => {
                warn!("restore refused: {e}");
                Backup::Refused(StatusCode::INTERNAL_SERVER_ERROR, e)
            }
        },
    }
}

/// ZooKeeper 3.9's check of a backup command's `Authorization: <scheme> [<auth>]`: the
/// scheme's provider turns it into ids (`digest user:password`, `ip`), which must hold ALL
/// on `/` (a super user always does).
fn authorized(
    st: &View<'_>,
    auth: Option<&str>,
    ip: &str,
) -> Result<(), (StatusCode, &'static str)> {
    use corral_tree::acl::AuthOutcome;
    let Some(auth) = auth else {
        return Err((
            StatusCode::UNAUTHORIZED,
            "Auth info is missing for the command",
        ));
    };
    let not_authenticated = (StatusCode::UNAUTHORIZED, "Not authenticated");
    // Java's split(" "): trailing empty strings dropped.
    let mut parts: Vec<&str> = auth.split(' ').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.is_empty() || parts.len() > 2 {
        return Err(not_authenticated);
    }
    let policy = &st.node.core().config().acl;
    let data = parts.get(1).map_or(&b""[..], |d| d.as_bytes());
    let ids = match policy.authenticate(parts[0], data, ip) {
        AuthOutcome::Added(ids) if !ids.is_empty() => ids,
        _ => return Err(not_authenticated),
    };
    let tree = st.node.core().tree();
    let Some(root) = tree.get("/") else {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error occurred during auth",
        ));
    };
    if policy.allows(root.acl(), corral_proto::records::perms::ALL, &ids) {
        Ok(())
    } else {
        Err((StatusCode::FORBIDDEN, "Not authorized"))
    }
}

/// `GET <commandURL>/<name>[?arg=value]`.
async fn command(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(args): Query<HashMap<String, String>>,
    peer: axum::extract::ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    version: axum::http::Version,
    method: axum::http::Method,
) -> Response {
    match backup_command(&name) {
        Some("snapshot") => return snapshot(&s, &args, &headers, peer).await,
        Some(_) => return other_method(version, method).await,
        None => {}
    }
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
                "stat_reset" => fourlw::reset_server_stats(st),
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
            // ZooKeeper's LearnerHandler figures; corral queues nothing for a learner
            // beyond its socket writer, so the queue figures are 0.
            let observers: Vec<Value> = st
                .observers
                .iter()
                .map(|(sid, s)| {
                    json!({
                        "remote_socket_address": s.peer.map(|a| format!("/{a}")).unwrap_or_default(),
                        "sid": sid,
                        "established": s.established_ms,
                        "queued_packets": 0,
                        "queued_packets_size": 0,
                        "packets_received": s.received,
                        "packets_sent": s.sent,
                        "requests": s.requests,
                        "last_zxid": s.last_zxid,
                    })
                })
                .collect();
            m.insert("observers".into(), Value::Array(observers));
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
                    "non_mtlsremote_conn_count": st.non_mtls.1,
                    "non_mtlslocal_conn_count": st.non_mtls.0,
                    "uptime": st.uptime_ms,
                }),
            );
            m.insert("client_response".into(), response);
            // A leader also shows its proposal sizes (ZooKeeper's LeaderZooKeeperServer).
            if st.node.state() == Some(corral_proto::quorum::ServerState::Leading) {
                let (last, min, max) = fourlw::proposal_sizes(st);
                m.insert(
                    "proposal_stats".into(),
                    json!({"last_buffer_size": last, "min_buffer_size": min, "max_buffer_size": max}),
                );
            }
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
            // The voting members (observers are not in the voting view), each with its
            // addresses as ZooKeeper's QuorumServer shows them; a member's client address is
            // known when its server line names one, and always for this member.
            let mut view = Map::new();
            if st.node.state().is_some() {
                for s in st.cfg.servers.iter().filter(|s| !s.observer) {
                    let client = match s.client_port {
                        Some(_) => s.client_socket_addr().map(|a| a.to_string()),
                        None if s.id as i64 == st.my_sid => {
                            st.cfg.client_address().map(|a| a.to_string())
                        }
                        None => None,
                    };
                    view.insert(
                        s.id.to_string(),
                        json!({
                            "server_addresses": [quorum_address(&s.host, s.quorum_port)],
                            "election_addresses": [quorum_address(&s.host, s.election_port)],
                            "client_address": client.unwrap_or_default(),
                            "learner_type": "participant",
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
            // A member also shows who it is, where it listens, and its last zxid.
            if let Some(me) = st.cfg.servers.iter().find(|s| s.id as i64 == st.my_sid) {
                let zxid = fourlw::zxid(st);
                m.insert("myid".into(), json!(st.my_sid));
                m.insert(
                    "is_leader".into(),
                    json!(st.node.state() == Some(ServerState::Leading)),
                );
                m.insert("quorum_address".into(), addresses(&me.host, me.quorum_port));
                m.insert(
                    "election_address".into(),
                    addresses(&me.host, me.election_port),
                );
                let client = crate::quorum::client_address(st.cfg, me);
                m.insert(
                    "client_address".into(),
                    json!(client.map(|a| a.to_string()).unwrap_or_default()),
                );
                m.insert("last_zxid".into(), json!(format!("0x{zxid:x}")));
                m.insert("zab_epoch".into(), json!(zxid >> 32));
                m.insert("zab_counter".into(), json!(zxid & 0xffff_ffff));
            }
            m.insert("voting".into(), json!(voting));
            m.insert("zabstate".into(), json!(state));
        }
        _ => return Some(format!("Unknown command: {command}")),
    }
    None
}

/// `host:port` as ZooKeeper prints a member's address.
fn quorum_address(host: &str, port: u16) -> String {
    corral_proto::quorum::format_address(host, port)
}

/// A member's address as ZooKeeper's `MultipleAddresses` serializes (one address here:
/// `multiAddress` is not supported).
fn addresses(host: &str, port: u16) -> Value {
    let one = quorum_address(host, port);
    json!({
        "empty": false,
        "all_addresses": [one],
        "all_reachable_addresses": [one],
        "one": one,
        "reachable_address": one,
        "wildcard_addresses": [format!("0.0.0.0:{port}")],
        "all_ports": [port],
        "all_host_strings": [host],
        "all_reachable_addresses_or_all": [one],
        "reachable_or_one": one,
    })
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
