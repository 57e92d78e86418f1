//! `FileStore::truncate_after`: what a learner does on TRUNC (and after loading a SNAP). After
//! it, a restart replays nothing past the cut, from any mix of log files and snapshots, and new
//! appends continue from the cut.

mod common;

use common::{create_txn, options};

use corral_proto::txn::Txn;
use corral_storage::disk::RealDisk;
use corral_storage::snapshot::{self};
use corral_storage::store::FileStore;
use corral_tree::DataTree;

#[test]
fn truncate_drops_later_txns_logs_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = FileStore::new(RealDisk::default(), options(dir.path())).unwrap();
    s.restore().unwrap();
    let mut tree = DataTree::new();
    for z in 1..=12 {
        let t = create_txn(z);
        tree.apply(&t.header, &t.body);
        s.append(&t);
        s.sync().unwrap();
        if z == 4 || z == 8 {
            s.roll().unwrap();
            s.write_snapshot(z, &snapshot::serialize(&tree, &Default::default()))
                .unwrap();
        }
    }
    assert_eq!(s.truncate_after(6).unwrap(), 6);
    assert_eq!(s.last_logged_zxid(), 6);
    s.append(&create_txn(7));
    s.sync().unwrap();
    drop(s);
    let mut s = FileStore::new(RealDisk::default(), options(dir.path())).unwrap();
    let r = s.restore().unwrap();
    assert_eq!(r.tree.last_processed_zxid(), 7);
    // The replayed txns after the newest snapshot (zxid 4) are kept for DIFF, oldest first.
    let recent: Vec<i64> = r.recent_txns.iter().map(|(z, _)| *z).collect();
    assert_eq!(recent, vec![5, 6, 7]);
    assert_eq!(Txn::from_bytes(&r.recent_txns[2].1).unwrap(), create_txn(7));
    for z in 1..=7 {
        assert!(r.tree.get(&format!("/n{z}")).is_some(), "/n{z}");
    }
    assert!(r.tree.get("/n8").is_none());
    assert!(r.tree.get("/n12").is_none());
}
