//! Errors of the load generator. Messages carry their cause inline (the `corral` binary prints
//! one line per error).

use std::collections::BTreeMap;
use std::io;

use corral_proto::{DecodeError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot start the runtime: {0}")]
    Runtime(io::Error),
    #[error("invalid option: {0}")]
    Usage(String),
    #[error("{addr}: {error}")]
    Io { addr: String, error: io::Error },
    #[error("{addr}: server refused the session (handshake answered with session id 0)")]
    Refused { addr: String },
    #[error("{addr}: malformed frame from the server: {error}")]
    Decode { addr: String, error: DecodeError },
    #[error("{addr}: reply frame of {len} bytes is out of bounds")]
    FrameLength { addr: String, len: i64 },
    #[error("{addr}: reply for xid {xid}, which is not in flight")]
    UnexpectedXid { addr: String, xid: i32 },
    #[error("{addr}: server closed the connection")]
    Closed { addr: String },
    #[error("{what}: timed out")]
    Timeout { what: String },
    #[error("{what} failed with {}", code_name(*.code))]
    Server { what: String, code: i32 },
    #[error("{errors} of {count} requests failed: {}", codes_text(.by_code))]
    RequestsFailed {
        errors: u64,
        count: u64,
        by_code: BTreeMap<i32, u64>,
    },
}

/// `NodeExists (-110)`, or the bare number for a code ZooKeeper 3.8 does not define.
pub fn code_name(code: i32) -> String {
    match ErrorCode::from_code(code) {
        Some(c) => c.to_string(),
        None => format!("error {code}"),
    }
}

fn codes_text(m: &BTreeMap<i32, u64>) -> String {
    let parts: Vec<String> = m
        .iter()
        .map(|(c, n)| format!("{n} x {}", code_name(*c)))
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_zookeeper_codes() {
        let e = BenchError::RequestsFailed {
            errors: 3,
            count: 10,
            by_code: BTreeMap::from([(-110, 2), (-4, 1)]),
        };
        assert_eq!(
            e.to_string(),
            "3 of 10 requests failed: 2 x NodeExists (-110), 1 x ConnectionLoss (-4)"
        );
        assert_eq!(code_name(-999), "error -999");
    }
}
