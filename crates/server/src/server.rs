//! `corral server`: loads the data (through the pure node), binds the client port once reads
//! can be served, and runs the listeners and the node task. The node task is in
//! `node_task.rs`, client connections in `client.rs`, the quorum sockets in `quorum.rs`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corral_node::{EnsembleConfig, Node, NodeConfig, SnapshotPolicy, StartFailed};
use corral_proto::ServerId;
use corral_storage::disk::RealDisk;
use corral_storage::store::StoreOptions;
use corral_tree::core::CoreConfig;
use corral_tree::ConnId;
use corral_zab::PeerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::tls::TlsSource;
use tracing::{info, warn};

use crate::client::ClientStream;
use crate::config::ServerConfig;
use crate::limits::{EVENT_QUEUE_BOUND, SESSIONLESS_TIMEOUT};
use crate::node_task::{node_loop, Clock, State};
use crate::quorum::QuorumIo;
use crate::stats::ServerStats;
use crate::wire::Event;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("storage: {0}")]
    Storage(std::io::Error),
    #[error("{0}")]
    Start(#[from] StartFailed),
}

pub struct Server {
    /// The plaintext client port; `None` when only `secureClientPort` is set.
    listener: Option<TcpListener>,
    /// With `client.portUnification`: the acceptor for TLS connections on the plaintext port.
    unified: Option<Arc<TlsSource>>,
    /// The secure client port (`secureClientPort`) and its TLS acceptor.
    secure: Option<(TcpListener, Arc<TlsSource>)>,
    state: State,
    events: (mpsc::Sender<Event>, mpsc::Receiver<Event>),
    quorum_listeners: Option<crate::quorum::Listeners>,
    /// The AdminServer's listener and settings (`admin.enableServer`).
    admin: Option<(TcpListener, crate::admin::AdminSettings)>,
    /// The Prometheus endpoint's listener (`metricsProvider.className`).
    metrics: Option<TcpListener>,
}

pub fn core_config(cfg: &ServerConfig) -> CoreConfig {
    CoreConfig {
        server_id: 1,
        tick_ms: cfg.tick_time_ms,
        session_timeout_ms_min: cfg.min_session_timeout_ms,
        session_timeout_ms_max: cfg.max_session_timeout_ms,
        acl: corral_tree::acl::AclPolicy {
            skip_acl: cfg.skip_acl,
            super_digest: cfg.super_digest.clone(),
            digest_enabled: cfg.digest_auth_enabled,
            // As ZooKeeper: the secure port registers the x509 provider; else it is named.
            // The secure port (or portUnification) registers the x509 provider, as
            // configureSSLAuth does; so can authProvider.N.
            x509_enabled: cfg.client_tls.is_some()
                && cfg
                    .auth_providers
                    .iter()
                    .any(|(_, c)| c == crate::config::support::X509_PROVIDER),
            sasl_users: None,
            sasl_mechanism: None,
            sasl_provider: cfg
                .auth_providers
                .iter()
                .any(|(_, c)| c == crate::config::support::SASL_PROVIDER),
            // SaslServerCallbackHandler takes every zookeeper.superUser* property.
            sasl_super_users: cfg
                .properties
                .iter()
                .filter(|(k, _)| k.starts_with("zookeeper.superUser"))
                .map(|(_, v)| v.trim().to_string())
                .collect(),
            // Boolean.getBoolean: exactly "true", any case.
            allow_sasl_failed: cfg
                .property("zookeeper.allowSaslFailedClients")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            sasl_nonce_seed: 0,
            enforce_schemes: cfg.enforce_auth_schemes.clone(),
            digest_alg: cfg.digest_alg,
            x509_super_user: cfg
                .client_tls
                .as_ref()
                .and_then(|t| t.x509_super_user.clone()),
        },
        extended_types: cfg.extended_types_enabled,
        // Boolean.parseBoolean: "true" in any case.
        enforce_quota: cfg
            .property("zookeeper.enforceQuota")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        reconfig_enabled: cfg.reconfig_enabled,
        close_session_txn_enabled: cfg.close_session_txn_enabled,
        container_check_interval_ms: cfg.container_check_interval_ms.max(1),
        container_max_per_minute: cfg.container_max_per_minute,
        container_max_never_used_interval_ms: cfg.container_max_never_used_interval_ms,
        audit_user: audit_enabled(cfg).then(process_user),
    }
}

/// `audit.enable` (`zookeeper.audit.enable`, read with Boolean.getBoolean: "true", any case).
pub fn audit_enabled(cfg: &ServerConfig) -> bool {
    cfg.property("zookeeper.audit.enable")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The user this process runs as (what ZooKeeper's audit lines name as the server's user:
/// Java's `user.name`), from /proc and /etc/passwd; `<NA>` when unknown, as Java says.
pub fn process_user() -> String {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().map(str::to_string))
        });
    let from_passwd = uid.and_then(|uid| {
        std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
            })
        })
    });
    from_passwd
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "<NA>".to_string())
}

/// How snapshots and autopurge run, from zoo.cfg.
pub fn snapshot_policy(cfg: &ServerConfig) -> SnapshotPolicy {
    // Members of an ensemble must not snapshot in lockstep: seed the spread from the clock.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let hours = cfg.autopurge_purge_interval_hours as u64;
    SnapshotPolicy {
        snap_count: cfg.snap_count,
        seed,
        retain: cfg.autopurge_snap_retain_count as usize,
        purge_interval_ms: (hours > 0).then_some(hours * 3_600_000),
    }
}

/// The peer's configuration for member `my_sid`, with `zookeeper.snapshotSizeFactor`.
/// The metrics, with what start-up measured: ZooKeeper's `dbinittime` (loading the
/// database), `startup_snap_load_time`, `startup_txns_load_time` and `startup_txns_loaded`.
fn startup_metrics(
    prometheus: bool,
    (txns, snapshot_ms, replay_ms): &(u64, Option<u64>, Option<u64>),
    db_init_ms: i64,
) -> crate::metrics::Metrics {
    use crate::metrics::{Metrics, Provider, Summary};
    let mut m = Metrics::new(if prometheus {
        Provider::Prometheus
    } else {
        Provider::Default
    });
    m.observe(Summary::Dbinittime, db_init_ms);
    // ZooKeeper times the snapshot step even when there is no snapshot to load.
    m.observe(
        Summary::StartupSnapLoadTime,
        snapshot_ms.unwrap_or(0) as i64,
    );
    // The logs are read after a snapshot (or when logs exist without one); a fresh data
    // directory has neither, and ZooKeeper records no txn figures then.
    if snapshot_ms.is_some() || *txns > 0 {
        m.observe(Summary::StartupTxnsLoadTime, replay_ms.unwrap_or(0) as i64);
        m.observe(Summary::StartupTxnsLoaded, *txns as i64);
    }
    m
}

fn ensemble_config(cfg: &ServerConfig, my_sid: i64) -> EnsembleConfig {
    let factor_prop = cfg.property("zookeeper.snapshotSizeFactor");
    let snapshot_size_factor = corral_zab::sync::snapshot_size_factor(factor_prop);
    if factor_prop.is_some_and(|f| f.trim().parse::<f64>().ok() != Some(snapshot_size_factor)) {
        warn!(
            "zookeeper.snapshotSizeFactor={} is invalid, using the default {snapshot_size_factor}",
            factor_prop.unwrap_or_default()
        );
    }
    let txn_log_sync = corral_zab::sync::txn_log_sync_enabled(snapshot_size_factor);
    let enabled = if txn_log_sync { "enabled" } else { "disabled" };
    info!("zookeeper.snapshotSizeFactor = {snapshot_size_factor}: on-disk txn sync {enabled}");
    let peer = PeerConfig {
        my_sid: ServerId(my_sid),
        members: cfg
            .servers
            .iter()
            .map(|s| (ServerId(s.id as i64), s.observer))
            .collect(),
        tick_ms: cfg.tick_time_ms as u64,
        init_limit: cfg.init_limit.unwrap_or(10),
        sync_limit: cfg.sync_limit.unwrap_or(5),
        config: crate::quorum::quorum_config(cfg)
            .to_config_string()
            .into_bytes(),
        commit_log_count: cfg.commit_log_count,
        reconfig_enabled: cfg.reconfig_enabled,
        txn_log_sync,
    };
    EnsembleConfig {
        peer,
        snapshot_size_factor,
    }
}

impl Server {
    /// Load the data, then bind the client port: the port only opens once reads can be served.
    pub async fn bind(cfg: ServerConfig, store: StoreOptions) -> Result<Server, ServerError> {
        let (my_sid, me) = if cfg.is_distributed() {
            let sid = crate::quorum::read_myid(&cfg).map_err(ServerError::Unsupported)?;
            let me = cfg
                .servers
                .iter()
                .find(|s| s.id as i64 == sid)
                .cloned()
                .ok_or_else(|| {
                    ServerError::Unsupported(format!("myid {sid} has no server.{sid} line"))
                })?;
            info!("ensemble member {sid} of {} servers", cfg.servers.len());
            (sid, Some(me))
        } else {
            (1, None)
        };
        let t0 = Instant::now();
        let clock = Clock::new();
        let mut core = core_config(&cfg);
        (core.acl.sasl_users, core.acl.sasl_mechanism) = client_sasl(&cfg)?;
        core.acl.sasl_nonce_seed = rand::random();
        if me.is_some() {
            // Session ids carry the id of the server that created them.
            core.server_id = my_sid as u8;
        }
        let node_cfg = NodeConfig {
            core,
            ensemble: me.as_ref().map(|_| ensemble_config(&cfg, my_sid)),
            store: store.clone(),
            snapshots: snapshot_policy(&cfg),
            observe: false,
        };
        let node = tokio::task::block_in_place(|| {
            Node::start(node_cfg, RealDisk::default(), clock.now())
        })?;
        let db_init_ms = t0.elapsed().as_millis() as i64;
        info!(
            "loaded {} (start-up took {db_init_ms} ms)",
            node.load_summary()
        );
        let node_figures = node.startup_figures();
        let cfg_metrics = cfg.metrics_prometheus;
        let cfg_global_outstanding_limit = cfg.global_outstanding_limit;
        let cfg_conn_throttle = cfg.conn_throttle;
        let cfg_conn_blue = cfg.conn_blue;
        let cfg_request_throttle = (
            cfg.request_throttle_max_requests,
            Duration::from_millis(cfg.request_throttle_stall_ms),
        );
        let events = mpsc::channel::<Event>(EVENT_QUEUE_BOUND);
        let (quorum, quorum_listeners) = match &me {
            None => (None, None),
            Some(me) => {
                let listeners = crate::quorum::bind_listeners(me)
                    .await
                    .map_err(ServerError::Storage)?;
                let tls = match &cfg.quorum_tls {
                    Some(t) => Some(crate::tls::QuorumTlsSource::quorum(t).map_err(|e| {
                        ServerError::Unsupported(format!("quorum TLS (sslQuorum): {e}"))
                    })?),
                    None => None,
                };
                match (cfg.ssl_quorum, cfg.quorum_port_unification) {
                    (true, false) => info!("members talk over TLS (sslQuorum)"),
                    (true, true) => info!(
                        "members talk over TLS (sslQuorum); members connecting in plaintext \
                         are let in (portUnification)"
                    ),
                    (false, true) => info!(
                        "this member connects to others in plaintext; members connecting over \
                         TLS or in plaintext are let in (portUnification)"
                    ),
                    (false, false) => {}
                }
                if cfg.ssl_quorum_reload_cert_files && tls.is_some() {
                    info!("quorum key and trust stores are reloaded when they change");
                }
                let sasl = match &cfg.quorum_sasl {
                    Some(q) => {
                        let hosts = cfg.servers.iter().map(|s| s.host.clone()).collect();
                        Some(
                            crate::quorum_auth::load(&cfg, q, hosts)
                                .map_err(ServerError::Unsupported)?,
                        )
                    }
                    None => None,
                };
                let links = Arc::new(crate::quorum::MemberLinks {
                    tls,
                    dial_tls: cfg.ssl_quorum,
                    sasl,
                });
                let q = QuorumIo::new(&cfg, my_sid, events.0.clone(), links);
                (Some(q), Some(listeners))
            }
        };
        let addr = match &me {
            Some(me) => crate::quorum::client_address(&cfg, me),
            None => cfg.client_address(),
        };
        let acceptor = match &cfg.client_tls {
            Some(tls) => Some(
                crate::tls::TlsSource::client(tls)
                    .map_err(|e| ServerError::Unsupported(format!("client TLS: {e}")))?,
            ),
            None => None,
        };
        let secure = match (&acceptor, cfg.secure_client_port) {
            (Some(acceptor), Some(port)) => {
                let ip = cfg
                    .secure_client_port_address
                    .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
                let addr = SocketAddr::new(ip, port);
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?;
                info!(
                    "serving TLS clients on {}",
                    l.local_addr().map_err(ServerError::Storage)?
                );
                Some((l, acceptor.clone()))
            }
            _ => None,
        };
        let unified =
            acceptor.filter(|_| cfg.client_tls.as_ref().is_some_and(|t| t.port_unification));
        let listener = match addr {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?;
                let also = if unified.is_some() {
                    " (TLS too: client.portUnification)"
                } else {
                    ""
                };
                info!(
                    "serving clients on {}{also}",
                    l.local_addr().map_err(ServerError::Storage)?
                );
                Some(l)
            }
            None if secure.is_some() => None,
            None => return Err(ServerError::Unsupported("no clientPort configured".into())),
        };
        let state = State {
            node,
            cfg,
            stats: ServerStats::default(),
            trace_mask: crate::fourlw::DEFAULT_TRACE_MASK,
            fsync_threshold_exceeded: 0,
            conns: HashMap::new(),
            dirty: Vec::new(),
            started: Instant::now(),
            clock,
            quorum,
            store_options: store,
            events: events.0.clone(),
            auth_failed: Arc::default(),
            metrics: startup_metrics(cfg_metrics, &node_figures, db_init_ms),
            node_seen: Default::default(),
            conn_throttle: crate::conn_throttle::ConnThrottle::new(
                crate::conn_throttle::ConnThrottleSettings {
                    max_tokens: cfg_conn_throttle.0,
                    fill_time_ms: cfg_conn_throttle.1,
                    fill_count: cfg_conn_throttle.2,
                    weights: cfg_conn_throttle.3,
                    blue: cfg_conn_blue,
                },
                clock.now().mono_ms as i64,
            ),
            throttle: Arc::new(crate::wire::Throttle {
                max_requests: cfg_request_throttle.0,
                stall: cfg_request_throttle.1,
                ..crate::wire::Throttle::new(cfg_global_outstanding_limit as usize)
            }),
            txns_at_sync: 0,
            role: Default::default(),
        };
        // ZooKeeper goes on without its AdminServer when the certificates do not load.
        let admin_tls: Result<_, ()> = match &state.cfg.admin_tls {
            None => Ok(None),
            Some(t) if t.trust_store.is_none() => {
                warn!(
                    "AdminServer not started: HTTPS needs ssl.quorum.trustStore.location as \
                     well (ZooKeeper's Jetty loads both stores)"
                );
                Err(())
            }
            Some(t) => match crate::tls::server_config(t) {
                Ok(c) => Ok(Some((c, t.port_unification))),
                Err(e) => {
                    warn!("AdminServer not started: its TLS settings (ssl.quorum.*): {e}");
                    Err(())
                }
            },
        };
        let admin = if state.cfg.admin_enable_server && admin_tls.is_ok() {
            let settings = crate::admin::AdminSettings {
                tls: admin_tls.ok().flatten(),
                addr: SocketAddr::new(state.cfg.admin_server_address, state.cfg.admin_server_port),
                command_url: state.cfg.admin_command_url.clone(),
                idle_timeout: Duration::from_millis(state.cfg.admin_idle_timeout_ms),
                backup: crate::admin::BackupSettings::from_config(&state.cfg),
            };
            crate::admin::bind(&settings).await.map(|l| (l, settings))
        } else {
            None
        };
        let metrics = if state.cfg.metrics_prometheus {
            let (host, port) = (&state.cfg.metrics_http_host, state.cfg.metrics_http_port);
            let l = crate::metrics_http::bind(host, port).await;
            Some(l.map_err(|e| ServerError::Unsupported(e.to_string()))?)
        } else {
            None
        };
        Ok(Server {
            listener,
            unified,
            secure,
            state,
            events,
            quorum_listeners,
            admin,
            metrics,
        })
    }

    /// The plaintext client port's address, else the secure one's.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .as_ref()
            .or(self.secure.as_ref().map(|(l, _)| l))
            .expect("at least one client listener")
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serve until `shutdown` completes; then close every connection and return.
    pub async fn run<F: std::future::Future<Output = ()>>(
        self,
        shutdown: F,
    ) -> Result<(), ServerError> {
        let Server {
            listener,
            unified,
            secure,
            state,
            events: (ev_tx, ev_rx),
            quorum_listeners,
            admin,
            metrics,
        } = self;
        let max_frame = state.cfg.jute_max_buffer;
        let mut quorum_tasks = Vec::new();
        if let (Some(l), Some(q)) = (quorum_listeners, state.quorum.as_ref()) {
            let max_packet = state.cfg.jute_max_buffer + state.cfg.jute_max_buffer_extra;
            quorum_tasks.push(tokio::spawn(crate::quorum::election_listener(
                l.election,
                q.my_sid,
                ev_tx.clone(),
                q.links.clone(),
            )));
            quorum_tasks.push(tokio::spawn(crate::quorum::quorum_listener(
                l.quorum,
                max_packet,
                ev_tx.clone(),
                q.links.clone(),
            )));
        }
        let admit = Admit {
            auth_failed: state.auth_failed.clone(),
            open: Arc::default(),
            max_per_ip: state.cfg.max_client_cnxns as usize,
            max_total: state.cfg.max_cnxns as usize,
            next_conn: Arc::new(AtomicU64::new(1)),
            ev_tx: ev_tx.clone(),
            max_frame,
            whitelist: state.cfg.four_letter_whitelist.clone(),
            throttle: state.throttle.clone(),
            handshake_limit: state.cfg.outstanding_handshake_limit,
            count_non_mtls: state.cfg.client_tls.is_some(),
        };
        if let Some((l, settings)) = admin {
            quorum_tasks.push(tokio::spawn(crate::admin::serve(
                l,
                settings,
                ev_tx.clone(),
            )));
        }
        if let Some(l) = metrics {
            quorum_tasks.push(tokio::spawn(crate::metrics_http::serve(l, ev_tx.clone())));
        }
        let audit_user = state.node.core().config().audit_user.clone();
        if let Some(user) = &audit_user {
            corral_tree::core::audit::server_event(user, "serverStart", "success");
        }
        let core_task = tokio::spawn(node_loop(state, ev_rx));
        let (secure_listener, acceptor) = match secure {
            Some((l, a)) => (Some(l), Some(a)),
            None => (None, None),
        };
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = accept(listener.as_ref()) => {
                    match accepted {
                        Ok((sock, peer)) => admit.plain(sock, peer, unified.clone()),
                        Err(e) => { warn!("accept failed: {e}"); tokio::time::sleep(Duration::from_millis(10)).await; }
                    }
                }
                accepted = accept(secure_listener.as_ref()) => {
                    match accepted {
                        Ok((sock, peer)) => admit.tls(sock, peer, acceptor.clone().expect("secure listener has an acceptor")),
                        Err(e) => { warn!("accept failed: {e}"); tokio::time::sleep(Duration::from_millis(10)).await; }
                    }
                }
            }
        }
        info!("shutting down");
        if let Some(user) = &audit_user {
            corral_tree::core::audit::server_event(user, "serverStop", "invoked");
        }
        for t in quorum_tasks {
            t.abort();
        }
        drop(listener);
        drop(secure_listener);
        drop(admit);
        drop(ev_tx);
        core_task.abort();
        let _ = core_task.await;
        Ok(())
    }
}

/// Accepts on `l`, or waits forever when there is no such listener.
async fn accept(l: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// The client connections open: `maxCnxns` caps the total, `maxClientCnxns` each IP's count.
#[derive(Default)]
struct OpenConns {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// What every accepted client connection goes through: the per-IP limit (`maxClientCnxns`),
/// a connection id, and its task.
struct Admit {
    /// `zk_auth_failed_count` and `zk_unsuccessful_handshake`; `zk_connection_rejected`.
    auth_failed: Arc<TlsCounters>,
    /// Open connections, in all and per client IP.
    open: Arc<Mutex<OpenConns>>,
    max_per_ip: usize,
    /// `maxCnxns`: connections in all; 0 is no limit.
    max_total: usize,
    next_conn: Arc<AtomicU64>,
    ev_tx: mpsc::Sender<Event>,
    max_frame: usize,
    whitelist: crate::config::FourLetterWhitelist,
    throttle: Arc<crate::wire::Throttle>,
    /// `outstandingHandshake.limit`: TLS handshakes under way at once; 0 is no limit.
    handshake_limit: u64,
    /// TLS is configured for clients: plaintext connections are counted as non-mTLS.
    count_non_mtls: bool,
}

impl Admit {
    /// A place for a connection that may do a TLS handshake, under `outstandingHandshake.limit`:
    /// `Err` when the limit is reached (the connection is to be closed, and is counted in
    /// `zk_tls_handshake_exceeded`), `Ok(None)` without a limit.
    fn handshake_slot(&self, peer: SocketAddr) -> Result<Option<HandshakeSlot>, ()> {
        if self.handshake_limit == 0 {
            return Ok(None);
        }
        let c = &self.auth_failed;
        if c.handshakes_in_progress.fetch_add(1, Ordering::AcqRel) + 1 > self.handshake_limit {
            c.handshakes_in_progress.fetch_sub(1, Ordering::AcqRel);
            c.tls_handshake_exceeded.fetch_add(1, Ordering::Relaxed);
            warn!(
                "{} TLS handshakes under way (outstandingHandshake.limit); closing the connection from {peer}",
                self.handshake_limit
            );
            return Err(());
        }
        Ok(Some(HandshakeSlot(c.clone())))
    }

    /// Counts the connection against its IP; false (and counted in `zk_connection_rejected`)
    /// when the server is at `maxCnxns` or the IP at `maxClientCnxns`, checked in that order as
    /// ZooKeeper checks them.
    fn admit(&self, peer: SocketAddr) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let total = open.total;
        let refused = if self.max_total != 0 && total >= self.max_total {
            warn!(
                "too many connections {total} - max is {} (maxCnxns); closing the one from {peer}",
                self.max_total
            );
            true
        } else if self.max_per_ip != 0
            && open.per_ip.get(&peer.ip()).copied().unwrap_or(0) >= self.max_per_ip
        {
            warn!(
                "too many connections from {} - max is {}",
                peer.ip(),
                self.max_per_ip
            );
            true
        } else {
            false
        };
        if refused {
            (self.auth_failed.connection_rejected).fetch_add(1, Ordering::Relaxed);
            return false;
        }
        *open.per_ip.entry(peer.ip()).or_insert(0) += 1;
        open.total += 1;
        true
    }

    fn release(open: &Mutex<OpenConns>, peer: SocketAddr) {
        let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.per_ip.get_mut(&peer.ip()) {
            *n -= 1;
            if *n == 0 {
                open.per_ip.remove(&peer.ip());
            }
            open.total -= 1;
        }
    }

    /// A connection on the plaintext port; with `client.portUnification` one whose first byte
    /// is a TLS handshake record's (0x16; a ZooKeeper frame or four-letter word never starts so)
    /// is taken through TLS.
    fn plain(&self, sock: TcpStream, peer: SocketAddr, unified: Option<Arc<TlsSource>>) {
        if !self.admit(peer) {
            return;
        }
        if self.count_non_mtls {
            let c = &self.auth_failed;
            let counter = if peer.ip().is_loopback() {
                &c.non_mtls_local
            } else {
                &c.non_mtls_remote
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let _ = sock.set_nodelay(true);
        let failed = self.auth_failed.clone();
        // With port unification every connection may be a TLS one until its first byte.
        let slot = match &unified {
            None => None,
            Some(_) => match self.handshake_slot(peer) {
                Ok(slot) => slot,
                Err(()) => return,
            },
        };
        self.spawn(peer, async move {
            let _slot = slot;
            let Some(source) = unified else {
                return Some((ClientStream::Plain(sock), None));
            };
            let mut first = [0u8; 1];
            match tokio::time::timeout(SESSIONLESS_TIMEOUT, sock.peek(&mut first)).await {
                Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD => {
                    handshake(sock, peer, source.acceptor(), &failed).await
                }
                Ok(Ok(1)) => Some((ClientStream::Plain(sock), None)),
                _ => None,
            }
        });
    }

    /// A connection on the secure port.
    fn tls(&self, sock: TcpStream, peer: SocketAddr, source: Arc<TlsSource>) {
        if !self.admit(peer) {
            return;
        }
        let Ok(slot) = self.handshake_slot(peer) else {
            return;
        };
        let _ = sock.set_nodelay(true);
        let failed = self.auth_failed.clone();
        self.spawn(peer, async move {
            let _slot = slot;
            handshake(sock, peer, source.acceptor(), &failed).await
        });
    }

    fn spawn<F>(&self, peer: SocketAddr, open: F)
    where
        F: std::future::Future<Output = Option<(ClientStream, Option<String>)>> + Send + 'static,
    {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed) as ConnId;
        let conns = self.open.clone();
        let readers = crate::client::Readers {
            ev: self.ev_tx.clone(),
            max_frame: self.max_frame,
            whitelist: self.whitelist.clone(),
            throttle: self.throttle.clone(),
        };
        tokio::spawn(async move {
            // Released however the task ends, a panic included.
            let _slot = Slot { open: conns, peer };
            if let Some((stream, x509)) = open.await {
                crate::client::connection(conn, stream, peer, readers, x509).await;
            }
        });
    }
}

/// A connection's place in the per-IP count, given back when dropped.
struct Slot {
    open: Arc<Mutex<OpenConns>>,
    peer: SocketAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        Admit::release(&self.open, self.peer);
    }
}

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What the connection tasks count for `mntr`, as ZooKeeper's connection factories count it.
#[derive(Debug, Default)]
pub(crate) struct TlsCounters {
    /// `zk_auth_failed_count`: failed handshakes and unreadable client certificates.
    pub auth_failed: AtomicU64,
    /// `zk_unsuccessful_handshake`: failed handshakes.
    pub unsuccessful_handshake: AtomicU64,
    /// `zk_connection_rejected`: connections closed at once by `maxCnxns` or `maxClientCnxns`
    /// (plaintext and TLS alike).
    pub connection_rejected: AtomicU64,
    /// `zk_outstanding_tls_handshake`: TLS handshakes under way (counted when
    /// `outstandingHandshake.limit` is set, as ZooKeeper counts them).
    pub handshakes_in_progress: AtomicU64,
    /// `zk_tls_handshake_exceeded`: connections closed at once past that limit.
    pub tls_handshake_exceeded: AtomicU64,
    /// `zk_non_mtls_local_conn_count` / `zk_non_mtls_remote_conn_count`: plaintext client
    /// connections from loopback and from elsewhere, counted when TLS is configured for
    /// clients (ZooKeeper's Netty factory counts them; its NIO one, used without TLS, does not).
    pub non_mtls_local: AtomicU64,
    pub non_mtls_remote: AtomicU64,
}

/// A place among the TLS handshakes under way, given back when dropped (the handshake
/// finished, failed, or the connection turned out to be plaintext).
struct HandshakeSlot(Arc<TlsCounters>);

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.0.handshakes_in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The TLS handshake of a client connection, bounded in time; a failed one is logged with the
/// peer and the reason and ends that connection only. Returns the stream and the client
/// certificate's subject.
async fn handshake(
    sock: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    failed: &TlsCounters,
) -> Option<(ClientStream, Option<String>)> {
    let hs = acceptor.accept(sock);
    let Some(tls) = crate::tls::handshake_within(SESSIONLESS_TIMEOUT, hs, peer).await else {
        // ZooKeeper's Netty factory counts a failed handshake in both.
        failed.auth_failed.fetch_add(1, Ordering::Relaxed);
        failed
            .unsuccessful_handshake
            .fetch_add(1, Ordering::Relaxed);
        return None;
    };
    let x509 = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
        None => None,
        Some(cert) => match crate::tls::subject_rfc2253(cert) {
            Ok(s) => Some(s),
            Err(e) => {
                failed.auth_failed.fetch_add(1, Ordering::Relaxed);
                warn!("client certificate of {peer} cannot be read: {e}");
                return None;
            }
        },
    };
    Some((ClientStream::Tls(Box::new(tls)), x509))
}

/// What SASL the client port offers, from the JAAS file's `Server` section
/// (`-Djava.security.auth.login.config`, section `zookeeper.sasl.serverconfig`), as ZooKeeper's
/// server login reads it: DIGEST-MD5 with the `DigestLoginModule` users, or GSSAPI when the
/// section is a `Krb5LoginModule`. `(None, None)`: no SASL.
#[allow(clippy::type_complexity)]
fn client_sasl(
    cfg: &ServerConfig,
) -> Result<
    (
        Option<std::collections::BTreeMap<String, String>>,
        Option<Arc<dyn corral_tree::sasl::SaslMechanism>>,
    ),
    ServerError,
> {
    let Some(jaas) = &cfg.jaas else {
        return Ok((None, None));
    };
    let (path, sections) = (&jaas.path, &jaas.sections);
    let section = cfg
        .property("zookeeper.sasl.serverconfig")
        .unwrap_or("Server");
    let bad = |why: String| ServerError::Unsupported(format!("JAAS file {path}: {why}"));
    let Some(modules) = sections.get(section) else {
        warn!("JAAS file {path} has no {section} section: no SASL for clients");
        return Ok((None, None));
    };
    if let Some(login) = crate::kerberos::krb5_login(sections, section).map_err(bad)? {
        let mech = crate::kerberos::mechanism(cfg, &login)
            .map_err(|e| bad(format!("section {section}: {e}")))?;
        return Ok((None, Some(mech)));
    }
    if let Some(m) = modules
        .iter()
        .find(|m| m.class != crate::config::jaas::DIGEST_LOGIN_MODULE)
    {
        return Err(bad(format!(
            "section {section}: {} is not supported (corral offers SASL DIGEST-MD5 with {} \
             and Kerberos with {})",
            m.class,
            crate::config::jaas::DIGEST_LOGIN_MODULE,
            crate::kerberos::KRB5_LOGIN_MODULE
        )));
    }
    let users = crate::config::jaas::digest_users(modules);
    info!(
        "SASL DIGEST-MD5 for clients: {} user(s) from section {section} of {path}",
        users.len()
    );
    Ok((Some(users), None))
}
