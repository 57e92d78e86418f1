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
//! The protocol is `corral_proto::quorum::QuorumAuthPacket` and `corral_tree::sasl`; this is
//! the socket glue. Credentials come from the JAAS file's `QuorumLearner` section (ours) and
//! `QuorumServer` section (everyone's), read at start-up.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use corral_proto::quorum::{AuthStatus, QuorumAuthPacket};
use corral_tree::sasl::{DigestMd5, DigestMd5Client, Step, QUORUM};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{info, warn};

use crate::config::jaas::{self, LoginModule, DIGEST_LOGIN_MODULE};
use crate::config::QuorumSaslConfig;
use crate::limits::CONNECT_TIMEOUT;

/// How many tokens a connecting member may send before it is refused (ZooKeeper: 5).
const MAX_ROUNDS: usize = 5;

/// A member's quorum SASL settings and credentials.
#[derive(Debug, Clone)]
pub(crate) struct QuorumSasl {
    /// Our user and password (`QuorumLearner`), when we authenticate to others.
    learner: Option<(String, String)>,
    /// The members' users and passwords (`QuorumServer`).
    users: BTreeMap<String, String>,
    server_require: bool,
}

/// The sections as ZooKeeper's SASL halves read them: both must exist once `enableSasl` is on
/// (ZooKeeper's server does not start without them either).
pub(crate) fn load(cfg: &QuorumSaslConfig, jaas_path: Option<&str>) -> Result<QuorumSasl, String> {
    let Some(path) = jaas_path else {
        return Err("quorum.auth.enableSasl=true needs a JAAS file \
                    (-Djava.security.auth.login.config=…) with the QuorumServer and \
                    QuorumLearner sections"
            .into());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("JAAS file {path}: {e}"))?;
    from_jaas(cfg, path, &text)
}

/// [`load`] once the JAAS file at `path` is read.
fn from_jaas(cfg: &QuorumSaslConfig, path: &str, text: &str) -> Result<QuorumSasl, String> {
    let sections = jaas::parse(text).map_err(|e| format!("JAAS file {path}: {e}"))?;
    let section = |name: &str| -> Result<&[LoginModule], String> {
        let modules = sections.get(name).map(Vec::as_slice).unwrap_or_default();
        if modules.is_empty() {
            return Err(format!(
                "JAAS file {path} has no {name} section, which quorum SASL needs"
            ));
        }
        if let Some(m) = modules.iter().find(|m| m.class != DIGEST_LOGIN_MODULE) {
            return Err(format!(
                "JAAS file {path}, section {name}: {} is not supported yet between members \
                 (corral offers DIGEST-MD5 with {DIGEST_LOGIN_MODULE}; Kerberos is not \
                 supported yet)",
                m.class
            ));
        }
        Ok(modules)
    };
    let users = jaas::digest_users(section(&cfg.server_context)?);
    let learner = if cfg.learner_require {
        let modules = section(&cfg.learner_context)?;
        let opt = |k: &str| modules.iter().find_map(|m| m.options.get(k).cloned());
        match (opt("username"), opt("password")) {
            (Some(u), Some(p)) => Some((u, p)),
            _ => {
                return Err(format!(
                    "JAAS file {path}, section {}: username and password are needed",
                    cfg.learner_context
                ))
            }
        }
    } else {
        None
    };
    info!(
        "members authenticate with SASL DIGEST-MD5: {} member user(s) from {}{}{}",
        users.len(),
        cfg.server_context,
        match &learner {
            Some((u, _)) => format!(", we connect as {u} ({})", cfg.learner_context),
            None => ", we connect without (learnerRequireSasl=false)".to_string(),
        },
        if cfg.server_require {
            ", members without are refused"
        } else {
            ", members without are let in (serverRequireSasl=false)"
        }
    );
    Ok(QuorumSasl {
        learner,
        users,
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
    /// The connecting side, on a connection to the member at `peer`: authenticates when
    /// `learnerRequireSasl` says so. Returns the bytes read beyond the exchange, or why the
    /// connection must be given up (already logged).
    pub(crate) async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        sock: &mut S,
        peer: SocketAddr,
    ) -> Result<Vec<u8>, ()> {
        let Some((user, password)) = &self.learner else {
            return Ok(Vec::new());
        };
        let mut buf = Vec::new();
        let mut client = DigestMd5Client::new(QUORUM, user, password, nonce());
        let exchange = async {
            // DIGEST-MD5 has no initial response: the first token is empty.
            let mut token = Vec::new();
            for _ in 0..=MAX_ROUNDS {
                send(sock, QuorumAuthPacket::new(AuthStatus::InProgress, token))
                    .await
                    .map_err(|e| e.to_string())?;
                let p = receive(sock, &mut buf).await?;
                let got = p.token.unwrap_or_default();
                match p.status {
                    AuthStatus::Success => return client.verify(&got),
                    AuthStatus::InProgress => token = client.respond(&got)?,
                    AuthStatus::Error => return Err("it refused our credentials".to_string()),
                }
            }
            Err("the exchange does not end".to_string())
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, exchange).await {
            Ok(Ok(())) => {
                info!("authenticated as {user} to the member at {peer} (quorum SASL)");
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
        let mut server = DigestMd5::serving(QUORUM, nonce());
        let password_of = |u: &str| self.users.get(u).cloned();
        for _ in 0..MAX_ROUNDS {
            let token = receive(sock, buf).await?.token.unwrap_or_default();
            let (reply, outcome) = match server.step(&token, password_of) {
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
        from_jaas(&cfg(learner_require), "jaas.conf", text)
    }

    const SERVER: &str = "QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule \
                          required user_m=\"pw\"; };\n";

    // Start-up stops, naming the section, when quorum SASL lacks what it needs: the JAAS
    // file, either section (the learner's only when it must authenticate), the learner's
    // user and password; Kerberos is refused.
    #[test]
    fn start_up_needs_both_sections() {
        let e = load(&cfg(true), None).unwrap_err();
        assert!(e.contains("needs a JAAS file"), "{e}");
        let s = load_text(SERVER, false).unwrap();
        assert_eq!(s.users.get("m").map(String::as_str), Some("pw"));
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
        assert_eq!(s.learner, Some(("m".to_string(), "pw".to_string())));
        let krb = "QuorumServer { com.sun.security.auth.module.Krb5LoginModule required \
                   useKeyTab=true; };";
        let e = load_text(krb, false).unwrap_err();
        assert!(e.contains("Krb5LoginModule is not supported yet"), "{e}");
    }
}
