//! The deterministic ensemble simulation as a CI test. `seeds_hold_every_invariant` runs many
//! seeds (each one an ensemble of real `corral_node::Node`s over the real storage on
//! `FaultDisk`s, under crashes, power losses, disk errors, partitions, resets and dropped
//! election messages, then a liveness phase and the linearizability check) and fails with every failing seed and the
//! invariant it broke; seeds that hit a known bug whose switch is on (`corral_sim::known`) are
//! listed but do not fail it. `a_seed_replays_exactly` proves a run is a pure function of its
//! seed by running seeds twice and comparing the hash of everything that happened.
//!
//! `CORRAL_SEED=S` runs one seed, `CORRAL_SEEDS=N` runs seeds `0..N`, `CORRAL_SIM_VERBOSE`
//! prints a line per seed, `CORRAL_SIM_TRACE` every event, `CORRAL_SIM_TXNS` every commit and
//! `CORRAL_LIN_DUMP=<session hex>` the ops the checker got for a session.

use std::time::Instant;

use corral_sim::{known, run_seed_caught, seeds_from_env};

/// Seeds run by default: about 4-5 minutes in a debug build on two cores since each member
/// runs the real storage over a `FaultDisk` and every history goes through the
/// linearizability checker (the storage, not the checker, is most of it).
const CI_SEEDS: u64 = 2_000;

#[test]
fn seeds_hold_every_invariant() {
    let t0 = Instant::now();
    let verbose = std::env::var("CORRAL_SIM_VERBOSE").is_ok();
    let mut failures = Vec::new();
    let mut known_hits = Vec::new();
    let mut inconclusive = Vec::new();
    let mut notifications = 0;
    let (mut ttl_reaped, mut containers_reaped) = (0, 0);
    let seeds = seeds_from_env(CI_SEEDS);
    let mut last_progress = Instant::now();
    for (done, &seed) in seeds.iter().enumerate() {
        if last_progress.elapsed().as_secs() >= 60 {
            // Long runs say how far they are (about once a minute).
            eprintln!(
                "{done} of {} seeds in {:.0} s, {} failed so far",
                seeds.len(),
                t0.elapsed().as_secs_f64(),
                failures.len()
            );
            last_progress = Instant::now();
        }
        let r = run_seed_caught(seed);
        if r.as_ref().is_ok_and(|r| r.lin_inconclusive) {
            inconclusive.push(seed);
        }
        notifications += r.as_ref().map_or(0, |r| r.notifications);
        if let Ok(r) = &r {
            ttl_reaped += r.reaped.ttl_nodes;
            containers_reaped += r.reaped.containers;
        }
        match r {
            Ok(r) if verbose => eprintln!(
                "seed {seed}: ok, {} ms simulated, {} steps, chain {}, ops {} done / {} unknown, \
                 {} acked writes, {} crashes, {} partitions, {} leaders, notes {:?}",
                r.end_ms,
                r.steps,
                r.chain_len,
                r.ops_completed,
                r.ops_unknown,
                r.acked_writes,
                r.crashes,
                r.partitions,
                r.elections,
                r.notes
            ),
            Ok(_) => {}
            Err(f) if known::tolerated(&f) => {
                eprintln!("seed {seed}: known bug: {}", f.invariant);
                known_hits.push(seed);
            }
            Err(f) => {
                eprintln!("{f}\n");
                failures.push((seed, f.invariant.clone()));
            }
        }
    }
    eprintln!(
        "{} seeds in {:.1} s: {} failed, {} hit known bugs {known_hits:?}, linearizability \
         search bound hit (neither pass nor fail) in {}: {inconclusive:?}; {notifications} watch \
         notifications checked; {ttl_reaped} TTL nodes and {containers_reaped} containers reaped",
        seeds.len(),
        t0.elapsed().as_secs_f64(),
        failures.len(),
        known_hits.len(),
        inconclusive.len()
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
    // The reaper checks are not vacuous: a run of any size reaps both kinds.
    if seeds.len() >= 100 {
        assert!(
            ttl_reaped > 0 && containers_reaped > 0,
            "the workload reaped {ttl_reaped} TTL nodes and {containers_reaped} containers"
        );
    }
}

#[test]
fn a_seed_replays_exactly() {
    let first = seeds_from_env(1)[0];
    for seed in first..first + 3 {
        let a = run_seed_caught(seed);
        let b = run_seed_caught(seed);
        match (a, b) {
            (Ok(a), Ok(b)) => {
                assert_eq!(
                    (a.trace_hash, a.steps),
                    (b.trace_hash, b.steps),
                    "seed {seed} ran twice with different traces"
                );
            }
            (Err(a), Err(b)) => assert_eq!(
                (a.invariant, a.at_ms, a.detail),
                (b.invariant, b.at_ms, b.detail),
                "seed {seed} failed twice differently"
            ),
            (a, b) => panic!("seed {seed}: once {:?}, once {:?}", a.is_ok(), b.is_ok()),
        }
    }
}
