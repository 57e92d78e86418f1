//! SASL DIGEST-MD5 (RFC 2831), the server side, as ZooKeeper runs it for clients whose
//! credentials are in the JAAS `Server` section's `DigestLoginModule` (`user_bob="secret"`):
//! realm `zk-sasl-md5`, quality of protection `auth` only, the client's digest-uri
//! `zookeeper/zk-sasl-md5`. Pure: the nonce is handed in.
//!
//! The exchange: the client's first token is empty and is answered with the challenge; its
//! second carries the digest response, answered with `rspauth` when the password matches.

use std::collections::BTreeMap;

use md5::{Digest, Md5};

/// The realm ZooKeeper's DIGEST-MD5 server announces.
pub const REALM: &str = "zk-sasl-md5";
/// The service name in the digest-uri (`zookeeper/<host>`).
const SERVICE: &str = "zookeeper";

/// Where a connection's DIGEST-MD5 exchange stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestMd5 {
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
    /// Authenticated as `user`: send this last token (`rspauth`).
    Done { token: Vec<u8>, user: String },
    /// Refused, with the reason for the log.
    Failed(String),
}

impl DigestMd5 {
    pub fn new(nonce: String) -> DigestMd5 {
        DigestMd5::Start { nonce }
    }

    /// Takes the client's next token; `password_of` looks a user up.
    pub fn step(&mut self, token: &[u8], password_of: impl Fn(&str) -> Option<String>) -> Step {
        match std::mem::replace(self, DigestMd5::Finished) {
            DigestMd5::Start { nonce } => {
                let challenge = format!(
                    "realm=\"{REALM}\",nonce=\"{nonce}\",qop=\"auth\",charset=utf-8,\
                     algorithm=md5-sess"
                );
                *self = DigestMd5::Challenged { nonce };
                Step::Continue(challenge.into_bytes())
            }
            DigestMd5::Challenged { nonce } => respond(&nonce, token, password_of),
            DigestMd5::Finished => Step::Failed("the SASL exchange is already over".into()),
        }
    }
}

fn respond(nonce: &str, token: &[u8], password_of: impl Fn(&str) -> Option<String>) -> Step {
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
    if !realm.is_empty() && realm != REALM {
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
    if !uri.starts_with(&format!("{SERVICE}/")) {
        return Step::Failed(format!("digest-uri {uri:?} is not for {SERVICE}"));
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
        token: format!("rspauth={rspauth}").into_bytes(),
        user: user.to_string(),
    }
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
                assert!(token.starts_with(b"rspauth="));
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
}
