//! JAAS login configuration files (`-Djava.security.auth.login.config=…`) as Java's
//! `ConfigFile` reads them, for the parts ZooKeeper's server uses: the `Server` section (or the
//! one `zookeeper.sasl.serverconfig` names) and its `DigestLoginModule` users. Pure: the caller
//! reads the file.
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="adminsecret"
//!     user_bob="bobsecret";
//! };
//! ```

use std::collections::BTreeMap;

/// One login module line of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    pub class: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

/// ZooKeeper's DIGEST-MD5 user store.
pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn tokens(text: &str) -> Result<Vec<(Tok, usize)>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 2;
            }
            '{' | '}' | ';' | '=' => {
                out.push((Tok::Punct(c), line));
                i += 1;
            }
            '"' => {
                let start = line;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("line {start}: unterminated quoted string")),
                        Some('"') => break,
                        Some('\\') if i + 1 < chars.len() => {
                            s.push(chars[i + 1]);
                            i += 2;
                            continue;
                        }
                        Some(&ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            s.push(ch);
                        }
                    }
                    i += 1;
                }
                i += 1;
                out.push((Tok::Quoted(s), start));
            }
            _ => {
                let mut s = String::new();
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '{' | '}' | ';' | '=' | '"')
                {
                    s.push(chars[i]);
                    i += 1;
                }
                out.push((Tok::Word(s), line));
            }
        }
    }
    Ok(out)
}

/// The JAAS file `-Djava.security.auth.login.config` names, read and parsed once at start-up
/// for every part that logs in with it (client SASL, quorum SASL, Kerberos).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasFile {
    pub path: String,
    pub sections: BTreeMap<String, Vec<LoginModule>>,
}

impl JaasFile {
    /// Reads and parses the file at `path`; the error names the file.
    pub fn load(path: &str) -> Result<JaasFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("JAAS file {path}: {e}"))?;
        let sections = parse(&text).map_err(|e| format!("JAAS file {path}: {e}"))?;
        Ok(JaasFile {
            path: path.to_string(),
            sections,
        })
    }
}

/// Every section of a JAAS file, by name.
pub fn parse(text: &str) -> Result<BTreeMap<String, Vec<LoginModule>>, String> {
    let toks = tokens(text)?;
    let mut it = toks.into_iter().peekable();
    let mut sections = BTreeMap::new();
    let word = |t: Option<(Tok, usize)>, what: &str| -> Result<(String, usize), String> {
        match t {
            Some((Tok::Word(w), l)) | Some((Tok::Quoted(w), l)) => Ok((w, l)),
            Some((Tok::Punct(p), l)) => Err(format!("line {l}: expected {what}, found '{p}'")),
            None => Err(format!("expected {what}, found the end of the file")),
        }
    };
    let punct = |t: Option<(Tok, usize)>, want: char| -> Result<(), String> {
        match t {
            Some((Tok::Punct(p), _)) if p == want => Ok(()),
            Some((_, l)) => Err(format!("line {l}: expected '{want}'")),
            None => Err(format!("expected '{want}', found the end of the file")),
        }
    };
    while it.peek().is_some() {
        let (name, _) = word(it.next(), "a section name")?;
        punct(it.next(), '{')?;
        let mut modules = Vec::new();
        loop {
            if matches!(it.peek(), Some((Tok::Punct('}'), _))) {
                it.next();
                break;
            }
            let (class, _) = word(it.next(), "a login module class")?;
            let (flag, l) = word(it.next(), "a control flag")?;
            if !matches!(
                flag.to_ascii_lowercase().as_str(),
                "required" | "requisite" | "sufficient" | "optional"
            ) {
                return Err(format!("line {l}: unknown control flag {flag:?}"));
            }
            let mut options = BTreeMap::new();
            loop {
                if matches!(it.peek(), Some((Tok::Punct(';'), _))) {
                    it.next();
                    break;
                }
                let (k, _) = word(it.next(), "an option name")?;
                punct(it.next(), '=')?;
                let (v, _) = word(it.next(), "an option value")?;
                options.insert(k, v);
            }
            modules.push(LoginModule {
                class,
                flag,
                options,
            });
        }
        punct(it.next(), ';')?;
        sections.insert(name, modules);
    }
    Ok(sections)
}

/// The DigestLoginModule users of a section (`user_NAME="password"`).
pub fn digest_users(modules: &[LoginModule]) -> BTreeMap<String, String> {
    modules
        .iter()
        .filter(|m| m.class == DIGEST_LOGIN_MODULE)
        .flat_map(|m| m.options.iter())
        .filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The file ZooKeeper's documentation shows, with comments and a Kerberos section beside it.
    #[test]
    fn reads_zookeeper_jaas_files() {
        let text = r#"
            /* the server's users */
            Server {
                org.apache.zookeeper.server.auth.DigestLoginModule required
                user_super="adminsecret"
                user_bob="bob \"the\" secret";   // quoted quote
            };
            Client {
                com.sun.security.auth.module.Krb5LoginModule required
                useKeyTab=true keyTab="/etc/zk.keytab" principal="zk/host@EXAMPLE.COM";
            };
        "#;
        let s = parse(text).unwrap();
        let users = digest_users(&s["Server"]);
        assert_eq!(users["super"], "adminsecret");
        assert_eq!(users["bob"], "bob \"the\" secret");
        assert_eq!(s["Client"][0].options["useKeyTab"], "true");
        assert!(parse("Server { x required a=b }").is_err());
        assert!(parse("Server { x maybe; };")
            .unwrap_err()
            .contains("control flag"));
    }
}
