//! The FOLLOWING and OBSERVING roles (reference §4.5–4.8, §4.11; ZooKeeper's `Learner`,
//! `Follower`, `Observer`): register with the leader, accept its epoch, apply DIFF / TRUNC /
//! SNAP, log the proposals of the sync stream at NEWLEADER, acknowledge NEWLEADER only once
//! that log is durable and before any proposal ACK (the 3.8.5 order), then follow the
//! broadcast.
//!
//! A follower never ACKs a zxid that `Synced` has not covered. Any packet that breaks the
//! protocol makes the caller go back to LOOKING.

use std::collections::VecDeque;

use corral_proto::quorum::{
    encode_i32_data, encode_session_touches, packet_type, ForwardedRequest, LearnerInfo,
    QuorumConfig, QuorumPacket, RevalidateReply, RevalidateRequest, LEADER_PROTOCOL_VERSION,
};
use corral_proto::records::Id;
use corral_proto::{Epoch, ServerId, SessionId, Zxid};
use tracing::{debug, info, trace, warn};

use crate::leader::OP_SYNC;
use crate::replica::{Event, Replica};
use crate::types::Output;

/// Why the learner gives up on this leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Abandon(pub String);

type Res = Result<(), Abandon>;

fn bad<T>(why: impl Into<String>) -> Result<T, Abandon> {
    Err(Abandon(why.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `ConnectToLeader` emitted, waiting for `LeaderConnected`.
    Connecting,
    AwaitLeaderInfo,
    /// ACKEPOCH sent, waiting for DIFF / TRUNC / SNAP.
    AwaitSyncMode,
    /// Reading the sync stream; `snap` is the SNAP zxid while its payload has not arrived.
    Syncing {
        snap: Option<i64>,
    },
    /// NEWLEADER read and its proposals appended; waiting for them to be durable.
    AwaitNewLeaderDurable,
    /// NEWLEADER acknowledged.
    AwaitUpToDate,
    Broadcast,
}

#[derive(Debug)]
pub(crate) struct Learning {
    leader: i64,
    observer: bool,
    phase: Phase,
    last_heard_ms: u64,
    new_epoch: Epoch,
    /// Our own logged txns up to here are part of the leader's history (DIFF / TRUNC).
    sync_base: i64,
    /// PROPOSALs read before NEWLEADER, logged at NEWLEADER.
    sync_proposals: Vec<(i64, Vec<u8>)>,
    /// Highest COMMIT (or INFORM) read before UPTODATE.
    sync_commit_max: i64,
    /// Appended zxids to ACK once durable (followers only).
    ack_queue: VecDeque<i64>,
    acks_allowed: bool,
    /// PING zxids waiting for `Input::Touches`.
    pings: VecDeque<i64>,
    pending_syncs: usize,
    /// The log end at NEWLEADER: its ACK waits until this is durable.
    newleader_log_end: i64,
    /// The config string NEWLEADER carried, adopted at UPTODATE if newer.
    newleader_config: Option<Vec<u8>>,
}

impl Learning {
    pub fn new(now_ms: u64, rep: &mut Replica, leader: i64) -> Learning {
        let observer = rep.cfg.is_observer();
        info!(sid = rep.my_sid(), leader, observer, "learner: connecting");
        rep.emit(Output::ConnectToLeader {
            sid: ServerId(leader),
        });
        Learning {
            leader,
            observer,
            phase: Phase::Connecting,
            last_heard_ms: now_ms,
            new_epoch: Epoch(-1),
            sync_base: -1,
            sync_proposals: Vec::new(),
            sync_commit_max: -1,
            ack_queue: VecDeque::new(),
            acks_allowed: false,
            pings: VecDeque::new(),
            pending_syncs: 0,
            newleader_log_end: i64::MAX,
            newleader_config: None,
        }
    }

    pub fn leader(&self) -> i64 {
        self.leader
    }

    pub fn pending_syncs(&self) -> usize {
        self.pending_syncs
    }

    fn send(rep: &mut Replica, p: QuorumPacket) {
        trace!(
            sid = rep.my_sid(),
            kind = p.r#type,
            zxid = format_args!("{:#x}", p.zxid),
            "to leader"
        );
        rep.emit(Output::SendLeader(p));
    }

    pub fn handle_connected(&mut self, now_ms: u64, rep: &mut Replica) -> Res {
        if self.phase != Phase::Connecting {
            return bad("second LeaderConnected");
        }
        self.last_heard_ms = now_ms;
        let kind = match self.observer {
            true => packet_type::OBSERVERINFO,
            false => packet_type::FOLLOWERINFO,
        };
        let info = LearnerInfo {
            sid: rep.my_sid(),
            protocol_version: LEADER_PROTOCOL_VERSION,
            config_version: rep.cfg.config_version(),
        };
        let zxid = Zxid::new(rep.accepted_epoch, 0).0;
        Self::send(rep, QuorumPacket::new(kind, zxid, Some(info.to_bytes())));
        self.phase = Phase::AwaitLeaderInfo;
        Ok(())
    }

    pub fn handle_packet(&mut self, now_ms: u64, rep: &mut Replica, p: QuorumPacket) -> Res {
        self.last_heard_ms = now_ms;
        match self.phase {
            Phase::Connecting => bad("packet before the connection"),
            Phase::AwaitLeaderInfo => self.on_leader_info(rep, p),
            Phase::AwaitSyncMode => self.on_sync_mode(rep, p),
            Phase::Syncing { snap: Some(_) } => bad("packet before the SNAP payload"),
            Phase::Syncing { snap: None } => self.on_sync_packet(rep, p),
            Phase::AwaitNewLeaderDurable | Phase::AwaitUpToDate => self.on_pre_uptodate(rep, p),
            Phase::Broadcast => self.on_broadcast(rep, p),
        }
    }

    fn on_leader_info(&mut self, rep: &mut Replica, p: QuorumPacket) -> Res {
        if p.r#type != packet_type::LEADERINFO {
            return bad(format!("expected LEADERINFO, got type {}", p.r#type));
        }
        let new_epoch = Zxid(p.zxid).epoch();
        let epoch_field = if new_epoch > rep.accepted_epoch {
            let current = rep.current_epoch;
            rep.write_accepted_epoch(new_epoch);
            current
        } else if new_epoch == rep.accepted_epoch {
            Epoch(-1)
        } else {
            return bad(format!(
                "leader epoch {new_epoch} below accepted {}",
                rep.accepted_epoch
            ));
        };
        self.new_epoch = new_epoch;
        let data = encode_i32_data(epoch_field.0 as i32);
        Self::send(
            rep,
            QuorumPacket::new(packet_type::ACKEPOCH, rep.last_zxid, Some(data)),
        );
        self.phase = Phase::AwaitSyncMode;
        Ok(())
    }

    fn on_sync_mode(&mut self, rep: &mut Replica, p: QuorumPacket) -> Res {
        info!(
            sid = rep.my_sid(),
            kind = p.r#type,
            zxid = format_args!("{:#x}", p.zxid),
            "sync mode"
        );
        match p.r#type {
            packet_type::DIFF => {
                self.sync_base = rep.last_zxid;
                self.phase = Phase::Syncing { snap: None };
            }
            packet_type::TRUNC => {
                rep.truncate(p.zxid);
                if rep.last_zxid != p.zxid {
                    // Our log never reached the TRUNC point: we lack txns the leader thinks
                    // we have. Register again with what we have (`Input::Reloaded` is the
                    // same case, found by the glue's reload).
                    return bad(format!(
                        "TRUNC {:#x} but our log ends at {:#x}",
                        p.zxid, rep.last_zxid
                    ));
                }
                self.sync_base = rep.last_zxid;
                self.phase = Phase::Syncing { snap: None };
            }
            packet_type::SNAP => self.phase = Phase::Syncing { snap: Some(p.zxid) },
            kind => return bad(format!("expected DIFF, TRUNC or SNAP, got type {kind}")),
        }
        Ok(())
    }

    pub fn handle_snapshot(
        &mut self,
        now_ms: u64,
        rep: &mut Replica,
        zxid: i64,
        blob: Vec<u8>,
    ) -> Res {
        self.last_heard_ms = now_ms;
        match self.phase {
            Phase::Syncing { snap: Some(z) } if z == zxid => {
                rep.load_snapshot(zxid, blob);
                self.sync_base = zxid;
                self.phase = Phase::Syncing { snap: None };
                Ok(())
            }
            _ => bad("unexpected snapshot payload"),
        }
    }

    /// The zxid of the newest txn we have or have been sent.
    fn last_known(&self, rep: &Replica) -> i64 {
        self.sync_proposals
            .last()
            .map_or(rep.last_zxid, |(z, _)| *z)
    }

    fn on_sync_packet(&mut self, rep: &mut Replica, p: QuorumPacket) -> Res {
        match p.r#type {
            packet_type::PROPOSAL => {
                let Some(txn) = p.data else {
                    return bad("PROPOSAL without data");
                };
                if p.zxid <= self.last_known(rep) {
                    return bad(format!("PROPOSAL {:#x} is not new", p.zxid));
                }
                self.sync_proposals.push((p.zxid, txn));
                Ok(())
            }
            packet_type::COMMIT => self.remember_commit(rep, p.zxid),
            packet_type::NEWLEADER => self.on_newleader(rep, p.zxid, p.data),
            packet_type::PING => Ok(()),
            kind => bad(format!("unexpected packet type {kind} during sync")),
        }
    }

    fn remember_commit(&mut self, rep: &Replica, zxid: i64) -> Res {
        if zxid > self.last_known(rep) {
            return bad(format!("COMMIT {zxid:#x} for an unknown proposal"));
        }
        self.sync_commit_max = self.sync_commit_max.max(zxid);
        Ok(())
    }

    /// Log the sync stream's proposals, then (once durable) persist the epoch and ACK.
    fn on_newleader(&mut self, rep: &mut Replica, zxid: i64, config: Option<Vec<u8>>) -> Res {
        if Zxid(zxid).epoch() != self.new_epoch {
            return bad(format!(
                "NEWLEADER {zxid:#x} is not for epoch {}",
                self.new_epoch
            ));
        }
        // `Learner.syncWithLeader` keeps a config of more than one byte as the last seen one.
        self.newleader_config = config.filter(|c| c.len() > 1);
        for (z, txn) in std::mem::take(&mut self.sync_proposals) {
            rep.append(z, txn);
            if !self.observer {
                self.ack_queue.push_back(z);
            }
        }
        self.phase = Phase::AwaitNewLeaderDurable;
        self.newleader_log_end = rep.last_zxid;
        self.try_ack_newleader(rep);
        Ok(())
    }

    fn try_ack_newleader(&mut self, rep: &mut Replica) {
        if self.phase != Phase::AwaitNewLeaderDurable || rep.synced_zxid < self.newleader_log_end {
            return;
        }
        rep.write_current_epoch(self.new_epoch);
        Self::send(
            rep,
            QuorumPacket::new(packet_type::ACK, Zxid::new(self.new_epoch, 0).0, None),
        );
        self.phase = Phase::AwaitUpToDate;
        self.acks_allowed = true;
        self.flush_acks(rep);
    }

    fn flush_acks(&mut self, rep: &mut Replica) {
        while let Some(&z) = self.ack_queue.front() {
            if !self.acks_allowed || z > rep.synced_zxid {
                break;
            }
            self.ack_queue.pop_front();
            Self::send(rep, QuorumPacket::new(packet_type::ACK, z, None));
        }
    }

    pub fn handle_synced(&mut self, rep: &mut Replica) {
        self.try_ack_newleader(rep);
        self.flush_acks(rep);
    }
}

// Between NEWLEADER and UPTODATE, and the broadcast phase.
impl Learning {
    fn append_new(&mut self, rep: &mut Replica, p: QuorumPacket) -> Res {
        let Some(txn) = p.data else {
            return bad("txn packet without data");
        };
        if p.zxid <= rep.last_zxid {
            return bad(format!(
                "txn {:#x} is not above our log {:#x}",
                p.zxid, rep.last_zxid
            ));
        }
        rep.append(p.zxid, txn);
        Ok(())
    }

    fn on_pre_uptodate(&mut self, rep: &mut Replica, p: QuorumPacket) -> Res {
        match p.r#type {
            packet_type::PROPOSAL if !self.observer => {
                let z = p.zxid;
                self.append_new(rep, p)?;
                self.ack_queue.push_back(z);
                self.flush_acks(rep);
                Ok(())
            }
            packet_type::INFORM if self.observer => {
                let z = p.zxid;
                self.append_new(rep, p)?;
                self.sync_commit_max = self.sync_commit_max.max(z);
                Ok(())
            }
            packet_type::COMMIT => self.remember_commit(rep, p.zxid),
            packet_type::PING => Ok(()),
            packet_type::UPTODATE if self.phase == Phase::AwaitUpToDate => self.on_uptodate(rep),
            kind => bad(format!("unexpected packet type {kind} before UPTODATE")),
        }
    }

    /// The leader is established: everything it sent as committed, and our own log up to the
    /// sync base, is committed.
    fn on_uptodate(&mut self, rep: &mut Replica) -> Res {
        let through = self.sync_base.max(self.sync_commit_max);
        rep.commit_through(through);
        self.adopt_newleader_config(rep);
        info!(
            sid = rep.my_sid(),
            leader = self.leader,
            epoch = %self.new_epoch,
            "learner: up to date"
        );
        self.phase = Phase::Broadcast;
        rep.start_serving();
        Self::send(
            rep,
            QuorumPacket::new(packet_type::ACK, Zxid::new(self.new_epoch, 0).0, None),
        );
        rep.events.push_back(Event::Established {
            epoch: self.new_epoch,
        });
        Ok(())
    }

    /// `Learner.syncWithLeader` at UPTODATE: `QuorumPeer.processReconfig` with the config
    /// NEWLEADER carried, which (only with `reconfigEnabled`) commits it if its version is
    /// above ours (`setQuorumVerifier`). That is how learners take the version the first
    /// leader gives a static config (see the leader's `newleader_config`). A config with
    /// other members would be a reconfiguration, which we do not support: kept out, loudly.
    fn adopt_newleader_config(&mut self, rep: &mut Replica) {
        let Some(config) = self.newleader_config.take() else {
            return;
        };
        let version = QuorumConfig::version_in(&config);
        if !rep.cfg.reconfig_enabled || version <= rep.cfg.config_version() {
            return;
        }
        let mut ours = rep.cfg.members.clone();
        ours.sort_unstable();
        let theirs = QuorumConfig::parse(&String::from_utf8_lossy(&config)).map(|c| c.roles());
        let ours: Vec<(i64, bool)> = ours.into_iter().map(|(s, o)| (s.0, o)).collect();
        if theirs.as_ref() != Ok(&ours) {
            warn!(
                sid = rep.my_sid(),
                leader = self.leader,
                "the leader's config has other members (a reconfiguration, unsupported) or does not parse: kept ours"
            );
            return;
        }
        rep.commit_config(config);
    }

    fn on_broadcast(&mut self, rep: &mut Replica, p: QuorumPacket) -> Res {
        match (p.r#type, self.observer) {
            (packet_type::PROPOSAL, false) => {
                let z = p.zxid;
                self.append_new(rep, p)?;
                self.ack_queue.push_back(z);
                self.flush_acks(rep);
                Ok(())
            }
            (packet_type::COMMIT, false) => self.on_commit(rep, p.zxid),
            (packet_type::INFORM, true) => {
                let z = p.zxid;
                self.append_new(rep, p)?;
                rep.commit_head(z);
                Ok(())
            }
            (packet_type::PROPOSAL | packet_type::COMMIT, true) | (packet_type::INFORM, false) => {
                warn!(
                    sid = rep.my_sid(),
                    kind = p.r#type,
                    "ignoring a packet meant for the other learner type"
                );
                Ok(())
            }
            (packet_type::PING, _) => {
                self.pings.push_back(p.zxid);
                rep.emit(Output::CollectTouches);
                Ok(())
            }
            (packet_type::REVALIDATE, _) => {
                let Some(Ok(r)) = p.data.as_deref().map(RevalidateReply::decode) else {
                    return bad("bad REVALIDATE reply");
                };
                rep.emit(Output::SessionRevalidated {
                    session_id: SessionId(r.session_id),
                    valid: r.valid,
                });
                Ok(())
            }
            (packet_type::SYNC, _) => {
                if self.pending_syncs == 0 {
                    warn!(sid = rep.my_sid(), "SYNC without a pending sync");
                    return Ok(());
                }
                self.pending_syncs -= 1;
                rep.emit(Output::SyncDone);
                Ok(())
            }
            (packet_type::UPTODATE, _) => {
                warn!(sid = rep.my_sid(), "UPTODATE after the learner started");
                Ok(())
            }
            (kind, _) => bad(format!("unexpected packet type {kind} in broadcast")),
        }
    }

    fn on_commit(&mut self, rep: &mut Replica, zxid: i64) -> Res {
        match rep.tail_head() {
            Some(head) if head == zxid => {
                rep.commit_head(zxid);
                Ok(())
            }
            _ if zxid <= rep.last_applied => Ok(()),
            head => bad(format!(
                "COMMIT {zxid:#x} but the next pending txn is {head:x?}"
            )),
        }
    }

    pub fn handle_touches(&mut self, rep: &mut Replica, touches: Vec<(i64, i32)>) {
        let Some(zxid) = self.pings.pop_front() else {
            debug!(sid = rep.my_sid(), "touches without a pending ping");
            return;
        };
        let data = encode_session_touches(&touches);
        Self::send(rep, QuorumPacket::new(packet_type::PING, zxid, Some(data)));
    }

    pub fn submit(&mut self, rep: &mut Replica, req: ForwardedRequest, auth: Option<Vec<Id>>) {
        if self.phase != Phase::Broadcast {
            debug!(
                sid = rep.my_sid(),
                "request before the learner is synced: dropped"
            );
            return;
        }
        if req.op_type == OP_SYNC {
            self.pending_syncs += 1;
        }
        let mut p = QuorumPacket::new(packet_type::REQUEST, -1, Some(req.to_bytes()));
        p.authinfo = auth;
        Self::send(rep, p);
    }

    pub fn revalidate(&mut self, rep: &mut Replica, session_id: i64, timeout: i32) {
        if self.phase != Phase::Broadcast {
            debug!(
                sid = rep.my_sid(),
                "revalidate before the learner is synced: dropped"
            );
            return;
        }
        let data = RevalidateRequest {
            session_id,
            timeout,
        }
        .to_bytes();
        Self::send(
            rep,
            QuorumPacket::new(packet_type::REVALIDATE, -1, Some(data)),
        );
    }

    pub fn poll_timeout(&self, rep: &Replica) -> Option<u64> {
        let limit = match self.phase {
            Phase::Broadcast => rep.cfg.sync_limit,
            _ => rep.cfg.init_limit,
        };
        Some(self.last_heard_ms + limit as u64 * rep.tick_ms())
    }

    pub fn handle_timeout(&mut self, now_ms: u64, rep: &Replica) -> Res {
        match self.poll_timeout(rep) {
            Some(t) if now_ms >= t => bad("leader silent for too long"),
            _ => Ok(()),
        }
    }
}
