//! Tokio glue for `corral server`: configuration, the client listener and connections, the
//! quorum sockets, the task that drives the pure `corral_node::Node`, and four-letter words.
//! Module dependencies run one way: `server` → `node_task` → {`quorum`, `fourlw`} → `wire`;
//! `client` → `wire`.

mod admin;
mod client;
pub mod config;
mod conn_throttle;
pub mod fourlw;
pub mod kerberos;
mod limits;
mod metrics;
mod metrics_http;
mod node_task;
pub mod quorum;
mod quorum_auth;
pub mod server;
pub mod stats;
pub mod tls;
mod tls_crl;
mod wire;

pub use config::ServerConfig;
pub use server::{Server, ServerError};
