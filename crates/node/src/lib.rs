//! One corral server node as a pure state machine (STYLE.md "Sans-IO core"): it owns the tree
//! core (`corral_tree::core::Core`), the ZAB peer (`corral_zab::Peer`, in an ensemble) and the
//! storage policy over a [`corral_storage::disk::Disk`] (`FileStore`: txn log, snapshots,
//! epoch files), takes [`Event`]s and returns [`Action`]s. `corral server`
//! (`corral_server::node_task`) and the simulation (`corral_sim`) both drive this same node and
//! only move bytes, time and disk operations; every decision that joins the core, the peer and
//! storage is made here, once.
//!
//! No tokio, no clock, no threads: time comes in as [`corral_tree::core::Now`]. Storage I/O
//! goes through the `Disk` the driver hands to [`Node::start`] (the real file system, or the
//! simulation's `FaultDisk`). The work a driver may want off its thread is an action: the
//! fsync ([`Action::Sync`], answered by [`Node::handle_sync`]), a snapshot's compression and
//! write ([`Action::WriteSnapshot`]) and autopurge ([`Action::Purge`]).
//!
//! Driving it:
//! ```text
//! let mut node = Node::start(cfg, disk, now)?;
//! loop {
//!     node.handle(now, event);                 // or node.handle_timeout(now) when due
//!     while let Some(a) = node.poll_action() { // in order
//!         match a { Action::Sync => node.handle_sync(now), other => execute(other) }
//!     }
//!     sleep_until(node.poll_timeout());
//! }
//! ```
//! Ordering contract: actions are executed in the order polled. A standalone node holds the
//! replies that follow an append until [`Node::handle_sync`]; an ensemble peer ACKs only
//! after it (the peer's own contract).

mod io;
pub mod limits;
mod node;

pub use io::{Action, Event, LearnerConn, Observation};
pub use node::{
    EnsembleConfig, Node, NodeConfig, NodeCounters, ProposalSizes, SnapshotPolicy, StartError,
    StartFailed, TxnLatency,
};
