//! `ssl.crl=true`: client certificates checked against certificate revocation lists, as Java's
//! PKIX checker does for ZooKeeper with `com.sun.security.enableCRLDP`: each certificate of the
//! client's chain names where its CRL is (its CRL distribution points, `http://` URIs); the
//! lists are fetched (and kept 30 s, as Java's URICertStore keeps them), and a certificate that
//! is revoked, or whose status cannot be told (no distribution point, a list that cannot be
//! fetched or read), is refused. The checks themselves are rustls-webpki's; this module finds
//! and fetches the lists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use tracing::warn;

/// How long a fetched list is used before it is fetched again.
const KEEP: Duration = Duration::from_secs(30);
/// Bound on fetching one list.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A client certificate verifier that adds revocation checks to the trust store's.
#[derive(Debug)]
pub struct CrlChecking {
    /// The verifier without revocation checks: root hints and signatures.
    base: Arc<dyn ClientCertVerifier>,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    /// `ssl.clientAuth=want`: a client without a certificate is let in.
    optional: bool,
    cache: Mutex<HashMap<String, (Instant, Vec<u8>)>>,
}

impl CrlChecking {
    pub fn new(
        base: Arc<dyn ClientCertVerifier>,
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
        optional: bool,
    ) -> CrlChecking {
        CrlChecking {
            base,
            roots,
            provider,
            optional,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The list at `uri`, from the cache or fetched.
    fn list(&self, uri: &str) -> Result<CertificateRevocationListDer<'static>, String> {
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, der)) = cache.get(uri).filter(|(at, _)| at.elapsed() < KEEP) {
                return Ok(der.clone().into());
            }
        }
        let der = fetch(uri)?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(uri.to_string(), (Instant::now(), der.clone()));
        Ok(der.into())
    }
}

/// The `http://` URIs of a certificate's CRL distribution points.
pub fn distribution_points(cert: &[u8]) -> Vec<String> {
    use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ext in cert.extensions() {
        let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() else {
            continue;
        };
        for p in points.iter() {
            if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                for n in names {
                    if let GeneralName::URI(u) = n {
                        if u.starts_with("http://") {
                            out.push(u.to_string());
                        }
                    }
                }
            }
        }
    }
    out
}

/// GETs a list; DER, or PEM (`X509 CRL`) as openssl writes either.
fn fetch(uri: &str) -> Result<Vec<u8>, String> {
    let agent = ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .timeout_global(Some(FETCH_TIMEOUT))
            .build(),
    );
    let fetch = || -> Result<Vec<u8>, String> {
        let mut res = agent.get(uri).call().map_err(|e| e.to_string())?;
        res.body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_vec()
            .map_err(|e| e.to_string())
    };
    // Called from inside a TLS handshake on the async runtime: the fetch blocks.
    let body = match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(fetch)
        }
        _ => fetch(),
    }
    .map_err(|e| format!("CRL {uri}: {e}"))?;
    if body.starts_with(b"-----BEGIN") {
        let mut reader = body.as_slice();
        for item in rustls_pemfile::read_all(&mut reader) {
            if let Ok(rustls_pemfile::Item::Crl(c)) = item {
                return Ok(c.as_ref().to_vec());
            }
        }
        return Err(format!("CRL {uri}: no X509 CRL in the PEM it served"));
    }
    Ok(body)
}

impl ClientCertVerifier for CrlChecking {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        !self.optional
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.base.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let mut crls = Vec::new();
        for cert in std::iter::once(end_entity).chain(intermediates) {
            for uri in distribution_points(cert) {
                match self.list(&uri) {
                    Ok(c) => crls.push(c),
                    // Left out: the status of that certificate is then unknown, and refused.
                    Err(e) => warn!("ssl.crl: {e}"),
                }
            }
        }
        // rustls checks revocation only when it has lists: without any, the client
        // certificate's status is unknown, which Java's checker refuses.
        if crls.is_empty() {
            warn!("ssl.crl: no revocation list for the client certificate (no http CRL distribution point, or none could be fetched)");
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownRevocationStatus,
            ));
        }
        let v =
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), self.provider.clone())
                .with_crls(crls)
                .build()
                .map_err(|e| rustls::Error::General(format!("ssl.crl: {e}")))?;
        v.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.base.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.base.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.base.supported_verify_schemes()
    }
}
