//! The simulator: nodes (the real `corral_node::Node`, the same state machine `corral server`
//! drives, over the real `FileStore` on a `FaultDisk` each), a network of FIFO connections with
//! seeded delays, partitions and resets, and a driver that executes every `Action` the way
//! `corral_server::node_task` does. One event queue ordered by (time, insertion) drives
//! everything; node timers come from `Node::poll_timeout`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use std::path::PathBuf;

use corral_node::{
    Action, EnsembleConfig, Event as NodeEvent, Node as NodeMachine, NodeConfig, Observation,
    SnapshotPolicy, StartError,
};
use corral_proto::quorum::{
    packet_type, Notification, QuorumConfig, QuorumMember, QuorumPacket, ServerState,
};
use corral_proto::request::{Connect, Request};
use corral_proto::txn::{Txn, TxnBody};
use corral_proto::ServerId;
use corral_storage::faultdisk::{Fault, FaultDisk, FaultPlan, OpKind as DiskOp};
use corral_storage::snapshot::Compression;
use corral_storage::store::{FileStore, StoreOptions};
use corral_tree::core::{CoreConfig, Now};
use corral_zab::PeerConfig;

use crate::chain::Chain;
use crate::client::{Client, Hist};
use crate::limits::{BLOCKS_MAX, SAME_INSTANT_TIMERS_MAX, TRACE_KEEP};
use crate::mirror::{GhostEntry, Mirror};
use crate::params::Params;
use crate::rng::{Fnv, Rng};

/// Simulated time starts here, so session ids (built from the clock) look ordinary.
pub const T0: u64 = 1_000_000;
const WALL0: i64 = 1_700_000_000_000;
/// The real node loop wakes at least this often (election redials).
const REDIAL_MS: u64 = 1_000;
/// Txn log preallocation on the simulated disk: small, so files grow (and get padded) often.
const PREALLOC_BYTES: u64 = 16 * 1024;

/// A background storage job the node asked for, run after a delay.
pub(crate) enum Job {
    Snapshot { zxid: i64, raw: Vec<u8> },
    Purge { retain: usize },
}

pub(crate) enum ToLearner {
    Packet(QuorumPacket),
    Snapshot {
        zxid: i64,
        blob: Vec<u8>,
        ghost: Vec<GhostEntry>,
    },
    Closed,
}

/// Client to node.
pub(crate) enum C2N {
    Open,
    Connect(Connect),
    Request(i32, Request),
    Closed,
}

/// Node to client.
pub(crate) enum N2C {
    Frame(Vec<u8>),
    Closed,
}

/// One direction of one connection: messages leave in order; a blocked head (partition)
/// holds back everything behind it.
#[derive(Default)]
struct Channel {
    queue: VecDeque<(u64, Ev)>,
    armed: bool,
}

pub(crate) enum Ev {
    /// The head of a channel is due.
    Channel {
        key: (u8, u64, u64),
    },
    Election {
        to: i64,
        to_inc: u64,
        from: i64,
        n: Notification,
    },
    /// An election connection (re)formed: `to` resends its last notification to `sid`.
    ElectionUp {
        to: i64,
        to_inc: u64,
        sid: i64,
    },
    QOpen {
        conn: u64,
    },
    ToLeader {
        conn: u64,
        p: Option<QuorumPacket>,
    },
    ToLearner {
        conn: u64,
        m: ToLearner,
    },
    Fsync {
        sid: i64,
        inc: u64,
    },
    Job {
        sid: i64,
        inc: u64,
        job: Job,
    },
    C2N {
        conn: u64,
        m: C2N,
    },
    N2C {
        conn: u64,
        m: N2C,
    },
    ClientTick {
        client: usize,
    },
    FaultCrash,
    Restart {
        sid: i64,
    },
    FaultPartition,
    Heal,
    /// One link goes down and up `left` more times.
    FaultFlap {
        a: i64,
        b: i64,
        left: u32,
    },
    /// A node stops (a GC or VM pause) and later carries on where it was.
    FaultPause,
    /// A node's wall clock jumps.
    FaultClockJump,
    FaultCut,
    FaultClientCut,
    /// Every node loses power at once.
    FaultPowerLoss,
}

/// A learner's connection to a leader.
pub(crate) struct QConn {
    learner: i64,
    learner_inc: u64,
    leader: i64,
    leader_inc: u64,
    learner_open: bool,
    leader_open: bool,
}

/// A client's connection to a node.
pub(crate) struct CConn {
    pub client: usize,
    pub node: i64,
    pub node_inc: u64,
}

pub(crate) struct Live {
    pub node: NodeMachine<FaultDisk>,
    pub state: ServerState,
    pub serving: bool,
    leader_conn: Option<u64>,
    /// Learner connections open at this node's quorum port.
    learners: BTreeSet<u64>,
    fsync_pending: bool,
    /// Open client connections (the glue's `st.conns`).
    pub conns: BTreeSet<u64>,
    /// What the tree reflects, txn by txn; `verified` leading entries are on the chain.
    pub ghost: Vec<GhostEntry>,
    pub verified: usize,
    /// The ghost of a SNAP payload received and not yet loaded.
    snap_ghost: Option<(i64, Vec<GhostEntry>)>,
}

pub(crate) struct Node {
    pub sid: i64,
    pub cfg: PeerConfig,
    pub inc: u64,
    pub disk: FaultDisk,
    pub mirror: Mirror,
    pub live: Option<Live>,
    /// Timer firings at `now` so far (a spin guard).
    timers_now: (u64, u32),
    /// How far this node's wall clock is off (skew, and jumps).
    wall_offset: i64,
}

/// Messages from a member of `from` to a member of `to` are held until `until` (TCP keeps
/// them; connections set up across it fail). A symmetric partition is two blocks.
struct Block {
    from: BTreeSet<i64>,
    to: BTreeSet<i64>,
    until: u64,
}

/// Why a run failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    pub invariant: String,
    pub detail: String,
    pub at_ms: u64,
    pub recent: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "seed {}: invariant `{}` broken at t={}ms: {}",
            self.seed, self.invariant, self.at_ms, self.detail
        )?;
        writeln!(f, "last events (newest last):")?;
        for l in &self.recent {
            writeln!(f, "  {l}")?;
        }
        write!(f, "replay with CORRAL_SEED={}", self.seed)
    }
}

/// What a finished run reports.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub trace_hash: u64,
    pub end_ms: u64,
    pub steps: u64,
    pub chain_len: usize,
    pub ops_completed: usize,
    pub ops_unknown: usize,
    pub acked_writes: usize,
    pub crashes: usize,
    pub partitions: usize,
    pub elections: usize,
    /// Watch notifications checked.
    pub notifications: usize,
    /// Writes with lost replies the linearizability check placed or dropped.
    pub lin_unknown: usize,
    /// Containers and TTL nodes the reaper deleted.
    pub reaped: crate::reaper::Reaped,
    /// The linearizability search hit its bound (neither passed nor failed).
    pub lin_inconclusive: bool,
    /// Findings that do not fail the run (see `lib.rs`), with the first time seen.
    pub notes: Vec<String>,
}

#[derive(Clone, Copy)]
struct TraceRec {
    t: u64,
    what: &'static str,
    a: i64,
    b: i64,
    c: i64,
}

pub struct Sim {
    pub(crate) seed: u64,
    pub(crate) p: Params,
    pub(crate) rng: Rng,
    pub(crate) now: u64,
    seq: u64,
    events: BTreeMap<(u64, u64), Ev>,
    channels: BTreeMap<(u8, u64, u64), Channel>,
    pub(crate) nodes: Vec<Node>,
    qconns: BTreeMap<u64, QConn>,
    next_qconn: u64,
    pub(crate) cconns: BTreeMap<u64, CConn>,
    pub(crate) next_cconn: u64,
    pub(crate) clients: Vec<Client>,
    blocks: Vec<Block>,
    /// Nodes paused, until when.
    paused: BTreeMap<i64, u64>,
    /// From this time on (faults over, ensemble settled) no session a client keeps alive
    /// may expire.
    pub(crate) expiry_guard: Option<u64>,
    pub(crate) faults: bool,
    pub(crate) chain: Chain,
    leaders: BTreeMap<i64, i64>,
    trace: Fnv,
    recent: VecDeque<TraceRec>,
    pub(crate) failure: Option<Failure>,
    pub(crate) report: Report,
    pub(crate) history: Vec<Hist>,
    /// The same history in the form the linearizability checker reads.
    pub(crate) rec: crate::record::Recorder,
    /// Highest zxid of a write acknowledged to any client so far.
    pub(crate) max_acked_write: i64,
    /// Acknowledged writes: (zxid, session, cxid).
    pub(crate) acked: Vec<(i64, i64, i32)>,
    /// Clients issue random ops only while true.
    pub(crate) random_ops: bool,
    /// (node, session) that sent a request to a core not serving since its last StopServing.
    pub(crate) stale_pending: BTreeSet<(i64, i64)>,
    /// `CORRAL_SIM_TRACE`: print every trace record as it happens.
    print_trace: bool,
    /// Every txn a node logged or applied, by (zxid, fingerprint): the chain's bodies.
    pub(crate) bodies: HashMap<(i64, u64), TxnBody>,
    /// When each of `bodies` was first logged or applied by any node (simulated ms): no later
    /// than any node applied it, no earlier than its leader prepared it.
    pub(crate) first_seen: HashMap<(i64, u64), u64>,
    /// The chain's txns as the watch events they fire.
    pub(crate) triggers: crate::watch::Triggers,
}

fn now_of(t: u64) -> Now {
    Now {
        mono_ms: t,
        wall_ms: WALL0 + t as i64,
    }
}

/// The ensemble's config string, written by the one codec (`corral_proto::quorum`).
fn config_string(members: &[(i64, bool)]) -> String {
    let members = (members.iter())
        .map(|&(sid, observer)| QuorumMember {
            sid,
            host: format!("10.0.0.{sid}"),
            quorum_port: 2888,
            election_port: 3888,
            observer,
            client: Some(("0.0.0.0".into(), 2181)),
        })
        .collect();
    QuorumConfig {
        members,
        version: 0,
    }
    .to_config_string()
}

// Construction, tracing and failures.
impl Sim {
    pub fn new(seed: u64) -> Sim {
        let mut rng = Rng::new(seed);
        let p = Params::from_seed(&mut rng);
        let mut members: Vec<(i64, bool)> = (1..=p.voters as i64).map(|s| (s, false)).collect();
        if p.observer {
            members.push((p.voters as i64 + 1, true));
        }
        let config = config_string(&members);
        let nodes = members
            .iter()
            .map(|(sid, _)| Node {
                sid: *sid,
                cfg: PeerConfig {
                    my_sid: ServerId(*sid),
                    members: members.iter().map(|&(s, o)| (ServerId(s), o)).collect(),
                    tick_ms: p.tick_ms,
                    init_limit: p.init_limit,
                    sync_limit: p.sync_limit,
                    config: config.clone().into_bytes(),
                    commit_log_count: p.commit_log_count,
                    reconfig_enabled: false,
                    txn_log_sync: corral_zab::sync::txn_log_sync_enabled(p.snapshot_size_factor),
                },
                inc: 0,
                disk: FaultDisk::new(rng.next_u64()),
                mirror: Mirror::default(),
                live: None,
                timers_now: (0, 0),
                wall_offset: 0,
            })
            .collect();
        let clients = (0..p.clients).map(Client::new).collect();
        let mut sim = Sim {
            seed,
            p,
            rng,
            now: T0,
            seq: 0,
            events: BTreeMap::new(),
            channels: BTreeMap::new(),
            nodes,
            qconns: BTreeMap::new(),
            next_qconn: 1,
            cconns: BTreeMap::new(),
            next_cconn: 1,
            clients,
            blocks: Vec::new(),
            paused: BTreeMap::new(),
            expiry_guard: None,
            faults: true,
            chain: Chain::default(),
            leaders: BTreeMap::new(),
            trace: Fnv::default(),
            recent: VecDeque::new(),
            failure: None,
            report: Report {
                seed,
                ..Report::default()
            },
            history: Vec::new(),
            rec: Default::default(),
            max_acked_write: 0,
            acked: Vec::new(),
            random_ops: true,
            stale_pending: BTreeSet::new(),
            print_trace: std::env::var("CORRAL_SIM_TRACE").is_ok(),
            bodies: HashMap::new(),
            first_seen: HashMap::new(),
            triggers: Default::default(),
        };
        if let Some(pct) = sim.p.disk_fault_permille {
            // One node's disk fails now and then (EIO or ENOSPC on a write or an fsync); the
            // node stops, as `corral server` does, and is started again.
            let sid = sim.random_sid();
            let plan = FaultPlan::random(
                pct as f64 / 1000.0,
                &[DiskOp::Write, DiskOp::Sync, DiskOp::WriteAtomic],
                Fault::Either,
            );
            sim.node(sid).disk.set_plan(plan);
        }
        if let Some(skew) = sim.p.clock_skew_ms {
            // Wall clocks disagree from the start (TTL and ctime/mtime read them; session
            // expiry must not).
            for i in 0..sim.nodes.len() {
                sim.nodes[i].wall_offset = sim.rng.range(0, 2 * skew) as i64 - skew as i64;
            }
        }
        let sids: Vec<i64> = sim.nodes.iter().map(|n| n.sid).collect();
        for sid in sids {
            sim.start(sid);
        }
        for c in 0..sim.clients.len() {
            let d = sim.rng.range(1, 50);
            sim.schedule(d, Ev::ClientTick { client: c });
        }
        let gaps = [
            (sim.p.crash_every_ms, 0),
            (sim.p.partition_every_ms, 1),
            (sim.p.cut_every_ms, 2),
            (sim.p.client_cut_every_ms, 3),
            (sim.p.power_loss_every_ms, 4),
            (sim.p.flap_every_ms, 5),
            (sim.p.pause_every_ms, 6),
            (sim.p.clock_jump_every_ms, 7),
        ];
        for (gap, kind) in gaps {
            if let Some(g) = gap {
                let d = sim.rng.range(g / 2, g * 3 / 2);
                let ev = match kind {
                    0 => Ev::FaultCrash,
                    1 => Ev::FaultPartition,
                    2 => Ev::FaultCut,
                    3 => Ev::FaultClientCut,
                    4 => Ev::FaultPowerLoss,
                    5 => Ev::FaultFlap {
                        a: 0,
                        b: 0,
                        left: 0,
                    },
                    6 => Ev::FaultPause,
                    _ => Ev::FaultClockJump,
                };
                sim.schedule(d, ev);
            }
        }
        sim
    }

    pub(crate) fn trace(&mut self, what: &'static str, a: i64, b: i64, c: i64) {
        if self.print_trace {
            eprintln!("t={} {what} {a} 0x{b:x} {c}", self.now - T0);
        }
        self.trace.bytes(what.as_bytes());
        self.trace.u64(self.now);
        self.trace.u64(a as u64);
        self.trace.u64(b as u64);
        self.trace.u64(c as u64);
        if self.recent.len() == TRACE_KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(TraceRec {
            t: self.now,
            what,
            a,
            b,
            c,
        });
    }

    /// Record the first broken invariant; the run stops after the current step.
    pub(crate) fn fail(&mut self, invariant: &str, detail: String) {
        if self.failure.is_some() {
            return;
        }
        let recent = self
            .recent
            .iter()
            .map(|r| format!("t={} {} {} 0x{:x} {}", r.t - T0, r.what, r.a, r.b, r.c))
            .collect();
        self.failure = Some(Failure {
            seed: self.seed,
            invariant: invariant.to_string(),
            detail,
            at_ms: self.now - T0,
            recent,
        });
    }

    pub(crate) fn note(&mut self, what: &str) {
        if !self.report.notes.iter().any(|n| n.starts_with(what)) {
            let t = self.now - T0;
            self.report.notes.push(format!("{what} (first at t={t}ms)"));
        }
    }

    pub(crate) fn schedule(&mut self, delay: u64, ev: Ev) {
        self.seq += 1;
        self.events.insert((self.now + delay, self.seq), ev);
    }

    fn net_delay(&mut self) -> u64 {
        if self.faults && self.rng.chance(self.p.slow_pct) {
            self.rng.range(50, 500)
        } else {
            self.rng.range(1, self.p.delay_max_ms)
        }
    }

    /// Queue on a FIFO channel, due no earlier than `not_before`.
    fn send_on(&mut self, key: (u8, u64, u64), not_before: u64, ev: Ev) {
        let d = self.net_delay();
        let ch = self.channels.entry(key).or_default();
        let last = ch.queue.back().map_or(0, |(t, _)| *t);
        let t = (not_before.max(self.now) + d).max(last);
        ch.queue.push_back((t, ev));
        if !ch.armed {
            ch.armed = true;
            let head = ch.queue.front().map_or(t, |(t, _)| *t);
            self.seq += 1;
            self.events
                .insert((head.max(self.now), self.seq), Ev::Channel { key });
        }
    }

    fn channel_due(&mut self, key: (u8, u64, u64)) {
        let Some(ch) = self.channels.get_mut(&key) else {
            return;
        };
        ch.armed = false;
        let Some((t, ev)) = ch.queue.pop_front() else {
            return;
        };
        if let Err(held) = self.deliver_msg(ev) {
            let (ev, until) = *held;
            // Held by a partition: it and everything behind it wait for the heal.
            let ch = self.channels.get_mut(&key).expect("exists");
            ch.queue.push_front((t.max(until), ev));
        }
        let now = self.now;
        let ch = self.channels.get_mut(&key).expect("exists");
        if ch.armed {
            return;
        }
        if let Some((t, _)) = ch.queue.front() {
            ch.armed = true;
            let at = (*t).max(now);
            self.seq += 1;
            self.events.insert((at, self.seq), Ev::Channel { key });
        } else {
            self.channels.remove(&key);
        }
    }

    pub(crate) fn send_client(&mut self, conn: u64, m: N2C) {
        self.send_on((1, conn, 1), 0, Ev::N2C { conn, m });
    }

    pub(crate) fn send_node(&mut self, conn: u64, m: C2N) {
        self.send_on((1, conn, 0), 0, Ev::C2N { conn, m });
    }

    fn node(&self, sid: i64) -> &Node {
        &self.nodes[(sid - 1) as usize]
    }

    fn node_mut(&mut self, sid: i64) -> &mut Node {
        &mut self.nodes[(sid - 1) as usize]
    }

    pub(crate) fn live(&self, sid: i64) -> Option<&Live> {
        self.node(sid).live.as_ref()
    }

    fn live_mut(&mut self, sid: i64) -> Option<&mut Live> {
        self.node_mut(sid).live.as_mut()
    }

    pub(crate) fn alive(&self, sid: i64, inc: u64) -> bool {
        let n = self.node(sid);
        n.live.is_some() && n.inc == inc
    }

    pub(crate) fn inc_of(&self, sid: i64) -> u64 {
        self.node(sid).inc
    }

    /// Until when messages from `from` to `to` are held, if they are now.
    fn held(&self, from: i64, to: i64) -> Option<u64> {
        (self.blocks.iter())
            .filter(|b| b.until > self.now && b.from.contains(&from) && b.to.contains(&to))
            .map(|b| b.until)
            .max()
    }

    /// Until when `a` and `b` cannot set up a connection (either way held), if they cannot.
    fn cut_off(&self, a: i64, b: i64) -> Option<u64> {
        self.held(a, b).max(self.held(b, a))
    }

    /// Until when node `sid` is paused, if it is.
    fn paused(&self, sid: i64) -> Option<u64> {
        self.paused.get(&sid).copied().filter(|u| *u > self.now)
    }

    /// Node `sid`'s clock: the simulated time, its wall clock off by its offset.
    fn clock(&self, sid: i64) -> Now {
        let mut now = now_of(self.now);
        now.wall_ms += self.node(sid).wall_offset;
        now
    }
}

// Node life cycle: start (the real `corral_node::Node::start` over the node's `FaultDisk`),
// crash (power loss on its disk, or only the process).
impl Sim {
    /// Node `sid`'s data directories on its own disk (dataLogDir apart, as operators do).
    fn node_config_store(&self, sid: i64) -> StoreOptions {
        let dir = PathBuf::from(format!("/sim/{sid}"));
        StoreOptions {
            data_dir: dir.join("data"),
            data_log_dir: dir.join("log"),
            force_sync: true,
            prealloc_bytes: PREALLOC_BYTES,
            compression: Compression::None,
            max_txn_len: (1 << 20) + 1024,
            trust_empty_snapshot: false,
            truncate_corrupt_log: false,
        }
    }

    fn node_config(&mut self, sid: i64) -> NodeConfig {
        let seed = self.rng.next_u64();
        NodeConfig {
            core: CoreConfig {
                server_id: sid as u8,
                tick_ms: self.p.tick_ms as u32,
                session_timeout_ms_min: 2 * self.p.tick_ms as u32,
                session_timeout_ms_max: 20_000,
                // The workload makes TTL nodes and containers; the reaper looks every second.
                extended_types: true,
                container_check_interval_ms: crate::limits::REAPER_CHECK_MS,
                ..CoreConfig::default()
            },
            ensemble: Some(EnsembleConfig {
                peer: self.node(sid).cfg.clone(),
                snapshot_size_factor: self.p.snapshot_size_factor,
            }),
            store: self.node_config_store(sid),
            snapshots: SnapshotPolicy {
                snap_count: 2 * self.p.snap_every as u64,
                seed,
                retain: 3,
                purge_interval_ms: self.p.purge_every_ms,
            },
            observe: true,
        }
    }

    fn start(&mut self, sid: i64) {
        let now = self.clock(sid);
        let cfg = self.node_config(sid);
        let disk = self.node(sid).disk.clone();
        let node = match NodeMachine::start(cfg, disk, now) {
            Ok(n) => n,
            Err(f) => {
                // A snapshot may have been written before it failed: keep its history.
                let mut ghost = Vec::new();
                for o in f.observed {
                    let mirror = &mut self.node_mut(sid).mirror;
                    match o {
                        Observation::Loaded {
                            snapshot_zxid,
                            last_zxid,
                        } => match mirror.loaded(snapshot_zxid, last_zxid) {
                            Ok(g) => ghost = g,
                            Err(e) => {
                                let msg = format!("node {sid} (failed start): {e}");
                                let what =
                                    "a reload reflects the snapshot and the logged txns after it";
                                return self.fail(what, msg);
                            }
                        },
                        Observation::SnapshotStarted { zxid } => {
                            mirror.snapshot_started(zxid, &ghost)
                        }
                        _ => {}
                    }
                }
                return self.start_failed(sid, f.error);
            }
        };
        let n = self.node_mut(sid);
        n.inc += 1;
        n.live = Some(Live {
            node,
            state: ServerState::Looking,
            serving: false,
            leader_conn: None,
            learners: BTreeSet::new(),
            fsync_pending: false,
            conns: BTreeSet::new(),
            ghost: Vec::new(),
            verified: 0,
            snap_ghost: None,
        });
        let inc = n.inc;
        self.trace("start", sid, 0, inc as i64);
        self.flush(sid);
        // Election connections to every reachable live member come up, both ways.
        let others: Vec<i64> = self.nodes.iter().map(|n| n.sid).collect();
        for o in others {
            if o != sid && self.live(o).is_some() && self.cut_off(sid, o).is_none() {
                self.election_up(sid, o);
            }
        }
    }

    fn start_failed(&mut self, sid: i64, e: StartError) {
        match e {
            e @ StartError::EpochsBehind { .. } => {
                self.fail(crate::known::EPOCH_BEHIND_SNAP, format!("node {sid}: {e}"))
            }
            e if self.disk_faults_struck(sid) => {
                // The disk failed under start-up itself; the operator starts it again later.
                self.trace("start-failed", sid, 0, 0);
                self.note(&format!("a start-up failed on an injected disk fault: {e}"));
                let d = self.rng.range(200, 2_000);
                self.schedule(d, Ev::Restart { sid });
            }
            e => self.fail(
                "a node starts from its own disk",
                format!("node {sid}: {e}"),
            ),
        }
    }

    /// Whether an injected disk fault has struck this node's disk (its errors are expected).
    fn disk_faults_struck(&self, sid: i64) -> bool {
        !self.node(sid).disk.injected().is_empty()
    }

    fn election_up(&mut self, a: i64, b: i64) {
        let (ia, ib) = (self.inc_of(a), self.inc_of(b));
        let d = self.rng.range(1, 30);
        self.schedule(
            d,
            Ev::ElectionUp {
                to: a,
                to_inc: ia,
                sid: b,
            },
        );
        let d = self.rng.range(1, 30);
        self.schedule(
            d,
            Ev::ElectionUp {
                to: b,
                to_inc: ib,
                sid: a,
            },
        );
    }

    /// The node stops. `power`: its machine loses power too, so its disk keeps only what was
    /// synced (and what `FaultDisk` decides survived of the rest, torn writes included);
    /// otherwise only the process dies and the page cache keeps everything written.
    fn crash(&mut self, sid: i64, power: bool) {
        if self.live(sid).is_none() {
            return;
        }
        let node = self.node_mut(sid);
        let lost = if power {
            node.disk.crash().len()
        } else {
            node.disk.crash_process();
            0
        };
        let live = node.live.take().expect("checked above");
        self.stale_pending.retain(|(s, _)| *s != sid);
        self.trace("crash", sid, power as i64, lost as i64);
        self.report.crashes += 1;
        let ids: Vec<u64> = self.qconns.keys().copied().collect();
        for id in ids {
            let c = &self.qconns[&id];
            if c.learner == sid {
                self.close_learner_side(id);
            }
            let c = &self.qconns[&id];
            if c.leader == sid {
                self.close_leader_side(id);
            }
        }
        for conn in live.conns {
            self.send_client(conn, N2C::Closed);
        }
    }

    fn close_learner_side(&mut self, conn: u64) {
        let c = self.qconns.get_mut(&conn).expect("known connection");
        if c.learner_open {
            c.learner_open = false;
            self.send_on((0, conn, 0), 0, Ev::ToLeader { conn, p: None });
        }
    }

    fn close_leader_side(&mut self, conn: u64) {
        let c = self.qconns.get_mut(&conn).expect("known connection");
        if c.leader_open {
            c.leader_open = false;
            let m = ToLearner::Closed;
            self.send_on((0, conn, 1), 0, Ev::ToLearner { conn, m });
        }
    }
}

// The driver: executes the node's actions the way `corral_server::node_task` does, over the
// simulated network, clock and disk.
impl Sim {
    /// Hand the node an event, then run its actions.
    pub(crate) fn node_event(&mut self, sid: i64, ev: NodeEvent) {
        let now = self.clock(sid);
        let Some(live) = self.live_mut(sid) else {
            return;
        };
        live.node.handle(now, ev);
        self.flush(sid);
    }

    pub(crate) fn flush(&mut self, sid: i64) {
        let mut rounds = 0u32;
        loop {
            rounds += 1;
            if rounds > 10_000 {
                return self.fail("flush terminates", format!("node {sid}"));
            }
            let Some(live) = self.live_mut(sid) else {
                return;
            };
            let mut actions = Vec::new();
            while let Some(a) = live.node.poll_action() {
                actions.push(a);
            }
            if actions.is_empty() {
                break;
            }
            canonical_closes(&mut actions);
            let mut commits = false;
            for a in actions {
                commits |= matches!(a, Action::Observed(Observation::Committed { .. }));
                self.execute(sid, a);
                if self.live(sid).is_none() || self.failure.is_some() {
                    return;
                }
            }
            if commits {
                self.check_digest_sum(sid);
            }
        }
        self.check_node(sid);
    }

    fn execute(&mut self, sid: i64, a: Action) {
        let now = self.clock(sid);
        let inc = self.inc_of(sid);
        match a {
            Action::Send { conn, frame } => {
                if frame.len() >= 8 {
                    let xid = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                    self.trace("reply", sid, conn as i64, xid as i64);
                }
                if self.live(sid).is_some_and(|l| l.conns.contains(&conn)) {
                    self.send_client(conn, N2C::Frame(frame));
                }
            }
            Action::Close { conn } => {
                if self.live_mut(sid).is_some_and(|l| l.conns.remove(&conn)) {
                    self.send_client(conn, N2C::Closed);
                }
            }
            Action::ElectionSend { to, n } => self.send_election(sid, to.0, n),
            Action::ConnectToLeader { sid: leader } => self.connect_to_leader(sid, leader.0),
            Action::CloseLeader => {
                if let Some(c) = self.live_mut(sid).and_then(|l| l.leader_conn.take()) {
                    self.close_learner_side(c);
                }
            }
            Action::SendLeader(p) => {
                if let Some(conn) = self.live(sid).and_then(|l| l.leader_conn) {
                    let ev = Ev::ToLeader { conn, p: Some(p) };
                    self.send_on((0, conn, 0), 0, ev);
                }
            }
            Action::SendLearner { conn, p } => {
                let what = ((conn as i64) << 8) | p.r#type as i64;
                self.trace("send-learner", sid, p.zxid, what);
                if self.live(sid).is_some_and(|l| l.learners.contains(&conn)) {
                    let m = ToLearner::Packet(p);
                    self.send_on((0, conn, 1), 0, Ev::ToLearner { conn, m });
                }
            }
            Action::SendSnapshot { conn, zxid, blob } => {
                let Some(live) = self.live(sid) else { return };
                if !live.learners.contains(&conn) {
                    return;
                }
                let upto = live.ghost.partition_point(|g| g.zxid <= zxid);
                let ghost = live.ghost[..upto].to_vec();
                if ghost.last().map_or(0, |g| g.zxid) != zxid {
                    let msg = format!("node {sid}: SNAP at 0x{zxid:x}, history ends elsewhere");
                    return self.fail("a SNAP is of the applied history", msg);
                }
                self.trace("send-snap", sid, zxid, conn as i64);
                let p = QuorumPacket::new(packet_type::SNAP, zxid, None);
                let m = ToLearner::Packet(p);
                self.send_on((0, conn, 1), 0, Ev::ToLearner { conn, m });
                let m = ToLearner::Snapshot { zxid, blob, ghost };
                self.send_on((0, conn, 1), 0, Ev::ToLearner { conn, m });
            }
            Action::CloseLearner { conn } => {
                if self.live_mut(sid).is_some_and(|l| l.learners.remove(&conn)) {
                    self.close_leader_side(conn);
                }
            }
            Action::Sync => {
                if self.p.inline_fsync {
                    if let Some(l) = self.live_mut(sid) {
                        l.node.handle_sync(now);
                    }
                } else if let Some(l) = self.live_mut(sid) {
                    if !l.fsync_pending {
                        l.fsync_pending = true;
                        let d = self.rng.range(0, self.p.fsync_max_ms);
                        self.schedule(d, Ev::Fsync { sid, inc });
                    }
                }
            }
            Action::WriteSnapshot { zxid, raw, .. } => {
                self.trace("snapshot-write", sid, zxid, raw.len() as i64);
                let d = self.rng.range(1, 50);
                let job = Job::Snapshot { zxid, raw };
                self.schedule(d, Ev::Job { sid, inc, job });
            }
            Action::Purge { retain } => {
                let d = self.rng.range(1, 50);
                let job = Job::Purge { retain };
                self.schedule(d, Ev::Job { sid, inc, job });
            }
            Action::PersistConfig { text, version } => {
                // The dynamic config file: a restarted node starts from it.
                self.trace("config-changed", sid, version, 0);
                self.node_mut(sid).cfg.config = text.into_bytes();
            }
            Action::RoleChanged {
                state,
                leader,
                epoch,
            } => {
                self.trace("role", sid, leader.map_or(0, |l| l.0), epoch.0);
                if let Some(l) = self.live_mut(sid) {
                    l.state = state;
                }
            }
            Action::StartServing { .. } => self.start_serving(sid),
            Action::StopServing { closed } => {
                if let Some(l) = self.live_mut(sid) {
                    l.serving = false;
                }
                self.stale_pending.retain(|(s, _)| *s != sid);
                self.trace("stop-serving", sid, closed as i64, 0);
            }
            Action::Observed(o) => self.observe(sid, o),
            Action::Fatal { what } => {
                if self.disk_faults_struck(sid) {
                    // The process exits (as `corral server` does); it is started again later.
                    self.trace("fatal", sid, 0, 0);
                    self.note(&format!("a node stopped on an injected disk fault: {what}"));
                    self.crash(sid, false);
                    let d = self.rng.range(200, 2_000);
                    self.schedule(d, Ev::Restart { sid });
                } else {
                    self.fail(
                        "storage does not fail without a disk fault",
                        format!("node {sid}: {what}"),
                    );
                }
            }
        }
    }

    /// Follow what the node did inside: its log, its snapshots, its history.
    fn observe(&mut self, sid: i64, o: Observation) {
        match o {
            Observation::Appended { zxid, txn } => {
                self.trace("append", sid, zxid, 0);
                let g = match Txn::from_bytes(&txn) {
                    Ok(t) => {
                        let g = GhostEntry::of(&t, &txn);
                        self.bodies.entry((g.zxid, g.fp)).or_insert(t.body);
                        self.first_seen.entry((g.zxid, g.fp)).or_insert(self.now);
                        g
                    }
                    Err(e) => {
                        return self
                            .fail("txns decode", format!("node {sid} append 0x{zxid:x}: {e}"))
                    }
                };
                if let Err(e) = self.node_mut(sid).mirror.appended(g) {
                    self.fail("logged zxids rise", format!("node {sid}: {e}"));
                }
            }
            Observation::Truncated { zxid } => {
                self.trace("truncate", sid, zxid, 0);
                self.node_mut(sid).mirror.truncated(zxid);
            }
            Observation::Loaded {
                snapshot_zxid,
                last_zxid,
            } => {
                self.trace("loaded", sid, last_zxid, snapshot_zxid.unwrap_or(-1));
                let node = self.node_mut(sid);
                match node.mirror.loaded(snapshot_zxid, last_zxid) {
                    Ok(ghost) => {
                        let live = node.live.as_mut().expect("observed by a live node");
                        live.ghost = ghost;
                        live.verified = 0;
                    }
                    Err(e) => self.fail(
                        "a reload reflects the snapshot and the logged txns after it",
                        format!("node {sid}: {e}"),
                    ),
                }
            }
            Observation::SnapshotStarted { zxid } => {
                self.trace("snapshot", sid, zxid, 0);
                let node = self.node_mut(sid);
                let live = node.live.as_ref().expect("observed by a live node");
                let end = live.ghost.last().map_or(0, |g| g.zxid);
                if end != zxid {
                    let msg = format!("node {sid}: snapshot at 0x{zxid:x}, history at 0x{end:x}");
                    return self.fail("a snapshot begins at the applied zxid", msg);
                }
                let ghost = live.ghost.clone();
                node.mirror.snapshot_started(zxid, &ghost);
            }
            Observation::Committed { zxid, txn, digest } => self.commit(sid, zxid, txn, digest),
            Observation::SnapLoaded { zxid, digest } => {
                self.trace("load-snap", sid, zxid, 0);
                let node = self.node_mut(sid);
                let live = node.live.as_mut().expect("observed by a live node");
                let ghost = match live.snap_ghost.take() {
                    Some((z, g)) if z == zxid => g,
                    other => {
                        let got = other.map(|(z, _)| z);
                        let msg = format!("node {sid}: LoadSnapshot 0x{zxid:x}, received {got:x?}");
                        return self.fail("LoadSnapshot follows a received SNAP", msg);
                    }
                };
                live.ghost = ghost.clone();
                live.verified = 0;
                node.mirror.snapshot_started(zxid, &ghost);
                node.mirror.log.clear();
                if self.live(sid).map(|l| l.node.core().tree().digest()) != Some(digest) {
                    let msg = format!("node {sid}: SNAP at 0x{zxid:x}");
                    return self.fail("a loaded SNAP has the digest the node reports", msg);
                }
                // The leader's history is committed only once a quorum acks its NEWLEADER: a
                // SNAP from a leader whose epoch is never established can carry its own
                // uncommitted tail, which the next leader rightly truncates. Check what is on
                // the chain; the rest goes on at the node's next commit or when it serves.
                let live = self.live(sid).expect("live");
                match self.chain.agrees(&live.ghost, 0) {
                    Ok(n) => self.live_mut(sid).expect("live").verified = n,
                    Err(e) => self.fail(
                        "applied txns are a prefix of one chain",
                        format!("node {sid}: {e}"),
                    ),
                }
            }
        }
    }

    fn send_election(&mut self, from: i64, to: i64, n: Notification) {
        if self.live(to).is_none() || self.held(from, to).is_some() {
            return;
        }
        if self.faults && self.rng.chance(self.p.election_drop_pct) {
            // The election connection broke with this frame in it; it is redialled later and
            // both sides resend their last notification.
            self.trace("election-drop", from, to, 0);
            let (ia, ib) = (self.inc_of(from), self.inc_of(to));
            let d = self.rng.range(100, 1_000);
            self.schedule(
                d,
                Ev::ElectionUp {
                    to: from,
                    to_inc: ia,
                    sid: to,
                },
            );
            self.schedule(
                d,
                Ev::ElectionUp {
                    to,
                    to_inc: ib,
                    sid: from,
                },
            );
            return;
        }
        let to_inc = self.inc_of(to);
        let ev = Ev::Election {
            to,
            to_inc,
            from,
            n,
        };
        self.send_on((2, from as u64, to as u64), 0, ev);
    }

    fn connect_to_leader(&mut self, sid: i64, leader: i64) {
        if let Some(old) = self.live_mut(sid).and_then(|l| l.leader_conn.take()) {
            self.close_learner_side(old);
        }
        let conn = self.next_qconn;
        self.next_qconn += 1;
        let leader_up = self.live(leader).is_some();
        let learner_inc = self.inc_of(sid);
        let leader_inc = self.inc_of(leader);
        self.qconns.insert(
            conn,
            QConn {
                learner: sid,
                learner_inc,
                leader,
                leader_inc,
                learner_open: true,
                leader_open: leader_up,
            },
        );
        if let Some(l) = self.live_mut(sid) {
            l.leader_conn = Some(conn);
        }
        self.trace("dial-leader", sid, leader, conn as i64);
        if leader_up && leader != sid {
            self.send_on((0, conn, 1), 0, Ev::QOpen { conn });
        } else {
            // Refused or timed out, after the real glue's retries.
            let d = self.rng.range(100, 2_000);
            let m = ToLearner::Closed;
            self.send_on((0, conn, 1), self.now + d, Ev::ToLearner { conn, m });
        }
    }

    fn commit(&mut self, sid: i64, zxid: i64, bytes: Vec<u8>, digest: u64) {
        let txn = match Txn::from_bytes(&bytes) {
            Ok(t) => t,
            Err(e) => return self.fail("txns decode", format!("node {sid} 0x{zxid:x}: {e}")),
        };
        self.trace("commit", sid, zxid, txn.header.r#type as i64);
        if txn.header.r#type == corral_proto::records::op::CLOSE_SESSION {
            self.check_not_expired(txn.header.client_id);
        }
        if std::env::var_os("CORRAL_SIM_TXNS").is_some() {
            eprintln!(
                "t={} node {sid} commit 0x{zxid:x} {:?} {:?}",
                self.now, txn.header, txn.body
            );
        }
        let Some(live) = self.live_mut(sid) else {
            return;
        };
        let before = live.ghost.last().map_or(0, |g| g.zxid);
        let g = GhostEntry::of(&txn, &bytes);
        live.ghost.push(g);
        self.bodies
            .entry((g.zxid, g.fp))
            .or_insert_with(|| txn.body.clone());
        self.first_seen.entry((g.zxid, g.fp)).or_insert(self.now);
        if zxid <= before || g.zxid != zxid {
            let msg = format!(
                "node {sid}: committed 0x{zxid:x} (txn 0x{:x}) after 0x{before:x}",
                g.zxid
            );
            return self.fail("applied zxids rise", msg);
        }
        self.verify(sid);
        if let Some(p) = txn.digest.as_ref().map(|d| d.tree_digest as u64) {
            if p != digest {
                let msg = format!(
                    "node {sid}: 0x{zxid:x} stamped digest 0x{p:x}, tree has 0x{digest:x}; txn {:?}",
                    txn.body
                );
                self.fail("txn digest matches the tree", msg);
            }
        }
    }

    /// A session closes: once the guard is up, only by its client's own closeSession.
    fn check_not_expired(&mut self, session: i64) {
        if self.expiry_guard.is_none_or(|g| self.now < g) {
            return;
        }
        let kept = self
            .clients
            .iter()
            .position(|c| c.session_id() == Some(session) && !c.closing());
        if let Some(c) = kept {
            let msg = format!(
                "client {c}'s session 0x{session:x} closed at t={} with the client connected and pinging",
                self.now - T0
            );
            self.fail("a session kept alive never expires", msg);
        }
    }

    /// Put the node's unverified history on the chain.
    fn verify(&mut self, sid: i64) {
        let Some(live) = self.nodes[(sid - 1) as usize].live.as_ref() else {
            return;
        };
        match self.chain.verify(&live.ghost, live.verified) {
            Ok(n) => self.live_mut(sid).expect("live").verified = n,
            Err(e) => self.fail(
                "applied txns are a prefix of one chain",
                format!("node {sid}: {e}"),
            ),
        }
    }

    fn start_serving(&mut self, sid: i64) {
        let Some(live) = self.live_mut(sid) else {
            return;
        };
        live.serving = true;
        let (state, zxid) = (live.state, live.node.core().last_zxid());
        let epoch = live.node.peer().map_or(0, |p| p.epoch().0);
        self.trace("serving", sid, zxid, epoch);
        if state == ServerState::Leading {
            self.report.elections += 1;
            if let Some(other) = self.leaders.insert(epoch, sid) {
                if other != sid {
                    let msg = format!("epoch {epoch} established by {other} and {sid}");
                    return self.fail("one leader per epoch", msg);
                }
            }
        }
        self.verify(sid);
    }

    /// The incremental digest equals the digest of every node, recomputed.
    fn check_digest_sum(&mut self, sid: i64) {
        let Some(live) = self.live(sid) else { return };
        let tree = live.node.core().tree();
        let (digest, full) = (tree.digest(), digest_sum(tree));
        if digest != full {
            let zxid = tree.last_processed_zxid();
            let msg = format!(
                "node {sid}: at 0x{zxid:x} the digest is 0x{digest:x}, its nodes sum to 0x{full:x}"
            );
            self.fail(
                "the incremental digest equals the digest of every node",
                msg,
            );
        }
    }

    /// Per node, after each of its flushes and after every step: the ghost matches the tree,
    /// the incremental digest matches the nodes, a serving node's history is on the chain, and
    /// a node whose history is on the chain has the digest every node had at that zxid.
    pub(crate) fn check_node(&mut self, sid: i64) {
        let Some(live) = self.live(sid) else { return };
        let tree = live.node.core().tree();
        let tree_zxid = tree.last_processed_zxid();
        let ghost_zxid = live.ghost.last().map_or(0, |g| g.zxid);
        if tree_zxid != ghost_zxid {
            let msg = format!(
                "node {sid}: tree at 0x{tree_zxid:x}, applied txns end at 0x{ghost_zxid:x}"
            );
            return self.fail("the tree reflects exactly the applied txns", msg);
        }
        let digest = tree.digest();
        if live.serving && live.verified != live.ghost.len() {
            let msg = format!(
                "node {sid}: {} of {} applied txns on the chain",
                live.verified,
                live.ghost.len()
            );
            return self.fail("a serving node's history is on the chain", msg);
        }
        if live.verified == live.ghost.len() {
            let len = live.ghost.len();
            if let Err(e) = self.chain.check_digest(len, digest) {
                self.fail(
                    "nodes at the same zxid have equal digests",
                    format!("node {sid}: {e}"),
                );
            }
        }
    }
}

/// The tree digest recomputed from every node (the incremental one must equal it).
fn digest_sum(t: &corral_tree::DataTree) -> u64 {
    t.paths_preorder().iter().fold(0u64, |acc, p| {
        acc.wrapping_add(t.get(p).expect("listed").digest())
    })
}

/// `Core::abandon_pending` closes connections in hash-map order; sort each run of closes so
/// the run does not depend on it.
fn canonical_closes(outs: &mut [Action]) {
    let mut i = 0;
    while i < outs.len() {
        let mut j = i;
        while j < outs.len() && matches!(outs[j], Action::Close { .. }) {
            j += 1;
        }
        if j > i + 1 {
            outs[i..j].sort_by_key(|o| match o {
                Action::Close { conn } => *conn,
                _ => 0,
            });
        }
        i = j.max(i + 1);
    }
}

// Events.
impl Sim {
    fn deliver(&mut self, ev: Ev) {
        match ev {
            Ev::Channel { key } => self.channel_due(key),
            Ev::ElectionUp { to, to_inc, sid } => {
                if let Some(u) = self.paused(to) {
                    return self.schedule(u - self.now, Ev::ElectionUp { to, to_inc, sid });
                }
                if self.alive(to, to_inc) && self.cut_off(to, sid).is_none() {
                    self.node_event(to, NodeEvent::ElectionConnected { sid: ServerId(sid) });
                }
            }
            Ev::Fsync { sid, inc } => {
                if !self.alive(sid, inc) {
                    return;
                }
                if let Some(u) = self.paused(sid) {
                    return self.schedule(u - self.now, Ev::Fsync { sid, inc });
                }
                let now = self.clock(sid);
                let live = self.live_mut(sid).expect("alive");
                live.fsync_pending = false;
                live.node.handle_sync(now);
                self.flush(sid);
            }
            Ev::Job { sid, inc, job } => match self.paused(sid) {
                Some(u) => self.schedule(u - self.now, Ev::Job { sid, inc, job }),
                None => self.run_job(sid, inc, job),
            },
            Ev::Election { .. }
            | Ev::QOpen { .. }
            | Ev::ToLeader { .. }
            | Ev::ToLearner { .. }
            | Ev::C2N { .. }
            | Ev::N2C { .. } => unreachable!("messages travel on channels"),
            Ev::ClientTick { client } => self.client_tick(client),
            Ev::FaultCrash => self.fault_crash(),
            Ev::Restart { sid } => {
                if self.live(sid).is_none() {
                    self.start(sid);
                }
            }
            Ev::FaultPartition => self.fault_partition(),
            Ev::Heal => self.heal(),
            Ev::FaultFlap { a, b, left } => self.fault_flap(a, b, left),
            Ev::FaultPause => self.fault_pause(),
            Ev::FaultClockJump => self.fault_clock_jump(),
            Ev::FaultCut => self.fault_cut(),
            Ev::FaultClientCut => self.fault_client_cut(),
            Ev::FaultPowerLoss => self.fault_power_loss(),
        }
    }

    /// A message at the head of its channel; `Err` hands it back while a partition holds it.
    fn deliver_msg(&mut self, ev: Ev) -> Result<(), Box<(Ev, u64)>> {
        match ev {
            Ev::Election {
                to,
                to_inc,
                from,
                n,
            } => {
                if let Some(u) = self.paused(to) {
                    let ev = Ev::Election {
                        to,
                        to_inc,
                        from,
                        n,
                    };
                    return Err(Box::new((ev, u)));
                }
                if self.alive(to, to_inc) && self.held(from, to).is_none() {
                    self.node_event(
                        to,
                        NodeEvent::Election {
                            from: ServerId(from),
                            n,
                        },
                    );
                }
            }
            Ev::QOpen { conn } => {
                if let Some(u) = self.paused(self.qconns[&conn].leader) {
                    return Err(Box::new((Ev::QOpen { conn }, u)));
                }
                self.qopen(conn)
            }
            Ev::ToLeader { conn, p } => {
                let c = &self.qconns[&conn];
                let (leader, learner) = (c.leader, c.learner);
                if !self.alive(c.leader, c.leader_inc) || !c.leader_open {
                    return Ok(());
                }
                if let Some(until) = self.held(learner, leader).max(self.paused(leader)) {
                    return Err(Box::new((Ev::ToLeader { conn, p }, until)));
                }
                match p {
                    Some(p) => {
                        self.trace("to-leader", leader, p.zxid, p.r#type as i64);
                        self.node_event(leader, NodeEvent::LearnerPacket { conn, p })
                    }
                    None => {
                        self.qconns.get_mut(&conn).expect("known").leader_open = false;
                        if self
                            .live_mut(leader)
                            .is_some_and(|l| l.learners.remove(&conn))
                        {
                            self.node_event(leader, NodeEvent::LearnerClosed { conn });
                        }
                    }
                }
            }
            Ev::ToLearner { conn, m } => {
                let c = &self.qconns[&conn];
                let (leader, learner) = (c.leader, c.learner);
                if !self.alive(c.learner, c.learner_inc) || !c.learner_open {
                    return Ok(());
                }
                if let Some(until) = self.held(leader, learner).max(self.paused(learner)) {
                    return Err(Box::new((Ev::ToLearner { conn, m }, until)));
                }
                match m {
                    ToLearner::Packet(p) => {
                        self.trace("to-learner", learner, p.zxid, p.r#type as i64);
                        self.node_event(learner, NodeEvent::LeaderPacket(p))
                    }
                    ToLearner::Snapshot { zxid, blob, ghost } => {
                        if let Some(l) = self.live_mut(learner) {
                            l.snap_ghost = Some((zxid, ghost));
                        }
                        self.node_event(learner, NodeEvent::LeaderSnapshot { zxid, blob })
                    }
                    ToLearner::Closed => {
                        self.qconns.get_mut(&conn).expect("known").learner_open = false;
                        let current = self.live(learner).and_then(|l| l.leader_conn);
                        if current == Some(conn) {
                            self.live_mut(learner).expect("alive").leader_conn = None;
                            self.node_event(learner, NodeEvent::LeaderClosed);
                        }
                    }
                }
            }
            Ev::C2N { conn, m } => {
                if let Some(u) = self.cconns.get(&conn).and_then(|c| self.paused(c.node)) {
                    return Err(Box::new((Ev::C2N { conn, m }, u)));
                }
                self.client_to_node(conn, m)
            }
            Ev::N2C { conn, m } => self.node_to_client(conn, m),
            other => self.deliver(other),
        }
        Ok(())
    }

    /// A learner's connection reaches the leader's quorum port: the leader's node decides
    /// whether to keep it (it holds it while still looking, closes it unless leading).
    fn qopen(&mut self, conn: u64) {
        let c = &self.qconns[&conn];
        let (learner, linc, leader, dinc) = (c.learner, c.learner_inc, c.leader, c.leader_inc);
        if !self.alive(leader, dinc) || self.cut_off(learner, leader).is_some() {
            // Refused, or the connect timed out.
            self.close_leader_side(conn);
            return;
        }
        self.trace("learner-up", leader, learner, conn as i64);
        self.live_mut(leader).expect("alive").learners.insert(conn);
        self.node_event(leader, NodeEvent::LearnerConnected { conn });
        let c = &self.qconns[&conn];
        if self.alive(learner, linc) && c.learner_open && c.leader_open {
            self.node_event(learner, NodeEvent::LeaderConnected);
        }
    }

    fn client_to_node(&mut self, conn: u64, m: C2N) {
        let Some(c) = self.cconns.get(&conn) else {
            return;
        };
        let (sid, inc) = (c.node, c.node_inc);
        if !self.alive(sid, inc) {
            if let C2N::Open = m {
                // Connection refused.
                self.send_client(conn, N2C::Closed);
            }
            return;
        }
        let live = self.live_mut(sid).expect("alive");
        let ev = match m {
            C2N::Open => {
                live.conns.insert(conn);
                let addr = format!("192.168.0.{}", conn % 250);
                NodeEvent::ClientOpen {
                    conn,
                    addr,
                    x509: None,
                }
            }
            C2N::Connect(connect) => NodeEvent::ClientConnect { conn, connect },
            C2N::Request(xid, req) => {
                if !live.serving {
                    // Already on the wire when the node stopped serving (see
                    // `known::STALE_PENDING`).
                    let client = self.cconns[&conn].client;
                    if let Some(session) = self.clients[client].session_id() {
                        self.stale_pending.insert((sid, session));
                    }
                }
                self.trace("request", sid, conn as i64, xid as i64);
                NodeEvent::ClientRequest { conn, xid, req }
            }
            C2N::Closed => {
                live.conns.remove(&conn);
                NodeEvent::ClientClosed { conn }
            }
        };
        self.node_event(sid, ev);
    }

    /// A background storage job finishes: written through the real `FileStore` on the node's
    /// disk, unless the node crashed first (the job died with the process).
    fn run_job(&mut self, sid: i64, inc: u64, job: Job) {
        if !self.alive(sid, inc) {
            return;
        }
        let opts = self.node_config_store(sid);
        let disk = self.node(sid).disk.clone();
        let ev = match job {
            Job::Snapshot { zxid, raw } => {
                let result = FileStore::new(disk, opts)
                    .and_then(|mut s| s.write_snapshot(zxid, &raw))
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                NodeEvent::SnapshotWritten { result }
            }
            Job::Purge { retain } => {
                let result = FileStore::new(disk, opts)
                    .and_then(|mut s| s.purge(retain))
                    .map_err(|e| e.to_string());
                NodeEvent::PurgeDone { result }
            }
        };
        self.node_event(sid, ev);
    }
}

// Faults.
impl Sim {
    fn again(&mut self, gap: Option<u64>, ev: Ev) {
        if let Some(g) = gap {
            let d = self.rng.range(g / 2, g * 3 / 2);
            self.schedule(d, ev);
        }
    }

    fn random_sid(&mut self) -> i64 {
        1 + self.rng.below(self.nodes.len() as u64) as i64
    }

    fn fault_crash(&mut self) {
        if !self.faults {
            return;
        }
        let sid = self.random_sid();
        let power = self.rng.chance(70);
        self.crash(sid, power);
        let down = self.rng.range(50, 3_000);
        self.schedule(down, Ev::Restart { sid });
        if self.rng.chance(30) {
            // A correlated failure: a second node goes down too.
            let other = self.random_sid();
            self.crash(other, true);
            let down = self.rng.range(50, 3_000);
            self.schedule(down, Ev::Restart { sid: other });
        }
        self.again(self.p.crash_every_ms, Ev::FaultCrash);
    }

    /// The whole ensemble loses power at once (a data centre outage): every disk keeps only
    /// what it synced, and acknowledged writes must still all be there after the restart.
    fn fault_power_loss(&mut self) {
        if !self.faults {
            return;
        }
        self.trace("power-loss", 0, 0, 0);
        self.note("whole-ensemble power loss");
        let sids: Vec<i64> = self.nodes.iter().map(|n| n.sid).collect();
        for sid in sids {
            self.crash(sid, true);
            let down = self.rng.range(100, 3_000);
            self.schedule(down, Ev::Restart { sid });
        }
        self.again(self.p.power_loss_every_ms, Ev::FaultPowerLoss);
    }

    fn fault_partition(&mut self) {
        if !self.faults {
            return;
        }
        if self.blocks.len() + 2 <= BLOCKS_MAX {
            let n = self.nodes.len() as u64;
            let size = self.rng.range(1, n - 1);
            let mut sids: Vec<i64> = self.nodes.iter().map(|n| n.sid).collect();
            let mut side = BTreeSet::new();
            for _ in 0..size {
                let i = self.rng.below(sids.len() as u64) as usize;
                side.insert(sids.remove(i));
            }
            let rest: BTreeSet<i64> = sids.into_iter().collect();
            let until = self.now + self.rng.range(200, 3_000);
            // Mostly both ways; sometimes one way only (the other direction flows).
            let one_way = self.rng.chance(30);
            self.trace(
                if one_way {
                    "partition-one-way"
                } else {
                    "partition"
                },
                side.iter().fold(0, |a, s| a * 10 + s),
                0,
                (until - self.now) as i64,
            );
            self.report.partitions += 1;
            self.blocks.push(Block {
                from: side.clone(),
                to: rest.clone(),
                until,
            });
            if !one_way {
                self.blocks.push(Block {
                    from: rest,
                    to: side,
                    until,
                });
            }
            self.schedule(until - self.now, Ev::Heal);
            // Some connections across reset at once (keepalives), the rest stall.
            let ids: Vec<u64> = self.qconns.keys().copied().collect();
            for id in ids {
                let c = &self.qconns[&id];
                if self.cut_off(c.learner, c.leader).is_some() && self.rng.chance(50) {
                    self.close_learner_side(id);
                    self.close_leader_side(id);
                }
            }
        }
        self.again(self.p.partition_every_ms, Ev::FaultPartition);
    }

    /// A flapping link: `a`–`b` down for a moment, up for a moment, `left` more times.
    fn fault_flap(&mut self, a: i64, b: i64, left: u32) {
        if !self.faults {
            return;
        }
        if a == 0 {
            // A new flapping link.
            let a = self.random_sid();
            let b = self.random_sid();
            if a != b {
                let left = self.rng.range(3, 10) as u32;
                self.trace("flap", a, b, left as i64);
                self.fault_flap(a, b, left);
            }
            let ev = Ev::FaultFlap {
                a: 0,
                b: 0,
                left: 0,
            };
            return self.again(self.p.flap_every_ms, ev);
        }
        if left == 0 || self.blocks.len() + 2 > BLOCKS_MAX {
            return;
        }
        let until = self.now + self.rng.range(20, 400);
        for (from, to) in [(a, b), (b, a)] {
            self.blocks.push(Block {
                from: BTreeSet::from([from]),
                to: BTreeSet::from([to]),
                until,
            });
        }
        self.schedule(until - self.now, Ev::Heal);
        let up = self.rng.range(20, 400);
        let ev = Ev::FaultFlap {
            a,
            b,
            left: left - 1,
        };
        self.schedule(until - self.now + up, ev);
    }

    /// A node stops for a while (GC, VM pause): it takes no messages, timers or disk
    /// completions, then carries on, late, with everything that queued up.
    fn fault_pause(&mut self) {
        if !self.faults {
            return;
        }
        let sid = self.random_sid();
        if self.live(sid).is_some() && self.paused(sid).is_none() {
            let max = (self.p.session_timeout_ms as u64) * 3 / 2;
            let d = self.rng.range(50, max);
            self.trace("pause", sid, 0, d as i64);
            self.paused.insert(sid, self.now + d);
        }
        self.again(self.p.pause_every_ms, Ev::FaultPause);
    }

    /// A node's wall clock jumps (NTP step, operator): forwards or backwards.
    fn fault_clock_jump(&mut self) {
        if !self.faults {
            return;
        }
        let sid = self.random_sid();
        let by = self.rng.range(1_000, 120_000) as i64;
        let by = if self.rng.chance(50) { by } else { -by };
        self.trace("clock-jump", sid, 0, by);
        self.node_mut(sid).wall_offset += by;
        self.again(self.p.clock_jump_every_ms, Ev::FaultClockJump);
    }

    fn heal(&mut self) {
        let now = self.now;
        let (gone, kept): (Vec<Block>, Vec<Block>) = std::mem::take(&mut self.blocks)
            .into_iter()
            .partition(|b| b.until <= now);
        self.blocks = kept;
        if gone.is_empty() {
            return;
        }
        self.trace("heal", gone.len() as i64, 0, 0);
        let mut pairs = BTreeSet::new();
        for b in &gone {
            for &x in &b.from {
                for &y in &b.to {
                    pairs.insert((x.min(y), x.max(y)));
                }
            }
        }
        for (a, b) in pairs {
            if self.cut_off(a, b).is_none() && self.live(a).is_some() && self.live(b).is_some() {
                self.election_up(a, b);
            }
        }
    }

    fn fault_cut(&mut self) {
        if !self.faults {
            return;
        }
        let open: Vec<u64> = self
            .qconns
            .iter()
            .filter(|(_, c)| c.learner_open && c.leader_open)
            .map(|(id, _)| *id)
            .collect();
        if let Some(&id) = self.rng.pick(&open) {
            self.trace("cut", id as i64, 0, 0);
            self.close_learner_side(id);
            self.close_leader_side(id);
        }
        self.again(self.p.cut_every_ms, Ev::FaultCut);
    }

    fn fault_client_cut(&mut self) {
        if !self.faults {
            return;
        }
        let c = self.rng.below(self.clients.len() as u64) as usize;
        self.cut_client(c);
        self.again(self.p.client_cut_every_ms, Ev::FaultClientCut);
    }
}

// The run.
impl Sim {
    fn next_timer(&mut self) -> Option<(u64, i64)> {
        let mut best: Option<(u64, i64)> = None;
        for n in &self.nodes {
            let Some(live) = n.live.as_ref() else {
                continue;
            };
            // The real node loop also wakes for election redials.
            let t = live
                .node
                .poll_timeout()
                .max(self.now)
                .min(self.now + REDIAL_MS);
            // A paused node fires nothing until it resumes.
            let t = self.paused.get(&n.sid).map_or(t, |u| t.max(*u));
            if best.is_none_or(|(bt, _)| t < bt) {
                best = Some((t, n.sid));
            }
        }
        best
    }

    fn fire_timer(&mut self, sid: i64) {
        let now = self.clock(sid);
        let t = self.now;
        let node = self.node_mut(sid);
        node.timers_now = match node.timers_now {
            (at, n) if at == t => (at, n + 1),
            _ => (t, 1),
        };
        if node.timers_now.1 > SAME_INSTANT_TIMERS_MAX {
            return self.fail("node timers make progress", format!("node {sid} at t={t}"));
        }
        let Some(live) = node.live.as_mut() else {
            return;
        };
        live.node.handle_timeout(now);
        self.flush(sid);
    }

    /// One event or timer up to `until`; false when nothing is left before it.
    pub(crate) fn step(&mut self, until: u64) -> bool {
        let ev_time = self.events.keys().next().map(|(t, _)| *t);
        let timer = self.next_timer();
        let take_timer = match (ev_time, timer) {
            (Some(te), Some((tt, _))) => tt < te,
            (None, Some(_)) => true,
            _ => false,
        };
        if take_timer {
            let (t, sid) = timer.expect("checked");
            if t > until {
                return false;
            }
            self.now = self.now.max(t);
            self.fire_timer(sid);
        } else {
            match ev_time {
                Some(t) if t <= until => {
                    let (_, ev) = self.events.pop_first().expect("checked");
                    self.now = self.now.max(t);
                    self.deliver(ev);
                }
                _ => return false,
            }
        }
        self.report.steps += 1;
        for i in 0..self.nodes.len() {
            let sid = self.nodes[i].sid;
            self.check_node(sid);
        }
        true
    }

    pub(crate) fn run_until(&mut self, until: u64) {
        while self.failure.is_none() && self.step(until) {}
        self.now = self.now.max(until);
    }

    /// One leader; every node up, serving, at the chain's end with equal digests.
    pub(crate) fn converged(&self) -> bool {
        let mut leaders = 0;
        let mut digests = BTreeSet::new();
        for n in &self.nodes {
            let Some(l) = n.live.as_ref() else {
                return false;
            };
            if !l.serving || l.verified != self.chain.len() || l.ghost.len() != self.chain.len() {
                return false;
            }
            if l.state == ServerState::Leading {
                leaders += 1;
            }
            digests.insert(l.node.core().tree().digest());
        }
        leaders == 1 && digests.len() == 1
    }

    pub(crate) fn describe_nodes(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            match n.live.as_ref() {
                None => s.push_str(&format!("[{} down] ", n.sid)),
                Some(l) => s.push_str(&format!(
                    "[{} {:?} epoch {} serving {} applied 0x{:x} ({}/{} on chain)] ",
                    n.sid,
                    l.state,
                    l.node.peer().map_or(0, |p| p.epoch().0),
                    l.serving,
                    l.node.core().last_zxid(),
                    l.verified,
                    l.ghost.len()
                )),
            }
        }
        format!(
            "{s}chain {} to 0x{:x}",
            self.chain.len(),
            self.chain.last_zxid()
        )
    }

    /// Faults stop, crashed nodes restart, partitions heal.
    pub(crate) fn stop_faults(&mut self) {
        self.faults = false;
        for n in &self.nodes {
            n.disk.set_plan(FaultPlan::none());
        }
        self.trace("faults-stop", 0, 0, 0);
        for b in &mut self.blocks {
            b.until = self.now;
        }
        self.heal();
        self.paused.clear();
        for i in 0..self.nodes.len() {
            let sid = self.nodes[i].sid;
            if self.nodes[i].live.is_none() {
                self.schedule(1, Ev::Restart { sid });
            }
        }
    }

    pub(crate) fn finish(mut self) -> Result<Report, Failure> {
        if let Some(f) = self.failure.take() {
            return Err(f);
        }
        for h in &self.history {
            self.trace.u64(h.hash());
        }
        self.report.trace_hash = self.trace.finish();
        self.report.notifications = self.clients.iter().map(|c| c.watches.notified).sum();
        self.report.end_ms = self.now - T0;
        self.report.chain_len = self.chain.len();
        Ok(self.report)
    }
}
