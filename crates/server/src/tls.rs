//! TLS for the secure client port: key and trust stores as Java's keytool and openssl write
//! them (JKS, PKCS12, PEM) turned into a rustls server configuration, and the client
//! certificate's subject written as Java's `X500Principal.getName()` writes it (the connection's
//! `x509` id). The crypto is rustls's; this module only reads files and maps settings.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::config::{ClientAuth, StoreSpec, StoreType, TlsConfig, TlsVersion};

/// A key store's contents: the server's private key and certificate chain.
struct Identity {
    key: PrivateKeyDer<'static>,
    chain: Vec<CertificateDer<'static>>,
}

/// `SecretUtils.readSecret`: the file's text with one trailing line separator removed.
fn password(spec: &StoreSpec) -> Result<String, String> {
    let Some(path) = &spec.password_path else {
        return Ok(spec.password.clone());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the password file: {e}", path.display()))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.to_string())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn pem_items(path: &Path) -> Result<Vec<rustls_pemfile::Item>, String> {
    let bytes = read(path)?;
    rustls_pemfile::read_all(&mut bytes.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM file: {e}", path.display()))
}

/// The `ENCRYPTED PRIVATE KEY` (PKCS#8 with PBES2, as `openssl pkcs8 -topk8 -v2 aes-256-cbc`
/// writes it) of a PEM key store, decrypted with the key store's password, as ZooKeeper's
/// PemReader takes it. `None`: there is none.
fn encrypted_pem_key(path: &Path, pw: &str) -> Result<Option<PrivateKeyDer<'static>>, String> {
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let text = String::from_utf8_lossy(&read(path)?).into_owned();
    let Some(start) = text.find(BEGIN) else {
        return Ok(None);
    };
    let end = text[start..]
        .find(END)
        .map(|e| start + e + END.len())
        .ok_or_else(|| format!("{}: unterminated ENCRYPTED PRIVATE KEY", path.display()))?;
    let bad = |e: String| format!("{}: the ENCRYPTED PRIVATE KEY: {e}", path.display());
    let (_, der) = pkcs8::der::pem::decode_vec(&text.as_bytes()[start..end])
        .map_err(|e| bad(e.to_string()))?;
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
        .map_err(|e| bad(e.to_string()))?;
    let plain = info.decrypt(pw).map_err(|e| {
        bad(format!(
            "cannot decrypt it with the key store password: {e}"
        ))
    })?;
    Ok(Some(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into())))
}

fn load_identity(spec: &StoreSpec) -> Result<Identity, String> {
    let path = &spec.location;
    let pw = password(spec)?;
    let name = path.display();
    match spec.kind {
        StoreType::Pem => {
            let mut key = None;
            let mut chain = Vec::new();
            for item in pem_items(path)? {
                match item {
                    rustls_pemfile::Item::X509Certificate(c) => chain.push(c),
                    rustls_pemfile::Item::Pkcs8Key(k) => key = Some(PrivateKeyDer::Pkcs8(k)),
                    rustls_pemfile::Item::Pkcs1Key(k) => key = Some(PrivateKeyDer::Pkcs1(k)),
                    rustls_pemfile::Item::Sec1Key(k) => key = Some(PrivateKeyDer::Sec1(k)),
                    _ => {}
                }
            }
            let key = match key {
                Some(k) => k,
                None => encrypted_pem_key(path, &pw)?
                    .ok_or_else(|| format!("{name}: no private key in the PEM key store"))?,
            };
            if chain.is_empty() {
                return Err(format!("{name}: no certificate in the PEM key store"));
            }
            Ok(Identity { key, chain })
        }
        StoreType::Pkcs12 => {
            let ks = p12_keystore::KeyStore::from_pkcs12(&read(path)?, &pw)
                .map_err(|e| format!("{name}: cannot open the PKCS12 key store: {e}"))?;
            let (_, chain) = ks
                .private_key_chain()
                .ok_or_else(|| format!("{name}: the PKCS12 key store holds no private key"))?;
            Ok(Identity {
                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().to_vec())),
                chain: chain
                    .chain()
                    .iter()
                    .map(|c| CertificateDer::from(c.as_der().to_vec()))
                    .collect(),
            })
        }
        StoreType::Jks => {
            let mut ks = jks::KeyStore::new();
            ks.load(read(path)?.as_slice(), pw.as_bytes())
                .map_err(|e| format!("{name}: cannot open the JKS key store: {e}"))?;
            let alias = ks
                .aliases()
                .into_iter()
                .find(|a| ks.is_private_key_entry(a))
                .ok_or_else(|| format!("{name}: the JKS key store holds no private key"))?;
            let entry = ks
                .get_private_key_entry(&alias, pw.as_bytes())
                .map_err(|e| format!("{name}: cannot decrypt key {alias}: {e}"))?;
            Ok(Identity {
                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(entry.private_key)),
                chain: entry
                    .certificate_chain
                    .into_iter()
                    .map(|c| CertificateDer::from(c.content))
                    .collect(),
            })
        }
    }
}

fn load_trust(spec: &StoreSpec) -> Result<RootCertStore, String> {
    let path = &spec.location;
    let name = path.display();
    let pw = password(spec)?;
    let certs: Vec<CertificateDer<'static>> = match spec.kind {
        StoreType::Pem => pem_items(path)?
            .into_iter()
            .filter_map(|i| match i {
                rustls_pemfile::Item::X509Certificate(c) => Some(c),
                _ => None,
            })
            .collect(),
        StoreType::Pkcs12 => {
            let ks = p12_keystore::KeyStore::from_pkcs12(&read(path)?, &pw)
                .map_err(|e| format!("{name}: cannot open the PKCS12 trust store: {e}"))?;
            ks.entries()
                .flat_map(|(_, e)| match e {
                    p12_keystore::KeyStoreEntry::Certificate(c) => vec![c.as_der().to_vec()],
                    // As Java's trust manager: a key entry vouches for its own certificate
                    // only, not for the CA certificates in its chain.
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(k) => k
                        .chain()
                        .iter()
                        .take(1)
                        .map(|c| c.as_der().to_vec())
                        .collect(),
                    _ => Vec::new(),
                })
                .map(CertificateDer::from)
                .collect()
        }
        StoreType::Jks => {
            let mut ks = jks::KeyStore::new();
            ks.load(read(path)?.as_slice(), pw.as_bytes())
                .map_err(|e| format!("{name}: cannot open the JKS trust store: {e}"))?;
            ks.aliases()
                .into_iter()
                .filter_map(|a| ks.get_trusted_certificate_entry(&a).ok())
                .map(|e| CertificateDer::from(e.certificate.content))
                .collect()
        }
    };
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "{name}: the trust store holds no usable certificate"
        ));
    }
    if ignored > 0 {
        warn!("{name}: {ignored} certificate(s) in the trust store could not be used");
    }
    Ok(roots)
}

/// The crypto provider with `ssl*.ciphersuites` applied, and the protocol versions enabled.
type Crypto = (
    Arc<rustls::crypto::CryptoProvider>,
    Vec<&'static rustls::SupportedProtocolVersion>,
);

fn crypto(tls: &TlsConfig) -> Result<Crypto, String> {
    // ring, not aws-lc-rs: it builds with nothing but a C compiler; what rustls deprecates is
    // its lack of post-quantum key exchange, which ZooKeeper's Java clients do not offer.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = tls
        .versions
        .iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect();
    if let Some(wanted) = &tls.cipher_suites {
        // Java names the suites as IANA does; rustls writes TLS 1.3 ones as TLS13_*.
        let java_name = |s: &rustls::SupportedCipherSuite| {
            format!("{:?}", s.suite()).replacen("TLS13_", "TLS_", 1)
        };
        let dropped: Vec<&String> = wanted
            .iter()
            .filter(|w| !provider.cipher_suites.iter().any(|s| &java_name(s) == *w))
            .collect();
        if !dropped.is_empty() {
            warn!("ssl.ciphersuites: not available in corral's TLS library, left out: {dropped:?}");
        }
        provider
            .cipher_suites
            .retain(|s| wanted.iter().any(|w| *w == java_name(s)));
        let usable = provider
            .cipher_suites
            .iter()
            .any(|s| versions.iter().any(|v| v.version == s.version().version));
        if !usable {
            return Err(
                "ssl.ciphersuites: none of the listed suites is available for the enabled \
                 protocols; list TLS_ECDHE_*_GCM_* (TLSv1.2) or TLS_AES_* (TLSv1.3) suites"
                    .to_string(),
            );
        }
    }
    Ok((Arc::new(provider), versions))
}

/// The rustls configuration for the secure client port, or an error that names the file or
/// the setting at fault.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    let crypto = crypto(tls)?;
    let roots = match (&tls.trust_store, tls.client_auth) {
        (_, ClientAuth::None) => None,
        (None, _) => return Err("client certificates need ssl.trustStore.location".into()),
        (Some(t), _) => Some(Arc::new(load_trust(t)?)),
    };
    let id = load_identity(&tls.key_store)?;
    build_server(tls, &crypto, roots, id, "secure client port")
}

/// A server configuration from what `crypto`, `load_trust` and `load_identity` read; `roots`
/// is `None` exactly when no client certificate is asked for.
fn build_server(
    tls: &TlsConfig,
    (provider, versions): &Crypto,
    roots: Option<Arc<RootCertStore>>,
    id: Identity,
    what: &str,
) -> Result<Arc<ServerConfig>, String> {
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("ssl.protocol / ssl.enabledProtocols: {e}"))?;
    let builder = match roots {
        None => builder.with_no_client_auth(),
        Some(roots) => {
            let v = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
            let v = if tls.client_auth == ClientAuth::Want {
                v.allow_unauthenticated()
            } else {
                v
            };
            let trust = tls.trust_store.as_ref().map(|t| t.location.display());
            let v = v
                .build()
                .map_err(|e| format!("{}: {e}", trust.expect("roots come from a trust store")))?;
            if tls.crl {
                let checking = crate::tls_crl::CrlChecking::new(
                    v,
                    roots,
                    provider.clone(),
                    tls.client_auth == ClientAuth::Want,
                );
                builder.with_client_cert_verifier(Arc::new(checking))
            } else {
                builder.with_client_cert_verifier(v)
            }
        }
    };
    let subject = id
        .chain
        .first()
        .and_then(|c| subject_rfc2253(c).ok())
        .unwrap_or_default();
    let cfg = builder
        .with_single_cert(id.chain, id.key)
        .map_err(|e| format!("{}: {e}", tls.key_store.location.display()))?;
    info!(
        "{what}: certificate {subject} from {}, client certificates {:?}, {:?}",
        tls.key_store.location.display(),
        tls.client_auth,
        tls.versions
    );
    Ok(Arc::new(cfg))
}

/// Something built from a TLS configuration's key and trust store files (the client port's
/// acceptor, the members' acceptor and connector); with `cert_reload` (`client.certReload`,
/// `sslQuorumReloadCertFiles`) built again when one of those files (or a password file) has
/// changed since, checked each time it is asked for (as each connection arrives). A store that
/// no longer loads is logged and the last good one stays in use.
pub struct Reloading<T: Clone> {
    cfg: TlsConfig,
    /// What it is, for the log.
    what: &'static str,
    build: fn(&TlsConfig) -> Result<T, String>,
    state: Mutex<(Vec<Option<Stamp>>, T)>,
}

impl<T: Clone> Reloading<T> {
    pub fn new(
        cfg: &TlsConfig,
        what: &'static str,
        build: fn(&TlsConfig) -> Result<T, String>,
    ) -> Result<Arc<Reloading<T>>, String> {
        let stamps = stamps(cfg);
        let built = build(cfg)?;
        Ok(Arc::new(Reloading {
            cfg: cfg.clone(),
            what,
            build,
            state: Mutex::new((stamps, built)),
        }))
    }

    /// The configuration the files hold now (or the last good one).
    pub fn current(&self) -> T {
        // A panic while loading (a bad file) must not take every later connection with it.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.cfg.cert_reload {
            let now = stamps(&self.cfg);
            if now != state.0 {
                state.0 = now;
                match (self.build)(&self.cfg) {
                    Ok(c) => {
                        info!("{}: key or trust store changed, reloaded", self.what);
                        state.1 = c;
                    }
                    Err(e) => warn!(
                        "{}: changed store not loaded, keeping the last: {e}",
                        self.what
                    ),
                }
            }
        }
        state.1.clone()
    }

    /// The configuration it is built from.
    pub fn config(&self) -> &TlsConfig {
        &self.cfg
    }
}

/// The client port's TLS acceptor.
pub type TlsSource = Reloading<TlsAcceptor>;

impl Reloading<TlsAcceptor> {
    pub fn client(cfg: &TlsConfig) -> Result<Arc<TlsSource>, String> {
        Reloading::new(cfg, "client TLS", |c| {
            server_config(c).map(TlsAcceptor::from)
        })
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current()
    }
}

/// The members' TLS (`sslQuorum`, `portUnification`).
pub type QuorumTlsSource = Reloading<Arc<QuorumTls>>;

impl Reloading<Arc<QuorumTls>> {
    pub fn quorum(cfg: &TlsConfig) -> Result<Arc<QuorumTlsSource>, String> {
        Reloading::new(cfg, "quorum TLS", |c| quorum_tls(c).map(Arc::new))
    }
}

/// A file's modification time, length, inode and change time (ns).
type Stamp = (SystemTime, u64, u64, i64);

/// The files a TLS configuration is read from, and for each its change time, length and inode:
/// a file renamed over another with an older modification time still counts as a change.
fn stamps(cfg: &TlsConfig) -> Vec<Option<Stamp>> {
    use std::os::unix::fs::MetadataExt;
    let mut files: Vec<&PathBuf> = vec![&cfg.key_store.location];
    files.extend(cfg.key_store.password_path.as_ref());
    if let Some(t) = &cfg.trust_store {
        files.push(&t.location);
        files.extend(t.password_path.as_ref());
    }
    files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok()?;
            Some((
                m.modified().ok()?,
                m.len(),
                m.ino(),
                m.ctime_nsec() + m.ctime() * 1_000_000_000,
            ))
        })
        .collect()
}

/// TLS between members (`sslQuorum`): the acceptor for election and quorum connections that
/// arrive, the connector for those this member makes, and whether a member's certificate must
/// name the IP address it connects from or is reached at (ZooKeeper's QuorumX509Util checks
/// both sides, by address).
pub struct QuorumTls {
    pub acceptor: TlsAcceptor,
    pub connector: tokio_rustls::TlsConnector,
    pub verify_hosts: bool,
}

/// A certificate verifier for `ssl.quorum.hostnameVerification=false`: the chain must still
/// lead to the trust store; only the name check is left out.
#[derive(Debug)]
struct NoNameCheck(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for NoNameCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as C;
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                C::NotValidForName | C::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The members' TLS from `ssl.quorum.*`: one reading of the stores serves both directions.
pub fn quorum_tls(cfg: &TlsConfig) -> Result<QuorumTls, String> {
    let crypto = crypto(cfg)?;
    let (provider, versions) = &crypto;
    let trust = cfg
        .trust_store
        .as_ref()
        .ok_or("sslQuorum needs ssl.quorum.trustStore.location")?;
    let roots = Arc::new(load_trust(trust)?);
    let id = load_identity(&cfg.key_store)?;
    let client_id = Identity {
        key: id.key.clone_key(),
        chain: id.chain.clone(),
    };
    let server_roots = (cfg.client_auth != ClientAuth::None).then(|| roots.clone());
    let acceptor = TlsAcceptor::from(build_server(cfg, &crypto, server_roots, id, "quorum")?);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("ssl.quorum.protocol: {e}"))?;
    let builder = if cfg.hostname_verification {
        builder.with_root_certificates(roots)
    } else {
        let v =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("{}: {e}", trust.location.display()))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoNameCheck(v)))
    };
    let client = builder
        .with_client_auth_cert(client_id.chain, client_id.key)
        .map_err(|e| format!("{}: {e}", cfg.key_store.location.display()))?;
    Ok(QuorumTls {
        acceptor,
        connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
        verify_hosts: cfg.hostname_verification,
    })
}

/// Whether a certificate names `ip` among its subject alternative names (the check
/// QuorumX509Util makes of a connecting member, by address).
pub fn names_ip(cert: &[u8], ip: std::net::IpAddr) -> bool {
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::*;
    let Ok((_, c)) = X509Certificate::from_der(cert) else {
        return false;
    };
    let Ok(Some(san)) = c.subject_alternative_name() else {
        return false;
    };
    san.value.general_names.iter().any(|n| match n {
        GeneralName::IPAddress(b) => match (ip, b.len()) {
            (std::net::IpAddr::V4(v4), 4) => v4.octets() == b[..4],
            (std::net::IpAddr::V6(v6), 16) => v6.octets() == b[..16],
            _ => false,
        },
        _ => false,
    })
}

/// Runs a TLS handshake for at most `limit`. A failure or a time-out is logged, naming `who`
/// (`TLS handshake with <who> failed: …` / `… timed out`), and gives `None`.
pub async fn handshake_within<T>(
    limit: std::time::Duration,
    handshake: impl std::future::Future<Output = std::io::Result<T>>,
    who: impl std::fmt::Display,
) -> Option<T> {
    match tokio::time::timeout(limit, handshake).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            warn!("TLS handshake with {who} failed: {e}");
            None
        }
        Err(_) => {
            warn!("TLS handshake with {who} timed out");
            None
        }
    }
}

/// The short names Java's `X500Principal.getName()` (RFC 2253) writes; any other attribute
/// is written as its dotted OID with the value as `#` and the hex of its DER encoding.
fn rfc2253_keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 2253 escaping: `,+"\<>;` anywhere, `#` or a space first, a space last.
fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == n && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The subject of a DER certificate as `X500Principal.getName()` writes it: relative names
/// last-first, joined by `,`; several attributes in one name joined by `+`.
pub fn subject_rfc2253(cert: &[u8]) -> Result<String, String> {
    use x509_parser::asn1_rs::ToDer;
    use x509_parser::prelude::*;
    let (_, c) = X509Certificate::from_der(cert).map_err(|e| e.to_string())?;
    let mut rdns = Vec::new();
    for rdn in c.subject().iter_rdn() {
        let mut avas = Vec::new();
        for ava in rdn.iter() {
            let oid = ava.attr_type().to_id_string();
            let text = match (rfc2253_keyword(&oid), ava.as_str()) {
                (Some(k), Ok(v)) => format!("{k}={}", escape_value(v)),
                _ => {
                    let der = ava.attr_value().to_der_vec().map_err(|e| e.to_string())?;
                    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
                    format!("{oid}=#{hex}")
                }
            };
            avas.push(text);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2253_escaping() {
        assert_eq!(escape_value("a,b"), "a\\,b");
        assert_eq!(escape_value(" x "), "\\ x\\ ");
        assert_eq!(escape_value("#1"), "\\#1");
        assert_eq!(escape_value("plain name"), "plain name");
    }
}
