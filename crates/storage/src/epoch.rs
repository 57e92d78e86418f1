//! `acceptedEpoch` / `currentEpoch` in the snapshot directory (reference §4.9): the epoch as
//! decimal ASCII without a newline, replaced atomically (`<name>.tmp`, fsync, rename). Only
//! ensemble members write them; a standalone server never does, as in ZooKeeper.

use std::path::Path;

use corral_proto::Epoch;

use crate::disk::Disk;

pub const ACCEPTED: &str = "acceptedEpoch";
pub const CURRENT: &str = "currentEpoch";

pub fn encode(epoch: Epoch) -> Vec<u8> {
    epoch.0.to_string().into_bytes()
}

/// Parse an epoch file's contents (surrounding whitespace tolerated, as Java's readLine is).
pub fn parse(bytes: &[u8]) -> Option<Epoch> {
    std::str::from_utf8(bytes)
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Epoch)
}

/// Read an epoch file; `Ok(None)` when it does not exist.
pub fn read<D: Disk>(disk: &mut D, snap_dir: &Path, name: &str) -> std::io::Result<Option<Epoch>> {
    match disk.read(&snap_dir.join(name)) {
        Ok(b) => parse(&b).map(Some).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{name}: not a decimal epoch"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn write<D: Disk>(
    disk: &mut D,
    snap_dir: &Path,
    name: &str,
    epoch: Epoch,
) -> std::io::Result<()> {
    disk.write_atomic(&snap_dir.join(name), &encode(epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    // ZooKeeper writes "1", no newline; reading tolerates a trailing newline.
    #[test]
    fn format() {
        assert_eq!(encode(Epoch(1)), b"1");
        assert_eq!(parse(b"12"), Some(Epoch(12)));
        assert_eq!(parse(b"12\n"), Some(Epoch(12)));
        assert_eq!(parse(b"x"), None);
    }

    // Round trip through the real disk, atomically replaced.
    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = crate::disk::RealDisk::default();
        assert_eq!(read(&mut d, dir.path(), CURRENT).unwrap(), None);
        write(&mut d, dir.path(), CURRENT, Epoch(3)).unwrap();
        write(&mut d, dir.path(), CURRENT, Epoch(4)).unwrap();
        assert_eq!(read(&mut d, dir.path(), CURRENT).unwrap(), Some(Epoch(4)));
        assert_eq!(std::fs::read(dir.path().join(CURRENT)).unwrap(), b"4");
    }
}
