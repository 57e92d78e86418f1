//! Deterministic simulation of corral ensembles (STYLE.md "Tests, bottom to top", items 4 and
//! 6). N real `corral_zab::Peer` + `corral_tree::core::Core` nodes run over a simulated
//! network, clock and disk, wired exactly as `corral_server::ensemble` wires them; simulated
//! clients drive them with sessions and a random mix of requests; faults (crashes that lose
//! the unsynced log suffix, partitions, connection resets, dropped election messages, slow
//! messages and disks) strike while checkers watch every step. Then faults stop and the
//! ensemble must converge and serve every session again.
//!
//! Everything is a pure function of one seed: `CORRAL_SEED=S` replays a run, `CORRAL_SEEDS=N`
//! runs seeds `0..N`. No threads, no tokio, no wall clock. This crate must not change the
//! code it drives; bugs it finds are reported with their seed.

pub mod chain;
pub mod client;
pub mod known;
pub mod limits;
pub mod mirror;
pub mod params;
pub mod reaper;
pub mod record;
pub mod rng;
pub mod sim;
pub mod watch;

pub use sim::{Failure, Report, Sim};

use client::Final;
use sim::T0;

/// Simulated time allowed for convergence after the faults stop (ms).
pub const CONVERGE_MS: u64 = 60_000;
/// Simulated time allowed for every session to complete a fresh write (ms).
pub const FRESH_WRITE_MS: u64 = 30_000;

/// Run one seed: faults, then liveness, then the final checks.
pub fn run_seed(seed: u64) -> Result<Report, Failure> {
    let mut sim = Sim::new(seed);
    let fault_end = T0 + sim.p.fault_ms;
    sim.run_until(fault_end);
    if sim.failure.is_some() {
        return sim.finish();
    }
    // Liveness: no more faults or random ops; everyone must converge.
    sim.stop_faults();
    sim.random_ops = false;
    let deadline = sim.now + CONVERGE_MS;
    if !wait(&mut sim, deadline, |s| s.converged()) {
        let msg = sim.describe_nodes();
        sim.fail("liveness: a leader and one state after faults stop", msg);
        return sim.finish();
    }
    // Sessions whose clients lost touch during the faults have had their chance to expire
    // by now plus a timeout; from then on no session a client keeps alive may expire.
    sim.expiry_guard = Some(sim.now + 2 * sim.p.session_timeout_ms as u64);
    for c in &mut sim.clients {
        c.final_state = Final::Wanted;
    }
    let deadline = sim.now + FRESH_WRITE_MS;
    if !wait(&mut sim, deadline, |s| {
        s.clients.iter().all(|c| c.final_state == Final::Done)
    }) {
        let pending: Vec<usize> = (0..sim.clients.len())
            .filter(|&c| sim.clients[c].final_state != Final::Done)
            .collect();
        let msg = format!("clients {pending:?}: {}", sim.describe_nodes());
        sim.fail("liveness: every session completes a fresh write", msg);
        return sim.finish();
    }
    // Idle clients only ping for a while: no session of theirs may expire (the guard).
    let idle_until =
        sim.now.max(sim.expiry_guard.unwrap_or(0)) + 2 * sim.p.session_timeout_ms as u64;
    wait(&mut sim, idle_until, |_| false);
    let deadline = sim.now + CONVERGE_MS;
    if !wait(&mut sim, deadline, |s| s.converged()) {
        let msg = sim.describe_nodes();
        sim.fail("liveness: one state after the fresh writes", msg);
        return sim.finish();
    }
    check_acked_everywhere(&mut sim);
    check_reaper(&mut sim);
    check_linearizable(&mut sim);
    sim.finish()
}

/// TTL nodes are reaped only after their TTL (`reaper`), whatever the clocks did.
fn check_reaper(sim: &mut Sim) {
    if sim.failure.is_some() {
        return;
    }
    match reaper::check(&sim.chain, &sim.bodies, &sim.first_seen) {
        Ok(r) => sim.report.reaped = r,
        Err(e) => sim.fail("a TTL node lives at least its TTL", e),
    }
}

/// What every client observed is one linearizable ZooKeeper history (`corral_lincheck`).
fn check_linearizable(sim: &mut Sim) {
    if sim.failure.is_some() {
        return;
    }
    let Some(live) = sim.nodes.iter().find_map(|n| n.live.as_ref()) else {
        return;
    };
    // The nodes every tree starts with (ZooKeeper's /zookeeper subtree).
    let tree = live.node.core().tree();
    let initial: Vec<(String, Vec<u8>)> = ["/zookeeper", "/zookeeper/quota", "/zookeeper/config"]
        .iter()
        .filter_map(|p| {
            tree.get(p)
                .map(|n| (p.to_string(), n.data().unwrap_or_default().to_vec()))
        })
        .collect();
    let history = match sim.rec.history(&sim.chain, &sim.bodies, initial) {
        Ok(h) => h,
        Err(e) => return sim.fail("every committed txn is known", e),
    };
    if let Ok(v) = std::env::var("CORRAL_LIN_DUMP") {
        let sess = i64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap_or(0);
        for (i, o) in history.ops.iter().enumerate() {
            if o.session == sess || sess == 0 {
                eprintln!("op #{i}: {o:?}");
            }
        }
        eprintln!("system writes: {:?}", history.system_writes);
    }
    match corral_lincheck::check(&history) {
        corral_lincheck::Outcome::Ok(s) => {
            sim.report.lin_unknown = s.unknown_applied + s.unknown_dropped;
        }
        corral_lincheck::Outcome::Violation(v) => {
            sim.fail("the client history is linearizable", v.to_string())
        }
        corral_lincheck::Outcome::Inconclusive { reason } => {
            sim.report.lin_inconclusive = true;
            sim.note(&format!("linearizability check inconclusive: {reason}"))
        }
        corral_lincheck::Outcome::Invalid { reason } => {
            sim.fail("the recorded history is well formed", reason)
        }
    }
}

fn wait(sim: &mut Sim, deadline: u64, done: impl Fn(&Sim) -> bool) -> bool {
    loop {
        if sim.failure.is_some() {
            return true;
        }
        if done(sim) {
            return true;
        }
        if sim.now >= deadline {
            return false;
        }
        let t = sim.now + 50;
        sim.run_until(t);
    }
}

/// Every acknowledged write is in every node's history, with its session and cxid.
fn check_acked_everywhere(sim: &mut Sim) {
    let acked = sim.acked.clone();
    let mut missing = None;
    for n in &sim.nodes {
        let Some(live) = n.live.as_ref() else {
            continue;
        };
        for &(zxid, session, cxid) in &acked {
            let found = live
                .ghost
                .binary_search_by_key(&zxid, |g| g.zxid)
                .ok()
                .map(|i| live.ghost[i]);
            if !found.is_some_and(|g| g.session == session && g.cxid == cxid) {
                missing = Some(format!(
                    "node {}: write 0x{zxid:x} (session 0x{session:x} cxid {cxid}) missing",
                    n.sid
                ));
                break;
            }
        }
    }
    if let Some(m) = missing {
        sim.fail("an acknowledged write is never lost", m);
    }
    sim.report.acked_writes = acked.len();
}

/// Run a seed, turning a panic in the code under test into a failure with the seed.
pub fn run_seed_caught(seed: u64) -> Result<Report, Failure> {
    match std::panic::catch_unwind(|| run_seed(seed)) {
        Ok(r) => r,
        Err(e) => {
            let detail = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(Failure {
                seed,
                invariant: "no panic".into(),
                detail,
                at_ms: 0,
                recent: Vec::new(),
            })
        }
    }
}

/// The seeds to run: `CORRAL_SEED=S` alone, else `CORRAL_SEED_START..+CORRAL_SEEDS` (default
/// `0..default_n`).
pub fn seeds_from_env(default_n: u64) -> Vec<u64> {
    if let Some(s) = std::env::var("CORRAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![s];
    }
    let n = std::env::var("CORRAL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_n);
    // `CORRAL_SEED_START=K` shifts the range to `K..K+N` (long runs split over processes).
    let start: u64 = std::env::var("CORRAL_SEED_START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (start..start + n).collect()
}
