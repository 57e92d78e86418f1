//! ACL evaluation and the built-in auth providers (`world`, `digest`, `ip`, `super`), as
//! ZooKeeper 3.8 applies them (reference §3.6). Pure: the caller passes the connection's ids.

use std::net::Ipv4Addr;

use base64::Engine;
use corral_proto::records::{perms, Acl, Id};
use sha1::{Digest, Sha1};

/// Settings that change how ACLs are checked; from zoo.cfg / -D properties.
#[derive(Debug, Clone)]
pub struct AclPolicy {
    /// `zookeeper.skipACL=yes`: every check passes.
    pub skip_acl: bool,
    /// `zookeeper.DigestAuthenticationProvider.superDigest` (`user:base64(sha1)`).
    pub super_digest: Option<String>,
    /// `zookeeper.DigestAuthenticationProvider.enabled` (default true).
    pub digest_enabled: bool,
    /// The x509 provider is registered (ZooKeeper does that when a secure client port is set):
    /// a TLS client's certificate subject is its `x509` id.
    pub x509_enabled: bool,
    /// `zookeeper.X509AuthenticationProvider.superUser`: the subject that is also `super`.
    pub x509_super_user: Option<String>,
    /// The JAAS `Server` section's DigestLoginModule users (`user_NAME="password"`): SASL
    /// DIGEST-MD5 is offered when set.
    pub sasl_users: Option<std::collections::BTreeMap<String, String>>,
    /// The mechanism offered instead of DIGEST-MD5 (GSSAPI when the JAAS `Server` section
    /// is Kerberos).
    pub sasl_mechanism: Option<std::sync::Arc<dyn crate::sasl::SaslMechanism>>,
    /// `authProvider.N=…SASLAuthenticationProvider`: the `sasl` ACL scheme is known.
    pub sasl_provider: bool,
    /// `zookeeper.superUser` (and every `zookeeper.superUser*` property): SASL users that are
    /// also `super`.
    pub sasl_super_users: Vec<String>,
    /// `zookeeper.allowSaslFailedClients`: a client whose SASL exchange fails keeps its
    /// connection (without a `sasl` id) instead of getting AuthFailed, unless SASL is required.
    pub allow_sasl_failed: bool,
    /// Mixed into each DIGEST-MD5 nonce (random per server start; fixed in simulations).
    pub sasl_nonce_seed: u64,
    /// `enforce.auth.enabled` with `enforce.auth.schemes` (or `sessionRequireClientSASLAuth`):
    /// a connection must hold an id of one of these schemes before any request but auth/SASL.
    pub enforce_schemes: Option<Vec<String>>,
    /// `DigestAuthenticationProvider.digestAlg`: the hash of digest ids and `superDigest`.
    pub digest_alg: DigestAlg,
}

/// The hash digest ids are made with (`DigestAuthenticationProvider.digestAlg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestAlg {
    #[default]
    Sha1,
    Sha256,
    Sha3_256,
}

impl DigestAlg {
    /// The names Java's `MessageDigest` knows them by, as the property is written.
    pub fn from_java_name(name: &str) -> Option<DigestAlg> {
        match name.trim().to_ascii_uppercase().as_str() {
            "SHA1" | "SHA-1" => Some(DigestAlg::Sha1),
            "SHA-256" | "SHA256" => Some(DigestAlg::Sha256),
            "SHA3-256" => Some(DigestAlg::Sha3_256),
            _ => None,
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            DigestAlg::Sha1 => Sha1::digest(data).to_vec(),
            DigestAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            DigestAlg::Sha3_256 => sha3::Sha3_256::digest(data).to_vec(),
        }
    }
}

impl Default for AclPolicy {
    fn default() -> Self {
        AclPolicy {
            skip_acl: false,
            super_digest: None,
            digest_enabled: true,
            x509_enabled: false,
            x509_super_user: None,
            sasl_users: None,
            sasl_mechanism: None,
            sasl_provider: false,
            sasl_super_users: Vec::new(),
            allow_sasl_failed: false,
            sasl_nonce_seed: 0,
            enforce_schemes: None,
            digest_alg: DigestAlg::Sha1,
        }
    }
}

/// `user:base64(sha1("user:password"))`, the id a digest auth produces.
pub fn digest_id(auth: &str) -> String {
    digest_id_with(DigestAlg::Sha1, auth)
}

/// `user:base64(hash("user:password"))` with the configured hash.
pub fn digest_id_with(alg: DigestAlg, auth: &str) -> String {
    let user = auth.split(':').next().unwrap_or("");
    let hash = alg.hash(auth.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Outcome of an `auth` packet.
pub enum AuthOutcome {
    /// Ids to add to the connection.
    Added(Vec<Id>),
    /// Unknown scheme or rejected credentials: reply AuthFailed and close.
    Failed,
}

impl AclPolicy {
    fn provider_known(&self, scheme: &str) -> bool {
        match scheme {
            "ip" => true,
            "digest" => self.digest_enabled,
            "x509" => self.x509_enabled,
            "sasl" => self.sasl_provider,
            _ => false,
        }
    }

    /// The ids a finished SASL exchange gives its connection: `sasl:<user>`, and `super` for
    /// `zookeeper.superUser`.
    pub fn sasl_ids(&self, user: &str) -> Vec<Id> {
        let mut ids = vec![Id::new("sasl", user)];
        if self.sasl_super_users.iter().any(|u| u == user) {
            ids.push(Id::new("super", user));
        }
        ids
    }

    /// The ids a TLS connection starts with: its client certificate's subject (RFC 2253, as
    /// Java's `X500Principal.getName()` writes it) as `x509`, and `super` when it is the x509
    /// super user.
    pub fn x509_ids(&self, subject: &str) -> Vec<Id> {
        if !self.x509_enabled {
            return Vec::new();
        }
        let mut ids = vec![Id::new("x509", subject)];
        if self.x509_super_user.as_deref() == Some(subject) {
            ids.push(Id::new("super", subject));
        }
        ids
    }

    /// Handle `auth(scheme, data)` from a client at `remote_ip`.
    pub fn authenticate(&self, scheme: &str, data: &[u8], remote_ip: &str) -> AuthOutcome {
        match scheme {
            "digest" if self.digest_enabled => {
                let text = String::from_utf8_lossy(data);
                let id = digest_id_with(self.digest_alg, &text);
                let mut ids = vec![Id::new("digest", &id)];
                if self.super_digest.as_deref() == Some(id.as_str()) {
                    ids.push(Id::new("super", ""));
                }
                AuthOutcome::Added(ids)
            }
            "ip" => AuthOutcome::Added(vec![Id::new("ip", remote_ip)]),
            _ => AuthOutcome::Failed,
        }
    }

    /// `checkACL`: does any of `ids` hold `perm` under `acl`?
    pub fn allows(&self, acl: &[Acl], perm: i32, ids: &[Id]) -> bool {
        if self.skip_acl || acl.is_empty() {
            return true;
        }
        if ids.iter().any(|i| i.scheme == "super") {
            return true;
        }
        for a in acl {
            if a.perms & perm == 0 {
                continue;
            }
            if a.id.scheme == "world" && a.id.id == "anyone" {
                return true;
            }
            if !self.provider_known(&a.id.scheme) {
                continue;
            }
            for i in ids.iter().filter(|i| i.scheme == a.id.scheme) {
                if matches(&a.id.scheme, &i.id, &a.id.id) {
                    return true;
                }
            }
        }
        false
    }

    /// `fixupACL`: remove duplicates, expand `auth`, validate ids. `None` means InvalidACL.
    pub fn fixup(&self, acl: &[Acl], ids: &[Id]) -> Option<Vec<Acl>> {
        if acl.is_empty() {
            return None;
        }
        let mut deduped: Vec<Acl> = Vec::with_capacity(acl.len());
        for a in acl {
            if !deduped.contains(a) {
                deduped.push(a.clone());
            }
        }
        let mut out = Vec::with_capacity(deduped.len());
        for a in deduped {
            if a.id.scheme == "world" && a.id.id == "anyone" {
                out.push(a);
            } else if a.id.scheme == "auth" {
                let mut any = false;
                for i in ids {
                    // Only providers that say "authenticated" count: digest does, ip does not,
                    // and super has no provider at all.
                    let authenticated = match i.scheme.as_str() {
                        "digest" => self.digest_enabled,
                        "x509" => self.x509_enabled,
                        "sasl" => self.sasl_provider,
                        _ => false,
                    };
                    if authenticated {
                        out.push(Acl {
                            perms: a.perms,
                            id: i.clone(),
                        });
                        any = true;
                    }
                }
                if !any {
                    return None;
                }
            } else {
                if !self.provider_known(&a.id.scheme) || !is_valid(&a.id.scheme, &a.id.id) {
                    return None;
                }
                out.push(a);
            }
        }
        Some(out)
    }
}

/// `getACL` without ADMIN: digest ids are shown as `user:x`.
pub fn redact_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("");
                Acl {
                    perms: a.perms,
                    id: Id::new("digest", &format!("{user}:x")),
                }
            } else {
                a.clone()
            }
        })
        .collect()
}

/// The user name `whoAmI` reports for an id.
pub fn user_name(id: &Id) -> String {
    match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or("").to_string(),
        "ip" | "x509" | "sasl" => id.id.clone(),
        _ => String::new(),
    }
}

fn matches(scheme: &str, have: &str, acl_id: &str) -> bool {
    match scheme {
        "ip" => ip_matches(have, acl_id),
        _ => have == acl_id,
    }
}

fn is_valid(scheme: &str, id: &str) -> bool {
    match scheme {
        "digest" => java_split_count(id, ':') == 2,
        "ip" => parse_ip_acl(id).is_some(),
        "x509" => looks_like_dn(id),
        // KerberosName's forms: `user`, `user@REALM`, `service/host@REALM` (empty parts allowed).
        "sasl" => {
            let (name, realm) = id.split_once('@').unwrap_or((id, ""));
            !realm.contains(['@', '/']) && name.matches('/').count() <= 1
        }
        _ => false,
    }
}

/// Whether `id` reads as a distinguished name (`X500Principal` accepts it): every
/// comma-separated part, backslash escapes aside, is `type=value`.
fn looks_like_dn(id: &str) -> bool {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in id.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' | ';' => {
                parts.push(String::new());
                continue;
            }
            _ => {}
        }
        parts.last_mut().expect("never empty").push(c);
    }
    !id.trim().is_empty()
        && parts
            .iter()
            .all(|p| p.split_once('=').is_some_and(|(t, _)| !t.trim().is_empty()))
}

/// Number of parts Java's `String.split` returns: trailing empty strings are dropped.
fn java_split_count(s: &str, sep: char) -> usize {
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.len() == 1 && parts[0].is_empty() {
        // "".split(":") yields [""] in Java (length 1).
        return 1;
    }
    parts.len()
}

fn parse_ip_acl(id: &str) -> Option<(u32, u32)> {
    let (addr, bits) = match id.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()?),
        None => (id, 32),
    };
    if bits > 32 {
        return None;
    }
    let ip: Ipv4Addr = addr.parse().ok()?;
    Some((u32::from(ip), bits))
}

fn ip_matches(have: &str, acl_id: &str) -> bool {
    let Some((net, bits)) = parse_ip_acl(acl_id) else {
        return false;
    };
    let Ok(ip) = have.parse::<Ipv4Addr>() else {
        return false;
    };
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(ip) & mask == net & mask
}

/// The ACL `/zookeeper/config` and `/zookeeper/quota` have on a fresh tree: world READ for
/// config, and open for the rest.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}

#[cfg(test)]
mod tests {
    use super::*;

    // The digest id of the reference's verified example (§7).
    #[test]
    fn digest_matches_zookeeper() {
        assert_eq!(digest_id("bob:secret"), "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=");
    }

    // Digest ACL ids must split into exactly two parts, Java-style.
    #[test]
    fn digest_validity_is_java_split() {
        assert!(is_valid("digest", "a:b"));
        assert!(is_valid("digest", ":x"));
        assert!(!is_valid("digest", "user:"));
        assert!(!is_valid("digest", "a:b:c"));
        assert!(!is_valid("digest", "abc"));
    }

    // ip ACLs match after masking both sides.
    #[test]
    fn ip_masks() {
        assert!(ip_matches("127.0.0.1", "127.0.0.0/8"));
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(!ip_matches("127.0.0.1", "10.0.0.0/8"));
        assert!(ip_matches("10.1.2.3", "0.0.0.0/0"));
        assert!(!is_valid("ip", "1.2.3.4/33"));
        assert!(!is_valid("ip", "::1"));
    }

    // fixupACL: duplicates removed, auth expanded to digest ids, empty or unexpandable refused.
    #[test]
    fn fixup_rules() {
        let p = AclPolicy::default();
        let ids = vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "bob:xyz")];
        let acl = vec![Acl::new(31, "auth", ""), Acl::new(31, "auth", "")];
        assert_eq!(
            p.fixup(&acl, &ids),
            Some(vec![Acl::new(31, "digest", "bob:xyz")])
        );
        assert_eq!(p.fixup(&acl, &ids[..1]), None);
        assert_eq!(p.fixup(&[], &ids), None);
        assert_eq!(p.fixup(&[Acl::new(31, "foo", "x")], &ids), None);
        let w = vec![Acl::new(31, "world", "anyone")];
        assert_eq!(p.fixup(&w, &[]), Some(w.clone()));
    }

    // Super ids and skipACL bypass every check; world:anyone needs the perm bit.
    #[test]
    fn check_acl() {
        let p = AclPolicy::default();
        let read_only = vec![Acl::new(perms::READ, "world", "anyone")];
        assert!(p.allows(&read_only, perms::READ, &[]));
        assert!(!p.allows(&read_only, perms::WRITE, &[]));
        assert!(p.allows(&read_only, perms::WRITE, &[Id::new("super", "")]));
        let skip = AclPolicy {
            skip_acl: true,
            ..AclPolicy::default()
        };
        assert!(skip.allows(&read_only, perms::WRITE, &[]));
        let d = vec![Acl::new(perms::ALL, "digest", &digest_id("bob:secret"))];
        assert!(p.allows(
            &d,
            perms::READ,
            &[Id::new("digest", &digest_id("bob:secret"))]
        ));
        assert!(!p.allows(
            &d,
            perms::READ,
            &[Id::new("digest", &digest_id("bob:wrong"))]
        ));
    }

    // superDigest auth adds a super id next to the digest id.
    #[test]
    fn super_digest() {
        let p = AclPolicy {
            super_digest: Some(digest_id("admin:pw")),
            ..AclPolicy::default()
        };
        match p.authenticate("digest", b"admin:pw", "127.0.0.1") {
            AuthOutcome::Added(ids) => assert!(ids.iter().any(|i| i.scheme == "super")),
            AuthOutcome::Failed => panic!("digest auth never fails"),
        }
        assert!(matches!(
            p.authenticate("kerberos", b"x", "1.1.1.1"),
            AuthOutcome::Failed
        ));
    }
}
