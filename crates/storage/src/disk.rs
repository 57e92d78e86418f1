//! The file operations storage needs, behind a trait so tests can run the real storage code
//! over a disk that loses unsynced bytes, tears writes or fails. The trait is also where the
//! rest of the crate gets a clock and a second core from: `RealDisk` reads the process's
//! monotonic clock and runs work on threads, a simulated disk gives neither, so the storage
//! logic itself stays pure and deterministic.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A whole file's bytes, read into memory or mapped.
pub enum FileBytes {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Owned(v) => v,
            FileBytes::Mapped(m) => m,
        }
    }
}

pub trait Disk: Send {
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()>;
    /// A whole file read once from start to end (a snapshot or a txn log at start-up); the real
    /// disk maps it rather than copying 200 MB into fresh memory. `dense`: every byte will be
    /// read (a snapshot), so map it all up front; otherwise (a preallocated log, mostly zeros
    /// past its last entry) only the pages read are touched.
    fn read_all(&mut self, path: &Path, dense: bool) -> io::Result<FileBytes> {
        let _ = dense;
        self.read(path).map(FileBytes::Owned)
    }
    /// File names (not paths) in `dir`.
    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>>;
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>>;
    fn len(&mut self, path: &Path) -> io::Result<u64>;
    /// Up to `len` bytes at `offset` (fewer at the end of the file).
    fn read_range(&mut self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let all = self.read(path)?;
        let start = (offset as usize).min(all.len());
        Ok(all[start..(start + len).min(all.len())].to_vec())
    }
    /// Write at `offset`, creating the file if needed.
    fn write_at(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()>;
    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()>;
    /// Make the file's contents durable.
    fn sync(&mut self, path: &Path) -> io::Result<()>;
    /// Replace `path` with `bytes` atomically and durably (temp file, fsync, rename, dir fsync).
    fn write_atomic(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Remove `path` durably (unlink, then fsync the directory).
    fn remove(&mut self, path: &Path) -> io::Result<()>;
    /// Milliseconds on a monotonic clock, for the timings and progress lines of start-up;
    /// `None` (the default, a simulated disk) leaves them out.
    fn clock_ms(&self) -> Option<u64> {
        None
    }
    /// Run `a` and `b`, at the same time where there are cores for it (the real disk sums a
    /// large snapshot on a second core while the first parses it); the default runs them in
    /// turn.
    fn beside(&self, a: &mut (dyn FnMut() + Send), b: &mut dyn FnMut()) {
        a();
        b();
    }
}

/// The process's start, the zero of `RealDisk::clock_ms`.
fn process_epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// The real file system. Keeps written files open so syncs and appends are cheap.
#[derive(Default)]
pub struct RealDisk {
    open: HashMap<PathBuf, File>,
}

impl RealDisk {
    fn file(&mut self, path: &Path) -> io::Result<&File> {
        if !self.open.contains_key(path) {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            self.open.insert(path.to_path_buf(), f);
        }
        Ok(self.open.get(path).expect("inserted above"))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Disk for RealDisk {
    fn clock_ms(&self) -> Option<u64> {
        Some(process_epoch().elapsed().as_millis() as u64)
    }

    fn beside(&self, a: &mut (dyn FnMut() + Send), b: &mut dyn FnMut()) {
        std::thread::scope(|sc| {
            let other = sc.spawn(a);
            b();
            other.join().expect("the work beside does not panic");
        });
    }

    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            out.push(e?.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }

    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn read_all(&mut self, path: &Path, dense: bool) -> io::Result<FileBytes> {
        let f = File::open(path)?;
        if f.metadata()?.len() == 0 {
            return Ok(FileBytes::Owned(Vec::new()));
        }
        // SAFETY: the mapping is read-only and the files read this way do not change while it
        // is read: snapshots are written under a temporary name and renamed into place, never
        // changed afterwards; txn logs are appended to or cut only by this server, and start-up
        // (the only reader) cuts a log only after it has read it. The data directory belongs to
        // this server (another process changing its files is unsupported, as for ZooKeeper).
        let mut o = memmap2::MmapOptions::new();
        if dense {
            o.populate();
        }
        let m = unsafe { o.map(&f)? };
        let _ = m.advise(memmap2::Advice::Sequential);
        Ok(FileBytes::Mapped(m))
    }

    fn len(&mut self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }

    fn read_range(&mut self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let f = File::open(path)?;
        let mut buf = vec![0; len];
        let mut got = 0;
        while got < len {
            match f.read_at(&mut buf[got..], offset + got as u64)? {
                0 => break,
                n => got += n,
            }
        }
        buf.truncate(got);
        Ok(buf)
    }

    fn write_at(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let new = !path.exists();
        self.file(path)?.write_all_at(bytes, offset)?;
        if new {
            if let Some(d) = path.parent() {
                sync_dir(d)?;
            }
        }
        Ok(())
    }

    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()> {
        self.file(path)?.set_len(len)
    }

    fn sync(&mut self, path: &Path) -> io::Result<()> {
        self.file(path)?.sync_data()
    }

    fn write_atomic(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let tmp = path.with_extension("tmp");
        {
            let f = File::create(&tmp)?;
            f.write_all_at(bytes, 0)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(d) = path.parent() {
            sync_dir(d)?;
        }
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        self.open.remove(path);
        std::fs::remove_file(path)?;
        if let Some(d) = path.parent() {
            sync_dir(d)?;
        }
        Ok(())
    }
}

/// A disk that reads through to `inner` and keeps every change in memory, never touching
/// `inner`: runs start-up's logic as a dry run (`corral data show`). Later reads see the
/// changes, so the logic behaves as it would for real; `changes` lists what it would have done.
pub struct DryRunDisk<D: Disk> {
    inner: D,
    /// Files as changed here; `None`: removed.
    overlay: HashMap<PathBuf, Option<Vec<u8>>>,
    changes: Vec<String>,
}

impl<D: Disk> DryRunDisk<D> {
    pub fn new(inner: D) -> DryRunDisk<D> {
        DryRunDisk {
            inner,
            overlay: HashMap::new(),
            changes: Vec::new(),
        }
    }

    /// What would have been written, one line per change, in order (syncs are not listed).
    pub fn changes(&self) -> &[String] {
        &self.changes
    }

    fn load(&mut self, path: &Path) -> io::Result<&mut Vec<u8>> {
        if !self.overlay.contains_key(path) {
            let bytes = match self.inner.read(path) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            };
            self.overlay.insert(path.to_path_buf(), Some(bytes));
        }
        Ok(self
            .overlay
            .get_mut(path)
            .expect("inserted above")
            .get_or_insert_with(Vec::new))
    }
}

impl<D: Disk> Disk for DryRunDisk<D> {
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        if !dir.is_dir() {
            self.changes
                .push(format!("create directory {}", dir.display()));
        }
        Ok(())
    }

    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = self.inner.list(dir)?;
        for (p, state) in &self.overlay {
            if p.parent() != Some(dir) {
                continue;
            }
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            names.retain(|n| *n != name);
            if state.is_some() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        match self.overlay.get(path) {
            Some(Some(b)) => Ok(b.clone()),
            Some(None) => Err(io::Error::new(io::ErrorKind::NotFound, "removed (dry run)")),
            None => self.inner.read(path),
        }
    }

    fn len(&mut self, path: &Path) -> io::Result<u64> {
        match self.overlay.get(path) {
            Some(Some(b)) => Ok(b.len() as u64),
            Some(None) => Err(io::Error::new(io::ErrorKind::NotFound, "removed (dry run)")),
            None => self.inner.len(path),
        }
    }

    fn write_at(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.changes.push(format!(
            "write {} bytes to {} at offset {offset}",
            bytes.len(),
            path.display()
        ));
        let f = self.load(path)?;
        let end = offset as usize + bytes.len();
        if f.len() < end {
            f.resize(end, 0);
        }
        f[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()> {
        self.changes
            .push(format!("set the length of {} to {len}", path.display()));
        self.load(path)?.resize(len as usize, 0);
        Ok(())
    }

    fn sync(&mut self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    fn write_atomic(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.changes
            .push(format!("write {} ({} bytes)", path.display(), bytes.len()));
        self.overlay
            .insert(path.to_path_buf(), Some(bytes.to_vec()));
        Ok(())
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        self.changes.push(format!("remove {}", path.display()));
        self.overlay.insert(path.to_path_buf(), None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A dry run sees its own changes but leaves the real files alone.
    #[test]
    fn dry_run_changes_nothing_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"hello world").unwrap();
        let mut d = DryRunDisk::new(RealDisk::default());
        d.set_len(&f, 5).unwrap();
        d.sync(&f).unwrap();
        assert_eq!(d.read(&f).unwrap(), b"hello");
        d.write_at(&dir.path().join("g"), 0, b"new").unwrap();
        d.remove(&f).unwrap();
        let mut names = d.list(dir.path()).unwrap();
        names.sort();
        assert_eq!(names, vec!["g".to_string()]);
        assert_eq!(std::fs::read(&f).unwrap(), b"hello world");
        assert!(!dir.path().join("g").exists());
        assert_eq!(d.changes().len(), 3);
    }
}
