//! The client port's TLS settings, read from the `zookeeper.ssl.*` properties as ZooKeeper's
//! `X509Util` reads them (zoo.cfg's `ssl.keyStore.location` is `zookeeper.ssl.keyStore.location`).
//! Pure: files are named here and read by `crate::tls`.

use std::path::PathBuf;

use super::loader::Loader;
use super::value::invalid;
use super::ConfigError;

/// A key or trust store file's format, as `KeyStoreFileType` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    Jks,
    Pkcs12,
    Pem,
}

/// A key or trust store: the file, its format and its password (from the property or the
/// password file, which the TLS module reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    pub location: PathBuf,
    pub kind: StoreType,
    pub password: String,
    /// `ssl.*.passwordPath`: read at start-up; wins over `password` as in ZooKeeper.
    pub password_path: Option<PathBuf>,
}

/// `ssl.clientAuth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client must present a certificate the trust store vouches for (ZooKeeper's default).
    Need,
    /// A certificate is asked for; one that is presented must be trusted.
    Want,
    /// None is asked for.
    None,
}

/// A TLS protocol version corral can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// Everything the secure client port needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub key_store: StoreSpec,
    pub trust_store: Option<StoreSpec>,
    pub client_auth: ClientAuth,
    /// `ssl.enabledProtocols`, else `ssl.protocol` (ZooKeeper 3.8's default: TLSv1.2 only).
    pub versions: Vec<TlsVersion>,
    /// `ssl.ciphersuites` as written (Java's names, which are the IANA names); `None`: the
    /// TLS library's defaults for the enabled versions.
    pub cipher_suites: Option<Vec<String>>,
    /// `X509AuthenticationProvider.superUser`: the certificate subject that is a super user.
    pub x509_super_user: Option<String>,
    /// `client.portUnification`: the plaintext client port takes TLS connections too (told
    /// apart by their first byte, a TLS handshake record's 0x16).
    pub port_unification: bool,
    /// `client.certReload`: load the stores again when their files change.
    pub cert_reload: bool,
    /// `ssl.quorum.hostnameVerification` (members only; ZooKeeper checks no client host
    /// names on the client port): each member's certificate must name the address it is
    /// reached at or connects from.
    pub hostname_verification: bool,
    /// `ssl.crl`: client certificates are checked against the revocation lists their CRL
    /// distribution points name.
    pub crl: bool,
}

/// `KeyStoreFileType.fromPropertyValueOrFileName`: the type property if set, else the file's
/// extension.
fn store_type(
    key: &str,
    line: Option<usize>,
    ty: Option<&str>,
    location: &str,
) -> Result<StoreType, ConfigError> {
    if let Some(t) = ty.filter(|t| !t.is_empty()) {
        return match t.to_ascii_uppercase().as_str() {
            "JKS" => Ok(StoreType::Jks),
            "PKCS12" => Ok(StoreType::Pkcs12),
            "PEM" => Ok(StoreType::Pem),
            "BCFKS" => Err(invalid(
                key,
                line,
                t,
                "BCFKS stores are not supported; convert it to PKCS12 with keytool",
            )),
            _ => Err(invalid(key, line, t, "expected JKS, PKCS12 or PEM")),
        };
    }
    let lower = location.to_ascii_lowercase();
    if lower.ends_with(".jks") {
        Ok(StoreType::Jks)
    } else if lower.ends_with(".p12") || lower.ends_with(".pfx") {
        Ok(StoreType::Pkcs12)
    } else if lower.ends_with(".pem") {
        Ok(StoreType::Pem)
    } else {
        Err(invalid(
            key,
            line,
            location,
            "cannot tell the store's type from its name (.jks, .p12, .pfx or .pem); set its type",
        ))
    }
}

impl Loader {
    fn store(&self, prefix: &str) -> Result<Option<StoreSpec>, ConfigError> {
        let loc_name = format!("{prefix}.location");
        let Some((location, origin)) = self.props.get(&loc_name) else {
            return Ok(None);
        };
        if location.is_empty() {
            return Ok(None);
        }
        let ty = self.props.get(&format!("{prefix}.type"));
        let kind = match &ty {
            Some((t, o)) => store_type(&o.key, o.line, Some(t), location)?,
            None => store_type(&origin.key, origin.line, None, location)?,
        };
        let password = self
            .props
            .get(&format!("{prefix}.password"))
            .map(|(p, _)| p.to_string())
            .unwrap_or_default();
        let password_path = self
            .props
            .get(&format!("{prefix}.passwordPath"))
            .filter(|(p, _)| !p.is_empty())
            .map(|(p, _)| PathBuf::from(p));
        Ok(Some(StoreSpec {
            location: PathBuf::from(location),
            kind,
            password,
            password_path,
        }))
    }

    /// The client TLS settings, when `secureClientPort` or `client.portUnification` needs them.
    pub(super) fn client_tls(&self) -> Result<Option<TlsConfig>, ConfigError> {
        let unified = self.prop_bool("zookeeper.client.portUnification")? == Some(true);
        let needed_by = match (self.cfg.secure_client_port, unified) {
            (Some(_), _) => "secureClientPort",
            (None, true) => "client.portUnification",
            (None, false) => return Ok(None),
        };
        let Some(key_store) = self.store("zookeeper.ssl.keyStore")? else {
            return Err(ConfigError::Conflict {
                key: needed_by.to_string(),
                line: None,
                reason: format!("{needed_by} needs a key store: set ssl.keyStore.location"),
            });
        };
        let trust_store = self.store("zookeeper.ssl.trustStore")?;
        let client_auth = self.client_auth("zookeeper.ssl")?;
        if client_auth != ClientAuth::None && trust_store.is_none() {
            return Err(ConfigError::Conflict {
                key: "ssl.clientAuth".to_string(),
                line: None,
                reason: "client certificates are checked against ssl.trustStore.location, \
                         which is not set (corral does not fall back to a JVM's cacerts); set \
                         it, or ssl.clientAuth=none"
                    .to_string(),
            });
        }
        let versions = self.versions("zookeeper.ssl")?;
        let cipher_suites = self.cipher_suites("zookeeper.ssl");
        // On the client port ZooKeeper checks no client host names (ClientX509Util), so the
        // value changes nothing here; it is still validated.
        self.prop_bool("zookeeper.ssl.hostnameVerification")?;
        let cert_reload = self.prop_bool("zookeeper.client.certReload")? == Some(true);
        let x509_super_user = self
            .props
            .get("zookeeper.X509AuthenticationProvider.superUser")
            .filter(|(v, _)| !v.is_empty())
            .map(|(v, _)| v.to_string());
        Ok(Some(TlsConfig {
            key_store,
            trust_store,
            client_auth,
            versions,
            cipher_suites,
            x509_super_user,
            port_unification: unified,
            cert_reload,
            hostname_verification: false,
            crl: self.prop_bool("zookeeper.ssl.crl")? == Some(true),
        }))
    }
}

impl Loader {
    /// The AdminServer's TLS settings when `admin.forceHttps` or `admin.portUnification` is
    /// set: ZooKeeper's Jetty loads the members' key (and trust) store, `ssl.quorum.*`, and
    /// asks for no client certificate.
    pub(super) fn admin_tls(&self) -> Result<Option<TlsConfig>, ConfigError> {
        // Java's Boolean.getBoolean: "true" in any case, anything else is false.
        let on = |k: &str| {
            self.props
                .get(k)
                .is_some_and(|(v, _)| v.trim().eq_ignore_ascii_case("true"))
        };
        let (force, unified) = (
            on("zookeeper.admin.forceHttps"),
            on("zookeeper.admin.portUnification"),
        );
        if !self.cfg.admin_enable_server || !(force || unified) {
            return Ok(None);
        }
        let key = if force {
            "admin.forceHttps"
        } else {
            "admin.portUnification"
        };
        let key_store = self
            .store("zookeeper.ssl.quorum.keyStore")?
            .ok_or_else(|| ConfigError::Conflict {
                key: key.to_string(),
                line: None,
                reason: format!(
                    "{key}=true needs ssl.quorum.keyStore.location (the AdminServer's certificate)"
                ),
            })?;
        Ok(Some(TlsConfig {
            key_store,
            trust_store: self.store("zookeeper.ssl.quorum.trustStore")?,
            client_auth: ClientAuth::None,
            versions: self.versions("zookeeper.ssl.quorum")?,
            cipher_suites: self.cipher_suites("zookeeper.ssl.quorum"),
            x509_super_user: None,
            port_unification: unified && !force,
            cert_reload: false,
            hostname_verification: false,
            crl: false,
        }))
    }

    /// The members' TLS settings when `sslQuorum=true` or `portUnification=true` (which takes
    /// TLS on the quorum ports, too): `ssl.quorum.*`, read as ZooKeeper's `QuorumX509Util`
    /// reads them (a key and a trust store are required; client certificates and host name
    /// verification on by default).
    pub(super) fn quorum_tls(&self) -> Result<Option<TlsConfig>, ConfigError> {
        let key = match (self.cfg.ssl_quorum, self.cfg.quorum_port_unification) {
            (false, false) => return Ok(None),
            (true, _) => "sslQuorum",
            (false, true) => "portUnification",
        };
        let need = |what: &str| ConfigError::Conflict {
            key: key.to_string(),
            line: None,
            reason: format!("{key}=true needs ssl.quorum.{what}.location"),
        };
        let key_store = self
            .store("zookeeper.ssl.quorum.keyStore")?
            .ok_or_else(|| need("keyStore"))?;
        let trust_store = self
            .store("zookeeper.ssl.quorum.trustStore")?
            .ok_or_else(|| need("trustStore"))?;
        let client_auth = self.client_auth("zookeeper.ssl.quorum")?;
        let versions = self.versions("zookeeper.ssl.quorum")?;
        let cipher_suites = self.cipher_suites("zookeeper.ssl.quorum");
        let hostname_verification = self
            .prop_bool("zookeeper.ssl.quorum.hostnameVerification")?
            .unwrap_or(true);
        Ok(Some(TlsConfig {
            key_store,
            trust_store: Some(trust_store),
            client_auth,
            versions,
            cipher_suites,
            x509_super_user: None,
            port_unification: self.cfg.quorum_port_unification,
            cert_reload: self.cfg.ssl_quorum_reload_cert_files,
            hostname_verification,
            crl: false,
        }))
    }

    /// `<prefix>.clientAuth`: need (the default), want or none.
    fn client_auth(&self, prefix: &str) -> Result<ClientAuth, ConfigError> {
        let Some((v, o)) = self.props.get(&format!("{prefix}.clientAuth")) else {
            return Ok(ClientAuth::Need);
        };
        match v.to_ascii_lowercase().as_str() {
            "" | "need" => Ok(ClientAuth::Need),
            "want" => Ok(ClientAuth::Want),
            "none" => Ok(ClientAuth::None),
            _ => Err(invalid(&o.key, o.line, v, "expected need, want or none")),
        }
    }

    /// `<prefix>.ciphersuites`, comma-separated; `None` when not set.
    fn cipher_suites(&self, prefix: &str) -> Option<Vec<String>> {
        let (v, _) = self
            .props
            .get(&format!("{prefix}.ciphersuites"))
            .filter(|(v, _)| !v.is_empty())?;
        Some(
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    /// `<prefix>.enabledProtocols`, else `<prefix>.protocol`, else TLSv1.2 (3.8's default).
    fn versions(&self, prefix: &str) -> Result<Vec<TlsVersion>, ConfigError> {
        let version =
            |o: &super::loader::Origin, v: &str| -> Result<Vec<TlsVersion>, ConfigError> {
                match v.trim() {
                    "TLSv1.2" => Ok(vec![TlsVersion::Tls12]),
                    "TLSv1.3" => Ok(vec![TlsVersion::Tls13]),
                    "TLS" => Ok(vec![TlsVersion::Tls12, TlsVersion::Tls13]),
                    _ => Err(invalid(
                        &o.key,
                        o.line,
                        v,
                        "corral speaks TLSv1.2 and TLSv1.3 only (older versions are unsafe)",
                    )),
                }
            };
        let mut versions = match self.props.get(&format!("{prefix}.enabledProtocols")) {
            Some((v, o)) if !v.is_empty() => {
                let mut all = Vec::new();
                for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    all.extend(version(&o, p)?);
                }
                all
            }
            _ => match self.props.get(&format!("{prefix}.protocol")) {
                Some((v, o)) if !v.is_empty() => version(&o, v)?,
                _ => vec![TlsVersion::Tls12],
            },
        };
        versions.sort();
        versions.dedup();
        Ok(versions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{load, load_err};

    // The store type comes from the type key, else from the file name, as KeyStoreFileType
    // decides it; the protocol list from enabledProtocols, else protocol, else TLSv1.2.
    #[test]
    fn client_tls_settings() {
        let (cfg, _) = load(
            "dataDir=/d\nsecureClientPort=2281\nssl.keyStore.location=/k/server.p12\n\
             ssl.keyStore.password=pw\nssl.trustStore.location=/k/trust.jks\n\
             ssl.trustStore.type=pem\n",
        );
        let tls = cfg.client_tls.expect("secure port");
        assert_eq!(tls.key_store.kind, StoreType::Pkcs12);
        assert_eq!(tls.key_store.password, "pw");
        assert_eq!(tls.trust_store.unwrap().kind, StoreType::Pem);
        assert_eq!(tls.client_auth, ClientAuth::Need);
        assert_eq!(tls.versions, vec![TlsVersion::Tls12]);
        let (cfg, _) = load(
            "dataDir=/d\nsecureClientPort=2281\nssl.keyStore.location=/k/s.jks\n\
             ssl.clientAuth=none\nssl.enabledProtocols=TLSv1.3,TLSv1.2\n",
        );
        let tls = cfg.client_tls.unwrap();
        assert_eq!(tls.key_store.kind, StoreType::Jks);
        assert_eq!(tls.versions, vec![TlsVersion::Tls12, TlsVersion::Tls13]);
        assert!(load("dataDir=/d\nclientPort=2181\n").0.client_tls.is_none());
        let (cfg, _) = load(
            "dataDir=/d\nclientPort=2181\nclient.portUnification=true\n\
             ssl.keyStore.location=/k/s.pem\nssl.clientAuth=none\n",
        );
        assert!(cfg.client_tls.unwrap().port_unification);
        // Refusals name what to do.
        let e = load_err("dataDir=/d\nsecureClientPort=2281\n").to_string();
        assert!(e.contains("ssl.keyStore.location"), "{e}");
        let e = load_err("dataDir=/d\nsecureClientPort=2281\nssl.keyStore.location=/k/s.p12\n");
        assert!(e.to_string().contains("ssl.trustStore.location"), "{e}");
        let e = load_err(
            "dataDir=/d\nsecureClientPort=2281\nssl.keyStore.location=/k/s.p12\n\
             ssl.clientAuth=none\nssl.protocol=TLSv1.1\n",
        );
        assert!(
            matches!(e, ConfigError::Invalid { line: Some(5), .. }),
            "{e:?}"
        );
        let e = load_err("dataDir=/d\nsecureClientPort=2281\nssl.keyStore.location=/k/s.key\n");
        assert!(e.to_string().contains("set its type"), "{e}");
    }
}
