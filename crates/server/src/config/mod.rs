//! Server configuration: `zoo.cfg` plus `-Dname=value` system properties.
//!
//! This module owns turning a ZooKeeper 3.8 configuration into a typed
//! [`ServerConfig`]. It reproduces what `QuorumPeerConfig.parseProperties`
//! and the `System.getProperty` readers scattered through ZooKeeper do, so an
//! existing `zoo.cfg` means the same thing to corral:
//!
//! * the file is a Java properties file (`#`/`!` comments, `=`, `:` or
//!   whitespace separators, backslash escapes and line continuations, keys and
//!   values trimmed);
//! * keys `QuorumPeerConfig` handles itself (`tickTime`, `dataDir`, ...) are
//!   parsed strictly, with errors naming the key and line;
//! * every other key `K` becomes the property `zookeeper.K`, exactly as
//!   ZooKeeper's `System.setProperty("zookeeper." + key, value)` does. That is
//!   how `4lw.commands.whitelist`, `extendedTypesEnabled`, `snapCount`,
//!   `admin.*` and friends take effect;
//! * settings ZooKeeper reads from system properties are then derived from the
//!   merged property map (`-D` defines plus the translated keys).
//!
//! The module is pure: the caller reads the file and passes its text, and
//! nothing here touches the network (addresses must be IP literals or
//! `localhost`, because resolving names is the caller's business).
//!
//! The files: `support` (every documented setting: honoured, refused or without effect), `keys`
//! (how `QuorumPeerConfig`'s own keys are parsed), `loader` (zoo.cfg and `-D`
//! properties into a [`ServerConfig`]), `dynamic` (`server.N` lines and the
//! `dynamicConfigFile`), `properties` (the Java properties syntax) and `value` (value parsers).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

mod dynamic;
pub mod jaas;
mod keys;
mod loader;
mod properties;
pub mod support;
mod tls;
mod value;

pub use dynamic::{
    dynamic_config_text, edit_static_config_text, names_dynamic_config_file, ServerEntry,
};
pub use tls::{ClientAuth, StoreSpec, StoreType, TlsConfig, TlsVersion};

/// The configuration `corral server` runs with when given no `zoo.cfg`,
/// written as the `zoo.cfg` it is equivalent to.
///
/// It differs from a bare ZooKeeper on purpose:
/// * `clientPort=2181`, `dataDir=./data` (relative to the working directory)
///   and `tickTime=2000` so it starts without any file, like the sample
///   `zoo_sample.cfg` ZooKeeper ships;
/// * `admin.enableServer=false` so a quick local server does not grab port
///   8080;
/// * `4lw.commands.whitelist=srvr,ruok,stat,mntr,conf,isro` instead of
///   ZooKeeper's `srvr`-only default, so operators and health checks can probe
///   it. The full list enabled is: srvr, ruok, stat, mntr, conf, isro.
///
/// `-D` defines still override the two properties here, since there is no
/// file whose values would overwrite them.
pub const EMBEDDED_ZOO_CFG: &str = "\
tickTime=2000
clientPort=2181
dataDir=./data
admin.enableServer=false
4lw.commands.whitelist=srvr,ruok,stat,mntr,conf,isro
";

/// Something suspicious but accepted, e.g. an unknown key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// 1-based line in `zoo.cfg`, or `None` for `-D` defines and whole-file
    /// observations.
    pub line: Option<usize>,
    /// The `zoo.cfg` key (or property name) the warning is about.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", location(&self.line), self.message)
    }
}

/// A configuration ZooKeeper would refuse (or that corral cannot honour).
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A value that does not parse or is out of range for its key.
    #[error("{}invalid value '{value}' for {key}: {reason}", location(.line))]
    Invalid {
        key: String,
        line: Option<usize>,
        value: String,
        reason: String,
    },
    /// A required key is absent (`dataDir`, or `initLimit`/`syncLimit` for an
    /// ensemble).
    #[error("zoo.cfg: {key} is not set")]
    Missing { key: String },
    /// Individually valid settings that contradict each other.
    #[error("{}{key}: {reason}", location(.line))]
    Conflict {
        key: String,
        line: Option<usize>,
        reason: String,
    },
    /// A setting ZooKeeper documents that asks for something corral does not do (yet): corral
    /// refuses to start rather than run without it. The reason says what to do instead.
    #[error("{}{key}={value} is not supported by corral: {reason}", location(.line))]
    Unsupported {
        key: String,
        line: Option<usize>,
        value: String,
        reason: String,
    },
    /// The properties file itself is malformed (only a bad `\uXXXX` escape
    /// can do that in Java's format).
    #[error("zoo.cfg line {line}: {reason}")]
    Syntax { line: usize, reason: String },
}

/// Formats the "where" prefix of messages. The text says `zoo.cfg` rather
/// than the real path because the variants carry no path; the caller, who
/// read the file, adds it when it reports the error.
fn location(line: &Option<usize>) -> String {
    match line {
        Some(n) => format!("zoo.cfg line {n}: "),
        None => String::new(),
    }
}

/// The set of four letter words the server answers (`4lw.commands.whitelist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FourLetterWhitelist {
    all: bool,
    words: BTreeSet<String>,
}

impl FourLetterWhitelist {
    /// Whether `word` may be executed.
    pub fn allows(&self, word: &str) -> bool {
        self.all || self.words.contains(word)
    }

    /// Every command enabled (`4lw.commands.whitelist=*`).
    pub fn all() -> Self {
        FourLetterWhitelist {
            all: true,
            words: BTreeSet::new(),
        }
    }

    /// Parses a whitelist the way ZooKeeper's `FourLetterCommands` does:
    /// comma separated, entries trimmed, empty entries ignored, a `*` entry
    /// enables everything, and `srvr` is always enabled because `zkServer.sh
    /// status` depends on it.
    pub fn parse(s: &str) -> Self {
        let mut list = FourLetterWhitelist {
            all: false,
            words: BTreeSet::new(),
        };
        for word in s.split(',').map(str::trim) {
            if word == "*" {
                return Self::all();
            }
            if !word.is_empty() {
                list.words.insert(word.to_string());
            }
        }
        list.words.insert("srvr".to_string());
        list
    }

    /// True for `*`.
    pub fn is_all(&self) -> bool {
        self.all
    }

    /// The explicitly enabled words, sorted (empty when [`Self::is_all`]).
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.words.iter().map(String::as_str)
    }

    fn insert(&mut self, word: &str) {
        if !self.all {
            self.words.insert(word.to_string());
        }
    }
}

/// ZooKeeper's default: only `srvr`.
impl Default for FourLetterWhitelist {
    fn default() -> Self {
        Self::parse("")
    }
}

impl fmt::Display for FourLetterWhitelist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.all {
            return f.write_str("*");
        }
        let words: Vec<&str> = self.words().collect();
        f.write_str(&words.join(","))
    }
}

/// SASL between members, as `quorum.auth.*` set it (only with `quorum.auth.enableSasl=true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumSaslConfig {
    /// `quorum.auth.learnerRequireSasl`: this member authenticates when it connects to another.
    pub learner_require: bool,
    /// `quorum.auth.serverRequireSasl`: a member connecting here must authenticate.
    pub server_require: bool,
    /// `quorum.auth.learner.saslLoginContext`: the JAAS section with our credentials.
    pub learner_context: String,
    /// `quorum.auth.server.saslLoginContext`: the JAAS section with the members' passwords.
    pub server_context: String,
    /// `quorum.auth.kerberos.servicePrincipal` (Kerberos only).
    pub service_principal: String,
}

/// The effective server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub tick_time_ms: u32,
    /// `minSessionTimeout`, default 2 ticks.
    pub min_session_timeout_ms: u32,
    /// `maxSessionTimeout`, default 20 ticks.
    pub max_session_timeout_ms: u32,
    /// `clientPort`; `None` when absent or 0 (ZooKeeper then has no client
    /// listener unless the server's `server.N` line names one).
    pub client_port: Option<u16>,
    /// `clientPortAddress`; `None` means all addresses.
    pub client_port_address: Option<IpAddr>,
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress`; `None` means all addresses.
    pub secure_client_port_address: Option<IpAddr>,
    /// The secure port's TLS settings (`ssl.*`), present exactly when `secure_client_port` is.
    pub client_tls: Option<TlsConfig>,
    /// `sslQuorum`.
    pub ssl_quorum: bool,
    /// `portUnification`: the quorum and election ports take TLS and plaintext alike (the
    /// rolling upgrade to `sslQuorum`).
    pub quorum_port_unification: bool,
    /// `sslQuorumReloadCertFiles`: reload the quorum key and trust stores when they change.
    pub ssl_quorum_reload_cert_files: bool,
    /// The members' TLS settings (`ssl.quorum.*`) when `sslQuorum` or `portUnification` is on.
    pub quorum_tls: Option<TlsConfig>,
    /// The AdminServer over HTTPS (`admin.forceHttps`), or HTTPS and HTTP on its port
    /// (`admin.portUnification`: `port_unification` set).
    pub admin_tls: Option<TlsConfig>,
    /// Members authenticate each other with SASL (`quorum.auth.enableSasl=true`).
    pub quorum_sasl: Option<QuorumSaslConfig>,
    /// Connections allowed per client IP; 0 means unlimited.
    pub max_client_cnxns: u32,
    /// `maxCnxns` (`zookeeper.maxCnxns`): connections in all; 0 means unlimited.
    pub max_cnxns: u32,
    /// Always `Some` after loading a file (ZooKeeper refuses a file without
    /// `dataDir`).
    pub data_dir: Option<PathBuf>,
    /// Defaults to `data_dir`.
    pub data_log_dir: Option<PathBuf>,
    /// `zookeeper.snapCount`, at least 2 like ZooKeeper enforces.
    pub snap_count: u64,
    /// At least 3, like ZooKeeper enforces.
    pub autopurge_snap_retain_count: u32,
    /// 0 disables autopurge.
    pub autopurge_purge_interval_hours: u32,
    pub four_letter_whitelist: FourLetterWhitelist,
    /// `jute.maxbuffer` (a plain `-D` property, not settable from zoo.cfg).
    pub jute_max_buffer: usize,
    pub extended_types_enabled: bool,
    pub super_digest: Option<String>,
    pub digest_auth_enabled: bool,
    /// `DigestAuthenticationProvider.digestAlg`.
    pub digest_alg: corral_tree::acl::DigestAlg,
    /// `enforce.auth.enabled` + `enforce.auth.schemes`, or `sessionRequireClientSASLAuth`
    /// (schemes `sasl`): the schemes a connection must authenticate with first.
    pub enforce_auth_schemes: Option<Vec<String>>,
    pub skip_acl: bool,
    /// `zookeeper.authProvider.<name>=<class>` pairs, sorted by name.
    pub auth_providers: Vec<(String, String)>,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u32,
    /// 0 means never-used containers are never deleted.
    pub container_max_never_used_interval_ms: u64,
    pub reconfig_enabled: bool,
    pub standalone_enabled: bool,
    pub admin_enable_server: bool,
    pub admin_server_address: IpAddr,
    pub admin_server_port: u16,
    pub admin_command_url: String,
    /// `admin.idleTimeout` (ms): an AdminServer connection idle this long is closed.
    pub admin_idle_timeout_ms: u64,
    /// `metricsProvider.className`: ZooKeeper's Prometheus provider rather than its default.
    pub metrics_prometheus: bool,
    /// `metricsProvider.httpHost` / `httpPort`: where the Prometheus endpoint listens.
    pub metrics_http_host: String,
    pub metrics_http_port: u16,
    /// `metricsProvider.exportJvmInfo`: export the process metrics too.
    pub metrics_export_process_info: bool,
    pub global_outstanding_limit: u32,
    /// `jute.maxbuffer.extrasize`: how far past `jute.maxbuffer` a member's packet may go.
    pub jute_max_buffer_extra: usize,
    /// The JAAS file (`-Djava.security.auth.login.config`), read once at start-up.
    pub jaas: Option<std::sync::Arc<jaas::JaasFile>>,
    /// ZooKeeper's connection throttle: (max tokens, fill time ms, fill count, weights as
    /// (new session, renewal) when `connection_throttle_weight_enabled`). 0 tokens: off.
    pub conn_throttle: (i64, i64, i64, Option<(i64, i64)>),
    /// BLUE dropping: (freeze time ms, drop increase, drop decrease, decrease ratio) when the
    /// freeze time is not -1.
    pub conn_blue: Option<(i64, f64, f64, f64)>,
    /// `zookeeper.request_throttle_max_requests` (0: off) and `..._stall_time` (ms).
    pub request_throttle_max_requests: usize,
    pub request_throttle_stall_ms: u64,
    /// `outstandingHandshake.limit`: TLS handshakes under way at once on the client ports; 0
    /// (or less) is no limit.
    pub outstanding_handshake_limit: u64,
    pub pre_alloc_size_kb: u64,
    pub force_sync: bool,
    /// Any long, as ZooKeeper reads it: a negative one makes every fsync count.
    pub fsync_warning_threshold_ms: i64,
    /// "", "gz" or "snappy" (lower-cased).
    pub snapshot_compression_method: String,
    pub digest_enabled: bool,
    pub close_session_txn_enabled: bool,
    /// `zookeeper.commitLogCount`: committed txns a leader keeps in memory to sync learners
    /// with a DIFF (older ones it reads from the txn log).
    pub commit_log_count: usize,
    pub init_limit: Option<u32>,
    pub sync_limit: Option<u32>,
    /// Ensemble members sorted by id.
    pub servers: Vec<ServerEntry>,
    /// `peerType=observer`.
    pub peer_type_observer: bool,
    /// `dynamicConfigFile`: ZooKeeper reads the ensemble (and possibly the
    /// client port) from there; this module does no I/O, so the caller must.
    pub dynamic_config_file: Option<PathBuf>,
    /// The zoo.cfg this was loaded from, as given (set by the caller; `load` does no I/O).
    /// With `reconfigEnabled` the ensemble glue rewrites it next to a dynamic config file.
    pub config_path: Option<PathBuf>,
    /// Version of the ensemble configuration: 0 for `server.N` lines in zoo.cfg, else the
    /// dynamic file's `version=` line or the hex suffix of its name (`zoo.cfg.dynamic.100000000`).
    pub config_version: i64,
    /// Every effective property: `-D` defines plus `zookeeper.K` for each key
    /// `QuorumPeerConfig` does not handle itself.
    pub properties: BTreeMap<String, String>,
    /// The key/value pairs as written (unescaped and trimmed), in file order,
    /// duplicates included; with no file, the [`EMBEDDED_ZOO_CFG`] pairs.
    pub entries: Vec<(String, String)>,
}

impl ServerConfig {
    /// The configuration `corral server` uses with no `zoo.cfg`; see
    /// [`EMBEDDED_ZOO_CFG`] for what it contains and why it differs from
    /// ZooKeeper's own defaults (clientPort 2181, dataDir `./data`, tickTime
    /// 2000, AdminServer off, whitelist `srvr,ruok,stat,mntr,conf,isro`).
    pub fn embedded_default() -> ServerConfig {
        Self::load(None, &[])
            .expect("the embedded configuration is valid")
            .0
    }

    /// An effective property (`-D` define or translated `zoo.cfg` key).
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }

    /// Where clients connect: `clientPortAddress:clientPort`, or, without a
    /// `clientPort`, the client part of the `server.N` line when the file
    /// lists exactly one server (ZooKeeper picks the line matching `myid`;
    /// with one line there is no choice to make, with several corral cannot
    /// know which is its own without reading `myid`). `None` when there is
    /// no client port, or the client host is not an IP literal.
    pub fn client_address(&self) -> Option<SocketAddr> {
        if let Some(port) = self.client_port {
            let ip = self
                .client_port_address
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            return Some(SocketAddr::new(ip, port));
        }
        match self.servers.as_slice() {
            [only] => only.client_socket_addr(),
            _ => None,
        }
    }

    /// Whether ZooKeeper would run this as an ensemble member rather than a
    /// standalone server (`QuorumPeerConfig.isDistributed`).
    pub fn is_distributed(&self) -> bool {
        let participants = self.servers.iter().filter(|s| !s.observer).count();
        !self.standalone_enabled || participants > 1
    }

    /// ZooKeeper's built-in values for everything, before any file or
    /// property is applied.
    fn zookeeper_defaults() -> ServerConfig {
        ServerConfig {
            tick_time_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 60000,
            client_port: None,
            client_port_address: None,
            secure_client_port: None,
            secure_client_port_address: None,
            client_tls: None,
            ssl_quorum: false,
            quorum_port_unification: false,
            ssl_quorum_reload_cert_files: false,
            quorum_tls: None,
            admin_tls: None,
            quorum_sasl: None,
            max_client_cnxns: 60,
            max_cnxns: 0,
            data_dir: None,
            data_log_dir: None,
            snap_count: 100_000,
            autopurge_snap_retain_count: 3,
            autopurge_purge_interval_hours: 0,
            four_letter_whitelist: FourLetterWhitelist::default(),
            jute_max_buffer: 0xfffff,
            extended_types_enabled: false,
            super_digest: None,
            digest_auth_enabled: true,
            digest_alg: corral_tree::acl::DigestAlg::Sha1,
            enforce_auth_schemes: None,
            skip_acl: false,
            auth_providers: Vec::new(),
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            container_max_never_used_interval_ms: 0,
            reconfig_enabled: false,
            standalone_enabled: true,
            admin_enable_server: true,
            admin_server_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            admin_server_port: 8080,
            admin_command_url: "/commands".to_string(),
            admin_idle_timeout_ms: 30_000,
            metrics_prometheus: false,
            metrics_http_host: "0.0.0.0".to_string(),
            metrics_http_port: 7000,
            metrics_export_process_info: true,
            global_outstanding_limit: 1000,
            jute_max_buffer_extra: 0xfffff,
            jaas: None,
            conn_throttle: (0, 1, 1, None),
            conn_blue: None,
            request_throttle_max_requests: 0,
            request_throttle_stall_ms: 100,
            outstanding_handshake_limit: 0,
            pre_alloc_size_kb: 65536,
            force_sync: true,
            fsync_warning_threshold_ms: 1000,
            snapshot_compression_method: String::new(),
            digest_enabled: true,
            close_session_txn_enabled: true,
            commit_log_count: 500,
            init_limit: None,
            sync_limit: None,
            servers: Vec::new(),
            peer_type_observer: false,
            dynamic_config_file: None,
            config_path: None,
            config_version: 0,
            properties: BTreeMap::new(),
            entries: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    pub(super) fn load(text: &str) -> (ServerConfig, Vec<ConfigWarning>) {
        ServerConfig::load(Some((Path::new("zoo.cfg"), text)), &[]).expect("valid config")
    }

    pub(super) fn load_err(text: &str) -> ConfigError {
        ServerConfig::load(Some((Path::new("zoo.cfg"), text)), &[]).expect_err("invalid config")
    }

    pub(super) fn defines(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // A minimal file gets ZooKeeper's own defaults for everything else.
    #[test]
    fn defaults_match_zookeeper() {
        let (cfg, warnings) = load("dataDir=/var/lib/zk\n");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.tick_time_ms, 3000);
        assert_eq!(cfg.commit_log_count, 500);
        assert_eq!(cfg.min_session_timeout_ms, 6000);
        assert_eq!(cfg.max_session_timeout_ms, 60000);
        assert_eq!(cfg.client_port, None);
        assert_eq!(cfg.client_address(), None);
        assert_eq!(cfg.max_client_cnxns, 60);
        assert_eq!(cfg.data_dir, Some(PathBuf::from("/var/lib/zk")));
        assert_eq!(cfg.data_log_dir, cfg.data_dir);
        assert_eq!(cfg.snap_count, 100_000);
        assert_eq!(cfg.autopurge_snap_retain_count, 3);
        assert_eq!(cfg.autopurge_purge_interval_hours, 0);
        assert_eq!(
            cfg.four_letter_whitelist,
            FourLetterWhitelist::parse("srvr")
        );
        assert_eq!(cfg.jute_max_buffer, 0xfffff);
        assert!(!cfg.extended_types_enabled);
        assert_eq!(cfg.super_digest, None);
        assert!(cfg.digest_auth_enabled);
        assert!(!cfg.skip_acl);
        assert!(cfg.auth_providers.is_empty());
        assert_eq!(cfg.container_check_interval_ms, 60_000);
        assert_eq!(cfg.container_max_per_minute, 10_000);
        assert_eq!(cfg.container_max_never_used_interval_ms, 0);
        assert!(!cfg.reconfig_enabled);
        assert!(cfg.standalone_enabled);
        assert!(cfg.admin_enable_server);
        assert_eq!(cfg.admin_server_address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(cfg.admin_server_port, 8080);
        assert_eq!(cfg.admin_command_url, "/commands");
        assert_eq!(cfg.global_outstanding_limit, 1000);
        assert_eq!(cfg.pre_alloc_size_kb, 65536);
        assert!(cfg.force_sync);
        assert_eq!(cfg.fsync_warning_threshold_ms, 1000);
        assert_eq!(cfg.snapshot_compression_method, "");
        assert!(cfg.digest_enabled);
        assert!(cfg.close_session_txn_enabled);
        assert_eq!((cfg.init_limit, cfg.sync_limit), (None, None));
        assert!(cfg.servers.is_empty());
        assert!(!cfg.peer_type_observer);
        assert!(cfg.properties.is_empty());
        assert_eq!(cfg.entries, vec![("dataDir".into(), "/var/lib/zk".into())]);
    }

    // The no-file configuration is the documented embedded one, and -D still overrides it.
    #[test]
    fn embedded_default_and_define_override() {
        let cfg = ServerConfig::embedded_default();
        assert_eq!(cfg.tick_time_ms, 2000);
        assert_eq!(cfg.min_session_timeout_ms, 4000);
        assert_eq!(cfg.max_session_timeout_ms, 40000);
        assert_eq!(cfg.client_port, Some(2181));
        assert_eq!(cfg.client_address(), Some("0.0.0.0:2181".parse().unwrap()));
        assert_eq!(cfg.data_dir, Some(PathBuf::from("./data")));
        assert!(!cfg.admin_enable_server);
        for word in ["srvr", "ruok", "stat", "mntr", "conf", "isro"] {
            assert!(cfg.four_letter_whitelist.allows(word), "{word}");
        }
        assert!(!cfg.four_letter_whitelist.allows("dump"));

        let d = defines(&[("zookeeper.4lw.commands.whitelist", "*")]);
        let (cfg, warnings) = ServerConfig::load(None, &d).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(cfg.four_letter_whitelist.allows("dump"));
    }

    // The whitelist defaults to srvr, "*" enables all, lists are trimmed and always keep srvr.
    #[test]
    fn whitelist_semantics() {
        let default = FourLetterWhitelist::default();
        assert!(default.allows("srvr"));
        assert!(!default.allows("ruok"));
        assert!(FourLetterWhitelist::all().allows("wchc"));
        assert!(FourLetterWhitelist::parse("stat, *").is_all());

        let list = FourLetterWhitelist::parse(" stat, ruok ,, conf ,isro");
        for word in ["stat", "ruok", "conf", "isro", "srvr"] {
            assert!(list.allows(word), "{word}");
        }
        assert!(!list.allows("dump"));
        assert!(!list.allows(" stat"));
        assert_eq!(list.to_string(), "conf,isro,ruok,srvr,stat");

        // Read-only mode (which would add isro, as in ZooKeeper) is refused until corral has it.
        let d = defines(&[("readonlymode.enabled", "true")]);
        let err = ServerConfig::load(Some((Path::new("z"), "dataDir=/d")), &d).unwrap_err();
        assert!(matches!(err, ConfigError::Unsupported { .. }), "{err:?}");
        let d = defines(&[("readonlymode.enabled", "false")]);
        let (cfg, _) = ServerConfig::load(Some((Path::new("z"), "dataDir=/d")), &d).unwrap();
        assert!(!cfg.four_letter_whitelist.allows("isro"));
    }

    // client_address prefers clientPortAddress:clientPort, else the single server line's client part.
    #[test]
    fn client_address_sources() {
        let (cfg, _) = load("dataDir=/d\nclientPort=2181\nclientPortAddress=127.0.0.1\n");
        assert_eq!(
            cfg.client_address(),
            Some("127.0.0.1:2181".parse().unwrap())
        );
        let (cfg, _) = load("dataDir=/d\nclientPort=2181\nclientPortAddress=[::1]\n");
        assert_eq!(cfg.client_address(), Some("[::1]:2181".parse().unwrap()));
        let (cfg, warnings) = load("dataDir=/d\nserver.1=localhost:2888:3888;127.0.0.2:2190\n");
        assert_eq!(
            cfg.client_address(),
            Some("127.0.0.2:2190".parse().unwrap())
        );
        assert!(warnings
            .iter()
            .any(|w| w.message.contains("only one server")));
        let (cfg, _) = load("dataDir=/d\nserver.1=localhost:2888:3888;2190\n");
        assert_eq!(cfg.client_address(), Some("0.0.0.0:2190".parse().unwrap()));
        let (cfg, _) = load("dataDir=/d\nclientPort=0\n");
        assert_eq!(cfg.client_address(), None);
    }
}
