//! Tokio glue for a standalone server: the client listener, one reader and one writer task per
//! connection, and one task that owns the sans-IO `Core` and feeds it events in arrival order.
//! All protocol decisions live in `corral_tree::core`; this file only moves bytes and time.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corral_proto::jute::{Jute, Reader};
use corral_proto::records::{op, RequestHeader};
use corral_proto::request::{reply_frame, Connect, Request};
use corral_proto::DecodeError;
use corral_tree::core::{Core, CoreConfig, Now, Output};
use corral_tree::ConnId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::config::ServerConfig;
use crate::fourlw::{self, FOUR_LETTER_WORDS};
use crate::stats::{ConnStats, ServerStats};
use crate::storage::Storage;

/// Bound of the queue from connection readers to the core task; readers wait when it is full,
/// which pushes back on clients instead of growing memory.
const EVENT_QUEUE_BOUND: usize = 4096;
/// A connection that has not sent its ConnectRequest within this time is closed
/// (`zookeeper.nio.sessionlessCnxnTimeout` default).
const SESSIONLESS_TIMEOUT: Duration = Duration::from_secs(10);

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
}

pub(crate) enum WriterMsg {
    Frame(Vec<u8>),
    Close,
}

/// The write half of a client socket, shared by the core task (which writes a batch's replies
/// straight to it when nothing is queued before them, saving a hand-over to another task per
/// reply) and the connection's writer task (which writes what the socket did not take at once).
pub(crate) struct ClientSock {
    wr: tokio::net::tcp::OwnedWriteHalf,
    /// Buffers handed to the writer task and not yet fully written by it.
    queued: AtomicUsize,
}

/// The core task's handle on a client connection's output.
pub(crate) struct ClientTx {
    tx: mpsc::UnboundedSender<WriterMsg>,
    sock: Arc<ClientSock>,
    /// This batch's frames, written together when the batch is flushed.
    outbox: Vec<u8>,
}

impl ClientTx {
    /// Write the outbox: straight to the socket while it takes bytes and nothing is queued
    /// before them, the rest through the writer task (in order: once something is queued, all
    /// later bytes are queued behind it).
    fn flush(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let mut off = 0;
        if self.sock.queued.load(Ordering::Acquire) == 0 {
            while off < self.outbox.len() {
                match self.sock.wr.try_write(&self.outbox[off..]) {
                    Ok(0) => break,
                    Ok(n) => off += n,
                    // WouldBlock: the writer waits for the socket; any other error: the
                    // writer meets it too and ends the connection.
                    Err(_) => break,
                }
            }
        }
        if off == self.outbox.len() {
            self.outbox.clear();
            return;
        }
        let rest = if off == 0 {
            std::mem::take(&mut self.outbox)
        } else {
            let rest = self.outbox[off..].to_vec();
            self.outbox.clear();
            rest
        };
        self.sock.queued.fetch_add(1, Ordering::AcqRel);
        let _ = self.tx.send(WriterMsg::Frame(rest));
    }
}

pub(crate) enum Event {
    /// Election and quorum connections of an ensemble member.
    Quorum(crate::ensemble::QEvent),
    Open {
        conn: ConnId,
        peer: SocketAddr,
        tx: mpsc::UnboundedSender<WriterMsg>,
        sock: Arc<ClientSock>,
    },
    Connect {
        conn: ConnId,
        connect: Connect,
    },
    Request {
        conn: ConnId,
        xid: i32,
        req: Request,
        at: Instant,
        len: usize,
    },
    Unimplemented {
        conn: ConnId,
        xid: i32,
    },
    Malformed {
        conn: ConnId,
        xid: i32,
        op_type: i32,
    },
    Closed {
        conn: ConnId,
    },
    FourLetter {
        word: String,
        peer: SocketAddr,
        reply: oneshot::Sender<String>,
    },
}

/// The clocks handed to the core. The monotonic clock is anchored at the wall clock at start-up
/// so session ids (which embed it) differ across restarts, like ZooKeeper's do in practice.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
    start_ms: u64,
}

impl Clock {
    fn new() -> Clock {
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

/// What the core task needs besides the core itself; the 4lw formatter reads it too.
pub(crate) struct State {
    pub core: Core,
    pub cfg: ServerConfig,
    pub stats: ServerStats,
    pub conns: HashMap<ConnId, (ClientTx, ConnStats)>,
    /// Connections with frames in their outbox.
    pub dirty: Vec<ConnId>,
    pub storage: Box<dyn Storage>,
    pub started: Instant,
    pub clock: Clock,
    /// Set when this server is an ensemble member.
    pub quorum: Option<crate::ensemble::Quorum>,
}

pub struct Server {
    listener: TcpListener,
    state: State,
    events: (mpsc::Sender<Event>, mpsc::Receiver<Event>),
    quorum_listeners: Option<crate::ensemble::Listeners>,
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
        },
        extended_types: cfg.extended_types_enabled,
        reconfig_enabled: cfg.reconfig_enabled,
        close_session_txn_enabled: cfg.close_session_txn_enabled,
        container_check_interval_ms: cfg.container_check_interval_ms.max(1),
        container_max_per_minute: cfg.container_max_per_minute,
        container_max_never_used_interval_ms: cfg.container_max_never_used_interval_ms,
    }
}

impl Server {
    /// Load the data, then bind the client port: the port only opens once reads can be served.
    pub async fn bind(
        cfg: ServerConfig,
        mut storage: Box<dyn Storage>,
    ) -> Result<Server, ServerError> {
        if let Some(p) = cfg.secure_client_port {
            warn!("secureClientPort={p} ignored: TLS is not supported yet");
        }
        for (name, class) in &cfg.auth_providers {
            warn!("authProvider {name}={class} ignored: only the built-in digest and ip providers are supported");
        }
        let distributed = cfg.is_distributed();
        let (my_sid, me) = if distributed {
            let sid = crate::ensemble::read_myid(&cfg).map_err(ServerError::Unsupported)?;
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
        let loaded = storage.load().map_err(ServerError::Storage)?;
        let clock = Clock::new();
        let mut core_cfg = core_config(&cfg);
        if distributed {
            // Session ids carry the id of the server that created them.
            core_cfg.server_id = my_sid as u8;
        }
        let recent_txns = loaded.recent_txns;
        let mut core = Core::with_state(core_cfg, clock.now(), loaded.tree, &loaded.sessions);
        info!(
            "loaded {} (start-up took {} ms)",
            loaded.summary,
            t0.elapsed().as_millis()
        );
        let events = mpsc::channel::<Event>(EVENT_QUEUE_BOUND);
        let (quorum, quorum_listeners) = match &me {
            None => (None, None),
            Some(me) => {
                core.set_role(clock.now(), corral_tree::core::Role::Learner);
                core.set_serving(false);
                let last = core.last_zxid();
                let epoch_of_last = corral_proto::quorum::epoch_of(last);
                let current = storage
                    .read_epoch("currentEpoch")
                    .map_err(ServerError::Storage)?;
                let accepted = storage
                    .read_epoch("acceptedEpoch")
                    .map_err(ServerError::Storage)?;
                let current = match current {
                    Some(c) => c,
                    None => {
                        storage
                            .write_epoch("currentEpoch", epoch_of_last)
                            .map_err(ServerError::Storage)?;
                        epoch_of_last
                    }
                };
                let accepted = match accepted {
                    Some(a) => a,
                    None => {
                        storage
                            .write_epoch("acceptedEpoch", current)
                            .map_err(ServerError::Storage)?;
                        current
                    }
                };
                // A learner that loaded a leader's SNAP holds data of an epoch it has accepted
                // but whose NEWLEADER it had not seen when it stopped (sim seed 378): that data
                // is the leader's committed history, so its epoch becomes current.
                let current = if current < epoch_of_last && accepted >= epoch_of_last {
                    warn!("currentEpoch {current} is behind the data (last zxid 0x{last:x}) of accepted epoch {accepted}: raising it to {epoch_of_last}");
                    storage
                        .write_epoch("currentEpoch", epoch_of_last)
                        .map_err(ServerError::Storage)?;
                    epoch_of_last
                } else {
                    current
                };
                if current < epoch_of_last || accepted < current {
                    return Err(ServerError::Unsupported(format!(
                        "epoch files are behind the data: currentEpoch {current}, acceptedEpoch {accepted}, last zxid 0x{last:x}"
                    )));
                }
                info!("last zxid 0x{last:x}, currentEpoch {current}, acceptedEpoch {accepted}");
                let durable = corral_zab::Durable {
                    last_zxid: last,
                    last_applied_zxid: last,
                    accepted_epoch: accepted,
                    current_epoch: current,
                    // Only txns the tree reflects, ending at its zxid (the peer's contract).
                    committed_log: recent_txns
                        .into_iter()
                        .filter(|(z, _)| *z <= last)
                        .collect(),
                    log_tail: Vec::new(),
                };
                let listeners = crate::ensemble::bind_listeners(me)
                    .await
                    .map_err(ServerError::Storage)?;
                let q = crate::ensemble::Quorum::new(
                    &cfg,
                    my_sid,
                    durable,
                    clock.now().mono_ms,
                    events.0.clone(),
                );
                (Some(q), Some(listeners))
            }
        };
        let addr = match &me {
            Some(me) => crate::ensemble::client_address(&cfg, me),
            None => cfg.client_address(),
        }
        .ok_or_else(|| ServerError::Unsupported("no clientPort configured".into()))?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        info!(
            "serving clients on {}",
            listener.local_addr().map_err(ServerError::Storage)?
        );
        let mut state = State {
            core,
            cfg,
            stats: ServerStats::default(),
            conns: HashMap::new(),
            dirty: Vec::new(),
            storage,
            started: Instant::now(),
            clock,
            quorum,
        };
        crate::ensemble::install_config_node(&mut state);
        Ok(Server {
            listener,
            state,
            events,
            quorum_listeners,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
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
            state,
            events: (ev_tx, ev_rx),
            quorum_listeners,
        } = self;
        let max_per_ip = state.cfg.max_client_cnxns as usize;
        let max_frame = state.cfg.jute_max_buffer;
        let whitelist = state.cfg.four_letter_whitelist.clone();
        let mut quorum_tasks = Vec::new();
        if let (Some(l), Some(q)) = (quorum_listeners, state.quorum.as_ref()) {
            let max_packet = state.cfg.jute_max_buffer + (1 << 20);
            quorum_tasks.push(tokio::spawn(crate::ensemble::election_listener(
                l.election,
                q.my_sid,
                ev_tx.clone(),
            )));
            quorum_tasks.push(tokio::spawn(crate::ensemble::quorum_listener(
                l.quorum,
                max_packet,
                ev_tx.clone(),
            )));
        }
        let core_task = tokio::spawn(core_loop(state, ev_rx));
        let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
        let mut next_conn: ConnId = 1;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (sock, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => { warn!("accept failed: {e}"); tokio::time::sleep(Duration::from_millis(10)).await; continue; }
                    };
                    {
                        let mut m = per_ip.lock().expect("per-ip map lock");
                        let n = m.entry(peer.ip()).or_insert(0);
                        if max_per_ip != 0 && *n >= max_per_ip {
                            warn!("too many connections from {} - max is {max_per_ip}", peer.ip());
                            drop(sock);
                            continue;
                        }
                        *n += 1;
                    }
                    let _ = sock.set_nodelay(true);
                    let conn = next_conn;
                    next_conn += 1;
                    let ev_tx = ev_tx.clone();
                    let per_ip = per_ip.clone();
                    let whitelist = whitelist.clone();
                    tokio::spawn(async move {
                        connection(conn, sock, peer, ev_tx, max_frame, whitelist).await;
                        let mut m = per_ip.lock().expect("per-ip map lock");
                        if let Some(n) = m.get_mut(&peer.ip()) {
                            *n -= 1;
                            if *n == 0 { m.remove(&peer.ip()); }
                        }
                    });
                }
            }
        }
        info!("shutting down");
        for t in quorum_tasks {
            t.abort();
        }
        drop(listener);
        drop(ev_tx);
        core_task.abort();
        let _ = core_task.await;
        Ok(())
    }
}

/// Most events handled before their outputs are flushed together (group commit: one fsync
/// covers every write in the batch).
const EVENT_BATCH_MAX: usize = 1024;

async fn core_loop(mut st: State, mut rx: mpsc::Receiver<Event>) {
    let mut busy = false;
    flush_outputs(&mut st);
    loop {
        let now_ms = st.clock.now().mono_ms;
        let mut wake = st.core.next_wakeup_ms();
        if let Some(q) = &st.quorum {
            wake = wake.min(q.next_wakeup(now_ms));
        }
        // With background work (a snapshot walk) pending, only poll for events before the next
        // slice of it.
        let sleep = if busy {
            Duration::ZERO
        } else {
            Duration::from_millis(wake.saturating_sub(now_ms).min(60_000))
        };
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
                flush_outputs(&mut st);
            }
            _ = tokio::time::sleep(sleep) => {
                let now = st.clock.now();
                st.core.handle_tick(now);
                if let Some(q) = st.quorum.as_mut() {
                    q.peer.handle_timeout(now.mono_ms);
                    q.redial();
                }
                flush_outputs(&mut st);
            }
        }
        busy = match st.storage.work(st.core.tree()) {
            Ok(more) => more,
            Err(e) => {
                tracing::error!("cannot write a snapshot: {e}; stopping");
                std::process::exit(2);
            }
        };
    }
}

fn handle_event(st: &mut State, ev: Event) {
    let now = st.clock.now();
    match ev {
        Event::Quorum(q) => crate::ensemble::handle_quorum_event(st, q),
        Event::Open {
            conn,
            peer,
            tx,
            sock,
        } => {
            st.core.handle_open(conn, peer.ip().to_string());
            let out = ClientTx {
                tx,
                sock,
                outbox: Vec::new(),
            };
            st.conns
                .insert(conn, (out, ConnStats::new(peer, now.wall_ms)));
        }
        Event::Connect { conn, connect } => {
            st.stats.packets_received += 1;
            if let Some((_, cs)) = st.conns.get_mut(&conn) {
                cs.received += 1;
            }
            st.core.handle_connect(now, conn, &connect);
        }
        Event::Request {
            conn,
            xid,
            req,
            at,
            len,
        } => {
            st.stats.packets_received += 1;
            st.stats.bytes_received += len as u64 + 4;
            if let Some((_, cs)) = st.conns.get_mut(&conn) {
                cs.received += 1;
                cs.in_flight.push_back(at);
            }
            st.core.handle_request(now, conn, xid, req);
        }
        Event::Unimplemented { conn, xid } => {
            st.stats.packets_received += 1;
            warn!("closing connection {conn}: unknown request type (xid {xid})");
            // Queue behind whatever the core has pending for this connection.
            flush_outputs(st);
            send(
                st,
                conn,
                reply_frame(xid, -1, corral_proto::ErrorCode::Unimplemented.code(), &[]),
            );
            close(st, conn);
        }
        Event::Malformed { conn, xid, op_type } => {
            st.stats.packets_received += 1;
            warn!("connection {conn}: malformed request of type {op_type} (xid {xid}), answering MarshallingError");
            st.core.handle_malformed(now, conn, xid, op_type);
        }
        Event::Closed { conn } => {
            st.core.handle_closed(conn);
            st.conns.remove(&conn);
        }
        Event::FourLetter { word, peer, reply } => {
            flush_outputs(st);
            let text = fourlw::run(st, &word, peer);
            let _ = reply.send(text);
        }
    }
}

pub(crate) fn send(st: &mut State, conn: ConnId, frame: Vec<u8>) {
    if let Some((tx, cs)) = st.conns.get_mut(&conn) {
        st.stats.packets_sent += 1;
        cs.sent += 1;
        // A reply (not a watch event) completes the oldest request in flight on the connection.
        if frame.len() >= 8 && frame[4..8] != [0xff, 0xff, 0xff, 0xff] {
            if let Some(at) = cs.in_flight.pop_front() {
                let ms = at.elapsed().as_millis() as u64;
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

pub(crate) fn close(st: &mut State, conn: ConnId) {
    if let Some((tx, _)) = st.conns.get_mut(&conn) {
        tx.flush();
        let _ = tx.tx.send(WriterMsg::Close);
    }
}

/// Write every connection's outbox (the end of a batch of events).
fn flush_conns(st: &mut State) {
    for conn in std::mem::take(&mut st.dirty) {
        if let Some((tx, _)) = st.conns.get_mut(&conn) {
            tx.flush();
        }
    }
}

/// Execute the core's outputs in order. Frames wait until every txn appended before them is
/// durable: all appends of the batch are written and synced once, then the frames go out.
fn flush_outputs(st: &mut State) {
    if st.quorum.is_some() {
        crate::ensemble::flush(st);
    } else {
        flush_core_outputs(st);
    }
    flush_conns(st);
}

fn flush_core_outputs(st: &mut State) {
    let mut pending: Vec<(ConnId, Option<Vec<u8>>)> = Vec::new();
    let mut unsynced = false;
    while let Some(o) = st.core.poll_output() {
        match o {
            Output::Append(txn) => {
                st.stats.txns += 1;
                if let Err(e) = st.storage.append(&txn) {
                    tracing::error!(
                        "cannot persist txn 0x{:x}: {e}; stopping without acknowledging",
                        txn.zxid()
                    );
                    std::process::exit(2);
                }
                unsynced = true;
            }
            Output::Send { conn, frame } => pending.push((conn, Some(frame))),
            o @ (Output::Submit(_) | Output::Revalidate { .. }) => {
                unreachable!("the standalone server has no ZAB peer: {o:?}")
            }
            Output::Close { conn } => pending.push((conn, None)),
        }
    }
    if unsynced {
        // Never acknowledge what could not be made durable: stop instead (ZooKeeper exits too).
        let storage = &mut st.storage;
        if let Err(e) = tokio::task::block_in_place(|| storage.sync()) {
            tracing::error!("cannot write the txn log: {e}; stopping without acknowledging");
            std::process::exit(2);
        }
        // The session list is only built when a snapshot actually starts, not on every flush.
        if let Err(e) = st.storage.after_sync(st.core.tree(), st.core.sessions()) {
            tracing::error!("cannot write a snapshot: {e}; stopping");
            std::process::exit(2);
        }
    }
    for (conn, frame) in pending {
        match frame {
            Some(f) => send(st, conn, f),
            None => close(st, conn),
        }
    }
}

/// Writes what the node task queues for one connection (client, election or quorum), flushing
/// whenever the queue runs dry, until `Close` or a write error; then flushes and shuts down.
pub(crate) async fn write_loop(
    wr: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
) {
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    while let Some(m) = rx.recv().await {
        match m {
            WriterMsg::Frame(f) => {
                if w.write_all(&f).await.is_err() {
                    break;
                }
                if rx.is_empty() && w.flush().await.is_err() {
                    break;
                }
            }
            WriterMsg::Close => break,
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

/// Writes what the core could not write straight to a client socket, in order, until `Close`
/// or a write error.
async fn client_write_loop(sock: Arc<ClientSock>, mut rx: mpsc::UnboundedReceiver<WriterMsg>) {
    while let Some(m) = rx.recv().await {
        let WriterMsg::Frame(f) = m else { break };
        let mut off = 0;
        while off < f.len() {
            match sock.wr.try_write(&f[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if sock.wr.writable().await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        sock.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One client connection: the reader runs here, the writer in its own task.
async fn connection(
    conn: ConnId,
    sock: TcpStream,
    peer: SocketAddr,
    ev: mpsc::Sender<Event>,
    max_frame: usize,
    whitelist: crate::config::FourLetterWhitelist,
) {
    let (rd, wr) = sock.into_split();
    // Pipelined requests arrive many to a read.
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    // First four bytes: a four-letter word or the length of the ConnectRequest.
    let mut head = [0u8; 4];
    match tokio::time::timeout(SESSIONLESS_TIMEOUT, rd.read_exact(&mut head)).await {
        Ok(Ok(_)) => {}
        _ => return,
    }
    if let Some(word) = FOUR_LETTER_WORDS.iter().find(|w| w.as_bytes() == head) {
        let text = if whitelist.allows(word) {
            let (tx, rx) = oneshot::channel();
            if ev
                .send(Event::FourLetter {
                    word: word.to_string(),
                    peer,
                    reply: tx,
                })
                .await
                .is_err()
            {
                return;
            }
            rx.await.unwrap_or_default()
        } else {
            format!("{word} is not executed because it is not in the whitelist.\n")
        };
        let mut wr = wr;
        let _ = wr.write_all(text.as_bytes()).await;
        let _ = wr.shutdown().await;
        return;
    }
    let (tx, rx) = mpsc::unbounded_channel::<WriterMsg>();
    let sock = Arc::new(ClientSock {
        wr,
        queued: AtomicUsize::new(0),
    });
    if ev
        .send(Event::Open {
            conn,
            peer,
            tx,
            sock: sock.clone(),
        })
        .await
        .is_err()
    {
        return;
    }
    let mut writer = tokio::spawn(client_write_loop(sock, rx));
    // The connection ends when the client goes away, when its input is bad, or when the core
    // closes it (the writer then stops after flushing what was queued before the close).
    let reason = tokio::select! {
        r = read_frames(conn, &mut rd, head, &ev, max_frame, peer) => Some(r),
        _ = &mut writer => None,
    };
    match &reason {
        Some(Ok(())) => debug!("connection {conn} from {peer} closed by client"),
        Some(Err(why)) => warn!("closing connection {conn} from {peer}: {why}"),
        None => debug!("connection {conn} from {peer} closed by server"),
    }
    let _ = ev.send(Event::Closed { conn }).await;
    if reason.is_some() {
        // Let the writer finish what the core queued (e.g. an error reply) unless it is stuck.
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    }
}

async fn read_frames<R: AsyncRead + Unpin>(
    conn: ConnId,
    rd: &mut R,
    mut head: [u8; 4],
    ev: &mpsc::Sender<Event>,
    max_frame: usize,
    peer: SocketAddr,
) -> Result<(), String> {
    let mut first = true;
    let mut buf = Vec::new();
    loop {
        if !first {
            match rd.read_exact(&mut head).await {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
        let len = i32::from_be_bytes(head);
        if len < 0 || len as usize > max_frame {
            return Err(format!(
                "packet length {len} is out of range (jute.maxbuffer is {max_frame})"
            ));
        }
        buf.resize(len as usize, 0);
        rd.read_exact(&mut buf)
            .await
            .map_err(|e| format!("read error: {e}"))?;
        if first {
            first = false;
            let connect =
                Connect::read(&buf).map_err(|e| format!("malformed ConnectRequest: {e}"))?;
            debug!(
                "connection {conn} from {peer}: connect session 0x{:x}",
                connect.req.session_id
            );
            ev.send(Event::Connect { conn, connect })
                .await
                .map_err(|_| "server stopping".to_string())?;
            continue;
        }
        let at = Instant::now();
        let mut r = Reader::with_max_len(&buf, max_frame);
        let h =
            RequestHeader::read(&mut r).map_err(|e| format!("malformed request header: {e}"))?;
        match Request::read(h.r#type, &mut r) {
            Ok(req) => {
                ev.send(Event::Request {
                    conn,
                    xid: h.xid,
                    req,
                    at,
                    len: buf.len(),
                })
                .await
                .map_err(|_| "server stopping".to_string())?;
            }
            Err(DecodeError::UnknownOpCode(_)) => {
                let _ = ev.send(Event::Unimplemented { conn, xid: h.xid }).await;
                return Err(format!("unknown request type {}", h.r#type));
            }
            // Auth and SASL packets are handled before ZooKeeper's pipeline: a bad one closes
            // the connection. Anything else is answered with MarshallingError.
            Err(e) if matches!(h.r#type, op::AUTH | op::SASL) => {
                return Err(format!("malformed request (type {}): {e}", h.r#type))
            }
            Err(_) => {
                ev.send(Event::Malformed {
                    conn,
                    xid: h.xid,
                    op_type: h.r#type,
                })
                .await
                .map_err(|_| "server stopping".to_string())?;
            }
        }
    }
}
