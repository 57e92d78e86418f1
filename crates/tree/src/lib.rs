//! The ZooKeeper data model as plain data: the data tree and its digest, ACL checks and auth
//! providers, the watch registry, the session table, and the prep step that turns a client
//! request into a txn (or an error) exactly as ZooKeeper 3.8 does.
//!
//! Pure: no I/O, no threads, and no clock is read here. Callers pass the time in.

pub mod acl;
pub mod core;
pub mod path;
pub mod prep;
pub mod sasl;
pub mod session;
pub mod tree;
pub mod watch;

pub use tree::{AclRef, DataTree, Node, NodeId, NodeKind, Trigger};
pub use watch::{ConnId, WatchManager, WatchMode};
