//! How zoo.cfg keys are read: the ones `QuorumPeerConfig` parses itself (strictly, into the
//! config or `QuorumKeys`), and the warning an unknown, prefixed or system-property-only key
//! earns before it becomes `zookeeper.K`. Whether corral acts on a documented key is
//! `support`'s business.

use std::path::{Path, PathBuf};

use super::loader::Loader;
use super::support::{self, Source};
use super::value::{invalid, parse_bool, parse_i32, parse_i64, parse_port, parse_u32};
use super::{ConfigError, ConfigWarning};

/// ZooKeeper's metrics providers, by the class names zoo.cfg gives them.
pub const DEFAULT_METRICS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider";
pub const PROMETHEUS_METRICS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// Intermediate state for the keys `QuorumPeerConfig` parses itself.
#[derive(Default)]
pub(super) struct QuorumKeys {
    pub(super) client_port_address: Option<(String, Option<usize>)>,
    pub(super) secure_client_port_address: Option<(String, Option<usize>)>,
    client_port_key_line: Option<usize>,
    pub(super) min_session: Option<(u32, Option<usize>)>,
    pub(super) max_session: Option<(u32, Option<usize>)>,
    pub(super) enable_sasl: bool,
    pub(super) server_require_sasl: Option<Option<usize>>,
    pub(super) learner_require_sasl: Option<Option<usize>>,
    pub(super) learner_login_context: Option<String>,
    pub(super) server_login_context: Option<String>,
    pub(super) quorum_service_principal: Option<String>,
    pub(super) multi_address_enabled: bool,
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

impl Loader {
    /// Handles a key `QuorumPeerConfig.parseProperties` knows. Returns false
    /// for keys it would turn into `zookeeper.K` properties.
    pub(super) fn apply_quorum_key(
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
            "sslQuorum" => cfg.ssl_quorum = parse_bool(key, line, value)?,
            "portUnification" => cfg.quorum_port_unification = parse_bool(key, line, value)?,
            "sslQuorumReloadCertFiles" => {
                cfg.ssl_quorum_reload_cert_files = parse_bool(key, line, value)?
            }
            // Known to ZooKeeper and validated like it, but not acted on by
            // corral yet.
            "localSessionsEnabled"
            | "localSessionsUpgradingEnabled"
            | "quorumListenOnAllIPs"
            | "syncEnabled"
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
            "quorum.auth.learner.saslLoginContext" => {
                q.learner_login_context = Some(value.to_string())
            }
            "quorum.auth.server.saslLoginContext" => {
                q.server_login_context = Some(value.to_string())
            }
            "quorum.auth.kerberos.servicePrincipal" => {
                q.quorum_service_principal = Some(value.to_string())
            }
            "metricsProvider.className" => {
                cfg.metrics_prometheus = match value.trim() {
                    DEFAULT_METRICS_PROVIDER => false,
                    PROMETHEUS_METRICS_PROVIDER => true,
                    other => {
                        return Err(ConfigError::Invalid {
                            key: key.to_string(),
                            line,
                            value: other.to_string(),
                            reason: format!(
                                "corral provides {DEFAULT_METRICS_PROVIDER} and \
                                 {PROMETHEUS_METRICS_PROVIDER}"
                            ),
                        })
                    }
                }
            }
            "metricsProvider.httpHost" => cfg.metrics_http_host = value.trim().to_string(),
            "metricsProvider.httpPort" => {
                // ZooKeeper's provider reads it with Integer.parseInt; 0 picks a free port.
                let n = parse_i32(key, line, value)?;
                cfg.metrics_http_port = u16::try_from(n).map_err(|_| ConfigError::Invalid {
                    key: key.to_string(),
                    line,
                    value: value.to_string(),
                    reason: "not a port number".into(),
                })?;
            }
            // Java's Boolean.parseBoolean: anything but "true" (any case) is false.
            "metricsProvider.exportJvmInfo" => {
                cfg.metrics_export_process_info = value.trim().eq_ignore_ascii_case("true")
            }
            "oraclePath" => {}
            _ if key.starts_with("metricsProvider.") => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Warns about keys that become `zookeeper.K` but are probably not what
    /// the user meant.
    pub(super) fn check_unknown(&mut self, key: &str, line: Option<usize>, value: &str) {
        let documented = support::find(key);
        if documented.is_some_and(|s| s.source == Source::PropertyOnly) {
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
        } else if documented.is_none() {
            self.warn(
                key,
                line,
                format!("unknown key {key}, set as property zookeeper.{key}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{load, load_err};

    // Unknown keys become zookeeper.K properties with a typo warning; documented ones stay silent.
    #[test]
    fn unknown_key_becomes_property_with_warning() {
        let text = "dataDir=/d\nextendedTypesEnabled=true\nsnapCount=5000\nsslQuorum=false\n\
                    tickTme=100\nmetricsProvider.numWorkerThreads=2\n";
        let (cfg, warnings) = load(text);
        assert!(cfg.extended_types_enabled);
        assert_eq!(cfg.snap_count, 5000);
        assert_eq!(cfg.property("zookeeper.extendedTypesEnabled"), Some("true"));
        assert_eq!(cfg.property("zookeeper.tickTme"), Some("100"));
        // Keys QuorumPeerConfig handles itself never become properties.
        assert_eq!(cfg.property("zookeeper.sslQuorum"), None);
        assert_eq!(
            cfg.property("zookeeper.metricsProvider.numWorkerThreads"),
            None
        );
        assert_eq!(cfg.tick_time_ms, 3000);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert_eq!(warnings[0].key, "metricsProvider.numWorkerThreads");
        assert_eq!(warnings[1].key, "tickTme");
        assert_eq!(warnings[1].line, Some(5));
        assert_eq!(
            warnings[1].to_string(),
            "zoo.cfg line 5: unknown key tickTme, set as property zookeeper.tickTme"
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
        let err = load_err("dataDir=/d\nadmin.enableServer=false\nadmin.serverPort=99999\n");
        assert!(
            matches!(&err, ConfigError::Invalid { key, line: Some(3), .. } if key == "admin.serverPort"),
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
}
