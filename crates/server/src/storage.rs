//! The narrow interface between the server and durable storage. The core hands over every
//! applied txn in order; the server calls `sync` before it releases any reply that follows
//! those txns. This issue keeps the data in memory; the durability issue puts ZooKeeper's txn
//! log and snapshots behind the same trait.

use corral_proto::txn::Txn;
use corral_tree::DataTree;

pub trait Storage: Send {
    /// The tree to start from (and a description for the start-up log line).
    fn load(&mut self) -> std::io::Result<(DataTree, String)>;
    /// Queue a txn (already applied in memory) for persistence, in zxid order.
    fn append(&mut self, txn: &Txn) -> std::io::Result<()>;
    /// Make every appended txn durable.
    fn sync(&mut self) -> std::io::Result<()>;
}

/// Keeps nothing: a restart starts from an empty tree. Counts txns for `mntr`.
#[derive(Default)]
pub struct MemoryStorage {
    pub appended: u64,
}

impl Storage for MemoryStorage {
    fn load(&mut self) -> std::io::Result<(DataTree, String)> {
        Ok((DataTree::new(), "in-memory storage (nothing persisted yet)".to_string()))
    }

    fn append(&mut self, _txn: &Txn) -> std::io::Result<()> {
        self.appended += 1;
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
