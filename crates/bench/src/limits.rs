//! Every bound of the load generator in one place: queues, loops and waits are all bounded.

use std::time::Duration;

/// Most sessions (and most watchers) one run opens.
pub const SESSIONS_MAX: u32 = 10_000;
/// Most requests one session keeps in flight.
pub const WINDOW_MAX: u32 = 10_000;
/// Largest value written: ZooKeeper's default `jute.maxbuffer` (0xfffff) less room for the
/// path and the record around it.
pub const VALUE_BYTES_MAX: u32 = 0xfffff - 0x1000;
/// Largest key space.
pub const KEYS_MAX: u64 = 10_000_000;
/// Keys created when neither `--keys` nor a smaller `--count` says otherwise (as zkbench).
pub const KEYS_DEFAULT: u64 = 10_000;
/// Largest reply frame accepted. A getChildren of a large key space can exceed
/// `jute.maxbuffer`, which servers do not apply to what they send.
pub const FRAME_BYTES_MAX: usize = 64 << 20;
/// Requests in flight per session while creating keys and cleaning up.
pub const SETUP_WINDOW: u32 = 256;
/// The longest a run may last when only `--count` bounds it (zkbench gives up after 300 s).
pub const RUN_TIMEOUT_DEFAULT: Duration = Duration::from_secs(300);
/// Extra time a `--duration` run gets to drain its window before it is a failure.
pub const DRAIN_GRACE: Duration = Duration::from_secs(30);
/// TCP connect plus handshake of one session.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Waiting for the reply to closeSession.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole of `--cleanup`.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Creating the prefix and the keys.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(300);
/// Bytes read from a socket at a time.
pub const READ_CHUNK_BYTES: usize = 64 << 10;

const _: () = assert!(WINDOW_MAX as u64 * (VALUE_BYTES_MAX as u64 + 256) < (16u64 << 30));
const _: () = assert!(KEYS_DEFAULT <= KEYS_MAX);
const _: () = assert!(SETUP_WINDOW <= WINDOW_MAX);
const _: () = assert!((VALUE_BYTES_MAX as usize) < FRAME_BYTES_MAX);
