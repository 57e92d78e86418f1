//! ZooKeeper 3.8's on-disk formats and data directory rules: txn logs, snapshots, epoch files,
//! and restoring a tree from them (reference §5–6). The formats are pure functions over bytes;
//! the directory logic reads and writes through the small `Disk` trait so tests can inject
//! faults.

pub mod disk;
pub mod epoch;
pub mod faultdisk;
pub mod limits;
pub mod snapshot;
pub mod store;
pub mod txnlog;
