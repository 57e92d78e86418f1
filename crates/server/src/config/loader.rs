//! The loader: zoo.cfg entries and `-D` defines into a `ServerConfig`, in ZooKeeper's order
//! (defines, then the file's keys, which overwrite them), then the cross-key checks and the
//! settings ZooKeeper reads from system properties.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::keys::QuorumKeys;
use super::properties::{parse_properties, RawEntry};
use super::support::{self, Setting, Source, Support};
use super::value::{invalid, java_decode, parse_bool, parse_i64, parse_ip};
use super::{
    ConfigError, ConfigWarning, FourLetterWhitelist, QuorumSaslConfig, ServerConfig,
    EMBEDDED_ZOO_CFG,
};

/// Where a property's value came from, so a bad value is blamed on the
/// `zoo.cfg` key and line the user wrote (or the `-D` name).
#[derive(Debug, Clone)]
pub(super) struct Origin {
    pub(super) key: String,
    pub(super) line: Option<usize>,
}

#[derive(Default)]
pub(super) struct Props {
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
    pub(super) fn get(&self, name: &str) -> Option<(&str, Origin)> {
        let value = self.map.get(name)?;
        let origin = self.origin.get(name).cloned().unwrap_or(Origin {
            key: name.to_string(),
            line: None,
        });
        Some((value.trim(), origin))
    }
}

pub(super) struct Loader {
    pub(super) cfg: ServerConfig,
    pub(super) props: Props,
    pub(super) warnings: Vec<ConfigWarning>,
    pub(super) from_file: bool,
}

fn conflict(key: &str, line: Option<usize>, reason: &str) -> ConfigError {
    ConfigError::Conflict {
        key: key.to_string(),
        line,
        reason: reason.to_string(),
    }
}

impl ServerConfig {
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
        loader.check_support(&raw, defines)?;
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
}

impl Loader {
    pub(super) fn warn(&mut self, key: &str, line: Option<usize>, message: impl Into<String>) {
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
    pub(super) fn line(&self, e: &RawEntry) -> Option<usize> {
        self.from_file.then_some(e.line)
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

        if q.enable_sasl {
            let or = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
            self.cfg.quorum_sasl = Some(QuorumSaslConfig {
                learner_require: q.learner_require_sasl.is_some(),
                server_require: q.server_require_sasl.is_some(),
                learner_context: or(&q.learner_login_context, "QuorumLearner"),
                server_context: or(&q.server_login_context, "QuorumServer"),
                service_principal: or(&q.quorum_service_principal, "zkquorum/localhost"),
            });
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

    /// Holds every documented setting that is set, in zoo.cfg or by a `-D` define, against
    /// [`support::SETTINGS`], before anything else is checked: one that asks for something
    /// corral does not do stops start-up, naming the key, the line and what to do instead; one
    /// that only tunes a JVM earns one warning.
    fn check_support(
        &mut self,
        raw: &[RawEntry],
        defines: &[(String, String)],
    ) -> Result<(), ConfigError> {
        let values = self.documented_values(raw, defines);
        for (set, value, origin) in &values {
            let refusal = match set.support {
                Support::Honoured(_) if set.key == "authProvider." => {
                    let class = value.trim();
                    (!support::BUILT_IN_AUTH_PROVIDERS.contains(&class)).then(|| {
                        "only ZooKeeper's built-in digest, ip, x509 and sasl providers are \
                         available (corral loads no Java classes); remove it"
                            .to_string()
                    })
                }
                Support::Honoured(_) => None,
                Support::NoEffect(why) => {
                    let msg = format!("{} has no effect in corral: {why}", origin.key);
                    self.warn(&origin.key, origin.line, msg);
                    None
                }
                Support::Refused(why) => {
                    let moot = set.moot_when.is_some_and(|(k, v)| {
                        values
                            .iter()
                            .any(|(s, cur, _)| s.key == k && support::is_default(cur, v))
                    });
                    (!moot && !set.accepted(value)).then(|| why.to_string())
                }
            };
            if let Some(reason) = refusal {
                return Err(ConfigError::Unsupported {
                    key: origin.key.clone(),
                    line: origin.line,
                    value: value.clone(),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// The documented settings that are set, each once, with their effective value: the
    /// file's last line for a key, else a define of one of its properties.
    fn documented_values(
        &self,
        raw: &[RawEntry],
        defines: &[(String, String)],
    ) -> Vec<(&'static Setting, String, Origin)> {
        let mut last: BTreeMap<&str, &RawEntry> = BTreeMap::new();
        for e in raw {
            last.insert(e.key.as_str(), e);
        }
        let mut out: Vec<(&'static Setting, String, Origin)> = Vec::new();
        let mut from_file: Vec<String> = Vec::new();
        for e in last.values() {
            let Some(set) = support::find(&e.key) else {
                continue;
            };
            if set.source == Source::PropertyOnly {
                continue; // In zoo.cfg it becomes zookeeper.K, which nothing reads.
            }
            if set.source == Source::Both {
                from_file.push(format!("zookeeper.{}", e.key));
            }
            let origin = Origin {
                key: e.key.clone(),
                line: self.line(e),
            };
            out.push((set, e.value.trim().to_string(), origin));
        }
        let mut last_define: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, value) in defines {
            last_define.insert(name, value);
        }
        for (name, value) in last_define {
            if from_file.iter().any(|n| n == name) {
                continue; // The file's key overwrites the define, as in ZooKeeper.
            }
            let named = support::by_property(name);
            let family = name
                .strip_prefix("zookeeper.")
                .and_then(support::find)
                .filter(|s| s.key.ends_with('.') && s.source == Source::Both);
            if let Some(set) = named.or(family) {
                let origin = Origin {
                    key: name.to_string(),
                    line: None,
                };
                out.push((set, value.trim().to_string(), origin));
            }
        }
        out
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
        // BinaryInputArchive's allowance over jute.maxbuffer for a length read inside a packet
        // (members' packets here): its default is jute.maxbuffer, never under 1024.
        let extra = self
            .prop_int(
                "zookeeper.jute.maxbuffer.extrasize",
                i64::from(i32::MIN),
                i64::from(i32::MAX),
            )?
            .unwrap_or(self.cfg.jute_max_buffer as i64);
        self.cfg.jute_max_buffer_extra = extra.max(1024) as usize;
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
        self.cfg.client_tls = self.client_tls()?;
        self.cfg.quorum_tls = self.quorum_tls()?;
        self.cfg.admin_tls = self.admin_tls()?;
        self.auth_enforcement()?;

        let int_max = i64::from(i32::MAX);
        if let Some(n) = self.prop_int("znode.container.checkIntervalMs", 1, int_max)? {
            self.cfg.container_check_interval_ms = n as u64;
        }
        // zookeeper.maxCnxns (zoo.cfg maxCnxns): 0 or less is no limit.
        if let Some(n) = self.prop_int("zookeeper.maxCnxns", i64::from(i32::MIN), int_max)? {
            self.cfg.max_cnxns = n.max(0) as u32;
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
        if let Some(n) = self.prop_int("zookeeper.admin.idleTimeout", 1, int_max)? {
            self.cfg.admin_idle_timeout_ms = n as u64;
        }

        if let Some(n) = self.prop_int(
            "zookeeper.netty.server.outstandingHandshake.limit",
            i64::from(i32::MIN),
            int_max,
        )? {
            self.cfg.outstanding_handshake_limit = n.max(0) as u64;
        }
        if let Some((path, origin)) = self.props.get("java.security.auth.login.config") {
            let file =
                super::jaas::JaasFile::load(path).map_err(|reason| ConfigError::Invalid {
                    key: origin.key.clone(),
                    line: origin.line,
                    value: path.to_string(),
                    reason,
                })?;
            self.cfg.jaas = Some(std::sync::Arc::new(file));
        }
        // BlueThrottle reads zookeeper.connection_throttle_*; the guide's zoo.cfg names
        // (connectionMaxTokens, ...) are read too, so neither is accepted and ignored.
        let int = |this: &Self, names: [&str; 2], min: i64| -> Result<Option<i64>, ConfigError> {
            for n in names {
                if let Some(v) = this.prop_int(n, min, int_max)? {
                    return Ok(Some(v));
                }
            }
            Ok(None)
        };
        let tokens = int(
            self,
            [
                "zookeeper.connection_throttle_tokens",
                "zookeeper.connectionMaxTokens",
            ],
            i64::from(i32::MIN),
        )?
        .unwrap_or(0);
        let fill_time = int(
            self,
            [
                "zookeeper.connection_throttle_fill_time",
                "zookeeper.connectionTokenFillTime",
            ],
            1,
        )?
        .unwrap_or(1);
        let fill_count = int(
            self,
            [
                "zookeeper.connection_throttle_fill_count",
                "zookeeper.connectionTokenFillCount",
            ],
            i64::from(i32::MIN),
        )?
        .unwrap_or(1);
        let weighted = self
            .props
            .get("zookeeper.connection_throttle_weight_enabled")
            .is_some_and(|(v, _)| v.trim().eq_ignore_ascii_case("true"));
        let weights = if weighted {
            let w = |this: &Self, n: &str, d: i64| -> Result<i64, ConfigError> {
                Ok(this.prop_int(n, i64::from(i32::MIN), int_max)?.unwrap_or(d))
            };
            let global = w(
                self,
                "zookeeper.connection_throttle_global_session_weight",
                3,
            )?;
            let local = w(
                self,
                "zookeeper.connection_throttle_local_session_weight",
                1,
            )?;
            let renew = w(
                self,
                "zookeeper.connection_throttle_renew_session_weight",
                2,
            )?;
            // ZooKeeper's corrections of weights it finds invalid.
            let local = if local <= 0 { 1 } else { local };
            let global = if global <= 0 { 3 } else { global.max(local) };
            let renew = if renew <= 0 { 2 } else { renew.max(local) };
            Some((global, renew))
        } else {
            None
        };
        self.cfg.conn_throttle = (tokens.max(0), fill_time, fill_count, weights);
        let freeze = int(
            self,
            [
                "zookeeper.connection_throttle_freeze_time",
                "zookeeper.connectionFreezeTime",
            ],
            i64::from(i32::MIN),
        )?
        .unwrap_or(-1);
        if freeze != -1 {
            // getDoubleProp: Double.parseDouble of the property, else the default.
            let double =
                |this: &Self, names: [&str; 2], default: f64| -> Result<f64, ConfigError> {
                    for n in names {
                        if let Some((v, origin)) = this.props.get(n) {
                            return v.trim().parse::<f64>().map_err(|_| ConfigError::Invalid {
                                key: origin.key.clone(),
                                line: origin.line,
                                value: v.to_string(),
                                reason: "not a number".into(),
                            });
                        }
                    }
                    Ok(default)
                };
            let inc = double(
                self,
                [
                    "zookeeper.connection_throttle_drop_increase",
                    "zookeeper.connectionDropIncrease",
                ],
                0.02,
            )?;
            let dec = double(
                self,
                [
                    "zookeeper.connection_throttle_drop_decrease",
                    "zookeeper.connectionDropDecrease",
                ],
                0.002,
            )?;
            let ratio = double(
                self,
                [
                    "zookeeper.connection_throttle_decrease_ratio",
                    "zookeeper.connectionDecreaseRatio",
                ],
                0.0,
            )?;
            self.cfg.conn_blue = Some((freeze, inc, dec, ratio));
        }
        // RequestThrottler reads these with Integer.getInteger; 0 or less is off.
        if let Some(n) = self.prop_int(
            "zookeeper.request_throttle_max_requests",
            i64::from(i32::MIN),
            int_max,
        )? {
            self.cfg.request_throttle_max_requests = n.max(0) as usize;
        }
        if let Some(n) = self.prop_int("zookeeper.request_throttle_stall_time", 1, int_max)? {
            self.cfg.request_throttle_stall_ms = n as u64;
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
            if let Some(n) = self.prop_int(name, i64::MIN, i64::MAX)? {
                self.cfg.fsync_warning_threshold_ms = n;
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
        if let Some(n) = self.prop_int("zookeeper.commitLogCount", 1, int_max)? {
            self.cfg.commit_log_count = n as usize;
        }
        if let Some(b) = self.prop_bool("zookeeper.closeSessionTxn.enabled")? {
            self.cfg.close_session_txn_enabled = b;
        }
        Ok(())
    }

    /// `DigestAuthenticationProvider.digestAlg`, and ZooKeeper's `AuthenticationHelper`:
    /// `sessionRequireClientSASLAuth=true` means `enforce.auth.schemes=sasl`; otherwise
    /// `enforce.auth.enabled` needs schemes, each with a provider.
    fn auth_enforcement(&mut self) -> Result<(), ConfigError> {
        if let Some((v, o)) = self
            .props
            .get("zookeeper.DigestAuthenticationProvider.digestAlg")
        {
            self.cfg.digest_alg = corral_tree::acl::DigestAlg::from_java_name(v)
                .ok_or_else(|| invalid(&o.key, o.line, v, "expected SHA1, SHA-256 or SHA3-256"))?;
        }
        let require_sasl = self.prop_bool("zookeeper.sessionRequireClientSASLAuth")?;
        // requireClientAuthScheme=sasl: the spelling of patched 3.4/3.5 builds (Kafka's guide
        // names it). ZooKeeper 3.8 ignores it, which would run such a deployment without the
        // authentication it asks for: corral enforces it.
        let old_spelling = match self.props.get("zookeeper.requireClientAuthScheme") {
            None => None,
            Some((v, o)) if v.trim().eq_ignore_ascii_case("sasl") => Some(o.clone()),
            Some((v, o)) => {
                return Err(invalid(
                    &o.key,
                    o.line,
                    v,
                    "only sasl (use enforce.auth.schemes for other schemes)",
                ))
            }
        };
        let (schemes, origin) = if require_sasl == Some(true) {
            let o = self.props.get("zookeeper.sessionRequireClientSASLAuth");
            (vec!["sasl".to_string()], o.map(|(_, o)| o))
        } else if let Some(o) = old_spelling {
            (vec!["sasl".to_string()], Some(o))
        } else if self.prop_bool("zookeeper.enforce.auth.enabled")? == Some(true) {
            let o = self
                .props
                .get("zookeeper.enforce.auth.enabled")
                .map(|(_, o)| o);
            let schemes: Vec<String> = match self.props.get("zookeeper.enforce.auth.schemes") {
                Some((v, _)) => v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                None => Vec::new(),
            };
            if schemes.is_empty() {
                let o = o.expect("the property was just read");
                return Err(conflict(
                    &o.key,
                    o.line,
                    "enforce.auth.enabled is true, so enforce.auth.schemes must name the schemes",
                ));
            }
            (schemes, o)
        } else {
            return Ok(());
        };
        let has_class = |c: &str| self.cfg.auth_providers.iter().any(|(_, k)| k == c);
        for scheme in &schemes {
            let available = match scheme.as_str() {
                "ip" => true,
                "digest" => self.cfg.digest_auth_enabled,
                "x509" => self.cfg.client_tls.is_some() && has_class(super::support::X509_PROVIDER),
                "sasl" => has_class(super::support::SASL_PROVIDER),
                _ => false,
            };
            if !available {
                let o = origin.clone().expect("set with the schemes");
                return Err(conflict(
                    &o.key,
                    o.line,
                    &format!("authentication scheme {scheme} is not available"),
                ));
            }
        }
        self.cfg.enforce_auth_schemes = Some(schemes);
        Ok(())
    }

    /// `QuorumPeerConfig.configureSSLAuth`: with a secure port, the scheme in
    /// `zookeeper.ssl.authProvider` (default x509) must have a provider, and
    /// x509 gets ZooKeeper's built-in one when none is configured.
    fn configure_ssl_auth(&mut self) -> Result<(), ConfigError> {
        // NettyServerCnxnFactory does the same for a plaintext port with portUnification.
        let unified = self.prop_bool("zookeeper.client.portUnification")? == Some(true);
        if self.cfg.secure_client_port.is_none() && !unified {
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
    pub(super) fn prop_bool(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        match self.props.get(name) {
            None => Ok(None),
            Some((v, origin)) => parse_bool(&origin.key, origin.line, v).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{defines, load, load_err};

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

    // Enforced authentication as ZooKeeper's AuthenticationHelper reads it: schemes are
    // required and must each have a provider; sessionRequireClientSASLAuth means sasl.
    #[test]
    fn auth_enforcement_settings() {
        let (cfg, _) =
            load("dataDir=/d\nenforce.auth.enabled=true\nenforce.auth.schemes=digest, ip\n");
        assert_eq!(
            cfg.enforce_auth_schemes,
            Some(vec!["digest".to_string(), "ip".to_string()])
        );
        assert_eq!(load("dataDir=/d\n").0.enforce_auth_schemes, None);
        let e = load_err("dataDir=/d\nenforce.auth.enabled=true\n");
        assert!(
            matches!(e, ConfigError::Conflict { line: Some(2), .. }),
            "{e:?}"
        );
        let e = load_err("dataDir=/d\nenforce.auth.enabled=true\nenforce.auth.schemes=sasl\n");
        assert!(e.to_string().contains("sasl is not available"), "{e}");
        let text = "dataDir=/d\nrequireClientAuthScheme=sasl\n\
                    authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n";
        assert_eq!(
            load(text).0.enforce_auth_schemes,
            Some(vec!["sasl".to_string()])
        );
        let e = load_err("dataDir=/d\nrequireClientAuthScheme=sasl\n");
        assert!(e.to_string().contains("sasl is not available"), "{e}");
        let e = load_err("dataDir=/d\nrequireClientAuthScheme=digest\n");
        assert!(
            matches!(e, ConfigError::Invalid { line: Some(2), .. }),
            "{e:?}"
        );
        let text = "dataDir=/d\nsessionRequireClientSASLAuth=true\n\
                    authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n";
        assert_eq!(
            load(text).0.enforce_auth_schemes,
            Some(vec!["sasl".to_string()])
        );
        let (cfg, _) = load("dataDir=/d\nDigestAuthenticationProvider.digestAlg=SHA3-256\n");
        assert_eq!(cfg.digest_alg, corral_tree::acl::DigestAlg::Sha3_256);
        let e = load_err("dataDir=/d\nDigestAuthenticationProvider.digestAlg=MD5\n");
        assert!(
            matches!(e, ConfigError::Invalid { line: Some(2), .. }),
            "{e:?}"
        );
    }

    // quorum.auth.*: off unless enableSasl; the requirements need enableSasl (and the server's
    // needs the learner's), as QuorumPeerConfig checks; the login contexts default as in 3.8.
    #[test]
    fn quorum_sasl_settings() {
        assert_eq!(load("dataDir=/d\n").0.quorum_sasl, None);
        let (cfg, _) = load("dataDir=/d\nquorum.auth.enableSasl=true\n");
        let q = cfg.quorum_sasl.unwrap();
        assert_eq!(
            (
                q.learner_require,
                q.server_require,
                q.learner_context.as_str()
            ),
            (false, false, "QuorumLearner")
        );
        assert_eq!(
            (q.server_context.as_str(), q.service_principal.as_str()),
            ("QuorumServer", "zkquorum/localhost")
        );
        let text = "dataDir=/d\nquorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
                    quorum.auth.serverRequireSasl=true\nquorum.auth.server.saslLoginContext=QS\n";
        let q = load(text).0.quorum_sasl.unwrap();
        assert_eq!((q.learner_require, q.server_require), (true, true));
        assert_eq!(q.server_context, "QS");
        let e = load_err("dataDir=/d\nquorum.auth.learnerRequireSasl=true\n");
        assert!(e.to_string().contains("enableSasl is disabled"), "{e}");
        let e = load_err(
            "dataDir=/d\nquorum.auth.enableSasl=true\nquorum.auth.serverRequireSasl=true\n",
        );
        assert!(
            e.to_string().contains("learnerRequireSasl is disabled"),
            "{e}"
        );
    }

    // The connection throttle's BLUE settings: off while the freeze time is -1; the zoo.cfg
    // names of the guide and the properties BlueThrottle reads.
    #[test]
    fn connection_throttle_blue() {
        let with = |d: &[(&str, &str)]| {
            ServerConfig::load(Some((Path::new("zoo.cfg"), "dataDir=/d\n")), &defines(d))
                .expect("valid")
                .0
                .conn_blue
        };
        assert_eq!(with(&[]), None);
        assert_eq!(
            with(&[("zookeeper.connection_throttle_freeze_time", "100")]),
            Some((100, 0.02, 0.002, 0.0))
        );
        assert_eq!(
            with(&[
                ("zookeeper.connectionFreezeTime", "50"),
                ("zookeeper.connection_throttle_drop_increase", "0.5"),
            ]),
            Some((50, 0.5, 0.002, 0.0))
        );
    }

    // jute.maxbuffer.extrasize as BinaryInputArchive reads it: jute.maxbuffer by default, and
    // never under 1024.
    #[test]
    fn jute_extra_size() {
        let with = |d: &[(&str, &str)]| {
            ServerConfig::load(Some((Path::new("zoo.cfg"), "dataDir=/d\n")), &defines(d))
                .expect("valid")
                .0
                .jute_max_buffer_extra
        };
        assert_eq!(with(&[]), 0xfffff);
        assert_eq!(with(&[("jute.maxbuffer", "4096")]), 4096);
        assert_eq!(with(&[("zookeeper.jute.maxbuffer.extrasize", "10")]), 1024);
        assert_eq!(
            with(&[("zookeeper.jute.maxbuffer.extrasize", "65536")]),
            65536
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
            (
                "zookeeper.authProvider.digest",
                "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
            ),
        ]);
        let text = "dataDir=/d\n4lw.commands.whitelist=ruok\n\
                    authProvider.1=org.apache.zookeeper.server.auth.IPAuthenticationProvider\n";
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
                (
                    "1".to_string(),
                    "org.apache.zookeeper.server.auth.IPAuthenticationProvider".to_string()
                ),
                (
                    "digest".to_string(),
                    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider".to_string()
                ),
            ]
        );
        // Any other provider class is refused, from the file or a define: corral loads no Java.
        let d = defines(&[("zookeeper.authProvider.sasl", "org.example.Sasl")]);
        let err = ServerConfig::load(Some((Path::new("zoo.cfg"), "dataDir=/d\n")), &d);
        assert!(
            matches!(&err, Err(ConfigError::Unsupported { key, line: None, .. })
                if key == "zookeeper.authProvider.sasl"),
            "{err:?}"
        );
        // A bad -D value is reported under its property name, with no line.
        let d = defines(&[("zookeeper.admin.serverPort", "http")]);
        let err = ServerConfig::load(None, &d).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value 'http' for zookeeper.admin.serverPort: not an integer"
        );
    }

    // Property-derived values follow ZooKeeper's quirks: yes/no flags, minimums, system-property-only keys.
    #[test]
    fn property_quirks() {
        let text = "dataDir=data\nskipACL=true\nforceSync=no\nsnapCount=1\n\
                    autopurge.snapRetainCount=1\njute.maxbuffer=5000000\n\
                    snapshot.compression.method=GZ\ncommitLogCount=50\n";
        let (cfg, warnings) = load(text);
        assert!(!cfg.skip_acl);
        assert!(!cfg.force_sync);
        assert_eq!(cfg.snap_count, 2);
        assert_eq!(cfg.autopurge_snap_retain_count, 3);
        assert_eq!(cfg.jute_max_buffer, 0xfffff);
        assert_eq!(cfg.snapshot_compression_method, "gz");
        assert_eq!(cfg.commit_log_count, 50);
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
