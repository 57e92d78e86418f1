//! Every bound the server's I/O keeps, with the reason for it.

use std::time::Duration;

/// Most events handled before their outputs are flushed together (group commit: one fsync
/// covers every write in the batch).
pub const EVENT_BATCH_MAX: usize = 1024;

/// Bound of the queue from connection readers to the node task; readers wait when it is full,
/// which pushes back on clients instead of growing memory.
pub const EVENT_QUEUE_BOUND: usize = 4096;

/// A connection that has not sent its ConnectRequest within this time is closed
/// (`zookeeper.nio.sessionlessCnxnTimeout` default).
pub const SESSIONLESS_TIMEOUT: Duration = Duration::from_secs(10);

/// The least a client connection may have in replies and notifications it has not read yet
/// before it is cut off (a client that stops reading must not grow the server's memory); at
/// least twice `jute.maxbuffer` more, so that no single reply is ever too much.
pub const UNSENT_BYTES_MIN: usize = 64 << 20;

/// Connect timeout for election and quorum connections.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times a learner tries to reach its leader (ZooKeeper: 5).
pub const LEADER_CONNECT_TRIES: u32 = 5;

/// The pause between those tries (ZooKeeper's `leaderConnectDelayDuringRetryMs`, 100 ms): the
/// leader-elect may not listen yet.
pub const LEADER_CONNECT_DELAY: Duration = Duration::from_millis(100);

const _: () = assert!(EVENT_BATCH_MAX > 0 && EVENT_QUEUE_BOUND >= EVENT_BATCH_MAX);
const _: () = assert!(LEADER_CONNECT_TRIES >= 1);
