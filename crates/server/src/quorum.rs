//! An ensemble member's quorum side: the election listener and dialers (QuorumCnxManager's
//! connection rules, reference §4.2), the leader's quorum listener, the learner's connection to
//! its leader (with the SNAP payload read off the stream, §4.7), and [`QuorumIo`], which turns
//! their events into node events and executes the node's quorum actions on them. No protocol
//! decisions here: those are in `corral_node`.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_node::{Action, Event as NodeEvent, Node};
use corral_proto::quorum::{
    self, packet_type, ElectionHeader, Notification, QuorumConfig, QuorumPacket, ServerState,
};
use corral_proto::ServerId;
use corral_storage::disk::RealDisk;
use corral_storage::snapshot;
use corral_tree::core::Now;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::config::{ServerConfig, ServerEntry};
use crate::limits::{CONNECT_TIMEOUT, LEADER_CONNECT_DELAY, LEADER_CONNECT_TRIES};
use crate::quorum_auth::QuorumSasl;
use crate::tls::{handshake_within, QuorumTlsSource};
use crate::wire::{Event, QEvent, WriterMsg};

/// How often unconnected election peers are dialled again.
pub(crate) const REDIAL_EVERY: Duration = Duration::from_millis(1000);

/// The sockets of an ensemble member, kept beside the node in the node task.
pub(crate) struct QuorumIo {
    pub my_sid: i64,
    entries: HashMap<i64, ServerEntry>,
    /// zoo.cfg, rewritten when the committed config changes (`Action::PersistConfig`).
    config_path: Option<PathBuf>,
    my_election_addr: String,
    election: HashMap<i64, (u64, mpsc::UnboundedSender<WriterMsg>)>,
    last_dial: HashMap<i64, Instant>,
    next_id: u64,
    learners: HashMap<u64, mpsc::UnboundedSender<WriterMsg>>,
    /// What the AdminServer's `observers` shows of each learner connection.
    pub(crate) learner_stats: HashMap<u64, LearnerStats>,
    /// Each learner link's queue figures (`<sid>_learner_handler_qp_size` / `_time_ms`).
    pub(crate) learner_queues: HashMap<u64, Arc<crate::wire::LearnerQueue>>,
    leader: Option<mpsc::UnboundedSender<WriterMsg>>,
    leader_gen: u64,
    max_packet: usize,
    ev: mpsc::Sender<Event>,
    /// How member connections are secured.
    pub(crate) links: Arc<MemberLinks>,
}

/// What secures the connections between members: TLS (`sslQuorum`, `portUnification`) and
/// SASL (`quorum.auth.enableSasl`), each optional.
#[derive(Default)]
pub(crate) struct MemberLinks {
    /// The members' TLS stores, with `sslQuorum` or `portUnification`.
    pub tls: Option<Arc<QuorumTlsSource>>,
    /// `sslQuorum`: the connections this member opens use TLS.
    pub dial_tls: bool,
    pub sasl: Option<QuorumSasl>,
}

impl MemberLinks {
    /// The connecting side, once the connection is open (and after the election header on
    /// election connections): SASL when configured. Bytes read beyond the exchange, or `None`
    /// when the connection is to be given up.
    async fn authenticate(
        &self,
        sock: &mut BoxConn,
        host: &str,
        peer: SocketAddr,
    ) -> Option<Vec<u8>> {
        match &self.sasl {
            None => Some(Vec::new()),
            Some(sasl) => sasl.authenticate(sock, host, peer).await.ok(),
        }
    }

    /// The accepting side: checks a connecting member's SASL credentials when configured;
    /// `buf` holds what was read so far. False: refuse it.
    async fn check(&self, sock: &mut BoxConn, buf: &mut Vec<u8>, peer: SocketAddr) -> bool {
        match &self.sasl {
            None => true,
            Some(sasl) => sasl.check(sock, buf, peer).await,
        }
    }
}

/// An election or quorum connection: a socket, or TLS over it with `sslQuorum`.
pub(crate) trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}
pub(crate) type BoxConn = Box<dyn Conn>;

/// The connecting side of a member connection: TLS with `sslQuorum`, the other member's
/// certificate checked against the address it was reached at (as QuorumX509Util does).
async fn secure_client(links: &MemberLinks, sock: TcpStream, peer: SocketAddr) -> Option<BoxConn> {
    let Some(tls) = links.tls.as_ref().filter(|_| links.dial_tls) else {
        return Some(Box::new(sock));
    };
    let tls = tls.current();
    let name = rustls::pki_types::ServerName::IpAddress(peer.ip().into());
    let hs = tls.connector.connect(name, sock);
    let s = handshake_within(CONNECT_TIMEOUT, hs, format!("member at {peer}")).await?;
    Some(Box::new(s))
}

/// The accepting side: TLS with `sslQuorum`, the connecting member's certificate checked
/// against the address it connects from when host names are verified; with
/// `portUnification` TLS or plaintext, as the first byte says (a TLS record starts with 0x16,
/// an election header with 0xff or a sid's first byte, a learner's first packet with 0x00 or
/// a quorum SASL packet's 0x5f).
async fn secure_server(links: &MemberLinks, sock: TcpStream, peer: SocketAddr) -> Option<BoxConn> {
    let Some(source) = &links.tls else {
        return Some(Box::new(sock));
    };
    if source.config().port_unification {
        // Nothing within the timeout counts as plaintext, as in ZooKeeper.
        let mut first = [0u8; 1];
        let tls = matches!(
            tokio::time::timeout(CONNECT_TIMEOUT, sock.peek(&mut first)).await,
            Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD
        );
        if !tls {
            info!("member connection from {peer} in plaintext (portUnification)");
            return Some(Box::new(sock));
        }
    }
    let tls = source.current();
    let hs = tls.acceptor.accept(sock);
    let who = format!("member connecting from {peer}");
    let s = handshake_within(CONNECT_TIMEOUT, hs, who).await?;
    if tls.verify_hosts {
        let cert = s.get_ref().1.peer_certificates().and_then(|c| c.first());
        if !cert.is_some_and(|c| crate::tls::names_ip(c, peer.ip())) {
            warn!(
                "member connecting from {peer}: its certificate does not name {} \
                 (ssl.quorum.hostnameVerification)",
                peer.ip()
            );
            return None;
        }
    }
    Some(Box::new(s))
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

impl QuorumIo {
    pub(crate) fn new(
        cfg: &ServerConfig,
        my_sid: i64,
        ev: mpsc::Sender<Event>,
        links: Arc<MemberLinks>,
    ) -> QuorumIo {
        let me = cfg
            .servers
            .iter()
            .find(|s| s.id as i64 == my_sid)
            .expect("checked by the caller");
        QuorumIo {
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
            learner_stats: HashMap::new(),
            learner_queues: HashMap::new(),
            leader: None,
            leader_gen: 0,
            max_packet: cfg.jute_max_buffer + cfg.jute_max_buffer_extra,
            ev,
            links,
        }
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
        let links = self.links.clone();
        tokio::spawn(async move {
            let addr = match resolve(&entry.host, entry.election_port).await {
                Ok(a) => a,
                Err(e) => {
                    debug!("election address of {sid}: {e}");
                    return;
                }
            };
            let Ok(Ok(sock)) =
                tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
            else {
                debug!("cannot reach server {sid} at {addr} for election");
                return;
            };
            let _ = sock.set_nodelay(true);
            let Some(mut sock) = secure_client(&links, sock, addr).await else {
                return;
            };
            if sock.write_all(&header.encode()).await.is_err() || sock.flush().await.is_err() {
                return;
            }
            // Authenticated before either side decides whether to keep it, as ZooKeeper does.
            let Some(buf) = links.authenticate(&mut sock, &entry.host, addr).await else {
                return;
            };
            // Only connections initiated by the larger sid survive: to a larger sid this was
            // only a prompt to dial us back.
            if !quorum::keeps_connection(my_sid, sid) {
                return;
            }
            election_connection(sock, sid, id, buf, ev).await;
        });
    }

    /// Periodic work: dial election peers we should be connected to.
    pub(crate) fn redial(&mut self) {
        let sids: Vec<i64> = self.entries.keys().copied().collect();
        for sid in sids {
            if sid < self.my_sid {
                self.dial_election(sid);
            }
        }
    }

    /// A quorum event from a connection task, handed to the node when it is for the current
    /// connection.
    pub(crate) fn handle_event(&mut self, node: &mut Node<RealDisk>, now: Now, ev: QEvent) {
        match ev {
            QEvent::ElectionUp { sid, id, tx } => {
                if let Some((_, old)) = self.election.insert(sid, (id, tx)) {
                    let _ = old.send(WriterMsg::Close);
                }
                node.handle(now, NodeEvent::ElectionConnected { sid: ServerId(sid) });
            }
            QEvent::Election { from, payload } => match Notification::decode(&payload) {
                Ok(n) => node.handle(
                    now,
                    NodeEvent::Election {
                        from: ServerId(from),
                        n,
                    },
                ),
                Err(e) => warn!("undecodable notification from server {from}: {e}"),
            },
            QEvent::ElectionDown { sid, id } => {
                if self.election.get(&sid).is_some_and(|(i, _)| *i == id) {
                    self.election.remove(&sid);
                }
            }
            QEvent::DialBack { sid } => {
                self.last_dial.remove(&sid);
                self.dial_election(sid);
            }
            QEvent::LearnerUp {
                conn,
                tx,
                peer,
                queue,
            } => {
                self.learners.insert(conn, tx);
                self.learner_queues.insert(conn, queue);
                self.learner_stats.insert(
                    conn,
                    LearnerStats {
                        peer: Some(peer),
                        established_ms: now.wall_ms,
                        ..Default::default()
                    },
                );
                node.handle(now, NodeEvent::LearnerConnected { conn });
            }
            QEvent::LearnerPacket { conn, p } => {
                if self.learners.contains_key(&conn) {
                    if let Some(s) = self.learner_stats.get_mut(&conn) {
                        s.received += 1;
                        if p.r#type == packet_type::REQUEST {
                            s.requests += 1;
                        }
                    }
                    node.handle(now, NodeEvent::LearnerPacket { conn, p });
                }
            }
            QEvent::LearnerDown { conn } => {
                self.learner_stats.remove(&conn);
                self.learner_queues.remove(&conn);
                if self.learners.remove(&conn).is_some() {
                    node.handle(now, NodeEvent::LearnerClosed { conn });
                }
            }
            QEvent::LeaderUp { gen, tx } => {
                if gen != self.leader_gen {
                    let _ = tx.send(WriterMsg::Close);
                    return;
                }
                self.leader = Some(tx);
                node.handle(now, NodeEvent::LeaderConnected);
            }
            QEvent::LeaderPacket { gen, p } => {
                if gen == self.leader_gen {
                    node.handle(now, NodeEvent::LeaderPacket(p));
                }
            }
            QEvent::LeaderSnapshot { gen, zxid, blob } => {
                if gen == self.leader_gen {
                    node.handle(now, NodeEvent::LeaderSnapshot { zxid, blob });
                }
            }
            QEvent::LeaderDown { gen } => {
                if gen == self.leader_gen {
                    self.leader = None;
                    self.leader_gen += 1;
                    node.handle(now, NodeEvent::LeaderClosed);
                }
            }
        }
    }

    /// Execute one of the node's quorum actions; `Err(action)` if it is not one.
    pub(crate) fn execute(
        &mut self,
        node: &mut Node<RealDisk>,
        now: Now,
        a: Action,
    ) -> Result<(), Action> {
        match a {
            Action::ElectionSend { to, n } => match self.election.get(&to.0) {
                Some((_, tx)) => {
                    let _ = tx.send(WriterMsg::Frame(quorum::encode_election_frame(&n.encode())));
                }
                None => self.dial_election(to.0),
            },
            Action::ConnectToLeader { sid } => {
                self.leader_gen += 1;
                if let Some(old) = self.leader.take() {
                    let _ = old.send(WriterMsg::Close);
                }
                match self.entries.get(&sid.0).cloned() {
                    Some(entry) => {
                        let gen = self.leader_gen;
                        tokio::spawn(leader_connection(
                            entry,
                            gen,
                            self.max_packet,
                            self.ev.clone(),
                            self.links.clone(),
                        ));
                    }
                    None => {
                        let gen = self.leader_gen;
                        self.leader_gen += 1;
                        warn!("leader {sid} is not in the configuration (gen {gen})");
                        node.handle(now, NodeEvent::LeaderClosed);
                    }
                }
            }
            Action::CloseLeader => {
                self.leader_gen += 1;
                if let Some(tx) = self.leader.take() {
                    let _ = tx.send(WriterMsg::Close);
                }
            }
            Action::SendLeader(p) => {
                if let Some(tx) = &self.leader {
                    let _ = tx.send(WriterMsg::Frame(p.to_bytes()));
                }
            }
            Action::SendLearner { conn, p } => {
                if let Some(tx) = self.learners.get(&conn) {
                    if let Some(s) = self.learner_stats.get_mut(&conn) {
                        s.sent += 1;
                        s.last_zxid = s.last_zxid.max(p.zxid);
                    }
                    match self.learner_queues.get(&conn) {
                        Some(q) => {
                            q.queued.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                            let at = std::time::Instant::now();
                            let _ = tx.send(WriterMsg::Queued(p.to_bytes(), at));
                        }
                        None => {
                            let _ = tx.send(WriterMsg::Frame(p.to_bytes()));
                        }
                    }
                }
            }
            Action::SendSnapshot { conn, zxid, blob } => {
                let mut bytes = QuorumPacket::new(packet_type::SNAP, zxid, None).to_bytes();
                bytes.extend(blob);
                if let Some(tx) = self.learners.get(&conn) {
                    let _ = tx.send(WriterMsg::Frame(bytes));
                }
            }
            Action::CloseLearner { conn } => {
                if let Some(tx) = self.learners.remove(&conn) {
                    let _ = tx.send(WriterMsg::Close);
                }
            }
            Action::PersistConfig { text, version } => match &self.config_path {
                Some(path) => {
                    if let Err(e) = persist_config(path, &text, version, self.my_sid) {
                        error!(
                            "cannot write the new config next to {}: {e}",
                            path.display()
                        );
                    }
                }
                None => warn!("no zoo.cfg to rewrite for config version 0x{version:x}"),
            },
            Action::RoleChanged {
                state,
                leader,
                epoch,
            } => info!(
                "now {} (leader {}, epoch {epoch})",
                mode_name(state),
                leader.map_or("none".to_string(), |l| l.to_string())
            ),
            Action::StartServing { zxid } => info!("serving clients at zxid 0x{zxid:x}"),
            Action::StopServing { closed } => info!(
                "not serving clients until synced with a leader; closed {closed} connection(s)"
            ),
            other => return Err(other),
        }
        Ok(())
    }
}

/// A learner connection's figures, as ZooKeeper's LearnerHandler shows them.
#[derive(Debug, Clone, Default)]
pub(crate) struct LearnerStats {
    pub peer: Option<SocketAddr>,
    /// Wall-clock ms when it connected.
    pub established_ms: i64,
    pub sent: u64,
    pub received: u64,
    /// REQUEST packets it forwarded.
    pub requests: u64,
    /// The highest zxid sent to it.
    pub last_zxid: i64,
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
        members: cfg.servers.iter().map(ServerEntry::quorum_member).collect(),
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

/// Accept election connections; keep those from larger sids, answer smaller ones by dialling.
pub(crate) async fn election_listener(
    listener: TcpListener,
    my_sid: i64,
    ev: mpsc::Sender<Event>,
    links: Arc<MemberLinks>,
) {
    let mut next_id: u64 = 1 << 32;
    loop {
        let Ok((sock, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = sock.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let ev = ev.clone();
        let links = links.clone();
        tokio::spawn(async move {
            let Some(mut sock) = secure_server(&links, sock, peer).await else {
                return;
            };
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
            if !links.check(&mut sock, &mut buf, peer).await {
                return;
            }
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
    sock: BoxConn,
    sid: i64,
    id: u64,
    buf: Vec<u8>,
    ev: mpsc::Sender<Event>,
) {
    let (mut rd, wr) = tokio::io::split(sock);
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(wr, rx, None));
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
async fn forward_decoded<T, E: std::fmt::Display, R: AsyncRead + Unpin>(
    rd: &mut R,
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
    links: Arc<MemberLinks>,
) {
    let mut next: u64 = 1;
    loop {
        let Ok((sock, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = sock.set_nodelay(true);
        let conn = next;
        next += 1;
        let ev = ev.clone();
        let links = links.clone();
        tokio::spawn(async move {
            let Some(mut sock) = secure_server(&links, sock, peer).await else {
                return;
            };
            let mut buf = Vec::new();
            if !links.check(&mut sock, &mut buf, peer).await {
                return;
            }
            let (mut rd, wr) = tokio::io::split(sock);
            let (tx, rx) = mpsc::unbounded_channel();
            let queue = Arc::new(crate::wire::LearnerQueue::default());
            let writer = tokio::spawn(write_loop(wr, rx, Some(queue.clone())));
            if ev
                .send(Event::Quorum(QEvent::LearnerUp {
                    conn,
                    tx,
                    peer,
                    queue,
                }))
                .await
                .is_err()
            {
                return;
            }
            forward_decoded(
                &mut rd,
                buf,
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
    links: Arc<MemberLinks>,
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
            let _ = s.set_nodelay(true);
            if let Some(mut s) = secure_client(&links, s, addr).await {
                if let Some(rest) = links.authenticate(&mut s, &entry.host, addr).await {
                    sock = Some((s, rest));
                    break;
                }
            }
        }
        warn!(
            "cannot reach leader {} at {addr} (try {})",
            entry.id,
            attempt + 1
        );
    }
    let Some((sock, mut buf)) = sock else {
        let _ = ev.send(Event::Quorum(QEvent::LeaderDown { gen })).await;
        return;
    };
    let (mut rd, wr) = tokio::io::split(sock);
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(wr, rx, None));
    if ev
        .send(Event::Quorum(QEvent::LeaderUp { gen, tx }))
        .await
        .is_err()
    {
        return;
    }
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

/// Writes what the node task queues for one connection (client, election or quorum), flushing
/// whenever the queue runs dry, until `Close` or a write error; then flushes and shuts down.
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(
    wr: W,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    queue: Option<Arc<crate::wire::LearnerQueue>>,
) {
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    while let Some(m) = rx.recv().await {
        let m = match m {
            WriterMsg::Queued(f, at) => {
                if let Some(q) = &queue {
                    q.took(at);
                }
                WriterMsg::Frame(f)
            }
            m => m,
        };
        match m {
            WriterMsg::Frame(f) => {
                if w.write_all(&f).await.is_err() {
                    break;
                }
                if rx.is_empty() && w.flush().await.is_err() {
                    break;
                }
            }
            WriterMsg::Close | WriterMsg::Queued(..) => break,
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
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

/// ZooKeeper's names for the modes, as `srvr` and `mntr` print them.
pub fn mode_name(s: ServerState) -> &'static str {
    match s {
        ServerState::Looking => "looking",
        ServerState::Following => "follower",
        ServerState::Leading => "leader",
        ServerState::Observing => "observer",
    }
}
