//! One ZooKeeper quorum peer as a sans-IO state machine (STYLE.md "Sans-IO core"): it owns the
//! Fast Leader Election and moves LOOKING → LEADING / FOLLOWING / OBSERVING and back to
//! LOOKING when the role fails (ZooKeeper's `QuorumPeer.run` loop). The roles live in
//! `leader` and `learner`; the replicated history shared by all roles in `replica`.
//!
//! The peer knows nothing of the data tree: txns are opaque bytes with their zxid. The glue
//! owns the tree and storage, executes `Output`s in order and feeds completions back.
//!
//! Contract with the glue, beyond each variant's docs in `types`:
//! * outputs are executed in order; `Write*Epoch`, `Truncate` and `LoadSnapshot` complete
//!   before the next input is handed in (a `Truncate` whose reload ends below its zxid is
//!   answered by `Input::Reloaded`, handed in before anything else);
//! * after `CloseLeader` / `CloseLearner` no further input from that connection arrives;
//! * `Submit` and `Revalidate` are only meaningful while serving (between `StartServing`
//!   and `StopServing`); at `StopServing` the glue fails its pending requests and syncs.

use corral_proto::quorum::ServerState;
use corral_proto::{Epoch, ServerId, Zxid};
use tracing::{info, warn};

use crate::election::{Election, ElectionConfig, ElectionOutput, Vote};
use crate::leader::Leading;
use crate::learner::Learning;
use crate::replica::{Event, Replica};
use crate::types::{Durable, Input, Output, PeerConfig};

#[derive(Debug)]
enum Role {
    Looking,
    Leading(Box<Leading>),
    Learning(Box<Learning>),
}

/// One quorum peer.
#[derive(Debug)]
pub struct Peer {
    rep: Replica,
    election: Election,
    role: Role,
    /// The vote the election decided, kept to re-settle it with the new epoch.
    vote: Option<Vote>,
    now_ms: u64,
}

impl Peer {
    pub fn new(cfg: PeerConfig, durable: Durable, now_ms: u64) -> Peer {
        // The election and the peer's config, inputs and outputs speak typed sids and
        // zxids; the roles inside keep bare i64s, converted where inputs and outputs pass.
        let election = Election::new(ElectionConfig {
            my_sid: cfg.my_sid,
            voters: cfg.voters(),
            observer: cfg.is_observer(),
            config: Some(cfg.config.clone()),
            finalize_wait_ms: crate::election::FINALIZE_WAIT_MS,
            max_notification_interval_ms: crate::election::MAX_NOTIFICATION_INTERVAL_MS,
        });
        let mut peer = Peer {
            rep: Replica::new(cfg, durable),
            election,
            role: Role::Looking,
            vote: None,
            now_ms,
        };
        peer.look(now_ms);
        peer
    }

    pub fn state(&self) -> ServerState {
        match &self.role {
            Role::Looking => ServerState::Looking,
            Role::Leading(_) => ServerState::Leading,
            Role::Learning(_) if self.rep.cfg.is_observer() => ServerState::Observing,
            Role::Learning(_) => ServerState::Following,
        }
    }

    pub fn leader(&self) -> Option<ServerId> {
        match &self.role {
            Role::Looking => None,
            Role::Leading(_) => Some(ServerId(self.rep.my_sid())),
            Role::Learning(l) => Some(ServerId(l.leader())),
        }
    }

    /// The current (established) epoch.
    pub fn epoch(&self) -> Epoch {
        self.rep.current_epoch
    }

    pub fn accepted_epoch(&self) -> Epoch {
        self.rep.accepted_epoch
    }

    /// Last logged zxid (including appends not yet durable).
    pub fn last_zxid(&self) -> i64 {
        self.rep.last_zxid
    }

    /// Last applied (committed) zxid.
    pub fn last_committed(&self) -> i64 {
        self.rep.last_applied
    }

    /// The committed config string (§4.1), as notifications and NEWLEADER carry it.
    pub fn config(&self) -> &[u8] {
        &self.rep.cfg.config
    }

    /// True between `StartServing` and `StopServing`.
    pub fn serving(&self) -> bool {
        self.rep.serving
    }

    /// Leader: the established epoch's synced participants (without us); else empty.
    pub fn synced_learners(&self) -> Vec<i64> {
        match &self.role {
            Role::Leading(l) => l.synced_learners(self.now_ms, &self.rep),
            Role::Looking | Role::Learning(_) => Vec::new(),
        }
    }

    /// Leader: synced observers (followers are in `synced_learners`).
    pub fn synced_observers(&self) -> Vec<i64> {
        match &self.role {
            Role::Leading(l) => l.synced_observers(self.now_ms, &self.rep),
            Role::Looking | Role::Learning(_) => Vec::new(),
        }
    }

    /// Leader: every learner connection whose sid is known, with it.
    pub fn learner_sids(&self) -> Vec<(crate::ConnId, i64)> {
        match &self.role {
            Role::Leading(l) => l.learner_sids(),
            Role::Looking | Role::Learning(_) => Vec::new(),
        }
    }

    /// Leader: the synced observers' connections and sids.
    pub fn observer_conns(&self) -> Vec<(crate::ConnId, i64)> {
        match &self.role {
            Role::Leading(l) => l.observer_conns(self.now_ms, &self.rep),
            Role::Looking | Role::Learning(_) => Vec::new(),
        }
    }

    pub fn pending_syncs(&self) -> usize {
        match &self.role {
            Role::Leading(l) => l.pending_syncs(),
            Role::Learning(l) => l.pending_syncs(),
            Role::Looking => 0,
        }
    }

    pub fn outstanding_proposals(&self) -> usize {
        match &self.role {
            Role::Leading(l) => l.outstanding(),
            Role::Looking | Role::Learning(_) => 0,
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.rep.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        let role = match &self.role {
            Role::Looking => None,
            Role::Leading(l) => l.poll_timeout(),
            Role::Learning(l) => l.poll_timeout(&self.rep),
        };
        match (self.election.poll_timeout(), role) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        self.election.handle_timeout(now_ms);
        self.drain_election(now_ms);
        let res = match &mut self.role {
            Role::Looking => Ok(()),
            Role::Leading(l) => l.handle_timeout(now_ms, &mut self.rep).map_err(|a| a.0),
            Role::Learning(l) => l.handle_timeout(now_ms, &self.rep).map_err(|a| a.0),
        };
        self.after(now_ms, res);
    }
}

// Inputs.
impl Peer {
    pub fn handle(&mut self, now_ms: u64, input: Input) {
        self.now_ms = self.now_ms.max(now_ms);
        let res = self.dispatch(now_ms, input);
        self.after(now_ms, res);
    }

    fn dispatch(&mut self, now_ms: u64, input: Input) -> Result<(), String> {
        match input {
            Input::Election { from, n } => {
                self.election.handle_notification(now_ms, from, n);
                self.drain_election(now_ms);
                Ok(())
            }
            Input::ElectionPeerConnected { sid } => {
                self.election.handle_peer_connected(now_ms, sid);
                self.drain_election(now_ms);
                Ok(())
            }
            input => self.dispatch_role(now_ms, input),
        }
    }

    fn dispatch_role(&mut self, now_ms: u64, input: Input) -> Result<(), String> {
        let rep = &mut self.rep;
        match (input, &mut self.role) {
            (Input::Election { .. } | Input::ElectionPeerConnected { .. }, _) => Ok(()),
            (Input::Synced { zxid }, role) => {
                rep.handle_synced(zxid.0);
                match role {
                    Role::Leading(l) => l.handle_synced(rep).map_err(|a| a.0),
                    Role::Learning(l) => {
                        l.handle_synced(rep);
                        Ok(())
                    }
                    Role::Looking => Ok(()),
                }
            }
            (Input::LearnerConnected { conn }, Role::Leading(l)) => {
                l.handle_connected(now_ms, conn);
                Ok(())
            }
            (Input::LearnerPacket { conn, p }, Role::Leading(l)) => {
                l.handle_packet(now_ms, rep, conn, p).map_err(|a| a.0)
            }
            (Input::LearnerClosed { conn }, Role::Leading(l)) => {
                l.handle_closed(rep, conn);
                Ok(())
            }
            (Input::LearnerConnected { conn } | Input::LearnerPacket { conn, .. }, _) => {
                rep.emit(Output::CloseLearner { conn });
                Ok(())
            }
            (Input::LeaderConnected, Role::Learning(l)) => {
                l.handle_connected(now_ms, rep).map_err(|a| a.0)
            }
            (Input::LeaderPacket(p), Role::Learning(l)) => {
                l.handle_packet(now_ms, rep, p).map_err(|a| a.0)
            }
            (Input::LeaderSnapshot { zxid, blob }, Role::Learning(l)) => l
                .handle_snapshot(now_ms, rep, zxid.0, blob)
                .map_err(|a| a.0),
            (Input::LeaderClosed, Role::Learning(_)) => Err("leader connection closed".into()),
            (Input::Submit(req, auth), Role::Leading(l)) => {
                l.submit(rep, None, req, auth);
                Ok(())
            }
            (Input::Submit(req, auth), Role::Learning(l)) => {
                l.submit(rep, req, auth);
                Ok(())
            }
            (Input::Prepared { txn, zxid }, Role::Leading(l)) => {
                l.handle_prepared(rep, zxid.0, txn).map_err(|a| a.0)
            }
            (
                Input::Revalidate {
                    session_id,
                    timeout,
                },
                Role::Leading(_),
            ) => {
                let conn = None;
                rep.emit(Output::CheckSession {
                    conn,
                    session_id,
                    timeout,
                });
                Ok(())
            }
            (
                Input::Revalidate {
                    session_id,
                    timeout,
                },
                Role::Learning(l),
            ) => {
                l.revalidate(rep, session_id.0, timeout);
                Ok(())
            }
            (
                Input::SessionChecked {
                    conn,
                    session_id,
                    valid,
                },
                Role::Leading(l),
            ) => {
                l.handle_session_checked(rep, conn, session_id.0, valid);
                Ok(())
            }
            (Input::LogRead { conn, txns }, Role::Leading(l)) => {
                let txns = txns.map(|t| crate::types::bare_log(t).collect());
                l.handle_log_read(rep, conn, txns);
                Ok(())
            }
            (
                Input::Reloaded {
                    last_zxid,
                    committed_log,
                },
                role,
            ) => {
                let log = crate::types::bare_log(committed_log).collect();
                rep.reloaded(last_zxid.0, log);
                match role {
                    Role::Learning(_) => Err(format!(
                        "state reloaded at {last_zxid:#x}, below the TRUNC point: register again"
                    )),
                    Role::Leading(_) | Role::Looking => Ok(()),
                }
            }
            (Input::Touches(t), Role::Learning(l)) => {
                let t = t.into_iter().map(|(s, to)| (s.0, to)).collect();
                l.handle_touches(rep, t);
                Ok(())
            }
            (Input::LearnerClosed { .. }, _)
            | (Input::LeaderConnected, _)
            | (Input::LeaderPacket(_), _)
            | (Input::LeaderSnapshot { .. }, _)
            | (Input::LeaderClosed, _)
            | (Input::Submit(..), _)
            | (Input::Prepared { .. }, _)
            | (Input::Revalidate { .. }, _)
            | (Input::SessionChecked { .. }, _)
            | (Input::Touches(_), _)
            | (Input::LogRead { .. }, _) => Ok(()),
        }
    }
}

// Role changes.
impl Peer {
    /// Start an election round (ZooKeeper: `QuorumPeer.run` in LOOKING).
    fn look(&mut self, now_ms: u64) {
        self.role = Role::Looking;
        self.vote = None;
        self.rep.emit(Output::RoleChanged {
            state: ServerState::Looking,
            leader: None,
            epoch: self.rep.current_epoch,
        });
        self.election
            .start(now_ms, Zxid(self.rep.last_zxid), self.rep.current_epoch);
        self.drain_election(now_ms);
    }

    fn drain_election(&mut self, now_ms: u64) {
        while let Some(o) = self.election.poll_output() {
            match o {
                ElectionOutput::Send { to, n } => self.rep.emit(Output::ElectionSend { to, n }),
                ElectionOutput::Decided { state, vote } => self.enter(now_ms, state, vote),
            }
        }
    }

    fn enter(&mut self, now_ms: u64, state: ServerState, vote: Vote) {
        if !matches!(self.role, Role::Looking) {
            warn!(
                sid = self.rep.my_sid(),
                ?state,
                "election decided while in a role: ignored"
            );
            return;
        }
        self.vote = Some(vote);
        self.rep.emit(Output::RoleChanged {
            state,
            leader: Some(vote.leader),
            epoch: self.rep.current_epoch,
        });
        let res = match state {
            ServerState::Leading => match Leading::new(now_ms, &mut self.rep) {
                Ok(l) => {
                    self.role = Role::Leading(Box::new(l));
                    Ok(())
                }
                Err(a) => Err(a.0),
            },
            ServerState::Following | ServerState::Observing => {
                let l = Learning::new(now_ms, &mut self.rep, vote.leader.0);
                self.role = Role::Learning(Box::new(l));
                Ok(())
            }
            ServerState::Looking => Err("election decided LOOKING".into()),
        };
        // A single-voter ensemble establishes inside `Leading::new`.
        self.after(now_ms, res);
    }

    /// After every input: apply role events, or leave the role on failure.
    fn after(&mut self, now_ms: u64, res: Result<(), String>) {
        while let Some(e) = self.rep.events.pop_front() {
            match e {
                Event::Established { epoch } => self.established(epoch),
                Event::ConfigChanged => self.election.set_config(self.rep.cfg.config.clone()),
            }
        }
        if let Err(why) = res {
            self.fail(now_ms, &why);
        }
    }

    /// `QuorumPeer.updateElectionVote`: LOOKING peers now learn the new epoch from us.
    fn established(&mut self, epoch: Epoch) {
        let state = self.state();
        if let Some(v) = self.vote {
            let vote = Vote {
                peer_epoch: epoch,
                ..v
            };
            self.vote = Some(vote);
            self.election.settle(state, vote);
        }
        let leader = self.leader();
        self.rep.emit(Output::RoleChanged {
            state,
            leader,
            epoch,
        });
    }

    fn fail(&mut self, now_ms: u64, why: &str) {
        info!(sid = self.rep.my_sid(), state = ?self.state(), why, "leaving role");
        self.rep.stop_serving();
        match &mut self.role {
            Role::Leading(l) => l.shutdown(&mut self.rep),
            Role::Learning(_) => self.rep.emit(Output::CloseLeader),
            Role::Looking => {}
        }
        self.look(now_ms);
    }
}
