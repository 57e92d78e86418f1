//! SASL GSSAPI (Kerberos, RFC 4752) for clients, as ZooKeeper runs it when its JAAS `Server`
//! section is a `Krb5LoginModule`: the service principal's key comes from the section's keytab,
//! the GSS-API context is MIT Kerberos' (through the `libgssapi` crate: corral writes no
//! crypto), and the client's principal becomes its `sasl` id after ZooKeeper's name rules
//! (`kerberos.removeHostFromPrincipal`, `kerberos.removeRealmFromPrincipal`).
//!
//! The exchange: the client's first token starts the context; the server answers with its
//! own (mutual authentication) until the context is established; then it offers its security
//! layers (only "none": ZooKeeper's default quality of protection is `auth`) in a wrapped
//! 4-byte token, and the client's wrapped choice ends the exchange, with no last token.
//!
//! Process-wide settings: MIT Kerberos reads its configuration and the keytab from the
//! environment, so [`environment`] says what to set before any thread starts (see the
//! binary's `main`): `KRB5_CONFIG` from `-Djava.security.krb5.conf`, `KRB5_KTNAME` from the
//! keytab, and a private in-memory credential cache.

use std::sync::Arc;

use corral_tree::sasl::SaslMechanism;

use crate::config::jaas::LoginModule;
use crate::config::ServerConfig;

/// Java's Kerberos login module, as JAAS files name it.
pub const KRB5_LOGIN_MODULE: &str = "com.sun.security.auth.module.Krb5LoginModule";

/// A `Krb5LoginModule` entry: who we are and where our key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Krb5Login {
    pub principal: String,
    pub keytab: String,
}

impl Krb5Login {
    /// Reads the module's options as Java's Krb5LoginModule takes them for a service:
    /// `useKeyTab=true`, `keyTab`, `principal` (`storeKey`, `useTicketCache` and `debug` are
    /// accepted and change nothing here).
    pub fn from_module(m: &LoginModule, section: &str) -> Result<Krb5Login, String> {
        let opt = |k: &str| m.options.get(k).map(String::as_str);
        if opt("useKeyTab") != Some("true") {
            return Err(format!(
                "section {section}: corral takes Kerberos keys from a keytab only; set \
                 useKeyTab=true and keyTab"
            ));
        }
        let (Some(keytab), Some(principal)) = (opt("keyTab"), opt("principal")) else {
            return Err(format!(
                "section {section}: keyTab and principal are needed"
            ));
        };
        Ok(Krb5Login {
            principal: principal.to_string(),
            keytab: keytab.to_string(),
        })
    }
}

/// The Kerberos login of JAAS section `section`, if that section is a `Krb5LoginModule`.
pub fn krb5_login(
    sections: &std::collections::BTreeMap<String, Vec<LoginModule>>,
    section: &str,
) -> Result<Option<Krb5Login>, String> {
    let Some(modules) = sections.get(section) else {
        return Ok(None);
    };
    match modules.iter().find(|m| m.class == KRB5_LOGIN_MODULE) {
        None => Ok(None),
        Some(m) => Krb5Login::from_module(m, section).map(Some),
    }
}

/// The environment MIT Kerberos must see for `cfg`'s Kerberos logins, to be set before the
/// runtime starts: empty when no JAAS section in use is Kerberos. The acceptor keytab is
/// process-wide, so the client port's and the members' sections must name the same one.
pub fn environment(cfg: &ServerConfig) -> Result<Vec<(&'static str, String)>, String> {
    let Some(jaas) = &cfg.jaas else {
        return Ok(Vec::new());
    };
    let (path, sections) = (&jaas.path, &jaas.sections);
    let login =
        |section: &str| krb5_login(sections, section).map_err(|e| format!("JAAS file {path}, {e}"));
    let mut accept = vec![login(
        cfg.property("zookeeper.sasl.serverconfig")
            .unwrap_or("Server"),
    )?];
    let mut initiate = None;
    if let Some(q) = &cfg.quorum_sasl {
        accept.push(login(&q.server_context)?);
        if q.learner_require {
            initiate = login(&q.learner_context)?;
        }
    }
    let accept: Vec<Krb5Login> = accept.into_iter().flatten().collect();
    if let Some(other) = accept.iter().find(|l| l.keytab != accept[0].keytab) {
        return Err(format!(
            "JAAS file {path}: the Kerberos sections name two keytabs, {} and {}; corral reads \
             one (merge them with ktutil)",
            accept[0].keytab, other.keytab
        ));
    }
    if accept.is_empty() && initiate.is_none() {
        return Ok(Vec::new());
    }
    // Tickets corral obtains stay in the process, never in the operator's cache.
    let mut env = vec![("KRB5CCNAME", "MEMORY:corral".to_string())];
    if let Some(l) = accept.first() {
        env.push(("KRB5_KTNAME", format!("FILE:{}", l.keytab)));
    }
    if let Some(l) = &initiate {
        env.push(("KRB5_CLIENT_KTNAME", format!("FILE:{}", l.keytab)));
    }
    if let Some(conf) = cfg.property("java.security.krb5.conf") {
        env.push(("KRB5_CONFIG", conf.to_string()));
    }
    Ok(env)
}

/// ZooKeeper's rules for the `sasl` id of an authenticated principal
/// (`SaslServerCallbackHandler`): the short name (the first component when the realm is the
/// default one, by the DEFAULT auth_to_local rule), then `/host` and `@REALM` unless removed.
/// A principal of another realm matches no rule, and ZooKeeper then keeps it whole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameRules {
    pub default_realm: Option<String>,
    pub remove_host: bool,
    pub remove_realm: bool,
}

impl NameRules {
    pub fn sasl_user(&self, principal: &str) -> String {
        let (rest, realm) = match principal.split_once('@') {
            Some((r, realm)) => (r, Some(realm)),
            None => (principal, None),
        };
        let (service, host) = match rest.split_once('/') {
            Some((s, h)) => (s, Some(h)),
            None => (rest, None),
        };
        if realm.is_some() && realm != self.default_realm.as_deref() {
            return principal.to_string();
        }
        let mut user = service.to_string();
        if let Some(h) = host.filter(|_| !self.remove_host) {
            user.push('/');
            user.push_str(h);
        }
        if let Some(r) = realm.filter(|_| !self.remove_realm) {
            user.push('@');
            user.push_str(r);
        }
        user
    }
}

/// `default_realm` of a krb5.conf's `[libdefaults]`.
pub fn default_realm(krb5_conf: &str) -> Option<String> {
    let mut in_libdefaults = false;
    for line in krb5_conf.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_libdefaults = line == "[libdefaults]";
            continue;
        }
        if !in_libdefaults {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            if k.trim() == "default_realm" {
                return Some(v.trim().to_string());
            }
        }
    }
    None
}

/// The GSSAPI mechanism for `login`, or why there is none: a keytab without the service's
/// key, or a corral built without the `kerberos` feature.
pub fn mechanism(cfg: &ServerConfig, login: &Krb5Login) -> Result<Arc<dyn SaslMechanism>, String> {
    if !std::path::Path::new(&login.keytab).is_file() {
        return Err(format!("keytab {} does not exist", login.keytab));
    }
    #[cfg(feature = "kerberos")]
    {
        let rules = NameRules::of(cfg);
        Ok(gss::Gssapi::new(login, rules)?)
    }
    #[cfg(not(feature = "kerberos"))]
    {
        let _ = (cfg, login);
        Err(NO_FEATURE.to_string())
    }
}

impl NameRules {
    /// The rules `cfg` sets, with the default realm of the krb5.conf in use.
    pub fn of(cfg: &ServerConfig) -> NameRules {
        let conf = krb5_conf_path(cfg);
        let flag = |k: &str| cfg.property(k).is_some_and(|v| v == "true");
        NameRules {
            default_realm: std::fs::read_to_string(&conf)
                .ok()
                .and_then(|t| default_realm(&t)),
            remove_host: flag("zookeeper.kerberos.removeHostFromPrincipal"),
            remove_realm: flag("zookeeper.kerberos.removeRealmFromPrincipal"),
        }
    }
}

/// The krb5.conf MIT Kerberos reads: `-Djava.security.krb5.conf`, `$KRB5_CONFIG`, or
/// /etc/krb5.conf.
pub fn krb5_conf_path(cfg: &ServerConfig) -> String {
    cfg.property("java.security.krb5.conf")
        .map(str::to_string)
        .or_else(|| std::env::var("KRB5_CONFIG").ok())
        .unwrap_or_else(|| "/etc/krb5.conf".to_string())
}

/// The service principal a member asks for when it authenticates to the member at `host`:
/// `quorum.auth.kerberos.servicePrincipal` with `_HOST` replaced by that host (lower case),
/// and our own realm when it names none (or `zookeeper.server.realm`), as ZooKeeper's
/// `SecurityUtils` makes it.
pub fn quorum_target(service: &str, host: &str, ours: &str, server_realm: Option<&str>) -> String {
    let name = service.replace("_HOST", &host.to_lowercase());
    if name.contains('@') {
        return name;
    }
    let realm = server_realm.or_else(|| ours.split_once('@').map(|(_, r)| r));
    match realm {
        Some(r) => format!("{name}@{r}"),
        None => name,
    }
}

/// Whether a member's Kerberos principal may join: `service/host@REALM` with `host` one of the
/// members' host names, as ZooKeeper's quorum server checks it.
pub fn member_principal_allowed(
    principal: &str,
    hosts: &std::collections::BTreeSet<String>,
) -> bool {
    let parts: Vec<&str> = principal.split(['/', '@']).collect();
    parts.len() == 3 && hosts.contains(parts[1])
}

/// The acceptor for members' Kerberos logins (the `QuorumServer` section): the principal
/// comes back whole.
pub fn quorum_mechanism(login: &Krb5Login) -> Result<Arc<dyn SaslMechanism>, String> {
    if !std::path::Path::new(&login.keytab).is_file() {
        return Err(format!("keytab {} does not exist", login.keytab));
    }
    #[cfg(feature = "kerberos")]
    {
        Ok(gss::Gssapi::new(login, NameRules::default())?)
    }
    #[cfg(not(feature = "kerberos"))]
    {
        let _ = login;
        Err(NO_FEATURE.to_string())
    }
}

/// The initiator for our own Kerberos login to a member (`QuorumLearner`): asks the KDC for a
/// ticket to `target`, so it blocks.
pub fn quorum_client(
    login: &Krb5Login,
    target: &str,
) -> Result<Box<dyn corral_tree::sasl::SaslClientExchange>, String> {
    #[cfg(feature = "kerberos")]
    {
        Ok(Box::new(gss::GssClient::new(login, target)?))
    }
    #[cfg(not(feature = "kerberos"))]
    {
        let _ = (login, target);
        Err(NO_FEATURE.to_string())
    }
}

#[cfg(not(feature = "kerberos"))]
const NO_FEATURE: &str = "this corral was built without Kerberos (cargo feature `kerberos`; \
                          building it needs libkrb5-dev, libclang-dev and pkg-config)";

#[cfg(feature = "kerberos")]
mod gss {
    use std::sync::Arc;

    use corral_tree::sasl::{SaslExchange, SaslMechanism, Step};
    use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext, ServerCtx};
    use libgssapi::credential::{Cred, CredUsage};
    use libgssapi::name::Name;
    use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_NT_KRB5_PRINCIPAL};
    use tracing::info;

    use super::{Krb5Login, NameRules};

    /// The security layers a server offers: bit 0 is "no security layer" (qop `auth`).
    const LAYER_NONE: u8 = 1;
    /// The largest message the server takes, as Java's GSSAPI server announces it.
    const MAX_BUFFER: u32 = 65536;

    /// The GSSAPI mechanism: the service's acceptor credential and the naming rules.
    #[derive(Debug)]
    pub struct Gssapi {
        cred: Cred,
        rules: NameRules,
    }

    fn krb5_mechs() -> Result<OidSet, String> {
        let mut set = OidSet::new();
        set.add(GSS_MECH_KRB5).map_err(|e| e.to_string())?;
        Ok(set)
    }

    impl Gssapi {
        /// Acquires the service principal's acceptor credential from the keytab (`environment`
        /// has pointed MIT Kerberos at it); fails, naming both, when the keytab lacks its key.
        pub fn new(login: &Krb5Login, rules: NameRules) -> Result<Arc<Gssapi>, String> {
            let name = Name::new(login.principal.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
                .map_err(|e| format!("principal {}: {e}", login.principal))?;
            let cred = Cred::acquire(Some(&name), None, CredUsage::Accept, Some(&krb5_mechs()?))
                .map_err(|e| {
                    format!(
                        "no key for {} in keytab {}: {e}",
                        login.principal, login.keytab
                    )
                })?;
            info!(
                "SASL GSSAPI (Kerberos) for clients as {} from keytab {}{}",
                login.principal,
                login.keytab,
                match &rules.default_realm {
                    Some(r) => format!(", default realm {r}"),
                    None => ", no default realm in krb5.conf".to_string(),
                }
            );
            Ok(Arc::new(Gssapi { cred, rules }))
        }
    }

    impl SaslMechanism for Gssapi {
        fn start(&self) -> Box<dyn SaslExchange> {
            Box::new(GssExchange {
                ctx: ServerCtx::new(Some(self.cred.clone())),
                stage: Stage::Accepting,
                rules: self.rules.clone(),
            })
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Stage {
        /// The GSS-API context is being set up.
        Accepting,
        /// Established; the client's next (empty) token asks for the security layers.
        Established,
        /// The layers were offered; the client's choice comes next.
        Offered,
        Over,
    }

    #[derive(Debug)]
    struct GssExchange {
        ctx: ServerCtx,
        stage: Stage,
        rules: NameRules,
    }

    impl GssExchange {
        fn offer_layers(&mut self) -> Step {
            let mut offer = MAX_BUFFER.to_be_bytes();
            offer[0] = LAYER_NONE;
            match self.ctx.wrap(false, &offer) {
                Ok(t) => {
                    self.stage = Stage::Offered;
                    Step::Continue(t.to_vec())
                }
                Err(e) => Step::Failed(format!("cannot wrap the security layer offer: {e}")),
            }
        }

        fn choice(&mut self, token: &[u8]) -> Step {
            let plain = match self.ctx.unwrap(token) {
                Ok(p) => p,
                Err(e) => return Step::Failed(format!("the client's layer choice: {e}")),
            };
            if plain.len() < 4 {
                return Step::Failed("the client's layer choice is too short".into());
            }
            if plain[0] != LAYER_NONE {
                return Step::Failed(format!(
                    "the client chose security layer {:#x}, only 'none' (qop auth) is offered",
                    plain[0]
                ));
            }
            let principal = match self.ctx.source_name() {
                Ok(n) => n.to_string(),
                Err(e) => return Step::Failed(format!("the client's name: {e}")),
            };
            let user = self.rules.sasl_user(&principal);
            info!("Kerberos principal {principal} is sasl id {user}");
            Step::Done { token: None, user }
        }
    }

    impl SaslExchange for GssExchange {
        fn step(&mut self, token: &[u8]) -> Step {
            let stage = std::mem::replace(&mut self.stage, Stage::Over);
            match stage {
                Stage::Accepting => match self.ctx.step(token, None) {
                    Err(e) => Step::Failed(format!("Kerberos: {e}")),
                    Ok(Some(out)) => {
                        self.stage = if self.ctx.is_complete() {
                            Stage::Established
                        } else {
                            Stage::Accepting
                        };
                        Step::Continue(out.to_vec())
                    }
                    // Established with nothing to send back (no mutual authentication): the
                    // layers go out at once, as Java's GSSAPI server does.
                    Ok(None) => self.offer_layers(),
                },
                Stage::Established => self.offer_layers(),
                Stage::Offered => self.choice(token),
                Stage::Over => Step::Failed("the SASL exchange is already over".into()),
            }
        }
    }
    /// The client half of GSSAPI (RFC 4752) for a member logging in to another.
    pub struct GssClient {
        ctx: ClientCtx,
        stage: ClientStage,
        authzid: String,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum ClientStage {
        Context,
        AwaitOffer,
        Chosen,
    }

    impl GssClient {
        pub fn new(login: &Krb5Login, target: &str) -> Result<GssClient, String> {
            let me = Name::new(login.principal.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
                .map_err(|e| format!("principal {}: {e}", login.principal))?;
            let cred = Cred::acquire(Some(&me), None, CredUsage::Initiate, Some(&krb5_mechs()?))
                .map_err(|e| {
                    format!(
                        "no Kerberos login as {} with keytab {}: {e}",
                        login.principal, login.keytab
                    )
                })?;
            let target_name = Name::new(target.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
                .map_err(|e| format!("service principal {target}: {e}"))?;
            let ctx = ClientCtx::new(
                Some(cred),
                target_name,
                CtxFlags::GSS_C_MUTUAL_FLAG,
                Some(GSS_MECH_KRB5),
            );
            Ok(GssClient {
                ctx,
                stage: ClientStage::Context,
                authzid: login.principal.clone(),
            })
        }

        fn choose(&mut self, offer: &[u8]) -> Result<Vec<u8>, String> {
            let plain = self
                .ctx
                .unwrap(offer)
                .map_err(|e| format!("the security layer offer: {e}"))?;
            if plain.len() < 4 || plain[0] & LAYER_NONE == 0 {
                return Err("the server does not offer qop auth".into());
            }
            let mut choice = MAX_BUFFER.to_be_bytes().to_vec();
            choice[0] = LAYER_NONE;
            choice.extend_from_slice(self.authzid.as_bytes());
            let wrapped = self
                .ctx
                .wrap(false, &choice)
                .map_err(|e| format!("wrapping our layer choice: {e}"))?;
            self.stage = ClientStage::Chosen;
            Ok(wrapped.to_vec())
        }
    }

    impl corral_tree::sasl::SaslClientExchange for GssClient {
        fn initial(&mut self) -> Result<Vec<u8>, String> {
            match self.ctx.step(None, None) {
                Ok(Some(t)) => Ok(t.to_vec()),
                Ok(None) => Err("Kerberos gave no initial token".into()),
                Err(e) => Err(format!("Kerberos: {e}")),
            }
        }

        fn challenge(&mut self, token: &[u8]) -> Result<Vec<u8>, String> {
            match self.stage {
                ClientStage::Context if !self.ctx.is_complete() => {
                    match self.ctx.step(Some(token), None) {
                        Ok(Some(t)) => Ok(t.to_vec()),
                        Ok(None) => {
                            // Established: an empty token asks for the security layers.
                            self.stage = ClientStage::AwaitOffer;
                            Ok(Vec::new())
                        }
                        Err(e) => Err(format!("Kerberos: {e}")),
                    }
                }
                ClientStage::Context | ClientStage::AwaitOffer => self.choose(token),
                ClientStage::Chosen => Err("a token after our layer choice".into()),
            }
        }

        fn success(&mut self, _token: Option<&[u8]>) -> Result<(), String> {
            match self.stage {
                ClientStage::Chosen => Ok(()),
                _ => Err("the server says success before the exchange is over".into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ZooKeeper's naming: short name by the DEFAULT rule, host and realm kept unless removed,
    // a foreign realm's principal kept whole.
    #[test]
    fn sasl_ids_of_principals() {
        let mut r = NameRules {
            default_realm: Some("EXAMPLE.COM".into()),
            ..NameRules::default()
        };
        assert_eq!(r.sasl_user("alice@EXAMPLE.COM"), "alice@EXAMPLE.COM");
        assert_eq!(r.sasl_user("zk/host1@EXAMPLE.COM"), "zk/host1@EXAMPLE.COM");
        assert_eq!(r.sasl_user("bob@OTHER.ORG"), "bob@OTHER.ORG");
        assert_eq!(r.sasl_user("carol"), "carol");
        r.remove_host = true;
        assert_eq!(r.sasl_user("zk/host1@EXAMPLE.COM"), "zk@EXAMPLE.COM");
        r.remove_realm = true;
        assert_eq!(r.sasl_user("zk/host1@EXAMPLE.COM"), "zk");
        assert_eq!(r.sasl_user("alice@EXAMPLE.COM"), "alice");
        assert_eq!(r.sasl_user("bob@OTHER.ORG"), "bob@OTHER.ORG");
    }

    #[test]
    fn default_realm_of_krb5_conf() {
        let conf = "[logging]\n default_realm = NOT.THIS\n[libdefaults]\n  rdns = false\n  \
                    default_realm = EXAMPLE.COM\n[realms]\n";
        assert_eq!(default_realm(conf).as_deref(), Some("EXAMPLE.COM"));
        assert_eq!(default_realm("[realms]\n"), None);
    }

    // The service principal a member asks for, and which member principals may join.
    #[test]
    fn quorum_principals() {
        let me = "zkquorum/127.0.0.1@EXAMPLE.COM";
        assert_eq!(
            quorum_target("zkquorum/localhost", "h", me, None),
            "zkquorum/localhost@EXAMPLE.COM"
        );
        assert_eq!(
            quorum_target("zkquorum/_HOST", "Zk2.Example.COM", me, None),
            "zkquorum/zk2.example.com@EXAMPLE.COM"
        );
        assert_eq!(
            quorum_target("zkquorum/x", "h", me, Some("OTHER.ORG")),
            "zkquorum/x@OTHER.ORG"
        );
        assert_eq!(quorum_target("zkquorum/x@R", "h", me, None), "zkquorum/x@R");
        let hosts = ["127.0.0.1".to_string()].into_iter().collect();
        assert!(member_principal_allowed(me, &hosts));
        assert!(!member_principal_allowed(
            "zkquorum/10.0.0.9@EXAMPLE.COM",
            &hosts
        ));
        assert!(!member_principal_allowed("alice@EXAMPLE.COM", &hosts));
    }

    // The JAAS options a service's Krb5LoginModule needs.
    #[test]
    fn krb5_login_options() {
        let text = "Server { com.sun.security.auth.module.Krb5LoginModule required \
                    useKeyTab=true keyTab=\"/k.keytab\" storeKey=true \
                    principal=\"zookeeper/localhost@EXAMPLE.COM\"; };\n\
                    Other { com.sun.security.auth.module.Krb5LoginModule required \
                    useTicketCache=true; };";
        let sections = crate::config::jaas::parse(text).unwrap();
        let login = krb5_login(&sections, "Server").unwrap().unwrap();
        assert_eq!(login.keytab, "/k.keytab");
        assert_eq!(login.principal, "zookeeper/localhost@EXAMPLE.COM");
        let e = krb5_login(&sections, "Other").unwrap_err();
        assert!(e.contains("useKeyTab=true"), "{e}");
        assert_eq!(krb5_login(&sections, "Missing").unwrap(), None);
    }
}
