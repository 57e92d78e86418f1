//! Restoring data directories the way ZooKeeper 3.8 leaves them (on the real file system).

mod common;

use common::options;

use std::path::{Path, PathBuf};

use corral_proto::records::op;
use corral_proto::txn::{CreateSessionTxn, Txn, TxnBody, TxnHeader};
use corral_storage::disk::RealDisk;
use corral_storage::snapshot::{self, Meta};
use corral_storage::store::{FileStore, StoreError};
use corral_storage::txnlog;

fn session_txn(zxid: i64) -> Txn {
    Txn {
        header: TxnHeader {
            client_id: 0x100 + zxid,
            cxid: 0,
            zxid,
            time: 1_700_000_000_000 + zxid,
            r#type: op::CREATE_SESSION,
        },
        body: TxnBody::CreateSession(CreateSessionTxn { time_out: 30000 }),
        digest: None,
    }
}

/// A log file as ZooKeeper writes it: header, entries, zero padding.
fn write_log(dir: &Path, zxids: std::ops::RangeInclusive<i64>) -> PathBuf {
    let path = dir
        .join("version-2")
        .join(txnlog::file_name(*zxids.start()));
    let mut bytes = txnlog::file_header().to_vec();
    for z in zxids {
        txnlog::encode_entry(&session_txn(z).to_bytes(), &mut bytes);
    }
    bytes.resize(bytes.len() + 4096, 0);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// snapshot.0 of an empty tree, and log.1 with zxids 1..=3 whose last entry was torn (its
/// second half never reached the disk). Returns log.1's path and its bytes.
fn torn_history(dir: &Path) -> (PathBuf, Vec<u8>) {
    let mut s = FileStore::new(RealDisk::default(), options(dir)).unwrap();
    let r = s.restore().unwrap();
    s.write_snapshot(0, &snapshot::serialize(&r.tree, &Meta::default()))
        .unwrap();
    let log = write_log(dir, 1..=3);
    let mut bytes = std::fs::read(&log).unwrap();
    let (entries, _) = txnlog::walk(&bytes, 1 << 20);
    let last = entries.last().unwrap();
    let (off, len) = (last.offset, last.txn.len());
    bytes[off + 12 + len / 2..off + 13 + len].fill(0);
    std::fs::write(&log, &bytes).unwrap();
    (log, bytes)
}

/// Bug: ZooKeeper does not cut a torn last entry when it restarts after a crash; its reader ends
/// the file there, and the restarted server writes the torn txn's zxid and the next ones into a
/// new log. corral refused such a directory ("corrupt txn log ... the entries after it would be
/// lost") whenever it had to read that older log (e.g. when the newest snapshot is damaged),
/// though nothing is missing and ZooKeeper starts on it (crates/cli/tests/durability.rs,
/// zookeeper_restarted_after_a_torn_write_then_corral). Fix: a torn end of an older log is the
/// end of that file when the next log starts right after its last complete entry.
#[test]
fn regression_torn_end_of_an_older_log_continued_by_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let (log1, bytes) = torn_history(tmp.path());
    // The restarted server loaded 1..=2 and went on with 3 and 4 in log.3.
    write_log(tmp.path(), 3..=4);
    let mut s = FileStore::new(RealDisk::default(), options(tmp.path())).unwrap();
    let r = s.restore().expect("starts, as ZooKeeper does");
    assert_eq!(r.tree.last_processed_zxid(), 4);
    let ids: Vec<i64> = r.sessions.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        [0x101, 0x102, 0x103, 0x104],
        "the torn txn is the one log.3 starts with"
    );
    assert_eq!(
        std::fs::read(&log1).unwrap(),
        bytes,
        "the older log is left as ZooKeeper left it"
    );
}

/// The same torn end with a gap after it is still refused: txns would be missing.
#[test]
fn torn_end_of_an_older_log_with_a_gap_after_it_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (log1, _) = torn_history(tmp.path());
    write_log(tmp.path(), 4..=5);
    let mut s = FileStore::new(RealDisk::default(), options(tmp.path())).unwrap();
    match s.restore() {
        Err(StoreError::CorruptLog { path, .. }) => assert_eq!(path, log1),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started across a gap"),
    }
}
