//! TLS on the secure client port, side by side with the real ZooKeeper 3.8 configured the same
//! way: key and trust stores made by openssl and keytool (PKCS12, JKS, PEM), the Java client
//! over TLS (`zookeeper.client.secure`, `ClientCnxnSocketNetty`) with a client certificate, its
//! x509 id in whoAmI and the x509 ACL scheme, and the connections that must fail: no client
//! certificate, an untrusted one, plaintext on the TLS port.
//!
//! Needs the real ZooKeeper, javac, keytool and openssl: a missing one skips loudly, and fails
//! under CI=true.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use corral_testkit::pki::{make_pki, openssl, PW};
use corral_testkit::{
    four_letter, free_port, interop_dir, java_program, javac, output_lines, require_real_zookeeper,
    require_tool, run_bounded, start_corral, ServerProcess, NETTY_TLS_JARS, SLF4J_SIMPLE,
    ZOOKEEPER_JAR,
};

const TEST: &str = "tls";
/// The same subject as Java's `X500Principal.getName()` writes it (RFC 2253).
const CLIENT_ID: &str = "CN=client one,OU=Ops\\, Team,O=Corral Test,L=Berlin,ST=Berlin,C=DE";

fn corral() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_corral"))
}

fn peers_present() -> bool {
    require_real_zookeeper(TEST)
        && require_tool(TEST, "/usr/bin/javac", "default-jdk-headless")
        && require_tool(TEST, "/usr/bin/keytool", "default-jdk-headless")
        && require_tool(TEST, "/usr/bin/openssl", "openssl")
        && NETTY_TLS_JARS
            .iter()
            .all(|j| require_tool(TEST, j, "libnetty-java"))
}

fn compile(dir: &Path) -> PathBuf {
    let src = interop_dir().join("security/TlsClient.java");
    javac(&src, ZOOKEEPER_JAR, &dir.join("classes"))
}

/// Runs the Java client against `port` with the given TLS system properties (`None`: a
/// plaintext client) and returns what it printed.
fn java_client(classes: &Path, port: u16, tls: Option<&[(&str, String)]>, mode: &str) -> String {
    let cp = [
        classes.display().to_string(),
        ZOOKEEPER_JAR.to_string(),
        SLF4J_SIMPLE.to_string(),
        NETTY_TLS_JARS.join(":"),
    ]
    .join(":");
    let mut cmd = java_program(&cp);
    if let Some(props) = tls {
        cmd.arg("-Dzookeeper.client.secure=true")
            .arg("-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty");
        for (k, v) in props {
            cmd.arg(format!("-Dzookeeper.ssl.{k}={v}"));
        }
    }
    cmd.arg("TlsClient")
        .arg(format!("127.0.0.1:{port}"))
        .arg(mode);
    output_lines(&mut cmd, Duration::from_secs(60), "TlsClient")
}

fn path(dir: &Path, f: &str) -> String {
    dir.join(f).display().to_string()
}

/// zoo.cfg lines for a secure port with this key store and trust store.
fn tls_cfg(dir: &Path, port: u16, key_store: &str, trust_store: &str) -> Vec<String> {
    vec![
        format!("secureClientPort={port}"),
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory".to_string(),
        format!("ssl.keyStore.location={}", path(dir, key_store)),
        format!("ssl.keyStore.password={PW}"),
        format!("ssl.trustStore.location={}", path(dir, trust_store)),
        format!("ssl.trustStore.password={PW}"),
    ]
}

/// `mntr`'s `zk_auth_failed_count` (failed TLS handshakes, in ZooKeeper's Netty factory).
fn auth_failed_count(server: &ServerProcess) -> u64 {
    mntr_count(server, "zk_auth_failed_count")
}

/// A counter of `mntr`.
fn mntr_count(server: &ServerProcess, key: &str) -> u64 {
    let mntr = four_letter(server.addr(), "mntr").expect("mntr");
    mntr.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('\t'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in mntr:\n{mntr}"))
}

fn start(which: &str, lines: &[String]) -> ServerProcess {
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let r = corral_testkit::start_server(which, corral(), &lines, &[]);
    r.unwrap_or_else(|e| panic!("starting {which}: {e:#}"))
}

// The Java client over TLS sees the same on ZooKeeper and on corral: connected with its
// certificate, its x509 id in whoAmI (RFC 2253 form), x509 ACLs that admit it and refuse other
// subjects, InvalidACL for a malformed subject; and no session without a client certificate,
// with an untrusted one, or in plaintext on the TLS port. corral takes each key store type
// (PKCS12, JKS, PEM) and each trust store type (JKS, PKCS12, PEM).
#[test]
fn java_client_over_tls_matches_zookeeper() {
    if !peers_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_pki(dir);
    let classes = compile(dir);
    let client = |ks: &str| {
        vec![
            ("keyStore.location", path(dir, ks)),
            ("keyStore.password", PW.to_string()),
            ("trustStore.location", path(dir, "trust.jks")),
            ("trustStore.password", PW.to_string()),
        ]
    };
    let no_cert = vec![
        ("trustStore.location", path(dir, "trust.p12")),
        ("trustStore.password", PW.to_string()),
    ];
    // (mode, TLS properties or None for a plaintext client, what the case is)
    type Props = Option<Vec<(&'static str, String)>>;
    let cases: Vec<(&str, Props, &str)> = vec![
        (
            "full",
            Some(client("client.p12")),
            "with a client certificate",
        ),
        ("connect", Some(no_cert), "without a client certificate"),
        (
            "connect",
            Some(client("rogue.p12")),
            "with an untrusted certificate",
        ),
        ("connect", None, "in plaintext on the TLS port"),
    ];
    let mut zk_out = Vec::new();
    let zk_port = free_port();
    let mut zk = start(
        "zookeeper",
        &tls_cfg(dir, zk_port, "server.p12", "trust.jks"),
    );
    for (mode, props, what) in &cases {
        let out = java_client(&classes, zk_port, props.as_deref(), mode);
        zk_out.push((what, out));
    }
    let zk_failed = auth_failed_count(&zk);
    let zk_unsuccessful = mntr_count(&zk, "zk_unsuccessful_handshake");
    zk.stop();
    assert!(
        zk_failed > 0,
        "ZooKeeper counts failed handshakes in zk_auth_failed_count"
    );
    assert!(
        zk_out[0].1.contains(&format!("WHOAMI x509 {CLIENT_ID}")),
        "ZooKeeper: {}",
        zk_out[0].1
    );
    for (ks, ts) in [
        ("server.p12", "trust.jks"),
        ("server.jks", "trust.p12"),
        ("server.pem", "ca.pem"),
        ("server-enc.pem", "ca.pem"),
    ] {
        let port = free_port();
        let mut c = start("corral", &tls_cfg(dir, port, ks, ts));
        for ((mode, props, what), (_, want)) in cases.iter().zip(&zk_out) {
            let got = java_client(&classes, port, props.as_deref(), mode);
            assert_eq!(
                &got,
                want,
                "corral ({ks}, {ts}) {what}:\n{}",
                c.log_tail(30)
            );
        }
        let failed = auth_failed_count(&c);
        let unsuccessful = mntr_count(&c, "zk_unsuccessful_handshake");
        assert_eq!(
            (unsuccessful > 0, zk_unsuccessful > 0),
            (true, true),
            "zk_unsuccessful_handshake counts failed handshakes on both"
        );
        let log = c.log();
        c.stop();
        assert!(failed > 0, "corral's zk_auth_failed_count stayed 0:\n{log}");
        assert!(
            log.contains("TLS handshake with 127.0.0.1"),
            "failed handshakes are logged:\n{log}"
        );
    }
    eprintln!("tls: ZooKeeper and corral agree: {zk_out:#?}");

    // X509AuthenticationProvider.superUser: that certificate is super and reads every node.
    let mut outs = Vec::new();
    for which in ["zookeeper", "corral"] {
        let port = free_port();
        let mut lines = tls_cfg(dir, port, "server.p12", "trust.jks");
        // zoo.cfg is a Java properties file: the subject's backslash must be written twice.
        let escaped = CLIENT_ID.replace('\\', "\\\\");
        lines.push(format!("X509AuthenticationProvider.superUser={escaped}"));
        let mut server = start(which, &lines);
        outs.push(java_client(
            &classes,
            port,
            Some(&client("client.p12")),
            "full",
        ));
        server.stop();
    }
    assert!(outs[0].contains("OTHER readable"), "ZooKeeper: {}", outs[0]);
    assert_eq!(outs[1], outs[0], "corral with an x509 super user");

    // client.portUnification: the plaintext client port takes TLS clients too, and still
    // plaintext ones.
    let mut outs = Vec::new();
    for which in ["zookeeper", "corral"] {
        let mut lines = tls_cfg(dir, free_port(), "server.jks", "trust.p12");
        lines.push("client.portUnification=true".into());
        let mut server = start(which, &lines);
        let port = server.addr().port();
        let tls = java_client(&classes, port, Some(&client("client.p12")), "full");
        let plain = java_client(&classes, port, None, "full");
        outs.push(format!("{tls}\n--\n{plain}"));
        server.stop();
    }
    assert!(
        outs[0].contains(&format!("WHOAMI x509 {CLIENT_ID}")),
        "ZooKeeper: {}",
        outs[0]
    );
    assert_eq!(outs[1], outs[0], "corral with client.portUnification");
}

// A secure port without the stores it needs, or with a store that cannot be opened, stops
// start-up with a message that names the setting or the file.
#[test]
fn bad_tls_settings_stop_start_up() {
    if !peers_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_pki(dir);
    let cases = [
        (
            vec![format!("secureClientPort={}", free_port())],
            "ssl.keyStore.location",
        ),
        (
            {
                let mut l = tls_cfg(dir, free_port(), "server.p12", "trust.jks");
                l.push("ssl.keyStore.password=wrong".into());
                l
            },
            "server.p12",
        ),
        (
            {
                let mut l = tls_cfg(dir, free_port(), "server.p12", "trust.jks");
                l.push("ssl.protocol=TLSv1.1".into());
                l
            },
            "ssl.protocol",
        ),
    ];
    for (lines, expect) in cases {
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        match start_corral(corral(), &lines, &[]) {
            Ok(mut s) => {
                s.stop();
                panic!("corral started with {lines:?}");
            }
            Err(e) => {
                let msg = format!("{e:#}");
                assert!(msg.contains(expect), "expected {expect} in: {msg}");
            }
        }
    }
}

/// The subject of the certificate the server on `port` presents, as openssl prints it.
fn served_subject(dir: &Path, port: u16) -> String {
    let script = format!(
        "openssl s_client -connect 127.0.0.1:{port} -cert client.crt -key client.key \
         -CAfile ca.pem </dev/null 2>/dev/null | openssl x509 -noout -subject"
    );
    match run_bounded(
        Command::new("sh").arg("-c").arg(script).current_dir(dir),
        Duration::from_secs(30),
    ) {
        Ok((_, out)) => out.trim().to_string(),
        Err(e) => panic!("openssl s_client: {e}"),
    }
}

// client.certReload: a renewed key store is served to the next connection without a restart;
// without it, the certificate loaded at start-up stays.
#[test]
fn renewed_certificate_is_served_without_restart() {
    if !peers_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_pki(dir);
    openssl(
        dir,
        "req -newkey rsa:2048 -nodes -keyout renewed.key -out renewed.csr -subj /CN=renewed",
    );
    openssl(dir, "x509 -req -in renewed.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out renewed.crt -days 2 -extfile server.ext");
    openssl(dir, &format!("pkcs12 -export -in renewed.crt -inkey renewed.key -out renewed.p12 -passout pass:{PW} -name server"));
    for reload in [true, false] {
        fs::copy(dir.join("server.p12"), dir.join("live.p12")).unwrap();
        let port = free_port();
        let mut lines = tls_cfg(dir, port, "live.p12", "trust.jks");
        lines.push(format!("client.certReload={reload}"));
        let mut c = start("corral", &lines);
        let before = served_subject(dir, port);
        assert!(before.contains("localhost"), "{before}\n{}", c.log_tail(20));
        // Replaced as tools do it: a new file renamed over the old one.
        fs::copy(dir.join("renewed.p12"), dir.join("live.p12.new")).unwrap();
        fs::rename(dir.join("live.p12.new"), dir.join("live.p12")).unwrap();
        let after = served_subject(dir, port);
        let log = c.log();
        c.stop();
        if reload {
            assert!(after.contains("renewed"), "{after}\n{log}");
            assert!(log.contains("reloaded"), "{log}");
        } else {
            assert!(after.contains("localhost"), "{after}\n{log}");
        }
    }
}

const CLIENT_JAAS: &str =
    "Client {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    \
                           username=\"bob\"\n    password=\"bobsecret\";\n};\n";
const SERVER_JAAS: &str =
    "Server {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    \
                           user_bob=\"bobsecret\";\n};\n";

/// The client's TLS system properties (with the client certificate) as `-D` arguments.
fn tls_props(dir: &Path) -> Vec<String> {
    vec![
        "-Dzookeeper.client.secure=true".into(),
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty".into(),
        format!(
            "-Dzookeeper.ssl.keyStore.location={}",
            path(dir, "client.p12")
        ),
        format!("-Dzookeeper.ssl.keyStore.password={PW}"),
        format!(
            "-Dzookeeper.ssl.trustStore.location={}",
            path(dir, "trust.jks")
        ),
        format!("-Dzookeeper.ssl.trustStore.password={PW}"),
        format!(
            "-Djava.security.auth.login.config={}",
            path(dir, "client-jaas.conf")
        ),
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=off".into(),
    ]
}

fn run_java(cmd: &mut Command, what: &str) -> String {
    output_lines(cmd, Duration::from_secs(90), what)
}

// Curator (a lock, a node with a sasl ACL) and zkCli (whoami) over TLS with SASL DIGEST-MD5 on
// top: the connection carries both the x509 and the sasl id, the same on ZooKeeper and corral.
#[test]
fn curator_and_zkcli_over_tls_with_sasl() {
    if !peers_present()
        || !corral_testkit::CURATOR_JARS
            .iter()
            .all(|(j, pkg)| require_tool(TEST, j, pkg))
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_pki(dir);
    fs::write(dir.join("client-jaas.conf"), CLIENT_JAAS).unwrap();
    fs::write(dir.join("server-jaas.conf"), SERVER_JAAS).unwrap();
    let jars: Vec<&str> = corral_testkit::CURATOR_JARS
        .iter()
        .map(|(j, _)| *j)
        .collect();
    let src = interop_dir().join("security/CuratorSecure.java");
    let classes = javac(&src, &jars.join(":"), &dir.join("curator-classes"));
    let cp = format!(
        "{}:{}:{SLF4J_SIMPLE}:{}",
        classes.display(),
        jars.join(":"),
        NETTY_TLS_JARS.join(":")
    );
    let server_jaas = path(dir, "server-jaas.conf");
    let mut outs = Vec::new();
    for which in ["zookeeper", "corral"] {
        let port = free_port();
        let mut lines = tls_cfg(dir, port, "server.p12", "trust.jks");
        lines.push(
            "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider".into(),
        );
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let props = [("java.security.auth.login.config", server_jaas.as_str())];
        let server = corral_testkit::start_server(which, corral(), &lines, &props);
        let mut server = server.unwrap_or_else(|e| panic!("starting {which}: {e:#}"));
        let hostport = format!("127.0.0.1:{port}");
        let curator = run_java(
            Command::new("java")
                .arg("-Xmx256m")
                .args(tls_props(dir))
                .args(["-cp", &cp, "CuratorSecure", &hostport]),
            "CuratorSecure",
        );
        let zkcli = run_java(
            Command::new("java")
                .arg("-Xmx256m")
                .args(tls_props(dir))
                .args(["-cp", &cp, "org.apache.zookeeper.ZooKeeperMain"])
                .args(["-server", &hostport, "whoami"]),
            "zkCli whoami",
        );
        server.stop();
        // zkCli prints its banner lines first; keep what whoami printed, its ids sorted (their
        // order is a hash set's in ZooKeeper, see docs/compatibility.md).
        let mut zkcli: Vec<&str> = zkcli
            .lines()
            .skip_while(|l| !l.starts_with("Auth scheme"))
            .collect();
        if zkcli.len() > 1 {
            zkcli[1..].sort_unstable();
        }
        outs.push(format!("{curator}\n--\n{}", zkcli.join("\n")));
    }
    assert!(
        outs[0].contains(&format!("WHOAMI x509 {CLIENT_ID}")),
        "ZooKeeper: {}",
        outs[0]
    );
    assert!(
        outs[0].contains("WHOAMI sasl bob"),
        "ZooKeeper: {}",
        outs[0]
    );
    assert_eq!(
        outs[1], outs[0],
        "corral: Curator and zkCli over TLS with SASL"
    );
    eprintln!("curator/zkCli: ZooKeeper and corral agree: {}", outs[0]);
}

/// Serves the files of `dir` over HTTP/1.0 on a free loopback port (for CRL distribution
/// points) until the returned flag is set; each request reads the file anew.
fn serve_files(dir: PathBuf) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::spawn(move || {
        while !stopped.load(Ordering::Relaxed) {
            let Ok((s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut line = String::new();
            let mut reader = BufReader::new(&s);
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let name = line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/');
            let mut w = &s;
            match fs::read(dir.join(name)) {
                Ok(body) => {
                    let _ = write!(
                        w,
                        "HTTP/1.0 200 OK\r\nContent-Type: application/pkix-crl\r\n\
                         Content-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = w.write_all(&body);
                }
                Err(_) => {
                    let _ = w.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                }
            }
        }
    });
    (port, stop)
}

// ssl.crl=true: client certificates are checked against the CRL their distribution point
// names (served over HTTP by the test, made by `openssl ca`): one listed there is refused, one
// that is not is let in, and one without a distribution point is refused too (its status
// cannot be told), the same on ZooKeeper and on corral.
#[test]
fn crl_checks_match_zookeeper() {
    if !peers_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_pki(dir);
    let classes = compile(dir);
    let (http_port, stop) = serve_files(dir.to_path_buf());
    fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = ca_default\n[ca_default]\ndir = .\ndatabase = index.txt\n\
         new_certs_dir = .\ncertificate = ca.pem\nprivate_key = ca.key\ndefault_md = sha256\n\
         default_crl_days = 2\ncrlnumber = crlnumber\npolicy = any\n[any]\ncommonName = supplied\n",
    )
    .unwrap();
    fs::write(dir.join("index.txt"), "").unwrap();
    fs::write(dir.join("crlnumber"), "1000\n").unwrap();
    fs::write(
        dir.join("crl.ext"),
        format!(
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n\
             crlDistributionPoints=URI:http://127.0.0.1:{http_port}/ca.crl\n"
        ),
    )
    .unwrap();
    let openssl = |args: &str| corral_testkit::pki::openssl(dir, args);
    for name in ["good", "revoked"] {
        openssl(&format!(
            "req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr -subj /CN={name}"
        ));
        openssl(&format!(
            "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {name}.crt \
             -days 2 -extfile crl.ext"
        ));
        openssl(&format!(
            "pkcs12 -export -in {name}.crt -inkey {name}.key -out {name}.p12 -passout pass:{PW}"
        ));
    }
    openssl("ca -config ca.cnf -revoke revoked.crt");
    openssl("ca -config ca.cnf -gencrl -out ca.crl.pem");
    openssl("crl -in ca.crl.pem -outform DER -out ca.crl");
    let client = |ks: &str| {
        vec![
            ("keyStore.location", path(dir, ks)),
            ("keyStore.password", PW.to_string()),
            ("trustStore.location", path(dir, "trust.jks")),
            ("trustStore.password", PW.to_string()),
        ]
    };
    let cases = [
        ("full", "good.p12"),
        ("connect", "revoked.p12"),
        ("connect", "client.p12"),
    ];
    let mut outs = Vec::new();
    for which in ["zookeeper", "corral"] {
        let port = free_port();
        let mut lines = tls_cfg(dir, port, "server.p12", "trust.jks");
        lines.push("ssl.crl=true".to_string());
        let mut server = start(which, &lines);
        let out: Vec<String> = cases
            .iter()
            .map(|(mode, ks)| java_client(&classes, port, Some(&client(ks)), mode))
            .collect();
        let log = server.log();
        server.stop();
        if which == "corral" {
            assert!(
                log.contains("CertificateRevoked") || log.contains("Revoked"),
                "{log}"
            );
        }
        outs.push(out);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        outs[0][0].contains("WHOAMI x509 CN=good"),
        "ZooKeeper with a certificate not revoked: {}",
        outs[0][0]
    );
    assert_ne!(
        outs[0][1], outs[0][0],
        "ZooKeeper refuses the revoked certificate"
    );
    assert_eq!(outs[1], outs[0], "corral with ssl.crl");
    eprintln!("crl: ZooKeeper and corral agree: {:#?}", outs[0]);
}

/// What a raw TCP connection to the secure port sees within `wait`: "closed" (the server hung
/// up) or "open" (it waits for the TLS ClientHello).
fn held_or_closed(stream: &mut std::net::TcpStream, wait: Duration) -> &'static str {
    use std::io::Read;
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    match stream.read(&mut b) {
        Ok(0) => "closed",
        Ok(_) => "data",
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            "open"
        }
        Err(_) => "closed",
    }
}

// outstandingHandshake.limit=2: two connections that have not finished their TLS handshake
// hold both places, a third is closed at once and counted in zk_tls_handshake_exceeded; once
// one of the two goes, a new connection is let in again. With client.portUnification (where
// every connection counts until its first byte tells TLS from plaintext) the same on
// ZooKeeper's Netty factory and on corral. On a secure-only port corral does the same, where
// ZooKeeper 3.8.0 ignores the limit (its secure factory decides before it knows it is secure;
// docs/compatibility.md).
#[test]
fn handshake_limit_matches_zookeeper() {
    if !peers_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_pki(dir);
    let mut seen = Vec::new();
    for (which, unified) in [("zookeeper", true), ("corral", true), ("corral", false)] {
        let port = free_port();
        let mut lines = tls_cfg(dir, port, "server.p12", "trust.jks");
        if unified {
            // The plaintext client port takes TLS too.
            lines.push("client.portUnification=true".to_string());
        }
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let props = [("zookeeper.netty.server.outstandingHandshake.limit", "2")];
        let mut server = corral_testkit::start_server(which, corral(), &lines, &props)
            .unwrap_or_else(|e| panic!("starting {which}: {e:#}"));
        let client_port = if unified { server.addr().port() } else { port };
        let dial = || std::net::TcpStream::connect(("127.0.0.1", client_port)).expect("connect");
        let first = dial();
        let mut second = dial();
        std::thread::sleep(Duration::from_millis(300));
        let mut third = dial();
        let third_seen = held_or_closed(&mut third, Duration::from_secs(3));
        // mntr's own connection counts too until its first byte, on the unified port: one
        // place is freed first.
        drop(first);
        std::thread::sleep(Duration::from_millis(500));
        let exceeded = mntr_count(&server, "zk_tls_handshake_exceeded");
        let under_way = mntr_count(&server, "zk_outstanding_tls_handshake");
        let mut fourth = dial();
        let fourth_seen = held_or_closed(&mut fourth, Duration::from_secs(1));
        let second_seen = held_or_closed(&mut second, Duration::from_millis(100));
        server.stop();
        seen.push((third_seen, exceeded, under_way, fourth_seen, second_seen));
    }
    assert_eq!(
        seen[0],
        ("closed", 1, 1, "open", "open"),
        "ZooKeeper, port unification"
    );
    assert_eq!(seen[1], seen[0], "corral vs ZooKeeper, port unification");
    assert_eq!(seen[2], seen[0], "corral, secure port");
}

// With TLS configured for clients, plaintext client connections are counted in
// zk_non_mtls_local_conn_count (from loopback) as ZooKeeper's Netty factory counts them:
// three four-letter words and the mntr that reads the count move it by the same amount on
// both; none is remote.
#[test]
fn non_mtls_connections_counted_as_zookeeper_counts_them() {
    if !peers_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_pki(dir);
    let mut moved = Vec::new();
    for which in ["zookeeper", "corral"] {
        let mut server = start(which, &tls_cfg(dir, free_port(), "server.p12", "trust.jks"));
        let before = mntr_count(&server, "zk_non_mtls_local_conn_count");
        for _ in 0..3 {
            four_letter(server.addr(), "ruok").expect("ruok");
        }
        let after = mntr_count(&server, "zk_non_mtls_local_conn_count");
        let remote = mntr_count(&server, "zk_non_mtls_remote_conn_count");
        server.stop();
        moved.push((after - before, remote));
    }
    assert_eq!(moved[0], (4, 0), "ZooKeeper");
    assert_eq!(moved[1], moved[0], "corral vs ZooKeeper");
}
