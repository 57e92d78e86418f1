//! A data directory in ZooKeeper's layout: restoring the tree at start-up
//! (`FileTxnSnapLog.restore`, reference §6.5), appending txns with group commit, rolling logs,
//! writing snapshots and purging old files. All file access goes through `Disk`.

use std::path::{Path, PathBuf};

use corral_proto::records::op;
use corral_proto::txn::{Txn, TxnBody};
use corral_tree::DataTree;
use tracing::{info, warn};

use crate::disk::Disk;
pub use crate::limits::RECENT_TXNS_KEPT;
use crate::limits::SNAPSHOTS_TRIED_MAX;
use crate::snapshot::{self, Compression, Meta};
use crate::txnlog::{self, End};

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub force_sync: bool,
    pub prealloc_bytes: u64,
    pub compression: Compression,
    pub max_txn_len: usize,
    /// `zookeeper.snapshot.trust.empty`: start with no snapshot even though logs exist.
    pub trust_empty_snapshot: bool,
    /// Operator override (`corral.truncateCorruptLog=true`): cut the logs at a corrupt entry
    /// and start with what comes before it, instead of refusing to start.
    pub truncate_corrupt_log: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: corrupt txn log at offset {offset}: {reason}; refusing to start (the entries after it would be lost). Set -Dcorral.truncateCorruptLog=true to cut the log there and start anyway")]
    CorruptLog {
        path: PathBuf,
        offset: usize,
        reason: String,
    },
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("{path}: txn at offset {offset} does not decode: {reason}")]
    BadTxn {
        path: PathBuf,
        offset: usize,
        reason: String,
    },
    #[error("{path}: an earlier write or fsync failed ({first}); the log cannot be trusted, so nothing more is acknowledged until a restart")]
    Failed { path: PathBuf, first: String },
    #[error("no valid snapshot in {dir} but txn logs exist; refusing to start (set -Dzookeeper.snapshot.trust.empty=true to replay the logs onto an empty tree)")]
    NoSnapshot { dir: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What start-up loaded.
pub struct Restored {
    pub tree: DataTree,
    pub sessions: Vec<(i64, i32)>,
    /// The last [`RECENT_TXNS_KEPT`] txns replayed (zxid, serialized txn), oldest first: an
    /// ensemble leader answers DIFF from them (ZooKeeper fills its `committedLog` the same way).
    pub recent_txns: Vec<(i64, Vec<u8>)>,
    pub summary: String,
    pub report: RestoreReport,
}

/// Which files start-up used and what it did to them (for `corral data show` and logs).
#[derive(Debug, Clone, Default)]
pub struct RestoreReport {
    /// The snapshot loaded and the zxid in its name; `None`: started from an empty tree.
    pub snapshot: Option<(PathBuf, i64)>,
    /// Newer snapshots passed over, with the reason.
    pub skipped_snapshots: Vec<(PathBuf, String)>,
    /// The logs read, oldest first.
    pub logs: Vec<PathBuf>,
    pub replayed: u64,
    /// zxids of the first and the last txn replayed.
    pub replayed_range: Option<(i64, i64)>,
    /// Logs cut back: (file, new length, why).
    pub cut: Vec<(PathBuf, u64, String)>,
    /// Logs removed after a cut.
    pub removed: Vec<PathBuf>,
    /// Sessions whose ephemerals were dropped without a txn (gone from the session list).
    pub dead_sessions: usize,
    /// Milliseconds spent loading the snapshot and replaying the logs (None on a disk
    /// without a clock).
    pub snapshot_ms: Option<u64>,
    pub replay_ms: Option<u64>,
}

/// Logged txns as (zxid, serialized txn), oldest first.
pub type LoggedTxns = Vec<(i64, Vec<u8>)>;

struct OpenLog {
    path: PathBuf,
    /// Bytes durable or written so far.
    position: u64,
    /// Size the file has been extended to.
    size: u64,
}

pub struct FileStore<D: Disk> {
    disk: D,
    opts: StoreOptions,
    snap_dir: PathBuf,
    log_dir: PathBuf,
    log: Option<OpenLog>,
    pending: Vec<u8>,
    pending_first_zxid: Option<i64>,
    last_logged_zxid: i64,
    /// The first write or fsync error. After one, the file's contents and what the kernel will
    /// flush are unknown (a failed fsync may drop the dirty pages), so every later `sync` fails:
    /// a retry that returned Ok would acknowledge txns that were never written.
    failed: Option<String>,
}

impl<D: Disk> FileStore<D> {
    pub fn new(mut disk: D, opts: StoreOptions) -> Result<FileStore<D>, StoreError> {
        let snap_dir = opts.data_dir.join("version-2");
        let log_dir = opts.data_log_dir.join("version-2");
        disk.create_dir_all(&snap_dir).map_err(io(&snap_dir))?;
        disk.create_dir_all(&log_dir).map_err(io(&log_dir))?;
        Ok(FileStore {
            disk,
            opts,
            snap_dir,
            log_dir,
            log: None,
            pending: Vec::new(),
            pending_first_zxid: None,
            last_logged_zxid: 0,
            failed: None,
        })
    }

    pub fn snap_dir(&self) -> &Path {
        &self.snap_dir
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    fn logs(&mut self) -> Result<Vec<(i64, PathBuf)>, StoreError> {
        let dir = self.log_dir.clone();
        let mut v: Vec<(i64, PathBuf)> = self
            .disk
            .list(&dir)
            .map_err(io(&dir))?
            .into_iter()
            .filter_map(|n| txnlog::parse_name(&n).map(|z| (z, dir.join(n))))
            .collect();
        v.sort();
        Ok(v)
    }

    fn snapshots(&mut self) -> Result<Vec<(i64, Compression, PathBuf)>, StoreError> {
        let dir = self.snap_dir.clone();
        let mut v: Vec<(i64, Compression, PathBuf)> = self
            .disk
            .list(&dir)
            .map_err(io(&dir))?
            .into_iter()
            .filter_map(|n| snapshot::parse_name(&n).map(|(z, c)| (z, c, dir.join(n))))
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.0));
        Ok(v)
    }

    /// Load the newest valid snapshot and replay the logs after it.
    pub fn restore(&mut self) -> Result<Restored, StoreError> {
        let t0 = self.disk.clock_ms();
        let mut report = RestoreReport::default();
        let mut loaded: Option<(DataTree, Meta, i64, PathBuf)> = None;
        for (zxid, c, path) in self.snapshots()?.into_iter().take(SNAPSHOTS_TRIED_MAX) {
            let file = self.disk.read_all(&path, true).map_err(io(&path))?;
            if !snapshot::looks_valid(&file, c) {
                warn!("{}: not a complete snapshot, skipping", path.display());
                report
                    .skipped_snapshots
                    .push((path, "not a complete snapshot".into()));
                continue;
            }
            let raw = match snapshot::decompress(&file, c) {
                Ok(r) => r,
                Err(e) => {
                    warn!("{}: {e}; trying an older snapshot", path.display());
                    report.skipped_snapshots.push((path, e.to_string()));
                    continue;
                }
            };
            let disk = &self.disk;
            match snapshot::deserialize_beside(&raw, usize::MAX, |a, b| disk.beside(a, b)) {
                Ok((tree, meta)) => {
                    info!(
                        "loaded snapshot {} ({} znodes, {} sessions) in {}",
                        path.display(),
                        tree.node_count(),
                        meta.sessions.len(),
                        took(t0, self.disk.clock_ms())
                    );
                    report.snapshot = Some((path.clone(), zxid));
                    report.snapshot_ms = t0
                        .zip(self.disk.clock_ms())
                        .map(|(a, b)| b.saturating_sub(a));
                    loaded = Some((tree, meta, zxid, path));
                    break;
                }
                Err(e) => {
                    warn!("{}: {e}; trying an older snapshot", path.display());
                    report.skipped_snapshots.push((path, e.to_string()));
                }
            }
        }
        let logs = self.logs()?;
        let (mut tree, meta, snap_zxid, from) = match loaded {
            Some((t, m, z, p)) => (t, m, z, p.display().to_string()),
            None => {
                if !logs.is_empty() && !self.opts.trust_empty_snapshot {
                    return Err(StoreError::NoSnapshot {
                        dir: self.snap_dir.clone(),
                    });
                }
                (
                    DataTree::new(),
                    Meta::default(),
                    0,
                    "an empty tree".to_string(),
                )
            }
        };
        tree.set_last_processed_zxid(snap_zxid);
        let mut sessions: std::collections::BTreeMap<i64, i32> =
            meta.sessions.iter().copied().collect();
        // Replay: every log starting after the snapshot, plus the newest one starting at or before.
        let start = snap_zxid + 1;
        let first = logs.iter().rposition(|(z, _)| *z <= start).unwrap_or(0);
        let chosen: Vec<(i64, PathBuf)> = logs[first..].to_vec();
        report.logs = chosen.iter().map(|(_, p)| p.clone()).collect();
        let mut replayed = 0u64;
        let mut recent: std::collections::VecDeque<(i64, Vec<u8>)> = Default::default();
        let newest = chosen.last().map(|(_, p)| p.clone());
        let mut last_progress = t0;
        'files: for (i, (file_zxid, path)) in chosen.iter().enumerate() {
            let bytes = self.disk.read_all(path, false).map_err(io(path))?;
            // Empty, or a header cut short: a log whose creation a crash interrupted before
            // any entry was written. It holds nothing to replay, wherever it is in the list.
            if bytes.len() < txnlog::HEADER_LEN && txnlog::file_header().starts_with(&bytes) {
                if !bytes.is_empty() {
                    warn!(
                        "{}: only {} bytes of the header were written; no entries",
                        path.display(),
                        bytes.len()
                    );
                }
                continue;
            }
            txnlog::check_header(&bytes).map_err(|e| StoreError::BadFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let (entries, end) = txnlog::walk(&bytes, self.opts.max_txn_len);
            // The zxid of the last complete entry of this file (a file is named by its first).
            let mut file_last = file_zxid - 1;
            for e in &entries {
                let txn = txnlog::decode(e).map_err(|x| StoreError::BadTxn {
                    path: path.clone(),
                    offset: e.offset,
                    reason: x.to_string(),
                })?;
                let zxid = txn.zxid();
                file_last = zxid;
                if zxid < start {
                    continue;
                }
                apply_replayed(&mut tree, &mut sessions, &txn);
                if recent.len() == RECENT_TXNS_KEPT {
                    recent.pop_front();
                }
                recent.push_back((zxid, e.txn.to_vec()));
                report.replayed_range = Some((report.replayed_range.map_or(zxid, |r| r.0), zxid));
                self.last_logged_zxid = zxid;
                replayed += 1;
                let now = self.disk.clock_ms();
                if now.zip(last_progress).is_some_and(|(n, l)| n >= l + 5_000) {
                    info!(
                        "replaying {}: {replayed} txns so far, at zxid 0x{zxid:x}",
                        path.display()
                    );
                    last_progress = now;
                }
            }
            let is_newest = Some(path) == newest.as_ref();
            match end {
                // What start-up loads must stay: after a process crash the tail of the log may
                // still be only in the page cache, and the next power loss would take away txns
                // the new process has already built on.
                End::Clean { .. } => self.disk.sync(path).map_err(io(path))?,
                End::Torn { offset, reason } if is_newest => {
                    warn!("{}: torn last entry at offset {offset} ({reason}); cutting the log back to the last complete entry", path.display());
                    self.disk.set_len(path, offset as u64).map_err(io(path))?;
                    self.disk.sync(path).map_err(io(path))?;
                    report.cut.push((
                        path.clone(),
                        offset as u64,
                        format!("torn last entry: {reason}"),
                    ));
                }
                // A torn last entry in an older log, with the next log starting right after the
                // last complete entry: the server crashed in that write, restarted without it
                // and carried on in a new log, reusing the zxid. ZooKeeper does not cut such an
                // entry (its reader treats it as the end of the file), so its data directories
                // can hold one; nothing is missing, so read on.
                End::Torn { offset, reason }
                    if chosen
                        .get(i + 1)
                        .is_some_and(|(next, _)| *next == file_last + 1) =>
                {
                    warn!(
                        "{}: torn last entry at offset {offset} ({reason}), never applied: the next log starts at zxid 0x{:x}, right after the last complete entry; reading on",
                        path.display(),
                        file_last + 1
                    );
                }
                End::Torn { offset, reason } | End::Corrupt { offset, reason } => {
                    if !self.opts.truncate_corrupt_log {
                        return Err(StoreError::CorruptLog {
                            path: path.clone(),
                            offset,
                            reason,
                        });
                    }
                    warn!("{}: corrupt entry at offset {offset} ({reason}); cutting the log there as requested by corral.truncateCorruptLog", path.display());
                    // Later logs go first, durably: were the cut made first, a crash before the
                    // removals would leave a gap that the next start replays across.
                    for (_, later) in &chosen[i + 1..] {
                        warn!("removing later log {} after the cut", later.display());
                        self.disk.remove(later).map_err(io(later))?;
                        report.removed.push(later.clone());
                    }
                    self.disk.set_len(path, offset as u64).map_err(io(path))?;
                    self.disk.sync(path).map_err(io(path))?;
                    report.cut.push((
                        path.clone(),
                        offset as u64,
                        format!("corrupt entry: {reason}"),
                    ));
                    break 'files;
                }
            }
        }
        if let Some((dz, dd)) = meta.digest {
            if dz == tree.last_processed_zxid() && dd != tree.digest() as i64 {
                warn!("tree digest 0x{:x} differs from the snapshot's recorded 0x{dd:x} at zxid 0x{dz:x}", tree.digest());
            }
        }
        // Ephemerals whose session is gone will never be cleaned up by an expiry: drop them now
        // (ZooKeeper does this on a standalone start, without a txn; the next snapshot has it).
        let dead: Vec<i64> = tree
            .ephemerals()
            .map(|(s, _)| *s)
            .filter(|s| !sessions.contains_key(s))
            .collect();
        report.dead_sessions = dead.len();
        for s in dead {
            tree.kill_session(s, tree.last_processed_zxid());
        }
        if self.last_logged_zxid < tree.last_processed_zxid() {
            self.last_logged_zxid = tree.last_processed_zxid();
        }
        let summary = format!(
            "{from} + {replayed} txns from {} log file(s): {} znodes, {} sessions, zxid 0x{:x}, digest {}, in {}",
            chosen.len(),
            tree.node_count(),
            sessions.len(),
            tree.last_processed_zxid(),
            tree.digest() as i64,
            took(t0, self.disk.clock_ms())
        );
        report.replayed = replayed;
        let snapshot_ms = report.snapshot_ms.unwrap_or(0);
        report.replay_ms = t0
            .zip(self.disk.clock_ms())
            .map(|(a, b)| b.saturating_sub(a).saturating_sub(snapshot_ms));
        Ok(Restored {
            tree,
            sessions: sessions.into_iter().collect(),
            recent_txns: recent.into(),
            summary,
            report,
        })
    }

    /// Queue a txn for the log; it is durable after the next `sync`.
    pub fn append(&mut self, txn: &Txn) {
        let zxid = txn.zxid();
        assert!(
            zxid > self.last_logged_zxid,
            "txn 0x{zxid:x} does not follow 0x{:x}",
            self.last_logged_zxid
        );
        self.last_logged_zxid = zxid;
        if self.pending_first_zxid.is_none() {
            self.pending_first_zxid = Some(zxid);
        }
        txnlog::encode_entry(&txn.to_bytes(), &mut self.pending);
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Write everything appended since the last sync and make it durable.
    /// Once a write or fsync has failed, this fails every time (`StoreError::Failed`).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if let Some(first) = &self.failed {
            let path = self
                .log
                .as_ref()
                .map_or_else(|| self.log_dir.clone(), |l| l.path.clone());
            return Err(StoreError::Failed {
                path,
                first: first.clone(),
            });
        }
        let r = self.write_pending();
        if let Err(e) = &r {
            self.failed = Some(e.to_string());
        }
        r
    }

    fn write_pending(&mut self) -> Result<(), StoreError> {
        let Some(first) = self.pending_first_zxid.take() else {
            return Ok(());
        };
        if self.log.is_none() {
            let path = self.log_dir.join(txnlog::file_name(first));
            self.disk
                .write_at(&path, 0, &txnlog::file_header())
                .map_err(io(&path))?;
            self.log = Some(OpenLog {
                path,
                position: txnlog::HEADER_LEN as u64,
                size: txnlog::HEADER_LEN as u64,
            });
        }
        let log = self.log.as_mut().expect("opened above");
        let end = log.position + self.pending.len() as u64;
        // Like FilePadding: judged from the position before this write, so a fresh log is
        // header + 64 MiB exactly.
        let want = txnlog::padded_size(log.position, log.size, self.opts.prealloc_bytes).max(end);
        if want > log.size {
            self.disk.set_len(&log.path, want).map_err(io(&log.path))?;
            log.size = want;
        }
        self.disk
            .write_at(&log.path, log.position, &self.pending)
            .map_err(io(&log.path))?;
        log.position = end;
        self.pending.clear();
        if self.opts.force_sync {
            self.disk.sync(&log.path).map_err(io(&log.path))?;
        }
        Ok(())
    }

    /// Start a new log file with the next txn (before a snapshot).
    pub fn roll(&mut self) -> Result<(), StoreError> {
        self.sync()?;
        self.log = None;
        Ok(())
    }

    pub fn last_logged_zxid(&self) -> i64 {
        self.last_logged_zxid
    }

    /// Write a snapshot (already serialized, uncompressed) taken at `zxid`.
    pub fn write_snapshot(&mut self, zxid: i64, raw: &[u8]) -> Result<PathBuf, StoreError> {
        let c = self.opts.compression;
        let path = self.snap_dir.join(snapshot::file_name(zxid, c));
        let bytes = snapshot::compress(raw, c);
        self.disk.write_atomic(&path, &bytes).map_err(io(&path))?;
        Ok(path)
    }

    /// Keep the newest `retain` snapshots and the logs needed to replay from the oldest kept
    /// (`PurgeTxnLog`).
    pub fn purge(&mut self, retain: usize) -> Result<usize, StoreError> {
        let snaps = self.snapshots()?;
        if snaps.len() <= retain || retain == 0 {
            return Ok(0);
        }
        let oldest_kept = snaps[retain - 1].0;
        let mut removed = 0;
        for (_, _, p) in &snaps[retain..] {
            self.disk.remove(p).map_err(io(p))?;
            removed += 1;
        }
        let logs = self.logs()?;
        // Keep the newest log that starts at or before the oldest kept snapshot, and all later.
        let keep_from = logs
            .iter()
            .rposition(|(z, _)| *z <= oldest_kept)
            .unwrap_or(0);
        for (_, p) in &logs[..keep_from] {
            if self.log.as_ref().map(|l| &l.path) != Some(p) {
                self.disk.remove(p).map_err(io(p))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Drop every logged txn after `zxid` and every snapshot newer than it, durably (a learner
    /// told TRUNC by its leader, or one that loaded a SNAP at `zxid`: nothing of a diverged
    /// history may be replayed at the next start). Returns how many txns were dropped. The next
    /// `append` starts a new log file.
    pub fn truncate_after(&mut self, zxid: i64) -> Result<usize, StoreError> {
        self.sync()?;
        self.log = None;
        let mut dropped = 0;
        for (start, path) in self.logs()? {
            let bytes = self.disk.read(&path).map_err(io(&path))?;
            let (entries, _) = txnlog::walk(&bytes, self.opts.max_txn_len);
            let zxid_of = |e: &txnlog::Entry<'_>| txnlog::decode(e).map_or(i64::MAX, |t| t.zxid());
            let Some(cut) = entries.iter().position(|e| zxid_of(e) > zxid) else {
                continue;
            };
            dropped += entries.len() - cut;
            if cut == 0 && start > zxid {
                self.disk.remove(&path).map_err(io(&path))?;
                continue;
            }
            let offset = entries[cut].offset as u64;
            self.disk.set_len(&path, offset).map_err(io(&path))?;
            self.disk.sync(&path).map_err(io(&path))?;
        }
        for (z, _, path) in self.snapshots()? {
            if z > zxid {
                self.disk.remove(&path).map_err(io(&path))?;
            }
        }
        self.last_logged_zxid = self.last_logged_zxid.min(zxid);
        Ok(dropped)
    }

    /// Remove every log file starting at or before `zxid` (none may be open). A learner does
    /// this once the leader's SNAP at `zxid` is durable as a snapshot, after `truncate_after`:
    /// those logs hold nothing a restore replays, and may hold txns of a history the snapshot
    /// replaced, which a leader's txn-log sync ([`FileStore::read_log`]) must never send.
    pub fn remove_logs_through(&mut self, zxid: i64) -> Result<usize, StoreError> {
        self.sync()?;
        self.log = None;
        let mut removed = 0;
        for (start, path) in self.logs()? {
            if start <= zxid {
                self.disk.remove(&path).map_err(io(&path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The on-disk size of the newest snapshot that looks valid (ZooKeeper's
    /// `findMostRecentSnapshot`, as `ZKDatabase.calculateTxnLogSizeLimit` uses it); 0 without one.
    pub fn latest_snapshot_len(&mut self) -> Result<u64, StoreError> {
        for (_, c, path) in self.snapshots()?.into_iter().take(SNAPSHOTS_TRIED_MAX) {
            let len = self.disk.len(&path).map_err(io(&path))?;
            let head =
                (self.disk.read_range(&path, 0, snapshot::LOOKS_VALID_HEAD)).map_err(io(&path))?;
            let tail_at = len.saturating_sub(snapshot::LOOKS_VALID_TAIL as u64);
            let tail = (self
                .disk
                .read_range(&path, tail_at, snapshot::LOOKS_VALID_TAIL))
            .map_err(io(&path))?;
            if snapshot::looks_valid_ends(len, &head, &tail, c) {
                return Ok(len);
            }
        }
        Ok(0)
    }

    /// The logged txns an ensemble leader may send a learner instead of a snapshot (ZooKeeper's
    /// `ZKDatabase.getProposalsFromTxnLog` over `FileTxnLog.read(from, fastForward=false)`):
    /// the last txn at or before `from` and every later one up to `to`, oldest first, as
    /// (zxid, serialized txn). The files read are those of `FileTxnIterator`: the newest log
    /// starting before `from` and every later one. `None`, as ZooKeeper's empty iterator, when
    /// there is no txn, when the first txn found is past `from` (the logs do not reach back),
    /// when a file or the first txn is unreadable, or when `within_limit` refuses the on-disk
    /// length of the log files after the one the first txn is in (`getStorageSize`). A file
    /// that turns unreadable later ends the txns there, as ZooKeeper's iterator stops.
    pub fn read_log(
        &mut self,
        from: i64,
        to: i64,
        within_limit: &dyn Fn(u64) -> bool,
    ) -> Result<Option<LoggedTxns>, StoreError> {
        let logs = self.logs()?;
        let first = logs.iter().rposition(|(z, _)| *z < from).unwrap_or(0);
        let chosen = &logs[first..];
        let mut out: Vec<(i64, Vec<u8>)> = Vec::new();
        let mut started = false;
        for (i, (_, path)) in chosen.iter().enumerate() {
            let bytes = self.disk.read(path).map_err(io(path))?;
            if txnlog::check_header(&bytes).is_err() {
                // An empty log (creation cut short) holds nothing; ZooKeeper moves on too.
                if bytes.len() < txnlog::HEADER_LEN && txnlog::file_header().starts_with(&bytes) {
                    continue;
                }
                return Ok(started.then_some(out));
            }
            let (entries, _) = txnlog::walk(&bytes, self.opts.max_txn_len);
            for e in &entries {
                let Ok(txn) = txnlog::decode(e) else {
                    return Ok(started.then_some(out));
                };
                let zxid = txn.zxid();
                if !started {
                    started = true;
                    if zxid > from {
                        return Ok(None);
                    }
                    let mut later = 0u64;
                    for (_, p) in &chosen[i + 1..] {
                        later += self.disk.len(p).map_err(io(p))?;
                    }
                    if !within_limit(later) {
                        info!("txn log to read from 0x{from:x} is {later} bytes, over the limit");
                        return Ok(None);
                    }
                }
                if zxid > to {
                    return Ok(Some(out));
                }
                if zxid <= from {
                    out.clear();
                }
                out.push((zxid, e.txn.to_vec()));
            }
        }
        Ok(started.then_some(out))
    }

    pub fn disk(&mut self) -> &mut D {
        &mut self.disk
    }
}

/// Apply one replayed txn with ZooKeeper's tolerance for fuzzy snapshots: NodeExists on a
/// create only raises the parent's cversion/pzxid, NoNode is ignored.
pub fn apply_replayed(
    tree: &mut DataTree,
    sessions: &mut std::collections::BTreeMap<i64, i32>,
    txn: &Txn,
) {
    match &txn.body {
        TxnBody::CreateSession(c) => {
            sessions.insert(txn.header.client_id, c.time_out);
        }
        TxnBody::CloseSession(_) => {
            sessions.remove(&txn.header.client_id);
        }
        _ => {}
    }
    let r = tree.apply(&txn.header, &txn.body);
    if txn.header.r#type == op::CREATE && r.err == corral_proto::ErrorCode::NodeExists.code() {
        if let TxnBody::Create(c) = &txn.body {
            if let Some(parent) = corral_tree::path::parent(&c.path) {
                tree.raise_cversion(parent, c.parent_cversion, txn.header.zxid);
            }
        }
    }
}

/// "N ms" between two clock readings, or "(no clock)" on a disk without one.
fn took(from: Option<u64>, to: Option<u64>) -> String {
    match from.zip(to) {
        Some((f, t)) => format!("{} ms", t.saturating_sub(f)),
        None => "(no clock)".to_string(),
    }
}
