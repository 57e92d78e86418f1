//! SASL DIGEST-MD5 for clients, side by side with the real ZooKeeper 3.8 configured the same
//! way: a JAAS file with the server's `DigestLoginModule` users (`-Djava.security.auth.login.config`),
//! `authProvider.1=…SASLAuthenticationProvider`, and the Java client authenticating from its own
//! JAAS `Client` section: SaslAuthenticated, whoAmI's `sasl` id, sasl and auth ACLs; a wrong
//! password and an unknown user end in AuthFailed on both.
//!
//! Needs the real ZooKeeper and javac: a missing one skips loudly, and fails under CI=true.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use corral_testkit::{
    interop_dir, java_program, java_sasl_client, javac, output_lines, require_real_zookeeper,
    require_tool, start_corral, ServerProcess, SLF4J_SIMPLE, ZOOKEEPER_JAR,
};

const TEST: &str = "sasl";
const SERVER_JAAS: &str = r#"Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"
    user_bob="bob's secret";
};
"#;

fn corral() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_corral"))
}

/// A test program under `interop/security`.
fn security_src(name: &str) -> PathBuf {
    interop_dir().join("security").join(name)
}

fn compile(dir: &Path) -> PathBuf {
    javac(
        &security_src("SaslClient.java"),
        ZOOKEEPER_JAR,
        &dir.join("classes"),
    )
}

/// Runs the Java client as `user` with `password` and returns what it printed.
fn client(
    dir: &Path,
    classes: &Path,
    server: &ServerProcess,
    user: &str,
    password: &str,
) -> String {
    let jaas = dir.join(format!("client-{user}-{}.conf", password.len()));
    let login = format!(
        "org.apache.zookeeper.server.auth.DigestLoginModule required \
         username=\"{user}\" password=\"{password}\""
    );
    java_sasl_client(classes, &jaas, &login, &[], &server.connect_string())
}

// The Java client's DIGEST-MD5 login sees the same on ZooKeeper and on corral.
#[test]
fn java_client_sasl_digest_matches_zookeeper() {
    if !require_real_zookeeper(TEST)
        || !require_tool(TEST, "/usr/bin/javac", "default-jdk-headless")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let classes = compile(dir);
    let jaas = dir.join("server-jaas.conf");
    fs::write(&jaas, SERVER_JAAS).unwrap();
    let jaas = jaas.display().to_string();
    let cfg = ["authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"];
    let props = [("java.security.auth.login.config", jaas.as_str())];
    let cases = [
        ("bob", "bob's secret", "the right password"),
        ("bob", "not it", "a wrong password"),
        ("mallory", "x", "an unknown user"),
    ];
    let mut outs: Vec<Vec<String>> = Vec::new();
    for which in ["zookeeper", "corral"] {
        let server = corral_testkit::start_server(which, corral(), &cfg, &props);
        let mut server = server.unwrap_or_else(|e| panic!("starting {which}: {e:#}"));
        let out = cases
            .iter()
            .map(|(u, p, _)| client(dir, &classes, &server, u, p))
            .collect();
        if which == "corral" {
            let log = server.log();
            assert!(log.contains("SASL authentication failed"), "{log}");
        }
        server.stop();
        outs.push(out);
    }
    assert!(
        outs[0][0].contains("WHOAMI sasl bob"),
        "ZooKeeper: {}",
        outs[0][0]
    );
    assert!(
        outs[0][1].contains("AuthFailed"),
        "ZooKeeper: {}",
        outs[0][1]
    );
    for (i, (_, _, what)) in cases.iter().enumerate() {
        assert_eq!(outs[1][i], outs[0][i], "corral with {what}");
    }
    eprintln!("sasl: ZooKeeper and corral agree: {:#?}", outs[0]);
}

// zookeeper.superUser: that SASL user is super; a Kerberos Server section whose keytab is
// missing stops start-up rather than run without SASL.
#[test]
fn sasl_super_user_and_kerberos_refusal() {
    if !require_real_zookeeper(TEST)
        || !require_tool(TEST, "/usr/bin/javac", "default-jdk-headless")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let classes = compile(dir);
    let jaas = dir.join("server-jaas.conf");
    fs::write(&jaas, SERVER_JAAS).unwrap();
    let jaas = jaas.display().to_string();
    let cfg = [
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
        "superUser=bob",
    ];
    let props = [("java.security.auth.login.config", jaas.as_str())];
    let mut outs = Vec::new();
    for which in ["zookeeper", "corral"] {
        let server = corral_testkit::start_server(which, corral(), &cfg, &props);
        let mut server = server.unwrap_or_else(|e| panic!("starting {which}: {e:#}"));
        outs.push(client(dir, &classes, &server, "bob", "bob's secret"));
        server.stop();
    }
    assert!(outs[0].contains("OTHER readable"), "ZooKeeper: {}", outs[0]);
    assert_eq!(outs[1], outs[0], "corral with superUser");

    let krb = dir.join("krb-jaas.conf");
    fs::write(
        &krb,
        "Server {\n com.sun.security.auth.module.Krb5LoginModule required\n useKeyTab=true\n \
         keyTab=\"/nonexistent.keytab\"\n principal=\"zookeeper/localhost@EXAMPLE.COM\";\n};\n",
    )
    .unwrap();
    let krb = krb.display().to_string();
    let props = [("java.security.auth.login.config", krb.as_str())];
    match start_corral(corral(), &cfg, &props) {
        Ok(mut s) => {
            s.stop();
            panic!("corral started without the Kerberos keytab");
        }
        Err(e) => {
            let msg = format!("{e:#}");
            assert!(
                msg.contains("keytab /nonexistent.keytab does not exist"),
                "{msg}"
            );
        }
    }
}

fn compile_auth(dir: &Path) -> PathBuf {
    javac(
        &security_src("AuthClient.java"),
        ZOOKEEPER_JAR,
        &dir.join("auth-classes"),
    )
}

fn auth_client(classes: &Path, server: &ServerProcess, mode: &str) -> String {
    let cp = format!("{}:{ZOOKEEPER_JAR}:{SLF4J_SIMPLE}", classes.display());
    let mut cmd = java_program(&cp);
    cmd.arg("AuthClient").arg(server.connect_string()).arg(mode);
    output_lines(&mut cmd, Duration::from_secs(60), "AuthClient")
}

// enforce.auth.enabled with enforce.auth.schemes=digest: a request before authenticating ends
// the connection with SessionClosedRequireAuth; after addAuthInfo it is served. With
// DigestAuthenticationProvider.digestAlg=SHA-256 the digest id in an ACL is the SHA-256 one.
// The same on ZooKeeper and on corral.
#[test]
fn enforced_auth_and_digest_algorithm_match_zookeeper() {
    if !require_real_zookeeper(TEST)
        || !require_tool(TEST, "/usr/bin/javac", "default-jdk-headless")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let classes = compile_auth(tmp.path());
    let cfg = [
        "enforce.auth.enabled=true",
        "enforce.auth.schemes=digest",
        "DigestAuthenticationProvider.digestAlg=SHA-256",
    ];
    let mut outs = Vec::new();
    for which in ["zookeeper", "corral"] {
        let server = corral_testkit::start_server(which, corral(), &cfg, &[]);
        let mut server = server.unwrap_or_else(|e| panic!("starting {which}: {e:#}"));
        let plain = auth_client(&classes, &server, "plain");
        let digest = auth_client(&classes, &server, "digest");
        server.stop();
        outs.push(format!("{plain}\n--\n{digest}"));
    }
    assert!(
        outs[0].contains("EXISTS SESSIONCLOSEDREQUIRESASLAUTH"),
        "ZooKeeper: {}",
        outs[0]
    );
    assert!(outs[0].contains("digest,'bob:"), "ZooKeeper: {}", outs[0]);
    assert_eq!(
        outs[1], outs[0],
        "corral with enforced digest auth and SHA-256"
    );
    eprintln!("auth: ZooKeeper and corral agree: {}", outs[0]);
}

const PYTHON: &str = "/usr/bin/python3";
const KAZOO: &str = "/usr/lib/python3/dist-packages/kazoo/client.py";
const PURE_SASL: &str = "/usr/lib/python3/dist-packages/puresasl/client.py";

fn kazoo(server: &ServerProcess, user: &str, password: &str) -> String {
    let script = security_src("kazoo_sasl.py");
    let mut cmd = Command::new(PYTHON);
    cmd.arg(script)
        .arg(server.connect_string())
        .arg(user)
        .arg(password);
    output_lines(&mut cmd, Duration::from_secs(60), "kazoo_sasl.py")
}

// kazoo (Python, pure-sasl) with DIGEST-MD5: the same on ZooKeeper and on corral, for the right
// password and a wrong one.
#[test]
fn kazoo_sasl_digest_matches_zookeeper() {
    if !require_real_zookeeper(TEST)
        || !require_tool(TEST, KAZOO, "python3-kazoo")
        || !require_tool(TEST, PURE_SASL, "python3-pure-sasl")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let jaas = tmp.path().join("server-jaas.conf");
    fs::write(&jaas, SERVER_JAAS).unwrap();
    let jaas = jaas.display().to_string();
    let cfg = ["authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"];
    let props = [("java.security.auth.login.config", jaas.as_str())];
    let mut outs = Vec::new();
    for which in ["zookeeper", "corral"] {
        let server = corral_testkit::start_server(which, corral(), &cfg, &props);
        let mut server = server.unwrap_or_else(|e| panic!("starting {which}: {e:#}"));
        let right = kazoo(&server, "bob", "bob's secret");
        let wrong = kazoo(&server, "bob", "nope");
        server.stop();
        outs.push(format!("{right}\n--\n{wrong}"));
    }
    assert!(outs[0].contains("READ for bob"), "ZooKeeper: {}", outs[0]);
    assert_eq!(outs[1], outs[0], "corral with kazoo's DIGEST-MD5");
    eprintln!("kazoo: ZooKeeper and corral agree: {}", outs[0]);
}

// zookeeper.allowSaslFailedClients=true: a wrong password no longer ends the connection with
// AuthFailed on the server's side; the Java client sees the same on ZooKeeper and on corral.
#[test]
fn allow_sasl_failed_clients_matches_zookeeper() {
    if !require_real_zookeeper(TEST)
        || !require_tool(TEST, "/usr/bin/javac", "default-jdk-headless")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let classes = compile(dir);
    let jaas = dir.join("server-jaas.conf");
    fs::write(&jaas, SERVER_JAAS).unwrap();
    let jaas = jaas.display().to_string();
    let cfg = ["authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"];
    let props = [
        ("java.security.auth.login.config", jaas.as_str()),
        ("zookeeper.allowSaslFailedClients", "true"),
    ];
    let mut outs = Vec::new();
    for which in ["zookeeper", "corral"] {
        let server = corral_testkit::start_server(which, corral(), &cfg, &props);
        let mut server = server.unwrap_or_else(|e| panic!("starting {which}: {e:#}"));
        let out = client(dir, &classes, &server, "bob", "wrong");
        let log = server.log();
        if which == "zookeeper" {
            assert!(
                log.contains("Maintaining client connection despite SASL"),
                "{log}"
            );
        } else {
            assert!(log.contains("allowSaslFailedClients"), "{log}");
        }
        server.stop();
        outs.push(out);
    }
    assert_eq!(outs[1], outs[0], "corral with allowSaslFailedClients");
    eprintln!(
        "allowSaslFailedClients: ZooKeeper and corral agree: {}",
        outs[0]
    );
}

/// A SetSASL request (opcode 102) with `token`, as a frame body.
fn set_sasl(xid: i32, token: &[u8]) -> Vec<u8> {
    let mut req = Vec::new();
    req.extend_from_slice(&xid.to_be_bytes());
    req.extend_from_slice(&102i32.to_be_bytes());
    req.extend_from_slice(&(token.len() as i32).to_be_bytes());
    req.extend_from_slice(token);
    req
}

/// Sends SetSASL and returns the reply's error code and token (`None` when closed instead).
fn sasl_round(c: &mut std::net::TcpStream, xid: i32, token: &[u8]) -> Option<(i32, Vec<u8>)> {
    use corral_testkit::raw;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    raw::send_frame(c, &set_sasl(xid, token), deadline).ok()?;
    let reply = raw::read_frame(c, raw::FRAME_BYTES_MAX, deadline).ok()?;
    let err = i32::from_be_bytes(reply[12..16].try_into().unwrap());
    let len = i32::from_be_bytes(reply[16..20].try_into().unwrap());
    let token = if len > 0 {
        reply[20..20 + len as usize].to_vec()
    } else {
        Vec::new()
    };
    Some((err, token))
}

fn is_closed(c: &mut std::net::TcpStream) -> bool {
    use corral_testkit::raw;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    raw::read_frame(c, raw::FRAME_BYTES_MAX, deadline).is_err()
}

// Attacks on DIGEST-MD5, the same on ZooKeeper and corral: a response made for one
// connection's challenge and replayed on another is refused (AuthFailed, that connection
// closed) while it still works on its own connection; an exchange cut after the challenge and
// a garbage response end only their connections; the server goes on serving.
#[test]
fn replayed_and_cut_sasl_exchanges_match_zookeeper() {
    use corral_testkit::open_session;
    use corral_tree::sasl::{DigestMd5Client, CLIENTS};
    if !require_real_zookeeper(TEST) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let jaas = tmp.path().join("server-jaas.conf");
    fs::write(&jaas, SERVER_JAAS).unwrap();
    let jaas = jaas.display().to_string();
    let cfg = ["authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"];
    let props = [("java.security.auth.login.config", jaas.as_str())];
    let io = Duration::from_secs(10);
    let mut outs = Vec::new();
    for which in ["zookeeper", "corral"] {
        let server = corral_testkit::start_server(which, corral(), &cfg, &props);
        let mut server = server.unwrap_or_else(|e| panic!("starting {which}: {e:#}"));
        let mut out = Vec::new();
        let mut a = open_session(server.addr(), io).unwrap();
        let mut b = open_session(server.addr(), io).unwrap();
        let (_, challenge_a) = sasl_round(&mut a, 1, b"").expect("challenge on a");
        let (_, _challenge_b) = sasl_round(&mut b, 1, b"").expect("challenge on b");
        let mut client = DigestMd5Client::new(CLIENTS, "bob", "bob's secret", "c0ffee".into());
        let response_a = client.respond(&challenge_a).unwrap();
        // Replayed on b: refused there.
        let replay = sasl_round(&mut b, 2, &response_a).map(|(e, _)| e);
        out.push(format!("replay {replay:?} closed {}", is_closed(&mut b)));
        // On its own connection it authenticates, and the server proves it knows the password.
        let (err, rspauth) = sasl_round(&mut a, 2, &response_a).expect("response on a");
        out.push(format!("own {err} rspauth {:?}", client.verify(&rspauth)));
        // Cut after the challenge.
        let mut c = open_session(server.addr(), io).unwrap();
        sasl_round(&mut c, 1, b"").expect("challenge on c");
        drop(c);
        // Garbage in place of a response.
        let mut d = open_session(server.addr(), io).unwrap();
        sasl_round(&mut d, 1, b"").expect("challenge on d");
        let garbage = sasl_round(&mut d, 2, b"\x00\xffnot=\"a response").map(|(e, _)| e);
        out.push(format!("garbage {garbage:?} closed {}", is_closed(&mut d)));
        let serving = corral_testkit::probe_handshake(server.addr(), io).is_ok();
        out.push(format!("still serving {serving}"));
        server.stop();
        outs.push(out);
    }
    assert_eq!(
        outs[0],
        vec![
            "replay Some(-115) closed true".to_string(),
            "own 0 rspauth Ok(())".to_string(),
            "garbage Some(-115) closed true".to_string(),
            "still serving true".to_string(),
        ],
        "ZooKeeper"
    );
    assert_eq!(outs[1], outs[0], "corral");
}
