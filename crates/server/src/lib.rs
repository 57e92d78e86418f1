//! Tokio glue for the corral standalone server: configuration, the client listener and
//! connections, the task that drives the sans-IO core, four-letter words, and the storage seam.

pub mod config;
pub mod ensemble;
pub mod fourlw;
pub mod server;
pub mod stats;
pub mod storage;

pub use config::ServerConfig;
pub use server::{Server, ServerError};
