//! The ensemble: `server.N` lines (`ServerEntry`) and the checks on their shape, the
//! `dynamicConfigFile` that can hold them instead of zoo.cfg, and the rewrites of both files
//! when a config is committed with `reconfigEnabled`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use corral_proto::quorum::QuorumMember;

use super::loader::{Loader, Props};
use super::properties::{
    ends_with_odd_backslashes, is_prop_ws, java_trim, parse_properties, split_key_value, unescape,
};
use super::value::{invalid, parse_ip_literal};
use super::{ConfigError, ConfigWarning, ServerConfig};
use corral_proto::quorum::{ServerLine, ServerLineError};

/// One `server.N=host:quorumPort:electionPort[:type][;[clientHost:]clientPort]`
/// line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    pub id: u64,
    /// Host as written (IPv6 without brackets); not resolved.
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub observer: bool,
    /// Host of the client part, `None` when only a port was given (ZooKeeper
    /// then listens on 0.0.0.0).
    pub client_address: Option<String>,
    pub client_port: Option<u16>,
}

impl ServerEntry {
    /// The `;[clientHost:]clientPort` part of the line as a socket address (all addresses when
    /// only a port is given); `None` without a client part or when the host is not an IP
    /// literal (or `localhost`).
    pub fn client_socket_addr(&self) -> Option<SocketAddr> {
        let port = self.client_port?;
        let ip = match &self.client_address {
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(host) => parse_ip_literal(host)?,
        };
        Some(SocketAddr::new(ip, port))
    }

    /// The line as a member of the config string (§4.1), whose codec is corral-proto's: a
    /// client part given as a bare port is on all addresses (`0.0.0.0`), as ZooKeeper's
    /// `QuorumServer` reads it.
    pub fn quorum_member(&self) -> QuorumMember {
        QuorumMember {
            sid: self.id as i64,
            host: self.host.clone(),
            quorum_port: self.quorum_port,
            election_port: self.election_port,
            observer: self.observer,
            client: self.client_port.map(|p| {
                (
                    self.client_address
                        .clone()
                        .unwrap_or_else(|| "0.0.0.0".into()),
                    p,
                )
            }),
        }
    }
}

/// Renders the entry the way ZooKeeper's `QuorumServer.toString` does, which
/// is what the `conf` command and the `/zookeeper/config` node show.
impl fmt::Display for ServerEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.quorum_member().to_config_value())
    }
}

/// The text of `zoo.cfg.dynamic.<hex version>` for a config string (§4.1), as
/// `QuorumPeerConfig.writeDynamicConfig(file, qv, false)` writes it when a config is committed:
/// every `key=value` of the string but `version`, trimmed, sorted as strings (`server.10=…`
/// before `server.1=…`, as Java's `String.compareTo` puts it), joined by "\n" with no trailing newline.
pub fn dynamic_config_text(config: &str) -> String {
    let mut lines: Vec<String> = parse_properties(config)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !e.key.starts_with("version"))
        .map(|e| format!("{}={}", e.key, e.value))
        .collect();
    lines.sort();
    lines.join("\n")
}

/// Whether zoo.cfg text names a `dynamicConfigFile` (then ZooKeeper keeps no `.bak`).
pub fn names_dynamic_config_file(text: &str) -> bool {
    parse_properties(text)
        .unwrap_or_default()
        .iter()
        .any(|e| e.key == "dynamicConfigFile")
}

/// zoo.cfg pointing at a new dynamic config file (`QuorumPeerConfig.editStaticConfig`): the
/// keys that belong to the dynamic file are dropped (`server.*`, `group*`, `weight*`,
/// `peerType*`, and `clientPort*` when `erase_client_port`: this server's line carries its
/// client address), and `dynamicConfigFile=<dynamic_file>` replaces the first such line or
/// ends the file. Unlike ZooKeeper, which writes the remaining keys back from a `Properties`
/// (hash order, comments lost), every other line is kept as written, in order.
pub fn edit_static_config_text(text: &str, dynamic_file: &Path, erase_client_port: bool) -> String {
    let pointer = format!("dynamicConfigFile={}", dynamic_file.display());
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let physical: Vec<&str> = normalized.split('\n').collect();
    let mut out: Vec<String> = Vec::new();
    let mut placed = false;
    let mut i = 0;
    while i < physical.len() {
        let start = i;
        let first = physical[i].trim_start_matches(is_prop_ws);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            out.push(physical[start].to_string());
            continue;
        }
        let mut logical = first.to_string();
        while ends_with_odd_backslashes(&logical) && i < physical.len() {
            logical.pop();
            logical.push_str(physical[i].trim_start_matches(is_prop_ws));
            i += 1;
        }
        let (key, _) = split_key_value(&logical);
        let key = unescape(key, start + 1).unwrap_or_else(|_| key.to_string());
        let key = java_trim(&key);
        if key.starts_with("dynamicConfigFile") {
            if !placed {
                out.push(pointer.clone());
                placed = true;
            }
            continue;
        }
        let dropped = key.starts_with("server.")
            || key.starts_with("group")
            || key.starts_with("weight")
            || key.starts_with("peerType")
            || (erase_client_port && key.starts_with("clientPort"));
        if !dropped {
            out.extend(physical[start..i].iter().map(|l| l.to_string()));
        }
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    if !placed {
        out.push(pointer);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

impl ServerConfig {
    /// Add the ensemble from the `dynamicConfigFile` (its text; the caller reads the file):
    /// `server.N=` lines as in zoo.cfg, plus an optional `version=` line, as ZooKeeper 3.5+
    /// writes them (`zoo.cfg.dynamic.<version>`). `group.N`/`weight.N` are refused (hierarchical
    /// quorums are not supported).
    pub fn apply_dynamic_file(&mut self, text: &str) -> Result<Vec<ConfigWarning>, ConfigError> {
        let raw = parse_properties(text)?;
        let mut loader = Loader {
            cfg: self.clone(),
            props: Props::default(),
            warnings: Vec::new(),
            from_file: true,
        };
        loader.cfg.dynamic_config_file = None;
        if let Some(v) = self
            .dynamic_config_file
            .as_ref()
            .and_then(|p| p.extension())
            .and_then(|x| u64::from_str_radix(&x.to_string_lossy(), 16).ok())
        {
            loader.cfg.config_version = v as i64;
        }
        let multi = self
            .property("zookeeper.multiAddress.enabled")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        for e in &raw {
            let line = Some(e.line);
            if e.key.starts_with("server.") {
                let entry = loader.parse_server(&e.key, line, &e.value, multi)?;
                loader.cfg.servers.retain(|s| s.id != entry.id);
                loader.cfg.servers.push(entry);
            } else if e.key == "version" {
                loader.cfg.config_version = u64::from_str_radix(e.value.trim(), 16)
                    .map_err(|_| invalid("version", line, &e.value, "not a hex number"))?
                    as i64;
            } else {
                return Err(ConfigError::Conflict {
                    key: e.key.clone(),
                    line,
                    reason: "only server.N lines (and version) belong in a dynamic config file"
                        .to_string(),
                });
            }
        }
        loader.cfg.servers.sort_by_key(|s| s.id);
        loader.check_ensemble()?;
        let dynamic = self.dynamic_config_file.clone();
        *self = loader.cfg;
        self.dynamic_config_file = dynamic;
        Ok(loader.warnings)
    }
}

impl Loader {
    /// `parseDynamicConfig` and `checkValidity`: the shape of the server list.
    pub(super) fn check_ensemble(&mut self) -> Result<(), ConfigError> {
        if self.cfg.dynamic_config_file.is_some() {
            return Ok(()); // Checked once the file is read (`apply_dynamic_file`).
        }
        let participants = self.cfg.servers.iter().filter(|s| !s.observer).count();
        let observers = self.cfg.servers.len() - participants;
        let standalone = self.cfg.standalone_enabled;
        let whole = |reason: &str| ConfigError::Conflict {
            key: "server".to_string(),
            line: None,
            reason: reason.to_string(),
        };
        if participants == 0 {
            if !standalone {
                return Err(whole(
                    "standaloneEnabled=false requires at least one participant server.N line",
                ));
            }
            if observers > 0 {
                return Err(whole(
                    "observers without participants are an invalid configuration",
                ));
            }
        } else if participants == 1 && standalone {
            // ZooKeeper logs this as an error and runs standalone anyway
            // (HBase writes such files).
            if observers > 0 {
                return Err(whole(
                    "observers without a quorum are an invalid configuration",
                ));
            }
            self.warn(
                "server",
                None,
                "only one server specified; running standalone (ZooKeeper ignores the line too)",
            );
        } else if participants <= 2 {
            self.warn(
                "server",
                None,
                "no server failure will be tolerated; an ensemble needs at least 3 servers",
            );
        } else if participants % 2 == 0 {
            self.warn(
                "server",
                None,
                "non-optimal configuration, consider an odd number of servers",
            );
        }
        if self.cfg.is_distributed() {
            for (key, value) in [
                ("initLimit", self.cfg.init_limit),
                ("syncLimit", self.cfg.sync_limit),
            ] {
                if value.unwrap_or(0) == 0 {
                    return Err(ConfigError::Missing {
                        key: key.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// `QuorumServer.initializeWithAddressString` for one `server.N` line.
    pub(super) fn parse_server(
        &mut self,
        key: &str,
        line: Option<usize>,
        value: &str,
        multi_address_enabled: bool,
    ) -> Result<ServerEntry, ConfigError> {
        let bad = |reason: String| invalid(key, line, value, reason);
        let id_text = &key["server.".len()..];
        let id: u64 = id_text.parse().map_err(|_| {
            bad(format!(
                "server id '{id_text}' is not a non-negative integer"
            ))
        })?;

        let parsed = ServerLine::parse(value).map_err(|e| match e {
            ServerLineError::EqualPorts => bad(format!(
                "quorum and election port must be different for server.{id}"
            )),
            other => bad(other.to_string()),
        })?;
        let (client_address, client_port) = match parsed.client {
            None => (None, None),
            Some((host, port)) => (host, Some(port)),
        };
        if let Some(host) = &client_address {
            if parse_ip_literal(host).is_none() {
                self.warn(
                    key,
                    line,
                    format!(
                        "client address {host} of {key} is not an IP literal; corral cannot \
                         listen on it without resolving it"
                    ),
                );
            }
        }
        if parsed.addresses.len() > 1 && !multi_address_enabled {
            return Err(bad(format!(
                "multiple addresses given for server {id} but multiAddress.enabled is false"
            )));
        }
        if parsed.addresses.len() > 1 {
            return Err(ConfigError::Unsupported {
                key: key.to_string(),
                line,
                value: value.to_string(),
                reason: "several addresses per member are not supported yet; keep one \
                         address per server.N line"
                    .to_string(),
            });
        }
        let first = parsed
            .addresses
            .into_iter()
            .next()
            .expect("at least one address");
        let (host, quorum_port, election_port) =
            (first.host, first.quorum_port, first.election_port);
        Ok(ServerEntry {
            id,
            host,
            quorum_port,
            election_port,
            observer: parsed.observer.unwrap_or(false),
            client_address,
            client_port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{load, load_err};

    #[test]
    fn dynamic_config_text_is_writedynamicconfig() {
        let config = "server.2=h:2:3:participant\nserver.10=h:4:5:observer;0.0.0.0:2181\n\
                      server.1=h:6:7:participant\nversion=100000000";
        assert_eq!(
            dynamic_config_text(config),
            "server.10=h:4:5:observer;0.0.0.0:2181\nserver.1=h:6:7:participant\n\
             server.2=h:2:3:participant"
        );
    }

    #[test]
    fn edit_static_config_drops_the_ensemble_and_points_at_the_dynamic_file() {
        let text = "# comment\ntickTime=500\nserver.1=a:1:2\nclientPort=2181\n\
                    server.2=b:1:2;\\\n  2182\npeerType=participant\nreconfigEnabled=true\n\n";
        let dynamic = Path::new("/d/zoo.cfg.dynamic.100000000");
        assert_eq!(
            edit_static_config_text(text, dynamic, false),
            "# comment\ntickTime=500\nclientPort=2181\nreconfigEnabled=true\n\
             dynamicConfigFile=/d/zoo.cfg.dynamic.100000000\n"
        );
        assert_eq!(
            edit_static_config_text(text, dynamic, true),
            "# comment\ntickTime=500\nreconfigEnabled=true\n\
             dynamicConfigFile=/d/zoo.cfg.dynamic.100000000\n"
        );
        // An existing pointer is replaced where it stands.
        let text = "dataDir=/d\ndynamicConfigFile=/d/zoo.cfg.dynamic\ntickTime=500\n";
        assert_eq!(
            edit_static_config_text(text, dynamic, false),
            "dataDir=/d\ndynamicConfigFile=/d/zoo.cfg.dynamic.100000000\ntickTime=500\n"
        );
    }

    // A zoo.cfg as ZooKeeper 3.8.0 rewrites it with reconfigEnabled=true (captured on loopback):
    // no server lines, a dynamicConfigFile with them, and client ports from there.
    #[test]
    fn dynamic_config_file_supplies_the_ensemble() {
        let (mut cfg, _) = load(
            "dataDir=/d\ntickTime=500\ninitLimit=10\nsyncLimit=5\nreconfigEnabled=true\n\
             dynamicConfigFile=/d/zoo.cfg.dynamic.100000000\n",
        );
        assert!(
            !cfg.is_distributed(),
            "nothing is known before the file is read"
        );
        cfg.apply_dynamic_file(
            "server.1=127.0.0.1:2861:3861:participant;0.0.0.0:21931\n\
             server.2=127.0.0.1:2862:3862:participant;0.0.0.0:21932\n\
             server.3=127.0.0.1:2863:3863:observer;0.0.0.0:21933\n",
        )
        .unwrap();
        assert!(cfg.is_distributed());
        assert_eq!(cfg.servers.len(), 3);
        assert!(cfg.servers[2].observer);
        assert_eq!(cfg.servers[1].client_port, Some(21932));
        assert_eq!(cfg.config_version, 0x100000000, "from the file name");
        assert_eq!(
            cfg.dynamic_config_file.as_deref(),
            Some(Path::new("/d/zoo.cfg.dynamic.100000000"))
        );
        // Anything but server lines (and version) is refused, and so is a bad line.
        let (mut c2, _) = load("dataDir=/d\ndynamicConfigFile=/x\n");
        assert!(c2
            .apply_dynamic_file("server.1=a:1:2\ntickTime=5\n")
            .is_err());
        assert!(c2.apply_dynamic_file("server.1=a:1\n").is_err());
    }

    // A server.N entry prints as the config-string value corral-proto's codec writes and reads
    // (QuorumServer.toString), including IPv6 brackets, observers and a bare client port.
    #[test]
    fn server_entry_prints_through_the_config_string_codec() {
        let text = "dataDir=/d\ninitLimit=5\nsyncLimit=2\n\
                    server.1=zk1:2888:3888\n\
                    server.2=[::1]:2888:3888:participant;2182\n\
                    server.3=zk3:2888:3888:observer;[fe80::1]:2183\n";
        let (cfg, _) = load(text);
        for s in &cfg.servers {
            let line = s.to_string();
            assert_eq!(line, s.quorum_member().to_config_value());
            assert_eq!(
                QuorumMember::parse(s.id as i64, &line),
                Ok(s.quorum_member()),
                "{line}"
            );
        }
        assert_eq!(
            cfg.servers[2].to_string(),
            "zk3:2888:3888:observer;[fe80::1]:2183"
        );
    }

    // server.N lines parse roles, client parts and IPv6, and reject malformed lines.
    #[test]
    fn server_lines() {
        let text = "dataDir=/d\ninitLimit=5\nsyncLimit=2\n\
                    server.3=zk3:2888:3888:observer;10.0.0.3:2183\n\
                    server.1=zk1:2888:3888\n\
                    server.2=[::1]:2888:3888:participant;2182\n\
                    server.4=zk4:2888:3888\n";
        let (cfg, _) = load(text);
        assert!(cfg.is_distributed());
        assert_eq!(
            cfg.servers.iter().map(|s| s.id).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(
            cfg.servers[0],
            ServerEntry {
                id: 1,
                host: "zk1".into(),
                quorum_port: 2888,
                election_port: 3888,
                observer: false,
                client_address: None,
                client_port: None,
            }
        );
        let s2 = &cfg.servers[1];
        assert_eq!(
            (s2.host.as_str(), s2.observer, s2.client_port),
            ("::1", false, Some(2182))
        );
        assert_eq!(s2.client_address, None);
        assert_eq!(s2.to_string(), "[::1]:2888:3888:participant;0.0.0.0:2182");
        let s3 = &cfg.servers[2];
        assert!(s3.observer);
        assert_eq!(s3.client_address.as_deref(), Some("10.0.0.3"));
        assert_eq!(s3.client_port, Some(2183));
        // ZooKeeper also exposes the raw lines as zookeeper.server.N.
        assert_eq!(cfg.property("zookeeper.server.1"), Some("zk1:2888:3888"));

        for bad in [
            "server.1=zk1:2888",
            "server.1=zk1:2888:2888",
            "server.1=zk1:2888:3888:leader",
            "server.x=zk1:2888:3888",
            "server.1=zk1:2888:3888;a:b:c",
            "server.1=zk1:2888:3888|zk1b:2889:3889",
        ] {
            let err = load_err(&format!("dataDir=/d\n{bad}\n"));
            assert!(
                matches!(&err, ConfigError::Invalid { line: Some(2), .. }),
                "{bad}: {err:?}"
            );
        }
        // An ensemble needs initLimit and syncLimit.
        let err = load_err("dataDir=/d\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n");
        assert!(matches!(err, ConfigError::Missing { key } if key == "initLimit"));
    }
}
