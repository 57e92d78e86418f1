//! Scenario tests: several `Election` instances wired through a deterministic in-test router
//! (per-link FIFO like TCP, random delays that reorder across links, optional drops and
//! partitions), driven by a seeded splitmix64 so every failure names a replayable seed. They
//! prove the ensemble-level behaviour of ZooKeeper 3.8 `FastLeaderElection.lookForLeader`:
//! agreement on the best (epoch, zxid, sid), late joiners and observers learning the
//! established leader, no decision in a minority, and re-election with rising logical clocks.

use std::collections::{BTreeMap, BTreeSet};

use corral_proto::quorum::{Notification, ServerState};
use corral_proto::{Epoch, ServerId, Zxid};
use corral_zab::election::{better, Election, ElectionConfig, ElectionOutput, Vote};

/// The tests' seeded generator: rand's ChaCha8 (portable, so a seed replays anywhere).
struct Rng(rand_chacha::ChaCha8Rng);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(rand::SeedableRng::seed_from_u64(seed))
    }
    fn next(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut self.0)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

struct Msg {
    at_ms: u64,
    seq: u64,
    from: ServerId,
    to: ServerId,
    n: Notification,
}

struct Node {
    e: Election,
    alive: bool,
    last_zxid: Zxid,
    current_epoch: Epoch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decision {
    at_ms: u64,
    sid: ServerId,
    state: ServerState,
    vote: Vote,
}

/// The router. Every output is executed right after the input that produced it.
struct Net {
    now_ms: u64,
    rng: Rng,
    seed: u64,
    nodes: BTreeMap<ServerId, Node>,
    inflight: Vec<Msg>,
    seq: u64,
    /// Earliest delivery time still allowed on a link, so each link stays FIFO.
    link_free_ms: BTreeMap<(ServerId, ServerId), u64>,
    delay_max_ms: u64,
    drop_percent: u64,
    /// Links that lose everything (partitions).
    cut: BTreeSet<(ServerId, ServerId)>,
    decisions: Vec<Decision>,
    /// election epoch -> the leader decided in it, for the one-leader-per-round check.
    leader_of_round: BTreeMap<i64, ServerId>,
    /// Check one leader per round on every decision. FLE only guarantees it while every
    /// message arrives within the 200 ms finalize wait; lossy runs turn it off.
    strict_rounds: bool,
}

impl Net {
    fn new(seed: u64, voters: &[ServerId], observers: &[ServerId]) -> Net {
        let mut nodes = BTreeMap::new();
        for &sid in voters.iter().chain(observers) {
            let mut cfg = ElectionConfig::new(sid, voters.to_vec());
            cfg.observer = observers.contains(&sid);
            cfg.config = Some(b"version=0".to_vec());
            let node = Node {
                e: Election::new(cfg),
                alive: true,
                last_zxid: Zxid(0),
                current_epoch: Epoch(0),
            };
            nodes.insert(sid, node);
        }
        Net {
            now_ms: 0,
            rng: Rng::new(seed),
            seed,
            nodes,
            inflight: Vec::new(),
            seq: 0,
            link_free_ms: BTreeMap::new(),
            delay_max_ms: 0,
            drop_percent: 0,
            cut: BTreeSet::new(),
            decisions: Vec::new(),
            leader_of_round: BTreeMap::new(),
            strict_rounds: true,
        }
    }

    fn start(&mut self, sid: ServerId) {
        let now = self.now_ms;
        let node = self.nodes.get_mut(&sid).expect("known sid");
        node.alive = true;
        let (zxid, epoch) = (node.last_zxid, node.current_epoch);
        let before = node.e.logical_clock();
        node.e.start(now, zxid, epoch);
        assert!(
            node.e.logical_clock() > before,
            "seed {}: clock must rise",
            self.seed
        );
        self.flush(sid);
    }

    fn kill(&mut self, sid: ServerId) {
        self.nodes.get_mut(&sid).expect("known sid").alive = false;
        self.inflight.retain(|m| m.to != sid && m.from != sid);
    }

    fn partition(&mut self, side: &[ServerId]) {
        let sids: Vec<ServerId> = self.nodes.keys().copied().collect();
        for &a in side {
            for &b in &sids {
                if !side.contains(&b) {
                    self.cut.insert((a, b));
                    self.cut.insert((b, a));
                }
            }
        }
    }

    /// Execute everything `sid` has queued.
    fn flush(&mut self, sid: ServerId) {
        while let Some(out) = self.nodes.get_mut(&sid).expect("known").e.poll_output() {
            match out {
                ElectionOutput::Send { to, n } => self.route(sid, to, n),
                ElectionOutput::Decided { state, vote } => self.record(sid, state, vote),
            }
        }
    }

    fn route(&mut self, from: ServerId, to: ServerId, n: Notification) {
        assert_ne!(from, to, "seed {}: no loopback Send", self.seed);
        let dest_alive = self.nodes.get(&to).is_some_and(|d| d.alive);
        if !dest_alive || self.cut.contains(&(from, to)) || self.rng.percent(self.drop_percent) {
            return;
        }
        let delay = if self.delay_max_ms == 0 {
            0
        } else {
            self.rng.below(self.delay_max_ms + 1)
        };
        let free = self.link_free_ms.entry((from, to)).or_insert(0);
        let at_ms = (self.now_ms + delay).max(*free);
        *free = at_ms;
        self.seq += 1;
        self.inflight.push(Msg {
            at_ms,
            seq: self.seq,
            from,
            to,
            n,
        });
    }

    /// Checks run on every decision: the role matches the vote, and no round ever names
    /// two different leaders.
    fn record(&mut self, sid: ServerId, state: ServerState, vote: Vote) {
        let seed = self.seed;
        match state {
            ServerState::Leading => assert_eq!(vote.leader, sid, "seed {seed}"),
            ServerState::Following | ServerState::Observing => {
                assert_ne!(vote.leader, sid, "seed {seed}")
            }
            ServerState::Looking => panic!("seed {seed}: decided LOOKING"),
        }
        self.decisions.push(Decision {
            at_ms: self.now_ms,
            sid,
            state,
            vote,
        });
        if !self.strict_rounds {
            return;
        }
        let leader = *self
            .leader_of_round
            .entry(vote.election_epoch)
            .or_insert(vote.leader);
        assert_eq!(
            leader, vote.leader,
            "seed {seed}: two leaders decided in round {}: {leader} and {} (by {sid})",
            vote.election_epoch, vote.leader
        );
    }

    /// Run until nothing is due before `until_ms`.
    fn run_until(&mut self, until_ms: u64) {
        loop {
            let next_msg = self.inflight.iter().map(|m| m.at_ms).min();
            let next_timer = self
                .nodes
                .values()
                .filter(|n| n.alive)
                .filter_map(|n| n.e.poll_timeout())
                .min();
            let Some(t) = next_msg.into_iter().chain(next_timer).min() else {
                break;
            };
            if t > until_ms {
                break;
            }
            self.now_ms = self.now_ms.max(t);
            if next_msg == Some(t) {
                let i = (0..self.inflight.len())
                    .filter(|&i| self.inflight[i].at_ms == t)
                    .min_by_key(|&i| self.inflight[i].seq)
                    .expect("a message is due");
                let m = self.inflight.swap_remove(i);
                let now = self.now_ms;
                let node = self.nodes.get_mut(&m.to).expect("known");
                node.e.handle_notification(now, m.from, m.n);
                self.flush(m.to);
            } else {
                let sids: Vec<ServerId> = self.nodes.keys().copied().collect();
                for sid in sids {
                    let now = self.now_ms;
                    let node = self.nodes.get_mut(&sid).expect("known");
                    if node.alive && node.e.poll_timeout().is_some_and(|d| d <= now) {
                        node.e.handle_timeout(now);
                        self.flush(sid);
                    }
                }
            }
        }
        self.now_ms = self.now_ms.max(until_ms);
    }

    /// What a ZAB leader does after winning: establish epoch + 1 and tell the election, so
    /// later LOOKING peers see the new peer epoch (`QuorumPeer.updateElectionVote`).
    fn establish(&mut self) -> (ServerId, Vote) {
        let leader = self
            .nodes
            .iter()
            .find(|(_, n)| n.alive && n.e.state() == ServerState::Leading)
            .map(|(s, _)| *s)
            .unwrap_or_else(|| panic!("seed {}: no leader", self.seed));
        self.establish_for(leader)
    }

    /// `establish` for a chosen leader, when more than one server says LEADING.
    fn establish_for(&mut self, leader: ServerId) -> (ServerId, Vote) {
        let won = self.nodes[&leader].e.vote();
        let epoch = Epoch(won.peer_epoch.0.max(0) + 1);
        let settled = Vote {
            peer_epoch: epoch,
            ..won
        };
        for node in self.nodes.values_mut().filter(|n| n.alive) {
            let state = node.e.state();
            if state != ServerState::Looking && node.e.vote().leader == leader {
                node.e.settle(state, settled);
                node.current_epoch = epoch;
            }
        }
        (leader, settled)
    }

    fn latest(&self, sid: ServerId) -> Option<Decision> {
        self.decisions.iter().rev().find(|d| d.sid == sid).copied()
    }
}

/// The vote ZooKeeper's order puts on top: highest (epoch, zxid, sid).
fn best(net: &Net, sids: &[ServerId]) -> ServerId {
    let votes = sids.iter().map(|&s| {
        let n = &net.nodes[&s];
        Vote {
            leader: s,
            zxid: n.last_zxid,
            election_epoch: 0,
            peer_epoch: n.current_epoch,
        }
    });
    votes
        .reduce(|a, b| if better(&b, &a) { b } else { a })
        .expect("non-empty")
        .leader
}

fn ensemble(size: i64) -> Vec<ServerId> {
    (1..=size).map(ServerId).collect()
}

/// Bare sids, for the tests' literal lists.
fn servers<const N: usize>(ids: [i64; N]) -> [ServerId; N] {
    ids.map(ServerId)
}

/// Proves agreement on the best vote in 600 seeded runs of 3 and 5 voters: random zxids and
/// epochs (with ties, so the sid breaks them), random start offsets, random delays that reorder
/// messages across links but stay below the 200 ms finalize wait. Everyone must decide within
/// 2 s, exactly one LEADING, all on the same vote whose leader is the best (epoch, zxid, sid).
#[test]
fn seeded_ensembles_agree_on_the_best_vote() {
    for seed in 0..600u64 {
        let size = if seed % 2 == 0 { 3 } else { 5 };
        let sids = ensemble(size);
        let mut net = Net::new(seed, &sids, &[]);
        net.delay_max_ms = 90;
        let mut starts = Vec::new();
        for &sid in &sids {
            let node = net.nodes.get_mut(&sid).expect("known");
            node.current_epoch = Epoch(net.rng.below(2) as i64);
            node.last_zxid = Zxid::new(node.current_epoch, net.rng.below(3) as i64);
            starts.push((net.rng.below(100), sid));
        }
        starts.sort();
        for (at, sid) in starts {
            net.run_until(at);
            net.start(sid);
        }
        net.run_until(2_000);
        let want = best(&net, &sids);
        let mut leaders = 0;
        for &sid in &sids {
            let d = net
                .latest(sid)
                .unwrap_or_else(|| panic!("seed {seed}: {sid} undecided"));
            assert_eq!(d.vote.leader, want, "seed {seed}: sid {sid}");
            assert_eq!(d.vote.election_epoch, 1, "seed {seed}");
            leaders += usize::from(d.state == ServerState::Leading);
        }
        assert_eq!(leaders, 1, "seed {seed}");
        assert_eq!(
            net.decisions.len(),
            sids.len(),
            "seed {seed}: one decision each"
        );
    }
}

/// Start every sid at a random offset in `0..spread_ms` from now, in time order.
fn start_all(net: &mut Net, sids: &[ServerId], spread_ms: u64) {
    let base = net.now_ms;
    let mut starts: Vec<(u64, ServerId)> = sids
        .iter()
        .map(|&s| (base + net.rng.below(spread_ms.max(1)), s))
        .collect();
    starts.sort();
    for (at, sid) in starts {
        net.run_until(at);
        net.start(sid);
    }
}

/// A server that starts while the others are settled follows the established leader, even
/// with the best zxid of all and whatever its logical clock: the FOLLOWING/LEADING answers
/// decide through `recvset` (same round) or `outofelection` (other round, clock adopted).
#[test]
fn late_starter_joins_the_established_leader() {
    for seed in 0..200u64 {
        let size = if seed % 2 == 0 { 3 } else { 5 };
        let sids = ensemble(size);
        let late = ServerId(1 + net_pick(seed, size));
        let mut net = Net::new(seed, &sids, &[]);
        net.delay_max_ms = 90;
        net.nodes.get_mut(&late).expect("known").last_zxid = Zxid(0x99);
        let early: Vec<ServerId> = sids.iter().copied().filter(|&s| s != late).collect();
        start_all(&mut net, &early, 100);
        net.run_until(2_000);
        let (leader, settled) = net.establish();
        // Some late starters have failed elections behind them: their clock is ahead.
        for _ in 0..seed % 3 {
            net.nodes
                .get_mut(&late)
                .expect("known")
                .e
                .start(net.now_ms, Zxid(0x99), Epoch(0));
            while net
                .nodes
                .get_mut(&late)
                .expect("known")
                .e
                .poll_output()
                .is_some()
            {}
        }
        net.run_until(3_000);
        net.start(late);
        net.run_until(6_000);
        let d = net
            .latest(late)
            .unwrap_or_else(|| panic!("seed {seed}: undecided"));
        assert_eq!(d.state, ServerState::Following, "seed {seed}");
        assert_eq!(d.vote.leader, leader, "seed {seed}");
        assert_eq!(d.vote.peer_epoch, settled.peer_epoch, "seed {seed}");
        assert_eq!(
            net.nodes[&late].e.logical_clock(),
            settled.election_epoch,
            "seed {seed}"
        );
        assert_eq!(
            net.nodes[&leader].e.state(),
            ServerState::Leading,
            "seed {seed}"
        );
    }
}

/// A deterministic pick in `0..size` that does not consume the net's rng.
fn net_pick(seed: u64, size: i64) -> i64 {
    (Rng::new(seed ^ 0x5eed).next() % size as u64) as i64
}

/// An observer, started before, with or after the voters, never proposes itself and decides
/// OBSERVING the voters' leader; voters never count it.
#[test]
fn observer_decides_observing() {
    for seed in 0..100u64 {
        let sids = ensemble(3);
        let mut net = Net::new(seed, &sids, &[ServerId(4)]);
        net.delay_max_ms = 90;
        // Voters start at 1 s and have decided by 2.5 s; the observer comes before, during
        // or after that.
        let observer_at = net.rng.below(5_000);
        let mut observer_started = false;
        if observer_at < 1_000 {
            net.run_until(observer_at);
            net.start(ServerId(4));
            observer_started = true;
        }
        net.run_until(1_000);
        start_all(&mut net, &sids, 100);
        if !observer_started && observer_at < 2_500 {
            net.run_until(observer_at);
            net.start(ServerId(4));
            observer_started = true;
        }
        net.run_until(2_500);
        net.establish();
        if !observer_started {
            net.run_until(observer_at);
            net.start(ServerId(4));
        }
        net.run_until(30_000);
        let leader = best(&net, &sids);
        let d = net
            .latest(ServerId(4))
            .unwrap_or_else(|| panic!("seed {seed}: observer undecided"));
        assert_eq!(d.state, ServerState::Observing, "seed {seed}");
        assert_eq!(d.vote.leader, leader, "seed {seed}");
        let leaders = net
            .decisions
            .iter()
            .filter(|d| d.state == ServerState::Leading)
            .count();
        assert_eq!(leaders, 1, "seed {seed}");
    }
}

/// A 2-of-5 minority never decides, however long it waits, and keeps re-sending at the
/// 60 s cap; the 3-node majority elects the best of its members.
#[test]
fn minority_partition_never_decides() {
    for seed in 0..50u64 {
        let sids = ensemble(5);
        let mut net = Net::new(seed, &sids, &[]);
        net.delay_max_ms = 90;
        for &sid in &sids {
            net.nodes.get_mut(&sid).expect("known").last_zxid = Zxid(net.rng.below(4) as i64);
        }
        net.partition(&servers([4, 5]));
        start_all(&mut net, &sids, 100);
        net.run_until(600_000);
        for sid in servers([4, 5]) {
            assert!(
                net.latest(sid).is_none(),
                "seed {seed}: minority {sid} decided"
            );
            let e = &net.nodes[&sid].e;
            assert_eq!(e.state(), ServerState::Looking);
            let gap = e.poll_timeout().expect("still polling") - net.now_ms;
            assert!(gap <= 60_000, "seed {seed}: back-off capped");
        }
        let want = best(&net, &servers([1, 2, 3]));
        for sid in servers([1, 2, 3]) {
            let d = net
                .latest(sid)
                .unwrap_or_else(|| panic!("seed {seed}: {sid}"));
            assert_eq!(d.vote.leader, want, "seed {seed}");
        }
    }
}

/// Leaders die one after another; the survivors restart with `start()` (logical clock + 1,
/// zxids moved on) and elect the best survivor in a new round. A stale-round notification with
/// an unbeatable zxid, injected as each round starts, is ignored. The dead come back and
/// follow the current leader.
#[test]
fn re_elections_after_leader_death() {
    for seed in 0..100u64 {
        let size = if seed % 2 == 0 { 3 } else { 5 };
        let sids = ensemble(size);
        let mut net = Net::new(seed, &sids, &[]);
        net.delay_max_ms = 90;
        start_all(&mut net, &sids, 100);
        net.run_until(2_000);
        let mut dead = Vec::new();
        let deaths = (size - 1) / 2;
        for _ in 0..deaths {
            let (leader, _) = net.establish();
            net.kill(leader);
            dead.push(leader);
            let survivors: Vec<ServerId> =
                sids.iter().copied().filter(|s| !dead.contains(s)).collect();
            let rounds_before: Vec<i64> = survivors
                .iter()
                .map(|s| net.nodes[s].e.logical_clock())
                .collect();
            for &s in &survivors {
                let node = net.nodes.get_mut(&s).expect("known");
                node.last_zxid = Zxid::new(node.current_epoch, net.rng.below(3) as i64);
            }
            // The lowest survivor's vote from the round just over, with a zxid nobody has.
            let ghost = survivors[0];
            for &to in &survivors[1..] {
                let stale = Notification {
                    state: ServerState::Looking,
                    leader: ghost,
                    zxid: Zxid(i64::MAX),
                    election_epoch: net.nodes[&to].e.logical_clock(),
                    peer_epoch: Epoch(i64::MAX),
                    version: 2,
                    config: None,
                };
                net.route(ghost, to, stale);
            }
            let t0 = net.now_ms;
            start_all(&mut net, &survivors, 100);
            net.run_until(t0 + 3_000);
            let want = best(&net, &survivors);
            for (i, &s) in survivors.iter().enumerate() {
                let d = net.latest(s).unwrap_or_else(|| panic!("seed {seed}: {s}"));
                assert!(d.at_ms >= t0, "seed {seed}: {s} decided in the new round");
                assert_eq!(d.vote.leader, want, "seed {seed}: stale vote must not win");
                assert!(
                    d.vote.election_epoch > rounds_before[i],
                    "seed {seed}: round rose"
                );
            }
        }
        let (leader, settled) = net.establish();
        let t0 = net.now_ms;
        start_all(&mut net, &dead, 100);
        net.run_until(t0 + 3_000);
        for &s in &dead {
            let d = net.latest(s).unwrap_or_else(|| panic!("seed {seed}: {s}"));
            assert_eq!(d.state, ServerState::Following, "seed {seed}");
            assert_eq!(d.vote.leader, leader, "seed {seed}");
            assert_eq!(d.vote.peer_epoch, settled.peer_epoch, "seed {seed}");
        }
    }
}

/// Leaders that a quorum of servers currently back (LEADING themselves or FOLLOWING them) in
/// the same round: what ZAB can establish. Each server counts with its latest decision.
fn backed_leaders(net: &Net) -> BTreeSet<(i64, ServerId)> {
    let mut backers: BTreeMap<(i64, ServerId), BTreeSet<ServerId>> = BTreeMap::new();
    for (&sid, node) in &net.nodes {
        let state = node.e.state();
        if !node.alive || state == ServerState::Looking || state == ServerState::Observing {
            continue;
        }
        let v = node.e.vote();
        backers
            .entry((v.election_epoch, v.leader))
            .or_default()
            .insert(sid);
    }
    let quorum = net.nodes.values().next().expect("nodes").e.quorum().clone();
    backers
        .into_iter()
        .filter(|((_, leader), sids)| {
            sids.contains(leader)
                && net.nodes[leader].e.state() == ServerState::Leading
                && quorum.contains_quorum(sids)
        })
        .map(|(k, _)| k)
        .collect()
}

/// Proves safety and recovery under loss in 300 seeded runs of 3 and 5 voters with up to 30 %
/// drops and delays up to 400 ms, beyond the finalize wait. There FLE may split a round
/// (a server finalizes before a better vote reaches it; seed 445 of an earlier 2,000-seed
/// probe made 4 and 5 both LEADING in round 1 with no drop at all), so the per-decision
/// check is off and the invariant is the one ZAB needs: at most one leader per round is
/// backed by a quorum. Then the network heals and a minimal ZAB stand-in restarts every
/// server not in a backed group (as a follower that cannot sync, or a leader without a
/// quorum, would); the ensemble must converge on one leader.
#[test]
fn lossy_rounds_split_but_converge() {
    for seed in 0..300u64 {
        let size = if seed % 2 == 0 { 3 } else { 5 };
        let sids = ensemble(size);
        let mut net = Net::new(seed, &sids, &[]);
        net.strict_rounds = false;
        net.delay_max_ms = 50 + net.rng.below(350);
        net.drop_percent = net.rng.below(31);
        for &sid in &sids {
            net.nodes.get_mut(&sid).expect("known").last_zxid = Zxid(net.rng.below(3) as i64);
        }
        start_all(&mut net, &sids, 300);
        net.run_until(5_000);
        let backed = backed_leaders(&net);
        assert!(backed.len() <= 1, "seed {seed}: {backed:?}");

        net.delay_max_ms = 90;
        net.drop_percent = 0;
        net.run_until(net.now_ms + 1_000);
        let backed = backed_leaders(&net);
        let keep: BTreeSet<ServerId> = match backed.iter().next() {
            Some(&(round, leader)) => sids
                .iter()
                .copied()
                .filter(|s| {
                    let v = net.nodes[s].e.vote();
                    net.nodes[s].e.state() != ServerState::Looking
                        && v.leader == leader
                        && v.election_epoch == round
                })
                .collect(),
            None => BTreeSet::new(),
        };
        if let Some(&(_, leader)) = backed.iter().next() {
            net.establish_for(leader);
        }
        let restart: Vec<ServerId> = sids
            .iter()
            .copied()
            .filter(|s| !keep.contains(s) && net.nodes[s].e.state() != ServerState::Looking)
            .collect();
        start_all(&mut net, &restart, 100);
        net.run_until(net.now_ms + 5_000);
        let leaders: BTreeSet<ServerId> = sids
            .iter()
            .map(|s| {
                let e = &net.nodes[s].e;
                assert_ne!(
                    e.state(),
                    ServerState::Looking,
                    "seed {seed}: {s} still looking"
                );
                e.vote().leader
            })
            .collect();
        assert_eq!(leaders.len(), 1, "seed {seed}: {leaders:?}");
        let leader = *leaders.iter().next().expect("one");
        assert_eq!(
            net.nodes[&leader].e.state(),
            ServerState::Leading,
            "seed {seed}"
        );
        assert_eq!(backed_leaders(&net).len(), 1, "seed {seed}");
    }
}
