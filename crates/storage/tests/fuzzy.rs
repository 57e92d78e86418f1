//! Fuzzy snapshots: a snapshot taken a few nodes at a time while txns keep being applied, then
//! restored and replayed from its zxid + 1, must give back exactly the live tree (every node's
//! data and stat, and the digest). Random workloads from many seeds drive the real core.

use corral_proto::records::*;
use corral_proto::request::*;
use corral_proto::txn::Txn;
use corral_storage::snapshot::{self, Fuzzy};
use corral_tree::core::{Core, CoreConfig, Now, Output};
use corral_tree::DataTree;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random_request(rng: &mut StdRng) -> Request {
    let names = ["a", "b", "c", "d"];
    let mut path = String::new();
    for _ in 0..rng.gen_range(1..4) {
        path.push('/');
        path.push_str(names[rng.gen_range(0..names.len())]);
    }
    let acl = if rng.gen_bool(0.2) {
        vec![Acl::new(
            perms::READ | perms::WRITE | perms::CREATE | perms::DELETE,
            "world",
            "anyone",
        )]
    } else {
        vec![Acl::new(perms::ALL, "world", "anyone")]
    };
    match rng.gen_range(0..10) {
        0..=3 => Request::Create(CreateRequest {
            path,
            data: Some(vec![rng.gen(); rng.gen_range(0..5)]),
            acl,
            flags: [0, 0, 1, 2][rng.gen_range(0..4)],
        }),
        4..=5 => Request::Delete(DeleteRequest { path, version: -1 }),
        6..=7 => Request::SetData(SetDataRequest {
            path,
            data: Some(vec![rng.gen()]),
            version: -1,
        }),
        8 => Request::SetAcl(SetAclRequest {
            path,
            acl,
            version: -1,
        }),
        _ => Request::CloseSession,
    }
}

fn compare(live: &DataTree, restored: &DataTree, seed: u64) {
    assert_eq!(
        restored.node_count(),
        live.node_count(),
        "seed {seed}: node count"
    );
    for p in live.paths_preorder() {
        let a = live.get(&p).unwrap();
        let b = restored
            .get(&p)
            .unwrap_or_else(|| panic!("seed {seed}: {p} missing after restore"));
        assert_eq!(
            (a.data(), a.stat(), a.acl()),
            (b.data(), b.stat(), b.acl()),
            "seed {seed}: {p}"
        );
    }
    assert_eq!(restored.digest(), live.digest(), "seed {seed}: digest");
}

#[test]
fn fuzzy_snapshot_plus_replay_equals_the_live_tree() {
    for seed in 0..60u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut now = Now {
            mono_ms: 1_000_000,
            wall_ms: 1_700_000_000_000,
        };
        let mut core = Core::new(CoreConfig::default(), now);
        let mut log: Vec<Txn> = Vec::new();
        let drain = |core: &mut Core, log: &mut Vec<Txn>| {
            while let Some(o) = core.poll_output() {
                if let Output::Append(t) = o {
                    log.push(t);
                }
            }
        };
        let mut next_conn = 1u64;
        let mut connect = |core: &mut Core, now: Now| {
            let c = next_conn;
            next_conn += 1;
            core.handle_open(c, "127.0.0.1".into());
            let req = ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: 30000,
                session_id: 0,
                passwd: Some(vec![0; 16]),
            };
            core.handle_connect(
                now,
                c,
                &Connect {
                    req,
                    read_only: Some(false),
                },
            );
            c
        };
        let mut conns: Vec<u64> = (0..3).map(|_| connect(&mut core, now)).collect();
        drain(&mut core, &mut log);
        let mut fuzzy: Option<Fuzzy> = None;
        let mut snap: Option<(i64, Vec<u8>)> = None;
        let ops = rng.gen_range(50..400);
        let snap_at = rng.gen_range(0..ops);
        for i in 0..ops {
            now.mono_ms += 1;
            now.wall_ms += 1;
            let k = rng.gen_range(0..conns.len());
            let req = random_request(&mut rng);
            let closing = matches!(req, Request::CloseSession);
            core.handle_request(now, conns[k], i + 1, req);
            if closing {
                core.handle_closed(conns[k]);
                conns[k] = connect(&mut core, now);
            }
            drain(&mut core, &mut log);
            if i == snap_at {
                let sessions = core
                    .sessions()
                    .iter()
                    .map(|s| (s.id, s.timeout_ms as i32))
                    .collect();
                fuzzy = Some(Fuzzy::start(core.tree(), sessions));
            }
            if let Some(f) = fuzzy.as_mut() {
                if f.step(core.tree(), rng.gen_range(1..4)) {
                    let f = fuzzy.take().unwrap();
                    let t = core.tree();
                    let zxid = f.zxid();
                    snap = Some((
                        zxid,
                        f.finish(Some((t.last_processed_zxid(), t.digest() as i64))),
                    ));
                }
            }
        }
        if let Some(mut f) = fuzzy.take() {
            while !f.step(core.tree(), 1) {}
            let t = core.tree();
            snap = Some((
                f.zxid(),
                f.finish(Some((t.last_processed_zxid(), t.digest() as i64))),
            ));
        }
        let (zxid, raw) = snap.expect("a snapshot was taken");
        let (mut restored, _meta) = snapshot::deserialize(&raw, usize::MAX).unwrap();
        let mut sessions = Default::default();
        for t in log.iter().filter(|t| t.zxid() > zxid) {
            corral_storage::store::apply_replayed(&mut restored, &mut sessions, t);
        }
        compare(core.tree(), &restored, seed);
    }
}
