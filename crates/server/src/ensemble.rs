//! Tokio glue for an ensemble member: the election listener and dialers (QuorumCnxManager's
//! connection rules, reference §4.2), the leader's quorum listener, the learner's connection to
//! its leader (with the SNAP payload read off the stream, §4.7), and the loop that feeds the
//! sans-IO ZAB peer and the core and executes what they ask for, in order. All protocol
//! decisions live in `corral_zab` and `corral_tree::core`.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use corral_proto::quorum::{
    self, packet_type, ElectionHeader, ForwardedRequest, Notification, QuorumConfig, QuorumMember,
    QuorumPacket, ServerState,
};
use corral_proto::txn::Txn;
use corral_storage::snapshot;
use corral_tree::core::{Output as CoreOutput, Role, Submitted};
use corral_zab::{Durable, Input, Output, Peer, PeerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::config::{ServerConfig, ServerEntry};
use crate::server::{close, send, write_loop, Event, State, WriterMsg};

/// Quorum-side events, delivered to the node task in arrival order.
pub(crate) enum QEvent {
    ElectionUp {
        sid: i64,
        id: u64,
        tx: mpsc::UnboundedSender<WriterMsg>,
    },
    Election {
        from: i64,
        payload: Vec<u8>,
    },
    ElectionDown {
        sid: i64,
        id: u64,
    },
    /// A smaller sid connected to us; the rule says we dial back (§4.2).
    DialBack {
        sid: i64,
    },
    LearnerUp {
        conn: u64,
        tx: mpsc::UnboundedSender<WriterMsg>,
    },
    LearnerPacket {
        conn: u64,
        p: QuorumPacket,
    },
    LearnerDown {
        conn: u64,
    },
    LeaderUp {
        gen: u64,
        tx: mpsc::UnboundedSender<WriterMsg>,
    },
    LeaderPacket {
        gen: u64,
        p: QuorumPacket,
    },
    LeaderSnapshot {
        gen: u64,
        zxid: i64,
        blob: Vec<u8>,
    },
    LeaderDown {
        gen: u64,
    },
}

/// How often unconnected election peers are dialled again.
const REDIAL_EVERY: Duration = Duration::from_millis(1000);
/// Connect timeout for election and quorum connections.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times a learner tries to reach its leader (ZooKeeper: 5).
const LEADER_CONNECT_TRIES: u32 = 5;
/// The pause between those tries (ZooKeeper's `leaderConnectDelayDuringRetryMs`, 100 ms): the
/// leader-elect may not listen yet.
const LEADER_CONNECT_DELAY: Duration = Duration::from_millis(100);
/// Learner connections held while we are still looking (see [`PendingLearner`]), at most.
const PENDING_LEARNERS_MAX: usize = 64;
/// Packets buffered per held learner connection (it sends FOLLOWERINFO, then waits).
const PENDING_PACKETS_MAX: usize = 16;
/// How long a learner connection is held while we are still looking.
const PENDING_LEARNER_TTL: Duration = Duration::from_secs(10);

/// Ensemble state kept beside the core in the node task.
pub(crate) struct Quorum {
    pub peer: Peer,
    pub my_sid: i64,
    entries: HashMap<i64, ServerEntry>,
    /// zoo.cfg, rewritten when the committed config changes (`Output::ConfigChanged`).
    config_path: Option<PathBuf>,
    my_election_addr: String,
    election: HashMap<i64, (u64, mpsc::UnboundedSender<WriterMsg>)>,
    last_dial: HashMap<i64, Instant>,
    next_id: u64,
    learners: HashMap<u64, mpsc::UnboundedSender<WriterMsg>>,
    pending_learners: HashMap<u64, PendingLearner>,
    leader: Option<mpsc::UnboundedSender<WriterMsg>>,
    leader_gen: u64,
    pub state: ServerState,
    max_packet: usize,
    ev: mpsc::Sender<Event>,
    /// Highest zxid appended to the log and not yet reported durable.
    unsynced: Option<i64>,
    /// `zookeeper.snapshotSizeFactor` (`ZKDatabase`): the size limit of a txn-log sync.
    snapshot_size_factor: f64,
}

/// A learner connection accepted while we are still looking. Another member may decide for us
/// as leader a moment before we do and dial us at once; closing that connection would send it
/// back into an election that cannot finish until we give up leading (initLimit ticks), so it
/// is held, with what it sent, until we decide: leading, it is handed to the peer; following
/// or observing, it is closed.
struct PendingLearner {
    tx: mpsc::UnboundedSender<WriterMsg>,
    packets: Vec<QuorumPacket>,
    since: Instant,
}

/// Read `myid` from the data directory, as ZooKeeper does.
pub fn read_myid(cfg: &ServerConfig) -> Result<i64, String> {
    let dir = cfg.data_dir.clone().ok_or("dataDir is not set")?;
    let path = dir.join("myid");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read {}: {e} (an ensemble member needs its myid)",
            path.display()
        )
    })?;
    text.trim()
        .parse::<i64>()
        .map_err(|_| format!("{}: {:?} is not a server id", path.display(), text.trim()))
}

/// The config string (§4.1) of the static configuration, version 0 (reconfig disabled).
pub fn quorum_config(cfg: &ServerConfig) -> QuorumConfig {
    QuorumConfig {
        members: cfg
            .servers
            .iter()
            .map(|s| QuorumMember {
                sid: s.id as i64,
                host: s.host.clone(),
                quorum_port: s.quorum_port,
                election_port: s.election_port,
                observer: s.observer,
                client: s.client_port.map(|p| {
                    (
                        s.client_address.clone().unwrap_or_else(|| "0.0.0.0".into()),
                        p,
                    )
                }),
            })
            .collect(),
        version: cfg.config_version,
    }
}

/// Where this member serves clients: its `server.N` client part, else `clientPort`.
pub fn client_address(cfg: &ServerConfig, me: &ServerEntry) -> Option<SocketAddr> {
    if me.client_port.is_some() {
        return me.client_socket_addr();
    }
    let port = cfg.client_port?;
    let ip = cfg
        .client_port_address
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    Some(SocketAddr::new(ip, port))
}

async fn resolve(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    let text = quorum::format_address(host, port);
    let mut addrs = tokio::net::lookup_host(text.clone()).await?;
    addrs
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{text} does not resolve")))
}

/// Everything an ensemble member binds before it starts: the election and quorum listeners.
pub(crate) struct Listeners {
    pub election: TcpListener,
    pub quorum: TcpListener,
}

pub(crate) async fn bind_listeners(me: &ServerEntry) -> std::io::Result<Listeners> {
    let election = TcpListener::bind(resolve(&me.host, me.election_port).await?).await?;
    let quorum = TcpListener::bind(resolve(&me.host, me.quorum_port).await?).await?;
    info!(
        "election port {}, quorum port {}",
        election.local_addr()?,
        quorum.local_addr()?
    );
    Ok(Listeners { election, quorum })
}

impl Quorum {
    pub(crate) fn new(
        cfg: &ServerConfig,
        my_sid: i64,
        durable: Durable,
        now_ms: u64,
        ev: mpsc::Sender<Event>,
    ) -> Quorum {
        let qc = quorum_config(cfg);
        let me = cfg
            .servers
            .iter()
            .find(|s| s.id as i64 == my_sid)
            .expect("checked by the caller");
        let factor_prop = cfg.property("zookeeper.snapshotSizeFactor");
        let snapshot_size_factor = corral_zab::sync::snapshot_size_factor(factor_prop);
        if factor_prop.is_some_and(|f| f.trim().parse::<f64>().ok() != Some(snapshot_size_factor)) {
            warn!(
                "zookeeper.snapshotSizeFactor={} is invalid, using the default {snapshot_size_factor}",
                factor_prop.unwrap_or_default()
            );
        }
        let txn_log_sync = corral_zab::sync::txn_log_sync_enabled(snapshot_size_factor);
        match txn_log_sync {
            true => info!(
                "zookeeper.snapshotSizeFactor = {snapshot_size_factor}: on-disk txn sync enabled"
            ),
            false => info!(
                "zookeeper.snapshotSizeFactor = {snapshot_size_factor}: on-disk txn sync disabled"
            ),
        }
        let pcfg = PeerConfig {
            my_sid,
            members: cfg
                .servers
                .iter()
                .map(|s| (s.id as i64, s.observer))
                .collect(),
            tick_ms: cfg.tick_time_ms as u64,
            init_limit: cfg.init_limit.unwrap_or(10),
            sync_limit: cfg.sync_limit.unwrap_or(5),
            config: qc.to_config_string().into_bytes(),
            commit_log_count: 500,
            reconfig_enabled: cfg.reconfig_enabled,
            txn_log_sync,
        };
        Quorum {
            peer: Peer::new(pcfg, durable, now_ms),
            my_sid,
            entries: cfg
                .servers
                .iter()
                .map(|s| (s.id as i64, s.clone()))
                .collect(),
            config_path: cfg.config_path.clone(),
            my_election_addr: quorum::format_address(&me.host, me.election_port),
            election: HashMap::new(),
            last_dial: HashMap::new(),
            next_id: 1,
            learners: HashMap::new(),
            pending_learners: HashMap::new(),
            leader: None,
            leader_gen: 0,
            state: ServerState::Looking,
            max_packet: cfg.jute_max_buffer + (1 << 20),
            ev,
            unsynced: None,
            snapshot_size_factor,
        }
    }

    /// When the node task must call `tick` next (peer timers and election redials).
    pub(crate) fn next_wakeup(&self, now_ms: u64) -> u64 {
        let redial = now_ms + REDIAL_EVERY.as_millis() as u64;
        self.peer.poll_timeout().map_or(redial, |t| t.min(redial))
    }

    fn dial_election(&mut self, sid: i64) {
        if sid == self.my_sid || self.election.contains_key(&sid) {
            return;
        }
        if self
            .last_dial
            .get(&sid)
            .is_some_and(|t| t.elapsed() < REDIAL_EVERY)
        {
            return;
        }
        let Some(entry) = self.entries.get(&sid).cloned() else {
            return;
        };
        self.last_dial.insert(sid, Instant::now());
        let id = self.next_id;
        self.next_id += 1;
        let header = ElectionHeader::v1(self.my_sid, self.my_election_addr.clone());
        let my_sid = self.my_sid;
        let ev = self.ev.clone();
        tokio::spawn(async move {
            let addr = match resolve(&entry.host, entry.election_port).await {
                Ok(a) => a,
                Err(e) => {
                    debug!("election address of {sid}: {e}");
                    return;
                }
            };
            let Ok(Ok(mut sock)) =
                tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
            else {
                debug!("cannot reach server {sid} at {addr} for election");
                return;
            };
            let _ = sock.set_nodelay(true);
            if sock.write_all(&header.encode()).await.is_err() {
                return;
            }
            // Only connections initiated by the larger sid survive: to a larger sid this was
            // only a prompt to dial us back.
            if !quorum::keeps_connection(my_sid, sid) {
                return;
            }
            election_connection(sock, sid, id, Vec::new(), ev).await;
        });
    }

    /// Periodic work: dial election peers we should be connected to; drop learner connections
    /// held too long.
    pub(crate) fn redial(&mut self) {
        self.pending_learners.retain(|_, p| {
            let keep = p.since.elapsed() < PENDING_LEARNER_TTL;
            if !keep {
                let _ = p.tx.send(WriterMsg::Close);
            }
            keep
        });
        let sids: Vec<i64> = self.entries.keys().copied().collect();
        for sid in sids {
            if sid < self.my_sid {
                self.dial_election(sid);
            }
        }
    }
}

/// Accept election connections; keep those from larger sids, answer smaller ones by dialling.
pub(crate) async fn election_listener(listener: TcpListener, my_sid: i64, ev: mpsc::Sender<Event>) {
    let mut next_id: u64 = 1 << 32;
    loop {
        let Ok((mut sock, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = sock.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let ev = ev.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let header = loop {
                match ElectionHeader::try_decode(&buf) {
                    Ok(Some((h, used))) => {
                        buf.drain(..used);
                        break h;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        warn!("bad election header from {peer}: {e}");
                        return;
                    }
                }
                let mut chunk = [0u8; 4096];
                match tokio::time::timeout(CONNECT_TIMEOUT, sock.read(&mut chunk)).await {
                    Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => return,
                }
            };
            if header.sid == my_sid {
                warn!("election connection from {peer} claims our own sid {my_sid}");
                return;
            }
            if !quorum::keeps_connection(header.sid, my_sid) {
                drop(sock);
                let _ = ev
                    .send(Event::Quorum(QEvent::DialBack { sid: header.sid }))
                    .await;
                return;
            }
            election_connection(sock, header.sid, id, buf, ev).await;
        });
    }
}

/// One kept election connection: frames in, frames out.
async fn election_connection(
    sock: TcpStream,
    sid: i64,
    id: u64,
    buf: Vec<u8>,
    ev: mpsc::Sender<Event>,
) {
    let (mut rd, wr) = sock.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(wr, rx));
    if ev
        .send(Event::Quorum(QEvent::ElectionUp { sid, id, tx }))
        .await
        .is_err()
    {
        return;
    }
    forward_decoded(
        &mut rd,
        buf,
        quorum::try_decode_election_frame,
        |payload| QEvent::Election { from: sid, payload },
        &ev,
        &format!("election frame from server {sid}"),
    )
    .await;
    writer.abort();
    let _ = ev
        .send(Event::Quorum(QEvent::ElectionDown { sid, id }))
        .await;
}

/// Reads `rd` (after the bytes already in `buf`), decodes every complete item and hands it to
/// the node task as the event `wrap` makes of it, until the peer closes, sends something that
/// does not decode (`what` names it in the warning), or the node task is gone.
async fn forward_decoded<T, E: std::fmt::Display>(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    mut buf: Vec<u8>,
    decode: impl Fn(&[u8]) -> Result<Option<(T, usize)>, E>,
    wrap: impl Fn(T) -> QEvent,
    ev: &mpsc::Sender<Event>,
    what: &str,
) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        loop {
            match decode(&buf) {
                Ok(Some((item, used))) => {
                    buf.drain(..used);
                    if ev.send(Event::Quorum(wrap(item))).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    warn!("bad {what}: {e}");
                    return;
                }
            }
        }
        match rd.read(&mut chunk).await {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
}

/// The leader's quorum port: every accepted learner becomes a conn id for the peer.
pub(crate) async fn quorum_listener(
    listener: TcpListener,
    max_packet: usize,
    ev: mpsc::Sender<Event>,
) {
    let mut next: u64 = 1;
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = sock.set_nodelay(true);
        let conn = next;
        next += 1;
        let ev = ev.clone();
        tokio::spawn(async move {
            let (mut rd, wr) = sock.into_split();
            let (tx, rx) = mpsc::unbounded_channel();
            let writer = tokio::spawn(write_loop(wr, rx));
            if ev
                .send(Event::Quorum(QEvent::LearnerUp { conn, tx }))
                .await
                .is_err()
            {
                return;
            }
            forward_decoded(
                &mut rd,
                Vec::new(),
                |b: &[u8]| QuorumPacket::try_decode(b, max_packet),
                |p| QEvent::LearnerPacket { conn, p },
                &ev,
                &format!("packet from learner connection {conn}"),
            )
            .await;
            writer.abort();
            let _ = ev.send(Event::Quorum(QEvent::LearnerDown { conn })).await;
        });
    }
}

/// A learner's connection to its leader; a SNAP packet is followed by its payload (§4.7).
async fn leader_connection(
    entry: ServerEntry,
    gen: u64,
    max_packet: usize,
    ev: mpsc::Sender<Event>,
) {
    let mut sock = None;
    for attempt in 0..LEADER_CONNECT_TRIES {
        if attempt > 0 {
            tokio::time::sleep(LEADER_CONNECT_DELAY).await;
        }
        let Ok(addr) = resolve(&entry.host, entry.quorum_port).await else {
            continue;
        };
        if let Ok(Ok(s)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            sock = Some(s);
            break;
        }
        warn!(
            "cannot reach leader {} at {addr} (try {})",
            entry.id,
            attempt + 1
        );
    }
    let Some(sock) = sock else {
        let _ = ev.send(Event::Quorum(QEvent::LeaderDown { gen })).await;
        return;
    };
    let _ = sock.set_nodelay(true);
    let (mut rd, wr) = sock.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(wr, rx));
    if ev
        .send(Event::Quorum(QEvent::LeaderUp { gen, tx }))
        .await
        .is_err()
    {
        return;
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut snap: Option<i64> = None;
    let mut drained = false;
    let mut chunk = vec![0u8; 256 * 1024];
    'read: loop {
        loop {
            if let Some(zxid) = snap {
                // Parse attempts only when the socket had nothing more for the moment, so a
                // large payload is not re-parsed for every chunk.
                if !drained {
                    break;
                }
                match snapshot::deserialize_snap_stream(&buf, usize::MAX) {
                    Ok(Some((_, _, used))) => {
                        let blob: Vec<u8> = buf.drain(..used).collect();
                        snap = None;
                        if ev
                            .send(Event::Quorum(QEvent::LeaderSnapshot { gen, zxid, blob }))
                            .await
                            .is_err()
                        {
                            break 'read;
                        }
                        continue;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        warn!("bad SNAP payload from the leader: {e}");
                        break 'read;
                    }
                }
            }
            match QuorumPacket::try_decode(&buf, max_packet) {
                Ok(Some((p, used))) => {
                    buf.drain(..used);
                    if p.r#type == packet_type::SNAP {
                        snap = Some(p.zxid);
                    }
                    if ev
                        .send(Event::Quorum(QEvent::LeaderPacket { gen, p }))
                        .await
                        .is_err()
                    {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    warn!("bad packet from the leader: {e}");
                    break 'read;
                }
            }
        }
        match rd.read(&mut chunk).await {
            Ok(n) if n > 0 => {
                buf.extend_from_slice(&chunk[..n]);
                drained = n < chunk.len();
            }
            _ => break,
        }
    }
    writer.abort();
    let _ = ev.send(Event::Quorum(QEvent::LeaderDown { gen })).await;
}

fn frame_of(p: &QuorumPacket) -> WriterMsg {
    WriterMsg::Frame(p.to_bytes())
}

/// A quorum event from a connection task.
pub(crate) fn handle_quorum_event(st: &mut State, ev: QEvent) {
    let now_ms = st.clock.now().mono_ms;
    let Some(q) = st.quorum.as_mut() else { return };
    match ev {
        QEvent::ElectionUp { sid, id, tx } => {
            if let Some((_, old)) = q.election.insert(sid, (id, tx)) {
                let _ = old.send(WriterMsg::Close);
            }
            q.peer.handle(now_ms, Input::ElectionPeerConnected { sid });
        }
        QEvent::Election { from, payload } => match Notification::decode(&payload) {
            Ok(n) => q.peer.handle(now_ms, Input::Election { from, n }),
            Err(e) => warn!("undecodable notification from server {from}: {e}"),
        },
        QEvent::ElectionDown { sid, id } => {
            if q.election.get(&sid).is_some_and(|(i, _)| *i == id) {
                q.election.remove(&sid);
            }
        }
        QEvent::DialBack { sid } => {
            q.last_dial.remove(&sid);
            q.dial_election(sid);
        }
        QEvent::LearnerUp { conn, tx } => match q.state {
            ServerState::Leading => {
                q.learners.insert(conn, tx);
                q.peer.handle(now_ms, Input::LearnerConnected { conn });
            }
            ServerState::Looking if q.pending_learners.len() < PENDING_LEARNERS_MAX => {
                let since = Instant::now();
                let packets = Vec::new();
                q.pending_learners
                    .insert(conn, PendingLearner { tx, packets, since });
            }
            _ => {
                let _ = tx.send(WriterMsg::Close);
            }
        },
        QEvent::LearnerPacket { conn, p } => {
            if q.learners.contains_key(&conn) {
                q.peer.handle(now_ms, Input::LearnerPacket { conn, p });
            } else if let Some(pending) = q.pending_learners.get_mut(&conn) {
                if pending.packets.len() < PENDING_PACKETS_MAX {
                    pending.packets.push(p);
                } else if let Some(pending) = q.pending_learners.remove(&conn) {
                    warn!("learner connection {conn} sent too much before we led; closing");
                    let _ = pending.tx.send(WriterMsg::Close);
                }
            }
        }
        QEvent::LearnerDown { conn } => {
            q.pending_learners.remove(&conn);
            if q.learners.remove(&conn).is_some() {
                q.peer.handle(now_ms, Input::LearnerClosed { conn });
            }
        }
        QEvent::LeaderUp { gen, tx } => {
            if gen != q.leader_gen {
                let _ = tx.send(WriterMsg::Close);
                return;
            }
            q.leader = Some(tx);
            q.peer.handle(now_ms, Input::LeaderConnected);
        }
        QEvent::LeaderPacket { gen, p } => {
            if gen == q.leader_gen {
                q.peer.handle(now_ms, Input::LeaderPacket(p));
            }
        }
        QEvent::LeaderSnapshot { gen, zxid, blob } => {
            if gen == q.leader_gen {
                q.peer.handle(now_ms, Input::LeaderSnapshot { zxid, blob });
            }
        }
        QEvent::LeaderDown { gen } => {
            if gen == q.leader_gen {
                q.leader = None;
                q.leader_gen += 1;
                q.peer.handle(now_ms, Input::LeaderClosed);
            }
        }
    }
}

fn fatal(what: &str, e: impl std::fmt::Display) -> ! {
    error!("{what}: {e}; stopping");
    std::process::exit(2);
}

/// Run the core's and the peer's outputs until both are quiet. Appends are synced once per
/// round and reported back to the peer, which may then ACK and commit (more outputs).
pub(crate) fn flush(st: &mut State) {
    loop {
        let mut busy = false;
        while let Some(o) = st.core.poll_output() {
            busy = true;
            core_output(st, o);
        }
        while let Some(o) = st.quorum.as_mut().and_then(|q| q.peer.poll_output()) {
            busy = true;
            peer_output(st, o);
        }
        let unsynced = st.quorum.as_mut().and_then(|q| q.unsynced.take());
        if let Some(zxid) = unsynced {
            busy = true;
            let storage = &mut st.storage;
            if let Err(e) = tokio::task::block_in_place(|| storage.sync()) {
                fatal("cannot write the txn log", e);
            }
            if let Err(e) = st.storage.after_sync(st.core.tree(), st.core.sessions()) {
                fatal("cannot write a snapshot", e);
            }
            let now_ms = st.clock.now().mono_ms;
            if let Some(q) = st.quorum.as_mut() {
                q.peer.handle(now_ms, Input::Synced { zxid });
            }
        }
        if !busy {
            return;
        }
    }
}

fn core_output(st: &mut State, o: CoreOutput) {
    let now_ms = st.clock.now().mono_ms;
    match o {
        CoreOutput::Send { conn, frame } => send(st, conn, frame),
        CoreOutput::Close { conn } => close(st, conn),
        CoreOutput::Append(txn) => {
            unreachable!(
                "an ensemble core does not log by itself (0x{:x})",
                txn.zxid()
            )
        }
        CoreOutput::Submit(s) => {
            let req = ForwardedRequest {
                session_id: s.session,
                cxid: s.cxid,
                op_type: s.op_type,
                body: s.body,
            };
            if let Some(q) = st.quorum.as_mut() {
                q.peer.handle(now_ms, Input::Submit(req, s.auth));
            }
        }
        CoreOutput::Revalidate { session, timeout } => {
            if let Some(q) = st.quorum.as_mut() {
                q.peer.handle(
                    now_ms,
                    Input::Revalidate {
                        session_id: session,
                        timeout,
                    },
                );
            }
        }
    }
}

fn to_peer(st: &mut State, input: Input) {
    let now_ms = st.clock.now().mono_ms;
    if let Some(q) = st.quorum.as_mut() {
        q.peer.handle(now_ms, input);
    }
}

fn peer_output(st: &mut State, o: Output) {
    let now = st.clock.now();
    let Some(q) = st.quorum.as_mut() else { return };
    match o {
        Output::ElectionSend { to, n } => match q.election.get(&to) {
            Some((_, tx)) => {
                let _ = tx.send(WriterMsg::Frame(quorum::encode_election_frame(&n.encode())));
            }
            None => q.dial_election(to),
        },
        Output::ConnectToLeader { sid } => {
            q.leader_gen += 1;
            if let Some(old) = q.leader.take() {
                let _ = old.send(WriterMsg::Close);
            }
            match q.entries.get(&sid).cloned() {
                Some(entry) => {
                    tokio::spawn(leader_connection(
                        entry,
                        q.leader_gen,
                        q.max_packet,
                        q.ev.clone(),
                    ));
                }
                None => {
                    let gen = q.leader_gen;
                    q.leader_gen += 1;
                    warn!("leader {sid} is not in the configuration (gen {gen})");
                    q.peer.handle(now.mono_ms, Input::LeaderClosed);
                }
            }
        }
        Output::CloseLeader => {
            q.leader_gen += 1;
            if let Some(tx) = q.leader.take() {
                let _ = tx.send(WriterMsg::Close);
            }
        }
        Output::SendLeader(p) => {
            if let Some(tx) = &q.leader {
                let _ = tx.send(frame_of(&p));
            }
        }
        Output::SendLearner { conn, p } => {
            if let Some(tx) = q.learners.get(&conn) {
                let _ = tx.send(frame_of(&p));
            }
        }
        Output::SendSnapshot { conn } => {
            let zxid = st.core.last_zxid();
            let mut bytes = QuorumPacket::new(packet_type::SNAP, zxid, None).to_bytes();
            bytes.extend(snapshot::serialize_snap_stream(
                st.core.tree(),
                st.core.session_list(),
            ));
            info!(
                "sending a snapshot at 0x{zxid:x} ({} bytes) to learner connection {conn}",
                bytes.len()
            );
            if let Some(tx) = st.quorum.as_ref().and_then(|q| q.learners.get(&conn)) {
                let _ = tx.send(WriterMsg::Frame(bytes));
            }
        }
        Output::CloseLearner { conn } => {
            if let Some(tx) = q.learners.remove(&conn) {
                let _ = tx.send(WriterMsg::Close);
            }
        }
        Output::WriteAcceptedEpoch(e) => {
            if let Err(err) = st.storage.write_epoch("acceptedEpoch", e) {
                fatal("cannot write acceptedEpoch", err);
            }
        }
        Output::WriteCurrentEpoch(e) => {
            if let Err(err) = st.storage.write_epoch("currentEpoch", e) {
                fatal("cannot write currentEpoch", err);
            }
        }
        Output::Append { zxid, txn } => {
            let txn = Txn::from_bytes(&txn).unwrap_or_else(|e| fatal("undecodable txn", e));
            st.stats.txns += 1;
            if let Err(e) = st.storage.append(&txn) {
                fatal(&format!("cannot persist txn 0x{zxid:x}"), e);
            }
            if let Some(q) = st.quorum.as_mut() {
                q.unsynced = Some(zxid);
            }
        }
        Output::Truncate { zxid } => {
            info!("truncating the txn log after 0x{zxid:x} as the leader says");
            if let Some(q) = st.quorum.as_mut() {
                q.unsynced = None;
            }
            if let Err(e) = st.storage.truncate_after(zxid) {
                fatal("cannot truncate the txn log", e);
            }
            if st.core.last_zxid() > zxid {
                let loaded = st
                    .storage
                    .load()
                    .unwrap_or_else(|e| fatal("cannot reload", e));
                let recent = loaded.recent_txns;
                st.core.replace_state(now, loaded.tree, &loaded.sessions);
                install_config_node(st);
                let last = st.core.last_zxid();
                if last < zxid {
                    // The snapshot we stood on was above zxid (a leader's SNAP) and nothing
                    // logged leads from an older one to zxid: we are not where the leader
                    // thinks. The peer registers again from here.
                    warn!("reloaded to 0x{last:x}, below the TRUNC point 0x{zxid:x}");
                    let committed_log = recent.into_iter().filter(|(z, _)| *z <= last).collect();
                    to_peer(
                        st,
                        Input::Reloaded {
                            last_zxid: last,
                            committed_log,
                        },
                    );
                }
            }
        }
        Output::LoadSnapshot { zxid, blob } => {
            if let Some(q) = st.quorum.as_mut() {
                q.unsynced = None;
            }
            let (mut tree, sessions) = match snapshot::deserialize_snap_stream(&blob, usize::MAX) {
                Ok(Some((t, s, _))) => (t, s),
                Ok(None) => fatal("SNAP payload", "incomplete"),
                Err(e) => fatal("SNAP payload", e),
            };
            tree.set_last_processed_zxid(zxid);
            info!(
                "loaded the leader's snapshot at 0x{zxid:x}: {} znodes, {} sessions",
                tree.node_count(),
                sessions.len()
            );
            if let Err(e) = st.storage.truncate_after(zxid) {
                fatal("cannot truncate the txn log", e);
            }
            if let Err(e) = st.storage.snapshot_now(&tree, &sessions) {
                fatal("cannot write the snapshot", e);
            }
            st.core.replace_state(now, tree, &sessions);
            install_config_node(st);
        }
        Output::Commit { zxid, txn } => {
            let txn = Txn::from_bytes(&txn).unwrap_or_else(|e| fatal("undecodable txn", e));
            debug!("commit 0x{zxid:x}");
            st.core.apply_committed(now, txn);
        }
        Output::Prepare { zxid, req, auth } => {
            let s = Submitted {
                session: req.session_id,
                cxid: req.cxid,
                op_type: req.op_type,
                body: req.body,
                auth,
            };
            let txn = st.core.prepare_submitted(now, zxid, &s).to_bytes();
            st.stats.add_proposal(txn.len());
            to_peer(st, Input::Prepared { txn, zxid });
        }
        Output::ReadLog {
            conn,
            from_zxid,
            to_zxid,
        } => {
            let factor = q.snapshot_size_factor;
            let storage = &mut st.storage;
            let read = tokio::task::block_in_place(|| storage.read_log(from_zxid, to_zxid, factor));
            let txns = read.unwrap_or_else(|e| {
                warn!("cannot read the txn log from 0x{from_zxid:x}: {e}");
                None
            });
            match &txns {
                Some(t) => info!(
                    "read {} txns from the txn log from 0x{from_zxid:x} for learner connection {conn}",
                    t.len()
                ),
                None => info!(
                    "the txn log cannot sync learner connection {conn} from 0x{from_zxid:x} (not reaching back, or over snapshotSizeFactor={factor} of the latest snapshot)"
                ),
            }
            to_peer(st, Input::LogRead { conn, txns });
        }
        Output::SyncDone => st.core.handle_sync_done(),
        Output::CollectTouches => {
            let t = st.core.take_touches();
            to_peer(st, Input::Touches(t));
        }
        Output::TouchSessions(v) => st.core.touch_sessions(now, &v),
        Output::CheckSession {
            conn,
            session_id,
            timeout,
        } => {
            let valid = st.core.check_session(now, session_id, timeout);
            to_peer(
                st,
                Input::SessionChecked {
                    conn,
                    session_id,
                    valid,
                },
            );
        }
        Output::SessionRevalidated { session_id, valid } => {
            st.core.handle_revalidated(now, session_id, valid)
        }
        Output::RoleChanged {
            state,
            leader,
            epoch,
        } => {
            info!(
                "now {} (leader {}, epoch {epoch})",
                mode_name(state),
                leader.map_or("none".to_string(), |l| l.to_string())
            );
            q.state = state;
            let role = if state == ServerState::Leading {
                Role::Leader
            } else {
                Role::Learner
            };
            if state != ServerState::Leading {
                for (_, tx) in q.learners.drain() {
                    let _ = tx.send(WriterMsg::Close);
                }
            }
            match state {
                ServerState::Leading => {
                    for (conn, pending) in std::mem::take(&mut q.pending_learners) {
                        q.learners.insert(conn, pending.tx);
                        q.peer.handle(now.mono_ms, Input::LearnerConnected { conn });
                        for p in pending.packets {
                            q.peer.handle(now.mono_ms, Input::LearnerPacket { conn, p });
                        }
                    }
                }
                ServerState::Looking => {}
                ServerState::Following | ServerState::Observing => {
                    for (_, pending) in q.pending_learners.drain() {
                        let _ = pending.tx.send(WriterMsg::Close);
                    }
                }
            }
            st.core.set_role(now, role);
        }
        Output::StartServing => {
            st.core.set_serving(true);
            info!("serving clients at zxid 0x{:x}", st.core.last_zxid());
        }
        Output::ConfigChanged { config } => {
            let text = String::from_utf8_lossy(&config).into_owned();
            let version = corral_zab::config_version_of(&config);
            info!("the ensemble config is now version 0x{version:x}");
            let path = q.config_path.clone();
            let my_sid = q.my_sid;
            install_config_node(st);
            match path {
                Some(path) => {
                    if let Err(e) = persist_config(&path, &text, version, my_sid) {
                        error!(
                            "cannot write the new config next to {}: {e}",
                            path.display()
                        );
                    }
                }
                None => warn!("no zoo.cfg to rewrite for config version 0x{version:x}"),
            }
        }
        Output::StopServing => {
            st.core.set_serving(false);
            let conns: Vec<_> = st.conns.keys().copied().collect();
            info!(
                "not serving clients until synced with a leader; closing {} connection(s)",
                conns.len()
            );
            for c in conns {
                close(st, c);
            }
        }
    }
}

/// Persist a committed config like `QuorumPeer.setQuorumVerifier(qv, true)` with zoo.cfg at
/// `path`: `<path>.dynamic.<hex version>` gets the member lines (`writeDynamicConfig`), and
/// zoo.cfg is rewritten to point at it (`editStaticConfig`). ZooKeeper copies a zoo.cfg that
/// still lists the servers to `<path>.bak` at start-up (`backupOldConfig`, reconfigEnabled
/// only); we copy it just before the first rewrite, which leaves the same files. Every file is
/// replaced atomically.
fn persist_config(path: &Path, config: &str, version: i64, my_sid: i64) -> std::io::Result<()> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".dynamic.{version:x}"));
    let dynamic = PathBuf::from(name);
    write_atomic(
        &dynamic,
        crate::config::dynamic_config_text(config).as_bytes(),
    )?;
    let dynamic = std::fs::canonicalize(&dynamic)?;
    let old = std::fs::read_to_string(path)?;
    if !crate::config::names_dynamic_config_file(&old) {
        let mut bak = path.as_os_str().to_owned();
        bak.push(".bak");
        write_atomic(Path::new(&bak), old.as_bytes())?;
    }
    // `needEraseClientInfoFromStaticConfig`: our own line carries the client address.
    let erase_client = QuorumConfig::parse(config)
        .ok()
        .and_then(|qc| qc.member(my_sid).map(|m| m.client.is_some()))
        .unwrap_or(false);
    let new = crate::config::edit_static_config_text(&old, &dynamic, erase_client);
    write_atomic(path, new.as_bytes())?;
    info!(
        "wrote {} and pointed {} at it",
        dynamic.display(),
        path.display()
    );
    Ok(())
}

/// Write `bytes` to `<path>.tmp`, fsync, rename over `path`, fsync the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

/// `/zookeeper/config` holds the ensemble's config string (ZKDatabase.initConfigInZKDatabase).
pub(crate) fn install_config_node(st: &mut State) {
    if let Some(q) = st.quorum.as_ref() {
        let text = q.peer_config_string();
        let version = corral_zab::config_version_of(q.peer.config());
        let wall = st.clock.now().wall_ms;
        st.core.set_config_node(text.into_bytes(), version, wall);
    }
}

impl Quorum {
    /// Learner connections the leader holds (`zk_learners`).
    pub fn learner_count(&self) -> usize {
        self.learners.len()
    }

    /// Voters needed for a quorum (`zk_quorum_size`).
    pub fn quorum_size(&self) -> usize {
        self.entries.values().filter(|e| !e.observer).count() / 2 + 1
    }

    /// `zk_peer_state`, as QuorumPeer.getDetailedPeerState words it.
    pub fn detailed_state(&self) -> String {
        let phase = if self.peer.serving() {
            "broadcast"
        } else {
            "synchronization"
        };
        match self.state {
            ServerState::Looking => "looking".into(),
            ServerState::Leading => format!("leading - {phase}"),
            ServerState::Following => format!("following - {phase}"),
            ServerState::Observing => format!("observing - {phase}"),
        }
    }

    /// The committed config string: the static one until the peer commits another.
    fn peer_config_string(&self) -> String {
        String::from_utf8_lossy(self.peer.config()).into_owned()
    }
}

/// ZooKeeper's names for the modes, as `srvr` and `mntr` print them.
pub fn mode_name(s: ServerState) -> &'static str {
    match s {
        ServerState::Looking => "looking",
        ServerState::Following => "follower",
        ServerState::Leading => "leader",
        ServerState::Observing => "observer",
    }
}
