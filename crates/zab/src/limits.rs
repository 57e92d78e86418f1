//! Every bound the ZAB state machines keep, with the reason for it. (Timeouts and intervals
//! that are ZooKeeper's protocol defaults stay beside the code that uses them.)

/// Notifications held while LOOKING but before [`Election::start`]; ZooKeeper's `recvqueue` is
/// unbounded, but every queued entry is consumed at once after `start`, so this only bounds
/// a burst that arrives before the first round.
pub const RECV_QUEUE_MAX: usize = 1024;

/// Peers whose last notification we remember for re-sending on reconnect (voters and the
/// non-voters that asked us).
pub const LAST_SENT_MAX: usize = 4096;

const _: () = assert!(RECV_QUEUE_MAX > 0 && LAST_SENT_MAX > 0);
