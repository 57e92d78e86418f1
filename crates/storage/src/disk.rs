//! The file operations storage needs, behind a trait so tests can run the real storage code
//! over a disk that loses unsynced bytes, tears writes or fails.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub trait Disk: Send {
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()>;
    /// File names (not paths) in `dir`.
    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>>;
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>>;
    fn len(&mut self, path: &Path) -> io::Result<u64>;
    /// Write at `offset`, creating the file if needed.
    fn write_at(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()>;
    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()>;
    /// Make the file's contents durable.
    fn sync(&mut self, path: &Path) -> io::Result<()>;
    /// Replace `path` with `bytes` atomically and durably (temp file, fsync, rename, dir fsync).
    fn write_atomic(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Remove `path` durably (unlink, then fsync the directory).
    fn remove(&mut self, path: &Path) -> io::Result<()>;
}

/// The real file system. Keeps written files open so syncs and appends are cheap.
#[derive(Default)]
pub struct RealDisk {
    open: HashMap<PathBuf, File>,
}

impl RealDisk {
    fn file(&mut self, path: &Path) -> io::Result<&File> {
        if !self.open.contains_key(path) {
            let f = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
            self.open.insert(path.to_path_buf(), f);
        }
        Ok(self.open.get(path).expect("inserted above"))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Disk for RealDisk {
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

    fn len(&mut self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
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
