//! Storage under disk faults: the real `FileStore` runs over `FaultDisk`, which loses unsynced
//! bytes on a power loss, tears the last write and fails operations with EIO or ENOSPC. Txns
//! come from the real core (`corral_tree::core::Core`) serving random requests, so they are the
//! ones the server logs: sessions, ephemerals, multis, error txns. A workload appends them,
//! syncs at random points, rolls the log, writes snapshots, purges, crashes (power loss or a
//! process crash), restarts and goes on with a core built from what was restored, as the server
//! does. After every restart the test checks:
//!
//! (a) every txn appended before a `sync()` that returned Ok is back: the restored zxid `z` lies
//!     between the last acknowledged zxid and the last appended one, and the restored tree and
//!     session table equal the model (all txns up to `z` replayed onto an empty tree), node by
//!     node: unacknowledged txns survive only as a prefix, never with a gap;
//! (b) start-up recovers, or (only when a fault was injected into start-up itself, or with
//!     forceSync=no) refuses with a `StoreError` naming the file; it never panics;
//! (c) once a write or sync failed, `sync()` keeps returning Err: nothing later is acknowledged.
//!
//! A second test plants corruption (a flipped byte in an acknowledged entry) and checks that
//! start-up refuses naming the file and an offset at or before the damage, or loads everything
//! acknowledged; with `truncate_corrupt_log` it starts with the entries before the damage.
//!
//! Each test runs `CORRAL_FAULT_SEEDS` seeds (default 1000 and 500); a failure prints its seed,
//! and `CORRAL_SEED=<n>` replays just that one. The workload is TigerBeetle's VOPR idea scaled
//! down to one store: every choice comes from the seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use corral_proto::records::*;
use corral_proto::request::*;
use corral_proto::txn::Txn;
use corral_storage::faultdisk::{Fault, FaultDisk, FaultPlan, OpKind};
use corral_storage::snapshot::{self, Compression, Meta};
use corral_storage::store::{apply_replayed, FileStore, Restored, StoreError, StoreOptions};
use corral_storage::txnlog;
use corral_tree::core::{Core, CoreConfig, Now, Output};
use corral_tree::DataTree;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The seeds to run: `CORRAL_SEED` alone, or `0..CORRAL_FAULT_SEEDS` (default `default`).
fn seeds(default: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("CORRAL_SEED") {
        return vec![s.trim().parse().expect("CORRAL_SEED must be a number")];
    }
    let n = std::env::var("CORRAL_FAULT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    (0..n).collect()
}

/// Prints the seed and how to replay it if the test panics while this is alive.
struct SeedGuard {
    test: &'static str,
    seed: u64,
    trace: Vec<String>,
}

impl SeedGuard {
    fn note(&mut self, line: String) {
        // The last steps are what one needs to read a failure; keep the trace bounded.
        if self.trace.len() >= 400 {
            self.trace.drain(..200);
        }
        self.trace.push(line);
    }
}

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- last steps of seed {} ----", self.seed);
            for l in &self.trace {
                eprintln!("  {l}");
            }
            eprintln!(
                "{} FAILED with seed {}: replay with CORRAL_SEED={} cargo test -p corral-storage --test faults {}",
                self.test, self.seed, self.seed, self.test
            );
        }
    }
}

fn random_request(rng: &mut StdRng) -> Request {
    let names = ["a", "b", "c"];
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
    // Mostly small values, sometimes one that spans pages, so torn writes cut entries anywhere.
    let len = if rng.gen_bool(0.1) {
        rng.gen_range(1000..9000)
    } else {
        rng.gen_range(0..40)
    };
    let data = Some((0..len).map(|_| rng.gen()).collect::<Vec<u8>>());
    match rng.gen_range(0..12) {
        0..=3 => Request::Create(CreateRequest {
            path,
            data,
            acl,
            flags: [0, 0, 1, 2][rng.gen_range(0..4)],
        }),
        4..=5 => Request::Delete(DeleteRequest { path, version: -1 }),
        6..=7 => Request::SetData(SetDataRequest {
            path,
            data,
            version: -1,
        }),
        8 => Request::SetAcl(SetAclRequest {
            path,
            acl,
            version: -1,
        }),
        9..=10 => {
            let c = CreateRequest {
                path: format!("{path}m"),
                data: None,
                acl,
                flags: 0,
            };
            Request::Multi(MultiDecode::Ops(vec![
                MultiOp::Create {
                    op: op::CREATE,
                    req: c,
                },
                MultiOp::SetData(SetDataRequest {
                    path,
                    data,
                    version: -1,
                }),
            ]))
        }
        _ => Request::CloseSession,
    }
}

/// The server stand-in: a core producing txns, the store persisting them, and the model.
struct Run {
    seed: u64,
    rng: StdRng,
    disk: FaultDisk,
    opts: StoreOptions,
    store: FileStore<FaultDisk>,
    core: Core,
    now: Now,
    conns: Vec<u64>,
    next_conn: u64,
    /// Every txn of the current history, in zxid order (the model).
    log: Vec<Txn>,
    /// Index in `log` of the first txn not yet appended to the store.
    appended: usize,
    /// The highest zxid the store has acknowledged as durable.
    acked: i64,
    /// The store returned an error since the last restart.
    failed: bool,
    /// A fault was injected since the last restart (so start-up may refuse).
    restarts: u32,
    guard: SeedGuard,
}

fn connect(core: &mut Core, now: Now, next_conn: &mut u64) -> u64 {
    let c = *next_conn;
    *next_conn += 1;
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
}

fn options(rng: &mut StdRng) -> StoreOptions {
    let data_dir = PathBuf::from("/srv/data");
    StoreOptions {
        data_log_dir: if rng.gen_bool(0.5) {
            data_dir.clone()
        } else {
            PathBuf::from("/srv/log")
        },
        data_dir,
        force_sync: true,
        prealloc_bytes: [0, 512, 4096, 65536][rng.gen_range(0..4)],
        compression: [Compression::None, Compression::Gz, Compression::Snappy][rng.gen_range(0..3)],
        max_txn_len: 1 << 20,
        trust_empty_snapshot: false,
        truncate_corrupt_log: false,
    }
}

/// The tree and sessions after replaying `txns` onto an empty tree.
fn model(txns: &[Txn]) -> (DataTree, BTreeMap<i64, i32>) {
    let mut tree = DataTree::new();
    let mut sessions = BTreeMap::new();
    for t in txns {
        apply_replayed(&mut tree, &mut sessions, t);
    }
    (tree, sessions)
}

fn compare(want: &DataTree, got: &DataTree) -> Result<(), String> {
    if got.node_count() != want.node_count() {
        return Err(format!(
            "node count {} != model {}",
            got.node_count(),
            want.node_count()
        ));
    }
    for p in want.paths_preorder() {
        let a = want.get(&p).expect("listed");
        let Some(b) = got.get(&p) else {
            return Err(format!("{p} missing"));
        };
        if (a.data(), a.stat(), a.acl()) != (b.data(), b.stat(), b.acl()) {
            return Err(format!(
                "{p} differs: model {:?} restored {:?}",
                a.stat(),
                b.stat()
            ));
        }
    }
    if got.digest() != want.digest() {
        return Err(format!(
            "digest 0x{:x} != model 0x{:x}",
            got.digest(),
            want.digest()
        ));
    }
    Ok(())
}

/// The file a `StoreError` names, if any.
fn named_path(e: &StoreError) -> Option<&Path> {
    match e {
        StoreError::Io { path, .. }
        | StoreError::CorruptLog { path, .. }
        | StoreError::BadFile { path, .. }
        | StoreError::BadTxn { path, .. }
        | StoreError::Failed { path, .. } => Some(path),
        StoreError::NoSnapshot { dir } => Some(dir),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

fn open(
    disk: &FaultDisk,
    opts: &StoreOptions,
) -> Result<(FileStore<FaultDisk>, Restored), StoreError> {
    let mut s = FileStore::new(disk.clone(), opts.clone())?;
    let r = s.restore()?;
    Ok((s, r))
}

impl Run {
    fn new(seed: u64, test: &'static str, allow_no_fsync: bool) -> Run {
        let mut rng = StdRng::seed_from_u64(seed);
        let disk = FaultDisk::new(rng.gen());
        let mut opts = options(&mut rng);
        // forceSync=no acknowledges without fsync; only the no-panic, prefix rules hold then.
        if rng.gen_ratio(1, 10) && allow_no_fsync {
            opts.force_sync = false;
        }
        let now = Now {
            mono_ms: 1_000_000,
            wall_ms: 1_700_000_000_000,
        };
        let (store, r) = open(&disk, &opts).expect("a fresh directory opens");
        let core = Core::with_state(CoreConfig::default(), now, r.tree, &r.sessions);
        let mut run = Run {
            seed,
            rng,
            disk,
            opts,
            store,
            core,
            now,
            conns: Vec::new(),
            next_conn: 1,
            log: Vec::new(),
            appended: 0,
            acked: 0,
            failed: false,
            restarts: 0,
            guard: SeedGuard {
                test,
                seed,
                trace: Vec::new(),
            },
        };
        run.guard.note(format!("options {:?}", run.opts));
        // The server writes a snapshot of what it loaded before serving (snapshot.0 here).
        run.snapshot(true);
        run.connect_clients();
        run
    }

    fn connect_clients(&mut self) {
        self.conns = (0..3)
            .map(|_| connect(&mut self.core, self.now, &mut self.next_conn))
            .collect();
        self.drain();
    }

    /// Collect the core's txns into the model and hand them to the store.
    fn drain(&mut self) {
        while let Some(o) = self.core.poll_output() {
            if let Output::Append(t) = o {
                self.log.push(t);
            }
        }
        for t in &self.log[self.appended..] {
            self.store.append(t);
        }
        self.appended = self.log.len();
    }

    fn last_appended(&self) -> i64 {
        self.log.last().map_or(0, |t| t.zxid())
    }

    fn requests(&mut self, n: usize) {
        for _ in 0..n {
            self.now.mono_ms += 1;
            self.now.wall_ms += 1;
            let k = self.rng.gen_range(0..self.conns.len());
            let req = random_request(&mut self.rng);
            let closing = matches!(req, Request::CloseSession);
            let xid = self.rng.gen_range(1..1_000_000);
            self.core.handle_request(self.now, self.conns[k], xid, req);
            if closing {
                self.core.handle_closed(self.conns[k]);
                self.conns[k] = connect(&mut self.core, self.now, &mut self.next_conn);
            }
            self.drain();
        }
    }

    /// A store call failed: from now on `sync` must fail too (c).
    fn note_failure(&mut self, what: &str, e: &StoreError) {
        self.guard.note(format!("{what} failed: {e}"));
        assert!(
            named_path(e).is_some(),
            "seed {}: {what} error names no file: {e}",
            self.seed
        );
        self.failed = true;
    }

    fn sync(&mut self) {
        let before = self.disk.sync_count();
        let had_pending = self.store.has_pending();
        match self.store.sync() {
            Ok(()) => {
                assert!(
                    !self.failed,
                    "seed {}: sync() returned Ok after an earlier write or sync failed (c)",
                    self.seed
                );
                if self.opts.force_sync && had_pending {
                    assert!(
                        self.disk.sync_count() > before,
                        "seed {}: sync() returned Ok without an fsync",
                        self.seed
                    );
                }
                self.acked = self.last_appended();
                self.guard
                    .note(format!("sync ok, acked 0x{:x}", self.acked));
            }
            Err(e) => self.note_failure("sync", &e),
        }
    }

    /// Roll and snapshot the current tree, as the server's snapshot trigger does. With
    /// `synced_first` false the snapshot may hold txns the log has not made durable yet.
    fn snapshot(&mut self, synced_first: bool) {
        if synced_first {
            if let Err(e) = self.store.roll() {
                self.note_failure("roll", &e);
                return;
            }
            if !self.failed {
                self.acked = self.last_appended();
            }
        }
        let tree = self.core.tree();
        let zxid = tree.last_processed_zxid();
        let mut sessions: Vec<(i64, i32)> = self
            .core
            .sessions()
            .iter()
            .map(|s| (s.id, s.timeout_ms as i32))
            .collect();
        sessions.sort();
        let raw = snapshot::serialize(
            tree,
            &Meta {
                sessions,
                digest: Some((zxid, tree.digest() as i64)),
            },
        );
        match self.store.write_snapshot(zxid, &raw) {
            Ok(p) => {
                // write_atomic is durable: everything in the snapshot survives from now on.
                self.acked = self.acked.max(zxid);
                self.guard.note(format!("snapshot {} ok", p.display()));
            }
            Err(e) => {
                // A failed snapshot leaves the log alone; the server stops anyway.
                self.guard
                    .note(format!("snapshot at 0x{zxid:x} failed: {e}"));
                assert!(
                    named_path(&e).is_some(),
                    "seed {}: snapshot error names no file: {e}",
                    self.seed
                );
            }
        }
    }

    /// Power loss (or a process crash), then start-up, then the checks (a) and (b).
    /// Returns false when start-up refused legitimately and the run cannot go on.
    fn restart(&mut self, power_loss: bool) -> bool {
        self.restarts += 1;
        if self.failed {
            // (c): a failed store never acknowledges again.
            assert!(
                self.store.sync().is_err(),
                "seed {}: sync() Ok after a failure (c)",
                self.seed
            );
        }
        let crash = if power_loss {
            self.disk.crash()
        } else {
            self.disk.crash_process();
            vec!["process crash".into()]
        };
        self.guard.note(format!(
            "restart #{} after {}: {crash:?}",
            self.restarts,
            if power_loss {
                "power loss"
            } else {
                "process crash"
            }
        ));
        for attempt in 0..4 {
            let injected_before = self.disk.injected().len();
            // Faults may hit start-up itself during the first attempts.
            if attempt == 0 && self.rng.gen_ratio(1, 4) {
                let ops = [
                    OpKind::Read,
                    OpKind::List,
                    OpKind::SetLen,
                    OpKind::Sync,
                    OpKind::CreateDir,
                ];
                self.disk
                    .set_plan(FaultPlan::at(self.rng.gen_range(0..6), &ops, Fault::Either));
            }
            let result = open(&self.disk, &self.opts);
            self.disk.set_plan(FaultPlan::none());
            match result {
                Ok((store, r)) => {
                    self.verify(&r);
                    self.install(store, r);
                    return true;
                }
                Err(e) => {
                    self.guard
                        .note(format!("start-up attempt {attempt} refused: {e}"));
                    assert!(
                        named_path(&e).is_some(),
                        "seed {}: start-up error names no file: {e}",
                        self.seed
                    );
                    let injected = self.disk.injected().len() > injected_before;
                    if injected {
                        assert!(
                            matches!(e, StoreError::Io { .. }),
                            "seed {}: injected I/O error reported as {e}",
                            self.seed
                        );
                        // Maybe the power goes again before the next attempt.
                        if self.rng.gen_bool(0.3) {
                            let c = self.disk.crash();
                            self.guard
                                .note(format!("power loss during start-up: {c:?}"));
                        }
                        continue;
                    }
                    if !self.opts.force_sync && matches!(e, StoreError::CorruptLog { .. }) {
                        // Without fsync a power loss can leave any log torn; refusing is fine.
                        return false;
                    }
                    panic!(
                        "seed {}: start-up refused although nothing was damaged: {e}",
                        self.seed
                    );
                }
            }
        }
        panic!(
            "seed {}: start-up kept failing after the faults stopped",
            self.seed
        );
    }

    fn verify(&mut self, r: &Restored) {
        let z = r.tree.last_processed_zxid();
        let last = self.last_appended();
        self.guard.note(format!(
            "restored 0x{z:x} (acked 0x{:x}, appended 0x{last:x}): {}",
            self.acked, r.summary
        ));
        if self.opts.force_sync {
            assert!(
                z >= self.acked,
                "seed {}: acknowledged txns lost: restored 0x{z:x} < acked 0x{:x} (a)",
                self.seed,
                self.acked
            );
        }
        assert!(
            z <= last,
            "seed {}: restored 0x{z:x} beyond the last appended 0x{last:x}",
            self.seed
        );
        let k = self.log.partition_point(|t| t.zxid() <= z);
        if !self.opts.force_sync {
            // Without fsync a power loss may keep a later log and lose an earlier one, leaving a
            // gap (as with ZooKeeper's forceSync=no): only "no panic, clear errors" holds.
            self.log.truncate(k);
            return;
        }
        let (tree, sessions) = model(&self.log[..k]);
        if let Err(d) = compare(&tree, &r.tree) {
            panic!(
                "seed {}: restored tree at 0x{z:x} is not the model's prefix (a): {d}",
                self.seed
            );
        }
        let got: BTreeMap<i64, i32> = r.sessions.iter().copied().collect();
        assert_eq!(
            got, sessions,
            "seed {}: restored sessions at 0x{z:x}",
            self.seed
        );
        self.log.truncate(k);
    }

    fn install(&mut self, store: FileStore<FaultDisk>, r: Restored) {
        let z = r.tree.last_processed_zxid();
        self.store = store;
        self.appended = self.log.len();
        // Start-up makes what it loaded durable: a later power loss must not lose it.
        self.acked = z;
        self.failed = false;
        self.now.mono_ms += 100_000;
        self.now.wall_ms += 100_000;
        self.core = Core::with_state(CoreConfig::default(), self.now, r.tree, &r.sessions);
        // The server writes a snapshot after loading; sometimes skip it to exercise replaying
        // the same logs again.
        if self.rng.gen_bool(0.5) {
            self.snapshot(true);
        }
        self.connect_clients();
    }

    fn random_plan(&mut self) -> FaultPlan {
        let mut ops = vec![
            OpKind::Write,
            OpKind::SetLen,
            OpKind::Sync,
            OpKind::WriteAtomic,
            OpKind::Remove,
        ];
        if self.rng.gen_bool(0.3) {
            ops = vec![[OpKind::Write, OpKind::Sync, OpKind::SetLen][self.rng.gen_range(0..3)]];
        }
        let fault = [Fault::Io, Fault::NoSpace, Fault::Either][self.rng.gen_range(0..3)];
        let mut plan = if self.rng.gen_bool(0.5) {
            FaultPlan::at(self.rng.gen_range(0..40), &ops, fault)
        } else {
            FaultPlan::random(self.rng.gen_range(0.005..0.05), &ops, fault)
        };
        plan.sticky = self.rng.gen_bool(0.3);
        plan
    }
}

/// (a), (b), (c) over random workloads with crashes and injected errors.
#[test]
fn acknowledged_txns_survive_crashes_and_errors() {
    let t0 = std::time::Instant::now();
    let mut restarts = 0u64;
    let mut faults = 0usize;
    let mut txns = 0u64;
    for seed in seeds(1000) {
        let mut run = Run::new(seed, "acknowledged_txns_survive_crashes_and_errors", true);
        let steps = run.rng.gen_range(20..70);
        let mut alive = true;
        for _ in 0..steps {
            match run.rng.gen_range(0..100) {
                0..=44 => {
                    let n = run.rng.gen_range(1..6);
                    run.requests(n);
                }
                45..=69 => run.sync(),
                70..=75 => run.snapshot(true),
                76..=77 => run.snapshot(false),
                78..=80 => {
                    if let Err(e) = run.store.purge(run.rng.gen_range(1..4)) {
                        run.guard.note(format!("purge failed: {e}"));
                    }
                }
                81..=86 => {
                    let plan = run.random_plan();
                    run.guard.note(format!("fault plan {plan:?}"));
                    run.disk.set_plan(plan);
                }
                _ => {
                    run.disk.set_plan(FaultPlan::none());
                    let power = run.rng.gen_bool(0.7);
                    alive = run.restart(power);
                }
            }
            if !alive {
                break;
            }
            // The server stops at the first storage error; the next step restarts it.
            if run.failed {
                run.disk.set_plan(FaultPlan::none());
                let power = run.rng.gen_bool(0.5);
                alive = run.restart(power);
                if !alive {
                    break;
                }
            }
        }
        if alive {
            run.disk.set_plan(FaultPlan::none());
            run.restart(true);
        }
        restarts += run.restarts as u64;
        faults += run.disk.injected().len();
        txns += run.log.len() as u64;
    }
    eprintln!(
        "faults: {restarts} restarts, {faults} injected faults, {txns} txns kept, in {:?}",
        t0.elapsed()
    );
}

/// The entries of every log file, as (path, offset, length) of each framed entry.
fn entries(disk: &FaultDisk, dir: &Path) -> Vec<(PathBuf, usize, usize)> {
    let mut out = Vec::new();
    let mut logs: Vec<(i64, PathBuf)> = disk
        .files()
        .into_iter()
        .filter(|p| p.parent() == Some(dir))
        .filter_map(|p| {
            txnlog::parse_name(&p.file_name()?.to_string_lossy()).map(|z| (z, p.clone()))
        })
        .collect();
    logs.sort();
    for (_, p) in logs {
        let bytes = disk.contents(&p).unwrap_or_default();
        let (es, _) = txnlog::walk(&bytes, 1 << 20);
        for e in es {
            out.push((p.clone(), e.offset, txnlog::ENTRY_OVERHEAD + e.txn.len()));
        }
    }
    out
}

/// (b) for damaged files: a flipped byte in an acknowledged entry makes start-up refuse, naming
/// the file and an offset at or before the damage, unless the entry is one start-up does not
/// need; nothing acknowledged is dropped silently. The last entry of the newest log is left
/// alone: damage there looks exactly like a torn write, which start-up cuts by design.
#[test]
fn corruption_is_refused_with_file_and_offset() {
    for seed in seeds(500) {
        let mut run = Run::new(seed, "corruption_is_refused_with_file_and_offset", false);
        for _ in 0..run.rng.gen_range(3..12) {
            let n = run.rng.gen_range(1..8);
            run.requests(n);
            run.sync();
            if run.rng.gen_ratio(1, 4) {
                run.snapshot(true);
            } else if run.rng.gen_ratio(1, 3) {
                // A roll without a snapshot, so that start-up reads several logs.
                run.store.roll().expect("no faults here");
            }
        }
        run.sync();
        let log_dir = run.store.log_dir().to_path_buf();
        let all = entries(&run.disk, &log_dir);
        let Some(newest) = all.last().map(|e| e.0.clone()) else {
            continue;
        };
        let candidates: Vec<_> = all.iter().take(all.len() - 1).collect();
        if candidates.is_empty() {
            continue;
        }
        let (path, offset, len) = candidates[run.rng.gen_range(0..candidates.len())].clone();
        let at = offset + run.rng.gen_range(0..len);
        let mut bytes = run.disk.contents(&path).expect("listed");
        bytes[at] ^= 1 << run.rng.gen_range(0..8);
        run.disk.overwrite_durably(&path, bytes);
        run.guard.note(format!(
            "flipped a bit at {} offset {at} (entry at {offset}, newest {})",
            path.display(),
            newest.display()
        ));
        let acked = run.acked;
        match open(&run.disk, &run.opts) {
            Ok((_, r)) => {
                // Only if nothing acknowledged was lost: the entry was before the snapshot.
                let z = r.tree.last_processed_zxid();
                assert!(z >= acked, "seed {seed}: damage at {} offset {at} silently dropped txns: restored 0x{z:x} < acked 0x{acked:x}", path.display());
                run.verify(&r);
            }
            Err(StoreError::CorruptLog {
                path: p, offset: o, ..
            }) => {
                assert_eq!(p, path, "seed {seed}: wrong file named");
                assert!(
                    o <= at,
                    "seed {seed}: offset {o} is after the damage at {at}"
                );
            }
            Err(StoreError::BadTxn {
                path: p, offset: o, ..
            }) => {
                assert_eq!(p, path, "seed {seed}: wrong file named");
                assert!(
                    o <= at,
                    "seed {seed}: offset {o} is after the damage at {at}"
                );
            }
            Err(e) => panic!(
                "seed {seed}: unexpected start-up error for damage at {} offset {at}: {e}",
                path.display()
            ),
        }
        // The operator override starts with what comes before the damage.
        let mut opts = run.opts.clone();
        opts.truncate_corrupt_log = true;
        let cut_at = match open(&run.disk, &opts) {
            Ok((_, r)) => {
                let z = r.tree.last_processed_zxid();
                let k = run.log.partition_point(|t| t.zxid() <= z);
                let (tree, _) = model(&run.log[..k]);
                if let Err(d) = compare(&tree, &r.tree) {
                    panic!(
                        "seed {seed}: after cutting at the damage the tree is not a prefix: {d}"
                    );
                }
                z
            }
            Err(e) => panic!("seed {seed}: truncateCorruptLog did not start: {e}"),
        };
        // The cut must be durable, and so must the removal of the later logs: after a power
        // loss the next start (without the override) finds the same prefix, not a gap.
        run.disk.crash();
        match open(&run.disk, &run.opts) {
            Ok((_, r)) => {
                let z = r.tree.last_processed_zxid();
                assert_eq!(
                    z, cut_at,
                    "seed {seed}: the start after the cut loaded 0x{z:x}"
                );
                let k = run.log.partition_point(|t| t.zxid() <= z);
                let (tree, _) = model(&run.log[..k]);
                if let Err(d) = compare(&tree, &r.tree) {
                    panic!("seed {seed}: the start after the cut is not a prefix: {d}");
                }
            }
            Err(e) => panic!("seed {seed}: the start after the cut refused: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions found by the seeded tests above, each pinned by a direct scenario.
// ---------------------------------------------------------------------------------------------

fn plain_options() -> StoreOptions {
    StoreOptions {
        data_dir: PathBuf::from("/d"),
        data_log_dir: PathBuf::from("/d"),
        force_sync: true,
        prealloc_bytes: 4096,
        compression: Compression::None,
        max_txn_len: 1 << 20,
        trust_empty_snapshot: false,
        truncate_corrupt_log: false,
    }
}

/// `count` createSession txns from zxid `first` on (any txn does; these are the smallest).
fn session_txns(first: i64, count: i64) -> Vec<Txn> {
    use corral_proto::txn::{CreateSessionTxn, TxnBody, TxnHeader};
    (first..first + count)
        .map(|z| Txn {
            header: TxnHeader {
                client_id: 0x100 + z,
                cxid: 0,
                zxid: z,
                time: 1_700_000_000_000 + z,
                r#type: op::CREATE_SESSION,
            },
            body: TxnBody::CreateSession(CreateSessionTxn { time_out: 30000 }),
            digest: None,
        })
        .collect()
}

/// A fresh store over `disk` with snapshot.0 written, as the server starts.
fn fresh(disk: &FaultDisk) -> FileStore<FaultDisk> {
    let (mut s, r) = open(disk, &plain_options()).unwrap();
    s.write_snapshot(0, &snapshot::serialize(&r.tree, &Meta::default()))
        .unwrap();
    s
}

/// Bug: `sync()` took the pending batch's first zxid before writing, so after a failed write the
/// next `sync()` found "nothing pending" and returned Ok: the caller would have acknowledged txns
/// that never reached the disk (seed 5 of acknowledged_txns_survive_crashes_and_errors). Fix:
/// the first write or fsync error poisons the store; every later sync fails.
#[test]
fn regression_sync_fails_for_good_after_a_write_error() {
    let disk = FaultDisk::new(7);
    let mut s = fresh(&disk);
    for t in session_txns(1, 3) {
        s.append(&t);
    }
    disk.set_plan(FaultPlan::at(0, &[OpKind::Write], Fault::NoSpace));
    assert!(matches!(s.sync(), Err(StoreError::Io { .. })));
    disk.set_plan(FaultPlan::none());
    let syncs = disk.sync_count();
    for _ in 0..2 {
        assert!(matches!(s.sync(), Err(StoreError::Failed { .. })));
    }
    s.append(&session_txns(4, 1)[0]);
    assert!(s.sync().is_err());
    assert!(s.roll().is_err());
    assert_eq!(
        disk.sync_count(),
        syncs,
        "nothing is fsynced after the failure"
    );
}

/// Bug: a power loss right after a new log was created can leave the file with part of its
/// 16-byte header (the create is durable, the header write is not); start-up then refused with
/// "file is shorter than the 16-byte header" although nothing was lost (seed 12). Fix: such a
/// file holds no entries and is skipped like an empty one.
#[test]
fn regression_a_log_with_a_cut_header_is_empty() {
    let disk = FaultDisk::new(3);
    let mut s = fresh(&disk);
    for t in session_txns(1, 2) {
        s.append(&t);
    }
    s.sync().unwrap();
    s.roll().unwrap();
    for t in session_txns(3, 2) {
        s.append(&t);
    }
    s.sync().unwrap();
    let newest = s.log_dir().join("log.3");
    for cut in 1..txnlog::HEADER_LEN {
        disk.overwrite_durably(&newest, txnlog::file_header()[..cut].to_vec());
        let (_, r) = open(&disk, &plain_options()).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        assert_eq!(r.tree.last_processed_zxid(), 2, "cut {cut}");
    }
}

/// Bug: start-up replayed log tails that were still only in the page cache (left by a process
/// that crashed after a failed fsync) without making them durable; the new process built on
/// them, and a power loss later tore that older log: start-up then refused ("corrupt txn log")
/// and the txns it had loaded were gone (seed 557). Fix: start-up fsyncs each log it replays.
#[test]
fn regression_start_up_makes_what_it_loaded_durable() {
    let disk = FaultDisk::new(11);
    let mut s = fresh(&disk);
    for t in session_txns(1, 3) {
        s.append(&t);
    }
    disk.set_plan(FaultPlan::at(0, &[OpKind::Sync], Fault::Io));
    assert!(s.sync().is_err());
    disk.set_plan(FaultPlan::none());
    let log = s.log_dir().join("log.1");
    assert!(disk.has_unsynced(&log));
    // The process dies; its writes are in the page cache, and the next start loads them.
    disk.crash_process();
    let (_, r) = open(&disk, &plain_options()).unwrap();
    assert_eq!(r.tree.last_processed_zxid(), 3);
    assert!(
        !disk.has_unsynced(&log),
        "start-up left the log it loaded unsynced"
    );
    disk.crash();
    let (_, r) = open(&disk, &plain_options()).unwrap();
    assert_eq!(r.tree.last_processed_zxid(), 3);
}

/// Bug: with corral.truncateCorruptLog, start-up cut the damaged log and then removed the later
/// logs without a directory fsync; after a power loss the later logs came back and the next
/// start replayed across the gap (seed 10 of corruption_is_refused_with_file_and_offset). Fix:
/// `Disk::remove` is durable (RealDisk fsyncs the directory) and the later logs go before the
/// cut, so a crash in between leaves the damage in place for the next start to find.
#[test]
fn regression_truncating_a_corrupt_log_leaves_no_gap() {
    let disk = FaultDisk::new(5);
    let mut s = fresh(&disk);
    for (first, count) in [(1, 3), (4, 3), (7, 3)] {
        for t in session_txns(first, count) {
            s.append(&t);
        }
        s.roll().unwrap();
    }
    let damaged = s.log_dir().join("log.1");
    let mut bytes = disk.contents(&damaged).unwrap();
    let second = txnlog::walk(&bytes, 1 << 20).0[1].offset;
    bytes[second + 20] ^= 0xff;
    disk.overwrite_durably(&damaged, bytes);
    let mut opts = plain_options();
    opts.truncate_corrupt_log = true;
    // Start-up dies half-way: the second removal fails, then the power goes.
    disk.set_plan(FaultPlan::at(1, &[OpKind::Remove], Fault::Io));
    assert!(matches!(open(&disk, &opts), Err(StoreError::Io { .. })));
    disk.set_plan(FaultPlan::none());
    disk.crash();
    // The damage is still there to be found, not hidden by a cut with a later log after it.
    match open(&disk, &plain_options()) {
        Err(StoreError::CorruptLog { path, offset, .. }) => {
            assert_eq!((path, offset), (damaged.clone(), second))
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok((_, r)) => panic!(
            "started at 0x{:x} across a gap",
            r.tree.last_processed_zxid()
        ),
    }
    let (_, r) = open(&disk, &opts).unwrap();
    assert_eq!(r.tree.last_processed_zxid(), 1);
    assert_eq!(r.report.cut.len(), 1, "{:?}", r.report);
    assert_eq!(
        (&r.report.cut[0].0, r.report.cut[0].1),
        (&damaged, second as u64)
    );
    assert_eq!(
        r.report.removed.len(),
        1,
        "log.4 went in the failed attempt: {:?}",
        r.report
    );
    disk.crash();
    let (_, r) = open(&disk, &plain_options()).unwrap();
    assert_eq!(
        r.tree.last_processed_zxid(),
        1,
        "a later log came back after the cut"
    );
}
