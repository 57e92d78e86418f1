//! Fast Leader Election (reference §4.2, §4.3) as a sans-IO state machine. It owns one server's
//! view of the election: the logical clock, the current proposal, the votes received in this
//! round (`recvset`) and from servers already out of the election (`outofelection`), and the
//! notification back-off. It decides LEADING, FOLLOWING or OBSERVING and then answers LOOKING
//! peers with the settled vote. It does no I/O, reads no clock, decodes no bytes and does not
//! apply reconfigurations.
//!
//! # How ZooKeeper's threads map onto this API
//!
//! ZooKeeper runs `FastLeaderElection.lookForLeader` on the peer thread and a `WorkerReceiver`
//! thread that reads the election connections:
//!
//! * `WorkerReceiver` answers non-voters at once, answers LOOKING peers when we are not
//!   LOOKING, answers a LOOKING peer whose round is behind ours with our proposal, and queues
//!   everything else on `recvqueue`. Here that is the first half of
//!   [`Election::handle_notification`]; `recvqueue` is an internal queue.
//! * `lookForLeader` blocks in `recvqueue.poll(notTimeout)`. Here each queued notification is
//!   processed as soon as it is handed in, and the poll's expiry is a deadline returned by
//!   [`Election::poll_timeout`]: the last poll start plus the current notification interval
//!   (200 ms doubling to 60 s). When it passes, [`Election::handle_timeout`] re-sends our
//!   notification to every voter and doubles the interval, as the `n == null` branch does.
//! * Once the votes equal to our proposal form a quorum, ZooKeeper keeps polling with
//!   `finalizeWait` (200 ms), dropping every notification that is not better than the
//!   proposal and restarting the 200 ms wait after each. Here that is the finalizing phase:
//!   the deadline is the last arrival plus 200 ms; a better notification puts itself back at
//!   the tail of the queue and returns to the main loop; the deadline passing decides.
//! * `sendNotifications` also sends to ourselves and the loopback copy arrives through
//!   `recvqueue`. Here no loopback `Send` is emitted: the copy is appended to the internal
//!   queue and processed like any other notification, so our own vote reaches `recvset` by
//!   the same path and with the same ordering as in ZooKeeper.
//!
//! Callers loop as in STYLE.md: hand in notifications and expired timeouts with the time, then
//! drain [`Election::poll_output`] (`Send`s in order, then at most one `Decided`) and sleep
//! until [`Election::poll_timeout`].

use std::collections::{BTreeMap, VecDeque};

use corral_proto::quorum::{Notification, ServerState};
use corral_proto::{Epoch, ServerId, Zxid};
use tracing::{debug, info, trace, warn};

use crate::limits::{LAST_SENT_MAX, RECV_QUEUE_MAX};
use crate::quorum::QuorumMaj;

/// `FastLeaderElection.finalizeWait`, also the default `minNotificationInterval`.
pub const FINALIZE_WAIT_MS: u64 = 200;
/// Default `zookeeper.fastleader.maxNotificationInterval`.
pub const MAX_NOTIFICATION_INTERVAL_MS: u64 = 60_000;
/// The notification format version ZooKeeper 3.8 sends (with config, §4.3).
pub const NOTIFICATION_VERSION: i32 = 2;

const _: () = assert!(FINALIZE_WAIT_MS > 0 && FINALIZE_WAIT_MS <= MAX_NOTIFICATION_INTERVAL_MS);

/// Static inputs of one server's election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    pub my_sid: ServerId,
    /// Voting members (participants) of the current config, including us if we vote.
    pub voters: Vec<ServerId>,
    /// `peerType=observer`: we never vote for ourselves and decide OBSERVING.
    pub observer: bool,
    /// Config string bytes (§4.1) carried in every notification we send.
    pub config: Option<Vec<u8>>,
    /// `finalizeWait`; also used as `minNotificationInterval`, its ZooKeeper default.
    pub finalize_wait_ms: u64,
    /// `maxNotificationInterval`: cap of the re-send back-off.
    pub max_notification_interval_ms: u64,
}

impl ElectionConfig {
    /// A participant with ZooKeeper's default timings and no config string.
    pub fn new(my_sid: ServerId, voters: Vec<ServerId>) -> ElectionConfig {
        ElectionConfig {
            my_sid,
            voters,
            observer: false,
            config: None,
            finalize_wait_ms: FINALIZE_WAIT_MS,
            max_notification_interval_ms: MAX_NOTIFICATION_INTERVAL_MS,
        }
    }
}

/// ZooKeeper's `Vote`: a proposed leader with its last zxid and epoch, and the election round
/// in which the vote was cast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    pub leader: ServerId,
    pub zxid: Zxid,
    /// The logical clock (election round) the vote was cast in: FLE's round counter, not a
    /// ZAB [`Epoch`], so it stays a bare `i64` and cannot be swapped with `peer_epoch`.
    pub election_epoch: i64,
    pub peer_epoch: Epoch,
}

impl Vote {
    /// The vote a notification carries.
    pub fn of(n: &Notification) -> Vote {
        Vote {
            leader: n.leader,
            zxid: n.zxid,
            election_epoch: n.election_epoch,
            peer_epoch: n.peer_epoch,
        }
    }
}

/// `totalOrderPredicate`: true if `new` beats `cur` by peer epoch, then zxid, then leader sid
/// (§4.3). `election_epoch` plays no part. ZooKeeper also rejects a candidate of weight 0, but
/// `QuorumMaj.getWeight` is 1 for every sid, and non-voter candidates are filtered before this
/// is called, so the predicate is the pure order.
pub fn better(new: &Vote, cur: &Vote) -> bool {
    (new.peer_epoch, new.zxid, new.leader) > (cur.peer_epoch, cur.zxid, cur.leader)
}

/// A vote as stored in `recvset` / `outofelection`, with the two fields `Vote.equals` looks at
/// besides the vote itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ballot {
    vote: Vote,
    state: ServerState,
    version: i32,
}

impl Ballot {
    /// `Vote.equals`: if either side is LOOKING all four vote fields must match. Between votes
    /// of servers out of the election only the leader and peer epoch count (ZOOKEEPER-1805),
    /// and only the leader if exactly one side has version 0 (ZOOKEEPER-1732).
    fn same(&self, other: &Ballot) -> bool {
        if self.state == ServerState::Looking || other.state == ServerState::Looking {
            return self.vote == other.vote;
        }
        if (self.version > 0) != (other.version > 0) {
            return self.vote.leader == other.vote.leader;
        }
        self.vote.leader == other.vote.leader && self.vote.peer_epoch == other.vote.peer_epoch
    }
}

/// Where the `lookForLeader` loop is blocked, as a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not running a round: deciding, settled, or LOOKING before `start`.
    Idle,
    /// `recvqueue.poll(notTimeout)` started at `deadline_ms - notTimeout`.
    Polling { deadline_ms: u64 },
    /// A quorum agrees with the proposal; `recvqueue.poll(finalizeWait)`.
    Finalizing { deadline_ms: u64 },
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionOutput {
    /// Queue `n` for peer `to` (the per-peer queue keeps only the newest unsent message, §4.2).
    Send { to: ServerId, n: Notification },
    /// The round is over: take this role for this leader.
    Decided { state: ServerState, vote: Vote },
}

/// One server's Fast Leader Election.
#[derive(Debug)]
pub struct Election {
    cfg: ElectionConfig,
    quorum: QuorumMaj,
    state: ServerState,
    /// FLE's round counter (`logicalclock`), carried as `election_epoch` in votes.
    logical_clock: i64,
    /// True between `start` and the decision; LOOKING without it only queues notifications.
    running: bool,
    proposed_leader: ServerId,
    proposed_zxid: Zxid,
    proposed_epoch: Epoch,
    /// `getInitId`, `getInitLastLoggedZxid`, `getPeerEpoch` for the running round.
    init: Vote,
    /// `QuorumPeer.currentVote`: what we answer with when not LOOKING and to non-voters.
    current: Option<Vote>,
    recv_queue: VecDeque<(ServerId, Notification)>,
    recvset: BTreeMap<ServerId, Ballot>,
    out_of_election: BTreeMap<ServerId, Ballot>,
    notification_interval_ms: u64,
    phase: Phase,
    outputs: VecDeque<ElectionOutput>,
    last_sent: BTreeMap<ServerId, Notification>,
}

impl Election {
    pub fn new(cfg: ElectionConfig) -> Election {
        assert!(cfg.finalize_wait_ms > 0, "a zero finalize wait would spin");
        assert!(
            cfg.max_notification_interval_ms >= cfg.finalize_wait_ms,
            "the back-off cap must not be below its start"
        );
        let quorum = QuorumMaj::new(&cfg.voters);
        let interval = cfg.finalize_wait_ms;
        Election {
            cfg,
            quorum,
            state: ServerState::Looking,
            logical_clock: 0,
            running: false,
            proposed_leader: ServerId(-1),
            proposed_zxid: Zxid(-1),
            proposed_epoch: Epoch(-1),
            init: Vote {
                leader: ServerId(-1),
                zxid: Zxid(-1),
                election_epoch: 0,
                peer_epoch: Epoch(-1),
            },
            current: None,
            recv_queue: VecDeque::new(),
            recvset: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            notification_interval_ms: interval,
            phase: Phase::Idle,
            outputs: VecDeque::new(),
            last_sent: BTreeMap::new(),
        }
    }

    /// Begin a round (state LOOKING): logical clock += 1, propose (my_sid, last_zxid,
    /// current_epoch) (observers and non-voters propose `i64::MIN` as in `getInitId` & co.),
    /// send to every voter except self; the own vote goes through the internal queue.
    pub fn start(&mut self, now_ms: u64, last_zxid: Zxid, current_epoch: Epoch) {
        let my_sid = self.cfg.my_sid;
        self.state = ServerState::Looking;
        self.running = true;
        self.logical_clock += 1;
        // QuorumPeer.startLeaderElection sets currentVote once, before the first round.
        if self.current.is_none() {
            self.current = Some(Vote {
                leader: my_sid,
                zxid: last_zxid,
                election_epoch: -1,
                peer_epoch: current_epoch,
            });
        }
        let participant = !self.cfg.observer;
        self.init = Vote {
            leader: if self.quorum.is_voter(my_sid) {
                my_sid
            } else {
                ServerId(i64::MIN)
            },
            zxid: if participant {
                last_zxid
            } else {
                Zxid(i64::MIN)
            },
            election_epoch: self.logical_clock,
            peer_epoch: if participant {
                current_epoch
            } else {
                Epoch(i64::MIN)
            },
        };
        self.propose(self.init);
        self.recvset.clear();
        self.out_of_election.clear();
        self.notification_interval_ms = self.cfg.finalize_wait_ms;
        self.phase = Phase::Polling {
            deadline_ms: now_ms + self.notification_interval_ms,
        };
        info!(
            sid = %my_sid,
            round = format_args!("{:#x}", self.logical_clock),
            zxid = format_args!("{:#x}", self.proposed_zxid),
            "new election"
        );
        self.send_notifications();
        self.run(now_ms);
    }

    /// A notification decoded from peer `from`.
    pub fn handle_notification(&mut self, now_ms: u64, from: ServerId, n: Notification) {
        trace!(
            sid = %self.cfg.my_sid,
            %from,
            state = ?n.state,
            leader = %n.leader,
            round = format_args!("{:#x}", n.election_epoch),
            zxid = format_args!("{:#x}", n.zxid),
            peer_epoch = format_args!("{:#x}", n.peer_epoch),
            "notification"
        );
        if !self.quorum.is_voter(from) {
            // WorkerReceiver: a non-voter gets our current vote and round right away and its
            // notification goes no further.
            if let Some(cur) = self.current {
                let reply = self.notification(self.state, &cur, self.logical_clock);
                self.send(from, reply);
            }
            return;
        }
        if self.state != ServerState::Looking {
            // Not LOOKING: answer a LOOKING peer with the vote we settled on (§4.3 step 5).
            if n.state == ServerState::Looking {
                if let Some(cur) = self.current {
                    let reply = self.notification(self.state, &cur, cur.election_epoch);
                    self.send(from, reply);
                }
            }
            return;
        }
        let lagging = n.state == ServerState::Looking && n.election_epoch < self.logical_clock;
        if self.recv_queue.len() < RECV_QUEUE_MAX {
            self.recv_queue.push_back((from, n));
        } else {
            warn!(
                sid = %self.cfg.my_sid,
                %from, "election queue full, notification dropped"
            );
        }
        if lagging {
            // A LOOKING peer in an older round gets our proposal at our round.
            let proposal = self.proposal();
            let reply = self.notification(ServerState::Looking, &proposal, self.logical_clock);
            self.send(from, reply);
        }
        self.run(now_ms);
    }

    /// The deadline from [`Election::poll_timeout`] may have passed.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        match self.phase {
            Phase::Polling { deadline_ms } if now_ms >= deadline_ms => {
                // `n == null`: re-send and back off. ZooKeeper reconnects instead when some
                // message is still undelivered; the glue's one-slot queues make both the same.
                self.send_notifications();
                self.notification_interval_ms =
                    (self.notification_interval_ms * 2).min(self.cfg.max_notification_interval_ms);
                debug!(
                    sid = %self.cfg.my_sid,
                    interval_ms = self.notification_interval_ms,
                    "notification time out"
                );
                self.phase = Phase::Polling {
                    deadline_ms: now_ms + self.notification_interval_ms,
                };
                self.run(now_ms);
            }
            Phase::Finalizing { deadline_ms } if now_ms >= deadline_ms => {
                let vote = self.proposal();
                self.decide(vote);
            }
            Phase::Idle | Phase::Polling { .. } | Phase::Finalizing { .. } => {}
        }
    }

    /// Absolute time in ms at which [`Election::handle_timeout`] is due, if any.
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.phase {
            Phase::Idle => None,
            Phase::Polling { deadline_ms } | Phase::Finalizing { deadline_ms } => Some(deadline_ms),
        }
    }

    pub fn poll_output(&mut self) -> Option<ElectionOutput> {
        self.outputs.pop_front()
    }

    /// After deciding / while following or leading: record our settled state and vote so
    /// LOOKING peers that notify us get our current vote as an answer (§4.3 step 5). Call it
    /// again with the new `peer_epoch` once the epoch is established
    /// (`QuorumPeer.updateElectionVote`). `ServerState::Looking` stops the round and holds
    /// incoming notifications until the next [`Election::start`].
    pub fn settle(&mut self, state: ServerState, vote: Vote) {
        self.state = state;
        self.current = Some(vote);
        self.running = false;
        self.phase = Phase::Idle;
        if state != ServerState::Looking {
            self.recv_queue.clear();
        }
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    /// While a round runs: the proposal, with the logical clock as `election_epoch`. Otherwise
    /// the settled vote (`QuorumPeer.currentVote`), or the proposal if there is none yet.
    pub fn vote(&self) -> Vote {
        match (self.running, self.current) {
            (false, Some(cur)) => cur,
            _ => self.proposal(),
        }
    }

    pub fn logical_clock(&self) -> i64 {
        self.logical_clock
    }

    pub fn my_sid(&self) -> ServerId {
        self.cfg.my_sid
    }

    pub fn quorum(&self) -> &QuorumMaj {
        &self.quorum
    }

    /// The config string our notifications carry from now on (the committed config changed).
    pub fn set_config(&mut self, config: Vec<u8>) {
        self.cfg.config = Some(config);
    }

    /// A peer connection came up: ZooKeeper re-sends the last message to it (§4.2); emit
    /// Send of our last notification to `sid` if we have one.
    pub fn handle_peer_connected(&mut self, _now_ms: u64, sid: ServerId) {
        if let Some(n) = self.last_sent.get(&sid).cloned() {
            self.outputs.push_back(ElectionOutput::Send { to: sid, n });
        }
    }

    /// The `lookForLeader` loop body for every queued notification.
    fn run(&mut self, now_ms: u64) {
        while self.running && self.state == ServerState::Looking {
            let Some((from, n)) = self.recv_queue.pop_front() else {
                break;
            };
            match self.phase {
                Phase::Finalizing { .. } => {
                    if better(&Vote::of(&n), &self.proposal()) {
                        debug!(sid = %self.cfg.my_sid, %from, "better vote while finalizing");
                        self.recv_queue.push_back((from, n));
                        self.phase = Phase::Polling {
                            deadline_ms: now_ms + self.notification_interval_ms,
                        };
                    } else {
                        self.phase = Phase::Finalizing {
                            deadline_ms: now_ms + self.cfg.finalize_wait_ms,
                        };
                    }
                }
                Phase::Polling { .. } | Phase::Idle => {
                    self.phase = Phase::Polling {
                        deadline_ms: now_ms + self.notification_interval_ms,
                    };
                    self.process(now_ms, from, n);
                }
            }
        }
    }

    fn process(&mut self, now_ms: u64, from: ServerId, n: Notification) {
        if !self.quorum.is_voter(from) || !self.quorum.is_voter(n.leader) {
            debug!(
                sid = %self.cfg.my_sid,
                %from,
                leader = %n.leader,
                "vote from or for a non-voter"
            );
            return;
        }
        match n.state {
            ServerState::Looking => self.process_looking(now_ms, from, &n),
            ServerState::Observing => {}
            ServerState::Following | ServerState::Leading => self.process_settled(from, &n),
        }
    }

    fn process_looking(&mut self, now_ms: u64, from: ServerId, n: &Notification) {
        if self.init.zxid == Zxid(-1) || n.zxid == Zxid(-1) {
            // An empty or untrusted log (zxid -1) takes no part in LOOKING rounds.
            return;
        }
        let theirs = Vote::of(n);
        if n.election_epoch > self.logical_clock {
            self.logical_clock = n.election_epoch;
            self.recvset.clear();
            let pick = if better(&theirs, &self.init) {
                theirs
            } else {
                self.init
            };
            self.propose(pick);
            self.send_notifications();
        } else if n.election_epoch < self.logical_clock {
            return;
        } else if better(&theirs, &self.proposal()) {
            self.propose(theirs);
            self.send_notifications();
        } else if from != self.cfg.my_sid && better(&self.proposal(), &theirs) {
            // corral addition, wire-compatible: a peer in our round still proposing a worse
            // vote may not have our proposal yet - our notification can reach it while it is
            // still FOLLOWING a leader that just died, and then it is only answered, not
            // queued. ZooKeeper waits for the 200 ms notification timeout to re-send; telling
            // that peer at once saves that round (measured: kill -9 of the leader to the first
            // write went from two groups, ~0.15 s and ~0.35 s, to the first group only).
            let proposal = self.proposal();
            let n = self.notification(ServerState::Looking, &proposal, self.logical_clock);
            self.send(from, n);
        }
        self.recvset.insert(
            from,
            Ballot {
                vote: theirs,
                state: ServerState::Looking,
                version: 0,
            },
        );
        let target = Ballot {
            vote: self.proposal(),
            state: ServerState::Looking,
            version: 0,
        };
        if self.agreeing_quorum(&self.recvset, &target) {
            debug!(
                sid = %self.cfg.my_sid,
                leader = %self.proposed_leader,
                "quorum, finalizing"
            );
            self.phase = Phase::Finalizing {
                deadline_ms: now_ms + self.cfg.finalize_wait_ms,
            };
        }
    }

    /// `receivedFollowingNotification` (LEADING adds only the oracle, unused with QuorumMaj).
    fn process_settled(&mut self, from: ServerId, n: &Notification) {
        let theirs = Vote::of(n);
        let target = Ballot {
            vote: theirs,
            state: n.state,
            version: n.version,
        };
        if n.election_epoch == self.logical_clock {
            // recvset keeps ZooKeeper's version-0 copy, so against a current-version target
            // only the leader is compared.
            let stored = Ballot {
                version: 0,
                ..target
            };
            self.recvset.insert(from, stored);
            if self.agreeing_quorum(&self.recvset, &target)
                && self.check_leader(&self.recvset, n.leader, n.election_epoch)
            {
                self.decide(theirs);
                return;
            }
        }
        self.out_of_election.insert(from, target);
        if self.agreeing_quorum(&self.out_of_election, &target)
            && self.check_leader(&self.out_of_election, n.leader, n.election_epoch)
        {
            self.logical_clock = n.election_epoch;
            self.decide(theirs);
        }
    }

    /// `getVoteTracker(..).hasAllQuorums()`.
    fn agreeing_quorum(&self, votes: &BTreeMap<ServerId, Ballot>, target: &Ballot) -> bool {
        let acks = votes
            .iter()
            .filter(|(_, b)| b.same(target))
            .map(|(sid, _)| *sid);
        self.quorum.contains_quorum(acks)
    }

    /// `checkLeader`: someone else must have told us it is LEADING; we ourselves may lead only
    /// for our own round.
    fn check_leader(
        &self,
        votes: &BTreeMap<ServerId, Ballot>,
        leader: ServerId,
        election_epoch: i64,
    ) -> bool {
        if leader != self.cfg.my_sid {
            votes
                .get(&leader)
                .is_some_and(|b| b.state == ServerState::Leading)
        } else {
            self.logical_clock == election_epoch
        }
    }

    fn decide(&mut self, vote: Vote) {
        let state = if vote.leader == self.cfg.my_sid {
            ServerState::Leading
        } else if self.cfg.observer {
            ServerState::Observing
        } else {
            ServerState::Following
        };
        info!(
            sid = %self.cfg.my_sid,
            ?state,
            leader = %vote.leader,
            round = format_args!("{:#x}", vote.election_epoch),
            zxid = format_args!("{:#x}", vote.zxid),
            peer_epoch = format_args!("{:#x}", vote.peer_epoch),
            "election decided"
        );
        self.state = state;
        self.current = Some(vote);
        self.running = false;
        self.phase = Phase::Idle;
        self.recv_queue.clear();
        self.outputs
            .push_back(ElectionOutput::Decided { state, vote });
    }

    fn proposal(&self) -> Vote {
        Vote {
            leader: self.proposed_leader,
            zxid: self.proposed_zxid,
            election_epoch: self.logical_clock,
            peer_epoch: self.proposed_epoch,
        }
    }

    fn propose(&mut self, v: Vote) {
        self.proposed_leader = v.leader;
        self.proposed_zxid = v.zxid;
        self.proposed_epoch = v.peer_epoch;
    }

    fn notification(&self, state: ServerState, v: &Vote, election_epoch: i64) -> Notification {
        Notification {
            state,
            leader: v.leader,
            zxid: v.zxid,
            election_epoch,
            peer_epoch: v.peer_epoch,
            version: NOTIFICATION_VERSION,
            config: self.cfg.config.clone(),
        }
    }

    /// `sendNotifications`: our proposal to every voter; our own copy joins the queue.
    fn send_notifications(&mut self) {
        let proposal = self.proposal();
        let n = self.notification(ServerState::Looking, &proposal, self.logical_clock);
        let voters: Vec<ServerId> = self.quorum.voters().collect();
        for sid in voters {
            if sid == self.cfg.my_sid {
                self.recv_queue.push_back((sid, n.clone()));
            } else {
                self.send(sid, n.clone());
            }
        }
    }

    fn send(&mut self, to: ServerId, n: Notification) {
        if self.last_sent.len() < LAST_SENT_MAX || self.last_sent.contains_key(&to) {
            self.last_sent.insert(to, n.clone());
        }
        self.outputs.push_back(ElectionOutput::Send { to, n });
    }
}

#[cfg(test)]
mod tests {
    //! Single-instance tests: each drives one `Election` by hand and pins one rule of
    //! `FastLeaderElection.lookForLeader` / `WorkerReceiver` (ZooKeeper 3.8.0).

    use super::*;

    /// A vote from bare numbers, so the scenarios below read like ZooKeeper's logs.
    fn vote(leader: i64, zxid: i64, election_epoch: i64, peer_epoch: i64) -> Vote {
        Vote {
            leader: ServerId(leader),
            zxid: Zxid(zxid),
            election_epoch,
            peer_epoch: Epoch(peer_epoch),
        }
    }

    fn note(state: ServerState, v: Vote) -> Notification {
        Notification {
            state,
            leader: v.leader,
            zxid: v.zxid,
            election_epoch: v.election_epoch,
            peer_epoch: v.peer_epoch,
            version: NOTIFICATION_VERSION,
            config: None,
        }
    }

    fn looking(v: Vote) -> Notification {
        note(ServerState::Looking, v)
    }

    fn node(my_sid: i64, voters: &[i64]) -> Election {
        let voters = voters.iter().copied().map(ServerId).collect();
        Election::new(ElectionConfig::new(ServerId(my_sid), voters))
    }

    fn drain(e: &mut Election) -> Vec<ElectionOutput> {
        std::iter::from_fn(|| e.poll_output()).collect()
    }

    /// The `Send`s as (bare sid, vote, state), to compare with literal lists.
    fn sends(out: &[ElectionOutput]) -> Vec<(i64, Vote, ServerState)> {
        out.iter()
            .filter_map(|o| match o {
                ElectionOutput::Send { to, n } => Some((to.0, Vote::of(n), n.state)),
                ElectionOutput::Decided { .. } => None,
            })
            .collect()
    }

    fn decided(out: &[ElectionOutput]) -> Option<(ServerState, Vote)> {
        out.iter().find_map(|o| match o {
            ElectionOutput::Decided { state, vote } => Some((*state, *vote)),
            ElectionOutput::Send { .. } => None,
        })
    }

    /// `totalOrderPredicate`: peer epoch first, then zxid, then sid; election epoch ignored;
    /// a vote never beats itself.
    #[test]
    fn better_orders_epoch_then_zxid_then_sid() {
        let cur = vote(2, 0x1_0000_0005, 1, 1);
        assert!(
            better(&vote(1, 0, 1, 2), &cur),
            "higher peer epoch wins over zxid and sid"
        );
        assert!(
            !better(&vote(3, 0x1_0000_0009, 1, 0), &cur),
            "lower epoch loses"
        );
        assert!(
            better(&vote(1, 0x1_0000_0006, 1, 1), &cur),
            "same epoch: higher zxid wins"
        );
        assert!(
            !better(&vote(3, 0x1_0000_0004, 1, 1), &cur),
            "same epoch: lower zxid loses"
        );
        assert!(
            better(&vote(3, 0x1_0000_0005, 1, 1), &cur),
            "tie: higher sid wins"
        );
        assert!(
            !better(&vote(1, 0x1_0000_0005, 9, 1), &cur),
            "tie: lower sid loses"
        );
        assert!(!better(&cur, &cur), "irreflexive");
        let min = vote(i64::MIN, i64::MIN, 1, i64::MIN);
        assert!(
            better(&vote(1, -1, 1, 0), &min),
            "any voter beats an observer's vote"
        );
    }

    /// `Vote.equals`: full comparison when either side is LOOKING, leader + peer epoch between
    /// settled votes, leader only across the version-0 boundary.
    #[test]
    fn ballot_equality_follows_vote_equals() {
        let b = |state, version, v| Ballot {
            vote: v,
            state,
            version,
        };
        let f = ServerState::Following;
        let l = ServerState::Leading;
        let k = ServerState::Looking;
        let v = vote(2, 5, 3, 1);
        assert!(b(k, 0, v).same(&b(f, 2, v)));
        assert!(!b(k, 0, v).same(&b(f, 2, vote(2, 6, 3, 1))));
        assert!(
            b(f, 2, v).same(&b(l, 2, vote(2, 99, 7, 1))),
            "zxid and round ignored"
        );
        assert!(
            !b(f, 2, v).same(&b(l, 2, vote(2, 5, 3, 2))),
            "peer epoch compared"
        );
        assert!(
            b(f, 0, v).same(&b(l, 2, vote(2, 5, 3, 2))),
            "mixed versions: leader only"
        );
        assert!(!b(f, 0, v).same(&b(l, 2, vote(3, 5, 3, 1))));
    }

    /// A lone voter counts its own loopback vote, waits `finalizeWait` and leads.
    #[test]
    fn single_voter_leads_after_finalize_wait() {
        let mut e = node(1, &[1]);
        e.start(1000, Zxid(0x1_0000_0005), Epoch(1));
        assert!(drain(&mut e).is_empty(), "no loopback Send");
        assert_eq!(e.poll_timeout(), Some(1200));
        e.handle_timeout(1199);
        assert!(drain(&mut e).is_empty());
        e.handle_timeout(1200);
        let out = drain(&mut e);
        assert_eq!(
            decided(&out),
            Some((ServerState::Leading, vote(1, 0x1_0000_0005, 1, 1)))
        );
        assert_eq!(e.state(), ServerState::Leading);
        assert_eq!(e.poll_timeout(), None);
    }

    /// `start` bumps the clock, proposes itself and notifies the other voters in sid order.
    #[test]
    fn start_notifies_other_voters() {
        let mut e = node(2, &[1, 2, 3]);
        e.start(0, Zxid(7), Epoch(1));
        let out = drain(&mut e);
        let v = vote(2, 7, 1, 1);
        assert_eq!(
            sends(&out),
            vec![(1, v, ServerState::Looking), (3, v, ServerState::Looking)]
        );
        assert_eq!(e.logical_clock(), 1);
        assert_eq!(e.vote(), v);
        assert_eq!(e.poll_timeout(), Some(200));
    }

    /// With no notifications, re-sends happen at 200, 400, 800 ... ms, capped at 60 s.
    #[test]
    fn resends_back_off_exponentially() {
        let mut e = node(1, &[1, 2, 3]);
        e.start(0, Zxid(7), Epoch(1));
        drain(&mut e);
        let mut now = 0;
        let mut gaps = Vec::new();
        for _ in 0..12 {
            let due = e.poll_timeout().expect("looking");
            gaps.push(due - now);
            now = due;
            e.handle_timeout(now);
            assert_eq!(sends(&drain(&mut e)).len(), 2, "re-sent to both peers");
        }
        assert_eq!(
            gaps,
            vec![200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000, 60000]
        );
    }

    /// A better vote is adopted and re-broadcast; a quorum starts the 200 ms finalize wait; a
    /// better vote inside it cancels the decision; the final decision follows the best.
    #[test]
    fn better_vote_during_finalize_wait_restarts_the_round_loop() {
        let mut e = node(1, &[1, 2, 3]);
        e.start(0, Zxid(5), Epoch(1));
        drain(&mut e);
        e.handle_notification(10, ServerId(2), looking(vote(2, 5, 1, 1)));
        let out = drain(&mut e);
        assert_eq!(sends(&out).len(), 2);
        assert!(sends(&out).iter().all(|(_, v, _)| v.leader == ServerId(2)));
        assert_eq!(
            e.poll_timeout(),
            Some(210),
            "quorum {{1,2}} for 2: finalizing"
        );
        e.handle_notification(100, ServerId(3), looking(vote(3, 5, 1, 1)));
        let out = drain(&mut e);
        assert!(decided(&out).is_none());
        assert!(sends(&out).iter().all(|(_, v, _)| v.leader == ServerId(3)));
        assert_eq!(
            e.poll_timeout(),
            Some(300),
            "quorum {{1,3}} for 3: finalizing again"
        );
        e.handle_timeout(210);
        assert!(drain(&mut e).is_empty(), "the old deadline is gone");
        e.handle_timeout(300);
        assert_eq!(
            decided(&drain(&mut e)),
            Some((ServerState::Following, vote(3, 5, 1, 1)))
        );
    }

    /// corral addition: a peer of our round still proposing a worse vote gets our proposal at
    /// once (it may have missed it while following a dead leader), instead of after our 200 ms
    /// notification timeout; an equal or better vote is not answered.
    #[test]
    fn worse_vote_of_our_round_is_answered_at_once() {
        let mut e = node(3, &[1, 2, 3]);
        e.start(0, Zxid(5), Epoch(1));
        drain(&mut e);
        e.handle_notification(10, ServerId(1), looking(vote(1, 5, 1, 1)));
        assert_eq!(
            sends(&drain(&mut e)),
            vec![(1, vote(3, 5, 1, 1), ServerState::Looking)]
        );
        e.handle_notification(20, ServerId(1), looking(vote(3, 5, 1, 1)));
        assert!(
            sends(&drain(&mut e)).is_empty(),
            "an agreeing vote is not answered"
        );
    }

    /// Each notification that is not better, consumed during the finalize wait, restarts the
    /// 200 ms wait and is not counted.
    #[test]
    fn worse_notification_during_finalize_wait_extends_it() {
        let mut e = node(3, &[1, 2, 3]);
        e.start(0, Zxid(5), Epoch(1));
        drain(&mut e);
        e.handle_notification(0, ServerId(2), looking(vote(3, 5, 1, 1)));
        assert_eq!(e.poll_timeout(), Some(200));
        e.handle_notification(150, ServerId(1), looking(vote(1, 5, 1, 1)));
        assert!(drain(&mut e).is_empty());
        assert_eq!(e.poll_timeout(), Some(350));
        e.handle_timeout(350);
        assert_eq!(
            decided(&drain(&mut e)),
            Some((ServerState::Leading, vote(3, 5, 1, 1)))
        );
    }

    /// A higher round is adopted: clock jumps, recvset is cleared, and the proposal becomes the
    /// better of the sender's vote and our *initial* vote (not our current proposal).
    #[test]
    fn higher_round_adopted_against_initial_vote() {
        let mut e = node(1, &[1, 2, 3, 4, 5]);
        e.start(0, Zxid(5), Epoch(1));
        e.handle_notification(1, ServerId(4), looking(vote(4, 5, 1, 1)));
        assert_eq!(e.vote().leader, ServerId(4));
        drain(&mut e);
        e.handle_notification(2, ServerId(2), looking(vote(2, 5, 7, 1)));
        let out = drain(&mut e);
        assert_eq!(e.logical_clock(), 7);
        assert_eq!(
            e.vote(),
            vote(2, 5, 7, 1),
            "2 beats our initial vote (1), 4 forgotten"
        );
        assert!(sends(&out).iter().all(|(_, v, _)| *v == vote(2, 5, 7, 1)));
        e.handle_notification(3, ServerId(3), looking(vote(1, 5, 7, 1)));
        e.handle_notification(3, ServerId(5), looking(vote(1, 5, 7, 1)));
        assert_eq!(
            e.vote().leader,
            ServerId(2),
            "worse votes do not move the proposal"
        );
    }

    /// A LOOKING notification from an older round is not counted, and the lagging sender gets
    /// our proposal at our round (`WorkerReceiver`).
    #[test]
    fn stale_round_ignored_and_answered() {
        let mut e = node(1, &[1, 2, 3]);
        e.start(0, Zxid(5), Epoch(1));
        e.start(0, Zxid(5), Epoch(1));
        assert_eq!(e.logical_clock(), 2);
        drain(&mut e);
        e.handle_notification(5, ServerId(3), looking(vote(3, 9, 1, 4)));
        let out = drain(&mut e);
        assert_eq!(
            sends(&out),
            vec![(3, vote(1, 5, 2, 1), ServerState::Looking)]
        );
        assert_eq!(
            e.vote().leader,
            ServerId(1),
            "a stale round never changes the proposal"
        );
        e.handle_notification(6, ServerId(2), looking(vote(1, 5, 2, 1)));
        assert_eq!(e.poll_timeout(), Some(206), "quorum from {{1,2}} only");
    }

    /// zxid -1 marks an untrusted log: such votes are skipped, and a server whose own zxid is
    /// -1 skips every LOOKING notification, its own included.
    #[test]
    fn untrusted_zxid_minus_one_is_ignored() {
        let mut e = node(1, &[1, 2, 3]);
        e.start(0, Zxid(5), Epoch(1));
        drain(&mut e);
        e.handle_notification(1, ServerId(3), looking(vote(3, -1, 1, 1)));
        assert!(drain(&mut e).is_empty());
        assert_eq!(e.vote().leader, ServerId(1));

        let mut empty = node(1, &[1]);
        empty.start(0, Zxid(-1), Epoch(0));
        assert_eq!(
            empty.poll_timeout(),
            Some(200),
            "still polling, not finalizing"
        );
        empty.handle_timeout(200);
        assert!(decided(&drain(&mut empty)).is_none());
    }

    /// Non-voters get our current vote at once and never count; votes for a non-voter leader
    /// are dropped.
    #[test]
    fn non_voters_answered_but_not_counted() {
        let mut e = node(1, &[1, 2, 3]);
        e.start(0, Zxid(5), Epoch(1));
        drain(&mut e);
        e.handle_notification(1, ServerId(9), looking(vote(9, 99, 1, 9)));
        let out = drain(&mut e);
        // QuorumPeer.currentVote before the first decision is (myid, zxid, -1, epoch).
        assert_eq!(
            sends(&out),
            vec![(9, vote(1, 5, 1, 1), ServerState::Looking)]
        );
        e.handle_notification(1, ServerId(2), looking(vote(9, 99, 1, 9)));
        assert!(drain(&mut e).is_empty(), "vote for non-voter 9 ignored");
        assert_eq!(e.vote().leader, ServerId(1));
    }

    /// Settled servers answer only LOOKING notifications, with the settled vote at the
    /// election's round and the epoch given by the latest `settle`.
    #[test]
    fn settled_server_answers_looking_peers() {
        let mut e = node(1, &[1, 2, 3]);
        e.settle(ServerState::Following, vote(3, 5, 4, 1));
        e.settle(ServerState::Following, vote(3, 5, 4, 2));
        e.handle_notification(0, ServerId(2), looking(vote(2, 5, 9, 1)));
        let out = drain(&mut e);
        assert_eq!(
            sends(&out),
            vec![(2, vote(3, 5, 4, 2), ServerState::Following)]
        );
        e.handle_notification(0, ServerId(3), note(ServerState::Leading, vote(3, 5, 4, 2)));
        assert!(drain(&mut e).is_empty());
        assert_eq!(e.poll_timeout(), None);
    }

    /// A late joiner follows an established leader once a quorum of settled servers (the
    /// leader among them, saying LEADING) name it: `outofelection`, clock set to their round.
    #[test]
    fn late_joiner_follows_established_leader() {
        let mut e = node(3, &[1, 2, 3]);
        e.start(0, Zxid(4), Epoch(1));
        drain(&mut e);
        e.handle_notification(
            1,
            ServerId(1),
            note(ServerState::Following, vote(2, 5, 4, 2)),
        );
        assert!(
            decided(&drain(&mut e)).is_none(),
            "one follower is not a quorum"
        );
        e.handle_notification(2, ServerId(2), note(ServerState::Leading, vote(2, 9, 4, 2)));
        let out = drain(&mut e);
        assert_eq!(
            decided(&out),
            Some((ServerState::Following, vote(2, 9, 4, 2)))
        );
        assert_eq!(e.logical_clock(), 4);
    }

    /// `checkLeader`: a quorum of FOLLOWING votes is not enough without the leader's own
    /// LEADING notification.
    #[test]
    fn followers_alone_do_not_make_a_leader() {
        let mut e = node(5, &[1, 2, 3, 4, 5]);
        e.start(0, Zxid(4), Epoch(1));
        for from in 1..=3 {
            e.handle_notification(
                1,
                ServerId(from),
                note(ServerState::Following, vote(4, 5, 3, 2)),
            );
        }
        assert!(decided(&drain(&mut e)).is_none());
        e.handle_notification(2, ServerId(4), note(ServerState::Leading, vote(4, 5, 3, 2)));
        assert_eq!(
            decided(&drain(&mut e)),
            Some((ServerState::Following, vote(4, 5, 3, 2)))
        );
    }

    /// Settled votes from our own round count in recvset and decide without a finalize wait.
    #[test]
    fn same_round_settled_votes_decide_at_once() {
        let mut e = node(1, &[1, 2, 3]);
        e.start(0, Zxid(4), Epoch(1));
        e.handle_notification(3, ServerId(3), note(ServerState::Leading, vote(3, 6, 1, 1)));
        assert!(
            decided(&drain(&mut e)).is_none(),
            "our LOOKING vote differs: no quorum"
        );
        e.handle_notification(
            4,
            ServerId(2),
            note(ServerState::Following, vote(3, 6, 1, 1)),
        );
        assert_eq!(e.logical_clock(), 1);
        assert_eq!(
            decided(&drain(&mut e)),
            Some((ServerState::Following, vote(3, 6, 1, 1)))
        );
    }

    /// Observers propose `i64::MIN` x3 to the voters only, adopt voter votes, and decide
    /// OBSERVING once the established leader is known.
    #[test]
    fn observer_learns_the_leader() {
        let mut cfg = ElectionConfig::new(ServerId(4), [1, 2, 3].map(ServerId).to_vec());
        cfg.observer = true;
        let mut e = Election::new(cfg);
        e.start(0, Zxid(5), Epoch(1));
        let out = drain(&mut e);
        let min = vote(i64::MIN, i64::MIN, 1, i64::MIN);
        assert_eq!(
            sends(&out),
            vec![
                (1, min, ServerState::Looking),
                (2, min, ServerState::Looking),
                (3, min, ServerState::Looking)
            ]
        );
        e.handle_notification(
            1,
            ServerId(1),
            note(ServerState::Following, vote(3, 6, 2, 1)),
        );
        e.handle_notification(1, ServerId(3), note(ServerState::Leading, vote(3, 6, 2, 1)));
        assert_eq!(
            decided(&drain(&mut e)),
            Some((ServerState::Observing, vote(3, 6, 2, 1)))
        );
    }

    /// A reconnecting peer gets the last notification sent to it again (§4.2).
    #[test]
    fn reconnect_resends_last_notification() {
        let mut e = node(1, &[1, 2, 3]);
        e.handle_peer_connected(0, ServerId(2));
        assert!(drain(&mut e).is_empty(), "nothing sent yet");
        e.start(0, Zxid(5), Epoch(1));
        e.handle_notification(1, ServerId(3), looking(vote(3, 5, 1, 1)));
        drain(&mut e);
        e.handle_peer_connected(2, ServerId(2));
        assert_eq!(
            sends(&drain(&mut e)),
            vec![(2, vote(3, 5, 1, 1), ServerState::Looking)]
        );
    }

    /// Notifications that arrive while LOOKING but before `start` wait for the round, as in
    /// ZooKeeper's `recvqueue`.
    #[test]
    fn notifications_before_start_are_kept() {
        let mut e = node(1, &[1, 2, 3]);
        e.handle_notification(0, ServerId(3), looking(vote(3, 5, 1, 1)));
        assert!(drain(&mut e).is_empty());
        e.start(0, Zxid(5), Epoch(1));
        let out = drain(&mut e);
        assert_eq!(e.vote().leader, ServerId(3));
        assert!(sends(&out).iter().any(|(_, v, _)| v.leader == ServerId(3)));
        assert_eq!(e.poll_timeout(), Some(200), "{{1,3}} agree: finalizing");
    }
}
