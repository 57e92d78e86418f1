//! The node: start-up, the event and action queues, and the decisions that join the tree
//! core, the ZAB peer and storage.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use corral_proto::quorum::ForwardedRequest;
use corral_proto::quorum::{packet_type, QuorumPacket, ServerState};
use corral_proto::txn::Txn;
use corral_proto::txn::DIGEST_VERSION;
use corral_proto::{Epoch, ServerId, SessionId, Zxid};
use corral_storage::disk::Disk;
use corral_storage::snapshot::{self, Fuzzy};
use corral_storage::store::{FileStore, Restored, StoreError, StoreOptions};
use corral_tree::core::{Core, CoreConfig, Now, Output as CoreOutput, Role, Submitted};
use corral_zab::sync::{txn_log_size_limit, txn_log_within_limit};
use corral_zab::{Durable, Input, Output as PeerOutput, Peer, PeerConfig};
use tracing::{debug, info, warn};

use crate::io::{Action, Event, LearnerConn, Observation};
use crate::limits::*;

/// How the node is set up; the driver builds it from zoo.cfg (or the simulation's seed).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub core: CoreConfig,
    /// `None`: standalone.
    pub ensemble: Option<EnsembleConfig>,
    pub store: StoreOptions,
    pub snapshots: SnapshotPolicy,
    /// Emit [`Action::Observed`] (the simulation's checkers follow them).
    pub observe: bool,
}

#[derive(Debug, Clone)]
pub struct EnsembleConfig {
    pub peer: PeerConfig,
    /// `zookeeper.snapshotSizeFactor` (`ZKDatabase`): a txn-log sync is allowed while the logs
    /// to send are under this factor times the latest snapshot's size.
    pub snapshot_size_factor: f64,
}

#[derive(Debug, Clone)]
pub struct SnapshotPolicy {
    /// `snapCount`: a snapshot after a random count in [snapCount/2, snapCount) txns.
    pub snap_count: u64,
    /// Seeds that randomness (members of an ensemble must differ, so they do not snapshot in
    /// lockstep; the simulation derives it from its seed).
    pub seed: u64,
    /// `autopurge.snapRetainCount`.
    pub retain: usize,
    /// `autopurge.purgeInterval` in ms; `None`: no autopurge.
    pub purge_interval_ms: Option<u64>,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("epoch files are behind the data: currentEpoch {current}, acceptedEpoch {accepted}, last zxid 0x{last:x}")]
    EpochsBehind {
        current: Epoch,
        accepted: Epoch,
        last: i64,
    },
}

/// A start that failed, with what a checker saw happen before it failed (a snapshot may have
/// been written).
#[derive(Debug)]
pub struct StartFailed {
    pub error: StartError,
    pub observed: Vec<Observation>,
}

impl std::fmt::Display for StartFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for StartFailed {}

/// Which of ZooKeeper's txn latencies (`logLatency`: now minus the txn header's time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnLatency {
    /// A follower receiving a PROPOSAL (`proposal_latency`).
    Proposal,
    /// The leader reaching a quorum of acks (`quorum_ack_latency`).
    QuorumAck,
    /// A learner receiving the COMMIT (`commit_propagation_latency`).
    CommitPropagation,
}

/// Latencies kept between takes: a node nobody asks (the simulation) stays small.
const LATENCIES_KEPT: usize = 65_536;

/// Counters the four-letter words show that only the node sees.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeCounters {
    /// Txns appended to the log.
    pub txns: u64,
    /// Leader: sizes of the txns it proposed (`Proposal sizes last/min/max`).
    pub proposal_sizes: Option<ProposalSizes>,
    /// Leader: txns proposed (`zk_proposal_count`) and committed (`zk_commit_count`).
    pub proposals: u64,
    pub leader_commits: u64,
    /// Committed txns whose TxnDigest differs from the tree's digest after applying them
    /// (`zk_digest_mismatches_count`).
    pub digest_mismatches: u64,
    /// Once serving: a follower's proposals, a learner's commits (an observer's INFORMs)
    /// received from the leader.
    pub learner_proposals: u64,
    pub learner_commits: u64,
    /// Leader: learners synced by DIFF or TRUNC, and by SNAP.
    pub diff_syncs: u64,
    pub snap_syncs: u64,
    /// Leader: sessions revalidated for learners.
    pub revalidations: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct ProposalSizes {
    pub last: usize,
    pub min: usize,
    pub max: usize,
}

impl NodeCounters {
    fn add_proposal(&mut self, bytes: usize) {
        self.proposals += 1;
        self.proposal_sizes = Some(match self.proposal_sizes {
            None => ProposalSizes {
                last: bytes,
                min: bytes,
                max: bytes,
            },
            Some(p) => ProposalSizes {
                last: bytes,
                min: p.min.min(bytes),
                max: p.max.max(bytes),
            },
        });
    }

    /// `srst`: what ZooKeeper's `resetStatistics` clears (the counts are reset by the
    /// server's metrics, which read these as they grow).
    pub fn reset(&mut self) {
        self.proposal_sizes = None;
    }
}

/// A learner connection accepted while we are still looking. Another member may decide for us
/// as leader a moment before we do and dial us at once; closing that connection would send it
/// back into an election that cannot finish until we give up leading (initLimit ticks), so it
/// is held, with what it sent, until we decide: leading, it is handed to the peer; following
/// or observing, it is closed.
struct PendingLearner {
    packets: Vec<QuorumPacket>,
    since_ms: u64,
}

/// The ensemble half of a node.
struct Ensemble {
    peer: Peer,
    state: ServerState,
    voters: usize,
    snapshot_size_factor: f64,
    learners: BTreeSet<LearnerConn>,
    pending_learners: BTreeMap<LearnerConn, PendingLearner>,
}

/// One corral server: see the crate documentation.
pub struct Node<D: Disk> {
    core: Core,
    ensemble: Option<Ensemble>,
    store: FileStore<D>,
    policy: SnapshotPolicy,
    /// Txns appended since the last snapshot started, and the count at which the next is due.
    since_snapshot: u64,
    next_snapshot_after: u64,
    rng: u64,
    /// The fuzzy snapshot being walked between events, and when it started (ms).
    walking: Option<(Fuzzy, u64)>,
    /// A background storage job (snapshot write or purge) is out with the driver; at most one.
    job_in_flight: bool,
    last_purge_ms: u64,
    /// A peer output that must wait for the job to finish (it replaces the state on disk).
    stalled: Option<PeerOutput>,
    /// The highest zxid appended and not yet durable.
    unsynced: Option<i64>,
    sync_asked: bool,
    /// Standalone: replies and closes that follow an unsynced append, released by the sync.
    held: Vec<Action>,
    clients: BTreeSet<u64>,
    out: VecDeque<Action>,
    counters: NodeCounters,
    load_summary: String,
    /// Txns replayed at start-up, and the milliseconds the snapshot and the replay took.
    startup: (u64, Option<u64>, Option<u64>),
    /// Txn latencies for the server's metrics, taken with [`Node::take_latencies`].
    latencies: Vec<(TxnLatency, i64)>,
    failed: bool,
    observe: bool,
}

impl<D: Disk> Node<D> {
    /// Load the data directory over `disk` and set up the core (and the peer, in an ensemble).
    /// A snapshot that must exist before serving (no snapshot yet, or ephemerals of dead
    /// sessions dropped without a txn) is written here; one that only saves replay time at the
    /// next start is walked fuzzily once running.
    pub fn start(cfg: NodeConfig, disk: D, now: Now) -> Result<Node<D>, StartFailed> {
        let store = FileStore::new(disk, cfg.store.clone()).map_err(|e| StartFailed {
            error: e.into(),
            observed: Vec::new(),
        })?;
        let mut node = Node {
            core: Core::with_state(cfg.core.clone(), now, corral_tree::DataTree::new(), &[]),
            ensemble: None,
            store,
            policy: cfg.snapshots.clone(),
            since_snapshot: 0,
            next_snapshot_after: 0,
            rng: cfg.snapshots.seed | 1,
            walking: None,
            job_in_flight: false,
            last_purge_ms: now.mono_ms,
            stalled: None,
            unsynced: None,
            sync_asked: false,
            held: Vec::new(),
            clients: BTreeSet::new(),
            out: VecDeque::new(),
            counters: NodeCounters::default(),
            load_summary: String::new(),
            startup: (0, None, None),
            latencies: Vec::new(),
            failed: false,
            observe: cfg.observe,
        };
        match node.start_inner(cfg, now) {
            Ok(()) => Ok(node),
            Err(error) => {
                let observed = (node.out.drain(..))
                    .filter_map(|a| match a {
                        Action::Observed(o) => Some(o),
                        _ => None,
                    })
                    .collect();
                Err(StartFailed { error, observed })
            }
        }
    }

    fn start_inner(&mut self, cfg: NodeConfig, now: Now) -> Result<(), StartError> {
        let node = self;
        node.policy.snap_count = node.policy.snap_count.max(SNAP_COUNT_MIN);
        node.policy.retain = node.policy.retain.max(PURGE_RETAIN_MIN);
        node.pick_next_snapshot();
        let loaded = node.load(now)?;
        node.load_summary = loaded.summary.clone();
        let r = &loaded.report;
        node.startup = (r.replayed, r.snapshot_ms, r.replay_ms);
        let last = loaded.tree.last_processed_zxid();
        node.core = Core::with_state(cfg.core, now, loaded.tree, &loaded.sessions);
        if let Some(e) = cfg.ensemble {
            node.core.set_role(now, Role::Learner);
            node.core.set_serving(false);
            let (current, accepted) = node.check_epochs(last)?;
            let durable = Durable {
                last_zxid: Zxid(last),
                last_applied_zxid: Zxid(last),
                accepted_epoch: accepted,
                current_epoch: current,
                // Only txns the tree reflects, ending at its zxid (the peer's contract).
                committed_log: typed_log(loaded.recent_txns, last),
                log_tail: Vec::new(),
            };
            let voters = e.peer.members.iter().filter(|(_, obs)| !obs).count();
            node.ensemble = Some(Ensemble {
                peer: Peer::new(e.peer, durable, now.mono_ms),
                state: ServerState::Looking,
                voters,
                snapshot_size_factor: e.snapshot_size_factor,
                learners: BTreeSet::new(),
                pending_learners: BTreeMap::new(),
            });
            node.install_config_node(now);
        }
        node.pump(now);
        Ok(())
    }

    /// The epoch files, created from the data when absent (a first start, or a data directory
    /// from a standalone server), and checked against it.
    fn check_epochs(&mut self, last: i64) -> Result<(Epoch, Epoch), StartError> {
        let dir = self.store.snap_dir().to_path_buf();
        let disk = self.store.disk();
        let epoch_of_last = Zxid(last).epoch();
        let current = match corral_storage::epoch::read(disk, &dir, "currentEpoch")? {
            Some(c) => c,
            None => {
                corral_storage::epoch::write(disk, &dir, "currentEpoch", epoch_of_last)?;
                epoch_of_last
            }
        };
        let accepted = match corral_storage::epoch::read(disk, &dir, "acceptedEpoch")? {
            Some(a) => a,
            None => {
                corral_storage::epoch::write(disk, &dir, "acceptedEpoch", current)?;
                current
            }
        };
        // A learner that loaded a leader's SNAP holds data of an epoch it has accepted but
        // whose NEWLEADER it had not seen when it stopped (sim seed 378): that data is the
        // leader's committed history, so its epoch becomes current.
        let current = if current < epoch_of_last && accepted >= epoch_of_last {
            warn!("currentEpoch {current} is behind the data (last zxid 0x{last:x}) of accepted epoch {accepted}: raising it to {epoch_of_last}");
            corral_storage::epoch::write(disk, &dir, "currentEpoch", epoch_of_last)?;
            epoch_of_last
        } else {
            current
        };
        if current < epoch_of_last || accepted < current {
            return Err(StartError::EpochsBehind {
                current,
                accepted,
                last,
            });
        }
        info!("last zxid 0x{last:x}, currentEpoch {current}, acceptedEpoch {accepted}");
        Ok((current, accepted))
    }

    /// Restore from disk, with the start-up snapshot policy (see [`Node::start`]).
    fn load(&mut self, now: Now) -> Result<Restored, StoreError> {
        let r = self.store.restore()?;
        let last_zxid = r.tree.last_processed_zxid();
        self.observed(Observation::Loaded {
            snapshot_zxid: r.report.snapshot.as_ref().map(|s| s.1),
            last_zxid,
        });
        if r.report.snapshot.is_none() || r.report.dead_sessions > 0 {
            self.observed(Observation::SnapshotStarted { zxid: last_zxid });
            // Before serving, a snapshot must hold what is not in any file yet: ephemerals
            // dropped without a txn (their sessions are gone), or, from an empty directory, the
            // initial tree (a log without any snapshot is refused at the next start). Nothing
            // runs yet: not fuzzy.
            self.write_snapshotnow(&r.tree, r.sessions.clone())?;
        } else if r.report.replayed > 0 {
            // Everything loaded is on disk already (snapshot + logs), so serving need not wait:
            // snapshot it in the background, as a fuzzy snapshot between requests, so the next
            // start does not replay the same logs again (ZooKeeper takes this snapshot before
            // it serves).
            self.store.roll()?;
            self.observed(Observation::SnapshotStarted { zxid: last_zxid });
            self.walking = Some((Fuzzy::start(&r.tree, r.sessions.clone()), now.mono_ms));
        }
        Ok(r)
    }

    /// A whole snapshot of `tree`, written here and now (nothing else runs meanwhile).
    /// A consistent snapshot of the database as it is now, in ZooKeeper's snapshot format
    /// (uncompressed, with its checksum and digest): (its zxid, its bytes). The AdminServer's
    /// `snapshot` (ZooKeeper 3.9): a hot backup `restore` or ZooKeeper can load. The node does
    /// nothing else while it is taken.
    pub fn snapshot_now(&self) -> (i64, Vec<u8>) {
        let tree = self.core.tree();
        let mut f = Fuzzy::start(tree, self.core.session_list());
        while !f.step(tree, usize::MAX) {}
        let zxid = f.zxid();
        let raw = f.finish(Some((tree.last_processed_zxid(), tree.digest() as i64)));
        (zxid, raw)
    }

    /// The AdminServer's `restore` (ZooKeeper 3.9), on a standalone server: the database becomes
    /// the snapshot in `blob` (as `snapshot` gives it). Every client connection is closed;
    /// clients whose sessions the snapshot holds resume them. The restored state is written as
    /// a snapshot named after the zxid this server goes on from, the higher of the snapshot's
    /// and its own, so its txn log stays in order and a restart comes back to the restored
    /// state. Returns the snapshot's zxid. Nothing changes when the blob is not a whole,
    /// intact snapshot.
    pub fn restore(&mut self, now: Now, blob: &[u8]) -> Result<i64, String> {
        if self.ensemble.is_some() {
            return Err(
                "restore is for a standalone server: an ensemble member's database \
                        comes from its leader"
                    .into(),
            );
        }
        if self.job_in_flight || self.unsynced.is_some() {
            return Err(
                "a snapshot is being written or txns are not yet durable; try again".into(),
            );
        }
        let (mut tree, meta) = snapshot::deserialize(blob, usize::MAX)
            .map_err(|e| format!("not an intact snapshot: {e}"))?;
        // A snapshot's zxid is in its file's name; a stream carries it in its digest trailer
        // (the zxid the digest was taken at).
        let restored = meta
            .digest
            .map_or(tree.last_processed_zxid(), |(zxid, _)| zxid);
        let go_on = restored.max(self.core.last_zxid());
        tree.set_last_processed_zxid(go_on);
        info!(
            "restoring a snapshot at 0x{restored:x}: {} znodes, {} sessions; going on from 0x{go_on:x}",
            tree.node_count(),
            meta.sessions.len()
        );
        self.write_snapshotnow(&tree, meta.sessions.clone())
            .map_err(|e| format!("cannot write the restored snapshot: {e}"))?;
        self.since_snapshot = 0;
        self.core.set_serving(false);
        self.core.replace_state(now, tree, &meta.sessions);
        self.core.set_serving(true);
        self.pump(now);
        Ok(restored)
    }

    fn write_snapshotnow(
        &mut self,
        tree: &corral_tree::DataTree,
        sessions: Vec<(i64, i32)>,
    ) -> Result<(), StoreError> {
        self.walking = None;
        let mut f = Fuzzy::start(tree, sessions);
        while !f.step(tree, usize::MAX) {}
        self.store.roll()?;
        let zxid = f.zxid();
        let nodes = f.nodes_written();
        let raw = f.finish(Some((tree.last_processed_zxid(), tree.digest() as i64)));
        let path = self.store.write_snapshot(zxid, &raw)?;
        info!(
            "snapshot {} written: {nodes} znodes, {} bytes uncompressed",
            path.display(),
            raw.len()
        );
        Ok(())
    }

    fn pick_next_snapshot(&mut self) {
        // xorshift64: the spread only has to differ between servers (one generator, for this).
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = self.policy.snap_count / 2;
        self.next_snapshot_after = half + self.rng % half.max(1);
    }

    // ---- reading -------------------------------------------------------------------------

    /// The core's figures for the server's metrics since the last call.
    pub fn take_tally(&mut self) -> corral_tree::core::Tally {
        self.core.take_tally()
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The ZAB peer, in an ensemble.
    pub fn peer(&self) -> Option<&Peer> {
        self.ensemble.as_ref().map(|e| &e.peer)
    }

    /// `None`: standalone.
    pub fn state(&self) -> Option<ServerState> {
        self.ensemble.as_ref().map(|e| e.state)
    }

    /// Learner connections the leader holds (`zk_learners`).
    pub fn learner_count(&self) -> usize {
        self.ensemble.as_ref().map_or(0, |e| e.learners.len())
    }

    /// Voters needed for a quorum (`zk_quorum_size`).
    pub fn quorum_size(&self) -> usize {
        self.ensemble.as_ref().map_or(1, |e| e.voters / 2 + 1)
    }

    /// `zk_peer_state`, as QuorumPeer.getDetailedPeerState words it.
    pub fn detailed_state(&self) -> String {
        let Some(e) = &self.ensemble else {
            return "standalone".into();
        };
        let phase = if e.peer.serving() {
            "broadcast"
        } else {
            "synchronization"
        };
        match e.state {
            ServerState::Looking => "looking".into(),
            ServerState::Leading => format!("leading - {phase}"),
            ServerState::Following => format!("following - {phase}"),
            ServerState::Observing => format!("observing - {phase}"),
        }
    }

    pub fn counters(&self) -> &NodeCounters {
        &self.counters
    }

    pub fn counters_mut(&mut self) -> &mut NodeCounters {
        &mut self.counters
    }

    /// What start-up loaded, for the log.
    /// Start-up figures: txns replayed, and the milliseconds loading the snapshot and
    /// replaying the logs took.
    pub fn startup_figures(&self) -> (u64, Option<u64>, Option<u64>) {
        self.startup
    }

    pub fn load_summary(&self) -> &str {
        &self.load_summary
    }

    /// Whether the node stopped on a storage failure ([`Action::Fatal`]).
    pub fn failed(&self) -> bool {
        self.failed
    }

    // ---- driving -------------------------------------------------------------------------

    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// When [`Node::handle_timeout`] is due next (mono ms): session expiry, peer timers, held
    /// learner connections, autopurge, and at once while a snapshot walk has slices left.
    pub fn poll_timeout(&self) -> u64 {
        if self.failed {
            return u64::MAX;
        }
        if self.walking.is_some() {
            return 0;
        }
        let mut t = self.core.next_wakeup_ms();
        if let Some(e) = &self.ensemble {
            if let Some(p) = e.peer.poll_timeout() {
                t = t.min(p);
            }
            for p in e.pending_learners.values() {
                t = t.min(p.since_ms + PENDING_LEARNER_TTL_MS);
            }
        }
        if let Some(every) = self.policy.purge_interval_ms {
            // Only while it can start: a job in flight would leave this in the past.
            if !self.job_in_flight {
                t = t.min(self.last_purge_ms + every);
            }
        }
        t
    }

    pub fn handle(&mut self, now: Now, ev: Event) {
        if self.failed {
            return;
        }
        match ev {
            Event::ClientOpen { conn, addr, x509 } => {
                self.clients.insert(conn);
                self.core.handle_open_tls(conn, addr, x509.as_deref());
            }
            Event::ClientConnect { conn, connect } => self.core.handle_connect(now, conn, &connect),
            Event::ClientRequest { conn, xid, req } => {
                self.core.handle_request(now, conn, xid, req)
            }
            Event::ClientMalformed { conn, xid, op_type } => {
                self.core.handle_malformed(now, conn, xid, op_type)
            }
            Event::ClientUnimplemented { conn, xid } => {
                // Behind whatever the core has pending for this connection.
                self.pump(now);
                let code = corral_proto::ErrorCode::Unimplemented.code();
                let frame = corral_proto::request::reply_frame(xid, -1, code, &[]);
                self.emit_client(Action::Send { conn, frame });
                self.emit_client(Action::Close { conn });
            }
            Event::ClientClosed { conn } => {
                self.clients.remove(&conn);
                self.core.handle_closed(conn);
            }
            Event::SnapshotWritten { result } => {
                self.job_in_flight = false;
                if let Err(e) = result {
                    return self.fatal("cannot write a snapshot", e);
                }
                self.resume(now);
            }
            Event::PurgeDone { result } => {
                self.job_in_flight = false;
                match result {
                    Ok(n) => info!(
                        "autopurge removed {n} old file(s), keeping {} snapshots",
                        self.policy.retain
                    ),
                    Err(e) => return self.fatal("autopurge failed", e),
                }
                self.resume(now);
            }
            quorum => self.handle_quorum(now, quorum),
        }
        self.pump(now);
    }

    fn handle_quorum(&mut self, now: Now, ev: Event) {
        let Some(e) = self.ensemble.as_mut() else {
            debug!("standalone: quorum event ignored: {ev:?}");
            return;
        };
        let ms = now.mono_ms;
        match ev {
            Event::ElectionConnected { sid } => {
                e.peer.handle(ms, Input::ElectionPeerConnected { sid })
            }
            Event::Election { from, n } => e.peer.handle(ms, Input::Election { from, n }),
            Event::LearnerConnected { conn } => match e.state {
                ServerState::Leading => {
                    e.learners.insert(conn);
                    e.peer.handle(ms, Input::LearnerConnected { conn });
                }
                ServerState::Looking if e.pending_learners.len() < PENDING_LEARNERS_MAX => {
                    let p = PendingLearner {
                        packets: Vec::new(),
                        since_ms: ms,
                    };
                    e.pending_learners.insert(conn, p);
                }
                _ => self.out.push_back(Action::CloseLearner { conn }),
            },
            Event::LearnerPacket { conn, p } => {
                if e.learners.contains(&conn) {
                    e.peer.handle(ms, Input::LearnerPacket { conn, p });
                } else if let Some(pending) = e.pending_learners.get_mut(&conn) {
                    if pending.packets.len() < PENDING_PACKETS_MAX {
                        pending.packets.push(p);
                    } else {
                        warn!("learner connection {conn} sent too much before we led; closing");
                        e.pending_learners.remove(&conn);
                        self.out.push_back(Action::CloseLearner { conn });
                    }
                }
            }
            Event::LearnerClosed { conn } => {
                e.pending_learners.remove(&conn);
                if e.learners.remove(&conn) {
                    e.peer.handle(ms, Input::LearnerClosed { conn });
                }
            }
            Event::LeaderConnected => e.peer.handle(ms, Input::LeaderConnected),
            Event::LeaderPacket(p) => e.peer.handle(ms, Input::LeaderPacket(p)),
            Event::LeaderSnapshot { zxid, blob } => {
                let zxid = Zxid(zxid);
                e.peer.handle(ms, Input::LeaderSnapshot { zxid, blob })
            }
            Event::LeaderClosed => e.peer.handle(ms, Input::LeaderClosed),
            other => unreachable!("not a quorum event: {other:?}"),
        }
    }

    /// Timers: sessions, the peer, held learner connections, autopurge, a snapshot slice.
    pub fn handle_timeout(&mut self, now: Now) {
        if self.failed {
            return;
        }
        if now.mono_ms >= self.core.next_wakeup_ms() {
            self.core.handle_tick(now);
        }
        if let Some(e) = self.ensemble.as_mut() {
            if e.peer.poll_timeout().is_some_and(|t| now.mono_ms >= t) {
                e.peer.handle_timeout(now.mono_ms);
            }
            let expired: Vec<LearnerConn> = (e.pending_learners.iter())
                .filter(|(_, p)| now.mono_ms >= p.since_ms + PENDING_LEARNER_TTL_MS)
                .map(|(c, _)| *c)
                .collect();
            for conn in expired {
                e.pending_learners.remove(&conn);
                self.out.push_back(Action::CloseLearner { conn });
            }
        }
        // autopurge.purgeInterval runs on its own clock, like ZooKeeper's PurgeTask, not only
        // when a snapshot happens to be written.
        if let Some(every) = self.policy.purge_interval_ms {
            let due = now.mono_ms >= self.last_purge_ms + every;
            if due && self.walking.is_none() && !self.job_in_flight {
                self.last_purge_ms = now.mono_ms;
                self.job_in_flight = true;
                let retain = self.policy.retain;
                self.out.push_back(Action::Purge { retain });
            }
        }
        self.walk_step(now);
        self.pump(now);
    }

    /// The [`Action::Sync`] is done: the appended txns are durable... once this returns
    /// without [`Action::Fatal`]. The node syncs through its `Disk` here (the driver may call
    /// this on a thread that may block).
    pub fn handle_sync(&mut self, now: Now) {
        self.sync_asked = false;
        if self.failed {
            return;
        }
        let Some(zxid) = self.unsynced.take() else {
            return;
        };
        if let Err(e) = self.store.sync() {
            // Never acknowledge what could not be made durable: stop instead.
            return self.fatal("cannot write the txn log", e);
        }
        let held = std::mem::take(&mut self.held);
        self.out.extend(held);
        // A snapshot that is due while the last one is still being walked or written waits for
        // it (ZooKeeper skips it instead, "Too busy to snap"): under a steady write load
        // skipping lets the logs a restart must replay grow without bound.
        if self.since_snapshot >= self.next_snapshot_after && self.start_snapshot(now) {
            self.since_snapshot = 0;
            self.pick_next_snapshot();
        }
        if let Some(e) = self.ensemble.as_mut() {
            e.peer
                .handle(now.mono_ms, Input::Synced { zxid: Zxid(zxid) });
        }
        self.pump(now);
    }

    // ---- internals -----------------------------------------------------------------------

    fn fatal(&mut self, what: &str, e: impl std::fmt::Display) {
        if !self.failed {
            self.failed = true;
            self.out.push_back(Action::Fatal {
                what: format!("{what}: {e}"),
            });
        }
    }

    /// A client action: held behind an unsynced append in standalone mode.
    fn emit_client(&mut self, a: Action) {
        if self.ensemble.is_none() && self.unsynced.is_some() {
            self.held.push(a);
        } else {
            self.out.push_back(a);
        }
    }

    /// Run the core's and the peer's outputs until both are quiet; then ask for a sync if
    /// anything was appended.
    fn pump(&mut self, now: Now) {
        let mut rounds = 0u64;
        loop {
            rounds += 1;
            assert!(rounds < 1 << 32, "core and peer outputs never settle");
            if self.failed {
                return;
            }
            let mut busy = false;
            while let Some(o) = self.core.poll_output() {
                busy = true;
                self.core_output(now, o);
                if self.failed {
                    return;
                }
            }
            while self.stalled.is_none() {
                let Some(o) = self.ensemble.as_mut().and_then(|e| e.peer.poll_output()) else {
                    break;
                };
                busy = true;
                self.peer_output(now, o);
                if self.failed {
                    return;
                }
            }
            if !busy {
                break;
            }
        }
        if self.unsynced.is_some() && !self.sync_asked {
            self.sync_asked = true;
            self.out.push_back(Action::Sync);
        }
    }

    fn observed(&mut self, o: Observation) {
        if self.observe {
            self.out.push_back(Action::Observed(o));
        }
    }

    fn append(&mut self, txn: &Txn) {
        if self.observe {
            let (zxid, txn) = (txn.zxid(), txn.to_bytes());
            self.observed(Observation::Appended { zxid, txn });
        }
        self.counters.txns += 1;
        self.since_snapshot += 1;
        self.store.append(txn);
        self.unsynced = Some(txn.zxid());
    }

    fn core_output(&mut self, now: Now, o: CoreOutput) {
        match o {
            CoreOutput::Send { conn, frame } => self.emit_client(Action::Send { conn, frame }),
            CoreOutput::Close { conn } => self.emit_client(Action::Close { conn }),
            CoreOutput::Append(txn) => {
                assert!(
                    self.ensemble.is_none(),
                    "an ensemble core does not log by itself (0x{:x})",
                    txn.zxid()
                );
                self.append(&txn);
            }
            CoreOutput::Submit(s) => {
                let e = self
                    .ensemble
                    .as_mut()
                    .expect("only an ensemble core submits");
                let req = ForwardedRequest {
                    session_id: s.session,
                    cxid: s.cxid,
                    op_type: s.op_type,
                    body: s.body,
                };
                e.peer.handle(now.mono_ms, Input::Submit(req, s.auth));
            }
            CoreOutput::Revalidate { session, timeout } => {
                let e = self
                    .ensemble
                    .as_mut()
                    .expect("only an ensemble core revalidates");
                let input = Input::Revalidate {
                    session_id: SessionId(session),
                    timeout,
                };
                e.peer.handle(now.mono_ms, input);
            }
        }
    }

    fn peer_input(&mut self, now: Now, input: Input) {
        if let Some(e) = self.ensemble.as_mut() {
            e.peer.handle(now.mono_ms, input);
        }
    }

    fn peer_output(&mut self, now: Now, o: PeerOutput) {
        match o {
            PeerOutput::ElectionSend { to, n } => {
                self.out.push_back(Action::ElectionSend { to, n })
            }
            PeerOutput::ConnectToLeader { sid } => {
                self.out.push_back(Action::ConnectToLeader { sid })
            }
            PeerOutput::CloseLeader => self.out.push_back(Action::CloseLeader),
            PeerOutput::SendLeader(p) => self.out.push_back(Action::SendLeader(p)),
            PeerOutput::SendLearner { conn, p } => {
                match p.r#type {
                    packet_type::DIFF | packet_type::TRUNC => self.counters.diff_syncs += 1,
                    packet_type::SNAP => self.counters.snap_syncs += 1,
                    _ => {}
                }
                if self.is_learner(conn) {
                    self.out.push_back(Action::SendLearner { conn, p });
                }
            }
            PeerOutput::SendSnapshot { conn } => {
                if !self.is_learner(conn) {
                    return;
                }
                let zxid = self.core.last_zxid();
                let blob =
                    snapshot::serialize_snap_stream(self.core.tree(), self.core.session_list());
                info!(
                    "sending a snapshot at 0x{zxid:x} ({} bytes) to learner connection {conn}",
                    blob.len()
                );
                self.out
                    .push_back(Action::SendSnapshot { conn, zxid, blob });
            }
            PeerOutput::CloseLearner { conn } => {
                let e = self
                    .ensemble
                    .as_mut()
                    .expect("peer outputs come from a peer");
                if e.learners.remove(&conn) {
                    self.out.push_back(Action::CloseLearner { conn });
                }
            }
            PeerOutput::WriteAcceptedEpoch(epoch) => self.write_epoch("acceptedEpoch", epoch),
            PeerOutput::WriteCurrentEpoch(epoch) => self.write_epoch("currentEpoch", epoch),
            PeerOutput::Append { zxid, txn } => match Txn::from_bytes(&txn) {
                Ok(txn) => {
                    // A serving follower's PROPOSAL (an observer is INFORMed: no proposal).
                    if self.learner_serving() && self.state() == Some(ServerState::Following) {
                        self.counters.learner_proposals += 1;
                        let latency = now.wall_ms - txn.header.time;
                        self.note_latency(TxnLatency::Proposal, latency);
                    }
                    self.append(&txn)
                }
                Err(e) => self.fatal(&format!("undecodable txn 0x{zxid:x}"), e),
            },
            o @ (PeerOutput::Truncate { .. } | PeerOutput::LoadSnapshot { .. })
                if self.job_in_flight =>
            {
                // The job may be writing the state these replace: wait for it.
                self.stalled = Some(o);
            }
            PeerOutput::Truncate { zxid } => self.truncate(now, zxid.0),
            PeerOutput::LoadSnapshot { zxid, blob } => self.load_snapshot(now, zxid.0, blob),
            PeerOutput::Commit {
                zxid: Zxid(zxid),
                txn,
            } => match Txn::from_bytes(&txn) {
                Ok(parsed) => {
                    debug!("commit 0x{zxid:x}");
                    let latency = now.wall_ms - parsed.header.time;
                    if self.learner_serving() {
                        self.counters.learner_commits += 1;
                        self.note_latency(TxnLatency::CommitPropagation, latency);
                    } else if self.state() == Some(ServerState::Leading) {
                        self.counters.leader_commits += 1;
                        self.note_latency(TxnLatency::QuorumAck, latency);
                    }
                    let expected = parsed
                        .digest
                        .clone()
                        .filter(|d| d.version == DIGEST_VERSION);
                    self.core.apply_committed(now, parsed);
                    if let Some(d) = expected {
                        let ours = self.core.tree().digest() as i64;
                        if ours != d.tree_digest {
                            self.counters.digest_mismatches += 1;
                            warn!(
                                "txn 0x{zxid:x}: the tree's digest after applying it is {ours}, \
                                 the txn carries {} (zk_digest_mismatches_count)",
                                d.tree_digest
                            );
                        }
                    }
                    if self.observe {
                        let digest = self.core.tree().digest();
                        self.observed(Observation::Committed { zxid, txn, digest });
                    }
                }
                Err(e) => self.fatal(&format!("undecodable committed txn 0x{zxid:x}"), e),
            },
            PeerOutput::Prepare {
                zxid,
                req,
                auth,
                origin,
            } => {
                let s = Submitted {
                    session: req.session_id,
                    cxid: req.cxid,
                    op_type: req.op_type,
                    body: req.body,
                    auth,
                    owner: origin,
                };
                let txn = self.core.prepare_submitted(now, zxid.0, &s).to_bytes();
                self.counters.add_proposal(txn.len());
                self.peer_input(now, Input::Prepared { txn, zxid });
            }
            PeerOutput::ReadLog {
                conn,
                from_zxid,
                to_zxid,
            } => {
                let txns = self.read_log(conn, from_zxid.0, to_zxid.0);
                self.peer_input(now, Input::LogRead { conn, txns });
            }
            PeerOutput::SyncDone => self.core.handle_sync_done(),
            PeerOutput::CollectTouches => {
                let t = self.core.take_touches();
                let t = t.into_iter().map(|(s, to)| (SessionId(s), to)).collect();
                self.peer_input(now, Input::Touches(t));
            }
            PeerOutput::TouchSessions(v) => {
                let v: Vec<(i64, i32)> = v.into_iter().map(|(s, to)| (s.0, to)).collect();
                self.core.touch_sessions(now, &v)
            }
            PeerOutput::CheckSession {
                conn,
                session_id,
                timeout,
            } => {
                self.counters.revalidations += 1;
                let valid = self.core.check_session(now, session_id.0, timeout, conn);
                let input = Input::SessionChecked {
                    conn,
                    session_id,
                    valid,
                };
                self.peer_input(now, input);
            }
            PeerOutput::SessionRevalidated { session_id, valid } => {
                self.core.handle_revalidated(now, session_id.0, valid)
            }
            PeerOutput::RoleChanged {
                state,
                leader,
                epoch,
            } => self.role_changed(now, state, leader, epoch),
            PeerOutput::StartServing => {
                self.core.set_serving(true);
                let zxid = self.core.last_zxid();
                self.out.push_back(Action::StartServing { zxid });
            }
            PeerOutput::StopServing => {
                // The core closes every client connection (its Close outputs follow).
                let closed = self.clients.len();
                self.core.set_serving(false);
                self.out.push_back(Action::StopServing { closed });
            }
            PeerOutput::ConfigChanged { config } => {
                let text = String::from_utf8_lossy(&config).into_owned();
                let version = corral_proto::quorum::QuorumConfig::version_in(&config);
                info!("the ensemble config is now version 0x{version:x}");
                self.install_config_node(now);
                self.out.push_back(Action::PersistConfig { text, version });
            }
        }
    }

    /// A txn's latency from its header's time (the leader's wall clock when it made it), as
    /// ZooKeeper's `logLatency` measures it; a negative one (clock skew) is left out.
    fn note_latency(&mut self, kind: TxnLatency, ms: i64) {
        if ms >= 0 && self.latencies.len() < LATENCIES_KEPT {
            self.latencies.push((kind, ms));
        }
    }

    /// The txn latencies noted since the last call.
    pub fn take_latencies(&mut self) -> Vec<(TxnLatency, i64)> {
        std::mem::take(&mut self.latencies)
    }

    /// A follower or observer past its sync with the leader.
    fn learner_serving(&self) -> bool {
        matches!(
            self.state(),
            Some(ServerState::Following | ServerState::Observing)
        ) && self.peer().is_some_and(|p| p.serving())
    }

    fn is_learner(&self, conn: LearnerConn) -> bool {
        self.ensemble
            .as_ref()
            .is_some_and(|e| e.learners.contains(&conn))
    }

    fn write_epoch(&mut self, name: &str, epoch: Epoch) {
        let dir = self.store.snap_dir().to_path_buf();
        if let Err(e) = corral_storage::epoch::write(self.store.disk(), &dir, name, epoch) {
            self.fatal(&format!("cannot write {name}"), e);
        }
    }

    fn role_changed(
        &mut self,
        now: Now,
        state: ServerState,
        leader: Option<ServerId>,
        epoch: Epoch,
    ) {
        let e = self
            .ensemble
            .as_mut()
            .expect("peer outputs come from a peer");
        e.state = state;
        if state != ServerState::Leading {
            for conn in std::mem::take(&mut e.learners) {
                self.out.push_back(Action::CloseLearner { conn });
            }
        }
        match state {
            ServerState::Leading => {
                for (conn, pending) in std::mem::take(&mut e.pending_learners) {
                    e.learners.insert(conn);
                    e.peer.handle(now.mono_ms, Input::LearnerConnected { conn });
                    for p in pending.packets {
                        e.peer.handle(now.mono_ms, Input::LearnerPacket { conn, p });
                    }
                }
            }
            ServerState::Looking => {}
            ServerState::Following | ServerState::Observing => {
                for (conn, _) in std::mem::take(&mut e.pending_learners) {
                    self.out.push_back(Action::CloseLearner { conn });
                }
            }
        }
        let role = if state == ServerState::Leading {
            Role::Leader
        } else {
            Role::Learner
        };
        self.core.set_role(now, role);
        self.out.push_back(Action::RoleChanged {
            state,
            leader,
            epoch,
        });
    }

    /// TRUNC: drop logged txns after `zxid`; if the tree is past it, reload from disk.
    fn truncate(&mut self, now: Now, zxid: i64) {
        info!("truncating the txn log after 0x{zxid:x} as the leader says");
        self.unsynced = None;
        if let Err(e) = self.truncate_store(zxid) {
            return self.fatal("cannot truncate the txn log", e);
        }
        if self.core.last_zxid() <= zxid {
            return;
        }
        let loaded = match self.load(now) {
            Ok(l) => l,
            Err(e) => return self.fatal("cannot reload", e),
        };
        self.core.replace_state(now, loaded.tree, &loaded.sessions);
        self.install_config_node(now);
        let last = self.core.last_zxid();
        if last < zxid {
            // The snapshot we stood on was above zxid (a leader's SNAP) and nothing logged
            // leads from an older one to zxid: we are not where the leader thinks. The peer
            // registers again from here.
            warn!("reloaded to 0x{last:x}, below the TRUNC point 0x{zxid:x}");
            let input = Input::Reloaded {
                last_zxid: Zxid(last),
                committed_log: typed_log(loaded.recent_txns, last),
            };
            self.peer_input(now, input);
        }
    }

    fn truncate_store(&mut self, zxid: i64) -> Result<(), StoreError> {
        // A snapshot being walked may be of the state being discarded.
        self.walking = None;
        self.observed(Observation::Truncated { zxid });
        let n = self.store.truncate_after(zxid)?;
        if n > 0 {
            info!("dropped {n} logged txn(s) after 0x{zxid:x}");
        }
        Ok(())
    }

    /// SNAP: the leader's state replaces ours, on disk first.
    fn load_snapshot(&mut self, now: Now, zxid: i64, blob: Vec<u8>) {
        self.unsynced = None;
        let (mut tree, sessions) = match snapshot::deserialize_snap_stream(&blob, usize::MAX) {
            Ok(Some((t, s, _))) => (t, s),
            Ok(None) => return self.fatal("SNAP payload", "incomplete"),
            Err(e) => return self.fatal("SNAP payload", e),
        };
        tree.set_last_processed_zxid(zxid);
        info!(
            "loaded the leader's snapshot at 0x{zxid:x}: {} znodes, {} sessions",
            tree.node_count(),
            sessions.len()
        );
        if let Err(e) = self.truncate_store(zxid) {
            return self.fatal("cannot truncate the txn log", e);
        }
        if let Err(e) = self.write_snapshotnow(&tree, sessions.clone()) {
            return self.fatal("cannot write the snapshot", e);
        }
        // The logs before it may hold txns of the history the leader's state replaced (kept by
        // `truncate_after` because their zxids are lower): a txn-log sync must not send them.
        match self.store.remove_logs_through(zxid) {
            Ok(0) => {}
            Ok(n) => info!("removed {n} txn log(s) older than the leader's snapshot at 0x{zxid:x}"),
            Err(e) => return self.fatal("cannot remove old txn logs", e),
        }
        self.core.replace_state(now, tree, &sessions);
        self.install_config_node(now);
        let digest = self.core.tree().digest();
        self.observed(Observation::SnapLoaded { zxid, digest });
    }

    /// Rule 5 (reference §4.6): the logged txns a learner misses, if the log reaches back and
    /// is within `snapshotSizeFactor` of the latest snapshot.
    fn read_log(&mut self, conn: LearnerConn, from: i64, to: i64) -> Option<Vec<(Zxid, Vec<u8>)>> {
        let factor = self
            .ensemble
            .as_ref()
            .map_or(0.0, |e| e.snapshot_size_factor);
        let read = (|| -> Result<_, StoreError> {
            let snap_len = self.store.latest_snapshot_len()?;
            let limit = txn_log_size_limit(snap_len, factor);
            let within = |later: u64| txn_log_within_limit(later, limit);
            self.store.read_log(from, to, &within)
        })();
        let txns = read.unwrap_or_else(|e| {
            warn!("cannot read the txn log from 0x{from:x}: {e}");
            None
        });
        match &txns {
            Some(t) => info!(
                "read {} txns from the txn log from 0x{from:x} for learner connection {conn}",
                t.len()
            ),
            None => info!(
                "the txn log cannot sync learner connection {conn} from 0x{from:x} (not reaching back, or over snapshotSizeFactor={factor} of the latest snapshot)"
            ),
        }
        txns.map(|t| t.into_iter().map(|(z, b)| (Zxid(z), b)).collect())
    }

    /// `/zookeeper/config` holds the ensemble's config string (ZKDatabase.initConfigInZKDatabase).
    fn install_config_node(&mut self, now: Now) {
        if let Some(e) = &self.ensemble {
            let text = e.peer.config().to_vec();
            let version = corral_proto::quorum::QuorumConfig::version_in(e.peer.config());
            self.core.set_config_node(text, version, now.wall_ms);
        }
    }

    /// Roll the log and begin a fuzzy snapshot at the current zxid; false while the previous
    /// snapshot is still being walked or written.
    fn start_snapshot(&mut self, now: Now) -> bool {
        if self.walking.is_some() || self.job_in_flight {
            return false;
        }
        if let Err(e) = self.store.roll() {
            self.fatal("cannot roll the txn log", e);
            return false;
        }
        let f = Fuzzy::start(self.core.tree(), self.core.session_list());
        self.observed(Observation::SnapshotStarted { zxid: f.zxid() });
        self.walking = Some((f, now.mono_ms));
        true
    }

    /// One bounded slice of the walk; a finished walk goes to the driver to be written.
    fn walk_step(&mut self, now: Now) {
        let Some((f, _)) = self.walking.as_mut() else {
            return;
        };
        let tree = self.core.tree();
        if !f.step_bounded(tree, SNAPSHOT_NODES_PER_STEP, SNAPSHOT_BYTES_PER_STEP) {
            return;
        }
        let (f, started) = self.walking.take().expect("checked above");
        let zxid = f.zxid();
        let nodes = f.nodes_written();
        let raw = f.finish(Some((tree.last_processed_zxid(), tree.digest() as i64)));
        debug!(
            "snapshot at 0x{zxid:x} walked in {} ms",
            now.mono_ms.saturating_sub(started)
        );
        self.job_in_flight = true;
        self.out
            .push_back(Action::WriteSnapshot { zxid, raw, nodes });
    }

    /// The job finished: run what waited for it.
    fn resume(&mut self, now: Now) {
        if let Some(o) = self.stalled.take() {
            self.peer_output(now, o);
        }
    }
}

/// Logged txns up to `last` (the ones the tree reflects), as the peer takes them.
fn typed_log(txns: Vec<(i64, Vec<u8>)>, last: i64) -> Vec<(Zxid, Vec<u8>)> {
    (txns.into_iter())
        .filter(|(z, _)| *z <= last)
        .map(|(z, t)| (Zxid(z), t))
        .collect()
}
