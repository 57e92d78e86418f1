//! The ensemble config string (§4.1, `QuorumMaj`, `QuorumPeer.QuorumServer`): `server.<sid>=`
//! lines and `version=`, as NEWLEADER and notifications carry it and `/zookeeper/config` holds it.

use super::{format_address, ServerLine};
use crate::error::DecodeError;

/// One `server.<sid>=` line of a config string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuorumMember {
    pub sid: i64,
    /// Without brackets, also for IPv6 literals.
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub observer: bool,
    /// `;clientHost:clientPort`; `None` when the client port comes from static config.
    pub client: Option<(String, u16)>,
}

impl QuorumMember {
    /// `<host>:<qport>:<eport>:participant|observer[;<clientHost>:<clientPort>]`, as
    /// `QuorumServer.toString`.
    pub fn to_config_value(&self) -> String {
        let mut s = format_address(&self.host, self.quorum_port);
        s.push(':');
        s.push_str(&self.election_port.to_string());
        s.push_str(if self.observer {
            ":observer"
        } else {
            ":participant"
        });
        if let Some((host, port)) = &self.client {
            s.push(';');
            s.push_str(&format_address(host, *port));
        }
        s
    }

    /// Parse the value of a `server.<sid>=` line like `QuorumServer(sid, addressStr)`:
    /// `host:qport:eport[:type][;[clientHost:]clientPort]`, the type (trimmed, any case)
    /// defaulting to participant, a bare client port meaning host `0.0.0.0`. Multiple
    /// '|'-separated addresses are rejected, as Java does with multi-address disabled (the
    /// default); so are equal quorum and election ports.
    pub fn parse(sid: i64, value: &str) -> Result<QuorumMember, DecodeError> {
        let line =
            ServerLine::parse(value).map_err(|_| DecodeError::malformed("quorum member", value))?;
        let [a] = &line.addresses[..] else {
            return Err(DecodeError::malformed(
                "quorum member (multi-address)",
                value,
            ));
        };
        Ok(QuorumMember {
            sid,
            host: a.host.clone(),
            quorum_port: a.quorum_port,
            election_port: a.election_port,
            observer: line.observer.unwrap_or(false),
            client: (line.client).map(|(h, p)| (h.unwrap_or_else(|| "0.0.0.0".into()), p)),
        })
    }
}

/// An ensemble config: what NEWLEADER and notifications carry and `/zookeeper/config` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    pub members: Vec<QuorumMember>,
    pub version: i64,
}

impl QuorumConfig {
    /// `QuorumMaj.toString`: one `server.<sid>=<value>` line per member in ascending sid order
    /// (what 3.8 was seen to send for small sids), joined by "\n", then `version=<hex>` (no
    /// `0x`, lowercase, two's complement for a negative version as `Long.toHexString`), with no
    /// trailing newline.
    pub fn to_config_string(&self) -> String {
        let mut members: Vec<&QuorumMember> = self.members.iter().collect();
        members.sort_by_key(|m| m.sid);
        let mut s = String::new();
        for m in members {
            s.push_str(&format!("server.{}={}\n", m.sid, m.to_config_value()));
        }
        s.push_str(&format!("version={:x}", self.version));
        s
    }

    /// Parse a config string the way `QuorumPeer.configFromString` does for a majority quorum:
    /// `key=value` lines (blank lines and `#`/`!` comments skipped, whitespace around key and
    /// value trimmed), keys `server.<sid>` and `version` (hex, default 0). Members come back in
    /// ascending sid order, in any order on input.
    ///
    /// Errors: any other key (including hierarchical `group`/`weight`, which we do not
    /// support), a line without '=', a bad sid or version, a malformed member, or a sid given
    /// twice (Java's `Properties` would keep the last one silently). A version is read as
    /// unsigned 64-bit hex so that our own output for a negative version parses back.
    pub fn parse(s: &str) -> Result<QuorumConfig, DecodeError> {
        let mut members: Vec<QuorumMember> = Vec::new();
        let mut version = 0;
        for line in s.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(DecodeError::malformed("config line", line));
            };
            let (key, value) = (key.trim(), value.trim());
            if let Some(sid) = key.strip_prefix("server.") {
                let sid: i64 = sid
                    .parse()
                    .map_err(|_| DecodeError::malformed("server id", key))?;
                if members.iter().any(|m| m.sid == sid) {
                    return Err(DecodeError::malformed("config (duplicate server)", key));
                }
                members.push(QuorumMember::parse(sid, value)?);
            } else if key == "version" {
                version = u64::from_str_radix(value, 16)
                    .map_err(|_| DecodeError::malformed("config version", value))?
                    as i64;
            } else {
                return Err(DecodeError::malformed("config key", key));
            }
        }
        members.sort_by_key(|m| m.sid);
        Ok(QuorumConfig { members, version })
    }

    /// The `version=<hex>` of a config string, read without parsing the rest (so a config
    /// with lines corral does not model still shows its version); 0 when absent or unreadable.
    pub fn version_in(config: &[u8]) -> i64 {
        let text = String::from_utf8_lossy(config);
        text.lines()
            .rev()
            .filter_map(|l| l.trim().strip_prefix("version="))
            .find_map(|v| u64::from_str_radix(v.trim(), 16).ok().map(|v| v as i64))
            .unwrap_or(0)
    }

    /// The config string with its `version=` line replaced by `version=<hex version>`, last
    /// (as `QuorumMaj.toString` puts it); every other non-blank line is kept as it is.
    pub fn with_version(config: &[u8], version: i64) -> Vec<u8> {
        let text = String::from_utf8_lossy(config);
        let mut out = String::new();
        for line in text.lines() {
            if line.trim().is_empty() || line.trim().starts_with("version=") {
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&format!("version={version:x}"));
        out.into_bytes()
    }

    /// `(sid, observer)` of every member, in sid order.
    pub fn roles(&self) -> Vec<(i64, bool)> {
        self.members.iter().map(|m| (m.sid, m.observer)).collect()
    }

    /// Sids of the participants (voters), in member order.
    pub fn voters(&self) -> impl Iterator<Item = i64> + '_ {
        self.members.iter().filter(|m| !m.observer).map(|m| m.sid)
    }

    pub fn member(&self, sid: i64) -> Option<&QuorumMember> {
        self.members.iter().find(|m| m.sid == sid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::tests::{three_node_config, THREE_NODE_CONFIG};

    /// §4.1: the 138-byte config 3.8 sent for a three-node ensemble, both ways.
    #[test]
    fn config_string_golden() {
        let cfg = three_node_config();
        let s = cfg.to_config_string();
        assert_eq!(s, THREE_NODE_CONFIG);
        assert_eq!(s.len(), 138);
        assert_eq!(QuorumConfig::parse(&s), Ok(cfg.clone()));
        assert_eq!(cfg.voters().collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    /// Observers, client addresses, IPv6 brackets, hex versions and member order.
    #[test]
    fn config_string_variants_round_trip() {
        let cfg = QuorumConfig {
            members: vec![
                QuorumMember {
                    sid: 12,
                    host: "fe80::1".into(),
                    quorum_port: 2888,
                    election_port: 3888,
                    observer: true,
                    client: Some(("::1".into(), 2181)),
                },
                QuorumMember {
                    sid: 2,
                    host: "zk2.example".into(),
                    quorum_port: 2888,
                    election_port: 3888,
                    observer: false,
                    client: Some(("0.0.0.0".into(), 2182)),
                },
            ],
            version: 0x1_0000_0000,
        };
        let s = cfg.to_config_string();
        assert_eq!(
            s,
            "server.2=zk2.example:2888:3888:participant;0.0.0.0:2182\n\
             server.12=[fe80::1]:2888:3888:observer;[::1]:2181\n\
             version=100000000"
        );
        let parsed = QuorumConfig::parse(&s).unwrap();
        assert_eq!(parsed.members[0], cfg.members[1]);
        assert_eq!(parsed.members[1], cfg.members[0]);
        assert_eq!(parsed.version, cfg.version);
        assert_eq!(parsed.voters().collect::<Vec<_>>(), vec![2]);
        assert_eq!(parsed.member(12).map(|m| m.observer), Some(true));
        let negative = QuorumConfig {
            members: vec![],
            version: -1,
        };
        assert_eq!(negative.to_config_string(), "version=ffffffffffffffff");
        assert_eq!(
            QuorumConfig::parse(&negative.to_config_string()),
            Ok(negative)
        );
    }

    /// What `QuorumServer` also accepts: no type (participant), type in any case, a bare
    /// client port, blank lines, comments and padding.
    #[test]
    fn config_parse_is_as_lenient_as_java() {
        let cfg = QuorumConfig::parse(
            "# static part\n\n  server.1 = h1:1:2 \r\nserver.2=h2:1:2: Observer ;2181\nversion=a\n",
        )
        .unwrap();
        assert_eq!(cfg.version, 10);
        assert!(!cfg.members[0].observer);
        assert_eq!(cfg.members[0].client, None);
        assert!(cfg.members[1].observer);
        assert_eq!(cfg.members[1].client, Some(("0.0.0.0".into(), 2181)));
        assert_eq!(
            QuorumConfig::parse(""),
            Ok(QuorumConfig {
                members: vec![],
                version: 0
            })
        );
    }

    #[test]
    fn config_parse_rejections() {
        for bad in [
            "server.1=h:1",
            "server.1=h:1:2:3:4",
            "server.1=h:1:1",
            "server.1=h:1:2:voter",
            "server.1=h:1:70000",
            "server.1=h:1:2;c:3;4",
            "server.1=h:1:2;a:b:3",
            "server.1=h:1:2|h2:1:2",
            "server.1=[::1:1:2",
            "server.x=h:1:2",
            "server.1=h:1:2\nserver.1=h:3:4",
            "group.1=1:2",
            "weight.1=1",
            "clientPort=2181",
            "version=xyz",
            "server.1",
        ] {
            assert!(QuorumConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
