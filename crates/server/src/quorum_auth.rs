//! SASL between members (`quorum.auth.*`): the DIGEST-MD5 exchange of `QuorumAuthPacket`s that
//! a connecting member runs right after the election header, and before anything else on the
//! quorum port, and the checks the member it connects to makes. ZooKeeper 3.8's rules:
//!
//! - `enableSasl` makes a member check every connecting member that offers credentials (its
//!   first bytes are an auth packet); a failed check is answered "error" and, unless
//!   `serverRequireSasl`, the connection goes on anyway (the rolling upgrade's middle step).
//! - `learnerRequireSasl` makes a member offer credentials on every connection it opens, and
//!   give the connection up when they are refused.
//! - `serverRequireSasl` refuses members that do not offer credentials or offer wrong ones.
//!
//! The protocol is `corral_proto::quorum::QuorumAuthPacket` and `corral_tree::sasl` (DIGEST-MD5)
//! or `crate::kerberos` (GSSAPI); this is the socket glue. Credentials come from the JAAS
//! file's `QuorumLearner` section (ours) and `QuorumServer` section (everyone's), read at
//! start-up: `DigestLoginModule` users and passwords, or `Krb5LoginModule` keytabs, in which
//! case a member's principal must be `service/host@REALM` with the host of a `server.N` line.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use corral_proto::quorum::{AuthStatus, QuorumAuthPacket};
use corral_tree::sasl::{
    DigestExchange, DigestMd5, DigestMd5Client, SaslClientExchange, SaslExchange, SaslMechanism,
    Step, QUORUM,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{info, warn};

use crate::config::jaas::{self, LoginModule, DIGEST_LOGIN_MODULE};
use crate::config::{QuorumSaslConfig, ServerConfig};
use crate::kerberos::{krb5_login, Krb5Login};
use crate::limits::CONNECT_TIMEOUT;

/// How many tokens a connecting member may send before it is refused (ZooKeeper: 5).
const MAX_ROUNDS: usize = 5;

/// How we log in to other members (`QuorumLearner`).
#[derive(Debug, Clone)]
enum Learner {
    Digest {
        user: String,
        password: String,
    },
    /// Kerberos: our principal and keytab, and the service principal we ask for
    /// (`quorum.auth.kerberos.servicePrincipal`, `_HOST` filled in per member).
    Kerberos {
        login: Krb5Login,
        service: String,
        server_realm: Option<String>,
    },
}

/// How we check members that log in to us (`QuorumServer`).
#[derive(Debug, Clone)]
enum Members {
    Digest(BTreeMap<String, String>),
    /// Kerberos: the acceptor, and the members' host names a principal must name.
    Kerberos {
        mech: Arc<dyn SaslMechanism>,
        hosts: BTreeSet<String>,
    },
}

/// A member's quorum SASL settings and credentials.
#[derive(Debug, Clone)]
pub(crate) struct QuorumSasl {
    /// Set when we authenticate to others (`learnerRequireSasl`).
    learner: Option<Learner>,
    members: Members,
    server_require: bool,
}

/// The sections as ZooKeeper's SASL halves read them: both must exist once `enableSasl` is on
/// (ZooKeeper's server does not start without them either). `hosts` are the members' host
/// names (Kerberos principals must name one).
pub(crate) fn load(
    cfg: &ServerConfig,
    q: &QuorumSaslConfig,
    hosts: BTreeSet<String>,
) -> Result<QuorumSasl, String> {
    let Some(jaas) = &cfg.jaas else {
        return Err("quorum.auth.enableSasl=true needs a JAAS file \
                    (-Djava.security.auth.login.config=…) with the QuorumServer and \
                    QuorumLearner sections"
            .into());
    };
    let server_realm = cfg.property("zookeeper.server.realm").map(str::to_string);
    from_jaas(q, jaas, server_realm, |login| {
        Ok(Members::Kerberos {
            mech: crate::kerberos::quorum_mechanism(login)?,
            hosts: hosts.clone(),
        })
    })
}

/// [`load`] with the JAAS file read; `kerberos` makes the acceptor of a Kerberos
/// `QuorumServer` section.
fn from_jaas(
    cfg: &QuorumSaslConfig,
    jaas: &jaas::JaasFile,
    server_realm: Option<String>,
    kerberos: impl FnOnce(&Krb5Login) -> Result<Members, String>,
) -> Result<QuorumSasl, String> {
    let (path, sections) = (&jaas.path, &jaas.sections);
    let section = |name: &str| -> Result<(&[LoginModule], Option<Krb5Login>), String> {
        let modules = sections.get(name).map(Vec::as_slice).unwrap_or_default();
        if modules.is_empty() {
            return Err(format!(
                "JAAS file {path} has no {name} section, which quorum SASL needs"
            ));
        }
        let krb = krb5_login(sections, name).map_err(|e| format!("JAAS file {path}, {e}"))?;
        if krb.is_none() {
            if let Some(m) = modules.iter().find(|m| m.class != DIGEST_LOGIN_MODULE) {
                return Err(format!(
                    "JAAS file {path}, section {name}: {} is not supported (corral offers \
                     DIGEST-MD5 with {DIGEST_LOGIN_MODULE} and Kerberos with {})",
                    m.class,
                    crate::kerberos::KRB5_LOGIN_MODULE
                ));
            }
        }
        Ok((modules, krb))
    };
    let members = match section(&cfg.server_context)? {
        (_, Some(login)) => kerberos(&login)?,
        (modules, None) => Members::Digest(jaas::digest_users(modules)),
    };
    let learner = if cfg.learner_require {
        match section(&cfg.learner_context)? {
            (_, Some(login)) => Some(Learner::Kerberos {
                login,
                service: cfg.service_principal.clone(),
                server_realm,
            }),
            (modules, None) => {
                let opt = |k: &str| modules.iter().find_map(|m| m.options.get(k).cloned());
                match (opt("username"), opt("password")) {
                    (Some(user), Some(password)) => Some(Learner::Digest { user, password }),
                    _ => {
                        return Err(format!(
                            "JAAS file {path}, section {}: username and password are needed",
                            cfg.learner_context
                        ))
                    }
                }
            }
        }
    } else {
        None
    };
    info!(
        "members authenticate with SASL: {}{}{}",
        match &members {
            Members::Digest(users) => format!(
                "DIGEST-MD5, {} member user(s) from {}",
                users.len(),
                cfg.server_context
            ),
            Members::Kerberos { hosts, .. } => format!(
                "Kerberos ({}), member principals must name one of {hosts:?}",
                cfg.server_context
            ),
        },
        match &learner {
            Some(Learner::Digest { user, .. }) => {
                format!("; we connect as {user} ({})", cfg.learner_context)
            }
            Some(Learner::Kerberos { login, .. }) => {
                format!(
                    "; we connect as {} ({})",
                    login.principal, cfg.learner_context
                )
            }
            None => "; we connect without (learnerRequireSasl=false)".to_string(),
        },
        if cfg.server_require {
            "; members without are refused"
        } else {
            "; members without are let in (serverRequireSasl=false)"
        }
    );
    Ok(QuorumSasl {
        learner,
        members,
        server_require: cfg.server_require,
    })
}

fn nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

async fn send<W: AsyncWrite + Unpin>(w: &mut W, p: QuorumAuthPacket) -> std::io::Result<()> {
    w.write_all(&p.encode()).await?;
    w.flush().await
}

/// Reads one auth packet; `buf` holds what was read beyond it.
async fn receive<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> Result<QuorumAuthPacket, String> {
    loop {
        match QuorumAuthPacket::try_decode(buf) {
            Ok(Some((p, used))) => {
                buf.drain(..used);
                return Ok(p);
            }
            Ok(None) => {}
            Err(e) => return Err(format!("not an auth packet: {e}")),
        }
        if !fill(r, buf).await? {
            return Err("the connection closed".into());
        }
    }
}

/// Reads more into `buf`; false at the end of the stream.
async fn fill<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Result<bool, String> {
    let mut chunk = [0u8; 4096];
    match r.read(&mut chunk).await {
        Ok(0) => Ok(false),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(true)
        }
        Err(e) => Err(e.to_string()),
    }
}

impl QuorumSasl {
    /// Kerberos members must name a member's host, as ZooKeeper's quorum server checks.
    fn may_join(&self, user: &str) -> bool {
        match &self.members {
            Members::Digest(_) => true,
            Members::Kerberos { hosts, .. } => {
                crate::kerberos::member_principal_allowed(user, hosts)
            }
        }
    }

    /// The connecting side, on a connection to the member at `peer` (`host` as its `server.N`
    /// line names it, for Kerberos' `_HOST`): authenticates when
    /// `learnerRequireSasl` says so. Returns the bytes read beyond the exchange, or why the
    /// connection must be given up (already logged).
    pub(crate) async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        sock: &mut S,
        host: &str,
        peer: SocketAddr,
    ) -> Result<Vec<u8>, ()> {
        let Some(learner) = &self.learner else {
            return Ok(Vec::new());
        };
        let mut buf = Vec::new();
        let (who, kerberos) = match learner {
            Learner::Digest { user, .. } => (user.clone(), false),
            Learner::Kerberos { login, .. } => (login.principal.clone(), true),
        };
        // Kerberos asks the KDC for tickets: off the async threads.
        let blocking = |f: &mut dyn FnMut() -> Result<Vec<u8>, String>| {
            if kerberos {
                tokio::task::block_in_place(f)
            } else {
                f()
            }
        };
        let exchange = async {
            let mut client: Box<dyn SaslClientExchange> = match learner {
                Learner::Digest { user, password } => {
                    Box::new(DigestMd5Client::new(QUORUM, user, password, nonce()))
                }
                Learner::Kerberos {
                    login,
                    service,
                    server_realm,
                } => {
                    let target = crate::kerberos::quorum_target(
                        service,
                        host,
                        &login.principal,
                        server_realm.as_deref(),
                    );
                    tokio::task::block_in_place(|| crate::kerberos::quorum_client(login, &target))?
                }
            };
            let mut token = blocking(&mut || client.initial())?;
            for _ in 0..=MAX_ROUNDS {
                send(sock, QuorumAuthPacket::new(AuthStatus::InProgress, token))
                    .await
                    .map_err(|e| e.to_string())?;
                let p = receive(sock, &mut buf).await?;
                match p.status {
                    AuthStatus::Success => return client.success(p.token.as_deref()),
                    AuthStatus::InProgress => {
                        let got = p.token.unwrap_or_default();
                        token = blocking(&mut || client.challenge(&got))?;
                    }
                    AuthStatus::Error => return Err("it refused our credentials".to_string()),
                }
            }
            Err("the exchange does not end".to_string())
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, exchange).await {
            Ok(Ok(())) => {
                info!("authenticated as {who} to the member at {peer} (quorum SASL)");
                Ok(buf)
            }
            Ok(Err(why)) => {
                warn!("quorum SASL with the member at {peer} failed: {why}; closing");
                Err(())
            }
            Err(_) => {
                warn!("quorum SASL with the member at {peer} timed out; closing");
                Err(())
            }
        }
    }

    /// The accepting side, on a connection from `peer` whose bytes so far are in `buf` (and
    /// stay there for the caller, less the exchange): checks the credentials a connecting
    /// member offers. False: refuse the connection (already logged).
    pub(crate) async fn check<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        sock: &mut S,
        buf: &mut Vec<u8>,
        peer: SocketAddr,
    ) -> bool {
        let who = format!("member connecting from {peer}");
        let outcome = tokio::time::timeout(CONNECT_TIMEOUT, self.serve(sock, buf)).await;
        let refused = match outcome {
            Ok(Ok(Some(user))) => {
                info!("{who} authenticated as {user} (quorum SASL)");
                return true;
            }
            Ok(Ok(None)) if !self.server_require => return true,
            Ok(Ok(None)) => {
                "it offers no credentials and quorum.auth.serverRequireSasl=true".into()
            }
            Ok(Err(why)) => why,
            Err(_) => "the exchange timed out".to_string(),
        };
        if self.server_require {
            warn!("{who}: quorum SASL failed: {refused}; closing");
            false
        } else {
            warn!(
                "{who}: quorum SASL failed: {refused}; let in anyway \
                 (quorum.auth.serverRequireSasl=false)"
            );
            true
        }
    }

    /// `Ok(None)`: the member offers no credentials.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        sock: &mut S,
        buf: &mut Vec<u8>,
    ) -> Result<Option<String>, String> {
        let offers = loop {
            if let Some(b) = QuorumAuthPacket::starts(buf) {
                break b;
            }
            if !fill(sock, buf).await? {
                // A member that loses the "larger sid dials" rule may just close.
                return Ok(None);
            }
        };
        if !offers {
            return Ok(None);
        }
        let mut exchange: Box<dyn SaslExchange> = match &self.members {
            Members::Digest(users) => Box::new(DigestExchange {
                digest: DigestMd5::serving(QUORUM, nonce()),
                users: users.clone(),
            }),
            Members::Kerberos { mech, .. } => mech.start(),
        };
        for _ in 0..MAX_ROUNDS {
            let token = receive(sock, buf).await?.token.unwrap_or_default();
            let step = match exchange.step(&token) {
                Step::Done { user, .. } if !self.may_join(&user) => Step::Failed(format!(
                    "{user} is authenticated but is not a member's principal \
                     (service/host@REALM with the host of a server.N line)"
                )),
                step => step,
            };
            let (reply, outcome) = match step {
                Step::Continue(t) => (QuorumAuthPacket::new(AuthStatus::InProgress, t), None),
                Step::Done { token, user } => (
                    QuorumAuthPacket {
                        status: AuthStatus::Success,
                        token,
                    },
                    Some(Ok(Some(user))),
                ),
                Step::Failed(why) => (
                    QuorumAuthPacket::new(AuthStatus::Error, Vec::new()),
                    Some(Err(why)),
                ),
            };
            send(sock, reply).await.map_err(|e| e.to_string())?;
            if let Some(outcome) = outcome {
                return outcome;
            }
        }
        let _ = send(sock, QuorumAuthPacket::new(AuthStatus::Error, Vec::new())).await;
        Err(format!("no result after {MAX_ROUNDS} tokens"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(learner_require: bool) -> QuorumSaslConfig {
        QuorumSaslConfig {
            learner_require,
            server_require: learner_require,
            learner_context: "QuorumLearner".into(),
            server_context: "QuorumServer".into(),
            service_principal: "zkquorum/localhost".into(),
        }
    }

    fn load_text(text: &str, learner_require: bool) -> Result<QuorumSasl, String> {
        let jaas = jaas::JaasFile {
            path: "jaas.conf".into(),
            sections: jaas::parse(text).map_err(|e| format!("JAAS file jaas.conf: {e}"))?,
        };
        from_jaas(&cfg(learner_require), &jaas, None, |login| {
            Err(format!("Kerberos as {}", login.principal))
        })
    }

    const SERVER: &str = "QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule \
                          required user_m=\"pw\"; };\n";

    // Start-up stops, naming the section, when quorum SASL lacks what it needs: the JAAS
    // file, either section (the learner's only when it must authenticate), the learner's
    // user and password; Kerberos is refused.
    #[test]
    fn start_up_needs_both_sections() {
        let (server, _) = ServerConfig::load(None, &[]).unwrap();
        let e = load(&server, &cfg(true), BTreeSet::new()).unwrap_err();
        assert!(e.contains("needs a JAAS file"), "{e}");
        let s = load_text(SERVER, false).unwrap();
        assert!(
            matches!(&s.members, Members::Digest(u) if u.get("m").map(String::as_str) == Some("pw"))
        );
        assert!(s.learner.is_none());
        let e = load_text(SERVER, true).unwrap_err();
        assert!(e.contains("no QuorumLearner section"), "{e}");
        let e = load_text("QuorumLearner { x.Y required; };", false).unwrap_err();
        assert!(e.contains("no QuorumServer section"), "{e}");
        let learner = "QuorumLearner { org.apache.zookeeper.server.auth.DigestLoginModule \
                       required username=\"m\"; };";
        let e = load_text(&format!("{SERVER}{learner}"), true).unwrap_err();
        assert!(e.contains("username and password are needed"), "{e}");
        let learner = learner.replace("username=\"m\"", "username=\"m\" password=\"pw\"");
        let s = load_text(&format!("{SERVER}{learner}"), true).unwrap();
        assert!(
            matches!(&s.learner, Some(Learner::Digest { user, password }) if user == "m" && password == "pw")
        );
        // A Kerberos QuorumServer section goes to the Kerberos acceptor; one without a keytab
        // is refused.
        let krb = "QuorumServer { com.sun.security.auth.module.Krb5LoginModule required \
                   useKeyTab=true keyTab=\"/k\" principal=\"zkquorum/h@R\"; };";
        let e = load_text(krb, false).unwrap_err();
        assert_eq!(e, "Kerberos as zkquorum/h@R");
        let krb = "QuorumServer { com.sun.security.auth.module.Krb5LoginModule required \
                   useTicketCache=true; };";
        let e = load_text(krb, false).unwrap_err();
        assert!(e.contains("useKeyTab=true"), "{e}");
        let other = "QuorumServer { org.example.Login required; };";
        let e = load_text(other, false).unwrap_err();
        assert!(e.contains("org.example.Login is not supported"), "{e}");
    }
}
