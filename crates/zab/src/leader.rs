//! The LEADING role (reference §4.5–4.8; ZooKeeper's `Leader` and one `LearnerHandler` per
//! learner connection, folded into one state machine): discovery (choose and persist the new
//! epoch once a quorum of participants connected), epoch acknowledgement, synchronisation of
//! each learner (DIFF / TRUNC / SNAP, then forwarding), the NEWLEADER quorum, and broadcast
//! (zxid assignment, proposals, quorum commits in zxid order, syncs, pings, abdication).
//!
//! It must not touch storage or the tree except through `Replica`'s outputs, and it never
//! counts its own acknowledgement before its own `Synced`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use corral_proto::quorum::{
    decode_i32_data, decode_session_touches, encode_i32_data, packet_type, ForwardedRequest,
    LearnerInfo, QuorumConfig, QuorumPacket, RevalidateReply, RevalidateRequest,
    LEADER_PROTOCOL_VERSION,
};
use corral_proto::records::Id;
use corral_proto::{Epoch, ServerId, SessionId, Zxid};
use tracing::{debug, info, trace, warn};

use crate::replica::{Event, Replica};
use crate::sync::{plan_sync, History, Step, SyncMode, TxnLog};
use crate::types::{ConnId, Output};

/// `OpCode.sync`: answered with SYNC instead of being prepared.
pub const OP_SYNC: i32 = 9;

/// Why the leader gives up and goes back to LOOKING.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Abdicate(pub String);

/// Where the leader as a whole is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a quorum of FOLLOWERINFO (`getEpochToPropose`).
    Discovery { deadline_ms: u64 },
    /// Waiting for a quorum of ACKEPOCH (`waitForEpochAck`).
    EpochAck { deadline_ms: u64 },
    /// Waiting for a quorum of NEWLEADER ACKs (`waitForNewLeaderAck`).
    NewLeaderAck { deadline_ms: u64 },
    /// Established: serving and broadcasting.
    Broadcast,
}

/// Where one learner connection is (`LearnerHandler.run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    AwaitInfo,
    /// FOLLOWERINFO read, epoch not chosen yet.
    AwaitEpoch,
    AwaitAckEpoch,
    /// ACKEPOCH read, epoch-ack quorum not reached yet.
    AwaitEpochQuorum {
        peer_last: i64,
    },
    /// Behind the committed log: waiting for the glue's read of the on-disk txn log
    /// (`Output::ReadLog`); nothing is sent to it meanwhile.
    AwaitLog {
        peer_last: i64,
    },
    /// Sync stream and NEWLEADER queued; the next packet must be the ACK.
    AwaitNewLeaderAck,
    /// NEWLEADER ACK read, leader not established yet.
    AwaitStartup,
    /// UPTODATE sent.
    Active,
}

#[derive(Debug, Clone)]
struct Learner {
    sid: Option<i64>,
    observer: bool,
    stage: Stage,
    last_heard_ms: u64,
    /// PING rounds sent to it and not yet answered, oldest first (a learner answers each
    /// PING with one, in order).
    pings: VecDeque<u64>,
    /// The latest PING round it answered.
    answered: u64,
}

impl Learner {
    /// Registered for forwarding (`startForwarding` ran).
    fn forwarding(&self) -> bool {
        matches!(
            self.stage,
            Stage::AwaitNewLeaderAck | Stage::AwaitStartup | Stage::Active
        )
    }
}

#[derive(Debug)]
pub(crate) struct Leading {
    phase: Phase,
    /// The epoch being established (candidate during discovery).
    epoch: Epoch,
    connecting: BTreeSet<i64>,
    electing: BTreeSet<i64>,
    newleader_acks: BTreeSet<i64>,
    learners: BTreeMap<ConnId, Learner>,
    /// Outstanding proposals (their txns are in `Replica::tail`) and who acked them.
    acks: BTreeMap<i64, BTreeSet<i64>>,
    last_assigned: i64,
    last_proposed: i64,
    /// `Prepared` answers that arrived ahead of a lower zxid.
    prepared: BTreeMap<i64, Vec<u8>>,
    /// Syncs waiting for `last_applied >= zxid` and for a quorum to answer PING round
    /// `round`; `None` is a local one.
    pending_syncs: VecDeque<PendingSync>,
    /// PING rounds sent so far.
    ping_round: u64,
    next_half_tick_ms: u64,
    tick_skip: bool,
    /// `(currentEpoch, lastZxid)` when leading began (`leaderStateSummary`).
    summary: (Epoch, i64),
}

type Res = Result<(), Abdicate>;

/// A sync waiting to be answered.
#[derive(Debug, Clone, Copy)]
struct PendingSync {
    /// Answered once everything up to here is applied.
    zxid: i64,
    /// ... and a quorum answered this PING round, sent after the sync arrived: so no newer
    /// leader can have committed anything we have not seen (a deposed leader that has not
    /// noticed yet, e.g. after a long pause, must not answer from its own stale state).
    round: u64,
    conn: Option<ConnId>,
}

/// The glue's answer to `Output::ReadLog` (`Input::LogRead`).
type LogAnswer = Option<Vec<(i64, Vec<u8>)>>;

impl Leading {
    pub fn new(now_ms: u64, rep: &mut Replica) -> Result<Leading, Abdicate> {
        let me = rep.my_sid();
        let init = rep.cfg.init_limit as u64 * rep.tick_ms();
        let mut l = Leading {
            phase: Phase::Discovery {
                deadline_ms: now_ms + init,
            },
            epoch: Epoch(rep.accepted_epoch.0 + 1),
            connecting: BTreeSet::from([me]),
            electing: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            learners: BTreeMap::new(),
            acks: BTreeMap::new(),
            last_assigned: 0,
            last_proposed: 0,
            prepared: BTreeMap::new(),
            pending_syncs: VecDeque::new(),
            ping_round: 0,
            next_half_tick_ms: now_ms + rep.tick_ms() / 2,
            tick_skip: false,
            summary: (rep.current_epoch, rep.last_zxid),
        };
        info!(sid = me, "leading: discovery");
        l.check_discovery(now_ms, rep)?;
        Ok(l)
    }

    pub fn established(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    pub fn outstanding(&self) -> usize {
        self.acks.len()
    }

    pub fn pending_syncs(&self) -> usize {
        self.pending_syncs.len()
    }

    pub fn learner_conns(&self) -> Vec<ConnId> {
        self.learners.keys().copied().collect()
    }

    /// Participants that acked NEWLEADER and spoke within `syncLimit` ticks.
    /// Observers past NEWLEADER and heard from within syncLimit (`zk_synced_observers`).
    pub fn synced_observers(&self, now_ms: u64, rep: &Replica) -> Vec<i64> {
        let limit = rep.cfg.sync_limit as u64 * rep.tick_ms();
        self.learners
            .values()
            .filter(|f| matches!(f.stage, Stage::AwaitStartup | Stage::Active))
            .filter(|f| f.observer && now_ms.saturating_sub(f.last_heard_ms) <= limit)
            .filter_map(|f| f.sid)
            .collect()
    }

    /// Every learner connection whose sid is known, with it.
    pub fn learner_sids(&self) -> Vec<(ConnId, i64)> {
        self.learners
            .iter()
            .filter_map(|(c, f)| f.sid.map(|sid| (*c, sid)))
            .collect()
    }

    /// The synced observers' connections and sids.
    pub fn observer_conns(&self, now_ms: u64, rep: &Replica) -> Vec<(ConnId, i64)> {
        let limit = rep.cfg.sync_limit as u64 * rep.tick_ms();
        self.learners
            .iter()
            .filter(|(_, f)| matches!(f.stage, Stage::AwaitStartup | Stage::Active))
            .filter(|(_, f)| f.observer && now_ms.saturating_sub(f.last_heard_ms) <= limit)
            .filter_map(|(c, f)| f.sid.map(|sid| (*c, sid)))
            .collect()
    }

    pub fn synced_learners(&self, now_ms: u64, rep: &Replica) -> Vec<i64> {
        let limit = rep.cfg.sync_limit as u64 * rep.tick_ms();
        self.learners
            .values()
            .filter(|f| matches!(f.stage, Stage::AwaitStartup | Stage::Active))
            .filter(|f| !f.observer && now_ms.saturating_sub(f.last_heard_ms) <= limit)
            .filter_map(|f| f.sid)
            .collect()
    }

    fn has_quorum(rep: &Replica, set: &BTreeSet<i64>) -> bool {
        let voters = rep.cfg.voters();
        let n = voters.iter().filter(|v| set.contains(&v.0)).count();
        n > voters.len() / 2
    }

    fn send(rep: &mut Replica, conn: ConnId, p: QuorumPacket) {
        trace!(
            sid = rep.my_sid(),
            conn,
            kind = p.r#type,
            zxid = format_args!("{:#x}", p.zxid)
        );
        rep.emit(Output::SendLearner { conn, p });
    }

    fn close(&mut self, rep: &mut Replica, conn: ConnId, why: &str) {
        if let Some(f) = self.learners.remove(&conn) {
            warn!(sid = rep.my_sid(), conn, learner = ?f.sid, why, "closing learner");
            rep.emit(Output::CloseLearner { conn });
        }
    }

    pub fn handle_connected(&mut self, now_ms: u64, conn: ConnId) {
        self.learners.insert(
            conn,
            Learner {
                sid: None,
                observer: false,
                stage: Stage::AwaitInfo,
                last_heard_ms: now_ms,
                pings: VecDeque::new(),
                answered: 0,
            },
        );
    }

    pub fn handle_closed(&mut self, rep: &mut Replica, conn: ConnId) {
        if let Some(f) = self.learners.remove(&conn) {
            debug!(sid = rep.my_sid(), conn, learner = ?f.sid, "learner closed");
        }
    }

    /// One packet from a learner. A learner that breaks the protocol is closed; the result is
    /// an error only when the leader itself must give up.
    pub fn handle_packet(
        &mut self,
        now_ms: u64,
        rep: &mut Replica,
        conn: ConnId,
        p: QuorumPacket,
    ) -> Res {
        let Some(f) = self.learners.get_mut(&conn) else {
            return Ok(());
        };
        f.last_heard_ms = now_ms;
        let stage = f.stage;
        match (stage, p.r#type) {
            (Stage::AwaitInfo, packet_type::FOLLOWERINFO | packet_type::OBSERVERINFO) => {
                self.on_info(now_ms, rep, conn, p)
            }
            (Stage::AwaitAckEpoch, packet_type::ACKEPOCH) => {
                self.on_ack_epoch(now_ms, rep, conn, p)
            }
            (Stage::AwaitNewLeaderAck, packet_type::ACK) => {
                self.on_newleader_ack(rep, conn, p.zxid)
            }
            (Stage::AwaitStartup | Stage::Active, _) => {
                self.on_broadcast_packet(rep, conn, p);
                Ok(())
            }
            (_, kind) => {
                self.close(
                    rep,
                    conn,
                    &format!("unexpected packet type {kind} in {stage:?}"),
                );
                Ok(())
            }
        }
    }

    fn on_info(&mut self, now_ms: u64, rep: &mut Replica, conn: ConnId, p: QuorumPacket) -> Res {
        let info = match p.data.as_deref().map(LearnerInfo::decode) {
            Some(Ok(info)) => info,
            _ => {
                self.close(rep, conn, "bad LearnerInfo");
                return Ok(());
            }
        };
        let observer_pkt = p.r#type == packet_type::OBSERVERINFO;
        let sid = ServerId(info.sid);
        if !rep.cfg.is_member(sid) || rep.cfg.is_voter(sid) == observer_pkt {
            self.close(rep, conn, "learner sid or type does not match the config");
            return Ok(());
        }
        if info.config_version > rep.cfg.config_version() {
            self.close(rep, conn, "learner has a later config");
            return Ok(());
        }
        let dup: Vec<ConnId> = (self.learners.iter())
            .filter(|(c, f)| **c != conn && f.sid == Some(info.sid))
            .map(|(c, _)| *c)
            .collect();
        for c in dup {
            self.close(rep, c, "replaced by a newer connection from the same sid");
        }
        let f = self.learners.get_mut(&conn).expect("looked up above");
        f.sid = Some(info.sid);
        f.observer = observer_pkt;
        let accepted = Zxid(p.zxid).epoch();
        match self.phase {
            Phase::Discovery { .. } => {
                f.stage = Stage::AwaitEpoch;
                if accepted >= self.epoch {
                    self.epoch = Epoch(accepted.0 + 1);
                }
                if !observer_pkt {
                    self.connecting.insert(info.sid);
                }
                self.check_discovery(now_ms, rep)
            }
            Phase::EpochAck { .. } | Phase::NewLeaderAck { .. } | Phase::Broadcast
                if accepted > self.epoch =>
            {
                // The learner accepted a later epoch from a leader that never established it;
                // it will refuse ours (`Learner.registerWithLeader`), go back to election, vote
                // for us again, and so on for ever: ZooKeeper 3.8 loops like that. Stepping down
                // lets the next leader pick an epoch above it (corral addition; found by the zab
                // cluster simulation, seed 81, with faster elections).
                Err(Abdicate(format!(
                    "learner {} accepted epoch {accepted}, above ours ({})",
                    info.sid, self.epoch
                )))
            }
            Phase::EpochAck { .. } | Phase::NewLeaderAck { .. } | Phase::Broadcast => {
                f.stage = Stage::AwaitAckEpoch;
                Self::send_leader_info(rep, conn, self.epoch);
                Ok(())
            }
        }
    }

    fn send_leader_info(rep: &mut Replica, conn: ConnId, epoch: Epoch) {
        let data = encode_i32_data(LEADER_PROTOCOL_VERSION);
        let p = QuorumPacket::new(packet_type::LEADERINFO, Zxid::new(epoch, 0).0, Some(data));
        Self::send(rep, conn, p);
    }

    /// `getEpochToPropose`: once a quorum of participants (with us) connected, fix the epoch.
    fn check_discovery(&mut self, now_ms: u64, rep: &mut Replica) -> Res {
        if !matches!(self.phase, Phase::Discovery { .. })
            || !Self::has_quorum(rep, &self.connecting)
        {
            return Ok(());
        }
        rep.write_accepted_epoch(self.epoch);
        let init = rep.cfg.init_limit as u64 * rep.tick_ms();
        self.phase = Phase::EpochAck {
            deadline_ms: now_ms + init,
        };
        self.last_assigned = Zxid::new(self.epoch, 0).0;
        self.last_proposed = self.last_assigned;
        info!(
            sid = rep.my_sid(),
            epoch = %self.epoch,
            "leading: epoch chosen"
        );
        let waiting: Vec<ConnId> = (self.learners.iter())
            .filter(|(_, f)| f.stage == Stage::AwaitEpoch)
            .map(|(c, _)| *c)
            .collect();
        for c in waiting {
            if let Some(f) = self.learners.get_mut(&c) {
                f.stage = Stage::AwaitAckEpoch;
            }
            Self::send_leader_info(rep, c, self.epoch);
        }
        self.electing.insert(rep.my_sid());
        self.check_epoch_ack(now_ms, rep)
    }
}

// Epoch acknowledgement and synchronisation.
impl Leading {
    fn on_ack_epoch(
        &mut self,
        now_ms: u64,
        rep: &mut Replica,
        conn: ConnId,
        p: QuorumPacket,
    ) -> Res {
        let Some(Ok(epoch)) = p.data.as_deref().map(decode_i32_data) else {
            self.close(rep, conn, "bad ACKEPOCH data");
            return Ok(());
        };
        let f = self.learners.get_mut(&conn).expect("caller looked it up");
        let sid = f.sid.expect("sid set with the info packet");
        let observer = f.observer;
        let peer_last = p.zxid;
        match self.phase {
            Phase::EpochAck { .. } => {
                f.stage = Stage::AwaitEpochQuorum { peer_last };
                if epoch != -1 {
                    let (cur, last) = self.summary;
                    let (epoch, zxid) = (Epoch(epoch as i64), peer_last);
                    if epoch > cur || (epoch == cur && zxid > last) {
                        self.close(rep, conn, "learner is more recent than the leader");
                        return Ok(());
                    }
                    if peer_last != -1 && !observer {
                        self.electing.insert(sid);
                    }
                }
                self.check_epoch_ack(now_ms, rep)
            }
            Phase::NewLeaderAck { .. } | Phase::Broadcast => {
                self.sync_learner(rep, conn, peer_last);
                Ok(())
            }
            Phase::Discovery { .. } => {
                self.close(rep, conn, "ACKEPOCH before LEADERINFO");
                Ok(())
            }
        }
    }

    /// `waitForEpochAck` for us: once a quorum acked, persist the epoch and sync everyone.
    fn check_epoch_ack(&mut self, now_ms: u64, rep: &mut Replica) -> Res {
        if !matches!(self.phase, Phase::EpochAck { .. }) || !Self::has_quorum(rep, &self.electing) {
            return Ok(());
        }
        rep.write_current_epoch(self.epoch);
        let init = rep.cfg.init_limit as u64 * rep.tick_ms();
        self.phase = Phase::NewLeaderAck {
            deadline_ms: now_ms + init,
        };
        info!(
            sid = rep.my_sid(),
            epoch = %self.epoch,
            "leading: synchronising"
        );
        let waiting: Vec<(ConnId, i64)> = (self.learners.iter())
            .filter_map(|(c, f)| match f.stage {
                Stage::AwaitEpochQuorum { peer_last } => Some((*c, peer_last)),
                _ => None,
            })
            .collect();
        for (c, peer_last) in waiting {
            self.sync_learner(rep, c, peer_last);
        }
        self.check_newleader(rep)
    }

    /// `syncFollower` + `startForwarding` + NEWLEADER for one learner, or first a read of the
    /// on-disk txn log when rule 5 applies.
    fn sync_learner(&mut self, rep: &mut Replica, conn: ConnId, peer_last: i64) {
        self.sync_with(rep, conn, peer_last, None);
    }

    /// The glue's answer to `Output::ReadLog`: sync the learner now, from the current history
    /// (it may have grown meanwhile; forwarding starts where this stream ends).
    pub fn handle_log_read(&mut self, rep: &mut Replica, conn: ConnId, txns: LogAnswer) {
        match self.learners.get(&conn).map(|f| f.stage) {
            Some(Stage::AwaitLog { peer_last }) => {
                self.sync_with(rep, conn, peer_last, Some(txns));
            }
            _ => debug!(sid = rep.my_sid(), conn, "stale LogRead ignored"),
        }
    }

    /// `logged`: `None` before the on-disk log was read, else the glue's answer.
    fn sync_with(
        &mut self,
        rep: &mut Replica,
        conn: ConnId,
        peer_last: i64,
        logged: Option<LogAnswer>,
    ) {
        let established = self.established();
        let mut zxids: Vec<i64> = rep.committed_log.iter().map(|(z, _)| *z).collect();
        let log_empty = zxids.is_empty();
        if !established {
            // Before the epoch is established our logged tail is part of the history we
            // impose; afterwards the tail holds only outstanding proposals.
            zxids.extend(rep.tail.iter().map(|(z, _)| *z));
        }
        let last_processed = if established {
            rep.last_applied
        } else {
            rep.last_zxid
        };
        let h = History {
            zxids: &zxids,
            last_processed,
            base_without_log: log_empty.then_some(rep.last_applied),
        };
        let logged_zxids: Option<Option<Vec<i64>>> =
            (logged.as_ref()).map(|l| l.as_ref().map(|v| v.iter().map(|(z, _)| *z).collect()));
        let txn_log = match (&logged_zxids, rep.cfg.txn_log_sync) {
            (Some(l), _) => TxnLog::Read(l.as_deref()),
            (None, true) => TxnLog::Unread,
            (None, false) => TxnLog::Disabled,
        };
        let plan = match plan_sync(peer_last, h, txn_log) {
            Step::Plan(plan) => plan,
            Step::ReadLog { from_zxid, to_zxid } => {
                let f = self.learners.get_mut(&conn).expect("caller looked it up");
                f.stage = Stage::AwaitLog { peer_last };
                info!(
                    sid = rep.my_sid(), learner = ?f.sid,
                    peer_last = format_args!("{peer_last:#x}"),
                    to = format_args!("{to_zxid:#x}"),
                    "learner behind the committed log: reading the txn log"
                );
                rep.emit(Output::ReadLog {
                    conn,
                    from_zxid: Zxid(from_zxid),
                    to_zxid: Zxid(to_zxid),
                });
                return;
            }
        };
        let logged: Vec<(i64, Vec<u8>)> = logged.flatten().unwrap_or_default();
        let f = self.learners.get_mut(&conn).expect("caller looked it up");
        f.stage = Stage::AwaitNewLeaderAck;
        let observer = f.observer;
        // The log part of the stream ends at minCommittedLog; the committed log follows.
        let min = zxids.first().copied().unwrap_or(last_processed);
        let from_txn_log = match logged.is_empty() {
            false => plan.send.iter().take_while(|z| **z <= min).count(),
            true => 0,
        };
        info!(
            sid = rep.my_sid(), learner = ?f.sid, mode = ?plan.mode,
            peer_last = format_args!("{peer_last:#x}"), from_txn_log, "sync learner"
        );
        let send = match plan.mode {
            SyncMode::Diff(z) => {
                Self::send(rep, conn, QuorumPacket::new(packet_type::DIFF, z, None));
                plan.send
            }
            SyncMode::Trunc(z) => {
                Self::send(rep, conn, QuorumPacket::new(packet_type::TRUNC, z, None));
                plan.send
            }
            SyncMode::Snap => {
                rep.emit(Output::SendSnapshot { conn });
                let after = rep.last_applied;
                (rep.tail.iter())
                    .map(|(z, _)| *z)
                    .filter(|z| !established && *z > after)
                    .collect()
            }
        };
        self.send_history(rep, conn, &send, &logged);
        if !observer && established {
            let outstanding: Vec<(i64, Vec<u8>)> = (rep.tail.iter())
                .filter(|(z, _)| *z > plan.queued_zxid)
                .cloned()
                .collect();
            for (z, txn) in outstanding {
                Self::send(
                    rep,
                    conn,
                    QuorumPacket::new(packet_type::PROPOSAL, z, Some(txn)),
                );
            }
        }
        let config = self.newleader_config(rep);
        let nl = QuorumPacket::new(
            packet_type::NEWLEADER,
            Zxid::new(self.epoch, 0).0,
            Some(config),
        );
        Self::send(rep, conn, nl);
    }

    /// The config string NEWLEADER carries (ZooKeeper: the last-seen quorum verifier,
    /// `LearnerHandler` → `getQuorumVerifierBytes`).
    ///
    /// ZOOKEEPER-1783, as 3.8.0 does it: in `Leader.lead()`, once the epoch is chosen
    /// (`getEpochToPropose`) and before `waitForEpochAck`, a leader whose committed config
    /// *and* last-seen config both have version 0 (a static config: `server.N` lines in zoo.cfg
    /// or a dynamic file without a version) makes a copy with version = the NEWLEADER zxid
    /// (`epoch << 32`) its last-seen config (`QuorumPeer.setLastSeenQuorumVerifier`, which does
    /// nothing unless `reconfigEnabled`). NEWLEADER carries it; the committed config changes
    /// only once a quorum acknowledged NEWLEADER (`Leader.startZkServer` →
    /// `QuorumPeer.processReconfig`, again only with `reconfigEnabled`), see
    /// `check_newleader`; a learner adopts it at UPTODATE (`Learner.syncWithLeader`). A config
    /// that already has a version is sent unchanged.
    ///
    /// Unlike ZooKeeper we keep no last-seen config across a failed establishment: the next
    /// attempt bumps to its own epoch (ZooKeeper would keep the earlier epoch's version).
    fn newleader_config(&self, rep: &Replica) -> Vec<u8> {
        if rep.cfg.reconfig_enabled && rep.cfg.config_version() == 0 {
            QuorumConfig::with_version(&rep.cfg.config, Zxid::new(self.epoch, 0).0)
        } else {
            rep.cfg.config.clone()
        }
    }

    /// PROPOSAL + COMMIT pairs for history zxids (on-disk log, committed log or tail).
    fn send_history(
        &self,
        rep: &mut Replica,
        conn: ConnId,
        zxids: &[i64],
        logged: &[(i64, Vec<u8>)],
    ) {
        for &z in zxids {
            let from_log =
                (logged.binary_search_by_key(&z, |(x, _)| *x).ok()).map(|i| logged[i].1.clone());
            let txn = from_log
                .or_else(|| {
                    (rep.committed_log.iter().chain(rep.tail.iter()))
                        .find(|(x, _)| *x == z)
                        .map(|(_, t)| t.clone())
                })
                .expect("planned zxids come from the history");
            Self::send(
                rep,
                conn,
                QuorumPacket::new(packet_type::PROPOSAL, z, Some(txn)),
            );
            Self::send(rep, conn, QuorumPacket::new(packet_type::COMMIT, z, None));
        }
    }

    fn on_newleader_ack(&mut self, rep: &mut Replica, conn: ConnId, zxid: i64) -> Res {
        let f = self.learners.get_mut(&conn).expect("caller looked it up");
        let counted = zxid == Zxid::new(self.epoch, 0).0;
        if !counted {
            warn!(sid = rep.my_sid(), learner = ?f.sid, zxid = format_args!("{zxid:#x}"), "NEWLEADER ACK with the wrong zxid");
        }
        match self.phase {
            Phase::Broadcast => {
                f.stage = Stage::Active;
                Self::send(
                    rep,
                    conn,
                    QuorumPacket::new(packet_type::UPTODATE, -1, None),
                );
                Ok(())
            }
            Phase::NewLeaderAck { .. } => {
                f.stage = Stage::AwaitStartup;
                if counted && !f.observer {
                    self.newleader_acks
                        .insert(f.sid.expect("sid set with the info packet"));
                }
                self.check_newleader(rep)
            }
            Phase::Discovery { .. } | Phase::EpochAck { .. } => {
                self.close(rep, conn, "ACK before NEWLEADER");
                Ok(())
            }
        }
    }

    /// `waitForNewLeaderAck` for us: our own ack counts once our whole log is durable.
    fn check_newleader(&mut self, rep: &mut Replica) -> Res {
        if !matches!(self.phase, Phase::NewLeaderAck { .. }) {
            return Ok(());
        }
        if rep.synced_zxid >= rep.last_zxid {
            self.newleader_acks.insert(rep.my_sid());
        }
        if !Self::has_quorum(rep, &self.newleader_acks) {
            return Ok(());
        }
        // The history we imposed is on a quorum: it is committed.
        rep.commit_through(rep.last_zxid);
        // `startZkServer`: with reconfig enabled, the config NEWLEADER carried is committed.
        let config = self.newleader_config(rep);
        if config != rep.cfg.config {
            rep.commit_config(config);
        }
        self.phase = Phase::Broadcast;
        info!(
            sid = rep.my_sid(),
            epoch = %self.epoch,
            "leading: established"
        );
        rep.start_serving();
        rep.events
            .push_back(Event::Established { epoch: self.epoch });
        let waiting: Vec<ConnId> = (self.learners.iter())
            .filter(|(_, f)| f.stage == Stage::AwaitStartup)
            .map(|(c, _)| *c)
            .collect();
        for c in waiting {
            if let Some(f) = self.learners.get_mut(&c) {
                f.stage = Stage::Active;
            }
            Self::send(rep, c, QuorumPacket::new(packet_type::UPTODATE, -1, None));
        }
        Ok(())
    }
}

// Broadcast.
impl Leading {
    fn on_broadcast_packet(&mut self, rep: &mut Replica, conn: ConnId, p: QuorumPacket) {
        let f = &self.learners[&conn];
        let (sid, observer) = (f.sid.expect("sid set with the info packet"), f.observer);
        match p.r#type {
            packet_type::ACK if !observer => self.on_ack(rep, sid, p.zxid),
            packet_type::ACK => {}
            packet_type::REQUEST => {
                let Some(Ok(req)) = p.data.as_deref().map(ForwardedRequest::decode) else {
                    return self.close(rep, conn, "bad REQUEST data");
                };
                self.submit(rep, Some(conn), req, p.authinfo);
            }
            packet_type::PING => {
                match decode_session_touches(p.data.as_deref().unwrap_or(&[])) {
                    Ok(t) if t.is_empty() => {}
                    Ok(t) => {
                        let t = t.into_iter().map(|(s, to)| (SessionId(s), to)).collect();
                        rep.emit(Output::TouchSessions(t))
                    }
                    Err(_) => return self.close(rep, conn, "bad PING data"),
                }
                let f = self.learners.get_mut(&conn).expect("checked above");
                if let Some(round) = f.pings.pop_front() {
                    f.answered = round;
                    if !self.pending_syncs.is_empty() {
                        // Answers the syncs it confirms, then commits what they held back.
                        self.try_commit(rep);
                    }
                }
            }
            packet_type::REVALIDATE => {
                let Some(Ok(r)) = p.data.as_deref().map(RevalidateRequest::decode) else {
                    return self.close(rep, conn, "bad REVALIDATE data");
                };
                rep.emit(Output::CheckSession {
                    conn: Some(conn),
                    session_id: SessionId(r.session_id),
                    timeout: r.timeout,
                });
            }
            kind => warn!(
                sid = rep.my_sid(),
                learner = sid,
                kind,
                "unexpected quorum packet"
            ),
        }
    }

    fn on_ack(&mut self, rep: &mut Replica, sid: i64, zxid: i64) {
        if zxid & 0xffff_ffff == 0 || zxid <= rep.last_applied {
            return;
        }
        match self.acks.get_mut(&zxid) {
            Some(set) => {
                set.insert(sid);
                self.try_commit(rep);
            }
            None => debug!(
                sid = rep.my_sid(),
                learner = sid,
                zxid = format_args!("{zxid:#x}"),
                "ACK for no outstanding proposal"
            ),
        }
    }

    pub fn handle_synced(&mut self, rep: &mut Replica) -> Res {
        match self.phase {
            Phase::NewLeaderAck { .. } => self.check_newleader(rep),
            Phase::Broadcast => {
                self.try_commit(rep);
                Ok(())
            }
            Phase::Discovery { .. } | Phase::EpochAck { .. } => Ok(()),
        }
    }

    /// Commit outstanding proposals in zxid order while the lowest has a quorum of acks
    /// (ours only once `Synced` covers it).
    fn try_commit(&mut self, rep: &mut Replica) {
        self.complete_syncs(rep);
        while let Some((&zxid, set)) = self.acks.iter().next() {
            // A sync still waiting for its PING round holds back what was proposed after it:
            // the sync's reply must go out before any later write's (per-session order).
            if (self.pending_syncs.front()).is_some_and(|s| s.zxid < zxid) {
                break;
            }
            let mut set = set.clone();
            if rep.synced_zxid >= zxid {
                set.insert(rep.my_sid());
            }
            if !Self::has_quorum(rep, &set) {
                break;
            }
            self.acks.remove(&zxid);
            let txn = rep.commit_head(zxid);
            debug!(
                sid = rep.my_sid(),
                zxid = format_args!("{zxid:#x}"),
                "commit"
            );
            let conns: Vec<(ConnId, bool)> = (self.learners.iter())
                .filter(|(_, f)| f.forwarding())
                .map(|(c, f)| (*c, f.observer))
                .collect();
            for (c, observer) in conns {
                let p = match observer {
                    false => QuorumPacket::new(packet_type::COMMIT, zxid, None),
                    true => QuorumPacket::new(packet_type::INFORM, zxid, Some(txn.clone())),
                };
                Self::send(rep, c, p);
            }
            // A sync waiting for this zxid is answered before the next commit: a write the
            // same session sent after the sync must not be answered first (sim seed 981).
            self.complete_syncs(rep);
        }
        self.complete_syncs(rep);
    }

    /// Whether a quorum of participants (us included) answered PING round `round` or a later
    /// one.
    fn round_confirmed(&self, rep: &Replica, round: u64) -> bool {
        let mut heard: BTreeSet<i64> = (self.learners.values())
            .filter(|f| f.stage == Stage::Active && !f.observer && f.answered >= round)
            .filter_map(|f| f.sid)
            .collect();
        heard.insert(rep.my_sid());
        Self::has_quorum(rep, &heard)
    }

    /// PING every active learner: one round.
    fn ping_round(&mut self, rep: &mut Replica) {
        self.ping_round += 1;
        let round = self.ping_round;
        let ping = QuorumPacket::new(packet_type::PING, self.last_proposed, None);
        let active: Vec<ConnId> = (self.learners.iter())
            .filter(|(_, f)| f.stage == Stage::Active)
            .map(|(c, _)| *c)
            .collect();
        for c in active {
            self.learners
                .get_mut(&c)
                .expect("listed")
                .pings
                .push_back(round);
            Self::send(rep, c, ping.clone());
        }
    }

    fn complete_syncs(&mut self, rep: &mut Replica) {
        while let Some(&PendingSync { zxid, round, conn }) = self.pending_syncs.front() {
            if zxid > rep.last_applied || !self.round_confirmed(rep, round) {
                break;
            }
            self.pending_syncs.pop_front();
            match conn {
                None => rep.emit(Output::SyncDone),
                Some(c) if self.learners.contains_key(&c) => {
                    Self::send(rep, c, QuorumPacket::new(packet_type::SYNC, 0, None))
                }
                Some(_) => {}
            }
        }
    }

    /// A client request, local (`conn == None`) or forwarded by a learner.
    pub fn submit(
        &mut self,
        rep: &mut Replica,
        conn: Option<ConnId>,
        req: ForwardedRequest,
        auth: Option<Vec<Id>>,
    ) {
        if !self.established() {
            debug!(
                sid = rep.my_sid(),
                "request before the leader is established: dropped"
            );
            return;
        }
        if req.op_type == OP_SYNC {
            // Wait for what was assigned before it to be applied (ZooKeeper's
            // `Leader.processSync`), and, unlike ZooKeeper (ZOOKEEPER-1675), for a quorum to
            // answer a PING sent after it arrived: a leader deposed without knowing it yet
            // must not vouch for its own state.
            let zxid = match self.acks.is_empty() && self.last_assigned == self.last_proposed {
                true => i64::MIN,
                false => self.last_assigned,
            };
            let round = self.ping_round + 1;
            self.pending_syncs
                .push_back(PendingSync { zxid, round, conn });
            if !self.round_confirmed(rep, round) {
                self.ping_round(rep);
            }
            self.complete_syncs(rep);
            return;
        }
        self.last_assigned += 1;
        let zxid = self.last_assigned;
        rep.emit(Output::Prepare {
            zxid: Zxid(zxid),
            req,
            auth,
            origin: conn,
        });
    }

    /// The glue's txn for a zxid we assigned. Proposals go out in zxid order.
    pub fn handle_prepared(&mut self, rep: &mut Replica, zxid: i64, txn: Vec<u8>) -> Res {
        if !self.established() || zxid <= self.last_proposed || zxid > self.last_assigned {
            debug!(
                sid = rep.my_sid(),
                zxid = format_args!("{zxid:#x}"),
                "stale Prepared ignored"
            );
            return Ok(());
        }
        if zxid & 0xffff_ffff == 0xffff_ffff {
            return Err(Abdicate(
                "zxid counter exhausted: a new epoch is needed".into(),
            ));
        }
        self.prepared.insert(zxid, txn);
        while let Some(txn) = self.prepared.remove(&(self.last_proposed + 1)) {
            let zxid = self.last_proposed + 1;
            self.last_proposed = zxid;
            rep.append(zxid, txn.clone());
            self.acks.insert(zxid, BTreeSet::new());
            let conns: Vec<ConnId> = (self.learners.iter())
                .filter(|(_, f)| f.forwarding() && !f.observer)
                .map(|(c, _)| *c)
                .collect();
            for c in conns {
                let p = QuorumPacket::new(packet_type::PROPOSAL, zxid, Some(txn.clone()));
                Self::send(rep, c, p);
            }
        }
        self.try_commit(rep);
        Ok(())
    }

    pub fn handle_session_checked(
        &mut self,
        rep: &mut Replica,
        conn: Option<ConnId>,
        session_id: i64,
        valid: bool,
    ) {
        match conn {
            None => rep.emit(Output::SessionRevalidated {
                session_id: SessionId(session_id),
                valid,
            }),
            Some(c) if self.learners.contains_key(&c) => {
                let data = RevalidateReply { session_id, valid }.to_bytes();
                Self::send(
                    rep,
                    c,
                    QuorumPacket::new(packet_type::REVALIDATE, -1, Some(data)),
                );
            }
            Some(_) => {}
        }
    }
}

// Time.
impl Leading {
    pub fn poll_timeout(&self) -> Option<u64> {
        let phase = match self.phase {
            Phase::Discovery { deadline_ms }
            | Phase::EpochAck { deadline_ms }
            | Phase::NewLeaderAck { deadline_ms } => deadline_ms,
            Phase::Broadcast => u64::MAX,
        };
        Some(phase.min(self.next_half_tick_ms))
    }

    pub fn handle_timeout(&mut self, now_ms: u64, rep: &mut Replica) -> Res {
        match self.phase {
            Phase::Discovery { deadline_ms } if now_ms >= deadline_ms => {
                return Err(Abdicate("timeout waiting for epoch from a quorum".into()))
            }
            Phase::EpochAck { deadline_ms } if now_ms >= deadline_ms => {
                return Err(Abdicate(
                    "timeout waiting for a quorum of epoch acks".into(),
                ))
            }
            Phase::NewLeaderAck { deadline_ms } if now_ms >= deadline_ms => {
                return Err(Abdicate(
                    "timeout waiting for a quorum of NEWLEADER acks".into(),
                ))
            }
            Phase::Discovery { .. }
            | Phase::EpochAck { .. }
            | Phase::NewLeaderAck { .. }
            | Phase::Broadcast => {}
        }
        if now_ms >= self.next_half_tick_ms {
            let half = rep.tick_ms() / 2;
            self.next_half_tick_ms += half;
            if self.next_half_tick_ms <= now_ms {
                self.next_half_tick_ms = now_ms + half;
            }
            self.half_tick(now_ms, rep)?;
        }
        Ok(())
    }

    /// `Leader.lead`'s loop body: drop silent learners, check the synced quorum every other
    /// half tick, ping every synced learner.
    fn half_tick(&mut self, now_ms: u64, rep: &mut Replica) -> Res {
        let tick = rep.tick_ms();
        let silent: Vec<ConnId> = (self.learners.iter())
            .filter(|(_, f)| {
                let limit = match f.stage {
                    Stage::AwaitStartup | Stage::Active => rep.cfg.sync_limit,
                    _ => rep.cfg.init_limit,
                };
                now_ms.saturating_sub(f.last_heard_ms) > limit as u64 * tick
            })
            .map(|(c, _)| *c)
            .collect();
        for c in silent {
            self.close(rep, c, "silent for too long");
        }
        if self.phase != Phase::Broadcast {
            return Ok(());
        }
        if !self.tick_skip {
            let mut synced: BTreeSet<i64> = self.synced_learners(now_ms, rep).into_iter().collect();
            synced.insert(rep.my_sid());
            if !Self::has_quorum(rep, &synced) {
                return Err(Abdicate(format!(
                    "not sufficient followers synced, only {synced:?}"
                )));
            }
        }
        self.tick_skip = !self.tick_skip;
        self.ping_round(rep);
        Ok(())
    }

    /// Leaving the role: close every learner. Outstanding proposals stay in the logged tail.
    pub fn shutdown(&mut self, rep: &mut Replica) {
        for c in self.learner_conns() {
            rep.emit(Output::CloseLearner { conn: c });
        }
        self.learners.clear();
    }
}
