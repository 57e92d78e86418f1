//! Value parsing helpers: numbers, booleans, ports and addresses as ZooKeeper reads them, with
//! errors that name the key and line.

use std::net::{IpAddr, Ipv4Addr};

use super::ConfigError;

pub(super) fn invalid(
    key: &str,
    line: Option<usize>,
    value: &str,
    reason: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        line,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// `Integer.parseInt`: decimal with optional sign, 32-bit.
pub(super) fn parse_i32(key: &str, line: Option<usize>, value: &str) -> Result<i32, ConfigError> {
    value
        .parse::<i32>()
        .map_err(|_| invalid(key, line, value, "not an integer"))
}

/// `Long.parseLong`.
pub(super) fn parse_i64(key: &str, line: Option<usize>, value: &str) -> Result<i64, ConfigError> {
    value
        .parse::<i64>()
        .map_err(|_| invalid(key, line, value, "not an integer"))
}

/// A non-negative `Integer.parseInt` value.
pub(super) fn parse_u32(key: &str, line: Option<usize>, value: &str) -> Result<u32, ConfigError> {
    let n = parse_i32(key, line, value)?;
    u32::try_from(n).map_err(|_| invalid(key, line, value, "must not be negative"))
}

/// `QuorumPeerConfig.parseBoolean`: `true`/`false`, case-insensitive.
pub(super) fn parse_bool(key: &str, line: Option<usize>, value: &str) -> Result<bool, ConfigError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(invalid(key, line, value, "expected 'true' or 'false'"))
    }
}

/// A port number; ZooKeeper treats 0 as "not set".
pub(super) fn parse_port(
    key: &str,
    line: Option<usize>,
    value: &str,
) -> Result<Option<u16>, ConfigError> {
    let n = parse_i32(key, line, value)?;
    match u16::try_from(n) {
        Ok(0) => Ok(None),
        Ok(p) => Ok(Some(p)),
        Err(_) => Err(invalid(key, line, value, "port out of range 0-65535")),
    }
}

/// `Integer.decode`/`Long.decode`, which `Integer.getInteger` and
/// `Long.getLong` use for system properties: optional sign, then `0x`, `0X`
/// or `#` for hex, a leading `0` for octal, else decimal.
pub(super) fn java_decode(s: &str) -> Option<i64> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(r) = rest.strip_prefix("0x").or(rest.strip_prefix("0X")) {
        (16, r)
    } else if let Some(r) = rest.strip_prefix('#') {
        (16, r)
    } else if rest.len() > 1 && rest.starts_with('0') {
        (8, &rest[1..])
    } else {
        (10, rest)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i64::from_str_radix(digits, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// An IP literal (IPv6 optionally bracketed) or `localhost`. Host names are
/// not resolved here: this module does no I/O.
pub(super) fn parse_ip_literal(s: &str) -> Option<IpAddr> {
    if s.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

pub(super) fn parse_ip(key: &str, line: Option<usize>, value: &str) -> Result<IpAddr, ConfigError> {
    parse_ip_literal(value).ok_or_else(|| {
        invalid(
            key,
            line,
            value,
            "not an IP address (corral does not resolve host names in its configuration)",
        )
    })
}
