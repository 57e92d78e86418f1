//! Decode errors and ZooKeeper's client-visible error codes (`KeeperException.Code`).

/// Why bytes from the network or disk could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unexpected end of input at offset {offset} (needed {needed} more bytes)")]
    UnexpectedEof { offset: usize, needed: usize },
    #[error("invalid length {len} at offset {offset}")]
    BadLength { offset: usize, len: i64 },
    #[error("unknown request type {0}")]
    UnknownOpCode(i32),
    #[error("invalid {what}: {value}")]
    Invalid { what: &'static str, value: i64 },
    /// Text that does not parse: a quorum config line or an election address. `text` is the
    /// offending piece, cut to 128 characters so a hostile peer cannot bloat the log.
    #[error("malformed {what}: {text:?}")]
    Malformed { what: &'static str, text: String },
}

impl DecodeError {
    /// A `Malformed` error quoting at most the first 128 characters of `text`.
    pub fn malformed(what: &'static str, text: &str) -> DecodeError {
        DecodeError::Malformed {
            what,
            text: text.chars().take(128).collect(),
        }
    }
}

macro_rules! error_codes {
    ($($name:ident = $v:expr),* $(,)?) => {
        /// A ZooKeeper error code as carried in `ReplyHeader.err` and multi results.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum ErrorCode { $($name = $v),* }

        impl ErrorCode {
            /// The wire value.
            pub fn code(self) -> i32 {
                self as i32
            }

            pub fn from_code(code: i32) -> Option<ErrorCode> {
                match code { $($v => Some(ErrorCode::$name),)* _ => None }
            }

            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];
        }
    };
}

error_codes! {
    Ok = 0,
    SystemError = -1,
    RuntimeInconsistency = -2,
    DataInconsistency = -3,
    ConnectionLoss = -4,
    MarshallingError = -5,
    Unimplemented = -6,
    OperationTimeout = -7,
    BadArguments = -8,
    UnknownSession = -12,
    NewConfigNoQuorum = -13,
    ReconfigInProgress = -14,
    ApiError = -100,
    NoNode = -101,
    NoAuth = -102,
    BadVersion = -103,
    NoChildrenForEphemerals = -108,
    NodeExists = -110,
    NotEmpty = -111,
    SessionExpired = -112,
    InvalidCallback = -113,
    InvalidAcl = -114,
    AuthFailed = -115,
    SessionMoved = -118,
    NotReadOnly = -119,
    EphemeralOnLocalSession = -120,
    NoWatcher = -121,
    RequestTimeout = -122,
    ReconfigDisabled = -123,
    SessionClosedRequireSaslAuth = -124,
    QuotaExceeded = -125,
    ThrottledOp = -127,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}

impl std::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins every code to `KeeperException.Code` (reference §2.9): a renumbering would silently
    /// break every client.
    #[test]
    fn codes_match_zookeeper() {
        let expected: &[(ErrorCode, i32)] = &[
            (ErrorCode::Ok, 0),
            (ErrorCode::SystemError, -1),
            (ErrorCode::RuntimeInconsistency, -2),
            (ErrorCode::DataInconsistency, -3),
            (ErrorCode::ConnectionLoss, -4),
            (ErrorCode::MarshallingError, -5),
            (ErrorCode::Unimplemented, -6),
            (ErrorCode::OperationTimeout, -7),
            (ErrorCode::BadArguments, -8),
            (ErrorCode::UnknownSession, -12),
            (ErrorCode::NewConfigNoQuorum, -13),
            (ErrorCode::ReconfigInProgress, -14),
            (ErrorCode::ApiError, -100),
            (ErrorCode::NoNode, -101),
            (ErrorCode::NoAuth, -102),
            (ErrorCode::BadVersion, -103),
            (ErrorCode::NoChildrenForEphemerals, -108),
            (ErrorCode::NodeExists, -110),
            (ErrorCode::NotEmpty, -111),
            (ErrorCode::SessionExpired, -112),
            (ErrorCode::InvalidCallback, -113),
            (ErrorCode::InvalidAcl, -114),
            (ErrorCode::AuthFailed, -115),
            (ErrorCode::SessionMoved, -118),
            (ErrorCode::NotReadOnly, -119),
            (ErrorCode::EphemeralOnLocalSession, -120),
            (ErrorCode::NoWatcher, -121),
            (ErrorCode::RequestTimeout, -122),
            (ErrorCode::ReconfigDisabled, -123),
            (ErrorCode::SessionClosedRequireSaslAuth, -124),
            (ErrorCode::QuotaExceeded, -125),
            (ErrorCode::ThrottledOp, -127),
        ];
        assert_eq!(expected.len(), ErrorCode::ALL.len());
        for &(e, c) in expected {
            assert_eq!(e.code(), c);
            assert_eq!(ErrorCode::from_code(c), Some(e));
        }
        assert_eq!(ErrorCode::from_code(-126), None);
    }
}
