//! ZooKeeper 3.8 wire formats: the jute codec, client protocol records, requests and replies,
//! txn records and error codes.
//!
//! Pure: no I/O, no clock, no threads. Everything here takes bytes and returns values (or the
//! reverse), so the server, the storage layer, tools and tests share one codec.

pub mod error;
pub mod ids;
pub mod jute;
pub mod quorum;
pub mod records;
pub mod request;
pub mod txn;

pub use error::{DecodeError, ErrorCode};
pub use ids::{Epoch, ServerId, SessionId, Zxid};
pub use jute::{Jute, Reader, WriteJute};
