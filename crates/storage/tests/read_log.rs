//! `FileStore::read_log` and `latest_snapshot_len`: what an ensemble leader reads from its txn
//! logs to sync a learner behind its in-memory committed log (ZooKeeper's
//! `ZKDatabase.getProposalsFromTxnLog` over `FileTxnLog.read(zxid, false)`, and
//! `calculateTxnLogSizeLimit`).

mod common;

use common::{create_txn, options, PREALLOC};

use corral_proto::txn::Txn;
use corral_storage::disk::RealDisk;
use corral_storage::snapshot::{self};
use corral_storage::store::FileStore;
use corral_tree::DataTree;

/// Txns 5..=30 in three logs (log.5, log.b, log.15), snapshots at 10 and 20.
fn store(dir: &std::path::Path) -> FileStore<RealDisk> {
    let mut s = FileStore::new(RealDisk::default(), options(dir)).unwrap();
    s.restore().unwrap();
    let mut tree = DataTree::new();
    for z in 5..=30 {
        let t = create_txn(z);
        tree.apply(&t.header, &t.body);
        s.append(&t);
        s.sync().unwrap();
        if z == 10 || z == 20 {
            s.roll().unwrap();
            s.write_snapshot(z, &snapshot::serialize(&tree, &Default::default()))
                .unwrap();
        }
    }
    s
}

fn zxids(r: Option<Vec<(i64, Vec<u8>)>>) -> Option<Vec<i64>> {
    r.map(|v| v.into_iter().map(|(z, _)| z).collect())
}

const ANY: &dyn Fn(u64) -> bool = &|_| true;

#[test]
fn reads_from_the_last_txn_at_or_before_from_through_to() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    assert_eq!(
        zxids(s.read_log(7, 13, ANY).unwrap()),
        Some((7..=13).collect())
    );
    // Across files, to the end when `to` is past it.
    assert_eq!(
        zxids(s.read_log(9, 99, ANY).unwrap()),
        Some((9..=30).collect())
    );
    // `from` at a file's first txn: the previous file is where ZooKeeper starts reading.
    assert_eq!(zxids(s.read_log(11, 12, ANY).unwrap()), Some(vec![11, 12]));
    // Bytes are the serialized txn.
    let r = s.read_log(12, 12, ANY).unwrap().unwrap();
    assert_eq!(Txn::from_bytes(&r[0].1).unwrap(), create_txn(12));
}

#[test]
fn nothing_when_the_logs_do_not_reach_back_or_exceed_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    // The first txn logged is 5.
    assert_eq!(zxids(s.read_log(4, 30, ANY).unwrap()), None);
    assert_eq!(zxids(s.read_log(5, 6, ANY).unwrap()), Some(vec![5, 6]));
    // The size checked is that of the files after the one holding the first txn read
    // (`FileTxnIterator.getStorageSize`): from 7, log.b and log.15; from 22, none.
    let later = std::cell::Cell::new(None);
    let seen = |n: u64| {
        later.set(Some(n));
        n <= 1000
    };
    assert_eq!(zxids(s.read_log(7, 30, &seen).unwrap()), None);
    let two = std::fs::metadata(dir.path().join("version-2/log.b"))
        .unwrap()
        .len()
        + std::fs::metadata(dir.path().join("version-2/log.15"))
            .unwrap()
            .len();
    assert_eq!(later.get(), Some(two));
    assert!(two >= 2 * PREALLOC, "preallocated lengths count");
    assert_eq!(
        zxids(s.read_log(22, 30, &seen).unwrap()),
        Some((22..=30).collect())
    );
    assert_eq!(later.get(), Some(0));
    // The newest snapshot's size is what the limit scales.
    let snap = std::fs::metadata(dir.path().join("version-2/snapshot.14"))
        .unwrap()
        .len();
    assert_eq!(s.latest_snapshot_len().unwrap(), snap);
}

#[test]
fn no_logs_and_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = FileStore::new(RealDisk::default(), options(dir.path())).unwrap();
    s.restore().unwrap();
    assert_eq!(zxids(s.read_log(0, 10, ANY).unwrap()), None);
    assert_eq!(s.latest_snapshot_len().unwrap(), 0);
}

#[test]
fn logs_through_a_loaded_snapshot_are_removed_and_no_longer_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path());
    // As if a learner loaded a SNAP at 20: log.5 and log.b go, log.15 (21..=30) stays.
    assert_eq!(s.remove_logs_through(20).unwrap(), 2);
    assert_eq!(zxids(s.read_log(7, 30, ANY).unwrap()), None);
    assert_eq!(zxids(s.read_log(22, 23, ANY).unwrap()), Some(vec![22, 23]));
}
