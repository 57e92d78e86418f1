//! SASL DIGEST-MD5 (RFC 2831) as ZooKeeper runs it, both halves. The server side checks
//! clients whose credentials are in the JAAS `Server` section's `DigestLoginModule`
//! (`user_bob="secret"`): realm `zk-sasl-md5`, quality of protection `auth` only, the client's
//! digest-uri `zookeeper/zk-sasl-md5`. Between members (`quorum.auth.enableSasl`) the realm is
//! `zk-quorum-sasl-md5` and the service `zookeeper-quorum`; there corral is also the client
//! ([`DigestMd5Client`], credentials from the `QuorumLearner` section). Pure: nonces are handed
//! in.
//!
//! The exchange: the client's first token is empty and is answered with the challenge; its
//! second carries the digest response, answered with `rspauth` when the password matches.

use std::collections::BTreeMap;

use md5::{Digest, Md5};

/// Who a DIGEST-MD5 exchange is for: the realm the server announces (ZooKeeper's "server
/// name") and the service the digest-uri names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub realm: &'static str,
    pub name: &'static str,
}

/// Clients of the client port.
pub const CLIENTS: Service = Service {
    realm: "zk-sasl-md5",
    name: "zookeeper",
};
/// Members authenticating to each other (`quorum.auth.enableSasl`).
pub const QUORUM: Service = Service {
    realm: "zk-quorum-sasl-md5",
    name: "zookeeper-quorum",
};
/// The realm ZooKeeper's DIGEST-MD5 server announces to clients.
pub const REALM: &str = CLIENTS.realm;

/// Where a connection's DIGEST-MD5 exchange stands (the server side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestMd5 {
    service: Service,
    state: State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Nothing sent yet: the next token (empty) gets the challenge.
    Start { nonce: String },
    /// The challenge was sent.
    Challenged { nonce: String },
    /// Authenticated, or failed: no more tokens are taken.
    Finished,
}

/// What one client token leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this token back and wait for the next.
    Continue(Vec<u8>),
    /// Authenticated as `user`: send this last token (DIGEST-MD5's `rspauth`; none for
    /// GSSAPI, whose clients take the missing token as the end of the exchange).
    Done {
        token: Option<Vec<u8>>,
        user: String,
    },
    /// Refused, with the reason for the log.
    Failed(String),
}

/// A SASL mechanism the server offers in place of DIGEST-MD5 (GSSAPI: Kerberos), supplied by
/// the server, which holds its credentials; the core only passes tokens through it.
pub trait SaslMechanism: Send + Sync + std::fmt::Debug {
    /// The server half for a new exchange on one connection.
    fn start(&self) -> Box<dyn SaslExchange>;
}

/// One connection's exchange with a [`SaslMechanism`].
pub trait SaslExchange: Send + std::fmt::Debug {
    /// Takes the client's next token.
    fn step(&mut self, token: &[u8]) -> Step;
}

impl DigestMd5 {
    /// The server side for a client of the client port.
    pub fn new(nonce: String) -> DigestMd5 {
        DigestMd5::serving(CLIENTS, nonce)
    }

    /// The server side for `service`.
    pub fn serving(service: Service, nonce: String) -> DigestMd5 {
        DigestMd5 {
            service,
            state: State::Start { nonce },
        }
    }

    /// Takes the client's next token; `password_of` looks a user up.
    pub fn step(&mut self, token: &[u8], password_of: impl Fn(&str) -> Option<String>) -> Step {
        let realm = self.service.realm;
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Start { nonce } => {
                let challenge = format!(
                    "realm=\"{realm}\",nonce=\"{nonce}\",qop=\"auth\",charset=utf-8,\
                     algorithm=md5-sess"
                );
                self.state = State::Challenged { nonce };
                Step::Continue(challenge.into_bytes())
            }
            State::Challenged { nonce } => respond(self.service, &nonce, token, password_of),
            State::Finished => Step::Failed("the SASL exchange is already over".into()),
        }
    }
}

fn respond(
    service: Service,
    nonce: &str,
    token: &[u8],
    password_of: impl Fn(&str) -> Option<String>,
) -> Step {
    let text = match std::str::from_utf8(token) {
        Ok(t) => t,
        Err(_) => return Step::Failed("the digest response is not UTF-8".into()),
    };
    let fields = match parse_directives(text) {
        Some(f) => f,
        None => return Step::Failed("malformed digest response".into()),
    };
    let get = |k: &str| fields.get(k).map(String::as_str);
    let (Some(user), Some(cnonce), Some(uri), Some(response)) = (
        get("username"),
        get("cnonce"),
        get("digest-uri"),
        get("response"),
    ) else {
        return Step::Failed("the digest response lacks a field".into());
    };
    if get("nonce") != Some(nonce) {
        return Step::Failed("the digest response has another nonce".into());
    }
    let realm = get("realm").unwrap_or("");
    if !realm.is_empty() && realm != service.realm {
        return Step::Failed(format!("unknown realm {realm:?}"));
    }
    let qop = get("qop").unwrap_or("auth");
    if qop != "auth" {
        return Step::Failed(format!("quality of protection {qop:?} is not offered"));
    }
    let nc = get("nc").unwrap_or("");
    if nc != "00000001" {
        return Step::Failed(format!("nonce count {nc:?}, expected 00000001"));
    }
    if !uri.starts_with(&format!("{}/", service.name)) {
        return Step::Failed(format!("digest-uri {uri:?} is not for {}", service.name));
    }
    let authzid = get("authzid");
    if authzid.is_some_and(|a| a != user) {
        return Step::Failed("a user may act only as itself".into());
    }
    let Some(password) = password_of(user) else {
        return Step::Failed(format!("unknown user {user:?}"));
    };
    let utf8 = get("charset") == Some("utf-8");
    let ha1 = ha1(user, realm, &password, nonce, cnonce, authzid, utf8);
    let expected = kd(&ha1, nonce, nc, cnonce, qop, &format!("AUTHENTICATE:{uri}"));
    if !expected.eq_ignore_ascii_case(response) {
        return Step::Failed(format!("wrong password for user {user:?}"));
    }
    let rspauth = kd(&ha1, nonce, nc, cnonce, qop, &format!(":{uri}"));
    Step::Done {
        token: Some(format!("rspauth={rspauth}").into_bytes()),
        user: user.to_string(),
    }
}

/// The client side, as a member authenticating to another (ZooKeeper's quorum learner half):
/// answers the server's challenge with the digest response, then checks the server's
/// `rspauth`, which proves the server knows the password too.
#[derive(Debug, Clone)]
pub struct DigestMd5Client {
    service: Service,
    user: String,
    password: String,
    cnonce: String,
    /// The `rspauth` the server must send, once the response is out.
    expect: Option<String>,
}

impl DigestMd5Client {
    /// `cnonce` must be fresh for every exchange.
    pub fn new(service: Service, user: &str, password: &str, cnonce: String) -> DigestMd5Client {
        DigestMd5Client {
            service,
            user: user.to_string(),
            password: password.to_string(),
            cnonce,
            expect: None,
        }
    }

    /// The digest response to the server's challenge.
    pub fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, String> {
        if self.expect.is_some() {
            return Err("a second challenge".into());
        }
        let text = std::str::from_utf8(challenge).map_err(|_| "the challenge is not UTF-8")?;
        let fields = parse_directives(text).ok_or("malformed challenge")?;
        let get = |k: &str| fields.get(k).map(String::as_str);
        let nonce = get("nonce").ok_or("the challenge has no nonce")?;
        if get("algorithm") != Some("md5-sess") {
            return Err("the challenge does not offer algorithm md5-sess".into());
        }
        let qops = get("qop").unwrap_or("auth");
        if !qops.split(',').any(|q| q.trim() == "auth") {
            return Err(format!("the challenge offers qop {qops:?}, not auth"));
        }
        let realm = get("realm").unwrap_or(self.service.realm);
        let utf8 = get("charset") == Some("utf-8");
        let uri = format!("{}/{}", self.service.name, self.service.realm);
        let (nc, qop) = ("00000001", "auth");
        let ha1 = ha1(
            &self.user,
            realm,
            &self.password,
            nonce,
            &self.cnonce,
            None,
            utf8,
        );
        let response = kd(
            &ha1,
            nonce,
            nc,
            &self.cnonce,
            qop,
            &format!("AUTHENTICATE:{uri}"),
        );
        self.expect = Some(kd(&ha1, nonce, nc, &self.cnonce, qop, &format!(":{uri}")));
        let charset = if utf8 { "charset=utf-8," } else { "" };
        Ok(format!(
            "{charset}username=\"{}\",realm=\"{}\",nonce=\"{}\",nc={nc},cnonce=\"{}\",\
             digest-uri=\"{uri}\",maxbuf=65536,response={response},qop={qop}",
            quote(&self.user),
            quote(realm),
            quote(nonce),
            quote(&self.cnonce)
        )
        .into_bytes())
    }

    /// Checks the server's last token.
    pub fn verify(&self, token: &[u8]) -> Result<(), String> {
        let Some(expect) = &self.expect else {
            return Err("the server finished before it challenged".into());
        };
        let text = std::str::from_utf8(token).map_err(|_| "rspauth is not UTF-8")?;
        let fields = parse_directives(text).ok_or("malformed rspauth")?;
        match fields.get("rspauth") {
            Some(r) if r.eq_ignore_ascii_case(expect) => Ok(()),
            Some(_) => Err("the server's rspauth is wrong: it does not know our password".into()),
            None => Err("the server's last token has no rspauth".into()),
        }
    }
}

/// The client half of an exchange, as a member authenticating to another runs it.
pub trait SaslClientExchange: Send {
    /// The first token (empty for DIGEST-MD5, which has no initial response).
    fn initial(&mut self) -> Result<Vec<u8>, String>;
    /// The answer to the server's next token.
    fn challenge(&mut self, token: &[u8]) -> Result<Vec<u8>, String>;
    /// The server says it is satisfied, with its last token if it has one: is it right?
    fn success(&mut self, token: Option<&[u8]>) -> Result<(), String>;
}

impl SaslClientExchange for DigestMd5Client {
    fn initial(&mut self) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }

    fn challenge(&mut self, token: &[u8]) -> Result<Vec<u8>, String> {
        self.respond(token)
    }

    fn success(&mut self, token: Option<&[u8]>) -> Result<(), String> {
        self.verify(token.unwrap_or_default())
    }
}

/// DIGEST-MD5's server half with its user table, as a [`SaslExchange`].
#[derive(Debug)]
pub struct DigestExchange {
    pub digest: DigestMd5,
    pub users: BTreeMap<String, String>,
}

impl SaslExchange for DigestExchange {
    fn step(&mut self, token: &[u8]) -> Step {
        let users = &self.users;
        self.digest.step(token, |u| users.get(u).cloned())
    }
}

/// A directive value between quotes: backslash before `"` and `\\`.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// With `charset=utf-8`, names and passwords that fit ISO 8859-1 are hashed in it (RFC 2831
/// 2.1.2.1); others as UTF-8.
fn text_bytes(s: &str, utf8: bool) -> Vec<u8> {
    if utf8 && s.chars().all(|c| (c as u32) < 0x100) {
        s.chars().map(|c| c as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

fn ha1(
    user: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    cnonce: &str,
    authzid: Option<&str>,
    utf8: bool,
) -> String {
    let mut inner = Md5::new();
    inner.update(text_bytes(user, utf8));
    inner.update(b":");
    inner.update(text_bytes(realm, utf8));
    inner.update(b":");
    inner.update(text_bytes(password, utf8));
    let mut a1 = inner.finalize().to_vec();
    a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
    if let Some(a) = authzid {
        a1.extend_from_slice(format!(":{a}").as_bytes());
    }
    hex(&Md5::digest(&a1))
}

fn kd(ha1: &str, nonce: &str, nc: &str, cnonce: &str, qop: &str, a2: &str) -> String {
    let ha2 = hex(&Md5::digest(a2.as_bytes()));
    hex(&Md5::digest(
        format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes(),
    ))
}

/// `name=value` or `name="quoted \" value"` pairs, comma-separated.
fn parse_directives(s: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        chars.next()?; // '='
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 2831's own example (section 4): chris / secret, realm elwood.innosoft.com, the
    // response and rspauth it gives.
    #[test]
    fn rfc_2831_example() {
        let ha1 = ha1(
            "chris",
            "elwood.innosoft.com",
            "secret",
            "OA6MG9tEQGm2hh",
            "OA6MHXh6VqTrRk",
            None,
            false,
        );
        let uri = "imap/elwood.innosoft.com";
        let nc = "00000001";
        let response = kd(
            &ha1,
            "OA6MG9tEQGm2hh",
            nc,
            "OA6MHXh6VqTrRk",
            "auth",
            &format!("AUTHENTICATE:{uri}"),
        );
        assert_eq!(response, "d388dad90d4bbd760a152321f2143af7");
        let rspauth = kd(
            &ha1,
            "OA6MG9tEQGm2hh",
            nc,
            "OA6MHXh6VqTrRk",
            "auth",
            &format!(":{uri}"),
        );
        assert_eq!(rspauth, "ea40f60335c427b5527b84dbabcdfffd");
    }

    fn client_response(user: &str, pw: &str, nonce: &str) -> String {
        let cnonce = "c1n2o3n4c5e";
        let uri = "zookeeper/zk-sasl-md5";
        let ha1 = ha1(user, REALM, pw, nonce, cnonce, None, true);
        let r = kd(
            &ha1,
            nonce,
            "00000001",
            cnonce,
            "auth",
            &format!("AUTHENTICATE:{uri}"),
        );
        format!(
            "charset=utf-8,username=\"{user}\",realm=\"{REALM}\",nonce=\"{nonce}\",nc=00000001,\
             cnonce=\"{cnonce}\",digest-uri=\"{uri}\",maxbuf=65536,response={r},qop=auth"
        )
    }

    // The exchange: challenge, then success for the right password, failure for a wrong one,
    // an unknown user or a replayed response to another nonce.
    #[test]
    fn exchange() {
        let users = |u: &str| (u == "bob").then(|| "s3cret".to_string());
        let mut m = DigestMd5::new("n0nce".into());
        let Step::Continue(ch) = m.step(b"", users) else {
            panic!("no challenge")
        };
        let ch = String::from_utf8(ch).unwrap();
        assert!(
            ch.contains("nonce=\"n0nce\"") && ch.contains("realm=\"zk-sasl-md5\""),
            "{ch}"
        );
        match m.step(client_response("bob", "s3cret", "n0nce").as_bytes(), users) {
            Step::Done { token, user } => {
                assert_eq!(user, "bob");
                assert!(token.unwrap().starts_with(b"rspauth="));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(m.step(b"", users), Step::Failed(_)));
        for (user, pw, nonce) in [
            ("bob", "wrong", "n0nce"),
            ("eve", "x", "n0nce"),
            ("bob", "s3cret", "other"),
        ] {
            let mut m = DigestMd5::new("n0nce".into());
            m.step(b"", users);
            let r = m.step(client_response(user, pw, nonce).as_bytes(), users);
            assert!(matches!(r, Step::Failed(_)), "{user} {pw} {nonce}: {r:?}");
        }
        let mut m = DigestMd5::new("n0nce".into());
        m.step(b"", users);
        assert!(matches!(m.step(b"garbage", users), Step::Failed(_)));
    }

    // corral's client half against its server half, for members: the right password passes
    // both ways (the server's rspauth checks out), a wrong one is refused, and a server that
    // does not know the password cannot fake rspauth.
    #[test]
    fn quorum_client_and_server() {
        let users = |u: &str| (u == "test").then(|| "pw".to_string());
        let run = |user: &str, pw: &str| {
            let mut server = DigestMd5::serving(QUORUM, "srvnonce".into());
            let mut client = DigestMd5Client::new(QUORUM, user, pw, "clinonce".into());
            let Step::Continue(ch) = server.step(b"", users) else {
                panic!("no challenge")
            };
            assert!(String::from_utf8_lossy(&ch).contains("realm=\"zk-quorum-sasl-md5\""));
            let resp = client.respond(&ch).unwrap();
            let text = String::from_utf8(resp.clone()).unwrap();
            assert!(text.contains("digest-uri=\"zookeeper-quorum/zk-quorum-sasl-md5\""));
            (server.step(&resp, users), client)
        };
        match run("test", "pw") {
            (Step::Done { token, user }, client) => {
                assert_eq!(user, "test");
                client.verify(&token.unwrap()).unwrap();
                assert!(client
                    .verify(b"rspauth=00000000000000000000000000000000")
                    .is_err());
            }
            other => panic!("{:?}", other.0),
        }
        assert!(matches!(run("test", "nope").0, Step::Failed(_)));
        assert!(matches!(run("eve", "pw").0, Step::Failed(_)));
        // The client's own response is what the RFC's formula gives (checked above against
        // the RFC's example): its server half accepts it only for the quorum service.
        let mut client = DigestMd5Client::new(QUORUM, "test", "pw", "c".into());
        let mut clients_server = DigestMd5::new("n".into());
        let Step::Continue(ch) = clients_server.step(b"", users) else {
            panic!()
        };
        let resp = client.respond(&ch).unwrap();
        assert!(matches!(clients_server.step(&resp, users), Step::Failed(_)));
        assert!(
            client.respond(b"nonce=\"x\",algorithm=md5-sess").is_err(),
            "twice"
        );
    }
}
