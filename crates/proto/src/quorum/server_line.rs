//! The value of a `server.<sid>=` line, read the way ZooKeeper's `QuorumServer(sid, addressStr)`
//! reads it, for zoo.cfg, dynamic config files and the config string peers exchange alike:
//! `host:qport:eport[:type][|host:qport:eport[:type]…][;[clientHost:]clientPort]`.
//! Java's splitting rules hold throughout (`String.split` drops trailing empty pieces, so
//! `h:1:2:` and `h:1:2;` are valid), as do `ConfigUtils.getHostAndPort`'s for `[v6]` hosts.
//!
//! What a caller allows (several addresses only with `multiAddress.enabled`, hosts that are
//! not IP literals) is its own policy: this module reads, it does not decide.

use std::fmt;

/// Java's `String.split(sep)`: trailing empty pieces are dropped (and "" gives one piece "").
pub fn java_split(s: &str, sep: char) -> Vec<&str> {
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts == [""] && !s.is_empty() {
        parts.clear();
    }
    parts
}

/// `ConfigUtils.getHostAndPort`: `host:port[:…]`, or `[v6]:port[:…]` with the host taken from
/// inside the brackets (the character after `]` is skipped unchecked, as Java does).
pub fn host_and_port(s: &str) -> Result<Vec<String>, String> {
    if let Some(inner) = s.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            return Err(format!("{s} starts with '[' but has no matching ']:'"));
        };
        let host = &inner[..close];
        let after = &inner[close + 1..];
        if after.chars().count() == 1 {
            return Err(format!("{s} doesn't have a port after colon"));
        }
        if after.is_empty() {
            return Ok(vec![host.to_string()]);
        }
        let tail = after.get(1..).unwrap_or("");
        let mut parts = vec![host.to_string()];
        parts.extend(java_split(tail, ':').into_iter().map(str::to_string));
        return Ok(parts);
    }
    Ok(java_split(s, ':').into_iter().map(str::to_string).collect())
}

/// A port as `Integer.parseInt` then a range check would take it (surrounding blanks allowed).
fn port(text: &str, what: &'static str) -> Result<u16, ServerLineError> {
    let t = text.trim();
    t.parse::<i32>()
        .ok()
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| ServerLineError::Port {
            what,
            text: t.to_string(),
        })
}

/// One quorum address of a server line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    /// Trimmed, without brackets for IPv6 literals.
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
}

/// A parsed server line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLine {
    /// At least one; more only with '|' (multi-address).
    pub addresses: Vec<ServerAddress>,
    /// The type given (`observer` / `participant`, any case); `None` when no address gave one.
    pub observer: Option<bool>,
    /// `;[clientHost:]clientPort`: the host is `None` for a bare port.
    pub client: Option<(Option<String>, u16)>,
}

/// Why a server line does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLineError {
    /// Not `host:port:port[:type][;[clientHost:]clientPort]` at all.
    Format,
    /// `getHostAndPort` refused an address (unbalanced brackets, no port after them).
    Address(String),
    Port {
        what: &'static str,
        text: String,
    },
    EqualPorts,
    UnknownType(String),
    MixedTypes,
}

impl fmt::Display for ServerLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerLineError::Format => f.write_str(
                "expected host:port:port[:participant|:observer][;[clientHost:]clientPort]",
            ),
            ServerLineError::Address(why) => f.write_str(why),
            ServerLineError::Port { what, text } => {
                write!(f, "{what} '{text}' is not a port number")
            }
            ServerLineError::EqualPorts => {
                f.write_str("quorum and election port must be different")
            }
            ServerLineError::UnknownType(t) => write!(f, "unrecognised peer type '{t}'"),
            ServerLineError::MixedTypes => {
                f.write_str("multiple addresses must have the same role")
            }
        }
    }
}

impl std::error::Error for ServerLineError {}

impl ServerLine {
    pub fn parse(value: &str) -> Result<ServerLine, ServerLineError> {
        let server_client = java_split(value, ';');
        if server_client.is_empty() || server_client.len() > 2 {
            return Err(ServerLineError::Format);
        }
        let client = match server_client.get(1) {
            None => None,
            Some(c) => {
                let parts = host_and_port(c.trim()).map_err(ServerLineError::Address)?;
                match parts.as_slice() {
                    [p] => Some((None, port(p, "client port")?)),
                    [h, p] => Some((Some(h.trim().to_string()), port(p, "client port")?)),
                    _ => return Err(ServerLineError::Format),
                }
            }
        };
        let mut addresses = Vec::new();
        let mut observer: Option<bool> = None;
        for address in java_split(server_client[0], '|') {
            let parts = host_and_port(address.trim()).map_err(ServerLineError::Address)?;
            if !(3..=4).contains(&parts.len()) {
                return Err(ServerLineError::Format);
            }
            let quorum_port = port(&parts[1], "quorum port")?;
            let election_port = port(&parts[2], "election port")?;
            if quorum_port == election_port {
                return Err(ServerLineError::EqualPorts);
            }
            let kind = match parts.get(3).map(|t| t.trim().to_ascii_lowercase()) {
                None => None,
                Some(t) if t == "observer" => Some(true),
                Some(t) if t == "participant" => Some(false),
                Some(t) => return Err(ServerLineError::UnknownType(t)),
            };
            if let (Some(a), Some(b)) = (observer, kind) {
                if a != b {
                    return Err(ServerLineError::MixedTypes);
                }
            }
            observer = observer.or(kind);
            addresses.push(ServerAddress {
                host: parts[0].trim().to_string(),
                quorum_port,
                election_port,
            });
        }
        if addresses.is_empty() {
            return Err(ServerLineError::Format);
        }
        Ok(ServerLine {
            addresses,
            observer,
            client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(host: &str, q: u16, e: u16) -> ServerAddress {
        ServerAddress {
            host: host.into(),
            quorum_port: q,
            election_port: e,
        }
    }

    // Java's split rules: a trailing ':' or ';' is no extra piece.
    #[test]
    fn trailing_separators_are_dropped() {
        let l = ServerLine::parse("h:1:2:").unwrap();
        assert_eq!(
            (l.addresses, l.observer, l.client),
            (vec![addr("h", 1, 2)], None, None)
        );
        assert_eq!(ServerLine::parse("h:1:2;").unwrap().client, None);
        assert_eq!(java_split("", ':'), vec![""]);
        assert_eq!(java_split(":::", ':'), Vec::<&str>::new());
    }

    #[test]
    fn types_clients_and_v6() {
        let l = ServerLine::parse("[::1]:2888:3888:Observer ; [fe80::1]:2183").unwrap();
        assert_eq!(l.addresses, vec![addr("::1", 2888, 3888)]);
        assert_eq!(l.observer, Some(true));
        assert_eq!(l.client, Some((Some("fe80::1".into()), 2183)));
        let l = ServerLine::parse("a:1:2:participant|b:3:4;2181").unwrap();
        assert_eq!(l.addresses, vec![addr("a", 1, 2), addr("b", 3, 4)]);
        assert_eq!((l.observer, l.client), (Some(false), Some((None, 2181))));
    }

    #[test]
    fn malformed_lines() {
        use ServerLineError::*;
        let err = |s: &str| ServerLine::parse(s).unwrap_err();
        assert_eq!(err("a:1"), Format);
        assert_eq!(err("a:1:2;b;c"), Format);
        assert_eq!(err("a:1:1"), EqualPorts);
        assert_eq!(err("a:1:2:voter"), UnknownType("voter".into()));
        assert_eq!(err("a:1:2:observer|b:3:4:participant"), MixedTypes);
        assert!(matches!(
            err("a:x:2"),
            Port {
                what: "quorum port",
                ..
            }
        ));
        assert!(matches!(
            err("a:1:70000"),
            Port {
                what: "election port",
                ..
            }
        ));
        assert!(matches!(err("[::1:2:3"), Address(_)));
        assert_eq!(err(""), Format);
    }
}
