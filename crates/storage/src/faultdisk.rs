//! An in-memory `Disk` that misbehaves the way real disks do, driven by one seed: it loses
//! unsynced bytes on a simulated power loss, tears the last write, fails an operation with EIO
//! or ENOSPC at a chosen or random point, and counts syncs. Tests run the real `FileStore` over
//! it; it is not behind `cfg(test)` so other crates' tests can use it too.
//!
//! Model. Every file has *durable* contents (what a power loss keeps for sure) and a list of
//! *pending* operations since its last `sync` (writes, length changes, a removal); the visible
//! contents are the durable ones with the pending operations applied. The durability rules are
//! those `RealDisk` promises, and no more:
//!
//! - `sync(path)` makes all of that file's pending operations durable.
//! - `write_at` on a file that does not exist creates it durably but empty (`RealDisk` fsyncs
//!   the directory after a create); the bytes stay pending. The directory fsync also makes the
//!   directory's pending removals durable.
//! - `write_atomic` replaces the file durably and atomically (temp file, fsync, rename, dir
//!   fsync); if it fails, a partial, unsynced `<name>.tmp` may be left behind.
//! - `remove` is durable (`RealDisk` fsyncs the directory after the unlink).
//! - `set_len` is pending like a write.
//!
//! `crash()` simulates a power loss: for each file it keeps, as the seed decides, none, all, or
//! a prefix of the pending operations, where the first operation not kept may be a write torn
//! after a random number of bytes. Nothing is reordered: a later write never survives without
//! the earlier ones to the same file.
//!
//! Cloning a `FaultDisk` gives another handle to the same disk, so a test can keep one while
//! the store owns the other.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::disk::Disk;

/// Linux errno values for the injected errors.
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// The kinds of `Disk` operation, for choosing which ones may fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    CreateDir,
    List,
    Read,
    Len,
    Write,
    SetLen,
    Sync,
    WriteAtomic,
    Remove,
}

impl OpKind {
    pub const ALL: [OpKind; 9] = [
        OpKind::CreateDir,
        OpKind::List,
        OpKind::Read,
        OpKind::Len,
        OpKind::Write,
        OpKind::SetLen,
        OpKind::Sync,
        OpKind::WriteAtomic,
        OpKind::Remove,
    ];
    /// The operations that change the disk.
    pub const MUTATING: [OpKind; 5] = [
        OpKind::Write,
        OpKind::SetLen,
        OpKind::Sync,
        OpKind::WriteAtomic,
        OpKind::Remove,
    ];
}

/// The error an injected fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// EIO: an I/O error.
    Io,
    /// ENOSPC: the disk is full.
    NoSpace,
    /// EIO or ENOSPC, chosen by the seed each time.
    Either,
}

/// When injected faults fire. The default injects nothing.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Which operations are eligible to fail.
    pub ops: BTreeSet<OpKind>,
    /// Fail the eligible operation with this index (0 = the next one), counting from when the
    /// plan was set.
    pub fail_at: Option<u64>,
    /// Fail each eligible operation with this probability.
    pub probability: f64,
    pub fault: Fault,
    /// Once a fault has fired, every later eligible operation fails too (a dead disk).
    pub sticky: bool,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan {
            ops: BTreeSet::new(),
            fail_at: None,
            probability: 0.0,
            fault: Fault::Either,
            sticky: false,
        }
    }
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    /// Fail the `n`-th (from 0) of the given operations from now.
    pub fn at(n: u64, ops: &[OpKind], fault: Fault) -> FaultPlan {
        FaultPlan {
            ops: ops.iter().copied().collect(),
            fail_at: Some(n),
            fault,
            ..FaultPlan::default()
        }
    }

    /// Fail each of the given operations with probability `p`.
    pub fn random(p: f64, ops: &[OpKind], fault: Fault) -> FaultPlan {
        FaultPlan {
            ops: ops.iter().copied().collect(),
            probability: p,
            fault,
            ..FaultPlan::default()
        }
    }
}

/// One fault that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub op: OpKind,
    pub path: PathBuf,
    /// The raw OS error code returned (5 EIO or 28 ENOSPC).
    pub errno: i32,
}

#[derive(Debug, Clone)]
enum Pending {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
    Remove,
}

#[derive(Debug, Clone, Default)]
struct FileState {
    /// What a power loss keeps for sure; `None`: the file does not durably exist.
    durable: Option<Vec<u8>>,
    /// Operations since the last sync, oldest first. A `Remove` is always last.
    pending: Vec<Pending>,
}

fn apply(contents: &mut Option<Vec<u8>>, op: &Pending) {
    match op {
        Pending::Write { offset, bytes } => {
            let c = contents.get_or_insert_with(Vec::new);
            let end = *offset as usize + bytes.len();
            if c.len() < end {
                c.resize(end, 0);
            }
            c[*offset as usize..end].copy_from_slice(bytes);
        }
        Pending::SetLen(n) => contents.get_or_insert_with(Vec::new).resize(*n as usize, 0),
        Pending::Remove => *contents = None,
    }
}

impl FileState {
    fn current(&self) -> Option<Vec<u8>> {
        let mut c = self.durable.clone();
        for op in &self.pending {
            apply(&mut c, op);
        }
        c
    }

    fn exists(&self) -> bool {
        match self.pending.last() {
            Some(Pending::Remove) => false,
            Some(_) => true,
            None => self.durable.is_some(),
        }
    }
}

struct Inner {
    rng: StdRng,
    dirs: BTreeSet<PathBuf>,
    files: BTreeMap<PathBuf, FileState>,
    plan: FaultPlan,
    /// Eligible operations seen since the plan was set.
    eligible_seen: u64,
    fired: bool,
    injected: Vec<Injected>,
    syncs: u64,
    syncs_by_path: BTreeMap<PathBuf, u64>,
    /// A line per file for the last crash: what was kept.
    last_crash: Vec<String>,
}

/// The in-memory faulty disk. See the module documentation for the model.
#[derive(Clone)]
pub struct FaultDisk {
    inner: Arc<Mutex<Inner>>,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", path.display()),
    )
}

impl FaultDisk {
    pub fn new(seed: u64) -> FaultDisk {
        let mut dirs = BTreeSet::new();
        dirs.insert(PathBuf::from("/"));
        FaultDisk {
            inner: Arc::new(Mutex::new(Inner {
                rng: StdRng::seed_from_u64(seed),
                dirs,
                files: BTreeMap::new(),
                plan: FaultPlan::none(),
                eligible_seen: 0,
                fired: false,
                injected: Vec::new(),
                syncs: 0,
                syncs_by_path: BTreeMap::new(),
                last_crash: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock is a test failure already; keep the state readable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replace the fault plan; counting for `fail_at` starts again.
    pub fn set_plan(&self, plan: FaultPlan) {
        let mut g = self.lock();
        g.plan = plan;
        g.eligible_seen = 0;
        g.fired = false;
    }

    /// Every fault that fired so far.
    pub fn injected(&self) -> Vec<Injected> {
        self.lock().injected.clone()
    }

    /// Successful `sync` calls so far.
    pub fn sync_count(&self) -> u64 {
        self.lock().syncs
    }

    /// Successful `sync` calls on `path` so far.
    pub fn sync_count_of(&self, path: &Path) -> u64 {
        self.lock().syncs_by_path.get(path).copied().unwrap_or(0)
    }

    /// The visible contents of `path`, if it exists.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        self.lock().files.get(path).and_then(FileState::current)
    }

    /// What a power loss would keep of `path` for sure.
    pub fn durable(&self, path: &Path) -> Option<Vec<u8>> {
        self.lock().files.get(path).and_then(|f| f.durable.clone())
    }

    /// Whether `path` has operations not yet made durable.
    pub fn has_unsynced(&self, path: &Path) -> bool {
        self.lock()
            .files
            .get(path)
            .is_some_and(|f| !f.pending.is_empty())
    }

    /// Paths of the files that exist now.
    pub fn files(&self) -> Vec<PathBuf> {
        self.lock()
            .files
            .iter()
            .filter(|(_, f)| f.exists())
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Replace a file's contents durably, bypassing faults: for planting corruption.
    pub fn overwrite_durably(&self, path: &Path, bytes: Vec<u8>) {
        let mut g = self.lock();
        let f = g.files.entry(path.to_path_buf()).or_default();
        f.durable = Some(bytes);
        f.pending.clear();
    }

    /// A process crash: everything written stays (it is in the page cache); only the writer's
    /// state is lost. Nothing to do on the disk, kept for symmetry with `crash`.
    pub fn crash_process(&self) {
        self.lock().last_crash = vec!["process crash: every write kept".into()];
    }

    /// A power loss. Returns a line per file with unsynced operations saying what was kept.
    pub fn crash(&self) -> Vec<String> {
        let mut g = self.lock();
        let Inner { rng, files, .. } = &mut *g;
        let mut report = Vec::new();
        for (path, f) in files.iter_mut() {
            if f.pending.is_empty() {
                continue;
            }
            let n = f.pending.len();
            // A third of the time nothing survives, a third everything, else a prefix.
            let keep = match rng.gen_range(0..3) {
                0 => 0,
                1 => n,
                _ => rng.gen_range(0..=n),
            };
            let mut c = f.durable.clone();
            for op in &f.pending[..keep] {
                apply(&mut c, op);
            }
            let mut torn = String::new();
            if keep < n && rng.gen_bool(0.5) {
                if let Pending::Write { offset, bytes } = &f.pending[keep] {
                    let cut = rng.gen_range(0..=bytes.len());
                    apply(
                        &mut c,
                        &Pending::Write {
                            offset: *offset,
                            bytes: bytes[..cut].to_vec(),
                        },
                    );
                    torn = format!(
                        ", write at {offset} torn after {cut} of {} bytes",
                        bytes.len()
                    );
                }
            }
            report.push(format!(
                "{}: kept {keep} of {n} unsynced ops{torn}",
                path.display()
            ));
            f.durable = c;
            f.pending.clear();
        }
        files.retain(|_, f| f.durable.is_some());
        g.last_crash = report.clone();
        report
    }

    /// What the last `crash` kept.
    pub fn last_crash(&self) -> Vec<String> {
        self.lock().last_crash.clone()
    }
}

impl Inner {
    /// Decide whether this operation fails; on failure records it and returns the error.
    fn check(&mut self, op: OpKind, path: &Path) -> io::Result<()> {
        if !self.plan.ops.contains(&op) {
            return Ok(());
        }
        let index = self.eligible_seen;
        self.eligible_seen += 1;
        let fire = (self.fired && self.plan.sticky)
            || self.plan.fail_at == Some(index)
            || (self.plan.probability > 0.0 && self.rng.gen_bool(self.plan.probability.min(1.0)));
        if !fire {
            return Ok(());
        }
        self.fired = true;
        let errno = match self.plan.fault {
            Fault::Io => EIO,
            Fault::NoSpace => ENOSPC,
            Fault::Either => {
                if self.rng.gen_bool(0.5) {
                    EIO
                } else {
                    ENOSPC
                }
            }
        };
        self.injected.push(Injected {
            op,
            path: path.to_path_buf(),
            errno,
        });
        Err(io::Error::from_raw_os_error(errno))
    }

    fn parent_exists(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(d) if self.dirs.contains(d) => Ok(()),
            _ => Err(not_found(path)),
        }
    }

    /// A directory fsync: removals of files in `dir` become durable.
    fn sync_dir(&mut self, dir: &Path) {
        for (p, f) in self.files.iter_mut() {
            if p.parent() == Some(dir) && matches!(f.pending.last(), Some(Pending::Remove)) {
                f.durable = None;
                f.pending.clear();
            }
        }
        self.files
            .retain(|_, f| f.durable.is_some() || !f.pending.is_empty());
    }

    fn existing(&self, path: &Path) -> io::Result<&FileState> {
        self.files
            .get(path)
            .filter(|f| f.exists())
            .ok_or_else(|| not_found(path))
    }
}

impl Disk for FaultDisk {
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        let mut g = self.lock();
        g.check(OpKind::CreateDir, dir)?;
        for a in dir.ancestors() {
            g.dirs.insert(a.to_path_buf());
        }
        Ok(())
    }

    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>> {
        let mut g = self.lock();
        g.check(OpKind::List, dir)?;
        if !g.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let mut names: Vec<String> = g
            .files
            .iter()
            .filter(|(p, f)| p.parent() == Some(dir) && f.exists())
            .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        // Directories list in no particular order; make callers sort.
        names.reverse();
        Ok(names)
    }

    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        let mut g = self.lock();
        g.check(OpKind::Read, path)?;
        Ok(g.existing(path)?.current().unwrap_or_default())
    }

    fn len(&mut self, path: &Path) -> io::Result<u64> {
        let mut g = self.lock();
        g.check(OpKind::Len, path)?;
        Ok(g.existing(path)?.current().map_or(0, |c| c.len() as u64))
    }

    fn write_at(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut g = self.lock();
        g.parent_exists(path)?;
        let failed = g.check(OpKind::Write, path);
        let exists = g.files.get(path).is_some_and(FileState::exists);
        if !exists {
            // Created: durable but empty, and the directory fsync makes removals durable.
            let dir = path.parent().expect("checked above").to_path_buf();
            g.sync_dir(&dir);
            g.files.insert(
                path.to_path_buf(),
                FileState {
                    durable: Some(Vec::new()),
                    pending: Vec::new(),
                },
            );
        }
        let bytes = match &failed {
            // A failed write may still have written a prefix (a short write).
            Err(_) => {
                let cut = g.rng.gen_range(0..=bytes.len());
                &bytes[..cut]
            }
            Ok(()) => bytes,
        };
        if !bytes.is_empty() {
            let f = g.files.get_mut(path).expect("exists or created above");
            f.pending.push(Pending::Write {
                offset,
                bytes: bytes.to_vec(),
            });
        }
        failed
    }

    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()> {
        let mut g = self.lock();
        g.check(OpKind::SetLen, path)?;
        g.parent_exists(path)?;
        if !g.files.get(path).is_some_and(FileState::exists) {
            let dir = path.parent().expect("checked above").to_path_buf();
            g.sync_dir(&dir);
            g.files.insert(
                path.to_path_buf(),
                FileState {
                    durable: Some(Vec::new()),
                    pending: Vec::new(),
                },
            );
        }
        g.files
            .get_mut(path)
            .expect("exists")
            .pending
            .push(Pending::SetLen(len));
        Ok(())
    }

    fn sync(&mut self, path: &Path) -> io::Result<()> {
        let mut g = self.lock();
        g.existing(path)?;
        // A failed fsync leaves the pending bytes pending: they may or may not reach the disk.
        g.check(OpKind::Sync, path)?;
        let f = g.files.get_mut(path).expect("exists");
        f.durable = f.current();
        f.pending.clear();
        g.syncs += 1;
        *g.syncs_by_path.entry(path.to_path_buf()).or_default() += 1;
        Ok(())
    }

    fn write_atomic(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut g = self.lock();
        g.parent_exists(path)?;
        if let Err(e) = g.check(OpKind::WriteAtomic, path) {
            // The temp file may be left behind, partly written and unsynced.
            if g.rng.gen_bool(0.5) {
                let cut = g.rng.gen_range(0..=bytes.len());
                let tmp = path.with_extension("tmp");
                let dir = path.parent().expect("checked above").to_path_buf();
                g.sync_dir(&dir);
                g.files.insert(
                    tmp,
                    FileState {
                        durable: Some(Vec::new()),
                        pending: vec![Pending::Write {
                            offset: 0,
                            bytes: bytes[..cut].to_vec(),
                        }],
                    },
                );
            }
            return Err(e);
        }
        let dir = path.parent().expect("checked above").to_path_buf();
        g.sync_dir(&dir);
        g.files.insert(
            path.to_path_buf(),
            FileState {
                durable: Some(bytes.to_vec()),
                pending: Vec::new(),
            },
        );
        g.syncs += 1;
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        let mut g = self.lock();
        g.check(OpKind::Remove, path)?;
        g.existing(path)?;
        g.files
            .get_mut(path)
            .expect("exists")
            .pending
            .push(Pending::Remove);
        let dir = path
            .parent()
            .expect("an existing file has a parent")
            .to_path_buf();
        g.sync_dir(&dir);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn disk() -> FaultDisk {
        let mut d = FaultDisk::new(1);
        d.create_dir_all(Path::new("/d")).unwrap();
        d
    }

    // Synced bytes survive every crash; unsynced ones survive only as a prefix.
    #[test]
    fn crash_keeps_synced_bytes_and_a_prefix_of_the_rest() {
        for seed in 0..200 {
            let mut d = FaultDisk::new(seed);
            d.create_dir_all(Path::new("/d")).unwrap();
            d.write_at(&p("/d/f"), 0, b"durable").unwrap();
            d.sync(&p("/d/f")).unwrap();
            d.write_at(&p("/d/f"), 7, b"-one").unwrap();
            d.write_at(&p("/d/f"), 11, b"-two").unwrap();
            d.crash();
            let c = d.contents(&p("/d/f")).unwrap();
            let full = b"durable-one-two";
            assert!(c.len() >= 7 && c.len() <= full.len(), "seed {seed}: {c:?}");
            assert_eq!(&c[..], &full[..c.len()], "seed {seed}");
        }
    }

    // A created file exists after a crash even if nothing in it was synced.
    #[test]
    fn creation_is_durable_contents_are_not() {
        let mut d = disk();
        d.write_at(&p("/d/f"), 0, b"x").unwrap();
        for _ in 0..10 {
            d.crash();
            assert!(d.contents(&p("/d/f")).is_some());
        }
    }

    // A removal is durable at once, like RealDisk's unlink + directory fsync.
    #[test]
    fn removals_are_durable() {
        let mut d = disk();
        d.write_at(&p("/d/a"), 0, b"a").unwrap();
        d.sync(&p("/d/a")).unwrap();
        d.write_at(&p("/d/a"), 1, b"b").unwrap();
        d.remove(&p("/d/a")).unwrap();
        d.crash();
        assert!(d.list(Path::new("/d")).unwrap().is_empty());
    }

    // The n-th eligible operation fails with the chosen errno, and a failed sync keeps the
    // bytes unsynced.
    #[test]
    fn injected_faults_fire_where_planned() {
        let mut d = disk();
        d.set_plan(FaultPlan::at(1, &[OpKind::Sync], Fault::NoSpace));
        d.write_at(&p("/d/f"), 0, b"one").unwrap();
        d.sync(&p("/d/f")).unwrap();
        d.write_at(&p("/d/f"), 3, b"two").unwrap();
        let e = d.sync(&p("/d/f")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(ENOSPC));
        assert!(d.has_unsynced(&p("/d/f")));
        assert_eq!(d.sync_count(), 1);
        assert_eq!(d.injected().len(), 1);
        d.sync(&p("/d/f")).unwrap();
        assert_eq!(d.durable(&p("/d/f")).unwrap(), b"onetwo");
    }

    // A sticky plan keeps failing after the first fault.
    #[test]
    fn sticky_faults_keep_failing() {
        let mut d = disk();
        d.set_plan(FaultPlan {
            sticky: true,
            ..FaultPlan::at(0, &[OpKind::Write], Fault::Io)
        });
        for _ in 0..3 {
            assert_eq!(
                d.write_at(&p("/d/f"), 0, b"x").unwrap_err().raw_os_error(),
                Some(EIO)
            );
        }
    }
}
