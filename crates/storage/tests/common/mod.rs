//! Helpers shared by the storage integration tests.

use std::path::Path;

use corral_proto::records::Acl;
use corral_proto::txn::{CreateTxn, Txn, TxnBody, TxnHeader};
use corral_storage::snapshot::Compression;
use corral_storage::store::StoreOptions;

/// Preallocation of the test logs (small, so files stay small).
pub const PREALLOC: u64 = 4096;

/// A data directory with logs and snapshots in `dir`, fsync on, no compression.
pub fn options(dir: &Path) -> StoreOptions {
    StoreOptions {
        data_dir: dir.to_path_buf(),
        data_log_dir: dir.to_path_buf(),
        force_sync: true,
        prealloc_bytes: PREALLOC,
        compression: Compression::None,
        max_txn_len: 1 << 20,
        trust_empty_snapshot: false,
        truncate_corrupt_log: false,
    }
}

/// A create of `/n<zxid>` at `zxid`, so a test can tell every txn's node apart.
#[allow(dead_code)] // not every test file creates nodes
pub fn create_txn(zxid: i64) -> Txn {
    Txn {
        header: TxnHeader {
            client_id: 1,
            cxid: zxid as i32,
            zxid,
            time: 7,
            r#type: 1,
        },
        body: TxnBody::Create(CreateTxn {
            path: format!("/n{zxid}"),
            data: None,
            acl: vec![Acl::new(31, "world", "anyone")],
            ephemeral: false,
            parent_cversion: -1,
        }),
        digest: None,
    }
}
