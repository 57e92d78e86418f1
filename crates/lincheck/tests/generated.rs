//! Generated histories: a random workload runs against the crate's sequential model with
//! simulated concurrency (sessions with their own lagging "follower" state, overlapping
//! invoke/complete intervals, zxids in apply order, dropped replies, expiries, watch events
//! delivered as each follower catches up). check() must accept them, and must reject them once
//! mutated (a read value changed, two writes' zxids swapped, one watch event dropped).
//! The watch rules here are written independently of check.rs's expectation builder.

use std::collections::HashSet;

use corral_lincheck::model::{self, parent, Tree, Trigger};
use corral_lincheck::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Default)]
struct Watches {
    data: HashSet<String>,
    child: HashSet<String>,
    pers: HashSet<String>,
    rec: HashSet<String>,
}

impl Watches {
    fn rec_covers(&self, p: &str) -> bool {
        let mut q = Some(p);
        while let Some(x) = q {
            if self.rec.contains(x) {
                return true;
            }
            q = parent(x);
        }
        false
    }
    fn fire(&mut self, t: &Trigger, out: &mut Vec<(EventKind, String)>) {
        match t {
            Trigger::Created(p) => {
                let par = parent(p).unwrap().to_string();
                if self.data.remove(p) | self.pers.contains(p) | self.rec_covers(p) {
                    out.push((EventKind::NodeCreated, p.clone()));
                }
                if self.child.remove(&par) | self.pers.contains(&par) {
                    out.push((EventKind::NodeChildrenChanged, par));
                }
            }
            Trigger::Deleted(p) => {
                let par = parent(p).unwrap().to_string();
                let d = self.data.remove(p) | self.pers.contains(p) | self.rec_covers(p);
                let c = self.child.remove(p);
                if d || c {
                    out.push((EventKind::NodeDeleted, p.clone()));
                }
                if self.child.remove(&par) | self.pers.contains(&par) {
                    out.push((EventKind::NodeChildrenChanged, par));
                }
            }
            Trigger::Changed(p) => {
                if self.data.remove(p) | self.pers.contains(p) | self.rec_covers(p) {
                    out.push((EventKind::NodeDataChanged, p.clone()));
                }
            }
        }
    }
}

enum Phase {
    Idle,
    Invoked(usize),
    Applied(usize, i64, Res),
}

struct Sess {
    id: i64,
    follower: i64,
    w: Watches,
    phase: Phase,
    done: bool,
}

struct Gen {
    rng: StdRng,
    model: Tree,
    snaps: Vec<Tree>,
    txns: Vec<(Vec<Trigger>, Option<i64>)>, // index = zxid - 1
    h: History,
    ss: Vec<Sess>,
    /// (session index, stream position, triggering zxid) of every event.
    event_meta: Vec<(usize, usize, i64)>,
    t: u64,
}

impl Gen {
    fn zxid(&self) -> i64 {
        self.txns.len() as i64
    }

    fn advance(&mut self, s: usize, target: i64) {
        while self.ss[s].follower < target {
            let z = self.ss[s].follower + 1;
            self.ss[s].follower = z;
            let (trig, closes) = &self.txns[(z - 1) as usize];
            if *closes == Some(self.ss[s].id) {
                continue;
            }
            let mut out = Vec::new();
            for t in trig {
                self.ss[s].w.fire(t, &mut out);
            }
            let id = self.ss[s].id;
            let sess = self.h.sessions.iter_mut().find(|x| x.id == id).unwrap();
            for (kind, path) in out {
                self.event_meta.push((s, sess.stream.len(), z));
                sess.stream.push(Received::Event { kind, path });
            }
        }
    }

    fn commit_txn(&mut self, trig: Vec<Trigger>, closes: Option<i64>) {
        self.model.commit();
        self.txns.push((trig, closes));
        self.snaps.push(self.model.clone());
    }

    fn random_call(&mut self) -> Call {
        let r = &mut self.rng;
        let paths = ["/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/z"];
        let p = paths[r.gen_range(0..paths.len())].to_string();
        let data: Vec<u8> = format!("d{}", r.gen_range(0..5)).into_bytes();
        let version = if r.gen_bool(0.6) {
            -1
        } else {
            r.gen_range(0..3)
        };
        let watch = r.gen_bool(0.5);
        match r.gen_range(0..100) {
            0..=19 => {
                // Containers and TTL nodes churn (the reaper takes them); some ACLs forbid
                // writes, creates, deletes or ACL changes (never reads: the watch rules here
                // do not model notifications a connection may not read).
                let mode = match r.gen_range(0..10) {
                    0 => CreateMode {
                        container: true,
                        ..CreateMode::default()
                    },
                    1 => CreateMode {
                        ttl_ms: Some(r.gen_range(1..10_000)),
                        ..CreateMode::default()
                    },
                    _ => CreateMode {
                        ephemeral: r.gen_bool(0.25),
                        ..CreateMode::default()
                    },
                };
                let acl = if r.gen_bool(0.2) {
                    let drop = [perms::WRITE, perms::CREATE, perms::DELETE, perms::ADMIN];
                    vec![Acl::world(perms::ALL & !drop[r.gen_range(0..4)])]
                } else {
                    Acl::open()
                };
                Call::Create {
                    path: p,
                    data,
                    mode,
                    acl,
                }
            }
            20..=25 => Call::Create {
                path: "/a/s-".into(),
                data,
                mode: CreateMode {
                    sequential: true,
                    ephemeral: r.gen_bool(0.3),
                    ..CreateMode::default()
                },
                acl: Acl::open(),
            },
            26..=40 => Call::SetData {
                path: p,
                data,
                version,
            },
            41..=48 => {
                let existing: Vec<String> = self.snaps.last().map_or(vec![], |t| {
                    paths
                        .iter()
                        .map(|s| s.to_string())
                        .chain((0..8).map(|i| format!("/a/s-{i:010}")))
                        .filter(|q| t.get(q).is_some())
                        .collect()
                });
                let p = if existing.is_empty() || r.gen_bool(0.3) {
                    p
                } else {
                    existing[r.gen_range(0..existing.len())].clone()
                };
                Call::Delete { path: p, version }
            }
            49..=53 => {
                let q = paths[r.gen_range(0..paths.len())].to_string();
                if r.gen_bool(0.5) {
                    Call::Multi(vec![
                        Call::Create {
                            path: p,
                            data: data.clone(),
                            mode: CreateMode::default(),
                            acl: Acl::open(),
                        },
                        Call::SetData {
                            path: q,
                            data,
                            version: -1,
                        },
                    ])
                } else {
                    Call::Multi(vec![
                        Call::Check { path: q, version },
                        Call::Delete {
                            path: p,
                            version: -1,
                        },
                    ])
                }
            }
            54..=68 => Call::GetData { path: p, watch },
            69..=78 => Call::Exists { path: p, watch },
            79..=88 => Call::GetChildren {
                path: if r.gen_bool(0.5) { "/a".into() } else { p },
                watch,
            },
            89..=90 => Call::Sync { path: p },
            91 => Call::SetAcl {
                path: p,
                acl: vec![Acl::world(if r.gen_bool(0.5) {
                    perms::ALL
                } else {
                    perms::READ | perms::ADMIN
                })],
                version: if r.gen_bool(0.7) {
                    -1
                } else {
                    r.gen_range(0..2)
                },
            },
            92..=93 => Call::GetAcl { path: p },
            94..=97 => Call::AddWatch {
                path: p,
                mode: if r.gen_bool(0.5) {
                    AddWatchMode::Persistent
                } else {
                    AddWatchMode::PersistentRecursive
                },
            },
            _ => Call::CloseSession,
        }
    }

    fn step(&mut self, p_unknown: f64) {
        self.t += self.rng.gen_range(1..4);
        let live: Vec<usize> = (0..self.ss.len()).filter(|&i| !self.ss[i].done).collect();
        if live.is_empty() {
            return;
        }
        let s = live[self.rng.gen_range(0..live.len())];
        // Occasionally expire an idle session (system write).
        if matches!(self.ss[s].phase, Phase::Idle) && self.rng.gen_bool(0.003) {
            let id = self.ss[s].id;
            let z = self.zxid() + 1;
            let trig = self.model.close_session(id, z);
            self.commit_txn(trig, Some(id));
            self.h.system_writes.push(SystemWrite {
                zxid: z,
                what: SystemWhat::SessionClosed { session: id },
            });
            self.ss[s].done = true;
            self.h
                .sessions
                .iter_mut()
                .find(|x| x.id == id)
                .unwrap()
                .expired = true;
            return;
        }
        // Occasionally the reaper deletes an empty container that once had a child, or an
        // empty TTL node (system write).
        if self.rng.gen_bool(0.01) {
            let reapable: Vec<String> = ["/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/z"]
                .iter()
                .filter(|p| {
                    self.model.get(p).is_some_and(|n| {
                        n.children.is_empty()
                            && match model::kind_of(n.ephemeral_owner) {
                                model::Kind::Container => n.cversion > 0,
                                model::Kind::Ttl(_) => true,
                                _ => false,
                            }
                    })
                })
                .map(|p| p.to_string())
                .collect();
            if !reapable.is_empty() {
                let path = reapable[self.rng.gen_range(0..reapable.len())].clone();
                let z = self.zxid() + 1;
                let trig = self.model.system_delete(&path, z).expect("reapable");
                self.commit_txn(trig, None);
                self.h.system_writes.push(SystemWrite {
                    zxid: z,
                    what: SystemWhat::Deleted { path },
                });
                return;
            }
        }
        // The follower catches up a bit at random.
        if self.rng.gen_bool(0.3) {
            let target = self.rng.gen_range(self.ss[s].follower..=self.zxid());
            self.advance(s, target);
        }
        let id = self.ss[s].id;
        match std::mem::replace(&mut self.ss[s].phase, Phase::Idle) {
            Phase::Idle => {
                let call = self.random_call();
                let i = self.h.ops.len();
                self.h.ops.push(Op {
                    session: id,
                    invoke: self.t,
                    complete: None,
                    call,
                    ret: Ret::Unknown,
                });
                self.ss[s].phase = Phase::Invoked(i);
            }
            Phase::Invoked(i) => {
                let call = self.h.ops[i].call.clone();
                if call.is_write() {
                    if self.rng.gen_bool(p_unknown / 2.0) {
                        // Lost before reaching the leader: never applied.
                        self.reconnect(id);
                        return;
                    }
                    let z = self.zxid() + 1;
                    let close = matches!(call, Call::CloseSession);
                    if close {
                        self.advance(s, z - 1);
                    }
                    let (res, trig) = self.model.apply(&call, id, z);
                    self.commit_txn(trig, close.then_some(id));
                    self.advance(s, z);
                    if close {
                        // The server drops a closed session's watches with its connection.
                        self.ss[s].w = Watches::default();
                    }
                    self.ss[s].phase = Phase::Applied(i, z, res);
                } else {
                    let f = self.ss[s].follower;
                    let f = if matches!(call, Call::Sync { .. }) {
                        let z = self.zxid();
                        self.advance(s, z);
                        z
                    } else {
                        f
                    };
                    let state = if f == 0 {
                        Tree::new(&[])
                    } else {
                        self.snaps[(f - 1) as usize].clone()
                    };
                    let res = state.read(&call);
                    let w = &mut self.ss[s].w;
                    match (&call, &res) {
                        (Call::GetData { path, watch: true }, Res::Data { .. }) => {
                            w.data.insert(path.clone());
                        }
                        (Call::Exists { path, watch: true }, _) => {
                            w.data.insert(path.clone());
                        }
                        (Call::GetChildren { path, watch: true }, Res::Children(_)) => {
                            w.child.insert(path.clone());
                        }
                        (
                            Call::AddWatch {
                                path,
                                mode: AddWatchMode::Persistent,
                            },
                            _,
                        ) => {
                            w.pers.insert(path.clone());
                        }
                        (
                            Call::AddWatch {
                                path,
                                mode: AddWatchMode::PersistentRecursive,
                            },
                            _,
                        ) => {
                            w.rec.insert(path.clone());
                        }
                        _ => {}
                    }
                    self.ss[s].phase = Phase::Applied(i, f, res);
                }
            }
            Phase::Applied(i, z, res) => {
                let close = matches!(self.h.ops[i].call, Call::CloseSession);
                if self.h.ops[i].call.is_write() && self.rng.gen_bool(p_unknown) {
                    self.reconnect(id);
                } else {
                    self.h.ops[i].complete = Some(self.t);
                    self.h.ops[i].ret = Ret::Done {
                        zxid: z,
                        result: res,
                    };
                    self.h
                        .sessions
                        .iter_mut()
                        .find(|x| x.id == id)
                        .unwrap()
                        .stream
                        .push(Received::Reply(i));
                }
                if close {
                    self.ss[s].done = true;
                }
            }
        }
    }

    fn reconnect(&mut self, id: i64) {
        self.h
            .sessions
            .iter_mut()
            .find(|x| x.id == id)
            .unwrap()
            .stream
            .push(Received::Reconnected);
    }
}

fn generate(
    seed: u64,
    ops: usize,
    sessions: usize,
    p_unknown: f64,
) -> (History, Vec<(usize, usize, i64)>) {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        model: Tree::new(&[]),
        snaps: vec![],
        txns: vec![],
        h: History::default(),
        ss: vec![],
        event_meta: vec![],
        t: 0,
    };
    for k in 0..sessions {
        let id = 0x1000 + k as i64;
        g.ss.push(Sess {
            id,
            follower: 0,
            w: Watches::default(),
            phase: Phase::Idle,
            done: false,
        });
        g.h.sessions.push(Session {
            id,
            expired: false,
            stream: vec![],
        });
    }
    while g.h.ops.len() < ops && g.ss.iter().any(|s| !s.done) {
        g.step(p_unknown);
    }
    // Drain: finish every pending op (no new invokes).
    for _ in 0..10 {
        for s in 0..g.ss.len() {
            if !g.ss[s].done && !matches!(g.ss[s].phase, Phase::Idle) {
                let before = g.h.ops.len();
                g.step_session(s, p_unknown);
                assert_eq!(before, g.h.ops.len());
            }
        }
    }
    (g.h, g.event_meta)
}

impl Gen {
    fn step_session(&mut self, s: usize, p_unknown: f64) {
        // Force `step` onto session s by marking the others done for one step.
        let saved: Vec<bool> = self.ss.iter().map(|x| x.done).collect();
        for (k, x) in self.ss.iter_mut().enumerate() {
            x.done = k != s || saved[k];
        }
        let exp_before = self.h.system_writes.len();
        self.step(p_unknown);
        let expired_now = self.h.system_writes.len() > exp_before;
        for (k, x) in self.ss.iter_mut().enumerate() {
            // Session s keeps `done` only if this step closed or expired it.
            if k != s || (!x.done && !expired_now) {
                x.done = saved[k];
            }
        }
    }
}

#[test]
fn generated_histories_pass() {
    // 500 seeds x 200 ops, 5 sessions, 3% of replies lost (half of those never applied).
    let start = std::time::Instant::now();
    let mut unknown_seen = 0;
    let mut events = 0;
    for seed in 0..500 {
        let (h, _) = generate(seed, 200, 5, 0.03);
        match check(&h) {
            Outcome::Ok(s) => {
                unknown_seen += s.unknown_applied + s.unknown_dropped;
                events += s.events;
            }
            other => panic!("seed {seed}: {other:?}"),
        }
    }
    eprintln!(
        "500 seeds in {:?}, {unknown_seen} unknown writes, {events} events",
        start.elapsed()
    );
    assert!(
        unknown_seen > 100 && events > 1000,
        "generator too tame: {unknown_seen} unknown, {events} events"
    );
}

#[test]
fn generated_histories_without_unknowns_pass() {
    for seed in 1000..1200 {
        let (h, _) = generate(seed, 300, 4, 0.0);
        assert!(
            matches!(check(&h), Outcome::Ok(_)),
            "seed {seed}: {:?}",
            check(&h)
        );
    }
}

#[test]
fn mutated_read_value_rejected() {
    // Proves reads are really compared: change one GetData value in a good history.
    let mut hits = 0;
    for seed in 0..60 {
        let (mut h, _) = generate(seed, 200, 4, 0.0);
        let Some(i) = h.ops.iter().position(|o| {
            matches!(
                o.ret,
                Ret::Done {
                    result: Res::Data { .. },
                    ..
                }
            )
        }) else {
            continue;
        };
        if let Ret::Done {
            result: Res::Data { data, .. },
            ..
        } = &mut h.ops[i].ret
        {
            data.push(b'!');
        }
        let o = check(&h);
        assert!(
            matches!(&o, Outcome::Violation(v) if v.kind == ViolationKind::ReadResult),
            "seed {seed}: {o:?}"
        );
        hits += 1;
    }
    assert!(hits > 40);
}

#[test]
fn swapped_write_zxids_rejected() {
    // Proves write order is really checked: swap the zxids of two successful writes that
    // return stats (mzxid/czxid then disagree with the replay).
    let mut hits = 0;
    for seed in 0..60 {
        let (mut h, _) = generate(seed, 200, 4, 0.0);
        let w: Vec<usize> = (0..h.ops.len())
            .filter(|&i| {
                matches!(
                    h.ops[i].ret,
                    Ret::Done {
                        result: Res::Stat(_) | Res::Created { .. },
                        ..
                    }
                )
            })
            .collect();
        if w.len() < 2 {
            continue;
        }
        let (a, b) = (w[0], w[w.len() / 2]);
        let za = h.ops[a].zxid().unwrap();
        let zb = h.ops[b].zxid().unwrap();
        if let Ret::Done { zxid, .. } = &mut h.ops[a].ret {
            *zxid = zb;
        }
        if let Ret::Done { zxid, .. } = &mut h.ops[b].ret {
            *zxid = za;
        }
        let o = check(&h);
        assert!(matches!(o, Outcome::Violation(_)), "seed {seed}: {o:?}");
        hits += 1;
    }
    assert!(hits > 40);
}

#[test]
fn dropped_watch_event_rejected() {
    // Proves watch delivery is really checked: drop one event that a later reply of the same
    // session (with zxid >= the trigger) should have been preceded by.
    let mut hits = 0;
    for seed in 0..100 {
        let (mut h, meta) = generate(seed, 200, 4, 0.0);
        let pick = meta.iter().find(|&&(s, at, w)| {
            h.sessions[s].stream[at + 1..]
                .iter()
                .any(|r| matches!(r, Received::Reply(i) if h.ops[*i].zxid().unwrap() >= w))
        });
        let Some(&(s, at, _)) = pick else { continue };
        h.sessions[s].stream.remove(at);
        let o = check(&h);
        assert!(
            matches!(&o, Outcome::Violation(v) if format!("{:?}", v.kind).starts_with("Watch")),
            "seed {seed}: {o:?}"
        );
        hits += 1;
    }
    assert!(hits > 30, "only {hits}");
}
