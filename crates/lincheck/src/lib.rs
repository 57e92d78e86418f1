//! corral-lincheck: checks a recorded ZooKeeper client history against ZooKeeper's guarantees.
//! Pure: no I/O, no clock, no dependencies. It must not know how the history was produced.
//!
//! # Guarantees checked
//! From the ZooKeeper Programmer's Guide, "Consistency Guarantees": sequential consistency
//! (a client's updates apply in send order), atomicity, single system image (a client never
//! sees an older view after a newer one, even across servers), and timeliness via `sync`. Plus
//! the ZooKeeper Overview's "all updates are linearizable" and the watch rules of the
//! Programmer's Guide ("ZooKeeper Watches": a client sees a watch event before it sees the new
//! data; one-shot watches fire once; persistent watches keep firing).
//!
//! # The model
//! A sequential ZooKeeper 3.8 data tree (`model::Tree`). Root `/` exists with an all-zero Stat;
//! `History::initial` adds nodes such as `/zookeeper`. Persisted cversion counts child creates;
//! clients see `2 * cversion - numChildren` (DataNode.copyStat), i.e. creates + deletes, and the
//! sequential suffix is the persisted cversion, zero-padded to 10 digits (PrepRequestProcessor).
//! Create checks parent NoNode, then NodeExists, then NoChildrenForEphemerals; delete checks
//! NoNode, BadVersion, then NotEmpty. A failed write is an error txn: it consumes its zxid and
//! changes nothing. A multi applies all ops at one zxid or none; a failed multi's results must
//! be `Res::Multi` of `Err(0)` before the failing op, its code, then `Err(-2)` after it
//! (DataTree.processTxn). CloseSession and `SystemWhat::SessionClosed` delete the session's
//! ephemerals.
//!
//! ACLs: only `world:anyone` entries (the model has no authenticated identities; other schemes
//! make the history `Outcome::Invalid`). Create needs CREATE on the parent, delete DELETE on
//! the parent, setData WRITE, setACL ADMIN (checked against aversion, which it bumps), check,
//! getData and getChildren READ, getACL READ or ADMIN, exists nothing (3.8.0); an empty ACL is
//! InvalidACL (-114), a missing permission NoAuth (-102), in PrepRequestProcessor's order.
//! Containers carry owner `i64::MIN`, TTL nodes `0xFF00.. | ttl`; both may have children.
//! `SystemWhat::Deleted` (the reaper's deleteContainer) may only take an existing, childless
//! container that once had a child (`maxNeverUsedIntervalMs` = 0, the default) or TTL node.
//!
//! # What is checked
//! 1. Known writes: unique zxids (also against system writes); real-time order (A completed
//!    before B invoked implies zxid(A) < zxid(B)); replaying all writes in zxid order reproduces
//!    every observed result exactly (codes, paths with sequence numbers, stats).
//! 2. Reads equal the state after all writes with zxid <= the read's reply zxid (data, Stat
//!    except ctime/mtime, children as a set).
//! 3. Per session: replies in send (FIFO) order, reply zxids never decrease.
//! 4. Sync: its zxid is >= every write completed before it was invoked, and so is every later
//!    read of its session.
//! 5. Watches (ZooKeeper 3.8 WatchManager/DataTree rules): expected events per session are
//!    computed from registrations (a read with `watch`, registered at its reply zxid r; Exists
//!    registers even on a missing node, GetData/GetChildren only on success; AddWatch) and the
//!    triggers of writes with zxid > r. Each expected event must arrive before any reply with
//!    zxid >= the trigger's, events arrive in trigger order (events of one txn in any order), no
//!    event may be unexplained or delivered twice. Persistent watches keep firing, recursive
//!    ones cover descendants and never give NodeChildrenChanged. A session's watches end at its
//!    close/expiry txn (events from that txn itself are optional).
//! 6. Unknown writes (`Ret::Unknown`): each is either dropped or placed at a free zxid that is
//!    greater than every write completed before its invoke and every earlier op of its session,
//!    and below any later completed op of its session. A DFS over placements (tried "as late as
//!    possible" first) replays the history; the first consistent one wins.
//! 7. Optional `committed_zxids`: every committed zxid is explained by exactly one write.
//! 8. System deletes take only what the reaper may take (above).
//!
//! # Not checked
//! ctime/mtime, ACL schemes other than world (rejected as `Outcome::Invalid`), when a TTL
//! node's time is up (the history has no server clocks: the simulation checks it), watch
//! notifications withheld for lack of READ, quotas, client-side watcher dispatch, and the exact coalescing of events across a
//! reconnect: after `Received::Reconnected`, events owed up to the first reply after it may be
//! coalesced (SetWatches fires one event per watch) or missing; they are still never spurious.
//! Reads, syncs and AddWatch with `Ret::Unknown` are ignored.
//!
//! # Search bound
//! `limits::SEARCH_STEPS_MAX` steps; when exceeded the answer is `Outcome::Inconclusive`, never
//! pass or fail. Without unknown writes the check is one replay: O(n log n).

pub mod check;
pub mod history;
pub mod limits;
pub mod model;

pub use check::{check, res_matches, Outcome, Summary, Violation, ViolationKind};
pub use history::{
    perms, Acl, AddWatchMode, Call, CreateMode, EventKind, History, Op, Received, Res, Ret,
    Session, Stat, SystemWhat, SystemWrite,
};
