//! The node task: owns the pure `corral_node::Node` and everything the four-letter words
//! read, feeds it events in arrival order, and executes its actions in order: client frames
//! (written at the end of each batch), quorum actions (through [`QuorumIo`]), the fsync (here,
//! in `block_in_place`), snapshot writes and autopurge (on a thread of their own).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corral_node::{Action, Event as NodeEvent, Node};
use corral_storage::disk::RealDisk;
use corral_storage::store::{FileStore, StoreOptions};
use corral_tree::core::Now;
use corral_tree::ConnId;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use corral_node::NodeCounters;
use corral_proto::quorum::ServerState;

use crate::config::ServerConfig;
use crate::fourlw::{self, View};
use crate::limits::EVENT_BATCH_MAX;
use crate::metrics::{own, Counter, Metrics, Summary};
use crate::quorum::{QuorumIo, REDIAL_EVERY};
use crate::stats::{ConnStats, InFlight, ReadKind, ServerStats};
use crate::wire::{ClientTx, Event, WriterMsg};
use corral_proto::records::xid;
use corral_proto::request::Request;

/// The clocks handed to the node. The monotonic clock is anchored at the wall clock at
/// start-up so session ids (which embed it) differ across restarts, like ZooKeeper's do.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
    start_ms: u64,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        let start_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Clock {
            start: Instant::now(),
            start_ms,
        }
    }

    pub(crate) fn now(&self) -> Now {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Now {
            mono_ms: self.start_ms + self.start.elapsed().as_millis() as u64,
            wall_ms,
        }
    }
}

/// The node and what the node task keeps beside it.
pub(crate) struct State {
    pub node: Node<RealDisk>,
    pub cfg: ServerConfig,
    pub stats: ServerStats,
    /// The trace mask `gtmk` shows and `stmk` sets (ZooKeeper's ZooTrace default, 306; corral
    /// has no trace log it selects).
    pub trace_mask: i64,
    /// Txn log fsyncs slower than `fsync.warningthresholdms` (AdminServer's
    /// `fsync_threshold_exceed_count`; `srst` leaves it, as ZooKeeper's does).
    pub fsync_threshold_exceeded: u64,
    pub conns: HashMap<ConnId, (ClientTx, ConnStats)>,
    /// Connections with frames in their outbox.
    pub dirty: Vec<ConnId>,
    pub started: Instant,
    pub clock: Clock,
    /// Set when this server is an ensemble member.
    pub quorum: Option<QuorumIo>,
    /// For the snapshot writer and autopurge threads.
    pub store_options: StoreOptions,
    /// The node task's own sender, for background jobs to report back.
    pub events: mpsc::Sender<Event>,
    /// Failed TLS handshakes and client certificates, counted by the connection tasks.
    pub auth_failed: std::sync::Arc<crate::server::TlsCounters>,
    /// ZooKeeper's server metrics (`mntr`, `monitor`, Prometheus).
    pub metrics: Metrics,
    /// The node's counters as last carried into `metrics`.
    pub node_seen: NodeCounters,
    /// ZooKeeper's connection throttle (`connectionMaxTokens`).
    pub conn_throttle: crate::conn_throttle::ConnThrottle,
    /// `globalOutstandingLimit`: requests in process, counted with the connection readers.
    pub throttle: std::sync::Arc<crate::wire::Throttle>,
    /// Txns appended when the last fsync ran (`sync_processor_batch_size`).
    pub txns_at_sync: u64,
    /// The ensemble role as last seen, and when it began (elections, syncs, leader uptime).
    pub role: RoleClock,
}

/// When the current ensemble role began, for `election_time`, `looking_count`,
/// `follower_sync_time` / `observer_sync_time` and `leader_uptime`.
#[derive(Debug, Default)]
pub(crate) struct RoleClock {
    pub state: Option<ServerState>,
    pub since: Option<Instant>,
    /// When the last election began (entering LOOKING).
    pub looking_since: Option<Instant>,
    /// When this member stopped serving to look for a leader, until it serves again.
    pub unavailable_since: Option<Instant>,
    pub serving: bool,
}

impl RoleClock {
    /// Milliseconds in the current role while leading (`leader_uptime`).
    pub(crate) fn leader_uptime_ms(&self) -> Option<u64> {
        match (self.state, self.since) {
            (Some(ServerState::Leading), Some(t)) => Some(t.elapsed().as_millis() as u64),
            _ => None,
        }
    }
}

/// Carries role changes into the metrics: ZooKeeper counts each LOOKING spell, times the
/// election up to the new role, and times a learner's sync up to serving.
fn track_role(st: &mut State) {
    let state = st.node.state();
    let serving = st.node.peer().is_some_and(|p| p.serving());
    let r = &mut st.role;
    let now = Instant::now();
    if state != r.state {
        // A follower takes its share of globalOutstandingLimit, as ZooKeeper's followers do.
        let quorum = st.node.quorum_size();
        let limit = st.cfg.global_outstanding_limit as usize;
        let limit = match state {
            Some(ServerState::Following) if quorum > 2 => limit / (quorum - 1),
            _ => limit,
        };
        st.throttle
            .limit
            .store(limit, std::sync::atomic::Ordering::Relaxed);
        if state == Some(ServerState::Looking) {
            st.metrics.add(Counter::LookingCount, 1);
            r.looking_since = Some(now);
            r.unavailable_since = Some(now);
        } else if let Some(t) = r.looking_since.take() {
            // ZooKeeper times the election when a voter starts leading or following (an
            // observer's search for its leader is not timed).
            if matches!(state, Some(ServerState::Leading | ServerState::Following)) {
                let ms = t.elapsed().as_millis() as i64;
                st.metrics.observe(Summary::ElectionTime, ms);
            }
        }
        r.state = state;
        r.since = Some(now);
        r.serving = false;
    }
    if serving && !r.serving {
        // ZooKeeper's unavailable time: from the start of the election to serving again.
        if let Some(t) = r.unavailable_since.take() {
            let ms = t.elapsed().as_millis() as i64;
            st.metrics.observe(Summary::UnavailableTime, ms);
            if state == Some(ServerState::Leading) {
                st.metrics.observe(Summary::LeaderUnavailableTime, ms);
            }
        }
        let took = r.since.map_or(0, |t| t.elapsed().as_millis() as i64);
        match state {
            Some(ServerState::Following) => st.metrics.observe(Summary::FollowerSyncTime, took),
            Some(ServerState::Observing) => st.metrics.observe(Summary::ObserverSyncTime, took),
            _ => {}
        }
    }
    r.serving = serving;
}

/// Carries what the core counted (per-namespace writes, watchers fired, quota refusals,
/// expired sessions) into the metrics.
fn carry_tally(st: &mut State) {
    use corral_proto::records::event_type;
    let t = st.node.take_tally();
    let m = &mut st.metrics;
    for (ns, bytes) in t.writes {
        m.observe_set("write_per_namespace", &ns, bytes);
    }
    for (event, n) in t.watchers_fired {
        let summary = match event {
            event_type::NODE_CREATED => Summary::NodeCreatedWatchCount,
            event_type::NODE_DELETED => Summary::NodeDeletedWatchCount,
            event_type::NODE_DATA_CHANGED => Summary::NodeChangedWatchCount,
            event_type::NODE_CHILDREN_CHANGED => Summary::NodeChildrenWatchCount,
            _ => continue,
        };
        m.observe(summary, n as i64);
    }
    for ns in t.quota_refused {
        m.add_to_set("quota_exceeded_error_per_namespace", &ns, 1);
    }
    m.add(Counter::StaleSessionsExpired, t.sessions_expired);
    // The leader's learner links: ZooKeeper's per-learner queue figures.
    if let (Some(peer), Some(q)) = (st.node.peer(), st.quorum.as_ref()) {
        // Runs after every batch: the learners' sids are looked up only when there is
        // something to file.
        let mut sids: Option<HashMap<u64, i64>> = None;
        for (conn, queue) in &q.learner_queues {
            let samples = queue.take();
            if samples.is_empty() {
                continue;
            }
            let sids = sids.get_or_insert_with(|| peer.learner_sids().into_iter().collect());
            let Some(sid) = sids.get(conn) else { continue };
            let key = sid.to_string();
            for (left, ms) in samples {
                st.metrics
                    .observe_set("learner_handler_qp_size", &key, left as i64);
                st.metrics
                    .observe_set("learner_handler_qp_time_ms", &key, ms as i64);
            }
        }
    }
    for (kind, ms) in st.node.take_latencies() {
        let summary = match kind {
            corral_node::TxnLatency::Proposal => Summary::ProposalLatency,
            corral_node::TxnLatency::QuorumAck => Summary::QuorumAckLatency,
            corral_node::TxnLatency::CommitPropagation => Summary::CommitPropagationLatency,
        };
        st.metrics.observe(summary, ms);
    }
}

/// Carries what the node and the connection tasks counted since the last look into the
/// metrics.
fn carry_counts(st: &mut State) {
    let now = *st.node.counters();
    let was = std::mem::replace(&mut st.node_seen, now);
    let m = &mut st.metrics;
    for (counter, now, was) in [
        (Counter::ProposalCount, now.proposals, was.proposals),
        (Counter::CommitCount, now.leader_commits, was.leader_commits),
        (
            Counter::DigestMismatchesCount,
            now.digest_mismatches,
            was.digest_mismatches,
        ),
        (
            Counter::LearnerProposalReceivedCount,
            now.learner_proposals,
            was.learner_proposals,
        ),
        (
            Counter::LearnerCommitReceivedCount,
            now.learner_commits,
            was.learner_commits,
        ),
        (Counter::DiffCount, now.diff_syncs, was.diff_syncs),
        (Counter::SnapCount, now.snap_syncs, was.snap_syncs),
        (
            Counter::RevalidateCount,
            now.revalidations,
            was.revalidations,
        ),
    ] {
        m.add(counter, now.saturating_sub(was));
    }
    let c = &st.auth_failed;
    for (counter, taken) in [
        (Counter::UnsuccessfulHandshake, &c.unsuccessful_handshake),
        (Counter::ConnectionRejected, &c.connection_rejected),
        (Counter::TlsHandshakeExceeded, &c.tls_handshake_exceeded),
        (Counter::RequestThrottleWaitCount, &st.throttle.waits),
    ] {
        m.add(counter, taken.swap(0, std::sync::atomic::Ordering::Relaxed));
    }
}

/// What the four-letter words and the AdminServer read (and reset).
fn view(st: &mut State) -> View<'_> {
    carry_counts(st);
    carry_tally(st);
    let observers = match (st.node.peer(), st.quorum.as_ref()) {
        (Some(p), Some(q)) => p
            .observer_conns()
            .into_iter()
            .filter_map(|(conn, sid)| q.learner_stats.get(&conn).map(|s| (sid, s.clone())))
            .collect(),
        _ => Vec::new(),
    };
    for (tx, cs) in st.conns.values_mut() {
        let handed = tx.sock.queued.load(std::sync::atomic::Ordering::Relaxed);
        cs.queued = handed + usize::from(!tx.outbox.is_empty());
    }
    let counted = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    View {
        node: &mut st.node,
        cfg: &st.cfg,
        stats: &mut st.stats,
        conns: st.conns.iter_mut().map(|(id, (_, cs))| (*id, cs)).collect(),
        uptime_ms: st.started.elapsed().as_millis() as u64,
        trace_mask: &mut st.trace_mask,
        my_sid: st.quorum.as_ref().map_or(0, |q| q.my_sid),
        fsync_threshold_exceeded: st.fsync_threshold_exceeded,
        auth_failed: counted(&st.auth_failed.auth_failed),
        handshakes_in_progress: counted(&st.auth_failed.handshakes_in_progress),
        drop_probability: st.conn_throttle.drop_probability(),
        non_mtls: (
            counted(&st.auth_failed.non_mtls_local),
            counted(&st.auth_failed.non_mtls_remote),
        ),
        metrics: &mut st.metrics,
        leader_uptime_ms: st.role.leader_uptime_ms(),
        in_process: st
            .throttle
            .in_process
            .load(std::sync::atomic::Ordering::Acquire),
        observers,
    }
}

pub(crate) async fn node_loop(mut st: State, mut rx: mpsc::Receiver<Event>) {
    let mut next_redial = Instant::now();
    execute_actions(&mut st);
    // One clock read per turn of the loop: the one taken after the batch also sizes the sleep.
    let mut now = st.clock.now();
    loop {
        let wake = st.node.poll_timeout();
        let mut sleep = Duration::from_millis(wake.saturating_sub(now.mono_ms).min(60_000));
        if st.quorum.is_some() {
            sleep = sleep.min(next_redial.saturating_duration_since(Instant::now()));
        }
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { return };
                handle_event(&mut st, ev);
                let mut n = 1;
                while n < EVENT_BATCH_MAX {
                    let Ok(ev) = rx.try_recv() else { break };
                    handle_event(&mut st, ev);
                    n += 1;
                }
                execute_actions(&mut st);
            }
            _ = tokio::time::sleep(sleep) => {}
        }
        track_role(&mut st);
        carry_tally(&mut st);
        // Timers, and with a snapshot walk pending one slice of it between batches.
        now = st.clock.now();
        if now.mono_ms >= st.node.poll_timeout() {
            st.node.handle_timeout(now);
            execute_actions(&mut st);
        }
        if let Some(q) = st.quorum.as_mut() {
            if Instant::now() >= next_redial {
                q.redial();
                next_redial = Instant::now() + REDIAL_EVERY;
            }
        }
    }
}

fn handle_event(st: &mut State, ev: Event) {
    let now = st.clock.now();
    match ev {
        Event::Quorum(q) => {
            if let Some(qio) = st.quorum.as_mut() {
                qio.handle_event(&mut st.node, now, q);
            }
        }
        Event::Open {
            conn,
            peer,
            tx,
            sock,
            x509,
        } => {
            let addr = peer.ip().to_string();
            st.node
                .handle(now, NodeEvent::ClientOpen { conn, addr, x509 });
            let out = ClientTx {
                tx,
                sock,
                outbox: Vec::new(),
                unsent_limit: crate::limits::UNSENT_BYTES_MIN
                    .max(2 * st.cfg.jute_max_buffer + (1 << 20)),
            };
            let cs = ConnStats::new(peer, now.wall_ms);
            st.conns.insert(conn, (out, cs));
        }
        Event::Connect { conn, connect, at } => {
            st.stats.packets_received += 1;
            let renew = connect.req.session_id != 0;
            let draw: f64 = rand::random();
            if !st.conn_throttle.admit(renew, now.mono_ms as i64, draw) {
                // ZooKeeper's ClientCnxnLimitException: closed, counted as rejected.
                st.metrics.add(Counter::ConnectionRejected, 1);
                warn!("connection {conn}: the connection throttle has no tokens left; closing it");
                close(st, conn);
                return;
            }
            let deficit = st.conn_throttle.deficit();
            st.metrics.observe(Summary::ConnectionTokenDeficit, deficit);
            st.metrics.add(Counter::ConnectionRequestCount, 1);
            // The frame's length prefix, then protocol version, last zxid, timeout, session id,
            // the password as a buffer, and the read-only flag when the client sent one.
            let passwd = connect.req.passwd.as_ref().map_or(0, Vec::len);
            let ro = usize::from(connect.read_only.is_some());
            let bytes = 4 + 4 + 8 + 4 + 8 + 4 + passwd + ro;
            st.metrics.add(Counter::BytesReceivedCount, bytes as u64);
            if renew {
                st.metrics.add(Counter::ConnectionRevalidateCount, 1);
            } else {
                // createSession goes through ZooKeeper's throttler like any request.
                let queued = at.elapsed().as_millis() as i64;
                st.metrics
                    .observe(Summary::RequestThrottleQueueTimeMs, queued);
                if let Some((_, cs)) = st.conns.get_mut(&conn) {
                    cs.session_asked = Some(at);
                }
            }
            if let Some((_, cs)) = st.conns.get_mut(&conn) {
                cs.received += 1;
            }
            st.node
                .handle(now, NodeEvent::ClientConnect { conn, connect });
        }
        Event::Request {
            conn,
            xid,
            req,
            at,
            len,
        } => {
            st.stats.packets_received += 1;
            st.metrics.add(Counter::BytesReceivedCount, len as u64 + 4);
            // ZooKeeper times every request from its arrival to its leaving the throttler.
            let queued = at.elapsed().as_millis() as i64;
            st.metrics
                .observe(Summary::RequestThrottleQueueTimeMs, queued);
            if let Some((_, cs)) = st.conns.get_mut(&conn) {
                cs.received += 1;
                let read = match &req {
                    Request::GetData(r) => Some((r.path.clone(), ReadKind::Data)),
                    Request::Exists(r) => Some((r.path.clone(), ReadKind::Exists)),
                    Request::GetChildren(r) => Some((r.path.clone(), ReadKind::Children)),
                    Request::GetChildren2(r) => Some((r.path.clone(), ReadKind::Children2)),
                    _ => None,
                };
                let write = req.is_write();
                let op = op_name(&req);
                cs.in_flight.push_back(InFlight {
                    at,
                    write,
                    read,
                    op,
                });
            }
            st.node
                .handle(now, NodeEvent::ClientRequest { conn, xid, req });
        }
        Event::Unimplemented { conn, xid } => {
            st.stats.packets_received += 1;
            warn!("closing connection {conn}: unknown request type (xid {xid})");
            st.node
                .handle(now, NodeEvent::ClientUnimplemented { conn, xid });
            // The reader ends the connection next (its Closed event may be in this batch):
            // the reply must reach the socket first.
            execute_actions(st);
        }
        Event::Malformed { conn, xid, op_type } => {
            st.stats.packets_received += 1;
            warn!("connection {conn}: malformed request of type {op_type} (xid {xid}), answering MarshallingError");
            st.node
                .handle(now, NodeEvent::ClientMalformed { conn, xid, op_type });
        }
        Event::Closed { conn, by_client } => {
            // ZooKeeper's connection_drop_count: a failed read on a connection the server
            // had not begun to close.
            let open = st.node.core().conn(conn).is_some_and(|c| !c.closing);
            if by_client && open {
                st.metrics.add(Counter::ConnectionDropCount, 1);
            }
            if let Some((tx, _)) = st.conns.get(&conn) {
                // Its unanswered requests leave the count with it.
                st.throttle.answered(&tx.sock, usize::MAX);
            }
            st.node.handle(now, NodeEvent::ClientClosed { conn });
            st.conns.remove(&conn);
        }
        Event::FourLetter {
            word,
            arg,
            peer,
            reply,
        } => {
            if let Some(mask) = arg {
                st.trace_mask = mask;
            }
            // ZooKeeper counts the word as a packet (of its 4 bytes) before answering it.
            st.stats.packets_received += 1;
            st.metrics.add(Counter::BytesReceivedCount, 4);
            execute_actions(st);
            let text = fourlw::run(&mut view(st), &word, peer);
            let _ = reply.send(text);
        }
        Event::Admin {
            command,
            args,
            reply,
        } => {
            execute_actions(st);
            let answer = crate::admin::run(&mut view(st), command, &args);
            let _ = reply.send(answer);
        }
        Event::StorageDone(ev) => st.node.handle(now, ev),
        Event::Observe(summary, value) => {
            st.metrics.observe(summary, value);
            if summary == Summary::Snapshottime {
                st.metrics.observe_own(own::SNAPSHOT_WRITE_MS, "", value);
            }
        }
        Event::Backup { what, reply } => {
            execute_actions(st);
            let answer = crate::admin::backup(&mut view(st), what, now);
            // A restore closed every client connection.
            execute_actions(st);
            let _ = reply.send(answer);
        }
        Event::Prometheus { reply } => {
            execute_actions(st);
            let _ = reply.send(crate::metrics_http::render(&mut view(st)));
        }
    }
}

/// Execute the node's actions in order until it has none; then write every connection's
/// outbox (the end of a batch).
fn execute_actions(st: &mut State) {
    while let Some(a) = st.node.poll_action() {
        execute(st, a);
    }
    for conn in std::mem::take(&mut st.dirty) {
        if let Some((tx, cs)) = st.conns.get_mut(&conn) {
            if let Err(unsent) = tx.flush() {
                warn!(
                    "client {} on connection {conn} leaves {unsent} bytes of replies unread \
                     (more than {}): cutting it off",
                    cs.peer, tx.unsent_limit
                );
            }
        }
    }
}

fn execute(st: &mut State, a: Action) {
    match a {
        Action::Send { conn, frame } => send(st, conn, frame),
        Action::Close { conn } => close(st, conn),
        Action::Sync => {
            let t0 = Instant::now();
            let now = st.clock.now();
            let node = &mut st.node;
            tokio::task::block_in_place(|| node.handle_sync(now));
            let ms = t0.elapsed().as_millis() as i64;
            st.metrics.observe(Summary::Fsynctime, ms);
            st.metrics.observe_own(own::FSYNC_MS, "", ms);
            let txns = st.node.counters().txns;
            let batch = txns - std::mem::replace(&mut st.txns_at_sync, txns);
            st.metrics
                .observe(Summary::SyncProcessorBatchSize, batch as i64);
            st.metrics
                .observe_own(own::FSYNC_BATCH_TXNS, "", batch as i64);
            if ms > st.cfg.fsync_warning_threshold_ms {
                st.fsync_threshold_exceeded += 1;
                warn!(
                    "fsync of the txn log took {ms} ms, above fsync.warningthresholdms={}",
                    st.cfg.fsync_warning_threshold_ms
                );
            }
        }
        Action::WriteSnapshot { zxid, raw, nodes } => {
            let opts = st.store_options.clone();
            let events = st.events.clone();
            std::thread::spawn(move || {
                let t0 = Instant::now();
                let result = FileStore::new(RealDisk::default(), opts)
                    .and_then(|mut store| store.write_snapshot(zxid, &raw))
                    .map(|path| {
                        let ms = t0.elapsed().as_millis() as i64;
                        let _ = events.blocking_send(Event::Observe(Summary::Snapshottime, ms));
                        info!(
                            "snapshot {} written: {nodes} znodes, {} bytes uncompressed, in {} ms",
                            path.display(),
                            raw.len(),
                            t0.elapsed().as_millis()
                        );
                    })
                    .map_err(|e| e.to_string());
                let ev = NodeEvent::SnapshotWritten { result };
                let _ = events.blocking_send(Event::StorageDone(ev));
            });
        }
        Action::Purge { retain } => {
            let opts = st.store_options.clone();
            let events = st.events.clone();
            std::thread::spawn(move || {
                let result = FileStore::new(RealDisk::default(), opts)
                    .and_then(|mut store| store.purge(retain))
                    .map_err(|e| e.to_string());
                let ev = NodeEvent::PurgeDone { result };
                let _ = events.blocking_send(Event::StorageDone(ev));
            });
        }
        Action::Fatal { what } => {
            error!("{what}; stopping without acknowledging more");
            std::process::exit(2);
        }
        other => {
            let now = st.clock.now();
            match st.quorum.as_mut() {
                Some(q) => {
                    if let Err(a) = q.execute(&mut st.node, now, other) {
                        unreachable!("an action the node task does not know: {a:?}");
                    }
                }
                None => unreachable!("a standalone node asked for a quorum action: {other:?}"),
            }
        }
    }
}

/// A request's operation as `corral_request_latency_ms` labels it: the client API's name for
/// it (`cons`' `lop` uses ZooKeeper's short names instead, `corral_tree`'s `op_name`).
fn op_name(req: &Request) -> &'static str {
    match req {
        Request::Create(_) | Request::Create2(_) => "create",
        Request::CreateContainer(_) => "createContainer",
        Request::CreateTtl(_) => "createTTL",
        Request::Delete(_) => "delete",
        Request::Exists(_) => "exists",
        Request::GetData(_) => "getData",
        Request::SetData(_) => "setData",
        Request::GetAcl(_) => "getACL",
        Request::SetAcl(_) => "setACL",
        Request::GetChildren(_) | Request::GetChildren2(_) => "getChildren",
        Request::Sync(_) => "sync",
        Request::Ping => "ping",
        Request::Check(_) => "check",
        Request::Multi(_) => "multi",
        Request::MultiRead(_) => "multiRead",
        Request::Reconfig(_) => "reconfig",
        Request::CheckWatches(_) => "checkWatches",
        Request::RemoveWatches(_) => "removeWatches",
        Request::AddWatch(_) => "addWatch",
        Request::SetWatches(_) | Request::SetWatches2(_) => "setWatches",
        Request::GetEphemerals(_) => "getEphemerals",
        Request::GetAllChildrenNumber(_) => "getAllChildrenNumber",
        Request::WhoAmI => "whoAmI",
        Request::CloseSession => "closeSession",
        Request::Auth(_) => "auth",
        Request::Sasl(_) => "sasl",
    }
}

/// ZooKeeper's bytes of a read for `read_per_namespace`: the path, what was read (data, or
/// the children's names) and a stat's worth, for reads that found their node.
fn note_read(metrics: &mut Metrics, path: &str, kind: ReadKind, frame: &[u8]) {
    const STAT_BYTES: i64 = 6 * 8 + 5 * 4;
    let Some(ns) = path.split('/').nth(1).filter(|n| !n.is_empty()) else {
        return;
    };
    let int = |at: usize| {
        frame
            .get(at..at + 4)
            .map_or(0, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64)
    };
    // length, xid, zxid, err, then the reply's record.
    if frame.len() < 20 || int(16) != 0 {
        return;
    }
    let body = frame.len() as i64 - 20;
    let read = match kind {
        ReadKind::Data => int(20).max(0),
        ReadKind::Exists => 0,
        ReadKind::Children => body - 4 - 4 * int(20),
        ReadKind::Children2 => body - 4 - 4 * int(20) - STAT_BYTES,
    };
    let bytes = path.len() as i64 + read + STAT_BYTES;
    metrics.observe_set("read_per_namespace", ns, bytes);
}

fn send(st: &mut State, conn: ConnId, frame: Vec<u8>) {
    if let Some((tx, cs)) = st.conns.get_mut(&conn) {
        st.stats.packets_sent += 1;
        cs.sent += 1;
        // The first frame is the connect response, which ZooKeeper writes without counting
        // it among response sizes.
        let greeting = !std::mem::replace(&mut cs.greeted, true);
        let reply_xid = (frame.len() >= 8)
            .then(|| i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]));
        let body = frame.len().saturating_sub(4) as u64;
        match reply_xid {
            _ if greeting => {
                // A new session's createSession went through like a write.
                if let Some(at) = cs.session_asked.take() {
                    let ms = at.elapsed().as_millis() as u64;
                    st.metrics.observe(Summary::Updatelatency, ms as i64);
                    st.stats.latency.add(ms);
                }
            }
            None => {}
            Some(xid::NOTIFICATION) => {
                st.metrics.add(Counter::WatchBytes, body);
                st.stats.add_response(body as i64);
            }
            Some(other) => {
                // Auth replies are sent outside ZooKeeper's final request processor, and ping
                // replies leave it before it counts.
                if other != xid::AUTH && other != xid::PING {
                    st.metrics.add(Counter::ResponseBytes, body);
                }
                st.stats.add_response(body as i64);
            }
        }
        if !greeting && reply_xid.is_some_and(|x| x > 0) {
            st.throttle.answered(&tx.sock, 1);
        }
        // A reply (not a watch event) completes the oldest request in flight on the connection.
        if !greeting && reply_xid.is_some_and(|x| x != xid::NOTIFICATION) {
            if let Some(InFlight {
                at,
                write,
                read,
                op,
            }) = cs.in_flight.pop_front()
            {
                if let Some((path, kind)) = read {
                    note_read(&mut st.metrics, &path, kind, &frame);
                }
                let ms = at.elapsed().as_millis() as u64;
                st.metrics
                    .observe_own(own::REQUEST_LATENCY_MS, op, ms as i64);
                let latency = if write {
                    Summary::Updatelatency
                } else {
                    Summary::Readlatency
                };
                st.metrics.observe(latency, ms as i64);
                st.stats.latency.add(ms);
                cs.latency.add(ms);
                cs.last_latency_ms = ms;
                cs.last_response_wall_ms = st.clock.now().wall_ms;
            }
        }
        if tx.outbox.is_empty() {
            st.dirty.push(conn);
        }
        tx.outbox.extend_from_slice(&frame);
    }
}

fn close(st: &mut State, conn: ConnId) {
    if let Some((tx, _)) = st.conns.get_mut(&conn) {
        // A client over its unread limit is being cut off anyway.
        let _ = tx.flush();
        let _ = tx.tx.send(WriterMsg::Close);
    }
}
