//! The interface between the server and durable storage, and its two implementations. The core
//! hands over every applied txn in order; the server calls `sync` before it releases any reply
//! that follows those txns, so nothing is acknowledged before it is durable.

use std::io;
use std::time::Instant;

use corral_proto::txn::Txn;
use corral_storage::disk::RealDisk;
use corral_storage::snapshot::Fuzzy;
use corral_storage::store::{FileStore, LoggedTxns, StoreOptions};
use corral_tree::session::SessionTable;
use corral_tree::DataTree;
use corral_zab::sync::{txn_log_size_limit, txn_log_within_limit};
use tracing::{info, warn};

/// What start-up loaded: the tree, the sessions, and a line for the log.
pub struct Loaded {
    pub tree: DataTree,
    pub sessions: Vec<(i64, i32)>,
    /// The most recent txns replayed, oldest first (an ensemble leader's DIFF source).
    pub recent_txns: Vec<(i64, Vec<u8>)>,
    pub summary: String,
}

pub trait Storage: Send {
    fn load(&mut self) -> io::Result<Loaded>;
    /// Queue a txn (already applied in memory) for persistence, in zxid order.
    fn append(&mut self, txn: &Txn) -> io::Result<()>;
    /// Make every appended txn durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Called after each sync with the current state; may roll the log and start a snapshot.
    fn after_sync(&mut self, _tree: &DataTree, _sessions: &SessionTable) -> io::Result<()> {
        Ok(())
    }

    /// Ensemble: the epoch files (`acceptedEpoch`, `currentEpoch`), `None` when absent.
    fn read_epoch(&mut self, _name: &str) -> io::Result<Option<i64>> {
        Ok(None)
    }

    /// Ensemble: write an epoch file durably before anything depends on it.
    fn write_epoch(&mut self, _name: &str, _epoch: i64) -> io::Result<()> {
        Ok(())
    }

    /// Ensemble learner: drop logged txns after `zxid` (TRUNC, or a loaded SNAP).
    fn truncate_after(&mut self, _zxid: i64) -> io::Result<()> {
        Ok(())
    }

    /// Ensemble learner: persist a state received from the leader as a snapshot, now, and drop
    /// the txn logs before it.
    fn snapshot_now(&mut self, _tree: &DataTree, _sessions: &[(i64, i32)]) -> io::Result<()> {
        Ok(())
    }

    /// Ensemble leader, for a learner behind the in-memory committed log (reference §4.6 rule
    /// 5): the logged txns from the last one at or before `from_zxid` through `to_zxid`, as
    /// (zxid, serialized txn), oldest first, if the log reaches back that far and is within
    /// the size limit `zookeeper.snapshotSizeFactor` × the latest snapshot's size; `None`
    /// otherwise (the learner gets a snapshot).
    fn read_log(
        &mut self,
        _from_zxid: i64,
        _to_zxid: i64,
        _snapshot_size_factor: f64,
    ) -> io::Result<Option<LoggedTxns>> {
        Ok(None)
    }

    /// Do a bounded slice of background work (a fuzzy snapshot walks a few thousand nodes per
    /// call between batches of requests). Returns true while more work is pending.
    fn work(&mut self, _tree: &DataTree) -> io::Result<bool> {
        Ok(false)
    }
}

/// Keeps nothing: a restart starts from an empty tree.
#[derive(Default)]
pub struct MemoryStorage;

impl Storage for MemoryStorage {
    fn load(&mut self) -> io::Result<Loaded> {
        Ok(Loaded {
            tree: DataTree::new(),
            sessions: vec![],
            recent_txns: vec![],
            summary: "in-memory storage (nothing persisted)".into(),
        })
    }

    fn append(&mut self, _txn: &Txn) -> io::Result<()> {
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// ZooKeeper's data directory: txn logs with group commit, snapshots every ~snapCount txns
/// (randomised like ZooKeeper so an ensemble does not snapshot in lockstep), autopurge.
pub struct FileStorage {
    store: FileStore<RealDisk>,
    opts: StoreOptions,
    snap_count: u64,
    next_snapshot_after: u64,
    since_snapshot: u64,
    retain: usize,
    purge_every: Option<std::time::Duration>,
    last_purge: Instant,
    fsync_warn_ms: u64,
    /// The snapshot being walked between request batches, if any.
    walking: Option<(Fuzzy, Instant)>,
    /// The snapshot being written in the background, if any.
    writer: Option<std::thread::JoinHandle<io::Result<()>>>,
    rng: u64,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl FileStorage {
    pub fn open(
        opts: StoreOptions,
        snap_count: u64,
        retain: usize,
        purge_interval_hours: u32,
        fsync_warn_ms: u64,
    ) -> io::Result<FileStorage> {
        let store = FileStore::new(RealDisk::default(), opts.clone()).map_err(other)?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let mut s = FileStorage {
            store,
            opts,
            snap_count: snap_count.max(2),
            next_snapshot_after: 0,
            since_snapshot: 0,
            retain: retain.max(3),
            purge_every: (purge_interval_hours > 0)
                .then(|| std::time::Duration::from_secs(purge_interval_hours as u64 * 3600)),
            last_purge: Instant::now(),
            fsync_warn_ms,
            walking: None,
            writer: None,
            rng: seed | 1,
        };
        s.pick_next_snapshot();
        Ok(s)
    }

    fn pick_next_snapshot(&mut self) {
        // xorshift: the spread only has to differ between servers.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = self.snap_count / 2;
        self.next_snapshot_after = half + self.rng % half.max(1);
    }

    /// Nodes serialized per `work` call: small enough to keep request latency low.
    const NODES_PER_STEP: usize = 20_000;
    /// Bytes serialized per `work` call at most (20,000 nodes of 10 KiB would be 200 MB).
    const BYTES_PER_STEP: usize = 4 << 20;

    /// Roll the log and begin a fuzzy snapshot at the current zxid; false when the previous
    /// snapshot is still under way.
    fn start_snapshot(&mut self, tree: &DataTree, sessions: &SessionTable) -> io::Result<bool> {
        if self.walking.is_some() {
            return Ok(false);
        }
        if let Some(w) = self.writer.take() {
            if !w.is_finished() {
                self.writer = Some(w);
                return Ok(false);
            }
            w.join().map_err(|_| other("snapshot thread panicked"))??;
        }
        self.store.roll().map_err(other)?;
        let sessions = sessions
            .iter()
            .map(|s| (s.id, s.timeout_ms as i32))
            .collect();
        self.walking = Some((Fuzzy::start(tree, sessions), Instant::now()));
        Ok(true)
    }

    /// Hand a finished walk to a background thread: compress and write atomically.
    fn write_in_background(
        &mut self,
        f: Fuzzy,
        tree: &DataTree,
        started: Instant,
        background: bool,
    ) -> io::Result<()> {
        let zxid = f.zxid();
        let nodes = f.nodes_written();
        let raw = f.finish(Some((tree.last_processed_zxid(), tree.digest() as i64)));
        let walk_ms = started.elapsed().as_millis();
        let opts = self.opts.clone();
        let job = move || -> io::Result<()> {
            let t1 = Instant::now();
            let mut store = FileStore::new(RealDisk::default(), opts).map_err(other)?;
            let path = store.write_snapshot(zxid, &raw).map_err(other)?;
            info!(
                "snapshot {} written: {nodes} znodes, {} bytes uncompressed, walked in {walk_ms} ms, written in {} ms",
                path.display(),
                raw.len(),
                t1.elapsed().as_millis()
            );
            Ok(())
        };
        if background {
            self.writer = Some(std::thread::spawn(job));
            Ok(())
        } else {
            job()
        }
    }
}

impl Storage for FileStorage {
    fn load(&mut self) -> io::Result<Loaded> {
        let r = self.store.restore().map_err(other)?;
        let t0 = Instant::now();
        if r.report.snapshot.is_none() || r.report.dead_sessions > 0 {
            // Before serving, a snapshot must hold what is not in any file yet: ephemerals
            // dropped without a txn (their sessions are gone), or, from an empty directory, the
            // initial tree (a log without any snapshot is refused at the next start). Nothing
            // runs yet: not fuzzy.
            let mut f = Fuzzy::start(&r.tree, r.sessions.clone());
            while !f.step(&r.tree, usize::MAX) {}
            self.store.roll().map_err(other)?;
            self.write_in_background(f, &r.tree, t0, false)?;
        } else if r.report.replayed > 0 {
            // Everything loaded is on disk already (snapshot + logs), so serving need not wait:
            // snapshot it in the background, as a fuzzy snapshot between requests, so the next
            // start does not replay the same logs again (ZooKeeper takes this snapshot before
            // it serves).
            self.store.roll().map_err(other)?;
            self.walking = Some((Fuzzy::start(&r.tree, r.sessions.clone()), t0));
        }
        Ok(Loaded {
            tree: r.tree,
            sessions: r.sessions,
            recent_txns: r.recent_txns,
            summary: r.summary,
        })
    }

    fn read_epoch(&mut self, name: &str) -> io::Result<Option<i64>> {
        let dir = self.store.snap_dir().to_path_buf();
        corral_storage::epoch::read(self.store.disk(), &dir, name)
    }

    fn write_epoch(&mut self, name: &str, epoch: i64) -> io::Result<()> {
        let dir = self.store.snap_dir().to_path_buf();
        corral_storage::epoch::write(self.store.disk(), &dir, name, epoch)
    }

    fn truncate_after(&mut self, zxid: i64) -> io::Result<()> {
        // A snapshot being walked or written may be of the state being discarded.
        self.walking = None;
        if let Some(w) = self.writer.take() {
            w.join().map_err(|_| other("snapshot thread panicked"))??;
        }
        let n = self.store.truncate_after(zxid).map_err(other)?;
        if n > 0 {
            info!("dropped {n} logged txn(s) after 0x{zxid:x}");
        }
        Ok(())
    }

    fn snapshot_now(&mut self, tree: &DataTree, sessions: &[(i64, i32)]) -> io::Result<()> {
        // A walk under way is of the state being replaced.
        self.walking = None;
        let t0 = Instant::now();
        let mut f = Fuzzy::start(tree, sessions.to_vec());
        while !f.step(tree, usize::MAX) {}
        self.store.roll().map_err(other)?;
        self.write_in_background(f, tree, t0, false)?;
        // The logs before it may hold txns of the history the leader's state replaced (kept by
        // `truncate_after` because their zxids are lower): a txn-log sync must not send them.
        let zxid = tree.last_processed_zxid();
        let n = self.store.remove_logs_through(zxid).map_err(other)?;
        if n > 0 {
            info!("removed {n} txn log(s) older than the leader's snapshot at 0x{zxid:x}");
        }
        Ok(())
    }

    fn read_log(
        &mut self,
        from_zxid: i64,
        to_zxid: i64,
        snapshot_size_factor: f64,
    ) -> io::Result<Option<LoggedTxns>> {
        let snap_len = self.store.latest_snapshot_len().map_err(other)?;
        let limit = txn_log_size_limit(snap_len, snapshot_size_factor);
        let within = |later: u64| txn_log_within_limit(later, limit);
        (self.store)
            .read_log(from_zxid, to_zxid, &within)
            .map_err(other)
    }

    fn append(&mut self, txn: &Txn) -> io::Result<()> {
        self.store.append(txn);
        self.since_snapshot += 1;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let t0 = Instant::now();
        self.store.sync().map_err(other)?;
        let ms = t0.elapsed().as_millis() as u64;
        if ms > self.fsync_warn_ms {
            warn!(
                "fsync of the txn log took {ms} ms, above fsync.warningthresholdms={}",
                self.fsync_warn_ms
            );
        }
        Ok(())
    }

    fn after_sync(&mut self, tree: &DataTree, sessions: &SessionTable) -> io::Result<()> {
        // A snapshot that is due while the last one is still being walked or written waits
        // for it (ZooKeeper skips it instead, "Too busy to snap"): under a steady write load
        // skipping lets the logs a restart must replay grow without bound.
        if self.since_snapshot >= self.next_snapshot_after && self.start_snapshot(tree, sessions)? {
            self.since_snapshot = 0;
            self.pick_next_snapshot();
        }
        Ok(())
    }

    fn work(&mut self, tree: &DataTree) -> io::Result<bool> {
        // autopurge.purgeInterval runs on its own clock, like ZooKeeper's PurgeTask, not only when
        // a snapshot happens to be written.
        if self.walking.is_none() && self.writer.as_ref().is_none_or(|w| w.is_finished()) {
            if let Some(every) = self.purge_every {
                if self.last_purge.elapsed() >= every {
                    if let Some(w) = self.writer.take() {
                        w.join().map_err(|_| other("snapshot thread panicked"))??;
                    }
                    self.last_purge = Instant::now();
                    let opts = self.opts.clone();
                    let retain = self.retain;
                    self.writer = Some(std::thread::spawn(move || {
                        let mut store = FileStore::new(RealDisk::default(), opts).map_err(other)?;
                        let n = store.purge(retain).map_err(other)?;
                        info!("autopurge removed {n} old file(s), keeping {retain} snapshots");
                        Ok(())
                    }));
                }
            }
        }
        let Some((f, _)) = self.walking.as_mut() else {
            return Ok(false);
        };
        if !f.step_bounded(tree, Self::NODES_PER_STEP, Self::BYTES_PER_STEP) {
            return Ok(true);
        }
        let (f, started) = self.walking.take().expect("checked above");
        self.write_in_background(f, tree, started, true)?;
        Ok(false)
    }
}
