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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Every `zoo.cfg` key the ZooKeeper 3.8 documentation describes (the admin
/// guide plus the observer, reconfig and oracle guides), spelled as it is
/// written in `zoo.cfg`. Keys in this list, and keys `QuorumPeerConfig` knows
/// itself, are accepted silently even though corral may not act on them;
/// anything else still becomes `zookeeper.K` but also earns a warning, so a
/// typo such as `tickTme` shows up instead of silently doing nothing.
///
/// Families with free-form suffixes are in [`DOCUMENTED_PREFIXES`]. Keys that
/// ZooKeeper reads only as unprefixed system properties are in
/// [`SYSTEM_PROPERTY_ONLY_KEYS`], because in `zoo.cfg` they have no effect.
pub const DOCUMENTED_KEYS: &[&str] = &[
    // Minimum configuration.
    "clientPort",
    "secureClientPort",
    "observerMasterPort",
    "dataDir",
    "tickTime",
    // Advanced configuration.
    "dataLogDir",
    "globalOutstandingLimit",
    "preAllocSize",
    "snapCount",
    "commitLogCount",
    "snapSizeLimitInKb",
    "txnLogSizeLimitInKb",
    "maxCnxns",
    "maxClientCnxns",
    "clientPortAddress",
    "secureClientPortAddress",
    "minSessionTimeout",
    "maxSessionTimeout",
    "fsync.warningthresholdms",
    "maxResponseCacheSize",
    "maxGetChildrenResponseCacheSize",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "syncEnabled",
    "extendedTypesEnabled",
    "emulate353TTLNodes",
    "watchManagerName",
    "watcherCleanThreadsNum",
    "watcherCleanThreshold",
    "watcherCleanIntervalInSeconds",
    "maxInProcessingDeadWatchers",
    "bitHashCacheSize",
    "fastleader.minNotificationInterval",
    "fastleader.maxNotificationInterval",
    "connectionMaxTokens",
    "connectionTokenFillTime",
    "connectionTokenFillCount",
    "connectionFreezeTime",
    "connectionDropIncrease",
    "connectionDropDecrease",
    "connectionDecreaseRatio",
    "clientPortListenBacklog",
    "serverCnxnFactory",
    "clientCnxnSocket",
    "flushDelay",
    "maxWriteQueuePollTime",
    "maxBatchSize",
    "enforceQuota",
    "requestThrottleLimit",
    "requestThrottleStallTime",
    "requestThrottleDropStale",
    "requestStaleLatencyCheck",
    "requestStaleConnectionCheck",
    "advancedFlowControlEnabled",
    "enableEagerACLCheck",
    "maxConcurrentSnapSyncs",
    "maxConcurrentDiffSyncs",
    "digest.enabled",
    "snapshot.compression.method",
    "snapshot.trust.empty",
    "audit.enable",
    "audit.impl.class",
    "largeRequestMaxBytes",
    "largeRequestThreshold",
    "outstandingHandshake.limit",
    "netty.server.earlyDropSecureConnectionHandshakes",
    "throttledOpWaitTime",
    "learner.closeSocketAsync",
    "leader.closeSocketAsync",
    "learner.asyncSending",
    "forward_learner_requests_to_commit_processor_disabled",
    // Not in the admin guide, but a real ZooKeeper 3.8 property that corral
    // reads (`zookeeper.closeSessionTxn.enabled`), so it is no typo.
    "closeSessionTxn.enabled",
    // Likewise `zookeeper.snapshotSizeFactor` (`ZKDatabase`): how much txn log a leader may
    // send a learner instead of a snapshot.
    "snapshotSizeFactor",
    // Cluster options.
    "electionAlg",
    "maxTimeToWaitForEpoch",
    "initLimit",
    "connectToLearnerMasterLimit",
    "leaderServes",
    "syncLimit",
    "cnxTimeout",
    "quorumCnxnTimeoutMs",
    "standaloneEnabled",
    "reconfigEnabled",
    "4lw.commands.whitelist",
    "tcpKeepAlive",
    "clientTcpKeepAlive",
    "electionPortBindRetry",
    "observer.reconnectDelayMs",
    "observer.election.DelayMs",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "peerType",
    "dynamicConfigFile",
    "oraclePath",
    // Encryption, authentication, authorization.
    "DigestAuthenticationProvider.enabled",
    "DigestAuthenticationProvider.superDigest",
    "DigestAuthenticationProvider.digestAlg",
    "X509AuthenticationProvider.superUser",
    "ssl.authProvider",
    "sessionRequireClientSASLAuth",
    "enforce.auth.enabled",
    "enforce.auth.schemes",
    "sslQuorum",
    "sslQuorumReloadCertFiles",
    "portUnification",
    "ssl.keyStore.location",
    "ssl.keyStore.password",
    "ssl.keyStore.passwordPath",
    "ssl.keyStore.type",
    "ssl.trustStore.location",
    "ssl.trustStore.password",
    "ssl.trustStore.passwordPath",
    "ssl.trustStore.type",
    "ssl.protocol",
    "ssl.enabledProtocols",
    "ssl.ciphersuites",
    "ssl.context.supplier.class",
    "ssl.hostnameVerification",
    "ssl.crl",
    "ssl.ocsp",
    "ssl.clientAuth",
    "ssl.handshakeDetectionTimeoutMillis",
    "ssl.quorum.keyStore.location",
    "ssl.quorum.keyStore.password",
    "ssl.quorum.keyStore.passwordPath",
    "ssl.quorum.keyStore.type",
    "ssl.quorum.trustStore.location",
    "ssl.quorum.trustStore.password",
    "ssl.quorum.trustStore.passwordPath",
    "ssl.quorum.trustStore.type",
    "ssl.quorum.protocol",
    "ssl.quorum.enabledProtocols",
    "ssl.quorum.ciphersuites",
    "ssl.quorum.context.supplier.class",
    "ssl.quorum.hostnameVerification",
    "ssl.quorum.crl",
    "ssl.quorum.ocsp",
    "ssl.quorum.clientAuth",
    "ssl.quorum.handshakeDetectionTimeoutMillis",
    "client.portUnification",
    "kerberos.removeHostFromPrincipal",
    "kerberos.removeRealmFromPrincipal",
    "kerberos.canonicalizeHostNames",
    "multiAddress.enabled",
    "multiAddress.reachabilityCheckTimeoutMs",
    "multiAddress.reachabilityCheckEnabled",
    // Unsafe options.
    "forceSync",
    "jute.maxbuffer.extrasize",
    "skipACL",
    "quorumListenOnAllIPs",
    // AdminServer.
    "admin.forceHttps",
    "admin.portUnification",
    "admin.enableServer",
    "admin.serverAddress",
    "admin.serverPort",
    "admin.idleTimeout",
    "admin.commandURL",
    // Metrics providers (the rest of `metricsProvider.*` is a prefix family).
    "metricsProvider.className",
];

/// Documented key families whose suffix is free-form: `server.N`, `group.N`,
/// `weight.N`, provider-specific `metricsProvider.*` settings and
/// `authProvider.N=class`.
pub const DOCUMENTED_PREFIXES: &[&str] = &[
    "server.",
    "group.",
    "weight.",
    "metricsProvider.",
    "authProvider.",
];

/// Documented settings ZooKeeper reads only as *unprefixed* system properties
/// (`-Djute.maxbuffer=...`). Written in `zoo.cfg` they become
/// `zookeeper.jute.maxbuffer` and so on, which nothing reads; corral matches
/// that (the value is ignored) but says so in a warning.
pub const SYSTEM_PROPERTY_ONLY_KEYS: &[&str] = &[
    "jute.maxbuffer",
    "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute",
    "znode.container.maxNeverUsedIntervalMs",
    "readonlymode.enabled",
];

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
}

/// Renders the entry the way ZooKeeper's `QuorumServer.toString` does, which
/// is what the `conf` command and the `/zookeeper/config` node show.
impl fmt::Display for ServerEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            bracket_ipv6(&self.host),
            self.quorum_port,
            self.election_port,
            if self.observer {
                "observer"
            } else {
                "participant"
            }
        )?;
        if let Some(port) = self.client_port {
            let host = self.client_address.as_deref().unwrap_or("0.0.0.0");
            write!(f, ";{}:{}", bracket_ipv6(host), port)?;
        }
        Ok(())
    }
}

fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
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
    /// Connections allowed per client IP; 0 means unlimited.
    pub max_client_cnxns: u32,
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
    pub global_outstanding_limit: u32,
    pub pre_alloc_size_kb: u64,
    pub force_sync: bool,
    pub fsync_warning_threshold_ms: u64,
    /// "", "gz" or "snappy" (lower-cased).
    pub snapshot_compression_method: String,
    pub digest_enabled: bool,
    pub close_session_txn_enabled: bool,
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

    /// Builds the configuration from an optional `zoo.cfg` and `-D` defines.
    ///
    /// `file` is `(path, contents)`; with `None` the [`EMBEDDED_ZOO_CFG`] is
    /// used. `defines` are `-Dname=value` pairs in command-line order (later
    /// wins).
    ///
    /// Precedence matches ZooKeeper: the JVM starts with the `-D` properties,
    /// then `QuorumPeerConfig` calls `System.setProperty("zookeeper." + key)`
    /// for each unknown zoo.cfg key, which *overwrites* a `-D` value for the
    /// same property. So `4lw.commands.whitelist` in the file beats
    /// `-Dzookeeper.4lw.commands.whitelist`. Properties the file cannot set
    /// (`jute.maxbuffer`, `znode.container.*`) come only from `-D`.
    pub fn load(
        file: Option<(&Path, &str)>,
        defines: &[(String, String)],
    ) -> Result<(ServerConfig, Vec<ConfigWarning>), ConfigError> {
        let (text, from_file) = match file {
            Some((_path, text)) => (text, true),
            None => (EMBEDDED_ZOO_CFG, false),
        };
        let raw = parse_properties(text)?;
        let mut loader = Loader {
            cfg: ServerConfig::zookeeper_defaults(),
            props: Props::default(),
            warnings: Vec::new(),
            from_file,
        };
        if from_file {
            loader.apply_defines(defines);
        }
        loader.apply_entries(&raw)?;
        if !from_file {
            // No file to overwrite them, so the operator's -D wins over the
            // embedded defaults.
            loader.apply_defines(defines);
        }
        loader.derive_from_properties()?;
        loader.cfg.entries = raw.into_iter().map(|e| (e.key, e.value)).collect();
        loader.cfg.properties = loader.props.map;
        Ok((loader.cfg, loader.warnings))
    }

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
            max_client_cnxns: 60,
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
            global_outstanding_limit: 1000,
            pre_alloc_size_kb: 65536,
            force_sync: true,
            fsync_warning_threshold_ms: 1000,
            snapshot_compression_method: String::new(),
            digest_enabled: true,
            close_session_txn_enabled: true,
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

// ---------------------------------------------------------------------------
// Rewriting the config files (reconfigEnabled)
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Java properties format
// ---------------------------------------------------------------------------

/// One logical `key=value` line, unescaped and trimmed like ZooKeeper does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawEntry {
    /// 1-based physical line the logical line starts on.
    line: usize,
    key: String,
    value: String,
}

/// Java's `Properties` treats only these as whitespace between tokens.
fn is_prop_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// `String.trim()`: strips every char up to and including U+0020.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Parses text in `java.util.Properties.load` format, keeping every entry in
/// order (later duplicates are resolved by the caller, as `Properties` would).
fn parse_properties(text: &str) -> Result<Vec<RawEntry>, ConfigError> {
    // \n, \r and \r\n all end a line in Java's LineReader.
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let physical: Vec<&str> = normalized.split('\n').collect();
    let mut entries = Vec::new();
    let mut i = 0;
    while i < physical.len() {
        let start_line = i + 1;
        let first = physical[i].trim_start_matches(is_prop_ws);
        i += 1;
        // Comments are recognised only at the start of a logical line, and a
        // comment never continues onto the next line.
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = first.to_string();
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            if i >= physical.len() {
                break; // Java drops a dangling backslash at end of input.
            }
            // Leading whitespace of a continuation line is not part of the
            // value; a blank continuation line simply ends the logical line.
            logical.push_str(physical[i].trim_start_matches(is_prop_ws));
            i += 1;
        }
        let (key, value) = split_key_value(&logical);
        let key = unescape(key, start_line)?;
        let value = unescape(value, start_line)?;
        entries.push(RawEntry {
            line: start_line,
            key: java_trim(&key).to_string(),
            value: java_trim(&value).to_string(),
        });
    }
    Ok(entries)
}

/// Splits a logical line at the first unescaped `=`, `:` or whitespace; a
/// whitespace-terminated key may still be followed by one `=` or `:`.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut has_sep = false;
    for (idx, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' {
            key_end = idx;
            value_start = idx + 1;
            has_sep = true;
            break;
        } else if is_prop_ws(c) {
            key_end = idx;
            value_start = idx + c.len_utf8();
            break;
        }
    }
    let rest = &line[value_start..];
    let mut skip = 0;
    for (idx, c) in rest.char_indices() {
        if is_prop_ws(c) {
            skip = idx + 1;
        } else if !has_sep && (c == '=' || c == ':') {
            has_sep = true;
            skip = idx + 1;
        } else {
            skip = idx;
            break;
        }
    }
    (&line[..key_end], &rest[skip..])
}

/// Java's `loadConvert`: `\t \n \r \f`, `\uXXXX`, and `\x` for anything else.
fn unescape(s: &str, line: usize) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    let mut units: Vec<u16> = Vec::new(); // pending \u escapes (UTF-16)
    let mut chars = s.chars();
    let flush = |units: &mut Vec<u16>, out: &mut String| {
        out.extend(char::decode_utf16(units.drain(..)).map(|r| r.unwrap_or('\u{fffd}')));
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush(&mut units, &mut out);
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else { break };
        if e == 'u' {
            let hex: String = chars.by_ref().take(4).collect();
            let code = (hex.len() == 4 && hex.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| u16::from_str_radix(&hex, 16).ok())
                .flatten()
                .ok_or_else(|| ConfigError::Syntax {
                    line,
                    reason: "malformed \\uxxxx encoding".to_string(),
                })?;
            units.push(code);
            continue;
        }
        flush(&mut units, &mut out);
        out.push(match e {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\x0c',
            other => other,
        });
    }
    flush(&mut units, &mut out);
    Ok(out)
}

// ---------------------------------------------------------------------------
// Value parsing helpers
// ---------------------------------------------------------------------------

fn invalid(key: &str, line: Option<usize>, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        line,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// `Integer.parseInt`: decimal with optional sign, 32-bit.
fn parse_i32(key: &str, line: Option<usize>, value: &str) -> Result<i32, ConfigError> {
    value
        .parse::<i32>()
        .map_err(|_| invalid(key, line, value, "not an integer"))
}

/// `Long.parseLong`.
fn parse_i64(key: &str, line: Option<usize>, value: &str) -> Result<i64, ConfigError> {
    value
        .parse::<i64>()
        .map_err(|_| invalid(key, line, value, "not an integer"))
}

/// A non-negative `Integer.parseInt` value.
fn parse_u32(key: &str, line: Option<usize>, value: &str) -> Result<u32, ConfigError> {
    let n = parse_i32(key, line, value)?;
    u32::try_from(n).map_err(|_| invalid(key, line, value, "must not be negative"))
}

/// `QuorumPeerConfig.parseBoolean`: `true`/`false`, case-insensitive.
fn parse_bool(key: &str, line: Option<usize>, value: &str) -> Result<bool, ConfigError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(invalid(key, line, value, "expected 'true' or 'false'"))
    }
}

/// A port number; ZooKeeper treats 0 as "not set".
fn parse_port(key: &str, line: Option<usize>, value: &str) -> Result<Option<u16>, ConfigError> {
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
fn java_decode(s: &str) -> Option<i64> {
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
fn parse_ip_literal(s: &str) -> Option<IpAddr> {
    if s.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

fn parse_ip(key: &str, line: Option<usize>, value: &str) -> Result<IpAddr, ConfigError> {
    parse_ip_literal(value).ok_or_else(|| {
        invalid(
            key,
            line,
            value,
            "not an IP address (corral does not resolve host names in its configuration)",
        )
    })
}

/// Java's `String.split`, which drops trailing empty pieces.
fn java_split(s: &str, sep: char) -> Vec<&str> {
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts == [""] && !s.is_empty() {
        parts.clear();
    }
    parts
}

/// `ConfigUtils.getHostAndPort`: `host:port[:...]` with `[v6]` literals.
fn host_and_port(s: &str) -> Result<Vec<String>, String> {
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
        // ZooKeeper skips the character after ']' without checking it is ':'.
        let tail = after.get(1..).unwrap_or("");
        let mut parts = vec![host.to_string()];
        parts.extend(java_split(tail, ':').into_iter().map(str::to_string));
        return Ok(parts);
    }
    Ok(java_split(s, ':').into_iter().map(str::to_string).collect())
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

/// Where a property's value came from, so a bad value is blamed on the
/// `zoo.cfg` key and line the user wrote (or the `-D` name).
#[derive(Debug, Clone)]
struct Origin {
    key: String,
    line: Option<usize>,
}

#[derive(Default)]
struct Props {
    map: BTreeMap<String, String>,
    origin: HashMap<String, Origin>,
}

impl Props {
    fn set(&mut self, name: String, value: String, origin: Origin) {
        self.origin.insert(name.clone(), origin);
        self.map.insert(name, value);
    }

    /// The value (trimmed, as ZooKeeper's readers effectively see it) and
    /// who to blame for it.
    fn get(&self, name: &str) -> Option<(&str, Origin)> {
        let value = self.map.get(name)?;
        let origin = self.origin.get(name).cloned().unwrap_or(Origin {
            key: name.to_string(),
            line: None,
        });
        Some((value.trim(), origin))
    }
}

/// Intermediate state for the keys `QuorumPeerConfig` parses itself.
#[derive(Default)]
struct QuorumKeys {
    client_port_address: Option<(String, Option<usize>)>,
    secure_client_port_address: Option<(String, Option<usize>)>,
    client_port_key_line: Option<usize>,
    min_session: Option<(u32, Option<usize>)>,
    max_session: Option<(u32, Option<usize>)>,
    enable_sasl: bool,
    server_require_sasl: Option<Option<usize>>,
    learner_require_sasl: Option<Option<usize>>,
    multi_address_enabled: bool,
}

struct Loader {
    cfg: ServerConfig,
    props: Props,
    warnings: Vec<ConfigWarning>,
    from_file: bool,
}

impl Loader {
    fn warn(&mut self, key: &str, line: Option<usize>, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn apply_defines(&mut self, defines: &[(String, String)]) {
        for (name, value) in defines {
            let origin = Origin {
                key: name.clone(),
                line: None,
            };
            self.props.set(name.clone(), value.clone(), origin);
        }
    }

    fn apply_entries(&mut self, raw: &[RawEntry]) -> Result<(), ConfigError> {
        // java.util.Properties keeps the last value of a repeated key.
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (idx, e) in raw.iter().enumerate() {
            if let Some(prev) = last.insert(e.key.as_str(), idx) {
                let prev_line = raw[prev].line;
                self.warn(
                    &e.key,
                    self.line(e),
                    format!(
                        "{} is set more than once (also on line {prev_line}); the last value wins",
                        e.key
                    ),
                );
            }
        }
        let effective: Vec<&RawEntry> = raw
            .iter()
            .enumerate()
            .filter(|(idx, e)| last.get(e.key.as_str()) == Some(idx))
            .map(|(_, e)| e)
            .collect();

        let has_dynamic_file = effective.iter().any(|e| e.key == "dynamicConfigFile");
        let mut q = QuorumKeys::default();
        let mut server_lines = Vec::new();
        for e in &effective {
            let line = self.line(e);
            let (key, value) = (e.key.as_str(), e.value.as_str());
            let is_quorum_list =
                key.starts_with("server.") || key.starts_with("group") || key.starts_with("weight");
            if is_quorum_list && has_dynamic_file {
                return Err(ConfigError::Conflict {
                    key: key.to_string(),
                    line,
                    reason: format!("parameter {key} must be in a separate dynamic config file"),
                });
            }
            if self.apply_quorum_key(key, line, value, &mut q)? {
                continue;
            }
            // Everything else becomes a system property, as in ZooKeeper;
            // that includes server.N, group.N and weight.N, which ZooKeeper
            // additionally parses into the quorum verifier.
            let name = format!("zookeeper.{key}");
            if key.starts_with("server.") {
                server_lines.push((*e, line));
            }
            self.check_unknown(key, line, value);
            let origin = Origin {
                key: key.to_string(),
                line,
            };
            self.props.set(name, value.to_string(), origin);
        }

        // Multi-address lines need zookeeper.multiAddress.enabled. ZooKeeper
        // reads that from the system property only; corral also accepts the
        // zoo.cfg key, which is what the admin guide tells users to set.
        if let Some((v, _)) = self.props.get("zookeeper.multiAddress.enabled") {
            q.multi_address_enabled |= v.eq_ignore_ascii_case("true");
        }
        for (e, line) in server_lines {
            let entry = self.parse_server(&e.key, line, &e.value, q.multi_address_enabled)?;
            self.cfg.servers.push(entry);
        }
        self.cfg.servers.sort_by_key(|s| s.id);

        self.finish_quorum_keys(&q)
    }

    /// Line numbers are reported for the user's file only, not for the
    /// embedded defaults.
    fn line(&self, e: &RawEntry) -> Option<usize> {
        self.from_file.then_some(e.line)
    }

    /// Handles a key `QuorumPeerConfig.parseProperties` knows. Returns false
    /// for keys it would turn into `zookeeper.K` properties.
    fn apply_quorum_key(
        &mut self,
        key: &str,
        line: Option<usize>,
        value: &str,
        q: &mut QuorumKeys,
    ) -> Result<bool, ConfigError> {
        let cfg = &mut self.cfg;
        match key {
            "dataDir" | "dataLogDir" if value.is_empty() => {
                return Err(invalid(key, line, value, "must not be empty"));
            }
            "dataDir" => {
                self.warnings
                    .extend(relative_path_warning(key, line, value));
                cfg.data_dir = Some(PathBuf::from(value));
            }
            "dataLogDir" => {
                self.warnings
                    .extend(relative_path_warning(key, line, value));
                cfg.data_log_dir = Some(PathBuf::from(value));
            }
            "clientPort" => {
                cfg.client_port = parse_port(key, line, value)?;
                q.client_port_key_line = line;
            }
            "clientPortAddress" => q.client_port_address = Some((value.to_string(), line)),
            "secureClientPort" => cfg.secure_client_port = parse_port(key, line, value)?,
            "secureClientPortAddress" => {
                q.secure_client_port_address = Some((value.to_string(), line))
            }
            "tickTime" => {
                let tick = parse_i32(key, line, value)?;
                if tick <= 0 {
                    return Err(invalid(key, line, value, "must be a positive number of ms"));
                }
                cfg.tick_time_ms = tick as u32;
            }
            "maxClientCnxns" => {
                let n = parse_i32(key, line, value)?;
                // ZooKeeper only enforces a limit > 0, so a negative value
                // behaves like 0 (unlimited).
                cfg.max_client_cnxns = n.max(0) as u32;
            }
            "minSessionTimeout" | "maxSessionTimeout" => {
                let n = parse_i32(key, line, value)?;
                // -1 is ZooKeeper's own "derive from tickTime" marker.
                let parsed = match n {
                    -1 => None,
                    n if n < 0 => {
                        return Err(invalid(key, line, value, "must not be negative"));
                    }
                    n => Some((n as u32, line)),
                };
                if key == "minSessionTimeout" {
                    q.min_session = parsed;
                } else {
                    q.max_session = parsed;
                }
            }
            "initLimit" => cfg.init_limit = Some(parse_u32(key, line, value)?),
            "syncLimit" => cfg.sync_limit = Some(parse_u32(key, line, value)?),
            "electionAlg" => {
                if parse_i32(key, line, value)? != 3 {
                    return Err(invalid(key, line, value, "only 3 is supported"));
                }
            }
            "peerType" => {
                cfg.peer_type_observer = match value.to_ascii_lowercase().as_str() {
                    "observer" => true,
                    "participant" => false,
                    _ => {
                        return Err(invalid(
                            key,
                            line,
                            value,
                            "expected 'observer' or 'participant'",
                        ))
                    }
                }
            }
            "dynamicConfigFile" => {
                // Read by `apply_dynamic_file` (the caller does the I/O).
                cfg.dynamic_config_file = Some(PathBuf::from(value));
            }
            "autopurge.snapRetainCount" => {
                let n = parse_i32(key, line, value)?;
                // PurgeTxnLog refuses to keep fewer than 3; ZooKeeper resets.
                if n < 3 {
                    self.warn(
                        key,
                        line,
                        format!("invalid autopurge.snapRetainCount {n}, using the minimum 3"),
                    );
                }
                self.cfg.autopurge_snap_retain_count = n.max(3) as u32;
            }
            "autopurge.purgeInterval" => {
                // Zero or negative disables the purge task in ZooKeeper.
                cfg.autopurge_purge_interval_hours = parse_i32(key, line, value)?.max(0) as u32;
            }
            "standaloneEnabled" => cfg.standalone_enabled = parse_bool(key, line, value)?,
            "reconfigEnabled" => cfg.reconfig_enabled = parse_bool(key, line, value)?,
            "quorum.auth.enableSasl" => q.enable_sasl = parse_bool(key, line, value)?,
            "quorum.auth.serverRequireSasl" => {
                q.server_require_sasl = parse_bool(key, line, value)?.then_some(line)
            }
            "quorum.auth.learnerRequireSasl" => {
                q.learner_require_sasl = parse_bool(key, line, value)?.then_some(line)
            }
            "multiAddress.enabled" => q.multi_address_enabled = parse_bool(key, line, value)?,
            // Known to ZooKeeper and validated like it, but not acted on by
            // corral yet.
            "localSessionsEnabled"
            | "localSessionsUpgradingEnabled"
            | "quorumListenOnAllIPs"
            | "syncEnabled"
            | "sslQuorum"
            | "portUnification"
            | "sslQuorumReloadCertFiles"
            | "jvm.pause.monitor"
            | "multiAddress.reachabilityCheckEnabled" => {
                parse_bool(key, line, value)?;
            }
            "observerMasterPort" => {
                parse_port(key, line, value)?;
            }
            "clientPortListenBacklog"
            | "connectToLearnerMasterLimit"
            | "quorum.cnxn.threads.size"
            | "multiAddress.reachabilityCheckTimeoutMs" => {
                parse_i32(key, line, value)?;
            }
            "jvm.pause.info-threshold.ms"
            | "jvm.pause.warn-threshold.ms"
            | "jvm.pause.sleep.time.ms" => {
                parse_i64(key, line, value)?;
            }
            "quorum.auth.learner.saslLoginContext"
            | "quorum.auth.server.saslLoginContext"
            | "quorum.auth.kerberos.servicePrincipal"
            | "oraclePath"
            | "metricsProvider.className" => {}
            _ if key.starts_with("metricsProvider.") => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Warns about keys that become `zookeeper.K` but are probably not what
    /// the user meant.
    fn check_unknown(&mut self, key: &str, line: Option<usize>, value: &str) {
        if SYSTEM_PROPERTY_ONLY_KEYS.contains(&key) {
            self.warn(
                key,
                line,
                format!(
                    "{key} is read only as a system property; in zoo.cfg it becomes \
                     zookeeper.{key}, which ZooKeeper ignores (pass -D{key}={value} instead)"
                ),
            );
        } else if let Some(bare) = key.strip_prefix("zookeeper.") {
            self.warn(
                key,
                line,
                format!(
                    "{key} already has the zookeeper. prefix; in zoo.cfg it becomes \
                     zookeeper.{key}, which nothing reads (write {bare}= or pass -D{key}= instead)"
                ),
            );
        } else if !DOCUMENTED_KEYS.contains(&key)
            && !DOCUMENTED_PREFIXES.iter().any(|p| key.starts_with(p))
        {
            self.warn(
                key,
                line,
                format!("unknown key {key}, set as property zookeeper.{key}"),
            );
        }
    }

    /// The cross-key checks at the end of `parseProperties` and
    /// `parseDynamicConfig`.
    fn finish_quorum_keys(&mut self, q: &QuorumKeys) -> Result<(), ConfigError> {
        if let Some(line) = q.server_require_sasl {
            if !q.enable_sasl {
                return Err(conflict(
                    "quorum.auth.serverRequireSasl",
                    line,
                    "quorum.auth.enableSasl is disabled, so it cannot be required",
                ));
            }
            if q.learner_require_sasl.is_none() {
                return Err(conflict(
                    "quorum.auth.serverRequireSasl",
                    line,
                    "quorum.auth.learnerRequireSasl is disabled, so the server cannot require SASL",
                ));
            }
        }
        if let (Some(line), false) = (q.learner_require_sasl, q.enable_sasl) {
            return Err(conflict(
                "quorum.auth.learnerRequireSasl",
                line,
                "quorum.auth.enableSasl is disabled, so it cannot be required",
            ));
        }

        let cfg = &mut self.cfg;
        if cfg.data_dir.is_none() && self.from_file {
            return Err(ConfigError::Missing {
                key: "dataDir".to_string(),
            });
        }
        if cfg.data_log_dir.is_none() {
            cfg.data_log_dir = cfg.data_dir.clone();
        }

        match (&q.client_port_address, cfg.client_port) {
            (Some((addr, line)), None) => {
                return Err(ConfigError::Conflict {
                    key: "clientPortAddress".to_string(),
                    line: *line,
                    reason: format!("clientPortAddress {addr} is set but clientPort is not set"),
                });
            }
            (Some((addr, line)), Some(_)) => {
                cfg.client_port_address = Some(parse_ip("clientPortAddress", *line, addr)?);
            }
            (None, _) => {}
        }
        match (&q.secure_client_port_address, cfg.secure_client_port) {
            (Some((addr, line)), None) => {
                return Err(ConfigError::Conflict {
                    key: "secureClientPortAddress".to_string(),
                    line: *line,
                    reason: format!(
                        "secureClientPortAddress {addr} is set but secureClientPort is not set"
                    ),
                });
            }
            (Some((addr, line)), Some(_)) => {
                cfg.secure_client_port_address =
                    Some(parse_ip("secureClientPortAddress", *line, addr)?);
            }
            (None, _) => {}
        }

        // Computed in 64 bits: 20 ticks of a large tickTime overflow u32.
        let tick = u64::from(cfg.tick_time_ms);
        let derived = |ticks: u64| u32::try_from(tick * ticks).unwrap_or(u32::MAX);
        cfg.min_session_timeout_ms = q.min_session.map_or(derived(2), |(v, _)| v);
        cfg.max_session_timeout_ms = q.max_session.map_or(derived(20), |(v, _)| v);
        if cfg.min_session_timeout_ms > cfg.max_session_timeout_ms {
            let (key, line) = match (q.min_session, q.max_session) {
                (Some((_, line)), _) => ("minSessionTimeout", line),
                (None, Some((_, line))) => ("maxSessionTimeout", line),
                (None, None) => ("minSessionTimeout", None),
            };
            return Err(ConfigError::Conflict {
                key: key.to_string(),
                line,
                reason: format!(
                    "minSessionTimeout ({}) must not be larger than maxSessionTimeout ({})",
                    cfg.min_session_timeout_ms, cfg.max_session_timeout_ms
                ),
            });
        }

        self.check_ensemble()
    }

    /// `parseDynamicConfig` and `checkValidity`: the shape of the server list.
    fn check_ensemble(&mut self) -> Result<(), ConfigError> {
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
    fn parse_server(
        &mut self,
        key: &str,
        line: Option<usize>,
        value: &str,
        multi_address_enabled: bool,
    ) -> Result<ServerEntry, ConfigError> {
        let bad = |reason: String| invalid(key, line, value, reason);
        let wrong_format = || {
            bad(
                "expected host:port:port[:participant|:observer][;[clientHost:]clientPort]"
                    .to_string(),
            )
        };
        let id_text = &key["server.".len()..];
        let id: u64 = id_text.parse().map_err(|_| {
            bad(format!(
                "server id '{id_text}' is not a non-negative integer"
            ))
        })?;

        let server_client = java_split(value, ';');
        if server_client.is_empty() || server_client.len() > 2 {
            return Err(wrong_format());
        }
        let port = |text: &str, what: &str| -> Result<u16, ConfigError> {
            let text = text.trim();
            text.parse::<i32>()
                .ok()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| bad(format!("{what} '{text}' is not a port number")))
        };

        let (client_address, client_port) = match server_client.get(1) {
            None => (None, None),
            Some(client) => {
                let parts = host_and_port(client.trim()).map_err(bad)?;
                match parts.as_slice() {
                    [p] => (None, Some(port(p, "client port")?)),
                    [h, p] => (Some(h.trim().to_string()), Some(port(p, "client port")?)),
                    _ => return Err(wrong_format()),
                }
            }
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

        let addresses = java_split(server_client[0], '|');
        if addresses.len() > 1 && !multi_address_enabled {
            return Err(bad(format!(
                "multiple addresses given for server {id} but multiAddress.enabled is false"
            )));
        }
        let mut first: Option<(String, u16, u16)> = None;
        let mut role: Option<bool> = None;
        for address in &addresses {
            let parts = host_and_port(address.trim()).map_err(bad)?;
            if parts.len() < 3 || parts.len() > 4 {
                return Err(wrong_format());
            }
            let quorum_port = port(&parts[1], "quorum port")?;
            let election_port = port(&parts[2], "election port")?;
            if quorum_port == election_port {
                return Err(bad(format!(
                    "quorum and election port must be different for server.{id}"
                )));
            }
            let observer = match parts.get(3).map(|t| t.trim().to_ascii_lowercase()) {
                None => None,
                Some(t) if t == "observer" => Some(true),
                Some(t) if t == "participant" => Some(false),
                Some(t) => return Err(bad(format!("unrecognised peer type '{t}'"))),
            };
            if let (Some(a), Some(b)) = (role, observer) {
                if a != b {
                    return Err(bad("multiple addresses must have the same role".to_string()));
                }
            }
            role = role.or(observer);
            if first.is_none() {
                first = Some((parts[0].trim().to_string(), quorum_port, election_port));
            }
        }
        if addresses.len() > 1 {
            self.warn(
                key,
                line,
                format!("{key} lists several addresses; corral uses only the first"),
            );
        }
        let Some((host, quorum_port, election_port)) = first else {
            return Err(wrong_format());
        };
        Ok(ServerEntry {
            id,
            host,
            quorum_port,
            election_port,
            observer: role.unwrap_or(false),
            client_address,
            client_port,
        })
    }

    /// Fills in the settings ZooKeeper reads from system properties.
    fn derive_from_properties(&mut self) -> Result<(), ConfigError> {
        // 4lw.commands.whitelist, plus isro when read-only mode is on (the
        // client library itself probes it then).
        let mut whitelist = match self.props.get("zookeeper.4lw.commands.whitelist") {
            Some((v, _)) => FourLetterWhitelist::parse(v),
            None => FourLetterWhitelist::default(),
        };
        if self.props.get("readonlymode.enabled").map(|(v, _)| v) == Some("true") {
            whitelist.insert("isro");
        }
        self.cfg.four_letter_whitelist = whitelist;

        if let Some(n) = self.prop_int("jute.maxbuffer", 1, i64::from(i32::MAX))? {
            self.cfg.jute_max_buffer = n as usize;
        }
        if let Some(b) = self.prop_bool("zookeeper.extendedTypesEnabled")? {
            self.cfg.extended_types_enabled = b;
        }
        self.cfg.super_digest = self
            .props
            .map
            .get("zookeeper.DigestAuthenticationProvider.superDigest")
            .cloned();
        if let Some(b) = self.prop_bool("zookeeper.DigestAuthenticationProvider.enabled")? {
            self.cfg.digest_auth_enabled = b;
        }

        // ZooKeeper compares with "yes"/"no" exactly; anything else silently
        // takes the default, which is worth pointing out.
        if let Some((v, origin)) = self.props.get("zookeeper.skipACL") {
            self.cfg.skip_acl = v == "yes";
            if v != "yes" && v != "no" {
                let msg = format!("skipACL is '{v}', not 'yes'; ACLs stay enforced");
                self.warn(&origin.key, origin.line, msg);
            }
        }
        if let Some((v, origin)) = self.props.get("zookeeper.forceSync") {
            self.cfg.force_sync = v != "no";
            if v != "yes" && v != "no" {
                let msg = format!("forceSync is '{v}', not 'no'; the log is still fsynced");
                self.warn(&origin.key, origin.line, msg);
            }
        }

        const AUTH_PREFIX: &str = "zookeeper.authProvider.";
        self.cfg.auth_providers = self
            .props
            .map
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.strip_prefix(AUTH_PREFIX)?.to_string(),
                    v.trim().to_string(),
                ))
            })
            .collect();
        self.configure_ssl_auth()?;

        let int_max = i64::from(i32::MAX);
        if let Some(n) = self.prop_int("znode.container.checkIntervalMs", 1, int_max)? {
            self.cfg.container_check_interval_ms = n as u64;
        }
        if let Some(n) = self.prop_int("znode.container.maxPerMinute", 1, int_max)? {
            self.cfg.container_max_per_minute = n as u32;
        }
        if let Some(n) = self.prop_int("znode.container.maxNeverUsedIntervalMs", 0, i64::MAX)? {
            self.cfg.container_max_never_used_interval_ms = n as u64;
        }

        if let Some(b) = self.prop_bool("zookeeper.admin.enableServer")? {
            self.cfg.admin_enable_server = b;
        }
        if let Some((v, origin)) = self.props.get("zookeeper.admin.serverAddress") {
            self.cfg.admin_server_address = parse_ip(&origin.key, origin.line, v)?;
        }
        if let Some(n) = self.prop_int("zookeeper.admin.serverPort", 0, 65535)? {
            self.cfg.admin_server_port = n as u16;
        }
        if let Some((v, _)) = self.props.get("zookeeper.admin.commandURL") {
            self.cfg.admin_command_url = v.to_string();
        }

        if let Some(n) = self.prop_int("zookeeper.globalOutstandingLimit", 0, int_max)? {
            self.cfg.global_outstanding_limit = n as u32;
        }
        if let Some((v, origin)) = self.props.get("zookeeper.preAllocSize") {
            // FilePadding uses Long.parseLong here, not decode.
            let n = parse_i64(&origin.key, origin.line, v)?;
            self.cfg.pre_alloc_size_kb = u64::try_from(n)
                .map_err(|_| invalid(&origin.key, origin.line, v, "must not be negative"))?;
        }
        // FileTxnLog prefers the prefixed name and falls back to the old one.
        for name in [
            "zookeeper.fsync.warningthresholdms",
            "fsync.warningthresholdms",
        ] {
            if let Some(n) = self.prop_int(name, 0, i64::MAX)? {
                self.cfg.fsync_warning_threshold_ms = n as u64;
                break;
            }
        }
        if let Some((v, origin)) = self.props.get("zookeeper.snapshot.compression.method") {
            let method = v.to_ascii_lowercase();
            if matches!(method.as_str(), "" | "gz" | "snappy") {
                self.cfg.snapshot_compression_method = method;
            } else {
                // ZooKeeper silently falls back to no compression.
                let msg = format!(
                    "unknown snapshot.compression.method '{v}' (expected gz or snappy); \
                     snapshots are not compressed"
                );
                self.warn(&origin.key, origin.line, msg);
            }
        }
        if let Some(n) = self.prop_int("zookeeper.snapCount", i64::MIN, int_max)? {
            if n < 2 {
                let origin = self.props.get("zookeeper.snapCount").map(|(_, o)| o);
                let origin = origin.expect("snapCount was just read");
                self.warn(
                    &origin.key,
                    origin.line,
                    format!("snapCount should be 2 or more, not {n}; using 2"),
                );
            }
            self.cfg.snap_count = n.max(2) as u64;
        }
        if let Some(b) = self.prop_bool("zookeeper.digest.enabled")? {
            self.cfg.digest_enabled = b;
        }
        if let Some(b) = self.prop_bool("zookeeper.closeSessionTxn.enabled")? {
            self.cfg.close_session_txn_enabled = b;
        }
        Ok(())
    }

    /// `QuorumPeerConfig.configureSSLAuth`: with a secure port, the scheme in
    /// `zookeeper.ssl.authProvider` (default x509) must have a provider, and
    /// x509 gets ZooKeeper's built-in one when none is configured.
    fn configure_ssl_auth(&mut self) -> Result<(), ConfigError> {
        if self.cfg.secure_client_port.is_none() {
            return Ok(());
        }
        let (scheme, origin) = match self.props.get("zookeeper.ssl.authProvider") {
            Some((v, origin)) => (v.to_string(), Some(origin)),
            None => ("x509".to_string(), None),
        };
        if self
            .cfg
            .auth_providers
            .iter()
            .any(|(name, _)| *name == scheme)
        {
            return Ok(());
        }
        if scheme == "x509" {
            let class = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";
            let origin = Origin {
                key: "secureClientPort".to_string(),
                line: None,
            };
            self.props.set(
                "zookeeper.authProvider.x509".to_string(),
                class.to_string(),
                origin,
            );
            self.cfg
                .auth_providers
                .push(("x509".to_string(), class.to_string()));
            self.cfg.auth_providers.sort();
            return Ok(());
        }
        let origin = origin.expect("a non-default scheme came from a property");
        Err(ConfigError::Conflict {
            key: origin.key,
            line: origin.line,
            reason: format!(
                "no auth provider configured for the SSL authentication scheme '{scheme}'"
            ),
        })
    }

    /// A property read with `Integer.getInteger`/`Long.getLong` semantics,
    /// except that a malformed or out-of-range value is an error instead of
    /// silently meaning the default.
    fn prop_int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ConfigError> {
        let Some((v, origin)) = self.props.get(name) else {
            return Ok(None);
        };
        let n =
            java_decode(v).ok_or_else(|| invalid(&origin.key, origin.line, v, "not an integer"))?;
        if n < min || n > max {
            let reason = if min == i64::MIN {
                format!("must be at most {max}")
            } else {
                format!("must be between {min} and {max}")
            };
            return Err(invalid(&origin.key, origin.line, v, reason));
        }
        Ok(Some(n))
    }

    /// A boolean property; ZooKeeper's `Boolean.parseBoolean` would read any
    /// non-`true` text as false, corral rejects it so typos surface.
    fn prop_bool(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        match self.props.get(name) {
            None => Ok(None),
            Some((v, origin)) => parse_bool(&origin.key, origin.line, v).map(Some),
        }
    }
}

fn conflict(key: &str, line: Option<usize>, reason: &str) -> ConfigError {
    ConfigError::Conflict {
        key: key.to_string(),
        line,
        reason: reason.to_string(),
    }
}

/// ZooKeeper's `VerifyingFileFactory` warning for relative data paths: they
/// depend on the directory the server happens to start in.
fn relative_path_warning(key: &str, line: Option<usize>, value: &str) -> Option<ConfigWarning> {
    if Path::new(value).is_absolute() || value.starts_with("./") {
        return None;
    }
    Some(ConfigWarning {
        line,
        key: key.to_string(),
        message: format!("{key} {value} is relative; prepend ./ to indicate that you're sure"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (ServerConfig, Vec<ConfigWarning>) {
        ServerConfig::load(Some((Path::new("zoo.cfg"), text)), &[]).expect("valid config")
    }

    fn load_err(text: &str) -> ConfigError {
        ServerConfig::load(Some((Path::new("zoo.cfg"), text)), &[]).expect_err("invalid config")
    }

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

    fn defines(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
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

    // Session timeout bounds derive from tickTime unless set; min > max is rejected.
    #[test]
    fn session_timeouts_derive_from_tick_time() {
        let (cfg, _) = load("dataDir=/d\ntickTime=1000\n");
        assert_eq!(
            (cfg.min_session_timeout_ms, cfg.max_session_timeout_ms),
            (2000, 20000)
        );
        let (cfg, _) = load("dataDir=/d\ntickTime=1000\nminSessionTimeout=500\n");
        assert_eq!(
            (cfg.min_session_timeout_ms, cfg.max_session_timeout_ms),
            (500, 20000)
        );
        // -1 is ZooKeeper's explicit "derive it" value.
        let (cfg, _) = load("dataDir=/d\ntickTime=1000\nmaxSessionTimeout=-1\n");
        assert_eq!(cfg.max_session_timeout_ms, 20000);

        let err = load_err("dataDir=/d\ntickTime=1000\nminSessionTimeout=30000\n");
        assert!(
            matches!(&err, ConfigError::Conflict { key, line: Some(3), .. } if key == "minSessionTimeout"),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .contains("must not be larger than maxSessionTimeout"));
    }

    // Unknown keys become zookeeper.K properties with a typo warning; documented ones stay silent.
    #[test]
    fn unknown_key_becomes_property_with_warning() {
        let text = "dataDir=/d\nextendedTypesEnabled=true\nsnapCount=5000\nsslQuorum=false\n\
                    tickTme=100\nmetricsProvider.httpPort=7000\n";
        let (cfg, warnings) = load(text);
        assert!(cfg.extended_types_enabled);
        assert_eq!(cfg.snap_count, 5000);
        assert_eq!(cfg.property("zookeeper.extendedTypesEnabled"), Some("true"));
        assert_eq!(cfg.property("zookeeper.tickTme"), Some("100"));
        // Keys QuorumPeerConfig handles itself never become properties.
        assert_eq!(cfg.property("zookeeper.sslQuorum"), None);
        assert_eq!(cfg.property("zookeeper.metricsProvider.httpPort"), None);
        assert_eq!(cfg.tick_time_ms, 3000);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].key, "tickTme");
        assert_eq!(warnings[0].line, Some(5));
        assert_eq!(
            warnings[0].to_string(),
            "zoo.cfg line 5: unknown key tickTme, set as property zookeeper.tickTme"
        );
    }

    // -D defines set properties; a zoo.cfg key for the same property overwrites them, as in ZooKeeper.
    #[test]
    fn defines_and_file_precedence() {
        let d = defines(&[
            ("jute.maxbuffer", "0x200000"),
            ("zookeeper.4lw.commands.whitelist", "*"),
            ("zookeeper.skipACL", "yes"),
            ("znode.container.checkIntervalMs", "1000"),
            ("zookeeper.authProvider.sasl", "org.example.Sasl"),
        ]);
        let text = "dataDir=/d\n4lw.commands.whitelist=ruok\nauthProvider.1=org.example.One\n";
        let (cfg, warnings) = ServerConfig::load(Some((Path::new("zoo.cfg"), text)), &d).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.jute_max_buffer, 0x200000);
        assert!(cfg.skip_acl);
        assert_eq!(cfg.container_check_interval_ms, 1000);
        // The file's value replaced the -D value.
        assert_eq!(
            cfg.property("zookeeper.4lw.commands.whitelist"),
            Some("ruok")
        );
        assert!(cfg.four_letter_whitelist.allows("ruok"));
        assert!(!cfg.four_letter_whitelist.allows("dump"));
        assert_eq!(
            cfg.auth_providers,
            vec![
                ("1".to_string(), "org.example.One".to_string()),
                ("sasl".to_string(), "org.example.Sasl".to_string()),
            ]
        );
        // A bad -D value is reported under its property name, with no line.
        let d = defines(&[("zookeeper.admin.serverPort", "http")]);
        let err = ServerConfig::load(None, &d).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value 'http' for zookeeper.admin.serverPort: not an integer"
        );
    }

    // Invalid values in known keys are errors that name the key and the line.
    #[test]
    fn invalid_value_names_key_and_line() {
        let err = load_err("# comment\ndataDir=/d\n\n\n\n\ntickTime=abc\n");
        assert_eq!(
            err.to_string(),
            "zoo.cfg line 7: invalid value 'abc' for tickTime: not an integer"
        );
        let err = load_err("dataDir=/d\nclientPort=70000\n");
        assert!(
            matches!(&err, ConfigError::Invalid { key, line: Some(2), .. } if key == "clientPort")
        );
        let err = load_err("dataDir=/d\nreconfigEnabled=yes\n");
        assert_eq!(
            err.to_string(),
            "zoo.cfg line 2: invalid value 'yes' for reconfigEnabled: expected 'true' or 'false'"
        );
        let err = load_err("dataDir=/d\nclientPort=2181\nclientPortAddress=zk.example.com\n");
        assert!(
            matches!(&err, ConfigError::Invalid { line: Some(3), .. }),
            "{err:?}"
        );
        // Property-derived settings are blamed on the zoo.cfg key that set them.
        let err = load_err("dataDir=/d\nadmin.serverPort=99999\n");
        assert!(
            matches!(&err, ConfigError::Invalid { key, line: Some(2), .. } if key == "admin.serverPort"),
            "{err:?}"
        );
        assert!(
            matches!(load_err("tickTime=2000\n"), ConfigError::Missing { key } if key == "dataDir")
        );
        assert!(matches!(
            load_err("dataDir=\n"),
            ConfigError::Invalid { line: Some(1), .. }
        ));
        assert!(matches!(
            load_err("dataDir=/d\nclientPortAddress=127.0.0.1\n"),
            ConfigError::Conflict { .. }
        ));
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

        // Read-only mode adds isro, as ZooKeeper does.
        let d = defines(&[("readonlymode.enabled", "true")]);
        let (cfg, _) = ServerConfig::load(Some((Path::new("z"), "dataDir=/d")), &d).unwrap();
        assert!(cfg.four_letter_whitelist.allows("isro"));
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

    // Java properties syntax: comments, separators, escapes, continuations, duplicates.
    #[test]
    fn properties_syntax() {
        let text = "# comment\n\
                    ! also a comment \\\n\
                    dataDir /data/zk\n\
                    \x20\x20tickTime : 1500  \n\
                    4lw.commands.whitelist=stat, \\\n\
                    \x20\x20\x20\x20ruok,\\\n\
                    \x20\x20\x20\x20conf\n\
                    odd\\=key=a\\tb\\u0041\n\
                    clientPort=2181\r\n\
                    clientPort=2182\n\
                    emptyValue\n";
        let (cfg, warnings) = load(text);
        assert_eq!(cfg.data_dir, Some(PathBuf::from("/data/zk")));
        assert_eq!(cfg.tick_time_ms, 1500);
        assert_eq!(
            cfg.property("zookeeper.4lw.commands.whitelist"),
            Some("stat, ruok,conf")
        );
        assert!(cfg.four_letter_whitelist.allows("conf"));
        assert_eq!(cfg.property("zookeeper.odd=key"), Some("a\tbA"));
        assert_eq!(cfg.client_port, Some(2182));
        assert_eq!(cfg.property("zookeeper.emptyValue"), Some(""));
        assert_eq!(cfg.entries.len(), 7);
        assert_eq!(
            cfg.entries[2],
            ("4lw.commands.whitelist".into(), "stat, ruok,conf".into())
        );
        // The continuation started on line 5; the duplicate and unknown keys are flagged.
        let keys: Vec<(&str, Option<usize>)> =
            warnings.iter().map(|w| (w.key.as_str(), w.line)).collect();
        assert!(keys.contains(&("clientPort", Some(10))), "{keys:?}");
        assert!(keys.contains(&("odd=key", Some(8))), "{keys:?}");
        assert!(keys.contains(&("emptyValue", Some(11))), "{keys:?}");

        let err = load_err("dataDir=/d\nx=\\u12\n");
        assert!(matches!(err, ConfigError::Syntax { line: 2, .. }));
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

    // Property-derived values follow ZooKeeper's quirks: yes/no flags, minimums, system-property-only keys.
    #[test]
    fn property_quirks() {
        let text = "dataDir=data\nskipACL=true\nforceSync=no\nsnapCount=1\n\
                    autopurge.snapRetainCount=1\njute.maxbuffer=5000000\n\
                    snapshot.compression.method=GZ\nsecureClientPort=2281\n";
        let (cfg, warnings) = load(text);
        assert!(!cfg.skip_acl);
        assert!(!cfg.force_sync);
        assert_eq!(cfg.snap_count, 2);
        assert_eq!(cfg.autopurge_snap_retain_count, 3);
        assert_eq!(cfg.jute_max_buffer, 0xfffff);
        assert_eq!(cfg.snapshot_compression_method, "gz");
        assert_eq!(cfg.secure_client_port, Some(2281));
        assert_eq!(
            cfg.auth_providers,
            vec![(
                "x509".to_string(),
                "org.apache.zookeeper.server.auth.X509AuthenticationProvider".to_string()
            )]
        );
        let keys: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
        for key in [
            "dataDir",
            "skipACL",
            "snapCount",
            "autopurge.snapRetainCount",
            "jute.maxbuffer",
        ] {
            assert!(keys.contains(&key), "{key} not in {keys:?}");
        }
        assert_eq!(warnings.len(), 5, "{warnings:?}");
    }
}
