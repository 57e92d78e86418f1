//! ZooKeeper's quorum protocol as pure state machines (STYLE.md "Sans-IO core"): Fast Leader
//! Election (`election`) and the ZAB peer roles. Messages, ticks and storage completions go in
//! with the time; messages to send, storage writes and committed txns come out, in an order
//! the glue must keep. No I/O, no clock, no threads.

pub mod election;
mod leader;
mod learner;
pub mod limits;
pub mod peer;
pub mod quorum;
mod replica;
pub mod sync;
pub mod types;

pub use leader::OP_SYNC;
pub use peer::Peer;
pub use types::{ConnId, Durable, Input, Output, PeerConfig};
